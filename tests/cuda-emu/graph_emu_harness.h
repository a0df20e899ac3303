// The harness shared by the graph-family emulator tests (graph_emu_test.cpp, gat_emu_test.cpp):
// the emulator's shared memory, failure counting, guarded buffers (NaN, or -777 for integers, on
// both sides of the data, optionally shifted off a 16-byte boundary: emu_check.h), the messy test graph (empty
// rows, self-loops, duplicates, a giant row) and the comparisons. Include it after the .cu under
// test (which brings in the emulator's cuda_runtime.h).
#pragma once

#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mk/graph_segment.h"

namespace {
alignas(16) unsigned char g_smem[256 * 1024 + 4096];
}
inline unsigned char* emu::smem() { return g_smem; }

#include "emu_check.h"  // expect, Buf (NaN / -777 guards), same_bits, tname

// The CPU twins of edge softmax and GAT with the workspace they need: the CPU kernels allocate
// nothing (native/ passes them host scratch of graph_gat_workspace's size; their plain forms
// answer KERNEL_UNSUPPORTED). The block is NaN-poisoned (0xff bytes), so a buffer read before the
// kernel writes it shows; a status other than 0 is a failure.
inline std::vector<unsigned char> cpu_workspace(int64_t bytes) {
  return std::vector<unsigned char>(size_t(bytes), 0xff);
}
inline int cpu_edge_softmax(int dtype, int64_t rows, int64_t nnz, int64_t heads, const int64_t* row_ptr,
                            const void* scores, const void* lse_in, void* out, void* lse_out, void* stream) {
  auto ws =
      cpu_workspace(mk::cpu::graph_gat_workspace(dtype, mk::kGatPassSoftmax, rows, nnz, heads, 1, row_ptr, nullptr));
  const int rc = mk::cpu::graph_edge_softmax_split(dtype, rows, nnz, heads, row_ptr, scores, lse_in, out, lse_out,
                                                   ws.data(), int64_t(ws.size()), stream);
  expect(rc == 0, "CPU edge softmax: status");
  return rc;
}
inline int cpu_gat(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope,
                   const int64_t* row_ptr, const int64_t* col, const void* x, const void* s_src, const void* s_dst,
                   void* out, void* lse, void* stream) {
  auto ws = cpu_workspace(
      mk::cpu::graph_gat_workspace(dtype, mk::kGatPassForward, rows, nnz, heads, width, row_ptr, nullptr));
  const int rc = mk::cpu::graph_gat_split(dtype, rows, nnz, heads, width, slope, row_ptr, col, x, s_src, s_dst, out,
                                          lse, ws.data(), int64_t(ws.size()), stream);
  expect(rc == 0, "CPU GAT forward: status");
  return rc;
}
inline int cpu_gat_backward(int dtype, int64_t rows, int64_t nnz, int64_t heads, int64_t width, double slope,
                            const int64_t* row_ptr, const int64_t* col, const int64_t* col_ptr, const int64_t* csc_row,
                            const void* x, const void* s_src, const void* s_dst, const void* lse, const void* gout,
                            void* gx, void* gs_src, void* gs_dst, void* row_dot, void* stream) {
  auto ws = cpu_workspace(
      mk::cpu::graph_gat_workspace(dtype, mk::kGatPassBackward, rows, nnz, heads, width, row_ptr, col_ptr));
  const int rc = mk::cpu::graph_gat_backward_split(dtype, rows, nnz, heads, width, slope, row_ptr, col, col_ptr,
                                                   csc_row, x, s_src, s_dst, lse, gout, gx, gs_src, gs_dst, row_dot,
                                                   ws.data(), int64_t(ws.size()), stream);
  expect(rc == 0, "CPU GAT backward: status");
  return rc;
}

struct Csr {
  int64_t rows = 0, nnz = 0;
  std::vector<int64_t> ptr, col;
};

// rows nodes: the last quarter receives nothing; row 1 takes ~40 % of the edges; self-loops and
// duplicates; columns sorted within a row when sorted_rows (as the Java graph makes them, not
// required by the kernels), else in the order they were drawn.
static Csr messy(unsigned seed, int64_t rows, int64_t edges, bool sorted_rows = true) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  const int64_t active = std::max<int64_t>(2, rows - rows / 4);
  std::vector<std::vector<int64_t>> in(static_cast<size_t>(rows));
  for (int64_t e = 0; e < edges; ++e) {
    const int64_t s = int64_t(rng() % uint64_t(active));
    const double p = u(rng);
    const int64_t d = p < 0.4 ? 1 : p < 0.5 ? s : int64_t(rng() % uint64_t(active));
    in[size_t(d)].push_back(s);
    if (u(rng) < 0.1) in[size_t(d)].push_back(s);
  }
  Csr g;
  g.rows = rows;
  g.ptr.push_back(0);
  for (auto& r : in) {
    if (sorted_rows) std::sort(r.begin(), r.end());
    for (int64_t c : r) g.col.push_back(c);
    g.ptr.push_back(int64_t(g.col.size()));
  }
  g.nnz = int64_t(g.col.size());
  return g;
}

// A graph of hub rows (issue 15: the split of rows longer than kGraphSegment non-zeros,
// mk/graph_segment.h; graph_emu_test.cpp, gat_emu_test.cpp, gat_backward_emu_test.cpp).
// rows: the `lead` rows first (to put a hub row at non-zero 0 or on the S grid), then isolated
// nodes; rows of S - 1, S, S + 1, 2S, 2S + 1 non-zeros at offsets off the S grid; hub rows back to
// back; a giant row of `giant` non-zeros; columns drawn from [0, rows).
static Csr hub_graph(unsigned seed, int64_t giant, std::vector<int64_t> lead) {
  constexpr int64_t S = mk::kGraphSegment;
  std::mt19937 rng(seed);
  std::vector<int64_t> lengths = std::move(lead);
  for (int64_t n : {int64_t(0), int64_t(3), S - 1, int64_t(0), S, S + 1, int64_t(7), 2 * S, 2 * S + 1, int64_t(0),
                    S + 1, 3 * S, int64_t(1), int64_t(0), giant, S, int64_t(0), S - 1, int64_t(5), S + 2, int64_t(0),
                    4 * S - 1, int64_t(2), int64_t(0)})
    lengths.push_back(n);
  Csr g;
  g.rows = int64_t(lengths.size()) + 40;  // 40 more isolated nodes (columns that no row reaches too)
  g.ptr.push_back(0);
  for (int64_t r = 0; r < g.rows; ++r) {
    const int64_t n = r < int64_t(lengths.size()) ? lengths[size_t(r)] : 0;
    for (int64_t k = 0; k < n; ++k) g.col.push_back(int64_t(rng() % uint64_t(g.rows - 10)));
    g.ptr.push_back(int64_t(g.col.size()));
  }
  g.nnz = int64_t(g.col.size());
  return g;
}

template <class T>
static void fill(Buf<T>& b, std::mt19937& rng, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < b.n; ++i) b[i] = T(u(rng));
}

template <class T>
static bool same_bits(const T* a, const T* b, int64_t n, int64_t* differ) {
  *differ = 0;
  for (int64_t i = 0; i < n; ++i)
    if (std::memcmp(a + i, b + i, sizeof(T)) != 0) ++*differ;
  return *differ == 0;
}

inline double eps_of(bool f32) { return f32 ? 0x1p-23 : 0x1p-52; }

// A graph of `rows` nodes and no edges.
static Csr empty_graph(int64_t rows) {
  Csr g;
  g.rows = rows;
  g.ptr.assign(size_t(rows + 1), 0);
  return g;
}

// body() for every thread order of the emulator (argv[1] picks one: 0 forward, 1 reverse, 2
// shuffled; default all three) and every ISA level of the CPU twin this CPU has (AVX2, and AVX-512
// where present), on one OpenMP thread.
template <class Body>
static void for_each_order_and_level(int argc, char** argv, Body body) {
  omp_set_num_threads(1);
  std::vector<int> orders = {0, 1, 2};
  if (argc > 1) orders = {atoi(argv[1])};
  std::vector<int> levels = {2};
  if (__builtin_cpu_supports("avx512f")) levels.push_back(3);
  for (int order : orders)
    for (int level : levels) {
      mk::cpu::set_isa_level(level);
      emu::config().order = order;
      body();
    }
}
