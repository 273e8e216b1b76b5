#!/usr/bin/env python3
"""duals eager mode against the other ways to get the same derivatives, in one process.

Usage (from the repository root, in the dev venv with ``benches/requirements.txt`` installed)::

    python benches/python/run.py [--quick] [--only NAME ...] [--profile]

Prints a markdown table (rows: workloads; columns: tools; cells: median time per call and the
ratio tool time / duals time), the JAX compile times, the accuracy of every tool against duals,
the issue's target ratios and the machine. ``--only`` selects rows by (sub)name: robertson,
brusselator64, brusselator512, rosen_hess2, rosen_hess10, rosen_hess100, rosen_grad1000,
elementwise1e6 (``--only brusselator`` runs both Brusselators). ``--profile`` also runs the
duals cell of each selected row under cProfile and prints its top functions.

Timing: each tool is called once to check its answer (and warm up), then repeatedly in samples
of ``number`` calls (number chosen so that a sample lasts a few milliseconds); the tools of a
row take turns sample by sample in a shuffled order, so that the noise of a shared machine falls
on all of them alike, until each has spent its time budget (about 0.5 s, 0.03 s with --quick)
and has at least 5 samples (1 with --quick). A cell is the median time per call over its
samples. Peers that are not installed are skipped with a note; a workload a tool cannot express
is marked n/a.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import gc
import importlib
import importlib.metadata
import io
import os
import platform
import pstats
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Float64 JAX on the CPU; set before jax is imported.
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as W  # noqa: E402

try:
    import duals
except ImportError as e:  # pragma: no cover
    sys.exit(
        f"cannot import duals ({e}): build it first with `maturin develop --release` in the venv"
    )


# ------------------------------------------------------------------------------------------------
# Tools
# ------------------------------------------------------------------------------------------------


class NotApplicable(Exception):
    """The tool has no way to compute this workload (the cell reads n/a)."""


@dataclass
class Prepared:
    call: object  # () -> result (blocking until the result exists)
    to_numpy: object = np.asarray  # result -> float64 ndarray of the workload's shape
    compile_s: float | None = None  # JAX: trace + lower + compile, measured apart


@dataclass
class Tool:
    key: str
    title: str
    module: str | None  # import name; None for always-present tools
    tol: float  # accepted relative difference from duals
    prepare: object  # (Workload) -> Prepared


def prep_duals(w):
    fn = {
        "jacobian": duals.jacobian,
        "hessian": duals.hessian,
        "grad": duals.grad,
        "derivative": duals.derivative,
    }[w.kind]
    f, x, args = w.f, w.x, w.args
    return Prepared(lambda: fn(f, x, args=args))


def prep_numpy(w):
    a, x, args = w.analytic, w.x, w.args
    return Prepared(lambda: a(x, *args))


def prep_jax(w):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    f = w.fx(jnp)
    g = {
        "jacobian": jax.jacfwd,
        "hessian": jax.hessian,
        "grad": jax.grad,
        "derivative": lambda f: jax.vmap(jax.grad(f)),
    }[w.kind](f)
    xj = jnp.asarray(w.x)
    t0 = time.perf_counter()
    compiled = jax.jit(g).lower(xj).compile()
    compile_s = time.perf_counter() - t0
    return Prepared(lambda: compiled(xj).block_until_ready(), compile_s=compile_s)


def prep_torch(w):
    import torch
    import torch.func as tf

    f = w.fx(W.torch_numpy())
    g = {
        "jacobian": tf.jacfwd,  # vmap over the unit tangents
        "hessian": tf.hessian,  # jacfwd(jacrev(f))
        "grad": tf.grad,
        "derivative": lambda f: tf.vmap(tf.grad(f)),
    }[w.kind](f)
    xt = torch.from_numpy(np.array(w.x, dtype=np.float64))
    return Prepared(lambda: g(xt), to_numpy=lambda r: r.detach().numpy())


def prep_autograd(w):
    import autograd
    import autograd.numpy as anp

    f = w.fx(anp)
    g = {
        "jacobian": autograd.jacobian,  # reverse mode, one pass per output
        "hessian": autograd.hessian,
        "grad": autograd.grad,
        "derivative": autograd.elementwise_grad,
    }[w.kind](f)
    x = w.x
    return Prepared(lambda: g(x))


def prep_num_dual(w):
    import num_dual as nd

    f, x, args = w.f, w.x, w.args
    if w.kind == "derivative":
        # No array type in num_dual's Python API: an object array of Dual64 runs the NumPy code.
        def call():
            xd = np.array([nd.Dual64(v, 1.0) for v in x.tolist()], dtype=object)
            y = f(xd, *args)
            return np.array([e.first_derivative for e in y.tolist()])

        return Prepared(call)

    # num_dual passes x as a list of its dual numbers; an object array of them runs the NumPy
    # code unchanged (Robertson's y[0], y[1], y[2] work on the list itself).
    if w.f is W.robertson:

        def fd(y):
            return f(y, *args)
    else:

        def fd(y):
            return f(np.array(y, dtype=object), *args)

    driver, part = {"jacobian": (nd.jacobian, 1), "hessian": (nd.hessian, 2)}.get(
        w.kind, (nd.gradient, 1)
    )
    xl = x.tolist()
    return Prepared(lambda: driver(fd, xl)[part])


def prep_numdifftools(w):
    import numdifftools as ndt

    cls = {
        "jacobian": ndt.Jacobian,
        "hessian": ndt.Hessian,
        "grad": ndt.Gradient,
        "derivative": ndt.Derivative,  # elementwise for an elementwise f
    }[w.kind]
    d = cls(w.fx())
    x = w.x
    return Prepared(lambda: d(x))


def prep_scipy(w):
    import scipy.differentiate as sd

    f, x = w.fx(), w.x
    if w.kind in ("jacobian", "grad"):
        return Prepared(lambda: sd.jacobian(f, x).df)
    if w.kind == "hessian":
        return Prepared(lambda: sd.hessian(f, x).ddf)
    return Prepared(lambda: sd.derivative(f, x).df)


def prep_approx_fprime(w):
    from scipy.optimize import approx_fprime

    if w.kind == "hessian":
        raise NotApplicable("first derivatives only")
    if w.kind == "derivative":
        raise NotApplicable("dense n×n Jacobian only")
    f, x = w.fx(), w.x
    return Prepared(lambda: approx_fprime(x, f))


TOOLS = [
    Tool("duals", "duals (eager)", None, 0.0, prep_duals),
    Tool("numpy", "NumPy analytic", None, 1e-10, prep_numpy),
    Tool("jax", "JAX jit", "jax", 1e-10, prep_jax),
    Tool("torch", "torch.func", "torch", 1e-10, prep_torch),
    Tool("autograd", "autograd", "autograd", 1e-10, prep_autograd),
    Tool("num_dual", "num_dual", "num_dual", 1e-10, prep_num_dual),
    Tool("numdifftools", "numdifftools", "numdifftools", 1e-6, prep_numdifftools),
    Tool("scipy", "scipy.differentiate", "scipy.differentiate", 1e-6, prep_scipy),
    Tool("approx_fprime", "scipy approx_fprime", "scipy.optimize", 1e-3, prep_approx_fprime),
]


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------


@dataclass
class Cell:
    status: str  # "ok" | "n/a" | "skipped" | "error" | "timeout"
    note: str = ""
    median: float | None = None
    samples: int = 0
    number: int = 0
    compile_s: float | None = None
    rel_err: float | None = None


class CellTimeout(Exception):
    """The first call of a cell ran past the time limit."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise CellTimeout in this (main) thread after ``seconds`` (POSIX interval timer)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def handler(signum, frame):
        raise CellTimeout

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def fmt_time(t: float | None) -> str:
    if t is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if t >= scale or unit == "ns":
            v = t / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    raise AssertionError


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != ref.shape:
        if a.size != ref.size:
            return float("inf")
        a = a.reshape(ref.shape)
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(a - ref))) / scale


CLOCK = time.perf_counter  # --clock process: time.process_time (CPU of all threads)


def _sample(call, n: int) -> float:
    """Seconds for ``n`` calls, with the garbage collector off (as timeit does)."""
    gc.disable()
    try:
        t0 = CLOCK()
        for _ in range(n):
            call()
        return CLOCK() - t0
    finally:
        gc.enable()


def _calibrate(call, sample_s: float) -> int:
    """Calls per sample: 1, 2, 5, 10, 20, ... until a sample lasts ``sample_s``."""
    n = 1
    while True:
        for m in (1, 2, 5):
            if _sample(call, n * m) >= sample_s:
                return n * m
        n *= 10


def time_row(calls: dict, budget: float, min_samples: int, sample_s: float, single_over: float):
    """Interleaved timing of ``calls`` (tool -> (call, first_call_seconds)); medians per call.

    A call slower than ``single_over`` is not repeated: its checked first call is the sample.
    """
    state = {}
    for key, (call, first) in calls.items():
        if first >= single_over:
            state[key] = {"number": 1, "samples": [first], "spent": first, "done": True}
        else:
            number = _calibrate(call, sample_s)  # not from `first`: it may hold one-off costs
            state[key] = {"number": number, "samples": [], "spent": 0.0, "done": False}
    active = [k for k, s in state.items() if not s["done"]]
    while active:
        random.shuffle(active)
        for key in list(active):
            s = state[key]
            dt = _sample(calls[key][0], s["number"])
            s["samples"].append(dt / s["number"])
            s["spent"] += dt
            enough = len(s["samples"]) >= min_samples and s["spent"] >= budget
            if enough or len(s["samples"]) >= 1000:
                active.remove(key)
    return {
        k: (float(np.median(s["samples"])), len(s["samples"]), s["number"])
        for k, s in state.items()
    }


def run_row(w, tools, available, opts):
    cells: dict[str, Cell] = {}
    calls = {}
    ref = None
    for tool in tools:
        if not available[tool.key][0]:
            cells[tool.key] = Cell("skipped", available[tool.key][1])
            continue
        try:
            p = tool.prepare(w)
        except NotApplicable as e:
            cells[tool.key] = Cell("n/a", str(e))
            continue
        except Exception as e:  # a peer that fails to set up must not stop the run
            cells[tool.key] = Cell("error", f"{type(e).__name__}: {e}")
            continue
        try:
            with time_limit(opts.limit):
                t0 = CLOCK()
                r = p.call()
                first = CLOCK() - t0
            r = np.asarray(p.to_numpy(r), dtype=np.float64)
        except CellTimeout:
            cells[tool.key] = Cell("timeout", f"first call stopped after {opts.limit:g} s")
            cells[tool.key].median = opts.limit
            continue
        except Exception as e:
            cells[tool.key] = Cell("error", f"{type(e).__name__}: {e}")
            continue
        cell = Cell("ok", compile_s=p.compile_s)
        if tool.key == "duals":
            ref = r
        elif ref is None:
            cell.note = "no duals reference"
        else:
            cell.rel_err = rel_err(r, ref)
            if not cell.rel_err <= tool.tol:
                cell.note = f"differs from duals: rel. error {cell.rel_err:.1e} > {tool.tol:.0e}"
        cells[tool.key] = cell
        calls[tool.key] = (p.call, first)
    timed = time_row(calls, opts.budget, opts.min_samples, opts.sample_s, opts.single_over)
    for key, (med, n, number) in timed.items():
        c = cells[key]
        c.median, c.samples, c.number = med, n, number
    return cells


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def machine(opts) -> list[str]:
    cpu = "unknown CPU"
    try:
        info = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            info.setdefault(k.strip(), v.strip())
        flags = set(info.get("flags", "").split())
        simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
        cpu = (
            f"{info.get('model name', cpu)} (family {info.get('cpu family', '?')}, "
            f"model {info.get('model', '?')}, {simd})"
        )
    except OSError:
        cpu = platform.processor() or cpu
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    vers = []
    for dist in (
        "duals",
        "numpy",
        "scipy",
        "jax",
        "jaxlib",
        "torch",
        "autograd",
        "num_dual",
        "numdifftools",
    ):
        try:
            vers.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            vers.append(f"{dist} not installed")
    return [
        f"- machine: {cpu}, {os.cpu_count()} logical CPUs{mem}; {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()}; " + ", ".join(vers),
        f"- date: {datetime.date.today().isoformat()}",
    ] + (
        [
            "- load average (1 min) before / after the run: "
            f"{opts.load_before[0]:.2f} / {opts.load_after[0]:.2f}"
        ]
        if opts.load_before and opts.load_after
        else []
    )


def cell_text(c: Cell, base: float | None, is_duals: bool) -> str:
    if c.status == "skipped":
        return f"skipped: {c.note}"
    if c.status == "n/a":
        return "n/a"
    if c.status == "error":
        return "error"
    if c.status == "timeout":
        return f"> {fmt_time(c.median)}" + (f" (> {c.median / base:.2g}×)" if base else "")
    t = fmt_time(c.median)
    if is_duals or base is None or c.median is None:
        text = t
    else:
        text = f"{t} ({c.median / base:.2g}×)"
    if c.note:
        text += " ⚠"
    return text


def ratio_line(label, results, row, num, den, den_title):
    cells = results.get(row)
    if cells is None:
        return f"- {label}: not measured (row {row} not selected)"
    a, b = cells.get(num), cells.get(den)
    if b and b.status == "timeout" and a and a.median:
        return (
            f"- {label}: duals {fmt_time(a.median)} / {den_title} > {fmt_time(b.median)} "
            f"= **< {a.median / b.median:.2f}** ({den_title} timed out)"
        )
    if not (a and b and a.median and b.median):
        why = b.note if b and b.note else "peer not available"
        return f"- {label}: not measured ({den_title}: {why})"
    r = a.median / b.median
    verdict = "met" if r <= 1.0 else "NOT met"
    return (
        f"- {label}: duals {fmt_time(a.median)} / {den_title} {fmt_time(b.median)} = "
        f"**{r:.2f}** (target ≤ 1: {verdict})"
    )


def report(ws, results, tools, opts, wall):
    out = []
    title = "quick run" if opts.quick else "full run"
    what = "median wall time" if opts.clock == "wall" else "median CPU time"
    out.append(f"## duals eager vs peers ({title}: {what} per call, (tool / duals))\n")
    header = ["workload"] + [t.title for t in tools] + ["JAX compile"]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    warnings = []
    for w in ws:
        cells = results[w.name]
        base = cells["duals"].median if cells["duals"].status == "ok" else None
        row = [w.label]
        for t in tools:
            c = cells[t.key]
            row.append(cell_text(c, base, t.key == "duals"))
            if c.note and c.status in ("ok", "error"):
                warnings.append(f"- ⚠ {w.label}, {t.title}: {c.note}")
        jc = cells.get("jax")
        row.append(fmt_time(jc.compile_s) if jc and jc.compile_s is not None else "—")
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append("Targets (issue 3; ratio = duals time / peer time, in this run):\n")
    out.append(
        ratio_line(
            "(a) 1e6-point elementwise derivative, duals / JAX jit",
            results,
            "elementwise1e6",
            "duals",
            "jax",
            "JAX jit",
        )
    )
    out.append(
        ratio_line(
            "(b) Robertson Jacobian, duals / num_dual",
            results,
            "robertson",
            "duals",
            "num_dual",
            "num_dual",
        )
    )
    out.append(
        ratio_line(
            "(c) 512-state Brusselator Jacobian, duals / JAX jit",
            results,
            "brusselator512",
            "duals",
            "jax",
            "JAX jit",
        )
    )
    out.append("")
    out.append("Agreement with duals (max |tool − duals| / max |duals|; tolerance in brackets):\n")
    hdr = ["workload"] + [f"{t.title} [{t.tol:.0e}]" for t in tools if t.key != "duals"]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "---|" * len(hdr))
    for w in ws:
        cells = results[w.name]
        row = [w.label]
        for t in tools:
            if t.key == "duals":
                continue
            c = cells[t.key]
            row.append(f"{c.rel_err:.1e}" if c.rel_err is not None else c.status)
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    if warnings:
        out.append("Warnings:\n")
        out.extend(warnings)
        out.append("")
    skipped = sorted(
        {
            f"- {t.title}: {results[w.name][t.key].note}"
            for w in ws
            for t in tools
            if results[w.name][t.key].status == "skipped"
        }
    )
    if skipped:
        out.append("Skipped peers:\n")
        out.extend(skipped)
        out.append("")
    out.append("Machine:\n")
    out.extend(machine(opts))
    out.append(
        f"- settings: clock {opts.clock}, budget {opts.budget:g} s per cell, "
        f"≥ {opts.min_samples} samples, "
        f"samples of ≥ {opts.sample_s * 1e3:g} ms; calls over {opts.single_over:g} s timed "
        f"once; first calls stopped after {opts.limit:g} s; wall time {wall:.0f} s"
    )
    return "\n".join(out)


def profile_duals(w, top: int = 15) -> str:
    fn = {
        "jacobian": duals.jacobian,
        "hessian": duals.hessian,
        "grad": duals.grad,
        "derivative": duals.derivative,
    }[w.kind]
    t0 = time.perf_counter()
    fn(w.f, w.x, args=w.args)
    one = time.perf_counter() - t0
    reps = max(1, int(1.0 / max(one, 1e-6)))
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(reps):
        fn(w.f, w.x, args=w.args)
    pr.disable()
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s)
    st.sort_stats("tottime").print_stats(top)
    return f"### cProfile of duals on {w.label} ({reps} calls, sorted by own time)\n\n" + (
        "```\n" + s.getvalue().strip() + "\n```\n"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short budgets (under a minute)")
    ap.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run the rows whose name contains NAME (repeatable)",
    )
    ap.add_argument(
        "--profile", action="store_true", help="also cProfile the duals cell of each row"
    )
    ap.add_argument(
        "--clock",
        choices=("wall", "process"),
        default="wall",
        help="wall: time.perf_counter (default); process: time.process_time, the CPU time of "
        "all threads, less sensitive to other load on a shared machine",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the interleaving order")
    opts = ap.parse_args(argv)
    random.seed(opts.seed)
    global CLOCK
    CLOCK = time.process_time if opts.clock == "process" else time.perf_counter
    opts.load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    if opts.quick:
        opts.budget, opts.min_samples, opts.sample_s = 0.03, 1, 0.002
        opts.single_over, opts.limit = 0.25, 1.0
    else:
        opts.budget, opts.min_samples, opts.sample_s = 0.5, 5, 0.005
        opts.single_over, opts.limit = 1.0, 30.0

    ws = W.workloads()
    if opts.only:
        ws = [w for w in ws if any(o in w.name for o in opts.only)]
        if not ws:
            names = ", ".join(w.name for w in W.workloads())
            sys.exit(f"--only matched no workload; names: {names}")

    available = {}
    for t in TOOLS:
        if t.module is None:
            available[t.key] = (True, "")
            continue
        try:
            importlib.import_module(t.module)
            available[t.key] = (True, "")
        except ImportError:
            top = t.module.split(".")[0]
            available[t.key] = (False, f"{top} not installed")
    for t in TOOLS:
        if not available[t.key][0]:
            print(f"note: skipping {t.title}: {available[t.key][1]}", file=sys.stderr)

    t_start = time.perf_counter()
    results = {}
    for w in ws:
        t0 = time.perf_counter()
        results[w.name] = run_row(w, TOOLS, available, opts)
        print(f"  {w.name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t_start
    opts.load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(report(ws, results, TOOLS, opts, wall))
    if opts.profile:
        for w in ws:
            print()
            print(profile_duals(w))


if __name__ == "__main__":
    main()
