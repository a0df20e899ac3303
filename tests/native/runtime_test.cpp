// The native runtime's policies without a GPU (issue 12: one owner per policy, in native):
//   - the device caching allocator (native/src/memory.cpp) on a fake CUDA table whose
//     "device" memory is host memory: size classes, reuse, live/cached counts, the retry after a
//     failed cudaMalloc, the cap, refusing a foreign pointer;
//   - the host allocator's cache (same design);
//   - cuBLAS behind the C ABI (native/src/cublas.cpp) through tests/native/fake_cublas.cpp:
//     mk_dense_matmul_forward on CUDA against the CPU path for every stride layout the Java
//     matmul produces (contiguous, transposed, batched, broadcast batch, vectors), the fallback to
//     the built-in kernel for operands with no unit stride, the TF32 switch as the F32 math mode
//     and the call's stream.
// The fake table's kernels are the CPU twins, so mk_runtime_attach_cuda accepts it.
//   runtime_test PATH_TO_libfake_cublas.so
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "metakernels.h"
#include "mk/kernels.h"

namespace {
int g_failures = 0;
#define CHECK(cond, ...)                                          \
  do {                                                            \
    if (!(cond)) {                                                \
      ++g_failures;                                               \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                   \
      std::printf("\n");                                          \
    }                                                             \
  } while (0)

int g_malloc_failures_left = 0;  // the next N device mallocs fail
int g_mallocs = 0, g_frees = 0, g_syncs = 0;

int fake_device_count() { return 1; }
int fake_synchronize(void*) {
  ++g_syncs;
  return 0;
}
const char* fake_error_string(int) { return "fake CUDA error"; }
int fake_memcpy_d2h(void* dst, const void* src, int64_t n, void*) {
  std::memcpy(dst, src, size_t(n));
  return 0;
}
int fake_malloc(void** p, int64_t n) {
  if (g_malloc_failures_left > 0) {
    --g_malloc_failures_left;
    return 2;
  }  // cudaErrorMemoryAllocation
  ++g_mallocs;
  *p = std::malloc(size_t(n));
  return *p ? 0 : 2;
}
int fake_free(void* p) {
  ++g_frees;
  std::free(p);
  return 0;
}

mk::KernelTable fake_table() {
  mk::KernelTable t{};
  t.abi_version = MK_ABI_VERSION;
  t.table_bytes = int(sizeof(mk::KernelTable));
  t.runtime = mk::CudaRuntime{&fake_device_count, &fake_synchronize, &fake_error_string,
                              &fake_memcpy_d2h,   &fake_malloc,      &fake_free};
#define MK_KERNEL(ret, name, params) t.name = &mk::cpu::name;
#include "mk/kernels.inc"
#undef MK_KERNEL
  return t;
}

void device_allocator() {
  const int64_t live0 = mk_device_live_bytes();
  void* a = mk_device_alloc(1000);
  CHECK(a != nullptr, "%s", mk_last_error());
  CHECK(mk_device_live_bytes() - live0 == 1024, "1000 bytes take the 1024-byte class, live %lld",
        (long long)(mk_device_live_bytes() - live0));
  mk_device_free(a);
  CHECK(mk_device_live_bytes() == live0, "live after free");
  CHECK(mk_device_cached_bytes() == 1024, "cached %lld", (long long)mk_device_cached_bytes());
  const int mallocs = g_mallocs;
  void* b = mk_device_alloc(900);  // same class: the cached block again, no cudaMalloc
  CHECK(b == a && g_mallocs == mallocs, "reuse (%p vs %p, mallocs %d -> %d)", a, b, mallocs, g_mallocs);
  CHECK(mk_device_cached_bytes() == 0, "cache emptied by the reuse");
  void* c = mk_device_alloc(5000);  // another class: a new block
  CHECK(c != nullptr && c != b && g_mallocs == mallocs + 1, "new class");
  mk_device_free(b);
  mk_device_free(c);
  // 8 classes per power of two above 4 KiB: 5000 -> 5120
  CHECK(mk_device_cached_bytes() == 1024 + 5120, "cached %lld", (long long)mk_device_cached_bytes());

  // a failed cudaMalloc empties the cache (after a sync) and tries once more
  const int frees = g_frees, syncs = g_syncs;
  g_malloc_failures_left = 1;
  void* d = mk_device_alloc(1 << 20);
  CHECK(d != nullptr, "retry after emptying: %s", mk_last_error());
  CHECK(g_frees == frees + 2 && g_syncs > syncs && mk_device_cached_bytes() == 0,
        "the two cached blocks went back to the driver (frees %d -> %d)", frees, g_frees);
  // failing twice: NULL and a message naming the size
  g_malloc_failures_left = 2;
  void* e = mk_device_alloc(3 << 20);
  CHECK(e == nullptr && std::strstr(mk_last_error(), "out of device memory (3145728 bytes"), "%s", mk_last_error());
  g_malloc_failures_left = 0;
  // a pointer the allocator never gave out is refused, not cached
  int x = 0;
  mk_device_free(&x);
  CHECK(std::strstr(mk_last_error(), "is not a live block"), "%s", mk_last_error());
  CHECK(mk_device_alloc(-1) == nullptr && std::strstr(mk_last_error(), "negative size"), "%s", mk_last_error());
  // a cap of 0: frees go straight to the driver
  CHECK(mk_device_set_cache_limit(0) == MK_OK, "limit");
  const int frees2 = g_frees;
  mk_device_free(d);
  CHECK(g_frees == frees2 + 1 && mk_device_cached_bytes() == 0, "uncached free");
  CHECK(mk_device_live_bytes() == live0, "nothing leaked: live %lld", (long long)mk_device_live_bytes());
  mk_device_set_cache_limit(INT64_MAX);
}

void host_allocator() {
  mk_host_empty_cache();
  const int64_t live0 = mk_host_live_bytes();
  void* a = mk_host_alloc(100000);
  CHECK(a && (reinterpret_cast<uintptr_t>(a) % 64) == 0, "64-byte aligned");
  const int64_t held = mk_host_live_bytes() - live0;
  CHECK(held >= 100000 + 64 && held <= (100000 + 64) * 9 / 8 + 64, "class of 100000 + header: %lld", (long long)held);
  mk_host_free(a);
  CHECK(mk_host_cached_bytes() == held, "cached %lld", (long long)mk_host_cached_bytes());
  void* b = mk_host_alloc(99000);  // same class
  CHECK(b == a, "reused");
  mk_host_free(b);
  void* small = mk_host_alloc(100);  // below 64 KiB: never cached
  mk_host_free(small);
  CHECK(mk_host_cached_bytes() == held, "small blocks are not cached");
  mk_host_empty_cache();
  CHECK(mk_host_cached_bytes() == 0 && mk_host_live_bytes() == live0, "empty");
  // the high-water mark: a reset starts it at what is live; it keeps the largest total seen
  CHECK(mk_host_reset_peak_bytes() == live0 && mk_host_peak_bytes() == live0, "peak reset to live");
  void* p1 = mk_host_alloc(200000);
  const int64_t top = mk_host_live_bytes();
  mk_host_free(p1);
  void* p2 = mk_host_alloc(1000);
  CHECK(mk_host_peak_bytes() == top, "peak %lld, expected %lld", (long long)mk_host_peak_bytes(), (long long)top);
  mk_host_free(p2);
  mk_host_empty_cache();
}

// One matmul layout: A [batch, m, k] and B [batch, k, n] with the given strides (in elements,
// into buffers big enough), C contiguous per matrix.
struct Layout {
  const char* name;
  int64_t batch, m, n, k, a_bs, a_rs, a_cs, b_bs, b_rs, b_cs;
  bool cublas;  // whether cuBLAS can take it (a unit stride on one side of each operand)
};

template <class T>
void matmul_layouts(int dtype, int (*calls)(), void* lib) {
  auto math_at_last_call = reinterpret_cast<int (*)()>(dlsym(lib, "fake_cublas_math_at_last_call"));
  auto stream_at_last_call = reinterpret_cast<void* (*)()>(dlsym(lib, "fake_cublas_stream_at_last_call"));
  const Layout layouts[] = {
      {"contiguous", 1, 5, 7, 3, 0, 3, 1, 0, 7, 1, true},
      {"A transposed", 1, 5, 7, 3, 0, 1, 5, 0, 7, 1, true},
      {"B transposed", 1, 5, 7, 3, 0, 3, 1, 0, 1, 3, true},
      {"both transposed", 1, 4, 6, 5, 0, 1, 4, 0, 1, 5, true},
      {"batched", 3, 4, 6, 5, 20, 5, 1, 30, 6, 1, true},
      {"broadcast A over the batch", 3, 4, 6, 5, 0, 5, 1, 30, 6, 1, true},
      {"row-padded A (lda > k)", 2, 4, 6, 5, 40, 8, 1, 30, 6, 1, true},
      {"vector x matrix (m = 1)", 2, 1, 6, 5, 5, 5, 1, 30, 6, 1, true},
      {"matrix x vector (n = 1)", 2, 4, 1, 5, 20, 5, 1, 5, 1, 1, true},
      {"no unit stride in A", 1, 4, 6, 5, 0, 10, 2, 0, 6, 1, false},
  };
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  for (const Layout& L : layouts) {
    const size_t asz = size_t(std::max<int64_t>(1, L.batch) * 64 + 64), bsz = asz;
    std::vector<T> a(asz), b(bsz), c_cpu(size_t(L.batch * L.m * L.n)), c_cuda(c_cpu.size(), T(-7));
    for (auto& v : a) v = T(u(rng));
    for (auto& v : b) v = T(u(rng));
    int st = mk_dense_matmul_forward(MK_DEVICE_CPU, dtype, L.batch, L.m, L.n, L.k, a.data(), L.a_bs, L.a_rs, L.a_cs,
                                     b.data(), L.b_bs, L.b_rs, L.b_cs, c_cpu.data(), L.m * L.n, nullptr);
    CHECK(st == MK_OK, "%s cpu: %s", L.name, mk_last_error());
    const int before = calls();
    void* stream = reinterpret_cast<void*>(uintptr_t(0x5000));
    st = mk_dense_matmul_forward(MK_DEVICE_CUDA, dtype, L.batch, L.m, L.n, L.k, a.data(), L.a_bs, L.a_rs, L.a_cs,
                                 b.data(), L.b_bs, L.b_rs, L.b_cs, c_cuda.data(), L.m * L.n, stream);
    CHECK(st == MK_OK, "%s cuda: %s", L.name, mk_last_error());
    CHECK((calls() == before + 1) == L.cublas, "%s: cuBLAS %s", L.name, L.cublas ? "not called" : "called");
    if (L.cublas) CHECK(stream_at_last_call() == stream, "%s: the call's stream", L.name);
    double worst = 0;
    for (size_t i = 0; i < c_cpu.size(); ++i) worst = std::max(worst, std::fabs(double(c_cpu[i]) - double(c_cuda[i])));
    CHECK(worst <= (sizeof(T) == 4 ? 1e-5 : 1e-13), "%s (%s): max |cuda - cpu| = %g", L.name,
          sizeof(T) == 4 ? "F32" : "F64", worst);
  }
  // the TF32 switch is the F32 math mode of the next call (TF32_TENSOR_OP_MATH = 3)
  T a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4];
  for (int allow : {1, 0}) {
    mk_runtime_set_allow_tf32(allow);
    CHECK(mk_dense_matmul_forward(MK_DEVICE_CUDA, dtype, 1, 2, 2, 3, a, 0, 3, 1, b, 0, 2, 1, c, 4, nullptr) == MK_OK,
          "%s", mk_last_error());
    const int want = dtype == MK_F32 && allow ? 3 : 0;
    if (dtype == MK_F32) CHECK(math_at_last_call() == want, "tf32 %d: math mode %d", allow, math_at_last_call());
  }
}

void cublas_behind_the_abi(const char* fake) {
  CHECK(mk_runtime_has_cublas() == 0, "not attached yet");
  CHECK(mk_runtime_attach_cublas("libno_such_cublas.so.99") != MK_OK &&
            std::strstr(mk_last_error(), "cannot open libno_such_cublas.so.99"),
        "%s", mk_last_error());
  CHECK(mk_runtime_attach_cublas(fake) == MK_OK, "%s", mk_last_error());
  CHECK(mk_runtime_has_cublas() == 1, "attached");
  void* lib = dlopen(fake, RTLD_NOW | RTLD_NOLOAD);
  CHECK(lib != nullptr, "the fake is loaded");
  if (!lib) return;
  auto calls = reinterpret_cast<int (*)()>(dlsym(lib, "fake_cublas_calls"));
  matmul_layouts<float>(MK_F32, calls, lib);
  matmul_layouts<double>(MK_F64, calls, lib);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("usage: runtime_test PATH_TO_libfake_cublas.so\n");
    return 2;
  }
  static const mk::KernelTable table = fake_table();
  if (mk_runtime_attach_cuda(&table) != MK_OK) {
    std::printf("FAIL: the fake table was refused: %s\n", mk_last_error());
    return 1;
  }
  device_allocator();
  host_allocator();
  cublas_behind_the_abi(argv[1]);
  if (g_failures) {
    std::printf("%d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("runtime_test: device and host allocators, cuBLAS behind the ABI: all checks passed\n");
  return 0;
}
