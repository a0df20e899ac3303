package org.metakernels.tensor;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.metakernels.testing.Ref;

/** Factories, random generators and conversions to Java arrays. */
class FactoriesTest {
  static final Device CPU = Device.CPU;

  @Test
  void ofAndConversions() {
    try (Scope s = Scope.open()) {
      Tensor d = Tensor.of(new double[] {1.5, -2, 3, 4.25, 5, 6}, 2, 3);
      assertEquals(DType.F64, d.dtype());
      assertEquals(CPU, d.device());
      Ref.assertShape(d, 2, 3);
      assertArrayEquals(new long[] {3, 1}, d.strides());
      assertArrayEquals(new double[] {1.5, -2, 3, 4.25, 5, 6}, d.toDoubleArray());
      assertArrayEquals(new float[] {1.5f, -2, 3, 4.25f, 5, 6}, d.toFloatArray());
      assertArrayEquals(new long[] {1, -2, 3, 4, 5, 6}, d.toLongArray());
      // conversions of a non-contiguous view are in logical order
      assertArrayEquals(new double[] {1.5, 4.25, -2, 5, 3, 6}, d.mT().toDoubleArray());
      assertArrayEquals(new double[] {-2, 5}, d.select(1, 1).toDoubleArray());
      Tensor f = Tensor.of(new float[] {0.1f, 2, -3}, 3);
      assertEquals(DType.F32, f.dtype());
      assertArrayEquals(new float[] {0.1f, 2, -3}, f.toFloatArray());
      assertArrayEquals(new double[] {(double) 0.1f, 2, -3}, f.toDoubleArray());
      Tensor i = Tensor.ofIndices(new long[] {7, -1, 1L << 40}, 3, 1);
      assertEquals(DType.I64, i.dtype());
      assertArrayEquals(new long[] {7, -1, 1L << 40}, i.toLongArray());
      assertArrayEquals(new double[] {7, -1, Math.pow(2, 40)}, i.toDoubleArray());
      assertEquals(7.0, i.narrow(0, 0, 1).item());
      // 0-d and empty tensors
      Tensor sc = Tensor.of(new double[] {2.5});
      assertEquals(0, sc.rank());
      assertEquals(2.5, sc.item());
      Tensor empty = Tensor.of(new double[0], 0, 4);
      assertEquals(0, empty.numel());
      assertEquals(0, empty.toDoubleArray().length);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32", "I64"})
  void arangeZerosOnesFull(DType d) {
    try (Scope s = Scope.open()) {
      Tensor a = Tensor.arange(7, d, CPU);
      assertEquals(d, a.dtype());
      Ref.assertShape(a, 7);
      assertArrayEquals(new double[] {0, 1, 2, 3, 4, 5, 6}, a.toDoubleArray());
      Ref.assertShape(Tensor.arange(0, d, CPU), 0);
      Tensor z = Tensor.zeros(new long[] {3, 1, 4}, d, CPU);
      Ref.assertShape(z, 3, 1, 4);
      assertEquals(d, z.dtype());
      for (double v : z.toDoubleArray()) assertEquals(0.0, v);
      for (double v : Tensor.ones(new long[] {5}, d, CPU).toDoubleArray()) assertEquals(1.0, v);
      for (double v : Tensor.full(new long[] {2, 2}, -3, d, CPU).toDoubleArray()) assertEquals(-3.0, v);
      Tensor sc = Tensor.scalar(4, d, CPU);
      assertEquals(0, sc.rank());
      assertEquals(4.0, sc.item());
      Ref.assertShape(Tensor.zerosLike(z), 3, 1, 4);
      Ref.assertShape(Tensor.onesLike(z), 3, 1, 4);
      assertEquals(d, Tensor.onesLike(z).dtype());
      // a large fill
      Tensor big = Tensor.full(new long[] {300, 200}, 0.5, d, CPU);
      double sum = 0;
      for (double v : big.toDoubleArray()) sum += v;
      assertEquals(d == DType.I64 ? 0 : 30000, sum);
    }
  }

  static double mean(double[] v) {
    double s = 0;
    for (double x : v) s += x;
    return s / v.length;
  }

  static double var(double[] v) {
    double m = mean(v), s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return s / v.length;
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void randomGenerators(DType d) {
    try (Scope s = Scope.open()) {
      long[] shape = {250, 400};  // 100k samples
      Tensor n1 = Tensor.randn(shape, d, CPU, 42);
      Ref.assertShape(n1, 250, 400);
      assertEquals(d, n1.dtype());
      double[] v = n1.toDoubleArray();
      assertArrayEquals(v, Tensor.randn(shape, d, CPU, 42).toDoubleArray(), 0, "same seed, same values");
      assertFalse(java.util.Arrays.equals(v, Tensor.randn(shape, d, CPU, 43).toDoubleArray()), "other seed differs");
      assertEquals(0, mean(v), 0.02, "randn mean");
      assertEquals(1, var(v), 0.03, "randn variance");
      double fourth = 0;
      for (double x : v) fourth += x * x * x * x;
      assertEquals(3, fourth / v.length, 0.1, "randn kurtosis");
      // the element stream does not depend on the shape
      double[] flat = Tensor.randn(new long[] {100000}, d, CPU, 42).toDoubleArray();
      assertArrayEquals(v, flat, 0);

      double[] u = Tensor.rand(shape, d, CPU, 7).toDoubleArray();
      for (double x : u) assertTrue(x >= 0 && x < 1, "rand in [0, 1): " + x);
      assertEquals(0.5, mean(u), 0.01);
      assertEquals(1.0 / 12, var(u), 0.003);
      assertArrayEquals(u, Tensor.rand(shape, d, CPU, 7).toDoubleArray(), 0);

      double[] w = Tensor.uniform(shape, -3, 5, d, CPU, 9).toDoubleArray();
      for (double x : w) assertTrue(x >= -3 && x <= 5, "uniform in [-3, 5): " + x);
      assertEquals(1, mean(w), 0.05);
      assertEquals(64.0 / 12, var(w), 0.15);

      Ref.assertShape(Tensor.randn(new long[0], d, CPU, 1), new long[0]);
      Ref.assertShape(Tensor.rand(new long[] {3, 0}, d, CPU, 1), 3, 0);
    }
  }

  @Test
  void uniformSamplesStayBelowTheTopInEveryType() {
    try (Scope s = Scope.open()) {
      // BF16 rounds every F32 sample above 1 - 2^-9 to 1 and F16 above 1 - 2^-12: the value below 1
      // instead, which both then hold
      for (DType d : new DType[] {DType.BF16, DType.F16}) {
        double[] u = Tensor.rand(new long[] {100000}, d, CPU, 3).toDoubleArray();
        double top = d == DType.BF16 ? 1 - 0x1p-8 : 1 - 0x1p-11, max = 0;
        for (double x : u) {
          assertTrue(x >= 0 && x < 1, d + " rand in [0, 1): " + x);
          max = Math.max(max, x);
        }
        assertEquals(top, max, 0, d + ": the largest value below 1 is drawn");
        for (double x : Tensor.uniform(new long[] {20000}, -3, 5, d, CPU, 4).toDoubleArray())
          assertTrue(x >= -3 && x < 5, d + " uniform in [-3, 5): " + x);
      }
      // F32 and F64 reach b only at the rounding of the top samples: a range of a few steps of the
      // type's grid makes it frequent
      for (DType d : new DType[] {DType.F32, DType.F64}) {
        double lo = 1, hi = d == DType.F32 ? 1 + 0x1p-20 : 1 + 0x1p-49;
        double[] u = Tensor.uniform(new long[] {10000}, lo, hi, d, CPU, 5).toDoubleArray();
        long atTop = 0;
        double below = d == DType.F32 ? Math.nextDown((float) hi) : Math.nextDown(hi);
        for (double x : u) {
          assertTrue(x >= lo && x < hi, d + " uniform in [lo, hi): " + x);
          if (x == below) atTop++;
        }
        assertTrue(atTop > 0, d + ": the value below hi is drawn");
      }
      // the largest half below a value, across binades, signs and zero
      assertEquals(1 - 0x1p-8, Tensor.halfBelow(DType.BF16, 1.0), 0);
      assertEquals(-1 - 0x1p-7, Tensor.halfBelow(DType.BF16, -1.0), 0);
      assertEquals(1 - 0x1p-11, Tensor.halfBelow(DType.F16, 1.0), 0);
      assertEquals(5 - 0x1p-8, Tensor.halfBelow(DType.F16, 5.0), 0);
      assertEquals(-5 - 0x1p-8, Tensor.halfBelow(DType.F16, -5.0), 0);
      assertEquals(-0x1p-24, Tensor.halfBelow(DType.F16, 0.0), 0);
      assertEquals(0x1p-14 - 0x1p-24, Tensor.halfBelow(DType.F16, 0x1p-14), 0);
      assertEquals(0x1p-24, Tensor.halfBelow(DType.F16, 0x1p-23), 0);
    }
  }

  @Test
  void f32SamplesAreTheF64SamplesRounded() {
    try (Scope s = Scope.open()) {
      double[] a = Tensor.randn(new long[] {1000}, DType.F64, CPU, 5).toDoubleArray();
      float[] b = Tensor.randn(new long[] {1000}, DType.F32, CPU, 5).toFloatArray();
      for (int i = 0; i < a.length; i++) assertEquals((float) a[i], b[i], 0f);
    }
  }

  /** A bad shape names the factory the caller used, not the one it is built on. */
  @Test
  void badShapesNameTheFactory() {
    long[] bad = {2, -1};
    java.util.Map<String, org.junit.jupiter.api.function.Executable> calls = new java.util.LinkedHashMap<>();
    calls.put("zeros", () -> Tensor.zeros(bad, DType.F32, CPU));
    calls.put("ones", () -> Tensor.ones(bad, DType.F32, CPU));
    calls.put("full", () -> Tensor.full(bad, 2.0, DType.F32, CPU));
    calls.put("randn", () -> Tensor.randn(bad, DType.F32, CPU, 1));
    calls.put("rand", () -> Tensor.rand(bad, DType.F64, CPU, 1));
    calls.put("uniform", () -> Tensor.uniform(bad, 0, 1, DType.BF16, CPU, 1));
    calls.put("empty", () -> Tensor.empty(bad, DType.F32, CPU));
    calls.forEach((name, call) -> {
      String m = org.junit.jupiter.api.Assertions.assertThrows(org.metakernels.runtime.MetakernelsException.class, call)
          .getMessage();
      org.junit.jupiter.api.Assertions.assertTrue(m.startsWith(name + ":") && m.contains("[2, -1]"), m);
    });
  }

  @Test
  void uniformRefusesBoundsOutOfOrderOrNotFinite() {
    double[][] bad = {{1, 0}, {Double.NaN, 1}, {0, Double.NaN}, {0, Double.POSITIVE_INFINITY},
        {Double.NEGATIVE_INFINITY, 0}};
    for (double[] b : bad) {
      String m = org.junit.jupiter.api.Assertions.assertThrows(org.metakernels.runtime.MetakernelsException.class,
          () -> Tensor.uniform(new long[] {3, 4}, b[0], b[1], DType.F32, CPU, 1)).getMessage();
      org.junit.jupiter.api.Assertions.assertTrue(m.startsWith("uniform:") && m.contains("[3, 4]"), m);
    }
    // finite bounds too wide for the stored type, or whose difference overflows (samples came out
    // infinite, or all the clamped largest value)
    Object[][] wide = {{-1e308, 1e308, DType.F64}, {-1e39, 1e39, DType.F32}, {0.0, 70000.0, DType.F16},
        {0.0, 3.4e38, DType.BF16}};
    for (Object[] w : wide) {
      String m = assertThrows(org.metakernels.runtime.MetakernelsException.class,
          () -> Tensor.uniform(new long[] {5}, (double) w[0], (double) w[1], (DType) w[2], CPU, 1)).getMessage();
      assertTrue(m.startsWith("uniform:") && m.contains("too wide for " + w[2]), m);
    }
    try (Scope s = Scope.open()) {
      for (double x : Tensor.uniform(new long[] {5}, -65504, 65504, DType.F16, CPU, 1).toDoubleArray())
        assertTrue(x >= -65504 && x < 65504, "F16 " + x);
      for (double x : Tensor.uniform(new long[] {5}, 2, 2, DType.F64, CPU, 1).toDoubleArray()) assertEquals(2, x, 0);
      // an empty tensor (a layer of no inputs: bound 1/sqrt(0)) takes infinite bounds
      Ref.assertShape(Tensor.uniform(new long[] {4, 0}, Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY,
          DType.F32, CPU, 1), 4, 0);
    }
  }

  /**
   * Conversions to a narrower type round once, to nearest even (they went F64 → F32 → BF16 / F16,
   * which rounds twice: 1 + 2^-8 + 2^-30 became 1 in BF16; and I64 → F64 → F32): F64 values near
   * the midpoints of BF16 and F16 against a Java reference, and the fill of full() as well.
   */
  @Test
  void narrowingRoundsOnce() {
    try (Scope s = Scope.open()) {
      java.util.Random r = new java.util.Random(77);
      int n = 4000;
      double[] x = new double[n];
      for (int i = 0; i < n; i++) {
        // a midpoint of the BF16 (even i) or F16 (odd i) grid, moved by -2..2 ulps of double
        int bits = i % 2 == 0 ? 8 : 11, e = r.nextInt(28) - 14;
        double q = Math.scalb(1.0, e - (bits - 1));
        double mid = Math.scalb(1.0, e) + q * r.nextInt(1 << (bits - 1)) + q / 2;
        x[i] = (r.nextBoolean() ? -1 : 1) * (mid + (r.nextInt(5) - 2) * Math.ulp(mid));
      }
      x[0] = 1 + Math.scalb(1.0, -8) + Math.scalb(1.0, -30);
      x[1] = 1 + Math.scalb(1.0, -11) + Math.scalb(1.0, -30);
      Tensor t = Tensor.of(x, n);
      double[] bf = t.to(DType.BF16).toDoubleArray(), hf = t.to(DType.F16).toDoubleArray();
      for (int i = 0; i < n; i++) {
        assertEquals(nearest(x[i], 8, -133, 3.3895313892515355e38), bf[i], 0.0, "BF16 of " + x[i]);
        assertEquals(nearest(x[i], 11, -24, 65504), hf[i], 0.0, "F16 of " + x[i]);
      }
      assertEquals(1.0078125, bf[0], 0.0);
      assertEquals(1.0009765625, hf[1], 0.0);
      assertEquals(1.0078125, Tensor.full(new long[] {2}, x[0], DType.BF16, CPU).toDoubleArray()[1], 0.0);
      long big = (1L << 60) + (1L << 36) + 1;
      assertEquals((double) (float) big, Tensor.ofIndices(new long[] {big, -big}, 2).to(DType.F32).toDoubleArray()[0], 0.0);
      assertEquals(-(double) (float) big, Tensor.ofIndices(new long[] {big, -big}, 2).to(DType.F32).toDoubleArray()[1], 0.0);
    }
  }

  @Test
  void floatingPointToI64IsJavasLongCastEverywhere() {
    // int64_t(d) is undefined in C++ for NaN and out of range (x86: Long.MIN_VALUE for all, the GPU
    // saturates); defined now as Java's (long): NaN 0, saturating, toward zero
    double[] x = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 1e300, -1e300, 0x1p63, -0x1p63,
        0x1p62, -0x1.fffffffffffffp62, 2.9, -2.9, -0.0, 9.3e18, -9.3e18};
    try (Scope s = Scope.open()) {
      for (DType from : new DType[] {DType.F64, DType.F32, DType.BF16, DType.F16}) {
        Tensor t = Tensor.of(x, x.length).castTo(from);
        double[] v = t.toDoubleArray();
        long[] got = t.castTo(DType.I64).toLongArray();
        for (int i = 0; i < x.length; i++) assertEquals((long) v[i], got[i], from + " " + v[i] + " to I64");
        for (int i = 0; i < x.length; i++)
          assertEquals((long) v[i], Tensor.full(new long[] {1}, v[i], DType.I64, CPU).toLongArray()[0], "full I64 " + v[i]);
      }
      // the same type is a copy ("even the same type gives a copy"): I64 went through double
      long[] big = {(1L << 53) + 1, Long.MAX_VALUE, Long.MIN_VALUE, Long.MAX_VALUE - 1, 72057594037928065L};
      assertArrayEquals(big, Tensor.ofIndices(big, big.length).castTo(DType.I64).toLongArray());
      Tensor nan = Tensor.full(new long[] {3}, Double.NaN, DType.F32, CPU);
      assertEquals(Float.floatToRawIntBits(nan.toFloatArray()[0]), Float.floatToRawIntBits(nan.castTo(DType.F32).toFloatArray()[0]));
    }
  }

  @Test
  void i64ToBf16RoundsOnce() {
    // 2^60 + 2^52 + 1 lies just above the BF16 midpoint 2^60 + 2^52; through a double rounded to
    // nearest it became that midpoint and then 2^60 (ties to even)
    java.util.Random r = new java.util.Random(5);
    long[] v = new long[2002];
    v[0] = (1L << 60) + (1L << 52) + 1;
    v[1] = -v[0];
    for (int i = 2; i < v.length; i++) {
      int e = 54 + r.nextInt(9);  // |v| in [2^54, 2^63): past double's 53 bits
      long mid = (1L << e) + ((long) r.nextInt(128) << (e - 7)) + (1L << (e - 8));  // a BF16 midpoint
      long w = mid + r.nextInt(2049) - 1024;
      v[i] = r.nextBoolean() ? w : -w;
    }
    try (Scope s = Scope.open()) {
      double[] bf = Tensor.ofIndices(v, v.length).castTo(DType.BF16).toDoubleArray();
      for (int i = 0; i < v.length; i++) assertEquals(nearestLong(v[i], 8), bf[i], 0.0, "BF16 of " + v[i]);
      assertEquals(0x1p60 + 0x1p53, bf[0], 0.0);
    }
  }

  /** v rounded to nearest even with {@code bits} significant bits, by integer arithmetic (no double on the way). */
  static double nearestLong(long v, int bits) {
    java.math.BigInteger a = java.math.BigInteger.valueOf(v).abs();
    int shift = Math.max(0, a.bitLength() - bits);
    java.math.BigInteger[] qr = a.divideAndRemainder(java.math.BigInteger.ONE.shiftLeft(shift));
    java.math.BigInteger q = qr[0];
    int c = shift == 0 ? -1 : qr[1].compareTo(java.math.BigInteger.ONE.shiftLeft(shift - 1));
    if (c > 0 || (c == 0 && q.testBit(0))) q = q.add(java.math.BigInteger.ONE);
    double d = Math.scalb(q.doubleValue(), shift);  // q has at most bits + 1 bits: exact
    return v < 0 ? -d : d;
  }

  /** x rounded to nearest even with {@code bits} significant bits, quantum at least 2^minQ, overflow to inf. */
  static double nearest(double x, int bits, int minQ, double max) {
    if (x == 0 || !Double.isFinite(x)) return x;
    int q = Math.max(Math.getExponent(x) - (bits - 1), minQ);
    double r = Math.scalb(Math.rint(Math.scalb(x, -q)), q);
    // past the largest finite value by half a quantum or more: infinite
    double halfUlp = Math.scalb(1.0, Math.getExponent(max) - bits);
    if (Math.abs(x) >= max + halfUlp) return Math.copySign(Double.POSITIVE_INFINITY, x);
    return r;
  }
}
