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

/**
 * The strided elementwise kernels on operands that are contiguous along another dim than the last
 * (transposes, permutes): the CPU walks those in tiles (mk/cpu_strided.h), so shapes around the tile
 * (32 × 64) and past the fork threshold (2^18 elements) are checked against index arithmetic on Java
 * arrays, and every op against the same op on contiguous copies, bit for bit.
 */
class TransposedStridesTest {
  static final Device CPU = Device.CPU;
  // [rows, cols] of the un-transposed tensor: within one tile, ragged tile edges both ways, a
  // single partial tile, a long thin one, and one large enough to split over the threads
  static final int[][] SHAPES = {{5, 3}, {33, 65}, {64, 128}, {100, 7}, {7, 300}, {1000, 700}};

  static Nd in(Random r, DType d, int... shape) {
    Nd x = Nd.uniform(r, -3, 3, shape);
    return d == DType.F32 ? x.roundToFloat() : x;
  }

  static void assertSameBits(Tensor a, Tensor b, String what) {
    assertArrayEquals(b.shape(), a.shape(), what + ": shape");
    double[] x = a.toDoubleArray(), y = b.toDoubleArray();
    for (int i = 0; i < x.length; i++)
      if (Double.doubleToRawLongBits(x[i]) != Double.doubleToRawLongBits(y[i]))
        fail(what + ": element " + i + " is " + x[i] + ", contiguous operands give " + y[i]);
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void transposedOperandsOfCopyUnaryBinaryAndWhere(DType d) {
    Random r = new Random(71);
    for (int[] sh : SHAPES) {
      try (Scope s = Scope.open()) {
        String at = d + " " + sh[0] + "x" + sh[1];
        Nd x = in(r, d, sh[0], sh[1]);
        Nd y = in(r, d, sh[1], sh[0]);
        Tensor t = x.tensor(d), u = y.tensor(d);
        Tensor tt = t.mT();
        Tensor tc = tt.contiguous();
        Nd xt = x.permute(1, 0);
        Ref.assertClose(tc, xt, 0, 0);
        assertSameBits(tt.exp(), tc.exp(), at + " exp of a transpose");
        assertSameBits(u.add(tt), u.add(tc), at + " y + xᵀ");
        assertSameBits(tt.mul(u), tc.mul(u), at + " xᵀ · y");
        Nd diff = Nd.zip(y, xt, (p, q) -> p - q); // rounded once, as the kernel's F32 subtraction
        Ref.assertClose(u.sub(tt), d == DType.F32 ? diff.roundToFloat() : diff, 0, 0);
        // both transposed (the output is still walked in tiles of the first one's dim)
        Tensor v = y.permute(1, 0).tensor(d).mT();
        assertSameBits(tt.add(v), tc.add(v.contiguous()), at + " xᵀ + yᵀ");
        // a transposed row broadcast against a transposed tensor: the [1, n] side has stride 0
        Tensor row = u.narrow(0, 0, 1);
        assertSameBits(tt.mul(row), tc.mul(row.contiguous()), at + " xᵀ · y[0:1]");
        // where, every operand transposed or not
        Tensor cond = t.gt(0.0).to(d);
        assertSameBits(Tensor.where(cond.mT(), tt, u), Tensor.where(cond.mT().contiguous(), tc, u),
            at + " where(cᵀ, xᵀ, y)");
        // a copy into a transposed destination
        Tensor dst = Tensor.zeros(x.longShape(), d, CPU);
        dst.mT().copyInPlace(u);
        Ref.assertClose(dst, y.permute(1, 0), 0, 0);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void everyPermutationOfThreeDims(DType d) {
    Random r = new Random(72);
    int[][] perms = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (int[] sh : new int[][] {{3, 37, 70}, {40, 33, 200}}) {
      try (Scope s = Scope.open()) {
        Nd x = in(r, d, sh);
        Tensor t = x.tensor(d);
        for (int[] p : perms) {
          String at = d + " " + java.util.Arrays.toString(sh) + ".permute" + java.util.Arrays.toString(p);
          Tensor tp = t.permute(p);
          Tensor tc = tp.contiguous();
          Ref.assertClose(tc, x.permute(p), 0, 0);
          Nd z = in(r, d, x.permute(p).shape);
          Tensor zt = z.tensor(d);
          assertSameBits(tp.add(zt), tc.add(zt), at + " + z");
          assertSameBits(tp.neg(), tc.neg(), at + " neg");
          // broadcast along the middle dim
          int[] bs = x.permute(p).shape.clone();
          bs[1] = 1;
          Tensor b = in(r, d, bs).tensor(d);
          assertSameBits(tp.mul(b), tc.mul(b), at + " · [.., 1, ..]");
        }
      }
    }
  }

  @Test
  void transposedCopiesOfTwoAndEightByteTypes() {
    try (Scope s = Scope.open()) {
      int m = 300, n = 1000; // past the fork threshold
      Tensor idx = Tensor.arange((long) m * n, DType.I64, CPU).reshape(m, n);
      long[] got = idx.mT().contiguous().toLongArray();
      for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++)
          if (got[i * m + j] != (long) j * n + i) fail("I64 transpose at [" + i + ", " + j + "]: " + got[i * m + j]);
      // BF16 holds the integers up to 256 exactly
      double[] v = new double[m * n];
      for (int i = 0; i < v.length; i++) v[i] = i % 256;
      Tensor small = Tensor.of(v, m, n).to(DType.BF16);
      double[] h = small.mT().contiguous().toDoubleArray();
      for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++)
          assertEquals(((long) j * n + i) % 256, h[i * m + j], 0.0, "BF16 transpose at [" + i + ", " + j + "]");
    }
  }

  /**
   * Rows shorter than 64 elements, contiguous on both sides (kernels/cpu/dense.cpp's short-row copy:
   * chunks of 8, then a last chunk of 8, 4 or 2 ending at the row's end): every length across the
   * chunk edges, of 2-, 4- and 8-byte types, as a last-dim narrow made contiguous and as a concat
   * along the last dim, against index arithmetic; with enough rows to fork.
   */
  @Test
  void shortRowsOfEveryLength() {
    try (Scope s = Scope.open()) {
      for (int rows : new int[] {3, 5000}) {
        for (int len = 1; len <= 66; len++) {
          int w = len + 3;
          for (DType d : new DType[] {DType.I64, DType.F32, DType.F64, DType.BF16}) {
            double[] v = new double[rows * w]; // BF16 holds the integers up to 256 exactly
            for (int i = 0; i < v.length; i++) v[i] = d == DType.BF16 ? i % 256 : i;
            Tensor x = Tensor.of(v, rows, w).to(d);
            double[] got = x.narrow(1, 1, len).contiguous().toDoubleArray();
            for (int r = 0; r < rows; r++)
              for (int c = 0; c < len; c++) {
                long want = (long) r * w + 1 + c;
                if (got[r * len + c] != (d == DType.BF16 ? want % 256 : want))
                  fail(d + " [" + rows + ", " + len + "] of rows of " + w + " at [" + r + ", " + c + "]: " + got[r * len + c]);
              }
            double[] cat = Tensor.concat(java.util.List.of(x.narrow(1, 0, len), x.narrow(1, len, 3)), 1).toDoubleArray();
            double[] all = x.toDoubleArray();
            assertArrayEquals(all, cat, 0.0, d + " concat [" + rows + ", " + len + "] + [" + rows + ", 3]");
          }
        }
      }
    }
  }
}
