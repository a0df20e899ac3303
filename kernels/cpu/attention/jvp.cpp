// Softmax attention on the CPU: the forward-mode product (MK_MULTI_ISA: compiled for AVX2 and
// AVX-512). What the passes share, and the overview, in common.h.
#include "common.h"

namespace mk {
namespace cpu {
namespace MK_ISA_NS {
namespace {

// ---- JVP ------------------------------------------------------------------------------------------
// tangents: gq = tq, gk = tk, gv = tv, gbias = tbias (full). tS = scale (tq kᵀ + q tkᵀ) + tbias.
template <class T>
void jvp(const CpuParams& p, T* ws, int64_t per_thread) {
  const int64_t qb = row_blocks<T>(p.nq);
  const int64_t tasks = p.batch * p.heads * qb;
  parallel_region(attention_parallel(p, tasks), [&] {
    Scratch<T> w(ws + int64_t(omp_get_thread_num()) * per_thread, p.d, p.dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / (p.heads * qb), h = (t / qb) % p.heads, r0 = (t % qb) * BQ;
      const Head<T> x = head<T>(p, b, h);
      const int64_t R = std::min(BQ, p.nq - r0);
      const int64_t base = (b * p.heads + h) * p.nq + r0;
      T* c = w.rows;
      T* a1 = w.acc0;  // Σ P tS v + P tv
      for (int64_t r = 0; r < R; ++r) c[r] = T(0);
      std::fill_n(a1, R * p.dv, T(0));
      const int64_t end = x.key_end(r0 + R - 1);
      for (int64_t c0 = 0; c0 < end; c0 += BK) {
        const int64_t C = std::min(BK, end - c0);
        w.kt = tile_t(x.kp, p.d, c0);
        if (x.gk) w.gkt = tile_t(x.gkp, p.d, c0);
        scores(x, r0, R, c0, C, w.kt, w.s);
        probabilities(x, r0, R, C, w.s);
        g_tile(x, w, r0, R, c0, C);  // tS
        for (int64_t r = 0; r < R; ++r) {
          const T *__restrict sr = w.s + r * BK, *__restrict gr = w.g + r * BK;
          T* __restrict tr = w.t + r * BK;
#pragma omp simd
          for (int64_t cc = 0; cc < C; ++cc) tr[cc] = sr[cc] * gr[cc];
        }
        serial_row_sums<1>(R, C, {c}, [&](int64_t r, int64_t cc, T* a) { a[0] += w.t[r * BK + cc]; });
        tile::gemm<T>(R, p.dv, C, T(1), w.t, BK, 1, x.v + c0 * x.ldv, x.ldv, a1, p.dv, true);
        if (x.gv) tile::gemm<T>(R, p.dv, C, T(1), w.s, BK, 1, x.gv + c0 * x.ldgv, x.ldgv, a1, p.dv, true);
      }
      T* to = row_at<T>(p.tan_out, p.tos, b, h, r0);
      for (int64_t r = 0; r < R; ++r) {
        const T* o = x.out + (r0 + r) * x.ldo;
        for (int64_t e = 0; e < p.dv; ++e) to[r * p.tos[2] + e] = a1[r * p.dv + e] - c[r] * o[e];
        if (p.tan_lse) static_cast<T*>(p.tan_lse)[base + r] = c[r];
      }
    }
  });
}

template <class T>
void run_jvp(const AttentionParams& in) {
  Layout<T> l(in, true, false, true, false);
  jvp<T>(l.p, l.scratch, l.per_thread);
}

}  // namespace

int attention_jvp(const AttentionParams& in, void*) {
  if (is_half(in.dtype)) return KERNEL_UNSUPPORTED;  // native/ runs 16-bit calls on F32 copies
  AttentionParams p = in;
  p.second = attention_tangents(in);
  if (p.dtype == MK_F32) run_jvp<float>(p);
  else run_jvp<double>(p);
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (AVX2 build only) -------------------------------------------------------------
namespace avx512 {
int attention_jvp(const AttentionParams&, void*);
}  // namespace avx512

int attention_jvp(const AttentionParams& p, void* s) {
  return isa_level() >= 3 ? avx512::attention_jvp(p, s) : avx2::attention_jvp(p, s);
}
#endif

}  // namespace cpu
}  // namespace mk
