package org.metakernels.testing;

import java.util.stream.IntStream;
import org.metakernels.tensor.DType;

/**
 * Host references for 16-bit softmax attention (plain loops, float64): the exact result of the
 * rounded inputs, and the naive 16-bit composition with every stage rounded (S, P, O; dP, dS, dq,
 * dk, dv), the yardstick of issue 3: a fused 16-bit kernel may be at most twice as far from the
 * float64 result as the naive composition.
 */
public final class HalfAttentionRef {
  private HalfAttentionRef() {}

  /** x rounded to nearest even with {@code mant} stored mantissa bits and minimum normal exponent {@code minExp}. */
  public static double round(double x, int mant, int minExp, double max) {
    if (x == 0 || !Double.isFinite(x)) return x;
    int e = Math.max(Math.getExponent(x), minExp);
    double ulp = Math.scalb(1.0, e - mant);
    double r = Math.rint(x / ulp) * ulp;
    return Math.abs(r) > max ? Math.copySign(Double.POSITIVE_INFINITY, r) : r;
  }

  /**
   * A copy of a [.., Nq, Nk] bias with some entries -inf: whole rows (i % 7 == 3: no key left),
   * rows that see only their last three keys (i % 5 == 1: the first key tiles wholly masked) and
   * scattered keys (j % 11 == 4). The emulator test (tests/cuda-emu) uses the same pattern.
   */
  public static double[] withInfiniteEntries(double[] bias, int nq, int nk) {
    double[] b = bias.clone();
    for (int at = 0; at < b.length; at++) {
      int i = at / nk % nq, j = at % nk;
      if (i % 7 == 3 || (i % 5 == 1 && j < nk - 3) || j % 11 == 4) b[at] = Double.NEGATIVE_INFINITY;
    }
    return b;
  }

  public interface Rounder {
    double r(double x);
  }

  public static Rounder rounder(DType t) {
    if (t == DType.BF16) return x -> round(x, 7, -126, 3.3895313892515355e38);
    return x -> round(x, 10, -14, 65504);
  }

  /** Shapes and masking of one case (host arrays are row-major). */
  public record Shape(int b, int h, int hkv, int nq, int nk, int d, boolean causal, long[] lengths, int biasB, int biasH) {
    int keyEnd(int bb, int i) {
      int len = lengths == null ? nk : (int) lengths[bb];
      if (!causal) return len;
      return Math.max(0, Math.min(len, i + len - nq + 1));
    }
  }

  /** out, dq, dk, dv of attention on the host, each stage rounded with {@code r} (identity: the F64 reference). */
  public static double[][] host(Shape s, double[] q, double[] k, double[] v, double[] bias, double[] dout, Rounder r) {
    int b = s.b, h = s.h, nq = s.nq, nk = s.nk, d = s.d, group = s.h / s.hkv;
    double scale = 1 / Math.sqrt(d);
    double[] out = new double[b * h * nq * d], dq = new double[b * h * nq * d];
    double[][] dsAll = new double[b * h][], pAll = new double[b * h][];
    IntStream.range(0, b * h).parallel().forEach(bh -> {
      int bb = bh / h, hh = bh % h, kh = bb * s.hkv + hh / group;
      double[] p = new double[nq * nk], ds = new double[nq * nk];
      for (int i = 0; i < nq; i++) {
        int end = s.keyEnd(bb, i);
        int qo = (bh * nq + i) * d;
        double m = Double.NEGATIVE_INFINITY;
        double[] srow = new double[nk];
        for (int j = 0; j < end; j++) {
          int ko = (kh * nk + j) * d;
          double t = 0;
          for (int e = 0; e < d; e++) t += q[qo + e] * k[ko + e];
          t *= scale;
          if (bias != null) t += bias[(((s.biasB == 1 ? 0 : bb) * s.biasH + (s.biasH == 1 ? 0 : hh)) * nq + i) * nk + j];
          srow[j] = r.r(t);
          m = Math.max(m, srow[j]);
        }
        if (end == 0 || m == Double.NEGATIVE_INFINITY) continue;  // no key (masks or -inf bias): zeros
        double z = 0;
        for (int j = 0; j < end; j++) z += Math.exp(srow[j] - m);
        for (int j = 0; j < end; j++) p[i * nk + j] = r.r(Math.exp(srow[j] - m) / z);
        for (int e = 0; e < d; e++) {
          double t = 0;
          for (int j = 0; j < end; j++) t += p[i * nk + j] * v[(kh * nk + j) * d + e];
          out[qo + e] = r.r(t);
        }
        // backward of the row
        double[] dp = new double[end];
        double dd = 0;
        for (int j = 0; j < end; j++) {
          int vo = (kh * nk + j) * d;
          double t = 0;
          for (int e = 0; e < d; e++) t += dout[qo + e] * v[vo + e];
          dp[j] = r.r(t);
          dd += p[i * nk + j] * dp[j];
        }
        for (int j = 0; j < end; j++) ds[i * nk + j] = r.r(p[i * nk + j] * (dp[j] - dd));
        for (int e = 0; e < d; e++) {
          double t = 0;
          for (int j = 0; j < end; j++) t += ds[i * nk + j] * k[(kh * nk + j) * d + e];
          dq[qo + e] = r.r(scale * t);
        }
      }
      dsAll[bh] = ds;
      pAll[bh] = p;
    });
    double[] dk = new double[b * s.hkv * nk * d], dv = new double[b * s.hkv * nk * d];
    IntStream.range(0, b * s.hkv).parallel().forEach(kh -> {
      int bb = kh / s.hkv, hk = kh % s.hkv;
      for (int j = 0; j < nk; j++)
        for (int e = 0; e < d; e++) {
          double tk = 0, tv = 0;
          for (int hh = hk * group; hh < (hk + 1) * group; hh++) {
            int bh = bb * h + hh;
            double[] p = pAll[bh], ds = dsAll[bh];
            for (int i = 0; i < nq; i++) {
              tk += ds[i * nk + j] * q[(bh * nq + i) * d + e];
              tv += p[i * nk + j] * dout[(bh * nq + i) * d + e];
            }
          }
          dk[(kh * nk + j) * d + e] = r.r(scale * tk);
          dv[(kh * nk + j) * d + e] = r.r(tv);
        }
    });
    return new double[][] {out, dq, dk, dv};
  }

  public static double err(double[] x, double[] ref) {
    double e = 0, m = 0;
    for (int i = 0; i < x.length; i++) {
      e = Math.max(e, Math.abs(x[i] - ref[i]));
      m = Math.max(m, Math.abs(ref[i]));
    }
    return e / Math.max(m, 1e-30);
  }

}
