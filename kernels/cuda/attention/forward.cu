// Softmax attention on CUDA: the forward pass (SIMT F32/F64; BF16/F16 and opt-in TF32 go to
// tensor_core.cu). Shared parts and the overview in simt.cuh.
#include "mk/attention_simt_choice.h"
#include "simt.cuh"
#include "simt2.cuh"
#include "tensor_core.cuh"
#include "tensor_core_dd.cuh"

namespace mk {
namespace cuda {
namespace {

// ---- forward -------------------------------------------------------------------------------------
// Query tiles. Per key tile: S = scale Q Kᵀ + bias (masked); online softmax per row (running max m,
// sum l, rescaling the accumulator); O += P V. Reduce: out = O / l, lse = m + log l.
template <class T>
__global__ void __launch_bounds__(kThreads) forward_kernel(const AttentionParams p, const Tiles t) {
  const ForwardLayout L(t);
  T* const sm = smem_base<T>();
  T *qs = sm + L.q, *kv = sm + L.kv, *s = sm + L.s, *o = sm + L.o, *m = sm + L.m, *l = sm + L.l;
  const TileIndex ti = tile_index(p.heads, p.nq, t.bq);
  const HeadView<T> x = head_view<T>(p, ti.b, ti.h);
  const int64_t r0 = ti.first;
  const int R = ti.count;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;

  load_rows(qs, t.ldd, x.q, r0, R, t.d);
  zero_rows(o, t.ldv, R, t.dv);
  for (int r = threadIdx.x; r < R; r += kThreads) {
    m[r] = neg_inf<T>();
    l[r] = T(0);
  }
  __syncthreads();
  const int64_t end = x.key_end(r0 + R - 1);
  for (int64_t c0 = 0; c0 < end; c0 += t.bk) {
    const int C = int(std::min<int64_t>(t.bk, end - c0));
    load_rows(kv, t.ldd, x.k, c0, C, t.d);
    __syncthreads();
    gemm_abt<T>(R, C, t.d, x.scale, qs, t.ldd, kv, t.ldd, s, t.lds, false);
    __syncthreads();
    // K is consumed: V takes its place while the warps run the online softmax, one row each
    load_rows(kv, t.ldv, x.v, c0, C, t.dv);
    for (int r = warp; r < R; r += kWarps) {
      const int64_t i = r0 + r, e = x.key_end(i);
      T* sr = s + r * t.lds;
      T mx = neg_inf<T>();
      for (int c = lane; c < C; c += 32) {
        const int64_t j = c0 + c;
        T val = neg_inf<T>();
        if (j < e) val = x.bias ? sr[c] + x.bias[i * x.nk + j] : sr[c];
        sr[c] = val;
        mx = val > mx ? val : mx;
      }
      mx = warp_max(mx);
      const T mo = m[r];
      const T mn = mx > mo ? mx : mo;
      T corr = T(1);
      if (mn == neg_inf<T>()) {
        for (int c = lane; c < C; c += 32) sr[c] = T(0);
      } else {
        corr = mo == neg_inf<T>() ? T(0) : texp(mo - mn);
        T sum = T(0);
        for (int c = lane; c < C; c += 32) {
          const T pv = texp(sr[c] - mn);
          sr[c] = pv;
          sum += pv;
        }
        sum = warp_sum(sum);  // every lane has read m[r] before this point
        if (lane == 0) {
          l[r] = l[r] * corr + sum;
          m[r] = mn;
        }
      }
      if (corr != T(1))
        for (int e2 = lane; e2 < t.dv; e2 += 32) o[r * t.ldv + e2] *= corr;
    }
    __syncthreads();
    gemm_sb<T>(R, t.dv, C, T(1), s, t.lds, kv, t.ldv, o, t.ldv);
    __syncthreads();
  }
  // reduce: normalise and write the owned rows
  for (int r = warp; r < R; r += kWarps) {
    const T lr = l[r];
    const T inv = lr > T(0) ? T(1) / lr : T(0);
    const int64_t row = x.base + r0 + r;
    if (p.out) {
      T* out = static_cast<T*>(p.out) + row * t.dv;
      for (int e = lane; e < t.dv; e += 32) out[e] = o[r * t.ldv + e] * inv;
    }
    if (p.lse && lane == 0) static_cast<T*>(p.lse)[row] = lr > T(0) ? m[r] + tlog(lr) : neg_inf<T>();
  }
}

// ---- launcher ---------------------------------------------------------------------------------------
template <class T>
int forward(const AttentionParams& p, cudaStream_t stream) {
  Limits lim;
  if (int e = device_limits(&lim)) return e;
  return run_pass<ForwardLayout, T>(forward_kernel<T>, Over::kQueries, p, lim, stream);
}

}  // namespace

int attention_forward(const AttentionParams& p, void* stream) {
  if (is_half(p)) return tc_attention_forward(p, stream);
  if (try_tf32(p)) {
    const int e = tc_attention_forward(p, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
  }
  if (!supported(p)) return int(cudaErrorInvalidValue);
  // the SIMT kernel: v1 or v2 (mk/attention_simt_choice.h), or x3 (F32 on Hopper tensor cores,
  // 3xTF32); each answers unsupported where it cannot run, x3 then falls to v2
  const int version = attention_simt_forward_version(p);
  if (version == MK_SIMT_X3) {
    const int e = tc_sm90_x3_forward(p, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
  }
  if (version == MK_SIMT_V2 || version == MK_SIMT_X3) {
    const int e = simt2_attention_forward(p, stream);
    if (e != KERNEL_UNSUPPORTED) return e;
  }
  return p.dtype == MK_F32 ? forward<float>(p, as_stream(stream)) : forward<double>(p, as_stream(stream));
}

// Row statistics D, C, E ([B·H·Nq] each) in the element type; the same size for every pass, since
// the Java side asks once per call geometry (batch, heads, nq, d, dv).
int64_t attention_workspace(const AttentionParams& p, int) {
  // (16-bit: D for the backward; D, C, E in F32 for the tensor-core double backward)
  if (is_half(p)) return std::max(tc_attention_workspace(p), tc_attention_backward_backward_workspace(p));
  const int64_t esize = p.dtype == MK_F32 ? 4 : 8;
  return esize * 3 * p.batch * p.heads * p.nq;
}

}  // namespace cuda
}  // namespace mk
