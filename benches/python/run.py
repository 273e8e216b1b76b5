#!/usr/bin/env python3
"""duals (eager and compiled) against the other ways to get the same derivatives, in one process.

Usage (from the repository root, in the dev venv with ``benches/requirements.txt`` installed)::

    python benches/python/run.py [--quick] [--only NAME ...] [--tools KEY,...] [--profile]

Prints a markdown table (rows: workloads; columns: tools; cells: median time per call and the
ratio tool time / duals eager time), the build times of the compiling tools (JAX compile, and
duals compile: the trace of ``duals.compile``), the targets of issues 3 and 4, the solve_ivp
counts, the accuracy of every tool against the reference, and the machine.

Columns: duals eager (``duals.jacobian`` ...), duals compiled (``duals.compile(f, x, args)``
once, then ``c.jacobian`` / ``c.hessian`` / ``c.gradient`` / ``c.derivative(X)``), hand-written
NumPy, JAX jit, torch.func, autograd, num_dual, numdifftools, scipy.differentiate and
approx_fprime. Rows: derivatives of robertson, brusselator64, brusselator512, rosen_hess2,
rosen_hess10, rosen_hess100, rosen_grad1000, elementwise1e6, and end to end solve_ivp_bdf,
solve_ivp_radau, solve_ivp_lsoda (one full ``solve_ivp`` of Robertson's problem, the ``jac``
from duals compiled (``duals.scipy.ode_jacobian``), duals eager, the hand-written Jacobian, JAX
jit, or SciPy's finite differences, ``jac=None``, in the approx_fprime column).

``--only`` selects rows by (sub)name (``--only brusselator`` runs both Brusselators, ``--only
solve_ivp`` the three solves); ``--tools duals_c,jax,num_dual`` selects columns by key (duals
eager, the base of the ratios, and NumPy analytic, the reference of the solve_ivp rows, always
run); ``--profile`` also runs the duals eager cell of each
selected row under cProfile and prints its top functions.

Timing: each tool is called once to check its answer (and warm up), then repeatedly in samples
of ``number`` calls (number chosen so that a sample lasts a few milliseconds); the tools of a
row take turns sample by sample in a shuffled order, so that the noise of a shared machine falls
on all of them alike, until each has spent its time budget (about 0.5 s, 0.03 s with --quick)
and has at least 5 samples (1 with --quick). A cell is the median time per call over its
samples. Build times (JAX compile, duals.compile) are the median of builds repeated for 0.2 s
(at least two), with the first build of the row beside it. Peers that are not installed are
skipped with a note; a workload a tool cannot express is marked n/a; a tool that raises
(duals.compile on a function it cannot trace, say) shows the error in its cell.
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
    compile_s: float | None = None  # JAX / duals compiled: build time, median of repeats
    compile_first: float | None = None  # the first build of the row (with one-off costs)
    compile_reps: int = 0  # builds timed after the first
    stats: object = None  # result -> str (solve_ivp rows: nfev / njev / nlu)


@dataclass
class Tool:
    key: str
    title: str
    module: str | None  # import name; None for always-present tools
    tol: float  # accepted relative difference from duals
    prepare: object  # (Workload) -> Prepared


# Seconds spent re-building (JAX compile, duals.compile) after the first build, to report a
# median build time beside the first one; set by main (0 with --quick: first build only).
COMPILE_REPEAT_S = 0.2

# solve_ivp rows: accepted relative difference of the final state from the analytic-jac solve
# (the step sequences may differ with the Jacobian's rounding).
ODE_TOL = 1e-6


def timed_build(build):
    """``build()`` timed: ``(object, first seconds, median seconds, repeats)``.

    The first build of a row can hold one-off costs (imports, caches of the tracer, of JAX);
    the object is built again for ``COMPILE_REPEAT_S`` seconds (at least twice when that is not
    0 and the first build took under a second) and the median of those builds is reported too.
    """
    t0 = time.perf_counter()
    obj = build()
    first = time.perf_counter() - t0
    times = []
    if COMPILE_REPEAT_S > 0 and first < 1.0:
        start = time.perf_counter()
        while len(times) < 50 and (
            len(times) < 2 or time.perf_counter() - start < COMPILE_REPEAT_S
        ):
            t0 = time.perf_counter()
            build()
            times.append(time.perf_counter() - t0)
    med = float(np.median(times)) if times else first
    return obj, first, med, len(times)


def _ode_final(sol):
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return sol.y[:, -1]


def _ode_stats(sol) -> str:
    return f"nfev {sol.nfev}, njev {sol.njev}, nlu {sol.nlu}"


def prep_solve(w, jac, **kw):
    """One full ``solve_ivp`` of the row's problem with ``jac`` (a callable or None)."""
    from scipy.integrate import solve_ivp

    o, y0, args = w.ode, w.x, w.args
    fun, t_span, method, rtol, atol = o["fun"], o["t_span"], o["method"], o["rtol"], o["atol"]

    def call():
        return solve_ivp(fun, t_span, y0, method=method, args=args, jac=jac, rtol=rtol, atol=atol)

    return Prepared(call, to_numpy=_ode_final, stats=_ode_stats, **kw)


def no_solve_ivp(w):
    if w.kind == "solve_ivp":
        raise NotApplicable("solve_ivp rows: duals, analytic, JAX and SciPy's jac=None only")


def prep_duals(w):
    f, x, args = w.f, w.x, w.args
    if w.kind == "solve_ivp":

        def jac(t, y, *a):
            return duals.jacobian(f, y, args=a)

        return prep_solve(w, jac)
    fn = {
        "jacobian": duals.jacobian,
        "hessian": duals.hessian,
        "grad": duals.grad,
        "derivative": duals.derivative,
    }[w.kind]
    return Prepared(lambda: fn(f, x, args=args))


def prep_duals_compiled(w):
    import duals.scipy

    x, args = w.x, w.args
    if w.kind == "solve_ivp":
        o = w.ode
        jac, first, med, reps = timed_build(
            lambda: duals.scipy.ode_jacobian(o["fun"], x, o["t_span"][0], args=args)
        )
        return prep_solve(w, jac, compile_s=med, compile_first=first, compile_reps=reps)
    # The elementwise row is traced at a scalar; derivative(X) then runs on all of X at once.
    x0 = float(x.flat[0]) if w.kind == "derivative" else x
    c, first, med, reps = timed_build(lambda: duals.compile(w.f, x0, args=args))
    fn = {
        "jacobian": c.jacobian,
        "hessian": c.hessian,
        "grad": c.gradient,
        "derivative": c.derivative,
    }[w.kind]
    return Prepared(lambda: fn(x), compile_s=med, compile_first=first, compile_reps=reps)


def prep_numpy(w):
    a, x, args = w.analytic, w.x, w.args
    if w.kind == "solve_ivp":

        def jac(t, y, *a_):
            return a(y, *a_)

        return prep_solve(w, jac)
    return Prepared(lambda: a(x, *args))


def prep_jax(w):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    transform = {
        "jacobian": jax.jacfwd,
        "hessian": jax.hessian,
        "grad": jax.grad,
        "derivative": lambda f: jax.vmap(jax.grad(f)),
        "solve_ivp": jax.jacfwd,
    }[w.kind]
    xj = jnp.asarray(w.x)
    # w.fx(jnp) re-binds a new function object each time: every build traces afresh.
    compiled, first, med, reps = timed_build(
        lambda: jax.jit(transform(w.fx(jnp))).lower(xj).compile()
    )
    kw = {"compile_s": med, "compile_first": first, "compile_reps": reps}
    if w.kind == "solve_ivp":

        def jac(t, y, *a):  # args are closed over (w.fx); solve_ivp's y is a NumPy array
            return np.asarray(compiled(y))

        return prep_solve(w, jac, **kw)
    return Prepared(lambda: compiled(xj).block_until_ready(), **kw)


def prep_torch(w):
    no_solve_ivp(w)
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
    no_solve_ivp(w)
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
    no_solve_ivp(w)
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
    no_solve_ivp(w)
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
    no_solve_ivp(w)
    import scipy.differentiate as sd

    f, x = w.fx(), w.x
    if w.kind in ("jacobian", "grad"):
        return Prepared(lambda: sd.jacobian(f, x).df)
    if w.kind == "hessian":
        return Prepared(lambda: sd.hessian(f, x).ddf)
    return Prepared(lambda: sd.derivative(f, x).df)


def prep_approx_fprime(w):
    from scipy.optimize import approx_fprime

    if w.kind == "solve_ivp":
        return prep_solve(w, None)  # SciPy's own finite differences (num_jac)
    if w.kind == "hessian":
        raise NotApplicable("first derivatives only")
    if w.kind == "derivative":
        raise NotApplicable("dense n×n Jacobian only")
    f, x = w.fx(), w.x
    return Prepared(lambda: approx_fprime(x, f))


TOOLS = [
    Tool("duals", "duals (eager)", None, 0.0, prep_duals),
    Tool("duals_c", "duals (compiled)", None, 1e-12, prep_duals_compiled),
    Tool("numpy", "NumPy analytic", None, 1e-10, prep_numpy),
    Tool("jax", "JAX jit", "jax", 1e-10, prep_jax),
    Tool("torch", "torch.func", "torch", 1e-10, prep_torch),
    Tool("autograd", "autograd", "autograd", 1e-10, prep_autograd),
    Tool("num_dual", "num_dual", "num_dual", 1e-10, prep_num_dual),
    Tool("numdifftools", "numdifftools", "numdifftools", 1e-6, prep_numdifftools),
    Tool("scipy", "scipy.differentiate", "scipy.differentiate", 1e-6, prep_scipy),
    Tool(
        "approx_fprime",
        "scipy approx_fprime (solve_ivp: jac=None)",
        "scipy.optimize",
        1e-3,
        prep_approx_fprime,
    ),
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
    compile_first: float | None = None
    compile_reps: int = 0
    rel_err: float | None = None
    stats: str = ""


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


def reference_key(w) -> str:
    """The tool whose answer the others are compared with: duals eager, or for the solve_ivp
    rows the solve with the hand-written Jacobian."""
    return "numpy" if w.kind == "solve_ivp" else "duals"


def run_row(w, tools, available, opts):
    cells: dict[str, Cell] = {}
    calls = {}
    answers = {}
    for tool in tools:
        if not available[tool.key][0]:
            cells[tool.key] = Cell("skipped", available[tool.key][1])
            continue
        try:
            p = tool.prepare(w)
        except NotApplicable as e:
            cells[tool.key] = Cell("n/a", str(e))
            continue
        except Exception as e:  # a tool that fails to set up (or compile) must not stop the run
            cells[tool.key] = Cell("error", f"{type(e).__name__}: {e}")
            continue
        try:
            with time_limit(opts.limit):
                t0 = CLOCK()
                r = p.call()
                first = CLOCK() - t0
            stats = p.stats(r) if p.stats else ""
            r = np.asarray(p.to_numpy(r), dtype=np.float64)
        except CellTimeout:
            cells[tool.key] = Cell("timeout", f"first call stopped after {opts.limit:g} s")
            cells[tool.key].median = opts.limit
            continue
        except Exception as e:
            cells[tool.key] = Cell("error", f"{type(e).__name__}: {e}")
            continue
        cells[tool.key] = Cell(
            "ok",
            compile_s=p.compile_s,
            compile_first=p.compile_first,
            compile_reps=p.compile_reps,
            stats=stats,
        )
        answers[tool.key] = r
        calls[tool.key] = (p.call, first)
    ref_key = reference_key(w)
    ref = answers.get(ref_key)
    titles = {t.key: t.title for t in TOOLS}
    for tool in tools:
        if tool.key not in answers or tool.key == ref_key:
            continue
        cell = cells[tool.key]
        if ref is None:
            cell.note = f"no {titles[ref_key]} reference"
            continue
        tol = ODE_TOL if w.kind == "solve_ivp" else tool.tol
        cell.rel_err = rel_err(answers[tool.key], ref)
        if not cell.rel_err <= tol:
            cell.note = f"differs from {titles[ref_key]}: rel. error {cell.rel_err:.1e} > {tol:.0e}"
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


def short(msg: str, n: int = 90) -> str:
    """A message fit for a table cell (one line, no pipes, at most ``n`` characters)."""
    msg = " ".join(msg.split()).replace("|", "/")
    return msg if len(msg) <= n else msg[: n - 1] + "…"


def cell_text(c: Cell, base: float | None, is_duals: bool) -> str:
    if c.status == "skipped":
        return f"skipped: {c.note}"
    if c.status == "n/a":
        return "n/a"
    if c.status == "error":
        return f"error: {short(c.note)}"
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


def compile_text(c: Cell | None) -> str:
    """Build time of a cell: median of the repeated builds, and the first build beside it."""
    if c is None or c.compile_s is None:
        return "—"
    if c.compile_reps == 0:
        return fmt_time(c.compile_s)
    return f"{fmt_time(c.compile_s)} (1st {fmt_time(c.compile_first)})"


def ratio_line(
    label,
    results,
    row,
    num,
    den,
    den_title,
    *,
    target=1.0,
    target_text=None,
    strict=False,
    num_title="duals",
):
    """``- label: num / den = **ratio** (target ≤ target_text: met)`` for one row.

    ``den`` (with ``den_title``) may be a tuple of tool keys (with a tuple of titles): the
    fastest of them that was measured is the denominator. ``strict``: the target is ``<``.
    """
    target_text = target_text or f"{target:g}"
    op = "<" if strict else "≤"
    cells = results.get(row)
    if cells is None:
        return f"- {label}: not measured (row {row} not selected)"
    a = cells.get(num)
    if not (a and a.median and a.status == "ok"):
        why = a.note if a and a.note else a.status if a else "not run"
        return f"- {label}: not measured ({num_title}: {short(why, 200)})"
    keys = den if isinstance(den, tuple) else (den,)
    titles = den_title if isinstance(den_title, tuple) else (den_title,)
    pairs = list(zip(keys, titles, strict=True))
    measured = [(cells[k], t) for k, t in pairs if cells.get(k) and cells[k].median]
    if not measured:
        whys = [
            f"{t}: {cells[k].note if cells.get(k) and cells[k].note else 'not available'}"
            for k, t in pairs
        ]
        return f"- {label}: not measured ({'; '.join(whys)})"
    b, title = min(measured, key=lambda bt: bt[0].median)
    r = a.median / b.median
    met = r < target if strict else r <= target
    verdict = "met" if met else "NOT met"
    if b.status == "timeout":
        return (
            f"- {label}: {num_title} {fmt_time(a.median)} / {title} > {fmt_time(b.median)} "
            f"= **< {r:.2f}** ({title} timed out; target {op} {target_text}: {verdict})"
        )
    return (
        f"- {label}: {num_title} {fmt_time(a.median)} / {title} {fmt_time(b.median)} = "
        f"**{r:.3g}** (target {op} {target_text}: {verdict})"
    )


def threshold_line(label, seconds, limit, limit_text, detail="", strict=True) -> str:
    """``- label: time (target < limit_text: met)`` for an absolute time."""
    if seconds is None:
        return f"- {label}: not measured"
    met = seconds < limit if strict else seconds <= limit
    op = "<" if strict else "≤"
    return (
        f"- {label}: **{fmt_time(seconds)}**{detail} (target {op} {limit_text}: "
        f"{'met' if met else 'NOT met'})"
    )


def issue4_targets(results) -> list[str]:
    out = []
    out.append(
        ratio_line(
            "(a) Robertson Jacobian, duals compiled c.jacobian / fastest of num_dual, JAX jit",
            results,
            "robertson",
            "duals_c",
            ("num_dual", "jax"),
            ("num_dual", "JAX jit"),
            target=1 / 6,
            target_text="1/6 = 0.167",
            num_title="compiled",
        )
    )
    rob = results.get("robertson", {}).get("duals_c")
    out.append(
        threshold_line(
            "(a′) Robertson Jacobian, duals compiled, absolute time per call",
            rob.median if rob and rob.status == "ok" else None,
            1e-6,
            "1 µs",
        )
    )
    out.append(
        ratio_line(
            "(b) Rosenbrock Hessian n=10, duals compiled / JAX jit",
            results,
            "rosen_hess10",
            "duals_c",
            "jax",
            "JAX jit",
            target=1 / 3,
            target_text="1/3 = 0.333",
            strict=True,
            num_title="compiled",
        )
    )
    out.append(
        ratio_line(
            "(c) 1e6-point elementwise derivative, duals compiled c.derivative(X) / JAX jit",
            results,
            "elementwise1e6",
            "duals_c",
            "jax",
            "JAX jit",
            target=1 / 2,
            target_text="1/2",
            num_title="compiled",
        )
    )
    cells = results.get("robertson")
    if cells is None:
        out.append("- (d) duals.compile trace time, Robertson: not measured (row not selected)")
    else:
        dc, jc = cells.get("duals_c"), cells.get("jax")
        detail = ""
        if dc and dc.compile_reps:
            detail = (
                f" median of {dc.compile_reps} traces (the first in the process, with one-off "
                f"costs: {fmt_time(dc.compile_first)})"
            )
        if jc and jc.compile_s is not None:
            detail += f"; JAX compile of jit(jacfwd) beside it: {compile_text(jc)}"
        out.append(
            threshold_line(
                "(d) duals.compile trace time, Robertson",
                dc.compile_s if dc else None,
                1e-3,
                "1 ms",
                detail,
            )
        )
    return out


def report(ws, results, tools, opts, wall):
    out = []
    title = "quick run" if opts.quick else "full run"
    what = "median wall time" if opts.clock == "wall" else "median CPU time"
    out.append(f"## duals vs peers ({title}: {what} per call, (tool / duals eager))\n")
    header = ["workload"] + [t.title for t in tools] + ["JAX compile", "duals compile"]
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
        row.append(compile_text(cells.get("jax")))
        row.append(compile_text(cells.get("duals_c")))
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append("Targets (issue 3; ratio = duals eager time / peer time, in this run):\n")
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
    out.append("Targets (issue 4; duals compiled, in this run):\n")
    out.extend(issue4_targets(results))
    out.append("")
    ode_rows = [w for w in ws if w.kind == "solve_ivp"]
    if ode_rows:
        out.append(
            "solve_ivp counts of one solve (nfev excludes the right-hand side evaluations of "
            "SciPy's finite differences, jac=None, in BDF and Radau):\n"
        )
        for w in ode_rows:
            cells = results[w.name]
            parts = [f"{t.title}: {cells[t.key].stats}" for t in tools if cells[t.key].stats]
            out.append(f"- {w.label}: " + ("; ".join(parts) if parts else "no solve ran"))
        out.append("")
    out.append(
        "Agreement (max |tool − ref| / max |ref|; tolerance in brackets). ref: duals eager; for "
        f"the solve_ivp rows the final state of the solve with the analytic jac, tolerance "
        f"{ODE_TOL:.0e} for every tool:\n"
    )
    hdr = ["workload"] + [
        f"{t.title} [{t.tol:.0e}]" if t.key != "duals" else t.title for t in tools
    ]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "---|" * len(hdr))
    for w in ws:
        cells = results[w.name]
        row = [w.label]
        for t in tools:
            c = cells[t.key]
            if t.key == reference_key(w) and c.status == "ok":
                row.append("ref")
            else:
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
        f"once; first calls stopped after {opts.limit:g} s; builds (compile) repeated for "
        f"{COMPILE_REPEAT_S:g} s; wall time {wall:.0f} s"
    )
    return "\n".join(out)


def profile_duals(w, top: int = 15) -> str:
    call = prep_duals(w).call
    t0 = time.perf_counter()
    call()
    one = time.perf_counter() - t0
    reps = max(1, int(1.0 / max(one, 1e-6)))
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(reps):
        call()
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
    ap.add_argument(
        "--tools",
        metavar="KEY,...",
        help="run only these columns (duals eager and NumPy analytic always run): "
        + ", ".join(t.key for t in TOOLS),
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the interleaving order")
    opts = ap.parse_args(argv)
    random.seed(opts.seed)
    global CLOCK, COMPILE_REPEAT_S
    CLOCK = time.process_time if opts.clock == "process" else time.perf_counter
    opts.load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    if opts.quick:
        opts.budget, opts.min_samples, opts.sample_s = 0.03, 1, 0.002
        opts.single_over, opts.limit = 0.25, 1.0
        COMPILE_REPEAT_S = 0.01
    else:
        opts.budget, opts.min_samples, opts.sample_s = 0.5, 5, 0.005
        opts.single_over, opts.limit = 1.0, 30.0
        COMPILE_REPEAT_S = 0.2

    tools = TOOLS
    if opts.tools:
        keys = {k.strip() for k in opts.tools.split(",") if k.strip()}
        unknown = keys - {t.key for t in TOOLS}
        if unknown:
            sys.exit(
                f"--tools: unknown {', '.join(sorted(unknown))}; keys: "
                + ", ".join(t.key for t in TOOLS)
            )
        # duals eager is the base of the ratios, NumPy analytic the reference of solve_ivp rows.
        tools = [t for t in TOOLS if t.key in keys or t.key in ("duals", "numpy")]

    ws = W.workloads()
    if opts.only:
        ws = [w for w in ws if any(o in w.name for o in opts.only)]
        if not ws:
            names = ", ".join(w.name for w in W.workloads())
            sys.exit(f"--only matched no workload; names: {names}")

    available = {}
    for t in tools:
        if t.module is None:
            available[t.key] = (True, "")
            continue
        try:
            importlib.import_module(t.module)
            available[t.key] = (True, "")
        except ImportError:
            top = t.module.split(".")[0]
            available[t.key] = (False, f"{top} not installed")
    for t in tools:
        if not available[t.key][0]:
            print(f"note: skipping {t.title}: {available[t.key][1]}", file=sys.stderr)

    t_start = time.perf_counter()
    results = {}
    for w in ws:
        t0 = time.perf_counter()
        results[w.name] = run_row(w, tools, available, opts)
        print(f"  {w.name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t_start
    opts.load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(report(ws, results, tools, opts, wall))
    if opts.profile:
        for w in ws:
            print()
            print(profile_duals(w))


if __name__ == "__main__":
    main()
