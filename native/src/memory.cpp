// Host and device memory: one caching design for both (issue 12, one owner per policy). Freed
// blocks wait in a free list per size class and are handed out again to the next request of the
// same class; a cap bounds what waits; emptying the cache returns it to the system (free) or the
// driver (cudaFree). An allocation that fails empties the cache and tries once more.
//   host:   blocks of 64 KiB and more are cached (smaller ones go straight back to malloc);
//           64-byte aligned, with a 64-byte header holding the size; cap 1 GiB by default.
//   device: every block is cached (cudaMalloc is slow and synchronising); no cap by default.
//           Blocks are reused in the order the default stream runs them: every launch goes on
//           the default stream today (streams per tensor would need events here).
// Size classes: 8 per power of two (at most 12.5 % slack), multiples of 64 bytes (host) or
// 512 bytes (device).
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

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
BlockCache g_host_cache(size_t(1) << 30);
std::atomic<int64_t> g_host_live{0};
std::atomic<int64_t> g_host_peak{0};  // high-water mark of g_host_live since the last reset

// ---- device ----
BlockCache g_device_cache(SIZE_MAX);
std::atomic<int64_t> g_device_live{0};
std::atomic<int64_t> g_device_peak{0};
std::mutex g_device_mu;
std::unordered_map<void*, size_t> g_device_blocks;  // live block -> its size class

void raise_peak(std::atomic<int64_t>& peak, int64_t now) {
  int64_t seen = peak.load();
  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
  }
}

void device_release_all(const KernelTable* t) {
  // cudaFree synchronises with the device; sync first so no kernel still reads a block
  t->runtime.synchronize(nullptr);
  g_device_cache.drain([t](void* b) { t->runtime.device_free(b); });
}

}  // namespace
}  // namespace native
}  // namespace mk

using namespace mk::native;
using mk::KernelTable;

extern "C" {

void* mk_host_alloc(int64_t nbytes) {
  if (nbytes < 0) {
    fail(MK_ERR_INVALID_ARGUMENT, "mk_host_alloc: negative size %lld", (long long)nbytes);
    return nullptr;
  }
  // One 64-byte header (holding the size) in front of a 64-byte aligned block whose size is
  // rounded up to 64: aligned_alloc requires it, and vector loads past the end stay inside.
  size_t total = size_t((nbytes + 63) / 64 * 64) + 64;
  char* base = nullptr;
  if (total >= kHostCacheMin) {
    total = size_class(total, 64);
    base = static_cast<char*>(g_host_cache.take(total));
  }
  if (!base) base = static_cast<char*>(std::aligned_alloc(64, total));
  if (!base) {
    // memory may sit in the cache: give it back and try once more
    mk_host_empty_cache();
    base = static_cast<char*>(std::aligned_alloc(64, total));
  }
  if (!base) {
    fail(MK_ERR_INTERNAL, "mk_host_alloc: out of host memory (%lld bytes)", (long long)nbytes);
    return nullptr;
  }
  *reinterpret_cast<int64_t*>(base) = int64_t(total);
  raise_peak(g_host_peak, g_host_live.fetch_add(int64_t(total)) + int64_t(total));
  return base + 64;
}

void mk_host_free(void* ptr) {
  if (!ptr) return;
  char* base = static_cast<char*>(ptr) - 64;
  const size_t total = size_t(*reinterpret_cast<int64_t*>(base));
  g_host_live.fetch_sub(int64_t(total));
  if (total >= kHostCacheMin && g_host_cache.put(base, total)) return;
  std::free(base);
}

int64_t mk_host_cached_bytes(void) { return int64_t(g_host_cache.cached()); }

void mk_host_empty_cache(void) {
  g_host_cache.drain([](void* b) { std::free(b); });
}

int mk_host_set_cache_limit(int64_t bytes) {
  if (bytes < 0) return fail(MK_ERR_INVALID_ARGUMENT, "mk_host_set_cache_limit: negative limit %lld", (long long)bytes);
  g_host_cache.set_limit(size_t(bytes));
  mk_host_empty_cache();
  return MK_OK;
}

int64_t mk_host_live_bytes(void) { return g_host_live.load(); }

void* mk_device_alloc(int64_t nbytes) {
  const char* op = "mk_device_alloc";
  if (nbytes < 0) {
    fail(MK_ERR_INVALID_ARGUMENT, "%s: negative size %lld", op, (long long)nbytes);
    return nullptr;
  }
  const KernelTable* t = kernels_for(op, MK_DEVICE_CUDA);
  if (!t) return nullptr;
  const size_t cls = size_class(size_t(nbytes), 512);
  void* p = g_device_cache.take(cls);
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
    std::lock_guard<std::mutex> lock(g_device_mu);
    g_device_blocks[p] = cls;
  }
  raise_peak(g_device_peak, g_device_live.fetch_add(int64_t(cls)) + int64_t(cls));
  return p;
}

void mk_device_free(void* ptr) {
  if (!ptr) return;
  size_t cls;
  {
    std::lock_guard<std::mutex> lock(g_device_mu);
    auto it = g_device_blocks.find(ptr);
    if (it == g_device_blocks.end()) {
      fail(MK_ERR_INVALID_ARGUMENT, "mk_device_free: %p is not a live block of mk_device_alloc", ptr);
      return;
    }
    cls = it->second;
    g_device_blocks.erase(it);
  }
  g_device_live.fetch_sub(int64_t(cls));
  if (g_device_cache.put(ptr, cls)) return;
  const KernelTable* t = kernels_for("mk_device_free", MK_DEVICE_CUDA);
  if (t) t->runtime.device_free(ptr);
}

int64_t mk_device_live_bytes(void) { return g_device_live.load(); }

int64_t mk_device_cached_bytes(void) { return int64_t(g_device_cache.cached()); }

void mk_device_empty_cache(void) {
  const KernelTable* t = kernels_for("mk_device_empty_cache", MK_DEVICE_CUDA);
  if (t) device_release_all(t);
}

int mk_device_set_cache_limit(int64_t bytes) {
  if (bytes < 0)
    return fail(MK_ERR_INVALID_ARGUMENT, "mk_device_set_cache_limit: negative limit %lld", (long long)bytes);
  g_device_cache.set_limit(size_t(bytes));
  mk_device_empty_cache();
  return MK_OK;
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
