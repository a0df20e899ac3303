package org.metakernels.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.metakernels.graph.Graph;
import org.metakernels.graph.SparseMatrix;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/** .npy / .npz / scipy sparse / edge-list round trips and malformed files. */
class NumPyTest {
  @TempDir Path dir;

  /** A hand-made .npy: header dict and raw little- or big-endian bytes. */
  static byte[] npy(String dict, byte[] data) {
    String h = dict;
    int pad = (64 - (10 + h.length() + 1) % 64) % 64;
    h = h + " ".repeat(pad) + "\n";
    ByteBuffer b = ByteBuffer.allocate(10 + h.length() + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) h.length());
    b.put(h.getBytes(StandardCharsets.ISO_8859_1)).put(data);
    return b.array();
  }

  static byte[] ints(ByteOrder o, int... v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(o);
    for (int x : v) b.putInt(x);
    return b.array();
  }

  @Test
  void npyRoundTripsAndReadsForeignTypes() throws IOException {
    Path f = dir.resolve("a.npy");
    NumPy.write(f, NumPy.Array.ofDoubles(new double[] {1.5, -2, 3, 4, 5, 6}, 2, 3));
    NumPy.Array a = NumPy.read(f);
    assertEquals("<f8 [2, 3]", a.describe());
    assertArrayEquals(new double[] {1.5, -2, 3, 4, 5, 6}, a.doubles());
    NumPy.write(f, NumPy.Array.ofLongs(new long[] {7, -8, 9}, 3));
    assertArrayEquals(new long[] {7, -8, 9}, NumPy.read(f).longs());
    // int32 and float32 as NumPy writes them
    Files.write(
        f, npy("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", ints(ByteOrder.LITTLE_ENDIAN, 1, -2, 3)));
    assertArrayEquals(new long[] {1, -2, 3}, NumPy.read(f).longs());
    ByteBuffer fl = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(0.5f).putFloat(2f);
    Files.write(f, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", fl.array()));
    assertArrayEquals(new double[] {0.5, 2}, NumPy.read(f).doubles());
    // float labels read as longs when integral, refused when not
    NumPy.write(f, NumPy.Array.ofDoubles(new double[] {0, 2, 1}, 3));
    assertArrayEquals(new long[] {0, 2, 1}, NumPy.read(f).longs());
    NumPy.write(f, NumPy.Array.ofDoubles(new double[] {0.5}, 1));
    assertThrows(IllegalStateException.class, () -> NumPy.read(f).longs());
  }

  /** An array read from a file goes back in its own element width (it went out as 8 bytes before). */
  @Test
  void writesEveryReadTypeBackInItsOwnWidth() throws IOException {
    Path f = dir.resolve("t.npy"), g = dir.resolve("u.npy");
    String[][] cases = {{"<i4", "4"}, {"<i2", "2"}, {"|i1", "1"}, {"|u1", "1"}, {"<u2", "2"}, {"<u4", "4"},
        {"<u8", "8"}, {"|b1", "1"}, {"<f4", "4"}, {"<f8", "8"}};
    for (String[] c : cases) {
      int width = Integer.parseInt(c[1]);
      ByteBuffer data = ByteBuffer.allocate(3 * width).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < 3; i++) {
        long v = c[0].equals("|b1") ? i % 2 : i + 1;
        if (c[0].endsWith("f4")) data.putFloat(i + 0.5f);
        else if (c[0].endsWith("f8")) data.putDouble(i + 0.25);
        else if (width == 1) data.put((byte) v);
        else if (width == 2) data.putShort((short) v);
        else if (width == 4) data.putInt((int) v);
        else data.putLong(v);
      }
      byte[] in = npy("{'descr': '" + c[0] + "', 'fortran_order': False, 'shape': (3,), }", data.array());
      Files.write(f, in);
      NumPy.Array a = NumPy.read(f);
      NumPy.write(g, a);
      byte[] out = Files.readAllBytes(g);
      assertEquals(in.length, out.length, c[0] + ": the file's size (3 elements of " + width + " bytes)");
      assertArrayEquals(data.array(), java.util.Arrays.copyOfRange(out, out.length - 3 * width, out.length), c[0]);
      NumPy.Array back = NumPy.read(g);
      assertEquals(a.describe(), back.describe());
      assertArrayEquals(a.doubles(), back.doubles(), c[0]);
    }
    // made here: float32 from floats
    NumPy.write(f, NumPy.Array.ofFloats(new float[] {0.1f, -3f}, 2));
    assertEquals("<f4 [2]", NumPy.read(f).describe());
    assertEquals(10 + 118 + 8, Files.size(f));
    assertArrayEquals(new double[] {0.1f, -3f}, NumPy.read(f).doubles());
  }

  @Test
  void tensorsRoundTripInTheirOwnTypes() throws IOException {
    Path f = dir.resolve("w.npz");
    try (Scope s = Scope.open()) {
      Map<String, Tensor> w = new LinkedHashMap<>();
      w.put("layer0.weight", Tensor.randn(new long[] {3, 2}, DType.F32, Device.CPU, 1L));
      w.put("layer0.bias", Tensor.randn(new long[] {3}, DType.F64, Device.CPU, 2L));
      w.put("steps", Tensor.ofIndices(new long[] {7, -1}, 2));
      w.put("half", Tensor.randn(new long[] {2, 2}, DType.F32, Device.CPU, 3L).to(DType.BF16));
      w.put("scalar", Tensor.scalar(2.5, DType.F64, Device.CPU));
      NumPy.writeTensors(f, w);
      Map<String, NumPy.Array> raw = NumPy.readNpz(f);
      assertEquals(List.of("layer0.weight", "layer0.bias", "steps", "half", "scalar"), List.copyOf(raw.keySet()));
      assertEquals("<f4 [3, 2]", raw.get("layer0.weight").describe());
      assertEquals("<f8 [3]", raw.get("layer0.bias").describe());
      assertEquals("<i8 [2]", raw.get("steps").describe());
      assertEquals("<f4 [2, 2]", raw.get("half").describe());
      assertEquals("<f8 []", raw.get("scalar").describe());
      // one entry at a time, in order; a visitor's error ends the walk
      List<String> order = new java.util.ArrayList<>();
      NumPy.forEachNpzEntry(f, (name, arr) -> order.add(name + " " + arr.describe()));
      assertEquals(List.of("layer0.weight <f4 [3, 2]", "layer0.bias <f8 [3]", "steps <i8 [2]", "half <f4 [2, 2]",
          "scalar <f8 []"), order);
      IOException stop = assertThrows(IOException.class, () -> NumPy.forEachNpzEntry(f, (name, arr) -> {
        throw new IOException("stop at " + name);
      }));
      assertEquals("stop at layer0.weight", stop.getMessage());
      Map<String, Tensor> r = NumPy.readTensors(f, Device.CPU);
      assertEquals(DType.F32, r.get("layer0.weight").dtype());
      assertArrayEquals(w.get("layer0.weight").toFloatArray(), r.get("layer0.weight").toFloatArray());
      assertEquals(DType.F64, r.get("layer0.bias").dtype());
      assertArrayEquals(w.get("layer0.bias").toDoubleArray(), r.get("layer0.bias").toDoubleArray());
      assertArrayEquals(new long[] {7, -1}, r.get("steps").toLongArray());
      assertEquals(DType.F32, r.get("half").dtype());  // BF16 widened exactly
      assertArrayEquals(w.get("half").toFloatArray(), r.get("half").toFloatArray());
      assertArrayEquals(new long[0], r.get("scalar").shape());
      assertEquals(2.5, r.get("scalar").item());
    }
  }

  @Test
  void writeTensorsRefusesBadEntriesBeforeWriting() throws IOException {
    Path f = dir.resolve("bad.npz");
    Tensor closed = Tensor.of(new float[] {1}, 1);
    closed.close();
    try (Scope s = Scope.open()) {
      Tensor ok = Tensor.of(new float[] {1, 2}, 2);
      Map<String, Tensor> w = new LinkedHashMap<>();
      w.put("ok", ok);
      w.put("gone", closed);
      Exception e = assertThrows(RuntimeException.class, () -> NumPy.writeTensors(f, w));
      assertTrue(e.getMessage().contains("bad.npz") && e.getMessage().contains("'gone'"), e.getMessage());
      assertTrue(Files.notExists(f), "nothing written");
      Map<String, Tensor> slash = Map.of("a/b", ok);
      e = assertThrows(IllegalArgumentException.class, () -> NumPy.writeTensors(f, slash));
      assertTrue(e.getMessage().contains("'a/b'"), e.getMessage());
      assertTrue(Files.notExists(f), "nothing written");
      // an earlier file survives a refused write, and no temporary file is left beside it
      NumPy.writeTensors(f, Map.of("ok", ok));
      byte[] before = Files.readAllBytes(f);
      assertThrows(RuntimeException.class, () -> NumPy.writeTensors(f, w));
      assertArrayEquals(before, Files.readAllBytes(f));
      try (var listing = Files.list(dir)) {
        assertEquals(List.of("bad.npz"), listing.map(p -> p.getFileName().toString()).sorted().toList());
      }
      // entries stored, as np.savez writes them
      try (var zf = new java.util.zip.ZipFile(f.toFile())) {
        assertEquals(java.util.zip.ZipEntry.STORED, zf.getEntry("ok.npy").getMethod());
      }
      // a string entry is not a tensor (after a numeric one: no tensor is left behind)
      Map<String, NumPy.Array> z = new LinkedHashMap<>();
      z.put("x", NumPy.Array.ofDoubles(new double[] {1, 2}, 2));
      z.put("format", NumPy.Array.ofString("csr"));
      NumPy.writeNpz(f, z);
      IOException io = assertThrows(IOException.class, () -> NumPy.readTensors(f, Device.CPU));
      assertTrue(io.getMessage().contains("'format'") && io.getMessage().contains("bad.npz"), io.getMessage());
    }
  }

  @Test
  void refusesFortranOrderBigEndianAndGarbageNamingTheFile() throws IOException {
    Path f = dir.resolve("bad.npy");
    Files.write(
        f, npy("{'descr': '<i4', 'fortran_order': True, 'shape': (1, 2), }", ints(ByteOrder.LITTLE_ENDIAN, 1, 2)));
    IOException e = assertThrows(IOException.class, () -> NumPy.read(f));
    assertTrue(e.getMessage().contains("bad.npy") && e.getMessage().contains("Fortran"), e.getMessage());
    Files.write(f, npy("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", ints(ByteOrder.BIG_ENDIAN, 1, 2)));
    e = assertThrows(IOException.class, () -> NumPy.read(f));
    assertTrue(e.getMessage().contains("bad.npy") && e.getMessage().contains("big-endian"), e.getMessage());
    Files.write(
        f, npy("{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }", ints(ByteOrder.LITTLE_ENDIAN, 1, 2)));
    e = assertThrows(IOException.class, () -> NumPy.read(f));
    assertTrue(e.getMessage().contains("bad.npy") && e.getMessage().contains("truncated"), e.getMessage());
    Files.writeString(f, "hello, not numpy");
    e = assertThrows(IOException.class, () -> NumPy.read(f));
    assertTrue(e.getMessage().contains("bad.npy") && e.getMessage().contains("magic"), e.getMessage());
    Files.write(f, npy("{'descr': '<c16', 'fortran_order': False, 'shape': (0,), }", new byte[0]));
    e = assertThrows(IOException.class, () -> NumPy.read(f));
    assertTrue(e.getMessage().contains("<c16"), e.getMessage());
    // a shape whose product wraps to 0 in 64 bits (2^32 · 2^32), one past the heap, a negative width
    Files.write(f, npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", new byte[16]));
    e = assertThrows(IOException.class, () -> NumPy.read(f));
    assertTrue(e.getMessage().contains("bad.npy") && e.getMessage().contains("too many"), e.getMessage());
    Files.write(f, npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3037000500, 3037000500), }", new byte[16]));
    e = assertThrows(IOException.class, () -> NumPy.read(f));
    assertTrue(e.getMessage().contains("too many"), e.getMessage());
    Files.write(f, npy("{'descr': '|S-4', 'fortran_order': False, 'shape': (2,), }", new byte[16]));
    e = assertThrows(IOException.class, () -> NumPy.read(f));
    assertTrue(e.getMessage().contains("bad.npy") && e.getMessage().contains("|S-4"), e.getMessage());
    Files.write(f, npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 0), }", new byte[0]));
    assertEquals(0, NumPy.read(f).size(), "a zero-size array with a huge other dim");
    // arrays whose shape cannot be written back: negative sizes, an overflowing product, 65 dims
    assertThrows(IllegalArgumentException.class, () -> NumPy.Array.ofDoubles(new double[] {1}, -1, -1));
    assertThrows(IllegalArgumentException.class, () -> NumPy.Array.ofDoubles(new double[0], 1L << 40, 1L << 40));
    assertThrows(IllegalArgumentException.class, () -> NumPy.Array.ofDoubles(new double[] {1}, new long[65]));
    // a compressed .npz cut short: an IOException naming the file (an EOFException escaped before)
    Path cut = dir.resolve("cut.npz");
    java.io.ByteArrayOutputStream bos = new java.io.ByteArrayOutputStream();
    try (ZipOutputStream zo = new ZipOutputStream(bos)) {
      zo.setMethod(ZipOutputStream.DEFLATED);
      zo.putNextEntry(new ZipEntry("a.npy"));
      zo.write(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4096,), }", new byte[8 * 4096]));
      zo.closeEntry();
    }
    byte[] whole = bos.toByteArray();
    Files.write(cut, java.util.Arrays.copyOf(whole, 60));
    e = assertThrows(IOException.class, () -> NumPy.readNpz(cut));
    assertTrue(e.getMessage().contains("cut.npz"), e.getMessage());
    Path z = dir.resolve("bad.npz");
    Files.writeString(z, "not a zip");
    e = assertThrows(IOException.class, () -> NumPy.readNpz(z));
    assertTrue(e.getMessage().contains("bad.npz"), e.getMessage());
  }

  @Test
  void sparseNpzRoundTripAndScipyLayouts() throws IOException {
    SparseMatrix m =
        SparseMatrix.fromCoo(3, 4, new long[] {0, 2, 2, 1}, new long[] {3, 0, 1, 1}, new double[] {1, 2, 3, 4});
    Path f = dir.resolve("m.npz");
    NumPy.writeSparse(f, m);
    assertTrue(m.bitwiseEquals(NumPy.readSparse(f)));
    // COO with int32 row/col as scipy writes it, and a CSC
    Map<String, NumPy.Array> coo = new LinkedHashMap<>();
    coo.put("row", NumPy.Array.ofLongs(new long[] {0, 2, 2, 1}, 4));
    coo.put("col", NumPy.Array.ofLongs(new long[] {3, 0, 1, 1}, 4));
    coo.put("format", NumPy.Array.ofString("coo"));
    coo.put("shape", NumPy.Array.ofLongs(new long[] {3, 4}, 2));
    coo.put("data", NumPy.Array.ofDoubles(new double[] {1, 2, 3, 4}, 4));
    NumPy.writeNpz(f, coo);
    assertTrue(m.bitwiseEquals(NumPy.readSparse(f)));
    SparseMatrix t = m.transpose(); // CSC of m = CSR of its transpose
    Map<String, NumPy.Array> csc = new LinkedHashMap<>();
    int[] ci = t.colIndices();
    long[] idx = new long[ci.length];
    for (int i = 0; i < ci.length; i++) idx[i] = ci[i];
    csc.put("indices", NumPy.Array.ofLongs(idx, idx.length));
    csc.put("indptr", NumPy.Array.ofLongs(t.rowPtr(), 5));
    csc.put("format", NumPy.Array.ofString("csc"));
    csc.put("shape", NumPy.Array.ofLongs(new long[] {3, 4}, 2));
    csc.put("data", NumPy.Array.ofDoubles(t.values(), ci.length));
    NumPy.writeNpz(f, csc);
    assertTrue(m.bitwiseEquals(NumPy.readSparse(f)));
    // missing array, inconsistent lengths
    coo.remove("col");
    NumPy.writeNpz(f, coo);
    IOException e = assertThrows(IOException.class, () -> NumPy.readSparse(f));
    assertTrue(e.getMessage().contains("m.npz") && e.getMessage().contains("'col'"), e.getMessage());
    coo.put("col", NumPy.Array.ofLongs(new long[] {3, 0, 9, 1}, 4));
    NumPy.writeNpz(f, coo);
    e = assertThrows(IOException.class, () -> NumPy.readSparse(f));
    assertTrue(e.getMessage().contains("m.npz") && e.getMessage().contains("outside"), e.getMessage());
  }

  @Test
  void npzEntryErrorsNameTheEntry() throws IOException {
    Path f = dir.resolve("e.npz");
    try (OutputStream o = Files.newOutputStream(f); ZipOutputStream z = new ZipOutputStream(o)) {
      z.putNextEntry(new ZipEntry("x.npy"));
      z.write("garbage!!garbage".getBytes(StandardCharsets.US_ASCII));
      z.closeEntry();
    }
    IOException e = assertThrows(IOException.class, () -> NumPy.readNpz(f));
    assertTrue(e.getMessage().contains("e.npz") && e.getMessage().contains("x.npy"), e.getMessage());
  }

  @Test
  void edgeListsRoundTripAndRefuseMalformedLines() throws IOException {
    Path f = dir.resolve("edges.csv");
    Files.writeString(f, "src,dst\n# comment\n0,1\n\n2,0\n1,2\n");
    EdgeList e = EdgeList.read(f);
    assertArrayEquals(new long[] {0, 2, 1}, e.src());
    assertArrayEquals(new long[] {1, 0, 2}, e.dst());
    assertNull(e.weight());
    try (Scope s = Scope.open(); Graph g = e.toGraph(3)) {
      assertEquals(3, g.numEdges());
    }
    Path w = dir.resolve("w.txt");
    new EdgeList(new long[] {0, 5}, new long[] {3, 1}, new double[] {0.25, -1e-3}).write(w);
    EdgeList back = EdgeList.read(w);
    assertArrayEquals(new double[] {0.25, -1e-3}, back.weight());
    assertEquals(6, back.extent(0));
    // a spreadsheet's CSV export starts with a UTF-8 byte-order mark, before data or a header
    Files.write(f, new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF, '0', ' ', '1', '\n', '1', ' ', '2', '\n'});
    assertArrayEquals(new long[] {0, 1}, EdgeList.read(f).src());
    Files.write(f, new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF, 'i', ',', 'j', '\n', '4', ',', '2', '\n'});
    assertArrayEquals(new long[] {4}, EdgeList.read(f).src());
    Files.writeString(f, "0 1\n2 x\n");
    IOException ex = assertThrows(IOException.class, () -> EdgeList.read(f));
    assertTrue(ex.getMessage().contains("edges.csv") && ex.getMessage().contains("line 2"), ex.getMessage());
    Files.writeString(f, "0 1 0.5\n2 3\n");
    ex = assertThrows(IOException.class, () -> EdgeList.read(f));
    assertTrue(ex.getMessage().contains("line 2") && ex.getMessage().contains("weight"), ex.getMessage());
    Files.writeString(f, "0 -1\n");
    ex = assertThrows(IOException.class, () -> EdgeList.read(f));
    assertTrue(ex.getMessage().contains("negative"), ex.getMessage());
  }

  @Test
  void readsTheAcmFilesWhenPresent() throws IOException {
    Path acm = Path.of("/work/shared/datasets/meow/acm");
    org.junit.jupiter.api.Assumptions.assumeTrue(Files.isDirectory(acm), "ACM data not on this machine");
    SparseMatrix pap = NumPy.readSparse(acm.resolve("pap.npz"));
    assertEquals(4019, pap.rows());
    assertEquals(57853, pap.nnz());
    EdgeList pa = EdgeList.read(acm.resolve("pa.txt"));
    SparseMatrix ra = pa.toMatrix(4019, 7167);
    // the published P-A-P is the path-count product of the paper-author relation
    assertTrue(pap.bitwiseEquals(ra.multiply(ra.transpose())));
  }
  /** An .npy's bytes: version 1.0, the header padded to 64, then {@code data}. */
  static byte[] npy(String descr, String shape, byte[] data) {
    String h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    int pad = 64 - (10 + h.length() + 1) % 64;
    h = h + " ".repeat(pad % 64) + "\n";
    ByteBuffer b = ByteBuffer.allocate(10 + h.length() + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) h.length());
    b.put(h.getBytes(StandardCharsets.ISO_8859_1)).put(data);
    return b.array();
  }

  /**
   * Entries read header first, then only the bytes their shape needs (a small deflated entry
   * declaring far more, or any 2 GiB file, was read whole first: OutOfMemoryError); an .npz cut
   * at an entry boundary is refused (it read as a complete file with fewer entries); a name twice
   * frees the first tensor.
   */
  @Test
  void readsOnlyWhatTheHeaderDeclaresAndRefusesTruncatedArchives() throws IOException {
    byte[] two = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putDouble(1.5).putDouble(-2).array();
    Path bomb = dir.resolve("bomb.npz");
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(bomb))) {
      z.putNextEntry(new ZipEntry("x.npy"));
      z.write(npy("<f8", "(2,)", two));
      byte[] zeros = new byte[1 << 20];
      for (int i = 0; i < 64; i++) z.write(zeros);  // 64 MiB of trailing zeros, a few hundred KB deflated
      z.closeEntry();
    }
    assertTrue(Files.size(bomb) < 1 << 20);
    assertArrayEquals(new double[] {1.5, -2}, NumPy.readNpz(bomb).get("x").doubles());
    // a shape whose data is past one Java array: refused from the header, nothing read
    Path huge = dir.resolve("huge.npy");
    Files.write(huge, npy("<f8", "(300000000,)", two));
    IOException e = assertThrows(IOException.class, () -> NumPy.read(huge));
    assertTrue(e.getMessage().contains("huge.npy") && e.getMessage().contains("2400000000"), e.getMessage());
    // cut at the second entry's local header: the directory at the end is gone
    Path whole = dir.resolve("three.npz");
    Map<String, NumPy.Array> m = new LinkedHashMap<>();
    for (String k : List.of("a", "b", "c")) m.put(k, NumPy.Array.ofDoubles(new double[] {1, 2, 3}, 3));
    NumPy.writeNpz(whole, m);
    byte[] all = Files.readAllBytes(whole);
    int second = -1;
    for (int i = 4; i < all.length - 4 && second < 0; i++)
      if (all[i] == 'P' && all[i + 1] == 'K' && all[i + 2] == 3 && all[i + 3] == 4) second = i;
    Path cut = dir.resolve("cut.npz");
    Files.write(cut, java.util.Arrays.copyOf(all, second));
    e = assertThrows(IOException.class, () -> NumPy.readNpz(cut));
    assertTrue(e.getMessage().contains("cut.npz"), e.getMessage());
    assertEquals(3, NumPy.readNpz(whole).size());
    // the same name twice: the last kept (as numpy), the first tensor freed
    Path dup = dir.resolve("dup.npz");
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(dup))) {  // it refuses a name twice:
      for (String k : List.of("w.npy", "v.npy")) {                              // "v.npy" renamed below
        z.putNextEntry(new ZipEntry(k));
        z.write(npy("<f8", "(2,)", two));
        z.closeEntry();
      }
    }
    Files.write(dup, new String(Files.readAllBytes(dup), StandardCharsets.ISO_8859_1).replace("v.npy", "w.npy")
        .getBytes(StandardCharsets.ISO_8859_1));
    NumPy.readTensors(dup, Device.CPU).values().forEach(Tensor::close);
    long live = org.metakernels.runtime.MkNative.mk_host_live_bytes();
    for (int i = 0; i < 3; i++) NumPy.readTensors(dup, Device.CPU).values().forEach(Tensor::close);
    assertEquals(live, org.metakernels.runtime.MkNative.mk_host_live_bytes());
    // an edge list that is not UTF-8: the file named
    Path latin = dir.resolve("latin1.txt");
    Files.write(latin, new byte[] {'#', ' ', (byte) 0xE9, '\n', '0', ' ', '1', '\n'});
    e = assertThrows(IOException.class, () -> EdgeList.read(latin));
    assertTrue(e.getMessage().contains("latin1.txt") && e.getMessage().contains("UTF-8"), e.getMessage());
  }
  /** Both walks read the file as opened: one replaced between them (an atomic save) is not seen. */
  @Test
  void twoWalksReadOneOpenFile() throws IOException {
    Path f = dir.resolve("state.npz"), other = dir.resolve("other.npz");
    NumPy.writeNpz(f, Map.of("a", NumPy.Array.ofDoubles(new double[] {1, 2}, 2)));
    NumPy.writeNpz(other, Map.of("b", NumPy.Array.ofDoubles(new double[] {7, 7, 7}, 3)));
    List<String> first = new java.util.ArrayList<>(), second = new java.util.ArrayList<>();
    NumPy.forEachNpzEntryTwice(f, (n, a) -> first.add(n + " " + a.describe()),
        () -> Files.move(other, f, java.nio.file.StandardCopyOption.REPLACE_EXISTING),
        (n, a) -> second.add(n + " " + a.describe()));
    assertEquals(List.of("a <f8 [2]"), first);
    assertEquals(first, second);
    assertEquals("b", NumPy.readNpz(f).keySet().iterator().next());  // the file itself was replaced
  }
}
