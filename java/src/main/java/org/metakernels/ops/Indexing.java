package org.metakernels.ops;

import java.util.Arrays;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Tensor;

/**
 * index-select / index-add and gather / scatter-add, each pair the other's adjoint. Indices are
 * I64 and range-checked natively before any kernel runs; the adds are deterministic (no
 * atomics), and the "add" ops return new tensors (their base is unchanged).
 *
 * <pre>{@code
 * Tensor rows = Indexing.indexSelect(x, 0, idx);             // x [N, D], idx [K]: [K, D]
 * Tensor sums = Indexing.indexAdd(Tensor.zerosLike(x), 0, idx, rows);   // [N, D]
 * }</pre>
 */
public final class Indexing {
  private Indexing() {}

  private static long prod(long[] s, int from, int to) {
    long p = 1;
    for (int i = from; i < to; i++) p *= s[i];
    return p;
  }

  /**
   * Slices {@code idx} (1-d I64) of {@code dim}: out.shape[dim] = idx.numel(). Its gradient is
   * {@link #indexAdd} (added in F32 and rounded once for BF16 / F16). {@code Indexing.indexSelect(x, 0, idx)} of [N, D] with idx [K] is [K, D].
   *
   * @param x the source (any dtype)
   * @param dim the dim (negative: from the end)
   * @param idx the positions along dim, on x's device
   * @return the selection
   */
  public static Tensor indexSelect(Tensor x, int dim, Tensor idx) {
    String op = "indexSelect";
    x.address(op);
    Checks.indices(op, idx);
    Checks.sameDevice(op, x, idx);
    if (idx.rank() != 1) throw new MetakernelsException(op + ": indices must be 1-d, got " + idx.describe());
    int d = x.normDim(dim, op);
    Tensor src = x.isContiguous() ? x : x.copyContiguous();
    Tensor ix = idx.isContiguous() ? idx : idx.copyContiguous();
    long[] s = x.shape();
    long[] out = s.clone();
    out[d] = idx.numel();
    Tensor y = Tensor.empty(out, x.dtype(), x.device());
    try {
      Native.check(MkNative.mk_dense_index_select_forward(x.device().code, x.dtype().code, prod(s, 0, d), s[d],
          prod(s, d + 1, s.length), src.address(op), ix.address(op), idx.numel(), y.address(op), x.launchStream()),
          op + " " + x.describe() + " dim " + dim + " indices " + idx.describe(), y, ix == idx ? null : ix);
    } finally {
      if (src != x) src.close();  // the contiguous copy, read by this call only
    }
    return Autograd.record(op, y, new Tensor[] {x}, g -> new Tensor[] {indexSelectBackward(x, d, ix, g[0])},
        t -> new Tensor[] {indexSelect(t[0], d, ix)});
  }

  /** The index-add of g into zeros of x's shape; for BF16 / F16 x, added in F32 and rounded once. */
  private static Tensor indexSelectBackward(Tensor x, int d, Tensor ix, Tensor g) {
    if (!x.dtype().isHalf()) return indexAdd(Tensor.zerosLike(x), d, ix, g);
    Tensor zeros = Tensor.zeros(x.shape(), DType.F32, x.device());
    return indexAdd(zeros, d, ix, g.to(DType.F32)).to(x.dtype());
  }

  /**
   * {@code base} with row i of {@code src} (along dim) added at position idx[i]; repeated indices
   * accumulate. A new tensor; base is unchanged. Its gradient is {@link #indexSelect} for src.
   * {@code Indexing.indexAdd(base, 0, idx, src)} of [N, D], idx [K], src [K, D] is [N, D].
   *
   * @param base F32 or F64
   * @param dim the dim (negative: from the end)
   * @param idx 1-d I64 positions along dim, on base's device
   * @param src base's shape with idx.numel() at dim; same dtype
   * @return the sum, base's shape
   */
  public static Tensor indexAdd(Tensor base, int dim, Tensor idx, Tensor src) {
    String op = "indexAdd";
    Checks.compatible(op, base, src);
    Checks.indices(op, idx);
    Checks.sameDevice(op, base, idx);
    int d = base.normDim(dim, op);
    long[] s = base.shape();
    long[] expect = s.clone();
    expect[d] = idx.numel();
    if (idx.rank() != 1 || !Arrays.equals(src.shape(), expect))
      throw new MetakernelsException(op + ": src " + src.describe() + " and indices " + idx.describe()
          + " do not fit base " + base.describe() + " along dim " + dim);
    Tensor y = base.copyContiguous();
    Tensor sc = src.isContiguous() ? src : src.copyContiguous();
    Tensor ix = idx.isContiguous() ? idx : idx.copyContiguous();
    try {
      Native.check(MkNative.mk_dense_index_add_forward(base.device().code, base.dtype().code, prod(s, 0, d), s[d],
          prod(s, d + 1, s.length), y.address(op), ix.address(op), idx.numel(), sc.address(op), base.launchStream()),
          op + " " + Checks.shapes(base, idx, src), y, ix == idx ? null : ix);
    } finally {
      if (sc != src) sc.close();  // the contiguous copy, read by this call only
    }
    return Autograd.record(op, y, new Tensor[] {base, src}, g -> new Tensor[] {
        base.requiresGrad() ? g[0] : null,
        src.requiresGrad() ? indexSelect(g[0], d, ix) : null},
        t -> new Tensor[] {t[1] == null ? t[0] : indexAdd(t[0] != null ? t[0] : Tensor.zerosLike(y), d, ix, t[1])});
  }

  /**
   * {@code out[.., j, ..] = x[.., idx[.., j, ..], ..]} along {@code dim}; idx has x's shape except
   * along dim. Its gradient is {@link #scatterAdd}.
   * {@code Indexing.gather(logp, 1, t)} of [N, C] with t [N, 1] is [N, 1].
   *
   * @param x F32 or F64
   * @param dim the dim (negative: from the end)
   * @param idx I64 positions, on x's device
   * @return the gathered values, idx's shape
   */
  public static Tensor gather(Tensor x, int dim, Tensor idx) {
    String op = "gather";
    Checks.floating(op, x);
    Checks.indices(op, idx);
    Checks.sameDevice(op, x, idx);
    int d = x.normDim(dim, op);
    checkGatherShapes(op, x.shape(), idx.shape(), d, x, idx);
    Tensor src = x.isContiguous() ? x : x.copyContiguous();
    Tensor ix = idx.isContiguous() ? idx : idx.copyContiguous();
    long[] s = x.shape();
    Tensor y = Tensor.empty(idx.shape(), x.dtype(), x.device());
    try {
      Native.check(MkNative.mk_dense_gather_forward(x.device().code, x.dtype().code, prod(s, 0, d), s[d],
          prod(s, d + 1, s.length), src.address(op), ix.address(op), idx.shape()[d], y.address(op), x.launchStream()),
          op + " " + x.describe() + " dim " + dim + " indices " + idx.describe(), y, ix == idx ? null : ix);
    } finally {
      if (src != x) src.close();  // the contiguous copy, read by this call only
    }
    return Autograd.record(op, y, new Tensor[] {x}, g -> new Tensor[] {scatterAdd(Tensor.zerosLike(x), d, ix, g[0])},
        t -> new Tensor[] {gather(t[0], d, ix)});
  }

  /**
   * {@code base} with {@code src[.., j, ..]} added at {@code base[.., idx[.., j, ..], ..]} along
   * dim; repeated indices accumulate. A new tensor; base is unchanged. Its gradient is
   * {@link #gather} for src. {@code Indexing.scatterAdd(z, 1, t, g)} of [N, C], t and g [N, 1] is
   * [N, C].
   *
   * @param base F32 or F64
   * @param dim the dim (negative: from the end)
   * @param idx I64 positions, matching base in every dim but dim
   * @param src idx's shape; base's dtype
   * @return the sum, base's shape
   */
  public static Tensor scatterAdd(Tensor base, int dim, Tensor idx, Tensor src) {
    String op = "scatterAdd";
    Checks.compatible(op, base, src);
    Checks.indices(op, idx);
    Checks.sameDevice(op, base, idx);
    int d = base.normDim(dim, op);
    checkGatherShapes(op, base.shape(), idx.shape(), d, base, idx);
    if (!Arrays.equals(idx.shape(), src.shape()))
      throw new MetakernelsException(op + ": indices " + idx.describe() + " and src " + src.describe() + " differ in shape");
    long[] s = base.shape();
    Tensor y = base.copyContiguous();
    Tensor sc = src.isContiguous() ? src : src.copyContiguous();
    Tensor ix = idx.isContiguous() ? idx : idx.copyContiguous();
    try {
      Native.check(MkNative.mk_dense_scatter_add_forward(base.device().code, base.dtype().code, prod(s, 0, d), s[d],
          prod(s, d + 1, s.length), y.address(op), ix.address(op), idx.shape()[d], sc.address(op), base.launchStream()),
          op + " " + Checks.shapes(base, idx, src), y, ix == idx ? null : ix);
    } finally {
      if (sc != src) sc.close();  // the contiguous copy, read by this call only
    }
    return Autograd.record(op, y, new Tensor[] {base, src}, g -> new Tensor[] {
        base.requiresGrad() ? g[0] : null,
        src.requiresGrad() ? gather(g[0], d, ix) : null},
        t -> new Tensor[] {t[1] == null ? t[0] : scatterAdd(t[0] != null ? t[0] : Tensor.zerosLike(y), d, ix, t[1])});
  }

  private static void checkGatherShapes(String op, long[] x, long[] idx, int d, Tensor xt, Tensor it) {
    boolean ok = x.length == idx.length;
    for (int i = 0; ok && i < x.length; i++) if (i != d && x[i] != idx[i]) ok = false;
    if (!ok)
      throw new MetakernelsException(op + ": indices " + it.describe() + " must match " + xt.describe()
          + " in every dim but " + d);
  }
}
