// C ABI of the batched meta kernels: per-example gradient norms of a linear map and antithetic
// evolution strategies (metakernels.h; the maths: kernels/include/mk/meta_batched.h). Every
// argument is checked before a kernel runs; a refusal names the call and its sizes.
#include <cinttypes>
#include <cmath>

#include "common.h"

using namespace mk::native;
using mk::KernelTable;

namespace {

bool overlap(const void* a, int64_t abytes, const void* b, int64_t bbytes) {
  if (!a || !b || abytes <= 0 || bbytes <= 0) return false;
  const uintptr_t alo = uintptr_t(a), blo = uintptr_t(b);
  return alo < blo + uintptr_t(bbytes) && blo < alo + uintptr_t(abytes);
}

bool mul_overflows(int64_t a, int64_t b) { return a != 0 && b > INT64_MAX / a; }

int check_es(const char* op, int device, int dtype, int64_t generation, int64_t pairs, int64_t n) {
  MK_CHECK(check_device(op, device));
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_no_half_dtype(op, device, dtype));
  MK_CHECK(check_nonneg(op, "generation", generation));
  MK_CHECK(check_nonneg(op, "n", n));
  if (pairs < 1)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: pairs = %" PRId64 " (a population of %" PRId64 " members); expected at least one antithetic pair",
                op, pairs, 2 * pairs);
  if (mul_overflows(2 * pairs, n) || mul_overflows(2 * pairs * n, 8))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %" PRId64 " pairs x %" PRId64 " parameters overflow", op, pairs, n);
  return MK_OK;
}

}  // namespace

extern "C" {

int mk_meta_per_example_linear_norm(int device, int dtype, int64_t batch, int64_t steps, int64_t in_features,
                                    int64_t out_features, const void* x, const void* grad_out, void* norm2,
                                    void* stream) {
  const char* op = "mk_meta_per_example_linear_norm";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_device(op, device));
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_no_half_dtype(op, device, dtype));
  MK_CHECK(check_nonneg(op, "batch", batch));
  MK_CHECK(check_nonneg(op, "steps", steps));
  MK_CHECK(check_nonneg(op, "in_features", in_features));
  MK_CHECK(check_nonneg(op, "out_features", out_features));
  if (mul_overflows(batch, steps) || mul_overflows(batch * steps, in_features + out_features) ||
      mul_overflows(batch * steps * (in_features + out_features), 8))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: x [%" PRId64 ", %" PRId64 ", %" PRId64 "] overflows", op, batch, steps,
                in_features);
  const int64_t es = dtype == MK_F64 ? 8 : 4;
  const int64_t nx = batch * steps * in_features, ng = batch * steps * out_features;
  MK_CHECK(check_ptr(op, "x", x, nx));
  MK_CHECK(check_ptr(op, "grad_out", grad_out, ng));
  MK_CHECK(check_ptr(op, "norm2", norm2, batch));
  if (overlap(norm2, batch * es, x, nx * es) || overlap(norm2, batch * es, grad_out, ng * es))
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: norm2 [%" PRId64 "] overlaps x [%" PRId64 ", %" PRId64 ", %" PRId64 "] or grad_out [%" PRId64
                ", %" PRId64 ", %" PRId64 "]",
                op, batch, batch, steps, in_features, batch, steps, out_features);
  if (batch == 0) return MK_OK;
  if (steps == 0 || in_features == 0 || out_features == 0)
    return kernel_status(op, device, t->fill(dtype, batch, norm2, 0.0, stream));
  return kernel_status(
      op, device, t->meta_per_example_norm(dtype, batch, steps, in_features, out_features, x, grad_out, norm2, stream));
}

int mk_meta_es_perturb(int device, int dtype, int64_t seed, int64_t generation, int64_t pairs, int64_t n,
                       const void* theta, double sigma, void* out, void* stream) {
  const char* op = "mk_meta_es_perturb";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_es(op, device, dtype, generation, pairs, n));
  if (!(sigma > 0.0) || !std::isfinite(sigma))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: sigma = %g (expected finite and > 0)", op, sigma);
  const int64_t es = dtype == MK_F64 ? 8 : 4;
  MK_CHECK(check_ptr(op, "out", out, 2 * pairs * n));
  if (overlap(out, 2 * pairs * n * es, theta, n * es))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: out [%" PRId64 ", %" PRId64 "] overlaps theta [%" PRId64 "]", op,
                2 * pairs, n, n);
  if (n == 0) return MK_OK;
  return kernel_status(op, device,
                       t->meta_es_perturb(dtype, uint64_t(seed), generation, pairs, n, theta, sigma, out, stream));
}

int mk_meta_es_combine(int device, int dtype, int64_t seed, int64_t generation, int64_t pairs, int64_t n,
                       const void* weights, double scale, const void* theta, void* out, void* stream) {
  const char* op = "mk_meta_es_combine";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_es(op, device, dtype, generation, pairs, n));
  if (!std::isfinite(scale)) return fail(MK_ERR_INVALID_ARGUMENT, "%s: scale = %g is not finite", op, scale);
  const int64_t es = dtype == MK_F64 ? 8 : 4;
  MK_CHECK(check_ptr(op, "weights", weights, 2 * pairs));
  MK_CHECK(check_ptr(op, "out", out, n));
  if (overlap(out, n * es, weights, 2 * pairs * es))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: out [%" PRId64 "] overlaps weights [%" PRId64 "]", op, n, 2 * pairs);
  if (theta != out && overlap(out, n * es, theta, n * es))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: out [%" PRId64 "] overlaps theta without being it (in place)", op, n);
  if (n == 0) return MK_OK;
  return kernel_status(
      op, device, t->meta_es_combine(dtype, uint64_t(seed), generation, pairs, n, weights, scale, theta, out, stream));
}

}  // extern "C"
