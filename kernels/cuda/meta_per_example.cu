// Per-example gradient norms of a linear map on CUDA, the twin of kernels/cpu/meta_per_example.cpp
// (same signature, mk/kernels.inc; the maths: mk/meta_batched.h).
//
// One block per example: thread i takes the rows t = i, i + blockDim, ... and sums, in double,
// (x_t · x_t)(g_t · g_t) + 2 Σ_{s<t} (x_t · x_s)(g_t · g_s); the block adds its threads' sums by
// butterfly shuffles within each warp and the warps in order through shared memory. The grid and
// the order depend on the shape alone: no atomics, the same bits on every run and every GPU (not
// the CPU twin's bits: the CPU adds the rows in order). Launched through cudaLaunchKernelEx with
// dynamic shared memory only, so it also runs under the host emulator of tests/cuda-emu.
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"
#include "mk/kernels.h"
#include "mk/meta_batched.h"

namespace mk {
namespace cuda {

struct PerExampleCudaTraits {
  static constexpr int kThreads = 128;
  static constexpr int kWarps = kThreads / 32;
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps, one block");
};

// Dynamic shared memory: [kWarps] doubles.
extern __shared__ __align__(16) unsigned char mk_per_example_smem[];

namespace {

using PeTraits = PerExampleCudaTraits;

template <class T>
__device__ __forceinline__ double dot_rows(const T* a, const T* b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return s;
}

template <class T>
__global__ void __launch_bounds__(PeTraits::kThreads)
    per_example_norm_kernel(int64_t steps, int64_t in, int64_t out, const T* x, const T* g, T* norm2) {
  const int64_t b = blockIdx.x;
  const T* xb = x + b * steps * in;
  const T* gb = g + b * steps * out;
  double acc = 0.0;
  for (int64_t t = threadIdx.x; t < steps; t += blockDim.x) {
    const T* xt = xb + t * in;
    const T* gt = gb + t * out;
    double off = 0.0;
    for (int64_t s = 0; s < t; ++s) off += dot_rows(xt, xb + s * in, in) * dot_rows(gt, gb + s * out, out);
    acc += dot_rows(xt, xt, in) * dot_rows(gt, gt, out) + 2.0 * off;
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  double* const sm = reinterpret_cast<double*>(mk_per_example_smem);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  if (lane == 0) sm[warp] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < PeTraits::kWarps; ++w) total += sm[w];
    norm2[b] = T(total);
  }
}

template <class T>
int per_example_norm_t(int64_t batch, int64_t steps, int64_t in, int64_t out, const void* x, const void* g, void* norm2,
                       void* stream) {
  if (batch == 0) return 0;
  if (batch > INT32_MAX) return KERNEL_UNSUPPORTED;
  return launch_grid(per_example_norm_kernel<T>, batch, PeTraits::kThreads, sizeof(double) * PeTraits::kWarps,
                     as_stream(stream), steps, in, out, static_cast<const T*>(x), static_cast<const T*>(g),
                     static_cast<T*>(norm2));
}

}  // namespace

int meta_per_example_norm(int dtype, int64_t batch, int64_t steps, int64_t in, int64_t out, const void* x,
                          const void* g, void* norm2, void* stream) {
  if (dtype == MK_F32) return per_example_norm_t<float>(batch, steps, in, out, x, g, norm2, stream);
  if (dtype == MK_F64) return per_example_norm_t<double>(batch, steps, in, out, x, g, norm2, stream);
  return KERNEL_UNSUPPORTED;
}

}  // namespace cuda
}  // namespace mk
