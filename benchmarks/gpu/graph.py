#!/usr/bin/env python3
"""The graph step's bandwidth table (issue 15): SpMM and SDDMM of GpuGraphShapesBench (JMH JSON)
and of their PyTorch peers (graph_peers.py JSON) as GB/s, from the bytes each op must move at
least (the count that GpuGraphShapesBench's set-up notes, GraphBytes in the benchmarks module,
read back from the notes file) over the time, and as a share of the copy rate measured in the same
run: PyTorch's y.copy_(x) ("graph.copy_reference"; metakernels' own copy, GpuGraphShapesBench.copy,
is printed beside it). The same bytes are used for both sides, so the GB/s compare the times. Then
the two targets of the issue: SpMM at >= 70 % of the copy rate, and the GATConv layer at least as
fast as PyG's GATConv (forward+backward). Markdown on stdout.

    graph.py --jmh out/jmh-gpu.json --notes out/graph-notes.txt --graph-peers out/graph_peers.json
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ratios import GRAPH_PAIRS, graph_jmh_rows, graph_peer_rows, graph_peers_of  # noqa: E402

NOTE = re.compile(r"^(GpuGraphShapesBench\.\w+) (.*?): moves at least [0-9.]+ MB \(([0-9]+) bytes")
TARGET_PCT = 70.0


def read_notes(path):
    """[(method, {param: value}, bytes)] from the notes file's "moves at least" lines."""
    out = []
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return out
    for line in lines:
        m = NOTE.match(line.strip())
        if m:
            params = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
            out.append((m.group(1).split(".", 1)[1], params, float(m.group(3))))
    return out


def bytes_of(notes, method, params):
    """The noted bytes of a JMH row: the last note of that method whose parameters it has."""
    hit = None
    for m, p, b in notes:
        if m == method and all(params.get(k, v) == v for k, v in p.items()):
            hit = b
    return hit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jmh", required=True)
    ap.add_argument("--notes", required=True)
    ap.add_argument("--graph-peers", required=True)
    a = ap.parse_args()
    rows = graph_jmh_rows(a.jmh)
    notes = read_notes(a.notes)
    peers = graph_peer_rows(a.graph_peers)
    cell = lambda v, f: f.format(v) if v is not None else "-"

    ref = next((r for r in peers if r.get("peer") == "graph.copy_reference" and "copy_gbps" in r), None)
    copy = ref["copy_gbps"] if ref else None
    mk_copy = None
    for method, p, ms in rows:
        if method == "copy":
            b = bytes_of(notes, method, p)
            mk_copy = b / ms / 1e6 if b and ms > 0 else None
    print(f"copy rate of this run: PyTorch y.copy_(x) {cell(copy, '{:.0f}')} GB/s (the reference), "
          f"metakernels copy {cell(mk_copy, '{:.0f}')} GB/s (F32 [4, 16, 4096, 128], read + write)")
    if not rows:
        print("graph.py: no GpuGraphShapesBench rows")
    print()
    print("| op | edges | width | pass | MB moved | metakernels ms | GB/s | % of copy | faster peer | peer ms | "
          "peer GB/s | peer % of copy |")
    print("|---|---:|---|---|---:|---:|---:|---:|---|---:|---:|---:|")
    spmm_pct, gat = [], []
    for method, p, ms in sorted(rows, key=lambda r: (r[0], int(r[1].get("edges", 0)), int(r[1].get("features", 0)),
                                                     r[1].get("reduce", ""))):
        if method not in GRAPH_PAIRS:
            continue
        what, key, _ = GRAPH_PAIRS[method]
        found = graph_peers_of(peers, method, p)
        timed = [(n, v) for n, v, _ in found if v]
        best = min(timed, key=lambda nv: nv[1]) if timed else None
        if method == "gatConvForwardBackward":
            gat.append((p, ms, best))
        if what not in ("SpMM", "SDDMM"):
            continue
        b = bytes_of(notes, method, p)
        gbps = b / ms / 1e6 if b and ms > 0 else None
        pct = 100 * gbps / copy if gbps and copy else None
        pg = b / best[1] / 1e6 if b and best else None
        ppct = 100 * pg / copy if pg and copy else None
        if what == "SpMM" and pct is not None:
            spmm_pct.append((pct, p, method))
        width = p.get("features", "") + (" " + p["reduce"] if "reduce" in p else "")
        print(f"| {what} | {p.get('edges', '')} | {width} | {'forward' if key == 'forward_ms' else 'forward+backward'} | "
              f"{cell(b / 1e6 if b else None, '{:.0f}')} | {ms:.3f} | {cell(gbps, '{:.0f}')} | {cell(pct, '{:.0f} %')} | "
              f"{best[0].split('.')[-1] if best else '-'} | {cell(best[1] if best else None, '{:.3f}')} | "
              f"{cell(pg, '{:.0f}')} | {cell(ppct, '{:.0f} %')} |")
    print()
    if spmm_pct:
        low = min(spmm_pct, key=lambda t: t[0])
        n_ok = sum(1 for pct, _, _ in spmm_pct if pct >= TARGET_PCT)
        print(f"SpMM at >= {TARGET_PCT:.0f} % of the copy rate: {n_ok} of {len(spmm_pct)} rows; the lowest "
              f"{low[0]:.0f} % ({low[2]} {' '.join(f'{k}={v}' for k, v in sorted(low[1].items()))})")
    else:
        print("SpMM against the copy rate: no rows with bytes, time and a copy reference")
    if gat:
        ok = [(p, ms, best) for p, ms, best in gat if best]
        wins = sum(1 for p, ms, best in ok if best[1] >= ms)
        print(f"GATConv layer (forward+backward) at least as fast as PyG's GATConv: {wins} of {len(ok)} rows with a "
              f"PyG time ({len(gat) - len(ok)} without)")
        for p, ms, best in gat:
            print(f"  edges={p.get('edges')} shape={p.get('shape')}: metakernels {ms:.3f} ms, PyG "
                  f"{cell(best[1] if best else None, '{:.3f}')} ms")


if __name__ == "__main__":
    main()
