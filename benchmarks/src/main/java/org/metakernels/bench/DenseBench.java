package org.metakernels.bench;

import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Dense ops, F32 on the CPU, metakernels against libtorch on the same data:
 * <ul>
 *   <li>{@code matmul}: square [n, n] x [n, n] (OpenBLAS on both sides, or their own kernels);
 *   <li>{@code smallMatmul}: the products of a small model (the in-context demo's LSA layers, width
 *       11, over 1024 tasks of 11 tokens): {@code projection} [1024, 11, 11] x [11, 11]ᵀ, its weight
 *       gradient {@code weightGrad} [11, 11264] x [11264, 11] (the left operand a transposed view),
 *       and {@code tinyBatch} [1024, 21, 10] x [1024, 20, 10]ᵀ (GD++'s batched products); at width
 *       64, a GCN layer on ACM's 4019 nodes (the meow recipe's hidden width): {@code projection64}
 *       [4019, 64] x [64, 64]ᵀ and its weight gradient {@code weightGrad64} [64, 4019] x [4019, 64];
 *   <li>{@code elementwiseChain}: y = tanh(a·x + b)·sigmoid(x) + exp(−x²) on {@code n} floats, eight
 *       ops, each making a new tensor (no fusion on either side): 2^20 (the ops fork) and 2^15 (one
 *       thread: a [128, 256] layer of a small MLP, the size of most ops in the meta-learning
 *       recipes);
 *   <li>{@code tinyAdd}: a + b on 16 floats, i.e. the cost of one call from Java (JNI, checks,
 *       dispatch, allocation);
 *   <li>{@code transposeCopy}: x.mT().contiguous() of [n, n], and {@code transposedAdd}: y + x.mT(),
 *       the strided kernels' worst case (an operand contiguous along the other dim; e.g. the
 *       gradient of a transposed view accumulating into its base). n = 4019 is ACM's node count,
 *       the [B, B] logits of the meow recipe's full batch;
 *   <li>{@code random}: a new tensor of 2^20 samples, {@code normal} ({@code Tensor.randn}; libtorch
 *       {@code empty(n).normal_()}, what {@code torch::randn} does) or {@code uniform}
 *       ({@code Tensor.rand}; {@code empty(n).uniform_()}). Different generators (metakernels:
 *       counter-based SplitMix64 and Box–Muller in double, mk/random.h; libtorch: mt19937 and its
 *       vectorised Box–Muller in float): the set-up checks the moments of both.
 * </ul>
 * Each state has its own {@code vendor} parameter so the n parameter only multiplies matmul.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class DenseBench {
  static final double A = 1.5, B = 0.25;
  static final long ELEMENTWISE_N = 1L << 20;

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class MatmulState {
    // "vendor" sorts after the other parameters: JMH orders parameters by name, so each shape
    // runs metakernels and its peers back to back and their ratio sees the same machine state.
    @Param({"metakernels", "libtorch"})
    public String vendor;

    @Param({"512", "1024"})
    public int n;

    Scope scope;
    Tensor a, b;
    org.bytedeco.pytorch.Tensor ta, tb;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      a = Tensor.randn(new long[] {n, n}, DType.F32, Device.CPU, 1L);
      b = Tensor.randn(new long[] {n, n}, DType.F32, Device.CPU, 2L);
      ta = Torch.copyOf(a);
      tb = Torch.copyOf(b);
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Checks.assertClose("DenseBench.matmul n=" + n, a.matmul(b).toFloatArray(), Torch.toFloats(ta.matmul(tb)),
            1e-4, 1e-5);
      }
      if (!vendor.equals("metakernels")) Torch.pickBlasThreads("DenseBench.matmul n=" + n, () -> ta.matmul(tb));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      ta.close();
      tb.close();
      scope.close();
    }
  }

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class SmallMatmulState {
    @Param({"metakernels", "libtorch"})
    public String vendor;

    @Param({"projection", "weightGrad", "tinyBatch", "projection64", "weightGrad64"})
    public String shape;

    Scope scope;
    Tensor a, b;
    org.bytedeco.pytorch.Tensor ta, tb;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      long[] as, bs;
      switch (shape) {
        case "projection" -> { as = new long[] {1024, 11, 11}; bs = new long[] {11, 11}; }
        case "weightGrad" -> { as = new long[] {11264, 11}; bs = new long[] {11264, 11}; }
        case "projection64" -> { as = new long[] {4019, 64}; bs = new long[] {64, 64}; }
        case "weightGrad64" -> { as = new long[] {4019, 64}; bs = new long[] {4019, 64}; }
        default -> { as = new long[] {1024, 21, 10}; bs = new long[] {1024, 20, 10}; }
      }
      a = Tensor.randn(as, DType.F32, Device.CPU, 8L);
      b = Tensor.randn(bs, DType.F32, Device.CPU, 9L);
      ta = Torch.copyOf(a);
      tb = Torch.copyOf(b);
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Checks.assertClose("DenseBench.smallMatmul " + shape, mine().toFloatArray(), Torch.toFloats(theirs()), 1e-4,
            1e-5);
      }
      if (!vendor.equals("metakernels")) Torch.pickBlasThreads("DenseBench.smallMatmul " + shape, this::theirs);
    }

    Tensor mine() {
      return shape.startsWith("weightGrad") ? a.mT().matmul(b) : a.matmul(b.mT());
    }

    org.bytedeco.pytorch.Tensor theirs() {
      return shape.startsWith("weightGrad") ? ta.mT().matmul(tb) : ta.matmul(tb.mT());
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      ta.close();
      tb.close();
      scope.close();
    }
  }

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class ElementwiseState {
    @Param({"metakernels", "libtorch"})
    public String vendor;

    /** Elements: 2^20 forks the ops over the threads, 2^15 stays below the fork (one thread). */
    @Param({"1048576", "32768"})
    public long n;

    Scope scope;
    Tensor x;
    org.bytedeco.pytorch.Tensor tx;
    Scalar sa, sb;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      x = Tensor.randn(new long[] {n}, DType.F32, Device.CPU, 3L);
      tx = Torch.copyOf(x);
      sa = new Scalar(A);
      sb = new Scalar(B);
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Checks.assertClose("DenseBench.elementwiseChain", chain(x).toFloatArray(), Torch.toFloats(chain(tx, sa, sb)),
            1e-5, 1e-5);
      }
      if (!vendor.equals("metakernels")) Torch.pickBlasThreads("DenseBench.elementwiseChain", () -> chain(tx, sa, sb));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      tx.close();
      sa.close();
      sb.close();
      scope.close();
    }
  }

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class TinyState {
    @Param({"metakernels", "libtorch"})
    public String vendor;

    Scope scope;
    Tensor a, b;
    org.bytedeco.pytorch.Tensor ta, tb;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      a = Tensor.randn(new long[] {16}, DType.F32, Device.CPU, 4L);
      b = Tensor.randn(new long[] {16}, DType.F32, Device.CPU, 5L);
      ta = Torch.copyOf(a);
      tb = Torch.copyOf(b);
      if (!vendor.equals("metakernels")) Torch.pickBlasThreads("DenseBench.tinyAdd", () -> ta.add(tb));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      ta.close();
      tb.close();
      scope.close();
    }
  }

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class TransposeState {
    @Param({"metakernels", "libtorch"})
    public String vendor;

    @Param({"1024", "4019"})
    public int side;

    Scope scope;
    Tensor x, y;
    org.bytedeco.pytorch.Tensor tx, ty;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      x = Tensor.randn(new long[] {side, side}, DType.F32, Device.CPU, 6L);
      y = Tensor.randn(new long[] {side, side}, DType.F32, Device.CPU, 7L);
      tx = Torch.copyOf(x);
      ty = Torch.copyOf(y);
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        String what = "DenseBench.transpose side=" + side;
        Checks.assertClose(what + " copy", x.mT().contiguous().toFloatArray(), Torch.toFloats(tx.mT().contiguous()),
            0, 0);
        Checks.assertClose(what + " add", y.add(x.mT()).toFloatArray(), Torch.toFloats(ty.add(tx.mT())), 0, 0);
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      tx.close();
      ty.close();
      scope.close();
    }
  }

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class RandomState {
    @Param({"metakernels", "libtorch"})
    public String vendor;

    @Param({"normal", "uniform"})
    public String dist;

    long seed;
    org.bytedeco.pytorch.TensorOptions f32;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      f32 = new org.bytedeco.pytorch.TensorOptions(org.bytedeco.pytorch.global.torch.ScalarType.Float);
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        checkMoments("metakernels", mine().toFloatArray());
        checkMoments("libtorch", Torch.toFloats(theirs()));
      }
    }

    void checkMoments(String who, float[] v) {
      double m = 0, q = 0;
      for (float x : v) m += x;
      m /= v.length;
      for (float x : v) q += (x - m) * (x - m);
      q /= v.length;
      boolean normal = dist.equals("normal");
      if (Math.abs(m - (normal ? 0 : 0.5)) > 0.01 || Math.abs(q - (normal ? 1 : 1.0 / 12)) > 0.01)
        throw new IllegalStateException("DenseBench.random " + dist + ": " + who + " mean " + m + " variance " + q);
    }

    Tensor mine() {
      long[] shape = {ELEMENTWISE_N};
      return dist.equals("normal") ? Tensor.randn(shape, DType.F32, Device.CPU, ++seed)
          : Tensor.rand(shape, DType.F32, Device.CPU, ++seed);
    }

    org.bytedeco.pytorch.Tensor theirs() {
      org.bytedeco.pytorch.Tensor t = org.bytedeco.pytorch.global.torch.empty(new long[] {ELEMENTWISE_N}, f32,
          new org.bytedeco.pytorch.MemoryFormatOptional());
      return dist.equals("normal") ? t.normal_() : t.uniform_();
    }
  }

  static Tensor chain(Tensor x) {
    return x.mul(A).add(B).tanh().mul(x.sigmoid()).add(x.square().neg().exp());
  }

  static org.bytedeco.pytorch.Tensor chain(org.bytedeco.pytorch.Tensor x, Scalar a, Scalar b) {
    return x.mul(a).add(b).tanh().mul(x.sigmoid()).add(x.square().neg().exp());
  }

  @Benchmark
  public void matmul(MatmulState s, Blackhole bh) {
    if (s.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(s.a.matmul(s.b));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(s.ta.matmul(s.tb));
      }
    }
  }

  @Benchmark
  public void smallMatmul(SmallMatmulState s, Blackhole bh) {
    if (s.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(s.mine());
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(s.theirs());
      }
    }
  }

  @Benchmark
  public void elementwiseChain(ElementwiseState s, Blackhole bh) {
    if (s.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(chain(s.x));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(chain(s.tx, s.sa, s.sb));
      }
    }
  }

  @Benchmark
  public void tinyAdd(TinyState s, Blackhole bh) {
    if (s.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(s.a.add(s.b));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(s.ta.add(s.tb));
      }
    }
  }

  @Benchmark
  public void transposeCopy(TransposeState s, Blackhole bh) {
    if (s.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(s.x.mT().contiguous());
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(s.tx.mT().contiguous());
      }
    }
  }

  @Benchmark
  public void transposedAdd(TransposeState s, Blackhole bh) {
    if (s.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(s.y.add(s.x.mT()));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(s.ty.add(s.tx.mT()));
      }
    }
  }

  @Benchmark
  public void random(RandomState s, Blackhole bh) {
    if (s.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(s.mine());
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(s.theirs());
      }
    }
  }
}
