package org.metakernels.cli;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;
import org.metakernels.runtime.Backend;
import org.metakernels.runtime.Codes;
import org.metakernels.runtime.MetakernelsException;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;

/**
 * The checks every command runs before computing: option values and output paths (usage errors,
 * exit code 2) and the backend's start (runtime failures, exit code 1), each with a one-line
 * message naming the option or setting.
 */
final class Checks {
  private Checks() {}

  /** A runtime failure with a one-line message for the user (exit code 1, no stack trace). */
  static final class Failure extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Failure(String message) {
      super(message);
    }
  }

  /** A usage error (exit code 2) of the command {@code spec}. */
  static ParameterException usage(CommandSpec spec, String message) {
    return new ParameterException(spec.commandLine(), message);
  }

  /** Refuses {@code value} below {@code min}: {@code atLeast(spec, "--steps", steps, 1)}. */
  static void atLeast(CommandSpec spec, String option, long value, long min) {
    if (value < min) throw usage(spec, option + " must be at least " + min + ", got " + value);
  }

  /** Refuses a {@code value} that is not a finite number > 0 (NaN and infinities included): {@code positive(spec, "--lr", lr)}. */
  static void positive(CommandSpec spec, String option, double value) {
    if (!(value > 0) || !Double.isFinite(value)) throw usage(spec, option + " must be a finite number > 0, got " + value);
  }

  /** Refuses a {@code value} that is not finite (NaN, infinities): {@code finite(spec, "--beta", beta)}. */
  static void finite(CommandSpec spec, String option, double value) {
    if (!Double.isFinite(value)) throw usage(spec, option + " must be a finite number, got " + value);
  }

  /** Refuses {@code value} outside [min, max]: {@code between(spec, "--dim", dim, 1, 1023)}. */
  static void between(CommandSpec spec, String option, long value, long min, long max) {
    if (value < min || value > max)
      throw usage(spec, option + " must be between " + min + " and " + max + ", got " + value);
  }

  /**
   * Checks that {@code dir} can be written before any work: an existing writable folder, or a
   * missing one whose parent exists and is writable (only that last level is created, later).
   */
  static void outputDir(CommandSpec spec, String option, Path dir) {
    Path abs = dir.toAbsolutePath().normalize();
    if (Files.exists(abs)) {
      if (!Files.isDirectory(abs)) throw usage(spec, option + " " + dir + ": exists and is not a folder");
      writable(spec, option + " " + dir, abs);
    } else {
      writable(spec, option + " " + dir, parentFolder(spec, option, dir));
    }
  }

  /** Checks that {@code file} can be written: its folder exists and is writable (nothing is created). */
  static void outputFile(CommandSpec spec, String option, Path file) {
    Path abs = file.toAbsolutePath().normalize();
    if (Files.isDirectory(abs)) throw usage(spec, option + " " + file + ": is a folder");
    if (Files.exists(abs) && !Files.isWritable(abs)) throw usage(spec, option + " " + file + ": the file is not writable");
    writable(spec, option + " " + file, parentFolder(spec, option, file));
  }

  private static Path parentFolder(CommandSpec spec, String option, Path p) {
    Path parent = p.toAbsolutePath().normalize().getParent();
    if (parent == null) throw usage(spec, option + " " + p + ": has no parent folder");
    if (!Files.isDirectory(parent))
      throw usage(spec, option + " " + p + ": the folder " + parent + (Files.exists(parent) ? " is not a folder" : " does not exist"));
    return parent;
  }

  /** Writes and deletes a file in {@code dir}: the file system's answer, read-only mounts and root included. */
  private static void writable(CommandSpec spec, String what, Path dir) {
    try {
      Files.delete(Files.createTempFile(dir, ".metakernels-write-check", ".tmp"));
    } catch (IOException | SecurityException e) {
      String why = e instanceof AccessDeniedException ? "permission denied"
          : e instanceof FileSystemException f && f.getReason() != null ? f.getReason() : e.getClass().getSimpleName();
      throw usage(spec, what + ": cannot write in " + dir + " (" + why + ")");
    }
  }

  /**
   * Checks the {@code -Dmetakernels.*} settings the backend reads (usage errors), applies
   * {@code metakernels.isa}, and starts the backend; a start that fails is a runtime failure.
   *
   * @return the backend
   */
  static Backend backend(CommandSpec spec) {
    String threads = System.getProperty("metakernels.threads");
    if (threads != null && (!threads.strip().matches("\\d{1,9}") || Integer.parseInt(threads.strip()) > Backend.MAX_THREADS))
      throw usage(spec, "metakernels.threads=" + threads + " is not a thread count from 1 to " + Backend.MAX_THREADS
          + " (or 0 for the OpenMP default)");
    String tf32 = System.getProperty("metakernels.tf32");
    if (tf32 != null && !Set.of("true", "false").contains(tf32.strip().toLowerCase(Locale.ROOT)))
      throw usage(spec, "metakernels.tf32=" + tf32 + " is not true or false");
    String device = System.getProperty("metakernels.device");
    if (device != null && !Set.of("auto", "cpu", "cuda").contains(device.strip().toLowerCase(Locale.ROOT)))
      throw usage(spec, "metakernels.device=" + device + " is not one of auto, cpu, cuda");
    String isa = System.getProperty("metakernels.isa");
    if (isa != null) {
      try {
        Backend.setCpuIsa(isa);  // also read by the backend's start; applied here to tell the two errors apart
      } catch (MetakernelsException e) {
        if (e.status() == Codes.ERR_UNSUPPORTED)
          throw new Failure("metakernels.isa=" + isa + " is not supported by this CPU (supported: avx2, auto)");
        throw usage(spec, "metakernels.isa=" + isa + " is not one of avx2, avx512, auto");
      }
    }
    try {
      return Backend.get();
    } catch (RuntimeException | LinkageError e) {
      if (device != null && device.strip().equalsIgnoreCase("cuda"))
        throw new Failure("metakernels.device=cuda: " + cudaCause(e.getMessage()));
      throw new Failure("the native backend did not start: " + Main.oneLine(e.getMessage()));
    }
  }

  /** Fails unless CUDA is available, naming the cause: {@code --device cuda: no CUDA driver (libcuda.so.1 not found)}. */
  static void requireCuda(Backend backend, String option) {
    if (!backend.cudaAvailable()) throw new Failure(option + ": " + cudaCause(backend.cudaReason()));
  }

  /** Why CUDA is unavailable, in a few words: the backend names the missing piece. */
  static String cudaCause(String reason) {
    return Main.oneLine(reason);
  }
}
