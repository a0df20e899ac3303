package org.metakernels.bench;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.LinearAttention;
import org.metakernels.ops.LinearAttention.FeatureMap;
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
 * Linear attention (identity feature map, no normalisation) on CUDA, F32, [4, 16, 4096, 128],
 * causal or not: forward, forward+backward (dOut random) and double backward (gradient of
 * Σ_x ⟨dx, r_x⟩ with respect to q, k, v). metakernels only: the org.bytedeco:pytorch build used
 * here is CPU-only, so the libtorch/PyTorch peers run from benchmarks/gpu/peers.py. Without a
 * CUDA device the set-up throws at once. Run by benchmarks/gpu/check.sh (pattern 'Gpu').
 * {@code -p dtype=BF16} (or F16) runs the same work on 16-bit q, k, v, dOut (the tensor-core
 * chunk-parallel kernel; the double backward's inner products with r in F32), not in check.sh's
 * default set: benchmarks/gpu/linear_attention_harness.cu times the 16-bit forms there.
 * {@code -p dtype=TF32}: F32 tensors with {@link org.metakernels.runtime.Backend#setAllowTf32} on for
 * the trial (the TF32 tensor-core form of every product; restored at tear-down), beside PyTorch's
 * F32 peers with {@code torch.backends.cuda.matmul.allow_tf32 = True} (peers.py, dtype "tf32").
 * {@code -p form=recurrent}: the recurrent CUDA form for the masked (causal) products and its state
 * form for the unmasked ones, 16-bit and TF32 on it and F32 as x3 ({@link
 * LinearAttention.CudaForms#select}(RECURRENT, X3) for the trial, reset at tear-down; check.sh:
 * GPU_LA_FORM=default,recurrent); {@code default} keeps the library's choice.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class GpuLinearAttentionBench {

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"metakernels"})
    public String impl;

    @Param({"4x16x4096x128"})
    public String shape;

    @Param({"false", "true"})
    public boolean causal;

    @Param({"F32"})
    public String dtype;

    @Param({"default"})
    public String form;

    Scope scope;
    Tensor q, k, v, dOut, rq, rk, rv, ql, kl, vl;
    boolean tf32Before;

    @Setup(Level.Trial)
    public void setup() {
      Gpu.require("GpuLinearAttentionBench");
      long[] dims = Checks.parseShape(shape);
      scope = Scope.open();
      tf32Before = org.metakernels.runtime.Backend.allowTf32();
      org.metakernels.runtime.Backend.setAllowTf32(dtype.equals("TF32"));
      if (form.equals("recurrent"))
        LinearAttention.CudaForms.select(LinearAttention.CudaForms.TensorCore.RECURRENT, LinearAttention.CudaForms.F32.X3);
      else if (!form.equals("default"))
        throw new IllegalArgumentException("GpuLinearAttentionBench: form must be default or recurrent, got " + form);
      DType t = dtype.equals("TF32") ? DType.F32 : DType.valueOf(dtype);
      q = Tensor.randn(dims, DType.F32, Device.CUDA, 21L).to(t);
      k = Tensor.randn(dims, DType.F32, Device.CUDA, 22L).to(t);
      v = Tensor.randn(dims, DType.F32, Device.CUDA, 23L).to(t);
      dOut = Tensor.randn(dims, DType.F32, Device.CUDA, 24L).to(t);
      rq = Tensor.randn(dims, DType.F32, Device.CUDA, 25L);
      rk = Tensor.randn(dims, DType.F32, Device.CUDA, 26L);
      rv = Tensor.randn(dims, DType.F32, Device.CUDA, 27L);
      ql = q.detach().requiresGrad(true);
      kl = k.detach().requiresGrad(true);
      vl = v.detach().requiresGrad(true);
      Gpu.sync();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (scope != null) scope.close();
      org.metakernels.runtime.Backend.setAllowTf32(tf32Before);
      if (form.equals("recurrent")) LinearAttention.CudaForms.reset();
    }

    Tensor apply(Tensor q, Tensor k, Tensor v) {
      return LinearAttention.apply(q, k, v, FeatureMap.IDENTITY, causal);
    }
  }

  @Benchmark
  public void forward(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      bh.consume(in.apply(in.q, in.k, in.v));
      Gpu.sync();
    }
  }

  @Benchmark
  public void forwardBackward(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      Tensor out = in.apply(in.ql, in.kl, in.vl);
      bh.consume(Autograd.grad(List.of(out), List.of(in.ql, in.kl, in.vl), List.of(in.dOut), false));
      Gpu.sync();
    }
  }

  // (16-bit gradients take part in the F32 inner products through a differentiable cast)
  static Tensor f32(Tensor t) {
    return t.dtype() == DType.F32 ? t : t.to(DType.F32);
  }

  @Benchmark
  public void doubleBackward(Inputs in, Blackhole bh) {
    try (Scope scope = Scope.open()) {
      Tensor out = in.apply(in.ql, in.kl, in.vl);
      List<Tensor> g = Autograd.grad(List.of(out), List.of(in.ql, in.kl, in.vl), List.of(in.dOut), true);
      Tensor hv = f32(g.get(0)).mul(in.rq).sum().add(f32(g.get(1)).mul(in.rk).sum()).add(f32(g.get(2)).mul(in.rv).sum());
      bh.consume(Autograd.grad(hv, List.of(in.ql, in.kl, in.vl), false));
      Gpu.sync();
    }
  }
}
