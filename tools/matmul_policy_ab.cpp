// Build: g++ -O2 -fopenmp tools/matmul_policy_ab.cpp -o /tmp/mm_ab -L$OPENBLAS_DIR -l:libopenblas.so.0 -Wl,-rpath,$OPENBLAS_DIR
// (OPENBLAS_DIR: the bytedeco openblas linux-x86_64 folder under ~/.javacpp/cache); run: /tmp/mm_ab 512 100
// (OMP_WAIT_POLICY=passive for the policy metakernels asks for). Used for README "Benchmarks", 2026-12-06.
// A/B of the CPU matmul policies for square F32 GEMMs: one OpenBLAS call with its own threads vs an
// OpenMP split of single-threaded calls (rows or columns).
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
extern "C" {
void cblas_sgemm(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
void openblas_set_num_threads(int);
}
enum { RowMajor = 101, NoTrans = 111 };
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 512, reps = argc > 2 ? atoi(argv[2]) : 200;
  std::vector<float> a(n * n), b(n * n), c(n * n);
  for (int i = 0; i < n * n; ++i) a[i] = (i % 7) * 0.1f, b[i] = (i % 5) * 0.1f;
  int T = omp_get_max_threads();
  auto bench = [&](const char* name, auto f) {
    for (int i = 0; i < 5; ++i) f();
    std::vector<double> t;
    for (int r = 0; r < 5; ++r) {
      double t0 = now();
      for (int i = 0; i < reps; ++i) f();
      t.push_back((now() - t0) / reps * 1e6);
    }
    std::sort(t.begin(), t.end());
    printf("%-28s n=%d median %.0f us  min %.0f  (%.0f GFLOP/s)\n", name, n, t[2], t[0], 2.0 * n * n * n / t[2] / 1e3);
  };
  openblas_set_num_threads(1);
  bench("openblas 1 thread", [&] { cblas_sgemm(RowMajor, NoTrans, NoTrans, n, n, n, 1, a.data(), n, b.data(), n, 0, c.data(), n); });
  bench("omp rows x 1-thread blas", [&] {
#pragma omp parallel
    {
      int t = omp_get_thread_num(), r0 = n * t / T, r1 = n * (t + 1) / T;
      cblas_sgemm(RowMajor, NoTrans, NoTrans, r1 - r0, n, n, 1, a.data() + r0 * n, n, b.data(), n, 0, c.data() + r0 * n, n);
    }
  });
  bench("omp cols x 1-thread blas", [&] {
#pragma omp parallel
    {
      int t = omp_get_thread_num(), c0 = n * t / T, c1 = n * (t + 1) / T;
      cblas_sgemm(RowMajor, NoTrans, NoTrans, n, c1 - c0, n, 1, a.data(), n, b.data() + c0, n, 0, c.data() + c0, n);
    }
  });
  openblas_set_num_threads(T);
  bench("openblas T threads", [&] { cblas_sgemm(RowMajor, NoTrans, NoTrans, n, n, n, 1, a.data(), n, b.data(), n, 0, c.data(), n); });
}
