package org.metakernels.nn;

import org.metakernels.ops.Attention;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * Multi-head softmax attention on the fused {@link Attention} kernels: projections
 * {@code wq} [H·dh, D], {@code wk}, {@code wv} [Hkv·dh, D] (grouped-query when Hkv &lt; H) and
 * {@code wo} [D, H·dh]. x: [B, N, D] -> [B, N, D]. Second derivatives through it stay fused.
 *
 * <pre>{@code
 * MultiHeadAttention mha = new MultiHeadAttention(64, 8, 8, true, DType.F32, Device.CPU, 1L);
 * Tensor y = mha.forward(x);                 // causal self-attention, [B, N, 64]
 * Tensor z = mha.attend(x, memory, Weights.none());   // cross-attention to memory [B, M, 64]
 * }</pre>
 */
public final class MultiHeadAttention extends Module {
  private final long dim;
  private final int heads;
  private final int kvHeads;
  private final long headDim;
  private final boolean causal;

  /**
   * Projections uniform in ±1/√dim, seeded.
   *
   * @param dim model width D, a multiple of {@code heads}; the head width is dh = D / H
   * @param heads query heads H
   * @param kvHeads key/value heads Hkv, dividing H (Hkv &lt; H: grouped-query attention)
   * @param causal mask keys after each query
   * @param dtype the parameters' type
   * @param device the parameters' device
   * @param seed seed of wq (wk, wv, wo use seed + 1, + 2, + 3)
   */
  public MultiHeadAttention(long dim, int heads, int kvHeads, boolean causal, DType dtype, Device device, long seed) {
    if (dim < 1 || heads < 1 || kvHeads < 1 || heads % kvHeads != 0 || dim % heads != 0)
      throw new MetakernelsException("MultiHeadAttention: dim " + dim + " must split into " + heads
          + " heads, and kvHeads " + kvHeads + " must divide heads");
    this.dim = dim;
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = dim / heads;
    this.causal = causal;
    double bound = 1.0 / Math.sqrt(dim);
    register("wq", Tensor.uniform(new long[] {heads * headDim, dim}, -bound, bound, dtype, device, seed));
    register("wk", Tensor.uniform(new long[] {kvHeads * headDim, dim}, -bound, bound, dtype, device, seed + 1));
    register("wv", Tensor.uniform(new long[] {kvHeads * headDim, dim}, -bound, bound, dtype, device, seed + 2));
    register("wo", Tensor.uniform(new long[] {dim, heads * headDim}, -bound, bound, dtype, device, seed + 3));
  }

  /** Self-attention: x [B, N, D] -> [B, N, D]. */
  @Override
  public Tensor forward(Tensor x, Weights w) {
    return attend(x, x, w);
  }

  /**
   * Queries from xq [B, Nq, D], keys and values from xkv [B, Nk, D] → [B, Nq, D].
   * {@code mha.attend(x, memory, Weights.none())} of [B, N, D] and [B, M, D] is [B, N, D].
   *
   * @param xq the query tokens [B, Nq, D]
   * @param xkv the key/value tokens [B, Nk, D]
   * @param w substituted weights ({@code wq, wk, wv, wo}), or {@link Weights#none()}
   * @return [B, Nq, D]
   */
  public Tensor attend(Tensor xq, Tensor xkv, Weights w) {
    if (xq.rank() != 3 || xkv.rank() != 3 || xq.size(2) != dim || xkv.size(2) != dim || xq.size(0) != xkv.size(0))
      throw new MetakernelsException("MultiHeadAttention: expected [B, N, " + dim + "] inputs, got " + xq.describe()
          + " and " + xkv.describe());
    long b = xq.size(0), nq = xq.size(1), nk = xkv.size(1);
    Tensor q = split(xq.matmul(p("wq", w).mT()), b, nq, heads);
    Tensor k = split(xkv.matmul(p("wk", w).mT()), b, nk, kvHeads);
    Tensor v = split(xkv.matmul(p("wv", w).mT()), b, nk, kvHeads);
    Tensor o = Attention.softmax(q, k, v, Attention.Options.defaults().withCausal(causal));  // [B, H, Nq, dh]
    return o.permute(0, 2, 1, 3).reshape(b, nq, heads * headDim).matmul(p("wo", w).mT());
  }

  private Tensor split(Tensor x, long b, long n, int h) {
    return x.reshape(b, n, h, headDim).permute(0, 2, 1, 3);
  }
}
