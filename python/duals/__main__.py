"""``python -m duals demo``: a short tour of duals, each derivative beside central differences.

The tour takes a few seconds. Every row shows an exact derivative from duals next to the
central-difference estimate of the same quantity, the largest relative difference between the
two (that is the error of the finite differences: duals is exact to rounding), and the time
each method took.
"""

from __future__ import annotations

import sys
import time

import numpy as np

USAGE = """\
usage: python -m duals <command>

commands:
  demo    a short tour: derivative, gradient, Jacobian (eager and compiled) and Hessian,
          each beside central differences with its error and both timings (a few seconds)
"""


# ------------------------------------------------------------------------------------------------
# The functions of the tour: ordinary NumPy code
# ------------------------------------------------------------------------------------------------


def bump(x):
    """sin(x) exp(-x²) + log1p(x²), elementwise."""
    return np.sin(x) * np.exp(-(x**2)) + np.log1p(x**2)


def logsumexp_quadratic(x):
    """log Σ exp(xᵢ) + ½ Σ xᵢ² + Σ xᵢ xᵢ₊₁: a scalar function of a vector."""
    return np.log(np.sum(np.exp(x))) + 0.5 * np.sum(x**2) + np.sum(x[:-1] * x[1:])


def robertson(y, k1, k2, k3):
    """The Robertson chemical kinetics system, a classic stiff ODE right-hand side."""
    return np.array(
        [
            -k1 * y[0] + k3 * y[1] * y[2],
            k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
            k2 * y[1] ** 2,
        ]
    )


def rosenbrock(x):
    """Σ 100 (xᵢ₊₁ - xᵢ²)² + (1 - xᵢ)²."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


# ------------------------------------------------------------------------------------------------
# Central differences (the reference most people would write)
# ------------------------------------------------------------------------------------------------


def fd_derivative(f, x):
    h = np.cbrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(x))
    return (f(x + h) - f(x - h)) / (2 * h)


def fd_jacobian(f, x, args=()):
    x = np.asarray(x, dtype=float)
    cols = []
    for j in range(x.size):
        h = np.cbrt(np.finfo(float).eps) * max(1.0, abs(x[j]))
        e = np.zeros_like(x)
        e[j] = h
        cols.append((np.asarray(f(x + e, *args)) - np.asarray(f(x - e, *args))) / (2 * h))
    return np.stack(cols, axis=-1)


def fd_hessian(f, x):
    n = x.size
    h = np.finfo(float).eps ** 0.25 * np.maximum(1.0, np.abs(x))
    H = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i] = h[i]
            ej[j] = h[j]
            H[i, j] = H[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4 * h[i] * h[j])
    return H


# ------------------------------------------------------------------------------------------------
# The tour
# ------------------------------------------------------------------------------------------------


def _time(fn, budget: float = 0.25):
    """Best time of repeated calls within about ``budget`` seconds; and the last result."""
    best = float("inf")
    start = time.perf_counter()
    result = None
    while True:
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            return best, result


def _fmt_time(t: float) -> str:
    if t < 1e-6:
        return f"{t * 1e9:.0f} ns"
    if t < 1e-3:
        return f"{t * 1e6:.0f} µs"
    if t < 1.0:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def _rel_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(1.0, float(np.max(np.abs(a))))
    return float(np.max(np.abs(a - b))) / scale


def demo(out=sys.stdout) -> None:
    import duals
    from duals import _native

    rows = []

    x = np.linspace(-3.0, 3.0, 100_000)
    t_ad, d = _time(lambda: duals.derivative(bump, x))
    t_fd, d_fd = _time(lambda: fd_derivative(bump, x))
    rows.append(("derivative  sin(x)·exp(-x²) + log1p(x²)", x.shape, d.shape, d, d_fd, t_ad, t_fd))

    x = np.linspace(-1.0, 1.0, 100)
    t_ad, g = _time(lambda: duals.grad(logsumexp_quadratic, x))
    t_fd, g_fd = _time(lambda: fd_jacobian(logsumexp_quadratic, x))
    rows.append(("gradient    log Σ eˣ + ½|x|² + Σ xᵢxᵢ₊₁", x.shape, g.shape, g, g_fd, t_ad, t_fd))

    y = np.array([0.8, 3.0e-5, 0.2])
    k = (0.04, 3.0e7, 1.0e4)
    t_ad, J = _time(lambda: duals.jacobian(robertson, y, args=k))
    t_fd, J_fd = _time(lambda: fd_jacobian(robertson, y, args=k))
    rows.append(
        ("Jacobian    Robertson (k = 0.04, 3e7, 1e4)", y.shape, J.shape, J, J_fd, t_ad, t_fd)
    )

    c = duals.compile(robertson, y, args=k)  # traced once into a native tape
    t_c, J_c = _time(lambda: c.jacobian(y))
    rows.append(("compiled    Robertson, duals.compile", y.shape, J_c.shape, J_c, J_fd, t_c, t_fd))

    x = np.linspace(-1.2, 1.0, 10)
    t_ad, H = _time(lambda: duals.hessian(rosenbrock, x))
    t_fd, H_fd = _time(lambda: fd_hessian(rosenbrock, x))
    rows.append(("Hessian     Rosenbrock", x.shape, H.shape, H, H_fd, t_ad, t_fd))

    header = ("task", "x", "result", "max rel diff", "duals", "central diff")
    table = [
        (
            name,
            str(xs),
            str(rs),
            f"{_rel_diff(a, b):.1e}",
            _fmt_time(ta),
            _fmt_time(tf),
        )
        for name, xs, rs, a, b, ta, tf in rows
    ]
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]

    def line(cells):
        left = [c.ljust(w) for c, w in zip(cells[:3], widths[:3], strict=True)]
        right = [c.rjust(w) for c, w in zip(cells[3:], widths[3:], strict=True)]
        return "  ".join(left + right)

    print(f"duals {duals.__version__}: exact derivatives of NumPy code ", end="", file=out)
    print(f"(SIMD: {_native.simd_level()})", file=out)
    print(file=out)
    print(line(header), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in table:
        print(line(r), file=out)
    print(file=out)
    print(
        "max rel diff = max |duals - central diff| / max(1, max |duals|): the error of the\n"
        "finite differences (truncation and cancellation); duals is exact to rounding.",
        file=out,
    )
    print(
        "Try it:  duals.jacobian(f, x), duals.grad(f, x), duals.hessian(f, x), "
        "duals.derivative(f, x),\n         duals.compile(f, x0).jacobian(x), "
        "duals.scipy.ode_jacobian(fun, y0)",
        file=out,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if argv[0] == "demo" and len(argv) == 1:
        demo()
        return 0
    print(f"duals: unknown command {' '.join(argv)!r}\n", file=sys.stderr)
    print(USAGE, end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
