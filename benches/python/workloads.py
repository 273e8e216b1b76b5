"""The benchmark workloads: each function written once as plain NumPy, plus its analytic derivative.

The functions below are what a user would write (``import numpy as np``, nothing else). duals
differentiates them as they are; SciPy and numdifftools evaluate them as they are (all
state-indexing is along axis 0, so SciPy's vectorized differentiation can append batch axes);
num_dual runs them on object arrays of its dual numbers. For the tracing peers the same code
object is re-bound to another array namespace with :func:`rebind` (``np`` becomes
``jax.numpy``, ``autograd.numpy`` or the small torch shim :data:`TORCH_NP`), so every tool runs
the same math, not a re-typed copy.

The ``*_analytic`` functions are hand-written NumPy derivatives: the floor a forward-mode tool
can approach but not beat.

The ``solve_ivp`` rows time a whole ``scipy.integrate.solve_ivp`` call on Robertson's problem,
each tool supplying ``jac`` (the analytic Jacobian, or ``jac=None`` for SciPy's own finite
differences); their answer is the final state.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# ------------------------------------------------------------------------------------------------
# The functions (plain NumPy)
# ------------------------------------------------------------------------------------------------

ROBERTSON_K = (0.04, 3.0e7, 1.0e4)

# A point in the middle of the stiff Robertson solution (t = 40 on the standard test problem).
ROBERTSON_Y = np.array([0.7158270687, 9.185534764e-6, 0.2841637457])

BRUSSELATOR_ALPHA = 1.0 / 50.0

# The implicit solve_ivp methods of the end-to-end rows (each uses the jac= it is given).
SOLVE_IVP_METHODS = ("BDF", "Radau", "LSODA")


def robertson(y, k1, k2, k3):
    """Robertson's chemical kinetics: the stiff 3-state ODE right-hand side."""
    return np.array(
        [
            -k1 * y[0] + k3 * y[1] * y[2],
            k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
            k2 * y[1] ** 2,
        ]
    )


def brusselator(y, alpha):
    """1-D Brusselator (Hairer & Wanner II, IV.1), method of lines, Dirichlet boundaries.

    ``y = [u_1..u_N, v_1..v_N]`` (stacked); ``u = 1``, ``v = 3`` on the boundary; diffusion
    coefficient ``alpha / dx**2`` with ``dx = 1 / (N + 1)``.
    """
    n = y.shape[0] // 2
    u = y[:n]
    v = y[n:]
    one = np.ones_like(u[:1])
    c = alpha * (n + 1) ** 2
    lap_u = np.concatenate([one, u[:-1]]) - 2.0 * u + np.concatenate([u[1:], one])
    lap_v = np.concatenate([3.0 * one, v[:-1]]) - 2.0 * v + np.concatenate([v[1:], 3.0 * one])
    uuv = u * u * v
    du = 1.0 + uuv - 4.0 * u + c * lap_u
    dv = 3.0 * u - uuv + c * lap_v
    return np.concatenate([du, dv])


def rosenbrock(x):
    """Extended (chained) Rosenbrock function, as scipy.optimize.rosen."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2, axis=0)


def bump(x):
    """The elementwise function sin(x)·exp(-x²) + log1p(x²)."""
    return np.sin(x) * np.exp(-(x**2)) + np.log1p(x**2)


def robertson_ode(t, y, k1, k2, k3):
    """Robertson as ``solve_ivp`` calls it: ``fun(t, y, *args)``."""
    return robertson(y, k1, k2, k3)


# ------------------------------------------------------------------------------------------------
# Hand-written derivatives (the floor)
# ------------------------------------------------------------------------------------------------


def robertson_analytic(y, k1, k2, k3):
    J = np.empty((3, 3))
    J[0, 0] = -k1
    J[0, 1] = k3 * y[2]
    J[0, 2] = k3 * y[1]
    J[1, 0] = k1
    J[1, 1] = -k3 * y[2] - 2.0 * k2 * y[1]
    J[1, 2] = -k3 * y[1]
    J[2, 0] = 0.0
    J[2, 1] = 2.0 * k2 * y[1]
    J[2, 2] = 0.0
    return J


def brusselator_analytic(y, alpha):
    n = y.shape[0] // 2
    u = y[:n]
    v = y[n:]
    c = alpha * (n + 1) ** 2
    J = np.zeros((2 * n, 2 * n))
    i = np.arange(n)
    J[i, i] = 2.0 * u * v - 4.0 - 2.0 * c
    J[i, n + i] = u * u
    J[n + i, i] = 3.0 - 2.0 * u * v
    J[n + i, n + i] = -u * u - 2.0 * c
    j = np.arange(n - 1)
    J[j, j + 1] = c
    J[j + 1, j] = c
    J[n + j, n + j + 1] = c
    J[n + j + 1, n + j] = c
    return J


def rosenbrock_grad_analytic(x):
    g = np.zeros_like(x)
    xm, xp = x[:-1], x[1:]
    t = xp - xm**2
    g[:-1] = -400.0 * xm * t - 2.0 * (1.0 - xm)
    g[1:] += 200.0 * t
    return g


def rosenbrock_hess_analytic(x):
    n = x.shape[0]
    d = np.zeros(n)
    d[:-1] = 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
    d[1:] += 200.0
    H = np.diag(d)
    off = -400.0 * x[:-1]
    i = np.arange(n - 1)
    H[i, i + 1] = off
    H[i + 1, i] = off
    return H


def bump_analytic(x):
    e = np.exp(-(x**2))
    return (np.cos(x) - 2.0 * x * np.sin(x)) * e + 2.0 * x / (1.0 + x**2)


# ------------------------------------------------------------------------------------------------
# Other array namespaces for the same code
# ------------------------------------------------------------------------------------------------


def rebind(f: Callable, **names: Any) -> Callable:
    """``f`` with its global names replaced (e.g. ``np=jax.numpy``): same code, other arrays."""
    g = dict(f.__globals__)
    g.update(names)
    return types.FunctionType(f.__code__, g, f.__name__, f.__defaults__, f.__closure__)


class _TorchNumpy:
    """The few NumPy names the workloads use, mapped to torch (used through :func:`rebind`)."""

    def __init__(self):
        import torch

        self.torch = torch

    def array(self, xs):
        t = self.torch
        return t.stack([x if isinstance(x, t.Tensor) else t.tensor(x) for x in xs])

    def concatenate(self, xs, axis=0):
        return self.torch.cat(list(xs), dim=axis)

    def ones_like(self, x):
        return self.torch.ones_like(x)

    def sum(self, x, axis=None):
        return self.torch.sum(x) if axis is None else self.torch.sum(x, dim=axis)

    def __getattr__(self, name):  # sin, exp, log1p, ...
        return getattr(self.torch, name)


def torch_numpy() -> _TorchNumpy:
    """A torch shim for :func:`rebind` (imports torch; raises ImportError where it is absent)."""
    return _TorchNumpy()


# ------------------------------------------------------------------------------------------------
# The workload list
# ------------------------------------------------------------------------------------------------


@dataclass
class Workload:
    name: str  # short id for --only
    label: str  # the table's row label
    kind: str  # "jacobian" | "hessian" | "grad" | "derivative" | "solve_ivp"
    f: Callable  # plain NumPy, called as f(x, *args)
    x: np.ndarray  # the point (for solve_ivp: the initial state)
    analytic: Callable  # analytic(x, *args) -> the derivative
    args: tuple = field(default_factory=tuple)
    # solve_ivp rows: fun(t, y, *args) (f with t first), t_span, method, rtol, atol.
    ode: dict | None = None

    def fx(self, np_namespace=None) -> Callable:
        """``x -> f(x, *args)``, optionally re-bound to another array namespace."""
        f = self.f if np_namespace is None else rebind(self.f, np=np_namespace)
        args = self.args
        return (lambda x: f(x, *args)) if args else f


def brusselator_point(n_states: int) -> np.ndarray:
    n = n_states // 2
    s = np.arange(1, n + 1) / (n + 1)
    u = 1.0 + 0.5 * np.sin(2.0 * np.pi * s)
    v = 3.0 + 0.5 * np.cos(2.0 * np.pi * s)
    return np.concatenate([u, v])


def rosenbrock_point(n: int) -> np.ndarray:
    return 1.0 + 0.5 * np.sin(np.arange(1.0, n + 1.0))


def workloads() -> list[Workload]:
    out = [
        Workload(
            "robertson",
            "Jacobian, Robertson (3 states)",
            "jacobian",
            robertson,
            ROBERTSON_Y.copy(),
            robertson_analytic,
            ROBERTSON_K,
        )
    ]
    for n in (64, 512):
        out.append(
            Workload(
                f"brusselator{n}",
                f"Jacobian, Brusselator 1-D ({n} states)",
                "jacobian",
                brusselator,
                brusselator_point(n),
                brusselator_analytic,
                (BRUSSELATOR_ALPHA,),
            )
        )
    for n in (2, 10, 100):
        out.append(
            Workload(
                f"rosen_hess{n}",
                f"Hessian, Rosenbrock n={n}",
                "hessian",
                rosenbrock,
                rosenbrock_point(n),
                rosenbrock_hess_analytic,
            )
        )
    out.append(
        Workload(
            "rosen_grad1000",
            "Gradient, Rosenbrock n=1000",
            "grad",
            rosenbrock,
            rosenbrock_point(1000),
            rosenbrock_grad_analytic,
        )
    )
    out.append(
        Workload(
            "elementwise1e6",
            "d/dx sin(x)exp(-x²)+log1p(x²), 1e6 points",
            "derivative",
            bump,
            np.linspace(-3.0, 3.0, 1_000_000),
            bump_analytic,
        )
    )
    # End to end: one full solve_ivp of Robertson's problem over (0, 4e10) with an implicit
    # method, the Jacobian (jac=) supplied by each tool. Settings chosen so that one solve
    # takes some tens of milliseconds here.
    for method in SOLVE_IVP_METHODS:
        out.append(
            Workload(
                f"solve_ivp_{method.lower()}",
                f"solve_ivp {method}, Robertson, t ∈ (0, 4e10)",
                "solve_ivp",
                robertson,
                np.array([1.0, 0.0, 0.0]),
                robertson_analytic,
                ROBERTSON_K,
                ode={
                    "fun": robertson_ode,
                    "t_span": (0.0, 4.0e10),
                    "method": method,
                    "rtol": 1e-6,
                    "atol": 1e-10,
                },
            )
        )
    return out
