package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.fail;
import static org.metakernels.tensor.DType.BF16;
import static org.metakernels.tensor.DType.F16;
import static org.metakernels.tensor.DType.F32;
import static org.metakernels.tensor.DType.F64;
import static org.metakernels.tensor.DType.I64;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.function.BinaryOperator;
import java.util.function.Consumer;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.metakernels.ops.LinearAttention.FeatureMap;
import org.metakernels.ops.LinearAttention.Normalization;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Storage;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;

/**
 * Seeded fuzzing of calls, good and bad, across the public ops (issue 13, "must show" item 2).
 *
 * <p>Each case draws an op and its arguments: random shapes (rank 0-4, sizes 0-5), dtypes (F32,
 * F64, I64, BF16, F16), layouts (contiguous, permuted, narrowed, expanded), freed tensors, dims and
 * indices in and out of range. Generators start from a call that fits and then often break it (a
 * size, a rank, a dtype, an index), so that both sides of every rule are hit. A small validity
 * model per op, written here from the op's Javadoc and not from its code path, decides whether the
 * call is valid. Then:
 * <ul>
 *   <li>a valid call must succeed with the expected output shape and dtype, and, where a reference
 *       is cheap (elementwise, matmul, sums, max/min, softmax, views, concat/stack, casts,
 *       indexing, in-place ops), the values computed here from snapshots of the operands taken
 *       just before the call; its operands must keep their values and versions (in-place ops:
 *       all but the target's storage);</li>
 *   <li>an invalid call must throw {@link MetakernelsException} (or {@link IllegalStateException}
 *       when an operand was freed) whose message starts with the op's name (the library's
 *       convention: "exp: ...", "attention q ...") and contains at least one of the caller's
 *       operand shapes (as {@code Tensor.describe()}, "F64[2, 3]", or as "[2, 3]"), and must
 *       leave every input's values and storage version unchanged;</li>
 *   <li>anything else (success of an invalid call, another exception type, an {@link Error}) is a
 *       failure, reported with the seed, the case number and the call.</li>
 * </ul>
 *
 * <p>Knobs (system properties): {@code metakernels.fuzz.seed} (default {@value #DEFAULT_SEED}),
 * {@code metakernels.fuzz.cases} (default {@value #DEFAULT_CASES}), {@code metakernels.fuzz.case}
 * (replay one case number only), {@code metakernels.fuzz.budgetMs} (wall-clock budget, default
 * 60000: the run stops there and reports how many cases ran). Every case draws from its own
 * generator seeded by (seed, case number), so a case replays alone. The call about to run is
 * written to {@code target/fuzz-last-case.txt} first, so a JVM crash leaves its name behind; all
 * failures go to {@code target/fuzz-failures.txt}.
 *
 * <p>Where an op's rules were unclear the models follow the Javadoc; the defects this test found
 * were fixed, each with a focused test in {@link FuzzFindingsTest}.
 */
class FuzzBadCallsTest {
  static final long DEFAULT_SEED = 20261205L;
  static final int DEFAULT_CASES = 40000;  // ~12 s on the 2-core dev VM when it is quiet
  static final Device CPU = Device.CPU;

  // ============================================================================================
  // the driver

  @Test
  void badCallsAreRejectedCleanlyAndGoodOnesSucceed() throws IOException {
    long seed = Long.getLong("metakernels.fuzz.seed", DEFAULT_SEED);
    int cases = Integer.getInteger("metakernels.fuzz.cases", DEFAULT_CASES);
    int only = Integer.getInteger("metakernels.fuzz.case", -1);
    long budgetMs = Long.getLong("metakernels.fuzz.budgetMs", 60_000L);
    Path last = Path.of("target", "fuzz-last-case.txt");
    boolean writeLast = true;
    try {
      Files.createDirectories(last.getParent());
    } catch (IOException e) {
      writeLast = false;  // a read-only tree: no crash breadcrumb, the rest still runs
    }

    Map<String, int[]> counts = new TreeMap<>();  // op -> {valid, invalid}
    List<String> failures = new ArrayList<>();
    long t0 = System.nanoTime();
    int ran = 0;
    boolean outOfTime = false;
    for (int i = only >= 0 ? only : 0; i < (only >= 0 ? only + 1 : cases); i++) {
      if ((System.nanoTime() - t0) / 1_000_000 > budgetMs) {
        outOfTime = true;
        break;
      }
      try (Scope scope = Scope.open()) {
        G g = new G(caseSeed(seed, i));
        Case c = GENERATORS[g.n(GENERATORS.length)].apply(g);
        String text = c.text(g);
        if (writeLast) {
          try {
            Files.writeString(last, "seed " + seed + " case " + i + ": " + text + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
          } catch (IOException e) {
            writeLast = false;
          }
        }
        counts.computeIfAbsent(c.op, k -> new int[2])[c.valid() ? 0 : 1]++;
        String problem = run(c);
        if (problem != null)
          failures.add("case " + i + ": " + text + "\n    model: "
              + (c.valid() ? "valid" : "invalid " + c.reasons) + "\n    " + problem
              + "\n    replay: -Dmetakernels.fuzz.seed=" + seed + " -Dmetakernels.fuzz.case=" + i);
      }
      ran++;
    }
    double secs = (System.nanoTime() - t0) / 1e9;

    StringBuilder sb = new StringBuilder();
    sb.append(String.format("FuzzBadCallsTest: seed %d, %d cases in %.1f s%s%n", seed, ran, secs,
        outOfTime ? " (stopped at the " + budgetMs + " ms budget, " + cases + " asked)" : ""));
    int nv = 0, ni = 0;
    for (var e : counts.entrySet()) {
      sb.append(String.format("  %-22s valid %6d  invalid %6d%n", e.getKey(), e.getValue()[0], e.getValue()[1]));
      nv += e.getValue()[0];
      ni += e.getValue()[1];
    }
    sb.append(String.format("  %-22s valid %6d  invalid %6d, %d failures%n", "total", nv, ni, failures.size()));
    System.out.print(sb);
    Path all = Path.of("target", "fuzz-failures.txt");
    if (writeLast) Files.deleteIfExists(all);
    if (!failures.isEmpty()) {
      if (writeLast) Files.writeString(all, String.join("\n", failures) + "\n", StandardCharsets.UTF_8);
      StringBuilder f = new StringBuilder(failures.size() + " fuzz failures (seed " + seed
          + "; all of them in target/fuzz-failures.txt):\n");
      for (String s : failures.subList(0, Math.min(40, failures.size()))) f.append(s).append('\n');
      System.out.print(f);
      fail(f.toString());
    }
  }

  static long caseSeed(long seed, int i) {
    long z = seed * 0x9E3779B97F4A7C15L + (i + 1) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** Runs one case; null when it behaved, else what went wrong. */
  static String run(Case c) {
    List<Object> before = new ArrayList<>();
    List<Integer> versions = new ArrayList<>();
    for (Tensor t : c.operands) {
      before.add(snapshot(t));
      versions.add(t.isClosed() ? -1 : t.storage().version());
    }
    c.snap = before.toArray();
    Object result = null;
    Throwable thrown = null;
    try {
      result = c.call.call();
    } catch (Throwable e) {
      thrown = e;
    }
    if (c.valid()) {
      if (thrown != null) return "a valid call was rejected: " + describe(thrown);
      try {
        c.verify.accept(result);
      } catch (AssertionError | RuntimeException e) {
        return "wrong result: " + e.getMessage();
      }
      return unchanged(c, before, versions, true);
    }
    if (thrown == null) return "SILENT ACCEPTANCE: the call returned " + resultText(result);
    if (thrown instanceof Error) return "an Error: " + describe(thrown);
    boolean typeOk = (thrown instanceof MetakernelsException && c.otherReason)
        || (thrown instanceof IllegalStateException && c.freed);
    if (!typeOk)
      return "wrong exception type (expected " + (c.otherReason ? "MetakernelsException" : "")
          + (c.otherReason && c.freed ? " or " : "") + (c.freed ? "IllegalStateException" : "") + "): "
          + describe(thrown);
    String msg = String.valueOf(thrown.getMessage());
    // the library's convention: the message starts with the op ("exp: ...", "attention q F64[...")
    boolean namesOp = c.names.stream().anyMatch(n -> msg.startsWith(n + ":") || msg.startsWith(n + " "));
    boolean namesShape = c.operands.isEmpty()  // concat/stack of no tensors: no shape to name
        || c.operands.stream().anyMatch(t -> msg.contains(t.describe()) || msg.contains(Arrays.toString(t.shape())));
    if (!namesOp || !namesShape)
      return "unclear message (" + (namesOp ? "" : "no op name " + c.names) + (!namesOp && !namesShape ? ", " : "")
          + (namesShape ? "" : "no operand shape") + "): " + describe(thrown);
    return unchanged(c, before, versions, false);
  }

  /** Null when every operand kept its values and version (except what a valid in-place op writes). */
  static String unchanged(Case c, List<Object> before, List<Integer> versions, boolean succeeded) {
    for (int i = 0; i < c.operands.size(); i++) {
      Tensor t = c.operands.get(i);
      if (before.get(i) == null || t.isClosed()) continue;
      if (succeeded && c.written.contains(t.storage())) continue;
      Object after = snapshot(t);
      boolean same = before.get(i) instanceof long[] lb ? Arrays.equals(lb, (long[]) after)
          : Arrays.equals((double[]) before.get(i), (double[]) after);
      if (!same) return (succeeded ? "a valid call" : "a rejected call") + " changed operand " + i + " " + t.describe();
      if (t.storage().version() != versions.get(i))
        return (succeeded ? "a valid call" : "a rejected call") + " bumped the version of operand " + i + " "
            + t.describe();
    }
    return null;
  }

  static Object snapshot(Tensor t) {
    if (t.isClosed()) return null;
    return t.dtype() == I64 ? (Object) t.toLongArray() : (Object) t.toDoubleArray();
  }

  static String describe(Throwable e) {
    StackTraceElement[] st = e.getStackTrace();
    String at = st.length > 0 ? " at " + st[0] : "";
    return e.getClass().getSimpleName() + ": " + e.getMessage() + at;
  }

  static String resultText(Object r) {
    if (r instanceof Tensor t) return t.describe();
    if (r instanceof Reductions.ValuesIndices vi) return "values " + vi.values().describe() + ", indices "
        + vi.indices().describe();
    if (r instanceof Attention.Output o) return "out " + o.out().describe() + ", lse " + o.lse().describe();
    return String.valueOf(r);
  }

  // ============================================================================================
  // a case: the call, its operands, and what the model says about it

  static final class Case {
    final String op;
    /** Names the message may use for the op: its own, and a documented alias where there is one. */
    final List<String> names = new ArrayList<>();
    final List<Tensor> operands = new ArrayList<>();
    final List<Object> args = new ArrayList<>();  // Tensor or text, in call order
    /** Why the model calls this invalid; empty when valid. */
    final List<String> reasons = new ArrayList<>();
    boolean freed, otherReason;
    /** Storages a valid call writes (in-place ops). */
    final Set<Storage> written = new HashSet<>();
    Callable<Object> call;
    /** Checks a valid call's result: shape and dtype, and values where a reference is cheap. */
    Consumer<Object> verify = r -> { };
    /** The operands' values just before the call (null for freed ones), for the references. */
    Object[] snap;

    Case(String op, String... aliases) {
      this.op = op;
      names.add(op);
      names.addAll(List.of(aliases));
    }

    /** Registers an operand: its shape is one the message may name; a freed one is a reason. */
    Tensor in(String role, Tensor t) {
      operands.add(t);
      args.add(new Object[] {role, t});
      if (t.isClosed()) {
        freed = true;
        reasons.add(role + " freed");
      }
      return t;
    }

    void arg(String text) {
      args.add(text);
    }

    void invalidIf(boolean cond, String reason) {
      if (cond) {
        reasons.add(reason);
        otherReason = true;
      }
    }

    boolean valid() {
      return reasons.isEmpty();
    }

    String text(G g) {
      StringBuilder sb = new StringBuilder(op).append('(');
      for (int i = 0; i < args.size(); i++) {
        if (i > 0) sb.append(", ");
        Object a = args.get(i);
        if (a instanceof Object[] rt) {
          Tensor t = (Tensor) rt[1];
          sb.append(rt[0]).append('=').append(t.describe()).append(g.tags.getOrDefault(t, ""));
          if (!t.isClosed() && t.numel() <= 8 && t.dtype() == I64) sb.append(Arrays.toString(t.toLongArray()));
        } else sb.append(a);
      }
      return sb.append(')').toString();
    }
  }

  // ============================================================================================
  // random arguments

  static final class G {
    final Random r;
    final IdentityHashMap<Tensor, String> tags = new IdentityHashMap<>();

    G(long seed) {
      r = new Random(seed);
    }

    boolean p(double prob) {
      return r.nextDouble() < prob;
    }

    int n(int bound) {
      return r.nextInt(bound);
    }

    @SafeVarargs
    final <T> T pick(T... xs) {
      return xs[r.nextInt(xs.length)];
    }

    long size() {
      int x = n(100);
      return x < 8 ? 0 : x < 30 ? 1 : 2 + n(4);
    }

    int rank() {
      int x = n(100);
      return x < 10 ? 0 : x < 35 ? 1 : x < 65 ? 2 : x < 85 ? 3 : 4;
    }

    long[] shape(int rank) {
      long[] s = new long[rank];
      for (int i = 0; i < rank; i++) s[i] = size();
      return s;
    }

    long[] shape() {
      return shape(rank());
    }

    DType dtype() {
      int x = n(100);
      return x < 45 ? F64 : x < 78 ? F32 : x < 88 ? I64 : x < 94 ? BF16 : F16;
    }

    DType floatType() {
      return p(0.55) ? F64 : F32;
    }

    /** Mostly F32/F64 (an arithmetic op's types), sometimes anything. */
    DType arithType() {
      return p(0.85) ? floatType() : dtype();
    }

    /** Mostly {@code t}, sometimes another dtype. */
    DType like(DType t) {
      return p(0.88) ? t : dtype();
    }

    /** A dim, mostly in [-rank, rank). */
    int dim(int rank) {
      if (rank > 0 && p(0.82)) return n(2 * rank) - rank;
      return pick(rank, -rank - 1, rank + 1, -rank - 2, 8, -9, Integer.MAX_VALUE, Integer.MIN_VALUE);
    }

    /** A shape broadcastable with {@code a}: leading dims dropped, some dims set to 1; sometimes swapped roles. */
    long[] partner(long[] a) {
      int drop = n(a.length + 1);
      long[] b = Arrays.copyOfRange(a, drop, a.length);
      for (int i = 0; i < b.length; i++) if (p(0.3)) b[i] = 1;
      if (p(0.2)) {  // extra leading dims on this side
        long[] lead = shape(n(2) + 1);
        b = cat(lead, b);
      }
      return b;
    }

    /** {@code s} with one thing changed: a size, an added or a dropped dim. */
    long[] mutate(long[] s) {
      int k = n(3);
      if (k == 0 && s.length > 0) {
        long[] m = s.clone();
        int i = n(s.length);
        m[i] = m[i] == 0 ? 1 + n(3) : m[i] + pick(1L, -1L, 2L);
        return m;
      }
      if (k == 1 && s.length > 0) {
        int i = n(s.length);
        long[] m = new long[s.length - 1];
        for (int a = 0, b = 0; a < s.length; a++) if (a != i) m[b++] = s[a];
        return m;
      }
      int i = n(s.length + 1);
      long[] m = new long[s.length + 1];
      for (int a = 0, b = 0; a < m.length; a++) m[a] = a == i ? 1 + n(3) : s[b++];
      return m;
    }

    /** A contiguous tensor with random values (I64: small integers). */
    Tensor fresh(long[] shape, DType t) {
      if (t == I64) {
        long[] v = new long[(int) numel(shape)];
        for (int i = 0; i < v.length; i++) v[i] = n(7) - 1;
        return Tensor.ofIndices(v, shape);
      }
      return Tensor.randn(shape, t, CPU, r.nextLong());
    }

    Tensor tensor(long[] shape, DType t) {
      return tensor(shape, t, 0.025, 0.08);
    }

    /**
     * A tensor of {@code shape} and {@code t} in a random layout: contiguous, permuted, narrowed
     * out of a bigger one, or expanded from size-1 dims (so some elements are reached by several
     * indices); freed with probability {@code pFreed}.
     */
    Tensor tensor(long[] shape, DType t, double pFreed, double pExpanded) {
      Tensor x;
      String tag = "";
      double lay = r.nextDouble();
      int rank = shape.length;
      if (lay < pExpanded && Arrays.stream(shape).anyMatch(d -> d != 1)) {
        long[] base = shape.clone();
        boolean any = false;
        for (int i = 0; i < rank; i++)
          if (shape[i] != 1 && (p(0.5) || (!any && i == rank - 1))) {
            base[i] = 1;
            any = true;
          }
        if (!any) for (int i = 0; i < rank; i++) if (shape[i] != 1) {
          base[i] = 1;
          break;
        }
        int drop = 0;
        while (drop < rank && base[drop] == 1 && p(0.4)) drop++;
        base = Arrays.copyOfRange(base, drop, rank);
        x = fresh(base, t).expand(shape);
        tag = " (expanded from " + Arrays.toString(base) + ")";
      } else if (lay < 0.25 && rank >= 2) {
        int[] q = permutation(rank);
        long[] bs = new long[rank];
        for (int i = 0; i < rank; i++) bs[q[i]] = shape[i];
        x = fresh(bs, t).permute(q);
        tag = " (permute " + Arrays.toString(q) + " of " + Arrays.toString(bs) + ")";
      } else if (lay < 0.38 && rank >= 1) {
        int d = n(rank);
        long[] bs = shape.clone();
        bs[d] += 1 + n(2);
        long start = n((int) (bs[d] - shape[d]) + 1);
        x = fresh(bs, t).narrow(d, start, shape[d]);
        tag = " (narrow " + d + ", " + start + " of " + Arrays.toString(bs) + ")";
      } else {
        x = fresh(shape, t);
      }
      if (p(pFreed)) {
        x.close();
        tag += " (freed)";
      }
      tags.put(x, tag);
      return x;
    }

    /** An I64 tensor of positions mostly in [0, n), sometimes one outside. */
    Tensor index(long[] shape, long n) {
      long[] v = new long[(int) numel(shape)];
      for (int i = 0; i < v.length; i++) v[i] = n > 0 ? (long) this.n((int) Math.min(n, 1 << 20)) : 0;
      if (v.length > 0 && p(0.2)) v[this.n(v.length)] = pick(n, -1L, n + 3, Long.MAX_VALUE, Long.MIN_VALUE);
      Tensor base = Tensor.ofIndices(v, shape);
      Tensor x = base;
      String tag = "";
      if (shape.length >= 2 && p(0.15)) {  // a non-contiguous index tensor with the same values
        x = base.mT().contiguous().mT();
        tag = " (transposed layout)";
      }
      if (p(0.02)) {
        x.close();
        tag += " (freed)";
      }
      tags.put(x, tag);
      return x;
    }

    /** Mostly an index tensor, sometimes another dtype. */
    Tensor indexOrNot(long[] shape, long n) {
      return p(0.9) ? index(shape, n) : tensor(shape, pick(F64, F32, BF16));
    }

    int[] permutation(int r) {
      int[] q = new int[r];
      for (int i = 0; i < r; i++) q[i] = i;
      for (int i = r - 1; i > 0; i--) {
        int j = n(i + 1), t = q[i];
        q[i] = q[j];
        q[j] = t;
      }
      return q;
    }
  }

  // ============================================================================================
  // shared pieces of the models

  static boolean arith(DType t) {
    return t == F32 || t == F64;
  }

  static boolean floatingPoint(DType t) {
    return t != I64;
  }

  static long numel(long[] s) {
    long n = 1;
    for (long d : s) n *= d;
    return n;
  }

  static long[] cat(long[] a, long... b) {
    long[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  /** NumPy broadcasting, or null. */
  static long[] bcast(long[] a, long[] b) {
    int r = Math.max(a.length, b.length);
    long[] out = new long[r];
    for (int i = 0; i < r; i++) {
      long x = i < r - a.length ? 1 : a[i - (r - a.length)];
      long y = i < r - b.length ? 1 : b[i - (r - b.length)];
      if (x != y && x != 1 && y != 1) return null;
      out[i] = x == 1 ? y : x;
    }
    return out;
  }

  /** {@code dim} in [0, rank), or -1 when out of range (always for rank 0). */
  static int norm(int dim, int rank) {
    long d = dim < 0 ? (long) dim + rank : dim;
    return d < 0 || d >= rank ? -1 : (int) d;
  }

  /** Whether some element of {@code t} is reached by two indices (counted, not reasoned). */
  static boolean reachesTwice(Tensor t) {
    long[] s = t.shape(), st = t.strides();
    long n = numel(s);
    Set<Long> seen = new HashSet<>();
    long[] idx = new long[s.length];
    for (long k = 0; k < n; k++) {
      long off = 0;
      for (int i = 0; i < s.length; i++) off += idx[i] * st[i];
      if (!seen.add(off)) return true;
      for (int i = s.length - 1; i >= 0; i--) {
        if (++idx[i] < s[i]) break;
        idx[i] = 0;
      }
    }
    return false;
  }

  static long[] reduced(long[] s, boolean[] red, boolean keep) {
    List<Long> out = new ArrayList<>();
    for (int i = 0; i < s.length; i++) {
      if (!red[i]) out.add(s[i]);
      else if (keep) out.add(1L);
    }
    return out.stream().mapToLong(Long::longValue).toArray();
  }

  static void expect(Object r, long[] shape, DType t) {
    Tensor y = (Tensor) r;
    if (!Arrays.equals(y.shape(), shape) || y.dtype() != t)
      throw new AssertionError("result " + y.describe() + ", expected " + t + Arrays.toString(shape));
  }

  /** {@code v} (row-major over {@code from}) broadcast to {@code to}, row-major. */
  static double[] broadcastValues(double[] v, long[] from, long[] to) {
    int n = (int) numel(to);
    double[] out = new double[n];
    long[] idx = new long[to.length];
    int off = to.length - from.length;
    for (int k = 0; k < n; k++) {
      long src = 0;
      for (int i = 0; i < from.length; i++) src = src * from[i] + (from[i] == 1 ? 0 : idx[i + off]);
      out[k] = v[(int) src];
      for (int i = to.length - 1; i >= 0; i--) {
        if (++idx[i] < to[i]) break;
        idx[i] = 0;
      }
    }
    return out;
  }

  static void expectValues(Tensor t, double[] want, String what) {
    double[] got = t.toDoubleArray();
    double tol = t.dtype() == F64 ? 1e-12 : t.dtype() == F32 ? 1e-6 : 1e-2;
    for (int i = 0; i < want.length; i++) {
      double w = want[i], x = got[i];
      if (Double.isNaN(w) && Double.isNaN(x)) continue;
      if (!(Math.abs(x - w) <= tol * (1 + Math.abs(w))))
        throw new AssertionError(what + ": element " + i + " of " + t.describe() + " is " + x + ", expected " + w
            + " (got " + Arrays.toString(got) + ", expected " + Arrays.toString(want) + ")");
    }
  }

  // ---- reference values of valid calls, from the operands' snapshots ----------------------------

  static int[] ints(long[] s) {
    int[] r = new int[s.length];
    for (int i = 0; i < s.length; i++) r[i] = Math.toIntExact(s[i]);
    return r;
  }

  /** The values operand {@code t} held just before the call. */
  static Nd nd(Case c, Tensor t) {
    for (int i = 0; i < c.operands.size(); i++)
      if (c.operands.get(i) == t) {
        Object s = c.snap[i];
        double[] d = s instanceof long[] l ? Arrays.stream(l).asDoubleStream().toArray() : (double[]) s;
        return new Nd(d, ints(t.shape()));
      }
    throw new AssertionError("not an operand: " + t.describe());
  }

  /** Relative tolerance of an op of a few roundings in {@code t}. */
  static double rtol(DType t) {
    return t == F64 ? 1e-12 : t == F32 ? 1e-5 : 1e-2;
  }

  static double atol(DType t) {
    return t == F64 ? 1e-13 : t == F32 ? 1e-6 : 1e-3;
  }

  /**
   * |got − want| ≤ atol + rtol·(|want| + scale) elementwise (scale: the sum of the absolute terms of
   * a sum, or null); exact when both tolerances are 0. NaN matches NaN, and infinities match.
   */
  static void values(Object r, Nd want, double rtol, double atol, double[] scale, String what) {
    Tensor y = (Tensor) r;
    double[] got = y.toDoubleArray();
    for (int i = 0; i < got.length; i++) {
      double w = want.data[i], x = got[i];
      if (x == w || (Double.isNaN(x) && Double.isNaN(w))) continue;
      double tol = atol + rtol * (Math.abs(w) + (scale == null ? 0 : scale[i]));
      if (!(Math.abs(x - w) <= tol))
        throw new AssertionError(what + ": element " + i + " of " + y.describe() + " is " + x + ", expected " + w
            + " (tol " + tol + ")");
    }
  }

  static void exact(Object r, Nd want, String what) {
    values(r, want, 0, 0, null, what);
  }

  /** Normalised, sorted dims (all of them for null). */
  static int[] normDims(int[] dims, int rank) {
    if (dims == null) {
      int[] all = new int[rank];
      for (int i = 0; i < rank; i++) all[i] = i;
      return all;
    }
    return Arrays.stream(dims).map(d -> norm(d, rank)).sorted().toArray();
  }

  static final Map<String, DoubleUnaryOperator> UNARY_REF = new LinkedHashMap<>();

  static {
    double k = Math.sqrt(2.0 / Math.PI);
    UNARY_REF.put("neg", v -> -v);
    UNARY_REF.put("exp", Math::exp);
    UNARY_REF.put("log", Math::log);
    UNARY_REF.put("log1p", Math::log1p);
    UNARY_REF.put("tanh", Math::tanh);
    UNARY_REF.put("sigmoid", v -> 1 / (1 + Math.exp(-v)));
    UNARY_REF.put("softplus", v -> Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))));
    UNARY_REF.put("relu", v -> Math.max(v, 0));
    UNARY_REF.put("gelu", v -> 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v * v * v))));
    UNARY_REF.put("elu1", v -> v > 0 ? v + 1 : Math.exp(v));
    UNARY_REF.put("sqrt", Math::sqrt);
    UNARY_REF.put("rsqrt", v -> 1 / Math.sqrt(v));
    UNARY_REF.put("square", v -> v * v);
    UNARY_REF.put("abs", Math::abs);
    UNARY_REF.put("sign", Math::signum);
    UNARY_REF.put("reciprocal", v -> 1 / v);
    UNARY_REF.put("cos", Math::cos);
    UNARY_REF.put("sin", Math::sin);
  }

  static DoubleBinaryOperator binaryRef(String name) {
    return switch (name) {
      case "add" -> (a, b) -> a + b;
      case "sub" -> (a, b) -> a - b;
      case "mul" -> (a, b) -> a * b;
      case "div" -> (a, b) -> a / b;
      case "pow" -> Math::pow;
      case "maximum" -> Math::max;
      case "minimum" -> Math::min;
      case "eq" -> (a, b) -> a == b ? 1 : 0;
      case "ne" -> (a, b) -> a != b ? 1 : 0;
      case "lt" -> (a, b) -> a < b ? 1 : 0;
      case "le" -> (a, b) -> a <= b ? 1 : 0;
      case "gt" -> (a, b) -> a > b ? 1 : 0;
      default -> (a, b) -> a >= b ? 1 : 0;
    };
  }

  /** NumPy matmul of the snapshots, and the sums of |a·b| (the rounding scale). */
  static Nd[] matmulRef(Nd a, Nd b, long[] outShape) {
    int[] A = a.rank() == 1 ? new int[] {1, a.shape[0]} : a.shape, B = b.rank() == 1 ? new int[] {b.shape[0], 1} : b.shape;
    int m = A[A.length - 2], k = A[A.length - 1], n = B[B.length - 1];
    int[] batch = Nd.broadcastShape(Arrays.copyOf(A, A.length - 2), Arrays.copyOf(B, B.length - 2));
    int[] fa = Arrays.copyOf(batch, batch.length + 2), fb = Arrays.copyOf(batch, batch.length + 2);
    fa[batch.length] = m;
    fa[batch.length + 1] = k;
    fb[batch.length] = k;
    fb[batch.length + 1] = n;
    Nd ea = a.reshape(A).expand(fa), eb = b.reshape(B).expand(fb);
    int nb = Nd.numel(batch);
    double[] out = new double[nb * m * n], scale = new double[out.length];
    for (int p = 0; p < nb; p++)
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
          double s = 0, sa = 0;
          for (int q = 0; q < k; q++) {
            double t = ea.data[(p * m + i) * k + q] * eb.data[(p * k + q) * n + j];
            s += t;
            sa += Math.abs(t);
          }
          out[(p * m + i) * n + j] = s;
          scale[(p * m + i) * n + j] = sa;
        }
    int[] os = ints(outShape);
    return new Nd[] {new Nd(out, os), new Nd(scale, os)};
  }

  /** The element of {@code x} at {@code idx} with dim {@code d} replaced by {@code at}. */
  static int offsetWith(int[] shape, int[] idx, int d, long at) {
    int off = 0;
    for (int i = 0; i < shape.length; i++) off = off * shape[i] + (i == d ? (int) at : idx[i]);
    return off;
  }

  // ============================================================================================
  // the generators: each builds a call and runs the op's validity model on the actual arguments

  static final Map<String, Function<Tensor, Tensor>> UNARY = new LinkedHashMap<>();
  static final Map<String, BinaryOperator<Tensor>> BINARY = new LinkedHashMap<>();

  static {
    UNARY.put("neg", Tensor::neg);
    UNARY.put("exp", Tensor::exp);
    UNARY.put("log", Tensor::log);
    UNARY.put("log1p", Tensor::log1p);
    UNARY.put("tanh", Tensor::tanh);
    UNARY.put("sigmoid", Tensor::sigmoid);
    UNARY.put("softplus", Tensor::softplus);
    UNARY.put("relu", Tensor::relu);
    UNARY.put("gelu", Tensor::gelu);
    UNARY.put("elu1", Tensor::elu1);
    UNARY.put("sqrt", Tensor::sqrt);
    UNARY.put("rsqrt", Tensor::rsqrt);
    UNARY.put("square", Tensor::square);
    UNARY.put("abs", Tensor::abs);
    UNARY.put("sign", Tensor::sign);
    UNARY.put("reciprocal", Tensor::reciprocal);
    UNARY.put("cos", Tensor::cos);
    UNARY.put("sin", Tensor::sin);
    BINARY.put("add", Tensor::add);
    BINARY.put("sub", Tensor::sub);
    BINARY.put("mul", Tensor::mul);
    BINARY.put("div", Tensor::div);
    BINARY.put("pow", Tensor::pow);
    BINARY.put("maximum", Tensor::maximum);
    BINARY.put("minimum", Tensor::minimum);
    BINARY.put("eq", Tensor::eq);
    BINARY.put("ne", Tensor::ne);
    BINARY.put("lt", Tensor::lt);
    BINARY.put("le", Tensor::le);
    BINARY.put("gt", Tensor::gt);
    BINARY.put("ge", Tensor::ge);
  }

  // ---- elementwise ----------------------------------------------------------------------------

  /** Unary ops: F32/F64 only (DType: "every other op refuses" BF16/F16; I64 takes part in no arithmetic). */
  static Case unary(G g) {
    String name = g.pick(UNARY.keySet().toArray(new String[0]));
    Case c = new Case(name);
    Tensor x = c.in("x", g.tensor(g.shape(), g.dtype()));
    c.invalidIf(!arith(x.dtype()), "dtype not F32/F64");
    c.call = () -> UNARY.get(name).apply(x);
    c.verify = y -> {
      expect(y, x.shape(), x.dtype());
      values(y, nd(c, x).map(UNARY_REF.get(name)), rtol(x.dtype()), atol(x.dtype()), null, name);
    };
    return c;
  }

  /** Scalar forms: add/sub/mul/div/rsub/pow by a double, clamps, comparisons with a scalar. */
  static Case scalar(G g) {
    String name = g.pick("add", "sub", "mul", "div", "rsub", "pow", "clampMin", "clampMax", "gt", "lt");
    Case c = new Case(name);
    Tensor x = c.in("x", g.tensor(g.shape(), g.dtype()));
    double v = g.pick(0.0, 1.0, 2.0, -1.5, 0.5, 3.0);
    c.arg(String.valueOf(v));
    c.invalidIf(!arith(x.dtype()), "dtype not F32/F64");
    c.call = () -> switch (name) {
      case "add" -> x.add(v);
      case "sub" -> x.sub(v);
      case "mul" -> x.mul(v);
      case "div" -> x.div(v);
      case "rsub" -> x.rsub(v);
      case "pow" -> x.pow(v);
      case "clampMin" -> x.clampMin(v);
      case "clampMax" -> x.clampMax(v);
      case "gt" -> x.gt(v);
      default -> x.lt(v);
    };
    DoubleUnaryOperator f = switch (name) {
      case "add" -> a -> a + v;
      case "sub" -> a -> a - v;
      case "mul" -> a -> a * v;
      case "div" -> a -> a * (1.0 / v);
      case "rsub" -> a -> v - a;
      case "pow" -> a -> v == 2 ? a * a : v == 1 ? a : Math.pow(a, v);
      case "clampMin" -> a -> Math.max(a, v);
      case "clampMax" -> a -> Math.min(a, v);
      case "gt" -> a -> a > v ? 1 : 0;
      default -> a -> a < v ? 1 : 0;
    };
    c.verify = y -> {
      expect(y, x.shape(), x.dtype());
      values(y, nd(c, x).map(f), rtol(x.dtype()), atol(x.dtype()), null, name + " " + v);
    };
    return c;
  }

  /** Binary ops: one dtype, F32/F64, NumPy broadcasting. */
  static Case binary(G g) {
    String name = g.pick(BINARY.keySet().toArray(new String[0]));
    Case c = new Case(name);
    DType t = g.arithType();
    long[] sa = g.shape();
    long[] sb = g.p(0.75) ? g.partner(sa) : g.shape();
    if (g.p(0.5)) {
      long[] tmp = sa;
      sa = sb;
      sb = tmp;
    }
    Tensor a = c.in("a", g.tensor(sa, t)), b = c.in("b", g.tensor(sb, g.like(t)));
    c.invalidIf(!arith(a.dtype()) || !arith(b.dtype()), "dtype not F32/F64");
    c.invalidIf(a.dtype() != b.dtype(), "dtypes differ");
    long[] out = bcast(a.shape(), b.shape());
    c.invalidIf(out == null, "shapes do not broadcast");
    c.call = () -> BINARY.get(name).apply(a, b);
    c.verify = y -> {
      expect(y, out, a.dtype());
      values(y, Nd.zip(nd(c, a), nd(c, b), binaryRef(name)), rtol(a.dtype()), atol(a.dtype()), null, name);
    };
    return c;
  }

  /** where(cond, a, b): cond has a's dtype; all three broadcast. */
  static Case where(G g) {
    Case c = new Case("where");
    DType t = g.arithType();
    long[] s = g.shape();
    Tensor cond = c.in("cond", g.tensor(g.p(0.8) ? g.partner(s) : g.shape(), g.like(t)));
    Tensor a = c.in("a", g.tensor(g.p(0.8) ? g.partner(s) : g.shape(), t));
    Tensor b = c.in("b", g.tensor(g.p(0.8) ? g.partner(s) : g.shape(), g.like(t)));
    c.invalidIf(!arith(a.dtype()), "dtype not F32/F64");
    c.invalidIf(cond.dtype() != a.dtype() || b.dtype() != a.dtype(), "dtypes differ");
    long[] ab = bcast(cond.shape(), a.shape());
    long[] out = ab == null ? null : bcast(ab, b.shape());
    c.invalidIf(out == null, "shapes do not broadcast");
    c.call = () -> Tensor.where(cond, a, b);
    c.verify = y -> {
      expect(y, out, a.dtype());
      exact(y, Nd.where(nd(c, cond), nd(c, a), nd(c, b)), "where");
    };
    return c;
  }

  // ---- matmul, linear -------------------------------------------------------------------------

  /** matmul: [..., m, k] x [..., k, n]; 1-d operands are a row / a column; rank 0 refused. */
  static Case matmul(G g) {
    Case c = new Case("matmul");
    int ra = 1 + g.n(4), rb = 1 + g.n(4);
    long m = g.size(), k = g.size(), n = g.size();
    long[] batchA = g.shape(Math.max(0, ra - 2));
    long[] batchB = g.p(0.7) ? g.partner(batchA) : g.shape(Math.max(0, rb - 2));
    if (rb >= 2 && batchB.length > rb - 2) batchB = Arrays.copyOfRange(batchB, batchB.length - (rb - 2), batchB.length);
    long[] sa = ra == 1 ? new long[] {k} : cat(batchA, m, k);
    long[] sb = rb == 1 ? new long[] {k} : cat(rb == 2 ? new long[0] : batchB, k, n);
    if (g.p(0.35)) {
      if (g.p(0.5)) sa = g.mutate(sa);
      else sb = g.mutate(sb);
    }
    if (g.p(0.04)) sa = new long[0];
    if (g.p(0.04)) sb = new long[0];
    DType t = g.arithType();
    Tensor a = c.in("a", g.tensor(sa, t)), b = c.in("b", g.tensor(sb, g.like(t)));
    c.invalidIf(!arith(a.dtype()) || !arith(b.dtype()), "dtype not F32/F64");
    c.invalidIf(a.dtype() != b.dtype(), "dtypes differ");
    long[] out = null;
    if (sa.length == 0 || sb.length == 0) c.invalidIf(true, "a scalar operand");
    else {
      long[] A = sa.length == 1 ? new long[] {1, sa[0]} : sa, B = sb.length == 1 ? new long[] {sb[0], 1} : sb;
      long[] batch = bcast(Arrays.copyOf(A, A.length - 2), Arrays.copyOf(B, B.length - 2));
      c.invalidIf(A[A.length - 1] != B[B.length - 2], "inner dims differ");
      c.invalidIf(batch == null, "batch dims do not broadcast");
      if (batch != null) {
        out = batch;
        if (sa.length > 1) out = cat(out, A[A.length - 2]);
        if (sb.length > 1) out = cat(out, B[B.length - 1]);
      }
    }
    long[] o = out;
    c.call = () -> a.matmul(b);
    c.verify = y -> {
      expect(y, o, a.dtype());
      Nd[] ref = matmulRef(nd(c, a), nd(c, b), o);
      values(y, ref[0], rtol(a.dtype()), atol(a.dtype()), ref[1].data, "matmul");
    };
    return c;
  }

  /** linear(x, w, b): x [..., in], w [out, in], b [out] or null (Javadoc), one dtype F32/F64. */
  static Case linear(G g) {
    Case c = new Case("linear");
    long in = g.size(), outF = g.size();
    long[] sx = cat(g.shape(g.n(3)), in);
    long[] sw = {outF, in};
    long[] sbias = g.p(0.3) ? null : new long[] {outF};
    int mut = g.p(0.4) ? g.n(3) : -1;
    if (mut == 0) sx = g.mutate(sx);
    if (mut == 1) sw = g.mutate(sw);
    if (mut == 2) sbias = g.pick(g.mutate(new long[] {outF}), new long[] {1}, new long[] {1, outF}, new long[0]);
    DType t = g.arithType();
    Tensor x = c.in("x", g.tensor(sx, t)), w = c.in("weight", g.tensor(sw, g.like(t)));
    Tensor bias = sbias == null ? null : c.in("bias", g.tensor(sbias, g.like(t)));
    if (bias == null) c.arg("bias=null");
    c.invalidIf(!arith(x.dtype()) || !arith(w.dtype()), "dtype not F32/F64");
    c.invalidIf(w.dtype() != x.dtype() || (bias != null && bias.dtype() != x.dtype()), "dtypes differ");
    c.invalidIf(sx.length == 0, "x is a scalar");
    c.invalidIf(sw.length != 2, "weight not 2-d");
    c.invalidIf(sx.length > 0 && sw.length == 2 && sx[sx.length - 1] != sw[1], "in features differ");
    c.invalidIf(bias != null && (sbias.length != 1 || sw.length != 2 || sbias[0] != sw[0]), "bias not [out]");
    long[] out = sx.length == 0 || sw.length != 2 ? null : cat(Arrays.copyOf(sx, sx.length - 1), sw[0]);
    c.call = () -> Functional.linear(x, w, bias);
    c.verify = y -> expect(y, out, x.dtype());
    return c;
  }

  // ---- reductions -----------------------------------------------------------------------------

  static int[] dims(G g, int rank) {
    int n = g.p(0.05) ? 0 : 1 + g.n(Math.max(1, Math.min(3, rank)));
    int[] d = new int[n];
    for (int i = 0; i < n; i++) d[i] = g.dim(rank);
    if (n >= 2 && g.p(0.15)) d[1] = d[0];
    if (n >= 2 && g.p(0.1) && rank > 0) d[1] = d[0] - rank;  // the same dim, counted from the end
    return d;
  }

  /** The reduced dims as a mask, or null (with a reason) when a dim is out of range or repeated. */
  static boolean[] reducedMask(Case c, int[] dims, int rank) {
    boolean[] red = new boolean[rank];
    if (dims == null) {
      Arrays.fill(red, true);
      return red;
    }
    for (int d : dims) {
      int n = norm(d, rank);
      if (n < 0) {
        c.invalidIf(true, "dim " + d + " out of range");
        return null;
      }
      if (red[n]) {
        c.invalidIf(true, "dim " + d + " repeated");
        return null;
      }
      red[n] = true;
    }
    return red;
  }

  /** sum / mean over dims (null: all), var, max/min over a dim and over all, logsumexp, softmax, logSoftmax. */
  static Case reduction(G g) {
    String name = g.pick("sum", "sum", "mean", "mean", "var", "max", "min", "maxAll", "logsumexp", "softmax",
        "logSoftmax");
    Case c = new Case(name.equals("maxAll") ? "max" : name);
    long[] s = g.shape();
    Tensor x = c.in("x", g.tensor(s, g.arithType()));
    c.invalidIf(!arith(x.dtype()), "dtype not F32/F64");
    int r = s.length;
    boolean keep = g.p(0.5);
    switch (name) {
      case "sum", "mean" -> {
        int[] dims = g.p(0.15) ? null : dims(g, r);
        c.arg("dims=" + Arrays.toString(dims));
        c.arg("keepDim=" + keep);
        boolean[] red = reducedMask(c, dims, r);
        long count = 1;
        if (red != null) for (int i = 0; i < r; i++) if (red[i]) count *= s[i];
        c.invalidIf(name.equals("mean") && red != null && count == 0, "mean of an empty reduction");
        long[] out = red == null ? null : reduced(s, red, keep);
        c.call = () -> name.equals("sum") ? x.sum(dims, keep) : x.mean(dims, keep);
        c.verify = y -> {
          expect(y, out, x.dtype());
          int[] nd = normDims(dims, r);
          Nd xs = nd(c, x);
          Nd want = xs.reduce(nd, keep, name.equals("sum") ? Nd::sum : Nd::mean);
          Nd scale = xs.map(Math::abs).reduce(nd, keep, name.equals("sum") ? Nd::sum : Nd::mean);
          values(y, want, rtol(x.dtype()), atol(x.dtype()), scale.data, name);
        };
      }
      case "var" -> {
        int dim = g.dim(r);
        boolean unbiased = g.p(0.5);
        c.arg("dim=" + dim);
        c.arg("keepDim=" + keep);
        c.arg("unbiased=" + unbiased);
        int d = norm(dim, r);
        c.invalidIf(d < 0, "dim out of range");
        c.invalidIf(d >= 0 && s[d] - (unbiased ? 1 : 0) <= 0, "dim too short");
        boolean[] red = new boolean[r];
        if (d >= 0) red[d] = true;
        long[] out = reduced(s, red, keep);
        c.call = () -> x.var(dim, keep, unbiased);
        c.verify = y -> {
          expect(y, out, x.dtype());
          Nd want = nd(c, x).reduce(new int[] {d}, keep, v -> Nd.var(v, unbiased));
          values(y, want, 1e3 * rtol(x.dtype()), atol(x.dtype()), null, "var");
        };
      }
      case "max", "min", "logsumexp" -> {
        int dim = g.dim(r);
        c.arg("dim=" + dim);
        c.arg("keepDim=" + keep);
        int d = norm(dim, r);
        c.invalidIf(d < 0, "dim out of range");
        c.invalidIf(d >= 0 && s[d] == 0, "empty dim");
        boolean[] red = new boolean[r];
        if (d >= 0) red[d] = true;
        long[] out = reduced(s, red, keep);
        if (name.equals("logsumexp")) {
          c.call = () -> x.logsumexp(dim, keep);
          c.verify = y -> {
            expect(y, out, x.dtype());
            values(y, nd(c, x).reduce(new int[] {d}, keep, Nd::logsumexp), rtol(x.dtype()), atol(x.dtype()), null,
                "logsumexp");
          };
        } else {
          boolean max = name.equals("max");
          c.call = () -> max ? x.max(dim, keep) : x.min(dim, keep);
          c.verify = y -> {
            var vi = (Reductions.ValuesIndices) y;
            expect(vi.values(), out, x.dtype());
            expect(vi.indices(), out, I64);
            Nd xs = nd(c, x);
            exact(vi.values(), xs.reduce(new int[] {d}, keep, max ? Nd::max : Nd::min), name + " values");
            exact(vi.indices(), xs.reduce(new int[] {d}, keep, max ? Nd::argmax : Nd::argmin), name + " indices");
          };
        }
      }
      case "maxAll" -> {
        c.invalidIf(numel(s) == 0, "empty tensor");
        c.call = x::max;
        c.verify = y -> {
          expect(y, new long[0], x.dtype());
          exact(y, new Nd(new double[] {Nd.max(nd(c, x).data)}), "max()");
        };
      }
      default -> {  // softmax, logSoftmax
        int dim = g.dim(r);
        c.arg("dim=" + dim);
        c.invalidIf(norm(dim, r) < 0, "dim out of range (or rank 0)");
        boolean log = name.equals("logSoftmax");
        c.call = () -> log ? x.logSoftmax(dim) : x.softmax(dim);
        c.verify = y -> {
          expect(y, s, x.dtype());
          Nd want = nd(c, x).alongDim(norm(dim, r), v -> {
            double lse = Nd.logsumexp(v);
            double[] o = new double[v.length];
            for (int i = 0; i < v.length; i++) o[i] = log ? v[i] - lse : Math.exp(v[i] - lse);
            return o;
          });
          values(y, want, rtol(x.dtype()), atol(x.dtype()), null, name);
        };
      }
    }
    return c;
  }

  /** sumTo(target): target is a shape x's is a broadcast of; floating-point types (halves summed in F32). */
  static Case sumTo(G g) {
    Case c = new Case("sumTo");
    long[] s = g.shape();
    long[] target = g.p(0.7) ? Arrays.copyOfRange(s, g.n(s.length + 1), s.length) : g.shape();
    for (int i = 0; i < target.length; i++) if (g.p(0.3)) target[i] = 1;
    if (g.p(0.15)) target = g.mutate(target);
    Tensor x = c.in("x", g.tensor(s, g.p(0.85) ? g.floatType() : g.dtype()));
    long[] tg = target;
    c.arg("target=" + Arrays.toString(tg));
    c.invalidIf(!floatingPoint(x.dtype()), "I64 is not summed");
    boolean ok = tg.length <= s.length;
    for (int i = 0; ok && i < tg.length; i++) {
      long have = s[s.length - tg.length + i];
      ok = tg[i] == have || tg[i] == 1;
    }
    c.invalidIf(!ok, "not a broadcast source of x's shape");
    c.call = () -> x.sumTo(tg);
    c.verify = y -> {
      expect(y, tg, x.dtype());
      int lead = s.length - tg.length;
      int[] dims = java.util.stream.IntStream.range(0, s.length)
          .filter(i -> i < lead || (tg[i - lead] == 1 && s[i] != 1)).toArray();
      Nd xs = nd(c, x);
      Nd want = xs.reduce(dims, true, Nd::sum).reshape(ints(tg));
      Nd scale = xs.map(Math::abs).reduce(dims, true, Nd::sum);
      values(y, want, rtol(x.dtype()), atol(x.dtype()), scale.data, "sumTo");
    };
    return c;
  }

  // ---- views ----------------------------------------------------------------------------------

  static Case reshape(G g) {
    boolean view = g.p(0.2), flat = !view && g.p(0.1);
    // view's Javadoc: "reshape under another name"
    Case c = view ? new Case("view", "reshape") : new Case(flat ? "flatten" : "reshape");
    long[] s = g.shape();
    Tensor x = c.in("x", g.tensor(s, g.dtype()));
    long n = numel(s);
    long[] target;
    int kind = g.n(10);
    if (kind < 4) {  // the same sizes, shuffled, sometimes with size-1 dims added
      List<Long> l = new ArrayList<>();
      for (long d : s) l.add(d);
      java.util.Collections.shuffle(l, g.r);
      if (g.p(0.3)) l.add(g.n(l.size() + 1), 1L);
      target = l.stream().mapToLong(Long::longValue).toArray();
    } else if (kind < 5) target = new long[] {n};
    else if (kind < 7) {  // one -1
      target = s.length == 0 ? new long[] {-1} : s.clone();
      if (s.length > 0) target[g.n(s.length)] = -1;
      if (g.p(0.2)) target = cat(target, 1);
    } else if (kind < 9) target = g.shape();
    else target = g.pick(new long[] {-1, -1}, new long[] {-2, 3}, new long[] {0, -1}, new long[] {n + 1},
        new long[] {-1, 0}, new long[] {1L << 62, 4});
    long[] tg = target;
    c.arg("shape=" + Arrays.toString(tg));
    long[] out = null;
    if (!flat) {
      int minus = 0;
      long known = 1;
      boolean neg = false;
      for (long d : tg) {
        if (d == -1) minus++;
        else if (d < 0) neg = true;
        else known = Math.multiplyHigh(known, d) != 0 ? Long.MAX_VALUE : known * d;
      }
      c.invalidIf(minus > 1, "more than one -1");
      c.invalidIf(neg, "negative size");
      if (minus <= 1 && !neg) {
        out = tg.clone();
        if (minus == 1) {
          c.invalidIf(known == 0 || n % known != 0, "-1 cannot be inferred");
          if (known != 0 && n % known == 0) for (int i = 0; i < out.length; i++) if (out[i] == -1) out[i] = n / known;
        } else c.invalidIf(known != n, "element counts differ");
      }
    } else out = new long[] {n};
    long[] o = out;
    c.call = () -> view ? x.view(tg) : flat ? x.flatten() : x.reshape(tg);
    c.verify = y -> {
      expect(y, o, x.dtype());
      exact(y, nd(c, x).reshape(ints(o)), c.op);
    };
    return c;
  }

  static Case permuteOrTranspose(G g) {
    String name = g.pick("permute", "transpose", "mT");
    // mT's Javadoc: "Swaps the last two dims": it is transpose(-2, -1) and says so
    Case c = name.equals("mT") ? new Case("mT", "transpose") : new Case(name);
    long[] s = g.shape();
    int r = s.length;
    Tensor x = c.in("x", g.tensor(s, g.dtype()));
    switch (name) {
      case "permute" -> {
        int[] p = g.permutation(r);
        for (int i = 0; i < r; i++) if (g.p(0.2)) p[i] -= r;  // negative dims count from the end
        if (g.p(0.3)) {
          int k = g.n(3);
          if (k == 0 && r > 0) p = Arrays.copyOf(p, r - 1);
          else if (k == 1) p = Arrays.copyOf(p, r + 1);
          else if (r > 1) p[1] = p[0];
          else if (r > 0) p[0] = g.dim(r);
        }
        int[] q = p;
        c.arg("dims=" + Arrays.toString(q));
        c.invalidIf(q.length != r, "wrong number of dims");
        long[] out = new long[r];
        boolean[] seen = new boolean[r];
        if (q.length == r) for (int i = 0; i < r; i++) {
          int d = norm(q[i], r);
          if (d < 0 || seen[d]) {
            c.invalidIf(true, "not a permutation");
            break;
          }
          seen[d] = true;
          out[i] = s[d];
        }
        c.call = () -> x.permute(q);
        c.verify = y -> {
          expect(y, out, x.dtype());
          exact(y, nd(c, x).permute(Arrays.stream(q).map(d -> norm(d, r)).toArray()), "permute");
        };
      }
      case "transpose" -> {
        int a = g.dim(r), b = g.dim(r);
        c.arg("d0=" + a);
        c.arg("d1=" + b);
        int na = norm(a, r), nb = norm(b, r);
        c.invalidIf(na < 0 || nb < 0, "dim out of range");
        long[] out = s.clone();
        if (na >= 0 && nb >= 0) {
          out[na] = s[nb];
          out[nb] = s[na];
        }
        c.call = () -> x.transpose(a, b);
        c.verify = y -> {
          expect(y, out, x.dtype());
          exact(y, nd(c, x).transpose(na, nb), "transpose");
        };
      }
      default -> {
        c.invalidIf(r < 2, "rank below 2");
        long[] out = s.clone();
        if (r >= 2) {
          out[r - 1] = s[r - 2];
          out[r - 2] = s[r - 1];
        }
        c.call = x::mT;
        c.verify = y -> {
          expect(y, out, x.dtype());
          exact(y, nd(c, x).transpose(r - 2, r - 1), "mT");
        };
      }
    }
    return c;
  }

  static Case narrowOrSelect(G g) {
    boolean select = g.p(0.4);
    Case c = new Case(select ? "select" : "narrow");
    long[] s = g.shape();
    int r = s.length;
    Tensor x = c.in("x", g.tensor(s, g.dtype()));
    int dim = g.dim(r);
    int d = norm(dim, r);
    long n = d >= 0 ? s[d] : 3;
    long start = g.p(0.8) ? g.n((int) n + 1) : g.pick(-1L, n, n + 1, Long.MAX_VALUE, Long.MIN_VALUE);
    c.arg("dim=" + dim);
    c.invalidIf(d < 0, "dim out of range");
    if (select) {
      c.arg("index=" + start);
      c.invalidIf(d >= 0 && (start < 0 || start >= n), "index out of range");
      long[] out = d < 0 ? null : reduced(s, mask(r, d), false);
      c.call = () -> x.select(dim, start);
      c.verify = y -> {
        expect(y, out, x.dtype());
        exact(y, nd(c, x).narrow(d, (int) start, 1).reshape(ints(out)), "select");
      };
    } else {
      long len = g.p(0.8) ? g.n((int) Math.max(0, n - Math.max(0, Math.min(start, n))) + 1)
          : g.pick(-1L, n + 1, Long.MAX_VALUE);
      c.arg("start=" + start);
      c.arg("length=" + len);
      c.invalidIf(d >= 0 && (start < 0 || len < 0 || start > n - len), "slice outside the dim");
      long[] out = s.clone();
      if (d >= 0) out[d] = len;
      c.call = () -> x.narrow(dim, start, len);
      c.verify = y -> {
        expect(y, out, x.dtype());
        exact(y, nd(c, x).narrow(d, (int) start, (int) len), "narrow");
      };
    }
    return c;
  }

  static boolean[] mask(int r, int d) {
    boolean[] m = new boolean[r];
    m[d] = true;
    return m;
  }

  static Case expand(G g) {
    Case c = new Case("expand");
    long[] s = g.shape();
    Tensor x = c.in("x", g.tensor(s, g.dtype()));
    long[] target = cat(g.shape(g.n(3)), s);
    for (int i = target.length - s.length; i < target.length; i++) {
      if (target[i] == 1 && g.p(0.6)) target[i] = g.size();
      else if (g.p(0.15)) target[i] = -1;
    }
    if (g.p(0.25)) target = g.mutate(target);
    if (g.p(0.05) && target.length > 0) target[0] = g.pick(-1L, -2L, 1L << 62);
    long[] tg = target;
    c.arg("shape=" + Arrays.toString(tg));
    int off = tg.length - s.length;
    c.invalidIf(off < 0, "fewer dims");
    long[] out = tg.clone();
    if (off >= 0) for (int i = 0; i < tg.length; i++) {
      if (i < off) c.invalidIf(tg[i] < 0, "negative new leading dim");
      else {
        long have = s[i - off];
        if (tg[i] == -1) out[i] = have;
        else if (tg[i] != have && have != 1) c.invalidIf(true, "size " + have + " cannot expand to " + tg[i]);
        else if (tg[i] < 0) c.invalidIf(true, "negative size");
      }
    }
    if (c.reasons.isEmpty()) {
      double bytes = 8;
      for (long d : out) bytes *= d;
      c.invalidIf(bytes > Long.MAX_VALUE, "too many elements");
    }
    c.call = () -> x.expand(tg);
    c.verify = y -> {
      expect(y, out, x.dtype());
      if (numel(out) > 0) exact(y, nd(c, x).expand(ints(out)), "expand");  // (empty: sizes may exceed an int)
    };
    return c;
  }

  static Case squeezeOrUnsqueeze(G g) {
    boolean squeeze = g.p(0.5);
    Case c = new Case(squeeze ? "squeeze" : "unsqueeze");
    long[] s = g.shape();
    int r = s.length;
    Tensor x = c.in("x", g.tensor(s, g.dtype()));
    int dim = squeeze ? g.dim(r) : (g.p(0.85) ? g.n(2 * r + 2) - r - 1 : g.pick(r + 1, -r - 2, 9));
    c.arg("dim=" + dim);
    long[] out;
    if (squeeze) {
      int d = norm(dim, r);
      c.invalidIf(d < 0, "dim out of range");
      c.invalidIf(d >= 0 && s[d] != 1, "size is not 1");
      out = d < 0 ? null : reduced(s, mask(r, d), false);
      c.call = () -> x.squeeze(dim);
    } else {
      long d = dim < 0 ? (long) dim + r + 1 : dim;
      c.invalidIf(d < 0 || d > r, "dim out of range");
      out = new long[r + 1];
      if (d >= 0 && d <= r) for (int i = 0, j = 0; i <= r; i++) out[i] = i == d ? 1 : s[j++];
      c.call = () -> x.unsqueeze(dim);
    }
    long[] o = out;
    c.verify = y -> {
      expect(y, o, x.dtype());
      exact(y, nd(c, x).reshape(ints(o)), c.op);
    };
    return c;
  }

  static Case concatOrStack(G g) {
    boolean stack = g.p(0.4);
    Case c = new Case(stack ? "stack" : "concat");
    long[] s = g.shape();
    int r = s.length;
    int k = g.p(0.05) ? 0 : 1 + g.n(3);
    int dim = stack ? (g.p(0.85) ? g.n(2 * r + 2) - r - 1 : g.pick(r + 1, -r - 2, 9)) : g.dim(r);
    int d = stack ? (int) (dim < 0 ? (long) dim + r + 1 : dim) : norm(dim, r);
    DType t = g.dtype();
    List<Tensor> parts = new ArrayList<>();
    for (int i = 0; i < k; i++) {
      long[] si = s.clone();
      if (!stack && d >= 0 && d < r && g.p(0.7)) si[d] = g.size();
      if (g.p(0.12)) si = g.mutate(si);
      parts.add(c.in("part" + i, g.tensor(si, g.like(t))));
    }
    c.arg("dim=" + dim);
    c.invalidIf(k == 0, "no tensors");
    long[] out = null;
    if (k > 0) {
      Tensor first = parts.get(0);
      int rank = first.rank();
      for (Tensor p : parts) c.invalidIf(p.dtype() != first.dtype(), "dtypes differ");
      if (stack) {
        long dd = dim < 0 ? (long) dim + rank + 1 : dim;
        c.invalidIf(dd < 0 || dd > rank, "dim out of range");
        for (Tensor p : parts) c.invalidIf(!Arrays.equals(p.shape(), first.shape()), "shapes differ");
        if (dd >= 0 && dd <= rank) {
          out = new long[rank + 1];
          for (int i = 0, j = 0; i <= rank; i++) out[i] = i == dd ? k : first.shape()[j++];
        }
      } else {
        int dd = norm(dim, rank);
        c.invalidIf(dd < 0, "dim out of range");
        for (Tensor p : parts) c.invalidIf(p.rank() != rank, "ranks differ");
        if (dd >= 0) {
          out = first.shape();
          out[dd] = 0;
          for (Tensor p : parts) {
            if (p.rank() != rank) continue;
            for (int i = 0; i < rank; i++)
              if (i != dd && p.shape()[i] != first.shape()[i]) c.invalidIf(true, "sizes differ outside the dim");
            out[dd] += p.shape()[dd];
          }
        }
      }
    }
    long[] o = out;
    c.call = () -> stack ? Tensor.stack(parts, dim) : Tensor.concat(parts, dim);
    c.verify = y -> {
      expect(y, o, parts.get(0).dtype());
      Nd[] ps = new Nd[k];
      int rank = parts.get(0).rank();
      int dd = stack ? (int) (dim < 0 ? (long) dim + rank + 1 : dim) : norm(dim, rank);
      for (int i = 0; i < k; i++) {
        Nd p = nd(c, parts.get(i));
        if (stack) {  // the part with a unit dim inserted at dd
          int[] us = new int[rank + 1];
          for (int a = 0, b = 0; a <= rank; a++) us[a] = a == dd ? 1 : p.shape[b++];
          p = p.reshape(us);
        }
        ps[i] = p;
      }
      exact(y, Nd.concat(dd, ps), c.op);
    };
    return c;
  }

  /** to(dtype) and contiguous(): any dtype, any layout. */
  static Case castOrContiguous(G g) {
    boolean cast = g.p(0.6);
    Case c = new Case(cast ? "to" : "contiguous", cast ? new String[] {"cast"} : new String[0]);
    Tensor x = c.in("x", g.tensor(g.shape(), g.dtype()));
    DType t = cast ? g.dtype() : x.dtype();
    if (cast) c.arg(t.toString());
    c.call = () -> cast ? x.to(t) : x.contiguous();
    c.verify = y -> {
      expect(y, x.shape(), t);
      // the documented conversions: exact to F64 and to the same type, truncation toward zero to
      // I64, round to nearest to F32 (the 16-bit roundings are left to the cast tests)
      DoubleUnaryOperator f = t == F64 || t == x.dtype() ? v -> v : t == I64 ? v -> (double) (long) v
          : t == F32 ? v -> (float) v : null;
      if (f != null) exact(y, nd(c, x).map(f), c.op + " " + x.dtype() + " -> " + t);
    };
    return c;
  }

  // ---- indexing -------------------------------------------------------------------------------

  /** Whether an I64 index tensor (open) holds only positions in [0, n). */
  static boolean inRange(Tensor idx, long n) {
    for (long v : idx.toLongArray()) if (v < 0 || v >= n) return false;
    return true;
  }

  static void indexModel(Case c, Tensor idx, long n) {
    c.invalidIf(idx.dtype() != I64, "indices not I64");
    if (idx.dtype() == I64 && !idx.isClosed() && n >= 0) c.invalidIf(!inRange(idx, n), "an index outside [0, " + n + ")");
  }

  /** indexSelect(x, dim, idx): x any dtype, idx 1-d I64 in [0, x.size(dim)). */
  static Case indexSelect(G g) {
    Case c = new Case("indexSelect");
    long[] s = g.shape();
    int r = s.length;
    Tensor x = c.in("x", g.tensor(s, g.dtype()));
    int dim = g.dim(r);
    int d = norm(dim, r);
    long n = d >= 0 ? s[d] : 3;
    long[] is = g.p(0.9) ? new long[] {g.size()} : g.shape();
    Tensor idx = c.in("idx", g.indexOrNot(is, n));
    c.arg("dim=" + dim);
    c.invalidIf(d < 0, "dim out of range");
    c.invalidIf(is.length != 1, "indices not 1-d");
    indexModel(c, idx, d >= 0 ? n : -1);
    long[] out = s.clone();
    if (d >= 0) out[d] = numel(is);
    c.call = () -> x.indexSelect(dim, idx);
    c.verify = y -> {
      expect(y, out, x.dtype());
      Nd xs = nd(c, x), is2 = nd(c, idx);
      int[] os = ints(out);
      double[] want = new double[Nd.numel(os)];
      for (int i = 0; i < want.length; i++) {
        int[] at = Nd.unravel(i, os);
        want[i] = xs.data[offsetWith(xs.shape, at, d, (long) is2.data[at[d]])];
      }
      exact(y, new Nd(want, os), "indexSelect");
    };
    return c;
  }

  /** gather / scatterAdd: idx has x's rank and sizes except along dim; values in [0, x.size(dim)). */
  static Case gatherOrScatter(G g) {
    boolean scatter = g.p(0.5);
    Case c = new Case(scatter ? "scatterAdd" : "gather");
    long[] s = g.shape();
    int r = s.length;
    DType t = g.arithType();
    Tensor x = c.in(scatter ? "base" : "x", g.tensor(s, t));
    int dim = g.dim(r);
    int d = norm(dim, r);
    long n = d >= 0 ? s[d] : 3;
    long[] is = s.clone();
    if (d >= 0) is[d] = g.size();
    if (g.p(0.2)) is = g.mutate(is);
    Tensor idx = c.in("idx", g.indexOrNot(is, n));
    long[] ss = g.p(0.85) ? is : g.mutate(is);
    Tensor src = scatter ? c.in("src", g.tensor(ss, g.like(t))) : null;
    c.arg("dim=" + dim);
    c.invalidIf(!arith(x.dtype()), "dtype not F32/F64");
    c.invalidIf(d < 0, "dim out of range");
    boolean match = is.length == r;
    for (int i = 0; match && i < r; i++) if (i != d && is[i] != s[i]) match = false;
    c.invalidIf(!match, "idx does not match x outside dim");
    indexModel(c, idx, d >= 0 ? n : -1);
    if (scatter) {
      c.invalidIf(src.dtype() != x.dtype(), "dtypes differ");
      c.invalidIf(!Arrays.equals(ss, is), "src and idx shapes differ");
      c.call = () -> Indexing.scatterAdd(x, dim, idx, src);
      c.verify = y -> {
        expect(y, s, x.dtype());
        Nd base = nd(c, x), ix = nd(c, idx), sv = nd(c, src);
        double[] want = base.data.clone(), scale = base.map(Math::abs).data;
        for (int i = 0; i < ix.data.length; i++) {
          int o = offsetWith(base.shape, Nd.unravel(i, ix.shape), d, (long) ix.data[i]);
          want[o] += sv.data[i];
          scale[o] += Math.abs(sv.data[i]);
        }
        values(y, new Nd(want, base.shape), rtol(x.dtype()), atol(x.dtype()), scale, "scatterAdd");
      };
    } else {
      long[] o = is;
      c.call = () -> x.gather(dim, idx);
      c.verify = y -> {
        expect(y, o, x.dtype());
        Nd xs = nd(c, x), ix = nd(c, idx);
        double[] want = new double[ix.data.length];
        for (int i = 0; i < want.length; i++)
          want[i] = xs.data[offsetWith(xs.shape, Nd.unravel(i, ix.shape), d, (long) ix.data[i])];
        exact(y, new Nd(want, ix.shape), "gather");
      };
    }
    return c;
  }

  /** indexAdd(base, dim, idx, src): idx 1-d I64, src = base's shape with idx.numel() at dim. */
  static Case indexAdd(G g) {
    Case c = new Case("indexAdd");
    long[] s = g.shape();
    int r = s.length;
    DType t = g.arithType();
    Tensor base = c.in("base", g.tensor(s, t));
    int dim = g.dim(r);
    int d = norm(dim, r);
    long n = d >= 0 ? s[d] : 3;
    long k = g.size();
    long[] is = g.p(0.9) ? new long[] {k} : g.shape();
    Tensor idx = c.in("idx", g.indexOrNot(is, n));
    long[] ss = s.clone();
    if (d >= 0) ss[d] = k;
    if (g.p(0.15)) ss = g.mutate(ss);
    Tensor src = c.in("src", g.tensor(ss, g.like(t)));
    c.arg("dim=" + dim);
    c.invalidIf(!arith(base.dtype()), "dtype not F32/F64");
    c.invalidIf(src.dtype() != base.dtype(), "dtypes differ");
    c.invalidIf(d < 0, "dim out of range");
    c.invalidIf(is.length != 1, "indices not 1-d");
    long[] want = s.clone();
    if (d >= 0) want[d] = numel(is);
    c.invalidIf(d >= 0 && !Arrays.equals(ss, want), "src does not fit");
    indexModel(c, idx, d >= 0 ? n : -1);
    c.call = () -> Indexing.indexAdd(base, dim, idx, src);
    c.verify = y -> {
      expect(y, s, base.dtype());
      Nd b = nd(c, base), ix = nd(c, idx), sv = nd(c, src);
      double[] sum = b.data.clone(), scale = b.map(Math::abs).data;
      for (int i = 0; i < sv.data.length; i++) {
        int[] at = Nd.unravel(i, sv.shape);
        int o = offsetWith(b.shape, at, d, (long) ix.data[at[d]]);
        sum[o] += sv.data[i];
        scale[o] += Math.abs(sv.data[i]);
      }
      values(y, new Nd(sum, b.shape), rtol(base.dtype()), atol(base.dtype()), scale, "indexAdd");
    };
    return c;
  }

  // ---- in place -------------------------------------------------------------------------------

  /**
   * addInPlace / subInPlace / mulInPlace (tensor and scalar) / fillInPlace / copyInPlace. The
   * target: open, reaching each element by one index only (expanded views are refused), not
   * requiring grad while recording; the operand broadcasts to the target's shape and has its dtype
   * (F32/F64 for arithmetic; fill and copy take any dtype). The operand is sometimes a view of the
   * target itself. Valid calls are checked against the values computed from snapshots.
   */
  static Case inPlace(G g) {
    String name = g.pick("addInPlace", "subInPlace", "mulInPlace", "mulInPlaceScalar", "fillInPlace", "copyInPlace");
    boolean scalar = name.equals("mulInPlaceScalar");
    Case c = new Case(scalar ? "mulInPlace" : name);
    boolean arithmetic = !name.equals("fillInPlace") && !name.equals("copyInPlace");
    long[] s = g.shape();
    DType t = arithmetic ? g.arithType() : g.dtype();
    Tensor target = c.in("target", g.tensor(s, t, 0.025, 0.2));
    boolean grad = floatingPoint(target.dtype()) && !target.isClosed() && g.p(0.05);
    if (grad) {
      target.requiresGrad(true);
      g.tags.put(target, g.tags.getOrDefault(target, "") + " (requiresGrad)");
    }
    c.invalidIf(grad, "target requires grad");
    c.invalidIf(arithmetic && !arith(target.dtype()), "dtype not F32/F64");
    c.invalidIf(!target.isClosed() && reachesTwice(target), "target reaches an element twice");
    c.written.add(target.storage());
    double before[] = null;
    if (name.equals("fillInPlace") || scalar) {
      double v = g.pick(0.0, 1.0, -2.0, 3.0);
      c.arg(String.valueOf(v));
      if (c.valid()) before = target.toDoubleArray();
      double[] b0 = before;
      c.call = () -> scalar ? target.mulInPlace(v) : target.fillInPlace(v);
      c.verify = y -> {
        if (y != target) throw new AssertionError("did not return the target");
        double[] want = new double[b0.length];
        for (int i = 0; i < want.length; i++) want[i] = scalar ? b0[i] * v : v;
        expectValues(target, want, name);
      };
      return c;
    }
    Tensor o;
    if (!target.isClosed() && g.p(0.2)) {  // a view of the target itself
      int k = g.n(4);
      if (k == 0 || s.length == 0) o = target;
      else if (k == 1 && s.length >= 2) o = target.mT();
      else if (k == 2 && s[s.length - 1] > 0) o = target.narrow(-1, 0, 1);
      else o = s[0] > 0 ? target.select(0, 0) : target;
      g.tags.put(o, o == target ? " (the target)" : " (a view of the target)");
      c.in("src", o);
    } else {
      long[] so = g.p(0.8) ? Arrays.copyOfRange(s, g.n(s.length + 1), s.length) : g.shape();
      for (int i = 0; i < so.length; i++) if (g.p(0.2)) so[i] = 1;
      o = c.in("src", g.tensor(so, g.like(t)));
    }
    c.invalidIf(o.dtype() != target.dtype(), "dtypes differ");
    long[] out = bcast(s, o.shape());
    c.invalidIf(out == null || !Arrays.equals(out, s), "src does not broadcast to the target");
    double[] ob = null;
    if (c.valid()) {
      before = target.toDoubleArray();
      ob = broadcastValues(o.toDoubleArray(), o.shape(), s);
    }
    double[] b0 = before, o0 = ob;
    c.call = () -> switch (name) {
      case "addInPlace" -> target.addInPlace(o);
      case "subInPlace" -> target.subInPlace(o);
      case "mulInPlace" -> target.mulInPlace(o);
      default -> target.copyInPlace(o);
    };
    c.verify = y -> {
      if (y != target) throw new AssertionError("did not return the target");
      double[] want = new double[b0.length];
      for (int i = 0; i < want.length; i++)
        want[i] = switch (name) {
          case "addInPlace" -> b0[i] + o0[i];
          case "subInPlace" -> b0[i] - o0[i];
          case "mulInPlace" -> b0[i] * o0[i];
          default -> o0[i];
        };
      expectValues(target, want, name + " with src " + o.describe() + g.tags.getOrDefault(o, ""));
    };
    return c;
  }

  // ---- functional -----------------------------------------------------------------------------

  /** layerNorm(x, w, b, eps): x F32/F64 [..., d] with d > 0; w and b [d] of x's dtype, or null. */
  static Case layerNorm(G g) {
    Case c = new Case("layerNorm");
    long[] s = g.shape();
    DType t = g.arithType();
    Tensor x = c.in("x", g.tensor(s, t));
    long d = s.length > 0 ? s[s.length - 1] : 3;
    Tensor w = g.p(0.3) ? null : c.in("weight", g.tensor(g.p(0.85) ? new long[] {d} : g.mutate(new long[] {d}), g.like(t)));
    Tensor b = g.p(0.3) ? null : c.in("bias", g.tensor(g.p(0.85) ? new long[] {d} : g.mutate(new long[] {d}), g.like(t)));
    c.invalidIf(!arith(x.dtype()), "dtype not F32/F64");
    c.invalidIf(s.length == 0, "rank 0");
    c.invalidIf(s.length > 0 && d == 0, "empty last dim");
    for (Tensor p : new Tensor[] {w, b}) {
      if (p == null) continue;
      c.invalidIf(p.dtype() != x.dtype(), "dtypes differ");
      c.invalidIf(p.rank() != 1 || (s.length > 0 && p.shape()[0] != d), "weight/bias not [d]");
    }
    c.call = () -> Functional.layerNorm(x, w, b, 1e-5);
    c.verify = y -> expect(y, s, x.dtype());
    return c;
  }

  /** mse(pred, target): one shape, one dtype F32/F64, not empty (a mean). */
  static Case mse(G g) {
    Case c = new Case("mse");
    long[] s = g.shape();
    DType t = g.arithType();
    Tensor p = c.in("pred", g.tensor(s, t));
    Tensor q = c.in("target", g.tensor(g.p(0.8) ? s : g.p(0.5) ? g.partner(s) : g.mutate(s), g.like(t)));
    c.invalidIf(!arith(p.dtype()), "dtype not F32/F64");
    c.invalidIf(q.dtype() != p.dtype(), "dtypes differ");
    c.invalidIf(!Arrays.equals(p.shape(), q.shape()), "shapes differ");
    c.invalidIf(numel(s) == 0, "empty: no mean");
    c.call = () -> Functional.mse(p, q);
    c.verify = y -> expect(y, new long[0], p.dtype());
    return c;
  }

  /** crossEntropy(logits [N, C] F32/F64, targets I64 [N] in [0, C)), N > 0 (a mean). */
  static Case crossEntropy(G g) {
    Case c = new Case("crossEntropy");
    long nn = g.size(), cc = g.size();
    long[] sl = g.p(0.85) ? new long[] {nn, cc} : g.shape();
    Tensor logits = c.in("logits", g.tensor(sl, g.arithType()));
    long[] st = g.p(0.85) ? new long[] {sl.length > 0 ? sl[0] : 2} : g.mutate(new long[] {nn});
    long classes = sl.length == 2 ? sl[1] : 3;
    Tensor targets = c.in("targets", g.indexOrNot(st, classes));
    c.invalidIf(!arith(logits.dtype()), "dtype not F32/F64");
    c.invalidIf(sl.length != 2, "logits not [N, C]");
    c.invalidIf(st.length != 1 || (sl.length > 0 && st.length == 1 && st[0] != sl[0]), "targets not [N]");
    c.invalidIf(sl.length == 2 && sl[0] == 0, "empty batch: no mean");
    indexModel(c, targets, sl.length == 2 ? classes : -1);
    c.call = () -> Functional.crossEntropy(logits, targets);
    c.verify = y -> expect(y, new long[0], logits.dtype());
    return c;
  }

  // ---- attention ------------------------------------------------------------------------------

  /**
   * Attention.forward(q, k, v, options): q [B, H, Nq, D], k [B, Hkv, Nk, D], v [B, Hkv, Nk, Dv],
   * Hkv ≥ 1 dividing H ≥ 1, D and Dv in [1, 256], one dtype of F32/F64/BF16/F16; bias
   * [B|1, H|1, Nq, Nk] of that dtype; key lengths I64 [B] in [0, Nk]; a finite scale (NaN: 1/√D).
   */
  static Case attention(G g) {
    Case c = new Case("attention");
    long b = g.size(), h = g.p(0.95) ? 1 + g.n(4) : 0;
    long hkv = h == 0 ? 1 : g.p(0.8) ? divisor(g, h) : g.n(5);
    long nq = g.size(), nk = g.size();
    long d = g.p(0.93) ? 1 + g.n(5) : g.pick(0L, 257L), dv = g.p(0.95) ? 1 + g.n(5) : g.pick(0L, 257L);
    long[] sq = {b, h, nq, d}, sk = {b, hkv, nk, d}, sv = {b, hkv, nk, dv};
    if (g.p(0.3)) {
      switch (g.n(5)) {
        case 0 -> sq = g.mutate(sq);
        case 1 -> sk = g.mutate(sk);
        case 2 -> sv = g.mutate(sv);
        case 3 -> sk[3] = d + 1;  // D mismatch
        default -> sv[2] = nk + 1;
      }
    }
    int x = g.n(100);
    DType t = x < 40 ? F64 : x < 80 ? F32 : x < 88 ? BF16 : x < 95 ? F16 : I64;
    Tensor q = c.in("q", g.tensor(sq, t, 0.02, 0.03));
    Tensor k = c.in("k", g.tensor(sk, g.p(0.95) ? t : g.dtype(), 0.02, 0.03));
    Tensor v = c.in("v", g.tensor(sv, g.p(0.95) ? t : g.dtype(), 0.02, 0.03));
    Tensor lengths = null, bias = null;
    if (g.p(0.35)) {
      long[] sl = g.p(0.85) ? new long[] {b} : g.pick(new long[] {b + 1}, new long[] {b, 1}, new long[0]);
      if (g.p(0.9)) {
        long[] vals = new long[(int) numel(sl)];
        for (int i = 0; i < vals.length; i++) vals[i] = g.n((int) nk + 1);
        if (vals.length > 0 && g.p(0.2)) vals[g.n(vals.length)] = g.pick(-1L, nk + 1, Long.MAX_VALUE);
        lengths = Tensor.ofIndices(vals, sl);
        if (g.p(0.02)) {
          lengths.close();
          g.tags.put(lengths, " (freed)");
        }
      } else lengths = g.tensor(sl, g.pick(F64, F32));
      c.in("keyLengths", lengths);
    }
    if (g.p(0.3)) {
      long[] sb = {g.p(0.5) ? b : 1, g.p(0.5) ? h : 1, nq, nk};
      if (g.p(0.25)) sb = g.mutate(sb);
      bias = c.in("bias", g.tensor(sb, g.p(0.93) ? t : g.dtype(), 0.02, 0.1));
    }
    boolean causal = g.p(0.4);
    double scale = g.p(0.7) ? Double.NaN : g.pick(0.5, 2.0, Double.POSITIVE_INFINITY, Double.NaN);
    c.arg("causal=" + causal);
    c.arg("scale=" + scale);
    // the model
    c.invalidIf(!floatingPoint(q.dtype()), "q not floating point");
    c.invalidIf(k.dtype() != q.dtype() || v.dtype() != q.dtype() || (bias != null && bias.dtype() != q.dtype()),
        "dtypes differ");
    c.invalidIf(sq.length != 4 || sk.length != 4 || sv.length != 4, "not rank 4");
    long[] outShape = null, lseShape = null;
    if (sq.length == 4 && sk.length == 4 && sv.length == 4) {
      c.invalidIf(sk[0] != sq[0] || sv[0] != sq[0], "batch differs");
      c.invalidIf(sv[1] != sk[1] || sv[2] != sk[2], "k and v differ in heads or length");
      c.invalidIf(sk[3] != sq[3], "D differs");
      c.invalidIf(sq[1] < 1, "no query heads");
      c.invalidIf(sk[1] < 1 || (sq[1] % Math.max(1, sk[1]) != 0), "Hkv does not divide H");
      c.invalidIf(sq[3] < 1 || sq[3] > 256 || sv[3] < 1 || sv[3] > 256, "head dim outside [1, 256]");
      if (bias != null) {
        long[] bs = bias.shape();
        c.invalidIf(bs.length != 4 || (bs[0] != 1 && bs[0] != sq[0]) || (bs[1] != 1 && bs[1] != sq[1])
            || bs[2] != sq[2] || bs[3] != sk[2], "bias shape");
      }
      if (lengths != null) {
        c.invalidIf(lengths.dtype() != I64, "key lengths not I64");
        c.invalidIf(lengths.rank() != 1 || lengths.shape()[0] != sq[0], "key lengths not [B]");
        if (lengths.dtype() == I64 && !lengths.isClosed() && lengths.rank() == 1 && lengths.shape()[0] == sq[0])
          for (long L : lengths.toLongArray()) c.invalidIf(L < 0 || L > sk[2], "key length " + L + " outside [0, Nk]");
      }
      c.invalidIf(Double.isInfinite(scale), "scale not finite");
      outShape = new long[] {sq[0], sq[1], sq[2], sv[3]};
      lseShape = new long[] {sq[0], sq[1], sq[2]};
    }
    Attention.Options o = new Attention.Options(scale, causal, lengths, bias);
    long[] os = outShape, ls = lseShape;
    c.call = () -> Attention.forward(q, k, v, o);
    c.verify = y -> {
      var r = (Attention.Output) y;
      expect(r.out(), os, q.dtype());
      expect(r.lse(), ls, q.dtype().isHalf() ? F32 : q.dtype());
    };
    return c;
  }

  static long divisor(G g, long h) {
    List<Long> ds = new ArrayList<>();
    for (long i = 1; i <= h; i++) if (h % i == 0) ds.add(i);
    return ds.get(g.n(ds.size()));
  }

  /**
   * LinearAttention.apply(q, k, v, options): q [..., Nq, Dk], k [..., Nk, Dk], v [..., Nk, Dv] of
   * equal rank ≥ 2 and leading dims, one dtype F32/F64/BF16/F16, Dk and Dv ≥ 1; causal needs Nq = Nk;
   * momentum needs the causal form.
   */
  static Case linearAttention(G g) {
    Case c = new Case("linearAttention");
    long[] lead = g.shape(g.n(3));
    long nq = g.size(), nk = g.size(), dk = 1 + g.n(4), dv = 1 + g.n(4);
    boolean causal = g.p(0.4);
    if (causal && g.p(0.8)) nq = nk;
    long[] sq = cat(lead, nq, dk), sk = cat(lead, nk, dk), sv = cat(lead, nk, dv);
    if (g.p(0.3)) {
      switch (g.n(5)) {
        case 0 -> sq = g.mutate(sq);
        case 1 -> sk = g.mutate(sk);
        case 2 -> sv = g.mutate(sv);
        case 3 -> sq[sq.length - 1] = g.pick(0L, dk + 1);
        default -> sv[sv.length - 1] = 0;
      }
    }
    if (g.p(0.04)) sq = new long[] {dk};
    DType t = g.arithType();
    Tensor q = c.in("q", g.tensor(sq, t)), k = c.in("k", g.tensor(sk, g.like(t))), v = c.in("v", g.tensor(sv, g.like(t)));
    FeatureMap fm = g.pick(FeatureMap.values());
    Normalization norm = g.pick(Normalization.values());
    double momentum = g.p(0.8) ? 0.0 : 0.9;
    var o = LinearAttention.Options.of(fm, causal).withNormalization(norm).withMomentum(momentum);
    c.arg(o.toString());
    c.invalidIf(!arith(q.dtype()) && !q.dtype().isHalf(), "dtype not F32/F64/BF16/F16");
    c.invalidIf(k.dtype() != q.dtype() || v.dtype() != q.dtype(), "dtypes differ");
    int r = sq.length;
    c.invalidIf(r < 2 || sk.length != r || sv.length != r, "ranks differ or below 2");
    long[] out = null;
    if (r >= 2 && sk.length == r && sv.length == r) {
      for (int i = 0; i < r - 2; i++) c.invalidIf(sq[i] != sk[i] || sq[i] != sv[i], "leading dims differ");
      c.invalidIf(sq[r - 1] != sk[r - 1], "Dk differs");
      c.invalidIf(sk[r - 2] != sv[r - 2], "k and v lengths differ");
      c.invalidIf(causal && sq[r - 2] != sk[r - 2], "causal with Nq != Nk");
      c.invalidIf(sq[r - 1] < 1 || sv[r - 1] < 1, "empty feature dim");
      out = sq.clone();
      out[r - 1] = sv[r - 1];
    }
    c.invalidIf(momentum != 0 && !causal, "momentum without the causal form");
    long[] os = out;
    c.call = () -> LinearAttention.apply(q, k, v, o);
    c.verify = y -> expect(y, os, q.dtype());
    return c;
  }

  /** Generators, repeated to weight them. */
  @SuppressWarnings("unchecked")
  static final Function<G, Case>[] GENERATORS = new Function[] {
      (Function<G, Case>) FuzzBadCallsTest::unary, (Function<G, Case>) FuzzBadCallsTest::scalar,
      (Function<G, Case>) FuzzBadCallsTest::binary, (Function<G, Case>) FuzzBadCallsTest::binary,
      (Function<G, Case>) FuzzBadCallsTest::where, (Function<G, Case>) FuzzBadCallsTest::matmul,
      (Function<G, Case>) FuzzBadCallsTest::matmul, (Function<G, Case>) FuzzBadCallsTest::linear,
      (Function<G, Case>) FuzzBadCallsTest::reduction, (Function<G, Case>) FuzzBadCallsTest::reduction,
      (Function<G, Case>) FuzzBadCallsTest::reduction, (Function<G, Case>) FuzzBadCallsTest::sumTo,
      (Function<G, Case>) FuzzBadCallsTest::reshape, (Function<G, Case>) FuzzBadCallsTest::permuteOrTranspose,
      (Function<G, Case>) FuzzBadCallsTest::narrowOrSelect, (Function<G, Case>) FuzzBadCallsTest::expand,
      (Function<G, Case>) FuzzBadCallsTest::squeezeOrUnsqueeze, (Function<G, Case>) FuzzBadCallsTest::concatOrStack,
      (Function<G, Case>) FuzzBadCallsTest::castOrContiguous, (Function<G, Case>) FuzzBadCallsTest::indexSelect,
      (Function<G, Case>) FuzzBadCallsTest::gatherOrScatter, (Function<G, Case>) FuzzBadCallsTest::gatherOrScatter,
      (Function<G, Case>) FuzzBadCallsTest::indexAdd, (Function<G, Case>) FuzzBadCallsTest::inPlace,
      (Function<G, Case>) FuzzBadCallsTest::inPlace, (Function<G, Case>) FuzzBadCallsTest::inPlace,
      (Function<G, Case>) FuzzBadCallsTest::layerNorm, (Function<G, Case>) FuzzBadCallsTest::mse,
      (Function<G, Case>) FuzzBadCallsTest::crossEntropy, (Function<G, Case>) FuzzBadCallsTest::attention,
      (Function<G, Case>) FuzzBadCallsTest::attention, (Function<G, Case>) FuzzBadCallsTest::linearAttention,
      (Function<G, Case>) FuzzBadCallsTest::linearAttention};
}
