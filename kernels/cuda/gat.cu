// Edge softmax and the fused GAT aggregation on CUDA: the twins of kernels/cpu/gat.cpp (the maths
// and the shapes are there and in mk/kernels.inc).
//
// edge softmax: a group of G lanes (G = the power of two ≥ heads, at most 32) owns one row; lane l
// owns heads l, l + G, ... and walks the row's non-zeros in CSR order three times (max, exp and
// sum, divide), reading s[k, h] — adjacent lanes read adjacent heads of one edge, one transaction
// per edge. Each (row, head) is reduced by one lane in the CPU twin's order with its arithmetic.
//
// GAT: a group of G lanes owns one row and one block of G·C feature columns (C ≤ kMaxChunks
// columns per lane, in registers); each lane finds, for the head of each of its columns, the row
// max over the row's scores (sweep 1, scalars only), then accumulates acc = fma(p, x[col, f], acc)
// and sum += p with p = exp(e - max) over the row in CSR order (sweep 2) and writes acc / sum once.
// The lanes of one head compute its p redundantly (two cached loads and an exp per edge) rather
// than sharing them through shared memory: no barrier, and every output element is produced by
// one lane in the CPU twin's order with its arithmetic (leaky's product and the accumulation by
// explicit fma on both sides, so no contraction can differ). Hence: deterministic, no atomics, and
// equal to the CPU twin up to the rounding of exp/log (bitwise in the host emulator, whose exp is
// the host's). Nothing of size E×H is written; lse [rows, heads] is, by the lane owning the head's
// first column.
//
// A hub row (10^5 in-edges) is walked by its group alone: the kernel is bound by the gathers of
// x, and a row is never split (that would need a second pass to combine partial sums in a fixed
// order); the other groups' rows proceed meanwhile.
#include <algorithm>
#include <climits>

#include "common.cuh"
#include "graph_launch.cuh"
#include "mk/kernels.h"

namespace mk {
namespace cuda {
namespace {

struct GatTraits {
  static constexpr int kThreads = 256;  // 8 warps per block
  static constexpr int kMaxChunks = 4;  // feature columns per lane (registers)
  static_assert(kThreads % 32 == 0, "whole warps");
};
using Traits = GatTraits;

__device__ __forceinline__ float fma_g(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_g(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ float exp_g(float v) { return expf(v); }
__device__ __forceinline__ double exp_g(double v) { return exp(v); }
__device__ __forceinline__ float log_g(float v) { return logf(v); }
__device__ __forceinline__ double log_g(double v) { return log(v); }

template <class T>
__device__ __forceinline__ T neg_inf_g() {
  return T(-INFINITY);
}

template <class T>
__device__ __forceinline__ T nan_max_g(T m, T v) {
  return (v > m || v != v) ? v : m;
}

// leaky(z) = z > 0 ? z : slope·z; the product as an fma with 0 (the CPU twin's form)
template <class T>
__device__ __forceinline__ T leaky_g(T z, T slope) {
  return z > T(0) ? z : fma_g(slope, z, T(0));
}

// ---- edge softmax --------------------------------------------------------------------------------
template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
    edge_softmax_kernel(int64_t rows, int lanes, int64_t H, const int64_t* __restrict__ row_ptr,
                        const T* __restrict__ s, const T* __restrict__ lse_in, T* __restrict__ y,
                        T* __restrict__ lse_out) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  if (r >= rows) return;
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  for (int64_t h = lane; h < H; h += lanes) {
    if (lse_in) {
      const T l = lse_in[r * H + h];
      for (int64_t k = b; k < e; ++k) y[k * H + h] = l == neg_inf_g<T>() ? T(0) : exp_g(s[k * H + h] - l);
      continue;
    }
    T m = neg_inf_g<T>();
    for (int64_t k = b; k < e; ++k) m = nan_max_g(m, s[k * H + h]);
    const T m0 = m == neg_inf_g<T>() ? T(0) : m;
    T sum = T(0);
    for (int64_t k = b; k < e; ++k) {
      const T p = exp_g(s[k * H + h] - m0);
      y[k * H + h] = p;
      sum += p;
    }
    const bool some = sum > T(0) || sum != sum;
    if (some)
      for (int64_t k = b; k < e; ++k) y[k * H + h] = y[k * H + h] / sum;
    if (lse_out) lse_out[r * H + h] = some ? m0 + log_g(sum) : neg_inf_g<T>();
  }
}

// ---- GAT -----------------------------------------------------------------------------------------
// One group per (row, column block); lane `lane` owns columns c0 + c·G, c < C.
template <class T, int C>
__global__ void __launch_bounds__(Traits::kThreads)
    gat_kernel(int64_t rows, int lanes, int64_t col_blocks, int64_t H, int64_t D, T slope,
               const int64_t* __restrict__ row_ptr, const int64_t* __restrict__ col, const T* __restrict__ x,
               const T* __restrict__ s_src, const T* __restrict__ s_dst, T* __restrict__ out, T* __restrict__ lse) {
  const int64_t F = H * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t r = group / col_blocks;
  if (r >= rows) return;
  const int64_t c0 = (group % col_blocks) * (int64_t(lanes) * C) + lane;
  int64_t f[C], head[C];
  bool live[C];
  T sd[C], m[C], acc[C], sum[C];
#pragma unroll
  for (int c = 0; c < C; ++c) {
    f[c] = c0 + int64_t(c) * lanes;
    live[c] = f[c] < F;
    head[c] = live[c] ? f[c] / D : 0;
    sd[c] = live[c] ? s_dst[r * H + head[c]] : T(0);
    m[c] = neg_inf_g<T>();
    acc[c] = T(0);
    sum[c] = T(0);
  }
  const int64_t b = row_ptr[r], e = row_ptr[r + 1];
  // sweep 1: the row max of each column's head
  for (int64_t k = b; k < e; ++k) {
    const T* ss = s_src + col[k] * H;
#pragma unroll
    for (int c = 0; c < C; ++c)
      if (live[c]) m[c] = nan_max_g(m[c], leaky_g(ss[head[c]] + sd[c], slope));
  }
#pragma unroll
  for (int c = 0; c < C; ++c)
    if (m[c] == neg_inf_g<T>()) m[c] = T(0);
  // sweep 2: acc = Σ exp(e - m) · x[col, f], sum = Σ exp(e - m), in CSR order
  for (int64_t k = b; k < e; ++k) {
    const int64_t j = col[k];
    const T* ss = s_src + j * H;
    const T* xr = x + j * F;
#pragma unroll
    for (int c = 0; c < C; ++c)
      if (live[c]) {
        const T p = exp_g(leaky_g(ss[head[c]] + sd[c], slope) - m[c]);
        sum[c] += p;
        acc[c] = fma_g(p, xr[f[c]], acc[c]);
      }
  }
#pragma unroll
  for (int c = 0; c < C; ++c)
    if (live[c]) {
      const bool some = sum[c] > T(0) || sum[c] != sum[c];
      out[r * F + f[c]] = some ? acc[c] / sum[c] : acc[c];
      if (lse && f[c] == head[c] * D) lse[r * H + head[c]] = some ? m[c] + log_g(sum[c]) : neg_inf_g<T>();
    }
}

template <class T>
int edge_softmax_t(int64_t rows, int64_t H, const int64_t* row_ptr, const T* s, const T* lse_in, T* y, T* lse_out,
                   cudaStream_t st) {
  const int lanes = pow2_at_least(H);
  return launch_1d<Traits::kThreads>(edge_softmax_kernel<T>, rows * lanes, st, rows, lanes, H, row_ptr, s, lse_in, y, lse_out);
}

template <class T>
int gat_t(int64_t rows, int64_t H, int64_t D, T slope, const int64_t* row_ptr, const int64_t* col, const T* x,
          const T* s_src, const T* s_dst, T* out, T* lse, cudaStream_t st) {
  const int64_t F = H * D;
  int lanes = 32, chunks = 1;
  if (F <= 32) {
    lanes = pow2_at_least(F);
  } else {
    chunks = int(std::min<int64_t>(Traits::kMaxChunks, (F + 31) / 32));
    if (chunks == 3) chunks = 4;
  }
  const int64_t block_cols = int64_t(lanes) * chunks;
  const int64_t col_blocks = (F + block_cols - 1) / block_cols;
  const int64_t threads = rows * col_blocks * lanes;
  if (chunks == 1)
    return launch_1d<Traits::kThreads>(gat_kernel<T, 1>, threads, st, rows, lanes, col_blocks, H, D, slope, row_ptr, col, x, s_src,
                      s_dst, out, lse);
  if (chunks == 2)
    return launch_1d<Traits::kThreads>(gat_kernel<T, 2>, threads, st, rows, lanes, col_blocks, H, D, slope, row_ptr, col, x, s_src,
                      s_dst, out, lse);
  return launch_1d<Traits::kThreads>(gat_kernel<T, Traits::kMaxChunks>, threads, st, rows, lanes, col_blocks, H, D, slope, row_ptr, col,
                    x, s_src, s_dst, out, lse);
}

// ---- GAT backward ---------------------------------------------------------------------------------
// The twin of kernels/cpu/gat.cpp's gat_backward_t: the same expressions per element, in the same
// order (so bitwise equal in the emulator). Three launches on the stream, in order:
//   rows:    one lane per (row, head) (lane groups as in the edge softmax); sweep 1: α, ga and
//            row_dot = Σ α ga; sweep 2 recomputes α, ga: gs_dst = Σ α·leaky'(z)·(ga - row_dot);
//   sources: one lane per (column, head) over the CSC: gs_src = Σ α·leaky'(z)·(ga - row_dot[i]);
//   gx:      one lane per (column, feature) over the CSC: gx = Σ α gout[i, f] (α recomputed per lane).
// No atomics, nothing of size nnz × heads.
template <class T>
__device__ __forceinline__ T gat_alpha_g(T ev, T l) {
  return l == neg_inf_g<T>() ? T(0) : exp_g(ev - l);
}

// the CPU twin's gat_dot: 8 running sums by fma in order, then a fixed tree
template <class T>
__device__ __forceinline__ T gat_dot_g(const T* a, const T* b, int64_t n) {
  T s[8];
#pragma unroll
  for (int l = 0; l < 8; ++l) s[l] = T(0);
  int64_t d = 0;
  for (; d + 8 <= n; d += 8) {
#pragma unroll
    for (int l = 0; l < 8; ++l) s[l] = fma_g(a[d + l], b[d + l], s[l]);
  }
  for (int l = 0; d + l < n; ++l) s[l] = fma_g(a[d + l], b[d + l], s[l]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
    gat_backward_rows_kernel(int64_t rows, int lanes, int64_t H, int64_t D, T slope,
                             const int64_t* __restrict__ row_ptr, const int64_t* __restrict__ col,
                             const T* __restrict__ x, const T* __restrict__ s_src, const T* __restrict__ s_dst,
                             const T* __restrict__ lse, const T* __restrict__ gout, T* __restrict__ gs_dst,
                             T* __restrict__ row_dot) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  if (r >= rows) return;
  const int64_t F = H * D, b = row_ptr[r], e = row_ptr[r + 1];
  for (int64_t h = lane; h < H; h += lanes) {
    const T sd = s_dst[r * H + h], l = lse[r * H + h];
    const T* gr = gout + r * F + h * D;
    T dsum = T(0);
    for (int64_t k = b; k < e; ++k) {
      const int64_t j = col[k];
      const T a = gat_alpha_g(leaky_g(s_src[j * H + h] + sd, slope), l);
      dsum = fma_g(a, gat_dot_g(gr, x + j * F + h * D, D), dsum);
    }
    row_dot[r * H + h] = dsum;
    if (!gs_dst) continue;
    T acc = T(0);
    for (int64_t k = b; k < e; ++k) {
      const int64_t j = col[k];
      const T z = s_src[j * H + h] + sd;
      const T a = gat_alpha_g(leaky_g(z, slope), l);
      const T ga = gat_dot_g(gr, x + j * F + h * D, D);
      acc = fma_g(a, fma_g(z > T(0) ? T(1) : slope, ga - dsum, T(0)), acc);
    }
    gs_dst[r * H + h] = acc;
  }
}

template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
    gat_backward_src_kernel(int64_t cols, int lanes, int64_t H, int64_t D, T slope,
                            const int64_t* __restrict__ col_ptr, const int64_t* __restrict__ csc_row,
                            const T* __restrict__ x, const T* __restrict__ s_src, const T* __restrict__ s_dst,
                            const T* __restrict__ lse, const T* __restrict__ gout, const T* __restrict__ row_dot,
                            T* __restrict__ gs_src) {
  const int64_t j = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  if (j >= cols) return;
  const int64_t F = H * D, b = col_ptr[j], e = col_ptr[j + 1];
  for (int64_t h = lane; h < H; h += lanes) {
    const T ss = s_src[j * H + h];
    const T* xr = x + j * F + h * D;
    T acc = T(0);
    for (int64_t k = b; k < e; ++k) {
      const int64_t i = csc_row[k];
      const T z = ss + s_dst[i * H + h];
      const T a = gat_alpha_g(leaky_g(z, slope), lse[i * H + h]);
      const T ga = gat_dot_g(gout + i * F + h * D, xr, D);
      acc = fma_g(a, fma_g(z > T(0) ? T(1) : slope, ga - row_dot[i * H + h], T(0)), acc);
    }
    gs_src[j * H + h] = acc;
  }
}

// one group per (column, block of `lanes` features), lane = one feature
template <class T>
__global__ void __launch_bounds__(Traits::kThreads)
    gat_backward_gx_kernel(int64_t cols, int lanes, int64_t col_blocks, int64_t H, int64_t D, T slope,
                           const int64_t* __restrict__ col_ptr, const int64_t* __restrict__ csc_row,
                           const T* __restrict__ s_src, const T* __restrict__ s_dst, const T* __restrict__ lse,
                           const T* __restrict__ gout, T* __restrict__ gx) {
  const int64_t F = H * D;
  const int64_t group = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / lanes;
  const int lane = int(threadIdx.x % unsigned(lanes));
  const int64_t j = group / col_blocks;
  if (j >= cols) return;
  const int64_t f = (group % col_blocks) * lanes + lane;
  if (f >= F) return;
  const int64_t h = f / D, b = col_ptr[j], e = col_ptr[j + 1];
  const T ss = s_src[j * H + h];
  T acc = T(0);
  for (int64_t k = b; k < e; ++k) {
    const int64_t i = csc_row[k];
    const T a = gat_alpha_g(leaky_g(ss + s_dst[i * H + h], slope), lse[i * H + h]);
    acc = fma_g(a, gout[i * F + f], acc);
  }
  gx[j * F + f] = acc;
}

template <class T>
int gat_backward_t(int64_t rows, int64_t H, int64_t D, T slope, const int64_t* row_ptr, const int64_t* col,
                   const int64_t* col_ptr, const int64_t* csc_row, const T* x, const T* s_src, const T* s_dst,
                   const T* lse, const T* gout, T* gx, T* gs_src, T* gs_dst, T* row_dot, cudaStream_t st) {
  const int hl = pow2_at_least(H);
  if (gs_src || gs_dst) {
    int rc = launch_1d<Traits::kThreads>(gat_backward_rows_kernel<T>, rows * hl, st, rows, hl, H, D, slope, row_ptr,
                                         col, x, s_src, s_dst, lse, gout, gs_dst, row_dot);
    if (rc) return rc;
  }
  if (gs_src) {
    int rc = launch_1d<Traits::kThreads>(gat_backward_src_kernel<T>, rows * hl, st, rows, hl, H, D, slope, col_ptr,
                                         csc_row, x, s_src, s_dst, lse, gout, row_dot, gs_src);
    if (rc) return rc;
  }
  if (gx) {
    const int64_t F = H * D;
    const int fl = pow2_at_least(F);
    const int64_t col_blocks = (F + fl - 1) / fl;
    return launch_1d<Traits::kThreads>(gat_backward_gx_kernel<T>, rows * col_blocks * fl, st, rows, fl, col_blocks, H,
                                       D, slope, col_ptr, csc_row, s_src, s_dst, lse, gout, gx);
  }
  return 0;
}

}  // namespace

int graph_edge_softmax(int dtype, int64_t rows, int64_t, int64_t heads, const int64_t* row_ptr, const void* scores,
                       const void* lse_in, void* out, void* lse_out, void* stream) {
  auto s = as_stream(stream);
  if (dtype == MK_F32)
    return edge_softmax_t(rows, heads, row_ptr, static_cast<const float*>(scores), static_cast<const float*>(lse_in),
                          static_cast<float*>(out), static_cast<float*>(lse_out), s);
  if (dtype == MK_F64)
    return edge_softmax_t(rows, heads, row_ptr, static_cast<const double*>(scores), static_cast<const double*>(lse_in),
                          static_cast<double*>(out), static_cast<double*>(lse_out), s);
  return KERNEL_UNSUPPORTED;
}

int graph_gat(int dtype, int64_t rows, int64_t, int64_t heads, int64_t width, double slope, const int64_t* row_ptr,
              const int64_t* col, const void* x, const void* s_src, const void* s_dst, void* out, void* lse,
              void* stream) {
  auto s = as_stream(stream);
  if (dtype == MK_F32)
    return gat_t(rows, heads, width, float(slope), row_ptr, col, static_cast<const float*>(x),
                 static_cast<const float*>(s_src), static_cast<const float*>(s_dst), static_cast<float*>(out),
                 static_cast<float*>(lse), s);
  if (dtype == MK_F64)
    return gat_t(rows, heads, width, slope, row_ptr, col, static_cast<const double*>(x),
                 static_cast<const double*>(s_src), static_cast<const double*>(s_dst), static_cast<double*>(out),
                 static_cast<double*>(lse), s);
  return KERNEL_UNSUPPORTED;
}

int graph_gat_backward(int dtype, int64_t rows, int64_t, int64_t heads, int64_t width, double slope,
                       const int64_t* row_ptr, const int64_t* col, const int64_t* col_ptr, const int64_t* csc_row,
                       const void* x, const void* s_src, const void* s_dst, const void* lse, const void* gout, void* gx,
                       void* gs_src, void* gs_dst, void* row_dot, void* stream) {
  auto s = as_stream(stream);
  if (dtype == MK_F32)
    return gat_backward_t(rows, heads, width, float(slope), row_ptr, col, col_ptr, csc_row,
                          static_cast<const float*>(x), static_cast<const float*>(s_src),
                          static_cast<const float*>(s_dst), static_cast<const float*>(lse),
                          static_cast<const float*>(gout), static_cast<float*>(gx), static_cast<float*>(gs_src),
                          static_cast<float*>(gs_dst), static_cast<float*>(row_dot), s);
  if (dtype == MK_F64)
    return gat_backward_t(rows, heads, width, slope, row_ptr, col, col_ptr, csc_row, static_cast<const double*>(x),
                          static_cast<const double*>(s_src), static_cast<const double*>(s_dst),
                          static_cast<const double*>(lse), static_cast<const double*>(gout),
                          static_cast<double*>(gx), static_cast<double*>(gs_src), static_cast<double*>(gs_dst),
                          static_cast<double*>(row_dot), s);
  return KERNEL_UNSUPPORTED;
}

}  // namespace cuda
}  // namespace mk
