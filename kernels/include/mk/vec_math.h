// Branch-free scalar exp, log, tanh, sigmoid and GELU for float and double that GCC
// auto-vectorises inside `#pragma omp simd` loops at the compiled ISA width (AVX2 or AVX-512).
// libm's std::exp & co. are opaque calls to the vectoriser (no libmvec without -ffast-math), so
// an elementwise loop over them runs one element at a time. Measured 2026-12-01, one thread,
// 1M floats through mk_dense_unary_forward (tests/native/run.sh bench): tanh 11.2 ns/element
// with std::tanh, 0.74 (AVX2) / 0.39 (AVX-512) here; exp 2.2 -> 0.43 / 0.24; gelu 14.3 ->
// 1.42 / 0.72.
//
// Every function is straight-line code: both sides of a case are computed and one is selected,
// so the loop body has no branch. Special values follow the C library: NaN in gives NaN out,
// exp(+inf) = +inf, exp(-inf) = 0, log(0) = -inf, log(x < 0) = NaN, log(+inf) = +inf,
// tanh(±inf) = ±1, sigmoid(±inf) = 1 / 0; overflow gives inf and underflow gives subnormals
// and then 0, as the true result rounds.
//
// Accuracy (tests/native/vec_math_test.cpp, against long double over random and edge inputs,
// 2026-12-01): exp <= 1.0 ulp, log <= 0.8, tanh <= 1.3, sigmoid <= 2.2 in both types; gelu
// relative <= 2.8e-7 (float) / 5.2e-16 (double), at most 7.4 / 11.6 ulp where e^{-2|u|} is
// subnormal (outputs below ~1e-36 |x| / 1e-306 |x|).
//
// Needs FMA (the baseline build has -mfma): the polynomials use fused multiply-adds, and the
// Cody-Waite reductions rely on them being exact. CPU only: the CUDA kernels use the device's
// own exp/log (mk/scalar.h).
#pragma once
#include <cstdint>
#include <cstring>

#define MK_VINLINE inline __attribute__((always_inline))

namespace mk {
namespace vmath {
// The multi-ISA kernel files include this twice over (AVX2 and AVX-512 objects): an inline
// namespace per ISA keeps the two sets of functions apart at link time.
#ifdef MK_ISA_AVX512
inline namespace isa_avx512 {
#else
inline namespace isa_avx2 {
#endif

MK_VINLINE uint32_t as_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
MK_VINLINE uint64_t as_bits(double f) { uint64_t u; std::memcpy(&u, &f, 8); return u; }
MK_VINLINE float as_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
MK_VINLINE double as_f64(uint64_t u) { double f; std::memcpy(&f, &u, 8); return f; }
MK_VINLINE float fma(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
MK_VINLINE double fma(double a, double b, double c) { return __builtin_fma(a, b, c); }
MK_VINLINE float fabs(float x) { return __builtin_fabsf(x); }
MK_VINLINE double fabs(double x) { return __builtin_fabs(x); }
MK_VINLINE float copysign(float x, float s) { return __builtin_copysignf(x, s); }
MK_VINLINE double copysign(double x, double s) { return __builtin_copysign(x, s); }

// ---- exp --------------------------------------------------------------------------------------
// exp(x) = 2^k e^r, k = round(x / ln 2), r = x - k ln 2 in [-ln2/2, ln2/2] (Cody-Waite: ln 2 in
// two parts). The argument is clamped first so k stays small ([-150, 129] / [-1077, 1025]);
// 2^k is applied as two factors 2^(k/2) 2^(k - k/2), each a normal number, so results that
// overflow or fall into the subnormal range round once, as they should. NaN stays NaN through
// the clamps and the polynomial.

// e^r with r = v - k ln 2, k = round(v / ln 2), for a clamped argument v; t = v / ln 2 plus the
// shifter, whose low mantissa bits hold k as an integer. float: Cephes expf's minimax
// polynomial (about 1 ulp); double: the Taylor polynomial to degree 13 (truncation 4e-18
// relative on [-ln2/2, ln2/2]).
MK_VINLINE float exp_reduced(float v, float& t) {
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  t = fma(v, 1.44269504088896341f, shifter);
  const float k = t - shifter;
  float r = fma(k, -0.693359375f, v);
  r = fma(k, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = fma(p, r, 1.3981999507e-3f);
  p = fma(p, r, 8.3334519073e-3f);
  p = fma(p, r, 4.1665795894e-2f);
  p = fma(p, r, 1.6666665459e-1f);
  p = fma(p, r, 5.0000001201e-1f);
  return fma(p, r * r, r) + 1.0f;
}
MK_VINLINE double exp_reduced(double v, double& t) {
  const double shifter = 6755399441055744.0;  // 1.5 * 2^52
  t = fma(v, 1.4426950408889634074, shifter);
  const double k = t - shifter;
  double r = fma(k, -6.93147180369123816490e-01, v);  // ln 2 high part: 32 bits, k ln2hi exact
  r = fma(k, -1.90821492927058770002e-10, r);
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = fma(p, r, 1.0 / 479001600.0);
  p = fma(p, r, 1.0 / 39916800.0);
  p = fma(p, r, 1.0 / 3628800.0);
  p = fma(p, r, 1.0 / 362880.0);
  p = fma(p, r, 1.0 / 40320.0);
  p = fma(p, r, 1.0 / 5040.0);
  p = fma(p, r, 1.0 / 720.0);
  p = fma(p, r, 1.0 / 120.0);
  p = fma(p, r, 1.0 / 24.0);
  p = fma(p, r, 1.0 / 6.0);
  p = fma(p, r, 0.5);
  return fma(p, r * r, r) + 1.0;
}

MK_VINLINE float exp(float x) {
  float v = x < -104.0f ? -104.0f : x;  // e^-104 < half the smallest subnormal
  v = v > 89.0f ? 89.0f : v;            // e^89 > FLT_MAX
  float t;
  const float e = exp_reduced(v, t);
  const uint32_t kb = as_bits(t) - as_bits(12582912.0f) + 254u;  // k + 2 * bias, in [104, 383]
  const uint32_t e1 = kb >> 1, e2 = kb - e1;
  return e * as_f32(e1 << 23) * as_f32(e2 << 23);
}
MK_VINLINE double exp(double x) {
  double v = x < -746.0 ? -746.0 : x;  // e^-746 < half the smallest subnormal
  v = v > 710.0 ? 710.0 : v;           // e^710 > DBL_MAX
  double t;
  const double e = exp_reduced(v, t);
  const uint64_t kb = as_bits(t) - as_bits(6755399441055744.0) + 2046u;  // k + 2 * bias, in [969, 3071]
  const uint64_t e1 = kb >> 1, e2 = kb - e1;
  return e * as_f64(e1 << 52) * as_f64(e2 << 52);
}

// exp for arguments x <= 0 (softmax: s - max, s - lse), -inf or NaN; also right for 0 < x < 88.
// One clamp and one 2^k factor instead of exp's two-sided clamp and split 2^k: the clamp sits at
// -127 ln 2 / -1023 ln 2, where the biased exponent k + bias reaches 0 and the factor is +0, so
// -inf and everything below gives 0 exactly and results under the smallest normal (2^-126 /
// 2^-1022) are flushed to 0 or rounded once as subnormals; NaN stays NaN (the clamp keeps x when
// it is NaN). Same polynomials, so the same accuracy as exp above the smallest normal
// (tests/native). Measured 2026-12-02 in the attention forward: ~17 instead of ~30 vector
// instructions per exp.
MK_VINLINE float exp_nonpos(float x) {
  const float v = -88.02969193111305f > x ? -88.02969193111305f : x;  // k >= -127
  float t;
  const float e = exp_reduced(v, t);
  const uint32_t kb = as_bits(t) - (as_bits(12582912.0f) - 127u);  // k + bias: 0 at k = -127
  return e * as_f32(kb << 23);
}
MK_VINLINE double exp_nonpos(double x) {
  const double v = -709.08956571282405153 > x ? -709.08956571282405153 : x;  // k >= -1023
  double t;
  const double e = exp_reduced(v, t);
  const uint64_t kb = as_bits(t) - (as_bits(6755399441055744.0) - 1023u);  // k + bias: 0 at k = -1023
  return e * as_f64(kb << 52);
}

// ---- log --------------------------------------------------------------------------------------
// x = 2^e m with m in [sqrt(1/2), sqrt(2)) read from the bits (subnormals scaled up first);
// log x = e ln 2 + log(1 + f), f = m - 1 (exact). Specials are selected at the end.

// log(1 + f): Cephes logf's polynomial (about 1 ulp).
MK_VINLINE float log(float x) {
  const bool sub = x < 1.17549435e-38f;  // also 0, negatives: replaced below
  const float xs = sub ? x * 8388608.0f : x;  // 2^23
  uint32_t ix = as_bits(xs) + (0x3f800000u - 0x3f3504f3u);  // the exponent steps at sqrt(1/2)
  const float e = float(int32_t(ix >> 23) - 127) - (sub ? 23.0f : 0.0f);
  ix = (ix & 0x007fffffu) + 0x3f3504f3u;
  const float f = as_f32(ix) - 1.0f;
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = fma(y, f, -1.1514610310e-1f);
  y = fma(y, f, 1.1676998740e-1f);
  y = fma(y, f, -1.2420140846e-1f);
  y = fma(y, f, 1.4249322787e-1f);
  y = fma(y, f, -1.6668057665e-1f);
  y = fma(y, f, 2.0000714765e-1f);
  y = fma(y, f, -2.4999993993e-1f);
  y = fma(y, f, 3.3333331174e-1f);
  y = y * f * z;
  y = fma(e, -2.12194440e-4f, y);
  y = fma(-0.5f, z, y);
  float res = fma(e, 0.693359375f, f + y);
  const float inf = __builtin_inff();
  res = x < 0.0f ? __builtin_nanf("") : res;
  res = x == 0.0f ? -inf : res;
  res = x == inf ? inf : res;
  return x != x ? x + x : res;
}

// log(1 + f) = 2 atanh(s), s = f / (2 + f): fdlibm's e_log.c polynomial (below 1 ulp).
MK_VINLINE double log(double x) {
  const bool sub = x < 2.2250738585072014e-308;
  const double xs = sub ? x * 4503599627370496.0 : x;  // 2^52
  uint64_t ix = as_bits(xs) + (0x3ff0000000000000ull - 0x3fe6a09e667f3bcdull);
  // the biased exponent to double without a 64-bit integer conversion (AVX2 has none)
  const double e = as_f64(0x4330000000000000ull | (ix >> 52)) - 4503599627371519.0 - (sub ? 52.0 : 0.0);
  ix = (ix & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull;
  const double f = as_f64(ix) - 1.0;
  const double hfsq = 0.5 * f * f;
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double w = z * z;
  const double t1 = w * fma(w, fma(w, 1.531383769920937332e-01, 2.222219843214978396e-01), 3.999999999940941908e-01);
  const double t2 = z * fma(w, fma(w, fma(w, 1.479819860511658591e-01, 1.818357216161805012e-01),
                                  2.857142874366239149e-01), 6.666666666666735130e-01);
  const double R = t2 + t1;
  double res = e * 6.93147180369123816490e-01 -
               ((hfsq - (s * (hfsq + R) + e * 1.90821492927058770002e-10)) - f);
  const double inf = __builtin_inf();
  res = x < 0.0 ? __builtin_nan("") : res;
  res = x == 0.0 ? -inf : res;
  res = x == inf ? inf : res;
  return x != x ? x + x : res;
}

// ---- tanh -------------------------------------------------------------------------------------
// |x| < 0.625: an odd polynomial / rational function (Cephes), which keeps the relative accuracy
// near 0; otherwise 1 - 2 / (e^{2|x|} + 1) with the sign of x, which saturates to ±1 by itself.

MK_VINLINE float tanh(float x) {
  const float a = fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = fma(p, z, 2.06390887954e-2f);
  p = fma(p, z, -5.37397155531e-2f);
  p = fma(p, z, 1.33314422036e-1f);
  p = fma(p, z, -3.33332819422e-1f);
  const float small = fma(p * z, x, x);
  const float big = copysign(1.0f - 2.0f / (exp(a + a) + 1.0f), x);
  return a < 0.625f ? small : big;
}

MK_VINLINE double tanh(double x) {
  const double a = fabs(x);
  const double z = x * x;
  const double P = fma(fma(-9.64399179425052238628e-1, z, -9.92877231001918586564e1), z,
                       -1.61468768441708447952e3);
  const double Q = fma(fma(z + 1.12811678491632931402e2, z, 2.23548839060100448583e3), z,
                       4.84406305325125486048e3);
  const double small = fma(z * (P / Q), x, x);
  const double big = copysign(1.0 - 2.0 / (exp(a + a) + 1.0), x);
  return a < 0.625 ? small : big;
}

// ---- sigmoid ----------------------------------------------------------------------------------
// 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0: e = e^-|x| never overflows, and the
// negative side keeps its relative accuracy down to the subnormals.
template <class T>
MK_VINLINE T sigmoid(T x) {
  const T e = exp(-fabs(x));
  return (x >= T(0) ? T(1) : e) / (T(1) + e);
}

// ---- gelu -------------------------------------------------------------------------------------
// The tanh approximation (GPT-2), as java/.../ops/Dense.gelu defines it and differentiates it:
//   gelu(x) = x/2 (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)   (constants rounded to T)
// computed as x sigmoid(2u) (the same function, since 1 + tanh(u) = 2 sigmoid(2u)): no
// cancellation for x < 0 and one exp. For x < 0 the output ~ x e^{-2|u|} amplifies any error in
// 2u by |2u| (up to ~90 in float), so 2u is carried as an unevaluated sum w + wl (error-free
// products and sums, Dekker/Knuth) and e^-(w + wl) = e^-w (1 - wl). Beyond |x| = 30 the
// sigmoid is exactly 0 or 1 in both types, so x is clamped there for u (no overflow in x^3);
// the ±inf results match the tanh form: gelu(+inf) = +inf, gelu(-inf) = NaN.
template <class T>
MK_VINLINE T gelu(T x) {
  const T k = T(0.044715), c2 = T(2.0 * 0.7978845608028654);  // 2 sqrt(2/pi)
  T xc = x < T(-30) ? T(-30) : x;
  xc = xc > T(30) ? T(30) : xc;
  const T x2 = xc * xc, x2l = fma(xc, xc, -x2);
  const T x3 = x2 * xc, x3l = fma(x2, xc, -x3) + x2l * xc;      // xc^3 = x3 + x3l
  const T a = k * x3, al = fma(k, x3, -a) + k * x3l;            // k xc^3 = a + al
  const T s = a + xc, bv = s - a;
  const T sl = ((a - (s - bv)) + (xc - bv)) + al;               // xc + k xc^3 = s + sl
  const T w = c2 * s, wl = fma(c2, s, -w) + c2 * sl;            // 2u = w + wl
  const T e = exp(-fabs(w)) * (T(1) - (w >= T(0) ? wl : -wl));  // e^{-|2u|}
  return x * ((w >= T(0) ? T(1) : e) / (T(1) + e));
}

}  // inline namespace isa_*
}  // namespace vmath
}  // namespace mk
