package org.metakernels.recipes;

import java.util.ArrayList;
import java.util.List;
import java.util.function.DoubleUnaryOperator;
import java.util.function.IntConsumer;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.LinearSelfAttention;
import org.metakernels.nn.Weights;
import org.metakernels.ops.LinearAttention.FeatureMap;
import org.metakernels.optim.Adam;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * "Transformers learn in-context by gradient descent" (von Oswald et al., 2022), reproduced:
 * a stack of K linear self-attention layers trained on in-context linear regression converges
 * to K steps of gradient descent (K = 1) or to GD++ (K > 1).
 *
 * <p>Training follows the paper's setup: fresh tasks every step, tokens [x_i, y_i] and a query
 * [x_q, 0], keys and values from the context tokens only, the prediction read (negated) from the
 * query's y slot, loss ½(ŷ − y)², Adam.
 */
public final class InContextLearning {
  private InContextLearning() {}

  /** Settings of one run. */
  public record Config(int dim, int context, int steps, int batch, double lr, double initStd, int evalTasks,
      long seed, Device device, DType dtype) {
    public static Config defaults() {
      return new Config(10, 10, 5000, 2048, 1e-3, 0.05, 10_000, 1L, Device.CPU, DType.F32);
    }

    public Config withSteps(int s) {
      return new Config(dim, context, s, batch, lr, initStd, evalTasks, seed, device, dtype);
    }

    public Config withSeed(long s) {
      return new Config(dim, context, steps, batch, lr, initStd, evalTasks, s, device, dtype);
    }

    public Config withDim(int d) {
      return new Config(d, context, steps, batch, lr, initStd, evalTasks, seed, device, dtype);
    }

    public Config withContext(int n) {
      return new Config(dim, n, steps, batch, lr, initStd, evalTasks, seed, device, dtype);
    }

    public Config withDevice(Device d) {
      return new Config(dim, context, steps, batch, lr, initStd, evalTasks, seed, d, dtype);
    }

    public Config withBatch(int b) {
      return new Config(dim, context, steps, b, lr, initStd, evalTasks, seed, device, dtype);
    }

    public Config withEvalTasks(int n) {
      return new Config(dim, context, steps, batch, lr, initStd, n, seed, device, dtype);
    }

    public Config withLr(double l) {
      return new Config(dim, context, steps, batch, l, initStd, evalTasks, seed, device, dtype);
    }
  }

  /** A trained stack of LSA layers (owned: close it). */
  public static final class Stack implements AutoCloseable {
    public final List<LinearSelfAttention> layers = new ArrayList<>();
    /** Training loss every step. */
    public final double[] lossCurve;

    Stack(int depth, Config c, int steps) {
      for (int k = 0; k < depth; k++)
        layers.add(new LinearSelfAttention(c.dim() + 1, 1, c.dim() + 1, c.context(), true, FeatureMap.IDENTITY,
            c.initStd(), c.dtype(), c.device(), c.seed() * 1000 + 17L * k));
      lossCurve = new double[steps];
    }

    /** ŷ = −(query's y slot) after the stack. tokens: [B, N+1, d+1] -> [B]. */
    public Tensor predict(Tensor tokens) {
      Tensor e = tokens;
      for (LinearSelfAttention l : layers) e = l.forward(e, Weights.none());
      long n = e.size(1) - 1, d = e.size(2) - 1;
      return e.select(1, n).select(1, d).neg();
    }

    public List<Tensor> parameters() {
      List<Tensor> ps = new ArrayList<>();
      for (LinearSelfAttention l : layers) ps.addAll(l.parameters());
      return ps;
    }

    @Override
    public void close() {
      for (LinearSelfAttention l : layers) l.close();
    }
  }

  /** ½ mean (ŷ − y)² as a double. */
  public static double loss(Tensor pred, Tensor target) {
    try (Scope s = Scope.open(); var ng = Autograd.noGrad()) {
      return pred.sub(target).square().mean().item() * 0.5;
    }
  }

  /** Trains a depth-K LSA stack with Adam on fresh tasks; {@code onStep} sees each step index. */
  public static Stack trainLsa(Config c, int depth, int steps, IntConsumer onStep) {
    Stack stack = new Stack(depth, c, steps);
    try (Adam opt = new Adam(stack.parameters(), c.lr())) {
      for (int step = 0; step < steps; step++) {
        try (Scope s = Scope.open()) {
          LinearRegressionTasks t = LinearRegressionTasks.sample(c.batch(), c.context(), c.dim(), c.dtype(),
              c.device(), c.seed() * 1_000_003L + step);
          Tensor pred = stack.predict(t.tokens());
          Tensor loss = pred.sub(t.queryY()).square().mean().mul(0.5);
          opt.zeroGrad();
          loss.backward();
          opt.step();
          stack.lossCurve[step] = loss.item();
        }
        if (onStep != null) onStep.accept(step);
      }
    }
    return stack;
  }

  /**
   * GD++ (or plain GD when {@code learnGamma} is false) with K learned step sizes, trained on
   * the same task stream as the LSA. Returns {η_1..η_K, γ_1..γ_K}.
   */
  public static double[] trainGdPlusPlus(Config c, int depth, int steps, double eta0, boolean learnGamma, IntConsumer onStep) {
    Tensor[] etas = new Tensor[depth], gammas = new Tensor[depth];
    List<Tensor> params = new ArrayList<>();
    for (int k = 0; k < depth; k++) {
      etas[k] = own(Tensor.scalar(eta0, DType.F64, c.device()));
      gammas[k] = own(Tensor.scalar(0.0, DType.F64, c.device()));
      params.add(etas[k]);
      if (learnGamma) params.add(gammas[k]);
    }
    try (Adam opt = new Adam(params, 1e-2)) {
      for (int step = 0; step < steps; step++) {
        try (Scope s = Scope.open()) {
          LinearRegressionTasks t = LinearRegressionTasks.sample(c.batch(), c.context(), c.dim(), DType.F64, c.device(),
              c.seed() * 1_000_003L + step);
          Tensor pred = GradientDescentLearner.predict(t, etas, learnGamma ? gammas : null);
          Tensor loss = pred.sub(t.queryY()).square().mean().mul(0.5);
          opt.zeroGrad();
          loss.backward();
          opt.step();
        }
        if (onStep != null) onStep.accept(step);
      }
    }
    double[] out = new double[2 * depth];
    for (int k = 0; k < depth; k++) {
      out[k] = etas[k].item();
      out[depth + k] = gammas[k].item();
      etas[k].close();
      gammas[k].close();
    }
    return out;
  }

  private static Tensor own(Tensor t) {
    Scope.transfer(t.storage(), null);
    return t.requiresGrad(true);
  }

  /**
   * Minimises {@code loss} over η ≥ 0: a log-spaced scan over [1e−3, 1e2], then golden-section
   * refinement around the best point.
   */
  public static double scan(DoubleUnaryOperator loss) {
    double best = 0, bestLoss = Double.POSITIVE_INFINITY;
    int points = 101;
    double[] grid = new double[points];
    for (int i = 0; i < points; i++) {
      grid[i] = Math.pow(10, -3 + 5.0 * i / (points - 1));
      double l = loss.applyAsDouble(grid[i]);
      if (l < bestLoss) {
        bestLoss = l;
        best = i;
      }
    }
    int bi = (int) best;
    double lo = grid[Math.max(bi - 1, 0)], hi = grid[Math.min(bi + 1, points - 1)];
    double phi = (Math.sqrt(5) - 1) / 2;
    double a = hi - phi * (hi - lo), b = lo + phi * (hi - lo);
    double fa = loss.applyAsDouble(a), fb = loss.applyAsDouble(b);
    for (int it = 0; it < 60; it++) {
      if (fa < fb) {
        hi = b;
        b = a;
        fb = fa;
        a = hi - phi * (hi - lo);
        fa = loss.applyAsDouble(a);
      } else {
        lo = a;
        a = b;
        fa = fb;
        b = lo + phi * (hi - lo);
        fb = loss.applyAsDouble(b);
      }
    }
    return (lo + hi) / 2;
  }

  /** Cosine similarity of two flattened tensors. */
  public static double cosine(Tensor a, Tensor b) {
    try (Scope s = Scope.open(); var ng = Autograd.noGrad()) {
      Tensor a64 = a.to(DType.F64).flatten(), b64 = b.to(DType.F64).flatten();
      double ab = a64.mul(b64).sum().item();
      double aa = a64.square().sum().item(), bb = b64.square().sum().item();
      return ab / Math.sqrt(aa * bb);
    }
  }

  /** Mean over rows of the cosine similarity of matching rows of a, b: [B, d]. */
  public static double rowCosine(Tensor a, Tensor b) {
    try (Scope s = Scope.open(); var ng = Autograd.noGrad()) {
      Tensor a64 = a.to(DType.F64), b64 = b.to(DType.F64);
      Tensor num = a64.mul(b64).sum(1, false);
      Tensor den = a64.square().sum(1, false).mul(b64.square().sum(1, false)).sqrt().clampMin(1e-300);
      return num.div(den).mean().item();
    }
  }
}
