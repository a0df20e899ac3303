// Graph message passing on CUDA: the twin of kernels/cpu/graph.cpp (shapes and the CSR form in
// mk/kernels.inc and metakernels.h).
//
//   spmm:  out[r, h, :] = ⊕_{k ∈ row r} w[k, h] · x[col[k], h, :]     ⊕ ∈ {sum, mean, max, min}
//   sddmm: out[k, h]    = Σ_d a[r, h, d] · b[col[k], h, d]              for each k ∈ row r
//
// spmm: a group of G lanes (G a power of two ≤ 32, so several small rows share a warp) owns one
// row and one block of feature columns; each lane holds C chunks of VEC adjacent columns in
// registers (VEC = 4 floats or 2 doubles, one 16-byte load, where the columns and pointers allow),
// walks the row's non-zeros in CSR order and writes its columns once. Each output element is
// therefore reduced by one lane in the CPU twin's order with the CPU twin's arithmetic (sum:
// fma(w, x, acc) from 0, a row longer than kGraphSegment non-zeros as the left fold of its
// segments' sums, mk/graph_segment.h; mean: / row length; max/min: the first of equal candidates,
// NaN wins): no atomics, bitwise equal to the CPU. kUnroll non-zeros are loaded before they are
// accumulated (in order), so several x rows are in flight per lane.
//
// Hub rows (issue 15): a power-law graph has rows of 10^5 non-zeros, which one group would walk
// alone while the rest of the GPU idles. The row kernels take only the light rows (at most S =
// kGraphSegment non-zeros: their code and registers are as before); when nnz > S, the hub rows
// go to two more launches, both with one group per chunk t of S non-zeros ([t·S, (t + 1)·S)), each
// finding its row by one binary search in row_ptr (no plan is stored anywhere):
//   partial (with the scratch of graph_spmm_workspace, which native/ takes from the device caching
//     allocator for the call): chunk t sums the segment j >= 1 (of any hub row) that starts in
//     it, if any (at most one does: mk/graph_segment.h), into slot t;
//   hub: chunk t takes the hub row that starts in it (at most one), sums segment 0 and folds the
//     slots of segments 1, 2, ... in order (sum: +; max/min: the scan's rule, exact). Without the
//     scratch it sums the segments itself, one after the other: the same bits, slower.
// The critical path of a hub row drops from its length to S + its number of segments.
//
// sddmm: a group of G lanes owns one (non-zero, head); each lane sums its columns in order, then
// the group adds the lanes' partial sums with a fixed butterfly (__shfl_xor_sync): deterministic,
// though in another order than the CPU's, so the two agree to rounding. Every lane of a warp runs
// the same number of shuffles (no early exit), as full-mask shuffles require.
//
// The structure check counts bad row pointers and columns with integer atomics into a device
// counter (exact, so order does not matter) and copies the counts to the host.
#include <algorithm>
#include <climits>
#include <mutex>

#include "common.cuh"
#include "graph_launch.cuh"
#include "mk/graph_segment.h"
#include "mk/kernels.h"

namespace mk {
namespace cuda {
namespace {

struct GraphTraits {
  static constexpr int kThreads = 256;  // 8 warps per block
  static constexpr int kMaxChunks = 2;  // VEC-wide column chunks per lane (registers)
  static constexpr int kUnroll = 4;     // non-zeros whose x rows are loaded before accumulating
  static_assert(kThreads % 32 == 0, "whole warps");
};
using Traits = GraphTraits;

// VEC adjacent elements, loaded and stored as one 8- or 16-byte access.
template <class T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

template <class T, int VEC>
__device__ __forceinline__ Pack<T, VEC> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, VEC>*>(p);
}

__device__ __forceinline__ float fma_t(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_t(double a, double b, double c) { return fma(a, b, c); }

// Launch geometry of spmm and sddmm: G lanes per group, C chunks per lane, col_blocks blocks of
// G·VEC·C columns per row (spmm).
struct SpmmGeometry {
  int lanes, chunks;
  int64_t col_blocks;
};

SpmmGeometry spmm_geometry(int64_t F, int vec) {
  const int64_t lanes_needed = (F + vec - 1) / vec;
  SpmmGeometry g{};
  if (lanes_needed <= 32) {
    g.lanes = pow2_at_least(lanes_needed);
    g.chunks = 1;
  } else {
    g.lanes = 32;
    g.chunks = int(std::min<int64_t>(Traits::kMaxChunks, (lanes_needed + 31) / 32));
  }
  const int64_t block_cols = int64_t(g.lanes) * vec * g.chunks;
  g.col_blocks = (F + block_cols - 1) / block_cols;
  return g;
}

// ---- spmm ----------------------------------------------------------------------------------------
// One group per (row, column block); lane `lane` owns columns c0 + c·G·VEC + [0, VEC), c < C.
struct SumColumns {
  int64_t F, heads, D;
};

// acc = the sum over the non-zeros [b, e) (one segment of a row, mk/graph_segment.h) of the lane's
// columns, from 0 in CSR order: acc = fma(w, x, acc); kUnroll non-zeros loaded before they are
// accumulated.
template <class T, int VEC, int C>
__device__ __forceinline__ void segment_sum(int64_t b, int64_t e, const int64_t* __restrict__ col,
                                            const T* __restrict__ w, const int64_t* __restrict__ widx,
                                            const T* __restrict__ x, int64_t F, int64_t heads, const int64_t* cols,
                                            const int64_t* head, const bool* live, T (&acc)[C][VEC]) {
#pragma unroll
  for (int c = 0; c < C; ++c)
#pragma unroll
    for (int v = 0; v < VEC; ++v) acc[c][v] = T(0);
  for (int64_t k0 = b; k0 < e; k0 += Traits::kUnroll) {
    Pack<T, VEC> p[Traits::kUnroll][C];
    T wk[Traits::kUnroll][C];
#pragma unroll
    for (int u = 0; u < Traits::kUnroll; ++u) {
      const int64_t k = k0 + u;
      if (k < e) {
        const T* xr = x + col[k] * F;
#pragma unroll
        for (int c = 0; c < C; ++c)
          if (live[c]) {
            p[u][c] = load_pack<T, VEC>(xr + cols[c]);
            // fma(1, x, acc) is acc + x exactly
            wk[u][c] = w ? w[(widx ? widx[k] : k) * heads + head[c]] : T(1);
          }
      }
    }
#pragma unroll
    for (int u = 0; u < Traits::kUnroll; ++u)
      if (k0 + u < e)
#pragma unroll
        for (int c = 0; c < C; ++c)
          if (live[c])
#pragma unroll
            for (int v = 0; v < VEC; ++v) acc[c][v] = fma_t(wk[u][c], p[u][c].v[v], acc[c][v]);
  }
}

// The lane's columns of one group: cols[c], their head, whether they exist.
template <int VEC, int C>
__device__ __forceinline__ void lane_columns(int64_t c0, int lanes, int64_t F, int64_t D, int64_t* cols,
                                             int64_t* head, bool* live) {
#pragma unroll
  for (int c = 0; c < C; ++c) {
    cols[c] = c0 + int64_t(c) * lanes * VEC;
    live[c] = cols[c] < F;
    head[c] = live[c] ? cols[c] / D : 0;
  }
}

// Sum and mean of the light rows (at most kGraphSegment non-zeros), one group per (row, column
// block): one segment, from 0 in CSR order. Hub rows are left to spmm_sum_hub_kernel.
template <class T, int VEC, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    spmm_sum_kernel(int mean, int64_t rows, int lanes, int64_t col_blocks, int64_t heads, int64_t D,
                    const int64_t* __restrict__ row_ptr, const int64_t* __restrict__ col, const T* __restrict__ w,
                    const int64_t* __restrict__ widx, const T* __restrict__ x, T* __restrict__ out) {
  const int64_t F = heads * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t r = group / col_blocks;
  if (r >= rows) return;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  if (e - b > kGraphSegment) return;
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * VEC * C) + int64_t(lane) * VEC;
  int64_t cols[C];
  int64_t head[C];
  bool live[C];
  lane_columns<VEC, C>(c0, lanes, F, D, cols, head, live);
  T acc[C][VEC];
  segment_sum<T, VEC, C>(b, e, col, w, widx, x, F, heads, cols, head, live, acc);
  const T len = T(e - b);
#pragma unroll
  for (int c = 0; c < C; ++c)
    if (live[c]) {
      Pack<T, VEC> o;
#pragma unroll
      for (int v = 0; v < VEC; ++v) o.v[v] = mean && e > b ? acc[c][v] / len : acc[c][v];
      *reinterpret_cast<Pack<T, VEC>*>(out + r * F + cols[c]) = o;
    }
}

// Sum and mean of the hub rows, one group per (chunk t, column block), t in [0, chunks): the hub
// row starting in the chunk (chunk_hub_row; other groups exit) is the left fold of its segments'
// sums (mk/graph_segment.h): segment 0 summed here, segments j >= 1 read from `partial` (slot
// (b + j·S) / S, written by spmm_sum_partial_kernel before) or, without it, summed here one after
// the other. The running total waits in the row's own output elements (no other group touches
// them): one accumulator set and one call site of segment_sum.
template <class T, int VEC, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    spmm_sum_hub_kernel(int mean, int64_t rows, int64_t nnz, int64_t chunks, int lanes, int64_t col_blocks,
                        int64_t heads, int64_t D, const int64_t* __restrict__ row_ptr,
                        const int64_t* __restrict__ col, const T* __restrict__ w, const int64_t* __restrict__ widx,
                        const T* __restrict__ x, const T* __restrict__ partial, T* __restrict__ out) {
  constexpr int64_t S = kGraphSegment;
  const int64_t F = heads * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t t = group / col_blocks;
  if (t >= chunks) return;
  int64_t r = 0;
  if (!chunk_hub_row(rows, nnz, row_ptr, t, &r)) return;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * VEC * C) + int64_t(lane) * VEC;
  int64_t cols[C];
  int64_t head[C];
  bool live[C];
  lane_columns<VEC, C>(c0, lanes, F, D, cols, head, live);
  T acc[C][VEC];
  T* o = out + r * F;
  for (int64_t sb = b;;) {
    const int64_t se = e - sb <= S ? e : sb + S;
    if (sb == b || !partial) {
      segment_sum<T, VEC, C>(sb, se, col, w, widx, x, F, heads, cols, head, live, acc);
    } else {
      const T* pr = partial + (sb / S) * F;
#pragma unroll
      for (int c = 0; c < C; ++c)
        if (live[c]) {
          const Pack<T, VEC> p = load_pack<T, VEC>(pr + cols[c]);
#pragma unroll
          for (int v = 0; v < VEC; ++v) acc[c][v] = p.v[v];
        }
    }
    if (sb != b)  // the total so far + this segment
#pragma unroll
      for (int c = 0; c < C; ++c)
        if (live[c]) {
          const Pack<T, VEC> p = load_pack<T, VEC>(o + cols[c]);
#pragma unroll
          for (int v = 0; v < VEC; ++v) acc[c][v] = p.v[v] + acc[c][v];
        }
    if (se >= e) break;
#pragma unroll
    for (int c = 0; c < C; ++c)
      if (live[c]) {
        Pack<T, VEC> p;
#pragma unroll
        for (int v = 0; v < VEC; ++v) p.v[v] = acc[c][v];
        *reinterpret_cast<Pack<T, VEC>*>(o + cols[c]) = p;
      }
    sb = se;
  }
  const T len = T(e - b);
#pragma unroll
  for (int c = 0; c < C; ++c)
    if (live[c]) {
      Pack<T, VEC> p;
#pragma unroll
      for (int v = 0; v < VEC; ++v) p.v[v] = mean ? acc[c][v] / len : acc[c][v];
      *reinterpret_cast<Pack<T, VEC>*>(o + cols[c]) = p;
    }
}

// The split of hub rows: one group per (chunk t of S non-zeros, column block), t in [1, chunks).
// The row holding non-zero t·S is found by binary search in row_ptr; if it is a hub row that
// started before t·S, its segment starting in [t·S, (t + 1)·S) (the only segment j >= 1 of any
// row starting there) is summed into partial[t] (the lane's columns). Other groups exit.
template <class T, int VEC, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    spmm_sum_partial_kernel(int64_t rows, int64_t chunks, int lanes, int64_t col_blocks, int64_t heads, int64_t D,
                            const int64_t* __restrict__ row_ptr, const int64_t* __restrict__ col,
                            const T* __restrict__ w, const int64_t* __restrict__ widx, const T* __restrict__ x,
                            T* __restrict__ partial) {
  const int64_t F = heads * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t t = 1 + group / col_blocks;
  if (t >= chunks) return;
  int64_t sb = 0, e = 0;
  if (!chunk_segment(rows, row_ptr, t, &sb, &e)) return;
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * VEC * C) + int64_t(lane) * VEC;
  int64_t cols[C];
  int64_t head[C];
  bool live[C];
  lane_columns<VEC, C>(c0, lanes, F, D, cols, head, live);
  T acc[C][VEC];
  segment_sum<T, VEC, C>(sb, (sb + kGraphSegment < e ? sb + kGraphSegment : e), col, w, widx, x, F, heads, cols,
                         head, live, acc);
#pragma unroll
  for (int c = 0; c < C; ++c)
    if (live[c]) {
      Pack<T, VEC> o;
#pragma unroll
      for (int v = 0; v < VEC; ++v) o.v[v] = acc[c][v];
      *reinterpret_cast<Pack<T, VEC>*>(partial + t * F + cols[c]) = o;
    }
}

// max (is_max = 1) or min: candidates w·x (x unweighted); ties keep the first, NaN wins.
// best/pos continue a scan over [b, e) (the next candidate taken when better, or NaN over a number).
template <class T, int VEC>
__device__ __forceinline__ void extreme_scan(int is_max, int64_t b, int64_t e, int64_t f, int64_t h, int64_t F,
                                             int64_t heads, const int64_t* __restrict__ col, const T* __restrict__ w,
                                             const int64_t* __restrict__ widx, const T* __restrict__ x, T* best,
                                             int64_t* pos) {
  for (int64_t k = b; k < e; ++k) {
    const Pack<T, VEC> p = load_pack<T, VEC>(x + col[k] * F + f);
    const T wk = w ? w[(widx ? widx[k] : k) * heads + h] : T(1);
#pragma unroll
    for (int v = 0; v < VEC; ++v) {
      const T cand = w ? wk * p.v[v] : p.v[v];
      const bool better = is_max ? cand > best[v] : cand < best[v];
      if (better || (cand != cand && best[v] == best[v])) {
        best[v] = cand;
        pos[v] = k;
      }
    }
  }
}

// best/pos = the first candidate of non-zero b.
template <class T, int VEC>
__device__ __forceinline__ void extreme_first(int64_t b, int64_t f, int64_t h, int64_t F, int64_t heads,
                                              const int64_t* __restrict__ col, const T* __restrict__ w,
                                              const int64_t* __restrict__ widx, const T* __restrict__ x, T* best,
                                              int64_t* pos) {
  const Pack<T, VEC> p = load_pack<T, VEC>(x + col[b] * F + f);
  const T wk = w ? w[(widx ? widx[b] : b) * heads + h] : T(1);
#pragma unroll
  for (int v = 0; v < VEC; ++v) {
    best[v] = w ? wk * p.v[v] : p.v[v];
    pos[v] = b;
  }
}

// The candidates of one lane's column chunk f of row [b, e) (non-empty): the first taken, the
// rest scanned; with `pval` (a hub row split: the row longer than S), only its first segment is
// scanned here and the later segments' results (pval, parg: slot (b + j·S) / S) are taken in order
// by the same rule, which gives the scan's result exactly (the first of equal values, the first
// NaN).
template <class T, int VEC>
__device__ __forceinline__ void extreme_row(int is_max, int64_t b, int64_t e, int64_t f, int64_t h, int64_t F,
                                            int64_t heads, const int64_t* __restrict__ col, const T* __restrict__ w,
                                            const int64_t* __restrict__ widx, const T* __restrict__ x,
                                            const T* __restrict__ pval, const int64_t* __restrict__ parg, T* best,
                                            int64_t* pos) {
  constexpr int64_t S = kGraphSegment;
  extreme_first<T, VEC>(b, f, h, F, heads, col, w, widx, x, best, pos);
  extreme_scan<T, VEC>(is_max, b + 1, pval ? b + S : e, f, h, F, heads, col, w, widx, x, best, pos);
  if (pval)
    for (int64_t sb = b + S; sb < e; sb += S) {
      const int64_t slot = (sb / S) * F + f;
      const Pack<T, VEC> p = load_pack<T, VEC>(pval + slot);
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        const T cand = p.v[v];
        const bool better = is_max ? cand > best[v] : cand < best[v];
        if (better || (cand != cand && best[v] == best[v])) {
          best[v] = cand;
          pos[v] = parg[slot + v];
        }
      }
    }
}

// Max and min of the light rows (at most kGraphSegment non-zeros; hub rows: spmm_extreme_hub_kernel),
// one group per (row, column block).
template <class T, int VEC, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    spmm_extreme_kernel(int is_max, int64_t rows, int64_t nnz, int lanes, int64_t col_blocks, int64_t heads, int64_t D,
                        const int64_t* __restrict__ row_ptr, const int64_t* __restrict__ col, const T* __restrict__ w,
                        const int64_t* __restrict__ widx, const T* __restrict__ x, T* __restrict__ out,
                        int64_t* __restrict__ arg) {
  const int64_t F = heads * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t r = group / col_blocks;
  if (r >= rows) return;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  if (e - b > kGraphSegment) return;
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * VEC * C) + int64_t(lane) * VEC;
#pragma unroll
  for (int c = 0; c < C; ++c) {
    const int64_t f = c0 + int64_t(c) * lanes * VEC;
    if (f >= F) continue;
    const int64_t h = f / D;
    T best[VEC];
    int64_t pos[VEC];
    if (b == e) {
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        best[v] = T(0);
        pos[v] = nnz;
      }
    } else {
      extreme_first<T, VEC>(b, f, h, F, heads, col, w, widx, x, best, pos);
      extreme_scan<T, VEC>(is_max, b + 1, e, f, h, F, heads, col, w, widx, x, best, pos);
    }
    Pack<T, VEC> o;
#pragma unroll
    for (int v = 0; v < VEC; ++v) {
      o.v[v] = best[v];
      arg[r * F + f + v] = pos[v];
    }
    *reinterpret_cast<Pack<T, VEC>*>(out + r * F + f) = o;
  }
}

// Max and min of the hub rows, one group per (chunk t, column block) as spmm_sum_hub_kernel: the
// hub row starting in the chunk, its later segments from pval/parg (spmm_extreme_partial_kernel)
// or, without them, scanned here.
template <class T, int VEC, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    spmm_extreme_hub_kernel(int is_max, int64_t rows, int64_t nnz, int64_t chunks, int lanes, int64_t col_blocks,
                            int64_t heads, int64_t D, const int64_t* __restrict__ row_ptr,
                            const int64_t* __restrict__ col, const T* __restrict__ w,
                            const int64_t* __restrict__ widx, const T* __restrict__ x, const T* __restrict__ pval,
                            const int64_t* __restrict__ parg, T* __restrict__ out, int64_t* __restrict__ arg) {
  const int64_t F = heads * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t t = group / col_blocks;
  if (t >= chunks) return;
  int64_t r = 0;
  if (!chunk_hub_row(rows, nnz, row_ptr, t, &r)) return;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * VEC * C) + int64_t(lane) * VEC;
#pragma unroll
  for (int c = 0; c < C; ++c) {
    const int64_t f = c0 + int64_t(c) * lanes * VEC;
    if (f >= F) continue;
    T best[VEC];
    int64_t pos[VEC];
    extreme_row<T, VEC>(is_max, b, e, f, f / D, F, heads, col, w, widx, x, pval, parg, best, pos);
    Pack<T, VEC> o;
#pragma unroll
    for (int v = 0; v < VEC; ++v) {
      o.v[v] = best[v];
      arg[r * F + f + v] = pos[v];
    }
    *reinterpret_cast<Pack<T, VEC>*>(out + r * F + f) = o;
  }
}

// The split of hub rows for max/min: as spmm_sum_partial_kernel, the segment's scan into pval and
// parg (slot t).
template <class T, int VEC, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    spmm_extreme_partial_kernel(int is_max, int64_t rows, int64_t chunks, int lanes, int64_t col_blocks,
                                int64_t heads, int64_t D, const int64_t* __restrict__ row_ptr,
                                const int64_t* __restrict__ col, const T* __restrict__ w,
                                const int64_t* __restrict__ widx, const T* __restrict__ x, T* __restrict__ pval,
                                int64_t* __restrict__ parg) {
  const int64_t F = heads * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t t = 1 + group / col_blocks;
  if (t >= chunks) return;
  int64_t sb = 0, e = 0;
  if (!chunk_segment(rows, row_ptr, t, &sb, &e)) return;
  const int64_t se = sb + kGraphSegment < e ? sb + kGraphSegment : e;
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * VEC * C) + int64_t(lane) * VEC;
#pragma unroll
  for (int c = 0; c < C; ++c) {
    const int64_t f = c0 + int64_t(c) * lanes * VEC;
    if (f >= F) continue;
    const int64_t h = f / D;
    T best[VEC];
    int64_t pos[VEC];
    extreme_first<T, VEC>(sb, f, h, F, heads, col, w, widx, x, best, pos);
    extreme_scan<T, VEC>(is_max, sb + 1, se, f, h, F, heads, col, w, widx, x, best, pos);
    Pack<T, VEC> o;
#pragma unroll
    for (int v = 0; v < VEC; ++v) {
      o.v[v] = best[v];
      parg[t * F + f + v] = pos[v];
    }
    *reinterpret_cast<Pack<T, VEC>*>(pval + t * F + f) = o;
  }
}

// ---- sddmm ---------------------------------------------------------------------------------------
// One group of `lanes` lanes per (non-zero k, head h), item = k·heads + h; its row r is found by
// binary search in row_ptr (rows with no non-zeros are skipped over).
template <class T, int VEC>
__global__ void __launch_bounds__(Traits::kThreads)
    sddmm_kernel(int64_t rows, int64_t nnz, int lanes, int64_t heads, int64_t D, const int64_t* __restrict__ row_ptr,
                 const int64_t* __restrict__ col, const T* __restrict__ a, const T* __restrict__ b,
                 T* __restrict__ out) {
  const int64_t F = heads * D;
  const int64_t item = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const bool valid = item < nnz * heads;  // lanes past the end still join the shuffles
  T partial = T(0);
  if (valid) {
    const int64_t k = item / heads, h = item % heads;
    int64_t lo = 0, hi = rows;  // the last r with row_ptr[r] <= k
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo + 1) / 2;
      if (row_ptr[mid] <= k)
        lo = mid;
      else
        hi = mid - 1;
    }
    const T* ar = a + lo * F + h * D;
    const T* br = b + col[k] * F + h * D;
    for (int64_t d = int64_t(lane) * VEC; d < D; d += int64_t(lanes) * VEC) {
      const Pack<T, VEC> pa = load_pack<T, VEC>(ar + d), pb = load_pack<T, VEC>(br + d);
#pragma unroll
      for (int v = 0; v < VEC; ++v) partial = fma_t(pa.v[v], pb.v[v], partial);
    }
  }
  for (int m = lanes / 2; m >= 1; m /= 2) partial += __shfl_xor_sync(0xffffffffu, partial, m);
  if (valid && lane == 0) out[item] = partial;
}

// ---- structure check -------------------------------------------------------------------------------
__device__ unsigned long long g_graph_bad[2];

__global__ void __launch_bounds__(Traits::kThreads)
    graph_check_kernel(int64_t rows, int64_t cols, int64_t nnz, const int64_t* row_ptr, const int64_t* col) {
  unsigned long long bad_ptr = 0, bad_col = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t <= rows; t += stride) {
    if (t == 0)
      bad_ptr += row_ptr[0] != 0 ? 1ull : 0ull;
    else
      bad_ptr += row_ptr[t] < row_ptr[t - 1] ? 1ull : 0ull;
    if (t == rows) bad_ptr += row_ptr[rows] != nnz ? 1ull : 0ull;
  }
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < nnz; t += stride)
    bad_col += (col[t] < 0 || col[t] >= cols) ? 1ull : 0ull;
  if (bad_ptr) atomicAdd(&g_graph_bad[0], bad_ptr);
  if (bad_col) atomicAdd(&g_graph_bad[1], bad_col);
}

template <class T, int VEC>
bool aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % (sizeof(T) * VEC) == 0;
}

// Bytes of the hub-row split's scratch: per chunk of kGraphSegment non-zeros, one row of F
// partial sums (sum, mean), or one row of F values then (from a 16-byte boundary) one row of F
// positions (max, min); 0 when no row can be longer than a segment, or beyond kMaxSplitBytes: then
// hub rows are walked by one group, with the same arithmetic.
constexpr int64_t kMaxSplitBytes = int64_t(1) << 30;

int64_t split_values_bytes(int64_t chunks, int64_t F, int64_t elem) { return (chunks * F * elem + 15) / 16 * 16; }

int64_t spmm_split_bytes(int dtype, int reduce, int64_t nnz, int64_t F) {
  if (dtype != MK_F32 && dtype != MK_F64) return 0;
  if (reduce < 0 || reduce >= MK_GRAPH_REDUCE_COUNT) return 0;
  const int64_t chunks = (nnz + kGraphSegment - 1) / kGraphSegment;
  if (chunks <= 1 || F <= 0) return 0;
  const int64_t elem = dtype == MK_F32 ? 4 : 8;
  const bool extreme = reduce == MK_GRAPH_REDUCE_MAX || reduce == MK_GRAPH_REDUCE_MIN;
  const int64_t per = extreme ? elem + 8 : elem;  // bytes per (chunk, column)
  if (F > (kMaxSplitBytes - 16) / per / chunks) return 0;
  return extreme ? split_values_bytes(chunks, F, elem) + chunks * F * 8 : chunks * F * elem;
}

// One launch of KERNEL<T, VEC, 1> or KERNEL<T, VEC, kMaxChunks> (the geometry's chunk count).
#define MK_SPMM_LAUNCH(KERNEL, threads, ...)                                                               \
  (g.chunks == 1 ? launch_1d<Traits::kThreads>(KERNEL<T, VEC, 1>, threads, s, __VA_ARGS__)              \
                 : launch_1d<Traits::kThreads>(KERNEL<T, VEC, Traits::kMaxChunks>, threads, s, __VA_ARGS__))

// With nnz > S (a hub row possible): the partial kernel (with the scratch), then the hub rows'
// kernel, then the light rows' kernel (hub and light rows are disjoint: the last two in any order).
template <class T, int VEC>
int spmm_launch(int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t D, const int64_t* row_ptr,
                const int64_t* col, const T* w, const int64_t* widx, const T* x, T* out, int64_t* arg, void* ws,
                cudaStream_t s) {
  const SpmmGeometry g = spmm_geometry(heads * D, VEC);
  const int64_t threads = rows * g.col_blocks * g.lanes;
  const bool extreme = reduce == MK_GRAPH_REDUCE_MAX || reduce == MK_GRAPH_REDUCE_MIN;
  const int64_t chunks = (nnz + kGraphSegment - 1) / kGraphSegment;
  const bool hubs = chunks > 1;  // some row may be longer than a segment
  if (!hubs) ws = nullptr;
  const int64_t part_threads = (chunks - 1) * g.col_blocks * g.lanes;  // chunks 1, 2, ...
  const int64_t hub_threads = chunks * g.col_blocks * g.lanes;
  int st = 0;
  if (extreme) {
    const int is_max = reduce == MK_GRAPH_REDUCE_MAX;
    T* pval = static_cast<T*>(ws);
    int64_t* parg = ws ? reinterpret_cast<int64_t*>(static_cast<char*>(ws) +
                                                    split_values_bytes(chunks, heads * D, int64_t(sizeof(T))))
                       : nullptr;
    if (ws)
      st = MK_SPMM_LAUNCH(spmm_extreme_partial_kernel, part_threads, is_max, rows, chunks, g.lanes, g.col_blocks,
                          heads, D, row_ptr, col, w, widx, x, pval, parg);
    const T* pv = pval;
    const int64_t* pa = parg;
    if (st == 0 && hubs)
      st = MK_SPMM_LAUNCH(spmm_extreme_hub_kernel, hub_threads, is_max, rows, nnz, chunks, g.lanes, g.col_blocks,
                          heads, D, row_ptr, col, w, widx, x, pv, pa, out, arg);
    if (st == 0)
      st = MK_SPMM_LAUNCH(spmm_extreme_kernel, threads, is_max, rows, nnz, g.lanes, g.col_blocks, heads, D, row_ptr,
                          col, w, widx, x, out, arg);
    return st;
  }
  const int mean = reduce == MK_GRAPH_REDUCE_MEAN;
  T* partial = static_cast<T*>(ws);
  if (partial)
    st = MK_SPMM_LAUNCH(spmm_sum_partial_kernel, part_threads, rows, chunks, g.lanes, g.col_blocks, heads, D, row_ptr,
                        col, w, widx, x, partial);
  const T* part = partial;
  if (st == 0 && hubs)
    st = MK_SPMM_LAUNCH(spmm_sum_hub_kernel, hub_threads, mean, rows, nnz, chunks, g.lanes, g.col_blocks, heads, D,
                        row_ptr, col, w, widx, x, part, out);
  if (st == 0)
    st = MK_SPMM_LAUNCH(spmm_sum_kernel, threads, mean, rows, g.lanes, g.col_blocks, heads, D, row_ptr, col, w, widx,
                        x, out);
  return st;
}
#undef MK_SPMM_LAUNCH

template <class T>
int spmm_t(int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t D, const int64_t* row_ptr, const int64_t* col,
           const T* w, const int64_t* widx, const T* x, T* out, int64_t* arg, void* ws, cudaStream_t s) {
  constexpr int kVec = 16 / sizeof(T);  // 4 floats or 2 doubles
  if (D % kVec == 0 && aligned<T, kVec>(x) && aligned<T, kVec>(out) && aligned<T, kVec>(ws))
    return spmm_launch<T, kVec>(reduce, rows, nnz, heads, D, row_ptr, col, w, widx, x, out, arg, ws, s);
  return spmm_launch<T, 1>(reduce, rows, nnz, heads, D, row_ptr, col, w, widx, x, out, arg, ws, s);
}

template <class T>
int sddmm_t(int64_t rows, int64_t nnz, int64_t heads, int64_t D, const int64_t* row_ptr, const int64_t* col, const T* a,
            const T* b, T* out, cudaStream_t s) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vec = D % kVec == 0 && aligned<T, kVec>(a) && aligned<T, kVec>(b);
  const int lanes = pow2_at_least(vec ? D / kVec : D);
  const int64_t threads = nnz * heads * lanes;
  if (vec) return launch_1d<Traits::kThreads>(sddmm_kernel<T, kVec>, threads, s, rows, nnz, lanes, heads, D, row_ptr, col, a, b, out);
  return launch_1d<Traits::kThreads>(sddmm_kernel<T, 1>, threads, s, rows, nnz, lanes, heads, D, row_ptr, col, a, b, out);
}

}  // namespace

int graph_spmm_split(int dtype, int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t width,
                     const int64_t* row_ptr, const int64_t* col, const void* weight, const int64_t* weight_index,
                     const void* x, void* out, int64_t* arg, void* workspace, int64_t workspace_bytes, void* stream) {
  if (reduce < 0 || reduce >= MK_GRAPH_REDUCE_COUNT) return KERNEL_UNSUPPORTED;
  auto s = as_stream(stream);
  const int64_t need = spmm_split_bytes(dtype, reduce, nnz, heads * width);
  void* ws = need > 0 && workspace && workspace_bytes >= need ? workspace : nullptr;
  if (dtype == MK_F32)
    return spmm_t(reduce, rows, nnz, heads, width, row_ptr, col, static_cast<const float*>(weight), weight_index,
                  static_cast<const float*>(x), static_cast<float*>(out), arg, ws, s);
  if (dtype == MK_F64)
    return spmm_t(reduce, rows, nnz, heads, width, row_ptr, col, static_cast<const double*>(weight), weight_index,
                  static_cast<const double*>(x), static_cast<double*>(out), arg, ws, s);
  return KERNEL_UNSUPPORTED;
}

int graph_spmm(int dtype, int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t width, const int64_t* row_ptr,
               const int64_t* col, const void* weight, const int64_t* weight_index, const void* x, void* out,
               int64_t* arg, void* stream) {
  return graph_spmm_split(dtype, reduce, rows, nnz, heads, width, row_ptr, col, weight, weight_index, x, out, arg,
                          nullptr, 0, stream);
}

int64_t graph_spmm_workspace(int dtype, int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t width,
                             int indexed) {
  (void)rows;
  (void)indexed;
  return spmm_split_bytes(dtype, reduce, nnz, heads * width);
}

int graph_sddmm(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, const int64_t* row_ptr,
                const int64_t* col, const void* a, const void* b, void* out, void* stream) {
  auto s = as_stream(stream);
  if (dtype == MK_F32)
    return sddmm_t(rows, nnz, heads, width, row_ptr, col, static_cast<const float*>(a), static_cast<const float*>(b),
                   static_cast<float*>(out), s);
  if (dtype == MK_F64)
    return sddmm_t(rows, nnz, heads, width, row_ptr, col, static_cast<const double*>(a), static_cast<const double*>(b),
                   static_cast<double*>(out), s);
  return KERNEL_UNSUPPORTED;
}

int graph_check(int64_t rows, int64_t cols, int64_t nnz, const int64_t* row_ptr, const int64_t* col, int64_t* bad,
                void* stream) {
  // one counter pair per device: the reset-count-read runs under a lock (as index_check's does)
  static std::mutex lock;
  std::lock_guard<std::mutex> guard(lock);
  auto s = as_stream(stream);
  const unsigned long long zero[2] = {0, 0};
  cudaError_t e = cudaMemcpyToSymbolAsync(g_graph_bad, zero, sizeof zero, 0, cudaMemcpyHostToDevice, s);
  if (e != cudaSuccess) return int(e);
  const int64_t n = std::max(rows + 1, nnz);
  const int blocks = int(std::min<int64_t>((n + Traits::kThreads - 1) / Traits::kThreads, 4096));
  const int st =
      launch_grid(graph_check_kernel, std::max(blocks, 1), Traits::kThreads, 0, s, rows, cols, nnz, row_ptr, col);
  if (st != 0) return st;
  unsigned long long counts[2] = {0, 0};
  e = cudaMemcpyFromSymbolAsync(counts, g_graph_bad, sizeof counts, 0, cudaMemcpyDeviceToHost, s);
  if (e != cudaSuccess) return int(e);
  e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return int(e);
  bad[0] = int64_t(counts[0]);
  bad[1] = int64_t(counts[1]);
  return last_error();
}

}  // namespace cuda
}  // namespace mk
