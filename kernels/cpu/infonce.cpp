// The fused InfoNCE rows on the CPU (MK_MULTI_ISA: compiled for AVX2 and for AVX-512; the AVX2
// build also holds the dispatchers), the oracle of kernels/cuda/infonce.cu. Shapes and meaning:
// mk/kernels.inc (infonce_forward / infonce_backward).
//
//   forward   per row, one thread: the maxima of u (every column) and of s (the positives), then
//             the two sums of exponentials (vmath::exp, vectorised) in double over 8 fixed lanes,
//             folded in lane order: the bits depend on the row alone, not on the thread count or
//             the ISA. The positives reuse the row's exponentials (u = s there) unless their
//             maximum sits more than share_limit below the row's: one exp per element, not two.
//             Reads s, the mask and the log-weights twice (the row stays in L1/L2 between the
//             passes); writes 3 numbers per row. The composed form it replaces
//             (ops/Functional.infoNce before 2026-12-06) made eight [rows, cols] temporaries.
//   backward  per element: grad_s = g (e^{u − lse_all} − [positive] e^{s − lse_pos}), grad_logw =
//             [not positive] g e^{u − lse_all}; one pass, vectorised, rows split across threads; the
//             positive part as e^{u − lse_all} e^{loss} while the loss is below share_limit.
// The CUDA twin computes every exponential itself (two per element): the same values to rounding.
// Rows are split across threads only when the work is worth a fork (mk/cpu_parallel.h).
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "mk/cpu_parallel.h"
#include "mk/isa_ns.h"
#include "mk/infonce_layout.h"
#include "mk/kernels.h"
#include "mk/vec_math.h"

namespace mk {
namespace cpu {
namespace MK_ISA_NS {
namespace {

constexpr int kLanes = 8;

// How far (in log units) the positives' maximum may sit below the row's, or the loss be, for the
// positives to share the row's exponentials: e^{−share_limit} stays a normal number with margin.
template <class T>
constexpr T share_limit() {
  return sizeof(T) == 4 ? T(60) : T(600);
}

// Whether column j of row r is a positive: the mask's entry, or (no mask) the diagonal.
template <bool MASK, class T>
inline bool positive(const T* pr, int64_t r, int64_t j) {
  if constexpr (MASK) {
    return pr[j] != T(0);
  } else {
    return j == r;
  }
}

// u[j] = s[j] on positives, s[j] + w[j] elsewhere (w absent: s[j]).
template <bool MASK, bool WEIGHTS, class T>
inline T logit_all(const T* sr, const T* pr, const T* wr, int64_t r, int64_t j) {
  if constexpr (WEIGHTS) {
    return positive<MASK>(pr, r, j) ? sr[j] : sr[j] + wr[j];
  } else {
    return sr[j];
  }
}

// The larger of m and x, NaN once either is NaN (NaN in a row gives NaN out).
template <class T>
inline T max_nan(T m, T x) {
  return (x > m || x != x) ? x : m;
}

template <bool MASK, bool WEIGHTS, class T>
void forward_row(int64_t r, int64_t cols, const T* s, const T* pos, const T* logw, T* loss, T* stats) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const T* sr = s + r * cols;
  const T* pr = MASK ? pos + r * cols : nullptr;
  const T* wr = WEIGHTS ? logw + r * cols : nullptr;
  // the maxima over 8 lanes (a maximum does not depend on the order; NaN wins in any order)
  T lane_a[kLanes], lane_p[kLanes];
  for (int l = 0; l < kLanes; ++l) lane_a[l] = lane_p[l] = kNegInf;
  int64_t m0 = 0;
  for (; m0 + kLanes <= cols; m0 += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const int64_t j = m0 + l;
      lane_a[l] = max_nan(lane_a[l], logit_all<MASK, WEIGHTS>(sr, pr, wr, r, j));
      lane_p[l] = max_nan(lane_p[l], positive<MASK>(pr, r, j) ? sr[j] : kNegInf);
    }
  }
  for (int64_t j = m0; j < cols; ++j) {
    lane_a[j - m0] = max_nan(lane_a[j - m0], logit_all<MASK, WEIGHTS>(sr, pr, wr, r, j));
    if (positive<MASK>(pr, r, j)) lane_p[j - m0] = max_nan(lane_p[j - m0], sr[j]);
  }
  T ma = kNegInf, mp = kNegInf;
  for (int l = 0; l < kLanes; ++l) {
    ma = max_nan(ma, lane_a[l]);
    mp = max_nan(mp, lane_p[l]);
  }
  // the shifts: a row of −inf (or no positive) sums nothing and keeps −inf
  const T sa = ma == kNegInf ? T(0) : ma, sp = mp == kNegInf ? T(0) : mp;
  // On the positives u = s, so while the positives' maximum is within share_limit of the row's their
  // exponentials are the row's, e^{s − sa} (the largest one normal): one exp per element. Else
  // (a positive far below a weighted negative) their own sum, shifted by sp.
  const bool share = mp != kNegInf && ma != kNegInf && sa - sp <= share_limit<T>();
  double acc_a[kLanes] = {0}, acc_p[kLanes] = {0};
  const T shift_p = share ? sa : sp;
  int64_t j0 = 0;
  for (; j0 + kLanes <= cols; j0 += kLanes) {
    T ea[kLanes], ep[kLanes];
    if (share) {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const int64_t j = j0 + l;
        ea[l] = vmath::exp(logit_all<MASK, WEIGHTS>(sr, pr, wr, r, j) - sa);
        ep[l] = positive<MASK>(pr, r, j) ? ea[l] : T(0);
      }
    } else {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const int64_t j = j0 + l;
        ea[l] = vmath::exp(logit_all<MASK, WEIGHTS>(sr, pr, wr, r, j) - sa);
        ep[l] = positive<MASK>(pr, r, j) ? vmath::exp(sr[j] - sp) : T(0);
      }
    }
    for (int l = 0; l < kLanes; ++l) {
      acc_a[l] += double(ea[l]);
      acc_p[l] += double(ep[l]);
    }
  }
  for (int64_t j = j0; j < cols; ++j) {
    const T ea = vmath::exp(logit_all<MASK, WEIGHTS>(sr, pr, wr, r, j) - sa);
    acc_a[j - j0] += double(ea);
    if (positive<MASK>(pr, r, j)) acc_p[j - j0] += double(share ? ea : vmath::exp(sr[j] - sp));
  }
  double sum_a = 0, sum_p = 0;
  for (int l = 0; l < kLanes; ++l) {
    sum_a += acc_a[l];
    sum_p += acc_p[l];
  }
  // NaN maxima stay NaN; a row of −inf or no positive: log 0 = −inf
  const T lse_a = ma != ma ? ma : (ma == kNegInf ? kNegInf : T(double(sa) + std::log(sum_a)));
  const T lse_p = mp != mp ? mp : (mp == kNegInf ? kNegInf : T(double(shift_p) + std::log(sum_p)));
  loss[r] = lse_a - lse_p;
  stats[2 * r] = lse_a;
  stats[2 * r + 1] = lse_p;
}

template <bool MASK, bool WEIGHTS, class T>
void backward_row(int64_t r, int64_t cols, const T* s, const T* pos, const T* logw, const T* stats, const T* g,
                  T* gs, T* gw) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const T* sr = s + r * cols;
  const T* pr = MASK ? pos + r * cols : nullptr;
  const T* wr = WEIGHTS ? logw + r * cols : nullptr;
  const T lse_a = stats[2 * r], lse_p = stats[2 * r + 1], gr = g[r];
  // −inf statistics: nothing to normalise, the probabilities are 0 (e^{−inf − (−inf)} would be NaN)
  const bool none_a = lse_a == kNegInf, none_p = lse_p == kNegInf;
  const T la = none_a ? T(0) : lse_a, lp = none_p ? T(0) : lse_p;
  const T ga = none_a ? T(0) : gr, gp = none_p ? T(0) : gr;
  T* gsr = gs ? gs + r * cols : nullptr;
  T* gwr = gw ? gw + r * cols : nullptr;
  // On the positives u = s, so e^{s − lse_pos} = e^{u − lse_all} e^{loss} (loss = lse_all − lse_pos >= 0):
  // one exp per element while the loss stays below share_limit. What that drops, a positive whose
  // e^{u − lse_all} underflows, is below e^{share_limit − 87} (F32) of g.
  const bool share = !none_a && !none_p && lse_a - lse_p <= share_limit<T>();
  const T factor = share ? T(std::exp(double(lse_a) - double(lse_p))) : T(0);
  auto run = [&](auto want_s, auto want_w, auto shared) {
    constexpr bool GS = decltype(want_s)::value, GW = decltype(want_w)::value, SHARE = decltype(shared)::value;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) {
      const bool is_pos = positive<MASK>(pr, r, j);
      const T a = ga * vmath::exp(logit_all<MASK, WEIGHTS>(sr, pr, wr, r, j) - la);
      if constexpr (GS) {
        T p;
        if constexpr (SHARE) {
          p = is_pos ? a * factor : T(0);
        } else {
          p = is_pos ? gp * vmath::exp(sr[j] - lp) : T(0);
        }
        gsr[j] = a - p;
      }
      if constexpr (GW) gwr[j] = is_pos ? T(0) : a;
    }
  };
  using Y = std::true_type;
  using N = std::false_type;
  if (gsr && gwr) share ? run(Y{}, Y{}, Y{}) : run(Y{}, Y{}, N{});
  else if (gsr) share ? run(Y{}, N{}, Y{}) : run(Y{}, N{}, N{});
  else if (gwr) run(N{}, Y{}, N{});  // no positive part: nothing to share
}

template <class T>
int forward_t(int64_t rows, int64_t cols, const void* s, const void* pos, const void* logw, void* loss, void* stats) {
  return with_infonce_layout(pos, logw, [&](auto m, auto w) {
    constexpr bool M = decltype(m)::value, W = decltype(w)::value;
    parallel_for(rows, parallel_worth(rows * cols), [&](int64_t r) {
      forward_row<M, W>(r, cols, static_cast<const T*>(s), static_cast<const T*>(pos), static_cast<const T*>(logw),
                        static_cast<T*>(loss), static_cast<T*>(stats));
    });
    return 0;
  });
}

template <class T>
int backward_t(int64_t rows, int64_t cols, const void* s, const void* pos, const void* logw, const void* stats,
               const void* g, void* gs, void* gw) {
  return with_infonce_layout(pos, logw, [&](auto m, auto w) {
    constexpr bool M = decltype(m)::value, W = decltype(w)::value;
    parallel_for(rows, parallel_worth(rows * cols), [&](int64_t r) {
      backward_row<M, W>(r, cols, static_cast<const T*>(s), static_cast<const T*>(pos), static_cast<const T*>(logw),
                         static_cast<const T*>(stats), static_cast<const T*>(g), static_cast<T*>(gs),
                         static_cast<T*>(gw));
    });
    return 0;
  });
}

}  // namespace

int infonce_forward(int dtype, int64_t rows, int64_t cols, const void* s, const void* pos, const void* logw,
                    void* loss, void* stats, void*) {
  if (dtype == MK_F32) return forward_t<float>(rows, cols, s, pos, logw, loss, stats);
  if (dtype == MK_F64) return forward_t<double>(rows, cols, s, pos, logw, loss, stats);
  return KERNEL_UNSUPPORTED;
}

int infonce_backward(int dtype, int64_t rows, int64_t cols, const void* s, const void* pos, const void* logw,
                     const void* stats, const void* g, void* grad_s, void* grad_logw, void*) {
  if (dtype == MK_F32) return backward_t<float>(rows, cols, s, pos, logw, stats, g, grad_s, grad_logw);
  if (dtype == MK_F64) return backward_t<double>(rows, cols, s, pos, logw, stats, g, grad_s, grad_logw);
  return KERNEL_UNSUPPORTED;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) -----------------------------------------------------------
namespace avx512 {
int infonce_forward(int, int64_t, int64_t, const void*, const void*, const void*, void*, void*, void*);
int infonce_backward(int, int64_t, int64_t, const void*, const void*, const void*, const void*, const void*, void*,
                     void*, void*);
}  // namespace avx512

int infonce_forward(int dtype, int64_t rows, int64_t cols, const void* s, const void* pos, const void* logw,
                    void* loss, void* stats, void* stream) {
  if (isa_level() >= 3) return avx512::infonce_forward(dtype, rows, cols, s, pos, logw, loss, stats, stream);
  return avx2::infonce_forward(dtype, rows, cols, s, pos, logw, loss, stats, stream);
}

int infonce_backward(int dtype, int64_t rows, int64_t cols, const void* s, const void* pos, const void* logw,
                     const void* stats, const void* g, void* grad_s, void* grad_logw, void* stream) {
  if (isa_level() >= 3)
    return avx512::infonce_backward(dtype, rows, cols, s, pos, logw, stats, g, grad_s, grad_logw, stream);
  return avx2::infonce_backward(dtype, rows, cols, s, pos, logw, stats, g, grad_s, grad_logw, stream);
}
#endif

}  // namespace cpu
}  // namespace mk
