#!/usr/bin/env python3
"""Rewrites the generated parts of README.md from recorded results (no number typed by hand).

    python3 benchmarks/readme.py --jmh benchmarks/results/cpu-DATE.json \
        --demo benchmarks/results/demo-DATE.json [--isa "AVX2=...json" --isa "AVX-512=...json"] \
        [--gtn benchmarks/results/gtn-DATE.json] [README.md]

Between '<!-- demo:begin -->' and '<!-- demo:end -->' it writes the demo table (from the JSON
that `demo --json` wrote); between '<!-- benchmarks:begin -->' and '<!-- benchmarks:end -->'
one row per benchmark and parameter set with metakernels' time, each peer's time and the
speed-up peer / metakernels (above 1: metakernels is faster). Each table names its source file.
"""
import argparse
import json
import os
import re
from collections import OrderedDict

from report import fmt  # benchmarks/report.py: the same number format as the reports


def demo_table(path):
    d = json.load(open(path))
    rows = [
        ("GD step size η* (scan on held-out tasks)", fmt(d["gd_eta"])),
        ("loss of trained LSA / of GD(η*)",
         f"{d['lsa_loss']:.5f} / {d['gd_loss']:.5f} ({100 * (d['lsa_loss'] - d['gd_loss']) / d['gd_loss']:+.2f} %)"),
        ("cosine of predictions", f"{d['pred_cosine']:.4f}"),
        ("cosine of sensitivities ∂ŷ/∂x_q", f"{d['sensitivity_cosine']:.4f}"),
        ("RMS distance of predictions", f"{d['pred_l2']:.4f}"),
    ]
    if "identity_cosine" in d:
        rows.append(("trained W_KᵀW_Q (x block) vs identity, cosine", f"{d['identity_cosine']:.4f}"))
    if "y_pick_share" in d:
        rows.append(("P·W_V: share of the y → y entry", f"{d['y_pick_share']:.4f}"))
    for k in d.get("depths", []):
        rows.append((f"K = {k['layers']} layers: LSA / GD ({k['layers']} steps) / GD++",
                     f"{k['lsa_loss']:.4f} / {k['gd_loss']:.4f} / {k['gdpp_loss']:.4f}"))
    rows.append(("wall time of the whole demo", f"{d['seconds']:.0f} s ({d['steps']} steps for one layer)"))
    out = ["| quantity | value |", "|---|---|"]
    out += [f"| {a} | {b} |" for a, b in rows]
    out.append("")
    out.append(f"Source: `{path}`.")
    return "\n".join(out)


# What each peer name in the tables computes (printed under a table for the peers it shows).
PEER_FORMS = OrderedDict([
    ("libtorch-chunked", "linear attention in chunks of 64 (the same algorithm as metakernels; `la_chunked` of "
                         "benchmarks/gpu/peers.py): masked q kᵀ v inside a chunk, an exclusive cumsum of the chunks' "
                         "kᵀ v states across chunks"),
    ("libtorch-masked", "the N×N form (q kᵀ ⊙ tril) v"),
    ("libtorch-cumsum", "per-position states: cumsum over N of k_i ⊗ v_i ([B,H,N,D,D]), then q_jᵀ S_j"),
])


# Parameters added to a benchmark after some of its runs, with the value those runs had: an older
# run's row then keys as the newer runs' row of that value and is replaced by it.
ADDED_PARAMS = {
    "DenseBench.elementwiseChain": {"n": "1048576"},  # 2^20 until 2026-12-07, when 2^15 joined it
}


def bench_table(paths):
    # later files replace earlier ones for the same benchmark and parameters: the whole group
    # (metakernels and every peer), so no ratio mixes two runs
    runs = []
    for path in paths:
        for r in json.load(open(path)):
            r["_source"] = path
            runs.append(r)
    groups = OrderedDict()
    reference_only = set()
    for r in runs:
        params = dict(r.get("params") or {})
        no_peer = "vendor" not in params and "impl" not in params  # by design: e.g. a copy-bandwidth reference
        impl = params.pop("vendor", None) or params.pop("impl", "metakernels")  # "impl" up to cpu-2026-12-02f
        name = r["benchmark"].split(".")[-2] + "." + r["benchmark"].split(".")[-1]
        if no_peer:
            reference_only.add(name)
        for k, v in ADDED_PARAMS.get(name, {}).items():
            params.setdefault(k, v)
        key = (name, tuple(sorted(params.items())))
        group = groups.setdefault(key, OrderedDict())
        if any(v["source"] != r["_source"] for v in group.values()):
            group.clear()
        group[impl] = dict(r["primaryMetric"], source=r["_source"])
    out = ["| benchmark | parameters | metakernels | peer | peer time | speed-up | run |", "|---|---|---|---|---|---|---|"]
    used = {v["source"] for impls in groups.values() for v in impls.values()}
    runs_used = [p for p in OrderedDict.fromkeys(paths) if p in used]
    for (name, params), impls in groups.items():
        mk = impls.get("metakernels")
        ps = ", ".join(f"{k}={v}" for k, v in params) or "—"
        for peer, m in impls.items():
            if peer == "metakernels":
                continue
            unit = m["scoreUnit"]
            run = runs_used.index(m["source"]) + 1
            if mk is None:
                out.append(f"| {name} | {ps} | — | {peer} | {fmt(m['score'])} {unit} | — | {run} |")
                continue
            out.append(f"| {name} | {ps} | {fmt(mk['score'])} {mk['scoreUnit']} | {peer} | {fmt(m['score'])} {unit} | "
                       f"**{m['score'] / mk['score']:.2f}×** | {run} |")
        mk_run = runs_used.index(mk["source"]) + 1 if mk is not None else ""
        if mk is not None and len(impls) == 1 and name in reference_only:
            out.append(f"| {name} | {ps} | {fmt(mk['score'])} {mk['scoreUnit']} | (a reference measurement: no peer) | — | — | {mk_run} |")
        elif mk is not None and len(impls) == 1:
            out.append(f"| {name} | {ps} | {fmt(mk['score'])} {mk['scoreUnit']} | (peer failed or refused: see the report) | — | — | {mk_run} |")
    out.append("")
    shown = [p for p in PEER_FORMS if any(p in impls for impls in groups.values())]
    if shown:
        out.append("Peers: " + "; ".join(f"`{p}`: {PEER_FORMS[p]}" for p in shown) + ".")
        out.append("")
    for i, path in enumerate(runs_used, 1):
        md = os.path.splitext(path)[0] + ".md"
        out.append(f"Run {i}: `{path}` (machine, command, errors and notes: `{md}`).  ")
    return "\n".join(out)


def gtn_table(path):
    """The gtn recipe's comparison, from the JSON that `recipe gtn --json` wrote: one seed (the
    per-seed layout of `--seeds N`, or the single-run layout before it) as learners' mean ± std, or
    several as the mean ± std of the seeds' means with the lowest seed."""
    d = json.load(open(path))
    st = d["settings"]
    k, b = st["inner_steps"], st["batch"]
    runs = d.get("runs", [d])
    r0 = runs[0]

    def mean(xs):
        return sum(xs) / len(xs)

    names = [
        ("gtn", f"learner trained K = {k} steps on digits from the trained GTN"),
        ("real", f"learner trained K = {k} steps on real digits (SGD lr "
                 + "/".join(sorted({str(r["real_lr"]) for r in runs})) + ", best on validation)"),
        ("gtn_untrained", "learner trained on the generator before meta-training"),
    ]
    if len(runs) == 1:
        out = ["| learner (MLP 784-%d-10, fresh initialisation) | test accuracy (mean ± std over %d) | test cross-entropy |"
               % (st["hidden"], st["eval_inits"]), "|---|---|---|"]
        for key, label in names:
            s = r0[key]
            out.append(f"| {label} | {100 * s['accuracy']:.1f} % ± {100 * s['accuracy_std']:.1f} | {s['test_loss']:.3f} |")
        lr = f"learned inner learning rate {r0['learned_inner_lr']:.3f}"
        seeds = f"seed {st['seed']}"
    else:
        out = [f"| learner (MLP 784-{st['hidden']}-10, fresh initialisation) | test accuracy, mean ± std over "
               f"{len(runs)} seeds | lowest seed | test cross-entropy |", "|---|---|---|---|"]
        for key, label in names:
            accs = [r[key]["accuracy"] for r in runs]
            m = mean(accs)
            sd = (sum((a - m) ** 2 for a in accs) / (len(accs) - 1)) ** 0.5
            out.append(f"| {label} | {100 * m:.1f} % ± {100 * sd:.1f} | {100 * min(accs):.1f} % | "
                       f"{mean([r[key]['test_loss'] for r in runs]):.3f} |")
        lr = "learned inner learning rates " + " / ".join(f"{r['learned_inner_lr']:.3f}" for r in runs)
        seeds = (f"seeds {runs[0]['seed']}-{runs[-1]['seed']} (each seed's accuracy the mean over {st['eval_inits']} "
                 f"fresh learners; GTN per seed: " + " / ".join(f"{100 * r['gtn']['accuracy']:.1f} %" for r in runs)
                 + ")")
    out.append("")
    out.append(f"{st['meta_iterations']} meta-iterations, batch {b} per inner step, {lr}, {seeds}, "
               f"{d['train_size']} training / {d['test_size']} test digits, "
               f"threads: {st['threads']} ({st['isa']}), {d['seconds']:.0f} s. Source: `{path}`.")
    return "\n".join(out)


def replace(text, tag, body):
    pat = re.compile(rf"(<!-- {tag}:begin -->\n).*?(<!-- {tag}:end -->)", re.S)
    if not pat.search(text):
        raise SystemExit(f"README has no {tag} markers")
    return pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jmh", action="append", help="JMH JSON; repeat: later runs replace earlier rows")
    ap.add_argument("--demo")
    ap.add_argument("--isa", action="append", metavar="LABEL=JSON",
                    help="one table per instruction set, between the isa markers: LABEL=path[,path...] (later"
                         " runs replace earlier rows), repeat")
    ap.add_argument("--gtn", help="the JSON of `recipe gtn --json`, between the gtn markers")
    ap.add_argument("readme", nargs="?", default="README.md")
    a = ap.parse_args()
    text = open(a.readme, encoding="utf-8").read()
    if a.demo:
        text = replace(text, "demo", demo_table(a.demo))
    if a.jmh:
        text = replace(text, "benchmarks", bench_table(a.jmh))
    if a.isa:
        parts = []
        for item in a.isa:
            label, path = item.rsplit("=", 1)
            parts.append(f"**{label}**\n\n" + bench_table(path.split(",")))
        text = replace(text, "isa", "\n\n".join(parts))
    if a.gtn:
        text = replace(text, "gtn", gtn_table(a.gtn))
    open(a.readme, "w", encoding="utf-8").write(text)


if __name__ == "__main__":
    main()
