package org.metakernels.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;
import org.metakernels.recipes.EsObjective;
import org.metakernels.runtime.Backend;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code recipe es-objective}: a temporally-aware learned training objective for a classifier,
 * meta-trained by evolution strategies, against the plain cross-entropy it starts from.
 */
@Command(name = "es-objective", mixinStandardHelpOptions = true, versionProvider = Version.class,
    description = {"Meta-train a learned loss (an MLP over z_y, logsumexp, entropy and t/T, starting as cross-entropy) "
            + "for a classifier's inner SGD loop by antithetic evolution strategies, and compare it with cross-entropy on "
            + "fresh inits (after Jackson et al., temporally-aware learned objectives).",
        "Settings (java -D...): metakernels.threads=N, metakernels.isa=auto|avx2|avx512."})
final class EsObjectiveCommand implements Callable<Integer> {
  @Option(names = "--generations", defaultValue = "40",
      description = "ES generations, at least 1 (default: ${DEFAULT-VALUE})")
  int generations;

  @Option(names = "--population", defaultValue = "16",
      description = "ES members per generation, even, 2 to 4096 (default: ${DEFAULT-VALUE})")
  int population;

  @Option(names = "--sigma", defaultValue = "0.1", description = "ES noise scale, > 0 (default: ${DEFAULT-VALUE})")
  double sigma;

  @Option(names = "--meta-lr", defaultValue = "0.05", description = "ES step size, > 0 (default: ${DEFAULT-VALUE})")
  double metaLr;

  @Option(names = "--inner-steps", defaultValue = "20",
      description = "SGD steps T of the classifier, at least 1 (default: ${DEFAULT-VALUE})")
  int innerSteps;

  @Option(names = "--inner-lr", defaultValue = "0.1",
      description = "the classifier's SGD step size, > 0 (default: ${DEFAULT-VALUE})")
  double innerLr;

  @Option(names = "--eval-runs", defaultValue = "24",
      description = "fresh inits in the final comparison, at least 2 (default: ${DEFAULT-VALUE})")
  int evalRuns;

  @Mixin RunOptions run;

  @Mixin RunOptions.DeviceOption device;

  @Spec CommandSpec spec;

  @Override
  public Integer call() throws IOException {
    Locale.setDefault(Locale.ROOT);
    Device dev = device.parse();
    Checks.atLeast(spec, "--generations", generations, 1);
    Checks.between(spec, "--population", population, 2, 4096);
    if (population % 2 != 0)
      throw Checks.usage(spec, "--population must be even (antithetic pairs), got " + population);
    Checks.atLeast(spec, "--inner-steps", innerSteps, 1);
    Checks.atLeast(spec, "--eval-runs", evalRuns, 2);
    if (!(sigma > 0) || !Double.isFinite(sigma)) throw Checks.usage(spec, "--sigma must be > 0, got " + sigma);
    if (!(metaLr > 0) || !Double.isFinite(metaLr)) throw Checks.usage(spec, "--meta-lr must be > 0, got " + metaLr);
    if (!(innerLr > 0) || !Double.isFinite(innerLr)) throw Checks.usage(spec, "--inner-lr must be > 0, got " + innerLr);
    Backend backend = run.checkOutputsAndStart();
    device.require(backend, dev);
    EsObjective.Config c = EsObjective.Config.defaults()
                               .withGenerations(generations)
                               .withPopulation(population)
                               .withEs(sigma, metaLr)
                               .withInner(innerSteps, innerLr)
                               .withEval(evalRuns, run.seed)
                               .withDevice(dev);

    PrintWriter o = spec.commandLine().getOut();
    o.println("metakernels recipe es-objective: a learned, temporally-aware loss meta-trained by evolution strategies");
    o.printf("backend: %s, %s kernels, %d threads%n", dev, backend.cpuIsa(), backend.cpuThreads());
    o.printf("task: %d-class labels of a random teacher MLP on x ~ N(0, I_%d); %d train, %d validation samples%n",
        c.classes(), c.dim(), c.trainSize(), c.valSize());
    o.printf("inner loop: MLP classifier %d-%d-%d, %d SGD steps (lr %s) on minibatches of %d%n", c.dim(), c.hidden(),
        c.classes(), c.innerSteps(), c.innerLr(), c.batch());
    o.printf(
        "learned loss: CE + MLP(z_y, lse, entropy, t/T) with %d parameters, starting at CE%n", c.objectiveParameters());
    o.printf("ES: %d generations x %d antithetic members, sigma %s, lr %s, centred ranks; fitness = -validation CE%n%n",
        c.generations(), c.population(), c.sigma(), c.metaLr());
    o.flush();

    EsObjective.Result r;
    boolean terminal = ((Main) spec.root().userObject()).terminal;
    try (StepProgress progress = new StepProgress(spec.commandLine().getErr(), terminal)) {
      r = EsObjective.run(c, progress);
    }
    int g = r.centreLoss().length;
    o.println();
    o.println("== meta-training (validation CE after T steps, this generation's init) ==");
    o.printf("  generation 1:    ES centre %.4f, cross-entropy %.4f%n", r.centreLoss()[0], r.baselineLoss()[0]);
    o.printf(
        "  generation %d: ES centre %.4f, cross-entropy %.4f%n", g, r.centreLoss()[g - 1], r.baselineLoss()[g - 1]);
    o.println();
    o.printf("== held-out comparison: %d fresh inits, the same data order for both ==%n", c.evalRuns());
    o.printf("  validation CE, cross-entropy objective   %.4f   (accuracy %.3f)%n", r.ceLoss(), r.ceAccuracy());
    o.printf(
        "  validation CE, learned objective         %.4f   (accuracy %.3f)%n", r.learnedLoss(), r.learnedAccuracy());
    o.printf("  improvement (paired)                     %.4f +- %.4f (s.e.), better on %d of %d inits%n",
        r.improvement(), r.improvementSe(), r.wins(), c.evalRuns());
    o.printf("  cross-entropy at a tuned step %.4g        %.4f   (accuracy %.3f; step from %s on %d meta-training "
            + "tasks)%n",
        r.tunedLr(), r.tunedCeLoss(), r.tunedCeAccuracy(), java.util.Arrays.toString(r.lrGrid()),
        Math.min(EsObjective.TUNING_TASKS, c.generations()));
    o.printf("  improvement over it (paired)             %.4f +- %.4f (s.e.), better on %d of %d inits%n",
        r.tunedImprovement(), r.tunedImprovementSe(), r.tunedWins(), c.evalRuns());
    o.flush();

    Path metaPng = run.plot("es-objective-meta-training.png");
    Path innerPng = run.plot("es-objective-inner-curves.png");
    plotMeta(r, metaPng);
    plotInner(r, innerPng);
    o.println();
    o.println("plots: " + metaPng.toAbsolutePath() + ", " + innerPng.toAbsolutePath());
    run.writeJson(o, json(r, c, backend));
    o.printf("time:  %.1f s%n", r.seconds());
    return 0;
  }

  private static double[] range(int n, int from) {
    double[] x = new double[n];
    for (int i = 0; i < n; i++) x[i] = i + from;
    return x;
  }

  private static void plotMeta(EsObjective.Result r, Path file) throws IOException {
    int n = r.centreLoss().length;
    XYChart chart = new XYChartBuilder()
                        .width(900)
                        .height(500)
                        .title("ES meta-training of the learned objective")
                        .xAxisTitle("generation")
                        .yAxisTitle("validation CE after T inner steps")
                        .build();
    chart.getStyler().setMarkerSize(0);
    chart.addSeries("learned objective (ES centre)", range(n, 1), r.centreLoss()).setMarker(SeriesMarkers.NONE);
    chart.addSeries("cross-entropy (same init)", range(n, 1), r.baselineLoss()).setMarker(SeriesMarkers.NONE);
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  private static void plotInner(EsObjective.Result r, Path file) throws IOException {
    int n = r.ceCurve().length;
    XYChart chart = new XYChartBuilder()
                        .width(900)
                        .height(500)
                        .title("Classifier training, mean over fresh inits")
                        .xAxisTitle("inner SGD step")
                        .yAxisTitle("validation CE")
                        .build();
    chart.getStyler().setMarkerSize(0);
    chart.addSeries("learned objective", range(n, 0), r.learnedCurve()).setMarker(SeriesMarkers.NONE);
    chart.addSeries("cross-entropy", range(n, 0), r.ceCurve()).setMarker(SeriesMarkers.NONE);
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  private static String array(double[] v) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < v.length; i++) sb.append(i == 0 ? "" : ", ").append(String.format("%.6g", v[i]));
    return sb.append(']').toString();
  }

  private static String json(EsObjective.Result r, EsObjective.Config c, Backend backend) {
    StringBuilder sb = new StringBuilder("{\n");
    sb.append(String.format("  \"settings\": {\"version\": \"%s\", \"generations\": %d, \"population\": %d, "
            + "\"sigma\": %s, \"meta_lr\": %s, \"inner_steps\": %d, \"inner_lr\": %s, \"batch\": %d, \"dim\": %d, "
            + "\"classes\": %d, \"hidden\": %d, \"loss_hidden\": %d, \"eval_runs\": %d, \"seed\": %d, \"device\": \"%s\", "
            + "\"dtype\": \"%s\", \"threads\": %d, \"isa\": \"%s\"},%n",
        Version.get(), c.generations(), c.population(), c.sigma(), c.metaLr(), c.innerSteps(), c.innerLr(), c.batch(),
        c.dim(), c.classes(), c.hidden(), c.lossHidden(), c.evalRuns(), c.seed(), c.device(), c.dtype(),
        backend.cpuThreads(), backend.cpuIsa()));
    sb.append(String.format("  \"ce_val_loss\": %.8g,%n", r.ceLoss()));
    sb.append(String.format("  \"learned_val_loss\": %.8g,%n", r.learnedLoss()));
    sb.append(String.format("  \"improvement\": %.8g,%n", r.improvement()));
    sb.append(String.format("  \"improvement_se\": %.8g,%n", r.improvementSe()));
    sb.append(String.format("  \"wins\": %d,%n", r.wins()));
    sb.append(String.format("  \"ce_accuracy\": %.8g,%n", r.ceAccuracy()));
    sb.append(String.format("  \"learned_accuracy\": %.8g,%n", r.learnedAccuracy()));
    sb.append(String.format("  \"tuned_ce\": {\"tasks\": %d, \"lr_grid\": %s, \"grid_loss\": %s, \"lr\": %s, "
            + "\"val_loss\": %.8g, \"accuracy\": %.8g, \"improvement\": %.8g, \"improvement_se\": %.8g, \"wins\": %d},%n",
        Math.min(EsObjective.TUNING_TASKS, c.generations()), array(r.lrGrid()), array(r.lrGridLoss()), r.tunedLr(),
        r.tunedCeLoss(), r.tunedCeAccuracy(), r.tunedImprovement(), r.tunedImprovementSe(), r.tunedWins()));
    sb.append("  \"centre_loss\": ").append(array(r.centreLoss())).append(",\n");
    sb.append("  \"baseline_loss\": ").append(array(r.baselineLoss())).append(",\n");
    sb.append("  \"ce_curve\": ").append(array(r.ceCurve())).append(",\n");
    sb.append("  \"learned_curve\": ").append(array(r.learnedCurve())).append(",\n");
    sb.append("  \"phi\": ").append(array(r.phi())).append(",\n");
    sb.append(String.format("  \"seconds\": %.3f%n}%n", r.seconds()));
    return sb.toString();
  }
}
