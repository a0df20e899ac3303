// kernels/cuda/linear_attention.cu run on the host by the emulator in cuda_runtime.h, against a
// float64 loop and the CPU twin (kernels/cpu/linear_attention.cpp, the library's own objects).
//
// Checked, for F32 and F64, masks none / causal / anti-causal, nq != nk without a mask, head dims
// across one and several 64-wide tiles and 16-deep slabs (1, 3, 16, 17, 64, 70), sequences inside
// one block, across blocks and across state chunks: the chunk-parallel form with state chunks of
// 64 rows (the default budget), of 128 and 256 rows and of one chunk per group (a lowered scratch
// budget), and the sequential form (no scratch):
//   - every output within 8·eps·(dk + n)·Σ|terms| of the float64 sum (so is the CPU twin's);
//   - bitwise equal across thread orders (forward, reverse, shuffled);
//   - nothing written outside the output and the scratch (NaN guards), the scratch exactly
//     linear_attention_scratch() bytes.
// Momentum (decay^(j-i) sums, forward and reverse): bitwise equal to the CPU twin (same order).
//   linear_attention_emu_test [order]     order: 0 forward, 1 reverse, 2 shuffled (default: all)
#include <omp.h>

#include <cstdint>
static int64_t g_budget = int64_t(512) << 20;
#define MK_LINEAR_SCRATCH_BUDGET (g_budget)

#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "linear_attention.cu"

namespace mk {
namespace cuda {
alignas(16) unsigned char mk_linear_smem[256 * 1024 + 4096];  // emu::config().smem_capacity (+ canary)
}  // namespace cuda
}  // namespace mk
inline unsigned char* emu::smem() { return mk::cuda::mk_linear_smem; }

#include "emu_check.h"

static std::vector<int> g_orders;

enum Form { kChunked, kSequential };

template <class T>
static void product_case(int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int mask, int64_t budget,
                         Form form, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Buf<T> q(G * nq * dk), k(G * nk * dk), v(G * nk * dv);
  for (int64_t i = 0; i < q.n; ++i) q[i] = T(nd(rng));
  for (int64_t i = 0; i < k.n; ++i) k[i] = T(nd(rng));
  for (int64_t i = 0; i < v.n; ++i) v[i] = T(nd(rng));
  char what[240];
  snprintf(what, sizeof what, "linear_attention %s [G %lld, nq %lld, nk %lld, dk %lld, dv %lld] mask %d budget %lld %s",
           tname<T>(), (long long)G, (long long)nq, (long long)nk, (long long)dk, (long long)dv, mask, (long long)budget,
           form == kChunked ? "chunked" : "sequential");

  // float64 reference and the bound of its terms
  std::vector<double> ref(size_t(G * nq * dv), 0.0), bound(size_t(G * nq * dv), 0.0);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t j = 0; j < nq; ++j)
      for (int64_t i = 0; i < nk; ++i) {
        if ((mask == 1 && i > j) || (mask == 2 && i < j)) continue;
        double dot = 0, adot = 0;
        for (int64_t d = 0; d < dk; ++d) {
          const double t = double(q[(g * nq + j) * dk + d]) * double(k[(g * nk + i) * dk + d]);
          dot += t;
          adot += std::fabs(t);
        }
        for (int64_t e = 0; e < dv; ++e) {
          const double ve = double(v[(g * nk + i) * dv + e]);
          ref[size_t((g * nq + j) * dv + e)] += dot * ve;
          bound[size_t((g * nq + j) * dv + e)] += adot * std::fabs(ve);
        }
      }
  const double tol_scale = 8.0 * double(std::numeric_limits<T>::epsilon()) * double(dk + nk);
  auto within = [&](Buf<T>& out, const char* who) {
    int64_t bad = 0;
    double worst = 0;
    for (int64_t x = 0; x < out.n; ++x) {
      const double err = std::fabs(double(out[x]) - ref[size_t(x)]);
      const double tol = tol_scale * bound[size_t(x)] + 1e-300;
      if (!(err <= tol)) ++bad;
      if (err / tol > worst) worst = err / tol;
    }
    expect(bad == 0, std::string(what) + ": " + who + " off the float64 sum at " + std::to_string(bad) +
                         " outputs (worst err/tol " + std::to_string(worst) + ")");
  };

  // the CPU twin
  {
    Buf<T> out(G * nq * dv);
    const int64_t ws = mk::cpu::linear_attention_workspace(dk, dv, omp_get_max_threads());
    std::vector<T> work(size_t(std::max<int64_t>(ws, 1)));
    expect(mk::cpu::linear_attention(dtype, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), out.data(), mask,
                                     work.data(), nullptr) == 0,
           std::string(what) + ": CPU twin failed");
    within(out, "CPU twin");
  }

  g_budget = budget;
  const int64_t scratch = mk::cuda::linear_attention_scratch(dtype, G, nq, nk, dk, dv, mask);
  if (form == kChunked) expect(scratch > 0, std::string(what) + ": no chunk plan");
  Buf<T> S(form == kChunked ? scratch / int64_t(sizeof(T)) : 0);
  expect(scratch % int64_t(sizeof(T)) == 0, std::string(what) + ": scratch not whole elements");
  Buf<T> out(G * nq * dv);
  std::vector<T> first;
  for (size_t o = 0; o < g_orders.size(); ++o) {
    emu::config().order = g_orders[o];
    emu::config().seed = unsigned(o + 7);
    out.poison();
    S.poison();
    const int st = mk::cuda::linear_attention(dtype, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), out.data(), mask,
                                              form == kChunked ? S.data() : nullptr, nullptr);
    expect(st == 0, std::string(what) + ": launch failed (" + std::to_string(st) + ")");
    expect(out.guards_intact(), std::string(what) + ": wrote outside the output");
    expect(S.guards_intact(), std::string(what) + ": wrote outside the scratch");
    std::vector<T> now(out.data(), out.data() + out.n);
    if (o == 0) {
      within(out, "CUDA");
      first = now;
    } else {
      expect(std::memcmp(now.data(), first.data(), now.size() * sizeof(T)) == 0,
             std::string(what) + ": differs between thread orders 0 and " + std::to_string(g_orders[o]));
    }
  }
  emu::config().order = g_orders[0];
  g_budget = int64_t(512) << 20;
}

template <class T>
static void momentum_case(int64_t G, int64_t n, int64_t d, double decay, int reverse, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Buf<T> v(G * n * d), a(G * n * d), b(G * n * d);
  for (int64_t i = 0; i < v.n; ++i) v[i] = T(nd(rng));
  mk::cpu::linear_attention_momentum(dtype, G, n, d, v.data(), a.data(), decay, reverse, nullptr);
  expect(mk::cuda::linear_attention_momentum(dtype, G, n, d, v.data(), b.data(), decay, reverse, nullptr) == 0,
         "momentum launch");
  expect(std::memcmp(a.data(), b.data(), size_t(a.n) * sizeof(T)) == 0,
         std::string("momentum ") + tname<T>() + " n " + std::to_string(n) + " d " + std::to_string(d) +
             " reverse " + std::to_string(reverse) + ": not bitwise equal to the CPU twin");
  expect(b.guards_intact(), "momentum wrote outside its output");
}

template <class T>
static void products(unsigned& seed) {
  const int64_t big = int64_t(512) << 20;
  struct Shape {
    int64_t G, nq, nk, dk, dv;
  };
  const Shape masked[] = {{1, 1, 1, 1, 1}, {2, 5, 5, 3, 4}, {1, 64, 64, 16, 16}, {1, 65, 65, 17, 70},
                          {2, 130, 130, 17, 9}, {1, 200, 200, 64, 3}};
  for (const Shape& s : masked)
    for (int mask = 0; mask <= 2; ++mask) product_case<T>(s.G, s.nq, s.nk, s.dk, s.dv, mask, big, kChunked, seed++);
  // no mask, nq != nk
  product_case<T>(2, 37, 150, 20, 12, 0, big, kChunked, seed++);
  product_case<T>(1, 130, 3, 5, 66, 0, big, kChunked, seed++);
  // long state chunks: budgets for 2 (R = 128 over 200 rows) and 1 (R = 256) states per group
  const int64_t es = int64_t(sizeof(T));
  for (int mask = 0; mask <= 2; ++mask) {
    product_case<T>(1, 200, 200, 16, 8, mask, 2 * 16 * 8 * es, kChunked, seed++);
    product_case<T>(2, 200, 200, 16, 8, mask, 2 * 16 * 8 * es, kChunked, seed++);
    product_case<T>(1, 300, 300, 3, 5, mask, 2 * 3 * 5 * es, kChunked, seed++);  // R = 256: 2 states
  }
  product_case<T>(1, 40, 200, 16, 8, 0, 16 * 8 * es, kChunked, seed++);
  // the sequential form
  for (int mask = 0; mask <= 2; ++mask) product_case<T>(2, 130, 130, 17, 40, mask, big, kSequential, seed++);
  product_case<T>(1, 37, 150, 20, 12, 0, big, kSequential, seed++);
}

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  g_orders = {0, 1, 2};
  if (argc > 1) g_orders = {atoi(argv[1]), 0};
  unsigned seed = 1;
  products<float>(seed);
  products<double>(seed);
  for (int r = 0; r <= 1; ++r) {
    momentum_case<float>(3, 50, 7, 0.9, r, seed++);
    momentum_case<double>(2, 33, 300, 0.5, r, seed++);
  }
  printf("linear_attention_emu_test: %d checks, %d failures (%lld launches, %lld blocks)\n", g_checks, g_failures,
         (long long)emu::config().launches, (long long)emu::config().blocks);
  return g_failures ? 1 : 0;
}
