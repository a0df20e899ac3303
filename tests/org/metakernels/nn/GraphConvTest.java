package org.metakernels.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.metakernels.graph.Graph;
import org.metakernels.graph.Reduce;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/** GCNConv, SAGEConv and SemanticAttention against dense float64 references. */
class GraphConvTest {
  static final Device CPU = Device.CPU;
  // 6 nodes: isolated node 5, self-loop 2->2, duplicate 1->3, node 1 receives three edges
  static final long[] SRC = {0, 1, 2, 2, 3, 4, 1, 1, 0, 3};
  static final long[] DST = {1, 1, 0, 2, 1, 4, 3, 3, 4, 0};
  static final int N = 6;

  static double[] rand(Random r, int n) {
    double[] v = new double[n];
    for (int i = 0; i < n; i++) v[i] = 2 * r.nextDouble() - 1;
    return v;
  }

  /** A[i][j] = number of edges j -> i. */
  static double[][] adjacency() {
    double[][] a = new double[N][N];
    for (int e = 0; e < SRC.length; e++) a[(int) DST[e]][(int) SRC[e]] += 1;
    return a;
  }

  /** y = x W^T (+ b): [n, out]. */
  static double[] linear(double[] x, double[] w, double[] b, int n, int in, int out) {
    double[] y = new double[n * out];
    for (int i = 0; i < n; i++)
      for (int o = 0; o < out; o++) {
        double s = b == null ? 0 : b[o];
        for (int k = 0; k < in; k++) s += x[i * in + k] * w[o * in + k];
        y[i * out + o] = s;
      }
    return y;
  }

  static void close(double[] ref, double[] got, double tol, String what) {
    assertEquals(ref.length, got.length, what);
    for (int i = 0; i < ref.length; i++)
      assertEquals(ref[i], got[i], tol * (1 + Math.abs(ref[i])), what + " [" + i + "]");
  }

  @Test
  void gcnMatchesDenseNormalisedPropagation() {
    Random r = new Random(1);
    int in = 4, out = 3;
    double[] x = rand(r, N * in), w = rand(r, out * in), b = rand(r, out);
    for (boolean loops : new boolean[] {true, false}) {
      double[][] a = adjacency();
      if (loops)
        for (int i = 0; i < N; i++) a[i][i] += 1;
      double[] deg = new double[N];
      for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) deg[i] += a[i][j];
      double[] xw = linear(x, w, null, N, in, out);
      double[] ref = new double[N * out];
      for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
          if (a[i][j] == 0) continue;
          double c = a[i][j] / Math.sqrt(deg[i] * deg[j]);
          for (int o = 0; o < out; o++) ref[i * out + o] += c * xw[j * out + o];
        }
        for (int o = 0; o < out; o++) ref[i * out + o] += b[o];
      }
      try (Scope s = Scope.open(); Graph g = Graph.fromEdges(SRC, DST, N);
           GCNConv conv = new GCNConv(in, out, true, loops, DType.F64, CPU, 5)) {
        Weights sub = Weights.of(Map.of("weight", Tensor.of(w, out, in), "bias", Tensor.of(b, out)));
        double[] got = conv.forward(g, Tensor.of(x, N, in), sub).toDoubleArray();
        close(ref, got, 1e-12, "GCN loops=" + loops);
        assertSame(conv.normalized(g, DType.F64), conv.normalized(g, DType.F64), "cached");
        // F32 agrees with the F64 reference to float precision
        Weights sub32 = Weights.of(
            Map.of("weight", Tensor.of(w, out, in).castTo(DType.F32), "bias", Tensor.of(b, out).castTo(DType.F32)));
        double[] got32 = conv.forward(g, Tensor.of(x, N, in).castTo(DType.F32), sub32).toDoubleArray();
        close(ref, got32, 1e-5, "GCN F32 loops=" + loops);
      }
    }
  }

  @Test
  void sageMeanAndMaxMatchDenseReference() {
    Random r = new Random(2);
    int in = 3, out = 2;
    double[] x = rand(r, N * in), wn = rand(r, out * in), bn = rand(r, out), wr = rand(r, out * in);
    for (Reduce red : new Reduce[] {Reduce.MEAN, Reduce.MAX}) {
      double[] agg = new double[N * in];
      int[] cnt = new int[N];
      for (int i = 0; i < N; i++)
        for (int f = 0; f < in; f++) agg[i * in + f] = red == Reduce.MAX ? Double.NEGATIVE_INFINITY : 0;
      for (int e = 0; e < SRC.length; e++) {
        int d = (int) DST[e], s = (int) SRC[e];
        cnt[d]++;
        for (int f = 0; f < in; f++)
          agg[d * in + f] =
              red == Reduce.MAX ? Math.max(agg[d * in + f], x[s * in + f]) : agg[d * in + f] + x[s * in + f];
      }
      for (int i = 0; i < N; i++)
        for (int f = 0; f < in; f++)
          agg[i * in + f] = cnt[i] == 0 ? 0 : red == Reduce.MAX ? agg[i * in + f] : agg[i * in + f] / cnt[i];
      double[] ref = linear(agg, wn, bn, N, in, out);
      double[] root = linear(x, wr, null, N, in, out);
      for (int i = 0; i < ref.length; i++) ref[i] += root[i];
      try (Scope s = Scope.open(); Graph g = Graph.fromEdges(SRC, DST, N);
           SAGEConv sage = new SAGEConv(in, out, red, true, DType.F64, CPU, 9)) {
        Weights sub = Weights.of(Map.of("neighbor.weight", Tensor.of(wn, out, in), "neighbor.bias", Tensor.of(bn, out),
            "root.weight", Tensor.of(wr, out, in)));
        close(ref, sage.forward(g, Tensor.of(x, N, in), sub).toDoubleArray(), 1e-12, "SAGE " + red);
        assertEquals(3, sage.parameters().size());
      }
    }
  }

  @Test
  void semanticAttentionMatchesReference() {
    Random r = new Random(3);
    int m = 3, n = 5, d = 4, h = 2;
    double[] z = rand(r, m * n * d), w = rand(r, h * d), b = rand(r, h), q = rand(r, h);
    double[] score = new double[m];
    for (int v = 0; v < m; v++) {
      for (int i = 0; i < n; i++)
        for (int k = 0; k < h; k++) {
          double t = b[k];
          for (int c = 0; c < d; c++) t += w[k * d + c] * z[(v * n + i) * d + c];
          score[v] += q[k] * Math.tanh(t) / n;
        }
    }
    double mx = Math.max(score[0], Math.max(score[1], score[2])), sum = 0;
    double[] beta = new double[m];
    for (int v = 0; v < m; v++) sum += beta[v] = Math.exp(score[v] - mx);
    double[] ref = new double[n * d];
    for (int v = 0; v < m; v++)
      for (int i = 0; i < n * d; i++) ref[i] += beta[v] / sum * z[v * n * d + i];
    try (Scope s = Scope.open(); SemanticAttention att = new SemanticAttention(d, h, DType.F64, CPU, 4)) {
      Weights sub =
          Weights.of(Map.of("proj.weight", Tensor.of(w, h, d), "proj.bias", Tensor.of(b, h), "query", Tensor.of(q, h)));
      Tensor zt = Tensor.of(z, m, n, d);
      close(ref, att.forward(zt, sub).toDoubleArray(), 1e-12, "semantic attention");
      double[] bt = att.attention(zt, sub).toDoubleArray();
      for (int v = 0; v < m; v++) assertEquals(beta[v] / sum, bt[v], 1e-12);
      List<Tensor> views = List.of(zt.select(0, 0), zt.select(0, 1), zt.select(0, 2));
      close(ref, att.forward(views, sub).toDoubleArray(), 1e-12, "from a list");
    }
  }

  @Test
  void badInputNamesTheLayer() {
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(SRC, DST, N);
         GCNConv conv = new GCNConv(4, 3, true, true, DType.F64, CPU, 5);
         SAGEConv sage = new SAGEConv(4, 3, Reduce.MEAN, true, DType.F64, CPU, 5);
         SemanticAttention att = new SemanticAttention(4, 2, DType.F64, CPU, 5)) {
      Tensor x = Tensor.zeros(new long[] {N, 4}, DType.F64, CPU);
      MetakernelsException e = assertThrows(MetakernelsException.class, () -> conv.forward(x));
      assertTrue(e.getMessage().contains("GCNConv"), e.getMessage());
      assertThrows(MetakernelsException.class, () -> sage.forward(x));
      Tensor wrongRows = Tensor.zeros(new long[] {N + 1, 4}, DType.F64, CPU);
      e = assertThrows(MetakernelsException.class, () -> sage.forward(g, wrongRows, Weights.none()));
      assertTrue(e.getMessage().contains("[7, 4]"), e.getMessage());
      Tensor wrongWidth = Tensor.zeros(new long[] {N, 5}, DType.F64, CPU);
      assertThrows(MetakernelsException.class, () -> conv.forward(g, wrongWidth, Weights.none()));
      // a substituted bias of another shape broadcast into a bigger result
      Tensor bigBias = Tensor.zeros(new long[] {3, 1, 3}, DType.F64, CPU);
      e = assertThrows(MetakernelsException.class, () -> conv.forward(g, x, Weights.of(Map.of("bias", bigBias))));
      assertTrue(e.getMessage().contains("GCNConv.forward: the substituted 'bias' F64[3, 1, 3]"), e.getMessage());
      try (GATConv gat = new GATConv(4, 2, 2, DType.F64, CPU, 3L)) {
        Tensor gb = Tensor.zeros(new long[] {5, 1, 4}, DType.F64, CPU);
        e = assertThrows(MetakernelsException.class, () -> gat.forward(g, x, Weights.of(Map.of("bias", gb))));
        assertTrue(e.getMessage().contains("GATConv.forward: the substituted 'bias'"), e.getMessage());
      }
      e = assertThrows(MetakernelsException.class, () -> att.forward(x, Weights.none()));
      assertTrue(e.getMessage().contains("SemanticAttention"), e.getMessage());
      assertThrows(MetakernelsException.class, () -> new SAGEConv(4, 3, Reduce.SUM, true, DType.F64, CPU, 5));
    }
  }

  /**
   * GCNConv with self-loops on a graph whose stored weights are F32 and an F64 layer (the
   * normalised graph kept F32 weights, and aggregate refused them): the F64 result of the same
   * weights held in F64; and a closed or edited graph fails on a cached call as on the first.
   */
  @Test
  void gcnConvWeightTypesAndClosedGraphs() {
    double[] w = new double[SRC.length];
    for (int k = 0; k < w.length; k++) w[k] = 0.25 + 0.125 * k;  // exact in F32
    try (Scope s = Scope.open();
         Graph g32 = Graph.fromEdges(Tensor.ofIndices(concat(SRC, DST), 2, SRC.length), N,
             Tensor.of(w, w.length).to(DType.F32));
         Graph g64 = Graph.fromEdges(Tensor.ofIndices(concat(SRC, DST), 2, SRC.length), N, Tensor.of(w, w.length));
         GCNConv conv = new GCNConv(4, 3, true, true, DType.F64, CPU, 5)) {
      Tensor x = Tensor.randn(new long[] {N, 4}, DType.F64, CPU, 9);
      double[] want = conv.forward(g64, x, Weights.none()).toDoubleArray();
      close(want, conv.forward(g32, x, Weights.none()).toDoubleArray(), 1e-14, "F32-weighted graph, F64 layer");
      close(want, conv.forward(g32, x, Weights.none()).toDoubleArray(), 1e-14, "cached");
      Graph edited = Graph.fromEdges(SRC, DST, N);
      conv.forward(edited, x, Weights.none());
      edited.sources().fillInPlace(0);
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> conv.forward(edited, x, Weights.none()));
      assertTrue(e.getMessage().contains("GCNConv") && e.getMessage().contains("modified in place"), e.getMessage());
      edited.close();
      e = assertThrows(IllegalStateException.class, () -> conv.forward(edited, x, Weights.none()));
      assertTrue(e.getMessage().contains("GCNConv") && e.getMessage().contains("closed"), e.getMessage());
    }
  }

  static long[] concat(long[] a, long[] b) {
    long[] c = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }
}
