// Launch helpers shared by the CUDA graph kernels (graph.cu, gat.cu): a one-dimensional grid of
// THREADS-thread blocks through cudaLaunchKernelEx (so the kernels also run under the host
// emulator, tests/cuda-emu), and the lane count of a group.
#pragma once

#include <climits>
#include <cstdint>

#include "common.cuh"
#include "mk/graph_segment.h"

namespace mk {
namespace cuda {

// The smallest power of two >= n, at most 32 (lanes of a group within one warp).
inline int pow2_at_least(int64_t n) {
  int g = 1;
  while (g < 32 && g < n) g *= 2;
  return g;
}

// kernel<<<ceil(threads_total / THREADS), THREADS, 0, stream>>>(args...); 0 or the CUDA error.
template <int THREADS, class... KArgs, class... Args>
int launch_1d(void (*kernel)(KArgs...), int64_t threads_total, cudaStream_t stream, Args... args) {
  if (threads_total <= 0) return 0;
  return launch_grid(kernel, (threads_total + THREADS - 1) / THREADS, THREADS, 0, stream, args...);
}


// ---- the split of hub rows (issue 15; mk/graph_segment.h): chunks of kGraphSegment non-zeros ----
// Shared by graph.cu (spmm) and gat.cu (edge softmax, GAT): a group per chunk t of the non-zeros
// [t·S, (t + 1)·S) finds, by binary search in row_ptr, the hub row starting in it or the segment
// j >= 1 of a hub row starting in it (at most one of each).
// The row holding non-zero pos: the last r with row_ptr[r] <= pos (rows >= 1, pos < nnz =
// row_ptr[rows]), by binary search.
__device__ __forceinline__ int64_t row_holding(int64_t rows, const int64_t* __restrict__ row_ptr, int64_t pos) {
  int64_t lo = 0, hi = rows - 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (row_ptr[mid] <= pos)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// The hub row (longer than S = kGraphSegment non-zeros) that starts in chunk t of the non-zeros
// [t·S, (t + 1)·S), if any: at most one does (it runs past the chunk's end), and it holds the
// chunk's last non-zero min((t + 1)·S, nnz) - 1, found by binary search in row_ptr (rows >= 1).
__device__ __forceinline__ bool chunk_hub_row(int64_t rows, int64_t nnz, const int64_t* __restrict__ row_ptr,
                                              int64_t t, int64_t* r) {
  constexpr int64_t S = kGraphSegment;
  const int64_t pos = (t + 1) * S <= nnz ? (t + 1) * S - 1 : nnz - 1;
  const int64_t lo = row_holding(rows, row_ptr, pos);
  *r = lo;
  const int64_t b = row_ptr[lo];
  return b >= t * S && row_ptr[lo + 1] - b > S;
}

// The segment of chunk t (t >= 1) of the hub-row split, if any: the row holding non-zero t·S
// (binary search in row_ptr; rows >= 1, t·S < nnz); if it is longer than S and started before
// t·S, its first segment start sb >= t·S (the only segment j >= 1 of any row starting in the chunk,
// mk/graph_segment.h), when sb is inside the row: true, with sb, the row's end e and (row) the row.
__device__ __forceinline__ bool chunk_segment(int64_t rows, const int64_t* __restrict__ row_ptr, int64_t t,
                                              int64_t* sb, int64_t* e, int64_t* row = nullptr) {
  constexpr int64_t S = kGraphSegment;
  const int64_t pos = t * S;
  const int64_t lo = row_holding(rows, row_ptr, pos);
  const int64_t b = row_ptr[lo];
  *e = row_ptr[lo + 1];
  if (row) *row = lo;
  if (b == pos || *e - b <= S) return false;  // no segment j >= 1 starts in this chunk
  *sb = b + (pos - b + S - 1) / S * S;
  return *sb < *e;
}

}  // namespace cuda
}  // namespace mk
