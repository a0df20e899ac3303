// C ABI of the fused InfoNCE rows (mk_dense_infonce_forward / _backward): validate, then run the
// device's kernel (kernels/{cpu,cuda}/infonce.*). Used by ops/InfoNce.java under
// Functional.infoNce: one call and one tape node per pass instead of the eight [rows, cols]
// temporaries of the composed form.
#include <cinttypes>

#include "common.h"

using namespace mk::native;
using mk::KernelTable;

namespace {
// What both entry points check: the device's kernels, the dtype, the sizes, s and the mask.
int check_infonce(const char* op, int device, int dtype, int64_t rows, int64_t cols, const void* s, const void* pos,
                  const void* logw, const KernelTable** k) {
  *k = kernels_for(op, device);
  if (!*k) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_no_half_dtype(op, device, dtype));
  if (rows <= 0 || cols <= 0)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: logits [%" PRId64 ", %" PRId64 "] (every row needs a column)", op, rows,
                cols);
  if (!pos && rows > cols)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: logits [%" PRId64 ", %" PRId64 "] without a mask (the diagonal as positives needs rows <= cols)",
                op, rows, cols);
  MK_CHECK(check_ptr(op, "s", s, rows * cols));
  if (pos) MK_CHECK(check_ptr(op, "pos", pos, rows * cols));
  if (logw) MK_CHECK(check_ptr(op, "logw", logw, rows * cols));
  return MK_OK;
}
}  // namespace

extern "C" {

int mk_dense_infonce_forward(int device, int dtype, int64_t rows, int64_t cols, const void* s, const void* pos,
                             const void* logw, void* loss, void* stats, void* stream) {
  const char* op = "mk_dense_infonce_forward";
  const KernelTable* k = nullptr;
  MK_CHECK(check_infonce(op, device, dtype, rows, cols, s, pos, logw, &k));
  MK_CHECK(check_ptr(op, "loss", loss, rows));
  MK_CHECK(check_ptr(op, "stats", stats, 2 * rows));
  return kernel_status(op, device, k->infonce_forward(dtype, rows, cols, s, pos, logw, loss, stats, stream));
}

int mk_dense_infonce_backward(int device, int dtype, int64_t rows, int64_t cols, const void* s, const void* pos,
                              const void* logw, const void* stats, const void* g, void* grad_s, void* grad_logw,
                              void* stream) {
  const char* op = "mk_dense_infonce_backward";
  const KernelTable* k = nullptr;
  MK_CHECK(check_infonce(op, device, dtype, rows, cols, s, pos, logw, &k));
  MK_CHECK(check_ptr(op, "stats", stats, 2 * rows));
  MK_CHECK(check_ptr(op, "g", g, rows));
  if (grad_logw && !logw)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: grad_logw asked for logits [%" PRId64 ", %" PRId64 "] without logw", op,
                rows, cols);
  return kernel_status(op, device,
                       k->infonce_backward(dtype, rows, cols, s, pos, logw, stats, g, grad_s, grad_logw, stream));
}

}  // extern "C"
