package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.metakernels.autograd.Autograd;
import org.metakernels.graph.Graph;
import org.metakernels.graph.Graphs;
import org.metakernels.graph.MessagePassing;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

/**
 * The CUDA fused GAT backward (issue 15: mk_graph_gat_backward, taken by gatAggregate's backward
 * without createGraph) against its CPU twin through the Java API, F32 and F64, for lane groupings
 * of 1 to 32 lanes and widths below, at and above the dot's 8 lanes, every subset of inputs
 * requiring grad; two GPU runs bitwise equal; and the GPU's fused gradients against its composed
 * ones (createGraph). The GPU's exp rounds differently from the host's, so CPU and GPU agree to
 * rounding (bitwise only in the host emulator, tests/cuda-emu/gat_backward_emu_test.cpp). Runs
 * only where a CUDA device exists.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaGatBackwardTwinTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;
  static final int N = 3000, E = 30_000;

  static List<double[]> grads(Graph g, Tensor x, Tensor ss, Tensor sd, Tensor dOut, boolean[] want, boolean create) {
    Tensor[] in = {x, ss, sd};
    List<Tensor> leaves = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      in[i] = want[i] ? in[i].detach().requiresGrad(true) : in[i].detach();
      if (want[i]) leaves.add(in[i]);
    }
    Tensor out = MessagePassing.gatAggregate(g, in[0], in[1], in[2], 0.2);
    List<double[]> r = new ArrayList<>();
    for (Tensor t : Autograd.grad(List.of(out), leaves, List.of(dOut), create))
      r.add(t.detach().to(CPU).toDoubleArray());
    return r;
  }

  @Test
  void fusedBackwardMatchesTheCpuTwin() {
    try (Scope s = Scope.open()) {
      Graph g = Graph.fromEdges(Graphs.rmat(N, E, 4L), N).ownedBy(s);
      Graph gg = g.to(GPU).ownedBy(s);
      int[][] shapes = {{1, 1}, {4, 16}, {8, 8}, {3, 37}, {2, 131}, {40, 2}};
      boolean[][] subsets = {{true, true, true}, {true, false, false}, {false, true, false}, {false, false, true}};
      for (DType t : new DType[] {DType.F32, DType.F64})
        for (int[] sh : shapes) {
          int h = sh[0], w = sh[1];
          Tensor x = Tensor.randn(new long[] {N, h, w}, t, CPU, 1L + w);
          Tensor ss = Tensor.randn(new long[] {N, h}, t, CPU, 2L + w);
          Tensor sd = Tensor.randn(new long[] {N, h}, t, CPU, 3L + w);
          Tensor dOut = Tensor.randn(new long[] {N, h, w}, t, CPU, 4L + w);
          double tol = t == DType.F32 ? 5e-5 : 1e-11;
          for (boolean[] want : subsets) {
            String what = "gat backward " + t + " heads " + h + " width " + w + " " + java.util.Arrays.toString(want);
            List<double[]> cpu = grads(g, x, ss, sd, dOut, want, false);
            List<double[]> gpu = grads(gg, x.to(GPU), ss.to(GPU), sd.to(GPU), dOut.to(GPU), want, false);
            List<double[]> gpu2 = grads(gg, x.to(GPU), ss.to(GPU), sd.to(GPU), dOut.to(GPU), want, false);
            for (int i = 0; i < cpu.size(); i++) {
              Ref.assertClose(cpu.get(i), gpu.get(i), tol, tol, what + ": gradient " + i);
              assertArrayEquals(gpu.get(i), gpu2.get(i), 0.0, what + ": gradient " + i + ", two GPU runs");
            }
          }
          if (t == DType.F64) {
            boolean[] all = {true, true, true};
            List<double[]> fused = grads(gg, x.to(GPU), ss.to(GPU), sd.to(GPU), dOut.to(GPU), all, false);
            List<double[]> composed = grads(gg, x.to(GPU), ss.to(GPU), sd.to(GPU), dOut.to(GPU), all, true);
            for (int i = 0; i < 3; i++)
              Ref.assertClose(composed.get(i), fused.get(i), 1e-11, 1e-11, "GPU fused vs composed, gradient " + i);
          }
        }
    }
  }
}
