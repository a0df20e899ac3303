// What the SIMT v2 attention emulator tests (attention_simt2_emu_test.cpp: forward and backward;
// attention_simt2_dd_emu_test.cpp: double backward) share: the emulated shared memory, failure
// counting, NaN-guarded 16-byte-aligned buffers, the relative comparison against the CPU twin, the
// test shapes (Case) with their random inputs and parameter block (Simt2Inputs: q, k, v, dO, a
// bias broadcast with optional -inf entries, key lengths; the CPU twin's forward for out and lse)
// and the emulated device limits. Include it after the .cu files under test (which bring in the
// emulator's cuda_runtime.h and the CPU twin's declarations).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace mk {
namespace cuda {
namespace {
alignas(16) unsigned char mk_attention_smem[256 * 1024 + 4096];
}  // namespace
}  // namespace cuda
}  // namespace mk
inline unsigned char* emu::smem() { return mk::cuda::mk_attention_smem; }

using mk::AttentionParams;

static int g_failures = 0, g_checks = 0, g_v2_runs = 0, g_v1_fallbacks = 0;
static double g_worst[2] = {0, 0};

template <class T>
struct Buf {
  static constexpr int64_t kGuard = 64;  // elements of NaN on both sides (16-byte aligned data)
  std::vector<T> raw;
  int64_t n = 0;
  bool present = false;
  Buf() = default;
  explicit Buf(int64_t n_, bool p = true) : n(n_), present(p) {
    raw.assign(size_t(n + 2 * kGuard + 4), std::numeric_limits<T>::quiet_NaN());
  }
  T* base() { return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(raw.data()) + 15) & ~uintptr_t(15)); }
  const T* base() const { return const_cast<Buf*>(this)->base(); }
  T* data() { return present ? base() + kGuard : nullptr; }
  const T* cdata() const { return present ? base() + kGuard : nullptr; }
  T& operator[](int64_t i) { return base()[kGuard + i]; }
  const T& operator[](int64_t i) const { return base()[kGuard + i]; }
  void fill(T v) {
    for (int64_t i = 0; i < n; ++i) (*this)[i] = v;
  }
  void randn(std::mt19937_64& g, double sc = 1.0) {
    std::normal_distribution<double> nd(0.0, sc);
    for (int64_t i = 0; i < n; ++i) (*this)[i] = T(nd(g));
  }
  bool guards_ok() const {
    for (int64_t i = 0; i < kGuard; ++i)
      if (!std::isnan(base()[i]) || !std::isnan(base()[kGuard + n + i])) return false;
    return true;
  }
  bool same(const Buf& o) const { return n == o.n && std::memcmp(cdata(), o.cdata(), size_t(n) * sizeof(T)) == 0; }
};

// max |got - ref| / max |ref| over the finite entries (infinities must match exactly, NaN fails)
// within tol; the worst ratio per precision goes to g_worst.
template <class T>
void compare(const char* what, const std::string& cs, const Buf<T>& got, const Buf<T>& ref, double tol) {
  if (!got.present) return;
  ++g_checks;
  if (!got.guards_ok()) {
    printf("FAIL %s %s: guard overwritten\n", cs.c_str(), what);
    ++g_failures;
    return;
  }
  double scale = 0, err = 0;
  int64_t bad = -1;
  for (int64_t i = 0; i < ref.n; ++i)
    if (std::isfinite(double(ref[i]))) scale = std::max(scale, std::fabs(double(ref[i])));
  for (int64_t i = 0; i < ref.n; ++i) {
    const double a = got[i], b = ref[i];
    if (std::isnan(a) || std::isnan(b)) {
      if (bad < 0) bad = i;
      err = INFINITY;
      continue;
    }
    if (std::isinf(a) || std::isinf(b)) {
      if (a != b) {
        if (bad < 0) bad = i;
        err = INFINITY;
      }
      continue;
    }
    const double e = std::fabs(a - b);
    if (e > err) {
      err = e;
      if (e > tol * std::max(scale, 1e-30)) bad = bad < 0 ? i : bad;
    }
  }
  const double rel = err / std::max(scale, 1e-30);
  g_worst[sizeof(T) == 8] = std::max(g_worst[sizeof(T) == 8], std::isfinite(rel) ? rel : 1e300);
  if (!(rel <= tol)) {
    ++g_failures;
    printf("FAIL %s %s: rel err %.3g (scale %.3g), first bad %lld: got %.10g want %.10g\n", cs.c_str(), what, rel,
           scale, (long long)bad, bad >= 0 ? double(got[bad]) : 0.0, bad >= 0 ? double(ref[bad]) : 0.0);
  }
}

struct Case {
  int64_t b, h, hkv, nq, nk, d, dv;
  bool causal;
  const char* bias;              // "none", "BH", "1H", "B1", "11"; a suffix "-inf" sets some entries to -inf
  std::vector<int64_t> lengths;  // empty: none
  unsigned second = 0;           // (double backward) present second inputs: 1 gq, 2 gk, 4 gv, 8 gbias (with a bias)
  bool top_left = false;         // causal mask top-left aligned (MK_ATTENTION_TOP_LEFT)
};

bool bias_masked(int64_t i, int64_t j, int64_t nk) { return i % 7 == 3 || (i % 5 == 1 && j < nk - 3) || j % 11 == 4; }

void fail(const std::string& cs, const char* what) {
  printf("FAIL %s: %s\n", cs.c_str(), what);
  ++g_failures;
}

// The inputs of one case, drawn from one generator (g, seeded by the case's seed): q, k, v, then dO
// (when dout_after_v; else the caller draws dO from g when it wants it), then the bias (scale 0.7,
// -inf entries where bias_masked with the "-inf" suffix); p holds them with the key lengths, scale
// 1.3 / sqrt(D) and the causal flag, outputs unset. Not copyable: p points into the buffers.
template <class T>
struct Simt2Inputs {
  std::string name;
  std::mt19937_64 g;
  int64_t rows;
  bool has_bias;
  Buf<T> q, k, v, dout, bias;
  std::vector<int64_t> lens;
  AttentionParams p{};
  std::vector<unsigned char> ws_cpu;  // the CPU twin's workspace

  Simt2Inputs(const Case& c, uint64_t seed, bool dout_after_v, bool name_second)
      : g(seed),
        rows(c.b * c.h * c.nq),
        has_bias(std::string(c.bias) != "none"),
        q(c.b * c.h * c.nq * c.d),
        k(c.b * c.hkv * c.nk * c.d),
        v(c.b * c.hkv * c.nk * c.dv),
        dout(c.b * c.h * c.nq * c.dv),
        lens(c.lengths) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s b%lld h%lld/%lld nq%lld nk%lld d%lld dv%lld %s bias=%s len=%s",
             sizeof(T) == 4 ? "F32" : "F64", (long long)c.b, (long long)c.h, (long long)c.hkv, (long long)c.nq,
             (long long)c.nk, (long long)c.d, (long long)c.dv, !c.causal ? "full" : c.top_left ? "causal-tl" : "causal", c.bias,
             c.lengths.empty() ? "-" : "yes");
    name = buf;
    if (name_second) name += " second=" + std::to_string(c.second);
    const int64_t B = c.b, H = c.h, Nq = c.nq, Nk = c.nk;
    q.randn(g);
    k.randn(g);
    v.randn(g);
    if (dout_after_v) dout.randn(g);
    const int64_t bb = has_bias && c.bias[0] == 'B' ? B : 1, bh = has_bias && c.bias[1] == 'H' ? H : 1;
    bias = Buf<T>(bb * bh * Nq * Nk, has_bias);
    if (has_bias) bias.randn(g, 0.7);
    if (std::strstr(c.bias, "-inf"))
      for (int64_t at = 0; at < bias.n; ++at)
        if (bias_masked(at / Nk % Nq, at % Nk, Nk)) bias[at] = -std::numeric_limits<T>::infinity();
    p.dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
    p.batch = B;
    p.heads = H;
    p.kv_heads = c.hkv;
    p.nq = Nq;
    p.nk = Nk;
    p.d = c.d;
    p.dv = c.dv;
    p.q = q.cdata();
    p.k = k.cdata();
    p.v = v.cdata();
    p.bias = bias.cdata();
    p.bias_bs = bb > 1 ? bh * Nq * Nk : 0;
    p.bias_hs = bh > 1 ? Nq * Nk : 0;
    p.key_lengths = lens.empty() ? nullptr : lens.data();
    p.scale = 1.0 / std::sqrt(double(c.d)) * 1.3;
    p.causal = c.causal;
    p.top_left = c.top_left;
    ws_cpu.resize(size_t(mk::cpu::attention_workspace(p, omp_get_max_threads())) + 64);
  }
  Simt2Inputs(const Simt2Inputs&) = delete;
  Simt2Inputs& operator=(const Simt2Inputs&) = delete;

  // the CPU twin's forward: out (rows x Dv) and lse (rows)
  void cpu_forward(Buf<T>& out, Buf<T>& lse) {
    AttentionParams a = p;
    a.workspace = ws_cpu.data();
    a.out = out.data();
    a.lse = lse.data();
    mk::cpu::attention_forward(a, nullptr);
  }
};

// The emulator's thread order and device limits from the command line: [order] [limits], order 0
// forward, 1 reverse, 2 shuffled threads; limits 0 H100, 1 A100, 2 sm_86, 3 48 KB of shared memory.
inline void emu_setup(int argc, char** argv, int& order, int& limits) {
  order = argc > 1 ? atoi(argv[1]) : 0;
  limits = argc > 2 ? atoi(argv[2]) : 0;
  emu::config().order = order;
  const int opt[4][2] = {{232448, 233472}, {166912, 167936}, {101376, 102400}, {49152, 65536}};
  emu::config().optin = opt[limits][0];
  emu::config().per_sm = opt[limits][1];
}
