// The choice of CUDA linear-attention form per call, in one place (kernels/cuda/linear_attention.cu
// dispatches on it; the forms are described there and in linear_attention_recurrent.cuh).
//
//   chunked    the chunk-parallel form: chunk states K_sᵀ V_s written to the scratch, a scan over
//              them, then the output blocks (tensor cores for 16-bit and TF32, SIMT for F32/F64).
//              Timed on an H100 (benchmarks/results/gpu-2026-12-05.md): 0.22-0.65x PyTorch's
//              composed forms; the default.
//   recurrent  masked (causal / anti-causal) square products on tensor cores, a block per (group,
//              64 value columns) walking the chunks with the state in registers: no chunk states in
//              global memory, no scan (few groups: the walk cut into segments whose starting
//              states come from a state pass and a scan). Unmasked products (any nq, nk) take its
//              state form: the state pass writes a few key segments' states K_sᵀ V_s, then a block
//              per 256 query rows sums them and streams Q: O = Q S (no chunk states, no scan).
//              16-bit data, and F32 with TF32 allowed.
//   x3         F32 without TF32 (the exact path) on the recurrent form with every product as three
//              TF32 MMAs (hi/lo split, F32-class accuracy); masked square products and unmasked
//              ones (state form), else SIMT.
//
// Both are opt-in (MK_LINEAR_TC=recurrent, MK_LINEAR_F32=x3, or from code mk_linear_attention_select /
// LinearAttention.CudaForms.select, which come before the variables) until timed on a GPU: neither
// has run on one (written 2026-12-06, checked in the host emulator only). A default changes only
// on a measurement (benchmarks/gpu/linear_attention_harness.cu times every form).
#pragma once
#include <cstdlib>
#include <cstring>

namespace mk {

// (the codes of mk_linear_attention_select in metakernels.h; 0 there: the environment's choice)
enum LinearTcForm { MK_LINEAR_CHUNKED = 1, MK_LINEAR_RECURRENT = 2 };
enum LinearF32Form { MK_LINEAR_F32_SIMT = 1, MK_LINEAR_F32_X3 = 3 };

struct LinearAttentionChoice {
  int tensor_core;  // MK_LINEAR_CHUNKED or MK_LINEAR_RECURRENT (16-bit and TF32 products)
  int f32;          // MK_LINEAR_F32_SIMT or MK_LINEAR_F32_X3 (F32 products without TF32)
};

inline bool linear_attention_select_valid(int tensor_core, int f32) {
  return (tensor_core == 0 || tensor_core == MK_LINEAR_CHUNKED || tensor_core == MK_LINEAR_RECURRENT) &&
         (f32 == 0 || f32 == MK_LINEAR_F32_SIMT || f32 == MK_LINEAR_F32_X3);
}

// The variables (0: unset or any other value), read per call: a test or a benchmark may switch
// forms between calls.
inline int linear_attention_tc_env() {
  const char* t = std::getenv("MK_LINEAR_TC");
  if (!t) return 0;
  if (std::strcmp(t, "recurrent") == 0) return MK_LINEAR_RECURRENT;
  if (std::strcmp(t, "chunked") == 0) return MK_LINEAR_CHUNKED;
  return 0;
}
inline int linear_attention_f32_env() {
  const char* f = std::getenv("MK_LINEAR_F32");
  if (!f) return 0;
  if (std::strcmp(f, "x3") == 0) return MK_LINEAR_F32_X3;
  if (std::strcmp(f, "simt") == 0) return MK_LINEAR_F32_SIMT;
  return 0;
}

// The choice: the programmatic selection (0: none) first, then the variable, then the default.
inline LinearAttentionChoice linear_attention_choose(int sel_tc = 0, int sel_f32 = 0) {
  LinearAttentionChoice c{MK_LINEAR_CHUNKED, MK_LINEAR_F32_SIMT};
  const int t = sel_tc ? sel_tc : linear_attention_tc_env();
  const int f = sel_f32 ? sel_f32 : linear_attention_f32_env();
  if (t) c.tensor_core = t;
  if (f) c.f32 = f;
  return c;
}

}  // namespace mk
