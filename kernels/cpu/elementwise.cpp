// Unary and binary elementwise kernels on the CPU (MK_MULTI_ISA: compiled for AVX2 and for
// AVX-512; the AVX2 build also holds the dispatcher). Shapes in mk/kernels.inc.
//
// The iteration space is collapsed first (mk/strided.h) so contiguous inputs run as one flat
// loop; each op is a separate instantiation of the loops, so they vectorise at the compiled
// width, exp/log/tanh/sigmoid/gelu included (mk/vec_math.h). OpenMP splits the outer rows once
// the work is large enough to pay for the fork (mk/cpu_parallel.h).
#include <omp.h>

#include <cmath>

#include "mk/cpu_parallel.h"
#include "mk/cpu_strided.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"
#include "mk/scalar.h"
#include "mk/strided.h"
#include "mk/vec_math.h"

namespace mk {
namespace cpu {
namespace MK_ISA_NS {
namespace {

// ---- elementwise drivers -------------------------------------------------------------------
// Transposed inputs are read in the walk's tiles element by element, not staged through its
// transposing buffer (mk/cpu_strided.h): measured 2026-12-07 on the 2-core VM, [4019, 4019] F32,
// y + xᵀ 17 ms unstaged against 21 ms staged, exp(xᵀ) 12-14 against 19-20 (the staged copy
// wins: 17 against 22-25 ms).
constexpr bool kStaged = false;
// Small calls never enter libgomp (mk/cpu_parallel.h); the flat loops are simd either way.
template <class T, class F>
void strided_map1(const StridedShape& s, const T* x, T* y, F f) {
  if (s.numel == 0) return;
  const bool fork = parallel_worth(s.numel);
  if (s.rank <= 1) {
    const int64_t n = s.numel;
    const int64_t sx = s.rank == 0 ? 1 : s.strides[0][0];
    if (sx == 1) {
      parallel_for_simd(n, fork, [&](int64_t i) MK_LAMBDA_INLINE { y[i] = f(x[i]); });
    } else {
      parallel_for(n, fork, [&](int64_t i) MK_LAMBDA_INLINE { y[i] = f(x[i * sx]); });
    }
    return;
  }
  const T* base[1] = {x};
  for_each_row(s, 1, fork, base, kStaged, [&](const T* const* p, const int64_t* st, int64_t out, int64_t len) {
    const T* xr = p[0];
    const int64_t sx = st[0];
    T* yr = y + out;
    if (sx == 1) {
#pragma omp simd
      for (int64_t c = 0; c < len; ++c) yr[c] = f(xr[c]);
    } else {
      for (int64_t c = 0; c < len; ++c) yr[c] = f(xr[c * sx]);
    }
  });
}

template <class T, class F>
void strided_map2(const StridedShape& s, const T* a, const T* b, T* y, F f) {
  if (s.numel == 0) return;
  const bool fork = parallel_worth(s.numel);
  if (s.rank <= 1) {
    const int64_t n = s.numel;
    const int64_t sa = s.rank == 0 ? 1 : s.strides[0][0];
    const int64_t sb = s.rank == 0 ? 1 : s.strides[1][0];
    if (sa == 1 && sb == 1) {
      parallel_for_simd(n, fork, [&](int64_t i) MK_LAMBDA_INLINE { y[i] = f(a[i], b[i]); });
    } else if (sa == 1 && sb == 0) {
      const T bv = b[0];
      parallel_for_simd(n, fork, [&](int64_t i) MK_LAMBDA_INLINE { y[i] = f(a[i], bv); });
    } else if (sa == 0 && sb == 1) {
      const T av = a[0];
      parallel_for_simd(n, fork, [&](int64_t i) MK_LAMBDA_INLINE { y[i] = f(av, b[i]); });
    } else {
      parallel_for(n, fork, [&](int64_t i) MK_LAMBDA_INLINE { y[i] = f(a[i * sa], b[i * sb]); });
    }
    return;
  }
  const T* base[2] = {a, b};
  for_each_row(s, 2, fork, base, kStaged, [&](const T* const* p, const int64_t* st, int64_t out, int64_t len) {
    const T* ar = p[0];
    const T* br = p[1];
    const int64_t sa = st[0], sb = st[1];
    T* yr = y + out;
    if (sa == 1 && sb == 1) {
#pragma omp simd
      for (int64_t c = 0; c < len; ++c) yr[c] = f(ar[c], br[c]);
    } else if (sa == 1 && sb == 0) {
      const T bv = br[0];
#pragma omp simd
      for (int64_t c = 0; c < len; ++c) yr[c] = f(ar[c], bv);
    } else if (sa == 0 && sb == 1) {
      const T av = ar[0];
#pragma omp simd
      for (int64_t c = 0; c < len; ++c) yr[c] = f(av, br[c]);
    } else if (sa == 1) {
      for (int64_t c = 0; c < len; ++c) yr[c] = f(ar[c], br[c * sb]);
    } else if (sb == 1) {
      for (int64_t c = 0; c < len; ++c) yr[c] = f(ar[c * sa], br[c]);
    } else {
      for (int64_t c = 0; c < len; ++c) yr[c] = f(ar[c * sa], br[c * sb]);
    }
  });
}

// The CPU form of op(x; p): mk/scalar.h's definition, with the transcendental ops replaced by
// the vectorisable mk/vec_math.h (libm calls would keep the loops scalar). A template on the op
// and forced inline, so each loop body is just its op (GCC keeps big switches out of line).
template <int OP, class T>
MK_VINLINE T unary_op(T x, T p) {
  if constexpr (OP == MK_UNARY_EXP) return vmath::exp(x);
  else if constexpr (OP == MK_UNARY_LOG) return vmath::log(x);
  else if constexpr (OP == MK_UNARY_TANH) return vmath::tanh(x);
  else if constexpr (OP == MK_UNARY_SIGMOID) return vmath::sigmoid(x);
  else if constexpr (OP == MK_UNARY_GELU) return vmath::gelu(x);
  else if constexpr (OP == MK_UNARY_ELU1) { const T e = vmath::exp(x); return x > T(0) ? x + T(1) : e; }
  else if constexpr (OP == MK_UNARY_ELU1_GRAD) { const T e = vmath::exp(x); return x > T(0) ? T(1) : e; }
  else if constexpr (OP == MK_UNARY_SOFTPLUS) {
    // max(x, 0) + log1p(e), e = exp(-|x|) <= 1, with log1p(e) = log(w) e / (w - 1), w = 1 + e
    // (Goldberg): vmath's log vectorises where std::log1p would not, and the quotient restores the
    // bits of e that w lost, so tiny e (x << 0, where softplus(x) ~ e) keeps full relative accuracy.
    const T e = vmath::exp(x > T(0) ? -x : x);
    const T w = T(1) + e;
    const T l = w == T(1) ? e : vmath::log(w) * (e / (w - T(1)));
    return (x > T(0) ? x : T(0)) + l;
  }
  else return unary_apply<T>(OP, x, p);
}

// Specialise the functor on the op so the inner loops vectorise (a switch per element would not):
// one instantiation per code of mk_unary_op / mk_binary_op, found by a compile-time walk over
// [0, COUNT), so a new op in metakernels.h needs no case list here.
template <class T, int OP = 0, class Body>
void with_unary(int op, T p, Body body) {
  if constexpr (OP < MK_UNARY_COUNT) {
    if (op == OP) body([p](T x) MK_LAMBDA_INLINE { return unary_op<OP, T>(x, p); });
    else with_unary<T, OP + 1>(op, p, body);
  }
}

template <class T, int OP = 0, class Body>
void with_binary(int op, Body body) {
  if constexpr (OP < MK_BINARY_COUNT) {
    if (op == OP) body([](T a, T b) MK_LAMBDA_INLINE { return binary_apply<T>(OP, a, b); });
    else with_binary<T, OP + 1>(op, body);
  }
}

template <class T>
void unary_t(int op, int rank, const int64_t* shape, const T* x, const int64_t* xs, T* y, double p) {
  int64_t ys[MK_MAX_RANK];
  int64_t acc = 1;
  for (int d = rank - 1; d >= 0; --d) { ys[d] = acc; acc *= shape[d]; }
  const int64_t* st[2] = {xs, ys};
  StridedShape s = collapse(rank, shape, 2, st);
  // the output is contiguous, so its collapsed strides equal s.out_strides
  with_unary<T>(op, T(p), [&](auto f) { strided_map1(s, x, y, f); });
}

template <class T>
void binary_t(int op, int rank, const int64_t* shape, const T* a, const int64_t* as, const T* b,
              const int64_t* bs, T* y) {
  int64_t ys[MK_MAX_RANK];
  int64_t acc = 1;
  for (int d = rank - 1; d >= 0; --d) { ys[d] = acc; acc *= shape[d]; }
  const int64_t* st[3] = {as, bs, ys};
  StridedShape s = collapse(rank, shape, 3, st);
  with_binary<T>(op, [&](auto f) { strided_map2(s, a, b, y, f); });
}

}  // namespace

int unary(int dtype, int op, int rank, const int64_t* shape, const void* x,
          const int64_t* x_strides, void* y, double p, void*) {
  if (dtype == MK_F32)
    unary_t(op, rank, shape, static_cast<const float*>(x), x_strides, static_cast<float*>(y), p);
  else
    unary_t(op, rank, shape, static_cast<const double*>(x), x_strides, static_cast<double*>(y), p);
  return 0;
}

int binary(int dtype, int op, int rank, const int64_t* shape, const void* a,
           const int64_t* a_strides, const void* b, const int64_t* b_strides, void* out, void*) {
  if (dtype == MK_F32)
    binary_t(op, rank, shape, static_cast<const float*>(a), a_strides,
             static_cast<const float*>(b), b_strides, static_cast<float*>(out));
  else
    binary_t(op, rank, shape, static_cast<const double*>(a), a_strides,
             static_cast<const double*>(b), b_strides, static_cast<double*>(out));
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) ------------------------------------------------------
namespace avx512 {
int unary(int, int, int, const int64_t*, const void*, const int64_t*, void*, double, void*);
int binary(int, int, int, const int64_t*, const void*, const int64_t*, const void*, const int64_t*,
           void*, void*);
}  // namespace avx512

int unary(int dtype, int op, int rank, const int64_t* shape, const void* x,
          const int64_t* x_strides, void* y, double p, void* stream) {
  if (isa_level() >= 3) return avx512::unary(dtype, op, rank, shape, x, x_strides, y, p, stream);
  return avx2::unary(dtype, op, rank, shape, x, x_strides, y, p, stream);
}

int binary(int dtype, int op, int rank, const int64_t* shape, const void* a,
           const int64_t* a_strides, const void* b, const int64_t* b_strides, void* out,
           void* stream) {
  if (isa_level() >= 3)
    return avx512::binary(dtype, op, rank, shape, a, a_strides, b, b_strides, out, stream);
  return avx2::binary(dtype, op, rank, shape, a, a_strides, b, b_strides, out, stream);
}
#endif

}  // namespace cpu
}  // namespace mk
