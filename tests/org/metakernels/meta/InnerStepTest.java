package org.metakernels.meta;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.GradCheck;
import org.metakernels.meta.InnerStep.Hyper;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;
import org.metakernels.testing.StepRef;

/**
 * The fused optimizer steps against a naive float64 reference built from tensor ops (torch.optim's
 * single-tensor code, op for op: {@link StepRef}): values in F64 and F32, the fused vector-Jacobian product against
 * autograd through the reference, GradCheck to order 2 (and a third-order check) in every input,
 * the deterministic reductions, and the optimizers of org.metakernels.optim over several steps.
 */
class InnerStepTest {
  static final Device CPU = Device.CPU;
  static final DType F64 = DType.F64, F32 = DType.F32;

  static Tensor[] refSgd(Tensor p, Tensor g, Tensor buf, Tensor lr, Tensor mu, Tensor wd, boolean nesterov) {
    return StepRef.sgd(p, g, buf, lr, mu, wd, nesterov);
  }

  static Tensor[] refAdam(Tensor p, Tensor g, Tensor m, Tensor v, long step, Tensor lr, Tensor b1, Tensor b2,
      Tensor eps, Tensor wd, boolean decoupled) {
    return StepRef.adam(p, g, m, v, step, lr, b1, b2, eps, wd, decoupled);
  }

  // ---- inputs ---------------------------------------------------------------------------------

  static Tensor rnd(long seed, DType t, long... shape) {
    return Tensor.randn(shape, t, CPU, seed);
  }

  static Tensor uni(long seed, double lo, double hi, DType t, long... shape) {
    return Tensor.uniform(shape, lo, hi, t, CPU, seed);
  }

  /** How a hyperparameter is passed: a constant, a rank-0 tensor, a [1, 1] tensor, per element, broadcast. */
  enum Form { CONSTANT, SCALAR, ONE_BY_ONE, PER_ELEMENT, BROADCAST }

  /** A hyperparameter around {@code value} in the given form, and its reference tensor (F64, param-broadcastable). */
  record H(Hyper hyper, Tensor ref) {}

  static H hyper(Form f, double value, double spread, long seed, DType t, long[] shape) {
    return switch (f) {
      case CONSTANT -> new H(Hyper.of(value), Tensor.scalar(value, F64, CPU));
      case SCALAR -> {
        Tensor x = Tensor.scalar(value, t, CPU);
        yield new H(Hyper.of(x), x.to(F64));
      }
      case ONE_BY_ONE -> {
        Tensor x = Tensor.full(new long[] {1, 1}, value, t, CPU);
        yield new H(Hyper.of(x), x.to(F64).reshape());
      }
      case PER_ELEMENT -> {
        Tensor x = uni(seed, value - spread, value + spread, t, shape);
        yield new H(Hyper.of(x), x.to(F64));
      }
      case BROADCAST -> {
        Tensor x = uni(seed, value - spread, value + spread, t, shape[shape.length - 1]);
        yield new H(Hyper.of(x), x.to(F64));
      }
    };
  }

  static final long[][] SHAPES = {{1}, {3, 5}, {2, 1500}, {40000}};

  static double atol(DType t) {
    return t == F64 ? 1e-13 : 2e-6;
  }

  static double rtol(DType t) {
    return t == F64 ? 1e-12 : 2e-5;
  }

  static void close(Tensor got, Tensor want, DType t, String what) {
    assertArrayEquals(want.shape(), got.shape(), what + " shape");
    assertEquals(t, got.dtype(), what + " dtype");
    Ref.assertClose(got.toDoubleArray(), want.toDoubleArray(), atol(t), rtol(t), what);
  }

  // ---- forward values -------------------------------------------------------------------------

  static Stream<Arguments> forms() {
    List<Arguments> a = new ArrayList<>();
    for (DType t : new DType[] {F64, F32})
      for (long[] s : SHAPES)
        for (Form f : Form.values()) {
          if (f == Form.BROADCAST && s.length < 2) continue;
          a.add(Arguments.of(t, s, f));
        }
    return a.stream();
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("forms")
  void sgdMatchesTheReference(DType t, long[] shape, Form form) {
    try (Scope s = Scope.open()) {
      Tensor p = rnd(1, t, shape), g = rnd(2, t, shape);
      H lr = hyper(form, 0.1, 0.05, 3, t, shape), wd = hyper(form, 0.01, 0.01, 4, t, shape);
      Tensor got = InnerStep.sgd(p, g, new InnerStep.Sgd(lr.hyper(), wd.hyper()));
      Tensor want = refSgd(p.to(F64), g.to(F64), null, lr.ref(), null, wd.ref(), false)[0];
      close(got, want, t, "sgd p'");
    }
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("forms")
  void momentumMatchesTheReference(DType t, long[] shape, Form form) {
    try (Scope s = Scope.open()) {
      for (boolean nesterov : new boolean[] {false, true}) {
        Tensor p = rnd(1, t, shape), g = rnd(2, t, shape), b = rnd(3, t, shape);
        H lr = hyper(form, 0.1, 0.05, 4, t, shape), mu = hyper(form, 0.9, 0.05, 5, t, shape);
        H wd = hyper(form, 0.01, 0.01, 6, t, shape);
        InnerStep.MomentumResult got = InnerStep.momentum(p, g, b,
            new InnerStep.Momentum(lr.hyper(), mu.hyper(), wd.hyper(), nesterov));
        Tensor[] want = refSgd(p.to(F64), g.to(F64), b.to(F64), lr.ref(), mu.ref(), wd.ref(), nesterov);
        close(got.param(), want[0], t, "momentum p' nesterov=" + nesterov);
        close(got.buffer(), want[1], t, "momentum b' nesterov=" + nesterov);
      }
    }
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("forms")
  void adamMatchesTheReference(DType t, long[] shape, Form form) {
    try (Scope s = Scope.open()) {
      for (boolean decoupled : new boolean[] {false, true})
        for (long step : new long[] {1, 7}) {
          Tensor p = rnd(1, t, shape), g = rnd(2, t, shape), m = rnd(3, t, shape).mul(0.1);
          Tensor v = uni(4, 0.001, 0.01, t, shape);
          H lr = hyper(form, 1e-3, 5e-4, 5, t, shape), wd = hyper(form, 0.01, 0.01, 6, t, shape);
          // beta1, beta2 and eps hold one value: per-element forms fall back to a rank-0 tensor
          Form one = form == Form.PER_ELEMENT || form == Form.BROADCAST ? Form.SCALAR : form;
          H b1 = hyper(one, 0.8, 0, 7, t, shape), b2 = hyper(one, 0.95, 0, 8, t, shape);
          H eps = hyper(one, 1e-3, 0, 9, t, shape);
          InnerStep.AdamResult got = InnerStep.adam(p, g, m, v, step,
              new InnerStep.Adam(lr.hyper(), b1.hyper(), b2.hyper(), eps.hyper(), wd.hyper(), decoupled));
          Tensor[] want = refAdam(p.to(F64), g.to(F64), m.to(F64), v.to(F64), step, lr.ref(), b1.ref(), b2.ref(),
              eps.ref(), wd.ref(), decoupled);
          String what = "adam decoupled=" + decoupled + " t=" + step;
          close(got.param(), want[0], t, what + " p'");
          close(got.m(), want[1], t, what + " m'");
          close(got.v(), want[2], t, what + " v'");
        }
    }
  }

  @Test
  void emptyParametersGiveEmptyResultsAndZeroHyperGradients() {
    try (Scope s = Scope.open()) {
      Tensor p = Tensor.zeros(new long[] {0, 3}, F64, CPU).requiresGrad(true);
      Tensor lr = Tensor.scalar(0.1, F64, CPU).requiresGrad(true);
      Tensor p1 = InnerStep.sgd(p, Tensor.zeros(new long[] {0, 3}, F64, CPU), lr);
      Ref.assertShape(p1, 0, 3);
      Tensor out = p1.sum().add(lr.mul(2.0));  // the sum over no elements adds nothing
      assertEquals(2.0, Autograd.grad(out, List.of(lr), false).get(0).item(), 0.0);
    }
  }

  /** The steps give the in-place optimizers' trajectories (an independent implementation). */
  @Test
  void agreeWithTheInPlaceOptimizersOverFiveSteps() {
    try (Scope s = Scope.open()) {
      long[] shape = {4, 33};
      Tensor[] grads = new Tensor[5];
      for (int i = 0; i < 5; i++) grads[i] = rnd(10 + i, F64, shape);
      Tensor w0 = rnd(1, F64, shape);
      // SGD with momentum and weight decay
      Tensor leaf = w0.copyContiguous().requiresGrad(true);
      Tensor w = w0, buf = Tensor.zeros(shape, F64, CPU);
      try (org.metakernels.optim.SGD opt = new org.metakernels.optim.SGD(List.of(leaf), 0.05, 0.9, 0.01)) {
        for (Tensor g : grads) {
          setGrad(leaf, g);
          opt.step();
          InnerStep.MomentumResult r = InnerStep.momentum(w, g, buf,
              InnerStep.Momentum.lr(0.05).withMomentum(0.9).withWeightDecay(0.01));
          w = r.param();
          buf = r.buffer();
        }
      }
      Ref.assertClose(w.toDoubleArray(), leaf.toDoubleArray(), 1e-13, 1e-12, "momentum vs optim.SGD");
      // Adam with weight decay
      leaf = w0.copyContiguous().requiresGrad(true);
      w = w0;
      Tensor m = Tensor.zeros(shape, F64, CPU), v = Tensor.zeros(shape, F64, CPU);
      try (org.metakernels.optim.Adam opt = new org.metakernels.optim.Adam(List.of(leaf), 1e-2, 0.9, 0.999, 1e-8, 0.01)) {
        for (int i = 0; i < grads.length; i++) {
          setGrad(leaf, grads[i]);
          opt.step();
          InnerStep.AdamResult r = InnerStep.adam(w, grads[i], m, v, i + 1, InnerStep.Adam.lr(1e-2).withWeightDecay(0.01));
          w = r.param();
          m = r.m();
          v = r.v();
        }
      }
      Ref.assertClose(w.toDoubleArray(), leaf.toDoubleArray(), 1e-13, 1e-11, "adam vs optim.Adam");
    }
  }

  private static void setGrad(Tensor leaf, Tensor g) {
    leaf.zeroGrad();
    try (Scope s = Scope.open()) {
      leaf.mul(g).sum().backward();  // d/dleaf of <leaf, g> = g
    }
  }

  // ---- the fused backward against autograd through the reference ------------------------------

  /** Every input of a step as a leaf that requires grad, and the step through the fused op and the reference. */
  record Problem(List<Tensor> inputs, Function<List<Tensor>, Tensor[]> fused, Function<List<Tensor>, Tensor[]> ref) {}

  static Problem sgdProblem(DType t, long[] shape, boolean momentum, boolean nesterov, boolean perElement) {
    List<Tensor> in = new ArrayList<>(List.of(rnd(1, t, shape), rnd(2, t, shape), rnd(3, t, shape),
        perElement ? uni(4, 0.05, 0.15, t, shape) : Tensor.scalar(0.1, t, CPU),
        perElement ? Tensor.scalar(0.8, t, CPU) : uni(5, 0.7, 0.9, t, shape),
        perElement ? uni(6, 0.0, 0.02, t, shape) : Tensor.scalar(0.01, t, CPU)));
    if (!momentum) in.remove(4);
    if (!momentum) in.remove(2);
    Function<List<Tensor>, Tensor[]> fused = x -> momentum
        ? asArray(InnerStep.momentum(x.get(0), x.get(1), x.get(2), new InnerStep.Momentum(Hyper.of(x.get(3)),
            Hyper.of(x.get(4)), Hyper.of(x.get(5)), nesterov)))
        : new Tensor[] {InnerStep.sgd(x.get(0), x.get(1), new InnerStep.Sgd(Hyper.of(x.get(2)), Hyper.of(x.get(3))))};
    Function<List<Tensor>, Tensor[]> ref = x -> momentum
        ? refSgd(x.get(0), x.get(1), x.get(2), x.get(3), x.get(4), x.get(5), nesterov)
        : refSgd(x.get(0), x.get(1), null, x.get(2), null, x.get(3), false);
    return new Problem(in, fused, ref);
  }

  static Problem adamProblem(DType t, long[] shape, long step, boolean decoupled, boolean perElement) {
    List<Tensor> in = List.of(rnd(1, t, shape), rnd(2, t, shape), rnd(3, t, shape).mul(0.1),
        uni(4, 0.05, 0.5, t, shape),
        perElement ? uni(5, 0.005, 0.015, t, shape) : Tensor.scalar(0.01, t, CPU),
        Tensor.scalar(0.8, t, CPU), Tensor.scalar(0.9, t, CPU), Tensor.scalar(0.05, t, CPU),
        perElement ? uni(6, 0.0, 0.1, t, shape) : Tensor.scalar(0.05, t, CPU));
    Function<List<Tensor>, Tensor[]> fused = x -> asArray(InnerStep.adam(x.get(0), x.get(1), x.get(2), x.get(3), step,
        new InnerStep.Adam(Hyper.of(x.get(4)), Hyper.of(x.get(5)), Hyper.of(x.get(6)), Hyper.of(x.get(7)),
            Hyper.of(x.get(8)), decoupled)));
    Function<List<Tensor>, Tensor[]> ref = x -> refAdam(x.get(0), x.get(1), x.get(2), x.get(3), step, x.get(4),
        x.get(5), x.get(6), x.get(7), x.get(8), decoupled);
    return new Problem(in, fused, ref);
  }

  static Tensor[] asArray(InnerStep.MomentumResult r) {
    return new Tensor[] {r.param(), r.buffer()};
  }

  static Tensor[] asArray(InnerStep.AdamResult r) {
    return new Tensor[] {r.param(), r.m(), r.v()};
  }

  static Stream<Arguments> problems() {
    List<Arguments> a = new ArrayList<>();
    for (long[] shape : new long[][] {{7}, {3, 700}}) {
      for (boolean pe : new boolean[] {false, true}) {
        a.add(Arguments.of("sgd " + Arrays.toString(shape) + (pe ? " per-element" : ""), shape, 0, pe));
        a.add(Arguments.of("momentum " + Arrays.toString(shape) + (pe ? " per-element" : ""), shape, 1, pe));
        a.add(Arguments.of("nesterov " + Arrays.toString(shape) + (pe ? " per-element" : ""), shape, 2, pe));
        a.add(Arguments.of("adam t=1 " + Arrays.toString(shape) + (pe ? " per-element" : ""), shape, 3, pe));
        a.add(Arguments.of("adam t=4 " + Arrays.toString(shape) + (pe ? " per-element" : ""), shape, 4, pe));
        a.add(Arguments.of("adamw t=3 " + Arrays.toString(shape) + (pe ? " per-element" : ""), shape, 5, pe));
      }
    }
    return a.stream();
  }

  static Problem problem(int which, DType t, long[] shape, boolean perElement) {
    return switch (which) {
      case 0 -> sgdProblem(t, shape, false, false, perElement);
      case 1 -> sgdProblem(t, shape, true, false, perElement);
      case 2 -> sgdProblem(t, shape, true, true, perElement);
      case 3 -> adamProblem(t, shape, 1, false, perElement);
      case 4 -> adamProblem(t, shape, 4, false, perElement);
      default -> adamProblem(t, shape, 3, true, perElement);
    };
  }

  static List<Tensor> leaves(List<Tensor> xs, DType t) {
    List<Tensor> out = new ArrayList<>();
    for (Tensor x : xs) out.add(x.to(t).copyContiguous().requiresGrad(true));
    return out;
  }

  /** Σ_k ⟨out_k, r_k⟩ for seeded r_k (only the outputs in {@code use}). */
  static Tensor weighted(Tensor[] outs, boolean[] use) {
    Tensor s = null;
    for (int k = 0; k < outs.length; k++) {
      if (!use[k]) continue;
      Tensor r = Tensor.randn(outs[k].shape(), outs[k].dtype(), CPU, 100 + k);
      Tensor term = outs[k].mul(r).sum();
      s = s == null ? term : s.add(term);
    }
    return s;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("problems")
  void fusedBackwardMatchesAutogradThroughTheReference(String name, long[] shape, int which, boolean perElement) {
    try (Scope s = Scope.open()) {
      for (DType t : new DType[] {F64, F32}) {
        Problem pr = problem(which, F64, shape, perElement);
        int outs = pr.ref().apply(pr.inputs()).length;
        // all outputs used, then only p' (the other cotangents absent)
        for (boolean onlyParam : new boolean[] {false, true}) {
          boolean[] use = new boolean[outs];
          Arrays.fill(use, !onlyParam);
          use[0] = true;
          List<Tensor> xf = leaves(pr.inputs(), t), xr = leaves(pr.inputs(), F64);
          List<Tensor> gf = Autograd.grad(weighted(pr.fused().apply(xf), use), xf, false);
          List<Tensor> gr = Autograd.grad(weighted(pr.ref().apply(xr), use), xr, false);
          for (int i = 0; i < gf.size(); i++) {
            double[] want = gr.get(i).toDoubleArray();
            // F32: relative to the largest gradient (sums of many float terms)
            double tol = t == F64 ? 1e-11 : 2e-5 * Math.max(1.0, Ref.maxAbs(want));
            assertArrayEquals(xf.get(i).shape(), gf.get(i).shape(), name + " grad " + i + " shape");
            Ref.assertClose(gf.get(i).toDoubleArray(), want, tol, t == F64 ? 1e-10 : 1e-4,
                name + " " + t + (onlyParam ? " (p' only)" : "") + " grad of input " + i);
          }
        }
      }
    }
  }

  // ---- GradCheck, orders 1 and 2, every input ---------------------------------------------------

  @ParameterizedTest(name = "{0}")
  @MethodSource("problems")
  void gradCheckOrderTwo(String name, long[] shape, int which, boolean perElement) {
    if (shape.length > 1) return;  // finite differences on the small shape only
    try (Scope s = Scope.open()) {
      Problem pr = problem(which, F64, shape, perElement);
      List<GradCheck.Comparison> cs = GradCheck.check(x -> Tensor.stack(List.of(pr.fused().apply(x)), 0), pr.inputs(),
          2, GradCheck.Options.defaults().withTolerance(1e-7, 1e-5));
      assertEquals(6, cs.size(), name);
      // the second-order comparisons are not all trivially zero
      assertTrue(cs.stream().anyMatch(c -> c.order() == 2 && Math.abs(c.numeric()) > 1e-3), name + ": " + cs);
    }
  }

  /** Third derivatives: the backward of the backward is itself differentiable (composite ops). */
  @ParameterizedTest(name = "{0}")
  @MethodSource("problems")
  void thirdOrderMatchesFiniteDifferences(String name, long[] shape, int which, boolean perElement) {
    if (shape.length > 1 || perElement) return;
    try (Scope s = Scope.open()) {
      Problem pr = problem(which, F64, shape, perElement);
      List<Tensor> x = leaves(pr.inputs(), F64);
      List<Tensor> u = directions(x, 200), w = directions(x, 300), v = directions(x, 400);
      Function<List<Tensor>, Tensor> third = xs -> {
        Tensor l = weighted(pr.fused().apply(xs), all(pr, xs));
        Tensor s1 = dot(Autograd.grad(List.of(l), xs, null, true), u);
        return dot(Autograd.grad(List.of(s1), xs, null, true), w);
      };
      double analytic = dot(Autograd.grad(List.of(third.apply(x)), x, null, false), v).item();
      double h = 1e-5;
      double numeric = (eval(third, shift(x, v, h)) - eval(third, shift(x, v, -h))) / (2 * h);
      assertEquals(numeric, analytic, 1e-6 + 1e-5 * Math.abs(numeric), name + " third order");
    }
  }

  static boolean[] all(Problem pr, List<Tensor> xs) {
    boolean[] b = new boolean[pr.ref().apply(xs).length];
    Arrays.fill(b, true);
    return b;
  }

  static List<Tensor> directions(List<Tensor> x, long seed) {
    List<Tensor> out = new ArrayList<>();
    for (int i = 0; i < x.size(); i++) out.add(Tensor.randn(x.get(i).shape(), F64, CPU, seed + i));
    return out;
  }

  static Tensor dot(List<Tensor> a, List<Tensor> b) {
    Tensor s = null;
    for (int i = 0; i < a.size(); i++) {
      Tensor t = a.get(i).mul(b.get(i)).sum();
      s = s == null ? t : s.add(t);
    }
    return s;
  }

  static List<Tensor> shift(List<Tensor> x, List<Tensor> v, double h) {
    List<Tensor> out = new ArrayList<>();
    try (var ng = Autograd.noGrad()) {
      for (int i = 0; i < x.size(); i++) out.add(x.get(i).add(v.get(i).mul(h)).requiresGrad(true));
    }
    return out;
  }

  static double eval(Function<List<Tensor>, Tensor> f, List<Tensor> x) {
    try (Scope s = Scope.open()) {
      return f.apply(x).item();
    }
  }

  // ---- determinism ------------------------------------------------------------------------------

  /** One-value hyperparameter gradients are reduced in a fixed order: same bits on every run and thread count. */
  @Test
  void hyperGradientsAreBitwiseReproducibleAcrossRunsAndThreads() {
    int before = MkNative.mk_runtime_num_threads();
    try (Scope s = Scope.open()) {
      long[] shape = {3, 40001};
      List<double[]> seen = new ArrayList<>();
      for (int threads : new int[] {1, 2, 2, 3}) {
        Native.check(MkNative.mk_runtime_set_num_threads(threads), "threads");
        for (DType t : new DType[] {F32, F64}) {
          Problem pr = adamProblem(t, shape, 2, false, false);
          List<Tensor> x = leaves(pr.inputs(), t);
          List<Tensor> g = Autograd.grad(weighted(pr.fused().apply(x), new boolean[] {true, true, true}),
              List.of(x.get(4), x.get(5), x.get(6), x.get(7), x.get(8)), false);
          double[] all = new double[g.size()];
          for (int i = 0; i < all.length; i++) all[i] = g.get(i).item();
          seen.add(all);
        }
      }
      for (int i = 2; i < seen.size(); i++) assertArrayEquals(seen.get(i % 2), seen.get(i), 0.0, "run " + i);
    } finally {
      MkNative.mk_runtime_set_num_threads(before);
    }
  }
}
