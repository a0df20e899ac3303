package org.metakernels.recipes;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.metakernels.autograd.Autograd;
import org.metakernels.meta.EvolutionStrategies;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * A learned, temporally-aware training objective meta-trained by evolution strategies (after
 * "Discovering Temporally-Aware Reinforcement Learning Algorithms", Jackson et al. 2024, here for
 * supervised classification): a small MLP ℓ_φ over per-sample statistics of a classifier's logits z
 * (the true class's logit z_y, the log-sum-exp, the entropy of softmax(z)) and the training
 * progress t/T replaces the cross-entropy in the classifier's inner loop of T SGD steps:
 *
 * <pre>
 *   ℓ_φ(z, y, t) = (lse(z) − z_y) + MLP_φ(z_y, lse(z), H(z), t/T)      (MLP_φ = 0 at the start: plain CE)
 *   meta-objective F(φ) = − validation cross-entropy after T inner steps from a fresh init
 * </pre>
 *
 * φ is trained by antithetic ES ({@link EvolutionStrategies}: no gradient through the unrolled
 * loop). The whole population is one batched inner loop: every member's classifier weights and
 * objective weights carry a leading member axis and the per-member products are batched matmuls,
 * so a generation costs T batched steps, not P·T small ones. The members of a generation share one
 * classifier init and one minibatch order (common random numbers); the generation's centre φ and
 * the plain cross-entropy φ₀ ride along as two more members, which gives the meta-training curve
 * and its baseline at no extra pass. At the end, φ* and φ₀ train {@code evalRuns} fresh inits each
 * (paired: the same init and data order for both) and their validation losses are compared.
 *
 * <p>Data: a fixed synthetic classification set, x ~ N(0, I) in {@code dim} dims, labelled by the
 * argmax of a random teacher MLP (dim → 32 → classes, tanh), split into train and validation.
 */
public final class EsObjective {
  private EsObjective() {}

  /** Features of the learned objective per sample: z_y, lse(z), H(softmax z), t/T. */
  static final int FEATURES = 4;

  /**
   * Settings. {@code Config.defaults()} is what {@code recipe es-objective} runs.
   *
   * @param dim input features of the classification task
   * @param classes classes
   * @param hidden the classifier's hidden width (dim → hidden → classes, tanh)
   * @param trainSize training samples
   * @param valSize validation samples
   * @param batch minibatch per inner step
   * @param innerSteps T, SGD steps of the inner loop
   * @param innerLr the inner SGD step size
   * @param lossHidden hidden width of the learned objective's MLP
   * @param population ES members per generation (even)
   * @param generations ES generations
   * @param sigma ES noise scale
   * @param metaLr ES step size
   * @param evalRuns fresh classifier inits in the final comparison
   * @param seed the run's seed
   * @param device CPU or CUDA
   * @param dtype F32 or F64
   */
  public record Config(int dim, int classes, int hidden, int trainSize, int valSize, int batch, int innerSteps,
      double innerLr, int lossHidden, int population, int generations, double sigma, double metaLr, int evalRuns,
      long seed, Device device, DType dtype) {
    /**
     * The defaults of the command line.
     *
     * @return the defaults
     */
    public static Config defaults() {
      return new Config(10, 4, 32, 2048, 1024, 128, 30, 0.1, 16, 24, 100, 0.1, 0.05, 32, 1L, Device.CPU, DType.F32);
    }

    /**
     * These settings with another generation count.
     *
     * @param g generations
     * @return a copy
     */
    public Config withGenerations(int g) {
      return new Config(dim, classes, hidden, trainSize, valSize, batch, innerSteps, innerLr, lossHidden, population, g,
          sigma, metaLr, evalRuns, seed, device, dtype);
    }

    /**
     * These settings with another population.
     *
     * @param p members per generation (even)
     * @return a copy
     */
    public Config withPopulation(int p) {
      return new Config(dim, classes, hidden, trainSize, valSize, batch, innerSteps, innerLr, lossHidden, p,
          generations, sigma, metaLr, evalRuns, seed, device, dtype);
    }

    /**
     * These settings with another inner loop.
     *
     * @param steps T
     * @param lr the inner step size
     * @return a copy
     */
    public Config withInner(int steps, double lr) {
      return new Config(dim, classes, hidden, trainSize, valSize, batch, steps, lr, lossHidden, population, generations,
          sigma, metaLr, evalRuns, seed, device, dtype);
    }

    /**
     * These settings with other ES hyperparameters.
     *
     * @param s sigma
     * @param lr the ES step size
     * @return a copy
     */
    public Config withEs(double s, double lr) {
      return new Config(dim, classes, hidden, trainSize, valSize, batch, innerSteps, innerLr, lossHidden, population,
          generations, s, lr, evalRuns, seed, device, dtype);
    }

    /**
     * These settings with another final comparison size and seed.
     *
     * @param runs fresh inits compared
     * @param s the seed
     * @return a copy
     */
    public Config withEval(int runs, long s) {
      return new Config(dim, classes, hidden, trainSize, valSize, batch, innerSteps, innerLr, lossHidden, population,
          generations, sigma, metaLr, runs, s, device, dtype);
    }

    /**
     * These settings on another device.
     *
     * @param d the device
     * @return a copy
     */
    public Config withDevice(Device d) {
      return new Config(dim, classes, hidden, trainSize, valSize, batch, innerSteps, innerLr, lossHidden, population,
          generations, sigma, metaLr, evalRuns, seed, d, dtype);
    }

    /**
     * Parameters of the learned objective: [4, h], [h], [h, 1], [1].
     *
     * @return φ's size
     */
    public int objectiveParameters() {
      return FEATURES * lossHidden + lossHidden + lossHidden + 1;
    }
  }

  /**
   * What a run measured.
   *
   * @param centreLoss per generation: validation CE after T steps with the ES centre φ
   * @param baselineLoss per generation: the same with plain cross-entropy φ₀ (same init and data)
   * @param ceLoss final comparison: mean validation CE of plain cross-entropy over the fresh inits
   * @param learnedLoss the same with the learned objective φ*
   * @param improvement mean paired difference ceLoss − learnedLoss over the inits
   * @param improvementSe its standard error
   * @param wins inits on which φ* ends lower than φ₀
   * @param ceAccuracy mean validation accuracy with φ₀
   * @param learnedAccuracy mean validation accuracy with φ*
   * @param ceCurve mean validation CE after each inner step t = 0..T with φ₀ (final comparison)
   * @param learnedCurve the same with φ*
   * @param phi the learned φ
   * @param seconds wall time of the whole run
   * @param lrGrid the inner step sizes tried for the tuned cross-entropy baseline
   * @param lrGridLoss for each, the mean validation CE of plain cross-entropy on the first
   *     {@link #TUNING_TASKS} meta-training tasks (their inits and data orders)
   * @param tunedLr the grid's best: the tuned baseline's inner step size
   * @param tunedCeLoss final comparison: mean validation CE of cross-entropy at the tuned step size
   * @param tunedCeAccuracy its mean validation accuracy
   * @param tunedImprovement mean paired difference tunedCeLoss − learnedLoss over the inits
   * @param tunedImprovementSe its standard error
   * @param tunedWins inits on which φ* ends lower than tuned cross-entropy
   */
  public record Result(double[] centreLoss, double[] baselineLoss, double ceLoss, double learnedLoss,
      double improvement, double improvementSe, int wins, double ceAccuracy, double learnedAccuracy, double[] ceCurve,
      double[] learnedCurve, double[] phi, double seconds, double[] lrGrid, double[] lrGridLoss, double tunedLr,
      double tunedCeLoss, double tunedCeAccuracy, double tunedImprovement, double tunedImprovementSe, int tunedWins) {}

  /** The tuned baseline's grid: these multiples of the configured inner step size. */
  public static final double[] LR_FACTORS = {0.5, 1, 2, 4, 8, 16, 32, 64};

  /** Meta-training tasks (generations' inits and data orders) the tuned baseline's step is chosen on. */
  public static final int TUNING_TASKS = 8;

  /** c with another inner step size. */
  static Config withInnerLr(Config c, double lr) {
    return new Config(c.dim(), c.classes(), c.hidden(), c.trainSize(), c.valSize(), c.batch(), c.innerSteps(), lr,
        c.lossHidden(), c.population(), c.generations(), c.sigma(), c.metaLr(), c.evalRuns(), c.seed(), c.device(),
        c.dtype());
  }

  /**
   * Meta-trains the objective and compares it with cross-entropy.
   * {@code EsObjective.run(Config.defaults(), null)}.
   *
   * @param c the settings
   * @param progress called after each generation and evaluation step, or null
   * @return the measurements
   */
  public static Result run(Config c, InContextDemo.Progress progress) {
    if (c.population() < 2 || c.population() % 2 != 0)
      throw new IllegalArgumentException("population must be even and >= 2, got " + c.population());
    long t0 = System.nanoTime();
    try (Scope scope = Scope.open()) {
      Data data = Data.make(c);
      // φ₀: MLP_φ's first layer random, the rest (its bias and the output layer) zero, so MLP_φ₀ = 0
      // and ℓ_φ₀ is the cross-entropy; the plain-CE member of every generation is φ₀ itself
      int first = FEATURES * c.lossHidden();
      Tensor a1 = Tensor.randn(new long[] {first}, c.dtype(), c.device(), c.seed() + 7).mul(0.5);
      Tensor phi0 = Tensor.concat(
          List.of(a1, Tensor.zeros(new long[] {c.objectiveParameters() - first}, c.dtype(), c.device())), 0);
      double[] centre = new double[c.generations()], baseline = new double[c.generations()];
      double[] phiStar;
      try (EvolutionStrategies es = new EvolutionStrategies(phi0, c.population(), c.sigma(), c.metaLr(), c.seed())) {
        for (int g = 0; g < c.generations(); g++) {
          try (Scope gs = Scope.open()) {
            Tensor pop = es.ask(); // [P, nφ]
            Tensor members = Tensor.concat(List.of(pop, es.theta().unsqueeze(0), phi0.unsqueeze(0)), 0);
            int m = c.population() + 2;
            Classifier init = Classifier.init(c, 1, c.seed() * 1_000_003L + g).expand(m);
            Outcome o = innerLoop(c, data, init, members, c.seed() * 7919L + g, false);
            double[] loss = o.valLoss;
            double[] fitness = new double[c.population()];
            for (int i = 0; i < fitness.length; i++)
              fitness[i] = Double.isFinite(loss[i]) ? -loss[i] : Double.NEGATIVE_INFINITY;
            centre[g] = loss[c.population()];
            baseline[g] = loss[c.population() + 1];
            es.tell(fitness);
          }
          if (progress != null) progress.step("ES generations", g + 1, c.generations());
        }
        phiStar = es.theta().toDoubleArray();
      }
      // the final comparison: evalRuns fresh inits, φ₀ and φ* on each (paired)
      int e = c.evalRuns();
      Tensor star = Tensor.of(phiStar, phiStar.length).to(c.dtype()).to(c.device());
      Tensor members = Tensor.concat(
          List.of(phi0.unsqueeze(0).expand(e, phiStar.length), star.unsqueeze(0).expand(e, phiStar.length)), 0);
      Classifier inits = Classifier.init(c, e, c.seed() * 31L + 99_991L);
      Classifier both = inits.concat(inits);
      Outcome o = innerLoop(c, data, both, members, c.seed() * 131L + 5L, true);
      if (progress != null) progress.step("evaluation", 1, 1);
      double ce = 0, learned = 0, ceAcc = 0, lAcc = 0, d1 = 0, d2 = 0;
      int wins = 0;
      for (int i = 0; i < e; i++) {
        ce += o.valLoss[i];
        learned += o.valLoss[e + i];
        ceAcc += o.valAccuracy[i];
        lAcc += o.valAccuracy[e + i];
        double d = o.valLoss[i] - o.valLoss[e + i];
        d1 += d;
        d2 += d * d;
        if (d > 0) wins++;
      }
      double mean = d1 / e, var = e > 1 ? (d2 - e * mean * mean) / (e - 1) : 0;
      // the tuned baseline: plain cross-entropy at the grid's step size with the lowest mean
      // validation CE on the first meta-training tasks (as meta-training saw them: generation g's
      // init and data order), then evaluated on the same fresh inits and data order as φ*
      int tasks = Math.min(TUNING_TASKS, c.generations());
      double[] grid = new double[LR_FACTORS.length], gridLoss = new double[LR_FACTORS.length];
      int best = 0;
      for (int q = 0; q < grid.length; q++) {
        grid[q] = c.innerLr() * LR_FACTORS[q];
        Config cq = withInnerLr(c, grid[q]);
        for (int g = 0; g < tasks; g++) {
          try (Scope ts = Scope.open()) {
            Classifier init = Classifier.init(c, 1, c.seed() * 1_000_003L + g);
            double v = innerLoop(cq, data, init, phi0.unsqueeze(0), c.seed() * 7919L + g, false).valLoss[0];
            gridLoss[q] += (Double.isFinite(v) ? v : Double.POSITIVE_INFINITY) / tasks;
          }
        }
        if (gridLoss[q] < gridLoss[best]) best = q;
        if (progress != null) progress.step("tuning the cross-entropy step", q + 1, grid.length);
      }
      Outcome tuned = innerLoop(withInnerLr(c, grid[best]), data, inits, phi0.unsqueeze(0).expand(e, phiStar.length),
          c.seed() * 131L + 5L, false);
      double tLoss = 0, tAcc = 0, t1 = 0, t2 = 0;
      int tWins = 0;
      for (int i = 0; i < e; i++) {
        tLoss += tuned.valLoss[i];
        tAcc += tuned.valAccuracy[i];
        double d = tuned.valLoss[i] - o.valLoss[e + i];
        t1 += d;
        t2 += d * d;
        if (d > 0) tWins++;
      }
      double tMean = t1 / e, tVar = e > 1 ? (t2 - e * tMean * tMean) / (e - 1) : 0;
      double[] ceCurve = new double[c.innerSteps() + 1], lCurve = new double[c.innerSteps() + 1];
      for (int t = 0; t <= c.innerSteps(); t++) {
        for (int i = 0; i < e; i++) {
          ceCurve[t] += o.curve[t][i] / e;
          lCurve[t] += o.curve[t][e + i] / e;
        }
      }
      return new Result(centre, baseline, ce / e, learned / e, mean, Math.sqrt(Math.max(var, 0) / e), wins, ceAcc / e,
          lAcc / e, ceCurve, lCurve, phiStar, (System.nanoTime() - t0) / 1e9, grid, gridLoss, grid[best], tLoss / e,
          tAcc / e, tMean, Math.sqrt(Math.max(tVar, 0) / e), tWins);
    }
  }

  /**
   * The learned objective per sample for members' φ [M, nφ] and logits z [M, N, K] with one-hot
   * labels [N, K] at progress τ = t/T: [M, N]. Differentiable in z.
   *
   * @param c the settings (the objective's width)
   * @param phi [M, nφ]
   * @param z [M, N, K]
   * @param oneHot [N, K]
   * @param tau t/T
   * @return ℓ_φ, [M, N]
   */
  public static Tensor objective(Config c, Tensor phi, Tensor z, Tensor oneHot, double tau) {
    long m = phi.size(0);
    int h = c.lossHidden();
    Tensor zy = z.mul(oneHot).sum(2, false); // [M, N]
    Tensor lse = z.logsumexp(2, false); // [M, N]
    Tensor entropy = lse.sub(z.softmax(2).mul(z).sum(2, false)); // H = lse − Σ p z
    Tensor features = Tensor.stack(List.of(zy, lse, entropy, Tensor.onesLike(zy).mul(tau)), 2); // [M, N, 4]
    Tensor a1 = phi.narrow(1, 0, FEATURES * h).reshape(m, FEATURES, h);
    Tensor b1 = phi.narrow(1, FEATURES * h, h).reshape(m, 1, h);
    Tensor a2 = phi.narrow(1, FEATURES * h + h, h).reshape(m, h, 1);
    Tensor b2 = phi.narrow(1, FEATURES * h + 2 * h, 1).reshape(m, 1, 1);
    Tensor extra = features.matmul(a1).add(b1).tanh().matmul(a2).add(b2).squeeze(2); // [M, N]
    return lse.sub(zy).add(extra);
  }

  /** What an inner loop gives per member. */
  private record Outcome(double[] valLoss, double[] valAccuracy, double[][] curve) {}

  /** Per-member classifier weights: w1 [M, d, H], b1 [M, 1, H], w2 [M, H, K], b2 [M, 1, K]. */
  private record Classifier(Tensor w1, Tensor b1, Tensor w2, Tensor b2) {
    static Classifier init(Config c, int m, long seed) {
      double s1 = 1 / Math.sqrt(c.dim()), s2 = 1 / Math.sqrt(c.hidden());
      return new Classifier(Tensor.uniform(new long[] {m, c.dim(), c.hidden()}, -s1, s1, c.dtype(), c.device(), seed),
          Tensor.uniform(new long[] {m, 1, c.hidden()}, -s1, s1, c.dtype(), c.device(), seed + 1),
          Tensor.uniform(new long[] {m, c.hidden(), c.classes()}, -s2, s2, c.dtype(), c.device(), seed + 2),
          Tensor.uniform(new long[] {m, 1, c.classes()}, -s2, s2, c.dtype(), c.device(), seed + 3));
    }

    /** Member 0's weights repeated m times. */
    Classifier expand(int m) {
      return new Classifier(rep(w1, m), rep(b1, m), rep(w2, m), rep(b2, m));
    }

    private static Tensor rep(Tensor t, int m) {
      return t.expand(m, t.size(1), t.size(2)).contiguous();
    }

    Classifier concat(Classifier o) {
      return new Classifier(Tensor.concat(List.of(w1, o.w1), 0), Tensor.concat(List.of(b1, o.b1), 0),
          Tensor.concat(List.of(w2, o.w2), 0), Tensor.concat(List.of(b2, o.b2), 0));
    }

    List<Tensor> list() {
      return List.of(w1, b1, w2, b2);
    }

    Tensor logits(Tensor x) { // x [N, d] → [M, N, K]
      return x.matmul(w1).add(b1).tanh().matmul(w2).add(b2);
    }
  }

  /**
   * T SGD steps of every member's classifier on its own objective, all members at once; then the
   * validation CE and accuracy per member (and after every step when {@code curve}).
   */
  private static Outcome innerLoop(Config c, Data data, Classifier start, Tensor phi, long orderSeed, boolean curve) {
    int m = (int) phi.size(0), steps = c.innerSteps();
    double[][] curveValues = curve ? new double[steps + 1][] : null;
    Classifier w;
    try (var grad = Autograd.noGrad()) {
      w = new Classifier(start.w1.detach(), start.b1.detach(), start.w2.detach(), start.b2.detach());
    }
    if (curve) curveValues[0] = validate(data, w)[0];
    Random order = new Random(orderSeed);
    for (int t = 0; t < steps; t++) {
      long[] idx = new long[c.batch()];
      for (int i = 0; i < idx.length; i++) idx[i] = order.nextInt(c.trainSize());
      try (Scope s = Scope.open()) {
        Tensor ix = Tensor.ofIndices(idx, idx.length).to(c.device());
        Tensor xb = data.xTrain.indexSelect(0, ix), yb = data.yTrain.indexSelect(0, ix);
        List<Tensor> params = new ArrayList<>();
        for (Tensor p : w.list()) params.add(p.detach().requiresGrad(true));
        Classifier live = new Classifier(params.get(0), params.get(1), params.get(2), params.get(3));
        Tensor per = objective(c, phi, live.logits(xb), yb, (double) t / steps); // [M, N]
        // members are independent: the gradient of the sum is every member's own
        Tensor total = per.mean(1, false).sum();
        List<Tensor> g = Autograd.grad(total, params, false);
        Tensor[] next = new Tensor[4];
        try (var off = Autograd.noGrad()) {
          for (int i = 0; i < 4; i++) next[i] = s.keep(params.get(i).detach().sub(g.get(i).mul(c.innerLr())));
        }
        w = new Classifier(next[0], next[1], next[2], next[3]);
      }
      if (curve) curveValues[t + 1] = validate(data, w)[0];
    }
    double[][] v = validate(data, w);
    double[][] curveByStep = curve ? curveValues : null;
    return new Outcome(v[0], v[1], curveByStep);
  }

  /** Validation CE and accuracy per member: {loss[M], accuracy[M]}. */
  private static double[][] validate(Data data, Classifier w) {
    try (Scope s = Scope.open(); var off = Autograd.noGrad()) {
      Tensor z = w.logits(data.xVal); // [M, V, K]
      Tensor ce = z.logsumexp(2, false).sub(z.mul(data.yVal).sum(2, false)).mean(1, false);
      Tensor pred = z.max(2, false).indices(); // [M, V]
      long[] p = pred.toLongArray();
      double[] loss = ce.toDoubleArray();
      int m = loss.length, v = data.labelsVal.length;
      double[] acc = new double[m];
      for (int i = 0; i < m; i++) {
        int right = 0;
        for (int j = 0; j < v; j++)
          if (p[i * v + j] == data.labelsVal[j]) right++;
        acc[i] = (double) right / v;
      }
      return new double[][] {loss, acc};
    }
  }

  /** The fixed synthetic task: x ~ N(0, I), labels from a random teacher MLP. */
  private record Data(Tensor xTrain, Tensor yTrain, Tensor xVal, Tensor yVal, long[] labelsVal) {
    static Data make(Config c) {
      int n = c.trainSize() + c.valSize();
      try (var off = Autograd.noGrad()) {
        Tensor x = Tensor.randn(new long[] {n, c.dim()}, DType.F64, Device.CPU, c.seed() + 11);
        Tensor t1 =
            Tensor.randn(new long[] {c.dim(), 32}, DType.F64, Device.CPU, c.seed() + 12).mul(2 / Math.sqrt(c.dim()));
        Tensor t2 = Tensor.randn(new long[] {32, c.classes()}, DType.F64, Device.CPU, c.seed() + 13);
        long[] labels = x.matmul(t1).tanh().matmul(t2).max(1, false).indices().toLongArray();
        double[] oh = new double[n * c.classes()];
        for (int i = 0; i < n; i++) oh[i * c.classes() + (int) labels[i]] = 1;
        Tensor y = Tensor.of(oh, n, c.classes());
        long[] val = new long[c.valSize()];
        System.arraycopy(labels, c.trainSize(), val, 0, val.length);
        return new Data(on(c, x.narrow(0, 0, c.trainSize())), on(c, y.narrow(0, 0, c.trainSize())),
            on(c, x.narrow(0, c.trainSize(), c.valSize())), on(c, y.narrow(0, c.trainSize(), c.valSize())), val);
      }
    }

    private static Tensor on(Config c, Tensor t) {
      return t.contiguous().to(c.dtype()).to(c.device());
    }
  }
}
