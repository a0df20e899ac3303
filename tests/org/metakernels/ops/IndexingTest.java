package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;
import org.metakernels.testing.Ref;

/** indexSelect / indexAdd and gather / scatterAdd against index loops on Java arrays. */
class IndexingTest {
  static Nd in(Random r, DType d, int... shape) {
    Nd x = Nd.uniform(r, -3, 3, shape);
    return d == DType.F32 ? x.roundToFloat() : x;
  }

  static long[] randomIndices(Random r, int n, int bound) {
    long[] idx = new long[n];
    for (int i = 0; i < n; i++) idx[i] = r.nextInt(bound);
    return idx;
  }

  static Nd indexSelectRef(Nd x, int dim, long[] idx) {
    int[] out = x.shape.clone();
    out[dim] = idx.length;
    double[] d = new double[Nd.numel(out)];
    for (int i = 0; i < d.length; i++) {
      int[] o = Nd.unravel(i, out);
      o[dim] = (int) idx[o[dim]];
      d[i] = x.at(o);
    }
    return new Nd(d, out);
  }

  static Nd indexAddRef(Nd base, int dim, long[] idx, Nd src) {
    Nd y = base.copy();
    int[] st = Nd.strides(base.shape);
    for (int i = 0; i < src.numel(); i++) {
      int[] o = Nd.unravel(i, src.shape);
      o[dim] = (int) idx[o[dim]];
      int off = 0;
      for (int k = 0; k < o.length; k++) off += o[k] * st[k];
      y.data[off] += src.data[i];
    }
    return y;
  }

  static Nd gatherRef(Nd x, int dim, long[] idx, int[] idxShape) {
    double[] d = new double[Nd.numel(idxShape)];
    for (int i = 0; i < d.length; i++) {
      int[] o = Nd.unravel(i, idxShape);
      o[dim] = (int) idx[i];
      d[i] = x.at(o);
    }
    return new Nd(d, idxShape);
  }

  static Nd scatterAddRef(Nd base, int dim, long[] idx, Nd src) {
    Nd y = base.copy();
    int[] st = Nd.strides(base.shape);
    for (int i = 0; i < src.numel(); i++) {
      int[] o = Nd.unravel(i, src.shape);
      o[dim] = (int) idx[i];
      int off = 0;
      for (int k = 0; k < o.length; k++) off += o[k] * st[k];
      y.data[off] += src.data[i];
    }
    return y;
  }

  static final int[][] SHAPES = {{7}, {5, 1}, {4, 6, 3}, {2, 3, 17, 5}, {300, 150}};

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void indexSelectAndIndexAdd(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(41 + d.ordinal());
      for (int[] shape : SHAPES)
        for (int dim = 0; dim < shape.length; dim++) {
          Nd x = in(r, d, shape);
          int n = 1 + r.nextInt(2 * shape[dim] + 1);  // repeats indices
          long[] idx = randomIndices(r, n, shape[dim]);
          Tensor ix = Tensor.ofIndices(idx, idx.length);
          Tensor t = x.tensor(d);
          Ref.assertClose(t.indexSelect(dim, ix), indexSelectRef(x, dim, idx), 0, 0);
          Ref.assertClose(t.indexSelect(dim - shape.length, ix), indexSelectRef(x, dim, idx), 0, 0);
          int[] ss = shape.clone();
          ss[dim] = n;
          Nd src = in(r, d, ss);
          Tensor y = Indexing.indexAdd(t, dim, ix, src.tensor(d));
          Ref.assertClose(y, indexAddRef(x, dim, idx, src), Ref.atol(d), Ref.rtol(d) * 10);
          Ref.assertValues(t, x.data);  // base untouched
        }
      // a non-contiguous source and non-contiguous indices
      Nd x = in(r, d, 6, 5);
      long[] idx = {4, 0, 0, 2, 3, 1, 4, 4};
      Tensor ixs = Tensor.ofIndices(idx, 4, 2).mT().select(0, 1);  // = idx[1], idx[3], idx[5], idx[7]
      long[] picked = {idx[1], idx[3], idx[5], idx[7]};
      assertArrayEquals(picked, ixs.toLongArray());
      Ref.assertClose(x.tensor(d).mT().indexSelect(1, ixs), indexSelectRef(x.transpose(0, 1), 1, picked), 0, 0);
      // empty index list
      Ref.assertShape(x.tensor(d).indexSelect(0, Tensor.ofIndices(new long[0], 0)), 0, 5);
    }
  }

  @Test
  void indexSelectOnIndexTensors() {
    try (Scope s = Scope.open()) {
      Tensor t = Tensor.ofIndices(new long[] {10, 11, 12, 13, 14, 15}, 3, 2);
      Tensor y = t.indexSelect(0, Tensor.ofIndices(new long[] {2, 0, 2}, 3));
      assertArrayEquals(new long[] {14, 15, 10, 11, 14, 15}, y.toLongArray());
    }
  }

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F64", "F32"})
  void gatherAndScatterAdd(DType d) {
    try (Scope s = Scope.open()) {
      Random r = new Random(42 + d.ordinal());
      for (int[] shape : SHAPES)
        for (int dim = 0; dim < shape.length; dim++) {
          Nd x = in(r, d, shape);
          int[] is = shape.clone();
          is[dim] = 1 + r.nextInt(2 * shape[dim]);
          long[] idx = randomIndices(r, Nd.numel(is), shape[dim]);
          Tensor ix = Tensor.ofIndices(idx, Nd.toLong(is));
          Tensor t = x.tensor(d);
          Ref.assertClose(t.gather(dim, ix), gatherRef(x, dim, idx, is), 0, 0);
          Ref.assertClose(t.gather(dim - shape.length, ix), gatherRef(x, dim, idx, is), 0, 0);
          Nd src = in(r, d, is);
          Tensor y = Indexing.scatterAdd(t, dim, ix, src.tensor(d));
          Ref.assertClose(y, scatterAddRef(x, dim, idx, src), Ref.atol(d), Ref.rtol(d) * 10);
          Ref.assertValues(t, x.data);
        }
      // transposed input
      Nd x = in(r, d, 5, 4);
      long[] idx = randomIndices(r, 4 * 3, 5);
      Tensor ix = Tensor.ofIndices(idx, 4, 3);
      Ref.assertClose(x.tensor(d).mT().gather(1, ix), gatherRef(x.transpose(0, 1), 1, idx, new int[] {4, 3}), 0, 0);
    }
  }

  @Test
  void scatterAddIsDeterministic() {
    try (Scope s = Scope.open()) {
      Random r = new Random(43);
      Nd src = in(r, DType.F32, 4000, 16);
      long[] idx = randomIndices(r, 4000 * 16, 3);
      Tensor base = Tensor.zeros(new long[] {3, 16}, DType.F32, org.metakernels.tensor.Device.CPU);
      Tensor ix = Tensor.ofIndices(idx, 4000, 16);
      float[] first = Indexing.scatterAdd(base, 0, ix, src.tensor(DType.F32)).toFloatArray();
      for (int rep = 0; rep < 3; rep++)
        assertArrayEquals(first, Indexing.scatterAdd(base, 0, ix, src.tensor(DType.F32)).toFloatArray(), 0f);
      long[] rows = randomIndices(r, 4000, 3);
      Tensor rix = Tensor.ofIndices(rows, 4000);
      float[] a = Indexing.indexAdd(base, 0, rix, src.tensor(DType.F32)).toFloatArray();
      assertArrayEquals(a, Indexing.indexAdd(base, 0, rix, src.tensor(DType.F32)).toFloatArray(), 0f);
    }
  }

  /**
   * indexSelect of a BF16 / F16 tensor differentiates (its backward called indexAdd, F32 / F64
   * only, and always threw): the gradient has x's type, repeated indices summed in F32, and equals
   * the F32 gradient rounded.
   */
  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"BF16", "F16"})
  void indexSelectOfHalfTypesDifferentiates(DType d) {
    try (Scope s = Scope.open()) {
      Tensor x32 = Tensor.of(new double[] {1, 2, 3, 4, 5, 6, 7, 8}, 4, 2).to(DType.F32);
      Tensor x = x32.to(d).requiresGrad(true);
      Tensor idx = Tensor.ofIndices(new long[] {3, 0, 3, 3}, 4);
      Tensor w = Tensor.of(new double[] {0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4}, 4, 2).to(d);
      Tensor y = Indexing.indexSelect(x, 0, idx);
      Tensor g = org.metakernels.autograd.Autograd.grad(y.to(DType.F32).mul(w.to(DType.F32)).sum(), java.util.List.of(x), false).get(0);
      assertEquals(d, g.dtype());
      Ref.assertShape(g, 4, 2);
      // row 0: w row 1; row 3: w rows 0 + 2 + 3; rows 1, 2: 0
      assertArrayEquals(new double[] {1.5, 2, 0, 0, 0, 0, 6.5, 8}, g.toDoubleArray(), 0);
    }
  }
}
