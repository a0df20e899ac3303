package org.metakernels.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.metakernels.tensor.Scope;

/**
 * Same-process, interleaved timing of GraphBench's vendors, for a loaded machine where separate JMH
 * forks see different load: every vendor's state is set up (and checked) as in GraphBench, then
 * each round times one call of every vendor in turn, ROUNDS rounds after WARM untimed ones; prints
 * min and median per vendor and each peer's min and median ratio to metakernels. The states
 * share one process, so libtorch's OpenBLAS setting is the last one picked (these calls hardly
 * use BLAS except gcnSecondOrder's small GEMMs). JMH (GraphBench) stays the record on a quiet
 * machine.
 *   java -Dmetakernels.threads=2 -cp benchmarks/target/benchmarks.jar org.metakernels.bench.GraphAB \
 *       BENCH EDGES FEATURES [ROUNDS [WARM]]
 * BENCH: forward-max, forwardBackward-max (SpMM max), sddmmForward, sddmmForwardBackward, gcnSecondOrder,
 * gatForwardBackward (FEATURES = heads x width, e.g. 4x16).
 */
public final class GraphAB {
  private GraphAB() {}

  public static void main(String[] a) {
    String bench = a[0];
    long edges = Long.parseLong(a[1]);
    int features = a[2].contains("x") ? 0 : Integer.parseInt(a[2]);
    int rounds = a.length > 3 ? Integer.parseInt(a[3]) : 7;
    int warm = a.length > 4 ? Integer.parseInt(a[4]) : 1;
    List<String> vendors = new ArrayList<>();
    List<Runnable> calls = new ArrayList<>();
    List<AutoCloseable> states = new ArrayList<>();
    if (bench.endsWith("-max")) {
      String mode = bench.substring(0, bench.indexOf('-'));
      for (String v : new String[] {"metakernels", "libtorch-index_add", "libtorch-csr"}) {
        GraphBench.Inputs in = new GraphBench.Inputs();
        in.edges = edges;
        in.features = features;
        in.nodes = 100000;
        in.reduce = "max";
        in.vendor = v;
        if (!setUp(v, () -> in.init(mode), in::tearDown)) continue;
        vendors.add(v);
        boolean fwd = mode.equals("forward");
        calls.add(v.equals("metakernels") ? mk(() -> {
          if (fwd)
            GraphBench.mkForward(in);
          else
            GraphBench.mkForwardBackward(in);
        })
                                          : torch(() -> {
                                              if (fwd)
                                                in.t.forward(in);
                                              else
                                                in.t.forwardBackward(in);
                                            }));
        states.add(in::tearDown);
      }
    } else if (bench.startsWith("sddmm")) {
      for (String v : new String[] {"metakernels", "libtorch-index_select", "libtorch-sampled_addmm"}) {
        GraphBench.SddmmInputs in = new GraphBench.SddmmInputs();
        in.edges = edges;
        in.features = features;
        in.nodes = 100000;
        in.heads = 1;
        in.vendor = v;
        if (!setUp(v, () -> in.init(bench), in::tearDown)) continue;
        vendors.add(v);
        boolean fwd = bench.equals("sddmmForward");
        calls.add(v.equals("metakernels") ? mk(fwd ? in::mkForward : in::mkForwardBackward)
                                          : torch(fwd ? in::torchForward : in::torchForwardBackward));
        states.add(in::tearDown);
      }
    } else if (bench.equals("gcnSecondOrder")) {
      for (String v : new String[] {"metakernels", "libtorch-index_add", "libtorch-csr"}) {
        GraphBench.Gcn2Inputs in = new GraphBench.Gcn2Inputs();
        in.edges = edges;
        in.features = features;
        in.nodes = 100000;
        in.vendor = v;
        if (!setUp(v, in::setup, in::tearDown)) continue;
        vendors.add(v);
        calls.add(v.equals("metakernels") ? mk(in::mkStep) : torch(in::torchStep));
        states.add(in::tearDown);
      }
    } else if (bench.equals("gatForwardBackward")) { // FEATURES: heads x width per head, e.g. 4x16
      for (String v : new String[] {"metakernels", "libtorch"}) {
        GraphBench.GatInputs in = new GraphBench.GatInputs();
        in.edges = edges;
        in.nodes = 100000;
        in.shape = a[2];
        in.vendor = v;
        in.setup();
        vendors.add(v);
        calls.add(v.equals("metakernels") ? mk(() -> in.mk()) : torch(() -> in.torchForwardBackward()));
        states.add(in::tearDown);
      }
    } else {
      throw new IllegalArgumentException("unknown benchmark " + bench);
    }
    double[][] ms = new double[vendors.size()][rounds];
    for (int r = -warm; r < rounds; r++)
      for (int i = 0; i < calls.size(); i++) {
        long t0 = System.nanoTime();
        calls.get(i).run();
        double t = (System.nanoTime() - t0) / 1e6;
        if (r >= 0) ms[i][r] = t;
      }
    System.out.printf("GraphAB %s edges=%d features=%d: %d interleaved rounds (after %d warm), load %s%n", bench, edges,
        features, rounds, warm, load());
    for (int i = 0; i < vendors.size(); i++) {
      double[] s = ms[i].clone();
      Arrays.sort(s);
      double[] m = ms[0].clone();
      Arrays.sort(m);
      String ratio = i == 0 ? ""
                            : String.format("  %s/metakernels: min %.2fx, median %.2fx", vendors.get(i), s[0] / m[0],
                                s[rounds / 2] / m[rounds / 2]);
      System.out.printf("  %-24s min %9.2f ms  median %9.2f ms%s%n", vendors.get(i), s[0], s[rounds / 2], ratio);
    }
    for (int i = states.size() - 1; i >= 0; i--) { // scopes close innermost (last opened) first
      try {
        states.get(i).close();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }

  /**
   * Runs a vendor's set-up; a peer that refuses (it would not fit in memory: Checks.requireMemory
   * noted why) is left out of the rounds and torn down, metakernels' own failure ends the run.
   */
  static boolean setUp(String vendor, Runnable setup, Runnable tearDown) {
    try {
      setup.run();
      return true;
    } catch (IllegalStateException e) {
      if (vendor.equals("metakernels")) throw e;
      System.out.println("  " + vendor + " left out: " + e.getMessage());
      tearDown.run();
      return false;
    }
  }

  static Runnable mk(Runnable call) {
    return () -> {
      try (Scope s = Scope.open()) {
        call.run();
      }
    };
  }

  static Runnable torch(Runnable call) {
    return () -> {
      try (PointerScope ps = new PointerScope()) {
        call.run();
      }
    };
  }

  static String load() {
    try {
      return new String(java.nio.file.Files.readAllBytes(java.nio.file.Path.of("/proc/loadavg"))).trim();
    } catch (java.io.IOException e) {
      return "?";
    }
  }
}
