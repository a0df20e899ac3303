// C ABI of the linear-attention family: validation, dispatch. The CPU kernel's scratch comes from
// the caller (the workspace protocol of metakernels.h).
#include <omp.h>

#include <atomic>
#include <cinttypes>
#include <mutex>
#include <string>

#include "common.h"
#include "mk/linear_attention_choice.h"

using namespace mk::native;
using mk::KernelTable;

namespace {
int64_t product_workspace(const KernelTable* t, int device, int dtype, int64_t dk, int64_t dv) {
  if (device != MK_DEVICE_CPU) return 0;
  return t->linear_attention_workspace(dtype, dk, dv, omp_get_max_threads());
}

int check_head_dims(const char* op, int64_t dk, int64_t dv) {
  if (dk < 1 || dv < 1 || dk > MK_LINEAR_ATTENTION_MAX_HEAD_DIM || dv > MK_LINEAR_ATTENTION_MAX_HEAD_DIM)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: head dims dk = %" PRId64 ", dv = %" PRId64 " outside [1, %d]", op, dk, dv,
                int(MK_LINEAR_ATTENTION_MAX_HEAD_DIM));
  return MK_OK;
}
// mk_linear_attention_select's choice, native/'s copy (the CUDA library keeps its own, set through
// the kernel table); g_select_mu orders a select against an attach (linear_attention_push).
std::atomic<int> g_select_tc{0}, g_select_f32{0};
std::mutex g_select_mu;
}  // namespace

int mk::native::linear_attention_push(const KernelTable* t) {
  std::lock_guard<std::mutex> lock(g_select_mu);
  const int code = t->linear_attention_select(g_select_tc.load(), g_select_f32.load());
  return kernel_status("mk_runtime_attach_cuda (linear_attention_select)", MK_DEVICE_CUDA, code);
}

extern "C" {

int mk_linear_attention_select(int tensor_core, int f32) {
  const char* op = "mk_linear_attention_select";
  if (tensor_core < 0 || tensor_core > MK_LINEAR_SELECT_RECURRENT)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: tensor_core %d is not a choice (0 = environment/default, 1 = chunked, 2 = recurrent)", op,
                tensor_core);
  if (f32 != 0 && f32 != MK_LINEAR_SELECT_SIMT && f32 != MK_LINEAR_SELECT_X3)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: f32 %d is not a choice (0 = environment/default, 1 = simt, 3 = x3)",
                op, f32);
  std::lock_guard<std::mutex> lock(g_select_mu);
  const KernelTable* cpu = kernels_for(op, MK_DEVICE_CPU);
  MK_CHECK(kernel_status(op, MK_DEVICE_CPU, cpu->linear_attention_select(tensor_core, f32)));
  const KernelTable* cuda = attached_cuda();
  if (cuda) MK_CHECK(kernel_status(op, MK_DEVICE_CUDA, cuda->linear_attention_select(tensor_core, f32)));
  g_select_tc.store(tensor_core);
  g_select_f32.store(f32);
  return MK_OK;
}

int mk_linear_attention_selected(int* tensor_core, int* f32) {
  std::lock_guard<std::mutex> lock(g_select_mu);
  if (tensor_core) *tensor_core = g_select_tc.load();
  if (f32) *f32 = g_select_f32.load();
  return MK_OK;
}

const char* mk_linear_attention_forms(void) {
  static std::string text;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const int sel_tc = g_select_tc.load(), sel_f32 = g_select_f32.load();
  const int env_tc = mk::linear_attention_tc_env(), env_f32 = mk::linear_attention_f32_env();
  auto tc_name = [](int v) { return v == mk::MK_LINEAR_RECURRENT ? "recurrent" : "chunked"; };
  auto f32_name = [](int v) { return v == mk::MK_LINEAR_F32_X3 ? "x3" : "simt"; };
  const mk::LinearAttentionChoice c = mk::linear_attention_choose(sel_tc, sel_f32);
  text = std::string("MK_LINEAR_TC=") + (env_tc ? tc_name(env_tc) : "(unset)") +
         ", MK_LINEAR_F32=" + (env_f32 ? f32_name(env_f32) : "(unset)") +
         (sel_tc || sel_f32 ? std::string(" (override: tensor cores ") + (sel_tc ? tc_name(sel_tc) : "env") + ", F32 " +
                                  (sel_f32 ? f32_name(sel_f32) : "env") + ")"
                            : std::string()) +
         "; products: BF16/F16 and TF32 " + tc_name(c.tensor_core) + ", F32 " +
         (c.f32 == mk::MK_LINEAR_F32_X3 ? "x3 (recurrent, 3xTF32)" : "simt (chunked)") +
         " (recurrent and x3 where dk <= 128 and the tiles fit: masked products with nq == nk walk, unmasked ones"
         " take the state form; opt-in, not yet timed on a GPU)";
  return text.c_str();
}

int64_t mk_linear_attention_product_workspace(int device, int dtype, int64_t dk, int64_t dv) {
  const char* op = "mk_linear_attention_product_workspace";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return -1;
  if (check_float_or_half_dtype(op, device, dtype) != MK_OK || check_head_dims(op, dk, dv) != MK_OK) return -1;
  return product_workspace(t, device, dtype, dk, dv);
}

int mk_linear_attention_product_forward(int device, int dtype, int64_t groups, int64_t nq,
                                        int64_t nk, int64_t dk, int64_t dv, const void* q,
                                        const void* k, const void* v, void* out, int mask,
                                        void* workspace, int64_t workspace_bytes, void* stream) {
  const char* op = "mk_linear_attention_product_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_or_half_dtype(op, device, dtype));
  MK_CHECK(check_nonneg(op, "groups", groups));
  MK_CHECK(check_nonneg(op, "nq", nq));
  MK_CHECK(check_nonneg(op, "nk", nk));
  MK_CHECK(check_head_dims(op, dk, dv));
  // the TF32 flag: asked for per call, or by the runtime's one switch (F32 on CUDA only)
  const int tf32 = mask & MK_LINEAR_MASK_TF32;
  const int flags = device == MK_DEVICE_CUDA && dtype == MK_F32 && (tf32 || mk_runtime_allow_tf32())
                        ? int(MK_LINEAR_MASK_TF32)
                        : 0;
  if (tf32) mask &= ~MK_LINEAR_MASK_TF32;
  if (mask != MK_LINEAR_MASK_NONE && mask != MK_LINEAR_MASK_CAUSAL && mask != MK_LINEAR_MASK_ANTICAUSAL)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: mask must be 0 (none), 1 (causal) or 2 (anti-causal), optionally | 4 (TF32), got %d", op,
                mask | tf32);
  if (mask != MK_LINEAR_MASK_NONE && nq != nk)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: causal masks need nq == nk, got nq = %" PRId64 ", nk = %" PRId64, op, nq, nk);
  MK_CHECK(check_ptr(op, "q", q, groups * nq * dk));
  MK_CHECK(check_ptr(op, "k", k, groups * nk * dk));
  MK_CHECK(check_ptr(op, "v", v, groups * nk * dv));
  MK_CHECK(check_ptr(op, "out", out, groups * nq * dv));
  const int64_t need = product_workspace(t, device, dtype, dk, dv);
  if (workspace_bytes < need || (need > 0 && !workspace))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: workspace of %" PRId64 " bytes, need %" PRId64, op, workspace_bytes, need);
  if (groups * nq * dv == 0) return MK_OK;
  if (nk == 0) return kernel_status(op, device, t->fill(dtype, groups * nq * dv, out, 0.0, stream));
  if (device != MK_DEVICE_CUDA)
    return kernel_status(op, device,
                         t->linear_attention(dtype, groups, nq, nk, dk, dv, q, k, v, out, mask, workspace, stream));
  // CUDA: the chunk states of the chunk-parallel form go to scratch from the device caching
  // allocator, allocated for the call's stream and freed when the call returns (the stream-aware
  // cache hands it to this stream again at once, to another only after the event recorded at the
  // free; see mk_dense_reduce_forward). Without it (out of device memory, or a state per group over
  // the kernel's budget) the kernel runs its sequential form: slower, its sums in another fixed order.
  const int64_t scratch = t->linear_attention_scratch(dtype, groups, nq, nk, dk, dv, mask);
  void* ws = scratch > 0 ? mk_device_alloc_on(scratch, stream) : nullptr;
  if (scratch > 0 && !ws) clear_error();
  const int st = t->linear_attention(dtype, groups, nq, nk, dk, dv, q, k, v, out, mask | flags, ws, stream);
  if (ws) mk_device_free(ws);
  return kernel_status(op, device, st);
}

int mk_linear_attention_momentum_forward(int device, int dtype, int64_t groups, int64_t n,
                                         int64_t d, const void* v, void* out, double decay,
                                         int reverse, void* stream) {
  const char* op = "mk_linear_attention_momentum_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_or_half_dtype(op, device, dtype));
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
