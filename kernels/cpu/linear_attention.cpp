// Linear attention product on the CPU (MK_MULTI_ISA: compiled for AVX2 and for AVX-512; the
// AVX2 build also holds the dispatcher).
//
//   out_j = sum_{i in M(j)} (q_j . k_i) v_i      q: [G, nq, dk]  k: [G, nk, dk]  v: [G, nk, dv]
//
// Per group: the state S = sum_i k_i v_i^T ([dk, dv]) carries everything before the current
// chunk; inside a chunk of kChunk rows the masked (q k^T) block is dense. Cost O(n (dk dv +
// kChunk (dk + dv))), memory O(dk dv + kChunk^2) per thread, never n x n. Inner loops run over
// dv with unit stride so they vectorise at the compiled width.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "mk/kernels.h"

#ifdef MK_ISA_AVX512
#define MK_ISA_NS avx512
#else
#define MK_ISA_NS avx2
#endif

namespace mk {
namespace cpu {

struct LinearAttentionTraits {
  static constexpr int64_t kChunk = 64;  // rows per chunk: kChunk^2 block stays in L1/L2
  static constexpr int kRowBlock = 4;    // query rows sharing one pass over the state
  static_assert(kChunk % kRowBlock == 0, "chunk must be a multiple of the row block");
};

namespace MK_ISA_NS {
namespace {

using Traits = LinearAttentionTraits;

// out[r, :] += sum_d a[r, d] * S[d, :] for kRowBlock rows (or fewer) at once.
template <class T>
inline void rows_times_state(int rows, const T* a, int64_t lda, const T* S, int64_t dk, int64_t dv,
                             T* out, int64_t ldo) {
  if (rows == Traits::kRowBlock) {
    T* o0 = out; T* o1 = out + ldo; T* o2 = out + 2 * ldo; T* o3 = out + 3 * ldo;
    const T* a0 = a; const T* a1 = a + lda; const T* a2 = a + 2 * lda; const T* a3 = a + 3 * lda;
    for (int64_t d = 0; d < dk; ++d) {
      const T* s = S + d * dv;
      const T x0 = a0[d], x1 = a1[d], x2 = a2[d], x3 = a3[d];
#pragma omp simd
      for (int64_t e = 0; e < dv; ++e) {
        const T se = s[e];
        o0[e] += x0 * se;
        o1[e] += x1 * se;
        o2[e] += x2 * se;
        o3[e] += x3 * se;
      }
    }
    return;
  }
  for (int r = 0; r < rows; ++r)
    for (int64_t d = 0; d < dk; ++d) {
      const T x = a[r * lda + d];
      const T* s = S + d * dv;
      T* o = out + r * ldo;
#pragma omp simd
      for (int64_t e = 0; e < dv; ++e) o[e] += x * s[e];
    }
}

template <class T>
inline T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// S += sum_{i < rows} k[i]^T v[i]
template <class T>
inline void accumulate_state(int64_t rows, const T* k, const T* v, int64_t dk, int64_t dv, T* S) {
  for (int64_t d = 0; d < dk; ++d) {
    T* s = S + d * dv;
    int64_t i = 0;
    for (; i + 4 <= rows; i += 4) {
      const T k0 = k[i * dk + d], k1 = k[(i + 1) * dk + d], k2 = k[(i + 2) * dk + d], k3 = k[(i + 3) * dk + d];
      const T* v0 = v + i * dv; const T* v1 = v0 + dv; const T* v2 = v1 + dv; const T* v3 = v2 + dv;
#pragma omp simd
      for (int64_t e = 0; e < dv; ++e) s[e] += k0 * v0[e] + k1 * v1[e] + k2 * v2[e] + k3 * v3[e];
    }
    for (; i < rows; ++i) {
      const T kd = k[i * dk + d];
      const T* vi = v + i * dv;
#pragma omp simd
      for (int64_t e = 0; e < dv; ++e) s[e] += kd * vi[e];
    }
  }
}

template <class T>
void group(int mask, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const T* q, const T* k,
           const T* v, T* out, T* S, T* A) {
  constexpr int64_t C = Traits::kChunk;
  std::memset(out, 0, sizeof(T) * size_t(nq * dv));
  std::memset(S, 0, sizeof(T) * size_t(dk * dv));
  if (mask == 0) {  // out = q (k^T v)
    accumulate_state(nk, k, v, dk, dv, S);
    for (int64_t j = 0; j < nq; j += Traits::kRowBlock) {
      const int rows = int(std::min<int64_t>(Traits::kRowBlock, nq - j));
      rows_times_state(rows, q + j * dk, dk, S, dk, dv, out + j * dv, dv);
    }
    return;
  }
  const int64_t n = nq;  // causal forms need nq == nk (checked by native/)
  const int64_t chunks = (n + C - 1) / C;
  for (int64_t step = 0; step < chunks; ++step) {
    const int64_t c = mask == 1 ? step : chunks - 1 - step;  // anti-causal walks backwards
    const int64_t c0 = c * C;
    const int64_t len = std::min(C, n - c0);
    const T* qc = q + c0 * dk;
    const T* kc = k + c0 * dk;
    const T* vc = v + c0 * dv;
    T* oc = out + c0 * dv;
    // inter-chunk: out += q S (S holds the chunks already walked)
    if (step > 0)
      for (int64_t j = 0; j < len; j += Traits::kRowBlock) {
        const int rows = int(std::min<int64_t>(Traits::kRowBlock, len - j));
        rows_times_state(rows, qc + j * dk, dk, S, dk, dv, oc + j * dv, dv);
      }
    // intra-chunk: masked (q k^T) v
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i0 = mask == 1 ? 0 : j;
      const int64_t i1 = mask == 1 ? j + 1 : len;
      T* aj = A + j * C;
      for (int64_t i = i0; i < i1; ++i) aj[i] = dot(qc + j * dk, kc + i * dk, dk);
      T* o = oc + j * dv;
      for (int64_t i = i0; i < i1; ++i) {
        const T a = aj[i];
        const T* vi = vc + i * dv;
#pragma omp simd
        for (int64_t e = 0; e < dv; ++e) o[e] += a * vi[e];
      }
    }
    accumulate_state(len, kc, vc, dk, dv, S);
  }
}

template <class T>
void run(int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const T* q, const T* k,
         const T* v, T* out, int mask, T* ws) {
  const int64_t per_thread = dk * dv + Traits::kChunk * Traits::kChunk;
  const int64_t work = groups * std::max(nq, nk) * dk * dv;
#pragma omp parallel if (groups > 1 && work > (1 << 16))
  {
    T* mine = ws + int64_t(omp_get_thread_num()) * per_thread;
#pragma omp for schedule(static)
    for (int64_t g = 0; g < groups; ++g)
      group(mask, nq, nk, dk, dv, q + g * nq * dk, k + g * nk * dk, v + g * nk * dv,
            out + g * nq * dv, mine, mine + dk * dv);
  }
}

template <class T>
void momentum(int64_t groups, int64_t n, int64_t d, const T* v, T* out, T decay, int reverse) {
#pragma omp parallel for schedule(static) if (groups * n * d > (1 << 15))
  for (int64_t g = 0; g < groups; ++g) {
    const T* vg = v + g * n * d;
    T* og = out + g * n * d;
    // m_j = decay * (m_{j-1} + v_{j-1}), m_0 = 0 (forward); mirrored for reverse
    for (int64_t s = 0; s < n; ++s) {
      const int64_t j = reverse ? n - 1 - s : s;
      T* oj = og + j * d;
      if (s == 0) {
        for (int64_t e = 0; e < d; ++e) oj[e] = T(0);
        continue;
      }
      const int64_t p = reverse ? j + 1 : j - 1;
      const T* op = og + p * d;
      const T* vp = vg + p * d;
#pragma omp simd
      for (int64_t e = 0; e < d; ++e) oj[e] = decay * (op[e] + vp[e]);
    }
  }
}

}  // namespace

int linear_attention(int dtype, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                     const void* q, const void* k, const void* v, void* out, int mask,
                     void* workspace, void*) {
  if (dtype == F32)
    run(groups, nq, nk, dk, dv, static_cast<const float*>(q), static_cast<const float*>(k),
        static_cast<const float*>(v), static_cast<float*>(out), mask, static_cast<float*>(workspace));
  else
    run(groups, nq, nk, dk, dv, static_cast<const double*>(q), static_cast<const double*>(k),
        static_cast<const double*>(v), static_cast<double*>(out), mask, static_cast<double*>(workspace));
  return 0;
}

int linear_attention_momentum(int dtype, int64_t groups, int64_t n, int64_t d, const void* v,
                              void* out, double decay, int reverse, void*) {
  if (dtype == F32)
    momentum(groups, n, d, static_cast<const float*>(v), static_cast<float*>(out), float(decay), reverse);
  else
    momentum(groups, n, d, static_cast<const double*>(v), static_cast<double*>(out), decay, reverse);
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) ------------------------------------------------------
namespace avx512 {
int linear_attention(int, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, const void*,
                     const void*, void*, int, void*, void*);
int linear_attention_momentum(int, int64_t, int64_t, int64_t, const void*, void*, double, int, void*);
}  // namespace avx512

int linear_attention(int dtype, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                     const void* q, const void* k, const void* v, void* out, int mask,
                     void* workspace, void* stream) {
  if (isa_level() >= 3)
    return avx512::linear_attention(dtype, groups, nq, nk, dk, dv, q, k, v, out, mask, workspace, stream);
  return avx2::linear_attention(dtype, groups, nq, nk, dk, dv, q, k, v, out, mask, workspace, stream);
}

int64_t linear_attention_workspace(int64_t dk, int64_t dv, int threads) {
  return int64_t(threads) * (dk * dv + LinearAttentionTraits::kChunk * LinearAttentionTraits::kChunk);
}

int linear_attention_momentum(int dtype, int64_t groups, int64_t n, int64_t d, const void* v,
                              void* out, double decay, int reverse, void* stream) {
  if (isa_level() >= 3)
    return avx512::linear_attention_momentum(dtype, groups, n, d, v, out, decay, reverse, stream);
  return avx2::linear_attention_momentum(dtype, groups, n, d, v, out, decay, reverse, stream);
}
#endif

}  // namespace cpu
}  // namespace mk
