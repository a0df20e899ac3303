// Counter-based random numbers of Tensor.rand / uniform / randn (mk_tensor_random_forward), written
// once for the CPU kernel (kernels/cpu/random.cpp: 8 lanes of doubles, AVX2 and AVX-512 builds, and
// its scalar tail) and the CUDA kernels (kernels/cuda/dense.cu: one lane per thread).
//
// Element i of stream `seed` is a pure function of (seed, i):
//   h1 = SplitMix64(SplitMix64(seed) ^ i · 0xD1B54A32D192ED03), h2 = SplitMix64(h1) (64-bit words);
//   u1 = ((h1 >> 11) + 0.5) 2^-53, u2 likewise from h2: doubles in (0, 1);
//   uniform: a + (b - a) u1 (stored below b: random_limit);  normal: a + (b r) c with r = √(-2 ln u1), c = cos(2π u2) (Box–Muller,
//   one value per pair, no rejection; the largest |r| is √(108 ln 2) ≈ 8.65).
// ln and cos are not the math library's: every operation is a single IEEE double +, -, ×, ÷, √
// rounded to nearest or an integer / bit operation, in an order fixed here, so the scalar code (on
// CUDA the _rn intrinsics, never contracted into FMA whatever the flags; on the host plain operators
// in files compiled with -ffp-contract=off) and the vector code of the CPU kernel give the same bits:
// the values are the same on the CPU at every ISA level and thread count and on CUDA, in F64 as in
// F32. Accuracy (tests/native/random_test.cpp, 2^21 points and the reductions' edges, against long
// double libm): ln u1 within 0.82 units in the last place of a double, cos within 1.8. F32 normals
// are those of the glibc log and cos these replaced on 2026-12-07 (0 of 3 · 2^20 differ); F64 ones
// moved in their last bits.
//   ln u = k ln 2 + ln m for u = m 2^k, m in [√½, √2); with f = m - 1 (exact) and s = f / (2 + f),
//        ln m = 2 atanh(s) = f - f²/2 + s (f²/2 + R), R = Σ_{i=1..10} 2 s^{2i} / (2i + 1)
//        (|s| ≤ 0.1716: the first term left out is below 3e-19 of ln m); ln 2 as a head of 45
//        significant bits (k ln2_hi exact) and a tail.
//   cos(2π u): t = 4u (exact), q = t rounded to the nearest integer, x = t - q in [-½, ½] (exact):
//        the angle is (q + x) π/2, φ = x π/2 in [-π/4, π/4]; cos φ and sin φ by their Taylor series
//        to φ¹⁶ and φ¹⁷ (the terms left out below 3e-18), then cos, -sin, -cos, sin for q mod 4 =
//        0, 1, 2, 3 (a select and a sign flip: exact).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "mk/isa_ns.h"
#include "mk/scalar.h"  // MK_HD

namespace mk {
MK_ISA_BEGIN

// The constants (hexadecimal: the exact doubles; each the correctly rounded value of its comment).
struct RandomConst {
  static constexpr double kTwoM53 = 0x1p-53;
  static constexpr double kSqrt2 = 0x1.6a09e667f3bcdp+0;
  static constexpr double kLn2Hi = 0x1.62e42fefa3a00p-1;   // ln 2 to 45 significant bits
  static constexpr double kLn2Lo = -0x1.0ca86c3898d00p-49;  // ln 2 - kLn2Hi
  static constexpr double kHalfPi = 0x1.921fb54442d18p+0;   // π/2
  static constexpr double kRound = 0x1.8p+52;               // 1.5 · 2^52: x + kRound - kRound rounds x
  static constexpr double kL1 = 0x1.5555555555555p-1;       // 2/3
  static constexpr double kL2 = 0x1.999999999999ap-2;       // 2/5
  static constexpr double kL3 = 0x1.2492492492492p-2;       // 2/7
  static constexpr double kL4 = 0x1.c71c71c71c71cp-3;       // 2/9
  static constexpr double kL5 = 0x1.745d1745d1746p-3;       // 2/11
  static constexpr double kL6 = 0x1.3b13b13b13b14p-3;       // 2/13
  static constexpr double kL7 = 0x1.1111111111111p-3;       // 2/15
  static constexpr double kL8 = 0x1.e1e1e1e1e1e1ep-4;       // 2/17
  static constexpr double kL9 = 0x1.af286bca1af28p-4;       // 2/19
  static constexpr double kL10 = 0x1.8618618618618p-4;      // 2/21
  static constexpr double kS1 = -0x1.5555555555555p-3;      // -1/3!
  static constexpr double kS2 = 0x1.1111111111111p-7;       // 1/5!
  static constexpr double kS3 = -0x1.a01a01a01a01ap-13;     // -1/7!
  static constexpr double kS4 = 0x1.71de3a556c734p-19;      // 1/9!
  static constexpr double kS5 = -0x1.ae64567f544e4p-26;     // -1/11!
  static constexpr double kS6 = 0x1.6124613a86d09p-33;      // 1/13!
  static constexpr double kS7 = -0x1.ae7f3e733b81fp-41;     // -1/15!
  static constexpr double kS8 = 0x1.952c77030ad4ap-49;      // 1/17!
  static constexpr double kC1 = -0x1.0000000000000p-1;      // -1/2!
  static constexpr double kC2 = 0x1.5555555555555p-5;       // 1/4!
  static constexpr double kC3 = -0x1.6c16c16c16c17p-10;     // -1/6!
  static constexpr double kC4 = 0x1.a01a01a01a01ap-16;      // 1/8!
  static constexpr double kC5 = -0x1.27e4fb7789f5cp-22;     // -1/10!
  static constexpr double kC6 = 0x1.1eed8eff8d898p-29;      // 1/12!
  static constexpr double kC7 = -0x1.93974a8c07c9dp-37;     // -1/14!
  static constexpr double kC8 = 0x1.ae7f3e733b81fp-45;      // 1/16!
};

// One lane: the operations of the generator on a double and a 64-bit word. The vector twin
// (kernels/cpu/random.cpp) has the same members over 8 lanes.
struct RandomScalar {
  using D = double;
  using U = uint64_t;
  using M = bool;
  static MK_HD D add(D a, D b) {
#if defined(__CUDA_ARCH__)
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
  }
  static MK_HD D sub(D a, D b) {
#if defined(__CUDA_ARCH__)
    return __dsub_rn(a, b);
#else
    return a - b;
#endif
  }
  static MK_HD D mul(D a, D b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
  }
  static MK_HD D div(D a, D b) {
#if defined(__CUDA_ARCH__)
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
  }
  static MK_HD D sqrt(D a) {
#if defined(__CUDA_ARCH__)
    return __dsqrt_rn(a);
#else
    return __builtin_sqrt(a);
#endif
  }
  static MK_HD U bits(D x) {
    U u;
    memcpy(&u, &x, sizeof u);
    return u;
  }
  static MK_HD D from_bits(U u) {
    D x;
    memcpy(&x, &u, sizeof x);
    return x;
  }
  static MK_HD D splat(double c) { return c; }
  static MK_HD U splat_u(uint64_t c) { return c; }
  // x < 2^53: exact
  static MK_HD D to_double(U x) { return D(x); }
  static MK_HD M greater(D a, D b) { return a > b; }
  static MK_HD D select(M m, D a, D b) { return m ? a : b; }
  static MK_HD U select_u(M m, U a, U b) { return m ? a : b; }
};

template <class O>
MK_HD typename O::U random_mix64(typename O::U x) {
  x = x + O::splat_u(0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * O::splat_u(0xBF58476D1CE4E5B9ull);
  x = (x ^ (x >> 27)) * O::splat_u(0x94D049BB133111EBull);
  return x ^ (x >> 31);
}

// ((h >> 11) + 0.5) 2^-53: a double in (0, 1)
template <class O>
MK_HD typename O::D random_unit(typename O::U h) {
  return O::mul(O::add(O::to_double(h >> 11), O::splat(0.5)), O::splat(RandomConst::kTwoM53));
}

// ln u for a normal u in (0, 1) (the header comment)
template <class O>
MK_HD typename O::D random_log(typename O::D u) {
  using C = RandomConst;
  const typename O::U b = O::bits(u);
  typename O::D m = O::from_bits((b & O::splat_u(0x000FFFFFFFFFFFFFull)) | O::splat_u(0x3FF0000000000000ull));
  const typename O::M big = O::greater(m, O::splat(C::kSqrt2));
  m = O::select(big, O::mul(m, O::splat(0.5)), m);
  // the biased exponent (+1 where m was halved), then k = that - 1023: both exact
  const typename O::U eb = (b >> 52) + O::select_u(big, O::splat_u(1), O::splat_u(0));
  const typename O::D k = O::sub(O::to_double(eb), O::splat(1023.0));
  const typename O::D f = O::sub(m, O::splat(1.0));
  const typename O::D s = O::div(f, O::add(O::splat(2.0), f));
  const typename O::D z = O::mul(s, s);
  typename O::D p = O::splat(C::kL10);
  p = O::add(O::mul(p, z), O::splat(C::kL9));
  p = O::add(O::mul(p, z), O::splat(C::kL8));
  p = O::add(O::mul(p, z), O::splat(C::kL7));
  p = O::add(O::mul(p, z), O::splat(C::kL6));
  p = O::add(O::mul(p, z), O::splat(C::kL5));
  p = O::add(O::mul(p, z), O::splat(C::kL4));
  p = O::add(O::mul(p, z), O::splat(C::kL3));
  p = O::add(O::mul(p, z), O::splat(C::kL2));
  p = O::add(O::mul(p, z), O::splat(C::kL1));
  const typename O::D r = O::mul(p, z);
  const typename O::D hfsq = O::mul(O::mul(O::splat(0.5), f), f);
  // k ln2_hi + (f - (hfsq - (s (hfsq + R) + k ln2_lo)))
  const typename O::D tail = O::add(O::mul(s, O::add(hfsq, r)), O::mul(k, O::splat(C::kLn2Lo)));
  return O::add(O::mul(k, O::splat(C::kLn2Hi)), O::sub(f, O::sub(hfsq, tail)));
}

// cos(2π u) for u in (0, 1) (the header comment)
template <class O>
MK_HD typename O::D random_cos_turn(typename O::D u) {
  using C = RandomConst;
  const typename O::D t = O::mul(u, O::splat(4.0));
  const typename O::D big = O::add(t, O::splat(C::kRound));
  const typename O::U q = O::bits(big) & O::splat_u(3);  // the rounded t mod 4
  const typename O::D x = O::sub(t, O::sub(big, O::splat(C::kRound)));
  const typename O::D phi = O::mul(x, O::splat(C::kHalfPi));
  const typename O::D w = O::mul(phi, phi);
  typename O::D s = O::splat(C::kS8);
  s = O::add(O::mul(s, w), O::splat(C::kS7));
  s = O::add(O::mul(s, w), O::splat(C::kS6));
  s = O::add(O::mul(s, w), O::splat(C::kS5));
  s = O::add(O::mul(s, w), O::splat(C::kS4));
  s = O::add(O::mul(s, w), O::splat(C::kS3));
  s = O::add(O::mul(s, w), O::splat(C::kS2));
  s = O::add(O::mul(s, w), O::splat(C::kS1));
  const typename O::D sn = O::add(phi, O::mul(O::mul(phi, w), s));
  typename O::D c = O::splat(C::kC8);
  c = O::add(O::mul(c, w), O::splat(C::kC7));
  c = O::add(O::mul(c, w), O::splat(C::kC6));
  c = O::add(O::mul(c, w), O::splat(C::kC5));
  c = O::add(O::mul(c, w), O::splat(C::kC4));
  c = O::add(O::mul(c, w), O::splat(C::kC3));
  c = O::add(O::mul(c, w), O::splat(C::kC2));
  c = O::add(O::mul(c, w), O::splat(C::kC1));
  const typename O::D cs = O::add(O::splat(1.0), O::mul(w, c));
  // q = 1 or 3: sin; q = 1 or 2: negated
  const typename O::U odd = q & O::splat_u(1);
  const typename O::U neg = ((q ^ (q >> 1)) & O::splat_u(1)) << 63;
  const typename O::U pick = (O::bits(cs) & (odd - O::splat_u(1))) | (O::bits(sn) & (O::splat_u(0) - odd));
  return O::from_bits(pick ^ neg);
}

// The value of element i: h1 = mix(key ^ i · 0xD1B5...), key = mix(seed) (the caller's, once).
template <class O>
MK_HD typename O::D random_at(int dist, uint64_t key, typename O::U i, double a, double b) {
  const typename O::U h1 = random_mix64<O>(O::splat_u(key) ^ (i * O::splat_u(0xD1B54A32D192ED03ull)));
  const typename O::D u1 = random_unit<O>(h1);
  if (dist == MK_RANDOM_UNIFORM) return O::add(O::splat(a), O::mul(O::sub(O::splat(b), O::splat(a)), u1));
  const typename O::D u2 = random_unit<O>(random_mix64<O>(h1));
  const typename O::D r = O::sqrt(O::mul(O::splat(-2.0), random_log<O>(u1)));
  return O::add(O::splat(a), O::mul(O::mul(O::splat(b), r), random_cos_turn<O>(u2)));
}

// Uniform samples stay below b in the stored type: a + (b - a) u1 < b in exact arithmetic, but the
// rounding to T (F32 above 1 - 2^-25 for b = 1; F64 at the top u1) can reach T(b). The largest T
// below T(b) is the limit (where T(a) < T(b); else none); a sample that reaches it is set to it.
template <class T>
inline T random_limit(double a, double b) {  // host only: computed once per call
  const T fa = T(a), fb = T(b);
  if (!(fa < fb)) return T(INFINITY);
  return sizeof(T) == 4 ? T(nextafterf(float(fb), -INFINITY)) : T(nextafter(double(fb), -INFINITY));
}
template <class T>
MK_HD T random_store(int dist, double v, T limit) {
  const T y = T(v);
  return dist == MK_RANDOM_UNIFORM && !(y < limit) ? limit : y;
}

// The key of stream `seed` (one per call).
MK_HD uint64_t random_key(uint64_t seed) { return random_mix64<RandomScalar>(seed); }

MK_HD double random_value(int dist, uint64_t key, uint64_t i, double a, double b) {
  return random_at<RandomScalar>(dist, key, i, a, b);
}

MK_ISA_END
}  // namespace mk
