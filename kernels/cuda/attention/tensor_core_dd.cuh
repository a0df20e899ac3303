// The 16-bit (BF16, F16) tensor-core double backward and JVP of kernels/cuda/attention/
// tensor_core_dd.cu, reached through the dtype dispatch of kernels/cuda/attention/backward_backward.cu
// and jvp.cu.
#pragma once
#include <cstdint>

#include "mk/attention.h"

namespace mk {
namespace cuda {
// KERNEL_UNSUPPORTED where mk/attention_tc_choice.h (attention_tc_second_applies) or the device's
// shared memory rules it out, before anything is launched: native/ then runs the F32 path
int tc_attention_backward_backward(const AttentionParams& p, void* stream);
// the JVP the same way (no workspace; the lse tangent in F32)
int tc_attention_jvp(const AttentionParams& p, void* stream);
// the Hopper passes of the 16-bit double backward (tensor_core_sm90_dd.cu: stats, q', dO', k', v'),
// after the D pass: 0 when they all ran, or KERNEL_UNSUPPORTED with nothing launched (a device other
// than 9.0, a build without sm_90a code, D != Dv or a head dim other than 64 / 128, unaligned
// inputs); tensor_core_dd.cu's backward_backward then runs its own
int tc_sm90_backward_backward_passes(const AttentionParams& p, void* stream);
// the Hopper JVP (tensor_core_sm90_dd.cu) where it applies (as the double-backward passes); else
// KERNEL_UNSUPPORTED with nothing launched (tensor_core_dd.cu's jvp then runs its m16n8k16 kernel)
int tc_sm90_jvp(const AttentionParams& p, void* stream);
// bytes of workspace the double backward needs: the F32 row statistics D, C, E, each [B, H, Nq]
int64_t tc_attention_backward_backward_workspace(const AttentionParams& p);
}  // namespace cuda
}  // namespace mk
