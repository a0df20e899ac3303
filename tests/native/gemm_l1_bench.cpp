// Times the fused CPU kernels' tile product (mk::tile::gemm, kernels/include/mk/cpu_tile.h) alone,
// one [R x P] x [P x N] product whose operands stay in L1, as the attention passes call it: A
// row-major (scores: q or k rows, acs = 1) and A column-major (P V, dK, dV: Pᵀ tiles, ars = 1).
// Against tests/native/fma_peak it shows what the register blocks reach without the passes'
// other traffic (benchmarks/results/cpu-ab-2026-12-04-avx512-attention.md).
//
//   g++ -O3 -std=gnu++17 -mavx2 -mfma -mf16c [-mavx512f -mavx512dq -mavx512bw -mavx512vl -DMK_ISA_AVX512=1] \
//     -Ikernels/include -Inative/include tests/native/gemm_l1_bench.cpp -o gemm_l1_bench
//   gemm_l1_bench [R N P]          (default 64 64 64)
// prints per layout: "A rows|A columns <GFLOP/s> GFLOP/s checksum <sum of C>", process CPU time,
// best of 7 runs of 2000 products (C accumulated: c += a b, as the kernels' O += P V).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "mk/cpu_tile.h"

namespace {
double now() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}
}  // namespace

int main(int argc, char** argv) {
  const int64_t R = argc > 3 ? std::atol(argv[1]) : 64, N = argc > 3 ? std::atol(argv[2]) : 64,
                P = argc > 3 ? std::atol(argv[3]) : 64;
  std::vector<float> a(size_t(R * P)), b(size_t(P * N)), c(size_t(R * N), 0.f);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(i % 7) * 1e-3f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = float(i % 5) * 1e-3f;
  for (int layout = 0; layout < 2; ++layout) {
    const int64_t ars = layout ? 1 : P, acs = layout ? R : 1;
    double best = 1e30;
    for (int round = 0; round < 7; ++round) {
      const int reps = 2000;
      const double t0 = now();
      for (int i = 0; i < reps; ++i)
        mk::tile::gemm<float>(R, N, P, 1.f, a.data(), ars, acs, b.data(), N, c.data(), N, true);
      best = std::min(best, (now() - t0) / reps);
    }
    double cs = 0;
    for (float x : c) cs += x;
    std::printf("%s %.1f GFLOP/s checksum %g\n", layout ? "A columns" : "A rows", 2.0 * R * N * P / best / 1e9, cs);
  }
  return 0;
}
