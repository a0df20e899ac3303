// Arguments of the softmax-attention kernels (CPU and CUDA share them).
//
//   q: [B, H, Nq, D]   k: [B, Hkv, Nk, D]   v: [B, Hkv, Nk, Dv]   (contiguous; Hkv divides H)
//   S = scale * q k^T + bias, masked;  P = softmax_rows(S);  out = P v;  lse = logsumexp_rows(S)
//   bias (optional): element (b, h, i, j) at bias[b * bias_bs + h * bias_hs + i * Nk + j]
//   key_lengths (optional, [B]): keys j >= L_b are padding
//   causal: query i sees keys j <= i + (L_b - Nq) (bottom-right aligned)
// Fully masked rows give out = 0 and lse = -inf.
// dtype F32 / F64: every pointer in that type. BF16 / F16 (forward and backward only): every
// tensor in that type except lse, which is F32 (see attention_workspace in mk/kernels.inc).
#pragma once
#include <cstdint>

#include "mk/isa_ns.h"
#include "mk/scalar.h"  // MK_HD

namespace mk {
MK_ISA_BEGIN
// The mask every kernel applies (CPU, CUDA SIMT and tensor cores): with len = L_b keys and
// off = L_b - Nq, query row i sees keys j < attention_key_end(i, ...), and key j is seen by rows
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
MK_ISA_END

struct AttentionParams {
  int dtype = 0;
  int64_t batch = 0, heads = 0, kv_heads = 0, nq = 0, nk = 0, d = 0, dv = 0;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* bias = nullptr;
  int64_t bias_bs = 0, bias_hs = 0;
  const int64_t* key_lengths = nullptr;
  double scale = 1.0;
  int causal = 0;
  // F32 forward and backward on CUDA may run on TF32 tensor cores (opt-in; ignored elsewhere)
  int allow_tf32 = 0;
  // saved by the forward, read by later passes
  const void* out = nullptr;  // [B, H, Nq, Dv]
  const void* lse = nullptr;  // [B, H, Nq]
  const void* dout = nullptr; // [B, H, Nq, Dv]
  // second inputs: cotangents of (dq, dk, dv, dbias) for the double backward, or tangents of
  // (q, k, v, bias) for the JVP; null means zero. g_bias is a full [B, H, Nq, Nk].
  const void* gq = nullptr;
  const void* gk = nullptr;
  const void* gv = nullptr;
  const void* gbias = nullptr;
  // outputs (null where not wanted):
  //   forward:          out0 = out, out1 = lse
  //   backward:         out0 = dq, out1 = dk, out2 = dv, out3 = dS (full [B, H, Nq, Nk])
  //   backward_backward out0 = gq', out1 = gk', out2 = gv', out3 = g_dout, out4 = g_bias (full)
  //   jvp:              out0 = tangent of out, out1 = tangent of lse
  void* out0 = nullptr;
  void* out1 = nullptr;
  void* out2 = nullptr;
  void* out3 = nullptr;
  void* out4 = nullptr;
  void* workspace = nullptr;  // attention_workspace() bytes
  // set by the CPU kernels inside their workspace (callers leave them null): k, v, gk, gv
  // transposed into [B*Hkv][key tile][cols][tile] blocks
  const void* packed_k = nullptr;
  const void* packed_v = nullptr;
  const void* packed_gk = nullptr;
  const void* packed_gv = nullptr;
};

}  // namespace mk
