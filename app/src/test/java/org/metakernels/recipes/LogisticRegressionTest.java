package org.metakernels.recipes;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The probe's logistic regression: its gradient, its optimum, its predictions. */
class LogisticRegressionTest {
  static double[] data(Random r, int n, int d, int[] y, int classes) {
    double[] x = new double[n * d];
    for (int i = 0; i < n; i++) {
      y[i] = i % classes;
      for (int j = 0; j < d; j++) x[i * d + j] = r.nextGaussian() + (j % classes == y[i] ? 1.5 : 0);
    }
    return x;
  }

  @Test
  void gradientMatchesFiniteDifferences() {
    Random r = new Random(3);
    int n = 20, d = 4, c = 3, p = d * c + c;
    int[] y = new int[n];
    double[] x = data(r, n, d, y, c), theta = new double[p], g = new double[p], scratch = new double[p];
    for (int q = 0; q < p; q++) theta[q] = r.nextGaussian() * 0.5;
    LogisticRegression.objective(theta, x, n, d, y, c, 0.3, g);
    for (int q = 0; q < p; q++) {
      double h = 1e-6, keep = theta[q];
      theta[q] = keep + h;
      double up = LogisticRegression.objective(theta, x, n, d, y, c, 0.3, scratch);
      theta[q] = keep - h;
      double down = LogisticRegression.objective(theta, x, n, d, y, c, 0.3, scratch);
      theta[q] = keep;
      assertEquals((up - down) / (2 * h), g[q], 1e-7, "parameter " + q);
    }
  }

  @Test
  void fitReachesTheOptimumAndSeparatesBlobs() {
    Random r = new Random(5);
    int n = 60, d = 6, c = 3;
    int[] y = new int[n];
    double[] x = data(r, n, d, y, c);
    double[] theta = LogisticRegression.fit(x, n, d, y, c, 1e-2, 500);
    double[] g = new double[theta.length];
    LogisticRegression.objective(theta, x, n, d, y, c, 1e-2, g);
    double norm = 0;
    for (double v : g) norm += v * v;
    assertTrue(Math.sqrt(norm) < 1e-5, "gradient norm at the fit " + Math.sqrt(norm));
    long[] pred = LogisticRegression.predict(theta, x, n, d, c);
    int right = 0;
    for (int i = 0; i < n; i++)
      if (pred[i] == y[i]) right++;
    assertTrue(right >= 0.9 * n, right + " of " + n);
    // deterministic: the same fit twice
    assertArrayEquals(theta, LogisticRegression.fit(x, n, d, y, c, 1e-2, 500));
  }
}
