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
//   - streams and events (native/src/memory.cpp): the fake runtime's streams count the work
//     "launched" on them and "finished" by the test, events complete when their stream has
//     finished what was launched before the record; the stream-aware cache hands a freed block
//     at once to its own stream, to another only after the free-time events completed; empty
//     cache and synchronize with pending events; stream and event lifetime (destroy with pending
//     work waits for it, a second destroy is refused); a seeded random walk over four streams
//     checking that no block ever moves to a stream while another's work on it is pending.
// The fake table's kernels are the CPU twins, so mk_runtime_attach_cuda accepts it.
//   - the CPU graph kernels' scratch (native/src/graph.cpp): the kernels allocate nothing; the GAT
//     backward and the indexed-weight spmm take theirs from the host caching allocator, so
//     mk_host_peak_bytes grows by at least what a hub row needs, and live bytes return to the
//     start after the call.
//   runtime_test PATH_TO_libfake_cublas.so
#include <dlfcn.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "metakernels.h"
#include "mk/graph_segment.h"
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

// ---- fake streams and events ----
struct FakeStream {
  int launched = 0, finished = 0;
  bool destroyed = false;
  int pending_at_destroy = -1;  // launched - finished when it was destroyed
};
struct FakeEvent {
  FakeStream* stream = nullptr;
  int at = 0;
  bool destroyed = false;
};
FakeStream g_default_stream;
std::vector<FakeStream*> g_fake_streams;  // every stream ever created (never freed: handles stay unique)
int g_device_syncs = 0, g_event_records = 0, g_events_created = 0, g_events_destroyed = 0;
void* g_last_waiter = nullptr;
FakeEvent* g_last_waited = nullptr;

FakeStream* fs(void* s) { return s ? static_cast<FakeStream*>(s) : &g_default_stream; }
void launch(void* s) { ++fs(s)->launched; }
void finish(void* s) { fs(s)->finished = fs(s)->launched; }

int fake_device_synchronize() {
  ++g_syncs;
  ++g_device_syncs;
  finish(nullptr);
  for (FakeStream* s : g_fake_streams) s->finished = s->launched;
  return 0;
}
int fake_stream_create(void** s) {
  g_fake_streams.push_back(new FakeStream);
  *s = g_fake_streams.back();
  return 0;
}
int fake_stream_destroy(void* s) {
  FakeStream* f = fs(s);
  if (f->destroyed) return 400;  // cudaErrorInvalidResourceHandle
  f->destroyed = true;
  f->pending_at_destroy = f->launched - f->finished;
  return 0;
}
int fake_stream_query(void* s) { return fs(s)->finished >= fs(s)->launched ? 0 : mk::kCudaNotReady; }
int fake_event_create(void** e) {
  ++g_events_created;
  *e = new FakeEvent;
  return 0;
}
int fake_event_destroy(void* e) {
  ++g_events_destroyed;
  static_cast<FakeEvent*>(e)->destroyed = true;
  return 0;
}
int fake_event_record(void* e, void* s) {
  ++g_event_records;
  auto* ev = static_cast<FakeEvent*>(e);
  ev->stream = fs(s);
  ev->at = fs(s)->launched;
  return 0;
}
int fake_event_query(void* e) {
  auto* ev = static_cast<FakeEvent*>(e);
  return !ev->stream || ev->stream->finished >= ev->at ? 0 : mk::kCudaNotReady;
}
int fake_event_synchronize(void* e) {
  auto* ev = static_cast<FakeEvent*>(e);
  if (ev->stream && ev->stream->finished < ev->at) ev->stream->finished = ev->at;
  return 0;
}
int fake_stream_wait_event(void* s, void* e) {
  g_last_waiter = s;
  g_last_waited = static_cast<FakeEvent*>(e);
  return 0;
}
int fake_stream_synchronize(void* s) {
  ++g_syncs;
  finish(s);
  return 0;
}

mk::KernelTable fake_table() {
  mk::KernelTable t{};
  t.abi_version = MK_ABI_VERSION;
  t.table_bytes = int(sizeof(mk::KernelTable));
  t.runtime = mk::CudaRuntime{&fake_device_count,      &fake_stream_synchronize, &fake_error_string,
                              &fake_memcpy_d2h,        &fake_malloc,             &fake_free,
                              &fake_device_synchronize, &fake_stream_create,     &fake_stream_destroy,
                              &fake_stream_query,      &fake_event_create,       &fake_event_destroy,
                              &fake_event_record,      &fake_event_query,        &fake_event_synchronize,
                              &fake_stream_wait_event};
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
  // one stream cannot race itself: no stream was created yet, so no free recorded an event
  CHECK(g_event_records == 0, "default-stream frees recorded %d events", g_event_records);
}

int64_t pending() { return mk_device_pending_bytes(); }

void* new_stream() {
  void* s = nullptr;
  CHECK(mk_cuda_stream_create(&s) == MK_OK && s != nullptr, "%s", mk_last_error());
  return s;
}

// Same-stream reuse at once; cross-stream only after the owner's free-time event; record_stream.
void stream_aware_cache() {
  mk_device_empty_cache();
  const int device_syncs = g_device_syncs;
  void* a = new_stream();
  CHECK(g_device_syncs == device_syncs + 1, "the first stream synchronises the device once (event-less blocks)");
  void* b = new_stream();
  CHECK(g_device_syncs == device_syncs + 1, "only the first");

  // same stream: the block comes back at once although A's work on it is still running
  void* p = mk_device_alloc_on(1000, a);
  CHECK(p != nullptr, "%s", mk_last_error());
  void* owner = reinterpret_cast<void*>(1);
  CHECK(mk_device_block_stream(p, &owner) == MK_OK && owner == a, "owner");
  launch(a);
  mk_device_free(p);
  CHECK(pending() == 1024, "the free waits for A's event: pending %lld", (long long)pending());
  int mallocs = g_mallocs;
  void* q = mk_device_alloc_on(900, a);
  CHECK(q == p && g_mallocs == mallocs, "same-stream reuse is immediate (%p vs %p)", p, q);

  // another stream: not while A's work is pending; a new block instead
  launch(a);
  mk_device_free(q);
  mallocs = g_mallocs;
  void* r = mk_device_alloc_on(1000, b);
  CHECK(r != nullptr && r != p && g_mallocs == mallocs + 1, "B must not get A's pending block (%p)", r);
  CHECK(mk_device_cached_bytes() == 1024 && pending() == 1024, "A's block still waits");
  finish(a);
  CHECK(pending() == 0, "A finished: nothing pending");
  mallocs = g_mallocs;
  void* s2 = mk_device_alloc_on(1000, b);
  CHECK(s2 == p && g_mallocs == mallocs, "after A's event completed B takes the block (%p vs %p)", p, s2);
  CHECK(mk_device_block_stream(s2, &owner) == MK_OK && owner == b, "now B's");
  mk_device_free(s2);
  mk_device_free(r);
  finish(b);

  // the default stream and a stream: the same rule
  void* d = mk_device_alloc_on(7000, nullptr);
  launch(nullptr);
  mk_device_free(d);
  void* e = mk_device_alloc_on(7000, a);
  CHECK(e != d, "A must not get the default stream's pending block");
  finish(nullptr);
  void* f = mk_device_alloc_on(7000, a);
  CHECK(f == d, "after the default stream's event");
  mk_device_free(e);
  mk_device_free(f);

  // record_stream: a block of A read by B is not reused, even by A, until B passed its free
  void* g = mk_device_alloc_on(20000, a);
  CHECK(mk_device_record_stream(g, b) == MK_OK, "%s", mk_last_error());
  CHECK(mk_device_record_stream(g, a) == MK_OK, "the owner: a no-op");
  launch(b);
  mk_device_free(g);
  void* h = mk_device_alloc_on(20000, a);
  CHECK(h != g, "A must wait for B's use of its block");
  finish(b);
  void* i = mk_device_alloc_on(20000, a);
  CHECK(i == g, "after B's event A takes it back");
  mk_device_free(h);
  mk_device_free(i);
  int x = 0;
  CHECK(mk_device_record_stream(&x, b) == MK_ERR_INVALID_ARGUMENT && std::strstr(mk_last_error(), "not a live block"),
        "%s", mk_last_error());
  void* stranger = reinterpret_cast<void*>(uintptr_t(0x5000));
  CHECK(mk_device_alloc_on(10, stranger) == nullptr && std::strstr(mk_last_error(), "was not created by"), "%s",
        mk_last_error());

  // wait_stream: an event recorded on the waited stream, waited for by the waiter
  launch(b);
  CHECK(mk_cuda_stream_wait_stream(a, b) == MK_OK, "%s", mk_last_error());
  CHECK(g_last_waiter == a && g_last_waited && g_last_waited->stream == fs(b) && g_last_waited->at == fs(b)->launched,
        "A waits for an event at B's current position");
  CHECK(mk_cuda_stream_wait_stream(a, stranger) == MK_ERR_INVALID_ARGUMENT, "unknown stream refused");
  int done = -1;
  CHECK(mk_cuda_stream_query(b, &done) == MK_OK && done == 0, "B pending: done %d", done);
  CHECK(mk_cuda_stream_synchronize(b) == MK_OK && mk_cuda_stream_query(b, &done) == MK_OK && done == 1, "B synced");

  // empty cache and synchronize with pending events
  void* j = mk_device_alloc_on(40000, a);
  void* k = mk_device_alloc_on(40000, b);
  launch(a);
  launch(b);
  mk_device_free(j);
  mk_device_free(k);
  CHECK(pending() == 2 * 40960, "both pending: %lld", (long long)pending());
  const int64_t cached = mk_device_cached_bytes();
  CHECK(mk_device_synchronize() == MK_OK && pending() == 0 && mk_device_cached_bytes() == cached,
        "synchronize: nothing pending, nothing freed");
  void* l = mk_device_alloc_on(40000, a);
  launch(a);
  mk_device_free(l);
  CHECK(pending() > 0, "pending again");
  const int frees = g_frees;
  mk_device_empty_cache();
  CHECK(mk_device_cached_bytes() == 0 && pending() == 0 && g_frees > frees && fs(a)->finished == fs(a)->launched,
        "empty cache waited for A and freed every block");

  // a cap of 0 with streams: the uncached free waits for the device first
  mk_device_set_cache_limit(0);
  void* m = mk_device_alloc_on(100, b);
  launch(b);
  const int syncs = g_device_syncs;
  mk_device_free(m);
  CHECK(g_device_syncs == syncs + 1 && fs(b)->finished == fs(b)->launched, "sync before cudaFree");
  mk_device_set_cache_limit(INT64_MAX);

  CHECK(mk_cuda_stream_destroy(a) == MK_OK && mk_cuda_stream_destroy(b) == MK_OK, "%s", mk_last_error());
}

// Destroy with pending work waits for it; blocks move to the default stream; refusals.
void stream_event_lifetime() {
  const int64_t streams0 = mk_cuda_live_streams(), events0 = mk_cuda_live_events();
  void* a = new_stream();
  CHECK(mk_cuda_live_streams() == streams0 + 1, "live streams");
  void* p = mk_device_alloc_on(3000, a);
  void* q = mk_device_alloc_on(3000, a);
  launch(a);
  mk_device_free(q);  // cached, A's event pending
  CHECK(mk_cuda_stream_destroy(a) == MK_OK, "%s", mk_last_error());
  CHECK(fs(a)->destroyed && fs(a)->pending_at_destroy == 0, "destroy waited for the stream's work (%d pending)",
        fs(a)->pending_at_destroy);
  void* owner = a;
  CHECK(mk_device_block_stream(p, &owner) == MK_OK && owner == nullptr, "a live block moved to the default stream");
  CHECK(pending() == 0, "its cached block's event was dropped");
  CHECK(mk_device_alloc_on(3000, nullptr) == q, "and the default stream takes it");
  mk_device_free(q);
  mk_device_free(p);
  CHECK(mk_cuda_stream_destroy(a) == MK_ERR_INVALID_ARGUMENT && std::strstr(mk_last_error(), "was destroyed"),
        "double destroy: %s", mk_last_error());
  CHECK(mk_device_alloc_on(8, a) == nullptr, "a destroyed stream is refused by the cache");
  CHECK(mk_cuda_stream_synchronize(a) == MK_ERR_INVALID_ARGUMENT, "and by synchronize");
  CHECK(mk_cuda_stream_destroy(nullptr) == MK_ERR_INVALID_ARGUMENT && std::strstr(mk_last_error(), "default stream"),
        "%s", mk_last_error());
  CHECK(mk_cuda_stream_create(nullptr) == MK_ERR_INVALID_ARGUMENT, "null out");
  CHECK(mk_cuda_live_streams() == streams0, "no stream leaked");

  // events
  void* b = new_stream();
  void* e = nullptr;
  CHECK(mk_cuda_event_create(&e) == MK_OK && e, "%s", mk_last_error());
  launch(b);
  CHECK(mk_cuda_event_record(e, b) == MK_OK, "%s", mk_last_error());
  int done = -1;
  CHECK(mk_cuda_event_query(e, &done) == MK_OK && done == 0, "pending event");
  launch(b);
  CHECK(mk_cuda_event_synchronize(e) == MK_OK && mk_cuda_event_query(e, &done) == MK_OK && done == 1,
        "synchronize waits up to the record only");
  CHECK(fs(b)->finished == fs(b)->launched - 1, "not beyond it");
  CHECK(mk_cuda_stream_wait_event(nullptr, e) == MK_OK && g_last_waiter == nullptr && g_last_waited == e, "wait");
  CHECK(mk_cuda_event_destroy(e) == MK_OK, "%s", mk_last_error());
  CHECK(mk_cuda_event_destroy(e) == MK_ERR_INVALID_ARGUMENT && std::strstr(mk_last_error(), "was destroyed"),
        "double destroy: %s", mk_last_error());
  CHECK(mk_cuda_event_query(e, &done) == MK_ERR_INVALID_ARGUMENT, "query after destroy");
  CHECK(mk_cuda_event_record(e, b) == MK_ERR_INVALID_ARGUMENT, "record after destroy");
  CHECK(mk_cuda_live_events() == events0, "no event leaked");
  CHECK(mk_cuda_stream_destroy(b) == MK_OK, "%s", mk_last_error());
  // the pool's events go back to the driver with the cache
  mk_device_empty_cache();
  CHECK(g_events_created - g_events_destroyed == 0, "events alive after empty cache: %d",
        g_events_created - g_events_destroyed);
}

// The 16-bit JVP's F32 copies (native/src/attention.cpp) come from the cache for the call's
// stream: freed while that stream is busy, they wait for its event (owned by another stream, or
// by the default one, they would not).
void attention_scratch_on_the_call_stream() {
  // The fake table runs the CPU kernels under the CUDA entries, and native sizes a CUDA call's
  // workspace for one thread (attention.cpp, threads_for): with more OpenMP threads the CPU kernel
  // would use per-thread scratch past the workspace asked for (found by tests/sanitize/run.sh).
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  mk_device_empty_cache();
  void* s = new_stream();
  mk_attention_params p{};
  p.batch = 1, p.heads = 1, p.kv_heads = 1, p.nq = 4, p.nk = 4, p.d = 8, p.dv = 8;
  std::vector<uint16_t> q(32, 0x3f80), k(32, 0x3f00), v(32, 0x3f80), out(32), tq(32, 0x3f80), tout(32);
  std::vector<float> lse(4), tlse(4);
  p.q = q.data(), p.k = k.data(), p.v = v.data(), p.scale = 0.35;
  p.out = out.data(), p.lse = lse.data();
  p.tan_q = tq.data(), p.tan_out = tout.data(), p.tan_lse = tlse.data();
  const int64_t ws = mk_attention_softmax_workspace(MK_DEVICE_CUDA, MK_BF16, &p);
  CHECK(ws >= 0, "%s", mk_last_error());
  std::vector<char> w(size_t(ws) + 64);
  CHECK(mk_attention_softmax_forward(MK_DEVICE_CUDA, MK_BF16, &p, w.data(), ws, s) == MK_OK, "%s", mk_last_error());
  launch(s);  // s is busy: events recorded on it now stay pending
  const int mallocs = g_mallocs;
  CHECK(mk_attention_softmax_jvp(MK_DEVICE_CUDA, MK_BF16, &p, w.data(), ws, s) == MK_OK, "%s", mk_last_error());
  CHECK(g_mallocs > mallocs, "the JVP took F32 scratch from the device cache");
  const int64_t cached = mk_device_cached_bytes();
  CHECK(cached > 0 && pending() == cached, "the scratch was the call stream's: cached %lld, pending %lld",
        (long long)cached, (long long)pending());
  // every copy is 32 F32 values or fewer: the 512-byte class; s takes one back at once, another
  // stream must not
  void* other = new_stream();
  const int before = g_mallocs;
  void* mine = mk_device_alloc_on(128, s);
  CHECK(mine != nullptr && g_mallocs == before, "s reuses its scratch at once (mallocs %d -> %d)", before, g_mallocs);
  void* theirs = mk_device_alloc_on(128, other);
  CHECK(theirs != nullptr && g_mallocs == before + 1, "another stream waits for s (mallocs %d -> %d)", before,
        g_mallocs);
  mk_device_free(mine);
  mk_device_free(theirs);
  CHECK(mk_cuda_stream_destroy(other) == MK_OK, "%s", mk_last_error());
  CHECK(mk_cuda_stream_destroy(s) == MK_OK && pending() == 0, "destroy waited for s");
  mk_device_empty_cache();
  omp_set_num_threads(threads);
}

// A seeded random walk over the default stream and three others: allocations, frees,
// record_stream, launches and finishes in any order. Invariant: a block handed to stream S was
// last freed with no other stream's work on it still pending.
void cross_stream_stress() {
  void* streams[4] = {nullptr, new_stream(), new_stream(), new_stream()};
  struct Held {
    void* ptr;
    int owner;
    std::set<int> users;
  };
  struct Freed {
    std::map<int, int> marks;  // stream -> its launched count at the free
  };
  std::vector<Held> held;
  std::map<void*, Freed> freed;
  std::mt19937 rng(12);
  const int64_t live0 = mk_device_live_bytes();
  int reuses = 0, cross = 0;
  for (int step = 0; step < 20000; ++step) {
    const int op = int(rng() % 10);
    const int s = int(rng() % 4);
    if (op < 4) {
      const int64_t n = 512 * int64_t(1 + rng() % 4);
      void* p = mk_device_alloc_on(n, streams[s]);
      CHECK(p != nullptr, "%s", mk_last_error());
      auto it = freed.find(p);
      if (it != freed.end()) {
        ++reuses;
        for (const auto& m : it->second.marks) {
          if (m.first == s) continue;
          if (fs(streams[m.first])->finished < m.second) {
            CHECK(false, "step %d: block %p given to stream %d while stream %d's work on it is pending", step, p, s,
                  m.first);
          }
          ++cross;
        }
        freed.erase(it);
      }
      held.push_back({p, s, {s}});
      launch(streams[s]);
    } else if (op < 7 && !held.empty()) {
      const size_t i = rng() % held.size();
      Freed f;
      for (int u : held[i].users) f.marks[u] = fs(streams[u])->launched;
      freed[held[i].ptr] = f;
      mk_device_free(held[i].ptr);
      held[i] = held.back();
      held.pop_back();
    } else if (op == 7 && !held.empty()) {
      Held& h = held[rng() % held.size()];
      CHECK(mk_device_record_stream(h.ptr, streams[s]) == MK_OK, "%s", mk_last_error());
      h.users.insert(s);
      launch(streams[s]);
    } else if (op == 8) {
      launch(streams[s]);
    } else {
      finish(streams[s]);
    }
  }
  for (const Held& h : held) mk_device_free(h.ptr);
  CHECK(mk_device_live_bytes() == live0, "nothing leaked");
  CHECK(reuses > 1000 && cross > 100, "the walk reused blocks (%d) across streams (%d)", reuses, cross);
  for (int i = 1; i < 4; ++i) CHECK(mk_cuda_stream_destroy(streams[i]) == MK_OK, "%s", mk_last_error());
  mk_device_empty_cache();
  std::printf("cross-stream stress: %d reuses, %d of them after another stream's use\n", reuses, cross);
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

// A hub-heavy node graph: node 0 receives an edge from every other node (a hub row of N - 1
// non-zeros), node i > 0 from its 8 successors; CSR by destination, its CSC, and the CSC-to-CSR
// permutation of the non-zeros (the indexed weights of the transposed pass).
struct HubGraph {
  int64_t n = 0, nnz = 0;
  std::vector<int64_t> ptr, col, cptr, crow, perm;
};

HubGraph hub_graph(int64_t n) {
  HubGraph g;
  g.n = n;
  g.ptr.push_back(0);
  for (int64_t r = 0; r < n; ++r) {
    if (r == 0)
      for (int64_t j = 1; j < n; ++j) g.col.push_back(j);
    else
      for (int64_t d = 1; d <= 8; ++d) g.col.push_back((r + d) % n);
    g.ptr.push_back(int64_t(g.col.size()));
  }
  g.nnz = int64_t(g.col.size());
  g.cptr.assign(size_t(n + 1), 0);
  for (int64_t j : g.col) ++g.cptr[size_t(j + 1)];
  for (int64_t j = 0; j < n; ++j) g.cptr[size_t(j + 1)] += g.cptr[size_t(j)];
  g.crow.resize(size_t(g.nnz));
  g.perm.resize(size_t(g.nnz));
  std::vector<int64_t> next(g.cptr.begin(), g.cptr.end() - 1);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = g.ptr[size_t(r)]; k < g.ptr[size_t(r + 1)]; ++k) {
      const int64_t at = next[size_t(g.col[size_t(k)])]++;
      g.crow[size_t(at)] = r;
      g.perm[size_t(at)] = k;
    }
  return g;
}

// The graph kernels' host scratch is counted: the peak grows by at least the workspace (the GAT
// backward's: a row buffer per thread, bounded since 2026-12-05 — a hub row longer than
// kBufferedNonZeros or split across threads recomputes α, ga and leaky' instead of keeping the
// hub's (N - 1)·H·3 values, so the workspace stays below that; the indexed spmm gathers its
// weights, min(nnz·H, 2^20) values per thread), and nothing stays live after the call. The
// results equal the kernels' own with a workspace the test allocates (bitwise), on 1 and 2 threads.
void graph_scratch_on_the_host() {
  const HubGraph g = hub_graph(20000);
  const int64_t n = g.n, H = 2, D = 8, F = H * D;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto rnd = [&](int64_t k) {
    std::vector<float> v{};
    v.resize(size_t(k));
    for (float& f : v) f = u(rng);
    return v;
  };
  const std::vector<float> x = rnd(n * F), ss = rnd(n * H), sd = rnd(n * H), gout = rnd(n * F), w = rnd(g.nnz * H);
  std::vector<float> out(size_t(n * F)), lse(size_t(n * H));
  std::vector<float> first_gx;
  char report[2][200];
  for (int threads : {1, 2}) {
    CHECK(mk_runtime_set_num_threads(threads) == MK_OK, "%s", mk_last_error());
    CHECK(mk_graph_gat_forward(MK_DEVICE_CPU, MK_F32, n, n, g.nnz, H, D, 0.2, g.ptr.data(), g.col.data(), x.data(),
                               ss.data(), sd.data(), out.data(), lse.data(), nullptr) == MK_OK,
          "%s", mk_last_error());
    // the GAT backward: every gradient
    std::vector<float> gx(size_t(n * F)), gs(size_t(n * H)), gd(size_t(n * H)), rd(size_t(n * H));
    mk_host_empty_cache();
    const int64_t live0 = mk_host_live_bytes();
    mk_host_reset_peak_bytes();
    CHECK(mk_graph_gat_backward(MK_DEVICE_CPU, MK_F32, n, n, g.nnz, H, D, 0.2, g.ptr.data(), g.col.data(),
                                g.cptr.data(), g.crow.data(), x.data(), ss.data(), sd.data(), lse.data(), gout.data(),
                                gx.data(), gs.data(), gd.data(), rd.data(), nullptr) == MK_OK,
          "%s", mk_last_error());
    const int64_t grew = mk_host_peak_bytes() - live0;
    const int64_t hub = (n - 1) * H * 3 * int64_t(sizeof(float));
    const int64_t ws =
        mk::cpu::graph_gat_workspace(MK_F32, mk::kGatPassBackward, n, g.nnz, H, D, g.ptr.data(), g.cptr.data());
    CHECK(ws > 0 && grew >= ws && ws < hub,
          "GAT backward, %d threads: workspace %lld, peak grew %lld, the hub's per-edge terms %lld", threads,
          (long long)ws, (long long)grew, (long long)hub);
    CHECK(mk_host_live_bytes() == live0, "GAT backward, %d threads: live %lld after, %lld before", threads,
          (long long)mk_host_live_bytes(), (long long)live0);
    // the kernel with the test's own workspace: the same bits; with none: refused, nothing written
    std::vector<float> gx2(size_t(n * F)), gs2(size_t(n * H)), gd2(size_t(n * H)), rd2(size_t(n * H));
    std::vector<unsigned char> block(size_t(ws), 0xff);
    CHECK(mk::cpu::graph_gat_backward_split(MK_F32, n, g.nnz, H, D, 0.2, g.ptr.data(), g.col.data(), g.cptr.data(),
                                            g.crow.data(), x.data(), ss.data(), sd.data(), lse.data(), gout.data(),
                                            gx2.data(), gs2.data(), gd2.data(), rd2.data(), block.data(), ws,
                                            nullptr) == 0,
          "GAT backward split with the workspace");
    CHECK(std::memcmp(gx.data(), gx2.data(), gx.size() * 4) == 0 &&
              std::memcmp(gs.data(), gs2.data(), gs.size() * 4) == 0 &&
              std::memcmp(gd.data(), gd2.data(), gd.size() * 4) == 0,
          "GAT backward, %d threads: the C ABI and the kernel with the test's workspace agree", threads);
    std::vector<float> untouched(size_t(n * F), 5.f), gx3 = untouched;
    CHECK(mk::cpu::graph_gat_backward_split(MK_F32, n, g.nnz, H, D, 0.2, g.ptr.data(), g.col.data(), g.cptr.data(),
                                            g.crow.data(), x.data(), ss.data(), sd.data(), lse.data(), gout.data(),
                                            gx3.data(), gs2.data(), gd2.data(), rd2.data(), block.data(), ws - 64,
                                            nullptr) == mk::KERNEL_UNSUPPORTED &&
              gx3 == untouched,
          "GAT backward, %d threads: 64 bytes short refused, nothing written", threads);
    if (first_gx.empty())
      first_gx = gx;
    else
      CHECK(std::memcmp(first_gx.data(), gx.data(), gx.size() * 4) == 0, "GAT backward: 1 and 2 threads agree");
    // the indexed spmm (sum over the CSC, weights through the permutation)
    std::vector<float> sp(size_t(n * F)), sp2(size_t(n * F));
    mk_host_empty_cache();
    const int64_t live1 = mk_host_live_bytes();
    mk_host_reset_peak_bytes();
    CHECK(mk_graph_spmm_forward(MK_DEVICE_CPU, MK_F32, MK_GRAPH_REDUCE_SUM, n, n, g.nnz, H, D, g.cptr.data(),
                                g.crow.data(), w.data(), g.perm.data(), gout.data(), sp.data(), nullptr,
                                nullptr) == MK_OK,
          "%s", mk_last_error());
    const int64_t gather = std::min<int64_t>(g.nnz * H, 1 << 20) * int64_t(sizeof(float));
    const int64_t grew1 = mk_host_peak_bytes() - live1;
    CHECK(grew1 >= gather, "indexed spmm, %d threads: peak grew %lld, the gather needs %lld", threads, (long long)grew1,
          (long long)gather);
    CHECK(mk_host_live_bytes() == live1, "indexed spmm: nothing live after");
    std::snprintf(report[threads - 1], sizeof report[0],
                  "%d thread(s): GAT backward workspace %lld B (hub row per-edge terms %lld B), peak +%lld B; indexed spmm peak +%lld B",
                  threads, (long long)ws, (long long)hub, (long long)grew, (long long)grew1);
    CHECK(mk::cpu::graph_spmm(MK_F32, MK_GRAPH_REDUCE_SUM, n, g.nnz, H, D, g.cptr.data(), g.crow.data(), w.data(),
                              g.perm.data(), gout.data(), sp2.data(), nullptr, nullptr) == 0,
          "spmm without workspace");
    CHECK(std::memcmp(sp.data(), sp2.data(), sp.size() * 4) == 0,
          "indexed spmm, %d threads: gathered (C ABI) and through the index (no workspace) agree", threads);
  }
  // a row longer than the gather buffer (more than 2^20 / heads non-zeros) reads its weights
  // through the index, the short row beside it is gathered: the bits of the loop without scratch
  {
    const int64_t long_row = 600000, short_row = 1000, nz = long_row + short_row, cols = long_row;
    std::vector<int64_t> ptr = {0, long_row, nz}, col(static_cast<size_t>(nz)), idx(static_cast<size_t>(nz));
    for (int64_t k = 0; k < nz; ++k) {
      col[size_t(k)] = k < long_row ? k : (k * 7919) % cols;
      idx[size_t(k)] = (k * 104729) % nz;  // a permutation: 104729 is prime, nz = 601000 = 2^3 5^3 601
    }
    const std::vector<float> wl = rnd(nz * 2), xl = rnd(cols * 2);
    std::vector<float> a(4), b(4);
    CHECK(mk_graph_spmm_forward(MK_DEVICE_CPU, MK_F32, MK_GRAPH_REDUCE_MEAN, 2, cols, nz, 2, 1, ptr.data(), col.data(),
                                wl.data(), idx.data(), xl.data(), a.data(), nullptr, nullptr) == MK_OK,
          "%s", mk_last_error());
    CHECK(mk::cpu::graph_spmm(MK_F32, MK_GRAPH_REDUCE_MEAN, 2, nz, 2, 1, ptr.data(), col.data(), wl.data(), idx.data(),
                              xl.data(), b.data(), nullptr, nullptr) == 0,
          "spmm without workspace");
    CHECK(std::memcmp(a.data(), b.data(), 16) == 0, "indexed spmm, a row past the gather buffer: the same bits");
  }
  mk_runtime_set_num_threads(0);
  mk_host_empty_cache();
  std::printf("graph scratch on the host, counted and freed: %s; %s\n", report[0], report[1]);
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
  stream_aware_cache();
  stream_event_lifetime();
  attention_scratch_on_the_call_stream();
  cross_stream_stress();
  graph_scratch_on_the_host();
  cublas_behind_the_abi(argv[1]);
  if (g_failures) {
    std::printf("%d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("runtime_test: device and host allocators, streams and events, cuBLAS behind the ABI: all checks passed\n");
  return 0;
}
