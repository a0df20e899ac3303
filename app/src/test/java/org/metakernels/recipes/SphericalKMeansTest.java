package org.metakernels.recipes;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/** MEOW's clustering: finds planted directions, deterministic for a seed, PCL's concentrations. */
class SphericalKMeansTest {
  /** n unit rows around `centres` random unit directions in d dimensions, noise `sigma`; row i from centre i % centres. */
  static double[] planted(int n, int d, int centres, double sigma, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    double[][] c = new double[centres][d];
    for (double[] v : c) {
      double norm = 0;
      for (int q = 0; q < d; q++) norm += (v[q] = r.nextDouble() * 2 - 1) * v[q];
      for (int q = 0; q < d; q++) v[q] /= Math.sqrt(norm);
    }
    double[] x = new double[n * d];
    for (int i = 0; i < n; i++) {
      double norm = 0;
      for (int q = 0; q < d; q++) {
        x[i * d + q] = c[i % centres][q] + sigma * (r.nextDouble() * 2 - 1);
        norm += x[i * d + q] * x[i * d + q];
      }
      for (int q = 0; q < d; q++) x[i * d + q] /= Math.sqrt(norm);
    }
    return x;
  }

  /** With five restarts (faiss' nredo in the authors' code) the best run finds the planted partition. */
  @Test
  void recoversPlantedClustersDeterministically() {
    int n = 600, d = 16, k = 6;
    try (Scope s = Scope.open()) {
      Tensor z = Tensor.of(planted(n, d, k, 0.15, 3), n, d).castTo(DType.F32);
      long[] first;
      // several seeds: each must find the planted partition (same cluster <=> same centre), up to names
      for (long seed = 1; seed <= 4; seed++) {
        try (SphericalKMeans.Result r = SphericalKMeans.fit(z, k, 50, 5, 0.5, seed)) {
          Map<Long, Integer> centreOf = new HashMap<>();
          for (int i = 0; i < n; i++) {
            Integer prev = centreOf.putIfAbsent(r.assignment()[i], i % k);
            if (prev != null) assertEquals(prev, i % k, "seed " + seed + ": cluster " + r.assignment()[i] + " mixes centres");
          }
          assertEquals(k, centreOf.size(), "seed " + seed);
          assertTrue(r.iterations() < 50, "seed " + seed + " did not converge: " + r.iterations());
          // unit centroids, concentrations averaging tau
          double[] c = r.centroids().castTo(DType.F64).toDoubleArray();
          for (int j = 0; j < k; j++) {
            double norm = 0;
            for (int q = 0; q < d; q++) norm += c[j * d + q] * c[j * d + q];
            assertEquals(1.0, norm, 1e-5);
          }
          double[] phi = r.concentrations().castTo(DType.F64).toDoubleArray();
          double mean = 0;
          for (double v : phi) mean += v / k;
          assertEquals(0.5, mean, 1e-6);
        }
      }
      try (SphericalKMeans.Result a = SphericalKMeans.fit(z, 9, 20, 2, 0.5, 7);
           SphericalKMeans.Result b = SphericalKMeans.fit(z, 9, 20, 2, 0.5, 7)) {
        first = a.assignment();
        assertArrayEquals(first, b.assignment());
        // more clusters than centres: every cluster still has rows (empty ones are re-seeded)
        int[] size = new int[9];
        for (long v : first) size[(int) v]++;
        for (int j = 0; j < 9; j++) assertTrue(size[j] > 0, "cluster " + j + " is empty");
      }
    }
  }

  @Test
  void moreClustersThanRowsGivesOneRowEach() {
    try (Scope s = Scope.open();
         SphericalKMeans.Result r =
             SphericalKMeans.fit(Tensor.of(planted(5, 4, 5, 0.0, 1), 5, 4).castTo(DType.F32), 300, 10, 1, 0.3, 1)) {
      assertEquals(5, r.centroids().size(0));
      long[] a = r.assignment().clone();
      java.util.Arrays.sort(a);
      assertArrayEquals(new long[] {0, 1, 2, 3, 4}, a);
    }
    // a collapsed embedding (every row the same): k clusters all the same, no failure
    double[] same = new double[40 * 4];
    for (int i = 0; i < 40; i++) same[i * 4 + 1] = 1;
    try (Scope s = Scope.open();
         SphericalKMeans.Result r = SphericalKMeans.fit(Tensor.of(same, 40, 4).castTo(DType.F32), 3, 10, 2, 0.3, 1)) {
      assertEquals(3, r.centroids().size(0));
      for (double phi : r.concentrations().castTo(DType.F64).toDoubleArray()) assertEquals(0.3, phi, 1e-6);
    }
    assertThrows(IllegalArgumentException.class, () -> {
      try (Scope s = Scope.open()) {
        SphericalKMeans.fit(Tensor.of(planted(5, 4, 5, 0.0, 1), 5, 4), 1, 10, 1, 0.3, 1);
      }
    });
  }

  @Test
  void concentrationsFollowPcl() {
    // two clusters of 4 rows: inner products 1 (distance 0) and 0.5 (distance 1); singletons take the max
    long[] assign = {0, 0, 0, 0, 1, 1, 1, 1, 2};
    double[] best = {1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.9};
    double[] phi = SphericalKMeans.concentrations(best, assign, 3, 1.0);
    // raw: 0, 1/log(14), and the singleton 1/log(14); clipped to the 10th-90th percentiles, mean scaled to 1
    double hi = 1 / Math.log(14), lo = SphericalKMeans.percentile(new double[] {0, hi, hi}, 10);
    double[] raw = {lo, hi, hi};
    double mean = (raw[0] + raw[1] + raw[2]) / 3;
    for (int j = 0; j < 3; j++) assertEquals(raw[j] / mean, phi[j], 1e-12);
    assertEquals(0.2 * hi, lo, 1e-12);
  }
}
