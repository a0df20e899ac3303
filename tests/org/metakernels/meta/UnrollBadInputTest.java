package org.metakernels.meta;

import static org.junit.jupiter.api.Assertions.*;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Unroll refuses loops that do not fit with a message naming what is wrong, and changes nothing:
 * the caller's tensors keep their values and no native memory is left behind.
 */
class UnrollBadInputTest {
  static final Device CPU = Device.CPU;
  static final DType F64 = DType.F64;

  final Tensor x = Tensor.randn(new long[] {6, 3}, F64, CPU, 1);
  final Tensor y = Tensor.randn(new long[] {6, 1}, F64, CPU, 2);

  Unroll.Builder base(Tensor w0, Tensor lr, Map<String, Tensor> meta) {
    return Unroll.builder()
        .initialWeights(Map.of("w", w0))
        .metaParameters(meta)
        .innerLoss((w, step, m) -> x.matmul(w.get("w")).sub(y).square().mean())
        .outerLoss((w, m) -> x.matmul(w.get("w")).sub(y).square().sum())
        .sgd(InnerStep.Sgd.lr(lr))
        .steps(3);
  }

  /** Runs the failing call in a scope and checks the message, the inputs and the native memory. */
  void refuses(Supplier<Unroll.Builder> b, Tensor w0, String... fragments) {
    double[] before = w0.toDoubleArray();
    long live = MkNative.mk_host_live_bytes();
    MetakernelsException e;
    try (Scope s = Scope.open()) {
      e = assertThrows(MetakernelsException.class, () -> b.get().run());
    }
    for (String f : fragments) assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
    assertArrayEquals(before, w0.toDoubleArray(), "initial weights unchanged");
    assertEquals(live, MkNative.mk_host_live_bytes(), "no native memory left behind: " + e.getMessage());
  }

  @Test
  void refusesBadLoops() {
    try (Scope outer = Scope.open()) {
      Tensor w0 = Tensor.randn(new long[] {3, 1}, F64, CPU, 3).requiresGrad(true);
      Tensor lr = Tensor.scalar(0.1, F64, CPU).requiresGrad(true);
      Map<String, Tensor> meta = new LinkedHashMap<>();
      meta.put("w0", w0);
      meta.put("lr", lr);
      refuses(() -> base(w0, lr, meta).steps(0), w0, "Unroll", "steps K = 0");
      // a meta-parameter nothing uses
      Tensor unused = Tensor.zeros(new long[] {4}, F64, CPU).requiresGrad(true);
      Map<String, Tensor> withUnused = new LinkedHashMap<>(meta);
      withUnused.put("temperature", unused);
      for (Unroll.Memory m : new Unroll.Memory[] {
               Unroll.Memory.keep(), Unroll.Memory.checkpoint(), Unroll.Memory.truncate(1), Unroll.Memory.implicit()})
        refuses(() -> base(w0, lr, withUnused).memory(m), w0, "meta-parameter 'temperature'", "[4]");
      // a meta-parameter that does not require grad
      Map<String, Tensor> frozen = new LinkedHashMap<>(meta);
      frozen.put("frozen", Tensor.zeros(new long[] {2}, F64, CPU));
      refuses(() -> base(w0, lr, frozen), w0, "'frozen'", "does not require grad");
      // a per-weight learning rate that does not fit its weight (mismatched shapes)
      Tensor badLr = Tensor.full(new long[] {2, 1}, 0.1, F64, CPU).requiresGrad(true);
      refuses(
          () -> base(w0, lr, meta).sgdPerWeight(n -> InnerStep.Sgd.lr(badLr)), w0, "InnerStep.sgd", "[2, 1]", "[3, 1]");
      // an inner loss that is not a scalar
      refuses(() -> base(w0, lr, meta).innerLoss((w, st, m) -> x.matmul(w.get("w"))), w0, "inner loss", "[6, 1]");
      // REVERSAL's constraints
      refuses(() -> base(w0, lr, meta).memory(Unroll.Memory.reversal()), w0, "REVERSAL", "momentum");
      refuses(()
                  -> base(w0, lr, meta)
                         .momentum(InnerStep.Momentum.lr(lr).withMomentum(0.9).withNesterov(true))
                         .memory(Unroll.Memory.reversal()),
          w0, "Nesterov");
      refuses(()
                  -> base(w0, lr, meta)
                         .momentum(InnerStep.Momentum.lr(lr).withMomentum(Math.PI / 4))
                         .memory(Unroll.Memory.reversal()),
          w0, "0.785", "n/d");
      // a momentum buffer that outgrows REVERSAL's fixed point (about g / (1 - mu) for a constant
      // gradient g, inside the range each gradient is checked against): a MetakernelsException
      // naming the weight, not Math.addExact's bare ArithmeticException
      Tensor a = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
      Tensor tinyLr = Tensor.scalar(1e-6, F64, CPU).requiresGrad(true);
      refuses(()
                  -> Unroll.builder()
                         .initialWeights(Map.of("a", a))
                         .metaParameters(Map.of("a", a, "lr", tinyLr))
                         .innerLoss((w, k, m) -> w.get("a").mul(2e5).sum())
                         .outerLoss((w, m) -> w.get("a").square().sum())
                         .momentum(InnerStep.Momentum.lr(tinyLr).withMomentum(0.9))
                         .steps(30)
                         .memory(Unroll.Memory.reversal()),
          a, "REVERSAL", "weight 'a'", "fixed-point range", "at step");
      // a closed meta-parameter
      Tensor closed = Tensor.zeros(new long[] {1}, F64, CPU).requiresGrad(true);
      closed.close();
      Map<String, Tensor> withClosed = new LinkedHashMap<>(meta);
      withClosed.put("closed", closed);
      assertThrows(IllegalStateException.class, () -> base(w0, lr, withClosed).run());
      assertThrows(MetakernelsException.class, () -> Unroll.Memory.truncate(0));
      assertThrows(MetakernelsException.class, () -> Unroll.Memory.checkpoint(-1));
    }
  }
}
