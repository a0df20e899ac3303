package org.metakernels.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.metakernels.recipes.Reweight;
import org.metakernels.runtime.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code recipe reweight}: learned per-example weights by meta-gradient against uniform weights. */
@Command(name = "reweight", mixinStandardHelpOptions = true, versionProvider = Version.class,
    description = {"Learning to reweight examples (Ren et al. 2018): per-example weights from the meta-gradient of a"
        + " clean validation loss after K inner steps (Unroll), on two Gaussian classes with 40 %% of the training labels"
        + " flipped; against uniform weights and against training on the clean examples only."})
final class ReweightCommand implements Callable<Integer> {
  @Option(names = "--train", defaultValue = "400", description = "training points (default: ${DEFAULT-VALUE})")
  int train;

  @Option(
      names = "--validation", defaultValue = "20", description = "clean validation points (default: ${DEFAULT-VALUE})")
  int validation;

  @Option(
      names = "--steps", defaultValue = "600", description = "full-batch training steps (default: ${DEFAULT-VALUE})")
  int steps;

  @Option(names = "--lr", defaultValue = "0.1",
      description = "the model's SGD step (momentum 0.9) (default: ${DEFAULT-VALUE})")
  double lr;

  @Option(names = "--inner-steps", defaultValue = "1",
      description = "K, inner look-ahead steps (default: ${DEFAULT-VALUE})")
  int innerSteps;

  @Option(
      names = "--inner-lr", defaultValue = "0.1", description = "the look-ahead's SGD step (default: ${DEFAULT-VALUE})")
  double innerLr;

  @Mixin RunOptions run;

  @Spec CommandSpec spec;

  @Override
  public Integer call() throws IOException {
    Locale.setDefault(Locale.ROOT);
    Checks.atLeast(spec, "--train", train, 10);
    Checks.atLeast(spec, "--validation", validation, 2);
    Checks.atLeast(spec, "--steps", steps, 1);
    Checks.atLeast(spec, "--inner-steps", innerSteps, 1);
    Checks.positive(spec, "--lr", lr);
    Checks.positive(spec, "--inner-lr", innerLr);
    Backend backend = run.checkOutputsAndStart();
    PrintWriter o = spec.commandLine().getOut();
    o.println("metakernels recipe reweight: learning to reweight examples (Ren et al. 2018)");
    o.printf("backend: cpu, %s kernels, %d threads; F64, MLP 2-16-2 tanh%n", backend.cpuIsa(), backend.cpuThreads());
    o.printf("data: 2 Gaussian classes, %d training points with 40 %% of labels flipped (60 %% of class 0, 20 %% of"
            + " class 1), %d clean validation points, 4000 clean test points%n",
        train, validation);
    o.printf("training: %d full-batch SGD steps (lr %s, momentum 0.9); look-ahead K = %d (inner lr %s)%n%n", steps, lr,
        innerSteps, innerLr);
    o.flush();
    Reweight.Config c = new Reweight.Config(train, validation, steps, lr, innerSteps, innerLr, run.seed);
    Reweight.Result r;
    boolean terminal = ((Main) spec.root().userObject()).terminal;
    try (StepProgress progress = new StepProgress(spec.commandLine().getErr(), terminal)) {
      r = Reweight.run(c, progress::step);
    }
    o.printf("  clean test accuracy, reweighted         %.4f%n", r.reweightedAccuracy());
    o.printf("  clean test accuracy, uniform weights    %.4f%n", r.uniformAccuracy());
    o.printf("  clean test accuracy, clean labels only  %.4f (oracle)%n", r.cleanOnlyAccuracy());
    o.printf("  mean learned weight, clean / flipped    %.5f / %.5f (uniform: %.5f)%n", r.meanWeightClean(),
        r.meanWeightFlipped(), 1.0 / train);
    o.printf("  mean weight, flips the Bayes rule contradicts  %.5f%n", r.meanWeightContradicted());
    o.printf("  weight ~0 (< 1 %% of uniform): flipped / clean  %.1f %% / %.1f %%%n", 100 * r.flippedZeroShare(),
        100 * r.cleanZeroShare());
    Path png = run.plot("reweight-weights.png");
    plot(r, png);
    o.println();
    o.println("plot:  " + png.toAbsolutePath());
    run.writeJson(o, json(r, backend));
    o.printf("time:  %.1f s%n", r.seconds());
    return 0;
  }

  private static void plot(Reweight.Result r, Path file) throws IOException {
    List<Double> cx = new ArrayList<>(), cy = new ArrayList<>(), fx = new ArrayList<>(), fy = new ArrayList<>();
    double[] w = r.weights();
    for (int i = 0; i < w.length; i++) {
      if (r.flipped()[i]) {
        fx.add(r.firstCoordinate()[i]);
        fy.add(w[i] * w.length);
      } else {
        cx.add(r.firstCoordinate()[i]);
        cy.add(w[i] * w.length);
      }
    }
    XYChart chart = new XYChartBuilder()
                        .width(900)
                        .height(500)
                        .title("Learned example weights (x N; 1 = uniform), averaged over training")
                        .xAxisTitle("x0 of the training example (class 0 left of 0, class 1 right)")
                        .yAxisTitle("weight x N")
                        .build();
    chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
    chart.getStyler().setMarkerSize(5);
    chart.addSeries("clean labels", cx, cy);
    chart.addSeries("flipped labels", fx, fy);
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  private String json(Reweight.Result r, Backend backend) {
    return String.format(
        "{%n  \"settings\": {\"version\": \"%s\", \"train\": %d, \"validation\": %d, \"steps\": %d,"
            + " \"lr\": %s, \"inner_steps\": %d, \"inner_lr\": %s, \"seed\": %d, \"threads\": %d, \"isa\": \"%s\"},%n"
            + "  \"flipped_share\": %.4f,%n  \"reweighted_accuracy\": %.6f,%n  \"uniform_accuracy\": %.6f,%n"
            + "  \"clean_only_accuracy\": %.6f,%n  \"mean_weight_clean\": %.6g,%n  \"mean_weight_flipped\": %.6g,%n"
            + "  \"flipped_zero_share\": %.6f,%n  \"clean_zero_share\": %.6f,%n  \"mean_weight_contradicted\": %.6g,%n"
            + "  \"seconds\": %.2f%n}%n",
        Version.get(), train, validation, steps, lr, innerSteps, innerLr, run.seed, backend.cpuThreads(), backend.cpuIsa(),
        r.flippedShare(), r.reweightedAccuracy(), r.uniformAccuracy(), r.cleanOnlyAccuracy(), r.meanWeightClean(),
        r.meanWeightFlipped(), r.flippedZeroShare(), r.cleanZeroShare(), r.meanWeightContradicted(), r.seconds());
  }
}
