package org.metakernels.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.metakernels.runtime.Backend;
import org.metakernels.tensor.Device;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The options every run command (the demo and the recipes) shares, as a picocli mixin: the seed,
 * the folder of the plots ({@code <command>-out} by default), the JSON file; checked before any
 * work. {@link DeviceOption} adds {@code --device} to the commands that run on either device.
 */
final class RunOptions {
  @Option(names = "--seed", defaultValue = "1", description = "random seed (default: ${DEFAULT-VALUE})") long seed;

  @Option(names = "--out", defaultValue = "${COMMAND-NAME}-out",
      description = "folder for the PNG plots; its parent must exist, only the last level is created "
          + "(default: ${DEFAULT-VALUE})")
  Path out;

  @Option(names = "--json",
      description = "write the measured numbers and the settings to this JSON file (its folder must exist)")
  Path json;

  @Spec(Spec.Target.MIXEE) CommandSpec spec;

  /**
   * Checks that --out and --json can be written (usage errors), then starts the backend
   * ({@link Checks#backend}).
   */
  Backend checkOutputsAndStart() {
    Checks.outputDir(spec, "--out", out);
    if (json != null) Checks.outputFile(spec, "--json", json);
    return Checks.backend(spec);
  }

  /** The file {@code name} in --out, the folder created first (its parent was checked). */
  Path plot(String name) throws IOException {
    Files.createDirectories(out);
    return out.resolve(name);
  }

  /**
   * Writes {@code text} to --json when it was given and says where; a number that is not finite
   * (a loss that diverged, a mean of nothing) is written as null, JSON having no NaN or Infinity.
   */
  void writeJson(PrintWriter o, String text) throws IOException {
    if (json == null) return;
    Files.writeString(json, finiteJson(text)); // its folder was checked before the run
    o.println("json:  " + json.toAbsolutePath());
  }

  /** {@code text} with each unquoted NaN, Infinity or -Infinity value (as Java formats them) replaced by null. */
  static String finiteJson(String text) {
    StringBuilder b = new StringBuilder(text.length());
    boolean inString = false;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (inString) {
        b.append(c);
        if (c == '\\' && i + 1 < text.length()) b.append(text.charAt(++i));
        else if (c == '"') inString = false;
        continue;
      }
      if (c == '"') inString = true;
      String token = text.startsWith("NaN", i) ? "NaN" : text.startsWith("-Infinity", i) ? "-Infinity"
          : text.startsWith("Infinity", i) ? "Infinity" : null;
      if (token != null) {
        b.append("null");
        i += token.length() - 1;
      } else b.append(c);
    }
    return b.toString();
  }

  /** {@code --device cpu|cuda}: a mixin of the commands that run on either device. */
  static final class DeviceOption {
    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda (default: ${DEFAULT-VALUE})")
    String device;

    @Spec(Spec.Target.MIXEE) CommandSpec spec;

    /** The device asked for (a usage error for anything but cpu, cuda or gpu). */
    Device parse() {
      String d = device.toLowerCase(Locale.ROOT);
      if (d.equals("cpu")) return Device.CPU;
      if (d.equals("cuda") || d.equals("gpu")) return Device.CUDA;
      throw Checks.usage(spec, "--device must be cpu or cuda, got '" + device + "'");
    }

    /** Fails (naming the cause) when {@code dev} is CUDA and the backend has none. */
    void require(Backend backend, Device dev) {
      if (dev == Device.CUDA) Checks.requireCuda(backend, "--device " + device);
    }
  }
}
