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
  void keyLengthsMatchTruncatedKeys() {
    // non-causal cross-attention over padded memories: entry b equals attention to its first L_b
    // tokens; the padding tokens (large, finite) reach neither the output nor the weight gradients
    try (Scope s = Scope.open(); MultiHeadAttention m = new MultiHeadAttention(8, 4, 2, false, DType.F64, Device.CPU, 7)) {
      long[] len = {3, 6, 0};
      Tensor xq = Tensor.randn(new long[] {3, 4, 8}, DType.F64, Device.CPU, 1);
      Tensor mem = Tensor.randn(new long[] {3, 6, 8}, DType.F64, Device.CPU, 2);
      double[] pad = mem.toDoubleArray();
      for (int b = 0; b < 3; b++)
        for (long j = len[b]; j < 6; j++)
          for (int c = 0; c < 8; c++) pad[(int) ((b * 6 + j) * 8 + c)] = 1e6 * (c + 1);
      Tensor xkv = Tensor.of(pad, 3, 6, 8);
      Tensor lengths = Tensor.ofIndices(len, 3);
      Tensor y = m.attend(xq, xkv, lengths, null, Weights.none());
      assertArrayEquals(new long[] {3, 4, 8}, y.shape());
      for (int b = 0; b < 3; b++) {
        Tensor yb = y.narrow(0, b, 1);
        if (len[b] == 0) {  // no keys: the attention output is 0, so is its projection
          Ref.assertClose(yb, Tensor.zeros(new long[] {1, 4, 8}, DType.F64, Device.CPU), 0, 0);
          continue;
        }
        Tensor ref = m.attend(xq.narrow(0, b, 1), xkv.narrow(0, b, 1).narrow(1, 0, len[b]), Weights.none());
        Ref.assertClose(yb, ref, 1e-12, 1e-10);
      }
      var grads = org.metakernels.autograd.Autograd.grad(y.square().sum(), m.parameters(), false);
      for (Tensor g : grads)
        for (double v : g.toDoubleArray()) assertTrue(Math.abs(v) < 1e3, "a padding token reached a weight gradient");
    }
  }

  @Test
  void topLeftCausalSelfAttentionOverRightPaddedSequences() {
    // a top-left causal layer with key lengths: row i < L_b of entry b equals the layer on the
    // first L_b tokens alone (bottom-right alignment would shift the diagonal by L_b - N); the
    // padding (huge, finite) reaches no weight gradient, and the bottom-right layer with the same
    // weights differs on the shorter entries
    try (Scope s = Scope.open();
        MultiHeadAttention m = new MultiHeadAttention(8, 4, 2, true, org.metakernels.ops.Attention.CausalAlignment.TOP_LEFT,
            DType.F64, Device.CPU, 11);
        MultiHeadAttention br = new MultiHeadAttention(8, 4, 2, true, DType.F64, Device.CPU, 11)) {
      long[] len = {7, 4, 1};
      double[] xs = Tensor.randn(new long[] {3, 7, 8}, DType.F64, Device.CPU, 5).toDoubleArray();
      for (int b = 0; b < 3; b++)
        for (long j = len[b]; j < 7; j++)
          for (int c = 0; c < 8; c++) xs[(int) ((b * 7 + j) * 8 + c)] = 1e6 * (c + 1);
      Tensor x = Tensor.of(xs, 3, 7, 8), lengths = Tensor.ofIndices(len, 3);
      Tensor y = m.attend(x, x, lengths, null, Weights.none());
      Tensor yBr = br.attend(x, x, lengths, null, Weights.none());
      for (int b = 0; b < 3; b++) {
        Tensor xb = x.narrow(0, b, 1).narrow(1, 0, len[b]);
        Ref.assertClose(y.narrow(0, b, 1).narrow(1, 0, len[b]), m.forward(xb), 1e-12, 1e-10);
        if (len[b] < 7) assertTrue(yBr.narrow(0, b, 1).narrow(1, 0, len[b]).sub(m.forward(xb)).abs().max().item() > 1e-3);
      }
      Tensor real = Tensor.of(new double[] {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 3, 7, 1);
      var grads = org.metakernels.autograd.Autograd.grad(y.mul(real).square().sum(), m.parameters(), false);
      for (Tensor g : grads)
        for (double v : g.toDoubleArray()) assertTrue(Math.abs(v) < 1e3, "a padding token reached a weight gradient");
    }
  }

  @Test
  void biasAndKeyLengthsToSecondOrder() {
    try (Scope s = Scope.open(); MultiHeadAttention m = new MultiHeadAttention(4, 2, 1, true, DType.F64, Device.CPU, 9)) {
      Tensor x = Tensor.randn(new long[] {2, 3, 4}, DType.F64, Device.CPU, 3);
      Tensor bias = Tensor.randn(new long[] {1, 2, 3, 3}, DType.F64, Device.CPU, 4);
      Tensor lengths = Tensor.ofIndices(new long[] {3, 2}, 2);
      var names = List.copyOf(m.namedParameters().keySet());
      List<Tensor> inputs = new ArrayList<>(m.parameters());
      inputs.add(x);
      inputs.add(bias);
      GradCheck.check(xs -> {
        Map<String, Tensor> w = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) w.put(names.get(i), xs.get(i));
        return m.attend(xs.get(names.size()), xs.get(names.size()), lengths, xs.get(names.size() + 1), Weights.of(w));
      }, inputs, 2);
    }
  }

  @Test
  void rejectsBadMaskShapes() {
    try (Scope s = Scope.open(); MultiHeadAttention m = new MultiHeadAttention(8, 4, 2, false, DType.F64, Device.CPU, 1)) {
      Tensor x = Tensor.randn(new long[] {2, 5, 8}, DType.F64, Device.CPU, 1);
      var e1 = assertThrows(MetakernelsException.class,
          () -> m.attend(x, x, Tensor.ofIndices(new long[] {1, 2, 3}, 3), null, Weights.none()));
      assertTrue(e1.getMessage().contains("MultiHeadAttention") && e1.getMessage().contains("[2]"), e1.getMessage());
      var e2 = assertThrows(MetakernelsException.class,
          () -> m.attend(x, x, null, Tensor.zeros(new long[] {1, 3, 5, 5}, DType.F64, Device.CPU), Weights.none()));
      assertTrue(e2.getMessage().contains("bias") && e2.getMessage().contains("[2 or 1, 4 or 1, 5, 5]"), e2.getMessage());
      var e3 = assertThrows(MetakernelsException.class,
          () -> m.attend(x, x, Tensor.ofIndices(new long[] {1, 9}, 2), null, Weights.none()));
      assertTrue(e3.getMessage().contains("key length"), e3.getMessage());
    }
  }

  @Test
  void rejectsBadConfigurations() {
    assertThrows(MetakernelsException.class, () -> new MultiHeadAttention(10, 4, 4, false, DType.F64, Device.CPU, 1));
    assertThrows(MetakernelsException.class, () -> new MultiHeadAttention(8, 4, 3, false, DType.F64, Device.CPU, 1));
  }
}
