package org.metakernels.runtime;

/** Op codes of the native elementwise/reduce entry points (mirror of kernels/include/mk/codes.h). */
public final class Codes {
  private Codes() {}

  public static final int DEVICE_CPU = 0;
  public static final int DEVICE_CUDA = 1;

  // UnaryOp
  public static final int U_NEG = 0, U_EXP = 1, U_LOG = 2, U_TANH = 3, U_SIGMOID = 4, U_RELU = 5,
      U_GELU = 6, U_SQRT = 7, U_SQUARE = 8, U_ABS = 9, U_SIGN = 10, U_POW_SCALAR = 11,
      U_ADD_SCALAR = 12, U_MUL_SCALAR = 13, U_RSUB_SCALAR = 14, U_RECIPROCAL = 15, U_RSQRT = 16,
      U_STEP = 17, U_ELU1 = 18, U_ELU1_GRAD = 19, U_LOG1P = 20, U_COS = 21, U_SIN = 22,
      U_CLAMP_MIN = 23, U_CLAMP_MAX = 24, U_COPY = 25;

  // BinaryOp
  public static final int B_ADD = 0, B_SUB = 1, B_MUL = 2, B_DIV = 3, B_MAX = 4, B_MIN = 5,
      B_POW = 6, B_EQ = 7, B_NE = 8, B_LT = 9, B_LE = 10, B_GT = 11, B_GE = 12;

  // ReduceOp
  public static final int R_SUM = 0, R_MAX = 1, R_MIN = 2;

  // RandomDist
  public static final int RAND_UNIFORM = 0, RAND_NORMAL = 1;
}
