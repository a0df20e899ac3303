// Antithetic evolution strategies on the CPU (MK_MULTI_ISA: compiled for AVX2 and for AVX-512;
// the AVX2 build also holds the dispatcher), the oracle of kernels/cuda/meta_es.cu: the
// population's parameters and the fused update, each regenerating the noise ε[k, j] from
// (seed, generation, k, j) (mk/meta_batched.h: Philox-4x32-10 and a branch-free Box–Muller in
// float).
//
// The generator runs on 16 lanes of 32 bits, one lane per Philox group, one call per block of 64
// indices (gen_block): GCC's generic vectors of 64 bytes, one zmm register per value in the
// AVX-512 build, two ymm halves in the AVX2 build; Philox's 32×32→64-bit products are
// vpmuludq on the even and the odd lanes (the only intrinsics, with √). Every lane performs the
// scalar code's operations (mk/meta_batched.h: es_normal4) in the same order, and this file is
// compiled with -ffp-contract=off (cmake), so ε is the same bits at both ISA levels, in the
// scalar code and in the CUDA kernels (--fmad=false and _rn intrinsics): checked by
// tests/cuda-emu/meta_batched_emu_test.cpp at every ISA level this CPU has.
//
//   perturb: members 2k, 2k+1 = θ + s ε_k, θ − s ε_k with s = T(σ), in T; tasks of (pair, chunk
//            of kChunk blocks), each element written once; an F32 population of 8 MB or more is
//            written with non-temporal stores (whole aligned blocks; the rest as usual).
//   combine: out = θ + scale Σ_k (w_2k − w_2k+1) ε_k, the sum in double over the pairs in order
//            from 0, per index; tasks are chunks of indices (the accumulators stay in L1), each
//            regenerating ε of every pair for its chunk: no atomics, no stored noise.
// Every element is computed by one thread in a fixed order: the results are bitwise independent of
// the thread count and of the ISA level.
#include <immintrin.h>
#include <omp.h>

#include <cstring>

#include "mk/cpu_parallel.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"
#include "mk/meta_batched.h"

namespace mk {
namespace cpu {
namespace MK_ISA_NS {
namespace {

// 64-byte vectors are two ymm registers in the AVX2 build: the ABI note on passing them is moot
// (everything here is inlined).
#pragma GCC diagnostic ignored "-Wpsabi"
typedef uint32_t vu __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef float vf __attribute__((vector_size(64)));

#define MK_ES_INLINE inline __attribute__((always_inline))

// Indices per block (one generator call: 16 groups × 4 words) and blocks per task.
constexpr int64_t kBlock = 64;
constexpr int64_t kChunk = 16;

// The ten round keys of a pair's Philox key.
struct EsKeys {
  uint32_t k0[10], k1[10];
  explicit EsKeys(uint64_t key) {
    uint32_t a = uint32_t(key), b = uint32_t(key >> 32);
    for (int r = 0; r < 10; ++r) {
      k0[r] = a;
      k1[r] = b;
      a += 0x9E3779B9u;
      b += 0xBB67AE85u;
    }
  }
};

// hi, lo = the 64-bit products a × m of every lane.
MK_ES_INLINE void mulhilo(const vu& a, uint32_t m, vu& hi, vu& lo) {
#ifdef MK_ISA_AVX512
  const __m512i av = (__m512i)a, mv = _mm512_set1_epi32(int(m));
  // the maskz forms with a full mask: GCC 12 warns of the plain forms' undefined pass-through
  const __m512i even = _mm512_maskz_mul_epu32(0xFF, av, mv),
                odd = _mm512_maskz_mul_epu32(0xFF, _mm512_maskz_srli_epi64(0xFF, av, 32), mv);
  lo = (vu)_mm512_mask_blend_epi32(0xAAAA, even, _mm512_maskz_slli_epi64(0xFF, odd, 32));
  hi = (vu)_mm512_mask_blend_epi32(0xAAAA, _mm512_maskz_srli_epi64(0xFF, even, 32), odd);
#else
  union {
    vu v;
    __m256i h[2];
  } in, out_hi, out_lo;
  in.v = a;
  const __m256i mv = _mm256_set1_epi32(int(m));
  for (int i = 0; i < 2; ++i) {
    const __m256i even = _mm256_mul_epu32(in.h[i], mv), odd = _mm256_mul_epu32(_mm256_srli_epi64(in.h[i], 32), mv);
    out_lo.h[i] = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    out_hi.h[i] = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  }
  hi = out_hi.v;
  lo = out_lo.v;
#endif
}

MK_ES_INLINE vf vsqrt(const vf& x) {
#ifdef MK_ISA_AVX512
  return (vf)_mm512_maskz_sqrt_ps(0xFFFF, (__m512)x);
#else
  union {
    vf v;
    __m256 h[2];
  } u;
  u.v = x;
  u.h[0] = _mm256_sqrt_ps(u.h[0]);
  u.h[1] = _mm256_sqrt_ps(u.h[1]);
  return u.v;
#endif
}

// A store of 64 bytes to a 64-byte aligned p that bypasses the caches.
MK_ES_INLINE void vstream(float* p, const vf& x) {
#ifdef MK_ISA_AVX512
  _mm512_stream_ps(p, (__m512)x);
#else
  union {
    vf v;
    __m256 h[2];
  } u;
  u.v = x;
  _mm256_stream_ps(p, u.h[0]);
  _mm256_stream_ps(p + 8, u.h[1]);
#endif
}

MK_ES_INLINE vf to_float(const vu& q) { return __builtin_convertvector((vi)q, vf); }

// es_box_muller of mk/meta_batched.h on 16 lanes (the same operations in the same order).
MK_ES_INLINE void box_muller(const vu& xa, const vu& xb, vf& z_cos, vf& z_sin) {
  typedef EsConst C;
  // r = √(-2 ln u)
  const vf u = to_float((xa >> 8) | 1u) * C::kTwoM24;
  const vu bits = (vu)u;
  vi e = (vi)(bits >> 23) - 127;
  vf m = (vf)((bits & 0x007FFFFFu) | 0x3F800000u);
  const vi big = m > C::kSqrt2;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  const vf f = m - 1.0f;
  const vf z = f / (f + 2.0f);
  const vf w = z * z;
  vf p = w * C::kInv9 + C::kInv7;
  p = p * w + C::kInv5;
  p = p * w + C::kInv3;
  p = p * w + 1.0f;
  const vf ln = __builtin_convertvector(e, vf) * C::kLn2 + (z + z) * p;
  const vf r = vsqrt(-2.0f * ln);
  // cos θ, sin θ
  const vf t = to_float(((xb >> 5) & 0x00FFFFFFu) | 1u) * C::kTwoM24;
  const vf phi = t * C::kPiOver4;
  const vf v = phi * phi;
  vf s = v * C::kS4 + C::kS3;
  s = s * v + C::kS2;
  s = s * v + C::kS1;
  s = s * v;
  const vf sn = phi + phi * s;
  vf c = v * C::kC4 + C::kC3;
  c = c * v + C::kC2;
  c = c * v + C::kC1;
  const vf cs = 1.0f + v * c;
  const vu o = xb >> 29;
  const vi swap = (vi)((o ^ (o >> 1)) & 1u) != 0;
  const vu neg_c = (((o >> 1) ^ (o >> 2)) & 1u) << 31, neg_s = (o >> 2) << 31;
  const vf a = (vf)((vu)(swap ? sn : cs) ^ neg_c);
  const vf b = (vf)((vu)(swap ? cs : sn) ^ neg_s);
  z_cos = r * a;
  z_sin = r * b;
}

// ε of the 64 indices of block `block` under a pair's keys: eps[16 i + l] = word i of group
// 16 block + l.
MK_ES_INLINE void gen_block(const EsKeys& keys, uint64_t block, float* eps) {
  const uint64_t g0 = block * 16;  // a multiple of 16: the 16 groups share their high word
  vu c0, c1, c2, c3;
  for (int l = 0; l < 16; ++l) c0[l] = uint32_t(g0) + uint32_t(l);
  c1 = vu{} + uint32_t(g0 >> 32);
  c2 = vu{};
  c3 = vu{};
  for (int r = 0; r < 10; ++r) {
    vu hi0, lo0, hi1, lo1;
    mulhilo(c0, 0xD2511F53u, hi0, lo0);
    mulhilo(c2, 0xCD9E8D57u, hi1, lo1);
    const vu n0 = hi1 ^ c1 ^ keys.k0[r];
    const vu n2 = hi0 ^ c3 ^ keys.k1[r];
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
  }
  vf z0, z1, z2, z3;
  box_muller(c0, c1, z0, z1);
  box_muller(c2, c3, z2, z3);
  memcpy(eps, &z0, 64);
  memcpy(eps + 16, &z1, 64);
  memcpy(eps + 32, &z2, 64);
  memcpy(eps + 48, &z3, 64);
}

// The population is written with non-temporal stores above this many bytes (it cannot stay in the
// caches anyway, and skipping the read for ownership halves the memory traffic).
constexpr int64_t kStreamBytes = int64_t(8) << 20;

// θ ± s ε for the 64 indices of a full block from j0, F32, both rows 64-byte aligned: vector stores
// that bypass the caches. The same operations as perturb_t's loop.
MK_ES_INLINE void stream_block(const float* eps, const float* theta, float s, float* plus, float* minus) {
  for (int q = 0; q < 4; ++q) {
    vf e, c = vf{};
    memcpy(&e, eps + 16 * q, 64);
    e = s * e;
    if (theta) memcpy(&c, theta + 16 * q, 64);
    vstream(plus + 16 * q, c + e);
    vstream(minus + 16 * q, c - e);
  }
}

template <class T>
void perturb_t(uint64_t seed, uint64_t generation, int64_t pairs, int64_t n, const T* theta, double sigma, T* out) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const int64_t chunks = (blocks + kChunk - 1) / kChunk;
  const T s = T(sigma);
  const bool par = parallel_worth(pairs * n * 8);
  const bool stream = sizeof(T) == 4 && 2 * pairs * n * int64_t(sizeof(T)) >= kStreamBytes;
  parallel_region(par, [&] {
#pragma omp for collapse(2) schedule(static)
    for (int64_t k = 0; k < pairs; ++k)
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const EsKeys keys(es_pair_key(seed, generation, uint64_t(k)));
        T* plus = out + (2 * k) * n;
        T* minus = plus + n;
        const int64_t b_end = (ch + 1) * kChunk < blocks ? (ch + 1) * kChunk : blocks;
        for (int64_t b = ch * kChunk; b < b_end; ++b) {
          alignas(64) float eps[kBlock];
          gen_block(keys, uint64_t(b), eps);
          const int64_t j0 = b * kBlock, m = n - j0 < kBlock ? n - j0 : kBlock;
          if constexpr (sizeof(T) == 4) {
            if (stream && m == kBlock &&
                ((reinterpret_cast<uintptr_t>(plus + j0) | reinterpret_cast<uintptr_t>(minus + j0)) & 63) == 0) {
              stream_block(eps, theta ? theta + j0 : nullptr, s, plus + j0, minus + j0);
              continue;
            }
          }
          if (theta) {
            for (int64_t t = 0; t < m; ++t) {
              const T e = s * T(eps[t]);
              plus[j0 + t] = theta[j0 + t] + e;
              minus[j0 + t] = theta[j0 + t] - e;
            }
          } else {
            for (int64_t t = 0; t < m; ++t) {
              const T e = s * T(eps[t]);
              plus[j0 + t] = T(0) + e;
              minus[j0 + t] = T(0) - e;
            }
          }
        }
      }
    if (stream) _mm_sfence();  // the streamed stores are visible before the threads join
  });
}

template <class T>
void combine_t(uint64_t seed, uint64_t generation, int64_t pairs, int64_t n, const T* w, double scale, const T* theta,
               T* out) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const int64_t chunks = (blocks + kChunk - 1) / kChunk;
  const bool par = parallel_worth(pairs * n * 8);
  parallel_for(chunks, par, [&](int64_t ch) {
    const int64_t b_lo = ch * kChunk, b_hi = b_lo + kChunk < blocks ? b_lo + kChunk : blocks;
    alignas(64) double acc[kChunk * kBlock];
    for (int64_t t = 0; t < (b_hi - b_lo) * kBlock; ++t) acc[t] = 0.0;
    for (int64_t k = 0; k < pairs; ++k) {
      const double d = double(w[2 * k]) - double(w[2 * k + 1]);
      const EsKeys keys(es_pair_key(seed, generation, uint64_t(k)));
      for (int64_t b = b_lo; b < b_hi; ++b) {
        alignas(64) float eps[kBlock];
        gen_block(keys, uint64_t(b), eps);
        double* a = acc + (b - b_lo) * kBlock;
        for (int64_t t = 0; t < kBlock; ++t) a[t] = a[t] + d * double(eps[t]);
      }
    }
    const int64_t lo = b_lo * kBlock, hi = b_hi * kBlock < n ? b_hi * kBlock : n;
    for (int64_t j = lo; j < hi; ++j) {
      const double c = theta ? double(theta[j]) : 0.0;
      out[j] = T(c + scale * acc[j - lo]);
    }
  });
}

}  // namespace

int meta_es_perturb(int dtype, uint64_t seed, int64_t generation, int64_t pairs, int64_t n, const void* theta,
                    double sigma, void* out, void* stream) {
  if (dtype == MK_F32)
    perturb_t<float>(seed, uint64_t(generation), pairs, n, static_cast<const float*>(theta), sigma,
                     static_cast<float*>(out));
  else if (dtype == MK_F64)
    perturb_t<double>(seed, uint64_t(generation), pairs, n, static_cast<const double*>(theta), sigma,
                      static_cast<double*>(out));
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

int meta_es_combine(int dtype, uint64_t seed, int64_t generation, int64_t pairs, int64_t n, const void* weights,
                    double scale, const void* theta, void* out, void* stream) {
  if (dtype == MK_F32)
    combine_t<float>(seed, uint64_t(generation), pairs, n, static_cast<const float*>(weights), scale,
                     static_cast<const float*>(theta), static_cast<float*>(out));
  else if (dtype == MK_F64)
    combine_t<double>(seed, uint64_t(generation), pairs, n, static_cast<const double*>(weights), scale,
                      static_cast<const double*>(theta), static_cast<double*>(out));
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) ----------------------------------------------------------
namespace avx512 {
int meta_es_perturb(int, uint64_t, int64_t, int64_t, int64_t, const void*, double, void*, void*);
int meta_es_combine(int, uint64_t, int64_t, int64_t, int64_t, const void*, double, const void*, void*, void*);
}  // namespace avx512

int meta_es_perturb(int dtype, uint64_t seed, int64_t generation, int64_t pairs, int64_t n, const void* theta,
                    double sigma, void* out, void* stream) {
  if (isa_level() >= 3) return avx512::meta_es_perturb(dtype, seed, generation, pairs, n, theta, sigma, out, stream);
  return avx2::meta_es_perturb(dtype, seed, generation, pairs, n, theta, sigma, out, stream);
}

int meta_es_combine(int dtype, uint64_t seed, int64_t generation, int64_t pairs, int64_t n, const void* weights,
                    double scale, const void* theta, void* out, void* stream) {
  if (isa_level() >= 3)
    return avx512::meta_es_combine(dtype, seed, generation, pairs, n, weights, scale, theta, out, stream);
  return avx2::meta_es_combine(dtype, seed, generation, pairs, n, weights, scale, theta, out, stream);
}
#endif

}  // namespace cpu
}  // namespace mk
