// kernels/cuda/linear.cu (the fused linear layer's epilogue and activation gradient) run on the
// host by the emulator in cuda_runtime.h, against the CPU twin (kernels/cpu/linear.cpp, the
// library's own objects) and a long-double loop, F32 and F64, for every mk_linear_act code, with
// and without a bias, with gz and gb, gz only and gb only, on shapes from one element to several
// blocks of threads and empty ones (rows = 0: gb must be zeros).
// The identity and relu are exact on both sides, so they must agree bitwise; the gradient is
// plain arithmetic on y (mk/linear_act.h) and must agree to an ulp or two (contraction into fma
// may differ); tanh and sigmoid use the host maths here and mk/vec_math.h in the twin (a few
// ulp). gb is summed in row order in double on both sides. The fused mse (forward and backward)
// runs here too. Outputs sit between NaN guards that
// must stay untouched; the threads run in forward, reverse and shuffled order. (A grid-stride round,
// more than 65535 × 256 elements, is too slow to emulate and is not run.)
//   linear_emu_test [order]     order: 0 forward, 1 reverse, 2 shuffled threads (default: all three)
#include <omp.h>
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "linear.cu"

namespace mk {
namespace cuda {
alignas(16) unsigned char mk_linear_smem[256 * 1024 + 4096];  // the emulator clears its whole capacity
}  // namespace cuda
}  // namespace mk
inline unsigned char* emu::smem() { return mk::cuda::mk_linear_smem; }

#include "emu_check.h"  // expect, guarded Buf, same_bits, tname

static long double ref_act(int act, long double z) {
  if (act == MK_LINEAR_ACT_RELU) return z > 0 ? z : 0;
  if (act == MK_LINEAR_ACT_TANH) return std::tanh(z);
  if (act == MK_LINEAR_ACT_SIGMOID) return 1 / (1 + std::exp(-z));
  return z;
}
static long double ref_slope(int act, long double y) {
  if (act == MK_LINEAR_ACT_RELU) return y > 0 ? 1 : 0;
  if (act == MK_LINEAR_ACT_TANH) return 1 - y * y;
  if (act == MK_LINEAR_ACT_SIGMOID) return y * (1 - y);
  return 1;
}

template <class T>
static bool close(T got, long double want, double ulps) {
  const long double eps = std::numeric_limits<T>::epsilon();
  return std::fabs((long double)got - want) <= ulps * eps * (1 + std::fabs(want));
}

static const char* act_name(int act) {
  static const char* n[] = {"identity", "relu", "tanh", "sigmoid"};
  return n[act];
}

template <class T>
static void epilogue_case(int act, int64_t rows, int64_t cols, bool bias, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-4, 4);
  const int64_t n = rows * cols;
  Buf<T> z(n), yg(n), yc(n), b(cols);
  for (int64_t i = 0; i < n; ++i) z[i] = T(u(rng));
  for (int64_t c = 0; c < cols; ++c) b[c] = T(u(rng));
  std::memcpy(yg.data(), z.data(), size_t(n) * sizeof(T));
  std::memcpy(yc.data(), z.data(), size_t(n) * sizeof(T));
  char what[200];
  snprintf(what, sizeof what, "epilogue %s %s [%lld, %lld] bias %d", sizeof(T) == 4 ? "F32" : "F64", act_name(act),
           (long long)rows, (long long)cols, int(bias));
  const int rg = mk::cuda::linear_act_epilogue(dtype, act, rows, cols, yg.data(), bias ? b.data() : nullptr, nullptr);
  const int rc = mk::cpu::linear_act_epilogue(dtype, act, rows, cols, yc.data(), bias ? b.data() : nullptr, nullptr);
  expect(rg == 0 && rc == 0, std::string(what) + ": status");
  expect(yg.guards_intact() && yc.guards_intact(), std::string(what) + ": guards");
  const bool exact = act == MK_LINEAR_ACT_IDENTITY || act == MK_LINEAR_ACT_RELU;
  int bad_twin = 0, bad_ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T zb = bias ? T(z[i] + b[i % cols]) : z[i];  // the sum rounded to T, as both kernels do
    const long double want = ref_act(act, (long double)zb);
    if (exact ? yg[i] != yc[i] : !close(yg[i], (long double)yc[i], 8)) ++bad_twin;
    if (!close(yg[i], want, 8)) ++bad_ref;
  }
  expect(bad_twin == 0, std::string(what) + ": CUDA vs CPU twin, " + std::to_string(bad_twin) + " elements differ");
  expect(bad_ref == 0, std::string(what) + ": CUDA vs long double, " + std::to_string(bad_ref) + " elements off");
}

// mode: 0 gz and gb, 1 gz only, 2 gb only
template <class T>
static void grad_case(int act, int64_t rows, int64_t cols, int mode, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-2, 2);
  const int64_t n = rows * cols;
  Buf<T> gy(n), y(n), gzg(n), gzc(n), gbg(cols), gbc(cols);
  for (int64_t i = 0; i < n; ++i) {
    gy[i] = T(u(rng));
    y[i] = T(ref_act(act, u(rng)));  // a possible output of the activation
  }
  const bool want_z = mode != 2, want_b = mode != 1;
  char what[200];
  snprintf(what, sizeof what, "grad %s %s [%lld, %lld] mode %d", sizeof(T) == 4 ? "F32" : "F64", act_name(act),
           (long long)rows, (long long)cols, mode);
  const int rg = mk::cuda::linear_act_grad(dtype, act, rows, cols, gy.data(), y.data(), want_z ? gzg.data() : nullptr,
                                           want_b ? gbg.data() : nullptr, nullptr);
  const int rc = mk::cpu::linear_act_grad(dtype, act, rows, cols, gy.data(), y.data(), want_z ? gzc.data() : nullptr,
                                          want_b ? gbc.data() : nullptr, nullptr);
  expect(rg == 0 && rc == 0, std::string(what) + ": status");
  expect(gzg.guards_intact() && gzc.guards_intact() && gbg.guards_intact() && gbc.guards_intact(),
         std::string(what) + ": guards");
  if (want_z) {
    int bad = 0;
    const bool exact = act == MK_LINEAR_ACT_IDENTITY || act == MK_LINEAR_ACT_RELU;
    for (int64_t i = 0; i < n; ++i) {
      const long double want = (long double)gy[i] * ref_slope(act, (long double)y[i]);
      if (exact ? gzg[i] != gzc[i] : !close(gzg[i], (long double)gzc[i], 4)) ++bad;
      if (!close(gzg[i], want, 4)) ++bad;
    }
    expect(bad == 0, std::string(what) + ": gz, " + std::to_string(bad) + " mismatches");
  } else {
    bool untouched = true;
    for (int64_t i = 0; i < n; ++i) untouched &= std::isnan(double(gzg[i])) && std::isnan(double(gzc[i]));
    expect(untouched, std::string(what) + ": gz written though not asked for");
  }
  if (want_b) {
    int bad = 0;
    for (int64_t c = 0; c < cols; ++c) {
      long double want = 0, mag = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const long double t = (long double)gy[r * cols + c] * ref_slope(act, (long double)y[r * cols + c]);
        want += t;
        mag += std::fabs(t);
      }
      const long double tol = std::numeric_limits<T>::epsilon() * (4 * mag + 1e-30L) + 1e-300L;
      if (std::fabs((long double)gbg[c] - want) > tol) ++bad;
      if (std::fabs((long double)gbg[c] - (long double)gbc[c]) > tol) ++bad;
      if (rows == 0 && (gbg[c] != 0 || gbc[c] != 0)) ++bad;
    }
    expect(bad == 0, std::string(what) + ": gb, " + std::to_string(bad) + " mismatches");
  }
}

// The fused mse: forward against the twin (both sum in double, in different orders: to a few
// ulp of T) and a long-double loop; backward bitwise against the twin (the same T arithmetic) for
// both, either or no gradient.
template <class T>
static void mse_case(int64_t n, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-3, 3);
  Buf<T> p(n), t(n), og(1), oc(1), g(1), gpg(n), gtg(n), gpc(n), gtc(n);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = T(u(rng));
    t[i] = T(u(rng));
  }
  g[0] = T(u(rng));
  char what[120];
  snprintf(what, sizeof what, "mse %s n %lld", sizeof(T) == 4 ? "F32" : "F64", (long long)n);
  expect(mk::cuda::mse_forward(dtype, n, p.data(), t.data(), og.data(), nullptr) == 0 &&
             mk::cpu::mse_forward(dtype, n, p.data(), t.data(), oc.data(), nullptr) == 0,
         std::string(what) + ": forward status");
  long double want = 0;
  for (int64_t i = 0; i < n; ++i) want += ((long double)p[i] - t[i]) * ((long double)p[i] - t[i]);
  want /= n;
  expect(og.guards_intact() && oc.guards_intact(), std::string(what) + ": forward guards");
  // a double sum of n positive terms is within n double ulps: nothing in F32, n ulps of an F64 result
  const double ulps = sizeof(T) == 4 ? 2 : 2 + double(n);
  expect(close(og[0], want, ulps) && close(oc[0], want, ulps) && close(og[0], (long double)oc[0], ulps),
         std::string(what) + ": forward " + std::to_string(double(og[0])) + " vs " + std::to_string(double(oc[0])));
  // the split forward (blocks of fixed chunks, partials in scratch, a fold in block order): same
  // bound against the long-double sum, the same bits twice, and without enough scratch exactly
  // the one-block forward; the CPU wants no scratch and its split is its forward
  const int64_t ws = mk::cuda::mse_workspace(n);
  expect(mk::cpu::mse_workspace(n) == 0, std::string(what) + ": the CPU asks no scratch");
  expect((ws > 0) == (n > (int64_t(1) << 15)) && ws <= 1024 * int64_t(sizeof(double)),
         std::string(what) + ": scratch " + std::to_string(ws) + " bytes");
  if (ws > 0) {
    Buf<double> scratch(ws / int64_t(sizeof(double)));
    Buf<T> os1(1), os2(1), osmall(1);
    expect(
        mk::cuda::mse_forward_split(dtype, n, p.data(), t.data(), os1.data(), scratch.data(), ws, nullptr) == 0 &&
            mk::cuda::mse_forward_split(dtype, n, p.data(), t.data(), os2.data(), scratch.data(), ws, nullptr) == 0 &&
            mk::cuda::mse_forward_split(dtype, n, p.data(), t.data(), osmall.data(), scratch.data(), ws - 8, nullptr) ==
                0,
        std::string(what) + ": split status");
    expect(scratch.guards_intact() && os1.guards_intact(), std::string(what) + ": split guards");
    expect(close(os1[0], want, ulps) && std::memcmp(&os1[0], &os2[0], sizeof(T)) == 0,
           std::string(what) + ": split " + std::to_string(double(os1[0])) + " (deterministic, vs the exact sum)");
    expect(std::memcmp(&osmall[0], &og[0], sizeof(T)) == 0, std::string(what) + ": short scratch = one block");
  } else {
    Buf<T> os(1);
    expect(mk::cuda::mse_forward_split(dtype, n, p.data(), t.data(), os.data(), nullptr, 0, nullptr) == 0 &&
               std::memcmp(&os[0], &og[0], sizeof(T)) == 0,
           std::string(what) + ": no split = one block");
  }
  for (int mode = 0; mode < 4; ++mode) {  // bit 0: gp, bit 1: gt
    for (int64_t i = 0; i < n; ++i) gpg[i] = gtg[i] = gpc[i] = gtc[i] = std::numeric_limits<T>::quiet_NaN();
    T* a = mode & 1 ? gpg.data() : nullptr;
    T* b = mode & 2 ? gtg.data() : nullptr;
    T* c = mode & 1 ? gpc.data() : nullptr;
    T* d = mode & 2 ? gtc.data() : nullptr;
    expect(mk::cuda::mse_backward(dtype, n, p.data(), t.data(), g.data(), 2.0 / n, a, b, nullptr) == 0 &&
               mk::cpu::mse_backward(dtype, n, p.data(), t.data(), g.data(), 2.0 / n, c, d, nullptr) == 0,
           std::string(what) + ": backward status");
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      const long double want_p = 2.0L / n * g[0] * ((long double)p[i] - t[i]);
      if (mode & 1)
        bad += !(gpg[i] == gpc[i]) + !close(gpg[i], want_p, 4);
      else
        bad += !std::isnan(double(gpg[i])) + !std::isnan(double(gpc[i]));
      if (mode & 2)
        bad += !(gtg[i] == gtc[i]) + !close(gtg[i], -want_p, 4);
      else
        bad += !std::isnan(double(gtg[i])) + !std::isnan(double(gtc[i]));
    }
    expect(bad == 0 && gpg.guards_intact() && gtg.guards_intact(),
           std::string(what) + ": backward mode " + std::to_string(mode) + ", " + std::to_string(bad) + " mismatches");
  }
}

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  std::vector<int> orders = {0, 1, 2};
  if (argc > 1) orders = {atoi(argv[1])};
  const int64_t shapes[][2] = {{1, 1}, {3, 5}, {32, 64}, {7, 300}, {0, 7}, {5, 0}, {600, 33}};
  for (int order : orders) {
    emu::config().order = order;
    unsigned s = 11;
    for (int act = 0; act < MK_LINEAR_ACT_COUNT; ++act)
      for (const auto& sh : shapes) {
        for (bool bias : {false, true}) {
          epilogue_case<float>(act, sh[0], sh[1], bias, ++s);
          epilogue_case<double>(act, sh[0], sh[1], bias, ++s);
        }
        for (int mode = 0; mode < 3; ++mode) {
          grad_case<float>(act, sh[0], sh[1], mode, ++s);
          grad_case<double>(act, sh[0], sh[1], mode, ++s);
        }
      }
  }
  for (int order : orders) {
    emu::config().order = order;
    unsigned s = 500;
    for (int64_t n : {1, 2, 255, 256, 257, 1000, 32768, 32769, 40000, 300001}) {
      mse_case<float>(n, ++s);
      mse_case<double>(n, ++s);
    }
  }
  // the cap of 1,024 partials: past 2^25 elements the chunks grow instead
  expect(mk::cuda::mse_workspace((int64_t(1) << 25) + 77) == 1024 * 8 &&
             mk::cuda::mse_workspace(int64_t(1) << 40) == 1024 * 8,
         "mse scratch capped at 1,024 partials");
  // an unknown activation is refused by both
  expect(mk::cuda::linear_act_epilogue(MK_F32, MK_LINEAR_ACT_COUNT, 1, 1, nullptr, nullptr, nullptr) != 0 &&
             mk::cpu::linear_act_epilogue(MK_F32, MK_LINEAR_ACT_COUNT, 1, 1, nullptr, nullptr, nullptr) != 0,
         "unknown activation refused");
  printf("linear_emu_test: %d checks, %d failures (%lld launches, %lld blocks)\n", g_checks, g_failures,
         (long long)emu::config().launches, (long long)emu::config().blocks);
  return g_failures ? 1 : 0;
}
