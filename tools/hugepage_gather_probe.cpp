// Probe for the host allocator's huge pages (native/src/memory.cpp, 2026-12-05): random-row gathers with a dot
// product per edge (an sddmm-like loop) over x [100k, F] F32, with and without MADV_HUGEPAGE on x.
//   g++ -O3 -march=native -fopenmp -o /tmp/gather tools/hugepage_gather_probe.cpp && OMP_NUM_THREADS=2 /tmp/gather F EDGES 0|1
// random-row gather + dot (sddmm-like): x [N, F] F32, edges (i, j) R-MAT-ish skew via power law; with and without MADV_HUGEPAGE
#include <sys/mman.h>
#include <cmath>
#include <omp.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>
#include <chrono>
#include <algorithm>
int main(int argc, char** argv) {
  const long N = 100000, F = atol(argv[1]), E = atol(argv[2]);
  const bool huge = atoi(argv[3]);
  size_t bytes = size_t(N) * F * 4;
  size_t al = 2 << 20;
  size_t rounded = (bytes + al - 1) / al * al;
  float* x = static_cast<float*>(std::aligned_alloc(al, rounded));
  if (huge) madvise(x, rounded, MADV_HUGEPAGE);
  for (size_t i = 0; i < size_t(N) * F; ++i) x[i] = float(i % 97) * 0.01f;
  std::mt19937_64 rng(1);
  // CSR by destination: rows sorted, sources skewed (Zipf-ish)
  std::vector<long> ptr(N + 1), col(E);
  for (long e = 0; e < E; ++e) col[e] = long(std::pow(double(rng() % 1000000 + 1) / 1e6, 3.0) * (N - 1));
  std::shuffle(col.begin(), col.end(), rng);
  for (long i = 0; i <= N; ++i) ptr[i] = E * i / N;
  std::vector<float> out(E);
  double best = 1e9;
  for (int rep = 0; rep < 7; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 256)
    for (long i = 0; i < N; ++i) {
      const float* a = x + i * F;
      for (long k = ptr[i]; k < ptr[i + 1]; ++k) {
        const float* b = x + col[k] * F;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (long f = 0; f < F; ++f) s += a[f] * b[f];
        out[k] = s;
      }
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, ms);
  }
  long hp = 0;
  FILE* f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  while (f && fgets(line, sizeof line, f)) if (!strncmp(line, "AnonHugePages:", 14)) hp = atol(line + 14);
  if (f) fclose(f);
  printf("F=%ld E=%ld huge=%d: best %.2f ms, %.1f GB/s of gathered rows, AnonHugePages %ld kB, sum %g\n", F, E, huge, best,
         double(E) * F * 4 / best / 1e6, hp, double(out[E / 2]));
}
