package org.metakernels.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Set-up checks shared by the benchmarks: the two sides must agree before anything is timed,
 * a peer that would not fit in memory is refused before it starts, and what a benchmark wants
 * the report to say goes to the notes file ({@code -Dbench.notes=PATH}, one line per note).
 */
final class Checks {
  private Checks() {}

  /** Throws unless max |a - b| <= atol + rtol * max |b|; notes the difference either way. */
  static double assertClose(String what, float[] a, float[] b, double atol, double rtol) {
    if (a.length != b.length) throw new IllegalStateException(what + ": lengths differ, " + a.length + " vs " + b.length);
    double maxDiff = 0, maxRef = 0;
    for (int i = 0; i < a.length; i++) {
      double d = Math.abs((double) a[i] - b[i]);
      if (!(d <= maxDiff)) maxDiff = d;  // NaN propagates
      maxRef = Math.max(maxRef, Math.abs(b[i]));
    }
    double tol = atol + rtol * maxRef;
    String line = String.format("%s: max|diff| = %.3g (max|ref| = %.3g, tolerance %.3g)", what, maxDiff, maxRef, tol);
    if (!(maxDiff <= tol)) {
      note("MISMATCH " + line);
      throw new IllegalStateException("results differ, refusing to time them: " + line);
    }
    note("check " + line);
    return maxDiff;
  }

  /**
   * Refuses (throws) when a peer's estimated peak would exceed {@code -Dbench.maxPeerGB} (default
   * 8) or half of the memory available now, so that no run pushes the shared machine into the
   * OOM killer and the set of runs does not depend on the moment.
   */
  static void requireMemory(String what, long bytes) {
    double capGb = Double.parseDouble(System.getProperty("bench.maxPeerGB", "8"));
    long cap = (long) (capGb * 1e9);
    long avail = memAvailableBytes();
    String why = null;
    if (bytes > cap) why = String.format("over the %.0f GB cap (-Dbench.maxPeerGB)", capGb);
    else if (avail > 0 && bytes > avail / 2) why = String.format("over half of MemAvailable (%.1f GB)", avail / 1e9);
    if (why != null) {
      String msg = String.format("%s not run: needs about %.1f GB, %s", what, bytes / 1e9, why);
      note("SKIPPED " + msg);
      throw new IllegalStateException(msg);
    }
  }

  /** Whether {@link #requireMemory} would let a peer of {@code bytes} run (notes nothing). */
  static boolean fitsMemory(long bytes) {
    double capGb = Double.parseDouble(System.getProperty("bench.maxPeerGB", "8"));
    long avail = memAvailableBytes();
    return bytes <= (long) (capGb * 1e9) && !(avail > 0 && bytes > avail / 2);
  }

  static long memAvailableBytes() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/meminfo")))
        if (l.startsWith("MemAvailable:")) return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024L;
    } catch (IOException | NumberFormatException e) {
      // unknown
    }
    return -1;
  }

  /** Appends a line to the notes file, if one was given; always prints it too. */
  static synchronized void note(String line) {
    System.out.println("[bench-note] " + line);
    String path = System.getProperty("bench.notes");
    if (path == null || path.isBlank()) return;
    try {
      Files.writeString(Path.of(path), line + System.lineSeparator(), StandardCharsets.UTF_8,
          StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    } catch (IOException e) {
      System.err.println("bench.notes: " + e);
    }
  }

  static long[] parseShape(String s) {
    String[] parts = s.split("x");
    long[] shape = new long[parts.length];
    for (int i = 0; i < parts.length; i++) shape[i] = Long.parseLong(parts[i].trim());
    return shape;
  }
}
