package org.metakernels.ops;

import org.metakernels.internal.Internals;
import org.metakernels.tensor.Tensor;

/** This package's side of {@link Internals.DenseAccess}; registered by {@link Dense}. */
final class DenseAccessImpl implements Internals.DenseAccess {
  @Override
  public Tensor compare(Tensor a, Tensor b, int code, String op) {
    return Dense.compare(a, b, code, op);
  }

  @Override
  public Tensor compareScalar(Tensor a, double c, int code, String op) {
    return Dense.compareScalar(a, c, code, op);
  }

  @Override
  public Tensor inPlace(Tensor t, Tensor o, int code, String op) {
    return Dense.inPlace(t, o, code, op);
  }

  @Override
  public Tensor scalarInPlace(Tensor t, int code, double c, String op) {
    return Dense.scalarInPlace(t, code, c, op);
  }

  @Override
  public Tensor fillInPlace(Tensor t, double v) {
    return Dense.fillInPlace(t, v);
  }

  @Override
  public Tensor inPlaceCopy(Tensor t, Tensor src) {
    return Dense.inPlaceCopy(t, src);
  }
}
