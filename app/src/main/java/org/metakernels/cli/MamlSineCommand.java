package org.metakernels.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.metakernels.recipes.MamlSine;
import org.metakernels.runtime.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code recipe maml-sine}: MAML on sinusoid regression against a pretrained baseline. */
@Command(name = "maml-sine", mixinStandardHelpOptions = true, versionProvider = Version.class,
    description = {"MAML on sinusoid regression (Finn et al. 2017): a 1-40-40-1 ReLU net meta-trained with second-order"
        + " and first-order MAML (one inner SGD step, meta-gradient by Unroll) against the same net pretrained on all"
        + " tasks; held-out loss after 0 to 10 adaptation steps, for K = 5 and 10 shots."})
final class MamlSineCommand implements Callable<Integer> {
  @Option(names = "--shots", defaultValue = "5,10", split = ",", description = "K values (default: ${DEFAULT-VALUE})")
  int[] shots;

  @Option(names = "--iterations", defaultValue = "2000",
      description = "meta-iterations per model (default: ${DEFAULT-VALUE})")
  int iterations;

  @Option(
      names = "--meta-batch", defaultValue = "10", description = "tasks per meta-iteration (default: ${DEFAULT-VALUE})")
  int metaBatch;

  @Option(names = "--inner-lr", defaultValue = "0.01", description = "inner SGD step alpha (default: ${DEFAULT-VALUE})")
  double innerLr;

  @Option(names = "--meta-lr", defaultValue = "0.001", description = "Adam step size (default: ${DEFAULT-VALUE})")
  double metaLr;

  @Option(names = "--eval-tasks", defaultValue = "200", description = "held-out tasks (default: ${DEFAULT-VALUE})")
  int evalTasks;

  @Mixin RunOptions run;

  @Spec CommandSpec spec;

  @Override
  public Integer call() throws IOException {
    Locale.setDefault(Locale.ROOT);
    for (int k : shots) Checks.between(spec, "--shots", k, 1, 1000);
    Checks.atLeast(spec, "--iterations", iterations, 1);
    Checks.atLeast(spec, "--meta-batch", metaBatch, 1);
    Checks.atLeast(spec, "--eval-tasks", evalTasks, 1);
    Checks.positive(spec, "--inner-lr", innerLr);
    Checks.positive(spec, "--meta-lr", metaLr);
    Backend backend = run.checkOutputsAndStart();
    PrintWriter o = spec.commandLine().getOut();
    o.println("metakernels recipe maml-sine: MAML on sinusoid regression (Finn et al. 2017)");
    o.printf("backend: cpu, %s kernels, %d threads; F64%n", backend.cpuIsa(), backend.cpuThreads());
    o.printf("tasks: A sin(x - phi), A ~ U[0.1, 5], phi ~ U[0, pi], x ~ U[-5, 5]; net 1-40-40-1 ReLU%n");
    o.printf("training: %d meta-iterations x %d tasks, inner SGD alpha = %s (1 step), Adam %s; eval on %d tasks x 100"
            + " points%n%n",
        iterations, metaBatch, innerLr, metaLr, evalTasks);
    o.flush();
    long t0 = System.nanoTime();
    List<MamlSine.MethodResult> all = new ArrayList<>();
    boolean terminal = ((Main) spec.root().userObject()).terminal;
    try (StepProgress progress = new StepProgress(spec.commandLine().getErr(), terminal)) {
      for (int k : shots) {
        MamlSine.Config c = new MamlSine.Config(k, iterations, metaBatch, 10, innerLr, metaLr, evalTasks, 10, run.seed);
        all.addAll(MamlSine.run(c, Arrays.asList(MamlSine.METHODS), progress::step));
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    o.println("   K  method       loss@0   loss@1 (+-se)      loss@10 (+-se)     train s");
    for (MamlSine.MethodResult r : all)
      o.printf("  %2d  %-10s  %7.3f   %7.3f (%.3f)   %7.3f (%.3f)   %6.1f%n", r.shots(), r.method(),
          r.lossAfterSteps()[0], r.lossAfterSteps()[1], r.stdErrAfterSteps()[1], r.lossAfterSteps()[10],
          r.stdErrAfterSteps()[10], r.seconds());
    Path png = run.plot("maml-sine-adaptation.png");
    plot(all, png);
    o.println();
    o.println("plot:  " + png.toAbsolutePath());
    run.writeJson(o, json(all, backend, seconds));
    o.printf("time:  %.1f s%n", seconds);
    return 0;
  }

  private static void plot(List<MamlSine.MethodResult> all, Path file) throws IOException {
    XYChart chart = new XYChartBuilder()
                        .width(900)
                        .height(500)
                        .title("Sinusoid regression: held-out loss vs adaptation steps")
                        .xAxisTitle("SGD steps on K points")
                        .yAxisTitle("query MSE")
                        .build();
    for (MamlSine.MethodResult r : all) {
      double[] x = new double[r.lossAfterSteps().length];
      for (int i = 0; i < x.length; i++) x[i] = i;
      chart.addSeries(r.method() + " K=" + r.shots(), x, r.lossAfterSteps());
    }
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  private String json(List<MamlSine.MethodResult> all, Backend backend, double seconds) {
    StringBuilder sb = new StringBuilder("{\n");
    sb.append(
        String.format("  \"settings\": {\"version\": \"%s\", \"iterations\": %d, \"meta_batch\": %d, \"inner_lr\": %s,"
                + " \"meta_lr\": %s, \"eval_tasks\": %d, \"seed\": %d, \"threads\": %d, \"isa\": \"%s\"},%n",
            Version.get(), iterations, metaBatch, innerLr, metaLr, evalTasks, run.seed, backend.cpuThreads(),
            backend.cpuIsa()));
    sb.append("  \"results\": [");
    for (int i = 0; i < all.size(); i++) {
      MamlSine.MethodResult r = all.get(i);
      sb.append(i == 0 ? "\n" : ",\n")
          .append(String.format(
              "    {\"method\": \"%s\", \"shots\": %d, \"loss\": %s, \"stderr\": %s, \"train_loss\": %.6g, \"seconds\": %.2f}",
              r.method(), r.shots(), arr(r.lossAfterSteps()), arr(r.stdErrAfterSteps()), r.finalTrainingLoss(),
              r.seconds()));
    }
    sb.append("\n  ],\n");
    sb.append(String.format("  \"seconds\": %.2f%n}%n", seconds));
    return sb.toString();
  }

  static String arr(double[] v) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < v.length; i++) sb.append(i == 0 ? "" : ", ").append(String.format("%.6g", v[i]));
    return sb.append(']').toString();
  }
}
