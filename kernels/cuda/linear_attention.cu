// Linear attention product on CUDA: the twin of kernels/cpu/linear_attention.cpp.
//
//   out_j = sum_{i in M(j)} (q_j . k_i) v_i      q: [G, nq, dk]  k: [G, nk, dk]  v: [G, nk, dv]
//
// Grid: (G, ceil(dv / kValueTile)). A block owns kValueTile output columns of one group and
// walks the sequence in chunks of C rows: it loads Q, K and its V columns for the chunk into
// shared memory, forms the masked C x C block of q.k, adds (Q S + A V) to the output and folds
// the chunk into its slice of the state S = sum k_i v_i^T ([dk, kValueTile], shared). Memory
// per block O(dk kValueTile + C dk + C^2), never n x n. C shrinks (64 -> 32 -> 16) when the
// tiles would not fit the opt-in shared memory of the device.
#include <algorithm>

#include "common.cuh"
#include "mk/kernels.h"

namespace mk {
namespace cuda {
namespace {

struct LinearAttentionTraits {
  static constexpr int kValueTile = 32;  // output columns per block
  static constexpr int kThreads = 256;
  static constexpr int kMaxChunk = 64;
  static_assert(kThreads % kValueTile == 0, "threads must cover whole value tiles");
};
using Traits = LinearAttentionTraits;

template <class T>
size_t smem_bytes(int dk, int chunk) {
  const int ET = Traits::kValueTile;
  return sizeof(T) * size_t(dk * ET + 2 * chunk * dk + chunk * ET + chunk * chunk);
}

__device__ __forceinline__ int chunk_len(int64_t total, int64_t c0, int C) {
  return total - c0 < C ? int(total - c0) : C;
}

template <class T>
__device__ void load_rows(const T* src, int64_t row0, int rows, int width, int64_t ld, int col0,
                          T* dst, int ldd) {
  for (int idx = threadIdx.x; idx < rows * width; idx += blockDim.x) {
    const int r = idx / width, c = idx % width;
    dst[r * ldd + c] = src[(row0 + r) * ld + col0 + c];
  }
}

template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
linear_attention_kernel(int mask, int64_t nq, int64_t nk, int dk, int dv, int C, const T* q,
                        const T* k, const T* v, T* out) {
  constexpr int ET = Traits::kValueTile;
  extern __shared__ unsigned char smem_raw[];
  T* S = reinterpret_cast<T*>(smem_raw);  // [dk, ET]
  T* Qc = S + dk * ET;                    // [C, dk]
  T* Kc = Qc + C * dk;                    // [C, dk]
  T* Vc = Kc + C * dk;                    // [C, ET]
  T* A = Vc + C * ET;                     // [C, C]
  const int64_t g = blockIdx.x;
  const int e0 = blockIdx.y * ET;
  const int et = min(ET, dv - e0);
  q += g * nq * dk;
  k += g * nk * dk;
  v += g * nk * dv;
  out += g * nq * dv;
  for (int i = threadIdx.x; i < dk * ET; i += blockDim.x) S[i] = T(0);
  __syncthreads();

  if (mask == 0) {
    for (int64_t c0 = 0; c0 < nk; c0 += C) {
      const int len = chunk_len(nk, c0, C);
      load_rows(k, c0, len, dk, dk, 0, Kc, dk);
      load_rows(v, c0, len, et, dv, e0, Vc, ET);
      __syncthreads();
      for (int idx = threadIdx.x; idx < dk * et; idx += blockDim.x) {
        const int d = idx / et, e = idx % et;
        T acc = 0;
        for (int i = 0; i < len; ++i) acc += Kc[i * dk + d] * Vc[i * ET + e];
        S[d * ET + e] += acc;
      }
      __syncthreads();
    }
    for (int64_t c0 = 0; c0 < nq; c0 += C) {
      const int len = chunk_len(nq, c0, C);
      load_rows(q, c0, len, dk, dk, 0, Qc, dk);
      __syncthreads();
      for (int idx = threadIdx.x; idx < len * et; idx += blockDim.x) {
        const int j = idx / et, e = idx % et;
        T acc = 0;
        for (int d = 0; d < dk; ++d) acc += Qc[j * dk + d] * S[d * ET + e];
        out[(c0 + j) * dv + e0 + e] = acc;
      }
      __syncthreads();
    }
    return;
  }

  const int64_t n = nq;
  const int64_t chunks = (n + C - 1) / C;
  for (int64_t step = 0; step < chunks; ++step) {
    const int64_t c = mask == 1 ? step : chunks - 1 - step;
    const int64_t c0 = c * C;
    const int len = chunk_len(n, c0, C);
    load_rows(q, c0, len, dk, dk, 0, Qc, dk);
    load_rows(k, c0, len, dk, dk, 0, Kc, dk);
    load_rows(v, c0, len, et, dv, e0, Vc, ET);
    __syncthreads();
    for (int idx = threadIdx.x; idx < len * len; idx += blockDim.x) {
      const int j = idx / len, i = idx % len;
      const bool allowed = mask == 1 ? i <= j : i >= j;
      T acc = 0;
      if (allowed)
        for (int d = 0; d < dk; ++d) acc += Qc[j * dk + d] * Kc[i * dk + d];
      A[j * C + i] = acc;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < len * et; idx += blockDim.x) {
      const int j = idx / et, e = idx % et;
      T acc = 0;
      for (int d = 0; d < dk; ++d) acc += Qc[j * dk + d] * S[d * ET + e];
      for (int i = 0; i < len; ++i) acc += A[j * C + i] * Vc[i * ET + e];
      out[(c0 + j) * dv + e0 + e] = acc;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < dk * et; idx += blockDim.x) {
      const int d = idx / et, e = idx % et;
      T acc = 0;
      for (int i = 0; i < len; ++i) acc += Kc[i * dk + d] * Vc[i * ET + e];
      S[d * ET + e] += acc;
    }
    __syncthreads();
  }
}

template <class T>
__global__ void momentum_kernel(int64_t groups, int64_t n, int64_t d, const T* v, T* out, T decay,
                                int reverse) {
  const int64_t cols = groups * d;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < cols; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t g = t / d, e = t % d;
    const T* vg = v + g * n * d + e;
    T* og = out + g * n * d + e;
    T m = 0;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t j = reverse ? n - 1 - s : s;
      if (s > 0) {
        const int64_t p = reverse ? j + 1 : j - 1;
        m = decay * (m + vg[p * d]);
      }
      og[j * d] = m;
    }
  }
}

template <class T>
int launch(int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const void* q,
           const void* k, const void* v, void* out, int mask, void* stream) {
  int dev = 0, optin = 48 * 1024;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  int chunk = Traits::kMaxChunk;
  while (chunk > 8 && smem_bytes<T>(int(dk), chunk) > size_t(optin)) chunk /= 2;
  const size_t bytes = smem_bytes<T>(int(dk), chunk);
  // the key-feature width decides the shared tile: too wide for this GPU is "unsupported"
  if (bytes > size_t(optin)) return KERNEL_UNSUPPORTED;
  cudaError_t e = cudaFuncSetAttribute(linear_attention_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  if (e != cudaSuccess) return int(e);
  const dim3 grid(unsigned(groups), unsigned((dv + Traits::kValueTile - 1) / Traits::kValueTile));
  linear_attention_kernel<T><<<grid, Traits::kThreads, bytes, as_stream(stream)>>>(
      mask, nq, nk, int(dk), int(dv), chunk, static_cast<const T*>(q), static_cast<const T*>(k),
      static_cast<const T*>(v), static_cast<T*>(out));
  return last_error();
}

}  // namespace

int linear_attention(int dtype, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                     const void* q, const void* k, const void* v, void* out, int mask,
                     void* workspace, void* stream) {
  if (groups > 2147483647LL) return int(cudaErrorInvalidValue);
  if (dtype == MK_F32) return launch<float>(groups, nq, nk, dk, dv, q, k, v, out, mask, stream);
  return launch<double>(groups, nq, nk, dk, dv, q, k, v, out, mask, stream);
}

int64_t linear_attention_workspace(int64_t, int64_t, int) { return 0; }

int linear_attention_momentum(int dtype, int64_t groups, int64_t n, int64_t d, const void* v,
                              void* out, double decay, int reverse, void* stream) {
  const int64_t cols = groups * d;
  auto s = as_stream(stream);
  if (dtype == MK_F32)
    momentum_kernel<<<grid_for(cols), 256, 0, s>>>(groups, n, d, static_cast<const float*>(v), static_cast<float*>(out), float(decay), reverse);
  else
    momentum_kernel<<<grid_for(cols), 256, 0, s>>>(groups, n, d, static_cast<const double*>(v), static_cast<double*>(out), decay, reverse);
  return last_error();
}

}  // namespace cuda
}  // namespace mk
