package org.metakernels.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.metakernels.graph.HeteroSbm;
import org.metakernels.graph.SparseMatrix;
import org.metakernels.io.EdgeList;
import org.metakernels.io.NumPy;
import org.metakernels.recipes.Meow;

/** {@code recipe meow} end to end on a data folder written in the published layout, and its bad input. */
class MeowCliTest {
  @TempDir Path tmp;

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

  /** A synthetic data set written as ACM's files: labels.npy, p_feat.npz, pa.txt, ps.txt, splits. */
  static Meow.Dataset writeAcmLayout(Path dir) throws Exception {
    Meow.Dataset d = Meow.synthetic(new HeteroSbm.Config(300, 3, 60, 9, 3, 0.8, 40, 6, 0.2), 5L);
    double[] labels = new double[d.numNodes()];
    for (int i = 0; i < labels.length; i++) labels[i] = d.labels()[i]; // float64, as the published file
    NumPy.write(dir.resolve("labels.npy"), NumPy.Array.ofDoubles(labels, labels.length));
    int n = d.numNodes(), f = d.featureDim();
    List<long[]> nz = new ArrayList<>();
    List<Double> v = new ArrayList<>();
    for (int i = 0; i < n; i++)
      for (int j = 0; j < f; j++)
        if (d.features()[i * f + j] != 0) {
          nz.add(new long[] {i, j});
          v.add(d.features()[i * f + j]);
        }
    long[] r = new long[nz.size()], c = new long[nz.size()];
    double[] val = new double[nz.size()];
    for (int k = 0; k < r.length; k++) {
      r[k] = nz.get(k)[0];
      c[k] = nz.get(k)[1];
      val[k] = v.get(k);
    }
    NumPy.writeSparse(dir.resolve("p_feat.npz"), SparseMatrix.fromCoo(n, f, r, c, val));
    for (String[] rel : new String[][] {{"pa", "author"}, {"ps", "subject"}}) {
      SparseMatrix m = d.graph().adjacency("paper", rel[1]);
      long[] ptr = m.rowPtr();
      int[] ci = m.colIndices();
      double[] counts = m.values();
      int links = 0;
      for (double x : counts) links += (int) x; // a repeated link is a repeated line
      long[] src = new long[links], dst = new long[links];
      int e = 0;
      for (int i = 0; i < m.rows(); i++)
        for (long k = ptr[i]; k < ptr[i + 1]; k++)
          for (int t = 0; t < (int) counts[(int) k]; t++) {
            src[e] = i;
            dst[e++] = ci[(int) k];
          }
      new EdgeList(src, dst, null).write(dir.resolve(rel[0] + ".txt"));
    }
    String[] names = {"train_", "val_", "test_"};
    for (var e : d.splits().entrySet())
      for (int k = 0; k < 3; k++)
        NumPy.write(
            dir.resolve(names[k] + e.getKey() + ".npy"), NumPy.Array.ofLongs(e.getValue()[k], e.getValue()[k].length));
    return d;
  }

  @Test
  void loaderReadsTheWrittenLayout() throws Exception {
    Meow.Dataset d = writeAcmLayout(tmp);
    Meow.Dataset back = Meow.load(tmp);
    assertEquals("acm", back.name());
    assertArrayEquals(d.labels(), back.labels());
    assertEquals(d.featureDim(), back.featureDim());
    for (int i = 0; i < d.features().length; i++) assertEquals(d.features()[i], back.features()[i], 1e-15);
    assertTrue(
        d.graph().metaPathMatrix("paper", "author", "paper").bitwiseEquals(back.graph().metaPathMatrix("p", "a", "p")));
    assertArrayEquals(d.splits().get(40)[0], back.splits().get(40)[0]);
    assertTrue(back.typeFeatures().isEmpty());
    // the other types' features: a scipy sparse .npz (ACM's a_feat) and a dense .npy under an .npz name
    // (DBLP's t_feat); a type may have more rows than its relations name
    int authors = d.graph().numNodes("author"), subjects = d.graph().numNodes("subject");
    NumPy.writeSparse(tmp.resolve("a_feat.npz"),
        SparseMatrix.fromCoo(authors + 2, 4, new long[] {0, 1, authors + 1}, new long[] {3, 0, 2}, new double[] {1, 2, 3}));
    double[] dense = new double[subjects * 3];
    dense[4] = 0.5;
    NumPy.write(tmp.resolve("s_feat.npz"), NumPy.Array.ofDoubles(dense, subjects, 3));
    Meow.Dataset withTypes = Meow.load(tmp);
    assertEquals(List.of("a", "s"), new ArrayList<>(withTypes.typeFeatures().keySet()));
    assertEquals(authors + 2, withTypes.graph().numNodes("a"));
    assertEquals(3.0, withTypes.typeFeatures().get("a").get(authors + 1, 2));
    assertEquals(0.5, withTypes.typeFeatures().get("s").get(1, 1));
    assertEquals(1, withTypes.typeFeatures().get("s").nnz());
    // fewer rows than the relations name: refused, naming the file
    NumPy.write(tmp.resolve("s_feat.npz"), NumPy.Array.ofDoubles(new double[3], 1, 3));
    Exception e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class, () -> Meow.load(tmp));
    assertTrue(e.getMessage().contains("s_feat.npz") && e.getMessage().contains("1 rows"), e.getMessage());
  }

  @Test
  void runsEndToEndWithJsonAndPlot() throws Exception {
    Path data = Files.createDirectory(tmp.resolve("data"));
    writeAcmLayout(data);
    Path json = tmp.resolve("r.json");
    Run r = run("recipe", "meow", "--data", data.toString(), "--epochs", "3", "--seeds", "2", "--batch", "128",
        "--hidden", "16", "--methods", "meow,adameow", "--weights", "both", "--contexts", "--clusters", "5,10",
        "--proto", "0.5", "--out", tmp.resolve("out").toString(), "--json", json.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("AdaMEOW") && r.out().contains("P-S-P"), r.out());
    assertTrue(r.out().contains("meta-path contexts (a (learned), s (learned))")
            && r.out().contains("hard weights from k-means levels [5, 10]") && r.out().contains("weight 0.5"),
        r.out());
    String j = Files.readString(json);
    assertTrue(
        j.contains("\"macro_f1_mean\"") && j.contains("\"weights\": \"binary\"") && j.contains("\"form\": \"chain\"")
            && j.contains("\"contexts\": true, \"clusters\": [5, 10], \"proto_weight\": 0.5")
            && j.contains("\"methods\": [\"meow\", \"adameow\"], \"weightings\": [\"counts\", \"binary\"]"),
        j);
    assertTrue(Files.size(tmp.resolve("out").resolve("meow-embeddings-pca.png")) > 1000);
  }

  /** Runs in parallel (--jobs) give the very scores of the sequential run: each run owns its seeds. */
  @Test
  void parallelRunsGiveTheSequentialScores() throws Exception {
    Path data = Files.createDirectory(tmp.resolve("data"));
    writeAcmLayout(data);
    String[] scores = new String[2];
    for (int k = 0; k < 2; k++) {
      Path json = tmp.resolve("r" + k + ".json");
      Run r = run("recipe", "meow", "--data", data.toString(), "--epochs", "3", "--seeds", "2", "--batch", "128",
          "--hidden", "16", "--methods", "meow,adameow", "--weights", "both", "--jobs", k == 0 ? "1" : "3", "--out",
          tmp.resolve("out" + k).toString(), "--json", json.toString());
      assertEquals(0, r.code(), r.err());
      StringBuilder sb = new StringBuilder();
      for (String line : Files.readAllLines(json))
        if (line.contains("\"macro_f1\"")) sb.append(line.replaceAll("\"train_seconds\": [0-9.]+", "")).append('\n');
      scores[k] = sb.toString();
    }
    assertTrue(scores[0].contains("AdaMEOW") && scores[0].contains("binary"), scores[0]);
    assertEquals(scores[0], scores[1]);
  }

  @Test
  void badInputFailsWithOneLine() throws Exception {
    Run r = run("recipe", "meow", "--weights", "sometimes");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--weights must be counts, binary or both"), r.err());
    r = run("recipe", "meow", "--data", tmp.resolve("nowhere").toString());
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--data"), r.err());
    r = run("recipe", "meow", "--methods", "meow,bogus");
    assertEquals(2, r.code());
    r = run("recipe", "meow", "--clusters", "100,1");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--clusters: each level needs 2+ clusters"), r.err());
    r = run("recipe", "meow", "--clusters", "many");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--clusters: a comma-separated list"), r.err());
    r = run("recipe", "meow", "--proto", "-1");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--proto must be a finite number >= 0"), r.err());
    // a folder that is not a data set, and one without its labels: usage errors naming what is missing
    Path empty = Files.createDirectory(tmp.resolve("empty"));
    r = run("recipe", "meow", "--data", empty.toString(), "--out", tmp.resolve("o0").toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--data " + empty + ": not a MEOW/HeCo data folder"), r.err());
    assertEquals(1, r.err().lines().filter(l -> !l.startsWith("INFO")).count(), r.err());
    Path noLabels = Files.createDirectory(tmp.resolve("nolabels"));
    writeAcmLayout(noLabels);
    Files.delete(noLabels.resolve("labels.npy"));
    r = run("recipe", "meow", "--data", noLabels.toString(), "--out", tmp.resolve("o1").toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--data " + noLabels + ": no file " + noLabels.resolve("labels.npy")), r.err());
    r = run("recipe", "meow", "--methods", "both", "--cluster-every", "0");  // checked after --methods
    assertTrue(r.err().contains("--cluster-every"), "'both' passes --methods: " + r.err());
    // a data folder with a corrupt labels.npy: a runtime failure naming the file
    Path data = Files.createDirectory(tmp.resolve("bad"));
    writeAcmLayout(data);
    Files.writeString(data.resolve("labels.npy"), "not numpy");
    r = run("recipe", "meow", "--data", data.toString(), "--out", tmp.resolve("o").toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("labels.npy"), r.err());
  }
}
