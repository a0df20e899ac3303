// The v2 SIMT softmax attention (F32 / F64) of kernels/cuda/attention/simt2.cu: accumulators in
// registers, 16-byte shared loads, cp.async tiles. Reached through the one-place choice of
// mk/attention_simt_choice.h from forward.cu and backward.cu (same AttentionParams as v1).
#pragma once
#include <cstdint>

#include "mk/attention.h"

namespace mk {
namespace cuda {
// The tiles (query rows x keys) of the v2 forward: SIMT2_TILE_AUTO picks the one with the most
// resident blocks per SM, then the larger; the others force one (benchmarks/gpu/attention_harness.cu
// times each). 64 x 64 and 128 x 64: F32 only; 128 x 64: Dv <= 128.
enum Simt2ForwardTile { SIMT2_TILE_AUTO = 0, SIMT2_TILE_64x64 = 1, SIMT2_TILE_64x32 = 2, SIMT2_TILE_128x64 = 3 };
// The v2 forward; KERNEL_UNSUPPORTED where it does not apply (mk/attention_simt_choice.h), the
// tensors are not 16-byte aligned, the device is older than sm_80 or the tile does not fit.
int simt2_attention_forward(const AttentionParams& p, void* stream, int tile = SIMT2_TILE_AUTO);
// The v2 backward (D = rowsum(dO ∘ O) into the workspace, then the dQ pass and the dK/dV pass);
// KERNEL_UNSUPPORTED as above.
int simt2_attention_backward(const AttentionParams& p, void* stream);
// The SIMT version (MK_SIMT_V1, MK_SIMT_V2) the call's forward / backward asks for: the selection,
// else MK_ATTN_SIMT / MK_ATTN_SIMT_BWD, else the default (mk/attention_simt_choice.h).
int attention_simt_forward_version(const AttentionParams& p);
int attention_simt_backward_version(const AttentionParams& p);
}  // namespace cuda
}  // namespace mk
