package org.metakernels.ops;

import org.metakernels.runtime.Codes;
import static org.junit.jupiter.api.Assertions.*;
import static org.metakernels.testing.Ref.rejects;

import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.Native;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

/**
 * Rejected calls, op family by op family: each throws a {@link MetakernelsException} (or
 * {@link IllegalStateException} for freed tensors) whose message names the op and the shapes,
 * and leaves its inputs as they were.
 */
class BadInputTest {
  static final Device CPU = Device.CPU;
  static final Class<MetakernelsException> MK = MetakernelsException.class;

  static Tensor f64(long... shape) {
    return Tensor.randn(shape, DType.F64, CPU, 1);
  }

  static Tensor f32(long... shape) {
    return Tensor.randn(shape, DType.F32, CPU, 2);
  }

  static Tensor i64(long... v) {
    return Tensor.ofIndices(v, v.length);
  }

  /** A tensor whose storage was freed. */
  static Tensor closed(long... shape) {
    Tensor t = f64(shape);
    t.close();
    assertTrue(t.isClosed());
    return t;
  }

  static void rejectsClosed(Function<Tensor, Object> op, long... shape) {
    Tensor c = closed(shape);
    var e = assertThrows(IllegalStateException.class, () -> op.apply(c));
    assertTrue(e.getMessage().contains("freed"), e.getMessage());
    assertTrue(e.getMessage().contains(Arrays.toString(shape)), e.getMessage());  // the freed tensor, named
  }

  @Test
  void elementwiseUnary() {
    try (Scope s = Scope.open()) {
      Tensor ix = i64(1, 2, 3);
      for (Function<Tensor, Tensor> op : List.<Function<Tensor, Tensor>>of(Tensor::exp, Tensor::neg, Tensor::tanh,
          Tensor::relu, Tensor::sqrt, Tensor::abs, Tensor::sign, t -> t.pow(2.5), t -> t.clampMin(0),
          t -> t.add(1.0), t -> t.mul(2.0), t -> t.rsub(1.0))) {
        rejects(MK, () -> op.apply(ix), List.of(ix), "expected a floating-point tensor", "I64[3]");
        rejectsClosed(op::apply, 2, 3);
      }
      rejects(MK, () -> ix.exp(), List.of(ix), "exp");
      rejects(MK, () -> ix.mul(2.0), List.of(ix), "mul");
    }
  }

  @Test
  void elementwiseBinary() {
    try (Scope s = Scope.open()) {
      Tensor a = f64(2, 3), b = f64(4), c = f32(2, 3), ix = i64(1, 2, 3);
      for (String name : List.of("add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "lt", "ge")) {
        java.util.function.BinaryOperator<Tensor> op = switch (name) {
          case "add" -> Tensor::add;
          case "sub" -> Tensor::sub;
          case "mul" -> Tensor::mul;
          case "div" -> Tensor::div;
          case "pow" -> Tensor::pow;
          case "maximum" -> Tensor::maximum;
          case "minimum" -> Tensor::minimum;
          case "eq" -> Tensor::eq;
          case "lt" -> Tensor::lt;
          default -> Tensor::ge;
        };
        rejects(MK, () -> op.apply(a, b), List.of(a, b), name + ":", "[2, 3]", "[4]", "do not broadcast");
        rejects(MK, () -> op.apply(a, c), List.of(a, c), name + ":", "dtype mismatch", "F64[2, 3]", "F32[2, 3]");
        rejects(MK, () -> op.apply(ix, ix), List.of(ix), name + ":", "I64[3]");
        rejects(MK, () -> op.apply(a, ix), List.of(a, ix), name + ":", "I64[3]");
        Tensor d = closed(2, 3);
        assertThrows(IllegalStateException.class, () -> op.apply(a, d));
        assertThrows(IllegalStateException.class, () -> op.apply(d, a));
      }
      // where: the condition has the values' dtype; shapes must broadcast
      Tensor cond = Tensor.ones(new long[] {2, 3}, DType.F64, CPU);
      rejects(MK, () -> Tensor.where(cond, a, b), List.of(cond, a, b), "where", "[2, 3]", "[4]");
      rejects(MK, () -> Tensor.where(cond.to(DType.F32), a, a), List.of(cond, a), "where", "F32[2, 3]", "F64[2, 3]");
      rejects(MK, () -> Tensor.where(i64(1, 0, 1), a, a), List.of(a), "where", "I64[3]");
      // in place: the operand must broadcast to the target's shape
      Tensor t = f64(2, 3);
      rejects(MK, () -> t.addInPlace(f64(3, 3)), List.of(t), "addInPlace", "[2, 3]", "[3, 3]");
      rejects(MK, () -> t.mulInPlace(f64(2, 2, 3)), List.of(t), "mulInPlace", "[2, 3]", "[2, 2, 3]");
      rejects(MK, () -> t.subInPlace(c), List.of(t, c), "subInPlace", "F64[2, 3]", "F32[2, 3]");
      rejects(MK, () -> t.copyInPlace(f64(4)), List.of(t), "copyInPlace", "[2, 3]", "[4]");
      rejects(MK, () -> t.copyInPlace(c), List.of(t), "copyInPlace", "F32[2, 3]", "F64[2, 3]");
      Tensor dead = closed(2, 3);
      assertThrows(IllegalStateException.class, () -> dead.addInPlace(a));
      assertThrows(IllegalStateException.class, () -> dead.fillInPlace(1));
      assertThrows(IllegalStateException.class, () -> t.addInPlace(dead));
    }
  }

  @Test
  void reductions() {
    try (Scope s = Scope.open()) {
      Tensor x = f64(2, 3, 4), ix = i64(1, 2);
      List<Tensor> in = List.of(x);
      rejects(MK, () -> x.sum(3, false), in, "sum", "dim 3", "[2, 3, 4]");
      rejects(MK, () -> x.sum(-4, false), in, "sum", "dim -4", "[2, 3, 4]");
      rejects(MK, () -> x.sum(new int[] {0, -3}, true), in, "sum", "repeated", "[2, 3, 4]");
      rejects(MK, () -> x.mean(new int[] {1, 7}, true), in, "mean", "dim 7", "[2, 3, 4]");
      rejects(MK, () -> x.var(3, false, false), in, "var", "3", "[2, 3, 4]");
      rejects(MK, () -> x.var(-4, false, false), in, "var", "-4", "[2, 3, 4]");
      rejects(MK, () -> f64(3, 1).var(1, false, true), List.of(), "var", "too short", "[3, 1]");
      rejects(MK, () -> x.max(3, false), in, "max", "3", "[2, 3, 4]");
      rejects(MK, () -> x.min(-4, true), in, "min", "-4", "[2, 3, 4]");
      rejects(MK, () -> x.logsumexp(5, false), in, "logsumexp", "5", "[2, 3, 4]");
      rejects(MK, () -> x.softmax(3), in, "softmax", "3", "[2, 3, 4]");
      rejects(MK, () -> x.logSoftmax(-4), in, "logSoftmax", "-4", "[2, 3, 4]");
      rejects(MK, () -> Tensor.scalar(1, DType.F64, CPU).softmax(0), List.of(), "softmax", "[]");
      rejects(MK, () -> x.sumTo(new long[] {5, 4}), in, "sumTo", "[2, 3, 4]", "[5, 4]");
      rejects(MK, () -> x.sumTo(new long[] {1, 2, 3, 4}), in, "sumTo", "[2, 3, 4]", "[1, 2, 3, 4]");
      Tensor empty = Tensor.zeros(new long[] {2, 0}, DType.F64, CPU);
      rejects(MK, () -> empty.max(1, false), List.of(empty), "max", "[2, 0]", "empty");
      rejects(MK, () -> empty.mean(1, false), List.of(empty), "mean", "[2, 0]", "empty");
      // index tensors are not reduced
      rejects(MK, () -> ix.sum(), List.of(ix), "sum", "I64[2]");
      rejects(MK, () -> ix.max(0, false), List.of(ix), "max", "I64[2]");
      rejects(MK, () -> ix.softmax(0), List.of(ix), "softmax", "I64[2]");
      rejects(MK, () -> ix.logsumexp(0, false), List.of(ix), "logsumexp", "I64[2]");
      rejects(MK, () -> ix.var(0, false, false), List.of(ix), "var", "I64[2]");
      for (Function<Tensor, Object> op : List.<Function<Tensor, Object>>of(Tensor::sum, t -> t.mean(0, true),
          t -> t.var(0, false, false), t -> t.max(0, false), Tensor::max, t -> t.logsumexp(1, false),
          t -> t.softmax(1), t -> t.logSoftmax(0), t -> t.sumTo(new long[] {3})))
        rejectsClosed(op, 2, 3);
    }
  }

  @Test
  void matmul() {
    try (Scope s = Scope.open()) {
      Tensor a = f64(2, 3), b = f64(4, 5);
      rejects(MK, () -> a.matmul(b), List.of(a, b), "matmul", "[2, 3]", "[4, 5]");
      Tensor a3 = f64(2, 3, 4), b3 = f64(3, 4, 5);
      rejects(MK, () -> a3.matmul(b3), List.of(a3, b3), "matmul", "[2]", "[3]", "do not broadcast");
      Tensor c = f32(3, 2);
      rejects(MK, () -> a.matmul(c), List.of(a, c), "matmul", "dtype mismatch", "F64[2, 3]", "F32[3, 2]");
      Tensor sc = Tensor.scalar(2, DType.F64, CPU);
      rejects(MK, () -> sc.matmul(a), List.of(sc, a), "matmul", "[]", "[2, 3]");
      rejects(MK, () -> a.matmul(sc), List.of(sc, a), "matmul", "[]", "[2, 3]");
      Tensor v = f64(4);
      rejects(MK, () -> a.matmul(v), List.of(a, v), "matmul", "[2, 3]", "[4");
      rejects(MK, () -> v.matmul(f64(3)), List.of(v), "matmul", "4", "3");
      Tensor ix = Tensor.ofIndices(new long[] {1, 2, 3, 4, 5, 6}, 3, 2);
      rejects(MK, () -> ix.matmul(ix.mT()), List.of(ix), "matmul", "I64[3, 2]");
      Tensor w = f64(5, 4);
      rejects(MK, () -> Functional.linear(a, w, null), List.of(a, w), "linear", "[2, 3]", "[5, 4]");
      rejects(MK, () -> Functional.linear(f64(2, 4), f64(4), null), List.of(), "linear", "[2, 4]", "[4]");
      rejects(MK, () -> Functional.linear(sc, w, null), List.of(sc, w), "linear", "[]", "[5, 4]");
      rejects(MK, () -> Functional.linear(f64(2, 4), w, f64(3)), List.of(w), "linear", "F64[3]", "F64[5, 4]");
      rejectsClosed(t -> t.matmul(b), 3, 4);
      rejectsClosed(t -> b.matmul(t), 5, 2);
      rejectsClosed(t -> Functional.linear(t, w, null), 2, 4);
    }
  }

  @Test
  void views() {
    try (Scope s = Scope.open()) {
      Tensor x = f64(2, 3, 4);
      List<Tensor> in = List.of(x);
      rejects(MK, () -> x.reshape(5, 5), in, "reshape", "[2, 3, 4]", "[5, 5]");
      rejects(MK, () -> x.reshape(-1, -1), in, "reshape", "-1");
      rejects(MK, () -> x.reshape(5, -1), in, "reshape", "[2, 3, 4]", "[5, -1]");
      rejects(MK, () -> x.reshape(-2, 12), in, "reshape", "negative", "[-2, 12]");
      rejects(MK, () -> x.permute(0, 1), in, "permute", "[2, 3, 4]");
      rejects(MK, () -> x.permute(0, 1, 1), in, "permute", "[0, 1, 1]", "[2, 3, 4]");
      rejects(MK, () -> x.permute(0, 1, 3), in, "permute", "[0, 1, 3]", "[2, 3, 4]");
      rejects(MK, () -> x.transpose(0, 3), in, "transpose", "3", "[2, 3, 4]");
      rejects(MK, () -> x.transpose(-4, 0), in, "transpose", "-4", "[2, 3, 4]");
      rejects(MK, () -> f64(3).mT(), List.of(), "transpose", "-2", "[3]");
      rejects(MK, () -> x.narrow(1, 2, 2), in, "narrow", "start 2, length 2", "[2, 3, 4]");
      rejects(MK, () -> x.narrow(1, -1, 1), in, "narrow", "[2, 3, 4]");
      rejects(MK, () -> x.narrow(1, Long.MAX_VALUE, 1), in, "narrow", "start 9223372036854775807, length 1", "[2, 3, 4]");
      rejects(MK, () -> x.narrow(1, 1, Long.MAX_VALUE), in, "narrow", "[2, 3, 4]");
      rejects(MK, () -> x.select(0, Long.MAX_VALUE), in, "select", "[2, 3, 4]");
      Tensor four = f64(4), none = f64(0);
      rejects(MK, () -> four.reshape((1L << 62) + 1, 4), List.of(four), "reshape", "too many elements");
      rejects(MK, () -> none.reshape(1L << 62, 4), List.of(none), "reshape", "too many elements");
      rejects(MK, () -> four.expand(1L << 62, 4), List.of(four), "expand", "too many elements");
      rejects(MK, () -> x.narrow(3, 0, 1), in, "narrow", "3", "[2, 3, 4]");
      rejects(MK, () -> x.select(2, 4), in, "[2, 3, 4]");
      rejects(MK, () -> x.select(-4, 0), in, "select", "-4", "[2, 3, 4]");
      rejects(MK, () -> x.expand(2, 5, 4), in, "expand", "[2, 3, 4]", "[2, 5, 4]");
      rejects(MK, () -> x.expand(3, 4), in, "expand", "[2, 3, 4]", "[3, 4]");
      rejects(MK, () -> x.expand(-1, 2, 3, 4), in, "expand", "-1");
      rejects(MK, () -> x.squeeze(1), in, "squeeze", "[2, 3, 4]");
      rejects(MK, () -> x.squeeze(3), in, "squeeze", "3", "[2, 3, 4]");
      rejects(MK, () -> x.unsqueeze(4), in, "unsqueeze", "4", "[2, 3, 4]");
      rejects(MK, () -> x.unsqueeze(-5), in, "unsqueeze", "-5", "[2, 3, 4]");
      // concat / stack
      Tensor y = f64(2, 5, 4), z = f64(2, 3, 5);
      rejects(MK, () -> Tensor.concat(List.of(x, z), 1), List.of(x, z), "concat", "[2, 3, 4]", "[2, 3, 5]");
      rejects(MK, () -> Tensor.concat(List.of(x, f32(2, 3, 4)), 0), List.of(x), "concat", "F64[2, 3, 4]",
          "F32[2, 3, 4]");
      rejects(MK, () -> Tensor.concat(List.of(x, f64(2, 3)), 0), List.of(x), "concat", "[2, 3, 4]", "[2, 3]");
      rejects(MK, () -> Tensor.concat(List.of(x, y), 3), List.of(x, y), "concat", "3", "[2, 3, 4]");
      rejects(MK, () -> Tensor.concat(List.of(), 0), List.of(), "concat", "no tensors");
      rejects(MK, () -> Tensor.stack(List.of(x, y), 0), List.of(x, y), "stack", "F64[2, 3, 4]", "F64[2, 5, 4]");
      rejects(MK, () -> Tensor.stack(List.of(x, x), 4), List.of(x), "stack", "4");
      rejects(MK, () -> Tensor.stack(List.of(x, x), -5), List.of(x), "stack", "-5");
      // casts and contiguous
      Tensor c = closed(2, 3);
      assertThrows(IllegalStateException.class, () -> c.to(DType.F32));
      assertThrows(IllegalStateException.class, () -> c.contiguous());
      assertThrows(IllegalStateException.class, () -> Tensor.concat(List.of(x, c), 0));
      assertThrows(IllegalStateException.class, () -> Tensor.stack(List.of(c, c), 0));
      for (Function<Tensor, Object> op : List.<Function<Tensor, Object>>of(t -> t.reshape(6), t -> t.permute(1, 0),
          t -> t.transpose(0, 1), Tensor::mT, t -> t.narrow(0, 0, 1), t -> t.select(0, 1), t -> t.expand(4, 2, 3),
          t -> t.unsqueeze(0), t -> t.flatten(), t -> t.mT().contiguous(), t -> t.to(DType.F32)))
        rejectsClosed(op, 2, 3);
    }
  }

  @Test
  void indexOpsRejectOutOfRangeIndicesNatively() {
    try (Scope s = Scope.open()) {
      Tensor x = f64(3, 4);
      List<Tensor> in = List.of(x);
      for (long bad : new long[] {3, -1, Long.MAX_VALUE, Long.MIN_VALUE}) {
        Tensor ix = i64(0, bad, 2);
        var e = rejects(MK, () -> x.indexSelect(0, ix), List.of(x, ix), "indexSelect", "F64[3, 4]", "I64[3]",
            "mk_dense_index_select_forward", "1 of 3 indices outside [0, 3)");
        assertEquals(Codes.ERR_INVALID_ARGUMENT, e.status(), "rejected by the native validation");
        Tensor src = f64(3, 4);
        var e2 = rejects(MK, () -> Indexing.indexAdd(x, 0, ix, src), List.of(x, ix, src), "indexAdd", "F64[3, 4]",
            "mk_dense_index_add_forward", "outside [0, 3)");
        assertEquals(Codes.ERR_INVALID_ARGUMENT, e2.status());
        Tensor gix = Tensor.ofIndices(new long[] {0, 1, 2, bad, 0, 0, 0, 0}, 2, 4);
        var e3 = rejects(MK, () -> x.gather(0, gix), List.of(x, gix), "gather", "F64[3, 4]", "I64[2, 4]",
            "mk_dense_gather_forward", "1 of 8 indices outside [0, 3)");
        assertEquals(Codes.ERR_INVALID_ARGUMENT, e3.status());
        Tensor gsrc = f64(2, 4);
        var e4 = rejects(MK, () -> Indexing.scatterAdd(x, 0, gix, gsrc), List.of(x, gix, gsrc), "scatterAdd",
            "F64[3, 4]", "mk_dense_scatter_add_forward", "outside [0, 3)");
        assertEquals(Codes.ERR_INVALID_ARGUMENT, e4.status());
      }
      // one bad index among many (the parallel range check), along dim 1
      long[] many = new long[50000];
      for (int i = 0; i < many.length; i++) many[i] = i % 4;
      many[31337] = 4;
      Tensor mix = Tensor.ofIndices(many, many.length);
      rejects(MK, () -> x.indexSelect(1, mix), List.of(x, mix), "indexSelect", "1 of 50000 indices outside [0, 4)");
      // wrong index types, ranks and shapes
      Tensor fidx = Tensor.of(new double[] {0, 1}, 2);
      rejects(MK, () -> x.indexSelect(0, fidx), List.of(x, fidx), "indexSelect", "I64", "F64[2]");
      rejects(MK, () -> x.gather(0, fidx), in, "gather", "I64", "F64[2]");
      rejects(MK, () -> Indexing.indexAdd(x, 0, fidx, f64(2, 4)), in, "indexAdd", "I64", "F64[2]");
      rejects(MK, () -> Indexing.scatterAdd(x, 0, fidx, f64(2)), in, "scatterAdd", "I64", "F64[2]");
      Tensor ix2 = Tensor.ofIndices(new long[] {0, 1, 2, 0}, 2, 2);
      rejects(MK, () -> x.indexSelect(0, ix2), in, "indexSelect", "1-d", "I64[2, 2]");
      rejects(MK, () -> x.indexSelect(2, i64(0)), in, "indexSelect", "2", "[3, 4]");
      rejects(MK, () -> x.indexSelect(-3, i64(0)), in, "indexSelect", "-3", "[3, 4]");
      rejects(MK, () -> Indexing.indexAdd(x, 0, i64(0, 1), f64(2, 5)), in, "indexAdd", "[2, 5]", "[3, 4]");
      rejects(MK, () -> Indexing.indexAdd(x, 0, i64(0, 1), f32(2, 4)), in, "indexAdd", "F32[2, 4]", "F64[3, 4]");
      rejects(MK, () -> Indexing.indexAdd(x, 2, i64(0), f64(3, 4)), in, "indexAdd", "2", "[3, 4]");
      rejects(MK, () -> x.gather(1, Tensor.ofIndices(new long[] {0, 1}, 2, 1)), in, "gather", "I64[2, 1]", "[3, 4]");
      rejects(MK, () -> x.gather(1, i64(0, 1)), in, "gather", "I64[2]", "[3, 4]");
      rejects(MK, () -> x.gather(2, ix2), in, "gather", "2", "[3, 4]");
      rejects(MK, () -> Indexing.scatterAdd(x, 0, ix2.narrow(1, 0, 1).expand(2, 4), f64(2, 3)), in, "scatterAdd",
          "I64[2, 4]", "[2, 3]");
      rejects(MK, () -> i64(1, 2).gather(0, i64(0)), List.of(), "gather", "I64[2]");
      // freed operands
      Tensor ok = i64(0, 1);
      rejectsClosed(t -> t.indexSelect(0, ok), 3, 4);
      rejectsClosed(t -> t.gather(0, Tensor.ofIndices(new long[] {0, 1, 0, 1}, 2, 2)), 3, 2);
      rejectsClosed(t -> Indexing.indexAdd(t, 0, ok, f64(2, 4)), 3, 4);
      rejectsClosed(t -> Indexing.indexAdd(x, 0, ok, t), 2, 4);
      Tensor deadIdx = i64(0, 1);
      deadIdx.close();
      assertThrows(IllegalStateException.class, () -> x.indexSelect(0, deadIdx));
    }
  }

  @Test
  void functional() {
    try (Scope s = Scope.open()) {
      Tensor x = f64(3, 5), w = f64(4), b = f64(5);
      rejects(MK, () -> Functional.layerNorm(x, w, null, 1e-5), List.of(x, w), "layerNorm", "[4]", "[3, 5]");
      rejects(MK, () -> Functional.layerNorm(x, null, f64(5, 1), 1e-5), List.of(x), "layerNorm", "[5, 1]", "[3, 5]");
      Tensor sc = Tensor.scalar(1, DType.F64, CPU);
      rejects(MK, () -> Functional.layerNorm(sc, null, null, 1e-5), List.of(sc), "layerNorm", "[]");
      rejects(MK, () -> Functional.layerNorm(i64(1, 2), null, null, 1e-5), List.of(), "layerNorm", "I64[2]");
      rejects(MK, () -> Functional.layerNorm(x, f32(5), b, 1e-5), List.of(x, b), "layerNorm", "F32[5]", "F64[3, 5]");
      Tensor p = f64(3, 4), t = f64(4, 3);
      rejects(MK, () -> Functional.mse(p, t), List.of(p, t), "mse", "[3, 4]", "[4, 3]");
      rejects(MK, () -> Functional.mse(p, f32(3, 4)), List.of(p), "mse", "F64[3, 4]", "F32[3, 4]");
      Tensor logits = f64(3, 4);
      Tensor tg = i64(0, 3, 1);
      List<Tensor> ce = List.of(logits, tg);
      rejects(MK, () -> Functional.crossEntropy(logits, i64(0, 1)), ce, "crossEntropy", "[3, 4]", "I64[2]");
      rejects(MK, () -> Functional.crossEntropy(f64(3, 4, 1), tg), ce, "crossEntropy", "[3, 4, 1]", "I64[3]");
      rejects(MK, () -> Functional.crossEntropy(logits, Tensor.of(new double[] {0, 1, 2}, 3)), ce, "crossEntropy",
          "I64", "F64[3]");
      rejects(MK, () -> Functional.crossEntropy(i64(1, 2, 3), tg), ce, "crossEntropy", "I64[3]");
      var e = rejects(MK, () -> Functional.crossEntropy(logits, i64(0, 4, 1)), ce, "[3, 4]", "outside [0, 4)");
      assertEquals(Codes.ERR_INVALID_ARGUMENT, e.status());
      rejects(MK, () -> Functional.crossEntropy(logits, i64(0, -1, 1)), ce, "outside [0, 4)");
      rejectsClosed(c -> Functional.layerNorm(c, null, null, 1e-5), 3, 5);
      rejectsClosed(c -> Functional.mse(c, f64(3, 5)), 3, 5);
      rejectsClosed(c -> Functional.crossEntropy(c, tg), 3, 4);
    }
  }

  @Test
  void factoriesAndConversions() {
    try (Scope s = Scope.open()) {
      rejects(MK, () -> Tensor.zeros(new long[] {2, -1}, DType.F64, CPU), List.of(), "negative size", "[2, -1]");
      rejects(MK, () -> Tensor.full(new long[] {-3}, 1, DType.F32, CPU), List.of(), "negative size", "[-3]");
      rejects(MK, () -> Tensor.randn(new long[] {-3}, DType.F64, CPU, 1), List.of(), "negative size", "[-3]");
      rejects(MK, () -> Tensor.zeros(new long[9], DType.F64, CPU), List.of(), "rank 9");
      // sizes whose element count overflows a long would describe memory that was never allocated
      long huge = 1L << 62;
      rejects(MK, () -> Tensor.zeros(new long[] {huge, 4}, DType.F64, CPU), List.of(), "too many elements",
          "[4611686018427387904, 4]");
      rejects(MK, () -> Tensor.of(new double[0], huge, 4), List.of(), "of", "too many elements");
      rejects(MK, () -> Tensor.randn(new long[] {huge, huge}, DType.F32, CPU, 1), List.of(), "too many elements");
      Ref.assertShape(Tensor.zeros(new long[] {huge, 0}, DType.F64, CPU), huge, 0);  // empty: fine
      rejects(MK, () -> Tensor.of(new double[] {1, 2, 3}, 2, 2), List.of(), "of", "3 values", "[2, 2]");
      rejects(MK, () -> Tensor.of(new float[] {1, 2, 3}, 4), List.of(), "of", "[4]");
      rejects(MK, () -> Tensor.ofIndices(new long[] {1}, 2), List.of(), "ofIndices", "[2]");
      rejects(MK, () -> Tensor.arange(-1, DType.F64, CPU), List.of(), "arange", "-1");
      rejects(MK, () -> Tensor.randn(new long[] {2}, DType.I64, CPU, 1), List.of(), "randn", "I64");
      rejects(MK, () -> Tensor.uniform(new long[] {2}, 0, 1, DType.I64, CPU, 1), List.of(), "uniform", "I64");
      Tensor two = f64(2);
      rejects(MK, () -> two.item(), List.of(two), "item", "F64[2]");
      Tensor ix = i64(1, 2);
      rejects(MK, () -> ix.requiresGrad(true), List.of(ix), "requiresGrad", "I64[2]");
      Tensor y = f64(2).requiresGrad(true).exp();
      rejects(MK, () -> y.requiresGrad(false), List.of(y), "requiresGrad(false)", "exp");
      Tensor c = closed(2);
      assertThrows(IllegalStateException.class, c::toDoubleArray);
      assertThrows(IllegalStateException.class, c::toFloatArray);
      assertThrows(IllegalStateException.class, c::toLongArray);
      assertThrows(IllegalStateException.class, () -> closed(1).item());
      assertTrue(c.toString().contains("freed"));
      c.close();  // idempotent
    }
  }
}
