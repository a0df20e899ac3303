// C ABI of the softmax-attention family: validation of the parameter block, then the CPU or CUDA
// kernels. Each pass names what it reads and writes (mk_attention_params in metakernels.h).
#include <omp.h>

#include <cinttypes>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"
#include "mk/attention_simt_choice.h"
#include "mk/attention_tc_choice.h"
#include "mk/attention_simt_choice.h"

using namespace mk::native;
using mk::AttentionParams;
using mk::KernelTable;

namespace {

int threads_for(int device) { return device == MK_DEVICE_CPU ? omp_get_max_threads() : 1; }

// Element counts of the tensors of a call.
struct Sizes {
  int64_t q, k, v, out, lse, bias_full;
  explicit Sizes(const mk_attention_params& b)
      : q(b.batch * b.heads * b.nq * b.d),
        k(b.batch * b.kv_heads * b.nk * b.d),
        v(b.batch * b.kv_heads * b.nk * b.dv),
        out(b.batch * b.heads * b.nq * b.dv),
        lse(b.batch * b.heads * b.nq),
        bias_full(b.batch * b.heads * b.nq * b.nk) {}
};

int check_sizes(const char* op, const mk_attention_params& b) {
  if (b.batch < 0 || b.heads < 1 || b.kv_heads < 1 || b.nq < 0 || b.nk < 0)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: sizes batch %" PRId64 ", heads %" PRId64 ", kv_heads %" PRId64 ", nq %" PRId64 ", nk %" PRId64
                " (need batch, nq, nk >= 0 and heads, kv_heads >= 1)", op, b.batch, b.heads, b.kv_heads, b.nq, b.nk);
  if (b.heads % b.kv_heads != 0)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: kv_heads %" PRId64 " does not divide heads %" PRId64, op, b.kv_heads,
                b.heads);
  if (b.d < 1 || b.d > MK_ATTENTION_MAX_HEAD_DIM || b.dv < 1 || b.dv > MK_ATTENTION_MAX_HEAD_DIM)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: head dims d = %" PRId64 ", dv = %" PRId64 " outside [1, %d]", op, b.d,
                b.dv, int(MK_ATTENTION_MAX_HEAD_DIM));
  return MK_OK;
}

// Validates what every pass shares and builds the kernels' parameters. `op` names the entry
// point. Every pass takes F32, F64, BF16 and F16 (16-bit: lse is F32, everything else 16-bit).
int prepare(const char* op, const KernelTable* t, int device, int dtype, const mk_attention_params* block,
            void* workspace, int64_t workspace_bytes, AttentionParams* p) {
  MK_CHECK(check_float_or_half_dtype(op, device, dtype));
  if (!block) return fail(MK_ERR_INVALID_ARGUMENT, "%s: the parameter block is null", op);
  const mk_attention_params& b = *block;
  MK_CHECK(check_sizes(op, b));
  if (!std::isfinite(b.scale)) return fail(MK_ERR_INVALID_ARGUMENT, "%s: scale %g is not finite", op, b.scale);
  if ((b.flags & ~(MK_ATTENTION_CAUSAL | MK_ATTENTION_TF32 | MK_ATTENTION_TOP_LEFT)) ||
      ((b.flags & MK_ATTENTION_TOP_LEFT) && !(b.flags & MK_ATTENTION_CAUSAL)))
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: flags %d (expected MK_ATTENTION_CAUSAL = 1, MK_ATTENTION_TF32 = 2, MK_ATTENTION_TOP_LEFT = 4, "
                "the last only with the first)",
                op, b.flags);
  if (b.bias && (b.bias_bs < 0 || b.bias_hs < 0))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: negative bias strides (%" PRId64 ", %" PRId64 ")", op, b.bias_bs,
                b.bias_hs);
  const Sizes n(b);
  MK_CHECK(check_ptr(op, "q", b.q, n.q));
  MK_CHECK(check_ptr(op, "k", b.k, n.k));
  MK_CHECK(check_ptr(op, "v", b.v, n.v));
  if (b.key_lengths && b.batch > 0) {
    std::vector<int64_t> host(size_t(b.batch), 0);
    if (device == MK_DEVICE_CPU) {
      for (int64_t i = 0; i < b.batch; ++i) host[size_t(i)] = b.key_lengths[i];
    } else {
      MK_CHECK(kernel_status(op, device, t->runtime.memcpy_d2h(host.data(), b.key_lengths, b.batch * 8, nullptr)));
    }
    for (int64_t i = 0; i < b.batch; ++i)
      if (host[size_t(i)] < 0 || host[size_t(i)] > b.nk)
        return fail(MK_ERR_INVALID_ARGUMENT, "%s: key length %" PRId64 " of batch %" PRId64 " outside [0, %" PRId64 "]",
                    op, host[size_t(i)], i, b.nk);
  }
  *p = AttentionParams(b, dtype, workspace);
  // the runtime's TF32 switch reaches every call (the flag asks for it per call)
  if (device == MK_DEVICE_CUDA && mk_runtime_allow_tf32()) p->allow_tf32 = 1;
  const int64_t need = t->attention_workspace(*p, threads_for(device));
  if (workspace_bytes < need || (need > 0 && !workspace))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: workspace of %" PRId64 " bytes, need %" PRId64, op, workspace_bytes, need);
  return MK_OK;
}

// The 16-bit CUDA kernels pad head dims to 64, 128 or 256 and keep whole tiles in shared memory:
// a GPU with less per block than a pass needs (D or Dv above 128 on sm_86-class devices) says so.
int half_status(const char* op, int device, const AttentionParams& p, int code) {
  if (code == mk::KERNEL_UNSUPPORTED && device == MK_DEVICE_CUDA && (p.dtype == MK_BF16 || p.dtype == MK_F16))
    return fail(MK_ERR_UNSUPPORTED,
                "%s: %s head dims d = %" PRId64 ", dv = %" PRId64 " need more shared memory per block than this GPU "
                "offers (above 128 they take ~150 KB in the backward, ~70 KB in the forward); cast to F32",
                op, p.dtype == MK_BF16 ? "BF16" : "F16", p.d, p.dv);
  return kernel_status(op, device, code);
}

int zero(const char* op, const KernelTable* t, int device, int dtype, int64_t n, void* dst, void* stream) {
  if (!dst || n == 0) return MK_OK;
  return kernel_status(op, device, t->fill(dtype, n, dst, 0.0, stream));
}

// The forward's outputs, which every later pass reads.
int check_saved(const char* op, const mk_attention_params& b) {
  const Sizes n(b);
  MK_CHECK(check_ptr(op, "out", b.out, n.out));
  return check_ptr(op, "lse", b.lse, n.lse);
}

bool is_half(int dtype) { return dtype == MK_BF16 || dtype == MK_F16; }

// F32 scratch from the runtime's caching allocator (mk_host_alloc / mk_device_alloc_on), freed
// when the call returns. Device blocks are allocated for the call's stream, whose kernels are the
// only ones to touch them, so the cache may hand them out again at once to that stream (stream
// order) and to another stream only after the event recorded at the free (memory.cpp).
class F32Scratch {
 public:
  F32Scratch(int device, void* stream) : device_(device), stream_(stream) {}
  F32Scratch(const F32Scratch&) = delete;
  F32Scratch& operator=(const F32Scratch&) = delete;
  ~F32Scratch() {
    for (void* b : blocks_) device_ == MK_DEVICE_CPU ? mk_host_free(b) : mk_device_free(b);
  }
  // nbytes of scratch, or nullptr with the error set
  void* get(const char* op, int64_t nbytes) {
    void* b = device_ == MK_DEVICE_CPU ? mk_host_alloc(nbytes) : mk_device_alloc_on(nbytes, stream_);
    if (!b) {
      fail(MK_ERR_INTERNAL, "%s: no memory for the F32 copies of a 16-bit call (%" PRId64 " bytes)", op, nbytes);
      return nullptr;
    }
    blocks_.push_back(b);
    return b;
  }

 private:
  int device_;
  void* stream_;
  std::vector<void*> blocks_;
};

// An F32 copy of n elements of a 16-bit input (nullptr stays nullptr).
int widen(const char* op, const KernelTable* t, int device, int dtype, int64_t n, const void* src, const void** dst,
          F32Scratch& scratch, void* stream) {
  *dst = nullptr;
  if (!src) return MK_OK;
  void* w = scratch.get(op, std::max<int64_t>(n, 1) * 4);
  if (!w) return MK_ERR_INTERNAL;
  if (n > 0) MK_CHECK(kernel_status(op, device, t->cast(dtype, MK_F32, n, src, w, stream)));
  *dst = w;
  return MK_OK;
}

// F32 room for an output of n elements, zeroed (nullptr when the output is not wanted).
int room(const char* op, const KernelTable* t, int device, int64_t n, void* want, void** dst, F32Scratch& scratch,
         void* stream) {
  *dst = nullptr;
  if (!want) return MK_OK;
  void* w = scratch.get(op, std::max<int64_t>(n, 1) * 4);
  if (!w) return MK_ERR_INTERNAL;
  MK_CHECK(zero(op, t, device, MK_F32, n, w, stream));
  *dst = w;
  return MK_OK;
}

int narrow(const char* op, const KernelTable* t, int device, int dtype, int64_t n, const void* src, void* dst,
           void* stream) {
  if (!dst || n == 0) return MK_OK;
  return kernel_status(op, device, t->cast(MK_F32, dtype, n, src, dst, stream));
}

// The bias's extent in elements (its strides may be 0 on the broadcast dims).
int64_t bias_extent(const mk_attention_params& b) {
  return (b.batch > 0 ? (b.batch - 1) * b.bias_bs : 0) + (b.heads - 1) * b.bias_hs + b.nq * b.nk;
}

// ---- strided operands (the *_strides fields of the block) --------------------------------------
// One operand of a pass as the layout checks see it: [batch, heads, n, cols] through strides
// (resolved: contiguous where the block gives none).
struct Operand : StridedGroups {
  const char* name;
  const void* p;
  bool output;
  Operand(const char* name_, const void* p_, const int64_t* given, int64_t batch_, int64_t heads_, int64_t n_,
          int64_t cols_, bool output_)
      : StridedGroups{batch_, heads_, n_, cols_, {0, 0, 0}}, name(name_), p(p_), output(output_) {
    mk::attention_strides(given, heads, n, cols, s);
  }
};

bool any_strides(const mk_attention_params& b) {
  for (const int64_t* s : mk::attention_stride_triples(b))
    if (mk::attention_strides_given(s)) return true;
  return false;
}

enum class Pass { kForward, kBackward, kBackwardBackward, kJvp };

// The strides of a call: none, or on the CPU in F32 / F64 with the triples of the pass's own
// operands only, non-negative, outputs that write no element twice and share no memory with another
// operand of the pass. Checked before anything is written.
int check_layout(const char* op, int device, int dtype, const mk_attention_params& b, Pass pass) {
  if (!any_strides(b)) return MK_OK;
  if (device != MK_DEVICE_CPU || (dtype != MK_F32 && dtype != MK_F64))
    return fail(MK_ERR_UNSUPPORTED,
                "%s: strided operands (the *_strides fields) are taken on the CPU in F32 and F64 only; pass "
                "contiguous tensors", op);
  const int64_t B = b.batch, H = b.heads, Hk = b.kv_heads;
  // every operand of every pass: the passes it belongs to and those it is an output of (bits of
  // Pass); a stride triple of another pass's operand is refused (it would be silently ignored)
  constexpr unsigned F = 1u << int(Pass::kForward), BW = 1u << int(Pass::kBackward),
                     DD = 1u << int(Pass::kBackwardBackward), J = 1u << int(Pass::kJvp), ALL = F | BW | DD | J;
  struct Entry {
    const char* name;
    const void* p;
    const int64_t* s;  // the block's triple (null: always contiguous)
    int64_t heads, n, cols;
    unsigned in, out;
  };
  const Entry table[] = {
      {"q", b.q, b.q_strides, H, b.nq, b.d, ALL, 0},
      {"k", b.k, b.k_strides, Hk, b.nk, b.d, ALL, 0},
      {"v", b.v, b.v_strides, Hk, b.nk, b.dv, ALL, 0},
      {"out", b.out, b.out_strides, H, b.nq, b.dv, ALL, F},
      {"lse", b.lse, nullptr, H, b.nq, 1, ALL, F},
      {"dout", b.dout, b.dout_strides, H, b.nq, b.dv, BW | DD, 0},
      {"grad_q", b.grad_q, b.grad_q_strides, H, b.nq, b.d, BW, BW},
      {"grad_k", b.grad_k, b.grad_k_strides, Hk, b.nk, b.d, BW, BW},
      {"grad_v", b.grad_v, b.grad_v_strides, Hk, b.nk, b.dv, BW, BW},
      {"grad_bias_full", b.grad_bias_full, nullptr, H, b.nq, b.nk, BW, BW},
      {"cot_grad_q", b.cot_grad_q, b.cot_grad_q_strides, H, b.nq, b.d, DD, 0},
      {"cot_grad_k", b.cot_grad_k, b.cot_grad_k_strides, Hk, b.nk, b.d, DD, 0},
      {"cot_grad_v", b.cot_grad_v, b.cot_grad_v_strides, Hk, b.nk, b.dv, DD, 0},
      {"cot_grad_bias_full", b.cot_grad_bias_full, nullptr, H, b.nq, b.nk, DD, 0},
      {"cot_q", b.cot_q, b.cot_q_strides, H, b.nq, b.d, DD, DD},
      {"cot_k", b.cot_k, b.cot_k_strides, Hk, b.nk, b.d, DD, DD},
      {"cot_v", b.cot_v, b.cot_v_strides, Hk, b.nk, b.dv, DD, DD},
      {"cot_dout", b.cot_dout, b.cot_dout_strides, H, b.nq, b.dv, DD, DD},
      {"cot_bias_full", b.cot_bias_full, nullptr, H, b.nq, b.nk, DD, DD},
      {"tan_q", b.tan_q, b.tan_q_strides, H, b.nq, b.d, J, 0},
      {"tan_k", b.tan_k, b.tan_k_strides, Hk, b.nk, b.d, J, 0},
      {"tan_v", b.tan_v, b.tan_v_strides, Hk, b.nk, b.dv, J, 0},
      {"tan_bias_full", b.tan_bias_full, nullptr, H, b.nq, b.nk, J, 0},
      {"tan_out", b.tan_out, b.tan_out_strides, H, b.nq, b.dv, J, J},
      {"tan_lse", b.tan_lse, nullptr, H, b.nq, 1, J, J},
  };
  const unsigned mine = 1u << int(pass);
  std::vector<Operand> ops;
  for (const Entry& e : table) {
    if (!(e.in & mine)) {
      if (e.s && mk::attention_strides_given(e.s))
        return fail(MK_ERR_INVALID_ARGUMENT, "%s: strides of %s, an operand of another pass, given", op, e.name);
      continue;
    }
    ops.push_back({e.name, e.p, e.s, B, e.heads, e.n, e.cols, (e.out & mine) != 0});
  }
  if (b.bias) ops.push_back({"bias", b.bias, nullptr, 1, 1, 1, bias_extent(b), false});
  for (const Operand& o : ops)
    if (o.s[0] < 0 || o.s[1] < 0 || o.s[2] < 0)
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s strides (%" PRId64 ", %" PRId64 ", %" PRId64 ") must not be negative",
                  op, o.name, o.s[0], o.s[1], o.s[2]);
  const int64_t es = mk::dtype_size(dtype);
  for (size_t i = 0; i < ops.size(); ++i) {
    const Operand& o = ops[i];
    if (!o.output || !o.p || o.extent() == 0) continue;
    if (!o.distinct())
      return fail(MK_ERR_INVALID_ARGUMENT,
                  "%s: %s strides (%" PRId64 ", %" PRId64 ", %" PRId64 ") over [%" PRId64 ", %" PRId64 ", %" PRId64
                  ", %" PRId64 "] write some element twice",
                  op, o.name, o.s[0], o.s[1], o.s[2], o.batch, o.heads, o.n, o.cols);
    const char* o0 = static_cast<const char*>(o.p);
    const int64_t ob = o.extent() * es;  // lse too: F32 / F64 calls keep it in their dtype
    for (size_t j = 0; j < ops.size(); ++j) {
      const Operand& x = ops[j];
      if (j == i || !x.p || x.extent() == 0) continue;
      const char* x0 = static_cast<const char*>(x.p);
      const int64_t xb = x.extent() * es;
      if (x0 < o0 + ob && o0 < x0 + xb) return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s overlaps %s", op, o.name, x.name);
    }
  }
  return MK_OK;
}

// Zeroes an output of the backward (n elements when contiguous; through its strides when given,
// CPU only, see check_layout).
int zero_operand(const char* op, const KernelTable* t, int device, int dtype, const Operand& o, void* stream) {
  if (!o.p || o.extent() == 0) return MK_OK;
  if (o.s[0] == o.heads * o.n * o.cols && o.s[1] == o.n * o.cols && o.s[2] == o.cols)
    return zero(op, t, device, dtype, o.batch * o.heads * o.n * o.cols, const_cast<void*>(o.p), stream);
  return zero_strided(op, t, device, dtype, o, const_cast<void*>(o.p), stream);
}

// The F32 parameter block of a 16-bit call: q, k, v, the bias, out and dout widened; lse is F32
// already.
int widen_shared(const char* op, const KernelTable* t, int device, int dtype, const mk_attention_params& b,
                 mk_attention_params* w, F32Scratch& scratch, void* stream) {
  const Sizes n(b);
  *w = b;
  MK_CHECK(widen(op, t, device, dtype, n.q, b.q, &w->q, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, n.k, b.k, &w->k, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, n.v, b.v, &w->v, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, b.bias ? bias_extent(b) : 0, b.bias, &w->bias, scratch, stream));
  const void* out32 = nullptr;
  MK_CHECK(widen(op, t, device, dtype, n.out, b.out, &out32, scratch, stream));
  w->out = const_cast<void*>(out32);
  return widen(op, t, device, dtype, n.out, b.dout, &w->dout, scratch, stream);
}

// The F32 kernel's workspace: the caller's (sized for the 16-bit call) where it is large enough.
int f32_params(const char* op, const KernelTable* t, int device, const mk_attention_params& w, void* workspace,
               int64_t workspace_bytes, F32Scratch& scratch, AttentionParams* p) {
  *p = AttentionParams(w, MK_F32, workspace);
  if (device == MK_DEVICE_CUDA && mk_runtime_allow_tf32()) p->allow_tf32 = 1;
  const int64_t need = t->attention_workspace(*p, threads_for(device));
  if (need > workspace_bytes) {
    p->workspace = scratch.get(op, need);
    if (!p->workspace) return MK_ERR_INTERNAL;
  }
  return MK_OK;
}

// 16-bit backward_backward: the F32 kernel on F32 copies, the cotangents rounded back (the one
// place the 16-bit second order widens; the forward and backward widen inside their kernels).
int half_backward_backward(const char* op, const KernelTable* t, int device, int dtype, const mk_attention_params& b,
                           void* workspace, int64_t workspace_bytes, void* stream) {
  const Sizes n(b);
  F32Scratch scratch(device, stream);
  mk_attention_params w;
  MK_CHECK(widen_shared(op, t, device, dtype, b, &w, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, n.q, b.cot_grad_q, &w.cot_grad_q, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, n.k, b.cot_grad_k, &w.cot_grad_k, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, n.v, b.cot_grad_v, &w.cot_grad_v, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, n.bias_full, b.cot_grad_bias_full, &w.cot_grad_bias_full, scratch, stream));
  MK_CHECK(room(op, t, device, n.q, b.cot_q, &w.cot_q, scratch, stream));
  MK_CHECK(room(op, t, device, n.k, b.cot_k, &w.cot_k, scratch, stream));
  MK_CHECK(room(op, t, device, n.v, b.cot_v, &w.cot_v, scratch, stream));
  MK_CHECK(room(op, t, device, n.out, b.cot_dout, &w.cot_dout, scratch, stream));
  MK_CHECK(room(op, t, device, n.bias_full, b.cot_bias_full, &w.cot_bias_full, scratch, stream));
  AttentionParams p;
  MK_CHECK(f32_params(op, t, device, w, workspace, workspace_bytes, scratch, &p));
  MK_CHECK(kernel_status(op, device, t->attention_backward_backward(p, stream)));
  MK_CHECK(narrow(op, t, device, dtype, n.q, w.cot_q, b.cot_q, stream));
  MK_CHECK(narrow(op, t, device, dtype, n.k, w.cot_k, b.cot_k, stream));
  MK_CHECK(narrow(op, t, device, dtype, n.v, w.cot_v, b.cot_v, stream));
  MK_CHECK(narrow(op, t, device, dtype, n.out, w.cot_dout, b.cot_dout, stream));
  return narrow(op, t, device, dtype, n.bias_full, w.cot_bias_full, b.cot_bias_full, stream);
}

// 16-bit jvp: the same, the output tangent rounded back, the lse tangent F32 (as lse is).
int half_jvp(const char* op, const KernelTable* t, int device, int dtype, const mk_attention_params& b,
             void* workspace, int64_t workspace_bytes, void* stream) {
  const Sizes n(b);
  F32Scratch scratch(device, stream);
  mk_attention_params w;
  MK_CHECK(widen_shared(op, t, device, dtype, b, &w, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, n.q, b.tan_q, &w.tan_q, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, n.k, b.tan_k, &w.tan_k, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, n.v, b.tan_v, &w.tan_v, scratch, stream));
  MK_CHECK(widen(op, t, device, dtype, n.bias_full, b.tan_bias_full, &w.tan_bias_full, scratch, stream));
  MK_CHECK(room(op, t, device, n.out, b.tan_out, &w.tan_out, scratch, stream));
  AttentionParams p;
  MK_CHECK(f32_params(op, t, device, w, workspace, workspace_bytes, scratch, &p));
  MK_CHECK(kernel_status(op, device, t->attention_jvp(p, stream)));
  return narrow(op, t, device, dtype, n.out, w.tan_out, b.tan_out, stream);
}

}  // namespace

extern "C" {

int64_t mk_attention_softmax_workspace(int device, int dtype, const mk_attention_params* block) {
  const char* op = "mk_attention_softmax_workspace";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return -1;
  if (!block) {
    fail(MK_ERR_INVALID_ARGUMENT, "%s: the parameter block is null", op);
    return -1;
  }
  if (check_sizes(op, *block) != MK_OK) return -1;
  return t->attention_workspace(AttentionParams(*block, dtype, nullptr), threads_for(device));
}

int mk_attention_softmax_forward(int device, int dtype, const mk_attention_params* block, void* workspace,
                                 int64_t workspace_bytes, void* stream) {
  const char* op = "mk_attention_softmax_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  AttentionParams p;
  MK_CHECK(prepare(op, t, device, dtype, block, workspace, workspace_bytes, &p));
  MK_CHECK(check_ptr(op, "out", p.out, Sizes(p).out));
  MK_CHECK(check_layout(op, device, dtype, *block, Pass::kForward));
  if (p.batch * p.heads * p.nq == 0) return MK_OK;
  return half_status(op, device, p, t->attention_forward(p, stream));
}

int mk_attention_softmax_backward(int device, int dtype, const mk_attention_params* block, void* workspace,
                                  int64_t workspace_bytes, void* stream) {
  const char* op = "mk_attention_softmax_backward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  AttentionParams p;
  MK_CHECK(prepare(op, t, device, dtype, block, workspace, workspace_bytes, &p));
  const Sizes n(p);
  MK_CHECK(check_saved(op, p));
  MK_CHECK(check_ptr(op, "dout", p.dout, n.out));
  MK_CHECK(check_layout(op, device, dtype, *block, Pass::kBackward));
  // gradients of empty or fully padded parts are zero: clear them first
  MK_CHECK(zero_operand(op, t, device, dtype, Operand("grad_q", p.grad_q, p.grad_q_strides, p.batch, p.heads, p.nq, p.d, true), stream));
  MK_CHECK(zero_operand(op, t, device, dtype, Operand("grad_k", p.grad_k, p.grad_k_strides, p.batch, p.kv_heads, p.nk, p.d, true), stream));
  MK_CHECK(zero_operand(op, t, device, dtype, Operand("grad_v", p.grad_v, p.grad_v_strides, p.batch, p.kv_heads, p.nk, p.dv, true), stream));
  MK_CHECK(zero(op, t, device, dtype, n.bias_full, p.grad_bias_full, stream));
  if (n.bias_full == 0) return MK_OK;
  return half_status(op, device, p, t->attention_backward(p, stream));
}

int mk_attention_softmax_backward_backward(int device, int dtype, const mk_attention_params* block, void* workspace,
                                           int64_t workspace_bytes, void* stream) {
  const char* op = "mk_attention_softmax_backward_backward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  AttentionParams p;
  MK_CHECK(prepare(op, t, device, dtype, block, workspace, workspace_bytes, &p));
  const Sizes n(p);
  MK_CHECK(check_saved(op, p));
  MK_CHECK(check_ptr(op, "dout", p.dout, n.out));
  MK_CHECK(check_layout(op, device, dtype, *block, Pass::kBackwardBackward));
  MK_CHECK(zero_operand(op, t, device, dtype, Operand("cot_q", p.cot_q, p.cot_q_strides, p.batch, p.heads, p.nq, p.d, true), stream));
  MK_CHECK(zero_operand(op, t, device, dtype, Operand("cot_k", p.cot_k, p.cot_k_strides, p.batch, p.kv_heads, p.nk, p.d, true), stream));
  MK_CHECK(zero_operand(op, t, device, dtype, Operand("cot_v", p.cot_v, p.cot_v_strides, p.batch, p.kv_heads, p.nk, p.dv, true), stream));
  MK_CHECK(zero_operand(op, t, device, dtype, Operand("cot_dout", p.cot_dout, p.cot_dout_strides, p.batch, p.heads, p.nq, p.dv, true), stream));
  MK_CHECK(zero(op, t, device, dtype, n.bias_full, p.cot_bias_full, stream));
  if (n.bias_full == 0) return MK_OK;
  if (is_half(dtype)) {
    // CUDA: the tensor-core double backward where mk/attention_tc_choice.h says it applies (no F32
    // copies); it answers KERNEL_UNSUPPORTED before launching anything where not: the F32 path
    if (device == MK_DEVICE_CUDA) {
      const int code = t->attention_backward_backward(p, stream);
      if (code != mk::KERNEL_UNSUPPORTED) return kernel_status(op, device, code);
    }
    return half_backward_backward(op, t, device, dtype, *block, workspace, workspace_bytes, stream);
  }
  return kernel_status(op, device, t->attention_backward_backward(p, stream));
}

int mk_attention_softmax_jvp(int device, int dtype, const mk_attention_params* block, void* workspace,
                             int64_t workspace_bytes, void* stream) {
  const char* op = "mk_attention_softmax_jvp";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  AttentionParams p;
  MK_CHECK(prepare(op, t, device, dtype, block, workspace, workspace_bytes, &p));
  const Sizes n(p);
  MK_CHECK(check_saved(op, p));
  MK_CHECK(check_ptr(op, "tan_out", p.tan_out, n.out));
  MK_CHECK(check_layout(op, device, dtype, *block, Pass::kJvp));
  MK_CHECK(zero_operand(op, t, device, dtype, Operand("tan_out", p.tan_out, p.tan_out_strides, p.batch, p.heads, p.nq, p.dv, true), stream));
  MK_CHECK(zero(op, t, device, is_half(dtype) ? MK_F32 : dtype, n.lse, p.tan_lse, stream));
  if (n.bias_full == 0) return MK_OK;
  if (is_half(dtype)) {
    // CUDA: the tensor-core JVP where it applies (as the double backward above), else F32 copies
    if (device == MK_DEVICE_CUDA) {
      const int code = t->attention_jvp(p, stream);
      if (code != mk::KERNEL_UNSUPPORTED) return kernel_status(op, device, code);
    }
    return half_jvp(op, t, device, dtype, *block, workspace, workspace_bytes, stream);
  }
  return kernel_status(op, device, t->attention_jvp(p, stream));
}

}  // extern "C"

// ---- which tensor-core kernel runs (mk/attention_tc_choice.h, the one place that decides) ---------
namespace {
// mk_attention_tc_select's choice, native/'s copy (the CUDA library keeps its own, set through the
// kernel table); g_tc_mu orders a select against an attach (attention_tc_push).
std::atomic<int> g_tc_forward{0}, g_tc_backward{0}, g_tc_second{0};
std::mutex g_tc_mu;
}  // namespace

const char* mk_attention_tc_kernels(void) {
  static std::string text;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const int sel_forward = g_tc_forward.load(), sel_backward = g_tc_backward.load(), sel_second = g_tc_second.load();
  const int override_version = mk::attention_tc_forward_code(sel_forward);
  const int backward_override = mk::attention_tc_backward_code(sel_backward);
  const int second_f32 = mk::attention_tc_second_code(sel_second);
  auto name = [](int v) {
    return v == mk::MK_TC_V2 ? "v2" : v == mk::MK_TC_V2_K32 ? "v2k32" : v == mk::MK_TC_SM90 ? "sm90" : "v1";
  };
  const int env_forward = mk::attention_tc_override(), env_backward = mk::attention_tc_backward_override();
  text = std::string("MK_ATTN_TC=") + (env_forward ? name(env_forward) : "(unset)") +
         ", MK_ATTN_TC_BWD=" + (env_backward ? name(env_backward) : "(unset)") +
         (sel_forward || sel_backward || sel_second
              ? std::string(" (override: forward ") + (sel_forward ? name(sel_forward) : "env") + ", backward " +
                    (sel_backward ? name(sel_backward) : "env") + ", second " +
                    (sel_second == MK_ATTN_TC_SELECT_SECOND_TC     ? "tc"
                     : sel_second == MK_ATTN_TC_SELECT_SECOND_F32  ? "f32"
                     : sel_second == MK_ATTN_TC_SELECT_SECOND_SM90 ? "sm90"
                                                                   : "env") +
                    ")"
              : std::string()) +
         "; forward/backward per BF16|F16, max(D, Dv), causal (sm90, forward and backward, runs only where D = Dv "
         "= 64 or 128 on a 9.0 device of a build with sm_90a code, elsewhere v2):";
  for (int arch : {80, 90}) {
    text += "\n  sm_" + std::to_string(arch) + ":";
    for (int64_t w : {64, 128, 256})
      for (int causal : {0, 1}) {
        const mk::AttentionTcChoice c =
            mk::attention_tc_choose(MK_BF16, w, w, arch / 10, causal != 0, override_version, backward_override);
        text += " D<=" + std::to_string(w) + (causal ? " causal " : " full ") + name(c.forward) + "/" +
                name(c.backward) + ";";
      }
  }
  const bool dd_sm90 = mk::attention_tc_second_sm90(sel_second);
  text += std::string("\ndouble backward and JVP (BF16|F16): MK_ATTN_TC_DD=") +
          (mk::attention_tc_second_override()  ? "0 (F32 path forced)"
           : mk::attention_tc_second_sm90_env() ? "sm90"
                                                : "(unset)") +
          (sel_second == MK_ATTN_TC_SELECT_SECOND_TC     ? " (override: tc)"
           : sel_second == MK_ATTN_TC_SELECT_SECOND_F32  ? " (override: f32)"
           : sel_second == MK_ATTN_TC_SELECT_SECOND_SM90 ? " (override: sm90)"
                                                         : "") +
          "; tensor cores (tensor_core_dd.cu) where max(D, Dv) <= 128, else F32 copies + SIMT; the double "
          "backward's Hopper passes (tensor_core_sm90_dd.cu, opt-in until timed on a GPU) " +
          (dd_sm90 ? "selected: they run where D = Dv = 64 or 128 on a 9.0 device of a build with "
                     "sm_90a code"
                   : "not selected") +
          ":";
  for (int arch : {80, 90}) {
    text += "\n  sm_" + std::to_string(arch) + ":";
    for (int64_t w : {64, 128, 256})
      text += " D<=" + std::to_string(w) + " " +
              (mk::attention_tc_second_applies(MK_BF16, w, w, arch / 10, second_f32) ? "tc"
                                                                                                            : "f32") +
              ";";
  }
  // F32 with TF32 allowed: the same kernels on TF32 MMAs (the same choice, allow_tf32 on)
  text += std::string("\ndouble backward and JVP (F32, TF32 ") +
          (mk_runtime_allow_tf32() ? "allowed" : "not allowed: exact F32 SIMT kernels") +
          "): TF32 tensor cores (tensor_core_dd.cu, m16n8k8) where max(D, Dv) <= 128 and the tiles fit, else F32 "
          "SIMT:";
  for (int arch : {80, 90}) {
    text += "\n  sm_" + std::to_string(arch) + ":";
    for (int64_t w : {64, 128, 256})
      text += " D<=" + std::to_string(w) + " " +
              (mk::attention_tc_second_applies(MK_F32, w, w, arch / 10, second_f32, true) ? "tf32" : "f32") + ";";
  }
  return text.c_str();
}

// ---- the programmatic choice of tensor-core kernel (issue 10) -------------------------------------
int mk::native::attention_tc_push(const KernelTable* t) {
  std::lock_guard<std::mutex> lock(g_tc_mu);
  const int code = t->attention_tc_select(g_tc_forward.load(), g_tc_backward.load(), g_tc_second.load());
  return kernel_status("mk_runtime_attach_cuda (attention_tc_select)", MK_DEVICE_CUDA, code);
}

int mk_attention_tc_select(int forward, int backward, int second) {
  const char* op = "mk_attention_tc_select";
  if (forward < 0 || forward > MK_ATTN_TC_SELECT_FORWARD_SM90)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: forward %d is not a choice (0 = environment/default, 1 = v1, 2 = v2, 3 = v2k32, 4 = sm90)",
                op, forward);
  if (backward < 0 || backward > MK_ATTN_TC_SELECT_BACKWARD_SM90 || backward == 3)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: backward %d is not a choice (0 = environment/default, 1 = v1, 2 = v2, 4 = sm90)", op, backward);
  if (second < 0 || second > MK_ATTN_TC_SELECT_SECOND_SM90)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: second %d is not a choice (0 = environment/default, 1 = tensor cores, 2 = F32 copies, 3 = tensor "
                "cores with the Hopper double-backward passes)",
                op, second);
  std::lock_guard<std::mutex> lock(g_tc_mu);
  const KernelTable* cpu = kernels_for(op, MK_DEVICE_CPU);
  MK_CHECK(kernel_status(op, MK_DEVICE_CPU, cpu->attention_tc_select(forward, backward, second)));
  const KernelTable* cuda = mk::native::attached_cuda();
  if (cuda) MK_CHECK(kernel_status(op, MK_DEVICE_CUDA, cuda->attention_tc_select(forward, backward, second)));
  g_tc_forward.store(forward);
  g_tc_backward.store(backward);
  g_tc_second.store(second);
  return MK_OK;
}

int mk_attention_tc_selected(int* forward, int* backward, int* second) {
  std::lock_guard<std::mutex> lock(g_tc_mu);
  if (forward) *forward = g_tc_forward.load();
  if (backward) *backward = g_tc_backward.load();
  if (second) *second = g_tc_second.load();
  return MK_OK;
}

// ---- which SIMT kernel runs (mk/attention_simt_choice.h, the one place that decides) ----------------
namespace {
// mk_attention_simt_select's choice, native/'s copy (the CUDA library keeps its own, set through
// the kernel table); g_simt_mu orders a select against an attach (attention_simt_push).
std::atomic<int> g_simt_forward{0}, g_simt_backward{0};
std::mutex g_simt_mu;
}  // namespace

int mk::native::attention_simt_push(const KernelTable* t) {
  std::lock_guard<std::mutex> lock(g_simt_mu);
  const int code = t->attention_simt_select(g_simt_forward.load(), g_simt_backward.load());
  return kernel_status("mk_runtime_attach_cuda (attention_simt_select)", MK_DEVICE_CUDA, code);
}

int mk_attention_simt_select(int forward, int backward) {
  const char* op = "mk_attention_simt_select";
  if (forward < 0 || forward > MK_ATTN_SIMT_SELECT_X3)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: forward %d is not a choice (0 = environment/default, 1 = v1, 2 = v2, 3 = x3)", op, forward);
  if (backward < 0 || backward > MK_ATTN_SIMT_SELECT_X3)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: backward %d is not a choice (0 = environment/default, 1 = v1, 2 = v2, 3 = x3)", op, backward);
  std::lock_guard<std::mutex> lock(g_simt_mu);
  const KernelTable* cpu = kernels_for(op, MK_DEVICE_CPU);
  MK_CHECK(kernel_status(op, MK_DEVICE_CPU, cpu->attention_simt_select(forward, backward)));
  const KernelTable* cuda = mk::native::attached_cuda();
  if (cuda) MK_CHECK(kernel_status(op, MK_DEVICE_CUDA, cuda->attention_simt_select(forward, backward)));
  g_simt_forward.store(forward);
  g_simt_backward.store(backward);
  return MK_OK;
}

int mk_attention_simt_selected(int* forward, int* backward) {
  std::lock_guard<std::mutex> lock(g_simt_mu);
  if (forward) *forward = g_simt_forward.load();
  if (backward) *backward = g_simt_backward.load();
  return MK_OK;
}

const char* mk_attention_simt_kernels(void) {
  static std::string text;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const int sel_forward = g_simt_forward.load(), sel_backward = g_simt_backward.load();
  auto name = [](int v) { return v == mk::MK_SIMT_X3 ? "x3" : v == mk::MK_SIMT_V2 ? "v2" : "v1"; };
  const int env_forward = mk::attention_simt_override(), env_backward = mk::attention_simt_backward_override();
  text = std::string("MK_ATTN_SIMT=") + (env_forward ? name(env_forward) : "(unset)") +
         ", MK_ATTN_SIMT_BWD=" + (env_backward ? name(env_backward) : "(unset)") +
         (sel_forward || sel_backward ? std::string(" (override: forward ") + (sel_forward ? name(sel_forward) : "env") +
                                            ", backward " + (sel_backward ? name(sel_backward) : "env") + ")"
                                      : std::string()) +
         "; forward/backward per dtype, device, D = Dv (v2 where chosen, it applies and fits, else v1; x3: "
         "3xTF32 tensor cores, a 9.0 device with sm_90a code, else v2):";
  for (int dtype : {MK_F32, MK_F64})
    for (int arch : {80, 90}) {
      text += std::string(dtype == MK_F32 ? "\n  F32" : "\n  F64") + " sm_" + std::to_string(arch) + ":";
      for (int64_t w : {64, 128, 256}) {
        const mk::AttentionSimtChoice c =
            mk::attention_simt_choose(dtype, w, w, arch / 10, mk::attention_simt_forward_code(sel_forward),
                                      mk::attention_simt_backward_code(sel_backward));
        text += " D=" + std::to_string(w) + " " + name(c.forward) + "/" + name(c.backward) + ";";
      }
    }
  // the double backward's v2 passes (kernels/cuda/attention/simt2_dd.cu: stats, query and key), one choice
  const int env_dd = mk::attention_simt_dd_override();
  text += std::string("\n  double-backward stats/query/key passes (MK_ATTN_SIMT_DD=") + (env_dd ? name(env_dd) : "(unset)") + "):";
  for (int arch : {80, 90})
    for (int dtype : {MK_F32, MK_F64})
      for (int64_t w : {64, 128, 256})
        text += std::string(dtype == MK_F32 ? " F32" : " F64") + " sm_" + std::to_string(arch) + " D=" +
                std::to_string(w) + " " + name(mk::attention_simt_dd_choose(dtype, w, w, arch / 10, env_dd)) + ";";
  return text.c_str();
}
