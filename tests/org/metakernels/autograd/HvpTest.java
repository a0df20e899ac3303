package org.metakernels.autograd;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.metakernels.meta.InnerStep;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/** Autograd.hvp against central differences of the gradient, F64; bad directions refused. */
class HvpTest {
  static final Device CPU = Device.CPU;
  static final DType F64 = DType.F64;

  final Tensor a = Tensor.randn(new long[] {6, 4}, F64, CPU, 1);

  /** Two inputs, one through a fused SGD step (its second-order rule included). */
  Tensor f(List<Tensor> in) {
    Tensor x = in.get(0), b = in.get(1);
    Tensor stepped = InnerStep.sgd(x, x.mul(b.sum()), 0.3);
    return a.matmul(stepped).tanh().square().sum().add(b.pow(3.0).sum()).add(x.mul(b.reshape(4, 1)).sin().sum());
  }

  List<Tensor> gradAt(List<Tensor> in) {
    List<Tensor> leaves = List.of(in.get(0).detach().requiresGrad(true), in.get(1).detach().requiresGrad(true));
    return Autograd.grad(f(leaves), leaves, false);
  }

  @Test
  void matchesCentralDifferencesOfTheGradient() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.randn(new long[] {4, 1}, F64, CPU, 2), b = Tensor.randn(new long[] {4}, F64, CPU, 3);
      Tensor vx = Tensor.randn(new long[] {4, 1}, F64, CPU, 4), vb = Tensor.randn(new long[] {4}, F64, CPU, 5);
      List<Tensor> hv = Autograd.hvp(this::f, List.of(x, b), List.of(vx, vb));
      double h = 1e-5;
      List<Tensor> plus = gradAt(List.of(x.add(vx.mul(h)), b.add(vb.mul(h))));
      List<Tensor> minus = gradAt(List.of(x.sub(vx.mul(h)), b.sub(vb.mul(h))));
      for (int i = 0; i < 2; i++) {
        double[] num = plus.get(i).sub(minus.get(i)).div(2 * h).toDoubleArray(), an = hv.get(i).toDoubleArray();
        for (int j = 0; j < num.length; j++) assertEquals(num[j], an[j], 1e-7 + 1e-6 * Math.abs(num[j]), i + "," + j);
      }
      // the tensor form agrees bitwise with the function form
      Tensor xl = x.detach().requiresGrad(true), bl = b.detach().requiresGrad(true);
      List<Tensor> hv2 = Autograd.hvp(f(List.of(xl, bl)), List.of(xl, bl), List.of(vx, vb), false);
      assertArrayEquals(hv.get(0).toDoubleArray(), hv2.get(0).toDoubleArray());
      assertArrayEquals(hv.get(1).toDoubleArray(), hv2.get(1).toDoubleArray());
    }
  }

  /** With createGraph the product is differentiable: d/dx (vᵀ H(x) v) against differences. */
  @Test
  void hvpWithCreateGraphIsDifferentiable() {
    try (Scope s = Scope.open()) {
      Tensor x0 = Tensor.randn(new long[] {4, 1}, F64, CPU, 6), b = Tensor.randn(new long[] {4}, F64, CPU, 7);
      Tensor v = Tensor.randn(new long[] {4, 1}, F64, CPU, 8), zb = Tensor.zeros(new long[] {4}, F64, CPU);
      Function<Tensor, Tensor> quad = x -> {
        Tensor bl = b.detach().requiresGrad(true);
        return Autograd.hvp(f(List.of(x, bl)), List.of(x, bl), List.of(v, zb), true).get(0).mul(v).sum();
      };
      Tensor x = x0.detach().requiresGrad(true);
      double[] g = Autograd.grad(quad.apply(x), List.of(x), false).get(0).toDoubleArray();
      double h = 1e-5;
      for (int j = 0; j < 4; j++) {
        double[] e = new double[4];
        e[j] = h;
        Tensor d = Tensor.of(e, 4, 1);
        double num = (quad.apply(x0.add(d).requiresGrad(true)).item() - quad.apply(x0.sub(d).requiresGrad(true)).item())
            / (2 * h);
        assertEquals(num, g[j], 1e-6 + 1e-5 * Math.abs(num), "third derivative " + j);
      }
    }
  }

  /**
   * Several outputs whose tapes share nodes (what an HVP's gradients are): each shared edge is
   * counted once, so the shared part runs once with the summed gradient (it was never reached
   * before, when every root counted its own edges).
   */
  @Test
  void gradOfOutputsSharingATape() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.of(new double[] {1, -2, 3}, 3).requiresGrad(true);
      Tensor y = x.square();
      Tensor a = y.sum(), b = y.mul(2.0).sum(), c = a.mul(b); // c's tape contains a's and b's
      List<Tensor> g = Autograd.grad(List.of(a, b, c), List.of(x), null, false);
      // d(a + b + a·b)/dx = 2x + 4x + (2x·b + a·4x), a = 14, b = 28
      double[] got = g.get(0).toDoubleArray(), xs = {1, -2, 3};
      for (int i = 0; i < 3; i++) assertEquals(6 * xs[i] + 2 * xs[i] * 28 + 14 * 4 * xs[i], got[i], 1e-12);
    }
  }

  @Test
  void refusesMismatchedDirections() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.randn(new long[] {4, 1}, F64, CPU, 2).requiresGrad(true);
      Tensor loss = x.square().sum();
      MetakernelsException e = assertThrows(MetakernelsException.class,
          () -> Autograd.hvp(loss, List.of(x), List.of(Tensor.zeros(new long[] {4}, F64, CPU)), false));
      assertTrue(e.getMessage().contains("hvp") && e.getMessage().contains("[4, 1]"), e.getMessage());
      assertThrows(MetakernelsException.class, () -> Autograd.hvp(loss, List.of(x), List.of(), false));
    }
  }
}
