package org.metakernels.recipes;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.metakernels.autograd.Autograd;
import org.metakernels.graph.HeteroGraph;
import org.metakernels.graph.MessagePassing;
import org.metakernels.graph.HeteroSbm;
import org.metakernels.graph.MetaPath;
import org.metakernels.graph.Reduce;
import org.metakernels.graph.SparseMatrix;
import org.metakernels.graph.SparseOperator;
import org.metakernels.io.EdgeList;
import org.metakernels.io.NumPy;
import org.metakernels.nn.GCNConv;
import org.metakernels.nn.Linear;
import org.metakernels.nn.Module;
import org.metakernels.nn.SemanticAttention;
import org.metakernels.nn.Weights;
import org.metakernels.ops.Functional;
import org.metakernels.optim.Adam;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * MEOW and AdaMEOW (Yu et al., "Heterogeneous graph contrastive learning with meta-path contexts
 * and (adaptively) weighted negative samples", SDM 2023 / TKDE 2024), reproduced on the
 * library's heterogeneous-graph layer: meta-path operators ({@link MetaPath}, P–S–P as the
 * factorised chain), {@link GCNConv} encoders and HAN's {@link SemanticAttention}.
 *
 * <p><b>Model.</b> Shared input layer h0 = ELU(x W_in + b) on the target type's features, with
 * dropout drawn separately for the two views. One two-layer GCN encoder E(h, Ā) = Ā ELU(Ā h W0 +
 * b0) W1 + b1 serves both views (as in the authors' code): the fine view encodes each meta-path
 * alone, z_m = E(h_m, Â_m), rows at unit norm, combined by semantic attention into z_f; the coarse
 * view encodes once over the aggregated meta-paths, z_c = E(h0, mean_m Â_m) (the mean of the
 * per-path GCN-normalised operators, so the 4.3 M-edge P–S–P is never formed). A shared two-layer
 * projection head maps both into the contrastive space.
 *
 * <p><b>Meta-path contexts</b> ({@link Config#contexts()}): the fine view's input for meta-path m =
 * (t0, t1, …, tL) is h_m = ELU(h0 + Σ_k C_mk · mean_{t0→…→tk} H_tk): for each intermediate
 * position k, the other type's own embeddings H_t = ELU(x_t W_t + b_t) (its published features,
 * as ACM's authors' bag of words) or a learned embedding (a type without features, as ACM's subjects),
 * averaged along the path's steps up to k (ACM P–A–P: the mean of a paper's authors; P–S–P: its
 * subject), through a map C_mk of its own. Longer paths (DBLP A–P–C–P–A) average step by step
 * (the mean over the papers of the mean over their conferences …, a random walk's weights) where
 * the authors average over the set of nodes reached. Without contexts h_m = h0.
 *
 * <p><b>Loss.</b> InfoNCE between the coarse and the fine embedding of the same node (the positive,
 * with its top meta-path neighbours, HeCo's selection) against the other nodes of a sampled batch
 * (the negatives), both directions, temperature τ, each negative j of anchor i weighted by w_ij: ℓ_i
 * = −log(Σ_{p∈P(i)} e^{s_ip/τ}) + log(Σ_{p∈P(i)} e^{s_ip/τ} + Σ_{j∉P(i)} w_ij e^{s_ij/τ}).
 * <ul>
 *   <li>MEOW with clustering levels ({@link Config#clusters()}, e.g. 100 and 300 clusters): every
 *       {@link Config#clusterEvery()} epochs the projected fine embeddings of all nodes are
 *       clustered ({@link SphericalKMeans}, k-means++ seeded) at each level; w_ij = the number of
 *       levels at which j is in another cluster than i (0 when every level puts them together: a
 *       likely false negative, left out) — the authors' hard-valued weights. Their prototype loss
 *       (ProtoNCE, weight {@link Config#protoWeight()}): each coarse embedding against the
 *       normalised centroids of every level, cross-entropy toward its own cluster, each prototype at
 *       its concentration φ (PCL's estimate, mean τ).
 *   <li>MEOW without clustering levels: w_ij = (B − 1) · softmax_{j∉P(i)}(β · cos(z_f[i], z_f[j])),
 *       fixed β, from the detached fine embeddings, so negatives similar to the anchor weigh more.
 *   <li>AdaMEOW: that similarity form with β learned adversarially (gradient ascent on the loss with
 *       an L2 penalty λβ²), so the weighting adapts to the embeddings during training; the
 *       prototype loss too when clustering levels are given.
 * </ul>
 *
 * <p><b>Evaluation.</b> A linear probe on the frozen fine embeddings z_f: multinomial logistic
 * regression fitted to convergence (L-BFGS) on the train split, for each L2 penalty in {@link
 * #PENALTIES} and for the embeddings as given and with rows at unit norm; the fit with the best
 * validation Macro-F1 gives Macro-F1 and Micro-F1 on the test split, for 20, 40 and 60 labelled
 * nodes per class, mean ± std over seeds (nothing is chosen on the test split).
 * Baselines: the raw features alone, and a single-meta-path GCN of fixed propagation (SGC, Wu et al.
 * 2019: Â_PAP² x with GCN normalisation) whose weight layer is the same logistic regression.
 */
public final class Meow {
  private Meow() {}

  /** Sees each finished training step: {@code step("MEOW counts seed 1", 10, 100)}. */
  @FunctionalInterface
  public interface Progress {
    /**
     * Called after each step of a phase.
     *
     * @param phase the phase's name
     * @param done steps done
     * @param total steps of the phase
     */
    void step(String phase, int done, int total);
  }

  /**
   * The run's settings.
   *
   * @param hidden embedding width
   * @param epochs contrastive training steps per run
   * @param batch nodes per contrastive batch (the negatives of an anchor are the other batch nodes)
   * @param lr Adam's step size
   * @param tau the InfoNCE temperature
   * @param beta MEOW's similarity sharpness of the negative weights (AdaMEOW's initial value)
   * @param betaPenalty AdaMEOW's λ
   * @param seeds the number of seeds (runs) per method
   * @param weightings "counts", "binary" or both: the meta-path weights of the runs
   * @param methods "meow", "adameow" or both
   * @param lrSteps the logistic regression's most L-BFGS iterations per fit
   * @param seed the first seed
   * @param featureDrop dropout on the shared input layer, drawn separately for the two views
   * @param positives positives per node: itself and its top meta-path neighbours by path count on the
   *     first meta-path (HeCo's selection), 1 for the node alone
   * @param jobs how many training runs (weighting × method × seed) go at a time, each on its own
   *     thread; the results do not depend on it
   * @param contexts whether the fine view's meta-path encodings see the meta-path contexts (the
   *     intermediate nodes' own embeddings) or the target type's features alone
   * @param clusters MEOW's clustering levels (spherical k-means of the projected fine embeddings,
   *     e.g. 100 and 300 clusters): the negatives' hard weights and the prototypes; empty for the
   *     similarity-softmax weighting without prototypes
   * @param protoWeight the prototype loss's weight λ (0: none; needs clusters)
   * @param clusterEvery re-cluster every this many epochs
   */
  public record Config(int hidden, int epochs, int batch, double lr, double tau, double beta, double betaPenalty,
      int seeds, List<String> weightings, List<String> methods, int lrSteps, long seed, double featureDrop,
      int positives, int jobs, boolean contexts, List<Integer> clusters, double protoWeight, int clusterEvery) {
    /** Checks the clustering settings. */
    public Config {
      clusters = List.copyOf(clusters);
      for (int k : clusters)
        if (k < 2) throw new IllegalArgumentException("recipe meow: a clustering level needs 2+ clusters, got " + k);
      if (!(protoWeight >= 0)) throw new IllegalArgumentException("recipe meow: protoWeight must be >= 0, got " + protoWeight);
      if (protoWeight > 0 && clusters.isEmpty())
        throw new IllegalArgumentException("recipe meow: a prototype loss needs clustering levels");
      if (clusterEvery < 1) throw new IllegalArgumentException("recipe meow: clusterEvery must be >= 1, got " + clusterEvery);
    }

    /**
     * Without meta-path contexts and clustering (the defaults; see {@link #withMeow} for those):
     * target features only, similarity-weighted negatives, no prototypes.
     *
     * @param hidden embedding width
     * @param epochs training steps
     * @param batch nodes per batch
     * @param lr Adam's step size
     * @param tau temperature
     * @param beta similarity sharpness
     * @param betaPenalty AdaMEOW's λ
     * @param seeds seeds per method
     * @param weightings counts / binary
     * @param methods meow / adameow
     * @param lrSteps L-BFGS iterations of the probe
     * @param seed first seed
     * @param featureDrop input dropout
     * @param positives positives per node
     * @param jobs runs at a time
     */
    public Config(int hidden, int epochs, int batch, double lr, double tau, double beta, double betaPenalty, int seeds,
        List<String> weightings, List<String> methods, int lrSteps, long seed, double featureDrop, int positives,
        int jobs) {
      this(hidden, epochs, batch, lr, tau, beta, betaPenalty, seeds, weightings, methods, lrSteps, seed, featureDrop,
          positives, jobs, false, List.of(), 0, 1);
    }

    /**
     * The defaults, sized for a few minutes on 2 cores for ACM. The meta-path contexts and MEOW's
     * clustering are off: on ACM they did not beat this on the validation split
     * (benchmarks/results/meow-acm-mechanisms-2026-12-06.md).
     *
     * @return the default configuration
     */
    public static Config defaults() {
      return new Config(64, 300, 1024, 5e-3, 0.5, 2.0, 0.1, 2, List.of("counts", "binary"), List.of("meow", "adameow"),
          300, 1, 0.3, 5, 1, false, List.of(), 0, 1);
    }

    /**
     * This configuration with other meta-path context and clustering settings.
     *
     * @param contexts meta-path contexts on or off
     * @param clusters the clustering levels (empty: none)
     * @param protoWeight the prototype loss's weight
     * @param clusterEvery re-cluster every this many epochs
     * @return the new configuration
     */
    public Config withMeow(boolean contexts, List<Integer> clusters, double protoWeight, int clusterEvery) {
      return new Config(hidden, epochs, batch, lr, tau, beta, betaPenalty, seeds, weightings, methods, lrSteps, seed,
          featureDrop, positives, jobs, contexts, clusters, protoWeight, clusterEvery);
    }
  }

  /**
   * A heterogeneous graph data set with its labelled target type.
   *
   * @param name "acm", ...
   * @param target the target node type
   * @param graph the relations
   * @param metaPaths the meta-paths over the target type (node types, first = last)
   * @param features row-major [n, featureDim], row-normalised, or null (a learned embedding then)
   * @param featureDim the feature width
   * @param labels the class of each target node
   * @param classes the number of classes
   * @param splits label rate (20, 40, 60) → {train, val, test} node ids
   * @param typeFeatures the published features of the other node types (ACM's authors: a_feat.npz),
   *     type → [count, width] sparse; the meta-path contexts of a type without any are learned
   *     embeddings
   */
  public record Dataset(String name, String target, HeteroGraph graph, List<List<String>> metaPaths, double[] features,
      int featureDim, long[] labels, int classes, Map<Integer, long[][]> splits, Map<String, SparseMatrix> typeFeatures) {
    /**
     * A data set whose other node types have no features of their own (learned embeddings then).
     *
     * @param name "acm", ...
     * @param target the target node type
     * @param graph the relations
     * @param metaPaths the meta-paths over the target type
     * @param features row-major [n, featureDim], row-normalised, or null
     * @param featureDim the feature width
     * @param labels the class of each target node
     * @param classes the number of classes
     * @param splits label rate → {train, val, test} node ids
     */
    public Dataset(String name, String target, HeteroGraph graph, List<List<String>> metaPaths, double[] features,
        int featureDim, long[] labels, int classes, Map<Integer, long[][]> splits) {
      this(name, target, graph, metaPaths, features, featureDim, labels, classes, splits, Map.of());
    }

    /**
     * The number of target nodes.
     *
     * @return n
     */
    public int numNodes() {
      return labels.length;
    }
  }

  // ------------------------------------------------------------------------------------------
  // data

  /** The four published data sets: target type, relation files, meta-paths. */
  private record Layout(String target, String featureFile, List<String> relations, List<List<String>> paths) {}

  private static final Map<String, Layout> LAYOUTS = new LinkedHashMap<>();

  static {
    LAYOUTS.put("acm",
        new Layout("p", "p_feat.npz", List.of("pa", "ps"), List.of(List.of("p", "a", "p"), List.of("p", "s", "p"))));
    LAYOUTS.put("dblp",
        new Layout("a", "a_feat.npz", List.of("pa", "pc", "pt"),
            List.of(List.of("a", "p", "a"), List.of("a", "p", "c", "p", "a"), List.of("a", "p", "t", "p", "a"))));
    LAYOUTS.put("imdb",
        new Layout("m", "m_feat.npz", List.of("ma", "md", "mk"),
            List.of(List.of("m", "a", "m"), List.of("m", "d", "m"), List.of("m", "k", "m"))));
    LAYOUTS.put(
        "aminer", new Layout("p", null, List.of("pa", "pr"), List.of(List.of("p", "a", "p"), List.of("p", "r", "p"))));
  }

  /**
   * Loads one of the MEOW/HeCo data sets (ACM, DBLP, IMDB, AMiner) from a folder with the published
   * layout (see the data's README): labels.npy, the target's features (*_feat.npz, scipy sparse;
   * AMiner has none and gets a learned embedding), the raw relations xy.txt ("i j" per line, x and
   * y the node types' letters) and the splits train_/val_/test_{20,40,60}.npy. The data set is
   * recognised by its relation files. The meta-path graphs are composed from the relations, never
   * read from xyx.npz.
   *
   * @param dir the folder
   * @return the data set
   * @throws IOException when a file is missing ({@link java.nio.file.NoSuchFileException}) or malformed
   *     (named)
   */
  public static Dataset load(Path dir) throws IOException {
    String name = null;
    for (var e : LAYOUTS.entrySet()) {
      boolean all = true;
      for (String r : e.getValue().relations()) all &= Files.isRegularFile(dir.resolve(r + ".txt"));
      if (all && (e.getValue().featureFile() == null || Files.isRegularFile(dir.resolve(e.getValue().featureFile())))) {
        if (name == null || e.getValue().relations().size() > LAYOUTS.get(name).relations().size()) name = e.getKey();
      }
    }
    if (name == null)  // files missing: NoSuchFileException, as for a missing labels.npy below
      throw new java.nio.file.NoSuchFileException(dir.toString(), null, "not a MEOW/HeCo data folder (expected the "
          + "relation files of one of " + LAYOUTS.keySet() + ", e.g. pa.txt and ps.txt with p_feat.npz for ACM)");
    Layout l = LAYOUTS.get(name);
    long[] labels = integers(dir.resolve("labels.npy"));
    int n = labels.length;
    int classes = 0;
    for (long y : labels) {
      if (y < 0 || y > 1 << 20)  // a class id past 2^20: a broken file (and (int) of y + 1 wrapped)
        throw new IOException(dir.resolve("labels.npy") + ": label " + y + " outside [0, 2^20]");
      classes = (int) Math.max(classes, y + 1);
    }
    Map<String, EdgeList> rel = new LinkedHashMap<>();
    Map<String, Long> counts = new LinkedHashMap<>();
    counts.put(l.target(), (long) n);
    for (String r : l.relations()) {
      EdgeList e = EdgeList.read(dir.resolve(r + ".txt"));
      rel.put(r, e);
      String a = r.substring(0, 1), b = r.substring(1, 2);
      counts.merge(a, e.extent(0), Math::max);
      counts.merge(b, e.extent(1), Math::max);
    }
    if (counts.get(l.target()) > n)
      throw new IOException(dir + ": the relations name target node " + (counts.get(l.target()) - 1)
          + " but labels.npy has " + n + " nodes");
    // the other types' published features (ACM a_feat.npz: 7167 authors x 1902 words; DBLP's t_feat.npz is a
    // dense .npy under that name); a type may have more nodes than its relations name
    Map<String, SparseMatrix> typeFeatures = new LinkedHashMap<>();
    for (String type : counts.keySet()) {
      Path ff = dir.resolve(type + "_feat.npz");
      if (type.equals(l.target()) || !Files.isRegularFile(ff)) continue;
      SparseMatrix f = readFeatures(ff);
      if (f.rows() < counts.get(type))
        throw new IOException(ff + ": " + f.rows() + " rows, but the relations name " + type + " node "
            + (counts.get(type) - 1));
      counts.put(type, (long) f.rows());
      typeFeatures.put(type, f);
    }
    HeteroGraph.Builder hb = HeteroGraph.builder();
    for (var c : counts.entrySet()) hb.nodeType(c.getKey(), c.getKey().equals(l.target()) ? n : c.getValue());
    for (var e : rel.entrySet())
      hb.relation(
          e.getKey(), e.getKey().substring(0, 1), e.getKey().substring(1, 2), e.getValue().src(), e.getValue().dst());
    double[] feat = null;
    int fd = 0;
    if (l.featureFile() != null) {
      Path ff = dir.resolve(l.featureFile());
      SparseMatrix f = NumPy.readSparse(ff);
      if (f.rows() != n) throw new IOException(ff + ": " + f.rows() + " rows, labels.npy has " + n);
      fd = f.cols();
      feat = rowNormalised(f.toDense(), n, fd);
    }
    Map<Integer, long[][]> splits = new LinkedHashMap<>();
    for (int rate : new int[] {20, 40, 60}) {
      long[][] s = new long[3][];
      String[] names = {"train_", "val_", "test_"};
      for (int k = 0; k < 3; k++) {
        Path p = dir.resolve(names[k] + rate + ".npy");
        s[k] = integers(p);
        for (long v : s[k])
          if (v < 0 || v >= n) throw new IOException(p + ": node " + v + " outside [0, " + n + ")");
      }
      splits.put(rate, s);
    }
    return new Dataset(name, l.target(), hb.build(), l.paths(), feat, fd, labels, classes, splits, typeFeatures);
  }

  /** A feature file: a scipy sparse .npz, or a dense 2-D .npy (whatever its name), as a sparse matrix. */
  static SparseMatrix readFeatures(Path file) throws IOException {
    byte[] magic = new byte[2];
    try (InputStream in = Files.newInputStream(file)) {
      if (in.readNBytes(magic, 0, 2) < 2) throw new IOException(file + ": empty");
    }
    if (magic[0] == 'P' && magic[1] == 'K') return NumPy.readSparse(file);
    NumPy.Array a = NumPy.read(file);
    long[] shape = a.shape();
    if (shape.length != 2) throw new IOException(file + ": features must be 2-D, got shape " + Arrays.toString(shape));
    return sparseOf(a.doubles(), (int) shape[0], (int) shape[1]);
  }

  /** An .npy of integers (or integral floats); a string or fractional array is an error naming the file. */
  private static long[] integers(Path p) throws IOException {
    try {
      return NumPy.read(p).longs();
    } catch (IllegalStateException e) {
      throw new IOException(p + ": " + e.getMessage(), e);
    }
  }

  /**
   * The ACM files carried in the application jar (resources/datasets/acm), copied to a temporary
   * folder (deleted on exit) and loaded.
   *
   * @return the ACM data set
   * @throws IOException when the resources are missing
   */
  public static Dataset loadBundledAcm() throws IOException {
    Path dir = Files.createTempDirectory("metakernels-acm");
    dir.toFile().deleteOnExit();
    String[] files = {"labels.npy", "p_feat.npz", "a_feat.npz", "pa.txt", "ps.txt", "train_20.npy", "train_40.npy", "train_60.npy",
        "val_20.npy", "val_40.npy", "val_60.npy", "test_20.npy", "test_40.npy", "test_60.npy"};
    for (String f : files) {
      try (InputStream in = Meow.class.getResourceAsStream("/datasets/acm/" + f)) {
        if (in == null) throw new IOException("the bundled ACM file datasets/acm/" + f + " is missing from the jar");
        Path p = dir.resolve(f);
        Files.copy(in, p, StandardCopyOption.REPLACE_EXISTING);
        p.toFile().deleteOnExit();
      }
    }
    return load(dir);
  }

  /**
   * A synthetic ACM-shaped data set from the heterogeneous SBM, with 20/40/60-per-class splits
   * (validation and test 25 % of the nodes each) drawn with the seed.
   *
   * @param c the SBM configuration
   * @param seed the seed
   * @return the data set (name "hetero-sbm")
   */
  public static Dataset synthetic(HeteroSbm.Config c, long seed) {
    HeteroSbm.Sample s = HeteroSbm.generate(c, seed);
    int n = c.papers();
    SplittableRandom rng = new SplittableRandom(seed ^ 0x5DEECE66DL);
    Integer[] perm = new Integer[n];
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      Integer t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    int quarter = n / 4;
    long[] val = new long[quarter], test = new long[quarter];
    for (int i = 0; i < quarter; i++) {
      val[i] = perm[i];
      test[i] = perm[quarter + i];
    }
    Map<Integer, long[][]> splits = new LinkedHashMap<>();
    for (int rate : new int[] {20, 40, 60}) {
      List<Long> train = new ArrayList<>();
      int[] taken = new int[c.classes()];
      for (int i = 2 * quarter; i < n; i++) {
        int y = (int) s.labels()[perm[i]];
        if (taken[y] < rate) {
          taken[y]++;
          train.add((long) perm[i]);
        }
      }
      splits.put(rate, new long[][] {train.stream().mapToLong(Long::longValue).toArray(), val, test});
    }
    return new Dataset("hetero-sbm", "paper", s.graph(),
        List.of(List.of("paper", "author", "paper"), List.of("paper", "subject", "paper")),
        rowNormalised(s.features(), n, c.featureDim()), c.featureDim(), s.labels(), c.classes(), splits);
  }

  private static double[] rowNormalised(double[] x, int n, int f) {
    double[] y = x.clone();
    for (int i = 0; i < n; i++) {
      double s = 0;
      for (int j = 0; j < f; j++) s += y[i * f + j];
      if (s != 0)
        for (int j = 0; j < f; j++) y[i * f + j] /= s;
    }
    return y;
  }

  // ------------------------------------------------------------------------------------------
  // results

  /**
   * Macro-F1 and Micro-F1 of one evaluation.
   *
   * @param macro Macro-F1
   * @param micro Micro-F1 (= accuracy for single-label classes)
   * @param validationMacro the validation Macro-F1 of the fit that was chosen (NaN when none)
   */
  public record Score(double macro, double micro, double validationMacro) {
    /**
     * A score without a validation figure.
     *
     * @param macro Macro-F1
     * @param micro Micro-F1
     */
    public Score(double macro, double micro) {
      this(macro, micro, Double.NaN);
    }
  }

  /**
   * One method's scores per label rate, one per seed.
   *
   * @param method "MEOW", "AdaMEOW", "features", "GCN (PAP)"
   * @param weighting "counts", "binary" or "-" for the baselines
   * @param scores label rate → one score per seed
   * @param seconds training time summed over seeds
   */
  public record MethodResult(String method, String weighting, Map<Integer, List<Score>> scores, double seconds) {}

  /**
   * A meta-path's form in the run.
   *
   * @param path the types, e.g. "p-s-p"
   * @param weighting counts or binary
   * @param chained whether it ran as the factorised chain
   * @param materializedNnz nnz of the path matrix (+ N self-loops)
   * @param chainNnz the chain's non-zeros (+ padding + N)
   */
  public record PathInfo(String path, String weighting, boolean chained, long materializedNnz, long chainNnz) {}

  /**
   * Everything a run reports.
   *
   * @param dataset the data set's name
   * @param nodes the target nodes
   * @param classes classes
   * @param paths the meta-paths' forms
   * @param methods the methods' scores
   * @param embedding2d PCA of the first MEOW run's embeddings, [n, 2] row-major (for the plot)
   * @param lossCurve the first MEOW run's loss per epoch
   * @param validationChecks the first MEOW run's checkpoints: {epoch, mean validation Macro-F1} each
   *     (the best one's embedding is the run's)
   * @param seconds wall time
   */
  public record Result(String dataset, int nodes, int classes, List<PathInfo> paths, List<MethodResult> methods,
      double[] embedding2d, double[] lossCurve, double[][] validationChecks, double seconds) {}

  // ------------------------------------------------------------------------------------------
  // the run

  /**
   * Runs every configured method and the baselines on a data set.
   *
   * @param d the data set
   * @param c the settings
   * @param progress sees each step (or null)
   * @return the scores
   */
  public static Result run(Dataset d, Config c, Progress progress) {
    long t0 = System.nanoTime();
    Progress p = progress != null ? progress : (a, b, e) -> {};
    List<PathInfo> infos = new ArrayList<>();
    List<MethodResult> results = new ArrayList<>();
    double[] emb2d = null;
    double[] curve = null;
    double[][] checks = null;
    try (Scope root = Scope.open()) {
      Tensor x = d.features() == null ? null : Tensor.of(d.features(), d.numNodes(), d.featureDim()).castTo(DType.F32);
      // baselines
      results.add(baseline("features", d, c, x, p));
      try (MetaPath pap = d.graph().metaPath(d.metaPaths().get(0), MetaPath.Normalization.GCN, false,
               MetaPath.Strategy.AUTO, DType.F32, Device.CPU)) {
        Tensor sgc = null;
        if (x != null) {
          try (var ng = Autograd.noGrad()) {
            sgc = pap.apply(pap.apply(x));
          }
        }
        results.add(baseline("GCN (" + pathName(d.metaPaths().get(0)) + ", SGC K=2)", d, c, sgc, p));
      }
      SparseOperator featureOp = d.features() == null ? null : featureOperator(d);
      Contexts contexts = null;
      long[][] positives = positives(d, Math.max(1, c.positives()));
      List<List<MetaPath>> pathsBy = new ArrayList<>();
      ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, c.jobs()));
      try {
        if (c.contexts()) contexts = new Contexts(d);
        for (String weighting : c.weightings()) {
          boolean binary = weighting.equals("binary");
          List<MetaPath> paths = new ArrayList<>();
          pathsBy.add(paths);
          for (List<String> mp : d.metaPaths()) {
            MetaPath m = d.graph().metaPath(
                mp, MetaPath.Normalization.GCN, binary, MetaPath.Strategy.AUTO, DType.F32, Device.CPU);
            paths.add(m);
            infos.add(new PathInfo(pathName(mp), weighting, m.isChained(), m.materializedCost(), m.chainCost()));
          }
        }
        // every (weighting, method, seed) run is independent: up to c.jobs() of them at a time, each on
        // its own thread with its own scope; the results are gathered in the sequential order
        Progress shared = (phase, done, total) -> {
          synchronized (p) {
            p.step(phase, done, total);
          }
        };
        List<Future<RunOutcome>> futures = new ArrayList<>();
        for (int w = 0; w < c.weightings().size(); w++) {
          String weighting = c.weightings().get(w);
          List<MetaPath> paths = pathsBy.get(w);
          for (String method : c.methods()) {
            boolean ada = method.equals("adameow");
            String label = ada ? "AdaMEOW" : "MEOW";
            for (int s = 0; s < c.seeds(); s++) {
              long seed = c.seed() + s;
              SparseOperator fg = featureOp;
              Contexts ctx = contexts;
              futures.add(pool.submit(() -> {
                try (Scope worker = Scope.open()) {
                  long ts = System.nanoTime();
                  Trained tr =
                      train(d, c, fg, ctx, paths, positives, ada, seed, label + " " + weighting + " seed " + seed, shared);
                  double secs = (System.nanoTime() - ts) / 1e9;
                  return new RunOutcome(tr, evaluate(d, c, tr.embedding, seed), secs);
                }
              }));
            }
          }
        }
        int k = 0;
        for (String weighting : c.weightings()) {
          for (String method : c.methods()) {
            boolean ada = method.equals("adameow");
            Map<Integer, List<Score>> scores = new LinkedHashMap<>();
            double secs = 0;
            for (int s = 0; s < c.seeds(); s++) {
              RunOutcome o = await(futures.get(k++));
              secs += o.seconds();
              for (var e : o.scores().entrySet())
                scores.computeIfAbsent(e.getKey(), q -> new ArrayList<>()).add(e.getValue());
              if (emb2d == null && !ada) {
                emb2d = pca2(o.trained().embedding, d.numNodes(), c.hidden());
                curve = o.trained().curve;
                checks = o.trained().checks;
              }
            }
            results.add(new MethodResult(ada ? "AdaMEOW" : "MEOW", weighting, scores, secs));
          }
        }
      } finally {
        pool.shutdownNow();
        for (List<MetaPath> paths : pathsBy)
          for (MetaPath m : paths) m.close();
        if (featureOp != null) featureOp.close();
        if (contexts != null) contexts.close();
      }
    }
    return new Result(
        d.name(), d.numNodes(), d.classes(), infos, results, emb2d, curve, checks, (System.nanoTime() - t0) / 1e9);
  }

  /** The target's features [n, F], rows scaled to unit L2 norm, as an operator on [F, h] weights. */
  static SparseOperator featureOperator(Dataset d) {
    return unitRowFeatures(sparseOf(d.features(), d.numNodes(), d.featureDim()));
  }

  /** Row-major dense [rows, cols] values as a sparse matrix of their non-zeros. */
  static SparseMatrix sparseOf(double[] v, int rows, int cols) {
    int nnz = 0;
    for (double x : v)
      if (x != 0) nnz++;
    long[] r = new long[nnz], c = new long[nnz];
    double[] w = new double[nnz];
    for (int i = 0, k = 0; i < rows; i++)
      for (int j = 0; j < cols; j++)
        if (v[i * cols + j] != 0) {
          r[k] = i;
          c[k] = j;
          w[k++] = v[i * cols + j];
        }
    return SparseMatrix.fromCoo(rows, cols, r, c, w);
  }

  static String pathName(List<String> types) {
    return String.join("-", types).toUpperCase(Locale.ROOT);
  }

  private static MethodResult baseline(String name, Dataset d, Config c, Tensor emb, Progress p) {
    if (emb == null) return new MethodResult(name, "-", Map.of(), 0);
    long t = System.nanoTime();
    double[] e = emb.castTo(DType.F64).toDoubleArray();
    int width = (int) emb.size(1);
    Map<Integer, List<Score>> scores = new LinkedHashMap<>();
    // the probe is deterministic and a baseline has no training: one evaluation stands for every seed
    Map<Integer, Score> once = evaluate(d, c, new Embedding(e, width), c.seed());
    for (int s = 0; s < c.seeds(); s++)
      for (var r : once.entrySet()) scores.computeIfAbsent(r.getKey(), k -> new ArrayList<>()).add(r.getValue());
    p.step("baseline " + name, 1, 1);
    return new MethodResult(name, "-", scores, (System.nanoTime() - t) / 1e9);
  }

  /** Frozen embeddings, row-major [n, width]. */
  record Embedding(double[] values, int width) {}

  /** k-means restarts per clustering (faiss' nredo; the authors use 5). */
  static final int RESTARTS = 1;

  /** Checkpoints are scored on the validation split every this many epochs (and after the last). */
  static final int CHECK_EVERY = 10;

  private record Trained(Embedding embedding, double[] curve, double[][] checks) {}

  private record RunOutcome(Trained trained, Map<Integer, Score> scores, double seconds) {}

  private static RunOutcome await(Future<RunOutcome> f) {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("recipe meow: interrupted", e);
    } catch (ExecutionException e) {
      Throwable t = e.getCause();
      if (t instanceof RuntimeException r) throw r;
      if (t instanceof Error err) throw err;
      throw new IllegalStateException("recipe meow: a run failed", t);
    }
  }

  /** Features [n, F] with rows scaled to unit L2 norm, as an operator over the rows of a weight [F, h]. */
  static SparseOperator unitRowFeatures(SparseMatrix f) {
    double[] v = f.values();
    long[] ptr = f.rowPtr();
    for (int i = 0; i < f.rows(); i++) {
      double n2 = 0;
      for (long q = ptr[i]; q < ptr[i + 1]; q++) n2 += v[(int) q] * v[(int) q];
      if (n2 > 0)
        for (long q = ptr[i]; q < ptr[i + 1]; q++) v[(int) q] /= Math.sqrt(n2);
    }
    int[] ci = f.colIndices(); // (a copy per call)
    long[] idx = new long[ci.length];
    for (int q = 0; q < idx.length; q++) idx[q] = ci[q];
    return SparseOperator.of(SparseMatrix.fromCsr(f.rows(), f.cols(), ptr, idx, v), DType.F32, Device.CPU);
  }

  /**
   * What the fine view's meta-path contexts are made of, shared by the runs: per other node type its
   * features (or none: a learned embedding) and its node count, and per step x → y of a meta-path the
   * mean over a node's y-neighbours (the row-normalised relation).
   */
  static final class Contexts implements AutoCloseable {
    final List<List<String>> paths;
    final Map<String, SparseOperator> features = new LinkedHashMap<>();
    final Map<String, Integer> counts = new LinkedHashMap<>();
    final Map<String, SparseOperator> steps = new LinkedHashMap<>();

    Contexts(Dataset d) {
      paths = d.metaPaths();
      try {
        for (List<String> mp : paths)
          for (int k = 1; k + 1 < mp.size(); k++) {
            String x = mp.get(k);
            if (!counts.containsKey(x)) {
              counts.put(x, d.graph().numNodes(x));
              SparseMatrix f = d.typeFeatures().get(x);
              if (f != null) features.put(x, unitRowFeatures(f));
            }
            String key = mp.get(k - 1) + ">" + x;
            if (!steps.containsKey(key))
              steps.put(key, SparseOperator.of(
                  d.graph().adjacency(mp.get(k - 1), x).binarized().rowNormalized(), DType.F32, Device.CPU));
          }
      } catch (RuntimeException e) {
        close();
        throw e;
      }
    }

    @Override
    public void close() {
      for (SparseOperator o : features.values()) o.close();
      for (SparseOperator o : steps.values()) o.close();
    }
  }

  /**
   * The MEOW model: input layer, one two-layer GCN encoder shared by every view, semantic attention
   * over the fine view's meta-paths, projection head; with contexts, an input layer per other node
   * type and a context map per (meta-path, intermediate position).
   */
  private static final class Model extends Module {
    final boolean learnedInput;
    final SparseOperator features; // the sparse features [n, F], or null
    final Contexts contexts; // or null
    final int n;
    final GCNConv enc0, enc1;
    final SemanticAttention attention;

    Model(SparseOperator features, int n, int hidden, Contexts contexts, long seed) {
      this.features = features;
      this.contexts = contexts;
      this.n = n;
      this.learnedInput = features == null;
      // unit-variance weights on unit-L2 feature rows: h0 starts at unit scale (with the bag of
      // words normalised to sum 1 and a 1/sqrt(F) init, h0 was ~1e-2 and every projected
      // embedding collapsed onto the projection's bias: a flat InfoNCE at log B)
      double bound = Math.sqrt(3.0);
      if (learnedInput) {
        register("embedding", Tensor.randn(new long[] {n, hidden}, DType.F32, Device.CPU, seed).mul(0.1));
      } else {
        register("inputWeight",
            Tensor.uniform(new long[] {features.cols(), hidden}, -bound, bound, DType.F32, Device.CPU, seed));
        register("inputBias", Tensor.zeros(new long[] {hidden}, DType.F32, Device.CPU));
      }
      enc0 = child("enc0", new GCNConv(hidden, hidden, true, true, DType.F32, Device.CPU, seed + 11));
      enc1 = child("enc1", new GCNConv(hidden, hidden, true, true, DType.F32, Device.CPU, seed + 12));
      attention = child("attention", new SemanticAttention(hidden, hidden, DType.F32, Device.CPU, seed + 5));
      child("proj0", new Linear(hidden, hidden, true, DType.F32, Device.CPU, seed + 3));
      child("proj1", new Linear(hidden, hidden, true, DType.F32, Device.CPU, seed + 4));
      if (contexts != null) {
        long t = 0;
        for (var e : contexts.counts.entrySet()) {
          String x = e.getKey();
          SparseOperator f = contexts.features.get(x);
          if (f != null) {
            register("type_" + x + "_weight",
                Tensor.uniform(new long[] {f.cols(), hidden}, -bound, bound, DType.F32, Device.CPU, seed + 100 + t++));
            register("type_" + x + "_bias", Tensor.zeros(new long[] {hidden}, DType.F32, Device.CPU));
          } else {
            register("type_" + x + "_embedding",
                Tensor.randn(new long[] {e.getValue(), hidden}, DType.F32, Device.CPU, seed + 100 + t++));
          }
        }
        for (int m = 0; m < contexts.paths.size(); m++)
          for (int k = 1; k + 1 < contexts.paths.get(m).size(); k++)
            child("context" + m + "_" + k, new Linear(hidden, hidden, false, DType.F32, Device.CPU, seed + 200 + 16 * m + k));
      }
    }

    /** The projection head into the contrastive space. */
    @Override
    public Tensor forward(Tensor x, Weights w) {
      return run("proj1", run("proj0", x, w).elu1(), w);
    }

    /**
     * The shared encoder over the mean of the given meta-path operators Ā: Ā ELU(Ā h W0ᵀ + b0) W1ᵀ
     * + b1 (one operator: a fine-view meta-path; all of them: the coarse view).
     */
    Tensor encode(List<MetaPath> ops, Tensor h) {
      Tensor a = propagate(ops, Functional.linear(h, enc0.namedParameters().get("weight"), null))
                     .add(enc0.namedParameters().get("bias"))
                     .elu1();
      return propagate(ops, Functional.linear(a, enc1.namedParameters().get("weight"), null))
          .add(enc1.namedParameters().get("bias"));
    }

    private static Tensor propagate(List<MetaPath> ops, Tensor x) {
      Tensor sum = null;
      for (MetaPath m : ops) {
        Tensor y = m.apply(x);
        sum = sum == null ? y : sum.add(y);
      }
      return ops.size() == 1 ? sum : sum.mul(1.0 / ops.size());
    }

    /**
     * The fine view: the per-meta-path encodings, rows at unit norm, combined by semantic attention.
     * With contexts (typeInputs not null), meta-path m = (t0, t1, …, tL) encodes h_m = ELU(h + Σ_k
     * C_mk · mean_{t0→t1→…→tk}(H_tk)) instead of h: for each intermediate position k, the embeddings
     * H of the type t_k averaged along the path's steps up to k (for ACM's P–A–P: the mean of a
     * paper's authors' embeddings; P–S–P: its subject's), through a map C_mk of its own.
     */
    Tensor fine(List<MetaPath> paths, Tensor h, Map<String, Tensor> typeInputs) {
      List<Tensor> views = new ArrayList<>();
      for (int m = 0; m < paths.size(); m++) {
        Tensor hm = h;
        if (typeInputs != null) {
          List<String> mp = contexts.paths.get(m);
          Tensor sum = h;
          for (int k = 1; k + 1 < mp.size(); k++) {
            Tensor c = typeInputs.get(mp.get(k));
            for (int q = k; q >= 1; q--) c = contexts.steps.get(mp.get(q - 1) + ">" + mp.get(q)).apply(c);
            sum = sum.add(run("context" + m + "_" + k, c, Weights.none()));
          }
          hm = sum.elu1();
        }
        views.add(normalizeRows(encode(List.of(paths.get(m)), hm)));
      }
      return attention.forward(Tensor.stack(views, 0), Weights.none());
    }

    /** ELU(x W + b) with x sparse: the SpMM of the features over the rows of W. */
    Tensor input() {
      if (learnedInput) return p("embedding", Weights.none()).elu1();
      return features.apply(p("inputWeight", Weights.none())).add(p("inputBias", Weights.none())).elu1();
    }

    /** Each context type's input embeddings, ELU(x_t W_t + b_t) or ELU(E_t); null without contexts. */
    Map<String, Tensor> typeInputs() {
      if (contexts == null) return null;
      Map<String, Tensor> out = new LinkedHashMap<>();
      for (String x : contexts.counts.keySet()) {
        SparseOperator f = contexts.features.get(x);
        Tensor h = f != null
            ? f.apply(p("type_" + x + "_weight", Weights.none())).add(p("type_" + x + "_bias", Weights.none()))
            : p("type_" + x + "_embedding", Weights.none());
        out.put(x, h.elu1());
      }
      return out;
    }
  }

  private static Trained train(Dataset d, Config c, SparseOperator x, Contexts contexts, List<MetaPath> paths,
      long[][] positives, boolean ada, long seed, String phase, Progress p) {
    int n = d.numNodes(), b = Math.min(c.batch(), n);
    boolean clustered = !c.clusters().isEmpty();
    double[] curve = new double[c.epochs()];
    try (Model model = new Model(x, n, c.hidden(), contexts, seed * 7919L); Scope runScope = Scope.open()) {
      Tensor beta = Tensor.scalar(c.beta(), DType.F32, Device.CPU);
      Scope.transfer(beta.storage(), null);
      beta.requiresGrad(ada);
      SplittableRandom rng = new SplittableRandom(seed);
      long dropSeed = seed * 1_000_003L;
      double bestVal = Double.NEGATIVE_INFINITY;
      double[] best = null;
      List<double[]> checks = new ArrayList<>();
      List<SphericalKMeans.Result> levels = List.of();
      int[] slot = new int[n]; // a node's place in the current batch, or -1
      Arrays.fill(slot, -1);
      try (Adam opt = new Adam(model.parameters(), c.lr(), 0.9, 0.999, 1e-8, 0.0);
           Adam betaOpt = ada ? new Adam(List.of(beta), 0.05) : null) {
        for (int epoch = 0; epoch < c.epochs(); epoch++) {
          try (Scope step = Scope.open()) {
            Tensor h0 = model.input();
            Tensor hf = dropout(h0, c.featureDrop(), dropSeed++), hc = dropout(h0, c.featureDrop(), dropSeed++);
            Map<String, Tensor> types = model.typeInputs();
            if (types != null)
              for (var e : types.entrySet()) e.setValue(dropout(e.getValue(), c.featureDrop(), dropSeed++));
            Tensor zc = model.encode(paths, hc);
            Tensor zf = model.fine(paths, hf, types);
            if (clustered && epoch % c.clusterEvery() == 0) {
              // MEOW's clusters: of every node's projected fine embedding (as the authors' code: faiss on z_pro)
              List<SphericalKMeans.Result> fresh = new ArrayList<>();
              try (var ng = Autograd.noGrad()) {
                Tensor all = normalizeRows(model.forward(zf.detach()));
                for (int l = 0; l < c.clusters().size(); l++)
                  fresh.add(SphericalKMeans.fit(all, c.clusters().get(l), 20, RESTARTS, c.tau(), seed * 131 + 17L * epoch + l));
              }
              for (SphericalKMeans.Result r : levels) r.close();
              levels = fresh;
            }
            long[] batch = sample(rng, n, b);
            Tensor idx = Tensor.ofIndices(batch, b);
            // positives within the batch (symmetric, the diagonal included):
            // O(b · positives) through each node's slot in the batch (b² lookups cost seconds per epoch at b = n)
            for (int i = 0; i < b; i++) slot[(int) batch[i]] = i;
            float[] pm = new float[b * b];
            int[] posCount = new int[b]; // each row's positives, counted as the mask is set
            for (int i = 0; i < b; i++) {
              setPositive(pm, posCount, b, i, i);
              for (long q : positives[(int) batch[i]]) {
                int j = slot[(int) q];
                if (j >= 0) {
                  setPositive(pm, posCount, b, i, j);
                  setPositive(pm, posCount, b, j, i);
                }
              }
            }
            for (int i = 0; i < b; i++) slot[(int) batch[i]] = -1;
            Tensor pos = Tensor.of(pm, b, b);
            Tensor pc = normalizeRows(model.forward(zc.indexSelect(0, idx)));
            Tensor pf = normalizeRows(model.forward(zf.indexSelect(0, idx)));
            Tensor logW;
            if (clustered && !ada) {
              // MEOW's hard weights: w_ij = the number of clustering levels at which j is not in i's cluster
              // (0 when every level puts them together: a likely false negative, left out)
              logW = Tensor.of(clusterLogWeights(levels, batch), b, b);
            } else {
              // negative weights from the detached fine embeddings' cosine similarities
              Tensor sim;
              try (var ng = Autograd.noGrad()) {
                Tensor f = normalizeRows(zf.detach().indexSelect(0, idx));
                sim = f.matmul(f.mT());
              }
              Tensor scores = sim.mul(beta).add(pos.mul(-1e4)); // positives out of the negatives' softmax
              float[] negs = new float[b]; // log of each row's count of negatives
              for (int i = 0; i < b; i++) negs[i] = (float) Math.log(Math.max(1, b - posCount[i]));
              Tensor logNeg = Tensor.of(negs, b, 1);
              logW = scores.logSoftmax(1).add(logNeg); // sums to the negatives' count per row
            }
            // the weights are symmetric: row j of logW weighs the negatives of anchor j in either direction.
            // One logits matrix for both directions (pc, pf are unit rows): the fine-to-coarse one reads it
            // transposed, which costs a tiled copy instead of a second [b, b] matmul and its two backward ones
            Tensor sl = pc.mul(1.0 / c.tau()).matmul(pf.mT());
            Tensor loss = Functional.infoNceLogits(sl, pos, logW).mean()
                              .add(Functional.infoNceLogits(sl.mT(), pos, logW).mean())
                              .mul(0.5);
            if (c.protoWeight() > 0) {
              // ProtoNCE (Li et al. 2021, as MEOW): each coarse embedding against the prototypes of the fine
              // view's clusters, each prototype at its own concentration φ
              Tensor proto = null;
              for (SphericalKMeans.Result r : levels) {
                long[] own = new long[b];
                for (int i = 0; i < b; i++) own[i] = r.assignment()[(int) batch[i]];
                Tensor logits = pc.matmul(r.centroids().mT()).div(r.concentrations());
                Tensor l = Functional.crossEntropy(logits, Tensor.ofIndices(own, b));
                proto = proto == null ? l : proto.add(l);
              }
              loss = loss.add(proto.mul(c.protoWeight() / levels.size()));
            }
            opt.zeroGrad();
            beta.zeroGrad();
            loss.backward();
            opt.step();
            if (ada) {
              // ascent on the loss with the penalty λβ²: descend on −loss + λβ²
              Tensor g = beta.grad();
              if (g != null) {
                try (var ng = Autograd.noGrad()) {
                  g.mulInPlace(-1.0).addInPlace(beta.detach().mul(2 * c.betaPenalty()));
                }
                betaOpt.step();
              }
            }
            curve[epoch] = loss.item();
          }
          if ((epoch + 1) % CHECK_EVERY == 0 || epoch + 1 == c.epochs()) {
            // model selection on the validation split: the embedding of the checkpoint with the best
            // mean validation Macro-F1 (over the label rates) is the run's
            double[] emb;
            try (Scope s = Scope.open(); var ng = Autograd.noGrad()) {
              emb = model.fine(paths, model.input(), model.typeInputs()).castTo(DType.F64).toDoubleArray();
            }
            double v = 0;
            Map<Integer, Score> ev = evaluate(d, c, new Embedding(emb, c.hidden()), seed);
            for (Score sc : ev.values()) v += sc.validationMacro() / ev.size();
            checks.add(new double[] {epoch + 1, v});
            if (v > bestVal) {
              bestVal = v;
              best = emb;
            }
          }
          p.step(phase, epoch + 1, c.epochs());
        }
      } finally {
        for (SphericalKMeans.Result r : levels) r.close();
      }
      beta.zeroGrad();
      beta.close();
      return new Trained(new Embedding(best, c.hidden()), curve, checks.toArray(new double[0][]));
    }
  }

  /** Marks j a positive of i in the [b, b] mask, counting it in i's row the first time. */
  private static void setPositive(float[] pm, int[] posCount, int b, int i, int j) {
    if (pm[i * b + j] == 0) {
      pm[i * b + j] = 1;
      posCount[i]++;
    }
  }

  /**
   * log w_ij for a batch: w_ij = the number of clustering levels that put batch[j] in another cluster
   * than batch[i]; −10⁴ (for log 0) where every level puts them together.
   */
  static float[] clusterLogWeights(List<SphericalKMeans.Result> levels, long[] batch) {
    int b = batch.length, l = levels.size();
    int[][] own = new int[l][b];
    for (int k = 0; k < l; k++)
      for (int i = 0; i < b; i++) own[k][i] = (int) levels.get(k).assignment()[(int) batch[i]];
    float[] logOf = new float[l + 1];
    logOf[0] = -1e4f;
    for (int w = 1; w <= l; w++) logOf[w] = (float) Math.log(w);
    float[] out = new float[b * b];
    for (int i = 0; i < b; i++)
      for (int j = 0; j < b; j++) {
        int w = 0;
        for (int k = 0; k < l; k++) w += own[k][i] != own[k][j] ? 1 : 0;
        out[i * b + j] = logOf[w];
      }
    return out;
  }

  /** x with each element zeroed with probability p and the rest scaled by 1 / (1 − p). */
  static Tensor dropout(Tensor x, double p, long seed) {
    return Functional.dropout(x, p, seed);
  }

  /**
   * HeCo's positives: each node itself and its (k − 1) meta-path neighbours with the most path
   * instances on the first meta-path (ties to the lower id), sorted by id.
   */
  static long[][] positives(Dataset d, int k) {
    int n = d.numNodes();
    long[][] out = new long[n][];
    SparseMatrix m = k > 1 ? d.graph().metaPathMatrix(d.metaPaths().get(0).toArray(new String[0])) : null;
    long[] ptr = m == null ? null : m.rowPtr();
    int[] ci = m == null ? null : m.colIndices();
    double[] v = m == null ? null : m.values();
    for (int i = 0; i < n; i++) {
      List<long[]> cand = new ArrayList<>(); // {count bits, id}
      if (m != null)
        for (long q = ptr[i]; q < ptr[i + 1]; q++)
          if (ci[(int) q] != i) cand.add(new long[] {Double.doubleToLongBits(v[(int) q]), ci[(int) q]});
      cand.sort((a, bb) -> {
        int byCount = Double.compare(Double.longBitsToDouble(bb[0]), Double.longBitsToDouble(a[0]));
        return byCount != 0 ? byCount : Long.compare(a[1], bb[1]);
      });
      int take = Math.min(k - 1, cand.size());
      long[] p = new long[take + 1];
      p[0] = i;
      for (int t = 0; t < take; t++) p[t + 1] = cand.get(t)[1];
      Arrays.sort(p);
      out[i] = p;
    }
    return out;
  }

  static Tensor normalizeRows(Tensor x) {
    return x.mul(x.square().sum(1, true).add(1e-12).rsqrt());
  }

  private static long[] sample(SplittableRandom rng, int n, int b) {
    int[] perm = new int[n];
    for (int i = 0; i < n; i++) perm[i] = i;
    long[] out = new long[b];
    for (int i = 0; i < b; i++) {
      int j = i + rng.nextInt(n - i);
      int t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
      out[i] = perm[i];
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // evaluation

  /** The L2 penalties of the logistic regression, tried from the strongest down; validation picks one. */
  static final double[] PENALTIES = {1, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6};

  /**
   * Logistic regression per label rate. For each embedding form (as given; rows scaled to unit L2
   * norm) and each L2 penalty of {@link #PENALTIES}, a multinomial logistic regression is fitted to
   * convergence (L-BFGS, at most {@code lrSteps} iterations) on the train split; the fit with the
   * best validation Macro-F1 (ties to the earlier: raw form, stronger penalty) gives the test
   * scores. Nothing is chosen on the test split. The fit is deterministic: the seed does not enter.
   */
  static Map<Integer, Score> evaluate(Dataset d, Config c, Embedding e, long seed) {
    Map<Integer, Score> out = new LinkedHashMap<>();
    int w = e.width(), n = d.numNodes();
    double[][] forms = {e.values(), unitRows(e.values(), n, w)};
    for (var sp : d.splits().entrySet()) {
      long[][] split = sp.getValue();
      int[] ytr = ints(pick(d.labels(), split[0]));
      long[] yva = pick(d.labels(), split[1]), yte = pick(d.labels(), split[2]);
      double bestVal = -1;
      Score best = new Score(0, 0);
      for (double[] z : forms) {
        double[] xtr = rows(z, w, split[0]), xva = rows(z, w, split[1]), xte = rows(z, w, split[2]);
        for (double lambda : PENALTIES) {
          double[] theta = LogisticRegression.fit(xtr, ytr.length, w, ytr, d.classes(), lambda, c.lrSteps());
          Score v = f1(LogisticRegression.predict(theta, xva, yva.length, w, d.classes()), yva, d.classes());
          if (v.macro() > bestVal) {
            bestVal = v.macro();
            Score t = f1(LogisticRegression.predict(theta, xte, yte.length, w, d.classes()), yte, d.classes());
            best = new Score(t.macro(), t.micro(), v.macro());
          }
        }
      }
      out.put(sp.getKey(), best);
    }
    return out;
  }

  private static double[] unitRows(double[] z, int n, int w) {
    double[] y = z.clone();
    for (int i = 0; i < n; i++) {
      double s = 0;
      for (int j = 0; j < w; j++) s += y[i * w + j] * y[i * w + j];
      if (s > 0)
        for (int j = 0; j < w; j++) y[i * w + j] /= Math.sqrt(s);
    }
    return y;
  }

  private static double[] rows(double[] z, int w, long[] idx) {
    double[] r = new double[idx.length * w];
    for (int i = 0; i < idx.length; i++) System.arraycopy(z, (int) idx[i] * w, r, i * w, w);
    return r;
  }

  private static int[] ints(long[] v) {
    int[] r = new int[v.length];
    for (int i = 0; i < v.length; i++) r[i] = (int) v[i];
    return r;
  }

  private static long[] pick(long[] v, long[] idx) {
    long[] r = new long[idx.length];
    for (int i = 0; i < idx.length; i++) r[i] = v[(int) idx[i]];
    return r;
  }

  private static long[] predict(Tensor logits) {
    return logits.max(1, false).indices().toLongArray();
  }

  /** Macro-F1 (mean of the per-class F1 over the classes that occur in truth or predictions) and Micro-F1. */
  static Score f1(long[] pred, long[] truth, int classes) {
    long[] tp = new long[classes], fp = new long[classes], fn = new long[classes];
    long correct = 0;
    for (int i = 0; i < pred.length; i++) {
      int p = (int) pred[i], t = (int) truth[i];
      if (p == t) {
        tp[p]++;
        correct++;
      } else {
        fp[p]++;
        fn[t]++;
      }
    }
    // over the classes present in the truth or the predictions, as scikit-learn's macro average
    // (IMDB's labels are 1..3: class 0 neither occurs nor counts)
    double macro = 0;
    int present = 0;
    for (int k = 0; k < classes; k++) {
      double denom = 2.0 * tp[k] + fp[k] + fn[k];
      if (denom == 0) continue;
      present++;
      macro += 2.0 * tp[k] / denom;
    }
    return new Score(present == 0 ? 0 : macro / present, pred.length == 0 ? 0 : (double) correct / pred.length);
  }

  /** The first two principal components of [n, w] rows (power iteration on the covariance). */
  static double[] pca2(Embedding e, int n, int w) {
    double[] z = e.values();
    double[] mean = new double[w];
    for (int i = 0; i < n; i++)
      for (int j = 0; j < w; j++) mean[j] += z[i * w + j] / n;
    double[][] cov = new double[w][w];
    for (int i = 0; i < n; i++)
      for (int a = 0; a < w; a++) {
        double da = z[i * w + a] - mean[a];
        for (int bb = 0; bb < w; bb++) cov[a][bb] += da * (z[i * w + bb] - mean[bb]) / n;
      }
    double[][] comps = new double[2][];
    for (int k = 0; k < 2; k++) {
      double[] v = new double[w];
      Arrays.fill(v, 1.0 / Math.sqrt(w));
      v[k % w] += 0.5;
      for (int it = 0; it < 300; it++) {
        double[] nv = new double[w];
        for (int a = 0; a < w; a++)
          for (int bb = 0; bb < w; bb++) nv[a] += cov[a][bb] * v[bb];
        if (k == 1) {
          double dot = 0;
          for (int a = 0; a < w; a++) dot += nv[a] * comps[0][a];
          for (int a = 0; a < w; a++) nv[a] -= dot * comps[0][a];
        }
        double norm = 0;
        for (double x : nv) norm += x * x;
        norm = Math.sqrt(norm);
        if (norm == 0) break;
        for (int a = 0; a < w; a++) v[a] = nv[a] / norm;
      }
      comps[k] = v;
    }
    double[] out = new double[2 * n];
    for (int i = 0; i < n; i++)
      for (int k = 0; k < 2; k++) {
        double s = 0;
        for (int a = 0; a < w; a++) s += (z[i * w + a] - mean[a]) * comps[k][a];
        out[2 * i + k] = s;
      }
    return out;
  }

  /**
   * Mean and standard deviation (population) of one metric over seeds.
   *
   * @param scores one per seed
   * @param macro true for Macro-F1, false for Micro-F1
   * @return {mean, std}
   */
  public static double[] meanStd(List<Score> scores, boolean macro) {
    double m = 0;
    for (Score s : scores) m += (macro ? s.macro() : s.micro()) / scores.size();
    double v = 0;
    for (Score s : scores) v += Math.pow((macro ? s.macro() : s.micro()) - m, 2) / scores.size();
    return new double[] {m, Math.sqrt(v)};
  }
}
