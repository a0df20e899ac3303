package org.metakernels.gpu;

import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.metakernels.runtime.Backend;

/**
 * Runs a test class only where CUDA is up; elsewhere JUnit reports it skipped, with the reason
 * the backend gives ("no NVIDIA driver (libcuda.so.1 not found)"), rather than as zero tests.
 * Use with {@code @ExtendWith(RequiresCuda.class)} beside {@code @Tag("gpu")}.
 */
public final class RequiresCuda implements ExecutionCondition {
  @Override
  public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
    Backend b = Backend.get();
    return b.cudaAvailable() ? ConditionEvaluationResult.enabled("CUDA: " + b.cudaReason())
                             : ConditionEvaluationResult.disabled("no CUDA: " + b.cudaReason());
  }
}
