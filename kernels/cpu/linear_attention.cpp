// Linear attention product on the CPU (MK_MULTI_ISA: compiled for AVX2 and for AVX-512; the
// AVX2 build also holds the dispatcher).
//
//   out_j = sum_{i in M(j)} (q_j . k_i) v_i      q: [G, nq, dk]  k: [G, nk, dk]  v: [G, nk, dv]
//
// Per group: the state S = sum_i k_i v_i^T ([dk, dv]) carries everything before the current
// chunk; inside a chunk of kChunk rows the masked (q k^T) block is dense. Cost O(n (dk dv +
// kChunk (dk + dv))), memory O(dk dv + kChunk^2) per thread, never n x n. Inner loops run over
// dv with unit stride so they vectorise at the compiled width.
//
// BF16 / F16 (the oracle of the CUDA tensor-core form): the same chunked walk in F32 on chunks
// widened into per-thread F32 buffers (the key chunks for the state of the unmasked form too), the
// output rounded once to the input type (nearest even). Workspace: linear_attention_workspace()
// bytes, which depends on the dtype.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "mk/cpu_parallel.h"
#include "mk/cpu_tile.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"
#include "mk/linear_attention_choice.h"
#include "mk/scalar.h"

namespace mk {
namespace cpu {

struct LinearAttentionTraits {
  static constexpr int64_t kChunk = 64;  // rows per chunk: kChunk^2 block stays in L1/L2
  static_assert(kChunk % 16 == 0, "chunks fill whole AVX-512 vectors");
};

namespace MK_ISA_NS {
namespace {

using Traits = LinearAttentionTraits;

// Row strides (elements; the columns are unit-stride): lq, lk, lv, lo. The same tile products in the
// same order whatever the strides, so a strided group gives the bits of its contiguous copy.
template <class T>
void group(int mask, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const T* q, int64_t lq, const T* k,
           int64_t lk, const T* v, int64_t lv, T* out, int64_t lo, T* S, T* A, T* kt) {
  constexpr int64_t C = Traits::kChunk;
  if (mask == 0) {  // out = q (kᵀ v)
    tile::gemm<T>(dk, dv, nk, T(1), k, 1, lk, v, lv, S, dv, false);
    tile::gemm<T>(nq, dv, dk, T(1), q, lq, 1, S, dv, out, lo, false);
    return;
  }
  const int64_t n = nq;  // causal forms need nq == nk (checked by native/)
  const int64_t chunks = (n + C - 1) / C;
  for (int64_t step = 0; step < chunks; ++step) {
    const int64_t c = mask == 1 ? step : chunks - 1 - step;  // anti-causal walks backwards
    const int64_t c0 = c * C;
    const int64_t len = std::min(C, n - c0);
    const T* qc = q + c0 * lq;
    const T* kc = k + c0 * lk;
    const T* vc = v + c0 * lv;
    T* oc = out + c0 * lo;
    // inter-chunk: out = q S (S holds the chunks already walked)
    if (step > 0) tile::gemm<T>(len, dv, dk, T(1), qc, lq, 1, S, dv, oc, lo, false);
    else for (int64_t j = 0; j < len; ++j) std::memset(oc + j * lo, 0, sizeof(T) * size_t(dv));
    // intra-chunk: (mask ∘ q kᵀ) v
    tile::transpose<T>(len, dk, kc, lk, kt, C);
    tile::gemm<T>(len, len, dk, T(1), qc, lq, 1, kt, C, A, C, false);
    for (int64_t j = 0; j < len; ++j) {
      T* aj = A + j * C;
      if (mask == 1) for (int64_t i = j + 1; i < len; ++i) aj[i] = T(0);
      else for (int64_t i = 0; i < j; ++i) aj[i] = T(0);
    }
    tile::gemm<T>(len, dv, len, T(1), A, C, 1, vc, lv, oc, lo, true);
    // state: S += k_cᵀ v_c
    tile::gemm<T>(dk, dv, len, T(1), kc, 1, lk, vc, lv, S, dv, step > 0);
  }
}

// ---- BF16 / F16: F32 arithmetic on widened chunks ----------------------------------------------
void widen(int dtype, const uint16_t* src, int64_t n, float* dst) {
  if (dtype == MK_BF16)
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_bits_to_f32(src[i]);
  else
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_bits_to_f32(src[i]);
}

void narrow(int dtype, const float* src, int64_t n, uint16_t* dst) {
  if (dtype == MK_BF16)
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16_bits(src[i]);
  else
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_f16_bits(src[i]);
}

// `rows` rows of `cols` values, row stride ld, to / from a packed F32 block.
void widen_rows(int dtype, const uint16_t* src, int64_t ld, int64_t rows, int64_t cols, float* dst) {
  for (int64_t r = 0; r < rows; ++r) widen(dtype, src + r * ld, cols, dst + r * cols);
}

void narrow_rows(int dtype, const float* src, int64_t rows, int64_t cols, uint16_t* dst, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) narrow(dtype, src + r * cols, cols, dst + r * ld);
}

// Per-thread F32 buffers of the 16-bit path: the F32 path's S, A, kt, then the widened chunks.
struct HalfScratch {
  float *S, *A, *kt, *qc, *kc, *vc, *oc;
  static int64_t floats(int64_t dk, int64_t dv) {
    constexpr int64_t C = Traits::kChunk;
    return dk * dv + C * C + dk * C + 2 * C * dk + 2 * C * dv;
  }
  HalfScratch(float* base, int64_t dk, int64_t dv) {
    constexpr int64_t C = Traits::kChunk;
    S = base;
    A = S + dk * dv;
    kt = A + C * C;
    qc = kt + dk * C;
    kc = qc + C * dk;
    vc = kc + C * dk;
    oc = vc + C * dv;
  }
};

void group_half(int dtype, int mask, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const uint16_t* q, int64_t lq,
                const uint16_t* k, int64_t lk, const uint16_t* v, int64_t lv, uint16_t* out, int64_t lo,
                const HalfScratch& w) {
  constexpr int64_t C = Traits::kChunk;
  if (mask == 0) {  // out = q (kᵀ v), the state summed over key chunks in ascending order
    for (int64_t c0 = 0; c0 < nk; c0 += C) {
      const int64_t len = std::min(C, nk - c0);
      widen_rows(dtype, k + c0 * lk, lk, len, dk, w.kc);
      widen_rows(dtype, v + c0 * lv, lv, len, dv, w.vc);
      tile::gemm<float>(dk, dv, len, 1.f, w.kc, 1, dk, w.vc, dv, w.S, dv, c0 > 0);
    }
    for (int64_t c0 = 0; c0 < nq; c0 += C) {
      const int64_t len = std::min(C, nq - c0);
      widen_rows(dtype, q + c0 * lq, lq, len, dk, w.qc);
      tile::gemm<float>(len, dv, dk, 1.f, w.qc, dk, 1, w.S, dv, w.oc, dv, false);
      narrow_rows(dtype, w.oc, len, dv, out + c0 * lo, lo);
    }
    return;
  }
  const int64_t n = nq;
  const int64_t chunks = (n + C - 1) / C;
  for (int64_t step = 0; step < chunks; ++step) {  // as group() on the widened chunk
    const int64_t c = mask == 1 ? step : chunks - 1 - step;
    const int64_t c0 = c * C;
    const int64_t len = std::min(C, n - c0);
    widen_rows(dtype, q + c0 * lq, lq, len, dk, w.qc);
    widen_rows(dtype, k + c0 * lk, lk, len, dk, w.kc);
    widen_rows(dtype, v + c0 * lv, lv, len, dv, w.vc);
    if (step > 0) tile::gemm<float>(len, dv, dk, 1.f, w.qc, dk, 1, w.S, dv, w.oc, dv, false);
    else std::memset(w.oc, 0, sizeof(float) * size_t(len * dv));
    tile::transpose<float>(len, dk, w.kc, dk, w.kt, C);
    tile::gemm<float>(len, len, dk, 1.f, w.qc, dk, 1, w.kt, C, w.A, C, false);
    for (int64_t j = 0; j < len; ++j) {
      float* aj = w.A + j * C;
      if (mask == 1) for (int64_t i = j + 1; i < len; ++i) aj[i] = 0.f;
      else for (int64_t i = 0; i < j; ++i) aj[i] = 0.f;
    }
    tile::gemm<float>(len, dv, len, 1.f, w.A, C, 1, w.vc, dv, w.oc, dv, true);
    tile::gemm<float>(dk, dv, len, 1.f, w.kc, 1, dk, w.vc, dv, w.S, dv, step > 0);
    narrow_rows(dtype, w.oc, len, dv, out + c0 * lo, lo);
  }
}

// Element offset of group g (= b * heads + h) of an operand with strides s = (batch, head, row).
inline int64_t group_offset(const LinearAttentionLayout& l, const int64_t* s, int64_t g) {
  return (g / l.heads) * s[0] + (g % l.heads) * s[1];
}

void run_half(int dtype, const LinearAttentionLayout& l, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
              const uint16_t* q, const uint16_t* k, const uint16_t* v, uint16_t* out, int mask, float* ws) {
  const int64_t groups = l.batch * l.heads;
  const int64_t per_thread = HalfScratch::floats(dk, dv);
  // multiply-adds: (nq + nk) dk dv per group for the state and q S, a lower bound with a mask
  parallel_region(groups > 1 && parallel_worth_fma(groups * (nq + nk) * dk * dv), [&] {
    const HalfScratch w(ws + int64_t(omp_get_thread_num()) * per_thread, dk, dv);
#pragma omp for schedule(static)
    for (int64_t g = 0; g < groups; ++g)
      group_half(dtype, mask, nq, nk, dk, dv, q + group_offset(l, l.q, g), l.q[2], k + group_offset(l, l.k, g), l.k[2],
                 v + group_offset(l, l.v, g), l.v[2], out + group_offset(l, l.out, g), l.out[2], w);
  });
}

// m_j = decay (m_{j-1} + v_{j-1}) in F32 (a running row per 64-column block), each m_j rounded on
// store: the same operations in the same order as the CUDA kernel's, so the same bits.
void momentum_half(int dtype, int64_t groups, int64_t n, int64_t d, const uint16_t* v, uint16_t* out, float decay,
                   int reverse) {
  parallel_for(groups, groups * n * d > (1 << 15), [&](int64_t g) {
    const uint16_t* vg = v + g * n * d;
    uint16_t* og = out + g * n * d;
    constexpr int64_t kBlock = 64;
    float m[kBlock], vp[kBlock];
    for (int64_t e0 = 0; e0 < d; e0 += kBlock) {
      const int64_t w = std::min(kBlock, d - e0);
      for (int64_t e = 0; e < w; ++e) m[e] = 0.f;
      for (int64_t s = 0; s < n; ++s) {
        const int64_t j = reverse ? n - 1 - s : s;
        if (s > 0) {
          const int64_t p = reverse ? j + 1 : j - 1;
          widen(dtype, vg + p * d + e0, w, vp);
          for (int64_t e = 0; e < w; ++e) m[e] = decay * (m[e] + vp[e]);
        }
        narrow(dtype, m, w, og + j * d + e0);
      }
    }
  });
}

template <class T>
void run(const LinearAttentionLayout& l, int64_t nq, int64_t nk, int64_t dk, int64_t dv, const T* q, const T* k,
         const T* v, T* out, int mask, T* ws) {
  const int64_t groups = l.batch * l.heads;
  const int64_t per_thread = dk * dv + Traits::kChunk * Traits::kChunk + dk * Traits::kChunk;
  // multiply-adds: (nq + nk) dk dv per group for the state and q S, a lower bound with a mask
  parallel_region(groups > 1 && parallel_worth_fma(groups * (nq + nk) * dk * dv), [&] {
    T* mine = ws + int64_t(omp_get_thread_num()) * per_thread;
#pragma omp for schedule(static)
    for (int64_t g = 0; g < groups; ++g)
      group(mask, nq, nk, dk, dv, q + group_offset(l, l.q, g), l.q[2], k + group_offset(l, l.k, g), l.k[2],
            v + group_offset(l, l.v, g), l.v[2], out + group_offset(l, l.out, g), l.out[2], mine, mine + dk * dv,
            mine + dk * dv + Traits::kChunk * Traits::kChunk);
  });
}

template <class T>
void momentum(int64_t groups, int64_t n, int64_t d, const T* v, T* out, T decay, int reverse) {
  parallel_for(groups, groups * n * d > (1 << 15), [&](int64_t g) {
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
  });
}

}  // namespace

int linear_attention_strided(int dtype, const LinearAttentionLayout* layout, int64_t nq, int64_t nk, int64_t dk,
                             int64_t dv, const void* q, const void* k, const void* v, void* out, int mask,
                             void* workspace, void*) {
  mask &= ~MK_LINEAR_MASK_TF32;  // the TF32 flag is for CUDA: the CPU computes in the data's type
  const LinearAttentionLayout& l = *layout;
  if (dtype == MK_BF16 || dtype == MK_F16)
    run_half(dtype, l, nq, nk, dk, dv, static_cast<const uint16_t*>(q), static_cast<const uint16_t*>(k),
             static_cast<const uint16_t*>(v), static_cast<uint16_t*>(out), mask, static_cast<float*>(workspace));
  else if (dtype == MK_F32)
    run(l, nq, nk, dk, dv, static_cast<const float*>(q), static_cast<const float*>(k), static_cast<const float*>(v),
        static_cast<float*>(out), mask, static_cast<float*>(workspace));
  else
    run(l, nq, nk, dk, dv, static_cast<const double*>(q), static_cast<const double*>(k),
        static_cast<const double*>(v), static_cast<double*>(out), mask, static_cast<double*>(workspace));
  return 0;
}

int linear_attention_momentum(int dtype, int64_t groups, int64_t n, int64_t d, const void* v,
                              void* out, double decay, int reverse, void*) {
  if (dtype == MK_BF16 || dtype == MK_F16)
    momentum_half(dtype, groups, n, d, static_cast<const uint16_t*>(v), static_cast<uint16_t*>(out), float(decay),
                  reverse);
  else if (dtype == MK_F32)
    momentum(groups, n, d, static_cast<const float*>(v), static_cast<float*>(out), float(decay), reverse);
  else
    momentum(groups, n, d, static_cast<const double*>(v), static_cast<double*>(out), decay, reverse);
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) ------------------------------------------------------
namespace avx512 {
int linear_attention_strided(int, const LinearAttentionLayout*, int64_t, int64_t, int64_t, int64_t, const void*,
                             const void*, const void*, void*, int, void*, void*);
int linear_attention_momentum(int, int64_t, int64_t, int64_t, const void*, void*, double, int, void*);
}  // namespace avx512

int linear_attention_strided(int dtype, const LinearAttentionLayout* layout, int64_t nq, int64_t nk, int64_t dk,
                             int64_t dv, const void* q, const void* k, const void* v, void* out, int mask,
                             void* workspace, void* stream) {
  if (isa_level() >= 3)
    return avx512::linear_attention_strided(dtype, layout, nq, nk, dk, dv, q, k, v, out, mask, workspace, stream);
  return avx2::linear_attention_strided(dtype, layout, nq, nk, dk, dv, q, k, v, out, mask, workspace, stream);
}

// The contiguous form: groups x [n, d] blocks, one after another.
int linear_attention(int dtype, int64_t groups, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                     const void* q, const void* k, const void* v, void* out, int mask,
                     void* workspace, void* stream) {
  const LinearAttentionLayout l = LinearAttentionLayout::contiguous(groups, nq, nk, dk, dv);
  return linear_attention_strided(dtype, &l, nq, nk, dk, dv, q, k, v, out, mask, workspace, stream);
}

int64_t linear_attention_workspace(int dtype, int64_t dk, int64_t dv, int threads) {
  constexpr int64_t C = LinearAttentionTraits::kChunk;
  if (dtype == MK_BF16 || dtype == MK_F16)  // F32 buffers: the F32 path's and the widened chunks
    return int64_t(threads) * 4 * (dk * dv + C * C + dk * C + 2 * C * dk + 2 * C * dv);
  return int64_t(threads) * dtype_size(dtype) * (dk * dv + C * C + dk * C);
}

int64_t linear_attention_scratch(int, int64_t, int64_t, int64_t, int64_t, int64_t, int) { return 0; }

// The twin of the CUDA library's choice of form (mk/kernels.inc linear_attention_select): the CPU
// has one form, so there is nothing to store; the codes are checked alike.
int linear_attention_select(int tensor_core, int f32) {
  return linear_attention_select_valid(tensor_core, f32) ? 0 : KERNEL_UNSUPPORTED;
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
