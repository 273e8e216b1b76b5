"""Dual numbers and arrays of them: storage, seeds and the arithmetic primitives.

A dual array of shape ``S`` is a primal ``ndarray`` of shape ``S`` and one tangent ``ndarray`` of
shape ``(K, *S)`` (tangent axis first). A :class:`Seed` says what the ``K`` rows are:

* first order, ``K = k``: ``k`` directional derivatives;
* second order (hyper-dual), ``K = k1 + k2 + k1*k2``: rows ``[0, k1)`` are the first-order parts
  along a first set of directions, rows ``[k1, k1+k2)`` along a second set, and the last
  ``k1*k2`` rows the mixed second-order parts, ``e12[i, j]`` at row ``k1 + k2 + i*k2 + j``.

Linear structural operations (indexing, reshape, sum, concatenate, ...) act on the tangent exactly
as on the primal, whatever the seed. Nonlinear ones go through the rule table of the engine
(``duals._native``): the fused first-order kernel, or value and derivatives for the second-order
chain rule. No derivative formula of an elementary function is written in Python.
"""

from __future__ import annotations

import abc
import numbers
import operator

import numpy as np

from . import _native, _trace

__all__ = ["Dual", "DualArray"]

_LOST = (
    "converting a dual number to {what} would lose its derivative. "
    "Keep the computation in dual numbers: create outputs with np.zeros_like(x), "
    "np.empty_like(x) or np.zeros(n, like=x) instead of np.zeros(n)/np.empty(n), build them with "
    "np.array([...]) or return a list, and use NumPy functions (np.sin) instead of math.sin."
)


class Seed:
    """What the tangent rows of a dual array mean (see the module docstring)."""

    __slots__ = ("order", "k1", "k2", "K")

    def __init__(self, order: int, k1: int, k2: int = 0) -> None:
        self.order = order
        self.k1 = k1
        self.k2 = k2
        self.K = k1 if order == 1 else k1 + k2 + k1 * k2

    @classmethod
    def first(cls, k: int) -> Seed:
        return cls(1, k)

    @classmethod
    def second(cls, k1: int, k2: int) -> Seed:
        return cls(2, k1, k2)

    @classmethod
    def trace(cls) -> Seed:
        """The seed of traced arrays (``duals.compile``): order 0, one row of tape values."""
        return TRACE

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Seed)
            and self.order == other.order
            and self.k1 == other.k1
            and self.k2 == other.k2
        )

    def __hash__(self) -> int:
        return hash((self.order, self.k1, self.k2))

    def __repr__(self) -> str:
        if self.order == 0:
            return "Seed.trace()"
        if self.order == 1:
            return f"Seed.first({self.k1})"
        return f"Seed.second({self.k1}, {self.k2})"

    def split(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views ``e1 (k1, *S)``, ``e2 (k2, *S)``, ``e12 (k1, k2, *S)`` of a 2nd-order tangent."""
        k1, k2 = self.k1, self.k2
        return t[:k1], t[k1 : k1 + k2], t[k1 + k2 :].reshape((k1, k2) + t.shape[1:])

    def join(self, e1: np.ndarray, e2: np.ndarray, e12: np.ndarray) -> np.ndarray:
        shape = np.broadcast_shapes(e1.shape[1:], e2.shape[1:], e12.shape[2:])
        out = np.empty((self.K,) + shape)
        k1, k2 = self.k1, self.k2
        out[:k1] = e1
        out[k1 : k1 + k2] = e2
        out[k1 + k2 :] = np.broadcast_to(e12, (k1, k2) + shape).reshape((k1 * k2,) + shape)
        return out


#: The trace seed: a traced array's one "tangent" row holds its tape values (see ``_trace``).
TRACE = Seed(0, 1)


def _traced(s) -> bool:
    return s is not None and s.order == 0


# ------------------------------------------------------------------------------------------------
# The two classes
# ------------------------------------------------------------------------------------------------


class _Protocols:
    """``array_ufunc`` and ``array_function``, imported on first use (their modules import this
    one)."""

    def __getattr__(self, name):
        if name not in ("array_ufunc", "array_function"):
            raise AttributeError(name)
        from ._functions import array_function
        from ._ufuncs import array_ufunc

        self.array_ufunc = array_ufunc
        self.array_function = array_function
        return getattr(self, name)


_protocols = _Protocols()


class _DualBase(metaclass=abc.ABCMeta):
    """Arithmetic of :class:`DualArray`, and the type every dual number is an instance of.

    :class:`Dual` (the 0-d scalar) is the native class ``duals._native.Dual``, registered here
    as a virtual subclass: ``isinstance(x, _DualBase)`` holds for both, and both have ``_p``
    (primal ndarray), ``_t`` (tangent ndarray ``(K, *S)``) and ``_s`` (:class:`Seed`).
    """

    __slots__ = ()
    # Make NumPy defer to our reflected operators (ndarray * dual -> dual.__rmul__).
    __array_priority__ = 1000.0

    _p: np.ndarray
    _t: np.ndarray
    _s: Seed

    # ----- views -----
    @property
    def shape(self) -> tuple[int, ...]:
        return self._p.shape

    @property
    def ndim(self) -> int:
        return self._p.ndim

    @property
    def size(self) -> int:
        return self._p.size

    @property
    def ntangents(self) -> int:
        """Number of tangent rows ``K``."""
        return self._s.K

    # ----- the number protocol -----
    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __pow__(self, other, modulo=None):
        if modulo is not None:
            return NotImplemented
        return power(self, other)

    def __rpow__(self, other):
        return power(other, self)

    def __mod__(self, other):
        return mod(self, other)

    def __rmod__(self, other):
        return mod(other, self)

    def __floordiv__(self, other):
        return floor_divide(self, other)

    def __rfloordiv__(self, other):
        return floor_divide(other, self)

    def __matmul__(self, other):
        return np.matmul(self, other)

    def __rmatmul__(self, other):
        return np.matmul(other, self)

    def __neg__(self):
        return _make(-self._p, -self._t, self._s)

    def __pos__(self):
        return _make(self._p.copy(), self._t.copy(), self._s)

    def __abs__(self):
        return unary("abs", self)

    # Comparisons look at primals, as a branch in the differentiated code sees them (traced
    # values: a TraceMask, whose use as a bool records a guard).
    def __lt__(self, other):
        return _compare_op(self, other, "<", operator.lt)

    def __le__(self, other):
        return _compare_op(self, other, "<=", operator.le)

    def __gt__(self, other):
        return _compare_op(self, other, ">", operator.gt)

    def __ge__(self, other):
        return _compare_op(self, other, ">=", operator.ge)

    def __eq__(self, other):  # type: ignore[override]
        return _compare_op(self, other, "==", operator.eq)

    def __ne__(self, other):  # type: ignore[override]
        return _compare_op(self, other, "!=", operator.ne)

    __hash__ = None  # type: ignore[assignment]

    # ----- conversions that would lose the derivative -----
    def __float__(self):
        raise TypeError(_LOST.format(what="a float"))

    def __int__(self):
        raise TypeError(_LOST.format(what="an int"))

    def __index__(self):
        raise TypeError(_LOST.format(what="an integer index"))

    def __complex__(self):
        raise TypeError(_LOST.format(what="a complex number"))

    # ----- NumPy protocols (implemented in their own modules) -----
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _protocols.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _protocols.array_function(func, types, args, kwargs, self)

    # ----- NumPy-style methods -----
    def sum(self, axis=None, keepdims=False):
        return np.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return np.mean(self, axis=axis, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False):
        return np.prod(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return np.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return np.min(self, axis=axis, keepdims=keepdims)

    def dot(self, other):
        return np.dot(self, other)

    def copy(self):
        return _make(self._p.copy(), self._t.copy(), self._s)

    def conj(self):
        return self

    conjugate = conj

    @property
    def real(self):
        return self

    @property
    def imag(self):
        return _make(np.zeros_like(self._p), np.zeros_like(self._t), self._s)


class DualArray(_native._DualArrayBase, _DualBase):
    """An array of dual numbers: a primal array and tangents, differentiated through NumPy.

    Parameters
    ----------
    primal : array_like
        Values, any shape ``S``; converted to float64.
    tangent : array_like
        Tangents: shape ``(k, *S)`` for ``k`` directions, or shape ``S`` for one direction.

    Examples
    --------
    >>> import numpy as np, duals
    >>> x = duals.DualArray([1.0, 2.0], [1.0, 1.0])
    >>> y = np.sin(x) * x          # d/dx = cos(x) x + sin(x)
    >>> bool(np.allclose(y.tangent[0], np.cos([1, 2]) * [1, 2] + np.sin([1, 2])))
    True
    """

    __slots__ = ()

    def __new__(cls, primal, tangent):
        p = _as_float_array(primal, "primal")
        t = _as_float_array(tangent, "tangent")
        if t.shape == p.shape:
            t = t[np.newaxis]
        if t.shape[1:] != p.shape:
            raise ValueError(
                f"tangent must have shape (k, *primal.shape) or primal.shape; "
                f"got primal {p.shape} and tangent {t.shape}"
            )
        return _new_array(cls, p, np.ascontiguousarray(t), Seed.first(t.shape[0]))

    @property
    def primal(self) -> np.ndarray:
        """The values, shape ``S``."""
        if _traced(self._s):
            raise _unsupported("reading .primal of a traced array")
        return self._p

    @property
    def tangent(self) -> np.ndarray:
        """The tangents, shape ``(K, *S)``."""
        if _traced(self._s):
            raise _unsupported("reading .tangent of a traced array")
        return self._t

    @property
    def T(self):
        return np.transpose(self)

    @property
    def dtype(self):
        return np.dtype(np.float64)

    def __len__(self) -> int:
        shape = self.shape  # native: a pending array is not evaluated
        if not shape:
            raise TypeError("len() of a 0-d dual array")
        return shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        if _traced(self._s):
            return _trace.truth(self._t[0, ...], self._p)
        return bool(self._p)

    # x[i] and x[i] = d (int i, 1-d x) run natively in the base class; other indices here.
    def _getitem(self, index):
        if type(index) is slice and self._s.order:  # x[a:b:c] of a dual array: views, directly
            return _new_array(DualArray, self._p[index], self._t[:, index], self._s)
        index = _plain_index(index)
        tindex = (slice(None),) + (index if isinstance(index, tuple) else (index,))
        return _make(self._p[index], self._t[tindex], self._s)

    def _setitem(self, index, value) -> None:
        index = _plain_index(index)
        tindex = (slice(None),) + (index if isinstance(index, tuple) else (index,))
        vp, vt, vs = _parts(value)
        if vs is not None and vs != self._s:
            raise ValueError(_mixed_seeds(self._s, vs))
        target = self._p[index]
        self._p[index] = vp
        if _traced(self._s):
            # the tape values: the value's nodes, or its (constant) values
            self._t[tindex] = _expand(
                vt if vt is not None else np.asarray(vp)[None], np.ndim(target)
            )
        elif vt is None:
            self._t[tindex] = 0.0
        else:
            self._t[tindex] = _expand(vt, np.ndim(target))

    # In-place operators write the result into this array (and so into what it is a view of),
    # as NumPy's do: `v = dy[1:]; v += 1` changes dy.
    def _inplace(self, op, other):
        self[...] = op(self, other)
        return self

    def __iadd__(self, other):
        return self._inplace(operator.add, other)

    def __isub__(self, other):
        return self._inplace(operator.sub, other)

    def __imul__(self, other):
        return self._inplace(operator.mul, other)

    def __itruediv__(self, other):
        return self._inplace(operator.truediv, other)

    def __ipow__(self, other):
        return self._inplace(operator.pow, other)

    def __imod__(self, other):
        return self._inplace(operator.mod, other)

    def __ifloordiv__(self, other):
        return self._inplace(operator.floordiv, other)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return np.reshape(self, shape, order=order)

    def ravel(self, order="C"):
        return np.ravel(self, order=order)

    def flatten(self, order="C"):
        return np.ravel(self, order=order).copy()

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return np.transpose(self, axes or None)

    def squeeze(self, axis=None):
        return np.squeeze(self, axis=axis)

    def cumsum(self, axis=None):
        return np.cumsum(self, axis=axis)

    def cumprod(self, axis=None):
        return np.cumprod(self, axis=axis)

    def std(self, axis=None, ddof=0, keepdims=False):
        return np.std(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False):
        return np.var(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def argmax(self, axis=None):
        return np.argmax(self, axis=axis)

    def argmin(self, axis=None):
        return np.argmin(self, axis=axis)

    def argsort(self, axis=-1):
        return np.argsort(self, axis=axis)

    def trace(self, offset=0, axis1=0, axis2=1):
        return np.trace(self, offset=offset, axis1=axis1, axis2=axis2)

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return np.diagonal(self, offset=offset, axis1=axis1, axis2=axis2)

    def swapaxes(self, axis1, axis2):
        return np.swapaxes(self, axis1, axis2)

    def take(self, indices, axis=None):
        return np.take(self, indices, axis=axis)

    def repeat(self, repeats, axis=None):
        return np.repeat(self, repeats, axis=axis)

    def sort(self, axis=-1):
        """Sort in place by primal value; tangents follow their elements."""
        s = np.sort(self, axis=axis)
        self._p[...] = s._p
        self._t[...] = s._t

    def clip(self, a_min=None, a_max=None):
        return np.clip(self, a_min, a_max)

    def astype(self, dtype, copy=True):
        if np.dtype(dtype) != np.float64:
            raise TypeError(
                f"a DualArray holds float64 values with derivatives; astype({dtype!r}) "
                "would lose the derivative"
            )
        return self.copy() if copy else self

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_LOST.format(what="a plain NumPy array"))

    def __repr__(self) -> str:
        return f"DualArray(primal={self._p!r}, tangent={self._t!r})"

    def __reduce__(self):
        return _make, (self._p, self._t, self._s)


#: The 0-d dual scalar: a native class (rust/duals-py/src/dual.rs) with the number protocol in
#: Rust for first-order seeds; what it does not handle natively it hands to the functions of
#: this module, ``_ufuncs`` and ``_functions``.
Dual = _native.Dual
_DualBase.register(Dual)

_new_dual = Dual._from_parts
_F64 = np.dtype(np.float64)
_new_array = _native._DualArrayBase.__new__


def _dual_args(primal, tangent):
    """``Dual(primal, tangent)``'s checks: ``(primal float, tangent (k,) float64, seed)``."""
    p = _as_float_array(primal, "primal")
    if p.ndim != 0:
        raise ValueError(f"Dual takes a scalar primal; got shape {p.shape} (use DualArray)")
    t = np.ascontiguousarray(_as_float_array(tangent, "tangent").reshape(-1))
    return float(p), t, Seed.first(t.shape[0])


_COMPARISONS = (operator.lt, operator.le, operator.eq, operator.ne, operator.gt, operator.ge)


def _compare(a, b, op: int):
    """A comparison of the Dual ``a`` with an operand the native class does not handle (``op``
    in the order lt, le, eq, ne, gt, ge): on primals."""
    return _COMPARISONS[op](a._p, _primal(b))


def _compare_op(a, b, symbol: str, op):
    """``a op b`` on primals, or a TraceMask of traced values."""
    if _traced(a._s) or (isinstance(b, _DualBase) and _traced(b._s)):
        return compare(symbol, a, b)
    return op(a._p, _primal(b))


def compare(symbol: str, a, b):
    """``a op b`` (``symbol`` one of ``< <= > >= == !=``): a boolean array of primals, or a
    TraceMask when a traced value takes part."""
    A, B = _parts(a), _parts(b)
    if _traced(A[2]) or _traced(B[2]):
        return _trace.TraceMask.compare(symbol, _trace.values(A), _trace.values(B))
    return _trace.NUMPY_CMP[symbol](A[0], B[0])


# ------------------------------------------------------------------------------------------------
# Construction and operands
# ------------------------------------------------------------------------------------------------


def _make(p: np.ndarray, t: np.ndarray, s: Seed):
    """The one constructor of results: a Dual for 0-d, else a DualArray (no checks)."""
    if type(p) is not np.ndarray or p.dtype is not _F64:
        p = np.asarray(p, dtype=np.float64)
    if s.order == 0:
        t = _trace.fill_constants(np.asarray(t), p)
        if p.ndim == 0:
            return _TraceScalar(p, t, s)
        return _new_array(DualArray, p, t, s)
    if p.ndim == 0:
        return _new_dual(p, t, s)
    return _new_array(DualArray, p, t, s)


class _TraceScalar(_DualBase):
    """A traced 0-d value (``duals.compile``): what indexing a traced array to one element
    gives, with the arithmetic, ufuncs and conversions of :class:`Dual`."""

    __slots__ = ("_p", "_t", "_s")

    def __init__(self, p: np.ndarray, t: np.ndarray, s: Seed) -> None:
        self._p = p
        self._t = t
        self._s = s

    def __bool__(self) -> bool:
        return _trace.truth(self._t[0, ...], self._p)

    def __round__(self, ndigits=None):
        raise TypeError(_LOST.format(what="a rounded float"))

    def __repr__(self) -> str:
        return f"<traced value {float(self._p)!r}>"


def _unsupported(what: str):
    return _trace.unsupported(what)


def _as_float_array(x, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind == "c":
        raise TypeError(f"complex {what} is not supported: duals differentiates real functions")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be real numbers; got an array of dtype {a.dtype}")
    return a.astype(np.float64)


def _primal(x):
    if isinstance(x, _DualBase):
        return x._p
    if isinstance(x, (list, tuple)):
        return [_primal(v) for v in x]
    return x


def _plain_index(index):
    """Index with the primal of any dual number inside (x[d] is not allowed: it has no value)."""
    if _trace.active():
        index = _trace.plain(index)
    if isinstance(index, _DualBase):
        raise TypeError(
            "a dual number cannot be used as an index; use an integer or a boolean array"
        )
    return index


def _parts(x):
    """``(primal, tangent or None, seed or None)`` of any operand."""
    if isinstance(x, _DualBase):
        return x._p, x._t, x._s
    if isinstance(x, np.ndarray) and x.dtype == object:
        from ._collect import collect

        return collect(x)
    if isinstance(x, (list, tuple)):
        from ._collect import collect

        return collect(x)
    if isinstance(x, (numbers.Real, np.ndarray, np.generic)) or x is None:
        a = np.asarray(x)
        if a.dtype.kind == "c":
            raise TypeError("complex values are not supported: duals differentiates real functions")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"cannot use a value of dtype {a.dtype} in dual arithmetic")
        return a.astype(np.float64, copy=False), None, None
    if isinstance(x, numbers.Complex):
        raise TypeError("complex values are not supported: duals differentiates real functions")
    raise TypeError(f"unsupported operand type for dual arithmetic: {type(x).__name__}")


def _mixed_seeds(a: Seed, b: Seed) -> str:
    return (
        f"cannot combine dual numbers with different tangent layouts ({a} and {b}); "
        "they come from different seeds (e.g. two calls of duals.jacobian)"
    )


def _seed_of(*seeds):
    s = None
    for x in seeds:
        if x is None:
            continue
        if s is None:
            s = x
        elif x != s:
            raise ValueError(_mixed_seeds(s, x))
    return s


def _expand(t: np.ndarray, ndim: int) -> np.ndarray:
    """A tangent ``(K, *S)`` reshaped to ``(K, 1, ..., *S)`` with ``ndim`` trailing axes, so that it
    broadcasts against primals of ``ndim`` dimensions."""
    extra = ndim - (t.ndim - 1)
    if extra <= 0:
        return t
    return t.reshape(t.shape[:1] + (1,) * extra + t.shape[1:])


def _full_tangent(t, K: int, shape) -> np.ndarray:
    if t is None:
        return np.zeros((K,) + tuple(shape))
    # Always a new, writable array: never a read-only broadcast view aliasing an operand's tangent
    return np.array(np.broadcast_to(_expand(t, len(shape)), (K,) + tuple(shape)), order="C")


def _outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a[i] * b[j]`` for first-order parts ``a (k1, *S)``, ``b (k2, *S)``: ``(k1, k2, *S)``."""
    return a[:, np.newaxis] * b[np.newaxis, :]


# ------------------------------------------------------------------------------------------------
# The chain rules
# ------------------------------------------------------------------------------------------------


def unary(name: str, x, param: float = 0.0):
    """``f(x)`` for the table entry ``name`` (a rule name of the engine, e.g. ``"sin"``)."""
    p, t, s = _parts(x)
    # C order: the glue reads a contiguous buffer in memory order, wrong for Fortran-ordered views
    p = np.asarray(p, dtype=np.float64, order="C")
    if t is None:
        f, _, _ = _native.unary_derivs(name, p, param)
        return f
    if s.order == 0:
        f = np.asarray(_native.unary_derivs(name, p, param)[0])
        return _make(f, _trace.unary(name, t[0, ...], f, param)[np.newaxis], s)
    t = np.asarray(t, order="C")
    if s.order == 1:
        fp, ft = _native.unary(name, p, t, param)
        return _make(fp, ft, s)
    f, d1, d2 = _native.unary_derivs(name, p, param)
    return _chain1(f, d1, d2, t, s)


def _chain1(f, d1, d2, t, s: Seed):
    """Second-order (or first-order) chain rule given value and derivatives."""
    if s.order == 1:
        return _make(f, d1 * t, s)
    e1, e2, e12 = s.split(t)
    return _make(f, s.join(d1 * e1, d1 * e2, d1 * e12 + d2 * _outer(e1, e2)), s)


def chain2(f, da, db, daa, dab, dbb, a_parts, b_parts):
    """The chain rule of a function of two arguments, given its value and derivatives (arrays
    broadcast to the result shape) and both operands' parts; absent tangents are left out."""
    (_, ta, sa), (_, tb, sb) = a_parts, b_parts
    s = _seed_of(sa, sb)
    if s is None:
        return f
    if s.order == 0:
        raise _unsupported("a two-argument function without a tape rule")
    nd = np.ndim(f)
    ta = None if ta is None else _expand(ta, nd)
    tb = None if tb is None else _expand(tb, nd)
    if s.order == 1:
        if ta is None:
            t = db * tb
        elif tb is None:
            t = da * ta
        else:
            t = da * ta + db * tb
        return _make(f, _full_tangent(t, s.K, np.shape(f)), s)
    shape = np.shape(f)
    e1 = np.zeros((s.k1,) + shape)
    e2 = np.zeros((s.k2,) + shape)
    e12 = np.zeros((s.k1, s.k2) + shape)
    # Only terms of operands that carry tangents: a constant contributes nothing (not 0 * inf).
    if ta is not None:
        a1, a2, a12 = s.split(ta)
        e1 = e1 + da * a1
        e2 = e2 + da * a2
        e12 = e12 + da * a12 + daa * _outer(a1, a2)
    if tb is not None:
        b1, b2, b12 = s.split(tb)
        e1 = e1 + db * b1
        e2 = e2 + db * b2
        e12 = e12 + db * b12 + dbb * _outer(b1, b2)
    if ta is not None and tb is not None:
        e12 = e12 + dab * (_outer(a1, b2) + _outer(b1, a2))
    shape = np.shape(f)
    return _make(
        f,
        s.join(
            np.broadcast_to(e1, (s.k1,) + shape),
            np.broadcast_to(e2, (s.k2,) + shape),
            e12,
        ),
        s,
    )


def binary_rule(name: str, a, b):
    """``f(a, b)`` for the two-argument table entry ``name`` (``pow``, ``atan2``, ``hypot``)."""
    pa, pb = _parts(a), _parts(b)
    x, y = np.broadcast_arrays(pa[0], pb[0])
    f, da, db, daa, dab, dbb = _native.binary_derivs(
        name, np.asarray(x, order="C"), np.asarray(y, order="C")
    )
    s = _seed_of(pa[2], pb[2])
    if _traced(s):
        f = np.asarray(f)
        return _make(f, _trace.binary(name, _trace.values(pa), _trace.values(pb), f)[None], s)
    return chain2(f, da, db, daa, dab, dbb, pa, pb)


# ------------------------------------------------------------------------------------------------
# Arithmetic: sum, product and quotient rules
# ------------------------------------------------------------------------------------------------


def _linear2(a, b, sign: float):
    pa, ta, sa = _parts(a)
    pb, tb, sb = _parts(b)
    s = _seed_of(sa, sb)
    p = pa + pb if sign > 0 else pa - pb
    if s is None:
        return p
    if s.order == 0:
        V = _trace.binary("add" if sign > 0 else "sub", _tv(pa, ta), _tv(pb, tb), np.asarray(p))
        return _make(p, V[np.newaxis], s)
    nd = np.ndim(p)
    if ta is None:
        t = _full_tangent(tb if sign > 0 else -tb, s.K, np.shape(p))
    elif tb is None:
        t = _full_tangent(ta, s.K, np.shape(p))
    else:
        t = _expand(ta, nd) + _expand(tb, nd) if sign > 0 else _expand(ta, nd) - _expand(tb, nd)
        if t.shape[1:] != np.shape(p):
            t = _full_tangent(t, s.K, np.shape(p))
    return _make(p, t, s)


def add(a, b):
    """``a + b``."""
    return _linear2(a, b, 1.0)


def sub(a, b):
    """``a - b``."""
    return _linear2(a, b, -1.0)


def mul(a, b):
    """``a * b``: ``(ab)' = a'b + ab'``."""
    A, B = _parts(a), _parts(b)
    (pa, ta, sa), (pb, tb, sb) = A, B
    s = _seed_of(sa, sb)
    p = pa * pb
    if s is None:
        return p
    if s.order == 0:
        V = _trace.binary("mul", _tv(pa, ta), _tv(pb, tb), np.asarray(p))
        return _make(p, V[np.newaxis], s)
    if s.order == 2 and ta is not None and tb is not None:
        one, zero = np.ones(()), np.zeros(())
        return chain2(p, pb, pa, zero, one, zero, A, B)
    nd = np.ndim(p)
    if ta is None:
        t = pa * _expand(tb, nd)
    elif tb is None:
        t = _expand(ta, nd) * pb
    else:
        t = _expand(ta, nd) * pb + pa * _expand(tb, nd)
    if t.shape[1:] != np.shape(p):
        t = _full_tangent(t, s.K, np.shape(p))
    return _make(p, t, s)


def div(a, b):
    """``a / b``: ``(a/b)' = (a' - (a/b) b') / b``."""
    A, B = _parts(a), _parts(b)
    (pa, ta, sa), (pb, tb, sb) = A, B
    s = _seed_of(sa, sb)
    f = pa / pb  # the value under the caller's error state (np.errstate(divide="raise") raises)
    if s is None:
        return f
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        if s.order == 0:
            V = _trace.binary("div", _tv(pa, ta), _tv(pb, tb), np.asarray(f))
            return _make(f, V[np.newaxis], s)
        nd = np.ndim(f)
        if tb is None:  # linear in a: every tangent row divided by b (any seed order)
            t = _expand(ta, nd) / pb
        elif s.order == 2:
            return mul(a, unary("recip", b))
        else:
            tb_ = _expand(tb, nd)
            t = (-f * tb_) / pb if ta is None else (_expand(ta, nd) - f * tb_) / pb
    if t.shape[1:] != np.shape(f):
        t = _full_tangent(t, s.K, np.shape(f))
    return _make(f, t, s)


def power(a, b):
    """``a ** b``: ``powi``/``powf`` for a constant exponent, ``pow`` for a variable one."""
    pa, ta, sa = _parts(a)
    pb, tb, sb = _parts(b)
    if tb is None:
        if ta is None:
            return np.power(pa, pb)
        e = np.asarray(pb, dtype=np.float64)
        if e.ndim == 0:
            v = float(e)
            if v == 2.0:
                return a * a  # the product rule: one pass, no pow call (native for arrays)
            if v == int(v) and abs(v) < 2**31:
                return unary("powi", a, v)
            return unary("powf", a, v)
    return binary_rule("pow", a, b)


def floor_divide(a, b):
    """``a // b``: piecewise constant, derivative zero."""
    pa, ta, sa = _parts(a)
    pb, tb, sb = _parts(b)
    s = _seed_of(sa, sb)
    if _traced(s):
        from ._ufuncs import traced_divmod  # NumPy's exact divmod, recorded on the tape

        return traced_divmod(a, b)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.floor_divide(pa, pb)
    return constant(q, s)


def mod(a, b):
    """``a % b`` (NumPy's floor remainder, sign of ``b``): ``a - b * floor(a / b)`` with the
    floor held constant, so ``d/da = 1`` and ``d/db = -floor(a/b)``."""
    pa, _, sa = _parts(a)
    pb, _, sb = _parts(b)
    if _traced(_seed_of(sa, sb)):
        from ._ufuncs import traced_divmod

        return traced_divmod(a, b)[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.floor_divide(pa, pb)
    return sub(a, mul(b, q))


def _tv(p, t, s=TRACE):
    """Tape values of an operand in a trace: its node row, or its values (a constant)."""
    if t is not None and s is not None and s.order == 0:
        return t[0, ...]
    return np.asarray(p, dtype=np.float64)


def constant(p, s: Seed | None):
    """A dual array with primal ``p`` and zero tangents (or ``p`` itself without a seed)."""
    p = np.asarray(p, dtype=np.float64)
    if s is None:
        return p
    return _make(p, np.zeros((s.K,) + p.shape), s)


def select(cond, a, b):
    """``where(cond, a, b)``: the derivative follows the selected argument."""
    pa, ta, sa = _parts(a)
    pb, tb, sb = _parts(b)
    s = _seed_of(sa, sb)
    if isinstance(cond, _trace.TraceMask):
        p = np.where(cond._b, pa, pb)
        V = _trace.select(cond, _tv(pa, ta, sa), _tv(pb, tb, sb), np.asarray(p))
        return _make(p, V[np.newaxis], s if s is not None else TRACE)
    cond = np.asarray(cond, dtype=bool)
    p = np.where(cond, pa, pb)
    if s is None:
        return p
    if s.order == 0:
        return _make(p, np.where(cond, _tv(pa, ta), _tv(pb, tb))[np.newaxis], s)
    shape = p.shape
    t = np.where(
        np.broadcast_to(cond, shape)[np.newaxis],
        _full_tangent(ta, s.K, shape),
        _full_tangent(tb, s.K, shape),
    )
    return _make(p, t, s)
