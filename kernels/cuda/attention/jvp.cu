// Softmax attention on CUDA: the forward-mode product (SIMT, F32/F64). Shared parts and the
// overview in simt.cuh.
#include "simt.cuh"
#include "tensor_core_dd.cuh"

namespace mk {
namespace cuda {
namespace {

// ---- JVP -------------------------------------------------------------------------------------------
// Query tiles, tangents gq = tq, gk = tk, gv = tv, gbias = tbias (full): tS = scale (tq kᵀ + q tkᵀ)
// + tbias; c = rowsum(P ∘ tS), acc = Σ (P ∘ tS) v + P tv. Reduce: tO = acc − c O (tan_out), tlse = c (tan_lse).
template <class T>
__global__ void __launch_bounds__(kThreads) jvp_kernel(const AttentionParams p, const Tiles t) {
  const JvpLayout L(t);
  T* const sm = smem_base<T>();
  T *qs = sm + L.q, *gqs = sm + L.gq, *acc = sm + L.acc, *xs = sm + L.x, *ys = sm + L.y, *s = sm + L.s;
  T *g = sm + L.g, *lse = sm + L.lse, *cs = sm + L.cs;
  const TileIndex ti = tile_index(p.heads, p.nq, t.bq);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;

  load_rows(qs, t.ldd, x.q, r0, R, t.d);
  if (x.gq) load_rows(gqs, t.ldd, x.gq, r0, R, t.d);
  zero_rows(acc, t.ldv, R, t.dv);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    lse[r] = x.lse[r0 + r];
    cs[r] = T(0);
  }
  __syncthreads();
  const int64_t end = x.key_end(r0 + R - 1);
  for (int64_t c0 = 0; c0 < end; c0 += t.bk) {
    const int C = int(std::min<int64_t>(t.bk, end - c0));
    load_rows(xs, t.ldd, x.k, c0, C, t.d);
    if (x.gk) load_rows(ys, t.ldd, x.gk, c0, C, t.d);
    __syncthreads();
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, xs, t.ldd, s, t.lds, false);  // S
    const bool have_g = g_tile(x, t, R, C, qs, gqs, xs, ys, g);                // tS without the bias
    __syncthreads();
    // K and tK are consumed: V and tV take their place while the warps finish tS row by row
    load_rows(xs, t.ldv, x.v, c0, C, t.dv);
    if (x.gv) load_rows(ys, t.ldv, x.gv, c0, C, t.dv);
    for (int r = warp; r < R; r += kWarps) {
      const int64_t i = r0 + r;
      T csum = T(0);
      for (int c = lane; c < C; c += 32) {
        const int o = r * t.lds + c;
        const int64_t j = c0 + c;
        const T P = prob(x, s[o], i, j, lse[r]);
        T ts = have_g ? g[o] : T(0);
        if (x.gbias) ts += x.gbias[i * x.nk + j];
        const T pts = P * ts;
        s[o] = P;
        g[o] = pts;
        csum += pts;
      }
      csum = warp_sum(csum);
      if (lane == 0) cs[r] += csum;
    }
    __syncthreads();
    gemm_sb<T>(R, t.dv, C, T(1), g, t.lds, xs, t.ldv, acc, t.ldv);            // += (P ∘ tS) V
    if (x.gv) gemm_sb<T>(R, t.dv, C, T(1), s, t.lds, ys, t.ldv, acc, t.ldv);  // += P tV
    __syncthreads();
  }
  for (int r = warp; r < R; r += kWarps) {
    const int64_t row = x.base + r0 + r;
    const T c = cs[r];
    if (p.tan_out) {
      T* to = static_cast<T*>(p.tan_out) + row * t.dv;
      const T* o = x.out + (r0 + r) * t.dv;
      for (int e = lane; e < t.dv; e += 32) to[e] = acc[r * t.ldv + e] - c * o[e];
    }
    if (p.tan_lse && lane == 0) static_cast<T*>(p.tan_lse)[row] = c;
  }
}

// ---- launcher ---------------------------------------------------------------------------------------
template <class T>
int jvp(const AttentionParams& p, cudaStream_t stream) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  return run_pass<JvpLayout, T>(jvp_kernel<T>, Over::kQueries, p, lim, stream);
}

}  // namespace

int attention_jvp(const AttentionParams& in, void* stream) {
  // 16-bit: the tensor-core JVP where it applies (else KERNEL_UNSUPPORTED: native/ runs this file's
  // F32 kernel on F32 copies)
  if (is_half(in)) return tc_attention_jvp(in, stream);
  // F32 with TF32 allowed: the same tensor-core kernels on TF32 MMAs where they apply and fit
  // (mk/attention_tc_choice.h), else the kernels below
  if (try_tf32(in)) {
    const int e = tc_attention_jvp(in, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
  }
  AttentionParams p = in;
  p.second = attention_tangents(in);
  if (!supported(p)) return int(cudaErrorInvalidValue);
  return p.dtype == MK_F32 ? jvp<float>(p, as_stream(stream)) : jvp<double>(p, as_stream(stream));
}

}  // namespace cuda
}  // namespace mk
