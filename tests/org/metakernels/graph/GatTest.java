package org.metakernels.graph;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.GradCheck;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Edge softmax and the fused GAT aggregation on the CPU: values against naive float64 loops over
 * the edges in input order (graphs with isolated nodes, self-loops, duplicate edges and a giant
 * row), the composed form (edge softmax + weighted sum) as a second reference, gradients of order
 * 2 by finite differences in x and both score vectors, bitwise determinism across runs and
 * thread counts, bad input, and the native validation of the two entry points.
 */
class GatTest {
  static final Device CPU = Device.CPU;
  static final GraphFixtures.Edges MESSY = GraphFixtures.messy(31, 60, 400);
  static final GraphFixtures.Edges SMALL = GraphFixtures.messy(33, 9, 24);
  /** 12 nodes, node 0 receiving 2·128 + 3 edges (duplicates among them), the others a few. */
  static final GraphFixtures.Edges HUB_ROW = hubRow();

  static GraphFixtures.Edges hubRow() {
    int n = 12, hub = 2 * 128 + 3;
    long[] src = new long[hub + 2 * (n - 1)], dst = new long[src.length];
    for (int i = 0; i < hub; i++) src[i] = (i * 7L) % n; // dst 0
    for (int i = 0; i < 2 * (n - 1); i++) {
      src[hub + i] = (i * 5L + 3) % n;
      dst[hub + i] = 1 + i / 2;
    }
    return new GraphFixtures.Edges(src, dst, n);
  }

  static Tensor tensor(double[] v, DType t, long... shape) {
    Tensor d = Tensor.of(v, shape);
    return t == DType.F64 ? d : d.castTo(t);
  }

  static double[] rounded(double[] v, DType t) {
    if (t == DType.F64) return v;
    double[] r = new double[v.length];
    for (int i = 0; i < v.length; i++) r[i] = (float) v[i];
    return r;
  }

  /** Input-order [E, H] values in graph order. */
  static double[] toGraphOrder(GraphFixtures.Edges g, double[] v, int heads) {
    int[] order = GraphFixtures.graphOrder(g);
    double[] r = new double[v.length];
    for (int k = 0; k < order.length; k++)
      for (int h = 0; h < heads; h++) r[k * heads + h] = v[order[k] * heads + h];
    return r;
  }

  /** Edge softmax over each destination's in-edges, float64, input order. */
  static double[] softmaxRef(GraphFixtures.Edges g, double[] s, int heads) {
    double[] m = new double[g.n() * heads], sum = new double[g.n() * heads], y = new double[s.length];
    java.util.Arrays.fill(m, Double.NEGATIVE_INFINITY);
    for (int e = 0; e < g.e(); e++)
      for (int h = 0; h < heads; h++) {
        int i = (int) g.dst()[e] * heads + h;
        m[i] = Math.max(m[i], s[e * heads + h]);
      }
    for (int e = 0; e < g.e(); e++)
      for (int h = 0; h < heads; h++)
        sum[(int) g.dst()[e] * heads + h] += Math.exp(s[e * heads + h] - m[(int) g.dst()[e] * heads + h]);
    for (int e = 0; e < g.e(); e++)
      for (int h = 0; h < heads; h++) {
        int i = (int) g.dst()[e] * heads + h;
        y[e * heads + h] = Math.exp(s[e * heads + h] - m[i]) / sum[i];
      }
    return y;
  }

  /** GAT in float64 by its definition: x [n, H, F], sSrc, sDst [n, H]; 0 for nodes without in-edges. */
  static double[] gatRef(
      GraphFixtures.Edges g, double[] x, double[] ss, double[] sd, int heads, int width, double slope) {
    double[] e = new double[g.e() * heads];
    for (int k = 0; k < g.e(); k++)
      for (int h = 0; h < heads; h++) {
        double z = ss[(int) g.src()[k] * heads + h] + sd[(int) g.dst()[k] * heads + h];
        e[k * heads + h] = z > 0 ? z : slope * z;
      }
    double[] alpha = softmaxRef(g, e, heads);
    int f = heads * width;
    double[] out = new double[g.n() * f];
    for (int k = 0; k < g.e(); k++)
      for (int h = 0; h < heads; h++)
        for (int d = 0; d < width; d++)
          out[(int) g.dst()[k] * f + h * width + d] += alpha[k * heads + h] * x[(int) g.src()[k] * f + h * width + d];
    return out;
  }

  static void close(double[] want, double[] got, double atol, double rtol, String what) {
    assertEquals(want.length, got.length, what + ": length");
    for (int i = 0; i < want.length; i++)
      if (!(Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i])))
        fail(what + ": element " + i + ": " + got[i] + " vs reference " + want[i]);
  }

  // ---- values ----------------------------------------------------------------------------------

  static Stream<Arguments> softmaxCases() {
    List<Arguments> r = new ArrayList<>();
    for (DType t : new DType[] {DType.F32, DType.F64})
      for (int heads : new int[] {0, 1, 3, 8}) r.add(Arguments.of(t, heads));
    return r.stream();
  }

  /** heads 0: scores of rank 1 [E]. Scores up to ±40: exp without the max subtracted would overflow F32. */
  @ParameterizedTest(name = "{0} heads={1}")
  @MethodSource("softmaxCases")
  void edgeSoftmaxMatchesTheNaiveReference(DType t, int heads) {
    GraphFixtures.Edges in = MESSY;
    int h = Math.max(heads, 1);
    Random rnd = new Random(41 + heads);
    double[] s = rounded(GraphFixtures.uniform(rnd, in.e() * h, -40, 40), t);
    try (Scope sc = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      double[] sg = toGraphOrder(in, s, h);
      Tensor scores = heads == 0 ? tensor(sg, t, in.e()) : tensor(sg, t, in.e(), h);
      Tensor y = MessagePassing.edgeSoftmax(g, scores);
      assertArrayEquals(scores.shape(), y.shape());
      double tol = t == DType.F64 ? 1e-13 : 2e-6;
      close(toGraphOrder(in, softmaxRef(in, s, h), h), y.castTo(DType.F64).toDoubleArray(), 1e-300, tol * 10,
          "edge softmax " + t + " heads " + heads);
      // each node's in-edges sum to 1 per head (nodes without in-edges: nothing)
      Tensor sums =
          MessagePassing.aggregate(g, Tensor.ones(new long[] {in.n(), h, 1}, t, CPU), y.reshape(in.e(), h), Reduce.SUM)
              .reshape(in.n(), h);
      double[] got = sums.castTo(DType.F64).toDoubleArray();
      double[] deg = g.inDegrees().castTo(DType.F64).toDoubleArray();
      for (int i = 0; i < in.n(); i++)
        for (int k = 0; k < h; k++) assertEquals(deg[i] > 0 ? 1.0 : 0.0, got[i * h + k], 1e-5, "node " + i);
    }
  }

  static Stream<Arguments> gatCases() {
    List<Arguments> r = new ArrayList<>();
    for (DType t : new DType[] {DType.F32, DType.F64}) {
      int[][] shapes = {{1, 1}, {1, 5}, {2, 16}, {4, 16}, {8, 8}, {3, 37}, {2, 131}};
      for (int[] sh : shapes) r.add(Arguments.of(t, sh[0], sh[1], 0.2));
      r.add(Arguments.of(t, 4, 8, 0.0));
      r.add(Arguments.of(t, 4, 8, 1.0));
    }
    return r.stream();
  }

  /** Every launch shape of the kernels: widths below one vector, several, a tail, past 128. */
  @ParameterizedTest(name = "{0} heads={1} width={2} slope={3}")
  @MethodSource("gatCases")
  void gatMatchesTheNaiveReference(DType t, int heads, int width, double slope) {
    GraphFixtures.Edges in = MESSY;
    Random rnd = new Random(heads * 1000 + width);
    double[] x = rounded(GraphFixtures.uniform(rnd, in.n() * heads * width, -2, 2), t);
    double[] ss = rounded(GraphFixtures.uniform(rnd, in.n() * heads, -6, 6), t);
    double[] sd = rounded(GraphFixtures.uniform(rnd, in.n() * heads, -6, 6), t);
    try (Scope sc = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      Tensor xt = tensor(x, t, in.n(), heads, width);
      Tensor sst = tensor(ss, t, in.n(), heads), sdt = tensor(sd, t, in.n(), heads);
      Tensor out = MessagePassing.gatAggregate(g, xt, sst, sdt, slope);
      assertArrayEquals(new long[] {in.n(), heads, width}, out.shape());
      double tol = t == DType.F64 ? 1e-12 : 2e-5;
      double[] want = gatRef(in, x, ss, sd, heads, width, slope);
      close(want, out.castTo(DType.F64).toDoubleArray(), tol, tol, "gat " + t);
      // the composed form: edge softmax of the scores, then a weighted sum
      Tensor z =
          MessagePassing.sddmm(g, Tensor.ones(new long[] {in.n(), heads, 1}, t, CPU), sst.reshape(in.n(), heads, 1))
              .add(MessagePassing.sddmm(
                  g, sdt.reshape(in.n(), heads, 1), Tensor.ones(new long[] {in.n(), heads, 1}, t, CPU)));
      Tensor e = Tensor.where(z.gt(0.0), z, z.mul(slope));
      Tensor composed = MessagePassing.aggregate(g, xt, MessagePassing.edgeSoftmax(g, e), Reduce.SUM);
      close(composed.castTo(DType.F64).toDoubleArray(), out.castTo(DType.F64).toDoubleArray(), tol, tol,
          "gat vs composed " + t);
    }
  }

  /** Non-contiguous inputs are read as their values. */
  @Test
  void nonContiguousInputs() {
    GraphFixtures.Edges in = MESSY;
    try (Scope sc = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      Tensor xT = Tensor.randn(new long[] {in.n(), 6, 2}, DType.F64, CPU, 3L).transpose(1, 2); // [n, 2, 6]
      Tensor ssT = Tensor.randn(new long[] {2, in.n()}, DType.F64, CPU, 4L).mT();
      Tensor sd = Tensor.randn(new long[] {in.n(), 2}, DType.F64, CPU, 5L);
      assertFalse(xT.isContiguous() || ssT.isContiguous());
      assertArrayEquals(
          MessagePassing.gatAggregate(g, xT.copyContiguous(), ssT.copyContiguous(), sd, 0.2).toDoubleArray(),
          MessagePassing.gatAggregate(g, xT, ssT, sd, 0.2).toDoubleArray());
      Tensor sT = Tensor.randn(new long[] {3, in.e()}, DType.F64, CPU, 6L).mT();
      assertArrayEquals(MessagePassing.edgeSoftmax(g, sT.copyContiguous()).toDoubleArray(),
          MessagePassing.edgeSoftmax(g, sT).toDoubleArray());
    }
  }

  /** A graph with no edges: softmax of nothing, and GAT gives zeros; a graph of no nodes too. */
  @Test
  void emptyGraphs() {
    try (Scope sc = Scope.open(); Graph g = Graph.fromEdges(new long[0], new long[0], 4);
         Graph none = Graph.fromEdges(new long[0], new long[0], 0)) {
      assertArrayEquals(
          new long[] {0, 2}, MessagePassing.edgeSoftmax(g, Tensor.zeros(new long[] {0, 2}, DType.F32, CPU)).shape());
      Tensor out = MessagePassing.gatAggregate(g, Tensor.ones(new long[] {4, 2, 3}, DType.F32, CPU),
          Tensor.ones(new long[] {4, 2}, DType.F32, CPU), Tensor.ones(new long[] {4, 2}, DType.F32, CPU), 0.2);
      assertArrayEquals(new float[24], out.toFloatArray());
      Tensor o0 = MessagePassing.gatAggregate(none, Tensor.ones(new long[] {0, 2, 3}, DType.F64, CPU),
          Tensor.ones(new long[] {0, 2}, DType.F64, CPU), Tensor.ones(new long[] {0, 2}, DType.F64, CPU), 0.2);
      assertArrayEquals(new long[] {0, 2, 3}, o0.shape());
    }
  }

  // ---- gradients -------------------------------------------------------------------------------

  static Tensor onSmall(Function<Graph, Tensor> f) {
    return f.apply(Graph.fromEdges(SMALL.index(), SMALL.n()).ownedBy(Scope.current()));
  }

  static Stream<Arguments> gradCases() {
    int n = SMALL.n(), e = SMALL.e();
    return Stream.of(
        Arguments.of("edge softmax [E]", (Function<List<Tensor>, Tensor>) xs
            -> onSmall(g -> MessagePassing.edgeSoftmax(g, xs.get(0).sum(1, false)).mul(xs.get(1).sum(1, false)).sin()),
            new int[][] {{e, 2}, {e, 2}}),
        Arguments.of("edge softmax [E, H]", (Function<List<Tensor>, Tensor>) xs
            -> onSmall(g -> MessagePassing.edgeSoftmax(g, xs.get(0).mul(2.0)).mul(xs.get(1)).square()),
            new int[][] {{e, 3}, {e, 3}}),
        Arguments.of("gat x, sSrc, sDst", (Function<List<Tensor>, Tensor>) xs
            -> onSmall(g -> MessagePassing.gatAggregate(g, xs.get(0).reshape(n, 2, 3), xs.get(1), xs.get(2), 0.2).tanh()),
            new int[][] {{n, 6}, {n, 2}, {n, 2}}),
        Arguments.of("gat scores through x", (Function<List<Tensor>, Tensor>) xs -> onSmall(g -> {
          Tensor h = xs.get(0).reshape(n, 2, 2);
          Tensor a = xs.get(1).reshape(1, 2, 2);
          Tensor s = h.mul(a).sum(2, false);
          return MessagePassing.gatAggregate(g, h, s, s.mul(-0.5), 0.1).sin();
        }), new int[][] {{n, 4}, {2, 2}}),
        // a hub row of 2·128 + 3 in-edges (three segments of the split, issue 15)
        Arguments.of("gat and edge softmax on a hub row", (Function<List<Tensor>, Tensor>) xs -> {
          Graph g = Graph.fromEdges(HUB_ROW.index(), HUB_ROW.n()).ownedBy(Scope.current());
          int m = HUB_ROW.n();
          Tensor out = MessagePassing.gatAggregate(g, xs.get(0).reshape(m, 1, 2), xs.get(1), xs.get(1).mul(-0.3), 0.2);
          Tensor y = MessagePassing.edgeSoftmax(g, MessagePassing.sddmm(g, xs.get(1).reshape(m, 1, 1).mul(3.0),
              Tensor.ones(new long[] {m, 1, 1}, DType.F64, CPU)).reshape(HUB_ROW.e()));
          Tensor agg = MessagePassing.aggregate(g, xs.get(0).reshape(m, 1, 2), y.reshape(HUB_ROW.e(), 1), Reduce.SUM);
          return out.tanh().sum(2, false).add(agg.sum(2, false).sin());
        }, new int[][] {{HUB_ROW.n(), 2}, {HUB_ROW.n(), 1}}));
  }

  /** First and second derivatives against finite differences in F64 (every input differentiated). */
  @ParameterizedTest(name = "{0}")
  @MethodSource("gradCases")
  void secondOrderGradients(String name, Function<List<Tensor>, Tensor> f, int[][] shapes) {
    try (Scope s = Scope.open()) {
      Random rnd = new Random(name.hashCode());
      List<Tensor> in = new ArrayList<>();
      for (int[] sh : shapes) in.add(Tensor.of(GraphFixtures.uniform(rnd, sh[0] * sh[1], -1, 1), sh[0], sh[1]));
      List<GradCheck.Comparison> res = GradCheck.check(f, in, 2);
      assertEquals(6, res.size());
      assertTrue(res.stream().filter(c -> c.order() == 2).anyMatch(c -> Math.abs(c.numeric()) > 1e-6),
          name + ": the second-order check is not vacuous");
    }
  }

  // ---- determinism -----------------------------------------------------------------------------

  static List<float[]> everything(int threads) {
    int before = MkNative.mk_runtime_num_threads();
    MkNative.mk_runtime_set_num_threads(threads);
    int n = 20_000, heads = 4, width = 9;
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(Graphs.rmat(n, 200_000, 5L), n)) {
      Tensor x = Tensor.randn(new long[] {n, heads, width}, DType.F32, CPU, 6L).requiresGrad(true);
      Tensor ss = Tensor.randn(new long[] {n, heads}, DType.F32, CPU, 7L).requiresGrad(true);
      Tensor sd = Tensor.randn(new long[] {n, heads}, DType.F32, CPU, 8L).requiresGrad(true);
      Tensor dOut = Tensor.randn(new long[] {n, heads, width}, DType.F32, CPU, 9L);
      List<float[]> r = new ArrayList<>();
      Tensor out = MessagePassing.gatAggregate(g, x, ss, sd, 0.2);
      r.add(out.toFloatArray());
      for (Tensor gr : Autograd.grad(List.of(out), List.of(x, ss, sd), List.of(dOut), false)) r.add(gr.toFloatArray());
      Tensor sc = Tensor.randn(new long[] {g.numEdges(), heads}, DType.F32, CPU, 10L).mul(5.0).requiresGrad(true);
      Tensor y = MessagePassing.edgeSoftmax(g, sc);
      r.add(y.toFloatArray());
      r.add(Autograd.grad(List.of(y), List.of(sc), List.of(sc.detach().sin()), false).get(0).toFloatArray());
      return r;
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }

  /** Bitwise the same on 1, 2, 3, 8 and 16 threads (other hub-split thresholds) and run to run, forward and backward, on a power-law graph. */
  @Test
  void bitwiseTheSameOnAnyThreadCountAndRun() {
    List<float[]> ref = everything(1);
    for (int threads : new int[] {2, 3, 8, 16, 2}) {
      List<float[]> got = everything(threads);
      assertEquals(ref.size(), got.size());
      for (int i = 0; i < ref.size(); i++)
        assertArrayEquals(ref.get(i), got.get(i), "result " + i + " on " + threads + " threads");
    }
  }

  // ---- bad input -------------------------------------------------------------------------------

  static void expect(String op, String shape, Runnable call) {
    MetakernelsException e = assertThrows(MetakernelsException.class, call::run);
    assertTrue(e.getMessage().startsWith(op) && e.getMessage().contains(shape), e.getMessage());
  }

  @Test
  void badInputNamesTheOpAndTheShapesAndChangesNothing() {
    GraphFixtures.Edges in = MESSY;
    int n = in.n(), e = in.e();
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), n)) {
      Tensor x = Tensor.randn(new long[] {n, 2, 4}, DType.F32, CPU, 1L);
      Tensor ss = Tensor.randn(new long[] {n, 2}, DType.F32, CPU, 2L);
      Tensor sd = Tensor.randn(new long[] {n, 2}, DType.F32, CPU, 3L);
      Tensor sc = Tensor.randn(new long[] {e, 2}, DType.F32, CPU, 4L);
      float[] x0 = x.toFloatArray(), ss0 = ss.toFloatArray(), sc0 = sc.toFloatArray();
      int xv = x.storage().version(), sv = sc.storage().version();
      String op = "MessagePassing.edgeSoftmax";
      expect(op, "F32[" + (e - 1) + ", 2]", () -> MessagePassing.edgeSoftmax(g, sc.narrow(0, 0, e - 1)));
      expect(op, "F32[" + e + ", 2, 1]", () -> MessagePassing.edgeSoftmax(g, sc.reshape(e, 2, 1)));
      expect(op, "F32[" + e + ", 0]", () -> MessagePassing.edgeSoftmax(g, sc.narrow(1, 0, 0)));
      expect(op, "I64[" + e + ", 2]", () -> MessagePassing.edgeSoftmax(g, sc.castTo(DType.I64)));
      expect(op, "BF16[" + e + ", 2]", () -> MessagePassing.edgeSoftmax(g, sc.castTo(DType.BF16)));
      expect(op, "graph is null", () -> MessagePassing.edgeSoftmax(null, sc));
      op = "MessagePassing.gatAggregate";
      expect(
          op, "F32[" + (n - 1) + ", 2, 4]", () -> MessagePassing.gatAggregate(g, x.narrow(0, 0, n - 1), ss, sd, 0.2));
      expect(op, "F32[" + n + ", 8]", () -> MessagePassing.gatAggregate(g, x.reshape(n, 8), ss, sd, 0.2));
      expect(op, "F32[" + n + ", 1]", () -> MessagePassing.gatAggregate(g, x, ss.narrow(1, 0, 1), sd, 0.2));
      expect(op, "F32[" + (n - 1) + ", 2]", () -> MessagePassing.gatAggregate(g, x, ss, sd.narrow(0, 0, n - 1), 0.2));
      expect(op, "F64[" + n + ", 2]", () -> MessagePassing.gatAggregate(g, x, ss.castTo(DType.F64), sd, 0.2));
      expect(op, "I64[" + n + ", 2, 4]", () -> MessagePassing.gatAggregate(g, x.castTo(DType.I64), ss, sd, 0.2));
      expect(op, "F32[" + n + ", 2, 0]", () -> MessagePassing.gatAggregate(g, x.narrow(2, 0, 0), ss, sd, 0.2));
      expect(op, "not finite", () -> MessagePassing.gatAggregate(g, x, ss, sd, Double.NaN));
      // closed tensors and graphs
      Tensor dead = Tensor.zeros(new long[] {n, 2}, DType.F32, CPU);
      dead.close();
      IllegalStateException ex =
          assertThrows(IllegalStateException.class, () -> MessagePassing.gatAggregate(g, x, dead, sd, 0.2));
      assertTrue(ex.getMessage().startsWith(op) && ex.getMessage().contains("F32[" + n + ", 2]"), ex.getMessage());
      Tensor deadS = Tensor.zeros(new long[] {e, 2}, DType.F32, CPU);
      deadS.close();
      ex = assertThrows(IllegalStateException.class, () -> MessagePassing.edgeSoftmax(g, deadS));
      assertTrue(ex.getMessage().startsWith("MessagePassing.edgeSoftmax"), ex.getMessage());
      Graph closed = Graph.fromEdges(in.index(), n);
      closed.close();
      assertThrows(IllegalStateException.class, () -> MessagePassing.gatAggregate(closed, x, ss, sd, 0.2));
      assertThrows(IllegalStateException.class, () -> MessagePassing.edgeSoftmax(closed, sc));
      // nothing changed, the graph still works
      assertArrayEquals(x0, x.toFloatArray());
      assertArrayEquals(ss0, ss.toFloatArray());
      assertArrayEquals(sc0, sc.toFloatArray());
      assertEquals(xv, x.storage().version());
      assertEquals(sv, sc.storage().version());
      assertArrayEquals(MessagePassing.gatAggregate(g, x, ss, sd, 0.2).toFloatArray(),
          MessagePassing.gatAggregate(g, x, ss, sd, 0.2).toFloatArray());
    }
  }

  static void rejected(int status, String what, String... parts) {
    assertNotEquals(0, status, what);
    String msg = Native.lastError();
    for (String p : parts) assertTrue(msg.contains(p), what + ": " + msg);
  }

  /**
   * The C ABI's own checks (the Java ops never pass these): lse in and out at once, width 0, a NaN slope, a bad CSR.
   */
  @Test
  void nativeValidation() {
    try (Scope s = Scope.open()) {
      Tensor ptr = Tensor.ofIndices(new long[] {0, 1, 3}, 3);
      Tensor col = Tensor.ofIndices(new long[] {1, 0, 1}, 3);
      Tensor sc = Tensor.ones(new long[] {3, 2}, DType.F64, CPU);
      Tensor y = Tensor.zeros(new long[] {3, 2}, DType.F64, CPU);
      Tensor lse = Tensor.zeros(new long[] {2, 2}, DType.F64, CPU);
      String op = "mk_graph_edge_softmax_forward";
      rejected(MkNative.mk_graph_edge_softmax_forward(CPU.code, DType.F64.code, 2, 2, 3, 2, ptr.address(op),
                   col.address(op), sc.address(op), lse.address(op), y.address(op), lse.address(op), 0L),
          "lse twice", op, "not both");
      Tensor badPtr = Tensor.ofIndices(new long[] {0, 2, 1}, 3);
      rejected(MkNative.mk_graph_edge_softmax_forward(CPU.code, DType.F64.code, 2, 2, 3, 2, badPtr.address(op),
                   col.address(op), sc.address(op), 0L, y.address(op), 0L, 0L),
          "bad row_ptr", op, "row_ptr");
      assertArrayEquals(new double[6], y.toDoubleArray(), "nothing written");
      assertEquals(0,
          MkNative.mk_graph_edge_softmax_forward(CPU.code, DType.F64.code, 2, 2, 3, 2, ptr.address(op), col.address(op),
              sc.address(op), 0L, y.address(op), lse.address(op), 0L));
      assertArrayEquals(new double[] {1, 1, 0.5, 0.5, 0.5, 0.5}, y.toDoubleArray());
      assertEquals(1 + Math.log(2), lse.toDoubleArray()[2], 1e-15); // row 1: scores 1, 1
      op = "mk_graph_gat_forward";
      Tensor x = Tensor.ones(new long[] {2, 2, 1}, DType.F64, CPU);
      Tensor sn = Tensor.ones(new long[] {2, 2}, DType.F64, CPU);
      Tensor out = Tensor.zeros(new long[] {2, 2, 1}, DType.F64, CPU);
      rejected(MkNative.mk_graph_gat_forward(CPU.code, DType.F64.code, 2, 2, 3, 2, 0, 0.2, ptr.address(op),
                   col.address(op), x.address(op), sn.address(op), sn.address(op), out.address(op), 0L, 0L),
          "width 0", op, "width must be >= 1", "heads = 2");
      rejected(MkNative.mk_graph_gat_forward(CPU.code, DType.F64.code, 2, 2, 3, 2, 1, Double.NaN, ptr.address(op),
                   col.address(op), x.address(op), sn.address(op), sn.address(op), out.address(op), 0L, 0L),
          "NaN slope", op, "negative_slope");
      Tensor badCol = Tensor.ofIndices(new long[] {1, 0, 7}, 3);
      rejected(MkNative.mk_graph_gat_forward(CPU.code, DType.F64.code, 2, 2, 3, 2, 1, 0.2, ptr.address(op),
                   badCol.address(op), x.address(op), sn.address(op), sn.address(op), out.address(op), 0L, 0L),
          "column out of range", op, "outside [0, 2)");
      rejected(MkNative.mk_graph_gat_forward(CPU.code, DType.I64.code, 2, 2, 3, 2, 1, 0.2, ptr.address(op),
                   col.address(op), x.address(op), sn.address(op), sn.address(op), out.address(op), 0L, 0L),
          "dtype", op);
      assertArrayEquals(new double[4], out.toDoubleArray(), "nothing written");
    }
  }

  // ---- hub rows (issue 15): rows longer than 128 non-zeros in fixed segments ----------------------

  static final GraphFixtures.Edges HUBS = GraphFixtures.hubs(57, 200, 10_000);

  static Stream<Arguments> hubCases() {
    List<Arguments> r = new ArrayList<>();
    for (DType t : new DType[] {DType.F32, DType.F64}) {
      r.add(Arguments.of(t, 1, 1));
      r.add(Arguments.of(t, 3, 8));
      r.add(Arguments.of(t, 2, 37));
    }
    return r.stream();
  }

  /**
   * Rows of 127, 128, 129, 256, 257, 385 and 10^4 in-edges (segments of 128, the last one of 1):
   * edge softmax and GAT against the float64 loops, and each node's softmax summing to 1.
   */
  @ParameterizedTest(name = "{0} heads={1} width={2}")
  @MethodSource("hubCases")
  void hubRowsMatchTheNaiveReference(DType t, int heads, int width) {
    GraphFixtures.Edges in = HUBS;
    Random rnd = new Random(heads * 31 + width);
    double[] s = rounded(GraphFixtures.uniform(rnd, in.e() * heads, -30, 30), t);
    double[] x = rounded(GraphFixtures.uniform(rnd, in.n() * heads * width, -2, 2), t);
    double[] ss = rounded(GraphFixtures.uniform(rnd, in.n() * heads, -6, 6), t);
    double[] sd = rounded(GraphFixtures.uniform(rnd, in.n() * heads, -6, 6), t);
    try (Scope sc = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      double tol = t == DType.F64 ? 1e-12 : 3e-5;
      Tensor y = MessagePassing.edgeSoftmax(g, tensor(toGraphOrder(in, s, heads), t, in.e(), heads));
      close(toGraphOrder(in, softmaxRef(in, s, heads), heads), y.castTo(DType.F64).toDoubleArray(), 1e-300, tol,
          "hub edge softmax " + t);
      double[] sums =
          MessagePassing.aggregate(g, Tensor.ones(new long[] {in.n(), heads, 1}, t, CPU), y, Reduce.SUM)
              .castTo(DType.F64)
              .toDoubleArray();
      double[] deg = g.inDegrees().castTo(DType.F64).toDoubleArray();
      for (int i = 0; i < in.n(); i++)
        for (int k = 0; k < heads; k++)
          assertEquals(deg[i] > 0 ? 1.0 : 0.0, sums[i * heads + k], t == DType.F64 ? 1e-12 : 1e-4, "node " + i);
      Tensor out = MessagePassing.gatAggregate(g, tensor(x, t, in.n(), heads, width), tensor(ss, t, in.n(), heads),
          tensor(sd, t, in.n(), heads), 0.2);
      close(gatRef(in, x, ss, sd, heads, width, 0.2), out.castTo(DType.F64).toDoubleArray(), tol, tol,
          "hub gat " + t);
    }
  }

  static List<float[]> hubEverything(int threads) {
    int before = MkNative.mk_runtime_num_threads();
    MkNative.mk_runtime_set_num_threads(threads);
    // a star of 10^5 edges into node 0 and out of node 1, and an R-MAT graph beside it
    int n = 100_002, star = 100_000, heads = 2, width = 8;
    try (Scope s = Scope.open()) {
    long[] rm = Graphs.rmat(n, 100_000, 21L).toLongArray();
    int e = rm.length / 2;
    long[] idx = new long[2 * (e + 2 * star)];
    for (int k = 0; k < e; k++) {
      idx[k] = rm[k];
      idx[e + 2 * star + k] = rm[e + k];
    }
    for (int k = 0; k < star; k++) {
      idx[e + k] = 2 + k; // 2 + k -> 0
      idx[2 * e + 2 * star + k] = 0;
      idx[e + star + k] = 1; // 1 -> 2 + k
      idx[2 * e + 3 * star + k] = 2 + k;
    }
    try (Graph g = Graph.fromEdges(Tensor.ofIndices(idx, 2, e + 2 * star), n)) {
      Tensor x = Tensor.randn(new long[] {n, heads, width}, DType.F32, CPU, 26L).requiresGrad(true);
      Tensor ss = Tensor.randn(new long[] {n, heads}, DType.F32, CPU, 27L).mul(3.0).requiresGrad(true);
      Tensor sd = Tensor.randn(new long[] {n, heads}, DType.F32, CPU, 28L).requiresGrad(true);
      Tensor dOut = Tensor.randn(new long[] {n, heads, width}, DType.F32, CPU, 29L);
      List<float[]> r = new ArrayList<>();
      Tensor out = MessagePassing.gatAggregate(g, x, ss, sd, 0.2);
      r.add(out.toFloatArray());
      for (Tensor gr : Autograd.grad(List.of(out), List.of(x, ss, sd), List.of(dOut), false)) r.add(gr.toFloatArray());
      Tensor sc = Tensor.randn(new long[] {g.numEdges(), heads}, DType.F32, CPU, 30L).mul(5.0).requiresGrad(true);
      Tensor y = MessagePassing.edgeSoftmax(g, sc);
      r.add(y.toFloatArray());
      r.add(Autograd.grad(List.of(y), List.of(sc), List.of(sc.detach().cos()), false).get(0).toFloatArray());
      return r;
    }
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }

  /** A 10^5-edge hub row (and column), its segments shared by the threads: bitwise the same on 1, 2, 3 and 16. */
  @Test
  void hubRowsBitwiseTheSameOnAnyThreadCount() {
    List<float[]> ref = hubEverything(1);
    for (int threads : new int[] {2, 3, 16}) {
      List<float[]> got = hubEverything(threads);
      assertEquals(ref.size(), got.size());
      for (int i = 0; i < ref.size(); i++)
        assertArrayEquals(ref.get(i), got.get(i), "result " + i + " on " + threads + " threads");
    }
  }
}
