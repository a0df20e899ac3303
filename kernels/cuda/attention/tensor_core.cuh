// The 16-bit (BF16, F16) tensor-core softmax attention of kernels/cuda/attention/tensor_core.cu, reached
// through the dtype dispatch of kernels/cuda/attention/forward.cu and backward.cu (same AttentionParams; lse and the
// workspace statistics in F32).
#pragma once
#include <cstdint>

#include "mk/attention.h"

namespace mk {
namespace cuda {
int tc_attention_forward(const AttentionParams& p, void* stream);
// the forward of one version (MK_TC_V1, MK_TC_V2 of mk/attention_tc_choice.h), for the emulator test
// and benchmarks/gpu/attention_harness.cu; v2 where it does not apply or fit runs v1
int tc_attention_forward_version(const AttentionParams& p, void* stream, int version);
int tc_attention_backward(const AttentionParams& p, void* stream);
// bytes of workspace the backward needs: the F32 row statistic D = rowsum(dO ∘ O), [B, H, Nq]
int64_t tc_attention_workspace(const AttentionParams& p);
// the backward of one version (MK_TC_V1, MK_TC_V2 of mk/attention_tc_choice.h), for the emulator
// test and benchmarks/gpu/attention_harness.cu; v2 where it does not apply or fit runs v1
int tc_attention_backward_version(const AttentionParams& p, void* stream, int version);
// the Hopper forward (tensor_core_sm90.cu) where it applies (a 9.0 device, the library built with
// sm_90a code, BF16/F16, D = Dv in {64, 128}, 16-byte aligned q, k, v); else KERNEL_UNSUPPORTED
int tc_sm90_forward(const AttentionParams& p, void* stream);
bool tc_sm90_built();
// the Hopper backward (tensor_core_sm90_backward.cu: preprocess, dQ pass, dK/dV pass) where it
// applies (as the forward, and 16-byte aligned dO, 4-byte aligned gradients); else KERNEL_UNSUPPORTED
// before anything is launched
int tc_sm90_backward(const AttentionParams& p, void* stream);
// the F32 forward on Hopper tensor cores, 3xTF32 (tensor_core_sm90_f32.cu) where it applies (F32,
// D = Dv in {64, 128}, a 9.0 device, the sm_90a build, 16-byte aligned q, k, v); else
// KERNEL_UNSUPPORTED before anything is launched
int tc_sm90_x3_forward(const AttentionParams& p, void* stream);
// the same kernel with one TF32 product per MMA, for F32 with allow_tf32 (the same conditions)
int tc_sm90_tf32_forward(const AttentionParams& p, void* stream);
// the backward on Hopper tensor cores, 3xTF32 (tensor_core_sm90_f32_backward.cu: D preprocess, dQ
// pass, dK/dV pass) where the x3 forward applies (and dO 16-byte aligned, a workspace); else
// KERNEL_UNSUPPORTED before anything is launched
int tc_sm90_x3_backward(const AttentionParams& p, void* stream);
// the same kernels with one TF32 product per MMA, for F32 with allow_tf32 (the same conditions)
int tc_sm90_tf32_backward(const AttentionParams& p, void* stream);
bool tc_sm90_x3_applies(const AttentionParams& p);
// what the x3 forward and backward entries both ask: it applies, the build has sm_90a code, the
// device is 9.0, the sizes fit the kernels' ints, q, k, v are 16-byte aligned
bool tc_sm90_x3_launchable(const AttentionParams& p);
}  // namespace cuda
}  // namespace mk
