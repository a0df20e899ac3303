// Host emulation of the CUDA runtime and of the device built-ins that kernels/cuda/**/*.cu
// uses, so its kernels run (slowly) on a machine without a GPU and can be compared with their CPU
// twins. Built for the tests of tests/cuda-emu (cmake/tests.cmake, run by ctest in mvn verify, or
// run.sh), for the standalone GPU harnesses (benchmarks/gpu/*_harness.cu, through
// tests/cuda-emu/*_harness_emu.cpp) and, under tests/gpu-emu/emu_cuda.h, for the emulated library.
// Included instead of the real <cuda_runtime.h>.
//
// Each block runs as blockDim.x cooperative fibers on one OS thread, blocks one after
// the other. __syncthreads and warp shuffles are barriers; between barriers the fibers run one at
// a time, in an order chosen per run (forward, reverse or shuffled), so a missing barrier shows up
// as a result that depends on the order. Dynamic shared memory is filled with NaN before every
// block and checked for writes past the launch's size; launches are checked against the
// configured opt-in shared-memory limit and cudaFuncSetAttribute, as on a device.
// What it cannot show: timing, register pressure, the memory model beyond barrier ordering.
#pragma once
#include <immintrin.h>
#if defined(__SANITIZE_ADDRESS__)
// Under AddressSanitizer (-DMK_SANITIZE=address,...: tests/sanitize/run.sh) the guard after every
// cudaMalloc block is poisoned, so a kernel that reads or writes past the bytes asked for stops
// there with the kernel's source line, as compute-sanitizer's memcheck reports it on a GPU;
// freed blocks are ASan's own (quarantined) heap, so a use after cudaFree is caught as well.
#include <sanitizer/asan_interface.h>
#define MK_EMU_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define MK_EMU_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
// The fibers' stack switches told to ASan (its fiber interface), so that it knows which stack
// runs: LEAVE before a switch, with the stack switched to; ARRIVE after it, on the new stack.
#define MK_EMU_FIBER_LEAVE(save, bottom, size) __sanitizer_start_switch_fiber((save), (bottom), (size))
#define MK_EMU_FIBER_ARRIVE(save, bottom_old, size_old) __sanitizer_finish_switch_fiber((save), (bottom_old), (size_old))
#else
#define MK_EMU_POISON(p, n) ((void)(p), (void)(n))
#define MK_EMU_UNPOISON(p, n) ((void)(p), (void)(n))
#define MK_EMU_FIBER_LEAVE(save, bottom, size) ((void)0)
#define MK_EMU_FIBER_ARRIVE(save, bottom_old, size_old) ((void)0)
#endif

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

// kernels/cuda/mma.cuh: the MMA below instead of inline PTX, portable 16-bit conversions
#define MK_CUDA_EMU 1

struct uint3 { unsigned x, y, z; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorLaunchFailure = 719
};
typedef struct CUstream_st* cudaStream_t;
enum cudaDeviceAttr {
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMultiProcessorCount = 16
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
struct cudaLaunchAttribute;
struct cudaLaunchConfig_t {
  dim3 gridDim, blockDim;
  size_t dynamicSmemBytes;
  cudaStream_t stream;
  cudaLaunchAttribute* attrs;
  unsigned numAttrs;
};

namespace emu {
struct Config {
  int optin = 232448, per_sm = 233472;  // H100
  int order = 0;                        // 0 forward, 1 reverse, 2 shuffled
  unsigned seed = 1;
  size_t smem_capacity = 256 * 1024;
  int64_t launches = 0, blocks = 0;
  std::map<const void*, int> max_dynamic;  // cudaFuncAttributeMaxDynamicSharedMemorySize per kernel
  int arch_major = 9;                      // cudaDevAttrComputeCapabilityMajor
  int arch_minor = 0;                      // cudaDevAttrComputeCapabilityMinor
  int sms = 132;                           // cudaDevAttrMultiProcessorCount (H100 SXM)
};
inline Config& config() { static Config c; return c; }
// The emulator's state (config, the fibers, blockIdx) is one per process: launches and kernel
// attributes from several host threads (the Java stack's stream tests, tests/gpu-emu) take turns.
inline std::mutex& launch_mutex() { static std::mutex m; return m; }

enum State { READY, WAIT_BLOCK, WAIT_WARP, DONE };
// One cp.async of a thread, performed when the thread's cp.async.wait_group reaches its group.
struct PendingCopy {
  unsigned char* dst;
  const unsigned char* src;
  int src_bytes;
};
// The fibers' context switch (x86-64 System V): push the callee-saved registers on the current
// stack, save its pointer in *from, load `to` and pop them. Everything else is caller-saved, so a
// call to it is a context switch. glibc's swapcontext also saved the FPU environment and made an
// rt_sigprocmask system call per switch: ~75 % of an emulator run's time (perf, 2026-12-05; the
// fibers switch at every barrier and warp collective). MXCSR and the x87 control word are not
// switched: nothing here changes them. Weak, so that two files including this header link.
extern "C" void mk_emu_fiber_switch(void** from, void* to);
asm(R"(
    .text
    .weak mk_emu_fiber_switch
    .type mk_emu_fiber_switch, @function
mk_emu_fiber_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size mk_emu_fiber_switch, .-mk_emu_fiber_switch
)");

struct Fiber {
  void* sp = nullptr;  // its saved stack pointer while switched out
  void* asan_fake = nullptr;  // ASan's fake-stack handle while switched out (sanitized builds)
  std::vector<char> stack;
  int state = READY;
  std::vector<PendingCopy> open;                 // issued, not yet committed
  std::vector<std::vector<PendingCopy>> groups;  // committed, oldest first, not yet waited for
};
struct Sched {
  void* main_sp = nullptr;  // the scheduler's, while a fiber runs
  const void* main_bottom = nullptr;  // the scheduler's stack, as ASan reports it (sanitized builds)
  size_t main_size = 0;
  std::vector<Fiber> fibers;
  int nthreads = 0, cur = -1;
  int block_wait = 0;
  int warp_wait[32] = {};
  unsigned char shfl[32][32][8];
  uint3 block_idx{0, 0, 0};
  std::function<void()> body;
  int64_t events = 0;  // barriers reached and threads finished (sm90_emu.h: a wait nobody can end)
};
inline Sched& sched() { static Sched s; return s; }

[[noreturn]] inline void die(const char* what) {
  fprintf(stderr, "EMU ERROR: %s (fiber %d, block %u)\n", what, sched().cur, sched().block_idx.x);
  abort();
}

inline void yield_to_main() {
  Sched& s = sched();
  Fiber& f = s.fibers[s.cur];
  MK_EMU_FIBER_LEAVE(&f.asan_fake, s.main_bottom, s.main_size);
  mk_emu_fiber_switch(&f.sp, s.main_sp);
  MK_EMU_FIBER_ARRIVE(f.asan_fake, &s.main_bottom, &s.main_size);
}

inline void block_barrier() {
  Sched& s = sched();
  ++s.events;
  s.fibers[s.cur].state = WAIT_BLOCK;
  if (++s.block_wait == s.nthreads) {
    for (auto& f : s.fibers)
      if (f.state == WAIT_BLOCK) f.state = READY;
    s.block_wait = 0;
  }
  yield_to_main();
}

inline void warp_barrier() {
  Sched& s = sched();
  const int w = s.cur / 32;
  ++s.events;
  s.fibers[s.cur].state = WAIT_WARP;
  if (++s.warp_wait[w] == 32) {
    for (int l = 0; l < 32; ++l)
      if (s.fibers[w * 32 + l].state == WAIT_WARP) s.fibers[w * 32 + l].state = READY;
    s.warp_wait[w] = 0;
  }
  yield_to_main();
}

// A fiber's first frame (entered by the switch's ret, with the stack aligned as after a call): runs
// the body, then switches back for good (it has no caller to return to).
[[noreturn]] inline void trampoline() {
  Sched& s = sched();
  MK_EMU_FIBER_ARRIVE(nullptr, &s.main_bottom, &s.main_size);
  s.body();
  if (!s.fibers[s.cur].open.empty() || !s.fibers[s.cur].groups.empty())
    die("thread ended with cp.async copies never waited for");
  s.fibers[s.cur].state = DONE;
  ++s.events;
  yield_to_main();
  die("a finished thread was resumed");
}

// Runs one block of nthreads fibers to completion.
inline void run_block(int nthreads, const std::function<void()>& body) {
  Sched& s = sched();
  s.nthreads = nthreads;
  s.body = body;
  s.block_wait = 0;
  for (int& w : s.warp_wait) w = 0;
  s.fibers.resize(nthreads);
  for (int t = 0; t < nthreads; ++t) {
    Fiber& f = s.fibers[t];
    f.stack.resize(256 * 1024);
    MK_EMU_UNPOISON(f.stack.data(), f.stack.size());  // a previous block's frames left their red zones
    f.state = READY;
    f.open.clear();
    f.groups.clear();
    // the first switch pops six zero registers and returns into trampoline, whose frame then
    // sees rsp = 8 mod 16 as after a call (the slot above its entry: a null return address)
    uintptr_t top = (reinterpret_cast<uintptr_t>(f.stack.data()) + f.stack.size()) & ~uintptr_t(15);
    void** sp = reinterpret_cast<void**>(top);
    *--sp = nullptr;
    *--sp = reinterpret_cast<void*>(&trampoline);
    for (int r = 0; r < 6; ++r) *--sp = nullptr;
    f.sp = sp;
  }
  std::vector<int> order(nthreads);
  for (int t = 0; t < nthreads; ++t) order[t] = config().order == 1 ? nthreads - 1 - t : t;
  std::mt19937 rng(config().seed + s.block_idx.x);
  for (;;) {
    if (config().order == 2) std::shuffle(order.begin(), order.end(), rng);
    bool ran = false, all_done = true;
    for (int t : order) {
      Fiber& f = s.fibers[t];
      if (f.state == READY) {
        s.cur = t;
        void* main_fake = nullptr;
        MK_EMU_FIBER_LEAVE(&main_fake, f.stack.data(), f.stack.size());
        mk_emu_fiber_switch(&s.main_sp, f.sp);
        MK_EMU_FIBER_ARRIVE(main_fake, nullptr, nullptr);
        ran = true;
      }
    }
    for (auto& f : s.fibers) all_done &= f.state == DONE;
    if (all_done) break;
    if (!ran) {
      int wb = 0, ww = 0, dn = 0;
      for (auto& f : s.fibers) { wb += f.state == WAIT_BLOCK; ww += f.state == WAIT_WARP; dn += f.state == DONE; }
      fprintf(stderr, "deadlock: %d at __syncthreads, %d at warp barriers, %d done\n", wb, ww, dn);
      die("deadlock (barrier not reached by every thread)");
    }
  }
  s.cur = -1;
}

// The dynamic shared memory of the running block (config().smem_capacity bytes): defined by the
// test, which declares the kernel file's extern __shared__ array.
inline unsigned char* smem();
}  // namespace emu

#define threadIdx (uint3{unsigned(::emu::sched().cur), 0u, 0u})
inline uint3 blockIdx;
inline dim3 blockDim, gridDim;

inline void __syncthreads() { emu::block_barrier(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::warp_barrier(); }

template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
  static_assert(sizeof(T) <= 8, "");
  if (mask != 0xffffffffu) emu::die("partial shuffle masks are not emulated");
  emu::Sched& s = emu::sched();
  const int w = s.cur / 32, lane = s.cur % 32;
  std::memcpy(s.shfl[w][lane], &v, sizeof(T));
  emu::warp_barrier();
  T r;
  std::memcpy(&r, s.shfl[w][lane ^ lane_mask], sizeof(T));
  emu::warp_barrier();
  return r;
}

namespace emu {
// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}: a warp-collective barrier like a shuffle. Each
// lane deposits its registers, the 16 x 16 A and 16 x 8 B are rebuilt from the register layout of
// the PTX ISA (see kernels/cuda/mma.cuh), and each lane computes its four accumulators in F32.
inline void mma_m16n8k16(bool bf16, float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  static uint32_t regs_a[32][32][4], regs_b[32][32][2];
  // A and B in F32, converted once per warp and MMA by the first lane past the barrier (each lane
  // converting the 128 values it reads cost ~30 % of an attention emulator run); `fresh` is set by
  // every lane before the barrier and cleared by the converting lane. The closing barrier keeps the
  // next MMA's deposits from overtaking a lane that still reads these.
  static float fa[32][16][16], fb[32][16][8];
  static bool fresh[32];
  Sched& s = sched();
  const int w = s.cur / 32, lane = s.cur % 32;
  std::memcpy(regs_a[w][lane], a, sizeof a);
  regs_b[w][lane][0] = b0;
  regs_b[w][lane][1] = b1;
  fresh[w] = true;
  warp_barrier();
  if (fresh[w]) {
    auto half = [bf16](uint32_t word, int hi) {
      const uint16_t h = uint16_t(hi ? word >> 16 : word & 0xffffu);
      if (!bf16) return _cvtsh_ss(h);
      const uint32_t u = uint32_t(h) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    };
    // A(row, k) and B(k, col) read straight from the lane and register that hold them
    for (int row = 0; row < 16; ++row)
      for (int k = 0; k < 16; ++k)
        fa[w][row][k] = half(regs_a[w][4 * (row & 7) + ((k & 7) >> 1)][(row >> 3) + 2 * (k >> 3)], k & 1);
    for (int k = 0; k < 16; ++k)
      for (int col = 0; col < 8; ++col) fb[w][k][col] = half(regs_b[w][4 * col + ((k & 7) >> 1)][k >> 3], k & 1);
    fresh[w] = false;
  }
  const int g = lane >> 2, t = lane & 3;
  float out[4];
  for (int r = 0; r < 4; ++r) {
    const int row = g + 8 * (r >> 1), col = 2 * t + (r & 1);
    float acc = c[r];
    for (int k = 0; k < 16; ++k) acc = std::fma(fa[w][row][k], fb[w][k][col], acc);
    out[r] = acc;
  }
  warp_barrier();  // every lane has read the registers before any lane's next MMA overwrites them
  for (int r = 0; r < 4; ++r) {
    const float acc = out[r];
    c[r] = acc;
  }
}

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32: A(row, k) in lane 4 (row % 8) + k % 4, register
// row / 8 + 2 (k / 4); B(k, n) in lane 4 n + k % 4, register k / 4. The MMA reads 19 bits of each
// value (the low 13 bits of the F32 pattern are ignored).
inline void mma_m16n8k8_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  static uint32_t regs_a[32][32][4], regs_b[32][32][2];
  Sched& s = sched();
  const int w = s.cur / 32, lane = s.cur % 32;
  std::memcpy(regs_a[w][lane], a, sizeof a);
  regs_b[w][lane][0] = b0;
  regs_b[w][lane][1] = b1;
  warp_barrier();
  auto val = [](uint32_t u) {
    u &= ~0x1fffu;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  auto A = [&](int row, int k) { return val(regs_a[w][4 * (row & 7) + (k & 3)][(row >> 3) + 2 * (k >> 2)]); };
  auto B = [&](int k, int col) { return val(regs_b[w][4 * col + (k & 3)][k >> 2]); };
  const int g = lane >> 2, t = lane & 3;
  float out[4];
  for (int r = 0; r < 4; ++r) {
    const int row = g + 8 * (r >> 1), col = 2 * t + (r & 1);
    float acc = c[r];
    for (int k = 0; k < 8; ++k) acc = std::fma(A(row, k), B(k, col), acc);
    out[r] = acc;
  }
  warp_barrier();
  for (int r = 0; r < 4; ++r) c[r] = out[r];
}
}  // namespace emu

namespace emu {
inline bool in_smem(const void* p, size_t bytes) {
  const unsigned char* b = smem();
  const unsigned char* x = static_cast<const unsigned char*>(p);
  return x >= b && x + bytes <= b + config().smem_capacity;
}

// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{,.trans}.shared.b16 (kernels/cuda/copy_async.cuh): a
// warp-collective barrier like a shuffle. Lanes 8i .. 8i + 7 deposit the row addresses of matrix i
// (16-byte aligned, in shared memory); register i of lane 4g + t receives row g, elements 2t, 2t + 1
// of matrix i, or with .trans elements (2t, g) and (2t + 1, g) (low half first).
inline void ldmatrix(int count, bool trans, uint32_t* regs, const void* row_address) {
  static const unsigned char* rows[32][32];
  Sched& s = sched();
  const int w = s.cur / 32, lane = s.cur % 32;
  if (count != 1 && count != 2 && count != 4) die("ldmatrix: .x1, .x2 or .x4");
  rows[w][lane] = static_cast<const unsigned char*>(row_address);
  if (lane < 8 * count) {
    if (!in_smem(row_address, 16)) die("ldmatrix: row address outside the dynamic shared memory");
    if (reinterpret_cast<uintptr_t>(row_address) % 16 != 0) die("ldmatrix: row address not 16-byte aligned");
  }
  warp_barrier();
  const int g = lane >> 2, t = lane & 3;
  uint32_t out[4];
  for (int i = 0; i < count; ++i) {
    if (!trans) {
      std::memcpy(&out[i], rows[w][8 * i + g] + 4 * t, 4);
    } else {
      uint16_t lo, hi;
      std::memcpy(&lo, rows[w][8 * i + 2 * t] + 2 * g, 2);
      std::memcpy(&hi, rows[w][8 * i + 2 * t + 1] + 2 * g, 2);
      out[i] = uint32_t(lo) | (uint32_t(hi) << 16);
    }
  }
  warp_barrier();  // every lane has read before any lane writes shared memory again
  for (int i = 0; i < count; ++i) regs[i] = out[i];
}

// cp.async.cg.shared.global, 16 bytes: recorded now, performed (global read and shared write) only
// when the thread's cp.async.wait_group reaches its commit group, so a read of the tile before the
// wait (or before the barrier after it, by another thread: thread orders differ per run) sees the
// NaN poison or stale data.
inline void cp_async16(void* dst, const void* src, int src_bytes) {
  if (!in_smem(dst, 16)) die("cp.async: destination outside the dynamic shared memory");
  if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || (src_bytes > 0 && reinterpret_cast<uintptr_t>(src) % 16 != 0))
    die("cp.async: 16-byte copy not 16-byte aligned");
  if (src_bytes != 0 && src_bytes != 16) die("cp.async: source size 0 or 16 (the kernels use no other)");
  Sched& s = sched();
  s.fibers[s.cur].open.push_back(
      PendingCopy{static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), src_bytes});
}

inline void cp_async_commit() {
  Fiber& f = sched().fibers[sched().cur];
  f.groups.push_back(std::move(f.open));  // (an empty group is legal, as in PTX)
  f.open.clear();
}

inline void cp_async_wait(int newest_pending) {
  Fiber& f = sched().fibers[sched().cur];
  while (int(f.groups.size()) > newest_pending) {
    for (const PendingCopy& c : f.groups.front()) {
      std::memset(c.dst, 0, 16);
      if (c.src_bytes) std::memcpy(c.dst, c.src, size_t(c.src_bytes));
    }
    f.groups.erase(f.groups.begin());
  }
}
}  // namespace emu

inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int) {
  if (a == cudaDevAttrMaxSharedMemoryPerBlockOptin) *v = emu::config().optin;
  else if (a == cudaDevAttrMaxSharedMemoryPerMultiprocessor) *v = emu::config().per_sm;
  else if (a == cudaDevAttrComputeCapabilityMajor) *v = emu::config().arch_major;
  else if (a == cudaDevAttrComputeCapabilityMinor) *v = emu::config().arch_minor;
  else if (a == cudaDevAttrMultiProcessorCount) *v = emu::config().sms;
  else return cudaErrorInvalidValue;
  return cudaSuccess;
}
template <class F>
inline cudaError_t cudaFuncSetAttribute(F* f, cudaFuncAttribute a, int v) {
  if (a != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaErrorInvalidValue;
  if (v < 0 || v > emu::config().optin) return cudaErrorInvalidValue;
  std::lock_guard<std::mutex> lock(emu::launch_mutex());
  emu::config().max_dynamic[(const void*)f] = v;
  return cudaSuccess;
}
inline cudaError_t cudaGetLastError() { return cudaSuccess; }

// Host and device memory are one here: symbol copies are memcpy, streams are always synchronous,
// and an atomic add is a plain add (one fiber runs at a time). Used by kernels/cuda/graph.cu.
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
template <class T>
inline cudaError_t cudaMemcpyToSymbolAsync(T& symbol, const void* src, size_t count, size_t offset, cudaMemcpyKind,
                                           cudaStream_t) {
  if (offset + count > sizeof(T)) return cudaErrorInvalidValue;
  std::memcpy(reinterpret_cast<unsigned char*>(&symbol) + offset, src, count);
  return cudaSuccess;
}
template <class T>
inline cudaError_t cudaMemcpyFromSymbolAsync(void* dst, const T& symbol, size_t count, size_t offset, cudaMemcpyKind,
                                             cudaStream_t) {
  if (offset + count > sizeof(T)) return cudaErrorInvalidValue;
  std::memcpy(dst, reinterpret_cast<const unsigned char*>(&symbol) + offset, count);
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
template <class T>
inline T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
inline const char* cudaGetErrorString(cudaError_t) { return "emulated error"; }
// cos(pi x), sin(pi x) (the harnesses' normal samples), through double
inline float cospif(float x) { return float(std::cos(3.14159265358979323846 * double(x))); }
inline float sinpif(float x) { return float(std::sin(3.14159265358979323846 * double(x))); }

namespace emu {
// Whether n bytes at p are all the 0xFF poison: the canary check after every block, by memcmp in
// 4 KB pieces. A byte loop here (at the emulator's -O1) was two thirds of the time of the Java
// tests' large elementwise launches, which run thousands of 256-thread blocks with no shared
// memory, each followed by a 256 KB check (perf, tests/gpu-emu, 2026-12-05).
inline bool all_poison(const unsigned char* p, size_t n) {
  static const std::vector<unsigned char> ones(4096, 0xFF);
  for (; n >= ones.size(); p += ones.size(), n -= ones.size())
    if (std::memcmp(p, ones.data(), ones.size()) != 0) return false;
  return std::memcmp(p, ones.data(), n) == 0;
}
}  // namespace emu

template <class... ExpTypes, class... ActTypes>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* cfg, void (*kernel)(ExpTypes...), ActTypes&&... args) {
  std::lock_guard<std::mutex> lock(emu::launch_mutex());
  emu::Config& c = emu::config();
  const size_t bytes = cfg->dynamicSmemBytes;
  if (cfg->blockDim.x * cfg->blockDim.y * cfg->blockDim.z > 1024 || cfg->blockDim.y != 1 || cfg->blockDim.z != 1)
    return cudaErrorInvalidConfiguration;
  if (cfg->gridDim.x == 0 || cfg->gridDim.x > 2147483647u || cfg->gridDim.y != 1 || cfg->gridDim.z != 1)
    return cudaErrorInvalidConfiguration;
  if (bytes > 48 * 1024) {
    auto it = c.max_dynamic.find((const void*)kernel);
    if (it == c.max_dynamic.end() || size_t(it->second) < bytes) return cudaErrorInvalidValue;
  }
  if (bytes > size_t(c.optin)) return cudaErrorInvalidValue;
  if (bytes + 4096 > c.smem_capacity) emu::die("emulator shared memory too small");
  std::tuple<std::decay_t<ExpTypes>...> params(std::forward<ActTypes>(args)...);
  emu::Sched& s = emu::sched();
  gridDim = cfg->gridDim;
  blockDim = cfg->blockDim;
  ++c.launches;
  for (unsigned b = 0; b < cfg->gridDim.x; ++b) {
    s.block_idx = uint3{b, 0, 0};
    blockIdx = s.block_idx;
    unsigned char* sm = emu::smem();
    std::memset(sm, 0xFF, c.smem_capacity);  // NaN poison; the tail past `bytes` is the canary
    emu::run_block(int(cfg->blockDim.x), [&] {
      auto copy = params;  // kernel parameters are per-thread copies
      std::apply(kernel, copy);
    });
    if (!emu::all_poison(sm + bytes, c.smem_capacity - bytes)) emu::die("write past the dynamic shared memory of the launch");
    ++c.blocks;
  }
  return cudaSuccess;
}

// ---- device memory, events and properties: what a standalone program needs (benchmarks/gpu/*_harness.cu
// on the emulator, tests/cuda-emu/*_harness_emu.cpp). The emulated library of tests/gpu-emu defines
// MK_EMU_EXTERN_RUNTIME: there these calls are the fake libcudart.so.13's (one memory model with
// the JVM), whose model this follows. Device pointers are host pointers, all work is synchronous.
//  - every cudaMalloc is tracked, 256-byte aligned, filled with 0xFF bytes (NaN in F32, F64, BF16
//    and F16: a read of memory never written shows NaN, not the 0 of a fresh host page) and followed
//    by 4 KB of the same poison, checked at cudaFree (a write past the end stops the run); freed
//    memory is poisoned again;
//  - a copy or memset whose device side is not inside one live allocation (or whose host side is)
//    fails with cudaErrorInvalidValue, as does a cudaFree of anything cudaMalloc did not return;
//  - events hold the host's steady clock when recorded: cudaEventElapsedTime gives the host time of
//    the emulation, nothing a GPU would measure (cudaGetDeviceProperties' name says so).
#ifndef MK_EMU_EXTERN_RUNTIME
#include "emu_allocations.h"
namespace emu {
constexpr size_t kMallocGuard = 4096;
inline emu_alloc::Map& allocations() {  // base -> bytes asked for
  static emu_alloc::Map m;
  return m;
}
inline bool in_device(const void* p, size_t n) { return emu_alloc::inside(allocations(), p, n); }
inline bool copy_sides_ok(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  return emu_alloc::copy_sides_ok(allocations(), dst, src, n, int(kind));
}
struct Event {
  std::chrono::steady_clock::time_point at;
  bool recorded = false;
};
inline std::set<Event*>& events() {
  static std::set<Event*> s;
  return s;
}
}  // namespace emu

typedef struct CUevent_st* cudaEvent_t;
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem, sharedMemPerBlock, sharedMemPerBlockOptin, sharedMemPerMultiprocessor;
  int warpSize, maxThreadsPerBlock, major, minor, multiProcessorCount;
};

inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (!p || device != 0) return cudaErrorInvalidValue;
  std::memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "metakernels host emulator (times are host time, not a GPU's)");
  p->totalGlobalMem = size_t(80) << 30;
  p->sharedMemPerBlock = 48 * 1024;
  p->sharedMemPerBlockOptin = size_t(emu::config().optin);
  p->sharedMemPerMultiprocessor = size_t(emu::config().per_sm);
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->major = emu::config().arch_major;
  p->minor = emu::config().arch_minor;
  p->multiProcessorCount = 132;  // (an H100 SXM's; nothing here runs in parallel)
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

inline cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return cudaErrorInvalidValue;
  *ptr = nullptr;
  const size_t total = (bytes + emu::kMallocGuard + 255) / 256 * 256;
  void* p = std::aligned_alloc(256, total);
  if (!p) return cudaErrorMemoryAllocation;
  std::memset(p, 0xFF, total);
  MK_EMU_POISON(static_cast<unsigned char*>(p) + bytes, total - bytes);
  std::lock_guard<std::mutex> lock(emu::launch_mutex());
  emu::allocations()[reinterpret_cast<uintptr_t>(p)] = bytes;
  *ptr = p;
  return cudaSuccess;
}
template <class T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
inline cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  size_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(emu::launch_mutex());
    auto it = emu::allocations().find(reinterpret_cast<uintptr_t>(p));
    if (it == emu::allocations().end()) return cudaErrorInvalidValue;
    bytes = it->second;
    emu::allocations().erase(it);
  }
  const size_t total = (bytes + emu::kMallocGuard + 255) / 256 * 256;
  unsigned char* b = static_cast<unsigned char*>(p);
  MK_EMU_UNPOISON(b + bytes, total - bytes);
  if (!emu::all_poison(b + bytes, total - bytes)) emu::die("write past the end of a cudaMalloc allocation");
  std::memset(p, 0xFF, total);
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  if (n == 0) return cudaSuccess;
  if (!dst || !src) return cudaErrorInvalidValue;
  {
    std::lock_guard<std::mutex> lock(emu::launch_mutex());
    if (!emu::copy_sides_ok(dst, src, n, kind)) {
      fprintf(stderr, "EMU: cudaMemcpy(dst=%p, src=%p, %zu bytes, kind %d): a side is not where the kind says\n",
              dst, src, n, int(kind));
      return cudaErrorInvalidValue;
    }
  }
  std::memmove(dst, src, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind,
                                   cudaStream_t = nullptr) {
  return cudaMemcpy(dst, src, n, kind);
}
inline cudaError_t cudaMemset(void* p, int value, size_t n) {
  if (n == 0) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(emu::launch_mutex());
    if (!emu::in_device(p, n)) {
      fprintf(stderr, "EMU: cudaMemset(%p, %zu bytes): not inside one allocation\n", p, n);
      return cudaErrorInvalidValue;
    }
  }
  std::memset(p, value, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t = nullptr) {
  return cudaMemset(p, value, n);
}

inline cudaError_t cudaEventCreate(cudaEvent_t* e) {
  if (!e) return cudaErrorInvalidValue;
  emu::Event* ev = new emu::Event;
  std::lock_guard<std::mutex> lock(emu::launch_mutex());
  emu::events().insert(ev);
  *e = reinterpret_cast<cudaEvent_t>(ev);
  return cudaSuccess;
}
namespace emu {
inline Event* event_of(cudaEvent_t e) {  // (nullptr: not a live event)
  std::lock_guard<std::mutex> lock(launch_mutex());
  Event* ev = reinterpret_cast<Event*>(e);
  return events().count(ev) ? ev : nullptr;
}
}  // namespace emu
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  emu::Event* ev = emu::event_of(e);
  if (!ev) return cudaErrorInvalidResourceHandle;
  {
    std::lock_guard<std::mutex> lock(emu::launch_mutex());
    emu::events().erase(ev);
  }
  delete ev;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
  emu::Event* ev = emu::event_of(e);
  if (!ev) return cudaErrorInvalidResourceHandle;
  ev->at = std::chrono::steady_clock::now();
  ev->recorded = true;
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return emu::event_of(e) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  const emu::Event *a = emu::event_of(start), *b = emu::event_of(end);
  if (!ms || !a || !b) return cudaErrorInvalidResourceHandle;
  if (!a->recorded || !b->recorded) return cudaErrorInvalidResourceHandle;  // (as on a device)
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}
#endif  // MK_EMU_EXTERN_RUNTIME

#define __host__
#define __device__
#define __global__
#define __shared__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
