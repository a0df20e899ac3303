package org.metakernels.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.Scope;

/**
 * Peak memory of one call, noted by the set-ups (not timed). Two measures:
 * <ul>
 *   <li>metakernels' own: the host allocator's high-water mark (mk_host_reset_peak_bytes before,
 *       mk_host_peak_bytes after) less the bytes live before the call, exact, every native
 *       buffer the call allocates (its result included);
 *   <li>both vendors, the same way: the growth of the process's peak resident size during the
 *       call (Linux: /proc/self/clear_refs resets VmHWM to VmRSS; VmHWM after the call less VmRSS
 *       before). Before the call metakernels' block cache is emptied and glibc's free memory
 *       trimmed (JavaCPP's Pointer.trimMemory, malloc_trim), so neither starts with memory it
 *       could reuse unseen. It counts pages touched, so it includes anything else the process
 *       touches meanwhile (the JVM: small next to these buffers); where /proc is not there it is
 *       not reported.
 * </ul>
 */
final class PeakMemory {
  private PeakMemory() {}

  /** VmRSS or VmHWM of this process in bytes, or -1. */
  static long statusBytes(String key) {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/self/status")))
        if (l.startsWith(key + ":")) return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024L;
    } catch (IOException | NumberFormatException e) {
      // not Linux
    }
    return -1;
  }

  static boolean resetHighWaterMark() {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
      return true;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** The growth of the peak resident size during {@code call}, or -1 where it cannot be read. */
  static long residentPeak(Runnable call) {
    MkNative.mk_host_empty_cache();
    Pointer.trimMemory();
    long before = statusBytes("VmRSS");
    if (before < 0 || !resetHighWaterMark()) {
      call.run();
      return -1;
    }
    call.run();
    long hwm = statusBytes("VmHWM");
    return hwm < 0 ? -1 : Math.max(0, hwm - before);
  }

  /** The allocator's peak during {@code call} less the bytes live before it. */
  static long allocatorPeak(Runnable call) {
    long base = MkNative.mk_host_reset_peak_bytes();
    call.run();
    return MkNative.mk_host_peak_bytes() - base;
  }

  /**
   * Notes the peak memory of one call of {@code call} (run two or three times: warm it first).
   * {@code what} names the benchmark and shape; {@code metakernels} whether the call is ours (then
   * the allocator's peak is noted too).
   */
  static void note(String what, String vendor, boolean metakernels, Runnable call) {
    call.run(); // warm: first-call allocations (thread pools, caches) are not the call's
    long rss = residentPeak(call);
    String rssText = rss < 0 ? "resident peak not measurable here" : String.format("resident peak +%.1f MB", rss / 1e6);
    if (metakernels) {
      long peak = allocatorPeak(call);
      Checks.note(String.format(
          "memory %s %s: allocator peak %.1f MB per call (mk_host_peak_bytes), %s", what, vendor, peak / 1e6, rssText));
    } else {
      Checks.note(String.format("memory %s %s: %s per call", what, vendor, rssText));
    }
  }

  /**
   * {@link #note} for a call of {@code vendor} ("metakernels" or a libtorch peer), run in a scope
   * of its library (so that what it allocates is freed when it returns).
   */
  static void noteCall(String what, String vendor, Runnable call) {
    if (vendor.equals("metakernels"))
      note(what, vendor, true, () -> {
        try (Scope s = Scope.open()) {
          call.run();
        }
      });
    else
      note(what, vendor, false, () -> {
        try (PointerScope ps = new PointerScope()) {
          call.run();
        }
      });
  }
}
