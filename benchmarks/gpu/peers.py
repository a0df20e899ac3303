#!/usr/bin/env python3
"""PyTorch peers for the GPU benchmarks, on the same shapes as the JMH GPU benchmarks.

Softmax attention: scaled_dot_product_attention in BF16 with D = 128 and N up to 16k (forward,
forward+backward; TFLOP/s and % of the H100's 989 TFLOP/s dense BF16 peak), the shapes of
GpuAttentionBf16Bench ([4,16,4096,128], [1,16,16384,128]) among them, and the double
backward in F32 through the math path (create_graph=True), which the fused SDPA kernels refuse.
Linear attention (F32, BF16, and F32 with TF32 matmuls as dtype "tf32"): causal forward and forward+backward at [4, 8, 4096, 64] through the
masked quadratic form and a chunked cumsum form, non-causal at [16, 8, 1024, 64] through
(K^T V). Dense memory-bound ops (reductions, softmax, elementwise, copies: the ops of
GpuDenseBench, named "dense.OP") in F32 on [4, 16, 4096, 128], with a copy-bandwidth reference
(y.copy_(x): the rate every memory-bound op is measured against). Prints one JSON line per measurement and writes them all (milliseconds, median of
timed repetitions).
"""
import argparse
import json
import time

import torch


def timed(fn, reps=10, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def la_state(q, k, v):
    return q @ (k.transpose(-2, -1) @ v)


def la_chunked(q, k, v, chunk=64):
    # causal: intra-chunk quadratic + inter-chunk running state (cumsum over chunk states)
    b, h, n, d = q.shape
    c = n // chunk
    qc, kc, vc = (t.reshape(b, h, c, chunk, -1) for t in (q, k, v))
    states = kc.transpose(-2, -1) @ vc                      # [b, h, c, d, dv]
    prefix = torch.cumsum(states, dim=2) - states            # exclusive prefix
    mask = torch.tril(torch.ones(chunk, chunk, device=q.device, dtype=q.dtype))
    intra = ((qc @ kc.transpose(-2, -1)) * mask) @ vc
    inter = qc @ prefix
    return (intra + inter).reshape(b, h, n, -1)


def bench(name, shape, fn, causal, results, dtype=torch.float32, label=None):
    """Forward, forward+backward (gradient of ⟨out, g⟩) and double backward (gradient of
    Σ_x ⟨∂/∂x, r_x⟩ with create_graph), the three passes of GpuLinearAttentionBench on the same
    shape; 16-bit inputs keep the inner products of the double backward in F32 as the JMH class."""
    b, h, n, d = shape
    q, k, v = (torch.randn(b, h, n, d, device="cuda").to(dtype).requires_grad_(True) for _ in range(3))
    g = torch.randn(b, h, n, d, device="cuda").to(dtype)
    r = [torch.randn(b, h, n, d, device="cuda") for _ in range(3)]

    def fwd():
        with torch.no_grad():
            fn(q, k, v)

    def fwdbwd():
        out = fn(q, k, v)
        torch.autograd.grad(out, (q, k, v), g)

    def second():
        out = fn(q, k, v)
        gs = torch.autograd.grad(out, (q, k, v), g, create_graph=True)
        s = sum((gi.float() * ri).sum() for gi, ri in zip(gs, r))
        torch.autograd.grad(s, (q, k, v))

    row = {"peer": name, "dtype": label or str(dtype).replace("torch.", ""), "shape": list(shape), "causal": causal}
    try:
        row["forward_ms"] = timed(fwd)
        row["forward_backward_ms"] = timed(fwdbwd)
        torch.cuda.reset_peak_memory_stats()
        row["double_backward_ms"] = timed(second, reps=5, warmup=2)
        row["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    except RuntimeError as e:  # out of memory and the like
        row["error"] = str(e).splitlines()[0]
        torch.cuda.empty_cache()
    results.append(row)
    print(json.dumps(row))


def bench_sdpa(shape, causal, results, dtype=torch.bfloat16):
    import torch.nn.functional as F
    b, h, n, d = shape
    q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
    g = torch.randn(b, h, n, d, device="cuda", dtype=dtype)

    def fwd():
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    def fwdbwd():
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        torch.autograd.grad(out, (q, k, v), g)

    # the FlashAttention count (as benchmarks/gpu/tflops.py for the JMH runs): forward 4·B·H·N²·D,
    # halved when causal; the backward 2.5× the forward, so forward+backward 3.5×
    flops = 4.0 * b * h * n * n * d * (0.5 if causal else 1.0)
    row = {"peer": "sdpa", "dtype": str(dtype).replace("torch.", ""), "shape": list(shape), "causal": causal}
    try:
        row["forward_ms"] = timed(fwd)
        row["forward_backward_ms"] = timed(fwdbwd)
        row["forward_tflops"] = flops / row["forward_ms"] / 1e9
        row["forward_backward_tflops"] = 3.5 * flops / row["forward_backward_ms"] / 1e9
        row["forward_pct_of_989"] = 100 * row["forward_tflops"] / 989
        row["forward_backward_pct_of_989"] = 100 * row["forward_backward_tflops"] / 989
    except RuntimeError as e:
        row["error"] = str(e).splitlines()[0]
        torch.cuda.empty_cache()
    results.append(row)
    print(json.dumps(row))


def bench_double_backward(shape, causal, results, dtype=torch.float32, label=None):
    """PyTorch's math path with create_graph, the work of GpuAttentionBench.doubleBackward (F32) and
    GpuAttentionBf16Bench.doubleBackward (BF16): the gradient of Σ_x ⟨∂⟨out, g⟩/∂x, r_x⟩ with
    respect to q, k, v (the inner products in F32, r_x F32)."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    b, h, n, d = shape
    q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.float32).to(dtype).requires_grad_(True)
               for _ in range(3))
    g = torch.randn(b, h, n, d, device="cuda").to(dtype)
    u = [torch.randn(t.shape, device="cuda") for t in (q, k, v)]

    def second():
        with sdpa_kernel(SDPBackend.MATH):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            gs = torch.autograd.grad(out, (q, k, v), g, create_graph=True)
            s = sum((gi.float() * ui).sum() for gi, ui in zip(gs, u))
            torch.autograd.grad(s, (q, k, v))

    row = {"peer": "sdpa_math_double_backward", "dtype": label or str(dtype).replace("torch.", ""),
           "shape": list(shape), "causal": causal}
    try:
        torch.cuda.reset_peak_memory_stats()
        row["double_backward_ms"] = timed(second, reps=5, warmup=2)
        row["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    except RuntimeError as e:
        row["error"] = str(e).splitlines()[0]
        torch.cuda.empty_cache()
    results.append(row)
    print(json.dumps(row))


def bench_dense(shape, results):
    """PyTorch on the ops of GpuDenseBench (same names, same shapes, F32), and the copy rate."""
    b, h, n, d = shape
    x = torch.randn(shape, device="cuda")
    y = torch.randn(shape, device="cuda")
    bias = torch.randn(d, device="cuda")
    mask = (x > y).float()
    flat, rows = x.reshape(-1), x.reshape(-1, d)
    long_rows = x.reshape(b * h, -1)
    columns = y.reshape(d, -1)  # the shape of rows transposed
    out = torch.empty_like(x)
    ops = {
        "sum": lambda: flat.sum(),
        "sumRows": lambda: rows.sum(1),
        "sumCols": lambda: rows.sum(0),
        "maxRows": lambda: rows.max(1),
        "maxAll": lambda: flat.max(0),
        "softmaxShort": lambda: torch.softmax(rows, 1),
        "softmaxLong": lambda: torch.softmax(long_rows, 1),
        "logSoftmaxShort": lambda: torch.log_softmax(rows, 1),
        "add": lambda: x + y,
        "addBias": lambda: x + bias,
        "mulScalar": lambda: x * 1.5,
        "tanh": lambda: torch.tanh(x),
        "where": lambda: torch.where(mask != 0, x, y),
        "copy": lambda: x.clone(),
        "copyTransposed": lambda: rows.t().contiguous(),
        "addTransposed": lambda: columns + rows.t(),
        "fill": lambda: torch.zeros(shape, device="cuda"),
        "castBf16": lambda: x.to(torch.bfloat16),
        "randn": lambda: torch.randn(shape, device="cuda"),
        "copy_reference": lambda: out.copy_(x),
    }
    for name, fn in ops.items():
        row = {"peer": "dense." + name, "dtype": "float32", "shape": list(shape)}
        try:
            with torch.no_grad():
                row["forward_ms"] = timed(fn, reps=20, warmup=5)
            if name == "copy_reference":
                row["copy_gbps"] = 2 * x.numel() * 4 / row["forward_ms"] / 1e6
        except RuntimeError as e:
            row["error"] = str(e).splitlines()[0]
            torch.cuda.empty_cache()
        results.append(row)
        print(json.dumps(row))


def bench_launch(results):
    """PyTorch's one-element add as GpuLaunchBench times its own: wall clock (host call to device
    done) of one add and a sync ("launch.tinyOp"), and of 16 chained adds and one sync, per add
    ("launch.tinyOp16"); microseconds, the median of 2,000 after 200 warm-ups."""
    x = torch.randn(1, device="cuda")
    y = torch.randn(1, device="cuda")

    def one():
        x + y
        torch.cuda.synchronize()

    def sixteen():
        z = x
        for _ in range(16):
            z = z + y
        torch.cuda.synchronize()

    for name, fn, per in (("tinyOp", one, 1), ("tinyOp16", sixteen, 16)):
        for _ in range(200):
            fn()
        times = []
        for _ in range(2000):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e6 / per)
        times.sort()
        row = {"peer": "launch." + name, "dtype": "float32", "shape": [1], "wall_us": times[len(times) // 2]}
        results.append(row)
        print(json.dumps(row))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="peers.json")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    results = []
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(json.dumps(info))
    bench_dense((4, 16, 4096, 128), results)  # first: seconds, and check.sh's timeout cuts the tail
    bench_launch(results)

    def save():
        with open(args.out, "w") as f:
            json.dump({"info": info, "results": results}, f, indent=2)

    save()  # the dense rows survive a timeout in the attention part
    for n, b in ((1024, 16), (4096, 4), (16384, 1)):
        for causal in (False, True):
            bench_sdpa((b, 16, n, 128), causal, results)
    # the shapes of the GPU JMH classes (GpuAttentionBench, GpuLinearAttentionBench: [4,16,4096,128]),
    # so benchmarks/gpu/ratios.py can put each beside its metakernels row
    jmh_shape = (4, 16, 4096, 128)
    for causal in (False, True):
        bench_sdpa(jmh_shape, causal, results, torch.float32)  # GpuAttentionBench's F32 rows
        bench_double_backward(jmh_shape, causal, results)
        bench_double_backward(jmh_shape, causal, results, torch.bfloat16)  # GpuAttentionBf16Bench.doubleBackward
    save()
    for dtype in (torch.float32, torch.bfloat16):
        bench("linear_attention.chunked_cumsum", jmh_shape, la_chunked, True, results, dtype)
        bench("linear_attention.state", jmh_shape, la_state, False, results, dtype)
    # F32 with TF32 matmuls: the peers of GpuLinearAttentionBench -p dtype=TF32 (dtype "tf32")
    torch.backends.cuda.matmul.allow_tf32 = True
    bench("linear_attention.chunked_cumsum", jmh_shape, la_chunked, True, results, torch.float32, "tf32")
    bench("linear_attention.state", jmh_shape, la_state, False, results, torch.float32, "tf32")
    # the math path's double backward with TF32 matmuls: the peer of GpuAttentionBench -p dtype=TF32
    for causal in (False, True):
        bench_double_backward(jmh_shape, causal, results, torch.float32, "tf32")
    torch.backends.cuda.matmul.allow_tf32 = False
    save()
    for shape in ((1, 8, 1024, 64), (4, 8, 512, 64)):  # the CPU AttentionBench shapes
        for causal in (False, True):
            bench_double_backward(shape, causal, results)
    save()


if __name__ == "__main__":
    main()
