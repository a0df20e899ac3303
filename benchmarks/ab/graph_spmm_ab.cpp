// In-process A/B of the CPU graph spmm between two builds of libmetakernels.so (e.g. main's and a
// branch's), loaded side by side with dlopen(RTLD_LOCAL) and called through the C ABI
// (mk_graph_spmm_forward, which includes the CSR check) in ABBA order, round after round, on a
// seeded R-MAT graph (Graph500 probabilities; or uniform random edges), F32, weighted, features F.
// Three calls per round set: the CSR sum, the CSR mean, and the CSC sum with its weights read
// through a permutation (the backward's pass). Prints min and median per library; with one thread,
// `cpu` measures the calling thread's CPU time (less sensitive to a loaded machine than the wall).
//   g++ -O2 -std=c++17 benchmarks/ab/graph_spmm_ab.cpp -o /tmp/graph_spmm_ab -ldl
//   /tmp/graph_spmm_ab LIB_A LIB_B [EDGES=1000000] [F=64] [ROUNDS=20] [THREADS=1] [wall|cpu] [rmat|uniform]
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

typedef int (*spmm_fn)(int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, const int64_t*, const int64_t*,
                       const void*, const int64_t*, const void*, void*, int64_t*, void*);
typedef int (*threads_fn)(int);

static double now_ms(bool cpu) {
  if (cpu) {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) * 1e3 + double(t.tv_nsec) * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CSR of the edges keyed by `key` (rows) with `val` as columns; perm[k] = the input edge of entry k.
static void build(int64_t nodes, const std::vector<int64_t>& key, const std::vector<int64_t>& val,
                  std::vector<int64_t>& ptr, std::vector<int64_t>& col, std::vector<int64_t>& perm) {
  const int64_t edges = int64_t(key.size());
  ptr.assign(size_t(nodes + 1), 0);
  for (int64_t e = 0; e < edges; ++e) ptr[size_t(key[size_t(e)] + 1)]++;
  for (int64_t v = 0; v < nodes; ++v) ptr[size_t(v + 1)] += ptr[size_t(v)];
  std::vector<int64_t> fill(ptr.begin(), ptr.end() - 1);
  col.resize(size_t(edges));
  perm.resize(size_t(edges));
  for (int64_t e = 0; e < edges; ++e) {
    const int64_t k = fill[size_t(key[size_t(e)])]++;
    col[size_t(k)] = val[size_t(e)];
    perm[size_t(k)] = e;
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s LIB_A LIB_B [EDGES] [F] [ROUNDS] [THREADS] [wall|cpu] [rmat|uniform]\n", argv[0]);
    return 2;
  }
  const int64_t nodes = 100000;
  const int64_t edges = argc > 3 ? atoll(argv[3]) : 1000000, F = argc > 4 ? atoll(argv[4]) : 64;
  const int rounds = argc > 5 ? atoi(argv[5]) : 20, threads = argc > 6 ? atoi(argv[6]) : 1;
  const bool cpu = argc > 7 && strcmp(argv[7], "cpu") == 0;
  const bool uniform = argc > 8 && strcmp(argv[8], "uniform") == 0;
  spmm_fn f[2];
  for (int i = 0; i < 2; ++i) {
    void* h = dlopen(argv[1 + i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      fprintf(stderr, "%s\n", dlerror());
      return 1;
    }
    f[i] = reinterpret_cast<spmm_fn>(dlsym(h, "mk_graph_spmm_forward"));
    auto set_threads = reinterpret_cast<threads_fn>(dlsym(h, "mk_runtime_set_num_threads"));
    if (!f[i] || !set_threads) {
      fprintf(stderr, "%s: not a metakernels library\n", argv[1 + i]);
      return 1;
    }
    set_threads(threads);
  }
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int64_t> src(static_cast<size_t>(edges)), dst(static_cast<size_t>(edges));
  for (int64_t e = 0; e < edges; ++e) {
    int64_t s = 0, d = 0;
    if (uniform) {
      s = int64_t(rng() % uint64_t(nodes));
      d = int64_t(rng() % uint64_t(nodes));
    } else {
      do {  // R-MAT on 2^17 ids, ids >= nodes drawn again
        s = d = 0;
        for (int bit = 16; bit >= 0; --bit) {
          const double p = u(rng);
          const int q = p < 0.57 ? 0 : p < 0.76 ? 1 : p < 0.95 ? 2 : 3;
          s |= int64_t(q >> 1) << bit;
          d |= int64_t(q & 1) << bit;
        }
      } while (s >= nodes || d >= nodes);
    }
    src[size_t(e)] = s;
    dst[size_t(e)] = d;
  }
  std::vector<int64_t> rp, cl, p1, cp, rw, p2;
  build(nodes, dst, src, rp, cl, p1);  // CSR by destination
  build(nodes, src, dst, cp, rw, p2);  // CSC (by source)
  std::vector<int64_t> inv(static_cast<size_t>(edges)), widx(static_cast<size_t>(edges));
  for (int64_t k = 0; k < edges; ++k) inv[size_t(p1[size_t(k)])] = k;
  for (int64_t k = 0; k < edges; ++k) widx[size_t(k)] = inv[size_t(p2[size_t(k)])];  // CSC entry -> CSR weight
  int64_t max_in = 0, max_out = 0;
  for (int64_t v = 0; v < nodes; ++v) {
    max_in = std::max(max_in, rp[size_t(v + 1)] - rp[size_t(v)]);
    max_out = std::max(max_out, cp[size_t(v + 1)] - cp[size_t(v)]);
  }
  std::vector<float> x(static_cast<size_t>(nodes * F)), w(static_cast<size_t>(edges)),
      out(static_cast<size_t>(nodes * F));
  for (auto& v : x) v = float(u(rng) * 2 - 1);
  for (auto& v : w) v = float(u(rng) + 0.5);
  printf("%s graph: %lld nodes, %lld edges (max in-degree %lld, out-degree %lld), F %lld, %d threads, %s time\n",
         uniform ? "uniform" : "R-MAT", (long long)nodes, (long long)edges, (long long)max_in, (long long)max_out,
         (long long)F, threads, cpu ? "thread CPU" : "wall");
  const char* names[3] = {"csr sum", "csr mean", "csc sum (indexed weights)"};
  for (int which = 0; which < 3; ++which) {
    std::vector<double> t[2];
    auto run = [&](int i) {
      const double t0 = now_ms(cpu);
      const int rc = which < 2 ? f[i](0, 0, which, nodes, nodes, edges, 1, F, rp.data(), cl.data(), w.data(), nullptr,
                                      x.data(), out.data(), nullptr, nullptr)
                               : f[i](0, 0, 0, nodes, nodes, edges, 1, F, cp.data(), rw.data(), w.data(), widx.data(),
                                      x.data(), out.data(), nullptr, nullptr);
      t[i].push_back(now_ms(cpu) - t0);
      if (rc) {
        fprintf(stderr, "status %d\n", rc);
        exit(1);
      }
    };
    run(0);
    run(1);
    t[0].clear();
    t[1].clear();
    for (int r = 0; r < rounds; ++r) {
      run(0);
      run(1);
      run(1);
      run(0);
    }
    for (auto& v : t) std::sort(v.begin(), v.end());
    const double a_min = t[0][0], b_min = t[1][0], a_med = t[0][t[0].size() / 2], b_med = t[1][t[1].size() / 2];
    printf("%-27s A min %7.3f med %7.3f ms | B min %7.3f med %7.3f ms | B/A min %.3f med %.3f\n", names[which], a_min,
           a_med, b_min, b_med, b_min / a_min, b_med / a_med);
  }
  return 0;
}
