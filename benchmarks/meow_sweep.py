#!/usr/bin/env python3
"""Tabulates runs of `recipe meow --json` that differ in one setting (a hyper-parameter sweep):
per file, the settings that differ from the recipe's defaults, the best checkpoint's validation
Macro-F1 (and its epoch), the validation level over the last fifth of training, and each method's
test Macro-F1 at 20/40/60 labels per class. Markdown on stdout; nothing typed by hand.
    python3 benchmarks/meow_sweep.py RUN.json [RUN.json ...]
"""
import json
import sys

DEFAULTS = {"epochs": 300, "hidden": 64, "batch": 1024, "lr": 0.005, "tau": 0.5, "beta": 2.0,
            "feature_drop": 0.3, "positives": 5, "contexts": False, "clusters": [], "proto_weight": 0.0,
            "cluster_every": 1}
# runs recorded before these settings existed ran as their defaults
LEGACY = {k: DEFAULTS[k] for k in ("contexts", "clusters", "proto_weight", "cluster_every")}


def show(v):
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, list):
        return ",".join(str(x) for x in v) if v else "none"
    return str(v)


def row(path):
    d = json.load(open(path))
    s = dict(LEGACY, **d["settings"])
    changed = ", ".join(f"{k} {show(s[k])}" for k in DEFAULTS if k in s and s[k] != DEFAULTS[k]) or "defaults"
    checks = d.get("validation_checks") or []
    best = max(checks, key=lambda c: c[1]) if checks else None
    tail = [c[1] for c in checks if c[0] > 0.8 * s["epochs"]]
    tail_txt = f"{sum(tail) / len(tail):.4f}" if tail else "-"
    out = []
    # the contrastive methods (the baselines, features and GCN, do not depend on the settings)
    methods = {r["method"] for r in d["results"] if r["method"] != "features" and not r["method"].startswith("GCN")}
    for method in sorted(methods):
        for w in sorted({r["weights"] for r in d["results"] if r["method"] == method}):
            f1 = {r["labels_per_class"]: r["macro_f1_mean"] for r in d["results"]
                  if r["method"] == method and r["weights"] == w}
            out.append(f"| {changed} | {method} {w} | "
                       + (f"{best[1]:.4f} (epoch {best[0]})" if best else "-") + f" | {tail_txt} | "
                       + " / ".join(f"{100 * f1[k]:.2f}" for k in sorted(f1)) + f" | {d['seconds']:.0f} |")
    return out


if __name__ == "__main__":
    print("| settings (others: the defaults) | method | best validation Macro-F1 | mean validation, last fifth"
          " | test Macro-F1 at 20 / 40 / 60 | seconds |")
    print("|---|---|---|---|---|---|")
    for p in sys.argv[1:]:
        for line in row(p):
            print(line)
