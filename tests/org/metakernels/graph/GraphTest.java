package org.metakernels.graph;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Graph: the CSR/CSC built from COO edges against a sort done here by definition, weights in
 * graph order, degrees, self-loops, the GCN normalisation, ownership and validation; the R-MAT
 * generator.
 */
class GraphTest {
  @Test
  void csrAndCscAreTheSortedEdges() {
    GraphFixtures.Edges in = GraphFixtures.messy(1, 40, 200);
    int[] order = GraphFixtures.graphOrder(in);
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      assertEquals(40, g.numNodes());
      assertEquals(in.e(), g.numEdges());
      long[] perm = g.edgePermutation().toLongArray();
      long[] src = g.sources().toLongArray();
      long[] ptr = g.rowPtr().toLongArray();
      for (int k = 0; k < order.length; k++) {
        assertEquals(order[k], perm[k], "graph order = stable sort by (destination, source)");
        assertEquals(in.src()[order[k]], src[k]);
      }
      long[] inDeg = new long[40], outDeg = new long[40];
      for (int e = 0; e < in.e(); e++) {
        inDeg[(int) in.dst()[e]]++;
        outDeg[(int) in.src()[e]]++;
      }
      assertArrayEquals(inDeg, g.inDegrees().toLongArray());
      assertArrayEquals(outDeg, g.outDegrees().toLongArray());
      assertEquals(0, ptr[0]);
      for (int v = 0; v < 40; v++) {
        assertEquals(inDeg[v], ptr[v + 1] - ptr[v]);
        for (long k = ptr[v]; k < ptr[v + 1]; k++) assertEquals(v, in.dst()[order[(int) k]], "row " + v);
      }
      // CSC: every source's out-edges, by destination, pointing back at graph positions
      long[] cptr = g.colPtr().toLongArray(), cdst = g.cscDestinations().toLongArray();
      long[] c2g = g.cscToGraph().toLongArray();
      boolean[] hit = new boolean[in.e()];
      for (int j = 0; j < 40; j++) {
        assertEquals(outDeg[j], cptr[j + 1] - cptr[j]);
        for (long p = cptr[j]; p < cptr[j + 1]; p++) {
          int k = (int) c2g[(int) p];
          assertFalse(hit[k], "each edge once in the CSC");
          hit[k] = true;
          assertEquals(j, src[k], "CSC row = source");
          assertEquals(in.dst()[order[k]], cdst[(int) p], "CSC column = destination");
          if (p > cptr[j]) {
            int kp = (int) c2g[(int) p - 1];
            assertTrue(kp < k, "out-edges of a source in graph order (by destination)");
          }
        }
      }
      // the sorted edge index
      long[] ei = g.edgeIndex().toLongArray();
      for (int k = 0; k < order.length; k++) {
        assertEquals(in.src()[order[k]], ei[k]);
        assertEquals(in.dst()[order[k]], ei[order.length + k]);
      }
    }
  }

  @Test
  void inputOrderDoesNotChangeTheGraph() {
    GraphFixtures.Edges in = GraphFixtures.messy(2, 30, 150);
    // reverse the input: distinct edges land in the same graph positions, duplicates swap ids
    int e = in.e();
    long[] rs = new long[e], rd = new long[e];
    for (int i = 0; i < e; i++) {
      rs[i] = in.src()[e - 1 - i];
      rd[i] = in.dst()[e - 1 - i];
    }
    try (Graph a = Graph.fromEdges(in.src(), in.dst(), in.n()); Graph b = Graph.fromEdges(rs, rd, in.n())) {
      assertArrayEquals(a.rowPtr().toLongArray(), b.rowPtr().toLongArray());
      assertArrayEquals(a.sources().toLongArray(), b.sources().toLongArray());
      assertArrayEquals(a.colPtr().toLongArray(), b.colPtr().toLongArray());
      assertArrayEquals(a.cscDestinations().toLongArray(), b.cscDestinations().toLongArray());
    }
  }

  @Test
  void weightsAreKeptInGraphOrderAndGatheredDifferentiably() {
    GraphFixtures.Edges in = GraphFixtures.messy(3, 20, 80);
    int[] order = GraphFixtures.graphOrder(in);
    double[] w = GraphFixtures.uniform(new Random(4), in.e(), -1, 1);
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n(), Tensor.of(w, in.e()))) {
      assertTrue(g.hasWeights());
      double[] stored = g.edgeWeight().toDoubleArray();
      for (int k = 0; k < order.length; k++) assertEquals(w[order[k]], stored[k], 0.0);
      Tensor wl = Tensor.of(w, in.e()).requiresGrad(true);
      Tensor c = Tensor.arange(in.e(), DType.F64, Device.CPU);
      Tensor wg = g.toGraphOrder(wl);
      assertArrayEquals(stored, wg.toDoubleArray(), 0.0);
      // d/dw_e Σ_k c_k w[perm_k] = c at the graph position of input edge e
      double[] grad = Autograd.grad(wg.mul(c).sum(), List.of(wl), false).get(0).toDoubleArray();
      for (int k = 0; k < order.length; k++) assertEquals(k, grad[order[k]], 0.0);
    }
  }

  @Test
  void selfLoopsAddedAndRemoved() {
    GraphFixtures.Edges in = GraphFixtures.messy(5, 25, 100);
    int loops = 0;
    for (int e = 0; e < in.e(); e++)
      if (in.src()[e] == in.dst()[e]) loops++;
    assertTrue(loops > 0, "the fixture has self-loops");
    double[] w = GraphFixtures.uniform(new Random(6), in.e(), 0.5, 2);
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n(), Tensor.of(w, in.e()));
         Graph plus = g.addSelfLoops(); Graph minus = g.removeSelfLoops(); Graph both = minus.addSelfLoops()) {
      assertEquals(in.e() + in.n(), plus.numEdges());
      assertEquals(in.e() - loops, minus.numEdges());
      assertEquals(in.e() - loops + in.n(), both.numEdges());
      // input order of the new graphs: the old edges, then (for addSelfLoops) one loop per node
      long[] pp = plus.edgePermutation().toLongArray(), ps = plus.sources().toLongArray();
      long[] pptr = plus.rowPtr().toLongArray();
      double[] pw = plus.edgeWeight().toDoubleArray();
      for (int v = 0; v < in.n(); v++)
        for (long k = pptr[v]; k < pptr[v + 1]; k++) {
          int id = (int) pp[(int) k];
          if (id >= in.e()) {
            assertEquals(v, id - in.e(), "loop of node v is input edge E + v");
            assertEquals(v, ps[(int) k]);
            assertEquals(1.0, pw[(int) k], 0.0);
          } else {
            assertEquals(in.src()[id], ps[(int) k]);
            assertEquals(in.dst()[id], v);
            assertEquals(w[id], pw[(int) k], 0.0);
          }
        }
      long[] ms = minus.sources().toLongArray(), mptr = minus.rowPtr().toLongArray();
      for (int v = 0; v < in.n(); v++)
        for (long k = mptr[v]; k < mptr[v + 1]; k++) assertNotEquals(v, ms[(int) k], "no loop left");
      long[] in1 = plus.inDegrees().toLongArray(), in0 = g.inDegrees().toLongArray();
      for (int v = 0; v < in.n(); v++) assertEquals(in0[v] + 1, in1[v]);
    }
  }

  @Test
  void gcnNormalisationIsDHalfAPlusIDHalf() {
    GraphFixtures.Edges in = GraphFixtures.messy(7, 30, 120);
    double[] w = GraphFixtures.uniform(new Random(8), in.e(), 0.5, 2);
    for (boolean weighted : new boolean[] {false, true}) {
      try (Scope s = Scope.open(); Graph g = weighted ? Graph.fromEdges(in.index(), in.n(), Tensor.of(w, in.e()))
                                                      : Graph.fromEdges(in.index(), in.n());
           Graph gn = g.gcnNormalized(DType.F64)) {
        // the dense (A + I) with A[i][j] = Σ weights of the edges j -> i
        int n = in.n();
        double[][] a = new double[n][n];
        for (int e = 0; e < in.e(); e++) a[(int) in.dst()[e]][(int) in.src()[e]] += weighted ? w[e] : 1.0;
        for (int i = 0; i < n; i++) a[i][i] += 1.0;
        double[] deg = new double[n];
        for (int i = 0; i < n; i++)
          for (int j = 0; j < n; j++) deg[i] += a[i][j];
        // aggregate of the identity: row i of D^-1/2 (A + I) D^-1/2
        double[] id = new double[n * n];
        for (int i = 0; i < n; i++) id[i * n + i] = 1;
        Tensor eye = Tensor.of(id, n, n);
        double[] got = MessagePassing.aggregate(gn, eye, gn.edgeWeight(), Reduce.SUM).toDoubleArray();
        for (int i = 0; i < n; i++)
          for (int j = 0; j < n; j++) {
            double want = a[i][j] / Math.sqrt(deg[i] * deg[j]);
            assertEquals(want, got[i * n + j], 1e-14, "(" + i + ", " + j + ") weighted " + weighted);
          }
        assertEquals(DType.F64, gn.edgeWeight().dtype());
      }
    }
    try (Graph g = Graph.fromEdges(in.src(), in.dst(), in.n()); Graph gn = g.gcnNormalized(DType.F32)) {
      assertEquals(DType.F32, gn.edgeWeight().dtype());
    }
  }

  @Test
  void theGraphOwnsItsTensorsUntilClosed() {
    GraphFixtures.Edges in = GraphFixtures.messy(9, 10, 30);
    Graph g;
    try (Scope s = Scope.open()) {
      g = Graph.fromEdges(in.index(), in.n(), Tensor.of(new double[in.e()], in.e()));
    }
    assertFalse(g.isClosed(), "a scope does not free a graph's tensors");
    assertEquals(in.e(), g.sources().toLongArray().length);
    g.close();
    assertTrue(g.isClosed());
    g.close(); // idempotent
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> MessagePassing.aggregate(g, Tensor.zeros(new long[] {10, 2}, DType.F32, Device.CPU), Reduce.SUM));
    assertTrue(
        e.getMessage().contains("MessagePassing.aggregate") && e.getMessage().contains("closed"), e.getMessage());
    // handed to a scope: freed with it
    Graph h;
    try (Scope s = Scope.open()) {
      h = Graph.fromEdges(in.index(), in.n()).ownedBy(s);
      assertFalse(h.isClosed());
    }
    assertTrue(h.isClosed());
  }

  @Test
  void editedGraphIsRefusedByTheOps() {
    GraphFixtures.Edges in = GraphFixtures.messy(10, 10, 30);
    try (Scope s = Scope.open(); Graph g = Graph.fromEdges(in.index(), in.n())) {
      Tensor x = Tensor.ones(new long[] {10, 3}, DType.F64, Device.CPU);
      MessagePassing.aggregate(g, x, Reduce.SUM);
      // a valid CSR still (all sources 0), but no longer the graph's CSC: the ops must refuse it
      g.sources().fillInPlace(0);
      IllegalStateException e =
          assertThrows(IllegalStateException.class, () -> MessagePassing.aggregate(g, x, Reduce.SUM));
      assertTrue(e.getMessage().contains("modified in place") && e.getMessage().contains("I64[" + in.e() + "]"),
          e.getMessage());
    }
  }

  @Test
  void badEdgesNameTheOpAndTheShapes() {
    try (Scope s = Scope.open()) {
      Tensor good = Tensor.ofIndices(new long[] {0, 1, 2, 1, 2, 0}, 2, 3);
      expect("Graph.fromEdges", "I64[2, 3]", () -> Graph.fromEdges(good, 2)); // node 2 out of [0, 2)
      expect("Graph.fromEdges", "-1", () -> Graph.fromEdges(Tensor.ofIndices(new long[] {0, -1, 1, 1}, 2, 2), 3));
      expect("Graph.fromEdges", "F32[2, 3]", () -> Graph.fromEdges(good.castTo(DType.F32), 3));
      expect("Graph.fromEdges", "I64[3, 2]", () -> Graph.fromEdges(Tensor.ofIndices(new long[6], 3, 2), 3));
      expect("Graph.fromEdges", "I64[0]", () -> Graph.fromEdges(Tensor.ofIndices(new long[0], 0), 3));
      expect("Graph.fromEdges", "numNodes = -1", () -> Graph.fromEdges(good, -1));
      expect("Graph.fromEdges", "F64[2]", () -> Graph.fromEdges(good, 3, Tensor.of(new double[] {1, 2}, 2)));
      expect("Graph.fromEdges", "I64[3]", () -> Graph.fromEdges(good, 3, Tensor.ofIndices(new long[] {1, 2, 3}, 3)));
      expect("Graph.fromEdges", "2 destinations", () -> Graph.fromEdges(new long[] {0, 1, 2}, new long[] {0, 1}, 3));
      // the edge index is unchanged by the failed builds
      assertArrayEquals(new long[] {0, 1, 2, 1, 2, 0}, good.toLongArray());
      Tensor closed = Tensor.ofIndices(new long[] {0, 1}, 2, 1);
      closed.close();
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> Graph.fromEdges(closed, 3));
      assertTrue(e.getMessage().contains("Graph.fromEdges") && e.getMessage().contains("I64[2, 1]"), e.getMessage());
    }
  }

  @Test
  void emptyGraphsAreValid() {
    try (Scope s = Scope.open(); Graph none = Graph.fromEdges(new long[0], new long[0], 0);
         Graph edgeless = Graph.fromEdges(Tensor.ofIndices(new long[0], 2, 0), 4)) {
      assertEquals(0, none.numEdges());
      assertArrayEquals(new long[] {0}, none.rowPtr().toLongArray());
      Tensor x0 = Tensor.zeros(new long[] {0, 3}, DType.F32, Device.CPU);
      assertArrayEquals(new long[] {0, 3}, MessagePassing.aggregate(none, x0, Reduce.MEAN).shape());
      Tensor x = Tensor.ones(new long[] {4, 3}, DType.F32, Device.CPU);
      for (Reduce r : Reduce.values())
        assertArrayEquals(new double[12], MessagePassing.aggregate(edgeless, x, r).toDoubleArray(), 0.0, r.name());
      assertEquals(0, none.addSelfLoops().ownedBy(s).numEdges());
      assertEquals(4, edgeless.gcnNormalized(DType.F64).ownedBy(s).numEdges());
    }
  }

  @Test
  void rmatIsSeededInRangeAndPowerLaw() {
    try (Scope s = Scope.open()) {
      Tensor a = Graphs.rmat(5000, 40000, 11L), b = Graphs.rmat(5000, 40000, 11L), c = Graphs.rmat(5000, 40000, 12L);
      assertArrayEquals(new long[] {2, 40000}, a.shape());
      long[] va = a.toLongArray();
      assertArrayEquals(va, b.toLongArray(), "same seed, same edges");
      assertFalse(Arrays.equals(va, c.toLongArray()), "another seed, other edges");
      long[] inDeg = new long[5000];
      for (int i = 0; i < 40000; i++) {
        assertTrue(va[i] >= 0 && va[i] < 5000 && va[40000 + i] >= 0 && va[40000 + i] < 5000);
        inDeg[(int) va[40000 + i]]++;
      }
      long max = Arrays.stream(inDeg).max().getAsLong();
      long zero = Arrays.stream(inDeg).filter(d -> d == 0).count();
      // mean in-degree 8: a power law puts hubs far above it and leaves many nodes without in-edges
      assertTrue(max > 200, "max in-degree " + max);
      assertTrue(zero > 500, zero + " nodes without in-edges");
      try (Graph g = Graph.fromEdges(a, 5000)) {
        assertEquals(40000, g.numEdges());
      }
      assertThrows(MetakernelsException.class, () -> Graphs.rmat(0, 10, 1L));
      assertThrows(MetakernelsException.class, () -> Graphs.rmat(10, 10, 0.9, 0.2, 0.0, 1L));
    }
  }

  /** The README's graph example, as printed there. */
  @Test
  void readmeExampleRuns() {
    try (Scope scope = Scope.open();
         Graph g = Graph.fromEdges(Graphs.rmat(1000, 8000, 7L), 1000); // seeded R-MAT edges, I64 [2, 8000]
         Graph gcn = g.gcnNormalized(DType.F64)) {
      Tensor x = Tensor.randn(new long[] {1000, 16}, DType.F64, Device.CPU, 1L).requiresGrad(true);
      Tensor h = MessagePassing.aggregate(gcn, x, gcn.edgeWeight(), Reduce.SUM); // D^-1/2 (A+I) D^-1/2 x
      Tensor w = g.toGraphOrder(Tensor.rand(new long[] {8000}, DType.F64, Device.CPU, 2L)).requiresGrad(true);
      Tensor m = MessagePassing.aggregate(g, x, w, Reduce.MAX); // weights in graph order, [1000, 16]
      Tensor e = MessagePassing.sddmm(g, x, x); // <x[dst], x[src]> per edge, [8000]
      List<Tensor> grads = Autograd.grad(m.square().sum(), List.of(x, w), true); // differentiable again
      assertArrayEquals(new long[] {1000, 16}, h.shape());
      assertArrayEquals(new long[] {8000}, e.shape());
      assertTrue(grads.get(1).requiresGrad());
    }
  }

  static void expect(String op, String shape, Runnable call) {
    MetakernelsException e = assertThrows(MetakernelsException.class, call::run);
    assertTrue(e.getMessage().startsWith(op) && e.getMessage().contains(shape), e.getMessage());
  }
}
