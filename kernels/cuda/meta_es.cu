// Antithetic evolution strategies on CUDA, the twins of kernels/cpu/meta_es.cpp (same signatures,
// mk/kernels.inc; the noise: mk/meta_batched.h, Philox-4x32-10 and Box–Muller in float). Built
// with --fmad=false (cmake) and the noise written with _rn intrinsics, so every product and sum is
// rounded as on the CPU (-ffp-contract=off): ε and both kernels' results are the CPU twin's bits.
//
// One thread per Philox group: its four normals are the indices 64 (g >> 4) + 16 i + (g & 15), so a
// warp's 32 threads write two runs of 16 consecutive elements per word (coalesced).
// perturb: a grid-stride loop over pairs × groups, each thread writing θ ± sε (s = T(σ), in T).
// combine: a grid-stride loop over the groups; each thread sums (w⁺_k - w⁻_k) ε[k, j] over the
// pairs in order, in double, regenerating ε: no atomics, no stored noise. The grid depends on the
// sizes alone. Launched through cudaLaunchKernelEx, so both run under the host emulator.
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"
#include "mk/kernels.h"
#include "mk/meta_batched.h"

namespace mk {
namespace cuda {

struct EsCudaTraits {
  static constexpr int kThreads = 256;
  static constexpr int64_t kMaxBlocks = 65535;
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps, one block");
};

namespace {

// The groups of n indices: 16 per block of 64 (mk/meta_batched.h), the last block's included whole.
MK_HD int64_t es_groups(int64_t n) { return (n + 63) / 64 * 16; }

// The index of word i of group g.
MK_HD int64_t es_index(int64_t g, int i) { return (g >> 4) * 64 + 16 * i + (g & 15); }

template <class T>
__global__ void __launch_bounds__(EsCudaTraits::kThreads)
    es_perturb_kernel(uint64_t seed, uint64_t generation, int64_t pairs, int64_t n, const T* theta, double sigma,
                      T* out) {
  const int64_t groups = es_groups(n), total = pairs * groups;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const T s = T(sigma);
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += stride) {
    const int64_t k = t / groups, g = t - k * groups;
    float z[4];
    es_normal4(es_pair_key(seed, generation, uint64_t(k)), uint64_t(g), z);
    T* plus = out + (2 * k) * n;
    T* minus = plus + n;
    for (int i = 0; i < 4; ++i) {
      const int64_t j = es_index(g, i);
      if (j < n) {
        const T e = s * T(z[i]);
        const T c = theta ? theta[j] : T(0);
        plus[j] = c + e;
        minus[j] = c - e;
      }
    }
  }
}

template <class T>
__global__ void __launch_bounds__(EsCudaTraits::kThreads)
    es_combine_kernel(uint64_t seed, uint64_t generation, int64_t pairs, int64_t n, const T* w, double scale,
                      const T* theta, T* out) {
  const int64_t groups = es_groups(n);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < groups; g += stride) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t k = 0; k < pairs; ++k) {
      const double d = double(w[2 * k]) - double(w[2 * k + 1]);
      float z[4];
      es_normal4(es_pair_key(seed, generation, uint64_t(k)), uint64_t(g), z);
      for (int i = 0; i < 4; ++i) acc[i] = acc[i] + d * double(z[i]);
    }
    for (int i = 0; i < 4; ++i) {
      const int64_t j = es_index(g, i);
      if (j < n) {
        const double c = theta ? double(theta[j]) : 0.0;
        out[j] = T(c + scale * acc[i]);
      }
    }
  }
}

int64_t es_blocks(int64_t work) {
  const int64_t b = (work + EsCudaTraits::kThreads - 1) / EsCudaTraits::kThreads;
  return b < 1 ? 1 : (b > EsCudaTraits::kMaxBlocks ? EsCudaTraits::kMaxBlocks : b);
}

template <class... KArgs, class... Args>
int es_launch(void (*kernel)(KArgs...), int64_t work, void* stream, Args... args) {
  return launch_grid(kernel, es_blocks(work), EsCudaTraits::kThreads, 0, as_stream(stream), args...);
}

}  // namespace

int meta_es_perturb(int dtype, uint64_t seed, int64_t generation, int64_t pairs, int64_t n, const void* theta,
                    double sigma, void* out, void* stream) {
  if (pairs == 0 || n == 0) return 0;
  if (dtype == MK_F32)
    return es_launch(es_perturb_kernel<float>, pairs * es_groups(n), stream, seed, uint64_t(generation), pairs, n,
                     static_cast<const float*>(theta), sigma, static_cast<float*>(out));
  if (dtype == MK_F64)
    return es_launch(es_perturb_kernel<double>, pairs * es_groups(n), stream, seed, uint64_t(generation), pairs, n,
                     static_cast<const double*>(theta), sigma, static_cast<double*>(out));
  return KERNEL_UNSUPPORTED;
}

int meta_es_combine(int dtype, uint64_t seed, int64_t generation, int64_t pairs, int64_t n, const void* weights,
                    double scale, const void* theta, void* out, void* stream) {
  if (n == 0) return 0;
  if (dtype == MK_F32)
    return es_launch(es_combine_kernel<float>, es_groups(n), stream, seed, uint64_t(generation), pairs, n,
                     static_cast<const float*>(weights), scale, static_cast<const float*>(theta),
                     static_cast<float*>(out));
  if (dtype == MK_F64)
    return es_launch(es_combine_kernel<double>, es_groups(n), stream, seed, uint64_t(generation), pairs, n,
                     static_cast<const double*>(weights), scale, static_cast<const double*>(theta),
                     static_cast<double*>(out));
  return KERNEL_UNSUPPORTED;
}

}  // namespace cuda
}  // namespace mk
