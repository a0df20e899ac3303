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
// BF16 / F16 (issue 11): the tensor-core form (chosen by the entry point wherever dk <= 256: the
// same bits as calling it directly), the SIMT chunk-parallel and sequential forms on 16-bit data,
// and the CPU twin, each against the float64 product of the same rounded inputs: error (max |x −
// ref| / max |ref|) at most twice that of a naive 16-bit composition — PyTorch's chunked form in
// the 16-bit type, every matmul's output rounded (q kᵀ, (q kᵀ ⊙ M) v, the chunk states kᵀ v, their
// exclusive prefix sum, q·prefix, the final sum; q (kᵀ v) without a mask) — plus a 1e-6 floor;
// bitwise equal across thread orders, nothing written outside the output and the scratch;
// momentum bitwise equal to the CPU twin; key dims over 256, and a 48 KB device whose shared memory
// does not hold the tiles, fall back to the SIMT form (refused before any launch).
//   linear_attention_emu_test [order]     order: 0 forward, 1 reverse, 2 shuffled (default: all)
#include <omp.h>

#include <cstdint>
static int64_t g_budget = int64_t(512) << 20;
#define MK_LINEAR_SCRATCH_BUDGET (g_budget)
static int64_t g_par = 1024;  // chunks the unmasked plan keeps over all groups
#define MK_LINEAR_PARALLEL_CHUNKS (g_par)

#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
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
static double g_worst_half = 0;  // worst (16-bit error / naive composition error)

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
    const int64_t ws = mk::cpu::linear_attention_workspace(dtype, dk, dv, omp_get_max_threads());
    std::vector<T> work(size_t(std::max<int64_t>(ws / int64_t(sizeof(T)), 1)));
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

// ---- BF16 / F16 ---------------------------------------------------------------------------------
template <class H>
struct Half {
  static uint16_t encode(double x) { return H::kBf16 ? mk::f32_to_bf16_bits(float(x)) : mk::f32_to_f16_bits(float(x)); }
  static double decode(uint16_t b) { return H::kBf16 ? mk::bf16_bits_to_f32(b) : mk::f16_bits_to_f32(b); }
  static double round(double x) { return decode(encode(x)); }
  static const char* name() { return H::kBf16 ? "BF16" : "F16"; }
};

static double rel_err(const std::vector<double>& x, const std::vector<double>& ref) {
  double scale = 0, err = 0;
  for (size_t i = 0; i < ref.size(); ++i) scale = std::max(scale, std::fabs(ref[i]));
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = std::fabs(x[i] - ref[i]);
    if (!(e <= err)) err = std::isnan(e) ? INFINITY : e;
  }
  return scale > 0 ? err / scale : err;
}

// The product in doubles; `rnd` after every matmul-sized stage of the chunked form (the identity:
// the reference). With two roundings (TF32): `rin` where a stage's result is the input of another
// product (the prefix state, the masked q kᵀ), `rout` for the other stage results (F32).
template <class Rin, class Rout>
static std::vector<double> composed(int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int mask,
                                    const std::vector<double>& q, const std::vector<double>& k,
                                    const std::vector<double>& v, Rin rin, Rout rnd) {
  std::vector<double> out(size_t(G * nq * dv), 0.0);
  std::vector<double> S(size_t(dk * dv));
  for (int64_t g = 0; g < G; ++g) {
    const double* qg = q.data() + g * nq * dk;
    const double* kg = k.data() + g * nk * dk;
    const double* vg = v.data() + g * nk * dv;
    double* og = out.data() + g * nq * dv;
    auto state = [&](int64_t i0, int64_t i1, std::vector<double>& st) {  // round(sum k_i v_iᵀ)
      for (int64_t d = 0; d < dk; ++d)
        for (int64_t e = 0; e < dv; ++e) {
          double acc = 0;
          for (int64_t i = i0; i < i1; ++i) acc += kg[i * dk + d] * vg[i * dv + e];
          st[size_t(d * dv + e)] = rnd(acc);
        }
    };
    if (mask == 0) {
      state(0, nk, S);
      for (double& x : S) x = rin(x);
      for (int64_t j = 0; j < nq; ++j)
        for (int64_t e = 0; e < dv; ++e) {
          double acc = 0;
          for (int64_t d = 0; d < dk; ++d) acc += qg[j * dk + d] * S[size_t(d * dv + e)];
          og[j * dv + e] = rnd(acc);
        }
      continue;
    }
    const int64_t C = 64, chunks = (nq + C - 1) / C;
    std::vector<std::vector<double>> H(size_t(chunks), std::vector<double>(size_t(dk * dv)));
    for (int64_t c = 0; c < chunks; ++c) state(c * C, std::min(nq, (c + 1) * C), H[size_t(c)]);
    for (int64_t c = 0; c < chunks; ++c) {
      // the exclusive prefix (causal) or suffix (anti-causal) of the states, summed, rounded once
      std::fill(S.begin(), S.end(), 0.0);
      for (int64_t c2 = 0; c2 < chunks; ++c2)
        if (mask == 1 ? c2 < c : c2 > c)
          for (size_t x = 0; x < S.size(); ++x) S[x] += H[size_t(c2)][x];
      for (double& x : S) x = rin(x);
      const int64_t j0 = c * C, j1 = std::min(nq, j0 + C);
      for (int64_t j = j0; j < j1; ++j) {
        std::vector<double> a(size_t(C), 0.0);  // round(q_j . k_i), masked
        for (int64_t i = j0; i < j1; ++i) {
          if (mask == 1 ? i > j : i < j) continue;
          double acc = 0;
          for (int64_t d = 0; d < dk; ++d) acc += qg[j * dk + d] * kg[i * dk + d];
          a[size_t(i - j0)] = rin(acc);
        }
        for (int64_t e = 0; e < dv; ++e) {
          double intra = 0, inter = 0;
          for (int64_t i = j0; i < j1; ++i) intra += a[size_t(i - j0)] * vg[i * dv + e];
          for (int64_t d = 0; d < dk; ++d) inter += qg[j * dk + d] * S[size_t(d * dv + e)];
          og[j * dv + e] = rnd(rnd(intra) + rnd(inter));
        }
      }
    }
  }
  return out;
}
template <class R>
static std::vector<double> composed(int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int mask,
                                    const std::vector<double>& q, const std::vector<double>& k,
                                    const std::vector<double>& v, R rnd) {
  return composed(G, nq, nk, dk, dv, mask, q, k, v, rnd, rnd);
}

// 16-bit inputs q [G, nq, dk], k [G, nk, dk], v [G, nk, dv] from N(0, 1) rounded to the type, with
// their values as doubles (…d).
template <class H>
struct HalfInputs {
  Buf<uint16_t> q, k, v;
  std::vector<double> qd, kd, vd;
  HalfInputs(int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, unsigned seed)
      : q(G * nq * dk), k(G * nk * dk), v(G * nk * dv) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd(0.0, 1.0);
    auto make = [&](Buf<uint16_t>& b, std::vector<double>& d) {
      d.resize(size_t(b.n));
      for (int64_t i = 0; i < b.n; ++i) {
        b[i] = Half<H>::encode(nd(rng));
        d[size_t(i)] = Half<H>::decode(b[i]);
      }
    };
    make(q, qd);
    make(k, kd);
    make(v, vd);
  }
};

template <class H>
static void half_case(int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int mask, int64_t budget,
                      unsigned seed) {
  using X = Half<H>;
  const int dtype = H::kDtype;
  HalfInputs<H> in(G, nq, nk, dk, dv, seed);
  const Buf<uint16_t>&q = in.q, &k = in.k, &v = in.v;
  const std::vector<double>&qd = in.qd, &kd = in.kd, &vd = in.vd;
  char what[240];
  snprintf(what, sizeof what, "linear_attention %s [G %lld, nq %lld, nk %lld, dk %lld, dv %lld] mask %d budget %lld",
           X::name(), (long long)G, (long long)nq, (long long)nk, (long long)dk, (long long)dv, mask,
           (long long)budget);
  const std::vector<double> ref = composed(G, nq, nk, dk, dv, mask, qd, kd, vd, [](double x) { return x; });
  const std::vector<double> naive = composed(G, nq, nk, dk, dv, mask, qd, kd, vd, [](double x) { return X::round(x); });
  const double en = rel_err(naive, ref), tol = 2 * en + 1e-6;
  auto widened = [](const Buf<uint16_t>& o) {
    std::vector<double> r(size_t(o.n));
    for (int64_t i = 0; i < o.n; ++i) r[size_t(i)] = X::decode(o[i]);
    return r;
  };
  std::string line = std::string(what) + ": naive " + std::to_string(en);
  auto judge = [&](const char* who, const Buf<uint16_t>& o) {
    const double e = rel_err(widened(o), ref);
    line += std::string(", ") + who + " " + std::to_string(e);
    expect(e <= tol, std::string(what) + ": " + who + " error " + std::to_string(e) + " over twice the naive " +
                         std::to_string(en));
    g_worst_half = std::max(g_worst_half, en > 0 ? e / en : 0.0);
  };

  // the CPU twin
  {
    Buf<uint16_t> out(G * nq * dv);
    out.poison();
    const int64_t ws = mk::cpu::linear_attention_workspace(dtype, dk, dv, omp_get_max_threads());
    std::vector<float> work(size_t(std::max<int64_t>(ws / 4, 1)));
    expect(mk::cpu::linear_attention(dtype, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), out.data(), mask,
                                     work.data(), nullptr) == 0,
           std::string(what) + ": CPU twin failed");
    expect(out.guards_intact(), std::string(what) + ": CPU twin wrote outside the output");
    judge("cpu", out);
  }

  g_budget = budget;
  const int64_t scratch = mk::cuda::linear_attention_scratch(dtype, G, nq, nk, dk, dv, mask);
  expect(scratch > 0 && scratch % 4 == 0, std::string(what) + ": no chunk plan of F32 states");
  const mk::cuda::ChunkPlan plan = mk::cuda::chunk_plan(MK_F32, G, nk, dk, dv, mask);
  expect(plan.bytes == scratch, std::string(what) + ": the 16-bit plan is not the F32 plan");
  Buf<float> S(scratch / 4);
  // the entry point, in every thread order: the same bits each time
  Buf<uint16_t> out(G * nq * dv);
  std::vector<uint16_t> first;
  for (size_t o = 0; o < g_orders.size(); ++o) {
    emu::config().order = g_orders[o];
    emu::config().seed = unsigned(o + 11);
    out.poison();
    S.poison();
    const int st = mk::cuda::linear_attention(dtype, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), out.data(), mask,
                                              S.data(), nullptr);
    expect(st == 0, std::string(what) + ": launch failed (" + std::to_string(st) + ")");
    expect(out.guards_intact(), std::string(what) + ": wrote outside the output");
    expect(S.guards_intact(), std::string(what) + ": wrote outside the scratch");
    std::vector<uint16_t> now(out.data(), out.data() + out.n);
    if (o == 0) {
      judge(dk <= 256 ? "cuda-tc" : "cuda-simt", out);
      first = now;
    } else {
      expect(std::memcmp(now.data(), first.data(), now.size() * 2) == 0,
             std::string(what) + ": differs between thread orders 0 and " + std::to_string(g_orders[o]));
    }
  }
  emu::config().order = g_orders[0];
  // the forms one by one: tensor cores (the entry point's choice: the same bits), SIMT chunked, sequential
  Buf<uint16_t> o2(G * nq * dv);
  if (dk <= 256) {
    o2.poison();
    // with a mask the tensor cores take longer state chunks than the SIMT plan (tc_plan)
    const int st = mk::cuda::run_tc<H>(mk::cuda::tc_plan(plan, G, nk, dk, dv, mask), G, nq, nk, dk, dv, q.data(),
                                       k.data(), v.data(), o2.data(), mask, S.data(), nullptr);
    expect(st == 0, std::string(what) + ": tensor-core form failed");
    expect(std::memcmp(o2.data(), first.data(), first.size() * 2) == 0,
           std::string(what) + ": the entry point did not run the tensor-core form");
  } else {
    expect(mk::cuda::run_tc<H>(plan, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), o2.data(), mask, S.data(),
                               nullptr) == mk::KERNEL_UNSUPPORTED,
           std::string(what) + ": tensor-core form accepted dk > 256");
  }
  o2.poison();
  expect(mk::cuda::run_chunked<H>(plan, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), o2.data(), mask, S.data(),
                                  nullptr) == 0,
         std::string(what) + ": SIMT chunked form failed");
  expect(o2.guards_intact() && S.guards_intact(), std::string(what) + ": SIMT chunked form wrote outside");
  judge("simt", o2);
  o2.poison();
  expect(mk::cuda::linear_attention(dtype, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), o2.data(), mask, nullptr,
                                    nullptr) == 0,
         std::string(what) + ": sequential form failed");
  expect(o2.guards_intact(), std::string(what) + ": sequential form wrote outside");
  judge("seq", o2);
  g_budget = int64_t(512) << 20;
  printf("  %s\n", line.c_str());
}

template <class H>
static void half_momentum_case(int64_t G, int64_t n, int64_t d, double decay, int reverse, unsigned seed) {
  using X = Half<H>;
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Buf<uint16_t> v(G * n * d), a(G * n * d), b(G * n * d);
  for (int64_t i = 0; i < v.n; ++i) v[i] = X::encode(nd(rng));
  mk::cpu::linear_attention_momentum(H::kDtype, G, n, d, v.data(), a.data(), decay, reverse, nullptr);
  expect(mk::cuda::linear_attention_momentum(H::kDtype, G, n, d, v.data(), b.data(), decay, reverse, nullptr) == 0,
         "momentum launch");
  expect(std::memcmp(a.data(), b.data(), size_t(a.n) * 2) == 0,
         std::string("momentum ") + X::name() + " n " + std::to_string(n) + " d " + std::to_string(d) + " reverse " +
             std::to_string(reverse) + ": not bitwise equal to the CPU twin");
  expect(a.guards_intact() && b.guards_intact(), "momentum wrote outside its output");
  // against F32 arithmetic on the widened values, rounded once per output (the twin's definition)
  int64_t bad = 0;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t e = 0; e < d; ++e) {
      float m = 0.f;
      for (int64_t s = 0; s < n; ++s) {
        const int64_t j = reverse ? n - 1 - s : s;
        if (s > 0) m = float(decay) * (m + float(X::decode(v[(g * n + (reverse ? j + 1 : j - 1)) * d + e])));
        if (a[(g * n + j) * d + e] != X::encode(m)) ++bad;
      }
    }
  expect(bad == 0, std::string("momentum ") + X::name() + ": " + std::to_string(bad) + " outputs not round(F32 sum)");
}

// A device whose shared memory does not hold the tensor-core tiles (48 KB opt-in: the <128, 128>
// output layout needs 53,248 B): the tensor-core form says unsupported before launching anything
// and the entry point runs the SIMT chunk-parallel form (the same bits as calling it).
template <class H>
static void half_small_device_case(unsigned seed) {
  const int64_t G = 2, n = 100, dk = 128, dv = 128;
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Buf<uint16_t> q(G * n * dk), k(G * n * dk), v(G * n * dv), a(G * n * dv), b(G * n * dv);
  for (Buf<uint16_t>* x : {&q, &k, &v})
    for (int64_t i = 0; i < x->n; ++i) (*x)[i] = Half<H>::encode(nd(rng));
  const mk::cuda::ChunkPlan plan = mk::cuda::chunk_plan(MK_F32, G, n, dk, dv);
  Buf<float> S(plan.bytes / 4);
  const int optin = emu::config().optin;
  emu::config().optin = 48 * 1024;
  const int64_t launches = emu::config().launches;
  const int tc = mk::cuda::run_tc<H>(plan, G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 1, S.data(), nullptr);
  expect(tc == mk::KERNEL_UNSUPPORTED && emu::config().launches == launches,
         std::string(Half<H>::name()) + " 48 KB device: the tensor-core form did not refuse before launching");
  expect(mk::cuda::linear_attention(H::kDtype, G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 1, S.data(),
                                    nullptr) == 0,
         std::string(Half<H>::name()) + " 48 KB device: entry point failed");
  expect(mk::cuda::run_chunked<H>(plan, G, n, n, dk, dv, q.data(), k.data(), v.data(), b.data(), 1, S.data(),
                                  nullptr) == 0,
         std::string(Half<H>::name()) + " 48 KB device: SIMT form failed");
  expect(std::memcmp(a.data(), b.data(), size_t(a.n) * 2) == 0,
         std::string(Half<H>::name()) + " 48 KB device: the entry point did not fall back to the SIMT form");
  emu::config().optin = optin;
}

template <class H>
static void halves(unsigned& seed) {
  const int64_t big = int64_t(512) << 20;
  struct Shape {
    int64_t G, nq, nk, dk, dv;
  };
  // causal masks need nq == nk; N not a multiple of 64; D/Dv 16..128, not multiples of 8 (scalar
  // loads) and over one 128-wide value tile; G > 1
  const Shape masked[] = {{2, 130, 130, 16, 16}, {1, 200, 200, 64, 64}, {3, 100, 100, 128, 128},
                          {1, 77, 77, 100, 40}, {2, 65, 65, 20, 130}};
  for (const Shape& s : masked)
    for (int mask = 0; mask <= 2; ++mask) half_case<H>(s.G, s.nq, s.nk, s.dk, s.dv, mask, big, seed++);
  half_case<H>(2, 37, 150, 20, 12, 0, big, seed++);   // no mask, nq != nk
  half_case<H>(1, 70, 70, 200, 24, 1, big, seed++);   // keys padded to 256
  half_case<H>(2, 90, 90, 33, 24, 2, big, seed++);    // odd dk: scalar state reads
  half_case<H>(1, 66, 66, 300, 16, 1, big, seed++);   // keys over 256: the SIMT form
  for (int mask = 0; mask <= 2; ++mask)               // state chunks of 128 keys (a lowered budget)
    half_case<H>(1, 200, 200, 16, 8, mask, 2 * 16 * 8 * 4, seed++);
  for (int r = 0; r <= 1; ++r) half_momentum_case<H>(3, 50, 70, 0.9, r, seed++);
  half_small_device_case<H>(seed++);
}

// ---- TF32 (F32 inputs on m16n8k8 TF32 MMAs, MK_LINEAR_MASK_TF32) --------------------------------
// The criterion: the kernel's error against the float64 product of the F32 inputs is at most twice
// that of the F32 computation on inputs rounded to TF32 — the naive TF32 composition (PyTorch's
// chunked form with TF32 matmuls: every matmul's operands rounded to TF32, i.e. q, k, v, the
// prefix state and the masked q kᵀ; its results F32) — plus a 1e-6 floor. TF32 keeps 10 of the 23
// mantissa bits, so both errors are ~1e-3 of the largest output where F32's is ~1e-6: a bound
// relative to the F32 computation would only say "not F32", this one says "no worse than TF32
// matmuls" (the kernel rounds exactly those operands, to nearest).
static double g_worst_tf32 = 0;  // worst (TF32 error / naive TF32 composition error)

static float tf32_round(float f) {  // cvt.rna.tf32.f32: to nearest, ties away from zero (finite values)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu;
  std::memcpy(&f, &u, 4);
  return f;
}

// F32 inputs q [G, nq, dk], k [G, nk, dk], v [G, nk, dv] from N(0, 1), with their values as doubles
// (…d) and rounded to TF32 (…t), for the TF32 and x3 cases.
struct F32Inputs {
  Buf<float> q, k, v;
  std::vector<double> qd, kd, vd, qt, kt, vt;
  F32Inputs(int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, unsigned seed)
      : q(G * nq * dk), k(G * nk * dk), v(G * nk * dv) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd(0.0, 1.0);
    auto make = [&](Buf<float>& b, std::vector<double>& d, std::vector<double>& t) {
      d.resize(size_t(b.n));
      t.resize(size_t(b.n));
      for (int64_t i = 0; i < b.n; ++i) {
        b[i] = float(nd(rng));
        d[size_t(i)] = b[i];
        t[size_t(i)] = tf32_round(b[i]);
      }
    };
    make(q, qd, qt);
    make(k, kd, kt);
    make(v, vd, vt);
  }
};

static void tf32_case(int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int mask, int64_t budget,
                      unsigned seed) {
  F32Inputs in(G, nq, nk, dk, dv, seed);
  Buf<float>&q = in.q, &k = in.k, &v = in.v;
  const std::vector<double>&qd = in.qd, &kd = in.kd, &vd = in.vd, &qt = in.qt, &kt = in.kt, &vt = in.vt;
  char what[240];
  snprintf(what, sizeof what, "linear_attention TF32 [G %lld, nq %lld, nk %lld, dk %lld, dv %lld] mask %d budget %lld",
           (long long)G, (long long)nq, (long long)nk, (long long)dk, (long long)dv, mask, (long long)budget);
  const bool tc = dk <= 256;  // the tensor-core form takes the call (else the exact SIMT form)
  const auto exact = [](double x) { return x; };
  const std::vector<double> ref = composed(G, nq, nk, dk, dv, mask, qd, kd, vd, exact);
  const std::vector<double> naive = composed(
      G, nq, nk, dk, dv, mask, qt, kt, vt, [](double x) { return double(tf32_round(float(x))); },
      [](double x) { return double(float(x)); });
  const double en = rel_err(naive, ref), tol = 2 * en + 1e-6;
  auto widened = [](const Buf<float>& o) { return std::vector<double>(o.data(), o.data() + o.n); };
  std::string line = std::string(what) + ": naive " + std::to_string(en);
  auto judge = [&](const char* who, const Buf<float>& o) {
    const double e = rel_err(widened(o), ref);
    line += std::string(", ") + who + " " + std::to_string(e);
    expect(e <= tol, std::string(what) + ": " + who + " error " + std::to_string(e) + " over twice the naive TF32 " +
                         std::to_string(en));
    g_worst_tf32 = std::max(g_worst_tf32, en > 0 ? e / en : 0.0);
  };

  // the CPU twin ignores the flag: the same bits as without it
  {
    Buf<float> a(G * nq * dv), b(G * nq * dv);
    const int64_t ws = mk::cpu::linear_attention_workspace(MK_F32, dk, dv, omp_get_max_threads());
    std::vector<float> work(size_t(std::max<int64_t>(ws / 4, 1)));
    expect(mk::cpu::linear_attention(MK_F32, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), a.data(), mask,
                                     work.data(), nullptr) == 0 &&
               mk::cpu::linear_attention(MK_F32, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), b.data(),
                                         mask | MK_LINEAR_MASK_TF32, work.data(), nullptr) == 0,
           std::string(what) + ": CPU twin failed");
    expect(std::memcmp(a.data(), b.data(), size_t(a.n) * 4) == 0,
           std::string(what) + ": the CPU twin changed with the TF32 flag");
  }

  g_budget = budget;
  const mk::cuda::ChunkPlan plan = mk::cuda::chunk_plan(MK_F32, G, nk, dk, dv, mask);
  expect(plan.bytes == mk::cuda::linear_attention_scratch(MK_F32, G, nq, nk, dk, dv, mask | MK_LINEAR_MASK_TF32),
         std::string(what) + ": the TF32 scratch is not the F32 plan's");
  Buf<float> S(plan.bytes / 4);
  // the entry point with the flag, in every thread order: the same bits each time
  Buf<float> out(G * nq * dv);
  std::vector<float> first;
  for (size_t o = 0; o < g_orders.size(); ++o) {
    emu::config().order = g_orders[o];
    emu::config().seed = unsigned(o + 13);
    out.poison();
    S.poison();
    const int st = mk::cuda::linear_attention(MK_F32, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), out.data(),
                                              mask | MK_LINEAR_MASK_TF32, S.data(), nullptr);
    expect(st == 0, std::string(what) + ": launch failed (" + std::to_string(st) + ")");
    expect(out.guards_intact(), std::string(what) + ": wrote outside the output");
    expect(S.guards_intact(), std::string(what) + ": wrote outside the scratch");
    std::vector<float> now(out.data(), out.data() + out.n);
    if (o == 0) {
      judge(tc ? "cuda-tf32" : "cuda-simt", out);
      first = now;
    } else {
      expect(std::memcmp(now.data(), first.data(), now.size() * 4) == 0,
             std::string(what) + ": differs between thread orders 0 and " + std::to_string(g_orders[o]));
    }
  }
  emu::config().order = g_orders[0];
  // the entry point ran the TF32 tensor-core form (dk <= 256) or refused it before launching anything
  Buf<float> o2(G * nq * dv);
  o2.poison();
  const int64_t launches = emu::config().launches;
  const int st = mk::cuda::run_tc<mk::cuda::Tf32>(mk::cuda::tc_plan(plan, G, nk, dk, dv, mask), G, nq, nk, dk, dv,
                                                  q.data(), k.data(), v.data(), o2.data(), mask, S.data(), nullptr);
  if (tc) {
    expect(st == 0, std::string(what) + ": TF32 tensor-core form failed");
    expect(std::memcmp(o2.data(), first.data(), first.size() * 4) == 0,
           std::string(what) + ": the entry point did not run the TF32 tensor-core form");
  } else {
    expect(st == mk::KERNEL_UNSUPPORTED && emu::config().launches == launches,
           std::string(what) + ": TF32 tensor-core form accepted dk > 256");
  }
  // without the flag: the exact SIMT chunk-parallel form (F32 stays the default)
  Buf<float> a(G * nq * dv), b(G * nq * dv);
  expect(mk::cuda::linear_attention(MK_F32, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), a.data(), mask, S.data(),
                                    nullptr) == 0 &&
             mk::cuda::run_chunked<float>(plan, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), b.data(), mask,
                                          S.data(), nullptr) == 0,
         std::string(what) + ": F32 forms failed");
  expect(std::memcmp(a.data(), b.data(), size_t(a.n) * 4) == 0,
         std::string(what) + ": F32 without the flag did not run the SIMT form");
  judge("f32", a);
  // without scratch (the sequential form) the flag changes nothing
  a.poison();
  b.poison();
  expect(mk::cuda::linear_attention(MK_F32, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), a.data(),
                                    mask | MK_LINEAR_MASK_TF32, nullptr, nullptr) == 0 &&
             mk::cuda::linear_attention(MK_F32, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), b.data(), mask,
                                        nullptr, nullptr) == 0,
         std::string(what) + ": sequential form failed");
  expect(a.guards_intact() && std::memcmp(a.data(), b.data(), size_t(a.n) * 4) == 0,
         std::string(what) + ": the sequential form changed with the TF32 flag");
  g_budget = int64_t(512) << 20;
  printf("  %s\n", line.c_str());
}

// Other dtypes ignore the flag on CUDA: F64 and BF16 give the same bits with and without it.
static void tf32_other_dtypes_case(unsigned seed) {
  const int64_t G = 2, n = 90, dk = 24, dv = 40;
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Buf<double> q(G * n * dk), k(G * n * dk), v(G * n * dv), a(G * n * dv), b(G * n * dv);
  for (Buf<double>* x : {&q, &k, &v})
    for (int64_t i = 0; i < x->n; ++i) (*x)[i] = nd(rng);
  Buf<double> S(mk::cuda::linear_attention_scratch(MK_F64, G, n, n, dk, dv, 1) / 8);
  mk::cuda::linear_attention(MK_F64, G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 1, S.data(), nullptr);
  mk::cuda::linear_attention(MK_F64, G, n, n, dk, dv, q.data(), k.data(), v.data(), b.data(),
                             1 | MK_LINEAR_MASK_TF32, S.data(), nullptr);
  expect(std::memcmp(a.data(), b.data(), size_t(a.n) * 8) == 0, "F64 changed with the TF32 flag");
  Buf<uint16_t> hq(G * n * dk), hk(G * n * dk), hv(G * n * dv), ha(G * n * dv), hb(G * n * dv);
  for (Buf<uint16_t>* x : {&hq, &hk, &hv})
    for (int64_t i = 0; i < x->n; ++i) (*x)[i] = mk::f32_to_bf16_bits(float(nd(rng)));
  Buf<float> HS(mk::cuda::linear_attention_scratch(MK_BF16, G, n, n, dk, dv, 2) / 4);
  mk::cuda::linear_attention(MK_BF16, G, n, n, dk, dv, hq.data(), hk.data(), hv.data(), ha.data(), 2, HS.data(),
                             nullptr);
  mk::cuda::linear_attention(MK_BF16, G, n, n, dk, dv, hq.data(), hk.data(), hv.data(), hb.data(),
                             2 | MK_LINEAR_MASK_TF32, HS.data(), nullptr);
  expect(std::memcmp(ha.data(), hb.data(), size_t(ha.n) * 2) == 0, "BF16 changed with the TF32 flag");
}

// A device whose shared memory does not hold the TF32 tiles (48 KB: the <128, 128> output layout
// needs 104,448 B, <128, 64> 87,040 B): the TF32 form refuses before launching and the entry point
// runs the exact SIMT chunk-parallel form (the same bits as calling it). On a 99 KB device the TF32
// form takes 64-column value tiles.
static void tf32_small_device_case(unsigned seed) {
  const int64_t G = 2, n = 100, dk = 128, dv = 128;
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Buf<float> q(G * n * dk), k(G * n * dk), v(G * n * dv), a(G * n * dv), b(G * n * dv);
  for (Buf<float>* x : {&q, &k, &v})
    for (int64_t i = 0; i < x->n; ++i) (*x)[i] = float(nd(rng));
  const mk::cuda::ChunkPlan plan = mk::cuda::chunk_plan(MK_F32, G, n, dk, dv);
  Buf<float> S(plan.bytes / 4);
  const int optin = emu::config().optin;
  emu::config().optin = 48 * 1024;
  const int64_t launches = emu::config().launches;
  const int tc =
      mk::cuda::run_tc<mk::cuda::Tf32>(plan, G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 1, S.data(), nullptr);
  expect(tc == mk::KERNEL_UNSUPPORTED && emu::config().launches == launches,
         "TF32 48 KB device: the tensor-core form did not refuse before launching");
  expect(mk::cuda::linear_attention(MK_F32, G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(),
                                    1 | MK_LINEAR_MASK_TF32, S.data(), nullptr) == 0,
         "TF32 48 KB device: entry point failed");
  expect(mk::cuda::run_chunked<float>(plan, G, n, n, dk, dv, q.data(), k.data(), v.data(), b.data(), 1, S.data(),
                                      nullptr) == 0,
         "TF32 48 KB device: SIMT form failed");
  expect(std::memcmp(a.data(), b.data(), size_t(a.n) * 4) == 0,
         "TF32 48 KB device: the entry point did not fall back to the SIMT form");
  // 99 KB (sm_86 class): <128, 128> (104,448 B) is refused, <128, 64> (87,040 B) runs: the same bits
  // as on a large device, whose entry point takes <128, 128> (the value tiles only split the columns)
  emu::config().optin = 99 * 1024;
  expect(mk::cuda::run_tc<mk::cuda::Tf32>(plan, G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 1, S.data(),
                                          nullptr) == 0,
         "TF32 99 KB device: the tensor-core form failed");
  emu::config().optin = optin;
  expect(mk::cuda::run_tc_tiles<mk::cuda::Tf32, 128, 128>(plan, G, n, n, dk, dv, q.data(), k.data(), v.data(),
                                                          b.data(), 1, S.data(), nullptr) == 0,
         "TF32 <128, 128> tiles failed");
  expect(std::memcmp(a.data(), b.data(), size_t(a.n) * 4) == 0,
         "TF32 99 KB device: the 64-column value tiles differ from the 128-column ones");
  emu::config().optin = optin;
}

static void tf32s(unsigned& seed) {
  const int64_t big = int64_t(512) << 20;
  struct Shape {
    int64_t G, nq, nk, dk, dv;
  };
  // N not a multiple of 64; D/Dv 16..128 (not multiples of 4: scalar loads and stores), over one
  // 128-wide value tile; G > 1
  const Shape masked[] = {{2, 130, 130, 16, 16}, {1, 200, 200, 64, 64}, {3, 100, 100, 128, 128},
                          {1, 77, 77, 100, 40},  {2, 65, 65, 20, 130},  {1, 70, 70, 18, 30}};
  for (const Shape& s : masked)
    for (int mask = 0; mask <= 2; ++mask) tf32_case(s.G, s.nq, s.nk, s.dk, s.dv, mask, big, seed++);
  tf32_case(2, 37, 150, 20, 12, 0, big, seed++);  // no mask, nq != nk
  tf32_case(1, 70, 70, 200, 24, 1, big, seed++);  // keys padded to 256 (ET 64)
  tf32_case(1, 90, 90, 150, 130, 2, big, seed++); // keys over 128, values over 64: ET 64
  tf32_case(2, 90, 90, 33, 24, 2, big, seed++);   // odd dk: scalar state reads
  tf32_case(1, 66, 66, 300, 16, 1, big, seed++);  // keys over 256: the SIMT form
  for (int mask = 0; mask <= 2; ++mask)           // state chunks of 128 keys (a lowered budget)
    tf32_case(1, 200, 200, 16, 8, mask, 2 * 16 * 8 * 4, seed++);
  tf32_other_dtypes_case(seed++);
  tf32_small_device_case(seed++);
}

// The unmasked plan (issue 11, the chunk-state traffic): without a mask the state chunks grow while
// the chunks of all groups stay >= MK_LINEAR_PARALLEL_CHUNKS (the output pass reads only their
// total); masks keep the smallest R. The plan at the shape, and products through the entry
// point under a lowered threshold (3 chunks of 128 keys, and one chunk) in F32, BF16 and TF32.
static void unmasked_plan_cases(unsigned& seed) {
  const mk::cuda::ChunkPlan none = mk::cuda::chunk_plan(MK_F32, 64, 4096, 128, 128, 0);
  const mk::cuda::ChunkPlan causal = mk::cuda::chunk_plan(MK_F32, 64, 4096, 128, 128, 1);
  expect(none.rows == 256 && none.states == 16 && none.bytes == int64_t(64) * 16 * 128 * 128 * 4,
         "[4,16,4096,128] without a mask: R = 256, 16 chunks per group");
  expect(causal.rows == 64 && causal.states == 64, "[4,16,4096,128] causal: R = 64");
  expect(mk::cuda::chunk_plan(MK_F32, 64, 4096, 128, 128, 2).rows == 64, "anti-causal keeps R = 64");
  expect(mk::cuda::linear_attention_scratch(MK_BF16, 64, 4096, 4096, 128, 128, 0) == none.bytes &&
             mk::cuda::linear_attention_scratch(MK_F32, 64, 4096, 4096, 128, 128, 0 | MK_LINEAR_MASK_TF32) ==
                 none.bytes,
         "the scratch of the unmasked call is the unmasked plan's");
  expect(mk::cuda::chunk_plan(MK_F32, 1, 16384, 128, 128, 0).rows == 64, "one group of 16k keys keeps R = 64");
  expect(mk::cuda::chunk_plan(MK_F32, 16, 4096, 64, 64, 0).rows == 64, "16 groups of 4k keys keep R = 64");
  for (int64_t par : {6, 2}) {  // 300 keys over 2 groups: R = 128 (3 chunks), R = 512 (one chunk)
    g_par = par;
    const mk::cuda::ChunkPlan p = mk::cuda::chunk_plan(MK_F32, 2, 300, 20, 12, 0);
    expect(p.states == (par == 6 ? 3 : 1) && p.rows == (par == 6 ? 128 : 512),
           "lowered threshold " + std::to_string(par) + ": R " + std::to_string(p.rows));
    product_case<float>(2, 37, 300, 20, 12, 0, int64_t(512) << 20, kChunked, seed++);
    product_case<double>(2, 37, 300, 20, 12, 0, int64_t(512) << 20, kChunked, seed++);
    half_case<mk::cuda::Bf16>(2, 37, 300, 20, 12, 0, int64_t(512) << 20, seed++);
    tf32_case(2, 37, 300, 20, 12, 0, int64_t(512) << 20, seed++);
    g_par = 1024;
  }
}

// The masked tensor-core plan (tc_plan: state chunks of 256 keys, measured on an H100 2026-12-05):
// the plans at the shape, that its states fit the scratch sized by the SIMT plan, and
// causal / anti-causal products through the entry point over several 256-key chunks (the last one
// partial) in BF16, F16 and TF32, judged against the reference (half_case / tf32_case also check
// that the entry point gives the bits of run_tc at tc_plan).
static void masked_tc_plan_cases(unsigned& seed) {
  for (int mask : {1, 2}) {
    const mk::cuda::ChunkPlan p = mk::cuda::chunk_plan(MK_F32, 64, 4096, 128, 128, mask);
    const mk::cuda::ChunkPlan t = mk::cuda::tc_plan(p, 64, 4096, 128, 128, mask);
    expect(p.rows == 64 && t.rows == 256 && t.states == 16 && t.bytes == int64_t(64) * 16 * 128 * 128 * 4 &&
               t.bytes <= mk::cuda::linear_attention_scratch(MK_BF16, 64, 4096, 4096, 128, 128, mask),
           "[4,16,4096,128] mask " + std::to_string(mask) + ": tensor cores at R = 256 within the scratch");
  }
  const mk::cuda::ChunkPlan none = mk::cuda::chunk_plan(MK_F32, 64, 4096, 128, 128, 0);
  expect(mk::cuda::tc_plan(none, 64, 4096, 128, 128, 0).rows == none.rows, "no mask: the plan as it is");
  for (int mask : {1, 2}) {
    half_case<mk::cuda::Bf16>(2, 600, 600, 64, 48, mask, int64_t(512) << 20, seed++);  // 3 chunks, the last partial
    half_case<mk::cuda::Fp16>(1, 530, 530, 128, 128, mask, int64_t(512) << 20, seed++);
    tf32_case(2, 600, 600, 64, 48, mask, int64_t(512) << 20, seed++);
  }
}

// ---- the recurrent tensor-core form (MK_LINEAR_TC=recurrent, MK_LINEAR_F32=x3) ------------------
// kernels/cuda/linear_attention_recurrent.cuh: masked square products, a block per (group, 64 value
// columns) walking the 64-key chunks with the state in registers. Judged as the chunked tensor-core
// form is: 16-bit and TF32 within twice the naive composition's error (+ 1e-6); x3 (F32 without
// TF32, three TF32 products per product) within the F32 bound of product_case, 8·eps·(dk + n)·Σ|terms|
// per element, like the exact SIMT forms. Each also: bitwise equal across thread orders, nothing
// written outside the output, the entry point under the variable giving the same bits as the form
// called directly (with and without scratch), and refusals (no mask, nq != nk, dk > 128, a device
// without the shared memory) before any launch, after which the entry point runs the other forms.
static double g_worst_rec_half = 0, g_worst_rec_tf32 = 0, g_worst_x3 = 0, g_x3_err = 0, g_simt_err = 0;

struct ScopedEnv {
  const char* name;
  ScopedEnv(const char* n, const char* v) : name(n) { setenv(n, v, 1); }
  ~ScopedEnv() { unsetenv(name); }
};

// out of the form run directly, in every thread order (the same bits each time, nothing outside)
// (segments > 1: the segmented walk, its states in a scratch of exactly groups · segments states; mask
// 0: the state form, `segments` key segments, their states in such a scratch)
template <class Ops, class Raw>
static std::vector<Raw> run_recurrent_orders(const std::string& what, int64_t G, int64_t nq, int64_t nk, int64_t dk,
                                             int64_t dv, const Buf<Raw>& q, const Buf<Raw>& k, const Buf<Raw>& v,
                                             Buf<Raw>& out, int mask, int64_t segments = 1) {
  std::vector<Raw> first;
  const bool scratch = segments > 1 || mask == 0;
  // (the state form: also the total of its segments, in the operand type: rec_state_form_scratch)
  Buf<float> S(!scratch    ? 0
               : mask == 0 ? mk::cuda::rec_state_form_scratch(G, dk, dv, segments, sizeof(Raw)) / 4
                           : G * segments * dk * dv);
  for (size_t o = 0; o < g_orders.size(); ++o) {
    emu::config().order = g_orders[o];
    emu::config().seed = unsigned(o + 17);
    out.poison();
    S.poison();
    const int st = mk::cuda::run_tc_recurrent<Ops>(G, nq, nk, dk, dv, q.data(), k.data(), v.data(), out.data(), mask,
                                                   nullptr, scratch ? S.data() : nullptr, S.n * 4, segments);
    expect(st == 0, what + ": recurrent form failed (" + std::to_string(st) + ")");
    expect(out.guards_intact() && S.guards_intact(), what + ": recurrent form wrote outside the output or scratch");
    std::vector<Raw> now(out.data(), out.data() + out.n);
    if (o == 0)
      first = now;
    else
      expect(std::memcmp(now.data(), first.data(), now.size() * sizeof(Raw)) == 0,
             what + ": recurrent form differs between thread orders 0 and " + std::to_string(g_orders[o]));
  }
  emu::config().order = g_orders[0];
  return first;
}

// the entry point (with scratch, and unless scratch_only without) gives `want`'s bits
template <class Raw>
static void entry_gives(const std::string& what, int dtype, int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv,
                        const Buf<Raw>& q, const Buf<Raw>& k, const Buf<Raw>& v, int mask_arg,
                        const std::vector<Raw>& want, bool scratch_only = false) {
  const int64_t scratch = mk::cuda::linear_attention_scratch(dtype, G, nq, nk, dk, dv, mask_arg);
  Buf<float> S(std::max<int64_t>(scratch / 4, 1));
  Buf<Raw> out(G * nq * dv);
  for (int with : {1, 0}) {
    if (!with && scratch_only) continue;
    out.poison();
    const int st = mk::cuda::linear_attention(dtype, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), out.data(),
                                              mask_arg, with ? S.data() : nullptr, nullptr);
    expect(st == 0 && out.guards_intact(), what + ": entry point failed");
    expect(std::memcmp(out.data(), want.data(), want.size() * sizeof(Raw)) == 0,
           what + ": the entry point did not run the recurrent form (" + (with ? "with" : "without") + " scratch)");
  }
}

// Whether the entry point, with scratch, runs the form at `segments` segments (the masked walk:
// rec_segments' choice, and 1 without scratch too; the state form: rec_state_segments', within the
// scratch; 132 SMs in the emulator). Only then is the entry point checked against the direct call;
// segmented_cases and state_form_cases check the entry point's own choice when it is over 1.
static bool entry_runs(int dtype, int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int mask,
                       int64_t segments) {
  if (mask != 0) return segments == 1 && mk::cuda::rec_segments(G, (dv + 63) / 64, nk, 132) == 1;
  const int64_t scratch = mk::cuda::linear_attention_scratch(dtype, G, nq, nk, dk, dv, 0);
  const int64_t elem = dtype == MK_F32 ? 4 : 2;
  return mk::cuda::rec_state_form_segments(G, nk, dk, dv, elem, scratch, 0, 132) ==
         mk::cuda::rec_state_form_segments(G, nk, dk, dv, elem, scratch, segments, 132);
}

// segments: of the walk checked (masked: the walk's segments; mask 0: the state form's key segments);
// the entry point is checked where it runs the same (entry_runs)
template <class H>
static void recurrent_half_case(int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int mask, unsigned seed,
                                int64_t segments = 1) {
  using X = Half<H>;
  HalfInputs<H> in(G, nq, nk, dk, dv, seed);
  const Buf<uint16_t>&q = in.q, &k = in.k, &v = in.v;
  const std::vector<double>&qd = in.qd, &kd = in.kd, &vd = in.vd;
  Buf<uint16_t> out(G * nq * dv);
  char what[200];
  snprintf(what, sizeof what, "recurrent %s [G %lld, nq %lld, nk %lld, dk %lld, dv %lld] mask %d segments %lld",
           X::name(), (long long)G, (long long)nq, (long long)nk, (long long)dk, (long long)dv, mask,
           (long long)segments);
  const std::vector<double> ref = composed(G, nq, nk, dk, dv, mask, qd, kd, vd, [](double x) { return x; });
  const std::vector<double> naive = composed(G, nq, nk, dk, dv, mask, qd, kd, vd, [](double x) { return X::round(x); });
  const double en = rel_err(naive, ref);
  const std::vector<uint16_t> first =
      run_recurrent_orders<mk::cuda::RecOps<H>>(what, G, nq, nk, dk, dv, q, k, v, out, mask, segments);
  std::vector<double> wide(first.size());
  for (size_t i = 0; i < first.size(); ++i) wide[i] = X::decode(first[i]);
  const double e = rel_err(wide, ref);
  expect(e <= 2 * en + 1e-6, std::string(what) + ": error " + std::to_string(e) + " over twice the naive " +
                                 std::to_string(en));
  g_worst_rec_half = std::max(g_worst_rec_half, en > 0 ? e / en : 0.0);
  if (entry_runs(H::kDtype, G, nq, nk, dk, dv, mask, segments)) {
    ScopedEnv env("MK_LINEAR_TC", "recurrent");
    entry_gives(what, H::kDtype, G, nq, nk, dk, dv, q, k, v, mask, first, mask == 0);
  }
  printf("  %s: naive %.3g, recurrent %.3g\n", what, en, e);
}

// TF32 (MK_LINEAR_TC=recurrent with the TF32 flag) and x3 (MK_LINEAR_F32=x3, F32 without the flag)
static void recurrent_f32_case(int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, int mask, unsigned seed,
                               int64_t segments = 1) {
  F32Inputs in(G, nq, nk, dk, dv, seed);
  const Buf<float>&q = in.q, &k = in.k, &v = in.v;
  const std::vector<double>&qd = in.qd, &kd = in.kd, &vd = in.vd, &qt = in.qt, &kt = in.kt, &vt = in.vt;
  Buf<float> out(G * nq * dv);
  char what[200];
  snprintf(what, sizeof what, "recurrent F32 [G %lld, nq %lld, nk %lld, dk %lld, dv %lld] mask %d segments %lld",
           (long long)G, (long long)nq, (long long)nk, (long long)dk, (long long)dv, mask, (long long)segments);
  const std::vector<double> ref = composed(G, nq, nk, dk, dv, mask, qd, kd, vd, [](double x) { return x; });
  // TF32: twice the naive TF32 composition's error
  const std::vector<double> naive = composed(
      G, nq, nk, dk, dv, mask, qt, kt, vt, [](double x) { return double(tf32_round(float(x))); },
      [](double x) { return double(float(x)); });
  const double en = rel_err(naive, ref);
  const bool entry = entry_runs(MK_F32, G, nq, nk, dk, dv, mask, segments);
  const std::vector<float> tf = run_recurrent_orders<mk::cuda::RecOpsF32<1>>(std::string(what) + " TF32", G, nq, nk, dk,
                                                                             dv, q, k, v, out, mask, segments);
  const double et = rel_err(std::vector<double>(tf.begin(), tf.end()), ref);
  expect(et <= 2 * en + 1e-6, std::string(what) + ": TF32 error " + std::to_string(et) + " over twice the naive " +
                                  std::to_string(en));
  g_worst_rec_tf32 = std::max(g_worst_rec_tf32, en > 0 ? et / en : 0.0);
  if (entry) {
    ScopedEnv env("MK_LINEAR_TC", "recurrent");
    entry_gives(std::string(what) + " TF32", MK_F32, G, nq, nk, dk, dv, q, k, v, mask | MK_LINEAR_MASK_TF32, tf,
                mask == 0);
  }
  // x3: the F32 bound per element
  const std::vector<float> x3 = run_recurrent_orders<mk::cuda::RecOpsF32<3>>(std::string(what) + " x3", G, nq, nk, dk,
                                                                             dv, q, k, v, out, mask, segments);
  std::vector<double> bound(size_t(G * nq * dv), 0.0);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t j = 0; j < nq; ++j)
      for (int64_t i = 0; i < nk; ++i) {
        if ((mask == 1 && i > j) || (mask == 2 && i < j)) continue;
        double adot = 0;
        for (int64_t d = 0; d < dk; ++d)
          adot += std::fabs(qd[size_t((g * nq + j) * dk + d)] * kd[size_t((g * nk + i) * dk + d)]);
        for (int64_t e = 0; e < dv; ++e)
          bound[size_t((g * nq + j) * dv + e)] += adot * std::fabs(vd[size_t((g * nk + i) * dv + e)]);
      }
  const double scale = 8.0 * double(std::numeric_limits<float>::epsilon()) * double(dk + nk);
  int64_t bad = 0;
  double worst = 0;
  for (size_t x = 0; x < x3.size(); ++x) {
    const double err = std::fabs(double(x3[x]) - ref[x]), tol = scale * bound[x] + 1e-300;
    if (!(err <= tol)) ++bad;
    worst = std::max(worst, err / tol);
  }
  expect(bad == 0, std::string(what) + ": x3 off the F32 bound at " + std::to_string(bad) + " outputs (worst err/tol " +
                       std::to_string(worst) + ")");
  g_worst_x3 = std::max(g_worst_x3, worst);
  const double ex = rel_err(std::vector<double>(x3.begin(), x3.end()), ref);
  // the exact SIMT chunk-parallel form on the same inputs, for the record
  const mk::cuda::ChunkPlan plan = mk::cuda::chunk_plan(MK_F32, G, nk, dk, dv, mask);
  Buf<float> S(plan.bytes / 4), simt(G * nq * dv);
  expect(mk::cuda::run_chunked<float>(plan, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), simt.data(), mask,
                                      S.data(), nullptr) == 0,
         std::string(what) + ": SIMT form failed");
  const double es = rel_err(std::vector<double>(simt.data(), simt.data() + simt.n), ref);
  g_x3_err = std::max(g_x3_err, ex);
  g_simt_err = std::max(g_simt_err, es);
  if (entry) {
    ScopedEnv env("MK_LINEAR_F32", "x3");
    entry_gives(std::string(what) + " x3", MK_F32, G, nq, nk, dk, dv, q, k, v, mask, x3, mask == 0);
  }
  printf("  %s: TF32 naive %.3g, TF32 %.3g; x3 %.3g (worst err / F32 bound %.3g), SIMT F32 %.3g\n", what, en, et, ex,
         worst, es);
}

// Refusals before any launch, and the entry point running the other forms then: no mask without
// scratch (or with less than a state per group), a masked nq != nk, an empty product, dk over 128, a
// device without the shared memory (48 KB: the F32 tiles at dk 128 need 204 KB), the variables unset
// or set to anything else.
static void recurrent_refusal_cases(unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  const int64_t G = 2, n = 70, dk = 128, dv = 64;
  Buf<float> q(G * n * 200), k(G * n * 200), v(G * n * dv), a(G * n * dv), b(G * n * dv);
  for (Buf<float>* x : {&q, &k, &v})
    for (int64_t i = 0; i < x->n; ++i) (*x)[i] = float(nd(rng));
  const int64_t launches = emu::config().launches;
  using X3 = mk::cuda::RecOpsF32<3>;
  Buf<float> one_less(G * dk * dv - 1);
  expect(mk::cuda::run_tc_recurrent<X3>(G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 0, nullptr) ==
                 mk::KERNEL_UNSUPPORTED &&
             mk::cuda::run_tc_recurrent<X3>(G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 0, nullptr,
                                            one_less.data(), one_less.n * 4) == mk::KERNEL_UNSUPPORTED &&
             mk::cuda::run_tc_recurrent<X3>(G, n, 0, dk, dv, q.data(), k.data(), v.data(), a.data(), 0, nullptr,
                                            one_less.data(), one_less.n * 4 + 4) == mk::KERNEL_UNSUPPORTED &&
             mk::cuda::run_tc_recurrent<X3>(G, 0, 0, dk, dv, q.data(), k.data(), v.data(), a.data(), 1, nullptr) ==
                 mk::KERNEL_UNSUPPORTED &&
             mk::cuda::run_tc_recurrent<X3>(G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 3, nullptr) ==
                 mk::KERNEL_UNSUPPORTED &&
             mk::cuda::run_tc_recurrent<X3>(G, n, n - 1, dk, dv, q.data(), k.data(), v.data(), a.data(), 1, nullptr) ==
                 mk::KERNEL_UNSUPPORTED &&
             mk::cuda::run_tc_recurrent<X3>(G, n, n, 129, dv, q.data(), k.data(), v.data(), a.data(), 1, nullptr) ==
                 mk::KERNEL_UNSUPPORTED,
         "recurrent: no mask without scratch, a masked nq != nk, an empty product, mask 3 or dk > 128 not refused");
  const int optin = emu::config().optin;
  emu::config().optin = 48 * 1024;
  expect(mk::cuda::run_tc_recurrent<X3>(G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 1, nullptr) ==
             mk::KERNEL_UNSUPPORTED,
         "recurrent: a 48 KB device not refused");
  expect(emu::config().launches == launches, "recurrent: a refusal launched something");
  {  // the entry point then runs the exact SIMT form (the same bits as without the variable)
    ScopedEnv env("MK_LINEAR_F32", "x3");
    const mk::cuda::ChunkPlan plan = mk::cuda::chunk_plan(MK_F32, G, n, dk, dv, 1);
    Buf<float> S(plan.bytes / 4);
    expect(mk::cuda::linear_attention(MK_F32, G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 1, S.data(),
                                      nullptr) == 0 &&
               mk::cuda::run_chunked<float>(plan, G, n, n, dk, dv, q.data(), k.data(), v.data(), b.data(), 1, S.data(),
                                            nullptr) == 0 &&
               std::memcmp(a.data(), b.data(), size_t(a.n) * 4) == 0,
           "recurrent refused on a 48 KB device: the entry point did not run the SIMT form");
  }
  emu::config().optin = optin;
  // the programmatic choice (kernels.inc linear_attention_select) comes before the variables
  expect(mk::cuda::linear_attention_select(3, 0) == mk::KERNEL_UNSUPPORTED &&
             mk::cuda::linear_attention_select(0, 2) == mk::KERNEL_UNSUPPORTED &&
             mk::cuda::linear_attention_select(-1, 0) == mk::KERNEL_UNSUPPORTED,
         "linear_attention_select: bad codes not refused");
  {
    const mk::cuda::ChunkPlan plan = mk::cuda::chunk_plan(MK_F32, G, n, 100, dv, 1);
    Buf<float> S(plan.bytes / 4), x(G * n * dv);
    expect(mk::cuda::run_tc_recurrent<X3>(G, n, n, 100, dv, q.data(), k.data(), v.data(), x.data(), 1, nullptr) == 0,
           "recurrent x3 failed");
    expect(mk::cuda::linear_attention_select(0, mk::MK_LINEAR_F32_X3) == 0, "linear_attention_select(0, 3) failed");
    expect(mk::cuda::linear_attention(MK_F32, G, n, n, 100, dv, q.data(), k.data(), v.data(), a.data(), 1, S.data(),
                                      nullptr) == 0 &&
               std::memcmp(a.data(), x.data(), size_t(a.n) * 4) == 0,
           "linear_attention_select(0, x3): the entry point did not run x3");
    {
      ScopedEnv env("MK_LINEAR_F32", "x3");  // the selection (simt) before the variable (x3)
      expect(mk::cuda::linear_attention_select(0, mk::MK_LINEAR_F32_SIMT) == 0 &&
                 mk::cuda::linear_attention(MK_F32, G, n, n, 100, dv, q.data(), k.data(), v.data(), a.data(), 1,
                                            S.data(), nullptr) == 0 &&
                 mk::cuda::run_chunked<float>(plan, G, n, n, 100, dv, q.data(), k.data(), v.data(), b.data(), 1,
                                              S.data(), nullptr) == 0 &&
                 std::memcmp(a.data(), b.data(), size_t(a.n) * 4) == 0,
             "linear_attention_select(0, simt) did not come before MK_LINEAR_F32=x3");
      // reset: the variable again
      expect(mk::cuda::linear_attention_select(0, 0) == 0 &&
                 mk::cuda::linear_attention(MK_F32, G, n, n, 100, dv, q.data(), k.data(), v.data(), a.data(), 1,
                                            S.data(), nullptr) == 0 &&
                 std::memcmp(a.data(), x.data(), size_t(a.n) * 4) == 0,
             "linear_attention_select(0, 0) did not give the choice back to the variable");
    }
  }
  // 16-bit at dk 128 fits 105,472 B (an A100's 163 KB; not a 99 KB device); F32 at dk 64 124 KB
  expect(mk::cuda::RecLayout<mk::cuda::RecOps<mk::cuda::Bf16>, 128>::bytes == 105472 &&
             mk::cuda::RecLayout<X3, 128>::bytes == 208896 && mk::cuda::RecLayout<X3, 64>::bytes == 126976,
         "recurrent shared layouts");
  // without the variables (or with other values) the recurrent form does not run: F32 masked calls
  // give the SIMT bits
  for (const char* val : {"", "chunked", "X3"}) {
    ScopedEnv e1("MK_LINEAR_F32", val), e2("MK_LINEAR_TC", val);
    const mk::cuda::ChunkPlan plan = mk::cuda::chunk_plan(MK_F32, G, n, 100, dv, 2);
    Buf<float> S(plan.bytes / 4);
    expect(mk::cuda::linear_attention(MK_F32, G, n, n, 100, dv, q.data(), k.data(), v.data(), a.data(), 2, S.data(),
                                      nullptr) == 0 &&
               mk::cuda::run_chunked<float>(plan, G, n, n, 100, dv, q.data(), k.data(), v.data(), b.data(), 2,
                                            S.data(), nullptr) == 0 &&
               std::memcmp(a.data(), b.data(), size_t(a.n) * 4) == 0,
           std::string("MK_LINEAR_F32/TC = '") + val + "' changed the F32 form");
  }
}

// The segmented walk (several segments per group: the segments' states by a state pass, their
// exclusive prefix / suffix by the scan, a block per (group, segment, value tile)): the criteria of
// the one-segment walk for 2, 3 and 5 segments (the last partial, a segment of one chunk); the
// entry point's choice (rec_segments: groups x value tiles below the SM count and >= 4 chunks a
// segment) gives the bits of that many segments called directly; too small a scratch is refused.
static void segmented_cases(unsigned& seed) {
  expect(mk::cuda::rec_segments(64, 2, 4096, 132) == 1 && mk::cuda::rec_segments(16, 2, 16384, 132) == 4 &&
             mk::cuda::rec_segments(256, 1, 512, 132) == 1 && mk::cuda::rec_segments(1, 1, 600, 132) == 2 &&
             mk::cuda::rec_segments(1, 1, 100, 132) == 1,
         "rec_segments: the segment counts of the plan");
  for (int mask = 1; mask <= 2; ++mask)
    for (int64_t segs : {2, 3, 5}) {
      recurrent_half_case<mk::cuda::Bf16>(2, 300, 300, 40, 70, mask, seed++, segs);
      recurrent_f32_case(1, 300, 300, 128, 64, mask, seed++, segs);
    }
  // the entry point: 1 group, 600 keys (10 chunks) -> 2 segments of 5 chunks on a 132-SM device
  std::mt19937 rng(seed++);
  std::normal_distribution<double> nd(0.0, 1.0);
  const int64_t G = 1, n = 600, dk = 64, dv = 64;
  Buf<uint16_t> q(G * n * dk), k(G * n * dk), v(G * n * dv), out(G * n * dv);
  for (Buf<uint16_t>* x : {&q, &k, &v})
    for (int64_t i = 0; i < x->n; ++i) (*x)[i] = mk::f32_to_bf16_bits(float(nd(rng)));
  const std::vector<uint16_t> two = run_recurrent_orders<mk::cuda::RecOps<mk::cuda::Bf16>>(
      "segmented BF16 entry", G, n, n, dk, dv, q, k, v, out, 1, 2);
  {
    ScopedEnv env("MK_LINEAR_TC", "recurrent");
    entry_gives("segmented BF16 entry (2 segments)", MK_BF16, G, n, n, dk, dv, q, k, v, 1, two, true);
  }
  // without scratch (or with too little) one segment
  const std::vector<uint16_t> one =
      run_recurrent_orders<mk::cuda::RecOps<mk::cuda::Bf16>>("segmented BF16 one", G, n, n, dk, dv, q, k, v, out, 1, 1);
  Buf<float> small(G * 2 * dk * dv - 1);
  expect(mk::cuda::run_tc_recurrent<mk::cuda::RecOps<mk::cuda::Bf16>>(G, n, n, dk, dv, q.data(), k.data(), v.data(),
                                                                     out.data(), 1, nullptr, small.data(), small.n * 4,
                                                                     2) == mk::KERNEL_UNSUPPORTED,
         "segmented: too small a scratch not refused");
  expect(mk::cuda::run_tc_recurrent<mk::cuda::RecOps<mk::cuda::Bf16>>(G, n, n, dk, dv, q.data(), k.data(), v.data(),
                                                                     out.data(), 1, nullptr, small.data(), small.n * 4,
                                                                     0) == 0 &&
             std::memcmp(out.data(), one.data(), one.size() * 2) == 0,
         "segmented: the automatic choice did not fall back to one segment on too small a scratch");
  {
    ScopedEnv env("MK_LINEAR_TC", "recurrent");
    Buf<uint16_t> o2(G * n * dv);
    expect(mk::cuda::linear_attention(MK_BF16, G, n, n, dk, dv, q.data(), k.data(), v.data(), o2.data(), 1, nullptr,
                                      nullptr) == 0 &&
               std::memcmp(o2.data(), one.data(), one.size() * 2) == 0,
           "segmented: the entry point without scratch did not walk one segment");
  }
}

// The same normal draws (q, then k, then v) in aligned buffers and in twins one element off 16 bytes
// (qs, ks, vs; `as` the twin output), for the unaligned (plain loads) paths
template <class Raw>
struct AlignedTwins {
  Buf<Raw> q, k, v, a, qs, ks, vs, as;
  AlignedTwins(int64_t G, int64_t nq, int64_t nk, int64_t dk, int64_t dv, std::mt19937& rng)
      : q(G * nq * dk), k(G * nk * dk), v(G * nk * dv), a(G * nq * dv), qs(G * nq * dk, 1), ks(G * nk * dk, 1),
        vs(G * nk * dv, 1), as(G * nq * dv, 1) {
    std::normal_distribution<double> nd(0.0, 1.0);
    for (auto [x, y] : {std::pair<Buf<Raw>*, Buf<Raw>*>{&q, &qs}, {&k, &ks}, {&v, &vs}})
      for (int64_t i = 0; i < x->n; ++i) {
        const float f = float(nd(rng));
        if constexpr (std::is_same<Raw, uint16_t>::value)
          (*x)[i] = (*y)[i] = mk::f32_to_bf16_bits(f);
        else
          (*x)[i] = (*y)[i] = f;
      }
  }
};

// Unaligned tensors (a base 2 or 4 bytes off 16): no cp.async, plain loads and stores, the same bits
// as the aligned call (16-bit with dk, dv multiples of 8; F32 x3 multiples of 4).
static void recurrent_alignment_case(unsigned seed) {
  std::mt19937 rng(seed);
  const int64_t G = 2, n = 150, dk = 64, dv = 72;
  {
    AlignedTwins<uint16_t> t(G, n, n, dk, dv, rng);
    Buf<uint16_t>&q = t.q, &k = t.k, &v = t.v, &a = t.a, &qs = t.qs, &ks = t.ks, &vs = t.vs, &as = t.as;
    using R = mk::cuda::RecOps<mk::cuda::Bf16>;
    expect(mk::cuda::run_tc_recurrent<R>(G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 1, nullptr) == 0 &&
               mk::cuda::run_tc_recurrent<R>(G, n, n, dk, dv, qs.data(), ks.data(), vs.data(), as.data(), 1,
                                             nullptr) == 0,
           "recurrent BF16 alignment case failed");
    expect(as.guards_intact() && std::memcmp(a.data(), as.data(), size_t(a.n) * 2) == 0,
           "recurrent BF16: unaligned tensors gave other bits than aligned ones");
  }
  {
    AlignedTwins<float> t(G, n, n, dk, dv, rng);
    Buf<float>&q = t.q, &k = t.k, &v = t.v, &a = t.a, &qs = t.qs, &ks = t.ks, &vs = t.vs, &as = t.as;
    using X3 = mk::cuda::RecOpsF32<3>;
    expect(mk::cuda::run_tc_recurrent<X3>(G, n, n, dk, dv, q.data(), k.data(), v.data(), a.data(), 2, nullptr) == 0 &&
               mk::cuda::run_tc_recurrent<X3>(G, n, n, dk, dv, qs.data(), ks.data(), vs.data(), as.data(), 2,
                                              nullptr) == 0,
           "recurrent x3 alignment case failed");
    expect(as.guards_intact() && std::memcmp(a.data(), as.data(), size_t(a.n) * 4) == 0,
           "recurrent x3: unaligned tensors gave other bits than aligned ones");
  }
}

// The state form of unmasked products (run_tc_state_form: the key segments' states, then blocks of
// 256 query rows summing them and streaming Q): the criteria of the walk for nq != nk, one query row,
// one key, odd widths, dk over 64, 16-bit value tiles of 128 (dv over 64, a partial second tile),
// several query blocks, 1, 2, 3 and 5 key segments (the last partial, one of a single chunk); the
// entry point's own choice of segments (rec_state_segments: 2 for one group of 600 keys); too small
// a scratch refused and the entry point then running the chunked form; unaligned tensors (plain
// loads) giving the aligned call's bits.
static void state_form_cases(unsigned& seed) {
  expect(mk::cuda::rec_state_segments(64, 2, 4096, 132) == 4 && mk::cuda::rec_state_segments(16, 2, 16384, 132) == 16 &&
             mk::cuda::rec_state_segments(1, 1, 600, 132) == 2 &&
             mk::cuda::rec_state_segments(300, 1, 4096, 132) == 1 && mk::cuda::rec_state_segments(1, 1, 100, 132) == 1,
         "rec_state_segments: the segment counts of the plan");
  struct Shape {
    int64_t G, nq, nk, dk, dv, segs;
  };
  const Shape shapes[] = {{2, 37, 150, 20, 12, 1},   {1, 1, 5, 16, 8, 1},       {2, 64, 64, 64, 64, 1},
                          {1, 300, 70, 128, 130, 1}, {2, 130, 400, 100, 72, 2}, {1, 513, 257, 33, 200, 3},
                          {1, 90, 300, 64, 64, 5},   {1, 600, 600, 64, 64, 2}};
  for (const Shape& x : shapes) {
    recurrent_half_case<mk::cuda::Bf16>(x.G, x.nq, x.nk, x.dk, x.dv, 0, seed++, x.segs);
    recurrent_half_case<mk::cuda::Fp16>(x.G, x.nq, x.nk, x.dk, x.dv, 0, seed++, x.segs);
    recurrent_f32_case(x.G, x.nq, x.nk, x.dk, x.dv, 0, seed++, x.segs);
  }
  // too small a scratch for the entry point's segments: fewer; for one state per group: the chunked form
  std::mt19937 rng(seed++);
  const int64_t G = 2, nq = 150, nk = 150, dk = 64, dv = 72;
  AlignedTwins<uint16_t> t(G, nq, nk, dk, dv, rng);
  Buf<uint16_t>&q = t.q, &k = t.k, &v = t.v, &a = t.a, &qs = t.qs, &ks = t.ks, &vs = t.vs, &as = t.as;
  Buf<uint16_t> b(G * nq * dv);
  using R = mk::cuda::RecOps<mk::cuda::Bf16>;
  Buf<float> S(mk::cuda::rec_state_form_scratch(G, dk, dv, 3, 2) / 4), small(G * dk * dv - 1);
  expect(mk::cuda::run_tc_recurrent<R>(G, nq, nk, dk, dv, q.data(), k.data(), v.data(), a.data(), 0, nullptr, S.data(),
                                       S.n * 4, 3) == 0 &&
             mk::cuda::run_tc_recurrent<R>(G, nq, nk, dk, dv, qs.data(), ks.data(), vs.data(), as.data(), 0, nullptr,
                                           S.data(), S.n * 4, 3) == 0,
         "state form BF16 alignment case failed");
  expect(as.guards_intact() && std::memcmp(a.data(), as.data(), size_t(a.n) * 2) == 0,
         "state form BF16: unaligned tensors gave other bits than aligned ones");
  expect(mk::cuda::run_tc_recurrent<R>(G, nq, nk, dk, dv, q.data(), k.data(), v.data(), b.data(), 0, nullptr, S.data(),
                                       S.n * 4 - 4, 3) == mk::KERNEL_UNSUPPORTED,
         "state form: 3 segments in too small a scratch (the states and all but 4 bytes of the total) not refused");
  // the apply pass's value tiles (64 or 128 columns) change no bit: the same sums per output
  expect(mk::cuda::run_tc_state_form<R>(G, nq, nk, dk, dv, q.data(), k.data(), v.data(), b.data(), nullptr, S.data(),
                                        S.n * 4, 3, 64) == 0 &&
             std::memcmp(a.data(), b.data(), size_t(a.n) * 2) == 0,
         "state form BF16: apply tiles of 64 columns gave other bits than 128");
  {
    F32Inputs in(G, nq, nk, dk, 130, seed++);
    Buf<float> x(G * nq * 130), y(G * nq * 130), S2(mk::cuda::rec_state_form_scratch(G, dk, 130, 2, 4) / 4);
    for (int terms : {1, 3}) {
      auto run = [&](Buf<float>& o, int cols) {
        return terms == 1 ? mk::cuda::run_tc_state_form<mk::cuda::RecOpsF32<1>>(G, nq, nk, dk, 130, in.q.data(),
                                                                                in.k.data(), in.v.data(), o.data(),
                                                                                nullptr, S2.data(), S2.n * 4, 2, cols)
                          : mk::cuda::run_tc_state_form<mk::cuda::RecOpsF32<3>>(G, nq, nk, dk, 130, in.q.data(),
                                                                                in.k.data(), in.v.data(), o.data(),
                                                                                nullptr, S2.data(), S2.n * 4, 2, cols);
      };
      expect(
          run(x, 0) == 0 && run(y, 128) == 0 && x.guards_intact() && y.guards_intact() &&
              std::memcmp(x.data(), y.data(), size_t(x.n) * 4) == 0,
          std::string("state form ") + (terms == 1 ? "TF32" : "x3") + ": apply tiles of 128 columns gave other bits");
      expect(run(y, 96) == mk::KERNEL_UNSUPPORTED, "state form: apply tiles of 96 columns not refused");
    }
  }
  {
    const int64_t launches = emu::config().launches;
    expect(mk::cuda::run_tc_recurrent<R>(G, nq, nk, dk, dv, q.data(), k.data(), v.data(), b.data(), 0, nullptr,
                                         small.data(), small.n * 4, 0) == mk::KERNEL_UNSUPPORTED &&
               emu::config().launches == launches,
           "state form: a scratch under one state per group not refused before launching");
    ScopedEnv env("MK_LINEAR_TC", "recurrent");  // the entry point without scratch: the sequential form
    const mk::cuda::ChunkPlan plan = mk::cuda::chunk_plan(MK_F32, G, nk, dk, dv, 0);
    expect(mk::cuda::linear_attention(MK_BF16, G, nq, nk, dk, dv, q.data(), k.data(), v.data(), a.data(), 0, nullptr,
                                      nullptr) == 0 &&
               mk::cuda::run_sequential<mk::cuda::Bf16>(G, nq, nk, dk, dv, q.data(), k.data(), v.data(), b.data(), 0,
                                                        nullptr) == 0 &&
               std::memcmp(a.data(), b.data(), size_t(a.n) * 2) == 0 && plan.bytes >= G * dk * dv * 4,
           "state form: the entry point without scratch did not run the sequential form");
  }
}

static void recurrents(unsigned& seed) {
  struct Shape {
    int64_t G, n, dk, dv;
  };
  // one row; odd widths (scalar loads and stores); one chunk exactly; several chunks, the last
  // partial; dk over 64 (the 128-wide tiles) and dk = 128; value tiles over 64 (several blocks)
  const Shape shapes[] = {{2, 1, 16, 8},    {2, 37, 3, 5},    {1, 64, 64, 64},  {2, 130, 70, 70},
                          {1, 200, 128, 130}, {2, 192, 128, 64}, {1, 100, 32, 128}};
  for (const Shape& s : shapes)
    for (int mask = 1; mask <= 2; ++mask) {
      recurrent_half_case<mk::cuda::Bf16>(s.G, s.n, s.n, s.dk, s.dv, mask, seed++);
      recurrent_half_case<mk::cuda::Fp16>(s.G, s.n, s.n, s.dk, s.dv, mask, seed++);
      recurrent_f32_case(s.G, s.n, s.n, s.dk, s.dv, mask, seed++);
    }
  recurrent_refusal_cases(seed++);
  recurrent_alignment_case(seed++);
  segmented_cases(seed);
  state_form_cases(seed);
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
    for (int64_t n : {1, 2, 16, 17, 32})  // around the CUDA kernel's batches of 16 loads
      momentum_case<float>(2, n, 5, 0.8, r, seed++);
  }
  const int64_t f32_checks = g_checks;
  printf("BF16 / F16 (errors: max |x - ref| / max |ref|):\n");
  {
    const std::vector<int> all = g_orders;
    g_orders = {all[0], 2};  // 16-bit: the first order and shuffled
    halves<mk::cuda::Bf16>(seed);
    halves<mk::cuda::Fp16>(seed);
    g_orders = all;
  }
  printf("16-bit: %lld checks; worst error / naive composition error %.3f (criterion <= 2)\n",
         (long long)(g_checks - f32_checks), g_worst_half);
  const int64_t half_checks = g_checks;
  printf("TF32 (MK_LINEAR_MASK_TF32; errors: max |x - ref| / max |ref|, ref the float64 product of the F32 inputs):\n");
  {
    const std::vector<int> all = g_orders;
    g_orders = {all[0], 2};
    tf32s(seed);
    g_orders = all;
  }
  printf("TF32: %lld checks; worst error / naive TF32 composition error %.3f (criterion <= 2)\n",
         (long long)(g_checks - half_checks), g_worst_tf32);
  printf("unmasked plan (long state chunks without a mask):\n");
  {
    const std::vector<int> all = g_orders;
    g_orders = {all[0], 2};
    unmasked_plan_cases(seed);
    g_orders = all;
  }
  printf("masked tensor-core plan (state chunks of 256 keys):\n");
  {
    const std::vector<int> all = g_orders;
    g_orders = {all[0], 2};
    masked_tc_plan_cases(seed);
    g_orders = all;
  }
  printf("recurrent form (MK_LINEAR_TC=recurrent, MK_LINEAR_F32=x3):\n");
  {
    const int64_t before = g_checks;
    const std::vector<int> all = g_orders;
    g_orders = {all[0], 2};
    recurrents(seed);
    g_orders = all;
    printf("recurrent: %lld checks; worst error / naive: 16-bit %.3f, TF32 %.3f (criterion <= 2); x3 worst err / F32 "
           "bound %.3g (<= 1), x3 error %.3g against the SIMT F32 form's %.3g\n",
           (long long)(g_checks - before), g_worst_rec_half, g_worst_rec_tf32, g_worst_x3, g_x3_err, g_simt_err);
  }
  printf("linear_attention_emu_test: %d checks, %d failures (%lld launches, %lld blocks)\n", g_checks, g_failures,
         (long long)emu::config().launches, (long long)emu::config().blocks);
  return g_failures ? 1 : 0;
}
