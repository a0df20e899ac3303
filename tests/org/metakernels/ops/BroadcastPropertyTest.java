package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;
import org.metakernels.testing.Ref;

/** Properties over random shapes: broadcasting against loops, expand/sumTo adjointness, view round trips. */
class BroadcastPropertyTest {

  /** A random shape of {@code rank} dims in [1, 6], and a broadcast partner with some dims set to 1 or dropped. */
  static int[][] shapes(long seed, int rank) {
    Random r = new Random(seed);
    int[] a = new int[rank];
    for (int i = 0; i < rank; i++) a[i] = 1 + r.nextInt(6);
    int drop = r.nextInt(rank + 1);
    int[] b = Arrays.copyOfRange(a, drop, rank);
    for (int i = 0; i < b.length; i++) if (r.nextInt(3) == 0) b[i] = 1;
    for (int i = 0; i < a.length; i++) if (r.nextInt(4) == 0) a[i] = 1;
    // where a was set to 1, b may keep its size: still broadcastable
    return r.nextBoolean() ? new int[][] {a, b} : new int[][] {b, a};
  }

  @Property(tries = 150, seed = "20261127")
  void binaryOpsBroadcastLikeLoops(@ForAll long seed, @ForAll @IntRange(min = 0, max = 5) int rank,
      @ForAll boolean f32) {
    DType d = f32 ? DType.F32 : DType.F64;
    int[][] s = shapes(seed, rank);
    Random r = new Random(seed + 1);
    Nd a = Nd.uniform(r, -2, 2, s[0]), b = Nd.uniform(r, 0.5, 2, s[1]);
    if (f32) {
      a = a.roundToFloat();
      b = b.roundToFloat();
    }
    try (Scope sc = Scope.open()) {
      Tensor ta = a.tensor(d), tb = b.tensor(d);
      Ref.assertClose(ta.add(tb), Nd.zip(a, b, Double::sum));
      Ref.assertClose(ta.mul(tb), Nd.zip(a, b, (x, y) -> x * y));
      Ref.assertClose(ta.div(tb), Nd.zip(a, b, (x, y) -> x / y));
      Ref.assertClose(tb.maximum(ta), Nd.zip(b, a, Math::max));
      Ref.assertClose(tb.sub(ta).gt(Tensor.scalar(0, d, org.metakernels.tensor.Device.CPU)),
          Nd.zip(b, a, (x, y) -> x - y > 0 ? 1 : 0));
    }
  }

  @Property(tries = 150, seed = "20261127")
  void expandAndSumToAreAdjoint(@ForAll long seed, @ForAll @IntRange(min = 0, max = 5) int rank) {
    int[][] s = shapes(seed, rank);
    int[] small = s[0].length <= s[1].length ? s[0] : s[1];
    int[] big = Nd.broadcastShape(s[0], s[1]);
    Random r = new Random(seed + 2);
    Nd x = Nd.normal(r, small), y = Nd.normal(r, big);
    try (Scope sc = Scope.open()) {
      Tensor tx = x.f64(), ty = y.f64();
      // <expand(x), y> = <x, sumTo(y)>
      double lhs = tx.expand(Nd.toLong(big)).mul(ty).sum().item();
      double rhs = tx.mul(ty.sumTo(Nd.toLong(small))).sum().item();
      assertEquals(lhs, rhs, 1e-12 * (1 + Math.abs(lhs)) * y.numel());
      Ref.assertShape(ty.sumTo(Nd.toLong(small)), Nd.toLong(small));
    }
  }

  @Property(tries = 100, seed = "20261127")
  void permuteRoundTripsAndReshapeKeepsOrder(@ForAll long seed, @ForAll @IntRange(min = 1, max = 5) int rank) {
    Random r = new Random(seed);
    int[] shape = new int[rank];
    for (int i = 0; i < rank; i++) shape[i] = 1 + r.nextInt(5);
    int[] perm = new int[rank];
    for (int i = 0; i < rank; i++) perm[i] = i;
    for (int i = rank - 1; i > 0; i--) {
      int j = r.nextInt(i + 1);
      int t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    int[] inv = new int[rank];
    for (int i = 0; i < rank; i++) inv[perm[i]] = i;
    Nd x = Nd.normal(r, shape);
    try (Scope sc = Scope.open()) {
      Tensor t = x.f64();
      Tensor p = t.permute(perm);
      Ref.assertClose(p, x.permute(perm), 0, 0);
      Ref.assertClose(p.permute(inv), x, 0, 0);
      Ref.assertClose(p.reshape(-1), x.permute(perm).reshape(x.numel()), 0, 0);
      Ref.assertClose(p.contiguous().permute(inv).contiguous(), x, 0, 0);
    }
  }
}
