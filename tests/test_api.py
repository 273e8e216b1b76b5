"""The public drivers: shapes, types, args/chunk, consistency between drivers, worked examples."""

from __future__ import annotations

import ast
import inspect
import os
import threading

import numpy as np
import pytest
from derivref import cs_jacobian

import duals

K = (0.04, 3.0e7, 1.0e4)


def f_vec(x):
    """R^n -> R^n, any shape: elementwise and coupled (reversal)."""
    return np.sin(x) * x[::-1] + x**2 if np.ndim(x) else np.sin(x) * x + x**2


def f_scalar(x):
    """R^shape -> R."""
    return np.sum(np.sin(x) * np.exp(-(x**2))) + np.sum(x) ** 2


# ------------------------------------------------------------------------------------------------
# Shapes and types
# ------------------------------------------------------------------------------------------------

SHAPES = [(), (1,), (4,), (2, 3), (2, 1, 3)]


def _x(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_shapes_of_every_driver(shape):
    x = _x(shape)
    v = _x(shape, seed=1)
    scalar = shape == ()

    def kind(r, expected_shape):
        if scalar and expected_shape == ():
            assert isinstance(r, float)
        else:
            assert isinstance(r, np.ndarray) and r.dtype == np.float64
            assert r.shape == expected_shape

    kind(duals.derivative(np.sin, x), shape)
    kind(duals.second_derivative(np.sin, x), shape)
    kind(duals.jacobian(np.sin, x), shape + shape)
    y, jv = duals.jvp(np.sin, x, v)
    kind(y, shape)
    kind(jv, shape)
    val, J = duals.value_and_jacobian(np.sin, x)
    kind(val, shape)
    kind(J, shape + shape)
    kind(duals.grad(f_scalar, x), shape)
    val, g = duals.value_and_grad(f_scalar, x)
    assert isinstance(val, float)
    kind(g, shape)
    kind(duals.hessian(f_scalar, x), shape + shape)
    kind(duals.hvp(f_scalar, x, v), shape)


@pytest.mark.parametrize("out_shape", [(), (3,), (2, 2)], ids=str)
@pytest.mark.parametrize("in_shape", [(), (3,), (2, 3)], ids=str)
def test_jacobian_shape_is_output_then_input(in_shape, out_shape):
    x = _x(in_shape)
    m = int(np.prod(out_shape))
    W = np.random.default_rng(3).normal(size=(m, x.size))

    def f(z):
        r = np.reshape(z, (-1,)) if z.ndim else z * np.ones(1)
        return np.reshape(np.tanh(W @ r), out_shape)

    J = duals.jacobian(f, x)
    expected = cs_jacobian(f, x)
    if in_shape == () and out_shape == ():
        assert isinstance(J, float)
    else:
        assert J.shape == out_shape + in_shape
    np.testing.assert_allclose(J, expected, rtol=1e-13, atol=1e-15)


def test_empty_input():
    assert duals.jacobian(lambda x: x * 2, np.zeros(0)).shape == (0, 0)
    assert duals.grad(lambda x: np.sum(x), np.zeros(0)).shape == (0,)
    assert duals.hessian(lambda x: np.sum(x), np.zeros((0, 2))).shape == (0, 2, 0, 2)
    assert duals.hvp(lambda x: np.sum(x), np.zeros(0), np.zeros(0)).shape == (0,)


def test_inputs_promoted_to_float64():
    assert duals.derivative(lambda x: x**2, 3) == 6.0
    assert isinstance(duals.derivative(lambda x: x**2, 3), float)
    assert duals.derivative(lambda x: x * 2.5, True) == 2.5
    np.testing.assert_array_equal(duals.derivative(lambda x: x**2, [1, 2, 3]), [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(duals.grad(lambda x: x @ x, [1, 2]), [2.0, 4.0])
    np.testing.assert_array_equal(
        duals.jacobian(lambda x: 2 * x, [[1, 0]]), 2 * np.eye(2).reshape(1, 2, 1, 2)
    )
    np.testing.assert_array_equal(duals.grad(lambda x: np.sum(x * x), np.int32(3)), 6.0)
    y, t = duals.jvp(lambda x: x**3, 2, 1)
    assert (y, t) == (8.0, 12.0)
    assert duals.hvp(lambda x: x**3, 2, 1) == 12.0
    assert duals.hessian(lambda x: x**3, 2) == 12.0


def test_input_is_not_modified_and_f_may_modify_its_argument():
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()

    def f(z):
        z[0] = z[1] * z[2]  # in-place on the dual argument
        return z

    J = duals.jacobian(f, x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(J, [[0, 3, 2], [0, 1, 0], [0, 0, 1]])


# ------------------------------------------------------------------------------------------------
# args and chunk
# ------------------------------------------------------------------------------------------------


def test_args_are_passed_on():
    def f(x, a, b):
        return a * np.sin(x) + b * x

    x = np.array([0.1, 0.2])
    np.testing.assert_allclose(duals.derivative(f, x, args=(2.0, 3.0)), 2 * np.cos(x) + 3)
    np.testing.assert_allclose(
        duals.jacobian(f, x, args=(2.0, 3.0)), np.diag(2 * np.cos(x) + 3), rtol=1e-15
    )
    np.testing.assert_allclose(
        duals.grad(lambda x, w: w @ np.sin(x), x, args=(np.array([1.0, 2.0]),)),
        np.array([1.0, 2.0]) * np.cos(x),
    )
    np.testing.assert_allclose(
        duals.hessian(lambda x, c: c * x @ x, x, args=(3.0,)), 6 * np.eye(2), rtol=1e-15
    )
    np.testing.assert_allclose(
        duals.hvp(lambda x, c: c * x @ x, x, [1.0, 0.0], args=(3.0,)), [6, 0]
    )
    np.testing.assert_allclose(duals.jvp(f, x, [1.0, 1.0], args=(2.0, 3.0))[1], 2 * np.cos(x) + 3)
    assert duals.second_derivative(lambda x, p: x**p, 2.0, args=(3,)) == 12.0


@pytest.mark.parametrize("count", [0, 1, 6, 7, 8, 20])
def test_any_number_of_args_is_passed_on_in_order(count):
    def f(x, *args):
        assert args == tuple(range(count))
        return x * (1.0 + sum(i * args[i] for i in range(count)))

    x = np.array([0.5, 2.0])
    scale = 1.0 + sum(i * i for i in range(count))
    for driver in (duals.jacobian, lambda f, x, args: duals.value_and_jacobian(f, x, args)[1]):
        np.testing.assert_array_equal(driver(f, x, args=tuple(range(count))), scale * np.eye(2))


@pytest.mark.parametrize("chunk", [1, 2, 6, 7, 8, 100])
def test_chunk_widths_agree(chunk):
    x = _x((7,), seed=4)
    J = duals.jacobian(f_vec, x, chunk=chunk)
    np.testing.assert_allclose(J, cs_jacobian(f_vec, x), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(
        duals.grad(f_scalar, x, chunk=chunk), cs_jacobian(f_scalar, x), rtol=1e-13, atol=1e-15
    )
    H1 = duals.hessian(f_scalar, x)
    np.testing.assert_allclose(duals.hessian(f_scalar, x, chunk=chunk), H1, rtol=1e-14, atol=1e-14)
    v = _x((7,), seed=5)
    np.testing.assert_allclose(duals.hvp(f_scalar, x, v, chunk=chunk), H1 @ v, rtol=1e-12)


def test_default_chunks_for_larger_inputs():
    n = 1000  # more than one chunk of first-order directions by default
    x = np.linspace(-1, 1, n)
    J = duals.jacobian(lambda z: np.sin(z) * z[::-1], x)
    expected = np.diag(np.cos(x) * x[::-1])
    expected[np.arange(n), np.arange(n)[::-1]] += np.sin(x)
    np.testing.assert_allclose(J, expected, rtol=1e-15, atol=1e-15)
    m = 100  # more than one block of second-order seeds by default

    def g(z):
        return np.sum(z**3) + np.sum(z[1:] * z[:-1])

    y = np.linspace(-1, 1, m)
    H = duals.hessian(g, y)
    expected = np.diag(6 * y) + np.eye(m, k=1) + np.eye(m, k=-1)
    np.testing.assert_allclose(H, expected, rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(H, H.T)


@pytest.mark.parametrize("bad", [0, -1])
def test_chunk_must_be_positive(bad):
    with pytest.raises(ValueError, match="chunk"):
        duals.jacobian(np.sin, [1.0, 2.0], chunk=bad)


@pytest.mark.parametrize("bad", [1.5, "2", True])
def test_chunk_must_be_an_integer(bad):
    with pytest.raises(TypeError, match="chunk"):
        duals.jacobian(np.sin, [1.0, 2.0], chunk=bad)


# ------------------------------------------------------------------------------------------------
# Consistency between drivers
# ------------------------------------------------------------------------------------------------


def test_jacobian_equals_stacked_jvps():
    x = _x((2, 3), seed=6)
    J = duals.jacobian(f_vec, x)
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = 1.0
        y, t = duals.jvp(f_vec, x, e.reshape(x.shape))
        np.testing.assert_array_equal(t, J.reshape(x.shape + (x.size,))[..., j])
        np.testing.assert_allclose(y, f_vec(x), rtol=1e-14)


def test_grad_equals_jacobian_of_scalar_and_hvp_equals_hessian_at_v():
    x = _x((5,), seed=7)
    g = duals.grad(f_scalar, x)
    np.testing.assert_array_equal(g, duals.jacobian(f_scalar, x))
    H = duals.hessian(f_scalar, x)
    np.testing.assert_array_equal(H, H.T)
    np.testing.assert_allclose(H, duals.jacobian(lambda z: duals_grad_of(z), x), rtol=1e-12)
    v = _x((5,), seed=8)
    np.testing.assert_allclose(duals.hvp(f_scalar, x, v), H @ v, rtol=1e-13, atol=1e-15)
    val, g2 = duals.value_and_grad(f_scalar, x)
    np.testing.assert_allclose(val, f_scalar(x), rtol=1e-14)
    np.testing.assert_array_equal(g2, g)
    val, J = duals.value_and_jacobian(f_vec, x)
    np.testing.assert_allclose(val, f_vec(x), rtol=1e-14)
    np.testing.assert_array_equal(J, duals.jacobian(f_vec, x))


def duals_grad_of(z):
    """The analytic gradient of f_scalar written in NumPy (differentiated again above)."""
    return np.cos(z) * np.exp(-(z**2)) - 2 * z * np.sin(z) * np.exp(-(z**2)) + 2 * np.sum(z)


def test_second_derivative_matches_hessian_diagonal():
    x = _x((4,), seed=9)
    d2 = duals.second_derivative(lambda z: np.sin(z) * z**3, x)
    H = duals.hessian(lambda z: np.sum(np.sin(z) * z**3), x)
    np.testing.assert_allclose(d2, np.diag(H), rtol=1e-14)
    expected = -np.sin(x) * x**3 + 6 * np.cos(x) * x**2 + 6 * x * np.sin(x)
    np.testing.assert_allclose(d2, expected, rtol=1e-13)


def test_hessian_is_symmetric_and_exact():
    x = _x((3, 2), seed=10)

    def g(z):
        return np.sum(np.exp(z) * z[::-1, ::-1]) + np.prod(np.cos(z))

    H = duals.hessian(g, x)
    assert H.shape == (3, 2, 3, 2)
    Hm = H.reshape(6, 6)
    np.testing.assert_array_equal(Hm, Hm.T)
    np.testing.assert_allclose(
        Hm,
        cs_jacobian(lambda z: _grad_g(z), x).reshape(6, 6),
        rtol=1e-11,
        atol=1e-13,
    )


def _grad_g(z):
    c = np.cos(z)
    p = np.prod(c)
    return np.exp(z) * z[::-1, ::-1] + np.exp(z[::-1, ::-1]) - p * np.tan(z)


def test_constant_function_gives_zeros():
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(duals.jacobian(lambda z: np.ones(3), x), np.zeros((3, 2)))
    np.testing.assert_array_equal(duals.grad(lambda z: 4.0, x), np.zeros(2))
    np.testing.assert_array_equal(duals.hessian(lambda z: 4.0, x), np.zeros((2, 2)))
    np.testing.assert_array_equal(duals.hvp(lambda z: 4.0, x, x), np.zeros(2))
    np.testing.assert_array_equal(duals.derivative(lambda z: 7.0, x), 0.0)
    assert duals.derivative(lambda z: 7.0, 1.0) == 0.0
    assert duals.second_derivative(lambda z: 7.0, 1.0) == 0.0
    assert duals.jvp(lambda z: [1.0, 2.0], x, x)[1].tolist() == [0.0, 0.0]


# ------------------------------------------------------------------------------------------------
# Worked examples
# ------------------------------------------------------------------------------------------------


def test_gradient_of_quadratic_form():
    rng = np.random.default_rng(11)
    M = rng.normal(size=(5, 5))
    a = rng.normal(size=5)
    np.testing.assert_allclose(duals.grad(lambda a: a @ M @ a, a), (M + M.T) @ a, rtol=1e-13)
    np.testing.assert_allclose(duals.hessian(lambda a: a @ M @ a, a), M + M.T, rtol=1e-14)
    np.testing.assert_allclose(duals.grad(lambda a: a.T @ M @ a, a), (M + M.T) @ a, rtol=1e-13)


def test_jacobian_of_cube_is_diagonal():
    x = np.array([-2.0, 0.5, 3.0, 0.0])
    np.testing.assert_array_equal(duals.jacobian(lambda x: x**3, x), np.diag(3 * x**2))


def test_gradient_of_triple_product():
    rng = np.random.default_rng(12)
    q, chi, delta = rng.normal(size=(3, 6))

    def f(z):
        q, chi, delta = z[:6], z[6:12], z[12:]
        return np.dot(q, chi * delta)

    g = duals.grad(f, np.concatenate([q, chi, delta]))
    np.testing.assert_allclose(g, np.concatenate([chi * delta, q * delta, q * chi]), rtol=1e-15)
    # the same with the three vectors as rows of a 2-d input
    g2 = duals.grad(lambda z: np.sum(z[0] * z[1] * z[2]), np.stack([q, chi, delta]))
    np.testing.assert_allclose(g2, np.stack([chi * delta, q * delta, q * chi]), rtol=1e-15)


def test_exact_derivative_on_a_grid_vs_np_gradient():
    x = np.linspace(0.0, 2 * np.pi, 101)

    def f(x):
        return np.sin(x) * np.exp(-x / 3)

    exact = np.exp(-x / 3) * (np.cos(x) - np.sin(x) / 3)
    d = duals.derivative(f, x)
    np.testing.assert_allclose(d, exact, rtol=1e-14, atol=1e-15)
    fd = np.gradient(f(x), x)  # 2nd-order differences inside, 1st-order at the ends: close only
    assert np.max(np.abs(fd - exact)) < 5e-2
    assert np.max(np.abs(fd - exact)) > 1e-6
    assert np.max(np.abs(d - exact)) < 1e-14


def test_linear_model_mse_gradient():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(20, 3))
    Y = rng.normal(size=(20, 2))
    W = rng.normal(size=(3, 2))
    b = rng.normal(size=2)

    def loss(params):
        W = params[:6].reshape(3, 2)
        b = params[6:]
        return np.mean((X @ W + b - Y) ** 2)

    g = duals.grad(loss, np.concatenate([W.ravel(), b]))
    R = X @ W + b - Y
    dW = 2 * X.T @ R / R.size
    db = 2 * R.sum(axis=0) / R.size
    np.testing.assert_allclose(g, np.concatenate([dW.ravel(), db]), rtol=1e-13, atol=1e-15)
    H = duals.hessian(loss, np.concatenate([W.ravel(), b]))
    np.testing.assert_allclose(H[6:, 6:], 2 * np.eye(2) * 20 / R.size, rtol=1e-14)


def rober_fill(y, k1, k2, k3):
    dy = np.zeros_like(y)
    dy[0] = -k1 * y[0] + k3 * y[1] * y[2]
    dy[1] = k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2
    dy[2] = k2 * y[1] ** 2
    return dy


def rober_array(y, k1, k2, k3):
    return np.array(
        [
            -k1 * y[0] + k3 * y[1] * y[2],
            k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
            k2 * y[1] ** 2,
        ]
    )


def rober_list(y, k1, k2, k3):
    return [
        -k1 * y[0] + k3 * y[1] * y[2],
        k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
        k2 * y[1] ** 2,
    ]


def rober_exact(y, k1, k2, k3):
    return np.array(
        [
            [-k1, k3 * y[2], k3 * y[1]],
            [k1, -k3 * y[2] - 2 * k2 * y[1], -k3 * y[1]],
            [0.0, 2 * k2 * y[1], 0.0],
        ]
    )


@pytest.mark.parametrize("rhs", [rober_fill, rober_array, rober_list], ids=lambda f: f.__name__)
@pytest.mark.parametrize("y", [[1.0, 0.0, 0.0], [0.8, 3.0e-5, 0.2]], ids=["y0", "mid"])
def test_robertson_jacobian(rhs, y):
    y = np.array(y)
    J = duals.jacobian(rhs, y, args=K)
    assert J.shape == (3, 3)
    np.testing.assert_allclose(J, rober_exact(y, *K), rtol=1e-15, atol=0)
    v, J2 = duals.value_and_jacobian(rhs, y, args=K)
    np.testing.assert_allclose(v, rober_array(y, *K), rtol=1e-15)
    np.testing.assert_array_equal(J2, J)


def brusselator(y, n):
    """A 1-D Brusselator, vectorized: slices, np.roll and np.concatenate."""
    u, v = y[:n], y[n:]
    lap_u = np.roll(u, 1) - 2 * u + np.roll(u, -1)
    lap_v = np.roll(v, 1) - 2 * v + np.roll(v, -1)
    du = 1.0 + u * u * v - 4.0 * u + 0.02 * lap_u
    dv = 3.0 * u - u * u * v + 0.02 * lap_v
    return np.concatenate([du, dv])


def test_vectorized_rhs_jacobian():
    n = 8
    y = np.random.default_rng(14).uniform(0.5, 1.5, 2 * n)
    J = duals.jacobian(brusselator, y, args=(n,))
    np.testing.assert_allclose(
        J, cs_jacobian(lambda z: brusselator(z, n), y), rtol=1e-14, atol=1e-15
    )
    for chunk in (1, 5, 16, 17):
        np.testing.assert_allclose(
            duals.jacobian(brusselator, y, args=(n,), chunk=chunk), J, rtol=0, atol=0
        )


def test_issue_example():
    J = duals.jacobian(rober_array, np.array([1.0, 0.0, 0.0]), args=(0.04, 3e7, 1e4))
    np.testing.assert_array_equal(J, [[-0.04, 0.0, 0.0], [0.04, 0.0, -0.0], [0.0, 0.0, 0.0]])


# ------------------------------------------------------------------------------------------------
# The package surface
# ------------------------------------------------------------------------------------------------


def test_public_names():
    expected = {
        "Dual",
        "DualArray",
        "derivative",
        "second_derivative",
        "grad",
        "jacobian",
        "jvp",
        "hessian",
        "hvp",
        "value_and_grad",
        "value_and_jacobian",
        "__version__",
        "compile",
        "Compiled",
        "scipy",
    }
    assert set(duals.__all__) == expected
    for name in expected:
        assert hasattr(duals, name)
    assert isinstance(duals.__version__, str)
    for name in expected - {"__version__", "Dual", "DualArray", "scipy"}:
        doc = getattr(duals, name).__doc__
        assert "Examples" in doc and ">>>" in doc, name


def test_native_stub_matches_the_compiled_module():
    """_native.pyi (shipped with the package) lists the compiled functions with their
    parameters."""
    from duals import _native

    path = os.path.join(os.path.dirname(duals.__file__), "_native.pyi")
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    stub = {
        node.name: [a.arg for a in node.args.args]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    names = {"__version__"} | {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    native = {n for n in dir(_native) if not n.startswith("_") or n == "__version__"}
    assert native == set(stub) | names | set(classes)
    for name, params in stub.items():
        sig = inspect.signature(getattr(_native, name))
        assert list(sig.parameters) == params, name
    for name, node in classes.items():
        cls = getattr(_native, name)
        for member in node.body:
            if isinstance(member, ast.FunctionDef):
                assert hasattr(cls, member.name), f"{name}.{member.name}"
            elif isinstance(member, ast.AnnAssign):
                assert hasattr(cls, member.target.id), f"{name}.{member.target.id}"
        public = {n for n in vars(cls) if not n.startswith("_")}
        listed = {m.name for m in node.body if isinstance(m, ast.FunctionDef)}
        assert public <= listed, f"{name}: not in the stub: {sorted(public - listed)}"
    assert os.path.exists(os.path.join(os.path.dirname(duals.__file__), "py.typed"))


def test_division_by_a_constant_is_exact_and_respects_errstate():
    x = np.array([0.1, 0.7, 3.0, 1e-300])
    val, jv = duals.jvp(lambda z: z / 3.0, x, np.ones(4))
    np.testing.assert_array_equal(val, x / 3.0)  # not x * (1/3)
    np.testing.assert_array_equal(jv, np.ones(4) / 3.0)
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        duals.jacobian(lambda z: 1.0 / (z - z), x)


def test_error_state_inside_f_and_restored_after():
    # The drivers run f with NumPy's warnings off ("warn" -> "ignore", "raise" kept) and put
    # the caller's state back afterwards, also when f raises.
    seen = []

    def f(z):
        seen.append(np.geterr())
        return z * 2.0

    before = np.geterr()
    duals.jacobian(f, np.ones(3))
    assert seen[-1]["divide"] == "ignore" and seen[-1]["invalid"] == "ignore"
    assert np.geterr() == before

    def fails(z):
        raise KeyError("from f")

    with pytest.raises(KeyError, match="from f"):
        duals.jacobian(fails, np.ones(3))
    assert np.geterr() == before
    with np.errstate(divide="raise"):
        duals.jacobian(f, np.ones(3))
        assert seen[-1]["divide"] == "raise" and seen[-1]["invalid"] == "ignore"
        assert np.geterr()["divide"] == "raise"
    assert np.geterr() == before


def test_error_state_follows_each_call_and_thread():
    # The quiet state is kept per error state and thread: alternating states, and another
    # thread's own state, are each seen by f.
    def f(z):
        seen.append(np.geterr()["over"])
        return z * 2.0

    seen = []
    for over in ["raise", "warn", "raise", "ignore", "warn"]:
        with np.errstate(over=over):
            duals.jacobian(f, np.ones(2))
    assert seen == ["raise", "ignore", "raise", "ignore", "ignore"]

    def other():
        with np.errstate(over="raise"):
            duals.jacobian(f, np.ones(2))

    seen.clear()
    duals.jacobian(f, np.ones(2))
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    duals.jacobian(f, np.ones(2))
    assert seen == ["ignore", "raise", "ignore"]


def test_inplace_operators_write_through_views():
    def f(y):
        dy = np.zeros_like(y)
        v = dy[1:]
        v += y[:-1] ** 2  # writes into dy, as NumPy does
        dy *= 2.0
        dy[0] -= y[0]
        w = dy[:]
        w /= 4.0
        return dy

    y = np.array([1.0, 2.0, 3.0])
    J = duals.jacobian(f, y)
    expected = np.array([[-0.25, 0, 0], [1.0, 0, 0], [0, 2.0, 0]])
    np.testing.assert_allclose(J, expected, rtol=1e-15)
    c = duals.compile(f, y)
    np.testing.assert_allclose(c.jacobian(y), expected, rtol=1e-15)
    np.testing.assert_allclose(c.value(y), f(y), rtol=1e-15)
    with pytest.raises(ValueError):
        x = duals.DualArray([1.0, 2.0], [1.0, 0.0])
        x += np.ones((3, 2))  # the result does not fit x


# ------------------------------------------------------------------------------------------------
# Wide tangent blocks: NumPy's allocator is the native block cache during the evaluations
# ------------------------------------------------------------------------------------------------


_MULTIARRAY = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray


def test_wide_chunks_use_the_block_cache_and_restore_numpys_allocator():
    from duals import _native

    before = _MULTIARRAY.get_handler_name()
    seen = []

    def f(y):
        seen.append(_MULTIARRAY.get_handler_name())
        z = np.zeros(50_000)  # a cached block (after the first call), zeroed
        assert not z.any()
        z += 1.0
        return y[:-1] * y[1:] + z[: y.size - 1].sum()

    y = np.linspace(0.5, 1.5, 300)
    J = duals.jacobian(f, y, chunk=150)  # 150 * 300 tangent elements: the cache is on
    # (banded tangents: the first evaluation gives every direction)
    assert seen == ["duals_block_cache"]
    assert _MULTIARRAY.get_handler_name() == before
    seen.clear()
    previous = _native._banded(False)
    try:
        J_dense = duals.jacobian(f, y, chunk=150)  # dense tangents: two evaluations
    finally:
        _native._banded(previous)
    assert seen == ["duals_block_cache"] * 2
    assert _MULTIARRAY.get_handler_name() == before
    np.testing.assert_array_equal(J, J_dense)
    np.testing.assert_array_equal(J, duals.jacobian(f, y, chunk=7))
    # small blocks: NumPy's allocator as it was
    seen.clear()
    duals.jacobian(f, y[:20])
    assert seen == [before]

    def fails(y):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        duals.jacobian(fails, y, chunk=150)
    assert _MULTIARRAY.get_handler_name() == before
    # nested scopes restore in order
    outer = _native._alloc_enter()
    inner = _native._alloc_enter()
    _native._alloc_exit(inner)
    assert _MULTIARRAY.get_handler_name() == "duals_block_cache"
    _native._alloc_exit(outer)
    assert _MULTIARRAY.get_handler_name() == before


def test_block_cache_allocations_hold_their_data():
    from duals import _native

    previous = _native._alloc_enter()
    try:
        blocks = [np.full(20_000 + 1000 * (i % 3), float(i)) for i in range(40)]
        del blocks[::2]  # freed: kept for reuse
        again = [np.full(20_000 + 1000 * (i % 3), -float(i)) for i in range(20)]
        zeros = [np.zeros(20_000 + 1000 * (i % 3)) for i in range(20)]
        for i, b in zip(range(1, 40, 2), blocks, strict=True):
            assert (b == float(i)).all()
        for i, b in enumerate(again):
            assert (b == -float(i)).all()
        for z in zeros:
            assert not z.any()
        r = np.arange(30_000, dtype=float)
        r.resize(90_000, refcheck=False)  # realloc of a cached-size block
        assert (r[:30_000] == np.arange(30_000)).all() and not r[30_000:].any()
        r.resize(10, refcheck=False)
        assert (r == np.arange(10)).all()
    finally:
        _native._alloc_exit(previous)
    del blocks, again, zeros, r  # freed after the scope, by the allocator that made them
