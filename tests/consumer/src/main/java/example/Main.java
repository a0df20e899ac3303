package example;

import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.Attention;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/** The README's embedding example: fused attention forward and backward from plain Java. */
public final class Main {
  public static void main(String[] args) {
    try (Scope scope = Scope.open()) {
      Tensor q = Tensor.randn(new long[] {1, 2, 64, 16}, DType.F64, Device.CPU, 1L).requiresGrad(true);
      Tensor k = Tensor.randn(new long[] {1, 2, 64, 16}, DType.F64, Device.CPU, 2L);
      Tensor v = Tensor.randn(new long[] {1, 2, 64, 16}, DType.F64, Device.CPU, 3L);
      Tensor loss = Attention.softmax(q, k, v, Attention.Options.causal()).square().sum();
      Tensor dq = Autograd.grad(loss, List.of(q), false).get(0);
      // the same gradient from a central difference along one coordinate
      double eps = 1e-6;
      double[] qv = q.toDoubleArray();
      int i = 37;
      qv[i] += eps;
      double up =
          Attention.softmax(Tensor.of(qv, 1, 2, 64, 16), k, v, Attention.Options.causal()).square().sum().item();
      qv[i] -= 2 * eps;
      double down =
          Attention.softmax(Tensor.of(qv, 1, 2, 64, 16), k, v, Attention.Options.causal()).square().sum().item();
      double numeric = (up - down) / (2 * eps), analytic = dq.toDoubleArray()[i];
      System.out.printf(
          "consumer: loss %.6f, dq[%d] %.8f (finite difference %.8f)%n", loss.item(), i, analytic, numeric);
      if (Math.abs(analytic - numeric) > 1e-6 * Math.max(1, Math.abs(numeric))) {
        System.err.println("consumer: the gradient disagrees with the finite difference");
        System.exit(1);
      }
    }
  }
}
