package org.metakernels.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.bytedeco.javacpp.PointerScope;
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
import org.openjdk.jmh.infra.Blackhole;

/**
 * A Hessian-vector product H v of a loss in all its inputs, F32 on the CPU, three ways:
 * <ul>
 *   <li>{@code metakernels}: forward over reverse, {@link Autograd#hvpForward} (one forward and one
 *       backward pass, each carrying the tangent v; nothing taped for a second backward);
 *   <li>{@code metakernels-reverse}: reverse over reverse, {@link Autograd#hvp} (forward, backward with
 *       createGraph, a second backward);
 *   <li>{@code libtorch}: the same loss in libtorch, {@code torch::autograd::grad} twice (the
 *       double-backward HVP; create_graph on the first).
 * </ul>
 * Losses: {@code mlp}, the mean squared error of a tanh MLP 64-256-256-16 on a batch of 128;
 * {@code attention}, ½·Σ attention(q, k, v)² with q, k, v [2, 4, 128, 32] (libtorch: SDPA, or its
 * composed math path where SDPA's double backward raises). The set-up checks that the three agree.
 * The report's speed-ups are each peer's time over forward over reverse's (report.py takes the
 * vendor {@code metakernels} as the reference).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class HvpBench {
  static final long[] MLP_SIZES = {64, 256, 256, 16};
  static final long BATCH = 128;
  static final long[] ATT = {2, 4, 128, 32};

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"mlp", "attention"}) public String loss;

    // "vendor" sorts after "loss": each loss runs its three implementations back to back
    @Param({"metakernels", "metakernels-reverse", "libtorch"}) public String vendor;

    Scope scope;
    List<Tensor> x, v;
    Tensor data, target;
    org.bytedeco.pytorch.Tensor[] tx, tv;
    org.bytedeco.pytorch.Tensor tdata, ttarget;
    boolean torchMath;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      x = new ArrayList<>();
      v = new ArrayList<>();
      long seed = 40;
      if (loss.equals("mlp")) {
        for (int l = 0; l + 1 < MLP_SIZES.length; l++) {
          double s = 1.0 / Math.sqrt(MLP_SIZES[l]);
          x.add(Tensor.randn(new long[] {MLP_SIZES[l], MLP_SIZES[l + 1]}, DType.F32, Device.CPU, seed++).mul(s));
          x.add(Tensor.randn(new long[] {MLP_SIZES[l + 1]}, DType.F32, Device.CPU, seed++).mul(0.1));
        }
        data = Tensor.randn(new long[] {BATCH, MLP_SIZES[0]}, DType.F32, Device.CPU, seed++);
        target = Tensor.randn(new long[] {BATCH, MLP_SIZES[MLP_SIZES.length - 1]}, DType.F32, Device.CPU, seed++);
        tdata = Torch.copyOf(data);
        ttarget = Torch.copyOf(target);
      } else {
        for (int i = 0; i < 3; i++) x.add(Tensor.randn(ATT, DType.F32, Device.CPU, seed++));
      }
      for (Tensor p : x) v.add(Tensor.randn(p.shape(), DType.F32, Device.CPU, seed++));
      tx = new org.bytedeco.pytorch.Tensor[x.size()];
      tv = new org.bytedeco.pytorch.Tensor[x.size()];
      for (int i = 0; i < x.size(); i++) {
        tx[i] = Torch.leaf(Torch.copyOf(x.get(i)));
        tv[i] = Torch.copyOf(v.get(i));
      }
      if (loss.equals("attention")) {
        try (PointerScope ps = new PointerScope()) {
          torchHvp(this);
        } catch (RuntimeException e) {
          torchMath = true;
          Checks.note("HvpBench attention: libtorch SDPA double backward raised ("
              + String.valueOf(e.getMessage()).lines().findFirst().orElse("") + "); libtorch runs the math path");
        }
      }
      check();
      if (vendor.equals("libtorch")) Torch.pickBlasThreads("HvpBench." + loss, () -> torchHvp(this));
    }

    void check() {
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        List<Tensor> a = mkHvp(this, true), b = mkHvp(this, false);
        org.bytedeco.pytorch.Tensor[] c = torchHvp(this);
        for (int i = 0; i < a.size(); i++) {
          Checks.assertClose("HvpBench." + loss + " input " + i + " forward over reverse vs reverse over reverse",
              a.get(i).toFloatArray(), b.get(i).toFloatArray(), 1e-4, 1e-3);
          Checks.assertClose("HvpBench." + loss + " input " + i + " metakernels vs libtorch", a.get(i).toFloatArray(),
              Torch.toFloats(c[i]), 1e-4, 1e-3);
        }
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor t : tx) t.close();
      for (org.bytedeco.pytorch.Tensor t : tv) t.close();
      if (tdata != null) tdata.close();
      if (ttarget != null) ttarget.close();
      scope.close();
    }
  }

  static Function<List<Tensor>, Tensor> mkLoss(Inputs in) {
    if (in.loss.equals("mlp")) {
      return ps -> {
        Tensor h = in.data;
        for (int l = 0; l < ps.size(); l += 2) {
          h = h.matmul(ps.get(l)).add(ps.get(l + 1));
          if (l + 2 < ps.size()) h = h.tanh();
        }
        return h.sub(in.target).square().mean();
      };
    }
    return ps -> Attention.softmax(ps.get(0), ps.get(1), ps.get(2)).square().sum().mul(0.5);
  }

  static List<Tensor> mkHvp(Inputs in, boolean forward) {
    return forward ? Autograd.hvpForward(mkLoss(in), in.x, in.v) : Autograd.hvp(mkLoss(in), in.x, in.v);
  }

  static org.bytedeco.pytorch.Tensor torchLoss(Inputs in) {
    org.bytedeco.pytorch.Tensor[] p = in.tx;
    if (in.loss.equals("mlp")) {
      org.bytedeco.pytorch.Tensor h = in.tdata;
      for (int l = 0; l < p.length; l += 2) {
        h = h.matmul(p[l]).add(p[l + 1]);
        if (l + 2 < p.length) h = h.tanh();
      }
      return h.sub(in.ttarget).square().mean();
    }
    org.bytedeco.pytorch.Tensor out;
    if (in.torchMath) {
      double scale = 1.0 / Math.sqrt(ATT[3]);
      out = p[0].matmul(p[1].mT()).mul(new org.bytedeco.pytorch.Scalar(scale)).softmax(-1).matmul(p[2]);
    } else {
      out = Torch.sdpa(p[0], p[1], p[2], false);
    }
    return out.square().sum().mul(new org.bytedeco.pytorch.Scalar(0.5));
  }

  static org.bytedeco.pytorch.Tensor[] torchHvp(Inputs in) {
    org.bytedeco.pytorch.Tensor l = torchLoss(in);
    TensorVector g = Torch.grad(new TensorVector(l), new TensorVector(in.tx), new TensorVector(), true);
    org.bytedeco.pytorch.Tensor gv = null;
    for (int i = 0; i < in.tx.length; i++) {
      org.bytedeco.pytorch.Tensor t = g.get(i).mul(in.tv[i]).sum();
      gv = gv == null ? t : gv.add(t);
    }
    TensorVector h = Torch.grad(new TensorVector(gv), new TensorVector(in.tx), new TensorVector(), false);
    org.bytedeco.pytorch.Tensor[] r = new org.bytedeco.pytorch.Tensor[in.tx.length];
    for (int i = 0; i < r.length; i++) r[i] = h.get(i);
    return r;
  }

  @Benchmark
  public void hvp(Inputs in, Blackhole bh) {
    if (in.vendor.equals("libtorch")) {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(torchHvp(in));
      }
    } else {
      try (Scope scope = Scope.open()) {
        bh.consume(mkHvp(in, in.vendor.equals("metakernels")));
      }
    }
  }
}
