package org.metakernels.autograd;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.metakernels.internal.Internals;
import org.metakernels.ops.Attention;
import org.metakernels.ops.Reductions;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Storage;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;

/**
 * Issue 13, item 1: no tensor a backward reads may be edited in place between the op and its
 * backward without an error. Table-driven over every case of {@link GradCheckOpsTest} (the op
 * table: a new op enters it with its gradient check, and is then held to this test too), and
 * mutation-style: for each case, every buffer alive after the forward (inputs, index tensors,
 * auxiliary outputs such as attention's lse or max's indices, key lengths, intermediates) is
 * edited in place in turn, then the backward runs. It must either refuse with a message naming
 * the op and "modified in place", or return exactly the gradient of the unedited run. The same
 * again between a backward recorded with createGraph and the second-order backward.
 *
 * <p>Guards {@code Node}'s version check of the tensors its rule captures (the reflective scan
 * in {@code Captures}); with that scan removed this test fails on the attention (lse, key
 * lengths), max (indices), indexSelect, indexAdd, gather, scatterAdd and crossEntropy cases.
 */
class SavedTensorVersionTest {
  static Stream<GradCheckOpsTest.Case> allCases() {
    return GradCheckOpsTest.allCases();
  }

  /** The run of one case up to the backward whose captured buffers are edited. */
  private static final class Run implements AutoCloseable {
    final Scope scope = Scope.open();
    final List<Tensor> leaves = new ArrayList<>();
    Tensor target; // the scalar to differentiate
    int order;

    Run(GradCheckOpsTest.Case c, int order) {
      this.order = order;
      for (Tensor t : c.inputs().get()) leaves.add(t.detach().requiresGrad(true));
      Random r = new Random(c.name().hashCode() * 31L + 7);
      Tensor out = c.f().apply(leaves);
      Tensor w = Nd.uniform(r, -1, 1, toInt(out.shape())).f64();
      Tensor loss = out.mul(w).sum();
      if (order == 1) {
        target = loss;
      } else {
        List<Tensor> g = Autograd.grad(loss, leaves, true);
        Tensor s = null;
        for (int i = 0; i < g.size(); i++) {
          Tensor wi = Nd.uniform(r, -1, 1, toInt(leaves.get(i).shape())).f64();
          Tensor term = g.get(i).mul(wi).sum();
          s = s == null ? term : s.add(term);
        }
        target = s;
      }
    }

    List<double[]> grads() {
      List<double[]> r = new ArrayList<>();
      for (Tensor g : Autograd.grad(target, leaves, false)) r.add(g.toDoubleArray());
      return r;
    }

    @Override
    public void close() {
      scope.close();
    }
  }

  static int[] toInt(long[] s) {
    int[] r = new int[s.length];
    for (int i = 0; i < s.length; i++) r[i] = (int) s[i];
    return r;
  }

  /**
   * Changes every element of a buffer in place (through a raw view, which bumps its version as
   * any in-place op does). The cases are F64 and I64 only: a buffer whose 64-bit words are all
   * small non-negative integers is an index tensor and is rewritten to other valid indices (0, or
   * 1 where it was all 0); any other is F64 and is scaled by -1.3.
   */
  static void edit(Storage s) {
    long n = s.nbytes() / 8;
    if (n == 0) return;
    Tensor asLong = Internals.tensor().newTensor(s, 0, new long[] {n}, new long[] {1}, DType.I64);
    long[] v = asLong.toLongArray();
    boolean index = true, anyNonZero = false;
    for (long x : v) {
      if (x < 0 || x >= 1 << 20) index = false;
      if (x != 0) anyNonZero = true;
    }
    if (index)
      asLong.fillInPlace(anyNonZero ? 0 : 1);
    else
      Internals.tensor().newTensor(s, 0, new long[] {n}, new long[] {1}, DType.F64).mulInPlace(-1.3);
  }

  static void checkEveryBuffer(GradCheckOpsTest.Case c, int order) {
    List<double[]> base;
    int buffers;
    try (Run run = new Run(c, order)) {
      // a case linear in its inputs has no second-order graph: nothing to edit before it
      org.junit.jupiter.api.Assumptions.assumeTrue(run.target.requiresGrad(), c + ": no second-order graph");
      buffers = Internals.tensor().owned(run.scope).size();
      base = run.grads();
    }
    int refused = 0;
    for (int i = 0; i < buffers; i++) {
      try (Run run = new Run(c, order)) {
        List<Storage> owned = Internals.tensor().owned(run.scope);
        assertEquals(buffers, owned.size(), c + ": the forward is not deterministic in its allocations");
        Storage s = owned.get(i);
        edit(s);
        List<double[]> got;
        try {
          got = run.grads();
        } catch (IllegalStateException e) {
          String m = String.valueOf(e.getMessage());
          assertTrue(m.contains("backward of '") && m.contains("modified in place"),
              c + ", order " + order + ", buffer " + i + ": refused with an unexpected message: " + m);
          refused++;
          continue;
        }
        for (int j = 0; j < base.size(); j++) {
          double[] a = base.get(j), b = got.get(j);
          double worst = 0;
          for (int e = 0; e < a.length; e++) worst = Math.max(worst, Math.abs(a[e] - b[e]));
          if (!(worst == 0.0))
            fail(c + ", order " + order + ": buffer " + i + " of " + buffers + " (" + s.nbytes()
                + " bytes) edited in place after the forward went unnoticed and changed the gradient of input " + j
                + " by " + worst);
        }
      }
    }
    assertTrue(refused > 0, c + ": no edit was refused, so the test did not reach the backward's inputs");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("allCases")
  void firstOrder(GradCheckOpsTest.Case c) {
    checkEveryBuffer(c, 1);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("allCases")
  void secondOrder(GradCheckOpsTest.Case c) {
    checkEveryBuffer(c, 2);
  }

  /** The first example, as a user would write it. */
  @Test
  void attentionLseFilledBeforeTheBackwardIsRefused() {
    try (Scope s = Scope.open()) {
      Random r = new Random(5);
      Tensor q = Nd.uniform(r, -1, 1, 1, 2, 4, 8).f64().requiresGrad(true);
      Tensor k = Nd.uniform(r, -1, 1, 1, 2, 4, 8).f64().requiresGrad(true);
      Tensor v = Nd.uniform(r, -1, 1, 1, 2, 4, 8).f64().requiresGrad(true);
      Attention.Output o = Attention.forward(q, k, v, Attention.Options.defaults());
      o.lse().fillInPlace(0.0);
      IllegalStateException e =
          assertThrows(IllegalStateException.class, () -> Autograd.grad(o.out().sum(), List.of(q, k, v), false));
      // names the op and the tensor (the lse, by its dtype and shape)
      assertTrue(e.getMessage().contains("backward of 'attention'") && e.getMessage().contains("F64[1, 2, 4]")
              && e.getMessage().contains("modified in place"),
          e.getMessage());
    }
  }

  /** The key lengths live in the options record the rule keeps: named by the field that holds them. */
  @Test
  void attentionKeyLengthsEditedAreNamed() {
    try (Scope s = Scope.open()) {
      Random r = new Random(6);
      Tensor q = Nd.uniform(r, -1, 1, 2, 1, 3, 4).f64().requiresGrad(true);
      Tensor k = Nd.uniform(r, -1, 1, 2, 1, 5, 4).f64();
      Tensor len = Tensor.ofIndices(new long[] {5, 2}, 2);
      Tensor o = Attention.softmax(q, k, k, Attention.Options.defaults().withKeyLengths(len));
      len.copyInPlace(Tensor.ofIndices(new long[] {1, 1}, 2));
      IllegalStateException e =
          assertThrows(IllegalStateException.class, () -> Autograd.grad(o.sum(), List.of(q), false));
      assertTrue(e.getMessage().contains("'lengths'") && e.getMessage().contains("I64[2]"), e.getMessage());
    }
  }

  /** The indices of max(dim), returned to the caller, are read by its backward. */
  @Test
  void maxIndicesEditedAreRefused() {
    try (Scope s = Scope.open()) {
      Tensor x = Tensor.of(new double[] {1, 5, 2, 7, 3, 0}, 2, 3).requiresGrad(true);
      Reductions.ValuesIndices m = x.max(1, false);
      m.indices().fillInPlace(0);
      IllegalStateException e =
          assertThrows(IllegalStateException.class, () -> Autograd.grad(m.values().sum(), List.of(x), false));
      assertTrue(e.getMessage().contains("backward of 'max'"), e.getMessage());
    }
  }
}
