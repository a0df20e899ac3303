package org.metakernels.bench;

/**
 * The bytes a graph op must move at least, shared by the CPU ({@link GraphBench}) and the GPU
 * ({@link GpuGraphShapesBench}) benchmarks so that both report the same figure for the same shape:
 * F32 features and weights, I64 indices, every gathered row counted as a miss (no reuse through
 * the caches), every output written once. Divided by a call's time it gives the achieved rate, and
 * by the copy rate measured in the same run the share of copy bandwidth (benchmarks/gpu/graph.py).
 */
final class GraphBytes {
  private GraphBytes() {}

  /**
   * One pass over a compressed structure of n rows and e entries: the pointers and indices, read twice (structure
   * check, kernel).
   */
  static double structure(double n, double e) {
    return 2 * (8 * (n + 1) + 8 * e);
  }

  /**
   * The weighted aggregation out[i] = Σ_{k: dst_k = i} w_k x[src_k] (sum or mean) of x [n, f]:
   * forward, or forward plus the gradients of x and of the weights.
   */
  static double spmm(double n, double e, double f, boolean backward) {
    // forward: the CSR, the weights, one x row per edge, the output written
    double fwd = structure(n, e) + 4 * e + 4 * e * f + 4 * n * f;
    if (!backward) return fwd;
    // backward: the CSC SpMM (its pointers twice, the weights gathered through the CSC permutation,
    // one gradient row per edge, dx written) and the SDDMM (pointers twice, a dOut row per node,
    // an x row per edge, dw written)
    double bwd =
        structure(n, e) + 8 * e + 8 * e + 4 * e * f + 4 * n * f + structure(n, e) + 4 * n * f + 4 * e * f + 4 * e;
    return fwd + bwd;
  }

  /**
   * The sampled product e_k = ⟨a[dst_k], b[src_k]⟩ of a, b [n, f]: forward, or forward plus the
   * gradients of a and b (two SpMMs of dE, over the CSR and the CSC).
   */
  static double sddmm(double n, double e, double f, boolean backward) {
    // forward: the CSR, an a row per node, a b row per edge, e written
    double bytes = structure(n, e) + 4 * n * f + 4 * e * f + 4 * e;
    // backward: pointers twice each, dE (through the CSC permutation), a row per edge, da and db written
    if (backward) bytes += 2 * structure(n, e) + 4 * e + 8 * e + 2 * (4 * e * f + 4 * n * f);
    return bytes;
  }

  /**
   * The attention part of a GAT layer on xh [n, h, f] (scores, edge softmax, aggregation, as
   * {@code MessagePassing.gatAggregate}) forward and backward (gradients of xh and of the two
   * attention vectors): the scores read xh twice and write [n, h] twice; the forward pass reads the
   * CSR, an xh row and a source score per edge, the destination scores, writes out [n, h, f] and
   * the row log-sum-exp [n, h]; the backward reads dOut and out, passes over the CSR (an xh row and
   * a source score per edge) and the CSC (its permutation, a dOut row and the destination's score
   * and log-sum-exp per edge), writes dxh and the two score gradients, and the scores' backward
   * reads xh and writes its share of dxh again.
   */
  static double gat(double n, double e, double h, double f) {
    double row = 4 * h * f, scal = 4 * h;
    double scores = 2 * (n * row + n * scal);
    double fwd = structure(n, e) + e * (row + scal) + n * scal + n * row + n * scal;
    double bwd = 2 * n * row + n * scal + structure(n, e) + e * (row + scal) + structure(n, e) + 8 * e
        + e * (row + 3 * scal) + n * row + 2 * n * scal + 2 * n * row + n * row;
    return scores + fwd + bwd;
  }

  /**
   * A second-order step through a two-layer GCN (GraphBench's gcnSecondOrder) over Â with e edges
   * (self-loops included), width f: its eight SpMMs of width f (two forward, two in the first
   * backward, four in the backward of that backward), each over Â with its weights; the dense parts
   * (the linear maps, tanh, the loss) are not counted, so this is a lower bound.
   */
  static double gcnSecondOrder(double n, double e, double f) {
    return 8 * (structure(n, e) + 4 * e + 4 * e * f + 4 * n * f);
  }

  /** The report line: "WHAT: moves at least X MB (Y bytes; every gathered row counted)". */
  static String note(String what, double bytes) {
    return String.format(
        "%s: moves at least %.1f MB (%.3g bytes; every gathered row counted)", what, bytes / 1e6, bytes);
  }

  /**
   * The same line with the byte count in full ("(123456789 bytes;"), which benchmarks/gpu/graph.py
   * reads back from the notes file to compute the achieved rate of each JMH row.
   */
  static String noteExact(String what, double bytes) {
    return String.format(
        "%s: moves at least %.1f MB (%.0f bytes; every gathered row counted)", what, bytes / 1e6, bytes);
  }
}
