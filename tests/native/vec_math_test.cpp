// Accuracy, special values and speed of mk/vec_math.h against long double libm references, and
// of the std:: forms the CPU kernels used before (mk/scalar.h's unary_apply) for comparison.
// Build and run: see tests/native/README.md. Exit status 1 when a check fails.
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mk/scalar.h"
#include "mk/vec_math.h"

namespace {

using ld = long double;
int g_failures = 0;

// ---- the functions under test, as whole loops (these must vectorise: -fopt-info-vec) ---------
enum Fn { EXP, LOG, TANH, SIGMOID, GELU, EXP_NONPOS, NFN };
const char* kName[] = {"exp", "log", "tanh", "sigmoid", "gelu", "exp_nonpos"};
const int kStdOp[] = {MK_UNARY_EXP, MK_UNARY_LOG, MK_UNARY_TANH, MK_UNARY_SIGMOID, MK_UNARY_GELU, MK_UNARY_EXP};

template <class T>
__attribute__((noinline)) void run_vec(Fn fn, const T* x, T* y, int64_t n) {
  switch (fn) {
    case EXP:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = mk::vmath::exp(x[i]);
      break;
    case LOG:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = mk::vmath::log(x[i]);
      break;
    case TANH:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = mk::vmath::tanh(x[i]);
      break;
    case SIGMOID:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = mk::vmath::sigmoid(x[i]);
      break;
    case GELU:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = mk::vmath::gelu(x[i]);
      break;
    case EXP_NONPOS:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = mk::vmath::exp_nonpos(x[i]);
      break;
    default: break;
  }
}

template <class T>
__attribute__((noinline)) void run_std(Fn fn, const T* x, T* y, int64_t n) {
  const int op = kStdOp[fn];
  for (int64_t i = 0; i < n; ++i) y[i] = mk::unary_apply<T>(op, x[i], T(0));
}

// ---- references -----------------------------------------------------------------------------
template <class T>
ld reference(Fn fn, T xt) {
  const ld x = xt;
  switch (fn) {
    case EXP:
    case EXP_NONPOS: return expl(x);
    case LOG: return logl(x);
    case TANH: return tanhl(x);
    case SIGMOID: return 1.0L / (1.0L + expl(-x));
    case GELU: {  // with the constants as the kernel rounds them to T
      const ld c = ld(T(0.7978845608028654)), k = ld(T(0.044715));
      return x / (1.0L + expl(-2.0L * c * (x + k * x * x * x)));
    }
    default: return 0;
  }
}

// One unit in the last place of T at the magnitude of r (the subnormal spacing below the normals).
template <class T>
ld ulp_of(ld r) {
  r = fabsl(r);
  if (r < ld(std::numeric_limits<T>::min())) return ld(std::numeric_limits<T>::denorm_min());
  int e;
  frexpl(r, &e);
  return ldexpl(1.0L, e - std::numeric_limits<T>::digits);
}

struct Stats {
  double max_ulp = 0, max_rel = 0, max_abs_tail = 0;
  double x_ulp = 0, x_rel = 0, x_tail = 0;
  int64_t count = 0;
};

// Relative error |y - r| / |r|, counted where |r| >= floor (below it the outputs are "near zero"
// and the absolute error over `scale` is what is kept, in max_abs_tail).
template <class T>
void accumulate(Stats& s, T x, T y, ld r, ld floor, ld scale, bool count_ulp = true) {
  ++s.count;
  const ld rt = ld(T(r));  // the reference rounded to T (inf when it overflows T)
  if (std::isnan(double(r)) || std::isinf(double(rt))) {
    if (std::isnan(double(r)) != std::isnan(double(y)) || (std::isinf(double(rt)) && ld(y) != rt)) {
      s.max_ulp = s.max_rel = 1e30; s.x_ulp = s.x_rel = double(x);
    }
    return;
  }
  const ld err = fabsl(ld(y) - r);
  const double ulps = count_ulp ? double(err / ulp_of<T>(r)) : 0.0;
  if (ulps > s.max_ulp) { s.max_ulp = ulps; s.x_ulp = double(x); }
  if (fabsl(r) >= floor) {
    const double rel = double(err / fabsl(r));
    if (rel > s.max_rel) { s.max_rel = rel; s.x_rel = double(x); }
  } else {
    const double abs_err = double(err / scale);
    if (abs_err > s.max_abs_tail) { s.max_abs_tail = abs_err; s.x_tail = double(x); }
  }
}

// ---- inputs ---------------------------------------------------------------------------------
template <class T>
std::vector<T> inputs(Fn fn, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<T> x;
  const bool f32 = sizeof(T) == 4;
  auto uniform = [&](double lo, double hi, int n) {
    std::uniform_real_distribution<double> u(lo, hi);
    for (int i = 0; i < n; ++i) x.push_back(T(u(g)));
  };
  auto logmag = [&](double lo_exp, double hi_exp, bool negative_too, int n) {  // 10^U(lo, hi)
    std::uniform_real_distribution<double> u(lo_exp, hi_exp);
    for (int i = 0; i < n; ++i) {
      T v = T(std::pow(10.0, u(g)));
      if (negative_too && (g() & 1)) v = -v;
      x.push_back(v);
    }
  };
  auto random_bits = [&](bool positive, int n) {  // every finite T, uniformly over the encodings
    for (int i = 0; i < n; ++i) {
      T v;
      do {
        if (f32) { uint32_t b = uint32_t(g()); if (positive) b &= 0x7fffffffu; std::memcpy(&v, &b, 4); }
        else { uint64_t b = g(); if (positive) b &= 0x7fffffffffffffffull; std::memcpy(&v, &b, 8); }
      } while (!std::isfinite(double(v)));
      x.push_back(v);
    }
  };
  const int n = 1 << 20;
  switch (fn) {
    case EXP:
      uniform(f32 ? -104 : -746, f32 ? 89 : 710, n);
      uniform(-1, 1, n / 4);
      random_bits(false, n / 4);
      break;
    case LOG:
      random_bits(true, n);
      uniform(0.5, 2, n / 4);
      uniform(0, 1e-3, n / 8);
      logmag(f32 ? -45 : -323, f32 ? 38 : 308, false, n / 4);
      break;
    case TANH:
      uniform(-10, 10, n);
      uniform(-1, 1, n / 4);
      logmag(-30, 1.5, true, n / 4);
      random_bits(false, n / 8);
      break;
    case SIGMOID:
      uniform(f32 ? -110 : -750, f32 ? 110 : 750, n);
      uniform(-20, 20, n / 4);
      logmag(-30, 3, true, n / 4);
      break;
    case GELU:
      uniform(-10, 10, n);
      uniform(-3, 3, n / 4);
      logmag(-30, f32 ? 13 : 100, true, n / 4);
      break;
    case EXP_NONPOS:  // its domain: x <= 0 (and up to 88: the softmax's s - lse can round above 0)
      uniform(f32 ? -104 : -746, 0, n);
      uniform(-1, 0, n / 4);
      uniform(0, 1, n / 16);
      random_bits(false, n / 4);
      for (auto& v : x)
        if (v > T(1)) v = -v;
      break;
    default: break;
  }
  return x;
}

template <class T>
std::vector<T> edges() {
  using L = std::numeric_limits<T>;
  std::vector<T> e = {T(0), -T(0), L::infinity(), -L::infinity(), L::quiet_NaN(), -L::quiet_NaN(),
                      L::min(), -L::min(), L::denorm_min(), -L::denorm_min(), L::max(), -L::max(),
                      T(1), T(-1), T(0.5), T(2), T(0.625), T(-0.625),
                      std::nextafter(T(0.625), T(0)), std::nextafter(T(-0.625), T(0)),
                      std::nextafter(T(1), T(0)), std::nextafter(T(1), T(2)),
                      T(88.72283), T(88.72284), T(89), T(-87.33654), T(-103.27893), T(-103.97208),
                      T(-104), T(-105), T(709.782712893384), T(709.7828), T(-708.3964),
                      T(-744.44007), T(-745.1332), T(-746), T(1e-8), T(-1e-8), T(1e-20), T(20),
                      T(-20), T(9), T(-9), T(44), T(-44), T(1e6), T(-1e6), T(1e13), T(-1e13),
                      T(3e12), T(-3e12)};
  return e;
}

// the inputs of fn's domain: exp_nonpos takes x <= 88 (its callers pass x <= 0 up to rounding)
template <class T>
std::vector<T> domain(Fn fn, std::vector<T> x) {
  if (fn != EXP_NONPOS) return x;
  std::vector<T> d;
  for (T v : x)
    if (!(v > T(88))) d.push_back(v);
  return d;
}

// special values (NaN, infinities, zeros with their sign) must match the std:: forms
template <class T>
void check_specials(Fn fn, const char* tname) {
  std::vector<T> x = domain(fn, edges<T>());
  std::vector<T> y(x.size()), s(x.size());
  run_vec(fn, x.data(), y.data(), int64_t(x.size()));
  run_std(fn, x.data(), s.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const bool special = std::isnan(s[i]) || std::isinf(s[i]) || s[i] == T(0) || std::isnan(y[i]) ||
                         std::isinf(y[i]) || y[i] == T(0);
    if (!special) continue;
    bool same = std::isnan(s[i]) == std::isnan(y[i]);
    if (same && !std::isnan(s[i])) same = s[i] == y[i] && std::signbit(s[i]) == std::signbit(y[i]);
    // a finite std:: result of 0 where the true value is a representable tiny number is std::'s
    // underflow (e.g. gelu's 1 + tanh cancelling); the vector form may then be closer to the truth
    // exp_nonpos flushes results below the smallest normal to 0
    if (!same && fn == EXP_NONPOS && y[i] == T(0) && std::signbit(y[i]) == 0 &&
        fabsl(reference(fn, x[i])) < ld(std::numeric_limits<T>::min()))
      same = true;
    if (!same && s[i] == T(0) && std::isfinite(y[i])) {
      const ld r = reference(fn, x[i]);
      same = fabsl(ld(y[i]) - r) <= fabsl(r) * 1e-5L + ld(std::numeric_limits<T>::denorm_min());
    }
    if (!same) {
      std::printf("FAIL %s<%s>(%a): %a, std:: gives %a\n", kName[fn], tname, double(x[i]), double(y[i]),
                  double(s[i]));
      ++g_failures;
    }
  }
}

template <class T>
void check_accuracy(Fn fn, const char* tname, double ulp_limit) {
  std::vector<T> x = inputs<T>(fn, 1234 + fn);
  {
    std::vector<T> e = domain(fn, edges<T>());
    x.insert(x.end(), e.begin(), e.end());
  }
  const int64_t n = int64_t(x.size());
  std::vector<T> y(x.size()), s(x.size());
  run_vec(fn, x.data(), y.data(), n);
  run_std(fn, x.data(), s.data(), n);
  Stats sv, ss;
  const bool f32 = sizeof(T) == 4;
  const ld floor = fn == EXP_NONPOS ? ld(std::numeric_limits<T>::min()) : f32 ? 1e-30L : 1e-300L;
  for (int64_t i = 0; i < n; ++i) {
    const ld r = reference(fn, x[i]);
    // gelu's negative tail: outputs near 0 are judged on their absolute error over |x|
    // exp_nonpos below the smallest normal: the absolute error is kept (it flushes to 0)
    const bool tail = (fn == GELU && fabsl(r) < 1e-3L * fabsl(ld(x[i]))) ||
                      (fn == EXP_NONPOS && r < ld(std::numeric_limits<T>::min()));
    const ld scale = fn == GELU ? fmaxl(fabsl(ld(x[i])), 1.0L) : 1.0L;
    accumulate(sv, x[i], y[i], r, tail ? ld(INFINITY) : floor, scale, !(fn == EXP_NONPOS && tail));
    accumulate(ss, x[i], s[i], r, tail ? ld(INFINITY) : floor, scale);
  }
  const bool ok = sv.max_ulp <= ulp_limit;
  std::printf("%-8s %-6s n=%-8" PRId64 " vec: %7.2f ulp (x=%-14.6g) rel %.2e   std: %9.2f ulp rel %.2e%s%s\n",
              kName[fn], tname, n, sv.max_ulp, sv.x_ulp, sv.max_rel, ss.max_ulp, ss.max_rel,
              fn == GELU ? "" : "", ok ? "" : "   <-- FAIL");
  if (fn == GELU)
    std::printf("%-8s %-6s tail (|gelu| < 1e-3 |x|): max |err| / |x|  vec %.2e (x=%g)  std %.2e\n", "", tname,
                sv.max_abs_tail, sv.x_tail, ss.max_abs_tail);
  if (fn == EXP_NONPOS) {  // below the smallest normal: at most that in absolute error
    const bool tail_ok = sv.max_abs_tail <= double(std::numeric_limits<T>::min());
    std::printf("%-8s %-6s below the smallest normal: max |err| %.2e (x=%g), limit %.2e%s\n", "", tname,
                sv.max_abs_tail, sv.x_tail, double(std::numeric_limits<T>::min()), tail_ok ? "" : "   <-- FAIL");
    if (!tail_ok) ++g_failures;
  }
  if (!ok) ++g_failures;
}

template <class T>
void time_fn(Fn fn, const char* tname) {
  const int64_t n = 1 << 20;
  std::vector<T> x(n), y(n);
  std::mt19937_64 g(7);
  std::uniform_real_distribution<double> u(fn == LOG ? 0.01 : -5, fn == LOG ? 100 : 5);
  for (auto& v : x) v = T(u(g));
  auto best = [&](auto&& body) {
    double b = 1e30;
    for (int r = 0; r < 12; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      body();
      auto t1 = std::chrono::steady_clock::now();
      b = std::min(b, std::chrono::duration<double, std::nano>(t1 - t0).count() / double(n));
    }
    return b;
  };
  const double tv = best([&] { run_vec(fn, x.data(), y.data(), n); });
  const double ts = best([&] { run_std(fn, x.data(), y.data(), n); });
  std::printf("%-8s %-6s vec %6.3f ns/elem   std %6.3f ns/elem   (x%.1f)\n", kName[fn], tname, tv, ts, ts / tv);
}

}  // namespace

int main(int argc, char** argv) {
  const bool timing = argc > 1 && std::string(argv[1]) == "--time";
#if defined(__AVX512F__)
  std::printf("compiled for AVX-512\n");
#elif defined(__AVX2__)
  std::printf("compiled for AVX2\n");
#endif
  for (int f = 0; f < NFN; ++f) {
    const Fn fn = Fn(f);
    check_specials<float>(fn, "float");
    check_specials<double>(fn, "double");
  }
  // limits: 3 ulp; gelu 16 ulp, reached only where e^{-2|u|} is subnormal (outputs below
  // ~1e-36 |x| in float, ~1e-306 |x| in double); elsewhere it stays within ~3 ulp
  for (int f = 0; f < NFN; ++f) check_accuracy<float>(Fn(f), "float", f == GELU ? 16 : 3);
  for (int f = 0; f < NFN; ++f) check_accuracy<double>(Fn(f), "double", f == GELU ? 16 : 3);
  if (timing)
    for (int f = 0; f < NFN; ++f) { time_fn<float>(Fn(f), "float"); time_fn<double>(Fn(f), "double"); }
  std::printf("%s (%d failures)\n", g_failures ? "FAILED" : "OK", g_failures);
  return g_failures ? 1 : 0;
}
