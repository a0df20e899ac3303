package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.graph.Graph;
import org.metakernels.graph.Graphs;
import org.metakernels.graph.MessagePassing;
import org.metakernels.graph.Reduce;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

/**
 * The CUDA graph kernels against their CPU twins, through the Java API: spmm is the same
 * arithmetic in the same order on both devices, so its results must be bitwise equal; sddmm and
 * the gradients (which contain sddmm) agree to rounding; two GPU runs are bitwise equal. Runs only
 * where a CUDA device exists.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaGraphTwinTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;

  /** A power-law graph with hubs, isolated nodes, self-loops and duplicates. */
  static Graph rmat(Scope s) {
    return Graph.fromEdges(Graphs.rmat(3000, 30_000, 3L), 3000).ownedBy(s);
  }

  @ParameterizedTest
  @EnumSource(Reduce.class)
  void aggregateIsBitwiseTheCpuTwin(Reduce r) {
    try (Scope s = Scope.open()) {
      Graph g = rmat(s);
      Graph gg = g.to(GPU).ownedBy(s);
      for (DType t : new DType[] {DType.F32, DType.F64})
        for (int width : new int[] {1, 3, 16, 37, 64, 300}) {
          Tensor x = Tensor.randn(new long[] {3000, width}, t, CPU, width);
          Tensor w = Tensor.randn(new long[] {30_000}, t, CPU, width + 1);
          for (Tensor wt : new Tensor[] {null, w}) {
            Tensor cpu = MessagePassing.aggregate(g, x, wt, r);
            Tensor gpu = MessagePassing.aggregate(gg, x.to(GPU), wt == null ? null : wt.to(GPU), r);
            assertEquals(GPU, gpu.device());
            assertArrayEquals(cpu.toDoubleArray(), gpu.to(CPU).toDoubleArray(), 0.0,
                r + " " + t + " width " + width + (wt == null ? "" : " weighted"));
          }
        }
      // an x whose rows start off the 16-byte grid (the scalar-load path), and heads
      Tensor xs = Tensor.randn(new long[] {3000, 9}, DType.F32, CPU, 5L).narrow(1, 1, 8);
      assertArrayEquals(MessagePassing.aggregate(g, xs, r).toDoubleArray(),
          MessagePassing.aggregate(gg, xs.to(GPU), r).to(CPU).toDoubleArray(), 0.0, "strided x");
      Tensor xh = Tensor.randn(new long[] {3000, 4, 8}, DType.F32, CPU, 6L);
      Tensor wh = Tensor.randn(new long[] {30_000, 4}, DType.F32, CPU, 7L);
      assertArrayEquals(MessagePassing.aggregate(g, xh, wh, r).toDoubleArray(),
          MessagePassing.aggregate(gg, xh.to(GPU), wh.to(GPU), r).to(CPU).toDoubleArray(), 0.0, "heads");
    }
  }

  @Test
  void sddmmAndGradientsMatchTheCpu() {
    try (Scope s = Scope.open()) {
      Graph g = rmat(s);
      Graph gg = g.to(GPU).ownedBy(s);
      for (int width : new int[] {1, 16, 37, 128}) {
        Tensor a = Tensor.randn(new long[] {3000, width}, DType.F64, CPU, 11L);
        Tensor b = Tensor.randn(new long[] {3000, width}, DType.F64, CPU, 12L);
        Ref.assertClose(MessagePassing.sddmm(gg, a.to(GPU), b.to(GPU)).to(CPU).toDoubleArray(),
            MessagePassing.sddmm(g, a, b).toDoubleArray(), 1e-12, 1e-12, "sddmm width " + width);
      }
      for (Reduce r : Reduce.values()) {
        Tensor x = Tensor.randn(new long[] {3000, 24}, DType.F64, CPU, 13L).requiresGrad(true);
        Tensor w = Tensor.randn(new long[] {30_000}, DType.F64, CPU, 14L).requiresGrad(true);
        Tensor xg = x.detach().to(GPU).requiresGrad(true), wg = w.detach().to(GPU).requiresGrad(true);
        Tensor dOut = Tensor.randn(new long[] {3000, 24}, DType.F64, CPU, 15L);
        List<Tensor> cpu =
            Autograd.grad(List.of(MessagePassing.aggregate(g, x, w, r)), List.of(x, w), List.of(dOut), false);
        List<Tensor> gpu = Autograd.grad(
            List.of(MessagePassing.aggregate(gg, xg, wg, r)), List.of(xg, wg), List.of(dOut.to(GPU)), false);
        for (int i = 0; i < 2; i++)
          Ref.assertClose(
              gpu.get(i).to(CPU).toDoubleArray(), cpu.get(i).toDoubleArray(), 1e-11, 1e-11, r + " grad " + i);
      }
    }
  }

  @Test
  void twoGpuRunsAreBitwiseEqual() {
    try (Scope s = Scope.open()) {
      Graph gg = rmat(s).to(GPU).ownedBy(s);
      Tensor x = Tensor.randn(new long[] {3000, 64}, DType.F32, GPU, 21L).requiresGrad(true);
      Tensor w = Tensor.randn(new long[] {30_000}, DType.F32, GPU, 22L).requiresGrad(true);
      float[][] first = null;
      for (int run = 0; run < 2; run++) {
        Tensor out = MessagePassing.aggregate(gg, x, w, Reduce.MEAN);
        List<Tensor> gr = Autograd.grad(List.of(out), List.of(x, w), List.of(out), false);
        float[][] now = {
            out.to(CPU).toFloatArray(), gr.get(0).to(CPU).toFloatArray(), gr.get(1).to(CPU).toFloatArray()};
        if (first == null)
          first = now;
        else
          for (int i = 0; i < 3; i++) assertArrayEquals(first[i], now[i], "result " + i);
      }
    }
  }

  @Test
  void deviceMismatchIsRefused() {
    try (Scope s = Scope.open()) {
      Graph g = rmat(s);
      Tensor xg = Tensor.zeros(new long[] {3000, 4}, DType.F32, GPU);
      MetakernelsException e =
          assertThrows(MetakernelsException.class, () -> MessagePassing.aggregate(g, xg, Reduce.SUM));
      assertTrue(
          e.getMessage().contains("device mismatch") && e.getMessage().contains("F32[3000, 4]@CUDA"), e.getMessage());
      Graph gg = g.to(GPU).ownedBy(s);
      Tensor wc = Tensor.zeros(new long[] {30_000}, DType.F32, CPU);
      e = assertThrows(MetakernelsException.class, () -> MessagePassing.aggregate(gg, xg, wc, Reduce.SUM));
      assertTrue(e.getMessage().contains("F32[30000]"), e.getMessage());
    }
  }

  /**
   * Hub rows (issue 15): a node receiving 100,000 edges and one sending 100,000 (a hub of the CSC
   * pass of the backward), rows of 127, 128, 129 and 257 edges, over an R-MAT graph. CUDA splits
   * the rows longer than 128 edges across lane groups and must stay bitwise equal to the CPU for
   * every reduction, forward, and for the gradient of x of the sum (a spmm over the CSC); two GPU
   * runs are bitwise equal.
   */
  @ParameterizedTest
  @EnumSource(Reduce.class)
  void hubRowsAreBitwiseTheCpuTwin(Reduce r) {
    int n = 3000, rmatEdges = 30_000;
    long[] rm = Graphs.rmat(n, rmatEdges, 9L).toLongArray(); // [2, E]: sources, then destinations
    java.util.Random rnd = new java.util.Random(10L);
    java.util.List<long[]> edges = new java.util.ArrayList<>();
    for (int i = 0; i < rmatEdges; i++) edges.add(new long[] {rm[i], rm[rmatEdges + i]});
    for (int i = 0; i < 100_000; i++) edges.add(new long[] {rnd.nextInt(n), 7});
    for (int i = 0; i < 100_000; i++) edges.add(new long[] {11, rnd.nextInt(n)});
    int[][] exact = {{20, 127}, {21, 128}, {22, 129}, {23, 257}};
    for (int[] d : exact)
      for (int i = 0; i < d[1]; i++) edges.add(new long[] {rnd.nextInt(n), d[0]});
    long[] src = new long[edges.size()], dst = new long[edges.size()];
    for (int i = 0; i < src.length; i++) {
      src[i] = edges.get(i)[0];
      dst[i] = edges.get(i)[1];
    }
    try (Scope s = Scope.open()) {
      Graph g = Graph.fromEdges(src, dst, n).ownedBy(s);
      Graph gg = g.to(GPU).ownedBy(s);
      for (DType t : new DType[] {DType.F32, DType.F64})
        for (int width : new int[] {1, 16, 64, 300}) {
          Tensor x = Tensor.randn(new long[] {n, width}, t, CPU, width).requiresGrad(true);
          Tensor w = Tensor.randn(new long[] {src.length}, t, CPU, width + 1L);
          Tensor xg = x.detach().to(GPU).requiresGrad(true);
          Tensor cpu = MessagePassing.aggregate(g, x, w, r);
          Tensor gpu = MessagePassing.aggregate(gg, xg, w.to(GPU), r);
          String what = r + " " + t + " width " + width + " hub rows";
          assertArrayEquals(cpu.toDoubleArray(), gpu.to(CPU).toDoubleArray(), 0.0, what);
          assertArrayEquals(gpu.to(CPU).toDoubleArray(),
              MessagePassing.aggregate(gg, xg, w.to(GPU), r).to(CPU).toDoubleArray(), 0.0, what + " second GPU run");
          if (r == Reduce.SUM) {
            Tensor dOut = Tensor.randn(new long[] {n, width}, t, CPU, 3L * width);
            Tensor dxCpu = Autograd.grad(List.of(cpu), List.of(x), List.of(dOut), false).get(0);
            Tensor dxGpu = Autograd.grad(List.of(gpu), List.of(xg), List.of(dOut.to(GPU)), false).get(0);
            assertArrayEquals(dxCpu.toDoubleArray(), dxGpu.to(CPU).toDoubleArray(), 0.0, what + " grad x");
          }
        }
    }
  }
}
