package org.metakernels.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.reflect.Method;
import java.util.Arrays;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * UnrollBench's metakernels side in a plain loop, for A/B comparisons of two builds on a loaded
 * machine (run one jar, then the other, alternating, and compare the CPU time of the timing
 * thread): the set-up of {@link UnrollBench.Inputs} (with its check against libtorch), the number
 * of autograd nodes one meta-gradient records (read from the tape's creation numbers), a warm-up
 * of two rounds, then ROUNDS rounds of SECONDS each; prints the min and median over rounds of the
 * mean wall time and thread CPU time per call. JMH (UnrollBench) stays the record on a quiet machine.
 *   java -Dmetakernels.threads=2 -cp benchmarks/target/benchmarks.jar org.metakernels.bench.UnrollAB \\
 *       K ROUNDS SECONDS LABEL
 */
public final class UnrollAB {
  private UnrollAB() {}

  /**
   * Runs the loop.
   *
   * @param a K, rounds, seconds per round, a label for the output line
   * @throws Exception when the node numbering cannot be read
   */
  public static void main(String[] a) throws Exception {
    int steps = Integer.parseInt(a[0]);
    int rounds = Integer.parseInt(a[1]);
    double roundSeconds = Double.parseDouble(a[2]);
    String label = a[3];
    UnrollBench.Inputs in = new UnrollBench.Inputs();
    in.steps = steps;
    in.vendor = "metakernels";
    in.setup();
    Method seq = Class.forName("org.metakernels.autograd.Node").getDeclaredMethod("sequence");
    seq.setAccessible(true);
    long n0 = nodeNumber(seq);
    try (Scope s = Scope.open()) {
      UnrollBench.metakernels(in);
    }
    long nodes = nodeNumber(seq) - n0 - 1;
    ThreadMXBean mx = ManagementFactory.getThreadMXBean();
    // warm-up
    long end = System.nanoTime() + (long) (roundSeconds * 2e9);
    while (System.nanoTime() < end) try (Scope s = Scope.open()) {
        UnrollBench.metakernels(in);
      }
    double[] wall = new double[rounds], cpu = new double[rounds];
    for (int r = 0; r < rounds; r++) {
      long w0 = System.nanoTime(), c0 = mx.getCurrentThreadCpuTime();
      int calls = 0;
      long stop = w0 + (long) (roundSeconds * 1e9);
      do {
        try (Scope s = Scope.open()) {
          UnrollBench.metakernels(in);
        }
        calls++;
      } while (System.nanoTime() < stop);
      wall[r] = (System.nanoTime() - w0) / 1e6 / calls;
      cpu[r] = (mx.getCurrentThreadCpuTime() - c0) / 1e6 / calls;
    }
    Arrays.sort(wall);
    Arrays.sort(cpu);
    System.out.printf(
        "%s K=%d nodes=%d wall min %.3f med %.3f ms | thread cpu min %.3f med %.3f ms (%d rounds of %.1f s)%n", label,
        steps, nodes, wall[0], wall[rounds / 2], cpu[0], cpu[rounds / 2], rounds, roundSeconds);
    in.tearDown();
  }

  static long nodeNumber(Method seq) throws Exception {
    try (Scope s = Scope.open()) {
      Tensor t = Tensor.zeros(new long[] {1}, org.metakernels.tensor.DType.F32, org.metakernels.tensor.Device.CPU)
                     .requiresGrad(true)
                     .mul(1.0);
      return (long) seq.invoke(t.gradFn());
    }
  }
}
