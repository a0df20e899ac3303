package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;
import org.metakernels.testing.Ref;

/** matmul in every layout it accepts, against a float64 triple loop. */
class MatmulTest {
  static Nd in(Random r, DType d, int... shape) {
    Nd x = Nd.uniform(r, -2, 2, shape);
    return d == DType.F32 ? x.roundToFloat() : x;
  }

  static void check(Tensor y, Nd a, Nd b, DType d) {
    assertEquals(d, y.dtype());
    Ref.assertCloseScaled(y, Nd.matmul(a, b, false), Nd.matmul(a, b, true), Ref.rtol(d));
  }

  static void check(Nd a, Nd b, DType d) {
    check(a.tensor(d).matmul(b.tensor(d)), a, b, d);
  }

  static final int[][][] PAIRS = {
      // 2-d, including unit dims, odd sizes, and sizes that take the BLAS path
      {{1, 1}, {1, 1}}, {{5, 7}, {7, 3}}, {{1, 9}, {9, 1}}, {{9, 1}, {1, 9}}, {{17, 33}, {33, 9}},
      {{150, 130}, {130, 140}},
      // batched 3-d / 4-d: tiny batches (one parallel loop) and large ones (BLAS)
      {{4, 5, 6}, {4, 6, 3}}, {{2, 3, 5, 4}, {2, 3, 4, 6}}, {{3, 40, 30}, {3, 30, 50}}, {{1, 7, 5}, {1, 5, 2}},
      {{4, 50, 40}, {4, 40, 60}}, {{2, 2, 64, 40}, {2, 1, 40, 48}},
      // broadcast batch dims
      {{2, 1, 5, 4}, {3, 4, 6}}, {{1, 5, 4}, {3, 4, 2}}, {{3, 4, 2}, {1, 2, 5}}, {{2, 3, 5, 4}, {4, 6}},
      {{5, 4}, {2, 3, 4, 6}}, {{4, 1, 33, 20}, {1, 3, 20, 40}},
      // 1-d operands
      {{7}, {7, 3}}, {{5, 7}, {7}}, {{4}, {2, 3, 4, 5}}, {{2, 3, 5, 4}, {4}},
      // a 2-d right operand with a 3-d (or 4-d) left: one folded GEMM
      {{3, 5, 4}, {4, 6}}, {{2, 2, 7, 3}, {3, 1}}, {{8, 64, 48}, {48, 40}}};

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void matchesReferenceForEveryShapeCombination(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(21 + d.ordinal());
      for (int[][] p : PAIRS) check(in(r, d, p[0]), in(r, d, p[1]), d);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void transposedAndStridedOperands(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(22 + d.ordinal());
      // aᵀ b, a bᵀ, aᵀ bᵀ with the transposes as strided views (mT), small and BLAS-sized
      // the last two take the threaded BLAS paths (rows split across threads)
      for (int[] mkn : new int[][] {{5, 7, 3}, {1, 4, 6}, {70, 50, 60}, {80, 70, 90}, {33, 100, 97}}) {
        int m = mkn[0], k = mkn[1], n = mkn[2];
        Nd at = in(r, d, k, m), bt = in(r, d, n, k), a = in(r, d, m, k), b = in(r, d, k, n);
        check(at.tensor(d).mT().matmul(b.tensor(d)), at.transpose(0, 1), b, d);
        check(a.tensor(d).matmul(bt.tensor(d).mT()), a, bt.transpose(0, 1), d);
        check(at.tensor(d).mT().matmul(bt.tensor(d).mT()), at.transpose(0, 1), bt.transpose(0, 1), d);
      }
      // batched transposes, and a transposed 3-d left with a 2-d right
      Nd a3 = in(r, d, 3, 6, 5), b3 = in(r, d, 3, 4, 6), w = in(r, d, 4, 6);
      check(a3.tensor(d).mT().matmul(b3.tensor(d).mT()), a3.transpose(1, 2), b3.transpose(1, 2), d);
      check(a3.tensor(d).mT().matmul(w.tensor(d).mT()), a3.transpose(1, 2), w.transpose(0, 1), d);
      // tiny batches with B transposed (the naive kernel packs each B into row-major first): the
      // in-context demo's GD++ shape, n = 1, and one whose B is too large to pack (k·n > 8192)
      for (int[] bmkn : new int[][] {{64, 21, 10, 20}, {5, 4, 7, 1}, {2, 3, 100, 100}}) {
        int bs = bmkn[0], m = bmkn[1], k = bmkn[2], n = bmkn[3];
        Nd x = in(r, d, bs, m, k), y = in(r, d, bs, n, k);
        check(x.tensor(d).matmul(y.tensor(d).mT()), x, y.transpose(1, 2), d);
      }
      // a batch dim permuted to the back (batch stride smaller than the matrix strides)
      Nd p = in(r, d, 5, 6, 3);
      check(p.tensor(d).permute(2, 0, 1).matmul(b3.tensor(d).mT()), p.permute(2, 0, 1), b3.transpose(1, 2), d);
      // narrowed operands: row stride larger than the number of columns, and an offset
      Nd big = in(r, d, 9, 11);
      check(big.tensor(d).narrow(1, 2, 6).matmul(big.tensor(d).narrow(0, 1, 6)), big.narrow(1, 2, 6),
          big.narrow(0, 1, 6), d);
      // expanded (stride-0) operands
      Nd row = in(r, d, 1, 6);
      check(row.tensor(d).expand(4, 6).matmul(w.tensor(d).mT()), row.expand(4, 6), w.transpose(0, 1), d);
    }
  }

  /**
   * Batches of tiny matrices and products with output rows of 9 to 32 columns skip BLAS
   * (kernels/cpu/matmul_small.cpp): one tile product per matrix of a batch, the tall form (reduction <= 32, many rows; the projections of a small model over a batch folded
   * into the rows) and the long one (at most 32 rows, a long reduction; their weight gradients).
   * Both sides of every threshold, row blocks of 192 and reduction parts of 1024, operands in
   * every layout (transposed, broadcast, narrowed), under AVX2 and the best ISA, and the long
   * form bitwise the same for 1 and 2 threads.
   */
  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void shortOutputRowsTallAndLong(DType d) {
    int best = org.metakernels.runtime.MkNative.mk_runtime_cpu_isa();
    int threads = org.metakernels.runtime.MkNative.mk_runtime_num_threads();
    try (Scope s = Scope.open()) {
      for (String isa : best == 3 ? new String[] {"avx512", "avx2"} : new String[] {"avx2"}) {
        org.metakernels.runtime.Backend.setCpuIsa(isa);
        Random r = new Random(31 + d.ordinal());
        // tall: {m, k, n}, n and k at and past 64 (32 until 2026-12-07), m across the 192-row blocks
        for (int[] mkn : new int[][] {{11264, 11, 11}, {1, 1, 1}, {193, 32, 32}, {385, 5, 17}, {192, 32, 16},
            {64, 32, 33}, {70, 33, 32}, {7, 3, 1}, {193, 64, 64}, {64, 64, 65}, {70, 65, 64}, {200, 40, 57},
            {64, 40, 10}}) {
          int m = mkn[0], k = mkn[1], n = mkn[2];
          Nd a = in(r, d, m, k), at = in(r, d, k, m), b = in(r, d, k, n), bt = in(r, d, n, k);
          check(a, b, d);
          check(at.tensor(d).mT().matmul(b.tensor(d)), at.transpose(0, 1), b, d);
          check(a.tensor(d).matmul(bt.tensor(d).mT()), a, bt.transpose(0, 1), d);
        }
        // the 3-d left operand folded into rows, and a broadcast row
        Nd e = in(r, d, 64, 11, 11), w = in(r, d, 11, 11), row = in(r, d, 1, 11);
        check(e.tensor(d).matmul(w.tensor(d).mT()), e, w.transpose(0, 1).expand(64, 11, 11), d);
        check(row.tensor(d).expand(300, 11).matmul(w.tensor(d)), row.expand(300, 11), w, d);
        // long: {m, k, n}, the reduction across the 1024-step parts, A transposed as a weight
        // gradient takes it, B strided (packed per part)
        for (int[] mkn : new int[][] {{11, 11264, 11}, {32, 1025, 32}, {1, 33, 1}, {3, 2048, 7}, {32, 4000, 33},
            {33, 3000, 5}, {64, 1025, 64}, {64, 3000, 65}, {65, 2100, 40}, {40, 784, 64}}) {
          int m = mkn[0], k = mkn[1], n = mkn[2];
          Nd at = in(r, d, k, m), b = in(r, d, k, n), bt = in(r, d, n, k);
          check(at.tensor(d).mT().matmul(b.tensor(d)), at.transpose(0, 1), b, d);
          check(at.tensor(d).mT().matmul(bt.tensor(d).mT()), at.transpose(0, 1), bt.transpose(0, 1), d);
          Nd big = in(r, d, k, m + 3);
          check(big.tensor(d).narrow(1, 1, m).mT().matmul(b.tensor(d)), big.narrow(1, 1, m).transpose(0, 1), b, d);
        }
        // batches of tiny matrices (m n k <= 32768): one tile product per matrix, B packed when
        // transposed; B shared by the batch (stride 0) and a transposed A
        for (int[] bmkn : new int[][] {{64, 21, 10, 20}, {5, 4, 7, 1}, {3, 40, 30, 17}, {7, 33, 2, 35}}) {
          int bs = bmkn[0], m = bmkn[1], k = bmkn[2], n = bmkn[3];
          Nd x = in(r, d, bs, m, k), xt = in(r, d, bs, k, m), y = in(r, d, bs, k, n), yt = in(r, d, bs, n, k);
          Nd shared = in(r, d, 1, k, n);
          check(x, y, d);
          check(x.tensor(d).matmul(yt.tensor(d).mT()), x, yt.transpose(1, 2), d);
          check(xt.tensor(d).mT().matmul(y.tensor(d)), xt.transpose(1, 2), y, d);
          check(x.tensor(d).matmul(shared.tensor(d).expand(bs, k, n)), x, shared.expand(bs, k, n), d);
        }
        // the long form sums its parts in a fixed order: the same bits for any thread count (32 x 32
        // x 16384: 2^24 multiply-adds, where the parts fork)
        Tensor la = in(r, d, 16384, 32).tensor(d).mT(), lb = in(r, d, 16384, 32).tensor(d);
        double[][] seen = new double[2][];
        for (int t = 1; t <= 2; t++) {
          org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(t);
          seen[t - 1] = la.matmul(lb).toDoubleArray();
        }
        org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(threads);
        assertArrayEquals(seen[0], seen[1], "long reduction, 1 vs 2 threads (" + isa + ")");
        // a width-64 GCN layer on 4019 nodes and its weight gradient (16.5 M multiply-adds each,
        // forked since the threshold went to 12.6 M, 2026-12-07): the same bits on 1 and 2 threads
        Tensor ga = in(r, d, 4019, 64).tensor(d), gw = in(r, d, 64, 64).tensor(d), gg = in(r, d, 4019, 64).tensor(d);
        double[][] tall = new double[2][], wgrad = new double[2][];
        for (int t = 1; t <= 2; t++) {
          org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(t);
          tall[t - 1] = ga.matmul(gw.mT()).toDoubleArray();
          wgrad[t - 1] = gg.mT().matmul(ga).toDoubleArray();
        }
        org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(threads);
        assertArrayEquals(tall[0], tall[1], "tall [4019, 64] x [64, 64], 1 vs 2 threads (" + isa + ")");
        assertArrayEquals(wgrad[0], wgrad[1], "long [64, 4019] x [4019, 64], 1 vs 2 threads (" + isa + ")");
      }
    } finally {
      org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(threads);
      org.metakernels.runtime.Backend.setCpuIsa(best == 3 ? "avx512" : "avx2");
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void expandedRightOperand(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(23 + d.ordinal());
      Nd a = in(r, d, 3, 4), col = in(r, d, 4, 1);
      check(a.tensor(d).matmul(col.tensor(d).expand(4, 6)), a, col.expand(4, 6), d);
      Nd a3 = in(r, d, 2, 3, 4);
      check(a3.tensor(d).matmul(col.tensor(d).expand(4, 6)), a3, col.expand(4, 6), d);
      check(a3.tensor(d).matmul(col.tensor(d).expand(2, 4, 6)), a3, col.expand(2, 4, 6), d);
    }
  }

  @Test
  void vectorDotVectorIsAScalar() {
    try (Scope s = Scope.open()) {
      Random r = new Random(24);
      Nd a = in(r, DType.F64, 6), b = in(r, DType.F64, 6);
      Tensor y = a.f64().matmul(b.f64());
      assertEquals(0, y.rank(), "[k] x [k] -> []");
      double dot = 0;
      for (int i = 0; i < 6; i++) dot += a.data[i] * b.data[i];
      assertEquals(dot, y.item(), 1e-13);
    }
  }

  @Test
  void emptyInnerDimGivesZeros() {
    try (Scope s = Scope.open()) {
      Tensor a = Tensor.zeros(new long[] {3, 0}, DType.F64, org.metakernels.tensor.Device.CPU);
      Tensor b = Tensor.zeros(new long[] {0, 4}, DType.F64, org.metakernels.tensor.Device.CPU);
      Tensor y = a.matmul(b);
      Ref.assertShape(y, 3, 4);
      assertEquals(0.0, Ref.maxAbs(y.toDoubleArray()));
      // gradients of every batch form with k = 0 (the [..., m, k] x [k, n] form's backward
      // reshaped with -1, which cannot infer a size beside a 0) and with n = 0
      long[][][] forms = {{{2, 3, 0}, {0, 4}}, {{2, 3, 0}, {2, 0, 4}}, {{3, 0}, {2, 0, 4}}, {{2, 3, 5}, {5, 0}}};
      for (long[][] f : forms) {
        Tensor x = Tensor.zeros(f[0], DType.F64, org.metakernels.tensor.Device.CPU).requiresGrad(true);
        Tensor w = Tensor.zeros(f[1], DType.F64, org.metakernels.tensor.Device.CPU).requiresGrad(true);
        var g = org.metakernels.autograd.Autograd.grad(x.matmul(w).sum(), java.util.List.of(x, w), false);
        Ref.assertShape(g.get(0), f[0]);
        Ref.assertShape(g.get(1), f[1]);
        assertEquals(0.0, Ref.maxAbs(g.get(1).toDoubleArray()));
      }
    }
  }

  @Test
  void linearMatchesReference() {
    BiFunction<Nd, Nd, Nd> ref = (x, w) -> Nd.matmul(x, w.transpose(0, 1), false);
    for (DType d : new DType[] {DType.F64, DType.F32}) {
      try (Scope s = Scope.open()) {
        Random r = new Random(25);
        Nd x = in(r, d, 2, 5, 7), w = in(r, d, 3, 7), b = in(r, d, 3);
        Nd y = Nd.zip(ref.apply(x, w), b, Double::sum);
        Nd scale = Nd.zip(Nd.matmul(x.map(Math::abs), w.transpose(0, 1).map(Math::abs), false), b.map(Math::abs),
            Double::sum);
        Ref.assertCloseScaled(Functional.linear(x.tensor(d), w.tensor(d), b.tensor(d)), y, scale, Ref.rtol(d));
        Ref.assertCloseScaled(Functional.linear(x.tensor(d), w.tensor(d), null), ref.apply(x, w),
            Nd.matmul(x, w.transpose(0, 1), true), Ref.rtol(d));
      }
    }
  }

  /**
   * Errors name the caller's operands, not the internally unsqueezed ones (issue "Nothing silently
   * wrong", item 4): a 1-d operand stays [k], and batch dims that do not broadcast are named as such.
   */
  @Test
  void errorsNameTheCallersShapes() {
    try (Scope s = Scope.open()) {
      Tensor v3 = Tensor.zeros(new long[] {3}, DType.F64, org.metakernels.tensor.Device.CPU);
      Tensor m45 = Tensor.zeros(new long[] {4, 5}, DType.F64, org.metakernels.tensor.Device.CPU);
      String msg = assertThrows(org.metakernels.runtime.MetakernelsException.class, () -> v3.matmul(m45)).getMessage();
      assertTrue(msg.contains("F64[3]") && msg.contains("[4, 5]") && !msg.contains("[1, 3]"), msg);
      msg = assertThrows(org.metakernels.runtime.MetakernelsException.class, () -> m45.matmul(v3)).getMessage();
      assertTrue(msg.contains("[4, 5]") && msg.contains("F64[3]") && !msg.contains("[3, 1]"), msg);
      Tensor a = Tensor.zeros(new long[] {2, 4, 5}, DType.F64, org.metakernels.tensor.Device.CPU);
      Tensor b = Tensor.zeros(new long[] {3, 5, 6}, DType.F64, org.metakernels.tensor.Device.CPU);
      msg = assertThrows(org.metakernels.runtime.MetakernelsException.class, () -> a.matmul(b)).getMessage();
      assertTrue(msg.contains("batch dims [2] and [3] do not broadcast") && msg.contains("[2, 4, 5]")
          && msg.contains("[3, 5, 6]"), msg);
    }
  }

  /** An allocation that fails names the tensor it was for (shape, dtype, device). */
  @Test
  void failedAllocationNamesTheTensor() {
    long[] shape = {1L << 42};  // 16 TiB of F32: refused by the allocator, not by the shape check
    OutOfMemoryError e = assertThrows(OutOfMemoryError.class,
        () -> Tensor.empty(shape, DType.F32, org.metakernels.tensor.Device.CPU));
    assertTrue(e.getMessage().contains("F32 [4398046511104] tensor on CPU"), e.getMessage());
    assertTrue(e.getMessage().startsWith("Tensor.empty: "), e.getMessage());
  }

  /** ... and the op that asked for it (issue 13, item 4). */
  @Test
  void failedAllocationInAnOpNamesTheOp() {
    try (org.metakernels.tensor.Scope s = org.metakernels.tensor.Scope.open()) {
      // [2^21, 1] x [1, 2^21]: a 2^42-element F32 result, refused by the allocator
      Tensor a = Tensor.zeros(new long[] {1L << 21, 1}, DType.F32, org.metakernels.tensor.Device.CPU);
      Tensor b = Tensor.zeros(new long[] {1, 1L << 21}, DType.F32, org.metakernels.tensor.Device.CPU);
      OutOfMemoryError e = assertThrows(OutOfMemoryError.class, () -> a.matmul(b));
      assertTrue(e.getMessage().startsWith("Linalg.matmul: ") && e.getMessage().contains("[2097152, 2097152]"),
          e.getMessage());
    }
  }

  /**
   * BLAS-sized products (past the 12.6 M multiply-adds where the work forks) are the same bits on 1,
   * 2, 3 and 4 threads: the rows of one product, or a batch of them, are cut by the shape alone, so
   * every thread count makes the same BLAS calls (a BLAS may round a row differently in a call of
   * other rows: OpenBLAS did with OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE=512, 2026-12-07).
   */
  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void blasProductsAreTheSameBitsOnEveryThreadCount(DType d) {
    int threads = org.metakernels.runtime.MkNative.mk_runtime_num_threads();
    try (Scope s = Scope.open()) {
      Random r = new Random(41 + d.ordinal());
      // {batch, m, k, n}: one product cut into row parts (1024 and 1000 rows, 333 rows of a long k),
      // a few products (each cut), a batch split whole
      // ({1, 300, 400, 900}: too few rows, cut into column parts)
      for (int[] bmkn : new int[][] {{1, 1024, 128, 256}, {1, 1000, 130, 250}, {1, 333, 700, 300}, {3, 700, 90, 300},
          {20, 200, 70, 90}, {1, 300, 400, 900}}) {
        int bs = bmkn[0], m = bmkn[1], k = bmkn[2], n = bmkn[3];
        Tensor a = in(r, d, bs, m, k).tensor(d), b = in(r, d, bs, k, n).tensor(d);
        double[] one = null;
        for (int t = 1; t <= 4; t++) {
          org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(t);
          double[] got = (bs == 1 ? a.reshape(m, k).matmul(b.reshape(k, n)) : a.matmul(b)).toDoubleArray();
          if (one == null) one = got;
          else assertArrayEquals(one, got, java.util.Arrays.toString(bmkn) + ": 1 vs " + t + " threads");
        }
      }
      // the parts against the reference, B row-major and transposed (its column parts start at a
      // column of the transpose), on 2 threads
      org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(2);
      for (int[] mkn : new int[][] {{300, 400, 900}, {1024, 128, 256}, {333, 700, 300}}) {
        int m = mkn[0], k = mkn[1], n = mkn[2];
        Nd a = in(r, d, m, k), b = in(r, d, k, n), bt = in(r, d, n, k);
        check(a, b, d);
        check(a.tensor(d).matmul(bt.tensor(d).mT()), a, bt.transpose(0, 1), d);
      }
    } finally {
      org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(threads);
    }
  }
}
