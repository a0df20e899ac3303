// C ABI of the linear-attention family: validation, workspace, dispatch.
#include <omp.h>

#include <cinttypes>
#include <vector>

#include "common.h"

using namespace mk::native;
using mk::KernelTable;

namespace {
// Per-thread scratch for the CPU kernel, grown on demand and reused (freed at thread exit).
void* cpu_workspace(int64_t bytes) {
  thread_local std::vector<char> buf;
  if (int64_t(buf.size()) < bytes) buf.resize(size_t(bytes));
  return buf.data();
}
}  // namespace

extern "C" {

int mk_linear_attention_product_forward(int device, int dtype, int64_t groups, int64_t nq,
                                        int64_t nk, int64_t dk, int64_t dv, const void* q,
                                        const void* k, const void* v, void* out, int mask,
                                        void* stream) {
  const char* op = "mk_linear_attention_product_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_nonneg(op, "groups", groups));
  MK_CHECK(check_nonneg(op, "nq", nq));
  MK_CHECK(check_nonneg(op, "nk", nk));
  if (dk < 1 || dv < 1 || dk > 1024 || dv > 1024)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: head dims dk = %" PRId64 ", dv = %" PRId64 " outside [1, 1024]", op, dk, dv);
  if (mask < 0 || mask > 2)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: mask must be 0 (none), 1 (causal) or 2 (anti-causal), got %d", op, mask);
  if (mask != 0 && nq != nk)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: causal masks need nq == nk, got nq = %" PRId64 ", nk = %" PRId64, op, nq, nk);
  MK_CHECK(check_ptr(op, "q", q, groups * nq * dk));
  MK_CHECK(check_ptr(op, "k", k, groups * nk * dk));
  MK_CHECK(check_ptr(op, "v", v, groups * nk * dv));
  MK_CHECK(check_ptr(op, "out", out, groups * nq * dv));
  if (groups * nq * dv == 0) return MK_OK;
  if (nk == 0) return kernel_status(op, device, t->fill(dtype, groups * nq * dv, out, 0.0, stream));
  void* ws = nullptr;
  if (device == MK_DEVICE_CPU) {
    const int64_t elems = t->linear_attention_workspace(dk, dv, omp_get_max_threads());
    ws = cpu_workspace(elems * mk::dtype_size(dtype));
  }
  return kernel_status(op, device, t->linear_attention(dtype, groups, nq, nk, dk, dv, q, k, v, out, mask, ws, stream));
}

int mk_linear_attention_momentum_forward(int device, int dtype, int64_t groups, int64_t n,
                                         int64_t d, const void* v, void* out, double decay,
                                         int reverse, void* stream) {
  const char* op = "mk_linear_attention_momentum_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_dtype(op, device, dtype));
  MK_CHECK(check_nonneg(op, "groups", groups));
  MK_CHECK(check_nonneg(op, "n", n));
  MK_CHECK(check_nonneg(op, "d", d));
  if (!(decay >= 0.0 && decay <= 1.0))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: decay %g outside [0, 1]", op, decay);
  MK_CHECK(check_ptr(op, "v", v, groups * n * d));
  MK_CHECK(check_ptr(op, "out", out, groups * n * d));
  if (groups * n * d == 0) return MK_OK;
  return kernel_status(op, device, t->linear_attention_momentum(dtype, groups, n, d, v, out, decay, reverse ? 1 : 0, stream));
}

}  // extern "C"
