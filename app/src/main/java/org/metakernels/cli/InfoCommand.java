package org.metakernels.cli;

import java.util.concurrent.Callable;
import org.metakernels.runtime.Backend;
import org.metakernels.runtime.MkNative;
import picocli.CommandLine.Command;

/** Prints the backend in use and why, and which kernels are native. */
@Command(name = "info", mixinStandardHelpOptions = true, description = "Backend, device and native kernels.")
final class InfoCommand implements Callable<Integer> {
  @Override
  public Integer call() {
    Backend b = Backend.get();
    System.out.println("metakernels 0.1.0");
    for (String line : b.describe()) System.out.println(line);
    System.out.println("host memory:   " + MkNative.mk_host_live_bytes() + " bytes held by native allocations, "
        + MkNative.mk_host_cached_bytes() + " cached for reuse");
    System.out.println("native kernels (CPU" + (b.cudaAvailable() ? " and CUDA" : "") + "):");
    System.out.println("  dense:            fill, strided copy, cast (F32/F64/BF16/F16/I64), counter-based random,");
    System.out.println("                    26 unary and 13 binary elementwise ops with broadcasting, where,");
    System.out.println("                    sum/max/min reductions with indices, softmax/log-softmax, index-select,");
    System.out.println("                    index-add, gather, scatter-add (deterministic), matmul (BLAS / cuBLAS)");
    System.out.println("  attention:        fused softmax attention (online softmax, no N x N buffer): forward,");
    System.out.println("                    deterministic backward, fused double backward, JVP; GQA, causal,");
    System.out.println("                    padding, additive bias with gradient; F32 and F64; BF16/F16 forward and");
    System.out.println("                    backward (tensor cores on CUDA, F32 inside); TF32 for F32 on CUDA "
        + (Backend.allowTf32() ? "allowed" : "off (-Dmetakernels.tf32=true)"));
    System.out.println("  linear attention: fused product (none / causal / anti-causal masks; its own backward,");
    System.out.println("                    so every derivative order is fused), momentum term");
    return 0;
  }
}
