// The 16-bit (BF16, F16) tensor-core softmax attention of kernels/cuda/attention/tensor_core.cu, reached
// through the dtype dispatch of kernels/cuda/attention/forward.cu and backward.cu (same AttentionParams; lse and the
// workspace statistics in F32).
#pragma once
#include <cstdint>

#include "mk/attention.h"

namespace mk {
namespace cuda {
int tc_attention_forward(const AttentionParams& p, void* stream);
int tc_attention_backward(const AttentionParams& p, void* stream);
// bytes of workspace the backward needs: the F32 row statistic D = rowsum(dO ∘ O), [B, H, Nq]
int64_t tc_attention_workspace(const AttentionParams& p);
}  // namespace cuda
}  // namespace mk
