package org.metakernels.bench;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.TensorVector;
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
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Softmax attention, F32 on the CPU: metakernels' fused {@link Attention#softmax} against
 * libtorch's {@code scaled_dot_product_attention} (default scale 1/√D, no dropout), q, k, v:
 * [B, H, N, D], causal or not.
 * <ul>
 *   <li>{@code forward}: the output;
 *   <li>{@code forwardBackward}: the output, then dq, dk, dv for a random dOut;
 *   <li>{@code doubleBackward}: the first gradients with create_graph, then the gradient of
 *       Σ_x ⟨dx, r_x⟩ (r random, x ∈ q, k, v) with respect to q, k, v: a Hessian-vector
 *       product, what MAML through attention needs. libtorch's CPU SDPA picks its flash kernel,
 *       whose backward may not be differentiable; the set-up tries it once and, when libtorch
 *       raises, times the composed math path softmax(q kᵀ·scale + mask) v instead, and notes it.
 * </ul>
 * Every set-up first checks metakernels against libtorch on the timed quantity (for the
 * metakernels vendor on head 0 only, which libtorch computes alone, to keep set-up short).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class AttentionBench {

  /** libtorch copies of the inputs, leaves that require grad, and the additive causal mask. */
  static final class TorchInputs {
    final org.bytedeco.pytorch.Tensor q, k, v, dOut, rq, rk, rv, ql, kl, vl, mask;
    final boolean causal;
    final double scale;

    TorchInputs(org.bytedeco.pytorch.Tensor[] t, boolean causal, long n, long d) {
      q = t[0];
      k = t[1];
      v = t[2];
      dOut = t[3];
      rq = t[4];
      rk = t[5];
      rv = t[6];
      ql = Torch.leaf(q);
      kl = Torch.leaf(k);
      vl = Torch.leaf(v);
      this.causal = causal;
      scale = 1.0 / Math.sqrt(d);
      if (causal) {
        float[] m = new float[Math.toIntExact(n * n)];
        for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) m[(int) (i * n + j)] = Float.NEGATIVE_INFINITY;
        mask = Torch.fromFloats(m, n, n);
      } else {
        mask = null;
      }
    }

    /** Head 0 only (heads are independent, so its results are head 0 of the full results). */
    TorchInputs head0() {
      org.bytedeco.pytorch.Tensor[] t = new org.bytedeco.pytorch.Tensor[] {Torch.head0(q), Torch.head0(k),
          Torch.head0(v), Torch.head0(dOut), Torch.head0(rq), Torch.head0(rk), Torch.head0(rv)};
      return new TorchInputs(t, causal, q.size(2), q.size(3));
    }

    void close() {
      for (org.bytedeco.pytorch.Tensor t : new org.bytedeco.pytorch.Tensor[] {q, k, v, dOut, rq, rk, rv, ql, kl, vl,
          mask})
        if (t != null) t.close();
    }
  }

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    // "vendor" sorts after the other parameters: JMH orders parameters by name, so each shape
    // runs metakernels and its peers back to back and their ratio sees the same machine state.
    @Param({"metakernels", "libtorch"})
    public String vendor;

    @Param({"1x8x1024x64", "4x8x512x64", "1x8x4096x64"})
    public String shape;

    @Param({"false", "true"})
    public boolean causal;

    long[] dims;
    Scope scope;
    Tensor q, k, v, dOut, rq, rk, rv, ql, kl, vl;
    TorchInputs t;
    /** libtorch's double backward goes through the composed math path (SDPA's raised). */
    boolean torchMath;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      Torch.configure(vendor);
      dims = Checks.parseShape(shape);
      String mode = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
      String what = "AttentionBench." + mode + " " + shape + (causal ? " causal" : "");
      long scores = dims[0] * dims[1] * dims[2] * dims[2] * 4;
      // the libtorch math path keeps about a dozen [B, H, N, N] tensors in the double backward
      if (mode.equals("doubleBackward") && vendor.equals("libtorch"))
        Checks.requireMemory(what + " libtorch math path", 14 * scores);
      scope = Scope.open();
      q = Tensor.randn(dims, DType.F32, Device.CPU, 21L);
      k = Tensor.randn(dims, DType.F32, Device.CPU, 22L);
      v = Tensor.randn(dims, DType.F32, Device.CPU, 23L);
      dOut = Tensor.randn(dims, DType.F32, Device.CPU, 24L);
      rq = Tensor.randn(dims, DType.F32, Device.CPU, 25L);
      rk = Tensor.randn(dims, DType.F32, Device.CPU, 26L);
      rv = Tensor.randn(dims, DType.F32, Device.CPU, 27L);
      ql = q.detach().requiresGrad(true);
      kl = k.detach().requiresGrad(true);
      vl = v.detach().requiresGrad(true);
      t = new TorchInputs(new org.bytedeco.pytorch.Tensor[] {Torch.copyOf(q), Torch.copyOf(k), Torch.copyOf(v),
          Torch.copyOf(dOut), Torch.copyOf(rq), Torch.copyOf(rk), Torch.copyOf(rv)}, causal, dims[2], dims[3]);
      if (mode.equals("doubleBackward")) {
        // does create_graph through SDPA work on this libtorch? (tried on head 0, it is cheaper)
        try (PointerScope ps = new PointerScope()) {
          TorchInputs h = t.head0();
          torchDoubleBackward(h, false);
          Checks.note(what + ": libtorch SDPA double backward ran (create_graph through scaled_dot_product_attention)");
        } catch (RuntimeException e) {
          torchMath = true;
          String msg = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
          Checks.note(what + ": libtorch SDPA double backward raised (" + msg
              + "); libtorch is timed on the composed math path softmax(q kT*scale + mask) v");
        }
      }
      check(what, mode);
      if (!vendor.equals("metakernels")) {
        Runnable op = switch (mode) {
          case "forward" -> () -> torchForward(t);
          case "forwardBackward" -> () -> torchForwardBackward(t);
          default -> () -> torchDoubleBackward(t, torchMath);
        };
        Torch.pickBlasThreads(what, op);
      }
    }

    /**
     * Checks metakernels against libtorch on the timed quantity. For the libtorch vendor, the full
     * results; for metakernels, head 0 against libtorch run on head 0 alone.
     */
    void check(String what, String mode) {
      boolean mine = vendor.equals("metakernels");
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        TorchInputs tin = mine ? t.head0() : t;
        Tensor[] a;
        org.bytedeco.pytorch.Tensor[] b;
        String[] names;
        switch (mode) {
          case "forward" -> {
            a = new Tensor[] {mkForward(this)};
            b = new org.bytedeco.pytorch.Tensor[] {torchForward(tin)};
            names = new String[] {"out"};
          }
          case "forwardBackward" -> {
            a = mkForwardBackward(this);
            b = torchForwardBackward(tin);
            names = new String[] {"dq", "dk", "dv"};
          }
          case "doubleBackward" -> {
            a = mkDoubleBackward(this);
            b = torchDoubleBackward(tin, torchMath);
            names = new String[] {"d(<dq,rq>+<dk,rk>+<dv,rv>)/dq", "/dk", "/dv"};
          }
          default -> throw new IllegalArgumentException(mode);
        }
        for (int i = 0; i < names.length; i++) {
          Tensor ai = mine ? a[i].narrow(1, 0, 1) : a[i];
          Checks.assertClose(what + " " + names[i] + " metakernels vs libtorch" + (torchMath ? " math path" : "")
              + (mine ? " (head 0)" : ""), ai.toFloatArray(), Torch.toFloats(b[i]), 1e-4, 1e-3);
        }
        if (mine) tin.close();
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (t != null) t.close();
      if (scope != null) scope.close();
    }
  }

  static Attention.Options options(Inputs in) {
    return in.causal ? Attention.Options.causal() : Attention.Options.defaults();
  }

  static Tensor mkForward(Inputs in) {
    return Attention.softmax(in.q, in.k, in.v, options(in));
  }

  static Tensor[] mkForwardBackward(Inputs in) {
    Tensor out = Attention.softmax(in.ql, in.kl, in.vl, options(in));
    return Autograd.grad(List.of(out), List.of(in.ql, in.kl, in.vl), List.of(in.dOut), false).toArray(new Tensor[0]);
  }

  static Tensor[] mkDoubleBackward(Inputs in) {
    Tensor out = Attention.softmax(in.ql, in.kl, in.vl, options(in));
    List<Tensor> g = Autograd.grad(List.of(out), List.of(in.ql, in.kl, in.vl), List.of(in.dOut), true);
    Tensor hv = g.get(0).mul(in.rq).sum().add(g.get(1).mul(in.rk).sum()).add(g.get(2).mul(in.rv).sum());
    return Autograd.grad(hv, List.of(in.ql, in.kl, in.vl), false).toArray(new Tensor[0]);
  }

  static org.bytedeco.pytorch.Tensor torchForward(TorchInputs in) {
    return Torch.sdpa(in.q, in.k, in.v, in.causal);
  }

  static org.bytedeco.pytorch.Tensor[] torchForwardBackward(TorchInputs in) {
    org.bytedeco.pytorch.Tensor out = Torch.sdpa(in.ql, in.kl, in.vl, in.causal);
    TensorVector g = Torch.grad(new TensorVector(out), new TensorVector(in.ql, in.kl, in.vl),
        new TensorVector(in.dOut), false);
    return new org.bytedeco.pytorch.Tensor[] {g.get(0), g.get(1), g.get(2)};
  }

  /** softmax(q kᵀ·scale + mask) v, composed of differentiable libtorch ops. */
  static org.bytedeco.pytorch.Tensor torchMath(TorchInputs in) {
    org.bytedeco.pytorch.Tensor s = in.ql.matmul(in.kl.mT()).mul(new Scalar(in.scale));
    if (in.mask != null) s = s.add(in.mask);
    return s.softmax(-1).matmul(in.vl);
  }

  static org.bytedeco.pytorch.Tensor[] torchDoubleBackward(TorchInputs in, boolean math) {
    org.bytedeco.pytorch.Tensor out = math ? torchMath(in) : Torch.sdpa(in.ql, in.kl, in.vl, in.causal);
    TensorVector g = Torch.grad(new TensorVector(out), new TensorVector(in.ql, in.kl, in.vl),
        new TensorVector(in.dOut), true);
    org.bytedeco.pytorch.Tensor hv = g.get(0).mul(in.rq).sum().add(g.get(1).mul(in.rk).sum())
        .add(g.get(2).mul(in.rv).sum());
    TensorVector h = Torch.grad(new TensorVector(hv), new TensorVector(in.ql, in.kl, in.vl), new TensorVector(),
        false);
    return new org.bytedeco.pytorch.Tensor[] {h.get(0), h.get(1), h.get(2)};
  }

  @Benchmark
  public void forward(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(mkForward(in));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(torchForward(in.t));
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
        bh.consume(torchForwardBackward(in.t));
      }
    }
  }

  @Benchmark
  public void doubleBackward(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(mkDoubleBackward(in));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(torchDoubleBackward(in.t, in.torchMath));
      }
    }
  }
}
