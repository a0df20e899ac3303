#define _GNU_SOURCE 1
// A/B of mk_graph_sddmm_forward between two builds of libmetakernels.so, in one process, calls
// interleaved round by round (for a loaded machine; JMH's GraphBench stays the record). Each build
// is loaded into its own link-map namespace (dlmopen: two files with the same soname would
// otherwise be one library). The graph: an R-MAT of 100k nodes (Graph500 probabilities, labels
// shuffled, like Graphs.rmat but not the same draws), CSR with sorted columns; a, b uniform in [-1, 1).
// With THREADS = 1 the times are the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which
// leaves out the time the scheduler gives to others; otherwise wall time.
//   g++ -O2 -o /tmp/sddmm_ab tools/sddmm_ab.cpp -ldl
//   /tmp/sddmm_ab A/libmetakernels.so B/libmetakernels.so EDGES FEATURES [ROUNDS [THREADS [HEADS]]]
// prints min and median of each, A/B, B's GFLOP/s (2·E·F flops) and bytes moved per second (the
// GraphBench note's count: CSR twice, an a row per node, a b row per edge, e written), and
// max |A − B| of the results (summation orders may differ).
#include <dlfcn.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <numeric>
#include <random>
#include <vector>

#include "rmat_edges.h"
typedef int (*sddmm_fn)(int, int, int64_t, int64_t, int64_t, int64_t, int64_t, const int64_t*, const int64_t*,
                        const void*, const void*, void*, void*);
typedef int (*thr_fn)(int);
int main(int argc, char** argv) {
  int64_t N = 100000, E = atoll(argv[3]);
  int F = atoi(argv[4]), rounds = argc > 5 ? atoi(argv[5]) : 10, threads = argc > 6 ? atoi(argv[6]) : 2;
  int heads = argc > 7 ? atoi(argv[7]) : 1;
  const int dtype = 0;  // MK_F32
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> U(0, 1);
  std::vector<int64_t> src, dst, ptr, col;
  rmat_edges(N, E, rng, src, dst);
  csr_by_destination(N, src, dst, ptr, col);
  const int64_t D = F / heads;
  std::vector<float> a(N * F), b(N * F), o0(E * heads), o1(E * heads);
  for (auto& v : a) v = float(U(rng) * 2 - 1);
  for (auto& v : b) v = float(U(rng) * 2 - 1);
  void* h[2];
  sddmm_fn f[2];
  for (int i = 0; i < 2; ++i) {
    h[i] = dlmopen(LM_ID_NEWLM, argv[1 + i], RTLD_NOW | RTLD_LOCAL);
    if (!h[i]) {
      printf("%s\n", dlerror());
      return 1;
    }
    f[i] = (sddmm_fn)dlsym(h[i], "mk_graph_sddmm_forward");
    ((thr_fn)dlsym(h[i], "mk_runtime_set_num_threads"))(threads);
  }
  float* outs[2] = {o0.data(), o1.data()};
  std::vector<double> t[2];
  for (int r = -2; r < rounds; ++r)
    for (int i = 0; i < 2; ++i) {
      timespec c0, c1;
      clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &c0);
      int rc = f[i](0, dtype, N, N, E, heads, D, ptr.data(), col.data(), a.data(), b.data(), outs[i], nullptr);
      clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &c1);
      double ms = (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6;
      if (rc) {
        printf("rc %d\n", rc);
        return 1;
      }
      if (r >= 0) t[i].push_back(ms);
    }
  double maxd = 0, maxr = 0;
  for (int64_t k = 0; k < E * heads; ++k) {
    maxd = std::max(maxd, (double)std::fabs(o0[k] - o1[k]));
    maxr = std::max(maxr, (double)std::fabs(o0[k]));
  }
  for (int i = 0; i < 2; ++i) std::sort(t[i].begin(), t[i].end());
  double bytes = 2 * (8.0 * (N + 1) + 8.0 * E) + 4.0 * N * F + 4.0 * E * F + 4.0 * E * heads;
  printf(
      "E=%lld F=%d heads=%d thr=%d: A min %.3f med %.3f ms | B min %.3f med %.3f ms | A/B min %.2fx med %.2fx | B %.1f "
      "GFLOP/s %.1f GB/s(min) | max|A-B| %.2e (max|A| %.1f)\n",
      (long long)E, F, heads, threads, t[0][0], t[0][rounds / 2], t[1][0], t[1][rounds / 2], t[0][0] / t[1][0],
      t[0][rounds / 2] / t[1][rounds / 2], 2.0 * E * F / t[1][0] / 1e6, bytes / t[1][0] / 1e6, maxd, maxr);
}
