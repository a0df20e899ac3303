package org.metakernels.testing;

import static org.junit.jupiter.api.Assertions.fail;

import org.metakernels.tensor.Tensor;

/** Comparison helpers: |x − ref| ≤ atol + rtol·|ref| elementwise, reference in float64. */
public final class Ref {
  private Ref() {}

  public static void assertClose(Tensor actual, Tensor expected, double atol, double rtol) {
    assertClose(actual.toDoubleArray(), expected.toDoubleArray(), atol, rtol, "");
  }

  public static void assertClose(double[] a, double[] e, double atol, double rtol, String what) {
    if (a.length != e.length) fail(what + " length " + a.length + " vs " + e.length);
    for (int i = 0; i < a.length; i++) {
      double tol = atol + rtol * Math.abs(e[i]);
      if (!(Math.abs(a[i] - e[i]) <= tol) && !(Double.isNaN(a[i]) && Double.isNaN(e[i])) && a[i] != e[i])
        fail(String.format("%s element %d: %.10g vs expected %.10g (tol %.3g)", what, i, a[i], e[i], tol));
    }
  }

  public static double maxAbs(double[] a) {
    double m = 0;
    for (double x : a) m = Math.max(m, Math.abs(x));
    return m;
  }
}
