package org.metakernels.autograd;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.metakernels.graph.Graph;
import org.metakernels.graph.MessagePassing;
import org.metakernels.graph.Reduce;
import org.metakernels.nn.Activation;
import org.metakernels.nn.MLP;
import org.metakernels.nn.Weights;
import org.metakernels.ops.Attention;
import org.metakernels.ops.Functional;
import org.metakernels.ops.LinearAttention;
import org.metakernels.ops.Indexing;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;
import org.metakernels.testing.Nd;

/**
 * First and second derivatives of every differentiable op against central finite differences
 * (GradCheck, order 2, float64). Inputs keep away from kinks and ties.
 */
class GradCheckOpsTest {
  static final Device CPU = Device.CPU;
  static final MLP PER_EXAMPLE_NET = new MLP(new long[] {3, 4, 2}, Activation.TANH, DType.F64, Device.CPU, 5);

  /** A function of F64 inputs and a supplier of those inputs (called inside the test's scope). */
  record Case(String name, Function<List<Tensor>, Tensor> f, Supplier<List<Tensor>> inputs) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Random rng(String name) {
    return new Random(name.hashCode());
  }

  static Tensor u(Random r, double lo, double hi, int... shape) {
    return Nd.uniform(r, lo, hi, shape).f64();
  }

  /** Values in ±[lo, hi): away from 0. */
  static Tensor away(Random r, double lo, double hi, int... shape) {
    return Nd.awayFromZero(r, lo, hi, shape).f64();
  }

  static Tensor idx(long... v) {
    return Tensor.ofIndices(v, v.length);
  }

  static List<Case> cases = new ArrayList<>();

  static final long[] GRAPH_SRC = {0, 1, 2, 2, 3, 4, 1, 1, 5, 0, 3};
  static final long[] GRAPH_DST = {1, 1, 0, 2, 1, 4, 3, 3, 4, 4, 0};

  /** f of a 6-node test graph built now and owned by the current scope. */
  static Tensor onGraph(Function<Graph, Tensor> f) {
    return f.apply(Graph.fromEdges(GRAPH_SRC, GRAPH_DST, 6).ownedBy(Scope.current()));
  }

  static void unary(String name, Function<Tensor, Tensor> f, double lo, double hi, boolean awayFromZero) {
    cases.add(new Case(name, xs -> f.apply(xs.get(0)), () -> {
      Random r = rng(name);
      return List.of(awayFromZero ? away(r, lo, hi, 3, 4) : u(r, lo, hi, 3, 4));
    }));
  }

  static void add(String name, Function<List<Tensor>, Tensor> f, Function<Random, List<Tensor>> in) {
    cases.add(new Case(name, f, () -> in.apply(rng(name))));
  }

  static {
    // ---- elementwise unary and scalar forms
    unary("neg", Tensor::neg, -2, 2, false);
    unary("exp", Tensor::exp, -2, 2, false);
    unary("log", Tensor::log, 0.3, 3, false);
    unary("log1p", Tensor::log1p, -0.6, 3, false);
    unary("tanh", Tensor::tanh, -2, 2, false);
    unary("sigmoid", Tensor::sigmoid, -4, 4, false);
    unary("softplus", Tensor::softplus, -4, 4, false);
    unary("relu", Tensor::relu, 0.1, 2, true);
    unary("gelu", Tensor::gelu, -3, 3, false);
    unary("elu1", Tensor::elu1, 0.1, 2, true);
    unary("sqrt", Tensor::sqrt, 0.3, 3, false);
    unary("rsqrt", Tensor::rsqrt, 0.3, 3, false);
    unary("square", Tensor::square, -2, 2, false);
    unary("pow(3)", t -> t.pow(3.0), -2, 2, false);
    unary("pow(0.5)", t -> t.pow(0.5), 0.3, 3, false);
    unary("pow(-1.5)", t -> t.pow(-1.5), 0.3, 3, false);
    unary("pow(1)", t -> t.pow(1.0), -2, 2, false);
    unary("abs", Tensor::abs, 0.1, 2, true);
    unary("reciprocal", Tensor::reciprocal, 0.3, 2, true);
    unary("cos", Tensor::cos, -3, 3, false);
    unary("sin", Tensor::sin, -3, 3, false);
    add("clampMin", xs -> xs.get(0).clampMin(0.3).square(), r -> List.of(away(r, 0.05, 1, 3, 4).add(0.3)));
    add("clampMax", xs -> xs.get(0).clampMax(-0.2).square(), r -> List.of(away(r, 0.05, 1, 3, 4).sub(0.2)));
    add("relu composed", xs -> xs.get(0).relu().square().mul(xs.get(0)), r -> List.of(away(r, 0.1, 2, 5)));
    add("scalar forms", xs -> xs.get(0).add(0.5).mul(-1.5).sub(0.25).div(3.0).rsub(2.0).square(),
        r -> List.of(u(r, -2, 2, 2, 3)));
    // ---- binary with broadcasting
    add("add", xs -> xs.get(0).add(xs.get(1)).square(), r -> List.of(u(r, -2, 2, 3, 1, 4), u(r, -2, 2, 5, 1)));
    add("sub", xs -> xs.get(0).sub(xs.get(1)).square(), r -> List.of(u(r, -2, 2, 4), u(r, -2, 2, 3, 4)));
    add("mul", xs -> xs.get(0).mul(xs.get(1)), r -> List.of(u(r, -2, 2, 2, 3, 1), u(r, -2, 2, 1, 4)));
    add("mul same", xs -> xs.get(0).mul(xs.get(0)).mul(xs.get(1)), r -> List.of(u(r, -2, 2, 3), u(r, -2, 2, 2, 3)));
    add("div", xs -> xs.get(0).div(xs.get(1)), r -> List.of(u(r, -2, 2, 3, 4), away(r, 0.5, 2, 4)));
    add("div 0-d", xs -> xs.get(0).div(xs.get(1)), r -> List.of(away(r, 0.5, 2), u(r, -2, 2, 3, 2)));
    add("pow tensor", xs -> xs.get(0).pow(xs.get(1)), r -> List.of(u(r, 0.5, 2, 3, 4), u(r, -1.5, 1.5, 1, 4)));
    add("maximum", xs -> xs.get(0).maximum(xs.get(1)).square(), r -> {
      Tensor a = u(r, -2, 2, 3, 4);
      return List.of(a, a.add(away(r, 0.1, 1, 3, 4)).narrow(0, 0, 1));
    });
    add("minimum", xs -> xs.get(0).minimum(xs.get(1)).square(), r -> {
      Tensor a = u(r, -2, 2, 3, 4);
      return List.of(a.add(away(r, 0.1, 1, 3, 4)).narrow(1, 1, 1), a);
    });
    add("where", xs -> {
      Tensor cond = Tensor.of(new double[] {1, 0, 0, 1}, 4);
      return Tensor.where(cond, xs.get(0).square(), xs.get(1).exp());
    }, r -> List.of(u(r, -2, 2, 3, 4), u(r, -2, 2, 1)));
    // ---- reductions
    add("sum all", xs -> xs.get(0).square().sum(), r -> List.of(u(r, -2, 2, 3, 4)));
    add("sum dim", xs -> xs.get(0).sum(1, false).square(), r -> List.of(u(r, -2, 2, 3, 4, 2)));
    add("sum dims keep", xs -> xs.get(0).sum(new int[] {0, 2}, true).square(), r -> List.of(u(r, -2, 2, 3, 4, 2)));
    add("sum transposed", xs -> xs.get(0).mT().sum(0, true).tanh(), r -> List.of(u(r, -2, 2, 3, 4)));
    add("mean", xs -> xs.get(0).mean(-1, true).square().add(xs.get(0).mean()), r -> List.of(u(r, -2, 2, 3, 4)));
    add("mean dims", xs -> xs.get(0).mean(new int[] {1, 2}, false).exp(), r -> List.of(u(r, -2, 2, 2, 3, 4)));
    add("var biased", xs -> xs.get(0).var(1, false, false), r -> List.of(u(r, -2, 2, 3, 5)));
    add("var unbiased keep", xs -> xs.get(0).var(0, true, true).sqrt(), r -> List.of(u(r, -2, 2, 4, 3)));
    add("max values", xs -> xs.get(0).max(1, false).values().square(), r -> List.of(u(r, -2, 2, 3, 5)));
    add("min values keep", xs -> xs.get(0).min(0, true).values().exp(), r -> List.of(u(r, -2, 2, 4, 3)));
    add("max all", xs -> xs.get(0).max().square(), r -> List.of(u(r, -2, 2, 3, 5)));
    add("max transposed", xs -> xs.get(0).mT().max(-1, false).values().square(), r -> List.of(u(r, -2, 2, 3, 5)));
    add("logsumexp", xs -> xs.get(0).logsumexp(1, false), r -> List.of(u(r, -2, 2, 3, 5)));
    add("logsumexp keep dim0", xs -> xs.get(0).logsumexp(0, true).square(), r -> List.of(u(r, -2, 2, 4, 3)));
    add("softmax last", xs -> xs.get(0).softmax(-1), r -> List.of(u(r, -2, 2, 3, 5)));
    add("softmax dim0", xs -> xs.get(0).softmax(0), r -> List.of(u(r, -2, 2, 4, 3, 2)));
    add("softmax transposed", xs -> xs.get(0).mT().softmax(1), r -> List.of(u(r, -2, 2, 4, 3)));
    add("logSoftmax last", xs -> xs.get(0).logSoftmax(1), r -> List.of(u(r, -2, 2, 3, 5)));
    add("logSoftmax dim1 of 3", xs -> xs.get(0).logSoftmax(1), r -> List.of(u(r, -2, 2, 2, 4, 3)));
    add("sumTo", xs -> xs.get(0).square().sumTo(new long[] {3, 1}), r -> List.of(u(r, -2, 2, 2, 3, 4)));
    // ---- matmul
    add("matmul 2d", xs -> xs.get(0).matmul(xs.get(1)).tanh(), r -> List.of(u(r, -1, 1, 3, 4), u(r, -1, 1, 4, 2)));
    add("matmul batched", xs -> xs.get(0).matmul(xs.get(1)).tanh(),
        r -> List.of(u(r, -1, 1, 2, 3, 4), u(r, -1, 1, 2, 4, 2)));
    add("matmul 4d broadcast", xs -> xs.get(0).matmul(xs.get(1)).tanh(),
        r -> List.of(u(r, -1, 1, 2, 1, 3, 4), u(r, -1, 1, 3, 4, 2)));
    add("matmul 3d x 2d", xs -> xs.get(0).matmul(xs.get(1)).tanh(), r -> List.of(u(r, -1, 1, 2, 3, 4), u(r, -1, 1, 4, 5)));
    add("matmul 3d x 2d transposed", xs -> xs.get(0).mT().matmul(xs.get(1).mT()).tanh(),
        r -> List.of(u(r, -1, 1, 2, 4, 3), u(r, -1, 1, 5, 4)));
    add("matmul 2d x 3d", xs -> xs.get(0).matmul(xs.get(1)).tanh(), r -> List.of(u(r, -1, 1, 3, 4), u(r, -1, 1, 2, 4, 2)));
    add("matmul mT", xs -> xs.get(0).mT().matmul(xs.get(1).mT()).sin(),
        r -> List.of(u(r, -1, 1, 4, 3), u(r, -1, 1, 2, 4)));
    add("matmul 1d left", xs -> xs.get(0).matmul(xs.get(1)).tanh(), r -> List.of(u(r, -1, 1, 4), u(r, -1, 1, 2, 4, 3)));
    add("matmul 1d right", xs -> xs.get(0).matmul(xs.get(1)).tanh(), r -> List.of(u(r, -1, 1, 3, 4), u(r, -1, 1, 4)));
    add("matmul 1d both", xs -> xs.get(0).matmul(xs.get(1)).tanh(), r -> List.of(u(r, -1, 1, 4), u(r, -1, 1, 4)));
    add("matmul self", xs -> xs.get(0).matmul(xs.get(0).mT()), r -> List.of(u(r, -1, 1, 3, 4)));
    add("linear", xs -> Functional.linear(xs.get(0), xs.get(1), xs.get(2)).tanh(),
        r -> List.of(u(r, -1, 1, 2, 3, 4), u(r, -1, 1, 5, 4), u(r, -1, 1, 5)));
    // ---- views and copies
    add("reshape -1", xs -> xs.get(0).reshape(4, -1).square().matmul(xs.get(0).reshape(-1, 4)),
        r -> List.of(u(r, -1, 1, 2, 2, 3)));
    add("permute", xs -> xs.get(0).permute(2, 0, 1).square().reshape(4, 6).sin(), r -> List.of(u(r, -1, 1, 2, 3, 4)));
    add("transpose", xs -> xs.get(0).transpose(0, 2).exp().contiguous(), r -> List.of(u(r, -1, 1, 2, 3, 4)));
    add("narrow", xs -> xs.get(0).narrow(1, 1, 2).square().add(xs.get(0).narrow(0, 0, 1).narrow(1, 2, 2)),
        r -> List.of(u(r, -1, 1, 3, 4)));
    add("select", xs -> xs.get(0).select(1, 2).square().mul(xs.get(0).select(-1, 0)),
        r -> List.of(u(r, -1, 1, 3, 3)));
    add("expand", xs -> xs.get(0).expand(2, 3, 4).square().mul(xs.get(1)),
        r -> List.of(u(r, -1, 1, 3, 1), u(r, -1, 1, 2, 3, 4)));
    add("unsqueeze squeeze", xs -> xs.get(0).unsqueeze(1).square().mul(xs.get(0).unsqueeze(0)).squeeze(0).exp(),
        r -> List.of(u(r, -1, 1, 1, 3)));
    add("contiguous", xs -> xs.get(0).mT().contiguous().square().mul(xs.get(0).mT()), r -> List.of(u(r, -1, 1, 3, 4)));
    add("concat", xs -> Tensor.concat(List.of(xs.get(0).square(), xs.get(1), xs.get(0).exp()), 1).tanh(),
        r -> List.of(u(r, -1, 1, 2, 3), u(r, -1, 1, 2, 2)));
    add("stack", xs -> Tensor.stack(List.of(xs.get(0).square(), xs.get(1).mul(xs.get(0))), -1).sin(),
        r -> List.of(u(r, -1, 1, 2, 3), u(r, -1, 1, 2, 3)));
    // ---- indexing
    add("indexSelect", xs -> xs.get(0).indexSelect(0, idx(2, 0, 2, 1)).square(), r -> List.of(u(r, -1, 1, 3, 2)));
    add("indexSelect dim1", xs -> xs.get(0).indexSelect(1, idx(1, 1, 0)).exp(), r -> List.of(u(r, -1, 1, 2, 3, 2)));
    add("indexAdd", xs -> Indexing.indexAdd(xs.get(0), 0, idx(1, 1, 0), xs.get(1).square()).sin(),
        r -> List.of(u(r, -1, 1, 3, 2), u(r, -1, 1, 3, 2)));
    add("gather", xs -> xs.get(0).gather(1, Tensor.ofIndices(new long[] {2, 0, 0, 1, 1, 1}, 3, 2)).square(),
        r -> List.of(u(r, -1, 1, 3, 3)));
    add("scatterAdd", xs -> Indexing.scatterAdd(xs.get(0), 0, Tensor.ofIndices(new long[] {1, 0, 1, 1}, 2, 2),
        xs.get(1).square()).exp(), r -> List.of(u(r, -1, 1, 3, 2), u(r, -1, 1, 2, 2)));
    // ---- functional
    add("layerNorm", xs -> Functional.layerNorm(xs.get(0), xs.get(1), xs.get(2), 1e-5),
        r -> List.of(u(r, -2, 2, 3, 5), u(r, 0.5, 2, 5), u(r, -1, 1, 5)));
    add("layerNorm plain", xs -> Functional.layerNorm(xs.get(0), null, null, 0.1).square(),
        r -> List.of(u(r, -2, 2, 2, 2, 4)));
    add("mse", xs -> Functional.mse(xs.get(0).tanh(), xs.get(1)), r -> List.of(u(r, -2, 2, 3, 4), u(r, -1, 1, 3, 4)));
    add("crossEntropy", xs -> Functional.crossEntropy(xs.get(0), Tensor.ofIndices(new long[] {2, 0, 3}, 3)),
        r -> List.of(u(r, -2, 2, 3, 4)));
    add("crossEntropy of linear", xs -> Functional.crossEntropy(xs.get(0).matmul(xs.get(1)),
        Tensor.ofIndices(new long[] {1, 0, 1, 2}, 4)), r -> List.of(u(r, -1, 1, 4, 3), u(r, -1, 1, 3, 3)));
    // ---- fused attention (forward, fused backward and double backward kernels) and linear attention
    add("attention gqa keyLengths bias", xs -> {
      Tensor len = Tensor.ofIndices(new long[] {5, 3}, 2);
      Attention.Output o = Attention.forward(xs.get(0), xs.get(1), xs.get(2),
          Attention.Options.defaults().withKeyLengths(len).withBias(xs.get(3)));
      return o.out().tanh();  // o.lse() is not differentiable (returned detached); the backward reads it
    }, r -> List.of(u(r, -1, 1, 2, 2, 3, 4), u(r, -1, 1, 2, 1, 5, 4), u(r, -1, 1, 2, 1, 5, 3),
        u(r, -1, 1, 1, 2, 3, 5)));
    add("attention causal", xs -> Attention.softmax(xs.get(0), xs.get(1), xs.get(2), Attention.Options.causal()).sin(),
        r -> List.of(u(r, -1, 1, 1, 2, 4, 3), u(r, -1, 1, 1, 2, 5, 3), u(r, -1, 1, 1, 2, 5, 2)));
    add("linear attention causal elu+1", xs -> LinearAttention.apply(xs.get(0), xs.get(1), xs.get(2),
        LinearAttention.FeatureMap.ELU_PLUS_ONE, true).tanh(),
        r -> List.of(u(r, -1, 1, 1, 2, 4, 3), u(r, -1, 1, 1, 2, 4, 3), u(r, -1, 1, 1, 2, 4, 2)));
    add("linear attention product", xs -> LinearAttention.product(xs.get(0), xs.get(1), xs.get(2),
        LinearAttention.Mask.CAUSAL).sin(),
        r -> List.of(u(r, -1, 1, 1, 2, 4, 3), u(r, -1, 1, 1, 2, 4, 3), u(r, -1, 1, 1, 2, 4, 2)));
    add("momentum", xs -> LinearAttention.momentum(xs.get(0).square(), 0.7, false).sin(),
        r -> List.of(u(r, -1, 1, 1, 2, 4, 3)));
    // ---- fused optimizer steps (one kernel, a fused backward; its backward in composite ops)
    add("inner step sgd, broadcast lr", xs -> org.metakernels.meta.InnerStep.sgd(xs.get(0), xs.get(1).sin(),
        org.metakernels.meta.InnerStep.Sgd.lr(xs.get(2)).withWeightDecay(0.01)).sin(),
        r -> List.of(u(r, -1, 1, 3, 4), u(r, -1, 1, 3, 4), u(r, 0.05, 0.15, 4)));
    add("inner step nesterov", xs -> {
      var o = org.metakernels.meta.InnerStep.momentum(xs.get(0), xs.get(1), xs.get(2),
          org.metakernels.meta.InnerStep.Momentum.lr(xs.get(3)).withMomentum(xs.get(4)).withNesterov(true));
      return o.param().mul(o.buffer());
    }, r -> List.of(u(r, -1, 1, 2, 3), u(r, -1, 1, 2, 3), u(r, -1, 1, 2, 3), u(r, 0.05, 0.15), u(r, 0.7, 0.9, 2, 3)));
    add("inner step adamw", xs -> {
      var o = org.metakernels.meta.InnerStep.adam(xs.get(0), xs.get(1), xs.get(2), xs.get(3), 2,
          org.metakernels.meta.InnerStep.Adam.lr(xs.get(4)).withBetas(xs.get(5), xs.get(6)).withWeightDecay(0.1)
              .withDecoupledWeightDecay(true));
      return o.param().add(o.m().mul(o.v()));
    }, r -> List.of(u(r, -1, 1, 2, 3), u(r, -1, 1, 2, 3), u(r, -0.1, 0.1, 2, 3), u(r, 0.05, 0.5, 2, 3),
        u(r, 0.005, 0.02), u(r, 0.8, 0.9), u(r, 0.9, 0.95)));
    // ---- graph message passing: isolated node 5, self-loops 2->2 and 4->4, the duplicate 1->3, a
    // larger row (node 1). The graph is built per call and owned by the caller's scope, so the
    // mutation test of SavedTensorVersionTest also edits its index tensors.
    add("graph aggregate sum", xs -> onGraph(g -> MessagePassing.aggregate(g, xs.get(0), xs.get(1), Reduce.SUM).tanh()),
        r -> List.of(u(r, -1, 1, 6, 3), u(r, -1, 1, GRAPH_SRC.length)));
    add("graph aggregate mean", xs -> onGraph(g -> MessagePassing.aggregate(g, xs.get(0).square(), xs.get(1),
        Reduce.MEAN).sin()), r -> List.of(u(r, -1, 1, 6, 3), u(r, -1, 1, GRAPH_SRC.length)));
    add("graph aggregate max", xs -> onGraph(g -> MessagePassing.aggregate(g, xs.get(0), xs.get(1).exp(),
        Reduce.MAX).square()), r -> List.of(u(r, -1, 1, 6, 3), u(r, -1, 1, GRAPH_SRC.length)));
    add("graph aggregate min multi-head", xs -> onGraph(g -> MessagePassing.aggregate(g, xs.get(0).reshape(6, 2, 2),
        xs.get(1), Reduce.MIN).square()), r -> List.of(u(r, -1, 1, 6, 4), u(r, -1, 1, GRAPH_SRC.length, 2)));
    add("graph sddmm", xs -> onGraph(g -> MessagePassing.sddmm(g, xs.get(0), xs.get(0).sin()).mul(xs.get(1)).tanh()),
        r -> List.of(u(r, -1, 1, 6, 3), u(r, -1, 1, GRAPH_SRC.length)));
    add("max indices", xs -> {
      org.metakernels.ops.Reductions.ValuesIndices m = xs.get(0).max(1, false);
      return m.values().square().add(xs.get(1).gather(1, m.indices().unsqueeze(1)).squeeze(1));
    }, r -> List.of(u(r, -2, 2, 3, 5), u(r, -2, 2, 3, 5)));
    // ---- Hessian-vector product (reverse over reverse, built with createGraph): its own first and
    // second derivatives are third and fourth derivatives of the loss
    add("hessian-vector product", xs -> Autograd.hvp(in -> {
      Tensor x = in.get(0);
      return x.tanh().square().sum().add(x.matmul(x.mT()).sin().sum());
    }, List.of(xs.get(0)), List.of(xs.get(1)), true).get(0).sin(), r -> List.of(u(r, -1, 1, 2, 3), u(r, -1, 1, 2, 3)));
    // ---- per-example gradients: the fused norm kernel (its backward in composite ops), rank-1 and
    // sequence inputs, and the per-example gradients of an MLP as a function of the batch
    add("per-example linear norm", xs -> org.metakernels.meta.PerExample.linearNormsSquared(xs.get(0),
        xs.get(1).sin()).sqrt(), r -> List.of(u(r, -1, 1, 3, 4), u(r, -1, 1, 3, 2)));
    add("per-example linear norm sequence", xs -> org.metakernels.meta.PerExample.linearNormsSquared(xs.get(0),
        xs.get(1)).log(), r -> List.of(u(r, -1, 1, 2, 3, 4), u(r, -1, 1, 2, 3, 2)));
    add("per-example gradients of an MLP", xs -> {
      // the net lives as long as the test class (a module owns its parameters; the tape reads them)
      org.metakernels.meta.PerExample.Result res = org.metakernels.meta.PerExample.gradients(PER_EXAMPLE_NET,
          xs.get(0), out -> out.sub(xs.get(1)).square().sum(1, false), true);
      return res.gradients().get("layer0.weight").sin().add(org.metakernels.meta.PerExample.normsSquared(
          PER_EXAMPLE_NET, xs.get(0), out -> out.sub(xs.get(1)).square().sum(1, false), true).sum());
    }, r -> List.of(u(r, -1, 1, 3, 3), u(r, -1, 1, 3, 2)));
    // edge softmax over each node's in-edges and the fused GAT aggregation (x, both score vectors)
    add("graph edge softmax", xs -> onGraph(g -> MessagePassing.edgeSoftmax(g, xs.get(0)).mul(xs.get(1)).sin()),
        r -> List.of(u(r, -2, 2, GRAPH_SRC.length, 2), u(r, -1, 1, GRAPH_SRC.length, 2)));
    add("graph gat aggregate", xs -> onGraph(g -> MessagePassing.gatAggregate(g, xs.get(0).reshape(6, 2, 2), xs.get(1),
        xs.get(2), 0.2).tanh()), r -> List.of(u(r, -1, 1, 6, 4), u(r, -1, 1, 6, 2), u(r, -1, 1, 6, 2)));
    // ---- heterogeneous graphs: meta-path aggregation (factorised chain and materialised), GCNConv,
    // SAGEConv and HAN's semantic attention, with substituted weights
    add("meta-path chain GCN", xs -> Hetero.PSP_CHAIN.apply(xs.get(0)).tanh(), r -> List.of(u(r, -1, 1, 6, 3)));
    add("meta-path chain row", xs -> Hetero.PAP_CHAIN.apply(xs.get(0).square()).sin(), r -> List.of(u(r, -1, 1, 6, 3)));
    add("meta-path materialised GCN", xs -> Hetero.PAP_MAT.apply(xs.get(0)).tanh(), r -> List.of(u(r, -1, 1, 6, 3)));
    add("GCNConv", xs -> onGraph(g -> Hetero.GCN.forward(g, xs.get(0), Hetero.w("weight", xs.get(1), "bias", xs.get(2)))
        .tanh()), r -> List.of(u(r, -1, 1, 6, 3), u(r, -1, 1, 2, 3), u(r, -1, 1, 2)));
    add("GCNConv over meta-path", xs -> Hetero.GCN.forward(Hetero.PSP_CHAIN, xs.get(0),
        Hetero.w("weight", xs.get(1), "bias", xs.get(2))).sin(),
        r -> List.of(u(r, -1, 1, 6, 3), u(r, -1, 1, 2, 3), u(r, -1, 1, 2)));
    add("SAGEConv mean", xs -> onGraph(g -> Hetero.SAGE_MEAN.forward(g, xs.get(0), Hetero.w("neighbor.weight",
        xs.get(1), "neighbor.bias", xs.get(2), "root.weight", xs.get(3))).tanh()),
        r -> List.of(u(r, -1, 1, 6, 3), u(r, -1, 1, 2, 3), u(r, -1, 1, 2), u(r, -1, 1, 2, 3)));
    add("SAGEConv max", xs -> onGraph(g -> Hetero.SAGE_MAX.forward(g, xs.get(0), Hetero.w("neighbor.weight",
        xs.get(1), "neighbor.bias", xs.get(2), "root.weight", xs.get(3))).square()),
        r -> List.of(u(r, -1, 1, 6, 3), u(r, -1, 1, 2, 3), u(r, -1, 1, 2), u(r, -1, 1, 2, 3)));
    add("semantic attention", xs -> Hetero.ATT.forward(xs.get(0), Hetero.w("proj.weight", xs.get(1), "proj.bias",
        xs.get(2), "query", xs.get(3))).tanh(),
        r -> List.of(u(r, -1, 1, 3, 6, 4), u(r, -1, 1, 2, 4), u(r, -1, 1, 2), u(r, -1, 1, 2)));
    add("infoNce", xs -> Functional.infoNce(xs.get(0), xs.get(1), 0.7, null, null),
        r -> List.of(u(r, -1, 1, 4, 3), u(r, -1, 1, 4, 3)));
    add("infoNce weighted, several positives", xs -> Functional.infoNce(xs.get(0), xs.get(1), 0.5,
        Tensor.of(new double[] {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, 4, 4), xs.get(2)),
        r -> List.of(u(r, -1, 1, 4, 3), u(r, -1, 1, 4, 3), u(r, -1, 1, 4, 4)));
    // ---- the fused linear layer (one node forward, one node backward) for every fused activation,
    // with a leading batch dim; the output squared (and for relu shifted) so the second order of
    // every input is exercised; relu's inputs keep z away from its kink
    for (Activation act : new Activation[] {Activation.IDENTITY, Activation.TANH, Activation.SIGMOID}) {
      add("fused linear " + act, xs -> Functional.linear(xs.get(0), xs.get(1), xs.get(2), act).square().sin(),
          r -> List.of(u(r, -1, 1, 2, 3, 4), u(r, -1, 1, 5, 4), u(r, -1, 1, 5)));
      add("fused linear " + act + " without bias", xs -> Functional.linear(xs.get(0), xs.get(1), null, act).square(),
          r -> List.of(u(r, -1, 1, 3, 4), u(r, -1, 1, 2, 4)));
    }
    add("fused linear RELU", xs -> Functional.linear(xs.get(0), xs.get(1), xs.get(2), Activation.RELU).square().sin(),
        r -> List.of(Tensor.of(new double[] {1, 0.5, -0.25, 0.8, 0.3, -0.6}, 2, 3),
            Tensor.of(new double[] {0.7, -0.2, 0.4, -0.5, 0.9, 0.1, 0.3, 0.6, -0.8, -0.4, 0.2, 0.5}, 4, 3),
            Tensor.of(new double[] {0.3, -0.35, 0.25, -0.6}, 4)));
    add("fused linear TANH in a 2-layer MLP", xs -> Functional.linear(Functional.linear(xs.get(0), xs.get(1), xs.get(2),
        Activation.TANH), xs.get(3), null, Activation.SIGMOID).sum(),
        r -> List.of(u(r, -1, 1, 4, 3), u(r, -1, 1, 5, 3), u(r, -1, 1, 5), u(r, -1, 1, 2, 5)));
    // ---- the fused mse (one node, its backward one node), in both arguments; its output scaled by a
    // function of the inputs so the gradient seed g is differentiated too
    add("fused mse", xs -> Functional.mse(xs.get(0), xs.get(1)).mul(xs.get(0).sum().sin()),
        r -> List.of(u(r, -1, 1, 2, 3, 2), u(r, -1, 1, 2, 3, 2)));
    add("fused mse of a fused linear", xs -> Functional.mse(Functional.linear(xs.get(0), xs.get(1), null,
        Activation.TANH), xs.get(2)).square(), r -> List.of(u(r, -1, 1, 4, 3), u(r, -1, 1, 2, 3), u(r, -1, 1, 4, 2)));
    // the fused GAT backward (order 1, no createGraph) with 3 heads of width 9 (the dot's 8 lanes
    // and a tail), scores made from x, a slope of 0.5; order 2 runs the composed form
    add("graph gat aggregate multi-head, scores from x", xs -> onGraph(g -> {
      Tensor h = xs.get(0).reshape(6, 3, 9);
      Tensor s = h.mul(xs.get(1).reshape(1, 3, 9)).sum(2, false);
      return MessagePassing.gatAggregate(g, h, s, s.mul(-0.7).add(xs.get(2)), 0.5).sin();
    }), r -> List.of(u(r, -1, 1, 6, 27), u(r, -1, 1, 3, 9), u(r, -1, 1, 6, 3)));
  }

  /** The heterogeneous-graph cases' fixed operators and layers (built once, tiny, never freed). */
  static final class Hetero {
    static final org.metakernels.graph.HeteroGraph H = org.metakernels.graph.HeteroGraph.builder()
        .nodeType("paper", 6).nodeType("author", 4).nodeType("subject", 2)
        .relation("writtenBy", "paper", "author", new long[] {0, 0, 1, 2, 3, 3, 4, 5, 5}, new long[] {0, 1, 1, 2, 2, 3, 0, 3, 3})
        .relation("about", "paper", "subject", new long[] {0, 1, 2, 3, 4}, new long[] {0, 0, 1, 1, 0})
        .build();
    static final org.metakernels.graph.MetaPath PSP_CHAIN = H.metaPath(List.of("paper", "subject", "paper"),
        org.metakernels.graph.MetaPath.Normalization.GCN, false, org.metakernels.graph.MetaPath.Strategy.CHAIN,
        DType.F64, CPU);
    static final org.metakernels.graph.MetaPath PAP_CHAIN = H.metaPath(List.of("paper", "author", "paper"),
        org.metakernels.graph.MetaPath.Normalization.ROW, false, org.metakernels.graph.MetaPath.Strategy.CHAIN,
        DType.F64, CPU);
    static final org.metakernels.graph.MetaPath PAP_MAT = H.metaPath(List.of("paper", "author", "paper"),
        org.metakernels.graph.MetaPath.Normalization.GCN, false, org.metakernels.graph.MetaPath.Strategy.MATERIALIZED,
        DType.F64, CPU);
    static final org.metakernels.nn.GCNConv GCN = new org.metakernels.nn.GCNConv(3, 2, true, true, DType.F64, CPU, 1);
    static final org.metakernels.nn.SAGEConv SAGE_MEAN =
        new org.metakernels.nn.SAGEConv(3, 2, Reduce.MEAN, true, DType.F64, CPU, 2);
    static final org.metakernels.nn.SAGEConv SAGE_MAX =
        new org.metakernels.nn.SAGEConv(3, 2, Reduce.MAX, true, DType.F64, CPU, 3);
    static final org.metakernels.nn.SemanticAttention ATT =
        new org.metakernels.nn.SemanticAttention(4, 2, DType.F64, CPU, 4);

    static Weights w(Object... kv) {
      java.util.Map<String, Tensor> m = new java.util.LinkedHashMap<>();
      for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], (Tensor) kv[i + 1]);
      return Weights.of(m);
    }
  }

  static Stream<Case> allCases() {
    return cases.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("allCases")
  void secondOrder(Case c) {
    try (Scope s = Scope.open()) {
      List<Tensor> in = c.inputs().get();
      List<GradCheck.Comparison> res = GradCheck.check(c.f(), in, 2);
      assertEquals(6, res.size(), "3 directions x 2 orders");
      // the check is not vacuous: the first-order derivative is non-zero
      assertTrue(res.stream().filter(x -> x.order() == 1).anyMatch(x -> Math.abs(x.numeric()) > 1e-6), c.name());
    }
  }

  @Test
  void mlpLossSecondOrder() {
    try (Scope s = Scope.open(); MLP net = new MLP(new long[] {3, 5, 4, 2}, Activation.TANH, DType.F64, CPU, 3)) {
      Random r = new Random(61);
      Tensor x = u(r, -1, 1, 6, 3), y = u(r, -1, 1, 6, 2);
      List<Tensor> params = new ArrayList<>();
      List<String> names = new ArrayList<>(net.namedParameters().keySet());
      for (Tensor p : net.parameters()) params.add(p.detach());
      GradCheck.check(ps -> {
        java.util.Map<String, Tensor> w = new java.util.LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) w.put(names.get(i), ps.get(i));
        return Functional.mse(net.forward(x, Weights.of(w)), y);
      }, params, 2);
    }
  }

  @Test
  void geluAndSigmoidMlpClassifierSecondOrder() {
    try (Scope s = Scope.open()) {
      Random r = new Random(62);
      Tensor x = u(r, -1, 1, 5, 3);
      Tensor t = Tensor.ofIndices(new long[] {0, 2, 1, 1, 0}, 5);
      GradCheck.check(ps -> {
        Tensor h = x.matmul(ps.get(0)).add(ps.get(1)).gelu();
        Tensor h2 = Functional.layerNorm(h, null, null, 1e-3).sigmoid();
        return Functional.crossEntropy(h2.matmul(ps.get(2)), t).add(ps.get(0).square().sum().mul(0.01));
      }, List.of(u(r, -1, 1, 3, 4), u(r, -1, 1, 4), u(r, -1, 1, 4, 3)), 2);
    }
  }

  @Test
  void gradCheckCatchesAWrongRule() {
    try (Scope s = Scope.open()) {
      // a function whose recorded gradient is wrong: detach() cuts one path
      Tensor x = u(new Random(63), -1, 1, 4);
      assertThrows(AssertionError.class,
          () -> GradCheck.check(xs -> xs.get(0).mul(xs.get(0).detach().add(xs.get(0).mul(0.0))), List.of(x), 1));
    }
  }
}
