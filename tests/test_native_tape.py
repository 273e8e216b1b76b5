"""duals._native tapes: TapeBuilder, Tape and CompiledCore against hand-written derivatives.

Tapes are built directly with the builder (no tracer), so these tests check the bindings: that
every call reaches the engine's drivers, shapes, errors, guards and the guard cache, batches,
pickling and threads.
"""

import concurrent.futures
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duals import _native
from duals._native import CompiledCore, Tape, TapeBuilder

K1, K2, K3 = 0.04, 3e7, 1e4


def close(actual, expected, rtol=1e-14):
    expected = np.asarray(expected, dtype=float)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# ------------------------------------------------------------------------------------------------
# Tapes of the tests
# ------------------------------------------------------------------------------------------------


def robertson_tape(y=(1.0, 2e-5, 0.1)):
    """The Robertson ODE right-hand side, R^3 -> R^3."""
    b = TapeBuilder()
    y0, y1, y2 = (b.input(v) for v in y)
    k1, k2, k3 = b.constant(K1), b.constant(K2), b.constant(K3)
    t1 = b.binary("mul", k1, y0)
    t2 = b.binary("mul", k3, b.binary("mul", y1, y2))
    t3 = b.binary("mul", k2, b.binary("mul", y1, y1))
    b.output(b.binary("add", b.neg(t1), t2))
    b.output(b.binary("sub", b.binary("sub", t1, t2), t3))
    b.output(t3)
    return b.finish()


def robertson(y):
    y0, y1, y2 = y
    return np.array([-K1 * y0 + K3 * y1 * y2, K1 * y0 - K3 * y1 * y2 - K2 * y1**2, K2 * y1**2])


def robertson_jac(y):
    _, y1, y2 = y
    return np.array(
        [
            [-K1, K3 * y2, K3 * y1],
            [K1, -K3 * y2 - 2 * K2 * y1, -K3 * y1],
            [0.0, 2 * K2 * y1, 0.0],
        ]
    )


def rosenbrock_tape(n=3):
    """sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2, R^n -> R."""
    b = TapeBuilder()
    x = [b.input(0.5) for _ in range(n)]
    hundred, one = b.constant(100.0), b.constant(1.0)
    total = b.constant(0.0)
    for i in range(n - 1):
        d = b.binary("sub", x[i + 1], b.binary("mul", x[i], x[i]))
        e = b.binary("sub", one, x[i])
        term = b.binary(
            "add", b.binary("mul", hundred, b.binary("mul", d, d)), b.binary("mul", e, e)
        )
        total = b.binary("add", total, term)
    b.output(total)
    return b.finish()


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def rosenbrock_grad(x):
    n = len(x)
    g = np.zeros(n)
    for i in range(n - 1):
        d = x[i + 1] - x[i] ** 2
        g[i] += -400 * x[i] * d - 2 * (1 - x[i])
        g[i + 1] += 200 * d
    return g


def rosenbrock_hess(x):
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i, i + 1] += -400 * x[i]
        h[i + 1, i] += -400 * x[i]
        h[i + 1, i + 1] += 200
    return h


def branchy_tape(x):
    """Traced at x (shape (2,)): [x0^2, x0 x1] if x0 > 0 else [-x0, x1^2]; one guard."""
    b = TapeBuilder()
    x0, x1 = b.input(float(x[0])), b.input(float(x[1]))
    if b.guard(">", x0, b.constant(0.0)):
        outs = [b.binary("mul", x0, x0), b.binary("mul", x0, x1)]
    else:
        outs = [b.neg(x0), b.binary("mul", x1, x1)]
    for o in outs:
        b.output(o)
    return b.finish()


def branchy(x):
    return np.array([x[0] ** 2, x[0] * x[1]]) if x[0] > 0 else np.array([-x[0], x[1] ** 2])


def branchy_jac(x):
    if x[0] > 0:
        return np.array([[2 * x[0], 0.0], [x[1], x[0]]])
    return np.array([[-1.0, 0.0], [0.0, 2 * x[1]]])


def staircase_tape(x, steps=3):
    """Traced at a scalar x: x * (1 + number of t in 0..steps-1 with x > t); one branch per
    step (steps + 1 tapes in all)."""
    b = TapeBuilder()
    v = b.input(float(x))
    y = v
    for t in range(steps):
        if not b.guard(">", v, b.constant(float(t))):
            break
        y = b.binary("add", y, v)
    b.output(y)
    return b.finish()


def staircase_slope(x, steps=3):
    return 1.0 + sum(1 for t in range(steps) if x > t)


class Counting:
    """A retrace function that counts its calls."""

    def __init__(self, trace):
        self.trace = trace
        self.calls = []

    def __call__(self, x):
        assert isinstance(x, np.ndarray) and x.dtype == np.float64
        self.calls.append(x.copy())
        return self.trace(x)


POINTS = [(1.0, 2e-5, 0.1), (0.3, 1e-3, 0.7), (-2.0, 5.0, 1e-8)]


# ------------------------------------------------------------------------------------------------
# Tape: values and derivatives
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("y", POINTS)
@pytest.mark.parametrize("chunk", [None, 1, 2, 4, 8, 16])
def test_robertson_jacobian(y, chunk):
    t = robertson_tape()
    close(t.value(np.array(y)), robertson(y))
    j = t.jacobian(np.array(y), chunk=chunk)
    assert j.shape == (3, 3) and j.dtype == np.float64
    close(j, robertson_jac(y))


@pytest.mark.parametrize("y", POINTS)
def test_robertson_jvp_is_jacobian_times_v(y):
    t = robertson_tape()
    v = np.array([0.3, -1.0, 2.0])
    value, jv = t.jvp(y, v)
    close(value, robertson(y))
    close(jv, robertson_jac(y) @ v)
    # J e_j is column j
    for j, e in enumerate(np.eye(3)):
        close(t.jvp(y, e)[1], robertson_jac(y)[:, j])


@pytest.mark.parametrize("x", [(0.5, 0.5, 0.5), (1.0, 1.0, 1.0), (-1.2, 1.0, 3.0)])
def test_rosenbrock_gradient_hessian_hvp(x):
    t = rosenbrock_tape()
    x = np.array(x)
    close(t.value(x), [rosenbrock(x)])
    close(t.gradient(x), rosenbrock_grad(x))
    h = t.hessian(x)
    assert h.shape == (3, 3)
    close(h, rosenbrock_hess(x))
    np.testing.assert_array_equal(h, h.T)
    v = np.array([1.0, -2.0, 0.5])
    close(t.hvp(x, v), rosenbrock_hess(x) @ v)
    close(t.jacobian(x), rosenbrock_grad(x)[None, :])


def test_getters_and_repr():
    t = robertson_tape()
    assert (t.n_inputs, t.n_outputs, t.n_guards) == (3, 3, 0)
    assert t.n_ops > 0
    assert repr(t) == f"Tape(n_inputs=3, n_outputs=3, n_ops={t.n_ops}, n_guards=0)"
    b = TapeBuilder()
    x = b.input(1.0)
    b.constant(2.0)
    b.output(b.unary("sin", x))
    assert (b.n_inputs, b.n_values, b.n_ops, b.n_outputs) == (1, 3, 1, 1)
    assert "TapeBuilder" in repr(b)


@pytest.mark.parametrize(
    "arg",
    [
        [1.0, 2e-5, 0.1],
        (1, 0, 0),
        np.array([1.0, 2e-5, 0.1], dtype=np.float32),
        np.array([[1.0, 9.0], [2e-5, 9.0], [0.1, 9.0]])[:, 0],  # non-contiguous
        np.array([1.0, 2e-5, 0.1]).view(np.dtype(">f8")).byteswap().view(np.dtype(">f8")),
    ],
)
def test_points_are_array_likes(arg):
    t = robertson_tape()
    y = np.asarray(arg, dtype=np.float64)
    close(t.jacobian(arg), robertson_jac(y))
    close(t.value(arg), robertson(y))


# ------------------------------------------------------------------------------------------------
# The builder: rule names, select, compare, vectorized forms
# ------------------------------------------------------------------------------------------------

UNARY_TABLE = [
    # name, param, f, f'
    ("sin", 0.0, np.sin, np.cos),
    ("exp", 0.0, np.exp, np.exp),
    ("ln", 0.0, np.log, lambda x: 1 / x),
    ("ln_1p", 0.0, np.log1p, lambda x: 1 / (1 + x)),
    ("sqrt", 0.0, np.sqrt, lambda x: 0.5 / np.sqrt(x)),
    ("recip", 0.0, lambda x: 1 / x, lambda x: -1 / x**2),
    ("powi", 3.0, lambda x: x**3, lambda x: 3 * x**2),
    ("powf", 2.5, lambda x: x**2.5, lambda x: 2.5 * x**1.5),
    ("tanh", 0.0, np.tanh, lambda x: 1 / np.cosh(x) ** 2),
    ("atan", 0.0, np.arctan, lambda x: 1 / (1 + x**2)),
]


@pytest.mark.parametrize(("name", "param", "f", "df"), UNARY_TABLE)
def test_unary_rules(name, param, f, df):
    b = TapeBuilder()
    x = b.input(0.7)
    y = b.unary(name, x, param)
    assert b.value(y) == pytest.approx(f(0.7), rel=1e-15)
    b.output(y)
    t = b.finish()
    xs = np.array([0.3, 0.7, 1.9])
    close(t.derivative_batch(xs), df(xs), rtol=1e-13)
    close(t.value_batch(xs[:, None])[:, 0], f(xs), rtol=1e-13)


def test_every_unary_rule_name_records():
    for name in _native.UNARY_RULES:
        b = TapeBuilder()
        x = 1.4 if name == "acosh" else 0.4
        y = b.unary(name, b.input(x), 2.0)
        assert np.isfinite(b.value(y)), name


A, B = 1.3, 0.7
BINARY_TABLE = [
    # name, f(A, B), df/da, df/db
    ("add", A + B, 1.0, 1.0),
    ("sub", A - B, 1.0, -1.0),
    ("mul", A * B, B, A),
    ("div", A / B, 1 / B, -A / B**2),
    ("min", B, 0.0, 1.0),
    ("max", A, 1.0, 0.0),
    ("pow", A**B, B * A ** (B - 1), A**B * np.log(A)),
    ("atan2", np.arctan2(A, B), B / (A**2 + B**2), -A / (A**2 + B**2)),
    ("hypot", np.hypot(A, B), A / np.hypot(A, B), B / np.hypot(A, B)),
    ("rem", np.fmod(A, B), 1.0, -np.trunc(A / B)),
]


@pytest.mark.parametrize(("name", "f", "da", "db"), BINARY_TABLE)
def test_binary_names(name, f, da, db):
    b = TapeBuilder()
    y = b.binary(name, b.input(A), b.input(B))
    b.output(y)
    t = b.finish()
    assert b.value(y) == pytest.approx(f, rel=1e-15)
    close(t.gradient([A, B]), [da, db])


@pytest.mark.parametrize(
    ("op", "holds"),
    [("<", False), ("<=", False), (">", True), (">=", True), ("==", False), ("!=", True)]
    + [("lt", False), ("gt", True), ("eq", False), ("ne", True)],
)
def test_select_and_compare(op, holds):
    b = TapeBuilder()
    x, y = b.input(2.0), b.input(1.0)
    assert b.compare(op, x, y) is holds
    s = b.select(op, x, y, b.binary("mul", x, y), b.neg(y))
    b.output(s)
    t = b.finish()
    assert t.n_guards == 0  # a select is evaluated at every point, no guard
    expected_j = [[1.0, 2.0]] if holds else [[0.0, -1.0]]
    close(t.jacobian([2.0, 1.0]), expected_j)


def test_select_follows_the_point():
    b = TapeBuilder()
    x = b.input(1.0)
    zero = b.constant(0.0)
    b.output(b.select(">", x, zero, b.binary("mul", x, x), b.neg(x)))  # x^2 if x > 0 else -x
    t = b.finish()
    xs = np.array([-2.0, -0.5, 0.5, 3.0])
    close(t.derivative_batch(xs), np.where(xs > 0, 2 * xs, -1.0))


def test_unary_many_and_binary_many_equal_loops():
    b = TapeBuilder()
    xs = np.array([b.input(v) for v in (0.1, 0.2, 0.3, 0.4)], dtype=np.int64)
    sins = b.unary_many("sin", xs)
    assert sins.dtype == np.int64 and sins.shape == (4,)
    assert [b.value(int(h)) for h in sins] == [np.sin(v) for v in (0.1, 0.2, 0.3, 0.4)]
    powers = b.unary_many("powi", xs, 2.0)
    assert [b.value(int(h)) for h in powers] == [v**2 for v in (0.1, 0.2, 0.3, 0.4)]
    prods = b.binary_many("mul", xs, sins)
    assert [b.value(int(h)) for h in prods] == [
        b.value(int(x)) * b.value(int(s)) for x, s in zip(xs, sins, strict=True)
    ]
    c = b.constant(2.0)
    for left in (np.array([c]), xs):  # broadcast either side
        right = xs if len(left) == 1 else np.array([c])
        out = b.binary_many("atan2", left, right)
        assert out.shape == (4,)
    assert b.binary_many(
        "add", np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    ).shape == (0,)
    assert b.binary_many("add", [int(xs[0])], [int(xs[1])]).shape == (1,)  # lists of ints work


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


def _builder():
    b = TapeBuilder()
    x = b.input(1.0)
    return b, x


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda b, x: b.unary("sine", x), r'no derivative rule named "sine".*ln_1p.*\bsin\b'),
        (lambda b, x: b.binary("plus", x, x), r'no derivative rule named "plus".*add.*atan2'),
        (lambda b, x: b.select("<>", x, x, x, x), r"no comparison named \"<>\".*<="),
        (lambda b, x: b.guard("less", x, x), "no comparison named"),
        (lambda b, x: b.unary("sin", 7), r"value 7 does not exist: this builder has 1 values"),
        (lambda b, x: b.binary("add", x, 1), "value 1 does not exist"),
        (lambda b, x: b.neg(-1), "value -1 does not exist"),
        (lambda b, x: b.output(2**70), "does not exist"),
        (lambda b, x: b.value(5), "value 5 does not exist"),
        (lambda b, x: b.compare("<", x, 3), "value 3 does not exist"),
        (lambda b, x: b.unary_many("sin", np.array([0, 4])), "value 4 does not exist"),
        (lambda b, x: b.unary_many("sin", np.array([-3])), "value -3 does not exist"),
        (lambda b, x: b.unary_many("cosine", np.array([0])), "no derivative rule named"),
        (
            lambda b, x: b.binary_many("add", np.array([0, 0]), np.array([0, 0, 0])),
            "lengths 2 and 3; pass equal lengths or one of length 1",
        ),
    ],
)
def test_builder_errors(call, match):
    b, x = _builder()
    n = b.n_values
    with pytest.raises(ValueError, match=match):
        call(b, x)
    assert b.n_values == n  # nothing recorded by a failed call


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda t: t.value([1.0, 2.0]), "expects 3 inputs, got 2"),
        (lambda t: t.jacobian(np.zeros(4)), "expects 3 inputs, got 4"),
        (lambda t: t.jacobian(np.zeros((3, 1))), r"x must be a 1-d array, got shape \(3, 1\)"),
        (
            lambda t: t.jvp(np.zeros(3), np.zeros(2)),
            "`v` has length 2 but this call needs length 3",
        ),
        (lambda t: t.guards_hold(np.zeros(2)), "expects 3 inputs, got 2"),
        (lambda t: t.value_checked(np.zeros(5)), "expects 3 inputs, got 5"),
        (
            lambda t: t.jacobian(np.zeros(3), chunk=3),
            r"chunk must be one of \[1, 2, 4, 8, 16\].*got 3",
        ),
        (lambda t: t.jacobian(np.zeros(3), chunk=0), "chunk must be one of"),
        (lambda t: t.jacobian(np.zeros(3), chunk=-8), "got -8"),
        (lambda t: t.gradient(np.zeros(3)), "needs a function with one output, this tape has 3"),
        (lambda t: t.hessian(np.zeros(3)), "one output"),
        (lambda t: t.hvp(np.zeros(3), np.zeros(3)), "one output"),
        (lambda t: t.derivative_batch(np.zeros(4)), "1 input, 1 output"),
        (lambda t: t.second_derivative_batch(1.0), "1 input, 1 output"),
        (
            lambda t: t.value_batch(np.zeros((4, 2))),
            r"rows of a \(B, 3\) array, got shape \(4, 2\)",
        ),
        (lambda t: t.jacobian_batch(np.zeros(3)), r"got shape \(3,\)"),
        (lambda t: t.guards_batch(np.zeros((2, 3, 1))), "rows of a"),
        (lambda t: Tape.from_bytes(b"not a tape"), "not a valid tape"),
        (lambda t: Tape.from_bytes(t.to_bytes()[:-3]), "not a valid tape"),
    ],
)
def test_tape_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(robertson_tape())


def test_altered_bytes_are_rejected():
    data = bytearray(robertson_tape().to_bytes())
    for i in range(0, len(data), 7):
        altered = bytearray(data)
        altered[i] ^= 0x10
        with pytest.raises(ValueError, match="tape"):
            Tape.from_bytes(bytes(altered))


def test_non_numbers_are_type_errors():
    t = robertson_tape()
    with pytest.raises(TypeError, match="got None"):
        t.value(None)
    with pytest.raises(TypeError):
        TapeBuilder().neg(1.5)


# ------------------------------------------------------------------------------------------------
# Guards and the guard cache
# ------------------------------------------------------------------------------------------------


def test_guards_hold():
    t = branchy_tape([1.0, 2.0])
    assert t.n_guards == 1
    assert t.guards_hold([3.0, -1.0]) is True
    assert t.guards_hold(np.array([-3.0, 1.0])) is False
    close(t.value_checked([3.0, 2.0]), branchy([3.0, 2.0]))
    assert t.value_checked([-3.0, 2.0]) is None
    np.testing.assert_array_equal(
        t.guards_batch(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [np.nan, 0.0]])),
        [True, False, False, False],
    )


def test_core_retraces_on_a_miss_and_caches():
    retrace = Counting(branchy_tape)
    c = CompiledCore(retrace, (2,), (2,))
    assert c.tapes == [] and c.n_ops is None and c.max_tapes == 32
    assert (c.in_shape, c.out_shape) == ((2,), (2,))
    for x in ([1.0, 2.0], [3.0, -1.0], [-1.0, 2.0], [-5.0, 0.5], [2.0, 2.0]):
        close(c.jacobian(np.array(x)), branchy_jac(x))
        close(c.value(x), branchy(x))
    assert len(retrace.calls) == 2  # one per branch
    np.testing.assert_array_equal(retrace.calls[0], [1.0, 2.0])
    np.testing.assert_array_equal(retrace.calls[1], [-1.0, 2.0])
    assert len(c.tapes) == 2
    assert c.tapes[0].guards_hold([2.0, 2.0])  # most recently used first
    c.value([-1.0, 0.0])
    assert c.tapes[0].guards_hold([-1.0, 0.0])
    assert c.n_ops == c.tapes[0].n_ops


def test_add_tape_then_no_retrace():
    retrace = Counting(branchy_tape)
    c = CompiledCore(retrace, (2,), (2,))
    c.add_tape(branchy_tape([1.0, 1.0]))
    c.add_tape(branchy_tape([-1.0, 1.0]))
    for x in ([4.0, 1.0], [-4.0, 1.0]):
        close(c.jacobian(x), branchy_jac(x))
    assert retrace.calls == []


def test_cache_overflow_message():
    retrace = Counting(staircase_tape)
    c = CompiledCore(retrace, (), (), max_tapes=2)
    assert c.derivative(-1.0) == 1.0
    assert c.derivative(0.5) == 2.0
    assert c.derivative(-3.0) == 1.0  # cached
    with pytest.raises(RuntimeError, match=r"max_tapes=2.*more than 2 ways.*np\.where"):
        c.jacobian(1.5)
    assert len(c.tapes) == 2
    with pytest.raises(RuntimeError, match="max_tapes=2"):
        c.add_tape(staircase_tape(2.5))
    with pytest.raises(RuntimeError, match="full"):
        c.value_batch(np.array([0.5, 1.5]))


def test_retrace_errors_propagate_unchanged():
    class Boom(Exception):
        pass

    def retrace(x):
        raise Boom(x.shape)

    c = CompiledCore(retrace, (3,), (3,))
    with pytest.raises(Boom) as info:
        c.jacobian([1.0, 2.0, 3.0])
    assert info.value.args == ((3,),)

    c = CompiledCore(lambda x: "no tape", (3,), (3,))
    with pytest.raises(
        TypeError, match="retrace must return a duals._native.Tape, got <class 'str'>"
    ):
        c.value([1.0, 2.0, 3.0])

    c = CompiledCore(lambda x: rosenbrock_tape(), (3,), (3,))
    with pytest.raises(ValueError, match=r"3 inputs and 1 outputs cannot serve.*shape \(3,\)"):
        c.value([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="cannot serve"):
        c.add_tape(rosenbrock_tape(4))

    with pytest.raises(TypeError, match="callable"):
        CompiledCore(3, (3,), (3,))
    with pytest.raises(ValueError, match="max_tapes"):
        CompiledCore(robertson_tape, (3,), (3,), max_tapes=0)


# ------------------------------------------------------------------------------------------------
# CompiledCore: shapes
# ------------------------------------------------------------------------------------------------


def test_core_robertson_all_methods():
    t = robertson_tape()
    c = CompiledCore(lambda x: t, (3,), (3,))
    y = np.array([1.0, 2e-5, 0.1])
    close(c.value(y), robertson(y))
    close(c.jacobian(y), robertson_jac(y))
    v = np.array([1.0, 2.0, 3.0])
    value, jv = c.jvp(y, v)
    close(value, robertson(y))
    close(jv, robertson_jac(y) @ v)
    for call in (c.gradient, c.hessian):
        with pytest.raises(ValueError, match=r"needs a scalar-valued function.*shape \(3,\)"):
            call(y)
    with pytest.raises(ValueError, match="scalar-valued"):
        c.hvp(y, v)
    with pytest.raises(ValueError, match=r"expected a point of shape \(3,\), got \(4,\)"):
        c.jacobian(np.zeros(4))
    with pytest.raises(ValueError, match=r"expected a tangent v of shape \(3,\), got \(\)"):
        c.jvp(y, 1.0)
    with pytest.raises(ValueError, match=r"needs a function compiled at a scalar"):
        c.derivative(1.0)


def test_core_scalar_function_of_a_matrix():
    # f(X) = rosenbrock(X.ravel()) for X of shape (2, 2): in_shape (2, 2), out_shape ()
    tape = rosenbrock_tape(4)
    c = CompiledCore(lambda x: tape, (2, 2), ())
    x = np.array([[0.5, -1.0], [2.0, 0.3]])
    flat = x.ravel()
    value = c.value(x)
    assert type(value) is float
    close(value, rosenbrock(flat))
    assert c.jacobian(x).shape == (2, 2)
    close(c.gradient(x), rosenbrock_grad(flat).reshape(2, 2))
    close(c.hessian(x), rosenbrock_hess(flat).reshape(2, 2, 2, 2))
    v = np.array([[1.0, 0.0], [-1.0, 2.0]])
    close(c.hvp(x, v), (rosenbrock_hess(flat) @ v.ravel()).reshape(2, 2))
    value, jv = c.jvp(x, v)
    assert type(value) is float and type(jv) is float
    close(jv, rosenbrock_grad(flat) @ v.ravel())
    # Fortran-ordered and transposed inputs are read in C (logical) order
    close(c.gradient(np.asfortranarray(x)), rosenbrock_grad(flat).reshape(2, 2))
    close(c.gradient(x.T.copy().T), rosenbrock_grad(flat).reshape(2, 2))
    close(c.value(x.tolist()), rosenbrock(flat))


def test_core_scalar_to_scalar_returns_floats():
    c = CompiledCore(staircase_tape, (), ())
    for x in (-1.0, 0.5, 1.5, 7.0, np.float64(0.5), np.array(0.5), 2):
        assert type(c.value(x)) is float
        assert c.jacobian(x) == staircase_slope(float(x))
        assert c.gradient(x) == staircase_slope(float(x))
        assert c.hessian(x) == 0.0
        assert c.hvp(x, 2.0) == 0.0
        assert c.jvp(x, 2.0) == (c.value(x), 2.0 * staircase_slope(float(x)))
        assert c.derivative(x) == staircase_slope(float(x))
        assert c.second_derivative(x) == 0.0
    assert len(c.tapes) == 4


# ------------------------------------------------------------------------------------------------
# Batches
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("B", [0, 1, 37])
def test_tape_batches_equal_loops(B):
    rng = np.random.default_rng(B)
    t = robertson_tape()
    X = rng.uniform(-1, 1, size=(B, 3))
    V = t.value_batch(X)
    J = t.jacobian_batch(X)
    G = t.guards_batch(X)
    assert V.shape == (B, 3) and J.shape == (B, 3, 3) and G.shape == (B,) and G.dtype == bool
    for i in range(B):
        np.testing.assert_array_equal(V[i], t.value(X[i]))
        np.testing.assert_array_equal(J[i], t.jacobian(X[i]))
    assert G.all()

    g = branchy_tape([1.0, 1.0])
    Y = rng.uniform(-1, 1, size=(B, 2))
    np.testing.assert_array_equal(g.guards_batch(Y), [g.guards_hold(y) for y in Y])


@pytest.mark.parametrize("B", [0, 1, 37])
def test_core_batches_equal_loops(B):
    rng = np.random.default_rng(100 + B)
    retrace = Counting(branchy_tape)
    c = CompiledCore(retrace, (2,), (2,))
    X = rng.uniform(-1, 1, size=(B, 2))
    V = c.value_batch(X)
    J = c.jacobian_batch(X)
    assert V.shape == (B, 2) and J.shape == (B, 2, 2)
    for i in range(B):
        close(V[i], branchy(X[i]))
        close(J[i], branchy_jac(X[i]))
        np.testing.assert_array_equal(V[i], c.value(X[i]))
        np.testing.assert_array_equal(J[i], c.jacobian(X[i]))
    assert len(retrace.calls) == len({x[0] > 0 for x in X})  # one trace per branch met

    s = CompiledCore(staircase_tape, (), ())
    xs = rng.uniform(-1, 4, size=B)
    np.testing.assert_array_equal(s.derivative(xs), [staircase_slope(x) for x in xs])
    np.testing.assert_array_equal(s.value_batch(xs), xs * [staircase_slope(x) for x in xs])
    assert s.jacobian_batch(xs).shape == (B,)
    with pytest.raises(ValueError, match=r"shape \(B, 2\), got \(3,\)"):
        c.value_batch(np.zeros(3))


def test_derivative_batch_shapes():
    b = TapeBuilder()
    x = b.input(1.0)
    b.output(b.binary("mul", b.unary("sin", x), x))  # x sin x
    t = b.finish()

    def d1(x):
        return np.sin(x) + x * np.cos(x)

    def d2(x):
        return 2 * np.cos(x) - x * np.sin(x)

    zero_d = t.derivative_batch(0.5)
    assert isinstance(zero_d, np.ndarray) and zero_d.shape == ()
    close(zero_d, d1(0.5))
    assert t.second_derivative_batch(np.array(0.5)).shape == ()
    for shape in [(0,), (3, 0), (0, 4)]:
        assert t.derivative_batch(np.zeros(shape)).shape == shape
        assert t.second_derivative_batch(np.zeros(shape)).shape == shape
    big = np.linspace(-3, 3, 60).reshape(6, 10)
    strided = big[::2, ::3]  # non-contiguous, shape (3, 4)
    assert not strided.flags.c_contiguous
    close(t.derivative_batch(strided), d1(strided))
    close(t.second_derivative_batch(strided), d2(strided))
    close(t.derivative_batch(strided.T), d1(strided.T))

    c = CompiledCore(lambda x: t, (), ())
    assert type(c.derivative(0.5)) is float
    close(c.derivative(strided), d1(strided))
    close(c.second_derivative(strided), d2(strided))
    assert c.derivative(np.zeros((0, 3))).shape == (0, 3)


def test_zero_input_tape():
    b = TapeBuilder()
    b.output(b.constant(2.0))
    t = b.finish()
    np.testing.assert_array_equal(t.value([]), [2.0])
    np.testing.assert_array_equal(t.value_batch(np.zeros((4, 0))), np.full((4, 1), 2.0))
    assert t.jacobian_batch(np.zeros((4, 0))).shape == (4, 1, 0)
    assert t.guards_batch(np.zeros((4, 0))).tolist() == [True] * 4


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=0, max_size=40))
def test_core_value_batch_property(xs):
    c = CompiledCore(staircase_tape, (), ())
    xs = np.array(xs, dtype=float)
    np.testing.assert_array_equal(c.value_batch(xs), [c.value(x) for x in xs])
    np.testing.assert_array_equal(c.derivative(xs), [staircase_slope(x) for x in xs])


# ------------------------------------------------------------------------------------------------
# Pickling
# ------------------------------------------------------------------------------------------------


def test_bytes_and_pickle_round_trip():
    for t in (robertson_tape(), rosenbrock_tape(), branchy_tape([-1.0, 0.0])):
        u = Tape.from_bytes(t.to_bytes())
        w = pickle.loads(pickle.dumps(t))
        assert repr(u) == repr(w) == repr(t)
        x = np.linspace(0.2, 0.9, t.n_inputs)
        for other in (u, w):
            np.testing.assert_array_equal(other.value(x), t.value(x))
            np.testing.assert_array_equal(other.jacobian(x), t.jacobian(x))
            assert other.guards_hold(x) == t.guards_hold(x)


def test_pickle_in_another_process(tmp_path):
    t = robertson_tape()
    path = tmp_path / "tape.pkl"
    path.write_bytes(pickle.dumps(t))
    y = [0.3, 1e-3, 0.7]
    code = (
        "import pickle, sys; "
        f"t = pickle.loads(open(sys.argv[1], 'rb').read()); "
        f"print(t.jacobian({y!r}).tobytes().hex())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert bytes.fromhex(out.stdout.strip()) == t.jacobian(y).tobytes()


# ------------------------------------------------------------------------------------------------
# Threads
# ------------------------------------------------------------------------------------------------


def test_threads_share_one_tape_and_one_core():
    rng = np.random.default_rng(7)
    t = robertson_tape()
    c = CompiledCore(lambda x: t, (3,), (3,))
    points = rng.uniform(0, 1, size=(64, 3))
    big = rng.uniform(0, 1, size=(20_000, 3))  # large enough to release the GIL
    expected = [t.jacobian(p) for p in points]
    expected_big = t.value_batch(big)
    expected_jbig = t.jacobian_batch(big[:2000])

    def work(k):
        for _ in range(20):
            for p, e in zip(points, expected, strict=True):
                np.testing.assert_array_equal(t.jacobian(p), e)
                np.testing.assert_array_equal(c.jacobian(p), e)
        np.testing.assert_array_equal(t.value_batch(big), expected_big)
        np.testing.assert_array_equal(c.value_batch(big), expected_big)
        np.testing.assert_array_equal(c.jacobian_batch(big[:2000]), expected_jbig)
        return k

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        assert sorted(pool.map(work, range(8))) == list(range(8))


def test_threads_retrace_concurrently():
    c = CompiledCore(staircase_tape, (), ())
    xs = np.linspace(-1, 4, 41)

    def work(k):
        order = np.roll(xs, 5 * k)
        return [(x, c.derivative(x), c.value(x)) for x in order]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for rows in pool.map(work, range(8)):
            for x, d, v in rows:
                assert d == staircase_slope(x) and v == x * staircase_slope(x)
    assert 4 <= len(c.tapes) <= 32


def test_a_core_in_a_reference_cycle_is_collected():
    import gc
    import weakref

    class Sub(CompiledCore):
        pass

    def make():
        box = []
        s = Sub(lambda x: box[0].tapes[0], (3,), (3,))  # retrace refers back to the core
        box.append(s)
        s.add_tape(robertson_tape())
        return weakref.ref(s)

    ref = make()
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize(
    ("in_shape", "X", "match"),
    [
        ((2,), np.zeros(3), r"value_batch expects .* shape \(B, 2\), got \(3,\)"),
        ((), np.zeros(()), r"shape \(B,\), got \(\)"),
        ((2, 3), np.zeros((4, 3, 2)), r"shape \(B, 2, 3\), got \(4, 3, 2\)"),
    ],
)
def test_core_batch_shape_errors(in_shape, X, match):
    c = CompiledCore(robertson_tape, in_shape, (3,))
    with pytest.raises(ValueError, match=match):
        c.value_batch(X)
