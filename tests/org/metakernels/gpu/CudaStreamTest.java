package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.Attention;
import org.metakernels.runtime.CudaEvent;
import org.metakernels.runtime.CudaRuntime;
import org.metakernels.runtime.CudaStream;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Streams on a real device: tensors record the stream of their scope, work on two streams from
 * two threads at once gives bitwise the default stream's results, and a stress of frees on one
 * stream and allocations on another never hands out a block another stream's pending work still
 * reads. Runs only where a CUDA device exists.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaStreamTest {
  static final Device GPU = Device.CUDA;

  /**
   * A chain of the library's own kernels, deterministic by design: elementwise, reductions,
   * softmax attention and its backward (the gradient in x).
   */
  static double[] work(Tensor x) {
    try (Scope s = Scope.open()) {
      Tensor q = x.tanh().reshape(2, 4, 256, 32);
      Tensor out = Attention.softmax(q, q.mul(0.5), q);
      Tensor loss = out.square().sum().add(x.exp().mean());
      Tensor g = Autograd.grad(loss, List.of(x), false).get(0);
      return g.toDoubleArray();
    }
  }

  /** A cuBLAS product (bitwise only while one stream is active: see the test below). */
  static double[] product(Tensor x, Tensor w) {
    try (Scope s = Scope.open()) {
      return x.matmul(w).toDoubleArray();
    }
  }

  @Test
  void tensorsRecordTheStreamOfTheirScope() {
    // not a try-with-resources resource: the test closes s itself (below), and a second close is
    // refused by design (CudaStream.close); the finally only closes it when an assertion failed first
    CudaStream s = CudaRuntime.get().newStream();
    try (Scope scope = Scope.open()) {
      Tensor outside = Tensor.randn(new long[] {64}, DType.F32, GPU, 1L);
      assertEquals(0L, outside.stream());
      Tensor inside;
      try (CudaRuntime.StreamScope use = CudaRuntime.useStream(s)) {
        s.waitFor(CudaStream.defaultStream());
        inside = outside.exp();
        assertEquals(s.handle(), inside.stream(), "made in the scope: the scope's stream");
        assertEquals(s.handle(), inside.launchStream());
        assertEquals(s.handle(), outside.launchStream(), "ops on older tensors launch on the current stream too");
        assertEquals(0L, outside.stream(), "but their memory stays the default stream's");
      }
      assertEquals(0L, inside.launchStream());
      assertArrayEquals(outside.exp().toDoubleArray(), inside.toDoubleArray(), 0.0, "the host copy waited for s");
      s.synchronize();
      assertTrue(s.query());
      try (CudaRuntime.StreamScope use = CudaRuntime.useStream(s)) {
        assertThrows(IllegalStateException.class, s::close, "current on this thread");
      }
      s.close();
      assertEquals(0L, inside.stream(), "a closed stream's memory belongs to the default stream");
      assertEquals(64, inside.toDoubleArray().length, "and stays readable");
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> CudaRuntime.useStream(s));
      assertTrue(e.getMessage().contains("closed"), e.getMessage());
    } finally {
      if (!s.isClosed()) s.close();
    }
  }

  @Test
  void twoStreamsAtOnceGiveTheDefaultStreamsResultBitwise() throws Exception {
    try (Scope scope = Scope.open()) {
      Tensor x = Tensor.randn(new long[] {512, 128}, DType.F32, GPU, 7L).requiresGrad(true);
      Tensor a = Tensor.randn(new long[] {512, 256}, DType.F32, GPU, 8L);
      Tensor w = Tensor.randn(new long[] {256, 64}, DType.F32, GPU, 9L);
      CudaRuntime.get().synchronize();
      double[] reference = work(x);
      double[] referenceProduct = product(a, w);
      ExecutorService pool = Executors.newFixedThreadPool(2);
      try (CudaStream s1 = CudaRuntime.get().newStream(); CudaStream s2 = CudaRuntime.get().newStream()) {
        List<Future<List<double[][]>>> runs = new ArrayList<>();
        for (CudaStream s : new CudaStream[] {s1, s2}) {
          Callable<List<double[][]>> job = () -> {
            List<double[][]> out = new ArrayList<>();
            try (CudaRuntime.StreamScope use = CudaRuntime.useStream(s)) {
              for (int i = 0; i < 20; i++) out.add(new double[][] {work(x), product(a, w)});
            }
            return out;
          };
          runs.add(pool.submit(job));
        }
        for (Future<List<double[][]>> f : runs)
          for (double[][] r : f.get()) {
            assertArrayEquals(reference, r[0], 0.0, "the library's kernels: same arithmetic, same order, bitwise");
            // cuBLAS promises bitwise results only while a single stream is active (it may pick
            // other algorithms for concurrent streams): equal to F32 rounding of a 256-term sum
            for (int i = 0; i < r[1].length; i++)
              assertEquals(referenceProduct[i], r[1][i], 1e-5 * (1 + Math.abs(referenceProduct[i])), "matmul " + i);
          }
      } finally {
        pool.shutdown();
      }
    }
  }

  @Test
  void crossStreamFreeAndReuseStress() {
    CudaRuntime rt = CudaRuntime.get();
    try (Scope scope = Scope.open(); CudaStream producer = rt.newStream(); CudaStream consumer = rt.newStream()) {
      Tensor base = Tensor.randn(new long[] {1 << 16}, DType.F32, GPU, 3L);
      double want;
      try (Scope s = Scope.open()) {
        want = base.mul(2).add(1).sum().item();
      }
      for (int i = 0; i < 200; i++) {
        Tensor y;
        try (Scope s = Scope.open()) {
          Tensor made;
          try (CudaRuntime.StreamScope use = CudaRuntime.useStream(producer)) {
            producer.waitFor(CudaStream.defaultStream());
            made = base.mul(2); // producer's memory
          }
          try (CudaRuntime.StreamScope use = CudaRuntime.useStream(consumer)) {
            consumer.waitFor(producer);
            // a long read of producer's tensor on consumer (recorded as a use) ...
            y = s.keep(made.add(1).sum());
          }
          // ... while the scope frees it: producer must not get the block back before consumer is done
        }
        try (Scope s = Scope.open(); CudaRuntime.StreamScope use = CudaRuntime.useStream(producer)) {
          // producer reallocates the same size class and overwrites it at once
          Tensor junk = Tensor.empty(new long[] {1 << 16}, DType.F32, GPU);
          junk.fillInPlace(Double.NaN);
        }
        consumer.synchronize();
        assertEquals(want, y.item(), Math.abs(want) * 1e-6, "round " + i);
        y.close();
      }
      rt.synchronize();
      assertEquals(0L, rt.allocator().pendingBytes(), "nothing pending after a device synchronisation");
      try (CudaEvent e = producer.record()) {
        e.synchronize();
        assertTrue(e.query());
      }
    }
  }
}
