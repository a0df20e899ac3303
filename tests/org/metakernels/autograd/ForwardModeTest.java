package org.metakernels.autograd;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.metakernels.graph.Graph;
import org.metakernels.graph.MessagePassing;
import org.metakernels.graph.Reduce;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Weights;
import org.metakernels.ops.Attention;
import org.metakernels.ops.Functional;
import org.metakernels.ops.LinearAttention;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;

/**
 * Forward mode (jvp) for every row of {@link GradCheckOpsTest}'s table, against central finite
 * differences and against the reverse-mode Jacobian applied to the tangent (vector-Jacobian
 * products with basis vectors), with the fast rules and with the generic rule alone; jvp of jvp;
 * forward-over-reverse Hessian-vector products against reverse over reverse; reverse over
 * forward; bad input.
 */
class ForwardModeTest {
  static final Device CPU = Device.CPU;

  static Stream<GradCheckOpsTest.Case> cases() {
    return GradCheckOpsTest.allCases();
  }

  static Tensor u(Random r, double lo, double hi, int... shape) {
    return Nd.uniform(r, lo, hi, shape).f64();
  }

  static List<Tensor> tangentsFor(List<Tensor> in, long seed) {
    List<Tensor> t = new ArrayList<>();
    for (int i = 0; i < in.size(); i++) t.add(Tensor.randn(in.get(i).shape(), DType.F64, CPU, seed + i));
    return t;
  }

  static double[] eval(Function<List<Tensor>, Tensor> f, List<Tensor> in, List<Tensor> t, double eps) {
    try (Scope s = Scope.open(); GradMode.Guard off = GradMode.set(false)) {
      List<Tensor> x = new ArrayList<>();
      for (int i = 0; i < in.size(); i++) x.add(in.get(i).add(t.get(i).mul(eps)));
      return f.apply(x).toDoubleArray();
    }
  }

  /** J t by reverse mode: one vector-Jacobian product per output element (basis cotangents). */
  static double[] reverseJt(Function<List<Tensor>, Tensor> f, List<Tensor> in, List<Tensor> t) {
    try (Scope s = Scope.open()) {
      List<Tensor> x = new ArrayList<>();
      for (Tensor v : in) x.add(v.detach().requiresGrad(true));
      Tensor y = f.apply(x);
      int m = (int) y.numel();
      double[] out = new double[m];
      for (int j = 0; j < m; j++) {
        double[] e = new double[m];
        e[j] = 1;
        Tensor ej = Tensor.of(e, y.shape());
        List<Tensor> g = Autograd.grad(List.of(y), x, List.of(ej), false);
        double acc = 0;
        for (int i = 0; i < g.size(); i++) acc += dot(g.get(i).toDoubleArray(), t.get(i).toDoubleArray());
        out[j] = acc;
      }
      return out;
    }
  }

  static double dot(double[] a, double[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) s += a[i] * b[i];
    return s;
  }

  static void close(String what, double[] expect, double[] got, double atol, double rtol) {
    assertEquals(expect.length, got.length, what + ": length");
    for (int i = 0; i < expect.length; i++)
      assertTrue(Math.abs(expect[i] - got[i]) <= atol + rtol * Math.abs(expect[i]),
          what + " [" + i + "]: expected " + expect[i] + ", got " + got[i] + " (all expected " + Arrays.toString(expect)
              + ", got " + Arrays.toString(got) + ")");
  }

  static double[] jvpOf(GradCheckOpsTest.Case c, List<Tensor> in, List<Tensor> t, double[] value) {
    Forward.Jvp r = Autograd.jvp(xs -> List.of(c.f().apply(xs)), in, t);
    assertEquals(1, r.tangents().size());
    assertArrayEquals(r.outputs().get(0).shape(), r.tangents().get(0).shape(), c.name());
    if (value != null) close(c.name() + " value", value, r.outputs().get(0).toDoubleArray(), 0, 0);
    return r.tangents().get(0).toDoubleArray();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void jvpMatchesFiniteDifferencesAndReverseMode(GradCheckOpsTest.Case c) {
    try (Scope s = Scope.open()) {
      List<Tensor> in = c.inputs().get();
      List<Tensor> t = tangentsFor(in, c.name().hashCode());
      double[] y = eval(c.f(), in, t, 0);
      double[] jt = jvpOf(c, in, t, y);
      double eps = 1e-6;
      double[] yp = eval(c.f(), in, t, eps), ym = eval(c.f(), in, t, -eps);
      double[] fd = new double[yp.length];
      for (int j = 0; j < fd.length; j++) fd[j] = (yp[j] - ym[j]) / (2 * eps);
      close(c.name() + " vs finite differences", fd, jt, 1e-6, 1e-5);
      close(c.name() + " vs reverse mode", reverseJt(c.f(), in, t), jt, 1e-10, 1e-9);
      assertTrue(Arrays.stream(jt).anyMatch(v -> Math.abs(v) > 1e-6), c.name() + ": the tangent is not vacuous");
      assertFalse(Forward.active(), "no level left open");
    }
  }

  /** Every op on the generic rule (two backward passes per op): the same tangents. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void genericRuleAloneMatchesFastRules(GradCheckOpsTest.Case c) {
    try (Scope s = Scope.open()) {
      List<Tensor> in = c.inputs().get();
      List<Tensor> t = tangentsFor(in, c.name().hashCode());
      double[] fast = jvpOf(c, in, t, null);
      double[] generic;
      Forward.useFallback("*", true);
      try {
        generic = jvpOf(c, in, t, null);
      } finally {
        Forward.useFallback("*", false);
      }
      close(c.name() + " generic vs fast", fast, generic, 1e-11, 1e-9);
    }
  }

  @Test
  void disablingOneFastRuleRunsTheGenericRuleWithTheSameResult() {
    String[] ops = {"tanh", "matmul", "softmax", "mul", "sum", "attention", "permute", "max"};
    try (Scope s = Scope.open()) {
      Random r = new Random(3);
      Tensor q = u(r, -1, 1, 1, 2, 4, 3), k = u(r, -1, 1, 1, 2, 5, 3), v = u(r, -1, 1, 1, 2, 5, 2);
      Tensor w = u(r, -1, 1, 2, 3);
      Function<List<Tensor>, Tensor> f = xs -> {
        Tensor o = Attention.softmax(xs.get(0), xs.get(1), xs.get(2), Attention.Options.causal());
        Tensor h = o.matmul(xs.get(3)).tanh().softmax(-1).mul(o.sum(-1, true));
        return h.permute(0, 1, 3, 2).max(-1, false).values().sum();
      };
      List<Tensor> in = List.of(q, k, v, w);
      List<Tensor> t = tangentsFor(in, 11);
      double fast = Autograd.jvp(xs -> List.of(f.apply(xs)), in, t).tangents().get(0).toDoubleArray()[0];
      for (String op : ops) {
        long before = Forward.fallbackRuns(op);
        Forward.useFallback(op, true);
        double viaGeneric;
        try {
          viaGeneric = Autograd.jvp(xs -> List.of(f.apply(xs)), in, t).tangents().get(0).toDoubleArray()[0];
        } finally {
          Forward.useFallback(op, false);
        }
        assertTrue(Forward.fallbackRuns(op) > before, op + ": the generic rule ran");
        assertEquals(fast, viaGeneric, 1e-12 * Math.max(1, Math.abs(fast)), op);
      }
      double[] fd = new double[1];
      double eps = 1e-6;
      fd[0] = (eval(f, in, t, eps)[0] - eval(f, in, t, -eps)[0]) / (2 * eps);
      close("vs finite differences", fd, new double[] {fast}, 1e-6, 1e-5);
    }
  }

  @Test
  void jvpOfJvpIsTheSecondDirectionalDerivative() {
    try (Scope s = Scope.open()) {
      Random r = new Random(5);
      Tensor x = u(r, -1, 1, 3, 4), w = u(r, -1, 1, 4, 2);
      Tensor sDir = u(r, -1, 1, 3, 4), tDir = u(r, -1, 1, 3, 4);
      Function<Tensor, Tensor> f =
          a -> a.matmul(w).tanh().square().sum().add(a.exp().mul(a).mean().sin()).add(a.softmax(1).log().mul(a).sum());
      // d/dε d/dδ f(x + ε s + δ t) = sᵀ H t; the inner jvp's value is ∇f · t
      Forward.Jvp outer = Autograd.jvp(xs
          -> Autograd.jvp(ys -> List.of(f.apply(ys.get(0))), List.of(xs.get(0)), List.of(tDir)).tangents(),
          List.of(x), List.of(sDir));
      double sHt = outer.tangents().get(0).toDoubleArray()[0];
      Tensor ht = Autograd.hvp(xs -> f.apply(xs.get(0)), List.of(x), List.of(tDir)).get(0);
      assertEquals(dot(sDir.toDoubleArray(), ht.toDoubleArray()), sHt, 1e-12);
      Tensor xg = x.detach().requiresGrad(true);
      double gt = dot(Autograd.grad(f.apply(xg), List.of(xg), false).get(0).toDoubleArray(), tDir.toDoubleArray());
      assertEquals(gt, outer.outputs().get(0).toDoubleArray()[0], 1e-12);
      // the same with the generic rule everywhere (the inner rules' own tangents at the outer level)
      Forward.useFallback("*", true);
      try {
        Forward.Jvp g = Autograd.jvp(xs
            -> Autograd.jvp(ys -> List.of(f.apply(ys.get(0))), List.of(xs.get(0)), List.of(tDir)).tangents(),
            List.of(x), List.of(sDir));
        assertEquals(sHt, g.tangents().get(0).toDoubleArray()[0], 1e-12);
      } finally {
        Forward.useFallback("*", false);
      }
    }
  }

  /**
   * jvp of jvp on every row (a scalar ⟨f(x), w⟩): sᵀ H t, against reverse over reverse. Fused
   * softmax attention has no third-order pass, which the generic rule of its forward needs under
   * an outer level: those rows must fail with that message.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void jvpOfJvpMatchesReverseOverReverse(GradCheckOpsTest.Case c) {
    try (Scope s = Scope.open()) {
      List<Tensor> in = c.inputs().get();
      List<Tensor> t = tangentsFor(in, c.name().hashCode()), sd = tangentsFor(in, c.name().hashCode() + 100);
      Tensor w;
      try (GradMode.Guard off = GradMode.set(false)) {
        w = Tensor.randn(c.f().apply(in).shape(), DType.F64, CPU, 7);
      }
      Function<List<Tensor>, Tensor> loss = xs -> c.f().apply(xs).mul(w).sum();
      Function<List<Tensor>, List<Tensor>> inner = xs -> Autograd.jvp(ys -> List.of(loss.apply(ys)), xs, t).tangents();
      if (c.name().startsWith("attention")) {
        UnsupportedOperationException e =
            assertThrows(UnsupportedOperationException.class, () -> Autograd.jvp(inner, in, sd));
        assertTrue(e.getMessage().contains("third-order"), e.getMessage());
        assertFalse(Forward.active());
        return;
      }
      double sHt = Autograd.jvp(inner, in, sd).tangents().get(0).toDoubleArray()[0];
      List<Tensor> ht = Autograd.hvp(loss, in, t);
      double ref = 0;
      for (int i = 0; i < in.size(); i++) ref += dot(sd.get(i).toDoubleArray(), ht.get(i).toDoubleArray());
      assertEquals(ref, sHt, 1e-10 + 1e-9 * Math.abs(ref), c.name());
    }
  }

  /**
   * grad of jvp on every row (second order): d/dx ⟨J(x) t, w⟩ = d/dx ⟨J(x)ᵀ w, t⟩ and d/dt ⟨J t, w⟩
   * = Jᵀ w, against reverse over reverse. Fused softmax attention records its JVP kernel's tangent
   * with a rule of the backward and double-backward kernels (its generic rule's tangent went through
   * the double-backward node, whose own gradient is third order, and threw).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void gradOfJvpMatchesReverseOverReverse(GradCheckOpsTest.Case c) {
    try (Scope s = Scope.open()) {
      List<Tensor> in = c.inputs().get();
      List<Tensor> x = new ArrayList<>(), t = new ArrayList<>();
      List<Tensor> t0 = tangentsFor(in, c.name().hashCode() + 300);
      for (int i = 0; i < in.size(); i++) {
        x.add(in.get(i).detach().requiresGrad(true));
        t.add(t0.get(i).requiresGrad(true));
      }
      Tensor w;
      try (GradMode.Guard off = GradMode.set(false)) {
        w = Tensor.randn(c.f().apply(in).shape(), DType.F64, CPU, 8);
      }
      Tensor jt = Autograd.jvp(ys -> List.of(c.f().apply(ys)), x, t).tangents().get(0);
      List<Tensor> both = new ArrayList<>(x);
      both.addAll(t);
      List<Tensor> got = Autograd.grad(jt.mul(w).sum(), both, false);
      List<Tensor> g = Autograd.grad(c.f().apply(x).mul(w).sum(), x, true);
      Tensor gt = null;
      for (int i = 0; i < x.size(); i++) {
        Tensor term = g.get(i).mul(t0.get(i)).sum();
        gt = gt == null ? term : gt.add(term);
      }
      List<Tensor> hx = Autograd.grad(gt, x, false);
      for (int i = 0; i < x.size(); i++) {
        close(c.name() + " d/dx input " + i, hx.get(i).toDoubleArray(), got.get(i).toDoubleArray(), 1e-11, 1e-9);
        close(c.name() + " d/dt input " + i, g.get(i).toDoubleArray(), got.get(x.size() + i).toDoubleArray(), 1e-11, 1e-9);
      }
    }
  }

  @Test
  void tangentsFlowWhateverTheGradMode() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.of(new double[] {0.5, -1, 2}, 3), t = Tensor.of(new double[] {1, 2, 3}, 3);
      Forward.Jvp r = Autograd.jvp(xs -> {
        try (GradMode.Guard off = Autograd.noGrad()) {
          return List.of(xs.get(0).exp().mul(xs.get(0)));
        }
      }, List.of(x), List.of(t));
      double[] xv = x.toDoubleArray(), tv = t.toDoubleArray(), got = r.tangents().get(0).toDoubleArray();
      for (int i = 0; i < 3; i++) assertEquals(Math.exp(xv[i]) * (1 + xv[i]) * tv[i], got[i], 1e-14);
      assertFalse(r.tangents().get(0).requiresGrad());
    }
  }

  @Test
  void outputsThatDoNotDependOnThePrimalsGetZeroTangents() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.of(new double[] {1, 2}, 2), c = Tensor.of(new double[] {3, 4, 5}, 3);
      Forward.Jvp r = Autograd.jvp(xs -> List.of(c.exp(), xs.get(0)), List.of(x), List.of(Tensor.onesLike(x)));
      assertArrayEquals(new double[] {0, 0, 0}, r.tangents().get(0).toDoubleArray());
      assertArrayEquals(new double[] {1, 1}, r.tangents().get(1).toDoubleArray());
    }
  }

  // ---- Hessian-vector products: forward over reverse == reverse over reverse ----------------------

  static void sameHvp(Function<List<Tensor>, Tensor> f, List<Tensor> x, List<Tensor> v) {
    List<Tensor> rr = Autograd.hvp(f, x, v);
    List<Tensor> fr = Autograd.hvpForward(f, x, v);
    assertEquals(rr.size(), fr.size());
    boolean nonZero = false;
    for (int i = 0; i < rr.size(); i++) {
      double[] a = rr.get(i).toDoubleArray(), b = fr.get(i).toDoubleArray();
      double scale = 0;
      for (double d : a) scale = Math.max(scale, Math.abs(d));
      nonZero |= scale > 1e-6;
      for (int j = 0; j < a.length; j++)
        assertEquals(a[j], b[j], 1e-10 * Math.max(1, scale), "input " + i + " element " + j);
      assertFalse(fr.get(i).requiresGrad());
    }
    assertTrue(nonZero, "the product is not vacuous");
  }

  @Test
  void hvpForwardEqualsReverseOverReverseOnAnMlpLoss() {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {3, 5, 4, 2}, Activation.TANH, DType.F64, CPU, 3)) {
      Random r = new Random(71);
      Tensor x = u(r, -1, 1, 6, 3), y = u(r, -1, 1, 6, 2);
      List<String> names = new ArrayList<>(net.namedParameters().keySet());
      List<Tensor> params = new ArrayList<>(), dirs = new ArrayList<>();
      for (Tensor p : net.parameters()) {
        params.add(p.detach());
        dirs.add(Tensor.randn(p.shape(), DType.F64, CPU, 100 + dirs.size()));
      }
      long generic = Forward.fallbackRunsTotal();
      sameHvp(ps -> {
        Map<String, Tensor> w = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) w.put(names.get(i), ps.get(i));
        return Functional.mse(net.forward(x, Weights.of(w)), y)
            .add(Functional.crossEntropy(
                net.forward(x, Weights.of(w)), Tensor.ofIndices(new long[] {0, 1, 1, 0, 1, 0}, 6)));
      }, params, dirs);
      // every op of the MLP, the losses and their backward rules has a fast forward rule
      assertEquals(generic, Forward.fallbackRunsTotal());
    }
  }

  @Test
  void hvpForwardEqualsReverseOverReverseOnAnAttentionLoss() {
    try (Scope s = Scope.open()) {
      Random r = new Random(72);
      Tensor q = u(r, -1, 1, 2, 2, 5, 4), k = u(r, -1, 1, 2, 1, 6, 4), v = u(r, -1, 1, 2, 1, 6, 3);
      Tensor bias = u(r, -1, 1, 1, 2, 5, 6);
      Tensor len = Tensor.ofIndices(new long[] {6, 4}, 2);
      List<Tensor> x = List.of(q, k, v, bias);
      List<Tensor> dirs = tangentsFor(x, 200);
      long fwd = Forward.fallbackRuns("attention"), bwd = Forward.fallbackRuns("attention_backward");
      sameHvp(xs
          -> Attention
                 .forward(xs.get(0), xs.get(1), xs.get(2),
                     Attention.Options.defaults().withKeyLengths(len).withBias(xs.get(3)))
                 .out()
                 .tanh()
                 .square()
                 .sum(),
          x, dirs);
      sameHvp(xs
          -> Attention.softmax(xs.get(0), xs.get(1), xs.get(2), Attention.Options.causal()).sin().sum(),
          List.of(q, k, v), dirs.subList(0, 3));
      // both attention passes took their fused forward rules (the JVP kernel; double backward + backward)
      assertEquals(fwd, Forward.fallbackRuns("attention"));
      assertEquals(bwd, Forward.fallbackRuns("attention_backward"));
    }
  }

  @Test
  void hvpForwardEqualsReverseOverReverseOnAGraphLoss() {
    try (Scope s = Scope.open()) {
      Graph g = Graph.fromEdges(GradCheckOpsTest.GRAPH_SRC, GradCheckOpsTest.GRAPH_DST, 6).ownedBy(Scope.current());
      Random r = new Random(73);
      Tensor x = u(r, -1, 1, 6, 3), w = u(r, -1, 1, GradCheckOpsTest.GRAPH_SRC.length), lin = u(r, -1, 1, 3, 3);
      List<Tensor> in = List.of(x, w, lin);
      long generic = Forward.fallbackRunsTotal();
      sameHvp(xs -> {
        Tensor h = MessagePassing.aggregate(g, xs.get(0).matmul(xs.get(2)), xs.get(1), Reduce.SUM).tanh();
        Tensor h2 = MessagePassing.aggregate(g, h, xs.get(1).exp(), Reduce.MEAN);
        return h2.square().sum().add(MessagePassing.sddmm(g, h, xs.get(0)).sin().sum());
      }, in, tangentsFor(in, 300));
      // sum, mean and sddmm (bilinear) and their backward rules (the same kernels) have fast rules
      assertEquals(generic, Forward.fallbackRunsTotal());
    }
  }

  /**
   * The generic rule with 16-bit outputs (linear attention has no fast forward rule): its zero
   * cotangent was made by a scalar multiply, which refuses BF16/F16, so jvp threw where reverse
   * mode worked. Against the same computation in F64 from the same 16-bit values.
   */
  @Test
  void genericRuleHandlesSixteenBitOutputs() {
    for (DType dt : new DType[] {DType.BF16, DType.F16}) {
      try (Scope s = Scope.open()) {
        Random r = new Random(75);
        Tensor q = u(r, -1, 1, 1, 2, 5, 3).to(dt), k = u(r, -1, 1, 1, 2, 5, 3).to(dt), v = u(r, -1, 1, 1, 2, 5, 2).to(dt);
        Tensor tq = u(r, -1, 1, 1, 2, 5, 3).to(dt), tv = u(r, -1, 1, 1, 2, 5, 2).to(dt);
        Function<List<Tensor>, List<Tensor>> f = xs -> List.of(
            LinearAttention.product(xs.get(0), xs.get(1), xs.get(2), LinearAttention.Mask.CAUSAL),
            LinearAttention.momentum(xs.get(2), 0.5, false));
        Tensor tk = Tensor.zerosLike(k);
        Forward.Jvp half = Autograd.jvp(f, List.of(q, k, v), List.of(tq, tk, tv));
        Forward.Jvp wide = Autograd.jvp(f, List.of(q.to(DType.F64), k.to(DType.F64), v.to(DType.F64)),
            List.of(tq.to(DType.F64), tk.to(DType.F64), tv.to(DType.F64)));
        for (int i = 0; i < 2; i++) {
          assertEquals(dt, half.tangents().get(i).dtype());
          double[] a = half.tangents().get(i).toDoubleArray(), b = wide.tangents().get(i).toDoubleArray();
          for (int j = 0; j < a.length; j++) assertEquals(b[j], a[j], 0.05 * Math.max(1, Math.abs(b[j])), dt + " output " + i);
        }
      }
    }
  }

  /**
   * Through the fused GAT aggregation: its backward without createGraph took the unrecorded fused
   * kernel inside a forward level too, which dropped the tangents (hvpForward was all zeros,
   * found by a differential probe, 2026-12-08).
   */
  @Test
  void hvpForwardEqualsReverseOverReverseThroughGat() {
    try (Scope s = Scope.open()) {
      Graph g = Graph.fromEdges(GradCheckOpsTest.GRAPH_SRC, GradCheckOpsTest.GRAPH_DST, 6).ownedBy(Scope.current());
      Random r = new Random(74);
      Tensor x = u(r, -1, 1, 6, 2, 3), ss = u(r, -1, 1, 6, 2), sd = u(r, -1, 1, 6, 2);
      List<Tensor> in = List.of(x, ss, sd);
      sameHvp(xs -> MessagePassing.gatAggregate(g, xs.get(0), xs.get(1), xs.get(2), 0.2).tanh().square().sum(), in,
          tangentsFor(in, 301));
      // and the scores made from x, as GATConv does
      sameHvp(xs -> {
        Tensor h = xs.get(0);
        Tensor a = h.sum(2, false);
        return MessagePassing.gatAggregate(g, h, a, a.mul(0.5), 0.2).sin().sum();
      }, List.of(x), tangentsFor(List.of(x), 302));
    }
  }

  /**
   * Through the fused optimizer steps: forward over reverse runs the steps' backward with tangents
   * (their forward rules: the tangent formulas and the symmetric second-order term).
   */
  @Test
  void hvpForwardEqualsReverseOverReverseThroughFusedSteps() {
    try (Scope s = Scope.open()) {
      Random r = new Random(75);
      Tensor x = u(r, -1, 1, 3, 4), data = u(r, -1, 1, 5, 3);
      List<Tensor> in = List.of(x, u(r, -1, 1, 3, 4), u(r, 0.05, 0.15, 4), u(r, 0.7, 0.9), u(r, -0.1, 0.1, 3, 4),
          u(r, 0.05, 0.5, 3, 4), u(r, 0.8, 0.9));
      long generic = Forward.fallbackRunsTotal();
      sameHvp(xs -> {
        Tensor p = xs.get(0);
        Tensor g = Autograd.grad(data.matmul(p).tanh().square().sum(), List.of(p), true).get(0);
        org.metakernels.meta.InnerStep.MomentumResult mo = org.metakernels.meta.InnerStep.momentum(p, g, xs.get(1),
            org.metakernels.meta.InnerStep.Momentum.lr(xs.get(2)).withMomentum(xs.get(3)).withNesterov(true));
        org.metakernels.meta.InnerStep.AdamResult ad =
            org.metakernels.meta.InnerStep.adam(mo.param(), g.sin(), xs.get(4), xs.get(5), 3,
                org.metakernels.meta.InnerStep.Adam.lr(0.01)
                    .withBetas(xs.get(6), xs.get(6).mul(0.5).add(0.5))
                    .withWeightDecay(0.1)
                    .withDecoupledWeightDecay(true));
        Tensor p2 = org.metakernels.meta.InnerStep.sgd(ad.param(), ad.m().mul(ad.v()), xs.get(2));
        return data.matmul(p2).sin().sum().add(mo.buffer().square().sum()).add(ad.v().sqrt().sum());
      }, in, tangentsFor(in, 400));
      assertEquals(generic, Forward.fallbackRunsTotal(), "the steps and their backward took their fast rules");
    }
  }

  /** The tangents are recorded for reverse mode: the gradient of (∇f · v) is H v. */
  @Test
  void reverseOverForwardIsTheHessianVectorProduct() {
    try (Scope s = Scope.open()) {
      Random r = new Random(74);
      Tensor x = u(r, -1, 1, 3, 4).requiresGrad(true), w = u(r, -1, 1, 4, 4), v = u(r, -1, 1, 3, 4);
      Function<List<Tensor>, Tensor> f = xs
          -> xs.get(0).matmul(w).softmax(1).mul(xs.get(0)).sum().add(xs.get(0).sigmoid().logSoftmax(0).square().mean());
      Tensor gv = Autograd.jvp(xs -> List.of(f.apply(xs)), List.of(x), List.of(v)).tangents().get(0);
      assertTrue(gv.requiresGrad());
      Tensor viaForward = Autograd.grad(gv, List.of(x), false).get(0);
      Tensor viaReverse = Autograd.hvp(f, List.of(x), List.of(v)).get(0);
      close("reverse over forward", viaReverse.toDoubleArray(), viaForward.toDoubleArray(), 1e-12, 1e-10);
      // and forward over reverse with createGraph is differentiable in x: third derivative along v, v
      Tensor hv = Autograd.hvpForward(f, List.of(x), List.of(v), true).get(0);
      assertTrue(hv.requiresGrad());
      Tensor third = Autograd.grad(hv.mul(v).sum(), List.of(x), false).get(0);
      Tensor hvR = Autograd.hvp(f, List.of(x), List.of(v), true).get(0);
      Tensor thirdR = Autograd.grad(hvR.mul(v).sum(), List.of(x), false).get(0);
      close("third order", thirdR.toDoubleArray(), third.toDoubleArray(), 1e-11, 1e-9);
    }
  }

  // ---- bad input -------------------------------------------------------------------------------

  @Test
  void badTangentsThrowNamingTheOpAndShapesAndChangeNothing() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.of(new double[] {1, 2, 3, 4, 5, 6}, 2, 3);
      double[] before = x.toDoubleArray();
      Function<List<Tensor>, List<Tensor>> f = xs -> List.of(xs.get(0).exp());
      MetakernelsException e = assertThrows(MetakernelsException.class,
          () -> Autograd.jvp(f, List.of(x), List.of(Tensor.zeros(new long[] {3, 2}, DType.F64, CPU))));
      assertTrue(
          e.getMessage().contains("jvp") && e.getMessage().contains("[3, 2]") && e.getMessage().contains("[2, 3]"),
          e.getMessage());
      e = assertThrows(MetakernelsException.class,
          () -> Autograd.jvp(f, List.of(x), List.of(Tensor.zeros(new long[] {2, 3}, DType.F32, CPU))));
      assertTrue(e.getMessage().contains("jvp") && e.getMessage().contains("F32"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> Autograd.jvp(f, List.of(x), List.of()));
      assertTrue(e.getMessage().contains("jvp"), e.getMessage());
      Tensor closed = Tensor.zeros(new long[] {2, 3}, DType.F64, CPU);
      closed.close();
      IllegalStateException freed =
          assertThrows(IllegalStateException.class, () -> Autograd.jvp(f, List.of(x), List.of(closed)));
      assertTrue(freed.getMessage().contains("jvp") && freed.getMessage().contains("freed"), freed.getMessage());
      e = assertThrows(MetakernelsException.class,
          ()
              -> Autograd.hvpForward(
                  xs -> xs.get(0).sum(), List.of(x), List.of(Tensor.zeros(new long[] {6}, DType.F64, CPU))));
      assertTrue(e.getMessage().contains("hvpForward") && e.getMessage().contains("[6]"), e.getMessage());
      Tensor idx = Tensor.ofIndices(new long[] {1, 2}, 2);
      e = assertThrows(MetakernelsException.class, () -> Autograd.jvp(f, List.of(idx), List.of(idx)));
      assertTrue(e.getMessage().contains("jvp"), e.getMessage());
      // nothing changed: the values, the flags, no level left open
      assertArrayEquals(before, x.toDoubleArray());
      assertFalse(x.requiresGrad());
      assertFalse(Forward.active());
      // an exception inside f closes the level too
      assertThrows(MetakernelsException.class,
          () -> Autograd.jvp(xs -> List.of(xs.get(0).matmul(xs.get(0))), List.of(x), List.of(Tensor.onesLike(x))));
      assertFalse(Forward.active());
    }
  }

  @Test
  void inPlaceWritesToOrFromATensorWithATangentAreRefused() {
    try (Scope s = Scope.open(); Forward.Level lvl = Forward.enter()) {
      Tensor x = Tensor.of(new double[] {1, 2, 3}, 3), plain = Tensor.of(new double[] {4, 5, 6}, 3);
      Tensor d = lvl.dual(x, Tensor.onesLike(x));
      Tensor y = d.exp();
      MetakernelsException e = assertThrows(MetakernelsException.class, () -> y.addInPlace(plain));
      assertTrue(e.getMessage().contains("tangent"), e.getMessage());
      e = assertThrows(MetakernelsException.class, () -> plain.addInPlace(y));
      assertTrue(e.getMessage().contains("tangent"), e.getMessage());
      assertArrayEquals(new double[] {4, 5, 6}, plain.toDoubleArray());
      assertArrayEquals(new double[] {Math.E, Math.exp(2), Math.exp(3)}, lvl.tangent(y).toDoubleArray(), 1e-15);
    }
  }

  @Test
  void levelsCloseInOrder() {
    try (Scope s = Scope.open()) {
      Forward.Level a = Forward.enter();
      Forward.Level b = Forward.enter();
      assertThrows(IllegalStateException.class, a::close);
      b.close();
      a.close();
      assertFalse(Forward.active());
      assertThrows(IllegalStateException.class,
          () -> a.dual(Tensor.zeros(new long[] {1}, DType.F64, CPU), Tensor.zeros(new long[] {1}, DType.F64, CPU)));
    }
  }
}
