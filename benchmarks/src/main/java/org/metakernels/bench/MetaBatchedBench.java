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
 *       ({@link PerExample#norms}, the fused norm kernel) against libtorch's loop of B
 *       single-example backward passes (libtorch here has no vmap);
 *   <li>{@code esGeneration}: one ES generation of 256 members over n = 65536 parameters without
 *       the fitness evaluation: the population θ ± σε and the update θ + lr/(Pσ) Σ w_i ε_i.
 *       metakernels regenerates ε in both kernels; libtorch draws ε with randn (stored) and
 *       updates with a matmul.
 * </ul>
 * The set-up checks that the per-example norms of both sides agree before anything is timed.
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
    MLP net;
    Tensor x, y, theta, weights;
    org.bytedeco.pytorch.Tensor tx, ty, ttheta, tdiff;
    org.bytedeco.pytorch.Tensor[] tw; // w1ᵀ, b1, w2ᵀ, b2, w3ᵀ, b3 as leaves
    Scalar sigma, scale;
    long generation;

    @Setup(Level.Trial)
    public void setup() {
      Torch.configure(vendor);
      scope = Scope.open();
      net = new MLP(SIZES, Activation.TANH, DType.F32, Device.CPU, 1L);
      x = Tensor.randn(new long[] {B, SIZES[0]}, DType.F32, Device.CPU, 2L);
      y = Tensor.randn(new long[] {B, SIZES[3]}, DType.F32, Device.CPU, 3L);
      theta = Tensor.randn(new long[] {N}, DType.F32, Device.CPU, 4L);
      double[] w = EvolutionStrategies.centredRanks(new java.util.Random(5).doubles(POP).toArray());
      weights = Tensor.of(w, POP).to(DType.F32);
      float[] diff = new float[POP / 2];
      for (int k = 0; k < POP / 2; k++) diff[k] = (float) (w[2 * k] - w[2 * k + 1]);
      tx = Torch.copyOf(x);
      ty = Torch.copyOf(y);
      ttheta = Torch.copyOf(theta);
      tdiff = Torch.fromFloats(diff, 1, POP / 2);
      Map<String, Tensor> ps = net.namedParameters();
      tw = new org.bytedeco.pytorch.Tensor[6];
      for (int i = 0; i < 3; i++) {
        tw[2 * i] = Torch.leaf(Torch.copyOf(ps.get("layer" + i + ".weight").detach().mT().contiguous()));
        tw[2 * i + 1] = Torch.leaf(Torch.copyOf(ps.get("layer" + i + ".bias").detach()));
      }
      sigma = new Scalar(SIGMA);
      scale = new Scalar(LR / (POP * SIGMA));
      try (Scope s = Scope.open(); PointerScope p = new PointerScope()) {
        Checks.assertClose("MetaBatchedBench per-example norms metakernels vs libtorch", mkNorms(this).toFloatArray(),
            torchNorms(this), 1e-5, 1e-4);
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      for (org.bytedeco.pytorch.Tensor t : tw) t.close();
      tx.close();
      ty.close();
      ttheta.close();
      tdiff.close();
      sigma.close();
      scale.close();
      net.close();
      scope.close();
    }
  }

  static Tensor mkNorms(Inputs in) {
    return PerExample.norms(in.net, in.x, out -> out.sub(in.y).square().sum(1, false), false);
  }

  static float[] torchNorms(Inputs in) {
    float[] out = new float[B];
    for (int b = 0; b < B; b++) {
      try (PointerScope p = new PointerScope()) {
        org.bytedeco.pytorch.Tensor h = in.tx.narrow(0, b, 1);
        for (int i = 0; i < 3; i++) {
          h = h.matmul(in.tw[2 * i]).add(in.tw[2 * i + 1]);
          if (i < 2) h = h.tanh();
        }
        org.bytedeco.pytorch.Tensor d = h.sub(in.ty.narrow(0, b, 1));
        org.bytedeco.pytorch.Tensor loss = d.mul(d).sum();
        TensorVector g = Torch.grad(new TensorVector(loss), new TensorVector(in.tw), new TensorVector(), false);
        double n2 = 0;
        for (long k = 0; k < g.size(); k++) n2 += g.get(k).mul(g.get(k)).sum().item_float();
        out[b] = (float) Math.sqrt(n2);
      }
    }
    return out;
  }

  @Benchmark
  public Object perExampleNorms(Inputs in) {
    if (in.vendor.equals("metakernels")) {
      try (Scope s = Scope.open()) {
        return mkNorms(in).toFloatArray();
      }
    }
    return torchNorms(in);
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
