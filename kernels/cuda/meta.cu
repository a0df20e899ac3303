// Fused differentiable optimizer steps on CUDA: the twins of kernels/cpu/meta.cpp (same
// signatures, mk/kernels.inc; the per-element maths of every pass is mk/meta.h, shared by both).
//
// The passes are memory bound (Adam's backward reads 7 streams and writes 6), so a kernel is a
// grid-stride loop in which each thread takes VEC consecutive elements with 16-byte loads and
// stores (4 floats or 2 doubles) when every array is 16-byte aligned, one element otherwise; the
// tail past the last whole vector is taken one element per thread.
//
// Determinism: the backward's sums over the elements (the gradients of hyperparameters held as
// one value) are taken in double per thread, per warp (butterfly shuffles), per block (warps in
// order, through shared memory) into one partial sum per block and slot in the workspace; a
// second kernel of one block adds the partial sums in a fixed order. No atomics; the grid depends
// on n only (not on the device), so a call gives the same bits on every run and every GPU.
//
// Launched through cudaLaunchKernelEx with dynamic shared memory only, so the kernels also run on
// the host under the emulator of tests/cuda-emu (meta_emu_test.cpp), against the CPU twin.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstdint>

#include "common.cuh"
#include "mk/kernels.h"
#include "mk/meta.h"

namespace mk {
namespace cuda {

struct MetaStepCudaTraits {
  static constexpr int kThreads = 256;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int kSlots = MK_META_HYPER_COUNT;  // partial sums per block
  // The grid: one block per kElementsPerBlock elements, at most kMaxBlocks (then grid-stride).
  // A function of n alone, so the reduction order is too.
  static constexpr int64_t kElementsPerBlock = 4096;
  static constexpr int64_t kMaxBlocks = 2048;
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps, one block");
  static_assert(kElementsPerBlock % (kThreads * 4) == 0, "a block's share fills its threads' vectors");
};

// Dynamic shared memory of the backward kernels: [kWarps][kSlots] doubles.
extern __shared__ __align__(16) unsigned char mk_meta_smem[];

namespace {

using Traits = MetaStepCudaTraits;
constexpr int kSlots = Traits::kSlots;

// A hyperparameter: a tensor (data, stride 0 or 1) or a constant.
template <class T>
struct Hyper {
  const T* data;
  int64_t stride;
  T value;
  __device__ __forceinline__ T at(int64_t i) const { return data ? data[i * stride] : value; }
};

template <class T>
struct StepArgs {
  int64_t n;
  int64_t step;
  const T* param;
  const T* grad;
  const T* buf;
  const T* m;
  const T* v;
  Hyper<T> hyper[kSlots];
  T* param_out;
  T* buf_out;
  T* m_out;
  T* v_out;
  const T* cot_param_out;
  const T* cot_buf_out;
  const T* cot_m_out;
  const T* cot_v_out;
  T* cot_param;
  T* cot_grad;
  T* cot_buf;
  T* cot_m;
  T* cot_v;
  T* cot_hyper_elems[kSlots];   // per-element hyperparameter gradients (stride 1), else null
  T* cot_hyper_scalar[kSlots];  // one-value hyperparameter gradients (stride 0), else null
  double* partial;              // backward: [gridDim.x][kSlots]
};

template <class T, int W>
struct alignas(sizeof(T) * W) Pack {
  T v[W];
};

// W elements from i0 (zeros for an absent array), and their store (skipped for an absent one).
template <class T, int W>
__device__ __forceinline__ Pack<T, W> load(const T* a, int64_t i0) {
  Pack<T, W> r;
  if (a) {
    r = *reinterpret_cast<const Pack<T, W>*>(a + i0);
  } else {
#pragma unroll
    for (int k = 0; k < W; ++k) r.v[k] = T(0);
  }
  return r;
}

template <class T, int W>
__device__ __forceinline__ void store(T* a, int64_t i0, const Pack<T, W>& r) {
  if (a) *reinterpret_cast<Pack<T, W>*>(a + i0) = r;
}

template <class T>
__device__ __forceinline__ AdamConsts<T> adam_consts_of(const StepArgs<T>& a) {
  return adam_consts<T>(double(a.hyper[MK_META_BETA1].at(0)), double(a.hyper[MK_META_BETA2].at(0)),
                        double(a.hyper[MK_META_EPS].at(0)), a.step);
}

// ---- per-thread work: W elements from i0 --------------------------------------------------------
template <class T, int KIND, int W>
__device__ __forceinline__ void sgd_forward_at(const StepArgs<T>& a, int64_t i0) {
  const Pack<T, W> p = load<T, W>(a.param, i0), g = load<T, W>(a.grad, i0), b = load<T, W>(a.buf, i0);
  Pack<T, W> po, bo;
#pragma unroll
  for (int k = 0; k < W; ++k) {
    const int64_t i = i0 + k;
    sgd_forward_element<T, KIND>(p.v[k], g.v[k], b.v[k], a.hyper[MK_META_LR].at(i), a.hyper[MK_META_MOMENTUM].at(i),
                                 a.hyper[MK_META_WEIGHT_DECAY].at(i), po.v[k], bo.v[k]);
  }
  store<T, W>(a.param_out, i0, po);
  if (KIND != kSgdPlain) store<T, W>(a.buf_out, i0, bo);
}

template <class T, int KIND, int W>
__device__ __forceinline__ void sgd_backward_at(const StepArgs<T>& a, int64_t i0, double (&acc)[kSlots]) {
  const Pack<T, W> p = load<T, W>(a.param, i0), g = load<T, W>(a.grad, i0), b = load<T, W>(a.buf, i0);
  const Pack<T, W> cp = load<T, W>(a.cot_param_out, i0);
  const Pack<T, W> cb = load<T, W>(KIND == kSgdPlain ? nullptr : a.cot_buf_out, i0);
  Pack<T, W> gp, gg, gb, glr, gmu, gwd;
#pragma unroll
  for (int k = 0; k < W; ++k) {
    const int64_t i = i0 + k;
    sgd_backward_element<T, KIND>(p.v[k], g.v[k], b.v[k], a.hyper[MK_META_LR].at(i), a.hyper[MK_META_MOMENTUM].at(i),
                                  a.hyper[MK_META_WEIGHT_DECAY].at(i), cp.v[k], cb.v[k], gp.v[k], gg.v[k], gb.v[k],
                                  glr.v[k], gmu.v[k], gwd.v[k]);
    acc[MK_META_LR] += double(glr.v[k]);
    acc[MK_META_MOMENTUM] += double(gmu.v[k]);
    acc[MK_META_WEIGHT_DECAY] += double(gwd.v[k]);
  }
  store<T, W>(a.cot_param, i0, gp);
  store<T, W>(a.cot_grad, i0, gg);
  if (KIND != kSgdPlain) store<T, W>(a.cot_buf, i0, gb);
  store<T, W>(a.cot_hyper_elems[MK_META_LR], i0, glr);
  store<T, W>(a.cot_hyper_elems[MK_META_MOMENTUM], i0, gmu);
  store<T, W>(a.cot_hyper_elems[MK_META_WEIGHT_DECAY], i0, gwd);
}

template <class T, bool DECOUPLED, int W>
__device__ __forceinline__ void adam_forward_at(const StepArgs<T>& a, const AdamConsts<T>& c, int64_t i0) {
  const Pack<T, W> p = load<T, W>(a.param, i0), g = load<T, W>(a.grad, i0);
  const Pack<T, W> m = load<T, W>(a.m, i0), v = load<T, W>(a.v, i0);
  Pack<T, W> po, mo, vo;
#pragma unroll
  for (int k = 0; k < W; ++k) {
    const int64_t i = i0 + k;
    adam_forward_element<T, DECOUPLED>(p.v[k], g.v[k], m.v[k], v.v[k], a.hyper[MK_META_LR].at(i),
                                       a.hyper[MK_META_WEIGHT_DECAY].at(i), c, po.v[k], mo.v[k], vo.v[k]);
  }
  store<T, W>(a.param_out, i0, po);
  store<T, W>(a.m_out, i0, mo);
  store<T, W>(a.v_out, i0, vo);
}

template <class T, bool DECOUPLED, int W>
__device__ __forceinline__ void adam_backward_at(const StepArgs<T>& a, const AdamConsts<T>& c, int64_t i0,
                                                 double (&acc)[kSlots]) {
  const Pack<T, W> p = load<T, W>(a.param, i0), g = load<T, W>(a.grad, i0);
  const Pack<T, W> m = load<T, W>(a.m, i0), v = load<T, W>(a.v, i0);
  const Pack<T, W> cp = load<T, W>(a.cot_param_out, i0), cm = load<T, W>(a.cot_m_out, i0);
  const Pack<T, W> cv = load<T, W>(a.cot_v_out, i0);
  Pack<T, W> gp, gg, gm, gv, glr, gwd;
#pragma unroll
  for (int k = 0; k < W; ++k) {
    const int64_t i = i0 + k;
    T gb1, gb2, geps;
    adam_backward_element<T, DECOUPLED>(p.v[k], g.v[k], m.v[k], v.v[k], a.hyper[MK_META_LR].at(i),
                                        a.hyper[MK_META_WEIGHT_DECAY].at(i), c, cp.v[k], cm.v[k], cv.v[k], gp.v[k],
                                        gg.v[k], gm.v[k], gv.v[k], glr.v[k], gwd.v[k], gb1, gb2, geps);
    acc[MK_META_LR] += double(glr.v[k]);
    acc[MK_META_WEIGHT_DECAY] += double(gwd.v[k]);
    acc[MK_META_BETA1] += double(gb1);
    acc[MK_META_BETA2] += double(gb2);
    acc[MK_META_EPS] += double(geps);
  }
  store<T, W>(a.cot_param, i0, gp);
  store<T, W>(a.cot_grad, i0, gg);
  store<T, W>(a.cot_m, i0, gm);
  store<T, W>(a.cot_v, i0, gv);
  store<T, W>(a.cot_hyper_elems[MK_META_LR], i0, glr);
  store<T, W>(a.cot_hyper_elems[MK_META_WEIGHT_DECAY], i0, gwd);
}

// ---- reductions ---------------------------------------------------------------------------------
// The block's sums of acc (every thread's), written by the first kSlots threads to out[0, kSlots).
__device__ __forceinline__ void block_sums(double (&acc)[kSlots], double* out) {
  double* const sm = reinterpret_cast<double*>(mk_meta_smem);  // [kWarps][kSlots]
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
#pragma unroll
  for (int s = 0; s < kSlots; ++s)
    for (int o = 16; o > 0; o >>= 1) acc[s] += __shfl_xor_sync(0xffffffffu, acc[s], o);
  if (lane == 0)
    for (int s = 0; s < kSlots; ++s) sm[warp * kSlots + s] = acc[s];
  __syncthreads();
  if (int(threadIdx.x) < kSlots) {
    double t = 0.0;
    for (int w = 0; w < Traits::kWarps; ++w) t += sm[w * kSlots + int(threadIdx.x)];
    out[threadIdx.x] = t;
  }
}

// One block: the partial sums of `blocks` blocks, added in a fixed order, into each wanted
// one-value gradient.
template <class T>
__global__ void __launch_bounds__(Traits::kThreads) finish_sums_kernel(const StepArgs<T> a, int64_t blocks) {
  double acc[kSlots];
  for (int s = 0; s < kSlots; ++s) acc[s] = 0.0;
  for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x)
    for (int s = 0; s < kSlots; ++s) acc[s] += a.partial[b * kSlots + s];
  double* const sm = reinterpret_cast<double*>(mk_meta_smem) + Traits::kWarps * kSlots;
  block_sums(acc, sm);
  __syncthreads();
  if (int(threadIdx.x) < kSlots && a.cot_hyper_scalar[threadIdx.x]) a.cot_hyper_scalar[threadIdx.x][0] = T(sm[threadIdx.x]);
}

// ---- kernels ------------------------------------------------------------------------------------
template <class T, int KIND, int VEC>
__global__ void __launch_bounds__(Traits::kThreads) sgd_forward_kernel(const StepArgs<T> a) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t whole = a.n / VEC * VEC;
  for (int64_t i0 = tid * VEC; i0 < whole; i0 += stride * VEC) sgd_forward_at<T, KIND, VEC>(a, i0);
  for (int64_t i = whole + tid; i < a.n; i += stride) sgd_forward_at<T, KIND, 1>(a, i);
}

template <class T, int KIND, int VEC>
__global__ void __launch_bounds__(Traits::kThreads) sgd_backward_kernel(const StepArgs<T> a) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t whole = a.n / VEC * VEC;
  double acc[kSlots];
#pragma unroll
  for (int s = 0; s < kSlots; ++s) acc[s] = 0.0;
  for (int64_t i0 = tid * VEC; i0 < whole; i0 += stride * VEC) sgd_backward_at<T, KIND, VEC>(a, i0, acc);
  for (int64_t i = whole + tid; i < a.n; i += stride) sgd_backward_at<T, KIND, 1>(a, i, acc);
  block_sums(acc, a.partial + int64_t(blockIdx.x) * kSlots);
}

template <class T, bool DECOUPLED, int VEC>
__global__ void __launch_bounds__(Traits::kThreads) adam_forward_kernel(const StepArgs<T> a) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t whole = a.n / VEC * VEC;
  const AdamConsts<T> c = adam_consts_of(a);
  for (int64_t i0 = tid * VEC; i0 < whole; i0 += stride * VEC) adam_forward_at<T, DECOUPLED, VEC>(a, c, i0);
  for (int64_t i = whole + tid; i < a.n; i += stride) adam_forward_at<T, DECOUPLED, 1>(a, c, i);
}

template <class T, bool DECOUPLED, int VEC>
__global__ void __launch_bounds__(Traits::kThreads) adam_backward_kernel(const StepArgs<T> a) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t whole = a.n / VEC * VEC;
  const AdamConsts<T> c = adam_consts_of(a);
  double acc[kSlots];
#pragma unroll
  for (int s = 0; s < kSlots; ++s) acc[s] = 0.0;
  for (int64_t i0 = tid * VEC; i0 < whole; i0 += stride * VEC) adam_backward_at<T, DECOUPLED, VEC>(a, c, i0, acc);
  for (int64_t i = whole + tid; i < a.n; i += stride) adam_backward_at<T, DECOUPLED, 1>(a, c, i, acc);
  block_sums(acc, a.partial + int64_t(blockIdx.x) * kSlots);
}

// ---- launchers ----------------------------------------------------------------------------------
int64_t grid_blocks(int64_t n) {
  const int64_t b = (n + Traits::kElementsPerBlock - 1) / Traits::kElementsPerBlock;
  return b < 1 ? 1 : (b > Traits::kMaxBlocks ? Traits::kMaxBlocks : b);
}

template <class... KArgs, class... Args>
int launch(void (*kernel)(KArgs...), int64_t blocks, size_t smem, void* stream, Args... args) {
  return launch_grid(kernel, blocks, Traits::kThreads, smem, as_stream(stream), args...);
}

template <class T>
StepArgs<T> args_of(const MetaStepParams& p) {
  StepArgs<T> a{};
  a.n = p.n;
  a.step = p.step;
  a.param = static_cast<const T*>(p.param);
  a.grad = static_cast<const T*>(p.grad);
  a.buf = static_cast<const T*>(p.buf);
  a.m = static_cast<const T*>(p.m);
  a.v = static_cast<const T*>(p.v);
  for (int s = 0; s < kSlots; ++s) {
    a.hyper[s] = Hyper<T>{static_cast<const T*>(p.hyper[s]), p.hyper[s] ? p.hyper_stride[s] : 0, T(p.hyper_value[s])};
    T* c = static_cast<T*>(p.cot_hyper[s]);
    a.cot_hyper_elems[s] = p.hyper_stride[s] == 1 ? c : nullptr;
    a.cot_hyper_scalar[s] = p.hyper_stride[s] == 1 ? nullptr : c;
  }
  a.param_out = static_cast<T*>(p.param_out);
  a.buf_out = static_cast<T*>(p.buf_out);
  a.m_out = static_cast<T*>(p.m_out);
  a.v_out = static_cast<T*>(p.v_out);
  a.cot_param_out = static_cast<const T*>(p.cot_param_out);
  a.cot_buf_out = static_cast<const T*>(p.cot_buf_out);
  a.cot_m_out = static_cast<const T*>(p.cot_m_out);
  a.cot_v_out = static_cast<const T*>(p.cot_v_out);
  a.cot_param = static_cast<T*>(p.cot_param);
  a.cot_grad = static_cast<T*>(p.cot_grad);
  a.cot_buf = static_cast<T*>(p.cot_buf);
  a.cot_m = static_cast<T*>(p.cot_m);
  a.cot_v = static_cast<T*>(p.cot_v);
  a.partial = static_cast<double*>(p.workspace);
  return a;
}

// Whether every array of the call is 16-byte aligned (then the kernels take 16-byte vectors).
template <class T>
bool vectorisable(const StepArgs<T>& a) {
  const void* ptrs[] = {a.param, a.grad, a.buf, a.m, a.v, a.param_out, a.buf_out, a.m_out, a.v_out,
                        a.cot_param_out, a.cot_buf_out, a.cot_m_out, a.cot_v_out, a.cot_param, a.cot_grad,
                        a.cot_buf, a.cot_m, a.cot_v};
  for (const void* q : ptrs)
    if (reinterpret_cast<uintptr_t>(q) % 16 != 0) return false;
  for (int s = 0; s < kSlots; ++s)
    if (reinterpret_cast<uintptr_t>(a.cot_hyper_elems[s]) % 16 != 0) return false;
  return true;
}

constexpr size_t kReduceSmem = sizeof(double) * Traits::kWarps * kSlots;

template <class T>
int finish(const StepArgs<T>& a, int64_t blocks, void* stream) {
  bool any = false;
  for (int s = 0; s < kSlots; ++s) any |= a.cot_hyper_scalar[s] != nullptr;
  if (!any) return 0;
  return launch(finish_sums_kernel<T>, 1, 2 * kReduceSmem, stream, a, blocks);
}

template <class T, int KIND>
int sgd_forward_kind(const StepArgs<T>& a, void* stream) {
  const int64_t blocks = grid_blocks(a.n);
  if (vectorisable(a)) return launch(sgd_forward_kernel<T, KIND, 16 / sizeof(T)>, blocks, 0, stream, a);
  return launch(sgd_forward_kernel<T, KIND, 1>, blocks, 0, stream, a);
}

template <class T, int KIND>
int sgd_backward_kind(const StepArgs<T>& a, void* stream) {
  const int64_t blocks = grid_blocks(a.n);
  int e = vectorisable(a) ? launch(sgd_backward_kernel<T, KIND, 16 / sizeof(T)>, blocks, kReduceSmem, stream, a)
                          : launch(sgd_backward_kernel<T, KIND, 1>, blocks, kReduceSmem, stream, a);
  return e ? e : finish(a, blocks, stream);
}

template <class T, bool DECOUPLED>
int adam_forward_kind(const StepArgs<T>& a, void* stream) {
  const int64_t blocks = grid_blocks(a.n);
  if (vectorisable(a)) return launch(adam_forward_kernel<T, DECOUPLED, 16 / sizeof(T)>, blocks, 0, stream, a);
  return launch(adam_forward_kernel<T, DECOUPLED, 1>, blocks, 0, stream, a);
}

template <class T, bool DECOUPLED>
int adam_backward_kind(const StepArgs<T>& a, void* stream) {
  const int64_t blocks = grid_blocks(a.n);
  int e = vectorisable(a)
              ? launch(adam_backward_kernel<T, DECOUPLED, 16 / sizeof(T)>, blocks, kReduceSmem, stream, a)
              : launch(adam_backward_kernel<T, DECOUPLED, 1>, blocks, kReduceSmem, stream, a);
  return e ? e : finish(a, blocks, stream);
}

int sgd_kind(const MetaStepParams& p) {
  if (!p.buf) return kSgdPlain;
  return (p.flags & MK_META_NESTEROV) ? kSgdNesterov : kSgdMomentum;
}

template <class T>
int sgd_forward_t(const MetaStepParams& p, void* stream) {
  const StepArgs<T> a = args_of<T>(p);
  switch (sgd_kind(p)) {
    case kSgdPlain: return sgd_forward_kind<T, kSgdPlain>(a, stream);
    case kSgdMomentum: return sgd_forward_kind<T, kSgdMomentum>(a, stream);
    default: return sgd_forward_kind<T, kSgdNesterov>(a, stream);
  }
}

template <class T>
int sgd_backward_t(const MetaStepParams& p, void* stream) {
  const StepArgs<T> a = args_of<T>(p);
  switch (sgd_kind(p)) {
    case kSgdPlain: return sgd_backward_kind<T, kSgdPlain>(a, stream);
    case kSgdMomentum: return sgd_backward_kind<T, kSgdMomentum>(a, stream);
    default: return sgd_backward_kind<T, kSgdNesterov>(a, stream);
  }
}

template <class T>
int adam_forward_t(const MetaStepParams& p, void* stream) {
  const StepArgs<T> a = args_of<T>(p);
  return (p.flags & MK_META_DECOUPLED_WEIGHT_DECAY) ? adam_forward_kind<T, true>(a, stream)
                                                    : adam_forward_kind<T, false>(a, stream);
}

template <class T>
int adam_backward_t(const MetaStepParams& p, void* stream) {
  const StepArgs<T> a = args_of<T>(p);
  return (p.flags & MK_META_DECOUPLED_WEIGHT_DECAY) ? adam_backward_kind<T, true>(a, stream)
                                                    : adam_backward_kind<T, false>(a, stream);
}

}  // namespace

int meta_sgd_step_forward(const MetaStepParams& p, void* stream) {
  if (p.dtype == MK_F32) return sgd_forward_t<float>(p, stream);
  if (p.dtype == MK_F64) return sgd_forward_t<double>(p, stream);
  return KERNEL_UNSUPPORTED;
}

int meta_sgd_step_backward(const MetaStepParams& p, void* stream) {
  if (p.dtype == MK_F32) return sgd_backward_t<float>(p, stream);
  if (p.dtype == MK_F64) return sgd_backward_t<double>(p, stream);
  return KERNEL_UNSUPPORTED;
}

int meta_adam_step_forward(const MetaStepParams& p, void* stream) {
  if (p.dtype == MK_F32) return adam_forward_t<float>(p, stream);
  if (p.dtype == MK_F64) return adam_forward_t<double>(p, stream);
  return KERNEL_UNSUPPORTED;
}

int meta_adam_step_backward(const MetaStepParams& p, void* stream) {
  if (p.dtype == MK_F32) return adam_backward_t<float>(p, stream);
  if (p.dtype == MK_F64) return adam_backward_t<double>(p, stream);
  return KERNEL_UNSUPPORTED;
}

int64_t meta_step_workspace(int64_t n) { return grid_blocks(n) * kSlots * int64_t(sizeof(double)); }

}  // namespace cuda
}  // namespace mk
