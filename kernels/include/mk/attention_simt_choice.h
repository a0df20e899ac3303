// The choice of SIMT (F32 / F64, no tensor cores) softmax-attention kernel per call, in one place:
// kernels/cuda/attention/forward.cu and backward.cu dispatch on it.
//
//   v1  kernels/cuda/attention/forward.cu, backward.cu (simt.cuh): every tile in shared memory
//       (S, P, the O / dQ / dK / dV accumulators, row statistics), block_gemm with at most 4x4
//       register micro-tiles and scalar shared loads. Every shape: D, Dv up to 256, F32 and F64.
//   v2  kernels/cuda/attention/simt2.cu: the accumulators (O and the running row max / sum; dQ;
//       dK and dV) in registers for the whole key (or query) loop, each thread owning a fixed
//       micro-tile of rows x columns; products by register-blocked outer products fed by 16-byte
//       shared loads from padded, bank-conflict-free rows; K/V (and Q/dO) tiles by cp.async;
//       row reductions by warp shuffles; masks only on the tiles that need them. Applies where
//       D and Dv are multiples of 4 (16-byte rows), at most 256 (F32) or 128 (F64), the tensors
//       are 16-byte aligned, on sm_80+, and where its tiles fit the device's shared memory
//       (kernels/cuda/attention/simt2.cu answers KERNEL_UNSUPPORTED otherwise and v1 runs).
//
// Default: v2 where it was timed and won, v1 elsewhere (a default changes only on a measurement):
// on an H100 (2026-12-05, benchmarks/results/gpu-2026-12-05.md, the harness's simt rows, F32
// [4,16,4096,128] causal and not) the v2 forward took 0.38-0.41x v1's time (0.60-0.63x PyTorch's
// F32 SDPA against 0.23x), forward+backward 0.42x SDPA, the double backward's v2 passes about half
// v1's time, all within 4.4e-6 of v1 and bitwise repeatable. So: F32 on a 9.x device with
// 64 < max(D, Dv) <= 128 takes v2 (forward, backward and the double backward's passes); D <= 64,
// D > 128, F64 and other devices keep v1 until the harness has timed them (it now times D = 64 too).
// MK_ATTN_SIMT=v1|v2 forces the forward where v2 applies, MK_ATTN_SIMT_BWD the backward.
//
//   x3  kernels/cuda/attention/tensor_core_sm90_f32.cu (forward) and tensor_core_sm90_f32_backward.cu
//       (backward): F32 on Hopper tensor cores, every product as three TF32 wgmmas (hi/lo split:
//       F32-class accuracy, what PyTorch's F32 SDPA does with CUTLASS's OpMultiplyAddFastF32).
//       Applies to F32 with D = Dv in {64, 128} on a 9.x device (the kernels need compute
//       capability 9.0 and a build with sm_90a code, else they answer KERNEL_UNSUPPORTED and v2,
//       or v1 where v2 does not apply, runs). Opt-in (MK_ATTN_SIMT=x3, MK_ATTN_SIMT_BWD=x3, or
//       mk_attention_simt_select(3, 3)) until timed on a GPU. Not for the double backward.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "mk/codes.h"

namespace mk {

enum SimtKernelVersion { MK_SIMT_V1 = 1, MK_SIMT_V2 = 2, MK_SIMT_X3 = 3 };

// 0: no override; MK_SIMT_V1, MK_SIMT_V2 or MK_SIMT_X3 from the variable `name` ("v1", "v2", "x3";
// anything else: none; x3 does not count for the double backward)
inline int attention_simt_env(const char* name) {
  const char* e = std::getenv(name);
  if (!e) return 0;
  if (std::strcmp(e, "v1") == 0) return MK_SIMT_V1;
  if (std::strcmp(e, "v2") == 0) return MK_SIMT_V2;
  if (std::strcmp(e, "x3") == 0) return MK_SIMT_X3;
  return 0;
}
inline int attention_simt_override() { return attention_simt_env("MK_ATTN_SIMT"); }
inline int attention_simt_backward_override() { return attention_simt_env("MK_ATTN_SIMT_BWD"); }

// Whether the v2 kernels can run the call (shape and type only; the 16-byte alignment of the
// tensors, the architecture and the shared memory are checked by simt2.cu, which answers
// KERNEL_UNSUPPORTED where they fail).
inline bool attention_simt_v2_applies(int dtype, int64_t d, int64_t dv) {
  const int64_t most = dtype == MK_F64 ? 128 : 256;
  return (dtype == MK_F32 || dtype == MK_F64) && d >= 4 && dv >= 4 && d % 4 == 0 && dv % 4 == 0 && d <= most &&
         dv <= most;
}

// Where v2 is the default (above): F32, a 9.x device, 64 < max(D, Dv) <= 128.
inline bool attention_simt_v2_default(int dtype, int64_t d, int64_t dv, int arch_major) {
  const int64_t w = d > dv ? d : dv;
  return dtype == MK_F32 && arch_major == 9 && w > 64 && w <= 128;
}

// Whether the x3 forward (tensor_core_sm90_f32.cu) can run the call on a device of this major
// (shape, type, architecture; the build, the exact 9.0 device and the alignment are checked by the
// kernel's entry, which answers KERNEL_UNSUPPORTED where they fail).
inline bool attention_simt_x3_applies(int dtype, int64_t d, int64_t dv, int arch_major) {
  return dtype == MK_F32 && d == dv && (d == 64 || d == 128) && arch_major == 9;
}

struct AttentionSimtChoice {
  int forward;   // MK_SIMT_V1, MK_SIMT_V2 or MK_SIMT_X3
  int backward;  // MK_SIMT_V1 or MK_SIMT_V2
};

// arch_major: the device's compute capability major (the default depends on it);
// override_version: attention_simt_override()'s value; backward_override: attention_simt_backward_override()'s.
inline AttentionSimtChoice attention_simt_choose(int dtype, int64_t d, int64_t dv, int arch_major,
                                                 int override_version, int backward_override) {
  AttentionSimtChoice c{MK_SIMT_V1, MK_SIMT_V1};
  const int default_version = attention_simt_v2_default(dtype, d, dv, arch_major) ? MK_SIMT_V2 : MK_SIMT_V1;
  if (attention_simt_v2_applies(dtype, d, dv)) {
    c.forward = override_version != 0 ? override_version : default_version;
    c.backward = backward_override != 0 ? backward_override : default_version;
    // x3 where it applies; elsewhere v2 (which applies wherever x3 was asked for)
    if (c.forward == MK_SIMT_X3 && !attention_simt_x3_applies(dtype, d, dv, arch_major)) c.forward = MK_SIMT_V2;
    if (c.backward == MK_SIMT_X3 && !attention_simt_x3_applies(dtype, d, dv, arch_major)) c.backward = MK_SIMT_V2;
  }
  return c;
}

// ---- the programmatic override -------------------------------------------------------------------
// A process-wide choice consulted before the environment variables (a JVM cannot change its own
// environment): forward and backward each 0 = none (the variable or the default), 1 = v1, 2 = v2,
// 3 = x3. A forced v2 or x3 still runs only where it applies (elsewhere v2 or v1), as the variables do.
inline bool attention_simt_select_valid(int forward, int backward) {
  return forward >= 0 && forward <= MK_SIMT_X3 && backward >= 0 && backward <= MK_SIMT_X3;
}
struct AttentionSimtSelection {
  std::atomic<int> forward{0};
  std::atomic<int> backward{0};
  std::atomic<int> dd{0};  // the double backward's passes (simt2_dd.cu); not in attention_simt_select
};
// The stored choice of the library that uses it (the CUDA library's copy).
inline AttentionSimtSelection& attention_simt_selection() {
  static AttentionSimtSelection s;
  return s;
}
inline int attention_simt_forward_code(int selected) { return selected != 0 ? selected : attention_simt_override(); }
inline int attention_simt_backward_code(int selected) {
  return selected != 0 ? selected : attention_simt_backward_override();
}

// ---- the double backward (kernels/cuda/attention/backward_backward.cu, simt2_dd.cu) ----------------
// v2: the stats pass (C, E; sums in registers), the query pass (q', dO', bias') and the key pass
// (k', v') with register accumulators (simt2_dd.cu); the D preprocess stays v1. Each v2 pass falls
// back to its v1 pass alone where it does not fit. MK_ATTN_SIMT_DD=v2 selects it where it applies (the
// same shapes as the v2 backward; simt2_dd.cu answers KERNEL_UNSUPPORTED for alignment, sm < 80
// or shared memory, and v1 runs); the default as the forward's (attention_simt_v2_default: timed on
// the H100 at D = 128, v2 about twice v1's speed).
inline int attention_simt_dd_override() { return attention_simt_env("MK_ATTN_SIMT_DD"); }
inline int attention_simt_dd_choose(int dtype, int64_t d, int64_t dv, int arch_major, int override_version) {
  const int default_dd = attention_simt_v2_default(dtype, d, dv, arch_major) ? MK_SIMT_V2 : MK_SIMT_V1;
  if (!attention_simt_v2_applies(dtype, d, dv)) return MK_SIMT_V1;
  return override_version != 0 && override_version != MK_SIMT_X3 ? override_version : default_dd;  // (no x3 dd)
}

}  // namespace mk
