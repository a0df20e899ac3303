package org.metakernels.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.metakernels.graph.Graph;
import org.metakernels.graph.Graphs;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Writes the graphs of {@link GraphBench} and {@link GpuGraphShapesBench} (the seeded R-MAT graph
 * {@link Graphs#rmat}(nodes, edges, {@link GraphBench#SEED})) as NumPy files, so that the PyTorch
 * and PyG peers (benchmarks/gpu/graph_peers.py) run on exactly the same edges without a second
 * implementation of the generator:
 *
 * <pre>
 *   java -cp CP org.metakernels.bench.GraphEdgeDump DIR 100000 1000000,10000000
 * </pre>
 *
 * <p>For each edge count E it writes {@code DIR/rmat-n{N}-e{E}.npy}, I64 [2, E] (sources; destinations)
 * in the generator's order, and {@code DIR/gcn-n{N}-e{E}-weight.npy}, F32 [E + N], the weights of the
 * GCN propagation graph Â = D^-1/2 (A + I) D^-1/2 ({@link Graph#gcnNormalized}, what
 * GraphBench.gcnSecondOrder propagates over) in Â's input order: the E edges, then the loop of each
 * node 0..N-1. {@code DIR/manifest.json} lists the files with a checksum of each, Σ (i + 1) · v_i
 * mod 2^64 over the flat array (I64 values; F32 bit patterns as unsigned 32-bit integers), which
 * the peers verify before they time anything. Every file is read back and compared with what was
 * written. 10^7 edges take 160 MB (edge index) and 40 MB (weights).
 */
public final class GraphEdgeDump {
  private GraphEdgeDump() {}

  /** The edge index [2, E] (sources; destinations) of the benchmarks' R-MAT graph, as a host array. */
  static long[] rmat(long nodes, long edges) {
    try (Scope s = Scope.open()) {
      return Graphs.rmat(nodes, edges, GraphBench.SEED).toLongArray();
    }
  }

  /**
   * Â's weights in Â's input order (the edges, then one loop per node), as {@link Graph#gcnNormalized} computes them.
   */
  static float[] gcnWeights(long[] edgeIndex, long nodes) {
    try (Scope s = Scope.open()) {
      try (Graph g = Graph.fromEdges(Tensor.ofIndices(edgeIndex, 2, edgeIndex.length / 2), nodes);
           Graph norm = g.gcnNormalized(DType.F32)) {
        float[] graphOrder = norm.edgeWeight().toFloatArray();
        long[] input = norm.edgePermutation().toLongArray();
        float[] w = new float[graphOrder.length];
        for (int k = 0; k < graphOrder.length; k++) w[(int) input[k]] = graphOrder[k];
        return w;
      }
    }
  }

  /** The edge-index file's name: "rmat-n{nodes}-e{edges}.npy". */
  static String edgeFile(long nodes, long edges) {
    return "rmat-n" + nodes + "-e" + edges + ".npy";
  }

  /**
   * The I64 array of an .npy file written by {@link #writeNpy(Path, long[], long[])} with this shape (header checked).
   */
  static long[] readLongs(Path file, long[] shape) throws IOException {
    long n = 1;
    for (long d : shape) n *= d;
    ByteBuffer b = readNpy(file, "<i8", shape);
    if (b.remaining() != 8 * n)
      throw new IllegalStateException("GraphEdgeDump: " + file + ": " + b.remaining() + " bytes, expected " + 8 * n);
    long[] v = new long[(int) n];
    b.asLongBuffer().get(v);
    return v;
  }

  /** Σ (i + 1) · v_i mod 2^64, printed unsigned. */
  static String checksum(long[] v) {
    long h = 0;
    for (int i = 0; i < v.length; i++) h += (i + 1L) * v[i];
    return Long.toUnsignedString(h);
  }

  /** Σ (i + 1) · bits(v_i) mod 2^64 with the F32 bit patterns as unsigned 32-bit integers, printed unsigned. */
  static String checksum(float[] v) {
    long h = 0;
    for (int i = 0; i < v.length; i++) h += (i + 1L) * (Float.floatToRawIntBits(v[i]) & 0xffffffffL);
    return Long.toUnsignedString(h);
  }

  /** The .npy preamble (format 1.0): magic, version, header length, the header dict padded to 64 bytes. */
  static byte[] npyHeader(String descr, long[] shape) {
    StringBuilder dims = new StringBuilder();
    for (int i = 0; i < shape.length; i++) dims.append(i > 0 ? ", " : "").append(shape[i]);
    if (shape.length == 1) dims.append(',');
    StringBuilder h =
        new StringBuilder("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }");
    while ((10 + h.length() + 1) % 64 != 0) h.append(' ');
    h.append('\n');
    byte[] text = h.toString().getBytes(StandardCharsets.US_ASCII);
    ByteBuffer b = ByteBuffer.allocate(10 + text.length).order(ByteOrder.LITTLE_ENDIAN);
    b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
    b.putShort((short) text.length).put(text);
    return b.array();
  }

  static void writeNpy(Path file, long[] v, long[] shape) throws IOException {
    try (FileChannel ch = FileChannel.open(
             file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
      ch.write(ByteBuffer.wrap(npyHeader("<i8", shape)));
      ByteBuffer b = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
      for (long x : v) {
        if (b.remaining() < 8) flush(ch, b);
        b.putLong(x);
      }
      flush(ch, b);
    }
  }

  static void writeNpy(Path file, float[] v) throws IOException {
    try (FileChannel ch = FileChannel.open(
             file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
      ch.write(ByteBuffer.wrap(npyHeader("<f4", new long[] {v.length})));
      ByteBuffer b = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
      for (float x : v) {
        if (b.remaining() < 4) flush(ch, b);
        b.putFloat(x);
      }
      flush(ch, b);
    }
  }

  private static void flush(FileChannel ch, ByteBuffer b) throws IOException {
    b.flip();
    while (b.hasRemaining()) ch.write(b);
    b.clear();
  }

  /** The payload of an .npy file written here (header checked), as little-endian bytes. */
  static ByteBuffer readNpy(Path file, String descr, long[] shape) throws IOException {
    byte[] all = Files.readAllBytes(file);
    byte[] head = npyHeader(descr, shape);
    for (int i = 0; i < head.length; i++)
      if (i >= all.length || all[i] != head[i])
        throw new IllegalStateException("GraphEdgeDump: " + file + ": unexpected header at byte " + i);
    return ByteBuffer.wrap(all, head.length, all.length - head.length).slice().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Reads back what {@link #writeNpy} wrote and throws unless it is the same array. */
  static void verify(Path file, long[] v, long[] shape) throws IOException {
    ByteBuffer b = readNpy(file, "<i8", shape);
    if (b.remaining() != 8L * v.length)
      throw new IllegalStateException(
          "GraphEdgeDump: " + file + ": " + b.remaining() + " bytes, expected " + 8L * v.length);
    for (int i = 0; i < v.length; i++)
      if (b.getLong() != v[i])
        throw new IllegalStateException("GraphEdgeDump: " + file + ": element " + i + " differs");
  }

  static void verify(Path file, float[] v) throws IOException {
    ByteBuffer b = readNpy(file, "<f4", new long[] {v.length});
    if (b.remaining() != 4L * v.length)
      throw new IllegalStateException(
          "GraphEdgeDump: " + file + ": " + b.remaining() + " bytes, expected " + 4L * v.length);
    for (int i = 0; i < v.length; i++)
      if (Float.floatToRawIntBits(b.getFloat()) != Float.floatToRawIntBits(v[i]))
        throw new IllegalStateException("GraphEdgeDump: " + file + ": element " + i + " differs");
  }

  /**
   * Arguments: DIR NODES EDGES[,EDGES...] [--no-gcn]. Writes the files and DIR/manifest.json (see
   * the class comment); --no-gcn leaves out Â's weights.
   *
   * @param args the arguments
   * @throws IOException when a file cannot be written
   */
  public static void main(String[] args) throws IOException {
    if (args.length < 3) {
      System.err.println("usage: GraphEdgeDump DIR NODES EDGES[,EDGES...] [--no-gcn]");
      System.exit(2);
    }
    Path dir = Path.of(args[0]);
    long nodes = Long.parseLong(args[1]);
    boolean gcn = !(args.length > 3 && args[3].equals("--no-gcn"));
    Files.createDirectories(dir);
    List<String> entries = new ArrayList<>();
    for (String part : args[2].split(",")) {
      long edges = Long.parseLong(part.trim());
      long t0 = System.nanoTime();
      long[] ei = rmat(nodes, edges);
      Path file = dir.resolve(edgeFile(nodes, edges));
      writeNpy(file, ei, new long[] {2, edges});
      verify(file, ei, new long[] {2, edges});
      StringBuilder entry = new StringBuilder();
      entry.append("    {\"nodes\": ")
          .append(nodes)
          .append(", \"edges\": ")
          .append(edges)
          .append(", \"seed\": ")
          .append(GraphBench.SEED)
          .append(",\n     \"edge_index\": \"")
          .append(file.getFileName())
          .append("\", \"edge_index_shape\": [2, ")
          .append(edges)
          .append("], \"edge_index_checksum\": \"")
          .append(checksum(ei))
          .append('"');
      if (gcn) {
        float[] w = gcnWeights(ei, nodes);
        Path wf = dir.resolve("gcn-n" + nodes + "-e" + edges + "-weight.npy");
        writeNpy(wf, w);
        verify(wf, w);
        entry.append(",\n     \"gcn_weight\": \"")
            .append(wf.getFileName())
            .append("\", \"gcn_weight_shape\": [")
            .append(w.length)
            .append("], \"gcn_weight_checksum\": \"")
            .append(checksum(w))
            .append('"');
      }
      entries.add(entry.append('}').toString());
      System.out.printf("GraphEdgeDump: %s (%d nodes, %d edges%s) in %.1f s%n", file, nodes, edges,
          gcn ? ", GCN weights" : "", (System.nanoTime() - t0) / 1e9);
    }
    String manifest = "{\"generator\": \"org.metakernels.graph.Graphs.rmat\", \"graphs\": [\n"
        + String.join(",\n", entries) + "\n]}\n";
    Files.writeString(dir.resolve("manifest.json"), manifest, StandardCharsets.UTF_8);
  }
}
