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
 * backward 2.5×). Without a CUDA device the set-up throws at once. Run by benchmarks/gpu/check.sh
 * (pattern 'Gpu').
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

    Scope scope;
    Tensor q, k, v, dOut, ql, kl, vl;

    @Setup(Level.Trial)
    public void setup() {
      Gpu.require("GpuAttentionBf16Bench");
      long[] dims = Checks.parseShape(shape);
      scope = Scope.open();
      q = Tensor.randn(dims, DType.BF16, Device.CUDA, 21L);
      k = Tensor.randn(dims, DType.BF16, Device.CUDA, 22L);
      v = Tensor.randn(dims, DType.BF16, Device.CUDA, 23L);
      dOut = Tensor.randn(dims, DType.BF16, Device.CUDA, 24L);
      ql = q.detach().requiresGrad(true);
      kl = k.detach().requiresGrad(true);
      vl = v.detach().requiresGrad(true);
      Gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (scope != null) scope.close();
    }

    Attention.Options options() {
      return causal ? Attention.Options.causal() : Attention.Options.defaults();
    }
  }

  @Benchmark
  public void forward(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      bh.consume(Attention.softmax(in.q, in.k, in.v, in.options()));
      Gpu.sync();
    }
  }

  @Benchmark
  public void forwardBackward(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      Tensor out = Attention.softmax(in.ql, in.kl, in.vl, in.options());
      bh.consume(Autograd.grad(List.of(out), List.of(in.ql, in.kl, in.vl), List.of(in.dOut), false));
      Gpu.sync();
    }
  }
}
