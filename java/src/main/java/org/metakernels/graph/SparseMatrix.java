package org.metakernels.graph;

import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * An immutable sparse matrix in CSR form on the Java heap, float64 values: the adjacency of a
 * relation or a meta-path, A[i, j] = the weight (or count) of the link from row entity i to column
 * entity j. Within a row the columns are strictly increasing (duplicates of the input are summed
 * when built from COO). This is the host-side structure meta-paths are composed in; {@link
 * #toGraph(Device, DType)} turns a square one into a message-passing {@link Graph}.
 *
 * <p><b>Sparse-sparse product.</b> {@link #multiply(SparseMatrix)} is Gustavson's row-by-row
 * SpGEMM in Java: row i of A·B accumulates A[i, k] · B[k, :] over the non-zeros k of row i, in
 * increasing k, into a dense accumulator, then emits the touched columns in increasing order. Why
 * Java and not a native kernel: the product runs once per meta-path on a graph that lives on the
 * host (the relations are read from files), its cost is the flop count Σ_k nnz(A[:, k]) ·
 * nnz(B[k, :]) (ACM P–S–P: about 4.3 M), well under a second here, and the result is a graph that
 * is built once and then used by the native SpMM on every step. Determinism: each output row is
 * computed by one task in a fixed order of k, so the values are bitwise the same for any number of
 * threads (rows are split over the common fork-join pool; {@link #multiply(SparseMatrix, int)}
 * takes an explicit parallelism for the tests).
 *
 * <pre>{@code
 * SparseMatrix pa = SparseMatrix.fromCoo(4019, 7167, paper, author, null);   // paper-author
 * SparseMatrix pap = pa.multiply(pa.transpose());                            // [4019, 4019], path counts
 * SparseMatrix binary = pap.binarized();                                     // 1 where a path exists
 * }</pre>
 */
public final class SparseMatrix {
  private final int rows;
  private final int cols;
  private final long[] rowPtr;
  private final int[] colIdx;
  private final double[] values;

  private SparseMatrix(int rows, int cols, long[] rowPtr, int[] colIdx, double[] values) {
    this.rows = rows;
    this.cols = cols;
    this.rowPtr = rowPtr;
    this.colIdx = colIdx;
    this.values = values;
  }

  /**
   * The matrix of a COO list: entry e is (row[e], col[e]) with value w[e] (1 when w is null);
   * repeated (row, col) pairs are summed, so an edge list with a repeated edge counts it twice.
   * {@code SparseMatrix.fromCoo(2, 3, new long[] {0, 1}, new long[] {2, 0}, null)}: [2, 3], 2
   * non-zeros.
   *
   * @param rows the row count
   * @param cols the column count
   * @param row the row of each entry, in [0, rows)
   * @param col the column of each entry, in [0, cols), as many as row
   * @param w the value of each entry, or null for ones
   * @return the matrix
   * @throws MetakernelsException for arrays of different lengths or an index out of range (the first
   *     bad entry named)
   */
  public static SparseMatrix fromCoo(long rows, long cols, long[] row, long[] col, double[] w) {
    String op = "SparseMatrix.fromCoo";
    if (rows < 0 || cols < 0 || rows > Integer.MAX_VALUE - 8 || cols > Integer.MAX_VALUE - 8)
      throw new MetakernelsException(op + ": shape [" + rows + ", " + cols + "] out of range");
    if (row.length != col.length || (w != null && w.length != row.length))
      throw new MetakernelsException(op + ": " + row.length + " rows, " + col.length + " columns and "
          + (w == null ? "no" : String.valueOf(w.length)) + " values: the lengths differ");
    int n = row.length;
    for (int e = 0; e < n; e++)
      if (row[e] < 0 || row[e] >= rows || col[e] < 0 || col[e] >= cols)
        throw new MetakernelsException(op + ": entry " + e + " (" + row[e] + ", " + col[e] + ") lies outside the ["
            + rows + ", " + cols + "] matrix");
    int r = (int) rows, c = (int) cols;
    // stable counting sort by column, then by row: entries by (row, col, input position)
    int[] byCol = sortBy(col, identity(n), c);
    int[] order = sortBy(row, byCol, r);
    long[] ptr = new long[r + 1];
    int[] ci = new int[n];
    double[] v = new double[n];
    int m = 0;
    int lastRow = -1, lastCol = -1;
    for (int k = 0; k < n; k++) {
      int e = order[k];
      int i = (int) row[e], j = (int) col[e];
      double x = w == null ? 1.0 : w[e];
      if (i == lastRow && j == lastCol) {
        v[m - 1] += x; // duplicates summed in input order: fixed
        continue;
      }
      ci[m] = j;
      v[m] = x;
      m++;
      ptr[i + 1]++;
      lastRow = i;
      lastCol = j;
    }
    for (int i = 0; i < r; i++) ptr[i + 1] += ptr[i];
    return new SparseMatrix(r, c, ptr, Arrays.copyOf(ci, m), Arrays.copyOf(v, m));
  }

  /**
   * A matrix from CSR arrays (scipy's {@code indptr}, {@code indices}, {@code data}), validated;
   * unsorted columns within a row are sorted and duplicates summed.
   * {@code SparseMatrix.fromCsr(2, 2, new long[] {0, 1, 2}, new long[] {1, 0}, null)}.
   *
   * @param rows the row count
   * @param cols the column count
   * @param indptr [rows + 1], non-decreasing from 0
   * @param indices the column of each stored entry, in [0, cols)
   * @param data the values, or null for ones
   * @return the matrix
   * @throws MetakernelsException when the arrays do not describe a [rows, cols] CSR matrix
   */
  public static SparseMatrix fromCsr(long rows, long cols, long[] indptr, long[] indices, double[] data) {
    String op = "SparseMatrix.fromCsr";
    if (rows < 0 || rows > Integer.MAX_VALUE - 8)
      throw new MetakernelsException(op + ": shape [" + rows + ", " + cols + "] out of range");
    if (indptr.length != rows + 1)
      throw new MetakernelsException(
          op + ": indptr has " + indptr.length + " entries, expected rows + 1 = " + (rows + 1));
    if (indptr[0] != 0 || indptr[(int) rows] != indices.length)
      throw new MetakernelsException(op + ": indptr must run from 0 to nnz = " + indices.length + ", got " + indptr[0]
          + " .. " + indptr[(int) rows]);
    for (int i = 0; i < rows; i++)  // all of it before any use: from 0 to nnz and monotone, so in range
      if (indptr[i + 1] < indptr[i])
        throw new MetakernelsException(
            op + ": indptr decreases at row " + i + " (" + indptr[i] + " > " + indptr[i + 1] + ")");
    long[] row = new long[indices.length];
    for (int i = 0; i < rows; i++)
      for (long k = indptr[i]; k < indptr[i + 1]; k++) row[(int) k] = i;
    return fromCoo(rows, cols, row, indices, data);
  }

  private static int[] identity(int n) {
    int[] r = new int[n];
    for (int i = 0; i < n; i++) r[i] = i;
    return r;
  }

  private static int[] sortBy(long[] key, int[] order, int n) {
    int[] start = new int[n + 1];
    for (int i : order) start[(int) key[i] + 1]++;
    for (int v = 0; v < n; v++) start[v + 1] += start[v];
    int[] out = new int[order.length];
    for (int i : order) out[start[(int) key[i]]++] = i;
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // algebra

  /**
   * The transpose, [cols, rows]: {@code pa.transpose()} is the author–paper relation of a
   * paper–author one.
   *
   * @return a new matrix
   */
  public SparseMatrix transpose() {
    int nnz = colIdx.length;
    long[] ptr = new long[cols + 1];
    for (int j : colIdx) ptr[j + 1]++;
    for (int j = 0; j < cols; j++) ptr[j + 1] += ptr[j];
    long[] next = Arrays.copyOf(ptr, cols);
    int[] ci = new int[nnz];
    double[] v = new double[nnz];
    for (int i = 0; i < rows; i++)
      for (long k = rowPtr[i]; k < rowPtr[i + 1]; k++) {
        int p = (int) next[colIdx[(int) k]]++;
        ci[p] = i; // rows visited in increasing order: columns of the transpose stay sorted
        v[p] = values[(int) k];
      }
    return new SparseMatrix(cols, rows, ptr, ci, v);
  }

  /**
   * The sparse-sparse product this · other (Gustavson, see the class comment), on the common
   * fork-join pool. {@code pa.multiply(pa.transpose())}: the P–A–P path counts.
   *
   * @param other [cols, K]
   * @return [rows, K]
   * @throws MetakernelsException when the inner sizes differ
   */
  public SparseMatrix multiply(SparseMatrix other) {
    return multiply(other, ForkJoinPool.getCommonPoolParallelism());
  }

  /**
   * The sparse-sparse product with at most {@code threads} threads; the result is bitwise the same
   * for every thread count. {@code a.multiply(b, 1)}.
   *
   * @param other [cols, K]
   * @param threads 1 or more
   * @return [rows, K]
   * @throws MetakernelsException when the inner sizes differ or threads is below 1
   */
  public SparseMatrix multiply(SparseMatrix other, int threads) {
    String op = "SparseMatrix.multiply";
    if (cols != other.rows)
      throw new MetakernelsException(op + ": inner sizes differ: " + describe() + " x " + other.describe());
    if (threads < 1) throw new MetakernelsException(op + ": threads = " + threads + ", expected >= 1");
    int k = other.cols;
    // symbolic pass: the exact non-zero count of every output row
    long[] rowNnz = new long[rows + 1];
    int chunks = Math.max(1, Math.min(rows, threads * 4));
    forChunks(chunks, threads, (lo, hi) -> {
      int[] mark = new int[k];
      Arrays.fill(mark, -1);
      for (int i = lo; i < hi; i++) {
        long cnt = 0;
        for (long p = rowPtr[i]; p < rowPtr[i + 1]; p++) {
          int mid = colIdx[(int) p];
          for (long q = other.rowPtr[mid]; q < other.rowPtr[mid + 1]; q++) {
            int j = other.colIdx[(int) q];
            if (mark[j] != i) {
              mark[j] = i;
              cnt++;
            }
          }
        }
        rowNnz[i + 1] = cnt;
      }
    });
    for (int i = 0; i < rows; i++) rowNnz[i + 1] += rowNnz[i];
    long total = rowNnz[rows];
    if (total > Integer.MAX_VALUE - 8)
      throw new MetakernelsException(op + ": the product " + describe() + " x " + other.describe() + " has " + total
          + " non-zeros, more than a Java array holds; aggregate through MetaPath's factorised chain instead");
    int[] ci = new int[(int) total];
    double[] v = new double[(int) total];
    // numeric pass: a dense accumulator per task, k in increasing order per row (fixed sum order)
    forChunks(chunks, threads, (lo, hi) -> {
      double[] acc = new double[k];
      boolean[] seen = new boolean[k];
      int[] touched = new int[k];
      for (int i = lo; i < hi; i++) {
        int m = 0;
        for (long p = rowPtr[i]; p < rowPtr[i + 1]; p++) {
          int mid = colIdx[(int) p];
          double a = values[(int) p];
          for (long q = other.rowPtr[mid]; q < other.rowPtr[mid + 1]; q++) {
            int j = other.colIdx[(int) q];
            if (!seen[j]) {
              seen[j] = true;
              touched[m++] = j;
            }
            acc[j] += a * other.values[(int) q];
          }
        }
        Arrays.sort(touched, 0, m);
        int base = (int) rowNnz[i];
        for (int t = 0; t < m; t++) {
          int j = touched[t];
          ci[base + t] = j;
          v[base + t] = acc[j];
          acc[j] = 0.0;
          seen[j] = false;
        }
      }
    });
    return new SparseMatrix(rows, k, rowNnz, ci, v);
  }

  private interface Range {
    void run(int lo, int hi);
  }

  /** Rows split into {@code chunks} fixed ranges; a range is always run whole by one thread. */
  private void forChunks(int chunks, int threads, Range body) {
    int per = (rows + chunks - 1) / chunks;
    if (threads == 1 || rows < 64) {
      body.run(0, rows);
      return;
    }
    threads = Math.min(threads, chunks);  // no more workers than ranges (ForkJoinPool refuses past 32767)
    ForkJoinPool pool =
        threads == ForkJoinPool.getCommonPoolParallelism() ? ForkJoinPool.commonPool() : new ForkJoinPool(threads);
    try {
      pool.submit(() -> IntStream.range(0, chunks).parallel().forEach(c -> {
            int lo = Math.min(rows, c * per), hi = Math.min(rows, lo + per);
            if (lo < hi) body.run(lo, hi);
          }))
          .join();
    } finally {
      if (pool != ForkJoinPool.commonPool()) pool.shutdown();
    }
  }

  /**
   * The non-zero count of this · other without forming it (the symbolic pass of the product, cost
   * the flop count): the cost estimate of a materialised meta-path. {@code ps.productNnz(sp)}.
   *
   * @param other [cols, K]
   * @return nnz(this · other)
   * @throws MetakernelsException when the inner sizes differ
   */
  public long productNnz(SparseMatrix other) {
    if (cols != other.rows)
      throw new MetakernelsException(
          "SparseMatrix.productNnz: inner sizes differ: " + describe() + " x " + other.describe());
    int[] mark = new int[other.cols];
    Arrays.fill(mark, -1);
    long total = 0;
    for (int i = 0; i < rows; i++)
      for (long p = rowPtr[i]; p < rowPtr[i + 1]; p++) {
        int mid = colIdx[(int) p];
        for (long q = other.rowPtr[mid]; q < other.rowPtr[mid + 1]; q++) {
          int j = other.colIdx[(int) q];
          if (mark[j] != i) {
            mark[j] = i;
            total++;
          }
        }
      }
    return total;
  }

  /**
   * The same pattern with every stored value 1: the binary meta-path graph of the published data
   * sets. {@code pap.binarized()}.
   *
   * @return a new matrix
   */
  public SparseMatrix binarized() {
    double[] v = new double[values.length];
    Arrays.fill(v, 1.0);
    return new SparseMatrix(rows, cols, rowPtr, colIdx, v);
  }

  /**
   * Every row divided by its sum (rows summing to 0 stay 0): D^-1 A, a mean over path counts.
   * {@code pap.rowNormalized()}.
   *
   * @return a new matrix
   */
  public SparseMatrix rowNormalized() {
    double[] s = rowSums();
    double[] v = new double[values.length];
    for (int i = 0; i < rows; i++)
      for (long k = rowPtr[i]; k < rowPtr[i + 1]; k++) v[(int) k] = s[i] == 0 ? 0.0 : values[(int) k] / s[i];
    return new SparseMatrix(rows, cols, rowPtr, colIdx, v);
  }

  /**
   * The sum of each row, in column order. {@code a.rowSums()} has {@code rows()} entries.
   *
   * @return the row sums
   */
  public double[] rowSums() {
    double[] s = new double[rows];
    for (int i = 0; i < rows; i++)
      for (long k = rowPtr[i]; k < rowPtr[i + 1]; k++) s[i] += values[(int) k];
    return s;
  }

  /**
   * The sum with another matrix of the same shape (patterns merged, values added): the coarse view
   * of several meta-paths. {@code pap.add(psp)}.
   *
   * @param other the same shape
   * @return a new matrix
   * @throws MetakernelsException when the shapes differ
   */
  public SparseMatrix add(SparseMatrix other) {
    if (rows != other.rows || cols != other.cols)
      throw new MetakernelsException("SparseMatrix.add: shapes differ: " + describe() + " + " + other.describe());
    long[] r = new long[colIdx.length + other.colIdx.length];
    long[] c = new long[r.length];
    double[] v = new double[r.length];
    int m = 0;
    for (SparseMatrix s : new SparseMatrix[] {this, other})
      for (int i = 0; i < s.rows; i++)
        for (long k = s.rowPtr[i]; k < s.rowPtr[i + 1]; k++) {
          r[m] = i;
          c[m] = s.colIdx[(int) k];
          v[m++] = s.values[(int) k];
        }
    return fromCoo(rows, cols, r, c, v);
  }

  // ------------------------------------------------------------------------------------------
  // conversions

  /**
   * The square matrix as a weighted message-passing graph: entry A[i, j] becomes the edge j → i
   * with weight A[i, j], so {@code MessagePassing.aggregate(g, x, g.edgeWeight(), Reduce.SUM)} is
   * A · x. {@code pap.toGraph(Device.CPU, DType.F32)}.
   *
   * @param device where the graph lives
   * @param dtype F32 or F64, the weights' type
   * @return a new graph (close it)
   * @throws MetakernelsException when the matrix is not square or the dtype not floating
   */
  public Graph toGraph(Device device, DType dtype) {
    String op = "SparseMatrix.toGraph";
    if (rows != cols) throw new MetakernelsException(op + ": a graph needs a square matrix, got " + describe());
    if (!dtype.isFloating()) throw new MetakernelsException(op + ": dtype must be F32 or F64, got " + dtype);
    int nnz = colIdx.length;
    long[] src = new long[nnz];
    long[] dst = new long[nnz];
    for (int i = 0; i < rows; i++)
      for (long k = rowPtr[i]; k < rowPtr[i + 1]; k++) {
        src[(int) k] = colIdx[(int) k];
        dst[(int) k] = i;
      }
    try (Scope tmp = Scope.open()) {
      Tensor edges = Tensor.ofIndices(concat(src, dst), 2, nnz);
      Tensor w = Tensor.of(values.clone(), nnz);
      if (dtype != DType.F64) w = w.castTo(dtype);
      if (device != Device.CPU) {
        edges = edges.to(device);
        w = w.to(device);
      }
      return Graph.fromEdges(edges, rows, w);
    }
  }

  private static long[] concat(long[] a, long[] b) {
    long[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  /**
   * A dense copy, row-major [rows, cols] (for tests and small matrices). {@code a.toDense()}.
   *
   * @return rows · cols values
   * @throws MetakernelsException when the matrix has more than 2^31 - 9 entries
   */
  public double[] toDense() {
    long n = (long) rows * cols;
    if (n > Integer.MAX_VALUE - 8) throw new MetakernelsException("SparseMatrix.toDense: " + describe() + " too large");
    double[] d = new double[(int) n];
    for (int i = 0; i < rows; i++)
      for (long k = rowPtr[i]; k < rowPtr[i + 1]; k++) d[i * cols + colIdx[(int) k]] = values[(int) k];
    return d;
  }

  // ------------------------------------------------------------------------------------------
  // accessors

  /**
   * The row count.
   *
   * @return rows
   */
  public int rows() {
    return rows;
  }

  /**
   * The column count.
   *
   * @return cols
   */
  public int cols() {
    return cols;
  }

  /**
   * The number of stored entries.
   *
   * @return nnz
   */
  public long nnz() {
    return colIdx.length;
  }

  /**
   * A copy of the row pointer, [rows + 1]: O(rows) per call, so take it once outside a loop (or use
   * {@link #rowStart(int)}).
   *
   * @return indptr
   */
  public long[] rowPtr() {
    return rowPtr.clone();
  }

  /**
   * A copy of the column indices, [nnz], increasing within a row: O(nnz) per call, so take it once
   * outside a loop (or use {@link #colIndex(long)} / {@link #forEachNonZero}).
   *
   * @return indices
   */
  public int[] colIndices() {
    return colIdx.clone();
  }

  /**
   * A copy of the values, [nnz]: O(nnz) per call, so take it once outside a loop (or use
   * {@link #value(long)} / {@link #forEachNonZero}).
   *
   * @return data
   */
  public double[] values() {
    return values.clone();
  }

  /**
   * Where row i's entries start in the CSR order, without a copy: row i holds entries
   * {@code rowStart(i)} to {@code rowStart(i + 1) - 1}. {@code a.rowStart(a.rows())} is {@code a.nnz()}.
   *
   * @param i a row, 0..rows (rows itself gives nnz)
   * @return the row pointer's entry i
   * @throws IndexOutOfBoundsException outside 0..rows
   */
  public long rowStart(int i) {
    return rowPtr[Objects.checkIndex(i, rows + 1)];
  }

  /**
   * The column of entry k in the CSR order, without a copy. {@code a.colIndex(0)}.
   *
   * @param k an entry, 0..nnz-1
   * @return its column
   * @throws IndexOutOfBoundsException outside 0..nnz-1
   */
  public int colIndex(long k) {
    return colIdx[Objects.checkIndex((int) Math.min(k, Integer.MAX_VALUE), colIdx.length)];
  }

  /**
   * The value of entry k in the CSR order, without a copy. {@code a.value(0)}.
   *
   * @param k an entry, 0..nnz-1
   * @return its value
   * @throws IndexOutOfBoundsException outside 0..nnz-1
   */
  public double value(long k) {
    return values[Objects.checkIndex((int) Math.min(k, Integer.MAX_VALUE), values.length)];
  }

  /** What {@link #forEachNonZero} calls per stored entry. */
  @FunctionalInterface
  public interface EntryVisitor {
    /**
     * One stored entry.
     *
     * @param row its row
     * @param col its column
     * @param value its value
     */
    void visit(int row, int col, double value);
  }

  /**
   * Calls {@code visitor} for every stored entry in CSR order (rows in order, columns increasing
   * within a row), without copying the arrays. {@code a.forEachNonZero((i, j, v) -> sum[i] += v)}.
   *
   * @param visitor what to call
   */
  public void forEachNonZero(EntryVisitor visitor) {
    for (int i = 0; i < rows; i++)
      for (int k = (int) rowPtr[i], end = (int) rowPtr[i + 1]; k < end; k++) visitor.visit(i, colIdx[k], values[k]);
  }

  /**
   * The value at (i, j), 0 when not stored (binary search in the row). {@code a.get(0, 2)}.
   *
   * @param i the row
   * @param j the column
   * @return A[i, j]
   */
  public double get(int i, int j) {
    if (i < 0 || i >= rows || j < 0 || j >= cols)
      throw new IndexOutOfBoundsException("SparseMatrix.get(" + i + ", " + j + ") of " + describe());
    int lo = (int) rowPtr[i], hi = (int) rowPtr[i + 1];
    int p = Arrays.binarySearch(colIdx, lo, hi, j);
    return p >= 0 ? values[p] : 0.0;
  }

  /**
   * Bitwise equality of shape, pattern and values (the determinism check).
   *
   * @param o another matrix
   * @return true when identical
   */
  public boolean bitwiseEquals(SparseMatrix o) {
    if (rows != o.rows || cols != o.cols || !Arrays.equals(rowPtr, o.rowPtr) || !Arrays.equals(colIdx, o.colIdx))
      return false;
    for (int k = 0; k < values.length; k++)
      if (Double.doubleToRawLongBits(values[k]) != Double.doubleToRawLongBits(o.values[k])) return false;
    return true;
  }

  /**
   * "SparseMatrix[4019, 60] nnz=4019".
   *
   * @return the description
   */
  public String describe() {
    return "SparseMatrix[" + rows + ", " + cols + "] nnz=" + colIdx.length;
  }

  @Override
  public String toString() {
    return describe();
  }
}
