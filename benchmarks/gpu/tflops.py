#!/usr/bin/env python3
"""TFLOP/s of the GPU softmax-attention runs: metakernels (JMH JSON) and the PyTorch peers
(peers.py JSON), side by side, as a Markdown table on stdout.

    python3 benchmarks/gpu/tflops.py --jmh OUT/jmh-gpu.json --peers OUT/peers.json

FLOPs (the usual FlashAttention count, the same in peers.py): forward 4·B·H·Nq·Nk·D, halved when
causal; forward+backward 3.5× the forward (the backward is 2.5×). The % column is of the H100/H200
dense BF16 tensor-core peak, 989 TFLOP/s (shown for BF16/F16 rows only). JMH's score is the mean
milliseconds per call; the peers' is the median of timed repetitions.
"""
import argparse
import json
import os

PEAK_BF16 = 989.0  # TFLOP/s, H100/H200 SXM dense BF16
PASS_FACTOR = {"forward": 1.0, "forwardBackward": 3.5}
DTYPE_OF_CLASS = {"GpuAttentionBench": "float32", "GpuAttentionBf16Bench": "bfloat16"}


def flops(shape, causal, factor):
    b, h, n, d = shape
    return 4.0 * b * h * n * n * d * (0.5 if causal else 1.0) * factor


def jmh_rows(path):
    rows = []
    with open(path) as f:
        data = json.load(f)
    for r in data:
        cls, method = r["benchmark"].split(".")[-2:]
        if cls not in DTYPE_OF_CLASS or method not in PASS_FACTOR:
            continue
        p = r.get("params", {})
        shape = [int(x) for x in p["shape"].split("x")]
        causal = p.get("causal") == "true"
        ms = r["primaryMetric"]["score"]
        unit = r["primaryMetric"].get("scoreUnit", "ms/op")
        if unit.startswith("us"):
            ms /= 1000.0
        elif unit.startswith("s/"):
            ms *= 1000.0
        rows.append(("metakernels", DTYPE_OF_CLASS[cls], shape, causal, method, ms))
    return rows


def peer_rows(path):
    rows = []
    with open(path) as f:
        data = json.load(f)
    for r in data.get("results", []):
        if r.get("peer") != "sdpa" or "error" in r:
            continue
        for method, key in (("forward", "forward_ms"), ("forwardBackward", "forward_backward_ms")):
            if key in r:
                rows.append(("torch sdpa", r.get("dtype", "bfloat16"), r["shape"], r["causal"], method, r[key]))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jmh")
    ap.add_argument("--peers")
    args = ap.parse_args()
    rows = []
    if args.jmh and os.path.exists(args.jmh):
        rows += jmh_rows(args.jmh)
    if args.peers and os.path.exists(args.peers):
        rows += peer_rows(args.peers)
    if not rows:
        print("tflops: no softmax-attention results found")
        return
    rows.sort(key=lambda r: (r[1], r[2][2], r[2], r[3], r[4], r[0]))
    print("| impl | dtype | shape | causal | pass | ms | TFLOP/s | % of 989 |")
    print("|---|---|---|---|---|---|---|---|")
    for impl, dtype, shape, causal, method, ms in rows:
        tf = flops(shape, causal, PASS_FACTOR[method]) / (ms * 1e-3) / 1e12 if ms > 0 else float("nan")
        pct = f"{100 * tf / PEAK_BF16:.1f}" if dtype in ("bfloat16", "float16") else "—"
        print(f"| {impl} | {dtype} | {shape} | {causal} | {method} | {ms:.3f} | {tf:.1f} | {pct} |")


if __name__ == "__main__":
    main()
