package org.metakernels.nn;

import org.metakernels.tensor.Tensor;

/** Pointwise nonlinearities for {@link MLP}. */
public enum Activation {
  RELU, TANH, GELU, SIGMOID, IDENTITY;

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
