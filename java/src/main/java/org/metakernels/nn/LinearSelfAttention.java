package org.metakernels.nn;

import org.metakernels.ops.LinearAttention;
import org.metakernels.ops.LinearAttention.FeatureMap;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * Linear self-attention layer in the token layout of von Oswald et al. (2022): tokens
 * e: [B, T, D] of which the first {@code context} are context tokens (keys and values come
 * from them only) and the rest queries. With heads h = 1..H of width dh:
 *
 * <pre>
 *   e_j ← e_j + Σ_h P_h W_V,h Σ_{i ≤ context} e_i (W_K,h e_i)ᵀ (W_Q,h e_j)
 * </pre>
 *
 * (the residual is optional). Parameters: {@code wq, wk, wv} [H·dh, D] and {@code proj} [D, H·dh].
 * The attention runs on the fused {@link LinearAttention#product} kernel.
 */
public final class LinearSelfAttention extends Module {
  private final int heads;
  private final long headDim;
  private final long dim;
  private final boolean residual;
  private final FeatureMap featureMap;
  private final long context;

  /**
   * Projections drawn from N(0, initStd²), seeded.
   *
   * @param dim token width D
   * @param heads heads H
   * @param headDim width dh of each head, 1 to {@link #MAX_HEAD_DIM}
   * @param context number of leading context tokens that provide keys and values (≤ 0: all)
   * @param residual add the input to the output
   * @param fm the feature map φ of queries and keys
   * @param initStd standard deviation of the normal initialisation
   * @param dtype the parameters' type
   * @param device the parameters' device
   * @param seed seed of wq (wk, wv, proj use seed + 1, + 2, + 3)
   */
  public LinearSelfAttention(long dim, int heads, long headDim, long context, boolean residual, FeatureMap fm,
      double initStd, DType dtype, Device device, long seed) {
    if (dim < 1 || heads < 1 || headDim < 1)
      throw new MetakernelsException("LinearSelfAttention: dim " + dim + ", heads " + heads + ", headDim " + headDim);
    if (headDim > MAX_HEAD_DIM)  // else every forward would throw
      throw new MetakernelsException("LinearSelfAttention: headDim " + headDim + " above linear attention's limit of "
          + MAX_HEAD_DIM);
    this.dim = dim;
    this.heads = heads;
    this.headDim = headDim;
    this.residual = residual;
    this.featureMap = fm;
    this.context = context;
    long hd = heads * headDim;
    // scaled in place: randn(...).mul(initStd) left the unscaled draw to a scope, and outside any
    // scope to no one
    register("wq", Tensor.randn(new long[] {hd, dim}, dtype, device, seed).mulInPlace(initStd));
    register("wk", Tensor.randn(new long[] {hd, dim}, dtype, device, seed + 1).mulInPlace(initStd));
    register("wv", Tensor.randn(new long[] {hd, dim}, dtype, device, seed + 2).mulInPlace(initStd));
    register("proj", Tensor.randn(new long[] {dim, hd}, dtype, device, seed + 3).mulInPlace(initStd));
  }

  /** The largest head width the fused linear-attention kernels take. */
  public static final long MAX_HEAD_DIM = Codes.LINEAR_ATTENTION_MAX_HEAD_DIM;

  /** e: [B, T, D] → [B, T, D]; {@code lsa.forward(e)} of [4, 11, 11] is [4, 11, 11]. */
  @Override
  public Tensor forward(Tensor e, Weights w) {
    if (e.rank() != 3 || e.size(2) != dim)
      throw new MetakernelsException("LinearSelfAttention: expected tokens [B, T, " + dim + "], got " + e.describe());
    long b = e.size(0), t = e.size(1);
    long ctx = context <= 0 ? t : context;
    if (ctx > t)
      throw new MetakernelsException("LinearSelfAttention: context " + ctx + " > " + t + " tokens in " + e.describe());
    // Views all the way: the heads of the projections ([B, T, H, dh] seen as [B, H, T, dh]) and the
    // context window of k and v (their first ctx rows) go to the linear-attention kernel through
    // their strides, and its output, laid out as q's, merges back into [B, T, H dh] without a copy.
    // (Projecting all T tokens for k and v costs T / ctx of their products, less than copying the
    // narrowed tokens before the products and their weight gradients.)
    Tensor q = heads(e.matmul(p("wq", w).mT()), b, t);
    Tensor k = heads(e.matmul(p("wk", w).mT()), b, t);
    Tensor v = heads(e.matmul(p("wv", w).mT()), b, t);
    if (ctx < t) {
      k = k.narrow(2, 0, ctx);
      v = v.narrow(2, 0, ctx);
    }
    Tensor o = LinearAttention.apply(q, k, v, featureMap, false);          // [B, H, T, dh]
    Tensor merged = o.permute(0, 2, 1, 3).reshape(b, t, heads * headDim);   // [B, T, H dh]
    Tensor out = merged.matmul(p("proj", w).mT());
    return residual ? e.add(out) : out;
  }

  private Tensor heads(Tensor x, long b, long n) {
    return x.reshape(b, n, heads, headDim).permute(0, 2, 1, 3);
  }

  /**
   * Token width D.
   *
   * @return the size of the tokens' last dim
   */
  public long dim() {
    return dim;
  }
}
