package org.metakernels.ops;

import static org.metakernels.runtime.Codes.*;

import java.util.Arrays;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Tensor;

/**
 * Reductions over dims (sum, mean, var, max, min, logsumexp), softmax, and the broadcast adjoint
 * {@code sumTo}: the ops behind {@link Tensor}'s reduction methods, on F32 and F64. Sum, max and
 * min run the native [outer, len, inner] kernel, which adds in a fixed order (deterministic, no
 * atomics); mean, var and logsumexp are composed from them.
 *
 * <pre>{@code
 * Tensor s = Reductions.sum(x, new int[] {1}, false);        // x [B, N, D]: [B, D]
 * Reductions.ValuesIndices m = Reductions.max(logits, -1, false);   // [N, C]: values, indices [N]
 * }</pre>
 */
public final class Reductions {
  private Reductions() {}

  /**
   * Values and I64 indices of a max/min over one dim, both of the reduced shape.
   *
   * @param values the extreme values (differentiable)
   * @param indices their positions along the dim (I64)
   */
  public record ValuesIndices(Tensor values, Tensor indices) {}

  // ---- plumbing -----------------------------------------------------------------------------

  static int[] normDims(String op, Tensor x, int[] dims) {
    int r = x.rank();
    if (dims == null) {
      int[] all = new int[r];
      for (int i = 0; i < r; i++) all[i] = i;
      return all;
    }
    boolean[] seen = new boolean[r];
    for (int d : dims) {
      int n = d < 0 ? d + r : d;
      if (n < 0 || n >= r) throw new MetakernelsException(op + ": dim " + d + " out of range for " + x.describe());
      if (seen[n]) throw new MetakernelsException(op + ": dim " + d + " repeated for " + x.describe());
      seen[n] = true;
    }
    int[] out = new int[dims.length];
    int k = 0;
    for (int i = 0; i < r; i++) if (seen[i]) out[k++] = i;
    return out;
  }

  static long[] reducedShape(long[] shape, int[] dims, boolean keepDim) {
    boolean[] red = new boolean[shape.length];
    for (int d : dims) red[d] = true;
    int n = keepDim ? shape.length : shape.length - dims.length;
    long[] out = new long[n];
    for (int i = 0, j = 0; i < shape.length; i++) {
      if (!red[i]) out[j++] = shape[i];
      else if (keepDim) out[j++] = 1;
    }
    return out;
  }

  /**
   * Runs the [outer, len, inner] reduction kernel over {@code dims} (sorted, unique). Makes a
   * permuted contiguous copy only when the reduced dims are not one contiguous block.
   */
  static Tensor reduceRaw(String op, int code, Tensor x, int[] dims, boolean keepDim, Tensor[] indicesOut) {
    Checks.floating(op, x);
    long[] shape = x.shape();
    Tensor src = x;
    int lo = dims.length == 0 ? shape.length : dims[0];
    int hi = dims.length == 0 ? shape.length - 1 : dims[dims.length - 1];
    boolean block = hi - lo + 1 == dims.length;
    if (!block || !x.isContiguous()) {
      int r = shape.length;
      int[] perm = new int[r];
      boolean[] red = new boolean[r];
      for (int d : dims) red[d] = true;
      int k = 0;
      for (int i = 0; i < r; i++) if (!red[i]) perm[k++] = i;
      for (int d : dims) perm[k++] = d;
      src = Views.permuteRaw(x, perm).copyContiguous();
      lo = r - dims.length;
      hi = r - 1;
      shape = src.shape();
    }
    long outer = 1, len = 1, inner = 1;
    for (int i = 0; i < shape.length; i++) {
      if (i < lo) outer *= shape[i];
      else if (i <= hi) len *= shape[i];
      else inner *= shape[i];
    }
    if (dims.length == 0) len = 1;
    Tensor y = Tensor.empty(reducedShape(x.shape(), dims, keepDim), x.dtype(), x.device());
    Tensor idx = indicesOut == null ? null : Tensor.empty(y.shape(), DType.I64, x.device());
    try {
      Native.check(MkNative.mk_dense_reduce_forward(x.device().code, x.dtype().code, code, outer, len, inner,
          src.address(op), y.address(op), idx == null ? 0L : idx.address(op), x.launchStream()),
          () -> op + " " + x.describe() + " over dims " + Arrays.toString(dims));
    } finally {
      if (src != x) src.close();  // the reordered copy: nobody else holds it (outside a scope it leaked)
    }
    if (indicesOut != null) indicesOut[0] = idx;
    return y;
  }

  // ---- sum / mean / var -----------------------------------------------------------------------

  /**
   * Sum over {@code dims}: {@code Reductions.sum(x, new int[] {0, 2}, true)} of [B, N, D] is
   * [1, N, 1]; without keepDim [N].
   *
   * @param x an F32 or F64 tensor
   * @param dims distinct dims (negative: from the end); null for all
   * @param keepDim keep the reduced dims with size 1
   * @return the sum
   */
  public static Tensor sum(Tensor x, int[] dims, boolean keepDim) {
    int[] ds = normDims("sum", x, dims);
    long[] xShape = x.shape();
    Tensor y = reduceRaw("sum", REDUCE_SUM, x, ds, keepDim, null);
    long[] keepShape = reducedShape(xShape, ds, true);
    return Autograd.record("sum", y, new Tensor[] {x}, g -> new Tensor[] {g[0].reshape(keepShape).expand(xShape)},
        t -> new Tensor[] {sum(t[0], ds, keepDim)});
  }

  /**
   * Mean over {@code dims}: {@code Reductions.mean(x, null, false)} of [B, D] is [].
   *
   * @param x an F32 or F64 tensor
   * @param dims distinct dims (negative: from the end); null for all
   * @param keepDim keep the reduced dims with size 1
   * @return the mean
   * @throws MetakernelsException when the reduction is empty
   */
  public static Tensor mean(Tensor x, int[] dims, boolean keepDim) {
    Checks.floating("mean", x);
    int[] ds = normDims("mean", x, dims);
    long n = 1;
    for (int d : ds) n *= x.shape()[d];
    if (n == 0) throw new MetakernelsException("mean: empty reduction over " + x.describe());
    return sum(x, ds, keepDim).mul(1.0 / n);
  }

  /**
   * Variance over one dim: the mean squared deviation, divided by n (or by n − 1 when
   * {@code unbiased}). {@code Reductions.var(x, -1, false, true)} of [B, D] is [B].
   *
   * @param x an F32 or F64 tensor
   * @param dim the dim (negative: from the end)
   * @param keepDim keep it with size 1
   * @param unbiased divide by n − 1
   * @return the variance
   */
  public static Tensor var(Tensor x, int dim, boolean keepDim, boolean unbiased) {
    Checks.floating("var", x);
    int d = x.normDim(dim, "var");
    long n = x.shape()[d];
    if (n - (unbiased ? 1 : 0) <= 0)
      throw new MetakernelsException("var: dim " + dim + " of " + x.describe() + " too short");
    Tensor dev = x.sub(x.mean(d, true));
    double scale = 1.0 / (n - (unbiased ? 1 : 0));
    // F32: the squares summed and scaled in F64, one rounding back (the F32 sum of squares overflowed
    // to inf where the variance itself fits: [1.5e19, -1.5e19, ...] gave inf, PyTorch 2.25e38)
    if (x.dtype() == DType.F32) return dev.to(DType.F64).square().sum(d, keepDim).mul(scale).to(DType.F32);
    return dev.square().sum(d, keepDim).mul(scale);
  }

  /**
   * Sums broadcast dims away so the result has shape {@code target}: the adjoint of expand.
   * {@code Reductions.sumTo(g, new long[] {D})} of [B, N, D] is [D]. BF16/F16 are summed in F32.
   *
   * @param x a floating-point tensor (F32, F64, BF16, F16)
   * @param target a shape that x's is a broadcast of
   * @return the sum (x when the shapes are equal)
   */
  public static Tensor sumTo(Tensor x, long[] target) {
    x.address("sumTo");  // freed and I64 tensors are refused even when the shapes are equal
    if (!x.dtype().isFloatingPoint())
      throw new MetakernelsException("sumTo: expected a floating-point tensor, got " + x.describe());
    long[] shape = x.shape();
    if (Arrays.equals(shape, target)) return x;
    if (x.dtype().isHalf()) return sumTo(x.to(DType.F32), target).to(x.dtype());  // summed in F32
    int lead = shape.length - target.length;
    if (lead < 0) throw new MetakernelsException("sumTo: " + x.describe() + " cannot sum to " + Arrays.toString(target));
    int[] dims = new int[shape.length];
    int k = 0;
    for (int i = 0; i < shape.length; i++) {
      if (i < lead) dims[k++] = i;
      else if (target[i - lead] == 1 && shape[i] != 1) dims[k++] = i;
      else if (target[i - lead] != shape[i])
        throw new MetakernelsException("sumTo: " + x.describe() + " cannot sum to " + Arrays.toString(target));
    }
    Tensor s = k == 0 ? x : sum(x, Arrays.copyOf(dims, k), true);
    return s.reshape(target);
  }

  // ---- max / min ------------------------------------------------------------------------------

  /**
   * Max over one dim with its position: the first maximum, or the first NaN; the gradient flows to
   * that position. {@code Reductions.max(x, 1, false)} of [B, C]: values and indices [B].
   *
   * @param x an F32 or F64 tensor
   * @param dim the dim (negative: from the end); not empty
   * @param keepDim keep it with size 1
   * @return the values and I64 indices
   */
  public static ValuesIndices max(Tensor x, int dim, boolean keepDim) {
    return extreme("max", REDUCE_MAX, x, dim, keepDim);
  }

  /**
   * Min over one dim with its position, as {@link #max}.
   * {@code Reductions.min(x, 0, true)} of [N, D]: values and indices [1, D].
   *
   * @param x an F32 or F64 tensor
   * @param dim the dim (negative: from the end); not empty
   * @param keepDim keep it with size 1
   * @return the values and I64 indices
   */
  public static ValuesIndices min(Tensor x, int dim, boolean keepDim) {
    return extreme("min", REDUCE_MIN, x, dim, keepDim);
  }

  private static ValuesIndices extreme(String op, int code, Tensor x, int dim, boolean keepDim) {
    int d = x.normDim(dim, op);
    if (x.shape()[d] == 0) throw new MetakernelsException(op + ": dim " + dim + " of " + x.describe() + " is empty");
    Tensor[] idx = new Tensor[1];
    Tensor y = reduceRaw(op, code, x, new int[] {d}, keepDim, idx);
    long[] keepShape = reducedShape(x.shape(), new int[] {d}, true);
    Tensor indices = idx[0];
    long[] yShape = y.shape();
    Autograd.record(op, y, new Tensor[] {x}, g -> new Tensor[] {
        Indexing.scatterAdd(Tensor.zerosLike(x), d, indices.reshape(keepShape), g[0].reshape(keepShape))},
        t -> new Tensor[] {Indexing.gather(t[0], d, indices.reshape(keepShape)).reshape(yShape)});
    return new ValuesIndices(y, indices);
  }

  /**
   * log Σ exp(x) over {@code dim}, stable (shifted by the max where it is finite); rows of −∞
   * give −∞, rows holding +∞ give +∞. {@code Reductions.logsumexp(s, -1, true)} of [B, N] is
   * [B, 1].
   *
   * @param x an F32 or F64 tensor
   * @param dim the dim (negative: from the end); not empty
   * @param keepDim keep it with size 1
   * @return the result
   * @throws MetakernelsException when the dim is empty (as for {@link #max})
   */
  public static Tensor logsumexp(Tensor x, int dim, boolean keepDim) {
    Checks.floating("logsumexp", x);
    int d = x.normDim(dim, "logsumexp");
    if (x.shape()[d] == 0)
      throw new MetakernelsException("logsumexp: dim " + dim + " of " + x.describe() + " is empty");
    Tensor m;
    try (var ng = Autograd.noGrad()) {
      Tensor mx = max(x, d, true).values();
      // shift by the max only where it is finite: x - inf would turn +inf entries into NaN
      Tensor finite = Dense.compareScalar(mx.abs(), Double.POSITIVE_INFINITY, BINARY_LT, "lt");
      m = Tensor.where(finite, mx, Tensor.scalar(0.0, x.dtype(), x.device()));
    }
    Tensor out = x.sub(m).exp().sum(d, true).log().add(m);
    return keepDim ? out : out.squeeze(d);
  }

  // ---- softmax --------------------------------------------------------------------------------

  /**
   * Softmax (or log-softmax) over {@code dim}; fused kernel forward, composed backward (so it is
   * differentiable to any order). {@code Reductions.softmax(s, -1, false)} of [B, H, N, N] is
   * [B, H, N, N].
   *
   * @param x an F32 or F64 tensor of rank ≥ 1
   * @param dim the dim (negative: from the end)
   * @param log return log-softmax
   * @return same shape as x
   */
  public static Tensor softmax(Tensor x, int dim, boolean log) {
    String op = log ? "logSoftmax" : "softmax";
    Checks.floating(op, x);
    if (x.rank() == 0) throw new MetakernelsException(op + ": needs at least one dim, got " + x.describe());
    int d = x.normDim(dim, op);
    int last = x.rank() - 1;
    Tensor src = d == last ? x : Views.permuteRaw(x, swap(x.rank(), d, last));
    if (!src.isContiguous()) src = src.copyContiguous();
    long cols = src.shape()[last];
    long rows = cols == 0 ? 0 : src.numel() / cols;
    Tensor y = Tensor.empty(src.shape(), x.dtype(), x.device());
    Native.check(MkNative.mk_dense_softmax_forward(x.device().code, x.dtype().code, log ? 1 : 0, rows, cols,
        src.address(op), y.address(op), x.launchStream()), () -> op + " " + x.describe() + " dim " + dim);
    if (d != last) y = Views.permuteRaw(y, swap(x.rank(), d, last));
    Tensor out = y;
    return Autograd.record(op, out, new Tensor[] {x}, g -> {
      if (log) return new Tensor[] {g[0].sub(out.exp().mul(g[0].sum(d, true)))};
      return new Tensor[] {out.mul(g[0].sub(g[0].mul(out).sum(d, true)))};
    }, t -> {
      // softmax: y ⊙ (t − Σ y t); log-softmax: t − Σ softmax ⊙ t
      if (log) return new Tensor[] {t[0].sub(out.exp().mul(t[0]).sum(d, true))};
      return new Tensor[] {out.mul(t[0].sub(t[0].mul(out).sum(d, true)))};
    });
  }

  private static int[] swap(int r, int a, int b) {
    int[] p = new int[r];
    for (int i = 0; i < r; i++) p[i] = i;
    p[a] = b;
    p[b] = a;
    return p;
  }
}
