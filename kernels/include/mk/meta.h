// Fused differentiable optimizer steps (the meta family): the arguments the CPU and CUDA kernels
// share and the per-element maths of every pass, written once here for both (MK_HD), so the CUDA
// kernels and their CPU twins compute the same expressions in the same order.
//
// Definitions (torch.optim, torch 2.x; per element, all tensors [n] contiguous):
//
//   SGD    d = g + wd p                     b' = mu b + d            (momentum; b = 0 at torch's first step)
//          u = d (plain) | b' (momentum) | d + mu b' (Nesterov)     p' = p - lr u
//   Adam   d = g + wd p,  p0 = p            (AdamW: d = g,  p0 = p (1 - lr wd))
//          m' = m + (1 - beta1)(d - m)      (torch's lerp_: = beta1 m + (1 - beta1) d)
//          v' = beta2 v + (1 - beta2) d^2
//          c1 = 1 - beta1^t,  c2 = 1 - beta2^t,  sigma = sqrt(v') / sqrt(c2) + eps
//          p' = p0 - (lr / c1) (m' / sigma)
//
// The backward is the vector-Jacobian product: from the cotangents of (p', b') or (p', m', v') it
// gives those of every input, recomputing the forward's intermediates (nothing is saved). The
// gradient of a hyperparameter held as one value is the sum of the per-element terms below over
// the n elements (the kernels reduce it in a fixed order); of a per-element one, the terms.
//
// SGD backward (P, B: cotangents of p', b'; U = -lr P, the cotangent of u):
//   plain     D = U                                   lr: -d P
//   momentum  Bt = B + U,       D = Bt                lr: -b' P          mu: b Bt
//   Nesterov  Bt = B + mu U,    D = U + Bt            lr: -(d + mu b') P mu: b Bt + b' U
//   g: D   p: P + wd D   b: mu Bt   wd: p D
//
// Adam backward (P, M, V: cotangents of p', m', v'; q = m' / sigma, r = q / c1, s = sqrt(v')):
//   a = lr P / (c1 sigma)            (-dp'/dm' times P)       Mt = M - a       (cotangent of m')
//   sig = a q                        (cotangent of sigma)     eps: sig
//   Vt = V + sig / (2 s sqrt(c2))    (cotangent of v'; infinite where v' = 0, as torch's sqrt)
//   c1b = a m' / c1,  c2b = -sig s / (2 sqrt(c2) c2)         (cotangents of c1, c2)
//   D = (1 - beta1) Mt + 2 (1 - beta2) d Vt                   (cotangent of d)
//   m: beta1 Mt   v: beta2 Vt   g: D
//   beta1: (m - d) Mt - t beta1^(t-1) c1b                      beta2: (v - d^2) Vt - t beta2^(t-1) c2b
//   Adam:  lr: -r P              p: P + wd D           wd: p D
//   AdamW: lr: -r P - wd p P     p: P (1 - lr wd)      wd: -lr p P
#pragma once
#include <cmath>
#include <cstdint>

#include "metakernels.h"
#include "mk/isa_ns.h"
#include "mk/scalar.h"  // MK_HD

namespace mk {

// What the kernels receive: the C ABI's parameter block and what native/ adds.
struct MetaStepParams : mk_meta_step_params {
  int dtype = 0;
  void* workspace = nullptr;  // backward: meta_step_workspace(n) bytes, the per-block partial sums

  MetaStepParams() : mk_meta_step_params{} {}
  MetaStepParams(const mk_meta_step_params& block, int dtype_, void* workspace_)
      : mk_meta_step_params(block), dtype(dtype_), workspace(workspace_) {}
};

// The kinds of SGD step (template parameters of the kernels).
enum MetaSgdKind { kSgdPlain = 0, kSgdMomentum = 1, kSgdNesterov = 2 };

// Adam's per-call scalars, from beta1, beta2, eps and t (in double, then rounded to T once).
template <class T>
struct AdamConsts {
  T beta1, beta2, eps;
  T one_minus_beta1, one_minus_beta2;
  T c1, c2, sqrt_c2;  // 1 - beta1^t, 1 - beta2^t, sqrt(c2)
  T dc1, dc2;         // dc1/dbeta1 = -t beta1^(t-1), dc2/dbeta2 = -t beta2^(t-1)
};

MK_ISA_BEGIN

template <class T>
MK_HD AdamConsts<T> adam_consts(double beta1, double beta2, double eps, int64_t step) {
  const double t = double(step);
  AdamConsts<T> k;
  k.beta1 = T(beta1);
  k.beta2 = T(beta2);
  k.eps = T(eps);
  k.one_minus_beta1 = T(1.0 - beta1);
  k.one_minus_beta2 = T(1.0 - beta2);
  const double c2 = 1.0 - std::pow(beta2, t);
  k.c1 = T(1.0 - std::pow(beta1, t));
  k.c2 = T(c2);
  k.sqrt_c2 = T(std::sqrt(c2));
  k.dc1 = T(-t * std::pow(beta1, t - 1.0));
  k.dc2 = T(-t * std::pow(beta2, t - 1.0));
  return k;
}

template <class T, int KIND>
MK_HD void sgd_forward_element(T p, T g, T b, T lr, T mu, T wd, T& p_out, T& b_out) {
  const T d = g + wd * p;
  T u = d;
  if (KIND != kSgdPlain) {
    const T bn = mu * b + d;
    b_out = bn;
    u = KIND == kSgdNesterov ? d + mu * bn : bn;
  }
  p_out = p - lr * u;
}

// cp, cb: cotangents of p', b'. Outputs: the cotangents of p, g, b and the per-element terms of
// lr, mu, wd.
template <class T, int KIND>
MK_HD void sgd_backward_element(T p, T g, T b, T lr, T mu, T wd, T cp, T cb, T& gp, T& gg, T& gb, T& glr, T& gmu,
                                T& gwd) {
  const T d = g + wd * p;
  const T U = -lr * cp;
  T D;
  if (KIND == kSgdPlain) {
    D = U;
    glr = -d * cp;
    gmu = T(0);
    gb = T(0);
  } else {
    const T bn = mu * b + d;
    if (KIND == kSgdMomentum) {
      const T bt = cb + U;
      D = bt;
      gb = mu * bt;
      gmu = b * bt;
      glr = -bn * cp;
    } else {
      const T bt = cb + mu * U;
      D = U + bt;
      gb = mu * bt;
      gmu = b * bt + bn * U;
      glr = -(d + mu * bn) * cp;
    }
  }
  gg = D;
  gp = cp + wd * D;
  gwd = p * D;
}

template <class T, bool DECOUPLED>
MK_HD void adam_forward_element(T p, T g, T m, T v, T lr, T wd, const AdamConsts<T>& k, T& p_out, T& m_out,
                                T& v_out) {
  const T d = DECOUPLED ? g : g + wd * p;
  const T p0 = DECOUPLED ? p * (T(1) - lr * wd) : p;
  const T mn = m + k.one_minus_beta1 * (d - m);
  const T vn = k.beta2 * v + k.one_minus_beta2 * (d * d);
  const T sigma = std::sqrt(vn) / k.sqrt_c2 + k.eps;
  m_out = mn;
  v_out = vn;
  p_out = p0 - (lr / k.c1) * (mn / sigma);
}

// cp, cm, cv: cotangents of p', m', v'. Outputs: the cotangents of p, g, m, v and the per-element
// terms of lr, wd, beta1, beta2, eps.
template <class T, bool DECOUPLED>
MK_HD void adam_backward_element(T p, T g, T m, T v, T lr, T wd, const AdamConsts<T>& k, T cp, T cm, T cv, T& gp,
                                 T& gg, T& gm, T& gv, T& glr, T& gwd, T& gb1, T& gb2, T& geps) {
  const T d = DECOUPLED ? g : g + wd * p;
  const T mn = m + k.one_minus_beta1 * (d - m);
  const T vn = k.beta2 * v + k.one_minus_beta2 * (d * d);
  const T s = std::sqrt(vn);
  const T sigma = s / k.sqrt_c2 + k.eps;
  const T q = mn / sigma;
  const T r = q / k.c1;
  const T a = lr * cp / (k.c1 * sigma);
  const T Mt = cm - a;
  const T sig = a * q;
  const T Vt = cv + sig / (T(2) * s * k.sqrt_c2);
  const T c1b = a * mn / k.c1;
  const T c2b = -sig * s / (T(2) * k.sqrt_c2 * k.c2);
  const T D = k.one_minus_beta1 * Mt + T(2) * k.one_minus_beta2 * d * Vt;
  gm = k.beta1 * Mt;
  gv = k.beta2 * Vt;
  gg = D;
  gb1 = (m - d) * Mt + k.dc1 * c1b;
  gb2 = (v - d * d) * Vt + k.dc2 * c2b;
  geps = sig;
  if (DECOUPLED) {
    glr = -r * cp - wd * p * cp;
    gp = cp * (T(1) - lr * wd);
    gwd = -lr * p * cp;
  } else {
    glr = -r * cp;
    gp = cp + wd * D;
    gwd = p * D;
  }
}

MK_ISA_END

}  // namespace mk
