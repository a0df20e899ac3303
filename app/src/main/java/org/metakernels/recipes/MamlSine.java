package org.metakernels.recipes;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.metakernels.autograd.Autograd;
import org.metakernels.meta.InnerStep;
import org.metakernels.meta.Unroll;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Weights;
import org.metakernels.ops.Functional;
import org.metakernels.optim.Adam;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * MAML on sinusoid regression (Finn, Abbeel and Levine 2017, section 5.1): tasks y = A sin(x − φ)
 * with A ~ U[0.1, 5], φ ~ U[0, π], x ~ U[−5, 5]; a 1-40-40-1 ReLU network; K support points per
 * task and one inner SGD step of size α while meta-training (the meta-gradient through that step
 * by {@link Unroll}, second order or first order); Adam on the meta-gradient averaged over a
 * meta-batch. The baseline is the same network pretrained by regression on points of random
 * tasks (all tasks pooled). Every model is then adapted to held-out tasks by plain SGD (step α)
 * on K points and scored by the mean squared error on 100 points of the task, after 0 to 10
 * steps.
 */
public final class MamlSine {
  private MamlSine() {}

  /** The three models compared. */
  public static final String[] METHODS = {"maml", "fomaml", "pretrained"};

  /**
   * Settings.
   *
   * @param shots K, the support points per task
   * @param iterations meta-iterations (Adam steps) per model
   * @param metaBatch tasks per meta-iteration
   * @param queryPoints query points per task while meta-training
   * @param innerLr α, the inner SGD step size (training and adaptation)
   * @param metaLr Adam's step size
   * @param evalTasks held-out tasks
   * @param evalSteps adaptation steps measured (0 to evalSteps)
   * @param seed the random seed
   */
  public record Config(int shots, int iterations, int metaBatch, int queryPoints, double innerLr, double metaLr,
      int evalTasks, int evalSteps, long seed) {
    /**
     * Finn et al.'s settings with a shorter meta-training (their 70 000 iterations take hours here).
     *
     * @param shots K
     * @return the settings
     */
    public static Config defaults(int shots) {
      return new Config(shots, 2000, 10, 10, 0.01, 1e-3, 200, 10, 1);
    }
  }

  /**
   * One model's held-out losses.
   *
   * @param method maml, fomaml or pretrained
   * @param shots K
   * @param lossAfterSteps mean query MSE after 0..evalSteps adaptation steps
   * @param stdErrAfterSteps its standard error over the held-out tasks
   * @param finalTrainingLoss the mean outer (or regression) loss of the last 10 % of training
   * @param seconds training time
   */
  public record MethodResult(String method, int shots, double[] lossAfterSteps, double[] stdErrAfterSteps,
      double finalTrainingLoss, double seconds) {}

  /** A progress callback: (phase, done, total). */
  @FunctionalInterface
  public interface Progress {
    /**
     * Reports progress.
     *
     * @param phase the phase's name
     * @param done steps done
     * @param total steps in the phase
     */
    void step(String phase, int done, int total);
  }

  /** A task's support and query points. */
  record Task(Tensor xs, Tensor ys, Tensor xq, Tensor yq) {}

  static Task sample(Random r, int support, int query) {
    double amp = 0.1 + 4.9 * r.nextDouble(), phase = Math.PI * r.nextDouble();
    double[] xs = new double[support], ys = new double[support], xq = new double[query], yq = new double[query];
    for (int i = 0; i < support; i++) {
      xs[i] = -5 + 10 * r.nextDouble();
      ys[i] = amp * Math.sin(xs[i] - phase);
    }
    for (int i = 0; i < query; i++) {
      xq[i] = -5 + 10 * r.nextDouble();
      yq[i] = amp * Math.sin(xq[i] - phase);
    }
    return new Task(
        Tensor.of(xs, support, 1), Tensor.of(ys, support, 1), Tensor.of(xq, query, 1), Tensor.of(yq, query, 1));
  }

  static MLP network(long seed) {
    return new MLP(new long[] {1, 40, 40, 1}, Activation.RELU, DType.F64, Device.CPU, seed);
  }

  /** Sets every parameter's .grad to g (by the backward of Σ p·g) and takes one Adam step. */
  static void applyGradient(MLP net, Adam adam, List<Tensor> grads) {
    net.zeroGrad();
    try (Scope s = Scope.open(); var on = Autograd.enableGrad()) {
      List<Tensor> ps = net.parameters();
      Tensor surrogate = null;
      for (int i = 0; i < ps.size(); i++) {
        Tensor term = ps.get(i).mul(grads.get(i).detach()).sum();
        surrogate = surrogate == null ? term : surrogate.add(term);
      }
      surrogate.backward();
    }
    adam.step();
  }

  /** Meta-trains (maml, fomaml) or pretrains (pretrained) a network; returns the mean late training loss. */
  static double train(MLP net, String method, Config c, Progress progress) {
    Random r = new Random(c.seed() * 7919 + method.hashCode());
    double late = 0;
    int lateCount = 0;
    try (Adam adam = new Adam(net.parameters(), c.metaLr())) {
      for (int it = 0; it < c.iterations(); it++) {
        try (Scope s = Scope.open()) {
          List<Tensor> sum = null;
          double loss = 0;
          for (int b = 0; b < c.metaBatch(); b++) {
            Task t = sample(r, c.shots(), c.queryPoints());
            List<Tensor> g;
            if (method.equals("pretrained")) {
              try (var on = Autograd.enableGrad()) {
                Tensor l = Functional.mse(
                    net.forward(Tensor.concat(List.of(t.xs(), t.xq()), 0)), Tensor.concat(List.of(t.ys(), t.yq()), 0));
                loss += l.item();
                g = Autograd.grad(l, net.parameters(), false);
              }
            } else {
              Unroll.Result u =
                  Unroll.builder()
                      .initialWeights(net.namedParameters())
                      .metaParameters(net.namedParameters())
                      .innerLoss((w, step, m) -> Functional.mse(net.forward(t.xs(), Weights.of(w)), t.ys()))
                      .outerLoss((w, m) -> Functional.mse(net.forward(t.xq(), Weights.of(w)), t.yq()))
                      .sgd(InnerStep.Sgd.lr(c.innerLr()))
                      .steps(1)
                      .firstOrder(method.equals("fomaml"))
                      .run();
              loss += u.outerLoss();
              g = new ArrayList<>(u.metaGradients().values());
            }
            if (sum == null)
              sum = g;
            else
              for (int i = 0; i < g.size(); i++) sum.set(i, sum.get(i).add(g.get(i)));
          }
          for (int i = 0; i < sum.size(); i++) sum.set(i, sum.get(i).mul(1.0 / c.metaBatch()));
          applyGradient(net, adam, sum);
          if (it >= c.iterations() * 9 / 10) {
            late += loss / c.metaBatch();
            lateCount++;
          }
        }
        if (progress != null) progress.step(method + " K=" + c.shots(), it + 1, c.iterations());
      }
    }
    return late / Math.max(1, lateCount);
  }

  /** Mean and standard error of the query loss after 0..evalSteps SGD steps on the support points. */
  static double[][] evaluate(MLP net, Config c) {
    Random r = new Random(c.seed() * 104729 + 17 + c.shots());
    int n = c.evalSteps() + 1;
    double[] sum = new double[n], sq = new double[n];
    for (int task = 0; task < c.evalTasks(); task++) {
      try (Scope s = Scope.open()) {
        Task t = sample(r, c.shots(), 100);
        Map<String, Tensor> w = new LinkedHashMap<>();
        for (var e : net.namedParameters().entrySet()) w.put(e.getKey(), e.getValue().detach());
        for (int step = 0; step < n; step++) {
          double l;
          try (var ng = Autograd.noGrad()) {
            l = Functional.mse(net.forward(t.xq(), Weights.of(w)), t.yq()).item();
          }
          sum[step] += l;
          sq[step] += l * l;
          if (step == n - 1) break;
          Map<String, Tensor> leaves = new LinkedHashMap<>();
          for (var e : w.entrySet()) leaves.put(e.getKey(), e.getValue().detach().requiresGrad(true));
          List<Tensor> ps = new ArrayList<>(leaves.values());
          List<Tensor> g;
          try (var on = Autograd.enableGrad()) {
            g = Autograd.grad(Functional.mse(net.forward(t.xs(), Weights.of(leaves)), t.ys()), ps, false);
          }
          try (var ng = Autograd.noGrad()) {
            int i = 0;
            for (String k : leaves.keySet()) w.put(k, InnerStep.sgd(ps.get(i).detach(), g.get(i++), c.innerLr()));
          }
        }
      }
    }
    double[] mean = new double[n], se = new double[n];
    for (int i = 0; i < n; i++) {
      mean[i] = sum[i] / c.evalTasks();
      double var = Math.max(0, sq[i] / c.evalTasks() - mean[i] * mean[i]);
      se[i] = Math.sqrt(var / c.evalTasks());
    }
    return new double[][] {mean, se};
  }

  /**
   * Trains and evaluates the three models for one K.
   *
   * @param c the settings
   * @param methods which of {@link #METHODS} to run
   * @param progress progress callback, or null
   * @return one result per method, in order
   */
  public static List<MethodResult> run(Config c, List<String> methods, Progress progress) {
    List<MethodResult> out = new ArrayList<>();
    for (String m : methods) {
      try (MLP net = network(c.seed())) {
        long t0 = System.nanoTime();
        double late = train(net, m, c, progress);
        double secs = (System.nanoTime() - t0) / 1e9;
        double[][] ev = evaluate(net, c);
        out.add(new MethodResult(m, c.shots(), ev[0], ev[1], late, secs));
      }
    }
    return out;
  }
}
