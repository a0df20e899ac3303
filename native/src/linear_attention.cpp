// C ABI of the linear-attention family: validation, dispatch. The CPU kernel's scratch comes from
// the caller (the workspace protocol of metakernels.h).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <utility>
#include <cinttypes>
#include <mutex>
#include <string>

#include "common.h"
#include "mk/linear_attention_choice.h"

using namespace mk::native;
using mk::KernelTable;
using mk::LinearAttentionLayout;

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

}  // extern "C"

namespace {
// Operand s of n rows of d columns as strided groups.
StridedGroups groups_of(const LinearAttentionLayout& l, const int64_t* s, int64_t n, int64_t d) {
  return StridedGroups{l.batch, l.heads, n, d, {s[0], s[1], s[2]}};
}

int check_strides(const char* op, const char* name, const int64_t* s) {
  if (s[0] < 0 || s[1] < 0 || s[2] < 0)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s strides (%" PRId64 ", %" PRId64 ", %" PRId64 ") must not be negative",
                op, name, s[0], s[1], s[2]);
  return MK_OK;
}

// A strided operand as contiguous groups in device scratch (CUDA), through the table's strided copy.
int pack(const char* op, const KernelTable* t, int dtype, const LinearAttentionLayout& l, const int64_t* s,
         int64_t n, int64_t d, const void* src, void* dst, bool to_packed, void* stream) {
  const int64_t shape[4] = {l.batch, l.heads, n, d};
  const int64_t strided[4] = {s[0], s[1], s[2], 1};
  const int64_t packed[4] = {l.heads * n * d, n * d, d, 1};
  return kernel_status(op, MK_DEVICE_CUDA,
                       to_packed ? t->copy_strided(dtype, 4, shape, src, strided, dst, packed, stream)
                                 : t->copy_strided(dtype, 4, shape, src, packed, dst, strided, stream));
}

int product(const char* op, int device, int dtype, LinearAttentionLayout l, int64_t nq, int64_t nk, int64_t dk,
            int64_t dv, const void* q, const void* k, const void* v, void* out, int mask, void* workspace,
            int64_t workspace_bytes, void* stream) {
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(check_float_or_half_dtype(op, device, dtype));
  MK_CHECK(check_nonneg(op, "batch", l.batch));
  MK_CHECK(check_nonneg(op, "heads", l.heads));
  MK_CHECK(check_nonneg(op, "nq", nq));
  MK_CHECK(check_nonneg(op, "nk", nk));
  MK_CHECK(check_head_dims(op, dk, dv));
  MK_CHECK(check_strides(op, "q", l.q));
  MK_CHECK(check_strides(op, "k", l.k));
  MK_CHECK(check_strides(op, "v", l.v));
  MK_CHECK(check_strides(op, "out", l.out));
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
  const int64_t groups = l.batch * l.heads;
  MK_CHECK(check_ptr(op, "q", q, groups * nq * dk));
  MK_CHECK(check_ptr(op, "k", k, groups * nk * dk));
  MK_CHECK(check_ptr(op, "v", v, groups * nk * dv));
  MK_CHECK(check_ptr(op, "out", out, groups * nq * dv));
  const int64_t need = product_workspace(t, device, dtype, dk, dv);
  if (workspace_bytes < need || (need > 0 && !workspace))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: workspace of %" PRId64 " bytes, need %" PRId64, op, workspace_bytes, need);
  if (groups * nq * dv == 0) return MK_OK;
  if (!groups_of(l, l.out, nq, dv).distinct())
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: out strides (%" PRId64 ", %" PRId64 ", %" PRId64 ") over [%" PRId64 ", %" PRId64 ", %" PRId64
                ", %" PRId64 "] write some element twice",
                op, l.out[0], l.out[1], l.out[2], l.batch, l.heads, nq, dv);
  {  // out must not share memory with an input (byte ranges)
    const int64_t es = mk::dtype_size(dtype);
    const char* o0 = static_cast<const char*>(out);
    const int64_t eo = groups_of(l, l.out, nq, dv).extent();
    const struct {
      const char* name;
      const void* p;
      int64_t extent;
    } ins[3] = {{"q", q, groups_of(l, l.q, nq, dk).extent()}, {"k", k, groups_of(l, l.k, nk, dk).extent()},
                {"v", v, groups_of(l, l.v, nk, dv).extent()}};
    for (const auto& in : ins) {
      const char* i0 = static_cast<const char*>(in.p);
      if (in.extent > 0 && i0 < o0 + eo * es && o0 < i0 + in.extent * es)
        return fail(MK_ERR_INVALID_ARGUMENT, "%s: out overlaps %s", op, in.name);
    }
  }
  const bool out_packed = l.packed(l.out, nq, dv);
  if (nk == 0) {
    if (out_packed) return kernel_status(op, device, t->fill(dtype, groups * nq * dv, out, 0.0, stream));
    return zero_strided(op, t, device, dtype, groups_of(l, l.out, nq, dv), out, stream);
  }
  if (device != MK_DEVICE_CUDA)
    return kernel_status(op, device,
                         t->linear_attention_strided(dtype, &l, nq, nk, dk, dv, q, k, v, out, mask, workspace, stream));
  // CUDA: the kernels take packed groups; strided operands go through device scratch (allocated for
  // the call's stream, freed when the call returns: see the chunk states below).
  const int64_t es = mk::dtype_size(dtype);
  struct Operand {
    const int64_t* s;
    int64_t n, d;
    const void* src;
    void* scratch;
  } ops[4] = {{l.q, nq, dk, q, nullptr}, {l.k, nk, dk, k, nullptr}, {l.v, nk, dv, v, nullptr},
              {l.out, nq, dv, out, nullptr}};
  int st = MK_OK;
  for (auto& o : ops) {
    if (l.packed(o.s, o.n, o.d)) continue;
    o.scratch = mk_device_alloc_on(groups * o.n * o.d * es, stream);
    if (!o.scratch) {
      st = fail(MK_ERR_INTERNAL, "%s: no device memory for a packed copy of a strided operand (%" PRId64 " bytes)", op,
                groups * o.n * o.d * es);
      break;
    }
    if (&o != &ops[3]) st = pack(op, t, dtype, l, o.s, o.n, o.d, o.src, o.scratch, true, stream);
    if (st != MK_OK) break;
  }
  if (st == MK_OK) {
    // the chunk states of the chunk-parallel form go to scratch from the device caching allocator,
    // allocated for the call's stream and freed when the call returns (the stream-aware cache hands
    // it to this stream again at once, to another only after the event recorded at the free; see
    // mk_dense_reduce_forward). Without it (out of device memory, or a state per group over the
    // kernel's budget) the kernel runs its sequential form: slower, its sums in another fixed order.
    const int64_t scratch = t->linear_attention_scratch(dtype, groups, nq, nk, dk, dv, mask);
    void* ws = scratch > 0 ? mk_device_alloc_on(scratch, stream) : nullptr;
    if (scratch > 0 && !ws) clear_error();
    const void* qp = ops[0].scratch ? ops[0].scratch : q;
    const void* kp = ops[1].scratch ? ops[1].scratch : k;
    const void* vp = ops[2].scratch ? ops[2].scratch : v;
    void* op_out = ops[3].scratch ? ops[3].scratch : out;
    st = kernel_status(op, device, t->linear_attention(dtype, groups, nq, nk, dk, dv, qp, kp, vp, op_out, mask | flags,
                                                       ws, stream));
    if (ws) mk_device_free(ws);
    if (st == MK_OK && ops[3].scratch) st = pack(op, t, dtype, l, l.out, nq, dv, ops[3].scratch, out, false, stream);
  }
  for (auto& o : ops)
    if (o.scratch) mk_device_free(o.scratch);
  return st;
}
}  // namespace

extern "C" {

int mk_linear_attention_product_forward(int device, int dtype, int64_t groups, int64_t nq,
                                        int64_t nk, int64_t dk, int64_t dv, const void* q,
                                        const void* k, const void* v, void* out, int mask,
                                        void* workspace, int64_t workspace_bytes, void* stream) {
  return product("mk_linear_attention_product_forward", device, dtype,
                 LinearAttentionLayout::contiguous(groups, nq, nk, dk, dv), nq, nk, dk, dv, q, k, v, out, mask,
                 workspace, workspace_bytes, stream);
}

int mk_linear_attention_product_strided_forward(int device, int dtype, int64_t batch, int64_t heads,
                                                int64_t nq, int64_t nk, int64_t dk, int64_t dv, const void* q,
                                                const int64_t* q_strides, const void* k,
                                                const int64_t* k_strides, const void* v,
                                                const int64_t* v_strides, void* out,
                                                const int64_t* out_strides, int mask, void* workspace,
                                                int64_t workspace_bytes, void* stream) {
  const char* op = "mk_linear_attention_product_strided_forward";
  LinearAttentionLayout l = LinearAttentionLayout::contiguous(batch * heads, nq, nk, dk, dv);
  l.batch = batch;
  l.heads = heads;
  const int64_t* given[4] = {q_strides, k_strides, v_strides, out_strides};
  int64_t* dst[4] = {l.q, l.k, l.v, l.out};
  const int64_t rows[4] = {nq, nk, nk, nq}, cols[4] = {dk, dk, dv, dv};
  for (int i = 0; i < 4; ++i) {
    if (given[i]) {
      for (int j = 0; j < 3; ++j) dst[i][j] = given[i][j];
    } else {  // NULL: contiguous [batch, heads, n, d]
      dst[i][0] = heads * rows[i] * cols[i];
      dst[i][1] = rows[i] * cols[i];
      dst[i][2] = cols[i];
    }
  }
  return product(op, device, dtype, l, nq, nk, dk, dv, q, k, v, out, mask, workspace, workspace_bytes, stream);
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
