// The emulated ldmatrix and cp.async of kernels/cuda/copy_async.cuh (tests/cuda-emu/cuda_runtime.h)
// against the MMA fragment layout documented in kernels/cuda/mma.cuh, whose plain 32-bit shared
// reads (load_a, mma_b) are the reference:
//   - ldmatrix .x4 with the A addressing of a row-major 16 x 16 tile gives load_a's registers;
//   - .x4 over an n-major tile Y[n][k] gives mma_b's (b0, b1) of two n-blocks, .x2 of one, .x1 b0;
//   - .x4 .trans over a row-major [k][n] tile gives mma_b's registers of its transposed copy, .x2
//     .trans and .x1 .trans likewise;
//   - all of it through an XOR-swizzled layout (the v2 attention forward's) as well;
//   - cp.async: nothing lands before the wait of its group, wait_group<1> leaves the newest group in
//     flight, src size 0 fills zeros, and the ldmatrix / MMA of the copied tile give the product
//     of the tile (an m16n8k16 through both paths).
//   copy_async_emu_test        (every thread order)
#include <omp.h>
#include "cuda_runtime.h"  // the emulator: std headers first, then the CUDA keywords as macros

#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "copy_async.cuh"
#include "mma.cuh"

namespace {
alignas(16) unsigned char g_smem[256 * 1024 + 4096];  // the emulator's default capacity
}
inline unsigned char* emu::smem() { return g_smem; }

#include "emu_check.h"

using namespace mk::cuda;

namespace {
constexpr int kLd = 24;  // padded row (48 bytes: 16-byte aligned rows)

// per lane: 4 A registers, 4 + 4 B registers (reference, ldmatrix) ... written by the kernel
struct Out {
  uint32_t ref[32][16];
  uint32_t got[32][16];
};

// the v2 forward's layout: rows of 64 16-bit values, 16-byte chunk c of row r at c ^ (r mod 8); the
// 16 x 16 tile sits at rows [8, 24), cols [16, 32) of it
int swz(int row, int col) {
  row += 8;
  col += 16;
  return row * 64 + (((col >> 3) ^ (row & 7)) << 3) + (col & 7);
}

// Shared layout: X [16][kLd] row-major (A and the [k][n] tile), XT [16][kLd] = Xᵀ, S [24][64]
// holding a swizzled copy of X.
__global__ void layout_kernel(const uint16_t* src, Out* out) {
  uint16_t* sm = reinterpret_cast<uint16_t*>(g_smem);
  uint16_t *x = sm, *xt = sm + 16 * kLd, *s = sm + 32 * kLd;
  const int lane = int(threadIdx.x);
  for (int i = lane; i < 256; i += 32) {
    const int r = i / 16, c = i % 16;
    x[r * kLd + c] = src[i];
    xt[c * kLd + r] = src[i];
    s[swz(r, c)] = src[i];
  }
  __syncwarp();
  const int g = lane >> 2, t = lane & 3;
  uint32_t* ref = out->ref[lane];
  uint32_t* got = out->got[lane];
  // A of rows [0, 16) x k [0, 16)
  uint32_t a[4];
  load_a(a, x, kLd, 0, g, t);
  for (int i = 0; i < 4; ++i) ref[i] = a[i];
  const int ar = (lane & 7) + ((lane >> 3) & 1) * 8, ac = (lane >> 4) * 8;
  uint32_t r4[4];
  ldmatrix_x4(r4, x + ar * kLd + ac);
  for (int i = 0; i < 4; ++i) got[i] = r4[i];
  // B = Yᵀ from the n-major tile Y = X (n = row): n-blocks 0 and 1, k [0, 16)
  uint32_t b0, b1, b2, b3;
  mma_b(b0, b1, x, kLd, 0, 0, g, t);
  mma_b(b2, b3, x, kLd, 8, 0, g, t);
  ref[4] = b0;
  ref[5] = b1;
  ref[6] = b2;
  ref[7] = b3;
  const int br = (lane & 7) + (lane >> 4) * 8, bc = ((lane >> 3) & 1) * 8;
  ldmatrix_x4(r4, x + br * kLd + bc);
  for (int i = 0; i < 4; ++i) got[4 + i] = r4[i];
  // B from the row-major [k][n] tile X (k = row): mma_b of the transposed copy, by .trans
  mma_b(b0, b1, xt, kLd, 0, 0, g, t);
  mma_b(b2, b3, xt, kLd, 8, 0, g, t);
  ref[8] = b0;
  ref[9] = b1;
  ref[10] = b2;
  ref[11] = b3;
  ldmatrix_x4_trans(r4, x + ar * kLd + ac);
  for (int i = 0; i < 4; ++i) got[8 + i] = r4[i];
  // x2 and x1, plain and .trans: the first registers of the x4 forms
  uint32_t r2[2];
  ldmatrix_x2(r2, x + (lane & 7) * kLd + ((lane >> 3) & 1) * 8);  // n-block 0: b0, b1
  got[12] = r2[0] == ref[4] && r2[1] == ref[5];
  ldmatrix_x2_trans(r2, x + ((lane & 7) + ((lane >> 3) & 1) * 8) * kLd);  // n-block 0 of Xᵀ-copy B
  got[13] = r2[0] == ref[8] && r2[1] == ref[9];
  got[14] = ldmatrix_x1(x + (lane & 7) * kLd) == ref[4] && ldmatrix_x1_trans(x + (lane & 7) * kLd) == ref[8];
  // swizzled: A and .trans B as above, through swz16
  ldmatrix_x4(r4, s + swz(ar, ac));
  uint32_t ok = 1;
  for (int i = 0; i < 4; ++i) ok &= r4[i] == ref[i];
  ldmatrix_x4(r4, s + swz(br, bc));
  for (int i = 0; i < 4; ++i) ok &= r4[i] == ref[4 + i];
  ldmatrix_x4_trans(r4, s + swz(ar, ac));
  for (int i = 0; i < 4; ++i) ok &= r4[i] == ref[8 + i];
  got[15] = ok;
  ref[12] = ref[13] = ref[14] = ref[15] = 1;
}

// cp.async: three groups into shared, checked at each wait; then an MMA on the copied tiles.
struct CopyOut {
  int before[32], after1[32], after0[32], zeros[32];
  float c[32][4], c_ref[32][4];
};

__global__ void copy_kernel(const uint16_t* a_src, const uint16_t* b_src, CopyOut* out) {
  uint16_t* sm = reinterpret_cast<uint16_t*>(g_smem);
  uint16_t *a = sm, *b = sm + 256, *z = sm + 512;  // A [16][16], B n-major [8][16], zero tile [16][8]
  const int lane = int(threadIdx.x);
  // group 0: A (one chunk per lane); group 1: B (one chunk per lane, lanes < 16) and zero fills
  for (int c = lane; c < 32; c += 32) cp_async16(a + c * 8, a_src + c * 8, 16);
  cp_async_commit();
  if (lane < 16) cp_async16(b + lane * 8, b_src + lane * 8, 16);
  cp_async16(z + lane * 4 - (lane & 1) * 4, a_src, 0);  // even lanes: a chunk each (odd: the same again)
  cp_async_commit();
  // nothing has landed: the shared memory still holds the launch's NaN poison (0xFFFF)
  out->before[lane] = a[lane * 8] == 0xFFFFu && b[lane % 16 * 8] == 0xFFFFu;
  cp_async_wait<1>();
  __syncthreads();
  // (group 1 of this lane's own only: another lane's wait<0> may already have run, in this emulator
  // as on a device)
  out->after1[lane] = a[lane * 8] == a_src[lane * 8] && (lane >= 16 || b[lane * 8] == 0xFFFFu);
  cp_async_wait<0>();
  __syncthreads();
  out->after0[lane] = b[lane % 16 * 8] == b_src[lane % 16 * 8];
  int zs = 1;
  for (int i = 0; i < 4; ++i) zs &= z[lane * 4 + i] == 0;
  out->zeros[lane] = zs;
  // D = A B through ldmatrix and through the plain reads
  const int g = lane >> 2, t = lane & 3;
  uint32_t ra[4], rb[2], pa[4], pb0, pb1;
  ldmatrix_x4(ra, a + ((lane & 7) + ((lane >> 3) & 1) * 8) * 16 + (lane >> 4) * 8);
  ldmatrix_x2(rb, b + (lane & 7) * 16 + ((lane >> 3) & 1) * 8);
  load_a(pa, a, 16, 0, g, t);
  mma_b(pb0, pb1, b, 16, 0, 0, g, t);
  float c[4] = {0, 0, 0, 0}, cr[4] = {0, 0, 0, 0};
  mma16816<Bf16>(c, ra, rb[0], rb[1]);
  mma16816<Bf16>(cr, pa, pb0, pb1);
  for (int i = 0; i < 4; ++i) {
    out->c[lane][i] = c[i];
    out->c_ref[lane][i] = cr[i];
  }
}

template <class... KArgs, class... Args>
void launch(void (*kernel)(KArgs...), size_t smem, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(1);
  cfg.blockDim = dim3(32);
  cfg.dynamicSmemBytes = smem;
  expect(cudaLaunchKernelEx(&cfg, kernel, args...) == cudaSuccess, "launch");
}
}  // namespace

int main(int argc, char** argv) {
  const int first = argc > 1 ? atoi(argv[1]) : 0, last = argc > 1 ? first : 2;
  std::mt19937 rng(7);
  for (int order = first; order <= last; ++order) {
    emu::config().order = order;
    for (int rep = 0; rep < 4; ++rep) {
      std::vector<uint16_t> src(256);
      for (auto& v : src) v = uint16_t(rng());  // distinct-ish bit patterns: any misplaced half shows
      Out out;
      launch(layout_kernel, (32 * kLd + 24 * 64) * 2, src.data(), &out);
      const char* what[16] = {"A0",     "A1",     "A2",     "A3",     "B0 n0", "B1 n0",    "B0 n1", "B1 n1",
                              "Bt0 n0", "Bt1 n0", "Bt0 n1", "Bt1 n1", "x2",    "x2.trans", "x1",    "swizzled"};
      for (int lane = 0; lane < 32; ++lane)
        for (int i = 0; i < 16; ++i)
          expect(out.got[lane][i] == out.ref[lane][i],
                 "order " + std::to_string(order) + " lane " + std::to_string(lane) + " " + what[i]);
    }
    // cp.async, with BF16 values so the MMA is meaningful
    std::normal_distribution<float> nd(0.f, 1.f);
    alignas(16) uint16_t a_src[256], b_src[128];
    for (auto& v : a_src) v = mk::f32_to_bf16_bits(nd(rng));
    for (auto& v : b_src) v = mk::f32_to_bf16_bits(nd(rng));
    CopyOut co;
    launch(copy_kernel, 2048, a_src, b_src, &co);
    for (int lane = 0; lane < 32; ++lane) {
      const std::string l = "order " + std::to_string(order) + " lane " + std::to_string(lane);
      expect(co.before[lane], l + ": cp.async landed before its wait");
      expect(co.after1[lane], l + ": wait_group 1 (group 0 landed, group 1 not)");
      expect(co.after0[lane], l + ": wait_group 0");
      expect(co.zeros[lane], l + ": src size 0 fills zeros");
      for (int i = 0; i < 4; ++i) {
        expect(co.c[lane][i] == co.c_ref[lane][i], l + ": MMA on ldmatrix fragments");
        // and against a float64 product of the tiles (A row-major, B(k, n) = b[n][k])
        const int row = (lane >> 2) + 8 * (i >> 1), col = 2 * (lane & 3) + (i & 1);
        double acc = 0;
        for (int k = 0; k < 16; ++k)
          acc += double(mk::bf16_bits_to_f32(a_src[row * 16 + k])) * mk::bf16_bits_to_f32(b_src[col * 16 + k]);
        expect(std::fabs(co.c[lane][i] - acc) <= 1e-5 * (1 + std::fabs(acc)), l + ": MMA value");
      }
    }
  }
  printf("copy_async_emu_test: %d checks, %d failures\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
