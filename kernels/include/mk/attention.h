// Arguments of the softmax-attention kernels (CPU and CUDA share them): the parameter block of
// the C ABI (mk_attention_params) plus what native/ derives. Shapes and math:
//
//   q: [B, H, Nq, D]   k: [B, Hkv, Nk, D]   v: [B, Hkv, Nk, Dv]   (Hkv divides H; contiguous, except
//   that the CPU forward and backward in F32 / F64 take the block's *_strides: see CpuParams in
//   kernels/cpu/attention/common.h; attention_head below is the contiguous view)
//   S = scale * q k^T + bias, masked;  P = softmax_rows(S);  out = P v;  lse = logsumexp_rows(S)
//   bias (optional): element (b, h, i, j) at bias[b * bias_bs + h * bias_hs + i * Nk + j]
//   key_lengths (optional, [B]): keys j >= L_b are padding
//   causal: query i sees keys j <= i + (L_b - Nq) (bottom-right aligned)
// Fully masked rows give out = 0 and lse = -inf.
// dtype F32 / F64: every pointer in that type. BF16 / F16 (forward and backward only): every
// tensor in that type except lse, which is F32 (see attention_workspace in mk/kernels.inc).
#pragma once
#include <array>
#include <cstdint>

#include "metakernels.h"
#include "mk/isa_ns.h"
#include "mk/scalar.h"  // MK_HD

namespace mk {
MK_ISA_BEGIN
// The mask every kernel applies (CPU, CUDA SIMT and tensor cores): with len = L_b keys and
// off = attention_diagonal(L_b, Nq, top_left), query row i sees keys j < attention_key_end(i, ...), and key j is seen by rows
// i >= attention_first_row(j, ...).
MK_HD int64_t attention_key_end(int64_t i, int64_t len, int64_t off, bool causal) {
  if (!causal) return len;
  const int64_t e = i + off + 1;
  return e < 0 ? 0 : (e > len ? len : e);
}
MK_HD int64_t attention_first_row(int64_t j, int64_t off, bool causal) {
  if (!causal) return 0;
  const int64_t r = j - off;
  return r < 0 ? 0 : r;
}
// The causal mask's diagonal: off = L_b - Nq, bottom-right aligned (the default: the last query
// sees every key), or 0, top-left aligned (MK_ATTENTION_TOP_LEFT: query i sees keys j <= i).
MK_HD int64_t attention_diagonal(int64_t len, int64_t nq, bool top_left) { return top_left ? 0 : len - nq; }
MK_ISA_END

// The block's stride triples (the *_strides fields; all three 0: contiguous), in the order of the
// block: q, k, v, out, dout, grad_q, grad_k, grad_v (ABI 16), then cot_grad_q, cot_grad_k,
// cot_grad_v, cot_q, cot_k, cot_v, cot_dout, tan_q, tan_k, tan_v, tan_out (ABI 17). Block:
// mk_attention_params, const or not.
template <class Block>
inline auto attention_stride_triples(Block& b) -> std::array<decltype(&b.q_strides[0]), 19> {
  return {b.q_strides,          b.k_strides,          b.v_strides,          b.out_strides,   b.dout_strides,
          b.grad_q_strides,     b.grad_k_strides,     b.grad_v_strides,     b.cot_grad_q_strides,
          b.cot_grad_k_strides, b.cot_grad_v_strides, b.cot_q_strides,      b.cot_k_strides, b.cot_v_strides,
          b.cot_dout_strides,   b.tan_q_strides,      b.tan_k_strides,      b.tan_v_strides, b.tan_out_strides};
}

// Whether a stride triple is given (not all 0).
inline bool attention_strides_given(const int64_t* s) { return s[0] != 0 || s[1] != 0 || s[2] != 0; }

// An operand's (batch, head, row) strides: the triple where given, else those of a contiguous
// [batch, heads, n, cols] tensor (the CPU kernels index through these; native/ checks them).
inline void attention_strides(const int64_t* given, int64_t heads, int64_t n, int64_t cols, int64_t* out) {
  const bool set = given && attention_strides_given(given);
  out[0] = set ? given[0] : heads * n * cols;
  out[1] = set ? given[1] : n * cols;
  out[2] = set ? given[2] : cols;
}

// The second inputs of a pass: the tensors paired with (q, k, v, bias) that backward_backward
// (the cotangents of the backward's outputs) and the JVP (the tangents) read beside the first; the
// kernels of both passes share their tile loops, so they see them under one name.
struct AttentionSecondInputs {
  const void* q = nullptr;          // [B, H, Nq, D]
  const void* k = nullptr;          // [B, Hkv, Nk, D]
  const void* v = nullptr;          // [B, Hkv, Nk, Dv]
  const void* bias_full = nullptr;  // [B, H, Nq, Nk]
  // the block's stride triples of q, k, v (the CPU kernels' strided operands; null: contiguous)
  const int64_t* q_strides = nullptr;
  const int64_t* k_strides = nullptr;
  const int64_t* v_strides = nullptr;
};

// What the kernels receive: the C ABI's parameter block (named inputs and outputs of every pass,
// see native/include/metakernels.h) and what native/ derives from the call. Kernel-private scratch
// (e.g. the CPU's packed key tiles) lives in each kernel's own structs, inside the workspace.
struct AttentionParams : mk_attention_params {
  int dtype = 0;
  int causal = 0;      // flags & MK_ATTENTION_CAUSAL
  int allow_tf32 = 0;  // flags & MK_ATTENTION_TF32: F32 on TF32 tensor cores (CUDA; ignored elsewhere)
  int top_left = 0;    // flags & MK_ATTENTION_TOP_LEFT: the causal mask's diagonal starts at key 0
  void* workspace = nullptr;  // attention_workspace() bytes
  AttentionSecondInputs second;  // set by the backward_backward and jvp kernels from the block

  AttentionParams() : mk_attention_params{} {}
  AttentionParams(const mk_attention_params& block, int dtype_, void* workspace_)
      : mk_attention_params(block),
        dtype(dtype_),
        causal((block.flags & MK_ATTENTION_CAUSAL) ? 1 : 0),
        allow_tf32((block.flags & MK_ATTENTION_TF32) ? 1 : 0),
        top_left((block.flags & MK_ATTENTION_TOP_LEFT) ? 1 : 0),
        workspace(workspace_) {}
};

MK_ISA_BEGIN
// One (batch, query head) pair of a call, the view every attention kernel (CPU, CUDA SIMT, tensor
// cores) starts from: the head's base pointers, sizes and mask bounds. T is the element type of
// q, k, v, bias, out, dout and the second inputs; L that of lse (T, or float for 16-bit calls).
// Grouped-query attention: query head h reads key/value head h / (H / Hkv). The second inputs
// (gq, gk, gv, gbias) are AttentionParams::second, null when absent.
template <class T, class L = T>
struct AttentionHead {
  const T *q, *k, *v, *bias, *out, *dout;
  const L* lse;
  const T *gq, *gk, *gv, *gbias;
  int64_t nq, nk, d, dv;
  int64_t len, off;  // keys of this batch entry (key_lengths or Nk), and attention_diagonal()
  int64_t kh;        // index of the key/value head in [B * Hkv]
  int64_t base;      // row 0 of this head in the [B, H, Nq] row arrays (lse and the row statistics)
  bool causal;
  // exclusive bound of the keys row i sees
  MK_HD int64_t key_end(int64_t i) const { return attention_key_end(i, len, off, causal); }
  // first row that sees key j
  MK_HD int64_t first_row(int64_t j) const { return attention_first_row(j, off, causal); }
};

template <class T>
MK_HD const T* attention_at(const void* base, int64_t off) {
  return base ? static_cast<const T*>(base) + off : nullptr;
}

template <class T, class L = T>
MK_HD AttentionHead<T, L> attention_head(const AttentionParams& p, int64_t b, int64_t h) {
  const int64_t group = p.heads / p.kv_heads, hk = h / group;
  const int64_t qh = b * p.heads + h, kh = b * p.kv_heads + hk;
  AttentionHead<T, L> x;
  x.q = attention_at<T>(p.q, qh * p.nq * p.d);
  x.k = attention_at<T>(p.k, kh * p.nk * p.d);
  x.v = attention_at<T>(p.v, kh * p.nk * p.dv);
  x.bias = attention_at<T>(p.bias, b * p.bias_bs + h * p.bias_hs);
  x.out = attention_at<T>(p.out, qh * p.nq * p.dv);
  x.dout = attention_at<T>(p.dout, qh * p.nq * p.dv);
  x.lse = attention_at<L>(p.lse, qh * p.nq);
  x.gq = attention_at<T>(p.second.q, qh * p.nq * p.d);
  x.gk = attention_at<T>(p.second.k, kh * p.nk * p.d);
  x.gv = attention_at<T>(p.second.v, kh * p.nk * p.dv);
  x.gbias = attention_at<T>(p.second.bias_full, qh * p.nq * p.nk);
  x.nq = p.nq;
  x.nk = p.nk;
  x.d = p.d;
  x.dv = p.dv;
  x.len = p.key_lengths ? p.key_lengths[b] : p.nk;
  x.off = attention_diagonal(x.len, p.nq, p.top_left != 0);
  x.kh = kh;
  x.base = qh * p.nq;
  x.causal = p.causal != 0;
  return x;
}

// The second inputs of backward_backward and of the JVP, from the named fields of the block.
inline AttentionSecondInputs attention_cotangents(const mk_attention_params& p) {
  AttentionSecondInputs s;
  s.q = p.cot_grad_q;
  s.k = p.cot_grad_k;
  s.v = p.cot_grad_v;
  s.bias_full = p.cot_grad_bias_full;
  s.q_strides = p.cot_grad_q_strides;
  s.k_strides = p.cot_grad_k_strides;
  s.v_strides = p.cot_grad_v_strides;
  return s;
}
inline AttentionSecondInputs attention_tangents(const mk_attention_params& p) {
  AttentionSecondInputs s;
  s.q = p.tan_q;
  s.k = p.tan_k;
  s.v = p.tan_v;
  s.bias_full = p.tan_bias_full;
  s.q_strides = p.tan_q_strides;
  s.k_strides = p.tan_k_strides;
  s.v_strides = p.tan_v_strides;
  return s;
}

MK_ISA_END

}  // namespace mk
