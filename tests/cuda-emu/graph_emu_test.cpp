// kernels/cuda/graph.cu run on the host by the emulator in cuda_runtime.h, against the CPU twin
// (kernels/cpu/graph.cpp, the library's own objects): spmm for every reduction, weighted or not,
// one or more heads, feature widths that take every launch shape (lane groups of 1 to 32, one or
// two register chunks, several column blocks per row), 16-byte and scalar loads (an x that is
// not 16-byte aligned), on a graph with empty rows, self-loops, duplicates and a giant row. spmm
// must be bitwise equal to the twin (same arithmetic in the same order); sddmm, whose lanes add
// their partial sums in a butterfly, within rounding of the twin and of a float64 loop; the
// structure check must count what the twin counts. Every output sits between NaN guards that must
// stay untouched, and the lanes run in forward, reverse and shuffled order.
//   graph_emu_test [order]     order: 0 forward, 1 reverse, 2 shuffled threads (default: all three)
#include <omp.h>
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cstring>
#include <string>

#include "graph.cu"

#include "graph_emu_harness.h"

template <class T>
static void spmm_case(const Csr& g, int reduce, bool weighted, int64_t heads, int64_t width, int64_t shift,
                      unsigned seed, bool indexed = false) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const int64_t F = heads * width;
  std::mt19937 rng(seed);
  Buf<T> x(g.rows * F, shift), w(g.nnz * heads), out_gpu(g.rows * F, shift), out_cpu(g.rows * F);
  Buf<int64_t> arg_gpu(g.rows * F), arg_cpu(g.rows * F);
  fill(x, rng, -2, 2);
  fill(w, rng, -1.5, 1.5);
  // indexed: the weights read through a permutation of [0, nnz) (as the transposed pass does)
  std::vector<int64_t> perm(size_t(g.nnz));
  for (int64_t k = 0; k < g.nnz; ++k) perm[size_t(k)] = k;
  std::shuffle(perm.begin(), perm.end(), rng);
  const int64_t* widx = indexed ? perm.data() : nullptr;
  const bool extreme = reduce >= MK_GRAPH_REDUCE_MAX;
  const int rc = mk::cuda::graph_spmm(dtype, reduce, g.rows, g.nnz, heads, width, g.ptr.data(), g.col.data(),
                                      weighted ? w.data() : nullptr, widx, x.data(), out_gpu.data(),
                                      extreme ? arg_gpu.data() : nullptr, nullptr);
  mk::cpu::graph_spmm(dtype, reduce, g.rows, g.nnz, heads, width, g.ptr.data(), g.col.data(),
                      weighted ? w.data() : nullptr, widx, x.data(), out_cpu.data(), extreme ? arg_cpu.data() : nullptr,
                      nullptr);
  char what[160];
  snprintf(what, sizeof what, "spmm %s reduce %d weighted %d indexed %d heads %lld width %lld shift %lld",
           sizeof(T) == 4 ? "F32" : "F64", reduce, int(weighted), int(indexed), (long long)heads, (long long)width,
           (long long)shift);
  expect(rc == 0, std::string(what) + ": launch status");
  int64_t differ = 0;
  for (int64_t i = 0; i < g.rows * F; ++i) {
    const T a = out_gpu[i], b = out_cpu[i];
    if (std::memcmp(&a, &b, sizeof(T)) != 0) ++differ;
    if (extreme && arg_gpu[i] != arg_cpu[i]) ++differ;
  }
  expect(differ == 0, std::string(what) + ": " + std::to_string(differ) + " elements differ from the CPU twin");
  expect(out_gpu.guards_intact() && (!extreme || arg_gpu.guards_intact()),
         std::string(what) + ": wrote past the output");
}

template <class T>
static void sddmm_case(const Csr& g, int64_t heads, int64_t width, int64_t shift, unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const int64_t F = heads * width;
  std::mt19937 rng(seed);
  Buf<T> a(g.rows * F, shift), b(g.rows * F, shift), e_gpu(g.nnz * heads), e_cpu(g.nnz * heads);
  fill(a, rng, -1, 1);
  fill(b, rng, -1, 1);
  const int rc = mk::cuda::graph_sddmm(dtype, g.rows, g.nnz, heads, width, g.ptr.data(), g.col.data(), a.data(),
                                       b.data(), e_gpu.data(), nullptr);
  mk::cpu::graph_sddmm(dtype, g.rows, g.nnz, heads, width, g.ptr.data(), g.col.data(), a.data(), b.data(), e_cpu.data(),
                       nullptr);
  char what[160];
  snprintf(what, sizeof what, "sddmm %s heads %lld width %lld shift %lld", sizeof(T) == 4 ? "F32" : "F64",
           (long long)heads, (long long)width, (long long)shift);
  expect(rc == 0, std::string(what) + ": launch status");
  const double eps = sizeof(T) == 4 ? 0x1p-23 : 0x1p-52;
  int64_t bad = 0;
  for (int64_t r = 0; r < g.rows; ++r)
    for (int64_t k = g.ptr[size_t(r)]; k < g.ptr[size_t(r + 1)]; ++k)
      for (int64_t h = 0; h < heads; ++h) {
        double ref = 0, mag = 0;
        for (int64_t d = 0; d < width; ++d) {
          const double p = double(a[r * F + h * width + d]) * double(b[g.col[size_t(k)] * F + h * width + d]);
          ref += p;
          mag += std::fabs(p);
        }
        const double tol = 2 * double(width + 1) * eps * mag + 1e-300;
        const double gpu = double(e_gpu[k * heads + h]), cpu = double(e_cpu[k * heads + h]);
        if (!(std::fabs(gpu - ref) <= tol) || !(std::fabs(gpu - cpu) <= 2 * tol)) ++bad;
      }
  expect(bad == 0, std::string(what) + ": " + std::to_string(bad) + " products off");
  expect(e_gpu.guards_intact(), std::string(what) + ": wrote past the output");
}

// ---- hub rows (issue 15): the split of rows longer than kGraphSegment non-zeros -----------------
// The rule of mk/graph_segment.h written out, one element at a time: segment sums from 0 in CSR
// order by fma, added left to right; mean divides by the row length.
template <class T>
static std::vector<T> segmented_reference(const Csr& g, bool mean, const T* w, const int64_t* widx, int64_t heads,
                                          int64_t width, const T* x) {
  constexpr int64_t S = mk::kGraphSegment;
  const int64_t F = heads * width;
  std::vector<T> out(size_t(g.rows * F));
  for (int64_t r = 0; r < g.rows; ++r) {
    const int64_t b = g.ptr[size_t(r)], e = g.ptr[size_t(r + 1)];
    for (int64_t f = 0; f < F; ++f) {
      const int64_t h = f / width;
      T row = T(0);
      for (int64_t sb = b; sb < e || sb == b; sb += S) {
        T acc = T(0);
        for (int64_t k = sb; k < std::min(sb + S, e); ++k)
          acc = std::fma(w ? w[(widx ? widx[k] : k) * heads + h] : T(1), x[g.col[size_t(k)] * F + f], acc);
        row = sb == b ? acc : row + acc;
      }
      out[size_t(r * F + f)] = mean && e > b ? row / T(e - b) : row;
    }
  }
  return out;
}

// spmm on the hub graph: the CUDA kernel with the split's scratch (NaN-poisoned: a slot read before
// it is written shows) and without it (hub rows walked by one group), the CPU twin at 1 and 3
// threads, and the rule written out: all bitwise equal.
template <class T>
static void hub_case(const Csr& g, int reduce, bool weighted, bool indexed, int64_t heads, int64_t width,
                     unsigned seed) {
  const int dtype = sizeof(T) == 4 ? MK_F32 : MK_F64;
  const int64_t F = heads * width;
  std::mt19937 rng(seed);
  Buf<T> x(g.rows * F), w(g.nnz * heads), split(g.rows * F), whole(g.rows * F), cpu(g.rows * F),
      cpu3(g.rows * F);
  Buf<int64_t> arg_split(g.rows * F), arg_whole(g.rows * F), arg_cpu(g.rows * F), arg_cpu3(g.rows * F);
  fill(x, rng, -2, 2);
  fill(w, rng, -1.5, 1.5);
  std::vector<int64_t> perm(size_t(g.nnz));
  for (int64_t k = 0; k < g.nnz; ++k) perm[size_t(k)] = k;
  std::shuffle(perm.begin(), perm.end(), rng);
  const T* wp = weighted ? w.data() : nullptr;
  const int64_t* widx = weighted && indexed ? perm.data() : nullptr;
  const bool extreme = reduce >= MK_GRAPH_REDUCE_MAX;
  const int64_t ws_bytes = mk::cuda::graph_spmm_workspace(dtype, reduce, g.rows, g.nnz, heads, width, widx ? 1 : 0);
  const bool sum = reduce == MK_GRAPH_REDUCE_SUM || reduce == MK_GRAPH_REDUCE_MEAN;
  char what[200];
  snprintf(what, sizeof what, "hub spmm %s reduce %d weighted %d indexed %d heads %lld width %lld", tname<T>(),
           reduce, int(weighted), int(indexed), (long long)heads, (long long)width);
  expect(!sum || ws_bytes == (g.nnz + mk::kGraphSegment - 1) / mk::kGraphSegment * F * int64_t(sizeof(T)),
         std::string(what) + ": workspace bytes " + std::to_string(ws_bytes));
  Buf<T> ws(ws_bytes / int64_t(sizeof(T)));
  int rc = mk::cuda::graph_spmm_split(dtype, reduce, g.rows, g.nnz, heads, width, g.ptr.data(), g.col.data(), wp,
                                      widx, x.data(), split.data(), extreme ? arg_split.data() : nullptr,
                                      ws_bytes ? ws.data() : nullptr, ws_bytes, nullptr);
  expect(rc == 0, std::string(what) + ": split launch status");
  rc = mk::cuda::graph_spmm(dtype, reduce, g.rows, g.nnz, heads, width, g.ptr.data(), g.col.data(), wp, widx,
                            x.data(), whole.data(), extreme ? arg_whole.data() : nullptr, nullptr);
  expect(rc == 0, std::string(what) + ": launch status");
  mk::cpu::graph_spmm(dtype, reduce, g.rows, g.nnz, heads, width, g.ptr.data(), g.col.data(), wp, widx, x.data(),
                      cpu.data(), extreme ? arg_cpu.data() : nullptr, nullptr);
  // 3 threads with the CPU's workspace (indexed sum / mean: the weights gathered into row order,
  // NaN-poisoned buffers); above, one thread without (the weights read through the index)
  omp_set_num_threads(3);
  const int64_t cpu_ws_bytes = mk::cpu::graph_spmm_workspace(dtype, reduce, g.rows, g.nnz, heads, width, widx ? 1 : 0);
  expect((cpu_ws_bytes > 0) == (sum && widx != nullptr), std::string(what) + ": CPU workspace bytes");
  std::vector<unsigned char> cpu_ws(size_t(cpu_ws_bytes), 0xff);
  rc = mk::cpu::graph_spmm_split(dtype, reduce, g.rows, g.nnz, heads, width, g.ptr.data(), g.col.data(), wp, widx,
                                 x.data(), cpu3.data(), extreme ? arg_cpu3.data() : nullptr, cpu_ws.data(),
                                 cpu_ws_bytes, nullptr);
  expect(rc == 0, std::string(what) + ": CPU split status");
  omp_set_num_threads(1);
  int64_t d_split = 0, d_whole = 0, d_cpu3 = 0, d_ref = 0;
  same_bits(split.data(), cpu.data(), g.rows * F, &d_split);
  same_bits(whole.data(), cpu.data(), g.rows * F, &d_whole);
  same_bits(cpu3.data(), cpu.data(), g.rows * F, &d_cpu3);
  if (extreme)
    for (int64_t i = 0; i < g.rows * F; ++i) {
      d_split += arg_split[i] != arg_cpu[i];
      d_whole += arg_whole[i] != arg_cpu[i];
      d_cpu3 += arg_cpu3[i] != arg_cpu[i];
    }
  if (sum) {
    const std::vector<T> ref =
        segmented_reference<T>(g, reduce == MK_GRAPH_REDUCE_MEAN, wp, widx, heads, width, x.data());
    same_bits(ref.data(), cpu.data(), g.rows * F, &d_ref);
  }
  expect(d_split == 0, std::string(what) + ": with the split, " + std::to_string(d_split) + " elements differ");
  expect(d_whole == 0, std::string(what) + ": without it, " + std::to_string(d_whole) + " elements differ");
  expect(d_cpu3 == 0, std::string(what) + ": CPU at 3 threads, " + std::to_string(d_cpu3) + " elements differ");
  expect(d_ref == 0, std::string(what) + ": the CPU twin and the segment rule differ in " + std::to_string(d_ref));
  expect(split.guards_intact() && whole.guards_intact() && ws.guards_intact() &&
             (!extreme || (arg_split.guards_intact() && arg_whole.guards_intact())),
         std::string(what) + ": wrote past an output");
}

static void check_case(const Csr& g, int64_t cols, const char* what) {
  int64_t gpu[2] = {-1, -1}, cpu[2] = {-2, -2};
  const int rc = mk::cuda::graph_check(g.rows, cols, g.nnz, g.ptr.data(), g.col.data(), gpu, nullptr);
  mk::cpu::graph_check(g.rows, cols, g.nnz, g.ptr.data(), g.col.data(), cpu, nullptr);
  expect(rc == 0 && gpu[0] == cpu[0] && gpu[1] == cpu[1],
         std::string("graph_check ") + what + ": " + std::to_string(gpu[0]) + "/" + std::to_string(gpu[1]) +
             " vs CPU " + std::to_string(cpu[0]) + "/" + std::to_string(cpu[1]));
}

int main(int argc, char** argv) {
  const Csr g = messy(7, 97, 700);
  const Csr tiny = messy(8, 5, 6);
  const Csr empty = empty_graph(3);
  // the twin at both ISA levels where the CPU has AVX-512 (their spmm results are the same bits)
  for_each_order_and_level(argc, argv, [&] {
    unsigned seed = 100;
    for (int reduce = 0; reduce < MK_GRAPH_REDUCE_COUNT; ++reduce)
      for (bool weighted : {false, true})
        for (int64_t width : {1, 3, 4, 8, 16, 37, 64, 300}) {
          spmm_case<float>(g, reduce, weighted, 1, width, 0, ++seed);
          spmm_case<double>(g, reduce, weighted, 1, width, 0, ++seed);
        }
    for (int reduce = 0; reduce < MK_GRAPH_REDUCE_COUNT; ++reduce) {
      spmm_case<float>(g, reduce, true, 1, 16, 1, ++seed);  // x not 16-byte aligned: scalar loads
      spmm_case<double>(g, reduce, true, 1, 6, 1, ++seed);
      spmm_case<float>(g, reduce, true, 3, 8, 0, ++seed);  // one weight per head
      spmm_case<double>(g, reduce, true, 2, 5, 0, ++seed);
      spmm_case<float>(g, reduce, true, 4, 132, 0, ++seed);  // heads over several column blocks
      spmm_case<float>(tiny, reduce, false, 1, 2, 0, ++seed);
      spmm_case<float>(g, reduce, true, 1, 16, 0, ++seed, true);  // weights through a permutation
      spmm_case<double>(g, reduce, true, 2, 3, 0, ++seed, true);
      spmm_case<double>(empty, reduce, true, 1, 4, 0, ++seed);
    }
    for (int64_t width : {1, 2, 3, 4, 8, 16, 37, 64, 129, 256}) {
      sddmm_case<float>(g, 1, width, 0, ++seed);
      sddmm_case<double>(g, 1, width, 0, ++seed);
    }
    sddmm_case<float>(g, 4, 8, 0, ++seed);
    sddmm_case<double>(g, 3, 6, 0, ++seed);
    sddmm_case<float>(g, 2, 16, 1, ++seed);
    sddmm_case<float>(tiny, 1, 5, 0, ++seed);
  });
  // hub rows: a giant row of 10^5 non-zeros, rows of S and S +- 1 (on and off the S grid), isolated
  // nodes; every reduction, at both ISA levels and in every thread order
  constexpr int64_t S = mk::kGraphSegment;
  const Csr hub = hub_graph(21, 100000, {0, S, 2 * S + 5});  // a hub row starting at non-zero S
  const Csr hub_small = hub_graph(22, 1000, {S + 3});         // a hub row starting at non-zero 0
  for_each_order_and_level(argc, argv, [&] {
    unsigned seed = 500;
    for (int reduce = 0; reduce < MK_GRAPH_REDUCE_COUNT; ++reduce) {
      hub_case<float>(hub, reduce, false, false, 1, 16, ++seed);
      hub_case<double>(hub, reduce, true, false, 1, 4, ++seed);
      for (int64_t width : {1, 3, 8, 64, 300}) {  // groups of 1 to 32 lanes, one or two chunks
        hub_case<float>(hub_small, reduce, true, false, 1, width, ++seed);
        hub_case<double>(hub_small, reduce, false, false, 1, width, ++seed);
      }
      hub_case<float>(hub_small, reduce, true, true, 2, 12, ++seed);  // weights per head, through a permutation
      hub_case<double>(hub_small, reduce, true, true, 3, 5, ++seed);
    }
  });
  check_case(g, g.rows, "valid");
  Csr bad = g;
  bad.ptr[5] = bad.ptr[4] - 1;  // decreasing
  bad.col[3] = g.rows;          // out of range
  bad.col[9] = -4;
  check_case(bad, g.rows, "two bad columns, one bad pointer");
  Csr ends = g;
  ends.ptr[0] = 1;
  check_case(ends, g.rows, "row_ptr[0] != 0");
  check_case(empty, 0, "empty");
  printf("graph_emu_test: %d checks, %d failures (%lld launches, %lld blocks)\n", g_checks, g_failures,
         (long long)emu::config().launches, (long long)emu::config().blocks);
  return g_failures ? 1 : 0;
}
