"""Tracing a NumPy function into a native tape (the machinery of :func:`duals.compile`).

A traced array is a dual array of the *trace seed* (``Seed.trace()``, one "tangent" row) whose
row holds, element by element, what the value is on the tape: a :class:`Node` (a value recorded
by the ``TapeBuilder``, depending on the inputs) or a float (a constant). The primal holds the
concrete values at the trace point, computed exactly as in eager mode.

Everything linear or structural (indexing, reshape, concatenate, sum, matmul, ...) therefore
works on traced arrays through the eager implementations unchanged: NumPy applies the operation
to the object array of nodes, and ``Node`` records every ``+ - * /`` it is asked for. Nonlinear
primitives (``duals._core``) record one tape instruction per element instead of applying a chain
rule. Wherever an eager implementation writes a zero tangent for a constant, ``_core._make``
puts the constant's value back (a non-node element of a traced array is a constant, and its
value is the primal).

Comparisons of traced values return a :class:`TraceMask`: its truth value, used by Python
(``if y[0] > 0``, ``max(a, b)``, ``while err > tol``), records a *guard* (the tape is valid
where the comparison comes out the same; elsewhere ``duals.compile`` traces again), while
``np.where(mask, a, b)`` records a select evaluated at every point, with no guard.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from . import _native

__all__ = ["Node", "TraceMask", "tracing", "current", "is_node", "unsupported"]

_state = threading.local()

_LOST_NODE = (
    "converting a traced value to {what} would bake its value at the trace point into the "
    "compiled tape (and lose its derivative). Keep the computation in NumPy functions on the "
    "arrays duals.compile passes to your function (np.sin, not math.sin; np.zeros_like(x), not "
    "np.zeros(n))."
)


class TraceError(TypeError):
    """A function that cannot be compiled (raised while tracing)."""


def unsupported(what: str) -> TraceError:
    """The error for an operation the tape cannot record."""
    return TraceError(
        f"{what} is not supported by duals.compile: its result depends on the input values in "
        "a way a tape cannot record. Use the eager functions (duals.jacobian, duals.grad, ...) "
        "for this function, or write it with supported operations (np.where for piecewise "
        "definitions)."
    )


class tracing:
    """Context: ``builder`` records the operations of traced values on this thread."""

    def __init__(self, builder) -> None:
        self.builder = builder
        self.previous = None

    def __enter__(self):
        self.previous = getattr(_state, "builder", None)
        _state.builder = self.builder
        return self.builder

    def __exit__(self, *exc) -> None:
        _state.builder = self.previous


def current():
    """The builder of the trace running on this thread."""
    b = getattr(_state, "builder", None)
    if b is None:
        raise TraceError(
            "a traced value was used outside of duals.compile's call of the function (was it "
            "stored in a global or a closure during tracing?)"
        )
    return b


def active() -> bool:
    return getattr(_state, "builder", None) is not None


# ------------------------------------------------------------------------------------------------
# Nodes: values on the tape
# ------------------------------------------------------------------------------------------------


class Node:
    """A value recorded on the tape (an element of a traced array's row)."""

    __slots__ = ("v",)
    # Operations with NumPy scalars come to our reflected methods, never to an object ufunc loop.
    __array_ufunc__ = None

    def __init__(self, v: int) -> None:
        self.v = v

    def __add__(self, o):
        return _op2("add", self, o)

    def __radd__(self, o):
        return _op2("add", o, self)

    def __sub__(self, o):
        return _op2("sub", self, o)

    def __rsub__(self, o):
        return _op2("sub", o, self)

    def __mul__(self, o):
        return _op2("mul", self, o)

    def __rmul__(self, o):
        return _op2("mul", o, self)

    def __truediv__(self, o):
        return _op2("div", self, o)

    def __rtruediv__(self, o):
        return _op2("div", o, self)

    def __neg__(self):
        return Node(current().neg(self.v))

    def __pos__(self):
        return self

    def __float__(self):
        raise TraceError(_LOST_NODE.format(what="a float"))

    def __int__(self):
        raise TraceError(_LOST_NODE.format(what="an int"))

    def __index__(self):
        raise TraceError(_LOST_NODE.format(what="an integer index"))

    def __bool__(self):
        raise TraceError(_LOST_NODE.format(what="a bool"))

    # An implementation comparing tangent elements would bake a value into the tape.
    def _compare(self, o):
        raise TraceError(
            "duals internal error: a traced value was compared inside a tangent computation; "
            "please report this with the NumPy function used"
        )

    __lt__ = __le__ = __gt__ = __ge__ = _compare
    __eq__ = __ne__ = _compare  # type: ignore[assignment]
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"Node({self.v})"


def is_node(e) -> bool:
    return type(e) is Node


def _var(b, e) -> int:
    """The tape value of an element: a node's, or a new constant."""
    if type(e) is Node:
        return e.v
    return b.constant(float(e))


def _op2(name: str, a, b):
    if not (type(a) is Node or _is_number(a)) or not (type(b) is Node or _is_number(b)):
        return NotImplemented
    bld = current()
    return Node(bld.binary(name, _var(bld, a), _var(bld, b)))


def _is_number(x) -> bool:
    return isinstance(x, (float, int, np.floating, np.integer)) and not isinstance(x, bool)


# ------------------------------------------------------------------------------------------------
# Element-wise recording for the nonlinear primitives of _core
# ------------------------------------------------------------------------------------------------


def node_mask(V: np.ndarray) -> np.ndarray:
    """Which elements of an object array are nodes."""
    if V.dtype != object:
        return np.zeros(V.shape, dtype=bool)
    return np.fromiter((type(e) is Node for e in V.flat), dtype=bool, count=V.size).reshape(V.shape)


def fill_constants(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """A traced row ``t`` (shape ``(1, *S)``) whose non-node elements hold the primal: a
    non-node element is a constant, and its value is the primal (eager implementations write
    zero tangents for constants). ``t`` itself when it already does (a view stays a view, so
    writes through it reach the array it views), else a corrected copy."""
    if t.dtype != object:
        out = np.empty((1,) + p.shape, dtype=object)
        out[0, ...] = p
        return out
    if t.shape != (1,) + p.shape:
        t = np.broadcast_to(t, (1,) + p.shape)
    pf = p.reshape(-1)
    bad = [i for i, e in enumerate(t.flat) if type(e) is not Node and not _same_value(e, pf[i])]
    if not bad:
        return t
    out = np.array(t, dtype=object, copy=True)
    flat = out.reshape(-1)
    for i in bad:
        flat[i] = float(pf[i])
    return out


def _same_value(e, v) -> bool:
    """``e`` and ``v`` are the same float (NaN equal to NaN, -0.0 not equal to 0.0)."""
    e, v = float(e), float(v)
    if e == v:
        return e != 0.0 or math.copysign(1.0, e) == math.copysign(1.0, v)
    return e != e and v != v


def values(parts) -> np.ndarray:
    """The tape values of an operand's parts: its node row (traced) or its primal (constant)."""
    p, t, s = parts
    if s is not None and s.order == 0:
        return t[0, ...]
    return np.asarray(p, dtype=np.float64)


def map1(fn, V: np.ndarray, result: np.ndarray) -> np.ndarray:
    """``fn(var)`` for the node elements of ``V`` (a new var each), ``result`` elsewhere."""
    out = np.empty(result.shape, dtype=object)
    if result.ndim == 0:
        e = V[()]
        out[()] = Node(fn(e.v)) if type(e) is Node else result[()]
        return out
    out[...] = result
    if V.dtype != object:
        return out
    V = np.broadcast_to(V, result.shape)
    flat = out.reshape(-1)
    for i, e in enumerate(V.flat):
        if type(e) is Node:
            flat[i] = Node(fn(e.v))
    return out


def map2(fn, A: np.ndarray, B: np.ndarray, result: np.ndarray) -> np.ndarray:
    """``fn(var_a, var_b)`` where an element of ``A`` or ``B`` is a node (constants lifted),
    ``result`` elsewhere."""
    out = np.empty(result.shape, dtype=object)
    if result.ndim == 0:  # scalars (the common case of ODE right-hand sides): no broadcasting
        a, b = A[()], B[()]
        if type(a) is Node or type(b) is Node:
            bld = current()
            out[()] = Node(fn(_var(bld, a), _var(bld, b)))
        else:
            out[()] = result[()]
        return out
    out[...] = result
    if A.dtype != object and B.dtype != object:
        return out
    bld = current()
    A = np.broadcast_to(A, result.shape)
    B = np.broadcast_to(B, result.shape)
    flat = out.reshape(-1)
    for i, (a, b) in enumerate(zip(A.flat, B.flat, strict=True)):
        if type(a) is Node or type(b) is Node:
            flat[i] = Node(fn(_var(bld, a), _var(bld, b)))
    return out


def unary(name: str, V: np.ndarray, result: np.ndarray, param: float = 0.0) -> np.ndarray:
    bld = current()
    return map1(lambda v: bld.unary(name, v, param), V, result)


def binary(name: str, A: np.ndarray, B: np.ndarray, result: np.ndarray) -> np.ndarray:
    bld = current()
    return map2(lambda a, b: bld.binary(name, a, b), A, B, result)


# ------------------------------------------------------------------------------------------------
# Comparisons: guards and selects
# ------------------------------------------------------------------------------------------------

#: The NumPy ufunc of each comparison symbol.
NUMPY_CMP = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


class TraceMask:
    """The boolean result of comparing traced values (see the module docstring).

    ``bool(m)`` records a guard; ``np.where(m, a, b)`` records selects; ``~``, ``&``, ``|``,
    ``^`` combine masks; any other use (indexing, ``np.sum(m)``, ``m.any()``) records guards
    for every element and continues with the plain boolean array.
    """

    __slots__ = ("_b", "_e")
    __array_priority__ = 2000.0

    def __init__(self, outcome: np.ndarray, expr) -> None:
        self._b = outcome  # bool ndarray: the outcome at the trace point
        # ("cmp", op, A, B) | ("not", e) | ("and"|"or"|"xor", e1, e2); arrays of the mask's shape
        self._e = expr

    @classmethod
    def compare(cls, op: str, A, B) -> TraceMask | np.ndarray:
        """``A op B`` of tape values (object or float arrays)."""
        A = np.asarray(A) if not isinstance(A, np.ndarray) else A
        B = np.asarray(B) if not isinstance(B, np.ndarray) else B
        shape = np.broadcast_shapes(A.shape, B.shape)
        A = np.broadcast_to(A, shape)
        B = np.broadcast_to(B, shape)
        bld = current()
        out = np.empty(shape, dtype=bool)
        flat = out.reshape(-1)
        any_node = False
        for i, (a, b) in enumerate(zip(A.flat, B.flat, strict=True)):
            if type(a) is Node or type(b) is Node:
                any_node = True
                flat[i] = bld.compare(op, _var(bld, a), _var(bld, b))
            else:
                flat[i] = bool(NUMPY_CMP[op](a, b))
        if not any_node:
            return out
        return cls(out, ("cmp", op, A, B))

    # ----- array-like surface -----
    @property
    def shape(self):
        return self._b.shape

    @property
    def ndim(self):
        return self._b.ndim

    @property
    def size(self):
        return self._b.size

    @property
    def dtype(self):
        return self._b.dtype

    def __len__(self):
        return len(self._b)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index):
        index = plain(index)
        return TraceMask(self._b[index], _index_expr(self._e, index))

    def __repr__(self) -> str:
        return f"TraceMask({self._b!r})"

    # ----- guards -----
    def guarded(self) -> np.ndarray:
        """Record guards fixing every element's outcome; the plain boolean array."""
        bld = current()
        _guard_expr(bld, self._e, self._b.size)
        return self._b

    def __bool__(self) -> bool:
        if self._b.size != 1:
            raise ValueError(
                "The truth value of an array with more than one element is ambiguous. "
                "Use a.any() or a.all()"
            )
        return bool(self.guarded().reshape(-1)[0])

    def __array__(self, dtype=None, copy=None):
        b = self.guarded()
        return b if dtype is None else b.astype(dtype)

    def any(self, *args, **kwargs):
        return self.guarded().any(*args, **kwargs)

    def all(self, *args, **kwargs):
        return self.guarded().all(*args, **kwargs)

    def astype(self, dtype, *args, **kwargs):
        return self.guarded().astype(dtype, *args, **kwargs)

    def tolist(self):
        return self.guarded().tolist()

    def sum(self, *args, **kwargs):
        return self.guarded().sum(*args, **kwargs)

    # ----- logic: combined masks, no guard -----
    def __invert__(self):
        return TraceMask(~self._b, ("not", self._e))

    def _combine(self, other, kind: str, reflected: bool = False):
        if isinstance(other, TraceMask):
            oe, ob = other._e, other._b
        else:
            ob = np.asarray(other)
            if ob.dtype != bool:
                return NotImplemented
            oe = ("const", ob)
        b = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}[kind](self._b, ob)
        shape = b.shape
        e1 = _broadcast_expr(self._e, shape)
        e2 = _broadcast_expr(oe, shape)
        return TraceMask(b, (kind, e2, e1) if reflected else (kind, e1, e2))

    def __and__(self, o):
        return self._combine(o, "and")

    def __rand__(self, o):
        return self._combine(o, "and", True)

    def __or__(self, o):
        return self._combine(o, "or")

    def __ror__(self, o):
        return self._combine(o, "or", True)

    def __xor__(self, o):
        return self._combine(o, "xor")

    def __rxor__(self, o):
        return self._combine(o, "xor", True)

    # ----- NumPy protocols -----
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:
            if ufunc is np.logical_not or (ufunc is np.invert and len(inputs) == 1):
                return ~inputs[0]
            combine = {
                np.logical_and: "and",
                np.bitwise_and: "and",
                np.logical_or: "or",
                np.bitwise_or: "or",
                np.logical_xor: "xor",
                np.bitwise_xor: "xor",
            }.get(ufunc)
            if combine is not None and len(inputs) == 2:
                a, b = inputs
                if isinstance(a, TraceMask):
                    return a._combine(b, combine)
                return b._combine(a, combine, True)
        inputs = tuple(plain(x) for x in inputs)
        kwargs = {k: plain(v) for k, v in kwargs.items()}
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if func is np.where and len(args) == 3 and not kwargs:
            from ._core import select

            return select(args[0], args[1], args[2])
        if func is np.shape or func is np.ndim or func is np.size:  # no values involved
            return func(self._b, *args[1:], **kwargs)
        if func is np.select:  # selects, no guards
            from ._functions import HANDLED

            return HANDLED[np.select](*args, **kwargs)
        return func(*plain(args), **plain(kwargs))


def plain(x):
    """``x`` with every TraceMask inside guarded and replaced by its boolean array."""
    if isinstance(x, TraceMask):
        return x.guarded()
    if isinstance(x, tuple):
        return tuple(plain(v) for v in x)
    if isinstance(x, list):
        return [plain(v) for v in x]
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return x


def _broadcast_expr(e, shape):
    kind = e[0]
    if kind == "cmp":
        return ("cmp", e[1], np.broadcast_to(e[2], shape), np.broadcast_to(e[3], shape))
    if kind == "const":
        return ("const", np.broadcast_to(e[1], shape))
    if kind == "not":
        return ("not", _broadcast_expr(e[1], shape))
    return (kind, _broadcast_expr(e[1], shape), _broadcast_expr(e[2], shape))


def _index_expr(e, index):
    kind = e[0]
    if kind == "cmp":
        return ("cmp", e[1], e[2][index], e[3][index])
    if kind == "const":
        return ("const", e[1][index])
    if kind == "not":
        return ("not", _index_expr(e[1], index))
    return (kind, _index_expr(e[1], index), _index_expr(e[2], index))


def _leaves(e):
    if e[0] == "cmp":
        yield e
    elif e[0] == "not":
        yield from _leaves(e[1])
    elif e[0] != "const":
        yield from _leaves(e[1])
        yield from _leaves(e[2])


def _guard_expr(bld, e, size: int) -> None:
    for _, op, A, B in _leaves(e):
        for a, b in zip(A.flat, B.flat, strict=True):
            if type(a) is Node or type(b) is Node:
                bld.guard(op, _var(bld, a), _var(bld, b))


def _select_elem(bld, e, i: int, t: int, f: int) -> int:
    """The var of ``e[i] ? t : f`` (flat index ``i``)."""
    kind = e[0]
    if kind == "cmp":
        a, b = e[2].flat[i], e[3].flat[i]
        if type(a) is Node or type(b) is Node:
            return bld.select(e[1], _var(bld, a), _var(bld, b), t, f)
        return t if bool(NUMPY_CMP[e[1]](a, b)) else f
    if kind == "const":
        return t if bool(e[1].flat[i]) else f
    if kind == "not":
        return _select_elem(bld, e[1], i, f, t)
    if kind == "and":
        return _select_elem(bld, e[1], i, _select_elem(bld, e[2], i, t, f), f)
    if kind == "or":
        return _select_elem(bld, e[1], i, t, _select_elem(bld, e[2], i, t, f))
    # xor: e1 ? (e2 ? f : t) : (e2 ? t : f)
    return _select_elem(
        bld, e[1], i, _select_elem(bld, e[2], i, f, t), _select_elem(bld, e[2], i, t, f)
    )


def _has_node(e, i: int) -> bool:
    kind = e[0]
    if kind == "cmp":
        return type(e[2].flat[i]) is Node or type(e[3].flat[i]) is Node
    if kind == "const":
        return False
    if kind == "not":
        return _has_node(e[1], i)
    return _has_node(e[1], i) or _has_node(e[2], i)


def select(mask: TraceMask, A: np.ndarray, B: np.ndarray, result: np.ndarray) -> np.ndarray:
    """Tape values of ``where(mask, A, B)``; ``result`` is the primal (values at the trace
    point)."""
    bld = current()
    shape = result.shape
    e = _broadcast_expr(mask._e, shape)
    outcome = np.broadcast_to(mask._b, shape)
    A = np.broadcast_to(A, shape)
    B = np.broadcast_to(B, shape)
    out = np.empty(shape, dtype=object)
    out[...] = result
    flat = out.reshape(-1)
    for i in range(flat.size):
        a, b = A.flat[i], B.flat[i]
        if _has_node(e, i):
            flat[i] = Node(_select_elem(bld, e, i, _var(bld, a), _var(bld, b)))
        else:
            chosen = a if outcome.flat[i] else b
            if type(chosen) is Node:
                flat[i] = chosen
    return out


def truth(V: np.ndarray, p: np.ndarray) -> bool:
    """``bool(x)`` of a traced value: a guard on ``x != 0``."""
    m = TraceMask.compare("!=", V, np.zeros(()))
    if isinstance(m, TraceMask):
        return bool(m)
    if m.size != 1:
        raise ValueError(
            "The truth value of an array with more than one element is ambiguous. "
            "Use a.any() or a.all()"
        )
    return bool(m.reshape(-1)[0])


def new_builder():
    return _native.TapeBuilder()
