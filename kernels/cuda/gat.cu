// Edge softmax and the fused GAT aggregation on CUDA: the twins of kernels/cpu/gat.cpp (the maths
// and the shapes are there and in mk/kernels.inc).
//
// edge softmax: a group of G lanes (G = the power of two ≥ heads, at most 32) owns one row; lane l
// owns heads l, l + G, ... and walks the row's non-zeros in CSR order three times (max, exp and
// sum, divide), reading s[k, h] — adjacent lanes read adjacent heads of one edge, one transaction
// per edge. Each (row, head) is reduced by one lane in the CPU twin's order with its arithmetic.
//
// GAT: a group of G lanes owns one row and one block of G·C feature columns (C ≤ kMaxChunks
// columns per lane, in registers); each lane finds, for the head of each of its columns, the row
// max over the row's scores (sweep 1, scalars only), then accumulates acc = fma(p, x[col, f], acc)
// and sum += p with p = exp(e - max) over the row in CSR order (sweep 2) and writes acc / sum once.
// The lanes of one head compute its p redundantly (two cached loads and an exp per edge) rather
// than sharing them through shared memory: no barrier, and every output element is produced by
// one lane in the CPU twin's order with its arithmetic (leaky's product and the accumulation by
// explicit fma on both sides, so no contraction can differ). Hence: deterministic, no atomics, and
// equal to the CPU twin up to the rounding of exp/log (bitwise in the host emulator, whose exp is
// the host's). Nothing of size E×H is written; lse [rows, heads] is, by the lane owning the head's
// first column.
//
// A hub row (more than kGraphSegment = 128 in-edges, mk/graph_segment.h; power-law graphs have
// rows of 10^5) is split (issue 15): the row kernels leave it, and launches of one group per chunk
// of 128 non-zeros compute its segments' partial results into scratch (gat_workspace) and combine
// them in segment order, by the CPU twin's rules (see "the split of hub rows" below). Edge softmax
// and the backward's sums (row_dot, gs_dst over rows; gs_src, gx over the CSC columns) likewise.
#include <algorithm>
#include <climits>

#include "common.cuh"
#include "graph_launch.cuh"
#include "mk/kernels.h"

namespace mk {
namespace cuda {
namespace {

struct GatTraits {
  static constexpr int kThreads = 256;  // 8 warps per block
  static constexpr int kMaxChunks = 4;  // feature columns per lane (registers)
  static_assert(kThreads % 32 == 0, "whole warps");
};
using Traits = GatTraits;

__device__ __forceinline__ float fma_g(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_g(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ float exp_g(float v) { return expf(v); }
__device__ __forceinline__ double exp_g(double v) { return exp(v); }
__device__ __forceinline__ float log_g(float v) { return logf(v); }
__device__ __forceinline__ double log_g(double v) { return log(v); }

template <class T>
__device__ __forceinline__ T neg_inf_g() {
  return T(-INFINITY);
}

template <class T>
__device__ __forceinline__ T nan_max_g(T m, T v) {
  return (v > m || v != v) ? v : m;
}

// leaky(z) = z > 0 ? z : slope·z; the product as an fma with 0 (the CPU twin's form)
template <class T>
__device__ __forceinline__ T leaky_g(T z, T slope) {
  return z > T(0) ? z : fma_g(slope, z, T(0));
}

// ---- the split of hub rows (issue 15; mk/graph_segment.h, kernels/cpu/gat.cpp) -------------------
// The light-row kernels below return at once on a row of more than S = kGraphSegment non-zeros;
// those hub rows go to launches with one group per chunk t of S non-zeros (graph_launch.cuh's
// chunk_segment / chunk_hub_row: no plan is stored):
//   partial: the segment j >= 1 of a hub row that starts in chunk t (at most one does) computed
//     from 0 in CSR order into slot t of the scratch (gat_workspace's bytes);
//   hub: the hub row that starts in chunk t (at most one) computes its segment 0 and combines the
//     slots of segments 1, 2, ... in order (softmax: softmax_merge_g, the online rescaling; plain
//     sums: +), then writes the row's outputs. Without the scratch it computes the segments itself,
//     one after the other: the same bits, slower.
// The CPU twin cuts the same segments and combines them in the same order by the same
// expressions, so the twins stay bitwise equal in the emulator. The critical path of a hub row
// drops from its length to S + its number of segments.

// (M, L, A) ← combined with the next segment's (m, l, a): the CPU twin's softmax_merge per element.
template <class T>
__device__ __forceinline__ void softmax_merge_g(T& M, T& L, T& A, T m, T l, T a) {
  if (l == T(0)) return;  // a segment of -inf scores adds nothing
  if (L == T(0)) {
    M = m;
    L = l;
    A = a;
    return;
  }
  const T mx = nan_max_g(M, m);
  const T ca = exp_g(M - mx), cb = exp_g(m - mx);
  L = fma_g(l, cb, fma_g(L, ca, T(0)));
  A = fma_g(a, cb, fma_g(A, ca, T(0)));
  M = mx;
}

// ---- edge softmax --------------------------------------------------------------------------------
// One segment [sb, se) of a row, head h: *m = its max (0 when all are -inf), y = exp(s - *m),
// returns Σ exp(s - *m) (the CPU twin's softmax_segment).
template <class T>
__device__ __forceinline__ T softmax_segment_g(int64_t sb, int64_t se, int64_t H, int64_t h,
                                               const T* __restrict__ s, T* m, T* __restrict__ y) {
  T mx = neg_inf_g<T>();
  for (int64_t k = sb; k < se; ++k) mx = nan_max_g(mx, s[k * H + h]);
  *m = mx == neg_inf_g<T>() ? T(0) : mx;
  T sum = T(0);
  for (int64_t k = sb; k < se; ++k) {
    const T p = exp_g(s[k * H + h] - *m);
    y[k * H + h] = p;
    sum += p;
  }
  return sum;
}

// y over a hub row's segment [sb, se), head h, holding p = exp(s - m) (segment max m, sum l; only
// l == 0 matters): the softmax of the row (max M, sum L); the CPU twin's softmax_rescale.
template <class T>
__device__ __forceinline__ void softmax_rescale_g(int64_t sb, int64_t se, int64_t H, int64_t h, T m, T l, T M, T L,
                                                  T* __restrict__ y) {
  if (l == T(0)) return;  // scores all -inf: p = 0
  const T c = exp_g(m - M);
  const bool some = L > T(0) || L != L;
  for (int64_t k = sb; k < se; ++k) {
    const T v = fma_g(y[k * H + h], c, T(0));
    y[k * H + h] = some ? v / L : v;
  }
}

// y = exp(s - lse) over [sb, se), head h (0 where lse = -inf)
template <class T>
__device__ __forceinline__ void softmax_from_lse_g(int64_t sb, int64_t se, int64_t H, int64_t h,
                                                   const T* __restrict__ s, T l, T* __restrict__ y) {
  for (int64_t k = sb; k < se; ++k) y[k * H + h] = l == neg_inf_g<T>() ? T(0) : exp_g(s[k * H + h] - l);
}

template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
    edge_softmax_kernel(int64_t rows, int lanes, int64_t H, const int64_t* __restrict__ row_ptr,
                        const T* __restrict__ s, const T* __restrict__ lse_in, T* __restrict__ y,
                        T* __restrict__ lse_out) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  if (r >= rows) return;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  if (e - b > kGraphSegment) return;  // a hub row: the split kernels
  for (int64_t h = lane; h < H; h += lanes) {
    if (lse_in) {
      const T l = lse_in[r * H + h];
      for (int64_t k = b; k < e; ++k) y[k * H + h] = l == neg_inf_g<T>() ? T(0) : exp_g(s[k * H + h] - l);
      continue;
    }
    T m = neg_inf_g<T>();
    for (int64_t k = b; k < e; ++k) m = nan_max_g(m, s[k * H + h]);
    const T m0 = m == neg_inf_g<T>() ? T(0) : m;
    T sum = T(0);
    for (int64_t k = b; k < e; ++k) {
      const T p = exp_g(s[k * H + h] - m0);
      y[k * H + h] = p;
      sum += p;
    }
    const bool some = sum > T(0) || sum != sum;
    if (some)
      for (int64_t k = b; k < e; ++k) y[k * H + h] = y[k * H + h] / sum;
    if (lse_out) lse_out[r * H + h] = some ? m0 + log_g(sum) : neg_inf_g<T>();
  }
}

// partial: lanes per (chunk t >= 1, head): the segment starting in chunk t, its p into y and its
// (m, l) into part[t] (m [H], l [H])
template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
    edge_softmax_partial_kernel(int64_t rows, int64_t chunks, int lanes, int64_t H,
                                const int64_t* __restrict__ row_ptr, const T* __restrict__ s, T* __restrict__ part,
                                T* __restrict__ y) {
  const int64_t t = 1 + (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  if (t >= chunks) return;
  int64_t sb = 0, e = 0;
  if (!chunk_segment(rows, row_ptr, t, &sb, &e)) return;
  const int64_t se = sb + kGraphSegment < e ? sb + kGraphSegment : e;
  T* p = part + t * 2 * H;
  for (int64_t h = lane; h < H; h += lanes) p[H + h] = softmax_segment_g(sb, se, H, h, s, p + h, y);
}

// hub: lanes per (chunk t, head): the hub row starting in chunk t, its (M, L) folded over its
// segments (segment 0 here, its p into y), lse_out; then (M, L, m0, l0) into stat[t] for the y
// launch, or (no scratch: the segments computed here too) the row's y rescaled here.
template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
    edge_softmax_hub_kernel(int64_t rows, int64_t nnz, int64_t chunks, int lanes, int64_t H,
                            const int64_t* __restrict__ row_ptr, const T* __restrict__ s, const T* __restrict__ part,
                            T* __restrict__ stat, T* __restrict__ y, T* __restrict__ lse_out) {
  constexpr int64_t S = kGraphSegment;
  const int64_t t = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  if (t >= chunks) return;
  int64_t r = 0;
  if (!chunk_hub_row(rows, nnz, row_ptr, t, &r)) return;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  for (int64_t h = lane; h < H; h += lanes) {
    T m0 = T(0);
    const T l0 = softmax_segment_g(b, b + S, H, h, s, &m0, y);
    T M = m0, L = l0, dummy = T(0);
    for (int64_t sb = b + S; sb < e; sb += S) {
      T m = T(0), l = T(0);
      if (part) {
        m = part[(sb / S) * 2 * H + h];
        l = part[(sb / S) * 2 * H + H + h];
      } else {
        l = softmax_segment_g(sb, sb + S < e ? sb + S : e, H, h, s, &m, y);
      }
      softmax_merge_g(M, L, dummy, m, l, T(0));
    }
    if (lse_out) lse_out[r * H + h] = L > T(0) || L != L ? M + log_g(L) : neg_inf_g<T>();
    if (stat) {
      T* st = stat + t * 4 * H;
      st[h] = M;
      st[H + h] = L;
      st[2 * H + h] = m0;
      st[3 * H + h] = l0;
      continue;
    }
    // no scratch: each segment's max again (l == 0 exactly when its scores are all -inf)
    for (int64_t sb = b; sb < e; sb += S) {
      const int64_t se = sb + S < e ? sb + S : e;
      T mx = neg_inf_g<T>();
      for (int64_t k = sb; k < se; ++k) mx = nan_max_g(mx, s[k * H + h]);
      const bool none = mx == neg_inf_g<T>();
      softmax_rescale_g(sb, se, H, h, none ? T(0) : mx, none ? T(0) : T(1), M, L, y);
    }
  }
}

// y of the hub rows: lanes per (chunk t, head), for the segment j >= 1 starting in chunk t and
// segment 0 of the hub row starting in it (each at most one): their p rescaled by the row's (M, L)
// in stat[floor(row start / S)], or (lse_in) exp(s - lse).
template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
    edge_softmax_y_kernel(int64_t rows, int64_t nnz, int64_t chunks, int lanes, int64_t H,
                          const int64_t* __restrict__ row_ptr, const T* __restrict__ s, const T* __restrict__ lse_in,
                          const T* __restrict__ part, const T* __restrict__ stat, T* __restrict__ y) {
  constexpr int64_t S = kGraphSegment;
  const int64_t t = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  if (t >= chunks) return;
  for (int pass = 0; pass < 2; ++pass) {
    int64_t r = 0, sb = 0, e = 0;
    if (pass == 0) {
      if (t == 0 || !chunk_segment(rows, row_ptr, t, &sb, &e, &r)) continue;
    } else {
      if (!chunk_hub_row(rows, nnz, row_ptr, t, &r)) continue;
      sb = row_ptr[r];
      e = row_ptr[r + 1];
    }
    const int64_t se = sb + S < e ? sb + S : e;
    // the row's (M, L, m0, l0); the segment's (m, l): segment 0's from there, the others' from part[t]
    if (lse_in) {
      for (int64_t h = lane; h < H; h += lanes) softmax_from_lse_g(sb, se, H, h, s, lse_in[r * H + h], y);
      continue;
    }
    const T* st = stat + (row_ptr[r] / S) * 4 * H;
    const T* p = pass == 0 ? part + t * 2 * H : st + 2 * H;
    for (int64_t h = lane; h < H; h += lanes) softmax_rescale_g(sb, se, H, h, p[h], p[H + h], st[h], st[H + h], y);
  }
}

// ---- GAT -----------------------------------------------------------------------------------------
// The lane's columns c0 + c·G (c < C) of row r: feature f, its head, whether it exists, s_dst.
template <class T, int C>
__device__ __forceinline__ void gat_columns_g(int64_t r, int64_t c0, int lanes, int64_t H, int64_t D,
                                              const T* __restrict__ s_dst, int64_t* f, int64_t* head, bool* live,
                                              T* sd) {
  const int64_t F = H * D;
#pragma unroll
  for (int c = 0; c < C; ++c) {
    f[c] = c0 + int64_t(c) * lanes;
    live[c] = f[c] < F;
    head[c] = live[c] ? f[c] / D : 0;
    sd[c] = live[c] ? s_dst[r * H + head[c]] : T(0);
  }
}

// One segment [sb, se) for the lane's columns (the CPU twin's gat_segment per element): m = the
// max score of the column's head (0 when all are -inf), sum = Σ exp(e - m), acc = Σ exp(e - m)·x,
// each from 0 in CSR order.
template <class T, int C>
__device__ __forceinline__ void gat_segment_g(int64_t sb, int64_t se, int64_t H, int64_t F, T slope,
                                              const int64_t* __restrict__ col, const T* __restrict__ x,
                                              const T* __restrict__ s_src, const int64_t* f, const int64_t* head,
                                              const bool* live, const T* sd, T* m, T* sum, T* acc) {
#pragma unroll
  for (int c = 0; c < C; ++c) {
    m[c] = neg_inf_g<T>();
    acc[c] = T(0);
    sum[c] = T(0);
  }
  // sweep 1: the max of each column's head
  for (int64_t k = sb; k < se; ++k) {
    const T* ss = s_src + col[k] * H;
#pragma unroll
    for (int c = 0; c < C; ++c)
      if (live[c]) m[c] = nan_max_g(m[c], leaky_g(ss[head[c]] + sd[c], slope));
  }
#pragma unroll
  for (int c = 0; c < C; ++c)
    if (m[c] == neg_inf_g<T>()) m[c] = T(0);
  // sweep 2: acc = Σ exp(e - m) · x[col, f], sum = Σ exp(e - m), in CSR order
  for (int64_t k = sb; k < se; ++k) {
    const int64_t j = col[k];
    const T* ss = s_src + j * H;
    const T* xr = x + j * F;
#pragma unroll
    for (int c = 0; c < C; ++c)
      if (live[c]) {
        const T p = exp_g(leaky_g(ss[head[c]] + sd[c], slope) - m[c]);
        sum[c] += p;
        acc[c] = fma_g(p, xr[f[c]], acc[c]);
      }
  }
}

// out = acc / sum (where some term counted), lse by the lane owning the head's first column
template <class T, int C>
__device__ __forceinline__ void gat_finish_g(int64_t r, int64_t H, int64_t D, const int64_t* f, const int64_t* head,
                                             const bool* live, const T* m, const T* sum, const T* acc,
                                             T* __restrict__ out, T* __restrict__ lse) {
  const int64_t F = H * D;
#pragma unroll
  for (int c = 0; c < C; ++c)
    if (live[c]) {
      const bool some = sum[c] > T(0) || sum[c] != sum[c];
      out[r * F + f[c]] = some ? acc[c] / sum[c] : acc[c];
      if (lse && f[c] == head[c] * D) lse[r * H + head[c]] = some ? m[c] + log_g(sum[c]) : neg_inf_g<T>();
    }
}

// One group per (light row, column block); lane `lane` owns columns c0 + c·G, c < C.
template <class T, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    gat_kernel(int64_t rows, int lanes, int64_t col_blocks, int64_t H, int64_t D, T slope,
               const int64_t* __restrict__ row_ptr, const int64_t* __restrict__ col, const T* __restrict__ x,
               const T* __restrict__ s_src, const T* __restrict__ s_dst, T* __restrict__ out, T* __restrict__ lse) {
  const int64_t F = H * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t r = group / col_blocks;
  if (r >= rows) return;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  if (e - b > kGraphSegment) return;  // a hub row: the split kernels
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * C) + lane;
  int64_t f[C], head[C];
  bool live[C];
  T sd[C], m[C], acc[C], sum[C];
  gat_columns_g<T, C>(r, c0, lanes, H, D, s_dst, f, head, live, sd);
  gat_segment_g<T, C>(b, e, H, F, slope, col, x, s_src, f, head, live, sd, m, sum, acc);
  gat_finish_g<T, C>(r, H, D, f, head, live, m, sum, acc, out, lse);
}

// partial: one group per (chunk t >= 1, column block): the segment starting in chunk t into
// part[t] (the weighted sums [F], then m [H] and sum [H] by the lane owning the head's first column)
template <class T, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    gat_partial_kernel(int64_t rows, int64_t chunks, int lanes, int64_t col_blocks, int64_t H, int64_t D, T slope,
                       const int64_t* __restrict__ row_ptr, const int64_t* __restrict__ col, const T* __restrict__ x,
                       const T* __restrict__ s_src, const T* __restrict__ s_dst, T* __restrict__ part) {
  const int64_t F = H * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t t = 1 + group / col_blocks;
  if (t >= chunks) return;
  int64_t sb = 0, e = 0, r = 0;
  if (!chunk_segment(rows, row_ptr, t, &sb, &e, &r)) return;
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * C) + lane;
  int64_t f[C], head[C];
  bool live[C];
  T sd[C], m[C], acc[C], sum[C];
  gat_columns_g<T, C>(r, c0, lanes, H, D, s_dst, f, head, live, sd);
  gat_segment_g<T, C>(sb, sb + kGraphSegment < e ? sb + kGraphSegment : e, H, F, slope, col, x, s_src, f, head, live,
                      sd, m, sum, acc);
  T* p = part + t * (F + 2 * H);
#pragma unroll
  for (int c = 0; c < C; ++c)
    if (live[c]) {
      p[f[c]] = acc[c];
      if (f[c] == head[c] * D) {
        p[F + head[c]] = m[c];
        p[F + H + head[c]] = sum[c];
      }
    }
}

// hub: one group per (chunk t, column block): the hub row starting in chunk t, segment 0 here,
// segments 1, 2, ... from part (or computed here without it), combined in order, then written.
template <class T, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    gat_hub_kernel(int64_t rows, int64_t nnz, int64_t chunks, int lanes, int64_t col_blocks, int64_t H, int64_t D,
                   T slope, const int64_t* __restrict__ row_ptr, const int64_t* __restrict__ col,
                   const T* __restrict__ x, const T* __restrict__ s_src, const T* __restrict__ s_dst,
                   const T* __restrict__ part, T* __restrict__ out, T* __restrict__ lse) {
  constexpr int64_t S = kGraphSegment;
  const int64_t F = H * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t t = group / col_blocks;
  if (t >= chunks) return;
  int64_t r = 0;
  if (!chunk_hub_row(rows, nnz, row_ptr, t, &r)) return;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * C) + lane;
  int64_t f[C], head[C];
  bool live[C];
  T sd[C], M[C], A[C], L[C];
  gat_columns_g<T, C>(r, c0, lanes, H, D, s_dst, f, head, live, sd);
  gat_segment_g<T, C>(b, b + S, H, F, slope, col, x, s_src, f, head, live, sd, M, L, A);
  for (int64_t sb = b + S; sb < e; sb += S) {
    T m[C], l[C], a[C];
    if (part) {
      const T* p = part + (sb / S) * (F + 2 * H);
#pragma unroll
      for (int c = 0; c < C; ++c) {
        a[c] = live[c] ? p[f[c]] : T(0);
        m[c] = live[c] ? p[F + head[c]] : T(0);
        l[c] = live[c] ? p[F + H + head[c]] : T(0);
      }
    } else {
      gat_segment_g<T, C>(sb, sb + S < e ? sb + S : e, H, F, slope, col, x, s_src, f, head, live, sd, m, l, a);
    }
#pragma unroll
    for (int c = 0; c < C; ++c)
      if (live[c]) softmax_merge_g(M[c], L[c], A[c], m[c], l[c], a[c]);
  }
  gat_finish_g<T, C>(r, H, D, f, head, live, M, L, A, out, lse);
}

// Scratch of the hub split, bytes: per chunk of S non-zeros, edge softmax 6·heads values (a
// segment's m and l; a hub row's M and L and its segment 0's m and l), GAT forward heads·width + 2·heads (a segment's
// weighted sums, m and l), GAT backward heads·width (a segment's sums: row_dot, gs_dst, gs_src
// and gx one after the other); 0 when no row can be longer than S or beyond kMaxSplitBytes (then
// each hub row is walked by one group, with the same arithmetic).
constexpr int64_t kMaxSplitBytes = int64_t(1) << 30;

int64_t gat_split_bytes(int dtype, int pass, int64_t nnz, int64_t H, int64_t D) {
  if (dtype != MK_F32 && dtype != MK_F64) return 0;
  const int64_t chunks = (nnz + kGraphSegment - 1) / kGraphSegment;
  if (chunks <= 1 || H < 1) return 0;
  const int64_t elem = dtype == MK_F32 ? 4 : 8;
  if (D > (kMaxSplitBytes / elem) / H) return 0;
  int64_t per = 0;
  if (pass == kGatPassSoftmax)
    per = 6 * H;
  else if (pass == kGatPassForward)
    per = H * D + 2 * H;
  else if (pass == kGatPassBackward)
    per = H * std::max<int64_t>(D, 1);
  else
    return 0;
  if (per <= 0 || per > kMaxSplitBytes / elem / chunks) return 0;
  return chunks * per * elem;
}

template <class T>
int edge_softmax_t(int64_t rows, int64_t nnz, int64_t H, const int64_t* row_ptr, const T* s, const T* lse_in, T* y,
                   T* lse_out, void* ws, cudaStream_t st) {
  const int lanes = pow2_at_least(H);
  int rc = launch_1d<Traits::kThreads>(edge_softmax_kernel<T>, rows * lanes, st, rows, lanes, H, row_ptr, s, lse_in,
                                       y, lse_out);
  const int64_t chunks = (nnz + kGraphSegment - 1) / kGraphSegment;
  if (rc || chunks <= 1) return rc;
  const T* none = nullptr;
  if (lse_in)  // one pass: y = exp(s - lse) per hub segment
    return launch_1d<Traits::kThreads>(edge_softmax_y_kernel<T>, chunks * lanes, st, rows, nnz, chunks, lanes, H,
                                       row_ptr, s, lse_in, none, none, y);
  T* part = static_cast<T*>(ws);
  T* stat = part ? part + chunks * 2 * H : nullptr;
  if (part)
    rc = launch_1d<Traits::kThreads>(edge_softmax_partial_kernel<T>, (chunks - 1) * lanes, st, rows, chunks, lanes,
                                     H, row_ptr, s, part, y);
  const T* pc = part;
  if (rc == 0)
    rc = launch_1d<Traits::kThreads>(edge_softmax_hub_kernel<T>, chunks * lanes, st, rows, nnz, chunks, lanes, H,
                                     row_ptr, s, pc, stat, y, lse_out);
  const T* sc = stat;
  if (rc == 0 && stat)
    rc = launch_1d<Traits::kThreads>(edge_softmax_y_kernel<T>, chunks * lanes, st, rows, nnz, chunks, lanes, H,
                                     row_ptr, s, none, pc, sc, y);
  return rc;
}

template <class T, int C>
int gat_launch(int64_t rows, int64_t nnz, int lanes, int64_t col_blocks, int64_t H, int64_t D, T slope,
               const int64_t* row_ptr, const int64_t* col, const T* x, const T* s_src, const T* s_dst, T* out, T* lse,
               void* ws, cudaStream_t st) {
  int rc = launch_1d<Traits::kThreads>(gat_kernel<T, C>, rows * col_blocks * lanes, st, rows, lanes, col_blocks, H, D,
                                       slope, row_ptr, col, x, s_src, s_dst, out, lse);
  const int64_t chunks = (nnz + kGraphSegment - 1) / kGraphSegment;
  if (rc || chunks <= 1) return rc;
  T* part = static_cast<T*>(ws);
  if (part)
    rc = launch_1d<Traits::kThreads>(gat_partial_kernel<T, C>, (chunks - 1) * col_blocks * lanes, st, rows, chunks,
                                     lanes, col_blocks, H, D, slope, row_ptr, col, x, s_src, s_dst, part);
  const T* pc = part;
  if (rc == 0)
    rc = launch_1d<Traits::kThreads>(gat_hub_kernel<T, C>, chunks * col_blocks * lanes, st, rows, nnz, chunks, lanes,
                                     col_blocks, H, D, slope, row_ptr, col, x, s_src, s_dst, pc, out, lse);
  return rc;
}

template <class T>
int gat_t(int64_t rows, int64_t nnz, int64_t H, int64_t D, T slope, const int64_t* row_ptr, const int64_t* col,
          const T* x, const T* s_src, const T* s_dst, T* out, T* lse, void* ws, cudaStream_t st) {
  const int64_t F = H * D;
  int lanes = 32, chunks = 1;
  if (F <= 32) {
    lanes = pow2_at_least(F);
  } else {
    chunks = int(std::min<int64_t>(Traits::kMaxChunks, (F + 31) / 32));
    if (chunks == 3) chunks = 4;
  }
  const int64_t block_cols = int64_t(lanes) * chunks;
  const int64_t col_blocks = (F + block_cols - 1) / block_cols;
  if (chunks == 1)
    return gat_launch<T, 1>(rows, nnz, lanes, col_blocks, H, D, slope, row_ptr, col, x, s_src, s_dst, out, lse, ws,
                            st);
  if (chunks == 2)
    return gat_launch<T, 2>(rows, nnz, lanes, col_blocks, H, D, slope, row_ptr, col, x, s_src, s_dst, out, lse, ws,
                            st);
  return gat_launch<T, Traits::kMaxChunks>(rows, nnz, lanes, col_blocks, H, D, slope, row_ptr, col, x, s_src, s_dst,
                                           out, lse, ws, st);
}

// ---- GAT backward ---------------------------------------------------------------------------------
// The twin of kernels/cpu/gat.cpp's gat_backward_t: the same expressions per element, in the same
// order (so bitwise equal in the emulator). Launches on the stream, in order:
//   rows:    one lane per (light row, head) (lane groups as in the edge softmax); sweep 1: α, ga and
//            row_dot = Σ α ga; sweep 2 recomputes α, ga: gs_dst = Σ α·leaky'(z)·(ga - row_dot);
//            the hub rows by the split (row_dot folded, then gs_dst's segments, then folded);
//   sources: one lane per (light column, head) over the CSC: gs_src = Σ α·leaky'(z)·(ga - row_dot[i]);
//   gx:      one lane per (light column, feature) over the CSC: gx = Σ α gout[i, f] (α per lane);
//            the hub columns of both by the split.
// No atomics, nothing of size nnz × heads.
template <class T>
__device__ __forceinline__ T gat_alpha_g(T ev, T l) {
  return l == neg_inf_g<T>() ? T(0) : exp_g(ev - l);
}

// the CPU twin's gat_dot: 8 running sums by fma in order, then a fixed tree
template <class T>
__device__ __forceinline__ T gat_dot_g(const T* a, const T* b, int64_t n) {
  T s[8];
#pragma unroll
  for (int l = 0; l < 8; ++l) s[l] = T(0);
  int64_t d = 0;
  for (; d + 8 <= n; d += 8) {
#pragma unroll
    for (int l = 0; l < 8; ++l) s[l] = fma_g(a[d + l], b[d + l], s[l]);
  }
  for (int l = 0; d + l < n; ++l) s[l] = fma_g(a[d + l], b[d + l], s[l]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// The backward's four sums over the non-zeros [sb, se) of one row (column) and one unit (a head,
// or a feature for gx), each from 0 in CSR (CSC) order; put() writes a finished sum.
template <class T>
struct GatBackwardArgs {
  int64_t H, D;
  T slope;
  const int64_t* __restrict__ col;      // CSR columns (row sums)
  const int64_t* __restrict__ csc_row;  // CSC rows (column sums)
  const T* __restrict__ x;
  const T* __restrict__ s_src;
  const T* __restrict__ s_dst;
  const T* __restrict__ lse;
  const T* __restrict__ gout;
  T* __restrict__ row_dot;
  T* __restrict__ gs_dst;
  T* __restrict__ gs_src;
  T* __restrict__ gx;
};

// row_dot's terms of row r, head h: Σ α ga
template <class T>
struct RowDotSum {
  GatBackwardArgs<T> a;
  __device__ __forceinline__ T seg(int64_t r, int64_t sb, int64_t se, int64_t h) const {
    const int64_t F = a.H * a.D;
    const T sd = a.s_dst[r * a.H + h], l = a.lse[r * a.H + h];
    const T* gr = a.gout + r * F + h * a.D;
    T dsum = T(0);
    for (int64_t k = sb; k < se; ++k) {
      const int64_t j = a.col[k];
      const T al = gat_alpha_g(leaky_g(a.s_src[j * a.H + h] + sd, a.slope), l);
      dsum = fma_g(al, gat_dot_g(gr, a.x + j * F + h * a.D, a.D), dsum);
    }
    return dsum;
  }
  __device__ __forceinline__ void put(int64_t r, int64_t h, T v) const { a.row_dot[r * a.H + h] = v; }
};

// gs_dst's terms of row r, head h: Σ α·leaky'(z)·(ga - row_dot[r, h])
template <class T>
struct GsDstSum {
  GatBackwardArgs<T> a;
  __device__ __forceinline__ T seg_with(int64_t r, int64_t sb, int64_t se, int64_t h, T dsum) const {
    const int64_t F = a.H * a.D;
    const T sd = a.s_dst[r * a.H + h], l = a.lse[r * a.H + h];
    const T* gr = a.gout + r * F + h * a.D;
    T acc = T(0);
    for (int64_t k = sb; k < se; ++k) {
      const int64_t j = a.col[k];
      const T z = a.s_src[j * a.H + h] + sd;
      const T al = gat_alpha_g(leaky_g(z, a.slope), l);
      const T ga = gat_dot_g(gr, a.x + j * F + h * a.D, a.D);
      acc = fma_g(al, fma_g(z > T(0) ? T(1) : a.slope, ga - dsum, T(0)), acc);
    }
    return acc;
  }
  __device__ __forceinline__ T seg(int64_t r, int64_t sb, int64_t se, int64_t h) const {
    return seg_with(r, sb, se, h, a.row_dot[r * a.H + h]);
  }
  __device__ __forceinline__ void put(int64_t r, int64_t h, T v) const { a.gs_dst[r * a.H + h] = v; }
};

// gs_src's terms of column j, head h: Σ α·leaky'(z)·(ga - row_dot[i, h]) over its entries
template <class T>
struct GsSrcSum {
  GatBackwardArgs<T> a;
  __device__ __forceinline__ T seg(int64_t j, int64_t sb, int64_t se, int64_t h) const {
    const int64_t F = a.H * a.D;
    const T ss = a.s_src[j * a.H + h];
    const T* xr = a.x + j * F + h * a.D;
    T acc = T(0);
    for (int64_t k = sb; k < se; ++k) {
      const int64_t i = a.csc_row[k];
      const T z = ss + a.s_dst[i * a.H + h];
      const T al = gat_alpha_g(leaky_g(z, a.slope), a.lse[i * a.H + h]);
      const T ga = gat_dot_g(a.gout + i * F + h * a.D, xr, a.D);
      acc = fma_g(al, fma_g(z > T(0) ? T(1) : a.slope, ga - a.row_dot[i * a.H + h], T(0)), acc);
    }
    return acc;
  }
  __device__ __forceinline__ void put(int64_t j, int64_t h, T v) const { a.gs_src[j * a.H + h] = v; }
};

// gx's terms of column j, feature f: Σ α gout[i, f] over its entries
template <class T>
struct GxSum {
  GatBackwardArgs<T> a;
  __device__ __forceinline__ T seg(int64_t j, int64_t sb, int64_t se, int64_t f) const {
    const int64_t F = a.H * a.D, h = f / a.D;
    const T ss = a.s_src[j * a.H + h];
    T acc = T(0);
    for (int64_t k = sb; k < se; ++k) {
      const int64_t i = a.csc_row[k];
      const T al = gat_alpha_g(leaky_g(ss + a.s_dst[i * a.H + h], a.slope), a.lse[i * a.H + h]);
      acc = fma_g(al, a.gout[i * F + f], acc);
    }
    return acc;
  }
  __device__ __forceinline__ void put(int64_t j, int64_t f, T v) const { a.gx[j * (a.H * a.D) + f] = v; }
};

// The light rows (columns) of a sum: one lane per (row, unit), units in blocks of `lanes`.
template <class T, class Sum>
__global__ void __launch_bounds__(Traits::kThreads)
    sum_light_kernel(Sum op, int64_t rows, int lanes, int64_t unit_blocks, int64_t units,
                     const int64_t* __restrict__ ptr) {
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t r = group / unit_blocks;
  if (r >= rows) return;
  const int64_t u = (group % unit_blocks) * lanes + lane;
  if (u >= units) return;
  const int64_t b = ptr[r], e = ptr[r + 1];
  if (e - b > kGraphSegment) return;  // a hub row: the split kernels
  op.put(r, u, op.seg(r, b, e, u));
}

// partial: one lane per (chunk t >= 1, unit): the segment starting in chunk t into part[t · units + u]
template <class T, class Sum>
__global__ void __launch_bounds__(Traits::kThreads)
    sum_partial_kernel(Sum op, int64_t rows, int64_t chunks, int lanes, int64_t unit_blocks, int64_t units,
                       const int64_t* __restrict__ ptr, T* __restrict__ part) {
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t t = 1 + group / unit_blocks;
  if (t >= chunks) return;
  const int64_t u = (group % unit_blocks) * lanes + lane;
  if (u >= units) return;
  int64_t sb = 0, e = 0, r = 0;
  if (!chunk_segment(rows, ptr, t, &sb, &e, &r)) return;
  part[t * units + u] = op.seg(r, sb, sb + kGraphSegment < e ? sb + kGraphSegment : e, u);
}

// hub: one lane per (chunk t, unit): the hub row starting in chunk t, the left fold of its
// segments' sums (segment 0 here, the others from part or computed here), written by put().
template <class T, class Sum>
__global__ void __launch_bounds__(Traits::kThreads)
    sum_hub_kernel(Sum op, int64_t rows, int64_t nnz, int64_t chunks, int lanes, int64_t unit_blocks, int64_t units,
                   const int64_t* __restrict__ ptr, const T* __restrict__ part) {
  constexpr int64_t S = kGraphSegment;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t t = group / unit_blocks;
  if (t >= chunks) return;
  const int64_t u = (group % unit_blocks) * lanes + lane;
  if (u >= units) return;
  int64_t r = 0;
  if (!chunk_hub_row(rows, nnz, ptr, t, &r)) return;
  const int64_t b = ptr[r], e = ptr[r + 1];
  T tot = op.seg(r, b, b + S, u);
  for (int64_t sb = b + S; sb < e; sb += S) {
    const T v = part ? part[(sb / S) * units + u] : op.seg(r, sb, sb + S < e ? sb + S : e, u);
    tot = tot + v;
  }
  op.put(r, u, tot);
}

// rows: one lane per (light row, head): row_dot, then (with gs_dst) gs_dst from it
template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
    gat_backward_rows_kernel(GatBackwardArgs<T> a, int64_t rows, int lanes, const int64_t* __restrict__ row_ptr) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  if (r >= rows) return;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  if (e - b > kGraphSegment) return;  // a hub row: the split kernels
  const RowDotSum<T> dot{a};
  const GsDstSum<T> gs{a};
  for (int64_t h = lane; h < a.H; h += lanes) {
    const T dsum = dot.seg(r, b, e, h);
    a.row_dot[r * a.H + h] = dsum;
    if (a.gs_dst) a.gs_dst[r * a.H + h] = gs.seg_with(r, b, e, h, dsum);
  }
}

// sources: one lane per (light column, head), the heads of a column in steps of `lanes`
template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
    gat_backward_src_kernel(GatBackwardArgs<T> a, int64_t cols, int lanes, const int64_t* __restrict__ col_ptr) {
  const int64_t j = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  if (j >= cols) return;
  const int64_t b = col_ptr[j], e = col_ptr[j + 1];
  if (e - b > kGraphSegment) return;  // a hub column: the split kernels
  const GsSrcSum<T> op{a};
  for (int64_t h = lane; h < a.H; h += lanes) a.gs_src[j * a.H + h] = op.seg(j, b, e, h);
}

// A sum's hub rows: partial (with the scratch), then hub.
template <class T, class Sum>
int sum_split(const Sum& op, int64_t rows, int64_t nnz, int64_t units, const int64_t* ptr, T* part, cudaStream_t st) {
  const int64_t chunks = (nnz + kGraphSegment - 1) / kGraphSegment;
  if (chunks <= 1) return 0;
  const int lanes = pow2_at_least(units);
  const int64_t unit_blocks = (units + lanes - 1) / lanes;
  int rc = 0;
  if (part)
    rc = launch_1d<Traits::kThreads>(sum_partial_kernel<T, Sum>, (chunks - 1) * unit_blocks * lanes, st, op, rows,
                                     chunks, lanes, unit_blocks, units, ptr, part);
  const T* pc = part;
  if (rc == 0)
    rc = launch_1d<Traits::kThreads>(sum_hub_kernel<T, Sum>, chunks * unit_blocks * lanes, st, op, rows, nnz, chunks,
                                     lanes, unit_blocks, units, ptr, pc);
  return rc;
}

template <class T>
int gat_backward_t(int64_t rows, int64_t nnz, int64_t H, int64_t D, T slope, const int64_t* row_ptr,
                   const int64_t* col, const int64_t* col_ptr, const int64_t* csc_row, const T* x, const T* s_src,
                   const T* s_dst, const T* lse, const T* gout, T* gx, T* gs_src, T* gs_dst, T* row_dot, void* ws,
                   cudaStream_t st) {
  const GatBackwardArgs<T> a{H, D, slope, col, csc_row, x, s_src, s_dst, lse, gout, row_dot, gs_dst, gs_src, gx};
  T* part = static_cast<T*>(ws);
  const int hl = pow2_at_least(H);
  const int64_t F = H * D;
  if (gs_src || gs_dst) {
    int rc = launch_1d<Traits::kThreads>(gat_backward_rows_kernel<T>, rows * hl, st, a, rows, hl, row_ptr);
    if (rc == 0) rc = sum_split<T>(RowDotSum<T>{a}, rows, nnz, H, row_ptr, part, st);
    if (rc == 0 && gs_dst) rc = sum_split<T>(GsDstSum<T>{a}, rows, nnz, H, row_ptr, part, st);
    if (rc) return rc;
  }
  if (gs_src) {
    int rc = launch_1d<Traits::kThreads>(gat_backward_src_kernel<T>, rows * hl, st, a, rows, hl, col_ptr);
    if (rc == 0) rc = sum_split<T>(GsSrcSum<T>{a}, rows, nnz, H, col_ptr, part, st);
    if (rc) return rc;
  }
  if (gx) {
    const GxSum<T> op{a};
    const int fl = pow2_at_least(F);
    const int64_t ub = (F + fl - 1) / fl;
    int rc = launch_1d<Traits::kThreads>(sum_light_kernel<T, GxSum<T>>, rows * ub * fl, st, op, rows, fl, ub, F,
                                         col_ptr);
    if (rc == 0) rc = sum_split<T>(op, rows, nnz, F, col_ptr, part, st);
    return rc;
  }
  return 0;
}

}  // namespace

int graph_edge_softmax_split(int dtype, int64_t rows, int64_t nnz, int64_t heads, const int64_t* row_ptr,
                             const void* scores, const void* lse_in, void* out, void* lse_out, void* workspace,
                             int64_t workspace_bytes, void* stream) {
  auto s = as_stream(stream);
  const int64_t need = gat_split_bytes(dtype, kGatPassSoftmax, nnz, heads, 1);
  void* ws = need > 0 && workspace && workspace_bytes >= need ? workspace : nullptr;
  if (dtype == MK_F32)
    return edge_softmax_t(rows, nnz, heads, row_ptr, static_cast<const float*>(scores),
                          static_cast<const float*>(lse_in), static_cast<float*>(out), static_cast<float*>(lse_out), ws,
                          s);
  if (dtype == MK_F64)
    return edge_softmax_t(rows, nnz, heads, row_ptr, static_cast<const double*>(scores),
                          static_cast<const double*>(lse_in), static_cast<double*>(out),
                          static_cast<double*>(lse_out), ws, s);
  return KERNEL_UNSUPPORTED;
}

int graph_edge_softmax(int dtype, int64_t rows, int64_t nnz, int64_t heads, const int64_t* row_ptr, const void* scores,
                       const void* lse_in, void* out, void* lse_out, void* stream) {
  return graph_edge_softmax_split(dtype, rows, nnz, heads, row_ptr, scores, lse_in, out, lse_out, nullptr, 0, stream);
}

int graph_gat_split(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope,
                    const int64_t* row_ptr, const int64_t* col, const void* x, const void* s_src, const void* s_dst,
                    void* out, void* lse, void* workspace, int64_t workspace_bytes, void* stream) {
  auto s = as_stream(stream);
  const int64_t need = gat_split_bytes(dtype, kGatPassForward, nnz, heads, width);
  void* ws = need > 0 && workspace && workspace_bytes >= need ? workspace : nullptr;
  if (dtype == MK_F32)
    return gat_t(rows, nnz, heads, width, float(slope), row_ptr, col, static_cast<const float*>(x),
                 static_cast<const float*>(s_src), static_cast<const float*>(s_dst), static_cast<float*>(out),
                 static_cast<float*>(lse), ws, s);
  if (dtype == MK_F64)
    return gat_t(rows, nnz, heads, width, slope, row_ptr, col, static_cast<const double*>(x),
                 static_cast<const double*>(s_src), static_cast<const double*>(s_dst), static_cast<double*>(out),
                 static_cast<double*>(lse), ws, s);
  return KERNEL_UNSUPPORTED;
}

int graph_gat(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope, const int64_t* row_ptr,
              const int64_t* col, const void* x, const void* s_src, const void* s_dst, void* out, void* lse,
              void* stream) {
  return graph_gat_split(dtype, rows, nnz, heads, width, slope, row_ptr, col, x, s_src, s_dst, out, lse, nullptr, 0,
                         stream);
}

int graph_gat_backward_split(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope,
                             const int64_t* row_ptr, const int64_t* col, const int64_t* col_ptr,
                             const int64_t* csc_row, const void* x, const void* s_src, const void* s_dst,
                             const void* lse, const void* gout, void* gx, void* gs_src, void* gs_dst, void* row_dot,
                             void* workspace, int64_t workspace_bytes, void* stream) {
  auto s = as_stream(stream);
  const int64_t need = gat_split_bytes(dtype, kGatPassBackward, nnz, heads, width);
  void* ws = need > 0 && workspace && workspace_bytes >= need ? workspace : nullptr;
  if (dtype == MK_F32)
    return gat_backward_t(rows, nnz, heads, width, float(slope), row_ptr, col, col_ptr, csc_row,
                          static_cast<const float*>(x), static_cast<const float*>(s_src),
                          static_cast<const float*>(s_dst), static_cast<const float*>(lse),
                          static_cast<const float*>(gout), static_cast<float*>(gx), static_cast<float*>(gs_src),
                          static_cast<float*>(gs_dst), static_cast<float*>(row_dot), ws, s);
  if (dtype == MK_F64)
    return gat_backward_t(rows, nnz, heads, width, slope, row_ptr, col, col_ptr, csc_row,
                          static_cast<const double*>(x), static_cast<const double*>(s_src),
                          static_cast<const double*>(s_dst), static_cast<const double*>(lse),
                          static_cast<const double*>(gout), static_cast<double*>(gx), static_cast<double*>(gs_src),
                          static_cast<double*>(gs_dst), static_cast<double*>(row_dot), ws, s);
  return KERNEL_UNSUPPORTED;
}

int graph_gat_backward(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope,
                       const int64_t* row_ptr, const int64_t* col, const int64_t* col_ptr, const int64_t* csc_row,
                       const void* x, const void* s_src, const void* s_dst, const void* lse, const void* gout, void* gx,
                       void* gs_src, void* gs_dst, void* row_dot, void* stream) {
  return graph_gat_backward_split(dtype, rows, nnz, heads, width, slope, row_ptr, col, col_ptr, csc_row, x, s_src,
                                  s_dst, lse, gout, gx, gs_src, gs_dst, row_dot, nullptr, 0, stream);
}

int64_t graph_gat_workspace(int dtype, int pass, int64_t rows, int64_t nnz, int64_t heads, int64_t width,
                            const int64_t* row_ptr, const int64_t* col_ptr) {
  (void)rows;
  (void)row_ptr;  // device pointers: not read here
  (void)col_ptr;
  return gat_split_bytes(dtype, pass, nnz, heads, width);
}

}  // namespace cuda
}  // namespace mk
