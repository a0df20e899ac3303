// Softmax attention on the CPU: the backward pass (MK_MULTI_ISA: compiled for AVX2 and AVX-512).
// What the passes share, and the overview, in common.h.
#include "common.h"

namespace mk {
namespace cpu {
namespace MK_ISA_NS {
namespace {

// ---- backward --------------------------------------------------------------------------------
// P (in w.s), dP = dO vᵀ and dS = P ∘ (dP − D) on one tile (dS in place of dP, see Scratch); D
// holds the tile rows' statistic.
template <class T>
void tile_ds(const Head<T>& x, const Scratch<T>& w, int64_t r0, int64_t R, int64_t c0, int64_t C, const T* D) {
  scores(x, r0, R, c0, C, w.kt, w.s);
  probabilities(x, r0, R, C, w.s);
  tile::gemm<T>(R, C, x.dv, T(1), x.dout + r0 * x.lddo, x.lddo, 1, w.vt, BK, w.dp, BK, false);
  for (int64_t r = 0; r < R; ++r)
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) w.ds[r * BK + c] = w.s[r * BK + c] * (w.dp[r * BK + c] - D[r]);
}

// The full dS (the bias gradient) for a tile. Masked entries are P·(dP − D) with P = 0, a zero
// whose sign depends on dP − D; adding +0 makes every such zero +0, the value of entries no
// tile reaches, so the result does not depend on which tiles a pass happens to cover.
// `at` is the element offset of the tile in grad_bias_full (rows of ld = Nk); 16-bit calls round here.
template <class T>
void store_ds(const CpuParams& p, const T* ds, int64_t R, int64_t C, int64_t at) {
  const int64_t ld = p.nk;
  if (is_half(p.dtype)) {
    uint16_t* full = static_cast<uint16_t*>(p.grad_bias_full) + at;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) {
        const float x = float(ds[r * BK + c] + T(0));
        full[r * ld + c] = p.dtype == MK_BF16 ? f32_to_bf16_bits(x) : f32_to_f16_bits(x);
      }
    return;
  }
  T* full = static_cast<T*>(p.grad_bias_full) + at;
  for (int64_t r = 0; r < R; ++r)
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) full[r * ld + c] = ds[r * BK + c] + T(0);
}

// dK and dV of key block c0 of KV head (b, hk), summed over the query heads sharing it, written
// to grad_k/grad_v. With dq_base (the dQ rows of those heads) it also adds scale dS k to dQ and
// writes the full dS when it is wanted: the one-pass form. Sums run in the same order either way.
// (Forced inline: called out of line, the one-pass backward measured ~12 % slower.)
template <class T>
__attribute__((always_inline)) inline void key_block(const CpuParams& p, Scratch<T>& w, int64_t b, int64_t hk,
                                                     int64_t c0, const T* Dall, T* dq_base) {
  const int64_t group = p.heads / p.kv_heads;
  const int64_t C = std::min(BK, p.nk - c0);
  T* dk = w.kacc0;
  T* dv = w.kacc1;
  std::fill_n(dk, C * p.d, T(0));
  std::fill_n(dv, C * p.dv, T(0));
  for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
    const Head<T> x = head<T>(p, b, h);
    if (c0 >= x.len) continue;
    // the keys of the block this batch entry has: padding keys (past its length) may hold anything,
    // NaN included, and must not reach a sum (0 · NaN), so the tile stops at the length; their dK,
    // dV rows stay zero
    const int64_t Ck = std::min(C, x.len - c0);
    w.kt = tile_t(x.kp, p.d, c0);
    w.vt = tile_t(x.vp, p.dv, c0);
    const T* Dh = Dall + (b * p.heads + h) * p.nq;
    T* dqh = dq_base ? dq_base + (h - hk * group) * p.gqs[1] : nullptr;
    for (int64_t r0 = x.first_row(c0) / BQ * BQ; r0 < p.nq; r0 += BQ) {
      const int64_t R = std::min(BQ, p.nq - r0);
      tile_ds(x, w, r0, R, c0, Ck, Dh + r0);
      if (dq_base && p.grad_bias_full)
        store_ds(p, w.ds, R, Ck, ((b * p.heads + h) * p.nq + r0) * p.nk + c0);
      // dV += Pᵀ dO,  dK += scale dSᵀ q,  dQ += scale dS k
      if (p.grad_v) tile::gemm<T>(Ck, p.dv, R, T(1), w.s, 1, BK, x.dout + r0 * x.lddo, x.lddo, dv, p.dv, true);
      if (p.grad_k) tile::gemm<T>(Ck, p.d, R, x.scale, w.ds, 1, BK, x.q + r0 * x.ldq, x.ldq, dk, p.d, true);
      if (dqh)
        tile::gemm<T>(R, p.d, Ck, x.scale, w.ds, BK, 1, x.k + c0 * x.ldk, x.ldk, dqh + r0 * p.gqs[2], p.gqs[2], true);
    }
  }
  if (p.grad_k) store_rows(static_cast<T*>(p.grad_k) + b * p.gks[0] + hk * p.gks[1] + c0 * p.gks[2], p.gks[2], dk, C, p.d);
  if (p.grad_v) store_rows(static_cast<T*>(p.grad_v) + b * p.gvs[0] + hk * p.gvs[1] + c0 * p.gvs[2], p.gvs[2], dv, C, p.dv);
}

// One task per (batch, KV head): its key blocks in order, dQ accumulated in place in the output
// rows the task owns.
template <class T>
void backward_per_head(const CpuParams& p, T* ws, int64_t per_thread, const T* Dall) {
  const int64_t group = p.heads / p.kv_heads;
  const int64_t tasks = p.batch * p.kv_heads;
  parallel_region(attention_parallel(p, tasks), [&] {
    Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / p.kv_heads, hk = t % p.kv_heads;
      T* dq_base = p.grad_q ? static_cast<T*>(p.grad_q) + b * p.gqs[0] + hk * group * p.gqs[1] : nullptr;
      if (dq_base)
        for (int64_t g = 0; g < group; ++g)
          for (int64_t r = 0; r < p.nq; ++r) std::fill_n(dq_base + g * p.gqs[1] + r * p.gqs[2], p.d, T(0));
      for (int64_t c0 = 0; c0 < p.nk; c0 += BK) key_block(p, w, b, hk, c0, Dall, dq_base);
    }
  });
}

template <class T>
void backward(const CpuParams& p, T* ws, int64_t per_thread, T* Dall) {
  rowsum_dout_out(p, Dall);
  const int64_t qb = row_blocks<T>(p.nq);
  // With enough KV heads to keep every thread busy, one pass per KV head computes dK, dV and dQ
  // from the same tiles (5 tile products instead of 7). Each task owns its query heads' dQ rows,
  // and every sum runs in the same order as in the two-pass form, so the result is the same
  // bit for bit whichever form runs and however many threads there are.
  if (p.batch * p.kv_heads >= 2 * int64_t(omp_get_max_threads()) || omp_get_max_threads() == 1) {
    backward_per_head(p, ws, per_thread, Dall);
    return;
  }
  // dQ (and the full dS when asked for): query blocks in parallel
  if (p.grad_q || p.grad_bias_full) {
    const int64_t tasks = p.batch * p.heads * qb;
    parallel_region(attention_parallel(p, tasks), [&] {
      Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t b = t / (p.heads * qb), h = (t / qb) % p.heads, r0 = (t % qb) * BQ;
        const Head<T> x = head<T>(p, b, h);
        const int64_t R = std::min(BQ, p.nq - r0);
        const T* D = Dall + (b * p.heads + h) * p.nq + r0;
        T* dq = w.acc0;
        for (int64_t r = 0; r < R * p.d; ++r) dq[r] = T(0);
        const int64_t end = x.key_end(r0 + R - 1);
        for (int64_t c0 = 0; c0 < end; c0 += BK) {
          const int64_t C = std::min(BK, end - c0);
          w.kt = tile_t(x.kp, p.d, c0);
          w.vt = tile_t(x.vp, p.dv, c0);
          tile_ds(x, w, r0, R, c0, C, D);
          if (p.grad_bias_full) store_ds(p, w.ds, R, C, ((b * p.heads + h) * p.nq + r0) * p.nk + c0);
          if (p.grad_q) tile::gemm<T>(R, p.d, C, x.scale, w.ds, BK, 1, x.k + c0 * x.ldk, x.ldk, dq, p.d, true);
        }
        if (p.grad_q)
          store_rows(static_cast<T*>(p.grad_q) + b * p.gqs[0] + h * p.gqs[1] + r0 * p.gqs[2], p.gqs[2], dq, R, p.d);
      }
    });
  }
  // dK, dV: key blocks in parallel, each summing over the query heads that share its KV head
  if (p.grad_k || p.grad_v) {
    const int64_t kb = (p.nk + BK - 1) / BK;
    const int64_t tasks = p.batch * p.kv_heads * kb;
    parallel_region(attention_parallel(p, tasks), [&] {
      Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < tasks; ++t)
        key_block<T>(p, w, t / (p.kv_heads * kb), (t / kb) % p.kv_heads, (t % kb) * BK, Dall, nullptr);
    });
  }
}

template <class T>
void run_backward(const AttentionParams& in) {
  Layout<T> l(in, true, true, false, false);
  backward<T>(l.p, l.scratch, l.per_thread, l.D);
}

// BF16 / F16: the F32 backward on widened copies (out and dout too), the gradients rounded.
void run_half_backward(const AttentionParams& in) {
  HalfCopies h(in);
  widen(in.dtype, in.out, h.o, h.ov);
  widen(in.dtype, in.dout, h.dout, h.ov);
  h.f.out = h.o;
  h.f.dout = h.dout;
  h.f.grad_q = in.grad_q ? h.dq : nullptr;
  h.f.grad_k = in.grad_k ? h.dk : nullptr;
  h.f.grad_v = in.grad_v ? h.dv : nullptr;
  if (in.grad_q) std::fill_n(h.dq, h.qd, 0.f);
  if (in.grad_k) std::fill_n(h.dk, h.kd, 0.f);
  if (in.grad_v) std::fill_n(h.dv, h.kv, 0.f);
  run_backward<float>(h.f);
  narrow(in.dtype, h.dq, in.grad_q, h.qd);
  narrow(in.dtype, h.dk, in.grad_k, h.kd);
  narrow(in.dtype, h.dv, in.grad_v, h.kv);
}

}  // namespace

int attention_backward(const AttentionParams& p, void*) {
  if (p.dtype == MK_F32) run_backward<float>(p);
  else if (is_half(p.dtype)) run_half_backward(p);
  else run_backward<double>(p);
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (AVX2 build only) -------------------------------------------------------------
namespace avx512 {
int attention_backward(const AttentionParams&, void*);
}  // namespace avx512

int attention_backward(const AttentionParams& p, void* s) {
  return isa_level() >= 3 ? avx512::attention_backward(p, s) : avx2::attention_backward(p, s);
}
#endif

}  // namespace cpu
}  // namespace mk
