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
import org.metakernels.runtime.CudaStream;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.runtime.RawPointer;

/**
 * An n-dimensional array on the CPU or a CUDA device: a {@link Storage}, an element offset, a
 * shape and strides (in elements), a {@link DType}. Views (reshape, permute, narrow, expand)
 * share the storage without copying. Every op on tensors that require gradients is recorded
 * for {@link Autograd}; every backward rule is itself made of differentiable ops, so gradients
 * can be differentiated again. Shapes are written as the math writes them: {@code [B, N, D]}.
 *
 * <p>Every tensor an op makes is owned by the innermost open {@link Scope} of the thread (or by
 * the caller outside any scope, who frees it with {@link #close()}). Binary elementwise ops
 * broadcast as NumPy does; arithmetic takes F32 and F64 operands of one dtype and device.
 * {@link #castTo(DType)} and {@link #copyContiguous()} are raw copies that autograd never
 * records; {@link #to(DType)} and {@link #contiguous()} are their differentiable forms.
 *
 * <p><b>Memory.</b> A tensor's memory has one owner (see {@link Scope}); views share it, and
 * closing any of them frees it for all. Reading a freed tensor throws
 * {@link IllegalStateException}. In-place ops refuse a destination that reaches an element twice
 * (an expanded view), and editing in place any tensor a recorded backward reads makes that
 * backward throw, naming the op and the tensor.
 *
 * <p><b>Threads.</b> A tensor is not locked. Any number of threads may read it at once (as an
 * op's input, or through {@code Autograd.grad} over a shared graph) while its owner keeps it
 * alive; a write ({@code addInPlace} and the other in-place ops, {@link #requiresGrad(boolean)},
 * gradient accumulation by {@code Autograd.backward}, an optimizer step) must not race with any
 * other use of the same memory.
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

  /**
   * A tensor over an existing storage (no copy, no tape). Ops in other packages reach it through
   * {@code org.metakernels.internal.Internals}; users make tensors with the factories and views.
   */
  Tensor(Storage storage, long offset, long[] shape, long[] strides, DType dtype) {
    this.storage = storage;
    this.offset = offset;
    this.shape = shape;
    this.strides = strides;
    this.dtype = dtype;
  }

  // ------------------------------------------------------------------------------------------
  // factories

  /**
   * An uninitialised contiguous tensor.
   * {@code Tensor.empty(new long[] {2, 3}, DType.F32, Device.CPU)}: F32 [2, 3], contents undefined.
   *
   * @param shape sizes: at most {@link Codes#MAX_RANK} dims, none negative
   * @param dtype element type
   * @param device where the memory lives
   * @return a new tensor of {@code shape}
   * @throws MetakernelsException for a bad shape, or CUDA where there is none
   */
  public static Tensor empty(long[] shape, DType dtype, Device device) {
    return empty("empty", shape, dtype, device);
  }

  /** {@link #empty(long[], DType, Device)} for the factory {@code op}, which bad shapes name. */
  private static Tensor empty(String op, long[] shape, DType dtype, Device device) {
    checkShape(op, shape);
    long n = numel(shape);
    Storage s;
    try {
      s = Storage.allocate(n * dtype.size, device);
    } catch (OutOfMemoryError e) {  // name the op and the tensor
      OutOfMemoryError named = new OutOfMemoryError(allocatingOp() + ": " + e.getMessage() + " for a " + dtype + " "
          + Arrays.toString(shape) + " tensor on " + device);
      named.initCause(e);
      throw named;
    }
    return new Tensor(s, 0, shape.clone(), contiguousStrides(shape), dtype);
  }

  /**
   * The op an allocation was for, read off the stack when it fails (nothing is paid otherwise): the
   * innermost library frame outside this class and {@link Storage} ({@code Attention.forward},
   * {@code Linalg.matmul}), else the outermost frame of this class ({@code Tensor.zeros}) when a
   * program asked for the tensor itself.
   */
  static String allocatingOp() {
    java.security.CodeSource lib = Tensor.class.getProtectionDomain().getCodeSource();
    return StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE).walk(frames -> {
      String outerTensor = "Tensor.empty";
      for (StackWalker.StackFrame f : (Iterable<StackWalker.StackFrame>) frames::iterator) {
        String c = f.getClassName();
        if (!c.startsWith("org.metakernels.")
            || !java.util.Objects.equals(f.getDeclaringClass().getProtectionDomain().getCodeSource(), lib)) break;
        String simple = c.substring(c.lastIndexOf('.') + 1), m = f.getMethodName();
        if (m.startsWith("lambda$")) m = m.substring(7, Math.max(7, m.indexOf('$', 7))) + " (backward rule)";
        if (c.equals(Storage.class.getName())) continue;
        if (c.equals(Tensor.class.getName())) {
          outerTensor = simple + "." + m;
          continue;
        }
        return simple.replace('$', '.') + "." + m;
      }
      return outerTensor;
    });
  }

  /**
   * A tensor filled with one value.
   * {@code Tensor.full(new long[] {2, 2}, 0.5, DType.F64, Device.CPU)}: F64 [2, 2] of 0.5.
   *
   * @param shape sizes
   * @param value the value, converted to {@code dtype} as {@link #castTo} converts
   * @param dtype element type
   * @param device where the memory lives
   * @return a new tensor of {@code shape}
   */
  public static Tensor full(long[] shape, double value, DType dtype, Device device) {
    return full("full", shape, value, dtype, device);
  }

  private static Tensor full(String op, long[] shape, double value, DType dtype, Device device) {
    Tensor t = empty(op, shape, dtype, device);
    Native.check(MkNative.mk_tensor_fill_forward(device.code, dtype.code, t.numel(), t.address(op), value,
        t.launchStream()), op + " " + Arrays.toString(shape));
    return t;
  }

  /**
   * A tensor of zeros. {@code Tensor.zeros(new long[] {10, 1}, DType.F64, Device.CPU)}: [10, 1].
   *
   * @param shape sizes
   * @param dtype element type
   * @param device where the memory lives
   * @return a new tensor of {@code shape}
   */
  public static Tensor zeros(long[] shape, DType dtype, Device device) {
    return full("zeros", shape, 0.0, dtype, device);
  }

  /**
   * A tensor of ones. {@code Tensor.ones(new long[] {4}, DType.F32, Device.CPU)}: [4].
   *
   * @param shape sizes
   * @param dtype element type
   * @param device where the memory lives
   * @return a new tensor of {@code shape}
   */
  public static Tensor ones(long[] shape, DType dtype, Device device) {
    return full("ones", shape, 1.0, dtype, device);
  }

  /**
   * Zeros with {@code t}'s shape, dtype and device (not requiring grad).
   * {@code Tensor.zerosLike(x)} for x [B, D]: [B, D].
   *
   * @param t the model
   * @return a new tensor
   */
  public static Tensor zerosLike(Tensor t) {
    return zeros(t.shape, t.dtype, t.device());
  }

  /**
   * Ones with {@code t}'s shape, dtype and device (not requiring grad).
   * {@code Tensor.onesLike(x)} for x [B, D]: [B, D].
   *
   * @param t the model
   * @return a new tensor
   */
  public static Tensor onesLike(Tensor t) {
    return ones(t.shape, t.dtype, t.device());
  }

  /**
   * A 0-d tensor holding {@code value}: {@code Tensor.scalar(2.0, DType.F64, Device.CPU)} has shape [].
   *
   * @param value the value, converted to {@code dtype}
   * @param dtype element type
   * @param device where the memory lives
   * @return a new tensor of shape []
   */
  public static Tensor scalar(double value, DType dtype, Device device) {
    return full(new long[0], value, dtype, device);
  }

  /**
   * Standard normal samples from a counter-based generator: the same seed gives the same bits on
   * the CPU (every ISA level and thread count) and on CUDA, in F32 and F64 (kernels/include/mk/
   * random.h). BF16/F16 are sampled in F32 and rounded.
   * {@code Tensor.randn(new long[] {32, 10}, DType.F64, Device.CPU, 7L)}: [32, 10].
   *
   * @param shape sizes
   * @param dtype a floating-point type
   * @param device where the memory lives
   * @param seed the generator's seed
   * @return a new tensor of {@code shape}
   * @throws MetakernelsException for I64
   */
  public static Tensor randn(long[] shape, DType dtype, Device device, long seed) {
    return random("randn", shape, dtype, device, seed, 1, 0.0, 1.0);
  }

  /**
   * Uniform samples in [0, 1), seeded as {@link #randn}: below 1 in the stored type too (a sample that
   * would round to 1, e.g. above 1 − 2^-9 in BF16, is stored as the largest value below it).
   * {@code Tensor.rand(new long[] {3, 4}, DType.F32, Device.CPU, 1L)}: [3, 4].
   *
   * @param shape sizes
   * @param dtype a floating-point type
   * @param device where the memory lives
   * @param seed the generator's seed
   * @return a new tensor of {@code shape}
   */
  public static Tensor rand(long[] shape, DType dtype, Device device, long seed) {
    return random("rand", shape, dtype, device, seed, 0, 0.0, 1.0);
  }

  /**
   * Uniform samples in [lo, hi), seeded as {@link #randn}, below hi in the stored type as for
   * {@link #rand}.
   * {@code Tensor.uniform(new long[] {64, 32}, -0.1, 0.1, DType.F32, Device.CPU, 1L)}: [64, 32].
   *
   * @param shape sizes
   * @param lo lower bound (included)
   * @param hi upper bound (excluded)
   * @param dtype a floating-point type
   * @param device where the memory lives
   * @param seed the generator's seed
   * @return a new tensor of {@code shape}
   * @throws MetakernelsException where lo &gt; hi, a bound is not finite or not finite in dtype, or
   *     hi − lo overflows (an empty shape takes any ordered bounds)
   */
  public static Tensor uniform(long[] shape, double lo, double hi, DType dtype, Device device, long seed) {
    checkShape("uniform", shape);
    boolean finite = Double.isFinite(lo) && Double.isFinite(hi);
    if (!(lo <= hi) || (!finite && numel(shape) > 0))  // as torch's uniform_: lo == hi gives lo
      throw new MetakernelsException("uniform: the bounds [" + lo + ", " + hi + ") of " + Arrays.toString(shape)
          + " must be finite with lo <= hi");
    // samples lo + (hi - lo) u: the width and the bounds must be finite in the stored type (else
    // samples became infinite, or all the clamped largest value)
    double max = switch (dtype) {
      case F32 -> Float.MAX_VALUE;
      case BF16 -> 3.3895313892515355e38;
      case F16 -> 65504;
      default -> Double.MAX_VALUE;
    };
    if (numel(shape) > 0 && dtype.isFloatingPoint()
        && (!Double.isFinite(hi - lo) || Math.abs(lo) > max || Math.abs(hi) > max))
      throw new MetakernelsException("uniform: the bounds [" + lo + ", " + hi + ") of " + Arrays.toString(shape)
          + " are too wide for " + dtype + " (bounds within +-" + max + ", their difference finite)");
    return random("uniform", shape, dtype, device, seed, 0, lo, hi);
  }

  private static Tensor random(String op, long[] shape, DType dtype, Device device, long seed, int dist, double a,
      double b) {
    if (!dtype.isFloatingPoint())
      throw new MetakernelsException(op + ": dtype " + dtype + " is not floating point");
    if (dtype.isHalf()) {  // sampled in F32 (the same values on both devices), then rounded
      try (Scope tmp = Scope.open()) {
        Tensor f = random(op, shape, DType.F32, device, seed, dist, a, b);
        if (dist == 0) {  // uniform: the rounding would reach b (1 in 2^9 of BF16 rand()); the half below it instead
          double lo = halfValue(dtype, a), hi = halfValue(dtype, b);
          if (lo < hi)  // the F32 below the midpoint of the top two halves rounds to the lower one
            f = f.clampMax(Math.nextDown((float) ((halfBelow(dtype, hi) + hi) / 2)));
        }
        return tmp.keep(f.castTo(dtype));
      }
    }
    Tensor t = empty(op, shape, dtype, device);
    Native.check(MkNative.mk_tensor_random_forward(device.code, dtype.code, dist, t.numel(), t.address(op),
        seed, a, b, t.launchStream()), op + " " + Arrays.toString(shape));
    return t;
  }

  // v rounded to the half type (through F32, as castTo rounds)
  private static double halfValue(DType half, double v) {
    try (Tensor t = scalar(v, DType.F32, Device.CPU); Tensor h = t.castTo(half)) {
      return h.item();
    }
  }

  // The largest value of the half type below h (h itself one of its values, finite).
  static double halfBelow(DType half, double h) {
    float f = (float) h;
    if (half == DType.BF16) {  // BF16: the top 16 bits of an F32
      int bits = Float.floatToRawIntBits(f);
      if (f == 0f) return Float.intBitsToFloat(0x80010000);
      return Float.intBitsToFloat(f > 0 ? bits - 0x10000 : bits + 0x10000);
    }
    // F16: 10 stored mantissa bits, subnormal spacing 2^-24 below 2^-14
    if (f == 0f) return -0x1p-24;
    double a = Math.abs(h);
    int e = Math.getExponent(a);
    double step = a < 0x1p-14 ? 0x1p-24 : Math.scalb(1.0, e - 10);
    if (h > 0 && a == Math.scalb(1.0, e) && a > 0x1p-14) step /= 2;  // down into the binade below
    return h - step;
  }

  /**
   * A CPU F32 tensor holding {@code data} in row-major order.
   * {@code Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3)}: F32 [2, 3].
   *
   * @param data the values; their count must be the shape's element count
   * @param shape sizes (none: a 0-d tensor of one value)
   * @return a new CPU tensor
   */
  public static Tensor of(float[] data, long... shape) {
    checkData("of", data.length, shape);
    Tensor t = empty(shape, DType.F32, Device.CPU);
    new FloatPointer(new RawPointer(t.address("of"), 4L * data.length)).put(data);
    return t;
  }

  /**
   * A CPU F64 tensor holding {@code data} in row-major order.
   * {@code Tensor.of(new double[] {1, 2, 3, 4, 5, 6}, 3, 2)}: F64 [3, 2].
   *
   * @param data the values; their count must be the shape's element count
   * @param shape sizes (none: a 0-d tensor of one value)
   * @return a new CPU tensor
   */
  public static Tensor of(double[] data, long... shape) {
    checkData("of", data.length, shape);
    Tensor t = empty(shape, DType.F64, Device.CPU);
    new DoublePointer(new RawPointer(t.address("of"), 8L * data.length)).put(data);
    return t;
  }

  /**
   * A CPU I64 tensor (indices, class targets) holding {@code data} in row-major order.
   * {@code Tensor.ofIndices(new long[] {2, 0, 1}, 3)}: I64 [3].
   *
   * @param data the values; their count must be the shape's element count
   * @param shape sizes
   * @return a new CPU tensor
   */
  public static Tensor ofIndices(long[] data, long... shape) {
    checkData("ofIndices", data.length, shape);
    Tensor t = empty(shape, DType.I64, Device.CPU);
    new LongPointer(new RawPointer(t.address("ofIndices"), 8L * data.length)).put(data);
    return t;
  }

  /**
   * 0, 1, ..., n − 1 as a 1-d tensor: {@code Tensor.arange(5, DType.F32, Device.CPU)} is
   * [0, 1, 2, 3, 4], shape [5].
   *
   * @param n the count, in [0, 2^31 − 8)
   * @param dtype element type
   * @param device where the memory lives
   * @return a new tensor of shape [n]
   */
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
   * Rejects ranks above 8, negative sizes, and shapes whose byte size overflows a long (their
   * element count would wrap around and describe memory that was never allocated). Ops in other
   * packages reach it through {@code Internals}.
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

  /**
   * The sizes (a copy), e.g. [B, H, N, D]; [] for a 0-d tensor.
   *
   * @return the shape
   */
  public long[] shape() {
    return shape.clone();
  }

  /**
   * The size of one dim; negative dims count from the end ({@code x.size(-1)} of [B, N, D] is D).
   *
   * @param dim the dim, in [−rank, rank)
   * @return its size
   */
  public long size(int dim) {
    return shape[normDim(dim)];
  }

  /**
   * The strides in elements (a copy): [3, 1] for a contiguous [2, 3]; 0 along expanded dims.
   *
   * @return the strides
   */
  public long[] strides() {
    return strides.clone();
  }

  /**
   * The position of element 0 in the storage, in elements.
   *
   * @return the offset
   */
  public long offset() {
    return offset;
  }

  /**
   * The number of dims (0 for a scalar).
   *
   * @return the rank
   */
  public int rank() {
    return shape.length;
  }

  /**
   * The number of elements: the product of the shape (1 for a 0-d tensor).
   *
   * @return the element count
   */
  public long numel() {
    return numel(shape);
  }

  /**
   * The element type.
   *
   * @return the dtype
   */
  public DType dtype() {
    return dtype;
  }

  /**
   * The device of the storage.
   *
   * @return the device
   */
  public Device device() {
    return storage.device();
  }

  /**
   * The storage this tensor views, shared with every view of it.
   *
   * @return the storage
   */
  public Storage storage() {
    return storage;
  }

  /**
   * True once the storage was freed (its scope closed or {@link #close()} was called).
   *
   * @return whether the memory is gone
   */
  public boolean isClosed() {
    return storage.isClosed();
  }

  /**
   * The native address of element 0 (offset applied), for code that passes tensors to native
   * kernels itself. On CUDA, a tensor whose memory belongs to another stream than the calling
   * thread's current one is recorded as used by the current stream (see {@link CudaStream}), so
   * its memory is not reused before that stream's work on it is done.
   *
   * @param op the caller's name, for the exception's message
   * @return the address
   * @throws IllegalStateException once the storage was freed (the message names {@code op} and
   *     this tensor's dtype and shape)
   */
  public long address(String op) {
    if (storage.isClosed())
      throw new IllegalStateException(op + ": " + describe()
          + " was already freed (its scope or the tensor was closed)");
    if (storage.device() != Device.CPU) storage.recordUse(CudaStream.current());
    return storage.address(op) + offset * dtype.size;
  }

  /**
   * The CUDA stream this tensor's memory was allocated for: the thread's current stream when it
   * was made (inside {@code CudaRuntime.useStream(s)}: {@code s.handle()}), 0 for the default
   * stream, once that stream was closed, and on the CPU (CPU tensors ignore streams). Ops do not
   * launch on it but on the current stream ({@link #launchStream()}).
   *
   * @return the stream handle
   */
  public long stream() {
    return storage.streamHandle();
  }

  /**
   * The stream an op on this tensor launches on now: the calling thread's current stream
   * ({@link CudaStream#current()}) for a CUDA tensor, 0 on the CPU. Every native call passes it.
   *
   * @return the stream handle
   * @throws IllegalStateException when the current stream was closed
   */
  public long launchStream() {
    return storage.device() == Device.CPU ? 0L : CudaStream.current().handle();
  }

  /**
   * True when the elements lie in row-major order without gaps (strides of size-1 dims are
   * ignored; the offset may be anything).
   *
   * @return whether the layout is contiguous
   */
  public boolean isContiguous() {
    long acc = 1;
    for (int d = shape.length - 1; d >= 0; d--) {
      if (shape[d] != 1 && strides[d] != acc) return false;
      acc *= shape[d];
    }
    return true;
  }

  /**
   * {@code dim} counted from the end when negative: -1 is 2 for a rank-3 tensor.
   *
   * @param dim the dim, in [−rank, rank)
   * @return the dim in [0, rank)
   * @throws MetakernelsException when out of range (always for a 0-d tensor)
   */
  public int normDim(int dim) {
    return normDim(dim, null);
  }

  /**
   * {@link #normDim(int)} whose error names {@code op}.
   *
   * @param dim the dim, in [−rank, rank)
   * @param op the op to name in the error, or null
   * @return the dim in [0, rank)
   * @throws MetakernelsException when out of range (always for a 0-d tensor)
   */
  public int normDim(int dim, String op) {
    int r = shape.length;
    int d = dim < 0 ? dim + r : dim;
    if (d < 0 || d >= Math.max(r, 1) || (r == 0))
      throw new MetakernelsException((op == null ? "" : op + ": ") + "dim " + dim + " out of range for shape "
          + Arrays.toString(shape));
    return d;
  }

  /**
   * The element count of a shape: {@code numel(new long[] {2, 3, 4})} is 24; 1 for [].
   *
   * @param shape sizes
   * @return their product
   */
  public static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) n *= d;
    return n;
  }

  /**
   * Row-major strides of a shape: [2, 3, 4] gives [12, 4, 1].
   *
   * @param shape sizes
   * @return the strides, in elements
   */
  public static long[] contiguousStrides(long[] shape) {
    long[] s = new long[shape.length];
    long acc = 1;
    for (int d = shape.length - 1; d >= 0; d--) {
      s[d] = acc;
      acc *= shape[d];
    }
    return s;
  }

  /**
   * Dtype, shape and (when not the CPU) device, for messages: "F32[2, 3]", "BF16[4]@CUDA".
   *
   * @return the description
   */
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

  /**
   * True for a leaf marked with {@link #requiresGrad(boolean)} or any result of a recorded op.
   *
   * @return whether gradients flow to or through this tensor
   */
  public boolean requiresGrad() {
    return requiresGrad || gradFn != null;
  }

  /**
   * Marks (or unmarks) this leaf as needing gradients:
   * {@code Tensor w = Tensor.zeros(new long[] {10, 1}, DType.F64, Device.CPU).requiresGrad(true)}.
   *
   * @param flag true to record ops on this tensor
   * @return this
   * @throws MetakernelsException when unmarking a recorded result (use {@link #detach()}) or
   *     marking a tensor that is not floating point
   */
  public Tensor requiresGrad(boolean flag) {
    if (gradFn != null && !flag)
      throw new MetakernelsException("requiresGrad(false): " + describe() + " is the result of '" + gradFn.name()
          + "'; use detach()");
    if (flag && !dtype.isFloatingPoint())
      throw new MetakernelsException("requiresGrad: " + describe() + " is not floating point");
    this.requiresGrad = flag;
    return this;
  }

  /**
   * The gradient {@link #backward()} accumulated into this leaf (this tensor's shape), or null.
   *
   * @return the gradient or null
   */
  public Tensor grad() {
    return grad;
  }

  /** Sets the accumulated gradient (autograd, through {@code Internals}). */
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

  /**
   * The tape node that made this tensor, or null for a leaf or an unrecorded result.
   *
   * @return the node or null
   */
  public Node gradFn() {
    return gradFn;
  }

  /**
   * Which output of {@link #gradFn()} this tensor is (0 for single-output ops).
   *
   * @return the output index
   */
  public int outputIndex() {
    return outputIndex;
  }

  /**
   * Attaches this tensor as output {@code index} of {@code node} (autograd, through
   * {@code Internals}).
   */
  void setGradFn(Node node, int index) {
    this.gradFn = node;
    this.outputIndex = index;
  }

  /**
   * A view sharing memory but cut from the tape: same shape, {@code requiresGrad()} false.
   *
   * @return the detached view
   */
  public Tensor detach() {
    return new Tensor(storage, offset, shape, strides, dtype);
  }

  /**
   * Accumulates d(this)/d(leaf) into the {@link #grad()} of every leaf that requires grad; this
   * must have one element. {@code loss.backward(); w.grad()} is w's shape.
   */
  public void backward() {
    Autograd.backward(this);
  }

  // ------------------------------------------------------------------------------------------
  // data transfer

  /**
   * The elements in row-major order, copied to the host and converted:
   * {@code Tensor.of(new float[] {1, 2, 3, 4}, 2, 2).toDoubleArray()} is {1, 2, 3, 4}.
   *
   * @return a new array of {@link #numel()} values
   */
  public double[] toDoubleArray() {
    try (Scope tmp = Scope.open()) {
      Tensor c = hostContiguous(DType.F64);
      double[] out = new double[Math.toIntExact(c.numel())];
      new DoublePointer(new RawPointer(c.address("toDoubleArray"), 8L * out.length)).get(out);
      return out;
    }
  }

  /**
   * The elements in row-major order as floats (BF16/F16 widened exactly; F64 rounded).
   *
   * @return a new array of {@link #numel()} values
   */
  public float[] toFloatArray() {
    try (Scope tmp = Scope.open()) {
      Tensor c = hostContiguous(DType.F32);
      float[] out = new float[Math.toIntExact(c.numel())];
      new FloatPointer(new RawPointer(c.address("toFloatArray"), 4L * out.length)).get(out);
      return out;
    }
  }

  /**
   * The elements in row-major order as longs (floating-point values truncated toward zero).
   * {@code Tensor.ofIndices(new long[] {2, 0}, 2).toLongArray()} is {2, 0}.
   *
   * @return a new array of {@link #numel()} values
   */
  public long[] toLongArray() {
    try (Scope tmp = Scope.open()) {
      Tensor c = hostContiguous(DType.I64);
      long[] out = new long[Math.toIntExact(c.numel())];
      new LongPointer(new RawPointer(c.address("toLongArray"), 8L * out.length)).get(out);
      return out;
    }
  }

  /**
   * The single value of a one-element tensor: {@code loss.item()}.
   *
   * @return the value
   * @throws MetakernelsException when {@link #numel()} is not 1
   */
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

  /**
   * A copy on {@code device} (this if already there). Differentiable: the gradient goes back.
   * {@code x.to(Device.CUDA)}: x's shape and dtype, on the GPU.
   *
   * @param device the target device
   * @return the copy, contiguous
   */
  public Tensor to(Device device) {
    address("to");  // a freed tensor is refused even when nothing would change
    if (device == device()) return this;
    return Views.toDevice(this, device);
  }

  /**
   * A copy with element type {@code type} (this if already so), rounded to nearest even when
   * narrowing to BF16/F16. Differentiable between the floating-point types (F32, F64, BF16, F16):
   * the gradient is cast back. {@code x.to(DType.BF16)}: x's shape, BF16.
   *
   * @param type the target type
   * @return the converted copy
   */
  public Tensor to(DType type) {
    address("to");  // a freed tensor is refused even when nothing would change
    if (type == dtype) return this;
    return Views.cast(this, type);
  }

  /**
   * A new contiguous copy converted to {@code type}, <b>not recorded by autograd</b> (the result
   * never requires grad); even the same type gives a copy. Narrowing rounds once to nearest even
   * (F64 to BF16/F16 through a float rounded to odd, I64 to F32 directly, I64 to BF16/F16 through a
   * double rounded to odd); floating point to I64 truncates toward zero as Java's {@code (long)}
   * cast does: NaN gives 0, values beyond the range the nearest of {@code Long.MIN_VALUE} and
   * {@code Long.MAX_VALUE} (on the CPU and the GPU alike). Use
   * {@link #to(DType)} inside a differentiated computation.
   * {@code x.castTo(DType.F32)} for x F64 [B, D]: F32 [B, D].
   *
   * @param type the target type
   * @return the converted copy
   */
  public Tensor castTo(DType type) {
    Tensor src = isContiguous() ? this : copyContiguous();
    Tensor out = empty(shape, type, device());
    Native.check(MkNative.mk_tensor_cast_forward(device().code, dtype.code, type.code, numel(), src.address("cast"),
        out.address("cast"), launchStream()), () -> "cast " + describe() + " -> " + type);
    return out;
  }

  /**
   * A new row-major copy, <b>not recorded by autograd</b> (the result never requires grad), so
   * {@code x.copyContiguous().requiresGrad(true)} is a fresh leaf with x's values. Use
   * {@link #contiguous()} inside a differentiated computation. Same shape and dtype.
   *
   * @return the copy
   */
  public Tensor copyContiguous() {
    Tensor out = empty(shape, dtype, device());
    Native.check(MkNative.mk_tensor_copy_forward(device().code, dtype.code, shape.length, shape, address("contiguous"),
        strides, out.address("contiguous"), out.strides, launchStream()), () -> "contiguous " + describe());
    return out;
  }

  /**
   * Copies {@code src} (same shape, dtype and device, any strides) into this tensor's memory: no
   * in-place checks, no version bump, not recorded (autograd and ops, through {@code Internals};
   * users have {@link #copyInPlace(Tensor)}).
   */
  void copyFrom(Tensor src) {
    if (!Arrays.equals(src.shape, shape) || src.dtype != dtype || src.device() != device())
      throw new MetakernelsException("copyFrom: " + src.describe() + " into " + describe());
    Native.check(MkNative.mk_tensor_copy_forward(device().code, dtype.code, shape.length, shape, src.address("copyFrom"),
        src.strides, address("copyFrom"), strides, launchStream()), () -> "copyFrom " + describe());
  }

  /**
   * Frees this tensor's storage now (and so every view on it). Idempotent. Tensors made inside a
   * {@link Scope} need not be closed: the scope frees them.
   */
  @Override
  public void close() {
    storage.free();
  }

  // ------------------------------------------------------------------------------------------
  // views (differentiable)

  /**
   * The same elements in a new shape; one size may be -1 (inferred). A view whenever the strides
   * allow one (a contiguous tensor; size-1 dims dropped or inserted; a dim split, or dims merged
   * that are adjacent in memory), else a copy, as PyTorch's reshape; this when the shape is
   * unchanged. Differentiable.
   * {@code x.reshape(b, n, h, dh)} of [B, N, H·dh]: [B, N, H, dh].
   *
   * @param newShape sizes with the same element count
   * @return the reshaped tensor
   */
  public Tensor reshape(long... newShape) {
    return Views.reshape(this, newShape);
  }

  /**
   * {@link #reshape(long...)} under another name (it also copies where no view has the shape).
   * {@code x.view(-1)} of [B, D]: [B·D].
   *
   * @param newShape sizes with the same element count
   * @return the reshaped tensor
   */
  public Tensor view(long... newShape) {
    return Views.reshape(this, newShape);
  }

  /**
   * All elements in one dim: {@code x.flatten()} of [B, N, D] is [B·N·D].
   *
   * @return {@code reshape(numel())}
   */
  public Tensor flatten() {
    address("flatten");
    return reshape(numel());
  }

  /**
   * Reorders the dims (a view): result dim i is dim {@code dims[i]} of this; negative dims count
   * from the end. {@code x.permute(0, 2, 1, 3)} of [B, N, H, dh]: [B, H, N, dh].
   *
   * @param dims a permutation of the dims
   * @return the permuted view
   */
  public Tensor permute(int... dims) {
    return Views.permute(this, dims);
  }

  /**
   * Swaps two dims (a view): {@code x.transpose(1, 2)} of [B, N, D] is [B, D, N].
   *
   * @param d0 one dim (negative: from the end)
   * @param d1 the other dim
   * @return the transposed view
   */
  public Tensor transpose(int d0, int d1) {
    address("transpose");
    int r = rank();
    int[] p = new int[r];
    for (int i = 0; i < r; i++) p[i] = i;
    int a = normDim(d0, "transpose"), b = normDim(d1, "transpose");
    p[a] = b;
    p[b] = a;
    return permute(p);
  }

  /**
   * Swaps the last two dims (a view; rank ≥ 2): {@code w.mT()} of [out, in] is [in, out].
   *
   * @return the transposed view
   */
  public Tensor mT() {
    return transpose(-2, -1);
  }

  /**
   * The slice [start, start + length) of one dim (a view); its gradient is zero outside the
   * slice. {@code e.narrow(1, 0, c)} of [B, T, D]: [B, c, D].
   *
   * @param dim the dim (negative: from the end)
   * @param start first index kept
   * @param length number of indices kept
   * @return the slice
   */
  public Tensor narrow(int dim, long start, long length) {
    return Views.narrow(this, dim, start, length);
  }

  /**
   * One index of a dim, which is removed (a view, whatever the strides): {@code x.select(0, 2)} of
   * [N, D] is [D].
   *
   * @param dim the dim (negative: from the end)
   * @param index the index, in [0, size)
   * @return the view, one rank lower
   */
  public Tensor select(int dim, long index) {
    address("select");
    int d = normDim(dim, "select");
    if (index < 0 || index >= shape[d])
      throw new MetakernelsException("select: index " + index + " outside dim " + dim + " of " + describe());
    return narrow(d, index, 1).squeeze(d);
  }

  /**
   * Broadcasts size-1 dims, and new leading dims, to {@code newShape} without copying (stride 0);
   * -1 keeps a size. Its gradient sums over the expanded dims.
   * {@code b.expand(B, N, D)} of [D]: [B, N, D].
   *
   * @param newShape the target sizes
   * @return the expanded view (this when nothing changes)
   */
  public Tensor expand(long... newShape) {
    return Views.expand(this, newShape);
  }

  /**
   * Inserts a size-1 dim at {@code dim}, in [−rank − 1, rank]: {@code x.unsqueeze(1)} of [B, D]
   * is [B, 1, D].
   *
   * @param dim where the new dim goes
   * @return the view, one rank higher
   */
  public Tensor unsqueeze(int dim) {
    address("unsqueeze");
    int d = dim < 0 ? dim + rank() + 1 : dim;
    if (d < 0 || d > rank()) throw new MetakernelsException("unsqueeze: dim " + dim + " out of range for " + describe());
    long[] s = new long[rank() + 1];
    for (int i = 0, j = 0; i < s.length; i++) s[i] = i == d ? 1 : shape[j++];
    return reshape(s);
  }

  /**
   * Removes a size-1 dim: {@code x.squeeze(1)} of [B, 1, D] is [B, D].
   *
   * @param dim the dim, whose size must be 1
   * @return the view, one rank lower
   */
  public Tensor squeeze(int dim) {
    address("squeeze");
    int d = normDim(dim, "squeeze");
    if (shape[d] != 1) throw new MetakernelsException("squeeze: dim " + dim + " of " + describe() + " is not 1");
    long[] s = new long[rank() - 1];
    for (int i = 0, j = 0; i < shape.length; i++) if (i != d) s[j++] = shape[i];
    return reshape(s);
  }

  /**
   * This tensor if contiguous, else a row-major copy. Differentiable. Same shape:
   * {@code x.mT().contiguous()} is [N, M] with strides [M, 1] for x [M, N].
   *
   * @return a contiguous tensor
   */
  public Tensor contiguous() {
    address("contiguous");
    if (isContiguous()) return this;
    return Views.contiguous(this);
  }

  // ------------------------------------------------------------------------------------------
  // elementwise (differentiable; binary ops broadcast)

  /**
   * Elementwise {@code this + o}, broadcast: {@code x.add(b)} of [B, N, D] and [D] is [B, N, D].
   *
   * @param o the other operand: same dtype (F32 or F64) and device
   * @return the sum, in the broadcast shape
   */
  public Tensor add(Tensor o) { return Dense.add(this, o); }

  /**
   * Elementwise {@code this − o}, broadcast: {@code x.sub(mu)} of [B, D] and [B, 1] is [B, D].
   *
   * @param o the other operand: same dtype (F32 or F64) and device
   * @return the difference, in the broadcast shape
   */
  public Tensor sub(Tensor o) { return Dense.sub(this, o); }

  /**
   * Elementwise {@code this · o}, broadcast: {@code x.mul(w)} of [B, D] and [D] is [B, D].
   *
   * @param o the other operand: same dtype (F32 or F64) and device
   * @return the product, in the broadcast shape
   */
  public Tensor mul(Tensor o) { return Dense.mul(this, o); }

  /**
   * Elementwise {@code this / o}, broadcast: {@code x.div(n)} of [B, D] and [B, 1] is [B, D].
   *
   * @param o the other operand: same dtype (F32 or F64) and device
   * @return the quotient, in the broadcast shape
   */
  public Tensor div(Tensor o) { return Dense.div(this, o); }

  /**
   * {@code this + c}: {@code x.add(1.0)} keeps x's shape.
   *
   * @param c the scalar
   * @return the sum
   */
  public Tensor add(double c) { return Dense.addScalar(this, c); }

  /**
   * {@code this − c}: {@code x.sub(0.5)} keeps x's shape.
   *
   * @param c the scalar
   * @return the difference
   */
  public Tensor sub(double c) { return Dense.subScalar(this, c); }

  /**
   * {@code this · c}: {@code x.mul(2.0)} keeps x's shape.
   *
   * @param c the scalar
   * @return the product
   */
  public Tensor mul(double c) { return Dense.mulScalar(this, c); }

  /**
   * {@code this · (1 / c)} (a multiplication by the reciprocal): {@code x.div(n)} keeps x's shape.
   *
   * @param c the scalar
   * @return the quotient
   */
  public Tensor div(double c) { return Dense.divScalar(this, c); }

  /**
   * {@code c − this}: {@code y.square().rsub(1.0)} keeps y's shape.
   *
   * @param c the scalar
   * @return the difference
   */
  public Tensor rsub(double c) { return Dense.rsubScalar(this, c); }

  /**
   * {@code −this}; same shape. {@code x.neg()}.
   *
   * @return the negation
   */
  public Tensor neg() { return Dense.neg(this); }

  /**
   * e^x elementwise; same shape. {@code x.exp()}.
   *
   * @return the exponential
   */
  public Tensor exp() { return Dense.exp(this); }

  /**
   * Natural log elementwise; same shape. {@code p.log()}.
   *
   * @return the logarithm
   */
  public Tensor log() { return Dense.log(this); }

  /**
   * log(1 + x) elementwise, accurate near 0; same shape. {@code x.log1p()}.
   *
   * @return the result
   */
  public Tensor log1p() { return Dense.log1p(this); }

  /**
   * tanh elementwise; same shape. {@code x.matmul(w).tanh()}.
   *
   * @return the result
   */
  public Tensor tanh() { return Dense.tanh(this); }

  /**
   * 1 / (1 + e^−x) elementwise; same shape. {@code x.sigmoid()}.
   *
   * @return the result
   */
  public Tensor sigmoid() { return Dense.sigmoid(this); }

  /**
   * log(1 + e^x) elementwise, without overflow; differentiable to any order (its derivative is
   * sigmoid). {@code Tensor.of(new double[] {-1, 0, 1}, 3).softplus()} is
   * [0.3133, 0.6931, 1.3133], shape [3].
   *
   * @return the result
   */
  public Tensor softplus() { return Dense.softplus(this); }

  /**
   * max(x, 0) elementwise; the gradient is 1 where x &gt; 0, else 0. Same shape. {@code h.relu()}.
   *
   * @return the result
   */
  public Tensor relu() { return Dense.relu(this); }

  /**
   * GELU, tanh approximation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))); same shape.
   * {@code h.gelu()}.
   *
   * @return the result
   */
  public Tensor gelu() { return Dense.gelu(this); }

  /**
   * elu(x) + 1 (x + 1 for x &gt; 0, else e^x): the positive feature map of linear attention. Same
   * shape. {@code q.elu1()}.
   *
   * @return the result
   */
  public Tensor elu1() { return Dense.elu1(this); }

  /**
   * √x elementwise; same shape. {@code v.sqrt()}.
   *
   * @return the result
   */
  public Tensor sqrt() { return Dense.sqrt(this); }

  /**
   * 1 / √x elementwise; same shape. {@code var.add(eps).rsqrt()}.
   *
   * @return the result
   */
  public Tensor rsqrt() { return Dense.rsqrt(this); }

  /**
   * x² elementwise; same shape. {@code d.square().mean()}.
   *
   * @return the result
   */
  public Tensor square() { return Dense.square(this); }

  /**
   * x^p elementwise ({@code p} 2 is {@link #square()}); same shape. {@code x.pow(3.0)}.
   *
   * @param p the exponent
   * @return the result
   */
  public Tensor pow(double p) { return Dense.pow(this, p); }

  /**
   * x^p elementwise, broadcast; differentiable in both (the exponent's gradient uses log x).
   * {@code x.pow(p)} of [B, D] and [D] is [B, D].
   *
   * @param p the exponents: same dtype and device
   * @return the result, in the broadcast shape
   */
  public Tensor pow(Tensor p) { return Dense.pow(this, p); }

  /**
   * |x| elementwise; the gradient is sign(x). Same shape. {@code d.abs()}.
   *
   * @return the result
   */
  public Tensor abs() { return Dense.abs(this); }

  /**
   * −1, 0 or 1 elementwise; piecewise constant, so not recorded (no gradient). Same shape:
   * {@code Tensor.of(new double[] {-2, 0, 3}, 3).sign()} is [-1, 0, 1].
   *
   * @return the result
   */
  public Tensor sign() { return Dense.sign(this); }

  /**
   * 1 / x elementwise; same shape. {@code x.reciprocal()}.
   *
   * @return the result
   */
  public Tensor reciprocal() { return Dense.reciprocal(this); }

  /**
   * cos x elementwise; same shape. {@code t.cos()}.
   *
   * @return the result
   */
  public Tensor cos() { return Dense.cos(this); }

  /**
   * sin x elementwise; same shape. {@code t.sin()}.
   *
   * @return the result
   */
  public Tensor sin() { return Dense.sin(this); }

  /**
   * Elementwise max, broadcast; on ties the gradient goes to this. {@code x.maximum(y)}.
   *
   * @param o the other operand: same dtype and device
   * @return the result, in the broadcast shape
   */
  public Tensor maximum(Tensor o) { return Dense.maximum(this, o); }

  /**
   * Elementwise min, broadcast; on ties the gradient goes to this. {@code x.minimum(y)}.
   *
   * @param o the other operand: same dtype and device
   * @return the result, in the broadcast shape
   */
  public Tensor minimum(Tensor o) { return Dense.minimum(this, o); }

  /**
   * max(x, lo) elementwise; the gradient passes where x ≥ lo. Same shape. {@code den.clampMin(1e-6)}.
   *
   * @param lo the lower bound
   * @return the result
   */
  public Tensor clampMin(double lo) { return Dense.clampMin(this, lo); }

  /**
   * min(x, hi) elementwise; the gradient passes where x ≤ hi. Same shape. {@code x.clampMax(1.0)}.
   *
   * @param hi the upper bound
   * @return the result
   */
  public Tensor clampMax(double hi) { return Dense.clampMax(this, hi); }

  // comparisons give 1.0 / 0.0 in this dtype and carry no gradient
  /**
   * 1.0 where {@code this == o}, else 0.0, in this dtype (F32 or F64), broadcast; not recorded (no
   * gradient). The same holds for {@link #ne}, {@link #lt}, {@link #le}, {@link #gt} and
   * {@link #ge}. {@code a.eq(b)} of [B, D] and [D] is [B, D].
   *
   * @param o the other operand: same dtype and device
   * @return the mask, in the broadcast shape
   */
  public Tensor eq(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_EQ, "eq"); }

  /**
   * 1.0 where {@code this != o}, else 0.0 (as {@link #eq}).
   *
   * @param o the other operand
   * @return the mask, in the broadcast shape
   */
  public Tensor ne(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_NE, "ne"); }

  /**
   * 1.0 where {@code this < o}, else 0.0 (as {@link #eq}).
   *
   * @param o the other operand
   * @return the mask, in the broadcast shape
   */
  public Tensor lt(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_LT, "lt"); }

  /**
   * 1.0 where {@code this <= o}, else 0.0 (as {@link #eq}).
   *
   * @param o the other operand
   * @return the mask, in the broadcast shape
   */
  public Tensor le(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_LE, "le"); }

  /**
   * 1.0 where {@code this > o}, else 0.0 (as {@link #eq}).
   *
   * @param o the other operand
   * @return the mask, in the broadcast shape
   */
  public Tensor gt(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_GT, "gt"); }

  /**
   * 1.0 where {@code this >= o}, else 0.0 (as {@link #eq}).
   *
   * @param o the other operand
   * @return the mask, in the broadcast shape
   */
  public Tensor ge(Tensor o) { return Internals.dense().compare(this, o, Codes.BINARY_GE, "ge"); }

  /**
   * 1.0 where {@code this > c}, else 0.0 (as {@link #eq}); same shape. {@code x.gt(0.0)}.
   *
   * @param c the scalar
   * @return the mask
   */
  public Tensor gt(double c) { return Internals.dense().compareScalar(this, c, Codes.BINARY_GT, "gt"); }

  /**
   * 1.0 where {@code this < c}, else 0.0 (as {@link #eq}); same shape. {@code d.abs().lt(eps)}.
   *
   * @param c the scalar
   * @return the mask
   */
  public Tensor lt(double c) { return Internals.dense().compareScalar(this, c, Codes.BINARY_LT, "lt"); }

  /**
   * {@code cond != 0 ? a : b}, broadcasting all three; the gradient flows to a and b, not cond
   * (which has a's dtype and device, e.g. a comparison's result).
   * {@code Tensor.where(x.gt(0.0), x, y)} of [B, D], [B, D], [D] is [B, D].
   *
   * @param cond the selector
   * @param a values where cond is non-zero
   * @param b values elsewhere
   * @return the selection, in the broadcast shape
   */
  public static Tensor where(Tensor cond, Tensor a, Tensor b) { return Dense.where(cond, a, b); }

  // in place (refused on tensors the tape needs)
  /**
   * {@code this += o}, o broadcast to this shape. Like every in-place op it is refused while
   * recording when this requires grad (wrap it in {@link Autograd#noGrad()}), and it bumps the
   * storage's version, so a tape that saved this tensor fails loudly instead of using new values.
   * {@code m.addInPlace(g)}: m keeps its shape.
   *
   * @param o the other operand: same dtype and device
   * @return this
   */
  public Tensor addInPlace(Tensor o) { return Internals.dense().inPlace(this, o, Codes.BINARY_ADD, "addInPlace"); }

  /**
   * {@code this −= o}, o broadcast to this shape (as {@link #addInPlace}).
   *
   * @param o the other operand
   * @return this
   */
  public Tensor subInPlace(Tensor o) { return Internals.dense().inPlace(this, o, Codes.BINARY_SUB, "subInPlace"); }

  /**
   * {@code this ·= o}, o broadcast to this shape (as {@link #addInPlace}).
   *
   * @param o the other operand
   * @return this
   */
  public Tensor mulInPlace(Tensor o) { return Internals.dense().inPlace(this, o, Codes.BINARY_MUL, "mulInPlace"); }

  /**
   * {@code this ·= c} (as {@link #addInPlace}): {@code v.mulInPlace(0.9)}.
   *
   * @param c the scalar
   * @return this
   */
  public Tensor mulInPlace(double c) { return Internals.dense().scalarInPlace(this, Codes.UNARY_MUL_SCALAR, c, "mulInPlace"); }

  /**
   * Sets every element to {@code v}, in any dtype (as {@link #addInPlace}).
   *
   * @param v the value
   * @return this
   */
  public Tensor fillInPlace(double v) { return Internals.dense().fillInPlace(this, v); }

  /**
   * Copies {@code src} (same dtype and device, broadcast to this shape) into this tensor (as
   * {@link #addInPlace}). {@code p.copyInPlace(q)}.
   *
   * @param src the values
   * @return this
   */
  public Tensor copyInPlace(Tensor src) { return Internals.dense().inPlaceCopy(this, src); }

  // ------------------------------------------------------------------------------------------
  // reductions

  /**
   * Sum of all elements: {@code x.sum()} has shape [].
   *
   * @return the sum
   */
  public Tensor sum() { return Reductions.sum(this, null, false); }

  /**
   * Sum over one dim: {@code x.sum(1, false)} of [B, N, D] is [B, D]; with keepDim [B, 1, D].
   *
   * @param dim the dim (negative: from the end)
   * @param keepDim keep it with size 1
   * @return the sum
   */
  public Tensor sum(int dim, boolean keepDim) { return Reductions.sum(this, new int[] {dim}, keepDim); }

  /**
   * Sum over several dims: {@code x.sum(new int[] {0, 2}, false)} of [B, N, D] is [N].
   *
   * @param dims distinct dims (negative: from the end); null for all
   * @param keepDim keep them with size 1
   * @return the sum
   */
  public Tensor sum(int[] dims, boolean keepDim) { return Reductions.sum(this, dims, keepDim); }

  /**
   * Mean of all elements: {@code x.mean()} has shape [].
   *
   * @return the mean
   * @throws MetakernelsException for an empty tensor
   */
  public Tensor mean() { return Reductions.mean(this, null, false); }

  /**
   * Mean over one dim: {@code x.mean(-1, true)} of [B, D] is [B, 1].
   *
   * @param dim the dim (negative: from the end)
   * @param keepDim keep it with size 1
   * @return the mean
   */
  public Tensor mean(int dim, boolean keepDim) { return Reductions.mean(this, new int[] {dim}, keepDim); }

  /**
   * Mean over several dims: {@code x.mean(new int[] {0, 1}, false)} of [B, N, D] is [D].
   *
   * @param dims distinct dims (negative: from the end); null for all
   * @param keepDim keep them with size 1
   * @return the mean
   */
  public Tensor mean(int[] dims, boolean keepDim) { return Reductions.mean(this, dims, keepDim); }

  /**
   * Variance over one dim: the mean squared deviation (divided by n, or by n − 1 when
   * {@code unbiased}). {@code x.var(-1, true, false)} of [B, D] is [B, 1].
   *
   * @param dim the dim (negative: from the end)
   * @param keepDim keep it with size 1
   * @param unbiased divide by n − 1
   * @return the variance
   */
  public Tensor var(int dim, boolean keepDim, boolean unbiased) { return Reductions.var(this, dim, keepDim, unbiased); }

  /**
   * Max over one dim with its position (I64): the first maximum, or the first NaN. The gradient
   * flows to that position. {@code x.max(1, false)} of [B, C]: values [B] and indices [B].
   *
   * @param dim the dim (negative: from the end); not empty
   * @param keepDim keep it with size 1
   * @return the values and indices
   */
  public Reductions.ValuesIndices max(int dim, boolean keepDim) { return Reductions.max(this, dim, keepDim); }

  /**
   * Min over one dim with its position (I64), as {@link #max(int, boolean)}.
   * {@code x.min(0, true)} of [N, D]: values and indices [1, D].
   *
   * @param dim the dim (negative: from the end); not empty
   * @param keepDim keep it with size 1
   * @return the values and indices
   */
  public Reductions.ValuesIndices min(int dim, boolean keepDim) { return Reductions.min(this, dim, keepDim); }

  /**
   * Max of all elements: {@code x.max()} has shape []; NaN if any element is NaN. Its gradient
   * goes to the first maximal element in row-major order (PyTorch splits it among ties).
   *
   * @return the maximum
   * @throws MetakernelsException for an empty tensor or one that is not F32/F64
   */
  public Tensor max() {
    address("max");
    if (!dtype.isFloating())
      throw new MetakernelsException("max: expected a floating-point tensor (F32 or F64), got " + describe());
    if (numel() == 0) throw new MetakernelsException("max: " + describe() + " is empty");
    return Reductions.max(this.reshape(numel()), 0, false).values();
  }

  /**
   * log Σ exp(x) over one dim, stable (shifted by the finite max); rows of −∞ give −∞, rows
   * holding +∞ give +∞. {@code s.logsumexp(-1, false)} of [B, N] is [B].
   *
   * @param dim the dim (negative: from the end)
   * @param keepDim keep it with size 1
   * @return the result
   */
  public Tensor logsumexp(int dim, boolean keepDim) { return Reductions.logsumexp(this, dim, keepDim); }

  /**
   * Sums broadcast dims away so the result has {@code target}'s shape (the adjoint of
   * {@link #expand}): {@code g.sumTo(new long[] {1, D})} of [B, N, D] is [1, D].
   *
   * @param target a shape this one is a broadcast of
   * @return the sum (this when the shapes are equal)
   */
  public Tensor sumTo(long[] target) { return Reductions.sumTo(this, target); }

  // ------------------------------------------------------------------------------------------
  // linear algebra, softmax, indexing

  /**
   * Matrix product with batch broadcasting: [..., m, k] x [..., k, n] gives [..., m, n]; a 1-d
   * left operand is a row vector, a 1-d right operand a column vector (their unit dim is dropped).
   * OpenBLAS on the CPU, cuBLAS on CUDA. {@code x.matmul(w.mT())} of [B, N, in] and [out, in]
   * is [B, N, out].
   *
   * @param o the right operand: same dtype and device
   * @return the product
   */
  public Tensor matmul(Tensor o) { return Linalg.matmul(this, o); }

  /**
   * exp(x) / Σ exp(x) over one dim (fused forward kernel, composed backward); same shape. A row
   * with a NaN is all NaN; a row of only −∞ (fully masked) is all 0, where PyTorch gives NaN.
   * {@code s.softmax(-1)} of [B, H, N, N] is [B, H, N, N].
   *
   * @param dim the dim (negative: from the end)
   * @return the probabilities
   */
  public Tensor softmax(int dim) { return Reductions.softmax(this, dim, false); }

  /**
   * x − logsumexp(x) over one dim (fused forward kernel); same shape. A row with a NaN is all NaN;
   * a row of only −∞ is all −∞ (PyTorch: NaN). {@code logits.logSoftmax(1)} of [N, C] is [N, C].
   *
   * @param dim the dim (negative: from the end)
   * @return the log-probabilities
   */
  public Tensor logSoftmax(int dim) { return Reductions.softmax(this, dim, true); }

  /**
   * The entries {@code idx} (I64, 1-d, same device) of one dim; its gradient is the
   * deterministic index-add. {@code x.indexSelect(0, idx)} of [N, D] with idx [K] is [K, D].
   *
   * @param dim the dim (negative: from the end)
   * @param idx the positions, range-checked
   * @return the selection: this shape with size K at dim
   */
  public Tensor indexSelect(int dim, Tensor idx) { return Indexing.indexSelect(this, dim, idx); }

  /**
   * {@code out[..., j, ...] = this[..., idx[..., j, ...], ...]} along dim; idx (I64, same rank)
   * matches this in every other dim. {@code logp.gather(1, t.unsqueeze(1))} of [N, C] with
   * [N, 1] is [N, 1].
   *
   * @param dim the dim (negative: from the end)
   * @param idx the positions, range-checked
   * @return the gathered values, idx's shape
   */
  public Tensor gather(int dim, Tensor idx) { return Indexing.gather(this, dim, idx); }

  /**
   * Joins tensors along an existing dim (same dtype, device, rank and other sizes):
   * {@code Tensor.concat(List.of(a, b), 0)} of [2, D] and [3, D] is [5, D].
   *
   * @param parts the tensors, at least one
   * @param dim the dim (negative: from the end)
   * @return a new tensor
   */
  public static Tensor concat(List<Tensor> parts, int dim) { return Views.concat(parts, dim); }

  /**
   * Joins same-shaped tensors along a new dim: {@code Tensor.stack(List.of(a, b), 0)} of [N, D]
   * each is [2, N, D].
   *
   * @param parts the tensors, at least one
   * @param dim where the new dim goes
   * @return a new tensor
   */
  public static Tensor stack(List<Tensor> parts, int dim) { return Views.stack(parts, dim); }

}
