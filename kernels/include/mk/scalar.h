// Scalar math shared by the CPU and CUDA kernels: op definitions and half-precision conversions
// (the counter-based random numbers: mk/random.h). Host/device where CUDA compiles it.
#pragma once
#include <cmath>
#include <cstdint>
#include "mk/codes.h"
#include "mk/isa_ns.h"

#ifdef __CUDACC__
#define MK_HD __host__ __device__ __forceinline__
#else
// Forced: the CPU elementwise loops call unary_apply/binary_apply with a constant op inside
// `omp simd` loops, and they only vectorise once the switch is inlined and folded; GCC's own
// heuristics left the big switch out of line (a call per element) in most instantiations.
#define MK_HD inline __attribute__((always_inline))
#endif

namespace mk {
MK_ISA_BEGIN

template <class T>
MK_HD T unary_apply(int op, T x, T p) {
  switch (op) {
    case MK_UNARY_NEG: return -x;
    case MK_UNARY_EXP: return std::exp(x);
    case MK_UNARY_LOG: return std::log(x);
    case MK_UNARY_TANH: return std::tanh(x);
    case MK_UNARY_SIGMOID: return x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
    case MK_UNARY_RELU: return x > T(0) || x != x ? x : T(0);  // NaN stays NaN, as PyTorch
    case MK_UNARY_GELU: {  // tanh approximation (as in GPT-2); its derivative is composed in Java
      const T c = T(0.7978845608028654);  // sqrt(2/pi)
      return T(0.5) * x * (T(1) + std::tanh(c * (x + T(0.044715) * x * x * x)));
    }
    case MK_UNARY_SQRT: return std::sqrt(x);
    case MK_UNARY_SQUARE: return x * x;
    case MK_UNARY_ABS: return std::fabs(x);
    case MK_UNARY_SIGN: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case MK_UNARY_POW_SCALAR: return p == T(2) ? x * x : std::pow(x, p);
    case MK_UNARY_ADD_SCALAR: return x + p;
    case MK_UNARY_MUL_SCALAR: return x * p;
    case MK_UNARY_RSUB_SCALAR: return p - x;
    case MK_UNARY_RECIPROCAL: return T(1) / x;
    case MK_UNARY_RSQRT: return T(1) / std::sqrt(x);
    case MK_UNARY_STEP: return x > T(0) ? T(1) : T(0);
    case MK_UNARY_ELU1: return x > T(0) ? x + T(1) : std::exp(x);
    case MK_UNARY_ELU1_GRAD: return x > T(0) ? T(1) : std::exp(x);
    case MK_UNARY_LOG1P: return std::log1p(x);
    case MK_UNARY_COS: return std::cos(x);
    case MK_UNARY_SIN: return std::sin(x);
    case MK_UNARY_CLAMP_MIN: return x < p ? p : x;
    case MK_UNARY_CLAMP_MAX: return x > p ? p : x;
    case MK_UNARY_COPY: return x;
    case MK_UNARY_SOFTPLUS: return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    default: return x;
  }
}

template <class T>
MK_HD T binary_apply(int op, T a, T b) {
  switch (op) {
    case MK_BINARY_ADD: return a + b;
    case MK_BINARY_SUB: return a - b;
    case MK_BINARY_MUL: return a * b;
    case MK_BINARY_DIV: return a / b;
    // a NaN in either operand is the result (a's when both), as PyTorch's maximum / minimum
    case MK_BINARY_MAX: return a > b || a != a ? a : b;
    case MK_BINARY_MIN: return a < b || a != a ? a : b;
    case MK_BINARY_POW: return std::pow(a, b);
    case MK_BINARY_EQ: return a == b ? T(1) : T(0);
    case MK_BINARY_NE: return a != b ? T(1) : T(0);
    case MK_BINARY_LT: return a < b ? T(1) : T(0);
    case MK_BINARY_LE: return a <= b ? T(1) : T(0);
    case MK_BINARY_GT: return a > b ? T(1) : T(0);
    case MK_BINARY_GE: return a >= b ? T(1) : T(0);
    default: return a;
  }
}

// ---- bfloat16 / float16 conversions (round to nearest even) --------------------------------
MK_HD uint16_t f32_to_bf16_bits(float f) {
  uint32_t u;
  {
    union { float f; uint32_t u; } v; v.f = f; u = v.u;
  }
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
MK_HD float bf16_bits_to_f32(uint16_t h) {
  union { float f; uint32_t u; } v; v.u = uint32_t(h) << 16; return v.f;
}
MK_HD uint16_t f32_to_f16_bits(float f) {
  union { float f; uint32_t u; } v; v.f = f;
  uint32_t x = v.u;
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0u));
  if (exp >= 31) return uint16_t(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return uint16_t(sign);
    mant |= 0x800000u;
    uint32_t shift = uint32_t(14 - exp);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t half = sign | (uint32_t(exp) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
  return uint16_t(half);
}
MK_HD float f16_bits_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t out;
  if (exp == 0) {
    if (mant == 0) out = sign;
    else {
      int e = -1;
      do { ++e; mant <<= 1; } while ((mant & 0x400u) == 0);
      out = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    out = sign | 0x7f800000u | (mant << 13);
  } else {
    out = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  union { float f; uint32_t u; } v; v.u = out; return v.f;
}


// double -> float rounded to odd: toward zero, the last bit set when inexact. Rounding that float
// once more, to nearest even, into a format of at most 22 significant bits (BF16: 8, F16: 11) gives
// the double rounded once to that format (rounding to odd then to nearest, Boldo and Melquiond);
// through a float rounded to nearest, a value just past a midpoint could round twice the wrong way
// (1 + 2^-8 + 2^-30 became 1 in BF16, not 1 + 2^-7).
MK_HD float f64_to_f32_round_odd(double d) {
  const float f = float(d);  // nearest
  if (double(f) == d || d != d) return f;
  union { float f; uint32_t u; } v; v.f = f;
  if (std::fabs(double(f)) > std::fabs(d)) v.u -= 1u;  // one ulp toward zero (infinity: the largest float)
  v.u |= 1u;
  return v.f;
}
MK_HD uint16_t f64_to_bf16_bits(double d) { return f32_to_bf16_bits(f64_to_f32_round_odd(d)); }
MK_HD uint16_t f64_to_f16_bits(double d) { return f32_to_f16_bits(f64_to_f32_round_odd(d)); }

// int64 -> double rounded to odd (53 bits: toward zero, the last bit set when inexact). Rounding to
// odd composes (to odd at 53 bits, then at 24, is to odd at 24), so f64_to_bf16_bits /
// f64_to_f16_bits of this value round the integer once; through double(v), rounded to nearest,
// 2^60 + 2^52 + 1 became the BF16 midpoint 2^60 + 2^52 and then 2^60, not 2^60 + 2^53.
MK_HD double i64_to_f64_round_odd(int64_t v) {
  const uint64_t a = v < 0 ? uint64_t(0) - uint64_t(v) : uint64_t(v);
  if (a < (uint64_t(1) << 53)) return double(v);
#if defined(__CUDA_ARCH__)
  const int lead = __clzll((long long)a);
#else
  const int lead = __builtin_clzll(a);
#endif
  const int shift = 11 - lead;  // bit length - 53, 1..11
  uint64_t m = a >> shift;
  if (a & ((uint64_t(1) << shift) - 1)) m |= 1;
  const double d = double(m) * double(uint64_t(1) << shift);  // both exact
  return v < 0 ? -d : d;
}

// double -> int64 toward zero, defined for every input (int64_t(d) is undefined behaviour for NaN
// and out of range: x86 gives INT64_MIN, the GPU's cvt saturates): NaN -> 0, beyond the range the
// nearest end, as Java's (long) cast and the GPU do.
MK_HD int64_t f64_to_i64(double d) {
  if (d != d) return 0;
  if (d >= 9223372036854775808.0) return INT64_MAX;
  if (d <= -9223372036854775808.0) return INT64_MIN;
  return int64_t(d);
}

MK_ISA_END
}  // namespace mk
