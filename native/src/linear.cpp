// C ABI of the fused linear layer (mk_dense_linear_forward / _backward) and the fused mean squared
// error (mk_dense_mse_forward / _backward): validate, then run the
// GEMMs through the matmul entry point (BLAS on the CPU, cuBLAS on CUDA, the naive kernel as the
// fallback) and the epilogue / activation-gradient kernels of the device's table
// (kernels/{cpu,cuda}/linear.*). One call per pass, so a layer costs one JNI crossing forward and
// one backward instead of the three to ten of its composed form.
#include <cinttypes>

#include "common.h"

using namespace mk::native;
using mk::KernelTable;

namespace {

int check_linear(const char* op, int device, int dtype, int act, int64_t rows, int64_t in, int64_t out, int64_t w_rs,
                 int64_t w_cs) {
  MK_CHECK(check_no_half_dtype(op, device, dtype));
  if (act < 0 || act >= MK_LINEAR_ACT_COUNT)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: unknown activation code %d (x [%" PRId64 ", %" PRId64 "], weight [%" PRId64 ", %" PRId64 "])", op,
                act, rows, in, out, in);
  MK_CHECK(check_nonneg(op, "rows", rows));
  MK_CHECK(check_nonneg(op, "in", in));
  MK_CHECK(check_nonneg(op, "out", out));
  const int64_t strides[2] = {w_rs, w_cs};
  return check_strides(op, "weight", 2, strides);
}

// Scratch from the caching allocator for the call (the device's, on the call's stream), freed on
// return; as the 16-bit copies of native/src/attention.cpp.
class Scratch {
 public:
  Scratch(int device, void* stream) : device_(device), stream_(stream) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (block_) device_ == MK_DEVICE_CPU ? mk_host_free(block_) : mk_device_free(block_);
  }
  void* get(const char* op, int64_t nbytes) {
    block_ = device_ == MK_DEVICE_CPU ? mk_host_alloc(nbytes) : mk_device_alloc_on(nbytes, stream_);
    if (!block_) fail(MK_ERR_INTERNAL, "%s: no memory for the activation gradient (%" PRId64 " bytes)", op, nbytes);
    return block_;
  }

 private:
  int device_;
  void* stream_;
  void* block_ = nullptr;
};

// What both mse entry points check: the device's kernels, the dtype, n > 0 and the two inputs.
int check_mse(const char* op, int device, int dtype, int64_t n, const void* p, const void* t, const KernelTable** k) {
  *k = kernels_for(op, device);
  if (!*k) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_no_half_dtype(op, device, dtype));
  if (n <= 0) return fail(MK_ERR_INVALID_ARGUMENT, "%s: %" PRId64 " elements (the mean of none)", op, n);
  MK_CHECK(check_ptr(op, "p", p, n));
  return check_ptr(op, "t", t, n);
}
}  // namespace

extern "C" {

int mk_dense_linear_forward(int device, int dtype, int act, int64_t rows, int64_t in, int64_t out, const void* x,
                            const void* weight, int64_t w_rs, int64_t w_cs, const void* bias, void* y, void* stream) {
  const char* op = "mk_dense_linear_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_linear(op, device, dtype, act, rows, in, out, w_rs, w_cs));
  MK_CHECK(check_ptr(op, "x", x, rows * in));
  MK_CHECK(check_ptr(op, "weight", weight, out * in));
  MK_CHECK(check_ptr(op, "y", y, rows * out));
  if (rows * out == 0) return MK_OK;
  // z = x Wᵀ into y: a [rows, in] row-major, b = Wᵀ [in, out] read through W's strides swapped
  MK_CHECK(mk_dense_matmul_forward(device, dtype, 1, rows, out, in, x, 0, in, 1, weight, 0, w_cs, w_rs, y, rows * out,
                                   stream));
  return kernel_status(op, device, t->linear_act_epilogue(dtype, act, rows, out, y, bias, stream));
}

int mk_dense_linear_backward(int device, int dtype, int act, int64_t rows, int64_t in, int64_t out, const void* grad_y,
                             const void* y, const void* x, const void* weight, int64_t w_rs, int64_t w_cs, void* grad_x,
                             void* grad_weight, void* grad_bias, void* stream) {
  const char* op = "mk_dense_linear_backward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_linear(op, device, dtype, act, rows, in, out, w_rs, w_cs));
  MK_CHECK(check_ptr(op, "grad_y", grad_y, rows * out));
  if (act != MK_LINEAR_ACT_IDENTITY) MK_CHECK(check_ptr(op, "y", y, rows * out));
  if (grad_x) MK_CHECK(check_ptr(op, "weight", weight, out * in));
  if (grad_weight) MK_CHECK(check_ptr(op, "x", x, rows * in));
  const bool products = (grad_x && rows * in > 0) || (grad_weight && out * in > 0);
  // gz = grad_y ⊙ act'(z): scratch unless the activation is the identity (gz = grad_y) or only
  // the bias gradient is wanted (the column sums form the product themselves)
  Scratch scratch(device, stream);
  const void* gz = grad_y;
  if (act != MK_LINEAR_ACT_IDENTITY && products && rows * out > 0) {
    const int64_t bytes = rows * out * (dtype == MK_F32 ? 4 : 8);
    void* buf = scratch.get(op, bytes);
    if (!buf) return MK_ERR_INTERNAL;
    MK_CHECK(kernel_status(op, device, t->linear_act_grad(dtype, act, rows, out, grad_y, y, buf, grad_bias, stream)));
    gz = buf;
  } else if (grad_bias) {
    MK_CHECK(
        kernel_status(op, device, t->linear_act_grad(dtype, act, rows, out, grad_y, y, nullptr, grad_bias, stream)));
  }
  // grad_x [rows, in] = gz [rows, out] · W [out, in]
  if (grad_x && rows * in > 0)
    MK_CHECK(mk_dense_matmul_forward(device, dtype, 1, rows, in, out, gz, 0, out, 1, weight, 0, w_rs, w_cs, grad_x,
                                     rows * in, stream));
  // grad_weight [out, in] = gzᵀ [out, rows] · x [rows, in]
  if (grad_weight && out * in > 0)
    MK_CHECK(mk_dense_matmul_forward(device, dtype, 1, out, in, rows, gz, 0, 1, out, x, 0, in, 1, grad_weight, out * in,
                                     stream));
  return MK_OK;
}

int mk_dense_mse_forward(int device, int dtype, int64_t n, const void* p, const void* t, void* out, void* stream) {
  const char* op = "mk_dense_mse_forward";
  const KernelTable* k = nullptr;
  MK_CHECK(check_mse(op, device, dtype, n, p, t, &k));
  MK_CHECK(check_ptr(op, "out", out, 1));
  // A long n is split across blocks on CUDA: the block partials go to scratch from the device
  // caching allocator for the call's stream (as mk_dense_reduce's split). Without it (out of
  // device memory) one block sums all of n: slower, and another fixed order of the same sums.
  const int64_t ws_bytes = k->mse_workspace(n);
  if (device != MK_DEVICE_CUDA || ws_bytes <= 0)
    return kernel_status(op, device, k->mse_forward(dtype, n, p, t, out, stream));
  void* ws = mk_device_alloc_on(ws_bytes, stream);
  if (!ws) clear_error();
  const int st = k->mse_forward_split(dtype, n, p, t, out, ws, ws ? ws_bytes : 0, stream);
  if (ws) mk_device_free(ws);
  return kernel_status(op, device, st);
}

int mk_dense_mse_backward(int device, int dtype, int64_t n, const void* p, const void* t, const void* g, void* grad_p,
                          void* grad_t, void* stream) {
  const char* op = "mk_dense_mse_backward";
  const KernelTable* k = nullptr;
  MK_CHECK(check_mse(op, device, dtype, n, p, t, &k));
  MK_CHECK(check_ptr(op, "g", g, 1));
  if (!grad_p && !grad_t) return MK_OK;
  return kernel_status(op, device, k->mse_backward(dtype, n, p, t, g, 2.0 / double(n), grad_p, grad_t, stream));
}

}  // extern "C"
