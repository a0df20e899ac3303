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
// pure function of (seed, generation, k, j): a SplitMix64-style integer hash gives two 32-bit
// uniforms u1, u2 in (-1, 1), accepted when s = u1² + u2² < 1 (Marsaglia's polar method; the
// attempt number is part of the counter), and ε = u1 √(-2 ln s / s). The logarithm is computed
// here from +, -, ×, ÷ and the exponent bits (es_log), and √ and ÷ are correctly rounded on both
// devices; the files that include this header are compiled without contraction into FMA
// (-ffp-contract=off, nvcc --fmad=false; cmake/CMakeLists.txt), so ε is the same bits on the
// CPU and on CUDA. The noise is never stored: every kernel regenerates it.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "mk/scalar.h"  // MK_HD

namespace mk {

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

// ln s for a normal double s in (0, 1]: s = m 2^e with m in [√½, √2), ln m = 2 atanh(z),
// z = (m - 1) / (m + 1), |z| ≤ 0.1716, summed as an odd series to z^25 (terms below 1e-19).
MK_HD double es_log(double s) {
  uint64_t bits;
  memcpy(&bits, &s, sizeof bits);
  int64_t e = int64_t((bits >> 52) & 0x7FF) - 1023;
  bits = (bits & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL;  // m in [1, 2)
  double m;
  memcpy(&m, &bits, sizeof m);
  if (m > 1.4142135623730951) {
    m = m * 0.5;
    e += 1;
  }
  const double f = m - 1.0;
  const double z = f / (2.0 + f);
  const double w = z * z;
  // 1/25, 1/23, ..., 1/3, 1 (the series 1 + w/3 + w²/5 + ... by Horner)
  constexpr double kInv[13] = {1.0 / 25, 1.0 / 23, 1.0 / 21, 1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13,
                               1.0 / 11, 1.0 / 9,  1.0 / 7,  1.0 / 5,  1.0 / 3,  1.0};
  double p = kInv[0];
  for (int i = 1; i < 13; ++i) p = p * w + kInv[i];
  return double(e) * 0.6931471805599453 + 2.0 * z * p;
}

// ε for index j under a pair's key (double; the kernels round it to the tensor's type once).
MK_HD double es_normal(uint64_t key, uint64_t j) {
  const double kScale = 1.0 / 2147483648.0;  // 2^-31
  for (uint64_t attempt = 0; attempt < 64; ++attempt) {
    const uint64_t h = es_mix64(key ^ es_mix64(j * 64 + attempt));
    const double u1 = (double(uint32_t(h >> 32)) + 0.5) * kScale - 1.0;
    const double u2 = (double(uint32_t(h)) + 0.5) * kScale - 1.0;
    const double s = u1 * u1 + u2 * u2;
    if (s < 1.0) return u1 * std::sqrt(-2.0 * es_log(s) / s);  // s > 0: u1, u2 are never 0
  }
  return 0.0;  // 64 rejections in a row: probability (1 - π/4)^64 < 1e-42
}

// ε rounded to T and widened back: the value every kernel uses.
template <class T>
MK_HD double es_noise(uint64_t key, uint64_t j) {
  return double(T(es_normal(key, j)));
}

}  // namespace mk
