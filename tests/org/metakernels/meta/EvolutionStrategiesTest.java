package org.metakernels.meta;

import static org.junit.jupiter.api.Assertions.*;
import static org.metakernels.testing.Ref.rejects;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Antithetic ES: the noise (statistics, antithetic pairs, a Java port of the generator, Philox-4x32-10
 * and Box–Muller, gives the same bits), the fused update against a naive Java sum, convergence, determinism, bad input.
 */
class EvolutionStrategiesTest {
  static final Device CPU = Device.CPU;
  static final DType F64 = DType.F64;
  static final Class<MetakernelsException> MK = MetakernelsException.class;

  // ---- a Java port of mk/meta_batched.h (Java doubles are IEEE without contraction) -----------
  static long mix64(long z) {
    z ^= z >>> 30;
    z *= 0xBF58476D1CE4E5B9L;
    z ^= z >>> 27;
    z *= 0x94D049BB133111EBL;
    z ^= z >>> 31;
    return z;
  }

  static long pairKey(long seed, long generation, long pair) {
    long h = mix64(seed ^ 0x243F6A8885A308D3L);
    h = mix64(h ^ (generation * 0x9E3779B97F4A7C15L + 0x13198A2E03707344L));
    return mix64(h ^ (pair * 0xD1B54A32D192ED03L + 0xA4093822299F31D0L));
  }

  // Philox-4x32-10, the words as ints (Java's int arithmetic wraps like uint32_t)
  static void philox(int[] c, int k0, int k1) {
    for (int round = 0; round < 10; round++) {
      long p0 = 0xD2511F53L * (c[0] & 0xFFFFFFFFL), p1 = 0xCD9E8D57L * (c[2] & 0xFFFFFFFFL);
      int n0 = (int) (p1 >>> 32) ^ c[1] ^ k0, n2 = (int) (p0 >>> 32) ^ c[3] ^ k1;
      c[1] = (int) p1;
      c[3] = (int) p0;
      c[0] = n0;
      c[2] = n2;
      k0 += 0x9E3779B9;
      k1 += 0xBB67AE85;
    }
  }

  static final float TWO_M24 = 5.9604644775390625e-08f, SQRT2 = 1.41421356237309515f, LN2 = 0.693147180559945309f;

  static float esLogf(float u) {
    int bits = Float.floatToRawIntBits(u);
    int e = (bits >>> 23) - 127;
    float m = Float.intBitsToFloat((bits & 0x007FFFFF) | 0x3F800000);
    if (m > SQRT2) {
      m = m * 0.5f;
      e += 1;
    }
    float f = m - 1.0f, z = f / (f + 2.0f), w = z * z;
    float p = (float) (1.0 / 9);
    p = p * w + (float) (1.0 / 7);
    p = p * w + (float) (1.0 / 5);
    p = p * w + (float) (1.0 / 3);
    p = p * w + 1.0f;
    return (float) e * LN2 + (z + z) * p;
  }

  /** Box–Muller of mk/meta_batched.h: {r cos θ, r sin θ}. */
  static float[] boxMuller(int xa, int xb) {
    float u = (float) ((xa >>> 8) | 1) * TWO_M24;
    float r = (float) Math.sqrt(-2.0f * esLogf(u)); // the double root rounded once: float's √
    float t = (float) (((xb >>> 5) & 0x00FFFFFF) | 1) * TWO_M24;
    float phi = t * 0.785398163397448310f, w = phi * phi;
    float s = (float) (1.0 / 362880);
    s = s * w + (float) (-1.0 / 5040);
    s = s * w + (float) (1.0 / 120);
    s = s * w + (float) (-1.0 / 6);
    s = s * w;
    float sn = phi + phi * s;
    float c = (float) (1.0 / 40320);
    c = c * w + (float) (-1.0 / 720);
    c = c * w + (float) (1.0 / 24);
    c = c * w + -0.5f;
    float cs = 1.0f + w * c;
    int o = xb >>> 29;
    boolean swap = ((o ^ (o >> 1)) & 1) != 0;
    int negC = (((o >> 1) ^ (o >> 2)) & 1) << 31, negS = (o >> 2) << 31;
    float a = Float.intBitsToFloat(Float.floatToRawIntBits(swap ? sn : cs) ^ negC);
    float b = Float.intBitsToFloat(Float.floatToRawIntBits(swap ? cs : sn) ^ negS);
    return new float[] {r * a, r * b};
  }

  /** ε[k, j] under the pair's key: word (j >> 4) & 3 of Philox group 16 (j >> 6) + (j & 15). */
  static float normal(long key, long j) {
    long g = ((j >>> 6) << 4) | (j & 15);
    int[] c = {(int) g, (int) (g >>> 32), 0, 0};
    philox(c, (int) key, (int) (key >>> 32));
    int word = (int) ((j >>> 4) & 3);
    return boxMuller(c[word < 2 ? 0 : 2], c[word < 2 ? 1 : 3])[word & 1];
  }

  /** The noise [pairs, n] as the kernels make it: θ = 0, σ = 1, the even rows. */
  static double[][] noise(long seed, long gen, int pairs, int n, DType t) {
    try (Scope s = Scope.open()) {
      double[] all =
          EvolutionStrategies.perturb(Tensor.zeros(new long[] {n}, t, CPU), 1.0, seed, gen, 2 * pairs).toDoubleArray();
      double[][] out = new double[pairs][n];
      for (int k = 0; k < pairs; k++) {
        for (int j = 0; j < n; j++) {
          out[k][j] = all[2 * k * n + j];
          assertEquals(-out[k][j], all[(2 * k + 1) * n + j], 0.0, "antithetic pair " + k);
        }
      }
      return out;
    }
  }

  @Test
  void theKernelsNoiseIsTheGeneratorsBits() {
    // the port is Philox-4x32-10: its published known answers (Random123's kat_vectors)
    int[] c = {0, 0, 0, 0};
    philox(c, 0, 0);
    assertArrayEquals(new int[] {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}, c);
    c = new int[] {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
    philox(c, 0xa4093822, 0x299f31d0);
    assertArrayEquals(new int[] {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}, c);
    for (long seed : new long[] {0L, 7L, -3L, Long.MAX_VALUE}) {
      double[][] e64 = noise(seed, 5, 3, 700, F64);
      double[][] e32 = noise(seed, 5, 3, 700, DType.F32);
      for (int k = 0; k < 3; k++)
        for (int j = 0; j < 700; j++) {
          float want = normal(pairKey(seed, 5, k), j);
          assertEquals(Double.doubleToRawLongBits(want), Double.doubleToRawLongBits(e64[k][j]), "F64 " + k + "," + j);
          assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits((float) e32[k][j]), "F32 " + k + "," + j);
        }
    }
  }

  @Test
  void noiseStatistics() {
    int pairs = 64, n = 4096;
    double[][] e = noise(11L, 0, pairs, n, F64);
    double count = (double) pairs * n, sum = 0, sq = 0, cube = 0, quad = 0;
    for (double[] row : e)
      for (double v : row) {
        sum += v;
        sq += v * v;
        cube += v * v * v;
        quad += v * v * v * v;
      }
    double mean = sum / count, var = sq / count - mean * mean;
    assertEquals(0.0, mean, 5 / Math.sqrt(count), "mean");
    assertEquals(1.0, var, 5 * Math.sqrt(2 / count), "variance");
    assertEquals(0.0, cube / count, 5 * Math.sqrt(15 / count), "skew");
    assertEquals(3.0, quad / count, 5 * Math.sqrt(96 / count), "kurtosis");
    // independence: correlation of pairs, of neighbouring indices and of two generations
    double[][] next = noise(11L, 1, pairs, n, F64);
    double worstPair = 0, worstIndex = 0, worstGen = 0;
    for (int k = 0; k + 1 < pairs; k++) {
      worstPair = Math.max(worstPair, Math.abs(corr(e[k], e[k + 1])));
      worstGen = Math.max(worstGen, Math.abs(corr(e[k], next[k])));
      double[] a = new double[n - 1], b = new double[n - 1];
      for (int j = 0; j + 1 < n; j++) {
        a[j] = e[k][j];
        b[j] = e[k][j + 1];
      }
      worstIndex = Math.max(worstIndex, Math.abs(corr(a, b)));
    }
    // |corr| of independent normals ~ N(0, 1/n): 63 draws each stay below 4.5/√n with p > 0.999
    double bound = 4.5 / Math.sqrt(n);
    assertTrue(worstPair < bound, "pairs correlate: " + worstPair);
    assertTrue(worstIndex < bound, "neighbouring indices correlate: " + worstIndex);
    assertTrue(worstGen < bound, "generations correlate: " + worstGen);
    // a different seed gives different noise
    assertNotEquals(e[0][0], noise(12L, 0, 1, 1, F64)[0][0]);
  }

  /** Φ at each of the sorted xs, integrating the density from -9 (Simpson, 16 panels per gap). */
  static double[] normalCdf(double[] xs) {
    double[] out = new double[xs.length];
    double prev = -9.0, acc = 0.0; // Φ(-9) < 1e-18
    for (int i = 0; i < xs.length; i++) {
      double x = Math.max(xs[i], -9.0), h = (x - prev) / 16;
      if (h > 0) {
        double sum = pdf(prev) + pdf(x);
        for (int m = 1; m < 16; m++) sum += (m % 2 == 1 ? 4 : 2) * pdf(prev + m * h);
        acc += sum * h / 3;
      }
      out[i] = acc;
      prev = x;
    }
    return out;
  }

  static double pdf(double x) {
    return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  }

  @Test
  void noiseDistribution() {
    // 2^18 values of one generation: Kolmogorov–Smirnov against N(0, 1), the tails, and the
    // independence of the two normals of one Box–Muller pair (indices j and j + 16)
    int pairs = 8, n = 32768;
    double[][] e = noise(21L, 2, pairs, n, F64);
    double[] all = new double[pairs * n];
    for (int k = 0; k < pairs; k++) System.arraycopy(e[k], 0, all, k * n, n);
    double[] sorted = all.clone();
    java.util.Arrays.sort(sorted);
    double[] cdf = normalCdf(sorted);
    double d = 0;
    for (int i = 0; i < sorted.length; i++)
      d = Math.max(d, Math.max(Math.abs(cdf[i] - (double) i / sorted.length), Math.abs((double) (i + 1) / sorted.length - cdf[i])));
    // √N D of a true sample exceeds 1.95 with probability 0.001; a bias of 1% of σ in the mean
    // alone moves D by 0.004, √N D by 2
    assertTrue(Math.sqrt(sorted.length) * d < 1.95, "Kolmogorov-Smirnov: sqrt(N) D = " + Math.sqrt(sorted.length) * d);
    // tails: P(|ε| > 3) = 0.0026998, P(|ε| > 4) = 6.334e-5; counts within 5 binomial σ
    long over3 = java.util.Arrays.stream(all).filter(v -> Math.abs(v) > 3).count();
    long over4 = java.util.Arrays.stream(all).filter(v -> Math.abs(v) > 4).count();
    double n3 = all.length * 0.0026998, n4 = all.length * 6.334e-5;
    assertEquals(n3, over3, 5 * Math.sqrt(n3), "|eps| > 3");
    assertEquals(n4, over4, 5 * Math.sqrt(n4) + 1, "|eps| > 4");
    assertTrue(sorted[sorted.length - 1] < 5.78 && sorted[0] > -5.78, "the largest |eps| is sqrt(48 ln 2)");
    // the two words of one pair of uniforms: uncorrelated, and so are their squares (r is shared)
    int m = pairs * (n / 64) * 32; // words 0 and 2 of every block, paired with 1 and 3
    double[] a = new double[m], b = new double[m], a2 = new double[m], b2 = new double[m];
    int at = 0;
    for (int k = 0; k < pairs; k++)
      for (int j = 0; j < n; j++)
        if (((j >> 4) & 1) == 0) {
          a[at] = e[k][j];
          b[at] = e[k][j + 16];
          a2[at] = a[at] * a[at];
          b2[at] = b[at] * b[at];
          at++;
        }
    assertEquals(m, at);
    double bound = 5 / Math.sqrt(m);
    assertEquals(0.0, corr(a, b), bound, "cos and sin normals correlate");
    assertEquals(0.0, corr(a2, b2), bound, "their squares correlate");
  }

  static double corr(double[] a, double[] b) {
    double ma = 0, mb = 0;
    for (int i = 0; i < a.length; i++) {
      ma += a[i];
      mb += b[i];
    }
    ma /= a.length;
    mb /= b.length;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < a.length; i++) {
      sab += (a[i] - ma) * (b[i] - mb);
      saa += (a[i] - ma) * (a[i] - ma);
      sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / Math.sqrt(saa * sbb);
  }

  @Test
  void centredRanks() {
    assertArrayEquals(new double[] {0.5, -0.5, 0.0}, EvolutionStrategies.centredRanks(new double[] {3, 1, 2}), 0.0);
    // ties share their mean rank; the weights sum to 0
    double[] w = EvolutionStrategies.centredRanks(new double[] {1, 5, 5, -2});
    assertArrayEquals(new double[] {-1.0 / 6, 1.0 / 3, 1.0 / 3, -0.5}, w, 1e-15);
    assertEquals(0.0, w[0] + w[1] + w[2] + w[3], 1e-15);
  }

  @Test
  void updateEqualsNaiveJavaReference() {
    int pop = 10, n = 37;
    double sigma = 0.2, lr = 0.3;
    long seed = 99;
    try (Scope s = Scope.open()) {
      Tensor theta0 = Tensor.randn(new long[] {n}, F64, CPU, 1);
      double[] th = theta0.toDoubleArray();
      try (EvolutionStrategies es = new EvolutionStrategies(theta0, pop, sigma, lr, seed)) {
        for (int gen = 0; gen < 3; gen++) {
          double[] members = es.ask().toDoubleArray();
          double[][] eps = noise(seed, gen, pop / 2, n, F64);
          double[] fitness = new double[pop];
          for (int i = 0; i < pop; i++) {
            for (int j = 0; j < n; j++) {
              double e = (i % 2 == 0 ? 1 : -1) * eps[i / 2][j];
              assertEquals(th[j] + sigma * e, members[i * n + j], 1e-15, "member " + i);
              fitness[i] -= members[i * n + j] * members[i * n + j];
            }
          }
          double[] w = EvolutionStrategies.centredRanks(fitness);
          for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int i = 0; i < pop; i++) acc += w[i] * (i % 2 == 0 ? 1 : -1) * eps[i / 2][j];
            th[j] += lr / (pop * sigma) * acc;
          }
          es.tell(fitness);
          assertEquals(gen + 1, es.generation());
          assertArrayEquals(th, es.theta().toDoubleArray(), 1e-14, "generation " + gen);
        }
      }
      // the static combine: theta null is the weighted noise sum alone
      Tensor wts = Tensor.of(new double[] {0.5, -0.5, 0.25, 0.0}, 4);
      double[][] eps = noise(3L, 2, 2, n, F64);
      double[] got = EvolutionStrategies.combine(wts, 2.0, null, theta0, 3L, 2).toDoubleArray();
      for (int j = 0; j < n; j++)
        assertEquals(2.0 * ((0.5 + 0.5) * eps[0][j] + 0.25 * eps[1][j]), got[j], 1e-14, "combine " + j);
    }
  }

  static double quadratic(double[] m, int off, int n) {
    double f = 0;
    for (int j = 0; j < n; j++) {
      double d = m[off + j] - 0.1 * (j + 1);
      f += d * d;
    }
    return f;
  }

  @Test
  void convergesOnAQuadratic() {
    int n = 20, pop = 32;
    try (Scope s = Scope.open(); EvolutionStrategies es = new EvolutionStrategies(
                                     Tensor.zeros(new long[] {n}, F64, CPU), pop, 0.05, 0.05, 5L)) {
      double start = quadratic(es.theta().toDoubleArray(), 0, n);
      for (int g = 0; g < 300; g++) {
        try (Scope gs = Scope.open()) {
          double[] m = es.ask().toDoubleArray();
          double[] fit = new double[pop];
          for (int i = 0; i < pop; i++) fit[i] = -quadratic(m, i * n, n);
          es.tell(fit);
        }
      }
      double end = quadratic(es.theta().toDoubleArray(), 0, n);
      assertTrue(end < start / 100, "quadratic " + start + " -> " + end);
    }
  }

  @Test
  void convergesOnRosenbrock() {
    int pop = 40;
    try (Scope s = Scope.open(); EvolutionStrategies es = new EvolutionStrategies(
                                     Tensor.of(new double[] {-1.0, 1.0}, 2), pop, 0.05, 0.01, 8L)) {
      double start = rosen(es.theta().toDoubleArray(), 0);
      for (int g = 0; g < 1500; g++) {
        try (Scope gs = Scope.open()) {
          double[] m = es.ask().toDoubleArray();
          double[] fit = new double[pop];
          for (int i = 0; i < pop; i++) fit[i] = -rosen(m, 2 * i);
          es.tell(fit);
        }
      }
      double[] th = es.theta().toDoubleArray();
      double end = rosen(th, 0);
      assertTrue(end < 0.05 * start, "Rosenbrock " + start + " -> " + end + " at " + th[0] + ", " + th[1]);
    }
  }

  static double rosen(double[] m, int off) {
    double x = m[off], y = m[off + 1];
    return (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x);
  }

  static double[] run(long seed, DType t) {
    int pop = 16, n = 3000;
    try (Scope s = Scope.open(); EvolutionStrategies es = new EvolutionStrategies(
                                     Tensor.randn(new long[] {n}, t, CPU, 1), pop, 0.1, 0.1, seed)) {
      for (int g = 0; g < 3; g++) {
        double[] m = es.ask().toDoubleArray();
        double[] fit = new double[pop];
        for (int i = 0; i < pop; i++) fit[i] = -quadratic(m, i * n, 5);
        es.tell(fit);
      }
      return es.theta().toDoubleArray();
    }
  }

  @Test
  void runsAreBitwiseDeterministicAcrossThreadCounts() {
    int before = MkNative.mk_runtime_num_threads();
    try {
      for (DType t : new DType[] {DType.F32, F64}) {
        double[] first = run(4L, t);
        for (int threads : new int[] {1, 2, 3}) {
          MkNative.mk_runtime_set_num_threads(threads);
          assertArrayEquals(first, run(4L, t), 0.0, t + ", " + threads + " threads");
        }
        assertFalse(java.util.Arrays.equals(first, run(5L, t)), "another seed, another run");
      }
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }

  @Test
  void badInputIsRefused() {
    try (Scope s = Scope.open()) {
      Tensor th = Tensor.randn(new long[] {4}, F64, CPU, 1), w3 = Tensor.of(new double[] {1, 2, 3}, 3);
      Tensor w4f = Tensor.of(new float[] {1, 2, 3, 4}, 4), idx = Tensor.ofIndices(new long[] {1, 2}, 2);
      List<Tensor> all = List.of(th, w3, w4f);
      rejects(
          MK, () -> new EvolutionStrategies(th, 5, 0.1, 0.1, 1L), all, "EvolutionStrategies", "population 5", "even");
      rejects(MK, () -> new EvolutionStrategies(th, 0, 0.1, 0.1, 1L), all, "population 0");
      rejects(MK, () -> new EvolutionStrategies(th, 4, 0.0, 0.1, 1L), all, "sigma = 0.0");
      rejects(MK, () -> new EvolutionStrategies(th, 4, -1, 0.1, 1L), all, "sigma = -1.0");
      rejects(MK, () -> EvolutionStrategies.perturb(th, Double.NaN, 1L, 0, 4), all, "perturb", "sigma = NaN");
      rejects(MK, () -> EvolutionStrategies.perturb(th, 0.1, 1L, -1, 4), all, "generation -1");
      rejects(MK, () -> EvolutionStrategies.perturb(idx, 0.1, 1L, 0, 4), all, "I64");
      rejects(MK, () -> EvolutionStrategies.combine(w3, 1.0, th, th, 1L, 0), all, "combine", "population 3");
      rejects(MK, () -> EvolutionStrategies.combine(w4f, 1.0, th, th, 1L, 0), all, "combine", "F32[4]", "F64[4]");
      rejects(MK,
          ()
              -> EvolutionStrategies.combine(
                  Tensor.of(new double[] {1, 2}, 2), Double.POSITIVE_INFINITY, th, th, 1L, 0),
          all, "scale = Infinity");
      try (EvolutionStrategies es = new EvolutionStrategies(th, 4, 0.1, 0.1, 1L)) {
        rejects(MK, () -> es.tell(new double[] {1, 2, 3}), all, "tell", "4 fitness values", "3");
        rejects(MK, () -> es.tell(new double[] {1, Double.NaN, 3, 4}), all, "NaN");
        double[] before = es.theta().toDoubleArray();
        assertThrows(MK, () -> es.tell(new double[] {1, Double.NaN, 3, 4}));
        assertArrayEquals(before, es.theta().toDoubleArray(), 0.0, "a refused tell changes nothing");
        assertEquals(0, es.generation());
      }
      Tensor closed = Tensor.randn(new long[] {4}, F64, CPU, 2);
      closed.close();
      assertThrows(IllegalStateException.class, () -> EvolutionStrategies.perturb(closed, 0.1, 1L, 0, 4));
      // native checks what Java never passes: no pairs, sigma 0, in-place overlap
      Tensor out = Tensor.empty(new long[] {8}, F64, CPU);
      assertNotEquals(
          0, MkNative.mk_meta_es_perturb(CPU.code, F64.code, 1L, 0, 0, 4, th.address("t"), 0.1, out.address("t"), 0L));
      assertTrue(MkNative.mk_last_error().getString().contains("pairs = 0"), MkNative.mk_last_error().getString());
      assertNotEquals(
          0, MkNative.mk_meta_es_perturb(CPU.code, F64.code, 1L, 0, 1, 4, th.address("t"), 0.0, out.address("t"), 0L));
      assertNotEquals(
          0, MkNative.mk_meta_es_perturb(CPU.code, F64.code, 1L, 0, 1, 4, out.address("t"), 0.1, out.address("t"), 0L));
      assertTrue(MkNative.mk_last_error().getString().contains("overlaps"), MkNative.mk_last_error().getString());
    }
  }
}
