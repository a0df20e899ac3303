// Softmax attention on CUDA, SIMT v2 (F32 / F64): the query pass of the backward of the backward,
// accumulators in registers. The derivation is in kernels/cpu/attention/backward_backward.cpp (the
// CPU twin) and backward_backward.cu (v1, whose D preprocess and stats pass run before this one).
//
// One block of 256 threads per tile of BQ = 64 (or 32) query rows of one (batch, head); threads
// form a TY x TX grid (TX = 8 along keys and columns, TY = 32 along rows) as in simt2.cu: thread
// (ty, tx) owns rows ty + TY·i and, for the whole key loop, the chunks tx + TX·j of q' (D) and dO'
// (Dv) of those rows in registers. Per key tile of BK = 32 keys:
//   dP = dO Vᵀ, T = dO gVᵀ (V, gV of this tile), S = scale Q Kᵀ, G = scale (gQ Kᵀ + Q gKᵀ)
//   (K, gK of this tile, in flight while dP and T run): register outer products on 16-byte loads;
//   element by element in registers, with D, C, E of the rows from the workspace:
//     P, dS = P ∘ (dP − D), ḡdP = P ∘ (G + gbias − C),
//     ḡS = P ∘ (T + (G + gbias)(dP − D) − C dP − E) (also the bias cotangent, written per tile)
//   P and ḡdP to shared: dO' += P gV + ḡdP V; then the next V, gV load (cp.async) while
//   ḡS and dS go to shared: q' += ḡS K + dS gK (scale once at the end); then the next K, gK load.
// Every output element has one owner thread: no atomics, deterministic.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "../copy_async.cuh"
#include "mk/attention_simt_choice.h"
#include "simt.cuh"
#include "simt2_dd.cuh"
#include "simt2_parts.cuh"

namespace mk {
namespace cuda {
namespace {

// Shared buffers (elements): Q, gQ, dO rows of the tile; K, gK, V, gV rows of a key tile; two
// score-shaped buffers (P / ḡS, ḡdP / dS). gQ, gK, gV take no room when absent.
struct Simt2DdQDims {
  int ldd, ldv, ldp;
  int64_t q, gq, dout, k, gk, v, gv, pa, pb, total;
};

Simt2DdQDims simt2_ddq_dims(int bq, int bk, int d, int dv, int esize, bool gq, bool gk, bool gv) {
  Simt2DdQDims z;
  z.ldd = simt2_ld(d, esize);
  z.ldv = simt2_ld(dv, esize);
  z.ldp = simt2_ld(bk, esize);
  z.q = 0;
  z.gq = z.q + int64_t(bq) * z.ldd;
  z.dout = z.gq + (gq ? int64_t(bq) * z.ldd : 0);
  z.k = z.dout + int64_t(bq) * z.ldv;
  z.gk = z.k + int64_t(bk) * z.ldd;
  z.v = z.gk + (gk ? int64_t(bk) * z.ldd : 0);
  z.gv = z.v + int64_t(bk) * z.ldv;
  z.pa = z.gv + (gv ? int64_t(bk) * z.ldv : 0);
  z.pb = z.pa + int64_t(bq) * z.ldp;
  z.total = z.pb + int64_t(bq) * z.ldp;
  return z;
}

// A tile of rows and, when the call has that tangent (has), the same rows of it, by cp.async
template <class T>
__device__ __forceinline__ void dd_rows_async(bool has, T* dst, T* gdst, int ld, const T* src, const T* gsrc,
                                              int64_t row0, int rows, int valid, int width) {
  simt2_rows_async(dst, ld, src, row0, rows, valid, width);
  if (has) simt2_rows_async(gdst, ld, gsrc, row0, rows, valid, width);
}

// The query and stats passes' first loads: Q (gQ), dO and the first V (gV) tile in one group, the
// first K (gK) tile in the next (so the first dO Vᵀ may start while K still arrives)
template <class T, int BQ, int BK>
__device__ __forceinline__ void dd_first_loads(const HeadView<T>& x, bool hq, bool hk, bool hv, int64_t r0, int R,
                                               int first, int d, int dv, int ldd, int ldv, T* qs, T* gqs, T* dos,
                                               T* ks, T* gks, T* vs, T* gvs) {
  dd_rows_async(hq, qs, gqs, ldd, x.q, x.gq, r0, BQ, R, d);
  simt2_rows_async(dos, ldv, x.dout, r0, BQ, R, dv);
  dd_rows_async(hv, vs, gvs, ldv, x.v, x.gv, 0, BK, first, dv);
  cp_async_commit();
  dd_rows_async(hk, ks, gks, ldd, x.k, x.gk, 0, BK, first, d);
  cp_async_commit();
}

// s = Q Kᵀ and g = gQ Kᵀ + Q gKᵀ (the terms the call has; g unset without either) of a tile
template <class T, int RPT, int KPT, int TX>
__device__ __forceinline__ void dd_query_scores(const T* qs, const T* gqs, const T* ks, const T* gks, int ldd, int d,
                                                int ty, int tx, bool hq, bool hk, T (&s)[RPT][KPT],
                                                T (&g)[RPT][KPT]) {
  simt2_scores<T, RPT, KPT, TX>(qs, ldd, ks, ldd, d, ty, tx, s);           // Q Kᵀ
  if (hq) simt2_scores<T, RPT, KPT, TX>(gqs, ldd, ks, ldd, d, ty, tx, g);  // gQ Kᵀ
  if (hk) {
    T g2[RPT][KPT];
    simt2_scores<T, RPT, KPT, TX>(qs, ldd, gks, ldd, d, ty, tx, g2);  // Q gKᵀ
#pragma unroll
    for (int i = 0; i < RPT; ++i)
#pragma unroll
      for (int j = 0; j < KPT; ++j) g[i][j] = hq ? g[i][j] + g2[i][j] : g2[i][j];
  }
}

template <class T, int BQ, int BK, int TX, int ND, int NV>
__global__ void __launch_bounds__(kSimt2Threads) simt2_dd_query_kernel(const AttentionParams p, const Simt2DdQDims z) {
  constexpr int TY = kSimt2Threads / TX, RPT = BQ / TY, KPT = BK / TX;
  static_assert(TX <= 32 && (TX & (TX - 1)) == 0 && BQ % TY == 0 && BK % TX == 0 && BK % 4 == 0, "tile grid");
  T* const sm = smem_base<T>();
  T *qs = sm + z.q, *gqs = sm + z.gq, *dos = sm + z.dout, *ks = sm + z.k, *gks = sm + z.gk;
  T *vs = sm + z.v, *gvs = sm + z.gv, *pa = sm + z.pa, *pb = sm + z.pb;
  const TileIndex ti = tile_index(p.heads, p.nq, BQ);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int d = int(p.d), dv = int(p.dv);
  const int tx = int(threadIdx.x) % TX, ty = int(threadIdx.x) / TX;
  const int64_t end = x.key_end(r0 + R - 1), full = x.key_end(r0);
  const int64_t rows = p.batch * p.heads * p.nq;
  const T* Dall = static_cast<const T*>(p.workspace);
  const T* Call = Dall + rows;
  const T* Eall = Dall + 2 * rows;
  T* gbias_out = p.cot_bias_full ? static_cast<T*>(p.cot_bias_full) + x.base * x.nk : nullptr;  // + i·Nk + j
  const bool want_q = p.cot_q != nullptr, want_do = p.cot_dout != nullptr;
  const bool hq = x.gq != nullptr, hk = x.gk != nullptr, hv = x.gv != nullptr;

  T aq[RPT][ND][4], ado[RPT][NV][4], lse[RPT], dd[RPT], cc[RPT], ee[RPT];
  simt2_zero(aq);
  simt2_zero(ado);
  int dcol[ND], vcol[NV];
  simt2_columns<ND, TX>(d, tx, dcol);
  simt2_columns<NV, TX>(dv, tx, vcol);
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = ty + TY * i;
    const int64_t row = x.base + r0 + r;
    lse[i] = r < R ? x.lse[r0 + r] : neg_inf<T>();
    dd[i] = r < R ? Dall[row] : T(0);
    cc[i] = r < R ? Call[row] : T(0);
    ee[i] = r < R ? Eall[row] : T(0);
  }
  if (end > 0) {
    const int first = int(std::min<int64_t>(BK, end));
    dd_first_loads<T, BQ, BK>(x, hq, hk, hv, r0, R, first, d, dv, z.ldd, z.ldv, qs, gqs, dos, ks, gks, vs, gvs);
  }
  for (int64_t c0 = 0; c0 < end; c0 += BK) {
    const bool more = c0 + BK < end;
    const int next = more ? int(std::min<int64_t>(BK, end - c0 - BK)) : 0;
    const int kdim = int(std::min<int64_t>(BK, end - c0));
    cp_async_wait<1>();  // Q, gQ, dO and this V, gV (this K, gK may still be in flight)
    __syncthreads();
    T dp[RPT][KPT], tt[RPT][KPT];
    simt2_scores<T, RPT, KPT, TX>(dos, z.ldv, vs, z.ldv, dv, ty, tx, dp);           // dO Vᵀ
    if (hv) simt2_scores<T, RPT, KPT, TX>(dos, z.ldv, gvs, z.ldv, dv, ty, tx, tt);  // dO gVᵀ
    cp_async_wait<0>();                                                             // this K, gK
    __syncthreads();
    T s[RPT][KPT], g[RPT][KPT];
    dd_query_scores<T, RPT, KPT, TX>(qs, gqs, ks, gks, z.ldd, d, ty, tx, hq, hk, s, g);
    // masks (and bias reads) only where some key of the tile is hidden from some row, or a bias
    const bool masked = x.bias != nullptr || x.gbias != nullptr || c0 + BK > full;
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = ty + TY * i;
      const int64_t row = r0 + r;
      const int64_t e = masked ? (r < R ? x.key_end(row) : 0) : INT64_MAX;
#pragma unroll
      for (int j = 0; j < KPT; ++j) {
        const int64_t key = c0 + tx + TX * j;
        // masked entries set, not multiplied (padding keys may hold NaN: 0 · NaN)
        T P = T(0), ds = T(0), gdp = T(0), gs = T(0);
        if (!masked || key < e) {
          T v = s[i][j] * x.scale;
          if (masked && x.bias) v += x.bias[row * x.nk + key];
          P = lse[i] == neg_inf<T>() ? T(0) : texp(v - lse[i]);
          T gval = (hq || hk) ? g[i][j] * x.scale : T(0);
          if (masked && x.gbias) gval += x.gbias[row * x.nk + key];
          const T dpv = dp[i][j], tv = hv ? tt[i][j] : T(0);
          const T gP = tv + gval * (dpv - dd[i]) - cc[i] * dpv;
          gs = P * (gP - ee[i]);
          ds = P * (dpv - dd[i]);
          gdp = P * (gval - cc[i]);
        }
        if (gbias_out && r < R && key < end) gbias_out[row * x.nk + key] = gs;
        s[i][j] = P;
        dp[i][j] = ds;   // dS
        g[i][j] = gdp;   // ḡdP
        tt[i][j] = gs;   // ḡS
      }
    }
    if (want_do) {
#pragma unroll
      for (int i = 0; i < RPT; ++i)
#pragma unroll
        for (int j = 0; j < KPT; ++j) {
          const int o = (ty + TY * i) * z.ldp + tx + TX * j;
          pa[o] = s[i][j];
          pb[o] = g[i][j];
        }
      __syncthreads();                                                                       // P, ḡdP visible
      if (hv) simt2_accumulate<T, RPT, NV, TX>(pa, z.ldp, gvs, z.ldv, kdim, ty, vcol, ado);  // dO' += P gV
      simt2_accumulate<T, RPT, NV, TX>(pb, z.ldp, vs, z.ldv, kdim, ty, vcol, ado);           // dO' += ḡdP V
    }
    __syncthreads();  // every thread is done with V, gV and the score buffers
    if (more) {
      dd_rows_async(hv, vs, gvs, z.ldv, x.v, x.gv, c0 + BK, BK, next, dv);
    }
    cp_async_commit();
    if (want_q) {
#pragma unroll
      for (int i = 0; i < RPT; ++i)
#pragma unroll
        for (int j = 0; j < KPT; ++j) {
          const int o = (ty + TY * i) * z.ldp + tx + TX * j;
          pa[o] = tt[i][j];
          pb[o] = dp[i][j];
        }
      __syncthreads();                                                                      // ḡS, dS visible
      simt2_accumulate<T, RPT, ND, TX>(pa, z.ldp, ks, z.ldd, kdim, ty, dcol, aq);           // q' += ḡS K
      if (hk) simt2_accumulate<T, RPT, ND, TX>(pb, z.ldp, gks, z.ldd, kdim, ty, dcol, aq);  // q' += dS gK
    }
    __syncthreads();  // every thread is done with K, gK and the score buffers
    if (more) {
      dd_rows_async(hk, ks, gks, z.ldd, x.k, x.gk, c0 + BK, BK, next, d);
    }
    cp_async_commit();
  }
  cp_async_wait<0>();
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = ty + TY * i;
    if (r >= R) continue;
    const int64_t row = x.base + r0 + r;
    if (want_q) {
      T* out = static_cast<T*>(p.cot_q) + row * d;
#pragma unroll
      for (int j = 0; j < ND; ++j) {
        if (tx + TX * j >= d / 4) continue;
        T w[4];
#pragma unroll
        for (int e2 = 0; e2 < 4; ++e2) w[e2] = aq[i][j][e2] * x.scale;
        store4(out + 4 * (tx + TX * j), w);
      }
    }
    if (want_do) {
      T* out = static_cast<T*>(p.cot_dout) + row * dv;
#pragma unroll
      for (int j = 0; j < NV; ++j)
        if (tx + TX * j < dv / 4) store4(out + 4 * (tx + TX * j), ado[i][j]);
    }
  }
}

// Key pass, one block per tile of BK = 64 (or 32) keys of one (batch, KV head): thread (ty, tx)
// owns keys ty + TY·i and the chunks tx + TX·j of k' (D) and v' (Dv), in registers across every
// query head of the KV head and every query tile of BQ = 32 rows that sees the keys. Per query tile
// (Q, gQ, dO and lse, D, C, E of its rows): Sᵀ = scale K Qᵀ, Gᵀ = scale (K gQᵀ + gK Qᵀ), dPᵀ = V dOᵀ,
// Tᵀ = gV dOᵀ by register outer products (keys x rows); the tile's elementwise part as the query
// pass; ḡdPᵀ, ḡSᵀ, dSᵀ to shared: v' += ḡdPᵀ dO, k' += ḡSᵀ Q + dSᵀ gQ (scale once at the end).
// Every k'/v' tile has one owner block: no atomics, deterministic.
struct Simt2DdKDims {
  int ldd, ldv, ldp;
  int64_t k, gk, v, gv, q, gq, dout, pa, pb, pc, lse, dd, cc, ee, total;
};

Simt2DdKDims simt2_ddk_dims(int bk, int bq, int d, int dv, int esize, bool gq, bool gk, bool gv) {
  Simt2DdKDims z;
  z.ldd = simt2_ld(d, esize);
  z.ldv = simt2_ld(dv, esize);
  z.ldp = simt2_ld(bq, esize);
  z.k = 0;
  z.gk = z.k + int64_t(bk) * z.ldd;
  z.v = z.gk + (gk ? int64_t(bk) * z.ldd : 0);
  z.gv = z.v + int64_t(bk) * z.ldv;
  z.q = z.gv + (gv ? int64_t(bk) * z.ldv : 0);
  z.gq = z.q + int64_t(bq) * z.ldd;
  z.dout = z.gq + (gq ? int64_t(bq) * z.ldd : 0);
  z.pa = z.dout + int64_t(bq) * z.ldv;
  z.pb = z.pa + int64_t(bk) * z.ldp;
  z.pc = z.pb + int64_t(bk) * z.ldp;
  z.lse = z.pc + int64_t(bk) * z.ldp;
  z.dd = z.lse + bq;
  z.cc = z.dd + bq;
  z.ee = z.cc + bq;
  z.total = z.ee + bq;
  return z;
}

template <class T, int BK, int BQ, int TX, int ND, int NV>
__global__ void __launch_bounds__(kSimt2Threads) simt2_dd_key_kernel(const AttentionParams p, const Simt2DdKDims z) {
  constexpr int TY = kSimt2Threads / TX, KPT = BK / TY, RPT = BQ / TX;  // keys and rows per thread
  static_assert(TX <= 32 && (TX & (TX - 1)) == 0 && BK % TY == 0 && BQ % TX == 0 && BQ % 4 == 0, "tile grid");
  T* const sm = smem_base<T>();
  T *ks = sm + z.k, *gks = sm + z.gk, *vs = sm + z.v, *gvs = sm + z.gv, *qs = sm + z.q, *gqs = sm + z.gq;
  T *dos = sm + z.dout, *pa = sm + z.pa, *pb = sm + z.pb, *pc = sm + z.pc;
  T *lses = sm + z.lse, *dds = sm + z.dd, *ccs = sm + z.cc, *ees = sm + z.ee;
  const TileIndex ti = tile_index(p.kv_heads, p.nk, BK);  // ti.h: the KV head
  const int64_t c0 = ti.first;
  const int C = ti.count;
  const int64_t group = p.heads / p.kv_heads;
  const int d = int(p.d), dv = int(p.dv);
  const int tx = int(threadIdx.x) % TX, ty = int(threadIdx.x) / TX;
  const int64_t rows = p.batch * p.heads * p.nq;
  const T* Dall = static_cast<const T*>(p.workspace);
  const T* Call = Dall + rows;
  const T* Eall = Dall + 2 * rows;
  const HeadView<T> x0 = head_view<T>(p, ti.b, ti.h * group);
  const bool want_k = p.cot_k != nullptr, want_v = p.cot_v != nullptr;
  const bool hq = x0.gq != nullptr, hk = x0.gk != nullptr, hv = x0.gv != nullptr;

  T ak[KPT][ND][4], av[KPT][NV][4];
  simt2_zero(ak);
  simt2_zero(av);
  int dcol[ND], vcol[NV];
  simt2_columns<ND, TX>(d, tx, dcol);
  simt2_columns<NV, TX>(dv, tx, vcol);

  dd_rows_async(hk, ks, gks, z.ldd, x0.k, x0.gk, c0, BK, C, d);
  dd_rows_async(hv, vs, gvs, z.ldv, x0.v, x0.gv, c0, BK, C, dv);
  cp_async_commit();
  for (int64_t h = ti.h * group; h < (ti.h + 1) * group; ++h) {
    const HeadView<T> x = head_view<T>(p, ti.b, h);
    if (c0 >= x.len) continue;  // (padding keys of this batch entry: zero cotangents, pre-zeroed)
    for (int64_t r0 = x.first_row(c0); r0 < x.nq; r0 += BQ) {
      const int R = int(std::min<int64_t>(BQ, x.nq - r0));
      dd_rows_async(hq, qs, gqs, z.ldd, x.q, x.gq, r0, BQ, R, d);
      simt2_rows_async(dos, z.ldv, x.dout, r0, BQ, R, dv);
      cp_async_commit();
      for (int r = int(threadIdx.x); r < BQ; r += kSimt2Threads) {
        const int64_t row = x.base + r0 + r;
        lses[r] = r < R ? x.lse[r0 + r] : neg_inf<T>();
        dds[r] = r < R ? Dall[row] : T(0);
        ccs[r] = r < R ? Call[row] : T(0);
        ees[r] = r < R ? Eall[row] : T(0);
      }
      cp_async_wait<0>();
      __syncthreads();  // K, gK, V, gV, this tile's rows and statistics visible
      T st[KPT][RPT], gt[KPT][RPT], dpt[KPT][RPT], tt[KPT][RPT];
      simt2_scores<T, KPT, RPT, TX>(ks, z.ldd, qs, z.ldd, d, ty, tx, st);             // K Qᵀ
      simt2_scores<T, KPT, RPT, TX>(vs, z.ldv, dos, z.ldv, dv, ty, tx, dpt);          // V dOᵀ
      if (hv) simt2_scores<T, KPT, RPT, TX>(gvs, z.ldv, dos, z.ldv, dv, ty, tx, tt);  // gV dOᵀ
      if (hq) simt2_scores<T, KPT, RPT, TX>(ks, z.ldd, gqs, z.ldd, d, ty, tx, gt);    // K gQᵀ
      if (hk) {
        T g2[KPT][RPT];
        simt2_scores<T, KPT, RPT, TX>(gks, z.ldd, qs, z.ldd, d, ty, tx, g2);  // gK Qᵀ
#pragma unroll
        for (int i = 0; i < KPT; ++i)
#pragma unroll
          for (int j = 0; j < RPT; ++j) gt[i][j] = hq ? gt[i][j] + g2[i][j] : g2[i][j];
      }
      const bool masked = x.bias != nullptr || x.gbias != nullptr || R < BQ || C < BK || x.key_end(r0) < c0 + BK;
#pragma unroll
      for (int i = 0; i < KPT; ++i) {
        const int kr = ty + TY * i;
        const int64_t key = c0 + kr;
#pragma unroll
        for (int j = 0; j < RPT; ++j) {
          const int r = tx + TX * j;
          const int64_t row = r0 + r;
          const T ls = lses[r], dd = dds[r], cc = ccs[r], ee = ees[r];
          // masked entries set, not multiplied: padding keys may hold anything, NaN included (0 · NaN)
          T a = T(0), bq = T(0), cs = T(0);
          if (!masked || (r < R && kr < C && key < x.key_end(row))) {
            T v = st[i][j] * x.scale;
            if (masked && x.bias) v += x.bias[row * x.nk + key];
            const T P = ls == neg_inf<T>() ? T(0) : texp(v - ls);
            T gval = (hq || hk) ? gt[i][j] * x.scale : T(0);
            if (masked && x.gbias) gval += x.gbias[row * x.nk + key];
            const T dpv = dpt[i][j], tv = hv ? tt[i][j] : T(0);
            const T gP = tv + gval * (dpv - dd) - cc * dpv;
            a = P * (gval - cc);
            bq = P * (gP - ee);
            cs = P * (dpv - dd);
          }
          const int o = kr * z.ldp + r;
          pa[o] = a;   // ḡdPᵀ
          pb[o] = bq;  // ḡSᵀ
          pc[o] = cs;  // dSᵀ
        }
      }
      __syncthreads();  // ḡdPᵀ, ḡSᵀ, dSᵀ visible
      if (want_v) simt2_accumulate<T, KPT, NV, TX>(pa, z.ldp, dos, z.ldv, R, ty, vcol, av);  // v' += ḡdPᵀ dO
      if (want_k) {
        simt2_accumulate<T, KPT, ND, TX>(pb, z.ldp, qs, z.ldd, R, ty, dcol, ak);           // k' += ḡSᵀ Q
        if (hq) simt2_accumulate<T, KPT, ND, TX>(pc, z.ldp, gqs, z.ldd, R, ty, dcol, ak);  // k' += dSᵀ gQ
      }
      __syncthreads();  // every thread is done with this tile's rows and the score buffers
    }
  }
  cp_async_wait<0>();
  const int64_t krow = (ti.b * p.kv_heads + ti.h) * p.nk + c0;
  store_key_tile<T, KPT, ND, NV, TX>(static_cast<T*>(p.cot_k), static_cast<T*>(p.cot_v), krow, C, d, dv, ty, tx,
                                     x0.scale, ak, av);
}

// Stats pass (the row statistics C and E of the workspace, read by both passes above), one block
// per tile of BQ = 64 (or 32) query rows with the query pass's thread grid. Per key tile of BK = 32
// keys: dP = dO Vᵀ, T = dO gVᵀ (V, gV of this tile), S = scale Q Kᵀ, G = scale (gQ Kᵀ + Q gKᵀ) (K,
// gK, in flight while dP and T run) by register outer products; element by element, with
// G' = G + gbias, each thread sums over its keys
//   C += P G',  F += P G' dP,  A += P T
// in registers; the next V, gV load (cp.async) while S and G run, the next K, gK while the next dP
// runs. Reduce: the sums over the TX lanes of a row (shuffles, fixed order), then C and
// E = A + F − 2 C D into the workspace. v1 (second_stats_kernel) forms A = dO·(P gV) through a
// P gV accumulator; here A = rowsum(P ∘ (dO gVᵀ)), the same sum in another order (C and E equal
// v1's within rounding, not bitwise), with no D-wide accumulator: only score tiles and three
// sums per row live in registers, and the shared memory holds no score buffer.
struct Simt2DdSDims {
  int ldd, ldv;
  int64_t q, gq, dout, k, gk, v, gv, total;
};

Simt2DdSDims simt2_dds_dims(int bq, int bk, int d, int dv, int esize, bool gq, bool gk, bool gv) {
  Simt2DdSDims z;
  z.ldd = simt2_ld(d, esize);
  z.ldv = simt2_ld(dv, esize);
  z.q = 0;
  z.gq = z.q + int64_t(bq) * z.ldd;
  z.dout = z.gq + (gq ? int64_t(bq) * z.ldd : 0);
  z.k = z.dout + int64_t(bq) * z.ldv;
  z.gk = z.k + int64_t(bk) * z.ldd;
  z.v = z.gk + (gk ? int64_t(bk) * z.ldd : 0);
  z.gv = z.v + int64_t(bk) * z.ldv;
  z.total = z.gv + (gv ? int64_t(bk) * z.ldv : 0);
  return z;
}

template <class T, int BQ, int BK, int TX>
__global__ void __launch_bounds__(kSimt2Threads) simt2_dd_stats_kernel(const AttentionParams p, const Simt2DdSDims z) {
  constexpr int TY = kSimt2Threads / TX, RPT = BQ / TY, KPT = BK / TX;
  static_assert(TX <= 32 && (TX & (TX - 1)) == 0 && BQ % TY == 0 && BK % TX == 0 && BK % 4 == 0, "tile grid");
  T* const sm = smem_base<T>();
  T *qs = sm + z.q, *gqs = sm + z.gq, *dos = sm + z.dout, *ks = sm + z.k, *gks = sm + z.gk, *vs = sm + z.v;
  T* gvs = sm + z.gv;
  const TileIndex ti = tile_index(p.heads, p.nq, BQ);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int d = int(p.d), dv = int(p.dv);
  const int tx = int(threadIdx.x) % TX, ty = int(threadIdx.x) / TX;
  const int64_t end = x.key_end(r0 + R - 1), full = x.key_end(r0);
  const int64_t rows = p.batch * p.heads * p.nq;
  T* Dall = static_cast<T*>(p.workspace);
  T* Call = Dall + rows;
  T* Eall = Dall + 2 * rows;
  const bool hq = x.gq != nullptr, hk = x.gk != nullptr, hv = x.gv != nullptr;

  T lse[RPT], csum[RPT], fsum[RPT], asum[RPT];
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = ty + TY * i;
    lse[i] = r < R ? x.lse[r0 + r] : neg_inf<T>();
    csum[i] = fsum[i] = asum[i] = T(0);
  }
  if (end > 0) {
    const int first = int(std::min<int64_t>(BK, end));
    dd_first_loads<T, BQ, BK>(x, hq, hk, hv, r0, R, first, d, dv, z.ldd, z.ldv, qs, gqs, dos, ks, gks, vs, gvs);
  }
  for (int64_t c0 = 0; c0 < end; c0 += BK) {
    const bool more = c0 + BK < end;
    const int next = more ? int(std::min<int64_t>(BK, end - c0 - BK)) : 0;
    cp_async_wait<1>();  // Q, gQ, dO and this V, gV (this K, gK may still be in flight)
    __syncthreads();
    T dp[RPT][KPT], tt[RPT][KPT];
    simt2_scores<T, RPT, KPT, TX>(dos, z.ldv, vs, z.ldv, dv, ty, tx, dp);           // dO Vᵀ
    if (hv) simt2_scores<T, RPT, KPT, TX>(dos, z.ldv, gvs, z.ldv, dv, ty, tx, tt);  // dO gVᵀ
    cp_async_wait<0>();                                                             // this K, gK
    __syncthreads();  // K, gK visible; every thread is done with V, gV
    if (more) {
      dd_rows_async(hv, vs, gvs, z.ldv, x.v, x.gv, c0 + BK, BK, next, dv);
    }
    cp_async_commit();
    T s[RPT][KPT], g[RPT][KPT];
    dd_query_scores<T, RPT, KPT, TX>(qs, gqs, ks, gks, z.ldd, d, ty, tx, hq, hk, s, g);
    // masks (and bias reads) only where some key of the tile is hidden from some row, or a bias
    const bool masked = x.bias != nullptr || x.gbias != nullptr || c0 + BK > full;
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = ty + TY * i;
      const int64_t row = r0 + r;
      const int64_t e = masked ? (r < R ? x.key_end(row) : 0) : INT64_MAX;
#pragma unroll
      for (int j = 0; j < KPT; ++j) {
        const int64_t key = c0 + tx + TX * j;
        if (masked && key >= e) continue;  // P = 0
        T v = s[i][j] * x.scale;
        if (masked && x.bias) v += x.bias[row * x.nk + key];
        const T P = lse[i] == neg_inf<T>() ? T(0) : texp(v - lse[i]);
        T gval = (hq || hk) ? g[i][j] * x.scale : T(0);
        if (masked && x.gbias) gval += x.gbias[row * x.nk + key];
        const T pg = P * gval;
        csum[i] += pg;
        fsum[i] += pg * dp[i][j];
        if (hv) asum[i] += P * tt[i][j];
      }
    }
    __syncthreads();  // every thread is done with K, gK
    if (more) {
      dd_rows_async(hk, ks, gks, z.ldd, x.k, x.gk, c0 + BK, BK, next, d);
    }
    cp_async_commit();
  }
  cp_async_wait<0>();
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const T c = simt2_row_sum<TX>(csum[i]), f = simt2_row_sum<TX>(fsum[i]), a = simt2_row_sum<TX>(asum[i]);
    const int r = ty + TY * i;
    if (r >= R || tx != 0) continue;
    const int64_t row = x.base + r0 + r;
    Call[row] = c;
    Eall[row] = a + f - T(2) * c * Dall[row];
  }
}

// The tile of a pass: 64 rows (keys) where it fits the device's shared memory, else 32, else
// unsupported; run(dims, std::integral_constant<int, 64 or 32>).
template <class T, class Dims, class Run>
int simt2_dd_tiles(const AttentionParams& p, Dims (*dims)(int, int, int, int, int, bool, bool, bool), Run run) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  const int es = int(sizeof(T));
  const bool gq = p.second.q != nullptr, gk = p.second.k != nullptr, gv = p.second.v != nullptr;
  const Dims z64 = dims(64, 32, int(p.d), int(p.dv), es, gq, gk, gv);
  if (size_t(z64.total) * es <= lim.optin) return run(z64, std::integral_constant<int, 64>{});
  const Dims z32 = dims(32, 32, int(p.d), int(p.dv), es, gq, gk, gv);
  if (size_t(z32.total) * es <= lim.optin) return run(z32, std::integral_constant<int, 32>{});
  return KERNEL_UNSUPPORTED;
}

// Column chunks per thread (TX = 8 lanes of 4 columns) for the wider of D and Dv: 2 up to 64, 4 up
// to 128, 8 up to 256 (F32); run(std::integral_constant<int, N>).
template <class T, class Run>
int simt2_dd_width(const AttentionParams& p, Run run) {
  const int64_t w = std::max(p.d, p.dv);
  if (w <= 64) return run(std::integral_constant<int, 2>{});
  if (sizeof(T) == 8 || w <= 128) return run(std::integral_constant<int, 4>{});
  if constexpr (sizeof(T) == 4) return run(std::integral_constant<int, 8>{});
  return KERNEL_UNSUPPORTED;
}

template <class T>
int simt2_dd_query_t(const AttentionParams& p, cudaStream_t stream) {
  return simt2_dd_tiles<T>(p, simt2_ddq_dims, [&](const Simt2DdQDims& z, auto bq) {
    constexpr int BQ = decltype(bq)::value;
    const int64_t blocks = p.batch * p.heads * ((p.nq + BQ - 1) / BQ);
    return simt2_dd_width<T>(p, [&](auto n) {
      constexpr int N = decltype(n)::value;
      return launch(simt2_dd_query_kernel<T, BQ, 32, 8, N, N>, blocks, size_t(z.total) * sizeof(T), stream, p, z);
    });
  });
}

template <class T>
int simt2_dd_key_t(const AttentionParams& p, cudaStream_t stream) {
  return simt2_dd_tiles<T>(p, simt2_ddk_dims, [&](const Simt2DdKDims& z, auto bk) {
    constexpr int BK = decltype(bk)::value;
    const int64_t blocks = p.batch * p.kv_heads * ((p.nk + BK - 1) / BK);
    return simt2_dd_width<T>(p, [&](auto n) {
      constexpr int N = decltype(n)::value;
      return launch(simt2_dd_key_kernel<T, BK, 32, 8, N, N>, blocks, size_t(z.total) * sizeof(T), stream, p, z);
    });
  });
}

template <class T>
int simt2_dd_stats_t(const AttentionParams& p, cudaStream_t stream) {
  return simt2_dd_tiles<T>(p, simt2_dds_dims, [&](const Simt2DdSDims& z, auto bq) {
    constexpr int BQ = decltype(bq)::value;
    const int64_t blocks = p.batch * p.heads * ((p.nq + BQ - 1) / BQ);
    return launch(simt2_dd_stats_kernel<T, BQ, 32, 8>, blocks, size_t(z.total) * sizeof(T), stream, p, z);
  });
}

bool simt2dd_applies(const AttentionParams& p) {
  if (!attention_simt_v2_applies(p.dtype, p.d, p.dv) || !supported(p) || !p.workspace) return false;
  const void* const tensors[] = {p.q,        p.k,     p.v,     p.dout,  p.second.q, p.second.k,
                                 p.second.v, p.cot_q, p.cot_k, p.cot_v, p.cot_dout};
  for (const void* t : tensors)
    if (!simt2_aligned(t)) return false;
  return device_arch_major() >= 8;
}
}  // namespace

int simt2_attention_dd_query(const AttentionParams& p, void* stream) {
  if (!simt2dd_applies(p)) return KERNEL_UNSUPPORTED;
  return p.dtype == MK_F32 ? simt2_dd_query_t<float>(p, as_stream(stream))
                           : simt2_dd_query_t<double>(p, as_stream(stream));
}

int simt2_attention_dd_stats(const AttentionParams& p, void* stream) {
  if (!simt2dd_applies(p)) return KERNEL_UNSUPPORTED;
  return p.dtype == MK_F32 ? simt2_dd_stats_t<float>(p, as_stream(stream))
                           : simt2_dd_stats_t<double>(p, as_stream(stream));
}

int simt2_attention_dd_key(const AttentionParams& p, void* stream) {
  if (!simt2dd_applies(p)) return KERNEL_UNSUPPORTED;
  return p.dtype == MK_F32 ? simt2_dd_key_t<float>(p, as_stream(stream)) : simt2_dd_key_t<double>(p, as_stream(stream));
}

int attention_simt_dd_version(const AttentionParams& p) {
  const int selected = attention_simt_selection().dd.load(std::memory_order_relaxed);
  return attention_simt_dd_choose(p.dtype, p.d, p.dv, device_arch_major(),
                                  selected != 0 ? selected : attention_simt_dd_override());
}

}  // namespace cuda
}  // namespace mk
