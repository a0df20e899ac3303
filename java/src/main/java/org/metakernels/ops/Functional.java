package org.metakernels.ops;

import org.metakernels.nn.Activation;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Tensor;

/**
 * Neural-network functions and losses built from differentiable ops (so they have second
 * derivatives), with parameters passed in: what {@link org.metakernels.nn} modules call, and
 * what inner loops call with substituted weights.
 *
 * <pre>{@code
 * Tensor h = Functional.linear(x, w, b);                    // x [B, in], w [out, in], b [out]: [B, out]
 * Tensor loss = Functional.crossEntropy(h, targets);        // targets I64 [B]: []
 * }</pre>
 */
public final class Functional {
  private Functional() {}

  /**
   * Layer norm over the last dim: (x − mean) / sqrt(var + eps) · weight + bias, with the
   * population variance. {@code Functional.layerNorm(x, g, b, 1e-5)} of [B, N, D] is [B, N, D].
   *
   * @param x F32 or F64, [..., d] with d &gt; 0
   * @param weight scale [d] of x's dtype, or null
   * @param bias shift [d] of x's dtype, or null
   * @param eps added to the variance
   * @return the normalised tensor, x's shape
   */
  public static Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, double eps) {
    Checks.floating("layerNorm", x);
    if (x.rank() == 0) throw new MetakernelsException("layerNorm: needs at least one dim, got " + x.describe());
    long d = x.size(-1);
    if (d == 0) throw new MetakernelsException("layerNorm: the last dim of " + x.describe() + " is empty");
    if (weight != null) Checks.compatible("layerNorm", x, weight);
    if (bias != null) Checks.compatible("layerNorm", x, bias);
    if (weight != null && (weight.rank() != 1 || weight.size(0) != d))
      throw new MetakernelsException("layerNorm: weight " + weight.describe() + " does not match " + x.describe());
    if (bias != null && (bias.rank() != 1 || bias.size(0) != d))
      throw new MetakernelsException("layerNorm: bias " + bias.describe() + " does not match " + x.describe());
    Tensor mu = x.mean(-1, true);
    Tensor xc = x.sub(mu);
    Tensor var = xc.square().mean(-1, true);
    Tensor y = xc.mul(var.add(eps).rsqrt());
    if (weight != null) y = y.mul(weight);
    if (bias != null) y = y.add(bias);
    return y;
  }

  /**
   * Inverted dropout, seeded: each element of x is kept where the uniform sample of
   * {@code Tensor.rand(x.shape(), x.dtype(), x.device(), seed)} at its index exceeds p, and scaled
   * by 1/(1 − p), else zeroed: {@code Functional.dropout(h, 0.5, step)} of [B, F] is [B, F]. The
   * mask is a function of (seed, index) alone (the counter-based generator), so a seed gives the
   * same mask on both devices and the function of x is deterministic: its derivatives of every
   * order are those of x ⊙ mask / (1 − p) (ops with rules), and a GradCheck sees one function.
   * p = 0 returns x itself; p = 1 zeros (as torch's dropout).
   *
   * @param x input, F32 or F64
   * @param p the probability of zeroing an element, in [0, 1]
   * @param seed the mask's seed (draw a new one per step for a new mask)
   * @return x's shape, dtype and device
   * @throws MetakernelsException for p outside [0, 1] or NaN, naming x's shape
   */
  public static Tensor dropout(Tensor x, double p, long seed) {
    if (!(p >= 0 && p <= 1))
      throw new MetakernelsException("dropout: p = " + p + " is not in [0, 1], for x " + x.describe());
    Checks.floating("dropout", x);
    if (p == 0) return x;
    if (p == 1) return x.mul(0.0);
    Tensor keep = Tensor.rand(x.shape(), x.dtype(), x.device(), seed).gt(p);  // the tape holds it for the rule
    return x.mul(keep).mul(1.0 / (1 - p));
  }

  /**
   * Mean squared error mean((pred − target)²) over all elements:
   * {@code Functional.mse(pred, y)} of [B, 1] and [B, 1] is []. For F32 and F64 it is one native
   * call and one tape node (the sum in double, deterministic); its backward, gp = 2(p − t)/n · g and
   * gt = −gp, is again one call and, when recorded, one node whose rule is written in
   * differentiable ops (every order works).
   *
   * @param pred predictions, F32 or F64, not empty
   * @param target targets of the same shape, dtype and device
   * @return the loss, shape []
   */
  public static Tensor mse(Tensor pred, Tensor target) {
    Checks.compatible("mse", pred, target);
    if (!java.util.Arrays.equals(pred.shape(), target.shape()))
      throw new MetakernelsException("mse: " + pred.describe() + " vs " + target.describe());
    if (pred.numel() == 0)
      throw new MetakernelsException("mse: " + pred.describe() + " is empty (the mean of no elements)");
    if (pred.dtype() != DType.F32 && pred.dtype() != DType.F64) return pred.sub(target).square().mean();
    return Mse.forward(pred, target);
  }

  /**
   * Cross-entropy of logits against class indices, averaged over N:
   * −mean_n log softmax(logits_n)[target_n]. {@code Functional.crossEntropy(logits, t)} of
   * [N, C] and I64 [N] is [].
   *
   * @param logits F32 or F64 [N, C], N &gt; 0
   * @param targets I64 [N], each in [0, C)
   * @return the loss, shape []
   */
  public static Tensor crossEntropy(Tensor logits, Tensor targets) {
    String op = "crossEntropy";
    Checks.floating(op, logits);
    Checks.indices(op, targets);
    if (logits.rank() != 2 || targets.rank() != 1 || targets.size(0) != logits.size(0))
      throw new MetakernelsException(op + ": expected logits [N, C] and targets [N], got " + Checks.shapes(logits, targets));
    if (logits.size(0) == 0)
      throw new MetakernelsException(op + ": an empty batch (the mean of no losses): " + Checks.shapes(logits, targets));
    Tensor logp = logits.logSoftmax(1);
    Tensor picked;
    try {
      picked = logp.gather(1, targets.unsqueeze(1));
    } catch (MetakernelsException e) {  // the native range check of the targets, told in the caller's terms
      throw new MetakernelsException(op + ": targets " + targets.describe() + " for logits " + logits.describe() + ": "
          + e.getMessage(), e.status());
    }
    return picked.mean().neg();
  }

  /**
   * Linear map x Wᵀ + b: {@code Functional.linear(x, w, b)} of [B, N, in], [out, in] and [out]
   * is [B, N, out]. For F32 and F64 this is the fused {@link #linear(Tensor, Tensor, Tensor,
   * Activation)} with {@link Activation#IDENTITY}: one native call and one tape node.
   *
   * @param x [..., in], F32 or F64
   * @param weight [out, in] of x's dtype
   * @param bias [out] of x's dtype, or null
   * @return [..., out]
   */
  public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
    return linear(x, weight, bias, Activation.IDENTITY);
  }

  /**
   * A linear layer and its activation fused, act(x Wᵀ + b), for {@code act} of
   * {@link Activation#IDENTITY}, {@link Activation#RELU}, {@link Activation#TANH} and
   * {@link Activation#SIGMOID} on F32/F64: one native call (the GEMM through BLAS or cuBLAS and
   * one epilogue pass for the bias and the activation) and one tape node, whose backward is again
   * one native call (gz = gy ⊙ act'(z) read from the output, then gx = gz W, gW = gzᵀ x summed
   * over all leading dims, gb = Σ gz) and, when recorded (createGraph), one node whose own rule is
   * written in differentiable ops, so every derivative order works. Other activations (GELU) run
   * the composed form {@code act.apply(x.matmul(wᵀ).add(b))}. F32 and F64 (BF16/F16 are storage
   * types here: cast to F32 first).
   * {@code Functional.linear(x, w, b, Activation.TANH)} of [B, N, in], [out, in] and [out] is [B, N, out].
   *
   * @param x [..., in] (at least one dim)
   * @param weight [out, in] of x's dtype and device
   * @param bias [out] of x's dtype and device, or null
   * @param act the activation applied after the bias
   * @return act(x Wᵀ + b), [..., out]
   */
  public static Tensor linear(Tensor x, Tensor weight, Tensor bias, Activation act) {
    String op = "linear";
    if (act == null)
      throw new MetakernelsException(op + ": the activation is null (x " + x.describe() + ", weight "
          + weight.describe() + ")");
    Checks.compatible(op, x, weight);
    if (bias != null) Checks.compatible(op, x, bias);
    if (x.rank() == 0 || weight.rank() != 2 || x.size(-1) != weight.size(1))
      throw new MetakernelsException(op + ": " + x.describe() + " does not fit weight " + weight.describe());
    if (bias != null && (bias.rank() != 1 || bias.size(0) != weight.size(0)))  // not broadcast: it would grow the result
      throw new MetakernelsException(op + ": bias " + bias.describe() + " must be [" + weight.size(0) + "] for weight "
          + weight.describe());
    int code = fusedCode(act);
    if (code < 0 || (x.dtype() != DType.F32 && x.dtype() != DType.F64)) {
      Tensor y = x.matmul(weight.mT());
      return act.apply(bias == null ? y : y.add(bias));
    }
    return LinearAct.forward(x, weight, bias, code);
  }

  /** The {@code mk_linear_act} code of a fused activation, or −1 where there is none. */
  static int fusedCode(Activation act) {
    if (act == Activation.IDENTITY) return Codes.LINEAR_ACT_IDENTITY;
    if (act == Activation.RELU) return Codes.LINEAR_ACT_RELU;
    if (act == Activation.TANH) return Codes.LINEAR_ACT_TANH;
    if (act == Activation.SIGMOID) return Codes.LINEAR_ACT_SIGMOID;
    return -1;
  }

  /**
   * Whether {@link #linear(Tensor, Tensor, Tensor, Activation)} runs {@code act} fused (one native
   * call and one node) for F32/F64 operands, rather than composed: {@code Functional.fuses(Activation.TANH)}
   * is true.
   *
   * @param act an activation
   * @return true for IDENTITY, RELU, TANH and SIGMOID
   */
  public static boolean fuses(Activation act) {
    return act != null && fusedCode(act) >= 0;
  }

  /** Fresh zeros like {@code t} in the given dtype. */
  static Tensor zeros(Tensor t, DType d) {
    return Tensor.zeros(t.shape(), d, t.device());
  }

  /**
   * InfoNCE with several positives per anchor and weighted negatives, one direction (anchors are
   * the rows of a, candidates the rows of b): with s_ij = cos(a_i, b_j) / τ,
   * ℓ_i = −log Σ_{j∈P(i)} e^{s_ij} + log(Σ_{j∈P(i)} e^{s_ij} + Σ_{j∉P(i)} w_ij e^{s_ij}), the mean over
   * i. P(i) is given by the 0/1 mask {@code positives} (null: the diagonal, j = i); w_ij = e^{logW_ij}
   * by {@code negativeLogWeights} (null: all 1, plain InfoNCE; its entries on positives are not
   * read; −∞ drops a negative). The cosines are one matmul of the unit rows; the rest is
   * {@link #infoNceLogits}: for F32 and F64 one fused kernel per pass (no [B, B] tensors beyond the
   * logits and their gradient), whose backward is itself differentiable, so the loss differentiates
   * to any order in a, b and the log-weights (a caller that learns the weights, as AdaMEOW does,
   * gets their gradient; one that does not passes them detached). The positives' mask is a constant.
   * {@code Functional.infoNce(z1, z2, 0.5, null, null)} of [B, d] and [B, d] is [].
   *
   * @param a anchors [B, d], F32 or F64
   * @param b candidates [B, d] of a's dtype and device
   * @param tau the temperature, &gt; 0
   * @param positives [B, B] of a's dtype, 1 where j is a positive of i and 0 elsewhere, each row with
   *     at least one 1 (a row without one gives an infinite loss); or null for the diagonal
   * @param negativeLogWeights [B, B] of a's dtype, log w_ij, or null
   * @return the loss, shape []
   */
  public static Tensor infoNce(Tensor a, Tensor b, double tau, Tensor positives, Tensor negativeLogWeights) {
    String op = "infoNce";
    Checks.compatible(op, a, b);
    if (a.rank() != 2 || b.rank() != 2 || a.size(0) != b.size(0) || a.size(1) != b.size(1) || a.size(0) == 0)
      throw new MetakernelsException(op + ": expected non-empty a [B, d] and b [B, d], got " + Checks.shapes(a, b));
    if (!(tau > 0)) throw new MetakernelsException(op + ": tau must be positive, got " + tau);
    long n = a.size(0);
    checkMasks(op, a, n, n, positives, negativeLogWeights, a, b);
    if (!InfoNce.fused(a.dtype())) return composedInfoNce(a, b, tau, positives, negativeLogWeights);
    // 1/τ on the [B, d] side, not on the [B, B] product
    Tensor s = unitRows(a).mul(1.0 / tau).matmul(unitRows(b).mT());
    return InfoNce.rows(s, positives, negativeLogWeights).mean();
  }

  /**
   * The InfoNCE loss of each row of given logits (reduction none): with u_ij = s_ij on the positives
   * and s_ij + logW_ij elsewhere, ℓ_i = log Σ_j e^{u_ij} − log Σ_{j∈P(i)} e^{s_ij}. For losses whose
   * logits are not cosines over a fixed temperature: a learned scale (CLIP), a memory bank of more
   * candidates than anchors (N &gt; B), a dot product. F32 and F64 run one fused kernel per pass
   * (each row's sums in a fixed order: deterministic, and the same on the CPU and CUDA to rounding);
   * the backward is itself differentiable (any order) and has a forward-mode rule.
   * {@code Functional.infoNceLogits(a.matmul(b.mT()).mul(scale), null, null).mean()} of [B, d] and
   * [B, d] is the CLIP loss in one direction.
   *
   * @param logits s [B, N], floating
   * @param positives [B, N] of the logits' dtype, non-zero where j is a positive of i, each row with at
   *     least one (a row without one gives +∞); or null for the diagonal j = i (then B ≤ N). A constant.
   * @param negativeLogWeights [B, N] of the logits' dtype, log w_ij (entries on positives not read), or
   *     null
   * @return the per-row losses [B]
   */
  public static Tensor infoNceLogits(Tensor logits, Tensor positives, Tensor negativeLogWeights) {
    String op = "infoNceLogits";
    logits.address(op);
    Checks.floating(op, logits);
    if (logits.rank() != 2 || logits.size(0) == 0 || logits.size(1) == 0)
      throw new MetakernelsException(op + ": expected non-empty logits [B, N], got " + Checks.shapes(logits));
    long b = logits.size(0), n = logits.size(1);
    if (positives == null && b > n)
      throw new MetakernelsException(op + ": the diagonal as positives needs B <= N, got " + Checks.shapes(logits));
    checkMasks(op, logits, b, n, positives, negativeLogWeights, logits);
    if (!InfoNce.fused(logits.dtype())) return composedRows(logits, positives, negativeLogWeights);
    return InfoNce.rows(logits, positives, negativeLogWeights);
  }

  private static void checkMasks(String op, Tensor like, long rows, long cols, Tensor positives, Tensor logW,
      Tensor... named) {
    for (Tensor m : new Tensor[] {positives, logW}) {
      if (m == null) continue;
      Checks.compatible(op, like, m);
      if (m.rank() != 2 || m.size(0) != rows || m.size(1) != cols) {
        Tensor[] all = java.util.Arrays.copyOf(named, named.length + 1);
        all[named.length] = m;
        throw new MetakernelsException(
            op + ": the positives and weights must be [" + rows + ", " + cols + "], got " + Checks.shapes(all));
      }
    }
  }

  /** The composed form (the dtypes without the fused kernel), as it was before 2026-12-06. */
  private static Tensor composedInfoNce(Tensor a, Tensor b, double tau, Tensor positives, Tensor negativeLogWeights) {
    Tensor s = unitRows(a).matmul(unitRows(b).mT()).mul(1.0 / tau);
    return composedRows(s, positives, negativeLogWeights).mean();
  }

  private static Tensor composedRows(Tensor s, Tensor positives, Tensor negativeLogWeights) {
    Tensor pos = positives != null ? positives.detach() : InfoNce.diagonal(s.size(0), s.size(1), s);
    Tensor logPos = pos.sub(1.0).mul(1e4); // 0 on positives, −1e4 elsewhere
    Tensor logW = negativeLogWeights == null ? null : negativeLogWeights.mul(pos.rsub(1.0));
    Tensor all = logW == null ? s : s.add(logW);
    return all.logsumexp(1, false).sub(s.add(logPos).logsumexp(1, false));
  }

  private static Tensor unitRows(Tensor x) {
    return x.mul(x.square().sum(1, true).add(1e-12).rsqrt());
  }
}
