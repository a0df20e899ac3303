// Softmax attention on the CPU: the forward pass (MK_MULTI_ISA: compiled for AVX2 and AVX-512).
// What the passes share, and the overview, in common.h.
#include "common.h"

namespace mk {
namespace cpu {
namespace MK_ISA_NS {
namespace {

// ---- forward ---------------------------------------------------------------------------------
// The forward works on transposed score tiles, st[c][r] = s(row r, key c), rows in the vector
// lanes: the running max, sum and rescale factors of a whole column of rows are vectors, so the
// online softmax needs no horizontal reductions and no per-row scalar code. Sᵀ = K Qᵀ reads the
// keys in place (Qᵀ is transposed once per query block) and O += P V reads Pᵀ with strides.
// Against the row-wise form it replaced (per-row horizontal max / sum, a scalar exp per row,
// vmath::exp), medians of alternating runs (benchmarks/results/cpu-ab-2026-12-02*.md, one
// thread): [1,4,4096,64] 118.5 -> 102.9 ms, causal [1,8,4096,64] 123.7 -> 105.4, D = 128 0.77x,
// D = 16 0.83x, one query row (NQ = 1) 0.64x; AVX2 [1,4,2048,64] 59.4 -> 52.6 (same-minute pair).

// st[c][r] = scale q_r·k_c + bias(r, c) for c < C, r < Rp (rows R..Rp come from zero columns of
// qt and are ignored), masked to -inf where key c0 + c is past row r's key_end.
template <class T>
void scores_t(const Head<T>& h, int64_t r0, int64_t R, int64_t Rp, int64_t c0, int64_t C, const T* qt, T* st,
              T* lim) {
  tile::gemm<T>(C, Rp, h.d, h.scale, h.k + c0 * h.ldk, h.ldk, 1, qt, BQ, st, BQ, false);
  if (h.bias) {
    for (int64_t r = 0; r < R; ++r) {
      const T* br = h.bias + (r0 + r) * h.nk + c0;
      for (int64_t c = 0; c < C; ++c) st[c * BQ + r] += br[c];
    }
  } else if (h.bias16) {
    for (int64_t r = 0; r < R; ++r) {
      const uint16_t* br = h.bias16 + (r0 + r) * h.nk + c0;
      if (h.half == MK_BF16)
        for (int64_t c = 0; c < C; ++c) st[c * BQ + r] += T(bf16_bits_to_f32(br[c]));
      else
        for (int64_t c = 0; c < C; ++c) st[c * BQ + r] += T(f16_bits_to_f32(br[c]));
    }
  }
  // key_end is non-decreasing in the row, so the first row has the fewest keys
  if (h.key_end(r0) >= c0 + C) return;
  for (int64_t r = 0; r < Rp; ++r)
    lim[r] = r < R ? T(std::min<int64_t>(std::max<int64_t>(h.key_end(r0 + r) - c0, 0), BK)) : T(BK);
  for (int64_t c = 0; c < C; ++c) {
    T* sc = st + c * BQ;
    const T cc = T(c);
#pragma omp simd
    for (int64_t r = 0; r < Rp; ++r) sc[r] = cc >= lim[r] ? neg_inf<T>() : sc[r];
  }
}

// One key tile of the online softmax on st (C keys x Rp row lanes): st becomes Pᵀ =
// exp(s − m_new); the running max m and sum l are updated and corr receives each row's rescale
// factor exp(m_old − m_new) (0 while a row has seen no key; rows with no key so far keep m = -inf
// and get P = 0).
template <class T>
void online_softmax_t(T* st, int64_t C, int64_t Rp, T* m, T* l, T* corr, T* mx) {
  constexpr int64_t W = tile::Vec<T>::W;
  // one vector of rows at a time, its running values in registers across the keys
  for (int64_t g = 0; g < Rp; g += W) {
    T a[W];
    for (int64_t j = 0; j < W; ++j) a[j] = m[g + j];
    for (int64_t c = 0; c < C; ++c) {
      const T* sc = st + c * BQ + g;
#pragma omp simd
      for (int64_t j = 0; j < W; ++j) a[j] = sc[j] > a[j] ? sc[j] : a[j];
    }
    for (int64_t j = 0; j < W; ++j) mx[g + j] = a[j];
  }
  // mx is now the new max; rows still at -inf subtract 0 instead (exp(-inf - 0) = 0, no NaN)
#pragma omp simd
  for (int64_t r = 0; r < Rp; ++r) {
    const T ms = mx[r] == neg_inf<T>() ? T(0) : mx[r];
    corr[r] = vmath::exp_nonpos(m[r] - ms);
    m[r] = mx[r];
    mx[r] = ms;
    l[r] *= corr[r];
  }
  for (int64_t g = 0; g < Rp; g += W) {
    T sum[W], sub[W];
    for (int64_t j = 0; j < W; ++j) {
      sum[j] = l[g + j];
      sub[j] = mx[g + j];
    }
    for (int64_t c = 0; c < C; ++c) {
      T* sc = st + c * BQ + g;
#pragma omp simd
      for (int64_t j = 0; j < W; ++j) {
        const T e = vmath::exp_nonpos(sc[j] - sub[j]);
        sc[j] = e;
        sum[j] += e;
      }
    }
    for (int64_t j = 0; j < W; ++j) l[g + j] = sum[j];
  }
}

template <class T>
void forward(const CpuParams& p, T* ws, int64_t per_thread) {
  const int64_t qb = row_blocks<T>(p.nq);
  const int64_t tasks = p.batch * p.heads * qb;
  constexpr int64_t W = tile::Vec<T>::W;
  parallel_region(attention_parallel(p, tasks), [&] {
    Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      // the last query blocks of a head see the most keys under a causal mask: run them first
      const int64_t b = t / (p.heads * qb), h = (t / qb) % p.heads, r0 = (qb - 1 - t % qb) * BQ;
      const Head<T> x = head<T>(p, b, h);
      const int64_t R = std::min(BQ, p.nq - r0), Rp = (R + W - 1) / W * W;
      T *m = w.rows, *l = w.rows + BQ, *corr = w.rows + 2 * BQ, *mx = w.rows + 3 * BQ, *lim = w.rows + 4 * BQ;
      T* acc = w.acc0;
      T* qt = w.acc1;  // Qᵀ [d][BQ], lanes R..Rp zero
      tile::transpose<T>(R, p.d, x.q + r0 * x.ldq, x.ldq, qt, BQ);
      if (Rp > R)
        for (int64_t k = 0; k < p.d; ++k) std::fill(qt + k * BQ + R, qt + k * BQ + Rp, T(0));
      for (int64_t r = 0; r < Rp; ++r) {
        m[r] = neg_inf<T>();
        l[r] = T(0);
      }
      std::fill_n(acc, R * p.dv, T(0));
      const int64_t end = x.key_end(r0 + R - 1);
      for (int64_t c0 = 0; c0 < end; c0 += BK) {
        const int64_t C = std::min(BK, end - c0);
        scores_t(x, r0, R, Rp, c0, C, qt, w.s, lim);
        online_softmax_t(w.s, C, Rp, m, l, corr, mx);
        for (int64_t r = 0; r < R; ++r)
          if (corr[r] != T(1)) {
            T* ar = acc + r * p.dv;
            const T cr = corr[r];
#pragma omp simd
            for (int64_t e = 0; e < p.dv; ++e) ar[e] *= cr;
          }
        tile::gemm<T>(R, p.dv, C, T(1), w.s, 1, BQ, x.v + c0 * x.ldv, x.ldv, acc, p.dv, true);
      }
      T* out = const_cast<T*>(x.out) + r0 * x.ldo;
      T* lse = p.lse ? static_cast<T*>(p.lse) + (b * p.heads + h) * p.nq + r0 : nullptr;
      for (int64_t r = 0; r < R; ++r) {
        const T inv = l[r] > T(0) ? T(1) / l[r] : T(0);
        for (int64_t e = 0; e < p.dv; ++e) out[r * x.ldo + e] = acc[r * p.dv + e] * inv;
        if (lse) lse[r] = l[r] > T(0) ? m[r] + std::log(l[r]) : neg_inf<T>();
      }
    }
  });
}

template <class T>
void run_forward(const AttentionParams& in) {
  Layout<T> l(in, false, false, false, false);  // the forward reads k and v in place
  forward<T>(l.p, l.scratch, l.per_thread);
}

// BF16 / F16: the F32 forward on widened copies, the output rounded.
void run_half_forward(const AttentionParams& in) {
  HalfCopies h(in);
  h.f.out = in.out ? h.o : nullptr;
  run_forward<float>(h.f);
  narrow(in.dtype, h.o, in.out, h.ov);
}

}  // namespace

int attention_forward(const AttentionParams& p, void*) {
  if (p.dtype == MK_F32) run_forward<float>(p);
  else if (is_half(p.dtype)) run_half_forward(p);
  else run_forward<double>(p);
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (AVX2 build only) -------------------------------------------------------------
namespace avx512 {
int attention_forward(const AttentionParams&, void*);
}  // namespace avx512

int attention_forward(const AttentionParams& p, void* s) {
  return isa_level() >= 3 ? avx512::attention_forward(p, s) : avx2::attention_forward(p, s);
}
// Bytes of workspace of every pass. 16-bit types: the F32 kernels' workspace, then F32 copies of
// q, k, v, out, dout, dq, dk, dv (O((Nq + Nk)·D); the bias and the full dS are converted tile by
// tile).
int64_t attention_workspace(const AttentionParams& p, int threads) {
  if (is_half(p.dtype)) return HalfRegions::base_bytes(p, threads) + 4 * HalfRegions(p).floats();
  return plain_workspace_bytes(p, threads, p.dtype == MK_F32 ? 4 : 8);
}
#endif

}  // namespace cpu
}  // namespace mk

#ifndef MK_ISA_AVX512
#include "mk/attention_tc_choice.h"
#include "mk/attention_simt_choice.h"
namespace mk {
namespace cpu {
// The twin of the CUDA library's choice of tensor-core kernel (mk/kernels.inc attention_tc_select):
// the CPU runs no tensor-core kernels, so there is nothing to store; the codes are checked alike.
int attention_tc_select(int forward, int backward, int second) {
  return attention_tc_select_valid(forward, backward, second) ? 0 : KERNEL_UNSUPPORTED;
}
// The twin of the CUDA library's choice of SIMT kernel (mk/kernels.inc attention_simt_select): the
// CPU has one kernel per pass, so there is nothing to store; the codes are checked alike.
int attention_simt_select(int forward, int backward) {
  return attention_simt_select_valid(forward, backward) ? 0 : KERNEL_UNSUPPORTED;
}
}  // namespace cpu
}  // namespace mk
#endif
