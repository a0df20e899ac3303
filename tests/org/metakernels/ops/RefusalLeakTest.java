package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.metakernels.nn.LinearSelfAttention;
import org.metakernels.nn.MultiHeadAttention;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * Calls refused by a native check, made outside any scope, leave no memory behind: the op's output
 * was allocated before the check, and with no scope and no returned tensor no one could free it
 * (found by a differential probe, 2026-12-08: ten refused linear-attention products with Dv = 1100
 * kept 377 MB). Also the temporaries of calls that succeed outside a scope.
 */
class RefusalLeakTest {
  static final Device CPU = Device.CPU;

  static Tensor f64(long... shape) {
    return Tensor.randn(shape, DType.F64, CPU, 3);
  }

  @Test
  void refusedCallsOutsideAScopeFreeWhatTheyAllocated() {
    Tensor q = f64(2, 40, 8), wide = f64(2, 40, 1100), v = f64(2, 40, 4), x = f64(6, 5);
    Tensor bad = Tensor.ofIndices(new long[] {0, 7, 1}, 3), badGather = Tensor.ofIndices(new long[] {0, 1, 9, 2, 0, 0}, 6, 1);
    Tensor badT = Tensor.ofIndices(new long[] {0, 7, 1, 2}, 2, 2).mT().select(0, 1);  // [7, 2], stride 2
    Map<String, Executable> calls = new LinkedHashMap<>();
    calls.put("product Dv 1100", () -> LinearAttention.product(q, q, wide, LinearAttention.Mask.CAUSAL));
    calls.put("product on views, Dv 1100", () -> LinearAttention.product(q.mT().mT(), q, wide.narrow(1, 0, 40), LinearAttention.Mask.NONE));
    calls.put("momentum decay 1.5", () -> LinearAttention.momentum(v, 1.5, false));
    calls.put("momentum decay NaN", () -> LinearAttention.momentum(v.mT(), Double.NaN, false));
    calls.put("indexSelect", () -> x.indexSelect(0, bad));
    calls.put("indexSelect, strided indices", () -> x.indexSelect(0, badT));
    calls.put("gather", () -> x.gather(0, badGather));
    Tensor rows = f64(3, 5), column = f64(6, 1);
    calls.put("indexAdd", () -> Indexing.indexAdd(x, 0, bad, rows));
    calls.put("scatterAdd", () -> Indexing.scatterAdd(x, 0, badGather, column));
    for (var e : calls.entrySet()) {
      assertThrows(MetakernelsException.class, e.getValue(), e.getKey());  // warm: lazily made workspaces
      long live = MkNative.mk_host_live_bytes();
      for (int i = 0; i < 3; i++) assertThrows(MetakernelsException.class, e.getValue(), e.getKey());
      assertEquals(live, MkNative.mk_host_live_bytes(), e.getKey() + ": bytes left behind");
    }
    var npe = assertThrows(NullPointerException.class, () -> LinearAttention.product(q, q, v, null));
    assertTrue(npe.getMessage().contains("linearAttention.product") && npe.getMessage().contains("mask"), npe.getMessage());
    for (Tensor t : new Tensor[] {q, wide, v, x, bad, badGather, badT, rows, column}) t.close();
  }

  @Test
  void productOfViewsOutsideAScopeFreesItsCopies() {
    Tensor q = f64(2, 3, 16, 4), v = f64(2, 3, 16, 5);
    Tensor qv = q.transpose(1, 2).transpose(1, 2).narrow(2, 1, 12), kv = q.permute(0, 1, 3, 2).mT().narrow(2, 2, 12);
    Tensor vv = v.narrow(3, 0, 5).narrow(2, 3, 12);
    Tensor first = LinearAttention.product(qv, kv, vv, LinearAttention.Mask.CAUSAL);
    first.close();
    long live = MkNative.mk_host_live_bytes();
    for (int i = 0; i < 3; i++) LinearAttention.product(qv, kv, vv, LinearAttention.Mask.CAUSAL).close();
    LinearAttention.momentum(v.mT(), 0.5, true).close();
    assertEquals(live, MkNative.mk_host_live_bytes(), "copies of views left behind");
    q.close();
    v.close();
  }

  @Test
  void nullsNameTheOp() {
    try (org.metakernels.tensor.Scope s = org.metakernels.tensor.Scope.open()) {
      Tensor q = f64(1, 1, 4, 2);
      java.util.List<Executable> calls = java.util.List.of(() -> Attention.forward(q, q, q, null),
          () -> Attention.softmax(q, q, q, null), () -> LinearAttention.apply(q, q, q, null),
          () -> org.metakernels.autograd.Autograd.backward(null),
          () -> org.metakernels.autograd.Autograd.grad((Tensor) null, java.util.List.of(q), false));
      String[] names = {"attention", "attention", "linearAttention.apply", "Autograd.backward", "Autograd.grad"};
      for (int i = 0; i < calls.size(); i++) {
        NullPointerException e = assertThrows(NullPointerException.class, calls.get(i));
        assertTrue(e.getMessage() != null && e.getMessage().contains(names[i]), e.getMessage());
      }
    }
  }

  @Test
  void modulesRefuseHeadWidthsTheirKernelsCannotTake() {
    long live = MkNative.mk_host_live_bytes();
    var e = assertThrows(MetakernelsException.class, () -> new LinearSelfAttention(
        4, 1, LinearSelfAttention.MAX_HEAD_DIM + 1, 0, false, LinearAttention.FeatureMap.IDENTITY, 0.1, DType.F64, CPU, 1));
    assertTrue(e.getMessage().contains("1025"), e.getMessage());
    e = assertThrows(MetakernelsException.class, () -> new MultiHeadAttention(514, 2, 2, false, DType.F64, CPU, 1));
    assertTrue(e.getMessage().contains("257"), e.getMessage());
    assertEquals(live, MkNative.mk_host_live_bytes());
    // a module made outside any scope owns its parameters only: closing it frees everything
    try (LinearSelfAttention lsa = new LinearSelfAttention(4, 2, 3, 0, true, LinearAttention.FeatureMap.IDENTITY, 0.1,
             DType.F64, CPU, 1)) {
      assertEquals(4, lsa.parameters().size());
    }
    assertEquals(live, MkNative.mk_host_live_bytes(), "the unscaled draws of LinearSelfAttention's init left behind");
  }
}
