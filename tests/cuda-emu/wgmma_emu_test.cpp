// The emulated Hopper instructions of tests/cuda-emu/sm90_emu.h (kernels/cuda/sm90.cuh) against a
// plain matrix product in double, for every shape and layout tensor_core_sm90.cu uses:
//   SS  d (64 x N) = A (64 x K) Bᵀ, A and B K-major in shared memory (N rows of K), N in {64, 128},
//       K in {64, 128} (one or two 64-column swizzle atoms; the descriptor start advances 32 bytes
//       per k-step inside an atom);
//   RS  d (64 x N) += A B, A from registers (the m16n8k16 A layout per warp), B MN-major in shared
//       memory (K rows of N; imm-trans-b), N in {64, 128} (LBO between 64-column atoms), K in
//       {32, 128} (the start advances 16 rows = 2048 bytes per k-step);
// both in BF16 and F16, operands landed by TMA (3D tensor maps, 128-byte swizzle, mbarrier with
// expect_tx), and the accumulator read back through the documented fragment layout
// (row 16w + g + 8 (r / 2), column 8i + 2t + r % 2 of register 4i + r, lane 4g + t of warp w).
// TF32 (F32 data, the 3xTF32 forward of tensor_core_sm90_f32.cu): SS with both operands K-major
// (32 F32 per 128-byte row, k-steps of 8 = 32 bytes) and RS with A from registers in the m16n8k8
// TF32 layout and B K-major, N in {64, 128}, K in {64, 128}, landed by 32-bit TMA (boxes of 32
// columns). Also: TMA boxes partly out of bounds come back zero, and the emulator's misuse checks (a
// wgmma without a fence, a TF32 operand not rounded to TF32) stop a run. Build and run: ctest -R emu.wgmma (cmake/tests.cmake).
#include "cuda_runtime.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <vector>

#include "mma.cuh"
#include "sm90.cuh"

alignas(1024) static unsigned char g_smem[256 * 1024 + 4096];
inline unsigned char* emu::smem() { return g_smem; }

using namespace mk::cuda;

static int g_failures = 0;

struct Maps {
  CUtensorMap a, b;
};

// [planes = 1, rows, cols] row-major of 16-bit (bf16 / f16) or F32 (f32) elements, boxes of 128
// bytes of columns x box_rows
static CUtensorMap make_map(const void* base, int rows, int cols, int box_rows, bool bf16, bool f32 = false) {
  void* f = nullptr;
  cudaDriverEntryPointQueryResult q{};
  cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q);
  auto enc = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  CUtensorMap m;
  const cuuint64_t es = f32 ? 4 : 2;
  const cuuint64_t dims[3] = {cuuint64_t(cols), cuuint64_t(rows), 1};
  const cuuint64_t strides[2] = {cuuint64_t(cols) * es, cuuint64_t(rows) * cols * es};
  const cuuint32_t box[3] = {cuuint32_t(128 / es), cuuint32_t(box_rows), 1}, estr[3] = {1, 1, 1};
  const CUtensorMapDataType dt = f32    ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                 : bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                        : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  const CUresult r = enc(&m, dt, 3, const_cast<void*>(base), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                         CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    printf("encode failed\n");
    exit(1);
  }
  return m;
}

// SS: A [64][K] at shared 0 (K/64 atoms of 64 x 128 bytes), B [N][K] after it (K/64 atoms of N x 128)
template <bool kBf16, int N, int K>
__global__ void ss_kernel(const __grid_constant__ Maps maps, float* c, int b_row0) {
  const uint32_t s0 = sm90::smem_addr(g_smem);
  const uint32_t a_at = s0, b_at = s0 + (K / 64) * 64 * 128, bar = b_at + (K / 64) * N * 128;
  const int tid = int(threadIdx.x), w = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  if (tid == 0) {
    sm90::mbar_init(bar, 1);
    sm90::mbar_arrive_expect_tx(bar, (K / 64) * (64 + N) * 128);
    for (int a = 0; a < K / 64; ++a) {
      sm90::tma_load_3d(a_at + a * 64 * 128, &maps.a, 64 * a, 0, 0, bar);
      sm90::tma_load_3d(b_at + a * N * 128, &maps.b, 64 * a, b_row0, 0, bar);
    }
  }
  __syncthreads();
  sm90::mbar_wait(bar, 0);
  float d[N / 2];
  for (float& x : d) x = 12345.f;  // ignored: the first k-step does not accumulate
  sm90::wgmma_fence();
  for (int kk = 0; kk < K / 16; ++kk)
    sm90::wgmma_ss<kBf16, N>(d, sm90::desc_sw128(a_at + (kk / 4) * 64 * 128 + (kk % 4) * 32, 16, 1024),
                             sm90::desc_sw128(b_at + (kk / 4) * N * 128 + (kk % 4) * 32, 16, 1024), kk > 0);
  sm90::wgmma_commit();
  sm90::wgmma_wait<0>();
  for (int i = 0; i < N / 8; ++i)
    for (int r = 0; r < 4; ++r) c[(16 * w + g + 8 * (r / 2)) * N + 8 * i + 2 * t + r % 2] = d[4 * i + r];
}

// RS: B [K][N] at shared 0 (N/64 atoms of K x 128 bytes); A [64][K] from global into registers
template <bool kBf16, int N, int K>
__global__ void rs_kernel(const __grid_constant__ Maps maps, const uint16_t* a_glob, float* c) {
  const uint32_t s0 = sm90::smem_addr(g_smem);
  const uint32_t b_at = s0, bar = s0 + (N / 64) * K * 128;
  const int tid = int(threadIdx.x), w = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  if (tid == 0) {
    sm90::mbar_init(bar, 1);
    sm90::mbar_arrive_expect_tx(bar, (N / 64) * K * 128);
    for (int a = 0; a < N / 64; ++a) sm90::tma_load_3d(b_at + a * K * 128, &maps.b, 64 * a, 0, 0, bar);
  }
  __syncthreads();
  sm90::mbar_wait(bar, 0);
  float d[N / 2];
  for (int i = 0; i < N / 2; ++i) d[i] = 0.25f * float(i % 7);  // accumulated onto
  float d0[N / 2];
  for (int i = 0; i < N / 2; ++i) d0[i] = d[i];
  auto pair = [&](int row, int col) {
    return uint32_t(a_glob[row * K + col]) | (uint32_t(a_glob[row * K + col + 1]) << 16);
  };
  uint32_t a[K / 16][4];
  for (int kk = 0; kk < K / 16; ++kk) {
    const int r0 = 16 * w + g, c0 = 16 * kk + 2 * t;
    a[kk][0] = pair(r0, c0);
    a[kk][1] = pair(r0 + 8, c0);
    a[kk][2] = pair(r0, c0 + 8);
    a[kk][3] = pair(r0 + 8, c0 + 8);
  }
  sm90::wgmma_fence();
  for (int kk = 0; kk < K / 16; ++kk)
    sm90::wgmma_rs_tn<kBf16, N>(d, a[kk], sm90::desc_sw128(b_at + kk * 16 * 128, K * 128, 1024));
  sm90::wgmma_commit();
  sm90::wgmma_wait<0>();
  for (int i = 0; i < N / 8; ++i)
    for (int r = 0; r < 4; ++r)
      c[(16 * w + g + 8 * (r / 2)) * N + 8 * i + 2 * t + r % 2] = d[4 * i + r] - d0[4 * i + r];
}

// ---- TF32 ------------------------------------------------------------------------------------------
// TF32 SS: A [64][K] (K/32 atoms of 64 x 128 bytes), B [N][K] (K/32 atoms of N x 128), both K-major;
// with A from registers (rs = true): A [64][K] read from global into the m16n8k8 TF32 layout
template <int N, int K, bool kRegA>
__global__ void tf32_kernel(const __grid_constant__ Maps maps, const float* a_glob, float* c) {
  const uint32_t s0 = sm90::smem_addr(g_smem);
  const uint32_t a_at = s0, b_at = s0 + (K / 32) * 64 * 128, bar = b_at + (K / 32) * N * 128;
  const int tid = int(threadIdx.x), w = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  if (tid == 0) {
    sm90::mbar_init(bar, 1);
    sm90::mbar_arrive_expect_tx(bar, (K / 32) * ((kRegA ? 0 : 64) + N) * 128);
    for (int a = 0; a < K / 32; ++a) {
      if (!kRegA) sm90::tma_load_3d(a_at + a * 64 * 128, &maps.a, 32 * a, 0, 0, bar);
      sm90::tma_load_3d(b_at + a * N * 128, &maps.b, 32 * a, 0, 0, bar);
    }
  }
  __syncthreads();
  sm90::mbar_wait(bar, 0);
  float d[N / 2];
  for (int i = 0; i < N / 2; ++i) d[i] = kRegA ? 0.25f * float(i % 7) : 12345.f;
  float d0[N / 2];
  for (int i = 0; i < N / 2; ++i) d0[i] = kRegA ? d[i] : 0.f;
  uint32_t ar[K / 8][4];
  if (kRegA)
    for (int kk = 0; kk < K / 8; ++kk) {
      const int r0 = 16 * w + g, c0 = 8 * kk + t;
      auto bits = [&](int r, int cc) {
        uint32_t u;
        memcpy(&u, &a_glob[r * K + cc], 4);
        return u;
      };
      ar[kk][0] = bits(r0, c0);
      ar[kk][1] = bits(r0 + 8, c0);
      ar[kk][2] = bits(r0, c0 + 4);
      ar[kk][3] = bits(r0 + 8, c0 + 4);
    }
  sm90::wgmma_fence();
  for (int kk = 0; kk < K / 8; ++kk) {
    const uint64_t bd = sm90::desc_sw128(b_at + (kk / 4) * N * 128 + (kk % 4) * 32, 16, 1024);
    if (kRegA)
      sm90::wgmma_rs_tf32<N>(d, ar[kk], bd);
    else
      sm90::wgmma_ss_tf32<N>(d, sm90::desc_sw128(a_at + (kk / 4) * 64 * 128 + (kk % 4) * 32, 16, 1024), bd, kk > 0);
  }
  sm90::wgmma_commit();
  sm90::wgmma_wait<0>();
  for (int i = 0; i < N / 8; ++i)
    for (int r = 0; r < 4; ++r)
      c[(16 * w + g + 8 * (r / 2)) * N + 8 * i + 2 * t + r % 2] = d[4 * i + r] - d0[4 * i + r];
}

// Misuse the emulator must stop: 0 a wgmma with no wgmma.fence, 1 an accumulator written while its
// wgmma is in flight, 2 a TMA box whose bytes exceed the mbarrier's expect_tx, 3 an mbarrier wait
// nobody can complete; 4 a TF32 wgmma on operands with non-zero low 13 bits (not rounded to TF32);
// 5 none of these (the control: it must complete).
__global__ void misuse_kernel(const __grid_constant__ Maps maps, int what) {
  const uint32_t s0 = sm90::smem_addr(g_smem), bar = s0 + 64 * 128;
  if (threadIdx.x == 0) {
    sm90::mbar_init(bar, 1);
    sm90::mbar_arrive_expect_tx(bar, what == 2 ? 64 * 64 : 64 * 128);
    sm90::tma_load_3d(s0, &maps.a, 0, 0, 0, bar);
  }
  __syncthreads();
  sm90::mbar_wait(bar, 0);
  if (what == 3) sm90::mbar_wait(bar, 1);  // the next phase: nobody arrives
  float d[32] = {};
  if (what != 0) sm90::wgmma_fence();
  const uint64_t desc = sm90::desc_sw128(s0, 16, 1024);
  if (what == 4)  // (the 16-bit data 0x3f80 read as F32: 0x3f803f80 has low bits set)
    sm90::wgmma_ss_tf32<64>(d, desc, desc, false);
  else
    sm90::wgmma_ss<true, 64>(d, desc, desc, false);
  sm90::wgmma_commit();
  if (what == 1) d[3] = 1.f;
  sm90::wgmma_wait<0>();
}

template <class... Exp, class... Act>
static void launch(void (*k)(Exp...), size_t smem, Act... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(1);
  cfg.blockDim = dim3(128);
  cfg.dynamicSmemBytes = smem;
  cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (cudaLaunchKernelEx(&cfg, k, args...) != cudaSuccess) {
    printf("launch failed\n");
    exit(1);
  }
}

static uint16_t enc(bool bf16, float x) { return bf16 ? mk::f32_to_bf16_bits(x) : mk::f32_to_f16_bits(x); }
static double dec(bool bf16, uint16_t h) { return bf16 ? mk::bf16_bits_to_f32(h) : mk::f16_bits_to_f32(h); }

static void check(const char* what, const std::vector<float>& c, const std::vector<double>& ref,
                  const std::vector<double>& mag) {
  double worst = 0;
  for (size_t i = 0; i < c.size(); ++i) worst = std::max(worst, std::fabs(c[i] - ref[i]) / (mag[i] + 1e-30));
  const bool ok = worst <= 1e-5;  // F32 accumulation of exact 16-bit products
  printf("%-34s worst |err| / sum|a b| %.2e%s\n", what, worst, ok ? "" : "  FAIL");
  if (!ok) ++g_failures;
}

// b_row0 < 0: the B box starts above row 0 (rows -b_row0 .. of the box are out of bounds: zero)
template <bool kBf16, int N, int K>
static void test_ss(std::mt19937& rng, int b_row0) {
  std::normal_distribution<float> nd;
  std::vector<uint16_t> A(64 * K), B(N * K);
  for (auto& x : A) x = enc(kBf16, nd(rng));
  for (auto& x : B) x = enc(kBf16, nd(rng));
  Maps maps;
  maps.a = make_map(A.data(), 64, K, 64, kBf16);
  maps.b = make_map(B.data(), N, K, N, kBf16);
  std::vector<float> c(64 * N, NAN);
  launch(ss_kernel<kBf16, N, K>, size_t((K / 64) * (64 + N) * 128 + 64 + 1024), maps, c.data(), b_row0);
  std::vector<double> ref(c.size()), mag(c.size());
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0, m = 0;
      const int bj = b_row0 + j;  // the row of B the box put at column j
      for (int k = 0; k < K; ++k) {
        const double bv = bj >= 0 && bj < N ? dec(kBf16, B[bj * K + k]) : 0.0;
        s += dec(kBf16, A[i * K + k]) * bv;
        m += std::fabs(dec(kBf16, A[i * K + k]) * bv);
      }
      ref[i * N + j] = s;
      mag[i * N + j] = m + 1e-3;
    }
  char name[96];
  snprintf(name, sizeof name, "SS %s m64n%dk16 K=%d%s", kBf16 ? "bf16" : "f16", N, K,
           b_row0 ? " (box partly OOB)" : "");
  check(name, c, ref, mag);
}

template <bool kBf16, int N, int K>
static void test_rs(std::mt19937& rng) {
  std::normal_distribution<float> nd;
  std::vector<uint16_t> A(64 * K), B(K * N);
  for (auto& x : A) x = enc(kBf16, nd(rng));
  for (auto& x : B) x = enc(kBf16, nd(rng));
  Maps maps;
  maps.a = maps.b = make_map(B.data(), K, N, K, kBf16);
  std::vector<float> c(64 * N, NAN);
  launch(rs_kernel<kBf16, N, K>, size_t((N / 64) * K * 128 + 64 + 1024), maps, (const uint16_t*)A.data(), c.data());
  std::vector<double> ref(c.size()), mag(c.size());
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0, m = 0;
      for (int k = 0; k < K; ++k) {
        s += dec(kBf16, A[i * K + k]) * dec(kBf16, B[k * N + j]);
        m += std::fabs(dec(kBf16, A[i * K + k]) * dec(kBf16, B[k * N + j]));
      }
      ref[i * N + j] = s;
      mag[i * N + j] = m + 1e-3 + 2.0;  // (+ the accumulator's own start value's rounding)
    }
  char name[96];
  snprintf(name, sizeof name, "RS(trans B) %s m64n%dk16 K=%d", kBf16 ? "bf16" : "f16", N, K);
  check(name, c, ref, mag);
}

template <int N, int K, bool kRegA>
static void test_tf32(std::mt19937& rng) {
  std::normal_distribution<float> nd;
  std::vector<float> A(64 * K), B(N * K);
  auto tf32 = [&]() {
    const uint32_t u = to_tf32(nd(rng));
    float f;
    memcpy(&f, &u, 4);
    return f;
  };
  for (auto& x : A) x = tf32();
  for (auto& x : B) x = tf32();
  Maps maps;
  maps.a = make_map(A.data(), 64, K, 64, false, true);
  maps.b = make_map(B.data(), N, K, N, false, true);
  std::vector<float> c(64 * N, NAN);
  launch(tf32_kernel<N, K, kRegA>, size_t((K / 32) * (64 + N) * 128 + 64 + 1024), maps, (const float*)A.data(),
         c.data());
  std::vector<double> ref(c.size()), mag(c.size());
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < N; ++j) {
      double sum = 0, m = 0;
      for (int k = 0; k < K; ++k) {
        sum += double(A[i * K + k]) * B[j * K + k];
        m += std::fabs(double(A[i * K + k]) * B[j * K + k]);
      }
      ref[i * N + j] = sum;
      mag[i * N + j] = m + 1e-3 + (kRegA ? 2.0 : 0.0);
    }
  char name[96];
  snprintf(name, sizeof name, "%s tf32 m64n%dk8 K=%d", kRegA ? "RS" : "SS", N, K);
  check(name, c, ref, mag);
}

int main(int argc, char** argv) {
  emu::config().order = argc > 1 ? atoi(argv[1]) : 2;
  std::mt19937 rng(7);
  test_ss<true, 64, 64>(rng, 0);
  test_ss<true, 128, 128>(rng, 0);
  test_ss<false, 64, 128>(rng, 0);
  test_ss<false, 128, 64>(rng, 0);
  test_ss<true, 128, 64>(rng, -5);  // B rows -5 .. 122: five zero rows on top, N - 123 past the end
  test_ss<true, 64, 64>(rng, 40);   // rows 40 .. 103 of 64: 40 past the end
  test_rs<true, 64, 32>(rng);
  test_rs<true, 128, 128>(rng);
  test_rs<false, 64, 128>(rng);
  test_rs<false, 128, 32>(rng);
  test_tf32<64, 64, false>(rng);
  test_tf32<128, 128, false>(rng);
  test_tf32<64, 128, true>(rng);
  test_tf32<128, 64, true>(rng);
  // misuse stops the run (in a child process: the emulator aborts)
  {
    std::vector<uint16_t> A(64 * 64, 0x3f80);
    Maps maps;
    maps.a = maps.b = make_map(A.data(), 64, 64, 64, true);
    const char* what[6] = {"wgmma without wgmma.fence", "accumulator written in flight", "TMA bytes past expect_tx",
                           "mbarrier wait nobody completes", "TF32 operand not rounded", "(control: no misuse)"};
    for (int w = 0; w < 6; ++w) {
      fflush(stdout);
      const pid_t pid = fork();
      if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(0);
        launch(misuse_kernel, size_t(64 * 128 + 64 + 1024), maps, w);
        _exit(0);
      }
      int status = 0;
      waitpid(pid, &status, 0);
      const bool stopped = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      const bool ok = stopped == (w < 5);
      printf("misuse: %-34s %s%s\n", what[w], stopped ? "stopped the run" : "completed", ok ? "" : "  FAIL");
      if (!ok) ++g_failures;
    }
  }
  printf("%d failures\n", g_failures);
  return g_failures ? 1 : 0;
}
