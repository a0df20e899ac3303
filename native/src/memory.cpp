// Host and device memory: one caching design for both (issue 12, one owner per policy). Freed
// blocks wait in a free list per size class and are handed out again to the next request of the
// same class; a cap bounds what waits; emptying the cache returns it to the system (free) or the
// driver (cudaFree). An allocation that fails empties the cache and tries once more.
//   host:   blocks of 64 KiB and more are cached (smaller ones go straight back to malloc);
//           64-byte aligned, with a 64-byte header holding the size; cap 1 GiB by default.
//   device: every block is cached (cudaMalloc is slow and synchronising); no cap by default.
//           Stream-aware (the rules are in metakernels.h at mk_device_alloc_on): a block belongs
//           to the stream it was allocated for and remembers the other streams recorded as using
//           it; its free records an event on each of them (and on the owner once a second stream
//           exists). The owner takes it back at once, another stream only after every event of
//           the other streams has completed (queried, never waited for). This is the CUDA caching
//           allocator's record_stream rule, with the owner's own event added so that a block may
//           move between streams without a device-wide synchronisation.
// Size classes: 8 per power of two (at most 12.5 % slack), multiples of 64 bytes (host) or
// 512 bytes (device).
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
// The sanitized build (-DMK_SANITIZE=address,...; tests/sanitize/run.sh): what a block holds past
// its request, rounded up to 64 bytes (the size-class slack), and a whole block while it waits in a
// cache, are poisoned, so that a kernel reading past a tensor, or a use of a freed tensor whose block
// was cached, is an AddressSanitizer report; malloc's own red zones would see neither.
#include <sanitizer/asan_interface.h>
#define MK_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define MK_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define MK_POISON(p, n) ((void)(p), (void)(n))
#define MK_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#include "common.h"

namespace mk {
namespace native {
namespace {

size_t size_class(size_t n, size_t granule) {
  if (n < granule) n = granule;
  const int top = 63 - __builtin_clzll(n);
  size_t step = (size_t(1) << top) / 8;
  if (step < granule) step = granule;
  return (n + step - 1) / step * step;
}

class BlockCache {
 public:
  explicit BlockCache(size_t limit) : limit_(limit) {}

  void* take(size_t cls) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(cls);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* b = it->second.back();
    it->second.pop_back();
    cached_ -= cls;
    return b;
  }

  // false: over the cap, the caller releases the block itself
  bool put(void* b, size_t cls) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + cls > limit_) return false;
    free_[cls].push_back(b);
    cached_ += cls;
    return true;
  }

  // hands every cached block to `release` (outside the lock)
  template <class Release>
  void drain(Release release) {
    std::vector<void*> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& kv : free_) all.insert(all.end(), kv.second.begin(), kv.second.end());
      free_.clear();
      cached_ = 0;
    }
    for (void* b : all) release(b);
  }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

  void set_limit(size_t limit) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = limit;
  }

 private:
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> free blocks
  size_t cached_ = 0;
  size_t limit_;
};

// ---- host ----
constexpr size_t kHostCacheMin = size_t(64) << 10;
// With MK_HOST_HUGEPAGES=1 (read once), blocks of at least one huge page start on a 2 MiB boundary
// and are marked MADV_HUGEPAGE (Linux transparent huge pages in "madvise" mode), as PyTorch does
// with THP_MEM_ALLOC_ENABLE=1. Opt-in, measured on this project's 2-vCPU VM
// (benchmarks/results/cpu-2026-12-05-host-hugepages.md): sddmm at 64 features about 1.3x faster
// (fewer TLB misses on its random row gathers), spmm the same, but the GAT forward+backward
// 10-40 % slower (cause not established; a guess: every large block then starts at the same offset
// modulo the L2's set span, so arrays walked together conflict), hence not the default.
constexpr size_t kHugePage = size_t(2) << 20;
bool host_hugepages() {
  static const bool on = [] {
    const char* e = std::getenv("MK_HOST_HUGEPAGES");
    return e && std::strcmp(e, "1") == 0;
  }();
  return on;
}
char* large_alloc(size_t total) {
  if (total < kHugePage || !host_hugepages()) return static_cast<char*>(std::aligned_alloc(64, total));
  char* p = static_cast<char*>(std::aligned_alloc(kHugePage, total));
#ifdef MADV_HUGEPAGE
  if (p) (void)madvise(p, total, MADV_HUGEPAGE);  // advice only: a refusal changes nothing
#endif
  return p;
}
// The two caches are never destroyed (allocated once, left to the process's end): exit() runs
// this library's static destructors while other threads may still be inside it (a JVM's
// System.exit stops Java code, not native calls: the Cleaner thread freeing a tensor, a JMH
// worker under -f 0), and a destroyed map under their free would be a use after free.
BlockCache& g_host_cache = *new BlockCache(size_t(1) << 30);
std::atomic<int64_t> g_host_live{0};
std::atomic<int64_t> g_host_peak{0};  // high-water mark of g_host_live since the last reset

void raise_peak(std::atomic<int64_t>& peak, int64_t now) {
  int64_t seen = peak.load();
  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
  }
}

// ---- device ----
// An event recorded on `stream` when a block was freed.
struct FreeEvent {
  void* stream;
  void* event;
};

struct LiveBlock {
  size_t cls;
  void* stream;               // owner: the stream it was allocated for
  std::vector<void*> uses;    // other streams recorded as using it (mk_device_record_stream)
};

struct FreeBlock {
  void* ptr;
  void* stream;                    // owner when it was freed
  std::vector<FreeEvent> events;   // recorded at the free; each dropped once it completed
};

// The device cache and the stream / event registries, under one mutex. CUDA calls made under it
// are queries and records (microseconds), except the one-time synchronisation when a second
// stream appears.
class DeviceCache {
 public:
  std::mutex mu;
  std::unordered_map<void*, LiveBlock> live;               // live block -> what it is
  std::unordered_map<size_t, std::vector<FreeBlock>> free; // size class -> freed blocks
  size_t cached = 0;
  size_t limit = SIZE_MAX;
  std::vector<void*> idle_events;                          // recorded-and-completed, for reuse
  std::unordered_set<void*> streams;                       // mk_cuda_stream_create, not destroyed
  std::unordered_set<void*> user_events;                   // mk_cuda_event_create, not destroyed
  bool multi_stream = false;  // a stream other than the default one was ever used

  // An event for a free-time record (from the pool, else new); nullptr with the error set.
  void* take_event(const KernelTable* t, const char* op) {
    if (!idle_events.empty()) {
      void* e = idle_events.back();
      idle_events.pop_back();
      return e;
    }
    void* e = nullptr;
    const int st = t->runtime.event_create(&e);
    if (st != 0) {
      fail(MK_ERR_DEVICE, "%s: cudaEventCreate failed (CUDA error %d, %s)", op, st, t->runtime.error_string(st));
      return nullptr;
    }
    return e;
  }

  // Whether `stream` may take `b` now: every event recorded on another stream has completed.
  // Completed events go back to the pool, so a block is queried at most once per event.
  bool usable_by(const KernelTable* t, FreeBlock& b, void* stream) {
    for (size_t i = 0; i < b.events.size();) {
      FreeEvent& e = b.events[i];
      if (e.stream == stream) {
        ++i;
        continue;
      }
      if (t->runtime.event_query(e.event) != 0) return false;  // pending (or a device error)
      idle_events.push_back(e.event);
      e = b.events.back();
      b.events.pop_back();
    }
    return true;
  }

  // A cached block of class `cls` that `stream` may use now: its own first, else one whose
  // events have all completed. nullptr when none.
  void* take(const KernelTable* t, size_t cls, void* stream) {
    auto it = free.find(cls);
    if (it == free.end() || it->second.empty()) return nullptr;
    std::vector<FreeBlock>& list = it->second;
    ptrdiff_t pick = -1;
    for (ptrdiff_t i = ptrdiff_t(list.size()) - 1; i >= 0; --i) {
      if (!usable_by(t, list[size_t(i)], stream)) continue;
      if (list[size_t(i)].stream == stream) {
        pick = i;
        break;
      }
      if (pick < 0) pick = i;
    }
    if (pick < 0) return nullptr;
    FreeBlock b = std::move(list[size_t(pick)]);
    list[size_t(pick)] = std::move(list.back());
    list.pop_back();
    // what is left was recorded on `stream` itself: stream order covers it
    for (const FreeEvent& e : b.events) idle_events.push_back(e.event);
    cached -= cls;
    return b.ptr;
  }

  // Caches a freed block, recording its events; false when over the cap (the caller frees it).
  bool put(const KernelTable* t, void* ptr, const LiveBlock& blk) {
    if (cached + blk.cls > limit) return false;
    FreeBlock b{ptr, blk.stream, {}};
    if (blk.uses.empty() && !multi_stream) {  // one stream only: stream order is enough
      free[blk.cls].push_back(std::move(b));
      cached += blk.cls;
      return true;
    }
    std::vector<void*> on = blk.uses;
    if (multi_stream) on.push_back(blk.stream);
    for (void* s : on) {
      void* e = take_event(t, "mk_device_free");
      if (e && t->runtime.event_record(e, s) == 0) {
        b.events.push_back({s, e});
        continue;
      }
      // no event: wait for the device instead, so the block is free for every stream
      if (e) idle_events.push_back(e);
      t->runtime.device_synchronize();
      for (const FreeEvent& done : b.events) idle_events.push_back(done.event);
      b.events.clear();
      break;
    }
    free[blk.cls].push_back(std::move(b));
    cached += blk.cls;
    return true;
  }

  // Drops every completed event of the cached blocks; returns the bytes still pending.
  size_t settle(const KernelTable* t) {
    size_t pending = 0;
    for (auto& kv : free)
      for (FreeBlock& b : kv.second) {
        if (t) usable_by(t, b, reinterpret_cast<void*>(~uintptr_t(0)));  // a stream no event is on
        if (!b.events.empty()) pending += kv.first;
      }
    return pending;
  }

  // A stream the cache may hold: the default one or one of mk_cuda_stream_create. Sets the error.
  bool known_stream(const char* op, void* stream) {
    if (!stream || streams.count(stream)) return true;
    fail(MK_ERR_INVALID_ARGUMENT, "%s: stream %p was not created by mk_cuda_stream_create or was destroyed", op,
         stream);
    return false;
  }

  // The first stream other than the default one: blocks freed so far recorded no event, so
  // wait for the device once; from now on every free records its owner's event.
  void note_stream(const KernelTable* t, void* stream) {
    if (!stream || multi_stream) return;
    t->runtime.device_synchronize();
    multi_stream = true;
  }
};

DeviceCache& g_device = *new DeviceCache();  // never destroyed: see g_host_cache
std::atomic<int64_t> g_device_live{0};
std::atomic<int64_t> g_device_peak{0};  // high-water mark of g_device_live since the last reset

// Waits for the device, then returns every cached block and pooled event to the driver.
void device_release_all(const KernelTable* t) {
  std::vector<void*> blocks, events;
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    for (auto& kv : g_device.free)
      for (FreeBlock& b : kv.second) {
        MK_UNPOISON(b.ptr, kv.first);  // (the sanitized build; the key is the size class)
        blocks.push_back(b.ptr);
        for (const FreeEvent& e : b.events) events.push_back(e.event);
      }
    g_device.free.clear();
    g_device.cached = 0;
    events.insert(events.end(), g_device.idle_events.begin(), g_device.idle_events.end());
    g_device.idle_events.clear();
  }
  // cudaFree synchronises with the device; sync first (every stream) so no kernel still reads a block
  t->runtime.device_synchronize();
  for (void* e : events) t->runtime.event_destroy(e);
  for (void* b : blocks) t->runtime.device_free(b);
}

int cuda_status(const char* op, const KernelTable* t, const char* what, int st) {
  if (st == 0) return MK_OK;
  return fail(MK_ERR_DEVICE, "%s: %s failed (CUDA error %d, %s)", op, what, st, t->runtime.error_string(st));
}

}  // namespace
}  // namespace native
}  // namespace mk

using namespace mk::native;
using mk::KernelTable;

namespace {
// A block below the cache's minimum: malloc's thread cache, aligned by hand (the header keeps the
// pointer malloc returned), instead of aligned_alloc, whose memalign path splits and consolidates
// chunks on every call: 12 % of a MAML meta-gradient of a small MLP (many [32, 64] tensors) went
// to _int_memalign, malloc_consolidate and unlink_chunk (perf, 2026-12-04).
char* small_alloc(size_t total) {
  char* raw = static_cast<char*>(std::malloc(total + 64));
  if (!raw) return nullptr;
  char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + 63) & ~uintptr_t(63));
  reinterpret_cast<char**>(base)[1] = raw;  // after the size, inside the 64-byte header
  return base;
}
}  // namespace

extern "C" {

void* mk_host_alloc(int64_t nbytes) {
  if (nbytes < 0) {
    fail(MK_ERR_INVALID_ARGUMENT, "mk_host_alloc: negative size %lld", (long long)nbytes);
    return nullptr;
  }
  // One 64-byte header (holding the size) in front of a 64-byte aligned block whose size is
  // rounded up to 64: aligned_alloc requires it, and vector loads past the end stay inside.
  const size_t used = size_t((nbytes + 63) / 64 * 64) + 64;  // header and request
  size_t total = used;
  char* base = nullptr;
  if (total >= kHostCacheMin) {
    total = size_class(total, 64);
    base = static_cast<char*>(g_host_cache.take(total));
  }
  auto fresh = [&] {
    return total >= kHostCacheMin ? large_alloc(total) : small_alloc(total);
  };
  if (!base) base = fresh();
  if (!base) {
    // memory may sit in the cache: give it back and try once more
    mk_host_empty_cache();
    base = fresh();
  }
  if (!base) {
    fail(MK_ERR_INTERNAL, "mk_host_alloc: out of host memory (%lld bytes)", (long long)nbytes);
    return nullptr;
  }
  *reinterpret_cast<int64_t*>(base) = int64_t(total);
  raise_peak(g_host_peak, g_host_live.fetch_add(int64_t(total)) + int64_t(total));
  // (the sanitized build) a small block's malloc'd end lies up to 63 bytes past base + total
  char* end = total < kHostCacheMin ? reinterpret_cast<char**>(base)[1] + total + 64 : base + total;
  MK_UNPOISON(base, used);
  MK_POISON(base + used, size_t(end - (base + used)));
  return base + 64;
}

void mk_host_free(void* ptr) {
  if (!ptr) return;
  char* base = static_cast<char*>(ptr) - 64;
  const size_t total = size_t(*reinterpret_cast<int64_t*>(base));
  g_host_live.fetch_sub(int64_t(total));
  if (total < kHostCacheMin) {
    char* raw = reinterpret_cast<char**>(base)[1];
    MK_UNPOISON(raw, total + 64);
    std::free(raw);  // small_alloc's block
    return;
  }
  MK_POISON(base + 64, total - 64);  // the header stays readable: the cache is keyed by it
  if (g_host_cache.put(base, total)) return;
  MK_UNPOISON(base, total);
  std::free(base);
}

int64_t mk_host_cached_bytes(void) { return int64_t(g_host_cache.cached()); }

void mk_host_empty_cache(void) {
  g_host_cache.drain([](void* b) {
    MK_UNPOISON(b, size_t(*static_cast<int64_t*>(b)));
    std::free(b);
  });
}

int mk_host_set_cache_limit(int64_t bytes) {
  if (bytes < 0) return fail(MK_ERR_INVALID_ARGUMENT, "mk_host_set_cache_limit: negative limit %lld", (long long)bytes);
  g_host_cache.set_limit(size_t(bytes));
  mk_host_empty_cache();
  return MK_OK;
}

int64_t mk_host_live_bytes(void) { return g_host_live.load(); }

void* mk_device_alloc(int64_t nbytes) { return mk_device_alloc_on(nbytes, nullptr); }

void* mk_device_alloc_on(int64_t nbytes, void* stream) {
  const char* op = "mk_device_alloc";
  if (nbytes < 0) {
    fail(MK_ERR_INVALID_ARGUMENT, "%s: negative size %lld", op, (long long)nbytes);
    return nullptr;
  }
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return nullptr;
  const size_t cls = size_class(size_t(nbytes), 512);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    if (!g_device.known_stream(op, stream)) return nullptr;
    g_device.note_stream(t, stream);
    p = g_device.take(t, cls, stream);
  }
  if (!p) {
    int st = t->runtime.device_malloc(&p, int64_t(cls));
    if (st != 0) {
      // memory may sit in the cache: give it back and try once more
      device_release_all(t);
      p = nullptr;
      st = t->runtime.device_malloc(&p, int64_t(cls));
    }
    if (st != 0 || !p) {
      fail(MK_ERR_DEVICE, "%s: out of device memory (%lld bytes: CUDA error %d, %s)", op, (long long)nbytes, st,
           t->runtime.error_string(st));
      return nullptr;
    }
  }
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    g_device.live[p] = LiveBlock{cls, stream, {}};
  }
  raise_peak(g_device_peak, g_device_live.fetch_add(int64_t(cls)) + int64_t(cls));
  // The sanitized build runs without a GPU (the stub, or the emulator of tests/gpu-emu, whose device
  // memory is host memory): poisoned as the host blocks are. (Poisoning a real device address would
  // only mark shadow memory that no host code reads.)
  const size_t used = size_t((nbytes + 63) / 64 * 64);
  MK_UNPOISON(static_cast<char*>(p), used);
  MK_POISON(static_cast<char*>(p) + used, cls - used);
  return p;
}

void mk_device_free(void* ptr) {
  if (!ptr) return;
  const char* op = "mk_device_free";
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return;
  bool cached;
  bool sync_first;
  size_t cls = 0;
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    auto it = g_device.live.find(ptr);
    if (it == g_device.live.end()) {
      fail(MK_ERR_INVALID_ARGUMENT, "%s: %p is not a live block of mk_device_alloc", op, ptr);
      return;
    }
    const LiveBlock blk = std::move(it->second);
    g_device.live.erase(it);
    g_device_live.fetch_sub(int64_t(blk.cls));
    MK_POISON(static_cast<char*>(ptr), blk.cls);
    cls = blk.cls;
    cached = g_device.put(t, ptr, blk);
    sync_first = g_device.multi_stream;
  }
  if (cached) return;
  // over the cap: back to the driver, after every stream that may still use it
  if (sync_first) t->runtime.device_synchronize();
  MK_UNPOISON(static_cast<char*>(ptr), cls);
  t->runtime.device_free(ptr);
}

int64_t mk_device_live_bytes(void) { return g_device_live.load(); }

int64_t mk_device_cached_bytes(void) {
  std::lock_guard<std::mutex> lock(g_device.mu);
  return int64_t(g_device.cached);
}

void mk_device_empty_cache(void) {
  const KernelTable* t = kernels_for("mk_device_empty_cache", MK_DEVICE_CUDA);
  if (t) device_release_all(t);
}

int mk_device_set_cache_limit(int64_t bytes) {
  if (bytes < 0)
    return fail(MK_ERR_INVALID_ARGUMENT, "mk_device_set_cache_limit: negative limit %lld", (long long)bytes);
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    g_device.limit = size_t(bytes);
  }
  mk_device_empty_cache();
  return MK_OK;
}

int mk_device_record_stream(void* ptr, void* stream) {
  const char* op = "mk_device_record_stream";
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return MK_ERR_NO_DEVICE;
  std::lock_guard<std::mutex> lock(g_device.mu);
  auto it = g_device.live.find(ptr);
  if (it == g_device.live.end())
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %p is not a live block of mk_device_alloc", op, ptr);
  if (!g_device.known_stream(op, stream)) return MK_ERR_INVALID_ARGUMENT;
  LiveBlock& b = it->second;
  if (stream == b.stream) return MK_OK;
  for (void* s : b.uses)
    if (s == stream) return MK_OK;
  g_device.note_stream(t, stream);
  b.uses.push_back(stream);
  return MK_OK;
}

int mk_device_block_stream(void* ptr, void** stream) {
  const char* op = "mk_device_block_stream";
  if (!stream) return fail(MK_ERR_INVALID_ARGUMENT, "%s: stream is null", op);
  std::lock_guard<std::mutex> lock(g_device.mu);
  auto it = g_device.live.find(ptr);
  if (it == g_device.live.end())
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: %p is not a live block of mk_device_alloc", op, ptr);
  *stream = it->second.stream;
  return MK_OK;
}

int64_t mk_device_pending_bytes(void) {
  const KernelTable* t = mk_runtime_has_cuda() ? kernels_for("mk_device_pending_bytes", MK_DEVICE_CUDA) : nullptr;
  std::lock_guard<std::mutex> lock(g_device.mu);
  return int64_t(g_device.settle(t));
}

int mk_device_synchronize(void) {
  const char* op = "mk_device_synchronize";
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return MK_ERR_NO_DEVICE;
  MK_CHECK(cuda_status(op, t, "cudaDeviceSynchronize", t->runtime.device_synchronize()));
  std::lock_guard<std::mutex> lock(g_device.mu);
  g_device.settle(t);
  return MK_OK;
}

int mk_cuda_stream_create(void** stream) {
  const char* op = "mk_cuda_stream_create";
  if (!stream) return fail(MK_ERR_INVALID_ARGUMENT, "%s: stream is null", op);
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return MK_ERR_NO_DEVICE;
  void* s = nullptr;
  MK_CHECK(cuda_status(op, t, "cudaStreamCreateWithFlags", t->runtime.stream_create(&s)));
  std::lock_guard<std::mutex> lock(g_device.mu);
  g_device.note_stream(t, s);
  g_device.streams.insert(s);
  *stream = s;
  return MK_OK;
}

int mk_cuda_stream_destroy(void* stream) {
  const char* op = "mk_cuda_stream_destroy";
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return MK_ERR_NO_DEVICE;
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    if (!stream) return fail(MK_ERR_INVALID_ARGUMENT, "%s: the default stream cannot be destroyed", op);
    if (!g_device.known_stream(op, stream)) return MK_ERR_INVALID_ARGUMENT;
  }
  // its work first: blocks it used become plain default-stream blocks
  MK_CHECK(cuda_status(op, t, "cudaStreamSynchronize", t->runtime.synchronize(stream)));
  std::lock_guard<std::mutex> lock(g_device.mu);
  if (!g_device.streams.count(stream))  // destroyed by another thread meanwhile
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: stream %p was destroyed meanwhile", op, stream);
  for (auto& kv : g_device.live) {
    LiveBlock& b = kv.second;
    if (b.stream == stream) b.stream = nullptr;
    for (size_t i = 0; i < b.uses.size();)
      if (b.uses[i] == stream || b.uses[i] == b.stream) {
        b.uses[i] = b.uses.back();
        b.uses.pop_back();
      } else {
        ++i;
      }
  }
  for (auto& kv : g_device.free)
    for (FreeBlock& b : kv.second) {
      if (b.stream == stream) b.stream = nullptr;
      for (size_t i = 0; i < b.events.size();)
        if (b.events[i].stream == stream) {  // complete: the stream was synchronised
          g_device.idle_events.push_back(b.events[i].event);
          b.events[i] = b.events.back();
          b.events.pop_back();
        } else {
          ++i;
        }
    }
  g_device.streams.erase(stream);
  return cuda_status(op, t, "cudaStreamDestroy", t->runtime.stream_destroy(stream));
}

int mk_cuda_stream_synchronize(void* stream) {
  const char* op = "mk_cuda_stream_synchronize";
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return MK_ERR_NO_DEVICE;
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    if (!g_device.known_stream(op, stream)) return MK_ERR_INVALID_ARGUMENT;
  }
  return cuda_status(op, t, "cudaStreamSynchronize", t->runtime.synchronize(stream));
}

int mk_cuda_stream_query(void* stream, int* done) {
  const char* op = "mk_cuda_stream_query";
  if (!done) return fail(MK_ERR_INVALID_ARGUMENT, "%s: done is null", op);
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return MK_ERR_NO_DEVICE;
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    if (!g_device.known_stream(op, stream)) return MK_ERR_INVALID_ARGUMENT;
  }
  const int st = t->runtime.stream_query(stream);
  if (st == mk::kCudaNotReady) {
    *done = 0;
    return MK_OK;
  }
  MK_CHECK(cuda_status(op, t, "cudaStreamQuery", st));
  *done = 1;
  return MK_OK;
}

int mk_cuda_stream_wait_stream(void* waiter, void* waited) {
  const char* op = "mk_cuda_stream_wait_stream";
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return MK_ERR_NO_DEVICE;
  std::lock_guard<std::mutex> lock(g_device.mu);
  if (!g_device.known_stream(op, waiter) || !g_device.known_stream(op, waited)) return MK_ERR_INVALID_ARGUMENT;
  if (waiter == waited) return MK_OK;
  void* e = g_device.take_event(t, op);
  if (!e) return MK_ERR_DEVICE;
  // the wait reads the event as recorded now: the event may go back to the pool at once
  int st = t->runtime.event_record(e, waited);
  if (st == 0) st = t->runtime.stream_wait_event(waiter, e);
  g_device.idle_events.push_back(e);
  return cuda_status(op, t, "cudaEventRecord / cudaStreamWaitEvent", st);
}

int mk_cuda_event_create(void** event) {
  const char* op = "mk_cuda_event_create";
  if (!event) return fail(MK_ERR_INVALID_ARGUMENT, "%s: event is null", op);
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return MK_ERR_NO_DEVICE;
  void* e = nullptr;
  MK_CHECK(cuda_status(op, t, "cudaEventCreateWithFlags", t->runtime.event_create(&e)));
  std::lock_guard<std::mutex> lock(g_device.mu);
  g_device.user_events.insert(e);
  *event = e;
  return MK_OK;
}

namespace {
// The table into *t, with `event` checked to be a live event of mk_cuda_event_create.
int event_call(const char* op, void* event, const KernelTable** t) {
  *t = kernels_for(op, MK_DEVICE_CUDA);
  if (!*t) return MK_ERR_NO_DEVICE;
  std::lock_guard<std::mutex> lock(g_device.mu);
  if (!g_device.user_events.count(event))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: event %p was not created by mk_cuda_event_create or was destroyed", op,
                event);
  return MK_OK;
}
}  // namespace

int mk_cuda_event_destroy(void* event) {
  const char* op = "mk_cuda_event_destroy";
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return MK_ERR_NO_DEVICE;
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    if (!g_device.user_events.erase(event))
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: event %p was not created by mk_cuda_event_create or was destroyed", op,
                  event);
  }
  return cuda_status(op, t, "cudaEventDestroy", t->runtime.event_destroy(event));
}

int mk_cuda_event_record(void* event, void* stream) {
  const char* op = "mk_cuda_event_record";
  const KernelTable* t = nullptr;
  MK_CHECK(event_call(op, event, &t));
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    if (!g_device.known_stream(op, stream)) return MK_ERR_INVALID_ARGUMENT;
  }
  return cuda_status(op, t, "cudaEventRecord", t->runtime.event_record(event, stream));
}

int mk_cuda_event_query(void* event, int* done) {
  const char* op = "mk_cuda_event_query";
  if (!done) return fail(MK_ERR_INVALID_ARGUMENT, "%s: done is null", op);
  const KernelTable* t = nullptr;
  MK_CHECK(event_call(op, event, &t));
  const int st = t->runtime.event_query(event);
  if (st == mk::kCudaNotReady) {
    *done = 0;
    return MK_OK;
  }
  MK_CHECK(cuda_status(op, t, "cudaEventQuery", st));
  *done = 1;
  return MK_OK;
}

int mk_cuda_event_synchronize(void* event) {
  const char* op = "mk_cuda_event_synchronize";
  const KernelTable* t = nullptr;
  MK_CHECK(event_call(op, event, &t));
  return cuda_status(op, t, "cudaEventSynchronize", t->runtime.event_synchronize(event));
}

int mk_cuda_stream_wait_event(void* stream, void* event) {
  const char* op = "mk_cuda_stream_wait_event";
  const KernelTable* t = nullptr;
  MK_CHECK(event_call(op, event, &t));
  {
    std::lock_guard<std::mutex> lock(g_device.mu);
    if (!g_device.known_stream(op, stream)) return MK_ERR_INVALID_ARGUMENT;
  }
  return cuda_status(op, t, "cudaStreamWaitEvent", t->runtime.stream_wait_event(stream, event));
}

int64_t mk_cuda_live_streams(void) {
  std::lock_guard<std::mutex> lock(g_device.mu);
  return int64_t(g_device.streams.size());
}

int64_t mk_cuda_live_events(void) {
  std::lock_guard<std::mutex> lock(g_device.mu);
  return int64_t(g_device.user_events.size());
}

int64_t mk_host_peak_bytes(void) { return g_host_peak.load(); }

int64_t mk_host_reset_peak_bytes(void) {
  const int64_t live = g_host_live.load();
  g_host_peak.store(live);
  return live;
}

int64_t mk_device_peak_bytes(void) { return g_device_peak.load(); }

int64_t mk_device_reset_peak_bytes(void) {
  const int64_t live = g_device_live.load();
  g_device_peak.store(live);
  return live;
}

}  // extern "C"
