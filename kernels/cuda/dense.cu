// Dense CUDA kernels: the twins of kernels/cpu/dense.cpp (same signatures, mk/kernels.inc).
// Simple grid-stride kernels: these ops are memory bound and sit around the fused kernels.
#include <mutex>
#include <cfloat>
#include <cmath>

#include "common.cuh"
#include "mk/kernels.h"
#include "mk/scalar.h"

namespace mk {
namespace cuda {
namespace {

constexpr int kBlock = 256;

template <class T>
__global__ void fill_kernel(T* dst, int64_t n, T v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = v;
}

template <class T>
__global__ void copy_kernel(Geometry g, int64_t n, const T* src, T* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[offset_of(g, 1, i)] = src[offset_of(g, 0, i)];
}

__device__ __forceinline__ double load_as_double(int dtype, const void* p, int64_t i) {
  switch (dtype) {
    case MK_F32: return static_cast<const float*>(p)[i];
    case MK_F64: return static_cast<const double*>(p)[i];
    case MK_I64: return double(static_cast<const int64_t*>(p)[i]);
    case MK_BF16: return bf16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
    case MK_F16: return f16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return 0;
  }
}

__global__ void cast_kernel(int sd, int dd, int64_t n, const void* src, void* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double v = load_as_double(sd, src, i);
    switch (dd) {
      case MK_F32: static_cast<float*>(dst)[i] = float(v); break;
      case MK_F64: static_cast<double*>(dst)[i] = v; break;
      case MK_I64: static_cast<int64_t*>(dst)[i] = int64_t(v); break;
      case MK_BF16: static_cast<uint16_t*>(dst)[i] = f32_to_bf16_bits(float(v)); break;
      case MK_F16: static_cast<uint16_t*>(dst)[i] = f32_to_f16_bits(float(v)); break;
      default: break;
    }
  }
}

template <class T>
__global__ void random_kernel(int dist, int64_t n, T* dst, uint64_t seed, double a, double b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = T(random_value(dist, seed, uint64_t(i), a, b));
}

template <class T>
__global__ void unary_kernel(int op, Geometry g, int64_t n, const T* x, T* y, T p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = unary_apply<T>(op, x[offset_of(g, 0, i)], p);
}

template <class T>
__global__ void binary_kernel(int op, Geometry g, int64_t n, const T* a, const T* b, T* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = binary_apply<T>(op, a[offset_of(g, 0, i)], b[offset_of(g, 1, i)]);
}

template <class T>
__global__ void where_kernel(Geometry g, int64_t n, const T* c, const T* a, const T* b, T* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = c[offset_of(g, 0, i)] != T(0) ? a[offset_of(g, 1, i)] : b[offset_of(g, 2, i)];
}

// One block per (outer, inner) output; threads stride over len, then a shared-memory tree.
// Sums accumulate in double (as the CPU twin does) so both agree to float rounding.
template <class T>
__global__ void reduce_kernel(int op, int64_t outer, int64_t len, int64_t inner, const T* x, T* y,
                              int64_t* idx) {
  __shared__ double sval[kBlock];
  __shared__ int64_t sidx[kBlock];
  for (int64_t out = blockIdx.x; out < outer * inner; out += gridDim.x) {
    const int64_t o = out / inner, i = out % inner;
    const T* base = x + o * len * inner + i;
    double acc = op == MK_REDUCE_SUM ? 0.0 : (op == MK_REDUCE_MAX ? -INFINITY : INFINITY);
    int64_t best = len;  // "none yet"
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
      const double v = double(base[j * inner]);
      if (op == MK_REDUCE_SUM) acc += v;
      else {
        const bool better = best == len || (op == MK_REDUCE_MAX ? (v > acc || (isnan(v) && !isnan(acc)))
                                                        : (v < acc || (isnan(v) && !isnan(acc))));
        if (better) { acc = v; best = j; }
      }
    }
    sval[threadIdx.x] = acc;
    sidx[threadIdx.x] = best;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) {
        if (op == MK_REDUCE_SUM) sval[threadIdx.x] += sval[threadIdx.x + s];
        else {
          const double a = sval[threadIdx.x], b = sval[threadIdx.x + s];
          const int64_t ia = sidx[threadIdx.x], ib = sidx[threadIdx.x + s];
          bool take_b;
          if (ib == len) take_b = false;
          else if (ia == len) take_b = true;
          else if (isnan(a) || isnan(b)) take_b = isnan(b) && (!isnan(a) || ib < ia);
          else if (a == b) take_b = ib < ia;  // first occurrence, as the CPU twin
          else take_b = op == MK_REDUCE_MAX ? b > a : b < a;
          if (take_b) { sval[threadIdx.x] = b; sidx[threadIdx.x] = ib; }
        }
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      y[out] = T(sval[0]);
      if (idx) idx[out] = sidx[0] == len ? 0 : sidx[0];
    }
    __syncthreads();
  }
}

// max(a, b) that propagates NaN (fmax returns the other operand).
__device__ __forceinline__ double nan_max(double a, double b) { return (a != a || b != b) ? NAN : fmax(a, b); }

template <class T>
__global__ void softmax_kernel(int log, int64_t rows, int64_t cols, const T* x, T* y) {
  __shared__ double red[kBlock];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    // the row maximum, NaN when any entry is NaN (fmax alone skips NaN), as in the CPU twin
    double m = -INFINITY;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = nan_max(m, double(xr[c]));
    red[threadIdx.x] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) red[threadIdx.x] = nan_max(red[threadIdx.x], red[threadIdx.x + s]);
      __syncthreads();
    }
    m = red[0];
    __syncthreads();
    if (m == -INFINITY) {
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = log ? T(-INFINITY) : T(0);
      continue;
    }
    double s = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += exp(double(xr[c]) - m);
    red[threadIdx.x] = s;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
      if (threadIdx.x < k) red[threadIdx.x] += red[threadIdx.x + k];
      __syncthreads();
    }
    s = red[0];
    __syncthreads();
    const double lse = m + ::log(s);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
      yr[c] = log ? T(double(xr[c]) - lse) : T(exp(double(xr[c]) - lse));
  }
}

template <class T>
__global__ void index_select_kernel(int64_t outer, int64_t src_len, int64_t inner, const T* x,
                                    const int64_t* idx, int64_t n_idx, T* y) {
  const int64_t n = outer * n_idx * inner;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t % inner, j = (t / inner) % n_idx, o = t / (inner * n_idx);
    y[t] = x[(o * src_len + idx[j]) * inner + i];
  }
}

// Deterministic: one thread per (o, i) column walks j in order (no atomics).
template <class T>
__global__ void index_add_kernel(int64_t outer, int64_t dst_len, int64_t inner, T* dst,
                                 const int64_t* idx, int64_t n_idx, const T* src) {
  const int64_t n = outer * inner;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t % inner, o = t / inner;
    for (int64_t j = 0; j < n_idx; ++j)
      dst[(o * dst_len + idx[j]) * inner + i] += src[(o * n_idx + j) * inner + i];
  }
}

template <class T>
__global__ void gather_kernel(int64_t outer, int64_t src_len, int64_t inner, const T* x,
                              const int64_t* idx, int64_t idx_len, T* y) {
  const int64_t n = outer * idx_len * inner;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t % inner, o = t / (inner * idx_len);
    y[t] = x[(o * src_len + idx[t]) * inner + i];
  }
}

template <class T>
__global__ void scatter_add_kernel(int64_t outer, int64_t dst_len, int64_t inner, T* dst,
                                   const int64_t* idx, int64_t idx_len, const T* src) {
  const int64_t n = outer * inner;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t % inner, o = t / inner;
    for (int64_t j = 0; j < idx_len; ++j) {
      const int64_t s = (o * idx_len + j) * inner + i;
      dst[(o * dst_len + idx[s]) * inner + i] += src[s];
    }
  }
}

__device__ unsigned long long g_bad_indices;

__global__ void index_check_kernel(int64_t n, const int64_t* idx, int64_t bound) {
  unsigned long long local = 0;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x)
    local += (idx[t] < 0 || idx[t] >= bound) ? 1ull : 0ull;
  if (local) atomicAdd(&g_bad_indices, local);
}

template <class T>
__global__ void matmul_naive_kernel(int64_t batch, int64_t m, int64_t n, int64_t k, const T* a,
                                    int64_t a_bs, int64_t a_rs, int64_t a_cs, const T* b,
                                    int64_t b_bs, int64_t b_rs, int64_t b_cs, T* c, int64_t c_bs) {
  const int64_t total = batch * m * n;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = t % n, i = (t / n) % m, bb = t / (m * n);
    const T* ar = a + bb * a_bs + i * a_rs;
    const T* bc = b + bb * b_bs + j * b_cs;
    T acc = 0;
    for (int64_t p = 0; p < k; ++p) acc += ar[p * a_cs] * bc[p * b_rs];
    c[bb * c_bs + i * n + j] = acc;
  }
}

int64_t contiguous_strides(int rank, const int64_t* shape, int64_t* out) {
  int64_t acc = 1;
  for (int d = rank - 1; d >= 0; --d) { out[d] = acc; acc *= shape[d]; }
  return acc;
}

}  // namespace

int fill(int dtype, int64_t n, void* dst, double value, void* stream) {
  auto s = as_stream(stream);
  switch (dtype) {
    case MK_F32: fill_kernel<<<grid_for(n), kBlock, 0, s>>>(static_cast<float*>(dst), n, float(value)); break;
    case MK_F64: fill_kernel<<<grid_for(n), kBlock, 0, s>>>(static_cast<double*>(dst), n, value); break;
    case MK_I64: fill_kernel<<<grid_for(n), kBlock, 0, s>>>(static_cast<int64_t*>(dst), n, int64_t(value)); break;
    case MK_BF16: fill_kernel<<<grid_for(n), kBlock, 0, s>>>(static_cast<uint16_t*>(dst), n, f32_to_bf16_bits(float(value))); break;
    case MK_F16: fill_kernel<<<grid_for(n), kBlock, 0, s>>>(static_cast<uint16_t*>(dst), n, f32_to_f16_bits(float(value))); break;
    default: return KERNEL_UNSUPPORTED;
  }
  return last_error();
}

int copy_strided(int dtype, int rank, const int64_t* shape, const void* src,
                 const int64_t* src_strides, void* dst, const int64_t* dst_strides, void* stream) {
  const int64_t* st[2] = {src_strides, dst_strides};
  StridedShape sh = collapse(rank, shape, 2, st);
  if (sh.numel == 0) return 0;
  Geometry g = to_geometry(sh);
  auto s = as_stream(stream);
  const int64_t n = sh.numel;
  switch (dtype_size(dtype)) {
    case 8: copy_kernel<<<grid_for(n), kBlock, 0, s>>>(g, n, static_cast<const int64_t*>(src), static_cast<int64_t*>(dst)); break;
    case 4: copy_kernel<<<grid_for(n), kBlock, 0, s>>>(g, n, static_cast<const int32_t*>(src), static_cast<int32_t*>(dst)); break;
    case 2: copy_kernel<<<grid_for(n), kBlock, 0, s>>>(g, n, static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst)); break;
    default: return KERNEL_UNSUPPORTED;
  }
  return last_error();
}

int cast(int src_dtype, int dst_dtype, int64_t n, const void* src, void* dst, void* stream) {
  cast_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(src_dtype, dst_dtype, n, src, dst);
  return last_error();
}

int random_fill(int dtype, int dist, int64_t n, void* dst, uint64_t seed, double a, double b,
                void* stream) {
  auto s = as_stream(stream);
  if (dtype == MK_F32) random_kernel<<<grid_for(n), kBlock, 0, s>>>(dist, n, static_cast<float*>(dst), seed, a, b);
  else random_kernel<<<grid_for(n), kBlock, 0, s>>>(dist, n, static_cast<double*>(dst), seed, a, b);
  return last_error();
}

int unary(int dtype, int op, int rank, const int64_t* shape, const void* x,
          const int64_t* x_strides, void* y, double p, void* stream) {
  int64_t ys[MK_MAX_RANK];
  contiguous_strides(rank, shape, ys);
  const int64_t* st[2] = {x_strides, ys};
  StridedShape sh = collapse(rank, shape, 2, st);
  if (sh.numel == 0) return 0;
  Geometry g = to_geometry(sh);
  auto s = as_stream(stream);
  if (dtype == MK_F32) unary_kernel<<<grid_for(sh.numel), kBlock, 0, s>>>(op, g, sh.numel, static_cast<const float*>(x), static_cast<float*>(y), float(p));
  else unary_kernel<<<grid_for(sh.numel), kBlock, 0, s>>>(op, g, sh.numel, static_cast<const double*>(x), static_cast<double*>(y), p);
  return last_error();
}

int binary(int dtype, int op, int rank, const int64_t* shape, const void* a,
           const int64_t* a_strides, const void* b, const int64_t* b_strides, void* out,
           void* stream) {
  const int64_t* st[2] = {a_strides, b_strides};
  StridedShape sh = collapse(rank, shape, 2, st);
  if (sh.numel == 0) return 0;
  Geometry g = to_geometry(sh);
  auto s = as_stream(stream);
  if (dtype == MK_F32) binary_kernel<<<grid_for(sh.numel), kBlock, 0, s>>>(op, g, sh.numel, static_cast<const float*>(a), static_cast<const float*>(b), static_cast<float*>(out));
  else binary_kernel<<<grid_for(sh.numel), kBlock, 0, s>>>(op, g, sh.numel, static_cast<const double*>(a), static_cast<const double*>(b), static_cast<double*>(out));
  return last_error();
}

int where(int dtype, int rank, const int64_t* shape, const void* cond, const int64_t* c_strides,
          const void* a, const int64_t* a_strides, const void* b, const int64_t* b_strides,
          void* out, void* stream) {
  const int64_t* st[3] = {c_strides, a_strides, b_strides};
  StridedShape sh = collapse(rank, shape, 3, st);
  if (sh.numel == 0) return 0;
  Geometry g = to_geometry(sh);
  auto s = as_stream(stream);
  if (dtype == MK_F32) where_kernel<<<grid_for(sh.numel), kBlock, 0, s>>>(g, sh.numel, static_cast<const float*>(cond), static_cast<const float*>(a), static_cast<const float*>(b), static_cast<float*>(out));
  else where_kernel<<<grid_for(sh.numel), kBlock, 0, s>>>(g, sh.numel, static_cast<const double*>(cond), static_cast<const double*>(a), static_cast<const double*>(b), static_cast<double*>(out));
  return last_error();
}

int reduce(int dtype, int op, int64_t outer, int64_t len, int64_t inner, const void* x, void* y,
           int64_t* indices, void* stream) {
  const int64_t outs = outer * inner;
  const unsigned grid = unsigned(outs < 65535 * 16 ? outs : 65535 * 16);
  auto s = as_stream(stream);
  if (dtype == MK_F32) reduce_kernel<<<grid, kBlock, 0, s>>>(op, outer, len, inner, static_cast<const float*>(x), static_cast<float*>(y), indices);
  else reduce_kernel<<<grid, kBlock, 0, s>>>(op, outer, len, inner, static_cast<const double*>(x), static_cast<double*>(y), indices);
  return last_error();
}

int softmax(int dtype, int log, int64_t rows, int64_t cols, const void* x, void* y, void* stream) {
  const unsigned grid = unsigned(rows < 65535 * 16 ? rows : 65535 * 16);
  auto s = as_stream(stream);
  if (dtype == MK_F32) softmax_kernel<<<grid, kBlock, 0, s>>>(log, rows, cols, static_cast<const float*>(x), static_cast<float*>(y));
  else softmax_kernel<<<grid, kBlock, 0, s>>>(log, rows, cols, static_cast<const double*>(x), static_cast<double*>(y));
  return last_error();
}

int index_select(int dtype, int64_t outer, int64_t src_len, int64_t inner, const void* x,
                 const int64_t* idx, int64_t n_idx, void* y, void* stream) {
  const int64_t n = outer * n_idx * inner;
  auto s = as_stream(stream);
  switch (dtype_size(dtype)) {
    case 8: index_select_kernel<<<grid_for(n), kBlock, 0, s>>>(outer, src_len, inner, static_cast<const int64_t*>(x), idx, n_idx, static_cast<int64_t*>(y)); break;
    case 4: index_select_kernel<<<grid_for(n), kBlock, 0, s>>>(outer, src_len, inner, static_cast<const int32_t*>(x), idx, n_idx, static_cast<int32_t*>(y)); break;
    case 2: index_select_kernel<<<grid_for(n), kBlock, 0, s>>>(outer, src_len, inner, static_cast<const uint16_t*>(x), idx, n_idx, static_cast<uint16_t*>(y)); break;
    default: return KERNEL_UNSUPPORTED;
  }
  return last_error();
}

int index_add(int dtype, int64_t outer, int64_t dst_len, int64_t inner, void* dst,
              const int64_t* idx, int64_t n_idx, const void* src, void* stream) {
  const int64_t n = outer * inner;
  auto s = as_stream(stream);
  if (dtype == MK_F32) index_add_kernel<<<grid_for(n), kBlock, 0, s>>>(outer, dst_len, inner, static_cast<float*>(dst), idx, n_idx, static_cast<const float*>(src));
  else index_add_kernel<<<grid_for(n), kBlock, 0, s>>>(outer, dst_len, inner, static_cast<double*>(dst), idx, n_idx, static_cast<const double*>(src));
  return last_error();
}

int gather(int dtype, int64_t outer, int64_t src_len, int64_t inner, const void* x,
           const int64_t* idx, int64_t idx_len, void* y, void* stream) {
  const int64_t n = outer * idx_len * inner;
  auto s = as_stream(stream);
  if (dtype == MK_F32) gather_kernel<<<grid_for(n), kBlock, 0, s>>>(outer, src_len, inner, static_cast<const float*>(x), idx, idx_len, static_cast<float*>(y));
  else gather_kernel<<<grid_for(n), kBlock, 0, s>>>(outer, src_len, inner, static_cast<const double*>(x), idx, idx_len, static_cast<double*>(y));
  return last_error();
}

int scatter_add(int dtype, int64_t outer, int64_t dst_len, int64_t inner, void* dst,
                const int64_t* idx, int64_t idx_len, const void* src, void* stream) {
  const int64_t n = outer * inner;
  auto s = as_stream(stream);
  if (dtype == MK_F32) scatter_add_kernel<<<grid_for(n), kBlock, 0, s>>>(outer, dst_len, inner, static_cast<float*>(dst), idx, idx_len, static_cast<const float*>(src));
  else scatter_add_kernel<<<grid_for(n), kBlock, 0, s>>>(outer, dst_len, inner, static_cast<double*>(dst), idx, idx_len, static_cast<const double*>(src));
  return last_error();
}

int index_check(int64_t n, const int64_t* idx, int64_t bound, int64_t* bad, void* stream) {
  // g_bad_indices is one counter per device: two host threads checking on different streams
  // would reset and read each other's count, so the whole reset-count-read runs under a lock.
  static std::mutex lock;
  std::lock_guard<std::mutex> guard(lock);
  auto s = as_stream(stream);
  const unsigned long long zero = 0;
  cudaError_t e = cudaMemcpyToSymbolAsync(g_bad_indices, &zero, sizeof zero, 0, cudaMemcpyHostToDevice, s);
  if (e != cudaSuccess) return int(e);
  index_check_kernel<<<grid_for(n), kBlock, 0, s>>>(n, idx, bound);
  unsigned long long count = 0;
  e = cudaMemcpyFromSymbolAsync(&count, g_bad_indices, sizeof count, 0, cudaMemcpyDeviceToHost, s);
  if (e != cudaSuccess) return int(e);
  e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return int(e);
  *bad = int64_t(count);
  return last_error();
}

int matmul_naive(int dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a,
                 int64_t a_bs, int64_t a_rs, int64_t a_cs, const void* b, int64_t b_bs,
                 int64_t b_rs, int64_t b_cs, void* c, int64_t c_bs, void* stream) {
  const int64_t total = batch * m * n;
  auto s = as_stream(stream);
  if (dtype == MK_F32) matmul_naive_kernel<<<grid_for(total), kBlock, 0, s>>>(batch, m, n, k, static_cast<const float*>(a), a_bs, a_rs, a_cs, static_cast<const float*>(b), b_bs, b_rs, b_cs, static_cast<float*>(c), c_bs);
  else matmul_naive_kernel<<<grid_for(total), kBlock, 0, s>>>(batch, m, n, k, static_cast<const double*>(a), a_bs, a_rs, a_cs, static_cast<const double*>(b), b_bs, b_rs, b_cs, static_cast<double*>(c), c_bs);
  return last_error();
}

}  // namespace cuda
}  // namespace mk
