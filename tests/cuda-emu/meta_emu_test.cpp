// kernels/cuda/meta.cu (the fused optimizer steps) run on the host by the emulator in
// cuda_runtime.h, against the CPU twin (kernels/cpu/meta.cpp, the oracle): forward and backward
// of SGD, momentum, Nesterov, Adam and AdamW in F32 and F64; hyperparameters as constants, one-value
// tensors and per-element tensors; absent cotangents and unwanted outputs; 16-byte-aligned arrays
// (the vector path) and arrays one element off (the scalar path); n from 0 to past a grid-stride
// round. Every buffer has NaN guards on both sides (no write outside); the backward is run in the
// given fiber order and must give the same bits as in forward order (fixed reduction order).
//   meta_emu_test [order]     order: 0 forward, 1 reverse, 2 shuffled threads
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros
#include <omp.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "meta.cu"

namespace mk {
namespace cuda {
alignas(16) unsigned char mk_meta_smem[256 * 1024 + 4096];  // emu::config().smem_capacity (+ canary)
}  // namespace cuda
}  // namespace mk
inline unsigned char* emu::smem() { return mk::cuda::mk_meta_smem; }

using mk::MetaStepParams;

static int g_failures = 0, g_cases = 0;
static double g_worst[2] = {0, 0};

// n elements starting `shift` elements past a 64-byte boundary, NaN guards around them.
template <class T>
struct Buf {
  static constexpr int64_t kGuard = 32;
  std::vector<T> raw;
  int64_t n = 0, shift = 0;
  bool present = false;
  Buf(int64_t n_, bool p, int64_t shift_) : n(n_), shift(shift_), present(p) {
    raw.assign(size_t(n + 2 * kGuard + 16), std::numeric_limits<T>::quiet_NaN());
  }
  T* base() {
    uintptr_t a = reinterpret_cast<uintptr_t>(raw.data() + kGuard);
    a = (a + 63) / 64 * 64;
    return reinterpret_cast<T*>(a) + shift;
  }
  T* data() { return present ? base() : nullptr; }
  T& operator[](int64_t i) { return base()[i]; }
  void fill(T v) { for (int64_t i = 0; i < n; ++i) (*this)[i] = v; }
  void randn(std::mt19937_64& g, double mean, double sd) {
    std::normal_distribution<double> d(mean, sd);
    for (int64_t i = 0; i < n; ++i) (*this)[i] = T(d(g));
  }
  void uniform(std::mt19937_64& g, double lo, double hi) {
    std::uniform_real_distribution<double> d(lo, hi);
    for (int64_t i = 0; i < n; ++i) (*this)[i] = T(d(g));
  }
  bool guards_ok() {
    T* b = base();
    for (T* q = raw.data(); q < b; ++q) if (!std::isnan(double(*q))) return false;
    for (T* q = b + n; q < raw.data() + raw.size(); ++q) if (!std::isnan(double(*q))) return false;
    return true;
  }
};

// |got - want| <= tol * scale elementwise, scale: the largest |want| (at least 1e-30) or `scale`.
template <class T>
void compare(const std::string& cs, const char* what, Buf<T>& got, Buf<T>& want, int64_t n, double tol,
             double scale = 0) {
  if (!got.present) return;
  if (!got.guards_ok()) { printf("FAIL %s %s: guard overwritten\n", cs.c_str(), what); ++g_failures; return; }
  if (scale == 0) for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(double(want[i])));
  scale = std::max(scale, 1e-30);
  double err = 0;
  int64_t bad = -1;
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::fabs(double(got[i]) - double(want[i]));
    if (!(e <= tol * scale) && bad < 0) bad = i;
    if (!(e <= err)) err = e;  // NaN propagates
  }
  g_worst[sizeof(T) == 8] = std::max(g_worst[sizeof(T) == 8], err / scale);
  if (bad >= 0) {
    ++g_failures;
    printf("FAIL %s %s: rel err %.3g, first bad %lld: got %.10g want %.10g\n", cs.c_str(), what, err / scale,
           (long long)bad, double(got[bad]), double(want[bad]));
  }
}

enum Opt { kSgd, kMomentum, kNesterov, kAdam, kAdamW };
const char* const kOptNames[] = {"sgd", "momentum", "nesterov", "adam", "adamw"};
// How the hyperparameters are held: 0 constants, 1 one-value tensors, 2 per-element tensors
// (lr, momentum, weight decay; Adam's betas and eps stay one value).
const char* const kFormNames[] = {"constant", "one-value", "per-element"};

template <class T>
void run_case(Opt opt, int form, int64_t n, int64_t shift, unsigned mask, uint64_t seed) {
  ++g_cases;
  char name[160];
  snprintf(name, sizeof name, "%s %s %s n=%lld shift=%lld mask=%x", sizeof(T) == 4 ? "F32" : "F64", kOptNames[opt],
           kFormNames[form], (long long)n, (long long)shift, mask);
  const std::string cs = name;
  const double tol = sizeof(T) == 4 ? 2e-6 : 1e-13;
  const bool adam = opt >= kAdam, buf = opt == kMomentum || opt == kNesterov;
  std::mt19937_64 g(seed);
  Buf<T> p(n, true, shift), gr(n, true, shift), b(n, buf, shift), m(n, adam, shift), v(n, adam, shift);
  p.randn(g, 0, 1);
  gr.randn(g, 0, 1);
  if (buf) b.randn(g, 0, 1);
  if (adam) { m.randn(g, 0, 0.1); v.uniform(g, 0.01, 0.1); }
  // the hyperparameter tensors: one value (index 0) or n values
  const double base[MK_META_HYPER_COUNT] = {adam ? 1e-3 : 0.1, 0.9, 0.01, 0.85, 0.98, 1e-3};
  std::vector<Buf<T>> hyp;
  for (int i = 0; i < MK_META_HYPER_COUNT; ++i) {
    const bool per = form == 2 && i <= MK_META_WEIGHT_DECAY;
    hyp.emplace_back(per ? n : 1, true, per ? shift : 0);
    if (per) hyp.back().uniform(g, 0.5 * base[i], 1.5 * base[i]);
    else hyp.back()[0] = T(base[i]);
  }
  mk_meta_step_params blk{};
  blk.n = n;
  blk.step = 3;
  blk.flags = opt == kNesterov ? MK_META_NESTEROV : opt == kAdamW ? MK_META_DECOUPLED_WEIGHT_DECAY : 0;
  blk.param = p.data(); blk.grad = gr.data(); blk.buf = b.data(); blk.m = m.data(); blk.v = v.data();
  for (int i = 0; i < MK_META_HYPER_COUNT; ++i) {
    const bool used = adam ? i != MK_META_MOMENTUM : i <= MK_META_WEIGHT_DECAY && (i != MK_META_MOMENTUM || buf);
    if (!used) continue;
    if (form == 0) { blk.hyper_value[i] = base[i]; continue; }
    blk.hyper[i] = hyp[size_t(i)].data();
    blk.hyper_stride[i] = hyp[size_t(i)].n == 1 && !(form == 2 && i <= MK_META_WEIGHT_DECAY) ? 0 : 1;
  }
  MetaStepParams base_p(blk, sizeof(T) == 4 ? MK_F32 : MK_F64, nullptr);

  // ---- forward
  {
    Buf<T> po_c(n, true, shift), bo_c(n, buf, shift), mo_c(n, adam, shift), vo_c(n, adam, shift);
    Buf<T> po_g(n, true, shift), bo_g(n, buf, shift), mo_g(n, adam, shift), vo_g(n, adam, shift);
    MetaStepParams a = base_p, e = base_p;
    a.param_out = po_c.data(); a.buf_out = bo_c.data(); a.m_out = mo_c.data(); a.v_out = vo_c.data();
    e.param_out = po_g.data(); e.buf_out = bo_g.data(); e.m_out = mo_g.data(); e.v_out = vo_g.data();
    const int sc = adam ? mk::cpu::meta_adam_step_forward(a, nullptr) : mk::cpu::meta_sgd_step_forward(a, nullptr);
    const int sg = adam ? mk::cuda::meta_adam_step_forward(e, nullptr) : mk::cuda::meta_sgd_step_forward(e, nullptr);
    if (sc || sg) { printf("FAIL %s forward status %d / %d\n", name, sc, sg); ++g_failures; }
    compare(cs, "fwd.param", po_g, po_c, n, tol);
    compare(cs, "fwd.buf", bo_g, bo_c, n, tol);
    compare(cs, "fwd.m", mo_g, mo_c, n, tol);
    compare(cs, "fwd.v", vo_g, vo_c, n, tol);
  }

  // ---- backward: cotangents present per mask bits 0..2, outputs wanted per bits 3..
  Buf<T> cp(n, bool(mask & 1), shift), c1(n, bool(mask & 2) && (buf || adam), shift), c2(n, bool(mask & 4) && adam, shift);
  cp.randn(g, 0, 1);
  c1.randn(g, 0, 1);
  c2.randn(g, 0, 1);
  MetaStepParams bp = base_p;
  bp.cot_param_out = cp.data();
  if (buf) bp.cot_buf_out = c1.data();
  if (adam) { bp.cot_m_out = c1.data(); bp.cot_v_out = c2.data(); }
  const bool want_p = mask & 8, want_g = mask & 16, want_s = mask & 32, want_h = mask & 64;
  auto outs = [&](std::vector<Buf<T>>& o) {
    o.emplace_back(n, want_p, shift);
    o.emplace_back(n, want_g, shift);
    o.emplace_back(n, want_s && buf, shift);
    o.emplace_back(n, want_s && adam, shift);
    o.emplace_back(n, want_s && adam, shift);
    for (int i = 0; i < MK_META_HYPER_COUNT; ++i) {
      const bool per = blk.hyper[i] && blk.hyper_stride[i] == 1;
      o.emplace_back(per ? n : 1, want_h && blk.hyper[i] != nullptr, per ? shift : 0);
    }
    for (auto& x : o) x.fill(T(0));
  };
  auto attach = [&](MetaStepParams& q, std::vector<Buf<T>>& o, void* ws) {
    q.cot_param = o[0].data(); q.cot_grad = o[1].data(); q.cot_buf = o[2].data(); q.cot_m = o[3].data();
    q.cot_v = o[4].data();
    for (int i = 0; i < MK_META_HYPER_COUNT; ++i) q.cot_hyper[i] = o[size_t(5 + i)].data();
    q.workspace = ws;
  };
  std::vector<Buf<T>> oc, og, og2;
  outs(oc);
  outs(og);
  outs(og2);
  std::vector<double> ws_c(size_t(mk::cpu::meta_step_workspace(n) / 8) + 1);
  std::vector<double> ws_g(size_t(mk::cuda::meta_step_workspace(n) / 8) + 1);
  MetaStepParams a = bp, e = bp, e2 = bp;
  attach(a, oc, ws_c.data());
  attach(e, og, ws_g.data());
  attach(e2, og2, ws_g.data());
  const int sc = adam ? mk::cpu::meta_adam_step_backward(a, nullptr) : mk::cpu::meta_sgd_step_backward(a, nullptr);
  const int sg = adam ? mk::cuda::meta_adam_step_backward(e, nullptr) : mk::cuda::meta_sgd_step_backward(e, nullptr);
  if (sc || sg) { printf("FAIL %s backward status %d / %d\n", name, sc, sg); ++g_failures; }
  const char* names[5] = {"bwd.param", "bwd.grad", "bwd.buf", "bwd.m", "bwd.v"};
  for (int k = 0; k < 5; ++k) compare(cs, names[k], og[size_t(k)], oc[size_t(k)], n, tol);
  // one-value gradients are sums over the elements: compared against the CPU's within the
  // rounding of such a sum, the sum of the magnitudes of its terms (from the shared element maths)
  double term_abs[MK_META_HYPER_COUNT] = {0, 0, 0, 0, 0, 0};
  {
    const T zero = T(0);
    const mk::AdamConsts<T> k = mk::adam_consts<T>(base[MK_META_BETA1], base[MK_META_BETA2], base[MK_META_EPS], 3);
    auto hv = [&](int i, int64_t j) {
      if (!blk.hyper[i]) return T(blk.hyper_value[i]);
      return blk.hyper_stride[i] == 1 ? hyp[size_t(i)][j] : hyp[size_t(i)][0];
    };
    for (int64_t j = 0; j < n; ++j) {
      const T cpj = cp.present ? cp[j] : zero, c1j = c1.present ? c1[j] : zero, c2j = c2.present ? c2[j] : zero;
      T o[9], h[6] = {0, 0, 0, 0, 0, 0};
      if (!adam) {
        const T bj = buf ? b[j] : zero;
        if (opt == kSgd) mk::sgd_backward_element<T, mk::kSgdPlain>(p[j], gr[j], bj, hv(0, j), hv(1, j), hv(2, j), cpj, c1j, o[0], o[1], o[2], h[0], h[1], h[2]);
        if (opt == kMomentum) mk::sgd_backward_element<T, mk::kSgdMomentum>(p[j], gr[j], bj, hv(0, j), hv(1, j), hv(2, j), cpj, c1j, o[0], o[1], o[2], h[0], h[1], h[2]);
        if (opt == kNesterov) mk::sgd_backward_element<T, mk::kSgdNesterov>(p[j], gr[j], bj, hv(0, j), hv(1, j), hv(2, j), cpj, c1j, o[0], o[1], o[2], h[0], h[1], h[2]);
      } else if (opt == kAdam) {
        mk::adam_backward_element<T, false>(p[j], gr[j], m[j], v[j], hv(0, j), hv(2, j), k, cpj, c1j, c2j, o[0], o[1], o[2], o[3], h[0], h[2], h[3], h[4], h[5]);
      } else {
        mk::adam_backward_element<T, true>(p[j], gr[j], m[j], v[j], hv(0, j), hv(2, j), k, cpj, c1j, c2j, o[0], o[1], o[2], o[3], h[0], h[2], h[3], h[4], h[5]);
      }
      for (int i = 0; i < MK_META_HYPER_COUNT; ++i) term_abs[i] += std::fabs(double(h[i]));
    }
  }
  for (int i = 0; i < MK_META_HYPER_COUNT; ++i) {
    Buf<T>& hg = og[size_t(5 + i)];
    if (!hg.present) continue;
    const std::string what = "bwd.hyper" + std::to_string(i);
    // per element: the elements' scale; one value: the sum's (CPU and CUDA add in different
    // orders), and in F32 5x the elementwise tolerance: a term can cancel inside its element
    // (beta1's (m - d) Mt against -t beta1^(t-1) c1b), leaving the rounding of its parts
    const bool one = hg.n == 1;
    compare(cs, what.c_str(), hg, oc[size_t(5 + i)], hg.n, one && sizeof(T) == 4 ? 5 * tol : tol,
            one ? std::max(term_abs[i], 1e-300) : 0);
  }
  // the same launch in forward thread order gives the same bits (fixed reduction order, no race)
  const int order = emu::config().order;
  emu::config().order = 0;
  adam ? mk::cuda::meta_adam_step_backward(e2, nullptr) : mk::cuda::meta_sgd_step_backward(e2, nullptr);
  emu::config().order = order;
  for (size_t k = 0; k < og.size(); ++k)
    for (int64_t j = 0; j < og[k].n && og[k].present; ++j)
      if (std::memcmp(&og[k][j], &og2[k][j], sizeof(T)) != 0) {
        printf("FAIL %s output %zu element %lld differs between thread orders\n", name, k, (long long)j);
        ++g_failures;
        break;
      }
}

int main(int argc, char** argv) {
  emu::config().order = argc > 1 ? atoi(argv[1]) : 0;
  omp_set_num_threads(1);
  uint64_t seed = 99;
  const int64_t sizes[] = {0, 1, 7, 1029, 20003};  // 20003: five blocks, several grid-stride rounds per thread
  for (int opt = kSgd; opt <= kAdamW; ++opt)
    for (int form = 0; form < 3; ++form)
      for (int64_t n : sizes)
        for (int64_t shift : {0, 1}) {
          if (n == 20003 && shift == 1 && form != 1) continue;  // the large size: once per path
          const unsigned masks[] = {0x7F, 0x1 | 0x8 | 0x40, 0x6 | 0x10 | 0x20};
          for (unsigned mask : masks) {
            if (n == 20003 && mask != 0x7F) continue;
            run_case<double>(Opt(opt), form, n, shift, mask, seed);
            run_case<float>(Opt(opt), form, n, shift, mask, seed);
            ++seed;
          }
        }
  printf("meta order %d: %d cases, %lld launches, %lld blocks, %d failures, worst rel err F32 %.3g F64 %.3g\n",
         emu::config().order, g_cases, (long long)emu::config().launches, (long long)emu::config().blocks, g_failures,
         g_worst[0], g_worst[1]);
  return g_failures ? 1 : 0;
}
