package org.metakernels.internal;

import org.metakernels.autograd.Node;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Storage;
import org.metakernels.tensor.Tensor;

/**
 * Not API: the one door through which the core's packages reach members the others must not
 * see publicly (the JDK's {@code SharedSecrets} pattern). A package implements its interface in
 * a package-private class and registers it from its main class's static initializer; callers
 * in other core packages go through {@link #tensor()} or {@link #dense()}. This package is left
 * out of the published Javadoc and may change in any release; programs must not use it.
 *
 * <ul>
 *   <li>{@link TensorAccess}, from {@code org.metakernels.tensor}: the raw constructor, shape
 *       checks, the autograd fields and unchecked copies, for autograd and the ops;
 *   <li>{@link DenseAccess}, from {@code org.metakernels.ops}: the op-code forms of the
 *       comparisons and in-place writes that {@link Tensor}'s named methods call.
 * </ul>
 */
public final class Internals {
  private Internals() {}

  /** What {@code org.metakernels.tensor} opens to autograd and the ops. */
  public interface TensorAccess {
    /** A tensor over an existing storage (no copy, no tape): the views' constructor. */
    Tensor newTensor(Storage storage, long offset, long[] shape, long[] strides, DType dtype);

    /** Rejects ranks above {@code MAX_RANK}, negative sizes and byte sizes that overflow a long. */
    void checkShape(String op, long[] shape);

    /** Sets the accumulated gradient of a leaf. */
    void setGrad(Tensor leaf, Tensor grad);

    /** Attaches {@code t} as output {@code index} of {@code node}. */
    void setGradFn(Tensor t, Node node, int index);

    /**
     * Copies {@code src} (same shape, dtype and device, any strides) into {@code dst}'s memory:
     * no in-place checks, no version bump, not recorded.
     */
    void copyFrom(Tensor dst, Tensor src);

    /** Records an in-place write to {@code s} (saved tensors compare versions). */
    void bumpVersion(Storage s);

    /**
     * The storages {@code scope} owns now, in allocation order (for tests that edit every
     * buffer an op left behind).
     */
    java.util.List<Storage> owned(org.metakernels.tensor.Scope scope);
  }

  /** The op-code forms of {@code org.metakernels.ops.Dense} behind {@link Tensor}'s named methods. */
  public interface DenseAccess {
    /** 1.0 where {@code a (code) b} holds, else 0.0; code: a {@code Codes.BINARY_*} comparison. */
    Tensor compare(Tensor a, Tensor b, int code, String op);

    /** {@link #compare} against the scalar {@code c}. */
    Tensor compareScalar(Tensor a, double c, int code, String op);

    /** t = t (code) o in place, o broadcast to t; code: {@code Codes.BINARY_*}. */
    Tensor inPlace(Tensor t, Tensor o, int code, String op);

    /** t = code(t; c) in place; code: {@code Codes.UNARY_*} with a scalar parameter. */
    Tensor scalarInPlace(Tensor t, int code, double c, String op);

    /** Fills t with {@code v} in place. */
    Tensor fillInPlace(Tensor t, double v);

    /** Copies {@code src}, broadcast, into t in place. */
    Tensor inPlaceCopy(Tensor t, Tensor src);
  }

  private static volatile TensorAccess tensor;
  private static volatile DenseAccess dense;

  /** Called once, by {@link Tensor}'s static initializer. */
  public static void setTensorAccess(TensorAccess access) {
    if (tensor != null) throw new IllegalStateException("TensorAccess is already set");
    tensor = access;
  }

  /** Called once, by {@code Dense}'s static initializer. */
  public static void setDenseAccess(DenseAccess access) {
    if (dense != null) throw new IllegalStateException("DenseAccess is already set");
    dense = access;
  }

  /** The tensor package's access (initialising {@link Tensor} if no one has yet). */
  public static TensorAccess tensor() {
    TensorAccess a = tensor;
    if (a == null) {
      initialize(Tensor.class);
      a = tensor;
    }
    return a;
  }

  /** The ops package's access (initialising {@code Dense} if no one has yet). */
  public static DenseAccess dense() {
    DenseAccess a = dense;
    if (a == null) {
      initialize(org.metakernels.ops.Dense.class);
      a = dense;
    }
    return a;
  }

  private static void initialize(Class<?> c) {
    try {
      Class.forName(c.getName(), true, c.getClassLoader());
    } catch (ClassNotFoundException e) {
      throw new IllegalStateException(e);
    }
  }
}
