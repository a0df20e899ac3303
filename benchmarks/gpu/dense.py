#!/usr/bin/env python3
"""The memory-bound CUDA ops side by side: GpuDenseBench (JMH JSON) and PyTorch (peers.json,
rows "dense.OP"), F32 [4, 16, 4096, 128], with each op's bytes moved (the minimum: every input
read once, every output written once) as GB/s and as a fraction of the copy rate measured in the
same peers run (y.copy_(x)); then the launch cost (GpuLaunchBench beside PyTorch's "launch.*" rows).
Markdown on stdout.

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
        "copy": 2 * f4, "copyTransposed": 2 * f4, "addTransposed": 3 * f4, "fill": f4, "castBf16": f4 + bf2, "randn": f4,
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
    launch(jmh, peers)


def launch(jmh, peers):
    """GpuLaunchBench (µs: an empty kernel through the C ABI, a one-element add from Java; each
    with a sync, or 16 then one sync) beside PyTorch's one-element add timed the same ways."""
    mk = {r["benchmark"].rsplit(".", 1)[1]: r["primaryMetric"]["score"] for r in jmh
          if ".GpuLaunchBench." in r.get("benchmark", "")}
    torch = {r["peer"][7:]: r.get("wall_us") for r in peers if r.get("peer", "").startswith("launch.")}
    if not mk and not torch:
        return
    cell = lambda v: f"{v:.1f}" if v is not None else "-"
    print()
    print("Launch cost, µs (wall clock, host call to device done):")
    print()
    print("| | bare launch (mk_runtime_noop) | metakernels tiny add | PyTorch tiny add | tiny add − bare launch |")
    print("|---|---:|---:|---:|---:|")
    for label, suffix in (("one call + sync", ""), ("per call, 16 then one sync", "16")):
        bare, tiny, pt = mk.get("bareLaunch" + suffix), mk.get("tinyOp" + suffix), torch.get("tinyOp" + suffix)
        extra = tiny - bare if tiny is not None and bare is not None else None
        print(f"| {label} | {cell(bare)} | {cell(tiny)} | {cell(pt)} | {cell(extra)} |")


if __name__ == "__main__":
    main()
