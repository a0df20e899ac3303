package org.metakernels.tensor;

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
