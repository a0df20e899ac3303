// Runtime state of the native layer: errors, CPU ISA choice, threads, the BLAS and CUDA
// attachments (memory is in memory.cpp).
#include <dlfcn.h>
#include <omp.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common.h"
#include "blas.h"

namespace mk {
namespace native {

namespace {
thread_local std::string g_last_error;
std::atomic<const KernelTable*> g_cuda{nullptr};
std::atomic<int> g_isa{0};
std::atomic<int> g_allow_tf32{0};

// Threads for the CPU kernels, 0 = the OpenMP default. OpenMP keeps its thread count per calling
// thread (omp_set_num_threads sets only the caller's ICV), so the count lives here and every
// CPU entry point copies it into its own thread's ICV (apply_cpu_threads).
std::atomic<int> g_threads{0};
// The OpenMP default (OMP_NUM_THREADS or the core count), read when the library loads.
const int g_default_threads = omp_get_max_threads();

// libmetakernels_ompwait (native/src/omp_wait.cpp) set OMP_WAIT_POLICY=passive for our OpenMP
// runtime, which has read it by now (it is initialised before this library): take it back, so
// that a runtime loaded later (libtorch's own libgomp) sees the user's environment.
const bool g_omp_wait_restored = [] {
  if (!getenv("MK_OMP_WAIT_SET")) return false;
  unsetenv("OMP_WAIT_POLICY");
  unsetenv("MK_OMP_WAIT_SET");
  return true;
}();

const KernelTable* cpu_table() {
  static const KernelTable table = [] {
    KernelTable t{};
    t.abi_version = MK_ABI_VERSION;
    t.table_bytes = int(sizeof(KernelTable));
#define MK_KERNEL(ret, name, params) t.name = &cpu::name;
#include "mk/kernels.inc"
#undef MK_KERNEL
    return t;
  }();
  return &table;
}

int detect_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    return MK_CPU_ISA_AVX512;
  return MK_CPU_ISA_AVX2;
}
}  // namespace

int fail(int status, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_last_error = buf;
  return status;
}

void clear_error() { g_last_error.clear(); }

const char* last_error() { return g_last_error.c_str(); }

int cpu_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : g_default_threads;
}

void apply_cpu_threads() {
  const int n = cpu_threads();
  if (omp_get_max_threads() != n) omp_set_num_threads(n);
}

const KernelTable* kernels_for(const char* op, int device) {
  if (device == MK_DEVICE_CPU) {
    apply_cpu_threads();
    return cpu_table();
  }
  if (device == MK_DEVICE_CUDA) {
    const KernelTable* t = g_cuda.load();
    if (!t) fail(MK_ERR_NO_DEVICE, "%s: the CUDA kernels are not attached (no GPU or no CUDA library)", op);
    return t;
  }
  fail(MK_ERR_INVALID_ARGUMENT, "%s: unknown device %d (expected 0 = CPU or 1 = CUDA)", op, device);
  return nullptr;
}

const KernelTable* attached_cuda() { return g_cuda.load(); }

int kernel_status(const char* op, int device, int code) {
  if (code == 0) return MK_OK;
  if (code == KERNEL_UNSUPPORTED) return fail(MK_ERR_UNSUPPORTED, "%s: not supported by the kernel", op);
  if (device == MK_DEVICE_CUDA) {
    const KernelTable* t = g_cuda.load();
    const char* msg = t && t->runtime.error_string ? t->runtime.error_string(code) : "unknown";
    return fail(MK_ERR_DEVICE, "%s: CUDA error %d (%s)", op, code, msg);
  }
  return fail(MK_ERR_INTERNAL, "%s: kernel returned %d", op, code);
}

int cpu_isa() {
  int isa = g_isa.load();
  if (isa == 0) {
    isa = detect_isa();
    g_isa.store(isa);
    cpu::set_isa_level(isa);
  }
  return isa;
}

namespace {
// The kernels' ISA level is known before the first call.
[[maybe_unused]] const int g_isa_init = cpu_isa();
}  // namespace

}  // namespace native
}  // namespace mk

using namespace mk::native;

extern "C" {

int mk_abi_version(void) { return MK_ABI_VERSION; }

const char* mk_last_error(void) { return last_error(); }

int mk_runtime_cpu_isa(void) { return cpu_isa(); }

int mk_runtime_set_cpu_isa(int isa) {
  if (isa != MK_CPU_ISA_AUTO && isa != MK_CPU_ISA_AVX2 && isa != MK_CPU_ISA_AVX512)
    return fail(MK_ERR_INVALID_ARGUMENT, "mk_runtime_set_cpu_isa: isa must be 0, 2 or 3, got %d", isa);
  if (isa == MK_CPU_ISA_AVX512 && detect_isa() < MK_CPU_ISA_AVX512)
    return fail(MK_ERR_UNSUPPORTED, "mk_runtime_set_cpu_isa: this CPU has no AVX-512");
  const int level = isa == MK_CPU_ISA_AUTO ? detect_isa() : isa;
  g_isa.store(level);
  mk::cpu::set_isa_level(level);
  return MK_OK;
}

int mk_runtime_num_threads(void) { return cpu_threads(); }

int mk_runtime_set_num_threads(int n) {
  if (n < 0)
    return fail(MK_ERR_INVALID_ARGUMENT, "mk_runtime_set_num_threads: n must be >= 1 (or 0 for the default), got %d", n);
  g_threads.store(n, std::memory_order_relaxed);
  apply_cpu_threads();
  return MK_OK;
}

int mk_runtime_set_allow_tf32(int allow) {
  g_allow_tf32.store(allow ? 1 : 0, std::memory_order_relaxed);
  return MK_OK;
}

int mk_runtime_allow_tf32(void) { return g_allow_tf32.load(std::memory_order_relaxed); }

int mk_runtime_attach_blas(const char* soname) {
  if (!soname) return fail(MK_ERR_INVALID_ARGUMENT, "mk_runtime_attach_blas: soname is null");
  return attach_blas(soname);
}

int mk_runtime_has_blas(void) { return blas_attached() ? 1 : 0; }

const char* mk_runtime_blas_info(void) { return blas_info(); }

int mk_runtime_attach_cuda(const void* table) {
  if (!table) return fail(MK_ERR_INVALID_ARGUMENT, "mk_runtime_attach_cuda: table is null");
  auto* t = static_cast<const mk::KernelTable*>(table);
  if (t->abi_version != MK_ABI_VERSION || t->table_bytes != int(sizeof(mk::KernelTable)))
    return fail(MK_ERR_UNSUPPORTED, "mk_runtime_attach_cuda: kernel ABI %d with a %d-byte table, expected %d with %d bytes "
                "(the CUDA library comes from another build)", t->abi_version, t->table_bytes, MK_ABI_VERSION,
                int(sizeof(mk::KernelTable)));
  // every entry must be filled: a missing kernel would be a null call later
#define MK_KERNEL(ret, name, params) \
  if (!t->name) return fail(MK_ERR_UNSUPPORTED, "mk_runtime_attach_cuda: the CUDA library has no kernel '" #name "'");
#include "mk/kernels.inc"
#undef MK_KERNEL
  if (!t->runtime.device_count || !t->runtime.synchronize || !t->runtime.error_string || !t->runtime.memcpy_d2h ||
      !t->runtime.device_malloc || !t->runtime.device_free || !t->runtime.device_synchronize ||
      !t->runtime.stream_create || !t->runtime.stream_destroy || !t->runtime.stream_query ||
      !t->runtime.event_create || !t->runtime.event_destroy || !t->runtime.event_record ||
      !t->runtime.event_query || !t->runtime.event_synchronize || !t->runtime.stream_wait_event)
    return fail(MK_ERR_UNSUPPORTED, "mk_runtime_attach_cuda: runtime entries missing");
  g_cuda.store(t);
  if (int e = attention_tc_push(t)) return e;
  if (int e = attention_simt_push(t)) return e;
  return linear_attention_push(t);
}

int mk_runtime_has_cuda(void) { return g_cuda.load() ? 1 : 0; }

int mk_runtime_cuda_device_count(void) {
  const mk::KernelTable* t = g_cuda.load();
  return t ? t->runtime.device_count() : 0;
}

int mk_runtime_cuda_synchronize(void* stream) {
  const mk::KernelTable* t = kernels_for("mk_runtime_cuda_synchronize", MK_DEVICE_CUDA);
  if (!t) return MK_ERR_NO_DEVICE;
  return kernel_status("mk_runtime_cuda_synchronize", MK_DEVICE_CUDA, t->runtime.synchronize(stream));
}

int mk_runtime_noop(int device, void* stream) {
  const mk::KernelTable* t = kernels_for("mk_runtime_noop", device);
  if (!t) return MK_ERR_NO_DEVICE;
  return kernel_status("mk_runtime_noop", device, t->noop(stream));
}

}  // extern "C"
