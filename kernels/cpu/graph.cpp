// Graph message passing on the CPU (MK_MULTI_ISA: compiled for AVX2 and for AVX-512; the AVX2
// build also holds the dispatcher and the structure check). Shapes and the CSR form: mk/kernels.inc
// and the graph section of metakernels.h.
//
//   spmm:  out[r, h, :] = ⊕_{k ∈ row r} w[k, h] · x[col[k], h, :]     ⊕ ∈ {sum, mean, max, min}
//   sddmm: out[k, h]    = Σ_d a[r, h, d] · b[col[k], h, d]              for each k ∈ row r
//
// Determinism. Threads split the rows, never a row: every output element of spmm is reduced by
// one thread over its row's non-zeros in CSR order (sum: acc = fma(w, x, acc) from 0, a row longer
// than kGraphSegment non-zeros in fixed segments whose sums are added left to right, see
// mk/graph_segment.h; mean: that sum / row length; max/min: the first of equal candidates), and
// every sddmm dot product by one thread in a fixed order. Results are therefore bitwise the same
// for every thread count and run, with no atomics; spmm's arithmetic is also the CUDA twin's,
// element for element.
//
// Load balance. The rows are cut into parts of equal work, the work of rows [0, r) being
// row_ptr[r] + r (non-zeros plus one per row for its writes), found by binary search in row_ptr;
// kPartsPerThread parts per thread are handed out dynamically, so the hubs of a power-law graph
// (rows of 10^5 non-zeros) do not leave the other threads idle. Below parallel_worth()'s size
// (mk/cpu_parallel.h) a call runs on one thread, as the dense kernels do. A single row is never
// split: a row holding more than 1/threads of all the work bounds the speed-up.
//
// Vectorisation (per ISA, mk/cpu_tile.h's Vec): spmm sum/mean keeps up to kBlockVecs accumulator
// registers for a block of feature columns over the whole row, gathers each x row of the block
// once and prefetches the x row kPrefetch non-zeros ahead (the gathers are random accesses: this
// kernel is bound by memory latency and bandwidth, not FMAs); columns past the last full vector
// run a scalar std::fma loop with the same arithmetic. max/min are clean loops over a column
// block that GCC vectorises (compare, blend of value and I64 position). sddmm: a block of W edges
// at a time, one accumulator vector each, finished by one transpose-and-add (see the sddmm section).
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "mk/cpu_graph_parts.h"
#include "mk/cpu_parallel.h"
#include "mk/cpu_scratch.h"
#include "mk/cpu_tile.h"
#include "mk/graph_segment.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"

namespace mk {
namespace cpu {

struct GraphTraits {
  static constexpr int64_t kPartsPerThread = 8;  // dynamic parts per thread (load balance)
  static constexpr int64_t kPrefetch = 8;        // non-zeros ahead whose x row is prefetched
  static constexpr int64_t kExtremeBlock = 64;   // feature columns per pass of max/min
  static constexpr int64_t kL1PrefetchBytes = 256;  // sddmm: b rows up to this long prefetched into L1
  static constexpr int64_t kGatherChunk = 1 << 20;  // spmm: indexed weights put in row order per chunk of rows
  static_assert(kPrefetch >= 1 && kPartsPerThread >= 1, "positive tuning knobs");
};

namespace MK_ISA_NS {
namespace {

using Traits = GraphTraits;
template <class T>
using V = tile::Vec<T>;

#ifdef MK_ISA_AVX512
constexpr int kBlockVecs = 8;  // 8 accumulators + 8 loads + the weight: 17 of the 32 zmm registers
#else
constexpr int kBlockVecs = 4;  // 4 + 4 + 1 of the 16 ymm registers
#endif

// How a non-zero finds its weight: none (all ones), weight[k, h], or weight[index[k], h] (the CSC
// pass reads the CSR-ordered weights through the CSC-to-CSR permutation).
enum WeightMode { kNoWeight = 0, kDirect = 1, kIndexed = 2 };

template <int M, class T>
inline T weight_of(const T* w, const int64_t* widx, int64_t heads, int64_t k, int64_t h) {
  if constexpr (M == kNoWeight)
    return T(1);
  else if constexpr (M == kDirect)
    return w[k * heads + h];
  else
    return w[widx[k] * heads + h];
}

inline void prefetch_span(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 1);
}

// ---- spmm: sum and mean ------------------------------------------------------------------------
// Columns [c, c + NV·W) of one head of a light row [b, e) (at most kGraphSegment non-zeros, see
// mk/graph_segment.h): NV accumulators over the whole row.
template <class T, int NV, int M>
inline void sum_block(int64_t b, int64_t e, const int64_t* col, const T* w, const int64_t* widx, int64_t heads,
                      int64_t h, const T* x, int64_t F, int64_t c, T* o) {
  using R = typename V<T>::R;
  constexpr int64_t W = V<T>::W;
  R acc[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) acc[v] = V<T>::zero();
  const R one = V<T>::set1(T(1));
  for (int64_t k = b; k < e; ++k) {
    if (k + Traits::kPrefetch < e) {
      prefetch_span(x + col[k + Traits::kPrefetch] * F + c, NV * W * int64_t(sizeof(T)));
      if constexpr (M == kIndexed) __builtin_prefetch(w + widx[k + Traits::kPrefetch] * heads + h, 0, 1);
    }
    const T* xr = x + col[k] * F + c;
    // fma(1, x, acc) is acc + x exactly
    const R wk = M == kNoWeight ? one : V<T>::set1(weight_of<M>(w, widx, heads, k, h));
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[v] = V<T>::fma(wk, V<T>::load(xr + v * W), acc[v]);
  }
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) V<T>::store(o + c + v * W, acc[v]);
}

// acc = the sums of columns [c, c + NV·W) of one head over the non-zeros [sb, se) (one segment of
// a hub row), from 0 in CSR order; pe: the row's end, for the prefetches.
template <class T, int NV, int M>
inline void segment_sums(int64_t sb, int64_t se, int64_t pe, const int64_t* col, const T* w, const int64_t* widx,
                         int64_t heads, int64_t h, const T* x, int64_t F, int64_t c, typename V<T>::R* acc) {
  using R = typename V<T>::R;
  constexpr int64_t W = V<T>::W;
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) acc[v] = V<T>::zero();
  const R one = V<T>::set1(T(1));
  for (int64_t k = sb; k < se; ++k) {
    if (k + Traits::kPrefetch < pe) {
      prefetch_span(x + col[k + Traits::kPrefetch] * F + c, NV * W * int64_t(sizeof(T)));
      if constexpr (M == kIndexed) __builtin_prefetch(w + widx[k + Traits::kPrefetch] * heads + h, 0, 1);
    }
    const T* xr = x + col[k] * F + c;
    const R wk = M == kNoWeight ? one : V<T>::set1(weight_of<M>(w, widx, heads, k, h));
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[v] = V<T>::fma(wk, V<T>::load(xr + v * W), acc[v]);
  }
}

// Columns [c, c + NV·W) of one head over a hub row [b, e) (more than kGraphSegment non-zeros):
// the segment sums (segment_sums) added left to right into NV totals, all in registers; stored once.
template <class T, int NV, int M>
inline void sum_block_hub(int64_t b, int64_t e, const int64_t* col, const T* w, const int64_t* widx, int64_t heads,
                          int64_t h, const T* x, int64_t F, int64_t c, T* o) {
  using R = typename V<T>::R;
  constexpr int64_t W = V<T>::W;
  constexpr int64_t S = kGraphSegment;
  R acc[NV], tot[NV];
  const R one = V<T>::set1(T(1));
  segment_sums<T, NV, M>(b, b + S, e, col, w, widx, heads, h, x, F, c, tot);
  for (int64_t sb = b + S; sb < e; sb += S) {
    segment_sums<T, NV, M>(sb, e - sb <= S ? e : sb + S, e, col, w, widx, heads, h, x, F, c, acc);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) tot[v] = V<T>::fma(one, acc[v], tot[v]);  // tot + acc exactly
  }
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) V<T>::store(o + c + v * W, tot[v]);
}

// The columns block of a whole row: a light row by sum_block (the code of a row that is never
// split), a hub row by sum_block_hub.
template <class T, int NV, int M>
inline void sum_block_row(int64_t b, int64_t e, const int64_t* col, const T* w, const int64_t* widx, int64_t heads,
                          int64_t h, const T* x, int64_t F, int64_t c, T* o) {
  if (e - b <= kGraphSegment)
    sum_block<T, NV, M>(b, e, col, w, widx, heads, h, x, F, c, o);
  else
    sum_block_hub<T, NV, M>(b, e, col, w, widx, heads, h, x, F, c, o);
}

template <class T, int M>
void sum_columns(int nv, int64_t b, int64_t e, const int64_t* col, const T* w, const int64_t* widx, int64_t heads,
                 int64_t h, const T* x, int64_t F, int64_t c, T* o) {
  switch (nv) {
#define MK_SUM_CASE(n)                                            \
  case n:                                                         \
    sum_block_row<T, n, M>(b, e, col, w, widx, heads, h, x, F, c, o); \
    break;
    MK_SUM_CASE(1)
    MK_SUM_CASE(2)
    MK_SUM_CASE(3)
    MK_SUM_CASE(4)
#ifdef MK_ISA_AVX512
    MK_SUM_CASE(5)
    MK_SUM_CASE(6)
    MK_SUM_CASE(7)
    MK_SUM_CASE(8)
#endif
#undef MK_SUM_CASE
    default:
      break;
  }
}

// One output row of sum or mean: o = out + r·F. A row longer than kGraphSegment non-zeros is
// summed segment by segment and the segment sums are added left to right (mk/graph_segment.h: the
// order the CUDA twin's split of hub rows follows); a shorter row is one segment.
template <class T, int M>
void sum_row(bool mean, int64_t b, int64_t e, const int64_t* col, const T* w, const int64_t* widx, int64_t heads,
             int64_t D, const T* x, T* o) {
  constexpr int64_t W = V<T>::W;
  constexpr int64_t S = kGraphSegment;
  const int64_t F = heads * D;
  for (int64_t h = 0; h < heads; ++h) {
    int64_t c = h * D;
    const int64_t end = c + D;
    for (int64_t vecs = (end - c) / W; vecs > 0;) {
      const int nv = int(std::min<int64_t>(vecs, kBlockVecs));
      sum_columns<T, M>(nv, b, e, col, w, widx, heads, h, x, F, c, o);
      c += nv * W;
      vecs -= nv;
    }
    if (c < end) {  // fewer than W columns: the same arithmetic, one element at a time
      const int64_t n = end - c;
      T tot[V<T>::W] = {};
      for (int64_t sb = b;;) {
        const int64_t se = e - sb <= S ? e : sb + S;
        T acc[V<T>::W] = {};
        for (int64_t k = sb; k < se; ++k) {
          const T* xr = x + col[k] * F + c;
          const T wk = weight_of<M>(w, widx, heads, k, h);
          for (int64_t i = 0; i < n; ++i) acc[i] = std::fma(wk, xr[i], acc[i]);
        }
        for (int64_t i = 0; i < n; ++i) tot[i] = sb == b ? acc[i] : tot[i] + acc[i];
        if (se >= e) break;
        sb = se;
      }
      for (int64_t i = 0; i < n; ++i) o[c + i] = tot[i];
    }
  }
  if (mean && e > b) {
    const T len = T(e - b);
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) o[f] = o[f] / len;
  }
}

// ---- spmm: max and min -------------------------------------------------------------------------
// Candidates v = w·x (or x), compared elementwise; the first in row order wins ties, and a NaN
// candidate wins over any number (so NaN propagates, and the first NaN is the argument).
template <class T, int M, bool kMax>
void extreme_row(int64_t b, int64_t e, int64_t nnz, const int64_t* col, const T* w, const int64_t* widx, int64_t heads,
                 int64_t D, const T* x, T* o, int64_t* arg) {
  constexpr int64_t B = Traits::kExtremeBlock;
  const int64_t F = heads * D;
  if (b == e) {
    std::fill(o, o + F, T(0));
    std::fill(arg, arg + F, nnz);
    return;
  }
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t c = h * D; c < (h + 1) * D; c += B) {
      const int64_t n = std::min<int64_t>(B, (h + 1) * D - c);
      T best[B];
      int64_t pos[B];
      {
        const T* xr = x + col[b] * F + c;
        const T wk = weight_of<M>(w, widx, heads, b, h);
        for (int64_t j = 0; j < n; ++j) {
          best[j] = M == kNoWeight ? xr[j] : wk * xr[j];
          pos[j] = b;
        }
      }
      for (int64_t k = b + 1; k < e; ++k) {
        if (k + Traits::kPrefetch < e) prefetch_span(x + col[k + Traits::kPrefetch] * F + c, n * int64_t(sizeof(T)));
        const T* xr = x + col[k] * F + c;
        const T wk = weight_of<M>(w, widx, heads, k, h);
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          const T v = M == kNoWeight ? xr[j] : wk * xr[j];
          const bool better = kMax ? v > best[j] : v < best[j];
          const bool take = better || (v != v && best[j] == best[j]);
          best[j] = take ? v : best[j];
          pos[j] = take ? k : pos[j];
        }
      }
      std::memcpy(o + c, best, sizeof(T) * size_t(n));
      std::memcpy(arg + c, pos, sizeof(int64_t) * size_t(n));
    }
  }
}

template <class T, int M>
void spmm_rows(int reduce, int64_t r0, int64_t r1, int64_t nnz, int64_t heads, int64_t D, const int64_t* row_ptr,
               const int64_t* col, const T* w, const int64_t* widx, const T* x, T* out, int64_t* arg) {
  const int64_t F = heads * D;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = row_ptr[r], e = row_ptr[r + 1];
    T* o = out + r * F;
    if (reduce == MK_GRAPH_REDUCE_SUM || reduce == MK_GRAPH_REDUCE_MEAN)
      sum_row<T, M>(reduce == MK_GRAPH_REDUCE_MEAN, b, e, col, w, widx, heads, D, x, o);
    else if (reduce == MK_GRAPH_REDUCE_MAX)
      extreme_row<T, M, true>(b, e, nnz, col, w, widx, heads, D, x, o, arg + r * F);
    else
      extreme_row<T, M, false>(b, e, nnz, col, w, widx, heads, D, x, o, arg + r * F);
  }
}

// Sum or mean of rows [r0, r1) with indexed weights (the CSC pass of a gradient, e.g. sddmm's db):
// the weights are first gathered into row order, a chunk of rows at a time (up to `cap` weights
// in buf, the calling thread's slot of the caller's scratch: gather_cap), then read in order as
// direct weights; a row of more than cap weights (a hub of over kGatherChunk / heads non-zeros)
// reads its weights through the index. The gather's random reads are independent of each other
// and run as a pass of their own; read inside the accumulation loop instead, each is one more miss
// among the x rows'. One thread, R-MAT 100k nodes (tools/sddmm_passes_prof.cpp's graph, loaded
// machine): 10M edges 1.15-1.25x on this pass at F = 64, 1.08x at F = 256, 1M edges 1.01-1.03x;
// chunks of 2^16 / 2^18 weights gained 1.05x / 1.10x at 10M, F = 64. Same weights, same order,
// same arithmetic: bitwise the indexed loop's result (and so the CUDA twin's).
template <class T>
void sum_rows_gathered(int reduce, int64_t r0, int64_t r1, int64_t heads, int64_t D, const int64_t* row_ptr,
                       const int64_t* col, const T* w, const int64_t* widx, const T* x, T* out, T* buf, int64_t cap) {
  const int64_t F = heads * D;
  const bool mean = reduce == MK_GRAPH_REDUCE_MEAN;
  for (int64_t c0 = r0; c0 < r1;) {
    if ((row_ptr[c0 + 1] - row_ptr[c0]) * heads > cap) {  // a hub longer than the buffer
      sum_row<T, kIndexed>(mean, row_ptr[c0], row_ptr[c0 + 1], col, w, widx, heads, D, x, out + c0 * F);
      ++c0;
      continue;
    }
    int64_t c1 = c0 + 1;  // rows [c0, c1): at least one, more while their weights fit the buffer
    while (c1 < r1 && (row_ptr[c1 + 1] - row_ptr[c0]) * heads <= cap) ++c1;
    const int64_t kb = row_ptr[c0], n = row_ptr[c1] - kb;
    for (int64_t k = 0; k < n; ++k)
      for (int64_t h = 0; h < heads; ++h) buf[k * heads + h] = w[widx[kb + k] * heads + h];
    for (int64_t r = c0; r < c1; ++r)
      sum_row<T, kDirect>(mean, row_ptr[r] - kb, row_ptr[r + 1] - kb, col + kb, buf, nullptr, heads, D, x, out + r * F);
    c0 = c1;
  }
}

// The gather buffer of sum_rows_gathered: per thread of the call (mk/cpu_graph_parts.h's
// part_threads) min(nnz·heads, kGatherChunk) weights; none unless the weights are indexed and the
// reduction a sum or mean.
template <class T>
T* gather_layout(Carve& c, int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t D, bool indexed,
                 int64_t* cap) {
  *cap = 0;
  if (!indexed || (reduce != MK_GRAPH_REDUCE_SUM && reduce != MK_GRAPH_REDUCE_MEAN)) return nullptr;
  *cap = std::min<int64_t>(nnz * heads, Traits::kGatherChunk);
  return c.take_slots<T>(part_threads(rows, nnz, heads * D), *cap);
}

template <class T>
void spmm_t(int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t D, const int64_t* row_ptr, const int64_t* col,
            const T* w, const int64_t* widx, const T* x, T* out, int64_t* arg, void* ws, int64_t ws_bytes) {
  const int mode = !w ? kNoWeight : widx ? kIndexed : kDirect;
  const bool summed = reduce == MK_GRAPH_REDUCE_SUM || reduce == MK_GRAPH_REDUCE_MEAN;
  int64_t cap = 0;
  Carve c(ws, ws_bytes);
  T* bufs = gather_layout<T>(c, reduce, rows, nnz, heads, D, mode == kIndexed, &cap);
  const bool gather = mode == kIndexed && summed && c.fits();  // else the indexed loop: the same bits
  for_each_part<Traits::kPartsPerThread>(row_ptr, rows, heads * D, [&](int64_t r0, int64_t r1) {
    if (gather)
      sum_rows_gathered<T>(reduce, r0, r1, heads, D, row_ptr, col, w, widx, x, out,
                           bufs + omp_get_thread_num() * Carve::stride<T>(cap), cap);
    else if (mode == kNoWeight)
      spmm_rows<T, kNoWeight>(reduce, r0, r1, nnz, heads, D, row_ptr, col, w, widx, x, out, arg);
    else if (mode == kDirect)
      spmm_rows<T, kDirect>(reduce, r0, r1, nnz, heads, D, row_ptr, col, w, widx, x, out, arg);
    else
      spmm_rows<T, kIndexed>(reduce, r0, r1, nnz, heads, D, row_ptr, col, w, widx, x, out, arg);
  });
}

// ---- sddmm -------------------------------------------------------------------------------------
// Edges are taken W at a time (W = the vector width: 16 F32 / 8 F64 lanes on AVX-512, 8 / 4 on
// AVX2), across row boundaries, in CSR order within a part: slot j of a block holds edge k0 + j,
// with its own a row (its destination's) and b row (its source's). Each slot keeps one
// accumulator vector over the head's columns, lane l summing the products of columns l, l + W,
// l + 2W, ... in order (the last, partial vector by a masked load whose missing lanes add
// +0); then one transpose-and-add (Fold below) turns the W accumulators into one vector of W dot
// products, stored at once. The tree that sums an edge's lanes is the same for every slot, so an
// edge's result depends neither on its position in the block, nor on where the part starts, nor
// on the thread count; a block that runs out of edges repeats its last edge in the empty slots and
// stores only the real ones. The next block's b rows are prefetched while this one computes.

// The W accumulators of a block summed lane-wise into one vector whose lane j is Σ_l acc[j][l].
// Per 128-bit quarter: adjacent lanes first (x0 + x1, x2 + x3, then (x0 + x1) + (x2 + x3) for
// F32), then the quarters pairwise ((q0 + q1) + (q2 + q3) on AVX-512, q0 + q1 on AVX2).
template <class T>
struct Fold;
#ifdef MK_ISA_AVX512
template <>
struct Fold<float> {
  // per quarter: [x0 + x1, x2 + x3, y0 + y1, y2 + y3]
  static __m512 pairs(__m512 x, __m512 y) {
    return _mm512_add_ps(_mm512_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // [x.q0 + x.q1, x.q2 + x.q3, y.q0 + y.q1, y.q2 + y.q3]
  // (the all-lanes masked forms: GCC 12's unmasked ones warn of their undefined pass-through)
  static __m512 quarters(__m512 x, __m512 y) {
    return _mm512_add_ps(_mm512_mask_shuffle_f32x4(x, __mmask16(0xffff), x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_mask_shuffle_f32x4(x, __mmask16(0xffff), x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  static __m512 all(__m512* v) {
    __m512 t[8], u[4];
    for (int i = 0; i < 8; ++i) t[i] = pairs(v[2 * i], v[2 * i + 1]);
    for (int i = 0; i < 4; ++i) u[i] = pairs(t[2 * i], t[2 * i + 1]);  // quarter q: edges 4i..4i+3
    return quarters(quarters(u[0], u[1]), quarters(u[2], u[3]));
  }
  static __m512 load_part(const float* p, uint32_t mask) { return _mm512_maskz_loadu_ps(__mmask16(mask), p); }
  static void store_part(float* p, __m512 v, uint32_t mask) { _mm512_mask_storeu_ps(p, __mmask16(mask), v); }
};
template <>
struct Fold<double> {
  static __m512d pairs(__m512d x, __m512d y) {  // per quarter: [x0 + x1, y0 + y1]
    return _mm512_add_pd(_mm512_mask_unpacklo_pd(x, __mmask8(0xff), x, y),
                         _mm512_mask_unpackhi_pd(x, __mmask8(0xff), x, y));
  }
  static __m512d quarters(__m512d x, __m512d y) {
    return _mm512_add_pd(_mm512_mask_shuffle_f64x2(x, __mmask8(0xff), x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_mask_shuffle_f64x2(x, __mmask8(0xff), x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  static __m512d all(__m512d* v) {
    __m512d t[4];
    for (int i = 0; i < 4; ++i) t[i] = pairs(v[2 * i], v[2 * i + 1]);  // quarter q: edges 2i, 2i+1
    return quarters(quarters(t[0], t[1]), quarters(t[2], t[3]));
  }
  static __m512d load_part(const double* p, uint32_t mask) { return _mm512_maskz_loadu_pd(__mmask8(mask), p); }
  static void store_part(double* p, __m512d v, uint32_t mask) { _mm512_mask_storeu_pd(p, __mmask8(mask), v); }
};
#else
// AVX2 masks: lane l of the mask vector is all ones when bit l of mask is set
inline __m256i lane_mask32(uint32_t mask) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i m = _mm256_and_si256(_mm256_set1_epi32(int(mask)), bit);
  return _mm256_cmpeq_epi32(m, bit);
}
inline __m256i lane_mask64(uint32_t mask) {
  const __m256i bit = _mm256_setr_epi64x(1, 2, 4, 8);
  const __m256i m = _mm256_and_si256(_mm256_set1_epi64x(int64_t(mask)), bit);
  return _mm256_cmpeq_epi64(m, bit);
}
template <>
struct Fold<float> {
  static __m256 pairs(__m256 x, __m256 y) {  // per half: [x0 + x1, x2 + x3, y0 + y1, y2 + y3]
    return _mm256_add_ps(_mm256_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm256_shuffle_ps(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  static __m256 halves(__m256 x, __m256 y) {  // [x.h0 + x.h1, y.h0 + y.h1]
    return _mm256_add_ps(_mm256_permute2f128_ps(x, y, 0x20), _mm256_permute2f128_ps(x, y, 0x31));
  }
  static __m256 all(__m256* v) {
    __m256 t[4];
    for (int i = 0; i < 4; ++i) t[i] = pairs(v[2 * i], v[2 * i + 1]);
    return halves(pairs(t[0], t[1]), pairs(t[2], t[3]));  // half h of pairs(t0, t1): edges 0..3
  }
  static __m256 load_part(const float* p, uint32_t mask) { return _mm256_maskload_ps(p, lane_mask32(mask)); }
  static void store_part(float* p, __m256 v, uint32_t mask) { _mm256_maskstore_ps(p, lane_mask32(mask), v); }
};
template <>
struct Fold<double> {
  static __m256d pairs(__m256d x, __m256d y) {  // per half: [x0 + x1, y0 + y1]
    return _mm256_add_pd(_mm256_unpacklo_pd(x, y), _mm256_unpackhi_pd(x, y));
  }
  static __m256d halves(__m256d x, __m256d y) {
    return _mm256_add_pd(_mm256_permute2f128_pd(x, y, 0x20), _mm256_permute2f128_pd(x, y, 0x31));
  }
  static __m256d all(__m256d* v) { return halves(pairs(v[0], v[1]), pairs(v[2], v[3])); }
  static __m256d load_part(const double* p, uint32_t mask) { return _mm256_maskload_pd(p, lane_mask64(mask)); }
  static void store_part(double* p, __m256d v, uint32_t mask) { _mm256_maskstore_pd(p, lane_mask64(mask), v); }
};
#endif

// One slot's accumulator: lane l = Σ_{d ≡ l (mod W), d < D} pa[d] · pb[d], in the order of d. NC > 0:
// D = NC·W exactly, the chunks unrolled (the same arithmetic as the loop).
template <class T, int NC>
inline typename V<T>::R slot_dot(const T* pa, const T* pb, int64_t D, uint32_t tail_mask) {
  typename V<T>::R acc = V<T>::zero();
  constexpr int64_t W = V<T>::W;
  if constexpr (NC > 0) {
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) acc = V<T>::fma(V<T>::load(pa + c * W), V<T>::load(pb + c * W), acc);
  } else {
    int64_t d = 0;
    for (; d + W <= D; d += W) acc = V<T>::fma(V<T>::load(pa + d), V<T>::load(pb + d), acc);
    if (d < D) acc = V<T>::fma(Fold<T>::load_part(pa + d, tail_mask), Fold<T>::load_part(pb + d, tail_mask), acc);
  }
  return acc;
}

// The W dot products of one block (one head: offset is h·D), lane j of the result for slot j. The
// slots run one after the other, each over all its columns, so only two pointers are live at a
// time; the out-of-order core overlaps the slots' independent loads and chains.
template <class T, int NC>
inline typename V<T>::R block_dots(const T* const* pa, const T* const* pb, int64_t offset, int64_t D,
                                   uint32_t tail_mask) {
  typename V<T>::R acc[V<T>::W];
#pragma GCC unroll 16
  for (int j = 0; j < int(V<T>::W); ++j) acc[j] = slot_dot<T, NC>(pa[j] + offset, pb[j] + offset, D, tail_mask);
  return Fold<T>::all(acc);
}

template <class T, int NC>
void sddmm_edges(int64_t r0, int64_t r1, int64_t heads, int64_t D, const int64_t* row_ptr, const int64_t* col,
                 const T* a, const T* b, T* out) {
  constexpr int W = int(V<T>::W);
  const int64_t F = heads * D;
  const int64_t k_end = row_ptr[r1];
  const uint32_t tail_mask = uint32_t((1u << (D % W)) - 1u);
  const int64_t pf_bytes = F * int64_t(sizeof(T));
  int64_t r = r0;
  while (r < r1 && row_ptr[r + 1] <= row_ptr[r0]) ++r;  // the first row with an edge
  int64_t r_end = r < r1 ? row_ptr[r + 1] : k_end;
  const T* pa[W];
  const T* pb[W];
  alignas(64) T tmp[W];
  for (int64_t k0 = row_ptr[r0]; k0 < k_end; k0 += W) {
    const int n = int(std::min<int64_t>(W, k_end - k0));
    // the next block's b rows: into L1 when short (they are used within the next few hundred
    // cycles), into L2 when long (16 rows of 1 KiB would crowd L1)
    const int64_t pf_end = std::min<int64_t>(k0 + 2 * W, k_end);
    if (pf_bytes <= Traits::kL1PrefetchBytes) {
      for (int64_t k = k0 + W; k < pf_end; ++k) {
        const char* c = reinterpret_cast<const char*>(b + col[k] * F);
        for (int64_t off = 0; off < pf_bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
      }
    } else {
      for (int64_t k = k0 + W; k < pf_end; ++k) prefetch_span(b + col[k] * F, pf_bytes);
    }
    if (heads == 1 && n == W) {  // a full block of one head: each slot's rows found as it runs
      typename V<T>::R acc[W];
#pragma GCC unroll 16
      for (int j = 0; j < W; ++j) {
        const int64_t k = k0 + j;
        while (k >= r_end) r_end = row_ptr[++r + 1];
        acc[j] = slot_dot<T, NC>(a + r * F, b + col[k] * F, D, tail_mask);
      }
      V<T>::store(out + k0, Fold<T>::all(acc));
      continue;
    }
    for (int j = 0; j < n; ++j) {
      const int64_t k = k0 + j;
      while (k >= r_end) r_end = row_ptr[++r + 1];
      pa[j] = a + r * F;
      pb[j] = b + col[k] * F;
    }
    for (int j = n; j < W; ++j) {  // empty slots: the last edge again, not stored
      pa[j] = pa[n - 1];
      pb[j] = pb[n - 1];
    }
    for (int64_t h = 0; h < heads; ++h) {
      const typename V<T>::R e = block_dots<T, NC>(pa, pb, h * D, D, tail_mask);
      if (heads == 1) {
        if (n == W)
          V<T>::store(out + k0, e);
        else
          Fold<T>::store_part(out + k0, e, uint32_t((1u << n) - 1u));
      } else {
        V<T>::store(tmp, e);
        for (int j = 0; j < n; ++j) out[(k0 + j) * heads + h] = tmp[j];
      }
    }
  }
}

template <class T>
void sddmm_t(int64_t rows, int64_t heads, int64_t D, const int64_t* row_ptr, const int64_t* col, const T* a, const T* b,
             T* out) {
  if (D <= 0) {  // empty sums
    std::fill(out, out + row_ptr[rows] * heads, T(0));
    return;
  }
  for_each_part<Traits::kPartsPerThread>(row_ptr, rows, heads * D, [&](int64_t r0, int64_t r1) {
    if (r0 >= r1) return;
    constexpr int64_t W = V<T>::W;  // widths of 1, 2 and 4 whole vectors unrolled
    if (D == W)
      sddmm_edges<T, 1>(r0, r1, heads, D, row_ptr, col, a, b, out);
    else if (D == 2 * W)
      sddmm_edges<T, 2>(r0, r1, heads, D, row_ptr, col, a, b, out);
    else if (D == 4 * W)
      sddmm_edges<T, 4>(r0, r1, heads, D, row_ptr, col, a, b, out);
    else
      sddmm_edges<T, 0>(r0, r1, heads, D, row_ptr, col, a, b, out);
  });
}

}  // namespace

int graph_spmm_split(int dtype, int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t width,
                     const int64_t* row_ptr, const int64_t* col, const void* weight, const int64_t* weight_index,
                     const void* x, void* out, int64_t* arg, void* ws, int64_t ws_bytes, void*) {
  if (reduce < 0 || reduce >= MK_GRAPH_REDUCE_COUNT) return KERNEL_UNSUPPORTED;
  if (dtype == MK_F32)
    spmm_t(reduce, rows, nnz, heads, width, row_ptr, col, static_cast<const float*>(weight), weight_index,
           static_cast<const float*>(x), static_cast<float*>(out), arg, ws, ws_bytes);
  else if (dtype == MK_F64)
    spmm_t(reduce, rows, nnz, heads, width, row_ptr, col, static_cast<const double*>(weight), weight_index,
           static_cast<const double*>(x), static_cast<double*>(out), arg, ws, ws_bytes);
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

int64_t spmm_workspace_bytes(int dtype, int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t width,
                             bool indexed) {
  Carve c;
  int64_t cap = 0;
  if (dtype == MK_F32)
    gather_layout<float>(c, reduce, rows, nnz, heads, width, indexed, &cap);
  else if (dtype == MK_F64)
    gather_layout<double>(c, reduce, rows, nnz, heads, width, indexed, &cap);
  return c.used();
}

int graph_sddmm(int dtype, int64_t rows, int64_t, int64_t heads, int64_t width, const int64_t* row_ptr,
                const int64_t* col, const void* a, const void* b, void* out, void*) {
  if (dtype == MK_F32)
    sddmm_t(rows, heads, width, row_ptr, col, static_cast<const float*>(a), static_cast<const float*>(b),
            static_cast<float*>(out));
  else if (dtype == MK_F64)
    sddmm_t(rows, heads, width, row_ptr, col, static_cast<const double*>(a), static_cast<const double*>(b),
            static_cast<double*>(out));
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch and the structure check (in the AVX2 build only) --------------------------------
namespace avx512 {
int graph_spmm_split(int, int, int64_t, int64_t, int64_t, int64_t, const int64_t*, const int64_t*, const void*,
                     const int64_t*, const void*, void*, int64_t*, void*, int64_t, void*);
int graph_sddmm(int, int64_t, int64_t, int64_t, int64_t, const int64_t*, const int64_t*, const void*, const void*,
                void*, void*);
}  // namespace avx512

// Without scratch: indexed weights are read through the index (bitwise the gathered result).
int graph_spmm(int dtype, int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t width, const int64_t* row_ptr,
               const int64_t* col, const void* weight, const int64_t* weight_index, const void* x, void* out,
               int64_t* arg, void* stream) {
  return graph_spmm_split(dtype, reduce, rows, nnz, heads, width, row_ptr, col, weight, weight_index, x, out, arg,
                          nullptr, 0, stream);
}

int graph_sddmm(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, const int64_t* row_ptr,
                const int64_t* col, const void* a, const void* b, void* out, void* stream) {
  if (isa_level() >= 3) return avx512::graph_sddmm(dtype, rows, nnz, heads, width, row_ptr, col, a, b, out, stream);
  return avx2::graph_sddmm(dtype, rows, nnz, heads, width, row_ptr, col, a, b, out, stream);
}

// The CPU splits no row across threads (a hub row's segments are summed in order by one thread);
// its scratch is the gather buffer of indexed weights (sum and mean), per thread (gather_layout).
int64_t graph_spmm_workspace(int dtype, int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t width,
                             int indexed) {
  return avx2::spmm_workspace_bytes(dtype, reduce, rows, nnz, heads, width, indexed != 0);
}

int graph_spmm_split(int dtype, int reduce, int64_t rows, int64_t nnz, int64_t heads, int64_t width,
                     const int64_t* row_ptr, const int64_t* col, const void* weight, const int64_t* weight_index,
                     const void* x, void* out, int64_t* arg, void* ws, int64_t ws_bytes, void* stream) {
  if (isa_level() >= 3)
    return avx512::graph_spmm_split(dtype, reduce, rows, nnz, heads, width, row_ptr, col, weight, weight_index, x, out,
                                    arg, ws, ws_bytes, stream);
  return avx2::graph_spmm_split(dtype, reduce, rows, nnz, heads, width, row_ptr, col, weight, weight_index, x, out, arg,
                                ws, ws_bytes, stream);
}

int graph_check(int64_t rows, int64_t cols, int64_t nnz, const int64_t* row_ptr, const int64_t* col, int64_t* bad,
                void*) {
  int64_t bad_ptr = (row_ptr[0] != 0) + (row_ptr[rows] != nnz);
  int64_t bad_col = 0;
  // branches, not if() clauses: a small call must not enter libgomp (mk/cpu_parallel.h)
  if (parallel_worth(rows)) {
#pragma omp parallel for reduction(+ : bad_ptr) schedule(static)
    for (int64_t r = 0; r < rows; ++r) bad_ptr += row_ptr[r + 1] < row_ptr[r] ? 1 : 0;
  } else {
    for (int64_t r = 0; r < rows; ++r) bad_ptr += row_ptr[r + 1] < row_ptr[r] ? 1 : 0;
  }
  if (parallel_worth(nnz)) {
#pragma omp parallel for reduction(+ : bad_col) schedule(static)
    for (int64_t k = 0; k < nnz; ++k) bad_col += (col[k] < 0 || col[k] >= cols) ? 1 : 0;
  } else {
    for (int64_t k = 0; k < nnz; ++k) bad_col += (col[k] < 0 || col[k] >= cols) ? 1 : 0;
  }
  bad[0] = bad_ptr;
  bad[1] = bad_col;
  return 0;
}
#endif

}  // namespace cpu
}  // namespace mk
