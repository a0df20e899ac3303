package org.metakernels.ops;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.autograd.GradCheck;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.runtime.MkNative;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;

class AttentionTest {
  static final Device CPU = Device.CPU;

  static Tensor rnd(long seed, long... shape) {
    return Tensor.randn(shape, DType.F64, CPU, seed);
  }

  /** softmax(scale q kᵀ + bias + mask) v from dense ops, with an explicit Nq×Nk matrix. */
  static Tensor reference(Tensor q, Tensor k, Tensor v, Attention.Options o, long[] lengths) {
    long b = q.size(0), h = q.size(1), nq = q.size(2), d = q.size(3), hkv = k.size(1), nk = k.size(2);
    long group = h / hkv;
    long[] map = new long[(int) h];
    for (int i = 0; i < h; i++) map[i] = i / group;
    Tensor idx = Tensor.ofIndices(map, h);
    Tensor kk = k.indexSelect(1, idx), vv = v.indexSelect(1, idx);
    double scale = Double.isNaN(o.scale()) ? 1 / Math.sqrt(d) : o.scale();
    Tensor s = q.matmul(kk.mT()).mul(scale);
    if (o.bias() != null) s = s.add(o.bias());
    double[] mask = new double[(int) (b * nq * nk)];
    for (int bb = 0; bb < b; bb++) {
      long len = lengths == null ? nk : lengths[bb];
      long off = o.alignment() == Attention.CausalAlignment.TOP_LEFT ? 0 : len - nq;  // the diagonal
      for (int i = 0; i < nq; i++)
        for (int j = 0; j < nk; j++) {
          boolean ok = j < len && (!o.causalMask() || j <= i + off);
          mask[(int) ((bb * nq + i) * nk + j)] = ok ? 1 : 0;
        }
    }
    Tensor m = Tensor.of(mask, b, 1, nq, nk).to(q.dtype());
    s = Tensor.where(m, s, Tensor.scalar(Double.NEGATIVE_INFINITY, q.dtype(), CPU));
    return s.softmax(-1).matmul(vv);
  }

  record Case(Tensor q, Tensor k, Tensor v, Attention.Options o, long[] lengths) {}

  static Case makeCase(int b, int h, int hkv, int nq, int nk, int d, int dv, boolean causal, String bias, boolean lens,
      long seed) {
    return makeCase(b, h, hkv, nq, nk, d, dv, Boolean.toString(causal), bias, lens, seed);
  }

  /** The mask of a CSV case: "false" (none), "true" (causal, bottom-right) or "tl" (causal, top-left). */
  static Attention.Options mask(String causal) {
    return switch (causal) {
      case "false" -> Attention.Options.defaults();
      case "true" -> Attention.Options.causal();
      case "tl" -> Attention.Options.causalTopLeft();
      default -> throw new IllegalArgumentException(causal);
    };
  }

  static Case makeCase(int b, int h, int hkv, int nq, int nk, int d, int dv, String causal, String bias, boolean lens,
      long seed) {
    Tensor q = rnd(seed, b, h, nq, d), k = rnd(seed + 1, b, hkv, nk, d), v = rnd(seed + 2, b, hkv, nk, dv);
    Attention.Options o = mask(causal);
    if (!bias.equals("none")) {
      long bb = bias.charAt(0) == 'B' ? b : 1, bh = bias.charAt(1) == 'H' ? h : 1;
      o = o.withBias(rnd(seed + 3, bb, bh, nq, nk).mul(0.5));
    }
    long[] lengths = null;
    if (lens) {
      lengths = new long[b];
      for (int i = 0; i < b; i++) lengths[i] = Math.max(1, nk - 7 * i - 3);
      o = o.withKeyLengths(Tensor.ofIndices(lengths, b));
    }
    return new Case(q, k, v, o, lengths);
  }

  @ParameterizedTest
  @CsvSource({
      // b, h, hkv, nq, nk, d, dv, causal, bias, lengths
      "1, 1, 1, 5, 5, 16, 16, false, none, false",
      "2, 4, 2, 70, 33, 16, 8, false, none, false",
      "2, 2, 2, 33, 70, 64, 64, true, none, false",
      "1, 2, 1, 100, 100, 128, 128, true, 11, false",
      "2, 3, 3, 40, 97, 32, 24, false, BH, true",
      "2, 2, 1, 65, 65, 256, 64, true, 1H, true",
      "3, 2, 2, 1, 129, 16, 16, false, B1, true",
      "1, 1, 1, 130, 70, 16, 16, true, none, false",
      // top-left causal: Nq > Nk, Nq < Nk (rows past the diagonal tiles), key lengths, GQA, bias
      "1, 1, 1, 130, 70, 16, 16, tl, none, false",
      "2, 2, 2, 33, 70, 64, 64, tl, none, false",
      "2, 4, 2, 70, 97, 32, 24, tl, BH, true",
      "2, 2, 1, 65, 65, 256, 64, tl, 1H, true",
  })
  void forwardBackwardAndDoubleBackwardMatchComposedReference(int b, int h, int hkv, int nq, int nk, int d, int dv,
      String causal, String bias, boolean lens) {
    try (Scope s = Scope.open()) {
      Case c = makeCase(b, h, hkv, nq, nk, d, dv, causal, bias, lens, 11L * nq + nk);
      Tensor out = Attention.softmax(c.q, c.k, c.v, c.o);
      Tensor ref = reference(c.q, c.k, c.v, c.o, c.lengths);
      Ref.assertClose(out, ref, 1e-12, 1e-10);
      for (double x : out.toDoubleArray()) assertFalse(Double.isNaN(x));

      // backward and double backward against autograd through the composed reference
      Tensor q = c.q.detach().requiresGrad(true), k = c.k.detach().requiresGrad(true), v = c.v.detach().requiresGrad(true);
      Tensor bt = c.o.bias() == null ? null : c.o.bias().detach().requiresGrad(true);
      Attention.Options o = c.o.withBias(bt);
      List<Tensor> inputs = new ArrayList<>(List.of(q, k, v));
      if (bt != null) inputs.add(bt);
      Tensor r = rnd(99, b, h, nq, dv);
      List<Tensor> g = Autograd.grad(Attention.softmax(q, k, v, o).mul(r).sum(), inputs, true);
      List<Tensor> gRef = Autograd.grad(reference(q, k, v, o, c.lengths).mul(r).sum(), inputs, true);
      for (int i = 0; i < inputs.size(); i++) Ref.assertClose(g.get(i), gRef.get(i), 1e-11, 1e-9);
      Tensor sProbe = null, sRef = null;
      for (int i = 0; i < inputs.size(); i++) {
        Tensor u = rnd(200 + i, inputs.get(i).shape());
        sProbe = i == 0 ? g.get(i).mul(u).sum() : sProbe.add(g.get(i).mul(u).sum());
        sRef = i == 0 ? gRef.get(i).mul(u).sum() : sRef.add(gRef.get(i).mul(u).sum());
      }
      List<Tensor> hv = Autograd.grad(sProbe, inputs, false);
      List<Tensor> hvRef = Autograd.grad(sRef, inputs, false);
      for (int i = 0; i < inputs.size(); i++) Ref.assertClose(hv.get(i), hvRef.get(i), 1e-10, 1e-8);
    }
  }

  @ParameterizedTest
  @CsvSource({"false, none, false", "true, none, true", "false, BH, false", "true, 1H, true", "tl, none, true",
      "tl, 1H, false"})
  void gradCheckOrder2(String causal, String bias, boolean lens) {
    try (Scope s = Scope.open()) {
      Case c = makeCase(2, 2, 1, 7, 9, 4, 3, causal, bias, lens, 5);
      List<Tensor> inputs = new ArrayList<>(List.of(c.q, c.k, c.v));
      if (c.o.bias() != null) inputs.add(c.o.bias());
      GradCheck.check(xs -> Attention.softmax(xs.get(0), xs.get(1), xs.get(2),
          xs.size() > 3 ? c.o.withBias(xs.get(3)) : c.o).tanh(), inputs, 2);
    }
  }

  @Test
  void backwardIsAnOpWhoseBackwardIsFused() {
    try (Scope s = Scope.open()) {
      Tensor q = rnd(1, 1, 2, 8, 4).requiresGrad(true), k = rnd(2, 1, 2, 8, 4), v = rnd(3, 1, 2, 8, 4);
      Tensor gq = Autograd.grad(Attention.softmax(q, k, v).sum(), List.of(q), true).get(0);
      assertEquals("attention_backward", gq.gradFn().name());
      Tensor hq = Autograd.grad(gq.square().sum(), List.of(q), true).get(0);
      // a third derivative through the fused kernels fails loudly, naming the op
      var e = assertThrows(UnsupportedOperationException.class,
          () -> Autograd.grad(hq.sum(), List.of(q), false));
      assertTrue(e.getMessage().contains("attention_backward_backward"), e.getMessage());
    }
  }

  @ParameterizedTest
  @CsvSource({"false, none, false", "true, BH, true", "true, 11, false", "tl, BH, true"})
  void jvpMatchesFiniteDifferences(String causal, String bias, boolean lens) {
    try (Scope s = Scope.open()) {
      Case c = makeCase(2, 2, 2, 37, 41, 8, 5, causal, bias, lens, 21);
      Tensor tq = rnd(31, c.q.shape()), tk = rnd(32, c.k.shape()), tv = rnd(33, c.v.shape());
      Tensor tb = c.o.bias() == null ? null : rnd(34, c.o.bias().shape());
      Attention.Output t = Attention.jvp(c.q, c.k, c.v, c.o, tq, tk, tv, tb);
      double eps = 1e-6;
      Attention.Output plus = Attention.forward(c.q.add(tq.mul(eps)), c.k.add(tk.mul(eps)), c.v.add(tv.mul(eps)),
          tb == null ? c.o : c.o.withBias(c.o.bias().add(tb.mul(eps))));
      Attention.Output minus = Attention.forward(c.q.sub(tq.mul(eps)), c.k.sub(tk.mul(eps)), c.v.sub(tv.mul(eps)),
          tb == null ? c.o : c.o.withBias(c.o.bias().sub(tb.mul(eps))));
      Ref.assertClose(t.out(), plus.out().sub(minus.out()).div(2 * eps), 1e-7, 1e-6);
      // lse is -inf on fully masked rows; compare where finite
      double[] tl = t.lse().toDoubleArray(), lp = plus.lse().toDoubleArray(), lm = minus.lse().toDoubleArray();
      for (int i = 0; i < tl.length; i++)
        if (Double.isFinite(lp[i])) assertEquals((lp[i] - lm[i]) / (2 * eps), tl[i], 1e-6 + 1e-6 * Math.abs(tl[i]));
    }
  }

  /**
   * The two alignments of the causal mask are one mask where Nq equals the key count (same bits),
   * and differ where it does not: top-left, query i sees keys j ≤ i; bottom-right, j ≤ i + Nk − Nq.
   */
  @Test
  void causalAlignmentsAgreeOnSquareMasksAndDifferOtherwise() {
    try (Scope s = Scope.open()) {
      Tensor q = rnd(1, 2, 2, 40, 16).to(DType.F32), k = rnd(2, 2, 2, 40, 16).to(DType.F32);
      Tensor v = rnd(3, 2, 2, 40, 8).to(DType.F32);
      assertArrayEquals(Attention.softmax(q, k, v, Attention.Options.causal()).toFloatArray(),
          Attention.softmax(q, k, v, Attention.Options.causalTopLeft()).toFloatArray());
      // 40 queries, 25 keys: top-left row 0 is v[0]; bottom-right rows 0..14 see no key (zeros)
      Tensor k25 = k.narrow(2, 0, 25), v25 = v.narrow(2, 0, 25);
      Tensor tl = Attention.softmax(q, k25, v25, Attention.Options.causalTopLeft());
      Tensor br = Attention.softmax(q, k25, v25, Attention.Options.causal());
      Ref.assertClose(tl.narrow(2, 0, 1), v25.narrow(2, 0, 1).contiguous(), 1e-6, 1e-6);
      assertArrayEquals(new float[2 * 2 * 15 * 8], br.narrow(2, 0, 15).contiguous().toFloatArray());
      // the last row of each sees every key under both
      Ref.assertClose(tl.narrow(2, 39, 1), br.narrow(2, 39, 1), 1e-6, 1e-6);
      // withCausal keeps the alignment; without the mask the alignment changes nothing
      Attention.Options o = Attention.Options.causalTopLeft().withCausal(false);
      assertEquals(Attention.CausalAlignment.TOP_LEFT, o.withCausal(true).alignment());
      assertArrayEquals(Attention.softmax(q, k25, v25).toFloatArray(), Attention.softmax(q, k25, v25, o).toFloatArray());
      assertEquals(Attention.CausalAlignment.BOTTOM_RIGHT, new Attention.Options(Double.NaN, true, null, null).alignment());
      assertEquals(Attention.CausalAlignment.BOTTOM_RIGHT, Attention.Options.causal().withAlignment(null).alignment());
    }
  }

  /** Gradients of q, k, v and the bias for one case, F32, on the given number of CPU threads. */
  static float[][] gradsOn(int threads, Case c) {
    int before = org.metakernels.runtime.MkNative.mk_runtime_num_threads();
    org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(threads);
    try (org.metakernels.tensor.Scope s = org.metakernels.tensor.Scope.open()) {
      Tensor q = c.q().to(DType.F32).requiresGrad(true), k = c.k().to(DType.F32).requiresGrad(true);
      Tensor v = c.v().to(DType.F32).requiresGrad(true), bias = c.o().bias().to(DType.F32).requiresGrad(true);
      Tensor out = Attention.softmax(q, k, v, c.o().withBias(bias));
      List<Tensor> g = Autograd.grad(List.of(out), List.of(q, k, v, bias), List.of(out.mul(0.5).add(1.0)), false);
      float[][] r = new float[4][];
      for (int i = 0; i < 4; i++) r[i] = g.get(i).toFloatArray();
      return r;
    } finally {
      org.metakernels.runtime.MkNative.mk_runtime_set_num_threads(before);
    }
  }

  @Test
  void backwardIsBitwiseTheSameOnAnyThreadCountAndEitherForm() {
    // B·Hkv = 4 tasks: one pass per KV head with 1 or 2 threads, the two-pass form with 3 or 5
    Case c = makeCase(2, 4, 2, 70, 97, 32, 24, true, "BH", true, 91);
    float[][] one = gradsOn(1, c);
    for (int threads : new int[] {2, 3, 5}) {
      float[][] other = gradsOn(threads, c);
      for (int i = 0; i < 4; i++)
        assertArrayEquals(one[i], other[i], "gradient " + i + " with " + threads + " threads differs from 1 thread");
    }
  }

  @Test
  void fullyMaskedRowsGiveZerosNotNaN() {
    try (Scope s = Scope.open()) {
      // batch 1 has no keys at all; causal with Nq > Nk leaves the first rows without keys
      Tensor q = rnd(1, 2, 1, 6, 4).requiresGrad(true), k = rnd(2, 2, 1, 3, 4).requiresGrad(true),
          v = rnd(3, 2, 1, 3, 4).requiresGrad(true);
      Attention.Options o = Attention.Options.causal().withKeyLengths(Tensor.ofIndices(new long[] {3, 0}, 2));
      Tensor out = Attention.softmax(q, k, v, o);
      double[] a = out.toDoubleArray();
      for (double x : a) assertFalse(Double.isNaN(x));
      for (int i = 6 * 4; i < 12 * 4; i++) assertEquals(0.0, a[i]);   // batch 1
      for (int i = 0; i < 3 * 4; i++) assertEquals(0.0, a[i]);        // rows 0..2 of batch 0
      for (Tensor g : Autograd.grad(out.sum(), List.of(q, k, v), false))
        for (double x : g.toDoubleArray()) assertFalse(Double.isNaN(x));
    }
  }

  /**
   * What padding keys (past a batch entry's key length) hold never reaches a result: K and V rows
   * there filled with NaN and infinities (and NaN tangents and cotangents in those rows) give the
   * output, lse, first and second derivatives and JVP of zero padding, with zero gradients for the
   * padding rows. F32 and F64, causal and not, GQA, one key tile and several; the one-pass and the
   * two-pass backward (batch·KV heads against the thread count) both run.
   */
  @ParameterizedTest
  @CsvSource({
      "F64, false, 2, 1, 40, 70", "F64, true, 2, 1, 40, 70", "F32, false, 1, 1, 33, 300", "F32, true, 2, 2, 90, 150",
      "F64, false, 4, 4, 20, 40"})
  void paddingKeysNeverReachAResult(DType t, boolean causal, int h, int hkv, int nq, int nk) {
    try (Scope s = Scope.open()) {
      int b = 2, d = 16;
      long[] lengths = {nk - 17, 5};
      Attention.Options o = Attention.Options.defaults().withCausal(causal).withKeyLengths(Tensor.ofIndices(lengths, b));
      double[] kd = rnd(31, b, hkv, nk, d).toDoubleArray(), vd = rnd(32, b, hkv, nk, d).toDoubleArray();
      double[] tkd = rnd(33, b, hkv, nk, d).toDoubleArray(), tvd = rnd(34, b, hkv, nk, d).toDoubleArray();
      double[][] zero = {kd.clone(), vd.clone(), tkd.clone(), tvd.clone()}, bad = {kd.clone(), vd.clone(), tkd.clone(),
          tvd.clone()};
      double[] junk = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NaN};
      for (int bb = 0; bb < b; bb++)
        for (int hk = 0; hk < hkv; hk++)
          for (long j = lengths[bb]; j < nk; j++)
            for (int x = 0; x < d; x++) {
              int at = (int) (((bb * hkv + hk) * nk + j) * d + x);
              for (int a = 0; a < 4; a++) {
                zero[a][at] = 0;
                bad[a][at] = junk[(int) ((j + x + a) % 4)];
              }
            }
      Tensor q = rnd(35, b, h, nq, d).to(t), tq = rnd(36, b, h, nq, d).to(t), w = rnd(37, b, h, nq, d).to(t);
      List<double[]> ref = null;
      for (double[][] pad : new double[][][] {zero, bad}) {
        Tensor qq = q.detach().requiresGrad(true);
        Tensor k = Tensor.of(pad[0], b, hkv, nk, d).to(t).requiresGrad(true);
        Tensor v = Tensor.of(pad[1], b, hkv, nk, d).to(t).requiresGrad(true);
        Attention.Output f = Attention.forward(qq, k, v, o);
        List<Tensor> g = Autograd.grad(List.of(f.out().mul(w).sum()), List.of(qq, k, v), null, true);
        // second order: d/d(q, k, v) of <dq, w> + <dk, u> with u zero in the padding rows
        Tensor u = Tensor.of(zero[2], b, hkv, nk, d).to(t);
        List<Tensor> gg = Autograd.grad(List.of(g.get(0).mul(w).sum().add(g.get(1).mul(u).sum())), List.of(qq, k, v),
            null, false);
        Attention.Output j = Attention.jvp(q, k.detach(), v.detach(), o, tq, Tensor.of(pad[2], b, hkv, nk, d).to(t),
            Tensor.of(pad[3], b, hkv, nk, d).to(t), null);
        List<double[]> r = new ArrayList<>();
        for (Tensor x : List.of(f.out(), f.lse(), g.get(0), g.get(1), g.get(2), gg.get(0), gg.get(1), gg.get(2),
                 j.out(), j.lse()))
          r.add(x.toDoubleArray());
        if (ref == null) {
          ref = r;
          continue;
        }
        String[] names = {"out", "lse", "dq", "dk", "dv", "ddq", "ddk", "ddv", "jvp out", "jvp lse"};
        double tol = t == DType.F32 ? 1e-5 : 1e-12;
        for (int i = 0; i < names.length; i++) {
          double[] x = r.get(i), y = ref.get(i);
          for (int e = 0; e < y.length; e++)
            assertTrue(x[e] == y[e] || Math.abs(x[e] - y[e]) <= tol * (1 + Math.abs(y[e])),
                t + (causal ? " causal " : " ") + names[i] + "[" + e + "]: " + x[e] + " with junk padding, " + y[e]
                    + " with zero padding");
        }
        // the padding rows' own gradients are zero
        for (int i : new int[] {3, 4, 6, 7})
          for (int bb = 0; bb < b; bb++)
            for (int hk = 0; hk < hkv; hk++)
              for (long jj = lengths[bb]; jj < nk; jj++)
                assertEquals(0.0, r.get(i)[(int) (((bb * hkv + hk) * nk + jj) * d)], names[i] + " of a padding key");
      }
    }
  }

  /**
   * A bias of -inf masks keys as the causal and length masks do, across key tiles: rows whose
   * first tiles are wholly masked (the running max stays -inf, then becomes finite), rows that see
   * only the first keys, and one row with no key at all (zeros, lse -inf, zero gradients); first
   * and second derivatives match the composed reference. A NaN in one query row gives NaN in that
   * row's output only.
   */
  @Test
  void infiniteBiasMasksKeysAcrossTilesAndNaNStaysInItsRow() {
    try (Scope s = Scope.open()) {
      int nq = 70, nk = 150, d = 16;
      double[] bias = rnd(5, 1, 1, nq, nk).mul(0.5).toDoubleArray();
      for (int i = 0; i < nq; i++)
        for (int j = 0; j < nk; j++) {
          boolean masked = (i < 10 && j < 130) || i == 20 || (i >= 30 && i < 40 && j >= 10);
          if (masked) bias[i * nk + j] = Double.NEGATIVE_INFINITY;
        }
      Tensor q = rnd(1, 1, 2, nq, d), k = rnd(2, 1, 2, nk, d), v = rnd(3, 1, 2, nk, d);
      Attention.Options o = Attention.Options.defaults().withBias(Tensor.of(bias, 1, 1, nq, nk));
      Attention.Output f = Attention.forward(q, k, v, o);
      double[] out = f.out().toDoubleArray(), ref = reference(q, k, v, o, null).toDoubleArray();
      double[] lse = f.lse().toDoubleArray();
      for (int h = 0; h < 2; h++)
        for (int i = 0; i < nq; i++) {
          assertEquals(i == 20, lse[h * nq + i] == Double.NEGATIVE_INFINITY, "lse row " + i);
          for (int e = 0; e < d; e++) {
            int at = (h * nq + i) * d + e;
            if (i == 20) assertEquals(0.0, out[at], "fully masked row " + i);
            else assertEquals(ref[at], out[at], 1e-12 + 1e-10 * Math.abs(ref[at]), "row " + i + " col " + e);
          }
        }
      Tensor ql = q.detach().requiresGrad(true);
      Tensor gq = Autograd.grad(Attention.softmax(ql, k, v, o).sum(), List.of(ql), false).get(0);
      double[] g = gq.toDoubleArray();
      for (double x : g) assertFalse(Double.isNaN(x));
      for (int h = 0; h < 2; h++)
        for (int e = 0; e < d; e++) assertEquals(0.0, g[(h * nq + 20) * d + e]);

      // first and second order against autograd through the composed reference, on the same
      // -inf entries but row 20 (the reference has no answer for a row without keys)
      double[] bias2 = bias.clone();
      double[] finite = rnd(5, 1, 1, nq, nk).mul(0.5).toDoubleArray();
      System.arraycopy(finite, 20 * nk, bias2, 20 * nk, nk);
      Tensor q2 = q.detach().requiresGrad(true), k2 = k.detach().requiresGrad(true), v2 = v.detach().requiresGrad(true);
      Tensor b2 = Tensor.of(bias2, 1, 1, nq, nk).requiresGrad(true);
      Attention.Options o2 = Attention.Options.defaults().withBias(b2);
      List<Tensor> in2 = List.of(q2, k2, v2, b2);
      Tensor r = rnd(98, 1, 2, nq, d);
      List<Tensor> g1 = Autograd.grad(Attention.softmax(q2, k2, v2, o2).mul(r).sum(), in2, true);
      List<Tensor> g1Ref = Autograd.grad(reference(q2, k2, v2, o2, null).mul(r).sum(), in2, true);
      Tensor probe = null, probeRef = null;
      for (int i = 0; i < 4; i++) {
        Ref.assertClose(g1.get(i), g1Ref.get(i), 1e-11, 1e-9);
        Tensor u = rnd(300 + i, in2.get(i).shape());
        probe = i == 0 ? g1.get(i).mul(u).sum() : probe.add(g1.get(i).mul(u).sum());
        probeRef = i == 0 ? g1Ref.get(i).mul(u).sum() : probeRef.add(g1Ref.get(i).mul(u).sum());
      }
      List<Tensor> g2 = Autograd.grad(probe, in2, false), g2Ref = Autograd.grad(probeRef, in2, false);
      for (int i = 0; i < 4; i++) Ref.assertClose(g2.get(i), g2Ref.get(i), 1e-10, 1e-8);

      double[] qa = q.toDoubleArray();
      qa[5 * d + 3] = Double.NaN;  // head 0, row 5
      double[] outNaN = Attention.softmax(Tensor.of(qa, 1, 2, nq, d), k, v, o).toDoubleArray();
      for (int at = 0; at < out.length; at++) {
        boolean nanRow = at / d == 5;
        if (nanRow) assertTrue(Double.isNaN(outNaN[at]), "NaN row, element " + at);
        else assertEquals(out[at], outNaN[at], 0.0, "element " + at);
      }
    }
  }

  @Test
  void longSequenceNeedsNoQuadraticMemory() {
    try (Scope s = Scope.open()) {
      long n = 16384;
      Tensor q = Tensor.randn(new long[] {1, 1, n, 32}, DType.F32, CPU, 1);
      Tensor k = Tensor.randn(new long[] {1, 1, n, 32}, DType.F32, CPU, 2);
      Tensor v = Tensor.randn(new long[] {1, 1, n, 32}, DType.F32, CPU, 3);
      long before = MkNative.mk_host_live_bytes();
      Tensor out = Attention.softmax(q, k, v, Attention.Options.causal());
      long grown = MkNative.mk_host_live_bytes() - before;
      // output (2 MiB) + lse + workspace; an Nq x Nk float matrix would be 1 GiB
      assertTrue(grown < 32L << 20, "native memory grew by " + grown + " bytes");
      // last row attends to everything: compare it with a direct computation
      double[] qa = q.narrow(2, n - 1, 1).toDoubleArray(), ka = k.toDoubleArray(), va = v.toDoubleArray();
      double m = Double.NEGATIVE_INFINITY;
      double[] sc = new double[(int) n];
      for (int j = 0; j < n; j++) {
        double t = 0;
        for (int e = 0; e < 32; e++) t += qa[e] * ka[j * 32 + e];
        sc[j] = t / Math.sqrt(32);
        m = Math.max(m, sc[j]);
      }
      double z = 0;
      double[] o = new double[32];
      for (int j = 0; j < n; j++) {
        double p = Math.exp(sc[j] - m);
        z += p;
        for (int e = 0; e < 32; e++) o[e] += p * va[j * 32 + e];
      }
      for (int e = 0; e < 32; e++) o[e] /= z;
      Ref.assertClose(out.narrow(2, n - 1, 1).toDoubleArray(), o, 1e-5, 1e-4, "last row");
    }
  }

  @Test
  void float32MatchesFloat64Reference() {
    try (Scope s = Scope.open()) {
      Case c = makeCase(2, 4, 2, 77, 90, 64, 64, true, "BH", true, 7);
      Attention.Options o32 = c.o.withBias(c.o.bias().to(DType.F32));
      Tensor out = Attention.softmax(c.q.to(DType.F32), c.k.to(DType.F32), c.v.to(DType.F32), o32);
      Ref.assertClose(out.to(DType.F64), reference(c.q, c.k, c.v, c.o, c.lengths), 1e-5, 1e-4);
    }
  }

  @Test
  void rejectsBadInput() {
    try (Scope s = Scope.open()) {
      Tensor q = rnd(1, 2, 4, 5, 8), k = rnd(2, 2, 2, 6, 8), v = rnd(3, 2, 2, 6, 8);
      double[] before = q.toDoubleArray();
      assertMessage(() -> Attention.softmax(q, rnd(4, 2, 3, 6, 8), rnd(5, 2, 3, 6, 8)), "3 key/value heads");
      assertMessage(() -> Attention.softmax(q, rnd(4, 2, 2, 6, 7), v), "[2, 2, 6, 7]");
      assertMessage(() -> Attention.softmax(q, k, rnd(5, 2, 2, 5, 8)), "[2, 2, 5, 8]");
      assertMessage(() -> Attention.softmax(q.reshape(2, 4, 40), k, v), "[2, 4, 40]");
      assertMessage(() -> Attention.softmax(q, k.to(DType.F32), v), "dtype");
      assertMessage(() -> Attention.softmax(rnd(6, 1, 1, 2, 300), rnd(7, 1, 1, 2, 300), rnd(8, 1, 1, 2, 300)), "[1, 256]");
      assertMessage(() -> Attention.softmax(q, k, v, Attention.Options.defaults().withBias(rnd(9, 2, 4, 5, 5))), "bias");
      assertMessage(() -> Attention.softmax(q, k, v,
          Attention.Options.defaults().withKeyLengths(Tensor.ofIndices(new long[] {3, 7}, 2))), "key length 7");
      assertMessage(() -> Attention.softmax(q, k, v,
          Attention.Options.defaults().withKeyLengths(Tensor.ofIndices(new long[] {3}, 1))), "key lengths");
      assertArrayEquals(before, q.toDoubleArray());
      Tensor closed = rnd(10, 2, 4, 5, 8);
      closed.close();
      assertThrows(IllegalStateException.class, () -> Attention.softmax(closed, k, v));
    }
  }

  static void assertMessage(org.junit.jupiter.api.function.Executable e, String part) {
    var ex = assertThrows(MetakernelsException.class, e);
    assertTrue(ex.getMessage().contains(part) && ex.getMessage().contains("attention"), ex.getMessage());
  }

  /**
   * The C ABI's flags: MK_ATTENTION_TF32 (2) is accepted everywhere and changes nothing on the CPU
   * (TF32 is a CUDA tensor-core allowance), so the result with it equals the result without, bit
   * for bit; unknown bits are refused with a message naming the op, before anything is written.
   */
  @Test
  void tf32FlagIsIgnoredOnTheCpuAndUnknownFlagsAreRefused() {
    try (Scope s = Scope.open()) {
      int b = 1, h = 2, n = 37, d = 16;
      Tensor q = Tensor.randn(new long[] {b, h, n, d}, DType.F32, Device.CPU, 5);
      Tensor k = Tensor.randn(new long[] {b, h, n, d}, DType.F32, Device.CPU, 6);
      Tensor v = Tensor.randn(new long[] {b, h, n, d}, DType.F32, Device.CPU, 7);
      MkNative.mk_attention_params p = new MkNative.mk_attention_params().batch(b).heads(h).kv_heads(h).nq(n).nk(n)
          .d(d).dv(d).q(q.address("test")).k(k.address("test")).v(v.address("test")).scale(1.0 / Math.sqrt(d));
      long wsBytes = MkNative.mk_attention_softmax_workspace(Device.CPU.code, DType.F32.code, p);
      Tensor ws = Tensor.zeros(new long[] {(wsBytes + 7) / 8}, DType.F64, Device.CPU);
      int[] flags = {1, 1 | 2, 1 | 8, 4, 2 | 4};  // unknown bit; top-left without the causal mask
      float[][] outs = new float[flags.length][];
      for (int i = 0; i < flags.length; i++) {
        Tensor out = Tensor.zeros(new long[] {b, h, n, d}, DType.F32, Device.CPU);
        Tensor lse = Tensor.zeros(new long[] {b, h, n}, DType.F32, Device.CPU);
        p.flags(flags[i]).out(out.address("test")).lse(lse.address("test"));
        int st = MkNative.mk_attention_softmax_forward(Device.CPU.code, DType.F32.code, p, ws.address("test"), wsBytes,
            0);
        if (i < 2) {
          assertEquals(0, st, org.metakernels.runtime.Native.lastError());
        } else {
          assertEquals(org.metakernels.runtime.Codes.ERR_INVALID_ARGUMENT, st);
          String msg = org.metakernels.runtime.Native.lastError();
          assertTrue(msg.contains("mk_attention_softmax_forward") && msg.contains("flags " + flags[i]), msg);
        }
        outs[i] = out.toFloatArray();
      }
      assertArrayEquals(outs[0], outs[1]);
      for (int i = 2; i < flags.length; i++) assertArrayEquals(new float[outs[i].length], outs[i]);  // untouched
      p.close();
    }
  }

  /**
   * The one TF32 switch lives in the native runtime: Backend.setAllowTf32 writes it, allowTf32
   * reads it back, and the CPU kernels ignore it (same bits either way).
   */
  @Test
  void tf32SwitchIsTheRuntimesAndTheCpuIgnoresIt() {
    boolean before = org.metakernels.runtime.Backend.allowTf32();
    try (Scope s = Scope.open()) {
      Tensor q = Tensor.randn(new long[] {1, 2, 19, 8}, DType.F32, Device.CPU, 11);
      float[] off = Attention.softmax(q, q, q, Attention.Options.causal()).toFloatArray();
      org.metakernels.runtime.Backend.setAllowTf32(true);
      assertTrue(org.metakernels.runtime.Backend.allowTf32());
      assertEquals(1, org.metakernels.runtime.MkNative.mk_runtime_allow_tf32());
      assertArrayEquals(off, Attention.softmax(q, q, q, Attention.Options.causal()).toFloatArray());
      org.metakernels.runtime.Backend.setAllowTf32(false);
      assertEquals(0, org.metakernels.runtime.MkNative.mk_runtime_allow_tf32());
    } finally {
      org.metakernels.runtime.Backend.setAllowTf32(before);
    }
  }
}
