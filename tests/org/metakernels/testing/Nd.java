package org.metakernels.testing;

import java.util.Arrays;
import java.util.Random;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;
import java.util.function.ToDoubleFunction;
import java.util.function.UnaryOperator;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Tensor;

/**
 * A row-major float64 array on the Java heap, with reference implementations of the dense ops
 * written as plain loops. It never calls the library's ops: tests build their inputs here, copy
 * them into tensors with {@link #tensor(DType)}, and compare the library's results with what
 * these loops compute.
 */
public final class Nd {
  public final int[] shape;
  public final double[] data;

  public Nd(double[] data, int... shape) {
    if (numel(shape) != data.length)
      throw new IllegalArgumentException(data.length + " values for shape " + Arrays.toString(shape));
    this.shape = shape.clone();
    this.data = data;
  }

  public static Nd zeros(int... shape) {
    return new Nd(new double[numel(shape)], shape);
  }

  /** Uniform values in [lo, hi). */
  public static Nd uniform(Random r, double lo, double hi, int... shape) {
    double[] d = new double[numel(shape)];
    for (int i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * r.nextDouble();
    return new Nd(d, shape);
  }

  /** Standard normal values. */
  public static Nd normal(Random r, int... shape) {
    double[] d = new double[numel(shape)];
    for (int i = 0; i < d.length; i++) d[i] = r.nextGaussian();
    return new Nd(d, shape);
  }

  /** Values whose magnitude lies in [lo, hi) with a random sign (keeps away from 0). */
  public static Nd awayFromZero(Random r, double lo, double hi, int... shape) {
    double[] d = new double[numel(shape)];
    for (int i = 0; i < d.length; i++) d[i] = (r.nextBoolean() ? 1 : -1) * (lo + (hi - lo) * r.nextDouble());
    return new Nd(d, shape);
  }

  public static int numel(int[] shape) {
    int n = 1;
    for (int s : shape) n *= s;
    return n;
  }

  public int numel() {
    return data.length;
  }

  public int rank() {
    return shape.length;
  }

  public long[] longShape() {
    return toLong(shape);
  }

  public static long[] toLong(int[] s) {
    long[] l = new long[s.length];
    for (int i = 0; i < s.length; i++) l[i] = s[i];
    return l;
  }

  public static int[] strides(int[] shape) {
    int[] st = new int[shape.length];
    int acc = 1;
    for (int d = shape.length - 1; d >= 0; d--) {
      st[d] = acc;
      acc *= shape[d];
    }
    return st;
  }

  /** Multi-index of flat position {@code flat}. */
  public static int[] unravel(int flat, int[] shape) {
    int[] idx = new int[shape.length];
    for (int d = shape.length - 1; d >= 0; d--) {
      idx[d] = shape[d] == 0 ? 0 : flat % shape[d];
      flat = shape[d] == 0 ? 0 : flat / shape[d];
    }
    return idx;
  }

  public double at(int... idx) {
    int[] st = strides(shape);
    int off = 0;
    for (int d = 0; d < idx.length; d++) off += idx[d] * st[d];
    return data[off];
  }

  /** The values rounded to float32 (so a float32 tensor holds exactly these values). */
  public Nd roundToFloat() {
    double[] d = new double[data.length];
    for (int i = 0; i < d.length; i++) d[i] = (float) data[i];
    return new Nd(d, shape);
  }

  public Nd copy() {
    return new Nd(data.clone(), shape);
  }

  /** A contiguous tensor of {@code type} on the CPU holding these values. */
  public Tensor tensor(DType type) {
    long[] s = longShape();
    if (type == DType.F64) return Tensor.of(data.clone(), s);
    if (type == DType.F32) {
      float[] f = new float[data.length];
      for (int i = 0; i < f.length; i++) f[i] = (float) data[i];
      return Tensor.of(f, s);
    }
    throw new IllegalArgumentException("Nd.tensor: " + type);
  }

  public Tensor f64() {
    return tensor(DType.F64);
  }

  // ---- elementwise -----------------------------------------------------------------------

  public Nd map(DoubleUnaryOperator f) {
    double[] d = new double[data.length];
    for (int i = 0; i < d.length; i++) d[i] = f.applyAsDouble(data[i]);
    return new Nd(d, shape);
  }

  public static int[] broadcastShape(int[] a, int[] b) {
    int r = Math.max(a.length, b.length);
    int[] out = new int[r];
    for (int i = 0; i < r; i++) {
      int da = i < r - a.length ? 1 : a[i - (r - a.length)];
      int db = i < r - b.length ? 1 : b[i - (r - b.length)];
      if (da != db && da != 1 && db != 1) throw new IllegalArgumentException("no broadcast");
      out[i] = da == 1 ? db : da;
    }
    return out;
  }

  /** The element of this array that broadcasts to {@code outIdx} of a larger shape. */
  public double atBroadcast(int[] outIdx) {
    int off = outIdx.length - shape.length;
    int[] st = strides(shape);
    int p = 0;
    for (int d = 0; d < shape.length; d++) p += (shape[d] == 1 ? 0 : outIdx[d + off]) * st[d];
    return data[p];
  }

  public static Nd zip(Nd a, Nd b, DoubleBinaryOperator f) {
    int[] out = broadcastShape(a.shape, b.shape);
    double[] d = new double[numel(out)];
    for (int i = 0; i < d.length; i++) {
      int[] idx = unravel(i, out);
      d[i] = f.applyAsDouble(a.atBroadcast(idx), b.atBroadcast(idx));
    }
    return new Nd(d, out);
  }

  public static Nd where(Nd c, Nd a, Nd b) {
    int[] out = broadcastShape(broadcastShape(c.shape, a.shape), b.shape);
    double[] d = new double[numel(out)];
    for (int i = 0; i < d.length; i++) {
      int[] idx = unravel(i, out);
      d[i] = c.atBroadcast(idx) != 0 ? a.atBroadcast(idx) : b.atBroadcast(idx);
    }
    return new Nd(d, out);
  }

  /** This array broadcast to {@code out} (materialised). */
  public Nd expand(int... out) {
    double[] d = new double[numel(out)];
    for (int i = 0; i < d.length; i++) d[i] = atBroadcast(unravel(i, out));
    return new Nd(d, out);
  }

  // ---- layout ----------------------------------------------------------------------------

  public Nd reshape(int... s) {
    return new Nd(data.clone(), s);
  }

  public Nd permute(int... perm) {
    int[] out = new int[perm.length];
    for (int i = 0; i < perm.length; i++) out[i] = shape[perm[i]];
    double[] d = new double[data.length];
    int[] src = new int[shape.length];
    for (int i = 0; i < d.length; i++) {
      int[] idx = unravel(i, out);
      for (int k = 0; k < perm.length; k++) src[perm[k]] = idx[k];
      d[i] = at(src);
    }
    return new Nd(d, out);
  }

  public Nd transpose(int a, int b) {
    int[] p = new int[shape.length];
    for (int i = 0; i < p.length; i++) p[i] = i;
    p[a] = b;
    p[b] = a;
    return permute(p);
  }

  public Nd narrow(int dim, int start, int len) {
    int[] out = shape.clone();
    out[dim] = len;
    double[] d = new double[numel(out)];
    for (int i = 0; i < d.length; i++) {
      int[] idx = unravel(i, out);
      idx[dim] += start;
      d[i] = at(idx);
    }
    return new Nd(d, out);
  }

  public static Nd concat(int dim, Nd... parts) {
    int[] out = parts[0].shape.clone();
    out[dim] = 0;
    for (Nd p : parts) out[dim] += p.shape[dim];
    double[] d = new double[numel(out)];
    for (int i = 0; i < d.length; i++) {
      int[] idx = unravel(i, out);
      int k = 0;
      while (idx[dim] >= parts[k].shape[dim]) idx[dim] -= parts[k++].shape[dim];
      d[i] = parts[k].at(idx);
    }
    return new Nd(d, out);
  }

  // ---- reductions --------------------------------------------------------------------------

  /**
   * Applies {@code f} to the values of every lane over {@code dims} (in row-major order of the
   * reduced dims) and returns the reduced array.
   */
  public Nd reduce(int[] dims, boolean keepDim, ToDoubleFunction<double[]> f) {
    boolean[] red = new boolean[shape.length];
    for (int d : dims) red[d] = true;
    int[] keep = shape.clone();
    int laneLen = 1;
    for (int d = 0; d < shape.length; d++)
      if (red[d]) {
        keep[d] = 1;
        laneLen *= shape[d];
      }
    int nOut = numel(keep);
    double[][] lanes = new double[nOut][laneLen];
    int[] fill = new int[nOut];
    int[] kst = strides(keep);
    for (int i = 0; i < data.length; i++) {
      int[] idx = unravel(i, shape);
      int o = 0;
      for (int d = 0; d < shape.length; d++) if (!red[d]) o += idx[d] * kst[d];
      lanes[o][fill[o]++] = data[i];
    }
    double[] d = new double[nOut];
    for (int o = 0; o < nOut; o++) d[o] = f.applyAsDouble(lanes[o]);
    if (keepDim) return new Nd(d, keep);
    int[] out = new int[shape.length - dims.length];
    for (int i = 0, j = 0; i < shape.length; i++) if (!red[i]) out[j++] = shape[i];
    return new Nd(d, out);
  }

  public static double sum(double[] v) {
    double s = 0;
    for (double x : v) s += x;
    return s;
  }

  public static double mean(double[] v) {
    return sum(v) / v.length;
  }

  public static double var(double[] v, boolean unbiased) {
    double m = mean(v), s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return s / (v.length - (unbiased ? 1 : 0));
  }

  public static double max(double[] v) {
    double m = Double.NEGATIVE_INFINITY;
    for (double x : v) m = Math.max(m, x);
    return m;
  }

  public static double min(double[] v) {
    double m = Double.POSITIVE_INFINITY;
    for (double x : v) m = Math.min(m, x);
    return m;
  }

  /** Index of the first maximum. */
  public static double argmax(double[] v) {
    int b = 0;
    for (int i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
    return b;
  }

  public static double argmin(double[] v) {
    int b = 0;
    for (int i = 1; i < v.length; i++) if (v[i] < v[b]) b = i;
    return b;
  }

  public static double logsumexp(double[] v) {
    double m = max(v), s = 0;
    for (double x : v) s += Math.exp(x - m);
    return m + Math.log(s);
  }

  /** Replaces every lane along {@code dim} by {@code f(lane)} (same length). */
  public Nd alongDim(int dim, UnaryOperator<double[]> f) {
    int n = shape[dim];
    int[] st = strides(shape);
    double[] d = new double[data.length];
    int[] outer = shape.clone();
    outer[dim] = 1;
    for (int o = 0; o < numel(outer); o++) {
      int[] idx = unravel(o, outer);
      int base = 0;
      for (int k = 0; k < idx.length; k++) base += idx[k] * st[k];
      double[] lane = new double[n];
      for (int j = 0; j < n; j++) lane[j] = data[base + j * st[dim]];
      double[] r = f.apply(lane);
      for (int j = 0; j < n; j++) d[base + j * st[dim]] = r[j];
    }
    return new Nd(d, shape);
  }

  public static double[] softmax(double[] v) {
    double m = max(v), s = 0;
    double[] out = new double[v.length];
    for (int i = 0; i < v.length; i++) s += (out[i] = Math.exp(v[i] - m));
    for (int i = 0; i < v.length; i++) out[i] /= s;
    return out;
  }

  public static double[] logSoftmax(double[] v) {
    // (x - m) - log(s): x - logsumexp rounds at the scale of |m| (2.6e-5 off at m = 1e12)
    double m = max(v), s = 0;
    for (double x : v) s += Math.exp(x - m);
    double ls = Math.log(s);
    double[] out = new double[v.length];
    for (int i = 0; i < v.length; i++) out[i] = Double.isFinite(m) ? (v[i] - m) - ls : v[i] - (m + ls);
    return out;
  }

  // ---- matmul -------------------------------------------------------------------------------

  /**
   * NumPy matmul in float64 with broadcast batch dims; with {@code abs} the products are of
   * absolute values (the scale of the rounding error of each output element).
   */
  public static Nd matmul(Nd a, Nd b, boolean abs) {
    boolean aVec = a.rank() == 1, bVec = b.rank() == 1;
    Nd a2 = aVec ? a.reshape(1, a.shape[0]) : a;
    Nd b2 = bVec ? b.reshape(b.shape[0], 1) : b;
    int ra = a2.rank(), rb = b2.rank();
    int m = a2.shape[ra - 2], k = a2.shape[ra - 1], n = b2.shape[rb - 1];
    if (b2.shape[rb - 2] != k) throw new IllegalArgumentException("inner dims");
    int[] batch = broadcastShape(Arrays.copyOf(a2.shape, ra - 2), Arrays.copyOf(b2.shape, rb - 2));
    int nb = numel(batch);
    int[] outShape = Arrays.copyOf(batch, batch.length + 2);
    outShape[batch.length] = m;
    outShape[batch.length + 1] = n;
    Nd aE = a2.expand(concatShape(batch, m, k)), bE = b2.expand(concatShape(batch, k, n));
    double[] c = new double[nb * m * n];
    for (int bb = 0; bb < nb; bb++)
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
          double s = 0;
          for (int p = 0; p < k; p++) {
            double x = aE.data[bb * m * k + i * k + p], y = bE.data[bb * k * n + p * n + j];
            s += abs ? Math.abs(x) * Math.abs(y) : x * y;
          }
          c[bb * m * n + i * n + j] = s;
        }
    Nd out = new Nd(c, outShape);
    // drop the unit dims of 1-d operands
    int[] s = outShape;
    if (bVec) s = Arrays.copyOf(s, s.length - 1);
    if (aVec) {
      int[] t = new int[s.length - 1];
      int drop = bVec ? s.length - 1 : s.length - 2;
      for (int i = 0, j = 0; i < s.length; i++) if (i != drop) t[j++] = s[i];
      s = t;
    }
    return out.reshape(s);
  }

  private static int[] concatShape(int[] batch, int r, int c) {
    int[] s = Arrays.copyOf(batch, batch.length + 2);
    s[batch.length] = r;
    s[batch.length + 1] = c;
    return s;
  }

  @Override
  public String toString() {
    return "Nd" + Arrays.toString(shape);
  }
}
