package org.metakernels.recipes;

import java.util.Random;
import org.metakernels.autograd.Autograd;
import org.metakernels.meta.InnerStep;
import org.metakernels.meta.Unroll;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Weights;
import org.metakernels.optim.SGD;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Learning to reweight examples (Ren, Zeng, Yang and Urtasun 2018, algorithm 1) on a synthetic
 * two-class problem with noisy labels. Every training step: per-example weights ε = 0 (a meta-
 * parameter), K inner SGD steps on Σ ε_i ℓ_i from the current weights, the loss on a small clean
 * validation set after them, its meta-gradient in ε by {@link Unroll}; then w_i = max(−∂L_val/∂ε_i,
 * 0) normalised to sum 1, and one SGD step (momentum 0.9) of the model on Σ w_i ℓ_i. Against
 * uniform weights 1/N with the same optimizer, and against training on the clean examples only
 * (an oracle that knows which labels were flipped).
 *
 * <p>Data: two Gaussian classes in 2-D (means (∓1.5, 0), unit covariance, Bayes accuracy 93 %),
 * N training points, half of each class; 40 % of the training labels are flipped, asymmetrically
 * (60 % of class 0, 20 % of class 1), so that most training points in class 0's region carry
 * label 1 and uniform training learns a shifted boundary. A clean validation set of {@code
 * validation} points; a clean test set of 4000.
 */
public final class Reweight {
  private Reweight() {}

  /**
   * Settings.
   *
   * @param trainPoints N
   * @param validation clean validation points (half of each class)
   * @param steps training steps (full batch)
   * @param lr the model's SGD step size
   * @param innerSteps K, inner steps of the look-ahead
   * @param innerLr its step size
   * @param seed the random seed
   */
  public record Config(
      int trainPoints, int validation, int steps, double lr, int innerSteps, double innerLr, long seed) {
    /**
     * 400 training points, 20 validation points, 600 steps, K = 1.
     *
     * @return the settings
     */
    public static Config defaults() {
      return new Config(400, 20, 600, 0.1, 1, 0.1, 1);
    }
  }

  /**
   * What a run measured.
   *
   * @param reweightedAccuracy clean test accuracy of the reweighted model
   * @param uniformAccuracy of the model trained with uniform weights
   * @param cleanOnlyAccuracy of the model trained on the clean examples only
   * @param meanWeightClean the learned weight of clean examples, averaged over all training steps
   * @param meanWeightFlipped of flipped examples
   * @param flippedZeroShare share of flipped examples whose averaged weight is below 1 % of the uniform 1/N
   * @param cleanZeroShare share of clean examples whose averaged weight is below 1 % of 1/N
   * @param meanWeightContradicted the mean weight of flipped examples whose label the Bayes rule
   *     (class 1 where x₀ &gt; 0) contradicts: the harmful flips (the others, class-0 points beyond
   *     the boundary flipped to 1 and vice versa, carry the right label for their region)
   * @param weights each training example's averaged weight
   * @param flipped which examples were flipped
   * @param firstCoordinate each training example's x₀ (the axis that separates the classes)
   * @param flippedShare the share of flipped labels
   * @param seconds wall time
   */
  public record Result(double reweightedAccuracy, double uniformAccuracy, double cleanOnlyAccuracy,
      double meanWeightClean, double meanWeightFlipped, double flippedZeroShare, double cleanZeroShare,
      double meanWeightContradicted, double[] weights, boolean[] flipped, double[] firstCoordinate, double flippedShare,
      double seconds) {}

  /** Points and labels. */
  record Data(Tensor x, Tensor y, long[] labels, boolean[] flipped) {}

  static Data sample(Random r, int n, boolean noisy) {
    double[] x = new double[2 * n];
    long[] label = new long[n];
    boolean[] flipped = new boolean[n];
    int half = n / 2;
    for (int i = 0; i < n; i++) {
      int c = i < half ? 0 : 1;
      x[2 * i] = (c == 0 ? -1.5 : 1.5) + r.nextGaussian();
      x[2 * i + 1] = r.nextGaussian();
      label[i] = c;
    }
    if (noisy) { // exactly 60 % of class 0 and 20 % of class 1: 40 % in all
      int f0 = (int) Math.round(0.6 * half), f1 = (int) Math.round(0.2 * (n - half));
      int[] order0 = shuffled(r, 0, half), order1 = shuffled(r, half, n);
      for (int i = 0; i < f0; i++) flipped[order0[i]] = true;
      for (int i = 0; i < f1; i++) flipped[order1[i]] = true;
      for (int i = 0; i < n; i++)
        if (flipped[i]) label[i] = 1 - label[i];
    }
    return new Data(Tensor.of(x, n, 2), Tensor.ofIndices(label, n), label, flipped);
  }

  static int[] shuffled(Random r, int from, int to) {
    int[] a = new int[to - from];
    for (int i = 0; i < a.length; i++) a[i] = from + i;
    for (int i = a.length - 1; i > 0; i--) {
      int j = r.nextInt(i + 1), t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** Per-example cross-entropy, [N, 1]. */
  static Tensor losses(MLP net, Weights w, Tensor x, Tensor y) {
    return net.forward(x, w).logSoftmax(1).gather(1, y.unsqueeze(1)).neg();
  }

  static double accuracy(MLP net, Data d) {
    try (Scope s = Scope.open(); var ng = Autograd.noGrad()) {
      double[] logits = net.forward(d.x()).toDoubleArray();
      int right = 0;
      for (int i = 0; i < d.labels().length; i++) {
        long pred = logits[2 * i + 1] > logits[2 * i] ? 1 : 0;
        if (pred == d.labels()[i]) right++;
      }
      return (double) right / d.labels().length;
    }
  }

  /**
   * Trains one model; weights (when not null) receives the averaged learned weights. mode: reweight, uniform, clean.
   */
  static void train(
      MLP net, Data train, Data val, Config c, String mode, double[] weights, MamlSine.Progress progress) {
    int n = train.labels().length;
    double[] mask = new double[n];
    int kept = 0;
    for (int i = 0; i < n; i++) {
      mask[i] = mode.equals("clean") && train.flipped()[i] ? 0 : 1;
      kept += (int) mask[i];
    }
    for (int i = 0; i < n; i++) mask[i] /= kept;
    Tensor uniform = Tensor.of(mask, n, 1);
    Scope.transfer(uniform.storage(), null);
    int averaged = 0;
    try (SGD opt = new SGD(net.parameters(), c.lr(), 0.9, 0.0)) {
      for (int step = 0; step < c.steps(); step++) {
        try (Scope s = Scope.open()) {
          Tensor w = uniform;
          if (mode.equals("reweight")) {
            Tensor eps = Tensor.zeros(new long[] {n, 1}, DType.F64, Device.CPU).requiresGrad(true);
            Unroll.Result r =
                Unroll.builder()
                    .initialWeights(net.namedParameters())
                    .metaParameters(java.util.Map.of("eps", eps))
                    .innerLoss((fw, k, m) -> losses(net, Weights.of(fw), train.x(), train.y()).mul(m.get("eps")).sum())
                    .outerLoss((fw, m) -> losses(net, Weights.of(fw), val.x(), val.y()).mean())
                    .sgd(InnerStep.Sgd.lr(c.innerLr()))
                    .steps(c.innerSteps())
                    .run();
            double[] g = r.metaGradients().get("eps").toDoubleArray();
            double sum = 0;
            for (int i = 0; i < n; i++) {
              g[i] = Math.max(-g[i], 0);
              sum += g[i];
            }
            for (int i = 0; i < n; i++) g[i] = sum > 0 ? g[i] / sum : 0;
            if (weights != null) {
              for (int i = 0; i < n; i++) weights[i] += g[i];
              averaged++;
            }
            w = Tensor.of(g, n, 1);
          }
          opt.zeroGrad();
          try (var on = Autograd.enableGrad()) {
            losses(net, Weights.none(), train.x(), train.y()).mul(w).sum().backward();
          }
          opt.step();
        }
        if (progress != null) progress.step(mode, step + 1, c.steps());
      }
    } finally {
      uniform.close();
    }
    if (weights != null && averaged > 0)
      for (int i = 0; i < n; i++) weights[i] /= averaged;
  }

  /**
   * Runs the three trainings and measures them.
   *
   * @param c the settings
   * @param progress progress callback, or null
   * @return the measurements
   */
  public static Result run(Config c, MamlSine.Progress progress) {
    long t0 = System.nanoTime();
    Random r = new Random(c.seed());
    try (Scope s = Scope.open()) {
      Data train = sample(r, c.trainPoints(), true);
      Data val = sample(r, c.validation(), false);
      Data test = sample(r, 4000, false);
      double[] weights = new double[c.trainPoints()];
      double[] acc = new double[3];
      String[] modes = {"reweight", "uniform", "clean"};
      for (int m = 0; m < 3; m++) {
        try (MLP net = new MLP(new long[] {2, 16, 2}, Activation.TANH, DType.F64, Device.CPU, c.seed() + 11)) {
          train(net, train, val, c, modes[m], m == 0 ? weights : null, progress);
          acc[m] = accuracy(net, test);
        }
      }
      double clean = 0, flip = 0, contradicted = 0;
      int nc = 0, nf = 0, zero = 0, cleanZero = 0, nContradicted = 0;
      double[] xs = train.x().toDoubleArray();
      for (int i = 0; i < weights.length; i++) {
        boolean tiny = weights[i] < 0.01 / weights.length;
        if (train.flipped()[i]) {
          flip += weights[i];
          nf++;
          if (tiny) zero++;
          if (train.labels()[i] != (xs[2 * i] > 0 ? 1 : 0)) {
            contradicted += weights[i];
            nContradicted++;
          }
        } else {
          clean += weights[i];
          nc++;
          if (tiny) cleanZero++;
        }
      }
      return new Result(acc[0], acc[1], acc[2], clean / nc, flip / nf, (double) zero / nf, (double) cleanZero / nc,
          contradicted / Math.max(1, nContradicted), weights, train.flipped(), firstOf(xs),
          (double) nf / weights.length, (System.nanoTime() - t0) / 1e9);
    }
  }

  static double[] firstOf(double[] xy) {
    double[] r = new double[xy.length / 2];
    for (int i = 0; i < r.length; i++) r[i] = xy[2 * i];
    return r;
  }
}
