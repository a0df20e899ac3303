// Fused differentiable optimizer steps on the CPU (MK_MULTI_ISA: compiled for AVX2 and for
// AVX-512; the AVX2 build also holds the dispatcher). Definitions and the per-element maths of
// every pass: mk/meta.h, shared with kernels/cuda/meta.cu.
//
// Layout of a pass: the n elements in fixed chunks of kChunk. Every operand of the inner loop is a
// unit-stride array over the chunk: a tensor's own elements, or, for a hyperparameter held as one
// value, an absent cotangent (zero) or an unwanted output, a per-thread chunk-sized buffer (the
// value repeated; zeros; a sink). So each pass is one loop body per (dtype, kind), which GCC
// vectorises at the compiled width (sqrt and division included: -fno-math-errno), with no
// branch per element. OpenMP splits the chunks once n pays for the fork (mk/cpu_parallel.h).
//
// Determinism: the backward's sums over the elements (the gradients of hyperparameters held as
// one value) are taken per chunk in double (vector lanes in a fixed order), stored per chunk in
// the workspace and added in chunk order: the result does not depend on the thread count or the
// schedule, only on the ISA (AVX2 and AVX-512 lanes group the terms differently).
#include <omp.h>

#include <algorithm>

#include "mk/cpu_parallel.h"
#include "mk/isa_ns.h"
#include "mk/kernels.h"
#include "mk/meta.h"

namespace mk {
namespace cpu {

struct MetaStepCpuTraits {
  // Elements per chunk: the unit of the reduction order and of the per-thread buffers (five
  // chunk-sized buffers of doubles, 20 KiB, on the stack of each thread).
  static constexpr int64_t kChunk = 512;
  static_assert(kChunk % 16 == 0, "chunks fill whole AVX-512 vectors of floats");
};

namespace MK_ISA_NS {
namespace {

constexpr int64_t kChunk = MetaStepCpuTraits::kChunk;
constexpr int kSlots = MK_META_HYPER_COUNT;  // partial sums per chunk in the workspace

// A per-element input of the chunk loop: the tensor's elements, or a chunk of one repeated value.
template <class T>
struct Stream {
  const T* data = nullptr;
  bool array = false;
  const T* at(int64_t i0) const { return array ? data + i0 : data; }
};

template <class T>
Stream<T> repeated(T value, T* buf) {
  for (int64_t j = 0; j < kChunk; ++j) buf[j] = value;
  return Stream<T>{buf, false};
}

// Hyperparameter i: a per-element tensor, or its one value (read once) repeated in buf.
template <class T>
Stream<T> hyper_stream(const MetaStepParams& p, int i, T* buf) {
  const T* h = static_cast<const T*>(p.hyper[i]);
  if (h && p.hyper_stride[i] == 1) return Stream<T>{h, true};
  return repeated(h ? h[0] : T(p.hyper_value[i]), buf);
}

// The one value of a hyperparameter held as one value (Adam's beta1, beta2, eps).
template <class T>
double hyper_scalar(const MetaStepParams& p, int i) {
  const T* h = static_cast<const T*>(p.hyper[i]);
  return h ? double(h[0]) : p.hyper_value[i];
}

// A cotangent input: the tensor, or zeros.
template <class T>
Stream<T> cot_stream(const void* c, const T* zeros) {
  return c ? Stream<T>{static_cast<const T*>(c), true} : Stream<T>{zeros, false};
}

// An output of the chunk loop: the tensor's elements, or the sink.
template <class T>
struct Sink {
  T* data;
  T* sink;
  T* at(int64_t i0) const { return data ? data + i0 : sink; }
};

template <class T>
Sink<T> out_stream(void* o, T* sink) {
  return Sink<T>{static_cast<T*>(o), sink};
}

// A per-element hyperparameter gradient goes to its tensor; a one-value one is only summed.
template <class T>
Sink<T> hyper_out(const MetaStepParams& p, int i, T* sink) {
  return Sink<T>{p.hyper_stride[i] == 1 ? static_cast<T*>(p.cot_hyper[i]) : nullptr, sink};
}

// Adds the per-chunk partial sums in chunk order and writes each wanted one-value gradient.
template <class T>
void finish_sums(const MetaStepParams& p, int64_t chunks, const double* partial) {
  for (int i = 0; i < kSlots; ++i) {
    if (!p.cot_hyper[i] || p.hyper_stride[i] != 0) continue;
    double s = 0.0;
    for (int64_t c = 0; c < chunks; ++c) s += partial[c * kSlots + i];
    static_cast<T*>(p.cot_hyper[i])[0] = T(s);
  }
}

// ---- SGD ----------------------------------------------------------------------------------------
template <class T, int KIND>
void sgd_forward(const MetaStepParams& p) {
  const int64_t n = p.n, chunks = (n + kChunk - 1) / kChunk;
  const T* P = static_cast<const T*>(p.param);
  const T* G = static_cast<const T*>(p.grad);
  const T* B = static_cast<const T*>(p.buf);
  T* Po = static_cast<T*>(p.param_out);
  T* Bo = static_cast<T*>(p.buf_out);
  parallel_region(parallel_worth(n), [&] {
    alignas(64) T buf[3][kChunk];
    const Stream<T> lr = hyper_stream<T>(p, MK_META_LR, buf[0]);
    const Stream<T> mu = hyper_stream<T>(p, MK_META_MOMENTUM, buf[1]);
    const Stream<T> wd = hyper_stream<T>(p, MK_META_WEIGHT_DECAY, buf[2]);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i0 = c * kChunk, len = std::min(kChunk, n - i0);
      const T *pc = P + i0, *gc = G + i0, *lrc = lr.at(i0), *muc = mu.at(i0), *wdc = wd.at(i0);
      T* poc = Po + i0;
      if (KIND == kSgdPlain) {
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) {
          T po, bo;
          sgd_forward_element<T, KIND>(pc[j], gc[j], T(0), lrc[j], muc[j], wdc[j], po, bo);
          poc[j] = po;
        }
      } else {
        const T* bc = B + i0;
        T* boc = Bo + i0;
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) {
          T po, bo;
          sgd_forward_element<T, KIND>(pc[j], gc[j], bc[j], lrc[j], muc[j], wdc[j], po, bo);
          poc[j] = po;
          boc[j] = bo;
        }
      }
    }
  });
}

template <class T, int KIND>
void sgd_backward(const MetaStepParams& p) {
  const int64_t n = p.n, chunks = (n + kChunk - 1) / kChunk;
  const T* P = static_cast<const T*>(p.param);
  const T* G = static_cast<const T*>(p.grad);
  const T* B = static_cast<const T*>(p.buf);
  double* partial = static_cast<double*>(p.workspace);
  parallel_region(parallel_worth(n), [&] {
    alignas(64) T buf[5][kChunk];  // lr, mu, wd repeated; zeros; sink
    T* const zeros = buf[3];
    T* const sink = buf[4];
    std::fill(zeros, zeros + kChunk, T(0));
    const Stream<T> lr = hyper_stream<T>(p, MK_META_LR, buf[0]);
    const Stream<T> mu = hyper_stream<T>(p, MK_META_MOMENTUM, buf[1]);
    const Stream<T> wd = hyper_stream<T>(p, MK_META_WEIGHT_DECAY, buf[2]);
    const Stream<T> bs = KIND == kSgdPlain ? Stream<T>{zeros, false} : Stream<T>{B, true};
    const Stream<T> cps = cot_stream<T>(p.cot_param_out, zeros);
    const Stream<T> cbs = cot_stream<T>(KIND == kSgdPlain ? nullptr : p.cot_buf_out, zeros);
    const Sink<T> gps = out_stream<T>(p.cot_param, sink), ggs = out_stream<T>(p.cot_grad, sink);
    const Sink<T> gbs = out_stream<T>(KIND == kSgdPlain ? nullptr : p.cot_buf, sink);
    const Sink<T> glrs = hyper_out<T>(p, MK_META_LR, sink), gmus = hyper_out<T>(p, MK_META_MOMENTUM, sink);
    const Sink<T> gwds = hyper_out<T>(p, MK_META_WEIGHT_DECAY, sink);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i0 = c * kChunk, len = std::min(kChunk, n - i0);
      const T *pc = P + i0, *gc = G + i0, *bc = bs.at(i0), *lrc = lr.at(i0), *muc = mu.at(i0), *wdc = wd.at(i0);
      const T *cpc = cps.at(i0), *cbc = cbs.at(i0);
      T *gpc = gps.at(i0), *ggc = ggs.at(i0), *gbc = gbs.at(i0);
      T *glrc = glrs.at(i0), *gmuc = gmus.at(i0), *gwdc = gwds.at(i0);
      double s_lr = 0, s_mu = 0, s_wd = 0;
#pragma omp simd reduction(+ : s_lr, s_mu, s_wd)
      for (int64_t j = 0; j < len; ++j) {
        T gp, gg, gb, glr, gmu, gwd;
        sgd_backward_element<T, KIND>(pc[j], gc[j], bc[j], lrc[j], muc[j], wdc[j], cpc[j], cbc[j], gp, gg, gb, glr,
                                      gmu, gwd);
        gpc[j] = gp;
        ggc[j] = gg;
        gbc[j] = gb;
        glrc[j] = glr;
        gmuc[j] = gmu;
        gwdc[j] = gwd;
        s_lr += double(glr);
        s_mu += double(gmu);
        s_wd += double(gwd);
      }
      double* part = partial + c * kSlots;
      part[MK_META_LR] = s_lr;
      part[MK_META_MOMENTUM] = s_mu;
      part[MK_META_WEIGHT_DECAY] = s_wd;
    }
  });
  finish_sums<T>(p, chunks, partial);
}

// ---- Adam ---------------------------------------------------------------------------------------
template <class T>
AdamConsts<T> adam_consts_of(const MetaStepParams& p) {
  return adam_consts<T>(hyper_scalar<T>(p, MK_META_BETA1), hyper_scalar<T>(p, MK_META_BETA2),
                        hyper_scalar<T>(p, MK_META_EPS), p.step);
}

template <class T, bool DECOUPLED>
void adam_forward(const MetaStepParams& p) {
  const int64_t n = p.n, chunks = (n + kChunk - 1) / kChunk;
  const T* P = static_cast<const T*>(p.param);
  const T* G = static_cast<const T*>(p.grad);
  const T* M = static_cast<const T*>(p.m);
  const T* V = static_cast<const T*>(p.v);
  T* Po = static_cast<T*>(p.param_out);
  T* Mo = static_cast<T*>(p.m_out);
  T* Vo = static_cast<T*>(p.v_out);
  const AdamConsts<T> k = adam_consts_of<T>(p);
  parallel_region(parallel_worth(n), [&] {
    alignas(64) T buf[2][kChunk];
    const Stream<T> lr = hyper_stream<T>(p, MK_META_LR, buf[0]);
    const Stream<T> wd = hyper_stream<T>(p, MK_META_WEIGHT_DECAY, buf[1]);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i0 = c * kChunk, len = std::min(kChunk, n - i0);
      const T *pc = P + i0, *gc = G + i0, *mc = M + i0, *vc = V + i0, *lrc = lr.at(i0), *wdc = wd.at(i0);
      T *poc = Po + i0, *moc = Mo + i0, *voc = Vo + i0;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        T po, mo, vo;
        adam_forward_element<T, DECOUPLED>(pc[j], gc[j], mc[j], vc[j], lrc[j], wdc[j], k, po, mo, vo);
        poc[j] = po;
        moc[j] = mo;
        voc[j] = vo;
      }
    }
  });
}

template <class T, bool DECOUPLED>
void adam_backward(const MetaStepParams& p) {
  const int64_t n = p.n, chunks = (n + kChunk - 1) / kChunk;
  const T* P = static_cast<const T*>(p.param);
  const T* G = static_cast<const T*>(p.grad);
  const T* M = static_cast<const T*>(p.m);
  const T* V = static_cast<const T*>(p.v);
  double* partial = static_cast<double*>(p.workspace);
  const AdamConsts<T> k = adam_consts_of<T>(p);
  parallel_region(parallel_worth(n), [&] {
    alignas(64) T buf[4][kChunk];  // lr, wd repeated; zeros; sink
    T* const zeros = buf[2];
    T* const sink = buf[3];
    std::fill(zeros, zeros + kChunk, T(0));
    const Stream<T> lr = hyper_stream<T>(p, MK_META_LR, buf[0]);
    const Stream<T> wd = hyper_stream<T>(p, MK_META_WEIGHT_DECAY, buf[1]);
    const Stream<T> cps = cot_stream<T>(p.cot_param_out, zeros), cms = cot_stream<T>(p.cot_m_out, zeros);
    const Stream<T> cvs = cot_stream<T>(p.cot_v_out, zeros);
    const Sink<T> gps = out_stream<T>(p.cot_param, sink), ggs = out_stream<T>(p.cot_grad, sink);
    const Sink<T> gms = out_stream<T>(p.cot_m, sink), gvs = out_stream<T>(p.cot_v, sink);
    const Sink<T> glrs = hyper_out<T>(p, MK_META_LR, sink), gwds = hyper_out<T>(p, MK_META_WEIGHT_DECAY, sink);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i0 = c * kChunk, len = std::min(kChunk, n - i0);
      const T *pc = P + i0, *gc = G + i0, *mc = M + i0, *vc = V + i0, *lrc = lr.at(i0), *wdc = wd.at(i0);
      const T *cpc = cps.at(i0), *cmc = cms.at(i0), *cvc = cvs.at(i0);
      T *gpc = gps.at(i0), *ggc = ggs.at(i0), *gmc = gms.at(i0), *gvc = gvs.at(i0);
      T *glrc = glrs.at(i0), *gwdc = gwds.at(i0);
      double s_lr = 0, s_wd = 0, s_b1 = 0, s_b2 = 0, s_eps = 0;
#pragma omp simd reduction(+ : s_lr, s_wd, s_b1, s_b2, s_eps)
      for (int64_t j = 0; j < len; ++j) {
        T gp, gg, gm, gv, glr, gwd, gb1, gb2, geps;
        adam_backward_element<T, DECOUPLED>(pc[j], gc[j], mc[j], vc[j], lrc[j], wdc[j], k, cpc[j], cmc[j], cvc[j], gp,
                                            gg, gm, gv, glr, gwd, gb1, gb2, geps);
        gpc[j] = gp;
        ggc[j] = gg;
        gmc[j] = gm;
        gvc[j] = gv;
        glrc[j] = glr;
        gwdc[j] = gwd;
        s_lr += double(glr);
        s_wd += double(gwd);
        s_b1 += double(gb1);
        s_b2 += double(gb2);
        s_eps += double(geps);
      }
      double* part = partial + c * kSlots;
      part[MK_META_LR] = s_lr;
      part[MK_META_WEIGHT_DECAY] = s_wd;
      part[MK_META_BETA1] = s_b1;
      part[MK_META_BETA2] = s_b2;
      part[MK_META_EPS] = s_eps;
    }
  });
  finish_sums<T>(p, chunks, partial);
}

int sgd_kind(const MetaStepParams& p) {
  if (!p.buf) return kSgdPlain;
  return (p.flags & MK_META_NESTEROV) ? kSgdNesterov : kSgdMomentum;
}

template <class T>
void sgd_forward_t(const MetaStepParams& p) {
  switch (sgd_kind(p)) {
    case kSgdPlain: sgd_forward<T, kSgdPlain>(p); break;
    case kSgdMomentum: sgd_forward<T, kSgdMomentum>(p); break;
    default: sgd_forward<T, kSgdNesterov>(p); break;
  }
}

template <class T>
void sgd_backward_t(const MetaStepParams& p) {
  switch (sgd_kind(p)) {
    case kSgdPlain: sgd_backward<T, kSgdPlain>(p); break;
    case kSgdMomentum: sgd_backward<T, kSgdMomentum>(p); break;
    default: sgd_backward<T, kSgdNesterov>(p); break;
  }
}

template <class T>
void adam_forward_t(const MetaStepParams& p) {
  if (p.flags & MK_META_DECOUPLED_WEIGHT_DECAY) adam_forward<T, true>(p);
  else adam_forward<T, false>(p);
}

template <class T>
void adam_backward_t(const MetaStepParams& p) {
  if (p.flags & MK_META_DECOUPLED_WEIGHT_DECAY) adam_backward<T, true>(p);
  else adam_backward<T, false>(p);
}

}  // namespace

int meta_sgd_step_forward(const MetaStepParams& p, void*) {
  if (p.dtype == MK_F32) sgd_forward_t<float>(p);
  else if (p.dtype == MK_F64) sgd_forward_t<double>(p);
  else return KERNEL_UNSUPPORTED;
  return 0;
}

int meta_sgd_step_backward(const MetaStepParams& p, void*) {
  if (p.dtype == MK_F32) sgd_backward_t<float>(p);
  else if (p.dtype == MK_F64) sgd_backward_t<double>(p);
  else return KERNEL_UNSUPPORTED;
  return 0;
}

int meta_adam_step_forward(const MetaStepParams& p, void*) {
  if (p.dtype == MK_F32) adam_forward_t<float>(p);
  else if (p.dtype == MK_F64) adam_forward_t<double>(p);
  else return KERNEL_UNSUPPORTED;
  return 0;
}

int meta_adam_step_backward(const MetaStepParams& p, void*) {
  if (p.dtype == MK_F32) adam_backward_t<float>(p);
  else if (p.dtype == MK_F64) adam_backward_t<double>(p);
  else return KERNEL_UNSUPPORTED;
  return 0;
}

}  // namespace MK_ISA_NS

#ifndef MK_ISA_AVX512
// ---- dispatch (in the AVX2 build only) ------------------------------------------------------
namespace avx512 {
int meta_sgd_step_forward(const MetaStepParams&, void*);
int meta_sgd_step_backward(const MetaStepParams&, void*);
int meta_adam_step_forward(const MetaStepParams&, void*);
int meta_adam_step_backward(const MetaStepParams&, void*);
}  // namespace avx512

int meta_sgd_step_forward(const MetaStepParams& p, void* stream) {
  if (isa_level() >= 3) return avx512::meta_sgd_step_forward(p, stream);
  return avx2::meta_sgd_step_forward(p, stream);
}

int meta_sgd_step_backward(const MetaStepParams& p, void* stream) {
  if (isa_level() >= 3) return avx512::meta_sgd_step_backward(p, stream);
  return avx2::meta_sgd_step_backward(p, stream);
}

int meta_adam_step_forward(const MetaStepParams& p, void* stream) {
  if (isa_level() >= 3) return avx512::meta_adam_step_forward(p, stream);
  return avx2::meta_adam_step_forward(p, stream);
}

int meta_adam_step_backward(const MetaStepParams& p, void* stream) {
  if (isa_level() >= 3) return avx512::meta_adam_step_backward(p, stream);
  return avx2::meta_adam_step_backward(p, stream);
}

// One partial sum per hyperparameter slot and chunk.
int64_t meta_step_workspace(int64_t n) {
  const int64_t chunks = (n + MetaStepCpuTraits::kChunk - 1) / MetaStepCpuTraits::kChunk;
  return chunks * int64_t(MK_META_HYPER_COUNT) * int64_t(sizeof(double));
}
#endif

}  // namespace cpu
}  // namespace mk
