#!/usr/bin/env python3
"""Summarize criterion results of the Rust engine benchmarks as markdown.

Reads every ``<criterion dir>/**/new/estimates.json`` (with the ``benchmark.json`` next to it
for the names) and prints:

1. one table per benchmark group: the median time of each benchmark, with its 95% confidence
   interval and the fastest sample (mean time per iteration of the quickest of criterion's
   samples, a steadier figure than the median on a busy machine), and for every duals row the
   ratio of medians to the fastest num-dual row of the group;
2. the gradient cost ratio ``t(gradient) / (n * t(f))`` for every ``gradient_n<n>`` group that
   has a matching ``rosenbrock_value/f64/<n>`` measurement;
3. one line per group: fastest duals / fastest num-dual (medians);
4. the CPU this script runs on (run it on the machine that ran the benchmarks).

Usage::

    cargo bench -p duals --bench engine -- --warm-up-time 1 --measurement-time 3
    python3 benches/summarize_criterion.py [CRITERION_DIR]

``CRITERION_DIR`` defaults to ``$CARGO_TARGET_DIR/criterion`` or ``<repo>/target/criterion``.
Python 3 standard library only.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DUALS = "duals"
NUM_DUAL = "num-dual"


def default_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    return Path(target) / "criterion" if target else REPO / "target" / "criterion"


def natural_key(s: str):
    """Sort 'gradient_n10' before 'gradient_n100' and 'w2' before 'w16'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def load(root: Path) -> dict[str, dict[str, dict]]:
    """{group: {name within group: {median, lo, hi, best}}} (times in ns)."""
    groups: dict[str, dict[str, dict]] = {}
    for est_path in sorted(root.glob("**/new/estimates.json")):
        bench_path = est_path.with_name("benchmark.json")
        try:
            est = json.loads(est_path.read_text())
            meta = json.loads(bench_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"<!-- skipped {est_path}: {e} -->", file=sys.stderr)
            continue
        group = meta["group_id"]
        full = meta["full_id"]
        name = full[len(group) + 1 :] if full.startswith(group + "/") else full
        med = est["median"]
        best = None
        try:
            sample = json.loads(est_path.with_name("sample.json").read_text())
            best = min(t / i for t, i in zip(sample["times"], sample["iters"], strict=True) if i)
        except (OSError, json.JSONDecodeError, KeyError, ValueError):
            pass
        groups.setdefault(group, {})[name] = {
            "median": med["point_estimate"],
            "lo": med["confidence_interval"]["lower_bound"],
            "hi": med["confidence_interval"]["upper_bound"],
            "best": best,
        }
    return groups


def fmt_time(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def library(name: str) -> str:
    return name.split("/", 1)[0]


def fastest(rows: dict[str, dict], lib: str):
    cands = [(r["median"], n) for n, r in rows.items() if library(n) == lib]
    return min(cands) if cands else None


def group_table(group: str, rows: dict[str, dict]) -> list[str]:
    best_nd = fastest(rows, NUM_DUAL)
    out = [
        f"### `{group}`",
        "",
        "| benchmark | median | 95% CI | fastest sample | duals / fastest num-dual |",
        "|---|---:|---:|---:|---:|",
    ]
    order = sorted(rows, key=lambda n: (library(n) != DUALS, natural_key(n)))
    for name in order:
        r = rows[name]
        ratio = ""
        if library(name) == DUALS and best_nd:
            ratio = f"{r['median'] / best_nd[0]:.3g}"
        best = fmt_time(r["best"]) if r["best"] is not None else ""
        out.append(
            f"| {name} | {fmt_time(r['median'])} "
            f"| {fmt_time(r['lo'])} – {fmt_time(r['hi'])} | {best} | {ratio} |"
        )
    if best_nd:
        out.append("")
        out.append(f"Fastest num-dual: `{best_nd[1]}`.")
    out.append("")
    return out


def gradient_ratios(groups: dict[str, dict[str, dict]]) -> list[str]:
    values = groups.get("rosenbrock_value", {})
    out: list[str] = []
    for group in sorted(groups, key=natural_key):
        m = re.fullmatch(r"gradient_n(\d+)", group)
        if not m:
            continue
        n = int(m.group(1))
        f = values.get(f"f64/{n}")
        if f is None:
            continue
        if not out:
            out = [
                "### Gradient cost `t(∇f) / (n · t(f))`",
                "",
                "ForwardDiff.jl reaches about 0.75 at chunk 16; the goal is ≤ 0.5.",
                "",
                "Medians, and in the last column the same ratio from the fastest samples.",
                "",
                "| n | t(f) | benchmark | t(∇f) | t(∇f) / (n · t(f)) | from fastest samples |",
                "|---:|---:|---|---:|---:|---:|",
            ]
        rows = groups[group]
        order = sorted(rows, key=lambda k: (library(k) != DUALS, natural_key(k)))
        for name in order:
            t = rows[name]["median"]
            tb, fb = rows[name]["best"], f["best"]
            fast = f"{tb / (n * fb):.3g}" if tb is not None and fb else ""
            out.append(
                f"| {n} | {fmt_time(f['median'])} | {name} | {fmt_time(t)} "
                f"| {t / (n * f['median']):.3g} | {fast} |"
            )
    if out:
        out.append("")
    return out


def summary(groups: dict[str, dict[str, dict]]) -> list[str]:
    out = [
        "### duals / num-dual (fastest of each)",
        "",
        "| group | fastest duals | fastest num-dual | ratio |",
        "|---|---|---|---:|",
    ]
    any_row = False
    for group in sorted(groups, key=natural_key):
        d, nd = fastest(groups[group], DUALS), fastest(groups[group], NUM_DUAL)
        if d and nd:
            any_row = True
            out.append(
                f"| {group} | `{d[1]}` {fmt_time(d[0])} | `{nd[1]}` {fmt_time(nd[0])} "
                f"| {d[0] / nd[0]:.3g} |"
            )
    out.append("")
    return out if any_row else []


def machine() -> list[str]:
    """The CPU model, core count and SIMD extensions of the machine running this script."""
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl")
    simd = [f for f in wanted if f in flags]
    return [
        f"Machine (running this script): {model}, {os.cpu_count()} logical CPUs, "
        f"SIMD: {' '.join(simd) or 'unknown'}.",
        "",
    ]


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else default_dir()
    if not root.is_dir():
        print(f"no criterion results at {root}", file=sys.stderr)
        return 1
    groups = load(root)
    if not groups:
        print(f"no new/estimates.json under {root}", file=sys.stderr)
        return 1
    lines: list[str] = ["## Engine benchmarks (criterion medians)", ""]
    lines += machine()
    lines += summary(groups)
    lines += gradient_ratios(groups)
    for group in sorted(groups, key=natural_key):
        lines += group_table(group, groups[group])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
