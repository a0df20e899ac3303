package org.metakernels.bench;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.metakernels.runtime.Backend;
import org.metakernels.tensor.Tensor;

/**
 * The libtorch side of the benchmarks (org.bytedeco:pytorch): copies of metakernels tensors,
 * the thread setting, autograd calls and the version. Every libtorch tensor made here owns its
 * memory (from_blob is followed by clone), so the Java arrays can go.
 */
final class Torch {
  private Torch() {}

  /** Same number of intra-op threads as metakernels' OpenMP pool; returns it. */
  static int matchThreads() {
    int n = Backend.get().cpuThreads();
    if (torch.get_num_threads() != n) torch.set_num_threads(n);
    return torch.get_num_threads();
  }

  /** A libtorch F32 copy of a metakernels F32 CPU tensor (same values, same shape). */
  static org.bytedeco.pytorch.Tensor copyOf(Tensor t) {
    return fromFloats(t.toFloatArray(), t.shape());
  }

  static org.bytedeco.pytorch.Tensor fromFloats(float[] data, long... shape) {
    try (FloatPointer p = new FloatPointer(data)) {
      org.bytedeco.pytorch.Tensor view = torch.from_blob(p, shape);
      org.bytedeco.pytorch.Tensor owned = view.clone();
      view.close();
      return owned;
    }
  }

  static float[] toFloats(org.bytedeco.pytorch.Tensor t) {
    org.bytedeco.pytorch.Tensor c = t.detach().contiguous();
    float[] out = new float[(int) c.numel()];
    c.data_ptr_float().get(out);
    return out;
  }

  /** Head 0 of [B, H, ...] as its own contiguous tensor [B, 1, ...]. */
  static org.bytedeco.pytorch.Tensor head0(org.bytedeco.pytorch.Tensor t) {
    return t.narrow(1, 0, 1).contiguous();
  }

  /** A leaf that requires grad and shares {@code t}'s memory. */
  static org.bytedeco.pytorch.Tensor leaf(org.bytedeco.pytorch.Tensor t) {
    org.bytedeco.pytorch.Tensor l = t.detach();
    l.requires_grad_(true);
    return l;
  }

  /**
   * Frees a libtorch tensor handle now, even inside a PointerScope (whose close would otherwise
   * keep it until then): for large intermediates that C++ code would drop at once. The autograd
   * graph keeps its own references to what it saved.
   */
  static void free(org.bytedeco.pytorch.Tensor t) {
    if (t != null && !t.isNull()) t.deallocate();
  }

  /** torch::autograd::grad(outputs, inputs, gradOutputs, retain_graph = create_graph, create_graph). */
  static TensorVector grad(TensorVector outputs, TensorVector inputs, TensorVector gradOutputs, boolean createGraph) {
    return torch.grad(outputs, inputs, gradOutputs, new BoolOptional(), createGraph, false);
  }

  /** torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal = causal), default scale. */
  static org.bytedeco.pytorch.Tensor sdpa(org.bytedeco.pytorch.Tensor q, org.bytedeco.pytorch.Tensor k,
      org.bytedeco.pytorch.Tensor v, boolean causal) {
    return torch.scaled_dot_product_attention(q, k, v, new TensorOptional(), 0.0, causal, new DoubleOptional(), false);
  }

  /** The org.bytedeco:pytorch artifact version (libtorch version - JavaCPP version). */
  static String version() {
    try (InputStream in = Torch.class.getResourceAsStream("/META-INF/maven/org.bytedeco/pytorch/pom.properties")) {
      if (in != null) {
        Properties p = new Properties();
        p.load(in);
        return p.getProperty("version", "unknown");
      }
    } catch (IOException e) {
      // fall through
    }
    Package pkg = torch.class.getPackage();
    return pkg != null && pkg.getImplementationVersion() != null ? pkg.getImplementationVersion() : "unknown";
  }
}
