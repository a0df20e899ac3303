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
//   v2 backward  the same machinery for the two backward passes (dQ over K/V tiles; dK/dV over
//       Q/dO/lse/D tiles: 128 keys per block), no atomics, deterministic; where the v2 forward
//       applies (BF16/F16, max(D, Dv) <= 128, sm_80+).
//   sm90  Hopper (tensor_core_sm90.cu): 128 query rows per block on wgmma, K/V tiles of
//       128 keys by TMA into a 2-stage mbarrier ring, a producer and two consumer warpgroups;
//       BF16/F16, D = Dv in {64, 128}, a 9.0 device and a build with sm_90a code (elsewhere v2).
//   sm90 backward  the same machinery for the two backward passes (tensor_core_sm90_backward.cu: dQ
//       over K/V tiles, dK/dV over Q/dO tiles, 128 rows or keys per block), no atomics,
//       deterministic; where the sm90 forward applies (elsewhere the v2 backward).
//
// Default: v1 everywhere, until v2 has been timed on a GPU (benchmarks/gpu/attention_harness.cu);
// the environment variable MK_ATTN_TC=v2 or v2k32 selects that forward where it applies (v1 forces v1;
// sm90 or wgmma the Hopper forward),
// MK_ATTN_TC_BWD=v2 the v2 backward, sm90 or wgmma the Hopper backward (v1 forces v1).
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "mk/codes.h"

namespace mk {

enum TcKernelVersion { MK_TC_V1 = 1, MK_TC_V2 = 2, MK_TC_V2_K32 = 3, MK_TC_SM90 = 4 };

// 0: no override; MK_TC_V1, MK_TC_V2 or MK_TC_V2_K32 from MK_ATTN_TC ("v1", "v2", "v2k32"; anything
// else: no override)
inline int attention_tc_override() {
  const char* e = std::getenv("MK_ATTN_TC");
  if (!e) return 0;
  if (std::strcmp(e, "v1") == 0) return MK_TC_V1;
  if (std::strcmp(e, "v2") == 0) return MK_TC_V2;
  if (std::strcmp(e, "v2k32") == 0) return MK_TC_V2_K32;
  if (std::strcmp(e, "sm90") == 0 || std::strcmp(e, "wgmma") == 0) return MK_TC_SM90;
  return 0;
}

// 0: no override; MK_TC_V1, MK_TC_V2 or MK_TC_SM90 from MK_ATTN_TC_BWD ("v1", "v2", "sm90" or
// "wgmma"; anything else: no override)
inline int attention_tc_backward_override() {
  const char* e = std::getenv("MK_ATTN_TC_BWD");
  if (!e) return 0;
  if (std::strcmp(e, "v1") == 0) return MK_TC_V1;
  if (std::strcmp(e, "v2") == 0) return MK_TC_V2;
  if (std::strcmp(e, "sm90") == 0 || std::strcmp(e, "wgmma") == 0) return MK_TC_SM90;
  return 0;
}

// Whether the v2 forward can run the call: 16-bit operands, padded head dim 64 or 128, sm_80+.
inline bool attention_tc_v2_applies(int dtype, int64_t d, int64_t dv, int arch_major) {
  const int64_t w = d > dv ? d : dv;
  return (dtype == MK_BF16 || dtype == MK_F16) && w >= 1 && w <= 128 && arch_major >= 8;
}

// Whether the Hopper forward (tensor_core_sm90.cu: wgmma + TMA, sm_90a) can run the call: 16-bit
// operands, D = Dv in {64, 128}, a device of compute capability 9.0 (the library must also have been
// built with 90a machine code, and q, k, v be 16-byte aligned: checked where it launches). Where it
// does not apply, a forced sm90 runs v2 (v1 where v2 does not apply).
inline bool attention_tc_sm90_applies(int dtype, int64_t d, int64_t dv, int arch_major, int arch_minor) {
  return (dtype == MK_BF16 || dtype == MK_F16) && d == dv && (d == 64 || d == 128) && arch_major == 9 &&
         arch_minor == 0;
}

struct AttentionTcChoice {
  int forward;   // MK_TC_V1, MK_TC_V2 or MK_TC_V2_K32
  int backward;  // MK_TC_V1, MK_TC_V2 or MK_TC_SM90 (v2 and sm90 apply where their forwards do)
};

// override: attention_tc_override()'s value; backward_override: attention_tc_backward_override()'s.
// `causal` is part of the key (v2 treats both alike today; the table keeps the column so a
// causal-specific choice has its place).
inline AttentionTcChoice attention_tc_choose(int dtype, int64_t d, int64_t dv, int arch_major, bool causal,
                                             int override_version, int backward_override = 0) {
  (void)causal;
  AttentionTcChoice c{MK_TC_V1, MK_TC_V1};
  // Measured 2026-12-05 on an H100 (benchmarks/results/gpu-2026-12-05.md, BF16/F16 [4,16,4096,128]
  // and [1,16,16384,128], causal and not): sm90 forward 5.9-6.6x v1 and 2.7-4.1x v2k32, sm90
  // backward 7.6-8.3x v1, all rows within 2x the naive 16-bit error, reruns bitwise equal. So on a
  // 9.0 device sm90 (v2 where it does not apply); elsewhere v1, as v2 has not been timed on an sm_80 GPU.
  if (dtype == MK_F32) {
    // F32 with TF32 allowed: v1 (m16n8k8), or where chosen (sm90: opt-in, not yet timed) on a 9.x
    // device the one-term TF32 Hopper kernels of tensor_core_sm90_f32.cu and _backward.cu (D = Dv in
    // {64, 128}, 9.0: checked where they launch; v1 elsewhere).
    if (override_version == MK_TC_SM90 && arch_major == 9) c.forward = MK_TC_SM90;
    if (backward_override == MK_TC_SM90 && arch_major == 9) c.backward = MK_TC_SM90;
    return c;
  }
  const int default_forward = arch_major == 9 ? MK_TC_SM90 : MK_TC_V1;
  const int default_backward = arch_major == 9 ? MK_TC_SM90 : MK_TC_V1;
  if (attention_tc_v2_applies(dtype, d, dv, arch_major)) {
    c.forward = override_version != 0 ? override_version : default_forward;
    // sm90 (Hopper only; the minor version and the head dims are checked where it launches)
    if (c.forward == MK_TC_SM90 && arch_major != 9) c.forward = MK_TC_V2;
    c.backward = backward_override != 0 ? backward_override : default_backward;
    if (c.backward == MK_TC_SM90 && arch_major != 9) c.backward = MK_TC_V2;
  }
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

// The Hopper passes of the 16-bit double backward (kernels/cuda/attention/tensor_core_sm90_dd.cu:
// wgmma + TMA, sm_90a; BF16/F16, D = Dv in {64, 128}), opt-in until timed on a GPU:
// MK_ATTN_TC_DD=sm90 (or wgmma), or the selection's second code 3 (attention_tc_second_sm90). Where
// they do not apply, tensor_core_dd.cu's m16n8k16 passes run.
inline bool attention_tc_second_sm90_env() {
  const char* e = std::getenv("MK_ATTN_TC_DD");
  return e && (std::strcmp(e, "sm90") == 0 || std::strcmp(e, "wgmma") == 0);
}

// allow_tf32 (AttentionParams::allow_tf32: the call's flag or the runtime's TF32 switch): F32 calls
// run the same kernels on TF32 MMAs (m16n8k8, F32 accumulation) where they apply, else the exact F32
// SIMT kernels (kernels/cuda/attention/backward_backward.cu, jvp.cu); the override forces those too.
inline bool attention_tc_second_applies(int dtype, int64_t d, int64_t dv, int arch_major, int override_f32,
                                        bool allow_tf32 = false) {
  const int64_t w = d > dv ? d : dv;
  return override_f32 == 0 && (dtype == MK_BF16 || dtype == MK_F16 || (dtype == MK_F32 && allow_tf32)) && w >= 1 &&
         w <= 128 && arch_major >= 8;
}

// ---- the programmatic override (mk_attention_tc_select, issue 10) ---------------------------------
// A process-wide choice consulted before the environment variables, so a JVM (which cannot change
// its own environment) can run every variant. Codes (enum mk_attention_tc_select of metakernels.h):
// forward 0 = none (MK_ATTN_TC or the default), 1 = v1, 2 = v2, 3 = v2k32 (the MK_TC_* values);
// backward 0 = none (MK_ATTN_TC_BWD or the default), 1 = v1, 2 = v2, 4 = sm90 (3 is no backward);
// second (double backward and
// JVP) 0 = none (MK_ATTN_TC_DD or the default), 1 = tensor cores where they apply (the m16n8k16
// passes), 2 = F32 copies, 3 = tensor cores with the Hopper double-backward passes where they apply.
// A forced v2 still runs only where attention_tc_v2_applies (elsewhere v1), as the env does.
inline bool attention_tc_select_valid(int forward, int backward, int second) {
  return forward >= 0 && forward <= MK_TC_SM90 && backward >= 0 && backward <= MK_TC_SM90 &&
         backward != MK_TC_V2_K32 && second >= 0 && second <= 3;
}

// The stored choice of the library that uses it: the CUDA library's copy (set through the kernel
// table's attention_tc_select, read by kernels/cuda/attention/tensor_core*.cu). native/ keeps its
// own copy (native/src/attention.cpp) for mk_attention_tc_kernels and pushes every change to the
// attached tables.
struct AttentionTcSelection {
  std::atomic<int> forward{0};
  std::atomic<int> backward{0};
  std::atomic<int> second{0};
};
inline AttentionTcSelection& attention_tc_selection() {
  static AttentionTcSelection s;
  return s;
}

// The override in force with a selection applied: the selection if set, else the environment's.
inline int attention_tc_forward_code(int selected) { return selected != 0 ? selected : attention_tc_override(); }
inline int attention_tc_backward_code(int selected) {
  return selected != 0 ? selected : attention_tc_backward_override();
}
// 1: the F32 path forced (as attention_tc_second_override), 0: tensor cores where they apply
inline int attention_tc_second_code(int selected) {
  return selected == 2 ? 1 : (selected == 1 || selected == 3) ? 0 : attention_tc_second_override();
}
// Whether the 16-bit double backward and JVP try their Hopper kernels, for a selection code (second):
// 3 yes, 1 (the m16n8k16 kernels) and 2 (F32 copies) no, 0 the environment's (MK_ATTN_TC_DD=sm90).
// The kernels check the device, the build and the call where they launch.
inline bool attention_tc_second_sm90(int selected) {
  return selected == 3 || (selected == 0 && attention_tc_second_sm90_env());
}

}  // namespace mk
