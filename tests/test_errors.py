"""What bad input gets (DESIGN.md section 4): one test per line, with the message checked."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sp

import duals

DRIVERS_X = [
    ("derivative", lambda f, x: duals.derivative(f, x)),
    ("second_derivative", lambda f, x: duals.second_derivative(f, x)),
    ("jacobian", lambda f, x: duals.jacobian(f, x)),
    ("value_and_jacobian", lambda f, x: duals.value_and_jacobian(f, x)),
    ("jvp", lambda f, x: duals.jvp(f, x, np.ones(np.shape(x)))),
    ("grad", lambda f, x: duals.grad(lambda z: np.sum(f(z)), x)),
    ("value_and_grad", lambda f, x: duals.value_and_grad(lambda z: np.sum(f(z)), x)),
    ("hessian", lambda f, x: duals.hessian(lambda z: np.sum(f(z)), x)),
    ("hvp", lambda f, x: duals.hvp(lambda z: np.sum(f(z)), x, np.ones(np.shape(x)))),
]
DRIVER_IDS = [d[0] for d in DRIVERS_X]
X = np.array([0.5, 1.5, 2.5])


def _lost(excinfo):
    msg = str(excinfo.value)
    assert "derivative" in msg
    assert "zeros_like" in msg or "empty_like" in msg or "np.array" in msg
    return msg


# ------------------------------------------------------------------------------------------------
# Losing the derivative: TypeError with the fix
# ------------------------------------------------------------------------------------------------

LOSSY = {
    "float(d)": lambda d: float(d),
    "int(d)": lambda d: int(d),
    "complex(d)": lambda d: complex(d),
    "math.sin(d)": lambda d: math.sin(d),
    "math.exp(d)": lambda d: math.exp(d),
    "np.asarray(d, dtype=float)": lambda d: np.asarray(d, dtype=float),
    "np.array(d, dtype=float)": lambda d: np.array(d, dtype=float),
    "out[0] = d": lambda d: np.empty(3).__setitem__(0, d),
    "range(d)": lambda d: range(d),
}


@pytest.mark.parametrize("what", list(LOSSY))
def test_lossy_conversion_of_a_dual_scalar(what):
    with pytest.raises(TypeError) as excinfo:
        LOSSY[what](duals.Dual(2.0, 1.0))
    _lost(excinfo)


@pytest.mark.parametrize("what", list(LOSSY))
def test_lossy_conversion_inside_f_propagates_from_the_driver(what):
    def f(x):
        return x * LOSSY[what](x[0])

    with pytest.raises(TypeError) as excinfo:
        duals.jacobian(f, X)
    _lost(excinfo)


ARRAY_LOSSY = {
    "np.asarray(x)": lambda x: np.asarray(x),
    "np.asarray(x, dtype=float)": lambda x: np.asarray(x, dtype=float),
    "np.array(x)": lambda x: np.array(x, dtype=float),
    "out[:] = x": lambda x: np.empty(3).__setitem__(slice(None), x),
    "x.astype(int)": lambda x: x.astype(int),
    "out += x": lambda x: np.zeros(3).__iadd__(x),
    "np.sin(x, out=plain)": lambda x: np.sin(x, out=np.empty(3)),
    "np.add(x, 1, out=plain)": lambda x: np.add(x, 1.0, out=np.empty(3)),
    "np.add.reduce(x, out=plain)": lambda x: np.add.reduce(x, out=np.empty(())),
}


@pytest.mark.parametrize("what", list(ARRAY_LOSSY))
def test_lossy_conversion_of_a_dual_array(what):
    x = duals.DualArray(X, np.ones(3))
    with pytest.raises(TypeError) as excinfo:
        ARRAY_LOSSY[what](x)
    assert "derivative" in str(excinfo.value)


def test_the_fixes_named_in_the_message_work():
    def with_empty_like(x):
        out = np.empty_like(x)
        out[0] = x[0] * x[1]
        out[1:] = x[1:] ** 2
        return out

    def with_zeros_like_and_out(x):
        out = np.zeros_like(x)
        np.sin(x, out=out)
        return out

    def with_array(x):
        return np.array([x[0] * x[1], x[1] ** 2, x[2] ** 2])

    J = duals.jacobian(with_empty_like, X)
    np.testing.assert_allclose(J, [[1.5, 0.5, 0], [0, 3.0, 0], [0, 0, 5.0]])
    np.testing.assert_allclose(duals.jacobian(with_array, X), J)
    np.testing.assert_allclose(duals.jacobian(with_zeros_like_and_out, X), np.diag(np.cos(X)))


# ------------------------------------------------------------------------------------------------
# Functions without a rule: TypeError naming them
# ------------------------------------------------------------------------------------------------

UNSUPPORTED_UFUNCS = [
    (lambda x: np.spacing(x), "numpy.spacing"),
    (lambda x: np.nextafter(x, 1.0), "numpy.nextafter"),
    (lambda x: np.frexp(x), "numpy.frexp"),
    (lambda x: np.gcd(x, x), "numpy.gcd"),
    (lambda x: sp.gamma(x), "scipy.special.gamma"),
    (lambda x: sp.expit(x), "scipy.special.expit"),
    (lambda x: np.power.reduce(x), "numpy.power.reduce"),
    (lambda x: np.add.reduceat(x, [0, 1]), "numpy.add.reduceat"),
    (lambda x: np.multiply.at(x, [0], 2.0), "numpy.multiply.at"),
    (lambda x: np.sin(x, dtype=np.float32), "float32"),
    (lambda x: np.matmul(x, x, axes=[(0,), (0,), ()]), "axes"),
]


@pytest.mark.parametrize("call,name", UNSUPPORTED_UFUNCS, ids=[n for _, n in UNSUPPORTED_UFUNCS])
def test_unsupported_ufunc_names_itself(call, name):
    def f(x):
        return call(x)

    with pytest.raises(TypeError, match=name.replace(".", r"\.")):
        duals.jacobian(f, X)


def test_where_without_out_is_refused():
    with pytest.raises(TypeError, match="where"):
        duals.jacobian(lambda x: np.sin(x, where=x > 1.0), X)


def test_out_must_be_a_dual_array_of_the_result_shape():
    def f(x):
        return np.sin(x, out=x[:2] * 1.0)

    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        duals.jacobian(f, X)


# ------------------------------------------------------------------------------------------------
# Shapes: ValueError naming both
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["jvp", "hvp"])
def test_v_must_have_the_shape_of_x(driver):
    fn = getattr(duals, driver)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        fn(lambda x: np.sum(x**2), X, np.ones(2))
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 1\)"):
        fn(lambda x: np.sum(x**2), X, np.ones((3, 1)))


@pytest.mark.parametrize(
    "driver,alternative",
    [
        ("grad", "jacobian"),
        ("value_and_grad", "jacobian"),
        ("hessian", "jacobian"),
        ("hvp", "jvp"),
    ],
)
def test_scalar_drivers_need_a_scalar_output(driver, alternative):
    fn = getattr(duals, driver)
    args = (X,) if driver != "hvp" else (X, X)
    with pytest.raises(ValueError) as excinfo:
        fn(np.sin, *args)
    msg = str(excinfo.value)
    assert "scalar" in msg and "(3,)" in msg and alternative in msg
    with pytest.raises(ValueError, match=r"\(1,\)"):
        fn(lambda x: x[:1], *args)


def test_grad_message_is_the_documented_one():
    with pytest.raises(ValueError) as excinfo:
        duals.grad(lambda x: x * 2, X)
    assert str(excinfo.value) == (
        "grad needs f to return a scalar; f returned shape (3,): did you mean jacobian?"
    )


def test_broadcasting_errors_are_numpys():
    with pytest.raises(ValueError, match="broadcast"):
        duals.jacobian(lambda x: x + np.ones(2), X)
    with pytest.raises(ValueError, match="matmul"):
        duals.jacobian(lambda x: x @ np.ones(2), X)


# ------------------------------------------------------------------------------------------------
# Complex, object and string inputs: TypeError
# ------------------------------------------------------------------------------------------------

BAD_INPUTS = [
    (np.array([1.0 + 2.0j, 3.0]), "complex"),
    (1.0 + 0.5j, "complex"),
    ([1j, 2.0], "complex"),
    (np.array(["a", "b"]), "real"),
    ("1.0", "real"),
    (np.array([object(), object()]), "real"),
]


@pytest.mark.parametrize("driver", DRIVERS_X, ids=DRIVER_IDS)
@pytest.mark.parametrize("x,word", BAD_INPUTS, ids=[repr(b[0])[:20] for b in BAD_INPUTS])
def test_bad_input_types(driver, x, word):
    def f(z):
        raise AssertionError("f must not be called")

    with pytest.raises(TypeError, match=word):
        driver[1](f, x)


def test_complex_v_and_complex_constants():
    with pytest.raises(TypeError, match="complex"):
        duals.jvp(np.sin, X, X + 1j)
    with pytest.raises(TypeError, match="complex"):
        duals.jacobian(lambda x: x * (1 + 1j), X)
    with pytest.raises(TypeError, match="complex"):
        duals.jacobian(lambda x: np.array([1j, 2.0]), X)


def test_dual_input_is_refused():
    with pytest.raises(TypeError, match="nested"):
        duals.jacobian(np.sin, duals.DualArray(X, np.ones(3)))


def test_unusable_outputs():
    with pytest.raises(TypeError, match="str"):
        duals.jacobian(lambda x: "result", X)
    with pytest.raises(TypeError, match="dict"):
        duals.jacobian(lambda x: {"a": x}, X)
    with pytest.raises(ValueError, match="shapes"):
        duals.jacobian(lambda x: [x[0], x[:2]], X)


def test_duals_from_another_call_are_refused():
    kept = []

    def keep(x):
        kept.append(x[0])
        return x

    duals.jacobian(keep, X)
    with pytest.raises(ValueError, match="tangent layout"):
        duals.jacobian(lambda x: x[:2] * kept[0], np.ones(2))


def test_dual_as_index_is_refused():
    with pytest.raises(TypeError, match="index"):
        duals.jacobian(lambda x: x[x[0]], X)


# ------------------------------------------------------------------------------------------------
# NaN and infinity: IEEE propagation, documented values, no exception, no warning
# ------------------------------------------------------------------------------------------------


def test_nan_and_inf_propagate():
    x = np.array([np.nan, np.inf, -np.inf, 1.0])
    np.testing.assert_array_equal(duals.derivative(np.sin, x), [np.nan, np.nan, np.nan, np.cos(1)])
    np.testing.assert_array_equal(duals.derivative(np.exp, x), [np.nan, np.inf, 0.0, np.e])
    np.testing.assert_array_equal(duals.derivative(np.arctan, x), [np.nan, 0.0, 0.0, 0.5])
    # the second-order chain rule meets inf * 0 at inf (as any IEEE forward mode does): NaN
    np.testing.assert_array_equal(duals.second_derivative(np.exp, x), [np.nan, np.nan, 0.0, np.e])
    # forward mode: an output that depends on a NaN or inf input gets f' * 0 = NaN in the
    # directions of the other inputs (IEEE arithmetic; jax.jacfwd does the same)
    J = duals.jacobian(lambda z: z**2, x)
    np.testing.assert_array_equal(np.diag(J), [np.nan, np.inf, -np.inf, 2.0])
    assert np.isnan(J[:3][~np.eye(4, dtype=bool)[:3]]).all()
    np.testing.assert_array_equal(J[3], [0.0, 0.0, 0.0, 2.0])
    assert np.isnan(duals.grad(lambda z: np.sum(z**2), x)).all()
    np.testing.assert_array_equal(duals.grad(lambda z: np.sum(z[3:] ** 2), x), [0, 0, 0, 2.0])


def test_documented_values_where_no_derivative_exists():
    assert duals.derivative(np.sqrt, 0.0) == np.inf
    assert duals.derivative(np.cbrt, 0.0) == np.inf
    assert duals.derivative(np.abs, 0.0) == 1.0
    assert duals.derivative(np.abs, -0.0) == -1.0
    assert duals.derivative(np.abs, 2.0) == 1.0
    assert np.isnan(duals.grad(lambda z: np.hypot(z[0], z[1]), [0.0, 0.0])).all()
    assert duals.derivative(np.floor, 2.0) == 0.0
    assert duals.derivative(np.log, 0.0) == np.inf
    assert duals.derivative(lambda t: t**0.5, 0.0) == np.inf
    assert duals.derivative(lambda t: t**2, 0.0) == 0.0
    assert duals.derivative(lambda t: t**1.0, 0.0) == 1.0
    assert duals.derivative(lambda t: t**0, 0.0) == 0.0
    assert duals.derivative(lambda t: np.arcsin(t), 1.0) == np.inf
    # out of the domain: the value is NaN, as NumPy's
    assert np.isnan(duals.derivative(np.sqrt, -1.0))
    assert np.isnan(duals.jvp(np.log, -1.0, 1.0)[0])


def test_nan_propagation_does_not_warn():
    # the suite runs with warnings as errors: none of these may warn
    assert np.isnan(duals.second_derivative(np.sqrt, np.nan))
    assert np.isnan(duals.second_derivative(lambda t: t * t, np.inf))  # inf * 0 in the chain
    assert duals.derivative(lambda t: t * t, np.inf) == np.inf
    assert duals.derivative(lambda t: 1.0 / t, 0.0) == -np.inf


# ------------------------------------------------------------------------------------------------
# f's own exceptions propagate unchanged
# ------------------------------------------------------------------------------------------------


class MyError(Exception):
    pass


@pytest.mark.parametrize("exc", [MyError("boom"), KeyError("k"), ZeroDivisionError("z")])
@pytest.mark.parametrize("driver", DRIVERS_X, ids=DRIVER_IDS)
def test_exceptions_of_f_propagate_unchanged(driver, exc):
    def f(x):
        raise exc

    with pytest.raises(type(exc)) as excinfo:
        driver[1](f, X)
    assert excinfo.value is exc


def test_exception_after_some_chunks_propagates():
    calls = []

    def f(x):
        calls.append(1)
        if len(calls) == 2:
            raise MyError("second chunk")
        return x

    with pytest.raises(MyError, match="second chunk"):
        duals.jacobian(f, np.ones(5), chunk=2)


# ------------------------------------------------------------------------------------------------
# Dense results larger than memory: MemoryError before allocating
# ------------------------------------------------------------------------------------------------


def test_huge_hessian_raises_before_calling_f():
    called = []

    def f(x):
        called.append(1)
        return np.sum(x)

    with pytest.raises(MemoryError, match="Hessian.*hvp"):
        duals.hessian(f, np.zeros(2_000_000))
    assert not called


def test_huge_jacobian_raises_before_allocating():
    with pytest.raises(MemoryError, match="Jacobian"):
        duals.jacobian(lambda x: x, np.zeros(2_000_000))


def test_huge_chunk_raises_before_allocating():
    with pytest.raises(MemoryError, match="chunk"):
        duals.jacobian(lambda x: x, np.zeros(2_000_000), chunk=2_000_000)


# ------------------------------------------------------------------------------------------------
# Nothing panics across the boundary
# ------------------------------------------------------------------------------------------------

NASTY = [
    np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-308, 5e-324, 1e308, -1e308]),
    np.zeros(0),
    np.array(1e308),
]
ALL_UFUNCS_1 = [
    np.sin, np.cos, np.tan, np.arcsin, np.arccos, np.arctan, np.sinh, np.cosh, np.tanh,
    np.arcsinh, np.arccosh, np.arctanh, np.exp, np.exp2, np.expm1, np.log, np.log2, np.log10,
    np.log1p, np.sqrt, np.cbrt, np.square, np.reciprocal, np.absolute, np.fabs, np.sign,
    np.floor, np.ceil, np.rint, np.trunc, np.deg2rad, np.rad2deg, sp.erf, sp.erfc,
]  # fmt: skip
ALL_UFUNCS_2 = [
    np.add, np.subtract, np.multiply, np.divide, np.power, np.float_power, np.hypot,
    np.arctan2, np.maximum, np.minimum, np.fmax, np.fmin, np.logaddexp, np.logaddexp2,
    np.remainder, np.fmod, np.floor_divide, np.copysign,
]  # fmt: skip


def _no_panic(call):
    try:
        call()
    except BaseException as e:  # a PanicException derives from BaseException
        assert type(e).__name__ != "PanicException", repr(e)
        if not isinstance(e, Exception):
            raise


@pytest.mark.parametrize("x", NASTY, ids=["specials", "empty", "0d-huge"])
def test_no_panic_on_special_values(x):
    for uf in ALL_UFUNCS_1:
        _no_panic(lambda uf=uf: duals.derivative(uf, x))
        _no_panic(lambda uf=uf: duals.second_derivative(uf, x))
    for uf in ALL_UFUNCS_2:
        _no_panic(lambda uf=uf: duals.jacobian(lambda z: uf(z, z[::-1] if z.ndim else z), x))
        _no_panic(lambda uf=uf: duals.derivative(lambda z: uf(z, 0.0), x))
        _no_panic(lambda uf=uf: duals.second_derivative(lambda z: uf(0.0, z), x))
