package org.metakernels.recipes;

import org.metakernels.autograd.Autograd;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * In-context linear regression tasks as in von Oswald et al. (2022) and their released code:
 * x ~ U(−½, ½)^d, w ~ N(0, I_d), y = wᵀx; each task has N context pairs and one query.
 * Tokens are e_i = [x_i, y_i] for the context and [x_q, 0] for the query.
 *
 * @param x inputs [B, N+1, d] (row N is the query)
 * @param y targets [B, N+1] (y[:, N] is the query target)
 */
public record LinearRegressionTasks(Tensor x, Tensor y) {

  /** B fresh tasks drawn from a counter-based generator keyed by {@code seed}. */
  public static LinearRegressionTasks sample(long batch, int context, int dim, DType dtype, Device device, long seed) {
    try (var ng = Autograd.noGrad()) {
      Tensor x = Tensor.uniform(new long[] {batch, context + 1, dim}, -0.5, 0.5, dtype, device, seed * 2 + 1);
      Tensor w = Tensor.randn(new long[] {batch, dim, 1}, dtype, device, seed * 2 + 2);
      Tensor y = x.matmul(w).squeeze(2);
      return new LinearRegressionTasks(x, y);
    }
  }

  public long batch() {
    return x.size(0);
  }

  public int context() {
    return (int) x.size(1) - 1;
  }

  public int dim() {
    return (int) x.size(2);
  }

  /** Context inputs [B, N, d]. */
  public Tensor contextX() {
    return x.narrow(1, 0, context());
  }

  /** Context targets [B, N]. */
  public Tensor contextY() {
    return y.narrow(1, 0, context());
  }

  /** Query input [B, d]. */
  public Tensor queryX() {
    return x.select(1, context());
  }

  /** Query target [B]. */
  public Tensor queryY() {
    return y.select(1, context());
  }

  /** Tokens [B, N+1, d+1]: [x_i, y_i] for the context, [x_q, 0] for the query. */
  public Tensor tokens() {
    return tokens(x);
  }

  /** Tokens built from the inputs {@code xs} (e.g. a copy that requires grad) and these targets. */
  public Tensor tokens(Tensor xs) {
    int n = context();
    Tensor ySlot = Tensor.concat(java.util.List.of(contextY(),
        Tensor.zeros(new long[] {batch(), 1}, y.dtype(), y.device())), 1);
    return Tensor.concat(java.util.List.of(xs, ySlot.unsqueeze(2)), 2);
  }
}
