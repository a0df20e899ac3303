// kernels/cuda/meta_per_example.cu and kernels/cuda/meta_es.cu run on the host by the emulator in
// cuda_runtime.h, against their CPU twins (kernels/cpu/meta_per_example.cpp, meta_es.cpp: the
// library's own objects):
//   - per-example norms for F32 and F64, sequence lengths 1 to past a block of threads (rows split
//     over threads), empty inner sizes; within rounding of the twin and of a long-double loop
//     over the materialised per-example gradient g_bᵀ x_b;
//   - ES perturb and combine, F32 and F64, with and without theta, pairs 1 to 37, n from 1 to past
//     a grid-stride round: bitwise equal to the twin at every ISA level the CPU has (AVX2, AVX-512;
//     the noise is Philox and a float Box–Muller and all sides round every operation as written)
//     and to the scalar es_normal element by element, the update in place equal to out of place,
//     the combine equal to a long-double sum over the perturb's noise; the CPU kernels bitwise
//     the same for 1, 2 and 3 threads and for a population written with non-temporal stores;
//     Philox-4x32-10 against its published known answers;
//     es_logf against log.
// Every output sits between NaN guards that must stay untouched; the threads run in the given
// order.
//   meta_batched_emu_test [order]     order: 0 forward, 1 reverse, 2 shuffled threads
#include <omp.h>
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "meta_es.cu"
#include "meta_per_example.cu"

namespace mk {
namespace cuda {
alignas(16) unsigned char mk_per_example_smem[256 * 1024 + 4096];
}  // namespace cuda
}  // namespace mk
inline unsigned char* emu::smem() { return mk::cuda::mk_per_example_smem; }

#include "emu_check.h"  // expect, guarded Buf, same_bits, tname



template <class T>
void norm_case(int64_t batch, int64_t steps, int64_t in, int64_t out, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<T> x(size_t(batch * steps * in)), g(size_t(batch * steps * out));
  for (auto& v : x) v = T(nd(rng));
  for (auto& v : g) v = T(nd(rng));
  Buf<T> got(batch), want(batch);
  const int rc = mk::cuda::meta_per_example_norm(sizeof(T) == 8 ? MK_F64 : MK_F32, batch, steps, in, out, x.data(),
                                                 g.data(), got.data(), nullptr);
  mk::cpu::meta_per_example_norm(sizeof(T) == 8 ? MK_F64 : MK_F32, batch, steps, in, out, x.data(), g.data(),
                                 want.data(), nullptr);
  char cs[160];
  snprintf(cs, sizeof cs, "norm %s B=%lld T=%lld in=%lld out=%lld", tname<T>(), (long long)batch, (long long)steps,
           (long long)in, (long long)out);
  expect(rc == 0, std::string(cs) + ": launch");
  expect(got.guards_intact() && want.guards_intact(), std::string(cs) + ": guards");
  const double tol = sizeof(T) == 8 ? 1e-12 : 2e-5;
  for (int64_t b = 0; b < batch; ++b) {
    // the materialised gradient's squared norm
    long double ref = 0;
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        long double s = 0;
        for (int64_t t = 0; t < steps; ++t)
          s += (long double)g[size_t((b * steps + t) * out + o)] * (long double)x[size_t((b * steps + t) * in + i)];
        ref += s * s;
      }
    const double r = double(ref);
    const double scale = std::max(std::fabs(r), 1e-30);
    if (!(std::fabs(double(got[b]) - r) <= tol * scale) || !(std::fabs(double(want[b]) - r) <= tol * scale)) {
      char m[400];
      snprintf(m, sizeof m, "%s: example %lld cuda %.17g cpu %.17g reference %.17g", cs, (long long)b, double(got[b]),
               double(want[b]), r);
      expect(false, m);
      return;
    }
  }
  ++g_checks;
}

// The CPU ISA levels to check the CPU twin at: AVX2 always, AVX-512 where the CPU has it.
static std::vector<int> cpu_isas() {
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl"))
    return {2, 3};
  return {2};
}

// Philox-4x32-10 against the known answers published with it (Random123's kat_vectors: counter,
// key, result).
static void philox_known_answers() {
  struct Kat {
    uint32_t ctr[4], key[2], want[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    uint32_t c[4] = {k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]};
    mk::es_philox(c, k.key[0], k.key[1]);
    char m[160];
    snprintf(m, sizeof m, "philox4x32-10 known answer for counter %08x: got %08x %08x %08x %08x", k.ctr[0], c[0], c[1],
             c[2], c[3]);
    expect(std::memcmp(c, k.want, sizeof c) == 0, m);
  }
}

// es_logf against the double log over every 97th odd q (u = q 2^-24), and the largest |ε|.
static void log_accuracy() {
  double worst = 0;
  for (uint32_t q = 1; q < (1u << 24); q += 2 * 97) {
    const float u = float(q) * 5.9604644775390625e-08f;
    const double ref = std::log(double(u));
    worst = std::max(worst, std::fabs(double(mk::es_logf(u)) - ref) / std::max(std::fabs(ref), 1e-30));
  }
  char m[120];
  snprintf(m, sizeof m, "es_logf: worst relative error %.3g", worst);
  expect(worst < 4e-7, m);  // a few float ulps
}

// The CPU kernels give the same bits for 1, 2 and 3 OpenMP threads (every element by one thread).
static void es_threads() {
  const int64_t pairs = 9, n = 70001;
  std::vector<float> theta(static_cast<size_t>(n)), w(static_cast<size_t>(2 * pairs));
  for (int64_t j = 0; j < n; ++j) theta[size_t(j)] = float(j % 13) * 0.1f;
  for (int64_t k = 0; k < 2 * pairs; ++k) w[size_t(k)] = float(k % 5) - 2.0f;
  std::vector<float> ref_p, ref_c;
  for (int isa : cpu_isas()) {
    mk::cpu::set_isa_level(isa);
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      std::vector<float> p(static_cast<size_t>(2 * pairs * n)), c(static_cast<size_t>(n));
      mk::cpu::meta_es_perturb(MK_F32, 3, 4, pairs, n, theta.data(), 0.1, p.data(), nullptr);
      mk::cpu::meta_es_combine(MK_F32, 3, 4, pairs, n, w.data(), 0.01, theta.data(), c.data(), nullptr);
      if (ref_p.empty()) {
        ref_p = p;
        ref_c = c;
      } else {
        const std::string m = "es isa=" + std::to_string(isa) + " threads=" + std::to_string(threads);
        expect(p == ref_p, m + ": perturb bitwise the 1-thread AVX2 result");
        expect(c == ref_c, m + ": combine bitwise the 1-thread AVX2 result");
      }
    }
  }
  omp_set_num_threads(1);
}

// A population of 8 MB or more (F32) is written with non-temporal stores where the rows are 64-byte
// aligned: the same bits as the scalar reference, aligned and not, at every ISA level.
static void es_stream() {
  const int64_t pairs = 8, n = 131072;  // 8 MiB; rows aligned when the buffer is
  const size_t count = size_t(2 * pairs * n) + 16;
  float* buf = static_cast<float*>(std::aligned_alloc(64, count * sizeof(float)));
  std::vector<float> theta(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) theta[size_t(j)] = float(j % 11) * 0.25f;
  for (int shift : {0, 1}) {  // 0: aligned (streamed), 1: 4 bytes off (plain stores)
    for (int isa : cpu_isas()) {
      mk::cpu::set_isa_level(isa);
      float* out = buf + shift;
      mk::cpu::meta_es_perturb(MK_F32, 5, 6, pairs, n, theta.data(), 0.3, out, nullptr);
      bool same = true;
      for (int64_t k = 0; k < pairs && same; ++k) {
        const uint64_t key = mk::es_pair_key(5, 6, uint64_t(k));
        for (int64_t j = 0; j < n && same; ++j) {
          const float e = 0.3f * mk::es_normal(key, uint64_t(j));
          same = out[2 * k * n + j] == theta[size_t(j)] + e && out[(2 * k + 1) * n + j] == theta[size_t(j)] - e;
        }
      }
      expect(same, "es 8 MiB population, shift " + std::to_string(shift) + " isa=" + std::to_string(isa) +
                       ": the scalar reference's bits");
    }
  }
  std::free(buf);
}

template <class T>
void es_case(int64_t pairs, int64_t n, bool with_theta, uint64_t seed, int64_t generation) {
  const int dt = sizeof(T) == 8 ? MK_F64 : MK_F32;
  std::mt19937_64 rng(seed * 31 + uint64_t(n));
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<T> theta(static_cast<size_t>(n)), w(static_cast<size_t>(2 * pairs));
  for (auto& v : theta) v = T(nd(rng));
  for (auto& v : w) v = T(nd(rng));
  const T* th = with_theta ? theta.data() : nullptr;
  const double sigma = 0.05;
  char cs[160];
  snprintf(cs, sizeof cs, "es %s pairs=%lld n=%lld theta=%d gen=%lld", tname<T>(), (long long)pairs, (long long)n,
           int(with_theta), (long long)generation);
  // perturb: bitwise
  Buf<T> pg(2 * pairs * n), pw(2 * pairs * n);
  expect(mk::cuda::meta_es_perturb(dt, seed, generation, pairs, n, th, sigma, pg.data(), nullptr) == 0,
         std::string(cs) + ": perturb launch");
  // the CPU twin at every ISA level this CPU has (2: AVX2, 3: AVX-512), each bitwise the CUDA result
  for (int isa : cpu_isas()) {
    mk::cpu::set_isa_level(isa);
    const std::string ci = std::string(cs) + " isa=" + std::to_string(isa);
    mk::cpu::meta_es_perturb(dt, seed, generation, pairs, n, th, sigma, pw.data(), nullptr);
    expect(pg.guards_intact() && pw.guards_intact(), ci + ": perturb guards");
    expect(std::memcmp(pg.data(), pw.data(), sizeof(T) * size_t(2 * pairs * n)) == 0, ci + ": perturb bitwise");
  }
  // against the scalar reference, element by element: ε = es_normal (mk/meta_batched.h)
  {
    const T s = T(sigma);
    bool same = true;
    for (int64_t k = 0; k < pairs && same; ++k) {
      const uint64_t key = mk::es_pair_key(seed, uint64_t(generation), uint64_t(k));
      for (int64_t j = 0; j < n && same; ++j) {
        const T e = s * T(mk::es_normal(key, uint64_t(j)));
        const T c = th ? th[j] : T(0);
        const T plus = c + e, minus = c - e;
        same = std::memcmp(&plus, &pg[2 * k * n + j], sizeof(T)) == 0 &&
               std::memcmp(&minus, &pg[(2 * k + 1) * n + j], sizeof(T)) == 0;
      }
    }
    expect(same, std::string(cs) + ": perturb equals the scalar es_normal");
  }
  // combine: bitwise, and in place equals out of place
  const double scale = 0.01 / (2.0 * double(pairs) * sigma);
  Buf<T> cg(n), cw(n);
  expect(mk::cuda::meta_es_combine(dt, seed, generation, pairs, n, w.data(), scale, th, cg.data(), nullptr) == 0,
         std::string(cs) + ": combine launch");
  for (int isa : cpu_isas()) {
    mk::cpu::set_isa_level(isa);
    const std::string ci = std::string(cs) + " isa=" + std::to_string(isa);
    mk::cpu::meta_es_combine(dt, seed, generation, pairs, n, w.data(), scale, th, cw.data(), nullptr);
    expect(cg.guards_intact() && cw.guards_intact(), ci + ": combine guards");
    expect(std::memcmp(cg.data(), cw.data(), sizeof(T) * size_t(n)) == 0, ci + ": combine bitwise");
  }
  if (with_theta) {
    std::vector<T> inplace = theta;
    mk::cuda::meta_es_combine(dt, seed, generation, pairs, n, w.data(), scale, inplace.data(), inplace.data(), nullptr);
    expect(std::memcmp(inplace.data(), cg.data(), sizeof(T) * size_t(n)) == 0, std::string(cs) + ": in place");
  }
  // combine against a long-double sum over the noise read back from perturb (theta 0, sigma 1)
  Buf<T> eps(2 * pairs * n);
  mk::cpu::meta_es_perturb(dt, seed, generation, pairs, n, nullptr, 1.0, eps.data(), nullptr);
  double worst = 0;
  for (int64_t j = 0; j < n; ++j) {
    long double s = 0, mag = 0;
    for (int64_t k = 0; k < pairs; ++k) {
      const long double d = (long double)w[size_t(2 * k)] - (long double)w[size_t(2 * k + 1)];
      s += d * (long double)eps[2 * k * n + j];
      mag += std::fabs(double(d * (long double)eps[2 * k * n + j]));
      if (eps[(2 * k + 1) * n + j] != -eps[2 * k * n + j]) worst = 1e9;  // antithetic
    }
    const double ref = (with_theta ? double(theta[size_t(j)]) : 0.0) + double(scale * s);
    const double tol = (sizeof(T) == 8 ? 1e-13 : 1e-6) * (std::fabs(ref) + scale * double(mag) + 1e-300);
    worst = std::max(worst, std::fabs(double(cw[j]) - ref) / tol);
  }
  expect(worst <= 1.0, std::string(cs) + ": combine against the long-double sum");
}

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  std::vector<int> orders = {0, 1, 2};
  if (argc > 1) orders = {atoi(argv[1])};
  for (int order : orders) {
    emu::config().order = order;
    unsigned s = 7;
    for (int64_t steps : {1, 2, 5, 130}) {
      norm_case<float>(3, steps, 7, 4, ++s);
      norm_case<double>(3, steps, 7, 4, ++s);
    }
    norm_case<double>(5, 1, 33, 17, ++s);
    norm_case<double>(2, 9, 1, 1, ++s);
    norm_case<float>(1, 3, 64, 40, ++s);
    norm_case<double>(0, 3, 4, 4, ++s);
    for (int64_t pairs : {1, 2, 37})
      for (int64_t n : {1, 5, 300, 4099}) {
        es_case<float>(pairs, n, true, 11 + uint64_t(pairs), 0);
        es_case<double>(pairs, n, n % 2 == 1, 12 + uint64_t(pairs), 3);
      }
    es_case<float>(3, 70000, true, 99, 1u << 20);  // many blocks, a large generation
  }
  philox_known_answers();
  log_accuracy();
  es_threads();
  es_stream();
  printf("meta_batched_emu_test: %d checks, %d failures (%lld launches, %lld blocks)\n", g_checks, g_failures,
         (long long)emu::config().launches, (long long)emu::config().blocks);
  return g_failures ? 1 : 0;
}
