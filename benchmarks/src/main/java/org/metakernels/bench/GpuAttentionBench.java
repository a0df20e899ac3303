package org.metakernels.bench;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.Attention;
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
 * Fused softmax attention on CUDA, F32, [4, 16, 4096, 128]: forward, forward+backward and double
 * backward (as in {@link AttentionBench}). metakernels only: the org.bytedeco:pytorch build used
 * here is CPU-only, so the libtorch/PyTorch peers run from benchmarks/gpu/peers.py. Without a
 * CUDA device the set-up throws at once. Run by benchmarks/gpu/check.sh (pattern 'Gpu').
 *
 * <p>{@code -p dtype=TF32}: the same F32 tensors with {@link
 * org.metakernels.runtime.Backend#setAllowTf32} on for the trial (forward, backward and the double
 * backward on TF32 tensor cores where they apply; restored at tear-down), beside PyTorch's math path
 * with {@code torch.backends.cuda.matmul.allow_tf32 = True} (peers.py, dtype "tf32").
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class GpuAttentionBench {

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"metakernels"})
    public String impl;

    @Param({"4x16x4096x128"})
    public String shape;

    @Param({"false", "true"})
    public boolean causal;

    /** F32 (exact SIMT kernels) or TF32 (F32 data, TF32 tensor cores allowed). */
    @Param({"F32"})
    public String dtype;

    boolean tf32Before;

    /**
     * The SIMT kernels (F32 without TF32; mk/attention_simt_choice.h): "default" (MK_ATTN_SIMT /
     * MK_ATTN_SIMT_BWD or v1), "v1" or "v2" for both passes, chosen from code
     * ({@link Attention.SimtKernels}), e.g. {@code -p simt=v1,v2,x3} (x3: F32 on Hopper tensor cores,
     * 3xTF32, forward and backward).
     */
    @Param({"default"})
    public String simt;

    GpuAttentionTensors t;
    Tensor rq, rk, rv;  // probe directions of the double backward

    @Setup(Level.Trial)
    public void setup() {
      if (!dtype.equals("F32") && !dtype.equals("TF32"))
        throw new IllegalArgumentException("GpuAttentionBench: dtype " + dtype + " (expected F32 or TF32)");
      tf32Before = org.metakernels.runtime.Backend.allowTf32();
      org.metakernels.runtime.Backend.setAllowTf32(dtype.equals("TF32"));
      if (!simt.equals("default")) {
        Attention.SimtKernels.Version v = simtVersion(simt);
        Attention.SimtKernels.select(v, v);
      }
      t = new GpuAttentionTensors("GpuAttentionBench", shape, DType.F32, causal);
      long[] dims = Checks.parseShape(shape);
      rq = Tensor.randn(dims, DType.F32, Device.CUDA, 25L);
      rk = Tensor.randn(dims, DType.F32, Device.CUDA, 26L);
      rv = Tensor.randn(dims, DType.F32, Device.CUDA, 27L);
      Gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (t != null) t.close();  // rq, rk, rv were made in its scope
      org.metakernels.runtime.Backend.setAllowTf32(tf32Before);
      if (!simt.equals("default")) Attention.SimtKernels.reset();
    }

    static Attention.SimtKernels.Version simtVersion(String name) {
      if (name.equals("v1")) return Attention.SimtKernels.Version.V1;
      if (name.equals("v2")) return Attention.SimtKernels.Version.V2;
      if (name.equals("x3")) return Attention.SimtKernels.Version.X3;
      throw new IllegalArgumentException("GpuAttentionBench: simt must be default, v1, v2 or x3, not " + name);
    }
  }

  @Benchmark
  public void forward(Inputs in, Blackhole bh) {
    in.t.forward(bh);
  }

  @Benchmark
  public void forwardBackward(Inputs in, Blackhole bh) {
    in.t.forwardBackward(bh);
  }

  @Benchmark
  public void doubleBackward(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      GpuAttentionTensors t = in.t;
      Tensor out = Attention.softmax(t.ql, t.kl, t.vl, t.options);
      List<Tensor> g = Autograd.grad(List.of(out), List.of(t.ql, t.kl, t.vl), List.of(t.dOut), true);
      Tensor hv = g.get(0).mul(in.rq).sum().add(g.get(1).mul(in.rk).sum()).add(g.get(2).mul(in.rv).sum());
      bh.consume(Autograd.grad(hv, List.of(t.ql, t.kl, t.vl), false));
      Gpu.sync();
    }
  }
}
