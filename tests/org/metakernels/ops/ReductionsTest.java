package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;
import org.metakernels.testing.Ref;

/** sum, mean, var, max/min with indices, logsumexp, softmax, logSoftmax, sumTo against float64 loops. */
class ReductionsTest {
  static final Device CPU = Device.CPU;
  static final int[][] SHAPES = {{1}, {7}, {3, 1, 5}, {17, 33}, {2, 1, 9, 13}, {4, 3, 5, 6}, {211, 197}};

  static Nd in(Random r, DType d, int... shape) {
    Nd x = Nd.uniform(r, -3, 3, shape);
    return d == DType.F32 ? x.roundToFloat() : x;
  }

  /** The tensor of x, or (when {@code transposed}) a non-contiguous view with the same values. */
  static Tensor tensor(Nd x, DType d, boolean transposed) {
    if (!transposed || x.rank() < 2) return x.tensor(d);
    int r = x.rank();
    // store the transpose contiguously, then view it back: same logical values, swapped strides
    return x.transpose(0, r - 1).tensor(d).transpose(0, r - 1);
  }

  static void assertSum(Tensor y, Nd x, int[] dims, boolean keep, DType d, boolean mean) {
    Nd ref = x.reduce(dims, keep, mean ? Nd::mean : Nd::sum);
    Nd scale = x.map(Math::abs).reduce(dims, keep, mean ? Nd::mean : Nd::sum);
    Ref.assertCloseScaled(y, ref, scale, Ref.rtol(d));
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void sumAndMeanOverEveryDimAndAll(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(11 + d.ordinal());
      for (int[] shape : SHAPES) {
        Nd x = in(r, d, shape);
        for (boolean transposed : new boolean[] {false, true}) {
          Tensor t = tensor(x, d, transposed);
          int[] all = new int[shape.length];
          for (int i = 0; i < all.length; i++) all[i] = i;
          assertSum(t.sum(), x, all, false, d, false);
          assertSum(t.mean(), x, all, false, d, true);
          assertEquals(0, t.sum().rank());
          for (int dim = 0; dim < shape.length; dim++)
            for (boolean keep : new boolean[] {false, true}) {
              assertSum(t.sum(dim, keep), x, new int[] {dim}, keep, d, false);
              assertSum(t.mean(dim, keep), x, new int[] {dim}, keep, d, true);
              // negative dims count from the end
              assertSum(t.sum(dim - shape.length, keep), x, new int[] {dim}, keep, d, false);
            }
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void sumAndMeanOverSeveralDims(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(12 + d.ordinal());
      Nd x = in(r, d, 4, 3, 5, 6);
      int[][] sets = {{0, 1}, {1, 2}, {2, 3}, {0, 2}, {1, 3}, {0, 3}, {0, 1, 2}, {1, 2, 3}, {0, 2, 3}, {0, 1, 2, 3}};
      for (boolean transposed : new boolean[] {false, true}) {
        Tensor t = tensor(x, d, transposed);
        for (int[] dims : sets)
          for (boolean keep : new boolean[] {false, true}) {
            assertSum(t.sum(dims, keep), x, dims, keep, d, false);
            assertSum(t.mean(dims, keep), x, dims, keep, d, true);
          }
        // unsorted and negative dims name the same set
        assertSum(t.sum(new int[] {-1, 0}, true), x, new int[] {0, 3}, true, d, false);
        // a permuted (non-contiguous) input over a permuted set
        Tensor p = t.permute(2, 0, 3, 1);
        Nd xp = x.permute(2, 0, 3, 1);
        assertSum(p.sum(new int[] {1, 3}, false), xp, new int[] {1, 3}, false, d, false);
        assertSum(p.mean(new int[] {0, 2}, true), xp, new int[] {0, 2}, true, d, true);
      }
      // large: parallel paths, inner > 1 and inner == 1
      Nd big = in(r, d, 97, 23, 31);
      Tensor tb = big.tensor(d);
      for (int[] dims : new int[][] {{0}, {1}, {2}, {0, 2}, {1, 2}})
        assertSum(tb.sum(dims, false), big, dims, false, d, false);
      assertSum(tb.mT().sum(new int[] {1}, false), big.transpose(1, 2), new int[] {1}, false, d, false);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void varianceBiasedAndUnbiased(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(13 + d.ordinal());
      for (int[] shape : new int[][] {{7}, {3, 2, 5}, {17, 33}, {211, 197}}) {
        Nd x = in(r, d, shape);
        for (boolean transposed : new boolean[] {false, true}) {
          Tensor t = tensor(x, d, transposed);
          for (int dim = 0; dim < shape.length; dim++)
            for (boolean keep : new boolean[] {false, true})
              for (boolean unbiased : new boolean[] {false, true}) {
                Nd ref = x.reduce(new int[] {dim}, keep, v -> Nd.var(v, unbiased));
                Nd scale = x.map(v -> v * v).reduce(new int[] {dim}, keep, Nd::mean);
                Ref.assertCloseScaled(t.var(dim, keep, unbiased), ref, scale, d == DType.F64 ? 1e-12 : 2e-5);
              }
        }
      }
      // F32: a variance that fits although the sum of squares does not (inf before; PyTorch 2.25e38)
      if (d == DType.F32) {
        Tensor t = Tensor.of(new double[] {1.5e19, -1.5e19, 1.5e19, -1.5e19}, 4).castTo(d);
        double v = t.var(0, false, false).item();
        assertEquals(2.25e38, v, 2.25e38 * 1e-6);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void maxAndMinWithIndices(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(14 + d.ordinal());
      for (int[] shape : SHAPES) {
        // coarse values make ties: the index must be the first extreme
        Nd x = Nd.uniform(r, 0, 6, shape).map(v -> Math.floor(v) * 0.5);
        for (boolean transposed : new boolean[] {false, true}) {
          Tensor t = tensor(x, d, transposed);
          for (int dim = 0; dim < shape.length; dim++)
            for (boolean keep : new boolean[] {false, true}) {
              int[] ds = {dim};
              var mx = t.max(dim, keep);
              var mn = t.min(dim - shape.length, keep);
              Ref.assertClose(mx.values(), x.reduce(ds, keep, Nd::max), 0, 0);
              Ref.assertClose(mn.values(), x.reduce(ds, keep, Nd::min), 0, 0);
              assertEquals(DType.I64, mx.indices().dtype());
              assertArrayEquals(mx.values().shape(), mx.indices().shape());
              assertArrayEquals(toLong(x.reduce(ds, keep, Nd::argmax).data), mx.indices().toLongArray());
              assertArrayEquals(toLong(x.reduce(ds, keep, Nd::argmin).data), mn.indices().toLongArray());
            }
          Tensor all = t.max();
          assertEquals(0, all.rank());
          assertEquals(Nd.max(x.data), all.item(), 0);
        }
      }
    }
  }

  /**
   * max and min with indices give the values (bit for bit: the sign of a zero, a NaN's payload) and
   * indices of a scan in order, {@code better = v > best || (isNaN(v) && !isNaN(best))}: the first
   * NaN, else the first extreme. The CPU finds them with vector passes (2026-12-07; a scan before):
   * rows of 1 to 70 and 1000 entries along the last dim (the extreme, zeros of both signs, NaNs of two payloads
   * and infinities in whole vectors and the tail), and along dim 0 with 300 columns (two chunks of
   * the column walk) and 700 (enough to fork).
   */
  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void maxAndMinMatchTheScanInOrder(DType d) {
    double nanA = Double.longBitsToDouble(0x7ff8000000000001L), nanB = Double.longBitsToDouble(0x7ff8000000000002L);
    if (d == DType.F32) {
      nanA = Float.intBitsToFloat(0x7fc00001);
      nanB = Float.intBitsToFloat(0x7fc00002);
    }
    double inf = Double.POSITIVE_INFINITY;
    double[][] pools = {
      {-0.0, 0.0}, {-0.0, 0.0, -1.0, 1.0}, {-inf, -inf, -inf, 2.0}, {-inf}, {inf, -inf, 0.0},
      {1.0, 2.0, 3.0, -3.0, nanA}, {nanA, nanB, 1.0, -0.0}, {0.5, 0.25, -0.5, -0.0, 0.0, nanB}};
    try (Scope s = Scope.open()) {
      Random r = new Random(61 + d.ordinal());
      for (double[] pool : pools)
        for (int c = 1; c <= 71; c++) {
          // along the last dim: [3, len]; along dim 0: [len, 300]; the last case [3, 1000] and
          // [1000, 700] (7e5 elements: the column chunks fork)
          int len = c == 71 ? 1000 : c, cols = c == 71 ? 700 : 300;
          for (boolean last : new boolean[] {true, false}) {
            int rows = last ? 3 : cols;
            double[] x = new double[rows * len];
            for (int i = 0; i < x.length; i++) x[i] = pool[r.nextInt(pool.length)];
            long[] shape = last ? new long[] {3, len} : new long[] {len, cols};
            Tensor t = d == DType.F64 ? Tensor.of(x, shape) : Tensor.of(toFloats(x), shape);
            for (boolean max : new boolean[] {true, false}) {
              var got = max ? t.max(last ? 1 : 0, false) : t.min(last ? 1 : 0, false);
              long[] gi = got.indices().toLongArray();
              long[] gv = bits(got.values(), d);
              for (int o = 0; o < rows; o++) {
                // element j of output o: x[o * len + j] (last) or x[j * 300 + o] (dim 0)
                int bi = 0;
                double best = x[last ? o * len : o];
                for (int j = 1; j < len; j++) {
                  double v = x[last ? o * len + j : j * cols + o];
                  boolean better = (max ? v > best : v < best) || (Double.isNaN(v) && !Double.isNaN(best));
                  if (better) {
                    best = v;
                    bi = j;
                  }
                }
                String what = (max ? "max" : "min") + (last ? " [3, " + len + "] dim 1 " : " [" + len + ", " + cols + "] dim 0 ")
                    + d + " pool " + java.util.Arrays.toString(pool) + " output " + o;
                assertEquals(bi, gi[o], what + " index");
                long want = d == DType.F64 ? Double.doubleToRawLongBits(best) : Float.floatToRawIntBits((float) best);
                assertEquals(want, gv[o], what + " value bits");
              }
            }
          }
        }
    }
  }

  static float[] toFloats(double[] x) {
    float[] f = new float[x.length];
    for (int i = 0; i < x.length; i++) f[i] = (float) x[i];
    return f;
  }

  static long[] bits(Tensor t, DType d) {
    if (d == DType.F64) return java.util.Arrays.stream(t.toDoubleArray()).mapToLong(Double::doubleToRawLongBits).toArray();
    float[] f = t.toFloatArray();
    long[] b = new long[f.length];
    for (int i = 0; i < f.length; i++) b[i] = Float.floatToRawIntBits(f[i]);
    return b;
  }

  static long[] toLong(double[] v) {
    long[] l = new long[v.length];
    for (int i = 0; i < v.length; i++) l[i] = (long) v[i];
    return l;
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void logsumexpIsStable(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(15 + d.ordinal());
      for (int[] shape : new int[][] {{1}, {7}, {3, 1, 5}, {17, 33}, {211, 197}}) {
        Nd x = in(r, d, shape);
        for (boolean transposed : new boolean[] {false, true}) {
          Tensor t = tensor(x, d, transposed);
          for (int dim = 0; dim < shape.length; dim++)
            for (boolean keep : new boolean[] {false, true}) {
              Nd ref = x.reduce(new int[] {dim}, keep, Nd::logsumexp);
              Ref.assertClose(t.logsumexp(dim, keep), ref, d == DType.F64 ? 1e-13 : 1e-5, Ref.rtol(d));
            }
        }
      }
      // large magnitudes do not overflow; a row of -inf gives -inf
      Nd big = new Nd(new double[] {1000, 999, 998, -1000, -1001, -1002}, 2, 3);
      Tensor lse = big.tensor(d).logsumexp(1, false);
      Ref.assertClose(lse, big.reduce(new int[] {1}, false, Nd::logsumexp), 1e-4, Ref.rtol(d));
      double ninf = Double.NEGATIVE_INFINITY;
      Tensor inf = new Nd(new double[] {ninf, ninf, 0, 1}, 2, 2).tensor(d).logsumexp(1, false);
      double[] v = inf.toDoubleArray();
      assertEquals(ninf, v[0]);
      assertEquals(Math.log(1 + Math.E), v[1], 1e-6);
      // +inf entries give +inf (not NaN), also next to -inf; NaN propagates
      double pinf = Double.POSITIVE_INFINITY;
      double[] w = new Nd(new double[] {pinf, 0, 1, pinf, ninf, 2, Double.NaN, 1, 0}, 3, 3).tensor(d)
          .logsumexp(1, false).toDoubleArray();
      assertEquals(pinf, w[0]);
      assertEquals(pinf, w[1]);
      assertTrue(Double.isNaN(w[2]));
    }
  }

  /**
   * NaN in, NaN out (issue "Nothing silently wrong", item 2): a row with a NaN entry is NaN
   * throughout, for softmax and logSoftmax, even when the row has no finite entry; rows of only
   * -inf stay 0 (softmax) and -inf (logSoftmax), and other rows are untouched. Guards the NaN test
   * in the row maximum of kernels/cpu/dense.cpp (softmax_t), which used to skip NaN.
   */
  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void softmaxKeepsNaNInItsRow(DType d) {
    try (Scope s = Scope.open()) {
      double nan = Double.NaN, inf = Double.POSITIVE_INFINITY;
      for (boolean log : new boolean[] {false, true}) {
        double[][] rows = {{nan}, {nan, nan}, {nan, 1}, {1, nan, 2}, {-inf, nan}, {-inf, -inf}, {0, Math.log(3)}};
        for (double[] row : rows) {
          Tensor t = Tensor.of(row, 1, row.length).to(d);
          double[] y = (log ? t.logSoftmax(1) : t.softmax(1)).toDoubleArray();
          boolean hasNaN = java.util.Arrays.stream(row).anyMatch(Double::isNaN);
          for (int c = 0; c < row.length; c++) {
            String what = (log ? "logSoftmax" : "softmax") + java.util.Arrays.toString(row) + "[" + c + "] " + d;
            if (hasNaN) assertTrue(Double.isNaN(y[c]), what + " = " + y[c]);
            else if (row[0] == -inf) assertEquals(log ? -inf : 0.0, y[c], what);
            else assertEquals(log ? Math.log(c == 0 ? 0.25 : 0.75) : (c == 0 ? 0.25 : 0.75), y[c], 1e-6, what);
          }
        }
        // a NaN row next to finite rows leaves them alone
        Tensor two = Tensor.of(new double[] {nan, 0, 0, Math.log(3)}, 2, 2).to(d);
        double[] y = (log ? two.logSoftmax(1) : two.softmax(1)).toDoubleArray();
        assertTrue(Double.isNaN(y[0]) && Double.isNaN(y[1]));
        assertEquals(log ? Math.log(0.75) : 0.75, y[3], 1e-6);
      }
    }
  }

  /**
   * The row maximum of softmax_t is a vector reduction (2026-12-07; a scan in row order before):
   * rows of 1 to 70 entries, so the maximum, a NaN or the zeros sit in whole vectors and in the
   * tail: a NaN anywhere makes the row NaN; a unique maximum anywhere gives the reference; rows of
   * mixed -0 and +0 are uniform.
   */
  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void softmaxRowMaximumAcrossVectorLanes(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(53 + d.ordinal());
      for (int n = 1; n <= 70; n++) {
        for (int p : new int[] {0, n / 2, n - 1}) {
          double[] row = new double[n];
          for (int c = 0; c < n; c++) row[c] = r.nextDouble() - 0.5;
          row[p] = 4;  // the maximum
          double[] nanRow = row.clone();
          nanRow[(p + n / 3) % n] = Double.NaN;
          double[] zeros = new double[n];
          for (int c = 0; c < n; c++) zeros[c] = r.nextBoolean() ? 0.0 : -0.0;
          for (boolean log : new boolean[] {false, true}) {
            String what = (log ? "logSoftmax" : "softmax") + " n=" + n + " p=" + p + " " + d;
            double[] y = sm(row, d, log);
            double mx = 4, sum = 0;
            for (double v : row) sum += Math.exp(v - mx);
            for (int c = 0; c < n; c++) {
              double want = log ? row[c] - mx - Math.log(sum) : Math.exp(row[c] - mx) / sum;
              assertEquals(want, y[c], d == DType.F64 ? 1e-14 : 2e-6, what + "[" + c + "]");
            }
            for (double v : sm(nanRow, d, log)) assertTrue(Double.isNaN(v), what + " with a NaN");
            for (double v : sm(zeros, d, log))
              assertEquals(log ? -Math.log(n) : 1.0 / n, v, d == DType.F64 ? 1e-15 : 1e-6, what + " zeros");
          }
        }
      }
    }
  }

  private static double[] sm(double[] row, DType d, boolean log) {
    Tensor t = Tensor.of(row, 1, row.length).to(d);
    return (log ? t.logSoftmax(1) : t.softmax(1)).toDoubleArray();
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void softmaxAndLogSoftmaxOverAnyDim(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(16 + d.ordinal());
      for (int[] shape : new int[][] {{1}, {7}, {3, 1, 5}, {17, 33}, {2, 4, 3, 5}, {211, 197}}) {
        Nd x = in(r, d, shape).map(v -> 3 * v);
        for (boolean transposed : new boolean[] {false, true}) {
          Tensor t = tensor(x, d, transposed);
          for (int dim = 0; dim < shape.length; dim++) {
            final int dd = dim;
            Tensor sm = dim % 2 == 0 ? t.softmax(dim) : t.softmax(dim - shape.length);
            Ref.assertClose(sm, x.alongDim(dd, Nd::softmax), d == DType.F64 ? 1e-15 : 1e-7, Ref.rtol(d));
            Tensor lsm = t.logSoftmax(dim);
            Ref.assertClose(lsm, x.alongDim(dd, Nd::logSoftmax), d == DType.F64 ? 1e-13 : 2e-5, Ref.rtol(d));
          }
        }
      }
      // stability: huge logits
      Nd big = new Nd(new double[] {1000, 1001, 1002, -5000, -5001, -5000}, 2, 3);
      Ref.assertClose(big.tensor(d).softmax(1), big.alongDim(1, Nd::softmax), 1e-7, 1e-5);
      // (x - m) - log(s): the error at the scale of the output, not of |lse| ~ 1e3 (x - (m + log s)
      // was off by ~6e-5 in F32 here, ~3e-4 at 1e4)
      Ref.assertClose(big.tensor(d).logSoftmax(-1), big.alongDim(1, Nd::logSoftmax), d == DType.F64 ? 1e-13 : 1e-6, 1e-6);
      double off = d == DType.F64 ? 1e12 : 1e4;
      Nd far = new Nd(new double[] {off, off + 0.5, off - 0.25, off + 1}, 1, 4);
      Ref.assertClose(far.tensor(d).logSoftmax(-1), far.alongDim(1, Nd::logSoftmax), d == DType.F64 ? 1e-15 : 5e-7, 1e-7);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void sumToIsTheAdjointOfExpand(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(17 + d.ordinal());
      Nd x = in(r, d, 4, 3, 5, 6);
      Tensor t = x.tensor(d);
      Ref.assertClose(t.sumTo(new long[] {4, 3, 5, 6}), x);
      assertSum(t.sumTo(new long[] {5, 6}), x, new int[] {0, 1}, false, d, false);
      assertSame(t, t.sumTo(t.shape()));
      Ref.assertClose(t.sumTo(new long[] {1, 6}),
          x.reduce(new int[] {0, 1, 2}, true, Nd::sum).reshape(1, 6), 1e-12, Ref.rtol(d) * 10);
      Ref.assertClose(t.sumTo(new long[] {3, 1, 1}),
          x.reduce(new int[] {0, 2, 3}, true, Nd::sum).reshape(3, 1, 1), 1e-12, Ref.rtol(d) * 10);
      Ref.assertClose(t.sumTo(new long[] {4, 1, 5, 1}),
          x.reduce(new int[] {1, 3}, true, Nd::sum), 1e-12, Ref.rtol(d) * 10);
      Ref.assertClose(t.sumTo(new long[0]), x.reduce(new int[] {0, 1, 2, 3}, false, Nd::sum), 1e-12, Ref.rtol(d) * 10);
      // on a transposed input
      Ref.assertClose(t.mT().sumTo(new long[] {3, 6, 1}),
          x.transpose(2, 3).reduce(new int[] {0, 3}, true, Nd::sum).reshape(3, 6, 1), 1e-12, Ref.rtol(d) * 10);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void reductionsOfExpandedAndNarrowedInputs(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(18 + d.ordinal());
      Nd row = in(r, d, 1, 7);
      Tensor e = row.tensor(d).expand(5, 7);  // stride 0 along dim 0
      Nd re = row.expand(5, 7);
      assertSum(e.sum(0, false), re, new int[] {0}, false, d, false);
      assertSum(e.sum(1, true), re, new int[] {1}, true, d, false);
      assertSum(e.sum(), re, new int[] {0, 1}, false, d, false);
      Ref.assertClose(e.softmax(0), re.alongDim(0, Nd::softmax), 1e-7, Ref.rtol(d));
      Ref.assertClose(e.max(1, false).values(), re.reduce(new int[] {1}, false, Nd::max), 0, 0);
      Nd x = in(r, d, 6, 9);
      Tensor n = x.tensor(d).narrow(1, 2, 5).narrow(0, 1, 4);  // offset and row stride 9
      Nd rn = x.narrow(1, 2, 5).narrow(0, 1, 4);
      assertSum(n.sum(1, false), rn, new int[] {1}, false, d, false);
      assertSum(n.mean(0, true), rn, new int[] {0}, true, d, true);
      Ref.assertClose(n.logSoftmax(1), rn.alongDim(1, Nd::logSoftmax), d == DType.F64 ? 1e-13 : 2e-5, Ref.rtol(d));
      Ref.assertClose(n.logsumexp(0, false), rn.reduce(new int[] {0}, false, Nd::logsumexp), 1e-6, Ref.rtol(d));
    }
  }

  @Test
  void zeroDimAndEmptyReductions() {
    try (Scope s = Scope.open()) {
      Tensor c = Tensor.scalar(2.5, DType.F64, CPU);
      assertEquals(2.5, c.sum().item(), 0);
      assertEquals(2.5, c.mean().item(), 0);
      Tensor e = Tensor.zeros(new long[] {3, 0}, DType.F64, CPU);
      Ref.assertValues(e.sum(1, false), 0, 0, 0);
      Ref.assertShape(e.sum(0, false), 0);
    }
  }
}
