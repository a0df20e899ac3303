package org.metakernels.io;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.metakernels.graph.Graph;
import org.metakernels.graph.SparseMatrix;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.Tensor;

/**
 * An edge list from a plain text or CSV file: one edge per line, {@code i j} or {@code i j w}
 * (source, destination, optional weight), fields separated by spaces, tabs or commas. Blank lines
 * and lines starting with {@code #} or {@code %} are skipped; a first line whose first two fields
 * are not integers is a header (CSV) and skipped. Either every edge has a weight or none does. Ids
 * are non-negative integers; the same edge may appear more than once (it then counts twice).
 *
 * <pre>{@code
 * EdgeList pa = EdgeList.read(Path.of("acm/pa.txt"));     // 13,407 paper-author links
 * try (Graph g = pa.toGraph(4019 + 7167)) { ... }
 * }</pre>
 *
 * @param src the source of each edge
 * @param dst the destination of each edge
 * @param weight the weight of each edge, or null when the file has none
 */
public record EdgeList(long[] src, long[] dst, double[] weight) {
  /**
   * Reads a file. {@code EdgeList.read(Path.of("edges.csv"))}.
   *
   * @param file the file
   * @return its edges in file order
   * @throws IOException when unreadable or malformed (the message names the file and the line)
   */
  public static EdgeList read(Path file) throws IOException {
    long[] s = new long[1024], d = new long[1024];
    double[] w = new double[1024];
    int n = 0;
    Boolean weighted = null;
    int lineNo = 0;
    boolean first = true;
    try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      String line;
      while ((line = readLine(r, file, lineNo + 1)) != null) {
        lineNo++;
        if (lineNo == 1 && line.startsWith("\uFEFF")) line = line.substring(1); // a UTF-8 byte-order mark
        String t = line.trim();
        if (t.isEmpty() || t.startsWith("#") || t.startsWith("%")) continue;
        String[] f = t.split("[\\s,]+");
        if (first) {
          first = false;
          if (f.length >= 2 && !isInteger(f[0]) && !isInteger(f[1])) continue; // a CSV header
        }
        if (f.length != 2 && f.length != 3)
          throw new IOException(file + ": line " + lineNo + ": expected 'i j' or 'i j w', got '" + t + "'");
        boolean hasW = f.length == 3;
        if (weighted == null) weighted = hasW;
        if (weighted != hasW)
          throw new IOException(file + ": line " + lineNo + ": " + (hasW ? "a weight" : "no weight") + " where earlier"
              + " lines had " + (weighted ? "one" : "none"));
        if (n == s.length) {
          s = Arrays.copyOf(s, 2 * n);
          d = Arrays.copyOf(d, 2 * n);
          w = Arrays.copyOf(w, 2 * n);
        }
        try {
          s[n] = Long.parseLong(f[0]);
          d[n] = Long.parseLong(f[1]);
          if (hasW) w[n] = Double.parseDouble(f[2]);
        } catch (NumberFormatException e) {
          throw new IOException(file + ": line " + lineNo + ": not a number in '" + t + "'");
        }
        if (s[n] < 0 || d[n] < 0)
          throw new IOException(file + ": line " + lineNo + ": negative node id in '" + t + "'");
        n++;
      }
    }
    return new EdgeList(
        Arrays.copyOf(s, n), Arrays.copyOf(d, n), Boolean.TRUE.equals(weighted) ? Arrays.copyOf(w, n) : null);
  }

  private static boolean isInteger(String s) {
    try {
      Long.parseLong(s);
      return true;
    } catch (NumberFormatException e) {
      return false;
    }
  }

  /**
   * Writes the edges as "i j" or "i j w" lines (w in Java's shortest round-trip form).
   * {@code edges.write(Path.of("out.txt"))}.
   *
   * @param file the file
   * @throws IOException when it cannot be written
   */
  public void write(Path file) throws IOException {
    try (BufferedWriter out = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
      for (int e = 0; e < src.length; e++) {
        out.write(src[e] + " " + dst[e] + (weight != null ? " " + weight[e] : ""));
        out.newLine();
      }
    }
  }

  /**
   * The number of edges.
   *
   * @return E
   */
  public int size() {
    return src.length;
  }

  /**
   * The largest id plus one over sources ({@code column = 0}) or destinations (1).
   *
   * @param column 0 or 1
   * @return max + 1, or 0 for no edges
   */
  public long extent(int column) {
    long m = -1;
    for (long v : column == 0 ? src : dst) m = Math.max(m, v);
    return m + 1;
  }

  /**
   * The edge index as an I64 [2, E] tensor on the CPU (sources; destinations).
   * {@code edges.toTensor()}.
   *
   * @return the edge index, owned by the current scope
   */
  public Tensor toTensor() {
    long[] both = Arrays.copyOf(src, 2 * src.length);
    System.arraycopy(dst, 0, both, src.length, dst.length);
    return Tensor.ofIndices(both, 2, src.length);
  }

  /**
   * A graph of {@code numNodes} nodes on the CPU (weights ignored: see {@link #toMatrix}).
   * {@code edges.toGraph(n)}.
   *
   * @param numNodes N; every id must lie below it
   * @return the graph (close it)
   * @throws MetakernelsException for an id ≥ N
   */
  public Graph toGraph(long numNodes) {
    return Graph.fromEdges(src, dst, numNodes);
  }

  /**
   * The sparse matrix [rows, cols] with A[src, dst] = weight (1 when none), repeated edges summed:
   * a relation of a heterogeneous graph. {@code pa.toMatrix(4019, 7167)}.
   *
   * @param rows the row count (source ids below it)
   * @param cols the column count (destination ids below it)
   * @return the matrix
   * @throws MetakernelsException for an id out of range
   */
  public SparseMatrix toMatrix(long rows, long cols) {
    return SparseMatrix.fromCoo(rows, cols, src, dst, weight);
  }

  /** A line; bytes that are not UTF-8 are an error naming the file and the line. */
  private static String readLine(BufferedReader r, Path file, int lineNo) throws IOException {
    try {
      return r.readLine();
    } catch (java.nio.charset.CharacterCodingException e) {
      throw new IOException(file + ": line " + lineNo + " (or the buffer around it): not UTF-8 text (" + e + ")", e);
    }
  }
}
