package org.metakernels.meta;

import static org.junit.jupiter.api.Assertions.*;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * IMPLICIT on a strongly convex inner problem (ridge regression with one learned log-penalty per
 * feature and learned per-example weights): the implicit meta-gradient against KEEP run to
 * convergence (1e-7 relative) and against central finite differences of the converged outer loss.
 */
class UnrollImplicitTest {
  static final Device CPU = Device.CPU;
  static final DType F64 = DType.F64;

  final Tensor x = Tensor.randn(new long[] {20, 5}, F64, CPU, 1);
  final Tensor y = x.matmul(Tensor.of(new double[] {1, -2, 0.5, 0, 3}, 5, 1))
                       .add(Tensor.randn(new long[] {20, 1}, F64, CPU, 2).mul(0.3));
  final Tensor xv = Tensor.randn(new long[] {15, 5}, F64, CPU, 3);
  final Tensor yv = xv.matmul(Tensor.of(new double[] {1, -2, 0.5, 0, 3}, 5, 1));

  Unroll.Builder builder(Tensor logLambda, Tensor dw, int k) {
    Map<String, Tensor> meta = new LinkedHashMap<>();
    meta.put("logLambda", logLambda);
    meta.put("dataWeights", dw);
    return Unroll.builder()
        .initialWeights(Map.of("w", Tensor.zeros(new long[] {5, 1}, F64, CPU)))
        .metaParameters(meta)
        .innerLoss((w, step, m)
                       -> x.matmul(w.get("w"))
                              .sub(y)
                              .square()
                              .mul(m.get("dataWeights"))
                              .mean()
                              .add(w.get("w").square().mul(m.get("logLambda").exp()).sum()))
        .outerLoss((w, m) -> xv.matmul(w.get("w")).sub(yv).square().mean())
        .momentum(InnerStep.Momentum.lr(0.1).withMomentum(0.8))
        .steps(k);
  }

  @Test
  void implicitMatchesKeepAtConvergenceAndFiniteDifferences() {
    try (Scope s = Scope.open()) {
      Tensor logLambda = Tensor.of(new double[] {-1, -2, -0.5, -1.5, -3}, 5, 1).requiresGrad(true);
      Tensor dw = Tensor.uniform(new long[] {20, 1}, 0.5, 1.5, F64, CPU, 4).requiresGrad(true);
      Unroll.Result imp = builder(logLambda, dw, 300).memory(Unroll.Memory.implicit()).run();
      Unroll.Result keep = builder(logLambda, dw, 300).memory(Unroll.Memory.checkpoint()).run();
      assertTrue(imp.stats().cgIterations() >= 1 && imp.stats().cgIterations() <= 10,
          "5 unknowns: CG ends in ≤ 5+"
              + " iterations, took " + imp.stats().cgIterations());
      assertTrue(imp.stats().cgRelativeResidual() <= 1e-10);
      for (String n : new String[] {"logLambda", "dataWeights"}) {
        double[] a = keep.metaGradients().get(n).toDoubleArray(), b = imp.metaGradients().get(n).toDoubleArray();
        double scale = 0;
        for (double v : a) scale = Math.max(scale, Math.abs(v));
        assertTrue(scale > 1e-4, n);
        for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 1e-7 * scale, n + "[" + i + "]");
      }
      // central differences of the converged outer loss along a direction of logLambda
      Tensor dir = Tensor.randn(new long[] {5, 1}, F64, CPU, 8);
      Function<Double, Double> at = h -> {
        try (Scope in = Scope.open()) {
          Tensor ll = logLambda.detach().add(dir.mul(h)).requiresGrad(true);
          return builder(ll, dw, 300).memory(Unroll.Memory.implicit()).run().outerLoss();
        }
      };
      double h = 1e-5;
      double numeric = (at.apply(h) - at.apply(-h)) / (2 * h);
      double analytic = imp.metaGradients().get("logLambda").mul(dir).sum().item();
      assertEquals(numeric, analytic, 1e-7 + 1e-6 * Math.abs(numeric));
    }
  }
}
