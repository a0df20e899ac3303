// A stand-in for libcudart.so.13 for the emulated device (tests/gpu-emu/README.md): the CUDA runtime
// calls of the bytedeco CUDA presets (the Java side: CudaRuntime) and of kernels/cuda/table.cu (the
// emulated libmetakernels_cuda.so), on host memory. Device pointers are host pointers: the kernels
// run on the host (tests/cuda-emu/cuda_runtime.h), so one address space is the whole memory model.
//
// Why it checks more than a runtime would have to: a GPU run is the only other place these paths
// run, and there a wrong pointer is a silent corruption or a crash far from its cause. So:
//  - every device allocation is tracked; a copy whose device side is not inside a live allocation,
//    or whose host side is, fails with cudaErrorInvalidValue (a host pointer passed as a device one,
//    a copy past the end of a tensor's storage, a use after free);
//  - new allocations are filled with 0xFF bytes (NaN in F32, F64, BF16 and F16), as cudaMalloc
//    gives no zeroed memory: a kernel that reads memory it never wrote shows NaN instead of the 0 a
//    fresh host page would hold;
//  - freed memory is filled with 0xFF before it goes back to malloc, so a late read sees NaN;
//  - the device has a memory budget (MK_GPUEMU_MEM_BYTES, default 4 GiB, reported as
//    totalGlobalMem), past which cudaMalloc answers cudaErrorMemoryAllocation like a full device.
// Streams and events are handles; all work is synchronous (a launch has finished when it returns),
// so every query answers ready. Event timing is refused (cudaErrorNotSupported): an emulated device
// has no timing worth reporting, and a benchmark that tries must fail rather than print numbers.
// Built with the real CUDA 13 headers so that every signature and struct (cudaDeviceProp) is the
// toolkit's; linked with the version node libcudart.so.13, which the presets' JNI library requires.
#include <cuda_runtime_api.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "../cuda-emu/emu_allocations.h"  // (the map queries, shared with the emulator runtime)

namespace {
constexpr size_t kAlign = 256;  // cudaMalloc's alignment guarantee

std::mutex& mu() {
  static std::mutex m;
  return m;
}
emu_alloc::Map& live() {  // base -> bytes
  static emu_alloc::Map m;
  return m;
}
std::set<void*>& streams() {
  static std::set<void*> s;
  return s;
}
std::set<void*>& events() {
  static std::set<void*> s;
  return s;
}
size_t g_used = 0;
thread_local cudaError_t t_last = cudaSuccess;

size_t budget() {
  static const size_t b = [] {
    const char* e = getenv("MK_GPUEMU_MEM_BYTES");
    if (e && *e) return size_t(strtoull(e, nullptr, 10));
    return size_t(4) << 30;  // (host memory: the machines that run this have 16-32 GB, shared)
  }();
  return b;
}

cudaError_t fail(cudaError_t e) {
  t_last = e;
  return e;
}

// Whether [p, p + n) lies inside one live device allocation (caller holds mu()).
bool in_device(const void* p, size_t n) { return emu_alloc::inside(live(), p, n); }

bool verbose() {
  static const bool v = getenv("MK_GPUEMU_VERBOSE") != nullptr;
  return v;
}

cudaError_t copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, const char* who) {
  if (n == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue);
  {
    std::lock_guard<std::mutex> g(mu());
    const bool ok = emu_alloc::copy_sides_ok(live(), dst, src, n, int(kind));
    if (!ok) {
      fprintf(stderr, "[gpu-emu] %s(dst=%p, src=%p, %zu bytes, kind %d): a side is not where the kind says\n", who, dst,
              src, n, int(kind));
      return fail(cudaErrorInvalidValue);
    }
  }
  std::memmove(dst, src, n);
  return cudaSuccess;
}
}  // namespace

extern "C" {

// ---- device -------------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaDeviceReset(void) { return cudaSuccess; }

// An H100 SXM's limits, as the emulator (tests/cuda-emu/cuda_runtime.h, emu::Config) enforces them
// for the kernels: compute capability 9.0, 227 KB of opt-in shared memory per block.
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (!p) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "metakernels host emulator (sm_90)");
  p->totalGlobalMem = budget();
  p->sharedMemPerBlock = 48 * 1024;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->memPitch = size_t(2147483647);
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024; p->maxThreadsDim[1] = 1024; p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647; p->maxGridSize[1] = 65535; p->maxGridSize[2] = 65535;
  p->totalConstMem = 65536;
  p->major = 9;
  p->minor = 0;
  p->textureAlignment = 512;
  p->texturePitchAlignment = 32;
  p->multiProcessorCount = 132;
  p->canMapHostMemory = 1;
  p->concurrentKernels = 1;
  p->asyncEngineCount = 0;  // (copies are synchronous here)
  p->unifiedAddressing = 1;
  p->memoryBusWidth = 5120;
  p->l2CacheSize = 50 * 1024 * 1024;
  p->maxThreadsPerMultiProcessor = 2048;
  p->globalL1CacheSupported = 1;
  p->localL1CacheSupported = 1;
  p->sharedMemPerMultiprocessor = 233472;
  p->regsPerMultiprocessor = 65536;
  p->sharedMemPerBlockOptin = 232448;
  p->maxBlocksPerMultiProcessor = 32;
  p->reservedSharedMemPerBlock = 1024;
  p->hostNumaId = -1;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value || device != 0) return fail(cudaErrorInvalidValue);
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 232448; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = 233472; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; break;
    case cudaDevAttrMultiProcessorCount: *value = 132; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    default: return fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* v) {
  if (!v) return fail(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  if (!v) return fail(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

// ---- errors -------------------------------------------------------------------------------------
cudaError_t cudaGetLastError(void) {
  cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return t_last; }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorNotSupported: return "operation not supported (host emulator)";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "unknown error (host emulator)";
  }
}

// ---- memory -------------------------------------------------------------------------------------
cudaError_t cudaMalloc(void** ptr, size_t n) {
  if (!ptr) return fail(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (n == 0) return cudaSuccess;  // as the runtime: a null pointer, no error
  const size_t rounded = (n + kAlign - 1) / kAlign * kAlign;
  {
    std::lock_guard<std::mutex> g(mu());
    if (g_used + rounded > budget()) return fail(cudaErrorMemoryAllocation);
    g_used += rounded;
  }
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) {
    std::lock_guard<std::mutex> g(mu());
    g_used -= rounded;
    return fail(cudaErrorMemoryAllocation);
  }
  std::memset(p, 0xFF, rounded);
  {
    std::lock_guard<std::mutex> g(mu());
    live()[reinterpret_cast<uintptr_t>(p)] = n;  // exactly n: a copy past n is out of bounds
  }
  if (verbose()) {
    static size_t high = 0;
    std::lock_guard<std::mutex> g(mu());
    fprintf(stderr, "[gpu-emu] cudaMalloc(%zu) = %p, %zu bytes live in %zu blocks\n", n, p, g_used, live().size());
    high = std::max(high, g_used);
  }
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  size_t n;
  {
    std::lock_guard<std::mutex> g(mu());
    auto it = live().find(reinterpret_cast<uintptr_t>(p));
    if (it == live().end()) {
      fprintf(stderr, "[gpu-emu] cudaFree(%p): not a live device allocation\n", p);
      return fail(cudaErrorInvalidValue);
    }
    n = it->second;
    live().erase(it);
    g_used -= (n + kAlign - 1) / kAlign * kAlign;
  }
  std::memset(p, 0xFF, n);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  std::lock_guard<std::mutex> g(mu());
  if (free_bytes) *free_bytes = budget() - g_used;
  if (total) *total = budget();
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  return copy(dst, src, n, kind, "cudaMemcpy");
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t) {
  return copy(dst, src, n, kind, "cudaMemcpyAsync");
}
cudaError_t cudaMemset(void* p, int value, size_t n) {
  {
    std::lock_guard<std::mutex> g(mu());
    if (n && !in_device(p, n)) return fail(cudaErrorInvalidValue);
  }
  std::memset(p, value, n);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t) { return cudaMemset(p, value, n); }

// ---- streams and events (all work is synchronous) -----------------------------------------------
// A stream or event handle: a small block of its own, known while in its set.
static cudaError_t new_handle(std::set<void*>& set, void** out) {
  if (!out) return fail(cudaErrorInvalidValue);
  void* h = std::malloc(64);
  std::lock_guard<std::mutex> g(mu());
  set.insert(h);
  *out = h;
  return cudaSuccess;
}
static bool known_handle(std::set<void*>& set, void* h) {
  std::lock_guard<std::mutex> g(mu());
  return set.count(h) != 0;
}
static cudaError_t drop_handle(std::set<void*>& set, void* h) {
  {
    std::lock_guard<std::mutex> g(mu());
    if (!set.erase(h)) return fail(cudaErrorInvalidResourceHandle);
  }
  std::free(h);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) { return new_handle(streams(), reinterpret_cast<void**>(s)); }
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
static bool known_stream(cudaStream_t s) {  // the legacy (0) and per-thread default streams too
  return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread || known_handle(streams(), s);
}
cudaError_t cudaStreamDestroy(cudaStream_t s) { return drop_handle(streams(), s); }
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  return known_stream(s) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaStreamQuery(cudaStream_t s) {
  return known_stream(s) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) { return new_handle(events(), reinterpret_cast<void**>(e)); }
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
static bool known_event(cudaEvent_t e) { return known_handle(events(), e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { return drop_handle(events(), e); }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  return known_event(e) && known_stream(s) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return known_event(e) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle); }
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return known_event(e) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) {
  if (ms) *ms = 0.0f;
  return fail(cudaErrorNotSupported);  // no timing on an emulated device (see the top)
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int) {
  return known_event(e) && known_stream(s) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

}  // extern "C"
