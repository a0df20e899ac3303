package org.metakernels.graph;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.GATConv;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

/**
 * The fused GAT backward (issue 15: mk_graph_gat_backward, used by gatAggregate's backward when
 * the gradient is taken without createGraph) against the composed backward on the graph kernels
 * (the path taken with createGraph, itself checked to order 2 by GatTest and GradCheckOpsTest): in
 * F64 to ~1e-12 on graphs with isolated nodes, self-loops, duplicate edges and one giant row, for
 * several heads and widths, both branches of leakyReLU, every subset of inputs requiring grad and
 * a non-contiguous incoming gradient; bitwise determinism across thread counts in F64; GATConv's
 * parameter gradients the same either way; and the C entry point's own validation.
 */
class GatBackwardTest {
  static final Device CPU = Device.CPU;

  /** Gradients of gatAggregate for dOut: fused (createGraph false) or composed (true), as arrays. */
  static List<double[]> grads(
      Graph g, Tensor x, Tensor ss, Tensor sd, double slope, Tensor dOut, boolean composed, boolean[] want) {
    List<Tensor> leaves = new ArrayList<>();
    Tensor[] in = {x, ss, sd};
    for (int i = 0; i < 3; i++) in[i] = want[i] ? in[i].detach().requiresGrad(true) : in[i].detach();
    for (int i = 0; i < 3; i++)
      if (want[i]) leaves.add(in[i]);
    Tensor out = MessagePassing.gatAggregate(g, in[0], in[1], in[2], slope);
    List<double[]> r = new ArrayList<>();
    for (Tensor gr : Autograd.grad(List.of(out), leaves, List.of(dOut), composed)) r.add(gr.detach().toDoubleArray());
    return r;
  }

  static Stream<Arguments> cases() {
    List<Arguments> r = new ArrayList<>();
    int[][] shapes = {{1, 1}, {1, 7}, {2, 3}, {4, 16}, {8, 8}, {3, 9}, {5, 2}};
    for (int[] sh : shapes)
      for (double slope : new double[] {0.2, 0.0, 1.5}) r.add(Arguments.of(sh[0], sh[1], slope));
    return r.stream();
  }

  @ParameterizedTest(name = "heads {0} width {1} slope {2}")
  @MethodSource("cases")
  void fusedEqualsComposedInF64(int heads, int width, double slope) {
    GraphFixtures.Edges in = GraphFixtures.messy(41 + heads * 7 + width, 80, 700);
    int n = in.n();
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), n)) {
      long seed = heads * 100L + width;
      Tensor x = Tensor.randn(new long[] {n, heads, width}, DType.F64, CPU, seed);
      Tensor ss = Tensor.randn(new long[] {n, heads}, DType.F64, CPU, seed + 1).mul(2.0);
      Tensor sd = Tensor.randn(new long[] {n, heads}, DType.F64, CPU, seed + 2).mul(2.0);
      Tensor dOut = Tensor.randn(new long[] {n, heads, width}, DType.F64, CPU, seed + 3);
      boolean[][] subsets = {{true, true, true}, {true, false, false}, {false, true, false}, {false, false, true},
          {false, true, true}, {true, true, false}};
      for (boolean[] want : subsets) {
        List<double[]> fused = grads(g, x, ss, sd, slope, dOut, false, want);
        List<double[]> composed = grads(g, x, ss, sd, slope, dOut, true, want);
        assertEquals(composed.size(), fused.size());
        for (int i = 0; i < fused.size(); i++)
          Ref.assertClose(fused.get(i), composed.get(i), 1e-12, 1e-12,
              "gradient " + i + " of subset " + java.util.Arrays.toString(want));
      }
      // the gradients are not all zero (the comparison is not vacuous)
      List<double[]> all = grads(g, x, ss, sd, slope, dOut, false, new boolean[] {true, true, true});
      for (double[] a : all) assertTrue(java.util.Arrays.stream(a).anyMatch(v -> Math.abs(v) > 1e-3));
    }
  }

  @Test
  void fusedEqualsComposedInF32AndWithANonContiguousGradient() {
    GraphFixtures.Edges in = GraphFixtures.messy(77, 300, 3000);
    int n = in.n();
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), n)) {
      Tensor x = Tensor.randn(new long[] {n, 4, 6}, DType.F32, CPU, 1L);
      Tensor ss = Tensor.randn(new long[] {n, 4}, DType.F32, CPU, 2L);
      Tensor sd = Tensor.randn(new long[] {n, 4}, DType.F32, CPU, 3L);
      // [n, 4, 6] as the transpose of a contiguous [n, 6, 4]
      Tensor dOut = Tensor.randn(new long[] {n, 6, 4}, DType.F32, CPU, 4L).transpose(1, 2);
      assertFalse(dOut.isContiguous());
      boolean[] all = {true, true, true};
      List<double[]> fused = grads(g, x, ss, sd, 0.2, dOut, false, all);
      List<double[]> composed = grads(g, x, ss, sd, 0.2, dOut, true, all);
      List<double[]> fusedContiguous = grads(g, x, ss, sd, 0.2, dOut.contiguous(), false, all);
      for (int i = 0; i < 3; i++) {
        Ref.assertClose(fused.get(i), composed.get(i), 2e-5, 2e-5, "F32 gradient " + i);
        assertArrayEquals(fusedContiguous.get(i), fused.get(i), 0.0, "F32 gradient " + i + ": layout");
      }
    }
  }

  static List<double[]> f64Everything(int threads) {
    int before = MkNative.mk_runtime_num_threads();
    MkNative.mk_runtime_set_num_threads(threads);
    int n = 20_000;
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(Graphs.rmat(n, 150_000, 15L), n)) {
      Tensor x = Tensor.randn(new long[] {n, 3, 5}, DType.F64, CPU, 16L);
      Tensor ss = Tensor.randn(new long[] {n, 3}, DType.F64, CPU, 17L);
      Tensor sd = Tensor.randn(new long[] {n, 3}, DType.F64, CPU, 18L);
      Tensor dOut = Tensor.randn(new long[] {n, 3, 5}, DType.F64, CPU, 19L);
      return grads(g, x, ss, sd, 0.2, dOut, false, new boolean[] {true, true, true});
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }

  /** F64, power-law graph: bitwise the same on 1, 2, 3, 8 and 16 threads and from run to run. */
  @Test
  void bitwiseTheSameOnAnyThreadCount() {
    List<double[]> ref = f64Everything(1);
    for (int threads : new int[] {2, 3, 8, 16, 2}) {
      List<double[]> got = f64Everything(threads);
      for (int i = 0; i < ref.size(); i++)
        assertArrayEquals(ref.get(i), got.get(i), 0.0, "gradient " + i + " on " + threads + " threads");
    }
  }

  /**
   * Every subset of inputs requiring grad, F32, on a power-law graph whose rows and columns take
   * all three paths (light, hub taken whole, hub split across threads: 4, 8 and 16 threads split
   * above 1031, 515 and 257 non-zeros here): bitwise the 1-thread gradients of all three inputs.
   * Until 2026-12-05 the sSrc-only subset wrote its split rows' per-edge terms through a zero-size
   * buffer into the other threads' slots (a race: wrong sSrc gradients at a different element each
   * run, seen first as a GPU twin "failure" on a 16-core host).
   */
  @Test
  void everySubsetBitwiseOnEveryThreadCount() {
    int before = MkNative.mk_runtime_num_threads();
    int n = 3000;
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(Graphs.rmat(n, 30_000, 4L), n)) {
      Tensor x = Tensor.randn(new long[] {n, 4, 16}, DType.F32, CPU, 17L);
      Tensor ss = Tensor.randn(new long[] {n, 4}, DType.F32, CPU, 18L);
      Tensor sd = Tensor.randn(new long[] {n, 4}, DType.F32, CPU, 19L);
      Tensor dOut = Tensor.randn(new long[] {n, 4, 16}, DType.F32, CPU, 20L);
      MkNative.mk_runtime_set_num_threads(1);
      List<double[]> ref = grads(g, x, ss, sd, 0.2, dOut, false, new boolean[] {true, true, true});
      boolean[][] subsets = {{true, false, false}, {false, true, false}, {false, false, true}, {false, true, true},
          {true, true, false}, {true, false, true}, {true, true, true}};
      for (int threads : new int[] {4, 8, 16, 4, 8})
        for (boolean[] want : subsets) {
          MkNative.mk_runtime_set_num_threads(threads);
          List<double[]> got = grads(g, x, ss, sd, 0.2, dOut, false, want);
          int k = 0;
          for (int i = 0; i < 3; i++)
            if (want[i])
              assertArrayEquals(ref.get(i), got.get(k++), 0.0, "gradient " + i + " of subset "
                  + java.util.Arrays.toString(want) + " on " + threads + " threads");
        }
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }

  /** GATConv's parameter and input gradients: the fused backward (no createGraph) as the composed one. */
  @Test
  void gatConvGradientsTheSameEitherWay() {
    GraphFixtures.Edges in = GraphFixtures.messy(91, 50, 300);
    int n = in.n();
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), n);
         GATConv conv = new GATConv(6, 5, 3, DType.F64, CPU, 13L)) {
      Tensor x = Tensor.randn(new long[] {n, 6}, DType.F64, CPU, 14L).requiresGrad(true);
      List<Tensor> leaves = new ArrayList<>(conv.parameters());
      leaves.add(x);
      Tensor out = conv.forward(g, x);
      Tensor w = Tensor.randn(out.shape(), DType.F64, CPU, 15L);
      List<Tensor> fused = Autograd.grad(out.mul(w).sum(), leaves, false);
      Tensor out2 = conv.forward(g, x);
      List<Tensor> composed = Autograd.grad(out2.mul(w).sum(), leaves, true);
      for (int i = 0; i < leaves.size(); i++)
        Ref.assertClose(fused.get(i).toDoubleArray(), composed.get(i).detach().toDoubleArray(), 1e-12, 1e-12,
            "GATConv gradient " + i);
    }
  }

  /**
   * Without createGraph the backward holds no E × H buffer: the host allocator's peak during the
   * backward stays below the bytes of one [E, H] array (the composed form, taken with createGraph,
   * allocates several).
   */
  @Test
  void theBackwardAllocatesNoEdgeByHeadBuffer() {
    int n = 2000, heads = 4, width = 2;
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(Graphs.rmat(n, 200_000, 21L), n)) {
      long eh = g.numEdges() * heads * 8L;
      Tensor x = Tensor.randn(new long[] {n, heads, width}, DType.F64, CPU, 22L).requiresGrad(true);
      Tensor ss = Tensor.randn(new long[] {n, heads}, DType.F64, CPU, 23L).requiresGrad(true);
      Tensor sd = Tensor.randn(new long[] {n, heads}, DType.F64, CPU, 24L).requiresGrad(true);
      Tensor dOut = Tensor.randn(new long[] {n, heads, width}, DType.F64, CPU, 25L);
      long fused = backwardPeak(g, x, ss, sd, dOut, false), composed = backwardPeak(g, x, ss, sd, dOut, true);
      assertTrue(fused < eh / 2, "fused backward peak " + fused + " B, one [E, H] array " + eh + " B");
      assertTrue(composed > eh, "composed backward peak " + composed + " B (the measure sees E x H buffers)");
      // on many threads too: more rows are split across threads there (until 2026-12-05 their
      // per-edge terms were buffered: 1.03 [E, H] arrays on 16 threads, 2.02 on 64)
      int before = MkNative.mk_runtime_num_threads();
      try {
        for (int threads : new int[] {16, 64}) {
          MkNative.mk_runtime_set_num_threads(threads);
          long p = backwardPeak(g, x, ss, sd, dOut, false);
          assertTrue(p < eh / 2, "fused backward peak on " + threads + " threads " + p + " B, one [E, H] array "
              + eh + " B");
        }
      } finally {
        MkNative.mk_runtime_set_num_threads(before);
      }
    }
  }

  /** Host bytes a backward of gatAggregate (all three inputs) allocates at its peak beyond those live before it. */
  static long backwardPeak(Graph g, Tensor x, Tensor ss, Tensor sd, Tensor dOut, boolean composed) {
    try (Scope q = Scope.open()) {
      Tensor out = MessagePassing.gatAggregate(g, x, ss, sd, 0.2);
      long live = MkNative.mk_host_live_bytes();
      MkNative.mk_host_reset_peak_bytes();
      Autograd.grad(List.of(out), List.of(x, ss, sd), List.of(dOut), composed);
      return MkNative.mk_host_peak_bytes() - live;
    }
  }

  static void rejected(int status, String what, String... parts) {
    GatTest.rejected(status, what, parts);
  }

  /** The C ABI's own checks of mk_graph_gat_backward; nothing is written when it refuses. */
  @Test
  void nativeValidation() {
    try (Scope s = Scope.open()) {
      // edges 1 -> 0, 0 -> 1, 1 -> 1: CSR by destination, CSC by source
      Tensor ptr = Tensor.ofIndices(new long[] {0, 1, 3}, 3);
      Tensor col = Tensor.ofIndices(new long[] {1, 0, 1}, 3);
      Tensor cptr = Tensor.ofIndices(new long[] {0, 1, 3}, 3);
      Tensor crow = Tensor.ofIndices(new long[] {1, 0, 1}, 3);
      Tensor x = Tensor.ones(new long[] {2, 2, 1}, DType.F64, CPU);
      Tensor sn = Tensor.ones(new long[] {2, 2}, DType.F64, CPU);
      Tensor lse = Tensor.zeros(new long[] {2, 2}, DType.F64, CPU);
      Tensor gx = Tensor.zeros(new long[] {2, 2, 1}, DType.F64, CPU);
      Tensor gs = Tensor.zeros(new long[] {2, 2}, DType.F64, CPU);
      Tensor rd = Tensor.zeros(new long[] {2, 2}, DType.F64, CPU);
      String op = "mk_graph_gat_backward";
      long p = ptr.address(op), c = col.address(op), cp = cptr.address(op), cr = crow.address(op);
      long xa = x.address(op), sa = sn.address(op), la = lse.address(op);
      long gxa = gx.address(op), gsa = gs.address(op), rda = rd.address(op);
      rejected(MkNative.mk_graph_gat_backward(CPU.code, DType.F64.code, 2, 2, 3, 2, 0, 0.2, p, c, cp, cr, xa, sa, sa,
                   la, xa, gxa, gsa, gsa, rda, 0L),
          "width 0", op, "width must be >= 1", "heads = 2");
      rejected(MkNative.mk_graph_gat_backward(CPU.code, DType.F64.code, 2, 2, 3, 2, 1, Double.NaN, p, c, cp, cr, xa, sa,
                   sa, la, xa, gxa, gsa, gsa, rda, 0L),
          "NaN slope", op, "negative_slope");
      rejected(MkNative.mk_graph_gat_backward(CPU.code, DType.F64.code, 2, 3, 3, 2, 1, 0.2, p, c, cp, cr, xa, sa, sa,
                   la, xa, gxa, gsa, gsa, rda, 0L),
          "rows != cols", op, "rows and cols must be equal");
      Tensor badRow = Tensor.ofIndices(new long[] {1, 0, 5}, 3);
      rejected(MkNative.mk_graph_gat_backward(CPU.code, DType.F64.code, 2, 2, 3, 2, 1, 0.2, p, c, cp,
                   badRow.address(op), xa, sa, sa, la, xa, gxa, gsa, gsa, rda, 0L),
          "CSC row out of range", op, "not a CSC");
      Tensor badCptr = Tensor.ofIndices(new long[] {0, 3, 1}, 3);
      rejected(MkNative.mk_graph_gat_backward(CPU.code, DType.F64.code, 2, 2, 3, 2, 1, 0.2, p, c, badCptr.address(op),
                   cr, xa, sa, sa, la, xa, gxa, gsa, gsa, rda, 0L),
          "bad col_ptr", op, "not a CSC");
      rejected(MkNative.mk_graph_gat_backward(CPU.code, DType.F64.code, 2, 2, 3, 2, 1, 0.2, p, c, 0L, cr, xa, sa, sa,
                   la, xa, gxa, gsa, gsa, rda, 0L),
          "null col_ptr", op, "col_ptr");
      rejected(MkNative.mk_graph_gat_backward(CPU.code, DType.F64.code, 2, 2, 3, 2, 1, 0.2, p, c, cp, cr, xa, sa, sa,
                   la, xa, gxa, gsa, 0L, 0L, 0L),
          "no row_dot", op, "row_dot");
      rejected(MkNative.mk_graph_gat_backward(CPU.code, DType.F64.code, 2, 2, 3, 2, 1, 0.2, p, c, cp, cr, xa, sa, sa,
                   0L, xa, gxa, gsa, gsa, rda, 0L),
          "no lse", op, "lse");
      rejected(MkNative.mk_graph_gat_backward(CPU.code, DType.I64.code, 2, 2, 3, 2, 1, 0.2, p, c, cp, cr, xa, sa, sa,
                   la, xa, gxa, gsa, gsa, rda, 0L),
          "dtype", op);
      Tensor badCol = Tensor.ofIndices(new long[] {1, 0, 7}, 3);
      rejected(MkNative.mk_graph_gat_backward(CPU.code, DType.F64.code, 2, 2, 3, 2, 1, 0.2, p, badCol.address(op), cp,
                   cr, xa, sa, sa, la, xa, gxa, gsa, gsa, rda, 0L),
          "CSR column out of range", op, "outside [0, 2)");
      assertArrayEquals(new double[4], gx.toDoubleArray(), "nothing written");
      assertArrayEquals(new double[4], gs.toDoubleArray(), "nothing written");
      assertArrayEquals(new double[4], rd.toDoubleArray(), "nothing written");
      // and a valid call: all scores 1 + 1 = 2, lse of each row log(deg) + 2; gout = x = 1
      Tensor lseOk = Tensor.of(new double[] {2, 2, 2 + Math.log(2), 2 + Math.log(2)}, 2, 2);
      assertEquals(0,
          MkNative.mk_graph_gat_backward(CPU.code, DType.F64.code, 2, 2, 3, 2, 1, 0.2, p, c, cp, cr, xa, sa, sa,
              lseOk.address(op), xa, gxa, gsa, 0L, rda, 0L));
      // gx[j] = Σ over j's out-edges of α: node 0 -> 1 (α 1/2); node 1 -> 0 (α 1) and 1 -> 1 (α 1/2)
      Ref.assertClose(gx.toDoubleArray(), new double[] {0.5, 0.5, 1.5, 1.5}, 1e-15, 1e-15, "gx");
      Ref.assertClose(rd.toDoubleArray(), new double[] {1, 1, 1, 1}, 1e-15, 1e-15, "row_dot");
      Ref.assertClose(gs.toDoubleArray(), new double[4], 1e-15, 0, "gs_src (all messages equal)");
    }
  }

  /**
   * Hub rows and columns (issue 15: segments of 128 non-zeros): rows of 127 to 385 in-edges and one
   * of 10^4, F64, the fused backward against the composed one (edge softmax and aggregation), every
   * subset of the gradients.
   */
  @Test
  void fusedEqualsComposedOnHubRows() {
    GraphFixtures.Edges in = GraphFixtures.hubs(58, 150, 10_000);
    int n = in.n(), heads = 2, width = 5;
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), n)) {
      Tensor x = Tensor.randn(new long[] {n, heads, width}, DType.F64, CPU, 61L);
      Tensor ss = Tensor.randn(new long[] {n, heads}, DType.F64, CPU, 62L).mul(2.0);
      Tensor sd = Tensor.randn(new long[] {n, heads}, DType.F64, CPU, 63L).mul(2.0);
      Tensor dOut = Tensor.randn(new long[] {n, heads, width}, DType.F64, CPU, 64L);
      boolean[][] subsets = {{true, true, true}, {true, false, false}, {false, true, false}, {false, false, true}};
      for (boolean[] want : subsets) {
        List<double[]> fused = grads(g, x, ss, sd, 0.2, dOut, false, want);
        List<double[]> composed = grads(g, x, ss, sd, 0.2, dOut, true, want);
        assertEquals(composed.size(), fused.size());
        for (int i = 0; i < fused.size(); i++)
          Ref.assertClose(fused.get(i), composed.get(i), 1e-12, 1e-11,
              "hub gradient " + i + " of subset " + java.util.Arrays.toString(want));
      }
    }
  }
}
