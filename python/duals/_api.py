"""The public drivers: derivative, second_derivative, grad, jacobian, jvp, hessian, hvp,
value_and_grad, value_and_jacobian.

Each evaluates the user's function on dual numbers (eager mode): the input ``x`` becomes a
:class:`~duals.DualArray` whose tangent rows are seed directions, ``f`` runs as ordinary NumPy
code, and the derivatives are read from the tangents of what it returns (see ``_collect``).

* First-order drivers seed ``k`` unit vectors at a time (``chunk``): a Jacobian of ``n`` inputs
  takes ``ceil(n / k)`` evaluations of ``f``.
* Second-order drivers seed hyper-dual numbers (:class:`~duals._core.Seed` ``second(k1, k2)``):
  the mixed part ``e12[i, j]`` of the output is ``e1[i]ᵀ H e2[j]``.

``f`` runs with NumPy's floating-point *warnings* turned off (settings of ``"raise"`` or
``"call"`` are kept): NaN and infinity propagate through values and derivatives as IEEE
arithmetic says, and tangent arithmetic such as ``inf * 0`` (the derivative of ``sqrt`` at 0
times a zero direction) does not warn where the values alone would not.
"""

from __future__ import annotations

import functools
import math
import numbers
import os

import numpy as np

from ._collect import collect
from ._core import DualArray, Seed, _DualBase, _make
from ._native import (
    _alloc_enter,
    _alloc_exit,
    _banded_jacobian,
    _call,
    _jacobian_rows,
    _seeded,
    _unit_tangent_array,
)

__all__ = [
    "derivative",
    "second_derivative",
    "grad",
    "jacobian",
    "jvp",
    "hessian",
    "hvp",
    "value_and_grad",
    "value_and_jacobian",
]

# Default tangent widths, measured on 2 cores (eager mode; vectorized Brusselator Jacobians,
# Rosenbrock Hessians): a pass costs Python overhead plus arithmetic on (K, n) tangents, which is
# fastest while those stay in cache. First order: all n directions in one pass while the tangent
# block has at most _FIRST_BLOCK elements (n <= 512; Brusselator-512 with the block cache and
# the helper thread: 512 directions ~0.74 ms, 256 ~0.96, 128 ~0.90), else balanced passes of at
# most max(_FIRST_BLOCK // n, 128) directions (Brusselator-1024: 256 ~5.6 ms, 128 ~5.9, 512
# ~6.1); second-order blocks of up to 32 inputs (2b + b² rows; one pass for n <= 32), and at
# most _TANGENT_BUDGET tangent elements per array for large n.
_FIRST_WIDTH = 128
_FIRST_BLOCK = 1 << 18
_HVP_WIDTH = 64
_BLOCK = 32
_TANGENT_BUDGET = 1 << 22

# Tangent blocks (K * n elements) from which the drivers evaluate with NumPy's allocator set to
# the block cache of the native module (rust/duals-py/src/alloc.rs): freed blocks are reused
# instead of being returned to the system and faulted in again page by page.
_CACHE_ABOVE = 1 << 15

# Arrays below this size are allocated without asking the system for the memory available.
_SMALL_BYTES = 1 << 26


# ------------------------------------------------------------------------------------------------
# Inputs, outputs, memory
# ------------------------------------------------------------------------------------------------


_F64 = np.dtype(np.float64)


def _input(x, what: str = "x") -> np.ndarray:
    """``x`` as a new float64 array (lists, ints and bools promoted)."""
    if type(x) is np.ndarray and x.dtype is _F64:
        return np.array(x)
    if isinstance(x, _DualBase):
        raise TypeError(
            f"{what} is already a dual number: nested differentiation (a derivative of a "
            "derivative) is not supported; use second_derivative, hessian or hvp"
        )
    a = np.asarray(x)
    if a.dtype.kind == "c":
        raise TypeError(
            f"{what} is complex (dtype {a.dtype}): duals differentiates real functions; pass "
            "the real and imaginary parts as separate real inputs"
        )
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{what} must be real numbers (float, int or bool); got an array of dtype {a.dtype}"
        )
    return np.array(a, dtype=np.float64)


def _args(args) -> tuple:
    return args if isinstance(args, tuple) else (args,)


def _chunk(chunk, n: int, default: int) -> int:
    if chunk is None:
        return default if 1 <= default <= n else max(1, min(n, default))
    if isinstance(chunk, bool) or not isinstance(chunk, numbers.Integral):
        raise TypeError(f"chunk must be a positive integer or None; got {chunk!r}")
    if chunk < 1:
        raise ValueError(f"chunk must be a positive integer or None; got {chunk}")
    return int(max(1, min(n, chunk)))


def _default_first(n: int, width: int | None = None) -> int:
    """Default number of first-order directions per evaluation for ``n`` inputs (at most
    ``width`` if given)."""
    if width is None:
        if n * n <= _FIRST_BLOCK:
            return max(n, 1)
        k = min(max(_FIRST_BLOCK // n, _FIRST_WIDTH), max(8, _TANGENT_BUDGET // n))
        return -(-n // -(-n // k))  # balanced: ceil(n / passes) for the fewest passes of <= k
    if n <= width:
        return max(n, 1)  # the formula below, for small n
    return max(1, min(n, width, max(8, _TANGENT_BUDGET // max(n, 1))))


def _default_block(n: int) -> int:
    """Default block size ``b`` of second-order seeds (``2b + b²`` tangent rows)."""
    return max(1, min(n, _BLOCK, max(2, math.isqrt(_TANGENT_BUDGET // max(n, 1)))))


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} PiB"  # pragma: no cover


def _check_memory(shape: tuple[int, ...], what: str, hint: str) -> None:
    """MemoryError before allocating a float64 array of ``shape`` that cannot fit."""
    nbytes = 8 * math.prod(shape)
    if nbytes < _SMALL_BYTES:
        return
    avail = _available_bytes()
    if avail is not None and nbytes > avail:
        raise MemoryError(
            f"the {what} has shape {shape} and would need {_human(nbytes)}, more than the "
            f"{_human(avail)} of memory available; {hint}"
        )


def _quiet_errstate() -> np.errstate:
    """NumPy's current floating-point error handling with "warn" turned into "ignore"."""
    return np.errstate(**{k: "ignore" if v == "warn" else v for k, v in np.geterr().items()})


try:  # NumPy 2: the error state is a context variable holding an opaque object
    from numpy._core._ufunc_config import _extobj_contextvar
except ImportError:  # pragma: no cover - NumPy 1.x
    _extobj_contextvar = None


def _quiet_state():
    """The error state that ``_quiet_errstate()`` sets on top of the current one (read by the
    native ``_call``, which keeps it per current state)."""
    with _quiet_errstate():
        return _extobj_contextvar.get()


if _extobj_contextvar is None:  # pragma: no cover - NumPy 1.x

    def _call(f, x, args: tuple):  # noqa: F811 - NumPy 1: no context variable to set natively
        """``f(x, *args)`` with NumPy's floating-point warnings off (see ``_native._call``)."""
        with _quiet_errstate():
            return f(x, *args)


def _collected(y, seed: Seed):
    """``(primal, tangent or None)`` of what ``f`` returned, checking its seed."""
    yp, yt, ys = collect(y)
    if ys is None:
        return yp, None
    if ys is not seed and ys != seed:
        raise ValueError(
            "the function returned dual numbers that do not come from its input "
            f"(their tangent layout is {ys}, the input's is {seed}); do not keep dual numbers "
            "from one call for the next"
        )
    return yp, yt


def _evaluate(f, p: np.ndarray, t, seed: Seed, args: tuple, copy: bool = True, primal: bool = True):
    """Run ``f`` on the dual array ``(p, t)`` and collect ``(primal, tangent or None)``.

    ``t=None`` is one tangent row of ones (made only if something needs it: a fused elementwise
    chain reads no stream of ones). ``copy=False`` hands ``p`` itself to ``f`` (which may modify
    its argument in place): only for a single evaluation on a private copy of the user's input.
    ``primal=False``: the caller reads only the tangent (and the primal's shape): a pending result
    is evaluated without its primal."""
    if copy:
        p = p.copy()
    if t is None and p.ndim > 0 and p.flags.c_contiguous:
        x = _unit_tangent_array(p, seed)
    else:
        x = _make(p, np.ones((1,) + p.shape) if t is None else t, seed)
    if type(x) is DualArray:
        # p and t are new arrays nothing else holds: elementwise chains on x may be deferred
        # and fused (see rust/duals-py/src/lazy.rs).
        x._own()
    y = _call(f, x, args)
    if not primal and type(y) is DualArray and y._pending and (y._s is seed or y._s == seed):
        return np.empty(y.shape), y._tangent_only()
    return _collected(y, seed)


def _result(a, scalar: bool):
    """A Python float for a scalar result of a scalar input, else a float64 ndarray."""
    a = np.asarray(a, dtype=np.float64)
    if scalar and a.ndim == 0:
        return float(a)
    return a


def _need_scalar(driver: str, yp: np.ndarray, alternative: str) -> None:
    if yp.shape != ():
        raise ValueError(
            f"{driver} needs f to return a scalar; f returned shape {yp.shape}: "
            f"did you mean {alternative}?"
        )


def _unit_rows(i0: int, i1: int, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """Unit vectors ``e_i`` for ``i`` in ``[i0, i1)``, each of ``shape``: ``(i1 - i0, *shape)``
    (a new array: ``f`` may write into its argument)."""
    if (i1 - i0) * n <= 4096:
        t = _small_unit_rows(i0, i1, n).copy()
    else:
        t = np.eye(i1 - i0, n, k=i0)
    return t if len(shape) == 1 else t.reshape((i1 - i0,) + shape)


@functools.lru_cache(maxsize=64)
def _small_unit_rows(i0: int, i1: int, n: int) -> np.ndarray:
    t = np.eye(i1 - i0, n, k=i0)
    t.flags.writeable = False
    return t


#: ``Seed.first(k)`` for the widths in use (seeds are compared by value; sharing them is safe).
_first_seed = functools.lru_cache(maxsize=256)(Seed.first)


# ------------------------------------------------------------------------------------------------
# Elementwise derivatives
# ------------------------------------------------------------------------------------------------


def derivative(f, x, args=(), chunk=None):
    """Elementwise first derivative ``f'(x)``.

    For ``f`` acting elementwise (``np.tanh``, ``lambda x: x**2 * np.sin(x)``) this is the
    ordinary derivative at every element of ``x``. In general it is the directional
    derivative along the all-ones direction, ``d/dt f(x + t·1)`` at ``t = 0``, that is
    ``J @ ones`` with ``J`` the Jacobian; one evaluation of ``f`` on dual numbers.

    Parameters
    ----------
    f : callable
        ``f(x, *args)``, ordinary NumPy code.
    x : float or array_like
        The point, any shape; ints, bools and lists are promoted to float64.
    args : tuple, optional
        Extra arguments passed to ``f``.
    chunk : int, optional
        Accepted for uniformity with the other drivers; one direction is always enough here.

    Returns
    -------
    float or ndarray
        Shape ``f(x).shape``; a Python float if ``x`` and ``f(x)`` are scalars.

    Examples
    --------
    >>> import numpy as np, duals
    >>> duals.derivative(lambda x: x**3, 2.0)                     # 3 x**2 = 12
    12.0
    >>> duals.derivative(np.sin, np.array([0.0, np.pi]))          # cos(x)
    array([ 1., -1.])
    """
    x0 = _input(x)
    args = _args(args)
    _chunk(chunk, 1, 1)
    yp, yt = _evaluate(f, x0, None, Seed.first(1), args, copy=False, primal=False)
    d = np.zeros(yp.shape) if yt is None else yt[0]
    return _result(d, x0.ndim == 0)


def second_derivative(f, x, args=(), chunk=None):
    """Elementwise second derivative ``f''(x)``.

    For ``f`` acting elementwise this is the ordinary second derivative at every element; in
    general it is ``d²/dt² f(x + t·1)`` at ``t = 0``, i.e. ``onesᵀ H ones`` for each output.
    One evaluation of ``f`` on hyper-dual numbers (exact, no finite differences).

    Parameters
    ----------
    f : callable
        ``f(x, *args)``.
    x : float or array_like
        The point, any shape.
    args : tuple, optional
        Extra arguments passed to ``f``.
    chunk : int, optional
        Accepted for uniformity; one direction is always enough here.

    Returns
    -------
    float or ndarray
        Shape ``f(x).shape``; a Python float if ``x`` and ``f(x)`` are scalars.

    Examples
    --------
    >>> import numpy as np, duals
    >>> duals.second_derivative(lambda x: x**3, 2.0)              # 6 x = 12
    12.0
    >>> duals.second_derivative(np.exp, np.array([0.0, 1.0]))     # exp(x)
    array([1.        , 2.71828183])
    """
    x0 = _input(x)
    args = _args(args)
    _chunk(chunk, 1, 1)
    seed = Seed.second(1, 1)
    ones = np.ones((1,) + x0.shape)
    t = seed.join(ones, ones, np.zeros((1, 1) + x0.shape))
    yp, yt = _evaluate(f, x0, t, seed, args, copy=False)
    d = np.zeros(yp.shape) if yt is None else yt[2]
    return _result(d, x0.ndim == 0)


# ------------------------------------------------------------------------------------------------
# First order: jacobian, grad, jvp
# ------------------------------------------------------------------------------------------------


def _one_pass(f, x0: np.ndarray, args: tuple, driver: str, value: bool = True):
    """``(f(x0) primal or None, its shape, J of shape (m, n))`` from one evaluation of ``f`` with
    all ``n = x0.size`` directions seeded; the primal is None if not ``value`` and ``f``
    returned dual scalars. ``x0`` is a private copy (``f`` may write into it)."""
    n = x0.size
    seed = _first_seed(n)
    # x0 and the seed rows are new arrays nothing else holds: x is private, so elementwise
    # chains on x (and on its slices) may be deferred and fused (see rust/duals-py/src/lazy.rs).
    if x0.ndim == 1:  # _make(x0, _unit_rows(0, n, n, x0.shape), seed), in one native call
        x = _seeded(x0, seed)
    else:
        x = _make(x0, _unit_rows(0, n, n, x0.shape), seed)
        if type(x) is DualArray:
            x._own()
    y = _call(f, x, args)
    # A list or array of Duals (ODE right-hand sides): the Jacobian's rows natively
    rows = _jacobian_rows(y, seed, value or driver == "grad")
    if rows is not None:
        yp, shape, J = rows
        if driver == "grad":
            _need_scalar("grad", yp, "jacobian")
        return yp, shape, J
    banded = _banded(y, seed, n, driver)
    if banded is not None:
        return banded[0], banded[0].shape, banded[1]
    yp, yt = _collected(y, seed)
    if driver == "grad":
        _need_scalar("grad", yp, "jacobian")
    _check_memory(
        (yp.size, n),
        "Jacobian",
        "use jvp (Jacobian-vector products) or evaluate blocks of outputs separately",
    )
    # The transpose as a view: a transposing copy costs more than the evaluation for large n
    J = np.zeros((yp.size, n)) if yt is None else yt.reshape(n, yp.size).T
    return yp, yp.shape, J


def _banded(y, seed: Seed, n: int, driver: str):
    """``(f(x) primal, J of shape (m, n))`` if ``f`` returned a DualArray whose tangent stayed
    banded (rust/duals-py/src/band.rs: every one of the ``n`` directions, whatever the seed's
    width), else None."""
    if type(y) is not DualArray or not y._banded:
        return None
    _check_memory(
        (y.size, n),
        "Jacobian",
        "use jvp (Jacobian-vector products) or evaluate blocks of outputs separately",
    )
    r = _banded_jacobian(y, seed)
    if r is not None and driver == "grad":
        _need_scalar("grad", r[0], "jacobian")
    return r


def _jacobian(f, x, args, chunk, driver: str):
    """``(f(x) primal, J of shape (m, n), x0)``, checking a scalar output for ``grad``."""
    x0 = _input(x)
    args = _args(args)
    n = x0.size
    k = _chunk(chunk, n, _default_first(n))
    if n == 0:
        yp, _ = collect(f(x0.copy(), *args))[:2]
        if driver == "grad":
            _need_scalar("grad", yp, "jacobian")
        return yp, np.zeros((yp.size, 0)), x0
    _check_memory((k, n), "seed of the tangent chunk", "pass a smaller chunk=")
    # Large tangent blocks: NumPy's allocator keeps freed blocks for reuse meanwhile
    previous = _alloc_enter() if k * n >= _CACHE_ABOVE else None
    try:
        if k == n:  # one evaluation, on x0 itself (a private copy; only its shape is used below)
            yp, _, J = _one_pass(f, x0, args, driver)
            return yp, J, x0
        return _chunks(f, x0, args, k, driver)
    finally:
        if previous is not None:
            _alloc_exit(previous)


def _chunks(f, x0: np.ndarray, args: tuple, k: int, driver: str):
    """``(f(x0) primal, J, x0)`` from evaluations with ``k`` directions at a time."""
    n = x0.size
    Jt = None  # J transposed, filled row block by row block (contiguous copies)
    yp = None
    for c0 in range(0, n, k):
        c1 = min(n, c0 + k)
        seed = _first_seed(c1 - c0)
        if c0 == 0 and x0.ndim == 1:
            # The first chunk seeded natively: a banded tangent keeps every direction, and a
            # banded result is the whole Jacobian from this one evaluation.
            y = _call(f, _seeded(x0.copy(), seed), args)
            banded = _banded(y, seed, n, driver)
            if banded is not None:
                return banded[0], banded[1], x0
            yp_c, yt = _collected(y, seed)
        else:
            yp_c, yt = _evaluate(f, x0, _unit_rows(c0, c1, n, x0.shape), seed, args)
        if Jt is None:
            yp = yp_c
            if driver == "grad":
                _need_scalar("grad", yp, "jacobian")
            _check_memory(
                (yp.size, n),
                "Jacobian",
                "use jvp (Jacobian-vector products) or evaluate blocks of outputs separately",
            )
            Jt = np.empty((n, yp.size))
        elif yp_c.shape != yp.shape:
            raise ValueError(
                f"f returned shape {yp_c.shape} on one chunk of directions and {yp.shape} on "
                "another; its output shape must not depend on the tangents"
            )
        if yt is None:
            Jt[c0:c1] = 0.0
        else:
            Jt[c0:c1] = yt.reshape(c1 - c0, yp.size)
    return yp, Jt.T, x0


def jacobian(f, x, args=(), chunk=None):
    """Jacobian ``J[i, j] = d f_i / d x_j``, exact, of shape ``f(x).shape + x.shape``.

    ``f`` is evaluated on dual numbers carrying ``chunk`` unit directions at a time: a
    Jacobian of ``n = x.size`` inputs takes ``ceil(n / chunk)`` evaluations.

    Parameters
    ----------
    f : callable
        ``f(x, *args)``, ordinary NumPy code; it may return an array, a scalar, or a
        list/tuple/object array of dual numbers (e.g. ``np.array([...])``).
    x : float or array_like
        The point, any shape; ints, bools and lists are promoted to float64.
    args : tuple, optional
        Extra arguments passed to ``f``.
    chunk : int, optional
        Number of directions per evaluation (tangent width). Default: all ``n`` at once for
        ``n <= 512``, else equal chunks of at most ``max(2**18 // n, 128)`` (fewer for very
        large ``n``, to bound memory).

    Returns
    -------
    float or ndarray
        Shape ``f(x).shape + x.shape``; a Python float if ``x`` and ``f(x)`` are scalars.

    Notes
    -----
    Banded Jacobians: for a 1-d ``x`` with ``n * chunk >= 4096``, the tangents start as the
    diagonal of the identity and stay a few diagonals through elementwise arithmetic, the
    ufuncs with a rule, ``x ** c``, slices ``x[a:b]``, ``np.concatenate``, ``np.roll``,
    ``np.diff``, element reads ``x[i]``, and writes into ``np.zeros_like(x)`` of slices (and,
    in one evaluation, of Duals into elements: boundary rows), as a method-of-lines right-hand
    side writes them.
    If ``f`` returns such an array, its one evaluation gives the whole Jacobian, at a cost of
    ``n`` times the number of diagonals instead of ``n * chunk``. Anything else makes the
    tangent dense (the chunk's rows), with the same results.

    Examples
    --------
    >>> import numpy as np, duals
    >>> def polar(p):                                  # (r, θ) -> (r cos θ, r sin θ)
    ...     return np.array([p[0] * np.cos(p[1]), p[0] * np.sin(p[1])])
    >>> duals.jacobian(polar, [2.0, 0.0])              # [[cos θ, -r sin θ], [sin θ, r cos θ]]
    array([[1., 0.],
           [0., 2.]])
    """
    if (  # one evaluation on a small float64 array: the fast path (np.array(x) is _input(x))
        chunk is None
        and type(x) is np.ndarray
        and x.dtype is _F64
        and 0 < x.size <= _FIRST_WIDTH
        and type(args) is tuple
    ):
        _, shape, J = _one_pass(f, np.array(x), args, "jacobian", False)
        if len(shape) == 1 and x.ndim == 1:
            return J
        return _result(J.reshape(shape + x.shape), x.ndim == 0)
    yp, J, x0 = _jacobian(f, x, args, chunk, "jacobian")
    return _result(J.reshape(yp.shape + x0.shape), x0.ndim == 0)


def value_and_jacobian(f, x, args=(), chunk=None):
    """``(f(x), jacobian(f, x))`` from the same evaluations.

    Returns
    -------
    value : float or ndarray
        ``f(x)``, shape ``f(x).shape`` (a Python float if ``x`` and ``f(x)`` are scalars).
    jac : float or ndarray
        Shape ``f(x).shape + x.shape``, ``J[i, j] = d f_i / d x_j``.

    Examples
    --------
    >>> import numpy as np, duals
    >>> v, J = duals.value_and_jacobian(lambda x: x**2, np.array([1.0, 3.0]))
    >>> v                                              # x**2
    array([1., 9.])
    >>> J                                              # diag(2 x)
    array([[2., 0.],
           [0., 6.]])
    """
    yp, J, x0 = _jacobian(f, x, args, chunk, "value_and_jacobian")
    scalar = x0.ndim == 0
    return _result(yp, scalar), _result(J.reshape(yp.shape + x0.shape), scalar)


def grad(f, x, args=(), chunk=None):
    """Gradient ``g[j] = d f / d x_j`` of a scalar function, shape ``x.shape``.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` returning a scalar (shape ``()``).
    x : float or array_like
        The point, any shape.
    args : tuple, optional
        Extra arguments passed to ``f``.
    chunk : int, optional
        Number of directions per evaluation (see :func:`jacobian`).

    Returns
    -------
    float or ndarray
        Shape ``x.shape``; a Python float if ``x`` is a scalar.

    Raises
    ------
    ValueError
        If ``f`` does not return a scalar.

    Examples
    --------
    >>> import numpy as np, duals
    >>> M = np.array([[1.0, 2.0], [0.0, 3.0]])
    >>> a = np.array([1.0, 1.0])
    >>> duals.grad(lambda a: a @ M @ a, a)             # (M + Mᵀ) a
    array([4., 8.])
    """
    yp, J, x0 = _jacobian(f, x, args, chunk, "grad")
    return _result(J.reshape(x0.shape), x0.ndim == 0)


def value_and_grad(f, x, args=(), chunk=None):
    """``(f(x), grad(f, x))`` from the same evaluations.

    Returns
    -------
    value : float
        ``f(x)``, a Python float.
    grad : float or ndarray
        Shape ``x.shape`` (a Python float if ``x`` is a scalar).

    Examples
    --------
    >>> import numpy as np, duals
    >>> duals.value_and_grad(lambda x: x @ x, np.array([1.0, 2.0]))   # (|x|², 2x)
    (5.0, array([2., 4.]))
    """
    yp, J, x0 = _jacobian(f, x, args, chunk, "grad")
    return float(yp), _result(J.reshape(x0.shape), x0.ndim == 0)


def jvp(f, x, v, args=(), chunk=None):
    """Jacobian-vector product: ``(f(x), J @ v)`` in one evaluation of ``f``.

    ``(J @ v)[i] = Σ_j d f_i / d x_j · v_j`` (the directional derivative of ``f`` along ``v``),
    without forming ``J``.

    Parameters
    ----------
    f : callable
        ``f(x, *args)``.
    x : float or array_like
        The point, any shape.
    v : float or array_like
        The direction, the same shape as ``x``.
    args : tuple, optional
        Extra arguments passed to ``f``.
    chunk : int, optional
        Accepted for uniformity; one direction is one evaluation.

    Returns
    -------
    value : float or ndarray
        ``f(x)``, shape ``f(x).shape``.
    tangent : float or ndarray
        ``J @ v``, shape ``f(x).shape``. Python floats if ``x`` and ``f(x)`` are scalars.

    Raises
    ------
    ValueError
        If ``v.shape != x.shape``.

    Examples
    --------
    >>> import numpy as np, duals
    >>> x, v = np.array([1.0, 2.0]), np.array([3.0, 0.0])
    >>> duals.jvp(lambda x: x**2, x, v)                # (x**2, 2 x v)
    (array([1., 4.]), array([6., 0.]))
    """
    x0 = _input(x)
    v0 = _input(v, "v")
    if v0.shape != x0.shape:
        raise ValueError(f"v must have the shape of x: x has shape {x0.shape}, v has {v0.shape}")
    args = _args(args)
    _chunk(chunk, 1, 1)
    yp, yt = _evaluate(f, x0, v0[np.newaxis], Seed.first(1), args, copy=False)
    t = np.zeros(yp.shape) if yt is None else yt[0]
    scalar = x0.ndim == 0
    return _result(yp, scalar), _result(t, scalar)


# ------------------------------------------------------------------------------------------------
# Second order: hessian, hvp
# ------------------------------------------------------------------------------------------------


def hessian(f, x, args=(), chunk=None):
    """Hessian ``H[i, j] = d² f / d x_i d x_j`` of a scalar function, exact and symmetric,
    shape ``x.shape + x.shape``.

    Computed by seeding hyper-dual numbers: with first-order parts ``e1`` = unit vectors of a
    block ``I`` of inputs and ``e2`` = unit vectors of a block ``J``, the mixed part of ``f`` is
    ``H[I, J]``. Small ``n`` takes one evaluation (``I = J`` = all inputs); larger ``n`` takes one
    per pair of blocks ``I <= J`` and mirrors the rest (``H`` is exactly symmetric).

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` returning a scalar.
    x : float or array_like
        The point, any shape.
    args : tuple, optional
        Extra arguments passed to ``f``.
    chunk : int, optional
        Block size (inputs per block). Default: all inputs at once for ``n <= 32``, else
        blocks of 32.

    Returns
    -------
    float or ndarray
        Shape ``x.shape + x.shape``; a Python float if ``x`` is a scalar.

    Raises
    ------
    ValueError
        If ``f`` does not return a scalar.
    MemoryError
        If the dense Hessian cannot fit in memory (raised before evaluating ``f``).

    Examples
    --------
    >>> import numpy as np, duals
    >>> def rosen(x):                    # (1 - x0)² + 100 (x1 - x0²)²
    ...     return (1 - x[0])**2 + 100 * (x[1] - x[0]**2)**2
    >>> duals.hessian(rosen, [1.0, 1.0])  # [[2 - 400 (x1 - 3 x0²), -400 x0], [-400 x0, 200]]
    array([[ 802., -400.],
           [-400.,  200.]])
    """
    x0 = _input(x)
    args = _args(args)
    n = x0.size
    _check_memory((n, n), "Hessian", "use hvp (Hessian-vector products) instead")
    b = _chunk(chunk, n, _default_block(n))
    if n == 0:
        yp, _ = collect(f(x0.copy(), *args))[:2]
        _need_scalar("hessian", yp, "jacobian")
        return np.zeros(x0.shape + x0.shape)
    H = np.empty((n, n))
    starts = list(range(0, n, b))
    for bi, i0 in enumerate(starts):
        i1 = min(n, i0 + b)
        for j0 in starts[bi:]:
            j1 = min(n, j0 + b)
            seed = Seed.second(i1 - i0, j1 - j0)
            t = seed.join(
                _unit_rows(i0, i1, n, x0.shape),
                _unit_rows(j0, j1, n, x0.shape),
                np.zeros((i1 - i0, j1 - j0) + x0.shape),
            )
            yp, yt = _evaluate(f, x0, t, seed, args)
            _need_scalar("hessian", yp, "jacobian")
            if yt is None:
                block = np.zeros((i1 - i0, j1 - j0))
            else:
                block = seed.split(yt)[2].reshape(i1 - i0, j1 - j0)
            if i0 == j0:
                block = np.triu(block) + np.triu(block, 1).T
            H[i0:i1, j0:j1] = block
            H[j0:j1, i0:i1] = block.T
    return _result(H.reshape(x0.shape + x0.shape), x0.ndim == 0)


def hvp(f, x, v, args=(), chunk=None):
    """Hessian-vector product ``H @ v``, ``(H v)[j] = Σ_i d² f / d x_j d x_i · v_i``, shape
    ``x.shape``, without forming ``H``.

    Seeds hyper-dual numbers with ``e1 = v`` and ``e2`` = unit vectors of ``chunk`` inputs at a
    time: the mixed part ``vᵀ H e_j`` is ``(H v)_j``.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` returning a scalar.
    x : float or array_like
        The point, any shape.
    v : float or array_like
        The vector, the shape of ``x``.
    args : tuple, optional
        Extra arguments passed to ``f``.
    chunk : int, optional
        Unit directions per evaluation. Default: all at once for ``n <= 64``, else 64 at a
        time.

    Returns
    -------
    float or ndarray
        Shape ``x.shape``; a Python float if ``x`` is a scalar.

    Raises
    ------
    ValueError
        If ``f`` does not return a scalar, or ``v.shape != x.shape``.

    Examples
    --------
    >>> import numpy as np, duals
    >>> f = lambda x: x[0]**2 * x[1]
    >>> duals.hvp(f, [1.0, 2.0], [1.0, 0.0])          # [[2 x1, 2 x0], [2 x0, 0]] @ v
    array([4., 2.])
    """
    x0 = _input(x)
    v0 = _input(v, "v")
    if v0.shape != x0.shape:
        raise ValueError(f"v must have the shape of x: x has shape {x0.shape}, v has {v0.shape}")
    args = _args(args)
    n = x0.size
    k = _chunk(chunk, n, _default_first(n, _HVP_WIDTH))
    if n == 0:
        yp, _ = collect(f(x0.copy(), *args))[:2]
        _need_scalar("hvp", yp, "jvp")
        return np.zeros(x0.shape)
    out = np.empty(n)
    for c0 in range(0, n, k):
        c1 = min(n, c0 + k)
        seed = Seed.second(1, c1 - c0)
        t = seed.join(
            v0[np.newaxis], _unit_rows(c0, c1, n, x0.shape), np.zeros((1, c1 - c0) + x0.shape)
        )
        yp, yt = _evaluate(f, x0, t, seed, args)
        _need_scalar("hvp", yp, "jvp")
        out[c0:c1] = 0.0 if yt is None else seed.split(yt)[2].reshape(c1 - c0)
    return _result(out.reshape(x0.shape), x0.ndim == 0)
