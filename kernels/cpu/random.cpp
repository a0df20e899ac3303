// Counter-based random numbers on the CPU (MK_MULTI_ISA: compiled for AVX2 and for AVX-512; the
// AVX2 build also holds the dispatcher): Tensor.rand / uniform / randn, the oracle of dense.cu's
// random kernels. The generator is mk/random.h's, run on 8 lanes of doubles (GCC's generic vectors
// of 64 bytes: one zmm register in the AVX-512 build, two ymm halves in the AVX2 build), the tail
// through the scalar code. Every lane performs the scalar code's operations in the same order and
// this file is compiled with -ffp-contract=off (cmake), so element i is the same bits at both ISA
// levels, for every thread count (each element written once, by one thread), and on CUDA.
//
// 2^20 normals in F32, one thread of the 2-core AVX-512 VM (2026-12-07, tests/native/random_test.cpp
// prints them): 5.4 ms at AVX-512, 7.0 ms at AVX2, against 25.6 ms for the scalar glibc log and cos of
// before. The divide of ln's s = f / (2 + f) and the square root share the divider: about half the
// cycles.
// 64-byte vectors are two ymm registers in the AVX2 build: the ABI note on passing them is moot
// (everything here is inlined).
#pragma GCC diagnostic ignored "-Wpsabi"
#include <immintrin.h>
#include <omp.h>

#include <cstring>

#include "mk/cpu_parallel.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"
#include "mk/random.h"

namespace mk {
namespace cpu {
namespace MK_ISA_NS {
namespace {

typedef double vd __attribute__((vector_size(64)));
typedef uint64_t vu __attribute__((vector_size(64)));
typedef int64_t vm __attribute__((vector_size(64)));

#define MK_RANDOM_INLINE inline __attribute__((always_inline))

// mk/random.h's operations on 8 lanes.
struct RandomVec {
  using D = vd;
  using U = vu;
  using M = vm;  // all ones where true
  static MK_RANDOM_INLINE D add(D a, D b) { return a + b; }
  static MK_RANDOM_INLINE D sub(D a, D b) { return a - b; }
  static MK_RANDOM_INLINE D mul(D a, D b) { return a * b; }
  static MK_RANDOM_INLINE D div(D a, D b) { return a / b; }
  static MK_RANDOM_INLINE D sqrt(D a) {
#ifdef MK_ISA_AVX512
    return (D)_mm512_maskz_sqrt_pd(0xFF, (__m512d)a);  // maskz: GCC 12 warns on the plain form's undefined source
#else
    __m256d h[2];
    memcpy(h, &a, sizeof a);
    h[0] = _mm256_sqrt_pd(h[0]);
    h[1] = _mm256_sqrt_pd(h[1]);
    memcpy(&a, h, sizeof a);
    return a;
#endif
  }
  static MK_RANDOM_INLINE U bits(D x) { return (U)x; }
  static MK_RANDOM_INLINE D from_bits(U u) { return (D)u; }
  static MK_RANDOM_INLINE D splat(double c) { return D{} + c; }
  static MK_RANDOM_INLINE U splat_u(uint64_t c) { return U{} + c; }
  // x < 2^53 as its two 32-bit halves, each made exact by the 2^52 trick; their sum is exact
  static MK_RANDOM_INLINE D to_double(U x) {
    const U magic = splat_u(0x4330000000000000ull);  // the bits of 2^52
    const D hi = (D)((x >> 32) | magic) - 0x1p52;
    const D lo = (D)((x & splat_u(0xFFFFFFFFull)) | magic) - 0x1p52;
    return hi * 0x1p32 + lo;
  }
  static MK_RANDOM_INLINE M greater(D a, D b) { return a > b; }
  static MK_RANDOM_INLINE D select(M m, D a, D b) { return (D)(((U)m & (U)a) | (~(U)m & (U)b)); }
  static MK_RANDOM_INLINE U select_u(M m, U a, U b) { return ((U)m & a) | (~(U)m & b); }
};

constexpr int64_t kLanes = 8;
// Elements per task: a few microseconds of work, so the threads' shares stay even.
constexpr int64_t kTask = 4096;

template <class T>
void fill_t(int dist, int64_t n, T* dst, uint64_t seed, double a, double b) {
  const uint64_t key = random_key(seed);
  const T limit = random_limit<T>(a, b);
  const int64_t tasks = (n + kTask - 1) / kTask;
  const vu lane = {0, 1, 2, 3, 4, 5, 6, 7};
  parallel_for(tasks, parallel_worth(n * 16), [&](int64_t t) {
    const int64_t lo = t * kTask, hi = lo + kTask < n ? lo + kTask : n;
    int64_t i = lo;
    for (; i + kLanes <= hi; i += kLanes) {
      const vd v = random_at<RandomVec>(dist, key, lane + uint64_t(i), a, b);
      typedef T vt __attribute__((vector_size(8 * sizeof(T))));
      vt y = __builtin_convertvector(v, vt);
      if (dist == MK_RANDOM_UNIFORM) y = y < limit ? y : vt{} + limit;  // random_store's clamp
      memcpy(dst + i, &y, sizeof y);
    }
    for (; i < hi; ++i) dst[i] = random_store<T>(dist, random_value(dist, key, uint64_t(i), a, b), limit);
  });
}

}  // namespace

int random_fill(int dtype, int dist, int64_t n, void* dst, uint64_t seed, double a, double b, void*) {
  if (dtype == MK_F32)
    fill_t(dist, n, static_cast<float*>(dst), seed, a, b);
  else if (dtype == MK_F64)
    fill_t(dist, n, static_cast<double*>(dst), seed, a, b);
  else
    return KERNEL_UNSUPPORTED;
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) ----------------------------------------------------------
namespace avx512 {
int random_fill(int, int, int64_t, void*, uint64_t, double, double, void*);
}  // namespace avx512

int random_fill(int dtype, int dist, int64_t n, void* dst, uint64_t seed, double a, double b, void* stream) {
  if (isa_level() >= 3) return avx512::random_fill(dtype, dist, n, dst, seed, a, b, stream);
  return avx2::random_fill(dtype, dist, n, dst, seed, a, b, stream);
}
#endif

}  // namespace cpu
}  // namespace mk
