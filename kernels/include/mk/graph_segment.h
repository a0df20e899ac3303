// The fixed segmentation of long rows shared by the graph spmm kernels of both devices
// (kernels/cpu/graph.cpp, kernels/cuda/graph.cu), so that a hub row can be split across GPU lane
// groups and stay bitwise equal to the CPU twin (issue 15).
//
// A row of n non-zeros [b, e) with n <= kGraphSegment is one segment. A longer row (a "heavy"
// row) is cut into segments of kGraphSegment non-zeros counted from the row's own start:
// segment j is [b + j·S, min(b + (j + 1)·S, e)). Each segment is summed from 0 in CSR order
// (acc = fma(w, x, acc)), and the row is the left fold of the segment sums:
// ((s_0 + s_1) + s_2) + ... (mean: that / n). Max and min need no rule: the first of equal
// candidates (NaN first) is the same whatever the cut, so their segments combine exactly.
//
// On CUDA, segment j >= 1 of a heavy row starts in the global chunk t = floor((b + j·S) / S) of
// the non-zeros, and it is the only segment starting there that is not the first of its row:
// the row containing position t·S holds it (b < t·S, because j >= 1). So one slot per chunk
// holds every partial result a split needs, and the chunk's row is found by one binary search in
// row_ptr: the plan is computed from the row pointer, never stored (see graph.cu).
#pragma once

#include <cstdint>

namespace mk {

constexpr int64_t kGraphSegment = 128;  // non-zeros per segment (a power of two)
static_assert((kGraphSegment & (kGraphSegment - 1)) == 0, "a power of two");

// The pass whose hub-split scratch graph_gat_workspace sizes (kernels/{cpu,cuda}/gat.*): edge
// softmax, the fused GAT forward, its fused backward.
enum GatPass { kGatPassSoftmax = 0, kGatPassForward = 1, kGatPassBackward = 2 };

}  // namespace mk
