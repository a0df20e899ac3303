package org.metakernels.io;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;
import org.metakernels.graph.SparseMatrix;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.autograd.Autograd;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Tensor;

/**
 * NumPy's {@code .npy} and {@code .npz} formats, read and written on the Java heap.
 *
 * <p><b>Layout read.</b> An {@code .npy} file: the magic {@code \x93NUMPY}, a version (1.0, 2.0
 * or 3.0), a little-endian header length (2 bytes in 1.0, 4 after), and a header that is a Python
 * dict literal with {@code 'descr'}, {@code 'fortran_order'} and {@code 'shape'}, then the raw
 * elements. Supported element types ({@code descr}): little-endian ({@code <} or {@code |})
 * {@code f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1} and byte strings {@code S<n>}. Arrays must be in C
 * order: a Fortran-order array of rank 2 or more is refused (rank 0 and 1 are the same in both),
 * as is a big-endian descr ({@code >f8}), each with a message naming the file. An {@code .npz}
 * file is a zip of {@code .npy} files ({@code np.savez} or {@code np.savez_compressed}), read into
 * a map from entry name (without {@code .npy}) to array. {@link #readSparse(Path)} reads the
 * {@code scipy.sparse.save_npz} layouts: {@code format} = csr or csc with {@code indices},
 * {@code indptr}, {@code data}, {@code shape}; coo with {@code row}, {@code col}, {@code data},
 * {@code shape}.
 *
 * <p>Malformed input throws {@link IOException} whose message starts with the file's path.
 *
 * <pre>{@code
 * NumPy.Array labels = NumPy.read(Path.of("acm/labels.npy"));      // <f8 [4019]
 * long[] y = labels.longs();                                      // integral values
 * SparseMatrix pap = NumPy.readSparse(Path.of("acm/pap.npz"));     // [4019, 4019]
 * }</pre>
 */
public final class NumPy {
  private NumPy() {}

  private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
  private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
  private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
  private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

  /**
   * A NumPy array on the heap: its element type, its shape, and its elements in C order as doubles
   * (float types), longs (integer and bool types) or strings (byte strings, decoded as Latin-1).
   */
  public static final class Array {
    private final String descr;
    private final long[] shape;
    private final double[] doubles;
    private final long[] longs;
    private final String[] strings;

    private Array(String descr, long[] shape, double[] d, long[] l, String[] s) {
      this.descr = descr;
      this.shape = shape;
      this.doubles = d;
      this.longs = l;
      this.strings = s;
    }

    /**
     * A float64 array ({@code <f8}). {@code NumPy.Array.ofDoubles(new double[] {1, 2}, 2)}.
     *
     * @param data the elements, C order
     * @param shape the shape; its product must be data.length
     * @return the array
     */
    public static Array ofDoubles(double[] data, long... shape) {
      checkCount(data.length, shape);
      return new Array("<f8", shape.clone(), data.clone(), null, null);
    }

    /**
     * A float32 array ({@code <f4}), as {@code np.float32} writes it.
     * {@code NumPy.Array.ofFloats(new float[] {1, 2}, 2)}.
     *
     * @param data the elements, C order
     * @param shape the shape; its product must be data.length
     * @return the array
     */
    public static Array ofFloats(float[] data, long... shape) {
      checkCount(data.length, shape);
      double[] d = new double[data.length];
      for (int i = 0; i < d.length; i++) d[i] = data[i];  // exact: every float is a double
      return new Array("<f4", shape.clone(), d, null, null);
    }

    /**
     * An int64 array ({@code <i8}). {@code NumPy.Array.ofLongs(new long[] {1, 2}, 2)}.
     *
     * @param data the elements, C order
     * @param shape the shape; its product must be data.length
     * @return the array
     */
    public static Array ofLongs(long[] data, long... shape) {
      checkCount(data.length, shape);
      return new Array("<i8", shape.clone(), null, data.clone(), null);
    }

    /**
     * A 0-d byte-string array ({@code |S<n>}), as scipy stores {@code format}.
     * {@code NumPy.Array.ofString("csr")}.
     *
     * @param s ASCII text
     * @return the array
     */
    public static Array ofString(String s) {
      return new Array("|S" + Math.max(1, s.length()), new long[0], null, null, new String[] {s});
    }

    private static void checkCount(long n, long[] shape) {
      if (shape.length > 64)  // NumPy's own limit; the header's 2-byte length fits it
        throw new IllegalArgumentException("NumPy.Array: " + shape.length + " dims (NumPy allows 64)");
      for (long d : shape)
        if (d < 0) throw new IllegalArgumentException("NumPy.Array: negative size in shape " + shapeText(shape));
      long p = elementCount(shape);
      if (p == Long.MAX_VALUE)
        throw new IllegalArgumentException("NumPy.Array: shape " + shapeText(shape) + " has too many elements");
      if (p != n) throw new IllegalArgumentException("NumPy.Array: " + n + " elements for shape " + shapeText(shape));
    }

    /**
     * The element type as NumPy writes it ({@code <f8}).
     *
     * @return descr
     */
    public String descr() {
      return descr;
    }

    /**
     * The shape (a copy).
     *
     * @return the shape
     */
    public long[] shape() {
      return shape.clone();
    }

    /**
     * The element count.
     *
     * @return the product of the shape
     */
    public long size() {
      long p = 1;
      for (long d : shape) p *= d;
      return p;
    }

    /**
     * Whether the elements are floating point.
     *
     * @return true for f4 and f8
     */
    public boolean isFloating() {
      return doubles != null;
    }

    /**
     * The elements as doubles (integers converted), C order.
     *
     * @return a copy
     * @throws IllegalStateException for a string array
     */
    public double[] doubles() {
      if (doubles != null) return doubles.clone();
      if (longs == null) throw new IllegalStateException("NumPy.Array " + descr + ": not numeric");
      double[] d = new double[longs.length];
      for (int i = 0; i < d.length; i++) d[i] = longs[i];
      return d;
    }

    /**
     * The elements as longs, C order; float elements must be integral (labels are often stored
     * as float64).
     *
     * @return a copy
     * @throws IllegalStateException for a string array or a non-integral float element
     */
    public long[] longs() {
      if (longs != null) return longs.clone();
      if (doubles == null) throw new IllegalStateException("NumPy.Array " + descr + ": not numeric");
      long[] l = new long[doubles.length];
      for (int i = 0; i < l.length; i++) {
        l[i] = (long) doubles[i];
        if (l[i] != doubles[i])
          throw new IllegalStateException(
              "NumPy.Array " + descr + ": element " + i + " = " + doubles[i] + " is not an integer");
      }
      return l;
    }

    /**
     * The array as a tensor of element type {@code dtype} on {@code device}, not recorded by
     * autograd: integer arrays through I64, float arrays through F64, so a narrower type is reached
     * with one rounding (and an {@code <f4} array to F32 or wider exactly).
     * {@code a.toTensor(DType.F32, Device.CPU)}.
     *
     * @param dtype the element type
     * @param device where the tensor goes
     * @return a new tensor (the caller owns it: the current scope, if any)
     * @throws IllegalStateException for a string array
     */
    public Tensor toTensor(DType dtype, Device device) {
      if (strings != null) throw new IllegalStateException("NumPy.Array " + descr + ": not numeric");
      try (var ng = Autograd.noGrad()) {
        Tensor host = longs != null ? Tensor.ofIndices(longs, shape) : Tensor.of(doubles, shape);
        Tensor typed = host.to(dtype);
        if (typed != host) host.close();  // each copy on the way has this method as its one owner
        Tensor out = typed.to(device);
        if (out != typed) typed.close();
        return out;
      }
    }

    /**
     * The string of a byte-string array's first element ({@code format} of a scipy file).
     *
     * @return the text
     * @throws IllegalStateException for a numeric array
     */
    public String string() {
      if (strings == null || strings.length == 0)
        throw new IllegalStateException("NumPy.Array " + descr + ": not a string");
      return strings[0];
    }

    /**
     * "&lt;f8 [4019]".
     *
     * @return the description
     */
    public String describe() {
      return descr + " " + shapeText(shape);
    }

    @Override
    public String toString() {
      return describe();
    }
  }

  private static String shapeText(long[] shape) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < shape.length; i++) sb.append(i > 0 ? ", " : "").append(shape[i]);
    return sb.append("]").toString();
  }

  // ------------------------------------------------------------------------------------------
  // reading

  /**
   * Reads an {@code .npy} file. {@code NumPy.read(Path.of("labels.npy"))}.
   *
   * @param file the file
   * @return the array
   * @throws IOException when the file cannot be read or is not a supported .npy (the message names
   *     the file and what is wrong)
   */
  public static Array read(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      return readBounded(in, file.toString());
    }
  }

  /**
   * An .npy from a stream, header first: then only the bytes its shape needs are read (numpy reads
   * so too). Reading the whole file or entry first took a small deflated entry declaring gigabytes,
   * or any file of 2 GiB, to an OutOfMemoryError; bytes past the data are ignored, as by numpy.
   */
  private static Array readBounded(InputStream in, String where) throws IOException {
    byte[] head = in.readNBytes(12);
    if (head.length < 10) return parse(head, where);  // too short: parse says so
    int major = head[6] & 0xff;
    long headerLen;
    int start;
    if (major == 1) {
      headerLen = (head[8] & 0xff) | (head[9] & 0xff) << 8;
      start = 10;
    } else if ((major == 2 || major == 3) && head.length == 12) {
      headerLen = ((head[8] & 0xffL) | (head[9] & 0xffL) << 8 | (head[10] & 0xffL) << 16 | (head[11] & 0xffL) << 24);
      start = 12;
    } else {
      return parse(head, where);  // the magic, the version or a truncated header: parse says which
    }
    if (headerLen > 1 << 20) throw new IOException(where + ": .npy header of " + headerLen + " bytes (at most 1 MiB read)");
    int headerEnd = (int) (start + headerLen);
    if (headerEnd > head.length) head = concat(head, in.readNBytes(headerEnd - head.length));
    Header h = header(head, where);  // malformed headers, dtypes and shapes refused here
    long total = h.data() + h.need();
    if (total > Integer.MAX_VALUE - 8)
      throw new IOException(where + ": " + h.descr() + " " + shapeText(h.shape()) + " is " + h.need()
          + " bytes of data, more than one Java array holds (2^31 - 9 bytes); split it");
    if (total > head.length) head = concat(head, in.readNBytes((int) (total - head.length)));
    return decode(h, head, where);  // a stream that ended early: "truncated", from decode
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] c = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }

  /**
   * Reads every array of an {@code .npz} file. {@code NumPy.readNpz(Path.of("pap.npz")).get("row")}.
   *
   * @param file the file
   * @return entry name (without ".npy") → array, in the zip's order
   * @throws IOException when the file is not a zip of supported .npy files (the message names the
   *     file and the entry)
   */
  public static Map<String, Array> readNpz(Path file) throws IOException {
    Map<String, Array> out = new LinkedHashMap<>();
    forEachNpzEntry(file, out::put);
    return out;
  }

  /** What {@link #forEachNpzEntry} hands each array to. */
  @FunctionalInterface
  public interface EntryVisitor {
    /**
     * One array of the file.
     *
     * @param name the entry's name without ".npy"
     * @param array its contents
     * @throws IOException to stop the walk with that error
     */
    void visit(String name, Array array) throws IOException;
  }

  /**
   * Reads the arrays of an {@code .npz} one after another, in the zip's order, holding one on the
   * heap at a time (what loading a large checkpoint needs; {@link #readNpz} keeps them all).
   * {@code NumPy.forEachNpzEntry(Path.of("w.npz"), (name, a) -> System.out.println(name + " " + a))}.
   *
   * @param file the file
   * @param visitor called once per array
   * @throws IOException as {@link #readNpz}, or the visitor's
   */
  public static void forEachNpzEntry(Path file, EntryVisitor visitor) throws IOException {
    try (java.nio.channels.SeekableByteChannel ch = Files.newByteChannel(file)) {
      walk(file, ch, visitor);
    }
  }

  /** Between the two walks of {@link #forEachNpzEntryTwice}. */
  @FunctionalInterface
  public interface Between {
    /**
     * Runs after the first walk, before the second.
     *
     * @throws IOException to stop before the second walk
     */
    void run() throws IOException;
  }

  /**
   * Two walks over the arrays of one open file, {@code between} run between them: what a loader
   * that checks everything before its first write needs (one array on the heap at a time). The
   * file is opened once, so a file replaced between the walks (a trainer's atomic save) is not seen:
   * both read the same bytes. {@code Module.loadParameters} and {@code Optimizer.loadState} use it.
   *
   * @param file the file
   * @param first called once per array, first walk
   * @param between run between the walks
   * @param second called once per array, second walk
   * @throws IOException as {@link #readNpz}, or a callback's
   */
  public static void forEachNpzEntryTwice(Path file, EntryVisitor first, Between between, EntryVisitor second)
      throws IOException {
    try (java.nio.channels.SeekableByteChannel ch = Files.newByteChannel(file)) {
      walk(file, ch, first);
      between.run();
      ch.position(0);
      walk(file, ch, second);
    }
  }

  private static void walk(Path file, java.nio.channels.SeekableByteChannel ch, EntryVisitor visitor) throws IOException {
    // the directory at the end of the file lists every entry: a file cut short at an entry
    // boundary streamed as a complete one with fewer entries (an optimizer state silently missing
    // its last moments); numpy refuses such a file too
    long listed = listedEntries(ch);
    if (listed == -2)
      throw new IOException(file + ": not a valid .npz (zip) file, or a truncated one (no end-of-directory record)");
    ch.position(0);
    int seen = 0;
    InputStream raw = new java.io.FilterInputStream(java.nio.channels.Channels.newInputStream(ch)) {
      @Override
      public void close() {}  // the channel stays open for a second walk
    };
    try (ZipInputStream zip = new ZipInputStream(new java.io.BufferedInputStream(raw, 1 << 16))) {
      ZipEntry e;
      while ((e = zip.getNextEntry()) != null) {
        seen++;
        if (e.isDirectory()) continue;
        String name = e.getName();
        String key = name.endsWith(".npy") ? name.substring(0, name.length() - 4) : name;
        visitor.visit(key, readBounded(zip, file + " (entry " + name + ")"));
      }
    } catch (java.util.zip.ZipException z) {
      throw new IOException(file + ": not a valid .npz (zip) file: " + z.getMessage(), z);
    } catch (java.io.EOFException z) {  // a truncated compressed entry
      throw new IOException(file + ": truncated .npz (zip) file: " + z.getMessage(), z);
    }
    if (listed >= 0 && seen != listed)
      throw new IOException(file + ": the zip's directory lists " + listed + " entries, " + seen + " were read (truncated?)");
  }

  /**
   * The entry count of the zip's end-of-central-directory record (zip64's where the classic one
   * says 0xFFFF): -2 when there is no such record (not a zip, or cut short), -1 when unreadable.
   */
  private static long listedEntries(java.nio.channels.SeekableByteChannel ch) throws IOException {
    long size = ch.size();
    if (size < 22) return -2;
    int tail = (int) Math.min(size, 22 + 65535);
    ByteBuffer b = ByteBuffer.allocate(tail).order(ByteOrder.LITTLE_ENDIAN);
    ch.position(size - tail);
    while (b.hasRemaining() && ch.read(b) >= 0) {}
    byte[] a = b.array();
    for (int i = tail - 22; i >= 0; i--) {
      if (a[i] != 'P' || a[i + 1] != 'K' || a[i + 2] != 5 || a[i + 3] != 6) continue;
      int entries = (a[i + 10] & 0xff) | (a[i + 11] & 0xff) << 8;
      if (entries != 0xFFFF) return entries;
      int l = i - 20;  // zip64: its locator is the 20 bytes before
      if (l >= 0 && a[l] == 'P' && a[l + 1] == 'K' && a[l + 2] == 6 && a[l + 3] == 7) {
        long off = b.getLong(l + 8);
        if (off < 0 || off > size - 56) return -1;
        ByteBuffer z = ByteBuffer.allocate(56).order(ByteOrder.LITTLE_ENDIAN);
        ch.position(off);
        while (z.hasRemaining() && ch.read(z) >= 0) {}
        if (z.getInt(0) == 0x06064b50) return z.getLong(32);
      }
      return -1;
    }
    return -2;
  }

  /**
   * Reads a scipy sparse matrix saved by {@code scipy.sparse.save_npz} (CSR, CSC or COO), summing
   * duplicate entries. {@code NumPy.readSparse(Path.of("acm/pap.npz"))}.
   *
   * @param file the .npz file
   * @return the matrix
   * @throws IOException when the file is unreadable, lacks the arrays of its format, or they are
   *     inconsistent (the message names the file)
   */
  public static SparseMatrix readSparse(Path file) throws IOException {
    Map<String, Array> z = readNpz(file);
    try {
      String format = z.containsKey("format") ? z.get("format").string()
          : z.containsKey("indptr")           ? "csr"
          : z.containsKey("row")              ? "coo"
                                              : null;
      if (format == null)
        throw new IOException(file + ": no 'format', 'indptr' or 'row' array: not a scipy sparse .npz"
            + " (arrays: " + z.keySet() + ")");
      long[] shape = need(z, "shape", file).longs();
      if (shape.length != 2) throw new IOException(file + ": 'shape' must hold 2 values, got " + shape.length);
      double[] data = need(z, "data", file).doubles();
      if (format.equals("coo")) {
        long[] row = need(z, "row", file).longs(), col = need(z, "col", file).longs();
        if (row.length != data.length || col.length != data.length)
          throw new IOException(file + ": coo arrays of different lengths: row " + row.length + ", col " + col.length
              + ", data " + data.length);
        return SparseMatrix.fromCoo(shape[0], shape[1], row, col, data);
      }
      if (format.equals("csr") || format.equals("csc")) {
        long[] indptr = need(z, "indptr", file).longs(), indices = need(z, "indices", file).longs();
        if (indices.length != data.length)
          throw new IOException(file + ": indices has " + indices.length + " entries but data " + data.length);
        boolean csr = format.equals("csr");
        SparseMatrix m =
            SparseMatrix.fromCsr(csr ? shape[0] : shape[1], csr ? shape[1] : shape[0], indptr, indices, data);
        return csr ? m : m.transpose();
      }
      throw new IOException(file + ": sparse format '" + format + "' not supported (csr, csc, coo)");
    } catch (RuntimeException e) {
      throw new IOException(file + ": " + e.getMessage(), e);
    }
  }

  private static Array need(Map<String, Array> z, String key, Path file) throws IOException {
    Array a = z.get(key);
    if (a == null) throw new IOException(file + ": missing array '" + key + "' (has " + z.keySet() + ")");
    return a;
  }

  /** An .npy header: the element type, shape, count and width, and where the data starts. */
  private record Header(String descr, long[] shape, int n, int width, char kind, int data) {
    long need() {
      return (long) n * width;
    }
  }

  /** The header of an .npy held in {@code b} (at least up to the end of the header). */
  private static Header header(byte[] b, String where) throws IOException {
    if (b.length < 10) throw new IOException(where + ": too short for an .npy file (" + b.length + " bytes)");
    for (int i = 0; i < MAGIC.length; i++)
      if (b[i] != MAGIC[i]) throw new IOException(where + ": not an .npy file (no \\x93NUMPY magic)");
    int major = b[6] & 0xff;
    ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    long headerLen;
    int start;
    if (major == 1) {
      headerLen = bb.getShort(8) & 0xffff;
      start = 10;
    } else if (major == 2 || major == 3) {
      if (b.length < 12) throw new IOException(where + ": truncated header");
      headerLen = bb.getInt(8) & 0xffffffffL;
      start = 12;
    } else {
      throw new IOException(where + ": .npy version " + major + "." + (b[7] & 0xff) + " not supported (1, 2, 3)");
    }
    if (start + headerLen > b.length)
      throw new IOException(where + ": header of " + headerLen + " bytes runs past the end of the file");
    String header =
        new String(b, start, (int) headerLen, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
    Matcher d = DESCR.matcher(header), f = FORTRAN.matcher(header), s = SHAPE.matcher(header);
    if (!d.find() || !f.find() || !s.find())
      throw new IOException(
          where + ": malformed .npy header (expected 'descr', 'fortran_order', 'shape'): " + header.trim());
    String descr = d.group(1);
    long[] shape = parseShape(s.group(1), where);
    if (f.group(1).equals("True") && shape.length >= 2)
      throw new IOException(where + ": Fortran-order (column-major) arrays are not supported; save it in C order"
          + " (np.ascontiguousarray) — shape " + shapeText(shape));
    long count = elementCount(shape);  // sizes are >= 0 (parseShape)
    if (count > Integer.MAX_VALUE - 8)
      throw new IOException(where + ": shape " + shapeText(shape) + " has too many elements for the heap");
    int n = (int) count;
    if (descr.length() < 2) throw new IOException(where + ": unknown dtype '" + descr + "'");
    char order = descr.charAt(0);
    if (order == '>')
      throw new IOException(where + ": big-endian dtype '" + descr + "' not supported; convert with"
          + " arr.astype(arr.dtype.newbyteorder('<'))");
    if (order != '<' && order != '|' && order != '=')
      throw new IOException(where + ": dtype '" + descr + "' not supported");
    char kind = descr.charAt(1);
    int width;
    try {
      width = Integer.parseInt(descr.substring(2));
    } catch (NumberFormatException e) {
      throw new IOException(where + ": dtype '" + descr + "' not supported");
    }
    if (width <= 0 || width > 1 << 16) throw new IOException(where + ": dtype '" + descr + "' not supported (its width)");
    return new Header(descr, shape, n, width, kind, (int) (start + headerLen));
  }

  private static Array parse(byte[] b, String where) throws IOException {
    return decode(header(b, where), b, where);
  }

  /** The array of the .npy held in {@code b}, whose header {@code h} was read. */
  private static Array decode(Header h, byte[] b, String where) throws IOException {
    String descr = h.descr();
    long[] shape = h.shape();
    int n = h.n(), width = h.width(), data = h.data();
    char kind = h.kind();
    long need = h.need();
    if (data + need > b.length)
      throw new IOException(where + ": truncated: " + shapeText(shape) + " " + descr + " needs " + need
          + " bytes of data, the file has " + (b.length - data));
    ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    bb.position(data);
    if (kind == 'f') {
      double[] v = new double[n];
      if (width == 8)
        for (int i = 0; i < n; i++) v[i] = bb.getDouble();
      else if (width == 4)
        for (int i = 0; i < n; i++) v[i] = bb.getFloat();
      else
        throw new IOException(where + ": float width " + width + " not supported (f4, f8)");
      return new Array(descr, shape, v, null, null);
    }
    if (kind == 'i' || kind == 'u' || kind == 'b') {
      long[] v = new long[n];
      for (int i = 0; i < n; i++) {
        long x;
        if (width == 1)
          x = kind == 'i' ? bb.get() : bb.get() & 0xff;
        else if (width == 2)
          x = kind == 'i' ? bb.getShort() : bb.getShort() & 0xffff;
        else if (width == 4)
          x = kind == 'i' ? bb.getInt() : bb.getInt() & 0xffffffffL;
        else if (width == 8)
          x = bb.getLong();
        else
          throw new IOException(where + ": integer width " + width + " not supported");
        if (kind == 'u' && width == 8 && x < 0)
          throw new IOException(where + ": uint64 element " + i + " exceeds 2^63");
        v[i] = x;
      }
      return new Array(descr, shape, null, v, null);
    }
    if (kind == 'S') {
      String[] v = new String[n];
      for (int i = 0; i < n; i++) {
        int end = 0;
        while (end < width && b[data + i * width + end] != 0) end++;
        v[i] = new String(b, data + i * width, end, StandardCharsets.ISO_8859_1);
      }
      return new Array(descr, shape, null, null, v);
    }
    throw new IOException(where + ": dtype '" + descr + "' not supported (f4 f8 i1-i8 u1-u8 b1 S<n>)");
  }

  /**
   * The product of sizes >= 0: 0 when any is 0, Long.MAX_VALUE when it overflows (a product that
   * wrapped could pass as small: 2^32 · 2^32 is 0 in 64 bits).
   */
  private static long elementCount(long[] shape) {
    for (long d : shape) if (d == 0) return 0;
    long p = 1;
    for (long d : shape) {
      if (p > Long.MAX_VALUE / d) return Long.MAX_VALUE;
      p *= d;
    }
    return p;
  }

  private static long[] parseShape(String text, String where) throws IOException {
    String t = text.trim();
    if (t.isEmpty()) return new long[0];
    String[] parts = t.split(",");
    int m = 0;
    long[] s = new long[parts.length];
    for (String p : parts) {
      String q = p.trim();
      if (q.isEmpty()) continue;
      if (q.endsWith("L")) q = q.substring(0, q.length() - 1);
      try {
        s[m] = Long.parseLong(q);
      } catch (NumberFormatException e) {
        throw new IOException(where + ": malformed shape (" + text + ")");
      }
      if (s[m] < 0) throw new IOException(where + ": negative dimension in shape (" + text + ")");
      m++;
    }
    return java.util.Arrays.copyOf(s, m);
  }

  // ------------------------------------------------------------------------------------------
  // writing

  /**
   * Writes an {@code .npy} file (version 1.0, C order, little-endian), in the array's element type:
   * an array read from a file is written back in its own {@code descr} (an {@code <i4} stays four
   * bytes an element), and a float32 array's doubles are rounded to float.
   * {@code NumPy.write(Path.of("x.npy"), NumPy.Array.ofDoubles(x, 3, 4))}.
   *
   * @param file the file
   * @param a the array
   * @throws IOException when the file cannot be written
   */
  public static void write(Path file, Array a) throws IOException {
    try (OutputStream out = Files.newOutputStream(file)) {
      out.write(encode(a));
    }
  }

  /**
   * Writes an {@code .npz} file: one {@code NAME.npy} entry per map entry, deflated.
   * {@code NumPy.writeNpz(Path.of("m.npz"), Map.of("x", a))}.
   *
   * @param file the file
   * @param arrays name → array
   * @throws IOException when the file cannot be written
   */
  public static void writeNpz(Path file, Map<String, Array> arrays) throws IOException {
    try (OutputStream out = Files.newOutputStream(file); ZipOutputStream zip = new ZipOutputStream(out)) {
      for (var e : arrays.entrySet()) {
        zip.putNextEntry(new ZipEntry(e.getKey() + ".npy"));
        zip.write(encode(e.getValue()));
        zip.closeEntry();
      }
    }
  }

  /**
   * Writes named tensors as an {@code .npz} ({@code np.load} reads it; so does
   * {@link #readTensors}): one entry per tensor in the map's order, each in the element type it has
   * (F32 as {@code <f4}, F64 as {@code <f8}, I64 as {@code <i8}; BF16 and F16, which NumPy lacks or
   * this reader does not take, widened exactly to {@code <f4}), copied from the GPU first where they
   * live there. Nothing is recorded by autograd. Every tensor is checked before the file is opened:
   * a null or closed one, or a name that is empty or holds a '/', is an error naming it, and no file
   * is written. Entries are stored uncompressed (as {@code np.savez}); the heap holds one tensor's
   * values at a time; the file is written beside the target and moved over it when complete, so a
   * failed write leaves an earlier file as it was.
   *
   * <pre>{@code
   * NumPy.writeTensors(Path.of("weights.npz"), net.namedParameters());   // {"layer0.weight": <f4 [40, 1], ...}
   * }</pre>
   *
   * @param file the file (replaced if present)
   * @param tensors name → tensor
   * @throws IOException when the file cannot be written
   */
  public static void writeTensors(Path file, Map<String, Tensor> tensors) throws IOException {
    for (var e : tensors.entrySet()) {
      String name = e.getKey();
      Tensor t = e.getValue();
      if (name == null || name.isEmpty() || name.contains("/"))
        throw new IllegalArgumentException("NumPy.writeTensors " + file + ": entry name '" + name
            + "' (must be non-empty, without '/')");
      if (t == null) throw new IllegalArgumentException("NumPy.writeTensors " + file + ": '" + name + "' is null");
      if (t.isClosed())
        throw new MetakernelsException("NumPy.writeTensors " + file + ": '" + name + "' is closed");
    }
    // One tensor on the heap at a time (a model's parameters need not fit there twice over),
    // stored uncompressed as np.savez does (deflate gains little on weights and costs the time),
    // into a file beside the target that replaces it only once complete: a failed write leaves an
    // earlier checkpoint as it was.
    Path dir = file.toAbsolutePath().getParent();
    // (not Files.createTempFile: its 0600 would become the checkpoint's mode; this one gets the umask's)
    Path tmp = dir.resolve("." + file.getFileName() + "." + java.util.UUID.randomUUID() + ".tmp");
    try {
      try (OutputStream out = Files.newOutputStream(tmp, java.nio.file.StandardOpenOption.CREATE_NEW);
           ZipOutputStream zip = new ZipOutputStream(out)) {
        for (var e : tensors.entrySet()) {
          Tensor t = e.getValue();
          long[] shape = t.shape();
          Array a = switch (t.dtype()) {
            case F64 -> Array.ofDoubles(t.toDoubleArray(), shape);
            case I64 -> Array.ofLongs(t.toLongArray(), shape);
            default -> Array.ofFloats(t.toFloatArray(), shape);  // F32, and BF16/F16 widened exactly
          };
          byte[] bytes = encode(a);
          ZipEntry ze = new ZipEntry(e.getKey() + ".npy");
          ze.setMethod(ZipEntry.STORED);
          ze.setSize(bytes.length);
          ze.setCompressedSize(bytes.length);
          CRC32 crc = new CRC32();
          crc.update(bytes);
          ze.setCrc(crc.getValue());
          zip.putNextEntry(ze);
          zip.write(bytes);
          zip.closeEntry();
        }
      }
      try {
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException x) {
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /**
   * Reads every array of an {@code .npz} as a tensor on {@code device}, in the file's order:
   * {@code <f4} as F32, {@code <f8} as F64, every integer and bool type as I64 (what
   * {@code np.savez} writes of a PyTorch model's {@code state_dict} converted to NumPy reads back).
   * A string entry is an error naming it.
   *
   * <pre>{@code
   * Map<String, Tensor> w = NumPy.readTensors(Path.of("weights.npz"), Device.CPU);   // each as written
   * }</pre>
   *
   * @param file the file
   * @param device where the tensors go
   * @return entry name → a new tensor (the caller owns them: the current scope, if any)
   * @throws IOException when the file cannot be read or is not an .npz of numeric arrays
   */
  public static Map<String, Tensor> readTensors(Path file, Device device) throws IOException {
    // one array on the heap at a time; on an error the tensors made so far are freed
    Map<String, Tensor> out = new LinkedHashMap<>();
    boolean done = false;
    try {
      forEachNpzEntry(file, (name, a) -> {
        if (a.strings != null)
          throw new IOException(file + ": entry '" + name + "' is a string array (" + a.describe() + "), not a tensor");
        DType type = a.longs != null ? DType.I64 : a.descr.endsWith("f4") ? DType.F32 : DType.F64;
        Tensor old = out.put(name, a.toTensor(type, device));
        if (old != null) old.close();  // a name twice in the zip: the last one kept, as numpy; the first freed
      });
      done = true;
      return out;
    } finally {
      if (!done) for (Tensor t : out.values()) t.close();
    }
  }

  /**
   * Writes a sparse matrix in scipy's CSR layout ({@code scipy.sparse.load_npz} reads it).
   * {@code NumPy.writeSparse(Path.of("pap.npz"), pap)}.
   *
   * @param file the file
   * @param m the matrix
   * @throws IOException when the file cannot be written
   */
  public static void writeSparse(Path file, SparseMatrix m) throws IOException {
    int[] ci = m.colIndices();
    long[] idx = new long[ci.length];
    for (int i = 0; i < ci.length; i++) idx[i] = ci[i];
    Map<String, Array> z = new LinkedHashMap<>();
    z.put("indices", Array.ofLongs(idx, idx.length));
    z.put("indptr", Array.ofLongs(m.rowPtr(), m.rows() + 1L));
    z.put("format", Array.ofString("csr"));
    z.put("shape", Array.ofLongs(new long[] {m.rows(), m.cols()}, 2));
    z.put("data", Array.ofDoubles(m.values(), m.nnz()));
    writeNpz(file, z);
  }

  private static byte[] encode(Array a) {
    StringBuilder shape = new StringBuilder("(");
    for (int i = 0; i < a.shape.length; i++)
      shape.append(a.shape[i]).append(a.shape.length == 1 ? "," : i + 1 < a.shape.length ? ", " : "");
    shape.append(")");
    String dict = "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    int total = 10 + dict.length() + 1;
    int pad = (64 - total % 64) % 64;
    String header = dict + " ".repeat(pad) + "\n";
    int n = (int) a.size();
    // every element in the width its descr names (up to 2026-12-06 numbers went out as 8 bytes
    // whatever the descr said, so an <f4 or <i4 array read from a file was written back corrupt)
    int width = Integer.parseInt(a.descr.substring(2));
    ByteBuffer bb = ByteBuffer.allocate(10 + header.length() + n * width).order(ByteOrder.LITTLE_ENDIAN);
    bb.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
    bb.put(header.getBytes(StandardCharsets.ISO_8859_1));
    if (a.doubles != null) {
      if (width == 4)
        for (double v : a.doubles) bb.putFloat((float) v);
      else
        for (double v : a.doubles) bb.putDouble(v);
    } else if (a.longs != null) {
      // the reader widened i1-i8, u1-u8 and b1 to long; each goes back in its own width
      for (long v : a.longs) {
        if (width == 1) bb.put((byte) v);
        else if (width == 2) bb.putShort((short) v);
        else if (width == 4) bb.putInt((int) v);
        else bb.putLong(v);
      }
    } else
      for (String s : a.strings) {
        byte[] sb = s.getBytes(StandardCharsets.ISO_8859_1);
        bb.put(sb, 0, Math.min(sb.length, width));
        for (int i = sb.length; i < width; i++) bb.put((byte) 0);
      }
    return bb.array();
  }
}
