package org.metakernels.bench;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
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
 * Tiny softmax-attention calls, the size an inner loop or a per-token decoder makes: [1, 2, 16, 8]
 * by default, F32 and F64, non-causal, at the default thread count. Times the fixed cost of a
 * call (Java, JNI, argument checks, thread fork or not) rather than arithmetic: metakernels'
 * {@link Attention#softmax} against libtorch's {@code scaled_dot_product_attention}, forward and
 * forward+backward (the output, then dq, dk, dv for a random dOut), in microseconds. Issue 13
 * asked for this row: small calls must stay on one thread and cheap under load.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class SmallAttentionBench {
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"metakernels", "libtorch"}) public String vendor;

    @Param({"1x2x16x8"}) public String shape;

    @Param({"F32", "F64"}) public String dtype;

    Scope scope;
    Tensor ql, kl, vl, dOut;
    org.bytedeco.pytorch.Tensor tq, tk, tv, tdOut;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      Torch.configure(vendor);
      long[] dims = Checks.parseShape(shape);
      DType dt = DType.valueOf(dtype);
      scope = Scope.open();
      Tensor[] f32 = new Tensor[4];
      for (int i = 0; i < 4; i++) f32[i] = Tensor.randn(dims, DType.F32, Device.CPU, 31L + i);
      ql = f32[0].castTo(dt).requiresGrad(true);
      kl = f32[1].castTo(dt).requiresGrad(true);
      vl = f32[2].castTo(dt).requiresGrad(true);
      dOut = f32[3].castTo(dt);
      torch.ScalarType st = dt == DType.F64 ? torch.ScalarType.Double : torch.ScalarType.Float;
      tq = Torch.leaf(Torch.copyOf(f32[0]).to(st));
      tk = Torch.leaf(Torch.copyOf(f32[1]).to(st));
      tv = Torch.leaf(Torch.copyOf(f32[2]).to(st));
      tdOut = Torch.copyOf(f32[3]).to(st);
      String mode = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
      String what = "SmallAttentionBench." + mode + " " + shape + " " + dtype;
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Tensor[] a = mkForwardBackward(this);
        org.bytedeco.pytorch.Tensor[] b = torchForwardBackward(this);
        String[] names = {"dq", "dk", "dv"};
        for (int i = 0; i < 3; i++)
          Checks.assertClose(what + " " + names[i] + " metakernels vs libtorch", a[i].toFloatArray(),
              Torch.toFloats(b[i].to(torch.ScalarType.Float)), 1e-4, 1e-3);
      }
      if (!vendor.equals("metakernels"))
        Torch.pickBlasThreads(
            what, mode.equals("forward") ? () -> torchForward(this) : () -> torchForwardBackward(this));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor t : new org.bytedeco.pytorch.Tensor[] {tq, tk, tv, tdOut})
        if (t != null) t.close();
      if (scope != null) scope.close();
    }
  }

  static Tensor[] mkForwardBackward(Inputs in) {
    Tensor out = Attention.softmax(in.ql, in.kl, in.vl, Attention.Options.defaults());
    return Autograd.grad(List.of(out), List.of(in.ql, in.kl, in.vl), List.of(in.dOut), false).toArray(new Tensor[0]);
  }

  static org.bytedeco.pytorch.Tensor torchForward(Inputs in) {
    return Torch.sdpa(in.tq.detach(), in.tk.detach(), in.tv.detach(), false);
  }

  static org.bytedeco.pytorch.Tensor[] torchForwardBackward(Inputs in) {
    org.bytedeco.pytorch.Tensor out = Torch.sdpa(in.tq, in.tk, in.tv, false);
    TensorVector g =
        Torch.grad(new TensorVector(out), new TensorVector(in.tq, in.tk, in.tv), new TensorVector(in.tdOut), false);
    return new org.bytedeco.pytorch.Tensor[] {g.get(0), g.get(1), g.get(2)};
  }

  @Benchmark
  public void forward(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(Attention.softmax(in.ql.detach(), in.kl.detach(), in.vl.detach(), Attention.Options.defaults()));
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
