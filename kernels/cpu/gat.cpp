// Edge softmax and the fused GAT aggregation on the CPU (MK_MULTI_ISA: compiled for AVX2 and for
// AVX-512; the AVX2 build also holds the dispatchers). Shapes: mk/kernels.inc and the graph section
// of metakernels.h. A graph row r is a destination node, its non-zeros k its in-edges (CSR order).
//
//   edge softmax:  m[r,h] = max_k s[k,h],  l[r,h] = Σ_k exp(s[k,h] - m[r,h]),
//                  y[k,h] = exp(s[k,h] - m[r,h]) / l[r,h],   lse[r,h] = m[r,h] + log l[r,h]
//                  (with lse given: y[k,h] = exp(s[k,h] - lse[r,h]), one pass)
//   GAT:           e[k,h] = leaky(s_src[col k, h] + s_dst[r, h]),  leaky(z) = z > 0 ? z : slope·z
//                  out[r,h,:] = Σ_k softmax_k(e[·,h]) · x[col k, h, :],  lse[r,h] as above
//
// The GAT pass reads every source feature row once: a first sweep over the row's scalars finds the
// row max (scores only: 2 loads per edge and head, e kept in a per-thread row buffer), the second
// accumulates exp(e - m)·x[col] and the sum of the exponentials, and the row is divided by the sum
// at the end. That is the online
// softmax of flash attention without its rescaling (the scalars are cheap to read twice, and a
// fixed max keeps every term ≤ 1), and nothing of size E×H is written.
//
// Determinism: a light row (at most kGraphSegment non-zeros, mk/graph_segment.h) is reduced by one
// thread in CSR order (max: order does not matter; sums: from 0 by std::fma / + in CSR order);
// threads split the rows into parts of equal non-zeros (the partition of mk/cpu_graph_parts.h). A
// hub row (longer) is cut into segments of kGraphSegment non-zeros whose partial results any thread
// may compute, then combined in segment order by one (the hub split below: softmax statistics by
// the online rescaling of softmax_merge, plain sums left to right), so a 10^5-edge row no longer
// bounds the speed-up. Bitwise the same for every thread count and run. The CUDA twin
// (kernels/cuda/gat.cu) cuts the same segments and runs the same arithmetic in the same order per
// element; only its exp/log differ from the host's by rounding.
//
// Rows without non-zeros: GAT writes 0 and lse = -inf; edge softmax writes no y (there is none)
// and lse = -inf. A row whose scores are all -inf: y = 0, out = 0, lse = -inf. NaN propagates.
#include <omp.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

#include "mk/cpu_graph_parts.h"
#include "mk/cpu_parallel.h"
#include "mk/cpu_scratch.h"
#include "mk/graph_segment.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"

namespace mk {
namespace cpu {

struct GatTraits {
  static constexpr int64_t kPartsPerThread = 8;  // dynamic parts per thread (load balance)
  static constexpr int64_t kPrefetch = 4;        // non-zeros ahead whose feature row is prefetched
  // the GAT backward's per-thread row buffer (α, ga, leaky' per non-zero and head, kept between
  // the row_dot and gs_dst sweeps): rows up to this many non-zeros; longer rows recompute them
  static constexpr int64_t kBufferedNonZeros = 32 * kGraphSegment;
  static_assert(kPartsPerThread >= 1 && kPrefetch >= 1, "positive tuning knobs");
  static_assert(kBufferedNonZeros >= kGraphSegment, "a segment fits the row buffer");
};

namespace MK_ISA_NS {
namespace {

using Traits = GatTraits;

template <class T>
inline T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}

// max that keeps a NaN once seen
template <class T>
inline T nan_max(T m, T v) {
  return (v > m || v != v) ? v : m;
}

// the product as an fma with 0: no contraction with the subtraction that follows can make the CPU
// and CUDA (or emulator) builds round differently
template <class T>
inline T leaky(T z, T slope) {
  return z > T(0) ? z : std::fma(slope, z, T(0));
}

// ---- the split of hub rows (issue 15; mk/graph_segment.h) ----------------------------------------
// A row of more than S = kGraphSegment non-zeros (a hub row) is cut into segments of S non-zeros
// counted from its start. Each segment's partial result (softmax: its max, its sum of exponentials
// and its weighted sum; plain sums: its sum) is computed from 0 in CSR order into a scratch slot
// of its own; then the row's slots are combined in segment order (sums: left to right; softmax:
// the online rescaling of softmax_merge). Light rows (at most S non-zeros) are one segment: their
// code and their bits are as before. The CUDA twin cuts and combines the same segments in the
// same order.
//
// Who computes a segment changes nothing, so the split decides only where the work goes: a hub
// row holding more non-zeros than a part of the row partition (a row that would bound the
// speed-up) is "split": its segments go to whichever threads are free, after the parts; its slots
// are combined by one thread. A smaller hub row stays in its part, its segments computed and
// combined in turn by one thread while they are in cache. Bitwise the same for every thread count.
//
// The plan and every buffer live in the caller's workspace (mk/cpu_scratch.h; graph_gat_workspace
// sizes it): count_hubs finds the split rows' number and segments and the longest row not split
// (which sizes the per-thread row buffers), carve_plan lays out the arrays, fill_hubs fills them.
struct HubPlan {
  int64_t parts = 1;                // parts of the row partition (1: one thread, nothing split)
  int64_t split_above = INT64_MAX;  // rows with more non-zeros are split across the threads
  int64_t hubs = 0;                 // split rows
  int64_t segs = 0;                 // their segments
  int64_t widest = 0;               // the most non-zeros of a row not split
  int64_t* row = nullptr;           // [hubs] the split rows, in order
  int64_t* first = nullptr;         // [hubs + 1] first[i]: split row i's first segment; first[hubs] = segs
  int64_t* owner = nullptr;         // [segs] owner[s]: the split row (an index into row) of segment s
  int64_t segments() const { return segs; }
  // the slots of per-thread buffers: one per thread of the parallel region, or 1
  int64_t threads() const { return parts > 1 ? int64_t(omp_get_max_threads()) : 1; }
};

inline int64_t segments_of(int64_t n) { return (n + kGraphSegment - 1) / kGraphSegment; }

// Whether the calls over [0, rows) of this work run on several threads, and in how many parts.
inline int64_t parts_of(const int64_t* ptr, int64_t rows, int64_t columns) {
  const int64_t work = (ptr[rows] + rows) * std::max<int64_t>(columns, 1);
  if (rows < 1 || !parallel_worth(work)) return 1;
  return std::min<int64_t>(rows, int64_t(omp_get_max_threads()) * GatTraits::kPartsPerThread);
}

// The split rows of [0, rows): hub rows longer than a part's share of the non-zeros (none on one
// thread, where nothing is shared); their count and segments, and the longest other row.
inline void count_hubs(const int64_t* ptr, int64_t rows, int64_t columns, HubPlan& p) {
  p.parts = parts_of(ptr, rows, columns);
  p.split_above = p.parts <= 1 ? INT64_MAX : std::max<int64_t>(kGraphSegment, (ptr[rows] + rows) / p.parts);
  p.hubs = p.segs = p.widest = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = ptr[r + 1] - ptr[r];
    if (n <= p.split_above) {
      p.widest = std::max(p.widest, n);
      continue;
    }
    ++p.hubs;
    p.segs += segments_of(n);
  }
}

inline void carve_plan(Carve& c, HubPlan& p) {
  p.row = c.take<int64_t>(p.hubs);
  p.first = c.take<int64_t>(p.hubs + 1);
  p.owner = c.take<int64_t>(p.segs);
}

// row, first and owner (count_hubs and carve_plan first)
inline void fill_hubs(const int64_t* ptr, int64_t rows, HubPlan& p) {
  p.first[0] = 0;
  if (p.hubs == 0) return;
  int64_t i = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = ptr[r + 1] - ptr[r];
    if (n <= p.split_above) continue;
    p.row[i] = r;
    p.first[i + 1] = p.first[i] + segments_of(n);
    std::fill(p.owner + p.first[i], p.owner + p.first[i + 1], i);
    ++i;
  }
}

// Segment s of the plan: the non-zeros [*sb, *se) of row *r, which ends at *e.
inline void segment_of(const HubPlan& p, const int64_t* ptr, int64_t s, int64_t* r, int64_t* sb, int64_t* se,
                       int64_t* e) {
  const int64_t i = p.owner[s];
  *r = p.row[i];
  *e = ptr[*r + 1];
  *sb = ptr[*r] + (s - p.first[i]) * kGraphSegment;
  *se = std::min(*sb + kGraphSegment, *e);
}

// light(r0, r1) over the rows in parts of equal work (the body skips the split rows and runs the
// other hub rows whole), then seg(s) for every segment of the split rows, then fold(i) for every
// split row, then (with `after`) after(s) for every segment again; each call writes outputs or
// slots of its own, so nothing depends on which thread runs it. Threads take the parts and then
// the segments dynamically (no barrier between them).
template <class Light, class Seg, class Fold, class After>
void run_split(const int64_t* ptr, int64_t rows, const HubPlan& plan, Light light, Seg seg, Fold fold, bool has_after,
               After after) {
  const int64_t segs = plan.segs, hubs = plan.hubs;
  const int64_t parts = plan.parts;
  if (parts <= 1) {  // one thread: no split rows
    light(int64_t(0), rows);
    return;
  }
  // segments handed out in runs (a thread streams through consecutive non-zeros: the hardware
  // prefetcher keeps up), kPartsPerThread runs per thread
  const int64_t run = std::max<int64_t>(1, segs / (int64_t(omp_get_max_threads()) * Traits::kPartsPerThread));
#pragma omp parallel
  {
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t p = 0; p < parts; ++p) light(part_start(ptr, rows, p, parts), part_start(ptr, rows, p + 1, parts));
    if (hubs > 0) {
#pragma omp for schedule(dynamic, run)
      for (int64_t s = 0; s < segs; ++s) seg(s);
#pragma omp for schedule(dynamic, 1)
      for (int64_t i = 0; i < hubs; ++i) fold(i);
      if (has_after) {
#pragma omp for schedule(dynamic, run)
        for (int64_t s = 0; s < segs; ++s) after(s);
      }
    }
  }
}

template <class Light, class Seg, class Fold>
void run_split(const int64_t* ptr, int64_t rows, const HubPlan& plan, Light light, Seg seg, Fold fold) {
  run_split(ptr, rows, plan, light, seg, fold, false, [](int64_t) {});
}

// The softmax state of the segments so far, per head h: M[h] (the max, 0 when all scores were
// -inf), L[h] = Σ exp(e - M[h]) and A[h·D + d] = Σ exp(e - M[h]) x[d] (A may be null: D unused),
// combined with the next segment's (m, l, a): both rescaled to the larger max, by explicit fma
// (the CUDA twin's form). A segment whose sum is 0 (its scores all -inf) adds nothing; one after
// such segments only is taken as it is. One of the two factors is exp(0) = 1, exactly.
template <class T>
void softmax_merge(int64_t H, int64_t D, T* M, T* L, T* A, const T* m, const T* l, const T* a) {
  for (int64_t h = 0; h < H; ++h) {
    if (l[h] == T(0)) continue;
    if (L[h] == T(0)) {
      M[h] = m[h];
      L[h] = l[h];
      if (A) std::copy(a + h * D, a + (h + 1) * D, A + h * D);
      continue;
    }
    const T mx = nan_max(M[h], m[h]);
    const T ca = std::exp(M[h] - mx), cb = std::exp(m[h] - mx);
    L[h] = std::fma(l[h], cb, std::fma(L[h], ca, T(0)));
    M[h] = mx;
    if (!A) continue;
    T* Ah = A + h * D;
    const T* ah = a + h * D;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) Ah[d] = std::fma(ah[d], cb, std::fma(Ah[d], ca, T(0)));
  }
}

// ---- edge softmax --------------------------------------------------------------------------------
// One segment [sb, se) of a row, head h: *m = its max (0 when all are -inf), y = exp(s - *m) (the
// light rows' p), returns Σ exp(s - *m).
template <class T>
inline T softmax_segment(int64_t sb, int64_t se, int64_t H, int64_t h, const T* s, T* m, T* y) {
  T mx = neg_inf<T>();
  for (int64_t k = sb; k < se; ++k) mx = nan_max(mx, s[k * H + h]);
  *m = mx == neg_inf<T>() ? T(0) : mx;
  T sum = T(0);
  for (int64_t k = sb; k < se; ++k) {
    const T p = std::exp(s[k * H + h] - *m);
    y[k * H + h] = p;
    sum += p;
  }
  return sum;
}

// y over a hub row's segment [sb, se), head h, holding p = exp(s - m) (segment max m, sum l): the
// softmax of the row (max M, sum L); the CUDA twin's softmax_rescale_g
template <class T>
inline void softmax_rescale(int64_t sb, int64_t se, int64_t H, int64_t h, T m, T l, T M, T L, T* y) {
  if (l == T(0)) return;  // scores all -inf: p = 0
  const T c = std::exp(m - M);
  const bool some = L > T(0) || L != L;
  for (int64_t k = sb; k < se; ++k) {
    const T v = std::fma(y[k * H + h], c, T(0));
    y[k * H + h] = some ? v / L : v;
  }
}

// The edge softmax's scratch: the plan; the split rows' slots, per segment m, l [2H] then per row
// M, L [2H]; per thread, for a hub row taken whole, its segments' slots and its M, L.
template <class T>
struct SoftmaxScratch {
  HubPlan plan;
  T* part = nullptr;
  T* local = nullptr;  // slot t at local + t · stride
  int64_t stride = 0;
};

template <class T>
void softmax_layout(Carve& c, int64_t rows, int64_t H, const int64_t* row_ptr, SoftmaxScratch<T>& w) {
  count_hubs(row_ptr, rows, H, w.plan);
  carve_plan(c, w.plan);
  w.part = c.take<T>((w.plan.segs + w.plan.hubs) * 2 * H);
  const int64_t n = w.plan.widest > kGraphSegment ? (segments_of(w.plan.widest) + 1) * 2 * H : 0;
  w.stride = Carve::stride<T>(n);
  w.local = c.take_slots<T>(w.plan.threads(), n);
}

template <class T>
int edge_softmax_t(int64_t rows, int64_t H, const int64_t* row_ptr, const T* s, const T* lse_in, T* y, T* lse_out,
                   void* ws, int64_t ws_bytes) {
  constexpr int64_t S = kGraphSegment;
  if (rows <= 0) return 0;
  Carve c(ws, ws_bytes);
  SoftmaxScratch<T> w;
  softmax_layout(c, rows, H, row_ptr, w);
  if (!c.fits()) return KERNEL_UNSUPPORTED;
  HubPlan& plan = w.plan;
  fill_hubs(row_ptr, rows, plan);
  // hub rows, per segment: m [H], l [H] (and y = exp(s - m)); per row: M [H], L [H]. With lse_in
  // every element is exp(s - lse) alone: the segments write y directly.
  auto seg_at = [&](int64_t r, int64_t sb, int64_t se, T* p) {
    for (int64_t h = 0; h < H; ++h) {
      if (lse_in) {
        const T l = lse_in[r * H + h];
        for (int64_t k = sb; k < se; ++k) y[k * H + h] = l == neg_inf<T>() ? T(0) : std::exp(s[k * H + h] - l);
        continue;
      }
      p[H + h] = softmax_segment(sb, se, H, h, s, p + h, y);
    }
  };
  auto fold_at = [&](int64_t r, const T* p0, int64_t nseg, T* st) {
    std::copy(p0, p0 + 2 * H, st);
    for (int64_t j = 1; j < nseg; ++j) {
      const T* p = p0 + j * 2 * H;
      softmax_merge<T>(H, 0, st, st + H, nullptr, p, p + H, nullptr);
    }
    if (lse_out)
      for (int64_t h = 0; h < H; ++h) {
        const T l = st[H + h];
        lse_out[r * H + h] = l > T(0) || l != l ? st[h] + std::log(l) : neg_inf<T>();
      }
  };
  // the hub rows' y, segment by segment: the segment's p = exp(s - m) rescaled to the row's max M
  // (exp(m - M): exactly 1 in the segment holding the max) and divided by the row's sum L; a
  // segment of -inf scores keeps its zeros
  auto after_at = [&](int64_t sb, int64_t se, const T* p, const T* st) {
    for (int64_t h = 0; h < H; ++h) softmax_rescale(sb, se, H, h, p[h], p[H + h], st[h], st[H + h], y);
  };
  auto whole = [&](int64_t r, T* local) {
    const int64_t b = row_ptr[r], e = row_ptr[r + 1], nseg = segments_of(e - b);
    for (int64_t j = 0; j < nseg; ++j) seg_at(r, b + j * S, std::min(b + (j + 1) * S, e), local + j * 2 * H);
    if (lse_in) return;
    T* st = local + nseg * 2 * H;
    fold_at(r, local, nseg, st);
    for (int64_t j = 0; j < nseg; ++j) after_at(b + j * S, std::min(b + (j + 1) * S, e), local + j * 2 * H, st);
  };
  auto light = [&](int64_t r0, int64_t r1) {
    T* local = w.local + omp_get_thread_num() * w.stride;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = row_ptr[r], e = row_ptr[r + 1];
      if (e - b > plan.split_above) continue;
      if (e - b > S) {
        whole(r, local);
        continue;
      }
      for (int64_t h = 0; h < H; ++h) {
        if (lse_in) {
          const T l = lse_in[r * H + h];
          for (int64_t k = b; k < e; ++k) y[k * H + h] = l == neg_inf<T>() ? T(0) : std::exp(s[k * H + h] - l);
          continue;
        }
        T m = neg_inf<T>();
        for (int64_t k = b; k < e; ++k) m = nan_max(m, s[k * H + h]);
        const T m0 = m == neg_inf<T>() ? T(0) : m;
        T sum = T(0);
        for (int64_t k = b; k < e; ++k) {
          const T p = std::exp(s[k * H + h] - m0);
          y[k * H + h] = p;
          sum += p;
        }
        if (sum > T(0) || sum != sum)
          for (int64_t k = b; k < e; ++k) y[k * H + h] = y[k * H + h] / sum;
        if (lse_out) lse_out[r * H + h] = sum > T(0) || sum != sum ? m0 + std::log(sum) : neg_inf<T>();
      }
    }
  };
  // the split rows: slots per segment, then per row
  T* part = w.part;
  T* stat = part + plan.segs * 2 * H;
  auto seg = [&](int64_t si) {
    int64_t r, sb, se, e;
    segment_of(plan, row_ptr, si, &r, &sb, &se, &e);
    seg_at(r, sb, se, part + si * 2 * H);
  };
  auto fold = [&](int64_t i) {
    if (lse_in) return;
    fold_at(plan.row[i], part + plan.first[i] * 2 * H, plan.first[i + 1] - plan.first[i], stat + i * 2 * H);
  };
  auto after = [&](int64_t si) {
    int64_t r, sb, se, e;
    segment_of(plan, row_ptr, si, &r, &sb, &se, &e);
    after_at(sb, se, part + si * 2 * H, stat + plan.owner[si] * 2 * H);
  };
  run_split(row_ptr, rows, plan, light, seg, fold, !lse_in, after);
  return 0;
}

// ---- GAT -----------------------------------------------------------------------------------------
// One segment [sb, se) of row r (the whole row when it is light): m[h] = the segment's max score
// (0 when all are -inf), sum[h] = Σ exp(e - m[h]) and o[h·D + d] = Σ exp(e - m[h]) x[col, h, d],
// each from 0 in CSR order; pe: the row's end, for the prefetches. ev [(se - sb)·H]: the segment's
// scores.
template <class T>
void gat_segment(int64_t sb, int64_t se, int64_t pe, int64_t H, int64_t D, T slope, const int64_t* col, const T* x,
                 const T* s_src, const T* sd, T* m, T* sum, T* o, T* ev) {
  const int64_t F = H * D;
  // sweep 1: the max of every head (scalars only)
  std::fill(m, m + H, neg_inf<T>());
  for (int64_t k = sb; k < se; ++k) {
    const T* ss = s_src + col[k] * H;
    T* er = ev + (k - sb) * H;
    for (int64_t h = 0; h < H; ++h) {
      er[h] = leaky(ss[h] + sd[h], slope);
      m[h] = nan_max(m[h], er[h]);
    }
  }
  for (int64_t h = 0; h < H; ++h)
    if (m[h] == neg_inf<T>()) m[h] = T(0);
  // sweep 2: o = Σ exp(e - m) · x[col], sum = Σ exp(e - m), each from 0 in CSR order
  std::fill(o, o + F, T(0));
  std::fill(sum, sum + H, T(0));
  for (int64_t k = sb; k < se; ++k) {
    if (k + Traits::kPrefetch < pe) {
      const char* p = reinterpret_cast<const char*>(x + col[k + Traits::kPrefetch] * F);
      for (int64_t off = 0; off < F * int64_t(sizeof(T)); off += 64) __builtin_prefetch(p + off, 0, 1);
    }
    const T* er = ev + (k - sb) * H;
    const T* xr = x + col[k] * F;
    for (int64_t h = 0; h < H; ++h) {
      const T p = std::exp(er[h] - m[h]);
      sum[h] += p;
      T* oh = o + h * D;
      const T* xh = xr + h * D;
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) oh[d] = std::fma(p, xh[d], oh[d]);
    }
  }
}

// o /= sum per head (where some term counted), lse_row[h] = m + log sum (-inf where none did)
template <class T>
void gat_finish(int64_t H, int64_t D, const T* m, const T* sum, T* o, T* lse_row) {
  for (int64_t h = 0; h < H; ++h) {
    const T l = sum[h];
    const bool some = l > T(0) || l != l;
    T* oh = o + h * D;
    if (some) {
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) oh[d] = oh[d] / l;
    }
    if (lse_row) lse_row[h] = some ? m[h] + std::log(l) : neg_inf<T>();
  }
}

// The forward's scratch: the plan; the split rows' slots (per segment the weighted sum [F], m [H],
// sum [H]; then per row M, L [2H]); per thread m, sum [2H], the scores of a segment (ev: up to S
// non-zeros, or the longest light row) and, for a hub row taken whole, one segment's slot and its
// M, L.
template <class T>
struct GatScratch {
  HubPlan plan;
  T* part = nullptr;
  T* local = nullptr;  // slot t at local + t · stride: m [H], sum [H], ev [evn · H], seg [F + 2H], M, L [2H]
  int64_t stride = 0;
};

template <class T>
void gat_layout(Carve& c, int64_t rows, int64_t H, int64_t D, const int64_t* row_ptr, GatScratch<T>& w) {
  constexpr int64_t S = kGraphSegment;
  const int64_t F = H * D;
  count_hubs(row_ptr, rows, F + H, w.plan);
  carve_plan(c, w.plan);
  w.part = c.take<T>(w.plan.segs * (F + 2 * H) + w.plan.hubs * 2 * H);
  const int64_t evn = std::min(std::max(w.plan.widest, w.plan.hubs > 0 ? S : int64_t(0)), S);
  const int64_t n = 2 * H + evn * H + (w.plan.widest > S ? F + 4 * H : 0);
  w.stride = Carve::stride<T>(n);
  w.local = c.take_slots<T>(w.plan.threads(), n);
}

template <class T>
int gat_t(int64_t rows, int64_t H, int64_t D, T slope, const int64_t* row_ptr, const int64_t* col, const T* x,
          const T* s_src, const T* s_dst, T* out, T* lse, void* ws, int64_t ws_bytes) {
  constexpr int64_t S = kGraphSegment;
  const int64_t F = H * D;
  if (rows <= 0) return 0;
  Carve c(ws, ws_bytes);
  GatScratch<T> w;
  gat_layout(c, rows, H, D, row_ptr, w);
  if (!c.fits()) return KERNEL_UNSUPPORTED;
  HubPlan& plan = w.plan;
  fill_hubs(row_ptr, rows, plan);
  const int64_t stride = F + 2 * H;  // per hub segment: the weighted sum [F], m [H], sum [H]
  // the calling thread's slot: m, sum, ev, then (hub rows taken whole) a segment's slot and M, L
  const int64_t evn = std::min(std::max(plan.widest, plan.hubs > 0 ? S : int64_t(0)), S);
  auto slot = [&]() { return w.local + omp_get_thread_num() * w.stride; };
  auto seg_at = [&](int64_t r, int64_t sb, int64_t se, int64_t e, T* p, T* ev) {
    gat_segment(sb, se, e, H, D, slope, col, x, s_src, s_dst + r * H, p + F, p + F + H, p, ev);
  };
  // the row's slots combined in order into its output row (ml: M [H], L [H] of the caller's)
  auto fold_at = [&](int64_t r, const T* p0, int64_t nseg, T* ml) {
    T* o = out + r * F;
    std::copy(p0, p0 + F, o);
    std::copy(p0 + F, p0 + F + 2 * H, ml);
    for (int64_t j = 1; j < nseg; ++j) {
      const T* p = p0 + j * stride;
      softmax_merge(H, D, ml, ml + H, o, p + F, p + F + H, p);
    }
    gat_finish(H, D, ml, ml + H, o, lse ? lse + r * H : nullptr);
  };
  auto light = [&](int64_t r0, int64_t r1) {
    T* m = slot();
    T* sum = m + H;
    T* ev = sum + H;  // the row's scores e[k, h], kept from sweep 1 (no second gather of s_src)
    T* local = ev + evn * H;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = row_ptr[r], e = row_ptr[r + 1];
      if (e - b > plan.split_above) continue;
      if (e - b > S) {  // a hub row, whole: segment 0 into the output row, each next one merged as it
        // comes (fold_at's left fold, in cache)
        T* o = out + r * F;
        T* ml = local + stride;  // M [H], L [H]
        gat_segment(b, b + S, e, H, D, slope, col, x, s_src, s_dst + r * H, ml, ml + H, o, ev);
        for (int64_t sb = b + S; sb < e; sb += S) {
          T* p = local;
          seg_at(r, sb, std::min(sb + S, e), e, p, ev);
          softmax_merge(H, D, ml, ml + H, o, p + F, p + F + H, p);
        }
        gat_finish(H, D, ml, ml + H, o, lse ? lse + r * H : nullptr);
        continue;
      }
      T* o = out + r * F;
      gat_segment(b, e, e, H, D, slope, col, x, s_src, s_dst + r * H, m, sum, o, ev);
      gat_finish(H, D, m, sum, o, lse ? lse + r * H : nullptr);
    }
  };
  T* part = w.part;
  auto seg = [&](int64_t si) {
    int64_t r, sb, se, e;
    segment_of(plan, row_ptr, si, &r, &sb, &se, &e);
    seg_at(r, sb, se, e, part + si * stride, slot() + 2 * H);
  };
  auto fold = [&](int64_t i) {
    fold_at(plan.row[i], part + plan.first[i] * stride, plan.first[i + 1] - plan.first[i],
            part + plan.segs * stride + i * 2 * H);
  };
  run_split(row_ptr, rows, plan, light, seg, fold);
  return 0;
}

// ---- GAT backward ---------------------------------------------------------------------------------
// With α[k,h] = exp(leaky(z) - lse[r,h]) (0 when lse = -inf), z = s_src[col k, h] + s_dst[r, h],
// ga[k,h] = ⟨gout[r,h,:], x[col k,h,:]⟩ (gat_dot) and Dr[r,h] = Σ_k α ga (row_dot):
//   gs_dst[r,h] = Σ_{k in row r} α·w,   gs_src[j,h] = Σ_{k in column j} α·w,   w = leaky'(z)·(ga - Dr),
//   gx[j,h,:]   = Σ_{k in column j} α·gout[r,h,:].
// Pass 1 over the CSR rows (D and gs_dst; α, ga and leaky' of a row of at most kBufferedNonZeros
// non-zeros kept in a per-thread row buffer between the two sweeps, of a longer row recomputed
// segment by segment), pass 2 over the CSC columns (gx and gs_src, α and ga recomputed). Every sum from 0 in
// CSR or CSC order; a row (column) longer than S non-zeros as the left fold of its segments' sums,
// the segments shared by the threads (the hub split above; a hub row's D is folded before its
// gs_dst segments start). Nothing of size nnz × heads is written.
template <class T>
inline T gat_alpha(T ev, T l) {
  return l == neg_inf<T>() ? T(0) : std::exp(ev - l);
}

// ⟨a, b⟩ over n: 8 running sums (lane l takes elements ≡ l mod 8, by fma in order), then
// ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)); the CUDA twin's order.
template <class T>
inline T gat_dot(const T* a, const T* b, int64_t n) {
  T s[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  int64_t d = 0;
  for (; d + 8 <= n; d += 8) {
#pragma omp simd
    for (int l = 0; l < 8; ++l) s[l] = std::fma(a[d + l], b[d + l], s[l]);
  }
  for (int l = 0; d + l < n; ++l) s[l] = std::fma(a[d + l], b[d + l], s[l]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// n sums per segment, nseg segments' slots from p0 folded left to right into dst [n]
template <class T>
void fold_sums(const T* p0, int64_t nseg, int64_t n, T* dst) {
  std::copy(p0, p0 + n, dst);
  for (int64_t j = 1; j < nseg; ++j) {
    const T* p = p0 + j * n;
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) dst[c] = dst[c] + p[c];
  }
}

// The backward's scratch, one layout per pass (pass 2 reuses pass 1's bytes: the workspace is the
// larger of the two). Nothing in it grows with the non-zeros beyond one slot per segment of S:
// Pass 1 (when gs_src or gs_dst): the plan over the rows; the split rows' segment sums part
// [segs·H]; per thread dsum [H], the row buffer of α, ga, leaky' (buffer_rows() non-zeros: the
// longest row taken whole when gs_dst, at most kBufferedNonZeros, and at least one segment when
// rows are split; else at most S) and the segment sums of a hub row taken whole. Rows longer than
// the buffer (taken whole or split) recompute α, ga, leaky' in the gs_dst sweep, segment by
// segment, by the same expressions (the same bits as buffering them; the CUDA twin recomputes them
// always).
// Pass 2 (when gx or gs_src): the plan over the columns; the split columns' slots part
// [segs·(F + H)]; per thread acc [H] and the slots of a hub column taken whole.
template <class T>
struct GatBackwardScratch {
  HubPlan plan;
  T* part = nullptr;
  T* local = nullptr;  // slot t at local + t · stride
  int64_t stride = 0;
};

// pass 1's row buffer, in non-zeros (see above)
inline int64_t buffer_rows(const HubPlan& p, bool gs_dst) {
  constexpr int64_t S = kGraphSegment;
  if (!gs_dst) return std::min(p.widest, S);
  return std::min(std::max(p.widest, p.hubs > 0 ? S : int64_t(0)), GatTraits::kBufferedNonZeros);
}

template <class T>
void gat_backward_layout(Carve& c, int pass, int64_t rows, int64_t H, int64_t D, const int64_t* ptr, bool gs_dst,
                         GatBackwardScratch<T>& w) {
  constexpr int64_t S = kGraphSegment;
  const int64_t F = H * D;
  count_hubs(ptr, rows, F + H, w.plan);
  carve_plan(c, w.plan);
  const HubPlan& p = w.plan;
  const int64_t whole = p.widest > S ? segments_of(p.widest) : 0;  // segments of a hub row taken whole
  int64_t n = 0;
  if (pass == 1) {
    w.part = c.take<T>(p.segs * H);
    n = H + buffer_rows(p, gs_dst) * H * 3 + whole * H;
  } else {
    w.part = c.take<T>(p.segs * (F + H));
    n = H + whole * (F + H);
  }
  w.stride = Carve::stride<T>(n);
  w.local = c.take_slots<T>(p.threads(), n);
}

template <class T>
int gat_backward_t(int64_t rows, int64_t H, int64_t D, T slope, const int64_t* row_ptr, const int64_t* col,
                   const int64_t* col_ptr, const int64_t* csc_row, const T* x, const T* s_src, const T* s_dst,
                   const T* lse, const T* gout, T* gx, T* gs_src, T* gs_dst, T* row_dot, void* ws, int64_t ws_bytes) {
  constexpr int64_t S = kGraphSegment;
  const int64_t F = H * D;
  if (rows <= 0) return 0;
  const bool pass1 = gs_src || gs_dst, pass2 = gx || gs_src;
  GatBackwardScratch<T> w1, w2;
  {
    Carve c1(ws, ws_bytes), c2(ws, ws_bytes);  // both from the start of the workspace, one after the other
    if (pass1) gat_backward_layout(c1, 1, rows, H, D, row_ptr, gs_dst != nullptr, w1);
    if (pass2) gat_backward_layout(c2, 2, rows, H, D, col_ptr, gs_dst != nullptr, w2);
    if ((pass1 && !c1.fits()) || (pass2 && !c2.fits())) return KERNEL_UNSUPPORTED;
  }
  if (pass1) {
    // pass 1: destinations
    HubPlan& plan = w1.plan;
    fill_hubs(row_ptr, rows, plan);
    // a hub row's segment: α, ga and leaky' of its non-zeros into eb (when not null: S·H·3) and
    // Σ α ga into p [H]; after row_dot is folded, Σ α·leaky'·(ga - Dr) from eb: the light rows'
    // buffer, per segment
    auto seg_dot_at = [&](int64_t r, int64_t sb, int64_t se, int64_t e, T* p, T* eb) {
      const T* sd = s_dst + r * H;
      const T* lr = lse + r * H;
      const T* gr = gout + r * F;
      std::fill(p, p + H, T(0));
      for (int64_t k = sb; k < se; ++k) {
        if (k + Traits::kPrefetch < e) {
          const int64_t jp = col[k + Traits::kPrefetch];
          const char* c = reinterpret_cast<const char*>(x + jp * F);
          for (int64_t off = 0; off < F * int64_t(sizeof(T)); off += 64) __builtin_prefetch(c + off, 0, 1);
          __builtin_prefetch(s_src + jp * H, 0, 1);
        }
        const int64_t j = col[k];
        const T* ss = s_src + j * H;
        const T* xr = x + j * F;
        T* bk = eb ? eb + (k - sb) * H * 3 : nullptr;
        for (int64_t h = 0; h < H; ++h) {
          const T z = ss[h] + sd[h];
          const T a = gat_alpha(leaky(z, slope), lr[h]);
          const T ga = gat_dot(gr + h * D, xr + h * D, D);
          if (bk) {
            bk[3 * h] = a;
            bk[3 * h + 1] = ga;
            bk[3 * h + 2] = z > T(0) ? T(1) : slope;
          }
          p[h] = std::fma(a, ga, p[h]);
        }
      }
    };
    auto seg_gs_at = [&](int64_t r, int64_t sb, int64_t se, const T* eb, T* p) {
      for (int64_t h = 0; h < H; ++h) {
        const T dr = row_dot[r * H + h];
        T acc = T(0);
        for (int64_t k = sb; k < se; ++k) {
          const T* bk = eb + (k - sb) * H * 3 + 3 * h;
          acc = std::fma(bk[0], std::fma(bk[2], bk[1] - dr, T(0)), acc);
        }
        p[h] = acc;
      }
    };
    const int64_t buffered = buffer_rows(plan, gs_dst);  // non-zeros of the row buffer
    const int64_t bufn = buffered * H * 3;
    auto light = [&](int64_t r0, int64_t r1) {
      T* dsum = w1.local + omp_get_thread_num() * w1.stride;  // [H]
      T* buf = dsum + H;                                      // per non-zero and head: α, ga, leaky'
      T* local = buf + bufn;                                  // a hub row's segment sums
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = row_ptr[r], e = row_ptr[r + 1];
        if (e - b > plan.split_above) continue;
        if (e - b > S) {  // a hub row, whole: segment sums in turn, folded
          const int64_t nseg = segments_of(e - b);
          const bool keep = gs_dst && e - b <= buffered;  // else recomputed in the gs_dst sweep
          for (int64_t j = 0; j < nseg; ++j)
            seg_dot_at(r, b + j * S, std::min(b + (j + 1) * S, e), e, local + j * H,
                       keep ? buf + j * S * H * 3 : nullptr);
          fold_sums(local, nseg, H, row_dot + r * H);
          if (!gs_dst) continue;
          for (int64_t j = 0; j < nseg; ++j) {
            const int64_t sb = b + j * S, se = std::min(sb + S, e);
            T* eb = buf + (keep ? j * S * H * 3 : 0);
            if (!keep) seg_dot_at(r, sb, se, e, dsum, eb);  // α, ga, leaky' again (dsum: unused sums)
            seg_gs_at(r, sb, se, eb, local + j * H);
          }
          fold_sums(local, nseg, H, gs_dst + r * H);
          continue;
        }
        const T* sd = s_dst + r * H;
        const T* lr = lse + r * H;
        const T* gr = gout + r * F;
        std::fill(dsum, dsum + H, T(0));
        for (int64_t k = b; k < e; ++k) {
          if (k + Traits::kPrefetch < e) {  // the source's feature row and scores
            const int64_t jp = col[k + Traits::kPrefetch];
            const char* p = reinterpret_cast<const char*>(x + jp * F);
            for (int64_t off = 0; off < F * int64_t(sizeof(T)); off += 64) __builtin_prefetch(p + off, 0, 1);
            __builtin_prefetch(s_src + jp * H, 0, 1);
          }
          const int64_t j = col[k];
          const T* ss = s_src + j * H;
          const T* xr = x + j * F;
          T* bk = buf + (k - b) * H * 3;
          for (int64_t h = 0; h < H; ++h) {
            const T z = ss[h] + sd[h];
            const T a = gat_alpha(leaky(z, slope), lr[h]);
            const T ga = gat_dot(gr + h * D, xr + h * D, D);
            bk[3 * h] = a;
            bk[3 * h + 1] = ga;
            bk[3 * h + 2] = z > T(0) ? T(1) : slope;
            dsum[h] = std::fma(a, ga, dsum[h]);
          }
        }
        for (int64_t h = 0; h < H; ++h) row_dot[r * H + h] = dsum[h];
        if (!gs_dst) continue;
        for (int64_t h = 0; h < H; ++h) {
          const T dr = dsum[h];
          T acc = T(0);
          for (int64_t k = b; k < e; ++k) {
            const T* bk = buf + (k - b) * H * 3 + 3 * h;
            acc = std::fma(bk[0], std::fma(bk[2], bk[1] - dr, T(0)), acc);
          }
          gs_dst[r * H + h] = acc;
        }
      }
    };
    // the split rows' segments: Σ α ga, then (after the fold) α, ga, leaky' again into the
    // calling thread's row buffer and Σ α·leaky'·(ga - Dr)
    T* part = w1.part;
    auto seg_dot = [&](int64_t si) {
      int64_t r, sb, se, e;
      segment_of(plan, row_ptr, si, &r, &sb, &se, &e);
      seg_dot_at(r, sb, se, e, part + si * H, nullptr);
    };
    auto seg_gs = [&](int64_t si) {
      int64_t r, sb, se, e;
      segment_of(plan, row_ptr, si, &r, &sb, &se, &e);
      T* dsum = w1.local + omp_get_thread_num() * w1.stride;  // [H]: Σ α ga again (not used)
      T* buf = dsum + H;
      seg_dot_at(r, sb, se, e, dsum, buf);
      seg_gs_at(r, sb, se, buf, part + si * H);
    };
    auto fold_into = [&](T* dst) {
      return [&, dst](int64_t i) {
        fold_sums(part + plan.first[i] * H, plan.first[i + 1] - plan.first[i], H, dst + plan.row[i] * H);
      };
    };
    run_split(row_ptr, rows, plan, light, seg_dot, fold_into(row_dot));
    if (gs_dst && plan.hubs > 0)
      run_split(row_ptr, rows, plan, [](int64_t, int64_t) {}, seg_gs, fold_into(gs_dst));
  }
  if (!pass2) return 0;
  // pass 2: sources, over the CSC (column j's entries are the edges j -> csc_row[k])
  HubPlan& plan = w2.plan;
  fill_hubs(col_ptr, rows, plan);
  const int64_t stride = F + H;  // per hub segment: gx [F], gs_src [H]
  // Σ over the column's entries [b, e) (pe: the column's end, for the prefetches) into gxr [F]
  // (when gx) and acc [H] (when gs_src), from 0 in CSC order
  auto column_sums = [&](int64_t j, int64_t b, int64_t e, int64_t pe, T* gxr, T* acc) {
    const T* ss = s_src + j * H;
    const T* xr = x + j * F;
    if (gxr) std::fill(gxr, gxr + F, T(0));
    std::fill(acc, acc + H, T(0));
    for (int64_t k = b; k < e; ++k) {
      if (k + Traits::kPrefetch < pe) {  // the destination's gradient row and its scalars
        const int64_t ip = csc_row[k + Traits::kPrefetch];
        const char* p = reinterpret_cast<const char*>(gout + ip * F);
        for (int64_t off = 0; off < F * int64_t(sizeof(T)); off += 64) __builtin_prefetch(p + off, 0, 1);
        __builtin_prefetch(s_dst + ip * H, 0, 1);
        __builtin_prefetch(lse + ip * H, 0, 1);
        if (gs_src) __builtin_prefetch(row_dot + ip * H, 0, 1);
      }
      const int64_t i = csc_row[k];
      const T* sd = s_dst + i * H;
      const T* lr = lse + i * H;
      const T* gr = gout + i * F;
      for (int64_t h = 0; h < H; ++h) {
        const T z = ss[h] + sd[h];
        const T a = gat_alpha(leaky(z, slope), lr[h]);
        if (gxr) {
          T* gh = gxr + h * D;
          const T* gi = gr + h * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) gh[d] = std::fma(a, gi[d], gh[d]);
        }
        if (gs_src) {
          const T ga = gat_dot(gr + h * D, xr + h * D, D);
          const T lk = z > T(0) ? T(1) : slope;
          acc[h] = std::fma(a, std::fma(lk, ga - row_dot[i * H + h], T(0)), acc[h]);
        }
      }
    }
  };
  auto seg_at = [&](int64_t j, int64_t sb, int64_t se, int64_t e, T* p) {
    column_sums(j, sb, se, e, gx ? p : nullptr, p + F);
  };
  // the column's slots folded left to right into gx and gs_src
  auto fold_at = [&](int64_t j, const T* p0, int64_t nseg) {
    T* g = gx ? gx + j * F : nullptr;
    if (g) std::copy(p0, p0 + F, g);
    T* gs = gs_src ? gs_src + j * H : nullptr;
    if (gs) std::copy(p0 + F, p0 + F + H, gs);
    for (int64_t q = 1; q < nseg; ++q) {
      const T* p = p0 + q * stride;
      if (g) {
#pragma omp simd
        for (int64_t c = 0; c < F; ++c) g[c] = g[c] + p[c];
      }
      if (gs)
        for (int64_t h = 0; h < H; ++h) gs[h] = gs[h] + p[F + h];
    }
  };
  auto light = [&](int64_t c0, int64_t c1) {
    T* acc = w2.local + omp_get_thread_num() * w2.stride;  // [H]
    T* local = acc + H;                                    // a hub column's slots
    for (int64_t j = c0; j < c1; ++j) {
      const int64_t b = col_ptr[j], e = col_ptr[j + 1];
      if (e - b > plan.split_above) continue;
      if (e - b > S) {  // a hub column, whole: segment sums in turn, folded
        const int64_t nseg = segments_of(e - b);
        for (int64_t q = 0; q < nseg; ++q) seg_at(j, b + q * S, std::min(b + (q + 1) * S, e), e, local + q * stride);
        fold_at(j, local, nseg);
        continue;
      }
      column_sums(j, b, e, e, gx ? gx + j * F : nullptr, acc);
      if (gs_src)
        for (int64_t h = 0; h < H; ++h) gs_src[j * H + h] = acc[h];
    }
  };
  T* part = w2.part;
  auto seg = [&](int64_t si) {
    int64_t j, sb, se, e;
    segment_of(plan, col_ptr, si, &j, &sb, &se, &e);
    seg_at(j, sb, se, e, part + si * stride);
  };
  auto fold = [&](int64_t i) {
    fold_at(plan.row[i], part + plan.first[i] * stride, plan.first[i + 1] - plan.first[i]);
  };
  run_split(col_ptr, rows, plan, light, seg, fold);
  return 0;
}

}  // namespace

int graph_edge_softmax_split(int dtype, int64_t rows, int64_t, int64_t heads, const int64_t* row_ptr,
                             const void* scores, const void* lse_in, void* out, void* lse_out, void* ws,
                             int64_t ws_bytes, void*) {
  if (dtype == MK_F32)
    return edge_softmax_t(rows, heads, row_ptr, static_cast<const float*>(scores), static_cast<const float*>(lse_in),
                          static_cast<float*>(out), static_cast<float*>(lse_out), ws, ws_bytes);
  if (dtype == MK_F64)
    return edge_softmax_t(rows, heads, row_ptr, static_cast<const double*>(scores), static_cast<const double*>(lse_in),
                          static_cast<double*>(out), static_cast<double*>(lse_out), ws, ws_bytes);
  return KERNEL_UNSUPPORTED;
}

int graph_gat_split(int dtype, int64_t rows, int64_t, int64_t heads, int64_t width, double slope,
                    const int64_t* row_ptr, const int64_t* col, const void* x, const void* s_src, const void* s_dst,
                    void* out, void* lse, void* ws, int64_t ws_bytes, void*) {
  if (dtype == MK_F32)
    return gat_t(rows, heads, width, float(slope), row_ptr, col, static_cast<const float*>(x),
                 static_cast<const float*>(s_src), static_cast<const float*>(s_dst), static_cast<float*>(out),
                 static_cast<float*>(lse), ws, ws_bytes);
  if (dtype == MK_F64)
    return gat_t(rows, heads, width, slope, row_ptr, col, static_cast<const double*>(x),
                 static_cast<const double*>(s_src), static_cast<const double*>(s_dst), static_cast<double*>(out),
                 static_cast<double*>(lse), ws, ws_bytes);
  return KERNEL_UNSUPPORTED;
}

int graph_gat_backward_split(int dtype, int64_t rows, int64_t, int64_t heads, int64_t width, double slope,
                             const int64_t* row_ptr, const int64_t* col, const int64_t* col_ptr, const int64_t* csc_row,
                             const void* x, const void* s_src, const void* s_dst, const void* lse, const void* gout,
                             void* gx, void* gs_src, void* gs_dst, void* row_dot, void* ws, int64_t ws_bytes, void*) {
  if (dtype == MK_F32)
    return gat_backward_t(rows, heads, width, float(slope), row_ptr, col, col_ptr, csc_row,
                          static_cast<const float*>(x), static_cast<const float*>(s_src),
                          static_cast<const float*>(s_dst), static_cast<const float*>(lse),
                          static_cast<const float*>(gout), static_cast<float*>(gx), static_cast<float*>(gs_src),
                          static_cast<float*>(gs_dst), static_cast<float*>(row_dot), ws, ws_bytes);
  if (dtype == MK_F64)
    return gat_backward_t(rows, heads, width, slope, row_ptr, col, col_ptr, csc_row, static_cast<const double*>(x),
                          static_cast<const double*>(s_src), static_cast<const double*>(s_dst),
                          static_cast<const double*>(lse), static_cast<const double*>(gout), static_cast<double*>(gx),
                          static_cast<double*>(gs_src), static_cast<double*>(gs_dst), static_cast<double*>(row_dot), ws,
                          ws_bytes);
  return KERNEL_UNSUPPORTED;
}

namespace {
template <class T>
int64_t gat_workspace_t(int pass, int64_t rows, int64_t H, int64_t D, const int64_t* row_ptr, const int64_t* col_ptr) {
  if (rows <= 0) return 0;
  if (pass == kGatPassSoftmax) {
    Carve c;
    SoftmaxScratch<T> w;
    softmax_layout(c, rows, H, row_ptr, w);
    return c.used();
  }
  if (pass == kGatPassForward) {
    Carve c;
    GatScratch<T> w;
    gat_layout(c, rows, H, D, row_ptr, w);
    return c.used();
  }
  // the backward with every gradient asked for: a bound of the layout of any subset
  Carve c1, c2;
  GatBackwardScratch<T> w1, w2;
  gat_backward_layout(c1, 1, rows, H, D, row_ptr, true, w1);
  gat_backward_layout(c2, 2, rows, H, D, col_ptr, true, w2);
  return std::max(c1.used(), c2.used());
}
}  // namespace

int64_t gat_workspace_bytes(int dtype, int pass, int64_t rows, int64_t heads, int64_t width, const int64_t* row_ptr,
                            const int64_t* col_ptr) {
  if (pass == kGatPassBackward && !col_ptr) return 0;
  if (dtype == MK_F32) return gat_workspace_t<float>(pass, rows, heads, width, row_ptr, col_ptr);
  if (dtype == MK_F64) return gat_workspace_t<double>(pass, rows, heads, width, row_ptr, col_ptr);
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) -----------------------------------------------------------
namespace avx512 {
int graph_edge_softmax_split(int, int64_t, int64_t, int64_t, const int64_t*, const void*, const void*, void*, void*,
                             void*, int64_t, void*);
int graph_gat_split(int, int64_t, int64_t, int64_t, int64_t, double, const int64_t*, const int64_t*, const void*,
                    const void*, const void*, void*, void*, void*, int64_t, void*);
int graph_gat_backward_split(int, int64_t, int64_t, int64_t, int64_t, double, const int64_t*, const int64_t*,
                             const int64_t*, const int64_t*, const void*, const void*, const void*, const void*,
                             const void*, void*, void*, void*, void*, void*, int64_t, void*);
}  // namespace avx512

// The CPU's scratch: the hub plan, the split rows' slots and the per-thread row buffers of the
// kernels above (their *_layout), sized from row_ptr (and col_ptr for the backward).
int64_t graph_gat_workspace(int dtype, int pass, int64_t rows, int64_t, int64_t heads, int64_t width,
                            const int64_t* row_ptr, const int64_t* col_ptr) {
  return avx2::gat_workspace_bytes(dtype, pass, rows, heads, width, row_ptr, col_ptr);
}

int graph_edge_softmax_split(int dtype, int64_t rows, int64_t nnz, int64_t heads, const int64_t* row_ptr,
                             const void* scores, const void* lse_in, void* out, void* lse_out, void* ws,
                             int64_t ws_bytes, void* stream) {
  if (isa_level() >= 3)
    return avx512::graph_edge_softmax_split(dtype, rows, nnz, heads, row_ptr, scores, lse_in, out, lse_out, ws,
                                            ws_bytes, stream);
  return avx2::graph_edge_softmax_split(dtype, rows, nnz, heads, row_ptr, scores, lse_in, out, lse_out, ws, ws_bytes,
                                        stream);
}

int graph_gat_split(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope,
                    const int64_t* row_ptr, const int64_t* col, const void* x, const void* s_src, const void* s_dst,
                    void* out, void* lse, void* ws, int64_t ws_bytes, void* stream) {
  if (isa_level() >= 3)
    return avx512::graph_gat_split(dtype, rows, nnz, heads, width, slope, row_ptr, col, x, s_src, s_dst, out, lse, ws,
                                   ws_bytes, stream);
  return avx2::graph_gat_split(dtype, rows, nnz, heads, width, slope, row_ptr, col, x, s_src, s_dst, out, lse, ws,
                               ws_bytes, stream);
}

int graph_gat_backward_split(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope,
                             const int64_t* row_ptr, const int64_t* col, const int64_t* col_ptr, const int64_t* csc_row,
                             const void* x, const void* s_src, const void* s_dst, const void* lse, const void* gout,
                             void* gx, void* gs_src, void* gs_dst, void* row_dot, void* ws, int64_t ws_bytes,
                             void* stream) {
  if (isa_level() >= 3)
    return avx512::graph_gat_backward_split(dtype, rows, nnz, heads, width, slope, row_ptr, col, col_ptr, csc_row, x,
                                            s_src, s_dst, lse, gout, gx, gs_src, gs_dst, row_dot, ws, ws_bytes, stream);
  return avx2::graph_gat_backward_split(dtype, rows, nnz, heads, width, slope, row_ptr, col, col_ptr, csc_row, x, s_src,
                                        s_dst, lse, gout, gx, gs_src, gs_dst, row_dot, ws, ws_bytes, stream);
}

// Without a workspace the CPU kernels cannot run (KERNEL_UNSUPPORTED, nothing written; rows = 0
// excepted): callers take graph_gat_workspace's bytes and call the *_split forms.
int graph_edge_softmax(int dtype, int64_t rows, int64_t nnz, int64_t heads, const int64_t* row_ptr, const void* scores,
                       const void* lse_in, void* out, void* lse_out, void* stream) {
  return graph_edge_softmax_split(dtype, rows, nnz, heads, row_ptr, scores, lse_in, out, lse_out, nullptr, 0, stream);
}

int graph_gat(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope, const int64_t* row_ptr,
              const int64_t* col, const void* x, const void* s_src, const void* s_dst, void* out, void* lse,
              void* stream) {
  return graph_gat_split(dtype, rows, nnz, heads, width, slope, row_ptr, col, x, s_src, s_dst, out, lse, nullptr, 0,
                         stream);
}

int graph_gat_backward(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope,
                       const int64_t* row_ptr, const int64_t* col, const int64_t* col_ptr, const int64_t* csc_row,
                       const void* x, const void* s_src, const void* s_dst, const void* lse, const void* gout, void* gx,
                       void* gs_src, void* gs_dst, void* row_dot, void* stream) {
  return graph_gat_backward_split(dtype, rows, nnz, heads, width, slope, row_ptr, col, col_ptr, csc_row, x, s_src,
                                  s_dst, lse, gout, gx, gs_src, gs_dst, row_dot, nullptr, 0, stream);
}
#endif

}  // namespace cpu
}  // namespace mk
