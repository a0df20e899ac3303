#!/usr/bin/env python3
"""PyTorch peers for the GPU benchmarks, on the same shapes as the JMH GPU benchmarks.

Linear attention (F32): causal forward and forward+backward at [4, 8, 4096, 64] through the
masked quadratic form and a chunked cumsum form, non-causal at [16, 8, 1024, 64] through
(K^T V). Prints a table and writes JSON (milliseconds, median of timed repetitions).
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


def la_quadratic(q, k, v, causal):
    s = q @ k.transpose(-2, -1)
    if causal:
        n = q.shape[-2]
        s = s * torch.tril(torch.ones(n, n, device=q.device, dtype=q.dtype))
    return s @ v


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


def bench(name, shape, fn, causal, results):
    b, h, n, d = shape
    q, k, v = (torch.randn(b, h, n, d, device="cuda", requires_grad=True) for _ in range(3))
    g = torch.randn(b, h, n, d, device="cuda")

    def fwd():
        with torch.no_grad():
            fn(q, k, v)

    def fwdbwd():
        out = fn(q, k, v)
        torch.autograd.grad(out, (q, k, v), g)

    row = {"peer": name, "shape": list(shape), "causal": causal}
    try:
        row["forward_ms"] = timed(fwd)
        row["forward_backward_ms"] = timed(fwdbwd)
    except RuntimeError as e:  # out of memory and the like
        row["error"] = str(e).splitlines()[0]
        torch.cuda.empty_cache()
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
    bench("linear_attention.quadratic", (4, 8, 4096, 64), lambda q, k, v: la_quadratic(q, k, v, True), True, results)
    bench("linear_attention.chunked_cumsum", (4, 8, 4096, 64), la_chunked, True, results)
    bench("linear_attention.state", (16, 8, 1024, 64), la_state, False, results)
    with open(args.out, "w") as f:
        json.dump({"info": info, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
