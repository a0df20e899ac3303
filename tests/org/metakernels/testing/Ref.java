package org.metakernels.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.function.Executable;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Tensor;

/** Comparison helpers: |x − ref| ≤ atol + rtol·|ref| elementwise, reference in float64. */
public final class Ref {
  private Ref() {}

  /** Relative tolerance of a dtype's results against a float64 reference of its own inputs. */
  public static double rtol(DType t) {
    return t == DType.F64 ? 1e-12 : 1e-5;
  }

  /** Absolute floor for values near zero. */
  public static double atol(DType t) {
    return t == DType.F64 ? 1e-13 : 1e-6;
  }

  public static void assertClose(Tensor actual, Tensor expected, double atol, double rtol) {
    assertClose(actual.toDoubleArray(), expected.toDoubleArray(), atol, rtol, "");
  }

  /** Shape and values of {@code actual} against the reference {@code expected}. */
  public static void assertClose(Tensor actual, Nd expected, double atol, double rtol) {
    assertArrayEquals(expected.longShape(), actual.shape(),
        () -> "shape " + Arrays.toString(actual.shape()) + " vs expected " + Arrays.toString(expected.shape));
    assertClose(actual.toDoubleArray(), expected.data, atol, rtol, actual.describe());
  }

  /** With the dtype's default tolerances. */
  public static void assertClose(Tensor actual, Nd expected) {
    assertClose(actual, expected, atol(actual.dtype()), rtol(actual.dtype()));
  }

  /**
   * For sums of products: |x − ref| ≤ rtol·(|ref| + scale), where scale holds the sums of the
   * absolute values of the terms (the size of the rounding error).
   */
  public static void assertCloseScaled(Tensor actual, Nd expected, Nd scale, double rtol) {
    assertArrayEquals(expected.longShape(), actual.shape(), "shape");
    double[] a = actual.toDoubleArray();
    for (int i = 0; i < a.length; i++) {
      double tol = rtol * (Math.abs(expected.data[i]) + scale.data[i]) + 1e-300;
      if (!(Math.abs(a[i] - expected.data[i]) <= tol))
        fail(String.format("%s element %d: %.12g vs expected %.12g (tol %.3g)", actual.describe(), i, a[i],
            expected.data[i], tol));
    }
  }

  public static void assertClose(double[] a, double[] e, double atol, double rtol, String what) {
    if (a.length != e.length) fail(what + " length " + a.length + " vs " + e.length);
    for (int i = 0; i < a.length; i++) {
      double tol = atol + rtol * Math.abs(e[i]);
      if (!(Math.abs(a[i] - e[i]) <= tol) && !(Double.isNaN(a[i]) && Double.isNaN(e[i])) && a[i] != e[i])
        fail(String.format("%s element %d: %.12g vs expected %.12g (tol %.3g)", what, i, a[i], e[i], tol));
    }
  }

  public static double maxAbs(double[] a) {
    double m = 0;
    for (double x : a) m = Math.max(m, Math.abs(x));
    return m;
  }

  public static double maxRelErr(double[] a, double[] e) {
    double scale = Math.max(maxAbs(e), 1e-300);
    double m = 0;
    for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - e[i]) / scale);
    return m;
  }

  // ---- rejected calls ----------------------------------------------------------------------

  private static Object snapshot(Tensor t) {
    if (t.isClosed()) return null;
    return t.dtype() == DType.I64 ? (Object) t.toLongArray() : (Object) t.toDoubleArray();
  }

  /**
   * Runs {@code call}, which must throw {@code type} with a message containing every one of
   * {@code fragments}, and checks that {@code inputs} hold the same values afterwards.
   *
   * @return the exception
   */
  public static <T extends Throwable> T rejects(Class<T> type, Executable call, List<Tensor> inputs,
      String... fragments) {
    List<Object> before = new ArrayList<>();
    for (Tensor t : inputs) before.add(snapshot(t));
    T e = assertThrows(type, call);
    String msg = String.valueOf(e.getMessage());
    for (String f : fragments)
      assertTrue(msg.contains(f), () -> "message '" + msg + "' lacks '" + f + "'");
    for (int i = 0; i < inputs.size(); i++) {
      Object b = before.get(i);
      if (b == null) continue;
      Object a = snapshot(inputs.get(i));
      if (b instanceof long[] lb) assertArrayEquals(lb, (long[]) a, "input " + i + " changed by a rejected call");
      else assertArrayEquals((double[]) b, (double[]) a, 0.0, "input " + i + " changed by a rejected call");
    }
    return e;
  }

  public static void assertShape(Tensor t, long... shape) {
    assertArrayEquals(shape, t.shape(), () -> "shape of " + t.describe());
  }

  public static void assertValues(Tensor t, double... values) {
    assertEquals(values.length, t.numel());
    assertArrayEquals(values, t.toDoubleArray(), 0.0);
  }
}
