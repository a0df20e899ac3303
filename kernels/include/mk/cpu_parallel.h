// When a CPU kernel forks OpenMP threads. The thread count itself is the calling thread's
// OpenMP ICV, which native/ sets at every CPU entry point from mk_runtime_set_num_threads.
//
// Small calls must not reach a `#pragma omp parallel` at all: an `if(false)` clause still enters
// libgomp (GOMP_parallel builds and tears down a team of one: an aligned malloc, a futex wake and
// a free per call), measured 2026-12-04 at 2.8 us per call against 0.7 us for the loop itself
// (2048 floats, 2 loaded cores), and a third of the CPU time of a MAML meta-gradient of a small
// MLP. The helpers below branch first and open a parallel region only when the work pays for it.
#pragma once
#include <omp.h>

#include <cstdint>

#include "mk/isa_ns.h"

namespace mk {
namespace cpu {

// Elements below which a fork costs more than it saves. With idle threads sleeping (passive wait,
// native/src/omp_wait.cpp) a fork wakes a thread through a futex: on the 2-core VM a tanh-MLP HVP
// (ops of [128, 256]) took 5.9 ms with 2 threads at 1 << 15 against 2.4 ms with 1 thread; at
// 1 << 18 (and GEMMs from 2^24 multiply-adds then, native/src/dense.cpp) 2.3 ms (2026-12-05).
constexpr int64_t kMinParallel = 1 << 18;

inline bool parallel_worth(int64_t work) { return work >= kMinParallel && omp_get_max_threads() > 1; }

// Multiply-adds below which a product runs on the calling thread (3 * 2^22 = 12.6 M, ~0.13 ms on
// one core of the 2-core VM): the BLAS GEMMs of native/src/dense.cpp, the register-blocked products
// of kernels/cpu/matmul_small.cpp and the linear attention groups. Memory-bound loops count
// elements against kMinParallel; a product's FMAs per element are many more. Measured 2026-12-07
// on the in-context demo's [1024 x 11, 11] x [11, 11] (1.4 M multiply-adds): 52-78 us on one
// thread, 108-117 us forked over two (the wake of the sleeping second thread, 50 us or more); the
// demo's 3-layer LSA training, whose products are all of that size, ran 7.4-11.5 s on one thread
// against 16.8-18.8 s forking at 2^16 (1000 steps). Between, the same evening (tall / long forms,
// one thread against two, median of 4000-8000 calls, benchmarks/results/cpu-ab-2026-12-07-fork-threshold.md):
// 4.2 M ([1024, 64] x [64, 64]) slower forked, 8.4 M ([2048, 64] x [64, 64]) even, 16.5 M (a
// width-64 GCN layer on 4019 nodes and its weight gradient) 1.3-1.5x faster forked. Which thread
// computes what never changes a result (every caller splits by the shape alone), so this constant
// moves no bits; the split-K GEMM's part count, which does, has its own (native/src/dense.cpp).
constexpr int64_t kMinParallelFma = int64_t(3) << 22;

inline bool parallel_worth_fma(int64_t fmas) { return fmas >= kMinParallelFma && omp_get_max_threads() > 1; }

// A lambda that must be inlined where it is called: an op functor or a loop body handed to the
// loops below. GCC's heuristics may leave a lambda out of line in a big caller, and then the loop
// calls it per element and cannot vectorise it: measured 2026-12-07, F32 tanh on 65,536 elements
// (one thread, below the fork) took 7.0 ns per element with the elementwise kernels' op lambdas
// out of line, exp 2.4, log 3.8, sigmoid 3.2 (the forked loops had them inlined: ~0.2-0.3).
#define MK_LAMBDA_INLINE __attribute__((always_inline))

MK_ISA_BEGIN

// body(i) for i in [0, n), split statically over the threads when `fork`, else a plain loop.
template <class F>
inline void parallel_for(int64_t n, bool fork, F&& body) {
  if (fork) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
  } else {
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

// As parallel_for, for a vectorisable body (each iteration independent): simd either way.
template <class F>
inline void parallel_for_simd(int64_t n, bool fork, F&& body) {
  if (fork) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

// region() run by every thread of a parallel region when `fork`, else once on the caller; an
// orphaned `#pragma omp for` inside it then spans the whole range on the caller alone.
template <class F>
inline void parallel_region(bool fork, F&& region) {
  if (fork) {
#pragma omp parallel
    region();
  } else {
    region();
  }
}

MK_ISA_END

}  // namespace cpu
}  // namespace mk
