#define _GNU_SOURCE 1
// The passes of MessagePassing.sddmm's forward and backward, timed one by one through the C API of
// one build of libmetakernels.so (dlopen), on tools/sddmm_ab.cpp's R-MAT graph (100k nodes) with
// the graph's CSC built as Graph does (sources' out-edges by destination, and the CSC-to-graph
// permutation). The passes, F32, heads = 1:
//   sddmm fwd           e = sddmm(CSR, a, b)                                  (the forward)
//   spmm CSR (da)       da = Σ_{k into i} dE_k b[src_k]: weights in order    (backward, first half)
//   spmm CSC idx (db)   db = Σ_{k out of j} dE_k a[dst_k]: weights read through the permutation
//   spmm CSR / CSC no w the same gathers without weights (what the weights cost)
//   permute + CSC direct   dE put into CSC order first (one thread, here), then direct weights
// With THREADS = 1 the times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID: time the
// scheduler gives to others left out, for a loaded machine), otherwise wall time. Each pass's
// rate counts one gathered row (4·F bytes) per edge.
// With a second build B.so, instead: the CSC pass with indexed weights (db) of both builds, each
// loaded in its own link-map namespace (dlmopen), calls interleaved round by round, min and median
// of each, A/B, and how many elements of db differ between the two.
//   g++ -O2 -o /tmp/sddmm_passes_prof tools/sddmm_passes_prof.cpp -ldl
//   /tmp/sddmm_passes_prof path/to/libmetakernels.so EDGES FEATURES [ROUNDS [THREADS [B.so]]]
#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <numeric>
#include <random>
#include <vector>

#include "rmat_edges.h"

typedef int (*sddmm_fn)(int, int, int64_t, int64_t, int64_t, int64_t, int64_t, const int64_t*, const int64_t*,
                        const void*, const void*, void*, void*);
typedef int (*spmm_fn)(int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, const int64_t*, const int64_t*,
                       const void*, const int64_t*, const void*, void*, int64_t*, void*);
typedef int (*thr_fn)(int);

static int g_threads = 2;
static double now_ms() {
  timespec c;
  clock_gettime(g_threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &c);
  return c.tv_sec * 1e3 + c.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    printf("usage: %s LIB.so EDGES FEATURES [ROUNDS [THREADS]]\n", argv[0]);
    return 2;
  }
  const int64_t N = 100000, E = atoll(argv[2]);
  const int F = atoi(argv[3]), rounds = argc > 4 ? atoi(argv[4]) : 5;
  g_threads = argc > 5 ? atoi(argv[5]) : 2;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> U(0, 1);
  std::vector<int64_t> src, dst;
  rmat_edges(N, E, rng, src, dst);  // (N = 100k: 17 levels)
  // graph order: by destination, then source (the CSR); the CSC: by source, then graph position
  std::vector<int64_t> ord(E);
  std::iota(ord.begin(), ord.end(), 0);
  std::sort(ord.begin(), ord.end(),
            [&](int64_t x, int64_t y) { return dst[x] != dst[y] ? dst[x] < dst[y] : src[x] < src[y]; });
  std::vector<int64_t> ptr(N + 1, 0), col(E), row_of(E), cptr(N + 1, 0), cdst(E), c2g(E);
  for (int64_t k = 0; k < E; ++k) {
    ptr[dst[ord[k]] + 1]++;
    col[k] = src[ord[k]];
    row_of[k] = dst[ord[k]];
  }
  for (int64_t r = 0; r < N; ++r) ptr[r + 1] += ptr[r];
  std::iota(c2g.begin(), c2g.end(), 0);
  std::stable_sort(c2g.begin(), c2g.end(), [&](int64_t x, int64_t y) { return col[x] < col[y]; });
  for (int64_t p = 0; p < E; ++p) {
    cptr[col[c2g[p]] + 1]++;
    cdst[p] = row_of[c2g[p]];
  }
  for (int64_t r = 0; r < N; ++r) cptr[r + 1] += cptr[r];
  std::vector<float> a(N * F), b(N * F), dE(E), e(E), da(N * F), db(N * F), dE_csc(E);
  for (auto& v : a) v = float(U(rng) * 2 - 1);
  for (auto& v : b) v = float(U(rng) * 2 - 1);
  for (auto& v : dE) v = float(U(rng) * 2 - 1);
  void* h = dlmopen(LM_ID_NEWLM, argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    printf("%s\n", dlerror());
    return 1;
  }
  auto sddmm = (sddmm_fn)dlsym(h, "mk_graph_sddmm_forward");
  auto spmm = (spmm_fn)dlsym(h, "mk_graph_spmm_forward");
  ((thr_fn)dlsym(h, "mk_runtime_set_num_threads"))(g_threads);
  if (argc > 6) {  // A/B of the CSC pass
    void* hb = dlmopen(LM_ID_NEWLM, argv[6], RTLD_NOW | RTLD_LOCAL);
    if (!hb) {
      printf("%s\n", dlerror());
      return 1;
    }
    auto spmm_b = (spmm_fn)dlsym(hb, "mk_graph_spmm_forward");
    ((thr_fn)dlsym(hb, "mk_runtime_set_num_threads"))(g_threads);
    std::vector<float> db_b(N * F);
    std::vector<double> ta, tb;
    int rc = 0;
    for (int r = -1; r < rounds; ++r) {
      const double c0 = now_ms();
      rc |= spmm(0, 0, 0, N, N, E, 1, F, cptr.data(), cdst.data(), dE.data(), c2g.data(), a.data(), db.data(), nullptr,
                 nullptr);
      const double c1 = now_ms();
      rc |= spmm_b(0, 0, 0, N, N, E, 1, F, cptr.data(), cdst.data(), dE.data(), c2g.data(), a.data(), db_b.data(),
                   nullptr, nullptr);
      const double c2 = now_ms();
      if (r >= 0) {
        ta.push_back(c1 - c0);
        tb.push_back(c2 - c1);
      }
    }
    std::sort(ta.begin(), ta.end());
    std::sort(tb.begin(), tb.end());
    int64_t differ = 0;
    for (int64_t i = 0; i < N * F; ++i) differ += db[i] != db_b[i];
    printf(
        "E=%lld F=%d threads=%d, spmm CSC idx (db): A min %.1f median %.1f ms | B min %.1f median %.1f ms | A/B min "
        "%.2fx median %.2fx | %lld elements differ%s\n",
        (long long)E, F, g_threads, ta[0], ta[rounds / 2], tb[0], tb[rounds / 2], ta[0] / tb[0],
        ta[rounds / 2] / tb[rounds / 2], (long long)differ, rc ? " | a call FAILED" : "");
    return rc ? 1 : 0;
  }
  int64_t max_in = 0, max_out = 0;
  for (int64_t r = 0; r < N; ++r) {
    max_in = std::max(max_in, ptr[r + 1] - ptr[r]);
    max_out = std::max(max_out, cptr[r + 1] - cptr[r]);
  }
  printf("E=%lld F=%d threads=%d: largest in-degree %lld, out-degree %lld\n", (long long)E, F, g_threads,
         (long long)max_in, (long long)max_out);
  const int kPasses = 7;
  const char* names[kPasses] = {"sddmm fwd",     "spmm CSR (da)",   "spmm CSC idx (db)",   "spmm CSR no w",
                                "spmm CSC no w", "permute dE only", "permute + CSC direct"};
  std::vector<double> t[kPasses];
  int rc = 0;
  for (int r = -1; r < rounds; ++r) {
    double c[kPasses + 1];
    c[0] = now_ms();
    rc |= sddmm(0, 0, N, N, E, 1, F, ptr.data(), col.data(), a.data(), b.data(), e.data(), nullptr);
    c[1] = now_ms();
    rc |=
        spmm(0, 0, 0, N, N, E, 1, F, ptr.data(), col.data(), dE.data(), nullptr, b.data(), da.data(), nullptr, nullptr);
    c[2] = now_ms();
    rc |= spmm(0, 0, 0, N, N, E, 1, F, cptr.data(), cdst.data(), dE.data(), c2g.data(), a.data(), db.data(), nullptr,
               nullptr);
    c[3] = now_ms();
    rc |= spmm(0, 0, 0, N, N, E, 1, F, ptr.data(), col.data(), nullptr, nullptr, b.data(), da.data(), nullptr, nullptr);
    c[4] = now_ms();
    rc |=
        spmm(0, 0, 0, N, N, E, 1, F, cptr.data(), cdst.data(), nullptr, nullptr, a.data(), db.data(), nullptr, nullptr);
    c[5] = now_ms();
    for (int64_t p = 0; p < E; ++p) dE_csc[p] = dE[c2g[p]];
    c[6] = now_ms();
    rc |= spmm(0, 0, 0, N, N, E, 1, F, cptr.data(), cdst.data(), dE_csc.data(), nullptr, a.data(), db.data(), nullptr,
               nullptr);
    c[7] = now_ms();
    if (r >= 0) {
      for (int i = 0; i < kPasses - 1; ++i) t[i].push_back(c[i + 1] - c[i]);
      t[kPasses - 1].push_back(c[7] - c[5]);
    }
  }
  if (rc) {
    printf("a call failed\n");
    return 1;
  }
  for (int i = 0; i < kPasses; ++i) {
    std::sort(t[i].begin(), t[i].end());
    printf("  %-22s min %8.1f  median %8.1f ms  %5.1f GB/s of gathered rows (min)\n", names[i], t[i][0],
           t[i][rounds / 2], 4.0 * E * F / t[i][0] / 1e6);
  }
  return 0;
}
