"""Every ufunc with a derivative rule, through the public drivers, against references.

Analytic functions are checked against the complex step (exact to rounding, rtol 1e-12), the
others against 8th-order central differences; second derivatives against mpmath.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import scipy.special as sp
from derivref import (
    cs_derivative,
    cs_jacobian,
    fd_derivative,
    fd_jacobian,
    mp_diff,
    mp_hessian2,
)

import duals

RTOL_CS = 1e-12
RTOL_FD = 1e-8
RTOL_MP = 1e-10

# ------------------------------------------------------------------------------------------------
# One-argument ufuncs: (ufunc, complex-analytic reference or None, domain, mpmath function)
# ------------------------------------------------------------------------------------------------

UNARY = [
    (np.sin, np.sin, (-3, 3), mpmath.sin),
    (np.cos, np.cos, (-3, 3), mpmath.cos),
    (np.tan, np.tan, (-1.2, 1.2), mpmath.tan),
    (np.arcsin, np.arcsin, (-0.9, 0.9), mpmath.asin),
    (np.arccos, np.arccos, (-0.9, 0.9), mpmath.acos),
    (np.arctan, np.arctan, (-3, 3), mpmath.atan),
    (np.sinh, np.sinh, (-3, 3), mpmath.sinh),
    (np.cosh, np.cosh, (-3, 3), mpmath.cosh),
    (np.tanh, np.tanh, (-3, 3), mpmath.tanh),
    (np.arcsinh, np.arcsinh, (-3, 3), mpmath.asinh),
    (np.arccosh, np.arccosh, (1.2, 4), mpmath.acosh),
    (np.arctanh, np.arctanh, (-0.9, 0.9), mpmath.atanh),
    (np.exp, np.exp, (-3, 3), mpmath.exp),
    (np.exp2, np.exp2, (-3, 3), lambda t: 2**t),
    (np.expm1, np.expm1, (-3, 3), mpmath.expm1),
    (np.log, np.log, (0.2, 5), mpmath.log),
    (np.log2, np.log2, (0.2, 5), lambda t: mpmath.log(t, 2)),
    (np.log10, np.log10, (0.2, 5), mpmath.log10),
    (np.log1p, np.log1p, (-0.7, 5), mpmath.log1p),
    (np.sqrt, np.sqrt, (0.2, 5), mpmath.sqrt),
    (np.cbrt, lambda z: z ** (1 / 3), (0.2, 5), mpmath.cbrt),
    (np.square, np.square, (-3, 3), lambda t: t**2),
    (np.reciprocal, np.reciprocal, (0.3, 3), lambda t: 1 / t),
    (np.deg2rad, lambda z: z * (np.pi / 180), (-200, 200), lambda t: t * mpmath.pi / 180),
    (np.radians, lambda z: z * (np.pi / 180), (-200, 200), None),
    (np.rad2deg, lambda z: z * (180 / np.pi), (-3, 3), lambda t: t * 180 / mpmath.pi),
    (np.degrees, lambda z: z * (180 / np.pi), (-3, 3), None),
    (np.negative, np.negative, (-3, 3), lambda t: -t),
    (np.positive, np.positive, (-3, 3), lambda t: t),
    (np.absolute, None, (0.2, 3), mpmath.fabs),
    (np.absolute, None, (-3, -0.2), mpmath.fabs),
    (np.fabs, None, (-3, 3), None),
    (np.conjugate, None, (-3, 3), None),
    (sp.erf, sp.erf, (-2, 2), mpmath.erf),
    (sp.erfc, sp.erfc, (-2, 2), mpmath.erfc),
]


def _id(entry):
    return entry[0].__name__


def _points(domain, shape, seed=0):
    lo, hi = domain
    rng = np.random.default_rng(seed)
    x = rng.uniform(lo, hi, size=shape)
    if lo < 0 < hi:  # keep away from kinks at 0 (fabs)
        x = np.where(np.abs(x) < 0.05, 0.3, x)
    return x


def _ref_derivative(fn, ref, x):
    if ref is not None:
        return cs_derivative(ref, x), RTOL_CS
    return fd_derivative(fn, x, h=1e-3), RTOL_FD


LAYOUTS = {
    "0d": lambda d: _points(d, ()),
    "1d": lambda d: _points(d, (7,)),
    "2d": lambda d: _points(d, (3, 4)),
    "noncontig": lambda d: _points(d, (4, 6))[::2, ::-3],
    "transposed": lambda d: _points(d, (5, 3)).T,
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("entry", UNARY, ids=_id)
def test_unary_derivative(entry, layout):
    fn, ref, domain, _ = entry
    x = LAYOUTS[layout](domain)
    d = duals.derivative(fn, x)
    expected, rtol = _ref_derivative(fn, ref, x)
    if layout == "0d":
        assert isinstance(d, float)
    else:
        assert isinstance(d, np.ndarray) and d.dtype == np.float64 and d.shape == x.shape
    np.testing.assert_allclose(d, expected, rtol=rtol, atol=1e-14)


VIEWS = {
    "transposed": lambda z: z.T,
    "reversed-strided": lambda z: z[:, ::-2],
    "column": lambda z: z[:, 1],
    "broadcast": lambda z: np.broadcast_to(z[:, :1], (3, 4)),
}


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("entry", UNARY, ids=_id)
def test_unary_on_views_inside_f(entry, view):
    """Non-contiguous, transposed and broadcast intermediates reach the kernels."""
    fn, ref, domain, _ = entry
    x = _points(domain, (3, 4), seed=4)
    J = duals.jacobian(lambda z: fn(VIEWS[view](z)), x)
    if ref is not None:
        expected, rtol = cs_jacobian(lambda z: ref(VIEWS[view](z)), x), RTOL_CS
    else:
        expected, rtol = fd_jacobian(lambda z: fn(VIEWS[view](z)), x, h=1e-3), RTOL_FD
    np.testing.assert_allclose(J, expected, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("chunk", ["1", "n-1", "n", "n+1"])
@pytest.mark.parametrize("entry", UNARY, ids=_id)
def test_unary_jacobian_chunks(entry, chunk):
    fn, ref, domain, _ = entry
    x = _points(domain, (2, 3), seed=1)
    n = x.size
    k = {"1": 1, "n-1": n - 1, "n": n, "n+1": n + 1}[chunk]
    J = duals.jacobian(fn, x, chunk=k)
    assert J.shape == (2, 3, 2, 3)
    expected, rtol = _ref_derivative(fn, ref, x)
    np.testing.assert_allclose(J.reshape(n, n), np.diag(expected.ravel()), rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("entry", [e for e in UNARY if e[3] is not None], ids=_id)
def test_unary_second_derivative(entry):
    fn, _, domain, mpfn = entry
    x = _points(domain, (3,), seed=2)
    expected = np.array([mp_diff(mpfn, v, 2) for v in x])
    np.testing.assert_allclose(duals.second_derivative(fn, x), expected, rtol=RTOL_MP, atol=1e-12)
    # the same through a Hessian of a scalar function and through a 0-d input
    h = duals.hessian(lambda t: fn(t[1]), x)
    np.testing.assert_allclose(h[1, 1], expected[1], rtol=RTOL_MP, atol=1e-12)
    assert h[0, 0] == 0.0 and h[0, 1] == 0.0 and h[2, 1] == 0.0
    s = duals.second_derivative(fn, x[0])
    assert isinstance(s, float)
    np.testing.assert_allclose(s, expected[0], rtol=RTOL_MP, atol=1e-12)


@pytest.mark.parametrize("entry", UNARY, ids=_id)
def test_unary_values_equal_numpy(entry):
    fn, _, domain, _ = entry
    x = _points(domain, (6,), seed=3)
    v, _ = duals.jvp(fn, x, np.ones_like(x))
    np.testing.assert_allclose(v, fn(x), rtol=4e-16, atol=0)


@pytest.mark.parametrize("fn", [np.floor, np.ceil, np.rint, np.trunc, np.sign])
def test_piecewise_constant(fn):
    x = np.array([-2.5, -1.5, -0.7, -0.0, 0.0, 0.5, 1.5, 2.5, 3.2])
    value, tangent = duals.jvp(fn, x, np.ones_like(x))
    np.testing.assert_array_equal(value, fn(x))  # rint rounds halves to even, sign(0) = 0
    np.testing.assert_array_equal(tangent, np.zeros_like(x))
    assert duals.derivative(fn, 1.3) == 0.0
    assert duals.second_derivative(fn, 1.3) == 0.0
    # inside an expression the derivative flows around the constant
    np.testing.assert_allclose(duals.derivative(lambda t: t * fn(t), x), fn(x), rtol=0, atol=0)


def test_rint_half_to_even():
    v, _ = duals.jvp(np.rint, np.array([0.5, 1.5, 2.5, -0.5]), np.ones(4))
    np.testing.assert_array_equal(v, [0.0, 2.0, 2.0, -0.0])


# ------------------------------------------------------------------------------------------------
# Two-argument ufuncs: (ufunc, complex-analytic reference or None, domain a, domain b, mpmath)
# ------------------------------------------------------------------------------------------------

BINARY = [
    (np.add, np.add, (-3, 3), (-3, 3), lambda a, b: a + b),
    (np.subtract, np.subtract, (-3, 3), (-3, 3), lambda a, b: a - b),
    (np.multiply, np.multiply, (-3, 3), (-3, 3), lambda a, b: a * b),
    (np.divide, np.divide, (-3, 3), (0.5, 3), lambda a, b: a / b),
    (np.power, np.power, (0.3, 3), (-2, 2.5), lambda a, b: a**b),
    (np.float_power, np.float_power, (0.3, 3), (-2, 2.5), lambda a, b: a**b),
    (np.hypot, None, (-3, 3), (0.5, 3), mpmath.hypot),
    (np.arctan2, None, (-3, 3), (-3, 3), mpmath.atan2),
    (np.logaddexp, None, (-3, 3), (-3, 3), lambda a, b: mpmath.log(mpmath.exp(a) + mpmath.exp(b))),
    (
        np.logaddexp2,
        None,
        (-3, 3),
        (-3, 3),
        lambda a, b: mpmath.log(2**a + 2**b, 2),
    ),
    (np.maximum, None, (-3, 3), "offset", None),
    (np.minimum, None, (-3, 3), "offset", None),
    (np.fmax, None, (-3, 3), "offset", None),
    (np.fmin, None, (-3, 3), "offset", None),
    (np.remainder, None, "rem", "rem", None),
    (np.fmod, None, "rem", "rem", None),
    (np.floor_divide, None, "rem", "rem", None),
    (np.copysign, None, (-3, 3), (-3, 3), None),
    (np.heaviside, None, (-3, 3), (0, 1), None),
]


def _pair(entry, n, seed=0):
    _, _, da, db, _ = entry
    rng = np.random.default_rng(seed)
    if da == "rem":
        # away from the jumps: a / b has fractional part in (0.1, 0.9)
        b = rng.uniform(0.6, 1.5, n) * rng.choice([-1.0, 1.0], n)
        q = rng.integers(-4, 5, n) + rng.uniform(0.1, 0.9, n)
        return q * b, b
    a = _points(da, (n,), seed)
    if db == "offset":  # distinct, either one larger
        b = a + rng.uniform(0.2, 1.0, n) * np.where(np.arange(n) % 2, 1.0, -1.0)
    else:
        b = _points(db, (n,), seed + 100)
    return a, b


def _binary_ref(entry, f, z):
    fn, ref = entry[0], entry[1]
    if ref is not None:
        return cs_jacobian(lambda w: f(w, ref), z), RTOL_CS
    return fd_jacobian(lambda w: f(w, fn), z, h=1e-3), 1e-7


# Each layout: (number of inputs, builder of z from (a, b), f(z, g))
BLAYOUTS = {
    "0d": (1, lambda a, b: np.array([a[0], b[0]]), lambda z, g: g(z[0], z[1])),
    "1d": (4, lambda a, b: np.concatenate([a, b]), lambda z, g: g(z[:4], z[4:])),
    "2d": (6, lambda a, b: np.stack([a, b]).reshape(2, 2, 3), lambda z, g: g(z[0], z[1])),
    "broadcast": (
        4,
        lambda a, b: np.concatenate([a[:3], b]),
        lambda z, g: g(z[:3, None], z[3:]),
    ),
    "noncontig": (
        8,
        lambda a, b: np.ascontiguousarray(np.stack([a, b]).T).T,  # a transposed view
        lambda z, g: g(z[0, ::2], z[1, ::-2]),
    ),
    "a-only": (5, lambda a, b: a, lambda z, g: g(z, _B_CONST[: z.size])),
    "b-only": (5, lambda a, b: b, lambda z, g: g(_A_CONST[: z.size], z)),
    "scalar-b": (3, lambda a, b: a, lambda z, g: g(z, _B_CONST[0].item())),
}
_A_CONST = np.zeros(8)
_B_CONST = np.zeros(8)


@pytest.mark.parametrize("layout", list(BLAYOUTS))
@pytest.mark.parametrize("entry", BINARY, ids=_id)
def test_binary_jacobian(entry, layout):
    global _A_CONST, _B_CONST
    n, build, f = BLAYOUTS[layout]
    a, b = _pair(entry, max(n, 3), seed=5)
    _A_CONST, _B_CONST = a.copy(), b.copy()
    a, b = a[:n], b[:n]
    z = build(a, b)
    J = duals.jacobian(lambda w: f(w, entry[0]), z)
    expected, rtol = _binary_ref(entry, f, z)
    assert J.shape == expected.shape
    np.testing.assert_allclose(J, expected, rtol=rtol, atol=1e-12)
    # values are NumPy's
    v, _ = duals.value_and_jacobian(lambda w: f(w, entry[0]), z)
    np.testing.assert_allclose(v, f(z, entry[0]), rtol=1e-15, atol=0)


@pytest.mark.parametrize("chunk", [1, 2, 3, 4])
@pytest.mark.parametrize("entry", BINARY[:6], ids=_id)
def test_binary_chunks(entry, chunk):
    a, b = _pair(entry, 3, seed=7)
    z = np.concatenate([a, b[:0]])  # n = 3: chunks 1, n-1, n, n+1
    J = duals.jacobian(lambda w: entry[0](w, w[::-1] + 1.0), z, chunk=chunk)
    expected = cs_jacobian(lambda w: entry[1](w, w[::-1] + 1.0), z)
    np.testing.assert_allclose(J, expected, rtol=RTOL_CS, atol=1e-14)


@pytest.mark.parametrize("entry", [e for e in BINARY if e[4] is not None], ids=_id)
def test_binary_hessian(entry):
    fn, mpfn = entry[0], entry[4]
    a, b = _pair(entry, 2, seed=9)
    for i in range(2):
        H = duals.hessian(lambda z: fn(z[0], z[1]), [a[i], b[i]])
        np.testing.assert_allclose(H, mp_hessian2(mpfn, a[i], b[i]), rtol=RTOL_MP, atol=1e-12)
        assert H[0, 1] == H[1, 0]


# ------------------------------------------------------------------------------------------------
# Selection: NaN handling and ties
# ------------------------------------------------------------------------------------------------


def test_maximum_minimum_nan_propagates_fmax_ignores():
    nan = np.nan
    a = np.array([1.0, nan, 3.0, nan])
    b = np.array([2.0, 2.0, nan, nan])

    def f(z, g):
        return g(z[:4], z[4:])

    z = np.concatenate([a, b])
    for g in (np.maximum, np.minimum, np.fmax, np.fmin):
        v, J = duals.value_and_jacobian(f, z, args=(g,))
        np.testing.assert_array_equal(v, g(a, b))
        # the derivative follows the selected element; both NaN: the first
        sel_a = {
            "maximum": [False, True, False, True],
            "minimum": [True, True, False, True],
            "fmax": [False, False, True, True],
            "fmin": [True, False, True, True],
        }[g.__name__]
        expected = np.zeros((4, 8))
        for i, s in enumerate(sel_a):
            expected[i, i if s else 4 + i] = 1.0
        np.testing.assert_array_equal(J, expected)


def test_maximum_tie_follows_first():
    J = duals.jacobian(lambda z: np.maximum(z[0], z[1]), [1.0, 1.0])
    np.testing.assert_array_equal(J, [1.0, 0.0])


def test_logaddexp_on_the_diagonal_and_infinities():
    g = duals.grad(lambda z: np.logaddexp(z[0], z[1]), [0.7, 0.7])
    np.testing.assert_allclose(g, [0.5, 0.5], rtol=1e-15)
    H = duals.hessian(lambda z: np.logaddexp(z[0], z[1]), [0.7, 0.7])
    np.testing.assert_allclose(H, [[0.25, -0.25], [-0.25, 0.25]], rtol=1e-15)
    v, J = duals.value_and_jacobian(lambda z: np.logaddexp(z[0], z[1]), [-np.inf, 1.0])
    assert v == 1.0
    np.testing.assert_array_equal(J, [0.0, 1.0])


# ------------------------------------------------------------------------------------------------
# Predicates: booleans of primals
# ------------------------------------------------------------------------------------------------

PREDICATES2 = [
    np.greater,
    np.greater_equal,
    np.less,
    np.less_equal,
    np.equal,
    np.not_equal,
    np.logical_and,
    np.logical_or,
    np.logical_xor,
]
PREDICATES1 = [np.isnan, np.isinf, np.isfinite, np.signbit, np.logical_not]


@pytest.mark.parametrize("pred", PREDICATES2, ids=lambda p: p.__name__)
def test_binary_predicates(pred):
    a = np.array([1.0, 0.0, -2.0, np.nan, 3.0])
    b = np.array([1.0, 2.0, -3.0, 1.0, 0.0])
    seen = {}

    def f(z):
        seen["dual"] = pred(z[:5], z[5:])
        seen["scalar"] = pred(z[0], 1.0)
        seen["mixed"] = pred(b, z[:5])
        return z

    duals.jacobian(f, np.concatenate([a, b]))
    for key, expected in [("dual", pred(a, b)), ("scalar", pred(a[0], 1.0)), ("mixed", pred(b, a))]:
        got = seen[key]
        assert not isinstance(got, (duals.Dual, duals.DualArray))
        np.testing.assert_array_equal(got, expected)
        assert np.asarray(got).dtype == bool


@pytest.mark.parametrize("pred", PREDICATES1, ids=lambda p: p.__name__)
def test_unary_predicates(pred):
    x = np.array([1.0, -0.0, np.inf, -np.inf, np.nan, 0.0])
    seen = {}

    def f(z):
        seen["r"] = pred(z)
        return z

    duals.jacobian(f, x)
    assert seen["r"].dtype == bool
    np.testing.assert_array_equal(seen["r"], pred(x))


def test_operators_compare_primals():
    def f(z):
        assert (z > 1.0).tolist() == [False, True]
        assert (z[1] >= z[0]) and (z[0] < z[1]) and (z[0] != z[1]) and not (z[0] == z[1])
        return z * (z > 1.0)

    np.testing.assert_array_equal(duals.derivative(f, np.array([0.5, 2.0])), [0.0, 1.0])


# ------------------------------------------------------------------------------------------------
# Methods: reduce, accumulate, outer, at; out= and where=
# ------------------------------------------------------------------------------------------------

REDUCE_AXES = [None, 0, 1, -1, (0, 1)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", REDUCE_AXES, ids=str)
@pytest.mark.parametrize("uf", [np.add, np.multiply], ids=lambda u: u.__name__)
def test_reduce_analytic(uf, axis, keepdims):
    x = _points((-2, 2), (3, 5), seed=11)
    x[1, 2] = 0.0  # a zero factor: the product rule must not divide
    J = duals.jacobian(lambda z: uf.reduce(z, axis=axis, keepdims=keepdims), x)
    expected = cs_jacobian(lambda z: uf.reduce(z, axis=axis, keepdims=keepdims), x)
    np.testing.assert_allclose(J, expected, rtol=RTOL_CS, atol=1e-14)
    v, _ = duals.value_and_jacobian(lambda z: uf.reduce(z, axis=axis, keepdims=keepdims), x)
    np.testing.assert_allclose(v, uf.reduce(x, axis=axis, keepdims=keepdims), rtol=1e-15)


@pytest.mark.parametrize("axis", REDUCE_AXES, ids=str)
@pytest.mark.parametrize("uf", [np.maximum, np.minimum, np.fmax, np.fmin], ids=lambda u: u.__name__)
def test_reduce_selection(uf, axis):
    x = np.random.default_rng(12).permutation(15).reshape(3, 5) * 0.5 - 3.0
    J = duals.jacobian(lambda z: uf.reduce(z, axis=axis), x)
    expected = fd_jacobian(lambda z: uf.reduce(z, axis=axis), x, h=1e-3)
    np.testing.assert_allclose(J, expected, rtol=1e-9, atol=1e-9)


def test_reduce_default_axis_initial_where_and_0d():
    x = _points((0.5, 2), (3, 4), seed=13)
    np.testing.assert_allclose(
        duals.jacobian(lambda z: np.add.reduce(z), x),  # axis=0 by default
        cs_jacobian(lambda z: np.add.reduce(z), x),
        rtol=RTOL_CS,
    )
    mask = np.array([True, False, True, True])
    for uf, kw in [(np.add, {}), (np.multiply, {"initial": 2.0}), (np.maximum, {"initial": 0.0})]:

        def f(z, uf=uf, kw=kw):
            return uf.reduce(z, axis=1, where=mask, **kw)

        np.testing.assert_allclose(
            duals.jacobian(f, x), fd_jacobian(f, x, h=1e-3), rtol=1e-9, atol=1e-10
        )
    assert duals.derivative(lambda t: np.add.reduce(t, axis=None), 2.0) == 1.0
    assert duals.derivative(lambda t: np.multiply.reduce(t * t, axis=None), 3.0) == 6.0


def test_reduce_of_empty():
    J = duals.jacobian(lambda z: np.multiply.reduce(z[:0]) + np.add.reduce(z[:0]), [1.0, 2.0])
    np.testing.assert_array_equal(J, [0.0, 0.0])
    with pytest.raises(ValueError):
        duals.jacobian(lambda z: np.maximum.reduce(z[:0]), [1.0, 2.0])


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize(
    "uf", [np.add, np.multiply, np.maximum, np.minimum], ids=lambda u: u.__name__
)
def test_accumulate(uf, axis):
    x = np.random.default_rng(14).permutation(12).reshape(3, 4) * 0.3 - 1.45  # no ties
    if uf is np.multiply:
        x[1, 1] = 0.0
    J = duals.jacobian(lambda z: uf.accumulate(z, axis=axis), x)
    if uf in (np.add, np.multiply):
        expected = cs_jacobian(lambda z: uf.accumulate(z, axis=axis), x)
    else:
        expected = fd_jacobian(lambda z: uf.accumulate(z, axis=axis), x, h=1e-3)
    np.testing.assert_allclose(J, expected, rtol=1e-12, atol=1e-12)
    v, _ = duals.value_and_jacobian(lambda z: uf.accumulate(z, axis=axis), x)
    np.testing.assert_array_equal(v, uf.accumulate(x, axis=axis))


@pytest.mark.parametrize("uf", [np.multiply, np.subtract, np.power, np.arctan2, np.maximum])
def test_outer(uf):
    z = np.array([0.5, 1.5, 2.0, 0.7, 1.1])
    J = duals.jacobian(lambda w: uf.outer(w[:3], w[3:]), z)
    np.testing.assert_allclose(
        J, fd_jacobian(lambda w: uf.outer(w[:3], w[3:]), z, h=1e-3), rtol=1e-8, atol=1e-10
    )
    assert J.shape == (3, 2, 5)


def test_add_at():
    idx = np.array([0, 2, 0, 1])

    def f(z):
        acc = z[:3] * 1.0
        np.add.at(acc, idx, z[3:] ** 2)
        np.subtract.at(acc, [2], z[0])
        return acc

    z = np.array([1.0, 2.0, 3.0, 0.5, -1.0, 2.0, 4.0])
    J = duals.jacobian(f, z)
    expected = np.array(
        [
            [1, 0, 0, 2 * 0.5, 0, 2 * 2.0, 0],
            [0, 1, 0, 0, 0, 0, 2 * 4.0],
            [-1, 0, 1, 0, 2 * -1.0, 0, 0],
        ]
    )
    np.testing.assert_allclose(J, expected)


def test_out_dual_array_is_filled_and_returned():
    def f(z):
        o = z * 0.0
        r = np.sin(z, out=o)
        assert r is o
        r2 = np.multiply(z, 2.0, out=(o,))
        assert r2 is o
        return np.exp(z, o) + o * 0.0

    x = np.array([0.1, 0.2])
    np.testing.assert_allclose(duals.derivative(f, x), np.exp(x), rtol=1e-15)


def test_out_with_where():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([2.0, 0.0, 4.0, 0.0])

    def f(z):
        o = z * 0.0
        return np.divide(z, b, out=o, where=b != 0)

    J = duals.jacobian(f, a)
    np.testing.assert_allclose(J, np.diag([0.5, 0.0, 0.25, 0.0]))
    v, _ = duals.value_and_jacobian(f, a)
    np.testing.assert_allclose(v, [0.5, 0.0, 0.75, 0.0])


def test_divmod_and_modf():
    def f(z):
        q, r = np.divmod(z, 0.75)
        frac, whole = np.modf(z * 1.5)
        return [q[0], r[0], frac[0], whole[0]]

    J = duals.jacobian(f, np.array([2.0, 1.0]))
    np.testing.assert_allclose(J, [[0, 0], [1, 0], [1.5, 0], [0, 0]])


def test_ldexp():
    d = duals.derivative(lambda t: np.ldexp(t, 3), np.array([0.3, -2.0]))
    np.testing.assert_array_equal(d, [8.0, 8.0])


# ------------------------------------------------------------------------------------------------
# matmul (the @ operator): bilinear, every shape combination
# ------------------------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 2)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
]


@pytest.mark.parametrize("which", ["left", "right", "both"])
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes, which):
    sa, sb = shapes
    rng = np.random.default_rng(15)
    A, B = rng.normal(size=sa), rng.normal(size=sb)
    na = A.size

    def f(z):
        if which == "left":
            return z.reshape(sa) @ B
        if which == "right":
            return A @ z.reshape(sb)
        return z[:na].reshape(sa) @ z[na:].reshape(sb)

    if which == "left":
        z = A.ravel()
    elif which == "right":
        z = B.ravel()
    else:
        z = np.concatenate([A.ravel(), B.ravel()])
    J = duals.jacobian(f, z)
    np.testing.assert_allclose(J, cs_jacobian(f, z), rtol=RTOL_CS, atol=1e-14)
    assert J.shape == np.shape(A @ B) + z.shape


# ------------------------------------------------------------------------------------------------
# Second order through every method and the non-smooth two-argument ufuncs
# ------------------------------------------------------------------------------------------------

_M = np.random.default_rng(16).normal(size=(3, 3))
SECOND_ORDER = {
    "multiply.reduce": lambda z: np.multiply.reduce(z),
    "multiply.reduce-2d": lambda z: np.add.reduce(np.multiply.reduce(z.reshape(2, 3), axis=1)),
    "maximum.reduce": lambda z: np.maximum.reduce(z * z),
    "fmin.reduce": lambda z: np.fmin.reduce(np.sin(z)),
    "add.reduce-where": lambda z: np.add.reduce(z**3, where=np.array([1, 0, 1, 1, 0, 1], bool)),
    "multiply.accumulate": lambda z: np.add.reduce(np.multiply.accumulate(z) ** 2),
    "maximum.accumulate": lambda z: np.add.reduce(np.maximum.accumulate(z) ** 3),
    "add.accumulate": lambda z: np.add.reduce(np.sin(np.add.accumulate(z))),
    "multiply.outer": lambda z: np.add.reduce(np.multiply.outer(z[:3], z[3:]) ** 2, axis=None),
    "matmul-vec": lambda z: z[:3] @ _M @ z[3:],
    "matmul-batch": lambda z: np.add.reduce(
        (z.reshape(2, 1, 3) @ np.sin(z[:3].reshape(3, 1)) * z[::2].reshape(1, 3, 1)) ** 2,
        axis=None,
    ),
    "maximum": lambda z: np.add.reduce(np.maximum(z[:3], z[3:]) ** 3),
    "fmin": lambda z: np.add.reduce(np.fmin(z[:3] * z[3:], z[3:]) ** 2),
    "remainder": lambda z: np.add.reduce(np.remainder(z[:3] * 3.0, z[3:] + 2.0) ** 2),
    "fmod": lambda z: np.add.reduce(np.fmod(z[:3] * 3.0, z[3:] + 2.0) ** 2),
    "floor_divide": lambda z: np.add.reduce(np.floor_divide(z[:3] * 3.0, 1.7) * z[3:] ** 2),
    "copysign": lambda z: np.add.reduce(np.copysign(z[:3] ** 2, z[3:]) * z[:3]),
    "hypot": lambda z: np.add.reduce(np.hypot(z[:3], z[3:])),
    "logaddexp2": lambda z: np.add.reduce(np.logaddexp2(z[:3], z[3:] ** 2)),
    "abs-sign": lambda z: np.add.reduce(np.abs(z) ** 3 * np.sign(z)),
    "divmod": lambda z: np.add.reduce(np.divmod(z[:3] * 5.0, 0.7)[1] ** 2),
    "square-reciprocal": lambda z: np.add.reduce(np.square(z) * np.reciprocal(2.0 + z)),
}


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_second_order_methods(name):
    f = SECOND_ORDER[name]
    z = np.array([0.31, -0.72, 0.53, 0.94, -0.45, 0.66])
    H = duals.hessian(f, z)
    np.testing.assert_array_equal(H, H.T)
    expected = fd_jacobian(lambda w: duals.grad(f, w), z, h=1e-3)
    np.testing.assert_allclose(H, expected, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(duals.grad(f, z), fd_jacobian(f, z, h=1e-3), rtol=1e-8, atol=1e-9)
    v = np.linspace(-1, 1, 6)
    np.testing.assert_allclose(duals.hvp(f, z, v), H @ v, rtol=1e-12, atol=1e-12)
