"""NumPy functions on dual numbers: the ``__array_function__`` protocol (NEP 18 and NEP 35).

Every supported function is registered in :data:`HANDLED` by the :func:`implements` decorator;
:func:`array_function` looks the function up and raises ``TypeError`` naming it when there is no
rule (NumPy's own fallbacks would call ``asarray`` on the dual array and lose the derivative).

The rules come in three kinds:

* **Linear structural** functions (reshape, transpose, concatenate, sum, cumsum, roll, pad, ...)
  act on the primal and on the tangent alike: the tangent ``(K, *S)`` gets the same operation with
  every axis shifted by one (negative axes are normalized against the primal's ``ndim`` first).
  They are exact for first- and second-order seeds, since the tangent rows of a hyper-dual array
  transform linearly under a linear map.
* **Compositions** of dual arithmetic (prod, std, var, norm, polyval, max/min/sort by selection,
  where, clip, ...): they inherit the first- and second-order chain rules of ``duals._core``.
* **Tangent rules** (bilinear products, solve, inv, det, slogdet, eigh, cholesky): a function
  ``rule(primals, tangents) -> [(value, tangent), ...]`` written with NumPy calls only, so that it
  runs on plain arrays (first order) and, unchanged, on first-order dual arrays. A second-order
  seed is handled by :func:`_lift`: a hyper-dual number ``p + e1 ε1 + e2 ε2 + e12 ε1ε2`` is the
  first-order dual (in ε1) of first-order duals (in ε2), ``(p + e2 ε2) + (e1 + e12 ε2) ε1``, so
  the same rule evaluated on first-order dual arrays gives ``e12`` exactly.

Creation functions: ``zeros_like``/``ones_like``/``empty_like``/``full_like`` of a dual array, and
``zeros``/``ones``/``empty``/``full``/``eye``/``identity``/``tri``/``array``/``asarray`` (and
friends) with ``like=x``, return a dual array with the same tangent layout as ``x`` and zero
tangents, ready to be filled (``dy = np.zeros_like(y); dy[0] = ...``); ``empty*`` return zeros.
With an integer or boolean ``dtype`` they return plain NumPy arrays (a mask or an index has no
derivative). Grids (``arange(..., like=x)``, ``fromfunction``) are plain ``ndarray`` constants;
``linspace``/``logspace`` return dual arrays only when an endpoint is dual.

Comparisons (``isclose``, ``allclose``, ``array_equal``), index functions (``argmax``,
``argsort``, ``nonzero``, ``searchsorted``, ...) and predicates look at primal values and return
plain arrays. ``round``/``around``/``fix`` have derivative zero. Selections (``max``, ``sort``,
``median``, ``clip``, ``where``) differentiate the selected element (the first one on ties, as
``argmax`` picks it). Matrix functions assume what their formulas need: ``solve``/``inv``/
``slogdet`` a nonsingular matrix (``det`` also works at singular ones, via the adjugate, for
first derivatives), ``eigh`` distinct eigenvalues, ``pinv``/``lstsq`` a locally constant rank.

Deliberately not registered (they raise ``TypeError`` naming the function): the FFT (complex
results), ``eig``/``eigvals``/``svd``/``qr`` and other decompositions, set and counting
functions (``unique``, ``histogram``, ``partition``), I/O and printing (``save``,
``array_repr``), and everything else without a rule here.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from . import _native
from . import _trace as _tracer
from ._core import (
    _LOST,
    TRACE,
    Dual,
    DualArray,
    Seed,
    _DualBase,
    _expand,
    _full_tangent,
    _make,
    _parts,
    _seed_of,
    _traced,
    _tv,
    compare,
    constant,
    mul,
    select,
    unary,
)

__all__ = ["HANDLED", "TRACE_SAFE", "array_function", "implements"]

#: NumPy function -> its implementation on dual numbers.
HANDLED: dict = {}
# Creation functions whose tangent layout comes from the ``like=`` object (NEP 35).
_LIKE: set = set()
_NV = getattr(np, "_NoValue", object())
_NUMPY2 = int(np.__version__.split(".")[0]) >= 2
_AxisError = getattr(getattr(np, "exceptions", np), "AxisError", None) or np.AxisError


def _np(path: str):
    """``numpy.<path>`` if this NumPy has it, else ``None`` (attribute access only)."""
    obj = np
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def implements(*funcs, like: bool = False):
    """Register the decorated function as the dual implementation of NumPy ``funcs``.

    ``like=True`` marks NEP 35 creation functions: they receive the ``like=`` object as the
    keyword ``_like`` (NumPy removes ``like`` from the arguments it passes on).
    """

    def deco(impl):
        for f in funcs:
            if f is None:
                continue
            HANDLED[f] = impl
            if like:
                _LIKE.add(f)
        return impl

    return deco


def array_function(func, types, args, kwargs, self):
    """``__array_function__`` of :class:`~duals.Dual` and :class:`~duals.DualArray`."""
    for t in types:
        if t is not DualArray and t is not Dual and not issubclass(t, (_DualBase, np.ndarray)):
            return NotImplemented
    impl = HANDLED.get(func)
    if impl is None:
        raise TypeError(
            f"duals has no derivative rule for {_qualname(func)}; calling it on a dual array "
            "would convert it to a plain array and lose the derivative. Write the computation "
            "with supported NumPy functions (the list is duals._functions.HANDLED)."
        )
    if _tracer.active() and func not in TRACE_SAFE:
        raise _tracer.unsupported(_qualname(func))
    if func in _LIKE:
        return impl(*args, _like=self, **kwargs)
    return impl(*args, **kwargs)


_PUBLIC_NAMESPACES = ("", "linalg", "fft", "random", "lib.stride_tricks", "polynomial", "ma")


def _qualname(func) -> str:
    """The public dotted name of a NumPy function, e.g. ``numpy.linalg.eig``."""
    name = getattr(func, "__name__", None) or repr(func)
    for ns in _PUBLIC_NAMESPACES:
        try:
            mod = _np(ns) if ns else np
            found = mod is not None and getattr(mod, name, None) is func
        except Exception:  # a deprecated alias may warn (an error under -W error)
            found = False
        if found:
            return f"numpy.{ns}.{name}" if ns else f"numpy.{name}"
    mod = getattr(func, "__module__", None) or "numpy"
    return f"{mod}.{name}"


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------


def _given(x) -> bool:
    return x is not _NV


def _isdual(x) -> bool:
    return isinstance(x, _DualBase)


def _ax(axis, ndim: int) -> int:
    """An axis normalized against ``ndim`` (the primal's)."""
    a = operator.index(axis)
    if not -ndim <= a < ndim:
        raise _AxisError(a, ndim)
    return a % ndim


def _axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, int or sequence) as a tuple of normalized axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        out = tuple(_ax(a, ndim) for a in axis)
        if len(set(out)) != len(out):
            raise ValueError("duplicate value in 'axis'")
        return out
    return (_ax(axis, ndim),)


def _tax(axes):
    """Primal axes -> tangent axes."""
    if isinstance(axes, tuple):
        return tuple(a + 1 for a in axes)
    return axes + 1


def _flat_t(t: np.ndarray) -> np.ndarray:
    """A tangent ``(K, *S)`` as ``(K, prod(S))`` (safe for K = 0)."""
    return t.reshape((t.shape[0], int(np.prod(t.shape[1:], dtype=np.int64))))


def _tan(t, K: int, shape) -> np.ndarray:
    """The tangent, or zeros of shape ``(K, *shape)`` for a constant."""
    if t is None:
        return np.zeros((K,) + tuple(shape))
    return t


def _linear(a, fp, ft):
    """A linear structural map: ``fp`` on the primal, ``ft`` on the tangent ``(K, *S)``."""
    p, t, s = _parts(a)
    r = fp(p)
    if s is None:
        return r
    return _make(r, ft(t), s)


def _index(x):
    if _isdual(x):
        raise TypeError(
            "a dual number cannot be used as an index or a count; use integers or booleans"
        )
    return x


def _primals(x):
    """``x`` with every dual number replaced by its primal (recursively in lists/tuples)."""
    if isinstance(x, _DualBase):
        return x._p
    if isinstance(x, list):
        return [_primals(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_primals(v) for v in x)
    return x


def _float_dtype(dtype) -> bool:
    return dtype is None or np.dtype(dtype).kind == "f"


def _check_dtype(dtype, name: str) -> None:
    if not _float_dtype(dtype):
        raise TypeError(
            f"numpy.{name}(..., dtype={np.dtype(dtype)}) on a dual array would lose the "
            "derivative; dual arrays hold float64 values"
        )


def _store(res, out):
    """Honour ``out=``: a dual array is filled in place; a plain array only takes constants."""
    if out is None:
        return res
    if isinstance(out, tuple):
        if len(out) != 1:
            raise ValueError("out must be a single array")
        out = out[0]
    if isinstance(out, DualArray):
        out[...] = res
        return out
    if _isdual(res):
        raise TypeError(_LOST.format(what="a plain NumPy array passed as out="))
    np.copyto(out, res)
    return out


def _with_primal(res, p):
    """``res`` (dual) with its primal replaced by NumPy's own value ``p`` (same shape)."""
    if not _isdual(res):
        return np.asarray(p, dtype=np.float64) if np.ndim(p) else p
    return _make(np.asarray(p, dtype=np.float64), res._t, res._s)


def _tadd(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _mT(x):
    return np.swapaxes(x, -1, -2)


# ------------------------------------------------------------------------------------------------
# Compiled mode (duals.compile): tape values, guards and masks
# ------------------------------------------------------------------------------------------------
# A traced operand's tangent row holds its values on the tape (see ``duals._trace``). Handlers
# that look at values (an order, a pivot, a condition) record *guards* fixing what they saw, so
# that the compiled tape is only used where the same choices are made, or compute the choice on
# the tape (``compare`` + ``select``).


def _is_traced(*xs) -> bool:
    """Whether an operand is a traced dual (``duals.compile``); cheap for eager operands."""
    for x in xs:
        if isinstance(x, _DualBase):
            if _traced(x._s):
                return True
        elif isinstance(x, (list, tuple)) and _tracer.active() and _is_traced(*x):
            return True
    return False


def _vals(x):
    """The tape values of an operand in a trace: its node row, or its values (a constant)."""
    p, t, s = _parts(x)
    return _tv(p, t, s)


def _guard(op: str, A, B) -> np.ndarray:
    """``A op B`` element by element on tape values; records a guard for every element that
    involves a traced value. The outcome (a boolean array)."""
    m = _tracer.TraceMask.compare(op, A, B)
    return m.guarded() if isinstance(m, _tracer.TraceMask) else m


def _nan_guards(V, p) -> None:
    """Guards fixing which elements are NaN, when some are at the trace point (comparisons with
    True outcomes already exclude NaN elsewhere)."""
    if np.isnan(p).any():
        _guard("!=", V, V)


def _mask(c):
    """A condition: a TraceMask as it is, a traced value's truth (``!= 0``) as a TraceMask, any
    other value as a plain boolean array."""
    if isinstance(c, _tracer.TraceMask):
        return c
    if isinstance(c, _DualBase) and _traced(c._s):
        return compare("!=", c, 0.0)
    return np.asarray(_primals(c), dtype=bool)


def _plain_mask(c) -> np.ndarray:
    """A condition as a plain boolean array (guards on traced values)."""
    return np.asarray(_tracer.plain(_mask(c)), dtype=bool)


def _where_mask(where, as_bool: bool) -> np.ndarray:
    """A ``where=`` argument as a plain array (in a trace, traced values are guarded)."""
    if _tracer.active():
        return _plain_mask(where)
    return np.asarray(_primals(where), dtype=bool) if as_bool else np.asarray(_primals(where))


def _reduce_where(where):
    """The ``where=`` of a sum or mean: ``True`` for everything, else a plain array."""
    if where is _NV or where is True:
        return True
    w = _where_mask(where, False)
    return True if w.ndim == 0 and w.dtype == bool and bool(w) else w


def _axis_front(p, V, axis):
    """``p`` and ``V`` with ``axis`` (None: all, flattened) moved to the front and the other axes
    merged: ``(n, m)`` arrays."""
    if axis is None:
        return p.reshape(-1, 1), V.reshape(-1, 1)
    ax = _ax(axis, p.ndim)
    n = p.shape[ax]
    return np.moveaxis(p, ax, 0).reshape(n, -1), np.moveaxis(V, ax, 0).reshape(n, -1)


def _order_guards(V, p, idx, exact: bool) -> None:
    """Guards fixing the order ``idx`` (an argsort of ``p`` along axis 0) of the tape values
    ``V``, both ``(n, m)``. ``exact``: every tie and strict inequality between neighbours (the
    outcomes of all comparisons are then those of the trace point, so any comparison sort gives
    the same permutation); otherwise ties may break in index order (a stable sort)."""
    _nan_guards(V, p)
    if p.shape[0] < 2:
        return
    S = np.take_along_axis(V, idx, 0)
    A, B = S[:-1], S[1:]
    if exact:
        sp = np.take_along_axis(p, idx, 0)
        tie = sp[:-1] == sp[1:]
        _guard("==", A[tie], B[tie])
        _guard("<", A[~tie], B[~tie])
    else:
        up = idx[:-1] < idx[1:]
        _guard("<=", A[up], B[up])
        _guard("<", A[~up], B[~up])


def _argext_guards(V, p, idx, which: str) -> None:
    """Guards fixing ``idx`` (``(m,)``) as the first position of the maximum (``which="max"``)
    or minimum along axis 0 of ``V``/``p`` ``(n, m)`` (a NaN at the trace point: NaN status)."""
    _nan_guards(V, p)
    n, m = p.shape
    if n < 2 or m == 0:
        return
    best = np.broadcast_to(V[idx, np.arange(m)], V.shape)
    pos = np.arange(n)[:, np.newaxis]
    before, after = pos < idx, pos > idx
    strict, weak = ("<", "<=") if which == "max" else (">", ">=")
    _guard(strict, V[before], best[before])
    _guard(weak, V[after], best[after])


def _rank_guards(V, p, idx, ranks) -> None:
    """Guards fixing which elements have the sorted positions ``ranks`` along axis 0 (``idx`` a
    stable argsort of ``p``; ``V``, ``p`` ``(n, m)``): every other element stays between the
    selected neighbours of its rank, so the values at those ranks are the same elements'."""
    _nan_guards(V, p)
    n = p.shape[0]
    R = sorted({int(r) for r in np.ravel(ranks)})
    if n < 2 or not R:
        return
    lo_hi = []
    for k in range(n):
        j = int(np.searchsorted(R, k))
        if j < len(R) and R[j] == k:
            continue
        if j > 0:
            lo_hi.append((R[j - 1], k))
        if j < len(R):
            lo_hi.append((k, R[j]))
    lo_hi += list(zip(R[:-1], R[1:], strict=True))
    if not lo_hi:
        return
    S = np.take_along_axis(V, idx, 0)
    i, j = np.array(lo_hi).T
    _guard("<=", S[i], S[j])


def _search_guards(Va, pa, Vv, pv, j, side: str) -> None:
    """Guards fixing ``j = searchsorted(a, v, side)`` (``a`` sorted, 1-D; ``v`` and ``j`` 1-D):
    ``a[j-1] < v <= a[j]`` (left) or ``a[j-1] <= v < a[j]`` (right)."""
    if np.isnan(pa).any() or np.isnan(pv).any():
        _guard("!=", Va, Va)
        _guard("!=", Vv, Vv)
    n = pa.shape[0]
    lo, hi = ("<", "<=") if side == "left" else ("<=", "<")
    m = j > 0
    _guard(lo, Va[j[m] - 1], Vv[m])
    m = j < n
    _guard(hi, Vv[m], Va[j[m]])


# ------------------------------------------------------------------------------------------------
# Tangent rules and their second-order lift
# ------------------------------------------------------------------------------------------------


def _lift(rule, operands):
    """Evaluate ``rule(primals, tangents) -> [(value, tangent or None), ...]`` on operands.

    A first-order seed calls the rule on plain arrays. A second-order seed calls it on
    first-order dual arrays (see the module docstring) and reassembles ``e1, e2, e12``.
    Outputs whose tangent is ``None`` (e.g. the sign of ``slogdet``) are returned as plain values.
    """
    parts = [_parts(x) for x in operands]
    s = _seed_of(*(q[2] for q in parts))
    if s is not None and s.order == 0:
        # a tangent rule is not a value: duals.compile needs a traced implementation
        raise _tracer.unsupported(getattr(rule, "__qualname__", "this function"))
    if s is None or s.order == 1:
        outs = rule([q[0] for q in parts], [q[1] for q in parts])
        res = []
        for f, ft in outs:
            if ft is None or s is None:
                res.append(f)
            else:
                f = np.asarray(f, dtype=np.float64)
                res.append(_make(f, _full_tangent(ft, s.K, f.shape), s))
        return res
    s1 = Seed.first(s.k2)
    P, T = [], []
    for p, t, _ in parts:
        if t is None:
            P.append(p)
            T.append(None)
            continue
        e1, e2, e12 = s.split(t)
        P.append(_make(p, np.ascontiguousarray(e2), s1))
        T.append(_make(np.ascontiguousarray(e1), np.ascontiguousarray(np.moveaxis(e12, 1, 0)), s1))
    outs = rule(P, T)
    res = []
    for f, ft in outs:
        fp, f2, _ = _parts(f)
        if ft is None:
            res.append(fp)
            continue
        f1, f12, _ = _parts(ft)
        shape = fp.shape
        f1 = np.broadcast_to(_expand(f1, len(shape)), (s.k1,) + shape)
        f2 = _full_tangent(f2, s.k2, shape)
        if f12 is None:
            e12 = np.zeros((s.k1, s.k2) + shape)
        else:
            f12 = _full_tangent(f12, s.k2, (s.k1,) + shape)  # (k2, k1, *S)
            e12 = np.moveaxis(f12, 0, 1)
        res.append(_make(fp, s.join(f1, f2, e12), s))
    return res


def _rule1(rule, *operands):
    return _lift(rule, operands)[0]


def _values_rule1(rule, *operands):
    """A multilinear ``rule`` in a trace: its value is the same function of the operands' tape
    values (NumPy evaluates it on object arrays, recording every product and sum)."""
    parts = [_parts(x) for x in operands]
    s = _seed_of(*(q[2] for q in parts))
    none = [None] * len(parts)
    f = np.asarray(rule([q[0] for q in parts], none)[0][0], dtype=np.float64)
    V = np.asarray(rule([_tv(*q) for q in parts], none)[0][0])
    return _make(f, V[np.newaxis], s)


# ------------------------------------------------------------------------------------------------
# Shape and layout: linear structural functions
# ------------------------------------------------------------------------------------------------


def _reshape_t(t, shape, order):
    K = t.shape[0]
    if order == "F":
        r = np.moveaxis(t, 0, -1).reshape(tuple(shape) + (K,), order="F")
        return np.moveaxis(r, -1, 0)
    return t.reshape((K,) + tuple(shape))


def _resolve_order(p, order):
    if order == "A":
        return "F" if (p.flags.f_contiguous and not p.flags.c_contiguous) else "C"
    if order not in ("C", "F"):
        raise ValueError(f"order must be one of 'C', 'F', 'A' for a dual array; got {order!r}")
    return order


@implements(np.reshape)
def _reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    if shape is None:
        shape = newshape
    p, t, s = _parts(a)
    order = _resolve_order(p, order)
    r = np.reshape(p, shape, order=order)
    if s is None:
        return r
    rt = _reshape_t(t, r.shape, order)
    if copy:
        r, rt = r.copy(), rt.copy()
    return _make(r, rt, s)


@implements(np.ravel)
def _ravel(a, order="C"):
    p, _, _ = _parts(a)
    if order == "K":
        order = "C"
    return _reshape(a, (p.size,), order=order)


@implements(np.transpose, _np("permute_dims"))
def _transpose(a, axes=None):
    p, _, _ = _parts(a)
    axes = tuple(range(p.ndim))[::-1] if axes is None else _axes(tuple(axes), p.ndim)
    if len(axes) != p.ndim:
        raise ValueError("axes don't match array")
    return _linear(a, lambda p: np.transpose(p, axes), lambda t: np.transpose(t, (0,) + _tax(axes)))


@implements(np.swapaxes)
def _swapaxes(a, axis1, axis2):
    nd = np.ndim(_parts(a)[0])
    a1, a2 = _ax(axis1, nd), _ax(axis2, nd)
    return _linear(a, lambda p: np.swapaxes(p, a1, a2), lambda t: np.swapaxes(t, a1 + 1, a2 + 1))


@implements(_np("matrix_transpose"), _np("linalg.matrix_transpose"))
def _matrix_transpose(x):
    if np.ndim(_parts(x)[0]) < 2:
        raise ValueError("matrix_transpose needs an array of at least 2 dimensions")
    return _swapaxes(x, -1, -2)


@implements(np.moveaxis)
def _moveaxis(a, source, destination):
    nd = np.ndim(_parts(a)[0])
    src = _axes(source if isinstance(source, (tuple, list)) else [source], nd)
    dst = _axes(destination if isinstance(destination, (tuple, list)) else [destination], nd)
    if len(src) != len(dst):
        raise ValueError(
            "`source` and `destination` arguments must have the same number of elements"
        )
    return _linear(
        a, lambda p: np.moveaxis(p, src, dst), lambda t: np.moveaxis(t, _tax(src), _tax(dst))
    )


@implements(np.rollaxis)
def _rollaxis(a, axis, start=0):
    nd = np.ndim(_parts(a)[0])
    # The permutation, read off a zero-memory view with distinct axis lengths.
    probe = np.rollaxis(np.broadcast_to(0.0, tuple(range(2, nd + 2))), axis, start)
    perm = tuple(n - 2 for n in probe.shape)
    return _transpose(a, perm)


@implements(np.expand_dims)
def _expand_dims(a, axis):
    p, _, _ = _parts(a)
    n = len(axis) if isinstance(axis, (tuple, list)) else 1
    axes = _axes(axis if isinstance(axis, (tuple, list)) else [axis], p.ndim + n)
    return _linear(a, lambda p: np.expand_dims(p, axes), lambda t: np.expand_dims(t, _tax(axes)))


@implements(np.squeeze)
def _squeeze(a, axis=None):
    p, _, _ = _parts(a)
    if axis is None:
        axes = tuple(i for i, n in enumerate(p.shape) if n == 1)
    else:
        axes = _axes(axis if isinstance(axis, (tuple, list)) else [axis], p.ndim)
    return _linear(a, lambda p: np.squeeze(p, axis=axes), lambda t: np.squeeze(t, axis=_tax(axes)))


def _atleast(a, n: int):
    p, t, s = _parts(a)
    fn = {1: np.atleast_1d, 2: np.atleast_2d, 3: np.atleast_3d}[n]
    r = fn(p)
    if s is None:
        return fn(np.asarray(a)) if not isinstance(a, (list, tuple)) else r
    return _make(r, t.reshape((t.shape[0],) + r.shape), s)


def _atleast_many(arys, n):
    res = tuple(_atleast(a, n) for a in arys)
    return res[0] if len(res) == 1 else res


@implements(np.atleast_1d)
def _atleast_1d(*arys):
    return _atleast_many(arys, 1)


@implements(np.atleast_2d)
def _atleast_2d(*arys):
    return _atleast_many(arys, 2)


@implements(np.atleast_3d)
def _atleast_3d(*arys):
    return _atleast_many(arys, 3)


@implements(np.broadcast_to)
def _broadcast_to(array, shape, subok=False):
    shape = (operator.index(shape),) if np.ndim(shape) == 0 else tuple(shape)
    return _linear(
        array,
        lambda p: np.broadcast_to(p, shape),
        lambda t: np.broadcast_to(_expand(t, len(shape)), (t.shape[0],) + shape),
    )


@implements(np.broadcast_arrays)
def _broadcast_arrays(*args, subok=False):
    shape = np.broadcast_shapes(*(np.shape(_parts(a)[0]) for a in args))
    return tuple(
        _broadcast_to(a, shape) if _isdual(a) else np.broadcast_to(np.asarray(a), shape)
        for a in args
    )


@implements(np.copy)
def _copy(a, order="K", subok=False):
    return _linear(a, lambda p: p.copy(), lambda t: t.copy())


# ----- joining -----


def _items(arrays):
    """Parts of a sequence of arrays and their common seed."""
    if _isdual(arrays):
        arrays = list(arrays)
    items = [_parts(a) for a in arrays]
    s = _seed_of(*(q[2] for q in items))
    return items, s


def _join(items, s, fp, ft):
    ps = [q[0] for q in items]
    r = fp(ps)
    if s is None:
        return r
    ts = [_tan(q[1], s.K, q[0].shape) for q in items]
    return _make(r, ft(ts), s)


@implements(np.concatenate, _np("concat"))
def _concatenate(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    if out is None and dtype is None and type(axis) is int:
        # DualArrays of one seed and float64 constants: joined natively (a new private array,
        # banded if the pieces are)
        r = _native._concatenate(arrays, axis)
        if r is not None:
            return r
    _check_dtype(dtype, "concatenate")
    items, s = _items(arrays)
    if axis is None:
        res = _join(
            items,
            s,
            lambda ps: np.concatenate([p.ravel() for p in ps]),
            lambda ts: np.concatenate([_flat_t(t) for t in ts], axis=1),
        )
    else:
        nd = items[0][0].ndim if items else 1
        ax = _ax(axis, nd) if nd else axis
        res = _join(
            items,
            s,
            lambda ps: np.concatenate(ps, axis=axis),
            lambda ts: np.concatenate(ts, axis=ax + 1),
        )
    return _store(res, out)


@implements(np.stack)
def _stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    _check_dtype(dtype, "stack")
    items, s = _items(arrays)
    nd = items[0][0].ndim + 1 if items else 1
    ax = _ax(axis, nd)
    res = _join(items, s, lambda ps: np.stack(ps, axis=ax), lambda ts: np.stack(ts, axis=ax + 1))
    return _store(res, out)


@implements(_np("unstack"))
def _unstack(x, *, axis=0):
    p, _, _ = _parts(x)
    ax = _ax(axis, p.ndim)
    return tuple(_take(x, i, axis=ax) for i in range(p.shape[ax]))


@implements(np.hstack)
def _hstack(tup, *, dtype=None, casting="same_kind"):
    arrs = [_atleast(a, 1) for a in tup]
    if arrs and np.ndim(_parts(arrs[0])[0]) == 1:
        return _concatenate(arrs, axis=0, dtype=dtype)
    return _concatenate(arrs, axis=1, dtype=dtype)


@implements(np.vstack)
def _vstack(tup, *, dtype=None, casting="same_kind"):
    return _concatenate([_atleast(a, 2) for a in tup], axis=0, dtype=dtype)


@implements(np.dstack)
def _dstack(tup):
    return _concatenate([_atleast(a, 3) for a in tup], axis=2)


@implements(np.column_stack)
def _column_stack(tup):
    cols = []
    for a in tup:
        p = _parts(a)[0]
        if p.ndim < 2:
            a = _reshape(a, (p.size, 1))
        cols.append(a)
    return _concatenate(cols, axis=1)


@implements(np.block)
def _block(arrays):
    def depth(x):
        if isinstance(x, list):
            if not x:
                raise ValueError("List at arrays cannot be empty")
            ds = {depth(v) for v in x}
            if len(ds) != 1:
                raise ValueError("List depths are mismatched")
            return ds.pop() + 1
        if isinstance(x, tuple):
            raise TypeError("np.block takes nested lists, not tuples")
        return 0

    def maxnd(x):
        if isinstance(x, list):
            return max(maxnd(v) for v in x)
        return np.ndim(_parts(x)[0])

    d = depth(arrays)
    nd = max(d, maxnd(arrays))

    def build(x, level):
        if not isinstance(x, list):
            p = _parts(x)[0]
            shape = (1,) * (nd - p.ndim) + p.shape
            return _reshape(x, shape) if _isdual(x) else np.reshape(p, shape)
        return _concatenate([build(v, level + 1) for v in x], axis=-(d - level))

    return build(arrays, 0)


@implements(np.append)
def _append(arr, values, axis=None):
    if axis is None:
        return _concatenate([_ravel_any(arr), _ravel_any(values)], axis=0)
    return _concatenate([arr, values], axis=axis)


def _ravel_any(x):
    return _ravel(x) if _isdual(x) else np.ravel(_parts(x)[0])


# ----- splitting -----


def _split_by(ary, pieces_p, ax):
    p, t, s = _parts(ary)
    if s is None:
        return pieces_p
    out, start = [], 0
    for pp in pieces_p:
        n = pp.shape[ax]
        sl = (slice(None),) * (ax + 1) + (slice(start, start + n),)
        out.append(_make(pp, t[sl], s))
        start += n
    return out


def _split_axis(p, axis):
    return _ax(axis, p.ndim)


@implements(np.split)
def _split(ary, indices_or_sections, axis=0):
    p = _parts(ary)[0]
    return _split_by(ary, np.split(p, _index(indices_or_sections), axis), _split_axis(p, axis))


@implements(np.array_split)
def _array_split(ary, indices_or_sections, axis=0):
    p = _parts(ary)[0]
    return _split_by(
        ary, np.array_split(p, _index(indices_or_sections), axis), _split_axis(p, axis)
    )


@implements(np.hsplit)
def _hsplit(ary, indices_or_sections):
    p = _parts(ary)[0]
    pieces = np.hsplit(p, _index(indices_or_sections))
    return _split_by(ary, pieces, 1 if p.ndim > 1 else 0)


@implements(np.vsplit)
def _vsplit(ary, indices_or_sections):
    p = _parts(ary)[0]
    return _split_by(ary, np.vsplit(p, _index(indices_or_sections)), 0)


@implements(np.dsplit)
def _dsplit(ary, indices_or_sections):
    p = _parts(ary)[0]
    return _split_by(ary, np.dsplit(p, _index(indices_or_sections)), 2)


# ----- rearranging -----


@implements(np.roll)
def _roll(a, shift, axis=None):
    shift = _index(shift)
    if type(a) is DualArray and a._banded and type(shift) is int and axis in (None, 0, -1):
        # 1-d with banded tangents (rust/duals-py/src/band.rs): the two slices joined, which
        # keeps them banded
        n = a.shape[0]
        s = shift % n if n else 0
        return _concatenate([a[n - s :], a[: n - s]])
    p, t, s = _parts(a)
    if axis is None:
        return _linear(
            a,
            lambda p: np.roll(p, shift),
            lambda t: np.roll(_flat_t(t), shift, axis=1).reshape(t.shape),
        )
    axes = _axes(axis if isinstance(axis, (tuple, list)) else [axis], p.ndim)
    if not isinstance(axis, (tuple, list)):
        axes = axes[0]
    return _linear(
        a, lambda p: np.roll(p, shift, axis=axes), lambda t: np.roll(t, shift, _tax(axes))
    )


@implements(np.flip)
def _flip(m, axis=None):
    p = _parts(m)[0]
    axes = _axes(axis, p.ndim)
    return _linear(m, lambda p: np.flip(p, axis), lambda t: np.flip(t, _tax(axes)))


@implements(np.fliplr)
def _fliplr(m):
    p = _parts(m)[0]
    if p.ndim < 2:
        raise ValueError("Input must be >= 2-d.")
    return _flip(m, 1)


@implements(np.flipud)
def _flipud(m):
    p = _parts(m)[0]
    if p.ndim < 1:
        raise ValueError("Input must be >= 1-d.")
    return _flip(m, 0)


@implements(np.rot90)
def _rot90(m, k=1, axes=(0, 1)):
    p = _parts(m)[0]
    r = np.rot90(p, k, axes)  # NumPy's argument checks
    a0, a1 = _ax(axes[0], p.ndim), _ax(axes[1], p.ndim)
    return _linear(m, lambda p: r, lambda t: np.rot90(t, k, (a0 + 1, a1 + 1)))


@implements(np.take)
def _take(a, indices, axis=None, out=None, mode="raise"):
    indices = _index(indices)
    p = _parts(a)[0]
    if axis is None:
        res = _linear(
            a,
            lambda p: np.take(p, indices, mode=mode),
            lambda t: np.take(_flat_t(t), indices, axis=1, mode=mode),
        )
    else:
        ax = _ax(axis, p.ndim)
        res = _linear(
            a,
            lambda p: np.take(p, indices, axis=ax, mode=mode),
            lambda t: np.take(t, indices, axis=ax + 1, mode=mode),
        )
    return _store(res, out)


@implements(np.take_along_axis)
def _take_along_axis(arr, indices, axis=-1):
    indices = np.asarray(_index(indices))
    p = _parts(arr)[0]
    if axis is None:
        return _linear(
            arr,
            lambda p: np.take_along_axis(p.ravel(), indices, None),
            lambda t: np.take_along_axis(_flat_t(t), indices[np.newaxis], 1),
        )
    ax = _ax(axis, p.ndim)
    return _linear(
        arr,
        lambda p: np.take_along_axis(p, indices, ax),
        lambda t: np.take_along_axis(t, indices[np.newaxis], ax + 1),
    )


@implements(np.compress)
def _compress(condition, a, axis=None, out=None):
    cond = _plain_mask(condition) if _tracer.active() else np.asarray(_primals(condition))
    p = _parts(a)[0]
    if axis is None:
        res = _linear(
            a,
            lambda p: np.compress(cond, p),
            lambda t: np.compress(cond, _flat_t(t), axis=1),
        )
    else:
        ax = _ax(axis, p.ndim)
        res = _linear(
            a, lambda p: np.compress(cond, p, axis=ax), lambda t: np.compress(cond, t, axis=ax + 1)
        )
    return _store(res, out)


@implements(np.extract)
def _extract(condition, arr):
    cond = _plain_mask(condition).ravel() if _tracer.active() else None
    if cond is None:
        cond = np.asarray(_primals(condition)).ravel().astype(bool)
    return _compress(cond, _ravel(arr) if _isdual(arr) else np.ravel(arr))


@implements(np.repeat)
def _repeat(a, repeats, axis=None):
    repeats = _index(repeats)
    p = _parts(a)[0]
    if axis is None:
        return _linear(
            a,
            lambda p: np.repeat(p, repeats),
            lambda t: np.repeat(_flat_t(t), repeats, axis=1),
        )
    ax = _ax(axis, p.ndim)
    return _linear(
        a, lambda p: np.repeat(p, repeats, axis=ax), lambda t: np.repeat(t, repeats, axis=ax + 1)
    )


@implements(np.tile)
def _tile(A, reps):
    reps = _index(reps)
    tup = tuple(reps) if isinstance(reps, (tuple, list, np.ndarray)) else (reps,)
    p = _parts(A)[0]
    d = max(len(tup), p.ndim)
    tup = (1,) * (d - len(tup)) + tuple(tup)

    def ft(t):
        t = t.reshape((t.shape[0],) + (1,) * (d - p.ndim) + p.shape)
        return np.tile(t, (1,) + tup)

    return _linear(A, lambda p: np.tile(p, reps), ft)


@implements(np.resize)
def _resize(a, new_shape):
    p = _parts(a)[0]
    idx = np.resize(np.arange(p.size), new_shape)
    return _take(a, idx)


def _index_tracking(a, values, fn):
    """A selection-and-insertion map ``fn(arr, values)`` (e.g. ``np.insert``) applied to duals:
    ``fn`` is run on integer labels to learn where every output element comes from."""
    p, ta, sa = _parts(a)
    v, tv, sv = _parts(values)
    s = _seed_of(sa, sv)
    r = fn(p, v)
    if s is None:
        return r
    la = np.arange(1, p.size + 1).reshape(p.shape)
    lv = -np.arange(1, v.size + 1).reshape(v.shape)
    lab = fn(la, lv)
    K = s.K
    src_a = _flat_t(_tan(ta, K, p.shape))
    src_v = _flat_t(_tan(tv, K, v.shape))
    t = np.where(
        lab[np.newaxis] > 0,
        src_a[:, np.maximum(lab, 1) - 1],
        src_v[:, np.maximum(-lab, 1) - 1] if v.size else 0.0,
    )
    return _make(r, t, s)


@implements(np.insert)
def _insert(arr, obj, values, axis=None):
    obj = _index(obj)
    return _index_tracking(arr, values, lambda a, v: np.insert(a, obj, v, axis=axis))


@implements(np.delete)
def _delete(arr, obj, axis=None):
    obj = _index(obj)
    p = _parts(arr)[0]
    if axis is None:
        return _linear(
            arr, lambda p: np.delete(p, obj), lambda t: np.delete(_flat_t(t), obj, axis=1)
        )
    ax = _ax(axis, p.ndim)
    return _linear(
        arr, lambda p: np.delete(p, obj, axis=ax), lambda t: np.delete(t, obj, axis=ax + 1)
    )


@implements(np.pad)
def _pad(array, pad_width, mode="constant", **kwargs):
    p, t, s = _parts(array)
    if callable(mode):
        raise TypeError("numpy.pad with a callable mode has no derivative rule in duals")
    if mode in ("maximum", "minimum", "median"):
        raise TypeError(f"numpy.pad(mode={mode!r}) has no derivative rule in duals")
    for key in ("constant_values", "end_values"):
        if _isdual(kwargs.get(key)):
            raise TypeError(f"numpy.pad with a dual {key} has no derivative rule in duals")
    r = np.pad(p, pad_width, mode=mode, **kwargs)
    if s is None:
        return r
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (p.ndim, 2)).tolist()
    if mode == "linear_ramp" and _traced(s):
        ev = np.broadcast_to(np.asarray(kwargs.get("end_values", 0.0), dtype=float), (p.ndim, 2))
        return _with_primal(_traced_linear_ramp(array, pw, ev), r)
    tpw = [(0, 0)] + [tuple(x) for x in pw]
    tk = dict(kwargs)
    if mode == "constant":
        tk["constant_values"] = 0.0
    elif mode == "linear_ramp" and not _traced(s):  # in a trace: ramps of the tape values
        tk["end_values"] = 0.0
    elif mode == "empty":
        mode, tk = "constant", {}
    if tk.get("stat_length") is not None:
        sl = np.broadcast_to(np.asarray(tk["stat_length"]), (p.ndim, 2)).tolist()
        tk["stat_length"] = [(1, 1)] + [tuple(x) for x in sl]
    return _make(r, np.pad(t, tpw, mode=mode, **tk), s)


def _traced_linear_ramp(x, pw, ev):
    """``np.pad(x, pw, "linear_ramp", end_values=ev)`` with dual operations, axis after axis
    as NumPy pads (its ramps are ``linspace(end, edge, width, endpoint=False)``)."""
    for axis, ((before, after), (eb, ea)) in enumerate(zip(pw, ev, strict=True)):
        n = np.shape(_parts(x)[0])[axis]
        pieces = []
        for width, end, edge_at, rev in ((before, eb, 0, False), (after, ea, n - 1, True)):
            if not width:
                pieces.append(None)
                continue
            edge = _take(x, [edge_at], axis=axis)
            shape = [1] * np.ndim(_parts(x)[0])
            shape[axis] = width
            i = np.arange(width, dtype=np.float64).reshape(shape)
            ramp = i * ((edge - end) / float(width)) + end
            pieces.append(_flip(ramp, axis) if rev else ramp)
        x = _concatenate([q for q in (pieces[0], x, pieces[1]) if q is not None], axis=axis)
    return x


@implements(_np("lib.stride_tricks.sliding_window_view"))
def _sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    p = _parts(x)[0]
    if axis is None:
        axes = tuple(range(p.ndim))
    else:
        axes = _axes(axis if isinstance(axis, (tuple, list)) else [axis], p.ndim)
        if not isinstance(axis, (tuple, list)):
            axes = axes[0]
    sw = np.lib.stride_tricks.sliding_window_view
    return _linear(
        x,
        lambda p: sw(p, window_shape, axis, writeable=writeable),
        lambda t: sw(t, window_shape, _tax(axes), writeable=writeable),
    )


@implements(np.meshgrid)
def _meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    nd = len(xi)
    out = []
    for i, x in enumerate(xi):
        shape = [1] * nd
        shape[i] = -1
        out.append(_reshape(_ravel(x), shape) if _isdual(x) else np.reshape(x, shape))
    if indexing == "xy" and nd > 1:
        for i in range(nd):
            o = out[i]
            sh = list(np.shape(_parts(o)[0]))
            sh[0], sh[1] = sh[1], sh[0]
            out[i] = _reshape(o, sh) if _isdual(o) else np.reshape(o, sh)
    if not sparse:
        out = list(_broadcast_arrays(*out))
        if copy:
            out = [_copy(o) if _isdual(o) else o.copy() for o in out]
    return tuple(out)


# ----- diagonals and triangles -----


@implements(np.diagonal)
def _diagonal(a, offset=0, axis1=0, axis2=1):
    p = _parts(a)[0]
    a1, a2 = _ax(axis1, p.ndim), _ax(axis2, p.ndim)
    return _linear(
        a,
        lambda p: np.diagonal(p, offset, a1, a2).copy(),
        lambda t: np.diagonal(t, offset, a1 + 1, a2 + 1).copy(),
    )


@implements(_np("linalg.diagonal"))
def _linalg_diagonal(x, *, offset=0):
    return _diagonal(x, offset, -2, -1)


@implements(np.diag)
def _diag(v, k=0):
    p, t, s = _parts(v)
    if p.ndim == 2:
        return _diagonal(v, k)
    if p.ndim != 1:
        raise ValueError("Input must be 1- or 2-d.")
    r = np.diag(p, k)
    if s is None:
        return r
    out = np.zeros((s.K,) + r.shape, dtype=t.dtype)  # object: tape values (duals.compile)
    i = np.arange(p.size)
    out[:, i + max(-k, 0), i + max(k, 0)] = t
    return _make(r, out, s)


@implements(np.diagflat)
def _diagflat(v, k=0):
    return _diag(_ravel(v), k)


def _tri(m, k, fn):
    p = _parts(m)[0]
    if p.ndim >= 2:
        return _linear(m, lambda p: fn(p, k), lambda t: fn(t, k))
    n = p.shape[-1] if p.ndim else 1
    return _linear(
        m,
        lambda p: fn(p, k),
        lambda t: fn(np.broadcast_to(t.reshape((t.shape[0], 1, n)), (t.shape[0], n, n)), k),
    )


@implements(np.triu)
def _triu(m, k=0):
    return _tri(m, k, np.triu)


@implements(np.tril)
def _tril(m, k=0):
    return _tri(m, k, np.tril)


@implements(np.trace)
def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _check_dtype(dtype, "trace")
    p = _parts(a)[0]
    a1, a2 = _ax(axis1, p.ndim), _ax(axis2, p.ndim)
    res = _linear(
        a,
        lambda p: np.trace(p, offset, a1, a2),
        lambda t: np.trace(t, offset, a1 + 1, a2 + 1),
    )
    return _store(res, out)


@implements(_np("linalg.trace"))
def _linalg_trace(x, *, offset=0, dtype=None):
    return _trace(x, offset, -2, -1, dtype=dtype)


@implements(np.fill_diagonal)
def _fill_diagonal(a, val, wrap=False):
    if not isinstance(a, DualArray):
        if _isdual(val):
            raise TypeError(_LOST.format(what="a plain NumPy array (np.fill_diagonal)"))
        return np.fill_diagonal(a, val, wrap)
    mask = np.zeros(a.shape, dtype=bool)
    np.fill_diagonal(mask, True, wrap)
    n = int(mask.sum())
    vp = _parts(val)[0]
    if vp.size not in (0, 1) and vp.size != n:
        idx = np.resize(np.arange(vp.size), n)
        val = _take(val, idx) if _isdual(val) else np.take(vp, idx)
    elif vp.ndim:
        val = _ravel(val) if _isdual(val) else vp.ravel()
    a[mask] = val
    return None


# ------------------------------------------------------------------------------------------------
# Sums, means, differences: linear reductions
# ------------------------------------------------------------------------------------------------


@implements(np.sum)
def _sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NV, where=True):
    _check_dtype(dtype, "sum")
    keepdims = bool(keepdims) if _given(keepdims) else False
    where = _reduce_where(where)
    p = _parts(a)[0]
    axes = _axes(axis, p.ndim)
    kw = {"initial": initial} if _given(initial) and initial is not None else {}

    def tsum(t):
        if t.dtype == object:
            # tape values (duals.compile): the initial value is part of the value; NumPy's
            # object reductions need an initial value with where=
            init = float(kw.get("initial", 0.0))
            twhere = {} if where is True else {"where": where, "initial": init}
            r = np.sum(t, axis=_tax(axes), keepdims=keepdims, **twhere)
            return r + init if "initial" in kw and where is True else r
        return np.sum(t, axis=_tax(axes), keepdims=keepdims, where=where)

    res = _linear(
        a,
        lambda p: np.sum(p, axis=axes, keepdims=keepdims, where=where, **kw),
        tsum,
    )
    return _store(res, out)


@implements(np.mean)
def _mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    _check_dtype(dtype, "mean")
    keepdims = bool(keepdims) if _given(keepdims) else False
    where = _reduce_where(where)
    p = _parts(a)[0]
    axes = _axes(axis, p.ndim)

    def tmean(t):
        if t.dtype == object and where is not True:  # tape values (duals.compile)
            w = np.broadcast_to(where, t.shape[1:])
            total = np.sum(t, axis=_tax(axes), keepdims=keepdims, where=w, initial=0.0)
            return total / np.sum(w, axis=axes, keepdims=keepdims)
        if t.dtype == object:
            return np.mean(t, axis=_tax(axes), keepdims=keepdims)
        return np.mean(t, axis=_tax(axes), keepdims=keepdims, where=where)

    res = _linear(
        a,
        lambda p: np.mean(p, axis=axes, keepdims=keepdims, where=where),
        tmean,
    )
    return _store(res, out)


@implements(np.average)
def _average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    keepdims = bool(keepdims) if _given(keepdims) else False
    p = _parts(a)[0]
    if weights is None:
        avg = (
            _mean(a, axis, keepdims=keepdims) if _isdual(a) else np.mean(p, axis, keepdims=keepdims)
        )
        if returned:
            pa = np.mean(p, axis, keepdims=keepdims)
            return avg, np.broadcast_to(
                np.asarray(p.size / max(np.size(pa), 1)), np.shape(pa)
            ).copy()
        return avg
    w = weights
    wp = _parts(w)[0]
    if wp.shape != p.shape:
        if axis is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        if wp.ndim != 1:
            raise TypeError("1D weights expected when shapes of a and weights differ.")
        ax = _ax(axis, p.ndim)
        shape = [1] * p.ndim
        shape[ax] = wp.size
        w = _reshape(w, shape) if _isdual(w) else wp.reshape(shape)
        w = _broadcast_to(w, p.shape) if _isdual(w) else np.broadcast_to(w, p.shape)
    scl = _sum_any(w, axis, keepdims)
    avg = _sum_any(mul(a, w), axis, keepdims) / scl
    if returned:
        if np.shape(_parts(scl)[0]) != np.shape(_parts(avg)[0]):
            scl = _broadcast_to(scl, np.shape(_parts(avg)[0])) if _isdual(scl) else scl
        return avg, scl
    return avg


def _sum_any(x, axis=None, keepdims=False):
    if _isdual(x):
        return _sum(x, axis, keepdims=keepdims)
    return np.sum(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def _cum(a, axis, fn):
    p = _parts(a)[0]
    if axis is None:
        return _linear(a, lambda p: fn(p.ravel(), axis=0), lambda t: fn(_flat_t(t), axis=1))
    ax = _ax(axis, p.ndim)
    return _linear(a, lambda p: fn(p, axis=ax), lambda t: fn(t, axis=ax + 1))


@implements(np.cumsum)
def _cumsum(a, axis=None, dtype=None, out=None):
    _check_dtype(dtype, "cumsum")
    return _store(_cum(a, axis, np.cumsum), out)


@implements(_np("cumulative_sum"))
def _cumulative_sum(x, *, axis=None, dtype=None, out=None, include_initial=False):
    _check_dtype(dtype, "cumulative_sum")
    p = _parts(x)[0]
    if axis is None:
        if p.ndim != 1:
            raise ValueError(
                "For arrays which have more than one dimension ``axis`` argument is required."
            )
        axis = 0
    ax = _ax(axis, p.ndim)
    cs = np.cumulative_sum
    res = _linear(
        x,
        lambda p: cs(p, axis=ax, include_initial=include_initial),
        lambda t: cs(t, axis=ax + 1, include_initial=include_initial),
    )
    return _store(res, out)


@implements(np.diff)
def _diff(a, n=1, axis=-1, prepend=_NV, append=_NV):
    if (
        type(a) is DualArray
        and a._banded
        and type(n) is int
        and n >= 0
        and axis in (0, -1)
        and not (_given(prepend) or _given(append))
    ):
        # 1-d with banded tangents (rust/duals-py/src/band.rs): differences of slices, which
        # keep them banded (the same arithmetic as below)
        for _ in range(n):
            a = a[1:] - a[:-1]
        return a
    p = _parts(a)[0]
    if p.ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    ax = _ax(axis, p.ndim)
    n = operator.index(_index(n))
    if _given(prepend) or _given(append):
        pieces = []
        for extra, is_a in ((prepend, False), (a, True), (append, False)):
            if not is_a and not _given(extra):
                continue
            if not is_a and np.ndim(_parts(extra)[0]) == 0:
                shape = list(p.shape)
                shape[ax] = 1
                extra = (
                    _broadcast_to(extra, tuple(shape))
                    if _isdual(extra)
                    else np.broadcast_to(extra, tuple(shape))
                )
            pieces.append(extra)
        a = _concatenate(pieces, axis=ax)
    return _linear(a, lambda p: np.diff(p, n, axis=ax), lambda t: np.diff(t, n, axis=ax + 1))


@implements(np.ediff1d)
def _ediff1d(ary, to_end=None, to_begin=None):
    d = _diff(_ravel(ary) if _isdual(ary) else np.ravel(ary))
    pieces = []
    if to_begin is not None:
        pieces.append(_ravel_any(to_begin))
    pieces.append(d)
    if to_end is not None:
        pieces.append(_ravel_any(to_end))
    return _concatenate(pieces) if len(pieces) > 1 else d


@implements(np.gradient)
def _gradient(f, *varargs, axis=None, edge_order=1):
    for v in varargs:
        if _isdual(v):
            raise TypeError("numpy.gradient with dual spacings has no derivative rule in duals")
    p, t, s = _parts(f)
    axes = _axes(axis, p.ndim)
    r = np.gradient(p, *varargs, axis=axis, edge_order=edge_order)
    if s is None:
        return r
    if _traced(s):
        # NumPy's gradient allocates float64 results: its steps on the tape values instead
        outs = _object_gradient(t[0], varargs, axes, edge_order)
        if len(axes) == 1:
            return _make(r, outs[0][np.newaxis], s)
        return tuple(_make(rp, o[np.newaxis], s) for rp, o in zip(r, outs, strict=True))
    rt = np.gradient(t, *varargs, axis=_tax(axes), edge_order=edge_order)
    if len(axes) == 1:
        rt = rt if isinstance(rt, np.ndarray) else rt[0]
        return _make(r, rt, s)
    return tuple(_make(rp, tt, s) for rp, tt in zip(r, rt, strict=True))


def _object_gradient(f, varargs, axes, edge_order):
    """``numpy.gradient`` of an object array (tape values) along ``axes``: NumPy's formulas
    and operation order (its own argument checks have run on the primal)."""
    N = f.ndim
    n = len(varargs)
    if n == 0:
        dx = [1.0] * len(axes)
    elif n == 1 and np.ndim(varargs[0]) == 0:
        dx = list(varargs) * len(axes)
    else:
        dx = list(varargs)
        for i, d in enumerate(dx):
            d = np.asanyarray(d)
            if d.ndim == 0:
                continue
            diffx = np.diff(d.astype(np.float64) if np.issubdtype(d.dtype, np.integer) else d)
            dx[i] = diffx[0] if (diffx == diffx[0]).all() else diffx
    outs = []
    for axis, h in zip(axes, dx, strict=True):

        def at(i, axis=axis):
            sl = [slice(None)] * N
            sl[axis] = i
            return tuple(sl)

        out = np.empty(f.shape, dtype=object)
        if np.ndim(h) == 0:
            out[at(slice(1, -1))] = (f[at(slice(2, None))] - f[at(slice(None, -2))]) / (2.0 * h)
        else:
            dx1, dx2 = h[0:-1], h[1:]
            shape = np.ones(N, dtype=int)
            shape[axis] = -1
            a = (-(dx2) / (dx1 * (dx1 + dx2))).reshape(shape)
            b = ((dx2 - dx1) / (dx1 * dx2)).reshape(shape)
            c = (dx1 / (dx2 * (dx1 + dx2))).reshape(shape)
            out[at(slice(1, -1))] = (
                a * f[at(slice(None, -2))] + b * f[at(slice(1, -1))] + c * f[at(slice(2, None))]
            )
        uniform = np.ndim(h) == 0
        if edge_order == 1:
            out[at(0)] = (f[at(1)] - f[at(0)]) / (h if uniform else h[0])
            out[at(-1)] = (f[at(-1)] - f[at(-2)]) / (h if uniform else h[-1])
        else:
            if uniform:
                a, b, c = -1.5 / h, 2.0 / h, -0.5 / h
            else:
                dx1, dx2 = h[0], h[1]
                a = -(2.0 * dx1 + dx2) / (dx1 * (dx1 + dx2))
                b = (dx1 + dx2) / (dx1 * dx2)
                c = -dx1 / (dx2 * (dx1 + dx2))
            out[at(0)] = a * f[at(0)] + b * f[at(1)] + c * f[at(2)]
            if uniform:
                a, b, c = 0.5 / h, -2.0 / h, 1.5 / h
            else:
                dx1, dx2 = h[-2], h[-1]
                a = (dx2) / (dx1 * (dx1 + dx2))
                b = -(dx2 + dx1) / (dx1 * dx2)
                c = (2.0 * dx2 + dx1) / (dx2 * (dx1 + dx2))
            out[at(-1)] = a * f[at(-3)] + b * f[at(-2)] + c * f[at(-1)]
        outs.append(out)
    return outs


def _trapz_impl(y, x=None, dx=1.0, axis=-1):
    p = _parts(y)[0]
    ax = _ax(axis, p.ndim)
    n = p.shape[ax]
    y0 = (
        _take(y, np.arange(0, max(n - 1, 0)), axis=ax)
        if _isdual(y)
        else np.take(p, np.arange(0, max(n - 1, 0)), axis=ax)
    )
    y1 = _take(y, np.arange(1, n), axis=ax) if _isdual(y) else np.take(p, np.arange(1, n), axis=ax)
    if x is None:
        d = _parts(dx)[0] if not _isdual(dx) else dx
    else:
        xp = _parts(x)[0]
        if xp.ndim == 1:
            d = _diff(x) if _isdual(x) else np.diff(xp)
            shape = [1] * p.ndim
            shape[ax] = max(n - 1, 0)
            d = _reshape(d, shape) if _isdual(d) else np.reshape(d, shape)
        else:
            d = _diff(x, axis=ax) if _isdual(x) else np.diff(xp, axis=ax)
    return _sum_any(mul(d, (y0 + y1) / 2.0), axis=ax)


@implements(_np("trapezoid"), _np("trapz") if not _NUMPY2 else None)
def _trapezoid(y, x=None, dx=1.0, axis=-1):
    p = _parts(y)[0]
    xp = None if x is None else _parts(x)[0]
    ref = (np.trapezoid if hasattr(np, "trapezoid") else np.trapz)(
        p, xp, _parts(dx)[0] if x is None else 1.0, axis
    )
    return _with_primal(_trapz_impl(y, x, dx, axis), ref)


# ------------------------------------------------------------------------------------------------
# Products: multilinear rules
# ------------------------------------------------------------------------------------------------


def _tensordot_axes(axes, na, nb):
    try:
        n = operator.index(axes)
    except TypeError:
        axa, axb = axes
        axa = [axa] if np.ndim(axa) == 0 else list(axa)
        axb = [axb] if np.ndim(axb) == 0 else list(axb)
    else:
        axa, axb = list(range(na - n, na)), list(range(n))
    return [_ax(i, na) for i in axa], [_ax(i, nb) for i in axb]


def _tensordot_rule(axa, axb):
    def rule(ps, ts):
        a, b = ps
        ta, tb = ts
        f = np.tensordot(a, b, (axa, axb))
        t = None
        if ta is not None:
            t = np.tensordot(ta, b, ([i + 1 for i in axa], axb))
        if tb is not None:
            q = np.tensordot(a, tb, (axa, [i + 1 for i in axb]))
            t = _tadd(t, np.moveaxis(q, np.ndim(a) - len(axa), 0))
        return [(f, t)]

    return rule


@implements(np.tensordot, _np("linalg.tensordot"))
def _tensordot(a, b, axes=2):
    na, nb = np.ndim(_parts(a)[0]), np.ndim(_parts(b)[0])
    axa, axb = _tensordot_axes(axes, na, nb)
    if _is_traced(a, b):
        return _values_rule1(_tensordot_rule(axa, axb), a, b)
    return _rule1(_tensordot_rule(axa, axb), a, b)


@implements(np.dot)
def _dot(a, b, out=None):
    pa, pb = _parts(a)[0], _parts(b)[0]
    if pa.ndim == 0 or pb.ndim == 0:
        res = mul(a, b)
    else:
        res = _tensordot(a, b, ([pa.ndim - 1], [max(pb.ndim - 2, 0)]))
    return _store(res, out)


@implements(np.inner)
def _inner(a, b):
    pa, pb = _parts(a)[0], _parts(b)[0]
    if pa.ndim == 0 or pb.ndim == 0:
        return mul(a, b)
    return _tensordot(a, b, ([pa.ndim - 1], [pb.ndim - 1]))


@implements(np.vdot)
def _vdot(a, b):
    return _tensordot(_ravel_any(a), _ravel_any(b), 1)


@implements(np.outer)
def _outer(a, b, out=None):
    return _store(_tensordot(_ravel_any(a), _ravel_any(b), 0), out)


@implements(_np("linalg.outer"))
def _linalg_outer(x1, x2):
    if np.ndim(_parts(x1)[0]) != 1 or np.ndim(_parts(x2)[0]) != 1:
        raise ValueError("Input arrays must be one-dimensional")
    return _outer(x1, x2)


@implements(np.kron)
def _kron(a, b):
    pa, pb = _parts(a)[0], _parts(b)[0]
    nd = max(pa.ndim, pb.ndim)
    sa = (1,) * (nd - pa.ndim) + pa.shape
    sb = (1,) * (nd - pb.ndim) + pb.shape
    A = _reshape(a, sa) if _isdual(a) else pa.reshape(sa)
    B = _reshape(b, sb) if _isdual(b) else pb.reshape(sb)
    r = _tensordot(A, B, 0)  # shape sa + sb
    perm = [i for pair in zip(range(nd), range(nd, 2 * nd), strict=True) for i in pair]
    r = _transpose(r, perm) if _isdual(r) else np.transpose(r, perm)
    shape = tuple(x * y for x, y in zip(sa, sb, strict=True))
    return _reshape(r, shape) if _isdual(r) else np.reshape(r, shape)


@implements(_np("linalg.matmul"))
def _linalg_matmul(x1, x2):
    return np.matmul(x1, x2)


@implements(_np("linalg.vecdot"))
def _linalg_vecdot(x1, x2, *, axis=-1):
    return _sum_any(mul(x1, x2), axis=axis)


@implements(_np("linalg.multi_dot"))
def _multi_dot(arrays, *, out=None):
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    return _store(functools.reduce(_dot, arrays), out)


# ----- einsum -----

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_parse(operands):
    if isinstance(operands[0], str):
        subs = operands[0].replace(" ", "")
        ops = list(operands[1:])
    else:
        # interleaved form: op0, sublist0, op1, sublist1, ..., [sublist_out]

        def conv(sl):
            return "".join("..." if v is Ellipsis else _LETTERS[operator.index(v)] for v in sl)

        odd = len(operands) % 2 == 1
        body = operands[:-1] if odd else operands
        ops = list(body[0::2])
        subs = ",".join(conv(sl) for sl in body[1::2])
        if odd:
            subs += "->" + conv(operands[-1])
    if "->" in subs:
        ins, out = subs.split("->")
    else:
        ins = subs
        letters = [c for c in ins if c.isalpha()]
        once = sorted(c for c in set(letters) if letters.count(c) == 1)
        out = ("..." if "..." in ins else "") + "".join(once)
    in_list = ins.split(",")
    if len(in_list) != len(ops):
        raise ValueError("einsum: the number of operands does not match the subscripts string")
    return in_list, out, ops


def _einsum_rule(in_list, out, kw):
    used = set("".join(in_list) + out)
    z = next(c for c in reversed(_LETTERS) if c not in used)

    def rule(ps, ts):
        f = np.einsum(",".join(in_list) + "->" + out, *ps, **kw)
        t = None
        for i, ti in enumerate(ts):
            if ti is None:
                continue
            subs = ",".join(z + s if j == i else s for j, s in enumerate(in_list))
            ops = [ti if j == i else pj for j, pj in enumerate(ps)]
            t = _tadd(t, np.einsum(subs + "->" + z + out, *ops, **kw))
        return [(f, t)]

    return rule


@implements(np.einsum)
def _einsum(*operands, out=None, optimize=False, **kwargs):
    _check_dtype(kwargs.pop("dtype", None), "einsum")
    in_list, outs, ops = _einsum_parse(operands)
    kw = {"optimize": optimize}
    kw.update({k: v for k, v in kwargs.items() if k in ("order", "casting")})
    if _is_traced(*ops):
        return _store(_values_rule1(_einsum_rule(in_list, outs, kw), *ops), out)
    return _store(_rule1(_einsum_rule(in_list, outs, kw), *ops), out)


@implements(np.einsum_path)
def _einsum_path(*operands, **kwargs):
    return np.einsum_path(*_primals(operands), **kwargs)


# ----- convolution -----


def _conv_full(a, v):
    """Full convolution of 1-D ``a`` (n,) (may carry a leading batch axis) with 1-D ``v``."""
    m = np.shape(_parts(v)[0])[-1] if not _isdual(v) else v.shape[-1]
    nd = np.ndim(_parts(a)[0]) if not _isdual(a) else a.ndim
    pw = [(0, 0)] * (nd - 1) + [(m - 1, m - 1)]
    ap = _pad(a, pw) if _isdual(a) else np.pad(a, pw)
    win = (
        _sliding_window_view(ap, m, axis=-1)
        if _isdual(ap)
        else np.lib.stride_tricks.sliding_window_view(ap, m, axis=-1)
    )
    vr = _flip(v) if _isdual(v) else v[::-1]
    return np.matmul(win, vr)


def _conv_rule(ps, ts):
    a, v = ps
    ta, tv = ts
    f = _conv_full(a, v)
    t = None
    if ta is not None:
        t = _conv_full(ta, v)
    if tv is not None:
        t = _tadd(t, _conv_full(tv, a))
    return [(f, t)]


def _conv_mode(full, n, m, mode):
    if mode == "full":
        return full
    L = max(n, m)
    if mode == "same":
        start = (min(n, m) - 1) // 2
        return full[start : start + L]
    if mode == "valid":
        start = min(n, m) - 1
        return full[start : start + L - min(n, m) + 1]
    raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")


@implements(np.convolve)
def _convolve(a, v, mode="full"):
    pa, pv = np.ravel(_parts(a)[0]), np.ravel(_parts(v)[0])
    ref = np.convolve(pa, pv, mode)  # NumPy's checks (empty inputs)
    a = _ravel_any(a)
    v = _ravel_any(v)
    if _is_traced(a, v):
        full = _traced_convolve(a, v)
    else:
        full = _rule1(_conv_rule, a, v)
    return _with_primal(_conv_mode(full, pa.size, pv.size, mode), ref)


@implements(np.correlate)
def _correlate(a, v, mode="valid"):
    pa, pv = np.ravel(_parts(a)[0]), np.ravel(_parts(v)[0])
    ref = np.correlate(pa, pv, mode)
    a = _ravel_any(a)
    v = _ravel_any(v)
    swap = pa.size < pv.size  # NumPy correlates v with a then, and reverses the result
    if swap:
        a, v, pa, pv = v, a, pv, pa
    vr = _flip(v) if _isdual(v) else v[::-1]
    # correlate(a, v) = convolve(a, v[::-1]) for real inputs
    full = _traced_convolve(a, vr) if _is_traced(a, vr) else _rule1(_conv_rule, a, vr)
    r = _conv_mode(full, pa.size, pv.size, mode)
    if swap:
        r = _flip(r) if _isdual(r) else r[::-1]
    return _with_primal(r, ref)


def _traced_convolve(a, v):
    """The full convolution of 1-D operands in a trace: NumPy's on the tape values (object
    arrays: only the overlapping products are recorded)."""
    (pa, ta, sa), (pv, tv, sv) = _parts(a), _parts(v)
    s = _seed_of(sa, sv)
    p = np.convolve(pa, pv)
    if pa.size == 0 or pv.size == 0:
        return constant(p, s)
    return _make(p, np.convolve(_tv(pa, ta, sa), _tv(pv, tv, sv))[np.newaxis], s)


# ------------------------------------------------------------------------------------------------
# Nonlinear reductions: products, extremes, sorting, statistics
# ------------------------------------------------------------------------------------------------


def _reduce_front(a, axis):
    """Move the reduced axes of ``a`` to the front and merge them: ``(n, *rest)``."""
    p = _parts(a)[0]
    axes = _axes(axis, p.ndim)
    x = _moveaxis(a, axes, tuple(range(len(axes)))) if axes else a
    rest = tuple(n for i, n in enumerate(p.shape) if i not in axes)
    n = int(np.prod([p.shape[i] for i in axes], dtype=np.int64))
    return _reshape(x, (n,) + rest), axes, rest


def _keep(r, p_shape, axes, keepdims):
    if not keepdims:
        return r
    shape = tuple(1 if i in axes else n for i, n in enumerate(p_shape))
    return _reshape(r, shape) if _isdual(r) else np.reshape(r, shape)


def _prod_front(x, s):
    """Product over axis 0 by pairwise dual multiplication (exact with zeros, log2(n) steps)."""
    n = x.shape[0]
    if n == 0:
        return constant(np.ones(x.shape[1:]), s)
    while n > 1:
        h = n // 2
        y = mul(x[:h], x[h : 2 * h])
        if n % 2:
            y = _concatenate([y, x[2 * h :]])
        x, n = y, h + n % 2
    return x[0]


@implements(np.prod)
def _prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NV, where=True):
    _check_dtype(dtype, "prod")
    keepdims = bool(keepdims) if _given(keepdims) else False
    p, _, s = _parts(a)
    if where is not _NV and where is not True:
        a = select(np.broadcast_to(_where_mask(where, True), p.shape), a, 1.0)
    x, axes, _ = _reduce_front(a, axis)
    r = _prod_front(x, s)
    kw = {}
    if _given(initial) and initial is not None:
        r = mul(r, initial)
        kw["initial"] = _parts(initial)[0]
    if where is not _NV and where is not True:
        kw["where"] = _where_mask(where, True)
    ref = np.prod(p, axis=axis, keepdims=keepdims, **kw)  # NumPy's rounding (sequential)
    return _store(_with_primal(_keep(r, p.shape, axes, keepdims), ref), out)


def _scan_front(x, op):
    """Inclusive scan along axis 0 (Hillis-Steele: log2(n) dual operations)."""
    n = x.shape[0]
    k = 1
    while k < n:
        x = _concatenate([x[:k], op(x[k:], x[: n - k])])
        k *= 2
    return x


def _cumprod_impl(a, axis):
    p = _parts(a)[0]
    if axis is None:
        a, ax = _ravel(a), 0
    else:
        ax = _ax(axis, p.ndim)
    x = _moveaxis(a, ax, 0)
    r = _moveaxis(_scan_front(x, mul), 0, ax)
    return _with_primal(r, np.cumprod(_parts(a)[0], axis=ax))  # NumPy's rounding


@implements(np.cumprod)
def _cumprod(a, axis=None, dtype=None, out=None):
    _check_dtype(dtype, "cumprod")
    return _store(_cumprod_impl(a, axis), out)


@implements(_np("cumulative_prod"))
def _cumulative_prod(x, *, axis=None, dtype=None, out=None, include_initial=False):
    _check_dtype(dtype, "cumulative_prod")
    p, _, s = _parts(x)
    if axis is None:
        if p.ndim != 1:
            raise ValueError(
                "For arrays which have more than one dimension ``axis`` argument is required."
            )
        axis = 0
    ax = _ax(axis, p.ndim)
    r = _cumprod_impl(x, ax)
    if include_initial:
        shape = list(p.shape)
        shape[ax] = 1
        r = _concatenate([constant(np.ones(shape), s), r], axis=ax)
    return _store(r, out)


def _extreme(a, axis, out, keepdims, initial, where, which, ignore_nan=False):
    keepdims = bool(keepdims) if _given(keepdims) else False
    p, t, s = _parts(a)
    npf = np.max if which == "max" else np.min
    kw = {}
    if _given(initial) and initial is not None:
        kw["initial"] = _parts(initial)[0]
    if where is not _NV and where is not True:
        kw["where"] = _plain_mask(where)
    ref = npf(p, axis=axis, keepdims=keepdims, **kw)  # NumPy's errors and values
    if s is None:
        return _store(ref, out)
    axes = _axes(axis, p.ndim)
    if _traced(s) or _is_traced(initial):
        # on the tape: a tree of maximum/minimum selects (fmax/fmin ignoring NaN), no guard
        if ignore_nan:
            uf = np.fmax if which == "max" else np.fmin
        else:
            uf = np.maximum if which == "max" else np.minimum
        dual_init = _isdual(initial)
        kr = {}
        if "where" in kw:
            # masked elements take the initial value (a dual one joins after the reduction)
            kr["where"] = kw["where"]
            kr["initial"] = (-np.inf if which == "max" else np.inf) if dual_init else kw["initial"]
        if any(p.shape[i] == 0 for i in axes):
            r = _broadcast_to(initial, np.shape(ref)) if dual_init else constant(ref, s)
        else:
            r = uf.reduce(a, axis=axes, keepdims=keepdims, **kr)
            if "initial" in kw and ("where" not in kw or dual_init):
                r = uf(r, initial)
        return _store(_with_primal(r, ref), out)
    pp = p
    if "where" in kw:
        fill = -np.inf if which == "max" else np.inf
        pp = np.where(kw["where"], p, fill)
    x, _, rest = _reduce_front(_make(pp, t, s), axis)
    xp = x._p
    idx = (np.argmax if which == "max" else np.argmin)(xp, axis=0) if xp.shape[0] else None
    if idx is None:
        r = constant(np.broadcast_to(kw.get("initial", np.nan), rest), s)
    else:
        r = _take_along_axis(x, idx[np.newaxis], axis=0)[0] if rest else _take(x, idx)
        if "initial" in kw:
            init = kw["initial"]
            beats = (init > r._p) if which == "max" else (init < r._p)
            if _isdual(initial):
                r = select(beats, initial, r)
            else:
                r = select(beats, np.broadcast_to(init, np.shape(r._p)), r)
    r = _keep(r, p.shape, axes, keepdims)
    return _store(_with_primal(r, ref), out)


@implements(np.max, np.amax)
def _max(a, axis=None, out=None, keepdims=False, initial=_NV, where=_NV):
    return _extreme(a, axis, out, keepdims, initial, where, "max")


@implements(np.min, np.amin)
def _min(a, axis=None, out=None, keepdims=False, initial=_NV, where=_NV):
    return _extreme(a, axis, out, keepdims, initial, where, "min")


@implements(np.ptp)
def _ptp(a, axis=None, out=None, keepdims=False):
    return _store(_max(a, axis, keepdims=keepdims) - _min(a, axis, keepdims=keepdims), out)


def _nan_masked(a, fill):
    p, t, s = _parts(a)
    if _traced(s):
        return select(compare("!=", a, a), fill, a)
    nan = np.isnan(p)
    if not nan.any():
        return a
    return select(nan, fill, a)


@implements(np.nansum)
def _nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NV, where=_NV):
    return _sum(
        _nan_masked(a, 0.0), axis, dtype, out, keepdims, initial, True if where is _NV else where
    )


@implements(np.nanprod)
def _nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NV, where=_NV):
    return _prod(
        _nan_masked(a, 1.0), axis, dtype, out, keepdims, initial, True if where is _NV else where
    )


@implements(np.nanmean)
def _nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=_NV):
    p = _parts(a)[0]
    keepdims = bool(keepdims) if _given(keepdims) else False
    w = ~np.isnan(p)
    if where is not _NV and where is not True:
        w = w & _where_mask(where, True)
    ref = np.nanmean(p, axis=axis, keepdims=keepdims, where=w)
    if _is_traced(a):
        # the count of non-NaN elements is on the tape too
        nan = compare("!=", a, a)
        uw = True if where is _NV or where is True else _where_mask(where, True)
        total = _sum(select(nan, 0.0, a), axis, keepdims=keepdims, where=uw)
        count = _sum(select(nan, 0.0, np.ones(p.shape)), axis, keepdims=keepdims, where=uw)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = total / count
        return _store(_with_primal(r, ref), out)
    r = _mean(_nan_masked(a, 0.0), axis, keepdims=keepdims, where=w)
    return _store(_with_primal(r, ref), out)


def _nanextreme(a, axis, out, keepdims, initial, where, which):
    p = _parts(a)[0]
    npf = np.nanmax if which == "max" else np.nanmin
    kw = {}
    if _given(keepdims):
        kw["keepdims"] = keepdims
    if _given(initial) and initial is not None:
        kw["initial"] = _parts(initial)[0]
    if where is not _NV:
        kw["where"] = _where_mask(where, True)
    ref = npf(p, axis=axis, **kw)
    if _is_traced(a, initial):
        r = _extreme(a, axis, None, keepdims, initial, where, which, ignore_nan=True)
        return _store(_with_primal(r, ref), out)
    fill = -np.inf if which == "max" else np.inf
    r = _extreme(_nan_masked(a, fill), axis, None, keepdims, initial, where, which)
    return _store(_with_primal(r, ref), out)


@implements(np.nanmax)
def _nanmax(a, axis=None, out=None, keepdims=_NV, initial=_NV, where=_NV):
    return _nanextreme(a, axis, out, keepdims, initial, where, "max")


@implements(np.nanmin)
def _nanmin(a, axis=None, out=None, keepdims=_NV, initial=_NV, where=_NV):
    return _nanextreme(a, axis, out, keepdims, initial, where, "min")


@implements(np.sort)
def _sort(a, axis=-1, kind=None, order=None, *, stable=None):
    if order is not None:
        raise ValueError("a dual array has no fields to sort by (order=)")
    p = _parts(a)[0]
    if axis is None:
        a = _ravel(a)
        p, axis = p.ravel(), 0
    ax = _ax(axis, p.ndim)
    idx = np.argsort(p, axis=ax, kind="stable")
    if _is_traced(a):
        V = _vals(a)
        n = p.shape[ax]
        _order_guards(
            np.moveaxis(V, ax, 0).reshape(n, -1),
            np.moveaxis(p, ax, 0).reshape(n, -1),
            np.moveaxis(idx, ax, 0).reshape(n, -1),
            exact=False,
        )
    return _take_along_axis(a, idx, axis=ax)


def _sorted_front(x, ranks):
    """``x`` (``(n, *rest)``) sorted along axis 0 (stable, NaN last), for reading the elements
    of sorted positions ``ranks``; in a trace, guards fix which elements those are."""
    if not _is_traced(x):
        return _sort(x, axis=0)
    p = _parts(x)[0]
    n = p.shape[0]
    idx = np.argsort(p, axis=0, kind="stable")
    _rank_guards(_vals(x).reshape(n, -1), p.reshape(n, -1), idx.reshape(n, -1), ranks)
    return _take_along_axis(x, idx, axis=0)


def _nan_slices(r, x):
    """In a trace: ``r`` made NaN (its derivative kept, as in eager mode) where the slice along
    axis 0 of ``x`` holds a NaN (NumPy's median and quantiles are NaN there; which elements are
    NaN is guarded)."""
    if not _is_traced(x):
        return r
    bad = np.isnan(_parts(x)[0]).any(axis=0)
    if not bad.any():
        return r
    return r + np.where(bad, np.nan, -0.0)


def _var_impl(a, axis, ddof, keepdims, where, mean):
    p = _parts(a)[0]
    axes = _axes(axis, p.ndim)
    w = True if where is _NV else _where_mask(where, True)
    if mean is _NV:
        mu = (
            _mean(a, axes, keepdims=True, where=w)
            if _isdual(a)
            else np.mean(p, axes, keepdims=True, where=w)
        )
    else:
        mu = mean
    d = a - mu
    sq = mul(d, d)
    n = np.sum(np.broadcast_to(w, p.shape), axis=axes, keepdims=keepdims)
    if w is True:
        ss = _sum_any(sq, axes, keepdims)
    else:
        ss = _sum(sq, axes, keepdims=keepdims, where=w)
    return ss, np.maximum(n - ddof, 0)


def _moments(a, axis, dtype, ddof, keepdims, where, mean, correction, name):
    _check_dtype(dtype, name)
    if _given(correction):
        if ddof != 0:
            raise ValueError("ddof and correction can't be provided simultaneously.")
        ddof = correction
    keepdims = bool(keepdims) if _given(keepdims) else False
    p = _parts(a)[0]
    kw = {}
    if where is not _NV:
        kw["where"] = _where_mask(where, True)
    if mean is not _NV:
        kw["mean"] = _parts(mean)[0]
    ref = (np.var if name == "var" else np.std)(p, axis=axis, ddof=ddof, keepdims=keepdims, **kw)
    ss, n = _var_impl(a, axis, ddof, keepdims, where, mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = ss * (1.0 / np.asarray(n, dtype=np.float64))
    if name == "std":
        v = unary("sqrt", v)
    return _with_primal(v, ref)


@implements(np.var)
def _var(
    a,
    axis=None,
    dtype=None,
    out=None,
    ddof=0,
    keepdims=False,
    *,
    where=_NV,
    mean=_NV,
    correction=_NV,
):
    return _store(_moments(a, axis, dtype, ddof, keepdims, where, mean, correction, "var"), out)


@implements(np.std)
def _std(
    a,
    axis=None,
    dtype=None,
    out=None,
    ddof=0,
    keepdims=False,
    *,
    where=_NV,
    mean=_NV,
    correction=_NV,
):
    return _store(_moments(a, axis, dtype, ddof, keepdims, where, mean, correction, "std"), out)


@implements(np.median)
def _median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    p = _parts(a)[0]
    ref = np.median(p, axis=axis, keepdims=keepdims)
    x, axes, _ = _reduce_front(a, axis)
    n = x.shape[0]
    srt = _sorted_front(x, [n // 2] if n % 2 else [n // 2 - 1, n // 2])
    if n % 2:
        r = srt[n // 2]
    else:
        r = (srt[n // 2 - 1] + srt[n // 2]) * 0.5
    r = _nan_slices(r, x)
    return _store(_with_primal(_keep(r, p.shape, axes, keepdims), ref), out)


def _quantile_impl(a, q, axis, out, method, keepdims, name, scale):
    if _isdual(q):
        raise TypeError(f"numpy.{name} with a dual q has no derivative rule in duals")
    if method != "linear":
        raise TypeError(
            f"numpy.{name}(method={method!r}) has no derivative rule in duals (only 'linear')"
        )
    p = _parts(a)[0]
    qq = np.asarray(q, dtype=np.float64)
    ref = getattr(np, name)(p, q, axis=axis, keepdims=keepdims)
    x, axes, rest = _reduce_front(a, axis)
    n = x.shape[0]
    vi = np.clip(qq / scale, 0.0, 1.0) * (n - 1)
    lo = np.floor(vi).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    srt = _sorted_front(x, np.concatenate([lo.ravel(), hi.ravel()]))
    frac = (vi - lo).reshape(qq.shape + (1,) * len(rest))
    r = _take(srt, lo, axis=0) * (1.0 - frac) + _take(srt, hi, axis=0) * frac
    r = _nan_slices(r, x)
    if keepdims:
        shape = qq.shape + tuple(1 if i in axes else m for i, m in enumerate(p.shape))
        r = _reshape(r, shape)
    return _store(_with_primal(r, ref), out)


@implements(np.quantile)
def _quantile(
    a,
    q,
    axis=None,
    out=None,
    overwrite_input=False,
    method="linear",
    keepdims=False,
    *,
    weights=None,
    interpolation=None,
):
    if weights is not None:
        raise TypeError("numpy.quantile with weights has no derivative rule in duals")
    return _quantile_impl(a, q, axis, out, method, keepdims, "quantile", 1.0)


@implements(np.percentile)
def _percentile(
    a,
    q,
    axis=None,
    out=None,
    overwrite_input=False,
    method="linear",
    keepdims=False,
    *,
    weights=None,
    interpolation=None,
):
    if weights is not None:
        raise TypeError("numpy.percentile with weights has no derivative rule in duals")
    return _quantile_impl(a, q, axis, out, method, keepdims, "percentile", 100.0)


@implements(np.cov)
def _cov(
    m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *, dtype=None
):
    if fweights is not None or aweights is not None:
        raise TypeError("numpy.cov with fweights/aweights has no derivative rule in duals")
    _check_dtype(dtype, "cov")
    ref = np.cov(_parts(m)[0], None if y is None else _parts(y)[0], rowvar, bias, ddof)
    X = _atleast(m, 2)
    if not rowvar and np.shape(_parts(X)[0])[0] != 1:
        X = _transpose(X) if _isdual(X) else X.T
    if y is not None:
        Y = _atleast(y, 2)
        if not rowvar and np.shape(_parts(Y)[0])[0] != 1:
            Y = _transpose(Y) if _isdual(Y) else Y.T
        X = _concatenate([X, Y], axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    N = np.shape(_parts(X)[0])[1]
    Xc = X - (_mean(X, 1, keepdims=True) if _isdual(X) else np.mean(X, 1, keepdims=True))
    c = _dot(Xc, _transpose(Xc) if _isdual(Xc) else Xc.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = c * (np.float64(1.0) / np.float64(max(N - ddof, 0)))
    c = _squeeze(c) if _isdual(c) else np.squeeze(c)
    return _with_primal(c, ref)


@implements(np.corrcoef)
def _corrcoef(x, y=None, rowvar=True, *, dtype=None):
    c = _cov(x, y, rowvar, dtype=dtype)
    ref = np.corrcoef(_parts(x)[0], None if y is None else _parts(y)[0], rowvar)
    if np.ndim(_parts(c)[0]) == 0:
        return _with_primal(c / c, ref)
    d = _diagonal(c) if _isdual(c) else np.diag(c)
    sd = unary("sqrt", d)
    c = c / sd[:, np.newaxis]
    c = c / sd[np.newaxis, :]
    return _with_primal(_clip(c, -1.0, 1.0), ref)


# ----- index functions, comparisons and predicates: primal values only -----


def _on_primals(fn):
    def impl(*args, **kwargs):
        return fn(*_primals(args), **{k: _primals(v) for k, v in kwargs.items()})

    impl.__name__ = f"_primal_{getattr(fn, '__name__', 'f')}"
    return impl


_PRIMAL_ONLY = [
    "argmax", "argmin", "argsort", "argpartition", "nonzero", "flatnonzero", "argwhere",
    "count_nonzero", "searchsorted", "digitize", "isin", "isclose", "allclose", "array_equal",
    "array_equiv", "shape", "ndim", "size", "result_type", "common_type", "iscomplex", "isreal",
    "all", "any", "nanargmax", "nanargmin", "may_share_memory", "shares_memory", "lexsort",
    "tril_indices_from", "triu_indices_from", "diag_indices_from",
]  # fmt: skip


def _traced_or_primals(fn, traced):
    """``fn`` on primals; ``traced(*args, **kwargs)`` when an argument is traced (its result
    depends on the values: it records guards fixing what it returns)."""
    on_primals = _on_primals(fn)

    def impl(*args, **kwargs):
        if _tracer.active() and (_is_traced(*args) or _is_traced(*kwargs.values())):
            return traced(*args, **kwargs)
        return on_primals(*args, **kwargs)

    impl.__name__ = on_primals.__name__
    return impl


def _t_argext(fn, which):
    def impl(a, axis=None, out=None, **kw):
        p, V = _parts(a)[0], _vals(a)
        r = fn(p, axis=axis, out=out, **kw)  # NumPy's result and errors
        P, W = _axis_front(p, V, axis)
        if P.size:
            _argext_guards(W, P, fn(P, axis=0), which)
        return r

    return impl


def _front_order(p, V, r, axis):
    """``p``, ``V`` and an argsort-like result ``r`` along ``axis`` as ``(n, m)`` arrays."""
    if axis is None:
        return p.reshape(-1, 1), V.reshape(-1, 1), np.asarray(r).reshape(-1, 1)
    ax = _ax(axis, p.ndim)
    P, W = _axis_front(p, V, ax)
    return P, W, np.moveaxis(r, ax, 0).reshape(P.shape)


def _t_argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    p, V = _parts(a)[0], _vals(a)
    kw = {} if stable is None else {"stable": stable}
    r = np.argsort(p, axis=axis, kind=kind, order=order, **kw)
    if p.ndim:
        # a stable sort is fixed by the order with ties; any other by all comparison outcomes
        exact = not (stable or kind in ("stable", "mergesort"))
        P, W, idx = _front_order(p, V, r, axis)
        _order_guards(W, P, idx, exact)
    return r


def _t_argpartition(a, kth, axis=-1, kind="introselect", order=None):
    p, V = _parts(a)[0], _vals(a)
    r = np.argpartition(p, kth, axis=axis, kind=kind, order=order)
    if p.ndim:
        # the selection algorithm's path is fixed by the outcomes of all comparisons
        P, W, _ = _front_order(p, V, r, axis)
        _order_guards(W, P, np.argsort(P, axis=0, kind="stable"), exact=True)
    return r


def _t_lexsort(keys, axis=-1):
    r = np.lexsort(_primals(keys), axis=axis)
    for k in keys if not _isdual(keys) else [keys[i] for i in range(len(keys))]:
        if _is_traced(k):
            p, V = _parts(k)[0], _vals(k)
            P, W = _axis_front(p, V, axis)
            _order_guards(W, P, np.argsort(P, axis=0, kind="stable"), exact=True)
    return r


def _t_truth(fn):
    def impl(a, *args, **kwargs):
        return fn(_plain_mask(a), *_primals(args), **{k: _primals(v) for k, v in kwargs.items()})

    return impl


def _t_searchsorted(a, v, side="left", sorter=None):
    pa, pv = _parts(a)[0], _parts(v)[0]
    r = np.searchsorted(pa, pv, side=side, sorter=sorter)
    Va, Vv = _vals(a), _vals(v)
    if sorter is not None:
        sorter = np.asarray(sorter)
        pa, Va = pa[sorter], Va[sorter]
    _search_guards(Va, pa, np.reshape(Vv, -1), np.reshape(pv, -1), np.reshape(r, -1), side)
    return r


def _t_digitize(x, bins, right=False):
    px, pb = _parts(x)[0], _parts(bins)[0]
    r = np.digitize(px, pb, right=right)  # NumPy's result and monotonicity check
    Vx, Vb = np.reshape(_vals(x), -1), _vals(bins)
    if _is_traced(bins) and pb.size > 1:
        _guard("<=", Vb[:-1], Vb[1:])  # the outcomes fix increasing or decreasing
        _guard(">=", Vb[:-1], Vb[1:])
    side = "left" if right else "right"
    d = np.diff(pb)
    first = d[d != 0]
    if first.size and first[0] < 0:  # decreasing: n - searchsorted(bins[::-1], x)
        j = pb.size - np.reshape(r, -1)
        _search_guards(Vb[::-1], pb[::-1], Vx, np.reshape(px, -1), j, side)
    else:
        _search_guards(Vb, pb, Vx, np.reshape(px, -1), np.reshape(r, -1), side)
    return r


def _operand(x):
    return x if _isdual(x) else np.asarray(x, dtype=np.float64)


def _t_isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = _operand(a), _operand(b)
    ab = unary("abs", b)
    with np.errstate(invalid="ignore"):
        m = compare("<=", unary("abs", a - b), atol + rtol * ab) & compare("<", ab, np.inf)
        m = m | compare("==", a, b)
        if equal_nan:
            m = m | (compare("!=", a, a) & compare("!=", b, b))
    return m


def _t_allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(np.all(_tracer.plain(_t_isclose(a, b, rtol, atol, equal_nan))))


def _t_array_equal(a1, a2, equal_nan=False):
    a1, a2 = _operand(a1), _operand(a2)
    if np.shape(_parts(a1)[0]) != np.shape(_parts(a2)[0]):
        return False
    return _t_equiv(a1, a2, equal_nan)


def _t_equiv(a1, a2, equal_nan=False):
    m = compare("==", a1, a2)
    if equal_nan:
        m = m | (compare("!=", a1, a1) & compare("!=", a2, a2))
    return bool(np.all(_tracer.plain(m)))


def _t_array_equiv(a1, a2):
    a1, a2 = _operand(a1), _operand(a2)
    try:
        np.broadcast_shapes(np.shape(_parts(a1)[0]), np.shape(_parts(a2)[0]))
    except ValueError:
        return False
    return _t_equiv(a1, a2)


def _t_isin(element, test_elements, assume_unique=False, invert=False, *, kind=None):
    pe = _parts(element)[0]
    E = np.reshape(_vals(element), (-1, 1))
    T = np.reshape(_vals(test_elements), (1, -1))
    r = _guard("==", E, T).any(axis=1).reshape(pe.shape)
    return ~r if invert else r


_TRACED_PRIMAL_ONLY = {
    "argmax": _t_argext(np.argmax, "max"),
    "argmin": _t_argext(np.argmin, "min"),
    "nanargmax": _t_argext(np.nanargmax, "max"),
    "nanargmin": _t_argext(np.nanargmin, "min"),
    "argsort": _t_argsort,
    "argpartition": _t_argpartition,
    "lexsort": _t_lexsort,
    "nonzero": _t_truth(np.nonzero),
    "flatnonzero": _t_truth(np.flatnonzero),
    "argwhere": _t_truth(np.argwhere),
    "count_nonzero": _t_truth(np.count_nonzero),
    "all": _t_truth(np.all),
    "any": _t_truth(np.any),
    "searchsorted": _t_searchsorted,
    "digitize": _t_digitize,
    "isin": _t_isin,
    "isclose": _t_isclose,
    "allclose": _t_allclose,
    "array_equal": _t_array_equal,
    "array_equiv": _t_array_equiv,
}
for _name in _PRIMAL_ONLY:
    _f = _np(_name)
    if _f is not None and _f not in HANDLED:
        _t = _TRACED_PRIMAL_ONLY.get(_name)
        implements(_f)(_on_primals(_f) if _t is None else _traced_or_primals(_f, _t))
implements(_np("linalg.matrix_rank"))(_on_primals(np.linalg.matrix_rank))


@implements(np.iscomplexobj)
def _iscomplexobj(x):
    return False


@implements(np.isrealobj)
def _isrealobj(x):
    return True


@implements(np.real)
def _real(val):
    return val


@implements(np.imag)
def _imag(val):
    p, _, s = _parts(val)
    return constant(np.zeros_like(p), s)


@implements(np.round, np.around, _np("round_") if not _NUMPY2 else None)
def _round(a, decimals=0, out=None):
    p, _, s = _parts(a)
    ref = np.round(p, decimals)
    if _traced(s):
        # NumPy's own steps: rint(a * 10**d) / 10**d, or rint(a / 10**-d) * 10**-d
        d = operator.index(decimals)
        f = 10.0 ** abs(d)
        if d == 0:
            r = np.rint(a)
        elif d > 0:
            r = np.rint(a * f) / f
        else:
            r = np.rint(a / f) * f
        return _store(_with_primal(r, ref), out)
    return _store(constant(ref, s), out)


@implements(np.fix)
def _fix(x, out=None):
    p, _, s = _parts(x)
    if _traced(s):
        return _store(_with_primal(np.trunc(x), np.fix(p)), out)
    return _store(constant(np.fix(p), s), out)


@implements(np.nan_to_num)
def _nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    p, t, s = _parts(x)
    r = np.nan_to_num(p, copy=True, nan=nan, posinf=posinf, neginf=neginf)
    if s is None:
        return r
    if _traced(s):
        big = np.finfo(np.float64).max
        res = select(compare("!=", x, x), nan, x)
        res = select(compare("==", x, np.inf), big if posinf is None else posinf, res)
        res = select(compare("==", x, -np.inf), -big if neginf is None else neginf, res)
        res = _with_primal(res, r)
    else:
        res = _make(r, np.where(np.isfinite(p)[np.newaxis], t, 0.0), s)
    if not copy and isinstance(x, DualArray):
        x[...] = res
        return x
    return res


@implements(np.unwrap)
def _unwrap(p, discont=None, axis=-1, *, period=2 * np.pi):
    pp, _, s = _parts(p)
    r = np.unwrap(pp, discont=discont, axis=axis, period=period)
    if _traced(s):
        return _with_primal(_traced_unwrap(p, discont, axis, period), r)
    return _with_primal(p + (r - pp), r)  # shifts by constant multiples of the period


def _traced_unwrap(p, discont, axis, period):
    """NumPy's unwrap, step by step on the tape (the shifts depend on the values)."""
    pp = _parts(p)[0]
    ax = _ax(axis, pp.ndim)
    dd = _diff(p, axis=ax)
    if discont is None:
        discont = period / 2
    high = period / 2
    low = -high
    ddmod = np.mod(dd - low, period) + low
    ddmod = select(compare("==", ddmod, low) & compare(">", dd, 0.0), high, ddmod)
    fix = select(compare("<", unary("abs", dd), discont), 0.0, ddmod - dd)
    head = _take(p, np.arange(1), axis=ax)
    tail = _take(p, np.arange(1, pp.shape[ax]), axis=ax) + _cumsum(fix, axis=ax)
    return _concatenate([head, tail], axis=ax)


@implements(np.sinc)
def _sinc(x):
    p, _, s = _parts(x)
    u = x * np.pi
    small = compare("<", unary("abs", u), 1e-2) if _traced(s) else np.abs(p * np.pi) < 1e-2
    safe = select(small, 1.0, u)
    big = unary("sin", safe) / safe
    # Taylor series near 0 (exact first and second derivatives at u = 0)
    w = mul(u, u)
    series = 1.0 / 362880.0
    for c in (-1.0 / 5040.0, 1.0 / 120.0, -1.0 / 6.0, 1.0):
        series = series * w + c
    return _with_primal(select(small, series, big), np.sinc(p))


@implements(np.where)
def _where(condition, *xy):
    if not xy:
        return np.nonzero(_plain_mask(condition))
    if len(xy) != 2:
        raise ValueError("either both or neither of x and y should be given")
    return select(_mask(condition), xy[0], xy[1])


@implements(np.select)
def _select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    r = default
    for cond, choice in reversed(list(zip(condlist, choicelist, strict=True))):
        r = select(_mask(cond), choice, r)
    shape = np.broadcast_shapes(
        *(
            np.shape(c) if isinstance(c, _tracer.TraceMask) else np.shape(_parts(c)[0])
            for c in list(condlist) + list(choicelist)
        )
    )
    if np.shape(_parts(r)[0]) != shape:
        r = _broadcast_to(r, shape) if _isdual(r) else np.broadcast_to(r, shape)
        r = _copy(r) if _isdual(r) else r.copy()
    return r


@implements(np.piecewise)
def _piecewise(x, condlist, funclist, *args, **kw):
    p, _, s = _parts(x)
    if isinstance(condlist, np.ndarray) and condlist.ndim == p.ndim and condlist.dtype == bool:
        condlist = [condlist]
    # the pieces are applied to x[cond]: traced conditions are guarded
    conds = [np.broadcast_to(_plain_mask(c), p.shape) for c in condlist]
    n = len(conds)
    if len(funclist) == n + 1:
        conds.append(~np.any(conds, axis=0) if n else np.ones(p.shape, dtype=bool))
    elif len(funclist) != n:
        raise ValueError(f"with {n} condition(s), either {n} or {n + 1} functions are expected")
    if p.ndim == 0:
        y = constant(np.zeros(()), s)
        for cond, func in zip(conds, funclist, strict=True):
            if cond:
                y = func(x, *args, **kw) if callable(func) else func
        return y if _isdual(y) else constant(np.asarray(y, dtype=np.float64), s)
    y = _like_result(np.zeros(p.shape), s)
    for cond, func in zip(conds, funclist, strict=True):
        y[cond] = func(x[cond], *args, **kw) if callable(func) else func
    return y


@implements(np.clip)
def _clip(a, a_min=_NV, a_max=_NV, out=None, *, min=_NV, max=_NV, **kwargs):  # noqa: A002
    lo = a_min if _given(a_min) else (min if _given(min) else None)
    hi = a_max if _given(a_max) else (max if _given(max) else None)
    r = a
    if _is_traced(a, lo, hi):
        # selects on the tape, no guard
        if lo is not None:
            r = select(compare("<", r, lo) | compare("!=", lo, lo), lo, r)
        if hi is not None:
            r = select(compare(">", r, hi) | compare("!=", hi, hi), hi, r)
        lo = hi = None
    if lo is not None:
        lp = _parts(lo)[0]
        rp = _parts(r)[0]
        r = select((rp < lp) | np.isnan(lp), lo, r)
    if hi is not None:
        hp = _parts(hi)[0]
        rp = _parts(r)[0]
        r = select((rp > hp) | np.isnan(hp), hi, r)
    if r is a:
        r = _copy(a) if _isdual(a) else np.array(_parts(a)[0])
    return _store(r, out)


@implements(np.copyto)
def _copyto(dst, src, casting="same_kind", where=True):
    w = _where_mask(where, True)
    if isinstance(dst, DualArray):
        if w.all():
            dst[...] = (
                _broadcast_to(src, dst.shape)
                if _isdual(src)
                else np.broadcast_to(_parts(src)[0], dst.shape)
            )
        else:
            dst[...] = select(np.broadcast_to(w, dst.shape), src, dst.copy())
        return None
    if _isdual(src):
        raise TypeError(_LOST.format(what="a plain NumPy array (np.copyto)"))
    return np.copyto(dst, src, casting=casting, where=where)


@implements(np.put_along_axis)
def _put_along_axis(arr, indices, values, axis):
    if not isinstance(arr, DualArray):
        raise TypeError(_LOST.format(what="a plain NumPy array (np.put_along_axis)"))
    idx = np.asarray(_index(indices))
    p = arr._p
    if axis is None:
        target = idx.ravel()
    else:
        target = np.take_along_axis(np.arange(p.size).reshape(p.shape), idx, axis)
    vals = (
        _broadcast_to(values, target.shape)
        if _isdual(values)
        else np.broadcast_to(_parts(values)[0], target.shape)
    )
    arr[np.unravel_index(target, p.shape)] = vals
    return None


@implements(np.put)
def _put(a, ind, v, mode="raise"):
    if not isinstance(a, DualArray):
        raise TypeError(_LOST.format(what="a plain NumPy array (np.put)"))
    ind = np.asarray(_index(ind)).ravel()
    if mode == "wrap":
        ind = ind % a.size
    elif mode == "clip":
        ind = np.clip(ind, 0, a.size - 1)
    elif np.any((ind >= a.size) | (ind < -a.size)):
        raise IndexError(f"index out of range for array of size {a.size}")
    vp = _parts(v)[0]
    idx = np.resize(np.arange(max(vp.size, 1)), ind.size)
    vals = _take(v, idx) if _isdual(v) else np.take(vp, idx)
    a[np.unravel_index(ind % a.size, a.shape)] = vals
    return None


# ----- polynomials and interpolation -----


@implements(np.polyval)
def _polyval(p, x):
    pp, _, _ = _parts(p)
    if isinstance(p, (list, tuple)) or isinstance(p, np.ndarray):
        coeffs = list(p)
    else:
        coeffs = [p[i] for i in range(pp.shape[0])]
    y = np.zeros(np.shape(_parts(x)[0]))
    for c in coeffs:
        y = y * x + c
    return y


@implements(np.polyder)
def _polyder(p, m=1):
    m = operator.index(m)
    if m < 0:
        raise ValueError("Order of derivative must be positive (see polyint)")
    r = p
    for _ in range(m):
        n = np.shape(_parts(r)[0])[0] - 1
        if n <= 0:
            return constant(np.zeros(1), _parts(r)[2])
        r = r[:-1] * np.arange(n, 0, -1, dtype=np.float64)
    return r


@implements(np.polyint)
def _polyint(p, m=1, k=None):
    m = operator.index(m)
    if k is None:
        k = [0.0] * m
    elif np.ndim(_parts(k)[0]) == 0:
        k = [k] * m
    r = p
    for i in range(m):
        n = np.shape(_parts(r)[0])[0]
        r = _concatenate([r / np.arange(n, 0, -1, dtype=np.float64), _atleast(k[i], 1)])
    return r


@implements(np.polyfit)
def _polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    if _isdual(x) or _isdual(w):
        raise TypeError("numpy.polyfit is differentiated with respect to y only (x and w constant)")
    if full or cov:
        raise TypeError("numpy.polyfit(full=True or cov=True) has no derivative rule in duals")
    p, t, s = _parts(y)
    r = np.polyfit(x, p, deg, rcond=rcond, w=w)
    if s is None:
        return r
    if _traced(s):
        # linear in y: the coefficients of the fits of the unit vectors, times the tape values
        n = p.shape[0]
        M = np.polyfit(x, np.eye(n), deg, rcond=rcond, w=w)  # (deg + 1, n)
        return _make(r, np.tensordot(M, t[0], 1)[np.newaxis], s)
    # Least squares is linear in y: fit every tangent row (as extra columns).
    T = np.moveaxis(t, 0, -1).reshape(p.shape[0], -1)
    ct = np.polyfit(x, T, deg, rcond=rcond, w=w).reshape((r.shape[0],) + p.shape[1:] + (s.K,))
    return _make(r, np.moveaxis(ct, -1, 0), s)


@implements(np.interp)
def _interp(x, xp, fp, left=None, right=None, period=None):
    if _isdual(xp):
        raise TypeError(
            "numpy.interp is differentiated with respect to x and fp only (xp constant)"
        )
    if period is not None:
        raise TypeError("numpy.interp(period=...) has no derivative rule in duals")
    px = _parts(x)[0]
    pfp = _parts(fp)[0]
    xpa = np.asarray(xp, dtype=np.float64)
    lp = None if left is None else _parts(left)[0]
    rp = None if right is None else _parts(right)[0]
    ref = np.interp(px, xpa, pfp, lp, rp)
    n = xpa.size
    if n == 1:
        i = np.zeros(px.shape, dtype=np.intp)
        y = _take(fp, i) if _isdual(fp) else np.take(pfp, i)
    else:
        j = np.searchsorted(xpa, px, side="right")
        if _is_traced(x):
            # the interval of every x is guarded; the ends are selects below
            Vx = np.reshape(_vals(x), -1)
            _search_guards(xpa, xpa, Vx, px.reshape(-1), j.reshape(-1), "right")
        i = np.clip(j - 1, 0, n - 2)
        x0, x1 = xpa[i], xpa[i + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            w = (x - x0) * (1.0 / (x1 - x0))
        f0 = _take(fp, i) if _isdual(fp) else np.take(pfp, i)
        f1 = _take(fp, i + 1) if _isdual(fp) else np.take(pfp, i + 1)
        y = f0 + (f1 - f0) * w
    left = _take(fp, 0) if left is None and _isdual(fp) else (pfp[0] if left is None else left)
    right = (
        _take(fp, n - 1) if right is None and _isdual(fp) else (pfp[-1] if right is None else right)
    )
    if _is_traced(x):
        y = select(compare("<", x, xpa[0]), left, y)
        y = select(compare(">", x, xpa[-1]), right, y)
    else:
        y = select(px < xpa[0], left, y)
        y = select(px > xpa[-1], right, y)
    return _with_primal(y, ref)


@implements(np.cross, _np("linalg.cross"))
def _cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    A = _moveaxis(a, axisa, -1) if _isdual(a) else np.moveaxis(_parts(a)[0], axisa, -1)
    B = _moveaxis(b, axisb, -1) if _isdual(b) else np.moveaxis(_parts(b)[0], axisb, -1)
    na, nb = np.shape(_parts(A)[0])[-1], np.shape(_parts(B)[0])[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("incompatible dimensions for cross product\n(dimension must be 2 or 3)")

    def c(X, i, n):
        return X[..., i] if i < n else 0.0

    a0, a1, a2 = c(A, 0, na), c(A, 1, na), c(A, 2, na)
    b0, b1, b2 = c(B, 0, nb), c(B, 1, nb), c(B, 2, nb)
    z = mul(a0, b1) - mul(a1, b0)
    if na == 2 and nb == 2:
        return z
    x = mul(a1, b2) - mul(a2, b1)
    y = mul(a2, b0) - mul(a0, b2)
    shape = np.broadcast_shapes(*(np.shape(_parts(v)[0]) for v in (x, y, z)))
    comps = [
        _broadcast_to(v, shape) if _isdual(v) else np.broadcast_to(v, shape) for v in (x, y, z)
    ]
    r = _stack(comps, axis=-1)
    return _moveaxis(r, -1, axisc)


# ------------------------------------------------------------------------------------------------
# Linear algebra
# ------------------------------------------------------------------------------------------------


def _solve_vec(a, b) -> bool:
    if _NUMPY2:
        return np.ndim(b) == 1
    return np.ndim(b) == np.ndim(a) - 1


def _solve_many(a, R, vec: bool):
    """``solve(a, R[k])`` for every tangent row ``k`` of ``R`` with ONE factorization of ``a``:
    the rows are stacked as extra right-hand-side columns."""
    K = R.shape[0]
    if vec:
        Y = np.linalg.solve(a, np.moveaxis(R, 0, -1))
        return np.moveaxis(Y, -1, 0)
    m = R.shape[-1]
    X = np.moveaxis(R, 0, -2)
    X = np.reshape(X, X.shape[:-2] + (K * m,))
    Y = np.linalg.solve(a, X)
    Y = np.reshape(Y, Y.shape[:-1] + (K, m))
    return np.moveaxis(Y, -2, 0)


def _solve_rule(ps, ts):
    a, b = ps
    ta, tb = ts
    x = np.linalg.solve(a, b)
    vec = _solve_vec(a, b)
    R = None if tb is None else _expand(tb, np.ndim(x))
    if ta is not None:
        ax = np.matmul(ta, x[..., np.newaxis])[..., 0] if vec else np.matmul(ta, x)
        R = -ax if R is None else R - ax
    if R is None:
        return [(x, None)]
    K = R.shape[0]
    if K == 0:
        return [(x, np.zeros((0,) + np.shape(x)))]
    return [(x, _solve_many(a, R, vec))]


@implements(np.linalg.solve)
def _linalg_solve(a, b):
    if _is_traced(a, b):
        return _t_solve(a, b)
    return _rule1(_solve_rule, a, b)


def _inv_rule(ps, ts):
    (a,), (ta,) = ps, ts
    X = np.linalg.inv(a)
    if ta is None:
        return [(X, None)]
    return [(X, -np.matmul(X, np.matmul(ta, X)))]


@implements(np.linalg.inv)
def _linalg_inv(a):
    if _is_traced(a):
        return _t_inv(a)
    return _rule1(_inv_rule, a)


def _adjugate(A: np.ndarray) -> np.ndarray:
    """The adjugate of (a stack of) square matrices, also for singular ones (via the SVD)."""
    n = A.shape[-1]
    if n == 0:
        return np.zeros(A.shape)
    U, sv, Vh = np.linalg.svd(A)
    ones = np.ones(sv.shape[:-1] + (1,))
    pre = np.cumprod(np.concatenate([ones, sv[..., :-1]], axis=-1), axis=-1)
    suf = np.cumprod(np.concatenate([ones, sv[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = pre * suf  # prod_{j != i} s_j
    sign = np.linalg.det(U) * np.linalg.det(Vh)
    return sign[..., np.newaxis, np.newaxis] * np.matmul(
        _mT(Vh) * others[..., np.newaxis, :], _mT(U)
    )


def _det_rule(ps, ts):
    (a,), (ta,) = ps, ts
    d = np.linalg.det(a)
    if ta is None:
        return [(d, None)]
    if isinstance(a, np.ndarray):
        cof = _mT(_adjugate(a))
    else:
        cof = _mT(np.linalg.inv(a)) * np.expand_dims(d, (-2, -1))
    return [(d, np.sum(cof * ta, axis=(-2, -1)))]


@implements(np.linalg.det)
def _linalg_det(a):
    if _is_traced(a):
        return _t_det(a)
    return _rule1(_det_rule, a)


def _pinv_rule(kw):
    def rule(ps, ts):
        (a,), (ta,) = ps, ts
        X = np.linalg.pinv(a, **kw)
        if ta is None:
            return [(X, None)]
        # d A+ = -A+ dA A+ + A+ A+^T dA^T (I - A A+) + (I - A+ A) dA^T A+^T A+ (constant rank)
        m, n = np.shape(_parts(a)[0])[-2:]
        dAT = _mT(ta)
        left = np.eye(m) - np.matmul(a, X)
        right = np.eye(n) - np.matmul(X, a)
        t = -np.matmul(X, np.matmul(ta, X))
        t = t + np.matmul(np.matmul(X, _mT(X)), np.matmul(dAT, left))
        t = t + np.matmul(right, np.matmul(dAT, np.matmul(_mT(X), X)))
        return [(X, t)]

    return rule


@implements(np.linalg.pinv)
def _linalg_pinv(a, rcond=None, hermitian=False, *, rtol=_NV):
    kw = {"hermitian": hermitian}
    if rcond is not None:
        kw["rcond"] = rcond
    if _given(rtol):
        kw["rtol"] = rtol
    return _rule1(_pinv_rule(kw), a)


@implements(np.linalg.lstsq)
def _linalg_lstsq(a, b, rcond=None):
    """``x = pinv(a) b`` (derivative for a constant rank), residuals and singular values as
    dual numbers; the values are NumPy's own."""
    pa, pb = _parts(a)[0], _parts(b)[0]
    x0, res0, rank, s0 = np.linalg.lstsq(pa, pb, rcond=rcond)
    m, n = pa.shape
    kw = {} if rcond is None else {"rcond": rcond}
    if rcond is None:
        kw["rcond"] = np.finfo(np.float64).eps * max(m, n)
    x = np.matmul(_linalg_pinv(a, **kw) if _isdual(a) else np.linalg.pinv(pa, **kw), b)
    x = _with_primal(x, x0)
    if res0.size:
        r = b - np.matmul(a, x)
        res = _with_primal(_sum_any(mul(r, r), 0, pb.ndim == 1), res0)
    else:
        res = constant(res0, _seed_of(_parts(a)[2], _parts(b)[2]))
    if _isdual(a):
        G = np.matmul(_mT(a), a) if n <= m else np.matmul(a, _mT(a))
        lam = _linalg_eigvalsh(G)
        lam = select(_parts(lam)[0] < 0, 0.0, lam)
        sv = _flip(unary("sqrt", lam))
        sv = _with_primal(sv, s0)
    else:
        sv = constant(s0, _seed_of(_parts(b)[2]))
    return x, res, rank, sv


_SlogdetResult = type(np.linalg.slogdet(np.eye(1)))


def _slogdet_rule(ps, ts):
    (a,), (ta,) = ps, ts
    sign, logabs = np.linalg.slogdet(a)
    sign = _parts(sign)[0]
    if ta is None:
        return [(sign, None), (logabs, None)]
    return [(sign, None), (logabs, np.sum(_mT(np.linalg.inv(a)) * ta, axis=(-2, -1)))]


@implements(np.linalg.slogdet)
def _linalg_slogdet(a):
    if _is_traced(a):
        return _t_slogdet(a)
    sign, logabs = _lift(_slogdet_rule, [a])
    return _SlogdetResult(sign, logabs)


@implements(np.linalg.matrix_power)
def _matrix_power(a, n):
    n = operator.index(_index(n))
    p, _, s = _parts(a)
    if p.ndim < 2 or p.shape[-1] != p.shape[-2]:
        raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
    if n == 0:
        return constant(np.broadcast_to(np.eye(p.shape[-1]), p.shape).copy(), s)
    if n < 0:
        a, n = _linalg_inv(a), -n
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else np.matmul(result, base)
        n >>= 1
        if n:
            base = np.matmul(base, base)
    return result


def _sym_from(t, upper: bool):
    """The symmetric matrix a symmetric-eigensolver sees: one triangle of ``t`` mirrored."""
    if upper:
        return np.triu(t) + _mT(np.triu(t, 1))
    return np.tril(t) + _mT(np.tril(t, -1))


_EighResult = type(np.linalg.eigh(np.eye(1)))


def _eigh_rule(upper):
    def rule(ps, ts):
        (a,), (ta,) = ps, ts
        w, V = np.linalg.eigh(a, UPLO="U" if upper else "L")
        if ta is None:
            return [(w, None), (V, None)]
        S = _sym_from(ta, upper)
        M = np.matmul(_mT(V), np.matmul(S, V))  # (K, ..., n, n)
        dw = np.diagonal(M, axis1=-2, axis2=-1)
        n = np.shape(_parts(w)[0])[-1]
        eye = np.eye(n, dtype=bool)
        D = w[..., np.newaxis, :] - w[..., :, np.newaxis]
        with np.errstate(divide="ignore", invalid="ignore"):
            F = select(eye, 0.0, 1.0 / select(eye, 1.0, D))
        dV = np.matmul(V, F * M)
        return [(w, dw), (V, dV)]

    return rule


@implements(np.linalg.eigh)
def _linalg_eigh(a, UPLO="L"):
    w, V = _lift(_eigh_rule(UPLO == "U"), [a])
    return _EighResult(w, V)


def _eigvalsh_rule(upper):
    def rule(ps, ts):
        (a,), (ta,) = ps, ts
        w, V = np.linalg.eigh(a, UPLO="U" if upper else "L")
        if ta is None:
            return [(w, None)]
        S = _sym_from(ta, upper)
        M = np.matmul(_mT(V), np.matmul(S, V))
        return [(w, np.diagonal(M, axis1=-2, axis2=-1))]

    return rule


@implements(np.linalg.eigvalsh)
def _linalg_eigvalsh(a, UPLO="L"):
    return _rule1(_eigvalsh_rule(UPLO == "U"), a)


def _cholesky_rule(upper):
    def rule(ps, ts):
        (a,), (ta,) = ps, ts
        L = np.linalg.cholesky(a)  # lower: NumPy reads the lower triangle
        if ta is None:
            return [(_mT(L) if upper else L, None)]
        S = _sym_from(ta, False)
        n = np.shape(_parts(L)[0])[-1]
        Lb = L[np.newaxis]
        Y = np.linalg.solve(Lb, S)  # L^-1 S
        X = np.linalg.solve(Lb, _mT(Y))  # L^-1 S L^-T
        phi = np.tril(X, -1) + X * (0.5 * np.eye(n))
        dL = np.matmul(L, phi)
        if upper:
            return [(_mT(L), _mT(dL))]
        return [(L, dL)]

    return rule


@implements(np.linalg.cholesky)
def _linalg_cholesky(a, /, *, upper=False):
    if upper:
        # upper=True reads the upper triangle: U = cholesky(a.T, lower).T
        a = _mT(a)
    if _is_traced(a):
        L = _t_cholesky(a)
        return _mT(L) if upper else L
    return _rule1(_cholesky_rule(upper), a)


# ----- linear algebra in a trace (duals.compile) -----
# Solve, inv, det and slogdet by Gaussian elimination written with dual operations on the traced
# arrays: every multiplication and division is recorded, and the pivot choices are guarded.

#: A traced elimination keeps its pivot while it is at least this fraction of the largest
#: candidate of its column (threshold partial pivoting: the tape stays valid over a wider region
#: than with exact partial pivoting, with the element growth still bounded).
_PIVOT_THRESHOLD = 0.5


def _is_zero_constant(e) -> bool:
    return type(e) is not _tracer.Node and float(e) == 0.0


def _t_lu(M, n: int, singular: str = "raise"):
    """Eliminate the first ``n`` columns of the traced 2-D array ``M`` (``n`` rows; further
    columns are right-hand sides): ``(rows, pivots, sign)``, row ``k`` of the upper factor from
    column ``k`` on (right-hand sides included), and the sign of the row permutation. A column
    without a nonzero candidate raises ``LinAlgError``, or returns ``None`` (``singular="none"``).
    """
    rows, pivots, sign = [], [], 1.0
    for k in range(n):
        col = M[:, 0]
        pc = np.abs(np.atleast_1d(_parts(col)[0]))
        r = int(np.argmax(pc))
        if pc[r] == 0.0:
            if singular == "none":
                return None
            raise np.linalg.LinAlgError("Singular matrix")
        V = np.atleast_1d(_vals(col))
        if n - k > 1:
            A = np.atleast_1d(_vals(unary("abs", col)))
            others = np.arange(n - k) != r
            _guard(">=", A[r], A[others] * _PIVOT_THRESHOLD)
        _guard("!=", V[r], 0.0)
        if r:
            perm = np.arange(n - k)
            perm[0], perm[r] = r, 0
            M = M[perm]
            sign = -sign
            V = V[perm]
        piv = M[0, 0]
        rows.append(M[0])
        pivots.append(piv)
        if k == n - 1:
            break
        rest = M[1:, 1:]
        nz = np.array([not _is_zero_constant(e) for e in V[1:]], dtype=bool)
        if nz.any():
            # rows with a constant zero in the column are left as they are (no fake dependence)
            lead = M[1:, 0][nz] / piv
            upd = rest[nz] - lead[:, np.newaxis] * M[0, 1:][np.newaxis]
            rest = _copy(rest)
            rest[nz] = upd
        M = rest
    return rows, pivots, sign


def _t_back(rows, n: int):
    """Back substitution: the ``(n, m)`` solution from the rows of :func:`_t_lu`."""
    X = None
    for k in reversed(range(n)):
        row = rows[k]
        y = row[n - k :]
        if X is not None:
            y = y - np.matmul(row[1 : n - k], X)
        xk = (y / row[0])[np.newaxis]
        X = xk if X is None else _concatenate([xk, X])
    return X


def _t_square(pa, name: str) -> int:
    if pa.ndim < 2 or pa.shape[-1] != pa.shape[-2]:
        raise np.linalg.LinAlgError(
            f"Last 2 dimensions of the array must be square (numpy.linalg.{name})"
        )
    return pa.shape[-1]


def _t_each(fn, batch, *arrays):
    """``fn`` on every matrix of a batch (the arrays broadcast to ``batch``), stacked."""
    if not batch:
        return fn(*arrays)
    res = [fn(*(x[idx] for x in arrays)) for idx in np.ndindex(*batch)]
    r = _stack(res)
    return _reshape(r, batch + np.shape(_parts(r)[0])[1:])


def _t_solve(a, b):
    pa, pb = _parts(a)[0], _parts(b)[0]
    ref = np.linalg.solve(pa, pb)  # NumPy's checks, errors and value
    n = _t_square(pa, "solve")
    vec = _solve_vec(pa, pb)
    if vec:
        b = _expand_dims(b, -1) if _isdual(b) else pb[..., np.newaxis]
    pbm = np.shape(_parts(b)[0])
    batch = np.broadcast_shapes(pa.shape[:-2], pbm[:-2])
    A = _broadcast_to(a, batch + (n, n)) if _isdual(a) else np.broadcast_to(pa, batch + (n, n))
    B = (
        _broadcast_to(b, batch + pbm[-2:])
        if _isdual(b)
        else np.broadcast_to(_parts(b)[0], batch + pbm[-2:])
    )

    def one(A, B):
        M = _concatenate([A, B], axis=1)
        rows, _, _ = _t_lu(M, n)
        return _t_back(rows, n)

    X = _t_each(one, batch, A, B) if n else constant(np.zeros(batch + pbm[-2:]), TRACE)
    if vec:
        X = X[..., 0]
    return _with_primal(X, ref)


def _t_inv(a):
    pa = _parts(a)[0]
    ref = np.linalg.inv(pa)
    n = _t_square(pa, "inv")
    if n == 0:
        return constant(ref, TRACE)

    def one(A):
        rows, _, _ = _t_lu(_concatenate([A, np.eye(n)], axis=1), n)
        return _t_back(rows, n)

    return _with_primal(_t_each(one, pa.shape[:-2], a), ref)


def _t_det_small(A, n: int):
    """The determinant by cofactors (``n <= 3``): exact everywhere, no guard; batched."""

    def e(i, j):
        return A[..., i, j]

    if n == 1:
        return e(0, 0)
    if n == 2:
        return e(0, 0) * e(1, 1) - e(0, 1) * e(1, 0)
    return (
        e(0, 0) * (e(1, 1) * e(2, 2) - e(1, 2) * e(2, 1))
        - e(0, 1) * (e(1, 0) * e(2, 2) - e(1, 2) * e(2, 0))
        + e(0, 2) * (e(1, 0) * e(2, 1) - e(1, 1) * e(2, 0))
    )


#: Largest order of a matrix whose determinant is expanded by cofactors when the trace point
#: makes the elimination meet a zero column (a singular matrix): ``n 2**n`` operations.
_LAPLACE_MAX = 10


def _t_det_laplace(A, n: int):
    """The determinant of a 2-D traced matrix by cofactor expansion along the rows (minors
    memoized by their columns): a polynomial, exact also at singular matrices."""
    memo: dict = {}

    def minor(cols):
        k = n - len(cols)
        if k == n:
            return 1.0
        if cols in memo:
            return memo[cols]
        acc = None
        V = _vals(A[k])
        for pos, j in enumerate(cols):
            if _is_zero_constant(V[j]):
                continue
            term = A[k, j] * minor(cols[:pos] + cols[pos + 1 :])
            if acc is None:
                acc = -term if pos % 2 else term
            else:
                acc = acc - term if pos % 2 else acc + term
        acc = 0.0 if acc is None else acc
        memo[cols] = acc
        return acc

    return minor(tuple(range(n)))


def _t_det(a):
    pa = _parts(a)[0]
    n = _t_square(pa, "det")
    ref = np.linalg.det(pa)
    if n == 0:
        return constant(ref, TRACE)
    if n <= 3:
        return _with_primal(_t_det_small(a, n), ref)

    def one(A):
        lu = _t_lu(A, n, singular="none")
        if lu is None:  # an exact zero column at the trace point
            if n > _LAPLACE_MAX:
                raise _tracer.unsupported(
                    f"numpy.linalg.det at a singular matrix of order {n} > {_LAPLACE_MAX}"
                )
            return _t_det_laplace(A, n)
        _, pivots, sign = lu
        d = pivots[0]
        for q in pivots[1:]:
            d = d * q
        return -d if sign < 0 else d

    return _with_primal(_t_each(one, pa.shape[:-2], a), ref)


def _t_slogdet(a):
    pa = _parts(a)[0]
    n = _t_square(pa, "slogdet")
    ref_sign, ref_log = np.linalg.slogdet(pa)
    if n == 0:
        return _SlogdetResult(ref_sign, constant(ref_log, TRACE))

    def sign_of(d) -> float:
        if bool(compare(">", d, 0.0)):
            return 1.0
        if bool(compare("<", d, 0.0)):
            return -1.0
        # eager mode needs the inverse for the derivative
        raise np.linalg.LinAlgError("Singular matrix")

    def one(A):
        if n <= 3:
            d = _t_det_small(A, n)
            return sign_of(d), unary("ln", unary("abs", d))
        _, pivots, sign = _t_lu(A, n)
        logabs = None
        for q in pivots:
            sign *= sign_of(q)
            lq = unary("ln", unary("abs", q))
            logabs = lq if logabs is None else logabs + lq
        return sign, logabs

    batch = pa.shape[:-2]
    if not batch:
        sg, la = one(a)
        return _SlogdetResult(np.float64(sg), _with_primal(la, ref_log))
    res = [one(a[idx]) for idx in np.ndindex(*batch)]
    signs = np.array([r[0] for r in res]).reshape(batch)
    logabs = _reshape(_stack([r[1] for r in res]), batch)
    return _SlogdetResult(signs, _with_primal(logabs, ref_log))


def _t_cholesky(a):
    """The lower Cholesky factor (reading the lower triangle) column by column on the tape;
    a guard on every diagonal pivot being positive."""
    pa = _parts(a)[0]
    np.linalg.cholesky(pa)  # NumPy's checks and errors
    n = _t_square(pa, "cholesky")

    def one(A):
        L = _like_result(np.zeros((n, n)), TRACE)
        for j in range(n):
            col = A[j:, j]
            if j:
                col = col - np.matmul(L[j:, :j], L[j, :j])
            if not bool(compare(">", col[0], 0.0)):
                raise np.linalg.LinAlgError("Matrix is not positive definite")
            d = unary("sqrt", col[0])
            L[j, j] = d
            if j < n - 1:
                L[j + 1 :, j] = col[1:] / d
        return L

    if n == 0:
        return constant(np.zeros(pa.shape), TRACE)
    return _with_primal(_t_each(one, pa.shape[:-2], a), np.linalg.cholesky(pa))


# ----- norms -----


def _abs(x):
    return unary("abs", x) if _isdual(x) else np.abs(x)


def _vector_norm(x, ord, axes, keepdims):
    if ord is None or ord == 2:
        return unary("sqrt", _sum_any(mul(x, x), axes, keepdims))
    if ord == np.inf:
        return _max(_abs(x), axes, keepdims=keepdims)
    if ord == -np.inf:
        return _min(_abs(x), axes, keepdims=keepdims)
    if ord == 0:
        p, _, s = _parts(x)
        if _traced(s):  # the count of nonzeros on the tape
            return _sum_any(select(compare("!=", x, 0.0), 1.0, 0.0), axes, keepdims)
        return constant(np.sum(p != 0, axis=axes, keepdims=keepdims).astype(np.float64), s)
    if ord == 1:
        return _sum_any(_abs(x), axes, keepdims)
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    ordf = float(ord)
    return _sum_any(_abs(x) ** ordf, axes, keepdims) ** (1.0 / ordf)


def _sv_extreme(x, r, c, which):
    """Largest/smallest singular value or their sum over the matrix axes (r, c), via the
    eigenvalues of the smaller Gram matrix."""
    if _is_traced(x):
        raise _tracer.unsupported(
            "numpy.linalg.norm of a matrix with ord=2, -2 or 'nuc' (singular values)"
        )
    A = _moveaxis(x, (r, c), (-2, -1))
    m, n = A.shape[-2], A.shape[-1]
    G = np.matmul(_mT(A), A) if n <= m else np.matmul(A, _mT(A))
    lam = _linalg_eigvalsh(G)
    lam = select(_parts(lam)[0] < 0, 0.0, lam)
    if which == "max":
        return unary("sqrt", lam[..., -1])
    if which == "min":
        return unary("sqrt", lam[..., 0])
    return _sum(unary("sqrt", lam), -1)


def _matrix_norm(x, ord, r, c, keepdims):
    nd = np.ndim(_parts(x)[0])
    if ord is None or ord == "fro":
        res = unary("sqrt", _sum_any(mul(x, x), (r, c)))
    elif ord == "nuc":
        res = _sv_extreme(x, r, c, "sum")
    elif ord in (2, -2):
        res = _sv_extreme(x, r, c, "max" if ord == 2 else "min")
    elif ord in (1, -1):
        cc = c - 1 if c > r else c
        s = _sum_any(_abs(x), r)
        res = _max(s, cc) if ord == 1 else _min(s, cc)
    elif ord in (np.inf, -np.inf):
        rr = r - 1 if r > c else r
        s = _sum_any(_abs(x), c)
        res = _max(s, rr) if ord == np.inf else _min(s, rr)
    else:
        raise ValueError("Invalid norm order for matrices.")
    if keepdims:
        shape = list(np.shape(_parts(x)[0]))
        shape[r] = shape[c] = 1
        res = _reshape(res, shape)
    del nd
    return res


@implements(np.linalg.norm)
def _linalg_norm(x, ord=None, axis=None, keepdims=False):
    p, _, _ = _parts(x)
    ref = np.linalg.norm(p, ord, axis, keepdims)  # NumPy's checks and value
    nd = p.ndim
    if axis is None:
        if ord is None:
            r = _vector_norm(_ravel(x), None, 0, False)
            if keepdims:
                r = _reshape(r, (1,) * nd)
            return _with_primal(r, ref)
        axis = tuple(range(nd))
    elif not isinstance(axis, tuple):
        axis = (operator.index(axis),)
    if len(axis) == 1:
        r = _vector_norm(x, ord, _ax(axis[0], nd), keepdims)
    else:
        r = _matrix_norm(x, ord, _ax(axis[0], nd), _ax(axis[1], nd), keepdims)
    return _with_primal(r, ref)


@implements(_np("linalg.vector_norm"))
def _linalg_vector_norm(x, *, axis=None, keepdims=False, ord=2):
    p = _parts(x)[0]
    ref = np.linalg.vector_norm(p, axis=axis, keepdims=keepdims, ord=ord)
    if axis is None:
        r = _vector_norm(_ravel(x), ord, 0, False)
        if keepdims:
            r = _reshape(r, (1,) * p.ndim)
    else:
        r = _vector_norm(x, ord, _axes(axis, p.ndim), keepdims)
    return _with_primal(r, ref)


@implements(_np("linalg.matrix_norm"))
def _linalg_matrix_norm(x, *, keepdims=False, ord="fro"):
    p = _parts(x)[0]
    ref = np.linalg.matrix_norm(p, keepdims=keepdims, ord=ord)
    return _with_primal(_matrix_norm(x, ord, p.ndim - 2, p.ndim - 1, keepdims), ref)


# ------------------------------------------------------------------------------------------------
# Creation
# ------------------------------------------------------------------------------------------------


def _shape_tuple(shape):
    if np.ndim(shape) == 0:
        return (operator.index(shape),)
    return tuple(operator.index(n) for n in shape)


def _like_result(p, s):
    """A dual array with zero tangents and primal ``p``."""
    p = np.asarray(p, dtype=np.float64)
    return _make(p, np.zeros((s.K,) + p.shape), s)


def _fill_like(a, fill, dtype, shape, name):
    if type(a) is DualArray and dtype is None and shape is None and type(fill) is float:
        # np.zeros_like(y) of a dual array (an ODE right-hand side's output), directly
        shape = a.shape  # (not `_p`, which would hand the arrays out)
        p = np.empty(shape)
        p.fill(fill)  # np.full costs ten times more at small sizes
        # of a banded array (a Jacobian's stencil): a constant without diagonals
        r = _native._band_constant(a, p)
        if r is not None:
            return r
        return _make(p, np.zeros((a._s.K,) + shape), a._s)
    p, _, sa = _parts(a)
    shp = p.shape if shape is None else _shape_tuple(shape)
    if not _float_dtype(dtype):
        if _isdual(fill):
            raise TypeError(_LOST.format(what=f"an array of dtype {np.dtype(dtype)}"))
        return np.full(shp, fill, dtype=dtype)
    fp, ft, fs = _parts(fill)
    s = _seed_of(sa, fs)
    r = np.full(shp, fp, dtype=np.float64)
    if s is None:
        return r
    if ft is None:
        return _like_result(r, s)
    return _make(r, _full_tangent(ft, s.K, shp), s)


@implements(np.zeros_like)
def _zeros_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return _fill_like(a, 0.0, dtype, shape, "zeros_like")


@implements(np.ones_like)
def _ones_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return _fill_like(a, 1.0, dtype, shape, "ones_like")


@implements(np.empty_like)
def _empty_like(prototype, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return _fill_like(prototype, 0.0, dtype, shape, "empty_like")


@implements(np.full_like)
def _full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return _fill_like(a, fill_value, dtype, shape, "full_like")


def _seed_from_like(like):
    return _parts(like)[2]


def _create(shape, fill, dtype, like):
    shp = _shape_tuple(shape)
    if not _float_dtype(dtype):
        return np.full(shp, fill, dtype=dtype)
    fp, ft, fs = _parts(fill)
    s = _seed_of(_seed_from_like(like), fs)
    r = np.full(shp, fp, dtype=np.float64)
    if ft is None:
        return _like_result(r, s)
    return _make(r, _full_tangent(ft, s.K, shp), s)


@implements(np.zeros, like=True)
def _zeros(shape, dtype=None, order="C", *, device=None, _like=None):
    return _create(shape, 0.0, dtype, _like)


@implements(np.ones, like=True)
def _ones(shape, dtype=None, order="C", *, device=None, _like=None):
    return _create(shape, 1.0, dtype, _like)


@implements(np.empty, like=True)
def _empty(shape, dtype=None, order="C", *, device=None, _like=None):
    return _create(shape, 0.0, dtype, _like)


@implements(np.full, like=True)
def _full(shape, fill_value, dtype=None, order="C", *, device=None, _like=None):
    return _create(shape, fill_value, dtype, _like)


@implements(np.eye, like=True)
def _eye(N, M=None, k=0, dtype=float, order="C", *, device=None, _like=None):
    r = np.eye(N, M, k, dtype=dtype if not _float_dtype(dtype) else np.float64)
    if not _float_dtype(dtype):
        return r
    return _like_result(r, _seed_from_like(_like))


@implements(np.identity, like=True)
def _identity(n, dtype=None, *, _like=None):
    return _eye(n, dtype=dtype, _like=_like)


@implements(np.tri, like=True)
def _tri_create(N, M=None, k=0, dtype=float, *, _like=None):
    r = np.tri(N, M, k, dtype=dtype if not _float_dtype(dtype) else np.float64)
    if not _float_dtype(dtype):
        return r
    return _like_result(r, _seed_from_like(_like))


def _array_like(obj, dtype, copy, ndmin, like):
    if not _float_dtype(dtype):
        return np.array(_parts(obj)[0], dtype=dtype, ndmin=ndmin)
    p, t, s = _parts(obj)
    s = _seed_of(s, _seed_from_like(like))
    if t is None:
        r = _like_result(np.array(p, dtype=np.float64), s)
    elif _isdual(obj) and not copy:
        r = obj
    else:
        r = _make(np.array(p, dtype=np.float64), np.array(t), s)
    if ndmin and np.ndim(r._p) < ndmin:
        r = _reshape(r, (1,) * (ndmin - r._p.ndim) + r._p.shape)
    return r


@implements(np.array, like=True)
def _array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, ndmax=0, _like=None):  # noqa: A002
    return _array_like(object, dtype, copy is True, ndmin, _like)


@implements(np.asarray, np.asanyarray, like=True)
def _asarray(a, dtype=None, order=None, *, device=None, copy=None, _like=None):
    return _array_like(a, dtype, bool(copy), 0, _like)


@implements(np.ascontiguousarray, np.asfortranarray, like=True)
def _ascontiguousarray(a, dtype=None, *, _like=None):
    return _array_like(a, dtype, False, 1, _like)


@implements(np.arange, like=True)
def _arange(*args, _like=None, **kwargs):
    if _is_traced(*args, *kwargs.values()):
        raise _tracer.unsupported("numpy.arange with traced bounds (its length)")
    return np.arange(*_primals(args), **kwargs)


@implements(np.fromfunction, like=True)
def _fromfunction(function, shape, *, dtype=float, _like=None, **kwargs):
    return np.fromfunction(function, shape, dtype=dtype, **kwargs)


@implements(np.linspace)
def _linspace(
    start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *, device=None
):
    pa, ta, sa = _parts(start)
    pb, tb, sb = _parts(stop)
    s = _seed_of(sa, sb)
    num = operator.index(_index(num))
    ref = np.linspace(
        pa,
        pb,
        num,
        endpoint,
        retstep=True,
        dtype=dtype if not _float_dtype(dtype) else None,
        axis=axis,
    )
    y, step = ref
    if s is None or not _float_dtype(dtype):
        return (y, step) if retstep else y
    div = (num - 1) if endpoint else num
    if _traced(s):
        return _traced_linspace(start, stop, num, endpoint, retstep, axis, div, y, step)
    frac = np.arange(num, dtype=np.float64) / div if div > 0 else np.zeros(num)
    bshape = np.broadcast_shapes(pa.shape, pb.shape)
    f = frac.reshape((num,) + (1,) * len(bshape))
    nd = len(bshape) + 1
    t0 = _expand(_tan(ta, s.K, ()), len(bshape))[:, np.newaxis]
    t1 = _expand(_tan(tb, s.K, ()), len(bshape))[:, np.newaxis]
    T = t0 * (1.0 - f) + t1 * f  # (K, num, *bshape)
    T = np.broadcast_to(T, (s.K, num) + bshape)
    ax = _ax(axis, nd)
    r = _make(y, np.array(np.moveaxis(T, 1, ax + 1), order="C"), s)
    if retstep:
        st = (stop - start) * (1.0 / div) if div > 0 else constant(np.asarray(step), s)
        return r, _with_primal(st, step) if _isdual(st) else st
    return r


def _traced_linspace(start, stop, num, endpoint, retstep, axis, div, y, step):
    """NumPy's linspace steps on the tape: ``start + i * ((stop - start) / div)``, the last
    point ``stop`` (``y``, ``step``: NumPy's values)."""
    bshape = np.broadcast_shapes(np.shape(_parts(start)[0]), np.shape(_parts(stop)[0]))
    delta = stop - start  # dual: an endpoint is traced
    i = np.arange(num, dtype=np.float64).reshape((num,) + (1,) * len(bshape))
    st = delta / float(div) if div > 0 else None
    r = _broadcast_to(i * (st if div > 0 else delta) + start, (num,) + bshape)
    if endpoint and num > 1:
        last = stop if _isdual(stop) else np.asarray(stop, dtype=np.float64)
        last = _broadcast_to(last, bshape) if _isdual(last) else np.broadcast_to(last, bshape)
        last = _reshape(last, (1,) + bshape) if _isdual(last) else last.reshape((1,) + bshape)
        r = _concatenate([r[: num - 1], last])
    r = _with_primal(_moveaxis(r, 0, _ax(axis, len(bshape) + 1)), y)
    if retstep:
        return r, (_with_primal(st, step) if st is not None else step)
    return r


@implements(np.logspace)
def _logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    if not _float_dtype(dtype):
        return np.logspace(_parts(start)[0], _parts(stop)[0], num, endpoint, base, dtype, axis)
    y = _linspace(start, stop, num, endpoint, axis=axis)
    ref = np.logspace(_parts(start)[0], _parts(stop)[0], num, endpoint, base, axis=axis)
    return _with_primal(np.power(base, y), ref)


@implements(np.apply_along_axis)
def _apply_along_axis(func1d, axis, arr, *args, **kwargs):
    p = _parts(arr)[0]
    ax = _ax(axis, p.ndim)
    x = _moveaxis(arr, ax, -1) if _isdual(arr) else np.moveaxis(p, ax, -1)
    outer = p.shape[:ax] + p.shape[ax + 1 :]
    res = [func1d(x[idx], *args, **kwargs) for idx in np.ndindex(*outer)]
    if not res:
        raise ValueError("Cannot apply_along_axis when any iteration dimensions are 0")
    items, s = _items(res)
    inner = items[0][0].shape
    st = _join(items, s, lambda ps: np.stack(ps), lambda ts: np.stack(ts, axis=1))
    st = _reshape(st, outer + inner) if _isdual(st) else np.reshape(st, outer + inner)
    if not inner:
        return st
    src = tuple(range(len(outer), len(outer) + len(inner)))
    dst = tuple(range(ax, ax + len(inner)))
    return _moveaxis(st, src, dst) if _isdual(st) else np.moveaxis(st, src, dst)


@implements(np.bincount)
def _bincount(x, weights=None, minlength=0):
    x = np.asarray(_index(x))
    if weights is None or not _isdual(weights):
        return np.bincount(x, _parts(weights)[0] if weights is not None else None, minlength)
    p, t, s = _parts(weights)
    r = np.bincount(x, p, minlength)
    tt = np.zeros((r.size, s.K), dtype=t.dtype)  # object: tape values (duals.compile)
    np.add.at(tt, x.ravel(), _flat_t(t).T)
    return _make(r, np.ascontiguousarray(tt.T), s)


# ------------------------------------------------------------------------------------------------
# Compiled mode
# ------------------------------------------------------------------------------------------------

#: The functions whose implementations above are right for traced arrays (``duals.compile``):
#: linear and structural maps (NumPy applies them to the object array of tape values), creation
#: functions, compositions of ``_core`` primitives (which record themselves), and functions with
#: a trace branch (bilinear products on tape values, selections and choices recorded as selects
#: or guards, linear algebra by elimination). Every other handled function computes something
#: from the values at the trace point that the tape would not recompute at another point, and
#: raises in a trace (``_trace.unsupported``): ``linalg.eigh``, ``linalg.eigvalsh``,
#: ``linalg.pinv``, ``linalg.lstsq``, ``linalg.matrix_rank``.
_TRACE_SAFE_NAMES = """
    append array asanyarray asarray ascontiguousarray asfortranarray atleast_1d atleast_2d
    atleast_3d block broadcast_arrays broadcast_to column_stack concatenate copy cumsum
    cumulative_sum diag diagflat diagonal diff dsplit dstack ediff1d empty empty_like
    expand_dims eye flip fliplr flipud full full_like hsplit hstack identity matrix_transpose
    linalg.matrix_transpose linalg.diagonal mean moveaxis ndim ones ones_like ravel repeat
    reshape roll rollaxis rot90 shape size split array_split squeeze stack sum swapaxes take
    tile trace linalg.trace transpose tri tril triu vsplit vstack where zeros zeros_like
    unstack result_type common_type iscomplexobj isrealobj
    tril_indices_from triu_indices_from diag_indices_from may_share_memory shares_memory
    iscomplex isreal real imag einsum_path fromfunction arange linspace logspace
    take_along_axis compress extract insert delete resize pad lib.stride_tricks.sliding_window_view
    meshgrid fill_diagonal copyto put put_along_axis apply_along_axis bincount
    dot inner vdot outer kron tensordot einsum cross linalg.tensordot linalg.outer
    linalg.matmul linalg.vecdot linalg.multi_dot linalg.cross convolve correlate
    prod cumprod cumulative_prod nansum nanprod nanmean average std var cov corrcoef
    gradient trapezoid max min amax amin nanmax nanmin ptp clip nan_to_num
    sort median percentile quantile argmax argmin nanargmax nanargmin argsort argpartition
    lexsort nonzero flatnonzero argwhere count_nonzero all any searchsorted digitize isin
    isclose allclose array_equal array_equiv round around fix unwrap sinc select piecewise
    polyval polyder polyint polyfit interp
    linalg.norm linalg.vector_norm linalg.matrix_norm linalg.solve linalg.inv linalg.det
    linalg.slogdet linalg.matrix_power linalg.cholesky
"""
_TRACE_SAFE_SET = set(_TRACE_SAFE_NAMES.split())
TRACE_SAFE = frozenset(f for f in HANDLED if _qualname(f).removeprefix("numpy.") in _TRACE_SAFE_SET)
