package org.metakernels.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.metakernels.runtime.Backend;
import org.metakernels.runtime.MkNative;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** Prints the backend in use and why, and which kernels are native. */
@Command(name = "info", mixinStandardHelpOptions = true, versionProvider = Version.class,
    description = {"Backend, device and native kernels.",
        "Settings (java -D...): metakernels.device=auto|cpu|cuda, metakernels.threads=N, metakernels.isa=auto|avx2|avx512."})
final class InfoCommand implements Callable<Integer> {
  @Spec
  CommandSpec spec;

  @Override
  public Integer call() {
    Backend b = Checks.backend(spec);
    PrintWriter out = spec.commandLine().getOut();
    out.println("metakernels " + Version.get());
    for (String line : b.describe()) out.println(line);
    out.println("host memory:   " + MkNative.mk_host_live_bytes() + " bytes held by native allocations, "
        + MkNative.mk_host_cached_bytes() + " cached for reuse");
    out.println("native kernels (CPU" + (b.cudaAvailable() ? " and CUDA" : "") + "):");
    out.println("  dense:            fill, strided copy, cast (F32/F64/BF16/F16/I64), counter-based random,");
    out.println("                    26 unary and 13 binary elementwise ops with broadcasting, where,");
    out.println("                    sum/max/min reductions with indices, softmax/log-softmax, index-select,");
    out.println("                    index-add, gather, scatter-add (deterministic), matmul (BLAS / cuBLAS)");
    out.println("  attention:        fused softmax attention (online softmax, no N x N buffer): forward,");
    out.println("                    deterministic backward, fused double backward, JVP; GQA, causal,");
    out.println("                    padding, additive bias with gradient; F32 and F64; BF16/F16 forward,");
    out.println("                    backward, double backward and JVP (tensor cores on CUDA, F32 inside);");
    out.println("                    TF32 for F32 on CUDA (attention and linear attention) "
        + (Backend.allowTf32() ? "allowed" : "off (-Dmetakernels.tf32=true)"));
    out.println("  tensor-core attention kernels (16-bit, CUDA): "
        + MkNative.mk_attention_tc_kernels().getString().replace("\n", "\n                    "));
    out.println("  SIMT attention kernels (F32/F64, CUDA): "
        + MkNative.mk_attention_simt_kernels().getString().replace("\n", "\n                    "));
    out.println("  linear attention: fused product (none / causal / anti-causal masks; its own backward,");
    out.println("                    so every derivative order is fused), momentum term; F32, F64, and BF16/F16");
    out.println("                    with F32 state (CUDA: chunk-parallel; 16-bit on tensor cores where dk <= 256,");
    out.println("                    else the F32 SIMT form on the 16-bit data; F32 on TF32 tensor cores when");
    out.println("                    TF32 is allowed)");
    out.println("  linear attention forms (CUDA): "
        + MkNative.mk_linear_attention_forms().getString());
    return 0;
  }
}
