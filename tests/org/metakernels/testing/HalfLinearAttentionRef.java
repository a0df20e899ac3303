package org.metakernels.testing;

import java.util.function.DoubleUnaryOperator;
import org.metakernels.tensor.DType;

/**
 * Host references of the 16-bit linear-attention product (issue 11), on flat [G, N, D] arrays of
 * the values the 16-bit inputs hold: the exact product (in doubles) and a naive 16-bit composition
 * — PyTorch's chunked form in the 16-bit type, chunks of 64, every matmul's output rounded (q kᵀ,
 * (q kᵀ ⊙ M) v, the chunk states kᵀ v, their exclusive prefix (suffix) sum, q·prefix, the final
 * sum; q (kᵀ v) without a mask). The criterion the kernels are held to: error at most twice the
 * naive composition's, errors as max |x − ref| / max |ref| (the rule of the softmax attention's
 * 16-bit tests). The same composition as tests/cuda-emu/linear_attention_emu_test.cpp's.
 */
public final class HalfLinearAttentionRef {
  private HalfLinearAttentionRef() {}

  /** Chunk length of the naive composition (the kernels' chunk). */
  public static final int CHUNK = 64;

  /**
   * x rounded to the nearest value of t (BF16 or F16; ties to even; no overflow handling), or x
   * itself for any other type.
   *
   * @param t the type
   * @param x a value
   * @return the rounded value
   */
  public static double round(DType t, double x) {
    if (t != DType.BF16 && t != DType.F16 || x == 0 || !Double.isFinite(x)) return x;
    int mant = t == DType.BF16 ? 7 : 10, minExp = t == DType.BF16 ? -126 : -14;
    int e = Math.max(Math.getExponent(x), minExp);
    double ulp = Math.scalb(1.0, e - mant);
    return Math.rint(x / ulp) * ulp;
  }

  /**
   * The product out_j = Σ_{i ∈ M(j)} (q_j·k_i) v_i of G groups in doubles, each matmul-sized stage
   * rounded to {@code t} (pass F64 for the exact product).
   *
   * @param t the rounding type (F64: none)
   * @param mask 0 none, 1 causal, 2 anti-causal (nq = nk)
   * @param g groups
   * @param nq query rows
   * @param nk key rows
   * @param dk key dim
   * @param dv value dim
   * @param q [G, nq, dk]
   * @param k [G, nk, dk]
   * @param v [G, nk, dv]
   * @return [G, nq, dv]
   */
  public static double[] product(
      DType t, int mask, int g, int nq, int nk, int dk, int dv, double[] q, double[] k, double[] v) {
    DoubleUnaryOperator r = x -> round(t, x);
    return composed(r, r, mask, g, nq, nk, dk, dv, q, k, v);
  }

  // The chunked composition: rin rounds the stage results that are operands of another product (the
  // prefix state, the masked q kᵀ), rout the other stage results.
  private static double[] composed(DoubleUnaryOperator rin, DoubleUnaryOperator rout, int mask, int g, int nq, int nk,
      int dk, int dv, double[] q, double[] k, double[] v) {
    double[] out = new double[g * nq * dv];
    for (int gi = 0; gi < g; gi++) {
      int qo = gi * nq * dk, ko = gi * nk * dk, vo = gi * nk * dv, oo = gi * nq * dv;
      if (mask == 0) {
        double[] s = state(rout, k, v, ko, vo, 0, nk, dk, dv);
        for (int x = 0; x < s.length; x++) s[x] = rin.applyAsDouble(s[x]);
        for (int j = 0; j < nq; j++)
          for (int e = 0; e < dv; e++) {
            double acc = 0;
            for (int d = 0; d < dk; d++) acc += q[qo + j * dk + d] * s[d * dv + e];
            out[oo + j * dv + e] = rout.applyAsDouble(acc);
          }
        continue;
      }
      int chunks = (nq + CHUNK - 1) / CHUNK;
      double[][] h = new double[chunks][];
      for (int c = 0; c < chunks; c++) h[c] = state(rout, k, v, ko, vo, c * CHUNK, Math.min(nq, (c + 1) * CHUNK), dk, dv);
      for (int c = 0; c < chunks; c++) {
        double[] s = new double[dk * dv];
        for (int c2 = 0; c2 < chunks; c2++)
          if (mask == 1 ? c2 < c : c2 > c)
            for (int x = 0; x < s.length; x++) s[x] += h[c2][x];
        for (int x = 0; x < s.length; x++) s[x] = rin.applyAsDouble(s[x]);
        int j0 = c * CHUNK, j1 = Math.min(nq, j0 + CHUNK);
        for (int j = j0; j < j1; j++) {
          double[] a = new double[CHUNK];
          for (int i = j0; i < j1; i++) {
            if (mask == 1 ? i > j : i < j) continue;
            double acc = 0;
            for (int d = 0; d < dk; d++) acc += q[qo + j * dk + d] * k[ko + i * dk + d];
            a[i - j0] = rin.applyAsDouble(acc);
          }
          for (int e = 0; e < dv; e++) {
            double intra = 0, inter = 0;
            for (int i = j0; i < j1; i++) intra += a[i - j0] * v[vo + i * dv + e];
            for (int d = 0; d < dk; d++) inter += q[qo + j * dk + d] * s[d * dv + e];
            out[oo + j * dv + e] =
                rout.applyAsDouble(rout.applyAsDouble(intra) + rout.applyAsDouble(inter));
          }
        }
      }
    }
    return out;
  }

  private static double[] state(
      DoubleUnaryOperator rnd, double[] k, double[] v, int ko, int vo, int i0, int i1, int dk, int dv) {
    double[] s = new double[dk * dv];
    for (int d = 0; d < dk; d++)
      for (int e = 0; e < dv; e++) {
        double acc = 0;
        for (int i = i0; i < i1; i++) acc += k[ko + i * dk + d] * v[vo + i * dv + e];
        s[d * dv + e] = rnd.applyAsDouble(acc);
      }
    return s;
  }

  /**
   * max |x − ref| / max |ref| (NaN in x counts as infinite).
   *
   * @param x values
   * @param ref the reference
   * @return the relative error
   */
  public static double relErr(double[] x, double[] ref) {
    double scale = 0, err = 0;
    for (double r : ref) scale = Math.max(scale, Math.abs(r));
    for (int i = 0; i < ref.length; i++) {
      double e = Math.abs(x[i] - ref[i]);
      if (!(e <= err)) err = Double.isNaN(e) ? Double.POSITIVE_INFINITY : e;
    }
    return scale > 0 ? err / scale : err;
  }

  /**
   * x as the MMA's TF32 operand: the F32 value rounded to 10 mantissa bits, to nearest, ties away
   * from zero (cvt.rna.tf32.f32).
   *
   * @param x a value
   * @return x rounded to F32, then to TF32
   */
  public static double tf32(double x) {
    int u = Float.floatToRawIntBits((float) x);
    if ((u & 0x7f800000) != 0x7f800000) u = (u + 0x1000) & ~0x1fff;
    return Float.intBitsToFloat(u);
  }

  /**
   * The naive TF32 composition of the F32 product: the chunked form of {@link #product} computed in
   * F32 with TF32 matmuls — every matmul's operands rounded to TF32 (q, k, v, the prefix state, the
   * masked q kᵀ), every result to F32. The F32 product on CUDA with TF32 allowed is held to twice
   * its error.
   *
   * @param mask 0 none, 1 causal, 2 anti-causal (nq = nk)
   * @param g groups
   * @param nq query rows
   * @param nk key rows
   * @param dk key dim
   * @param dv value dim
   * @param q [G, nq, dk] (F32 values)
   * @param k [G, nk, dk]
   * @param v [G, nk, dv]
   * @return [G, nq, dv]
   */
  public static double[] productTf32(int mask, int g, int nq, int nk, int dk, int dv, double[] q, double[] k,
      double[] v) {
    DoubleUnaryOperator f32 = x -> (float) x;
    return composed(HalfLinearAttentionRef::tf32, f32, mask, g, nq, nk, dk, dv, tf32(q), tf32(k), tf32(v));
  }

  private static double[] tf32(double[] x) {
    double[] y = new double[x.length];
    for (int i = 0; i < x.length; i++) y[i] = tf32(x[i]);
    return y;
  }
}
