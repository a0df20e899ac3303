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
  protected final List<Tensor> params;
  private final List<Tensor> state = new ArrayList<>();

  protected Optimizer(List<Tensor> params) {
    this.params = List.copyOf(params);
  }

  /** One update from the current gradients; parameters without a gradient are skipped. */
  public abstract void step();

  public void zeroGrad() {
    for (Tensor p : params) p.zeroGrad();
  }

  public List<Tensor> parameters() {
    return params;
  }

  /** A zero tensor like {@code p}, owned by this optimizer. */
  protected Tensor newState(Tensor p) {
    Tensor t = Tensor.zerosLike(p);
    Scope.transfer(t.storage(), null);
    state.add(t);
    return t;
  }

  @Override
  public void close() {
    for (Tensor t : state) t.close();
    state.clear();
  }
}
