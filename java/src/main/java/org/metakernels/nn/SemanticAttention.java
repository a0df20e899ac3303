package org.metakernels.nn;

import java.util.List;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * HAN's semantic-level attention (Wang et al. 2019) over M views of the same N nodes (one embedding
 * per meta-path): each view m scores s_m = mean_n qᵀ tanh(W z_m[n] + b), the views are weighted by
 * β = softmax(s) and the output is Σ_m β_m z_m. Parameters {@code proj.weight} [hidden, d],
 * {@code proj.bias} [hidden] and {@code query} [hidden]; substituted weights take their place.
 * Differentiable to any order.
 *
 * <pre>{@code
 * try (SemanticAttention att = new SemanticAttention(64, 32, DType.F32, Device.CPU, 3L)) {
 *   Tensor z = att.forward(Tensor.stack(List.of(zPap, zPsp), 0));   // [2, N, 64]: [N, 64]
 * }
 * }</pre>
 */
public final class SemanticAttention extends Module {
  private final long dim;

  /**
   * A layer with fresh parameters. {@code new SemanticAttention(64, 32, DType.F32, Device.CPU, 3L)}.
   *
   * @param dim d, the embedding width of every view
   * @param hidden the attention's hidden width
   * @param dtype F32 or F64
   * @param device the device
   * @param seed the initialisation seed
   */
  public SemanticAttention(long dim, long hidden, DType dtype, Device device, long seed) {
    if (dim < 1 || hidden < 1)
      throw new MetakernelsException("SemanticAttention: dim " + dim + " and hidden " + hidden + " must be at least 1");
    this.dim = dim;
    child("proj", new Linear(dim, hidden, true, dtype, device, seed));
    double bound = Math.sqrt(6.0 / (hidden + 1));
    register("query", Tensor.uniform(new long[] {hidden}, -bound, bound, dtype, device, seed + 7));
  }

  /**
   * The views combined: Σ_m β_m z_m. {@code att.forward(z, Weights.none())} of [M, N, d] is [N, d].
   *
   * @param z the views stacked, [M, N, d]
   * @param w substituted parameters, or {@link Weights#none()}
   * @return [N, d]
   * @throws MetakernelsException when z is not [M, N, d]
   */
  @Override
  public Tensor forward(Tensor z, Weights w) {
    Tensor beta = attention(z, w);
    return z.mul(beta.reshape(beta.size(0), 1, 1)).sum(0, false);
  }

  /**
   * The view weights β = softmax over views of mean_n qᵀ tanh(W z_m[n] + b).
   * {@code att.attention(z, Weights.none())} of [M, N, d] is [M].
   *
   * @param z the views stacked, [M, N, d]
   * @param w substituted parameters, or {@link Weights#none()}
   * @return [M], summing to 1
   * @throws MetakernelsException when z is not [M, N, d]
   */
  public Tensor attention(Tensor z, Weights w) {
    if (z.rank() != 3 || z.size(2) != dim || z.size(0) < 1 || z.size(1) < 1)
      throw new MetakernelsException("SemanticAttention: expected views [M, N, " + dim + "], got " + z.describe());
    Tensor h = run("proj", z, w).tanh(); // [M, N, hidden]
    Tensor q = p("query", w);
    Tensor s = h.matmul(q.reshape(q.size(0), 1)).mean(new int[] {1, 2}, false); // [M]
    return s.softmax(0);
  }

  /**
   * The views combined, from a list: {@code att.forward(List.of(z1, z2), Weights.none())}.
   *
   * @param views M tensors [N, d]
   * @param w substituted parameters, or {@link Weights#none()}
   * @return [N, d]
   */
  public Tensor forward(List<Tensor> views, Weights w) {
    return forward(Tensor.stack(views, 0), w);
  }
}
