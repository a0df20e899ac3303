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

With --graph-peers (graph_peers.py's JSON, the GPU_GRAPH=1 step of check.sh), a second table pairs
each GpuGraphShapesBench row with its PyTorch / PyG peers on the same graph (nodes, edges), width,
reduction or heads x width, and pass: SpMM with the index_add and CSR forms, SDDMM with index_select
and sampled_addmm (the ratio against the faster of the two; both recorded), the GAT attention part
with the composed form, the GATConv layer with PyG's GATConv, the GCN second-order step with the
index_add and CSR forms.
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
            if p.get("form", "default") != "default":  # -p form=recurrent (GPU_LA_FORM)
                family += " (" + p["form"] + ")"
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


GRAPH_CLASS = "GpuGraphShapesBench"
# JMH method -> (what, the peers' key of that pass, the peers of the row)
GRAPH_PAIRS = {
    "spmmForward": ("SpMM", "forward_ms", ("graph.spmm.index_add", "graph.spmm.csr")),
    "spmmForwardBackward": ("SpMM", "forward_backward_ms", ("graph.spmm.index_add", "graph.spmm.csr")),
    "sddmmForward": ("SDDMM", "forward_ms", ("graph.sddmm.index_select", "graph.sddmm.sampled_addmm")),
    "sddmmForwardBackward": ("SDDMM", "forward_backward_ms", ("graph.sddmm.index_select", "graph.sddmm.sampled_addmm")),
    "gatForwardBackward": ("GAT attention", "forward_backward_ms", ("graph.gat.composed",)),
    "gatConvForwardBackward": ("GATConv layer", "forward_backward_ms", ("graph.gat.pyg_gatconv",)),
    "gcnSecondOrder": ("GCN 2nd order", "second_order_ms", ("graph.gcn2.index_add", "graph.gcn2.csr")),
}
PASS_NAME = {"forward_ms": "forward", "forward_backward_ms": "forward+backward", "second_order_ms": "second order"}


def to_ms(r):
    ms = r["primaryMetric"]["score"]
    unit = r["primaryMetric"].get("scoreUnit", "ms/op")
    return ms / 1000.0 if unit.startswith("us") else ms * 1000.0 if unit.startswith("s/") else ms


def graph_jmh_rows(path):
    """GpuGraphShapesBench rows: (method, params as strings, ms)."""
    out = []
    for r in json.load(open(path)) if os.path.exists(path) else []:
        cls, method = r["benchmark"].split(".")[-2:]
        if cls == GRAPH_CLASS:
            out.append((method, dict(r.get("params", {})), to_ms(r)))
    return out


def graph_peer_rows(path):
    try:
        return json.load(open(path)).get("results", [])
    except Exception:
        return []


def graph_peers_of(peers, method, params):
    """[(peer name, ms or None, why none)] for a GpuGraphShapesBench row, in GRAPH_PAIRS order."""
    _, key, names = GRAPH_PAIRS[method]
    found = []
    for name in names:
        hit = None
        for r in peers:
            if r.get("peer") != name:
                continue
            if any(str(r.get(k)) != params[k] for k in ("nodes", "edges", "features", "reduce", "shape") if k in params):
                continue
            hit = r
        if hit is None:
            found.append((name, None, "not run"))
        elif key in hit:
            found.append((name, hit[key], ""))
        else:
            found.append((name, None, hit.get("error") or hit.get("skipped") or "no " + key))
    return found


def graph_table(jmh_path, peers_path):
    rows = [r for r in graph_jmh_rows(jmh_path) if r[0] in GRAPH_PAIRS]
    if not rows:
        print("ratios: no GpuGraphShapesBench rows found")
        return
    peers = graph_peer_rows(peers_path)
    print()
    print("Graph message passing (GpuGraphShapesBench, F32) beside PyTorch / PyG on the same edges; ratio = "
          "the faster peer's ms / ours (above 1 we are faster):")
    print()
    print("| op | nodes | edges | width | pass | metakernels ms | faster peer | peer ms | ratio | other peers |")
    print("|---|---:|---:|---|---|---:|---|---:|---:|---|")

    def order(r):
        method, p, _ = r
        return (list(GRAPH_PAIRS).index(method), int(p.get("edges", 0)), p.get("shape", ""),
                int(p.get("features", 0)), p.get("reduce", ""))

    for method, p, ms in sorted(rows, key=order):
        what, key, _ = GRAPH_PAIRS[method]
        width = p.get("shape") or (p.get("features", "") + (" " + p["reduce"] if "reduce" in p else ""))
        found = graph_peers_of(peers, method, p)
        timed = [(n, v) for n, v, _ in found if v]
        best = min(timed, key=lambda nv: nv[1]) if timed else None
        others = "; ".join(f"{n.split('.')[-1]} {v:.3f}" if v else f"{n.split('.')[-1]}: {why}"
                           for n, v, why in found if not best or n != best[0])
        ratio = f"{best[1] / ms:.2f}" if best and ms > 0 else "-"
        print(f"| {what} | {p.get('nodes', '')} | {p.get('edges', '')} | {width} | {PASS_NAME[key]} | {ms:.3f} | "
              f"{best[0].split('.')[-1] if best else '-'} | {f'{best[1]:.3f}' if best else '-'} | {ratio} | {others or '-'} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jmh", required=True)
    ap.add_argument("--peers", required=True)
    ap.add_argument("--graph-peers", help="graph_peers.py's JSON: adds the graph table")
    a = ap.parse_args()
    if a.graph_peers:
        graph_table(a.jmh, a.graph_peers)
    rows = jmh_rows(a.jmh) if os.path.exists(a.jmh) else []
    peers = json.load(open(a.peers)).get("results", []) if os.path.exists(a.peers) else []
    if not rows:
        if not a.graph_peers:
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
