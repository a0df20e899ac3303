package org.metakernels.autograd;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * Checks autograd against central finite differences in float64, in random directions.
 *
 * <ul>
 *   <li>order 1: for L(x) = Σ f(x)·r (r random), ⟨∇L, v⟩ against (L(x+εv) − L(x−εv)) / 2ε;
 *   <li>order 2: for S(x) = ⟨∇L(x), u⟩, the Hessian-vector product ⟨∇S, v⟩ (grad of a grad built
 *       with createGraph) against (S(x+εv) − S(x−εv)) / 2ε.
 * </ul>
 *
 * <pre>{@code
 * GradCheck.check(xs -> xs.get(0).tanh().mul(xs.get(1)), List.of(x, w), 2);
 * }</pre>
 *
 * Throws {@link AssertionError} with the numbers on a mismatch; inputs must be F64.
 */
public final class GradCheck {
  private GradCheck() {}

  /**
   * Tolerances and sampling: a comparison passes when |analytic − numeric| ≤ atol + rtol·|numeric|.
   *
   * @param eps the finite-difference step
   * @param atol absolute tolerance
   * @param rtol relative tolerance
   * @param directions how many random directions v to try
   * @param seed seed of the weights r and the directions
   */
  public record Options(double eps, double atol, double rtol, int directions, long seed) {
    /**
     * eps 1e-6, atol 1e-6, rtol 1e-5, 3 directions, seed 1234.
     *
     * @return the default options
     */
    public static Options defaults() {
      return new Options(1e-6, 1e-6, 1e-5, 3, 1234L);
    }

    /**
     * These options with other tolerances: {@code Options.defaults().withTolerance(1e-5, 1e-4)}.
     *
     * @param atol absolute tolerance
     * @param rtol relative tolerance
     * @return new options
     */
    public Options withTolerance(double atol, double rtol) {
      return new Options(eps, atol, rtol, directions, seed);
    }

    /**
     * These options with another finite-difference step.
     *
     * @param e the step
     * @return new options
     */
    public Options withEps(double e) {
      return new Options(e, atol, rtol, directions, seed);
    }
  }

  /**
   * One compared number: the analytic and the numeric directional derivative.
   *
   * @param order 1 (gradient) or 2 (Hessian-vector product)
   * @param direction index of the random direction
   * @param analytic the value from autograd
   * @param numeric the central finite difference
   */
  public record Comparison(int order, int direction, double analytic, double numeric) {
    /**
     * |analytic − numeric|.
     *
     * @return the absolute error
     */
    public double error() {
      return Math.abs(analytic - numeric);
    }
  }

  /**
   * {@link #check(Function, List, int, Options)} with {@link Options#defaults()}:
   * {@code GradCheck.check(xs -> xs.get(0).tanh().mul(xs.get(1)), List.of(x, w), 2)} returns 6
   * comparisons (3 directions, orders 1 and 2).
   *
   * @param f the function, of any output shape
   * @param inputs its F64 arguments (copied into fresh leaves)
   * @param order 1 or 2
   * @return every comparison made
   */
  public static List<Comparison> check(Function<List<Tensor>, Tensor> f, List<Tensor> inputs, int order) {
    return check(f, inputs, order, Options.defaults());
  }

  /**
   * Runs orders 1..{@code order} in {@code opt.directions()} random directions and returns every
   * comparison made; the first mismatch throws {@link AssertionError} with the numbers.
   * {@code GradCheck.check(f, List.of(x), 1, Options.defaults().withEps(1e-5))}.
   *
   * @param f the function, of any output shape
   * @param inputs its F64 arguments (copied into fresh leaves)
   * @param order 1 or 2
   * @param opt tolerances and sampling
   * @return every comparison made, in order
   * @throws MetakernelsException when order is not 1 or 2 or an input is not F64
   */
  public static List<Comparison> check(Function<List<Tensor>, Tensor> f, List<Tensor> inputs, int order, Options opt) {
    if (order < 1 || order > 2) throw new MetakernelsException("GradCheck: order must be 1 or 2, got " + order);
    for (Tensor t : inputs)
      if (t.dtype() != DType.F64)
        throw new MetakernelsException("GradCheck: inputs must be F64 for finite differences, got " + t.describe());
    List<Comparison> out = new ArrayList<>();
    try (Scope scope = Scope.open()) {
      List<Tensor> x = leaves(inputs);
      Tensor r;
      try (var ng = Autograd.noGrad()) {
        Tensor y0 = f.apply(x);
        r = Tensor.randn(y0.shape(), DType.F64, y0.device(), opt.seed());
      }
      Function<List<Tensor>, Tensor> loss = xs -> f.apply(xs).mul(r).sum();
      for (int dir = 0; dir < opt.directions(); dir++) {
        List<Tensor> v = directions(inputs, opt.seed() + 17 * (dir + 1));
        // order 1
        List<Tensor> g = Autograd.grad(List.of(loss.apply(x)), x, null, order == 2);
        double analytic = dot(g, v);
        double numeric = (eval(loss, shift(x, v, opt.eps())) - eval(loss, shift(x, v, -opt.eps()))) / (2 * opt.eps());
        out.add(compare(1, dir, analytic, numeric, opt));
        if (order == 2) {
          List<Tensor> u = directions(inputs, opt.seed() + 1000 + 31 * (dir + 1));
          Tensor s = null;
          for (int i = 0; i < g.size(); i++) {
            Tensor term = g.get(i).mul(u.get(i)).sum();
            s = s == null ? term : s.add(term);
          }
          double hv;
          if (s.requiresGrad()) hv = dot(Autograd.grad(List.of(s), x, null, false), v);
          else hv = 0.0;  // the gradient does not depend on x: the Hessian is zero
          Function<List<Tensor>, Tensor> sFn = xs -> {
            List<Tensor> gg = Autograd.grad(List.of(loss.apply(xs)), xs, null, false);
            Tensor acc = null;
            for (int i = 0; i < gg.size(); i++) {
              Tensor term = gg.get(i).mul(u.get(i)).sum();
              acc = acc == null ? term : acc.add(term);
            }
            return acc;
          };
          double hnum = (eval(sFn, shift(x, v, opt.eps())) - eval(sFn, shift(x, v, -opt.eps()))) / (2 * opt.eps());
          out.add(compare(2, dir, hv, hnum, opt));
        }
      }
    }
    return out;
  }

  private static Comparison compare(int order, int dir, double analytic, double numeric, Options opt) {
    Comparison c = new Comparison(order, dir, analytic, numeric);
    if (!(c.error() <= opt.atol() + opt.rtol() * Math.abs(numeric)) || Double.isNaN(analytic))
      throw new AssertionError(String.format("GradCheck order %d, direction %d: analytic %.12g vs numeric %.12g (error %.3g > %.3g)",
          order, dir, analytic, numeric, c.error(), opt.atol() + opt.rtol() * Math.abs(numeric)));
    return c;
  }

  private static List<Tensor> leaves(List<Tensor> inputs) {
    List<Tensor> out = new ArrayList<>();
    try (var ng = Autograd.noGrad()) {
      for (Tensor t : inputs) out.add(t.copyContiguous().requiresGrad(true));
    }
    return out;
  }

  private static List<Tensor> directions(List<Tensor> inputs, long seed) {
    List<Tensor> out = new ArrayList<>();
    for (int i = 0; i < inputs.size(); i++) {
      Tensor t = inputs.get(i);
      out.add(Tensor.randn(t.shape(), DType.F64, t.device(), seed * 7919 + i));
    }
    return out;
  }

  private static List<Tensor> shift(List<Tensor> x, List<Tensor> v, double eps) {
    List<Tensor> out = new ArrayList<>();
    try (var ng = Autograd.noGrad()) {
      for (int i = 0; i < x.size(); i++) out.add(x.get(i).add(v.get(i).mul(eps)).requiresGrad(true));
    }
    return out;
  }

  private static double eval(Function<List<Tensor>, Tensor> fn, List<Tensor> xs) {
    try (Scope s = Scope.open()) {
      return fn.apply(xs).item();
    }
  }

  private static double dot(List<Tensor> a, List<Tensor> b) {
    double s = 0;
    try (Scope sc = Scope.open(); var ng = Autograd.noGrad()) {
      for (int i = 0; i < a.size(); i++) s += a.get(i).mul(b.get(i)).sum().item();
    }
    return s;
  }
}
