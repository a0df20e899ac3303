// The choice of tensor-core softmax-attention kernel per call (dtype, head dim, architecture,
// causal), in one place: kernels/cuda/attention/tensor_core.cu dispatches on it and
// mk_attention_tc_kernels (native/src/attention.cpp, printed by `metakernels info`) describes it.
//
//   v1  64 query rows per block (4 warps x 16), plain loads into padded shared rows, one buffer;
//       every head dim up to 256, BF16/F16/TF32. Forward and backward.
//   v2  forward only: 128 query rows per block (8 warps x 16), K/V tiles by cp.async into a
//       2-stage shared ring, ldmatrix fragments (.trans for V), XOR-swizzled shared rows, mask
//       only on the tiles that need it; BF16/F16, max(D, Dv) <= 128, sm_80+. 64 keys per tile
//       (D = 128: one block of 256 threads per SM by registers).
//   v2k32  v2 with 32 keys per tile and two blocks per SM (128 registers).
//
// Default: v1 everywhere, until v2 has been timed on a GPU (benchmarks/gpu/attention_harness.cu);
// the environment variable MK_ATTN_TC=v2 or v2k32 selects that forward where it applies (v1 forces v1).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "mk/codes.h"

namespace mk {

enum TcKernelVersion { MK_TC_V1 = 1, MK_TC_V2 = 2, MK_TC_V2_K32 = 3 };

// 0: no override; MK_TC_V1, MK_TC_V2 or MK_TC_V2_K32 from MK_ATTN_TC ("v1", "v2", "v2k32"; anything
// else: no override)
inline int attention_tc_override() {
  const char* e = std::getenv("MK_ATTN_TC");
  if (!e) return 0;
  if (std::strcmp(e, "v1") == 0) return MK_TC_V1;
  if (std::strcmp(e, "v2") == 0) return MK_TC_V2;
  if (std::strcmp(e, "v2k32") == 0) return MK_TC_V2_K32;
  return 0;
}

// Whether the v2 forward can run the call: 16-bit operands, padded head dim 64 or 128, sm_80+.
inline bool attention_tc_v2_applies(int dtype, int64_t d, int64_t dv, int arch_major) {
  const int64_t w = d > dv ? d : dv;
  return (dtype == MK_BF16 || dtype == MK_F16) && w >= 1 && w <= 128 && arch_major >= 8;
}

struct AttentionTcChoice {
  int forward;   // MK_TC_V1, MK_TC_V2 or MK_TC_V2_K32
  int backward;  // MK_TC_V1 (the only backward so far)
};

// override: attention_tc_override()'s value. `causal` is part of the key (the v2 forward treats
// both alike today; the table keeps the column so a causal-specific choice has its place).
inline AttentionTcChoice attention_tc_choose(int dtype, int64_t d, int64_t dv, int arch_major, bool causal,
                                             int override_version) {
  (void)causal;
  AttentionTcChoice c{MK_TC_V1, MK_TC_V1};
  const int default_forward = MK_TC_V1;  // v2 not yet timed on a GPU
  if (attention_tc_v2_applies(dtype, d, dv, arch_major))
    c.forward = override_version != 0 ? override_version : default_forward;
  return c;
}

// ---- the 16-bit double backward and JVP (kernels/cuda/attention/tensor_core_dd.cu) ---------------
// BF16/F16 double backward and JVP on tensor cores (m16n8k16, F32 accumulation, O(N·D) memory) where
// max(D, Dv) <= 128 on sm_80+; elsewhere, and with MK_ATTN_TC_DD=0, native/ runs the F32 kernels
// on F32 copies of the inputs (the path before it). This is the one place that decides.
// 1: MK_ATTN_TC_DD=0 (the F32 path forced); 0: no override
inline int attention_tc_second_override() {
  const char* e = std::getenv("MK_ATTN_TC_DD");
  return e && std::strcmp(e, "0") == 0 ? 1 : 0;
}

inline bool attention_tc_second_applies(int dtype, int64_t d, int64_t dv, int arch_major, int override_f32) {
  const int64_t w = d > dv ? d : dv;
  return override_f32 == 0 && (dtype == MK_BF16 || dtype == MK_F16) && w >= 1 && w <= 128 && arch_major >= 8;
}

}  // namespace mk
