package org.metakernels.bench;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.TensorVector;
import org.metakernels.autograd.Autograd;
import org.metakernels.ops.LinearAttention;
import org.metakernels.ops.LinearAttention.FeatureMap;
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
 * Linear attention with the identity feature map and no normalisation, F32 on the CPU:
 * out_j = Σ_{i ∈ M(j)} (q_j·k_i) v_i, q, k, v: [B, H, N, D].
 *
 * <p>Causal (i ≤ j), forward and forward+backward (gradients of q, k, v for a random dOut):
 * <ul>
 *   <li>{@code metakernels}: {@link LinearAttention#apply} (fused chunked prefix kernel);
 *   <li>{@code libtorch-chunked}: the peer of the same algorithm (the fair comparison, as
 *       {@code la_chunked} in gpu/peers.py): N cut into chunks of C = 64; within a chunk the masked
 *       quadratic form ((q kᵀ ⊙ tril) v, C×C), across chunks the exclusive prefix sum of the chunk
 *       states kᵀ v ([B, H, N/C, D, Dv], cumsum over chunks), out = intra + q · prefix;
 *   <li>{@code libtorch-masked}: (q kᵀ ⊙ tril) v, the N×N form, with the mask applied in place
 *       ({@code tril_}, the same as multiplying by a lower-triangular ones matrix);
 *   <li>{@code libtorch-cumsum}: S_j = cumsum_i (k_i ⊗ v_i) over N, then out_j = q_jᵀ S_j; it
 *       materialises [B, H, N, D, D], 2.1 GB at N = 4096, so it runs only when it fits
 *       (see {@link Checks#requireMemory}); the 1024 shape is there so it always has a comparison.
 * </ul>
 * Non-causal: metakernels against {@code libtorch} q (kᵀ v).
 *
 * <p>Every set-up first checks that the timed implementation agrees with another one.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class LinearAttentionBench {

  /** The libtorch copies of the inputs, and leaves that require grad for the backward variants. */
  static final class TorchInputs {
    final org.bytedeco.pytorch.Tensor q, k, v, dOut, ql, kl, vl;

    TorchInputs(org.bytedeco.pytorch.Tensor q, org.bytedeco.pytorch.Tensor k, org.bytedeco.pytorch.Tensor v,
        org.bytedeco.pytorch.Tensor dOut) {
      this.q = q;
      this.k = k;
      this.v = v;
      this.dOut = dOut;
      ql = Torch.leaf(q);
      kl = Torch.leaf(k);
      vl = Torch.leaf(v);
    }

    /** Head 0 only (heads are independent, so its results are head 0 of the full results). */
    TorchInputs head0() {
      return new TorchInputs(Torch.head0(q), Torch.head0(k), Torch.head0(v), Torch.head0(dOut));
    }

    void close() {
      for (org.bytedeco.pytorch.Tensor t : List.of(q, k, v, dOut, ql, kl, vl)) t.close();
    }
  }

  /** Inputs of one shape on both sides, the same values. */
  static class Inputs {
    final long[] shape;
    final Scope scope;
    final Tensor q, k, v, dOut, ql, kl, vl;
    final TorchInputs t;

    Inputs(long[] shape) {
      this.shape = shape;
      scope = Scope.open();
      q = Tensor.randn(shape, DType.F32, Device.CPU, 11L);
      k = Tensor.randn(shape, DType.F32, Device.CPU, 12L);
      v = Tensor.randn(shape, DType.F32, Device.CPU, 13L);
      dOut = Tensor.randn(shape, DType.F32, Device.CPU, 14L);
      ql = q.detach().requiresGrad(true);
      kl = k.detach().requiresGrad(true);
      vl = v.detach().requiresGrad(true);
      t = new TorchInputs(Torch.copyOf(q), Torch.copyOf(k), Torch.copyOf(v), Torch.copyOf(dOut));
    }

    void close() {
      t.close();
      scope.close();
    }
  }

  static long bhn(long[] s) {
    return s[0] * s[1] * s[2];
  }

  /** Rough peak bytes of a libtorch form (F32), generous on purpose. */
  static long peakBytes(String vendor, long[] s, boolean backward) {
    long b = s[0], h = s[1], n = s[2], d = s[3];
    return switch (vendor) {
      case "libtorch-masked" -> (long) ((backward ? 3.5 : 1.5) * b * h * n * n * 4);
      case "libtorch-cumsum" -> (long) ((backward ? 5.5 : 2.5) * b * h * n * d * d * 4);
      case "libtorch-chunked" -> (long) ((backward ? 6.0 : 3.0) * (b * h * n * CHUNK + b * h * (n / CHUNK) * d * d) * 4);
      default -> 8 * bhn(s) * d * 4;
    };
  }

  // ------------------------------------------------------------------------------------------
  // the forms

  static Tensor mk(Tensor q, Tensor k, Tensor v, boolean causal) {
    return LinearAttention.apply(q, k, v, FeatureMap.IDENTITY, causal);
  }

  static org.bytedeco.pytorch.Tensor masked(org.bytedeco.pytorch.Tensor q, org.bytedeco.pytorch.Tensor k,
      org.bytedeco.pytorch.Tensor v) {
    org.bytedeco.pytorch.Tensor s = q.matmul(k.mT());  // [B, H, N, N]
    s.tril_();                                         // ⊙ tril, in place: keys i ≤ j (returns s itself)
    org.bytedeco.pytorch.Tensor out = s.matmul(v);
    Torch.free(s);
    return out;
  }

  static org.bytedeco.pytorch.Tensor cumsum(org.bytedeco.pytorch.Tensor q, org.bytedeco.pytorch.Tensor k,
      org.bytedeco.pytorch.Tensor v) {
    org.bytedeco.pytorch.Tensor kv = k.unsqueeze(-1).mul(v.unsqueeze(-2));  // [B, H, N, D, Dv]
    org.bytedeco.pytorch.Tensor state = kv.cumsum(2);                       // S_j = Σ_{i≤j} k_i v_iᵀ
    Torch.free(kv);
    org.bytedeco.pytorch.Tensor out = q.unsqueeze(-2).matmul(state).squeeze(-2);  // q_jᵀ S_j
    Torch.free(state);
    return out;
  }

  /** The chunk of the libtorch chunked form (gpu/peers.py's la_chunked uses the same). */
  static final long CHUNK = 64;

  static org.bytedeco.pytorch.Tensor chunked(org.bytedeco.pytorch.Tensor q, org.bytedeco.pytorch.Tensor k,
      org.bytedeco.pytorch.Tensor v) {
    long b = q.size(0), h = q.size(1), n = q.size(2), d = q.size(3), dv = v.size(3), c = n / CHUNK;
    if (n % CHUNK != 0) throw new IllegalArgumentException("libtorch-chunked needs N % " + CHUNK + " == 0, N = " + n);
    org.bytedeco.pytorch.Tensor qc = q.reshape(b, h, c, CHUNK, d), kc = k.reshape(b, h, c, CHUNK, d),
        vc = v.reshape(b, h, c, CHUNK, dv);
    org.bytedeco.pytorch.Tensor states = kc.mT().matmul(vc);  // [B, H, C, D, Dv]: each chunk's kᵀ v
    org.bytedeco.pytorch.Tensor incl = states.cumsum(2);
    org.bytedeco.pytorch.Tensor prefix = incl.sub(states);  // the chunks before this one
    Torch.free(incl);
    Torch.free(states);
    org.bytedeco.pytorch.Tensor scores = qc.matmul(kc.mT());  // [B, H, C, C, C]
    scores.tril_();                                          // keys i <= j inside the chunk
    org.bytedeco.pytorch.Tensor intra = scores.matmul(vc);
    Torch.free(scores);
    org.bytedeco.pytorch.Tensor inter = qc.matmul(prefix);
    Torch.free(prefix);
    org.bytedeco.pytorch.Tensor out = intra.add(inter).reshape(b, h, n, dv);
    Torch.free(intra);
    Torch.free(inter);
    return out;
  }

  static org.bytedeco.pytorch.Tensor nonCausal(org.bytedeco.pytorch.Tensor q, org.bytedeco.pytorch.Tensor k,
      org.bytedeco.pytorch.Tensor v) {
    return q.matmul(k.mT().matmul(v));  // q (kᵀ v)
  }

  static org.bytedeco.pytorch.Tensor torchForm(String vendor, org.bytedeco.pytorch.Tensor q,
      org.bytedeco.pytorch.Tensor k, org.bytedeco.pytorch.Tensor v, boolean causal) {
    if (!causal) return nonCausal(q, k, v);
    return switch (vendor) {
      case "libtorch-masked" -> masked(q, k, v);
      case "libtorch-cumsum" -> cumsum(q, k, v);
      case "libtorch-chunked" -> chunked(q, k, v);
      default -> throw new IllegalArgumentException("no causal libtorch form '" + vendor + "'");
    };
  }

  // ------------------------------------------------------------------------------------------
  // one timed unit of work, returned for the check (forward: [out]; backward: [dq, dk, dv])

  static Tensor[] runMk(Inputs in, boolean causal, boolean backward) {
    if (!backward) return new Tensor[] {mk(in.q, in.k, in.v, causal)};
    Tensor out = mk(in.ql, in.kl, in.vl, causal);
    return Autograd.grad(List.of(out), List.of(in.ql, in.kl, in.vl), List.of(in.dOut), false).toArray(new Tensor[0]);
  }

  static org.bytedeco.pytorch.Tensor[] runTorch(String vendor, TorchInputs in, boolean causal, boolean backward) {
    if (!backward) return new org.bytedeco.pytorch.Tensor[] {torchForm(vendor, in.q, in.k, in.v, causal)};
    org.bytedeco.pytorch.Tensor out = torchForm(vendor, in.ql, in.kl, in.vl, causal);
    TensorVector g = Torch.grad(new TensorVector(out), new TensorVector(in.ql, in.kl, in.vl),
        new TensorVector(in.dOut), false);
    Torch.free(out);
    return new org.bytedeco.pytorch.Tensor[] {g.get(0), g.get(1), g.get(2)};
  }

  /**
   * Checks metakernels against libtorch on the timed quantity (the output, or dq, dk, dv). For a
   * libtorch vendor, its full result against metakernels'; for metakernels, head 0 against
   * {@code reference} run on head 0 alone (a fraction of the cost; the heads are independent).
   */
  static void check(String what, String vendor, String reference, Inputs in, boolean causal, boolean backward) {
    String[] names = backward ? new String[] {"dq", "dk", "dv"} : new String[] {"out"};
    boolean mine = vendor.equals("metakernels");
    String torchImpl = mine ? reference : vendor;
    try (Scope s = Scope.open(); PointerScope ps = new PointerScope()) {
      Tensor[] a = runMk(in, causal, backward);
      TorchInputs tin = mine ? in.t.head0() : in.t;
      org.bytedeco.pytorch.Tensor[] b = runTorch(torchImpl, tin, causal, backward);
      for (int i = 0; i < names.length; i++) {
        Tensor ai = mine ? a[i].narrow(1, 0, 1) : a[i];
        Checks.assertClose(what + " " + names[i] + " metakernels vs " + torchImpl + (mine ? " (head 0)" : ""),
            ai.toFloatArray(), Torch.toFloats(b[i]), 1e-4, 1e-3);
      }
      if (mine) tin.close();
    }
  }

  // ------------------------------------------------------------------------------------------

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class CausalState {
    // "vendor" sorts after the other parameters: JMH orders parameters by name, so each shape
    // runs metakernels and its peers back to back and their ratio sees the same machine state.
    // libtorch-chunked is the fair peer (the same algorithm); libtorch-masked the N×N form;
    // libtorch-cumsum (per-position states, [B, H, N, D, D]) runs on request: -p vendor=...
    @Param({"metakernels", "libtorch-chunked", "libtorch-masked"})
    public String vendor;

    @Param({"4x8x4096x64", "4x8x1024x64"})
    public String shape;

    Inputs in;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      Torch.configure(vendor);
      long[] s = Checks.parseShape(shape);
      boolean backward = params.getBenchmark().endsWith("Backward");
      String what = "LinearAttentionBench causal " + shape + (backward ? " fwd+bwd" : " fwd");
      if (!vendor.equals("metakernels")) Checks.requireMemory(what + " " + vendor, peakBytes(vendor, s, backward));
      else Checks.requireMemory(what + " head-0 check", peakBytes("libtorch-masked", s, backward) / s[1]);
      in = new Inputs(s);
      check(what, vendor, "libtorch-masked", in, true, backward);
      if (!vendor.equals("metakernels"))
        Torch.pickBlasThreads(what + " " + vendor, () -> runTorch(vendor, in.t, true, backward));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (in != null) in.close();
    }
  }

  @State(org.openjdk.jmh.annotations.Scope.Thread)
  public static class NonCausalState {
    @Param({"metakernels", "libtorch"})
    public String vendor;

    @Param({"16x8x1024x64"})
    public String shape;

    Inputs in;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
      Torch.configure(vendor);
      boolean backward = params.getBenchmark().endsWith("Backward");
      in = new Inputs(Checks.parseShape(shape));
      String what = "LinearAttentionBench non-causal " + shape + (backward ? " fwd+bwd" : " fwd");
      check(what, vendor, "libtorch", in, false, backward);
      if (!vendor.equals("metakernels")) Torch.pickBlasThreads(what, () -> runTorch(vendor, in.t, false, backward));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (in != null) in.close();
    }
  }

  static void time(String vendor, Inputs in, boolean causal, boolean backward, Blackhole bh) {
    if (vendor.equals("metakernels")) {
      try (Scope scope = Scope.open()) {
        bh.consume(runMk(in, causal, backward));
      }
    } else {
      try (PointerScope ps = new PointerScope()) {
        bh.consume(runTorch(vendor, in.t, causal, backward));
      }
    }
  }

  @Benchmark
  public void causalForward(CausalState s, Blackhole bh) {
    time(s.vendor, s.in, true, false, bh);
  }

  @Benchmark
  public void causalForwardBackward(CausalState s, Blackhole bh) {
    time(s.vendor, s.in, true, true, bh);
  }

  @Benchmark
  public void nonCausalForward(NonCausalState s, Blackhole bh) {
    time(s.vendor, s.in, false, false, bh);
  }

  @Benchmark
  public void nonCausalForwardBackward(NonCausalState s, Blackhole bh) {
    time(s.vendor, s.in, false, true, bh);
  }
}
