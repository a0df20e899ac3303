package org.metakernels.nn;

import org.metakernels.ops.Attention;
import org.metakernels.runtime.Codes;
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
 * Tensor p = mha.attend(x, x, lengths, null, Weights.none());   // padded batch: I64 lengths [B]
 * }</pre>
 */
public final class MultiHeadAttention extends Module {
  private final long dim;
  private final int heads;
  private final int kvHeads;
  private final long headDim;
  private final boolean causal;
  private final Attention.CausalAlignment alignment;

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
    this(dim, heads, kvHeads, causal, Attention.CausalAlignment.BOTTOM_RIGHT, dtype, device, seed);
  }

  /**
   * Projections uniform in ±1/√dim, seeded, with the causal mask aligned as given (see {@link
   * Attention.CausalAlignment}: with Nq ≠ Nk or key lengths, {@code TOP_LEFT} lets query i see keys
   * j ≤ i, as PyTorch's {@code is_causal=True}; {@code BOTTOM_RIGHT}, the default, j ≤ i + L_b − Nq).
   *
   * @param dim model width D, a multiple of {@code heads}; the head width is dh = D / H
   * @param heads query heads H
   * @param kvHeads key/value heads Hkv, dividing H (Hkv &lt; H: grouped-query attention)
   * @param causal mask keys after each query
   * @param alignment where the causal mask's diagonal sits (null: bottom-right)
   * @param dtype the parameters' type
   * @param device the parameters' device
   * @param seed seed of wq (wk, wv, wo use seed + 1, + 2, + 3)
   */
  public MultiHeadAttention(long dim, int heads, int kvHeads, boolean causal, Attention.CausalAlignment alignment,
      DType dtype, Device device, long seed) {
    if (dim < 1 || heads < 1 || kvHeads < 1 || heads % kvHeads != 0 || dim % heads != 0)
      throw new MetakernelsException("MultiHeadAttention: dim " + dim + " must split into " + heads
          + " heads, and kvHeads " + kvHeads + " must divide heads");
    if (dim / heads > Codes.ATTENTION_MAX_HEAD_DIM)  // else every forward would throw
      throw new MetakernelsException("MultiHeadAttention: head width dim / heads = " + dim + " / " + heads + " = "
          + dim / heads + " above fused attention's limit of " + Codes.ATTENTION_MAX_HEAD_DIM);
    this.dim = dim;
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = dim / heads;
    this.causal = causal;
    this.alignment = alignment == null ? Attention.CausalAlignment.BOTTOM_RIGHT : alignment;
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
    return attend(xq, xkv, null, null, w);
  }

  /**
   * Queries from xq [B, Nq, D], keys and values from xkv [B, Nk, D], with a padding mask and an
   * additive score bias → [B, Nq, D]. Key j of batch entry b takes part only when j &lt;
   * {@code keyLengths[b]}: the keys past it never reach a sum, and their gradients are zero. The
   * bias is added to the scaled scores of every head ([1, H, Nq, Nk] for a relative-position or
   * ALiBi bias, [B, 1, Nq, Nk] for a mask per example) and gets a gradient when it requires one.
   * {@code mha.attend(x, x, lengths, null, Weights.none())} of x [B, N, D] and I64 lengths [B] is
   * [B, N, D]; query rows past a length are computed like the others, for the caller to ignore.
   *
   * <p>A causal layer aligns its mask to the last key of each entry by default (query i sees keys
   * j ≤ i + L_b − Nq, see {@link Attention.CausalAlignment}), the alignment of queries that
   * continue a sequence. Causal self-attention over right-padded sequences needs no key lengths
   * (query i &lt; L_b sees keys j ≤ i only, none of them padding), or takes them with a layer built
   * with {@link Attention.CausalAlignment#TOP_LEFT} (query i sees keys j ≤ min(i, L_b − 1)).
   *
   * @param xq the query tokens [B, Nq, D]
   * @param xkv the key/value tokens [B, Nk, D]
   * @param keyLengths I64 [B] on the inputs' device, each in [0, Nk], or null (every key)
   * @param bias additive scores [B|1, H|1, Nq, Nk] of the inputs' dtype and device, or null
   * @param w substituted weights ({@code wq, wk, wv, wo}), or {@link Weights#none()}
   * @return [B, Nq, D]
   */
  public Tensor attend(Tensor xq, Tensor xkv, Tensor keyLengths, Tensor bias, Weights w) {
    if (xq.rank() != 3 || xkv.rank() != 3 || xq.size(2) != dim || xkv.size(2) != dim || xq.size(0) != xkv.size(0))
      throw new MetakernelsException("MultiHeadAttention: expected [B, N, " + dim + "] inputs, got " + xq.describe()
          + " and " + xkv.describe());
    long b = xq.size(0), nq = xq.size(1), nk = xkv.size(1);
    if (keyLengths != null && (keyLengths.rank() != 1 || keyLengths.size(0) != b))
      throw new MetakernelsException("MultiHeadAttention: key lengths " + keyLengths.describe() + " must be [" + b
          + "] for inputs " + xq.describe() + " and " + xkv.describe());
    if (bias != null && (bias.rank() != 4 || (bias.size(0) != 1 && bias.size(0) != b)
        || (bias.size(1) != 1 && bias.size(1) != heads) || bias.size(2) != nq || bias.size(3) != nk))
      throw new MetakernelsException("MultiHeadAttention: bias " + bias.describe() + " must be [" + b + " or 1, " + heads
          + " or 1, " + nq + ", " + nk + "] for inputs " + xq.describe() + " and " + xkv.describe());
    Attention.Options o = Attention.Options.defaults().withCausal(causal).withAlignment(alignment);
    if (keyLengths != null) o = o.withKeyLengths(keyLengths);
    if (bias != null) o = o.withBias(bias);
    Tensor q = split(xq.matmul(p("wq", w).mT()), b, nq, heads);
    Tensor k = split(xkv.matmul(p("wk", w).mT()), b, nk, kvHeads);
    Tensor v = split(xkv.matmul(p("wv", w).mT()), b, nk, kvHeads);
    Tensor out = Attention.softmax(q, k, v, o);  // [B, H, Nq, dh]
    return out.permute(0, 2, 1, 3).reshape(b, nq, heads * headDim).matmul(p("wo", w).mT());
  }

  private Tensor split(Tensor x, long b, long n, int h) {
    return x.reshape(b, n, h, headDim).permute(0, 2, 1, 3);
  }
}
