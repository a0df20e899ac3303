#define _GNU_SOURCE 1
// A/B of the GAT kernels (mk_graph_gat_forward + mk_graph_gat_backward, and
// mk_graph_edge_softmax_forward) between two builds of libmetakernels.so, in one process, calls
// interleaved round by round (for a loaded machine; JMH's GraphBench stays the record). Each build
// is loaded into its own link-map namespace (dlmopen: two files with the same soname would
// otherwise be one library). Written for the hub split of issue 15 (rows longer than 128 non-zeros
// in fixed segments shared by the threads), so the graphs are:
//   rmat  an R-MAT of 100k nodes and EDGES edges (Graph500 probabilities, labels shuffled, like
//         Graphs.rmat but not the same draws), CSR with sorted columns;
//   star  EDGES edges into node 0 from nodes 1..EDGES (one giant row; every column of one edge).
// x, s_src, s_dst uniform in [-1, 1) (scores times 3), grad_out in [-1, 1). Wall time per call
// (with THREADS = 1 the thread's CPU time).
//   g++ -O2 -o /tmp/gat_ab tools/gat_ab.cpp -ldl
//   /tmp/gat_ab A/libmetakernels.so B/libmetakernels.so GRAPH EDGES HEADSxWIDTH [ROUNDS [THREADS]]
// prints, for the forward alone, forward + backward, and the edge softmax: min and median of each
// build (ms), A/B of both, and max |A - B| of the results relative to max |A| (the hub rows'
// sums are combined in another order by the split: they may differ in the last bits).
#include <dlfcn.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "rmat_edges.h"

typedef int (*gat_fwd_fn)(int, int, int64_t, int64_t, int64_t, int64_t, int64_t, double, const int64_t*, const int64_t*,
                          const void*, const void*, const void*, void*, void*, void*);
typedef int (*gat_bwd_fn)(int, int, int64_t, int64_t, int64_t, int64_t, int64_t, double, const int64_t*, const int64_t*,
                          const int64_t*, const int64_t*, const void*, const void*, const void*, const void*,
                          const void*, void*, void*, void*, void*, void*);
typedef int (*softmax_fn)(int, int, int64_t, int64_t, int64_t, int64_t, const int64_t*, const int64_t*, const void*,
                          const void*, void*, void*, void*);
typedef int (*thr_fn)(int);

// With one thread, the calling thread's CPU time (leaves out the time the scheduler gives to others on
// a loaded machine); with more, wall time.
static int g_clock = CLOCK_MONOTONIC;

static double now_ms() {
  timespec c;
  clock_gettime(g_clock, &c);
  return c.tv_sec * 1e3 + c.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s A.so B.so rmat|star EDGES HEADSxWIDTH [ROUNDS [THREADS]]\n", argv[0]);
    return 2;
  }
  const std::string graph = argv[3];
  const int64_t E = atoll(argv[4]);
  int64_t H = 0, D = 0;
  if (sscanf(argv[5], "%ldx%ld", &H, &D) != 2) return 2;
  const int rounds = argc > 6 ? atoi(argv[6]) : 10, threads = argc > 7 ? atoi(argv[7]) : 2;
  const int64_t F = H * D;
  if (threads == 1) g_clock = CLOCK_THREAD_CPUTIME_ID;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> U(0, 1);
  int64_t N = 100000;
  std::vector<int64_t> src(E), dst(E);
  if (graph == "star") {
    N = E + 1;
    for (int64_t i = 0; i < E; ++i) {
      src[i] = 1 + i;
      dst[i] = 0;
    }
  } else {
    rmat_edges(N, E, rng, src, dst);
  }
  // CSR (by destination, sorted columns) and CSC (by source, destinations in order)
  auto build = [&](const std::vector<int64_t>& key, const std::vector<int64_t>& val, std::vector<int64_t>& ptr,
                   std::vector<int64_t>& idx) {
    ptr.assign(size_t(N + 1), 0);
    idx.assign(size_t(E), 0);
    for (int64_t i = 0; i < E; ++i) ptr[size_t(key[size_t(i)] + 1)]++;
    for (int64_t r = 0; r < N; ++r) ptr[size_t(r + 1)] += ptr[size_t(r)];
    std::vector<int64_t> pos(ptr.begin(), ptr.end() - 1);
    for (int64_t i = 0; i < E; ++i) idx[size_t(pos[size_t(key[size_t(i)])]++)] = val[size_t(i)];
    for (int64_t r = 0; r < N; ++r) std::sort(idx.begin() + ptr[size_t(r)], idx.begin() + ptr[size_t(r + 1)]);
  };
  std::vector<int64_t> ptr, col, cptr, crow;
  build(dst, src, ptr, col);
  build(src, dst, cptr, crow);
  int64_t longest = 0;
  for (int64_t r = 0; r < N; ++r) longest = std::max(longest, ptr[size_t(r + 1)] - ptr[size_t(r)]);
  std::vector<float> x(size_t(N * F)), ss(size_t(N * H)), sd(size_t(N * H)), gout(size_t(N * F)), sc(size_t(E * H));
  for (auto& v : x) v = float(U(rng) * 2 - 1);
  for (auto& v : ss) v = float(3 * (U(rng) * 2 - 1));
  for (auto& v : sd) v = float(3 * (U(rng) * 2 - 1));
  for (auto& v : gout) v = float(U(rng) * 2 - 1);
  for (auto& v : sc) v = float(3 * (U(rng) * 2 - 1));
  struct Out {
    std::vector<float> out, lse, gx, gs, gd, rd, y, ylse;
  } o[2];
  for (auto& b : o) {
    b.out.resize(size_t(N * F));
    b.lse.resize(size_t(N * H));
    b.gx.resize(size_t(N * F));
    b.gs.resize(size_t(N * H));
    b.gd.resize(size_t(N * H));
    b.rd.resize(size_t(N * H));
    b.y.resize(size_t(E * H));
    b.ylse.resize(size_t(N * H));
  }
  gat_fwd_fn fwd[2];
  gat_bwd_fn bwd[2];
  softmax_fn smx[2];
  for (int i = 0; i < 2; ++i) {
    void* h = dlmopen(LM_ID_NEWLM, argv[1 + i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      printf("%s\n", dlerror());
      return 1;
    }
    fwd[i] = (gat_fwd_fn)dlsym(h, "mk_graph_gat_forward");
    bwd[i] = (gat_bwd_fn)dlsym(h, "mk_graph_gat_backward");
    smx[i] = (softmax_fn)dlsym(h, "mk_graph_edge_softmax_forward");
    ((thr_fn)dlsym(h, "mk_runtime_set_num_threads"))(threads);
  }
  const double slope = 0.2;
  auto run_fwd = [&](int i) {
    return fwd[i](0, 0, N, N, E, H, D, slope, ptr.data(), col.data(), x.data(), ss.data(), sd.data(), o[i].out.data(),
                  o[i].lse.data(), nullptr);
  };
  auto run_bwd = [&](int i) {
    return bwd[i](0, 0, N, N, E, H, D, slope, ptr.data(), col.data(), cptr.data(), crow.data(), x.data(), ss.data(),
                  sd.data(), o[i].lse.data(), gout.data(), o[i].gx.data(), o[i].gs.data(), o[i].gd.data(),
                  o[i].rd.data(), nullptr);
  };
  auto run_smx = [&](int i) {
    return smx[i](0, 0, N, N, E, H, ptr.data(), col.data(), sc.data(), nullptr, o[i].y.data(), o[i].ylse.data(),
                  nullptr);
  };
  // the forward alone, forward + backward, the edge softmax: each interleaved A, B round by round
  const char* names[3] = {"gat forward", "gat fwd+bwd", "edge softmax"};
  std::vector<double> t[3][2];
  for (int r = -2; r < rounds; ++r)
    for (int which = 0; which < 3; ++which)
      for (int i = 0; i < 2; ++i) {
        const double t0 = now_ms();
        int rc = 0;
        if (which == 0) rc = run_fwd(i);
        if (which == 1) rc = run_fwd(i) || run_bwd(i);
        if (which == 2) rc = run_smx(i);
        const double ms = now_ms() - t0;
        if (rc) {
          printf("%s: rc %d\n", names[which], rc);
          return 1;
        }
        if (r >= 0) t[which][i].push_back(ms);
      }
  auto rel = [](const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0, m = 0;
    for (size_t k = 0; k < a.size(); ++k) {
      d = std::max(d, double(std::fabs(a[k] - b[k])));
      m = std::max(m, double(std::fabs(a[k])));
    }
    return m > 0 ? d / m : d;
  };
  printf("%s E=%lld N=%lld longest row %lld, heads x width %lldx%lld, threads %d, %d rounds\n", graph.c_str(),
         (long long)E, (long long)N, (long long)longest, (long long)H, (long long)D, threads, rounds);
  for (int which = 0; which < 3; ++which) {
    for (int i = 0; i < 2; ++i) std::sort(t[which][i].begin(), t[which][i].end());
    const auto& a = t[which][0];
    const auto& b = t[which][1];
    printf("  %-12s A min %8.3f med %8.3f ms | B min %8.3f med %8.3f ms | A/B min %.2fx med %.2fx\n", names[which],
           a[0], a[size_t(rounds / 2)], b[0], b[size_t(rounds / 2)], a[0] / b[0],
           a[size_t(rounds / 2)] / b[size_t(rounds / 2)]);
  }
  printf("  max|A-B|/max|A|: out %.2e lse %.2e gx %.2e gs_src %.2e gs_dst %.2e y %.2e\n", rel(o[0].out, o[1].out),
         rel(o[0].lse, o[1].lse), rel(o[0].gx, o[1].gx), rel(o[0].gs, o[1].gs), rel(o[0].gd, o[1].gd),
         rel(o[0].y, o[1].y));
}
