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
// bytes of workspace the double backward needs: the F32 row statistics D, C, E, each [B, H, Nq]
int64_t tc_attention_backward_backward_workspace(const AttentionParams& p);
}  // namespace cuda
}  // namespace mk
