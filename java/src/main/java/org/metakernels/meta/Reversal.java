package org.metakernels.meta;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The REVERSAL memory policy of {@link Unroll}: SGD with heavy-ball momentum run forward in fixed
 * point and reversed exactly (Maclaurin, Duvenaud and Adams 2015, "Gradient-based
 * hyperparameter optimization through reversible learning", section 3).
 *
 * <p>Weights W and buffers B are integers: x·2^R with R fraction bits. A step is
 *
 * <pre>
 *   D  = round(2^R · (g(w) + wd·w))      w = W·2^-R in the weights' dtype, g the inner gradient
 *   B' = μ ⊙ B + D                      μ = n/d exactly, its lost bits pushed on the info buffer
 *   W' = W − round(lr · B')
 * </pre>
 *
 * and its exact inverse, given W' and B': W = W' + round(lr · B') (the same integer: B' is known),
 * then D from g(W) (the same bits: the inner gradient is deterministic), then B = μ⁻¹ ⊙ (B' − D)
 * with the bits popped from the info buffer. μ ⊙ x multiplies by n/d without losing a bit:
 * push x mod d (base d), x ← ⌊x/d⌋·n + pop(base n); its inverse pushes x mod n, x ← ⌊x/n⌋·d +
 * pop(base d). The buffer grows by log₂(d/n) bits per element and step (0.15 bits for μ = 0.9):
 * held in Java (one BigInteger per element), outside the native allocator, and reported in
 * {@link Unroll.Stats#infoBufferBits()}. The reverse pass checks that it recovers the initial
 * weights, a zero buffer and an empty info buffer bit for bit, and throws otherwise.
 *
 * <p>The meta-gradient at each recovered step is the float step's VJP (the fused
 * {@link InnerStep#momentum} and its backward) at the recovered weights: the rounding to fixed
 * point is passed straight through, as in the paper. Why Java and not a native kernel: the
 * integer update is elementwise, runs once per step beside an inner gradient that dominates the
 * cost, and the information buffer is a variable-length integer per element; Java's long and
 * BigInteger arithmetic is exact by definition, so there is no twin to keep bitwise equal.
 */
final class Reversal {
  private final Unroll.Run run;
  private final int bits;
  private final double scale; // 2^R
  private final int n;
  private final long[] num, den; // μ = num/den per weight
  private final double[][] lr, wd; // per element (or one value), per weight
  private final long[][] w, b; // fixed-point weights and buffers
  private final BigInteger[][] info;
  private final long[][] w0;

  Reversal(Unroll.Run run) {
    this.run = run;
    this.bits = run.memory.fractionBits();
    this.scale = Math.scalb(1.0, bits);
    this.n = run.names.size();
    num = new long[n];
    den = new long[n];
    lr = new double[n][];
    wd = new double[n][];
    w = new long[n][];
    b = new long[n][];
    info = new BigInteger[n][];
    w0 = new long[n][];
  }

  /** REVERSAL's constraints, checked before any step. */
  static void checkOptions(Unroll.Run run) {
    String op = run.op + " (REVERSAL)";
    if (!run.optimizerName.equals("momentum"))
      throw new MetakernelsException(op + ": exact reversal needs SGD with momentum (got " + run.optimizerName + ")");
    for (String name : run.names) {
      InnerStep.Momentum o = (InnerStep.Momentum) run.optimizer.apply(name);
      if (o.nesterov())
        throw new MetakernelsException(op + ": weight '" + name + "': Nesterov momentum is not reversible here");
      if (o.momentum().tensor() != null)
        throw new MetakernelsException(
            op + ": weight '" + name + "': the momentum must be a constant, not " + o.momentum().tensor().describe());
      double mu = o.momentum().value();
      if (!(mu > 0 && mu < 1))
        throw new MetakernelsException(op + ": weight '" + name + "': momentum " + mu + " outside (0, 1)");
      if (rational(mu) == null)
        throw new MetakernelsException(op + ": weight '" + name + "': momentum " + mu
            + " is not a ratio n/d of integers with d ≤ 65536 (needed to multiply exactly)");
    }
  }

  /** n/d with d ≤ 65536 equal to mu within one ulp (continued fractions), or null. */
  static long[] rational(double mu) {
    long h0 = 0, h1 = 1, k0 = 1, k1 = 0;
    double x = mu;
    for (int i = 0; i < 40; i++) {
      long a = (long) Math.floor(x);
      long h2 = a * h1 + h0, k2 = a * k1 + k0;
      if (k2 > 65536) break;
      h0 = h1;
      h1 = h2;
      k0 = k1;
      k1 = k2;
      if (Math.abs((double) h1 / k1 - mu) <= Math.ulp(mu)) return new long[] {h1, k1};
      double frac = x - a;
      if (frac == 0) break;
      x = 1 / frac;
    }
    return null;
  }

  private double[] hyperValues(String name, InnerStep.Hyper h, long numel) {
    if (h.tensor() == null) return new double[] {h.value()};
    Tensor t = h.tensor();
    if (t.numel() == 1) return new double[] {t.item()};
    Tensor full = t.detach().expand(run.initial.get(name).shape()).contiguous();
    double[] v = full.toDoubleArray();
    if (v.length != numel)
      throw new MetakernelsException(
          run.op + " (REVERSAL): " + name + " hyperparameter " + t.describe() + " does not fit the weight");
    return v;
  }

  private static double at(double[] v, int i) {
    return v.length == 1 ? v[0] : v[i];
  }

  private long fix(double x, String what) {
    double y = Math.rint(x * scale);
    if (!(Math.abs(y) < 0x1p62))
      throw new MetakernelsException(run.op + " (REVERSAL): " + what + " " + x + " does not fit in fixed point with "
          + bits + " fraction bits (|x| < 2^" + (62 - bits) + ")");
    return (long) y;
  }

  private Tensor tensorOf(long[] fixed, Tensor like) {
    double[] d = new double[fixed.length];
    for (int i = 0; i < d.length; i++) d[i] = fixed[i] / scale;
    Tensor t = Tensor.of(d, like.shape());
    if (like.dtype() != DType.F64) t = t.to(like.dtype());
    if (like.device() != Device.CPU) t = t.to(like.device());
    return t;
  }

  /** D = round(2^R (g + wd·w)) at fixed-point weights W (the bits depend on W only). */
  private long[][] quantisedDirection(Tensor[] wt, int step) {
    List<Tensor> grads;
    Tensor[] leaves = new Tensor[n];
    for (int i = 0; i < n; i++) leaves[i] = wt[i].detach().requiresGrad(true);
    try (var on = Autograd.enableGrad()) {
      Tensor loss = run.innerLoss(leaves, step);
      if (!loss.requiresGrad())
        throw new MetakernelsException(run.op + ": the inner loss at step " + step + " does not depend on the weights");
      grads = Autograd.grad(loss, List.of(leaves), false);
    }
    run.stepsRun++;
    long[][] d = new long[n][];
    for (int i = 0; i < n; i++) {
      double[] g = grads.get(i).toDoubleArray(), p = wt[i].toDoubleArray();
      d[i] = new long[g.length];
      for (int e = 0; e < g.length; e++) {
        double decay = at(wd[i], e);
        d[i][e] = fix(decay == 0 ? g[e] : g[e] + decay * p[e], "gradient of '" + run.names.get(i) + "'");
      }
    }
    return d;
  }

  /** x ← μ ⊙ x with μ = nu/de, exactly: the lost bits go onto {@code buf}. */
  private static long mulForward(long x, long nu, long de, BigInteger[] buf, int e) {
    BigInteger bi = buf[e];
    bi = bi.multiply(BigInteger.valueOf(de)).add(BigInteger.valueOf(Math.floorMod(x, de)));
    long q = Math.floorDiv(x, de);
    BigInteger[] qr = bi.divideAndRemainder(BigInteger.valueOf(nu));
    buf[e] = qr[0];
    return q * nu + qr[1].longValue();
  }

  /** The inverse of {@link #mulForward}. */
  private static long mulReverse(long x, long nu, long de, BigInteger[] buf, int e) {
    BigInteger bi = buf[e];
    bi = bi.multiply(BigInteger.valueOf(nu)).add(BigInteger.valueOf(Math.floorMod(x, nu)));
    long q = Math.floorDiv(x, nu);
    BigInteger[] qr = bi.divideAndRemainder(BigInteger.valueOf(de));
    buf[e] = qr[0];
    return q * de + qr[1].longValue();
  }

  private long delta(int i, int e, long bNew) {
    return Math.round(at(lr[i], e) * (double) bNew);
  }

  Unroll.State run(double[] loss) {
    run.markFirstStep();
    Tensor[] like = new Tensor[n];
    for (int i = 0; i < n; i++) {
      String name = run.names.get(i);
      Tensor t = run.initial.get(name);
      like[i] = t;
      InnerStep.Momentum o = (InnerStep.Momentum) run.optimizer.apply(name);
      long[] r = rational(o.momentum().value());
      num[i] = r[0];
      den[i] = r[1];
      lr[i] = hyperValues(name, o.lr(), t.numel());
      wd[i] = hyperValues(name, o.weightDecay(), t.numel());
      double[] v = t.toDoubleArray();
      w[i] = new long[v.length];
      for (int e = 0; e < v.length; e++) w[i][e] = fix(v[e], "initial weight '" + name + "'");
      w0[i] = w[i].clone();
      b[i] = new long[v.length];
      info[i] = new BigInteger[v.length];
      java.util.Arrays.fill(info[i], BigInteger.ZERO);
    }
    // forward: K steps, nothing kept but the integers
    for (int step = 0; step < run.k; step++) {
      try (Scope tmp = Scope.open()) {
        Tensor[] wt = new Tensor[n];
        for (int i = 0; i < n; i++) wt[i] = tensorOf(w[i], like[i]);
        long[][] d = quantisedDirection(wt, step);
        for (int i = 0; i < n; i++)
          for (int e = 0; e < w[i].length; e++) {
            try {
              long bNew = Math.addExact(mulForward(b[i][e], num[i], den[i], info[i], e), d[i][e]);
              b[i][e] = bNew;
              w[i][e] = Math.subtractExact(w[i][e], delta(i, e, bNew));
            } catch (ArithmeticException ex) {  // the buffer grows to about g / (1 - mu)
              throw new MetakernelsException(run.op + " (REVERSAL): weight '" + run.names.get(i) + "' element " + e
                  + ": its momentum buffer or value left the fixed-point range (" + bits + " fraction bits, |x| < 2^"
                  + (62 - bits) + ") at step " + step + "; lower the gradients' scale or use another memory policy");
            }
          }
      }
    }
    long total = 0;
    for (BigInteger[] a : info)
      for (BigInteger x : a) total += x.bitLength();
    run.infoBits = total;
    // the final state, the outer loss and its adjoint
    Unroll.State fin = new Unroll.State(n, true, false);
    try (Scope tmp = Scope.open()) {  // own() keeps copies: the originals go with tmp
      for (int i = 0; i < n; i++) {
        fin.w[i] = run.own(tensorOf(w[i], like[i]));
        fin.buf[i] = run.own(tensorOf(b[i], like[i]));
      }
    }
    run.storedNow++;
    run.storedMax = Math.max(run.storedMax, run.storedNow);
    List<Tensor> adj = run.outerAdjoint(fin, loss);
    // reverse: recover step k's state exactly, then its VJP
    for (int step = run.k - 1; step >= 0; step--) {
      Unroll.State s = new Unroll.State(n, true, false);
      try (Scope tmp = Scope.open()) {
        for (int i = 0; i < n; i++)
          for (int e = 0; e < w[i].length; e++) w[i][e] = Math.addExact(w[i][e], delta(i, e, b[i][e]));
        Tensor[] wt = new Tensor[n];
        for (int i = 0; i < n; i++) wt[i] = tensorOf(w[i], like[i]);
        long[][] d = quantisedDirection(wt, step);
        for (int i = 0; i < n; i++)
          for (int e = 0; e < w[i].length; e++)
            b[i][e] = mulReverse(Math.subtractExact(b[i][e], d[i][e]), num[i], den[i], info[i], e);
        for (int i = 0; i < n; i++) {
          s.w[i] = run.own(wt[i]);
          s.buf[i] = run.own(tensorOf(b[i], like[i]));
        }
      }
      run.storedNow++;
      List<Tensor> prev = run.stepVjp(s, step, adj);
      run.close(adj);
      adj = prev;
      run.free(s);
    }
    for (int i = 0; i < n; i++) {
      boolean exact = java.util.Arrays.equals(w[i], w0[i]);
      for (int e = 0; e < b[i].length && exact; e++) exact = b[i][e] == 0 && info[i][e].signum() == 0;
      if (!exact)
        throw new MetakernelsException(run.op + " (REVERSAL): the reverse pass did not recover weight '"
            + run.names.get(i) + "' bit for bit (is the inner loss deterministic?)");
    }
    List<Tensor> adjW = new ArrayList<>(adj.subList(0, n));
    run.initialIntoMeta(adjW);
    run.close(adj);
    return fin;
  }
}
