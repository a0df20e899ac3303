package org.metakernels.bench;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.TensorVector;
import org.metakernels.meta.EvolutionStrategies;
import org.metakernels.meta.PerExample;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
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

/**
 * The batched meta kernels on the CPU, F32, against libtorch:
 * <ul>
 *   <li>{@code perExampleNorms}: the gradient norm of each of B = 64 examples for an MLP
 *       32-128-128-10 (tanh, squared error): metakernels' one batched pass
 *       ({@link PerExample#norms}, the fused norm kernel) against two libtorch forms: a loop of B
 *       single-example backward passes ({@code libtorch-loop}: what a user without vmap writes;
 *       libtorch's C++ API here has no vmap) and the same batched trick written by hand in
 *       libtorch ops ({@code libtorch-batched}: one forward keeping each layer's pre-activation z,
 *       one {@code autograd::grad} in all z, then |g_b|²(|a_b|² + 1) per layer, exact here because
 *       every example is one row);
 *   <li>{@code perExampleGradients}: every example's gradient of every weight and bias, [B, out,
 *       in] and [B, out] ({@link PerExample#gradients}), against the same two libtorch forms (the
 *       batched one as outer products a_b ⊗ g_b);
 *   <li>{@code esGeneration}: one ES generation of 256 members over n = 65536 parameters without
 *       the fitness evaluation: the population θ ± σε and the update θ + lr/(Pσ) Σ w_i ε_i.
 *       metakernels regenerates ε in both kernels; libtorch draws ε with randn (stored) and
 *       updates with a matmul.
 * </ul>
 * The set-ups check that the per-example norms and gradients of every form agree before anything is
 * timed.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class MetaBatchedBench {
  static final int B = 64, POP = 256, N = 65536;
  static final long[] SIZES = {32, 128, 128, 10};
  static final double SIGMA = 0.02, LR = 0.01;

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class Inputs {
    @Param({"metakernels", "libtorch"}) public String vendor;

    Scope scope;
    Tensor theta, weights;
    org.bytedeco.pytorch.Tensor ttheta, tdiff;
    Scalar sigma, scale;
    long generation;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      theta = Tensor.randn(new long[] {N}, DType.F32, Device.CPU, 4L);
      double[] w = EvolutionStrategies.centredRanks(new java.util.Random(5).doubles(POP).toArray());
      weights = Tensor.of(w, POP).to(DType.F32);
      float[] diff = new float[POP / 2];
      for (int k = 0; k < POP / 2; k++) diff[k] = (float) (w[2 * k] - w[2 * k + 1]);
      ttheta = Torch.copyOf(theta);
      tdiff = Torch.fromFloats(diff, 1, POP / 2);
      sigma = new Scalar(SIGMA);
      scale = new Scalar(LR / (POP * SIGMA));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      ttheta.close();
      tdiff.close();
      sigma.close();
      scale.close();
      scope.close();
    }
  }

  /** The per-example benchmarks' inputs: the MLP on both sides, and which form runs. */
  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class PerExampleInputs {
    @Param({"metakernels", "libtorch-loop", "libtorch-batched"}) public String vendor;

    Scope scope;
    MLP net;
    Tensor x, y;
    org.bytedeco.pytorch.Tensor tx, ty;
    org.bytedeco.pytorch.Tensor[] tw; // w1ᵀ, b1, w2ᵀ, b2, w3ᵀ, b3 as leaves

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      net = new MLP(SIZES, Activation.TANH, DType.F32, Device.CPU, 1L);
      x = Tensor.randn(new long[] {B, SIZES[0]}, DType.F32, Device.CPU, 2L);
      y = Tensor.randn(new long[] {B, SIZES[3]}, DType.F32, Device.CPU, 3L);
      tx = Torch.copyOf(x);
      ty = Torch.copyOf(y);
      Map<String, Tensor> ps = net.namedParameters();
      tw = new org.bytedeco.pytorch.Tensor[6];
      for (int i = 0; i < 3; i++) {
        tw[2 * i] = Torch.leaf(Torch.copyOf(ps.get("layer" + i + ".weight").detach().mT().contiguous()));
        tw[2 * i + 1] = Torch.leaf(Torch.copyOf(ps.get("layer" + i + ".bias").detach()));
      }
      try (Scope s = Scope.open(); PointerScope p = new PointerScope()) {
        float[] mk = mkNorms(this).toFloatArray();
        Checks.assertClose("MetaBatchedBench per-example norms metakernels vs libtorch-loop", mk, torchLoopNorms(this),
            1e-5, 1e-4);
        Checks.assertClose("MetaBatchedBench per-example norms metakernels vs libtorch-batched", mk,
            torchBatchedNorms(this), 1e-5, 1e-4);
        Map<String, Tensor> g = mkGradients(this);
        org.bytedeco.pytorch.Tensor[] loop = torchLoopGradients(this), batched = torchBatchedGradients(this);
        for (int i = 0; i < 3; i++) {
          // libtorch holds wᵀ: its per-example weight gradients are [B, in, out]
          float[] w = g.get("layer" + i + ".weight").transpose(1, 2).contiguous().toFloatArray();
          float[] b = g.get("layer" + i + ".bias").toFloatArray();
          Checks.assertClose("MetaBatchedBench per-example gradients of layer" + i + ".weight vs libtorch-loop", w,
              Torch.toFloats(loop[2 * i]), 1e-5, 1e-4);
          Checks.assertClose("MetaBatchedBench per-example gradients of layer" + i + ".weight vs libtorch-batched", w,
              Torch.toFloats(batched[2 * i]), 1e-5, 1e-4);
          Checks.assertClose("MetaBatchedBench per-example gradients of layer" + i + ".bias vs libtorch-loop", b,
              Torch.toFloats(loop[2 * i + 1]), 1e-5, 1e-4);
          Checks.assertClose("MetaBatchedBench per-example gradients of layer" + i + ".bias vs libtorch-batched", b,
              Torch.toFloats(batched[2 * i + 1]), 1e-5, 1e-4);
        }
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor t : tw) t.close();
      tx.close();
      ty.close();
      net.close();
      scope.close();
    }
  }

  static Tensor mkNorms(PerExampleInputs in) {
    return PerExample.norms(in.net, in.x, out -> out.sub(in.y).square().sum(1, false), false);
  }

  static Map<String, Tensor> mkGradients(PerExampleInputs in) {
    return PerExample.gradients(in.net, in.x, out -> out.sub(in.y).square().sum(1, false), false).gradients();
  }

  /** Example b's gradients, one backward pass per example: [w1ᵀ, b1, ...] of that example. */
  static TensorVector torchOneExample(PerExampleInputs in, int b) {
    org.bytedeco.pytorch.Tensor h = in.tx.narrow(0, b, 1);
    for (int i = 0; i < 3; i++) {
      h = h.matmul(in.tw[2 * i]).add(in.tw[2 * i + 1]);
      if (i < 2) h = h.tanh();
    }
    org.bytedeco.pytorch.Tensor d = h.sub(in.ty.narrow(0, b, 1));
    org.bytedeco.pytorch.Tensor loss = d.mul(d).sum();
    return Torch.grad(new TensorVector(loss), new TensorVector(in.tw), new TensorVector(), false);
  }

  static float[] torchLoopNorms(PerExampleInputs in) {
    float[] out = new float[B];
    for (int b = 0; b < B; b++) {
      try (PointerScope p = new PointerScope()) {
        TensorVector g = torchOneExample(in, b);
        double n2 = 0;
        for (long k = 0; k < g.size(); k++) n2 += g.get(k).mul(g.get(k)).sum().item_float();
        out[b] = (float) Math.sqrt(n2);
      }
    }
    return out;
  }

  /** The loop's gradients stacked: [B, in, out] per weight, [B, out] per bias. */
  static org.bytedeco.pytorch.Tensor[] torchLoopGradients(PerExampleInputs in) {
    org.bytedeco.pytorch.Tensor[] out = new org.bytedeco.pytorch.Tensor[6];
    for (int k = 0; k < 6; k++) {
      long[] shape = in.tw[k].dim() == 2 ? new long[] {B, in.tw[k].size(0), in.tw[k].size(1)}
                                         : new long[] {B, in.tw[k].size(0)};
      out[k] = org.bytedeco.pytorch.global.torch.empty(shape);
    }
    for (int b = 0; b < B; b++) {
      TensorVector g = torchOneExample(in, b);
      for (int k = 0; k < 6; k++) out[k].get(b).copy_(g.get(k));
    }
    return out;
  }

  /**
   * The batched form by hand: one forward keeping the layer inputs a_i and pre-activations z_i, one
   * autograd::grad of Σ_b loss_b in all z_i (row b of g_i is example b's ∂loss_b/∂z_i).
   */
  static org.bytedeco.pytorch.Tensor[][] torchTapped(PerExampleInputs in) {
    org.bytedeco.pytorch.Tensor[] a = new org.bytedeco.pytorch.Tensor[3], z = new org.bytedeco.pytorch.Tensor[3];
    org.bytedeco.pytorch.Tensor h = in.tx;
    for (int i = 0; i < 3; i++) {
      a[i] = h;
      z[i] = h.matmul(in.tw[2 * i]).add(in.tw[2 * i + 1]);
      h = i < 2 ? z[i].tanh() : z[i];
    }
    org.bytedeco.pytorch.Tensor d = h.sub(in.ty);
    org.bytedeco.pytorch.Tensor loss = d.mul(d).sum();
    TensorVector g = Torch.grad(new TensorVector(loss), new TensorVector(z), new TensorVector(), false);
    return new org.bytedeco.pytorch.Tensor[][] {a, {g.get(0), g.get(1), g.get(2)}};
  }

  static float[] torchBatchedNorms(PerExampleInputs in) {
    org.bytedeco.pytorch.Tensor[][] t = torchTapped(in);
    org.bytedeco.pytorch.Tensor n2 = null;
    for (int i = 0; i < 3; i++) {
      org.bytedeco.pytorch.Tensor a = t[0][i], g = t[1][i];
      // |a_b ⊗ g_b|² + |g_b|² = |g_b|² (|a_b|² + 1)
      org.bytedeco.pytorch.Tensor gg = g.mul(g).sum(1), aa = a.mul(a).sum(1);
      org.bytedeco.pytorch.Tensor term = gg.mul(aa.add(new Scalar(1.0)));
      n2 = n2 == null ? term : n2.add(term);
    }
    return Torch.toFloats(n2.sqrt());
  }

  static org.bytedeco.pytorch.Tensor[] torchBatchedGradients(PerExampleInputs in) {
    org.bytedeco.pytorch.Tensor[][] t = torchTapped(in);
    org.bytedeco.pytorch.Tensor[] out = new org.bytedeco.pytorch.Tensor[6];
    for (int i = 0; i < 3; i++) {
      org.bytedeco.pytorch.Tensor a = t[0][i], g = t[1][i];
      out[2 * i] = a.unsqueeze(2).mul(g.unsqueeze(1)); // [B, in, out]
      out[2 * i + 1] = g;
    }
    return out;
  }

  @Benchmark
  public Object perExampleNorms(PerExampleInputs in) {
    if (in.vendor.equals("metakernels")) {
      try (Scope s = Scope.open()) {
        return mkNorms(in).toFloatArray();
      }
    }
    try (PointerScope p = new PointerScope()) {
      return in.vendor.equals("libtorch-loop") ? torchLoopNorms(in) : torchBatchedNorms(in);
    }
  }

  /** Every per-example gradient; returns one element of the last layer's, read on each side. */
  @Benchmark
  public Object perExampleGradients(PerExampleInputs in) {
    if (in.vendor.equals("metakernels")) {
      try (Scope s = Scope.open()) {
        Map<String, Tensor> g = mkGradients(in);
        return g.get("layer2.weight").select(0, B - 1).select(0, 0).select(0, 0).item();
      }
    }
    try (PointerScope p = new PointerScope()) {
      org.bytedeco.pytorch.Tensor[] g =
          in.vendor.equals("libtorch-loop") ? torchLoopGradients(in) : torchBatchedGradients(in);
      return g[4].get(B - 1).get(0).get(0).item_float();
    }
  }

  @Benchmark
  public Object esGeneration(Inputs in) {
    long g = in.generation++;
    if (in.vendor.equals("metakernels")) {
      try (Scope s = Scope.open()) {
        Tensor pop = EvolutionStrategies.perturb(in.theta, SIGMA, 7L, g, POP);
        Tensor next = EvolutionStrategies.combine(in.weights, LR / (POP * SIGMA), in.theta, in.theta, 7L, g);
        // one element of each, as libtorch's side reads (a whole copy of pop would add 67 MB)
        return new double[] {pop.select(0, 0).select(0, 0).item(), pop.select(0, 1).select(0, 0).item(),
            next.select(0, 0).item()};
      }
    }
    try (PointerScope p = new PointerScope()) {
      org.bytedeco.pytorch.Tensor eps = org.bytedeco.pytorch.global.torch.randn(POP / 2, N);
      org.bytedeco.pytorch.Tensor se = eps.mul(in.sigma);
      org.bytedeco.pytorch.Tensor plus = in.ttheta.add(se), minus = in.ttheta.sub(se);
      org.bytedeco.pytorch.Tensor next = in.ttheta.add(in.tdiff.matmul(eps).mul(in.scale));
      return new float[] {
          plus.get(0).get(0).item_float(), minus.get(0).get(0).item_float(), next.get(0).get(0).item_float()};
    }
  }
}
