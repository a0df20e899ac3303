package org.metakernels.tensor;

import org.metakernels.runtime.Codes;
import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;

/** Scopes, grad mode and native error messages are per thread; ops from several threads agree with one. */
class ThreadsTest {
  static final Device CPU = Device.CPU;

  static double[] work(long seed) {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.randn(new long[] {64, 48}, DType.F64, CPU, seed);
      Tensor w = Tensor.randn(new long[] {48, 32}, DType.F64, CPU, seed + 1).requiresGrad(true);
      Tensor loss = x.matmul(w).tanh().softmax(-1).logsumexp(0, false).sum();
      return Autograd.grad(loss, List.of(w), false).get(0).toDoubleArray();
    }
  }

  @Test
  void concurrentOpsMatchSequentialOnes() throws Exception {
    Native.ensureLoaded();
    long live = MkNative.mk_host_live_bytes();
    double[][] expect = new double[8][];
    for (int i = 0; i < 8; i++) expect[i] = work(i);
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<Boolean>> fs = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        final int tid = t;
        fs.add(pool.submit(() -> {
          for (int rep = 0; rep < 25; rep++) {
            int i = (tid + rep) % 8;
            assertArrayEquals(expect[i], work(i), 0.0);
            // an error on this thread carries this thread's message
            String shape = "[" + (tid + 2) + ", 3]";
            try (Scope s = Scope.open()) {
              Tensor a = Tensor.zeros(new long[] {tid + 2, 3}, DType.F64, CPU);
              Tensor ix = Tensor.ofIndices(new long[] {0, 99}, 2);
              var e = assertThrows(MetakernelsException.class, () -> a.indexSelect(0, ix));
              assertTrue(e.getMessage().contains(shape) && e.getMessage().contains("outside [0, " + (tid + 2) + ")"),
                  e.getMessage());
            }
            assertNull(Scope.current(), "scopes are per thread");
          }
          return true;
        }));
      }
      for (Future<Boolean> f : fs) assertTrue(f.get(60, TimeUnit.SECONDS));
    } finally {
      pool.shutdownNow();
    }
    assertEquals(live, MkNative.mk_host_live_bytes());
  }

  // The CPU attention workspace holds one scratch block per OpenMP thread of the calling thread,
  // so its size shows the thread count a native call on that thread really runs with.
  static long attentionWorkspace() {
    try (MkNative.mk_attention_params p = new MkNative.mk_attention_params().batch(1).heads(1).kv_heads(1).nq(16)
        .nk(16).d(8).dv(8)) {
      return MkNative.mk_attention_softmax_workspace(Device.CPU.code, DType.F32.code, p);
    }
  }

  /**
   * The README's thread rule for readers: threads may run Autograd.grad over one recorded graph
   * at once (second order included, through fused attention) and get the sequential answer.
   */
  @Test
  void concurrentGradsOverOneSharedGraphAgree() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try (Scope s = Scope.open()) {
      Tensor q = Tensor.randn(new long[] {1, 2, 32, 16}, DType.F64, CPU, 11).requiresGrad(true);
      Tensor w = Tensor.randn(new long[] {16, 16}, DType.F64, CPU, 12).requiresGrad(true);
      Tensor h = q.matmul(w).tanh();
      Tensor loss = org.metakernels.ops.Attention.softmax(h, h, h, org.metakernels.ops.Attention.Options.causal())
          .square().sum();
      java.util.concurrent.Callable<double[]> job = () -> {
        try (Scope t = Scope.open()) {
          List<Tensor> g = Autograd.grad(loss, List.of(q, w), true);
          Tensor hv = Autograd.grad(g.get(0).square().sum().add(g.get(1).sum()), List.of(w), false).get(0);
          return hv.toDoubleArray();
        }
      };
      double[] expect = job.call();
      List<Future<double[]>> fs = new ArrayList<>();
      for (int t = 0; t < 16; t++) fs.add(pool.submit(job));
      for (Future<double[]> f : fs) assertArrayEquals(expect, f.get(120, TimeUnit.SECONDS), 0.0);
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void threadCountAppliesToCallsFromEveryThread() throws Exception {
    Native.ensureLoaded();
    final int before = MkNative.mk_runtime_num_threads();
    // one pool thread that has made native calls before the change (its OpenMP state exists)
    ExecutorService other = Executors.newSingleThreadExecutor();
    try {
      assertEquals(Codes.OK, MkNative.mk_runtime_set_num_threads(1));
      final long ws1 = attentionWorkspace();
      assertEquals(Codes.OK, MkNative.mk_runtime_set_num_threads(3));
      final long ws3 = attentionWorkspace();
      assertTrue(ws3 > ws1, "workspace grows with the threads: " + ws1 + " vs " + ws3);
      assertEquals(3, other.submit(MkNative::mk_runtime_num_threads).get(30, TimeUnit.SECONDS));
      assertEquals(ws3, other.submit(ThreadsTest::attentionWorkspace).get(30, TimeUnit.SECONDS));

      // set from this thread: the pool thread's next native call runs with 1 thread
      assertEquals(Codes.OK, MkNative.mk_runtime_set_num_threads(1));
      assertEquals(1, other.submit(MkNative::mk_runtime_num_threads).get(30, TimeUnit.SECONDS));
      assertEquals(ws1, other.submit(ThreadsTest::attentionWorkspace).get(30, TimeUnit.SECONDS));
      // and ops there still work (and agree with this thread's)
      double[] mine = work(3);
      assertArrayEquals(mine, other.submit(() -> work(3)).get(60, TimeUnit.SECONDS), 0.0);
      // a fresh thread sees it too
      long[] fresh = new long[2];
      Thread t = new Thread(() -> { fresh[0] = MkNative.mk_runtime_num_threads(); fresh[1] = attentionWorkspace(); });
      t.start();
      t.join();
      assertEquals(1, fresh[0]);
      assertEquals(ws1, fresh[1]);

      // 0 restores the OpenMP default everywhere; negative counts are refused
      assertEquals(Codes.OK, MkNative.mk_runtime_set_num_threads(0));
      final int dflt = MkNative.mk_runtime_num_threads();
      assertTrue(dflt >= 1);
      assertEquals(dflt, other.submit(MkNative::mk_runtime_num_threads).get(30, TimeUnit.SECONDS));
      assertEquals(ws1 + (dflt - 1) * (ws3 - ws1) / 2, other.submit(ThreadsTest::attentionWorkspace).get(30, TimeUnit.SECONDS));
      assertNotEquals(Codes.OK, MkNative.mk_runtime_set_num_threads(-1));
    } finally {
      other.shutdownNow();
      MkNative.mk_runtime_set_num_threads(before);
    }
    assertEquals(before, MkNative.mk_runtime_num_threads());
  }

  @Test
  void scopesAndGradModeBelongToTheirThread() throws Exception {
    try (Scope mine = Scope.open(); var ng = Autograd.noGrad()) {
      Thread t = new Thread(() -> {
        assertNull(Scope.current());
        assertTrue(org.metakernels.autograd.GradMode.isEnabled(), "noGrad on another thread does not apply here");
      });
      final Throwable[] failure = new Throwable[1];
      t.setUncaughtExceptionHandler((th, e) -> failure[0] = e);
      t.start();
      t.join();
      assertNull(failure[0]);
      // a scope closed from another thread is refused
      Thread closer = new Thread(() -> assertThrows(IllegalStateException.class, mine::close));
      closer.setUncaughtExceptionHandler((th, e) -> failure[0] = e);
      closer.start();
      closer.join();
      assertNull(failure[0]);
      assertFalse(mine.isClosed());
    }
  }
}
