// kernels/cuda/infonce.cu (the fused InfoNCE rows) run on the host by the emulator in cuda_runtime.h,
// against the CPU twin (kernels/cpu/infonce.cpp, the library's own objects) and a long-double loop,
// F32 and F64: with and without a mask (the diagonal otherwise), with and without log-weights
// (some −inf: dropped negatives), on shapes from one element to rows longer than a block's stride,
// plus the edge rows (a row with no positive: +inf loss, zero positive part in the gradient; a NaN:
// NaN; positives ~100 (F32) / ~1000 (F64) below the negatives: the CPU's exponentials unshared). The forward must match the loop to a few ulp of T (sums in double on both sides, another
// order and another exp), the twin likewise; the backward likewise, every gradient (both, either).
// Each call twice gives the same bits (deterministic). Outputs sit between NaN guards that must stay
// untouched; the threads run in forward, reverse and shuffled order.
//   infonce_emu_test [order]     order: 0 forward, 1 reverse, 2 shuffled threads (default: all three)
#include <omp.h>
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "infonce.cu"

namespace mk {
namespace cuda {
alignas(16) unsigned char mk_infonce_smem[256 * 1024 + 4096];  // the emulator clears its whole capacity
}  // namespace cuda
}  // namespace mk
inline unsigned char* emu::smem() { return mk::cuda::mk_infonce_smem; }

#include "emu_check.h"  // expect, guarded Buf, same_bits, tname

template <class T>
static bool close(T got, long double want, double tol) {
  if (std::isnan((long double)got) || std::isnan(want)) return std::isnan((long double)got) && std::isnan(want);
  if (std::isinf((long double)got) || std::isinf(want)) return (long double)got == want;
  return std::fabs((long double)got - want) <= tol * (1 + std::fabs(want));
}

// The reference in long double: loss, lse_all, lse_pos of row r, and the gradients for g.
struct Ref {
  std::vector<long double> loss, la, lp, gs, gw;
};

template <class T>
static Ref reference(int64_t rows, int64_t cols, const std::vector<T>& s, const std::vector<T>* pos,
                     const std::vector<T>* w, const std::vector<T>& g) {
  Ref out;
  const long double inf = std::numeric_limits<long double>::infinity();
  out.gs.assign(size_t(rows * cols), 0);
  out.gw.assign(size_t(rows * cols), 0);
  for (int64_t r = 0; r < rows; ++r) {
    auto is_pos = [&](int64_t j) { return pos ? (*pos)[size_t(r * cols + j)] != T(0) : j == r; };
    auto u = [&](int64_t j) {
      const long double v = s[size_t(r * cols + j)];
      return is_pos(j) || !w ? v : v + (long double)(*w)[size_t(r * cols + j)];
    };
    long double ma = -inf, mp = -inf;
    bool nan = false, nan_p = false;
    for (int64_t j = 0; j < cols; ++j) {
      if (std::isnan(u(j))) nan = true;
      if (is_pos(j) && std::isnan((long double)s[size_t(r * cols + j)])) nan_p = true;
      ma = std::max(ma, u(j));
      if (is_pos(j)) mp = std::max(mp, (long double)s[size_t(r * cols + j)]);
    }
    long double sa = 0, sp = 0;
    for (int64_t j = 0; j < cols; ++j) {
      if (ma > -inf) sa += std::exp(u(j) - ma);
      if (is_pos(j) && mp > -inf) sp += std::exp((long double)s[size_t(r * cols + j)] - mp);
    }
    const long double la = nan ? NAN : (ma > -inf ? ma + std::log(sa) : -inf);
    const long double lp = nan_p ? NAN : (mp > -inf ? mp + std::log(sp) : -inf);
    out.la.push_back(la);
    out.lp.push_back(lp);
    out.loss.push_back(la - lp);
    for (int64_t j = 0; j < cols; ++j) {
      const long double a = std::isnan(la) ? NAN : (la > -inf ? g[size_t(r)] * std::exp(u(j) - la) : 0);
      const long double p = !is_pos(j) ? 0
                            : std::isnan(lp) ? NAN
                            : lp > -inf ? g[size_t(r)] * std::exp(s[size_t(r * cols + j)] - lp)
                                        : 0;
      out.gs[size_t(r * cols + j)] = a - p;
      out.gw[size_t(r * cols + j)] = is_pos(j) ? 0 : a;
    }
  }
  return out;
}

template <class T>
static void infonce_case(int64_t rows, int64_t cols, bool mask, bool weights, int edge, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const double tol = sizeof(T) == 4 ? 2e-6 : 1e-13;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-4, 4), coin(0, 1);
  const int64_t n = rows * cols;
  std::vector<T> s(static_cast<size_t>(n)), pm(static_cast<size_t>(n)), w(static_cast<size_t>(n)),
      g(static_cast<size_t>(rows));
  for (auto& v : s) v = T(u(rng));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) pm[size_t(r * cols + j)] = coin(rng) < 0.2 ? T(1) : T(0);
    pm[size_t(r * cols + (r % cols))] = T(1);  // at least one positive
  }
  for (auto& v : w) v = coin(rng) < 0.1 ? -std::numeric_limits<T>::infinity() : T(u(rng) * 0.5);
  for (auto& v : g) v = T(u(rng));
  if (edge == 1 && mask) {  // row 0 without a positive
    for (int64_t j = 0; j < cols; ++j) pm[size_t(j)] = T(0);
  }
  if (edge == 2) s[size_t(n / 2)] = std::numeric_limits<T>::quiet_NaN();
  if (edge == 3) {  // row 0's positives far below its negatives: the CPU's unshared path (share_limit)
    const T low = sizeof(T) == 4 ? T(-100) : T(-1000);
    for (int64_t j = 0; j < cols; ++j)
      if (mask ? pm[size_t(j)] != T(0) : j == 0) s[size_t(j)] = low + T(j % 3);
  }
  const Ref ref = reference<T>(rows, cols, s, mask ? &pm : nullptr, weights ? &w : nullptr, g);
  Buf<T> bs(n), bp(n), bw(n), bg(rows);
  std::memcpy(bs.data(), s.data(), size_t(n) * sizeof(T));
  std::memcpy(bp.data(), pm.data(), size_t(n) * sizeof(T));
  std::memcpy(bw.data(), w.data(), size_t(n) * sizeof(T));
  std::memcpy(bg.data(), g.data(), size_t(rows) * sizeof(T));
  const T* P = mask ? bp.data() : nullptr;
  const T* W = weights ? bw.data() : nullptr;
  char what[200];
  snprintf(what, sizeof what, "infonce %s [%lld, %lld] mask %d weights %d edge %d", tname<T>(), (long long)rows,
           (long long)cols, int(mask), int(weights), edge);
  Buf<T> lg(rows), lc(rows), lg2(rows), sg(2 * rows), sc(2 * rows), sg2(2 * rows);
  expect(mk::cuda::infonce_forward(dtype, rows, cols, bs.data(), P, W, lg.data(), sg.data(), nullptr) == 0 &&
             mk::cuda::infonce_forward(dtype, rows, cols, bs.data(), P, W, lg2.data(), sg2.data(), nullptr) == 0 &&
             mk::cpu::infonce_forward(dtype, rows, cols, bs.data(), P, W, lc.data(), sc.data(), nullptr) == 0,
         std::string(what) + ": forward status");
  expect(lg.guards_intact() && lc.guards_intact() && sg.guards_intact() && sc.guards_intact(),
         std::string(what) + ": forward guards");
  int bad = 0, unstable = 0;
  for (int64_t r = 0; r < rows; ++r) {
    bad += !close(lg[r], ref.loss[size_t(r)], tol) || !close(lc[r], ref.loss[size_t(r)], tol);
    bad += !close(sg[2 * r], ref.la[size_t(r)], tol) || !close(sg[2 * r + 1], ref.lp[size_t(r)], tol);
    bad += !close(sc[2 * r], ref.la[size_t(r)], tol) || !close(sc[2 * r + 1], ref.lp[size_t(r)], tol);
    unstable += !same_bits(lg[r], lg2[r]) || !same_bits(sg[2 * r], sg2[2 * r]);
  }
  expect(bad == 0, std::string(what) + ": forward against the loop, " + std::to_string(bad) + " off");
  expect(unstable == 0, std::string(what) + ": forward twice, same bits");
  // the backward from the twin's statistics on both sides (one input, two kernels)
  for (int mode = 0; mode < 3; ++mode) {  // 0 both gradients, 1 grad_s only, 2 grad_logw only
    if (mode == 2 && !weights) continue;
    Buf<T> gsg(n), gsc(n), gwg(n), gwc(n);
    T* GSg = mode != 2 ? gsg.data() : nullptr;
    T* GSc = mode != 2 ? gsc.data() : nullptr;
    T* GWg = weights && mode != 1 ? gwg.data() : nullptr;
    T* GWc = weights && mode != 1 ? gwc.data() : nullptr;
    const std::string wm = std::string(what) + " mode " + std::to_string(mode);
    expect(mk::cuda::infonce_backward(dtype, rows, cols, bs.data(), P, W, sc.data(), bg.data(), GSg, GWg, nullptr) ==
                   0 &&
               mk::cpu::infonce_backward(dtype, rows, cols, bs.data(), P, W, sc.data(), bg.data(), GSc, GWc,
                                         nullptr) == 0,
           wm + ": backward status");
    expect(gsg.guards_intact() && gsc.guards_intact() && gwg.guards_intact() && gwc.guards_intact(),
           wm + ": backward guards");
    int off = 0, untouched = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (GSg) off += !close(gsg[i], ref.gs[size_t(i)], 4 * tol) || !close(gsc[i], ref.gs[size_t(i)], 4 * tol);
      if (GWg) off += !close(gwg[i], ref.gw[size_t(i)], 4 * tol) || !close(gwc[i], ref.gw[size_t(i)], 4 * tol);
      // what was not asked for stays as allocated (the guard value inside the buffer)
      if (!GSg) untouched += !std::isnan((double)gsg[i]) || !std::isnan((double)gsc[i]);
      if (!GWg) untouched += !std::isnan((double)gwg[i]) || !std::isnan((double)gwc[i]);
    }
    expect(off == 0, wm + ": backward against the loop, " + std::to_string(off) + " off");
    expect(untouched == 0, wm + ": outputs not asked for left alone");
  }
}

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  std::vector<int> orders = {0, 1, 2};
  if (argc > 1) orders = {atoi(argv[1])};
  const int64_t shapes[][2] = {{1, 1}, {1, 7}, {3, 5}, {5, 5}, {8, 300}, {33, 257}, {2, 600}};
  for (int order : orders) {
    emu::config().order = order;
    unsigned seed = 7;
    for (const auto& sh : shapes)
      for (bool mask : {false, true})
        for (bool weights : {false, true}) {
          if (!mask && sh[0] > sh[1]) continue;
          infonce_case<float>(sh[0], sh[1], mask, weights, 0, ++seed);
          infonce_case<double>(sh[0], sh[1], mask, weights, 0, ++seed);
        }
    infonce_case<float>(4, 9, true, true, 1, ++seed);   // a row without a positive
    infonce_case<double>(4, 9, true, false, 1, ++seed);
    infonce_case<float>(3, 40, true, true, 3, ++seed);  // positives far below: no shared exponentials
    infonce_case<double>(3, 40, true, false, 3, ++seed);
    infonce_case<float>(5, 20, false, true, 3, ++seed);
    infonce_case<double>(5, 20, false, false, 3, ++seed);
    infonce_case<float>(4, 9, true, true, 2, ++seed);   // a NaN logit
    infonce_case<double>(6, 6, false, false, 2, ++seed);
  }
  // a 16-bit dtype is refused by both
  expect(mk::cuda::infonce_forward(MK_BF16, 1, 1, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) != 0 &&
             mk::cpu::infonce_forward(MK_BF16, 1, 1, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) != 0,
         "BF16 refused");
  printf("infonce_emu_test: %d checks, %d failures (%lld launches, %lld blocks)\n", g_checks, g_failures,
         (long long)emu::config().launches, (long long)emu::config().blocks);
  return g_failures ? 1 : 0;
}
