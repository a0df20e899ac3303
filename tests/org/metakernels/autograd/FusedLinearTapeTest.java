package org.metakernels.autograd;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;
import org.metakernels.meta.InnerStep;
import org.metakernels.meta.Unroll;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Weights;
import org.metakernels.ops.Functional;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The tape of a MAML meta-gradient with the fused linear layer: UnrollBench's problem (a 4-layer
 * tanh MLP 16-64-64-64-1, 32-point support and query sets, K = 5 SGD steps, F32) through
 * {@code MLP.forward} (fused) and through the same network written in composed ops
 * (matmul, add, tanh). Both must give the same meta-gradient, and the fused one must record far
 * fewer nodes (counted by the tape's creation numbers).
 */
class FusedLinearTapeTest {
  static final long[] SIZES = {16, 64, 64, 64, 1};

  /** The MLP in composed ops over substituted weights (the layout of MLP's parameters). */
  static Tensor composed(Map<String, Tensor> w, Tensor x) {
    Tensor h = x;
    int layers = SIZES.length - 1;
    for (int i = 0; i < layers; i++) {
      h = h.matmul(w.get("layer" + i + ".weight").mT()).add(w.get("layer" + i + ".bias"));
      if (i < layers - 1) h = h.tanh();
    }
    return h;
  }

  static long nodeNumber() {
    try (Scope s = Scope.open()) {
      Tensor t = Tensor.zeros(new long[] {1}, DType.F32, Device.CPU).requiresGrad(true).mul(1.0);
      return t.gradFn().sequence();
    }
  }

  record Run(List<Tensor> metaGradient, long nodes) {}

  static Run metaGradient(MLP net, Tensor xs, Tensor ys, Tensor xq, Tensor yq, int steps,
      BiFunction<Map<String, Tensor>, Tensor, Tensor> forward) {
    long n0 = nodeNumber();
    Unroll.Result r = Unroll.builder()
                          .initialWeights(net.namedParameters())
                          .metaParameters(net.namedParameters())
                          .innerLoss((w, step, m) -> Functional.mse(forward.apply(w, xs), ys))
                          .outerLoss((w, m) -> Functional.mse(forward.apply(w, xq), yq))
                          .sgd(InnerStep.Sgd.lr(0.01))
                          .steps(steps)
                          .run();
    long nodes = nodeNumber() - n0 - 1;
    return new Run(new ArrayList<>(r.metaGradients().values()), nodes);
  }

  @Test
  void fusedMetaGradientEqualsComposedWithFarFewerNodes() {
    try (Scope s = Scope.open(); MLP net = new MLP(SIZES, Activation.TANH, DType.F32, Device.CPU, 3L)) {
      Tensor xs = Tensor.randn(new long[] {32, 16}, DType.F32, Device.CPU, 1L);
      Tensor ys = xs.select(1, 0).sin().reshape(32, 1);
      Tensor xq = Tensor.randn(new long[] {32, 16}, DType.F32, Device.CPU, 2L);
      Tensor yq = xq.select(1, 0).sin().reshape(32, 1);
      for (int steps : new int[] {1, 5}) {
        Run fused = metaGradient(net, xs, ys, xq, yq, steps, (w, x) -> net.forward(x, Weights.of(w)));
        Run comp = metaGradient(net, xs, ys, xq, yq, steps, FusedLinearTapeTest::composed);
        System.out.println(
            "FusedLinearTapeTest K=" + steps + ": " + fused.nodes() + " nodes fused, " + comp.nodes() + " composed");
        for (int i = 0; i < fused.metaGradient().size(); i++) {
          float[] a = fused.metaGradient().get(i).toFloatArray(), b = comp.metaGradient().get(i).toFloatArray();
          for (int j = 0; j < a.length; j++)
            assertEquals(
                b[j], a[j], 1e-5 + 1e-3 * Math.abs(b[j]), "K=" + steps + " meta-gradient " + i + "[" + j + "]");
        }
        // per inner step the forward is 4 nodes instead of 11 and the createGraph backward of the
        // MLP 4 instead of about 30: at least a third fewer nodes in all
        assertTrue(
            fused.nodes() * 3 < comp.nodes() * 2, fused.nodes() + " nodes fused vs " + comp.nodes() + " composed");
      }
    }
  }

  @Test
  void mlpWithGeluStillRunsComposedAndMatches() {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {3, 5, 2}, Activation.GELU, DType.F64, Device.CPU, 9L)) {
      Tensor x = Tensor.uniform(new long[] {4, 3}, -1, 1, DType.F64, Device.CPU, 4);
      Map<String, Tensor> w = new LinkedHashMap<>(net.namedParameters());
      Tensor y = net.forward(x);
      Tensor ref = x.matmul(w.get("layer0.weight").mT())
                       .add(w.get("layer0.bias"))
                       .gelu()
                       .matmul(w.get("layer1.weight").mT())
                       .add(w.get("layer1.bias"));
      assertArrayEquals(ref.toDoubleArray(), y.toDoubleArray(), 1e-12);
    }
  }
}
