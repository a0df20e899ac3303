// Antithetic evolution strategies on the CPU (the oracle of kernels/cuda/meta_es.cu): the
// population's parameters and the fused update, each regenerating the noise ε[k, j] from
// (seed, generation, k, j) (mk/meta_batched.h). Compiled with -ffp-contract=off (cmake), so the
// arithmetic is the same IEEE operations as the CUDA kernels' (built with --fmad=false): the
// results are bitwise those of CUDA, and independent of the thread count (every element is
// computed by one thread, the sum over pairs in order).
#include <omp.h>

#include "mk/cpu_parallel.h"
#include "mk/kernels.h"
#include "mk/meta_batched.h"

namespace mk {
namespace cpu {
namespace {

// Indices per task: the unit of the OpenMP split (each element is independent).
constexpr int64_t kEsBlock = 1024;

template <class T>
void perturb_t(uint64_t seed, uint64_t generation, int64_t pairs, int64_t n, const T* theta, double sigma, T* out) {
  const int64_t blocks = (n + kEsBlock - 1) / kEsBlock;
  const bool par = parallel_worth(pairs * n * 8);
#pragma omp parallel for collapse(2) schedule(static) if (par)
  for (int64_t k = 0; k < pairs; ++k)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const uint64_t key = es_pair_key(seed, generation, uint64_t(k));
      T* plus = out + (2 * k) * n;
      T* minus = plus + n;
      const int64_t end = blk * kEsBlock + kEsBlock < n ? blk * kEsBlock + kEsBlock : n;
      for (int64_t j = blk * kEsBlock; j < end; ++j) {
        const double e = sigma * es_noise<T>(key, uint64_t(j));
        const double c = theta ? double(theta[j]) : 0.0;
        plus[j] = T(c + e);
        minus[j] = T(c - e);
      }
    }
}

template <class T>
void combine_t(uint64_t seed, uint64_t generation, int64_t pairs, int64_t n, const T* w, double scale, const T* theta,
               T* out) {
  const int64_t blocks = (n + kEsBlock - 1) / kEsBlock;
  const bool par = parallel_worth(pairs * n * 8);
#pragma omp parallel for schedule(static) if (par)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t lo = blk * kEsBlock, hi = lo + kEsBlock < n ? lo + kEsBlock : n;
    double acc[kEsBlock];
    for (int64_t j = lo; j < hi; ++j) acc[j - lo] = 0.0;
    for (int64_t k = 0; k < pairs; ++k) {
      const double d = double(w[2 * k]) - double(w[2 * k + 1]);
      const uint64_t key = es_pair_key(seed, generation, uint64_t(k));
      for (int64_t j = lo; j < hi; ++j) acc[j - lo] += d * es_noise<T>(key, uint64_t(j));
    }
    for (int64_t j = lo; j < hi; ++j) {
      const double c = theta ? double(theta[j]) : 0.0;
      out[j] = T(c + scale * acc[j - lo]);
    }
  }
}

}  // namespace

int meta_es_perturb(int dtype, uint64_t seed, int64_t generation, int64_t pairs, int64_t n, const void* theta,
                    double sigma, void* out, void* stream) {
  if (dtype == MK_F32)
    perturb_t<float>(seed, uint64_t(generation), pairs, n, static_cast<const float*>(theta), sigma,
                     static_cast<float*>(out));
  else if (dtype == MK_F64)
    perturb_t<double>(seed, uint64_t(generation), pairs, n, static_cast<const double*>(theta), sigma,
                      static_cast<double*>(out));
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

int meta_es_combine(int dtype, uint64_t seed, int64_t generation, int64_t pairs, int64_t n, const void* weights,
                    double scale, const void* theta, void* out, void* stream) {
  if (dtype == MK_F32)
    combine_t<float>(seed, uint64_t(generation), pairs, n, static_cast<const float*>(weights), scale,
                     static_cast<const float*>(theta), static_cast<float*>(out));
  else if (dtype == MK_F64)
    combine_t<double>(seed, uint64_t(generation), pairs, n, static_cast<const double*>(weights), scale,
                      static_cast<const double*>(theta), static_cast<double*>(out));
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

}  // namespace cpu
}  // namespace mk
