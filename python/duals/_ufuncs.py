"""NumPy's ``__array_ufunc__`` for dual numbers: ``np.sin(x)``, ``x + y``, ``np.add.reduce(x)``.

Every ufunc with a derivative rule is listed in one of the tables below; the value and the
derivatives of elementary functions come from the engine's rule table (``duals._native``), never
from a formula written here. Functions that are compositions of table entries (``logaddexp``,
``deg2rad``) are written as such compositions. Piecewise-constant functions (``floor``, ``sign``,
...) take their values from NumPy (so ``rint`` rounds halves to even) and have derivative zero.
Comparisons, logical functions and the ``is*`` predicates look at primals and return plain
boolean arrays.

Methods: ``__call__`` for every supported ufunc, ``reduce`` for ``add``, ``multiply``,
``maximum``, ``minimum``, ``fmax``, ``fmin`` (and the logical ones, on primals), ``accumulate``
for the same arithmetic ones, ``outer`` for every supported two-argument ufunc, and ``at`` for
``add`` and ``subtract``. Anything else raises ``TypeError`` naming the ufunc and method.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np

from . import _trace
from ._core import (
    _LOST,
    DualArray,
    _DualBase,
    _expand,
    _full_tangent,
    _make,
    _parts,
    _seed_of,
    _traced,
    _tv,
    add,
    binary_rule,
    compare,
    constant,
    div,
    floor_divide,
    mod,
    mul,
    power,
    select,
    sub,
    unary,
)

__all__ = ["array_ufunc", "SUPPORTED_UFUNCS"]

# NumPy name -> engine rule name: value and derivatives from the rule table.
_UNARY_RULES = {
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "arcsinh": "asinh",
    "arccosh": "acosh",
    "arctanh": "atanh",
    "exp": "exp",
    "exp2": "exp2",
    "expm1": "exp_m1",
    "log": "ln",
    "log2": "log2",
    "log10": "log10",
    "log1p": "ln_1p",
    "sqrt": "sqrt",
    "cbrt": "cbrt",
    "reciprocal": "recip",
    "absolute": "abs",
    "fabs": "abs",
    "erf": "erf",  # scipy.special.erf
    "erfc": "erfc",  # scipy.special.erfc
}

# Piecewise constant: the value from NumPy, derivative zero.
_PIECEWISE_CONSTANT = {"floor", "ceil", "rint", "trunc", "sign"}

# Predicates on primals: plain boolean results.
_PREDICATES = {
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "equal",
    "not_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "isnan",
    "isinf",
    "isfinite",
    "signbit",
}

_OTHER = {
    "negative",
    "positive",
    "conjugate",
    "square",
    "deg2rad",
    "radians",
    "rad2deg",
    "degrees",
    "add",
    "subtract",
    "multiply",
    "divide",
    "power",
    "float_power",
    "floor_divide",
    "remainder",
    "fmod",
    "divmod",
    "modf",
    "hypot",
    "arctan2",
    "maximum",
    "minimum",
    "fmax",
    "fmin",
    "logaddexp",
    "logaddexp2",
    "copysign",
    "heaviside",
    "ldexp",
    "matmul",
}

#: Names (``ufunc.__name__``) of the ufuncs that work on dual numbers.
SUPPORTED_UFUNCS = frozenset(_UNARY_RULES) | _PIECEWISE_CONSTANT | _PREDICATES | _OTHER

_REDUCIBLE = {"add", "multiply", "maximum", "minimum", "fmax", "fmin"}
_AT = {"add", "subtract"}


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def array_ufunc(ufunc, method, inputs, kwargs):
    """``__array_ufunc__`` of :class:`~duals.Dual` and :class:`~duals.DualArray`."""
    name = ufunc.__name__
    for x in inputs:
        if _foreign(x):
            return NotImplemented
    if name not in SUPPORTED_UFUNCS:
        raise TypeError(
            f"duals has no derivative rule for {_qualname(ufunc)}; write the computation with "
            "supported ufuncs (the list is duals._ufuncs.SUPPORTED_UFUNCS)"
        )
    kwargs = dict(kwargs)
    out = kwargs.pop("out", None)
    if out is not None:
        for o in out:
            if _foreign(o):
                return NotImplemented
    if method == "__call__":
        return _call(ufunc, name, inputs, out, kwargs)
    if method == "reduce" and (name in _REDUCIBLE or name in _PREDICATES):
        return _reduce(ufunc, name, inputs, out, kwargs)
    if method == "accumulate" and (name in _REDUCIBLE or name in _PREDICATES):
        return _accumulate(ufunc, name, inputs, out, kwargs)
    if method == "outer" and ufunc.nin == 2 and name != "matmul":
        return _outer(ufunc, name, inputs, out, kwargs)
    if method == "at" and name in _AT:
        return _at(ufunc, name, inputs, kwargs)
    raise TypeError(f"{_qualname(ufunc)}.{method} is not supported on dual arrays")


def _qualname(ufunc) -> str:
    name = ufunc.__name__
    if getattr(np, name, None) is ufunc:
        return f"numpy.{name}"
    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, name, None) is ufunc:
        return f"scipy.special.{name}"
    return f"the ufunc {name!r}"


def _foreign(x) -> bool:
    """An operand of another library that implements ``__array_ufunc__`` itself."""
    if x is None or isinstance(x, (_DualBase, np.ndarray, np.generic, numbers.Number)):
        return False
    if isinstance(x, (list, tuple)):
        return False
    return hasattr(type(x), "__array_ufunc__") and type(x).__array_ufunc__ is not None


def _is_dual(x) -> bool:
    return isinstance(x, _DualBase)


# ------------------------------------------------------------------------------------------------
# Keyword arguments and outputs
# ------------------------------------------------------------------------------------------------

_IGNORED_KWARGS = {"casting", "order", "subok"}


def _check_kwargs(ufunc, method, kwargs):
    dtype = kwargs.pop("dtype", None)
    if dtype is not None and np.dtype(dtype) != np.float64:
        raise TypeError(
            f"{_qualname(ufunc)}.{method} with dtype={np.dtype(dtype)} on dual arrays: dual "
            "numbers are float64 (a different dtype would lose the derivative)"
        )
    sig = kwargs.pop("signature", None)
    if sig is not None:
        raise TypeError(f"{_qualname(ufunc)}: signature= is not supported on dual arrays")
    for k in _IGNORED_KWARGS:
        kwargs.pop(k, None)
    extra = set(kwargs)
    if extra:
        raise TypeError(
            f"{_qualname(ufunc)}.{method}: keyword argument(s) {', '.join(sorted(extra))} "
            "are not supported on dual arrays"
        )


def _lost_out(ufunc) -> TypeError:
    return TypeError(
        f"{_qualname(ufunc)}(..., out=<plain ndarray>): storing a dual result into a plain "
        "NumPy array would lose its derivative. Pass a dual array as out (e.g. "
        "out=np.empty_like(x) or np.zeros_like(x) where x is a dual array), or drop out= and "
        "use the returned value."
    )


def _store(ufunc, o, value, where=True):
    """Write ``value`` (dual or plain) into the output ``o`` and return ``o``."""
    vshape = np.shape(_parts(value)[0])
    if isinstance(o, DualArray):
        try:
            shape = np.broadcast_shapes(vshape, o.shape)
        except ValueError:
            shape = None
        if shape != o.shape:
            raise ValueError(
                f"{_qualname(ufunc)}: the result of shape {vshape} cannot be written into "
                f"the output of shape {o.shape}"
            )
        if where is not True:
            value = _select_parts(np.broadcast_to(where, o.shape), value, o)
        o[...] = value
        return o
    if _is_dual(o):
        raise TypeError(
            f"{_qualname(ufunc)}: out= must be a DualArray (a 0-d Dual cannot be written in place)"
        )
    if _is_dual(value):
        raise _lost_out(ufunc)
    np.copyto(o, value, where=where)
    return o


def _finish(ufunc, result, out, where):
    """Apply ``out=`` and ``where=`` to a result (a single value or a tuple of them)."""
    single = not isinstance(result, tuple)
    results = (result,) if single else result
    if out is None:
        if where is not True:
            raise TypeError(
                f"{_qualname(ufunc)}(..., where=...) without out= leaves the masked elements "
                "undefined; pass an output to fill, e.g. out=np.zeros_like(x)"
            )
        return result
    if len(out) != len(results):
        raise ValueError(f"{_qualname(ufunc)} has {len(results)} output(s); got {len(out)} in out=")
    stored = tuple(
        r if o is None else _store(ufunc, o, r, where) for o, r in zip(out, results, strict=True)
    )
    return stored[0] if single else stored


# ------------------------------------------------------------------------------------------------
# __call__
# ------------------------------------------------------------------------------------------------


def _any_traced(inputs) -> bool:
    return any(isinstance(x, _DualBase) and _traced(x._s) for x in inputs)


def _call(ufunc, name, inputs, out, kwargs):
    if name in _PREDICATES and _any_traced(inputs):
        if out is not None or kwargs:
            raise _trace.unsupported(f"{_qualname(ufunc)} with out= or other keywords")
        return _traced_predicate(name, inputs)
    if name in _PREDICATES:
        # On primals; out= and where= go to NumPy as they are.
        primals = [_parts(x)[0] for x in inputs]
        if out is not None:
            if any(_is_dual(o) for o in out):
                raise TypeError(
                    f"{_qualname(ufunc)} returns booleans; out= must be a plain NumPy array"
                )
            kwargs["out"] = out
        return ufunc(*primals, **kwargs)
    where = kwargs.pop("where", True)
    _check_kwargs(ufunc, "__call__", kwargs)
    if len(inputs) != ufunc.nin:
        raise TypeError(f"{_qualname(ufunc)} takes {ufunc.nin} argument(s); got {len(inputs)}")
    if where is not True:
        with np.errstate(all="ignore"):  # masked-out elements are not computed by NumPy
            result = _evaluate(ufunc, name, inputs)
    else:
        result = _evaluate(ufunc, name, inputs)
    return _finish(ufunc, result, out, where)


def _evaluate(ufunc, name, inputs):
    rule = _UNARY_RULES.get(name)
    if rule is not None:
        return unary(rule, inputs[0])
    if name in _PIECEWISE_CONSTANT:
        p, _, s = _parts(inputs[0])
        if _traced(s):
            return _traced_piecewise(ufunc, name, inputs[0])
        return constant(ufunc(p), s)
    fn = _FUNCTIONS[name]
    return fn(ufunc, *inputs)


def _with_primal(result, p):
    """``result`` with its primal replaced by NumPy's value ``p`` (same derivative)."""
    if not _is_dual(result):
        return np.asarray(p, dtype=np.float64)
    return _make(np.asarray(p, dtype=np.float64), result._t, result._s)


def _negative(ufunc, x):
    p, t, s = _parts(x)
    return -p if s is None else _make(-p, -t, s)


def _positive(ufunc, x):
    p, t, s = _parts(x)
    return +p if s is None else _make(p.copy(), t.copy(), s)


def _square(ufunc, x):
    return x * x  # the product rule: as exact as powi(2), and faster (native for arrays)


def _scale(factor):
    def f(ufunc, x):
        return _with_primal(mul(x, factor), ufunc(_parts(x)[0]))

    return f


def _binary(op):
    def f(ufunc, a, b):
        return op(a, b)

    return f


def _divide(ufunc, a, b):
    return div(a, b)


def _power(ufunc, a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return power(a, b)


def _rule2(rule):
    def f(ufunc, a, b):
        return binary_rule(rule, a, b)

    return f


def _fmod(ufunc, a, b):
    # C fmod is the truncated remainder, the table's "rem"; the value from NumPy.
    with np.errstate(divide="ignore", invalid="ignore"):
        r = binary_rule("rem", a, b)
        return _with_primal(r, np.fmod(_parts(a)[0], _parts(b)[0]))


def _remainder(ufunc, a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        if _any_traced((a, b)):
            return _with_primal(traced_divmod(a, b)[1], np.remainder(_parts(a)[0], _parts(b)[0]))
        r = mod(a, b)
        return _with_primal(r, np.remainder(_parts(a)[0], _parts(b)[0]))


def _floor_divide(ufunc, a, b):
    if _any_traced((a, b)):
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.floor_divide(_parts(a)[0], _parts(b)[0])
            return _with_primal(traced_divmod(a, b)[0], q)
    return floor_divide(a, b)


def _divmod(ufunc, a, b):
    return _floor_divide(ufunc, a, b), _remainder(ufunc, a, b)


def traced_divmod(a, b):
    """``(a // b, a % b)`` of traced values exactly as NumPy computes them (``npy_divmod``), on
    the tape: the remainder from ``fmod`` with the sign of ``b``, the quotient
    ``(a - fmod(a, b)) / b`` rounded to the nearest integer. Derivatives: the quotient's is zero,
    the remainder's ``1`` in ``a`` and ``-floor(a / b)`` in ``b``, as in eager mode."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m = binary_rule("rem", a, b)  # fmod(a, b); d/db = -trunc(a / b)
        quo = div(sub(a, m), b)
        # a nonzero remainder of the other sign than b: + b, and the quotient one less
        fix = compare("!=", m, 0.0) & (compare("<", b, 0.0) ^ compare("<", m, 0.0))
        m = select(fix, add(m, b), m)
        quo = select(fix, sub(quo, 1.0), quo)
        fl = unary("floor", quo)
        fl = select(compare(">", sub(quo, fl), 0.5), add(fl, 1.0), fl)
        # b == 0: NumPy's quotient is a / b (inf or nan; floor keeps it, with derivative zero),
        # its remainder nan
        q = select(compare("==", b, 0.0), unary("floor", div(a, b)), fl)
        return q, m


def _modf(ufunc, x):
    p, _, s = _parts(x)
    frac, whole = np.modf(p)
    if _traced(s):
        w = unary("trunc", x)
        return _with_primal(sub(x, w), frac), _with_primal(w, whole)
    # frac = x - trunc(x): derivative 1; the integral part is constant.
    return _with_primal(sub(x, whole), frac), constant(whole, s)


def _select_parts(cond, a, b, primal=None):
    """``where(cond, a, b)`` with the derivative of the selected argument (any seed)."""
    pa, ta, sa = _parts(a)
    pb, tb, sb = _parts(b)
    s = _seed_of(sa, sb)
    if isinstance(cond, _trace.TraceMask) or _traced(s):
        r = select(cond, a, b)
        return r if primal is None else _with_primal(r, primal)
    p = np.where(cond, pa, pb) if primal is None else np.asarray(primal, dtype=np.float64)
    if s is None:
        return p
    shape = p.shape
    c = np.broadcast_to(cond, shape)[np.newaxis]
    if ta is None:
        t = np.where(c, 0.0, _expand(tb, len(shape)))
    elif tb is None:
        t = np.where(c, _expand(ta, len(shape)), 0.0)
    else:
        t = np.where(c, _expand(ta, len(shape)), _expand(tb, len(shape)))
    return _make(p, _full_tangent(t, s.K, shape), s)


def _minmax(ufunc, a, b):
    """maximum, minimum (NaN propagates), fmax, fmin (NaN ignored): derivative of the selected
    argument; at ties, of the first."""
    name = ufunc.__name__
    pa, pb = _parts(a)[0], _parts(b)[0]
    if _any_traced((a, b)):
        first = compare(">=" if name in ("maximum", "fmax") else "<=", a, b)
        nan = compare("!=", a, a) if name in ("maximum", "minimum") else compare("!=", b, b)
        return _select_parts(first | nan, a, b, primal=ufunc(pa, pb))
    first = pa >= pb if name in ("maximum", "fmax") else pa <= pb
    if name in ("maximum", "minimum"):
        first = first | np.isnan(pa)
    else:
        first = first | np.isnan(pb)
    return _select_parts(first, a, b, primal=ufunc(pa, pb))


def _logaddexp(base2: bool):
    def f(ufunc, a, b):
        # log(e^a + e^b) = max(a, b) + log1p(exp(-|a - b|)); base 2 with exp2 and 1/ln 2.
        pa, pb = _parts(a)[0], _parts(b)[0]
        with np.errstate(invalid="ignore"):
            m = _minmax(np.maximum, a, b)
            d = _negative(None, unary("abs", sub(a, b)))
            if base2:
                r = add(m, mul(unary("ln_1p", unary("exp2", d)), 1.0 / np.log(2.0)))
            else:
                r = add(m, unary("ln_1p", unary("exp", d)))
        return _with_primal(r, ufunc(pa, pb))

    return f


def _copysign(ufunc, a, b):
    # copysign(a, b) = a or -a; constant in b.
    (pa, _, sa), (pb, _, sb) = _parts(a), _parts(b)
    if _any_traced((a, b)):
        # -a where the signs differ (selects on the tape; the sign of a NaN is not seen)
        flip = _signbit(a) ^ _signbit(b)
        if _is_dual(a):
            return _select_parts(flip, _negative(None, a), a, primal=np.copysign(pa, pb))
        return _select_parts(flip, -pa, pa, primal=np.copysign(pa, pb))
    p = np.copysign(pa, pb)
    keep = np.signbit(pa) == np.signbit(pb)
    r = _select_parts(keep, a, _negative(None, a), primal=p)
    return r if _is_dual(r) else constant(p, _seed_of(sa, sb))


def _heaviside(ufunc, x, h0):
    # 0, h0 or 1: constant in x; follows h0 where x == 0.
    if _any_traced((x, h0)):
        # where(x < 0, 0, where(x > 0, 1, where(x == 0, h0, nan)))
        nan = add(mul(x, 0.0), np.nan)
        r = select(compare("==", x, 0.0), h0, nan)
        r = select(compare(">", x, 0.0), 1.0, r)
        return select(compare("<", x, 0.0), 0.0, r)
    px, ph = _parts(x)[0], _parts(h0)[0]
    p = np.heaviside(px, ph)
    s = _seed_of(_parts(x)[2], _parts(h0)[2])
    return _select_parts(px == 0, h0, constant(p, s), primal=p)


def _ldexp(ufunc, x, n):
    if _is_dual(n):
        raise TypeError("numpy.ldexp: the exponent must be an integer array, not a dual number")
    px = _parts(x)[0]
    return _with_primal(mul(x, np.ldexp(1.0, n)), np.ldexp(px, n))


def _conjugate(ufunc, x):
    return _positive(ufunc, x)


# ----- traced predicates and piecewise-constant functions -----

_CMP_UFUNCS = {
    "greater": ">",
    "greater_equal": ">=",
    "less": "<",
    "less_equal": "<=",
    "equal": "==",
    "not_equal": "!=",
}


def _traced_predicate(name, inputs):
    """A predicate of traced values: a TraceMask (guards only where Python branches on it)."""
    sym = _CMP_UFUNCS.get(name)
    if sym is not None:
        return compare(sym, inputs[0], inputs[1])
    if name == "isnan":
        return compare("!=", inputs[0], inputs[0])
    if name == "isinf":
        return compare("==", unary("abs", inputs[0]), np.inf)
    if name == "isfinite":
        return compare("<", unary("abs", inputs[0]), np.inf)
    if name == "signbit":
        return _signbit(inputs[0])
    if name in ("logical_and", "logical_or", "logical_xor", "logical_not"):
        masks = [_truth_mask(x) for x in inputs]
        if name == "logical_not":
            return ~masks[0]
        a, b = masks
        return {"logical_and": a & b, "logical_or": a | b, "logical_xor": a ^ b}[name]
    raise _trace.unsupported(f"numpy.{name} of traced values")


def _signbit(x):
    """``signbit`` of a traced value: ``x < 0``, or ``1 / x < 0`` at zeros (``-0.0``); the sign
    of a NaN is not seen (False)."""
    if not _any_traced((x,)):
        return np.signbit(_parts(x)[0])
    with np.errstate(divide="ignore"):
        return compare("<", x, 0.0) | (compare("==", x, 0.0) & compare("<", div(1.0, x), 0.0))


def _truth_mask(x):
    if isinstance(x, _DualBase):
        return compare("!=", x, 0.0)
    return x


def _traced_piecewise(ufunc, name, x):
    p = _parts(x)[0]
    if name in ("floor", "ceil", "trunc"):
        return _with_primal(unary(name, x), ufunc(p))
    if name == "sign":
        # 1, -1, or 0 (+0.0) and NaN: x * 0 + 0
        r = select(compare("<", x, 0.0), -1.0, add(mul(x, 0.0), 0.0))
        return _with_primal(select(compare(">", x, 0.0), 1.0, r), ufunc(p))
    # rint: round half to even by adding and subtracting 2**52 (exact below 2**52); the floor
    # of that integer is the same value with derivative zero (the sums have derivative one)
    big = 2.0**52
    up = sub(add(x, big), big)
    down = add(sub(x, big), big)
    r = select(compare(">=", x, 0.0), up, down)
    r = select(compare("<", unary("abs", x), big), r, x)
    return _with_primal(unary("floor", r), ufunc(p))


# ----- matmul: bilinear, on primals and tangents alike -----


def _matmul(ufunc, a, b):
    (pa, ta, sa), (pb, tb, sb) = _parts(a), _parts(b)
    s = _seed_of(sa, sb)
    p = np.matmul(pa, pb)  # NumPy's own shape errors
    if s is None:
        return p
    if s.order == 0:
        return _make(p, np.asarray(np.matmul(_tv(pa, ta), _tv(pb, tb)))[np.newaxis], s)
    va, vb = pa.ndim == 1, pb.ndim == 1
    PA = pa[np.newaxis, :] if va else pa
    PB = pb[:, np.newaxis] if vb else pb
    nd = max(PA.ndim, PB.ndim)

    def lift_a(t, lead):
        t = t[..., np.newaxis, :] if va else t
        return _pad(t, lead, nd)

    def lift_b(t, lead):
        t = t[..., np.newaxis] if vb else t
        return _pad(t, lead, nd)

    def drop(t):
        if va and vb:
            return t[..., 0, 0]
        if va:
            return t[..., 0, :]
        if vb:
            return t[..., 0]
        return t

    def first(xa, xb, lead=1):
        # d(a @ b) = da @ b + a @ db for tangents with `lead` leading axes
        r = None
        if xa is not None:
            r = np.matmul(lift_a(xa, lead), PB)
        if xb is not None:
            q = np.matmul(PA, lift_b(xb, lead))
            r = q if r is None else r + q
        return r

    if s.order == 1:
        t = drop(first(ta, tb))
        return _make(p, _full_tangent(t, s.K, p.shape), s)
    A = s.split(ta) if ta is not None else (None, None, None)
    B = s.split(tb) if tb is not None else (None, None, None)
    e1 = drop(first(A[0], B[0]))
    e2 = drop(first(A[1], B[1]))
    e12 = first(A[2], B[2], lead=2)
    if ta is not None and tb is not None:
        cross = np.matmul(lift_a(A[0], 1)[:, np.newaxis], lift_b(B[1], 1)[np.newaxis]) + np.matmul(
            lift_a(A[1], 1)[np.newaxis], lift_b(B[0], 1)[:, np.newaxis]
        )
        e12 = e12 + cross
    e12 = drop(e12)
    shape = p.shape
    return _make(
        p,
        s.join(
            np.broadcast_to(_expand(e1, len(shape)), (s.k1,) + shape),
            np.broadcast_to(_expand(e2, len(shape)), (s.k2,) + shape),
            _pad(e12, 2, len(shape)),
        ),
        s,
    )


def _pad(t: np.ndarray, lead: int, nd: int) -> np.ndarray:
    """Insert unit axes after the ``lead`` leading (tangent) axes so that ``t`` has ``nd``
    trailing axes (for broadcasting against arrays of ``nd`` dimensions)."""
    extra = nd - (t.ndim - lead)
    if extra <= 0:
        return t
    return t.reshape(t.shape[:lead] + (1,) * extra + t.shape[lead:])


_FUNCTIONS = {
    "negative": _negative,
    "positive": _positive,
    "conjugate": _conjugate,
    "square": _square,
    "deg2rad": _scale(np.pi / 180.0),
    "radians": _scale(np.pi / 180.0),
    "rad2deg": _scale(180.0 / np.pi),
    "degrees": _scale(180.0 / np.pi),
    "add": _binary(add),
    "subtract": _binary(sub),
    "multiply": _binary(mul),
    "divide": _divide,
    "power": _power,
    "float_power": _power,
    "floor_divide": _floor_divide,
    "remainder": _remainder,
    "fmod": _fmod,
    "divmod": _divmod,
    "modf": _modf,
    "hypot": _rule2("hypot"),
    "arctan2": _rule2("atan2"),
    "maximum": _minmax,
    "minimum": _minmax,
    "fmax": _minmax,
    "fmin": _minmax,
    "logaddexp": _logaddexp(False),
    "logaddexp2": _logaddexp(True),
    "copysign": _copysign,
    "heaviside": _heaviside,
    "ldexp": _ldexp,
    "matmul": _matmul,
}


# ------------------------------------------------------------------------------------------------
# reduce, accumulate, outer, at
# ------------------------------------------------------------------------------------------------

_NOVALUE = object()


def _axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError("duplicate value in 'axis'")
    return tuple(out)


def _to_last(p, t, s, axes):
    """Move ``axes`` of a dual array to the end and merge them into one axis."""
    nd = p.ndim
    rest = [a for a in range(nd) if a not in axes]
    order = rest + list(axes)
    p2 = np.transpose(p, order)
    t2 = np.transpose(t, [0] + [a + 1 for a in order])
    kept = p2.shape[: len(rest)]
    m = int(np.prod(p2.shape[len(rest) :], dtype=np.int64))
    return _make(p2.reshape(kept + (m,)), t2.reshape((t.shape[0],) + kept + (m,)), s)


def _concat_last(a, b):
    s = _seed_of(a._s, b._s)
    return _make(np.concatenate([a._p, b._p], axis=-1), np.concatenate([a._t, b._t], axis=-1), s)


def _tree_reduce(op, x):
    """Reduce a dual array over its last axis (length >= 1) by a binary ``op``, pairwise."""
    while x.shape[-1] > 1:
        m = x.shape[-1]
        h = m // 2
        y = op(x[..., :h], x[..., h : 2 * h])
        if m % 2:
            y = _concat_last(y, x[..., 2 * h :])
        x = y
    return x[..., 0]


def _scan(op, x):
    """Inclusive scan of a dual array over its last axis by ``op`` (Hillis-Steele)."""
    m = x.shape[-1]
    d = 1
    while d < m:
        x = _concat_last(x[..., :d], op(x[..., :-d], x[..., d:]))
        d *= 2
    return x


def _binop(name):
    if name == "add":
        return add
    if name == "multiply":
        return mul
    uf = getattr(np, name)
    return lambda a, b: _minmax(uf, a, b)


def _reduce(ufunc, name, inputs, out, kwargs):
    (x,) = inputs
    if name in _PREDICATES:
        if out is not None:
            kwargs["out"] = out
        return ufunc.reduce(_parts(x)[0], **kwargs)
    axis = kwargs.pop("axis", 0)
    keepdims = kwargs.pop("keepdims", False)
    initial = kwargs.pop("initial", _NOVALUE)
    where = kwargs.pop("where", True)
    _check_kwargs(ufunc, "reduce", kwargs)
    p, t, s = _parts(x)
    extra = {}
    if initial is not _NOVALUE:
        extra["initial"] = initial
    if where is not True:
        extra["where"] = where
    pr = ufunc.reduce(p, axis=axis, keepdims=keepdims, **extra)  # NumPy's value and errors
    if s is None:
        return _finish(ufunc, pr, out, True)
    axes = _axes(axis, p.ndim)
    if name == "add":
        tw = True if where is True else np.broadcast_to(where, p.shape)[np.newaxis]
        tk = {}
        if t.dtype == object and (initial is not _NOVALUE or where is not True):
            # tape values: the initial value is part of the value (and object reductions need
            # one with where=)
            tk["initial"] = 0.0 if initial is _NOVALUE else float(initial)
        tr = np.add.reduce(t, axis=tuple(a + 1 for a in axes), keepdims=keepdims, where=tw, **tk)
        result = _make(pr, np.asarray(tr, dtype=t.dtype), s)
        return _finish(ufunc, result, out, True)
    if where is not True:
        fill = 1.0 if name == "multiply" else initial
        x = _select_parts(np.broadcast_to(where, p.shape), x, np.asarray(fill, dtype=float))
        p, t, s = _parts(x)
    y = _to_last(p, t, s, axes)
    if y.shape[-1] == 0:
        result = constant(pr, s)
    else:
        r = _tree_reduce(_binop(name), y)
        if initial is not _NOVALUE:
            r = _binop(name)(r, np.asarray(initial, dtype=float))
        result = _make(pr, r._t.reshape((s.K,) + np.shape(pr)), s)
    return _finish(ufunc, result, out, True)


def _accumulate(ufunc, name, inputs, out, kwargs):
    (x,) = inputs
    if name in _PREDICATES:
        if out is not None:
            kwargs["out"] = out
        return ufunc.accumulate(_parts(x)[0], **kwargs)
    axis = kwargs.pop("axis", 0)
    _check_kwargs(ufunc, "accumulate", kwargs)
    p, t, s = _parts(x)
    pr = ufunc.accumulate(p, axis=axis)
    if s is None:
        return _finish(ufunc, pr, out, True)
    (ax,) = _axes(axis, p.ndim)
    if name == "add":
        result = _make(pr, np.add.accumulate(t, axis=ax + 1), s)
        return _finish(ufunc, result, out, True)
    pm = np.moveaxis(p, ax, -1)
    tm = np.moveaxis(t, ax + 1, -1)
    y = _scan(_binop(name), _make(pm, tm, s)) if pm.shape[-1] else _make(pm, tm, s)
    result = _make(pr, np.moveaxis(y._t, -1, ax + 1), s)
    return _finish(ufunc, result, out, True)


def _outer(ufunc, name, inputs, out, kwargs):
    if name in _PREDICATES:
        if out is not None:
            kwargs["out"] = out
        return ufunc.outer(*[_parts(x)[0] for x in inputs], **kwargs)
    where = kwargs.pop("where", True)
    _check_kwargs(ufunc, "outer", kwargs)
    a, b = inputs
    pa, ta, sa = _parts(a)
    nb = np.ndim(_parts(b)[0])
    pa2 = pa.reshape(pa.shape + (1,) * nb)
    a2 = pa2 if sa is None else _make(pa2, ta.reshape(ta.shape + (1,) * nb), sa)
    if where is not True:
        with np.errstate(all="ignore"):
            result = _evaluate(ufunc, name, (a2, b))
    else:
        result = _evaluate(ufunc, name, (a2, b))
    return _finish(ufunc, result, out, where)


def _at(ufunc, name, inputs, kwargs):
    if kwargs:
        raise TypeError(f"{_qualname(ufunc)}.at: unexpected keyword arguments {sorted(kwargs)}")
    if len(inputs) != 3:
        raise TypeError(f"{_qualname(ufunc)}.at on dual arrays needs (a, indices, b)")
    a, indices, b = inputs
    if _is_dual(indices):
        raise TypeError("a dual number cannot be used as an index; use integers or booleans")
    pb, tb, sb = _parts(b)
    if not isinstance(a, DualArray):
        if sb is not None:
            raise TypeError(_LOST.format(what="a plain NumPy array (via ufunc.at)"))
        raise TypeError(f"{_qualname(ufunc)}.at: the target must be a DualArray")
    _seed_of(a._s, sb)  # the same seed, or ValueError
    if _traced(a._s) and tb is None:
        tb = np.asarray(pb, dtype=object)[np.newaxis]
    ufunc.at(a._p, indices, pb)
    if tb is not None:
        idx = indices if isinstance(indices, tuple) else (indices,)
        target = a._p[indices]
        ufunc.at(a._t, (slice(None),) + idx, _expand(tb, np.ndim(target)))
    return None
