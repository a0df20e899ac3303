package org.metakernels.bench;

import org.bytedeco.pytorch.global.torch;
import org.metakernels.runtime.Backend;

/**
 * Prints, as {@code key: value} lines, what the benchmark report's header needs: metakernels'
 * backend and threads, the libtorch version and its thread setting after {@link Torch#matchThreads()}.
 * benchmarks/run.sh runs it with the same JVM options as the benchmarks.
 */
public final class Env {
  private Env() {}

  public static void main(String[] args) {
    Backend b = Backend.get();
    System.out.println("metakernels.threads: " + b.cpuThreads());
    System.out.println("metakernels.isa: " + b.cpuIsa());
    System.out.println("metakernels.blas: " + (b.hasBlas() ? "OpenBLAS" : "built-in matmul"));
    System.out.println("metakernels.cuda: " + (b.cudaAvailable() ? "available" : "unavailable"));
    // the BLAS both libraries share (the bytedeco OpenBLAS): its configuration and the core type
    // it runs, which OPENBLAS_CORETYPE overrides
    System.out.println("openblas: " + org.metakernels.runtime.MkNative.mk_runtime_blas_info().getString());
    // every variable that changes a peer's speed, as this JVM sees them
    System.getenv().entrySet().stream()
        .filter(e -> e.getKey().matches("(OPENBLAS|OMP|GOMP|KMP|MKL|ATEN|DNNL|ONEDNN|TORCH)_.*"))
        .sorted(java.util.Map.Entry.comparingByKey())
        .forEach(e -> System.out.println("env: " + e.getKey() + "=" + e.getValue()));
    int threads = Torch.configure("libtorch");
    System.out.println("libtorch.version: " + Torch.version());
    System.out.println("libtorch.threads: " + threads);
    String parallel = torch.get_parallel_info().getString();
    for (String l : parallel.split("\n")) {
      String t = l.trim();
      if (t.startsWith("ATen parallel backend") || t.startsWith("at::get_num_threads"))
        System.out.println("libtorch.parallel: " + t);
    }
    System.out.println("libtorch.onednn: " + (torch.hasMKLDNN() ? "built in, "
        + (torch.globalContext().userEnabledMkldnn() ? "enabled" : "disabled") : "not built"));
    for (String l : torch.show_config().getString().split("\n")) {
      String t = l.trim();
      if (t.startsWith("- CPU capability usage")) System.out.println("libtorch.config: " + t.substring(2));
      if (t.startsWith("- Build settings:"))
        for (String kv : t.substring("- Build settings:".length()).split(",")) {
          String k = kv.trim();
          if (k.startsWith("TORCH_VERSION=") || k.startsWith("BLAS_INFO=") || k.startsWith("USE_MKLDNN=")
              || k.startsWith("USE_OPENMP=") || k.startsWith("USE_CUDA="))
            System.out.println("libtorch.config: " + k);
        }
    }
  }
}
