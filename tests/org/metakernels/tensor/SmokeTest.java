package org.metakernels.tensor;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.GradCheck;
import org.metakernels.runtime.Backend;

class SmokeTest {
  @Test
  void basics() {
    System.out.println(Backend.get().describeLine());
    try (Scope s = Scope.open()) {
      Tensor a = Tensor.of(new double[] {1, 2, 3, 4, 5, 6}, 2, 3);
      Tensor b = Tensor.of(new double[] {10, 20, 30}, 3);
      assertArrayEquals(new double[] {11, 22, 33, 14, 25, 36}, a.add(b).toDoubleArray(), 0);
      assertArrayEquals(new double[] {1, 4, 2, 5, 3, 6}, a.transpose(0, 1).contiguous().toDoubleArray(), 0);
      assertEquals(21.0, a.sum().item(), 0);
      assertArrayEquals(new double[] {5, 7, 9}, a.sum(0, false).toDoubleArray(), 0);
      assertArrayEquals(new double[] {6, 15}, a.sum(1, false).toDoubleArray(), 0);
      Tensor m = a.matmul(a.transpose(0, 1));
      assertArrayEquals(new double[] {14, 32, 32, 77}, m.toDoubleArray(), 1e-12);
    }
  }

  @Test
  void gradcheck() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.randn(new long[] {3, 4}, DType.F64, Device.CPU, 1);
      Tensor w = Tensor.randn(new long[] {4, 2}, DType.F64, Device.CPU, 2);
      var res = GradCheck.check(xs -> xs.get(0).matmul(xs.get(1)).tanh().square().softmax(-1), List.of(x, w), 2);
      System.out.println(res);
      Tensor wl = w.copyContiguous().requiresGrad(true);
      Tensor loss = x.matmul(wl).tanh().square().mean();
      Tensor g = Autograd.grad(loss, List.of(wl), true).get(0);
      assertTrue(g.requiresGrad());
    }
  }
}
