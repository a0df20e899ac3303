package org.metakernels.recipes;

/**
 * Multinomial logistic regression in double precision, fitted to convergence by L-BFGS: the
 * linear probe that evaluates frozen embeddings. The objective is mean cross-entropy + λ/2 ‖W‖²
 * (the bias is not penalised); it is strictly convex for λ > 0, so the fit does not depend on a
 * seed or a step size. Parameters are laid out as θ = [W (d × C, row-major), b (C)].
 */
final class LogisticRegression {
  private LogisticRegression() {}

  private static final int MEMORY = 10;

  /**
   * Fits the model.
   *
   * @param x the inputs, row-major [n, d]
   * @param n rows
   * @param d features
   * @param y the class of each row, in [0, classes)
   * @param classes C
   * @param lambda the L2 penalty on W
   * @param maxIter the most L-BFGS iterations
   * @return θ = [W (d × C), b (C)]
   */
  static double[] fit(double[] x, int n, int d, int[] y, int classes, double lambda, int maxIter) {
    int p = d * classes + classes;
    double[] theta = new double[p], g = new double[p];
    double f = objective(theta, x, n, d, y, classes, lambda, g);
    double[][] s = new double[MEMORY][], t = new double[MEMORY][];
    double[] rho = new double[MEMORY];
    int stored = 0, head = 0;
    double[] dir = new double[p], alpha = new double[MEMORY];
    double[] gNew = new double[p], thetaNew = new double[p];
    for (int it = 0; it < maxIter; it++) {
      double gnorm = Math.sqrt(dot(g, g));
      if (gnorm < 1e-7) break;
      // two-loop recursion: dir = -H g
      for (int i = 0; i < p; i++) dir[i] = -g[i];
      for (int k = 0; k < stored; k++) {
        int q = Math.floorMod(head - 1 - k, MEMORY);
        alpha[q] = rho[q] * dot(s[q], dir);
        axpy(-alpha[q], t[q], dir);
      }
      if (stored > 0) {
        int q = Math.floorMod(head - 1, MEMORY);
        double scale = dot(s[q], t[q]) / dot(t[q], t[q]);
        for (int i = 0; i < p; i++) dir[i] *= scale;
      } else {
        for (int i = 0; i < p; i++) dir[i] /= gnorm;
      }
      for (int k = stored - 1; k >= 0; k--) {
        int q = Math.floorMod(head - 1 - k, MEMORY);
        double beta = rho[q] * dot(t[q], dir);
        axpy(alpha[q] - beta, s[q], dir);
      }
      double slope = dot(g, dir);
      if (slope >= 0) { // not a descent direction: restart from the gradient
        stored = 0;
        for (int i = 0; i < p; i++) dir[i] = -g[i] / gnorm;
        slope = dot(g, dir);
      }
      // backtracking line search (Armijo)
      double step = 1, fNew = Double.NaN;
      boolean accepted = false;
      for (int ls = 0; ls < 40; ls++) {
        for (int i = 0; i < p; i++) thetaNew[i] = theta[i] + step * dir[i];
        fNew = objective(thetaNew, x, n, d, y, classes, lambda, gNew);
        if (fNew <= f + 1e-4 * step * slope) {
          accepted = true;
          break;
        }
        step *= 0.5;
      }
      if (!accepted) break;
      double[] sk = new double[p], tk = new double[p];
      for (int i = 0; i < p; i++) {
        sk[i] = thetaNew[i] - theta[i];
        tk[i] = gNew[i] - g[i];
      }
      double st = dot(sk, tk);
      if (st > 1e-12) {
        s[head] = sk;
        t[head] = tk;
        rho[head] = 1 / st;
        head = (head + 1) % MEMORY;
        stored = Math.min(stored + 1, MEMORY);
      }
      double fOld = f;
      System.arraycopy(thetaNew, 0, theta, 0, p);
      System.arraycopy(gNew, 0, g, 0, p);
      f = fNew;
      if (fOld - f <= 1e-10 * Math.max(1, Math.abs(f))) break;
    }
    return theta;
  }

  /**
   * The most probable class of each row.
   *
   * @param theta the fitted parameters
   * @param x the inputs, row-major [n, d]
   * @param n rows
   * @param d features
   * @param classes C
   * @return the argmax of the logits per row (ties to the lower class)
   */
  static long[] predict(double[] theta, double[] x, int n, int d, int classes) {
    long[] out = new long[n];
    double[] z = new double[classes];
    for (int i = 0; i < n; i++) {
      logits(theta, x, i, d, classes, z);
      int best = 0;
      for (int k = 1; k < classes; k++)
        if (z[k] > z[best]) best = k;
      out[i] = best;
    }
    return out;
  }

  /** Mean cross-entropy + λ/2 ‖W‖², its gradient written into g. */
  static double objective(double[] theta, double[] x, int n, int d, int[] y, int classes, double lambda, double[] g) {
    java.util.Arrays.fill(g, 0);
    int wEnd = d * classes;
    double loss = 0;
    double[] z = new double[classes];
    for (int i = 0; i < n; i++) {
      logits(theta, x, i, d, classes, z);
      double m = Double.NEGATIVE_INFINITY;
      for (double v : z) m = Math.max(m, v);
      double sum = 0;
      for (int k = 0; k < classes; k++) sum += Math.exp(z[k] - m);
      double lse = m + Math.log(sum);
      loss += lse - z[y[i]];
      for (int k = 0; k < classes; k++) {
        double r = (Math.exp(z[k] - lse) - (k == y[i] ? 1 : 0)) / n;
        if (r == 0) continue;
        for (int j = 0; j < d; j++) g[j * classes + k] += r * x[i * d + j];
        g[wEnd + k] += r;
      }
    }
    loss /= n;
    double reg = 0;
    for (int q = 0; q < wEnd; q++) {
      reg += theta[q] * theta[q];
      g[q] += lambda * theta[q];
    }
    return loss + 0.5 * lambda * reg;
  }

  private static void logits(double[] theta, double[] x, int i, int d, int classes, double[] z) {
    int wEnd = d * classes;
    for (int k = 0; k < classes; k++) z[k] = theta[wEnd + k];
    for (int j = 0; j < d; j++) {
      double v = x[i * d + j];
      if (v == 0) continue;
      for (int k = 0; k < classes; k++) z[k] += v * theta[j * classes + k];
    }
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) s += a[i] * b[i];
    return s;
  }

  private static void axpy(double a, double[] x, double[] y) {
    for (int i = 0; i < y.length; i++) y[i] += a * x[i];
  }
}
