// Does a locality order make the CPU SDDMM forward faster? A standalone probe (AVX-512 F32, one
// thread, the thread's CPU time), not the library: it times the library's walk (CSR order, 16
// edges a block, one accumulator per edge, the transpose-and-add of kernels/cpu/graph.cpp) against
// the same arithmetic over the edges in two tiled orders, read from a precomputed edge stream
// (row, source, output position as I32, 12 bytes an edge, the "plan"):
//   colgroup  rows cut into parts of 12,500; within a part the sources in groups of C by
//             out-degree rank (C = BUDGET / row bytes: the group's b rows fit L2), the groups that
//             hold at least 3 edges per non-empty row first, then the rest; within a group, rows in
//             order (a streamed, the group's b rows re-read from L2)
//   rowblock  rows in blocks of C; within a block the edges by source rank (a rows from L2, each b
//             row once per block)
// and the floor: the library's walk with every source index taken mod HOT (b rows in L1/L2), what
// the arithmetic costs without the gathers' misses. Results are compared bitwise (each edge's sum
// is the same in every order). The R-MAT graph is tools/sddmm_ab.cpp's (100k nodes, Graph500
// probabilities, labels shuffled).
//   g++ -O2 -march=native -o /tmp/sddmm_tiling_probe tools/sddmm_tiling_probe.cpp
//   /tmp/sddmm_tiling_probe EDGES FEATURES [BUDGET_BYTES [ROUNDS [HOT]]]     FEATURES: 16, 64 or 256
// Findings (2026-12-05, loaded VM, benchmarks/results/cpu-2026-12-05-sddmm2-probe.md): 10M edges
// 1.1-1.3x at F = 256, 0.9-1.2x at F = 64; 1M edges 0.84-0.99x. Not kept in the library.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

#include "rmat_edges.h"

namespace {

double cpu_ms() {
  timespec c;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c);
  return c.tv_sec * 1e3 + c.tv_nsec / 1e6;
}

__m512 pairs(__m512 x, __m512 y) {
  return _mm512_add_ps(_mm512_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_ps(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
}
__m512 quarters(__m512 x, __m512 y) {
  return _mm512_add_ps(_mm512_mask_shuffle_f32x4(x, __mmask16(0xffff), x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_mask_shuffle_f32x4(x, __mmask16(0xffff), x, y, _MM_SHUFFLE(3, 1, 3, 1)));
}
__m512 fold(const __m512* v) {  // lane j = the sum of v[j]'s lanes, in graph.cpp's tree
  __m512 t[8], u[4];
  for (int i = 0; i < 8; ++i) t[i] = pairs(v[2 * i], v[2 * i + 1]);
  for (int i = 0; i < 4; ++i) u[i] = pairs(t[2 * i], t[2 * i + 1]);
  return quarters(quarters(u[0], u[1]), quarters(u[2], u[3]));
}
template <int NC>
inline __m512 dot(const float* pa, const float* pb) {
  __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int c = 0; c < NC; ++c) acc = _mm512_fmadd_ps(_mm512_loadu_ps(pa + 16 * c), _mm512_loadu_ps(pb + 16 * c), acc);
  return acc;
}
template <int NC>
void prefetch_row(const float* p) {
  for (int o = 0; o < NC * 64; o += 64) __builtin_prefetch(reinterpret_cast<const char*>(p) + o, 0, NC <= 4 ? 3 : 1);
}

// The library's walk: CSR order, 16 edges a block across rows, the next block's b rows prefetched.
template <int NC>
void csr_walk(int64_t N, const int64_t* ptr, const int64_t* col, const float* a, const float* b, float* out) {
  constexpr int64_t F = NC * 16;
  const int64_t E = ptr[N];
  int64_t r = 0;
  while (ptr[r + 1] <= 0) ++r;
  int64_t r_end = ptr[r + 1];
  int64_t k0 = 0;
  for (; k0 + 16 <= E; k0 += 16) {
    for (int64_t k = k0 + 16; k < std::min(k0 + 32, E); ++k) prefetch_row<NC>(b + col[k] * F);
    __m512 acc[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
      const int64_t k = k0 + j;
      while (k >= r_end) r_end = ptr[++r + 1];
      acc[j] = dot<NC>(a + r * F, b + col[k] * F);
    }
    _mm512_storeu_ps(out + k0, fold(acc));
  }
  for (; k0 < E; ++k0) {  // the tail, one edge a block
    while (k0 >= r_end) r_end = ptr[++r + 1];
    __m512 acc[16];
    for (int j = 0; j < 16; ++j) acc[j] = dot<NC>(a + r * F, b + col[k0] * F);
    alignas(64) float t[16];
    _mm512_store_ps(t, fold(acc));
    out[k0] = t[0];
  }
}

// The same arithmetic over a precomputed edge stream (row, source, output position).
template <int NC>
void stream_walk(int64_t n, const int32_t* er, const int32_t* es, const int32_t* ek, const float* a, const float* b,
                 float* out) {
  constexpr int64_t F = NC * 16;
  for (int64_t i0 = 0; i0 < n; i0 += 16) {
    const int m = int(std::min<int64_t>(16, n - i0));
    for (int64_t i = i0 + 16; i < std::min(i0 + 32, n); ++i) prefetch_row<NC>(b + int64_t(es[i]) * F);
    __m512 acc[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
      const int64_t i = i0 + std::min(j, m - 1);
      acc[j] = dot<NC>(a + int64_t(er[i]) * F, b + int64_t(es[i]) * F);
    }
    alignas(64) float t[16];
    _mm512_store_ps(t, fold(acc));
    for (int j = 0; j < m; ++j) out[ek[i0 + j]] = t[j];
  }
}

template <int NC>
void run(int64_t E, double budget, int rounds, int64_t hot) {
  constexpr int64_t F = NC * 16;
  const int64_t N = 100000;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> U(0, 1);
  std::vector<int64_t> src, dst;
  rmat_edges(N, E, rng, src, dst);  // (N = 100k: 17 levels)
  std::vector<int64_t> ptr(N + 1, 0), col(E), od(N, 0);
  for (int64_t i = 0; i < E; ++i) ptr[dst[i] + 1]++;
  for (int64_t r = 0; r < N; ++r) ptr[r + 1] += ptr[r];
  {
    std::vector<int64_t> pos(ptr.begin(), ptr.end() - 1);
    for (int64_t i = 0; i < E; ++i) col[pos[dst[i]]++] = src[i];
    for (int64_t r = 0; r < N; ++r) std::sort(col.begin() + ptr[r], col.begin() + ptr[r + 1]);
  }
  for (int64_t c : col) od[c]++;
  std::vector<int32_t> by_rank(N), rank(N), row_of(E);
  std::iota(by_rank.begin(), by_rank.end(), 0);
  std::stable_sort(by_rank.begin(), by_rank.end(), [&](int32_t x, int32_t y) { return od[x] > od[y]; });
  for (int32_t i = 0; i < N; ++i) rank[by_rank[i]] = i;
  for (int64_t r = 0; r < N; ++r)
    for (int64_t k = ptr[r]; k < ptr[r + 1]; ++k) row_of[k] = int32_t(r);
  const int64_t C = std::max<int64_t>(1, int64_t(budget / (F * 4.0)));
  int64_t nonempty = 0, groups = 0, covered = 0;
  for (int64_t r = 0; r < N; ++r) nonempty += ptr[r + 1] > ptr[r];
  for (int64_t g = 0; g * C < N; ++g, ++groups) {  // groups worth a pass: >= 3 edges per non-empty row
    int64_t cnt = 0;
    for (int64_t i = g * C; i < std::min(N, (g + 1) * C); ++i) cnt += od[by_rank[i]];
    if (cnt < 3 * nonempty) break;
    covered += cnt;
  }
  std::vector<float> a(N * F), b(N * F), ref(E), got(E);
  for (auto& v : a) v = float(U(rng) * 2 - 1);
  for (auto& v : b) v = float(U(rng) * 2 - 1);
  printf("E=%lld F=%lld C=%lld rows a block/group; colgroup: %lld groups hold %.1f%% of the edges\n", (long long)E,
         (long long)F, (long long)C, (long long)groups, 100.0 * covered / E);
  std::vector<int32_t> er(E), es(E), ek(E);
  std::vector<std::tuple<int64_t, int64_t, int64_t>> key(E);
  std::vector<int64_t> idx(E);
  const char* names[2] = {"colgroup", "rowblock"};
  for (int mode = 0; mode < 2; ++mode) {
    for (int64_t k = 0; k < E; ++k) {
      const int64_t r = row_of[k], rk = rank[col[k]];
      key[k] = mode == 0 ? std::make_tuple(r / 12500, std::min(rk / C, groups), r) : std::make_tuple(r / C, rk, r);
    }
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) { return key[x] < key[y]; });
    for (int64_t i = 0; i < E; ++i) {
      er[i] = row_of[idx[i]];
      es[i] = int32_t(col[idx[i]]);
      ek[i] = int32_t(idx[i]);
    }
    std::vector<double> t0, t1;
    for (int r = -1; r < rounds; ++r) {  // interleaved, one untimed round
      const double s = cpu_ms();
      csr_walk<NC>(N, ptr.data(), col.data(), a.data(), b.data(), ref.data());
      const double m = cpu_ms();
      stream_walk<NC>(E, er.data(), es.data(), ek.data(), a.data(), b.data(), got.data());
      const double z = cpu_ms();
      if (r >= 0) {
        t0.push_back(m - s);
        t1.push_back(z - m);
      }
    }
    std::sort(t0.begin(), t0.end());
    std::sort(t1.begin(), t1.end());
    int64_t bad = 0;
    for (int64_t k = 0; k < E; ++k) bad += ref[k] != got[k];
    printf(
        "  csr walk min %.1f med %.1f ms | %s min %.1f med %.1f ms | speed-up min %.2fx med %.2fx | %lld results "
        "differ\n",
        t0[0], t0[rounds / 2], names[mode], t1[0], t1[rounds / 2], t0[0] / t1[0], t0[rounds / 2] / t1[rounds / 2],
        (long long)bad);
  }
  if (hot > 0) {
    for (auto& c : col) c %= hot;
    std::vector<double> t;
    for (int r = -1; r < rounds; ++r) {
      const double s = cpu_ms();
      csr_walk<NC>(N, ptr.data(), col.data(), a.data(), b.data(), ref.data());
      if (r >= 0) t.push_back(cpu_ms() - s);
    }
    std::sort(t.begin(), t.end());
    printf("  floor (sources mod %lld, b rows cached): csr walk min %.1f med %.1f ms\n", (long long)hot, t[0],
           t[rounds / 2]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    printf("usage: %s EDGES FEATURES(16|64|256) [BUDGET_BYTES [ROUNDS [HOT]]]\n", argv[0]);
    return 2;
  }
  const int64_t E = atoll(argv[1]);
  const int F = atoi(argv[2]);
  const double budget = argc > 3 ? atof(argv[3]) : 0.5e6;
  const int rounds = argc > 4 ? atoi(argv[4]) : 5;
  const int64_t hot = argc > 5 ? atoll(argv[5]) : 1000;
  if (F == 16)
    run<1>(E, budget, rounds, hot);
  else if (F == 64)
    run<4>(E, budget, rounds, hot);
  else if (F == 256)
    run<16>(E, budget, rounds, hot);
  else
    return 2;
  return 0;
}
