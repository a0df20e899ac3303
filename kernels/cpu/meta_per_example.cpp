// Per-example gradient norms of a linear map on the CPU (the oracle of
// kernels/cuda/meta_per_example.cu): norm2[b] = Σ_{t,s} (x_bt · x_bs)(g_bt · g_bs), mk/meta_batched.h.
//
// One example is reduced by one thread, in double, over t then s in order, using the symmetry
// (the diagonal once, the pairs s < t twice): the result does not depend on the thread count.
// Cost per example: T² (in + out) / 2 multiply-adds, against T·in·out to form g_bᵀ x_b; callers
// with T² > 2·in·out / (in + out) may prefer the materialised gradient.
#include <omp.h>

#include "mk/cpu_parallel.h"
#include "mk/kernels.h"
#include "mk/meta_batched.h"

namespace mk {
namespace cpu {
namespace {

template <class T>
double dot(const T* a, const T* b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return s;
}

template <class T>
void per_example_norm_t(int64_t batch, int64_t steps, int64_t in, int64_t out, const T* x, const T* g, T* norm2) {
  const bool par = parallel_worth(batch * steps * steps * (in + out));
  parallel_for(batch, par, [&](int64_t b) {
    const T* xb = x + b * steps * in;
    const T* gb = g + b * steps * out;
    double acc = 0.0;
    for (int64_t t = 0; t < steps; ++t) {
      const T* xt = xb + t * in;
      const T* gt = gb + t * out;
      double off = 0.0;
      for (int64_t s = 0; s < t; ++s) off += dot(xt, xb + s * in, in) * dot(gt, gb + s * out, out);
      acc += dot(xt, xt, in) * dot(gt, gt, out) + 2.0 * off;
    }
    norm2[b] = T(acc);
  });
}

}  // namespace

int meta_per_example_norm(int dtype, int64_t batch, int64_t steps, int64_t in, int64_t out, const void* x,
                          const void* g, void* norm2, void* stream) {
  if (dtype == MK_F32)
    per_example_norm_t<float>(batch, steps, in, out, static_cast<const float*>(x), static_cast<const float*>(g),
                              static_cast<float*>(norm2));
  else if (dtype == MK_F64)
    per_example_norm_t<double>(batch, steps, in, out, static_cast<const double*>(x), static_cast<const double*>(g),
                               static_cast<double*>(norm2));
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

}  // namespace cpu
}  // namespace mk
