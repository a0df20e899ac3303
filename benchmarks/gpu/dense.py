#!/usr/bin/env python3
"""The memory-bound CUDA ops side by side: GpuDenseBench (JMH JSON) and PyTorch (peers.json,
rows "dense.OP"), F32 [4, 16, 4096, 128], with each op's bytes moved (the minimum: every input
read once, every output written once) as GB/s and as a fraction of the copy rate measured in the
same peers run (y.copy_(x)). Markdown on stdout.

usage: dense.py --jmh out/jmh-gpu.json --peers out/peers.json
"""
import argparse
import json


def bytes_moved(op, n, d):
    f4, idx8, bf2 = 4 * n, 8 * n, 2 * n
    rows = n // d
    return {
        "sum": f4, "sumRows": f4 + 4 * rows, "sumCols": f4 + 4 * d, "maxRows": f4 + 12 * rows, "maxAll": f4,
        "softmaxShort": 2 * f4, "softmaxLong": 2 * f4, "logSoftmaxShort": 2 * f4,
        "add": 3 * f4, "addBias": 2 * f4, "mulScalar": 2 * f4, "tanh": 2 * f4, "where": 4 * f4,
        "copy": 2 * f4, "copyTransposed": 2 * f4, "fill": f4, "castBf16": f4 + bf2, "randn": f4,
    }.get(op, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jmh", required=True)
    ap.add_argument("--peers", required=True)
    a = ap.parse_args()
    try:
        jmh = json.load(open(a.jmh))
    except Exception as e:
        print(f"no JMH results ({e})")
        jmh = []
    try:
        peers = json.load(open(a.peers))["results"]
    except Exception as e:
        print(f"no peers ({e})")
        peers = []
    mk = {}
    for r in jmh:
        if r.get("benchmark", "").endswith("GpuDenseBench.op"):
            p = r.get("params", {})
            mk[p.get("op")] = (r["primaryMetric"]["score"], p.get("shape", "4x16x4096x128"))
    torch = {r["peer"][6:]: r for r in peers if r.get("peer", "").startswith("dense.")}
    copy_gbps = torch.get("copy_reference", {}).get("copy_gbps")
    print(f"copy reference (PyTorch y.copy_(x), F32): {copy_gbps:.0f} GB/s" if copy_gbps else "copy reference: missing")
    print()
    print("| op | metakernels ms | PyTorch ms | mk / PyTorch | mk GB/s | mk % of copy rate | PyTorch % of copy rate |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for op in sorted(set(mk) | (set(torch) - {"copy_reference"})):
        ms, shape = mk.get(op, (None, "4x16x4096x128"))
        dims = [int(v) for v in shape.split("x")]
        n = 1
        for v in dims:
            n *= v
        b = bytes_moved(op, n, dims[-1])
        t = torch.get(op, {}).get("forward_ms")
        gbps = b / ms / 1e6 if ms and b else None
        tg = b / t / 1e6 if t and b else None
        cell = lambda v, f: f.format(v) if v is not None else "-"
        print(f"| {op} | {cell(ms, '{:.3f}')} | {cell(t, '{:.3f}')} | {cell(ms / t if ms and t else None, '{:.2f}')} | "
              f"{cell(gbps, '{:.0f}')} | {cell(100 * gbps / copy_gbps if gbps and copy_gbps else None, '{:.0f} %')} | "
              f"{cell(100 * tg / copy_gbps if tg and copy_gbps else None, '{:.0f} %')} |")


if __name__ == "__main__":
    main()
