package org.metakernels.meta;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
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
 * Unroll's meta-gradients: every memory policy against the fully stored unroll (KEEP) in F64 to
 * 1e-10 relative, KEEP against central finite differences, TRUNCATE against a hand-written
 * truncated loop. The meta-parameters are the initial weights (MAML), a learning rate and
 * per-example weights of the inner loss.
 */
class UnrollTest {
  static final Device CPU = Device.CPU;
  static final DType F64 = DType.F64;

  /** A regression task, an MLP and the meta-parameters. */
  static final class Task implements AutoCloseable {
    final MLP net = new MLP(new long[] {2, 6, 1}, Activation.TANH, F64, CPU, 5L);
    final Tensor xs = Tensor.uniform(new long[] {10, 2}, -2, 2, F64, CPU, 1);
    final Tensor ys = xs.select(1, 0).sin().add(xs.select(1, 1).mul(0.5)).reshape(10, 1);
    final Tensor xq = Tensor.uniform(new long[] {8, 2}, -2, 2, F64, CPU, 2);
    final Tensor yq = xq.select(1, 0).sin().add(xq.select(1, 1).mul(0.5)).reshape(8, 1);
    final Tensor lr;
    final Tensor dataWeights = Tensor.uniform(new long[] {10, 1}, 0.5, 1.5, F64, CPU, 3).requiresGrad(true);

    Task(double lr0) {
      lr = Tensor.scalar(lr0, F64, CPU).requiresGrad(true);
    }

    Map<String, Tensor> meta(Tensor lrT) {
      Map<String, Tensor> m = new LinkedHashMap<>(net.namedParameters());
      if (lrT.requiresGrad()) m.put("lr", lrT);
      m.put("dataWeights", dataWeights);
      return m;
    }

    Tensor inner(Map<String, Tensor> w, Tensor dw) {
      Tensor r = net.forward(xs, Weights.of(w)).sub(ys);
      return r.square().mul(dw).mean();
    }

    Tensor outer(Map<String, Tensor> w) {
      return Functional.mse(net.forward(xq, Weights.of(w)), yq);
    }

    Unroll.Builder builder(String optimizer, int k, Tensor lrT) {
      Unroll.Builder b = Unroll.builder()
                             .initialWeights(net.namedParameters())
                             .metaParameters(meta(lrT))
                             .innerLoss((w, step, m) -> inner(w, m.get("dataWeights")))
                             .outerLoss((w, m) -> outer(w))
                             .steps(k);
      if (optimizer.equals("sgd"))
        b.sgd(InnerStep.Sgd.lr(lrT).withWeightDecay(0.01));
      else if (optimizer.equals("momentum"))
        b.momentum(InnerStep.Momentum.lr(lrT).withMomentum(0.9));
      else
        b.adam(InnerStep.Adam.lr(lrT).withBetas(0.8, 0.9));
      return b;
    }

    @Override
    public void close() {
      net.close();
    }
  }

  static double lrFor(String optimizer) {
    return optimizer.equals("adam") ? 0.02 : 0.1;
  }

  static void assertClose(Map<String, Tensor> ref, Map<String, Tensor> got, double rtol, String what) {
    assertEquals(ref.keySet(), got.keySet());
    for (String name : ref.keySet()) {
      double[] a = ref.get(name).toDoubleArray(), b = got.get(name).toDoubleArray();
      assertEquals(a.length, b.length);
      double scale = 0;
      for (double x : a) scale = Math.max(scale, Math.abs(x));
      for (int i = 0; i < a.length; i++)
        assertEquals(a[i], b[i], rtol * scale + 1e-300, what + ": " + name + "[" + i + "]");
      assertTrue(scale > 1e-8, what + ": " + name + " meta-gradient is not trivially zero");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"sgd", "momentum", "adam"})
  void everyRecomputingPolicyMatchesKeep(String optimizer) {
    try (Scope s = Scope.open(); Task t = new Task(lrFor(optimizer))) {
      int k = 7;
      Unroll.Result keep = t.builder(optimizer, k, t.lr).memory(Unroll.Memory.keep()).run();
      Unroll.Memory[] policies = {Unroll.Memory.checkpoint(), Unroll.Memory.checkpoint(2), Unroll.Memory.checkpoint(0),
          Unroll.Memory.truncate(k), Unroll.Memory.truncate(100)};
      for (Unroll.Memory m : policies) {
        Unroll.Result r = t.builder(optimizer, k, t.lr).memory(m).run();
        assertEquals(keep.outerLoss(), r.outerLoss(), 1e-13 * Math.abs(keep.outerLoss()), m + " loss");
        assertClose(keep.metaGradients(), r.metaGradients(), 1e-10, optimizer + " " + m);
        assertClose(keep.finalWeights(), r.finalWeights(), 1e-12, optimizer + " " + m + " final weights");
      }
    }
  }

  @Test
  void snapshotBudgetRunsTheOptimalSchedule() {
    // steps run = K (forward) + K (one recorded step per VJP) + the advances of the reversal; the
    // advances are Revolve's optimum, below bisection's where the budget is tight
    try (Scope s = Scope.open(); Task t = new Task(lrFor("sgd"))) {
      int k = 24;
      Unroll.Result keep = t.builder("sgd", k, t.lr).memory(Unroll.Memory.keep()).run();
      for (int slots : new int[] {0, 1, 2, 3, 5, 40}) {
        Unroll.Result r = t.builder("sgd", k, t.lr).memory(Unroll.Memory.checkpoint(slots)).run();
        long advances = Revolve.plan(k, slots).cost(k, slots);
        assertEquals(2L * k + advances, r.stats().stepsRun(), "checkpoint(" + slots + ") steps run");
        assertTrue(advances <= Revolve.bisectionCost(k, slots), "never worse than bisection");
        assertClose(keep.metaGradients(), r.metaGradients(), 1e-10, "checkpoint(" + slots + ")");
      }
      assertTrue(Revolve.plan(k, 1).cost(k, 1) < Revolve.bisectionCost(k, 1), "one slot: fewer advances");
      assertEquals(k - 1, Revolve.plan(k, 40).cost(k, 40), "a slot per step: each step advanced once");
      assertEquals((long) k * (k - 1) / 2, Revolve.plan(k, 0).cost(k, 0), "no slot: quadratic");
    }
  }

  @Test
  void revolveTableMatchesItsRecursion() {
    // the tabulated optimum against a direct search of the recursion, small cases
    for (int l = 1; l <= 30; l++)
      for (int c = 0; c <= 4; c++) assertEquals(search(l, c), Revolve.plan(30, 4).cost(l, c), "T(" + l + ", " + c + ")");
    assertEquals(845, Revolve.plan(100, 1).cost(100, 1));
    assertEquals(1719, Revolve.bisectionCost(100, 1));
    assertNull(Revolve.plan(100_000, 100), "too large to tabulate: the caller bisects");
  }

  private static final Map<Long, Long> SEARCHED = new java.util.HashMap<>();

  private static long search(int l, int c) {
    if (l == 1) return 0;
    if (c == 0) return (long) l * (l - 1) / 2;
    Long known = SEARCHED.get((long) l << 32 | c);
    if (known != null) return known;
    long best = Long.MAX_VALUE;
    for (int m = 1; m < l; m++) best = Math.min(best, m + search(l - m, c - 1) + search(m, c));
    SEARCHED.put((long) l << 32 | c, best);
    return best;
  }

  @Test
  void reversalMatchesKeep() {
    try (Scope s = Scope.open(); Task t = new Task(0.1)) {
      int k = 12;
      Unroll.Result keep = t.builder("momentum", k, t.lr).run();
      Unroll.Result rev = t.builder("momentum", k, t.lr).memory(Unroll.Memory.reversal()).run();
      assertEquals(keep.outerLoss(), rev.outerLoss(), 1e-10 * Math.abs(keep.outerLoss()));
      assertClose(keep.metaGradients(), rev.metaGradients(), 1e-10, "reversal");
      assertTrue(rev.stats().infoBufferBits() > 0, "the momentum's lost bits are kept");
      // 0.15 bits per element and step for mu = 9/10, plus at most one bit per element of rounding
      long elements = 0;
      for (Tensor p : t.net.parameters()) elements += p.numel();
      assertTrue(
          rev.stats().infoBufferBits() <= elements * (k * 0.16 + 2), "info bits " + rev.stats().infoBufferBits());
    }
  }

  /** Per-element learning rates (one tensor per weight) under REVERSAL and CHECKPOINT. */
  @Test
  void perWeightLearningRatesMatchKeep() {
    try (Scope s = Scope.open(); Task t = new Task(0.1)) {
      Map<String, Tensor> lrs = new LinkedHashMap<>();
      int i = 0;
      for (var e : t.net.namedParameters().entrySet())
        lrs.put(e.getKey(), Tensor.uniform(e.getValue().shape(), 0.05, 0.15, F64, CPU, 40 + i++).requiresGrad(true));
      Function<Unroll.Memory, Unroll.Result> run = m
          -> Unroll.builder()
                 .initialWeights(t.net.namedParameters())
                 .metaParameters(lrs)
                 .innerLoss((w, step, mm) -> t.inner(w, t.dataWeights.detach()))
                 .outerLoss((w, mm) -> t.outer(w))
                 .momentumPerWeight(n -> InnerStep.Momentum.lr(lrs.get(n)).withMomentum(0.5))
                 .steps(9)
                 .memory(m)
                 .run();
      Unroll.Result keep = run.apply(Unroll.Memory.keep());
      assertClose(keep.metaGradients(), run.apply(Unroll.Memory.reversal()).metaGradients(), 1e-10, "reversal");
      assertClose(keep.metaGradients(), run.apply(Unroll.Memory.checkpoint()).metaGradients(), 1e-10, "checkpoint");
    }
  }

  /** KEEP against central finite differences of the outer loss, in the learning rate and in a direction of the rest. */
  @ParameterizedTest
  @ValueSource(strings = {"sgd", "momentum", "adam"})
  void keepMatchesFiniteDifferences(String optimizer) {
    try (Scope s = Scope.open(); Task t = new Task(lrFor(optimizer))) {
      int k = 5;
      Unroll.Result r = t.builder(optimizer, k, t.lr).run();
      double lr0 = lrFor(optimizer), h = 1e-6;
      Function<Double, Double> atLr = x -> {
        try (Scope in = Scope.open()) {
          Tensor l = Tensor.scalar(x, F64, CPU).requiresGrad(true);
          return t.builder(optimizer, k, l).run().outerLoss();
        }
      };
      double numeric = (atLr.apply(lr0 + h) - atLr.apply(lr0 - h)) / (2 * h);
      double analytic = r.metaGradients().get("lr").item();
      assertTrue(Math.abs(numeric) > 1e-4, "non-trivial: " + numeric);
      assertEquals(numeric, analytic, 1e-7 + 1e-6 * Math.abs(numeric), optimizer + " d/d lr");
      // a random direction in the per-example weights
      Tensor dir = Tensor.randn(new long[] {10, 1}, F64, CPU, 9);
      Function<Double, Double> atDw = x -> {
        try (Scope in = Scope.open()) {
          Tensor dw = t.dataWeights.detach().add(dir.mul(x));
          return Unroll.builder()
              .initialWeights(t.net.namedParameters())
              .innerLoss((w, st, m) -> t.inner(w, dw))
              .outerLoss((w, m) -> t.outer(w))
              .steps(k)
              .momentum(InnerStep.Momentum.lr(lr0).withMomentum(0.9))
              .run()
              .outerLoss();
        }
      };
      if (optimizer.equals("momentum")) {
        double numDw = (atDw.apply(h) - atDw.apply(-h)) / (2 * h);
        double anDw = r.metaGradients().get("dataWeights").mul(dir).sum().item();
        assertEquals(numDw, anDw, 1e-7 + 1e-6 * Math.abs(numDw), "d/d dataWeights along a direction");
      }
    }
  }

  /** TRUNCATE(T) against a hand-written loop that detaches after K − T steps. */
  @Test
  void truncationMatchesATruncatedReference() {
    try (Scope s = Scope.open(); Task t = new Task(0.1)) {
      int k = 8, tr = 3;
      Unroll.Result r = t.builder("momentum", k, t.lr).memory(Unroll.Memory.truncate(tr)).run();
      // reference
      Map<String, Tensor> w = new LinkedHashMap<>(), buf = new LinkedHashMap<>();
      for (var e : t.net.namedParameters().entrySet()) {
        w.put(e.getKey(), e.getValue().detach());
        buf.put(e.getKey(), Tensor.zerosLike(e.getValue()));
      }
      for (int step = 0; step < k; step++) {
        boolean taped = step >= k - tr;
        if (step == k - tr) { // cut: fresh leaves
          for (String n : w.keySet()) {
            w.put(n, w.get(n).detach().requiresGrad(true));
            buf.put(n, buf.get(n).detach());
          }
        }
        Map<String, Tensor> leaves = new LinkedHashMap<>();
        for (var e : w.entrySet())
          leaves.put(e.getKey(), taped ? e.getValue() : e.getValue().detach().requiresGrad(true));
        List<Tensor> params = new ArrayList<>(leaves.values());
        List<Tensor> g = Autograd.grad(t.inner(leaves, t.dataWeights), params, taped);
        int i = 0;
        for (String n : new ArrayList<>(w.keySet())) {
          InnerStep.MomentumResult mr;
          if (taped) {
            mr = InnerStep.momentum(params.get(i), g.get(i), buf.get(n), InnerStep.Momentum.lr(t.lr).withMomentum(0.9));
          } else {
            try (var ng = Autograd.noGrad()) {
              mr = InnerStep.momentum(
                  params.get(i).detach(), g.get(i), buf.get(n), InnerStep.Momentum.lr(t.lr.detach()).withMomentum(0.9));
            }
          }
          w.put(n, mr.param());
          buf.put(n, mr.buffer());
          i++;
        }
      }
      Tensor outer = t.outer(w);
      List<Tensor> metas = new ArrayList<>(List.of(t.lr, t.dataWeights));
      List<Tensor> ref = Autograd.grad(outer, metas, false);
      assertEquals(outer.item(), r.outerLoss(), 1e-13);
      assertClose(Map.of("lr", ref.get(0), "dataWeights", ref.get(1)),
          Map.of("lr", r.metaGradients().get("lr"), "dataWeights", r.metaGradients().get("dataWeights")), 1e-10,
          "truncate");
      // the initial weights' meta-gradient is cut off
      for (String n : t.net.namedParameters().keySet())
        assertEquals(0.0, r.metaGradients().get(n).abs().sum().item(), 0.0, n);
    }
  }

  /** Gradients are bitwise equal run to run, for every policy. */
  @Test
  void deterministic() {
    try (Scope s = Scope.open(); Task t = new Task(0.1)) {
      for (Unroll.Memory m : new Unroll.Memory[] {Unroll.Memory.checkpoint(), Unroll.Memory.reversal()}) {
        Unroll.Result a = t.builder("momentum", 6, t.lr).memory(m).run();
        Unroll.Result b = t.builder("momentum", 6, t.lr).memory(m).run();
        for (String n : a.metaGradients().keySet())
          assertArrayEquals(a.metaGradients().get(n).toDoubleArray(), b.metaGradients().get(n).toDoubleArray(), m + n);
      }
    }
  }
}
