package org.metakernels.ops;

import java.util.Arrays;
import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.internal.Internals;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * Views (no copy) and copies between layouts, devices and types; all differentiable. These are
 * the ops behind {@link Tensor#reshape}, {@link Tensor#permute}, {@link Tensor#to(Device)} and
 * their kin. A view shares its input's storage: an in-place write to one shows in the other.
 *
 * <pre>{@code
 * Tensor x4 = Views.reshape(x, new long[] {b, n, h, dh});           // [B, N, H, dh]
 * Tensor heads = Views.permute(x4, new int[] {0, 2, 1, 3});        // [B, H, N, dh], a view
 * }</pre>
 */
public final class Views {
  private Views() {}

  /**
   * The dim order (outermost first in memory) in which t is dense: size-1 dims first (their strides
   * say nothing), then by decreasing stride, each stride the product of the sizes inside it; null
   * where t is dense in no order (a gap, an overlap, an expanded dim).
   */
  static int[] denseOrder(Tensor t) {
    long[] sh = t.shape(), st = t.strides();
    int r = sh.length;
    Integer[] order = new Integer[r];
    for (int i = 0; i < r; i++) order[i] = i;
    Arrays.sort(order, (a, b) -> Long.compare(sh[b] == 1 ? Long.MAX_VALUE : st[b], sh[a] == 1 ? Long.MAX_VALUE : st[a]));
    long acc = 1;
    for (int i = r - 1; i >= 0; i--) {
      int d = order[i];
      if (sh[d] == 1) continue;
      if (st[d] != acc) return null;
      acc *= sh[d];
    }
    int[] o = new int[r];
    for (int i = 0; i < r; i++) o[i] = order[i];
    return o;
  }

  static Tensor viewRaw(Tensor x, long[] shape, long[] strides, long offset) {
    return Internals.tensor().newTensor(x.storage(), offset, shape, strides, x.dtype());
  }

  /** {@code Tensor.checkShape} of a result shape, whose message also names the input x. */
  private static void checkShape(String op, long[] shape, Tensor x) {
    try {
      Internals.tensor().checkShape(op, shape);
    } catch (MetakernelsException e) {
      throw new MetakernelsException(e.getMessage() + " (from " + x.describe() + ")");
    }
  }

  /** The permuted view, not recorded: result dim i is dim {@code perm[i]} of x. */
  static Tensor permuteRaw(Tensor x, int[] perm) {
    long[] s = x.shape(), st = x.strides();
    long[] ns = new long[perm.length], nst = new long[perm.length];
    for (int i = 0; i < perm.length; i++) {
      ns[i] = s[perm[i]];
      nst[i] = st[perm[i]];
    }
    return viewRaw(x, ns, nst, x.offset());
  }

  /**
   * Strides under which {@code newShape} reads x's elements in x's row-major order from x's
   * offset, or null when none exist (then a reshape copies). Each run of x's dims that is dense
   * in memory (stride of dim d = size · stride of dim d + 1, size-1 dims anywhere) is split or
   * merged freely; a new dim may not straddle two runs. PyTorch's rule for {@code view}.
   */
  static long[] viewStrides(long[] shape, long[] strides, long[] newShape) {
    int r = shape.length;
    if (r == 0 || Tensor.numel(shape) == 0) return Tensor.contiguousStrides(newShape);
    long[] out = new long[newShape.length];
    int v = newShape.length - 1;
    long base = strides[r - 1], runNumel = 1, viewNumel = 1;
    for (int d = r - 1; d >= 0; d--) {
      runNumel *= shape[d];
      boolean runEnds = d == 0 || (shape[d - 1] != 1 && strides[d - 1] != runNumel * base);
      if (!runEnds) continue;
      while (v >= 0 && (viewNumel < runNumel || newShape[v] == 1)) {
        out[v] = viewNumel * base;
        viewNumel *= newShape[v];
        v--;
      }
      if (viewNumel != runNumel) return null;
      if (d > 0) {
        base = strides[d - 1];
        runNumel = 1;
        viewNumel = 1;
      }
    }
    return v == -1 ? out : null;
  }

  /**
   * x's elements in a new shape; one size may be -1 (inferred). A view whenever x's strides allow
   * one (always for a contiguous x, and for dropping or inserting size-1 dims, splitting a dim or
   * merging dims adjacent in memory: {@link #viewStrides}, as PyTorch's reshape), else a copy; x
   * itself when the shape is unchanged.
   * {@code Views.reshape(x, new long[] {-1, d})} of [B, N, D] is [B·N, D].
   *
   * @param x the tensor
   * @param newShape sizes with x's element count
   * @return the reshaped tensor
   */
  public static Tensor reshape(Tensor x, long[] newShape) {
    x.address("reshape");
    long[] target = newShape.clone();
    int infer = -1;
    long known = 1;
    for (int i = 0; i < target.length; i++) {
      if (target[i] == -1) {
        if (infer >= 0)
          throw new MetakernelsException("reshape: more than one -1 in " + Arrays.toString(newShape) + " for " + x.describe());
        infer = i;
      } else if (target[i] < 0) {
        throw new MetakernelsException("reshape: negative size in " + Arrays.toString(newShape) + " for " + x.describe());
      } else known *= target[i];
    }
    if (infer >= 0) {
      if (known == 0 || x.numel() % known != 0)
        throw new MetakernelsException("reshape: cannot reshape " + x.describe() + " to " + Arrays.toString(newShape));
      target[infer] = x.numel() / known;
    }
    checkShape("reshape", target, x);
    if (Tensor.numel(target) != x.numel())
      throw new MetakernelsException("reshape: " + x.describe() + " has " + x.numel() + " elements, "
          + Arrays.toString(newShape) + " needs " + Tensor.numel(target));
    if (Arrays.equals(target, x.shape()) ) return x;
    long[] inShape = x.shape();
    long[] viewStrides = viewStrides(x.shape(), x.strides(), target);
    Tensor src = viewStrides != null ? x : x.contiguous();
    if (viewStrides == null) viewStrides = Tensor.contiguousStrides(target);
    Tensor y = viewRaw(src, target, viewStrides, src.offset());
    return Autograd.record("reshape", y, new Tensor[] {src}, g -> new Tensor[] {g[0].reshape(inShape)},
        t -> new Tensor[] {t[0].reshape(target)});
  }

  /**
   * Reorders x's dims (a view): result dim i is dim {@code dims[i]} of x; negative dims count from
   * the end. {@code Views.permute(x, new int[] {0, 2, 1})} of [B, N, D] is [B, D, N].
   *
   * @param x the tensor
   * @param dims a permutation of x's dims
   * @return the permuted view
   */
  public static Tensor permute(Tensor x, int[] dims) {
    x.address("permute");
    int r = x.rank();
    if (dims.length != r) throw new MetakernelsException("permute: " + dims.length + " dims for " + x.describe());
    int[] perm = new int[r];
    boolean[] seen = new boolean[r];
    for (int i = 0; i < r; i++) {
      int d = dims[i] < 0 ? dims[i] + r : dims[i];
      if (d < 0 || d >= r || seen[d])
        throw new MetakernelsException("permute: " + Arrays.toString(dims) + " is not a permutation for " + x.describe());
      seen[d] = true;
      perm[i] = d;
    }
    int[] inv = new int[r];
    for (int i = 0; i < r; i++) inv[perm[i]] = i;
    Tensor y = permuteRaw(x, perm);
    return Autograd.record("permute", y, new Tensor[] {x}, g -> new Tensor[] {g[0].permute(inv)},
        t -> new Tensor[] {permute(t[0], perm)});
  }

  /**
   * The slice [start, start + length) of one dim (a view); its gradient is zero outside the slice.
   * {@code Views.narrow(x, 1, 0, c)} of [B, T, D] is [B, c, D].
   *
   * @param x the tensor
   * @param dim the dim (negative: from the end)
   * @param start first index kept
   * @param length number of indices kept
   * @return the slice
   */
  public static Tensor narrow(Tensor x, int dim, long start, long length) {
    x.address("narrow");
    int d = x.normDim(dim, "narrow");
    long n = x.shape()[d];
    if (start < 0 || length < 0 || start > n - length)
      throw new MetakernelsException("narrow: start " + start + ", length " + length + " outside dim " + dim + " of "
          + x.describe());
    long[] s = x.shape();
    long[] full = x.shape();
    s[d] = length;
    Tensor y = viewRaw(x, s, x.strides(), x.offset() + start * x.strides()[d]);
    return Autograd.record("narrow", y, new Tensor[] {x}, g -> new Tensor[] {narrowBackward(g[0], full, d, start)},
        t -> new Tensor[] {narrow(t[0], d, start, length)});
  }

  /** Zeros of {@code full} with {@code g} written at [start, start+len) of {@code dim}; adjoint of narrow. */
  static Tensor narrowBackward(Tensor g, long[] full, int dim, long start) {
    Tensor out = Tensor.zeros(full, g.dtype(), g.device());
    long[] s = full.clone();
    s[dim] = g.shape()[dim];
    Tensor window = viewRaw(out, s, out.strides(), start * out.strides()[dim]);
    Internals.tensor().copyFrom(window, g);
    long len = g.shape()[dim];
    return Autograd.record("narrow_backward", out, new Tensor[] {g}, gg -> new Tensor[] {gg[0].narrow(dim, start, len)},
        t -> new Tensor[] {narrowBackward(t[0], full, dim, start)});
  }

  /**
   * Broadcasts size-1 dims, and new leading dims, to {@code newShape} without copying (stride 0);
   * -1 keeps a size. Its gradient sums over the expanded dims.
   * {@code Views.expand(b, new long[] {B, N, D})} of [D] is [B, N, D].
   *
   * @param x the tensor
   * @param newShape the target sizes
   * @return the expanded view (x when nothing changes)
   */
  public static Tensor expand(Tensor x, long[] newShape) {
    x.address("expand");
    long[] shape = x.shape();
    if (newShape.length < shape.length)
      throw new MetakernelsException("expand: " + x.describe() + " to fewer dims " + Arrays.toString(newShape));
    long[] strides = x.strides();
    long[] ns = new long[newShape.length];
    long[] nst = new long[newShape.length];
    int off = newShape.length - shape.length;
    for (int i = 0; i < newShape.length; i++) {
      long want = newShape[i];
      if (i < off) {
        if (want < 0)
          throw new MetakernelsException("expand: negative size " + want + " in new leading dim " + i + ": cannot expand "
              + x.describe() + " to " + Arrays.toString(newShape));
        ns[i] = want;
        nst[i] = 0;
      } else {
        long have = shape[i - off];
        if (want == -1 || want == have) {
          ns[i] = have;
          nst[i] = strides[i - off];
        } else if (have == 1) {
          ns[i] = want;
          nst[i] = 0;
        } else {
          throw new MetakernelsException("expand: " + x.describe() + " cannot expand to " + Arrays.toString(newShape));
        }
      }
    }
    checkShape("expand", ns, x);
    if (Arrays.equals(ns, shape)) return x;
    Tensor y = viewRaw(x, ns, nst, x.offset());
    return Autograd.record("expand", y, new Tensor[] {x}, g -> new Tensor[] {g[0].sumTo(shape)},
        t -> new Tensor[] {expand(t[0], ns)});
  }

  /**
   * A row-major copy of x (always a copy; {@link Tensor#contiguous()} skips it when x already is).
   * {@code Views.contiguous(x.mT())} of [N, D] is [D, N].
   *
   * @param x the tensor
   * @return the copy
   */
  public static Tensor contiguous(Tensor x) {
    Tensor y = x.copyContiguous();
    return Autograd.record("contiguous", y, new Tensor[] {x}, g -> new Tensor[] {g[0]}, t -> new Tensor[] {t[0]});
  }

  /**
   * A contiguous copy of x on {@code device}; the gradient is moved back.
   * {@code Views.toDevice(x, Device.CUDA)}: x's shape and dtype on the GPU.
   *
   * @param x the tensor
   * @param device the target device
   * @return the copy
   */
  public static Tensor toDevice(Tensor x, Device device) {
    Tensor y = org.metakernels.runtime.Transfer.copy(x, device);
    Device from = x.device();
    return Autograd.record("to_device", y, new Tensor[] {x}, g -> new Tensor[] {g[0].to(from)},
        t -> new Tensor[] {t[0].to(device)});
  }

  /**
   * A copy of x converted to {@code type}; recorded (the gradient is cast back) when both types
   * are floating point, not when either is I64. {@code Views.cast(x, DType.BF16)}: x's shape, BF16.
   *
   * @param x the tensor
   * @param type the target type
   * @return the copy
   */
  public static Tensor cast(Tensor x, DType type) {
    x.address("cast");
    Tensor y = x.castTo(type);
    if (!x.dtype().isFloatingPoint() || !type.isFloatingPoint()) return y;
    DType from = x.dtype();
    return Autograd.record("cast", y, new Tensor[] {x}, g -> new Tensor[] {g[0].to(from)},
        t -> new Tensor[] {t[0].to(type)});
  }

  /**
   * Joins tensors along an existing dim (same dtype, device, rank and other sizes); each part's
   * gradient is its slice of the result's. {@code Views.concat(List.of(a, b), 0)} of [2, D] and
   * [3, D] is [5, D].
   *
   * @param parts the tensors, at least one
   * @param dim the dim (negative: from the end)
   * @return a new tensor
   */
  public static Tensor concat(List<Tensor> parts, int dim) {
    if (parts.isEmpty()) throw new MetakernelsException("concat: no tensors");
    Tensor first = parts.get(0);
    int d = first.normDim(dim, "concat");
    long[] shape = first.shape();
    long total = 0;
    for (Tensor p : parts) {
      p.address("concat");
      if (p.dtype() != first.dtype() || p.device() != first.device() || p.rank() != first.rank())
        throw new MetakernelsException("concat: " + first.describe() + " and " + p.describe() + " differ in dtype, device or rank");
      for (int i = 0; i < shape.length; i++)
        if (i != d && p.shape()[i] != shape[i])
          throw new MetakernelsException("concat: " + first.describe() + " and " + p.describe() + " differ outside dim " + dim);
      total += p.shape()[d];
    }
    long[] out = shape.clone();
    out[d] = total;
    Tensor y = Tensor.empty(out, first.dtype(), first.device());
    long off = 0;
    long[] starts = new long[parts.size()];
    for (int i = 0; i < parts.size(); i++) {
      Tensor p = parts.get(i);
      long[] s = out.clone();
      s[d] = p.shape()[d];
      starts[i] = off;
      Internals.tensor().copyFrom(viewRaw(y, s, y.strides(), off * y.strides()[d]), p);
      off += p.shape()[d];
    }
    Tensor[] ins = parts.toArray(new Tensor[0]);
    return Autograd.record("concat", y, ins, g -> {
      Tensor[] r = new Tensor[ins.length];
      for (int i = 0; i < ins.length; i++)
        if (ins[i].requiresGrad()) r[i] = g[0].narrow(d, starts[i], ins[i].shape()[d]);
      return r;
    }, t -> {
      java.util.List<Tensor> parts2 = new java.util.ArrayList<>(ins.length);
      for (int i = 0; i < ins.length; i++) parts2.add(t[i] != null ? t[i] : Tensor.zerosLike(ins[i]));
      return new Tensor[] {concat(parts2, d)};
    });
  }

  /**
   * Joins same-shaped tensors along a new dim: {@code Views.stack(List.of(a, b), 1)} of [N, D]
   * each is [N, 2, D].
   *
   * @param parts the tensors, at least one
   * @param dim where the new dim goes (negative: from the end)
   * @return a new tensor
   */
  public static Tensor stack(List<Tensor> parts, int dim) {
    if (parts.isEmpty()) throw new MetakernelsException("stack: no tensors");
    Tensor first = parts.get(0);
    for (Tensor p : parts) {
      p.address("stack");
      if (!Arrays.equals(p.shape(), first.shape()) || p.dtype() != first.dtype() || p.device() != first.device())
        throw new MetakernelsException("stack: " + first.describe() + " and " + p.describe()
            + " differ in shape, dtype or device");
    }
    int r = first.rank() + 1;
    int d = dim < 0 ? dim + r : dim;
    if (d < 0 || d >= r)
      throw new MetakernelsException("stack: dim " + dim + " out of range for " + parts.size() + " tensors "
          + first.describe());
    Tensor[] us = new Tensor[parts.size()];
    for (int i = 0; i < us.length; i++) us[i] = parts.get(i).unsqueeze(d);
    return concat(Arrays.asList(us), d);
  }
}
