// The fused InfoNCE rows on CUDA, the twins of kernels/cpu/infonce.cpp (same signatures,
// mk/kernels.inc: infonce_forward / infonce_backward).
//
//   forward   a block of kThreads per row (grid-stride over rows): thread t walks the columns t,
//             t + kThreads, ... (coalesced) for the two maxima, folded by a fixed tree in shared
//             memory; then the two sums of exponentials in double, the same way. The bits depend
//             on the row and kThreads alone (deterministic, no atomics); against the CPU twin they
//             agree to rounding (another order of summation, the device's exp).
//   backward  a block per row, each thread its columns: elementwise, deterministic.
// Launched through cudaLaunchKernelEx (launch_grid), so the host emulator
// (tests/cuda-emu/infonce_emu_test.cpp) runs them against the CPU twin.
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"
#include "mk/infonce_layout.h"
#include "mk/kernels.h"

namespace mk {
namespace cuda {

extern __shared__ __align__(16) unsigned char mk_infonce_smem[];

struct InfoNceCudaTraits {
  static constexpr int kThreads = 256;
  static constexpr int64_t kMaxBlocks = 65535;
  static_assert(kThreads % 32 == 0 && (kThreads & (kThreads - 1)) == 0, "a power of two of whole warps");
};

namespace {

template <class T>
__device__ __forceinline__ T neg_inf() {
  return T(-INFINITY);
}

// The device's exponential in T (expf for float).
template <class T>
__device__ __forceinline__ T exp_t(T x) {
  if constexpr (sizeof(T) == 4) return expf(x);
  else return exp(x);
}

template <class T>
__device__ __forceinline__ T max_nan(T m, T x) {
  return (x > m || x != x) ? x : m;
}

template <bool MASK, class T>
__device__ __forceinline__ bool positive(const T* pr, int64_t r, int64_t j) {
  if constexpr (MASK) {
    return pr[j] != T(0);
  } else {
    return j == r;
  }
}

template <bool MASK, bool WEIGHTS, class T>
__device__ __forceinline__ T logit_all(const T* sr, const T* pr, const T* wr, int64_t r, int64_t j) {
  if constexpr (WEIGHTS) {
    return positive<MASK>(pr, r, j) ? sr[j] : sr[j] + wr[j];
  } else {
    return sr[j];
  }
}

// The fixed trees over the block's per-thread values (kThreads of each) in shared memory: maxima
// (T) and sums (double). Every thread gets the result.
template <class T>
__device__ __forceinline__ void tree_max2(T& a, T& b) {
  T* sa = reinterpret_cast<T*>(mk_infonce_smem);
  T* sb = sa + InfoNceCudaTraits::kThreads;
  __syncthreads();  // the previous row's readers are done
  sa[threadIdx.x] = a;
  sb[threadIdx.x] = b;
  __syncthreads();
  for (int half = InfoNceCudaTraits::kThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) {
      sa[threadIdx.x] = max_nan(sa[threadIdx.x], sa[threadIdx.x + half]);
      sb[threadIdx.x] = max_nan(sb[threadIdx.x], sb[threadIdx.x + half]);
    }
    __syncthreads();
  }
  a = sa[0];
  b = sb[0];
}

__device__ __forceinline__ void tree_sum2(double& a, double& b) {
  double* sa = reinterpret_cast<double*>(mk_infonce_smem);
  double* sb = sa + InfoNceCudaTraits::kThreads;
  __syncthreads();
  sa[threadIdx.x] = a;
  sb[threadIdx.x] = b;
  __syncthreads();
  for (int half = InfoNceCudaTraits::kThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) {
      sa[threadIdx.x] += sa[threadIdx.x + half];
      sb[threadIdx.x] += sb[threadIdx.x + half];
    }
    __syncthreads();
  }
  a = sa[0];
  b = sb[0];
}

template <bool MASK, bool WEIGHTS, class T>
__global__ void __launch_bounds__(InfoNceCudaTraits::kThreads)
    infonce_forward_kernel(int64_t rows, int64_t cols, const T* __restrict__ s, const T* __restrict__ pos,
                           const T* __restrict__ logw, T* __restrict__ loss, T* __restrict__ stats) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* sr = s + r * cols;
    const T* pr = MASK ? pos + r * cols : nullptr;
    const T* wr = WEIGHTS ? logw + r * cols : nullptr;
    T ma = neg_inf<T>(), mp = neg_inf<T>();
    for (int64_t j = threadIdx.x; j < cols; j += InfoNceCudaTraits::kThreads) {
      ma = max_nan(ma, logit_all<MASK, WEIGHTS>(sr, pr, wr, r, j));
      if (positive<MASK>(pr, r, j)) mp = max_nan(mp, sr[j]);
    }
    tree_max2(ma, mp);
    const T sa = ma == neg_inf<T>() ? T(0) : ma, sp = mp == neg_inf<T>() ? T(0) : mp;
    double acc_a = 0, acc_p = 0;
    for (int64_t j = threadIdx.x; j < cols; j += InfoNceCudaTraits::kThreads) {
      acc_a += double(exp_t(logit_all<MASK, WEIGHTS>(sr, pr, wr, r, j) - sa));
      if (positive<MASK>(pr, r, j)) acc_p += double(exp_t(sr[j] - sp));
    }
    tree_sum2(acc_a, acc_p);
    if (threadIdx.x == 0) {
      const T lse_a = ma != ma ? ma : (ma == neg_inf<T>() ? ma : T(double(sa) + log(acc_a)));
      const T lse_p = mp != mp ? mp : (mp == neg_inf<T>() ? mp : T(double(sp) + log(acc_p)));
      loss[r] = lse_a - lse_p;
      stats[2 * r] = lse_a;
      stats[2 * r + 1] = lse_p;
    }
  }
}

template <bool MASK, bool WEIGHTS, class T>
__global__ void __launch_bounds__(InfoNceCudaTraits::kThreads)
    infonce_backward_kernel(int64_t rows, int64_t cols, const T* __restrict__ s, const T* __restrict__ pos,
                            const T* __restrict__ logw, const T* __restrict__ stats, const T* __restrict__ g,
                            T* __restrict__ gs, T* __restrict__ gw) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* sr = s + r * cols;
    const T* pr = MASK ? pos + r * cols : nullptr;
    const T* wr = WEIGHTS ? logw + r * cols : nullptr;
    const T lse_a = stats[2 * r], lse_p = stats[2 * r + 1], gr = g[r];
    const bool none_a = lse_a == neg_inf<T>(), none_p = lse_p == neg_inf<T>();
    const T la = none_a ? T(0) : lse_a, lp = none_p ? T(0) : lse_p;
    const T ga = none_a ? T(0) : gr, gp = none_p ? T(0) : gr;
    for (int64_t j = threadIdx.x; j < cols; j += InfoNceCudaTraits::kThreads) {
      const bool is_pos = positive<MASK>(pr, r, j);
      const T a = ga * exp_t(logit_all<MASK, WEIGHTS>(sr, pr, wr, r, j) - la);
      if (gs) gs[r * cols + j] = a - (is_pos ? gp * exp_t(sr[j] - lp) : T(0));
      if (gw) gw[r * cols + j] = is_pos ? T(0) : a;
    }
  }
}

int64_t blocks_for_rows(int64_t rows) {
  return rows < 1 ? 1 : (rows > InfoNceCudaTraits::kMaxBlocks ? InfoNceCudaTraits::kMaxBlocks : rows);
}

template <class T>
int forward_t(int64_t rows, int64_t cols, const void* s, const void* pos, const void* logw, void* loss, void* stats,
              void* stream) {
  if (rows == 0) return 0;
  const size_t smem = 2 * InfoNceCudaTraits::kThreads * sizeof(double);
  return with_infonce_layout(pos, logw, [&](auto m, auto w) {
    constexpr bool M = decltype(m)::value, W = decltype(w)::value;
    return launch_grid(infonce_forward_kernel<M, W, T>, blocks_for_rows(rows), InfoNceCudaTraits::kThreads, smem,
                       as_stream(stream), rows, cols, static_cast<const T*>(s), static_cast<const T*>(pos),
                       static_cast<const T*>(logw), static_cast<T*>(loss), static_cast<T*>(stats));
  });
}

template <class T>
int backward_t(int64_t rows, int64_t cols, const void* s, const void* pos, const void* logw, const void* stats,
               const void* g, void* gs, void* gw, void* stream) {
  if (rows == 0 || cols == 0 || (!gs && !gw)) return 0;
  return with_infonce_layout(pos, logw, [&](auto m, auto w) {
    constexpr bool M = decltype(m)::value, W = decltype(w)::value;
    return launch_grid(infonce_backward_kernel<M, W, T>, blocks_for_rows(rows), InfoNceCudaTraits::kThreads, 0,
                       as_stream(stream), rows, cols, static_cast<const T*>(s), static_cast<const T*>(pos),
                       static_cast<const T*>(logw), static_cast<const T*>(stats), static_cast<const T*>(g),
                       static_cast<T*>(gs), static_cast<T*>(gw));
  });
}

}  // namespace

int infonce_forward(int dtype, int64_t rows, int64_t cols, const void* s, const void* pos, const void* logw,
                    void* loss, void* stats, void* stream) {
  if (dtype == MK_F32) return forward_t<float>(rows, cols, s, pos, logw, loss, stats, stream);
  if (dtype == MK_F64) return forward_t<double>(rows, cols, s, pos, logw, loss, stats, stream);
  return KERNEL_UNSUPPORTED;
}

int infonce_backward(int dtype, int64_t rows, int64_t cols, const void* s, const void* pos, const void* logw,
                     const void* stats, const void* g, void* grad_s, void* grad_logw, void* stream) {
  if (dtype == MK_F32) return backward_t<float>(rows, cols, s, pos, logw, stats, g, grad_s, grad_logw, stream);
  if (dtype == MK_F64) return backward_t<double>(rows, cols, s, pos, logw, stats, g, grad_s, grad_logw, stream);
  return KERNEL_UNSUPPORTED;
}

}  // namespace cuda
}  // namespace mk
