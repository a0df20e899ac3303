package org.metakernels.meta;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Weights;
import org.metakernels.ops.Functional;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * A 3-step unrolled inner loop of a tiny MLP (regression on a support set, loss on a query set)
 * through the fused steps: the meta-gradient of the query loss in a learning-rate tensor (one
 * value, and one per element of every parameter) against central finite differences; and the
 * second derivative in the learning rate (through the backward of the fused backward) against
 * finite differences of the meta-gradient.
 */
class UnrolledLoopTest {
  static final Device CPU = Device.CPU;
  static final DType F64 = DType.F64;
  static final int STEPS = 3;

  /** The support and query sets of a sine-like regression task, and the network. */
  static final class Task implements AutoCloseable {
    final MLP net = new MLP(new long[] {2, 8, 1}, Activation.TANH, F64, CPU, 11L);
    final Tensor xs = Tensor.uniform(new long[] {12, 2}, -2, 2, F64, CPU, 1);
    final Tensor ys = xs.select(1, 0).sin().add(xs.select(1, 1).mul(0.5)).reshape(12, 1);
    final Tensor xq = Tensor.uniform(new long[] {10, 2}, -2, 2, F64, CPU, 2);
    final Tensor yq = xq.select(1, 0).sin().add(xq.select(1, 1).mul(0.5)).reshape(10, 1);

    @Override
    public void close() {
      net.close();
    }
  }

  /** Which step the inner loop takes; lrs: one learning-rate tensor per parameter (or one shared). */
  static Tensor metaLoss(Task task, String optimizer, List<Tensor> lrs) {
    Map<String, Tensor> w = new LinkedHashMap<>(task.net.namedParameters());
    List<String> names = new ArrayList<>(w.keySet());
    Map<String, Tensor> buf = new LinkedHashMap<>(), m = new LinkedHashMap<>(), v = new LinkedHashMap<>();
    for (String k : names) {
      buf.put(k, Tensor.zerosLike(w.get(k)));
      m.put(k, Tensor.zerosLike(w.get(k)));
      v.put(k, Tensor.zerosLike(w.get(k)));
    }
    for (int step = 1; step <= STEPS; step++) {
      Tensor inner = Functional.mse(task.net.forward(task.xs, Weights.of(w)), task.ys);
      List<Tensor> params = new ArrayList<>(w.values());
      List<Tensor> grads = Autograd.grad(inner, params, true);
      Map<String, Tensor> next = new LinkedHashMap<>();
      for (int i = 0; i < names.size(); i++) {
        String k = names.get(i);
        Tensor lr = lrs.get(lrs.size() == 1 ? 0 : i), p = params.get(i), g = grads.get(i);
        switch (optimizer) {
          case "sgd" -> next.put(k, InnerStep.sgd(p, g, InnerStep.Sgd.lr(lr).withWeightDecay(0.01)));
          case "nesterov" -> {
            InnerStep.MomentumResult r = InnerStep.momentum(p, g, buf.get(k),
                InnerStep.Momentum.lr(lr).withMomentum(0.9).withNesterov(true));
            next.put(k, r.param());
            buf.put(k, r.buffer());
          }
          case "adamw" -> {
            InnerStep.AdamResult r = InnerStep.adam(p, g, m.get(k), v.get(k), step,
                InnerStep.Adam.lr(lr).withWeightDecay(0.1).withDecoupledWeightDecay(true));
            next.put(k, r.param());
            m.put(k, r.m());
            v.put(k, r.v());
          }
          default -> throw new IllegalArgumentException(optimizer);
        }
      }
      w = next;
    }
    return Functional.mse(task.net.forward(task.xq, Weights.of(w)), task.yq);
  }

  static double lrValue(String optimizer) {
    return optimizer.equals("adamw") ? 0.05 : 0.1;
  }

  static double value(Function<Double, Tensor> f, double x) {
    try (Scope s = Scope.open(); var ng = Autograd.noGrad()) {
      return f.apply(x).item();
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"sgd", "nesterov", "adamw"})
  void metaGradientOfOneLearningRateMatchesFiniteDifferences(String optimizer) {
    try (Scope s = Scope.open(); Task task = new Task()) {
      double lr0 = lrValue(optimizer);
      Tensor lr = Tensor.scalar(lr0, F64, CPU).requiresGrad(true);
      Tensor outer = metaLoss(task, optimizer, List.of(lr));
      double analytic = Autograd.grad(outer, List.of(lr), false).get(0).item();
      // the inner gradients need recording even when the learning rate is a constant
      Function<Double, Tensor> at = x -> {
        try (var eg = Autograd.enableGrad()) {
          return metaLoss(task, optimizer, List.of(Tensor.scalar(x, F64, CPU)));
        }
      };
      double h = 1e-5;
      double numeric = (value(at, lr0 + h) - value(at, lr0 - h)) / (2 * h);
      assertTrue(Math.abs(numeric) > 1e-3, optimizer + ": the meta-gradient is not trivially small: " + numeric);
      assertEquals(numeric, analytic, 1e-8 + 1e-6 * Math.abs(numeric), optimizer + " d(query loss)/d lr");
    }
  }

  /** One learning rate per element of every parameter: the meta-gradient in a random direction. */
  @ParameterizedTest
  @ValueSource(strings = {"sgd", "nesterov", "adamw"})
  void metaGradientOfPerElementLearningRatesMatchesFiniteDifferences(String optimizer) {
    try (Scope s = Scope.open(); Task task = new Task()) {
      double lr0 = lrValue(optimizer);
      List<Tensor> lrs = new ArrayList<>(), dirs = new ArrayList<>();
      int i = 0;
      for (Tensor p : task.net.parameters()) {
        lrs.add(Tensor.uniform(p.shape(), 0.5 * lr0, 1.5 * lr0, F64, CPU, 50 + i).requiresGrad(true));
        dirs.add(Tensor.randn(p.shape(), F64, CPU, 70 + i++));
      }
      List<Tensor> g = Autograd.grad(metaLoss(task, optimizer, lrs), lrs, false);
      double analytic = 0;
      for (int k = 0; k < g.size(); k++) {
        assertArrayEquals(lrs.get(k).shape(), g.get(k).shape());
        analytic += g.get(k).mul(dirs.get(k)).sum().item();
      }
      double h = 1e-7;
      Function<Double, Tensor> at = x -> {
        try (var eg = Autograd.enableGrad()) {
          List<Tensor> shifted = new ArrayList<>();
          for (int k = 0; k < lrs.size(); k++) shifted.add(lrs.get(k).detach().add(dirs.get(k).mul(x)));
          return metaLoss(task, optimizer, shifted);
        }
      };
      double numeric = (value(at, h) - value(at, -h)) / (2 * h);
      assertEquals(numeric, analytic, 1e-8 + 1e-6 * Math.abs(numeric), optimizer + " directional meta-gradient");
    }
  }

  /** d²(query loss)/d lr²: the meta-gradient built with createGraph and differentiated again. */
  @ParameterizedTest
  @ValueSource(strings = {"sgd", "nesterov", "adamw"})
  void secondDerivativeInTheLearningRateMatchesFiniteDifferences(String optimizer) {
    try (Scope s = Scope.open(); Task task = new Task()) {
      double lr0 = lrValue(optimizer);
      Tensor lr = Tensor.scalar(lr0, F64, CPU).requiresGrad(true);
      Tensor dl = Autograd.grad(metaLoss(task, optimizer, List.of(lr)), List.of(lr), true).get(0);
      double analytic = Autograd.grad(dl, List.of(lr), false).get(0).item();
      Function<Double, Tensor> metaGrad = x -> {
        try (var eg = Autograd.enableGrad()) {
          Tensor l = Tensor.scalar(x, F64, CPU).requiresGrad(true);
          return Autograd.grad(metaLoss(task, optimizer, List.of(l)), List.of(l), false).get(0);
        }
      };
      double h = 1e-5;
      double numeric = (value(metaGrad, lr0 + h) - value(metaGrad, lr0 - h)) / (2 * h);
      assertEquals(numeric, analytic, 1e-6 + 1e-5 * Math.abs(numeric), optimizer + " d²(query loss)/d lr²");
    }
  }
}
