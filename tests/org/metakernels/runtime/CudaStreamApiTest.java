package org.metakernels.runtime;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The Java stream API without a GPU: ownership of streams and events (close once, use after close
 * refused with a message naming the stream), the per-thread current stream set by nested
 * {@code useStream} scopes, and CPU tensors ignoring streams. The CUDA calls go to a stand-in
 * driver that records them; the same API on a real device is covered by the gpu-tagged
 * {@code org.metakernels.gpu.CudaStreamTest}.
 */
class CudaStreamApiTest {
  /** Records every call; handles are counters; a destroyed handle used again is an error here. */
  static final class FakeDriver implements CudaStream.Driver {
    long next = 0x1000;
    final Set<Long> streams = new HashSet<>(), events = new HashSet<>();
    final List<String> calls = new ArrayList<>();

    private void live(Set<Long> set, long h, String what) {
      if (h != 0 && !set.contains(h)) throw new AssertionError(what + " on a dead handle " + h);
    }

    @Override
    public long create() {
      streams.add(next);
      calls.add("create " + next);
      return next++;
    }

    @Override
    public void destroy(long s) {
      live(streams, s, "destroy");
      streams.remove(s);
      calls.add("destroy " + s);
    }

    @Override
    public void synchronize(long s) {
      live(streams, s, "synchronize");
      calls.add("sync " + s);
    }

    @Override
    public boolean query(long s) {
      live(streams, s, "query");
      return true;
    }

    @Override
    public void waitStream(long waiter, long waited) {
      live(streams, waiter, "wait");
      live(streams, waited, "wait");
      calls.add("wait " + waiter + " " + waited);
    }

    @Override
    public long eventCreate() {
      events.add(next);
      return next++;
    }

    @Override
    public void eventDestroy(long e) {
      live(events, e, "eventDestroy");
      events.remove(e);
    }

    @Override
    public void eventRecord(long e, long s) {
      live(events, e, "record");
      live(streams, s, "record");
      calls.add("record " + e + " " + s);
    }

    @Override
    public boolean eventQuery(long e) {
      live(events, e, "eventQuery");
      return true;
    }

    @Override
    public void eventSynchronize(long e) {
      live(events, e, "eventSynchronize");
    }

    @Override
    public void streamWaitEvent(long s, long e) {
      live(streams, s, "streamWaitEvent");
      live(events, e, "streamWaitEvent");
      calls.add("waitEvent " + s + " " + e);
    }
  }

  @Test
  void aStreamIsClosedOnceAndRefusedAfterwards() {
    FakeDriver d = new FakeDriver();
    CudaStream s = CudaStream.create(d);
    long h = s.handle();
    assertNotEquals(0L, h);
    assertFalse(s.isDefault());
    s.synchronize();
    assertTrue(s.query());
    s.close();
    assertTrue(s.isClosed());
    assertTrue(d.streams.isEmpty(), "destroyed in the driver");
    IllegalStateException twice = assertThrows(IllegalStateException.class, s::close);
    assertTrue(
        twice.getMessage().contains(s.toString()) && twice.getMessage().contains("already closed"), twice.getMessage());
    for (Runnable use : List.<Runnable>of(s::handle, s::synchronize, s::query,
             () -> s.waitFor(CudaStream.create(d)), s::record, () -> CudaRuntime.useStream(s))) {
      IllegalStateException e = assertThrows(IllegalStateException.class, use::run);
      assertTrue(e.getMessage().contains("was closed"), e.getMessage());
    }
    assertEquals(0L, s.handleOrDefault(), "a closed stream's memory belongs to the default stream");
    assertEquals(1, d.calls.stream().filter(c -> c.startsWith("destroy")).count(), "destroyed once");
  }

  @Test
  void theDefaultStreamIsNeverClosed() {
    CudaStream def = CudaStream.defaultStream();
    assertTrue(def.isDefault());
    assertEquals(0L, def.handle());
    IllegalStateException e = assertThrows(IllegalStateException.class, def::close);
    assertTrue(e.getMessage().contains("default"), e.getMessage());
    assertSame(def, CudaStream.current(), "outside any scope");
    assertSame(def, CudaRuntime.currentStream());
  }

  @Test
  void useStreamScopesNestAndRestore() {
    FakeDriver d = new FakeDriver();
    try (CudaStream a = CudaStream.create(d); CudaStream b = CudaStream.create(d)) {
      try (CudaRuntime.StreamScope ua = CudaRuntime.useStream(a)) {
        assertSame(a, CudaStream.current());
        assertSame(a, ua.stream());
        try (CudaRuntime.StreamScope ub = CudaRuntime.useStream(b)) {
          assertSame(b, CudaStream.current());
          // out of order: refused, nothing changed
          IllegalStateException e = assertThrows(IllegalStateException.class, ua::close);
          assertTrue(e.getMessage().contains("reverse order"), e.getMessage());
          assertSame(b, CudaStream.current());
          // the current stream cannot be closed under the scope
          IllegalStateException c = assertThrows(IllegalStateException.class, b::close);
          assertTrue(c.getMessage().contains("current stream"), c.getMessage());
          assertFalse(b.isClosed());
        }
        assertSame(a, CudaStream.current());
        ua.close();
        ua.close(); // idempotent
        assertSame(CudaStream.defaultStream(), CudaStream.current());
      }
      assertSame(CudaStream.defaultStream(), CudaStream.current());
    }
    assertThrows(IllegalArgumentException.class, () -> CudaRuntime.useStream(null));
  }

  @Test
  void theCurrentStreamIsPerThread() throws Exception {
    FakeDriver d = new FakeDriver();
    try (CudaStream a = CudaStream.create(d); CudaRuntime.StreamScope u = CudaRuntime.useStream(a)) {
      AtomicReference<CudaStream> seen = new AtomicReference<>();
      AtomicReference<Throwable> closeElsewhere = new AtomicReference<>();
      Thread t = new Thread(() -> {
        seen.set(CudaStream.current());
        try {
          u.close();
        } catch (Throwable e) {
          closeElsewhere.set(e);
        }
      });
      t.start();
      t.join();
      assertSame(CudaStream.defaultStream(), seen.get(), "another thread still has the default stream");
      assertTrue(closeElsewhere.get() instanceof IllegalStateException, "a scope is closed on its own thread");
      assertSame(a, CudaStream.current());
    }
  }

  @Test
  void waitForAndEventsGoThroughTheDriver() {
    FakeDriver d = new FakeDriver();
    try (CudaStream a = CudaStream.create(d); CudaStream b = CudaStream.create(d)) {
      b.waitFor(a);
      assertEquals("wait " + b.handle() + " " + a.handle(), d.calls.get(d.calls.size() - 1));
      CudaEvent e = a.record();
      assertEquals("record " + e.handle() + " " + a.handle(), d.calls.get(d.calls.size() - 1));
      b.waitFor(e);
      assertEquals("waitEvent " + b.handle() + " " + e.handle(), d.calls.get(d.calls.size() - 1));
      assertTrue(e.query());
      e.synchronize();
      e.close();
      IllegalStateException twice = assertThrows(IllegalStateException.class, e::close);
      assertTrue(twice.getMessage().contains("already closed"), twice.getMessage());
      assertThrows(IllegalStateException.class, e::query);
      assertThrows(IllegalStateException.class, () -> b.waitFor(e));
      assertTrue(d.events.isEmpty(), "no event leaked");
    }
  }

  @Test
  void cpuTensorsIgnoreStreams() {
    FakeDriver d = new FakeDriver();
    try (Scope scope = Scope.open(); CudaStream a = CudaStream.create(d);
         CudaRuntime.StreamScope u = CudaRuntime.useStream(a)) {
      Tensor x = Tensor.randn(new long[] {4, 3}, DType.F64, Device.CPU, 3L);
      Tensor y = x.matmul(x.transpose(0, 1)).tanh().sum();
      assertEquals(0L, x.stream());
      assertEquals(0L, y.stream());
      assertEquals(0L, y.launchStream(), "CPU calls get no stream");
      assertTrue(Double.isFinite(y.item()));
      assertTrue(
          d.calls.stream().noneMatch(c -> c.startsWith("sync") || c.startsWith("wait")), "no CUDA call for CPU work");
    }
  }

  @Test
  void theNativeEntryPointsRefuseBadHandles() {
    long[] out = {-1};
    int st = MkNative.mk_device_block_stream(0x1234L, out);
    assertEquals(Codes.ERR_INVALID_ARGUMENT, st);
    assertTrue(Native.lastError().contains("not a live block"), Native.lastError());
    assertEquals(-1L, out[0], "nothing written");
    if (Backend.get().cudaAvailable()) {
      assertEquals(Codes.ERR_INVALID_ARGUMENT, MkNative.mk_cuda_stream_destroy(0x1234L));
      assertTrue(Native.lastError().contains("was not created by mk_cuda_stream_create"), Native.lastError());
      assertEquals(Codes.ERR_INVALID_ARGUMENT, MkNative.mk_cuda_event_destroy(0x1234L));
    } else {
      assertEquals(Codes.ERR_NO_DEVICE, MkNative.mk_cuda_stream_create(out));
      assertTrue(Native.lastError().contains("mk_cuda_stream_create"), Native.lastError());
      assertEquals(Codes.ERR_NO_DEVICE, MkNative.mk_cuda_stream_destroy(0x1234L));
      assertEquals(Codes.ERR_NO_DEVICE, MkNative.mk_cuda_event_query(0x1234L, new int[1]));
      assertEquals(Codes.ERR_NO_DEVICE, MkNative.mk_device_synchronize());
      assertEquals(0L, MkNative.mk_device_pending_bytes());
    }
  }

  @Test
  void withoutCudaNoStreamCanBeMade() {
    if (Backend.get().cudaAvailable()) return; // the gpu-tagged tests cover that side
    MetakernelsException e = assertThrows(MetakernelsException.class, () -> CudaRuntime.get().newStream());
    assertTrue(e.getMessage().toLowerCase().contains("cuda"), e.getMessage());
  }
}
