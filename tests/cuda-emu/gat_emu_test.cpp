// kernels/cuda/gat.cu run on the host by the emulator in cuda_runtime.h, against the CPU twin
// (kernels/cpu/gat.cpp, the library's own objects) and a float64 loop: edge softmax (with lse out,
// then in one pass from that lse) and the fused GAT aggregation, F32 and F64, on a graph with
// empty rows, self-loops, duplicates and a giant row (~40 % of the edges), for head counts and
// widths that take every launch shape (lane groups of 1 to 32, 1, 2 or 4 columns per lane, several
// column blocks per row). Both kernels run the twin's arithmetic in the twin's order per element
// (explicit fma, the host's exp/log in the emulator), so they must match it bitwise; both must
// match the float64 loop within rounding. Outputs sit between NaN guards that must stay
// untouched, and the lanes run in forward, reverse and shuffled order.
//   gat_emu_test [order]     order: 0 forward, 1 reverse, 2 shuffled threads (default: all three)
#include <omp.h>
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cstring>
#include <limits>
#include <string>

#include "gat.cu"

#include "graph_emu_harness.h"

// The hub split (issue 15): the CUDA kernels with the split's scratch (NaN-poisoned: a slot read
// before it is written shows) and the CPU twin on 3 threads (the hub rows' segments shared by the
// threads where the work is large enough) must give the bits of the single-thread twin.
template <class T>
static void split_and_threads_softmax(const Csr& g, int64_t H, const Buf<T>& s, const Buf<T>& y_cpu,
                                      const Buf<T>& l_cpu, const Buf<T>& y1_gpu, const char* what) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const int64_t ws_bytes =
      mk::cuda::graph_gat_workspace(dtype, mk::kGatPassSoftmax, g.rows, g.nnz, H, 1, nullptr, nullptr);
  const int64_t chunks = (g.nnz + mk::kGraphSegment - 1) / mk::kGraphSegment;
  expect(ws_bytes == (chunks > 1 ? chunks * 6 * H * int64_t(sizeof(T)) : 0),
         std::string(what) + ": workspace bytes " + std::to_string(ws_bytes));
  Buf<T> ws(ws_bytes / int64_t(sizeof(T))), y(g.nnz * H), l(g.rows * H), y1(g.nnz * H), y3(g.nnz * H), l3(g.rows * H);
  int rc = mk::cuda::graph_edge_softmax_split(dtype, g.rows, g.nnz, H, g.ptr.data(), s.data(), nullptr, y.data(),
                                              l.data(), ws_bytes ? ws.data() : nullptr, ws_bytes, nullptr);
  expect(rc == 0, std::string(what) + ": split launch status");
  ws.poison();
  rc = mk::cuda::graph_edge_softmax_split(dtype, g.rows, g.nnz, H, g.ptr.data(), s.data(), l_cpu.data(), y1.data(),
                                          nullptr, ws_bytes ? ws.data() : nullptr, ws_bytes, nullptr);
  expect(rc == 0, std::string(what) + ": split launch status (lse in)");
  omp_set_num_threads(3);
  cpu_edge_softmax(dtype, g.rows, g.nnz, H, g.ptr.data(), s.data(), nullptr, y3.data(), l3.data(), nullptr);
  omp_set_num_threads(1);
  int64_t d[5] = {0, 0, 0, 0, 0};
  same_bits(y.data(), y_cpu.data(), g.nnz * H, &d[0]);
  same_bits(l.data(), l_cpu.data(), g.rows * H, &d[1]);
  same_bits(y1.data(), y1_gpu.data(), g.nnz * H, &d[2]);
  same_bits(y3.data(), y_cpu.data(), g.nnz * H, &d[3]);
  same_bits(l3.data(), l_cpu.data(), g.rows * H, &d[4]);
  expect(d[0] + d[1] + d[2] == 0, std::string(what) + ": with the split, " + std::to_string(d[0]) + " y, " +
                                      std::to_string(d[1]) + " lse, " + std::to_string(d[2]) +
                                      " y from lse differ from the twin");
  expect(d[3] + d[4] == 0, std::string(what) + ": CPU on 3 threads, " + std::to_string(d[3]) + " y and " +
                               std::to_string(d[4]) + " lse differ from 1 thread");
  expect(y.guards_intact() && l.guards_intact() && y1.guards_intact() && ws.guards_intact(),
         std::string(what) + ": wrote past an output (split)");
}

template <class T>
static void split_and_threads_gat(const Csr& g, int64_t H, int64_t D, double slope, const Buf<T>& x, const Buf<T>& ss,
                                  const Buf<T>& sd, const Buf<T>& o_cpu, const Buf<T>& l_cpu, bool with_lse,
                                  const char* what) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const int64_t F = H * D;
  const int64_t ws_bytes =
      mk::cuda::graph_gat_workspace(dtype, mk::kGatPassForward, g.rows, g.nnz, H, D, nullptr, nullptr);
  const int64_t chunks = (g.nnz + mk::kGraphSegment - 1) / mk::kGraphSegment;
  expect(ws_bytes == (chunks > 1 ? chunks * (F + 2 * H) * int64_t(sizeof(T)) : 0),
         std::string(what) + ": workspace bytes " + std::to_string(ws_bytes));
  Buf<T> ws(ws_bytes / int64_t(sizeof(T))), o(g.rows * F), l(g.rows * H), o3(g.rows * F), l3(g.rows * H);
  const int rc = mk::cuda::graph_gat_split(dtype, g.rows, g.nnz, H, D, slope, g.ptr.data(), g.col.data(), x.data(),
                                           ss.data(), sd.data(), o.data(), with_lse ? l.data() : nullptr,
                                           ws_bytes ? ws.data() : nullptr, ws_bytes, nullptr);
  expect(rc == 0, std::string(what) + ": split launch status");
  omp_set_num_threads(3);
  cpu_gat(dtype, g.rows, g.nnz, H, D, slope, g.ptr.data(), g.col.data(), x.data(), ss.data(), sd.data(), o3.data(),
          with_lse ? l3.data() : nullptr, nullptr);
  omp_set_num_threads(1);
  int64_t d[4] = {0, 0, 0, 0};
  same_bits(o.data(), o_cpu.data(), g.rows * F, &d[0]);
  same_bits(o3.data(), o_cpu.data(), g.rows * F, &d[2]);
  if (with_lse) {
    same_bits(l.data(), l_cpu.data(), g.rows * H, &d[1]);
    same_bits(l3.data(), l_cpu.data(), g.rows * H, &d[3]);
  }
  expect(d[0] + d[1] == 0, std::string(what) + ": with the split, " + std::to_string(d[0]) + " out and " +
                               std::to_string(d[1]) + " lse differ from the twin");
  expect(d[2] + d[3] == 0, std::string(what) + ": CPU on 3 threads, " + std::to_string(d[2]) + " out and " +
                               std::to_string(d[3]) + " lse differ from 1 thread");
  expect(o.guards_intact() && l.guards_intact() && ws.guards_intact(),
         std::string(what) + ": wrote past an output (split)");
}

template <class T>
static void softmax_case(const Csr& g, int64_t H, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  std::mt19937 rng(seed);
  Buf<T> s(g.nnz * H), y_gpu(g.nnz * H), y_cpu(g.nnz * H), l_gpu(g.rows * H), l_cpu(g.rows * H), y1(g.nnz * H);
  fill(s, rng, -8, 8);
  char what[160];
  snprintf(what, sizeof what, "edge softmax %s heads %lld", sizeof(T) == 4 ? "F32" : "F64", (long long)H);
  const int rc = mk::cuda::graph_edge_softmax(dtype, g.rows, g.nnz, H, g.ptr.data(), s.data(), nullptr, y_gpu.data(),
                                              l_gpu.data(), nullptr);
  cpu_edge_softmax(dtype, g.rows, g.nnz, H, g.ptr.data(), s.data(), nullptr, y_cpu.data(), l_cpu.data(), nullptr);
  expect(rc == 0, std::string(what) + ": launch status");
  int64_t d1 = 0, d2 = 0;
  const bool y_same = same_bits(y_gpu.data(), y_cpu.data(), g.nnz * H, &d1);
  const bool l_same = same_bits(l_gpu.data(), l_cpu.data(), g.rows * H, &d2);
  expect(y_same && l_same,
         std::string(what) + ": " + std::to_string(d1) + " y and " + std::to_string(d2) + " lse differ from the twin");
  // the one-pass form from the lse
  const int rc1 = mk::cuda::graph_edge_softmax(dtype, g.rows, g.nnz, H, g.ptr.data(), s.data(), l_gpu.data(), y1.data(),
                                               nullptr, nullptr);
  expect(rc1 == 0, std::string(what) + ": launch status (lse in)");
  split_and_threads_softmax<T>(g, H, s, y_cpu, l_cpu, y1, what);
  // float64 reference
  const double eps = eps_of(sizeof(T) == 4);
  int64_t bad = 0;
  for (int64_t r = 0; r < g.rows; ++r)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t b = g.ptr[size_t(r)], e = g.ptr[size_t(r + 1)];
      if (b == e) {
        if (!(std::isinf(double(l_gpu[r * H + h])) && l_gpu[r * H + h] < 0)) ++bad;
        continue;
      }
      double m = -INFINITY, sum = 0;
      for (int64_t k = b; k < e; ++k) m = std::max(m, double(s[k * H + h]));
      for (int64_t k = b; k < e; ++k) sum += std::exp(double(s[k * H + h]) - m);
      const double tol = 8 * double(e - b + 8) * eps;
      for (int64_t k = b; k < e; ++k) {
        const double ref = std::exp(double(s[k * H + h]) - m) / sum;
        if (!(std::fabs(double(y_gpu[k * H + h]) - ref) <= tol * ref + 1e-300)) ++bad;
        // exp(s - lse): lse's rounding (|lse| ulps) is amplified by nothing more than exp's slope
        const double tol1 = tol + 4 * eps * (std::fabs(m) + 16);
        if (!(std::fabs(double(y1[k * H + h]) - ref) <= tol1 * ref + 1e-300)) ++bad;
      }
      if (!(std::fabs(double(l_gpu[r * H + h]) - (m + std::log(sum))) <= tol * (std::fabs(m) + 1))) ++bad;
    }
  expect(bad == 0, std::string(what) + ": " + std::to_string(bad) + " values off the float64 loop");
  expect(y_gpu.guards_intact() && l_gpu.guards_intact() && y1.guards_intact(),
         std::string(what) + ": wrote past the output");
}

template <class T>
static void gat_case(const Csr& g, int64_t H, int64_t D, double slope, unsigned seed, bool with_lse = true) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const int64_t F = H * D;
  std::mt19937 rng(seed);
  Buf<T> x(g.rows * F), ss(g.rows * H), sd(g.rows * H), o_gpu(g.rows * F), o_cpu(g.rows * F), l_gpu(g.rows * H),
      l_cpu(g.rows * H);
  fill(x, rng, -2, 2);
  fill(ss, rng, -3, 3);
  fill(sd, rng, -3, 3);
  char what[160];
  snprintf(what, sizeof what, "gat %s heads %lld width %lld slope %g lse %d", sizeof(T) == 4 ? "F32" : "F64",
           (long long)H, (long long)D, slope, int(with_lse));
  const int rc = mk::cuda::graph_gat(dtype, g.rows, g.nnz, H, D, slope, g.ptr.data(), g.col.data(), x.data(), ss.data(),
                                     sd.data(), o_gpu.data(), with_lse ? l_gpu.data() : nullptr, nullptr);
  cpu_gat(dtype, g.rows, g.nnz, H, D, slope, g.ptr.data(), g.col.data(), x.data(), ss.data(), sd.data(), o_cpu.data(),
          with_lse ? l_cpu.data() : nullptr, nullptr);
  expect(rc == 0, std::string(what) + ": launch status");
  split_and_threads_gat<T>(g, H, D, slope, x, ss, sd, o_cpu, l_cpu, with_lse, what);
  int64_t d1 = 0, d2 = 0;
  const bool lse_same = !with_lse || same_bits(l_gpu.data(), l_cpu.data(), g.rows * H, &d2);
  const bool out_same = same_bits(o_gpu.data(), o_cpu.data(), g.rows * F, &d1);
  expect(out_same && lse_same, std::string(what) + ": " + std::to_string(d1) + " out and " + std::to_string(d2) +
                                   " lse differ from the twin");
  const double eps = eps_of(sizeof(T) == 4);
  int64_t bad = 0;
  std::vector<double> alpha;
  for (int64_t r = 0; r < g.rows; ++r) {
    const int64_t b = g.ptr[size_t(r)], e = g.ptr[size_t(r + 1)];
    for (int64_t h = 0; h < H; ++h) {
      alpha.assign(size_t(e - b), 0.0);
      double m = -INFINITY, sum = 0;
      for (int64_t k = b; k < e; ++k) {
        const double z = double(ss[g.col[size_t(k)] * H + h]) + double(sd[r * H + h]);
        alpha[size_t(k - b)] = z > 0 ? z : slope * z;
        m = std::max(m, alpha[size_t(k - b)]);
      }
      for (auto& a : alpha) sum += (a = std::exp(a - m));
      const double tol = 16 * double(e - b + 8) * eps;
      for (int64_t d = 0; d < D; ++d) {
        double ref = 0, mag = 0;
        for (int64_t k = b; k < e; ++k) {
          const double t = alpha[size_t(k - b)] / sum * double(x[g.col[size_t(k)] * F + h * D + d]);
          ref += t;
          mag += std::fabs(t);
        }
        if (!(std::fabs(double(o_gpu[r * F + h * D + d]) - ref) <= tol * mag + 1e-300)) ++bad;
      }
      if (with_lse) {
        const double l = b == e ? -INFINITY : m + std::log(sum);
        const double got = double(l_gpu[r * H + h]);
        if (b == e ? !(std::isinf(got) && got < 0) : !(std::fabs(got - l) <= tol * (std::fabs(l) + 1))) ++bad;
      }
    }
  }
  expect(bad == 0, std::string(what) + ": " + std::to_string(bad) + " values off the float64 loop");
  expect(o_gpu.guards_intact() && l_gpu.guards_intact(), std::string(what) + ": wrote past the output");
}

// Scores of -inf over whole segments of hub rows (the first, a middle one, the last, a whole row)
// and a NaN in one segment: the split's combination rules for empty and poisoned segments, against
// the twin (bitwise, with and without the scratch) and, for the finite rows, the float64 loop.
template <class T>
static void softmax_inf_case(const Csr& g, int64_t H, unsigned seed) {
  constexpr int64_t S = mk::kGraphSegment;
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  std::mt19937 rng(seed);
  Buf<T> s(g.nnz * H), y_cpu(g.nnz * H), l_cpu(g.rows * H), y1(g.nnz * H);
  fill(s, rng, -8, 8);
  int row_seen = 0;
  for (int64_t r = 0; r < g.rows; ++r) {
    const int64_t b = g.ptr[size_t(r)], e = g.ptr[size_t(r + 1)];
    if (e - b <= S) continue;
    ++row_seen;
    for (int64_t k = b; k < e; ++k) {
      const int64_t j = (k - b) / S, last = (e - b - 1) / S;
      const bool inf = row_seen == 3 || (row_seen % 2 == 1 && j == 0) || (row_seen % 2 == 0 && j == last) ||
                       (j == 1 && last > 2);
      if (inf)
        for (int64_t h = 0; h < H; ++h) s[k * H + h] = -std::numeric_limits<T>::infinity();
    }
    if (row_seen == 4) s[(b + S + 3) * H] = std::numeric_limits<T>::quiet_NaN();
  }
  char what[160];
  snprintf(what, sizeof what, "edge softmax -inf segments %s heads %lld", tname<T>(), (long long)H);
  cpu_edge_softmax(dtype, g.rows, g.nnz, H, g.ptr.data(), s.data(), nullptr, y_cpu.data(), l_cpu.data(), nullptr);
  Buf<T> y_gpu(g.nnz * H), l_gpu(g.rows * H);
  const int rc = mk::cuda::graph_edge_softmax(dtype, g.rows, g.nnz, H, g.ptr.data(), s.data(), nullptr, y_gpu.data(),
                                              l_gpu.data(), nullptr);
  expect(rc == 0, std::string(what) + ": launch status");
  int64_t d1 = 0, d2 = 0;
  same_bits(y_gpu.data(), y_cpu.data(), g.nnz * H, &d1);
  same_bits(l_gpu.data(), l_cpu.data(), g.rows * H, &d2);
  expect(d1 + d2 == 0, std::string(what) + ": " + std::to_string(d1) + " y and " + std::to_string(d2) +
                           " lse differ from the twin");
  mk::cuda::graph_edge_softmax(dtype, g.rows, g.nnz, H, g.ptr.data(), s.data(), l_cpu.data(), y1.data(), nullptr,
                               nullptr);
  split_and_threads_softmax<T>(g, H, s, y_cpu, l_cpu, y1, what);
  // float64: rows with some finite score and no NaN
  const double eps = eps_of(sizeof(T) == 4);
  int64_t bad = 0, checked = 0, nan_rows = 0, empty_rows = 0;
  for (int64_t r = 0; r < g.rows; ++r)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t b = g.ptr[size_t(r)], e = g.ptr[size_t(r + 1)];
      if (b == e) continue;
      double m = -INFINITY;
      bool nan = false;
      for (int64_t k = b; k < e; ++k) {
        nan |= std::isnan(double(s[k * H + h]));
        m = std::max(m, double(s[k * H + h]));
      }
      if (nan) {
        nan_rows += std::isnan(double(l_cpu[r * H + h])) && std::isnan(double(y_cpu[b * H + h]));
        continue;
      }
      if (m == -INFINITY) {  // every score -inf: y 0, lse -inf
        bool ok = std::isinf(double(l_cpu[r * H + h])) && l_cpu[r * H + h] < 0;
        for (int64_t k = b; k < e; ++k) ok &= y_cpu[k * H + h] == T(0);
        empty_rows += ok;
        continue;
      }
      double sum = 0;
      for (int64_t k = b; k < e; ++k) sum += std::exp(double(s[k * H + h]) - m);
      const double tol = 8 * double(e - b + 8) * eps;
      for (int64_t k = b; k < e; ++k) {
        const double ref = std::exp(double(s[k * H + h]) - m) / sum;
        ++checked;
        if (!(std::fabs(double(y_cpu[k * H + h]) - ref) <= tol * ref + 1e-300)) ++bad;
      }
      if (!(std::fabs(double(l_cpu[r * H + h]) - (m + std::log(sum))) <= tol * (std::fabs(m) + 1))) ++bad;
    }
  expect(bad == 0 && checked > 0, std::string(what) + ": " + std::to_string(bad) + " of " + std::to_string(checked) +
                                      " values off the float64 loop");
  expect(nan_rows == 1 && empty_rows == H, std::string(what) + ": " + std::to_string(nan_rows) +
                                               " NaN (row, head)s with NaN out (want 1), " +
                                               std::to_string(empty_rows) + " all -inf ones with 0 / -inf (want " +
                                               std::to_string(H) + ")");
}

int main(int argc, char** argv) {
  const Csr g = messy(17, 61, 420, false);
  const Csr tiny = messy(18, 5, 6, false);
  const Csr empty = empty_graph(3);
  constexpr int64_t S = mk::kGraphSegment;
  const Csr hub = hub_graph(23, 40000, {0, S, 2 * S + 5});  // hub rows at non-zero 0 and on the S grid
  const Csr hub_small = hub_graph(24, 700, {S + 3});
  for_each_order_and_level(argc, argv, [&] {
    unsigned seed = 300;
    for (int64_t H : {1, 2, 3, 8, 33}) {
      softmax_case<float>(g, H, ++seed);
      softmax_case<double>(g, H, ++seed);
    }
    softmax_case<float>(tiny, 2, ++seed);
    softmax_case<double>(empty, 3, ++seed);
    // (heads, width): F = 1, 3, 16, 32 (one group of <= 32 lanes), 64 (2 per lane), 96 (3 -> 4
    // per lane), 128, 264 (several column blocks), 200 with one head
    const int64_t shapes[][2] = {{1, 1}, {1, 3},  {4, 4},  {8, 4},  {4, 16},
                                 {8, 8}, {3, 32}, {2, 64}, {8, 33}, {1, 200}};
    for (auto& sh : shapes)
      for (double slope : {0.2, 0.0}) {
        gat_case<float>(g, sh[0], sh[1], slope, ++seed);
        gat_case<double>(g, sh[0], sh[1], slope, ++seed);
      }
    gat_case<float>(g, 4, 16, 1.7, ++seed, false);
    gat_case<double>(tiny, 2, 3, 0.2, ++seed);
    gat_case<float>(empty, 2, 5, 0.2, ++seed);
    // hub rows (issue 15): rows of S - 1, S, S + 1, 2S, 2S + 1, ... non-zeros on and off the S
    // grid, a giant row (large enough for the CPU twin's parallel split on 3 threads)
    for (int64_t H : {1, 3, 8}) {
      softmax_case<float>(hub, H, ++seed);
      softmax_case<double>(hub_small, H, ++seed);
    }
    softmax_inf_case<float>(hub, 2, ++seed);
    softmax_inf_case<double>(hub_small, 3, ++seed);
    const int64_t hub_shapes[][2] = {{1, 1}, {4, 16}, {2, 64}, {8, 33}};
    for (auto& sh : hub_shapes) {
      gat_case<float>(hub, sh[0], sh[1], 0.2, ++seed);
      gat_case<double>(hub_small, sh[0], sh[1], 0.0, ++seed);
    }
    gat_case<double>(hub, 4, 16, 0.2, ++seed, false);
  });
  printf("gat_emu_test: %d checks, %d failures (%lld launches, %lld blocks)\n", g_checks, g_failures,
         (long long)emu::config().launches, (long long)emu::config().blocks);
  return g_failures ? 1 : 0;
}
