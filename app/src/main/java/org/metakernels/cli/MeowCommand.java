package org.metakernels.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.metakernels.recipes.Meow;
import org.metakernels.runtime.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code recipe meow}: heterogeneous graph contrastive learning with meta-path contexts and
 * weighted negatives (MEOW, AdaMEOW) on ACM (bundled) or any MEOW/HeCo data folder.
 */
@Command(name = "meow", mixinStandardHelpOptions = true, versionProvider = Version.class,
    description = "MEOW / AdaMEOW heterogeneous graph contrastive learning (Yu et al. 2023): meta-path GCN views, "
        + "weighted-negative InfoNCE, logistic-regression Macro/Micro-F1 at 20/40/60 labels per class.")
final class MeowCommand implements Callable<Integer> {
  @Option(names = "--data",
      description = "a MEOW/HeCo data folder (acm, dblp, imdb or aminer layout); default: the bundled ACM")
  Path data;

  @Option(names = "--epochs", defaultValue = "300",
      description = "contrastive training steps per run (default: ${DEFAULT-VALUE})")
  int epochs;

  @Option(names = "--seeds", defaultValue = "2",
      description = "runs per method, seeds seed..seed+N-1 (default: ${DEFAULT-VALUE})")
  int seeds;

  @Mixin RunOptions run;

  @Option(names = "--hidden", defaultValue = "64", description = "embedding width (default: ${DEFAULT-VALUE})")
  int hidden;

  @Option(
      names = "--batch", defaultValue = "1024", description = "nodes per contrastive batch (default: ${DEFAULT-VALUE})")
  int batch;

  @Option(names = "--lr", defaultValue = "0.005", description = "Adam step size (default: ${DEFAULT-VALUE})") double lr;

  @Option(names = "--tau", defaultValue = "0.5", description = "InfoNCE temperature (default: ${DEFAULT-VALUE})")
  double tau;

  @Option(names = "--beta", defaultValue = "2.0",
      description = "negative-weight sharpness (AdaMEOW: initial value) (default: ${DEFAULT-VALUE})")
  double beta;

  @Option(names = "--drop", defaultValue = "0.3",
      description = "dropout on the input layer, per view (default: ${DEFAULT-VALUE})")
  double drop;

  @Option(names = "--positives", defaultValue = "5",
      description = "positives per node: itself and its top meta-path neighbours (default: ${DEFAULT-VALUE})")
  int positives;

  @Option(names = "--weights", defaultValue = "both",
      description = "meta-path weights: counts (path counts), binary, or both (default: ${DEFAULT-VALUE})")
  String weights;

  @Option(names = "--methods", defaultValue = "meow,adameow",
      description = "meow, adameow, or both (also written meow,adameow) (default: ${DEFAULT-VALUE})")
  String methods;

  @Option(names = "--contexts", negatable = true, defaultValue = "false", fallbackValue = "true",
      description = "meta-path contexts in the fine view: the intermediate nodes' own embeddings "
          + "(--no-contexts: the target's features alone) (default: ${DEFAULT-VALUE})")
  boolean contexts;

  @Option(names = "--clusters", defaultValue = "none",
      description = "MEOW's k-means levels over the fine embeddings (the authors' ACM setting: 100,300), for the "
          + "negatives' hard weights and the prototypes; none: similarity-weighted negatives, no prototypes "
          + "(default: ${DEFAULT-VALUE})")
  String clusters;

  @Option(names = "--proto", defaultValue = "1.0",
      description = "the prototype loss's weight when --clusters are given (0: none) (default: ${DEFAULT-VALUE})")
  double proto;

  @Option(names = "--cluster-every", defaultValue = "1",
      description = "re-cluster every this many epochs (default: ${DEFAULT-VALUE})")
  int clusterEvery;

  @Option(names = "--jobs", defaultValue = "1",
      description = "training runs at a time, each on its own thread (results do not depend on it) "
          + "(default: ${DEFAULT-VALUE})")
  int jobs;

  @Spec CommandSpec spec;

  @Override
  public Integer call() throws IOException {
    Locale.setDefault(Locale.ROOT);
    Checks.atLeast(spec, "--epochs", epochs, 1);
    Checks.atLeast(spec, "--seeds", seeds, 1);
    Checks.atLeast(spec, "--hidden", hidden, 2);
    Checks.atLeast(spec, "--batch", batch, 2);
    Checks.positive(spec, "--lr", lr);
    Checks.positive(spec, "--tau", tau);
    Checks.finite(spec, "--beta", beta);
    if (!(drop >= 0 && drop < 1)) throw Checks.usage(spec, "--drop must be in [0, 1), got " + drop);
    Checks.atLeast(spec, "--positives", positives, 1);
    Checks.atLeast(spec, "--jobs", jobs, 1);
    List<String> ws;
    if (weights.equals("both"))
      ws = List.of("counts", "binary");
    else if (weights.equals("counts") || weights.equals("binary"))
      ws = List.of(weights);
    else
      throw Checks.usage(spec, "--weights must be counts, binary or both, got '" + weights + "'");
    List<String> ms = new ArrayList<>();
    String methodList = methods.toLowerCase(Locale.ROOT).trim();
    if (methodList.equals("both")) methodList = "meow,adameow";
    for (String m : methodList.split(",", -1)) {
      if (!m.equals("meow") && !m.equals("adameow"))
        throw Checks.usage(spec, "--methods: each must be meow or adameow (or both), got '" + m + "' in '" + methods + "'");
      if (!ms.contains(m)) ms.add(m);
    }
    if (data != null && !Files.isDirectory(data)) throw Checks.usage(spec, "--data: no folder " + data);
    List<Integer> levels = new ArrayList<>();
    if (!clusters.equalsIgnoreCase("none"))
      for (String k : clusters.split(",")) {
        try {
          levels.add(Integer.parseInt(k.trim()));
        } catch (NumberFormatException e) {
          throw Checks.usage(spec, "--clusters: a comma-separated list of cluster counts or 'none', got '" + clusters + "'");
        }
        if (levels.get(levels.size() - 1) < 2) throw Checks.usage(spec, "--clusters: each level needs 2+ clusters, got " + k);
      }
    if (!(proto >= 0) || !Double.isFinite(proto)) throw Checks.usage(spec, "--proto must be a finite number >= 0, got " + proto);
    double protoWeight = levels.isEmpty() ? 0 : proto;
    Checks.atLeast(spec, "--cluster-every", clusterEvery, 1);
    Backend backend = run.checkOutputsAndStart();
    Meow.Config c = new Meow.Config(hidden, epochs, batch, lr, tau, beta, 0.1, seeds, ws, ms, 300, run.seed, drop,
        positives, jobs, contexts, levels, protoWeight, clusterEvery);

    PrintWriter o = spec.commandLine().getOut();
    Meow.Dataset d;
    try {
      d = data == null ? Meow.loadBundledAcm() : Meow.load(data);
    } catch (java.nio.file.NoSuchFileException e) {
      // a folder without the data's files is a bad --data value (exit code 2, nothing computed); a
      // file there that cannot be parsed stays a runtime failure naming it (exit code 1)
      if (data == null) throw e;
      throw Checks.usage(spec, "--data " + data + ": " + (e.getReason() != null ? e.getReason() : "no file " + e.getFile()));
    }
    o.println("metakernels recipe meow: heterogeneous graph contrastive learning (MEOW / AdaMEOW, Yu et al. 2023)");
    o.printf("backend: CPU, %s kernels, %d threads%n", backend.cpuIsa(), backend.cpuThreads());
    o.printf("data: %s (%s), %d target nodes, %d classes, features %s%n", d.name(), data == null ? "bundled" : data,
        d.numNodes(), d.classes(), d.features() == null ? "none (learned embedding)" : d.featureDim() + "-d");
    o.printf("graph: %s%n", d.graph().describe());
    o.printf("training: %d epochs x %d seeds, batch %d, hidden %d, tau %s, beta %s, weights %s, methods %s%n", epochs,
        seeds, batch, hidden, tau, beta, ws, ms);
    o.printf("fine view: %s; negatives: %s; prototypes: %s%n%n",
        contexts ? "meta-path contexts (" + String.join(", ", contextTypes(d)) + ")" : "target features only",
        levels.isEmpty() ? "similarity-weighted" : "hard weights from k-means levels " + levels + " (MEOW)",
        protoWeight > 0 ? "weight " + protoWeight + ", re-clustered every " + clusterEvery + " epoch(s)" : "none");
    o.flush();

    Meow.Result r;
    boolean terminal = ((Main) spec.root().userObject()).terminal;
    try (StepProgress progress = new StepProgress(spec.commandLine().getErr(), terminal)) {
      r = Meow.run(d, c, progress::step);
    }
    o.println();
    o.println("== meta-paths (GCN-normalised; cost = non-zeros per feature column) ==");
    for (Meow.PathInfo p : r.paths())
      o.printf("  %-12s %-7s %-12s materialised %,d  chain %,d%n", p.path(), p.weighting(),
          p.chained() ? "chained" : "materialised", p.materializedNnz(), p.chainNnz());
    o.println();
    o.printf("== node classification, test split, mean +- std over %d seed(s) ==%n", seeds);
    o.println("  method                     weights   labels   Macro-F1         Micro-F1         (validation Macro-F1)");
    for (Meow.MethodResult m : r.methods())
      for (var e : m.scores().entrySet()) {
        double[] ma = Meow.meanStd(e.getValue(), true), mi = Meow.meanStd(e.getValue(), false);
        double va = e.getValue().stream().mapToDouble(Meow.Score::validationMacro).average().orElse(Double.NaN);
        o.printf("  %-26s %-8s  %3d      %.4f +- %.4f  %.4f +- %.4f  (%.4f)%n", m.method(), m.weighting(), e.getKey(),
            ma[0], ma[1], mi[0], mi[1], va);
      }
    if (r.validationChecks() != null) {
      o.print("  first MEOW run's checkpoints (epoch: mean validation Macro-F1; the best is kept):");
      for (double[] ch : r.validationChecks()) o.printf(" %d: %.4f", (int) ch[0], ch[1]);
      o.println();
    }
    o.flush();
    if (r.embedding2d() != null) {
      Path png = run.plot("meow-embeddings-pca.png");
      plot(r, d, png);
      o.println();
      o.println("plot: " + png.toAbsolutePath());
    }
    run.writeJson(o, json(r, c, d, backend));
    o.printf("time: %.1f s%n", r.seconds());
    return 0;
  }

  private static void plot(Meow.Result r, Meow.Dataset d, Path file) throws IOException {
    XYChart chart = new XYChartBuilder()
                        .width(700)
                        .height(600)
                        .title("MEOW embeddings of " + d.name() + ", PCA (first seed)")
                        .xAxisTitle("PC 1")
                        .yAxisTitle("PC 2")
                        .build();
    chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
    chart.getStyler().setMarkerSize(3);
    double[] e = r.embedding2d();
    for (int k = 0; k < d.classes(); k++) {
      int cnt = 0;
      for (long y : d.labels())
        if (y == k) cnt++;
      if (cnt == 0) continue;
      double[] x = new double[cnt], y = new double[cnt];
      int j = 0;
      for (int i = 0; i < d.numNodes(); i++)
        if (d.labels()[i] == k) {
          x[j] = e[2 * i];
          y[j++] = e[2 * i + 1];
        }
      chart.addSeries("class " + k, x, y);
    }
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  /** The context types of the fine view with where their embeddings come from: "a (features)", "s (learned)". */
  private static List<String> contextTypes(Meow.Dataset d) {
    List<String> out = new ArrayList<>();
    for (List<String> mp : d.metaPaths())
      for (int k = 1; k + 1 < mp.size(); k++) {
        String t = mp.get(k) + (d.typeFeatures().containsKey(mp.get(k)) ? " (features)" : " (learned)");
        if (!out.contains(t)) out.add(t);
      }
    return out;
  }

  /** ["a", "b"]: a JSON list of the strings (plain names: nothing to escape). */
  private static String quoted(List<String> xs) {
    return "[" + String.join(", ", xs.stream().map(x -> "\"" + x + "\"").toList()) + "]";
  }

  private static String json(Meow.Result r, Meow.Config c, Meow.Dataset d, Backend backend) {
    StringBuilder sb = new StringBuilder("{\n");
    sb.append(String.format("  \"settings\": {\"version\": \"%s\", \"dataset\": \"%s\", \"epochs\": %d, \"seeds\": %d, "
            + "\"seed\": %d, \"hidden\": %d, \"batch\": %d, \"lr\": %s, \"tau\": %s, \"beta\": %s, \"beta_penalty\": %s, "
            + "\"lr_steps\": %d, \"feature_drop\": %s, \"positives\": %d, \"contexts\": %s, \"clusters\": %s, "
            + "\"proto_weight\": %s, \"cluster_every\": %d, \"methods\": %s, \"weightings\": %s, \"jobs\": %d, "
            + "\"threads\": %d, \"isa\": \"%s\"},%n",
        Version.get(), d.name(), c.epochs(), c.seeds(), c.seed(), c.hidden(), c.batch(), c.lr(), c.tau(), c.beta(),
        c.betaPenalty(), c.lrSteps(), c.featureDrop(), c.positives(), c.contexts(), c.clusters(), c.protoWeight(),
        c.clusterEvery(), quoted(c.methods()), quoted(c.weightings()), c.jobs(), backend.cpuThreads(), backend.cpuIsa()));
    sb.append(String.format("  \"nodes\": %d, \"classes\": %d,%n", r.nodes(), r.classes()));
    sb.append("  \"meta_paths\": [");
    for (int i = 0; i < r.paths().size(); i++) {
      Meow.PathInfo p = r.paths().get(i);
      sb.append(i == 0 ? "\n" : ",\n")
          .append(String.format(
              "    {\"path\": \"%s\", \"weights\": \"%s\", \"form\": \"%s\", \"materialized_nnz\": %d, \"chain_nnz\": %d}",
              p.path(), p.weighting(), p.chained() ? "chain" : "materialized", p.materializedNnz(), p.chainNnz()));
    }
    sb.append("\n  ],\n  \"results\": [");
    boolean first = true;
    for (Meow.MethodResult m : r.methods())
      for (Map.Entry<Integer, List<Meow.Score>> e : m.scores().entrySet()) {
        double[] ma = Meow.meanStd(e.getValue(), true), mi = Meow.meanStd(e.getValue(), false);
        double[] macros = e.getValue().stream().mapToDouble(Meow.Score::macro).toArray();
        double[] micros = e.getValue().stream().mapToDouble(Meow.Score::micro).toArray();
        double[] vals = e.getValue().stream().mapToDouble(Meow.Score::validationMacro).toArray();
        sb.append(first ? "\n" : ",\n")
            .append(String.format(
                "    {\"method\": \"%s\", \"weights\": \"%s\", \"labels_per_class\": %d, \"macro_f1_mean\": %.6f, "
                    + "\"macro_f1_std\": %.6f, \"micro_f1_mean\": %.6f, \"micro_f1_std\": %.6f, \"macro_f1\": %s, "
                    + "\"micro_f1\": %s, \"validation_macro_f1\": %s, \"train_seconds\": %.2f}",
                m.method(), m.weighting(), e.getKey(), ma[0], ma[1], mi[0], mi[1], Arrays.toString(macros),
                Arrays.toString(micros), Arrays.toString(vals), m.seconds()));
        first = false;
      }
    sb.append("\n  ],\n");
    if (r.validationChecks() != null) {
      sb.append("  \"validation_checks\": [");
      for (int i = 0; i < r.validationChecks().length; i++)
        sb.append(i == 0 ? "" : ", ")
            .append(String.format("[%d, %.6f]", (int) r.validationChecks()[i][0], r.validationChecks()[i][1]));
      sb.append("],\n");
    }
    sb.append(String.format("  \"seconds\": %.3f%n}%n", r.seconds()));
    return sb.toString();
  }
}
