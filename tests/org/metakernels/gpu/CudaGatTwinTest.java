package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.metakernels.autograd.Autograd;
import org.metakernels.graph.Graph;
import org.metakernels.graph.Graphs;
import org.metakernels.graph.MessagePassing;
import org.metakernels.nn.GATConv;
import org.metakernels.nn.Weights;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

/**
 * The CUDA edge softmax and fused GAT aggregation against their CPU twins through the Java API.
 * Each output element is the twin's arithmetic in the twin's order, but the GPU's exp and log
 * round differently from the host's, so the two agree to rounding (bitwise only in the host
 * emulator, tests/cuda-emu/gat_emu_test.cpp); two GPU runs are bitwise equal. Runs only where a
 * CUDA device exists.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaGatTwinTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;
  static final int N = 3000, E = 30_000;

  static Graph rmat(Scope s) {
    return Graph.fromEdges(Graphs.rmat(N, E, 3L), N).ownedBy(s);
  }

  @Test
  void edgeSoftmaxMatchesTheCpuTwin() {
    try (Scope s = Scope.open()) {
      Graph g = rmat(s);
      Graph gg = g.to(GPU).ownedBy(s);
      for (DType t : new DType[] {DType.F32, DType.F64})
        for (int heads : new int[] {1, 3, 8, 40}) {
          Tensor sc = Tensor.randn(new long[] {E, heads}, t, CPU, heads).mul(6.0);
          Tensor cpu = MessagePassing.edgeSoftmax(g, sc);
          Tensor gpu = MessagePassing.edgeSoftmax(gg, sc.to(GPU));
          assertEquals(GPU, gpu.device());
          double tol = t == DType.F32 ? 2e-6 : 1e-14;
          Ref.assertClose(
              cpu.toDoubleArray(), gpu.to(CPU).toDoubleArray(), 1e-30, tol, "edge softmax " + t + " " + heads);
          assertArrayEquals(gpu.to(CPU).toDoubleArray(),
              MessagePassing.edgeSoftmax(gg, sc.to(GPU)).to(CPU).toDoubleArray(), 0.0, "two GPU runs");
        }
    }
  }

  @Test
  void gatForwardAndGradientsMatchTheCpuTwin() {
    try (Scope s = Scope.open()) {
      Graph g = rmat(s);
      Graph gg = g.to(GPU).ownedBy(s);
      int[][] shapes = {{1, 1}, {4, 16}, {8, 8}, {3, 37}, {2, 131}};
      for (DType t : new DType[] {DType.F32, DType.F64})
        for (int[] sh : shapes) {
          int h = sh[0], w = sh[1];
          Tensor x = Tensor.randn(new long[] {N, h, w}, t, CPU, 1L + w);
          Tensor ss = Tensor.randn(new long[] {N, h}, t, CPU, 2L + w);
          Tensor sd = Tensor.randn(new long[] {N, h}, t, CPU, 3L + w);
          Tensor cpu = MessagePassing.gatAggregate(g, x, ss, sd, 0.2);
          Tensor gpu = MessagePassing.gatAggregate(gg, x.to(GPU), ss.to(GPU), sd.to(GPU), 0.2);
          double tol = t == DType.F32 ? 2e-5 : 1e-12;
          String what = "gat " + t + " heads " + h + " width " + w;
          Ref.assertClose(cpu.toDoubleArray(), gpu.to(CPU).toDoubleArray(), tol, tol, what);
          assertArrayEquals(gpu.to(CPU).toDoubleArray(),
              MessagePassing.gatAggregate(gg, x.to(GPU), ss.to(GPU), sd.to(GPU), 0.2).to(CPU).toDoubleArray(), 0.0,
              what + ": two GPU runs");
        }
      Tensor x = Tensor.randn(new long[] {N, 4, 8}, DType.F64, CPU, 21L).requiresGrad(true);
      Tensor ss = Tensor.randn(new long[] {N, 4}, DType.F64, CPU, 22L).requiresGrad(true);
      Tensor sd = Tensor.randn(new long[] {N, 4}, DType.F64, CPU, 23L).requiresGrad(true);
      Tensor dOut = Tensor.randn(new long[] {N, 4, 8}, DType.F64, CPU, 24L);
      List<Tensor> gc = Autograd.grad(
          List.of(MessagePassing.gatAggregate(g, x, ss, sd, 0.2)), List.of(x, ss, sd), List.of(dOut), false);
      Tensor xg = x.detach().to(GPU).requiresGrad(true), sg = ss.detach().to(GPU).requiresGrad(true),
             dg = sd.detach().to(GPU).requiresGrad(true);
      List<Tensor> gg2 = Autograd.grad(
          List.of(MessagePassing.gatAggregate(gg, xg, sg, dg, 0.2)), List.of(xg, sg, dg), List.of(dOut.to(GPU)), false);
      for (int i = 0; i < 3; i++)
        Ref.assertClose(gc.get(i).toDoubleArray(), gg2.get(i).to(CPU).toDoubleArray(), 1e-11, 1e-11, "gradient " + i);
    }
  }

  @Test
  void gatConvRunsOnTheGpu() {
    try (Scope s = Scope.open(); GATConv conv = new GATConv(12, 8, 4, DType.F32, CPU, 5L)) {
      Graph g = rmat(s);
      Graph gg = g.to(GPU).ownedBy(s);
      Tensor x = Tensor.randn(new long[] {N, 12}, DType.F32, CPU, 9L);
      java.util.Map<String, Tensor> onGpu = new java.util.LinkedHashMap<>();
      conv.namedParameters().forEach((k, v) -> onGpu.put(k, v.detach().to(GPU)));
      Ref.assertClose(conv.forward(g, x).toDoubleArray(),
          conv.forward(gg, x.to(GPU), Weights.of(onGpu)).to(CPU).toDoubleArray(), 1e-4, 1e-4, "GATConv");
    }
  }

  /**
   * Hub rows and columns (issue 15): a star of 2·10^5 edges into node 0 and out of node 1, rows of
   * 127 to 385 edges, on an R-MAT graph; the split's segments and their combination are the CPU
   * twin's, so the two agree to the rounding of exp/log; two GPU runs are bitwise equal.
   */
  @Test
  void hubRowsMatchTheCpuTwin() {
    int n = 200_002, star = 200_000;
    try (Scope s = Scope.open()) {
      long[] rm = Graphs.rmat(n, 100_000, 31L).toLongArray();
      int e = rm.length / 2, extra = 127 + 128 + 129 + 256 + 257 + 385;
      int total = e + 2 * star + extra;
      long[] idx = new long[2 * total];
      int k = 0;
      for (int i = 0; i < e; i++, k++) {
        idx[k] = rm[i];
        idx[total + k] = rm[e + i];
      }
      for (int i = 0; i < star; i++, k += 2) {
        idx[k] = 2 + i; // 2 + i -> 0
        idx[total + k] = 0;
        idx[k + 1] = 1; // 1 -> 2 + i
        idx[total + k + 1] = 2 + i;
      }
      int dst = 2;
      for (int len : new int[] {127, 128, 129, 256, 257, 385}) {
        for (int i = 0; i < len; i++, k++) {
          idx[k] = (i * 7919L) % n;
          idx[total + k] = dst;
        }
        dst++;
      }
      Graph g = Graph.fromEdges(Tensor.ofIndices(idx, 2, total), n).ownedBy(s);
      Graph gg = g.to(GPU).ownedBy(s);
      for (DType t : new DType[] {DType.F32, DType.F64}) {
        double tol = t == DType.F32 ? 2e-5 : 1e-11;
        Tensor sc = Tensor.randn(new long[] {total, 2}, t, CPU, 40L).mul(6.0);
        Tensor yc = MessagePassing.edgeSoftmax(g, sc);
        Tensor yg = MessagePassing.edgeSoftmax(gg, sc.to(GPU));
        Ref.assertClose(yc.toDoubleArray(), yg.to(CPU).toDoubleArray(), 1e-30, tol, "hub edge softmax " + t);
        assertArrayEquals(yg.to(CPU).toDoubleArray(), MessagePassing.edgeSoftmax(gg, sc.to(GPU)).to(CPU).toDoubleArray(),
            0.0, "hub edge softmax " + t + ": two GPU runs");
        Tensor x = Tensor.randn(new long[] {n, 4, 16}, t, CPU, 41L).requiresGrad(true);
        Tensor ss = Tensor.randn(new long[] {n, 4}, t, CPU, 42L).mul(3.0).requiresGrad(true);
        Tensor sd = Tensor.randn(new long[] {n, 4}, t, CPU, 43L).requiresGrad(true);
        Tensor dOut = Tensor.randn(new long[] {n, 4, 16}, t, CPU, 44L);
        Tensor oc = MessagePassing.gatAggregate(g, x, ss, sd, 0.2);
        List<Tensor> gc = Autograd.grad(List.of(oc), List.of(x, ss, sd), List.of(dOut), false);
        Tensor xg = x.detach().to(GPU).requiresGrad(true), sg = ss.detach().to(GPU).requiresGrad(true),
               dg = sd.detach().to(GPU).requiresGrad(true);
        Tensor og = MessagePassing.gatAggregate(gg, xg, sg, dg, 0.2);
        List<Tensor> ggr = Autograd.grad(List.of(og), List.of(xg, sg, dg), List.of(dOut.to(GPU)), false);
        Ref.assertClose(oc.detach().toDoubleArray(), og.detach().to(CPU).toDoubleArray(), tol, tol, "hub gat " + t);
        for (int i = 0; i < 3; i++)
          Ref.assertClose(gc.get(i).toDoubleArray(), ggr.get(i).to(CPU).toDoubleArray(), tol * 10, tol * 10,
              "hub gat " + t + " gradient " + i);
        Tensor og2 = MessagePassing.gatAggregate(gg, xg.detach(), sg.detach(), dg.detach(), 0.2);
        assertArrayEquals(og.detach().to(CPU).toDoubleArray(), og2.to(CPU).toDoubleArray(), 0.0,
            "hub gat " + t + ": two GPU runs");
      }
    }
  }
}
