package org.metakernels.graph;

import java.util.SplittableRandom;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.Tensor;

/**
 * Graph generators, seeded and deterministic (the same arguments give the same edges on every
 * machine and run).
 *
 * <pre>{@code
 * Tensor edges = Graphs.rmat(100_000, 1_000_000, 7L);      // I64 [2, 1000000]
 * try (Graph g = Graph.fromEdges(edges, 100_000)) { ... }
 * }</pre>
 */
public final class Graphs {
  private Graphs() {}

  /** Graph500's probability a of the R-MAT quadrant (0, 0) (d = 1 − a − b − c = 0.05). */
  public static final double RMAT_A = 0.57;
  /** Graph500's probability b of the R-MAT quadrant (0, 1). */
  public static final double RMAT_B = 0.19;
  /** Graph500's probability c of the R-MAT quadrant (1, 0). */
  public static final double RMAT_C = 0.19;

  /**
   * An R-MAT graph (Chakrabarti, Zhan and Faloutsos 2004) with the Graph500 probabilities:
   * {@link #rmat(long, long, double, double, double, long)} with {@link #RMAT_A}, {@link #RMAT_B},
   * {@link #RMAT_C}. {@code Graphs.rmat(100_000, 1_000_000, 7L)}: I64 [2, 1000000] on the CPU.
   *
   * @param numNodes N ≥ 1
   * @param numEdges E ≥ 0
   * @param seed the random seed
   * @return the edge index, I64 [2, E] (sources; destinations) on the CPU
   */
  public static Tensor rmat(long numNodes, long numEdges, long seed) {
    return rmat(numNodes, numEdges, RMAT_A, RMAT_B, RMAT_C, seed);
  }

  /**
   * An R-MAT graph: each edge descends ⌈log2 N⌉ levels of the adjacency matrix, picking the
   * quadrant (source bit, destination bit) = (0, 0), (0, 1), (1, 0), (1, 1) with probabilities a,
   * b, c and d = 1 − a − b − c; an edge that lands outside N × N is drawn again. The node labels
   * are then shuffled by a seeded permutation, so the hubs are spread over the id range rather than
   * packed at 0 (Graph500 does the same). The degrees follow a power law: a few nodes receive a
   * large share of the edges. Duplicate edges and self-loops occur, as in the model.
   * {@code Graphs.rmat(1000, 8000, 0.57, 0.19, 0.19, 1L)}: I64 [2, 8000].
   *
   * @param numNodes N ≥ 1
   * @param numEdges E ≥ 0 (below 2^31)
   * @param a probability of the (0, 0) quadrant
   * @param b probability of (0, 1)
   * @param c probability of (1, 0)
   * @param seed the random seed
   * @return the edge index, I64 [2, E] (sources; destinations) on the CPU
   */
  public static Tensor rmat(long numNodes, long numEdges, double a, double b, double c, long seed) {
    String op = "Graphs.rmat";
    if (numNodes < 1 || numNodes > Integer.MAX_VALUE || numEdges < 0 || numEdges > Integer.MAX_VALUE / 2 - 8)
      throw new MetakernelsException(
          op + ": numNodes = " + numNodes + " must be in [1, 2^31) and numEdges = " + numEdges + " in [0, 2^30)");
    if (!(a >= 0 && b >= 0 && c >= 0 && a + b + c <= 1))
      throw new MetakernelsException(
          op + ": probabilities a = " + a + ", b = " + b + ", c = " + c + " must be >= 0 with a + b + c <= 1");
    int scale = 0;
    while ((1L << scale) < numNodes) scale++;
    SplittableRandom rng = new SplittableRandom(seed);
    int e = (int) numEdges;
    long[] both = new long[2 * e];
    double ab = a + b, abc = a + b + c;
    for (int i = 0; i < e; i++) {
      long s, d;
      do {
        s = 0;
        d = 0;
        for (int level = 0; level < scale; level++) {
          double u = rng.nextDouble();
          long sb = u >= ab ? 1 : 0; // quadrants (1, 0) and (1, 1)
          long db = (u >= a && u < ab) || u >= abc ? 1 : 0; // quadrants (0, 1) and (1, 1)
          s = (s << 1) | sb;
          d = (d << 1) | db;
        }
      } while (s >= numNodes || d >= numNodes);
      both[i] = s;
      both[e + i] = d;
    }
    // relabel the nodes by a seeded permutation (Fisher-Yates)
    int n = (int) numNodes;
    long[] label = new long[n];
    for (int v = 0; v < n; v++) label[v] = v;
    for (int v = n - 1; v > 0; v--) {
      int j = rng.nextInt(v + 1);
      long t = label[v];
      label[v] = label[j];
      label[j] = t;
    }
    for (int i = 0; i < 2 * e; i++) both[i] = label[(int) both[i]];
    return Tensor.ofIndices(both, 2, e);
  }
}
