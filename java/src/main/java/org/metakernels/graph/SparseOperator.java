package org.metakernels.graph;

import java.util.List;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * A sparse matrix A [rows, cols], square or not, as the operator x ↦ A · x on [cols, ...] tensors:
 * one {@link MessagePassing#aggregate} over the square graph of max(rows, cols) nodes (entry A[i, j]
 * the edge j → i with its weight), x zero-padded to that many rows and the result cut to rows. So it
 * is differentiable in x to any order and runs on either device, as every aggregation does. A
 * relation between two node types (papers × authors), a bag of words (papers × words) against a
 * weight matrix, or one hop of a {@link MetaPath} chain.
 *
 * <pre>{@code
 * try (SparseOperator pa = SparseOperator.of(hetero.adjacency("paper", "author").rowNormalized(),
 *          DType.F32, Device.CPU)) {
 *   Tensor h = pa.apply(x);                          // x [A, F] over the authors: each paper's mean, [P, F]
 * }
 * }</pre>
 */
public final class SparseOperator implements AutoCloseable {
  private final Graph graph;
  private final int rows, cols;
  private final DType dtype;
  private final Device device;

  private SparseOperator(Graph graph, int rows, int cols, DType dtype, Device device) {
    this.graph = graph;
    this.rows = rows;
    this.cols = cols;
    this.dtype = dtype;
    this.device = device;
  }

  /**
   * The operator of a matrix, its weights in {@code dtype} on {@code device}.
   *
   * @param a the matrix [rows, cols]
   * @param dtype F32 or F64
   * @param device where the graph and the operands live
   * @return a new operator (close it)
   * @throws MetakernelsException when the dtype is not floating
   */
  public static SparseOperator of(SparseMatrix a, DType dtype, Device device) {
    SparseMatrix sq = a.rows() == a.cols() ? a : pad(a, Math.max(a.rows(), a.cols()));
    return new SparseOperator(sq.toGraph(device, dtype), a.rows(), a.cols(), dtype, device);
  }

  /** r [m, n] as a square [s, s] matrix, s = max(m, n), zero elsewhere. */
  private static SparseMatrix pad(SparseMatrix r, int s) {
    long[] ptr = r.rowPtr();
    int[] ci = r.colIndices();
    long[] row = new long[ci.length];
    long[] col = new long[ci.length];
    for (int i = 0; i < r.rows(); i++)
      for (long k = ptr[i]; k < ptr[i + 1]; k++) {
        row[(int) k] = i;
        col[(int) k] = ci[(int) k];
      }
    return SparseMatrix.fromCoo(s, s, row, col, r.values());
  }

  /**
   * A · x. {@code pa.apply(authors)} of [A, F] is [P, F].
   *
   * @param x [cols, ...] of the operator's dtype and device
   * @return [rows, ...]
   * @throws MetakernelsException when x does not fit (rows, dtype, device) or is closed
   */
  public Tensor apply(Tensor x) {
    String op = "SparseOperator.apply";
    x.address(op);
    if (x.rank() < 1 || x.size(0) != cols || x.dtype() != dtype || x.device() != device)
      throw new MetakernelsException(op + ": the [" + rows + ", " + cols + "] operator expects " + dtype + " [" + cols
          + ", ...] on " + device + ", got " + x.describe());
    int s = Math.max(rows, cols);
    Tensor h = x;
    if (cols < s) {
      long[] shape = x.shape().clone();
      shape[0] = s - cols;
      h = Tensor.concat(List.of(x, Tensor.zeros(shape, dtype, device)), 0);
    }
    h = MessagePassing.aggregate(graph, h, graph.edgeWeight(), Reduce.SUM);
    return rows < s ? h.narrow(0, 0, rows) : h;
  }

  /**
   * The matrix's rows: the output's first extent.
   *
   * @return rows
   */
  public int rows() {
    return rows;
  }

  /**
   * The matrix's columns: the operand's first extent.
   *
   * @return cols
   */
  public int cols() {
    return cols;
  }

  /** Frees the graph (idempotent). */
  @Override
  public void close() {
    graph.close();
  }
}
