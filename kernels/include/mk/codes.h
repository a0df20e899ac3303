// The codes of kernels/ and native/ are the enums of native/include/metakernels.h (MK_F32,
// MK_UNARY_EXP, MK_MAX_RANK, ...), declared there once; this header adds only what is private
// to the kernels.
#pragma once
#include <cstdint>
#include "metakernels.h"
#include "mk/isa_ns.h"

namespace mk {

MK_ISA_BEGIN
inline int64_t dtype_size(int dtype) {
  switch (dtype) {
    case MK_F32: return 4;
    case MK_F64: return 8;
    case MK_BF16: return 2;
    case MK_F16: return 2;
    case MK_I64: return 8;
    default: return 0;
  }
}
MK_ISA_END

// What a kernel returns for a dtype or op it does not implement; negative so it never collides
// with a CUDA error code (cudaError_t values are >= 0).
constexpr int KERNEL_UNSUPPORTED = -1;

}  // namespace mk
