// Standalone GPU harness for kernels/cuda/linear_attention.cu: every form of the product side by
// side, checked against an F32 reference and timed, no Java needed. On the GPU machine, from the
// project root:
//   nvcc -std=c++17 -O3 -arch=sm_90 -Ikernels/include -Inative/include -Ikernels/cuda \
//        benchmarks/gpu/linear_attention_harness.cu -o /tmp/la && /tmp/la [--small | --tiny]
// (benchmarks/gpu/check.sh runs it). --small: [4,16,4096,128] and [32,8,512,64]; --tiny:
// [1,2,320,128] and [2,2,200,64] (several state chunks, a partial one), no warm-up, one call per
// row. Without a GPU, on the host emulator (tests/cuda-emu/linear_attention_harness_emu.cpp: this
// file as host C++; times are the host's), from a CMake build folder BUILD of cmake/:
//   cmake --build BUILD --target linear_attention_harness_emu && BUILD/linear_attention_harness_emu --tiny
// (ctest emu.harness.linear_attention, about 10 s). Forms, per shape and mask (none, causal):
//   F32  sequential       the former kernel (a block per group and 32 value columns walks the sequence)
//   F32  chunked SIMT     the chunk-parallel form (states, F32 scan, 64 x 64 register-tiled outputs)
//   BF16 / F16 tensor cores  the same chunk-parallel form on m16n8k16 MMAs, F32 states and scan
//   BF16 / F16 tensor cores, R = 64, 128, 256 (causal)  state chunks of R keys (longer: fewer
//                    states, more masked key blocks; GFLOP counts the extra blocks); the entry
//                    point's R (256 with a mask: tc_plan) is marked "entry point"
//   BF16 / F16 chunked SIMT  the SIMT chunk-parallel form on the 16-bit data (the fallback), F32 inside
//   TF32 tensor cores  F32 data on m16n8k8 TF32 MMAs (the opt-in of Backend.setAllowTf32: the entry
//                    point with MK_LINEAR_MASK_TF32), F32 states and scan; R = 64, 128, 256 as for 16 bit
//   state form (none; the recurrent choice without a mask): the key segments' states, then blocks of
//                    256 query rows summing them and streaming q (MB: state_form_bytes), 16-bit at
//                    1, 2, 4, 8 key segments, F32 (TF32, x3) at the entry point's count, with apply
//                    tiles of 64 columns (the default) and 128
//   recurrent (causal; opt-in, linear_attention_choice.h): BF16 / F16, TF32 and x3 (F32 data, three
//                    TF32 MMAs per product: F32-class, held to the F32 bound) on the recurrent form,
//                    a block per (group, 64 value columns) walking the chunks with the state in
//                    registers (MB: q, k, v once per value tile, out once; with several segments
//                    per group also k, v once more and the segment states: state_traffic), 16-bit
//                    at 1, 2, 4, 8 segments per group, F32 at the entry point's count
//   and "fwd+bwd" rows: the forward and the three products of its backward (dq = P(g, v, k, M),
//   dk = P(v, g, q, M'), dv = P(k, q, g, M')), as LinearAttention.product's backward calls them.
// The inputs are multiples of 2^-10 in [-1/8, 1/8) (8-bit integers scaled), exact in F32, BF16 and
// F16 (and TF32), so one reference serves every dtype: the F32 sequential form (an F32 sum per
// output) of the same values. err = max |out - ref| / max |ref|, at most bound() (a type's rounding,
// with room: F32 1e-4, TF32 and F16 4e-3, BF16 1.6e-2); each output is filled with NaN before its form
// runs, so what a form leaves unwritten fails. Exit status 1 if a row fails (its last column);
// fwd+bwd rows are timings, checked only for the calls' status.
// Timing: median of 15 calls after 3 warm-ups, CUDA events around each call (scratch allocated
// once outside, as the device cache hands it out in the library).
// Figures independent of any peer, to read the result as a fraction of the card's limits:
//   GFLOP   the algorithm's multiply-adds x 2: states 2·G·n·dk·dv, q·S 2·G·n·dk·dv, and for masks
//           the visible half of each 64 x 64 diagonal block, 2·G·n·32·(dk + dv);
//   MB      bytes that must cross DRAM at least once: q, k, v read and out written in the data
//           type, and for the chunked forms the F32 chunk states (written by the state pass, read
//           and written by the scan when there are several chunks, read by the output pass; without
//           a mask the scan writes and the output pass reads only the total: state_traffic());
//   % copy  MB / ms against the device-to-device copy rate this harness measures first (the
//           memory-bound ceiling); TFLOP/s against the peak given with --peak-tflops (not known
//           here: the dense BF16 mma.sync and F32 FMA peaks of the card, printed if given; TF32 rows
//           against half the BF16 peak, the dense TF32 rate of A100 and H100-class cards).
// After each shape and mask: the chunk states' share of the bytes moved per call (state_traffic():
// with several chunks 4 x G x chunks x dk x dv x 4 B when masked), the traffic the 16-bit and TF32
// forms spend beyond q, k, v and out.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "linear_attention.cu"

static constexpr int64_t TC_ROWS = mk::cuda::TC::kRows;  // keys of a key block

#define CHECK(x)                                                                         \
  do {                                                                                   \
    cudaError_t e_ = (x);                                                                \
    if (e_ != cudaSuccess) {                                                             \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

// kernel<<<blocks, threads>>>(args...) the way the library launches (mk::cuda::launch_grid, through
// cudaLaunchKernelEx), so that the host emulator runs this file too (tests/cuda-emu/*_harness_emu.cpp);
// the launch's status.
template <class... K, class... A>
static cudaError_t launch(void (*kernel)(K...), int64_t blocks, int threads, A... args) {
  return cudaError_t(mk::cuda::launch_grid(kernel, blocks, threads, 0, nullptr, args...));
}
// blocks of 256 threads for the grid-stride loops over n elements: 1024, fewer for small n (the
// emulator runs every block, empty or not)
static int64_t flat_blocks(int64_t n) { return std::max<int64_t>(1, std::min<int64_t>(1024, (n + 255) / 256)); }
// 0xFF bytes (NaN in F32, BF16 and F16) over a form's output before it runs: what it leaves unwritten
// then fails the check instead of showing the previous form's values
static void poison(void* p, int64_t bytes) { CHECK(cudaMemset(p, 0xFF, size_t(bytes))); }

// multiples of 2^-10 in [-1/8, 1/8): exact in every dtype of the table
__global__ void fill_exact(float* x, int64_t n, unsigned seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    unsigned h = unsigned(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    x[i] = float(int(h & 0xff) - 128) / 1024.0f;
  }
}

template <class H>
__global__ void to_half(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = mk::cuda::float_to_half<H>(x[i]);
}

template <class H>
__global__ void from_half(const uint16_t* y, float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = mk::cuda::half_to_float<H>(y[i]);
}

static int g_warm = 3, g_max_reps = 1 << 30;  // (--tiny: no warm-up, one call)

static float time_call(int reps, const std::function<int()>& f) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  for (int i = 0; i < g_warm; ++i)
    if (f() != 0) return -1;
  std::vector<float> ms;
  for (int i = 0; i < std::min(reps, g_max_reps); ++i) {
    CHECK(cudaEventRecord(a));
    const int st = f();
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    if (st != 0) return -1;
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

static double g_copy_gbs = 0, g_peak_f32 = 0, g_peak_mma = 0;
static int g_fail = 0;  // rows whose call failed or whose error is over its bound

// device-to-device copy rate (GB/s, read + write counted) of a 1 GiB buffer (--tiny: 64 MiB)
static double copy_rate(bool tiny) {
  const size_t bytes = size_t(1) << (tiny ? 26 : 30);
  void *a, *b;
  CHECK(cudaMalloc(&a, bytes));
  CHECK(cudaMalloc(&b, bytes));
  CHECK(cudaMemset(a, 0, bytes));
  const float ms = time_call(10, [&] { return int(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); });
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
  return 2.0 * double(bytes) / (ms * 1e6);
}

struct Shape {
  int64_t b, h, n, d;
};

// The bound on a row's err: its type's rounding, with room. The inputs are exact in every type, so
// an F32 form differs from the reference by summation order alone, and a 16-bit or TF32 form by the
// rounding of the chunk states and the masked score blocks on their way into the MMAs and of the
// 16-bit output: F32 1e-4; TF32 and F16 4e-3 (8 units of 2^-11); BF16 1.6e-2 (4 units of 2^-8).
// (On the emulator, --tiny: F32 0, TF32 2.3e-4, F16 4.2e-4, BF16 3.7e-3.) A wrong chunk, mask or
// scan is off by far more; a result 2 % off fails in every type.
static double bound(const char* dtype, int unit) {
  if (unit == 2) return 4e-3;
  if (unit == 3) return 1e-4;  // x3: F32-class
  if (!strcmp(dtype, "BF16")) return 1.6e-2;
  if (!strcmp(dtype, "F16")) return 4e-3;
  return 1e-4;
}

// One row of the table. err < 0: a timing row (fwd+bwd), checked only for the calls' status.
static void row(const Shape& s, const char* mask, const char* dtype, const char* form, float ms, double flops,
                double bytes, double err, int unit) {  // unit: 0 F32 FMA, 1 16-bit MMA, 2 TF32 MMA, 3 x3 (3 TF32 MMAs)
  char shape[64];
  snprintf(shape, sizeof shape, "[%lld,%lld,%lld,%lld]", (long long)s.b, (long long)s.h, (long long)s.n,
           (long long)s.d);
  if (ms < 0) {
    ++g_fail;
    printf("| %s | %s | %s | %s | failed | | | | | | FAIL |\n", shape, mask, dtype, form);
    return;
  }
  const bool ok = err < 0 || err <= bound(dtype, unit);  // (NaN: not ok)
  if (!ok) ++g_fail;
  const double tfs = flops / (ms * 1e9), gbs = bytes / (ms * 1e6);
  const double peak =
      unit == 3 ? g_peak_mma / 6 : unit == 2 ? g_peak_mma / 2 : unit == 1 ? g_peak_mma : g_peak_f32;
  char pk[32] = "";
  if (peak > 0) snprintf(pk, sizeof pk, "%.1f %%", 100.0 * tfs / peak);
  char er[32] = "";
  if (err >= 0) snprintf(er, sizeof er, "%.2e", err);
  printf("| %s | %s | %s | %s | %.3f | %.1f | %s | %.0f | %.1f %% | %s | %s |\n", shape, mask, dtype, form, ms, tfs,
         pk, bytes / 1e6, 100.0 * gbs / g_copy_gbs, er, ok ? "ok" : "FAIL");
}

// Bytes of F32 chunk states moved per product: written by the state pass; with several chunks read
// and written by the scan (masked: all of them; no mask: all read, the total written to chunk 0) and
// read by the output pass (no mask: chunk 0 only); one chunk: written and read.
static double state_traffic(int64_t G, int64_t states, int64_t d, int mask) {
  const double one = 4.0 * double(G) * double(d) * double(d);
  return one * (states == 1 ? 2.0 : mask ? 4.0 * double(states) : 2.0 * double(states) + 2.0);
}

// The forward's GFLOP with state chunks of R keys: a masked product also multiplies the visible half
// of the R - 64 extra keys of each query block's own chunk (64 keys: the base count `flops`).
static double chunk_flops(double flops, int64_t G, int64_t n, int64_t d, int64_t R, int mask) {
  return flops + (mask ? double(G) * n * double(R - TC_ROWS) * 2.0 * (d + d) / 2.0 : 0.0);
}

static double max_rel_diff(const std::vector<float>& x, const std::vector<float>& ref) {
  double mx = 0, diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    mx = std::max(mx, double(std::fabs(ref[i])));
    const double d = std::fabs(double(x[i]) - double(ref[i]));
    if (!(d <= diff)) diff = std::isnan(d) ? INFINITY : d;
  }
  return diff / (mx > 0 ? mx : 1);
}

// The recurrent form (linear_attention_recurrent.cuh, opt-in: MK_LINEAR_TC=recurrent, MK_LINEAR_F32=x3):
// the forward called directly, and the four products of forward + backward through the entry point
// with the variable set (the backward's products are masked too, so all four take the form).
// Bytes: q, k, v read once per 64 value columns (d / 64 times), out written once.
static double recurrent_bytes(int64_t G, int64_t n, int64_t d, int elem) {
  const double tiles = double((d + 63) / 64);
  return double(elem) * double(G) * double(n) * double(d) * (3.0 * tiles + 1.0);
}
// Without a mask the recurrent choice runs the state form (run_tc_state_form): the state pass reads
// k once per state tile (128 value columns where d > 64, else 64) and v once and writes `segs` F32
// states per group (with more than one, rec_total_kernel reads them and writes their total in the
// data type, which the apply pass reads); the apply pass reads q once per apply tile (acols: 0 = the
// default, 128 columns for 16-bit data with d > 64, else 64) and writes out. States counted once.
static double state_form_bytes(int64_t G, int64_t n, int64_t d, int elem, int64_t segs, int acols = 0) {
  if (!acols) acols = elem == 2 && d > 64 ? 128 : 64;
  const double stiles = double(d > 64 ? (d + 127) / 128 : 1), atiles = double((d + acols - 1) / acols);
  return double(elem) * double(G) * double(n) * double(d) * (stiles + 1.0 + atiles + 1.0) +
         2.0 * 4.0 * double(G) * double(segs) * double(d) * double(d) +
         (segs > 1 ? 2.0 * double(elem) * double(G) * double(d) * double(d) : 0.0);
}
// The segment count the entry point gives the recurrent form (masked: rec_segments; unmasked: the
// state form's rec_state_form_segments within the unmasked plan's scratch)
static int64_t entry_segments(int64_t G, int64_t n, int64_t d, int mask, int elem) {
  if (mask) return mk::cuda::rec_segments(G, (d + 63) / 64, n, mk::cuda::device_sms());
  return mk::cuda::rec_state_form_segments(G, n, d, d, elem, mk::cuda::chunk_plan(MK_F32, G, n, d, d, 0).bytes, 0,
                                           mk::cuda::device_sms());
}
static int64_t g_ws_bytes = 0;  // the scratch's size (main allocates it per shape)
struct EnvSet {
  const char* name;
  EnvSet(const char* n, const char* v) : name(n) { setenv(n, v, 1); }
  ~EnvSet() { unsetenv(name); }
};

// The forward and the three products of its backward through the entry point, as
// LinearAttention.product's backward calls them (dq = P(g, v, k, M), dk = P(v, g, q, M'),
// dv = P(k, q, g, M')); flags: MK_LINEAR_MASK_TF32 or 0.
template <class T>
static int fwd_bwd4(int dtype, int64_t G, int64_t n, int64_t d, const T* q, const T* k, const T* v, const T* g, T* out,
                    T* t1, T* t2, T* t3, int mask, int flags, void* S) {
  const int mirror = mask == 1 ? 2 : mask;
  int st = mk::cuda::linear_attention(dtype, G, n, n, d, d, q, k, v, out, mask | flags, S, nullptr);
  if (!st) st = mk::cuda::linear_attention(dtype, G, n, n, d, d, g, v, k, t1, mask | flags, S, nullptr);
  if (!st) st = mk::cuda::linear_attention(dtype, G, n, n, d, d, v, g, q, t2, mirror | flags, S, nullptr);
  if (!st) st = mk::cuda::linear_attention(dtype, G, n, n, d, d, k, q, g, t3, mirror | flags, S, nullptr);
  return st;
}

template <class H>
static void half_rows(const Shape& s, int mask, const char* name, const float* q, const float* k, const float* v,
                      const std::vector<float>& ref, void* ws, const mk::cuda::ChunkPlan& plan, double flops,
                      double io_elems, double state_bytes) {
  const int64_t G = s.b * s.h, n = s.n, d = s.d, elems = G * n * d;
  uint16_t *qh, *kh, *vh, *oh, *gh, *t1, *t2, *t3;
  for (uint16_t** p : {&qh, &kh, &vh, &oh, &gh, &t1, &t2, &t3}) CHECK(cudaMalloc(p, elems * 2));
  CHECK(launch(to_half<H>, flat_blocks(elems), 256, q, qh, elems));
  CHECK(launch(to_half<H>, flat_blocks(elems), 256, k, kh, elems));
  CHECK(launch(to_half<H>, flat_blocks(elems), 256, v, vh, elems));
  CHECK(launch(to_half<H>, flat_blocks(elems), 256, v, gh, elems));  // an upstream gradient for the backward rows
  float* back;
  CHECK(cudaMalloc(&back, elems * 4));
  std::vector<float> host(elems);
  auto err_of = [&](const uint16_t* o) {
    CHECK(launch(from_half<H>, flat_blocks(elems), 256, o, back, elems));
    CHECK(cudaMemcpy(host.data(), back, elems * 4, cudaMemcpyDeviceToHost));
    return max_rel_diff(host, ref);
  };
  float* S = static_cast<float*>(ws);
  // tensor cores at state chunks of R = plan.rows .. 4 plan.rows keys (longer: fewer F32 states to
  // write, scan and read; more masked key blocks per query block); the entry point's R (tc_plan:
  // 256 for masks since the H100 run of 2026-12-05) is marked
  const mk::cuda::ChunkPlan tp = mk::cuda::tc_plan(plan, G, n, d, d, mask);
  float ms = 0;
  for (int64_t R = plan.rows; R <= 4 * plan.rows; R *= 2) {
    mk::cuda::ChunkPlan pr = plan;
    pr.rows = R;
    pr.states = (n + R - 1) / R;
    pr.bytes = 4 * G * pr.states * d * d;
    const double sb = state_traffic(G, pr.states, d, mask);
    const double fl = chunk_flops(flops, G, n, d, R, mask);
    poison(oh, elems * 2);
    ms = time_call(15, [&] { return mk::cuda::run_tc<H>(pr, G, n, n, d, d, qh, kh, vh, oh, mask, S, nullptr); });
    char form[64];
    snprintf(form, sizeof form, R == tp.rows ? "tensor cores (R = %lld, entry point)" : "tensor cores, R = %lld",
             (long long)R);
    row(s, mask ? "causal" : "none", name, form, ms, fl, io_elems * 2 + sb, ms < 0 ? -1 : err_of(oh), true);
    if (!mask) break;  // (no mask: one state per group whatever R)
  }
  {
    // the recurrent choice (masked: the walk; unmasked: the state form) at 1, 2, 4, 8 segments per
    // group (masked: a state pass over the keys and a scan first; unmasked: key segments of the state
    // pass); the entry point's choice marked
    const int64_t ws_bytes = g_ws_bytes;  // (ws's size)
    const int64_t auto_segs = entry_segments(G, n, d, mask, 2);
    for (int64_t segs = 1; segs <= 8; segs *= 2) {
      poison(oh, elems * 2);
      ms = time_call(15, [&] {
        return mk::cuda::run_tc_recurrent<mk::cuda::RecOps<H>>(G, n, n, d, d, qh, kh, vh, oh, mask, nullptr, S,
                                                               ws_bytes, segs);
      });
      char form[96];
      snprintf(form, sizeof form, "%s, %lld %ssegment%s%s", mask ? "recurrent tensor cores" : "state form (recurrent)",
               (long long)segs, mask ? "" : "key ", segs > 1 ? "s" : "", segs == auto_segs ? " (entry point)" : "");
      const double extra = segs > 1 ? 2.0 * double(elems) * 2 + state_traffic(G, segs, d, mask) : 0.0;
      const double mb = mask ? recurrent_bytes(G, n, d, 2) + extra : state_form_bytes(G, n, d, 2, segs);
      row(s, mask ? "causal" : "none", name, form, ms, flops, mb, ms < 0 ? -1 : err_of(oh), true);
    }
    EnvSet env("MK_LINEAR_TC", "recurrent");
    ms = time_call(15, [&] { return fwd_bwd4(H::kDtype, G, n, d, qh, kh, vh, gh, oh, t1, t2, t3, mask, 0, S); });
    row(s, mask ? "causal" : "none", name, "recurrent fwd+bwd (4 products, MK_LINEAR_TC=recurrent)", ms, 4 * flops,
        4 * (mask ? recurrent_bytes(G, n, d, 2) : state_form_bytes(G, n, d, 2, auto_segs)), -1, true);
  }
  ms = time_call(15, [&] { return fwd_bwd4(H::kDtype, G, n, d, qh, kh, vh, gh, oh, t1, t2, t3, mask, 0, S); });
  row(s, mask ? "causal" : "none", name, "fwd+bwd (4 products, entry point)", ms,
      4 * chunk_flops(flops, G, n, d, tp.rows, mask), 4 * (io_elems * 2 + state_traffic(G, tp.states, d, mask)), -1,
      true);
  poison(oh, elems * 2);
  ms = time_call(15, [&] { return mk::cuda::run_chunked<H>(plan, G, n, n, d, d, qh, kh, vh, oh, mask, S, nullptr); });
  row(s, mask ? "causal" : "none", name, "chunked SIMT (16-bit data)", ms, flops, io_elems * 2 + state_bytes,
      ms < 0 ? -1 : err_of(oh), false);
  for (uint16_t* p : {qh, kh, vh, oh, gh, t1, t2, t3}) CHECK(cudaFree(p));
  CHECK(cudaFree(back));
}

// F32 data on TF32 tensor cores: the entry point with the flag (state chunks of plan.rows keys), longer
// state chunks (causal), and the forward + backward's four products.
static void tf32_rows(const Shape& s, int mask, const float* q, const float* k, const float* v, float* out,
                      const std::vector<float>& ref, void* ws, const mk::cuda::ChunkPlan& plan, double flops,
                      double io_elems, double state_bytes) {
  const int64_t G = s.b * s.h, n = s.n, d = s.d, elems = G * n * d;
  const int tf32 = MK_LINEAR_MASK_TF32;
  const char* mname = mask ? "causal" : "none";
  float *g, *t1, *t2, *t3;
  for (float** p : {&g, &t1, &t2, &t3}) CHECK(cudaMalloc(p, elems * 4));
  CHECK(cudaMemcpy(g, v, elems * 4, cudaMemcpyDeviceToDevice));  // an upstream gradient for the backward rows
  std::vector<float> host(elems);
  auto err_of = [&](const float* o) {
    CHECK(cudaMemcpy(host.data(), o, elems * 4, cudaMemcpyDeviceToHost));
    return max_rel_diff(host, ref);
  };
  float* S = static_cast<float*>(ws);
  poison(out, elems * 4);
  float ms = time_call(15, [&] {
    return mk::cuda::linear_attention(MK_F32, G, n, n, d, d, q, k, v, out, mask | tf32, ws, nullptr);
  });
  const mk::cuda::ChunkPlan tp = mk::cuda::tc_plan(plan, G, n, d, d, mask);
  char form[64];
  snprintf(form, sizeof form, "TF32 tensor cores (R = %lld, entry point)", (long long)tp.rows);
  row(s, mname, "F32", form, ms, chunk_flops(flops, G, n, d, tp.rows, mask),
      io_elems * 4 + state_traffic(G, tp.states, d, mask), ms < 0 ? -1 : err_of(out), 2);
  for (int64_t R = plan.rows; mask && R <= 4 * plan.rows; R *= 2) {
    if (R == tp.rows) continue;  // the entry point's row above
    mk::cuda::ChunkPlan pr = plan;
    pr.rows = R;
    pr.states = (n + R - 1) / R;
    pr.bytes = 4 * G * pr.states * d * d;
    const double sb = state_traffic(G, pr.states, d, mask);
    const double fl = chunk_flops(flops, G, n, d, R, mask);
    poison(out, elems * 4);
    ms = time_call(15, [&] {
      return mk::cuda::run_tc<mk::cuda::Tf32>(pr, G, n, n, d, d, q, k, v, out, mask, S, nullptr);
    });
    snprintf(form, sizeof form, "TF32 tensor cores, R = %lld", (long long)R);
    row(s, mname, "F32", form, ms, fl, io_elems * 4 + sb, ms < 0 ? -1 : err_of(out), 2);
  }
  ms = time_call(15, [&] { return fwd_bwd4(MK_F32, G, n, d, q, k, v, g, out, t1, t2, t3, mask, tf32, ws); });
  row(s, mname, "F32", "TF32 fwd+bwd (4 products, entry point)", ms,
      4 * chunk_flops(flops, G, n, d, tp.rows, mask),
      4 * (io_elems * 4 + state_traffic(G, tp.states, d, mask)), -1,
      2);
  {  // the recurrent choice (masked: the walk; unmasked: the state form): TF32 (one term) and x3 (F32
     // without TF32, three terms)
    for (int terms : {1, 3}) {
      // the entry point's segment count, called directly
      const int64_t ws_bytes = g_ws_bytes;  // (ws's size)
      const int64_t segs = entry_segments(G, n, d, mask, 4);
      poison(out, elems * 4);
      ms = time_call(15, [&] {
        return terms == 1 ? mk::cuda::run_tc_recurrent<mk::cuda::RecOpsF32<1>>(G, n, n, d, d, q, k, v, out, mask,
                                                                                 nullptr, S, ws_bytes, segs)
                          : mk::cuda::run_tc_recurrent<mk::cuda::RecOpsF32<3>>(G, n, n, d, d, q, k, v, out, mask,
                                                                                 nullptr, S, ws_bytes, segs);
      });
      char form[96];
      snprintf(form, sizeof form, "%s %s%s, %lld %ssegment%s", terms == 1 ? "TF32" : "x3",
               mask ? "recurrent tensor cores" : "state form (recurrent)", terms == 1 ? "" : " (F32 accuracy)",
               (long long)segs, mask ? "" : "key ", segs > 1 ? "s" : "");
      const double extra = segs > 1 ? 2.0 * double(elems) * 4 + state_traffic(G, segs, d, mask) : 0.0;
      const double mb = mask ? recurrent_bytes(G, n, d, 4) + extra : state_form_bytes(G, n, d, 4, segs);
      row(s, mname, "F32", form, ms, flops, mb, ms < 0 ? -1 : err_of(out), terms == 1 ? 2 : 3);
      if (!mask && d > 64) {  // the state form with apply tiles of 128 columns (q read once; one block per SM)
        poison(out, elems * 4);
        ms = time_call(15, [&] {
          return terms == 1 ? mk::cuda::run_tc_state_form<mk::cuda::RecOpsF32<1>>(G, n, n, d, d, q, k, v, out, nullptr,
                                                                                  S, ws_bytes, segs, 128)
                            : mk::cuda::run_tc_state_form<mk::cuda::RecOpsF32<3>>(G, n, n, d, d, q, k, v, out, nullptr,
                                                                                  S, ws_bytes, segs, 128);
        });
        snprintf(form, sizeof form, "%s state form (recurrent), apply tiles of 128, %lld key segment%s",
                 terms == 1 ? "TF32" : "x3", (long long)segs, segs > 1 ? "s" : "");
        row(s, mname, "F32", form, ms, flops, state_form_bytes(G, n, d, 4, segs, 128), ms < 0 ? -1 : err_of(out),
            terms == 1 ? 2 : 3);
      }
      EnvSet env(terms == 1 ? "MK_LINEAR_TC" : "MK_LINEAR_F32", terms == 1 ? "recurrent" : "x3");
      const int flag = terms == 1 ? tf32 : 0;
      ms = time_call(15, [&] { return fwd_bwd4(MK_F32, G, n, d, q, k, v, g, out, t1, t2, t3, mask, flag, ws); });
      row(s, mname, "F32",
          terms == 1 ? "TF32 recurrent fwd+bwd (4 products, MK_LINEAR_TC=recurrent)"
                     : "x3 recurrent fwd+bwd (4 products, MK_LINEAR_F32=x3)",
          ms, 4 * flops, 4 * (mask ? recurrent_bytes(G, n, d, 4) : state_form_bytes(G, n, d, 4, segs)), -1,
          terms == 1 ? 2 : 3);
    }
  }
  for (float* p : {g, t1, t2, t3}) CHECK(cudaFree(p));
}

int main(int argc, char** argv) {
  bool small = false, tiny = false;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--small")) small = true;
    if (!strcmp(argv[i], "--tiny")) tiny = true;
    if (!strcmp(argv[i], "--peak-tflops") && i + 2 < argc) {  // F32 FMA peak, 16-bit mma.sync peak
      g_peak_f32 = atof(argv[++i]);
      g_peak_mma = atof(argv[++i]);
    }
  }
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  if (tiny) g_warm = 0, g_max_reps = 1;
  g_copy_gbs = copy_rate(tiny);
  printf("device: %s, %d SMs, sm_%d%d; device-to-device copy %.0f GB/s (read + write)\n\n", prop.name,
         prop.multiProcessorCount, prop.major, prop.minor, g_copy_gbs);
  std::vector<Shape> shapes = {{4, 16, 4096, 128}, {1, 16, 16384, 128}, {4, 16, 4096, 64}, {32, 8, 512, 64}};
  if (small) shapes = {{4, 16, 4096, 128}, {32, 8, 512, 64}};
  if (tiny) shapes = {{1, 2, 320, 128}, {2, 2, 200, 64}};
  printf("| shape | mask | dtype | form | ms | TFLOP/s | %% of peak | MB moved | %% of copy rate | err vs F32 | |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Shape& s : shapes) {
    const int64_t G = s.b * s.h, n = s.n, d = s.d;
    const int64_t elems = G * n * d;
    float *q, *k, *v, *o1, *o2;
    for (float** p : {&q, &k, &v, &o1, &o2}) CHECK(cudaMalloc(p, elems * 4));
    CHECK(launch(fill_exact, flat_blocks(elems), 256, q, elems, 1u));
    CHECK(launch(fill_exact, flat_blocks(elems), 256, k, elems, 2u));
    CHECK(launch(fill_exact, flat_blocks(elems), 256, v, elems, 3u));
    // the largest plan (the masked one; without a mask the chunks may be longer), or the state form's
    // at 8 key segments (its states and their F32 total), whichever is larger
    const int64_t ws_size = std::max<int64_t>(mk::cuda::chunk_plan(MK_F32, G, n, d, d, 1).bytes,
                                              mk::cuda::rec_state_form_scratch(G, d, d, 8, 4));
    void* ws = nullptr;
    CHECK(cudaMalloc(&ws, std::max<int64_t>(ws_size, 16)));
    g_ws_bytes = ws_size;
    for (int mask = 0; mask <= 1; ++mask) {
      const mk::cuda::ChunkPlan plan = mk::cuda::chunk_plan(MK_F32, G, n, d, d, mask);  // the entry point's
      const char* mname = mask ? "causal" : "none";
      const double flops = double(G) * (4.0 * n * d * d + (mask ? 2.0 * n * 32 * (d + d) : 0.0));
      const double io_elems = 4.0 * double(elems);  // q, k, v, out
      const double state_bytes = state_traffic(G, plan.states, d, mask);
      std::vector<float> ref(elems), h2(elems);
      poison(o1, elems * 4);
      float ms = time_call(
          5, [&] { return mk::cuda::linear_attention(MK_F32, G, n, n, d, d, q, k, v, o1, mask, nullptr, nullptr); });
      CHECK(cudaMemcpy(ref.data(), o1, elems * 4, cudaMemcpyDeviceToHost));
      row(s, mname, "F32", "sequential (reference)", ms, flops, io_elems * 4, 0.0, false);
      poison(o2, elems * 4);
      ms = time_call(15,
                     [&] { return mk::cuda::linear_attention(MK_F32, G, n, n, d, d, q, k, v, o2, mask, ws, nullptr); });
      CHECK(cudaMemcpy(h2.data(), o2, elems * 4, cudaMemcpyDeviceToHost));
      row(s, mname, "F32", "chunked SIMT", ms, flops, io_elems * 4 + state_bytes, max_rel_diff(h2, ref), false);
      // the exact form's forward + backward, beside the TF32 one (v as the upstream gradient)
      ms = time_call(15, [&] { return fwd_bwd4(MK_F32, G, n, d, q, k, v, v, o2, o1, o1, o1, mask, 0, ws); });
      row(s, mname, "F32", "fwd+bwd (4 products, entry point)", ms, 4 * flops, 4 * (io_elems * 4 + state_bytes), -1,
          false);
      if (!mask) {  // the momentum term (linear_attention_momentum, F32, decay 0.9): memory-bound, one read
                    // and one write per element; checked against the same recurrence on the host
        poison(o1, elems * 4);
        ms = time_call(15, [&] { return mk::cuda::linear_attention_momentum(MK_F32, G, n, d, v, o1, 0.9, 0, nullptr); });
        std::vector<float> hv(elems), want(elems);
        CHECK(cudaMemcpy(hv.data(), v, elems * 4, cudaMemcpyDeviceToHost));
        CHECK(cudaMemcpy(h2.data(), o1, elems * 4, cudaMemcpyDeviceToHost));
        for (int64_t g = 0; g < G; ++g)
          for (int64_t e = 0; e < d; ++e) {
            float m = 0.f;
            for (int64_t j = 0; j < n; ++j) {
              if (j > 0) m = 0.9f * (m + hv[(g * n + j - 1) * d + e]);
              want[(g * n + j) * d + e] = m;
            }
          }
        row(s, "none", "F32", "momentum term (decay 0.9)", ms, 0.0, 2.0 * double(elems) * 4, max_rel_diff(h2, want),
            false);
      }
      tf32_rows(s, mask, q, k, v, o2, ref, ws, plan, flops, io_elems, state_bytes);
      half_rows<mk::cuda::Bf16>(s, mask, "BF16", q, k, v, ref, ws, plan, flops, io_elems, state_bytes);
      half_rows<mk::cuda::Fp16>(s, mask, "F16", q, k, v, ref, ws, plan, flops, io_elems, state_bytes);
      printf("|  | %s | | chunk states (R = %lld, %lld per group): %.0f MB of the %.0f MB (16-bit) / %.0f MB (F32) "
             "moved per forward | | | | | | | |\n",
             mname, (long long)plan.rows, (long long)plan.states, state_bytes / 1e6, (io_elems * 2 + state_bytes) / 1e6,
             (io_elems * 4 + state_bytes) / 1e6);
    }
    CHECK(cudaFree(ws));
    for (float* p : {q, k, v, o1, o2}) CHECK(cudaFree(p));
  }
  printf(
      "\nGFLOP and MB as in the header of benchmarks/gpu/linear_attention_harness.cu (algorithm FLOPs, not the\n"
      "MMAs issued; MB: DRAM traffic at least needed). fwd+bwd: 4x the forward's figures.\n");
  printf("\n%d failed rows\n", g_fail);
  return g_fail ? 1 : 0;
}
