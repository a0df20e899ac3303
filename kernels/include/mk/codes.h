// Numeric codes shared by kernels/, native/ and (mirrored in) the Java runtime package.
// Keep in sync with native/include/metakernels.h (the public enums) and
// java/.../runtime/Codes.java.
#pragma once
#include <cstdint>
#include "mk/isa_ns.h"

namespace mk {

enum DType : int { F32 = 0, F64 = 1, BF16 = 2, F16 = 3, I64 = 4 };

MK_ISA_BEGIN
inline int64_t dtype_size(int dtype) {
  switch (dtype) {
    case F32: return 4;
    case F64: return 8;
    case BF16: return 2;
    case F16: return 2;
    case I64: return 8;
    default: return 0;
  }
}
MK_ISA_END

// Elementwise unary ops: y = f(x; p).
enum UnaryOp : int {
  U_NEG = 0, U_EXP = 1, U_LOG = 2, U_TANH = 3, U_SIGMOID = 4, U_RELU = 5, U_GELU = 6,
  U_SQRT = 7, U_SQUARE = 8, U_ABS = 9, U_SIGN = 10, U_POW_SCALAR = 11, U_ADD_SCALAR = 12,
  U_MUL_SCALAR = 13, U_RSUB_SCALAR = 14, U_RECIPROCAL = 15, U_RSQRT = 16, U_STEP = 17,
  U_ELU1 = 18, U_ELU1_GRAD = 19, U_LOG1P = 20, U_COS = 21, U_SIN = 22, U_CLAMP_MIN = 23,
  U_CLAMP_MAX = 24, U_COPY = 25,
  U_COUNT = 26
};

// Elementwise binary ops: out = f(a, b) with broadcasting through strides.
enum BinaryOp : int {
  B_ADD = 0, B_SUB = 1, B_MUL = 2, B_DIV = 3, B_MAX = 4, B_MIN = 5, B_POW = 6,
  B_EQ = 7, B_NE = 8, B_LT = 9, B_LE = 10, B_GT = 11, B_GE = 12,
  B_COUNT = 13
};

enum ReduceOp : int { R_SUM = 0, R_MAX = 1, R_MIN = 2, R_COUNT = 3 };

enum RandomDist : int { RAND_UNIFORM = 0, RAND_NORMAL = 1 };

// What a kernel returns for a dtype or op it does not implement; negative so it never collides
// with a CUDA error code (cudaError_t values are >= 0).
constexpr int KERNEL_UNSUPPORTED = -1;

// Status codes returned by every entry point.
enum Status : int {
  OK = 0, ERR_INVALID_ARGUMENT = 1, ERR_UNSUPPORTED = 2, ERR_DEVICE = 3,
  ERR_NO_DEVICE = 4, ERR_INTERNAL = 5
};

constexpr int kMaxRank = 8;

}  // namespace mk
