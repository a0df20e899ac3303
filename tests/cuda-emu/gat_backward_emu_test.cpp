// kernels/cuda/gat.cu's fused GAT backward (graph_gat_backward) run on the host by the emulator in
// cuda_runtime.h, against the CPU twin (kernels/cpu/gat.cpp, the library's own objects) and a
// float64 loop, F32 and F64, on the messy graph of graph_emu_harness.h (empty rows, self-loops,
// duplicates, a giant row), for head counts and widths that take every lane grouping (1 to 32
// lanes, several feature blocks per column), both slopes' branches, and every subset of the
// outputs. The kernels run the twin's expressions in the twin's order per element (explicit fma,
// the host's exp in the emulator), so the results must match it bitwise; both must match the
// float64 loop within rounding. Outputs sit between NaN guards; the lanes run in forward, reverse
// and shuffled order. The CPU twin is also run on 1, 2 and 3 OpenMP threads with the partition
// forced parallel (a graph large enough for parallel_worth) and must give the same bits.
//   gat_backward_emu_test [order]     order: 0 forward, 1 reverse, 2 shuffled threads (default: all)
#include <omp.h>
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cstring>
#include <string>

#include "gat.cu"

#include "graph_emu_harness.h"

struct Csc {
  std::vector<int64_t> ptr, row;
};

// The transpose of g (within a column, destinations in increasing order, stable in CSR order).
static Csc transpose(const Csr& g) {
  Csc t;
  t.ptr.assign(size_t(g.rows + 1), 0);
  for (int64_t k = 0; k < g.nnz; ++k) ++t.ptr[size_t(g.col[size_t(k)] + 1)];
  for (int64_t j = 0; j < g.rows; ++j) t.ptr[size_t(j + 1)] += t.ptr[size_t(j)];
  t.row.assign(size_t(g.nnz), 0);
  std::vector<int64_t> next(t.ptr.begin(), t.ptr.end() - 1);
  for (int64_t r = 0; r < g.rows; ++r)
    for (int64_t k = g.ptr[size_t(r)]; k < g.ptr[size_t(r + 1)]; ++k)
      t.row[size_t(next[size_t(g.col[size_t(k)])]++)] = r;
  return t;
}

template <class T>
struct Inputs {
  Buf<T> x, ss, sd, lse, gout;
  Inputs(const Csr& g, int64_t H, int64_t D, double slope, std::mt19937& rng)
      : x(g.rows * H * D), ss(g.rows * H), sd(g.rows * H), lse(g.rows * H), gout(g.rows * H * D) {
    const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
    fill(x, rng, -2, 2);
    fill(ss, rng, -3, 3);
    fill(sd, rng, -3, 3);
    fill(gout, rng, -1, 1);
    Buf<T> out(g.rows * H * D);
    cpu_gat(dtype, g.rows, g.nnz, H, D, slope, g.ptr.data(), g.col.data(), x.data(), ss.data(), sd.data(), out.data(),
            lse.data(), nullptr);
  }
};

template <class T>
static void backward_case(const Csr& g, int64_t H, int64_t D, double slope, unsigned seed, int which = 7) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const int64_t F = H * D, N = g.rows;
  const Csc t = transpose(g);
  std::mt19937 rng(seed);
  Inputs<T> in(g, H, D, slope, rng);
  const bool want_x = which & 1, want_s = which & 2, want_d = which & 4;
  Buf<T> gx_gpu(N * F), gs_gpu(N * H), gd_gpu(N * H), rd_gpu(N * H);
  Buf<T> gx_cpu(N * F), gs_cpu(N * H), gd_cpu(N * H), rd_cpu(N * H);
  char what[200];
  snprintf(what, sizeof what, "gat backward %s heads %lld width %lld slope %g outputs %d",
           sizeof(T) == 4 ? "F32" : "F64", (long long)H, (long long)D, slope, which);
  auto run = [&](auto fn, Buf<T>& gx, Buf<T>& gs, Buf<T>& gd, Buf<T>& rd) {
    return fn(dtype, N, g.nnz, H, D, slope, g.ptr.data(), g.col.data(), t.ptr.data(), t.row.data(), in.x.data(),
              in.ss.data(), in.sd.data(), in.lse.data(), in.gout.data(), want_x ? gx.data() : nullptr,
              want_s ? gs.data() : nullptr, want_d ? gd.data() : nullptr, (want_s || want_d) ? rd.data() : nullptr,
              nullptr);
  };
  const int rc = run(mk::cuda::graph_gat_backward, gx_gpu, gs_gpu, gd_gpu, rd_gpu);
  run(cpu_gat_backward, gx_cpu, gs_cpu, gd_cpu, rd_cpu);
  expect(rc == 0, std::string(what) + ": launch status");
  // the hub split with its scratch (NaN-poisoned: a slot read before it is written shows)
  const int64_t ws_bytes = mk::cuda::graph_gat_workspace(dtype, mk::kGatPassBackward, N, g.nnz, H, D, nullptr, nullptr);
  const int64_t chunks = (g.nnz + mk::kGraphSegment - 1) / mk::kGraphSegment;
  expect(ws_bytes == (chunks > 1 ? chunks * F * int64_t(sizeof(T)) : 0),
         std::string(what) + ": workspace bytes " + std::to_string(ws_bytes));
  Buf<T> ws(ws_bytes / int64_t(sizeof(T))), gx_split(N * F), gs_split(N * H), gd_split(N * H), rd_split(N * H);
  const int rc_split = mk::cuda::graph_gat_backward_split(
      dtype, N, g.nnz, H, D, slope, g.ptr.data(), g.col.data(), t.ptr.data(), t.row.data(), in.x.data(), in.ss.data(),
      in.sd.data(), in.lse.data(), in.gout.data(), want_x ? gx_split.data() : nullptr,
      want_s ? gs_split.data() : nullptr, want_d ? gd_split.data() : nullptr,
      (want_s || want_d) ? rd_split.data() : nullptr, ws_bytes ? ws.data() : nullptr, ws_bytes, nullptr);
  expect(rc_split == 0, std::string(what) + ": split launch status");
  int64_t d[4] = {0, 0, 0, 0};
  bool same = true;
  for (int pass = 0; pass < 2; ++pass) {
    Buf<T>& ox = pass ? gx_split : gx_gpu;
    Buf<T>& os = pass ? gs_split : gs_gpu;
    Buf<T>& od = pass ? gd_split : gd_gpu;
    Buf<T>& orow = pass ? rd_split : rd_gpu;
    if (want_x) same &= same_bits(ox.data(), gx_cpu.data(), N * F, &d[0]);
    if (want_s) same &= same_bits(os.data(), gs_cpu.data(), N * H, &d[1]);
    if (want_d) same &= same_bits(od.data(), gd_cpu.data(), N * H, &d[2]);
    if (want_s || want_d) same &= same_bits(orow.data(), rd_cpu.data(), N * H, &d[3]);
    expect(same, std::string(what) + (pass ? " (split)" : "") + ": " + std::to_string(d[0]) + " gx, " +
                     std::to_string(d[1]) + " gs_src, " + std::to_string(d[2]) + " gs_dst, " + std::to_string(d[3]) +
                     " row_dot differ from the twin");
  }
  expect(gx_split.guards_intact() && gs_split.guards_intact() && gd_split.guards_intact() &&
             rd_split.guards_intact() && ws.guards_intact(),
         std::string(what) + ": wrote past an output (split)");
  // float64 loop over the edges in CSR order (scatters into sources)
  std::vector<double> gx(size_t(N * F), 0), gs(size_t(N * H), 0), gd(size_t(N * H), 0), mx(size_t(N * F), 0),
      ms(size_t(N * H), 0), md(size_t(N * H), 0);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t b = g.ptr[size_t(r)], e = g.ptr[size_t(r + 1)];
      double m = -INFINITY, sum = 0;
      std::vector<double> ev(size_t(e - b)), ga(size_t(e - b));
      for (int64_t k = b; k < e; ++k) {
        const double z = double(in.ss[g.col[size_t(k)] * H + h]) + double(in.sd[r * H + h]);
        ev[size_t(k - b)] = z > 0 ? z : slope * z;
        m = std::max(m, ev[size_t(k - b)]);
        double dot = 0;
        for (int64_t q = 0; q < D; ++q)
          dot += double(in.gout[r * F + h * D + q]) * double(in.x[g.col[size_t(k)] * F + h * D + q]);
        ga[size_t(k - b)] = dot;
      }
      for (int64_t k = b; k < e; ++k) sum += std::exp(ev[size_t(k - b)] - m);
      double dr = 0;
      for (int64_t k = b; k < e; ++k) dr += std::exp(ev[size_t(k - b)] - m) / sum * ga[size_t(k - b)];
      for (int64_t k = b; k < e; ++k) {
        const int64_t j = g.col[size_t(k)];
        const double a = std::exp(ev[size_t(k - b)] - m) / sum;
        const double z = double(in.ss[j * H + h]) + double(in.sd[r * H + h]);
        const double lk = z > 0 ? 1 : slope;
        const double w = a * lk * (ga[size_t(k - b)] - dr);
        const double mag = a * (std::fabs(lk) + 1) * (std::fabs(ga[size_t(k - b)]) + std::fabs(dr) + 1);
        gs[size_t(j * H + h)] += w;
        ms[size_t(j * H + h)] += mag;
        gd[size_t(r * H + h)] += w;
        md[size_t(r * H + h)] += mag;
        for (int64_t q = 0; q < D; ++q) {
          gx[size_t(j * F + h * D + q)] += a * double(in.gout[r * F + h * D + q]);
          mx[size_t(j * F + h * D + q)] += a * std::fabs(double(in.gout[r * F + h * D + q]));
        }
      }
    }
  // the scale of the errors: lse's rounding amplified by exp, and sums of up to a giant row
  const double eps = eps_of(sizeof(T) == 4);
  const double tol = 64 * double(D + 16) * eps * 16;
  int64_t bad = 0;
  if (want_x)
    for (int64_t i = 0; i < N * F; ++i)
      if (!(std::fabs(double(gx_gpu[i]) - gx[size_t(i)]) <= tol * (mx[size_t(i)] + 1e-30))) ++bad;
  if (want_s)
    for (int64_t i = 0; i < N * H; ++i)
      if (!(std::fabs(double(gs_gpu[i]) - gs[size_t(i)]) <= tol * (ms[size_t(i)] + 1e-30))) ++bad;
  if (want_d)
    for (int64_t i = 0; i < N * H; ++i)
      if (!(std::fabs(double(gd_gpu[i]) - gd[size_t(i)]) <= tol * (md[size_t(i)] + 1e-30))) ++bad;
  expect(bad == 0, std::string(what) + ": " + std::to_string(bad) + " values off the float64 loop");
  expect(gx_gpu.guards_intact() && gs_gpu.guards_intact() && gd_gpu.guards_intact() && rd_gpu.guards_intact(),
         std::string(what) + ": wrote past an output");
  // outputs not asked for stay untouched (still the NaN guard value everywhere)
  auto untouched = [](Buf<T>& b) {
    for (int64_t i = 0; i < b.n; ++i)
      if (b[i] == b[i]) return false;
    return true;
  };
  if (!want_x) expect(untouched(gx_gpu), std::string(what) + ": gx written though not asked for");
  if (!want_s) expect(untouched(gs_gpu), std::string(what) + ": gs_src written though not asked for");
  if (!want_d) expect(untouched(gd_gpu), std::string(what) + ": gs_dst written though not asked for");
}

// The CPU twin on 1, 2 and 3 threads, on a graph big enough for the parallel partition: same bits.
template <class T>
static void threads_case(const Csr& g, int64_t H, int64_t D, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const int64_t F = H * D, N = g.rows;
  const Csc t = transpose(g);
  std::mt19937 rng(seed);
  Inputs<T> in(g, H, D, 0.2, rng);
  std::vector<std::vector<T>> res;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    std::vector<T> gx(size_t(N * F)), gs(size_t(N * H)), gd(size_t(N * H)), rd(size_t(N * H));
    cpu_gat_backward(dtype, N, g.nnz, H, D, 0.2, g.ptr.data(), g.col.data(), t.ptr.data(), t.row.data(), in.x.data(),
                     in.ss.data(), in.sd.data(), in.lse.data(), in.gout.data(), gx.data(), gs.data(), gd.data(),
                     rd.data(), nullptr);
    gx.insert(gx.end(), gs.begin(), gs.end());
    gx.insert(gx.end(), gd.begin(), gd.end());
    res.push_back(gx);
  }
  omp_set_num_threads(1);
  int64_t d1 = 0, d2 = 0;
  same_bits(res[0].data(), res[1].data(), int64_t(res[0].size()), &d1);
  same_bits(res[0].data(), res[2].data(), int64_t(res[0].size()), &d2);
  expect(d1 == 0 && d2 == 0, std::string("gat backward CPU threads ") + (sizeof(T) == 4 ? "F32" : "F64") + ": " +
                                 std::to_string(d1) + " (2 threads) and " + std::to_string(d2) +
                                 " (3 threads) values differ from 1 thread");
}

int main(int argc, char** argv) {
  const Csr g = messy(17, 61, 420, false);
  const Csr tiny = messy(18, 5, 6, false);
  const Csr empty = empty_graph(3);
  constexpr int64_t S = mk::kGraphSegment;
  const Csr hub = hub_graph(25, 3000, {0, S, 2 * S + 5});
  // a star into node 0 and out of node 1 (hub column): 40000 edges each way, for the threads
  Csr star;
  star.rows = 40001;
  star.ptr.push_back(0);
  for (int64_t r = 0; r < star.rows; ++r) {
    if (r == 0)
      for (int64_t j = 2; j < star.rows; ++j) star.col.push_back(j);
    else if (r >= 2)
      star.col.push_back(1);
    star.ptr.push_back(int64_t(star.col.size()));
  }
  star.nnz = int64_t(star.col.size());
  for_each_order_and_level(argc, argv, [&] {
    unsigned seed = 900;
    // (heads, width): lanes per (row, head) of 1, 2, 4, 8, 32 (+ 1 extra head), feature groups of
    // 1 to 32 lanes and several blocks per column; widths below, at and above the dot's 8 lanes
    const int64_t shapes[][2] = {{1, 1}, {1, 3}, {4, 4}, {8, 4}, {4, 16}, {2, 9}, {3, 32}, {33, 2}, {1, 70}};
    for (auto& sh : shapes)
      for (double slope : {0.2, 0.0}) {
        backward_case<float>(g, sh[0], sh[1], slope, ++seed);
        backward_case<double>(g, sh[0], sh[1], slope, ++seed);
      }
    for (int which = 0; which < 8; ++which) backward_case<double>(g, 2, 5, 1.7, ++seed, which);
    backward_case<double>(tiny, 2, 3, 0.2, ++seed);
    backward_case<float>(empty, 2, 5, 0.2, ++seed);
    // hub rows and columns (issue 15): rows of S - 1, S, S + 1, 2S, 2S + 1, ... non-zeros and a
    // giant row; its transpose has hub columns of its own (a row's sources drawn at random)
    const int64_t hub_shapes[][2] = {{1, 1}, {4, 16}, {33, 2}, {1, 70}};
    for (auto& sh : hub_shapes) {
      backward_case<float>(hub, sh[0], sh[1], 0.2, ++seed);
      backward_case<double>(hub, sh[0], sh[1], 0.0, ++seed);
    }
    for (int which = 0; which < 8; ++which) backward_case<float>(hub, 2, 5, 1.7, ++seed, which);
  });
  threads_case<float>(hub, 4, 16, 79);
  threads_case<double>(star, 2, 8, 80);
  const Csr big = messy(19, 3000, 60000, true);
  threads_case<float>(big, 4, 16, 77);
  threads_case<double>(big, 3, 9, 78);
  printf("gat_backward_emu_test: %d checks, %d failures (%lld launches, %lld blocks)\n", g_checks, g_failures,
         (long long)emu::config().launches, (long long)emu::config().blocks);
  return g_failures ? 1 : 0;
}
