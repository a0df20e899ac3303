package org.metakernels.bench;

import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.Attention;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The inputs of one GPU softmax-attention benchmark (q, k, v, dO on the device, seeded, and
 * grad-requiring copies of q, k, v), owned by one scope, and the forward and forward+backward
 * calls that {@link GpuAttentionBench} (F32) and {@link GpuAttentionBf16Bench} (BF16) time alike.
 */
final class GpuAttentionTensors implements AutoCloseable {
  final Scope scope;
  final Tensor q, k, v, dOut, ql, kl, vl;
  final Attention.Options options;

  GpuAttentionTensors(String bench, String shape, DType dtype, boolean causal) {
    Gpu.require(bench);
    long[] dims = Checks.parseShape(shape);
    scope = Scope.open();
    q = Tensor.randn(dims, dtype, Device.CUDA, 21L);
    k = Tensor.randn(dims, dtype, Device.CUDA, 22L);
    v = Tensor.randn(dims, dtype, Device.CUDA, 23L);
    dOut = Tensor.randn(dims, dtype, Device.CUDA, 24L);
    ql = q.detach().requiresGrad(true);
    kl = k.detach().requiresGrad(true);
    vl = v.detach().requiresGrad(true);
    options = causal ? Attention.Options.causal() : Attention.Options.defaults();
  }

  void forward(Blackhole bh) {
    try (Scope s = Scope.open()) {
      bh.consume(Attention.softmax(q, k, v, options));
      Gpu.sync();
    }
  }

  void forwardBackward(Blackhole bh) {
    try (Scope s = Scope.open()) {
      Tensor out = Attention.softmax(ql, kl, vl, options);
      bh.consume(Autograd.grad(List.of(out), List.of(ql, kl, vl), List.of(dOut), false));
      Gpu.sync();
    }
  }

  @Override
  public void close() {
    scope.close();
  }
}
