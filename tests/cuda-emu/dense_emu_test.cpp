// kernels/cuda/dense.cu run on the host by the emulator in cuda_runtime.h, against the CPU twin
// (kernels/cpu/dense.cpp and elementwise.cpp, the library's own objects). The plan thresholds are
// lowered below (before the include) so that inputs of a few hundred elements take every launch
// shape: flat, a warp per row, a block per row, columns, and the split reductions with their
// second pass, with and without 16-byte loads (x one element past a 16-byte boundary).
//
// Checked: reductions (sum, max, min with indices) over 1, a few, odd and long lengths, rows and
// columns, with NaN, ties, signed zeros; max/min bitwise equal to the twin (values and indices);
// sums within 2·len·2^-53·Σ|x| (+ one rounding to T) of the twin, and bitwise equal to it on the
// flat column path (same order); every plan bitwise equal across thread orders (forward, reverse,
// shuffled) and with/without the workspace where the plan is the same. Softmax and log-softmax
// (warp and block rows; NaN, -inf and +inf rows) within rounding of the twin, NaN exactly where it
// has NaN. fill, copy (contiguous and strided), cast (every dtype pair), unary, binary (contiguous,
// broadcast scalar, strided), where and random bitwise equal to the twin (unary within rounding:
// the CPU's vectorised math). Every output sits between NaN guards that must stay untouched.
//   dense_emu_test [order]     order: 0 forward, 1 reverse, 2 shuffled threads (default: all three)
#define MK_DENSE_REDUCE_TARGET_BLOCKS 8
#define MK_DENSE_REDUCE_MIN_CHUNK 64
#define MK_DENSE_WARP_LEN 64
#define MK_DENSE_FLAT_LEN 4
#define MK_DENSE_FLAT_OUTPUTS 256
#define MK_DENSE_SOFTMAX_WARP_COLS 64

#include <omp.h>

#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cstring>
#include <string>
#include <vector>

#include "dense.cu"

namespace mk {
namespace cuda {
alignas(16) unsigned char mk_dense_smem[256 * 1024 + 4096];  // emu::config().smem_capacity (+ canary)
}  // namespace cuda
}  // namespace mk
inline unsigned char* emu::smem() { return mk::cuda::mk_dense_smem; }

#include "emu_check.h"

static std::vector<int> g_orders;
static int g_plans[4][2];  // reduce cases by plan kind, without / with splits

// Runs f under every thread order; the outputs (read by snap) must be bitwise the same each time.
template <class F, class S>
static void each_order(const std::string& what, F run, S snap) {
  std::vector<unsigned char> first;
  for (size_t k = 0; k < g_orders.size(); ++k) {
    emu::config().order = g_orders[k];
    emu::config().seed = unsigned(k + 11);
    run();
    std::vector<unsigned char> now = snap();
    if (k == 0)
      first = now;
    else
      expect(now == first, what + ": differs between thread orders 0 and " + std::to_string(g_orders[k]));
  }
  emu::config().order = g_orders[0];
}

// ---- reductions ---------------------------------------------------------------------------------
enum Data { kNormal = 0, kTies = 1, kNan = 2 };

template <class T>
static void reduce_case(int op, int64_t outer, int64_t len, int64_t inner, int64_t shift, int data, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const int64_t n = outer * len * inner, outs = outer * inner;
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.5, 2.0);
  Buf<T> x(n, shift);
  for (int64_t i = 0; i < n; ++i) {
    if (data == kTies)
      x[i] = T(int(rng() % 5) - 2);
    else
      x[i] = T(nd(rng));
    if (data == kTies && x[i] == T(0)) x[i] = rng() % 2 ? T(0) : T(-0.0);  // signed zeros tie
  }
  if (data == kNan)
    for (int64_t k = 0; k < std::max<int64_t>(1, n / 50); ++k)
      x[int64_t(rng() % uint64_t(n))] = std::numeric_limits<T>::quiet_NaN();
  const bool extreme = op != MK_REDUCE_SUM;
  Buf<T> y_cpu(outs), y_gpu(outs), y_ws(outs);
  Buf<int64_t> i_cpu(outs), i_gpu(outs), i_ws(outs);
  mk::cpu::reduce(dtype, op, outer, len, inner, x.data(), y_cpu.data(), extreme ? i_cpu.data() : nullptr, nullptr);
  char what[200];
  snprintf(what, sizeof what, "reduce %s op %d [%lld, %lld, %lld] shift %lld data %d", tname<T>(), op, (long long)outer,
           (long long)len, (long long)inner, (long long)shift, data);
  const mk::cuda::ReducePlan plan = mk::cuda::plan_reduce(outer, len, inner, true);
  ++g_plans[plan.kind][plan.splits > 1];
  const int64_t ws_bytes = mk::cuda::reduce_workspace(dtype, op, outer, len, inner);
  expect(ws_bytes == plan.workspace_bytes(), std::string(what) + ": workspace size");
  std::vector<unsigned char> ws(size_t(ws_bytes) + 16);
  int rc_plain = 0, rc_ws = 0;
  each_order(
      what,
      [&] {
        rc_plain = mk::cuda::reduce(dtype, op, outer, len, inner, x.data(), y_gpu.data(),
                                    extreme ? i_gpu.data() : nullptr, nullptr);
        rc_ws =
            mk::cuda::reduce_split(dtype, op, outer, len, inner, x.data(), y_ws.data(), extreme ? i_ws.data() : nullptr,
                                   ws_bytes ? ws.data() : nullptr, ws_bytes, nullptr);
      },
      [&] {
        std::vector<unsigned char> b(size_t(outs) * (2 * sizeof(T) + 2 * sizeof(int64_t)));
        unsigned char* p = b.data();
        std::memcpy(p, y_gpu.data(), size_t(outs) * sizeof(T));
        std::memcpy(p += outs * sizeof(T), y_ws.data(), size_t(outs) * sizeof(T));
        if (extreme) {
          std::memcpy(p += outs * sizeof(T), i_gpu.data(), size_t(outs) * sizeof(int64_t));
          std::memcpy(p + outs * sizeof(int64_t), i_ws.data(), size_t(outs) * sizeof(int64_t));
        }
        return b;
      });
  expect(rc_plain == 0 && rc_ws == 0, std::string(what) + ": launch status");
  expect(y_gpu.guards_intact() && y_ws.guards_intact() && i_gpu.guards_intact() && i_ws.guards_intact(),
         std::string(what) + ": wrote past the output");
  int64_t differ = 0, differ_ws = 0;
  const bool same_order = plan.kind == mk::cuda::kFlat && inner > 1;
  for (int64_t out = 0; out < outs; ++out) {
    const int64_t o = out / inner, i = out % inner;
    double abs_sum = 0;
    for (int64_t j = 0; j < len; ++j) abs_sum += std::fabs(double(x[(o * len + j) * inner + i]));
    const double tol = 2.0 * double(len) * std::ldexp(1.0, -53) * abs_sum +
                       (sizeof(T) == 4 ? std::ldexp(std::fabs(double(y_cpu[out])), -23) : 0.0);
    auto bad = [&](Buf<T>& y, Buf<int64_t>& ix) {
      if (extreme) return !same_bits(y[out], y_cpu[out]) || ix[out] != i_cpu[out];
      if (same_order) return !same_bits(y[out], y_cpu[out]);
      const double a = double(y[out]), b = double(y_cpu[out]);
      if (std::isnan(a) || std::isnan(b)) return std::isnan(a) != std::isnan(b);
      return !(std::fabs(a - b) <= tol);
    };
    differ += bad(y_gpu, i_gpu);
    differ_ws += bad(y_ws, i_ws);
  }
  expect(differ == 0,
         std::string(what) + ": " + std::to_string(differ) + " outputs differ from the twin (no workspace)");
  expect(differ_ws == 0, std::string(what) + ": " + std::to_string(differ_ws) +
                             " outputs differ from the twin (split plan " + std::to_string(plan.splits) + " chunks)");
  // the plan without a workspace is the same plan when it has no splits: then the same bits
  if (plan.splits == 1) {
    bool eq = std::memcmp(y_gpu.data(), y_ws.data(), size_t(outs) * sizeof(T)) == 0;
    expect(eq, std::string(what) + ": reduce and reduce_split differ on one plan");
  }
}

template <class T>
static void reductions(unsigned& seed) {
  struct Shape {
    int64_t outer, len, inner;
  };
  // (thresholds above) flat: len <= 4 or >= 256 column outputs; warp rows: len <= 64; block rows;
  // columns with tx 2..32 and several tiles; splits wherever the tiles are fewer than 8
  const Shape shapes[] = {{1, 1, 1},   {1, 3, 1},    {7, 4, 1},    {2, 5, 1},    {3, 64, 1},   {9, 33, 1},
                          {1, 65, 1},  {1, 1000, 1}, {2, 777, 1},  {1, 1003, 1}, {20, 300, 1}, {3, 4096, 1},
                          {1, 2, 3},   {1, 500, 3},  {2, 333, 40}, {1, 100, 2},  {4, 70, 17},  {50, 20, 10},
                          {3, 9, 100}, {1, 2000, 5}, {8, 30, 20},  {12, 9, 3}};
  for (const Shape& s : shapes)
    for (int op = 0; op < MK_REDUCE_COUNT; ++op)
      for (int data : {kNormal, kTies, kNan}) {
        if (op == MK_REDUCE_SUM && data == kTies) continue;
        reduce_case<T>(op, s.outer, s.len, s.inner, 0, data, ++seed);
      }
  // x off a 16-byte boundary: the scalar loads of the row kernels
  reduce_case<T>(MK_REDUCE_SUM, 2, 800, 1, 1, kNormal, ++seed);
  reduce_case<T>(MK_REDUCE_MAX, 2, 800, 1, 1, kTies, ++seed);
  reduce_case<T>(MK_REDUCE_MIN, 5, 40, 1, 1, kNan, ++seed);
  // every launch shape was taken (a threshold change that skips one fails here)
  expect(g_plans[mk::cuda::kFlat][0] && g_plans[mk::cuda::kWarpRows][0] && g_plans[mk::cuda::kBlockRows][0] &&
             g_plans[mk::cuda::kBlockRows][1] && g_plans[mk::cuda::kCols][0] && g_plans[mk::cuda::kCols][1],
         "reduce: every plan (flat, warp rows, block rows, columns; split and not) covered");
}

// ---- softmax ------------------------------------------------------------------------------------
template <class T>
static void softmax_case(int log, int64_t rows, int64_t cols, int64_t shift, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0, 3);
  Buf<T> x(rows * cols, shift), y_cpu(rows * cols), y_gpu(rows * cols, shift);
  const T inf = std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < rows * cols; ++i) x[i] = T(nd(rng));
  for (int64_t r = 0; r < rows; ++r) {
    T* xr = x.data() + r * cols;
    switch (r % 6) {
      case 1:
        xr[rng() % uint64_t(cols)] = std::numeric_limits<T>::quiet_NaN();
        break;
      case 2:
        for (int64_t c = 0; c < cols; ++c) xr[c] = -inf;
        break;
      case 3:
        for (int64_t c = 0; c < cols; c += 2) xr[c] = -inf;
        break;
      case 4:
        xr[rng() % uint64_t(cols)] = inf;
        break;
      case 5:
        xr[rng() % uint64_t(cols)] = T(80);
        break;  // one entry far above the rest
      default:
        break;
    }
  }
  mk::cpu::softmax(dtype, log, rows, cols, x.data(), y_cpu.data(), nullptr);
  char what[160];
  snprintf(what, sizeof what, "softmax %s log %d [%lld, %lld] shift %lld", tname<T>(), log, (long long)rows,
           (long long)cols, (long long)shift);
  int rc = 0;
  each_order(
      what, [&] { rc = mk::cuda::softmax(dtype, log, rows, cols, x.data(), y_gpu.data(), nullptr); },
      [&] {
        std::vector<unsigned char> b(size_t(rows * cols) * sizeof(T));
        std::memcpy(b.data(), y_gpu.data(), b.size());
        return b;
      });
  expect(rc == 0, std::string(what) + ": launch status");
  expect(y_gpu.guards_intact(), std::string(what) + ": wrote past the output");
  const double rel = sizeof(T) == 4 ? 2e-6 : 1e-13;
  int64_t differ = 0;
  for (int64_t i = 0; i < rows * cols; ++i) {
    const double a = double(y_gpu[i]), b = double(y_cpu[i]);
    if (std::isnan(a) || std::isnan(b) || std::isinf(a) || std::isinf(b)) {
      differ += !(same_bits(y_gpu[i], y_cpu[i]) || (std::isnan(a) && std::isnan(b)));
      continue;
    }
    const double scale = log ? std::max(1.0, std::fabs(b)) : std::max(std::fabs(b), 1e-30);
    differ += !(std::fabs(a - b) <= rel * scale + (log ? 0 : rel * 1e-3));
  }
  expect(differ == 0, std::string(what) + ": " + std::to_string(differ) + " elements differ from the twin");
}

template <class T>
static void softmaxes(unsigned& seed) {
  const int64_t shapes[][2] = {{1, 1}, {3, 5}, {13, 64}, {6, 37}, {7, 65}, {6, 300}, {2, 1000}, {12, 129}};
  for (auto& s : shapes)
    for (int log : {0, 1}) softmax_case<T>(log, s[0], s[1], 0, ++seed);
  softmax_case<T>(0, 6, 200, 1, ++seed);  // scalar loads
  softmax_case<T>(1, 6, 40, 1, ++seed);
}

// ---- elementwise --------------------------------------------------------------------------------
template <class T>
static std::string bits_differ(const Buf<T>& a, const Buf<T>& b, int64_t n, const char* what) {
  int64_t d = 0;
  for (int64_t i = 0; i < n; ++i) d += !same_bits(const_cast<Buf<T>&>(a)[i], const_cast<Buf<T>&>(b)[i]);
  return d ? std::string(what) + ": " + std::to_string(d) + " elements differ" : std::string();
}

static void check_same(const std::string& diff, const std::string& what) { expect(diff.empty(), what + " " + diff); }

template <class T>
static void elementwise(unsigned& seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  std::mt19937 rng(++seed);
  std::uniform_real_distribution<double> u(-3, 3);
  for (int64_t n : {1, 3, 7, 64, 1001}) {
    for (int64_t shift : {0, 1}) {
      char what[96];
      snprintf(what, sizeof what, "%s n %lld shift %lld", tname<T>(), (long long)n, (long long)shift);
      const std::string w(what);
      Buf<T> a(n, shift), b(n, shift), c(n, shift), g(n, shift), h(n, shift);
      for (int64_t i = 0; i < n; ++i) {
        a[i] = T(u(rng));
        b[i] = T(u(rng));
        c[i] = rng() % 2 ? T(0) : T(1);
      }
      // fill
      mk::cuda::fill(dtype, n, g.data(), 1.25, nullptr);
      mk::cpu::fill(dtype, n, h.data(), 1.25, nullptr);
      check_same(bits_differ(g, h, n, "fill"), w);
      expect(g.guards_intact(), w + " fill: guards");
      // contiguous copy
      const int64_t shape1[1] = {n}, one[1] = {1}, zero[1] = {0};
      mk::cuda::copy_strided(dtype, 1, shape1, a.data(), one, g.data(), one, nullptr);
      check_same(bits_differ(g, a, n, "copy"), w);
      expect(g.guards_intact(), w + " copy: guards");
      // random (element i depends on (seed, i))
      for (int dist : {MK_RANDOM_UNIFORM, MK_RANDOM_NORMAL}) {
        mk::cuda::random_fill(dtype, dist, n, g.data(), 77 + uint64_t(n), -1.0, 2.0, nullptr);
        mk::cpu::random_fill(dtype, dist, n, h.data(), 77 + uint64_t(n), -1.0, 2.0, nullptr);
        // mk/random.h on both sides, every operation rounded as written (the CPU twin's 8-lane
        // kernel, the emulated CUDA kernel's scalar code): bitwise in F32 and F64
        int64_t d = 0;
        for (int64_t i = 0; i < n; ++i) d += !same_bits(g[i], h[i]);
        expect(d == 0, w + " random: " + std::to_string(d) + " elements differ");
        expect(g.guards_intact(), w + " random: guards");
      }
      // binary: contiguous, a scalar, b scalar
      for (int op = 0; op < MK_BINARY_COUNT; ++op) {
        mk::cuda::binary(dtype, op, 1, shape1, a.data(), one, b.data(), one, g.data(), nullptr);
        mk::cpu::binary(dtype, op, 1, shape1, a.data(), one, b.data(), one, h.data(), nullptr);
        check_same(bits_differ(g, h, n, "binary"), w + " op " + std::to_string(op));
        mk::cuda::binary(dtype, op, 1, shape1, a.data(), zero, b.data(), one, g.data(), nullptr);
        mk::cpu::binary(dtype, op, 1, shape1, a.data(), zero, b.data(), one, h.data(), nullptr);
        check_same(bits_differ(g, h, n, "binary a scalar"), w + " op " + std::to_string(op));
        mk::cuda::binary(dtype, op, 1, shape1, a.data(), one, b.data(), zero, g.data(), nullptr);
        mk::cpu::binary(dtype, op, 1, shape1, a.data(), one, b.data(), zero, h.data(), nullptr);
        check_same(bits_differ(g, h, n, "binary b scalar"), w + " op " + std::to_string(op));
        expect(g.guards_intact(), w + " binary: guards");
      }
      // unary (the CPU may take a vectorised form: within rounding)
      for (int op = 0; op < MK_UNARY_COUNT; ++op) {
        mk::cuda::unary(dtype, op, 1, shape1, a.data(), one, g.data(), 0.5, nullptr);
        mk::cpu::unary(dtype, op, 1, shape1, a.data(), one, h.data(), 0.5, nullptr);
        int64_t d = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double p = double(g[i]), q = double(h[i]);
          if (std::isnan(p) || std::isnan(q) || std::isinf(p) || std::isinf(q))
            d += !(same_bits(g[i], h[i]) || (std::isnan(p) && std::isnan(q)));
          else
            d += !(std::fabs(p - q) <= (sizeof(T) == 4 ? 4e-6 : 1e-13) * std::max(1.0, std::fabs(q)));
        }
        expect(d == 0, w + " unary op " + std::to_string(op) + ": " + std::to_string(d) + " elements differ");
        expect(g.guards_intact(), w + " unary: guards");
      }
      // where, contiguous
      mk::cuda::where(dtype, 1, shape1, c.data(), one, a.data(), one, b.data(), one, g.data(), nullptr);
      mk::cpu::where(dtype, 1, shape1, c.data(), one, a.data(), one, b.data(), one, h.data(), nullptr);
      check_same(bits_differ(g, h, n, "where"), w);
      expect(g.guards_intact(), w + " where: guards");
    }
  }
  // strided: a transposed [r, c] view, broadcast rows
  const int64_t r = 13, cdim = 11, n = r * cdim;
  Buf<T> a(n), b(cdim), c(n), g(n), h(n);
  for (int64_t i = 0; i < n; ++i) {
    a[i] = T(u(rng));
    c[i] = rng() % 2 ? T(0) : T(2);
  }
  for (int64_t i = 0; i < cdim; ++i) b[i] = T(u(rng));
  const int64_t shape[2] = {r, cdim}, tr[2] = {1, r}, contig[2] = {cdim, 1}, row_b[2] = {0, 1};
  mk::cuda::copy_strided(dtype, 2, shape, a.data(), tr, g.data(), contig, nullptr);
  mk::cpu::copy_strided(dtype, 2, shape, a.data(), tr, h.data(), contig, nullptr);
  check_same(bits_differ(g, h, n, "strided copy"), tname<T>());
  mk::cuda::binary(dtype, MK_BINARY_ADD, 2, shape, a.data(), tr, b.data(), row_b, g.data(), nullptr);
  mk::cpu::binary(dtype, MK_BINARY_ADD, 2, shape, a.data(), tr, b.data(), row_b, h.data(), nullptr);
  check_same(bits_differ(g, h, n, "strided binary"), tname<T>());
  mk::cuda::unary(dtype, MK_UNARY_NEG, 2, shape, a.data(), tr, g.data(), 0, nullptr);
  mk::cpu::unary(dtype, MK_UNARY_NEG, 2, shape, a.data(), tr, h.data(), 0, nullptr);
  check_same(bits_differ(g, h, n, "strided unary"), tname<T>());
  mk::cuda::where(dtype, 2, shape, c.data(), tr, a.data(), contig, b.data(), row_b, g.data(), nullptr);
  mk::cpu::where(dtype, 2, shape, c.data(), tr, a.data(), contig, b.data(), row_b, h.data(), nullptr);
  check_same(bits_differ(g, h, n, "strided where"), tname<T>());
  expect(g.guards_intact(), std::string(tname<T>()) + " strided: guards");
  // transposed sources of other shapes (the tiled copy): ragged 32 x 32 tiles, a batch dim outside
  // the transposed pair, one between them, and a transposed destination (the element kernel)
  {
    const int64_t d0 = 3, d1 = 70, d2 = 45, m = d0 * d1 * d2;
    Buf<T> x(m), gy(m), hy(m);
    for (int64_t i = 0; i < m; ++i) x[i] = T(u(rng));
    // x is [d0, d1, d2] contiguous; read as its permutes
    const int64_t p021[3] = {d0, d2, d1}, s021[3] = {d1 * d2, 1, d2};    // x.permute(0, 2, 1)
    const int64_t p210[3] = {d2, d1, d0}, s210[3] = {1, d2, d1 * d2};    // x.permute(2, 1, 0)
    const int64_t p102[3] = {d1, d0, d2}, s102[3] = {d2, d1 * d2, 1};    // x.permute(1, 0, 2)
    const int64_t p120[3] = {d1, d2, d0}, s120[3] = {d2, 1, d1 * d2};    // x.permute(1, 2, 0)
    const int64_t* shapes[4] = {p021, p210, p102, p120};
    const int64_t* strides[4] = {s021, s210, s102, s120};
    const char* names[4] = {"permute(0, 2, 1)", "permute(2, 1, 0)", "permute(1, 0, 2)", "permute(1, 2, 0)"};
    for (int v = 0; v < 4; ++v) {
      const int64_t* sh = shapes[v];
      const int64_t out[3] = {sh[1] * sh[2], sh[2], 1};
      mk::cuda::copy_strided(dtype, 3, sh, x.data(), strides[v], gy.data(), out, nullptr);
      mk::cpu::copy_strided(dtype, 3, sh, x.data(), strides[v], hy.data(), out, nullptr);
      const std::string what = std::string("copy of x.") + names[v];
      check_same(bits_differ(gy, hy, m, what.c_str()), tname<T>());
      expect(gy.guards_intact(), std::string(tname<T>()) + " " + names[v] + ": guards");
      // the tiled elementwise kernel: the permuted x beside a contiguous z, a broadcast row, a
      // permuted condition
      Buf<T> z(m), row(sh[2]), cnd(m);
      for (int64_t i = 0; i < m; ++i) {
        z[i] = T(u(rng));
        cnd[i] = rng() % 2 ? T(0) : T(2);
      }
      for (int64_t i = 0; i < sh[2]; ++i) row[i] = T(u(rng));
      const int64_t bcast[3] = {0, 0, 1};
      mk::cuda::binary(dtype, MK_BINARY_MUL, 3, sh, x.data(), strides[v], z.data(), out, gy.data(), nullptr);
      mk::cpu::binary(dtype, MK_BINARY_MUL, 3, sh, x.data(), strides[v], z.data(), out, hy.data(), nullptr);
      const std::string wb = what + " · z";
      check_same(bits_differ(gy, hy, m, wb.c_str()), tname<T>());
      mk::cuda::binary(dtype, MK_BINARY_SUB, 3, sh, row.data(), bcast, x.data(), strides[v], gy.data(), nullptr);
      mk::cpu::binary(dtype, MK_BINARY_SUB, 3, sh, row.data(), bcast, x.data(), strides[v], hy.data(), nullptr);
      const std::string wr = "row - " + what;
      check_same(bits_differ(gy, hy, m, wr.c_str()), tname<T>());
      mk::cuda::unary(dtype, MK_UNARY_NEG, 3, sh, x.data(), strides[v], gy.data(), 0, nullptr);
      mk::cpu::unary(dtype, MK_UNARY_NEG, 3, sh, x.data(), strides[v], hy.data(), 0, nullptr);
      const std::string wu = "neg of " + what;
      check_same(bits_differ(gy, hy, m, wu.c_str()), tname<T>());
      mk::cuda::where(dtype, 3, sh, cnd.data(), strides[v], z.data(), out, x.data(), strides[v], gy.data(), nullptr);
      mk::cpu::where(dtype, 3, sh, cnd.data(), strides[v], z.data(), out, x.data(), strides[v], hy.data(), nullptr);
      const std::string ww = "where over " + what;
      check_same(bits_differ(gy, hy, m, ww.c_str()), tname<T>());
      expect(gy.guards_intact(), std::string(tname<T>()) + " " + names[v] + " elementwise: guards");
    }
    // into a transposed destination: y.permute(0, 2, 1) = x read as [d0, d2, d1]
    const int64_t sh[3] = {d0, d1, d2}, contig3[3] = {d1 * d2, d2, 1}, dtr[3] = {d1 * d2, 1, d1};
    mk::cuda::copy_strided(dtype, 3, sh, x.data(), contig3, gy.data(), dtr, nullptr);
    mk::cpu::copy_strided(dtype, 3, sh, x.data(), contig3, hy.data(), dtr, nullptr);
    check_same(bits_differ(gy, hy, m, "copy into a transposed destination"), tname<T>());
  }
}

static int dtype_bytes(int d) { return d == MK_F64 || d == MK_I64 ? 8 : d == MK_F32 ? 4 : 2; }

static void casts(unsigned& seed) {
  const int dtypes[] = {MK_F32, MK_F64, MK_I64, MK_BF16, MK_F16};
  // values no plain cast defines (NaN, out of the I64 or F16 range) and rounding edges: a BF16
  // midpoint plus 2^-30, and integers past double's 53 bits (2^60 + 2^52 + 1 sits just above a
  // BF16 midpoint)
  const double special[] = {NAN, INFINITY, -INFINITY, 1e300, -1e300, 9.3e18, -9.3e18, 0x1p63, -0x1p63, 3e38, 7e4,
                            -65520.0, 1.0 + 0x1p-8 + 0x1p-30};
  const int64_t big = (int64_t(1) << 60) + (int64_t(1) << 52) + 1;
  const int64_t special_i64[] = {big, -big, INT64_MAX, INT64_MIN, (int64_t(1) << 53) + 1, (int64_t(1) << 62) + 3};
  std::mt19937 rng(++seed);
  for (int sd : dtypes)
    for (int dd : dtypes)
      for (int64_t n : {1, 5, 67})
        for (int64_t shift : {0, 1}) {
          // byte buffers: source values made by casting F64 values through the CPU
          std::vector<double> v(static_cast<size_t>(n));
          for (auto& e : v) e = double(int(rng() % 2001) - 1000) / 8.0;
          for (size_t i = 3; i < v.size(); i += 4) v[i] = special[rng() % (sizeof special / sizeof special[0])];
          std::vector<unsigned char> src(size_t(n + 4) * 8 + 32), g(size_t(n + 4) * 8 + 64, 0xAB),
              h(size_t(n + 4) * 8 + 64, 0xAB);
          unsigned char* s = src.data() + 16 + shift * dtype_bytes(sd);  // malloc'd data is 16-byte aligned
          mk::cpu::cast(MK_F64, sd, n, v.data(), s, nullptr);
          if (sd == MK_I64)
            for (int64_t i = 2; i < n; i += 4)
              std::memcpy(s + i * 8, &special_i64[rng() % (sizeof special_i64 / sizeof special_i64[0])], 8);
          unsigned char* gd = g.data() + 16 + shift * dtype_bytes(dd);
          unsigned char* hd = h.data() + 16 + shift * dtype_bytes(dd);
          mk::cuda::cast(sd, dd, n, s, gd, nullptr);
          mk::cpu::cast(sd, dd, n, s, hd, nullptr);
          expect(std::memcmp(g.data(), h.data(), g.size()) == 0,
                 "cast " + std::to_string(sd) + " -> " + std::to_string(dd) + " n " + std::to_string(n) + " shift " +
                     std::to_string(shift) + ": differs from the twin (or wrote outside)");
        }
}

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  g_orders = {0, 1, 2};
  if (argc > 1) g_orders = {atoi(argv[1]), 0};  // the order asked for, checked against forward
  unsigned seed = 1;
  reductions<float>(seed);
  reductions<double>(seed);
  softmaxes<float>(seed);
  softmaxes<double>(seed);
  elementwise<float>(seed);
  elementwise<double>(seed);
  casts(seed);
  printf("dense_emu_test: %d checks, %d failures (%lld launches, %lld blocks)\n", g_checks, g_failures,
         (long long)emu::config().launches, (long long)emu::config().blocks);
  return g_failures ? 1 : 0;
}
