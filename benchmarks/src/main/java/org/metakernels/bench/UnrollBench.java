package org.metakernels.bench;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.TensorVector;
import org.metakernels.meta.InnerStep;
import org.metakernels.meta.Unroll;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Weights;
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
 * A MAML meta-gradient on the CPU, F32: a 4-layer tanh MLP (16-64-64-64-1, 9.5 k weights), K SGD
 * steps (lr 0.01) on a 32-point support set, the MSE on a 32-point query set, its gradient in the
 * initial weights through all K steps (second order). metakernels: {@link Unroll} with the KEEP
 * policy (the fused SGD step and its VJP); libtorch: the same loop with {@code torch::autograd::grad
 * (create_graph = true)} and {@code w - lr * g} in tensor ops, as {@code higher} or a hand-written
 * MAML does. The set-up checks that both give the same meta-gradient before anything is timed.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class UnrollBench {
  static final long[] SIZES = {16, 64, 64, 64, 1};
  static final double LR = 0.01;

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"5", "50"}) public int steps;

    // "vendor" sorts after "steps": each K runs metakernels and libtorch back to back
    @Param({"metakernels", "libtorch"}) public String vendor;

    Scope scope;
    MLP net;
    Tensor xs, ys, xq, yq;
    org.bytedeco.pytorch.Tensor txs, tys, txq, tyq;
    org.bytedeco.pytorch.Tensor[] tw;
    Scalar lr;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      net = new MLP(SIZES, Activation.TANH, DType.F32, Device.CPU, 3L);
      xs = Tensor.randn(new long[] {32, 16}, DType.F32, Device.CPU, 1L);
      ys = xs.select(1, 0).sin().reshape(32, 1);
      xq = Tensor.randn(new long[] {32, 16}, DType.F32, Device.CPU, 2L);
      yq = xq.select(1, 0).sin().reshape(32, 1);
      txs = Torch.copyOf(xs);
      tys = Torch.copyOf(ys);
      txq = Torch.copyOf(xq);
      tyq = Torch.copyOf(yq);
      List<Tensor> ps = net.parameters();
      tw = new org.bytedeco.pytorch.Tensor[ps.size()];
      for (int i = 0; i < tw.length; i++) tw[i] = Torch.leaf(Torch.copyOf(ps.get(i)));
      lr = new Scalar(LR);
      check();
    }

    void check() {
      try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
        List<Tensor> a = metakernels(this);
        org.bytedeco.pytorch.Tensor[] b = libtorch(this);
        for (int i = 0; i < a.size(); i++)
          Checks.assertClose("UnrollBench K=" + steps + " meta-gradient " + i + " metakernels vs libtorch",
              a.get(i).toFloatArray(), Torch.toFloats(b[i]), 1e-5, 1e-3);
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor t : tw) t.close();
      for (org.bytedeco.pytorch.Tensor t : new org.bytedeco.pytorch.Tensor[] {txs, tys, txq, tyq}) t.close();
      lr.close();
      net.close();
      scope.close();
    }
  }

  static List<Tensor> metakernels(Inputs in) {
    Unroll.Result r = Unroll.builder()
                          .initialWeights(in.net.namedParameters())
                          .metaParameters(in.net.namedParameters())
                          .innerLoss((w, step, m) -> Functional.mse(in.net.forward(in.xs, Weights.of(w)), in.ys))
                          .outerLoss((w, m) -> Functional.mse(in.net.forward(in.xq, Weights.of(w)), in.yq))
                          .sgd(InnerStep.Sgd.lr(LR))
                          .steps(in.steps)
                          .run();
    return new ArrayList<>(r.metaGradients().values());
  }

  /** The MLP in libtorch ops: w holds weight, bias per layer, in the module's order. */
  static org.bytedeco.pytorch.Tensor forward(org.bytedeco.pytorch.Tensor[] w, org.bytedeco.pytorch.Tensor x) {
    org.bytedeco.pytorch.Tensor h = x;
    int layers = w.length / 2;
    for (int i = 0; i < layers; i++) {
      h = h.matmul(w[2 * i].t()).add(w[2 * i + 1]);
      if (i < layers - 1) h = h.tanh();
    }
    return h;
  }

  static org.bytedeco.pytorch.Tensor mse(org.bytedeco.pytorch.Tensor p, org.bytedeco.pytorch.Tensor y) {
    return p.sub(y).square().mean();
  }

  static org.bytedeco.pytorch.Tensor[] libtorch(Inputs in) {
    org.bytedeco.pytorch.Tensor[] w = in.tw.clone();
    for (int k = 0; k < in.steps; k++) {
      org.bytedeco.pytorch.Tensor loss = mse(forward(w, in.txs), in.tys);
      TensorVector g = Torch.grad(new TensorVector(loss), new TensorVector(w), new TensorVector(), true);
      org.bytedeco.pytorch.Tensor[] next = new org.bytedeco.pytorch.Tensor[w.length];
      for (int i = 0; i < w.length; i++) next[i] = w[i].sub(g.get(i).mul(in.lr));
      w = next;
    }
    org.bytedeco.pytorch.Tensor outer = mse(forward(w, in.txq), in.tyq);
    TensorVector g = Torch.grad(new TensorVector(outer), new TensorVector(in.tw), new TensorVector(), false);
    org.bytedeco.pytorch.Tensor[] r = new org.bytedeco.pytorch.Tensor[in.tw.length];
    for (int i = 0; i < r.length; i++) r[i] = g.get(i);
    return r;
  }

  @Benchmark
  public void metaGradient(Inputs in, Blackhole bh) {
    if (in.vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(metakernels(in));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(libtorch(in));
      }
    }
  }
}
