package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;
import static org.metakernels.testing.Ref.rejects;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

/**
 * Regression tests of the defects {@link FuzzBadCallsTest} found (2026-12-05), one per fix: each
 * failed before its fix. Rejections must name the op the caller called and the caller's shapes;
 * valid calls must succeed with the right values.
 */
class FuzzFindingsTest {
  static final Device CPU = Device.CPU;
  static final Class<MetakernelsException> MK = MetakernelsException.class;

  static Tensor f64(long... shape) {
    return Tensor.randn(shape, DType.F64, CPU, 3);
  }

  static Tensor freed(long... shape) {
    Tensor t = f64(shape);
    t.close();
    return t;
  }

  static Tensor i64(long... v) {
    return Tensor.ofIndices(v, v.length);
  }

  /** Freed tensors: the message said "op: tensor storage was already freed", naming no tensor. */
  @Test
  void freedTensorMessagesNameTheTensor() {
    try (Scope s = Scope.open()) {
      Tensor x = freed(2, 3);
      rejects(IllegalStateException.class, x::exp, List.of(), "exp", "F64[2, 3]", "freed");
      rejects(IllegalStateException.class, () -> f64(2, 3).add(x), List.of(), "add", "F64[2, 3]", "freed");
    }
  }

  /**
   * Composite ops on freed tensors named the inner op (transpose said "permute", select
   * "narrow", squeeze/unsqueeze/flatten/max() "reshape", stack "reshape"); sumTo and to() with
   * nothing to do returned the freed tensor itself.
   */
  @Test
  void compositeOpsNameThemselvesForFreedTensors() {
    try (Scope s = Scope.open()) {
      Tensor x = freed(2, 1, 3);
      rejects(IllegalStateException.class, () -> x.transpose(0, 1), List.of(), "transpose", "F64[2, 1, 3]");
      rejects(IllegalStateException.class, () -> x.select(0, 1), List.of(), "select", "F64[2, 1, 3]");
      rejects(IllegalStateException.class, () -> x.squeeze(1), List.of(), "squeeze", "F64[2, 1, 3]");
      rejects(IllegalStateException.class, () -> x.unsqueeze(0), List.of(), "unsqueeze", "F64[2, 1, 3]");
      rejects(IllegalStateException.class, x::flatten, List.of(), "flatten", "F64[2, 1, 3]");
      rejects(IllegalStateException.class, x::max, List.of(), "max", "F64[2, 1, 3]");
      rejects(IllegalStateException.class, () -> Tensor.stack(List.of(x, x), 0), List.of(), "stack", "F64[2, 1, 3]");
      rejects(IllegalStateException.class, () -> x.sumTo(new long[] {2, 1, 3}), List.of(), "sumTo", "F64[2, 1, 3]");
      rejects(IllegalStateException.class, () -> x.to(DType.F64), List.of(), "to", "F64[2, 1, 3]");
      rejects(IllegalStateException.class, () -> x.to(Device.CPU), List.of(), "to", "F64[2, 1, 3]");
      Tensor t = f64(2, 3);
      rejects(IllegalStateException.class, () -> t.copyInPlace(freed(3)), List.of(t), "copyInPlace", "F64[3]");
    }
  }

  /** The operand of an in-place op viewing the target: elements were read after being written. */
  @Test
  void inPlaceOperandThatViewsTheTargetIsReadBeforeAnyWrite() {
    try (Scope s = Scope.open()) {
      double[] v = {1, 2, 3, 4, 5, 6, 7, 8, 9};
      Tensor t = Tensor.of(v.clone(), 3, 3);
      t.addInPlace(t.select(0, 0));  // every row += the old row 0
      Ref.assertValues(t, 2, 4, 6, 5, 7, 9, 8, 10, 12);
      Tensor u = Tensor.of(v.clone(), 3, 3);
      u.copyInPlace(u.mT());
      Ref.assertValues(u, 1, 4, 7, 2, 5, 8, 3, 6, 9);
      Tensor w = Tensor.of(v.clone(), 3, 3);
      w.mulInPlace(w.narrow(1, 0, 1));  // every column *= the old column 0
      Ref.assertValues(w, 1, 2, 3, 16, 20, 24, 49, 56, 63);
      Tensor z = Tensor.of(v.clone(), 3, 3);
      z.subInPlace(z);  // the very same view: no copy needed, still right
      Ref.assertValues(z, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }
  }

  /** In-place writes into empty views were refused as "reaching some elements by more than one index". */
  @Test
  void inPlaceWritesIntoEmptyViewsAreAccepted() {
    try (Scope s = Scope.open()) {
      Tensor e = Tensor.zeros(new long[] {1, 1}, DType.F64, CPU).expand(0, 3);
      assertSame(e, e.fillInPlace(1));
      assertSame(e, e.addInPlace(f64(3)));
      Tensor p = Tensor.zeros(new long[] {4, 0, 5}, DType.F32, CPU).permute(2, 1, 0);
      assertSame(p, p.mulInPlace(2.0));
      // an expanded view with elements is still refused
      Tensor x = Tensor.zeros(new long[] {1, 3}, DType.F64, CPU).expand(2, 3);
      rejects(MK, () -> x.fillInPlace(1), List.of(x), "fillInPlace", "F64[2, 3]", "more than one index");
    }
  }

  /** linear: a bias other than [out] was broadcast (silently growing the result); errors said matmul/add/permute. */
  @Test
  void linearChecksItsOperands() {
    try (Scope s = Scope.open()) {
      Tensor x = f64(5, 3), w = f64(3, 3);
      rejects(MK, () -> Functional.linear(x, w, f64(1)), List.of(x, w), "linear", "F64[1]", "[3]");
      rejects(MK, () -> Functional.linear(x, w, f64()), List.of(x, w), "linear", "F64[]");
      rejects(MK, () -> Functional.linear(f64(3), w, f64(2, 3)), List.of(w), "linear", "F64[2, 3]");
      Tensor x32 = x.to(DType.F32);
      rejects(MK, () -> Functional.linear(x32, w, null), List.of(x32, w), "linear", "F32[5, 3]", "F64[3, 3]");
      rejects(MK, () -> Functional.linear(x, w, f64(3).to(DType.F32)), List.of(x, w), "linear", "F32[3]");
      rejects(IllegalStateException.class, () -> Functional.linear(x, freed(3, 3), null), List.of(x), "linear",
          "F64[3, 3]");
      Ref.assertShape(Functional.linear(x, w, f64(3)), 5, 3);
    }
  }

  /** layerNorm: weight/bias dtype or freed reported as mul/add; an empty last dim as "mean". */
  @Test
  void layerNormChecksItsOperands() {
    try (Scope s = Scope.open()) {
      Tensor x = f64(2, 4);
      rejects(MK, () -> Functional.layerNorm(x, null, f64(4).to(DType.F32), 1e-5), List.of(x), "layerNorm", "F32[4]");
      rejects(IllegalStateException.class, () -> Functional.layerNorm(x, freed(4), null, 1e-5), List.of(x), "layerNorm",
          "F64[4]");
      rejects(MK, () -> Functional.layerNorm(f64(2, 0), null, null, 1e-5), List.of(), "layerNorm", "F64[2, 0]", "empty");
      Ref.assertShape(Functional.layerNorm(f64(0, 4), f64(4), f64(4), 1e-5), 0, 4);
    }
  }

  /** mse and crossEntropy of empty batches said "mean"; out-of-range targets said "gather" with [N, 1]. */
  @Test
  void lossesNameThemselves() {
    try (Scope s = Scope.open()) {
      rejects(MK, () -> Functional.mse(f64(0, 3), f64(0, 3)), List.of(), "mse", "F64[0, 3]", "empty");
      Tensor logits = f64(3, 4);
      rejects(MK, () -> Functional.crossEntropy(f64(0, 4), Tensor.ofIndices(new long[0], 0)), List.of(),
          "crossEntropy", "F64[0, 4]", "I64[0]");
      Tensor bad = i64(0, 4, 1);
      var e = rejects(MK, () -> Functional.crossEntropy(logits, bad), List.of(logits, bad), "crossEntropy",
          "F64[3, 4]", "I64[3]", "outside [0, 4)");
      assertEquals(Codes.ERR_INVALID_ARGUMENT, e.status(), "the native status is kept");
    }
  }

  /** Reductions that named an inner op or the flattened shape. */
  @Test
  void reductionsNameThemselvesAndTheCallersShape() {
    try (Scope s = Scope.open()) {
      Tensor ix = Tensor.ofIndices(new long[] {1, 2, 3, 4}, 2, 2);
      rejects(MK, () -> ix.mean(), List.of(ix), "mean", "I64[2, 2]");  // said "sum"
      rejects(MK, () -> ix.mean(0, false), List.of(ix), "mean", "I64[2, 2]");
      Tensor e = f64(2, 0, 3);
      rejects(MK, () -> e.logsumexp(1, false), List.of(e), "logsumexp", "F64[2, 0, 3]", "empty");  // said "max"
      rejects(MK, e::max, List.of(e), "max", "F64[2, 0, 3]");  // named F64[0]
      Tensor h = f64(2, 3).to(DType.BF16);
      rejects(MK, h::max, List.of(), "max", "BF16[2, 3]");  // named BF16[6]
      rejects(MK, () -> ix.sumTo(new long[] {2, 2}), List.of(ix), "sumTo", "I64[2, 2]");  // returned ix
      rejects(MK, () -> ix.sumTo(new long[] {2}), List.of(ix), "sumTo", "I64[2, 2]");  // said "sum"
      Ref.assertShape(f64(2, 3).to(DType.BF16).sumTo(new long[] {3}), 3);  // halves are summed (in F32)
    }
  }

  /** Scalar forms named the op they are built on: sub(c) "add", div(c) "mul", pow(2) "square", pow(1) "mul". */
  @Test
  void scalarFormsNameThemselves() {
    try (Scope s = Scope.open()) {
      Tensor ix = i64(1, 2, 3);
      rejects(MK, () -> ix.sub(1.0), List.of(ix), "sub:", "I64[3]");
      rejects(MK, () -> ix.div(2.0), List.of(ix), "div:", "I64[3]");
      rejects(MK, () -> ix.pow(2.0), List.of(ix), "pow:", "I64[3]");
      rejects(MK, () -> ix.pow(1.0), List.of(ix), "pow:", "I64[3]");
      Ref.assertValues(Tensor.of(new double[] {3, 5}, 2).sub(1.0), 2, 4);
      Ref.assertValues(Tensor.of(new double[] {3, 5}, 2).div(2.0), 1.5, 2.5);
    }
  }

  /** Views whose messages named no input shape, or the wrong op. */
  @Test
  void viewsNameTheOpAndTheInput() {
    try (Scope s = Scope.open()) {
      Tensor x = f64(2, 3);
      List<Tensor> in = List.of(x);
      rejects(MK, () -> x.select(1, 3), in, "select", "F64[2, 3]");  // said "narrow: [3, 4) ..."
      rejects(MK, () -> x.select(0, -1), in, "select", "F64[2, 3]");
      rejects(MK, () -> x.reshape(-1, -1), in, "reshape", "F64[2, 3]");
      rejects(MK, () -> x.reshape(-2, 3), in, "reshape", "F64[2, 3]");
      Tensor e = f64(0);
      rejects(MK, () -> e.reshape(1L << 62, 4), List.of(e), "reshape", "too many elements", "F64[0]");
      rejects(MK, () -> x.expand(-2, 2, 3), in, "expand", "-2", "F64[2, 3]");  // said "-1 in a new leading dim"
      rejects(MK, () -> x.expand(1L << 62, 2, 3), in, "expand", "too many elements", "F64[2, 3]");
      Tensor y = f64(2, 4);
      rejects(MK, () -> Tensor.stack(List.of(x, y), 0), List.of(x, y), "stack", "F64[2, 3]", "F64[2, 4]");
      Tensor z = x.to(DType.F32);
      rejects(MK, () -> Tensor.stack(List.of(x, z), 1), List.of(x, z), "stack", "F64[2, 3]", "F32[2, 3]");
      rejects(MK, () -> Tensor.stack(List.of(x, x), 3), in, "stack", "3", "F64[2, 3]");
      Ref.assertShape(Tensor.stack(List.of(x, x, x), -1), 2, 3, 3);
    }
  }

  /** Attention with H = 0 was refused by native validation with no shapes; linear attention's momentum likewise. */
  @Test
  void attentionMessagesNameTheShapes() {
    try (Scope s = Scope.open()) {
      Tensor q = f64(1, 0, 2, 3), k = f64(1, 1, 2, 3);
      rejects(MK, () -> Attention.forward(q, k, k, Attention.Options.defaults()), List.of(q, k), "attention",
          "F64[1, 0, 2, 3]");
      Tensor a = f64(2, 3);
      rejects(MK, () -> LinearAttention.apply(a, a, a, LinearAttention.Options.of(LinearAttention.FeatureMap.IDENTITY,
          false).withMomentum(0.9)), List.of(a), "linearAttention", "momentum", "F64[2, 3]");
    }
  }
}
