// The FMA peak of one core at the AVX2 (ymm) or AVX-512 (zmm) width: the yardstick for "fraction of
// peak" of the CPU kernels (benchmarks/results/cpu-ab-2026-12-04-avx2-attention.md). Twelve
// independent accumulator chains: FMA latency 4 cycles x 2 FMA ports needs at least 8 in flight;
// 12 leaves slack for the loop counter. Nothing but FMAs in the loop, all in registers (inline assembly: with intrinsics GCC
// kept the accumulators in memory across the loop's compiler barrier).
//
//   g++ -O2 -mavx2 -mfma -mavx512f tests/native/fma_peak.cpp -o fma_peak
//   fma_peak ymm|zmm [seconds]
// prints: "<width> <GFLOP/s> GFLOP/s" (2 flops per lane per FMA), process CPU time (WALL=1:
// wall-clock), best of 5 runs of ~seconds/5 each. attention_ab.sh runs it between rounds (PEAK=1).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {
double now() {
  timespec t;
  clock_gettime(std::getenv("WALL") ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

constexpr int kChains = 12;

// n iterations of kChains independent FMAs on registers 0..11 (written in assembly so that the
// compiler can neither spill nor fold them), on zeros (no subnormal operands); 2 * lanes *
// kChains flops per iteration.
#define MK_FMA12(R)                                                                                    \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "0\n\t"                                                  \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "1\n\t"                                                  \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "2\n\t"                                                  \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "3\n\t"                                                  \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "4\n\t"                                                  \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "5\n\t"                                                  \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "6\n\t"                                                  \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "7\n\t"                                                  \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "8\n\t"                                                  \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "9\n\t"                                                  \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "10\n\t"                                                 \
  "vfmadd231ps %%" R "12, %%" R "13, %%" R "11\n\t"

__attribute__((target("avx2,fma"), noinline)) void run_ymm(long n) {
  __asm__ volatile(
      "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
      "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
      "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
      "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
      "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
      "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
      "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
      "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
      "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
      "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
      "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
      "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
      "vxorps %%ymm12, %%ymm12, %%ymm12\n\t"
      "vxorps %%ymm13, %%ymm13, %%ymm13\n\t"
      "1:\n\t" MK_FMA12("ymm") "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(n)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "cc");
}

__attribute__((target("avx512f"), noinline)) void run_zmm(long n) {
  __asm__ volatile(
      "vxorps %%zmm0, %%zmm0, %%zmm0\n\t"
      "vxorps %%zmm1, %%zmm1, %%zmm1\n\t"
      "vxorps %%zmm2, %%zmm2, %%zmm2\n\t"
      "vxorps %%zmm3, %%zmm3, %%zmm3\n\t"
      "vxorps %%zmm4, %%zmm4, %%zmm4\n\t"
      "vxorps %%zmm5, %%zmm5, %%zmm5\n\t"
      "vxorps %%zmm6, %%zmm6, %%zmm6\n\t"
      "vxorps %%zmm7, %%zmm7, %%zmm7\n\t"
      "vxorps %%zmm8, %%zmm8, %%zmm8\n\t"
      "vxorps %%zmm9, %%zmm9, %%zmm9\n\t"
      "vxorps %%zmm10, %%zmm10, %%zmm10\n\t"
      "vxorps %%zmm11, %%zmm11, %%zmm11\n\t"
      "vxorps %%zmm12, %%zmm12, %%zmm12\n\t"
      "vxorps %%zmm13, %%zmm13, %%zmm13\n\t"
      "1:\n\t" MK_FMA12("zmm") "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(n)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "cc");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "ymm") && std::strcmp(argv[1], "zmm"))) {
    std::fprintf(stderr, "usage: %s ymm|zmm [seconds]\n", argv[0]);
    return 2;
  }
  const bool zmm = std::strcmp(argv[1], "zmm") == 0;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 1.0;
  const int lanes = zmm ? 16 : 8;
  auto run = [&](long n) { zmm ? run_zmm(n) : run_ymm(n); };
  // calibrate: iterations for ~seconds / 5
  long n = 1 << 16;
  for (;;) {
    const double t0 = now();
    run(n);
    const double t = now() - t0;
    if (t > 0.02) {
      n = long(double(n) * (seconds / 5) / t) + 1;
      break;
    }
    n *= 4;
  }
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    const double t0 = now();
    run(n);
    const double t = now() - t0;
    const double gflops = 2.0 * lanes * kChains * double(n) / t / 1e9;
    if (gflops > best) best = gflops;
  }
  std::printf("%s %.1f GFLOP/s\n", argv[1], best);
  return 0;
}
