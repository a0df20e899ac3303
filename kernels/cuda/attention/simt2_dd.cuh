// The v2 SIMT (F32 / F64) passes of the softmax-attention double backward
// (kernels/cuda/attention/simt2_dd.cu: stats, query and key passes), chosen by backward_backward.cu
// through mk/attention_simt_choice.h (MK_ATTN_SIMT_DD).
#pragma once
#include "mk/attention.h"

namespace mk {
namespace cuda {
// The row statistics C and E of the double backward into the workspace (after D, which the
// preprocess of backward_backward.cu writes first), sums in registers; equal to v1's stats pass
// within rounding. Needs p.second set (attention_cotangents); KERNEL_UNSUPPORTED (nothing written)
// where v2 does not apply (mk/attention_simt_choice.h), a tensor is not 16-byte aligned, the
// device is older than sm_80 or no tile fits its shared memory.
int simt2_attention_dd_stats(const AttentionParams& p, void* stream);
// q' (cot_q), dO' (cot_dout) and bias' (cot_bias_full) of the double backward, with their
// accumulators in registers. Needs p.second set and D, C, E of the rows in the workspace (the D
// preprocess of backward_backward.cu, then the v2 stats pass or v1's).
// KERNEL_UNSUPPORTED (nothing written) where v2 does not apply (mk/attention_simt_choice.h), a
// tensor is not 16-byte aligned, the device is older than sm_80 or no tile fits its shared memory.
int simt2_attention_dd_query(const AttentionParams& p, void* stream);
// k' (cot_k) and v' (cot_v), register accumulators over every query head of the KV head and every
// query tile; the same requirements and KERNEL_UNSUPPORTED cases.
int simt2_attention_dd_key(const AttentionParams& p, void* stream);
// The version (MK_SIMT_V1, MK_SIMT_V2) the call's double backward asks for: the selection's dd,
// else MK_ATTN_SIMT_DD, else the default (v1).
int attention_simt_dd_version(const AttentionParams& p);
}  // namespace cuda
}  // namespace mk
