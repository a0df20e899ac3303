#!/usr/bin/env python3
"""Every GPU JMH row beside its PyTorch peer on the same shape, pass and dtype, with the ratio
(PyTorch time / ours: above 1 we are faster), as the GPU issues tabulate them. Markdown on stdout.

    python3 benchmarks/gpu/ratios.py --jmh OUT/jmh-gpu.json --peers OUT/peers.json

Pairs: GpuAttentionBf16Bench / GpuAttentionBench forward and forwardBackward with SDPA in the same
dtype ("sdpa"), GpuAttentionBench.doubleBackward with the math path under create_graph
("sdpa_math_double_backward"), GpuLinearAttentionBench with PyTorch's best composed form: the
chunked cumulative-sum form when causal, q (kᵀ v) when not ("linear_attention.chunked_cumsum",
"linear_attention.state"), F32, BF16, and TF32 (F32 data with TF32 allowed on both sides). A JMH row without a peer (or the reverse) is printed
with a dash.
"""
import argparse
import json
import os

CLASS_DTYPE = {"GpuAttentionBench": "float32", "GpuAttentionBf16Bench": "bfloat16"}
PEER_KEY = {"forward": "forward_ms", "forwardBackward": "forward_backward_ms", "doubleBackward": "double_backward_ms"}
JMH_DTYPE = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "TF32": "tf32"}  # TF32: F32 data, TF32 allowed


def jmh_rows(path):
    out = []
    for r in json.load(open(path)):
        cls, method = r["benchmark"].split(".")[-2:]
        p = r.get("params", {})
        if cls in CLASS_DTYPE:
            family, dtype = "softmax attention", CLASS_DTYPE[cls]
            if "dtype" in p:  # GpuAttentionBench -p dtype=TF32: F32 data, TF32 allowed (peer dtype "tf32")
                dtype = JMH_DTYPE.get(p["dtype"], p["dtype"])
        elif cls == "GpuLinearAttentionBench":
            family, dtype = "linear attention", JMH_DTYPE.get(p.get("dtype", "F32"), p.get("dtype"))
        else:
            continue
        if method not in PEER_KEY or "shape" not in p:
            continue
        ms = r["primaryMetric"]["score"]
        unit = r["primaryMetric"].get("scoreUnit", "ms/op")
        ms = ms / 1000.0 if unit.startswith("us") else ms * 1000.0 if unit.startswith("s/") else ms
        shape = tuple(int(x) for x in p["shape"].split("x"))
        out.append((family, dtype, shape, p.get("causal") == "true", method, ms))
    return out


def peer_for(peers, family, dtype, shape, causal, method):
    if family == "softmax attention":
        name = "sdpa_math_double_backward" if method == "doubleBackward" else "sdpa"
    else:
        name = "linear_attention.chunked_cumsum" if causal else "linear_attention.state"
    for r in peers:
        if (r.get("peer") == name and r.get("dtype", "float32") == dtype and tuple(r.get("shape", ())) == shape
                and bool(r.get("causal")) == causal and PEER_KEY[method] in r):
            return name, r[PEER_KEY[method]]
    return name, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jmh", required=True)
    ap.add_argument("--peers", required=True)
    a = ap.parse_args()
    rows = jmh_rows(a.jmh) if os.path.exists(a.jmh) else []
    peers = json.load(open(a.peers)).get("results", []) if os.path.exists(a.peers) else []
    if not rows:
        print("ratios: no GPU JMH attention rows found")
        return
    print("| family | dtype | shape | causal | pass | metakernels ms | PyTorch peer | PyTorch ms | ratio (PyTorch / ours) |")
    print("|---|---|---|---|---|---:|---|---:|---:|")
    for family, dtype, shape, causal, method, ms in sorted(rows):
        name, pt = peer_for(peers, family, dtype, shape, causal, method)
        ratio = f"{pt / ms:.2f}" if pt and ms > 0 else "-"
        ptc = f"{pt:.3f}" if pt else "-"
        print(f"| {family} | {dtype} | {list(shape)} | {causal} | {method} | {ms:.3f} | {name} | {ptc} | {ratio} |")


if __name__ == "__main__":
    main()
