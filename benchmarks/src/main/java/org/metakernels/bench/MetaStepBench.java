package org.metakernels.bench;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.TensorVector;
import org.metakernels.autograd.Autograd;
import org.metakernels.meta.InnerStep;
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
 * One differentiable optimizer step of an unrolled inner loop on a 2^20-element F32 parameter on
 * the CPU, with a learning-rate tensor (one value) whose gradient is the meta-gradient:
 * metakernels' fused step ({@link InnerStep}: one kernel, and one for its vector-Jacobian product)
 * against libtorch doing the same update with differentiable tensor ops, as torch.optim's
 * {@code differentiable=True} code does (SGD with momentum 0.9 and weight decay 1e-4; Adam at
 * step 3 with weight decay 1e-4).
 * <ul>
 *   <li>{@code step}: p' and the new state, from inputs that do not require grad;
 *   <li>{@code stepAndVjp}: the step from leaves that require grad (parameter, gradient, state,
 *       learning rate), then the gradients of Σ⟨out_k, r_k⟩ (r random) in all of them.
 * </ul>
 * The set-up checks that both sides agree on the timed quantities before anything is timed.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class MetaStepBench {
  static final long N = 1L << 20;
  static final double LR_SGD = 0.1, LR_ADAM = 1e-3, MU = 0.9, WD = 1e-4, B1 = 0.9, B2 = 0.999, EPS = 1e-8;
  static final long STEP = 3;

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"momentum", "adam"})
    public String optimizer;

    // "vendor" sorts after the other parameters: JMH orders parameters by name, so each optimizer
    // runs metakernels and libtorch back to back and their ratio sees the same machine state.
    @Param({"metakernels", "libtorch"})
    public String vendor;

    Scope scope;
    /** p, g, state (buf, or m and v), lr, cotangents of (p', state'). */
    Tensor[] x;
    Tensor[] cot;
    Tensor[] leaves;
    org.bytedeco.pytorch.Tensor[] tx, tcot, tleaves;
    Scalar[] scalars;

    boolean adam() {
      return optimizer.equals("adam");
    }

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      long[] s = {N};
      double lr = adam() ? LR_ADAM : LR_SGD;
      Tensor p = Tensor.randn(s, DType.F32, Device.CPU, 1L), g = Tensor.randn(s, DType.F32, Device.CPU, 2L);
      Tensor lrT = Tensor.scalar(lr, DType.F32, Device.CPU);
      if (adam()) {
        x = new Tensor[] {p, g, Tensor.randn(s, DType.F32, Device.CPU, 3L).mul(0.1),
            Tensor.uniform(s, 0.01, 0.1, DType.F32, Device.CPU, 4L), lrT};
      } else {
        x = new Tensor[] {p, g, Tensor.randn(s, DType.F32, Device.CPU, 3L), lrT};
      }
      int outs = adam() ? 3 : 2;
      cot = new Tensor[outs];
      for (int k = 0; k < outs; k++) cot[k] = Tensor.randn(s, DType.F32, Device.CPU, 10L + k);
      leaves = new Tensor[x.length];
      for (int i = 0; i < x.length; i++) leaves[i] = x[i].detach().requiresGrad(true);
      tx = new org.bytedeco.pytorch.Tensor[x.length];
      tleaves = new org.bytedeco.pytorch.Tensor[x.length];
      for (int i = 0; i < x.length; i++) {
        tx[i] = i == x.length - 1 ? Torch.fromFloats(new float[] {(float) lr}) : Torch.copyOf(x[i]);
        tleaves[i] = Torch.leaf(tx[i]);
      }
      tcot = new org.bytedeco.pytorch.Tensor[outs];
      for (int k = 0; k < outs; k++) tcot[k] = Torch.copyOf(cot[k]);
      scalars = new Scalar[] {new Scalar(MU), new Scalar(WD), new Scalar(1 - B1), new Scalar(B2), new Scalar(1 - B2),
          new Scalar(Math.sqrt(1 - Math.pow(B2, STEP))), new Scalar(EPS), new Scalar(1 - Math.pow(B1, STEP))};
      check();
    }

    /** Both sides on the step's outputs and on every gradient of the VJP. */
    void check() {
      String what = "MetaStepBench." + optimizer;
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Tensor[] a = mkStep(this, x);
        org.bytedeco.pytorch.Tensor[] b = torchStep(this, tx);
        for (int k = 0; k < a.length; k++)
          Checks.assertClose(what + " output " + k + " metakernels vs libtorch", a[k].toFloatArray(),
              Torch.toFloats(b[k]), 1e-6, 1e-5);
        Tensor[] ga = mkStepAndVjp(this);
        org.bytedeco.pytorch.Tensor[] gb = torchStepAndVjp(this);
        for (int i = 0; i < ga.length; i++)
          Checks.assertClose(what + " gradient of input " + i + " metakernels vs libtorch", ga[i].toFloatArray(),
              Torch.toFloats(gb[i]), 1e-5, 1e-4);
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor t : tx) t.close();
      for (org.bytedeco.pytorch.Tensor t : tleaves) t.close();
      for (org.bytedeco.pytorch.Tensor t : tcot) t.close();
      for (Scalar c : scalars) c.close();
      scope.close();
    }
  }

  // ---- metakernels: one fused kernel for the step, one for its VJP ------------------------------

  static Tensor[] mkStep(Inputs in, Tensor[] x) {
    if (in.adam()) {
      InnerStep.AdamResult r = InnerStep.adam(x[0], x[1], x[2], x[3], STEP,
          InnerStep.Adam.lr(x[4]).withBetas(B1, B2).withEps(EPS).withWeightDecay(WD));
      return new Tensor[] {r.param(), r.m(), r.v()};
    }
    InnerStep.MomentumResult r = InnerStep.momentum(x[0], x[1], x[2],
        InnerStep.Momentum.lr(x[3]).withMomentum(MU).withWeightDecay(WD));
    return new Tensor[] {r.param(), r.buffer()};
  }

  static Tensor[] mkStepAndVjp(Inputs in) {
    Tensor[] out = mkStep(in, in.leaves);
    return Autograd.grad(List.of(out), List.of(in.leaves), List.of(in.cot), false).toArray(new Tensor[0]);
  }

  // ---- libtorch: the same update in differentiable tensor ops (torch.optim, differentiable=True) --

  static org.bytedeco.pytorch.Tensor[] torchStep(Inputs in, org.bytedeco.pytorch.Tensor[] x) {
    Scalar[] c = in.scalars;
    if (in.adam()) {
      org.bytedeco.pytorch.Tensor d = x[1].add(x[0], c[1]);                 // grad.add(param, alpha=wd)
      org.bytedeco.pytorch.Tensor m = x[2].lerp(d, c[2]);                   // exp_avg.lerp(grad, 1 - beta1)
      org.bytedeco.pytorch.Tensor v = x[3].mul(c[3]).addcmul(d, d, c[4]);   // exp_avg_sq * beta2 + (1 - beta2) g²
      org.bytedeco.pytorch.Tensor denom = v.sqrt().div(c[5]).add(c[6]);     // sqrt(v) / sqrt(bc2) + eps
      org.bytedeco.pytorch.Tensor p = x[0].sub(m.div(denom).mul(x[4].div(c[7])));  // p - (lr / bc1) m / denom
      return new org.bytedeco.pytorch.Tensor[] {p, m, v};
    }
    org.bytedeco.pytorch.Tensor d = x[1].add(x[0], c[1]);                   // grad.add(param, alpha=wd)
    org.bytedeco.pytorch.Tensor b = x[2].mul(c[0]).add(d);                  // buf * momentum + grad
    return new org.bytedeco.pytorch.Tensor[] {x[0].sub(b.mul(x[3])), b};   // param - lr * buf
  }

  static org.bytedeco.pytorch.Tensor[] torchStepAndVjp(Inputs in) {
    org.bytedeco.pytorch.Tensor[] out = torchStep(in, in.tleaves);
    TensorVector g = Torch.grad(new TensorVector(out), new TensorVector(in.tleaves), new TensorVector(in.tcot), false);
    org.bytedeco.pytorch.Tensor[] r = new org.bytedeco.pytorch.Tensor[in.tleaves.length];
    for (int i = 0; i < r.length; i++) r[i] = g.get(i);
    return r;
  }

  @Benchmark
  public void step(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(mkStep(in, in.x));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(torchStep(in, in.tx));
      }
    }
  }

  @Benchmark
  public void stepAndVjp(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(mkStepAndVjp(in));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(torchStepAndVjp(in));
      }
    }
  }
}
