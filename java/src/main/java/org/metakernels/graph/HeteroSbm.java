package org.metakernels.graph;

import java.util.SplittableRandom;
import org.metakernels.runtime.MetakernelsException;

/**
 * A seeded heterogeneous stochastic block model with planted classes, shaped like ACM: papers (the
 * target type, labelled) written by authors and filed under subjects, authors and subjects each
 * belonging to one class. Paper i has class i mod C; author a class a mod C, subject s class s mod
 * C. Every paper links to {@code authorsPerPaper} authors and to one subject, each drawn from its
 * own class with probability {@code homophily} and uniformly otherwise; its features are a bag of
 * {@code wordsPerPaper} words over {@code featureDim} words, each word drawn from the class's block
 * of the vocabulary with probability {@code featureSignal} and uniformly otherwise. The same
 * arguments give the same sample on every machine.
 *
 * <pre>{@code
 * HeteroSbm.Sample s = HeteroSbm.generate(new HeteroSbm.Config(600, 3, 300, 9, 3, 0.7, 64, 8, 0.3), 7L);
 * SparseMatrix pap = s.graph().metaPathMatrix("paper", "author", "paper");
 * }</pre>
 */
public final class HeteroSbm {
  private HeteroSbm() {}

  /**
   * The model's sizes and probabilities.
   *
   * @param papers the number of target nodes (type "paper")
   * @param classes C ≥ 2
   * @param authors the number of "author" nodes, ≥ C
   * @param subjects the number of "subject" nodes, ≥ C
   * @param authorsPerPaper links from each paper to authors, ≥ 1
   * @param homophily the probability that a link stays within the paper's class, in [0, 1]
   * @param featureDim the vocabulary size, ≥ C
   * @param wordsPerPaper words drawn per paper, ≥ 1
   * @param featureSignal the probability a word comes from the class's block, in [0, 1]
   */
  public record Config(int papers, int classes, int authors, int subjects, int authorsPerPaper, double homophily,
      int featureDim, int wordsPerPaper, double featureSignal) {}

  /**
   * A generated graph with its labels and features.
   *
   * @param graph types "paper", "author", "subject"; relations paper-writtenBy-author,
   *     paper-about-subject
   * @param labels the class of each paper
   * @param features the paper features, row-major [papers, featureDim], word counts
   * @param featureDim the feature width
   * @param classes C
   */
  public record Sample(HeteroGraph graph, long[] labels, double[] features, int featureDim, int classes) {}

  /**
   * Draws a sample. {@code HeteroSbm.generate(config, 7L)}.
   *
   * @param c the configuration
   * @param seed the random seed
   * @return the sample
   * @throws MetakernelsException for sizes or probabilities out of range
   */
  public static Sample generate(Config c, long seed) {
    if (c.classes() < 2 || c.papers() < c.classes() || c.authors() < c.classes() || c.subjects() < c.classes()
        || c.featureDim() < c.classes() || c.authorsPerPaper() < 1 || c.wordsPerPaper() < 1
        || !(c.homophily() >= 0 && c.homophily() <= 1) || !(c.featureSignal() >= 0 && c.featureSignal() <= 1))
      throw new MetakernelsException("HeteroSbm.generate: invalid configuration " + c);
    // the links and the feature matrix are Java arrays: their sizes must fit an int (the products
    // overflowed to a negative or wrong size)
    if ((long) c.papers() * c.authorsPerPaper() > Integer.MAX_VALUE - 8
        || (long) c.papers() * c.featureDim() > Integer.MAX_VALUE - 8)
      throw new MetakernelsException("HeteroSbm.generate: papers x authorsPerPaper or papers x featureDim past 2^31 - 9: " + c);
    SplittableRandom rng = new SplittableRandom(seed);
    int n = c.papers(), k = c.classes();
    long[] labels = new long[n];
    for (int i = 0; i < n; i++) labels[i] = i % k;
    int e = n * c.authorsPerPaper();
    long[] pa = new long[e], aa = new long[e];
    long[] ps = new long[n], ss = new long[n];
    double[] feat = new double[n * c.featureDim()];
    int block = c.featureDim() / k;
    for (int i = 0; i < n; i++) {
      int y = i % k;
      for (int t = 0; t < c.authorsPerPaper(); t++) {
        pa[i * c.authorsPerPaper() + t] = i;
        aa[i * c.authorsPerPaper() + t] = pick(rng, c.authors(), k, y, c.homophily());
      }
      ps[i] = i;
      ss[i] = pick(rng, c.subjects(), k, y, c.homophily());
      for (int w = 0; w < c.wordsPerPaper(); w++) {
        int word = rng.nextDouble() < c.featureSignal() ? y * block + rng.nextInt(block) : rng.nextInt(c.featureDim());
        feat[i * c.featureDim() + word] += 1.0;
      }
    }
    HeteroGraph g = HeteroGraph.builder()
                        .nodeType("paper", n)
                        .nodeType("author", c.authors())
                        .nodeType("subject", c.subjects())
                        .relation("writtenBy", "paper", "author", pa, aa)
                        .relation("about", "paper", "subject", ps, ss)
                        .build();
    return new Sample(g, labels, feat, c.featureDim(), k);
  }

  /** A node of [0, count) of class y (ids ≡ y mod k) with probability p, else uniform. */
  private static long pick(SplittableRandom rng, int count, int k, int y, double p) {
    if (rng.nextDouble() < p) {
      int inClass = (count - y + k - 1) / k; // ids y, y + k, ... below count
      return y + (long) k * rng.nextInt(inClass);
    }
    return rng.nextInt(count);
  }
}
