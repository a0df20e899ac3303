package org.metakernels.nn;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.GradCheck;
import org.metakernels.graph.Graph;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * GATConv against a float64 loop of PyG's definition (self-loops removed, then one per node;
 * concatenated or averaged heads; bias), substituted weights, second-order gradients through the
 * layer's parameters, and its refusals.
 */
class GATConvTest {
  static final Device CPU = Device.CPU;
  // node 3 receives only its own self-loop, node 5 nothing; 2 -> 2 is a self-loop; 0 -> 1 twice
  static final long[] SRC = {0, 0, 1, 2, 2, 3, 4, 1, 0, 3};
  static final long[] DST = {1, 1, 2, 2, 0, 3, 1, 4, 4, 0};
  static final int N = 6;

  /** PyG's GATConv in float64 loops; params as flat arrays, W [H·F, in]. */
  static double[] reference(double[] x, double[] w, double[] as, double[] ad, double[] b, int in, int heads, int f,
      boolean concat, double slope) {
    List<long[]> edges = new ArrayList<>();
    for (int k = 0; k < SRC.length; k++)
      if (SRC[k] != DST[k]) edges.add(new long[] {SRC[k], DST[k]});
    for (int i = 0; i < N; i++) edges.add(new long[] {i, i});
    double[] xh = new double[N * heads * f];
    for (int i = 0; i < N; i++)
      for (int o = 0; o < heads * f; o++)
        for (int c = 0; c < in; c++) xh[i * heads * f + o] += x[i * in + c] * w[o * in + c];
    double[] ss = new double[N * heads], sd = new double[N * heads];
    for (int i = 0; i < N; i++)
      for (int h = 0; h < heads; h++)
        for (int d = 0; d < f; d++) {
          ss[i * heads + h] += xh[(i * heads + h) * f + d] * as[h * f + d];
          sd[i * heads + h] += xh[(i * heads + h) * f + d] * ad[h * f + d];
        }
    double[] agg = new double[N * heads * f];
    for (int i = 0; i < N; i++)
      for (int h = 0; h < heads; h++) {
        double m = Double.NEGATIVE_INFINITY, sum = 0;
        List<double[]> es = new ArrayList<>();
        for (long[] e : edges)
          if (e[1] == i) {
            double z = ss[(int) e[0] * heads + h] + sd[i * heads + h];
            double v = z > 0 ? z : slope * z;
            es.add(new double[] {e[0], v});
            m = Math.max(m, v);
          }
        for (double[] e : es) sum += Math.exp(e[1] - m);
        for (double[] e : es)
          for (int d = 0; d < f; d++)
            agg[(i * heads + h) * f + d] += Math.exp(e[1] - m) / sum * xh[((int) e[0] * heads + h) * f + d];
      }
    int width = concat ? heads * f : f;
    double[] out = new double[N * width];
    for (int i = 0; i < N; i++)
      for (int h = 0; h < heads; h++)
        for (int d = 0; d < f; d++) {
          double v = agg[(i * heads + h) * f + d];
          if (concat)
            out[i * width + h * f + d] = v;
          else
            out[i * width + d] += v / heads;
        }
    for (int i = 0; i < N; i++)
      for (int c = 0; c < width; c++) out[i * width + c] += b[c];
    return out;
  }

  @Test
  void matchesPygDefinitionConcatAndMean() {
    for (boolean concat : new boolean[] {true, false})
      try (Scope s = Scope.open(); Graph g = Graph.fromEdges(SRC, DST, N);
           GATConv conv = new GATConv(5, 3, 4, concat, 0.2, true, true, DType.F64, CPU, 11L)) {
        // a non-zero bias so that it is checked
        Map<String, Tensor> p = conv.namedParameters();
        Tensor bias = Tensor.randn(p.get("bias").shape(), DType.F64, CPU, 3L);
        Tensor x = Tensor.randn(new long[] {N, 5}, DType.F64, CPU, 4L);
        Tensor y = conv.forward(g, x, Weights.of(Map.of("bias", bias)));
        assertArrayEquals(new long[] {N, concat ? 12 : 3}, y.shape());
        assertEquals(concat ? 12 : 3, conv.outWidth());
        double[] want = reference(x.toDoubleArray(), p.get("weight").toDoubleArray(), p.get("attSrc").toDoubleArray(),
            p.get("attDst").toDoubleArray(), bias.toDoubleArray(), 5, 4, 3, concat, 0.2);
        double[] got = y.toDoubleArray();
        for (int i = 0; i < want.length; i++)
          assertEquals(want[i], got[i], 1e-12, "concat " + concat + " element " + i);
      }
  }

  @Test
  void withoutSelfLoopsAndBiasNodesWithoutInEdgesGiveZero() {
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(SRC, DST, N);
         GATConv conv = new GATConv(5, 2, 3, true, 0.2, false, false, DType.F32, CPU, 12L)) {
      Tensor y = conv.forward(g, Tensor.randn(new long[] {N, 5}, DType.F32, CPU, 5L));
      float[] v = y.toFloatArray();
      for (int c = 0; c < 6; c++) assertEquals(0f, v[5 * 6 + c], "node 5 has no in-edges");
      assertEquals(3, conv.parameters().size(), "weight, attSrc, attDst");
    }
  }

  @Test
  void secondOrderThroughSubstitutedWeights() {
    try (Scope s = Scope.open(); GATConv conv = new GATConv(3, 2, 2, true, 0.2, true, true, DType.F64, CPU, 13L)) {
      Tensor x = Tensor.randn(new long[] {N, 3}, DType.F64, CPU, 6L);
      List<String> names = new ArrayList<>(conv.namedParameters().keySet());
      List<Tensor> params = new ArrayList<>();
      Random r = new Random(7);
      for (Tensor p : conv.parameters())
        params.add(p.detach().add(Tensor.randn(p.shape(), DType.F64, CPU, r.nextLong()).mul(0.3)));
      List<GradCheck.Comparison> res = GradCheck.check(ps
          -> onGraph(g -> {
        Map<String, Tensor> w = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) w.put(names.get(i), ps.get(i));
        return conv.forward(g, x, Weights.of(w)).tanh().square().sum();
      }),
          params, 2);
      assertTrue(res.stream().filter(c -> c.order() == 2).anyMatch(c -> Math.abs(c.numeric()) > 1e-6));
    }
  }

  static Tensor onGraph(java.util.function.Function<Graph, Tensor> f) {
    return f.apply(Graph.fromEdges(SRC, DST, N).ownedBy(Scope.current()));
  }

  /** A backward recorded with one graph still runs after the layer saw another graph. */
  @Test
  void backwardAfterTheGraphChanged() {
    try (Scope s = Scope.open(); Graph g1 = Graph.fromEdges(SRC, DST, N); Graph g2 = Graph.fromEdges(DST, SRC, N);
         GATConv conv = new GATConv(4, 2, 2, DType.F64, CPU, 14L)) {
      Tensor x = Tensor.randn(new long[] {N, 4}, DType.F64, CPU, 8L).requiresGrad(true);
      Tensor y1 = conv.forward(g1, x).sum();
      Tensor y2 = conv.forward(g2, x).sum();
      List<Tensor> gr = Autograd.grad(y1.add(y2), List.of(x), false);
      assertArrayEquals(x.shape(), gr.get(0).shape());
    }
  }

  /**
   * One layer and one graph shared by two threads, each in its own scope: the self-loop graph is
   * the layer's, so thread A closing its scope leaves B's recorded backward intact (it was A's
   * scope's, and B's backward read freed memory: an exception, or a crash under load); the result
   * equals a one-thread run bit for bit; alternating between two open graphs keeps one derived
   * graph each, and everything is freed with the layer and the graphs.
   */
  @Test
  void sharedAcrossThreadsAndScopes() throws Exception {
    org.metakernels.runtime.Native.ensureLoaded();
    long before = org.metakernels.runtime.MkNative.mk_host_live_bytes();
    try (Graph g = Graph.fromEdges(SRC, DST, N); Graph g2 = Graph.fromEdges(DST, SRC, N);
         GATConv conv = new GATConv(4, 2, 2, DType.F64, CPU, 16L)) {
      double[] want;
      try (Scope s = Scope.open()) {
        Tensor x = Tensor.randn(new long[] {N, 4}, DType.F64, CPU, 9L).requiresGrad(true);
        want = Autograd.grad(conv.forward(g, x).square().sum(), List.of(x), false).get(0).toDoubleArray();
      }
      java.util.concurrent.CyclicBarrier forwardDone = new java.util.concurrent.CyclicBarrier(2);
      java.util.concurrent.CountDownLatch aClosed = new java.util.concurrent.CountDownLatch(1);
      java.util.concurrent.atomic.AtomicReference<double[]> got = new java.util.concurrent.atomic.AtomicReference<>();
      Thread a = new Thread(() -> {
        try {
          try (Scope s = Scope.open()) {
            conv.forward(g, Tensor.randn(new long[] {N, 4}, DType.F64, CPU, 9L));
            forwardDone.await();
          }
          aClosed.countDown();
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      });
      Thread b = new Thread(() -> {
        try (Scope s = Scope.open()) {
          Tensor x = Tensor.randn(new long[] {N, 4}, DType.F64, CPU, 9L).requiresGrad(true);
          Tensor loss = conv.forward(g, x).square().sum();
          forwardDone.await();
          aClosed.await();
          got.set(Autograd.grad(loss, List.of(x), false).get(0).toDoubleArray());
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      });
      java.util.List<Throwable> errors = java.util.Collections.synchronizedList(new ArrayList<>());
      for (Thread t : List.of(a, b)) {
        t.setUncaughtExceptionHandler((th, e) -> errors.add(e));
        t.start();
      }
      a.join();
      b.join();
      assertTrue(errors.isEmpty(), () -> "thread failed: " + errors);
      assertArrayEquals(want, got.get(), 0.0);
      long held = org.metakernels.runtime.MkNative.mk_host_live_bytes();
      for (int i = 0; i < 10; i++)
        try (Scope s = Scope.open()) {
          conv.forward(i % 2 == 0 ? g : g2, Tensor.randn(new long[] {N, 4}, DType.F64, CPU, i));
        }
      long afterTen = org.metakernels.runtime.MkNative.mk_host_live_bytes();
      for (int i = 0; i < 10; i++)
        try (Scope s = Scope.open()) {
          conv.forward(i % 2 == 0 ? g : g2, Tensor.randn(new long[] {N, 4}, DType.F64, CPU, i));
        }
      assertTrue(afterTen > held, "g2's self-loop graph");
      assertEquals(afterTen, org.metakernels.runtime.MkNative.mk_host_live_bytes(), "no growth while alternating");
    }
    assertEquals(before, org.metakernels.runtime.MkNative.mk_host_live_bytes(), "all freed");
  }

  @Test
  void refusals() {
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(SRC, DST, N);
         GATConv conv = new GATConv(5, 3, 2, DType.F32, CPU, 15L)) {
      MetakernelsException e =
          assertThrows(MetakernelsException.class, () -> conv.forward(Tensor.zeros(new long[] {N, 5}, DType.F32, CPU)));
      assertTrue(e.getMessage().contains("needs a graph"), e.getMessage());
      e = assertThrows(
          MetakernelsException.class, () -> conv.forward(g, Tensor.zeros(new long[] {N, 4}, DType.F32, CPU)));
      assertTrue(e.getMessage().startsWith("GATConv") && e.getMessage().contains("F32[6, 4]"), e.getMessage());
      e = assertThrows(
          MetakernelsException.class, () -> conv.forward(g, Tensor.zeros(new long[] {N - 1, 5}, DType.F32, CPU)));
      assertTrue(e.getMessage().contains("F32[5, 5]"), e.getMessage());
      assertThrows(MetakernelsException.class, () -> new GATConv(5, 0, 2, DType.F32, CPU, 1L));
      assertThrows(
          MetakernelsException.class, () -> new GATConv(5, 3, 2, true, Double.NaN, true, true, DType.F32, CPU, 1L));
    }
  }
}
