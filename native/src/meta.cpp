// C ABI of the meta family (fused differentiable optimizer steps): validation of the parameter
// block, then the CPU or CUDA kernels. What each pass reads and writes: mk_meta_step_params in
// metakernels.h; the maths: kernels/include/mk/meta.h.
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <vector>

#include "common.h"

using namespace mk::native;
using mk::KernelTable;
using mk::MetaStepParams;

namespace {

enum class Opt { kSgd, kAdam };
enum class Pass { kForward, kBackward };

const char* const kHyperNames[MK_META_HYPER_COUNT] = {"lr", "momentum", "weight_decay", "beta1", "beta2", "eps"};

// Which hyperparameters an optimizer reads, and which of them may be per element.
bool uses(Opt o, int i) {
  if (o == Opt::kSgd) return i == MK_META_LR || i == MK_META_MOMENTUM || i == MK_META_WEIGHT_DECAY;
  return i != MK_META_MOMENTUM;
}
bool per_element_allowed(int i) { return i == MK_META_LR || i == MK_META_MOMENTUM || i == MK_META_WEIGHT_DECAY; }

int check_hypers(const char* op, Opt o, Pass pass, const mk_meta_step_params& b) {
  for (int i = 0; i < MK_META_HYPER_COUNT; ++i) {
    const char* name = kHyperNames[i];
    if (!uses(o, i)) {
      if (b.hyper[i] || b.cot_hyper[i])
        return fail(MK_ERR_INVALID_ARGUMENT, "%s: hyperparameter %s is not one of this optimizer's (must be NULL)", op,
                    name);
      continue;
    }
    if (b.hyper[i]) {
      const int64_t s = b.hyper_stride[i];
      if (s != 0 && !(s == 1 && per_element_allowed(i)))
        return fail(MK_ERR_INVALID_ARGUMENT, "%s: hyperparameter %s has stride %" PRId64 " (expected 0, one value%s)",
                    op, name, s, per_element_allowed(i) ? ", or 1, one per element" : "");
      continue;
    }
    if (pass == Pass::kBackward && b.cot_hyper[i])
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: a gradient of hyperparameter %s, which is a constant (hyper NULL)", op,
                  name);
    const double v = b.hyper_value[i];
    if (!std::isfinite(v))
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: hyperparameter %s = %g is not finite", op, name, v);
    if ((i == MK_META_BETA1 || i == MK_META_BETA2) && !(v >= 0.0 && v < 1.0))
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: %s = %g outside [0, 1)", op, name, v);
    if (i == MK_META_EPS && v < 0.0) return fail(MK_ERR_INVALID_ARGUMENT, "%s: eps = %g is negative", op, v);
  }
  return MK_OK;
}

// A memory range of the call, for the overlap checks.
struct Range {
  const char* name;
  const char* pair;  // the input an output may equal exactly (in place), or null
  uintptr_t lo, hi;
};

void add(std::vector<Range>& rs, const char* name, const void* p, int64_t bytes, const char* pair = nullptr) {
  if (p && bytes > 0) rs.push_back(Range{name, pair, uintptr_t(p), uintptr_t(p) + uintptr_t(bytes)});
}

// No output overlaps another output or an input, except an output that is exactly its own input.
int check_overlaps(const char* op, const std::vector<Range>& ins, const std::vector<Range>& outs) {
  for (size_t i = 0; i < outs.size(); ++i) {
    const Range& o = outs[i];
    for (size_t j = i + 1; j < outs.size(); ++j)
      if (o.lo < outs[j].hi && outs[j].lo < o.hi)
        return fail(MK_ERR_INVALID_ARGUMENT, "%s: outputs %s and %s overlap", op, o.name, outs[j].name);
    for (const Range& in : ins) {
      if (!(o.lo < in.hi && in.lo < o.hi)) continue;
      if (o.pair && std::strcmp(o.pair, in.name) == 0 && o.lo == in.lo && o.hi == in.hi) continue;
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: output %s overlaps input %s%s", op, o.name, in.name,
                  o.pair ? " (in place is allowed only over its own input, exactly)" : "");
    }
  }
  return MK_OK;
}

int prepare(const char* op, Opt o, Pass pass, const KernelTable* t, int device, int dtype,
            const mk_meta_step_params* block, void* workspace, int64_t workspace_bytes, MetaStepParams* p) {
  MK_CHECK(check_no_half_dtype(op, device, dtype));
  if (!block) return fail(MK_ERR_INVALID_ARGUMENT, "%s: the parameter block is null", op);
  const mk_meta_step_params& b = *block;
  const int64_t n = b.n;
  MK_CHECK(check_nonneg(op, "n", n));
  if (n > INT64_MAX / 8) return fail(MK_ERR_INVALID_ARGUMENT, "%s: n = %" PRId64 " is too large", op, n);
  const int64_t es = mk::dtype_size(dtype);
  const int64_t bytes = n * es;
  const bool backward = pass == Pass::kBackward;

  // flags and state
  if (o == Opt::kSgd) {
    if (b.flags & ~MK_META_NESTEROV)
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: flags %d (expected 0 or MK_META_NESTEROV = 1)", op, b.flags);
    if (b.m || b.v || b.m_out || b.v_out || b.cot_m_out || b.cot_v_out || b.cot_m || b.cot_v)
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: m and v are Adam's state (their fields must be NULL)", op);
    if (!b.buf) {
      if (b.flags & MK_META_NESTEROV)
        return fail(MK_ERR_INVALID_ARGUMENT, "%s: Nesterov momentum needs a momentum buffer (buf is NULL)", op);
      if (b.hyper[MK_META_MOMENTUM] || b.hyper_value[MK_META_MOMENTUM] != 0.0)
        return fail(MK_ERR_INVALID_ARGUMENT, "%s: momentum %s without a momentum buffer (buf is NULL: plain SGD)", op,
                    b.hyper[MK_META_MOMENTUM] ? "tensor" : "!= 0");
      if (b.buf_out || b.cot_buf_out || b.cot_buf)
        return fail(MK_ERR_INVALID_ARGUMENT, "%s: buf_out, cot_buf_out and cot_buf need a momentum buffer (buf is NULL)",
                    op);
    }
  } else {
    if (b.flags & ~MK_META_DECOUPLED_WEIGHT_DECAY)
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: flags %d (expected 0 or MK_META_DECOUPLED_WEIGHT_DECAY = 2)", op,
                  b.flags);
    if (b.buf || b.buf_out || b.cot_buf_out || b.cot_buf)
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: buf is SGD's momentum buffer (its fields must be NULL)", op);
    if (b.step < 1) return fail(MK_ERR_INVALID_ARGUMENT, "%s: step %" PRId64 " (Adam's t counts from 1)", op, b.step);
    MK_CHECK(check_ptr(op, "m", b.m, n));
    MK_CHECK(check_ptr(op, "v", b.v, n));
  }
  MK_CHECK(check_hypers(op, o, pass, b));
  MK_CHECK(check_ptr(op, "param", b.param, n));
  MK_CHECK(check_ptr(op, "grad", b.grad, n));

  // the ranges read and written
  std::vector<Range> ins, outs;
  add(ins, "param", b.param, bytes);
  add(ins, "grad", b.grad, bytes);
  add(ins, "buf", b.buf, bytes);
  add(ins, "m", b.m, bytes);
  add(ins, "v", b.v, bytes);
  for (int i = 0; i < MK_META_HYPER_COUNT; ++i)
    add(ins, kHyperNames[i], b.hyper[i], b.hyper_stride[i] == 1 ? bytes : es);
  if (!backward) {
    MK_CHECK(check_ptr(op, "param_out", b.param_out, n));
    add(outs, "param_out", b.param_out, bytes, "param");
    if (o == Opt::kSgd && b.buf) {
      MK_CHECK(check_ptr(op, "buf_out", b.buf_out, n));
      add(outs, "buf_out", b.buf_out, bytes, "buf");
    }
    if (o == Opt::kAdam) {
      MK_CHECK(check_ptr(op, "m_out", b.m_out, n));
      MK_CHECK(check_ptr(op, "v_out", b.v_out, n));
      add(outs, "m_out", b.m_out, bytes, "m");
      add(outs, "v_out", b.v_out, bytes, "v");
    }
  } else {
    add(ins, "cot_param_out", b.cot_param_out, bytes);
    add(ins, "cot_buf_out", b.cot_buf_out, bytes);
    add(ins, "cot_m_out", b.cot_m_out, bytes);
    add(ins, "cot_v_out", b.cot_v_out, bytes);
    add(outs, "cot_param", b.cot_param, bytes);
    add(outs, "cot_grad", b.cot_grad, bytes);
    add(outs, "cot_buf", b.cot_buf, bytes);
    add(outs, "cot_m", b.cot_m, bytes);
    add(outs, "cot_v", b.cot_v, bytes);
    static const char* const cot_names[MK_META_HYPER_COUNT] = {"cot_lr", "cot_momentum", "cot_weight_decay",
                                                               "cot_beta1", "cot_beta2", "cot_eps"};
    for (int i = 0; i < MK_META_HYPER_COUNT; ++i)
      add(outs, cot_names[i], b.cot_hyper[i], b.hyper_stride[i] == 1 ? bytes : es);
  }
  MK_CHECK(check_overlaps(op, ins, outs));

  *p = MetaStepParams(b, dtype, workspace);
  if (backward) {
    const int64_t need = t->meta_step_workspace(n);
    if (workspace_bytes < need || (need > 0 && !workspace))
      return fail(MK_ERR_INVALID_ARGUMENT, "%s: workspace of %" PRId64 " bytes, need %" PRId64, op, workspace_bytes,
                  need);
  }
  return MK_OK;
}

int64_t workspace_of(const char* op, int device, int dtype, const mk_meta_step_params* p) {
  const KernelTable* t = kernels_for(op, device);
  if (!t) return -1;
  if (check_no_half_dtype(op, device, dtype) != MK_OK) return -1;
  if (!p) {
    fail(MK_ERR_INVALID_ARGUMENT, "%s: the parameter block is null", op);
    return -1;
  }
  if (check_nonneg(op, "n", p->n) != MK_OK) return -1;
  return t->meta_step_workspace(p->n);
}

using Kernel = int (*)(const MetaStepParams&, void*);

int run(const char* op, Opt o, Pass pass, Kernel KernelTable::*kernel, int device, int dtype,
        const mk_meta_step_params* block, void* workspace, int64_t workspace_bytes, void* stream) {
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  MetaStepParams p;
  MK_CHECK(prepare(op, o, pass, t, device, dtype, block, workspace, workspace_bytes, &p));
  // n = 0 still runs the backward: its one-value hyperparameter gradients are sums of nothing (0)
  if (p.n == 0 && pass == Pass::kForward) return MK_OK;
  return kernel_status(op, device, (t->*kernel)(p, stream));
}

}  // namespace

extern "C" {

int64_t mk_meta_sgd_step_workspace(int device, int dtype, const mk_meta_step_params* p) {
  return workspace_of("mk_meta_sgd_step_workspace", device, dtype, p);
}

int64_t mk_meta_adam_step_workspace(int device, int dtype, const mk_meta_step_params* p) {
  return workspace_of("mk_meta_adam_step_workspace", device, dtype, p);
}

int mk_meta_sgd_step_forward(int device, int dtype, const mk_meta_step_params* p, void* stream) {
  return run("mk_meta_sgd_step_forward", Opt::kSgd, Pass::kForward, &KernelTable::meta_sgd_step_forward, device, dtype,
             p, nullptr, 0, stream);
}

int mk_meta_sgd_step_backward(int device, int dtype, const mk_meta_step_params* p, void* workspace,
                              int64_t workspace_bytes, void* stream) {
  return run("mk_meta_sgd_step_backward", Opt::kSgd, Pass::kBackward, &KernelTable::meta_sgd_step_backward, device,
             dtype, p, workspace, workspace_bytes, stream);
}

int mk_meta_adam_step_forward(int device, int dtype, const mk_meta_step_params* p, void* stream) {
  return run("mk_meta_adam_step_forward", Opt::kAdam, Pass::kForward, &KernelTable::meta_adam_step_forward, device,
             dtype, p, nullptr, 0, stream);
}

int mk_meta_adam_step_backward(int device, int dtype, const mk_meta_step_params* p, void* workspace,
                               int64_t workspace_bytes, void* stream) {
  return run("mk_meta_adam_step_backward", Opt::kAdam, Pass::kBackward, &KernelTable::meta_adam_step_backward, device,
             dtype, p, workspace, workspace_bytes, stream);
}

}  // extern "C"
