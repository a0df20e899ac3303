// C ABI of the softmax-attention family: validation, then the CPU or CUDA kernels.
#include <omp.h>

#include <cinttypes>
#include <cmath>
#include <vector>

#include "common.h"

using namespace mk::native;
using mk::AttentionParams;
using mk::KernelTable;

namespace {

int threads_for(int device) { return device == MK_DEVICE_CPU ? omp_get_max_threads() : 1; }

// Validates the arguments every pass shares and fills p. `op` names the entry point; `half`:
// whether it accepts BF16/F16 (forward and backward; then lse is F32 and everything else 16-bit).
int prepare(const char* op, bool half, const KernelTable* t, int device, int dtype, int64_t batch, int64_t heads,
            int64_t kv_heads, int64_t nq, int64_t nk, int64_t d, int64_t dv, const void* q, const void* k,
            const void* v, const void* bias, int64_t bias_bs, int64_t bias_hs, const int64_t* key_lengths,
            double scale, int flags, void* workspace, int64_t workspace_bytes, AttentionParams* p) {
  MK_CHECK(half ? check_float_or_half_dtype(op, device, dtype) : check_no_half_dtype(op, device, dtype));
  if (batch < 0 || heads < 1 || kv_heads < 1 || nq < 0 || nk < 0)
    return fail(MK_ERR_INVALID_ARGUMENT,
                "%s: sizes batch %" PRId64 ", heads %" PRId64 ", kv_heads %" PRId64 ", nq %" PRId64 ", nk %" PRId64
                " (need batch, nq, nk >= 0 and heads, kv_heads >= 1)", op, batch, heads, kv_heads, nq, nk);
  if (heads % kv_heads != 0)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: kv_heads %" PRId64 " does not divide heads %" PRId64, op, kv_heads, heads);
  if (d < 1 || d > 256 || dv < 1 || dv > 256)
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: head dims d = %" PRId64 ", dv = %" PRId64 " outside [1, 256]", op, d, dv);
  if (!std::isfinite(scale)) return fail(MK_ERR_INVALID_ARGUMENT, "%s: scale %g is not finite", op, scale);
  if (flags & ~(MK_ATTENTION_CAUSAL | MK_ATTENTION_TF32))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: flags %d (expected MK_ATTENTION_CAUSAL = 1, MK_ATTENTION_TF32 = 2)", op, flags);
  if (bias && (bias_bs < 0 || bias_hs < 0))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: negative bias strides (%" PRId64 ", %" PRId64 ")", op, bias_bs, bias_hs);
  MK_CHECK(check_ptr(op, "q", q, batch * heads * nq * d));
  MK_CHECK(check_ptr(op, "k", k, batch * kv_heads * nk * d));
  MK_CHECK(check_ptr(op, "v", v, batch * kv_heads * nk * dv));
  if (key_lengths && batch > 0) {
    std::vector<int64_t> host(size_t(batch), 0);
    if (device == MK_DEVICE_CPU) {
      for (int64_t b = 0; b < batch; ++b) host[size_t(b)] = key_lengths[b];
    } else {
      MK_CHECK(kernel_status(op, device, t->runtime.memcpy_d2h(host.data(), key_lengths, batch * 8, nullptr)));
    }
    for (int64_t b = 0; b < batch; ++b)
      if (host[size_t(b)] < 0 || host[size_t(b)] > nk)
        return fail(MK_ERR_INVALID_ARGUMENT, "%s: key length %" PRId64 " of batch %" PRId64 " outside [0, %" PRId64 "]",
                    op, host[size_t(b)], b, nk);
  }
  const int64_t need = t->attention_workspace(AttentionParams{dtype, batch, heads, kv_heads, nq, nk, d, dv},
                                              threads_for(device));
  if (workspace_bytes < need || (need > 0 && !workspace))
    return fail(MK_ERR_INVALID_ARGUMENT, "%s: workspace of %" PRId64 " bytes, need %" PRId64, op, workspace_bytes, need);
  *p = AttentionParams{};
  p->dtype = dtype;
  p->batch = batch;
  p->heads = heads;
  p->kv_heads = kv_heads;
  p->nq = nq;
  p->nk = nk;
  p->d = d;
  p->dv = dv;
  p->q = q;
  p->k = k;
  p->v = v;
  p->bias = bias;
  p->bias_bs = bias_bs;
  p->bias_hs = bias_hs;
  p->key_lengths = key_lengths;
  p->scale = scale;
  p->causal = (flags & MK_ATTENTION_CAUSAL) ? 1 : 0;
  p->allow_tf32 = (flags & MK_ATTENTION_TF32) ? 1 : 0;
  p->workspace = workspace;
  return MK_OK;
}

// The 16-bit CUDA kernels pad head dims to 64, 128 or 256 and keep whole tiles in shared memory:
// a GPU with less per block than a pass needs (D or Dv above 128 on sm_86-class devices) says so.
int half_status(const char* op, int device, const AttentionParams& p, int code) {
  if (code == mk::KERNEL_UNSUPPORTED && device == MK_DEVICE_CUDA && (p.dtype == MK_BF16 || p.dtype == MK_F16))
    return fail(MK_ERR_UNSUPPORTED,
                "%s: %s head dims d = %" PRId64 ", dv = %" PRId64 " need more shared memory per block than this GPU "
                "offers (above 128 they take ~150 KB in the backward, ~70 KB in the forward); cast to F32",
                op, p.dtype == MK_BF16 ? "BF16" : "F16", p.d, p.dv);
  return kernel_status(op, device, code);
}

int zero(const char* op, const KernelTable* t, int device, int dtype, int64_t n, void* dst, void* stream) {
  if (!dst || n == 0) return MK_OK;
  return kernel_status(op, device, t->fill(dtype, n, dst, 0.0, stream));
}

}  // namespace

extern "C" {

int64_t mk_attention_softmax_workspace(int device, int dtype, int64_t batch, int64_t heads,
                                       int64_t kv_heads, int64_t nq, int64_t nk, int64_t d, int64_t dv) {
  const KernelTable* t = kernels_for("mk_attention_softmax_workspace", device);
  if (!t) return -1;
  AttentionParams p{};
  p.dtype = dtype;
  p.batch = batch;
  p.heads = heads;
  p.kv_heads = kv_heads;
  p.nq = nq;
  p.nk = nk;
  p.d = d;
  p.dv = dv;
  return t->attention_workspace(p, threads_for(device));
}

int mk_attention_softmax_forward(int device, int dtype, int64_t batch, int64_t heads, int64_t kv_heads,
                                 int64_t nq, int64_t nk, int64_t d, int64_t dv, const void* q, const void* k,
                                 const void* v, const void* bias, int64_t bias_bs, int64_t bias_hs,
                                 const int64_t* key_lengths, double scale, int flags, void* out, void* lse,
                                 void* workspace, int64_t workspace_bytes, void* stream) {
  const char* op = "mk_attention_softmax_forward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  AttentionParams p;
  MK_CHECK(prepare(op, true, t, device, dtype, batch, heads, kv_heads, nq, nk, d, dv, q, k, v, bias, bias_bs, bias_hs,
                   key_lengths, scale, flags, workspace, workspace_bytes, &p));
  MK_CHECK(check_ptr(op, "out", out, batch * heads * nq * dv));
  if (batch * heads * nq == 0) return MK_OK;
  p.out0 = out;
  p.out1 = lse;
  return half_status(op, device, p, t->attention_forward(p, stream));
}

int mk_attention_softmax_backward(int device, int dtype, int64_t batch, int64_t heads, int64_t kv_heads,
                                  int64_t nq, int64_t nk, int64_t d, int64_t dv, const void* q, const void* k,
                                  const void* v, const void* bias, int64_t bias_bs, int64_t bias_hs,
                                  const int64_t* key_lengths, double scale, int flags, const void* out,
                                  const void* lse, const void* dout, void* dq, void* dk, void* dv_out,
                                  void* dbias_full, void* workspace, int64_t workspace_bytes, void* stream) {
  const char* op = "mk_attention_softmax_backward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  AttentionParams p;
  MK_CHECK(prepare(op, true, t, device, dtype, batch, heads, kv_heads, nq, nk, d, dv, q, k, v, bias, bias_bs, bias_hs,
                   key_lengths, scale, flags, workspace, workspace_bytes, &p));
  MK_CHECK(check_ptr(op, "out", out, batch * heads * nq * dv));
  MK_CHECK(check_ptr(op, "lse", lse, batch * heads * nq));
  MK_CHECK(check_ptr(op, "dout", dout, batch * heads * nq * dv));
  // gradients of empty or fully padded parts are zero: clear them first
  MK_CHECK(zero(op, t, device, dtype, batch * heads * nq * d, dq, stream));
  MK_CHECK(zero(op, t, device, dtype, batch * kv_heads * nk * d, dk, stream));
  MK_CHECK(zero(op, t, device, dtype, batch * kv_heads * nk * dv, dv_out, stream));
  MK_CHECK(zero(op, t, device, dtype, batch * heads * nq * nk, dbias_full, stream));
  if (batch * heads * nq * nk == 0) return MK_OK;
  p.out = out;
  p.lse = lse;
  p.dout = dout;
  p.out0 = dq;
  p.out1 = dk;
  p.out2 = dv_out;
  p.out3 = dbias_full;
  return half_status(op, device, p, t->attention_backward(p, stream));
}

int mk_attention_softmax_backward_backward(int device, int dtype, int64_t batch, int64_t heads, int64_t kv_heads,
                                           int64_t nq, int64_t nk, int64_t d, int64_t dv, const void* q,
                                           const void* k, const void* v, const void* bias, int64_t bias_bs,
                                           int64_t bias_hs, const int64_t* key_lengths, double scale, int flags,
                                           const void* out, const void* lse, const void* dout, const void* g_dq,
                                           const void* g_dk, const void* g_dv, const void* g_dbias_full,
                                           void* gq, void* gk, void* gv, void* g_dout, void* g_bias_full,
                                           void* workspace, int64_t workspace_bytes, void* stream) {
  const char* op = "mk_attention_softmax_backward_backward";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  AttentionParams p;
  MK_CHECK(prepare(op, false, t, device, dtype, batch, heads, kv_heads, nq, nk, d, dv, q, k, v, bias, bias_bs, bias_hs,
                   key_lengths, scale, flags, workspace, workspace_bytes, &p));
  MK_CHECK(check_ptr(op, "out", out, batch * heads * nq * dv));
  MK_CHECK(check_ptr(op, "lse", lse, batch * heads * nq));
  MK_CHECK(check_ptr(op, "dout", dout, batch * heads * nq * dv));
  MK_CHECK(zero(op, t, device, dtype, batch * heads * nq * d, gq, stream));
  MK_CHECK(zero(op, t, device, dtype, batch * kv_heads * nk * d, gk, stream));
  MK_CHECK(zero(op, t, device, dtype, batch * kv_heads * nk * dv, gv, stream));
  MK_CHECK(zero(op, t, device, dtype, batch * heads * nq * dv, g_dout, stream));
  MK_CHECK(zero(op, t, device, dtype, batch * heads * nq * nk, g_bias_full, stream));
  if (batch * heads * nq * nk == 0) return MK_OK;
  p.out = out;
  p.lse = lse;
  p.dout = dout;
  p.gq = g_dq;
  p.gk = g_dk;
  p.gv = g_dv;
  p.gbias = g_dbias_full;
  p.out0 = gq;
  p.out1 = gk;
  p.out2 = gv;
  p.out3 = g_dout;
  p.out4 = g_bias_full;
  return kernel_status(op, device, t->attention_backward_backward(p, stream));
}

int mk_attention_softmax_jvp(int device, int dtype, int64_t batch, int64_t heads, int64_t kv_heads, int64_t nq,
                             int64_t nk, int64_t d, int64_t dv, const void* q, const void* k, const void* v,
                             const void* bias, int64_t bias_bs, int64_t bias_hs, const int64_t* key_lengths,
                             double scale, int flags, const void* out, const void* lse, const void* tq,
                             const void* tk, const void* tv, const void* tbias_full, void* tout, void* tlse,
                             void* workspace, int64_t workspace_bytes, void* stream) {
  const char* op = "mk_attention_softmax_jvp";
  const KernelTable* t = kernels_for(op, device);
  if (!t) return MK_ERR_NO_DEVICE;
  AttentionParams p;
  MK_CHECK(prepare(op, false, t, device, dtype, batch, heads, kv_heads, nq, nk, d, dv, q, k, v, bias, bias_bs, bias_hs,
                   key_lengths, scale, flags, workspace, workspace_bytes, &p));
  MK_CHECK(check_ptr(op, "out", out, batch * heads * nq * dv));
  MK_CHECK(check_ptr(op, "lse", lse, batch * heads * nq));
  MK_CHECK(check_ptr(op, "tout", tout, batch * heads * nq * dv));
  MK_CHECK(zero(op, t, device, dtype, batch * heads * nq * dv, tout, stream));
  MK_CHECK(zero(op, t, device, dtype, batch * heads * nq, tlse, stream));
  if (batch * heads * nq * nk == 0) return MK_OK;
  p.out = out;
  p.lse = lse;
  p.gq = tq;
  p.gk = tk;
  p.gv = tv;
  p.gbias = tbias_full;
  p.out0 = tout;
  p.out1 = tlse;
  return kernel_status(op, device, t->attention_jvp(p, stream));
}

}  // extern "C"
