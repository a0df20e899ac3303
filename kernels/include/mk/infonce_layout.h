// The layouts of the fused InfoNCE rows (kernels/{cpu,cuda}/infonce.*): whether a positives' mask
// is given (else the diagonal) and whether log-weights are, as compile-time flags, so each of the
// four instantiations of a caller's loops carries no run-time test of either.
#pragma once
#include <type_traits>

#include "mk/isa_ns.h"

namespace mk {
MK_ISA_BEGIN
// body(mask, weights) with std::true_type / std::false_type for pos != NULL and logw != NULL.
template <class F>
inline int with_infonce_layout(const void* pos, const void* logw, F&& body) {
  if (pos && logw) return body(std::true_type{}, std::true_type{});
  if (pos) return body(std::true_type{}, std::false_type{});
  if (logw) return body(std::false_type{}, std::true_type{});
  return body(std::false_type{}, std::false_type{});
}
MK_ISA_END
}  // namespace mk
