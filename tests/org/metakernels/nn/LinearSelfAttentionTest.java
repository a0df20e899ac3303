package org.metakernels.nn;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.metakernels.autograd.GradCheck;
import org.metakernels.ops.LinearAttention.FeatureMap;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

class LinearSelfAttentionTest {

  /** e_j + P W_V Σ_{i<ctx} e_i (W_K e_i)ᵀ (W_Q e_j), computed with explicit loops over doubles. */
  static double[] reference(double[] e, int b, int t, int dim, int ctx, double[] wq, double[] wk, double[] wv, double[] p,
      int hd) {
    double[] out = e.clone();
    for (int bb = 0; bb < b; bb++) {
      for (int j = 0; j < t; j++) {
        double[] acc = new double[hd];
        double[] qj = new double[hd];
        for (int a = 0; a < hd; a++) for (int c = 0; c < dim; c++) qj[a] += wq[a * dim + c] * e[(bb * t + j) * dim + c];
        for (int i = 0; i < ctx; i++) {
          double[] ki = new double[hd], vi = new double[hd];
          for (int a = 0; a < hd; a++)
            for (int c = 0; c < dim; c++) {
              ki[a] += wk[a * dim + c] * e[(bb * t + i) * dim + c];
              vi[a] += wv[a * dim + c] * e[(bb * t + i) * dim + c];
            }
          double s = 0;
          for (int a = 0; a < hd; a++) s += ki[a] * qj[a];
          for (int a = 0; a < hd; a++) acc[a] += s * vi[a];
        }
        for (int c = 0; c < dim; c++) {
          double d = 0;
          for (int a = 0; a < hd; a++) d += p[c * hd + a] * acc[a];
          out[(bb * t + j) * dim + c] += d;
        }
      }
    }
    return out;
  }

  @Test
  void forwardMatchesLoopReference() {
    try (Scope s = Scope.open(); LinearSelfAttention l = new LinearSelfAttention(5, 1, 5, 4, true, FeatureMap.IDENTITY, 0.3,
        DType.F64, Device.CPU, 3)) {
      Tensor e = Tensor.randn(new long[] {3, 6, 5}, DType.F64, Device.CPU, 9);
      var ps = l.namedParameters();
      double[] ref = reference(e.toDoubleArray(), 3, 6, 5, 4, ps.get("wq").toDoubleArray(), ps.get("wk").toDoubleArray(),
          ps.get("wv").toDoubleArray(), ps.get("proj").toDoubleArray(), 5);
      Ref.assertClose(l.forward(e).toDoubleArray(), ref, 1e-12, 1e-12, "lsa");
    }
  }

  @Test
  void multiHeadGradCheckOrder2() {
    try (Scope s = Scope.open(); LinearSelfAttention l = new LinearSelfAttention(4, 2, 3, 3, true, FeatureMap.IDENTITY, 0.4,
        DType.F64, Device.CPU, 5)) {
      Tensor e = Tensor.randn(new long[] {2, 5, 4}, DType.F64, Device.CPU, 11);
      var names = List.copyOf(l.namedParameters().keySet());
      List<Tensor> inputs = new java.util.ArrayList<>(l.parameters());
      inputs.add(e);
      GradCheck.check(xs -> {
        Map<String, Tensor> w = new java.util.LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) w.put(names.get(i), xs.get(i));
        return l.forward(xs.get(names.size()), Weights.of(w)).tanh();
      }, inputs, 2);
    }
  }

  @Test
  void rejectsWrongTokenShape() {
    try (Scope s = Scope.open(); LinearSelfAttention l = new LinearSelfAttention(4, 1, 4, 3, true, FeatureMap.IDENTITY, 0.1,
        DType.F64, Device.CPU, 1)) {
      var e = assertThrows(MetakernelsException.class, () -> l.forward(Tensor.zeros(new long[] {2, 5, 3}, DType.F64, Device.CPU)));
      assertTrue(e.getMessage().contains("[2, 5, 3]"), e.getMessage());
      assertThrows(MetakernelsException.class, () -> l.forward(Tensor.zeros(new long[] {2, 2, 4}, DType.F64, Device.CPU)));
    }
  }
}
