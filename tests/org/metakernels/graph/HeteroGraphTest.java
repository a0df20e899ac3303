package org.metakernels.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.GradCheck;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/** SparseMatrix (SpGEMM), HeteroGraph meta-paths, the factorised chain and the hetero SBM. */
class HeteroGraphTest {
  /** A random [rows, cols] COO list with duplicates, values in [-1, 1) or ones. */
  static SparseMatrix random(Random r, int rows, int cols, int nnz, boolean ones) {
    long[] i = new long[nnz], j = new long[nnz];
    double[] v = new double[nnz];
    for (int k = 0; k < nnz; k++) {
      i[k] = r.nextInt(rows);
      j[k] = r.nextInt(cols);
      v[k] = ones ? 1.0 : 2 * r.nextDouble() - 1;
    }
    return SparseMatrix.fromCoo(rows, cols, i, j, v);
  }

  static double[] denseProduct(double[] a, double[] b, int n, int k, int m) {
    double[] c = new double[n * m];
    for (int i = 0; i < n; i++)
      for (int p = 0; p < k; p++)
        for (int j = 0; j < m; j++) c[i * m + j] += a[i * k + p] * b[p * m + j];
    return c;
  }

  @Test
  void fromCooSumsDuplicatesAndSortsColumns() {
    SparseMatrix m = SparseMatrix.fromCoo(2, 3, new long[] {1, 0, 1, 0}, new long[] {2, 1, 2, 0}, null);
    assertEquals(3, m.nnz());
    assertArrayEquals(new double[] {1, 1, 0, 0, 0, 2}, m.toDense());
    assertArrayEquals(new int[] {0, 1, 2}, m.colIndices());
    assertArrayEquals(new double[] {1, 0, 1, 0, 0, 2}, m.transpose().toDense());
    // the copy-free accessors agree with the copies; out of range is refused
    long[] ptr = m.rowPtr();
    for (int i = 0; i <= m.rows(); i++) assertEquals(ptr[i], m.rowStart(i));
    for (int k = 0; k < m.nnz(); k++) {
      assertEquals(m.colIndices()[k], m.colIndex(k));
      assertEquals(m.values()[k], m.value(k));
    }
    double[] dense = new double[6];
    StringBuilder order = new StringBuilder();
    m.forEachNonZero((i, j, v) -> {
      dense[i * 3 + j] += v;
      order.append(i).append(j).append(' ');
    });
    assertArrayEquals(m.toDense(), dense);
    assertEquals("00 01 12 ", order.toString());
    assertThrows(IndexOutOfBoundsException.class, () -> m.rowStart(3));
    assertThrows(IndexOutOfBoundsException.class, () -> m.colIndex(3));
    assertThrows(IndexOutOfBoundsException.class, () -> m.value(-1));
  }

  @Test
  void spgemmMatchesDenseProduct() {
    Random r = new Random(3);
    for (int t = 0; t < 20; t++) {
      int n = 1 + r.nextInt(30), k = 1 + r.nextInt(30), m = 1 + r.nextInt(30);
      SparseMatrix a = random(r, n, k, r.nextInt(3 * n + 1), false);
      SparseMatrix b = random(r, k, m, r.nextInt(3 * k + 1), false);
      SparseMatrix c = a.multiply(b);
      double[] ref = denseProduct(a.toDense(), b.toDense(), n, k, m);
      double[] got = c.toDense();
      for (int i = 0; i < ref.length; i++) assertEquals(ref[i], got[i], 1e-12);
      assertEquals(c.nnz(), a.productNnz(b));
      // columns strictly increasing per row
      long[] ptr = c.rowPtr();
      int[] ci = c.colIndices();
      for (int i = 0; i < n; i++)
        for (long p = ptr[i] + 1; p < ptr[i + 1]; p++) assertTrue(ci[(int) p - 1] < ci[(int) p]);
    }
  }

  @Test
  void spgemmIsBitwiseDeterministicAcrossThreadCounts() {
    Random r = new Random(5);
    SparseMatrix a = random(r, 3000, 400, 20000, false);
    SparseMatrix b = random(r, 400, 2500, 15000, false);
    SparseMatrix one = a.multiply(b, 1);
    for (int threads : new int[] {2, 3, 8}) assertTrue(one.bitwiseEquals(a.multiply(b, threads)), "threads " + threads);
    assertTrue(one.bitwiseEquals(a.multiply(b)));
  }

  @Test
  void spgemmRefusesMismatchedShapes() {
    SparseMatrix a = SparseMatrix.fromCoo(2, 3, new long[] {0}, new long[] {1}, null);
    MetakernelsException e = assertThrows(MetakernelsException.class, () -> a.multiply(a));
    assertTrue(e.getMessage().contains("[2, 3]"), e.getMessage());
    assertThrows(MetakernelsException.class, () -> SparseMatrix.fromCoo(2, 3, new long[] {2}, new long[] {0}, null));
    // an indptr that overshoots nnz before it decreases (filled rows past the end first)
    e = assertThrows(MetakernelsException.class,
        () -> SparseMatrix.fromCsr(2, 3, new long[] {0, 5, 2}, new long[] {0, 1}, null));
    assertTrue(e.getMessage().contains("indptr"), e.getMessage());
    // no types, one type: named, not an index error
    HeteroGraph h = small();
    for (List<String> types : List.of(List.<String>of(), List.of("paper"))) {
      e = assertThrows(MetakernelsException.class, () -> h.metaPath(types, MetaPath.Normalization.NONE, false,
          MetaPath.Strategy.AUTO, DType.F64, Device.CPU));
      assertTrue(e.getMessage().contains("two or more types"), e.getMessage());
    }
  }

  static HeteroGraph small() {
    // 4 papers, 3 authors, 2 subjects; paper 0 has two links to author 1 (counted twice)
    return HeteroGraph.builder()
        .nodeType("paper", 4)
        .nodeType("author", 3)
        .nodeType("subject", 2)
        .relation("writtenBy", "paper", "author", new long[] {0, 0, 0, 1, 2, 3}, new long[] {0, 1, 1, 1, 2, 2})
        .relation("about", "paper", "subject", new long[] {0, 1, 2, 3}, new long[] {0, 0, 1, 1})
        .build();
  }

  @Test
  void metaPathCountsAndBinary() {
    HeteroGraph h = small();
    SparseMatrix pap = h.metaPathMatrix("paper", "author", "paper");
    // R_pa = [[1,2,0],[0,1,0],[0,0,1],[0,0,1]]; PAP = R R^T
    assertArrayEquals(new double[] {5, 2, 0, 0, 2, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1}, pap.toDense());
    assertArrayEquals(new double[] {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1}, pap.binarized().toDense());
    double[] rn = pap.rowNormalized().toDense();
    assertEquals(5.0 / 7, rn[0], 1e-15);
    assertEquals(4, h.adjacency("subject", "paper").cols());
    MetakernelsException e = assertThrows(MetakernelsException.class, () -> h.adjacency("author", "subject"));
    assertTrue(e.getMessage().contains("no relation"), e.getMessage());
    assertThrows(MetakernelsException.class,
        () -> HeteroGraph.builder().nodeType("a", 2).relation("r", "a", "b", new long[] {0}, new long[] {0}));
    MetakernelsException bad = assertThrows(MetakernelsException.class,
        () -> HeteroGraph.builder().nodeType("a", 2).relation("r", "a", "a", new long[] {0}, new long[] {5}));
    assertTrue(bad.getMessage().contains("a-r-a"), bad.getMessage());
  }

  /** N(M) x in float64 by dense loops: the reference of both forms. */
  static double[] reference(SparseMatrix m, MetaPath.Normalization norm, double[] x, int f) {
    int n = m.rows();
    double[] a = m.toDense();
    double[] deg = new double[n];
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) deg[i] += a[i * n + j];
    double[] out = new double[n * f];
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double w = a[i * n + j];
        if (norm == MetaPath.Normalization.ROW) w = deg[i] == 0 ? 0 : w / deg[i];
        if (norm == MetaPath.Normalization.GCN) w = ((i == j ? 1 : 0) + w) / Math.sqrt((deg[i] + 1) * (deg[j] + 1));
        for (int c = 0; c < f; c++) out[i * f + c] += w * x[j * f + c];
      }
    return out;
  }

  @Test
  void chainEqualsMaterialisedAndDenseReference() {
    HeteroSbm.Sample s = HeteroSbm.generate(new HeteroSbm.Config(90, 3, 40, 6, 3, 0.7, 12, 5, 0.5), 11L);
    HeteroGraph h = s.graph();
    Random r = new Random(9);
    double[] x = new double[90 * 4];
    for (int i = 0; i < x.length; i++) x[i] = 2 * r.nextDouble() - 1;
    for (List<String> path : List.of(List.of("paper", "author", "paper"), List.of("paper", "subject", "paper"))) {
      SparseMatrix m = h.metaPathMatrix(path.toArray(new String[0]));
      for (MetaPath.Normalization norm : MetaPath.Normalization.values()) {
        double[] ref = reference(m, norm, x, 4);
        try (Scope sc = Scope.open();
             MetaPath chain = h.metaPath(path, norm, false, MetaPath.Strategy.CHAIN, DType.F64, Device.CPU);
             MetaPath mat = h.metaPath(path, norm, false, MetaPath.Strategy.MATERIALIZED, DType.F64, Device.CPU)) {
          assertTrue(chain.isChained());
          assertFalse(mat.isChained());
          Tensor xt = Tensor.of(x, 90, 4);
          double[] a = chain.apply(xt).toDoubleArray(), b = mat.apply(xt).toDoubleArray();
          for (int i = 0; i < ref.length; i++) {
            assertEquals(ref[i], a[i], 1e-12, path + " " + norm + " chain");
            assertEquals(ref[i], b[i], 1e-12, path + " " + norm + " materialised");
          }
          assertEquals(m.nnz() + (norm == MetaPath.Normalization.GCN ? 90 : 0), mat.materializedCost());
        }
      }
    }
  }

  @Test
  void binaryChainOnlyWhereCountsAreOneByConstruction() {
    HeteroGraph h = small();
    // P-S-P: one subject per paper, so counts are 0/1 and the binary path may be chained
    try (MetaPath psp = h.metaPath(List.of("paper", "subject", "paper"), MetaPath.Normalization.NONE, true,
             MetaPath.Strategy.CHAIN, DType.F64, Device.CPU)) {
      assertTrue(psp.describe().contains("binary"), psp.describe());
    }
    // P-A-P has a count of 5: binary must be materialised
    MetakernelsException e = assertThrows(MetakernelsException.class,
        ()
            -> h.metaPath(List.of("paper", "author", "paper"), MetaPath.Normalization.NONE, true,
                MetaPath.Strategy.CHAIN, DType.F64, Device.CPU));
    assertTrue(e.getMessage().contains("binary"), e.getMessage());
    try (Scope sc = Scope.open();
         MetaPath pap = h.metaPath(List.of("paper", "author", "paper"), MetaPath.Normalization.NONE, true,
             MetaPath.Strategy.AUTO, DType.F64, Device.CPU)) {
      assertFalse(pap.isChained());
      double[] y = pap.apply(Tensor.of(new double[] {1, 10, 100, 1000}, 4, 1)).toDoubleArray();
      assertArrayEquals(new double[] {11, 11, 1100, 1100}, y);
    }
  }

  @Test
  void autoPicksTheChainForADenseMetaPath() {
    // 400 papers over 2 subjects: P-S-P has 80,000 non-zeros (+ 400 loops), the chain 2,000
    int n = 400;
    long[] p = new long[n], s = new long[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
      s[i] = i % 2;
    }
    HeteroGraph h = HeteroGraph.builder()
                        .nodeType("paper", n)
                        .nodeType("subject", 2)
                        .relation("about", "paper", "subject", p, s)
                        .build();
    try (MetaPath psp = h.metaPath(List.of("paper", "subject", "paper"), MetaPath.Normalization.GCN, false,
             MetaPath.Strategy.AUTO, DType.F32, Device.CPU)) {
      assertTrue(psp.isChained(), psp.describe());
      assertEquals(n * (long) n / 2 + n, psp.materializedCost());
      assertTrue(psp.chainCost() * 30 < psp.materializedCost(), psp.describe());
    }
  }

  @Test
  void applyRefusesWrongInput() {
    HeteroGraph h = small();
    try (Scope sc = Scope.open();
         MetaPath pap = h.metaPath(List.of("paper", "author", "paper"), MetaPath.Normalization.ROW, false,
             MetaPath.Strategy.CHAIN, DType.F64, Device.CPU)) {
      MetakernelsException e = assertThrows(
          MetakernelsException.class, () -> pap.apply(Tensor.zeros(new long[] {5, 2}, DType.F64, Device.CPU)));
      assertTrue(e.getMessage().contains("MetaPath.apply") && e.getMessage().contains("[5, 2]"), e.getMessage());
      assertThrows(MetakernelsException.class, () -> pap.apply(Tensor.zeros(new long[] {4, 2}, DType.F32, Device.CPU)));
    }
  }

  /**
   * A chained path takes x of any rank [N, ...] as the materialised one does (its [N, 1] scales
   * broadcast a [N] x into [N, N], and refused [N, H, F]); found by a probe, 2026-12-08.
   */
  @Test
  void chainedPathsTakeAnyTrailingShape() {
    HeteroGraph h = small();
    Random r = new Random(23);
    for (MetaPath.Normalization norm : MetaPath.Normalization.values()) {
      try (Scope sc = Scope.open();
           MetaPath chain = h.metaPath(List.of("paper", "author", "paper"), norm, false, MetaPath.Strategy.CHAIN, DType.F64,
               Device.CPU);
           MetaPath mat = h.metaPath(List.of("paper", "author", "paper"), norm, false, MetaPath.Strategy.MATERIALIZED,
               DType.F64, Device.CPU)) {
        int n = h.numNodes("paper");
        for (long[] shape : new long[][] {{n}, {n, 1}, {n, 2, 3}}) {
          double[] x = new double[(int) Tensor.numel(shape)];
          for (int i = 0; i < x.length; i++) x[i] = r.nextGaussian();
          Tensor t = Tensor.of(x, shape);
          Tensor a = chain.apply(t), b = mat.apply(t);
          assertArrayEquals(shape, a.shape(), norm + " " + java.util.Arrays.toString(shape));
          assertArrayEquals(b.toDoubleArray(), a.toDoubleArray(), 1e-12, norm + " " + java.util.Arrays.toString(shape));
        }
      }
    }
  }

  /** Misuse refused with the op named: an unnamed node type, NaN probabilities, sizes past an int, a bad index. */
  @Test
  void graphObjectsRefuseMisuse() {
    assertThrows(MetakernelsException.class, () -> HeteroGraph.builder().nodeType("", 2));
    assertThrows(MetakernelsException.class, () -> HeteroGraph.builder().nodeType(null, 2));
    assertThrows(MetakernelsException.class,
        () -> HeteroSbm.generate(new HeteroSbm.Config(90, 3, 40, 6, 3, Double.NaN, 12, 5, 0.5), 1L));
    assertThrows(MetakernelsException.class,
        () -> HeteroSbm.generate(new HeteroSbm.Config(90, 3, 40, 6, 3, 0.7, 12, 5, Double.NaN), 1L));
    assertThrows(MetakernelsException.class,
        () -> HeteroSbm.generate(new HeteroSbm.Config(65536, 3, 40, 6, 3, 0.7, 65536, 5, 0.5), 1L));
    SparseMatrix a = random(new Random(3), 100, 100, 400, false);
    assertThrows(IndexOutOfBoundsException.class, () -> a.get(0, 100));
    assertThrows(IndexOutOfBoundsException.class, () -> a.get(-1, 0));
    assertTrue(a.multiply(a, 40000).bitwiseEquals(a.multiply(a, 1)));  // more threads than ForkJoinPool takes
  }

  /** Tall, wide and square matrices: A · x as the dense product, to second order in x, and wrong input refused. */
  @Test
  void sparseOperatorIsTheMatrixProduct() {
    Random r = new Random(21);
    for (int[] shape : new int[][] {{7, 3}, {3, 7}, {5, 5}}) {
      int rows = shape[0], cols = shape[1];
      SparseMatrix a = random(r, rows, cols, 12, false);
      double[] x = new double[cols * 2];
      for (int i = 0; i < x.length; i++) x[i] = 2 * r.nextDouble() - 1;
      double[] ref = denseProduct(a.toDense(), x, rows, cols, 2);
      try (Scope sc = Scope.open(); SparseOperator op = SparseOperator.of(a, DType.F64, Device.CPU)) {
        assertEquals(rows, op.rows());
        assertEquals(cols, op.cols());
        double[] y = op.apply(Tensor.of(x, cols, 2)).toDoubleArray();
        assertEquals(rows * 2, y.length);
        for (int i = 0; i < ref.length; i++) assertEquals(ref[i], y[i], 1e-12, rows + "x" + cols + " at " + i);
        GradCheck.check(in -> op.apply(in.get(0)).tanh().sum(), List.of(Tensor.of(x, cols, 2)), 2);
        MetakernelsException e = assertThrows(MetakernelsException.class,
            () -> op.apply(Tensor.zeros(new long[] {cols + 1, 2}, DType.F64, Device.CPU)));
        assertTrue(e.getMessage().contains("SparseOperator.apply") && e.getMessage().contains("[" + (cols + 1) + ", 2]"),
            e.getMessage());
        assertThrows(MetakernelsException.class, () -> op.apply(Tensor.zeros(new long[] {cols, 2}, DType.F32, Device.CPU)));
      }
    }
  }

  @Test
  void sbmIsSeededAndPlanted() {
    HeteroSbm.Config c = new HeteroSbm.Config(300, 3, 60, 9, 4, 0.8, 30, 10, 0.5);
    HeteroSbm.Sample a = HeteroSbm.generate(c, 4L), b = HeteroSbm.generate(c, 4L);
    assertTrue(a.graph()
                   .metaPathMatrix("paper", "author", "paper")
                   .bitwiseEquals(b.graph().metaPathMatrix("paper", "author", "paper")));
    assertArrayEquals(a.features(), b.features());
    // homophily: most P-S-P mass joins papers of the same class
    SparseMatrix psp = a.graph().metaPathMatrix("paper", "subject", "paper");
    double same = 0, all = 0;
    long[] ptr = psp.rowPtr();
    int[] ci = psp.colIndices();
    double[] v = psp.values();
    for (int i = 0; i < 300; i++)
      for (long k = ptr[i]; k < ptr[i + 1]; k++) {
        all += v[(int) k];
        if (a.labels()[i] == a.labels()[ci[(int) k]]) same += v[(int) k];
      }
    assertTrue(same / all > 0.6, "same-class share " + same / all);
  }
}
