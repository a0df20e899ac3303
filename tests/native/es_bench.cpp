// Times the CPU ES kernels (kernels/cpu/meta_es.cpp) outside Java: one ES generation's parts at
// the benchmark's size (MetaBatchedBench.esGeneration: 256 members, n = 65536, F32), built per
// version by tests/native/es_ab.sh.
//   es_bench MODE PAIRS N REPS [ISA]
//     MODE  perturb  the population θ ± σε [2 PAIRS, N]
//           combine  θ + scale Σ_k d_k ε_k [N]
//           gen      the ES generation: perturb then combine
//           write    no noise: the population's size written as θ ± σ (memory traffic alone)
//     ISA   2 (AVX2) or 3 (AVX-512, the default where the CPU has it)
// prints the median and the minimum milliseconds per call over REPS calls (after one warm-up)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mk/kernels.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "es_bench MODE PAIRS N REPS [ISA]\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int64_t pairs = atoll(argv[2]), n = atoll(argv[3]);
  const int reps = atoi(argv[4]);
  const int isa = argc > 5 ? atoi(argv[5]) : (__builtin_cpu_supports("avx512f") ? 3 : 2);
  mk::cpu::set_isa_level(isa);
  // 64-byte aligned, as the library's allocator gives
  struct Buf {
    float* p;
    explicit Buf(int64_t count) : p(static_cast<float*>(std::aligned_alloc(64, size_t((count * 4 + 63) / 64 * 64)))) {}
    ~Buf() { std::free(p); }
    float& operator[](size_t i) { return p[i]; }
    float* data() { return p; }
  };
  Buf theta(n), w(2 * pairs), pop(2 * pairs * n), out(n);
  for (int64_t j = 0; j < n; ++j) theta[size_t(j)] = 0.5f;
  for (int64_t i = 0; i < 2 * pairs; ++i) w[size_t(i)] = float(i % 7) / 7.0f - 0.5f;
  const double sigma = 0.02, scale = 0.01 / (2.0 * double(pairs) * sigma);
  std::vector<double> ms;
  float sink = 0;
  for (int r = 0; r <= reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    if (mode == "perturb" || mode == "gen")
      mk::cpu::meta_es_perturb(MK_F32, 7, r, pairs, n, theta.data(), sigma, pop.data(), nullptr);
    if (mode == "combine" || mode == "gen")
      mk::cpu::meta_es_combine(MK_F32, 7, r, pairs, n, w.data(), scale, theta.data(), out.data(), nullptr);
    if (mode == "write") {
      float* p = pop.data();
      const float* th = theta.data();
#pragma omp parallel for schedule(static)
      for (int64_t k = 0; k < pairs; ++k)
        for (int64_t j = 0; j < n; ++j) {
          p[(2 * k) * n + j] = th[j] + 0.02f;
          p[(2 * k + 1) * n + j] = th[j] - 0.02f;
        }
    }
    const auto t1 = std::chrono::steady_clock::now();
    sink += pop[size_t(r) % size_t(2 * pairs * n)] + out[size_t(r) % size_t(n)];
    if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  printf("%s pairs=%lld n=%lld isa=%d threads=%d median_ms=%.3f min_ms=%.3f (sink %g)\n", mode.c_str(),
         (long long)pairs, (long long)n, isa, omp_get_max_threads(), ms[ms.size() / 2], ms[0], double(sink));
  return 0;
}
