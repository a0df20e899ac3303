// Dense CPU kernels: memory, where, reductions, softmax, indexing, matmul fallback (unary and
// binary elementwise ops are in elementwise.cpp, compiled per ISA).
//
// Shapes follow mk/kernels.inc. OpenMP splits the outer rows once the work is large enough to
// pay for the fork (kMinParallel elements, mk/cpu_parallel.h).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "mk/cpu_parallel.h"
#include "mk/cpu_strided.h"
#include "mk/kernels.h"
#include "mk/matmul_small.h"
#include "mk/scalar.h"
#include "mk/strided.h"
#include "mk/vec_math.h"

namespace mk {
namespace cpu {
namespace {

template <class T>
void where_t(int rank, const int64_t* shape, const T* c, const int64_t* cs, const T* a,
             const int64_t* as, const T* b, const int64_t* bs, T* y) {
  int64_t ys[MK_MAX_RANK];
  int64_t acc = 1;
  for (int d = rank - 1; d >= 0; --d) { ys[d] = acc; acc *= shape[d]; }
  const int64_t* st[3] = {cs, as, bs};
  // collapse with the output's strides folded in via a fourth pass: collapse only the inputs,
  // then walk the output linearly (the output is contiguous in the original order, and
  // collapsing preserves order), so a linear counter is the output index.
  StridedShape s = collapse(rank, shape, 3, st);
  (void)ys;
  if (s.numel == 0) return;
  if (s.rank == 0) { y[0] = c[0] != T(0) ? a[0] : b[0]; return; }
  auto row = [&](const T* const* p, const int64_t* st, int64_t out, int64_t len) {
    T* yr = y + out;
    for (int64_t i = 0; i < len; ++i) yr[i] = p[0][i * st[0]] != T(0) ? p[1][i * st[1]] : p[2][i * st[2]];
  };
  const bool fork = parallel_worth(s.numel);
  if (s.rank == 1) {
    const int64_t inner[3] = {s.strides[0][0], s.strides[1][0], s.strides[2][0]};
    // one row: in segments, so that it still forks
    const int64_t seg = 1 << 14, parts = (s.numel + seg - 1) / seg;
    parallel_for(parts, fork, [&](int64_t q) {
      const T* p[3] = {c + q * seg * inner[0], a + q * seg * inner[1], b + q * seg * inner[2]};
      row(p, inner, q * seg, std::min(seg, s.numel - q * seg));
    });
    return;
  }
  const T* base[3] = {c, a, b};
  for_each_row(s, 3, fork, base, false, row);  // unstaged, as elementwise.cpp's ops
}

// ---- reductions ----------------------------------------------------------------------------
template <class T> struct Acc { using type = double; };  // F32 sums accumulate in double

// Order of summation (in double for F32 and F64): inner == 1, a row by the compiler's SIMD lanes
// (`omp simd reduction`: lane partial sums, then the lanes added; the split depends on the ISA);
// inner > 1, each column strictly in j order, j = 0 .. len-1. Max/min give what a scan in j order
// gives (found by vector passes): the first NaN wins, else the first extreme value (ties keep the
// lower index; of zeros of both signs, the first one's sign). The CUDA twin
// (kernels/cuda/dense.cu) adds in another fixed order (equal to this one for its flat path with
// inner > 1) and gives the same max/min values and indices exactly.
// The max (min) of no elements: -inf (+inf), index 0.
template <class T>
T empty_extreme(int op) {
  return op == MK_REDUCE_MAX ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
}

// One chunk of m <= 256 columns (stride inner between rows) scanned in j order, the scan of the
// inner == 1 form per column: best and its first index.
template <bool MAX, class T>
void column_extremes(int64_t len, int64_t inner, int64_t m, const T* xo, T* best, int64_t* bi) {
  for (int64_t i = 0; i < m; ++i) { best[i] = xo[i]; bi[i] = 0; }
  for (int64_t j = 1; j < len; ++j) {
    const T* xr = xo + j * inner;
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) {
      const T v = xr[i], b = best[i];
      const bool better = (MAX ? v > b : v < b) || (v != v && b == b);
      best[i] = better ? v : b;
      bi[i] = better ? j : bi[i];
    }
  }
}

template <class T>
void reduce_t(int op, int64_t outer, int64_t len, int64_t inner, const T* x, T* y, int64_t* idx) {
  using A = typename Acc<T>::type;
  if (inner == 1) {
    parallel_for(outer, parallel_worth(outer * len), [&](int64_t o) {
      const T* xr = x + o * len;
      if (op == MK_REDUCE_SUM) {
        A s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < len; ++j) s += A(xr[j]);
        y[o] = T(s);
      } else {
        // The scan's result, found in two vector passes (the dependent compare-and-select of a
        // scan ran ~0.9 ns per element in F32): the extreme value and whether any entry is NaN,
        // then the first index holding NaN or a value equal to the extreme (a zero extreme of
        // either sign equals both zeros, so the first zero wins, its sign read from x as the scan
        // kept it). Same value bits and index as the scan.
        if (len == 0) {
          y[o] = empty_extreme<T>(op);
          if (idx) idx[o] = 0;
          return;
        }
        T m = xr[0];
        int nan = 0;
        if (op == MK_REDUCE_MAX) {
#pragma omp simd reduction(max : m) reduction(| : nan)
          for (int64_t j = 0; j < len; ++j) {
            const T v = xr[j];
            m = v > m ? v : m;
            nan |= v != v;
          }
        } else {
#pragma omp simd reduction(min : m) reduction(| : nan)
          for (int64_t j = 0; j < len; ++j) {
            const T v = xr[j];
            m = v < m ? v : m;
            nan |= v != v;
          }
        }
        int64_t bi = 0;
        if (nan) {
          while (bi < len && xr[bi] == xr[bi]) ++bi;
        } else {
          while (bi < len && xr[bi] != m) ++bi;
        }
        if (bi == len) bi = 0;  // not reached: m is an entry (a reduction's identity never wins over xr[0])
        y[o] = xr[bi];
        if (idx) idx[o] = bi;
      }
    });
    return;
  }
  // work items: (o, a chunk of 256 columns), walked row by row (unit stride over inner; a
  // column-at-a-time walk strode len rows apart per element), so that a reduction over a leading
  // dim (outer 1) forks as well; each column keeps its order, whatever thread takes it
  constexpr int64_t kChunk = 256;
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  parallel_for(outer * chunks, parallel_worth(outer * len * inner), [&](int64_t t) {
    const int64_t o = t / chunks, i0 = (t % chunks) * kChunk, m = std::min(kChunk, inner - i0);
    const T* xo = x + o * len * inner + i0;
    T* yo = y + o * inner + i0;
    int64_t* io = idx ? idx + o * inner + i0 : nullptr;
    if (op == MK_REDUCE_SUM) {
      // accumulated in A precision, each column in j order
      A acc[kChunk];
      for (int64_t i = 0; i < m; ++i) acc[i] = 0;
      for (int64_t j = 0; j < len; ++j) {
        const T* xr = xo + j * inner;
#pragma omp simd
        for (int64_t i = 0; i < m; ++i) acc[i] += A(xr[i]);
      }
      for (int64_t i = 0; i < m; ++i) yo[i] = T(acc[i]);
      return;
    }
    // each column scanned in j order as above
    if (len == 0) {
      for (int64_t i = 0; i < m; ++i) {
        yo[i] = empty_extreme<T>(op);
        if (io) io[i] = 0;
      }
      return;
    }
    T best[kChunk];
    int64_t bi[kChunk];
    if (op == MK_REDUCE_MAX) column_extremes<true>(len, inner, m, xo, best, bi);
    else column_extremes<false>(len, inner, m, xo, best, bi);
    for (int64_t i = 0; i < m; ++i) {
      yo[i] = best[i];
      if (io) io[i] = bi[i];
    }
  });
}

template <class T>
void softmax_t(int log, int64_t rows, int64_t cols, const T* x, T* y) {
  parallel_for(rows, parallel_worth(rows * cols), [&](int64_t r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    // the row maximum, NaN when any entry is NaN: NaN in -> NaN out for the whole row (a maximum
    // that skipped NaN sent a row of NaN down the all -inf branch below and returned numbers).
    // Vectorised (a maximum is exact in any order); then, in a row with NaN, the NaN a scan in row
    // order, m = (x > m || x != x) ? x : m, keeps (the last), whose payload reaches the output. The
    // same bits as that scan, which ran ~1 ns per element: where the order picks the sign of a zero
    // maximum instead, no result sees it (x - m gives the same bits for m = -0 and +0, and
    // exp(-0) = exp(+0) = 1).
    T m = -std::numeric_limits<T>::infinity();
    int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (int64_t c = 0; c < cols; ++c) {
      const T v = xr[c];
      m = v > m ? v : m;
      nan |= v != v;
    }
    if (nan) {
      for (int64_t c = cols - 1; c >= 0; --c)
        if (xr[c] != xr[c]) {
          m = xr[c];
          break;
        }
    }
    if (m == -std::numeric_limits<T>::infinity()) {  // every entry -inf: define the row as 0
      for (int64_t c = 0; c < cols; ++c) yr[c] = log ? -std::numeric_limits<T>::infinity() : T(0);
      return;  // next row
    }
    // exponentials vectorised (vmath::exp); the sum in double, in row order
    double s = 0;
    if (log) {
      for (int64_t c0 = 0; c0 < cols; c0 += 256) {
        T buf[256];
        const int64_t n = std::min<int64_t>(256, cols - c0);
#pragma omp simd
        for (int64_t c = 0; c < n; ++c) buf[c] = vmath::exp(xr[c0 + c] - m);
        for (int64_t c = 0; c < n; ++c) s += double(buf[c]);
      }
    } else {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] = vmath::exp(xr[c] - m);
      for (int64_t c = 0; c < cols; ++c) s += double(yr[c]);
    }
    if (log) {
      // (x - m) - log(s), as PyTorch: x - (m + log(s)) rounded m + log(s) at the scale of |m|, so
      // at logits near 1e4 an F32 row lost ~3e-4 (cross-entropy's value and gradient with it)
      const T ls = T(std::log(s));
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - m) - ls;
    } else {
      const T inv = T(1.0 / s);
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
    }
  });
}

// ---- indexing ------------------------------------------------------------------------------
template <class T>
void index_select_t(int64_t outer, int64_t src_len, int64_t inner, const T* x, const int64_t* idx,
                    int64_t n_idx, T* y) {
  // one (o, j) row per iteration (the collapse(2) of the two loops, flattened by hand)
  parallel_for(outer * n_idx, parallel_worth(outer * n_idx * inner), [&](int64_t t) {
    const int64_t o = t / n_idx, j = t % n_idx;
    std::memcpy(y + (o * n_idx + j) * inner, x + (o * src_len + idx[j]) * inner, sizeof(T) * size_t(inner));
  });
}

template <class T>
void index_add_t(int64_t outer, int64_t dst_len, int64_t inner, T* dst, const int64_t* idx,
                 int64_t n_idx, const T* src) {
  // Each (o, i) column is owned by one thread and walked in j order: deterministic, no atomics.
  if (inner >= 16 || outer > 1) {
    parallel_for(outer, parallel_worth(outer * n_idx * inner), [&](int64_t o) {
      for (int64_t j = 0; j < n_idx; ++j) {
        T* d = dst + (o * dst_len + idx[j]) * inner;
        const T* s = src + (o * n_idx + j) * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) d[i] += s[i];
      }
    });
  } else {
    for (int64_t j = 0; j < n_idx; ++j)
      for (int64_t i = 0; i < inner; ++i) dst[idx[j] * inner + i] += src[j * inner + i];
  }
}

template <class T>
void gather_t(int64_t outer, int64_t src_len, int64_t inner, const T* x, const int64_t* idx,
              int64_t idx_len, T* y) {
  // one (o, j) row per iteration (the collapse(2) of the two loops, flattened by hand)
  parallel_for(outer * idx_len, parallel_worth(outer * idx_len * inner), [&](int64_t t) {
    const int64_t o = t / idx_len, j = t % idx_len;
    const int64_t* ij = idx + (o * idx_len + j) * inner;
    T* yj = y + (o * idx_len + j) * inner;
    const T* xo = x + o * src_len * inner;
    for (int64_t i = 0; i < inner; ++i) yj[i] = xo[ij[i] * inner + i];
  });
}

template <class T>
void scatter_add_t(int64_t outer, int64_t dst_len, int64_t inner, T* dst, const int64_t* idx,
                   int64_t idx_len, const T* src) {
  // (o, i) columns are disjoint: parallel over o, sequential over j.
  parallel_for(outer, parallel_worth(outer * idx_len * inner), [&](int64_t o) {
    T* d = dst + o * dst_len * inner;
    for (int64_t j = 0; j < idx_len; ++j) {
      const int64_t* ij = idx + (o * idx_len + j) * inner;
      const T* sj = src + (o * idx_len + j) * inner;
      for (int64_t i = 0; i < inner; ++i) d[ij[i] * inner + i] += sj[i];
    }
  });
}

// C[bb] = A[bb] B[bb] by rows: C's row i accumulates a[i, p] · B's row p for p = 0, 1, ... in order
// (an axpy over j, vectorised when B's rows are contiguous). The fallback for the products nothing
// faster takes: the tiny batches and short output rows go to kernels/cpu/matmul_small.cpp (the
// same FMAs in the same order for the batches), the rest to BLAS; this runs when no BLAS is
// attached. A transposed B is first copied into a [k, n] row-major buffer per matrix (at most
// kPackElems elements, else the strided loop), and the same axpys run on it.
constexpr int64_t kPackElems = 8192;

template <class T>
void matmul_naive_t(int64_t batch, int64_t m, int64_t n, int64_t k, const T* a, int64_t a_bs,
                    int64_t a_rs, int64_t a_cs, const T* b, int64_t b_bs, int64_t b_rs,
                    int64_t b_cs, T* c, int64_t c_bs) {
  // row i of C[bb] from B's rows at br0 (row stride rs, column stride cs)
  auto rows = [&](int64_t bb, int64_t i, const T* br0, int64_t rs, int64_t cs) {
    T* cr = c + bb * c_bs + i * n;
    for (int64_t j = 0; j < n; ++j) cr[j] = T(0);
    const T* ar = a + bb * a_bs + i * a_rs;
    for (int64_t p = 0; p < k; ++p) {
      const T av = ar[p * a_cs];
      const T* br = br0 + p * rs;
      if (cs == 1) {
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) cr[j] += av * br[j];
      } else {
        for (int64_t j = 0; j < n; ++j) cr[j] += av * br[j * cs];
      }
    }
  };
  if (b_cs != 1 && n > 1 && k * n <= kPackElems) {
    parallel_for(batch, parallel_worth_fma(batch * m * n * k), [&](int64_t bb) {
      alignas(64) T pack[kPackElems];
      const T* bm = b + bb * b_bs;
      for (int64_t p = 0; p < k; ++p)
        for (int64_t j = 0; j < n; ++j) pack[p * n + j] = bm[p * b_rs + j * b_cs];
      for (int64_t i = 0; i < m; ++i) rows(bb, i, pack, n, 1);
    });
    return;
  }
  // one (bb, i) output row per iteration (the collapse(2) of the two loops, flattened by hand)
  parallel_for(batch * m, parallel_worth_fma(batch * m * n * k), [&](int64_t t) {
    const int64_t bb = t / m;
    rows(bb, t % m, b + bb * b_bs, b_rs, b_cs);
  });
}

}  // namespace

// ---- entry points (signatures from mk/kernels.inc) ------------------------------------------
int fill(int dtype, int64_t n, void* dst, double value, void*) {
  switch (dtype) {
    case MK_F32: std::fill_n(static_cast<float*>(dst), n, float(value)); break;
    case MK_F64: std::fill_n(static_cast<double*>(dst), n, value); break;
    case MK_I64: std::fill_n(static_cast<int64_t*>(dst), n, f64_to_i64(value)); break;
    case MK_BF16: std::fill_n(static_cast<uint16_t*>(dst), n, f64_to_bf16_bits(value)); break;
    case MK_F16: std::fill_n(static_cast<uint16_t*>(dst), n, f64_to_f16_bits(value)); break;
    default: return KERNEL_UNSUPPORTED;
  }
  return 0;
}

// len (< kShortRow) contiguous elements by fixed-size moves (each inlined as one vector or scalar
// move): whole chunks of 8, then the rest as one chunk of 8, 4 or 2 ending at len, overlapping
// what is already copied (the same values; source and destination do not overlap). The simd loop
// this replaced ran a row of 10 floats' remainder element by element.
template <class T>
static inline void copy_short(T* d, const T* s, int64_t len) {
  if (len >= 8) {
    int64_t c = 0;
    for (; c + 8 <= len; c += 8) std::memcpy(d + c, s + c, 8 * sizeof(T));
    if (c < len) std::memcpy(d + len - 8, s + len - 8, 8 * sizeof(T));
  } else if (len >= 4) {
    std::memcpy(d, s, 4 * sizeof(T));
    std::memcpy(d + len - 4, s + len - 4, 4 * sizeof(T));
  } else if (len >= 2) {
    std::memcpy(d, s, 2 * sizeof(T));
    std::memcpy(d + len - 2, s + len - 2, 2 * sizeof(T));
  } else {
    d[0] = s[0];
  }
}

// Rows shorter than this, contiguous on both sides (a last-dim narrow or a concat piece), are
// copied by the short-row path below.
constexpr int64_t kShortRow = 64;

template <class T>
static void copy_t(int rank, const int64_t* shape, const T* src, const int64_t* ss, T* dst,
                   const int64_t* ds) {
  const int64_t* st[2] = {ss, ds};
  StridedShape s = collapse(rank, shape, 2, st);
  if (s.numel == 0) return;
  if (s.rank <= 1) {
    const int64_t a = s.rank == 0 ? 1 : s.strides[0][0], b = s.rank == 0 ? 1 : s.strides[1][0];
    if (a == 1 && b == 1) { std::memcpy(dst, src, sizeof(T) * size_t(s.numel)); return; }
    parallel_for(s.numel, parallel_worth(s.numel), [&](int64_t i) { dst[i * b] = src[i * a]; });
    return;
  }
  if (s.rank == 2 && s.shape[1] < kShortRow && s.strides[0][1] == 1 && s.strides[1][1] == 1) {
    // many short contiguous rows (concat along the last dim, a last-dim narrow made contiguous):
    // blocks of rows, each row's address by one multiply. [1024 x 11, 10] out of rows of 11 floats
    // took 140 us in the general walk (for_each_row: an index division and a call per row), 46 us
    // here with plain 8/4/2/1 chunks and 31 us with copy_short's overlapping tail; copy_short
    // inside the general walk gained nothing (2026-12-07, one thread)
    const int64_t rows = s.shape[0], len = s.shape[1], sa = s.strides[0][0], sb = s.strides[1][0];
    constexpr int64_t kBlock = 512;
    parallel_for((rows + kBlock - 1) / kBlock, parallel_worth(s.numel), [&](int64_t blk) {
      const int64_t r1 = std::min(rows, (blk + 1) * kBlock);
      for (int64_t r = blk * kBlock; r < r1; ++r) copy_short(dst + r * sb, src + r * sa, len);
    });
    return;
  }
  // operand 1 is the destination, written through the pointer the walk hands back; the source
  // may be staged
  const T* base[2] = {src, dst};
  for_each_row(s, 2, parallel_worth(s.numel), base, true,
               [&](const T* const* p, const int64_t* st, int64_t, int64_t len) {
    const T* sr = p[0];
    T* dr = const_cast<T*>(p[1]);
    const int64_t a = st[0], b = st[1];
    if (a == 1 && b == 1) {
      // a tile's segment is short: GCC inlines a short memcpy as `rep movsq`, whose start-up cost
      // took a third of a transposed copy; a plain loop vectorises
      if (len >= 1024) std::memcpy(dr, sr, sizeof(T) * size_t(len));
      else
#pragma omp simd
        for (int64_t c = 0; c < len; ++c) dr[c] = sr[c];
    } else {
      for (int64_t c = 0; c < len; ++c) dr[c * b] = sr[c * a];
    }
  });
}

int copy_strided(int dtype, int rank, const int64_t* shape, const void* src,
                 const int64_t* src_strides, void* dst, const int64_t* dst_strides, void*) {
  switch (dtype_size(dtype)) {
    case 8: copy_t(rank, shape, static_cast<const int64_t*>(src), src_strides,
                   static_cast<int64_t*>(dst), dst_strides); break;
    case 4: copy_t(rank, shape, static_cast<const int32_t*>(src), src_strides,
                   static_cast<int32_t*>(dst), dst_strides); break;
    case 2: copy_t(rank, shape, static_cast<const uint16_t*>(src), src_strides,
                   static_cast<uint16_t*>(dst), dst_strides); break;
    default: return KERNEL_UNSUPPORTED;
  }
  return 0;
}

template <class S>
static float load_f32(const void* p, int64_t i) {
  return float(static_cast<const S*>(p)[i]);
}

int cast(int src_dtype, int dst_dtype, int64_t n, const void* src, void* dst, void*) {
  if (src_dtype == dst_dtype && n > 0) {  // a copy: I64 through double lost the bits past 2^53
    const int64_t size = src_dtype == MK_F64 || src_dtype == MK_I64 ? 8 : src_dtype == MK_F32 ? 4 : 2;
    std::memcpy(dst, src, size_t(n * size));
    return 0;
  }
  // Read element i of src as double, write as dst_dtype.
  auto read = [&](int64_t i) -> double {
    switch (src_dtype) {
      case MK_F32: return static_cast<const float*>(src)[i];
      case MK_F64: return static_cast<const double*>(src)[i];
      case MK_I64: return double(static_cast<const int64_t*>(src)[i]);
      case MK_BF16: return bf16_bits_to_f32(static_cast<const uint16_t*>(src)[i]);
      case MK_F16: return f16_bits_to_f32(static_cast<const uint16_t*>(src)[i]);
      default: return 0;
    }
  };
  // one rounding to the destination: F64 to BF16/F16 through a float rounded to odd
  // (mk/scalar.h); I64 to F32 directly (through double it could round twice); I64 to BF16/F16
  // through a double rounded to odd. Floating point to I64: toward zero, NaN 0, saturating.
  if (src_dtype == MK_I64 && dst_dtype == MK_F32) {
    const int64_t* s = static_cast<const int64_t*>(src);
    float* d = static_cast<float*>(dst);
    parallel_for(n, parallel_worth(n), [&](int64_t i) { d[i] = float(s[i]); });
    return 0;
  }
  if (src_dtype == MK_I64 && (dst_dtype == MK_BF16 || dst_dtype == MK_F16)) {
    const int64_t* s = static_cast<const int64_t*>(src);
    uint16_t* d = static_cast<uint16_t*>(dst);
    if (dst_dtype == MK_BF16)
      parallel_for(n, parallel_worth(n), [&](int64_t i) { d[i] = f64_to_bf16_bits(i64_to_f64_round_odd(s[i])); });
    else
      parallel_for(n, parallel_worth(n), [&](int64_t i) { d[i] = f64_to_f16_bits(i64_to_f64_round_odd(s[i])); });
    return 0;
  }
  parallel_for(n, parallel_worth(n), [&](int64_t i) {
    const double v = read(i);
    switch (dst_dtype) {
      case MK_F32: static_cast<float*>(dst)[i] = float(v); break;
      case MK_F64: static_cast<double*>(dst)[i] = v; break;
      case MK_I64: static_cast<int64_t*>(dst)[i] = f64_to_i64(v); break;
      case MK_BF16: static_cast<uint16_t*>(dst)[i] = f64_to_bf16_bits(v); break;
      case MK_F16: static_cast<uint16_t*>(dst)[i] = f64_to_f16_bits(v); break;
      default: break;
    }
  });
  return 0;
}

int where(int dtype, int rank, const int64_t* shape, const void* cond, const int64_t* c_strides,
          const void* a, const int64_t* a_strides, const void* b, const int64_t* b_strides,
          void* out, void*) {
  if (dtype == MK_F32)
    where_t(rank, shape, static_cast<const float*>(cond), c_strides,
            static_cast<const float*>(a), a_strides, static_cast<const float*>(b), b_strides,
            static_cast<float*>(out));
  else
    where_t(rank, shape, static_cast<const double*>(cond), c_strides,
            static_cast<const double*>(a), a_strides, static_cast<const double*>(b), b_strides,
            static_cast<double*>(out));
  return 0;
}

int reduce(int dtype, int op, int64_t outer, int64_t len, int64_t inner, const void* x, void* y,
           int64_t* indices, void*) {
  if (dtype == MK_F32)
    reduce_t(op, outer, len, inner, static_cast<const float*>(x), static_cast<float*>(y), indices);
  else
    reduce_t(op, outer, len, inner, static_cast<const double*>(x), static_cast<double*>(y), indices);
  return 0;
}

// The CPU needs no scratch: each output is one thread's scan (see reduce_t for the order).
int64_t reduce_workspace(int, int, int64_t, int64_t, int64_t) { return 0; }

int reduce_split(int dtype, int op, int64_t outer, int64_t len, int64_t inner, const void* x, void* y,
                 int64_t* indices, void*, int64_t, void* stream) {
  return reduce(dtype, op, outer, len, inner, x, y, indices, stream);
}

// Nothing to launch on the CPU (mk_runtime_noop).
int noop(void*) { return 0; }

int softmax(int dtype, int log, int64_t rows, int64_t cols, const void* x, void* y, void*) {
  if (dtype == MK_F32)
    softmax_t(log, rows, cols, static_cast<const float*>(x), static_cast<float*>(y));
  else
    softmax_t(log, rows, cols, static_cast<const double*>(x), static_cast<double*>(y));
  return 0;
}

int index_select(int dtype, int64_t outer, int64_t src_len, int64_t inner, const void* x,
                 const int64_t* idx, int64_t n_idx, void* y, void*) {
  switch (dtype_size(dtype)) {
    case 8: index_select_t(outer, src_len, inner, static_cast<const int64_t*>(x), idx, n_idx,
                           static_cast<int64_t*>(y)); break;
    case 4: index_select_t(outer, src_len, inner, static_cast<const int32_t*>(x), idx, n_idx,
                           static_cast<int32_t*>(y)); break;
    case 2: index_select_t(outer, src_len, inner, static_cast<const uint16_t*>(x), idx, n_idx,
                           static_cast<uint16_t*>(y)); break;
    default: return KERNEL_UNSUPPORTED;
  }
  return 0;
}

int index_add(int dtype, int64_t outer, int64_t dst_len, int64_t inner, void* dst,
              const int64_t* idx, int64_t n_idx, const void* src, void*) {
  if (dtype == MK_F32)
    index_add_t(outer, dst_len, inner, static_cast<float*>(dst), idx, n_idx,
                static_cast<const float*>(src));
  else
    index_add_t(outer, dst_len, inner, static_cast<double*>(dst), idx, n_idx,
                static_cast<const double*>(src));
  return 0;
}

int gather(int dtype, int64_t outer, int64_t src_len, int64_t inner, const void* x,
           const int64_t* idx, int64_t idx_len, void* y, void*) {
  if (dtype == MK_F32)
    gather_t(outer, src_len, inner, static_cast<const float*>(x), idx, idx_len,
             static_cast<float*>(y));
  else
    gather_t(outer, src_len, inner, static_cast<const double*>(x), idx, idx_len,
             static_cast<double*>(y));
  return 0;
}

int scatter_add(int dtype, int64_t outer, int64_t dst_len, int64_t inner, void* dst,
                const int64_t* idx, int64_t idx_len, const void* src, void*) {
  if (dtype == MK_F32)
    scatter_add_t(outer, dst_len, inner, static_cast<float*>(dst), idx, idx_len,
                  static_cast<const float*>(src));
  else
    scatter_add_t(outer, dst_len, inner, static_cast<double*>(dst), idx, idx_len,
                  static_cast<const double*>(src));
  return 0;
}

int index_check(int64_t n, const int64_t* idx, int64_t bound, int64_t* bad, void*) {
  int64_t count = 0;
  if (parallel_worth(n)) {
#pragma omp parallel for reduction(+ : count) schedule(static)
    for (int64_t i = 0; i < n; ++i) count += (idx[i] < 0 || idx[i] >= bound) ? 1 : 0;
  } else {
    for (int64_t i = 0; i < n; ++i) count += (idx[i] < 0 || idx[i] >= bound) ? 1 : 0;
  }
  *bad = count;
  return 0;
}

int matmul_naive(int dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a,
                 int64_t a_bs, int64_t a_rs, int64_t a_cs, const void* b, int64_t b_bs,
                 int64_t b_rs, int64_t b_cs, void* c, int64_t c_bs, void*) {
  if (matmul_small_fits(batch, m, n, k))  // register-blocked tile products (kernels/cpu/matmul_small.cpp)
    return matmul_small(dtype, batch, m, n, k, a, a_bs, a_rs, a_cs, b, b_bs, b_rs, b_cs, c, c_bs);
  if (dtype == MK_F32)
    matmul_naive_t(batch, m, n, k, static_cast<const float*>(a), a_bs, a_rs, a_cs,
                   static_cast<const float*>(b), b_bs, b_rs, b_cs, static_cast<float*>(c), c_bs);
  else
    matmul_naive_t(batch, m, n, k, static_cast<const double*>(a), a_bs, a_rs, a_cs,
                   static_cast<const double*>(b), b_bs, b_rs, b_cs, static_cast<double*>(c), c_bs);
  return 0;
}

}  // namespace cpu
}  // namespace mk
