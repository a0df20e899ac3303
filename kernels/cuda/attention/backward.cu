// Softmax attention on CUDA: the backward pass (SIMT F32/F64; BF16/F16 and opt-in TF32 go to
// tensor_core.cu). Shared parts and the overview in simt.cuh.
#include "mk/attention_simt_choice.h"
#include "simt.cuh"
#include "simt2.cuh"
#include "tensor_core.cuh"

namespace mk {
namespace cuda {
namespace {

// ---- backward --------------------------------------------------------------------------------------
// Main, query tiles: dS = P ∘ (dP − D) with dP = dO Vᵀ, written to the full dS (grad_bias_full) when asked;
// dQ += scale dS K. Reduce: write dQ (grad_q).
template <class T>
__global__ void __launch_bounds__(kThreads) backward_query_kernel(const AttentionParams p, const Tiles t) {
  const BackwardQueryLayout L(t);
  T* const sm = smem_base<T>();
  T *qs = sm + L.q, *dos = sm + L.dout, *kv = sm + L.kv, *s = sm + L.s, *dp = sm + L.dp, *dq = sm + L.dq;
  T *lse = sm + L.lse, *dd = sm + L.dd;
  const TileIndex ti = tile_index(p.heads, p.nq, t.bq);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const T* Dall = static_cast<const T*>(p.workspace);
  T* ds_full = p.grad_bias_full ? static_cast<T*>(p.grad_bias_full) + x.base * x.nk : nullptr;  // + i * Nk + j

  load_rows(qs, t.ldd, x.q, r0, R, t.d);
  load_rows(dos, t.ldv, x.dout, r0, R, t.dv);
  if (p.grad_q) zero_rows(dq, t.ldd, R, t.d);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    lse[r] = x.lse[r0 + r];
    dd[r] = Dall[x.base + r0 + r];
  }
  __syncthreads();
  const int64_t end = x.key_end(r0 + R - 1);
  for (int64_t c0 = 0; c0 < end; c0 += t.bk) {
    const int C = int(std::min<int64_t>(t.bk, end - c0));
    load_rows(kv, t.ldv, x.v, c0, C, t.dv);
    __syncthreads();
    gemm_abt<T>(R, C, t.dv, T(1), dos, t.ldv, kv, t.ldv, dp, t.lds, false);  // dP = dO Vᵀ
    __syncthreads();
    load_rows(kv, t.ldd, x.k, c0, C, t.d);
    __syncthreads();
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, kv, t.ldd, s, t.lds, false);  // S = scale Q Kᵀ
    __syncthreads();
    for (int idx = threadIdx.x; idx < R * C; idx += kThreads) {
      const int r = idx / C, c = idx - r * C;
      const int64_t i = r0 + r, j = c0 + c;
      const T P = prob(x, s[r * t.lds + c], i, j, lse[r]);
      const T ds = P * (dp[r * t.lds + c] - dd[r]);
      dp[r * t.lds + c] = ds;
      if (ds_full) ds_full[i * x.nk + j] = ds;
    }
    __syncthreads();
    if (p.grad_q) gemm_sb<T>(R, t.d, C, x.scale, dp, t.lds, kv, t.ldd, dq, t.ldd);  // dQ += scale dS K
    __syncthreads();
  }
  if (p.grad_q) store_rows(static_cast<T*>(p.grad_q) + (x.base + r0) * t.d, dq, t.ldd, R, t.d);
}

// Main, key tiles: for each query head of the KV head and each query tile that sees the keys,
// dV += Pᵀ dO and dK += scale dSᵀ Q. Reduce: write dK (grad_k), dV (grad_v).
template <class T>
__global__ void __launch_bounds__(kThreads) backward_key_kernel(const AttentionParams p, const Tiles t) {
  const BackwardKeyLayout L(t);
  T* const sm = smem_base<T>();
  T *ks = sm + L.k, *vs = sm + L.v, *dk = sm + L.dk, *dv = sm + L.dv, *qs = sm + L.q, *dos = sm + L.dout;
  T *s = sm + L.s, *dp = sm + L.dp, *lse = sm + L.lse, *dd = sm + L.dd;
  const TileIndex ti = tile_index(p.kv_heads, p.nk, t.bk);  // ti.h: the KV head
  const int64_t c0 = ti.first;
  const int C = ti.count;
  const int64_t group = p.heads / p.kv_heads;
  const T* Dall = static_cast<const T*>(p.workspace);
  const HeadView<T> x0 = head_view<T>(p, ti.b, ti.h * group);

  load_rows(ks, t.ldd, x0.k, c0, C, t.d);
  load_rows(vs, t.ldv, x0.v, c0, C, t.dv);
  if (p.grad_k) zero_rows(dk, t.ldd, C, t.d);
  if (p.grad_v) zero_rows(dv, t.ldv, C, t.dv);
  __syncthreads();
  for (int64_t h = ti.h * group; h < (ti.h + 1) * group; ++h) {
    const HeadView<T> x = head_view<T>(p, ti.b, h);
    if (c0 >= x.len) continue;  // padding keys: zero gradients (pre-zeroed)
    for (int64_t r0 = x.first_row(c0); r0 < x.nq; r0 += t.bq) {
      const int R = int(std::min<int64_t>(t.bq, x.nq - r0));
      load_rows(qs, t.ldd, x.q, r0, R, t.d);
      load_rows(dos, t.ldv, x.dout, r0, R, t.dv);
      for (int r = threadIdx.x; r < R; r += kThreads) {
        lse[r] = x.lse[r0 + r];
        dd[r] = Dall[x.base + r0 + r];
      }
      __syncthreads();
      gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, ks, t.ldd, s, t.lds, false);  // S = scale Q Kᵀ
      gemm_abt<T>(R, C, t.dv, T(1), dos, t.ldv, vs, t.ldv, dp, t.lds, false);  // dP = dO Vᵀ
      __syncthreads();
      for (int idx = threadIdx.x; idx < R * C; idx += kThreads) {
        const int r = idx / C, c = idx - r * C;
        const T P = prob(x, s[r * t.lds + c], r0 + r, c0 + c, lse[r]);
        s[r * t.lds + c] = P;
        // masked entries set, not multiplied: padding keys may hold anything, NaN included (0 · NaN)
        dp[r * t.lds + c] = c0 + c < x.key_end(r0 + r) ? P * (dp[r * t.lds + c] - dd[r]) : T(0);
      }
      __syncthreads();
      if (p.grad_v) gemm_sta<T>(C, t.dv, R, T(1), s, t.lds, dos, t.ldv, dv, t.ldv);     // dV += Pᵀ dO
      if (p.grad_k) gemm_sta<T>(C, t.d, R, x.scale, dp, t.lds, qs, t.ldd, dk, t.ldd);  // dK += scale dSᵀ Q
      __syncthreads();
    }
  }
  const int64_t krow = (ti.b * p.kv_heads + ti.h) * p.nk + c0;
  if (p.grad_k) store_rows(static_cast<T*>(p.grad_k) + krow * t.d, dk, t.ldd, C, t.d);
  if (p.grad_v) store_rows(static_cast<T*>(p.grad_v) + krow * t.dv, dv, t.ldv, C, t.dv);
}

// ---- launcher ---------------------------------------------------------------------------------------
template <class T>
int backward(const AttentionParams& p, cudaStream_t stream) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  if (int e = rowsum_dout_out<T>(p, stream)) return e;
  if (p.grad_q || p.grad_bias_full)
    if (int e = run_pass<BackwardQueryLayout, T>(backward_query_kernel<T>, Over::kQueries, p, lim, stream)) return e;
  if (p.grad_k || p.grad_v)
    if (int e = run_pass<BackwardKeyLayout, T>(backward_key_kernel<T>, Over::kKeys, p, lim, stream)) return e;
  return 0;
}

}  // namespace

int attention_backward(const AttentionParams& p, void* stream) {
  if (is_half(p)) return tc_attention_backward(p, stream);
  if (try_tf32(p) && p.workspace) {
    const int e = tc_attention_backward(p, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
  }
  if (!supported(p) || !p.workspace) return int(cudaErrorInvalidValue);
  // the SIMT kernels: v1 or v2 (mk/attention_simt_choice.h), or x3 (F32 on Hopper tensor cores,
  // 3xTF32); each answers unsupported where it cannot run (before launching anything), x3 then v2
  const int version = attention_simt_backward_version(p);
  if (version == MK_SIMT_X3) {
    const int e = tc_sm90_x3_backward(p, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
  }
  if (version == MK_SIMT_V2 || version == MK_SIMT_X3) {
    const int e = simt2_attention_backward(p, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
  }
  return p.dtype == MK_F32 ? backward<float>(p, as_stream(stream)) : backward<double>(p, as_stream(stream));
}

}  // namespace cuda
}  // namespace mk
