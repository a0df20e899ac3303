package org.metakernels.bench;

import java.util.concurrent.TimeUnit;
import org.metakernels.tensor.DType;
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

    GpuAttentionTensors t;

    @Setup(Level.Trial)
    public void setup() {
      t = new GpuAttentionTensors("GpuAttentionBf16Bench", shape, DType.BF16, causal);
      Gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (t != null) t.close();
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
}
