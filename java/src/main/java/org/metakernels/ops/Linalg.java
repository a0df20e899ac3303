package org.metakernels.ops;

import java.util.Arrays;
import org.metakernels.autograd.Autograd;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.Tensor;

/**
 * Matrix products: OpenBLAS on the CPU (a built-in kernel when it does not load), cuBLAS on
 * CUDA. {@code Linalg.matmul(x, w)} of [B, N, D] and [D, M] is [B, N, M].
 */
public final class Linalg {
  private Linalg() {}

  /**
   * NumPy-style matmul: [..., m, k] x [..., k, n] gives [..., m, n] with broadcast batch dims; a
   * 1-d left operand is a row vector and a 1-d right operand a column vector (their unit dim
   * is dropped from the result). Backward: dA = g Bᵀ, dB = Aᵀ g, both matmuls again.
   * {@code Linalg.matmul(q, k.mT())} of [B, H, N, D] and [B, H, D, M] is [B, H, N, M].
   *
   * @param a left operand, F32 or F64
   * @param b right operand, same dtype and device
   * @return the product
   */
  public static Tensor matmul(Tensor a, Tensor b) {
    return matmul(a, b, null);
  }

  // `caller`: the caller's operands as given (before 1-d operands were unsqueezed), for messages.
  private static Tensor matmul(Tensor a, Tensor b, String caller) {
    String op = "matmul";
    Checks.compatible(op, a, b);
    if (a.rank() == 0 || b.rank() == 0)
      throw new MetakernelsException(op + ": scalars are not matrices: " + Checks.shapes(a, b));
    String given = caller != null ? caller : a.describe() + " x " + b.describe();
    if (a.rank() == 1 && b.rank() == 1) return matmul(a.unsqueeze(0), b.unsqueeze(1), given).reshape();  // dot: []
    if (a.rank() == 1) return matmul(a.unsqueeze(0), b, given).squeeze(-2);
    if (b.rank() == 1) return matmul(a, b.unsqueeze(1), given).squeeze(-1);
    long[] as = a.shape(), bs = b.shape();
    long m = as[as.length - 2], k = as[as.length - 1], k2 = bs[bs.length - 2], n = bs[bs.length - 1];
    if (k != k2)
      throw new MetakernelsException(op + ": inner dims differ (" + k + " vs " + k2 + "): " + given);
    long[] batchA = Arrays.copyOf(as, as.length - 2), batchB = Arrays.copyOf(bs, bs.length - 2);
    for (int i = 0; i < Math.max(batchA.length, batchB.length); i++) {
      long da = i < batchA.length ? batchA[batchA.length - 1 - i] : 1, db = i < batchB.length ? batchB[batchB.length - 1 - i] : 1;
      if (da != db && da != 1 && db != 1)
        throw new MetakernelsException(op + ": batch dims " + Arrays.toString(batchA) + " and " + Arrays.toString(batchB)
            + " do not broadcast: " + given);
    }
    long[] batch = Checks.broadcast(op, batchA, batchB);
    long nb = Tensor.numel(batch);
    long[] outShape = Arrays.copyOf(batch, batch.length + 2);
    outShape[batch.length] = m;
    outShape[batch.length + 1] = n;
    Tensor y = Tensor.empty(outShape, a.dtype(), a.device());

    if (b.rank() == 2 && a.rank() > 2) {
      // [..., m, k] x [k, n]: one GEMM with the batch folded into the rows (a copy of a strided
      // `a` costs far less than nb small GEMM calls)
      Tensor a2 = a.isContiguous() ? a : a.copyContiguous();
      gemm(op, a2, b, y, 1, nb * m, n, k, 0, k, 1, 0, b.strides()[0], b.strides()[1], 0);
    } else {
      Tensor ae = matrixBatch(a, batch, m, k);
      Tensor be = matrixBatch(b, batch, k, n);
      long[] ast = ae.strides(), bst = be.strides();
      gemm(op, ae, be, y, nb, m, n, k, batchStride(ae, batch.length), ast[ast.length - 2], ast[ast.length - 1],
          batchStride(be, batch.length), bst[bst.length - 2], bst[bst.length - 1], m * n);
    }
    if (b.rank() == 2 && a.rank() > 2) {
      // dB = Σ_batch aᵀ g as one [k, nb·m] x [nb·m, n] product
      return Autograd.record(op, y, new Tensor[] {a, b}, g -> new Tensor[] {
          a.requiresGrad() ? g[0].matmul(b.mT()) : null,
          b.requiresGrad() ? a.reshape(nb * m, k).mT().matmul(g[0].reshape(nb * m, n)) : null},  // sizes, not -1: k or n may be 0
          t -> new Tensor[] {tangent(t, a, b)});
    }
    return Autograd.record(op, y, new Tensor[] {a, b}, g -> new Tensor[] {
        a.requiresGrad() ? g[0].matmul(b.mT()).sumTo(as) : null,
        b.requiresGrad() ? a.mT().matmul(g[0]).sumTo(bs) : null},
        t -> new Tensor[] {Dense.fit(y, tangent(t, a, b))});
  }

  /** ta·b + a·tb (either tangent may be null). */
  private static Tensor tangent(Tensor[] t, Tensor a, Tensor b) {
    Tensor l = t[0] == null ? null : t[0].matmul(b), r = t[1] == null ? null : a.matmul(t[1]);
    return l == null ? r : r == null ? l : l.add(r);
  }

  // The operand expanded to [batch..., r, c]; batch dims must collapse to one stride, else copy.
  private static Tensor matrixBatch(Tensor t, long[] batch, long r, long c) {
    long[] target = Arrays.copyOf(batch, batch.length + 2);
    target[batch.length] = r;
    target[batch.length + 1] = c;
    Tensor e = Views.viewRaw(t, target, Checks.broadcastStrides(t, target), t.offset());
    if (batchStride(e, batch.length) < 0) e = e.copyContiguous();
    long rs = e.strides()[batch.length], cs = e.strides()[batch.length + 1];
    // BLAS layouts: row-major (unit column stride, row stride >= c) or column-major
    boolean blasOk = (cs == 1 && (rs >= c || r == 1)) || (rs == 1 && (cs >= r || c == 1));
    if (!blasOk) e = e.copyContiguous();
    return e;
  }

  // One stride for all batch dims, or -1 when they do not collapse.
  private static long batchStride(Tensor t, int nBatch) {
    if (nBatch == 0) return 0;
    long[] s = t.shape(), st = t.strides();
    long stride = -2;
    long expect = -1;
    for (int i = nBatch - 1; i >= 0; i--) {
      if (s[i] == 1) continue;
      if (stride == -2) {
        stride = st[i];
        expect = st[i] * s[i];
      } else {
        if (stride == 0 ? st[i] != 0 : st[i] != expect) return -1;
        expect = st[i] * s[i];
      }
    }
    return stride == -2 ? 0 : stride;
  }

  private static void gemm(String op, Tensor a, Tensor b, Tensor c, long batch, long m, long n, long k, long aBs,
      long aRs, long aCs, long bBs, long bRs, long bCs, long cBs) {
    Native.check(MkNative.mk_dense_matmul_forward(a.device().code, a.dtype().code, batch, m, n, k, a.address(op), aBs,
        aRs, aCs, b.address(op), bBs, bRs, bCs, c.address(op), cBs, a.launchStream()), () -> op + " " + Checks.shapes(a, b));
  }
}
