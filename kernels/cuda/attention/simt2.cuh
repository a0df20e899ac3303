// The v2 SIMT softmax attention (F32 / F64) of kernels/cuda/attention/simt2.cu: accumulators in
// registers, 16-byte shared loads, cp.async tiles. Reached through the one-place choice of
// mk/attention_simt_choice.h from forward.cu and backward.cu (same AttentionParams as v1).
#pragma once
#include <cstdint>

#include "mk/attention.h"

namespace mk {
namespace cuda {
// The v2 forward; KERNEL_UNSUPPORTED where it does not apply (mk/attention_simt_choice.h), the
// tensors are not 16-byte aligned, the device is older than sm_80 or its tiles do not fit.
// keys_per_tile: 0 picks (the most resident blocks, then the larger tile), 64 or 32 forces one
// (benchmarks/gpu/attention_harness.cu times both).
int simt2_attention_forward(const AttentionParams& p, void* stream, int keys_per_tile = 0);
// The v2 backward (D = rowsum(dO ∘ O) into the workspace, then the dQ pass and the dK/dV pass);
// KERNEL_UNSUPPORTED as above.
int simt2_attention_backward(const AttentionParams& p, void* stream);
// The SIMT version (MK_SIMT_V1, MK_SIMT_V2) the call's forward / backward asks for: the selection,
// else MK_ATTN_SIMT / MK_ATTN_SIMT_BWD, else the default (mk/attention_simt_choice.h).
int attention_simt_forward_version(const AttentionParams& p);
int attention_simt_backward_version(const AttentionParams& p);
}  // namespace cuda
}  // namespace mk
