package org.metakernels.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.TensorVector;
import org.metakernels.autograd.Autograd;
import org.metakernels.nn.MultiHeadAttention;
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
 * A whole multi-head softmax-attention layer, F32 on the CPU:
 * {@code y = merge(softmax(q kᵀ/√dh) v) Woᵀ} with {@code q, k, v} the heads of
 * {@code x Wqᵀ, x Wkᵀ, x Wvᵀ}. Shapes are {@code BxTxDxH} (head dim D / H), causal or not. Forward,
 * and forward+backward (dx and the four weight gradients for a random dOut):
 * <ul>
 *   <li>{@code metakernels}: {@link MultiHeadAttention} (projections by matmul, the fused attention
 *       kernel on the heads);
 *   <li>{@code libtorch}: the same layer composed in libtorch: {@code reshape} + {@code transpose} for
 *       the heads, {@code scaled_dot_product_attention}, {@code transpose} + {@code reshape} back,
 *       what {@code torch.nn.MultiheadAttention}'s fast path does without its packed projection.
 * </ul>
 * The set-up checks that both give the same dx and dWq.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class MhaLayerBench {
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"64x128x128x4", "8x512x256x8", "2x2048x512x8"}) public String shape;

    @Param({"false", "true"}) public boolean causal;

    @Param({"metakernels", "libtorch"}) public String vendor;

    Scope scope;
    MultiHeadAttention mha;
    Tensor x, dOut;
    List<Tensor> wrt;
    org.bytedeco.pytorch.Tensor tx, tdOut, twq, twk, twv, two;
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
      mha = new MultiHeadAttention(d, h, h, causal, DType.F32, Device.CPU, 3L);
      Tensor x0 = Tensor.randn(new long[] {b, t, d}, DType.F32, Device.CPU, 5L);
      x = x0.detach().requiresGrad(true);
      dOut = Tensor.randn(new long[] {b, t, d}, DType.F32, Device.CPU, 6L);
      wrt = new ArrayList<>(List.of(x));
      wrt.addAll(mha.parameters());  // wq, wk, wv, wo
      tx = Torch.leaf(Torch.copyOf(x0));
      tdOut = Torch.copyOf(dOut);
      twq = Torch.leaf(Torch.copyOf(mha.parameters().get(0)));
      twk = Torch.leaf(Torch.copyOf(mha.parameters().get(1)));
      twv = Torch.leaf(Torch.copyOf(mha.parameters().get(2)));
      two = Torch.leaf(Torch.copyOf(mha.parameters().get(3)));
      String mode = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
      String what = "MhaLayerBench." + mode + " " + shape + (causal ? " causal" : "");
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
      for (org.bytedeco.pytorch.Tensor tt : new org.bytedeco.pytorch.Tensor[] {tx, tdOut, twq, twk, twv, two})
        if (tt != null) tt.close();
      if (scope != null) scope.close();
    }
  }

  static Tensor[] mkForwardBackward(Inputs in) {
    Tensor y = in.mha.forward(in.x);
    return Autograd.grad(List.of(y), in.wrt, List.of(in.dOut), false).toArray(new Tensor[0]);
  }

  static org.bytedeco.pytorch.Tensor heads(org.bytedeco.pytorch.Tensor p, Inputs in) {
    return p.reshape(in.b, in.t, in.h, in.d / in.h).transpose(1, 2);
  }

  static org.bytedeco.pytorch.Tensor torchLayer(Inputs in, org.bytedeco.pytorch.Tensor x, org.bytedeco.pytorch.Tensor wq,
      org.bytedeco.pytorch.Tensor wk, org.bytedeco.pytorch.Tensor wv, org.bytedeco.pytorch.Tensor wo) {
    org.bytedeco.pytorch.Tensor q = heads(x.matmul(wq.mT()), in), k = heads(x.matmul(wk.mT()), in),
        v = heads(x.matmul(wv.mT()), in);
    org.bytedeco.pytorch.Tensor o = Torch.sdpa(q, k, v, in.causal);  // [B, H, T, dh]
    return o.transpose(1, 2).reshape(in.b, in.t, in.d).matmul(wo.mT());
  }

  static org.bytedeco.pytorch.Tensor torchForward(Inputs in) {
    return torchLayer(in, in.tx.detach(), in.twq.detach(), in.twk.detach(), in.twv.detach(), in.two.detach());
  }

  static org.bytedeco.pytorch.Tensor[] torchForwardBackward(Inputs in) {
    org.bytedeco.pytorch.Tensor y = torchLayer(in, in.tx, in.twq, in.twk, in.twv, in.two);
    TensorVector g = Torch.grad(new TensorVector(y), new TensorVector(in.tx, in.twq, in.twk, in.twv, in.two),
        new TensorVector(in.tdOut), false);
    return new org.bytedeco.pytorch.Tensor[] {g.get(0), g.get(1), g.get(2), g.get(3), g.get(4)};
  }

  @Benchmark
  public void forward(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open(); var off = Autograd.noGrad()) {
        bh.consume(in.mha.forward(in.x.detach()));
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
