// Softmax attention on CUDA: the backward of the backward (SIMT, F32/F64). The derivation is in
// kernels/cpu/attention/backward_backward.cpp; shared parts and the overview in simt.cuh.
#include "simt.cuh"
#include "mk/attention_simt_choice.h"
#include "simt2_dd.cuh"
#include "tensor_core_dd.cuh"

namespace mk {
namespace cuda {
namespace {

// ---- backward of the backward -------------------------------------------------------------------
// Per tile, with P, dP = dO vᵀ, G = scale (gq kᵀ + q gkᵀ) + gbias, dS = P ∘ (dP − D):
//   ḡP = dO gvᵀ + G ∘ (dP − D) − C dP,  ḡS = P ∘ (ḡP − E),  ḡdP = P ∘ (G − C)
//   C = rowsum(P ∘ G),  E = rowsum(P ∘ ḡP) = dO·(P gv) + rowsum(P ∘ G ∘ dP) − 2 C D
//   q' = scale (ḡS k + dS gk),  dO' = P gv + ḡdP v,  bias' = ḡS
//   k' = scale (ḡSᵀ q + dSᵀ gq),  v' = ḡdPᵀ dO

// Elementwise part of a double-backward tile: from raw scores (s), dP (dp), G (g, when have_g) and
// T = dO gvᵀ (tt, when x.gv) to P (s), dS (dp), ḡdP (g) and ḡS (tt); ḡS also goes to the full bias
// cotangent when gbias_out is not null. Rows [r0, r0 + R), keys [c0, c0 + C).
template <class T>
__device__ void second_tile(const HeadView<T>& x, const Tiles& t, int64_t r0, int R, int64_t c0, int C, bool have_g,
                            T* s, T* dp, T* g, T* tt, const T* lse, const T* dd, const T* cc, const T* ee,
                            T* gbias_out) {
  for (int idx = threadIdx.x; idx < R * C; idx += kThreads) {
    const int r = idx / C, c = idx - r * C, o = r * t.lds + c;
    const int64_t i = r0 + r, j = c0 + c;
    if (j >= x.key_end(i)) {  // masked: set, not multiplied (padding keys may hold NaN: 0 · NaN)
      s[o] = dp[o] = g[o] = tt[o] = T(0);
      if (gbias_out) gbias_out[i * x.nk + j] = T(0);
      continue;
    }
    const T P = prob(x, s[o], i, j, lse[r]);
    const T dpv = dp[o];
    T gval = have_g ? g[o] : T(0);
    if (x.gbias) gval += x.gbias[i * x.nk + j];
    const T tv = x.gv ? tt[o] : T(0);
    const T gP = tv + gval * (dpv - dd[r]) - cc[r] * dpv;
    const T gs = P * (gP - ee[r]);
    s[o] = P;
    dp[o] = P * (dpv - dd[r]);
    g[o] = P * (gval - cc[r]);
    tt[o] = gs;
    if (gbias_out) gbias_out[i * x.nk + j] = gs;
  }
}

// Row statistics, query tiles: C = rowsum(P ∘ G), F = rowsum(P ∘ G ∘ dP), A = dO·(P gv);
// reduce: C and E = A + F − 2 C D into the workspace.
template <class T>
__global__ void __launch_bounds__(kThreads) second_stats_kernel(const AttentionParams p, const Tiles t) {
  const SecondStatsLayout L(t);
  T* const sm = smem_base<T>();
  T *qs = sm + L.q, *gqs = sm + L.gq, *dos = sm + L.dout, *pgv = sm + L.pgv, *xs = sm + L.x, *ys = sm + L.y;
  T *s = sm + L.s, *dp = sm + L.dp, *g = sm + L.g, *lse = sm + L.lse, *dd = sm + L.dd, *cs = sm + L.cs, *fs = sm + L.fs;
  const TileIndex ti = tile_index(p.heads, p.nq, t.bq);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  const int64_t rows = p.batch * p.heads * p.nq;
  T* Dall = static_cast<T*>(p.workspace);
  T* Call = Dall + rows;
  T* Eall = Dall + 2 * rows;

  load_rows(qs, t.ldd, x.q, r0, R, t.d);
  load_rows(dos, t.ldv, x.dout, r0, R, t.dv);
  if (x.gq) load_rows(gqs, t.ldd, x.gq, r0, R, t.d);
  if (x.gv) zero_rows(pgv, t.ldv, R, t.dv);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    lse[r] = x.lse[r0 + r];
    dd[r] = Dall[x.base + r0 + r];
    cs[r] = T(0);
    fs[r] = T(0);
  }
  __syncthreads();
  const int64_t end = x.key_end(r0 + R - 1);
  for (int64_t c0 = 0; c0 < end; c0 += t.bk) {
    const int C = int(std::min<int64_t>(t.bk, end - c0));
    load_rows(xs, t.ldd, x.k, c0, C, t.d);
    if (x.gk) load_rows(ys, t.ldd, x.gk, c0, C, t.d);
    __syncthreads();
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, xs, t.ldd, s, t.lds, false);  // S
    const bool have_g = g_tile(x, t, R, C, qs, gqs, xs, ys, g);                // G (barrier inside)
    __syncthreads();
    load_rows(xs, t.ldv, x.v, c0, C, t.dv);
    if (x.gv) load_rows(ys, t.ldv, x.gv, c0, C, t.dv);
    __syncthreads();
    gemm_abt<T>(R, C, t.dv, T(1), dos, t.ldv, xs, t.ldv, dp, t.lds, false);  // dP
    __syncthreads();
    for (int r = warp; r < R; r += kWarps) {
      const int64_t i = r0 + r;
      T csum = T(0), fsum = T(0);
      for (int c = lane; c < C; c += 32) {
        const int o = r * t.lds + c;
        const int64_t j = c0 + c;
        const T P = prob(x, s[o], i, j, lse[r]);
        T gval = have_g ? g[o] : T(0);
        if (x.gbias) gval += x.gbias[i * x.nk + j];
        const T pg = P * gval;
        csum += pg;
        fsum += pg * dp[o];
        s[o] = P;
      }
      csum = warp_sum(csum);
      fsum = warp_sum(fsum);
      if (lane == 0) {
        cs[r] += csum;
        fs[r] += fsum;
      }
    }
    __syncthreads();
    if (x.gv) gemm_sb<T>(R, t.dv, C, T(1), s, t.lds, ys, t.ldv, pgv, t.ldv);  // P gv
    __syncthreads();
  }
  for (int r = warp; r < R; r += kWarps) {
    T a = T(0);
    if (x.gv) {
      for (int e = lane; e < t.dv; e += 32) a += dos[r * t.ldv + e] * pgv[r * t.ldv + e];
      a = warp_sum(a);
    }
    if (lane == 0) {
      const int64_t row = x.base + r0 + r;
      Call[row] = cs[r];
      Eall[row] = a + fs[r] - T(2) * cs[r] * dd[r];
    }
  }
}

// Query tiles: q' = scale (ḡS K + dS gK), dO' = P gV + ḡdP V, bias' = ḡS (full, written per tile).
// Reduce: write q' (cot_q) and dO' (cot_dout).
template <class T>
__global__ void __launch_bounds__(kThreads) second_query_kernel(const AttentionParams p, const Tiles t) {
  const SecondQueryLayout L(t);
  T* const sm = smem_base<T>();
  T *qs = sm + L.q, *gqs = sm + L.gq, *accq = sm + L.accq, *dos = sm + L.dout, *accdo = sm + L.accdo;
  T *xs = sm + L.x, *ys = sm + L.y, *s = sm + L.s, *dp = sm + L.dp, *g = sm + L.g, *tt = sm + L.tt;
  T *lse = sm + L.lse, *dd = sm + L.dd, *cc = sm + L.cc, *ee = sm + L.ee;
  const TileIndex ti = tile_index(p.heads, p.nq, t.bq);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int64_t rows = p.batch * p.heads * p.nq;
  const T* Dall = static_cast<const T*>(p.workspace);
  const T* Call = Dall + rows;
  const T* Eall = Dall + 2 * rows;
  T* gbias_out = p.cot_bias_full ? static_cast<T*>(p.cot_bias_full) + x.base * x.nk : nullptr;  // + i * Nk + j

  load_rows(qs, t.ldd, x.q, r0, R, t.d);
  load_rows(dos, t.ldv, x.dout, r0, R, t.dv);
  if (x.gq) load_rows(gqs, t.ldd, x.gq, r0, R, t.d);
  if (p.cot_q) zero_rows(accq, t.ldd, R, t.d);
  if (p.cot_dout) zero_rows(accdo, t.ldv, R, t.dv);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    const int64_t row = x.base + r0 + r;
    lse[r] = x.lse[r0 + r];
    dd[r] = Dall[row];
    cc[r] = Call[row];
    ee[r] = Eall[row];
  }
  __syncthreads();
  const int64_t end = x.key_end(r0 + R - 1);
  for (int64_t c0 = 0; c0 < end; c0 += t.bk) {
    const int C = int(std::min<int64_t>(t.bk, end - c0));
    load_rows(xs, t.ldd, x.k, c0, C, t.d);
    if (x.gk) load_rows(ys, t.ldd, x.gk, c0, C, t.d);
    __syncthreads();
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, xs, t.ldd, s, t.lds, false);  // S
    const bool have_g = g_tile(x, t, R, C, qs, gqs, xs, ys, g);                // G
    __syncthreads();
    load_rows(xs, t.ldv, x.v, c0, C, t.dv);
    if (x.gv) load_rows(ys, t.ldv, x.gv, c0, C, t.dv);
    __syncthreads();
    gemm_abt<T>(R, C, t.dv, T(1), dos, t.ldv, xs, t.ldv, dp, t.lds, false);         // dP = dO Vᵀ
    if (x.gv) gemm_abt<T>(R, C, t.dv, T(1), dos, t.ldv, ys, t.ldv, tt, t.lds, false);  // dO gVᵀ
    __syncthreads();
    second_tile(x, t, r0, R, c0, C, have_g, s, dp, g, tt, lse, dd, cc, ee, gbias_out);
    __syncthreads();
    if (p.cot_dout) {
      if (x.gv) gemm_sb<T>(R, t.dv, C, T(1), s, t.lds, ys, t.ldv, accdo, t.ldv);  // += P gV
      gemm_sb<T>(R, t.dv, C, T(1), g, t.lds, xs, t.ldv, accdo, t.ldv);            // += ḡdP V
    }
    if (p.cot_q) {
      __syncthreads();  // V and gV are consumed: K and gK come back
      load_rows(xs, t.ldd, x.k, c0, C, t.d);
      if (x.gk) load_rows(ys, t.ldd, x.gk, c0, C, t.d);
      __syncthreads();
      gemm_sb<T>(R, t.d, C, x.scale, tt, t.lds, xs, t.ldd, accq, t.ldd);            // += scale ḡS K
      if (x.gk) gemm_sb<T>(R, t.d, C, x.scale, dp, t.lds, ys, t.ldd, accq, t.ldd);  // += scale dS gK
    }
    __syncthreads();
  }
  if (p.cot_q) store_rows(static_cast<T*>(p.cot_q) + (x.base + r0) * t.d, accq, t.ldd, R, t.d);
  if (p.cot_dout) store_rows(static_cast<T*>(p.cot_dout) + (x.base + r0) * t.dv, accdo, t.ldv, R, t.dv);
}

// Key tiles (over the query heads of the KV head and their query tiles): k' = scale (ḡSᵀ Q + dSᵀ gQ),
// v' = ḡdPᵀ dO. Reduce: write k' (cot_k) and v' (cot_v).
template <class T>
__global__ void __launch_bounds__(kThreads) second_key_kernel(const AttentionParams p, const Tiles t) {
  const SecondKeyLayout L(t);
  T* const sm = smem_base<T>();
  T *ks = sm + L.k, *gks = sm + L.gk, *acck = sm + L.acck, *vs = sm + L.v, *gvs = sm + L.gv, *accv = sm + L.accv;
  T *xq = sm + L.xq, *yq = sm + L.yq, *s = sm + L.s, *dp = sm + L.dp, *g = sm + L.g, *tt = sm + L.tt;
  T *lse = sm + L.lse, *dd = sm + L.dd, *cc = sm + L.cc, *ee = sm + L.ee;
  const TileIndex ti = tile_index(p.kv_heads, p.nk, t.bk);
  const int64_t c0 = ti.first;
  const int C = ti.count;
  const int64_t group = p.heads / p.kv_heads;
  const int64_t rows = p.batch * p.heads * p.nq;
  const T* Dall = static_cast<const T*>(p.workspace);
  const T* Call = Dall + rows;
  const T* Eall = Dall + 2 * rows;
  const HeadView<T> x0 = head_view<T>(p, ti.b, ti.h * group);

  load_rows(ks, t.ldd, x0.k, c0, C, t.d);
  load_rows(vs, t.ldv, x0.v, c0, C, t.dv);
  if (x0.gk) load_rows(gks, t.ldd, x0.gk, c0, C, t.d);
  if (x0.gv) load_rows(gvs, t.ldv, x0.gv, c0, C, t.dv);
  if (p.cot_k) zero_rows(acck, t.ldd, C, t.d);
  if (p.cot_v) zero_rows(accv, t.ldv, C, t.dv);
  __syncthreads();
  for (int64_t h = ti.h * group; h < (ti.h + 1) * group; ++h) {
    const HeadView<T> x = head_view<T>(p, ti.b, h);
    if (c0 >= x.len) continue;
    for (int64_t r0 = x.first_row(c0); r0 < x.nq; r0 += t.bq) {
      const int R = int(std::min<int64_t>(t.bq, x.nq - r0));
      load_rows(xq, t.ldd, x.q, r0, R, t.d);
      if (x.gq) load_rows(yq, t.ldd, x.gq, r0, R, t.d);
      for (int r = threadIdx.x; r < R; r += kThreads) {
        const int64_t row = x.base + r0 + r;
        lse[r] = x.lse[r0 + r];
        dd[r] = Dall[row];
        cc[r] = Call[row];
        ee[r] = Eall[row];
      }
      __syncthreads();
      gemm_abt<T>(R, C, t.d, x.scale, xq, t.ldd, ks, t.ldd, s, t.lds, false);  // S
      const bool have_g = g_tile(x, t, R, C, xq, yq, ks, gks, g);                // G
      __syncthreads();
      load_rows(yq, t.ldv, x.dout, r0, R, t.dv);  // gQ is consumed: dO takes its place
      __syncthreads();
      gemm_abt<T>(R, C, t.dv, T(1), yq, t.ldv, vs, t.ldv, dp, t.lds, false);            // dP = dO Vᵀ
      if (x.gv) gemm_abt<T>(R, C, t.dv, T(1), yq, t.ldv, gvs, t.ldv, tt, t.lds, false);  // dO gVᵀ
      __syncthreads();
      second_tile<T>(x, t, r0, R, c0, C, have_g, s, dp, g, tt, lse, dd, cc, ee, nullptr);
      __syncthreads();
      if (p.cot_v) gemm_sta<T>(C, t.dv, R, T(1), g, t.lds, yq, t.ldv, accv, t.ldv);      // v' += ḡdPᵀ dO
      if (p.cot_k) gemm_sta<T>(C, t.d, R, x.scale, tt, t.lds, xq, t.ldd, acck, t.ldd);  // k' += scale ḡSᵀ Q
      if (p.cot_k && x.gq) {
        __syncthreads();  // dO is consumed: gQ comes back
        load_rows(yq, t.ldd, x.gq, r0, R, t.d);
        __syncthreads();
        gemm_sta<T>(C, t.d, R, x.scale, dp, t.lds, yq, t.ldd, acck, t.ldd);  // k' += scale dSᵀ gQ
      }
      __syncthreads();
    }
  }
  const int64_t krow = (ti.b * p.kv_heads + ti.h) * p.nk + c0;
  if (p.cot_k) store_rows(static_cast<T*>(p.cot_k) + krow * t.d, acck, t.ldd, C, t.d);
  if (p.cot_v) store_rows(static_cast<T*>(p.cot_v) + krow * t.dv, accv, t.ldv, C, t.dv);
}

// ---- launcher ---------------------------------------------------------------------------------------
template <class T>
int backward_backward(const AttentionParams& p, cudaStream_t stream) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  if (int e = rowsum_dout_out<T>(p, stream)) return e;
  {  // v2 stats (simt2_dd.cu) where the v2 double backward is chosen and applies, else v1
    int e = attention_simt_dd_version(p) == MK_SIMT_V2 ? simt2_attention_dd_stats(p, stream) : KERNEL_UNSUPPORTED;
    if (e == KERNEL_UNSUPPORTED)
      e = run_pass<SecondStatsLayout, T>(second_stats_kernel<T>, Over::kQueries, p, lim, stream);
    if (e) return e;
  }
  if (p.cot_q || p.cot_dout || p.cot_bias_full) {
    // v2 (simt2_dd.cu) where chosen and it applies (mk/attention_simt_choice.h: MK_ATTN_SIMT_DD), else v1
    int e = attention_simt_dd_version(p) == MK_SIMT_V2 ? simt2_attention_dd_query(p, stream) : KERNEL_UNSUPPORTED;
    if (e == KERNEL_UNSUPPORTED) e = run_pass<SecondQueryLayout, T>(second_query_kernel<T>, Over::kQueries, p, lim, stream);
    if (e) return e;
  }
  if (p.cot_k || p.cot_v) {
    int e = attention_simt_dd_version(p) == MK_SIMT_V2 ? simt2_attention_dd_key(p, stream) : KERNEL_UNSUPPORTED;
    if (e == KERNEL_UNSUPPORTED) e = run_pass<SecondKeyLayout, T>(second_key_kernel<T>, Over::kKeys, p, lim, stream);
    if (e) return e;
  }
  return 0;
}

}  // namespace

int attention_backward_backward(const AttentionParams& in, void* stream) {
  // 16-bit: the tensor-core kernels where they apply (else KERNEL_UNSUPPORTED: native/ runs this
  // file's F32 kernels on F32 copies)
  if (is_half(in)) return tc_attention_backward_backward(in, stream);
  // F32 with TF32 allowed: the same tensor-core kernels on TF32 MMAs where they apply and fit
  // (mk/attention_tc_choice.h), else the kernels below
  if (try_tf32(in)) {
    const int e = tc_attention_backward_backward(in, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
  }
  AttentionParams p = in;
  p.second = attention_cotangents(in);
  if (!supported(p) || !p.workspace) return int(cudaErrorInvalidValue);
  return p.dtype == MK_F32 ? backward_backward<float>(p, as_stream(stream))
                        : backward_backward<double>(p, as_stream(stream));
}

}  // namespace cuda
}  // namespace mk
