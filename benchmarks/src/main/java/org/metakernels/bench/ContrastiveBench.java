package org.metakernels.bench;

import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.TensorVector;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.Functional;
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
 * InfoNCE with several positives and weighted negatives (the loss of MEOW / AdaMEOW, issue 15), F32
 * on the CPU, metakernels against libtorch on the same data: anchors a and candidates b [B, 64], unit
 * rows, τ 0.5, a positives' mask [B, B] (the diagonal and ~4 more per row) and log-weights [B, B]
 * (constant, as MEOW's). metakernels: {@code Functional.infoNce} (one matmul, then the fused rows
 * kernel, kernels/cpu/infonce.cpp); libtorch: the form a PyTorch user writes,
 * {@code (logsumexp(s + logW.masked_fill(P, 0)) − logsumexp(s.masked_fill(!P, −inf))).mean()} with
 * s = (â / τ) b̂ᵀ. {@code forward}: the loss; {@code forwardBackward}: the loss and its gradients in a
 * and b. B = 4019 is ACM's node count: the recipe's full batch.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class ContrastiveBench {
  static final int DIM = 64;
  static final double TAU = 0.5;

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"1024", "4019"})
    public int batch;

    // after batch: JMH orders parameters by name, so each shape runs both vendors back to back
    @Param({"metakernels", "libtorch"})
    public String vendor;

    Scope scope;
    Tensor a, b, pos, logW;
    org.bytedeco.pytorch.Tensor ta, tb, tpos, tnotPos, tlogW;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      a = Tensor.randn(new long[] {batch, DIM}, DType.F32, Device.CPU, 1L).requiresGrad(true);
      b = Tensor.randn(new long[] {batch, DIM}, DType.F32, Device.CPU, 2L).requiresGrad(true);
      float[] p = new float[batch * batch];
      Random r = new Random(3);
      for (int i = 0; i < batch; i++) {
        p[i * batch + i] = 1;
        for (int k = 0; k < 4; k++) p[i * batch + r.nextInt(batch)] = 1;
      }
      pos = Tensor.of(p, batch, batch);
      logW = Tensor.randn(new long[] {batch, batch}, DType.F32, Device.CPU, 4L).mul(0.3);
      ta = Torch.leaf(Torch.copyOf(a.detach()));
      tb = Torch.leaf(Torch.copyOf(b.detach()));
      tpos = Torch.copyOf(pos).gt(new Scalar(0.5));
      tnotPos = tpos.logical_not();
      tlogW = Torch.copyOf(logW);
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        Tensor[] mine = mine(true);
        org.bytedeco.pytorch.Tensor[] theirs = theirs(true);
        String what = "ContrastiveBench batch=" + batch;
        Checks.assertClose(what + " loss", mine[0].toFloatArray(), Torch.toFloats(theirs[0]), 1e-5, 1e-4);
        Checks.assertClose(what + " grad a", mine[1].toFloatArray(), Torch.toFloats(theirs[1]), 1e-7, 1e-3);
        Checks.assertClose(what + " grad b", mine[2].toFloatArray(), Torch.toFloats(theirs[2]), 1e-7, 1e-3);
      }
      if (!vendor.equals("metakernels")) Torch.pickBlasThreads("ContrastiveBench batch=" + batch, () -> theirs(true));
    }

    Tensor[] mine(boolean backward) {
      Tensor loss = Functional.infoNce(a, b, TAU, pos, logW);
      if (!backward) return new Tensor[] {loss};
      List<Tensor> g = Autograd.grad(loss, List.of(a, b), false);
      return new Tensor[] {loss, g.get(0), g.get(1)};
    }

    static org.bytedeco.pytorch.Tensor unitRows(org.bytedeco.pytorch.Tensor x) {
      return x.mul(x.square().sum(new long[] {1}, true, new org.bytedeco.pytorch.ScalarTypeOptional())
                        .add(new Scalar(1e-12))
                        .rsqrt());
    }

    org.bytedeco.pytorch.Tensor[] theirs(boolean backward) {
      org.bytedeco.pytorch.Tensor s = unitRows(ta).div(new Scalar(TAU)).mm(unitRows(tb).mT());
      org.bytedeco.pytorch.Tensor all = s.add(tlogW.masked_fill(tpos, new Scalar(0.0)));
      org.bytedeco.pytorch.Tensor positives = s.masked_fill(tnotPos, new Scalar(Double.NEGATIVE_INFINITY));
      org.bytedeco.pytorch.Tensor loss =
          all.logsumexp(new long[] {1}, false).sub(positives.logsumexp(new long[] {1}, false)).mean();
      if (!backward) return new org.bytedeco.pytorch.Tensor[] {loss};
      TensorVector gr = Torch.grad(new TensorVector(loss), new TensorVector(ta, tb),
          new TensorVector(org.bytedeco.pytorch.global.torch.ones_like(loss)), false);
      return new org.bytedeco.pytorch.Tensor[] {loss, gr.get(0), gr.get(1)};
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor t : new org.bytedeco.pytorch.Tensor[] {ta, tb, tpos, tnotPos, tlogW}) t.close();
      scope.close();
    }
  }

  @Benchmark
  public void forward(Inputs in, Blackhole bh) {
    run(in, false, bh);
  }

  @Benchmark
  public void forwardBackward(Inputs in, Blackhole bh) {
    run(in, true, bh);
  }

  /** The loss (and its gradients) of the state's vendor, its temporaries freed by the call's scope. */
  static void run(Inputs in, boolean backward, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope s = Scope.open()) {
        bh.consume(in.mine(backward));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(in.theirs(backward));
      }
    }
  }
}
