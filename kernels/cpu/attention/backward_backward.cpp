// Softmax attention on the CPU: the backward of the backward (MK_MULTI_ISA: compiled for AVX2 and
// AVX-512). What the passes share, and the overview, in common.h.
//
// Derivation. Per row i (masked entries have P = 0 and drop out of every sum), with
// dP = dO vᵀ, D = rowsum(dO ∘ O) = rowsum(P ∘ dP) and dS = P ∘ (dP − D), the backward is
//   dq = scale dS k,   dk = scale dSᵀ q,   dv = Pᵀ dO,   dbias = dS.
// Its vector-Jacobian product takes cotangents (ĝq, ĝk, ĝv, ĝb) of (dq, dk, dv, dbias) and returns
// those of (q, k, v, dO, bias). Collect the dependence on S in one tangent-like tile
//   G = scale (ĝq kᵀ + q ĝkᵀ) + ĝb        (the pairing of dS with the cotangents: Σ dS ∘ G)
// so that ⟨ĝ, backward⟩ = Σ dS ∘ G + Σ P ∘ (dO ĝvᵀ), where G is linear in q and k. Differentiating
// Σ dS ∘ G = Σ P ∘ (dP − D) ∘ G through P (with D = Σ_j P dP) and through dP, then through the
// softmax (∂P/∂S = diag(P) − P Pᵀ per row), gives, with C = rowsum(P ∘ G):
//   ḡP = dO ĝvᵀ + G ∘ (dP − D) − C dP       (the cotangent of P)
//   E = rowsum(P ∘ ḡP),   ḡS = P ∘ (ḡP − E)   (through the softmax)
//   ḡdP = P ∘ (G − C)                       (the cotangent of dP = dO vᵀ)
// and the results, where dS ĝk and dSᵀ ĝq come from G's dependence on q and k:
//   q̄ = scale (ḡS k + dS ĝk),   k̄ = scale (ḡSᵀ q + dSᵀ ĝq),   v̄ = ḡdPᵀ dO,
//   dŌ = P ĝv + ḡdP v,   b̄ = ḡS.
// Three tiled passes: row statistics C and E (with D from the backward's preprocess), a query
// pass for q̄, dŌ and b̄, a key pass for k̄ and v̄; every output tile has one owner, so the result
// is deterministic. Checked against finite differences (GradCheck, order 2, F64) in AttentionTest.
#include "common.h"

namespace mk {
namespace cpu {
namespace MK_ISA_NS {
namespace {

// ---- backward of the backward -----------------------------------------------------------------
// Per tile, with P, dP = dO vᵀ, G = scale (gq kᵀ + q gkᵀ) + gbias, dS = P ∘ (dP − D):
//   ḡP = dO gvᵀ + G ∘ (dP − D) − C dP,  ḡS = P ∘ (ḡP − E),  ḡdP = P ∘ (G − C)
//   C = rowsum(P ∘ G),  E = rowsum(P ∘ ḡP) = dO·(P gv) + rowsum(P ∘ G ∘ dP) − 2 C D
//   q' = scale (ḡS k + dS gk),  dO' = P gv + ḡdP v,  bias' = ḡS
//   k' = scale (ḡSᵀ q + dSᵀ gq),  v' = ḡdPᵀ dO
template <class T>
void tile_second(const Head<T>& x, const Scratch<T>& w, int64_t r0, int64_t R, int64_t c0, int64_t C, const T* D,
                 const T* Cs, const T* E) {
  scores(x, r0, R, c0, C, w.kt, w.s);
  probabilities(x, r0, R, C, w.s);
  tile::gemm<T>(R, C, x.dv, T(1), x.dout + r0 * x.lddo, x.lddo, 1, w.vt, BK, w.dp, BK, false);
  g_tile(x, w, r0, R, c0, C);
  if (x.gv) tile::gemm<T>(R, C, x.dv, T(1), x.dout + r0 * x.lddo, x.lddo, 1, w.gvt, BK, w.t, BK, false);
  // (vectorised along the keys: each element's expression as before, so the same bits; ds, gs,
  // gdp overwrite dp, g, t element by element, after the element's reads: see Scratch)
  const bool gv = x.gv != nullptr;
  for (int64_t r = 0; r < R; ++r) {
    const T Dr = D[r], Cr = Cs[r], Er = E[r];
    const T* s = w.s + r * BK;
    T *dpr = w.dp + r * BK, *gr = w.g + r * BK, *t = w.t + r * BK;
    T *ds = w.ds + r * BK, *gs = w.gs + r * BK, *gdp = w.gdp + r * BK;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const T P = s[c], dp = dpr[c], g = gr[c], tc = gv ? t[c] : T(0);
      ds[c] = P * (dp - Dr);
      const T gP = tc + g * (dp - Dr) - Cr * dp;
      gs[c] = P * (gP - Er);
      gdp[c] = P * (g - Cr);
    }
  }
}

template <class T>
void backward_backward(const CpuParams& p, T* ws, int64_t per_thread, T* Dall, T* Call, T* Eall) {
  rowsum_dout_out(p, Dall);
  const int64_t qb = row_blocks<T>(p.nq);
  const int64_t qtasks = p.batch * p.heads * qb;
  // pass 1: row statistics C and E
  parallel_region(attention_parallel(p, qtasks), [&] {
    Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < qtasks; ++t) {
      const int64_t b = t / (p.heads * qb), h = (t / qb) % p.heads, r0 = (t % qb) * BQ;
      const Head<T> x = head<T>(p, b, h);
      const int64_t R = std::min(BQ, p.nq - r0);
      const int64_t base = (b * p.heads + h) * p.nq + r0;
      T* Cr = w.rows;
      T* Fr = w.rows + BQ;
      T* pgv = w.acc0;
      for (int64_t r = 0; r < R; ++r) Cr[r] = Fr[r] = T(0);
      std::fill_n(pgv, R * p.dv, T(0));
      const int64_t end = x.key_end(r0 + R - 1);
      for (int64_t c0 = 0; c0 < end; c0 += BK) {
        const int64_t C = std::min(BK, end - c0);
        w.kt = tile_t(x.kp, p.d, c0);
        w.vt = tile_t(x.vp, p.dv, c0);
        if (x.gk) w.gkt = tile_t(x.gkp, p.d, c0);
        scores(x, r0, R, c0, C, w.kt, w.s);
        probabilities(x, r0, R, C, w.s);
        tile::gemm<T>(R, C, p.dv, T(1), x.dout + r0 * x.lddo, x.lddo, 1, w.vt, BK, w.dp, BK, false);
        g_tile(x, w, r0, R, c0, C);
        serial_row_sums<2>(R, C, {Cr, Fr}, [&](int64_t r, int64_t c, T* a) {
          const int64_t o = r * BK + c;
          const T pg = w.s[o] * w.g[o];
          a[0] += pg;
          a[1] = vmath::fma(pg, w.dp[o], a[1]);  // the contraction the plain loop got, written out
        });
        if (x.gv) tile::gemm<T>(R, p.dv, C, T(1), w.s, BK, 1, x.gv + c0 * x.ldgv, x.ldgv, pgv, p.dv, true);
      }
      for (int64_t r = 0; r < R; ++r) {
        const T A = x.gv ? tile::dot(x.dout + (r0 + r) * x.lddo, pgv + r * p.dv, p.dv) : T(0);
        Call[base + r] = Cr[r];
        Eall[base + r] = A + Fr[r] - T(2) * Cr[r] * Dall[base + r];
      }
    }
  });
  // pass 2: q', dO' and the bias cotangent (query blocks)
  if (p.cot_q || p.cot_dout || p.cot_bias_full) {
    parallel_region(attention_parallel(p, qtasks), [&] {
      Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < qtasks; ++t) {
        const int64_t b = t / (p.heads * qb), h = (t / qb) % p.heads, r0 = (t % qb) * BQ;
        const Head<T> x = head<T>(p, b, h);
        const int64_t R = std::min(BQ, p.nq - r0);
        const int64_t base = (b * p.heads + h) * p.nq + r0;
        T* gq = w.acc0;
        T* gdo = w.acc1;
        std::fill_n(gq, R * p.d, T(0));
        std::fill_n(gdo, R * p.dv, T(0));
        const int64_t end = x.key_end(r0 + R - 1);
        for (int64_t c0 = 0; c0 < end; c0 += BK) {
          const int64_t C = std::min(BK, end - c0);
          w.kt = tile_t(x.kp, p.d, c0);
          w.vt = tile_t(x.vp, p.dv, c0);
          if (x.gk) w.gkt = tile_t(x.gkp, p.d, c0);
          if (x.gv) w.gvt = tile_t(x.gvp, p.dv, c0);
          tile_second(x, w, r0, R, c0, C, Dall + base, Call + base, Eall + base);
          if (p.cot_bias_full) {
            T* full = static_cast<T*>(p.cot_bias_full) + base * p.nk + c0;
            for (int64_t r = 0; r < R; ++r) std::memcpy(full + r * p.nk, w.gs + r * BK, sizeof(T) * size_t(C));
          }
          tile::gemm<T>(R, p.d, C, x.scale, w.gs, BK, 1, x.k + c0 * x.ldk, x.ldk, gq, p.d, true);
          if (x.gk) tile::gemm<T>(R, p.d, C, x.scale, w.ds, BK, 1, x.gk + c0 * x.ldgk, x.ldgk, gq, p.d, true);
          if (x.gv) tile::gemm<T>(R, p.dv, C, T(1), w.s, BK, 1, x.gv + c0 * x.ldgv, x.ldgv, gdo, p.dv, true);
          tile::gemm<T>(R, p.dv, C, T(1), w.gdp, BK, 1, x.v + c0 * x.ldv, x.ldv, gdo, p.dv, true);
        }
        if (p.cot_q) store_rows(row_at<T>(p.cot_q, p.cqs, b, h, r0), p.cqs[2], gq, R, p.d);
        if (p.cot_dout) store_rows(row_at<T>(p.cot_dout, p.cdos, b, h, r0), p.cdos[2], gdo, R, p.dv);
      }
    });
  }
  // pass 3: k' and v' (key blocks over the query heads of each KV head)
  if (p.cot_k || p.cot_v) {
    const int64_t kb = (p.nk + BK - 1) / BK;
    const int64_t group = p.heads / p.kv_heads;
    const int64_t tasks = p.batch * p.kv_heads * kb;
    parallel_region(attention_parallel(p, tasks), [&] {
      Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t b = t / (p.kv_heads * kb), hk = (t / kb) % p.kv_heads, c0 = (t % kb) * BK;
        const int64_t C = std::min(BK, p.nk - c0);
        T* gk = w.kacc0;
        T* gv = w.kacc1;
        std::fill_n(gk, C * p.d, T(0));
        std::fill_n(gv, C * p.dv, T(0));
        for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
          const Head<T> x = head<T>(p, b, h);
          if (c0 >= x.len) continue;
          // (the keys this batch entry has: padding keys may hold anything, NaN included; their
          // rows of k' and v' stay zero, as in the backward's key_block)
          const int64_t Ck = std::min(C, x.len - c0);
          w.kt = tile_t(x.kp, p.d, c0);
          w.vt = tile_t(x.vp, p.dv, c0);
          if (x.gk) w.gkt = tile_t(x.gkp, p.d, c0);
          if (x.gv) w.gvt = tile_t(x.gvp, p.dv, c0);
          const int64_t hb = (b * p.heads + h) * p.nq;
          for (int64_t r0 = x.first_row(c0) / BQ * BQ; r0 < p.nq; r0 += BQ) {
            const int64_t R = std::min(BQ, p.nq - r0);
            tile_second(x, w, r0, R, c0, Ck, Dall + hb + r0, Call + hb + r0, Eall + hb + r0);
            tile::gemm<T>(Ck, p.d, R, x.scale, w.gs, 1, BK, x.q + r0 * x.ldq, x.ldq, gk, p.d, true);
            if (x.gq) tile::gemm<T>(Ck, p.d, R, x.scale, w.ds, 1, BK, x.gq + r0 * x.ldgq, x.ldgq, gk, p.d, true);
            tile::gemm<T>(Ck, p.dv, R, T(1), w.gdp, 1, BK, x.dout + r0 * x.lddo, x.lddo, gv, p.dv, true);
          }
        }
        if (p.cot_k) store_rows(row_at<T>(p.cot_k, p.cks, b, hk, c0), p.cks[2], gk, C, p.d);
        if (p.cot_v) store_rows(row_at<T>(p.cot_v, p.cvs, b, hk, c0), p.cvs[2], gv, C, p.dv);
      }
    });
  }
}

template <class T>
void run_backward_backward(const AttentionParams& in) {
  Layout<T> l(in, true, true, true, true);
  backward_backward<T>(l.p, l.scratch, l.per_thread, l.D, l.C, l.E);
}

}  // namespace

int attention_backward_backward(const AttentionParams& in, void*) {
  if (is_half(in.dtype)) return KERNEL_UNSUPPORTED;  // native/ runs 16-bit calls on F32 copies
  AttentionParams p = in;
  p.second = attention_cotangents(in);
  if (p.dtype == MK_F32) run_backward_backward<float>(p);
  else run_backward_backward<double>(p);
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (AVX2 build only) -------------------------------------------------------------
namespace avx512 {
int attention_backward_backward(const AttentionParams&, void*);
}  // namespace avx512

int attention_backward_backward(const AttentionParams& p, void* s) {
  return isa_level() >= 3 ? avx512::attention_backward_backward(p, s) : avx2::attention_backward_backward(p, s);
}
#endif

}  // namespace cpu
}  // namespace mk
