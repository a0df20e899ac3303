package org.metakernels.meta;

/**
 * Optimal reversal schedules under a snapshot budget (binomial checkpointing: Griewank 1992,
 * Griewank and Walther's revolve), for {@link Unroll.Memory#checkpoint(int)}.
 *
 * <p>Reversing steps [from, to) from the state at {@code from} with c free snapshot slots:
 * advance m steps, store that state in one slot, reverse [from + m, to) with c − 1 slots, free it,
 * then reverse [from, from + m) with c slots. Without a slot, each step j is reached by advancing
 * from {@code from} again: l(l − 1)/2 advances for l steps. The cost (steps advanced) obeys
 * <pre>
 *   T(1, c) = 0,   T(l, 0) = l(l − 1)/2,   T(l, c) = min over 1 ≤ m &lt; l of m + T(l − m, c − 1) + T(m, c)
 * </pre>
 * This class tabulates T and the minimising m (the smallest on ties, so the schedule is a function
 * of (K, c) alone) by dynamic programming: the optimum of this recursion, which is the binomial
 * optimum; bisection (m = l/2) does up to twice the work (K = 100: 1,719 against 845 advances with
 * one slot, 706 against 490 with two). The table costs O(K² c) time and O(K c) memory;
 * {@link #plan} declines (null) above {@link #MAX_WORK} and the caller bisects.
 */
final class Revolve {
  /** The largest K² c tabulated (about a second of work). */
  static final long MAX_WORK = 400_000_000L;

  private final int steps, slots;
  private final long[][] cost; // cost[c][l]
  private final int[][] split; // split[c][l], c >= 1, l >= 2

  private Revolve(int steps, int slots) {
    this.steps = steps;
    this.slots = slots;
    cost = new long[slots + 1][steps + 1];
    split = new int[slots + 1][steps + 1];
    for (int l = 1; l <= steps; l++) cost[0][l] = (long) l * (l - 1) / 2;
    for (int c = 1; c <= slots; c++) {
      long[] here = cost[c], fewer = cost[c - 1];
      for (int l = 2; l <= steps; l++) {
        long best = Long.MAX_VALUE;
        int arg = 1;
        for (int m = 1; m < l; m++) {
          long t = m + fewer[l - m] + here[m];
          if (t < best) {
            best = t;
            arg = m;
          }
        }
        here[l] = best;
        split[c][l] = arg;
      }
    }
  }

  /**
   * The schedule for K steps and up to {@code snapshots} slots (more than K − 1 slots cannot help:
   * capped), or null when the table would cost more than {@link #MAX_WORK}.
   */
  static Revolve plan(int k, int snapshots) {
    if (k < 1 || snapshots < 0) throw new IllegalArgumentException("Revolve.plan: k = " + k + ", snapshots = " + snapshots);
    int c = Math.min(snapshots, Math.max(0, k - 1));
    if ((long) k * k * Math.max(1, c) > MAX_WORK) return null;
    return new Revolve(k, c);
  }

  /** Steps to advance before storing a state, for l ≥ 2 steps to reverse with c ≥ 1 free slots. */
  int split(int l, int c) {
    if (l < 2 || l > steps || c < 1) throw new IllegalArgumentException("Revolve.split: l = " + l + ", c = " + c);
    return split[Math.min(c, slots)][l];
  }

  /** Steps advanced to reverse l steps with c free slots (c capped at the plan's slots). */
  long cost(int l, int c) {
    return cost[Math.min(c, slots)][l];
  }

  /** Steps advanced by bisection (m = ⌊l/2⌋), the schedule used when no plan is tabulated. */
  static long bisectionCost(int l, int c) {
    if (l <= 1) return 0;
    if (c == 0) return (long) l * (l - 1) / 2;
    int m = l / 2;
    return m + bisectionCost(l - m, c - 1) + bisectionCost(m, c);
  }
}
