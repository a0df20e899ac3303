#!/usr/bin/env python3
"""Checks that every generated section of README.md is what its generator writes from the results
it names: no number in those tables edited by hand, none left behind a regenerated source.

    python3 benchmarks/readme_check.py [README.md]

Each '<!-- TAG:begin -->' ... '<!-- TAG:end -->' section names its sources (the JSON under
benchmarks/results/ it was made from: "Source: ...", "Run N: ..."). This script reruns the section's
generator on a copy of the README with those sources and compares the copy with the README. It exits
1 and prints the differing lines where they differ, 2 where a section has no known generator or
names no source. Run from the repository root (the generators write the paths as given).
"""
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SECTION = re.compile(r"<!-- ([a-z0-9-]+):begin -->\n(.*?)<!-- \1:end -->", re.S)
JSON = re.compile(r"benchmarks/results/[A-Za-z0-9_.+-]+\.json")


def sources(body):
    """The JSON paths a section names, in order of first mention."""
    seen = []
    for p in JSON.findall(body):
        if p not in seen:
            seen.append(p)
    return seen


def isa_args(body):
    """One --isa LABEL=run1,run2 per '**LABEL**' table, its runs in the order of its 'Run N:' lines."""
    args = []
    parts = re.split(r"^\*\*([^*\n]+)\*\*\s*$", body, flags=re.M)
    for label, text in zip(parts[1::2], parts[2::2]):
        runs = [m.group(1) for m in re.finditer(r"^Run \d+: `([^`]+\.json)`", text, flags=re.M)]
        if not runs:
            raise SystemExit(f"isa section: table '{label}' names no run")
        args += ["--isa", f"{label}=" + ",".join(runs)]
    return args


def command(tag, body):
    """The generator command line that rewrites section TAG from the sources it names."""
    py = [sys.executable]
    if tag == "benchmarks":
        runs = [m.group(1) for m in re.finditer(r"^Run \d+: `([^`]+\.json)`", body, flags=re.M)]
        if not runs:
            return None
        return py + [os.path.join(HERE, "readme.py")] + [a for r in runs for a in ("--jmh", r)]
    if tag == "isa":
        return py + [os.path.join(HERE, "readme.py")] + isa_args(body)
    src = sources(body)
    if not src:
        return None
    one = src[0]
    table = {
        "demo": [os.path.join(HERE, "readme.py"), "--demo", one],
        "gtn": [os.path.join(HERE, "readme.py"), "--gtn", one],
        "meow": [os.path.join(HERE, "meow_readme.py"), one],
        "unroll-memory": [os.path.join(HERE, "readme_unroll.py"), "--memory", one],
        "maml-sine": [os.path.join(HERE, "readme_unroll.py"), "--maml", one],
        "reweight": [os.path.join(HERE, "readme_unroll.py"), "--reweight", one],
        "es-objective": [os.path.join(HERE, "readme_es_objective.py"), one],
    }
    if tag not in table:
        return None
    return py + table[tag]


def main():
    readme = sys.argv[1] if len(sys.argv) > 1 else "README.md"
    text = open(readme, encoding="utf-8").read()
    sections = SECTION.findall(text)
    if not sections:
        print(f"{readme}: no generated sections")
        return 2
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for tag, body in sections:
            cmd = command(tag, body)
            if cmd is None:
                print(f"{readme}: section '{tag}' has no known generator or names no source")
                return 2
            missing = [p for p in sources(body) if not os.path.exists(p)]
            if missing:
                print(f"section '{tag}': sources missing: {', '.join(missing)}")
                bad += 1
                continue
            copy = os.path.join(tmp, "README.md")
            shutil.copyfile(readme, copy)
            r = subprocess.run(cmd + [copy], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"section '{tag}': generator failed: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
                bad += 1
                continue
            regenerated = dict(SECTION.findall(open(copy, encoding="utf-8").read())).get(tag)
            if regenerated != body:
                bad += 1
                print(f"section '{tag}' differs from what `{' '.join(os.path.relpath(c) for c in cmd[1:])}` writes:")
                sys.stdout.writelines(difflib.unified_diff(
                    body.splitlines(True), (regenerated or "").splitlines(True),
                    fromfile=f"{readme} ({tag})", tofile="regenerated", n=1))
            else:
                print(f"section '{tag}': as generated from {len(sources(body))} source(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
