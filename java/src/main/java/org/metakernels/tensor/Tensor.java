package org.metakernels.tensor;

import java.util.Arrays;
import java.util.List;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.Node;
import org.metakernels.internal.Internals;
import org.metakernels.ops.Dense;
import org.metakernels.ops.Indexing;
import org.metakernels.ops.Linalg;
import org.metakernels.ops.Reductions;
import org.metakernels.ops.Views;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.runtime.RawPointer;

/**
 * An n-dimensional array on the CPU or a CUDA device: a {@link Storage}, an element offset, a
 * shape and strides (in elements), a {@link DType}. Views (reshape, permute, narrow, expand)
 * share the storage without copying. Every op on tensors that require gradients is recorded
 * for {@link Autograd}; every backward rule is itself made of differentiable ops, so gradients
 * can be differentiated again.
 *
 * <pre>{@code
 * try (Scope scope = Scope.open()) {
 *   Tensor x = Tensor.randn(new long[] {32, 10}, DType.F64, Device.CPU, 7L);
 *   Tensor w = Tensor.zeros(new long[] {10, 1}, DType.F64, Device.CPU).requiresGrad(true);
 *   Tensor loss = x.matmul(w).tanh().square().mean();      // shape []
 *   Tensor g = Autograd.grad(loss, List.of(w), true).get(0); // shape [10, 1]
 * }
 * }</pre>
 */
public final class Tensor implements AutoCloseable {
  private final Storage storage;
  private final long offset;
  private final long[] shape;
  private final long[] strides;
  private final DType dtype;

  private boolean requiresGrad;
  private Tensor grad;
  private Node gradFn;
  private int outputIndex;

  static {
    Internals.setTensorAccess(new TensorAccessImpl());
  }

  /** Internal: a tensor over an existing storage. Use the factories or view ops instead. */
  Tensor(Storage storage, long offset, long[] shape, long[] strides, DType dtype) {
    this.storage = storage;
    this.offset = offset;
    this.shape = shape;
    this.strides = strides;
    this.dtype = dtype;
  }

  // ------------------------------------------------------------------------------------------
  // factories

  /** Uninitialised contiguous tensor. */
  public static Tensor empty(long[] shape, DType dtype, Device device) {
    checkShape("empty", shape);
    long n = numel(shape);
    Storage s = Storage.allocate(n * dtype.size, device);
    return new Tensor(s, 0, shape.clone(), contiguousStrides(shape), dtype);
  }

  public static Tensor full(long[] shape, double value, DType dtype, Device device) {
    Tensor t = empty(shape, dtype, device);
    Native.check(MkNative.mk_tensor_fill_forward(device.code, dtype.code, t.numel(), t.address("full"), value,
        t.stream()), "full " + Arrays.toString(shape));
    return t;
  }

  public static Tensor zeros(long[] shape, DType dtype, Device device) {
    return full(shape, 0.0, dtype, device);
  }

  public static Tensor ones(long[] shape, DType dtype, Device device) {
    return full(shape, 1.0, dtype, device);
  }

  public static Tensor zerosLike(Tensor t) {
    return zeros(t.shape, t.dtype, t.device());
  }

  public static Tensor onesLike(Tensor t) {
    return ones(t.shape, t.dtype, t.device());
  }

  /** A 0-d tensor holding {@code value}. */
  public static Tensor scalar(double value, DType dtype, Device device) {
    return full(new long[0], value, dtype, device);
  }

  /**
   * Standard normal samples from a counter-based generator: the same seed gives the same values
   * on the CPU and on CUDA.
   */
  public static Tensor randn(long[] shape, DType dtype, Device device, long seed) {
    return random(shape, dtype, device, seed, 1, 0.0, 1.0);
  }

  /** Uniform samples in [0, 1). */
  public static Tensor rand(long[] shape, DType dtype, Device device, long seed) {
    return random(shape, dtype, device, seed, 0, 0.0, 1.0);
  }

  /** Uniform samples in [lo, hi). */
  public static Tensor uniform(long[] shape, double lo, double hi, DType dtype, Device device, long seed) {
    return random(shape, dtype, device, seed, 0, lo, hi);
  }

  private static Tensor random(long[] shape, DType dtype, Device device, long seed, int dist, double a, double b) {
    if (!dtype.isFloatingPoint())
      throw new MetakernelsException("random: dtype " + dtype + " is not floating point");
    if (dtype.isHalf()) {  // sampled in F32 (the same values on both devices), then rounded
      try (Scope tmp = Scope.open()) {
        Tensor f = random(shape, DType.F32, device, seed, dist, a, b);
        return tmp.keep(f.castTo(dtype));
      }
    }
    Tensor t = empty(shape, dtype, device);
    Native.check(MkNative.mk_tensor_random_forward(device.code, dtype.code, dist, t.numel(), t.address("random"),
        seed, a, b, t.stream()), "random " + Arrays.toString(shape));
    return t;
  }

  /** A CPU F32 tensor holding {@code data} in row-major order. */
  public static Tensor of(float[] data, long... shape) {
    checkData("of", data.length, shape);
    Tensor t = empty(shape, DType.F32, Device.CPU);
    new FloatPointer(new RawPointer(t.address("of"), 4L * data.length)).put(data);
    return t;
  }

  /** A CPU F64 tensor holding {@code data} in row-major order. */
  public static Tensor of(double[] data, long... shape) {
    checkData("of", data.length, shape);
    Tensor t = empty(shape, DType.F64, Device.CPU);
    new DoublePointer(new RawPointer(t.address("of"), 8L * data.length)).put(data);
    return t;
  }

  /** A CPU I64 tensor (indices, class targets). */
  public static Tensor ofIndices(long[] data, long... shape) {
    checkData("ofIndices", data.length, shape);
    Tensor t = empty(shape, DType.I64, Device.CPU);
    new LongPointer(new RawPointer(t.address("ofIndices"), 8L * data.length)).put(data);
    return t;
  }

  /** 0, 1, ..., n-1. */
  public static Tensor arange(long n, DType dtype, Device device) {
    if (n < 0 || n > Integer.MAX_VALUE - 8) throw new MetakernelsException("arange: size " + n + " outside [0, 2^31)");
    double[] d = new double[Math.toIntExact(n)];
    for (int i = 0; i < n; i++) d[i] = i;
    Tensor t = of(d, n);
    if (dtype == DType.F64 && device == Device.CPU) return t;
    Tensor r = t.to(dtype).to(device);
    return r;
  }

  private static void checkData(String op, int length, long[] shape) {
    checkShape(op, shape);
    if (numel(shape) != length)
      throw new MetakernelsException(op + ": " + length + " values do not fill shape " + Arrays.toString(shape));
  }

  /**
   * Internal: rejects ranks above 8, negative sizes, and shapes whose byte size overflows a long
   * (their element count would wrap around and describe memory that was never allocated).
   */
  static void checkShape(String op, long[] shape) {
    if (shape.length > Codes.MAX_RANK) throw new MetakernelsException(op + ": rank " + shape.length + " > " + Codes.MAX_RANK + " in shape " + Arrays.toString(shape));
    boolean empty = false;
    for (long d : shape) {
      if (d < 0) throw new MetakernelsException(op + ": negative size in shape " + Arrays.toString(shape));
      empty |= d == 0;
    }
    if (empty) return;
    long bytes = 8;  // the widest element type
    for (long d : shape) {
      if (bytes > Long.MAX_VALUE / d)
        throw new MetakernelsException(op + ": shape " + Arrays.toString(shape) + " has too many elements");
      bytes *= d;
    }
  }

  // ------------------------------------------------------------------------------------------
  // metadata

  public long[] shape() {
    return shape.clone();
  }

  public long size(int dim) {
    return shape[normDim(dim)];
  }

  public long[] strides() {
    return strides.clone();
  }

  public long offset() {
    return offset;
  }

  public int rank() {
    return shape.length;
  }

  public long numel() {
    return numel(shape);
  }

  public DType dtype() {
    return dtype;
  }

  public Device device() {
    return storage.device();
  }

  public Storage storage() {
    return storage;
  }

  public boolean isClosed() {
    return storage.isClosed();
  }

  /** Address of element 0 (offset applied); throws {@link IllegalStateException} if freed. */
  public long address(String op) {
    return storage.address(op) + offset * dtype.size;
  }

  /** The stream kernels on this tensor run on (0: the CUDA default stream; unused on the CPU). */
  public long stream() {
    return 0L;
  }

  public boolean isContiguous() {
    long acc = 1;
    for (int d = shape.length - 1; d >= 0; d--) {
      if (shape[d] != 1 && strides[d] != acc) return false;
      acc *= shape[d];
    }
    return true;
  }

  public int normDim(int dim) {
    return normDim(dim, null);
  }

  /** {@code dim} counted from the end when negative; the error names {@code op} (when not null). */
  public int normDim(int dim, String op) {
    int r = shape.length;
    int d = dim < 0 ? dim + r : dim;
    if (d < 0 || d >= Math.max(r, 1) || (r == 0))
      throw new MetakernelsException((op == null ? "" : op + ": ") + "dim " + dim + " out of range for shape "
          + Arrays.toString(shape));
    return d;
  }

  public static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) n *= d;
    return n;
  }

  public static long[] contiguousStrides(long[] shape) {
    long[] s = new long[shape.length];
    long acc = 1;
    for (int d = shape.length - 1; d >= 0; d--) {
      s[d] = acc;
      acc *= shape[d];
    }
    return s;
  }

  /** "F32[2, 3]@CPU" for messages. */
  public String describe() {
    return dtype + Arrays.toString(shape) + (device() == Device.CPU ? "" : "@" + device());
  }

  @Override
  public String toString() {
    if (isClosed()) return "Tensor(" + describe() + ", freed)";
    StringBuilder sb = new StringBuilder("Tensor(").append(describe());
    if (numel() <= 16) {
      sb.append(", ").append(dtype == DType.I64 ? Arrays.toString(toLongArray()) : Arrays.toString(toDoubleArray()));
    }
    if (requiresGrad()) sb.append(", requiresGrad");
    return sb.append(')').toString();
  }

  // ------------------------------------------------------------------------------------------
  // autograd state

  /** True for a leaf marked with {@link #requiresGrad(boolean)} or any result of a recorded op. */
  public boolean requiresGrad() {
    return requiresGrad || gradFn != null;
  }

  /** Marks a leaf as needing gradients; returns this. */
  public Tensor requiresGrad(boolean flag) {
    if (gradFn != null && !flag)
      throw new MetakernelsException("requiresGrad(false): " + describe() + " is the result of '" + gradFn.name()
          + "'; use detach()");
    if (flag && !dtype.isFloatingPoint())
      throw new MetakernelsException("requiresGrad: " + describe() + " is not floating point");
    this.requiresGrad = flag;
    return this;
  }

  /** Accumulated gradient of a leaf after {@link #backward()}, or null. */
  public Tensor grad() {
    return grad;
  }

  /** Internal: sets the accumulated gradient. */
  void setGrad(Tensor g) {
    this.grad = g;
  }

  /**
   * Clears and frees the accumulated gradient. Autograd gives every leaf its own gradient
   * storage (a copy, in the leaf's scope), so training loops do not pile up one gradient per
   * step; a reference kept to the old {@link #grad()} is invalid afterwards.
   */
  public void zeroGrad() {
    if (grad != null) grad.close();
    grad = null;
  }

  public Node gradFn() {
    return gradFn;
  }

  public int outputIndex() {
    return outputIndex;
  }

  /** Internal: attaches this tensor as output {@code index} of {@code node}. */
  void setGradFn(Node node, int index) {
    this.gradFn = node;
    this.outputIndex = index;
  }

  /** A view sharing memory but cut from the tape. */
  public Tensor detach() {
    return new Tensor(storage, offset, shape, strides, dtype);
  }

  /** d(this)/d(leaves), accumulated into each leaf's {@link #grad()}. This must be a scalar. */
  public void backward() {
    Autograd.backward(this);
  }

  // ------------------------------------------------------------------------------------------
  // data transfer

  public double[] toDoubleArray() {
    try (Scope tmp = Scope.open()) {
      Tensor c = hostContiguous(DType.F64);
      double[] out = new double[Math.toIntExact(c.numel())];
      new DoublePointer(new RawPointer(c.address("toDoubleArray"), 8L * out.length)).get(out);
      return out;
    }
  }

  public float[] toFloatArray() {
    try (Scope tmp = Scope.open()) {
      Tensor c = hostContiguous(DType.F32);
      float[] out = new float[Math.toIntExact(c.numel())];
      new FloatPointer(new RawPointer(c.address("toFloatArray"), 4L * out.length)).get(out);
      return out;
    }
  }

  public long[] toLongArray() {
    try (Scope tmp = Scope.open()) {
      Tensor c = hostContiguous(DType.I64);
      long[] out = new long[Math.toIntExact(c.numel())];
      new LongPointer(new RawPointer(c.address("toLongArray"), 8L * out.length)).get(out);
      return out;
    }
  }

  /** The single value of a one-element tensor. */
  public double item() {
    if (numel() != 1) throw new MetakernelsException("item: " + describe() + " has " + numel() + " elements");
    return dtype == DType.I64 ? toLongArray()[0] : toDoubleArray()[0];
  }

  private Tensor hostContiguous(DType want) {
    address("read");
    Tensor t = this;
    try (var ng = Autograd.noGrad()) {
      if (t.device() != Device.CPU) t = t.to(Device.CPU);
      if (t.dtype != want) t = t.castTo(want);
      if (!t.isContiguous() || t.offset != 0) t = t.copyContiguous();
    }
    return t;
  }

  /** A copy on {@code device} (this if already there). Differentiable. */
  public Tensor to(Device device) {
    if (device == device()) return this;
    return Views.toDevice(this, device);
  }

  /**
   * A copy with element type {@code type} (this if already so), rounded to nearest even when
   * narrowing to BF16/F16. Differentiable between the floating-point types (F32, F64, BF16, F16):
   * the gradient is cast back.
   */
  public Tensor to(DType type) {
    if (type == dtype) return this;
    return Views.cast(this, type);
  }

  /** Internal: raw cast without autograd. */
  public Tensor castTo(DType type) {
    Tensor src = isContiguous() ? this : copyContiguous();
    Tensor out = empty(shape, type, device());
    Native.check(MkNative.mk_tensor_cast_forward(device().code, dtype.code, type.code, numel(), src.address("cast"),
        out.address("cast"), stream()), "cast " + describe() + " -> " + type);
    return out;
  }

  /** Internal: contiguous copy without autograd. */
  public Tensor copyContiguous() {
    Tensor out = empty(shape, dtype, device());
    Native.check(MkNative.mk_tensor_copy_forward(device().code, dtype.code, shape.length, shape, address("contiguous"),
        strides, out.address("contiguous"), out.strides, stream()), "contiguous " + describe());
    return out;
  }

  /** Internal: copies {@code src} (same shape, any strides) into this tensor's memory. */
  void copyFrom(Tensor src) {
    if (!Arrays.equals(src.shape, shape) || src.dtype != dtype || src.device() != device())
      throw new MetakernelsException("copyFrom: " + src.describe() + " into " + describe());
    Native.check(MkNative.mk_tensor_copy_forward(device().code, dtype.code, shape.length, shape, src.address("copyFrom"),
        src.strides, address("copyFrom"), strides, stream()), "copyFrom " + describe());
  }

  /** Frees this tensor's storage now (and so every view on it). Idempotent. */
  @Override
  public void close() {
    storage.free();
  }

  // ------------------------------------------------------------------------------------------
  // views (differentiable)

  public Tensor reshape(long... newShape) {
    return Views.reshape(this, newShape);
  }

  public Tensor view(long... newShape) {
    return Views.reshape(this, newShape);
  }

  public Tensor flatten() {
    return reshape(numel());
  }

  public Tensor permute(int... dims) {
    return Views.permute(this, dims);
  }

  public Tensor transpose(int d0, int d1) {
    int r = rank();
    int[] p = new int[r];
    for (int i = 0; i < r; i++) p[i] = i;
    int a = normDim(d0, "transpose"), b = normDim(d1, "transpose");
    p[a] = b;
    p[b] = a;
    return permute(p);
  }

  /** Transpose of the last two dims. */
  public Tensor mT() {
    return transpose(-2, -1);
  }

  public Tensor narrow(int dim, long start, long length) {
    return Views.narrow(this, dim, start, length);
  }

  /** Index {@code index} of {@code dim}, which is removed. */
  public Tensor select(int dim, long index) {
    int d = normDim(dim, "select");
    return narrow(d, index, 1).squeeze(d);
  }

  public Tensor expand(long... newShape) {
    return Views.expand(this, newShape);
  }

  public Tensor unsqueeze(int dim) {
    int d = dim < 0 ? dim + rank() + 1 : dim;
    if (d < 0 || d > rank()) throw new MetakernelsException("unsqueeze: dim " + dim + " out of range for " + describe());
    long[] s = new long[rank() + 1];
    for (int i = 0, j = 0; i < s.length; i++) s[i] = i == d ? 1 : shape[j++];
    return reshape(s);
  }

  public Tensor squeeze(int dim) {
    int d = normDim(dim, "squeeze");
    if (shape[d] != 1) throw new MetakernelsException("squeeze: dim " + dim + " of " + describe() + " is not 1");
    long[] s = new long[rank() - 1];
    for (int i = 0, j = 0; i < shape.length; i++) if (i != d) s[j++] = shape[i];
    return reshape(s);
  }

  /** This tensor if contiguous, else a contiguous copy. Differentiable. */
  public Tensor contiguous() {
    address("contiguous");
    if (isContiguous()) return this;
    return Views.contiguous(this);
  }

  // ------------------------------------------------------------------------------------------
  // elementwise (differentiable; binary ops broadcast)

  public Tensor add(Tensor o) { return Dense.add(this, o); }
  public Tensor sub(Tensor o) { return Dense.sub(this, o); }
  public Tensor mul(Tensor o) { return Dense.mul(this, o); }
  public Tensor div(Tensor o) { return Dense.div(this, o); }
  public Tensor add(double c) { return Dense.addScalar(this, c); }
  public Tensor sub(double c) { return Dense.addScalar(this, -c); }
  public Tensor mul(double c) { return Dense.mulScalar(this, c); }
  public Tensor div(double c) { return Dense.mulScalar(this, 1.0 / c); }
  /** c - this. */
  public Tensor rsub(double c) { return Dense.rsubScalar(this, c); }
  public Tensor neg() { return Dense.neg(this); }
  public Tensor exp() { return Dense.exp(this); }
  public Tensor log() { return Dense.log(this); }
  public Tensor log1p() { return Dense.log1p(this); }
  public Tensor tanh() { return Dense.tanh(this); }
  public Tensor sigmoid() { return Dense.sigmoid(this); }
  /** log(1 + exp(x)) elementwise, overflow-free; differentiable to any order. */
  public Tensor softplus() { return Dense.softplus(this); }
  public Tensor relu() { return Dense.relu(this); }
  /** GELU, tanh approximation. */
  public Tensor gelu() { return Dense.gelu(this); }
  /** elu(x) + 1: the positive feature map of linear attention. */
  public Tensor elu1() { return Dense.elu1(this); }
  public Tensor sqrt() { return Dense.sqrt(this); }
  public Tensor rsqrt() { return Dense.rsqrt(this); }
  public Tensor square() { return Dense.square(this); }
  public Tensor pow(double p) { return Dense.pow(this, p); }
  public Tensor pow(Tensor p) { return Dense.pow(this, p); }
  public Tensor abs() { return Dense.abs(this); }
  public Tensor sign() { return Dense.sign(this); }
  public Tensor reciprocal() { return Dense.reciprocal(this); }
  public Tensor cos() { return Dense.cos(this); }
  public Tensor sin() { return Dense.sin(this); }
  public Tensor maximum(Tensor o) { return Dense.maximum(this, o); }
  public Tensor minimum(Tensor o) { return Dense.minimum(this, o); }
  public Tensor clampMin(double lo) { return Dense.clampMin(this, lo); }
  public Tensor clampMax(double hi) { return Dense.clampMax(this, hi); }

  // comparisons give 1.0 / 0.0 in this dtype and carry no gradient
  public Tensor eq(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_EQ, "eq"); }
  public Tensor ne(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_NE, "ne"); }
  public Tensor lt(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_LT, "lt"); }
  public Tensor le(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_LE, "le"); }
  public Tensor gt(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_GT, "gt"); }
  public Tensor ge(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_GE, "ge"); }
  public Tensor gt(double c) { return Internals.dense().compareScalar(this, c, Codes.BINARY_GT, "gt"); }
  public Tensor lt(double c) { return Internals.dense().compareScalar(this, c, Codes.BINARY_LT, "lt"); }

  /** cond != 0 ? a : b, broadcasting all three. */
  public static Tensor where(Tensor cond, Tensor a, Tensor b) { return Dense.where(cond, a, b); }

  // in place (refused on tensors the tape needs)
  public Tensor addInPlace(Tensor o) { return Internals.dense().inPlace(this, o, Codes.BINARY_ADD, "addInPlace"); }
  public Tensor subInPlace(Tensor o) { return Internals.dense().inPlace(this, o, Codes.BINARY_SUB, "subInPlace"); }
  public Tensor mulInPlace(Tensor o) { return Internals.dense().inPlace(this, o, Codes.BINARY_MUL, "mulInPlace"); }
  public Tensor mulInPlace(double c) { return Internals.dense().scalarInPlace(this, Codes.UNARY_MUL_SCALAR, c, "mulInPlace"); }
  public Tensor fillInPlace(double v) { return Internals.dense().fillInPlace(this, v); }
  /** Copies {@code src} (broadcast to this shape) into this tensor. */
  public Tensor copyInPlace(Tensor src) { return Internals.dense().inPlaceCopy(this, src); }

  // ------------------------------------------------------------------------------------------
  // reductions

  /** Sum of all elements: shape []. */
  public Tensor sum() { return Reductions.sum(this, null, false); }
  public Tensor sum(int dim, boolean keepDim) { return Reductions.sum(this, new int[] {dim}, keepDim); }
  public Tensor sum(int[] dims, boolean keepDim) { return Reductions.sum(this, dims, keepDim); }
  public Tensor mean() { return Reductions.mean(this, null, false); }
  public Tensor mean(int dim, boolean keepDim) { return Reductions.mean(this, new int[] {dim}, keepDim); }
  public Tensor mean(int[] dims, boolean keepDim) { return Reductions.mean(this, dims, keepDim); }
  /** Population variance (divides by n) unless {@code unbiased}. */
  public Tensor var(int dim, boolean keepDim, boolean unbiased) { return Reductions.var(this, dim, keepDim, unbiased); }
  /** Max over a dim with its indices (I64). Gradient flows to the first maximum. */
  public Reductions.ValuesIndices max(int dim, boolean keepDim) { return Reductions.max(this, dim, keepDim); }
  public Reductions.ValuesIndices min(int dim, boolean keepDim) { return Reductions.min(this, dim, keepDim); }
  /** Max of all elements, shape []. */
  public Tensor max() { return Reductions.max(this.reshape(numel()), 0, false).values(); }
  public Tensor logsumexp(int dim, boolean keepDim) { return Reductions.logsumexp(this, dim, keepDim); }
  /** Sums broadcast dims away so the result has {@code target}'s shape (the adjoint of expand). */
  public Tensor sumTo(long[] target) { return Reductions.sumTo(this, target); }

  // ------------------------------------------------------------------------------------------
  // linear algebra, softmax, indexing

  /** Matrix product with batch broadcasting: [..., m, k] x [..., k, n] -> [..., m, n]; 1-d operands as in NumPy. */
  public Tensor matmul(Tensor o) { return Linalg.matmul(this, o); }
  public Tensor softmax(int dim) { return Reductions.softmax(this, dim, false); }
  public Tensor logSoftmax(int dim) { return Reductions.softmax(this, dim, true); }
  /** Rows {@code idx} (I64, 1-d) of dim {@code dim}. */
  public Tensor indexSelect(int dim, Tensor idx) { return Indexing.indexSelect(this, dim, idx); }
  /** out[..., j, ...] = this[..., idx[..., j, ...], ...] along {@code dim}. */
  public Tensor gather(int dim, Tensor idx) { return Indexing.gather(this, dim, idx); }

  public static Tensor concat(List<Tensor> parts, int dim) { return Views.concat(parts, dim); }
  public static Tensor stack(List<Tensor> parts, int dim) { return Views.stack(parts, dim); }

}
