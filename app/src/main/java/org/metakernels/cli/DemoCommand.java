package org.metakernels.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;
import org.metakernels.recipes.InContextDemo;
import org.metakernels.recipes.InContextLearning.Config;
import org.metakernels.runtime.Backend;
import org.metakernels.runtime.Codes;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The main job: "Transformers learn in-context by gradient descent" (von Oswald et al., 2022)
 * reproduced with the fused linear-attention kernels.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, versionProvider = Version.class,
    description = {"Train linear self-attention on in-context linear regression and compare it with gradient descent "
        + "(von Oswald et al. 2022): one layer vs one GD step with the best step size, K layers vs K GD steps and GD++.",
        "Settings (java -D...): metakernels.threads=N, metakernels.isa=auto|avx2|avx512."})
final class DemoCommand implements Callable<Integer> {
  /** The largest d: the LSA's head dim d + 1 stays within the linear-attention kernels' limit. */
  static final int MAX_DIM = Codes.LINEAR_ATTENTION_MAX_HEAD_DIM - 1;

  @Option(names = "--dim", defaultValue = "10", description = "input dimension d, 1 to " + MAX_DIM + " (default: ${DEFAULT-VALUE})")
  int dim;

  @Option(names = "--context", defaultValue = "10", description = "context pairs N per task, at least 1 (default: ${DEFAULT-VALUE})")
  int context;

  @Option(names = "--steps", defaultValue = "2000", description = "Adam steps per LSA model, at least 1 (default: ${DEFAULT-VALUE})")
  int steps;

  @Option(names = "--deep-steps", defaultValue = "4000",
      description = "Adam steps for each deeper LSA stack, at least 1 (default: ${DEFAULT-VALUE})")
  int deepSteps;

  @Option(names = "--batch", defaultValue = "1024", description = "fresh tasks per step, at least 1 (default: ${DEFAULT-VALUE})")
  int batch;

  @Option(names = "--eval-tasks", defaultValue = "10000", description = "held-out tasks, at least 1 (default: ${DEFAULT-VALUE})")
  int evalTasks;

  @Option(names = "--depths", defaultValue = "2,3", split = ",",
      description = "extra LSA depths K >= 2 compared with K GD steps and GD++ (default: ${DEFAULT-VALUE}; 0 to skip)")
  int[] depths;

  @Mixin RunOptions run;

  @Mixin RunOptions.DeviceOption device;

  @Spec
  CommandSpec spec;

  @Override
  public Integer call() throws IOException {
    Locale.setDefault(Locale.ROOT);
    // every check before any computation: options and outputs (usage errors), then the backend
    Device dev = device.parse();
    Checks.between(spec, "--dim", dim, 1, MAX_DIM);
    Checks.atLeast(spec, "--context", context, 1);
    Checks.atLeast(spec, "--steps", steps, 1);
    Checks.atLeast(spec, "--deep-steps", deepSteps, 1);
    Checks.atLeast(spec, "--batch", batch, 1);
    Checks.atLeast(spec, "--eval-tasks", evalTasks, 1);
    for (int k : depths)
      if (k != 0 && k < 2)
        throw Checks.usage(spec, "--depths: each K must be at least 2 (one layer is always compared) or 0 to skip, got " + k);
    int[] ks = Arrays.stream(depths).filter(k -> k != 0).distinct().toArray();
    Backend backend = run.checkOutputsAndStart();
    device.require(backend, dev);
    Config c = new Config(dim, context, steps, batch, 1e-3, 0.05, evalTasks, run.seed, dev, DType.F32);

    PrintWriter o = spec.commandLine().getOut();
    o.println("metakernels demo: transformers learn in-context by gradient descent (von Oswald et al. 2022)");
    o.printf("backend: %s, %s kernels, %d threads%n", dev, backend.cpuIsa(), backend.cpuThreads());
    o.printf("tasks: y = w.x, x ~ U(-1/2, 1/2)^%d, w ~ N(0, I), %d context pairs + 1 query, fresh tasks every step%n", dim, context);
    o.printf("model: linear self-attention on tokens [x_i, y_i] / [x_q, 0], keys and values from the context, %d Adam steps x %d tasks%n",
        steps, batch);
    if (ks.length > 0) o.printf("deeper stacks: K = %s, %d Adam steps each%n", Arrays.toString(ks), deepSteps);
    o.printf("evaluation: %d held-out tasks%n%n", evalTasks);
    o.flush();

    InContextDemo.Result r;
    boolean terminal = ((Main) spec.root().userObject()).terminal;
    try (StepProgress progress = new StepProgress(spec.commandLine().getErr(), terminal)) {
      r = InContextDemo.run(c, ks, deepSteps, progress);
    }

    o.println();
    o.println("== one LSA layer vs one step of gradient descent from w = 0 ==");
    o.printf("  GD step size eta* (scan on held-out tasks)   %.5f%n", r.gdEta());
    o.printf("  loss of predicting 0 (reference)             %.5f%n", r.zeroLoss());
    o.printf("  loss, trained LSA                            %.5f%n", r.lsaLoss());
    o.printf("  loss, GD(eta*)                               %.5f%n", r.gdLoss());
    o.printf("  relative difference (LSA - GD) / GD          %+.2f%%%n", 100 * r.relativeDifference());
    o.printf("  cosine of predictions                        %.5f%n", r.predCosine());
    o.printf("  cosine of sensitivities dy/dx_q (per task)   %.5f%n", r.sensitivityCosine());
    o.printf("  L2 distance of predictions (RMS)             %.5f%n", r.predL2());
    o.println("  trained weights vs the GD construction:");
    o.printf("    W_K^T W_Q, x block, vs identity (cosine)    %.4f%n", r.identityCosine());
    o.printf("    P W_V, y row: share of the y -> y entry     %.4f%n", r.yPickShare());
    if (!r.depths().isEmpty()) {
      o.println();
      o.println("== K layers: LSA vs K steps of GD and GD++ (held-out loss) ==");
      o.println("   K   LSA loss    GD loss (eta*)        GD++ loss   cos(LSA, GD++)  cos(LSA, GD)");
      for (InContextDemo.Depth d : r.depths())
        o.printf("  %2d   %.5f    %.5f (%.4f)     %.5f      %.5f         %.5f%n", d.layers(), d.lsaLoss(), d.gdLoss(),
            d.gdEta(), d.gdppLoss(), d.lsaVsGdppCosine(), d.lsaVsGdCosine());
      for (InContextDemo.Depth d : r.depths())
        if (d.lsaLoss() > 1.1 * d.gdppLoss())
          o.printf("  note: the %d-layer LSA is still %.0f%% above GD++ after %d steps; more --deep-steps bring it closer%n",
              d.layers(), 100 * (d.lsaLoss() / d.gdppLoss() - 1), deepSteps);
    }
    o.flush();

    Path lossPng = run.plot("icl-training-loss.png");
    Path predPng = run.plot("icl-predictions.png");
    plotLoss(r, lossPng);
    plotPredictions(r, predPng);
    o.println();
    o.println("plots: " + lossPng.toAbsolutePath() + ", " + predPng.toAbsolutePath());
    run.writeJson(o, json(r, settings(c, ks, backend)));
    o.printf("time:  %.1f s%n", r.seconds());
    return 0;
  }

  /** The run's settings as JSON members, for the output file: what it takes to run it again. */
  private String settings(Config c, int[] ks, Backend backend) {
    return String.format("\"version\": \"%s\", \"dim\": %d, \"context\": %d, \"steps\": %d, \"deep_steps\": %d, "
        + "\"batch\": %d, \"eval_tasks\": %d, \"depths\": %s, \"seed\": %d, \"lr\": %s, \"init_std\": %s, "
        + "\"device\": \"%s\", \"dtype\": \"%s\", \"threads\": %d, \"isa\": \"%s\"",
        Version.get(), c.dim(), c.context(), c.steps(), deepSteps, c.batch(), c.evalTasks(), Arrays.toString(ks), c.seed(),
        c.lr(), c.initStd(), c.device(), c.dtype(), backend.cpuThreads(), backend.cpuIsa());
  }

  private static void plotLoss(InContextDemo.Result r, Path file) throws IOException {
    double[] raw = r.lossCurve();
    int n = raw.length;
    double[] x = new double[n], smooth = new double[n];
    double acc = 0;
    int w = Math.max(1, n / 100);
    for (int i = 0; i < n; i++) {
      x[i] = i;
      acc += raw[i];
      if (i >= w) acc -= raw[i - w];
      smooth[i] = acc / Math.min(i + 1, w);
    }
    XYChart chart = new XYChartBuilder().width(900).height(500).title("Training loss of one LSA layer")
        .xAxisTitle("Adam step").yAxisTitle("1/2 (y_hat - y)^2").build();
    chart.getStyler().setMarkerSize(0);
    chart.addSeries("LSA (batch loss)", x, raw).setMarker(SeriesMarkers.NONE);
    chart.addSeries("LSA (moving average)", x, smooth).setMarker(SeriesMarkers.NONE);
    chart.addSeries("GD(eta*), held-out", new double[] {0, n - 1}, new double[] {r.gdLoss(), r.gdLoss()})
        .setMarker(SeriesMarkers.NONE);
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  private static void plotPredictions(InContextDemo.Result r, Path file) throws IOException {
    XYChart chart = new XYChartBuilder().width(600).height(600).title("Held-out predictions: LSA vs GD(eta*)")
        .xAxisTitle("GD(eta*) prediction").yAxisTitle("trained LSA prediction").build();
    chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
    chart.getStyler().setMarkerSize(4);
    chart.addSeries("tasks", r.gdSample(), r.lsaSample());
    double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
    for (double v : r.gdSample()) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    XYSeries diag = chart.addSeries("y = x", new double[] {lo, hi}, new double[] {lo, hi});
    diag.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
    diag.setMarker(SeriesMarkers.NONE);
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  private static String json(InContextDemo.Result r, String settings) {
    StringBuilder sb = new StringBuilder("{\n");
    sb.append("  \"settings\": {").append(settings).append("},\n");
    sb.append(String.format("  \"lsa_loss\": %.8g,%n", r.lsaLoss()));
    sb.append(String.format("  \"gd_loss\": %.8g,%n", r.gdLoss()));
    sb.append(String.format("  \"gd_eta\": %.8g,%n", r.gdEta()));
    sb.append(String.format("  \"pred_cosine\": %.8g,%n", r.predCosine()));
    sb.append(String.format("  \"sensitivity_cosine\": %.8g,%n", r.sensitivityCosine()));
    sb.append(String.format("  \"pred_l2\": %.8g,%n", r.predL2()));
    sb.append(String.format("  \"relative_difference\": %.8g,%n", r.relativeDifference()));
    sb.append(String.format("  \"identity_cosine\": %.8g,%n", r.identityCosine()));
    sb.append(String.format("  \"y_pick_share\": %.8g,%n", r.yPickShare()));
    sb.append("  \"depths\": [");
    for (int i = 0; i < r.depths().size(); i++) {
      InContextDemo.Depth d = r.depths().get(i);
      sb.append(i == 0 ? "\n" : ",\n").append(String.format(
          "    {\"layers\": %d, \"lsa_loss\": %.8g, \"gd_loss\": %.8g, \"gd_eta\": %.8g, \"gdpp_loss\": %.8g, \"cos_lsa_gdpp\": %.8g}",
          d.layers(), d.lsaLoss(), d.gdLoss(), d.gdEta(), d.gdppLoss(), d.lsaVsGdppCosine()));
    }
    sb.append(r.depths().isEmpty() ? "],\n" : "\n  ],\n");
    sb.append(String.format("  \"steps\": %d,%n", r.steps()));
    sb.append(String.format("  \"seconds\": %.3f%n}%n", r.seconds()));
    return sb.toString();
  }
}
