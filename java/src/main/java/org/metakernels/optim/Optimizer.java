package org.metakernels.optim;

import java.util.ArrayList;
import java.util.List;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Updates leaf parameters in place from their accumulated {@link Tensor#grad()}. State
 * tensors (momenta) belong to the optimizer and are freed by {@link #close()}.
 */
public abstract class Optimizer implements AutoCloseable {
  /** The parameters, in the order given (an unmodifiable copy of the list). */
  protected final List<Tensor> params;
  private final List<Tensor> state = new ArrayList<>();

  /**
   * An optimizer of {@code params}.
   *
   * @param params the leaves to update in place
   */
  protected Optimizer(List<Tensor> params) {
    this.params = List.copyOf(params);
  }

  /** One update from the current gradients; parameters without a gradient are skipped. */
  public abstract void step();

  /** Clears and frees the accumulated gradient of every parameter. */
  public void zeroGrad() {
    for (Tensor p : params) p.zeroGrad();
  }

  /**
   * The parameters, in the order given.
   *
   * @return an unmodifiable list
   */
  public List<Tensor> parameters() {
    return params;
  }

  /**
   * A zero tensor like {@code p}, owned by this optimizer (freed by {@link #close()}).
   *
   * @param p the parameter the state belongs to
   * @return the state tensor, p's shape
   */
  protected Tensor newState(Tensor p) {
    Tensor t = Tensor.zerosLike(p);
    Scope.transfer(t.storage(), null);
    state.add(t);
    return t;
  }

  /** Frees the optimizer's state tensors (the parameters stay). */
  @Override
  public void close() {
    for (Tensor t : state) t.close();
    state.clear();
  }
}
