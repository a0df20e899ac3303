// Softmax attention on CUDA, SIMT v2 (F32 / F64): the accumulators live in registers. Chosen per
// call by mk/attention_simt_choice.h (forward.cu, backward.cu); the math, masks and outputs are
// those of v1 (simt.cuh) and of the CPU twin (kernels/cpu/attention/).
//
// Forward, one block of 256 threads per tile of BQ = 64 (or 128) query rows of one (batch, head):
//   threads form a TY x TX grid (TX = 8 lanes along keys and value columns, TY = 32 along rows);
//   thread (ty, tx) owns rows ty + TY·i (i < RPT = BQ / 32) for the whole key loop: their output
//   accumulator O[i][value chunk j] (chunks of 4 columns, chunk tx + TX·j, j < NV), running max
//   m[i] and its share of the running sum l[i] (the keys it owns), all in registers.
//   Per key tile of BK keys (K and V by cp.async, K of the next tile while this one's softmax and
//   P V run, V of the next while the next S runs):
//     S[i][j] = scale Σ_d Q[row i][d] K[key tx + TX·j][d]: register outer products over chunks
//       of 4 dims, 16-byte loads of padded rows (row stride an odd number of 16-byte units: the 8
//       rows a quarter warp reads lie in distinct banks; the Q rows are broadcasts)
//     mask (causal, key padding, key lengths, bias, partial tiles) only on tiles that need it
//     online softmax: row max by shuffles among the TX lanes of a row; O, l rescaled in registers
//     P written to shared (P[row][key], padded), then O += P V with 16-byte loads of P and V
//   Reduce: l summed over the row's lanes (shuffles), out = O / l, lse = m + log l.
// Rows of the tile that see no key give out = 0 and lse = −inf, as v1.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../copy_async.cuh"
#include "mk/attention_simt_choice.h"
#include "simt.cuh"
#include "simt2.cuh"
#include "simt2_parts.cuh"

namespace mk {
namespace cuda {
namespace {

// ---- forward ----------------------------------------------------------------------------------------
struct Simt2FwdDims {
  int ldd, ldv, ldp;           // shared leading dims: Q and K rows, V rows, P rows
  int64_t q, k, v, pb, total;  // offsets (elements) of the buffers; total size
};

template <int BQ, int BK>
Simt2FwdDims simt2_fwd_dims(int d, int dv, int esize) {
  Simt2FwdDims z;
  z.ldd = simt2_ld(d, esize);
  z.ldv = simt2_ld(dv, esize);
  z.ldp = simt2_ld(BK, esize);
  z.q = 0;
  z.k = z.q + int64_t(BQ) * z.ldd;
  z.v = z.k + int64_t(BK) * z.ldd;
  z.pb = z.v + int64_t(BK) * z.ldv;
  z.total = z.pb + int64_t(BQ) * z.ldp;
  return z;
}

template <class T, int BQ, int BK, int TX, int NV>
__global__ void __launch_bounds__(kSimt2Threads) simt2_forward_kernel(const AttentionParams p, const Simt2FwdDims z) {
  constexpr int TY = kSimt2Threads / TX, RPT = BQ / TY, KPT = BK / TX;
  static_assert(TX <= 32 && (TX & (TX - 1)) == 0 && BQ % TY == 0 && BK % TX == 0 && BK % 4 == 0, "tile grid");
  T* const sm = smem_base<T>();
  T *qs = sm + z.q, *ks = sm + z.k, *vs = sm + z.v, *ps = sm + z.pb;
  const TileIndex ti = tile_index(p.heads, p.nq, BQ);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int d = int(p.d), dv = int(p.dv), nv4 = dv / 4;
  const int tx = int(threadIdx.x) % TX, ty = int(threadIdx.x) / TX;
  const int64_t end = x.key_end(r0 + R - 1);  // keys any row of the tile sees
  const int64_t full = x.key_end(r0);         // keys every row of the tile sees (key_end grows with i)

  T o[RPT][NV][4], m[RPT], l[RPT];
  simt2_zero(o);
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    m[i] = neg_inf<T>();
    l[i] = T(0);
  }
  int vcol[NV];
  simt2_columns<NV, TX>(dv, tx, vcol);

  if (end > 0) {
    simt2_rows_async(qs, z.ldd, x.q, r0, BQ, R, d);
    simt2_rows_async(ks, z.ldd, x.k, 0, BK, int(std::min<int64_t>(BK, end)), d);
    cp_async_commit();
    simt2_rows_async(vs, z.ldv, x.v, 0, BK, int(std::min<int64_t>(BK, end)), dv);
    cp_async_commit();
  }
  for (int64_t c0 = 0; c0 < end; c0 += BK) {
    const bool more = c0 + BK < end;
    const int next = more ? int(std::min<int64_t>(BK, end - c0 - BK)) : 0;
    cp_async_wait<1>();  // Q and this K (this V may still be in flight)
    __syncthreads();
    T s[RPT][KPT];
    simt2_scores<T, RPT, KPT, TX>(qs, z.ldd, ks, z.ldd, d, ty, tx, s);
    __syncthreads();  // every thread is done with this K tile
    if (more) simt2_rows_async(ks, z.ldd, x.k, c0 + BK, BK, next, d);
    cp_async_commit();
    // mask only where some key of the tile is hidden from some row, or there is a bias
    const bool masked = x.bias != nullptr || c0 + BK > full;
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = ty + TY * i;
      const int64_t row = r0 + r;
      const int64_t e = masked ? (r < R ? x.key_end(row) : 0) : INT64_MAX;
      T mt = neg_inf<T>();
#pragma unroll
      for (int j = 0; j < KPT; ++j) {
        T v = s[i][j] * x.scale;
        if (masked) {
          const int64_t key = c0 + tx + TX * j;
          if (key >= e)
            v = neg_inf<T>();
          else if (x.bias)
            v += x.bias[row * x.nk + key];
        }
        s[i][j] = v;
        mt = v > mt ? v : mt;
      }
      mt = simt2_row_max<TX>(mt);
      const T mn = mt > m[i] ? mt : m[i];
      if (mn == neg_inf<T>()) {
#pragma unroll
        for (int j = 0; j < KPT; ++j) s[i][j] = T(0);
      } else {
        const T corr = m[i] == neg_inf<T>() ? T(0) : texp(m[i] - mn);
        T sum = T(0);
#pragma unroll
        for (int j = 0; j < KPT; ++j) {
          const T pv = texp(s[i][j] - mn);  // exp(−inf) = 0 for masked keys
          s[i][j] = pv;
          sum += pv;
        }
        l[i] = l[i] * corr + sum;
        m[i] = mn;
#pragma unroll
        for (int j = 0; j < NV; ++j)
#pragma unroll
          for (int e2 = 0; e2 < 4; ++e2) o[i][j][e2] *= corr;
      }
#pragma unroll
      for (int j = 0; j < KPT; ++j) ps[r * z.ldp + tx + TX * j] = s[i][j];
    }
    cp_async_wait<1>();  // this V (the next K may still be in flight)
    __syncthreads();     // P and V visible to every thread
    // keys past the tile's end: P = 0 and V rows zero-filled
    simt2_accumulate<T, RPT, NV, TX>(ps, z.ldp, vs, z.ldv, int(std::min<int64_t>(BK, end - c0)), ty, vcol, o);
    __syncthreads();  // every thread is done with P and this V tile
    if (more) simt2_rows_async(vs, z.ldv, x.v, c0 + BK, BK, next, dv);
    cp_async_commit();
  }
  cp_async_wait<0>();
  // reduce: the row sums over the row's lanes, then each thread writes its rows' chunks
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const T lt = simt2_row_sum<TX>(l[i]);
    const int r = ty + TY * i;
    if (r >= R) continue;
    const int64_t row = x.base + r0 + r;
    const T inv = lt > T(0) ? T(1) / lt : T(0);
    if (p.out) {
      T* out = static_cast<T*>(p.out) + row * dv;
#pragma unroll
      for (int j = 0; j < NV; ++j) {
        if (tx + TX * j >= nv4) continue;
        T w[4];
#pragma unroll
        for (int e2 = 0; e2 < 4; ++e2) w[e2] = o[i][j][e2] * inv;
        store4(out + 4 * (tx + TX * j), w);
      }
    }
    if (p.lse && tx == 0) static_cast<T*>(p.lse)[row] = lt > T(0) ? m[i] + tlog(lt) : neg_inf<T>();
  }
}

// ---- backward ---------------------------------------------------------------------------------------
// Preprocess (shared with v1): D = rowsum(dO ∘ O) into the workspace.
// dQ pass, one block per tile of BQ = 64 query rows (the forward's thread grid; dQ[i][chunk j] of
// D in registers for the whole key loop). Per key tile of BK keys: dP = dO Vᵀ and S = scale Q Kᵀ
// by register outer products, P = exp(S + bias − lse), dS = P ∘ (dP − D) (written to the full dS
// when asked), dS to shared, dQ += dS K; scale applied once at the end. V of the next tile loads
// (cp.async) while S, dS and dQ of this one run, K of the next while its dP runs.
struct Simt2BwdQDims {
  int ldd, ldv, ldp;
  int64_t q, dout, k, v, ds, total;
};

template <int BQ, int BK>
Simt2BwdQDims simt2_bwdq_dims(int d, int dv, int esize) {
  Simt2BwdQDims z;
  z.ldd = simt2_ld(d, esize);
  z.ldv = simt2_ld(dv, esize);
  z.ldp = simt2_ld(BK, esize);
  z.q = 0;
  z.dout = z.q + int64_t(BQ) * z.ldd;
  z.k = z.dout + int64_t(BQ) * z.ldv;
  z.v = z.k + int64_t(BK) * z.ldd;
  z.ds = z.v + int64_t(BK) * z.ldv;
  z.total = z.ds + int64_t(BQ) * z.ldp;
  return z;
}

template <class T, int BQ, int BK, int TX, int ND>
__global__ void __launch_bounds__(kSimt2Threads)
    simt2_backward_query_kernel(const AttentionParams p, const Simt2BwdQDims z) {
  constexpr int TY = kSimt2Threads / TX, RPT = BQ / TY, KPT = BK / TX;
  static_assert(TX <= 32 && (TX & (TX - 1)) == 0 && BQ % TY == 0 && BK % TX == 0 && BK % 4 == 0, "tile grid");
  T* const sm = smem_base<T>();
  T *qs = sm + z.q, *dos = sm + z.dout, *ks = sm + z.k, *vs = sm + z.v, *dss = sm + z.ds;
  const TileIndex ti = tile_index(p.heads, p.nq, BQ);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int d = int(p.d), dv = int(p.dv);
  const int tx = int(threadIdx.x) % TX, ty = int(threadIdx.x) / TX;
  const int64_t end = x.key_end(r0 + R - 1), full = x.key_end(r0);
  const T* Dall = static_cast<const T*>(p.workspace);
  T* ds_full = p.grad_bias_full ? static_cast<T*>(p.grad_bias_full) + x.base * x.nk : nullptr;  // + i·Nk + j
  const bool want_dq = p.grad_q != nullptr;

  T dq[RPT][ND][4], lse[RPT], dd[RPT];
  simt2_zero(dq);
  int dcol[ND];
  simt2_columns<ND, TX>(d, tx, dcol);
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = ty + TY * i;
    lse[i] = r < R ? x.lse[r0 + r] : neg_inf<T>();
    dd[i] = r < R ? Dall[x.base + r0 + r] : T(0);
  }
  if (end > 0) {
    simt2_rows_async(qs, z.ldd, x.q, r0, BQ, R, d);
    simt2_rows_async(dos, z.ldv, x.dout, r0, BQ, R, dv);
    simt2_rows_async(vs, z.ldv, x.v, 0, BK, int(std::min<int64_t>(BK, end)), dv);
    cp_async_commit();
    simt2_rows_async(ks, z.ldd, x.k, 0, BK, int(std::min<int64_t>(BK, end)), d);
    cp_async_commit();
  }
  for (int64_t c0 = 0; c0 < end; c0 += BK) {
    const bool more = c0 + BK < end;
    const int next = more ? int(std::min<int64_t>(BK, end - c0 - BK)) : 0;
    cp_async_wait<1>();  // Q, dO and this V (this K may still be in flight)
    __syncthreads();
    T dp[RPT][KPT];
    simt2_scores<T, RPT, KPT, TX>(dos, z.ldv, vs, z.ldv, dv, ty, tx, dp);  // dP = dO Vᵀ
    cp_async_wait<0>();                                                    // this K
    __syncthreads();  // K visible; every thread is done with this V tile
    if (more) simt2_rows_async(vs, z.ldv, x.v, c0 + BK, BK, next, dv);
    cp_async_commit();
    T s[RPT][KPT];
    simt2_scores<T, RPT, KPT, TX>(qs, z.ldd, ks, z.ldd, d, ty, tx, s);  // Q Kᵀ
    const bool masked = x.bias != nullptr || c0 + BK > full;
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = ty + TY * i;
      const int64_t row = r0 + r;
      const int64_t e = masked ? (r < R ? x.key_end(row) : 0) : INT64_MAX;
#pragma unroll
      for (int j = 0; j < KPT; ++j) {
        const int64_t key = c0 + tx + TX * j;
        T pr = T(0);
        if (!masked || key < e) {
          T v = s[i][j] * x.scale;
          if (masked && x.bias) v += x.bias[row * x.nk + key];
          pr = lse[i] == neg_inf<T>() ? T(0) : texp(v - lse[i]);
        }
        const T ds = pr * (dp[i][j] - dd[i]);
        if (ds_full && r < R && key < end) ds_full[row * x.nk + key] = ds;
        dss[r * z.ldp + tx + TX * j] = ds;
      }
    }
    if (want_dq) {
      __syncthreads();  // dS visible
      simt2_accumulate<T, RPT, ND, TX>(dss, z.ldp, ks, z.ldd, int(std::min<int64_t>(BK, end - c0)), ty, dcol, dq);
    }
    __syncthreads();  // every thread is done with dS and this K tile
    if (more) simt2_rows_async(ks, z.ldd, x.k, c0 + BK, BK, next, d);
    cp_async_commit();
  }
  cp_async_wait<0>();
  if (!want_dq) return;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = ty + TY * i;
    if (r >= R) continue;
    T* out = static_cast<T*>(p.grad_q) + (x.base + r0 + r) * d;
#pragma unroll
    for (int j = 0; j < ND; ++j) {
      if (tx + TX * j >= d / 4) continue;
      T w[4];
#pragma unroll
      for (int e2 = 0; e2 < 4; ++e2) w[e2] = dq[i][j][e2] * x.scale;
      store4(out + 4 * (tx + TX * j), w);
    }
  }
}

// dK/dV pass, one block per tile of BK = 64 keys of one (batch, KV head): thread (ty, tx) owns keys
// ty + TY·i and the chunks tx + TX·j of dK (D) and dV (Dv), in registers across every query head
// of the KV head and every query tile that sees the keys. Per tile of BQ query rows (Q, dO, lse,
// D of the rows): Sᵀ = scale K Qᵀ and dPᵀ = V dOᵀ by register outer products (keys x rows),
// Pᵀ = exp(Sᵀ + bias − lse), dSᵀ = Pᵀ ∘ (dPᵀ − D); Pᵀ to shared, dV += Pᵀ dO; then dSᵀ to the same
// buffer, dK += dSᵀ Q (scale once at the end). dO of the next tile loads (cp.async) while dK is
// updated, its Q while its dPᵀ runs. Every dK/dV tile has one owner block: no atomics, deterministic.
struct Simt2BwdKDims {
  int ldd, ldv, ldp;
  int64_t k, v, q, dout, pt, lse, dd, total;
};

template <int BK, int BQ>
Simt2BwdKDims simt2_bwdk_dims(int d, int dv, int esize) {
  Simt2BwdKDims z;
  z.ldd = simt2_ld(d, esize);
  z.ldv = simt2_ld(dv, esize);
  z.ldp = simt2_ld(BQ, esize);
  z.k = 0;
  z.v = z.k + int64_t(BK) * z.ldd;
  z.q = z.v + int64_t(BK) * z.ldv;
  z.dout = z.q + int64_t(BQ) * z.ldd;
  z.pt = z.dout + int64_t(BQ) * z.ldv;
  z.lse = z.pt + int64_t(BK) * z.ldp;
  z.dd = z.lse + BQ;
  z.total = z.dd + BQ;
  return z;
}

template <class T, int BK, int BQ, int TX, int ND, int NV>
__global__ void __launch_bounds__(kSimt2Threads)
    simt2_backward_key_kernel(const AttentionParams p, const Simt2BwdKDims z) {
  constexpr int TY = kSimt2Threads / TX, KPT = BK / TY, RPT = BQ / TX;  // keys and rows per thread
  static_assert(TX <= 32 && (TX & (TX - 1)) == 0 && BK % TY == 0 && BQ % TX == 0 && BQ % 4 == 0, "tile grid");
  T* const sm = smem_base<T>();
  T *ks = sm + z.k, *vs = sm + z.v, *qs = sm + z.q, *dos = sm + z.dout, *pts = sm + z.pt;
  T *lses = sm + z.lse, *dds = sm + z.dd;
  const TileIndex ti = tile_index(p.kv_heads, p.nk, BK);  // ti.h: the KV head
  const int64_t c0 = ti.first;
  const int C = ti.count;
  const int64_t group = p.heads / p.kv_heads;
  const int d = int(p.d), dv = int(p.dv);
  const int tx = int(threadIdx.x) % TX, ty = int(threadIdx.x) / TX;
  const T* Dall = static_cast<const T*>(p.workspace);
  const HeadView<T> x0 = head_view<T>(p, ti.b, ti.h * group);
  const bool want_dk = p.grad_k != nullptr, want_dv = p.grad_v != nullptr;

  T dk[KPT][ND][4], dvacc[KPT][NV][4];
  simt2_zero(dk);
  simt2_zero(dvacc);
  int dcol[ND], vcol[NV];
  simt2_columns<ND, TX>(d, tx, dcol);
  simt2_columns<NV, TX>(dv, tx, vcol);

  // The query tiles of this block, in order: the heads of the KV group whose keys include c0 (others:
  // padding, zero gradients, pre-zeroed), rows from the first that sees key c0. first_tile: the
  // first head >= h with a tile (hend when none), its first row in r0.
  const int64_t hend = (ti.h + 1) * group;
  auto first_tile = [&](int64_t h, int64_t& r0) {
    for (; h < hend; ++h) {
      const HeadView<T> x = head_view<T>(p, ti.b, h);
      if (c0 < x.len && x.first_row(c0) < x.nq) {
        r0 = x.first_row(c0);
        return h;
      }
    }
    return hend;
  };
  // dO of a tile, then Q (with lse and D by plain loads): two commit groups, so dPᵀ can start on dO
  // while Q is in flight
  auto load_tile = [&](int64_t h, int64_t r0, bool q_part) {
    const HeadView<T> x = head_view<T>(p, ti.b, h);
    const int R = int(std::min<int64_t>(BQ, x.nq - r0));
    if (!q_part) {
      simt2_rows_async(dos, z.ldv, x.dout, r0, BQ, R, dv);
      return;
    }
    simt2_rows_async(qs, z.ldd, x.q, r0, BQ, R, d);
    for (int r = int(threadIdx.x); r < BQ; r += kSimt2Threads) {
      lses[r] = r < R ? x.lse[r0 + r] : neg_inf<T>();
      dds[r] = r < R ? Dall[x.base + r0 + r] : T(0);
    }
  };

  simt2_rows_async(ks, z.ldd, x0.k, c0, BK, C, d);
  simt2_rows_async(vs, z.ldv, x0.v, c0, BK, C, dv);
  cp_async_commit();
  int64_t r0 = 0;
  int64_t h = first_tile(ti.h * group, r0);
  if (h < hend) {
    load_tile(h, r0, false);
    cp_async_commit();
    load_tile(h, r0, true);
    cp_async_commit();
  }
  while (h < hend) {
    const HeadView<T> x = head_view<T>(p, ti.b, h);
    const int R = int(std::min<int64_t>(BQ, x.nq - r0));
    int64_t nr0 = r0 + BQ;
    const int64_t nh = nr0 < x.nq ? h : first_tile(h + 1, nr0);
    cp_async_wait<1>();  // K, V (first tile) and this dO; this Q may still be in flight
    __syncthreads();
    T st[KPT][RPT], dpt[KPT][RPT];
    simt2_scores<T, KPT, RPT, TX>(vs, z.ldv, dos, z.ldv, dv, ty, tx, dpt);  // V dOᵀ
    cp_async_wait<0>();                                                     // this Q
    __syncthreads();                                                        // Q, lse and D visible
    simt2_scores<T, KPT, RPT, TX>(ks, z.ldd, qs, z.ldd, d, ty, tx, st);     // K Qᵀ
    // mask where some row of the tile does not see some key, a row is past Nq, or there is a bias
    const bool masked = x.bias != nullptr || R < BQ || C < BK || x.key_end(r0) < c0 + BK;
#pragma unroll
    for (int i = 0; i < KPT; ++i) {
      const int64_t key = c0 + ty + TY * i;
#pragma unroll
      for (int j = 0; j < RPT; ++j) {
        const int r = tx + TX * j;
        const int64_t row = r0 + r;
        const T ls = lses[r];
        // masked entries set, not multiplied: padding keys may hold anything, NaN included (0 · NaN)
        T pr = T(0), ds = T(0);
        if (!masked || (r < R && ty + TY * i < C && key < x.key_end(row))) {
          T v = st[i][j] * x.scale;
          if (masked && x.bias) v += x.bias[row * x.nk + key];
          pr = ls == neg_inf<T>() ? T(0) : texp(v - ls);
          ds = pr * (dpt[i][j] - dds[r]);
        }
        st[i][j] = pr;
        dpt[i][j] = ds;
      }
    }
    if (want_dv) {
#pragma unroll
      for (int i = 0; i < KPT; ++i)
#pragma unroll
        for (int j = 0; j < RPT; ++j) pts[(ty + TY * i) * z.ldp + tx + TX * j] = st[i][j];
      __syncthreads();
      simt2_accumulate<T, KPT, NV, TX>(pts, z.ldp, dos, z.ldv, R, ty, vcol, dvacc);  // dV += Pᵀ dO
    }
    __syncthreads();                           // every thread is done with dO, Pᵀ, lse and D
    if (nh < hend) load_tile(nh, nr0, false);  // the next dO loads while dK is updated
    cp_async_commit();
    if (want_dk) {
#pragma unroll
      for (int i = 0; i < KPT; ++i)
#pragma unroll
        for (int j = 0; j < RPT; ++j) pts[(ty + TY * i) * z.ldp + tx + TX * j] = dpt[i][j];
      __syncthreads();
      simt2_accumulate<T, KPT, ND, TX>(pts, z.ldp, qs, z.ldd, R, ty, dcol, dk);  // dK += dSᵀ Q
    }
    __syncthreads();                          // every thread is done with Q and dSᵀ
    if (nh < hend) load_tile(nh, nr0, true);  // the next Q loads while the next dPᵀ runs
    cp_async_commit();
    h = nh;
    r0 = nr0;
  }
  cp_async_wait<0>();
  const int64_t krow = (ti.b * p.kv_heads + ti.h) * p.nk + c0;
  store_key_tile<T, KPT, ND, NV, TX>(static_cast<T*>(p.grad_k), static_cast<T*>(p.grad_v), krow, C, d, dv, ty, tx,
                                     x0.scale, dk, dvacc);
}

// ---- launch --------------------------------------------------------------------------------------------
// Shape, type, alignment and architecture (the shared memory is checked per pass).
bool simt2_applies(const AttentionParams& p) {
  if (!attention_simt_v2_applies(p.dtype, p.d, p.dv) || !supported(p)) return false;
  const void* const tensors[] = {p.q, p.k, p.v, p.out, p.dout, p.grad_q, p.grad_k, p.grad_v};
  for (const void* t : tensors)
    if (!simt2_aligned(t)) return false;
  return device_arch_major() >= 8;
}

// Resident blocks per SM for `bytes` of shared memory (1 KB per block reserved by the system), at most 2.
int simt2_blocks(size_t bytes, const Limits& lim) { return int(std::min<size_t>(2, lim.per_sm / (bytes + 1024))); }

template <class T, int BQ, int BK, int NV>
int simt2_forward_launch(const AttentionParams& p, const Simt2FwdDims& z, cudaStream_t stream) {
  const int64_t blocks = p.batch * p.heads * ((p.nq + BQ - 1) / BQ);
  return launch(simt2_forward_kernel<T, BQ, BK, 8, NV>, blocks, size_t(z.total) * sizeof(T), stream, p, z);
}

template <class T, int BQ, int BK>
int simt2_forward_nv(const AttentionParams& p, const Simt2FwdDims& z, cudaStream_t stream) {
  if (p.dv <= 64) return simt2_forward_launch<T, BQ, BK, 2>(p, z, stream);
  if (sizeof(T) == 8 || BQ > 64 || p.dv <= 128)
    return simt2_forward_launch<T, BQ, BK, 4>(p, z, stream);  // (F64 and 128-row tiles: Dv <= 128)
  if constexpr (sizeof(T) == 4 && BQ == 64) return simt2_forward_launch<T, BQ, BK, 8>(p, z, stream);
  return KERNEL_UNSUPPORTED;
}

// The forward's tile (rows x keys): 64 x 64 (F32), 64 x 32, 128 x 64 (F32, Dv <= 128: 4 x 8 scores
// per thread, one block per SM). SIMT2_TILE_AUTO picks, among those that fit the device, the one
// with the most resident blocks per SM (up to 2), then the larger; any other code forces that tile
// (KERNEL_UNSUPPORTED where it does not apply or fit).
template <class T>
int simt2_forward_t(const AttentionParams& p, cudaStream_t stream, int tile) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  const int es = int(sizeof(T)), d = int(p.d), dv = int(p.dv);
  const bool f32 = sizeof(T) == 4;
  struct Cand {
    int code, area;
    bool applies;
    Simt2FwdDims z;
  };
  const Cand cands[3] = {{SIMT2_TILE_64x64, 64 * 64, f32, simt2_fwd_dims<64, 64>(d, dv, es)},
                         {SIMT2_TILE_64x32, 64 * 32, true, simt2_fwd_dims<64, 32>(d, dv, es)},
                         {SIMT2_TILE_128x64, 128 * 64, f32 && dv <= 128, simt2_fwd_dims<128, 64>(d, dv, es)}};
  int best = -1, best_blocks = 0;
  for (int i = 0; i < 3; ++i) {
    const Cand& c = cands[i];
    const size_t bytes = size_t(c.z.total) * es;
    if (!c.applies || bytes > lim.optin || (tile != SIMT2_TILE_AUTO && tile != c.code)) continue;
    const int blocks = simt2_blocks(bytes, lim);
    if (best < 0 || blocks > best_blocks || (blocks == best_blocks && c.area > cands[best].area)) {
      best = i;
      best_blocks = blocks;
    }
  }
  if (best < 0) return KERNEL_UNSUPPORTED;
  if constexpr (sizeof(T) == 4) {
    if (cands[best].code == SIMT2_TILE_64x64) return simt2_forward_nv<T, 64, 64>(p, cands[best].z, stream);
    if (cands[best].code == SIMT2_TILE_128x64) return simt2_forward_nv<T, 128, 64>(p, cands[best].z, stream);
  }
  return simt2_forward_nv<T, 64, 32>(p, cands[best].z, stream);
}

// Column chunks per thread (TX = 8 lanes of 4 columns): 2 up to 64, 4 up to 128, 8 up to 256 (F32).
template <class T, class F>
int simt2_by_width(int64_t w, F&& f) {
  if (w <= 64) return f(std::integral_constant<int, 2>());
  if (sizeof(T) == 8 || w <= 128) return f(std::integral_constant<int, 4>());
  if constexpr (sizeof(T) == 4) return f(std::integral_constant<int, 8>());
  return KERNEL_UNSUPPORTED;
}

template <class T>
int simt2_backward_t(const AttentionParams& p, cudaStream_t stream) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  const int es = int(sizeof(T));
  constexpr int BQ = 64, BK = 32;  // dQ pass: 64 rows, 32 keys per tile
  constexpr int KB = 64, KQ = 32;  // dK/dV pass: 64 keys, 32 rows per tile
  const Simt2BwdQDims zq = simt2_bwdq_dims<BQ, BK>(int(p.d), int(p.dv), es);
  const Simt2BwdKDims zk = simt2_bwdk_dims<KB, KQ>(int(p.d), int(p.dv), es);
  const bool pass_q = p.grad_q || p.grad_bias_full, pass_k = p.grad_k || p.grad_v;
  if ((pass_q && size_t(zq.total) * es > lim.optin) || (pass_k && size_t(zk.total) * es > lim.optin))
    return KERNEL_UNSUPPORTED;  // (before anything runs: v1 runs the whole backward)
  if (int e = rowsum_dout_out<T>(p, stream)) return e;
  if (pass_q) {
    const int64_t blocks = p.batch * p.heads * ((p.nq + BQ - 1) / BQ);
    const int e = simt2_by_width<T>(p.d, [&](auto nd) {
      return launch(simt2_backward_query_kernel<T, BQ, BK, 8, decltype(nd)::value>, blocks, size_t(zq.total) * es,
                    stream, p, zq);
    });
    if (e) return e;
  }
  if (pass_k) {
    const int64_t blocks = p.batch * p.kv_heads * ((p.nk + KB - 1) / KB);
    const int e = simt2_by_width<T>(std::max(p.d, p.dv), [&](auto nc) {
      constexpr int N = decltype(nc)::value;
      return launch(simt2_backward_key_kernel<T, KB, KQ, 8, N, N>, blocks, size_t(zk.total) * es, stream, p, zk);
    });
    if (e) return e;
  }
  return 0;
}
}  // namespace

int attention_simt_forward_version(const AttentionParams& p) {
  AttentionSimtSelection& s = attention_simt_selection();
  return attention_simt_choose(p.dtype, p.d, p.dv, device_arch_major(),
                               attention_simt_forward_code(s.forward.load(std::memory_order_relaxed)),
                               attention_simt_backward_code(s.backward.load(std::memory_order_relaxed)))
      .forward;
}

int attention_simt_backward_version(const AttentionParams& p) {
  AttentionSimtSelection& s = attention_simt_selection();
  return attention_simt_choose(p.dtype, p.d, p.dv, device_arch_major(),
                               attention_simt_forward_code(s.forward.load(std::memory_order_relaxed)),
                               attention_simt_backward_code(s.backward.load(std::memory_order_relaxed)))
      .backward;
}

// The process-wide choice (mk/kernels.inc attention_simt_select; mk/attention_simt_choice.h): read
// by attention_forward / attention_backward (forward.cu, backward.cu) from the next call on.
int attention_simt_select(int forward, int backward) {
  if (!attention_simt_select_valid(forward, backward)) return KERNEL_UNSUPPORTED;
  AttentionSimtSelection& sel = attention_simt_selection();
  sel.forward.store(forward, std::memory_order_relaxed);
  sel.backward.store(backward, std::memory_order_relaxed);
  return 0;
}

int simt2_attention_backward(const AttentionParams& p, void* stream) {
  if (!simt2_applies(p) || !p.workspace) return KERNEL_UNSUPPORTED;
  return p.dtype == MK_F32 ? simt2_backward_t<float>(p, as_stream(stream))
                           : simt2_backward_t<double>(p, as_stream(stream));
}

int simt2_attention_forward(const AttentionParams& p, void* stream, int tile) {
  if (!simt2_applies(p)) return KERNEL_UNSUPPORTED;
  return p.dtype == MK_F32 ? simt2_forward_t<float>(p, as_stream(stream), tile)
                           : simt2_forward_t<double>(p, as_stream(stream), tile);
}

}  // namespace cuda
}  // namespace mk
