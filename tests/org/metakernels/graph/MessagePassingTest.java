package org.metakernels.graph;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.GradCheck;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * MessagePassing on the CPU: every reduction and sddmm against a naive float64 loop on graphs
 * with isolated nodes, self-loops, duplicate edges and one giant row; gradients of order 2 by
 * finite differences; bitwise determinism across runs and thread counts; bad input; the
 * version checks of the graph a backward reads; the native validation of the CSR form.
 */
class MessagePassingTest {
  static final Device CPU = Device.CPU;
  static final GraphFixtures.Edges MESSY = GraphFixtures.messy(21, 60, 400);

  static Tensor tensor(double[] v, DType t, long... shape) {
    Tensor d = Tensor.of(v, shape);
    return t == DType.F64 ? d : d.castTo(t);
  }

  /** Values of t (F32 inputs rounded to float, so the reference sees exactly what the kernel sees). */
  static double[] rounded(double[] v, DType t) {
    if (t == DType.F64) return v;
    double[] r = new double[v.length];
    for (int i = 0; i < v.length; i++) r[i] = (float) v[i];
    return r;
  }

  /** Weights away from zero, either sign. */
  static double[] weights(Random r, int n) {
    double[] w = new double[n];
    for (int i = 0; i < n; i++) w[i] = (r.nextBoolean() ? 1 : -1) * (0.25 + 1.75 * r.nextDouble());
    return w;
  }

  static Stream<Arguments> aggregateCases() {
    List<Arguments> r = new ArrayList<>();
    for (Reduce red : Reduce.values())
      for (DType t : new DType[] {DType.F32, DType.F64})
        for (boolean weighted : new boolean[] {false, true})
          for (int width : new int[] {1, 5, 16, 37, 131}) r.add(Arguments.of(red, t, weighted, width));
    return r.stream();
  }

  /**
   * Every reduction, both dtypes, weighted or not, feature widths below one vector, whole vectors,
   * vectors plus a tail and more than one register block (131 > 8 x 16).
   */
  @ParameterizedTest(name = "{0} {1} weighted={2} width={3}")
  @MethodSource("aggregateCases")
  void aggregateMatchesTheNaiveReference(Reduce red, DType t, boolean weighted, int width) {
    GraphFixtures.Edges in = MESSY;
    Random rnd = new Random(31L * width + red.ordinal());
    double[] x = rounded(GraphFixtures.uniform(rnd, in.n() * width, -2, 2), t);
    double[] w = weighted ? rounded(weights(rnd, in.e()), t) : null;
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      Tensor xt = tensor(x, t, in.n(), width);
      Tensor wt = w == null ? null : g.toGraphOrder(tensor(w, t, in.e()));
      Tensor out = MessagePassing.aggregate(g, xt, wt, red);
      assertArrayEquals(new long[] {in.n(), width}, out.shape());
      assertEquals(t, out.dtype());
      check(out.toDoubleArray(), in, x, w, 1, width, red, t);
    }
  }

  static void check(
      double[] got, GraphFixtures.Edges in, double[] x, double[] w, int heads, int width, Reduce red, DType t) {
    double[] want = GraphFixtures.aggregate(in, x, w, heads, width, red);
    double[] mag = GraphFixtures.magnitude(in, x, w, heads, width);
    double eps = t == DType.F64 ? 0x1p-52 : 0x1p-23;
    int[] inDeg = new int[in.n()];
    for (long d : in.dst()) inDeg[(int) d]++;
    int f = heads * width;
    for (int i = 0; i < want.length; i++) {
      int node = i / f;
      // a sum of n rounded terms is off by at most about n ulps of the sum of magnitudes; a max is
      // one rounded product
      double tol = red == Reduce.SUM || red == Reduce.MEAN
          ? 2 * (inDeg[node] + 1) * eps * mag[i] / (red == Reduce.MEAN ? Math.max(inDeg[node], 1) : 1)
          : eps * Math.abs(want[i]);
      if (!(Math.abs(got[i] - want[i]) <= tol))
        fail(String.format("%s element %d (node %d, in-degree %d): %.17g vs %.17g (tol %.3g)", red, i, node,
            inDeg[node], got[i], want[i], tol));
    }
    // nodes without in-edges: exactly 0
    for (int v = 0; v < in.n(); v++)
      if (inDeg[v] == 0)
        for (int c = 0; c < f; c++) assertEquals(0.0, got[v * f + c], 0.0, "isolated node " + v);
  }

  @ParameterizedTest
  @EnumSource(Reduce.class)
  void multiHeadWeights(Reduce red) {
    GraphFixtures.Edges in = MESSY;
    int heads = 3, width = 5;
    Random rnd = new Random(40 + red.ordinal());
    double[] x = GraphFixtures.uniform(rnd, in.n() * heads * width, -2, 2);
    double[] w = weights(rnd, in.e() * heads);
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      Tensor out = MessagePassing.aggregate(
          g, Tensor.of(x, in.n(), heads, width), g.toGraphOrder(Tensor.of(w, in.e(), heads)), red);
      assertArrayEquals(new long[] {in.n(), heads, width}, out.shape());
      check(out.toDoubleArray(), in, x, w, heads, width, red, DType.F64);
      // one weight per edge on [N, 2, 3] features: every column scaled alike
      double[] w1 = weights(rnd, in.e());
      double[] x6 = GraphFixtures.uniform(rnd, in.n() * 6, -2, 2);
      Tensor o1 = MessagePassing.aggregate(g, Tensor.of(x6, in.n(), 2, 3), g.toGraphOrder(Tensor.of(w1, in.e())), red);
      assertArrayEquals(new long[] {in.n(), 2, 3}, o1.shape());
      check(o1.toDoubleArray(), in, x6, w1, 1, 6, red, DType.F64);
    }
  }

  @Test
  void nonContiguousFeaturesAndWeights() {
    GraphFixtures.Edges in = MESSY;
    Random rnd = new Random(41);
    double[] xt = GraphFixtures.uniform(rnd, in.n() * 7, -2, 2);
    double[] w2 = weights(rnd, in.e() * 2);
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      Tensor x = Tensor.of(xt, 7, in.n()).mT(); // [N, 7], strided
      Tensor w = g.toGraphOrder(Tensor.of(w2, in.e(), 2)).select(1, 1); // [E], stride 2
      for (Reduce r : Reduce.values())
        assertArrayEquals(MessagePassing.aggregate(g, x.contiguous(), w.contiguous(), r).toDoubleArray(),
            MessagePassing.aggregate(g, x, w, r).toDoubleArray(), 0.0, r.name());
    }
  }

  @Test
  void sddmmMatchesTheReference() {
    GraphFixtures.Edges in = MESSY;
    Random rnd = new Random(42);
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      for (DType t : new DType[] {DType.F32, DType.F64})
        for (int[] hw : new int[][] {{1, 1}, {1, 37}, {4, 8}, {3, 5}}) {
          int heads = hw[0], width = hw[1];
          boolean multi = heads > 1;
          double[] a = rounded(GraphFixtures.uniform(rnd, in.n() * heads * width, -1, 1), t);
          double[] b = rounded(GraphFixtures.uniform(rnd, in.n() * heads * width, -1, 1), t);
          long[] shape = multi ? new long[] {in.n(), heads, width} : new long[] {in.n(), width};
          Tensor e = MessagePassing.sddmm(g, tensor(a, t, shape), tensor(b, t, shape));
          assertArrayEquals(multi ? new long[] {in.e(), heads} : new long[] {in.e()}, e.shape());
          double[] want = GraphFixtures.sddmm(in, a, b, heads, width), got = e.toDoubleArray();
          double eps = t == DType.F64 ? 0x1p-52 : 0x1p-23;
          for (int i = 0; i < want.length; i++)
            assertEquals(want[i], got[i], 2 * (width + 1) * eps, t + " " + Arrays.toString(hw) + " edge " + i);
        }
    }
  }

  @Test
  void maxTiesGoToTheFirstEdgeAndNaNPropagates() {
    // node 0 receives from node 1 twice (a duplicate) and from node 2; node 3 from nobody
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(new long[] {1, 2, 1}, new long[] {0, 0, 0}, 4)) {
      Tensor x = Tensor.of(new double[] {0, 5, 3, 9}, 4, 1).requiresGrad(true);
      Tensor m = MessagePassing.aggregate(g, x, Reduce.MAX);
      assertArrayEquals(new double[] {5, 0, 0, 0}, m.toDoubleArray(), 0.0);
      // the tie between the two copies of edge 1 -> 0 goes to one of them: d max / d x1 = 1, not 2
      assertArrayEquals(
          new double[] {0, 1, 0, 0}, Autograd.grad(m.sum(), List.of(x), false).get(0).toDoubleArray(), 0.0);
      Tensor xn = Tensor.of(new double[] {0, 5, Double.NaN, 9}, 4, 1);
      assertTrue(Double.isNaN(MessagePassing.aggregate(g, xn, Reduce.MAX).toDoubleArray()[0]));
      assertTrue(Double.isNaN(MessagePassing.aggregate(g, xn, Reduce.MIN).toDoubleArray()[0]));
      assertEquals(3.0, MessagePassing.aggregate(g, x.detach(), Reduce.MIN).toDoubleArray()[0], 0.0);
      // weights: the candidates are w·x, so a negative weight turns the max around
      Tensor w = Tensor.of(new double[] {-1, 2, 1}, 3); // graph order: (1->0), (1->0), (2->0)
      assertEquals(10.0, MessagePassing.aggregate(g, x.detach(), w, Reduce.MAX).toDoubleArray()[0], 0.0);
      assertEquals(-5.0, MessagePassing.aggregate(g, x.detach(), w, Reduce.MIN).toDoubleArray()[0], 0.0);
    }
  }

  // ---- gradients -----------------------------------------------------------------------------

  static final GraphFixtures.Edges SMALL = GraphFixtures.messy(23, 12, 36);

  /** f(x, w) on a fresh graph owned by the current scope (so GradCheck's scopes free it). */
  static Tensor onSmall(List<Tensor> unused, Function<Graph, Tensor> f) {
    return f.apply(Graph.fromEdges(SMALL.index(), SMALL.n()).ownedBy(Scope.current()));
  }

  static Stream<Arguments> gradCases() {
    return Stream.of(Arguments.of("sum weighted",
                         (Function<List<Tensor>, Tensor>) xs
                         -> onSmall(xs, g -> MessagePassing.aggregate(g, xs.get(0), xs.get(1), Reduce.SUM).tanh()),
                         3, false),
        Arguments.of("mean weighted",
            (Function<List<Tensor>, Tensor>) xs
            -> onSmall(xs, g -> MessagePassing.aggregate(g, xs.get(0).square(), xs.get(1), Reduce.MEAN).sin()),
            3, false),
        Arguments.of("max weighted",
            (Function<List<Tensor>, Tensor>) xs
            -> onSmall(
                xs, g -> MessagePassing.aggregate(g, xs.get(0), xs.get(1).square().add(0.5), Reduce.MAX).square()),
            3, false),
        Arguments.of("min weighted",
            (Function<List<Tensor>, Tensor>) xs
            -> onSmall(xs, g -> MessagePassing.aggregate(g, xs.get(0).exp(), xs.get(1), Reduce.MIN).square()),
            2, false),
        Arguments.of("max unweighted",
            (Function<List<Tensor>, Tensor>) xs
            -> onSmall(xs, g -> MessagePassing.aggregate(g, xs.get(0).mul(xs.get(1).sum()), Reduce.MAX).square()),
            4, false),
        Arguments.of("sum multi-head",
            (Function<List<Tensor>, Tensor>) xs
            -> onSmall(xs,
                g
                -> MessagePassing
                       .aggregate(g, xs.get(0).reshape(SMALL.n(), 2, 2), xs.get(1).reshape(SMALL.e(), 2), Reduce.SUM)
                       .tanh()),
            4, true),
        Arguments.of("mean multi-head",
            (Function<List<Tensor>, Tensor>) xs
            -> onSmall(xs,
                g
                -> MessagePassing
                       .aggregate(g, xs.get(0).reshape(SMALL.n(), 2, 2), xs.get(1).reshape(SMALL.e(), 2), Reduce.MEAN)
                       .square()),
            4, true),
        Arguments.of("max multi-head",
            (Function<List<Tensor>, Tensor>) xs
            -> onSmall(xs,
                g
                -> MessagePassing
                       .aggregate(g, xs.get(0).reshape(SMALL.n(), 2, 2), xs.get(1).reshape(SMALL.e(), 2), Reduce.MAX)
                       .square()),
            4, true),
        Arguments.of("sddmm",
            (Function<List<Tensor>, Tensor>) xs
            -> onSmall(xs, g -> MessagePassing.sddmm(g, xs.get(0), xs.get(0).tanh()).mul(xs.get(1)).sin()),
            3, false),
        Arguments.of("sddmm multi-head",
            (Function<List<Tensor>, Tensor>) xs
            -> onSmall(xs,
                g
                -> MessagePassing.sddmm(g, xs.get(0).reshape(SMALL.n(), 2, 2), xs.get(0).exp().reshape(SMALL.n(), 2, 2))
                       .mul(xs.get(1).reshape(SMALL.e(), 2))
                       .tanh()),
            4, true));
  }

  /** First and second derivatives in x and in the edge weights, against finite differences in F64. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("gradCases")
  void secondOrderGradients(String name, Function<List<Tensor>, Tensor> f, int width, boolean perHead) {
    try (Scope s = Scope.open()) {
      Random rnd = new Random(name.hashCode());
      Tensor x = Tensor.of(GraphFixtures.uniform(rnd, SMALL.n() * width, -1, 1), SMALL.n(), width);
      int wn = perHead ? SMALL.e() * 2 : SMALL.e();
      Tensor w = Tensor.of(weights(rnd, wn), wn);
      List<GradCheck.Comparison> res = GradCheck.check(f, List.of(x, w), 2);
      assertEquals(6, res.size());
      assertTrue(res.stream().filter(c -> c.order() == 2).anyMatch(c -> Math.abs(c.numeric()) > 1e-6),
          name + ": the second-order check is not vacuous");
    }
  }

  // ---- determinism -----------------------------------------------------------------------------

  /** Forward outputs and gradients of every op on an R-MAT graph, F32, with `threads` CPU threads. */
  static List<float[]> everything(int threads) {
    int before = MkNative.mk_runtime_num_threads();
    MkNative.mk_runtime_set_num_threads(threads);
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(Graphs.rmat(20_000, 200_000, 5L), 20_000)) {
      int width = 37; // whole vectors and a tail
      Tensor x = Tensor.randn(new long[] {20_000, width}, DType.F32, CPU, 6L).requiresGrad(true);
      Tensor w = Tensor.randn(new long[] {200_000}, DType.F32, CPU, 7L).requiresGrad(true);
      Tensor dOut = Tensor.randn(new long[] {20_000, width}, DType.F32, CPU, 8L);
      List<float[]> r = new ArrayList<>();
      for (Reduce red : Reduce.values()) {
        Tensor out = MessagePassing.aggregate(g, x, w, red);
        r.add(out.toFloatArray());
        for (Tensor gr : Autograd.grad(List.of(out), List.of(x, w), List.of(dOut), false)) r.add(gr.toFloatArray());
      }
      Tensor e = MessagePassing.sddmm(g, x, x.mul(0.5));
      r.add(e.toFloatArray());
      r.add(Autograd.grad(List.of(e), List.of(x), List.of(w.detach()), false).get(0).toFloatArray());
      return r;
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }

  /**
   * Bitwise the same on 1, 2, 3, 8 and 16 threads and from run to run, forward and backward of every
   * reduction and sddmm, on a power-law graph large enough for the parallel path (one hub row with
   * thousands of edges, parts handed out dynamically). Guards the rule that a row is reduced by
   * one thread in CSR order: a kernel that split rows across threads, or changed the order with the
   * thread count, fails here (checked by reversing the edge order on odd threads).
   */
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

  // ---- bad input -----------------------------------------------------------------------------

  @Test
  void badInputNamesTheOpAndTheShapesAndChangesNothing() {
    GraphFixtures.Edges in = MESSY;
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      Tensor x = Tensor.randn(new long[] {in.n(), 4}, DType.F32, CPU, 1L);
      Tensor w = Tensor.randn(new long[] {in.e()}, DType.F32, CPU, 2L);
      float[] x0 = x.toFloatArray(), w0 = w.toFloatArray();
      int xv = x.storage().version(), wv = w.storage().version();
      String op = "MessagePassing.aggregate";
      expect(op, "F32[59, 4]", () -> MessagePassing.aggregate(g, x.narrow(0, 0, in.n() - 1), Reduce.SUM));
      expect(op, "I64[60, 4]", () -> MessagePassing.aggregate(g, x.castTo(DType.I64), Reduce.SUM));
      expect(op, "BF16[60, 4]", () -> MessagePassing.aggregate(g, x.castTo(DType.BF16), Reduce.MEAN));
      expect(op, "F32[" + (in.e() - 1) + "]",
          () -> MessagePassing.aggregate(g, x, w.narrow(0, 0, in.e() - 1), Reduce.SUM));
      expect(op, "F64[" + in.e() + "]", () -> MessagePassing.aggregate(g, x, w.castTo(DType.F64), Reduce.MAX));
      expect(op, "F32[" + in.e() + ", 3]",
          ()
              -> MessagePassing.aggregate(
                  g, x.reshape(in.n(), 2, 2), Tensor.zeros(new long[] {in.e(), 3}, DType.F32, CPU), Reduce.SUM));
      expect(op, "reduce is null", () -> MessagePassing.aggregate(g, x, null));
      expect("MessagePassing.sddmm", "F32[60, 3]", () -> MessagePassing.sddmm(g, x, x.narrow(1, 0, 3)));
      expect("MessagePassing.sddmm", "F64[60, 4]", () -> MessagePassing.sddmm(g, x, x.castTo(DType.F64)));
      expect("MessagePassing.sddmm", "F32[4, 60]", () -> MessagePassing.sddmm(g, x.mT(), x.mT()));
      expect("Graph.toGraphOrder", "F32[5]", () -> g.toGraphOrder(w.narrow(0, 0, 5)));
      // closed tensors: use after free is an IllegalStateException naming the op and the tensor
      Tensor dead = Tensor.zeros(new long[] {in.n(), 4}, DType.F32, CPU);
      dead.close();
      IllegalStateException e =
          assertThrows(IllegalStateException.class, () -> MessagePassing.aggregate(g, dead, Reduce.SUM));
      assertTrue(e.getMessage().startsWith(op) && e.getMessage().contains("F32[60, 4]"), e.getMessage());
      Tensor deadW = Tensor.zeros(new long[] {in.e()}, DType.F32, CPU);
      deadW.close();
      e = assertThrows(IllegalStateException.class, () -> MessagePassing.aggregate(g, x, deadW, Reduce.MEAN));
      assertTrue(e.getMessage().startsWith(op) && e.getMessage().contains("F32[" + in.e() + "]"), e.getMessage());
      // nothing changed
      assertArrayEquals(x0, x.toFloatArray());
      assertArrayEquals(w0, w.toFloatArray());
      assertEquals(xv, x.storage().version());
      assertEquals(wv, w.storage().version());
      assertArrayEquals(MessagePassing.aggregate(g, x, w, Reduce.SUM).toFloatArray(),
          MessagePassing.aggregate(g, x, w, Reduce.SUM).toFloatArray(), "the graph still works");
    }
  }

  static void expect(String op, String shape, Runnable call) {
    MetakernelsException e = assertThrows(MetakernelsException.class, call::run);
    assertTrue(e.getMessage().startsWith(op) && e.getMessage().contains(shape), e.getMessage());
  }

  /**
   * The C ABI checks the CSR form itself (the Java graph never passes a bad one, so only a direct
   * call reaches these): row pointers, column range, reduce code, the argmax buffer.
   */
  @Test
  void nativeValidationOfTheCsrForm() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.ones(new long[] {3, 2}, DType.F32, CPU), out = Tensor.empty(new long[] {3, 2}, DType.F32, CPU);
      Tensor arg = Tensor.empty(new long[] {3, 2}, DType.I64, CPU);
      Tensor good = Tensor.ofIndices(new long[] {0, 2, 3, 4}, 4), col = Tensor.ofIndices(new long[] {0, 1, 2, 2}, 4);
      assertEquals(Codes.OK, spmm(Codes.GRAPH_REDUCE_MAX, good, col, 4, x, out, arg));
      assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1}, out.toFloatArray());
      assertArrayEquals(new long[] {0, 0, 2, 2, 3, 3}, arg.toLongArray());
      String sizes = "rows = 3, cols = 3, nnz = 4, heads = 1, width = 2";
      rejected(spmm(0, Tensor.ofIndices(new long[] {0, 3, 2, 4}, 4), col, 4, x, out, null), sizes,
          "row_ptr [4] is not a CSR row pointer (1 entries");
      rejected(spmm(0, Tensor.ofIndices(new long[] {1, 2, 3, 4}, 4), col, 4, x, out, null), sizes, "row_ptr [4]");
      rejected(
          spmm(0, good, Tensor.ofIndices(new long[] {0, 1, 2, 2, 0}, 5), 5, x, out, null), "nnz = 5", "row_ptr [4]");
      rejected(spmm(0, good, Tensor.ofIndices(new long[] {0, 3, -1, 2}, 4), 4, x, out, null), sizes,
          "2 of 4 column indices (col [4]) outside [0, 3)");
      rejected(spmm(7, good, col, 4, x, out, null), "reduce 7", "sum, mean, max, min");
      Tensor ones = Tensor.ones(new long[] {4}, DType.F32, CPU);
      int st1 = MkNative.mk_graph_spmm_forward(0, DType.F32.code, 0, 3, 3, 4, 1, 2, good.address("t"), col.address("t"),
          ones.address("t"), Tensor.ofIndices(new long[] {3, 2, 4, 0}, 4).address("t"), x.address("t"),
          out.address("t"), 0L, 0L);
      rejected(st1, sizes, "1 of 4 weight indices (weight_index [4]) outside [0, 4)");
      rejected(spmm(Codes.GRAPH_REDUCE_MIN, good, col, 4, x, out, null), sizes, "max and min need arg");
      int st = MkNative.mk_graph_sddmm_forward(0, DType.F32.code, 3, 3, 4, 1, 2, good.address("t"),
          Tensor.ofIndices(new long[] {0, 1, 2, 9}, 4).address("t"), x.address("t"), x.address("t"),
          Tensor.empty(new long[] {4}, DType.F32, CPU).address("t"), 0L);
      rejected(st, "mk_graph_sddmm_forward: " + sizes, "1 of 4 column indices");
    }
  }

  static int spmm(int reduce, Tensor ptr, Tensor col, long nnz, Tensor x, Tensor out, Tensor arg) {
    return MkNative.mk_graph_spmm_forward(0, DType.F32.code, reduce, 3, 3, nnz, 1, 2, ptr.address("t"),
        col.address("t"), 0L, 0L, x.address("t"), out.address("t"), arg == null ? 0L : arg.address("t"), 0L);
  }

  static void rejected(int status, String sizes, String what) {
    assertEquals(Codes.ERR_INVALID_ARGUMENT, status);
    String m = Native.lastError();
    assertTrue(m.contains("mk_graph_") && m.contains(sizes) && m.contains(what), m);
  }

  // ---- version checks -----------------------------------------------------------------------

  /**
   * The graph's index tensors are read by every backward of these ops (the rule captures the graph;
   * Node's scan of captured objects finds its tensors): editing one in place between the forward
   * and the backward makes the backward refuse, naming the op. Without that scan the backward would
   * run on the edited indices.
   */
  @Test
  void editedGraphTensorsAreRefusedByTheBackward() {
    try (Scope s = Scope.open()) {
      for (Reduce red : Reduce.values()) {
        Graph g = Graph.fromEdges(MESSY.index(), MESSY.n()).ownedBy(s);
        Tensor x = Tensor.randn(new long[] {MESSY.n(), 3}, DType.F64, CPU, 3L).requiresGrad(true);
        Tensor out = MessagePassing.aggregate(g, x, red);
        g.cscDestinations().fillInPlace(0); // still a valid column array: only the version tells
        IllegalStateException e =
            assertThrows(IllegalStateException.class, () -> Autograd.grad(out.sum(), List.of(x), false));
        String opName = "aggregate(" + red.name().toLowerCase() + ")";
        assertTrue(e.getMessage().contains("backward of '" + opName + "'")
                && e.getMessage().contains("modified in place") && e.getMessage().contains("I64[" + MESSY.e() + "]"),
            e.getMessage());
      }
      // and a graph closed before the backward
      Graph g = Graph.fromEdges(MESSY.index(), MESSY.n());
      Tensor x = Tensor.randn(new long[] {MESSY.n(), 3}, DType.F64, CPU, 4L).requiresGrad(true);
      Tensor e = MessagePassing.sddmm(g, x, x);
      g.close();
      IllegalStateException ex =
          assertThrows(IllegalStateException.class, () -> Autograd.grad(e.sum(), List.of(x), false));
      assertTrue(ex.getMessage().contains("backward of 'sddmm'") && ex.getMessage().contains("freed"), ex.getMessage());
    }
  }

  /**
   * The transposed pass with indexed weights (the CSC sum of a gradient) gathers the weights into
   * row order, a chunk of rows at a time (2^20 weights, kernels/cpu/graph.cpp), before it sums:
   * its result must be bitwise that of the same pass with the weights put in CSC order up front
   * (direct weights, read in order), for sum and mean, on 1 and 2 threads. 64 heads and 300k edges
   * make every part of the row partition hold more than one chunk.
   */
  @Test
  void indexedWeightsGatheredInChunksGiveTheDirectResultBitwise() {
    int before = MkNative.mk_runtime_num_threads();
    long n = 20_000, e = 300_000, heads = 64;
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(Graphs.rmat(n, e, 9L), n)) {
      Tensor x = Tensor.randn(new long[] {n, heads}, DType.F32, CPU, 10L);
      Tensor w = Tensor.randn(new long[] {e, heads}, DType.F32, CPU, 11L); // graph order
      Tensor wCsc = w.indexSelect(0, g.cscToGraph()); // the same weights in CSC order
      for (int threads : new int[] {1, 2}) {
        MkNative.mk_runtime_set_num_threads(threads);
        for (Reduce red : new Reduce[] {Reduce.SUM, Reduce.MEAN}) {
          Tensor indexed = Tensor.empty(new long[] {n, heads}, DType.F32, CPU);
          Tensor direct = Tensor.empty(new long[] {n, heads}, DType.F32, CPU);
          assertEquals(Codes.OK,
              MkNative.mk_graph_spmm_forward(0, DType.F32.code, red.code, n, n, e, heads, 1, g.colPtr().address("t"),
                  g.cscDestinations().address("t"), w.address("t"), g.cscToGraph().address("t"), x.address("t"),
                  indexed.address("t"), 0L, 0L));
          assertEquals(Codes.OK,
              MkNative.mk_graph_spmm_forward(0, DType.F32.code, red.code, n, n, e, heads, 1, g.colPtr().address("t"),
                  g.cscDestinations().address("t"), wCsc.address("t"), 0L, x.address("t"), direct.address("t"), 0L,
                  0L));
          float[] a = indexed.toFloatArray(), b = direct.toFloatArray();
          for (int i = 0; i < a.length; i++)
            assertEquals(Float.floatToRawIntBits(b[i]), Float.floatToRawIntBits(a[i]),
                red + " on " + threads + " threads, element " + i);
        }
      }
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }

  /**
   * Hub rows (issue 15): a row of more than 128 non-zeros is summed in segments of 128 from the
   * row's start, each from 0 by fused multiply-adds in graph order, and the segment sums are added
   * left to right (mean: that / in-degree), on every device and thread count (the CUDA kernels
   * split such rows across lane groups and stay bitwise equal). Checked bit for bit against that
   * rule written out here, for rows of 127, 128, 129, 256, 257 and 1,000 edges and isolated nodes.
   */
  @Test
  void hubRowsAreSummedInFixedSegmentsOf128() {
    final int segment = 128;
    int[] inDegree = {0, 1000, 127, 128, 129, 0, 256, 257, 3};
    int n = 60, width = 5;
    Random rnd = new Random(77L);
    List<long[]> edges = new ArrayList<>();
    for (int v = 0; v < inDegree.length; v++)
      for (int k = 0; k < inDegree[v]; k++) edges.add(new long[] {rnd.nextInt(n), v});
    java.util.Collections.shuffle(edges, rnd);
    long[] src = new long[edges.size()], dst = new long[edges.size()];
    for (int i = 0; i < src.length; i++) {
      src[i] = edges.get(i)[0];
      dst[i] = edges.get(i)[1];
    }
    for (int threads : new int[] {1, 3}) {
      int before = MkNative.mk_runtime_num_threads();
      MkNative.mk_runtime_set_num_threads(threads);
      try (Scope s = Scope.open(); Graph g = Graph.fromEdges(src, dst, n)) {
        long[] ptr = g.rowPtr().toLongArray(), cols = g.sources().toLongArray();
        for (DType t : new DType[] {DType.F32, DType.F64})
          for (Reduce red : new Reduce[] {Reduce.SUM, Reduce.MEAN})
            for (boolean weighted : new boolean[] {false, true}) {
              double[] x = rounded(GraphFixtures.uniform(rnd, n * width, -2, 2), t);
              double[] w = weighted ? rounded(weights(rnd, src.length), t) : null; // graph order
              Tensor out = MessagePassing.aggregate(
                  g, tensor(x, t, n, width), w == null ? null : tensor(w, t, src.length), red);
              double[] got = out.toDoubleArray();
              for (int r = 0; r < n; r++)
                for (int c = 0; c < width; c++) {
                  long b = ptr[r], e = ptr[r + 1];
                  double row = 0;
                  float rowF = 0;
                  for (long sb = b; sb < e || sb == b; sb += segment) {
                    double acc = 0;
                    float accF = 0;
                    for (long k = sb; k < Math.min(sb + segment, e); k++) {
                      double wk = w == null ? 1 : w[(int) k], xk = x[(int) cols[(int) k] * width + c];
                      acc = Math.fma(wk, xk, acc);
                      accF = Math.fma((float) wk, (float) xk, accF);
                    }
                    row = sb == b ? acc : row + acc;
                    rowF = sb == b ? accF : rowF + accF;
                  }
                  if (red == Reduce.MEAN && e > b) {
                    row /= e - b;
                    rowF /= e - b;
                  }
                  double want = t == DType.F64 ? row : rowF;
                  if (Double.doubleToLongBits(got[r * width + c]) != Double.doubleToLongBits(want))
                    fail(String.format("%s %s weighted=%b threads=%d node %d (in-degree %d) column %d: %.17g, the rule"
                            + " gives %.17g",
                        t, red, weighted, threads, r, e - b, c, got[r * width + c], want));
                }
            }
      } finally {
        MkNative.mk_runtime_set_num_threads(before);
      }
    }
  }
}
