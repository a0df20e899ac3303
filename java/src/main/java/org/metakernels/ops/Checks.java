package org.metakernels.ops;

import java.util.Arrays;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Tensor;

/** Java-side argument checks shared by the ops; messages name the op and the shapes. */
final class Checks {
  private Checks() {}

  public static void floating(String op, Tensor t) {
    t.address(op);
    if (!t.dtype().isFloating())
      throw new MetakernelsException(op + ": expected a floating-point tensor (F32 or F64), got " + t.describe());
  }

  /**
   * Refuses a write through a view that reaches some element by more than one index (an expanded
   * dim, stride 0 with size above 1, or strides that interleave): the result of such a write would
   * depend on thread timing. Sufficient test: with the dims of size above 1 sorted by stride, each
   * stride must be at least the extent (stride times size) of the dims before it; every view this
   * library makes of a dense tensor (narrow, select, permute, transpose, unsqueeze) passes.
   */
  static void noInternalOverlap(String op, Tensor t) {
    if (t.isContiguous()) return;  // the common case (optimizer state, parameters): nothing to sort
    if (t.numel() == 0) return;  // reaches no element at all (e.g. an expanded view with a size-0 dim)
    long[] shape = t.shape(), strides = t.strides();
    int n = 0;
    long[][] dims = new long[shape.length][];
    for (int i = 0; i < shape.length; i++)
      if (shape[i] > 1) dims[n++] = new long[] {Math.abs(strides[i]), shape[i]};
    dims = Arrays.copyOf(dims, n);
    Arrays.sort(dims, (x, y) -> Long.compare(x[0], y[0]));
    long extent = 1;
    for (long[] d : dims) {
      if (d[0] < extent)
        throw new MetakernelsException(op + ": " + t.describe() + " with strides " + Arrays.toString(strides)
            + " reaches some elements by more than one index (an expanded or overlapping view), so an in-place"
            + " write would depend on thread timing; write into a copy (contiguous()) instead");
      extent = d[0] * d[1];
    }
  }

  /** Same dtype and device, both floating point and open. */
  public static void compatible(String op, Tensor a, Tensor b) {
    sameDtypeAndDevice(op, a, b);
    floating(op, a);
  }

  /** Same dtype and device, both open (any dtype). */
  public static void sameDtypeAndDevice(String op, Tensor a, Tensor b) {
    a.address(op);
    b.address(op);
    if (a.dtype() != b.dtype())
      throw new MetakernelsException(op + ": dtype mismatch " + a.describe() + " vs " + b.describe());
    sameDevice(op, a, b);
  }

  public static void sameDevice(String op, Tensor a, Tensor b) {
    if (a.device() != b.device())
      throw new MetakernelsException(op + ": device mismatch " + a.describe() + " vs " + b.describe());
  }

  public static void indices(String op, Tensor idx) {
    idx.address(op);
    if (idx.dtype() != DType.I64)
      throw new MetakernelsException(op + ": indices must be I64, got " + idx.describe());
  }

  public static void rank(String op, Tensor t, int expected) {
    if (t.rank() != expected)
      throw new MetakernelsException(op + ": expected rank " + expected + ", got " + t.describe());
  }

  /** NumPy broadcasting of two shapes. */
  public static long[] broadcast(String op, long[] a, long[] b) {
    int r = Math.max(a.length, b.length);
    long[] out = new long[r];
    for (int i = 0; i < r; i++) {
      long da = i < r - a.length ? 1 : a[i - (r - a.length)];
      long db = i < r - b.length ? 1 : b[i - (r - b.length)];
      if (da != db && da != 1 && db != 1)
        throw new MetakernelsException(op + ": shapes " + Arrays.toString(a) + " and " + Arrays.toString(b)
            + " do not broadcast (dim " + i + ": " + da + " vs " + db + ")");
      out[i] = da == 1 ? db : da;
    }
    return out;
  }

  /** Strides of {@code t} viewed with shape {@code out} (0 along broadcast dims). */
  public static long[] broadcastStrides(Tensor t, long[] out) {
    long[] shape = t.shape();
    long[] strides = t.strides();
    long[] s = new long[out.length];
    int off = out.length - shape.length;
    for (int i = 0; i < out.length; i++) {
      if (i < off) s[i] = 0;
      else s[i] = shape[i - off] == 1 && out[i] != 1 ? 0 : (shape[i - off] == 1 ? 0 : strides[i - off]);
    }
    return s;
  }

  public static String shapes(Tensor... ts) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < ts.length; i++) {
      if (i > 0) sb.append(", ");
      sb.append(ts[i] == null ? "null" : ts[i].describe());
    }
    return sb.toString();
  }
}
