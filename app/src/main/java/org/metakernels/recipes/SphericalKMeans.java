package org.metakernels.recipes;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Spherical k-means of rows at unit norm, deterministic for a seed, as MEOW clusters its fine
 * embeddings (the authors run faiss' k-means with an inner-product index and five restarts; here
 * k-means++ seedings, restarts as asked): assign each row to the
 * centroid of largest inner product, move each centroid to the mean of its rows and back onto the
 * unit sphere, until no assignment changes or the iterations run out. The n × k inner products run
 * as one matmul in the library; the means in Java. A cluster left empty takes the row farthest from
 * its own centroid (the lowest inner product; ties to the lower row), so k clusters stay populated.
 *
 * <p>Each cluster's concentration φ (PCL, Li et al. 2021, as MEOW's prototype loss uses it): the mean
 * distance of its rows to the centroid over log(size + 10); a cluster of one row takes the largest
 * φ of the others; then φ is clipped to its 10th–90th percentiles and scaled so that its mean is τ,
 * and floored at τ/10.
 */
final class SphericalKMeans {
  private SphericalKMeans() {}

  /**
   * One clustering. Owns its two tensors: close it.
   *
   * @param assignment the cluster of each row
   * @param centroids [k, d] unit rows, the rows' dtype
   * @param concentrations [1, k] φ per cluster, the rows' dtype
   * @param iterations the assignment passes run
   */
  record Result(long[] assignment, Tensor centroids, Tensor concentrations, int iterations) implements AutoCloseable {
    @Override
    public void close() {
      centroids.close();
      concentrations.close();
    }
  }

  /**
   * Clusters the rows of z.
   *
   * @param z [n, d] rows at unit norm, F32 or F64, CPU (no gradient is recorded through it)
   * @param k the number of clusters, 2 ≤ k; min(k, n) are formed
   * @param maxIterations the most assignment passes
   * @param tau the mean of the concentrations
   * @param restarts runs from independent seedings; the one of largest Σ_i max_c z_i·c is kept
   * @param seed seeds the k-means++ seedings
   * @return the clustering
   */
  static Result fit(Tensor z, int k, int maxIterations, int restarts, double tau, long seed) {
    if (k < 2) throw new IllegalArgumentException("SphericalKMeans: k must be >= 2, got " + k);
    if (restarts < 1) throw new IllegalArgumentException("SphericalKMeans: restarts must be >= 1, got " + restarts);
    double[] x = z.castTo(DType.F64).toDoubleArray();
    SplittableRandom rng = new SplittableRandom(seed);
    Run best = null;
    for (int r = 0; r < restarts; r++) {
      Run run = once(z, x, k, maxIterations, rng.split());
      if (best == null || run.objective > best.objective) best = run;
    }
    int kk = best.centroids.length / (int) z.size(1);
    double[] phi = concentrations(best.best, best.assign, kk, tau);
    Tensor centroids = Tensor.of(best.centroids, kk, z.size(1)).castTo(z.dtype());
    Tensor conc = Tensor.of(phi, 1, kk).castTo(z.dtype());
    Scope.transfer(centroids.storage(), null);
    Scope.transfer(conc.storage(), null);
    return new Result(best.assign, centroids, conc, best.iterations);
  }

  private record Run(long[] assign, double[] best, double[] centroids, int iterations, double objective) {}

  private static Run once(Tensor z, double[] x, int k, int maxIterations, SplittableRandom rng) {
    int n = (int) z.size(0), d = (int) z.size(1);
    k = Math.min(k, n);
    double[] c = plusPlus(x, n, d, k, rng);
    long[] assign = new long[n];
    Arrays.fill(assign, -1);
    double[] best = new double[n];
    int it = 0;
    while (it < maxIterations) {
      it++;
      boolean changed = assignTo(z, c, k, d, assign, best);
      if (!changed && it > 1) break;
      // the means, back onto the sphere; an empty cluster takes the worst-fitting row
      double[] sum = new double[k * d];
      int[] size = new int[k];
      for (int i = 0; i < n; i++) {
        int a = (int) assign[i];
        size[a]++;
        for (int q = 0; q < d; q++) sum[a * d + q] += x[i * d + q];
      }
      boolean[] taken = new boolean[n];
      for (int j = 0; j < k; j++) {
        if (size[j] == 0) {
          int worst = -1;
          for (int i = 0; i < n; i++)
            if (!taken[i] && (worst < 0 || best[i] < best[worst])) worst = i;
          taken[worst] = true;
          System.arraycopy(x, worst * d, sum, j * d, d);
        }
        double norm = 0;
        for (int q = 0; q < d; q++) norm += sum[j * d + q] * sum[j * d + q];
        norm = Math.sqrt(norm);
        for (int q = 0; q < d; q++) c[j * d + q] = norm > 0 ? sum[j * d + q] / norm : 0;
      }
    }
    assignTo(z, c, k, d, assign, best);
    double objective = 0;
    for (double v : best) objective += v;
    return new Run(assign, best, c, it, objective);
  }

  /**
   * k-means++ seeding (Arthur and Vassilvitskii 2007): the first centroid a uniform row, each next one a
   * row drawn with probability proportional to its squared distance to the nearest centroid so far
   * (on the sphere 2 − 2 max z·c); a row already taken has distance 0 and is not drawn again.
   */
  private static double[] plusPlus(double[] x, int n, int d, int k, SplittableRandom rng) {
    double[] c = new double[k * d];
    double[] dist = new double[n];
    Arrays.fill(dist, Double.POSITIVE_INFINITY);
    int pick = rng.nextInt(n);
    for (int j = 0; j < k; j++) {
      System.arraycopy(x, pick * d, c, j * d, d);
      for (int i = 0; i < n; i++) {
        double dot = 0;
        for (int q = 0; q < d; q++) dot += x[i * d + q] * c[j * d + q];
        dist[i] = Math.min(dist[i], Math.max(0, 2 - 2 * dot));
      }
      dist[pick] = 0;
      if (j + 1 == k) break;
      double total = 0;
      for (double v : dist) total += v;
      if (!(total > 0)) { // every row sits on a centroid: the next untaken row in order
        pick = (pick + 1) % n;
        continue;
      }
      double u = rng.nextDouble() * total, acc = 0;
      pick = -1;
      for (int i = 0; i < n; i++) {
        acc += dist[i];
        if (dist[i] > 0 && acc >= u) {
          pick = i;
          break;
        }
      }
      if (pick < 0) // rounding past the end: the last row with mass
        for (int i = n - 1; i >= 0 && pick < 0; i--)
          if (dist[i] > 0) pick = i;
    }
    return c;
  }

  /** Assigns each row to its centroid of largest inner product; best[i] = that product. Returns whether any changed. */
  private static boolean assignTo(Tensor z, double[] c, int k, int d, long[] assign, double[] best) {
    boolean changed = false;
    try (Scope s = Scope.open()) {
      Tensor scores = z.matmul(Tensor.of(c, k, d).castTo(z.dtype()).mT());
      var top = scores.max(1, false);
      long[] a = top.indices().toLongArray();
      double[] v = top.values().castTo(DType.F64).toDoubleArray();
      for (int i = 0; i < a.length; i++) {
        changed |= a[i] != assign[i];
        assign[i] = a[i];
        best[i] = v[i];
      }
    }
    return changed;
  }

  /** PCL's φ per cluster from each row's inner product with its (unit) centroid: ‖z − c‖ = √(2 − 2 z·c). */
  static double[] concentrations(double[] best, long[] assign, int k, double tau) {
    double[] dist = new double[k];
    int[] size = new int[k];
    for (int i = 0; i < assign.length; i++) {
      int a = (int) assign[i];
      size[a]++;
      dist[a] += Math.sqrt(Math.max(0, 2 - 2 * best[i]));
    }
    double[] phi = new double[k];
    double max = 0;
    for (int j = 0; j < k; j++)
      if (size[j] > 1) {
        phi[j] = dist[j] / size[j] / Math.log(size[j] + 10);
        max = Math.max(max, phi[j]);
      }
    for (int j = 0; j < k; j++)
      if (size[j] <= 1) phi[j] = max;
    double[] sorted = phi.clone();
    Arrays.sort(sorted);
    double lo = percentile(sorted, 10), hi = percentile(sorted, 90);
    double mean = 0;
    for (int j = 0; j < k; j++) {
      phi[j] = Math.min(hi, Math.max(lo, phi[j]));
      mean += phi[j] / k;
    }
    // at least τ/10: a cluster of identical rows (distance 0) must not give infinite logits
    for (int j = 0; j < k; j++) phi[j] = mean > 0 ? Math.max(tau / 10, tau * phi[j] / mean) : tau;
    return phi;
  }

  /** The p-th percentile of sorted values, linear between neighbours (NumPy's default). */
  static double percentile(double[] sorted, double p) {
    double pos = (sorted.length - 1) * p / 100;
    int lo = (int) Math.floor(pos), hi = (int) Math.ceil(pos);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  }
}
