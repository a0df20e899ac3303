package org.metakernels.gpu;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.metakernels.autograd.Autograd;
import org.metakernels.meta.InnerStep;
import org.metakernels.meta.InnerStep.Hyper;
import org.metakernels.runtime.Backend;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Ref;
import org.metakernels.testing.StepRef;

/**
 * The CUDA optimizer-step kernels (kernels/cuda/meta.cu) against their CPU twins: forward outputs
 * and every gradient of the fused backward (parameters, gradients, state, hyperparameters held as
 * one value or per element), F32 and F64, the 16-byte vector path and the scalar path (a view one
 * element off), sizes past a grid-stride round; the one-value gradients within the rounding of
 * their sums (the sum of the magnitudes of their terms, from the float64 reference with the
 * hyperparameter per element); the same bits on a second run; and the backward of the backward
 * (composite ops) on both devices. Skipped without CUDA.
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(RequiresCuda.class)
class CudaMetaStepTwinTest {
  static final Device GPU = Device.CUDA, CPU = Device.CPU;
  static final DType F64 = DType.F64;

  @BeforeAll
  static void needGpu() {
    assumeTrue(Backend.get().cudaAvailable(), "no CUDA: " + Backend.get().cudaReason());  // (RequiresCuda skips first)
  }

  enum Opt { SGD, MOMENTUM, NESTEROV, ADAM, ADAMW }

  /** 0: constants; 1: one-value tensors; 2: per-element lr, momentum, weight decay. */
  static Stream<Arguments> cases() {
    List<Arguments> a = new ArrayList<>();
    for (Opt o : Opt.values())
      for (DType t : new DType[] {DType.F32, F64})
        for (int form = 0; form < 3; form++)
          for (long n : new long[] {1, 4099, 3_000_001}) {
            a.add(Arguments.of(o, t, form, n, false));
            if (n == 4099) a.add(Arguments.of(o, t, form, n, true));
          }
    for (Opt o : Opt.values()) a.add(Arguments.of(o, DType.F32, 1, 9_000_003L, false));  // past 2048 blocks of 4096
    return a.stream();
  }

  static final double[] BASE = {0.1, 0.9, 0.01, 0.85, 0.98, 1e-3};

  /** The inputs of a case on the CPU (F64 values rounded to t): p, g, state..., then the hyperparameter tensors. */
  static List<Tensor> inputs(Opt o, DType t, int form, long n) {
    long[] s = {n};
    boolean adam = o == Opt.ADAM || o == Opt.ADAMW;
    List<Tensor> in = new ArrayList<>(List.of(Tensor.randn(s, t, CPU, 1), Tensor.randn(s, t, CPU, 2)));
    if (adam) {
      in.add(Tensor.randn(s, t, CPU, 3).mul(0.1));
      in.add(Tensor.uniform(s, 0.01, 0.1, t, CPU, 4));
    } else if (o != Opt.SGD) {
      in.add(Tensor.randn(s, t, CPU, 3));
    }
    if (form == 0) return in;
    int[] hypers = adam ? new int[] {0, 2, 3, 4, 5} : o == Opt.SGD ? new int[] {0, 2} : new int[] {0, 1, 2};
    for (int h : hypers) {
      double b = adam && h == 0 ? 1e-3 : BASE[h];
      boolean per = form == 2 && h <= 2;
      in.add(per ? Tensor.uniform(s, 0.5 * b, 1.5 * b, t, CPU, 10 + h) : Tensor.scalar(b, t, CPU));
    }
    return in;
  }

  static Hyper hy(List<Tensor> x, int k, double constant) {
    return k < x.size() ? Hyper.of(x.get(k)) : Hyper.of(constant);
  }

  /** The step through InnerStep: outputs in order. */
  static Tensor[] step(Opt o, List<Tensor> x, int form) {
    switch (o) {
      case SGD -> {
        return new Tensor[] {InnerStep.sgd(x.get(0), x.get(1), new InnerStep.Sgd(hy(x, 2, BASE[0]), hy(x, 3, BASE[2])))};
      }
      case MOMENTUM, NESTEROV -> {
        InnerStep.MomentumResult r = InnerStep.momentum(x.get(0), x.get(1), x.get(2), new InnerStep.Momentum(
            hy(x, 3, BASE[0]), hy(x, 4, BASE[1]), hy(x, 5, BASE[2]), o == Opt.NESTEROV));
        return new Tensor[] {r.param(), r.buffer()};
      }
      default -> {
        InnerStep.AdamResult r = InnerStep.adam(x.get(0), x.get(1), x.get(2), x.get(3), 3, new InnerStep.Adam(
            hy(x, 4, 1e-3), hy(x, 6, BASE[3]), hy(x, 7, BASE[4]), hy(x, 8, BASE[5]), hy(x, 5, BASE[2]), o == Opt.ADAMW));
        return new Tensor[] {r.param(), r.m(), r.v()};
      }
    }
  }

  /** Leaves on {@code device} (a view one element into a larger buffer when {@code offset}). */
  static List<Tensor> leaves(List<Tensor> x, Device device, boolean offset) {
    List<Tensor> out = new ArrayList<>();
    for (Tensor t : x) {
      Tensor d;
      if (offset && t.rank() == 1) {
        Tensor big = Tensor.zeros(new long[] {t.numel() + 1}, t.dtype(), CPU);
        big.narrow(0, 1, t.numel()).copyInPlace(t);
        d = big.to(device).narrow(0, 1, t.numel());
      } else {
        d = t.to(device);
      }
      out.add(d.detach().requiresGrad(true));
    }
    return out;
  }

  static Tensor weighted(Tensor[] outs) {
    Tensor s = null;
    for (int k = 0; k < outs.length; k++) {
      Tensor r = Tensor.randn(outs[k].shape(), outs[k].dtype(), outs[k].device(), 100 + k);
      Tensor term = outs[k].mul(r).sum();
      s = s == null ? term : s.add(term);
    }
    return s;
  }

  /** Σ over the elements of |term| of a one-value hyperparameter's gradient, from the F64 reference per element. */
  static double termScale(Opt o, List<Tensor> x, int k, Tensor[] outsCpu) {
    // its own scope: only the number leaves. In the case's scope, the float64 graphs of the
    // one-value inputs (five for Adam) stayed alive together until the case ended: 15-17 GB of host
    // memory at n = 9,000,003 (tests/gpu-emu, where device memory is host memory too, 2026-12-05)
    try (Scope scope = Scope.open()) {
      return termScaleIn(o, x, k, outsCpu);
    }
  }

  static double termScaleIn(Opt o, List<Tensor> x, int k, Tensor[] outsCpu) {
    List<Tensor> r = new ArrayList<>();
    long n = x.get(0).numel();
    for (int i = 0; i < x.size(); i++) {
      Tensor xi = x.get(i).to(F64);
      if (i == k) xi = xi.expand(n).contiguous();
      r.add(xi.detach().requiresGrad(i == k));
    }
    boolean adam = o == Opt.ADAM || o == Opt.ADAMW;
    Tensor[] out;
    if (adam) {
      out = StepRef.adam(r.get(0), r.get(1), r.get(2), r.get(3), 3, r.get(4), r.get(6), r.get(7), r.get(8), r.get(5),
          o == Opt.ADAMW);
    } else if (o == Opt.SGD) {
      out = StepRef.sgd(r.get(0), r.get(1), null, r.get(2), null, r.get(3), false);
    } else {
      out = StepRef.sgd(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), o == Opt.NESTEROV);
    }
    Tensor s = null;
    for (int j = 0; j < out.length; j++) {
      Tensor rr = Tensor.randn(outsCpu[j].shape(), outsCpu[j].dtype(), CPU, 100 + j).to(F64);
      Tensor term = out[j].mul(rr).sum();
      s = s == null ? term : s.add(term);
    }
    return Autograd.grad(s, List.of(r.get(k)), false).get(0).abs().sum().item();
  }

  @ParameterizedTest(name = "{0} {1} form {2} n {3} offset {4}")
  @MethodSource("cases")
  void cudaMatchesTheCpuTwin(Opt o, DType t, int form, long n, boolean offset) {
    try (Scope s = Scope.open()) {
      List<Tensor> x = inputs(o, t, form, n);
      List<Tensor> xc = leaves(x, CPU, false), xg = leaves(x, GPU, offset);
      Tensor[] oc = step(o, xc, form), og = step(o, xg, form);
      double rtol = t == F64 ? 1e-12 : 2e-6;
      for (int k = 0; k < oc.length; k++)
        Ref.assertClose(og[k].to(CPU).toDoubleArray(), oc[k].toDoubleArray(), rtol, rtol, o + " output " + k);
      List<Tensor> gc = Autograd.grad(weighted(oc), xc, false), gg = Autograd.grad(weighted(og), xg, false);
      for (int i = 0; i < gc.size(); i++) {
        double[] want = gc.get(i).toDoubleArray(), got = gg.get(i).to(CPU).toDoubleArray();
        assertArrayEquals(gc.get(i).shape(), gg.get(i).shape());
        boolean one = xc.get(i).numel() == 1 && n > 1;
        // per element: relative to the largest; one value: within the rounding of a sum of n terms
        double scale = one ? termScale(o, x, i, oc) : Math.max(Ref.maxAbs(want), 1e-30);
        double tol = (t == F64 ? 1e-11 : 1e-5) * scale;
        Ref.assertClose(got, want, tol, 0, o + " " + t + " gradient of input " + i);
      }
      // a second run of the backward: the same bits
      List<Tensor> gg2 = Autograd.grad(weighted(step(o, xg, form)), xg, false);
      for (int i = 0; i < gg.size(); i++)
        assertArrayEquals(gg.get(i).to(CPU).toDoubleArray(), gg2.get(i).to(CPU).toDoubleArray(), 0.0,
            "run-to-run bits, input " + i);
    }
  }

  /** The backward of the fused backward (composite ops) on the GPU: a Hessian-vector product against the CPU's. */
  @Test
  void secondOrderAgreesWithTheCpu() {
    try (Scope s = Scope.open()) {
      for (Opt o : Opt.values()) {
        List<Tensor> x = inputs(o, F64, 2, 1000);
        List<Tensor> xc = leaves(x, CPU, false), xg = leaves(x, GPU, false);
        double[] hc = hvp(o, xc), hg = hvp(o, xg);
        Ref.assertClose(hg, hc, 1e-11, 1e-10, o + " Hessian-vector product");
      }
    }
  }

  static double[] hvp(Opt o, List<Tensor> x) {
    List<Tensor> g = Autograd.grad(weighted(step(o, x, 2)), x, true);
    Tensor sum = null;
    for (int i = 0; i < g.size(); i++) {
      Tensor u = Tensor.randn(x.get(i).shape(), F64, x.get(i).device(), 300 + i);
      Tensor term = g.get(i).mul(u).sum();
      sum = sum == null ? term : sum.add(term);
    }
    List<Tensor> h = Autograd.grad(sum, x, false);
    List<Double> all = new ArrayList<>();
    for (Tensor t : h) for (double d : t.to(CPU).toDoubleArray()) all.add(d);
    return all.stream().mapToDouble(Double::doubleValue).toArray();
  }
}
