package org.metakernels.autograd;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Weights;
import org.metakernels.ops.Functional;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;
import org.metakernels.testing.Ref;

/** The tape: grad and backward, createGraph, gradOutputs, noGrad, in-place safety, Hessian-vector products. */
class AutogradBehaviourTest {
  static final Device CPU = Device.CPU;

  static Tensor leaf(double... v) {
    return Tensor.of(v, v.length).requiresGrad(true);
  }

  @Test
  void gradWithAndWithoutCreateGraph() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(0.5, -1, 2);
      Tensor y = x.pow(3.0).sum();  // dy/dx = 3x², d²y/dx² = 6x
      Tensor g0 = Autograd.grad(y, List.of(x), false).get(0);
      Ref.assertValues(g0, 0.75, 3, 12);
      assertFalse(g0.requiresGrad(), "without createGraph the gradient is a constant");
      assertNull(g0.gradFn());
      Tensor g1 = Autograd.grad(x.pow(3.0).sum(), List.of(x), true).get(0);
      Ref.assertClose(g1.toDoubleArray(), new double[] {0.75, 3, 12}, 1e-15, 1e-15, "g1");
      assertTrue(g1.requiresGrad(), "with createGraph the gradient is on the tape");
      Tensor h = Autograd.grad(g1.sum(), List.of(x), true).get(0);
      Ref.assertClose(h.toDoubleArray(), new double[] {3, -6, 12}, 1e-15, 1e-15, "h");
      Tensor third = Autograd.grad(h.sum(), List.of(x), false).get(0);
      Ref.assertClose(third.toDoubleArray(), new double[] {6, 6, 6}, 1e-15, 1e-15, "third");
      // the graph may be walked again (grad does not consume it)
      Tensor z = x.exp().sum();
      Ref.assertClose(Autograd.grad(z, List.of(x), false).get(0), Autograd.grad(z, List.of(x), false).get(0), 0, 0);
    }
  }

  @Test
  void gradOutputsWeightNonScalarOutputs() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.of(new double[] {1, 2, 3, 4, 5, 6}, 2, 3).requiresGrad(true);
      Tensor y = x.square();
      Tensor v = Tensor.of(new double[] {1, 0, -1, 2, 0.5, 3}, 2, 3);
      Tensor g = Autograd.grad(List.of(y), List.of(x), List.of(v), false).get(0);
      Ref.assertValues(g, 2, 0, -6, 16, 5, 36);
      var e = assertThrows(MetakernelsException.class, () -> Autograd.grad(y, List.of(x), false));
      assertTrue(e.getMessage().contains("not a scalar") && e.getMessage().contains("[2, 3]"), e.getMessage());
      var e2 = assertThrows(MetakernelsException.class,
          () -> Autograd.grad(List.of(y), List.of(x), List.of(Tensor.ones(new long[] {3}, DType.F64, CPU)), false));
      assertTrue(e2.getMessage().contains("[3]") && e2.getMessage().contains("[2, 3]"), e2.getMessage());
      // a null entry in gradOutputs means ones for a scalar output
      List<Tensor> go = new ArrayList<>();
      go.add(null);
      Ref.assertValues(Autograd.grad(List.of(x.sum()), List.of(x), go, false).get(0), 1, 1, 1, 1, 1, 1);
    }
  }

  @Test
  void multipleOutputsAndInputs() {
    try (Scope s = Scope.open()) {
      Tensor a = leaf(1, 2), b = leaf(3, -1);
      Tensor y1 = a.mul(b).sum();      // d/da = b, d/db = a
      Tensor y2 = a.square().sum();    // d/da = 2a
      Tensor y3 = b.mul(a.exp());      // non-scalar, weighted
      Tensor w = Tensor.of(new double[] {0.5, 2}, 2);
      List<Tensor> g = Autograd.grad(List.of(y1, y2, y3), List.of(a, b),
          Arrays.asList(null, Tensor.scalar(2.0, DType.F64, CPU), w), false);
      double e1 = Math.exp(1), e2 = Math.exp(2);
      Ref.assertClose(g.get(0).toDoubleArray(), new double[] {3 + 4 * 1 + 0.5 * 3 * e1, -1 + 4 * 2 + 2 * -1 * e2},
          1e-14, 1e-14, "da");
      Ref.assertClose(g.get(1).toDoubleArray(), new double[] {1 + 0.5 * e1, 2 + 2 * e2}, 1e-14, 1e-14, "db");
      assertThrows(MetakernelsException.class, () -> Autograd.grad(List.of(y1, y2), List.of(a), List.of(w), false));
    }
  }

  @Test
  void inputTheOutputDoesNotDependOnGetsZeros() {
    try (Scope s = Scope.open()) {
      Tensor a = leaf(1, 2), unused = Tensor.ones(new long[] {3, 2}, DType.F64, CPU).requiresGrad(true);
      List<Tensor> g = Autograd.grad(a.square().sum(), List.of(unused, a), false);
      Ref.assertShape(g.get(0), 3, 2);
      Ref.assertValues(g.get(0), 0, 0, 0, 0, 0, 0);
      Ref.assertValues(g.get(1), 2, 4);
      // also when the unused input takes part in another graph
      Tensor other = unused.exp().sum();
      assertNotNull(other);
      Ref.assertValues(Autograd.grad(a.sum(), List.of(unused), false).get(0), 0, 0, 0, 0, 0, 0);
      // and with createGraph the zeros can still be summed and used
      Tensor z = Autograd.grad(a.sum(), List.of(unused), true).get(0);
      assertEquals(0.0, z.sum().item());
      // an input that does not require grad is refused
      Tensor plain = Tensor.ones(new long[] {2}, DType.F64, CPU);
      var e = assertThrows(MetakernelsException.class, () -> Autograd.grad(a.sum(), List.of(plain), false));
      assertTrue(e.getMessage().contains("does not require grad"), e.getMessage());
    }
  }

  /**
   * grad() walks only the tape above the requested tensors (a node is made after every node below
   * it): gradients in intermediate tensors of a long chain must not change when the part below
   * them is skipped, with several requested tensors at different depths, a branch made before
   * them that does not lead to them, and second order through the pruned walk.
   */
  @Test
  void gradInIntermediateTensorsOfALongChain() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(0.3, -0.2, 0.7);
      Tensor side = x.sin();  // made before the chain's nodes: below every requested tensor
      List<Tensor> chain = new ArrayList<>();
      Tensor h = x;
      for (int k = 0; k < 40; k++) {
        h = h.tanh().mul(1.1).add(h.mul(0.1));
        chain.add(h);
      }
      Tensor y = h.square().sum().add(side.mul(chain.get(20)).sum());
      // d y / d chain[39] = 2 h39 ; d y / d chain[20] = side + (path through the chain)
      Tensor a = chain.get(39), b = chain.get(20), c = chain.get(5);
      List<Tensor> g = Autograd.grad(y, List.of(a, b), false);
      Ref.assertClose(g.get(0).toDoubleArray(), a.mul(2).toDoubleArray(), 1e-14, 1e-14, "dy/dh39");
      // the same gradient in b computed from the output of every step: reverse accumulation by hand
      Tensor gb = a.mul(2);
      for (int k = 39; k > 20; k--) {
        Tensor prev = chain.get(k - 1);
        Tensor t = prev.tanh();
        gb = gb.mul(t.square().rsub(1.0).mul(1.1).add(0.1));
      }
      gb = gb.add(side);
      Ref.assertClose(g.get(1).toDoubleArray(), gb.toDoubleArray(), 1e-13, 1e-13, "dy/dh20");
      // a deeper tensor and the leaf together: the walk goes down to the leaf's consumers
      List<Tensor> g2 = Autograd.grad(y, List.of(c, x), false);
      List<Tensor> g3 = Autograd.grad(y, List.of(x), false);
      Ref.assertClose(g2.get(1).toDoubleArray(), g3.get(0).toDoubleArray(), 0, 0, "dy/dx with and without c");
      // second order through a pruned first pass: d/db of <dy/db, v> against central differences
      // of the first-order gradient along v (b is a non-leaf: perturb through a fresh chain)
      Tensor gbCreate = Autograd.grad(y, List.of(b), true).get(0);
      Tensor v = Tensor.of(new double[] {0.2, -0.4, 0.1}, 3);
      Tensor hv = Autograd.grad(gbCreate.mul(v).sum(), List.of(b), false).get(0);
      double eps = 1e-6;
      double[] plus = gradAtB(x, side, 20, v, eps), minus = gradAtB(x, side, 20, v, -eps);
      double[] fd = new double[3];
      for (int i = 0; i < 3; i++) fd[i] = (plus[i] - minus[i]) / (2 * eps);
      Ref.assertClose(hv.toDoubleArray(), fd, 1e-7, 1e-7, "Hessian-vector product in b");
    }
  }

  /** dy/db of the chain above, with b replaced by b + e v (b = step `at`), as plain numbers. */
  private static double[] gradAtB(Tensor x, Tensor side, int at, Tensor v, double e) {
    Tensor h = x.detach();
    for (int k = 0; k <= at; k++) h = h.tanh().mul(1.1).add(h.mul(0.1));
    Tensor b = h.add(v.mul(e)).requiresGrad(true);
    h = b;
    for (int k = at + 1; k < 40; k++) h = h.tanh().mul(1.1).add(h.mul(0.1));
    Tensor y = h.square().sum().add(side.detach().mul(b).sum());
    return Autograd.grad(y, List.of(b), false).get(0).toDoubleArray();
  }

  @Test
  void nonLeafRequestedInputs() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(0.5, -1, 2);
      Tensor h = x.exp();                   // non-leaf
      Tensor y = h.square().sum().add(h.mul(x).sum());  // dy/dh = 2h + x
      List<Tensor> g = Autograd.grad(y, List.of(h, x), false);
      double[] xs = {0.5, -1, 2};
      double[] dh = new double[3], dx = new double[3];
      for (int i = 0; i < 3; i++) {
        double e = Math.exp(xs[i]);
        dh[i] = 2 * e + xs[i];
        dx[i] = 2 * e * e + e * xs[i] + e;  // total derivative through h and directly
      }
      Ref.assertClose(g.get(0).toDoubleArray(), dh, 1e-14, 1e-14, "dy/dh");
      Ref.assertClose(g.get(1).toDoubleArray(), dx, 1e-13, 1e-13, "dy/dx");
      // a view (non-leaf) of x
      Tensor v = x.narrow(0, 1, 2);
      Tensor gv = Autograd.grad(v.square().sum(), List.of(v), false).get(0);
      Ref.assertValues(gv, -2, 4);
      // the output itself
      Tensor sc = x.sum();
      Ref.assertValues(Autograd.grad(sc, List.of(sc), false).get(0), 1);
      // a leaf as the output
      Tensor one = leaf(3);
      Ref.assertValues(Autograd.grad(one.reshape(), List.of(one), false).get(0), 1);
    }
  }

  @Test
  void theSameInputTwiceGetsTheSameGradientTwice() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(1, 2), w = leaf(3, 4);
      Tensor y = x.square().mul(w).sum();
      List<Tensor> g = Autograd.grad(y, List.of(x, w, x), false);
      Ref.assertValues(g.get(0), 6, 16);
      Ref.assertValues(g.get(1), 1, 4);
      Ref.assertValues(g.get(2), 6, 16);
      Tensor h = x.exp();  // a non-leaf, twice
      List<Tensor> gh = Autograd.grad(h.mul(w).sum(), List.of(h, h), false);
      Ref.assertValues(gh.get(0), 3, 4);
      Ref.assertValues(gh.get(1), 3, 4);
    }
  }

  @Test
  void backwardAccumulatesIntoLeafGradients() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(1, 2, 3);
      Tensor w = leaf(0.5, 0.5, -1);
      assertNull(x.grad());
      x.mul(w).sum().backward();
      Ref.assertValues(x.grad(), 0.5, 0.5, -1);
      Ref.assertValues(w.grad(), 1, 2, 3);
      x.mul(w).sum().backward();
      Ref.assertValues(x.grad(), 1, 1, -2);
      x.square().sum().backward();
      Ref.assertValues(x.grad(), 3, 5, 4);
      Ref.assertValues(w.grad(), 2, 4, 6);
      x.zeroGrad();
      assertNull(x.grad());
      x.sum().backward();
      Ref.assertValues(x.grad(), 1, 1, 1);
      // a non-scalar output needs grad(..., gradOutputs)
      assertThrows(MetakernelsException.class, () -> x.square().backward());
    }
  }

  @Test
  void backwardGradientsOutliveTheScopeOfTheirLeaf() {
    Tensor x;
    try (Scope outer = Scope.open()) {
      x = leaf(1, 2);
      try (Scope inner = Scope.open()) {
        x.square().sum().backward();
      }
      Ref.assertValues(x.grad(), 2, 4);  // owned with x, not by the inner scope
    }
    assertTrue(x.isClosed());
    assertTrue(x.grad().isClosed());
  }

  @Test
  void noGradRecordsNothing() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(1, 2, 3);
      Tensor y;
      try (var ng = Autograd.noGrad()) {
        assertFalse(GradMode.isEnabled());
        y = x.exp().mul(x).matmul(x).add(1.0);
        assertFalse(y.requiresGrad());
        assertNull(y.gradFn());
        try (var eg = Autograd.enableGrad()) {
          assertTrue(x.square().requiresGrad(), "enableGrad inside noGrad records again");
        }
        assertFalse(GradMode.isEnabled(), "guards restore the previous mode");
      }
      assertTrue(GradMode.isEnabled());
      assertThrows(MetakernelsException.class, () -> Autograd.grad(y, List.of(x), false));
      // detach cuts the tape too
      Tensor d = x.square().detach();
      assertFalse(d.requiresGrad());
      Ref.assertValues(Autograd.grad(d.mul(x).sum(), List.of(x), false).get(0), 1, 4, 9);
      // nothing requiring grad: nothing recorded
      assertNull(Tensor.ones(new long[] {2}, DType.F64, CPU).exp().gradFn());
    }
  }

  @Test
  void savedTensorModifiedInPlaceBeforeBackwardThrows() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(1, 2, 3);
      Tensor y = x.exp();  // saves its output
      Tensor loss = y.sum();
      try (var ng = Autograd.noGrad()) {
        y.mulInPlace(2.0);
      }
      var e = assertThrows(IllegalStateException.class, () -> loss.backward());
      // (every node guards all its inputs and outputs, so the first node reached, 'sum', reports it)
      assertTrue(e.getMessage().contains("modified in place") && e.getMessage().contains("version 0 -> 1"),
          e.getMessage());
      // an input saved by mul, modified through a view
      Tensor a = leaf(1, 2), b = leaf(3, 4);
      Tensor p = a.mul(b).sum();
      try (var ng = Autograd.noGrad()) {
        b.narrow(0, 0, 1).fillInPlace(0);
      }
      var e2 = assertThrows(IllegalStateException.class, () -> Autograd.grad(p, List.of(a), false));
      assertTrue(e2.getMessage().contains("mul"), e2.getMessage());
      // a saved tensor freed before backward
      Tensor c = leaf(1, 2);
      Tensor q;
      Tensor saved;
      try (Scope inner = Scope.open()) {
        saved = c.exp();
        q = inner.keep(saved.sum());
      }
      var e3 = assertThrows(IllegalStateException.class, () -> Autograd.grad(q, List.of(c), false));
      assertTrue(e3.getMessage().contains("freed"), e3.getMessage());
    }
  }

  @Test
  void inPlaceOpsOnTensorsThatRequireGradAreRefusedWhileRecording() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(1, 2, 3);
      Tensor y = x.mul(2.0);  // non-leaf, requires grad
      Tensor o = Tensor.ones(new long[] {3}, DType.F64, CPU);
      for (Tensor t : List.of(x, y, x.narrow(0, 0, 2).contiguous())) {
        double[] before = t.toDoubleArray();
        List<org.junit.jupiter.api.function.Executable> calls = List.of(
            () -> t.addInPlace(o.narrow(0, 0, (int) t.numel())), () -> t.subInPlace(o.narrow(0, 0, (int) t.numel())),
            () -> t.mulInPlace(o.narrow(0, 0, (int) t.numel())), () -> t.mulInPlace(3.0), () -> t.fillInPlace(0),
            () -> t.copyInPlace(o.narrow(0, 0, (int) t.numel())));
        for (var c : calls) {
          var e = assertThrows(MetakernelsException.class, c);
          assertTrue(e.getMessage().contains("InPlace") && e.getMessage().contains("requires grad"), e.getMessage());
        }
        assertArrayEquals(before, t.toDoubleArray(), 0.0);
      }
      // allowed under noGrad, and on tensors that do not require grad
      try (var ng = Autograd.noGrad()) {
        x.addInPlace(o);
      }
      Ref.assertValues(x, 2, 3, 4);
      Tensor plain = Tensor.zeros(new long[] {3}, DType.F64, CPU);
      plain.addInPlace(o).mulInPlace(5.0);
      Ref.assertValues(plain, 5, 5, 5);
    }
  }

  @Test
  void inPlaceWritesFromASourceThatRequiresGradAreRefusedWhileRecording() {
    // the write is not recorded: buf.select(0, 1).copyInPlace(w) then (buf.select(0, 1) * w).sum()
    // gave dL/dw = w, not PyTorch's 2w (found by a differential probe, 2026-12-08)
    try (Scope s = Scope.open()) {
      Tensor w = leaf(1, 2, 3);
      Tensor buf = Tensor.zeros(new long[] {2, 3}, DType.F64, CPU);
      for (Tensor dst : List.of(buf, buf.select(0, 1), buf.mT().mT())) {
        Tensor src = dst.rank() == 2 ? w.expand(2, 3) : w;
        List<org.junit.jupiter.api.function.Executable> calls = List.of(() -> dst.copyInPlace(src),
            () -> dst.addInPlace(src), () -> dst.subInPlace(src), () -> dst.mulInPlace(src), () -> dst.addInPlace(w.mul(2.0)));
        for (var c : calls) {
          var e = assertThrows(MetakernelsException.class, c);
          assertTrue(e.getMessage().contains("InPlace") && e.getMessage().contains("the source")
              && e.getMessage().contains("requires grad") && e.getMessage().contains(src.describe()), e.getMessage());
          assertArrayEquals(new double[6], buf.toDoubleArray(), 0.0);
          assertFalse(buf.requiresGrad());
        }
      }
      // the values as constants: under noGrad, or from a detached copy
      try (var ng = Autograd.noGrad()) {
        buf.select(0, 0).copyInPlace(w);
      }
      buf.select(0, 1).addInPlace(w.detach());
      Ref.assertValues(buf, 1, 2, 3, 1, 2, 3);
      Tensor l = buf.select(0, 1).mul(w).sum();
      Ref.assertValues(Autograd.grad(l, List.of(w), false).get(0), 1, 2, 3);  // buf holds constants
    }
  }

  @Test
  void tiesSendTheGradientToOneSide() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(1, 3, 3, 2);
      Ref.assertValues(Autograd.grad(x.max(0, false).values(), List.of(x), false).get(0), 0, 1, 0, 0);
      Ref.assertValues(Autograd.grad(x.neg().min(0, false).values(), List.of(x), false).get(0), 0, -1, 0, 0);
      Tensor a = leaf(1, 2), b = leaf(1, 0);
      List<Tensor> g = Autograd.grad(a.maximum(b).sum(), List.of(a, b), false);
      Ref.assertValues(g.get(0), 1, 1);  // a >= b takes a, ties included
      Ref.assertValues(g.get(1), 0, 0);
      List<Tensor> h = Autograd.grad(a.minimum(b).sum(), List.of(a, b), false);
      Ref.assertValues(h.get(0), 1, 0);
      Ref.assertValues(h.get(1), 0, 1);
      // kinks: relu'(0) = 0, |x|'(0) = 0, clamp passes the gradient at the bound
      Tensor z = leaf(0, 0.5);
      Ref.assertValues(Autograd.grad(z.relu().sum(), List.of(z), false).get(0), 0, 1);
      Ref.assertValues(Autograd.grad(z.abs().sum(), List.of(z), false).get(0), 0, 1);
      Ref.assertValues(Autograd.grad(z.clampMin(0.5).sum(), List.of(z), false).get(0), 0, 1);
    }
  }

  @Test
  void diamondsAndReuseAccumulate() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(0.3, -0.7);
      Tensor a = x.tanh();
      Tensor y = a.mul(a).add(a.exp()).add(x.mul(a)).sum();
      double[] g = Autograd.grad(y, List.of(x), false).get(0).toDoubleArray();
      for (int i = 0; i < 2; i++) {
        double xv = new double[] {0.3, -0.7}[i], t = Math.tanh(xv), dt = 1 - t * t;
        double ref = 2 * t * dt + Math.exp(t) * dt + t + xv * dt;
        assertEquals(ref, g[i], 1e-14);
      }
    }
  }

  @Test
  void longTapesDoNotOverflowTheStack() {
    try (Scope s = Scope.open()) {
      Tensor x = leaf(0.5);
      Tensor y = x;
      for (int i = 0; i < 20000; i++) y = y.mul(1.0001).add(1e-6);
      double expect = Math.pow(1.0001, 20000);
      assertEquals(expect, Autograd.grad(y.sum(), List.of(x), false).get(0).item(), expect * 1e-12);
    }
  }

  @Test
  void f32GradientsAgreeWithF64() {
    try (Scope s = Scope.open()) {
      Random r = new Random(81);
      Nd x = Nd.uniform(r, -1, 1, 7, 5).roundToFloat(), w = Nd.uniform(r, -1, 1, 5, 3).roundToFloat();
      Tensor t = Tensor.ofIndices(new long[] {0, 2, 1, 1, 0, 2, 2}, 7);
      double[][] g = new double[2][];
      for (DType d : new DType[] {DType.F64, DType.F32}) {
        Tensor wl = w.tensor(d).requiresGrad(true);
        Tensor h = x.tensor(d).matmul(wl).gelu();
        Tensor loss = Functional.crossEntropy(Functional.layerNorm(h, null, null, 1e-5), t)
            .add(h.softmax(0).logsumexp(1, false).mean());
        Tensor gw = Autograd.grad(loss, List.of(wl), false).get(0);
        assertEquals(d, gw.dtype());
        g[d == DType.F64 ? 0 : 1] = gw.toDoubleArray();
      }
      Ref.assertClose(g[1], g[0], 1e-5, 1e-4, "F32 gradient vs F64");
      var e = assertThrows(MetakernelsException.class,
          () -> GradCheck.check(xs -> xs.get(0).exp(), List.of(Tensor.ones(new long[] {2}, DType.F32, CPU)), 1));
      assertTrue(e.getMessage().contains("F64") && e.getMessage().contains("F32[2]"), e.getMessage());
    }
  }

  /** Flattened gradient of the MLP loss at the given parameters. */
  static double[] lossGrad(MLP net, List<String> names, List<Tensor> params, Tensor x, Tensor t) {
    try (Scope s = Scope.open()) {
      List<Tensor> leaves = new ArrayList<>();
      Map<String, Tensor> w = new LinkedHashMap<>();
      for (int i = 0; i < names.size(); i++) {
        Tensor p = params.get(i).copyContiguous().requiresGrad(true);
        leaves.add(p);
        w.put(names.get(i), p);
      }
      Tensor loss = Functional.mse(net.forward(x, Weights.of(w)), t);
      return flatten(Autograd.grad(loss, leaves, false));
    }
  }

  static double[] flatten(List<Tensor> ts) {
    List<Double> out = new ArrayList<>();
    for (Tensor t : ts) for (double v : t.toDoubleArray()) out.add(v);
    return out.stream().mapToDouble(Double::doubleValue).toArray();
  }

  @Test
  void hessianVectorProductOfMlpMatchesFiniteDifferences() {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {4, 8, 8, 2}, Activation.TANH, DType.F64, CPU, 17)) {
      Random r = new Random(71);
      Tensor x = Nd.uniform(r, -1, 1, 16, 4).f64(), t = Nd.uniform(r, -1, 1, 16, 2).f64();
      List<String> names = new ArrayList<>(net.namedParameters().keySet());
      List<Tensor> params = net.parameters();
      List<Tensor> v = new ArrayList<>();
      for (Tensor p : params) v.add(Tensor.randn(p.shape(), DType.F64, CPU, 100 + v.size()));
      // grad of grad: H v = d/dθ <∇L(θ), v>
      Tensor loss = Functional.mse(net.forward(x), t);
      List<Tensor> g = Autograd.grad(loss, params, true);
      Tensor gv = null;
      for (int i = 0; i < g.size(); i++) {
        Tensor term = g.get(i).mul(v.get(i)).sum();
        gv = gv == null ? term : gv.add(term);
      }
      double[] hvp = flatten(Autograd.grad(gv, params, false));
      // central differences of the gradient along v
      double eps = 1e-5;
      List<Tensor> plus = new ArrayList<>(), minus = new ArrayList<>();
      try (var ng = Autograd.noGrad()) {
        for (int i = 0; i < params.size(); i++) {
          plus.add(params.get(i).add(v.get(i).mul(eps)));
          minus.add(params.get(i).sub(v.get(i).mul(eps)));
        }
      }
      double[] gp = lossGrad(net, names, plus, x, t), gm = lossGrad(net, names, minus, x, t);
      double[] fd = new double[gp.length];
      for (int i = 0; i < fd.length; i++) fd[i] = (gp[i] - gm[i]) / (2 * eps);
      double num = 0, den = 0;
      for (int i = 0; i < fd.length; i++) {
        num += (hvp[i] - fd[i]) * (hvp[i] - fd[i]);
        den += fd[i] * fd[i];
      }
      double rel = Math.sqrt(num / den);
      assertTrue(den > 1e-6, "non-trivial Hessian-vector product");
      assertTrue(rel < 1e-6, "relative error " + rel);
      // the parameters' own gradients are untouched by grad()
      for (Tensor p : params) assertNull(p.grad());
    }
  }
}
