// Batched meta kernels: per-example gradient norms of a linear map and the antithetic evolution
// strategies of Salimans et al. (2017). What the CPU kernels (kernels/cpu/meta_per_example.cpp,
// kernels/cpu/meta_es.cpp) and the CUDA kernels (kernels/cuda/meta_per_example.cu,
// kernels/cuda/meta_es.cu) share, written once here (MK_HD).
//
// Per-example norm of a linear map y = x Wᵀ (+ b): x [B, T, in], upstream gradient g [B, T, out].
// The gradient of example b's loss with respect to W is G_b = g_bᵀ x_b [out, in]; its squared
// Frobenius norm is, without forming G_b (the Gram trick; T = 1 is ‖g_b‖² ‖x_b‖²),
//     ‖G_b‖² = Σ_{t,s} (x_bt · x_bs)(g_bt · g_bs).
//
// ES noise: ε[k, j] ~ N(0, 1) for pair k of the antithetic population and parameter index j is a
// pure function of (seed, generation, k, j), computed in float from a counter-based generator, so
// that it vectorises with 32-bit lanes and gives the same bits everywhere:
//   - the pair's 64-bit key K = es_pair_key(seed, generation, k) (SplitMix64 finalisers);
//   - the elements are taken in blocks of 64: index j is word i = (j >> 4) & 3 of group
//     g = 16 (j >> 6) + (j & 15), so a block's 16 groups are 16 vector lanes and each of the four
//     words fills 16 consecutive elements (no transposition in the AVX-512 kernel);
//   - group g is Philox-4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3";
//     es_philox, checked against the published known answers) of the counter (g mod 2^32, g >> 32,
//     0, 0) under the key (K mod 2^32, K >> 32): four 32-bit words x0..x3;
//   - Box–Muller, without rejection (es_box_muller): the pair (x0, x1) gives words 0 and 1, the
//     pair (x2, x3) words 2 and 3. From (xa, xb): u = ((xa >> 8) | 1) 2^-24 in (0, 1) (exact),
//     r = √(-2 ln u); the top three bits of xb pick the octant of the angle and 23 more bits its
//     place φ = t π/4 in it, t = (((xb >> 5) & 0xFFFFFF) | 1) 2^-24; sin φ and cos φ are Taylor
//     polynomials (|φ| ≤ π/4: to φ⁹ and φ⁸, errors below 2e-9 and 3e-8), turned into cos θ, sin θ
//     of the whole angle by swapping and negating (exact); ε = r cos θ, r sin θ. ln u is
//     e ln 2 + 2 atanh((m - 1)/(m + 1)) from the exponent bits, the odd series to z⁹ (es_logf).
//   The largest |ε| is √(2 · 24 ln 2) ≈ 5.77 (u = 2^-24): the tail beyond it, 8e-9 of the mass, is
//   cut off.
// Every operation is a single IEEE float +, -, ×, ÷, √ or an integer/bit operation, and the files
// that include this header are compiled without contraction into FMA (-ffp-contract=off, nvcc
// --fmad=false; cmake/CMakeLists.txt), so the scalar code here (the CUDA kernels' and the CPU
// tails'), the AVX2 and the AVX-512 kernels (kernels/cpu/meta_es.cpp) all give the same bits.
// The noise is never stored: every kernel regenerates it.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "mk/isa_ns.h"
#include "mk/scalar.h"  // MK_HD

namespace mk {
// per ISA build of kernels/cpu/meta_es.cpp (MK_MULTI_ISA): mk/isa_ns.h
MK_ISA_BEGIN

// SplitMix64's finaliser (Steele, Lea, Flood 2014): a bijection of 64-bit words with full
// avalanche.
MK_HD uint64_t es_mix64(uint64_t z) {
  z ^= z >> 30;
  z *= 0xBF58476D1CE4E5B9ULL;
  z ^= z >> 27;
  z *= 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return z;
}

// The key of pair k of generation `generation`: every element of the pair is drawn from it.
MK_HD uint64_t es_pair_key(uint64_t seed, uint64_t generation, uint64_t pair) {
  uint64_t h = es_mix64(seed ^ 0x243F6A8885A308D3ULL);
  h = es_mix64(h ^ (generation * 0x9E3779B97F4A7C15ULL + 0x13198A2E03707344ULL));
  return es_mix64(h ^ (pair * 0xD1B54A32D192ED03ULL + 0xA4093822299F31D0ULL));
}

// Philox-4x32-10: ten rounds of two 32×32→64-bit products, the key bumped by the Weyl constants
// between rounds. c: the counter in, the four random words out.
MK_HD void es_philox(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c[0];
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c[2];
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c[1] ^ k0;
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c[3] ^ k1;
    c[1] = uint32_t(p1);
    c[3] = uint32_t(p0);
    c[0] = n0;
    c[2] = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

MK_HD float es_bits_float(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

MK_HD uint32_t es_float_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}

// Single IEEE float operations, rounded to nearest: on CUDA the _rn intrinsics (never contracted
// into FMA, whatever the flags), on the host plain operators (the including files are compiled with
// -ffp-contract=off).
MK_HD float es_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
MK_HD float es_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
MK_HD float es_div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
MK_HD float es_sqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

// The float constants of the noise (each the correctly rounded value of the expression).
struct EsConst {
  static constexpr float kTwoM24 = 5.9604644775390625e-08f;  // 2^-24
  static constexpr float kSqrt2 = 1.41421356237309515f;
  static constexpr float kLn2 = 0.693147180559945309f;
  static constexpr float kInv3 = float(1.0 / 3), kInv5 = float(1.0 / 5), kInv7 = float(1.0 / 7), kInv9 = float(1.0 / 9);
  static constexpr float kPiOver4 = 0.785398163397448310f;
  // sin φ = φ + φ w (s1 + w (s2 + w (s3 + w s4))), cos φ = 1 + w (c1 + w (c2 + w (c3 + w c4))), w = φ²
  static constexpr float kS1 = float(-1.0 / 6), kS2 = float(1.0 / 120), kS3 = float(-1.0 / 5040),
                         kS4 = float(1.0 / 362880);
  static constexpr float kC1 = -0.5f, kC2 = float(1.0 / 24), kC3 = float(-1.0 / 720), kC4 = float(1.0 / 40320);
};

// ln u for u = q 2^-24, q odd in [1, 2^24): u = m 2^e with m in [√½, √2), ln m = 2 atanh(z),
// z = (m - 1) / (m + 1) (|z| ≤ 0.1716), the odd series 2z (1 + z²/3 + ... + z⁸/9) (the next term is
// below 1e-9).
MK_HD float es_logf(float u) {
  const uint32_t bits = es_float_bits(u);
  int32_t e = int32_t(bits >> 23) - 127;
  float m = es_bits_float((bits & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
  const bool big = m > EsConst::kSqrt2;
  m = big ? es_mul(m, 0.5f) : m;
  e = big ? e + 1 : e;
  const float f = es_add(m, -1.0f);
  const float z = es_div(f, es_add(f, 2.0f));
  const float w = es_mul(z, z);
  float p = EsConst::kInv9;
  p = es_add(es_mul(p, w), EsConst::kInv7);
  p = es_add(es_mul(p, w), EsConst::kInv5);
  p = es_add(es_mul(p, w), EsConst::kInv3);
  p = es_add(es_mul(p, w), 1.0f);
  return es_add(es_mul(float(e), EsConst::kLn2), es_mul(es_add(z, z), p));
}

// Box–Muller: two normals from two 32-bit words (the header comment above).
MK_HD void es_box_muller(uint32_t xa, uint32_t xb, float* z_cos, float* z_sin) {
  const float u = es_mul(float(int32_t((xa >> 8) | 1u)), EsConst::kTwoM24);
  const float r = es_sqrt(es_mul(-2.0f, es_logf(u)));
  const float t = es_mul(float(int32_t(((xb >> 5) & 0x00FFFFFFu) | 1u)), EsConst::kTwoM24);
  const float phi = es_mul(t, EsConst::kPiOver4);
  const float w = es_mul(phi, phi);
  float s = EsConst::kS4;
  s = es_add(es_mul(s, w), EsConst::kS3);
  s = es_add(es_mul(s, w), EsConst::kS2);
  s = es_add(es_mul(s, w), EsConst::kS1);
  s = es_mul(s, w);
  const float sn = es_add(phi, es_mul(phi, s));
  float c = EsConst::kC4;
  c = es_add(es_mul(c, w), EsConst::kC3);
  c = es_add(es_mul(c, w), EsConst::kC2);
  c = es_add(es_mul(c, w), EsConst::kC1);
  const float cs = es_add(1.0f, es_mul(w, c));
  // octant o = 2q + p: θ = q π/2 + (p ? π/2 - φ : φ); swap when p ≠ q mod 2, cos θ < 0 for q in
  // {1, 2}, sin θ < 0 for q in {2, 3}
  const uint32_t o = xb >> 29;
  const bool swap = ((o ^ (o >> 1)) & 1u) != 0;
  const uint32_t neg_c = (((o >> 1) ^ (o >> 2)) & 1u) << 31, neg_s = (o >> 2) << 31;
  const float a = es_bits_float(es_float_bits(swap ? sn : cs) ^ neg_c);
  const float b = es_bits_float(es_float_bits(swap ? cs : sn) ^ neg_s);
  *z_cos = es_mul(r, a);
  *z_sin = es_mul(r, b);
}

// The four normals of group g under a pair's key: z[i] is the noise of index
// j = 64 (g >> 4) + 16 i + (g & 15).
MK_HD void es_normal4(uint64_t key, uint64_t g, float z[4]) {
  uint32_t c[4] = {uint32_t(g), uint32_t(g >> 32), 0u, 0u};
  es_philox(c, uint32_t(key), uint32_t(key >> 32));
  es_box_muller(c[0], c[1], &z[0], &z[1]);
  es_box_muller(c[2], c[3], &z[2], &z[3]);
}

// The group of index j and the word of it that j takes.
MK_HD uint64_t es_group(uint64_t j) { return ((j >> 6) << 4) | (j & 15); }
MK_HD int es_word(uint64_t j) { return int((j >> 4) & 3); }

// ε for index j under a pair's key, one element at a time (the tests' reference).
MK_HD float es_normal(uint64_t key, uint64_t j) {
  float z[4];
  es_normal4(key, es_group(j), z);
  return z[es_word(j)];
}

MK_ISA_END
}  // namespace mk
