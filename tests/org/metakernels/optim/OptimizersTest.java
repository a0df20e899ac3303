package org.metakernels.optim;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.GradCheck;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Weights;
import org.metakernels.ops.Functional;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;
import org.metakernels.testing.Ref;

/** SGD (with momentum, weight decay) and Adam against hand-written updates; differentiable SGD steps. */
class OptimizersTest {
  static final Device CPU = Device.CPU;

  /**
   * The loss Σ ½ a·p² + b·p over two parameters, whose gradient a·p + b the reference computes by
   * hand. Runs {@code steps} optimizer steps through backward() and returns the parameters.
   */
  static final double[] A0 = {1.0, 2.0, 0.5, 3.0}, B0 = {0.3, -1.0, 2.0, 0.1};
  static final double[] A1 = {0.7, 1.5}, B1 = {-0.4, 0.8};

  static Tensor loss(Tensor p0, Tensor p1) {
    Tensor a0 = Tensor.of(A0, 2, 2), b0 = Tensor.of(B0, 2, 2), a1 = Tensor.of(A1, 2), b1 = Tensor.of(B1, 2);
    return p0.square().mul(a0).mul(0.5).add(p0.mul(b0)).sum().add(p1.square().mul(a1).mul(0.5).add(p1.mul(b1)).sum());
  }

  static double[][] grads(double[][] p) {
    double[][] g = new double[2][];
    g[0] = new double[4];
    g[1] = new double[2];
    for (int i = 0; i < 4; i++) g[0][i] = A0[i] * p[0][i] + B0[i];
    for (int i = 0; i < 2; i++) g[1][i] = A1[i] * p[1][i] + B1[i];
    return g;
  }

  static double[][] init() {
    return new double[][] {{1.0, -2.0, 0.5, 4.0}, {-1.5, 2.5}};
  }

  interface Update {
    void apply(double[][] p, double[][] g, int t);
  }

  static void run(java.util.function.Function<List<Tensor>, Optimizer> make, Update ref, int steps) {
    try (Scope s = Scope.open()) {
      double[][] p = init();
      Tensor p0 = Tensor.of(p[0].clone(), 2, 2).requiresGrad(true), p1 = Tensor.of(p[1].clone(), 2).requiresGrad(true);
      try (Optimizer opt = make.apply(List.of(p0, p1))) {
        for (int t = 1; t <= steps; t++) {
          opt.zeroGrad();
          try (Scope step = Scope.open()) {
            loss(p0, p1).backward();
          }
          Ref.assertClose(p0.grad().toDoubleArray(), grads(p)[0], 1e-15, 1e-14, "grad p0 at step " + t);
          opt.step();
          ref.apply(p, grads(p), t);
          Ref.assertClose(p0.toDoubleArray(), p[0], 1e-14, 1e-12, "p0 after step " + t);
          Ref.assertClose(p1.toDoubleArray(), p[1], 1e-14, 1e-12, "p1 after step " + t);
        }
      }
    }
  }

  @Test
  void plainSgd() {
    double lr = 0.1;
    run(ps -> new SGD(ps, lr), (p, g, t) -> {
      for (int k = 0; k < 2; k++) for (int i = 0; i < p[k].length; i++) p[k][i] -= lr * g[k][i];
    }, 5);
  }

  @Test
  void sgdWithMomentumAndWeightDecay() {
    double lr = 0.05, mu = 0.9, wd = 0.01;
    double[][] v = {new double[4], new double[2]};
    run(ps -> new SGD(ps, lr, mu, wd), (p, g, t) -> {
      for (int k = 0; k < 2; k++)
        for (int i = 0; i < p[k].length; i++) {
          v[k][i] = mu * v[k][i] + g[k][i] + wd * p[k][i];
          p[k][i] -= lr * v[k][i];
        }
    }, 6);
  }

  static Update adamRef(double lr, double b1, double b2, double eps, double wd) {
    double[][] m = {new double[4], new double[2]}, v = {new double[4], new double[2]};
    return (p, g, t) -> {
      for (int k = 0; k < 2; k++)
        for (int i = 0; i < p[k].length; i++) {
          double gi = g[k][i] + wd * p[k][i];
          m[k][i] = b1 * m[k][i] + (1 - b1) * gi;
          v[k][i] = b2 * v[k][i] + (1 - b2) * gi * gi;
          double mh = m[k][i] / (1 - Math.pow(b1, t)), vh = v[k][i] / (1 - Math.pow(b2, t));
          p[k][i] -= lr * mh / (Math.sqrt(vh) + eps);
        }
    };
  }

  @Test
  void adam() {
    run(ps -> new Adam(ps, 0.05), adamRef(0.05, 0.9, 0.999, 1e-8, 0), 6);
  }

  @Test
  void adamWithWeightDecayAndOtherBetas() {
    run(ps -> new Adam(ps, 0.02, 0.8, 0.99, 1e-3, 0.05), adamRef(0.02, 0.8, 0.99, 1e-3, 0.05), 5);
  }

  @Test
  void parametersWithoutGradientsAreSkipped() {
    try (Scope s = Scope.open()) {
      Tensor a = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
      Tensor b = Tensor.of(new double[] {3, 4}, 2).requiresGrad(true);
      try (SGD sgd = new SGD(List.of(a, b), 0.5, 0.9, 0); Adam adam = new Adam(List.of(a, b), 0.1)) {
        a.square().sum().backward();
        assertNull(b.grad());
        sgd.step();
        Ref.assertValues(a, 0, 0);
        Ref.assertValues(b, 3, 4);
        adam.step();
        Ref.assertValues(b, 3, 4);
        assertEquals(1, adam.steps());
        sgd.zeroGrad();
        assertNull(a.grad());
      }
    }
  }

  /**
   * Each parameter's bias correction counts its own updates, as torch.optim.Adam: b first has a
   * gradient at step 3, and its first update is lr · g / (|g| + ε) (m̂ = g, v̂ = g²), not the step-3
   * correction of a's count (which scaled it by ~0.64 at β = 0.9 / 0.999).
   */
  @Test
  void adamCountsEachParametersOwnUpdates() {
    try (Scope s = Scope.open()) {
      Tensor a = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
      Tensor b = Tensor.of(new double[] {3, -4}, 2).requiresGrad(true);
      try (Adam adam = new Adam(List.of(a, b), 0.1)) {
        for (int step = 1; step <= 3; step++) {
          adam.zeroGrad();
          (step < 3 ? a.square().sum() : a.square().sum().add(b.mul(0.5).sum())).backward();
          adam.step();
        }
        assertEquals(3, adam.steps());
        assertEquals(3, adam.steps(0));
        assertEquals(1, adam.steps(1));
        assertArrayEquals(new double[] {3 - 0.1 * 0.5 / (0.5 + 1e-8), -4 - 0.1 * 0.5 / (0.5 + 1e-8)}, b.toDoubleArray(), 1e-12);
      }
    }
  }

  /** A closed optimizer refuses to step, save or load (a step made new state no one freed) and changes nothing. */
  @Test
  void closedOptimizersRefuse() throws Exception {
    try (Scope s = Scope.open()) {
      Tensor p = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
      Adam adam = new Adam(List.of(p), 0.1);
      SGD sgd = new SGD(List.of(p), 0.1, 0.9, 0);
      p.square().sum().backward();
      adam.close();
      sgd.close();
      long live = org.metakernels.runtime.MkNative.mk_host_live_bytes();
      for (Optimizer o : List.of(adam, sgd)) {
        IllegalStateException e = assertThrows(IllegalStateException.class, o::step);
        assertTrue(e.getMessage().contains("closed") && e.getMessage().contains(o.getClass().getSimpleName()), e.getMessage());
        java.nio.file.Path f = java.nio.file.Files.createTempFile("opt", ".npz");
        assertThrows(IllegalStateException.class, () -> o.saveState(f));
        assertThrows(IllegalStateException.class, () -> o.loadState(f));
        java.nio.file.Files.delete(f);
      }
      Ref.assertValues(p, 1, 2);
      assertEquals(0, adam.steps());
      assertEquals(live, org.metakernels.runtime.MkNative.mk_host_live_bytes());
    }
  }

  /**
   * Hyperparameters that would turn every parameter into NaN (torch.optim raises for them too), and
   * parameters a step could not update, are refused when the optimizer is built.
   */
  @Test
  void badHyperparametersAndParametersAreRefusedAtConstruction() throws Exception {
    try (Scope s = Scope.open()) {
      Tensor p = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
      List<Tensor> ps = List.of(p);
      double nan = Double.NaN, inf = Double.POSITIVE_INFINITY;
      Map<String, org.junit.jupiter.api.function.Executable> bad = new LinkedHashMap<>();
      bad.put("momentum NaN", () -> new SGD(ps, 0.1, nan, 0));
      bad.put("momentum -0.5", () -> new SGD(ps, 0.1, -0.5, 0));
      bad.put("weightDecay Infinity", () -> new SGD(ps, 0.1, 0.9, inf));
      bad.put("beta1 1.0", () -> new Adam(ps, 0.1, 1.0, 0.999, 1e-8, 0));
      bad.put("beta2 1.0", () -> new Adam(ps, 0.1, 0.9, 1.0, 1e-8, 0));
      bad.put("beta1 NaN", () -> new Adam(ps, 0.1, nan, 0.999, 1e-8, 0));
      bad.put("beta2 -0.1", () -> new Adam(ps, 0.1, 0.9, -0.1, 1e-8, 0));
      bad.put("eps NaN", () -> new Adam(ps, 0.1, 0.9, 0.999, nan, 0));
      bad.put("weightDecay -1.0", () -> new Adam(ps, 0.1, 0.9, 0.999, 1e-8, -1));
      for (var e : bad.entrySet()) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e.getValue(), e.getKey());
        assertTrue(x.getMessage().contains(e.getKey()), x.getMessage());
      }
      // a 16-bit parameter: the update ops refuse BF16/F16, so a step stopped half way (an F32
      // parameter before it already updated, or clipGradNorm's scaling half done)
      Tensor f32 = Tensor.of(new float[] {3, 4}, 2).requiresGrad(true);
      Tensor half = Tensor.of(new float[] {1, 2}, 2).to(DType.BF16).requiresGrad(true);
      IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> new Adam(List.of(f32, half), 0.1));
      assertTrue(x.getMessage().contains("parameter 1") && x.getMessage().contains("BF16"), x.getMessage());
      Tensor closed;
      try (Scope inner = Scope.open()) {
        closed = Tensor.of(new double[] {1}, 1).requiresGrad(true);
      }
      x = assertThrows(IllegalArgumentException.class, () -> new SGD(List.of(p, closed), 0.1));
      assertTrue(x.getMessage().contains("parameter 1 is closed"), x.getMessage());
      // a negative per-parameter count in a state file
      try (Adam adam = new Adam(ps, 0.1)) {
        java.nio.file.Path f = java.nio.file.Files.createTempFile("adam-neg", ".npz");
        p.square().sum().backward();
        adam.step();
        adam.saveState(f);
        Map<String, Tensor> entries = new LinkedHashMap<>(org.metakernels.io.NumPy.readTensors(f, Device.CPU));
        entries.put("step.0", Tensor.ofIndices(new long[] {-1}, 1));
        org.metakernels.io.NumPy.writeTensors(f, entries);
        double[] before = p.toDoubleArray();
        var e = assertThrows(org.metakernels.runtime.MetakernelsException.class, () -> adam.loadState(f));
        assertTrue(e.getMessage().contains("step.0") && e.getMessage().contains("negative"), e.getMessage());
        assertEquals(1, adam.steps(0));
        assertArrayEquals(before, p.toDoubleArray(), 0.0);
        java.nio.file.Files.delete(f);
      }
    }
  }

  /** A step that meets a freed gradient changes nothing (it updated the parameters before it). */
  @Test
  void aFreedGradientIsRefusedBeforeAnyWrite() {
    try (Scope s = Scope.open()) {
      Tensor p0 = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true), p1 = Tensor.of(new double[] {3, 4}, 2).requiresGrad(true);
      try (Adam adam = new Adam(List.of(p0, p1), 0.1); SGD sgd = new SGD(List.of(p0, p1), 0.1, 0.9, 0)) {
        p0.mul(p1).sum().backward();
        p1.grad().close();
        for (Optimizer o : List.of(adam, sgd)) {
          IllegalStateException e = assertThrows(IllegalStateException.class, o::step);
          assertTrue(e.getMessage().contains("gradient of parameter 1") && e.getMessage().contains(".step"), e.getMessage());
          e = assertThrows(IllegalStateException.class, () -> o.clipGradNorm(1.0));
          assertTrue(e.getMessage().contains("gradient of parameter 1"), e.getMessage());
        }
        Ref.assertValues(p0, 1, 2);
        Ref.assertValues(p0.grad(), 3, 4);
        assertEquals(0, adam.steps(0));
        assertEquals(0, adam.steps());
      }
    }
  }

  @Test
  void optimizerStateIsFreedOnClose() {
    org.metakernels.runtime.Native.ensureLoaded();
    long before = org.metakernels.runtime.MkNative.mk_host_live_bytes();
    // a caller-owned parameter (as a module's are): its gradients are caller-owned too and
    // zeroGrad() frees them. (A leaf owned by a scope keeps each dropped gradient until that
    // scope closes.)
    Tensor p = Tensor.ones(new long[] {100}, DType.F64, CPU).requiresGrad(true);
    try (Scope s = Scope.open()) {
      long withParam = org.metakernels.runtime.MkNative.mk_host_live_bytes();
      try (Adam adam = new Adam(List.of(p), 0.1); SGD sgd = new SGD(List.of(p), 0.1, 0.9, 0)) {
        for (int i = 0; i < 3; i++) {
          adam.zeroGrad();
          try (Scope step = Scope.open()) {
            p.square().sum().backward();
          }
          adam.step();
          sgd.step();
        }
        assertTrue(org.metakernels.runtime.MkNative.mk_host_live_bytes() > withParam, "m, v, velocity, grad");
      }
      p.zeroGrad();
      assertEquals(withParam, org.metakernels.runtime.MkNative.mk_host_live_bytes(), "state freed by close()");
    }
    p.close();
    assertEquals(before, org.metakernels.runtime.MkNative.mk_host_live_bytes());
  }

  @Test
  void differentiableStepValues() {
    try (Scope s = Scope.open()) {
      Tensor p = Tensor.of(new double[] {1, 2, 3}, 3), g = Tensor.of(new double[] {0.5, -1, 2}, 3);
      Ref.assertValues(SGD.differentiableStep(List.of(p), List.of(g), 0.1).get(0), 0.95, 2.1, 2.8);
      Tensor lr = Tensor.scalar(0.5, DType.F64, CPU);
      Ref.assertValues(SGD.differentiableStep(List.of(p), List.of(g), lr).get(0), 0.75, 2.5, 2);
      // nothing is written in place
      Ref.assertValues(p, 1, 2, 3);
    }
  }

  /** MAML-style meta-loss: the validation loss after one (or two) SGD steps on the training loss. */
  static Tensor metaLoss(MLP net, List<String> names, List<Tensor> theta, Tensor lr, double lrConst, int steps,
      Tensor xTr, Tensor yTr, Tensor xVal, Tensor yVal) {
    try (var eg = Autograd.enableGrad()) {  // GradCheck evaluates once under noGrad; the inner grad needs the tape
      List<Tensor> fast = theta;
      for (int k = 0; k < steps; k++) {
        Tensor inner = Functional.mse(net.forward(xTr, weights(names, fast)), yTr);
        List<Tensor> g = Autograd.grad(inner, fast, true);
        fast = lr == null ? SGD.differentiableStep(fast, g, lrConst) : SGD.differentiableStep(fast, g, lr);
      }
      return Functional.mse(net.forward(xVal, weights(names, fast)), yVal);
    }
  }

  static Weights weights(List<String> names, List<Tensor> ts) {
    Map<String, Tensor> m = new LinkedHashMap<>();
    for (int i = 0; i < names.size(); i++) m.put(names.get(i), ts.get(i));
    return Weights.of(m);
  }

  @Test
  void differentiableStepGradCheckOrder2() {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {2, 5, 1}, Activation.TANH, DType.F64, CPU, 41)) {
      Random r = new Random(42);
      Tensor xTr = Nd.uniform(r, -1, 1, 6, 2).f64(), yTr = Nd.uniform(r, -1, 1, 6, 1).f64();
      Tensor xVal = Nd.uniform(r, -1, 1, 5, 2).f64(), yVal = Nd.uniform(r, -1, 1, 5, 1).f64();
      List<String> names = new ArrayList<>(net.namedParameters().keySet());
      List<Tensor> theta = new ArrayList<>();
      for (Tensor p : net.parameters()) theta.add(p.detach());
      // meta-gradient through one inner step, to second order (third derivatives of the MLP)
      GradCheck.check(ps -> metaLoss(net, names, ps, null, 0.3, 1, xTr, yTr, xVal, yVal), theta, 2);
      // two inner steps, first order
      GradCheck.check(ps -> metaLoss(net, names, ps, null, 0.3, 2, xTr, yTr, xVal, yVal), theta, 1);
      // a learnable learning rate (meta-SGD), as an extra input
      List<Tensor> withLr = new ArrayList<>(theta);
      withLr.add(Tensor.scalar(0.25, DType.F64, CPU));
      GradCheck.check(ps -> metaLoss(net, names, ps.subList(0, names.size()), ps.get(names.size()), 0, 1, xTr, yTr,
          xVal, yVal), withLr, 2);
      // the meta-gradient reaches the module's parameters and differs from the plain gradient
      List<Tensor> params = net.parameters();
      List<Tensor> meta = Autograd.grad(metaLoss(net, names, params, null, 0.3, 1, xTr, yTr, xVal, yVal), params, false);
      List<Tensor> plain = Autograd.grad(Functional.mse(net.forward(xVal), yVal), params, false);
      double diff = 0;
      for (int i = 0; i < meta.size(); i++) {
        assertTrue(Ref.maxAbs(meta.get(i).toDoubleArray()) > 0, names.get(i));
        diff += Ref.maxRelErr(meta.get(i).toDoubleArray(), plain.get(i).toDoubleArray());
      }
      assertTrue(diff > 1e-3, "the inner step changes the gradient");
    }
  }
}
