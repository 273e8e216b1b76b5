"""Exact derivatives for SciPy's solvers, from the same NumPy code SciPy already calls.

Each adapter compiles the function once (:func:`duals.compile`) and returns what the SciPy
routine takes as its derivative argument(s):

- :func:`ode_jacobian` -> ``jac`` for ``scipy.integrate.solve_ivp`` (BDF, Radau, LSODA);
- :func:`minimize_derivatives` -> ``jac`` and, where the method uses them, ``hess`` or
  ``hessp`` for ``scipy.optimize.minimize``;
- :func:`least_squares_jacobian` -> ``jac`` for ``scipy.optimize.least_squares``;
- :func:`root_jacobian` -> ``jac`` for ``scipy.optimize.root`` (``hybr``, ``lm``).

The returned callables take the arguments in the order SciPy passes them (``jac(x, *args)``,
``jac(t, y, *args)``, ``hessp(x, p, *args)``) and return dense float64 ``numpy.ndarray``
results of the shapes SciPy expects; nothing of SciPy is imported, here or when they run.

Extra arguments. A compiled function records its ``args`` as constants, so the adapters keep
one compiled function per value of ``args``: the callables compile again (once) when SciPy
calls them with other ``args`` and reuse the compiled function when the values are the same.
Numbers, strings, NumPy arrays and tuples, lists and dicts of them are compared by value (an
array changed in place counts as a new value); other objects by identity. A callable called
with no extra arguments uses the ``args`` given to the adapter. At most :data:`MAX_COMPILED`
compiled functions are kept per adapter (the least recently used are dropped).

Branches. A Python branch on a traced value (``if y[0] > 0``) is handled by
:func:`duals.compile`: a point that takes the other branch is traced again, so the derivatives
are always those of the code as written.

Functions the compiled mode cannot record (``duals.compile`` raises its ``TraceError`` for
them, e.g. ``np.sort``) are differentiated with the eager functions (``duals.jacobian``,
``duals.grad``, ``duals.hessian``, ``duals.hvp``) instead, with the same results: slower, since
the function then runs in Python at every call. Other errors of the function propagate.

Example:

>>> import numpy as np, duals.scipy
>>> from scipy.optimize import minimize
>>> def rosen(x):
...     return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
>>> x0 = np.full(4, 0.5)
>>> res = minimize(rosen, x0, method="trust-exact",
...                **duals.scipy.minimize_derivatives(rosen, x0, method="trust-exact"))
>>> bool(res.success), np.allclose(res.x, 1.0, atol=1e-6)
(True, True)
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from . import _api
from ._compile import compile as _compile
from ._trace import TraceError

__all__ = [
    "ode_jacobian",
    "minimize_derivatives",
    "least_squares_jacobian",
    "root_jacobian",
    "MINIMIZE_METHODS",
    "MAX_COMPILED",
]

#: Compiled functions kept per adapter, one per distinct value of the extra arguments.
MAX_COMPILED = 16

#: What :func:`minimize_derivatives` returns for each ``scipy.optimize.minimize`` method
#: (lower case, as SciPy compares them). Derivative-free methods get no keyword arguments
#: (SciPy warns when they are given a ``jac``).
MINIMIZE_METHODS: dict[str, tuple[str, ...]] = {
    "newton-cg": ("jac", "hessp"),
    "trust-ncg": ("jac", "hessp"),
    "trust-krylov": ("jac", "hessp"),
    "trust-exact": ("jac", "hess"),
    "dogleg": ("jac", "hess"),
    "trust-constr": ("jac", "hess"),
    "bfgs": ("jac",),
    "l-bfgs-b": ("jac",),
    "cg": ("jac",),
    "slsqp": ("jac",),
    "tnc": ("jac",),
    "nelder-mead": (),
    "powell": (),
    "cobyla": (),
    "cobyqa": (),
}

# Arrays above this many bytes are keyed by a digest of their contents rather than a copy.
_DIGEST_BYTES = 1024


# ------------------------------------------------------------------------------------------------
# One compiled function per value of the extra arguments
# ------------------------------------------------------------------------------------------------


def _key(obj, depth: int = 0):
    """A hashable key equal for equal values of ``obj`` (by identity past what it understands).

    Keys keep the type (``1`` and ``1.0`` trace differently in general); NaN equals NaN and
    ``-0.0`` differs from ``0.0``. Called on every derivative evaluation: kept cheap for the
    usual tuples of floats.
    """
    t = type(obj)
    if t is float:
        if obj == obj and obj != 0.0:
            return (float, obj)
        return (float, repr(obj))
    if t is int or t is bool or t is str or t is bytes or obj is None:
        return (t, obj)
    if t is tuple or t is list:
        if depth < 8:
            return (t, tuple([_key(o, depth + 1) for o in obj]))
        return ("id", id(obj))
    if t is np.ndarray and obj.dtype.kind in "biufcSU":
        data = obj.tobytes()
        if len(data) > _DIGEST_BYTES:
            data = hashlib.blake2b(data, digest_size=32).digest()
        return (np.ndarray, obj.dtype.str, obj.shape, data)
    if isinstance(obj, np.generic) and obj.dtype.kind in "biufcSU":
        return (np.generic, obj.dtype.str, obj.tobytes())
    if t is complex:
        return (complex, repr(obj))
    if t is dict and depth < 8:
        return (dict, tuple([(_key(k, depth + 1), _key(v, depth + 1)) for k, v in obj.items()]))
    return ("id", id(obj))


def _snapshot(obj, depth: int = 0):
    """``obj`` with the arrays it holds copied, so in-place changes later do not reach a trace."""
    t = type(obj)
    if t is np.ndarray:
        return obj.copy()
    if depth < 8:
        if t is tuple:
            return tuple(_snapshot(o, depth + 1) for o in obj)
        if t is list:
            return [_snapshot(o, depth + 1) for o in obj]
        if t is dict:
            return {k: _snapshot(v, depth + 1) for k, v in obj.items()}
    return obj


class _CompileCache:
    """The compiled functions of one adapter, one per value of ``(args, kwargs)``.

    ``build(x, args, kwargs, eager)`` compiles at the point ``x`` (``eager``: use the eager
    functions instead). ``len(cache)`` is the number kept; ``compiles`` counts the compilations
    done; ``get(x, args)`` returns the compiled function for ``args`` (compiling it at ``x`` if
    needed); ``call(name, x, args, kwargs, *more)`` evaluates its method ``name`` at ``x``;
    ``compiled(args)`` returns the one kept, or None.
    """

    __slots__ = ("_build", "_entries", "_default", "_last", "compiles", "maxsize")

    def __init__(self, build, default_args: tuple, default_kwargs: dict, maxsize: int):
        self._build = build
        self._entries: OrderedDict = OrderedDict()
        self._default = (default_args, default_kwargs)
        # (args, compiled) of the last call whose args were immutable scalars: the same
        # objects again (SciPy passes the same ones at every call) need no key.
        self._last = None
        self.compiles = 0
        self.maxsize = maxsize

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<duals.scipy compile cache: {len(self)} compiled, {self.compiles} compilations>"

    def _resolve(self, args: tuple, kwargs: dict | None):
        if not args and not kwargs:
            args, kwargs = self._default
        key = (_key(args), _key(kwargs) if kwargs else None)
        return args, (kwargs or {}), key

    def compiled(self, args: tuple = (), kwargs: dict | None = None):
        """The compiled function kept for these extra arguments, or None."""
        entry = self._entries.get(self._resolve(args, kwargs)[2])
        return None if entry is None else entry[0]

    def get(self, x: np.ndarray, args: tuple, kwargs: dict | None = None):
        last = self._last
        if not kwargs and last is not None and _same_scalars(args, last[0]):
            return last[1]
        given = args
        args, kwargs, key = self._resolve(args, kwargs)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self._remember(given, kwargs, entry[0])
            return entry[0]
        args, kwargs = _snapshot(args), _snapshot(kwargs)
        c = self._build(x, args, kwargs, False)
        self.compiles += 1
        # The entry holds the arguments, so objects keyed by identity stay alive (their id is
        # not reused by another object while the entry exists).
        self._entries[key] = (c, args, kwargs)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        self._remember(given, kwargs, c)
        return c

    def _remember(self, given: tuple, kwargs, c) -> None:
        immutable = not kwargs and all(type(a) in _SCALARS for a in given)
        self._last = (given, c) if immutable else None

    def call(self, name: str, x: np.ndarray, args: tuple, kwargs: dict | None, *more):
        """``(c, c.name(x, *more))`` with ``c`` the compiled function for these arguments."""
        c = self.get(x, args, kwargs)
        try:
            return c, getattr(c, name)(x, *more)
        except TraceError:
            # A retrace (a branch not taken before) met a function the tape cannot record.
            if isinstance(c, _Eager):  # pragma: no cover - the eager functions do not trace
                raise
            args, kwargs, key = self._resolve(args, kwargs)
            entry = self._entries.get(key)
            c = self._build(x, entry[1], entry[2], True)
            self._entries[key] = (c, entry[1], entry[2])
            self._last = None
            return c, getattr(c, name)(x, *more)


#: Types whose values cannot change: the same object is the same value.
_SCALARS = frozenset({float, int, bool, str, bytes, type(None)})


def _same_scalars(args: tuple, last: tuple) -> bool:
    """Whether ``args`` holds the very objects of ``last`` (immutable scalars, checked when
    ``last`` was remembered)."""
    if len(args) != len(last):
        return False
    for a, b in zip(args, last, strict=True):
        if a is not b:
            return False
    return True


class _Eager:
    """The eager functions (``duals.jacobian``, ...) behind the methods of a ``Compiled``.

    Used for functions :func:`duals.compile` cannot record yet: the same exact derivatives,
    with ``f`` run in Python at every call.
    """

    __slots__ = ("_f", "_args", "out_shape")

    def __init__(self, f, x: np.ndarray, args: tuple):
        self._f = f
        self._args = args
        # One evaluation now: errors of f show here, and it gives the output shape.
        J = np.asarray(self.jacobian(x))
        self.out_shape = J.shape[: J.ndim - x.ndim]

    def __repr__(self) -> str:
        return f"<duals.scipy eager derivatives of {_name(self._f)}: output {self.out_shape}>"

    def jacobian(self, x):
        return _api.jacobian(self._f, x, args=self._args)

    def gradient(self, x):
        return _api.grad(self._f, x, args=self._args)

    def hessian(self, x):
        return _api.hessian(self._f, x, args=self._args)

    def hvp(self, x, v):
        return _api.hvp(self._f, x, v, args=self._args)

    def jacobian_sparse(self, x):
        from scipy import sparse

        J = np.asarray(self.jacobian(x))
        return sparse.csr_array(J.reshape(int(np.prod(self.out_shape)), np.size(x)))


def _trace(f, x: np.ndarray, args: tuple, eager: bool):
    """``duals.compile(f, x, args)``, or the eager functions where the tape cannot record f."""
    if not eager:
        try:
            return _compile(f, x, args=args)
        except TraceError:
            pass
    return _Eager(f, x, args)


# ------------------------------------------------------------------------------------------------
# Checks and conversions
# ------------------------------------------------------------------------------------------------


def _real_vector(x, what: str, flatten: bool = False) -> np.ndarray:
    """``x`` as a float64 array of at least one dimension (SciPy's ``np.atleast_1d``)."""
    a = np.atleast_1d(_api._input(x, what))  # float64; complex and non-numbers raise
    if flatten:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional (as SciPy requires); got shape {a.shape}")
    return a


def _point(x, n: int, what: str, built_for: str) -> np.ndarray:
    """``x`` as a float64 array of shape ``(n,)``: the point SciPy passes to a derivative."""
    a = np.asarray(x)
    if a.dtype != np.float64:
        if a.dtype.kind not in "biuf":
            raise TypeError(
                f"{what} must be real numbers; got dtype {a.dtype} (duals.scipy computes "
                "derivatives of real functions)"
            )
        a = a.astype(np.float64)
    if a.shape != (n,):
        if n == 1 and a.ndim == 0:
            return a.reshape(1)
        raise ValueError(
            f"{what} has shape {a.shape}, but the derivatives were built for {built_for} of "
            f"shape ({n},)"
        )
    return a


def _check_callable(fun, what: str = "fun") -> None:
    if not callable(fun):
        raise TypeError(f"{what} must be callable; got {type(fun).__name__}")


def _name(fun) -> str:
    return getattr(fun, "__name__", None) or type(fun).__name__


def _finish(g: Callable, fun, suffix: str, cache: _CompileCache) -> Callable:
    g.__name__ = f"{_name(fun)}_{suffix}"
    g.__qualname__ = g.__name__
    g.cache = cache
    return g


# ------------------------------------------------------------------------------------------------
# solve_ivp
# ------------------------------------------------------------------------------------------------


def ode_jacobian(fun, y0, t0=0.0, args=(), sparse=False):
    """The exact Jacobian ``d fun / d y`` of an ODE right-hand side, for ``solve_ivp``.

    Returns ``jac(t, y, *args)`` -> float64 array of shape ``(n, n)``, ``n = len(y0)``, as
    ``scipy.integrate.solve_ivp(fun, t_span, y0, method=..., jac=jac)`` takes it for the
    implicit methods BDF, Radau and LSODA.

    ``fun(t, y, *args)`` is compiled with ``t`` as a traced input too, so a right-hand side
    that depends on ``t`` (forcing terms, ``if t > t_switch``) is differentiated correctly at
    every ``t``. ``jac`` is called by solve_ivp with solve_ivp's ``args``; each distinct value
    of them is compiled once (called without ``args``, ``jac`` uses the ``args`` given here).

    ``sparse=True`` returns ``scipy.sparse.csr_array`` Jacobians on the sparsity pattern read
    from the tape, computed in one pass per chunk of column colors (a banded or reaction–
    diffusion system of any size takes a few passes instead of ``n / 16``): for BDF and Radau
    on large systems (LSODA needs dense Jacobians).

    Parameters
    ----------
    fun : callable
        ``fun(t, y, *args)`` returning ``dy/dt`` of shape ``(n,)``, ordinary NumPy code.
    y0 : array_like, shape (n,)
        A state at which to trace ``fun`` (usually the initial state).
    t0 : float
        The time at which to trace ``fun``.
    args : tuple
        Extra arguments of ``fun``, the same as solve_ivp's ``args``.
    sparse : bool
        Return ``scipy.sparse.csr_array`` Jacobians (needs SciPy) instead of dense arrays.

    Examples
    --------
    >>> import numpy as np, duals.scipy
    >>> from scipy.integrate import solve_ivp
    >>> def rober(t, y, k1, k2, k3):
    ...     return np.array([-k1 * y[0] + k3 * y[1] * y[2],
    ...                      k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
    ...                      k2 * y[1] ** 2])
    >>> k = (0.04, 3e7, 1e4)
    >>> jac = duals.scipy.ode_jacobian(rober, [1.0, 0.0, 0.0], args=k)
    >>> jac(0.0, np.array([1.0, 0.0, 0.0]), *k)[0]
    array([-0.04,  0.  ,  0.  ])
    >>> sol = solve_ivp(rober, (0.0, 1e3), [1.0, 0.0, 0.0], method="BDF", args=k, jac=jac,
    ...                 rtol=1e-6, atol=1e-10)
    >>> bool(sol.success), sol.njev > 0
    (True, True)
    """
    _check_callable(fun)
    y0 = _real_vector(y0, "y0")
    n = y0.size
    t0 = float(t0)
    args = _api._args(args)

    def build(z, a, kw, eager):
        def g(z, *a):
            return fun(z[0], z[1:], *a)

        g.__name__ = g.__qualname__ = _name(fun)
        try:
            c = _trace(g, z, a, eager)
        except TypeError as e:
            if hasattr(e, "add_note"):  # Python 3.11+
                e.add_note(
                    "duals.scipy.ode_jacobian traces t as an input as well as y: write what "
                    "depends on t with NumPy functions too (np.exp(t), not math.exp(t) or "
                    "float(t))"
                )
            raise
        if tuple(c.out_shape) not in ((n,), () if n == 1 else (n,)):
            raise ValueError(
                f"fun(t, y) returned shape {tuple(c.out_shape)} for y of shape ({n},); "
                f"solve_ivp needs dy/dt of shape ({n},)"
            )
        return c

    cache = _CompileCache(build, args, {}, MAX_COMPILED)
    cache.get(np.concatenate(([t0], y0)), args)

    def jac(t, y, *args):
        """d fun(t, y, *args) / d y: float64 array of shape (n, n) (duals.scipy)."""
        z = np.empty(n + 1)
        z[0] = t
        z[1:] = _point(y, n, "y", "y0")
        if sparse:
            return cache.call("jacobian_sparse", z, args, None)[1][:, 1:]
        J = cache.call("jacobian", z, args, None)[1]
        return np.ascontiguousarray(np.reshape(J, (n, n + 1))[:, 1:], dtype=np.float64)

    return _finish(jac, fun, "jac", cache)


# ------------------------------------------------------------------------------------------------
# minimize
# ------------------------------------------------------------------------------------------------


def minimize_derivatives(fun, x0, args=(), method=None) -> dict:
    """The exact derivatives of an objective, as keyword arguments of ``minimize``.

    Returns a dict to unpack into ``scipy.optimize.minimize(fun, x0, args=args,
    method=method, **d)``, holding what ``method`` uses:

    - ``jac(x, *args)`` -> gradient, float64 of shape ``(n,)``, for every method that uses
      derivatives;
    - ``hessp(x, p, *args)`` -> Hessian times ``p``, shape ``(n,)`` (the Hessian is never
      formed) for Newton-CG, trust-ncg and trust-krylov;
    - ``hess(x, *args)`` -> dense Hessian, shape ``(n, n)``, for trust-exact, dogleg and
      trust-constr;
    - ``jac`` only for BFGS, L-BFGS-B, CG, SLSQP, TNC and for ``method=None`` (SciPy then
      picks one of BFGS, L-BFGS-B, SLSQP);
    - nothing for the derivative-free Nelder-Mead, Powell, COBYLA and COBYQA;
    - ``jac``, ``hess`` and ``hessp`` for a callable (custom) method.

    The three callables share one compiled function per value of ``args``.

    Parameters
    ----------
    fun : callable
        The objective ``fun(x, *args)`` returning a scalar (or, as SciPy allows, an array of
        one element), ordinary NumPy code.
    x0 : array_like, shape (n,)
        A point at which to trace ``fun`` (usually the initial guess).
    args : tuple
        Extra arguments of ``fun``, the same as minimize's ``args``.
    method : str, callable or None
        The ``method`` that will be passed to ``minimize`` (case-insensitive).

    Raises
    ------
    ValueError
        For a method name SciPy's ``minimize`` does not know (the message lists the known
        ones), an ``x0`` of more than one dimension, or a ``fun`` that does not return a scalar.

    Examples
    --------
    >>> import numpy as np, duals.scipy
    >>> from scipy.optimize import minimize
    >>> def quartic(x, c):
    ...     return np.sum((x - c) ** 4) + np.sum((x - c) ** 2)
    >>> d = duals.scipy.minimize_derivatives(quartic, np.zeros(3), args=(2.0,),
    ...                                      method="Newton-CG")
    >>> sorted(d)
    ['hessp', 'jac']
    >>> res = minimize(quartic, np.zeros(3), args=(2.0,), method="Newton-CG", **d)
    >>> bool(res.success), np.allclose(res.x, 2.0)
    (True, True)
    """
    _check_callable(fun)
    if callable(method):
        wanted: tuple[str, ...] = ("jac", "hess", "hessp")
    elif method is None:
        wanted = ("jac",)
    elif isinstance(method, str) and method.lower() in MINIMIZE_METHODS:
        wanted = MINIMIZE_METHODS[method.lower()]
    else:
        raise ValueError(
            f"unknown minimize method {method!r}; known methods: "
            + ", ".join(MINIMIZE_METHODS)
            + " (case-insensitive), None, or a callable"
        )
    x0 = _real_vector(x0, "x0")
    n = x0.size
    args = _api._args(args)

    def build(x, a, kw, eager):
        c = _trace(fun, x, a, eager)
        out = tuple(c.out_shape)
        if out != () and math.prod(out) == 1:
            # SciPy takes any one-element result as the scalar (np.asarray(fx).item()).
            def scalar(x, *a):
                return np.reshape(fun(x, *a), ())

            scalar.__name__ = scalar.__qualname__ = _name(fun)
            return _trace(scalar, x, a, eager)
        if out != ():
            raise ValueError(
                f"fun(x) returned an array of shape {out}; minimize needs a scalar objective "
                "(return a number: for example y.sum() or y[0] rather than an array)"
            )
        return c

    cache = _CompileCache(build, args, {}, MAX_COMPILED)
    cache.get(x0, args)
    result: dict = {}

    def jac(x, *args):
        """Gradient of fun(x, *args): float64 array of shape (n,) (duals.scipy)."""
        x = _point(x, n, "x", "x0")
        g = cache.call("gradient", x, args, None)[1]
        return np.asarray(g, dtype=np.float64).reshape(n)

    def hess(x, *args):
        """Hessian of fun(x, *args): dense float64 array of shape (n, n) (duals.scipy)."""
        x = _point(x, n, "x", "x0")
        H = cache.call("hessian", x, args, None)[1]
        return np.asarray(H, dtype=np.float64).reshape(n, n)

    def hessp(x, p, *args):
        """Hessian of fun(x, *args) times p: float64 array of shape (n,) (duals.scipy)."""
        x = _point(x, n, "x", "x0")
        p = _point(p, n, "p", "x0")
        Hp = cache.call("hvp", x, args, None, p)[1]
        return np.asarray(Hp, dtype=np.float64).reshape(n)

    for name, g in (("jac", jac), ("hess", hess), ("hessp", hessp)):
        if name in wanted:
            result[name] = _finish(g, fun, name, cache)
    return result


# ------------------------------------------------------------------------------------------------
# least_squares and root
# ------------------------------------------------------------------------------------------------


def _residual_jacobian(fun, x0, args, kwargs, what: str, flatten: bool):
    _check_callable(fun)
    x0 = _real_vector(x0, "x0", flatten=flatten)
    n = x0.size
    args = _api._args(args)
    kwargs = {} if kwargs is None else dict(kwargs)

    def build(x, a, kw, eager):
        if kw:

            def f(x, *a):
                return fun(x, *a, **kw)

            f.__name__ = f.__qualname__ = _name(fun)
        else:
            f = fun
        c = _trace(f, x, a, eager)
        out = tuple(c.out_shape)
        if len(out) > 1:
            raise ValueError(
                f"fun(x) returned an array of shape {out}; {what} needs a scalar or a "
                "one-dimensional array of residuals"
            )
        return c

    cache = _CompileCache(build, args, kwargs, MAX_COMPILED)
    cache.get(x0, args, kwargs)
    return cache, n


def _matrix(c, J, n: int) -> np.ndarray:
    """A Jacobian of output shape ``()`` or ``(m,)`` as a float64 ``(m, n)`` array."""
    return np.asarray(J, dtype=np.float64).reshape(math.prod(c.out_shape), n)


def least_squares_jacobian(fun, x0, args=(), kwargs=None):
    """The exact Jacobian of a residual function, for ``scipy.optimize.least_squares``.

    Returns ``jac(x, *args, **kwargs)`` -> dense float64 array of shape ``(m, n)``, ``m`` the
    number of residuals (``(1, n)`` for a scalar residual), as ``least_squares(fun, x0,
    jac=jac, method=...)`` takes it for every method (trf, dogbox, lm).

    Parameters
    ----------
    fun : callable
        ``fun(x, *args, **kwargs)`` returning the residuals: a scalar or an array of shape
        ``(m,)``, ordinary NumPy code.
    x0 : array_like, shape (n,)
        A point at which to trace ``fun`` (usually the initial guess).
    args, kwargs : tuple, dict
        Extra arguments of ``fun``, the same as least_squares' ``args`` and ``kwargs``; each
        distinct value of them is compiled once.

    Examples
    --------
    >>> import numpy as np, duals.scipy
    >>> from scipy.optimize import least_squares
    >>> t = np.linspace(0.0, 3.0, 20)
    >>> data = 2.0 * np.exp(-1.5 * t) + 0.5
    >>> def residuals(p, t, data):
    ...     return p[0] * np.exp(-p[1] * t) + p[2] - data
    >>> jac = duals.scipy.least_squares_jacobian(residuals, np.ones(3), args=(t, data))
    >>> jac(np.ones(3), t, data).shape
    (20, 3)
    >>> res = least_squares(residuals, np.ones(3), jac=jac, args=(t, data))
    >>> bool(res.success), np.allclose(res.x, [2.0, 1.5, 0.5])
    (True, True)
    """
    cache, n = _residual_jacobian(fun, x0, args, kwargs, "least_squares", flatten=False)

    def jac(x, *args, **kwargs):
        """Jacobian of the residuals fun(x, *args, **kwargs): float64 (m, n) (duals.scipy)."""
        x = _point(x, n, "x", "x0")
        return _matrix(*cache.call("jacobian", x, args, kwargs), n)

    return _finish(jac, fun, "jac", cache)


def root_jacobian(fun, x0, args=()):
    """The exact Jacobian of a system of equations, for ``scipy.optimize.root``.

    Returns ``jac(x, *args)`` -> dense float64 array of shape ``(m, n)`` (``m == n`` for
    ``hybr``; ``lm`` also takes ``m > n``), as ``root(fun, x0, jac=jac, method="hybr")`` or
    ``method="lm"`` take it (the other root methods do not use a Jacobian). ``x0`` is
    flattened, as those methods flatten it.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` returning the equations' values, shape ``(m,)``, ordinary NumPy code.
    x0 : array_like
        A point at which to trace ``fun`` (usually the initial guess).
    args : tuple
        Extra arguments of ``fun``, the same as root's ``args``.

    Examples
    --------
    >>> import numpy as np, duals.scipy
    >>> from scipy.optimize import root
    >>> def circle_line(x, r):
    ...     return np.array([x[0] ** 2 + x[1] ** 2 - r ** 2, x[0] - x[1]])
    >>> jac = duals.scipy.root_jacobian(circle_line, [1.0, 0.5], args=(2.0,))
    >>> sol = root(circle_line, [1.0, 0.5], args=(2.0,), jac=jac, method="hybr")
    >>> bool(sol.success), np.allclose(sol.x, np.sqrt(2.0))
    (True, True)
    """
    cache, n = _residual_jacobian(fun, x0, args, None, "root", flatten=True)

    def jac(x, *args):
        """Jacobian of fun(x, *args): float64 array of shape (m, n) (duals.scipy)."""
        x = _point(x, n, "x", "x0")
        return _matrix(*cache.call("jacobian", x, args, None), n)

    return _finish(jac, fun, "jac", cache)
