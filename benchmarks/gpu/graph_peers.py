#!/usr/bin/env python3
"""PyTorch and PyG peers of GpuGraphShapesBench (issue 15), F32, on exactly the same edges: the
R-MAT graphs that org.metakernels.bench.GraphEdgeDump writes (DIR/rmat-nN-eE.npy, [2, E] int64,
and DIR/gcn-nN-eE-weight.npy, the GCN propagation graph's weights), checked against the checksums
of DIR/manifest.json before anything is timed. Each side lays the edges out in the same graph order
(stably sorted by destination, then source: metakernels' CSR order); building that order, the CSR
and CSC index tensors and the inputs is not timed.

Rows ("peer" names; milliseconds, the median of timed repetitions, timed as peers.py's `timed`):
  graph.spmm.index_add      out = zeros.index_add_(0, dst, x[src] * w) (÷ in-degree for mean), the
                            scatter form of PyG; forward and forward+backward (dx, dw by autograd)
  graph.spmm.csr            torch.sparse_csr_tensor(crow, col, w) @ x (÷ in-degree for mean); dx by
                            autograd through the product, dw by torch.sparse.sampled_addmm
  graph.sddmm.index_select  (a[dst] * b[src]).sum(-1); forward and forward+backward (autograd)
  graph.sddmm.sampled_addmm torch.sparse.sampled_addmm(CSR pattern, a, bᵀ); its backward written out,
                            da = CSR(dE) @ b, db = CSR of the transpose (dE permuted, timed) @ a
  graph.gat.composed        the attention part of a GAT layer as GraphBench's libtorch peer (scores,
                            leaky_relu 0.2, scatter_reduce amax, exp, index_add sums, index_add of
                            xh[src]·α), forward+backward (dxh, daSrc, daDst)
  graph.gat.pyg_gatconv     PyG's GATConv(H·F, F, heads=H, concat, negative_slope=0.2,
                            add_self_loops=False, bias) on x [N, H·F], forward and forward+backward
                            (dx and every parameter); a missing PyG is recorded as a skip
  graph.gcn2.index_add / graph.gcn2.csr
                            GraphBench's second-order step through a two-layer GCN over Â (the dumped
                            weights) with create_graph, propagation by index_add or CSR mm
  graph.copy_reference      y.copy_(x) of [4, 16, 4096, 128] F32: the copy rate of this run (GB/s)
Where the two forms of a row family both ran, each row records the largest relative difference of
its results from the other's ("check_max_rel_diff", not timed).

    python3 benchmarks/gpu/graph_peers.py --graphs DIR --out graph_peers.json
    python3 benchmarks/gpu/graph_peers.py --graphs DIR --out x.json --device cpu --small   # local check

--small (with --device cpu: a check of this script only, never a result) reads a small dump
(GraphEdgeDump DIR 2000 20000) and uses small widths and few repetitions.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEVICE = "cuda"
REPS = {"reps": 10, "warmup": 3}


def timer(device):
    if device == "cuda":
        from peers import timed  # the timing of every GPU peer: CUDA events, median
        return timed

    def timed_cpu(fn, reps=10, warmup=3):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        return times[len(times) // 2]

    return timed_cpu


TIMED = None


def t(fn, reps=None, warmup=None):
    return TIMED(fn, reps=reps or REPS["reps"], warmup=warmup if warmup is not None else REPS["warmup"])


# ---- the graphs -----------------------------------------------------------------------------------


def checksum(flat):
    """Σ (i + 1) · v_i mod 2^64 (GraphEdgeDump.checksum): int64 values, or F32 bit patterns."""
    v = flat.view(np.uint32).astype(np.uint64) if flat.dtype == np.float32 else flat.view(np.uint64)
    idx = np.arange(1, v.size + 1, dtype=np.uint64)
    return int((v * idx).sum(dtype=np.uint64))


def load_npy(folder, entry, key):
    a = np.load(os.path.join(folder, entry[key]))
    if list(a.shape) != entry[key + "_shape"]:
        raise SystemExit(f"graph_peers: {entry[key]}: shape {list(a.shape)}, manifest {entry[key + '_shape']}")
    got = checksum(np.ascontiguousarray(a).reshape(-1))
    if str(got) != entry[key + "_checksum"]:
        raise SystemExit(f"graph_peers: {entry[key]}: checksum {got}, manifest {entry[key + '_checksum']}")
    return a


def csr_of(src, dst, n):
    """Graph order (stable by destination, then source), the CSR row pointer and the CSC (by source)."""
    # a stable sort by the key dst·n + src (below 2^62 for n < 2^31): np.lexsort's order, in half the time
    order = np.argsort(dst * n + src, kind="stable")
    s, d = src[order], dst[order]
    crow = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(d, minlength=n), out=crow[1:])
    to_csc = np.argsort(s * n + d, kind="stable")  # CSC position p -> graph position
    ccol = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(s, minlength=n), out=ccol[1:])
    return order, s, d, crow, to_csc, ccol


class G:
    """One graph on the device: graph-order src/dst, CSR (crow, col = src), CSC (ccol, cdst, to_csc)."""

    def __init__(self, folder, entry, gcn):
        n = entry["nodes"]
        ei = load_npy(folder, entry, "edge_index")
        self.n, self.e = n, entry["edges"]
        order, s, d, crow, to_csc, ccol = csr_of(ei[0], ei[1], n)
        dev = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(DEVICE)
        self.src, self.dst, self.crow, self.to_csc, self.ccol = dev(s), dev(d), dev(crow), dev(to_csc), dev(ccol)
        self.cdst = dev(d[to_csc])
        deg = np.bincount(d, minlength=n).astype(np.float32)
        self.inv_deg = dev((1.0 / np.maximum(deg, 1.0)).reshape(n, 1).astype(np.float32))
        self.hat = None
        if gcn and "gcn_weight" in entry:
            w = load_npy(folder, entry, "gcn_weight")
            loops = np.arange(n, dtype=np.int64)
            hs, hd = np.concatenate([ei[0], loops]), np.concatenate([ei[1], loops])
            o2, s2, d2, crow2, _, _ = csr_of(hs, hd, n)
            w2 = w[o2]
            # the dumped weights against D^-1/2 (A + I) D^-1/2 in float64 (Graph.gcnNormalized's formula):
            # a wrong alignment of weights and edges would show here
            dg = np.bincount(hd, minlength=n).astype(np.float64)
            inv = np.where(dg == 0, 0.0, 1.0 / np.sqrt(dg))
            ref = (inv[d2] * 1.0 * inv[s2]).astype(np.float32)
            self.hat_check = float(np.max(np.abs(ref - w2) / np.maximum(np.abs(ref), 1e-30)))
            if self.hat_check > 1e-6:
                raise SystemExit(f"graph_peers: {entry['gcn_weight']}: differs from the GCN formula by {self.hat_check}")
            self.hat = {"src": dev(s2), "dst": dev(d2), "crow": dev(crow2), "w": dev(w2), "e": len(s2)}


def csr_tensor(crow, col, values, n):
    """A sparse CSR tensor without the invariant check: R-MAT repeats edges, so a row may list a
    column twice (both forms sum such edges twice, as metakernels does; the pair check shows it)."""
    try:
        return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)
    except TypeError:  # PyTorch before 2.0 validates always: its unchecked constructor
        return torch._sparse_csr_tensor_unsafe(crow, col, values, (n, n))


def base(peer, g, **kw):
    row = {"peer": peer, "nodes": g.n, "edges": g.e, "dtype": "float32"}
    row.update(kw)
    return row


def emit(results, row, save):
    results.append(row)
    print(json.dumps(row))
    save()


def guarded(row, fn):
    try:
        fn(row)
    except Exception as e:  # out of memory, an op this PyTorch lacks on the device, ...
        row["error"] = (type(e).__name__ + ": " + (str(e).splitlines() or [""])[0])[:300]
    if DEVICE == "cuda":
        torch.cuda.empty_cache()


def rel_diff(a, b):
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def note_check(rows, outs):
    """Each row of a pair gets the largest relative difference of its results from the other's."""
    if len(outs) == 2 and all(o is not None for o in outs):
        d = max(rel_diff(a, b) for a, b in zip(outs[0], outs[1]))
        for r in rows:
            r["check_max_rel_diff"] = d


def two_forms(results, save, forms, make_row, args, forward_out):
    """Each (name, forward, forward_and_backward) form of one op as a row made by make_row(name):
    the forward of args timed without grad, then forward + backward; the results (the forward's
    first when forward_out) checked between the two forms (note_check)."""
    rows, outs = [], []
    for name, fwd, fb in forms:
        row = make_row(name)
        res = []

        def run(row):
            if forward_out:
                res.append(_nograd(fwd, *args))
            row["forward_ms"] = t(lambda: _nograd(fwd, *args))
            res.extend(fb())
            row["forward_backward_ms"] = t(fb)

        guarded(row, run)
        rows.append(row)
        outs.append(res if len(res) == 3 else None)
    note_check(rows, outs)
    for r in rows:
        emit(results, r, save)


# ---- the rows -------------------------------------------------------------------------------------


def spmm(g, f, reduce, results, save):
    gen = torch.Generator(device=DEVICE).manual_seed(1)
    x = torch.randn(g.n, f, device=DEVICE, generator=gen)
    w = torch.rand(g.e, device=DEVICE, generator=gen) + 0.5  # graph order
    d_out = torch.randn(g.n, f, device=DEVICE, generator=gen)
    mean = reduce == "mean"

    def scatter(xv, wv):
        out = torch.zeros(g.n, f, device=DEVICE).index_add_(0, g.dst, xv.index_select(0, g.src) * wv.unsqueeze(1))
        return out * g.inv_deg if mean else out

    def csr(xv, wv):
        a = csr_tensor(g.crow, g.src, wv, g.n)
        out = torch.mm(a, xv)
        return out * g.inv_deg if mean else out

    def scatter_fb():
        xl, wl = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
        return torch.autograd.grad(scatter(xl, wl), (xl, wl), d_out)

    def csr_fb():
        xl = x.detach().requires_grad_(True)
        (dx,) = torch.autograd.grad(csr(xl, w), (xl,), d_out)
        pattern = csr_tensor(g.crow, g.src, w, g.n)
        g_out = d_out * g.inv_deg if mean else d_out
        dw = torch.sparse.sampled_addmm(pattern, g_out, x.t(), beta=0.0, alpha=1.0).values()
        return dx, dw

    two_forms(results, save, (("index_add", scatter, scatter_fb), ("csr", csr, csr_fb)),
              lambda name: base("graph.spmm." + name, g, features=f, reduce=reduce), (x, w), True)


def _nograd(fn, *a):
    with torch.no_grad():
        return fn(*a)


def sddmm(g, f, results, save):
    gen = torch.Generator(device=DEVICE).manual_seed(2)
    a = torch.randn(g.n, f, device=DEVICE, generator=gen)
    b = torch.randn(g.n, f, device=DEVICE, generator=gen)
    d_e = torch.randn(g.e, device=DEVICE, generator=gen)
    ones = torch.ones(g.e, device=DEVICE)

    def gathered(av, bv):
        return (av.index_select(0, g.dst) * bv.index_select(0, g.src)).sum(-1)

    def gathered_fb():
        al, bl = a.detach().requires_grad_(True), b.detach().requires_grad_(True)
        e = gathered(al, bl)
        return (e,) + torch.autograd.grad(e, (al, bl), d_e)

    def sampled(av, bv):
        pattern = csr_tensor(g.crow, g.src, ones, g.n)
        return torch.sparse.sampled_addmm(pattern, av, bv.t(), beta=0.0, alpha=1.0).values()

    def sampled_fb():
        e = sampled(a, b)
        gd = csr_tensor(g.crow, g.src, d_e, g.n)
        gt = csr_tensor(g.ccol, g.cdst, d_e.index_select(0, g.to_csc), g.n)
        return e, torch.mm(gd, b), torch.mm(gt, a)

    two_forms(results, save, (("index_select", gathered, gathered_fb), ("sampled_addmm", sampled, sampled_fb)),
              lambda name: base("graph.sddmm." + name, g, features=f), (a, b), False)


def gat_composed(g, heads, width, results, save):
    gen = torch.Generator(device=DEVICE).manual_seed(3)
    xh = torch.randn(g.n, heads, width, device=DEVICE, generator=gen)
    a_src = 0.3 * torch.randn(heads, width, device=DEVICE, generator=gen)
    a_dst = 0.3 * torch.randn(heads, width, device=DEVICE, generator=gen)
    d_out = torch.randn(g.n, heads, width, device=DEVICE, generator=gen)
    dst_h = g.dst.unsqueeze(1).expand(g.e, heads).contiguous()

    def step():
        x, s, d = (v.detach().requires_grad_(True) for v in (xh, a_src, a_dst))
        s_src = (x * s.unsqueeze(0)).sum(2)
        s_dst = (x * d.unsqueeze(0)).sum(2)
        e = torch.nn.functional.leaky_relu(s_src.index_select(0, g.src) + s_dst.index_select(0, g.dst), 0.2)
        mx = torch.zeros(g.n, heads, device=DEVICE).scatter_reduce(0, dst_h, e.detach(), "amax", include_self=False)
        p = (e - mx.index_select(0, g.dst)).exp()
        sm = torch.zeros(g.n, heads, device=DEVICE).index_add(0, g.dst, p)
        alpha = p / sm.index_select(0, g.dst)
        msg = x.index_select(0, g.src) * alpha.unsqueeze(2)
        out = torch.zeros(g.n, heads, width, device=DEVICE).index_add(0, g.dst, msg)
        return torch.autograd.grad(out, (x, s, d), d_out)

    row = base("graph.gat.composed", g, shape=f"{heads}x{width}")
    guarded(row, lambda r: r.update(forward_backward_ms=t(step)))
    emit(results, row, save)


def gat_pyg(g, heads, width, results, save):
    row = base("graph.gat.pyg_gatconv", g, shape=f"{heads}x{width}")
    try:
        import torch_geometric
        from torch_geometric.nn import GATConv
        row["pyg"] = torch_geometric.__version__
    except Exception as e:  # PyG missing: a skip, not a crash
        row["skipped"] = f"torch_geometric not importable: {type(e).__name__}: {e}"[:300]
        emit(results, row, save)
        return
    torch.manual_seed(4)
    gen = torch.Generator(device=DEVICE).manual_seed(4)
    conv = GATConv(heads * width, width, heads=heads, concat=True, negative_slope=0.2, add_self_loops=False,
                   dropout=0.0, bias=True).to(DEVICE)
    x = torch.randn(g.n, heads * width, device=DEVICE, generator=gen)
    d_y = torch.randn(g.n, heads * width, device=DEVICE, generator=gen)
    edge_index = torch.stack([g.src, g.dst])  # graph order: sorted by destination
    params = list(conv.parameters())

    def fwd():
        with torch.no_grad():
            conv(x, edge_index)

    def fb():
        xl = x.detach().requires_grad_(True)
        return torch.autograd.grad(conv(xl, edge_index), [xl] + params, d_y)

    def run(row):
        row["forward_ms"] = t(fwd)
        row["forward_backward_ms"] = t(fb)

    guarded(row, run)
    emit(results, row, save)


def gcn2(g, f, results, save):
    h = g.hat
    gen = torch.Generator(device=DEVICE).manual_seed(5)
    x = torch.randn(g.n, f, device=DEVICE, generator=gen)
    y = torch.randn(g.n, f, device=DEVICE, generator=gen)
    bound = (6.0 / (2 * f)) ** 0.5
    w1 = (torch.rand(f, f, device=DEVICE, generator=gen) * 2 - 1) * bound
    w2 = (torch.rand(f, f, device=DEVICE, generator=gen) * 2 - 1) * bound
    b1 = (torch.rand(f, device=DEVICE, generator=gen) * 2 - 1) * 0.1
    b2 = (torch.rand(f, device=DEVICE, generator=gen) * 2 - 1) * 0.1

    def scatter(v):
        msg = v.index_select(0, h["src"]) * h["w"].unsqueeze(1)
        return torch.zeros(g.n, f, device=DEVICE).index_add(0, h["dst"], msg)

    def csr(v):
        return torch.mm(csr_tensor(h["crow"], h["src"], h["w"], g.n), v)

    def step(prop):
        params = [p.detach().requires_grad_(True) for p in (w1, b1, w2, b2)]
        pw1, pb1, pw2, pb2 = params
        hid = (prop(x @ pw1.t()) + pb1).tanh()
        out = prop(hid @ pw2.t()) + pb2
        loss = (out - y).square().mean()
        gr = torch.autograd.grad(loss, params, create_graph=True)
        norm2 = sum(gi.square().sum() for gi in gr)
        return torch.autograd.grad(norm2, params)

    rows, outs = [], []
    for name, prop in (("index_add", scatter), ("csr", csr)):
        row = base("graph.gcn2." + name, g, features=f, edges_with_loops=h["e"])
        res = []

        def run(row):
            res.extend(step(prop))
            row["second_order_ms"] = t(lambda: step(prop), reps=max(3, REPS["reps"] // 2), warmup=min(2, REPS["warmup"]))

        guarded(row, run)
        rows.append(row)
        outs.append(res if len(res) == 4 else None)
    note_check(rows, outs)
    for r in rows:
        emit(results, r, save)


def copy_reference(shape, results, save):
    x = torch.randn(shape, device=DEVICE)
    out = torch.empty_like(x)
    row = {"peer": "graph.copy_reference", "dtype": "float32", "shape": list(shape)}

    def run(row):
        with torch.no_grad():
            row["forward_ms"] = t(lambda: out.copy_(x), reps=20, warmup=5)
        row["copy_gbps"] = 2 * x.numel() * 4 / row["forward_ms"] / 1e6

    guarded(row, run)
    emit(results, row, save)


def main():
    global DEVICE, TIMED
    ap = argparse.ArgumentParser()
    ap.add_argument("--graphs", required=True, help="GraphEdgeDump's folder (manifest.json)")
    ap.add_argument("--out", default="graph_peers.json")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--small", action="store_true", help="small widths and few repetitions (local check)")
    ap.add_argument("--only", default="copy,spmm,gat,sddmm,gcn", help="sections to run, in this order")
    a = ap.parse_args()
    DEVICE = a.device
    TIMED = timer(DEVICE)
    if DEVICE == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    features = (16, 64, 256)
    gcn_features = (16, 64)
    gat_shapes = ((4, 16), (8, 8))
    copy_shape = (4, 16, 4096, 128)
    if a.small:
        features, gcn_features, copy_shape = (16, 64), (16,), (1, 4, 1024, 128)
        REPS.update(reps=3, warmup=1)
    manifest = json.load(open(os.path.join(a.graphs, "manifest.json")))
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu",
            "time": time.strftime("%Y-%m-%d %H:%M:%S"), "graphs": a.graphs, "small": a.small}
    print(json.dumps(info))
    results = []

    def save():
        with open(a.out, "w") as f:
            json.dump({"info": info, "results": results}, f, indent=1)

    sections = a.only.split(",")
    t0 = time.perf_counter()
    graphs = [G(a.graphs, entry, "gcn" in sections) for entry in manifest["graphs"]]
    for g in graphs:
        print(json.dumps({"graph": f"{g.n} nodes, {g.e} edges", "gcn_weight_max_rel_diff":
                          getattr(g, "hat_check", None), "load_s": round(time.perf_counter() - t0, 1)}))
    for section in sections:
        for g in graphs if section != "copy" else [None]:
            if section == "copy":
                copy_reference(copy_shape, results, save)
            elif section == "spmm":
                for f in features:
                    for reduce in ("sum", "mean"):
                        spmm(g, f, reduce, results, save)
            elif section == "gat":
                for heads, width in gat_shapes:
                    gat_pyg(g, heads, width, results, save)
                    gat_composed(g, heads, width, results, save)
            elif section == "sddmm":
                for f in features:
                    sddmm(g, f, results, save)
            elif section == "gcn" and g.hat is not None:
                for f in gcn_features:
                    gcn2(g, f, results, save)
    save()
    print(json.dumps({"done": len(results), "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
