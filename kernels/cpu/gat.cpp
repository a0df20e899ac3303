// Edge softmax and the fused GAT aggregation on the CPU (MK_MULTI_ISA: compiled for AVX2 and for
// AVX-512; the AVX2 build also holds the dispatchers). Shapes: mk/kernels.inc and the graph section
// of metakernels.h. A graph row r is a destination node, its non-zeros k its in-edges (CSR order).
//
//   edge softmax:  m[r,h] = max_k s[k,h],  l[r,h] = Σ_k exp(s[k,h] - m[r,h]),
//                  y[k,h] = exp(s[k,h] - m[r,h]) / l[r,h],   lse[r,h] = m[r,h] + log l[r,h]
//                  (with lse given: y[k,h] = exp(s[k,h] - lse[r,h]), one pass)
//   GAT:           e[k,h] = leaky(s_src[col k, h] + s_dst[r, h]),  leaky(z) = z > 0 ? z : slope·z
//                  out[r,h,:] = Σ_k softmax_k(e[·,h]) · x[col k, h, :],  lse[r,h] as above
//
// The GAT pass reads every source feature row once: a first sweep over the row's scalars finds the
// row max (scores only: 2 loads per edge and head, e kept in a per-thread row buffer), the second
// accumulates exp(e - m)·x[col] and the sum of the exponentials, and the row is divided by the sum
// at the end. That is the online
// softmax of flash attention without its rescaling (the scalars are cheap to read twice, and a
// fixed max keeps every term ≤ 1), and nothing of size E×H is written.
//
// Determinism: a row is reduced by one thread in CSR order (max: order does not matter; sums:
// from 0 by std::fma / + in CSR order); threads split the rows into parts of equal non-zeros (the
// partition of mk/cpu_graph_parts.h), never a row. Bitwise the same for every thread count and
// run. The CUDA twin (kernels/cuda/gat.cu) runs the same arithmetic in the same order per element;
// only its exp/log differ from the host's by rounding.
//
// Rows without non-zeros: GAT writes 0 and lse = -inf; edge softmax writes no y (there is none)
// and lse = -inf. A row whose scores are all -inf: y = 0, out = 0, lse = -inf. NaN propagates.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "mk/cpu_graph_parts.h"
#include "mk/cpu_parallel.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"

namespace mk {
namespace cpu {

struct GatTraits {
  static constexpr int64_t kPartsPerThread = 8;  // dynamic parts per thread (load balance)
  static constexpr int64_t kPrefetch = 4;        // non-zeros ahead whose feature row is prefetched
  static_assert(kPartsPerThread >= 1 && kPrefetch >= 1, "positive tuning knobs");
};

namespace MK_ISA_NS {
namespace {

using Traits = GatTraits;

template <class T>
inline T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}

// max that keeps a NaN once seen
template <class T>
inline T nan_max(T m, T v) {
  return (v > m || v != v) ? v : m;
}

// the product as an fma with 0: no contraction with the subtraction that follows can make the CPU
// and CUDA (or emulator) builds round differently
template <class T>
inline T leaky(T z, T slope) {
  return z > T(0) ? z : std::fma(slope, z, T(0));
}

// ---- edge softmax --------------------------------------------------------------------------------
template <class T>
void edge_softmax_t(int64_t rows, int64_t H, const int64_t* row_ptr, const T* s, const T* lse_in, T* y, T* lse_out) {
  for_each_part<Traits::kPartsPerThread>(row_ptr, rows, H, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = row_ptr[r], e = row_ptr[r + 1];
      for (int64_t h = 0; h < H; ++h) {
        if (lse_in) {
          const T l = lse_in[r * H + h];
          for (int64_t k = b; k < e; ++k) y[k * H + h] = l == neg_inf<T>() ? T(0) : std::exp(s[k * H + h] - l);
          continue;
        }
        T m = neg_inf<T>();
        for (int64_t k = b; k < e; ++k) m = nan_max(m, s[k * H + h]);
        const T m0 = m == neg_inf<T>() ? T(0) : m;
        T sum = T(0);
        for (int64_t k = b; k < e; ++k) {
          const T p = std::exp(s[k * H + h] - m0);
          y[k * H + h] = p;
          sum += p;
        }
        if (sum > T(0) || sum != sum)
          for (int64_t k = b; k < e; ++k) y[k * H + h] = y[k * H + h] / sum;
        if (lse_out) lse_out[r * H + h] = sum > T(0) || sum != sum ? m0 + std::log(sum) : neg_inf<T>();
      }
    }
  });
}

// ---- GAT -----------------------------------------------------------------------------------------
template <class T>
void gat_t(int64_t rows, int64_t H, int64_t D, T slope, const int64_t* row_ptr, const int64_t* col, const T* x,
           const T* s_src, const T* s_dst, T* out, T* lse) {
  const int64_t F = H * D;
  for_each_part<Traits::kPartsPerThread>(row_ptr, rows, F + H, [&](int64_t r0, int64_t r1) {
    std::vector<T> m(static_cast<size_t>(H)), sum(static_cast<size_t>(H));
    std::vector<T> ev;  // the row's scores e[k, h], kept from sweep 1 (no second gather of s_src)
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = row_ptr[r], e = row_ptr[r + 1];
      const T* sd = s_dst + r * H;
      T* o = out + r * F;
      // sweep 1: the row max of every head (scalars only)
      std::fill(m.begin(), m.end(), neg_inf<T>());
      if (ev.size() < size_t((e - b) * H)) ev.resize(size_t((e - b) * H));
      for (int64_t k = b; k < e; ++k) {
        const T* ss = s_src + col[k] * H;
        T* er = ev.data() + (k - b) * H;
        for (int64_t h = 0; h < H; ++h) {
          er[h] = leaky(ss[h] + sd[h], slope);
          m[size_t(h)] = nan_max(m[size_t(h)], er[h]);
        }
      }
      for (int64_t h = 0; h < H; ++h)
        if (m[size_t(h)] == neg_inf<T>()) m[size_t(h)] = T(0);
      // sweep 2: o = Σ exp(e - m) · x[col], sum = Σ exp(e - m), each from 0 in CSR order
      std::fill(o, o + F, T(0));
      std::fill(sum.begin(), sum.end(), T(0));
      for (int64_t k = b; k < e; ++k) {
        if (k + Traits::kPrefetch < e) {
          const char* p = reinterpret_cast<const char*>(x + col[k + Traits::kPrefetch] * F);
          for (int64_t off = 0; off < F * int64_t(sizeof(T)); off += 64) __builtin_prefetch(p + off, 0, 1);
        }
        const T* er = ev.data() + (k - b) * H;
        const T* xr = x + col[k] * F;
        for (int64_t h = 0; h < H; ++h) {
          const T p = std::exp(er[h] - m[size_t(h)]);
          sum[size_t(h)] += p;
          T* oh = o + h * D;
          const T* xh = xr + h * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) oh[d] = std::fma(p, xh[d], oh[d]);
        }
      }
      for (int64_t h = 0; h < H; ++h) {
        const T l = sum[size_t(h)];
        const bool some = l > T(0) || l != l;
        T* oh = o + h * D;
        if (some) {
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) oh[d] = oh[d] / l;
        }
        if (lse) lse[r * H + h] = some ? m[size_t(h)] + std::log(l) : neg_inf<T>();
      }
    }
  });
}

// ---- GAT backward ---------------------------------------------------------------------------------
// With α[k,h] = exp(leaky(z) - lse[r,h]) (0 when lse = -inf), z = s_src[col k, h] + s_dst[r, h],
// ga[k,h] = ⟨gout[r,h,:], x[col k,h,:]⟩ (gat_dot) and Dr[r,h] = Σ_k α ga (row_dot):
//   gs_dst[r,h] = Σ_{k in row r} α·w,   gs_src[j,h] = Σ_{k in column j} α·w,   w = leaky'(z)·(ga - Dr),
//   gx[j,h,:]   = Σ_{k in column j} α·gout[r,h,:].
// Pass 1 over the CSR rows (D and gs_dst; the row's α, ga and leaky' in a per-thread row buffer),
// pass 2 over the CSC columns (gx and gs_src, α and ga recomputed). Every sum from 0 in CSR or CSC
// order by one thread; nothing of size nnz × heads is written.
template <class T>
inline T gat_alpha(T ev, T l) {
  return l == neg_inf<T>() ? T(0) : std::exp(ev - l);
}

// ⟨a, b⟩ over n: 8 running sums (lane l takes elements ≡ l mod 8, by fma in order), then
// ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)); the CUDA twin's order.
template <class T>
inline T gat_dot(const T* a, const T* b, int64_t n) {
  T s[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  int64_t d = 0;
  for (; d + 8 <= n; d += 8) {
#pragma omp simd
    for (int l = 0; l < 8; ++l) s[l] = std::fma(a[d + l], b[d + l], s[l]);
  }
  for (int l = 0; d + l < n; ++l) s[l] = std::fma(a[d + l], b[d + l], s[l]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

template <class T>
void gat_backward_t(int64_t rows, int64_t H, int64_t D, T slope, const int64_t* row_ptr, const int64_t* col,
                    const int64_t* col_ptr, const int64_t* csc_row, const T* x, const T* s_src, const T* s_dst,
                    const T* lse, const T* gout, T* gx, T* gs_src, T* gs_dst, T* row_dot) {
  const int64_t F = H * D;
  if (gs_src || gs_dst) {
    // pass 1: destinations
    for_each_part<Traits::kPartsPerThread>(row_ptr, rows, F + H, [&](int64_t r0, int64_t r1) {
      std::vector<T> buf;  // per non-zero and head: α, ga, leaky'
      std::vector<T> dsum(static_cast<size_t>(H));
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = row_ptr[r], e = row_ptr[r + 1];
        const T* sd = s_dst + r * H;
        const T* lr = lse + r * H;
        const T* gr = gout + r * F;
        if (buf.size() < size_t((e - b) * H * 3)) buf.resize(size_t((e - b) * H * 3));
        std::fill(dsum.begin(), dsum.end(), T(0));
        for (int64_t k = b; k < e; ++k) {
          if (k + Traits::kPrefetch < e) {  // the source's feature row and scores
            const int64_t jp = col[k + Traits::kPrefetch];
            const char* p = reinterpret_cast<const char*>(x + jp * F);
            for (int64_t off = 0; off < F * int64_t(sizeof(T)); off += 64) __builtin_prefetch(p + off, 0, 1);
            __builtin_prefetch(s_src + jp * H, 0, 1);
          }
          const int64_t j = col[k];
          const T* ss = s_src + j * H;
          const T* xr = x + j * F;
          T* bk = buf.data() + (k - b) * H * 3;
          for (int64_t h = 0; h < H; ++h) {
            const T z = ss[h] + sd[h];
            const T a = gat_alpha(leaky(z, slope), lr[h]);
            const T ga = gat_dot(gr + h * D, xr + h * D, D);
            bk[3 * h] = a;
            bk[3 * h + 1] = ga;
            bk[3 * h + 2] = z > T(0) ? T(1) : slope;
            dsum[size_t(h)] = std::fma(a, ga, dsum[size_t(h)]);
          }
        }
        for (int64_t h = 0; h < H; ++h) row_dot[r * H + h] = dsum[size_t(h)];
        if (!gs_dst) continue;
        for (int64_t h = 0; h < H; ++h) {
          const T dr = dsum[size_t(h)];
          T acc = T(0);
          for (int64_t k = b; k < e; ++k) {
            const T* bk = buf.data() + (k - b) * H * 3 + 3 * h;
            acc = std::fma(bk[0], std::fma(bk[2], bk[1] - dr, T(0)), acc);
          }
          gs_dst[r * H + h] = acc;
        }
      }
    });
  }
  if (!gx && !gs_src) return;
  // pass 2: sources, over the CSC (column j's entries are the edges j -> csc_row[k])
  for_each_part<Traits::kPartsPerThread>(col_ptr, rows, F + H, [&](int64_t c0, int64_t c1) {
    std::vector<T> acc(static_cast<size_t>(H));
    for (int64_t j = c0; j < c1; ++j) {
      const int64_t b = col_ptr[j], e = col_ptr[j + 1];
      const T* ss = s_src + j * H;
      const T* xr = x + j * F;
      T* gxr = gx ? gx + j * F : nullptr;
      if (gxr) std::fill(gxr, gxr + F, T(0));
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t k = b; k < e; ++k) {
        if (k + Traits::kPrefetch < e) {  // the destination's gradient row and its scalars
          const int64_t ip = csc_row[k + Traits::kPrefetch];
          const char* p = reinterpret_cast<const char*>(gout + ip * F);
          for (int64_t off = 0; off < F * int64_t(sizeof(T)); off += 64) __builtin_prefetch(p + off, 0, 1);
          __builtin_prefetch(s_dst + ip * H, 0, 1);
          __builtin_prefetch(lse + ip * H, 0, 1);
          if (gs_src) __builtin_prefetch(row_dot + ip * H, 0, 1);
        }
        const int64_t i = csc_row[k];
        const T* sd = s_dst + i * H;
        const T* lr = lse + i * H;
        const T* gr = gout + i * F;
        for (int64_t h = 0; h < H; ++h) {
          const T z = ss[h] + sd[h];
          const T a = gat_alpha(leaky(z, slope), lr[h]);
          if (gxr) {
            T* gh = gxr + h * D;
            const T* gi = gr + h * D;
#pragma omp simd
            for (int64_t d = 0; d < D; ++d) gh[d] = std::fma(a, gi[d], gh[d]);
          }
          if (gs_src) {
            const T ga = gat_dot(gr + h * D, xr + h * D, D);
            const T lk = z > T(0) ? T(1) : slope;
            acc[size_t(h)] = std::fma(a, std::fma(lk, ga - row_dot[i * H + h], T(0)), acc[size_t(h)]);
          }
        }
      }
      if (gs_src)
        for (int64_t h = 0; h < H; ++h) gs_src[j * H + h] = acc[size_t(h)];
    }
  });
}

}  // namespace

int graph_edge_softmax(int dtype, int64_t rows, int64_t, int64_t heads, const int64_t* row_ptr, const void* scores,
                       const void* lse_in, void* out, void* lse_out, void*) {
  if (dtype == MK_F32)
    edge_softmax_t(rows, heads, row_ptr, static_cast<const float*>(scores), static_cast<const float*>(lse_in),
                   static_cast<float*>(out), static_cast<float*>(lse_out));
  else if (dtype == MK_F64)
    edge_softmax_t(rows, heads, row_ptr, static_cast<const double*>(scores), static_cast<const double*>(lse_in),
                   static_cast<double*>(out), static_cast<double*>(lse_out));
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

int graph_gat(int dtype, int64_t rows, int64_t, int64_t heads, int64_t width, double slope, const int64_t* row_ptr,
              const int64_t* col, const void* x, const void* s_src, const void* s_dst, void* out, void* lse, void*) {
  if (dtype == MK_F32)
    gat_t(rows, heads, width, float(slope), row_ptr, col, static_cast<const float*>(x),
          static_cast<const float*>(s_src), static_cast<const float*>(s_dst), static_cast<float*>(out),
          static_cast<float*>(lse));
  else if (dtype == MK_F64)
    gat_t(rows, heads, width, slope, row_ptr, col, static_cast<const double*>(x), static_cast<const double*>(s_src),
          static_cast<const double*>(s_dst), static_cast<double*>(out), static_cast<double*>(lse));
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

int graph_gat_backward(int dtype, int64_t rows, int64_t, int64_t heads, int64_t width, double slope,
                       const int64_t* row_ptr, const int64_t* col, const int64_t* col_ptr, const int64_t* csc_row,
                       const void* x, const void* s_src, const void* s_dst, const void* lse, const void* gout, void* gx,
                       void* gs_src, void* gs_dst, void* row_dot, void*) {
  if (dtype == MK_F32)
    gat_backward_t(rows, heads, width, float(slope), row_ptr, col, col_ptr, csc_row, static_cast<const float*>(x),
                   static_cast<const float*>(s_src), static_cast<const float*>(s_dst), static_cast<const float*>(lse),
                   static_cast<const float*>(gout), static_cast<float*>(gx), static_cast<float*>(gs_src),
                   static_cast<float*>(gs_dst), static_cast<float*>(row_dot));
  else if (dtype == MK_F64)
    gat_backward_t(rows, heads, width, slope, row_ptr, col, col_ptr, csc_row, static_cast<const double*>(x),
                   static_cast<const double*>(s_src), static_cast<const double*>(s_dst),
                   static_cast<const double*>(lse), static_cast<const double*>(gout), static_cast<double*>(gx),
                   static_cast<double*>(gs_src), static_cast<double*>(gs_dst), static_cast<double*>(row_dot));
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) -----------------------------------------------------------
namespace avx512 {
int graph_edge_softmax(int, int64_t, int64_t, int64_t, const int64_t*, const void*, const void*, void*, void*, void*);
int graph_gat(int, int64_t, int64_t, int64_t, int64_t, double, const int64_t*, const int64_t*, const void*, const void*,
              const void*, void*, void*, void*);
int graph_gat_backward(int, int64_t, int64_t, int64_t, int64_t, double, const int64_t*, const int64_t*, const int64_t*,
                       const int64_t*, const void*, const void*, const void*, const void*, const void*, void*, void*,
                       void*, void*, void*);
}  // namespace avx512

int graph_edge_softmax(int dtype, int64_t rows, int64_t nnz, int64_t heads, const int64_t* row_ptr, const void* scores,
                       const void* lse_in, void* out, void* lse_out, void* stream) {
  if (isa_level() >= 3)
    return avx512::graph_edge_softmax(dtype, rows, nnz, heads, row_ptr, scores, lse_in, out, lse_out, stream);
  return avx2::graph_edge_softmax(dtype, rows, nnz, heads, row_ptr, scores, lse_in, out, lse_out, stream);
}

int graph_gat(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope, const int64_t* row_ptr,
              const int64_t* col, const void* x, const void* s_src, const void* s_dst, void* out, void* lse,
              void* stream) {
  if (isa_level() >= 3)
    return avx512::graph_gat(dtype, rows, nnz, heads, width, slope, row_ptr, col, x, s_src, s_dst, out, lse, stream);
  return avx2::graph_gat(dtype, rows, nnz, heads, width, slope, row_ptr, col, x, s_src, s_dst, out, lse, stream);
}

int graph_gat_backward(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope,
                       const int64_t* row_ptr, const int64_t* col, const int64_t* col_ptr, const int64_t* csc_row,
                       const void* x, const void* s_src, const void* s_dst, const void* lse, const void* gout, void* gx,
                       void* gs_src, void* gs_dst, void* row_dot, void* stream) {
  if (isa_level() >= 3)
    return avx512::graph_gat_backward(dtype, rows, nnz, heads, width, slope, row_ptr, col, col_ptr, csc_row, x, s_src,
                                      s_dst, lse, gout, gx, gs_src, gs_dst, row_dot, stream);
  return avx2::graph_gat_backward(dtype, rows, nnz, heads, width, slope, row_ptr, col, col_ptr, csc_row, x, s_src,
                                  s_dst, lse, gout, gx, gs_src, gs_dst, row_dot, stream);
}
#endif

}  // namespace cpu
}  // namespace mk
