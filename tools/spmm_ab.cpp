#define _GNU_SOURCE 1
// A/B of mk_graph_spmm_forward with indexed weights (sum over the CSC, the weights read through the
// CSC-to-CSR permutation: the transposed pass of a weighted spmm's gradient, e.g. sddmm's db)
// between two builds of libmetakernels.so, in one process, calls interleaved round by round (for a
// loaded machine). Each build is loaded into its own link-map namespace (dlmopen). The graph:
// tools/sddmm_ab.cpp's R-MAT of 100k nodes (CSR by destination, sorted columns), its CSC; x and
// the weights uniform in [-1, 1). With THREADS = 1 the times are the calling thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID); otherwise wall time.
//   g++ -O2 -o /tmp/spmm_ab tools/spmm_ab.cpp -ldl
//   /tmp/spmm_ab A/libmetakernels.so B/libmetakernels.so EDGES FEATURES [ROUNDS [THREADS [HEADS]]]
// prints min and median of each, A/B, and the number of output elements whose bits differ (the
// kernels promise the same bits whatever the scratch).
#include <dlfcn.h>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <numeric>
#include <random>
#include <vector>

#include "rmat_edges.h"
typedef int (*spmm_fn)(int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, const int64_t*, const int64_t*,
                       const void*, const int64_t*, const void*, void*, int64_t*, void*);
typedef int (*thr_fn)(int);
int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s A.so B.so EDGES FEATURES [ROUNDS [THREADS [HEADS]]]\n", argv[0]);
    return 2;
  }
  int64_t N = 100000, E = atoll(argv[3]);
  int F = atoi(argv[4]), rounds = argc > 5 ? atoi(argv[5]) : 10, threads = argc > 6 ? atoi(argv[6]) : 2;
  int heads = argc > 7 ? atoi(argv[7]) : 1;
  const int dtype = 0;  // MK_F32
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> U(0, 1);
  std::vector<int64_t> src, dst, ptr, col;
  rmat_edges(N, E, rng, src, dst);
  csr_by_destination(N, src, dst, ptr, col);
  // the CSC (rows of the transpose: sources) and the permutation to the CSR's non-zeros
  std::vector<int64_t> cptr(N + 1, 0), crow(E), perm(E);
  for (int64_t k = 0; k < E; ++k) cptr[col[k] + 1]++;
  for (int64_t j = 0; j < N; ++j) cptr[j + 1] += cptr[j];
  std::vector<int64_t> next(cptr.begin(), cptr.end() - 1);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t k = ptr[r]; k < ptr[r + 1]; ++k) {
      const int64_t at = next[col[k]]++;
      crow[at] = r;
      perm[at] = k;
    }
  int64_t widest = 0;
  for (int64_t j = 0; j < N; ++j) widest = std::max(widest, cptr[j + 1] - cptr[j]);
  const int64_t D = F / heads;
  std::vector<float> x(N * F), w(E * heads), o0(N * F), o1(N * F);
  for (auto& v : x) v = float(U(rng) * 2 - 1);
  for (auto& v : w) v = float(U(rng) * 2 - 1);
  void* h[2];
  spmm_fn f[2];
  for (int i = 0; i < 2; ++i) {
    h[i] = dlmopen(LM_ID_NEWLM, argv[1 + i], RTLD_NOW | RTLD_LOCAL);
    if (!h[i]) {
      printf("%s\n", dlerror());
      return 1;
    }
    f[i] = (spmm_fn)dlsym(h[i], "mk_graph_spmm_forward");
    ((thr_fn)dlsym(h[i], "mk_runtime_set_num_threads"))(threads);
  }
  float* outs[2] = {o0.data(), o1.data()};
  std::vector<double> t[2];
  for (int r = -2; r < rounds; ++r)
    for (int i = 0; i < 2; ++i) {
      timespec c0, c1;
      clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &c0);
      int rc = f[i](0, dtype, 0 /* sum */, N, N, E, heads, D, cptr.data(), crow.data(), w.data(), perm.data(), x.data(),
                    outs[i], nullptr, nullptr);
      clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &c1);
      double ms = (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6;
      if (rc) {
        printf("rc %d\n", rc);
        return 1;
      }
      if (r >= 0) t[i].push_back(ms);
    }
  int64_t differ = 0;
  for (int64_t k = 0; k < N * F; ++k) differ += std::memcmp(&o0[k], &o1[k], sizeof(float)) != 0;
  for (int i = 0; i < 2; ++i) std::sort(t[i].begin(), t[i].end());
  printf(
      "indexed spmm (CSC) E=%lld F=%d heads=%d thr=%d widest column %lld: A min %.3f med %.3f ms | B min %.3f med "
      "%.3f ms | A/B min %.3fx med %.3fx | %lld of %lld outputs differ in bits\n",
      (long long)E, F, heads, threads, (long long)widest, t[0][0], t[0][rounds / 2], t[1][0], t[1][rounds / 2],
      t[0][0] / t[1][0], t[0][rounds / 2] / t[1][rounds / 2], (long long)differ, (long long)(N * F));
}
