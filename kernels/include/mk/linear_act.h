// The activations of the fused linear layer (mk_dense_linear_*, enum mk_linear_act) and their
// derivatives written in the output y = act(z), shared by the CPU and CUDA kernels. The forward
// activation itself is device code (vec_math on the CPU, the CUDA math library on the GPU); the
// derivative is plain arithmetic on y, the same on both:
//   identity  act'(z) = 1
//   relu      act'(z) = [y > 0]          (0 at z = 0, as the composed relu's rule)
//   tanh      act'(z) = 1 − y²
//   sigmoid   act'(z) = y (1 − y)
#pragma once
#include <type_traits>

#include "mk/codes.h"
#include "mk/isa_ns.h"
#include "mk/scalar.h"

namespace mk {
MK_ISA_BEGIN

template <int ACT, class T>
MK_HD T linear_act_derivative(T y) {
  if constexpr (ACT == MK_LINEAR_ACT_RELU) {
    return y > T(0) ? T(1) : T(0);
  } else if constexpr (ACT == MK_LINEAR_ACT_TANH) {
    return T(1) - y * y;
  } else if constexpr (ACT == MK_LINEAR_ACT_SIGMOID) {
    return y * (T(1) - y);
  } else {
    return T(1);
  }
}

// f(std::integral_constant<int, ACT>{}) for the runtime code `act` (validated by native/): one
// instantiation of the caller's loops per activation, so each vectorises with its own maths.
template <class F>
inline int with_linear_act(int act, F&& f) {
  switch (act) {
    case MK_LINEAR_ACT_IDENTITY:
      return f(std::integral_constant<int, MK_LINEAR_ACT_IDENTITY>{});
    case MK_LINEAR_ACT_RELU:
      return f(std::integral_constant<int, MK_LINEAR_ACT_RELU>{});
    case MK_LINEAR_ACT_TANH:
      return f(std::integral_constant<int, MK_LINEAR_ACT_TANH>{});
    case MK_LINEAR_ACT_SIGMOID:
      return f(std::integral_constant<int, MK_LINEAR_ACT_SIGMOID>{});
    default:
      return KERNEL_UNSUPPORTED;
  }
}

MK_ISA_END
}  // namespace mk
