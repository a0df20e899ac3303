package org.metakernels.recipes;

import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.Tensor;

/**
 * The learners an LSA stack is compared with, written in the token form of von Oswald et al.:
 * every token carries (x_j, r_j), where r_j is the context residual y_j − w x_j and, for the
 * query, −w x_q (so the prediction is −r_q). One step of gradient descent on
 * L(w) = ½ Σ_i (w x_i − y_i)² with rate η is then
 *
 * <pre>
 *   r_j ← r_j − η Σ_i r_i x_iᵀ x_j                (all tokens j, context i)
 * </pre>
 *
 * and GD++ (their curvature-corrected variant) also transforms the inputs,
 * x_j ← x_j − γ Σ_i x_i x_iᵀ x_j, with learned (η_k, γ_k) per step.
 */
public final class GradientDescentLearner {
  private GradientDescentLearner() {}

  /**
   * Prediction for the query after {@code etas.length} steps from w = 0. {@code gammas} may be
   * null (plain GD) or hold one input-transformation rate per step (GD++). Differentiable in
   * the rates (tensors of shape []) and the data.
   *
   * @return ŷ: [B]
   */
  public static Tensor predict(LinearRegressionTasks t, Tensor[] etas, Tensor[] gammas) {
    if (gammas != null && gammas.length != etas.length)
      throw new MetakernelsException("GD++: " + etas.length + " step sizes but " + gammas.length + " input rates");
    int n = t.context();
    Tensor x = t.x();                                // [B, N+1, d]
    Tensor r = t.tokens().select(2, t.dim());        // [B, N+1]: y for context, 0 for the query
    for (int k = 0; k < etas.length; k++) {
      Tensor xc = x.narrow(1, 0, n);                 // [B, N, d]
      Tensor gram = x.matmul(xc.mT());                // [B, N+1, N]: x_j . x_i
      Tensor rc = r.narrow(1, 0, n).unsqueeze(2);     // [B, N, 1]
      Tensor dr = gram.matmul(rc).squeeze(2);         // Σ_i r_i x_iᵀ x_j
      Tensor rNext = r.sub(dr.mul(etas[k]));
      if (gammas != null) {
        Tensor dx = gram.matmul(xc);                  // Σ_i (x_j . x_i) x_i
        x = x.sub(dx.mul(gammas[k]));
      }
      r = rNext;
    }
    return r.select(1, n).neg();
  }

  /** One step of GD from w = 0: ŷ = η Σ_i y_i x_iᵀ x_q. [B] */
  public static Tensor oneStep(LinearRegressionTasks t, double eta) {
    Tensor s = t.contextX().matmul(t.queryX().unsqueeze(2)).squeeze(2);  // [B, N]: x_i . x_q
    return s.mul(t.contextY()).sum(1, false).mul(eta);
  }
}
