package org.metakernels.recipes;

import java.util.ArrayList;
import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.LinearSelfAttention;
import org.metakernels.recipes.InContextLearning.Config;
import org.metakernels.recipes.InContextLearning.Stack;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The measurements of the {@code demo} command: a trained one-layer LSA against one step of
 * gradient descent with the best step size, and K-layer LSA stacks against K steps of GD and
 * GD++. Every number is measured on held-out tasks.
 */
public final class InContextDemo {
  private InContextDemo() {}

  /** One row of the K-layer comparison. */
  public record Depth(int layers, double lsaLoss, double gdLoss, double gdEta, double gdppLoss,
      double lsaVsGdppCosine, double lsaVsGdCosine) {}

  /** Sees each finished training step: {@code step("LSA, 1 layer", 200, 2000)}. */
  @FunctionalInterface
  public interface Progress {
    /**
     * Called after each training step of a phase.
     *
     * @param phase the phase's name, e.g. "LSA, 1 layer"
     * @param done the steps done in this phase, 1 to {@code total}
     * @param total the phase's steps
     */
    void step(String phase, int done, int total);
  }

  /** Everything the demo reports. */
  public record Result(double gdEta, double lsaLoss, double gdLoss, double predCosine, double sensitivityCosine,
      double predL2, double identityCosine, double yPickShare, double[] lossCurve, double[] gdSample,
      double[] lsaSample, List<Depth> depths, int steps, double seconds, double zeroLoss) {
    public double relativeDifference() {
      return (lsaLoss - gdLoss) / gdLoss;
    }
  }

  /**
   * Runs the whole comparison.
   *
   * @param depths extra stack depths to compare with K-step GD and GD++ (e.g. {2, 3}; empty to skip)
   * @param deepSteps Adam steps for the deeper stacks (they converge more slowly than one layer)
   * @param progress sees each training step (null for none)
   */
  public static Result run(Config c, int[] depths, int deepSteps, Progress progress) {
    long t0 = System.nanoTime();
    Progress p = progress == null ? (a, b, n) -> { } : progress;
    try (Scope scope = Scope.open()) {
      // held-out tasks, F64 for the GD baselines and cast for the model
      LinearRegressionTasks held = LinearRegressionTasks.sample(c.evalTasks(), c.context(), c.dim(), DType.F64,
          c.device(), c.seed() * 7_777_777L + 12_345L);
      LinearRegressionTasks heldModel = new LinearRegressionTasks(held.x().to(c.dtype()), held.y().to(c.dtype()));
      double zeroLoss = InContextLearning.loss(Tensor.zerosLike(held.queryY()), held.queryY());

      // one step of GD: the best step size on held-out tasks
      double eta;
      try (var ng = Autograd.noGrad()) {
        eta = InContextLearning.scan(e -> InContextLearning.loss(GradientDescentLearner.oneStep(held, e), held.queryY()));
      }
      Tensor gdPred = GradientDescentLearner.oneStep(held, eta);
      double gdLoss = InContextLearning.loss(gdPred, held.queryY());

      // one trained LSA layer
      int steps = c.steps();
      Stack one = InContextLearning.trainLsa(c, 1, steps, s -> p.step("LSA, 1 layer", s + 1, steps));
      try {
        Tensor xg = heldModel.x().detach().requiresGrad(true);
        Tensor lsaPred = one.predict(heldModel.tokens(xg));
        Tensor sens = Autograd.grad(lsaPred.sum(), List.of(xg), false).get(0).select(1, c.context());  // [B, d]
        Tensor lsaPred64 = lsaPred.detach().to(DType.F64);
        double lsaLoss = InContextLearning.loss(lsaPred64, held.queryY());
        Tensor gdSens = held.contextY().unsqueeze(1).matmul(held.contextX()).squeeze(1).mul(eta);  // η Σ y_i x_i
        double predCos = InContextLearning.cosine(lsaPred64, gdPred);
        double sensCos = InContextLearning.rowCosine(sens, gdSens);
        double l2 = Math.sqrt(lsaPred64.sub(gdPred).square().mean().item());
        double[] construction = construction(one.layers.get(0), c.dim());
        int sample = (int) Math.min(500, c.evalTasks());
        double[] gdSample = gdPred.narrow(0, 0, sample).toDoubleArray();
        double[] lsaSample = lsaPred64.narrow(0, 0, sample).toDoubleArray();

        List<Depth> rows = new ArrayList<>();
        for (int k : depths) rows.add(depth(c, k, deepSteps, held, heldModel, p));
        return new Result(eta, lsaLoss, gdLoss, predCos, sensCos, l2, construction[0], construction[1], one.lossCurve,
            gdSample, lsaSample, rows, steps, (System.nanoTime() - t0) / 1e9, zeroLoss);
      } finally {
        one.close();
      }
    }
  }

  private static Depth depth(Config c, int k, int steps, LinearRegressionTasks held, LinearRegressionTasks heldModel,
      Progress p) {
    try (Scope s = Scope.open()) {
      double eta;
      try (var ng = Autograd.noGrad()) {
        eta = InContextLearning.scan(e -> {
          try (Scope t = Scope.open()) {
            Tensor[] etas = fill(k, e, c);
            return InContextLearning.loss(GradientDescentLearner.predict(held, etas, null), held.queryY());
          }
        });
      }
      Tensor gd = GradientDescentLearner.predict(held, fill(k, eta, c), null);
      double gdLoss = InContextLearning.loss(gd, held.queryY());
      int gdppSteps = Math.max(200, steps / 4);
      double[] rates = InContextLearning.trainGdPlusPlus(c, k, gdppSteps, eta, true,
          st -> p.step("GD++, " + k + " steps", st + 1, gdppSteps));
      Tensor[] etas = new Tensor[k], gammas = new Tensor[k];
      for (int i = 0; i < k; i++) {
        etas[i] = Tensor.scalar(rates[i], DType.F64, c.device());
        gammas[i] = Tensor.scalar(rates[k + i], DType.F64, c.device());
      }
      Tensor gdpp = GradientDescentLearner.predict(held, etas, gammas);
      double gdppLoss = InContextLearning.loss(gdpp, held.queryY());
      try (Stack stack = InContextLearning.trainLsa(c.withSeed(c.seed() + 31L * k), k, steps,
          st -> p.step("LSA, " + k + " layers", st + 1, steps))) {
        Tensor pred;
        try (var ng = Autograd.noGrad()) {
          pred = stack.predict(heldModel.tokens()).to(DType.F64);
        }
        return new Depth(k, InContextLearning.loss(pred, held.queryY()), gdLoss, eta, gdppLoss,
            InContextLearning.cosine(pred, gdpp), InContextLearning.cosine(pred, gd));
      }
    }
  }

  private static Tensor[] fill(int k, double v, Config c) {
    Tensor[] t = new Tensor[k];
    for (int i = 0; i < k; i++) t[i] = Tensor.scalar(v, DType.F64, c.device());
    return t;
  }

  /**
   * How close trained weights are to the paper's construction, which makes one LSA layer one GD
   * step: M = W_Kᵀ W_Q restricted to the x block ∝ I, and P·W_V reading the y slot into the y
   * slot. Returns {cosine of −(PW)_yy · M_xx with I, |(PW)_yy| / ‖(PW)_y,:‖}.
   */
  public static double[] construction(LinearSelfAttention layer, int d) {
    try (Scope s = Scope.open(); var ng = Autograd.noGrad()) {
      var ps = layer.namedParameters();
      Tensor m = ps.get("wk").mT().matmul(ps.get("wq")).to(DType.F64);   // [D, D]
      Tensor pw = ps.get("proj").matmul(ps.get("wv")).to(DType.F64);     // [D, D]
      double[] pwa = pw.toDoubleArray();
      int big = d + 1;
      double pyy = pwa[d * big + d];
      double rowNorm = 0;
      for (int j = 0; j < big; j++) rowNorm += pwa[d * big + j] * pwa[d * big + j];
      Tensor mxx = m.narrow(0, 0, d).narrow(1, 0, d).mul(-pyy);
      double[] a = mxx.contiguous().toDoubleArray();
      double trace = 0, fro = 0;
      for (int i = 0; i < d; i++) trace += a[i * d + i];
      for (double v : a) fro += v * v;
      return new double[] {trace / (Math.sqrt(d) * Math.sqrt(fro)), Math.abs(pyy) / Math.sqrt(rowNorm)};
    }
  }
}
