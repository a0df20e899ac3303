package org.metakernels.cli;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.bytedeco.javacpp.Loader;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.metakernels.runtime.Backend;

/**
 * The command line in-process, one test per defect of issue 14: each bad command line ends with
 * one line on stderr and its exit code (2 usage, 1 runtime failure) before anything is computed.
 */
class CliTest {
  @TempDir
  Path tmp;

  @BeforeAll
  static void headless() {
    System.setProperty("java.awt.headless", "true");
  }

  private record Run(int code, String out, String err) {}

  private static Run run(String... args) {
    StringWriter out = new StringWriter(), err = new StringWriter();
    int code = Main.execute(new PrintWriter(out), new PrintWriter(err), false, args);
    return new Run(code, out.toString(), err.toString());
  }

  /** Exit code, exactly one line on stderr, nothing on stdout (no header: nothing ran). */
  private static void assertFails(int code, String line, Run r) {
    assertEquals(line + System.lineSeparator(), r.err(), "stderr");
    assertEquals(code, r.code(), "exit code; stderr: " + r.err());
    assertEquals("", r.out(), "stdout");
  }

  static Stream<Arguments> badOptions() {
    return Stream.of(
        Arguments.of(List.of("--dim", "-3"), "--dim must be between 1 and 1023, got -3"),
        Arguments.of(List.of("--dim", "0"), "--dim must be between 1 and 1023, got 0"),
        Arguments.of(List.of("--dim", "5000"), "--dim must be between 1 and 1023, got 5000"),
        Arguments.of(List.of("--context", "0"), "--context must be at least 1, got 0"),
        Arguments.of(List.of("--steps", "-5"), "--steps must be at least 1, got -5"),
        Arguments.of(List.of("--steps", "0"), "--steps must be at least 1, got 0"),
        Arguments.of(List.of("--deep-steps", "0"), "--deep-steps must be at least 1, got 0"),
        Arguments.of(List.of("--batch", "0"), "--batch must be at least 1, got 0"),
        Arguments.of(List.of("--eval-tasks", "0"), "--eval-tasks must be at least 1, got 0"),
        Arguments.of(List.of("--depths", "-1"),
            "--depths: each K must be at least 2 (one layer is always compared) or 0 to skip, got -1"),
        Arguments.of(List.of("--depths", "2,1"),
            "--depths: each K must be at least 2 (one layer is always compared) or 0 to skip, got 1"),
        Arguments.of(List.of("--device", "foo"), "--device must be cpu or cuda, got 'foo'"),
        Arguments.of(List.of("--dim", "abc"), "Invalid value for option '--dim': 'abc' is not an int"),
        Arguments.of(List.of("--dimm", "3"), "Unknown options: '--dimm', '3' (did you mean --dim?)"));
  }

  /**
   * Every text of the command tree that picocli formats (descriptions, headers, footers, option
   * and parameter descriptions) is a valid format string: a bare % (as in "40 % of") made picocli
   * log a warning and print the text raw, its %n unexpanded.
   */
  @Test
  void everyHelpTextIsAValidFormatString() {
    List<String> found = new java.util.ArrayList<>();
    java.util.ArrayDeque<picocli.CommandLine> todo = new java.util.ArrayDeque<>(List.of(Main.commandLine()));
    int commands = 0;
    while (!todo.isEmpty()) {
      picocli.CommandLine c = todo.pop();
      ++commands;
      todo.addAll(c.getSubcommands().values());
      picocli.CommandLine.Model.CommandSpec spec = c.getCommandSpec();
      List<String> texts = new java.util.ArrayList<>();
      texts.addAll(List.of(spec.usageMessage().description()));
      texts.addAll(List.of(spec.usageMessage().header()));
      texts.addAll(List.of(spec.usageMessage().footer()));
      spec.options().forEach(o -> texts.addAll(List.of(o.description())));
      spec.positionalParameters().forEach(o -> texts.addAll(List.of(o.description())));
      for (String t : texts)
        if (t.replace("%%", "").replace("%n", "").contains("%")) found.add(spec.qualifiedName() + ": " + t);
    }
    assertTrue(commands > 10, "the walk reached " + commands + " commands");
    assertEquals(List.of(), found, "texts with a bare %");
    Run r = run("recipe", "reweight", "--help");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("40 % of the training"), r.out());
    assertFalse(r.out().contains("%n"), r.out());
  }

  @ParameterizedTest
  @MethodSource("badOptions")
  void badOptionValuesAreUsageErrors(List<String> options, String message) {
    String[] args = Stream.concat(Stream.of("demo"), options.stream()).toArray(String[]::new);
    assertFails(2, "metakernels demo: " + message, run(args));
  }

  @Test
  void recipeOptionsAreCheckedLikeTheDemos() {
    assertFails(2, "metakernels recipe icl: --steps must be at least 1, got 0", run("recipe", "icl", "--steps", "0"));
    assertFails(2, "metakernels recipe gtn: --inner-steps must be at least 1, got 0", run("recipe", "gtn", "--inner-steps", "0"));
    assertFails(2, "metakernels recipe gtn: --meta-lr must be a finite number > 0, got -1.0", run("recipe", "gtn", "--meta-lr", "-1"));
    assertFails(2, "metakernels recipe gtn: --seeds must be at least 1, got 0", run("recipe", "gtn", "--seeds", "0"));
    // infinities were let through by !(x > 0) and failed mid-run (exit 1); NaN, -Infinity too
    assertFails(2, "metakernels recipe gtn: --meta-lr must be a finite number > 0, got Infinity",
        run("recipe", "gtn", "--meta-lr", "Infinity"));
    assertFails(2, "metakernels recipe maml-sine: --inner-lr must be a finite number > 0, got Infinity",
        run("recipe", "maml-sine", "--inner-lr", "Infinity"));
    assertFails(2, "metakernels recipe maml-sine: --meta-lr must be a finite number > 0, got NaN",
        run("recipe", "maml-sine", "--meta-lr", "NaN"));
    assertFails(2, "metakernels recipe reweight: --lr must be a finite number > 0, got Infinity",
        run("recipe", "reweight", "--lr", "Infinity"));
    assertFails(2, "metakernels recipe reweight: --inner-lr must be a finite number > 0, got -Infinity",
        run("recipe", "reweight", "--inner-lr", "-Infinity"));
    assertFails(2, "metakernels recipe meow: --tau must be a finite number > 0, got Infinity",
        run("recipe", "meow", "--tau", "Infinity"));
    assertFails(2, "metakernels recipe meow: --beta must be a finite number, got NaN", run("recipe", "meow", "--beta", "NaN"));
    assertFails(2, "metakernels recipe meow: --proto must be a finite number >= 0, got Infinity",
        run("recipe", "meow", "--proto", "Infinity"));
    assertFails(2, "metakernels recipe meow: --methods: each must be meow or adameow (or both), got '' in ','",
        run("recipe", "meow", "--methods", ","));
  }

  /** JSON has no NaN or Infinity: such numbers (a diverged loss, a mean of nothing) are written as null. */
  @Test
  void nonFiniteNumbersAreNullInTheJson() {
    assertEquals("{\"a\": null, \"b\": [null, 1.5, null], \"s\": \"NaN Infinity\", \"c\": null}",
        RunOptions.finiteJson("{\"a\": NaN, \"b\": [Infinity, 1.5, -Infinity], \"s\": \"NaN Infinity\", \"c\": NaN}"));
    assertEquals("{\"q\": \"say \\\"NaN\\\"\", \"x\": null}", RunOptions.finiteJson("{\"q\": \"say \\\"NaN\\\"\", \"x\": NaN}"));
  }

  /** Several seeds: each scored on its own, their spread summarised, every run in the JSON. */
  @Test
  void gtnRunsSeveralSeedsAndWritesEachRun() throws Exception {
    Path json = tmp.resolve("gtn.json");
    Run r = run("recipe", "gtn", "--inner-steps", "2", "--batch", "10", "--meta-iterations", "3", "--hidden", "8",
        "--gen-hidden", "16", "--noise-dim", "4", "--eval-inits", "2", "--eval-every", "0", "--seed", "5", "--seeds",
        "2", "--out", tmp.resolve("gtn-out").toString(), "--json", json.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("== seed 5: test accuracy") && r.out().contains("== seed 6: test accuracy")
            && r.out().contains("== over the 2 seeds"),
        r.out());
    String j = Files.readString(json);
    assertTrue(j.contains("\"seeds\": 2") && j.contains("\"over_seeds\": {\"gtn\": {\"accuracy\": ")
            && j.contains("{\"seed\": 5, \"gtn\": {") && j.contains("{\"seed\": 6, \"gtn\": {"),
        j);
    // two meta-trainings from different seeds, not one run reported twice
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"meta_loss_first\": ([^,]+),").matcher(j);
    assertTrue(m.find());
    String first = m.group(1);
    assertTrue(m.find());
    assertNotEquals(first, m.group(1), j);
    assertTrue(Files.size(tmp.resolve("gtn-out").resolve("gtn-digits.png")) > 1000);
  }

  /** An allocation too large for the settings (an Error, past picocli's handler) is one line and exit code 1 too. */
  @Test
  void outOfMemoryIsOneLine() {
    Run r = run("demo", "--batch", "2000000000", "--steps", "1", "--depths", "0", "--eval-tasks", "1", "--out",
        tmp.resolve("oom").toString());
    assertEquals(1, r.code(), r.err());
    assertEquals(1, r.err().lines().count(), r.err());
    assertTrue(r.err().startsWith("metakernels: OutOfMemoryError: ") && r.err().contains("(--verbose for the stack trace)"),
        r.err());
  }

  @Test
  void cudaWithoutDriverNamesTheCause() {
    assumeFalse(Backend.get().cudaAvailable(), "CUDA is available here");
    Run r = run("demo", "--device", "cuda");
    assertEquals(1, r.code());
    assertEquals("", r.out());
    if (driverMissing()) {
      assertEquals("metakernels demo: --device cuda: no CUDA driver (libcuda.so.1 not found)" + System.lineSeparator(), r.err());
    } else {
      assertTrue(r.err().startsWith("metakernels demo: --device cuda: CUDA is unavailable ("), r.err());
      assertEquals(1, r.err().lines().count(), r.err());
    }
  }

  private static boolean driverMissing() {
    try {
      Loader.loadGlobal("libcuda.so.1");
      return false;
    } catch (UnsatisfiedLinkError e) {
      return true;
    }
  }

  @Test
  void verbosePrintsTheStackTrace() {
    assumeFalse(Backend.get().cudaAvailable(), "CUDA is available here");
    for (String[] args : new String[][] {{"--verbose", "demo", "--device", "cuda"}, {"demo", "--device", "cuda", "--verbose"}}) {
      Run r = run(args);
      assertEquals(1, r.code());
      assertTrue(r.err().lines().count() > 2 && r.err().contains("\tat org.metakernels.cli."), r.err());
    }
    assertFalse(run("demo", "--device", "cuda").err().contains("\tat "));
  }

  @Test
  void badThreadsSettingIsAUsageError() {
    for (String bad : List.of("abc", "999999999")) {
      String line = "metakernels.threads=" + bad + " is not a thread count from 1 to 4096 (or 0 for the OpenMP default)";
      withProperty("metakernels.threads", bad, () -> {
        assertFails(2, "metakernels demo: " + line, run("demo"));
        assertFails(2, "metakernels info: " + line, run("info"));
      });
    }
    withProperty("metakernels.tf32", "banana",
        () -> assertFails(2, "metakernels info: metakernels.tf32=banana is not true or false", run("info")));
  }

  @Test
  void isaTheCpuLacksIsARuntimeFailure() throws IOException {
    boolean avx512 = cpuFlags().containsAll(List.of("avx512f", "avx512dq", "avx512bw", "avx512vl"));
    try {
      withProperty("metakernels.isa", "avx512", () -> {
        Run r = run("info");
        if (avx512) {
          assertEquals(0, r.code(), r.err());
          assertTrue(r.out().contains("cpu kernels:   AVX-512"), r.out());
        } else {
          assertFails(1, "metakernels info: metakernels.isa=avx512 is not supported by this CPU (supported: avx2, auto)", r);
        }
      });
      withProperty("metakernels.isa", "sse9",
          () -> assertFails(2, "metakernels demo: metakernels.isa=sse9 is not one of avx2, avx512, auto", run("demo")));
    } finally {
      Backend.setCpuIsa("auto");
    }
  }

  private static List<String> cpuFlags() throws IOException {
    return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("flags"))
        .findFirst().map(l -> List.of(l.substring(l.indexOf(':') + 1).trim().split("\\s+"))).orElse(List.of());
  }

  private static void withProperty(String key, String value, Runnable body) {
    String old = System.getProperty(key);
    System.setProperty(key, value);
    try {
      body.run();
    } finally {
      if (old == null) System.clearProperty(key);
      else System.setProperty(key, old);
    }
  }

  @Test
  void unwritableOutIsRefusedBeforeTheRun() throws IOException {
    Path file = Files.writeString(tmp.resolve("f"), "");
    assertFails(2, "metakernels demo: --out " + file.resolve("plots") + ": the folder " + file + " is not a folder",
        run("demo", "--out", file.resolve("plots").toString()));
    assertFails(2, "metakernels demo: --out " + file + ": exists and is not a folder", run("demo", "--out", file.toString()));
    Path readOnly = Files.createDirectory(tmp.resolve("ro"));
    assertTrue(readOnly.toFile().setWritable(false, false));
    // root writes anywhere it has permissions for; /proc takes no new files, even from root
    Path folder = canCreateFileIn(readOnly) ? Path.of("/proc") : readOnly;
    Run r = run("demo", "--out", folder.toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().startsWith("metakernels demo: --out " + folder + ": cannot write in " + folder + " ("), r.err());
    assertEquals(1, r.err().lines().count());
    assertEquals("", r.out());
  }

  private static boolean canCreateFileIn(Path dir) {
    try {
      Files.delete(Files.createTempFile(dir, "probe", ""));
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  @Test
  void jsonInAMissingFolderIsRefusedAndNothingIsCreated() {
    Path root = Path.of("/nonexistent-" + ProcessHandle.current().pid());
    Path json = root.resolve("dir").resolve("x.json");
    assertFails(2, "metakernels demo: --json " + json + ": the folder " + json.getParent() + " does not exist",
        run("demo", "--json", json.toString()));
    assertFalse(Files.exists(root));
  }

  @Test
  void helpCommand() {
    Run r = run("help");
    assertEquals(0, r.code());
    assertTrue(r.out().contains("Commands:") && r.out().contains("demo") && r.out().contains("recipe"), r.out());
    assertTrue(r.out().contains("Exit codes:") && r.out().contains("2   usage error"), r.out());
    Run demo = run("help", "demo");
    assertEquals(0, demo.code());
    assertTrue(demo.out().startsWith("Usage: metakernels demo") && demo.out().contains("--dim"), demo.out());
    assertFails(2, "metakernels: Unknown subcommand 'bogus'.", run("help", "bogus"));
  }

  @Test
  void unknownCommandsAndOptionsAreUsageErrors() {
    assertFails(2, "metakernels recipe: Unknown option: '--bogus'", run("recipe", "--bogus"));
    assertFails(2, "metakernels recipe: unknown recipe 'foo' (recipes: icl, gtn, maml-sine, reweight, es-objective, meow)",
        run("recipe", "foo"));
    assertFails(2, "metakernels: unknown command 'bogus' (commands: demo, info, recipe, help)", run("bogus"));
    assertFails(2, "metakernels: missing command (demo, info, recipe, help)", run());
  }

  @Test
  void versionIsTheProjectVersion() throws IOException {
    // the version of this build, from app/pom.xml's parent block (surefire runs in app/)
    Matcher m = Pattern.compile("<parent>.*?<version>([^<]+)</version>", Pattern.DOTALL)
        .matcher(Files.readString(Path.of("pom.xml")));
    assertTrue(m.find());
    Run r = run("--version");
    assertEquals(0, r.code());
    assertEquals("metakernels " + m.group(1), r.out().strip());
    assertEquals(r.out(), run("demo", "--version").out());
  }

  @Test
  void tinyRunRecordsItsSettingsAndCountsSteps() throws IOException {
    Path out = tmp.resolve("plots"), json = tmp.resolve("run.json");
    Run r = run("demo", "--dim", "2", "--context", "3", "--steps", "20", "--deep-steps", "4", "--batch", "8",
        "--eval-tasks", "16", "--depths", "0", "--seed", "5", "--out", out.toString(), "--json", json.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(Files.exists(out.resolve("icl-training-loss.png")) && Files.exists(out.resolve("icl-predictions.png")));
    String s = Files.readString(json);
    assertTrue(s.contains("\"dim\": 2, \"context\": 3, \"steps\": 20, \"deep_steps\": 4, \"batch\": 8, \"eval_tasks\": 16, "
        + "\"depths\": [], \"seed\": 5"), s);
    assertTrue(s.contains("\"version\": \"") && s.contains("\"device\": \"CPU\"") && s.contains("\"threads\": ")
        && s.contains("\"isa\": \""), s);
    // off a terminal: a plain line per tenth of the phase, counted in steps
    assertFalse(r.err().contains("\r"));
    List<String> lines = r.err().lines().toList();
    assertEquals(10, lines.size(), r.err());
    for (int i = 0; i < 10; i++)
      assertTrue(lines.get(i).matches("LSA, 1 layer +" + 2 * (i + 1) + "/20 steps \\(" + 10 * (i + 1) + "%, .*"), lines.get(i));
  }

  @Test
  void progressOffATerminalIsAboutTenLinesPerPhase() {
    StringWriter err = new StringWriter();
    try (StepProgress p = new StepProgress(new PrintWriter(err, true), false)) {
      for (int s = 1; s <= 2000; s++) p.step("LSA, 1 layer", s, 2000);
      for (int s = 1; s <= 3; s++) p.step("GD++, 2 steps", s, 3);
    }
    List<String> lines = err.toString().lines().toList();
    assertEquals(13, lines.size(), err.toString());
    assertTrue(lines.get(0).startsWith("LSA, 1 layer     200/2000 steps (10%"), lines.get(0));
    assertTrue(lines.get(9).startsWith("LSA, 1 layer     2000/2000 steps (100%"), lines.get(9));
    assertTrue(lines.get(12).startsWith("GD++, 2 steps    3/3 steps (100%"), lines.get(12));
  }

  @Test
  void esObjectiveOptionsAreCheckedBeforeAnyComputation() {
    assertFails(2, "metakernels recipe es-objective: --population must be even (antithetic pairs), got 7",
        run("recipe", "es-objective", "--population", "7"));
    assertFails(2, "metakernels recipe es-objective: --generations must be at least 1, got 0",
        run("recipe", "es-objective", "--generations", "0"));
    assertFails(2, "metakernels recipe es-objective: --sigma must be > 0, got -0.1",
        run("recipe", "es-objective", "--sigma", "-0.1"));
    assertFails(2, "metakernels recipe es-objective: --device must be cpu or cuda, got 'tpu'",
        run("recipe", "es-objective", "--device", "tpu"));
  }

  @Test
  void esObjectiveRunsFromTheCommandLineAndWritesItsJson() throws Exception {
    Path json = tmp.resolve("es.json");
    Run r = run("recipe", "es-objective", "--generations", "2", "--population", "4", "--inner-steps", "3",
        "--eval-runs", "2", "--out", tmp.resolve("es-out").toString(), "--json", json.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("held-out comparison") && r.out().contains("improvement (paired)"), r.out());
    String j = java.nio.file.Files.readString(json);
    assertTrue(j.contains("\"ce_val_loss\"") && j.contains("\"centre_loss\"") && j.contains("\"population\": 4"), j);
    assertTrue(java.nio.file.Files.size(tmp.resolve("es-out").resolve("es-objective-meta-training.png")) > 1000);
  }

  @Test
  void infoPrintsTheTensorCoreAttentionKernelChoice() {
    Run r = run("info");
    assertEquals(0, r.code(), r.err());
    String env = System.getenv("MK_ATTN_TC");
    String forward = "v2".equals(env) || "v2k32".equals(env) ? env : "v1";  // (default v1 until timed on a GPU)
    if ("sm90".equals(env) || "wgmma".equals(env)) forward = "v2";  // (the sm_80 line: sm90 is Hopper only)
    String backward = "v2".equals(System.getenv("MK_ATTN_TC_BWD")) ? "v2" : "v1";  // (default v1 until timed)
    String expectV2 = "D<=128 causal " + forward + "/" + backward;
    assertTrue(r.out().contains("tensor-core attention kernels (16-bit, CUDA): MK_ATTN_TC="), r.out());
    assertTrue(r.out().contains("sm_90: D<=64 full") && r.out().contains(expectV2), r.out());
    assertTrue(r.out().contains("D<=256 full v1/v1"), r.out());
  }

  @Test
  void infoPrintsTheTensorCoreKernelsChosenFromCode() {
    try {
      org.metakernels.ops.Attention.TensorCoreKernels.select(org.metakernels.ops.Attention.TensorCoreKernels.Forward.V2,
          org.metakernels.ops.Attention.TensorCoreKernels.Backward.V2,
          org.metakernels.ops.Attention.TensorCoreKernels.Second.F32);
      Run r = run("info");
      assertEquals(0, r.code(), r.err());
      assertTrue(r.out().contains("(override: forward v2, backward v2, second f32)"), r.out());
      assertTrue(r.out().contains("D<=128 causal v2/v2") && r.out().contains("D<=256 full v1/v1"), r.out());
      assertTrue(r.out().contains("(override: f32)"), r.out());
    } finally {
      org.metakernels.ops.Attention.TensorCoreKernels.reset();
    }
    Run r = run("info");
    assertFalse(r.out().contains("override"), r.out());
  }

  @Test
  void infoPrintsTheSimtAttentionKernelChoice() {
    Run r = run("info");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("SIMT attention kernels (F32/F64, CUDA): MK_ATTN_SIMT="), r.out());
    assertTrue(r.out().contains("linear attention forms (CUDA): MK_LINEAR_TC="), r.out());
    if (System.getenv("MK_LINEAR_TC") == null && System.getenv("MK_LINEAR_F32") == null) {
      assertTrue(r.out().contains("MK_LINEAR_TC=(unset), MK_LINEAR_F32=(unset); products: BF16/F16 and TF32 "
          + "chunked, F32 simt (chunked)"), r.out());
    }
    org.metakernels.ops.LinearAttention.CudaForms.select(org.metakernels.ops.LinearAttention.CudaForms.TensorCore.RECURRENT,
        org.metakernels.ops.LinearAttention.CudaForms.F32.DEFAULT);
    try {
      Run o = run("info");
      assertTrue(o.out().contains("(override: tensor cores recurrent, F32 env)"), o.out());
      assertTrue(o.out().contains("BF16/F16 and TF32 recurrent"), o.out());
    } finally {
      org.metakernels.ops.LinearAttention.CudaForms.reset();
    }
    if (System.getenv("MK_ATTN_SIMT") == null && System.getenv("MK_ATTN_SIMT_BWD") == null) {
      // the defaults: v2 only where an H100 timed it (F32 on 9.x, 64 < D <= 128), v1 elsewhere
      assertTrue(r.out().contains("F32 sm_80: D=64 v1/v1; D=128 v1/v1; D=256 v1/v1;"), r.out());
      assertTrue(r.out().contains("F32 sm_90: D=64 v1/v1; D=128 v2/v2; D=256 v1/v1;"), r.out());
      assertTrue(r.out().contains("F64 sm_90: D=64 v1/v1; D=128 v1/v1; D=256 v1/v1;"), r.out());
    }
    try {
      org.metakernels.ops.Attention.SimtKernels.select(org.metakernels.ops.Attention.SimtKernels.Version.V2,
          org.metakernels.ops.Attention.SimtKernels.Version.V1);
      r = run("info");
      assertEquals(0, r.code(), r.err());
      assertTrue(r.out().contains("(override: forward v2, backward v1)"), r.out());
      assertTrue(r.out().contains("F32 sm_80: D=64 v2/v1; D=128 v2/v1; D=256 v2/v1;"), r.out());
      assertTrue(r.out().contains("F32 sm_90: D=64 v2/v1; D=128 v2/v1; D=256 v2/v1;"), r.out());
    } finally {
      org.metakernels.ops.Attention.SimtKernels.reset();
    }
    r = run("info");
    assertFalse(r.out().contains("override"), r.out());
  }

  @Test
  void infoNamesTheSimtDoubleBackwardPassChoice() {
    Run r = run("info");
    assertEquals(0, r.code(), r.err());
    String env = System.getenv("MK_ATTN_SIMT_DD");
    String shown = "v1".equals(env) || "v2".equals(env) ? env : "(unset)";
    StringBuilder want = new StringBuilder("double-backward stats/query/key passes (MK_ATTN_SIMT_DD=" + shown + "):");
    for (int arch : new int[] {80, 90})
      for (String dtype : new String[] {"F32", "F64"})
        for (int d : new int[] {64, 128, 256}) {
          boolean applies = dtype.equals("F32") || d <= 128;
          // the default: v2 where an H100 timed it (F32 on 9.x, 64 < D <= 128)
          String dd = !applies ? "v1"
              : shown.equals("(unset)") ? (dtype.equals("F32") && arch == 90 && d == 128 ? "v2" : "v1") : shown;
          want.append(" ").append(dtype).append(" sm_").append(arch).append(" D=").append(d).append(" ").append(dd)
              .append(";");
        }
    assertTrue(r.out().contains(want.toString()), want + "\n" + r.out());
  }
}
