#!/usr/bin/env python3
"""Rewrites the `recipe meow` table of README.md from the JSON that `recipe meow --json` wrote
(no number typed by hand).

    python3 benchmarks/meow_readme.py benchmarks/results/meow-acm-DATE.json [README.md]

Between '<!-- meow:begin -->' and '<!-- meow:end -->' it writes one row per method and meta-path
weighting with Macro-F1 and Micro-F1 (mean ± std over seeds) at 20/40/60 labels per class, the
meta-paths' forms (materialised or factorised chain, with their non-zeros), and names the source.
"""
import json
import re
import sys


def pct(mean, std):
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def table(path):
    d = json.load(open(path))
    s = d["settings"]
    rates = sorted({r["labels_per_class"] for r in d["results"]})
    rows = {}
    for r in d["results"]:
        key = (r["method"], r["weights"])
        rows.setdefault(key, {})[r["labels_per_class"]] = r
    head = "| method | meta-path weights | " + " | ".join(
        f"Macro-F1 ({k}) | Micro-F1 ({k})" for k in rates) + " |"
    out = [head, "|---|---|" + "---|---|" * len(rates)]
    for (method, weights), by in rows.items():
        cells = []
        for k in rates:
            r = by.get(k)
            cells += [pct(r["macro_f1_mean"], r["macro_f1_std"]), pct(r["micro_f1_mean"], r["micro_f1_std"])] if r else ["", ""]
        out.append(f"| {method} | {weights} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("Meta-paths (GCN-normalised; non-zeros touched per feature column):")
    out.append("")
    out.append("| meta-path | weights | form | materialised nnz | chain nnz |")
    out.append("|---|---|---|---|---|")
    for p in d["meta_paths"]:
        out.append(f"| {p['path']} | {p['weights']} | {p['form']} | {p['materialized_nnz']:,} | {p['chain_nnz']:,} |")
    out.append("")
    out.append(
        f"{s['dataset'].upper()}, {d['nodes']} nodes, {d['classes']} classes; {s['epochs']} epochs, {s['seeds']} seed(s) "
        f"from {s['seed']}, hidden {s['hidden']}, batch {s['batch']}, τ {s['tau']}, β {s['beta']}; "
        f"{s['threads']} CPU threads ({s['isa']}); {d['seconds']:.0f} s in all. Source: `{path}`.")
    return "\n".join(out)


def main():
    src = sys.argv[1]
    readme = sys.argv[2] if len(sys.argv) > 2 else "README.md"
    text = open(readme).read()
    begin, end = "<!-- meow:begin -->", "<!-- meow:end -->"
    if begin not in text or end not in text:
        sys.exit(f"{readme}: no {begin} ... {end} section")
    new = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m: begin + "\n" + table(src) + "\n" + end, text,
                 flags=re.S)
    open(readme, "w").write(new)


if __name__ == "__main__":
    main()
