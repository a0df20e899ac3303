package org.metakernels.nn;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.GradCheck;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

class MultiHeadAttentionTest {
  @Test
  void matchesPerHeadComputation() {
    try (Scope s = Scope.open(); MultiHeadAttention m = new MultiHeadAttention(8, 4, 2, true, DType.F64, Device.CPU, 3)) {
      Tensor x = Tensor.randn(new long[] {2, 5, 8}, DType.F64, Device.CPU, 1);
      Tensor y = m.forward(x);
      assertArrayEquals(new long[] {2, 5, 8}, y.shape());
      var ps = m.namedParameters();
      // per head with dense ops: softmax(q kᵀ/√2 + causal) v, heads 2g and 2g+1 share kv head g
      Tensor q = x.matmul(ps.get("wq").mT()), k = x.matmul(ps.get("wk").mT()), v = x.matmul(ps.get("wv").mT());
      List<Tensor> outs = new ArrayList<>();
      double[] mask = new double[25];
      for (int i = 0; i < 5; i++) for (int j = 0; j < 5; j++) mask[i * 5 + j] = j <= i ? 0 : Double.NEGATIVE_INFINITY;
      Tensor maskT = Tensor.of(mask, 5, 5);
      for (int h = 0; h < 4; h++) {
        Tensor qh = q.narrow(2, 2L * h, 2), kh = k.narrow(2, 2L * (h / 2), 2), vh = v.narrow(2, 2L * (h / 2), 2);
        outs.add(qh.matmul(kh.mT()).mul(1 / Math.sqrt(2)).add(maskT).softmax(-1).matmul(vh));
      }
      Tensor ref = Tensor.concat(outs, 2).matmul(ps.get("wo").mT());
      Ref.assertClose(y, ref, 1e-12, 1e-10);
    }
  }

  @Test
  void secondDerivativesThroughTheModule() {
    try (Scope s = Scope.open(); MultiHeadAttention m = new MultiHeadAttention(4, 2, 1, false, DType.F64, Device.CPU, 5)) {
      Tensor x = Tensor.randn(new long[] {1, 3, 4}, DType.F64, Device.CPU, 2);
      var names = List.copyOf(m.namedParameters().keySet());
      List<Tensor> inputs = new ArrayList<>(m.parameters());
      inputs.add(x);
      GradCheck.check(xs -> {
        Map<String, Tensor> w = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) w.put(names.get(i), xs.get(i));
        return m.forward(xs.get(names.size()), Weights.of(w));
      }, inputs, 2);
    }
  }

  @Test
  void rejectsBadConfigurations() {
    assertThrows(MetakernelsException.class, () -> new MultiHeadAttention(10, 4, 4, false, DType.F64, Device.CPU, 1));
    assertThrows(MetakernelsException.class, () -> new MultiHeadAttention(8, 4, 3, false, DType.F64, Device.CPU, 1));
  }
}
