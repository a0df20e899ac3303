package org.metakernels.meta;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;
import org.metakernels.tensor.Scope;
import org.metakernels.tensor.Tensor;

/**
 * The scaling class of each memory policy's peak native memory in K (not a timed test): a linear
 * model whose weights ([128, 128] F64, 128 KiB) dominate a step's memory, K ∈ {10, 100, 1000}.
 * CHECKPOINT stores ⌈√K⌉ snapshots and one segment, so the growth from K = 100 to 1000 over the
 * growth from 10 to 100 is near (√1000 − √100)/(√100 − √10) = 3.2 (linear growth gives 10,
 * logarithmic about 1); REVERSAL's native peak is flat. KEEP is measured for K ≤ 100 as the
 * linear contrast, and at K = 1 as one step's memory: REVERSAL must stay within twice that (issue
 * 16). The numbers are written to target/unroll-memory.json (recorded under
 * benchmarks/results/).
 */
class UnrollMemoryTest {
  static final Device CPU = Device.CPU;
  static final DType F64 = DType.F64;
  static final int D = 128;

  final Tensor x = Tensor.randn(new long[] {8, D}, F64, CPU, 1).mul(0.1);
  final Tensor y = Tensor.randn(new long[] {8, D}, F64, CPU, 2);

  Unroll.Result run(Unroll.Memory m, int k) {
    Tensor lr = Tensor.scalar(0.05, F64, CPU).requiresGrad(true);
    Tensor w0 = Tensor.randn(new long[] {D, D}, F64, CPU, 3).mul(0.05).requiresGrad(true);
    Map<String, Tensor> meta = new LinkedHashMap<>();
    meta.put("lr", lr);
    meta.put("w0", w0);
    return Unroll.builder()
        .initialWeights(Map.of("w", w0))
        .metaParameters(meta)
        .innerLoss((w, step, mm) -> x.matmul(w.get("w")).sub(y).square().mean())
        .outerLoss((w, mm) -> x.matmul(w.get("w")).sub(y).square().sum())
        .momentum(InnerStep.Momentum.lr(lr).withMomentum(0.5))
        .steps(k)
        .memory(m)
        .run();
  }

  long peak(Unroll.Memory m, int k, StringBuilder json) {
    try (Scope s = Scope.open()) {
      Unroll.Result r = run(m, k);
      Unroll.Stats st = r.stats();
      json.append(String.format("    {\"policy\": \"%s\", \"K\": %d, \"peakBytes\": %d, \"storedStates\": %d,"
              + " \"stepsRun\": %d, \"infoBufferBits\": %d},%n",
          m.policy(), k, st.peakBytes(), st.storedStates(), st.stepsRun(), st.infoBufferBits()));
      return st.peakBytes();
    }
  }

  @Test
  void checkpointGrowsAsSqrtKAndReversalIsFlat() throws IOException {
    StringBuilder json = new StringBuilder();
    long[] cp = new long[3], rev = new long[3];
    int[] ks = {10, 100, 1000};
    for (int i = 0; i < 3; i++) {
      cp[i] = peak(Unroll.Memory.checkpoint(), ks[i], json);
      rev[i] = peak(Unroll.Memory.reversal(), ks[i], json);
    }
    long keep1 = peak(Unroll.Memory.keep(), 1, json);
    long keep10 = peak(Unroll.Memory.keep(), 10, json), keep100 = peak(Unroll.Memory.keep(), 100, json);
    String body = json.toString();
    Path out = Path.of("target", "unroll-memory.json");
    Files.createDirectories(out.getParent());
    Files.writeString(out,
        "{\n  \"weights\": \"[128, 128] F64\",\n  \"runs\": [\n" + body.substring(0, body.lastIndexOf(','))
            + "\n  ]\n}\n");
    double growth = (double) (cp[2] - cp[1]) / (cp[1] - cp[0]);
    assertTrue(growth > 2.0 && growth < 5.0, "CHECKPOINT: growth ratio " + growth + " is not the √K class: " + body);
    assertTrue(rev[2] <= rev[0] * 1.1 + 65536, "REVERSAL is not flat in K: " + body);
    // issue 16's bound: the constant-memory unroll within 2x one step's memory (a whole K = 1 unroll
    // that keeps its step: the forward, the differentiable backward, the step and the outer backward)
    assertTrue(rev[2] <= 2 * keep1, "REVERSAL at K = 1000 above 2x one step's memory (KEEP, K = 1): " + body);
    double keepGrowth = (double) keep100 / keep10;
    assertTrue(keepGrowth > 5, "KEEP grows linearly (the contrast): " + body);
    assertTrue(cp[2] < keep100, "CHECKPOINT at K = 1000 below KEEP at K = 100: " + body);
  }
}
