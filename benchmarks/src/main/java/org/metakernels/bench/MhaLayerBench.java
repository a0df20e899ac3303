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
 * forward+backward (dx and the four weight gradients for a random dOut), and {@code secondOrder}:
 * the weight gradients with create_graph, then the gradient of Σ_W ⟨dW, r_W⟩ (r random) with
 * respect to x and the four weights, the Hessian-vector product of a MAML outer step through the
 * layer:
 * <ul>
 *   <li>{@code metakernels}: {@link MultiHeadAttention} (projections by matmul, the fused attention
 *       kernel on the heads; its backward and double backward fused as well);
 *   <li>{@code libtorch}: the same layer composed in libtorch: {@code reshape} + {@code transpose} for
 *       the heads, {@code scaled_dot_product_attention}, {@code transpose} + {@code reshape} back,
 *       what {@code torch.nn.MultiheadAttention}'s fast path does without its packed projection. For
 *       {@code secondOrder} the set-up tries create_graph through SDPA once; where libtorch raises
 *       (its CPU flash kernel's backward is not differentiable) the attention is the composed math
 *       path softmax(q kᵀ/√dh + mask) v, and the set-up notes which ran.
 * </ul>
 * The set-up checks that both give the same dx and dWq (for {@code secondOrder}: the same
 * Hessian-vector product's x and Wq parts).
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
    List<Tensor> wrt, r;
    org.bytedeco.pytorch.Tensor tx, tdOut, twq, twk, twv, two, mask;
    org.bytedeco.pytorch.Tensor[] tr;
    long b, t, d;
    int h;
    /** secondOrder: libtorch's attention is the composed math path (create_graph through SDPA raised). */
    boolean torchMath;

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
      boolean second = mode.equals("secondOrder");
      if (second) {
        r = new ArrayList<>();
        tr = new org.bytedeco.pytorch.Tensor[4];
        for (int i = 0; i < 4; i++) {
          Tensor w = mha.parameters().get(i);
          r.add(Tensor.randn(w.shape(), DType.F32, Device.CPU, 40L + i));
          tr[i] = Torch.copyOf(r.get(i));
        }
        if (causal) {
          float[] m = new float[Math.toIntExact(t * t)];
          for (int i = 0; i < t; i++) for (int j = i + 1; j < t; j++) m[(int) (i * t + j)] = Float.NEGATIVE_INFINITY;
          mask = Torch.fromFloats(m, t, t);
        }
        try (PointerScope ps = new PointerScope()) {  // create_graph through SDPA, on one example
          torchSecondOrder(this, false, 1);
          Checks.note(what + ": libtorch SDPA double backward ran (create_graph through scaled_dot_product_attention)");
        } catch (RuntimeException e) {
          torchMath = true;
          String msg = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
          Checks.note(what + ": libtorch SDPA double backward raised (" + msg
              + "); libtorch's layer is timed with the composed math path softmax(q kT/sqrt(dh) + mask) v");
        }
        // the math path keeps about a dozen [B, H, T, T] tensors
        if (torchMath && !vendor.equals("metakernels")) Checks.requireMemory(what + " libtorch math path", 14 * b * h * t * t * 4);
      }
      try (Scope sc = Scope.open(); PointerScope ps = new PointerScope()) {
        // (secondOrder, metakernels: checked on example 0, which libtorch computes alone, to keep set-up short)
        long ex = second && vendor.equals("metakernels") ? 1 : b;
        Tensor[] a = second ? mkSecondOrder(this) : mkForwardBackward(this);
        org.bytedeco.pytorch.Tensor[] c = second ? torchSecondOrder(this, torchMath, ex) : torchForwardBackward(this);
        String part = second ? " Hessian-vector product" + (ex < b ? " (example 0)" : "") : "";
        Checks.assertClose(what + " dx" + part + " metakernels vs libtorch", a[0].narrow(0, 0, ex).toFloatArray(),
            Torch.toFloats(c[0]), 1e-3, 1e-3);
        if (ex == b)
          Checks.assertClose(what + " dWq" + part + " metakernels vs libtorch", a[1].toFloatArray(), Torch.toFloats(c[1]),
              1e-3, 1e-3);
      }
      if (!vendor.equals("metakernels"))
        Torch.pickBlasThreads(what, switch (mode) {
          case "forward" -> () -> torchForward(this);
          case "forwardBackward" -> () -> torchForwardBackward(this);
          default -> () -> torchSecondOrder(this, torchMath, b);
        });
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor tt : new org.bytedeco.pytorch.Tensor[] {tx, tdOut, twq, twk, twv, two, mask})
        if (tt != null) tt.close();
      if (tr != null)
        for (org.bytedeco.pytorch.Tensor tt : tr) tt.close();
      if (scope != null) scope.close();
    }
  }

  static Tensor[] mkForwardBackward(Inputs in) {
    Tensor y = in.mha.forward(in.x);
    return Autograd.grad(List.of(y), in.wrt, List.of(in.dOut), false).toArray(new Tensor[0]);
  }

  /** dx, dWq, dWk, dWv, dWo of Σ_W ⟨dW, r_W⟩, the dW the gradients of ⟨y, dOut⟩ built with createGraph. */
  static Tensor[] mkSecondOrder(Inputs in) {
    Tensor y = in.mha.forward(in.x);
    List<Tensor> ws = in.mha.parameters();
    List<Tensor> g = Autograd.grad(List.of(y), ws, List.of(in.dOut), true);
    Tensor hv = g.get(0).mul(in.r.get(0)).sum();
    for (int i = 1; i < 4; i++) hv = hv.add(g.get(i).mul(in.r.get(i)).sum());
    return Autograd.grad(hv, in.wrt, false).toArray(new Tensor[0]);
  }

  static org.bytedeco.pytorch.Tensor heads(org.bytedeco.pytorch.Tensor p, Inputs in, long b) {
    return p.reshape(b, in.t, in.h, in.d / in.h).transpose(1, 2);
  }

  static org.bytedeco.pytorch.Tensor torchLayer(Inputs in, org.bytedeco.pytorch.Tensor x, org.bytedeco.pytorch.Tensor wq,
      org.bytedeco.pytorch.Tensor wk, org.bytedeco.pytorch.Tensor wv, org.bytedeco.pytorch.Tensor wo) {
    return torchLayer(in, x, wq, wk, wv, wo, false);
  }

  static org.bytedeco.pytorch.Tensor torchLayer(Inputs in, org.bytedeco.pytorch.Tensor x, org.bytedeco.pytorch.Tensor wq,
      org.bytedeco.pytorch.Tensor wk, org.bytedeco.pytorch.Tensor wv, org.bytedeco.pytorch.Tensor wo, boolean math) {
    long b = x.size(0);
    org.bytedeco.pytorch.Tensor q = heads(x.matmul(wq.mT()), in, b), k = heads(x.matmul(wk.mT()), in, b),
        v = heads(x.matmul(wv.mT()), in, b);
    org.bytedeco.pytorch.Tensor o;  // [B, H, T, dh]
    if (math) {
      org.bytedeco.pytorch.Tensor s = q.matmul(k.mT()).mul(new org.bytedeco.pytorch.Scalar(1.0 / Math.sqrt(in.d / in.h)));
      if (in.mask != null) s = s.add(in.mask);
      o = s.softmax(-1).matmul(v);
    } else {
      o = Torch.sdpa(q, k, v, in.causal);
    }
    return o.transpose(1, 2).reshape(b, in.t, in.d).matmul(wo.mT());
  }

  /** mkSecondOrder in libtorch, on the first {@code examples} examples of the batch. */
  static org.bytedeco.pytorch.Tensor[] torchSecondOrder(Inputs in, boolean math, long examples) {
    org.bytedeco.pytorch.Tensor x = examples == in.b ? in.tx : Torch.leaf(in.tx.detach().narrow(0, 0, examples).clone());
    org.bytedeco.pytorch.Tensor dOut = examples == in.b ? in.tdOut : in.tdOut.narrow(0, 0, examples);
    org.bytedeco.pytorch.Tensor y = torchLayer(in, x, in.twq, in.twk, in.twv, in.two, math);
    TensorVector ws = new TensorVector(in.twq, in.twk, in.twv, in.two);
    TensorVector g = Torch.grad(new TensorVector(y), ws, new TensorVector(dOut), true);
    org.bytedeco.pytorch.Tensor hv = g.get(0).mul(in.tr[0]).sum();
    for (int i = 1; i < 4; i++) hv = hv.add(g.get(i).mul(in.tr[i]).sum());
    TensorVector hx = Torch.grad(new TensorVector(hv), new TensorVector(x, in.twq, in.twk, in.twv, in.two),
        new TensorVector(), false);
    return new org.bytedeco.pytorch.Tensor[] {hx.get(0), hx.get(1), hx.get(2), hx.get(3), hx.get(4)};
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
  public void secondOrder(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(mkSecondOrder(in));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(torchSecondOrder(in, in.torchMath, in.b));
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
