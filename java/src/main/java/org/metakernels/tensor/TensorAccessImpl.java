package org.metakernels.tensor;

import org.metakernels.autograd.Node;
import org.metakernels.internal.Internals;

/** This package's side of {@link Internals.TensorAccess}; registered by {@link Tensor}. */
final class TensorAccessImpl implements Internals.TensorAccess {
  @Override
  public Tensor newTensor(Storage storage, long offset, long[] shape, long[] strides, DType dtype) {
    return new Tensor(storage, offset, shape, strides, dtype);
  }

  @Override
  public void checkShape(String op, long[] shape) {
    Tensor.checkShape(op, shape);
  }

  @Override
  public void setGrad(Tensor leaf, Tensor grad) {
    leaf.setGrad(grad);
  }

  @Override
  public void setGradFn(Tensor t, Node node, int index) {
    t.setGradFn(node, index);
  }

  @Override
  public void copyFrom(Tensor dst, Tensor src) {
    dst.copyFrom(src);
  }

  @Override
  public void bumpVersion(Storage s) {
    s.bumpVersion();
  }

  @Override
  public java.util.List<Storage> owned(Scope scope) {
    return scope.ownedNow();
  }
}
