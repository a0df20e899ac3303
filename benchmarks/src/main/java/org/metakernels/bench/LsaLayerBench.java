package org.metakernels.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.TensorVector;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.LinearSelfAttention;
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
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.Blackhole;

/**
 * A whole multi-head linear self-attention layer, F32 on the CPU, non-causal with the identity
 * feature map (the LSA of "transformers learn in-context by gradient descent"):
 * {@code y = x + merge(q (kᵀ v)) Pᵀ} with {@code q, k, v} the heads of {@code x Wqᵀ, x Wkᵀ, x Wvᵀ}.
 * Shapes are {@code BxTxDxH} (head dim D / H). Forward, and forward+backward (dx and the four
 * weight gradients for a random dOut):
 * <ul>
 *   <li>{@code metakernels}: {@link LinearSelfAttention} (the heads go to the linear-attention
 *       kernel as strided views of the projections, its output merges back without a copy);
 *   <li>{@code libtorch}: the same layer composed in libtorch: {@code view} + {@code permute} for
 *       the heads, {@code q.matmul(k.mT().matmul(v))}, {@code permute} + {@code reshape} back.
 * </ul>
 * The set-up checks that both give the same dx and dWq.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class LsaLayerBench {
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"256x64x64x4", "8x1024x256x8", "4x2048x512x8"}) public String shape;

    @Param({"metakernels", "libtorch"}) public String vendor;

    Scope scope;
    LinearSelfAttention lsa;
    Tensor x, dOut;
    List<Tensor> wrt;
    org.bytedeco.pytorch.Tensor tx, tdOut, twq, twk, twv, tproj;
    long b, t, d;
    int h;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      Torch.configure(vendor);
      long[] s = Checks.parseShape(shape);
      b = s[0];
      t = s[1];
      d = s[2];
      h = (int) s[3];
      scope = Scope.open();
      lsa = new LinearSelfAttention(d, h, d / h, 0, true, FeatureMap.IDENTITY, 1.0 / Math.sqrt(d), DType.F32,
          Device.CPU, 3L);
      Tensor x0 = Tensor.randn(new long[] {b, t, d}, DType.F32, Device.CPU, 5L);
      x = x0.detach().requiresGrad(true);
      dOut = Tensor.randn(new long[] {b, t, d}, DType.F32, Device.CPU, 6L);
      wrt = new ArrayList<>(List.of(x));
      wrt.addAll(lsa.parameters());  // wq, wk, wv, proj
      tx = Torch.leaf(Torch.copyOf(x0));
      tdOut = Torch.copyOf(dOut);
      twq = Torch.leaf(Torch.copyOf(lsa.parameters().get(0)));
      twk = Torch.leaf(Torch.copyOf(lsa.parameters().get(1)));
      twv = Torch.leaf(Torch.copyOf(lsa.parameters().get(2)));
      tproj = Torch.leaf(Torch.copyOf(lsa.parameters().get(3)));
      String mode = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
      String what = "LsaLayerBench." + mode + " " + shape;
      try (Scope sc = Scope.open(); PointerScope ps = new PointerScope()) {
        Tensor[] a = mkForwardBackward(this);
        org.bytedeco.pytorch.Tensor[] c = torchForwardBackward(this);
        Checks.assertClose(what + " dx metakernels vs libtorch", a[0].toFloatArray(), Torch.toFloats(c[0]), 1e-3, 1e-3);
        Checks.assertClose(what + " dWq metakernels vs libtorch", a[1].toFloatArray(), Torch.toFloats(c[1]), 1e-3, 1e-3);
      }
      if (!vendor.equals("metakernels"))
        Torch.pickBlasThreads(what, mode.equals("forward") ? () -> torchForward(this) : () -> torchForwardBackward(this));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor tt : new org.bytedeco.pytorch.Tensor[] {tx, tdOut, twq, twk, twv, tproj})
        if (tt != null) tt.close();
      if (scope != null) scope.close();
    }
  }

  static Tensor[] mkForwardBackward(Inputs in) {
    Tensor y = in.lsa.forward(in.x);
    return Autograd.grad(List.of(y), in.wrt, List.of(in.dOut), false).toArray(new Tensor[0]);
  }

  static org.bytedeco.pytorch.Tensor heads(org.bytedeco.pytorch.Tensor p, Inputs in) {
    return p.reshape(in.b, in.t, in.h, in.d / in.h).permute(0, 2, 1, 3);
  }

  static org.bytedeco.pytorch.Tensor torchLayer(Inputs in, org.bytedeco.pytorch.Tensor x, org.bytedeco.pytorch.Tensor wq,
      org.bytedeco.pytorch.Tensor wk, org.bytedeco.pytorch.Tensor wv, org.bytedeco.pytorch.Tensor proj) {
    org.bytedeco.pytorch.Tensor q = heads(x.matmul(wq.mT()), in), k = heads(x.matmul(wk.mT()), in),
        v = heads(x.matmul(wv.mT()), in);
    org.bytedeco.pytorch.Tensor o = q.matmul(k.mT().matmul(v));  // [B, H, T, dh]
    org.bytedeco.pytorch.Tensor merged = o.permute(0, 2, 1, 3).reshape(in.b, in.t, in.d);
    return x.add(merged.matmul(proj.mT()));
  }

  static org.bytedeco.pytorch.Tensor torchForward(Inputs in) {
    return torchLayer(in, in.tx.detach(), in.twq.detach(), in.twk.detach(), in.twv.detach(), in.tproj.detach());
  }

  static org.bytedeco.pytorch.Tensor[] torchForwardBackward(Inputs in) {
    org.bytedeco.pytorch.Tensor y = torchLayer(in, in.tx, in.twq, in.twk, in.twv, in.tproj);
    TensorVector g = Torch.grad(new TensorVector(y), new TensorVector(in.tx, in.twq, in.twk, in.twv, in.tproj),
        new TensorVector(in.tdOut), false);
    return new org.bytedeco.pytorch.Tensor[] {g.get(0), g.get(1), g.get(2), g.get(3), g.get(4)};
  }

  @Benchmark
  public void forward(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open(); var off = Autograd.noGrad()) {
        bh.consume(in.lsa.forward(in.x.detach()));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(torchForward(in));
      }
    }
  }

  @Benchmark
  public void forwardBackward(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(mkForwardBackward(in));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(torchForwardBackward(in));
      }
    }
  }
}
