package org.metakernels.nn;

import org.metakernels.tensor.Tensor;

/** Pointwise nonlinearities for {@link MLP}: {@code Activation.TANH.apply(h)} keeps h's shape. */
public enum Activation {
  /** max(x, 0). */
  RELU,
  /** tanh x. */
  TANH,
  /** GELU, tanh approximation. */
  GELU,
  /** 1 / (1 + e^−x). */
  SIGMOID,
  /** x unchanged. */
  IDENTITY;

  /**
   * This nonlinearity of x, differentiable; same shape.
   *
   * @param x any F32 or F64 tensor
   * @return the result (x itself for {@link #IDENTITY})
   */
  public Tensor apply(Tensor x) {
    return switch (this) {
      case RELU -> x.relu();
      case TANH -> x.tanh();
      case GELU -> x.gelu();
      case SIGMOID -> x.sigmoid();
      case IDENTITY -> x;
    };
  }
}
