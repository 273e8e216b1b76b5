"""Property tests (hypothesis): random compositions of supported ufuncs against the complex step
and finite differences; the drivers agree with each other."""

from __future__ import annotations

import numpy as np
from derivref import cs_jacobian, fd_jacobian
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import duals

SETTINGS = settings(max_examples=50, deadline=None)

# Entire (complex-analytic, defined on all of R) building blocks, so that random compositions
# stay in the domain and the complex step is a valid reference.
UNARY_OPS = {
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "arctan": np.arctan,
    "arcsinh": np.arcsinh,
    "gauss": lambda y: np.exp(-np.square(y)),
    "log1p_sq": lambda y: np.log1p(y * y),
    "sqrt_1p_sq": lambda y: np.sqrt(1.0 + y**2),
    "scaled": lambda y: 0.5 * y - 0.25,
    "expm1": lambda y: np.expm1(0.5 * y),
    "cube": lambda y: np.power(y, 3) * 0.2,
    "erf": lambda y: __import__("scipy.special").special.erf(y),
}
BINARY_OPS = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "ratio": lambda a, b: np.divide(a, 1.0 + b * b),
    "matmul_outer": lambda a, b: a * (b @ b) * 0.1,
}
OPS = [(k, 1) for k in UNARY_OPS] + [(k, 2) for k in BINARY_OPS]

points = st.integers(1, 5).flatmap(
    lambda n: arrays(np.float64, n, elements=st.floats(-2.0, 2.0, allow_subnormal=False))
)
programs = st.lists(st.sampled_from(OPS), min_size=1, max_size=6)


def _program(ops):
    def f(x):
        y = x
        for name, arity in ops:
            if arity == 1:
                y = UNARY_OPS[name](y)
            else:
                y = BINARY_OPS[name](y, x[::-1])
        return y

    return f


@SETTINGS
@given(x=points, ops=programs)
def test_random_compositions_match_complex_step(x, ops):
    f = _program(ops)
    J = duals.jacobian(f, x)
    np.testing.assert_allclose(J, cs_jacobian(f, x), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(duals.derivative(f, x), J.sum(axis=1), rtol=1e-11, atol=1e-12)


@SETTINGS
@given(x=points, ops=programs)
def test_random_compositions_second_order_match_finite_differences(x, ops):
    f = _program(ops)

    def scalar(z):
        return np.sum(f(z))

    H = duals.hessian(scalar, x)
    np.testing.assert_array_equal(H, H.T)
    expected = fd_jacobian(lambda z: duals.grad(scalar, z), x, h=1e-3)
    np.testing.assert_allclose(H, expected, rtol=1e-6, atol=1e-6)


@SETTINGS
@given(x=points, ops=programs, data=st.data())
def test_jacobian_equals_stacked_jvps(x, ops, data):
    f = _program(ops)
    J = duals.jacobian(f, x)
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = 1.0
        _, t = duals.jvp(f, x, e)
        np.testing.assert_array_equal(t, J[:, j])
    v = data.draw(arrays(np.float64, x.shape, elements=st.floats(-1, 1)))
    _, jv = duals.jvp(f, x, v)
    np.testing.assert_allclose(jv, J @ v, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(x=points, ops=programs, data=st.data())
def test_grad_hessian_hvp_consistent(x, ops, data):
    f = _program(ops)

    def scalar(z):
        return np.sum(f(z) ** 2)

    g = duals.grad(scalar, x)
    np.testing.assert_array_equal(g, duals.jacobian(scalar, x))
    val, g2 = duals.value_and_grad(scalar, x)
    np.testing.assert_array_equal(g2, g)
    # The rule table, not libm: ulps, relative to the terms (a value left by cancellation, such
    # as 2.7e-5 from terms of order 1, differs by 2e-14 relative, 6e-19 absolute)
    np.testing.assert_allclose(val, scalar(x), rtol=1e-14, atol=1e-15)
    H = duals.hessian(scalar, x)
    np.testing.assert_array_equal(H, H.T)
    v = data.draw(arrays(np.float64, x.shape, elements=st.floats(-1, 1)))
    np.testing.assert_allclose(duals.hvp(scalar, x, v), H @ v, rtol=1e-11, atol=1e-11)
    chunk = data.draw(st.integers(1, x.size + 1))
    np.testing.assert_allclose(duals.hessian(scalar, x, chunk=chunk), H, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(duals.grad(scalar, x, chunk=chunk), g, rtol=1e-14, atol=1e-14)
