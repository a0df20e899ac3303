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
 * Fused softmax attention on CUDA in BF16 (tensor cores), D = 128, N up to 16k: forward and
 * forward+backward (gradients of q, k, v; BF16 in and out, lse F32), causal or not. JMH reports
 * milliseconds; benchmarks/gpu/tflops.py turns them into TFLOP/s and % of the H100's 989 TFLOP/s
 * dense BF16 peak, with the same count as the PyTorch peers (benchmarks/gpu/peers.py: SDPA BF16
 * on these shapes): 4·B·H·N²·D per forward, halved when causal; forward+backward 3.5× that (the
 * backward 2.5×). And the double backward (16-bit tensor cores). Without a CUDA device the set-up
 * throws at once. Run by benchmarks/gpu/check.sh (pattern 'Gpu').
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class GpuAttentionBf16Bench {

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"metakernels"})
    public String impl;

    @Param({"4x16x4096x128", "1x16x16384x128"})
    public String shape;

    @Param({"false", "true"})
    public boolean causal;

    /**
     * The 16-bit tensor-core forward ({@link Attention.TensorCoreKernels.Forward}: DEFAULT, V1, V2,
     * V2K32, SM90 — the Hopper wgmma + TMA forward on a 9.0 device); e.g. {@code -p
     * tcForward=DEFAULT,V2,SM90} times them side by side. Reset after the trial.
     */
    @Param({"DEFAULT"})
    public String tcForward;

    /**
     * The double backward ({@link Attention.TensorCoreKernels.Second}: DEFAULT, TENSOR_CORES, SM90 —
     * its Hopper wgmma + TMA passes on a 9.0 device, opt-in until timed —, F32); e.g. {@code -p
     * tcSecond=DEFAULT,SM90}. Reset after the trial.
     */
    @Param({"DEFAULT"})
    public String tcSecond;

    GpuAttentionTensors t;
    Tensor rq, rk, rv;  // probe directions of the double backward (F32)

    @Setup(Level.Trial)
    public void setup() {
      Attention.TensorCoreKernels.select(Attention.TensorCoreKernels.Forward.valueOf(tcForward),
          Attention.TensorCoreKernels.Backward.DEFAULT, Attention.TensorCoreKernels.Second.valueOf(tcSecond));
      t = new GpuAttentionTensors("GpuAttentionBf16Bench", shape, DType.BF16, causal);
      long[] dims = Checks.parseShape(shape);
      rq = Tensor.randn(dims, DType.F32, Device.CUDA, 25L);
      rk = Tensor.randn(dims, DType.F32, Device.CUDA, 26L);
      rv = Tensor.randn(dims, DType.F32, Device.CUDA, 27L);
      Gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (t != null) t.close();
      Attention.TensorCoreKernels.reset();
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

  /**
   * Double backward in BF16 (tensor cores, tensor_core_dd.cu; {@code tcSecond=SM90} or
   * MK_ATTN_TC_DD=sm90 its Hopper passes, tensor_core_sm90_dd.cu; MK_ATTN_TC_DD=0 in the environment
   * runs the F32 path instead): the gradient of Σ_x ⟨∂⟨out, dO⟩/∂x, r_x⟩ with respect to q, k, v,
   * the inner products in F32 (as GpuAttentionBench.doubleBackward; peer: peers.py's BF16
   * sdpa_math_double_backward).
   */
  @Benchmark
  public void doubleBackward(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      GpuAttentionTensors t = in.t;
      Tensor out = Attention.softmax(t.ql, t.kl, t.vl, t.options);
      List<Tensor> g = Autograd.grad(List.of(out), List.of(t.ql, t.kl, t.vl), List.of(t.dOut), true);
      Tensor hv = g.get(0).to(DType.F32).mul(in.rq).sum().add(g.get(1).to(DType.F32).mul(in.rk).sum())
          .add(g.get(2).to(DType.F32).mul(in.rv).sum());
      bh.consume(Autograd.grad(hv, List.of(t.ql, t.kl, t.vl), false));
      Gpu.sync();
    }
  }
}
