#!/usr/bin/env python3
"""The standalone harnesses' times beside PyTorch's on the same card: reads attention_harness.md,
linear_attention_harness.md (benchmarks/gpu/check.sh step 1b) and peers.json (peers.py) and prints
markdown tables, ratio = PyTorch time / ours (above 1: ours is faster).
  python3 benchmarks/gpu/harness_ratios.py DIR   (DIR holds the three files)"""
import json
import os
import sys


def rows(path):
    out = []
    for line in open(path):
        if line.startswith("| ["):
            out.append([c.strip() for c in line.strip().strip("|").split("|")])
    return out


def ms(cell):
    try:
        return float(cell)
    except ValueError:
        return None


def main(d):
    doc = json.load(open(os.path.join(d, "peers.json")))  # peers.py: {"info": {...}, "results": [...]}
    peers, head = doc["results"], doc.get("info", {})
    att = rows(os.path.join(d, "attention_harness.md"))

    def sdpa(shape, dtype, causal):
        for p in peers:
            if p.get("peer") == "sdpa" and p.get("dtype") == dtype and p.get("shape") == shape and p.get("causal") == causal:
                return p
        return None

    def find(shape, typ, mask, kernel):
        for r in att:
            if len(r) > 4 and r[0] == shape and r[1] == typ and r[2] == mask and r[3] == kernel:
                return ms(r[4])
        return None

    print(f"PyTorch: torch {head.get('torch', '?')} on {head.get('device', '?')} ({head.get('time', '?')}); ratio = PyTorch ms / ours")
    print()
    print("| shape | type | mask | pass | PyTorch SDPA ms | v1 (default) ms | ratio | best kernel | ms | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape in ([4, 16, 4096, 128], [1, 16, 16384, 128]):
        sh = "[" + ",".join(map(str, shape)) + "]"
        for typ, dt in (("BF16", "bfloat16"), ("F16", "bfloat16")):
            for mask in ("full", "causal"):
                p = sdpa(shape, dt, mask == "causal")
                if not p:
                    continue
                for pas, key, v1k, cands in (
                        ("forward", "forward_ms", "forward v1", ["forward v2", "forward v2k32", "forward sm90"]),
                        ("fwd+bwd", "forward_backward_ms", "fwd+bwd v1 (dQ)", ["fwd+bwd v2 (dQ)", "fwd+bwd sm90 (dQ)"])):
                    v1 = find(sh, typ, mask, v1k)
                    best = min(((find(sh, typ, mask, k), k) for k in cands if find(sh, typ, mask, k)), default=(None, ""))
                    if v1 is None or best[0] is None:
                        continue
                    t = p[key]
                    note = " (SDPA BF16)" if typ == "F16" else ""
                    print(f"| {sh} | {typ} | {mask} | {pas} | {t:.3f}{note} | {v1:.3f} | {t / v1:.2f} | {best[1]} | {best[0]:.3f} | {t / best[0]:.2f} |")
    # F32: the SIMT kernels beside SDPA F32
    print()
    print("| shape | type | mask | pass | PyTorch SDPA F32 ms | v1 (default) ms | ratio | best kernel | ms | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    shape = [4, 16, 4096, 128]
    sh = "[4,16,4096,128]"
    for mask in ("full", "causal"):
        p = sdpa(shape, "float32", mask == "causal")
        if not p:
            continue
        for pas, key, v1k, cands in (
                ("forward", "forward_ms", "forward v1", ["forward v2", "forward v2 64x64", "forward v2 64x32", "forward v2 128x64",
                                                          "forward x3 (3xTF32 sm90)"]),
                ("fwd+bwd", "forward_backward_ms", "fwd+bwd v1", ["fwd+bwd v2", "fwd+bwd x3+v2", "fwd+bwd x3"])):
            v1 = find(sh, "F32", mask, v1k)
            best = min(((find(sh, "F32", mask, k), k) for k in cands if find(sh, "F32", mask, k)), default=(None, ""))
            if v1 is None or best[0] is None:
                continue
            t = p[key]
            print(f"| {sh} | F32 | {mask} | {pas} | {t:.3f} | {v1:.3f} | {t / v1:.2f} | {best[1]} | {best[0]:.3f} | {t / best[0]:.2f} |")
    # double backward beside the math path
    print()
    print("| shape | type | mask | PyTorch math double backward ms (peak MB) | ours ms | ratio | kernels |")
    print("|---|---|---|---|---|---|---|")
    for r in att:
        if len(r) >= 6 and r[0] == sh and r[1] in ("BF16", "TF32") and r[2] in ("full", "causal") and "x" in r[5]:
            dt = {"BF16": "bfloat16", "TF32": "tf32"}[r[1]]
            for p in peers:
                if p.get("peer") == "sdpa_math_double_backward" and p.get("dtype") == dt and p.get("shape") == shape and p.get("causal") == (r[2] == "causal"):
                    ours = ms(r[3])
                    print(f"| {sh} | {r[1]} | {r[2]} | {p['double_backward_ms']:.1f} ({p['peak_memory_mb']:.0f}) | {ours:.1f} | {p['double_backward_ms'] / ours:.2f} | tensor cores |")
        if len(r) >= 6 and r[0] == sh and r[1] == "BF16 sm90" and r[2] in ("full", "causal") and ms(r[3]):
            for p in peers:
                if p.get("peer") == "sdpa_math_double_backward" and p.get("dtype") == "bfloat16" and p.get("shape") == shape and p.get("causal") == (r[2] == "causal"):
                    ours = ms(r[3])
                    print(f"| {sh} | BF16 | {r[2]} | {p['double_backward_ms']:.1f} ({p['peak_memory_mb']:.0f}) | {ours:.1f} | {p['double_backward_ms'] / ours:.2f} | Hopper passes (sm90, opt-in) |")
        if len(r) >= 6 and r[0] == sh and r[1] == "F32" and r[2] in ("full", "causal") and ms(r[3]) and ms(r[4]) and len(r) == 9:
            for p in peers:
                if p.get("peer") == "sdpa_math_double_backward" and p.get("dtype") == "float32" and p.get("shape") == shape and p.get("causal") == (r[2] == "causal"):
                    v1, v2 = ms(r[3]), ms(r[4])
                    print(f"| {sh} | F32 | {r[2]} | {p['double_backward_ms']:.1f} ({p['peak_memory_mb']:.0f}) | v1 {v1:.1f} / v2 {v2:.1f} | {p['double_backward_ms'] / v1:.2f} / {p['double_backward_ms'] / v2:.2f} | SIMT v1 (default) / v2 |")
    # linear attention
    la = rows(os.path.join(d, "linear_attention_harness.md"))
    print()
    print("| shape | mask | dtype | pass | PyTorch form | PyTorch ms | ours (form) | ms | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    # F32: the exact forms (chunked SIMT, x3 recurrent); TF32: the TF32 rows; BF16: every BF16 row
    kinds = (("F32", "float32", lambda f: f.startswith("chunked SIMT") or f.startswith("x3 ") or f.startswith("fwd+bwd")),
             ("F32", "tf32", lambda f: f.startswith("TF32 ")),
             ("BF16", "bfloat16", lambda f: True))
    for mask, peer in (("none", "linear_attention.state"), ("causal", "linear_attention.chunked_cumsum")):
        for dtype, pdt, wanted in kinds:
            p = next((x for x in peers if x.get("peer") == peer and x.get("dtype") == pdt and x.get("shape") == shape), None)
            if not p:
                continue
            for pss, key in (("forward", "forward_ms"), ("fwd+bwd", "forward_backward_ms")):
                t = p.get(key)
                cand = [(ms(r[4]), r[3]) for r in la if r[0] == sh and r[1] == mask and r[2] == dtype and wanted(r[3])
                        and ("fwd+bwd" in r[3]) == (pss == "fwd+bwd") and ms(r[4])]
                if not t or not cand:
                    continue
                for m, f in sorted(cand):
                    print(f"| {sh} | {mask} | {dtype if pdt != 'tf32' else 'TF32'} | {pss} | {peer.split('.')[1]} | {t:.3f} | {f} | {m:.3f} | {t / m:.2f} |")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
