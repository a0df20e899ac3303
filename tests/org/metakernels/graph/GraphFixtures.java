package org.metakernels.graph;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.metakernels.tensor.Tensor;

/**
 * Random test graphs with the shapes that break message-passing kernels, and the float64 naive
 * references the tests compare against. The references never call the library: they loop over
 * the edges in input order.
 */
final class GraphFixtures {
  private GraphFixtures() {}

  /** Edges in input order (unsorted). */
  record Edges(long[] src, long[] dst, int n) {
    int e() {
      return src.length;
    }

    Tensor index() {
      long[] both = Arrays.copyOf(src, 2 * src.length);
      System.arraycopy(dst, 0, both, src.length, dst.length);
      return Tensor.ofIndices(both, 2, src.length);
    }
  }

  /**
   * n nodes, about e edges in random order, with: isolated nodes (the last quarter of the ids
   * neither sends nor receives), self-loops, duplicated edges, and one giant row (node 1 receives
   * about 40 % of all edges).
   */
  static Edges messy(long seed, int n, int e) {
    Random r = new Random(seed);
    int active = Math.max(2, n - n / 4);
    List<long[]> edges = new ArrayList<>();
    for (int i = 0; i < e; i++) {
      long s = r.nextInt(active), d;
      double u = r.nextDouble();
      if (u < 0.4)
        d = 1; // the giant row
      else if (u < 0.5)
        d = s; // a self-loop
      else
        d = r.nextInt(active);
      edges.add(new long[] {s, d});
      if (r.nextDouble() < 0.1) edges.add(new long[] {s, d}); // a duplicate
    }
    java.util.Collections.shuffle(edges, r);
    long[] src = new long[edges.size()], dst = new long[edges.size()];
    for (int i = 0; i < src.length; i++) {
      src[i] = edges.get(i)[0];
      dst[i] = edges.get(i)[1];
    }
    return new Edges(src, dst, n);
  }

  /**
   * Hub rows (issue 15: rows longer than 128 non-zeros are reduced in fixed segments of 128): n
   * nodes whose first ones receive 127, 128, 129, 256, 257, 385 and `giant` edges (sources at
   * random, self-loops and duplicates among them), the rest a few each or none; random order.
   */
  static Edges hubs(long seed, int n, int giant) {
    Random r = new Random(seed);
    int[] degrees = {127, 128, 129, 256, 257, 385, giant};
    List<long[]> edges = new ArrayList<>();
    for (int d = 0; d < n; d++) {
      int deg = d < degrees.length ? degrees[d] : (d % 3 == 0 ? 0 : 1 + r.nextInt(4));
      for (int i = 0; i < deg; i++) edges.add(new long[] {r.nextInt(n), d});
    }
    java.util.Collections.shuffle(edges, r);
    long[] src = new long[edges.size()], dst = new long[edges.size()];
    for (int i = 0; i < src.length; i++) {
      src[i] = edges.get(i)[0];
      dst[i] = edges.get(i)[1];
    }
    return new Edges(src, dst, n);
  }

  /** The graph-order permutation by definition: stable sort of input positions by (dst, src). */
  static int[] graphOrder(Edges g) {
    Integer[] idx = new Integer[g.e()];
    for (int i = 0; i < idx.length; i++) idx[i] = i;
    Arrays.sort(
        idx, (a, b) -> g.dst[a] != g.dst[b] ? Long.compare(g.dst[a], g.dst[b]) : Long.compare(g.src[a], g.src[b]));
    int[] r = new int[idx.length];
    for (int i = 0; i < r.length; i++) r[i] = idx[i];
    return r;
  }

  /**
   * out[i, h, d] = ⊕_{e : dst_e = i} w[e, h] · x[src_e, h, d] in float64, edges in input order;
   * x: [n, heads, width] flat, w: [E, heads] (input order) or null; 0 where no edge.
   */
  static double[] aggregate(Edges g, double[] x, double[] w, int heads, int width, Reduce r) {
    int f = heads * width;
    double[] out = new double[g.n * f];
    int[] count = new int[g.n];
    boolean[] seen = new boolean[g.n];
    for (int e = 0; e < g.e(); e++) {
      int i = (int) g.dst[e], j = (int) g.src[e];
      count[i]++;
      for (int h = 0; h < heads; h++) {
        double wk = w == null ? 1.0 : w[e * heads + h];
        for (int d = 0; d < width; d++) {
          double v = wk * x[j * f + h * width + d];
          int o = i * f + h * width + d;
          switch (r) {
            case SUM, MEAN -> out[o] += v; case MAX -> out[o] = seen[i] ? Math.max(out[o], v):
              v;
            case MIN -> out[o] = seen[i] ? Math.min(out[o], v):
              v;
          }
        }
      }
      seen[i] = true;
    }
    if (r == Reduce.MEAN)
      for (int i = 0; i < g.n; i++)
        for (int c = 0; c < f; c++)
          if (count[i] > 0) out[i * f + c] /= count[i];
    return out;
  }

  /** Σ_{e into i} |w_e x_src| per element: the size of a sum's rounding error. */
  static double[] magnitude(Edges g, double[] x, double[] w, int heads, int width) {
    double[] ax = x.clone();
    for (int i = 0; i < ax.length; i++) ax[i] = Math.abs(ax[i]);
    double[] aw = w == null ? null : w.clone();
    if (aw != null)
      for (int i = 0; i < aw.length; i++) aw[i] = Math.abs(aw[i]);
    return aggregate(g, ax, aw, heads, width, Reduce.SUM);
  }

  /** e[k, h] = Σ_d a[dst, h, d] b[src, h, d] for each edge in graph order. */
  static double[] sddmm(Edges g, double[] a, double[] b, int heads, int width) {
    int[] order = graphOrder(g);
    int f = heads * width;
    double[] out = new double[order.length * heads];
    for (int k = 0; k < order.length; k++) {
      int e = order[k], i = (int) g.dst[e], j = (int) g.src[e];
      for (int h = 0; h < heads; h++) {
        double s = 0;
        for (int d = 0; d < width; d++) s += a[i * f + h * width + d] * b[j * f + h * width + d];
        out[k * heads + h] = s;
      }
    }
    return out;
  }

  static double[] uniform(Random r, int n, double lo, double hi) {
    double[] d = new double[n];
    for (int i = 0; i < n; i++) d[i] = lo + (hi - lo) * r.nextDouble();
    return d;
  }
}
