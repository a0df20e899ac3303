// mk/random.h and the CPU kernel of Tensor.rand / randn (kernels/cpu/random.cpp), linked from the
// library's own objects: the generator's ln and cos against long double libm, the kernel at every
// ISA level this CPU has against the scalar code (bitwise: the code the CUDA kernels run), for every
// thread count (bitwise), F32 normals against the glibc form the kernel had before 2026-12-07, and
// the samples' moments. Built with -ffp-contract=off, as the library builds random.cpp. Exit
// status 1 when a check fails.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mk/kernels.h"
#include "mk/random.h"

namespace {

using ld = long double;
int g_failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

// |got - want| in units in the last place of the double nearest want
double ulps(double got, ld want) {
  const double w = double(want);
  const double ulp = std::nextafter(std::fabs(w), INFINITY) - std::fabs(w);
  return double(std::fabs(ld(got) - want) / ld(ulp));
}

uint64_t mix(uint64_t x) { return mk::random_mix64<mk::RandomScalar>(x); }

// The formula of the kernel before 2026-12-07 (glibc log and cos of a rounded angle).
double glibc_normal(uint64_t seed, uint64_t i) {
  const uint64_t h = mix(mix(seed) ^ (i * 0xD1B54A32D192ED03ull)), h2 = mix(h);
  const double u1 = ((h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  const double u2 = ((h2 >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

void accuracy() {
  using O = mk::RandomScalar;
  double worst_log = 0, worst_cos = 0;
  double at_log = 0, at_cos = 0;
  std::vector<double> us;
  const uint64_t key = mk::random_key(11);
  for (uint64_t i = 0; i < (1u << 21); ++i) us.push_back(mk::random_unit<O>(mix(key ^ (i * 0x9E3779B97F4A7C15ull))));
  // the ends of the range and the places where the reductions switch
  for (double u : {0x1p-54, 0x1p-53 * 1.5, 0.5, 0.25, 0.125, 0.75, 0.875, 1.0 - 0x1p-53, 1.0 - 0x1p-52,
                   0.70710678118654746, 0.70710678118654757, 0.35355339059327373, 0.0625 + 0x1p-53})
    us.push_back(u);
  for (double u : us) {
    const double l = mk::random_log<O>(u);
    const double el = ulps(l, std::log(ld(u)));
    if (el > worst_log) worst_log = el, at_log = u;
    // the reference reduces the angle exactly as the generator does (4u and its rounding are exact):
    // long double cos of the rounded 2πu would bury the error near the zeros
    const ld t = 4.0L * ld(u), q = std::nearbyint(t), x = t - q;
    const ld phi = x * 1.570796326794896619231321691639751442L;
    const int o = int(q) & 3;
    const ld want = o == 0 ? std::cos(phi) : o == 1 ? -std::sin(phi) : o == 2 ? -std::cos(phi) : std::sin(phi);
    const double ec = ulps(mk::random_cos_turn<O>(u), want);
    if (ec > worst_cos) worst_cos = ec, at_cos = u;
  }
  std::printf("ln u: worst %.3f ulp (u = %.17g); cos 2πu: worst %.3f ulp (u = %.17g); %zu points\n", worst_log,
              at_log, worst_cos, at_cos, us.size());
  expect(worst_log <= 1.0, "ln u within 1 ulp");
  expect(worst_cos <= 2.5, "cos 2πu within 2.5 ulp");
}

template <class T>
void kernel_vs_scalar(int level) {
  const char* tn = sizeof(T) == 4 ? "F32" : "F64";
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  for (int dist : {MK_RANDOM_UNIFORM, MK_RANDOM_NORMAL})
    for (int64_t n : {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 4095, 4096, 4097, 4103, 8199, 70000}) {
      const uint64_t seed = 1000 + uint64_t(n);
      const double a = dist == MK_RANDOM_NORMAL ? 0.5 : -1.0, b = 2.0;
      std::vector<T> got(size_t(n) + 2, T(-7));
      mk::cpu::random_fill(dtype, dist, n, got.data() + 1, seed, a, b, nullptr);
      const uint64_t key = mk::random_key(seed);
      const T limit = mk::random_limit<T>(a, b);
      int64_t bad = 0;
      for (int64_t i = 0; i < n; ++i) {
        const T want = mk::random_store<T>(dist, mk::random_value(dist, key, uint64_t(i), a, b), limit);
        bad += std::memcmp(&want, &got[size_t(i) + 1], sizeof(T)) != 0;
      }
      expect(bad == 0 && got[0] == T(-7) && got[size_t(n) + 1] == T(-7),
             std::string("level ") + std::to_string(level) + " " + tn + " dist " + std::to_string(dist) + " n " +
                 std::to_string(n) + ": " + std::to_string(bad) + " elements differ from the scalar code");
    }
}

template <class T>
void threads_and_moments() {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const int64_t n = 1 << 20;
  std::vector<T> one(n), two(n);
  for (int dist : {MK_RANDOM_UNIFORM, MK_RANDOM_NORMAL}) {
    omp_set_num_threads(1);
    mk::cpu::random_fill(dtype, dist, n, one.data(), 5, 0.0, 1.0, nullptr);
    omp_set_num_threads(2);
    mk::cpu::random_fill(dtype, dist, n, two.data(), 5, 0.0, 1.0, nullptr);
    expect(std::memcmp(one.data(), two.data(), n * sizeof(T)) == 0, "1 and 2 threads give the same bits");
    double s1 = 0, s2 = 0, lo = 1e300, hi = -1e300;
    for (T v : one) s1 += double(v), s2 += double(v) * double(v), lo = std::fmin(lo, double(v)), hi = std::fmax(hi, double(v));
    const double mean = s1 / n, var = s2 / n - mean * mean;
    std::printf("%s %s: mean %.5f var %.5f range [%.4f, %.4f]\n", sizeof(T) == 4 ? "F32" : "F64",
                dist == MK_RANDOM_NORMAL ? "normal" : "uniform", mean, var, lo, hi);
    if (dist == MK_RANDOM_NORMAL)
      expect(std::fabs(mean) < 5e-3 && std::fabs(var - 1.0) < 5e-3 && hi < 8.7 && lo > -8.7, "normal moments");
    else
      expect(std::fabs(mean - 0.5) < 2e-3 && std::fabs(var - 1.0 / 12) < 1e-3 && lo > 0.0 && hi < 1.0, "uniform moments");
  }
}

// Uniform samples stay in [a, b) in the stored type, also where the rounding to it reaches b often
// (a range of a few units in the last place), at every ISA level and in the scalar code.
template <class T>
void uniform_below_b() {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const double a = 1.0, b = sizeof(T) == 4 ? 1.0 + 0x1p-20 : 1.0 + 0x1p-49;  // 8 (F32) / 8 (F64) steps
  const int64_t n = 10007;
  std::vector<T> got(n);
  mk::cpu::random_fill(dtype, MK_RANDOM_UNIFORM, n, got.data(), 3, a, b, nullptr);
  int64_t outside = 0, at_top = 0;
  const T top = mk::random_limit<T>(a, b);
  for (T v : got) outside += !(v >= T(a) && v < T(b)), at_top += v == top;
  expect(outside == 0 && at_top > 0, std::string(sizeof(T) == 4 ? "F32" : "F64") + " uniform in [a, b): " +
                                         std::to_string(outside) + " outside, " + std::to_string(at_top) + " at the top");
  expect(mk::random_store<float>(MK_RANDOM_UNIFORM, 1.0 - 0x1p-54, mk::random_limit<float>(0.0, 1.0)) ==
             std::nextafter(1.0f, 0.0f),
         "F32 rand: 1 - 2^-54 is stored as the float below 1");
  expect(mk::random_store<float>(MK_RANDOM_NORMAL, 1.0 - 0x1p-54, mk::random_limit<float>(0.0, 1.0)) == 1.0f,
         "normals are not clamped");
  expect(std::isinf(mk::random_limit<float>(2.0, 2.0)), "no limit for an empty range");
}

void same_as_glibc_form() {
  const int64_t n = 1 << 20;
  std::vector<float> got(n);
  int64_t differ = 0;
  for (uint64_t seed : {1ull, 2ull, 3ull}) {
    mk::cpu::random_fill(MK_F32, MK_RANDOM_NORMAL, n, got.data(), seed, 0.0, 1.0, nullptr);
    for (int64_t i = 0; i < n; ++i) differ += got[i] != float(glibc_normal(seed, uint64_t(i)));
  }
  std::printf("F32 normals differing from the glibc form: %lld of %lld\n", (long long)differ, (long long)(3 * n));
  expect(differ <= 3, "F32 normals as before (glibc log and cos) but in about 1 case in 10^8");
}

void speed() {
  const int64_t n = 1 << 20;
  std::vector<float> f(n);
  for (int level : {2, 3}) {
    if (level == 3 && !__builtin_cpu_supports("avx512f")) continue;
    mk::cpu::set_isa_level(level);
    omp_set_num_threads(1);
    double best = 1e30, best_glibc = 1e30;
    for (int r = 0; r < 5; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      mk::cpu::random_fill(MK_F32, MK_RANDOM_NORMAL, n, f.data(), uint64_t(r), 0.0, 1.0, nullptr);
      auto t1 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < n; ++i) f[i] = float(glibc_normal(uint64_t(r), uint64_t(i)));
      auto t2 = std::chrono::steady_clock::now();
      best = std::fmin(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
      best_glibc = std::fmin(best_glibc, std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
    std::printf("2^20 F32 normals, 1 thread, ISA level %d: %.2f ms (the glibc form, scalar: %.2f ms)\n", level, best,
                best_glibc);
  }
}

}  // namespace

int main() {
  accuracy();
  for (int level : {2, 3}) {
    if (level == 3 && !__builtin_cpu_supports("avx512f")) {
      std::printf("no AVX-512 on this CPU: level 3 skipped\n");
      continue;
    }
    mk::cpu::set_isa_level(level);
    kernel_vs_scalar<float>(level);
    kernel_vs_scalar<double>(level);
    threads_and_moments<float>();
    threads_and_moments<double>();
    uniform_below_b<float>();
    uniform_below_b<double>();
    same_as_glibc_form();
  }
  speed();
  std::printf(g_failures ? "%d checks FAILED\n" : "all checks passed\n", g_failures);
  return g_failures ? 1 : 0;
}
