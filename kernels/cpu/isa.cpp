// The CPU ISA level the multi-ISA kernels dispatch on; native/ sets it from cpuid (or a user
// override) before any kernel runs.
#include <atomic>

#include "mk/kernels.h"

namespace mk {
namespace cpu {
namespace {
std::atomic<int> g_level{2};
}
int isa_level() { return g_level.load(std::memory_order_relaxed); }
void set_isa_level(int level) { g_level.store(level, std::memory_order_relaxed); }
}  // namespace cpu
}  // namespace mk
