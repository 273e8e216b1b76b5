"""Lazy fusion of elementwise chains in eager mode (rust/duals-py/src/lazy.rs).

Large first-order arrays with one tangent row defer ``+ - * /``, negation, ``x**2`` and the rules
with a SIMD body, and evaluate the chain in one pass when anything reads the arrays. These tests
move the size threshold with the private knob ``duals._native._lazy_threshold`` and check that
the fused results are those of the operations run one at a time, bit for bit, and that every way
of reaching the arrays (or writing them) sees the right values.
"""

from __future__ import annotations

import contextlib
import pickle
import threading

import numpy as np
import pytest

import duals
from duals import _native
from duals._core import DualArray

EAGER = 1 << 62  # a threshold no array reaches: nothing is deferred


@contextlib.contextmanager
def threshold(n: int):
    old = _native._lazy_threshold(n)
    try:
        yield
    finally:
        _native._lazy_threshold(old)


@contextlib.contextmanager
def dense_tangents():
    """Jacobian drivers seed dense tangents (not banded ones, see test_banded.py), so that
    their elementwise chains are deferred and fused."""
    old = _native._banded(False)
    try:
        yield
    finally:
        _native._banded(old)


def both(run):
    """``run()`` with every elementwise operation deferred, and with none (dense tangents)."""
    with dense_tangents():
        with threshold(1):
            fused = run()
        with threshold(EAGER):
            eager = run()
    return fused, eager


def same_bits(a, b) -> bool:
    """Equal bit for bit, NaNs of any sign and payload equal."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    nan = np.isnan(a)
    if not np.array_equal(nan, np.isnan(b)):
        return False
    return np.array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64))


def awkward(n: int, seed: int) -> np.ndarray:
    """Random values with signed zeros, tiny and huge magnitudes, infinities and NaN."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-4.0, 4.0, n)
    special = np.array(
        [0.0, -0.0, 1e-310, -1e-300, 1e300, -1e155, 1e155, 710.0, -745.5, 1.0, -1.0, 3e-8]
    )
    k = rng.random(n)
    x[k < 0.15] = rng.choice(special, np.count_nonzero(k < 0.15))
    x[(k >= 0.15) & (k < 0.17)] = np.inf
    x[(k >= 0.17) & (k < 0.19)] = -np.inf
    x[(k >= 0.19) & (k < 0.2)] = np.nan
    return x


def finite_awkward(n: int, seed: int) -> np.ndarray:
    """Random values with signed zeros, subnormals and large magnitudes, all finite, most of
    whose arithmetic in the functions below stays finite (so the fused pass is kept)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-4.0, 4.0, n)
    special = np.array([0.5, -0.0, 1e-310, -1e-300, 300.0, -300.0, 30.0, -30.0, 1.0, -1.0, 3e-8])
    k = rng.random(n)
    x[k < 0.2] = rng.choice(special, np.count_nonzero(k < 0.2))
    return x


def counts():
    return np.array(_native._lazy_counts())


def bump(x):
    return np.sin(x) * np.exp(-(x**2)) + np.log1p(x**2)


FUNCTIONS = {
    "bump": bump,
    "constants both sides": lambda x: (2.5 - x) * 3.0 / (x + 0.5) - 1.0 / x + x / 4.0 - 7.0,
    "reflected": lambda x: 2.0 + x * 0.5 - (3 - x) + 2 * x + 1 / (1.0 + x * x),
    "rules": lambda x: (
        np.sqrt(x * x + 1.0) * np.cos(x)
        - np.expm1(-x) / np.reciprocal(2.0 + np.square(x))
        + np.log(x * x + 2.0)
    ),
    "negation and shared": lambda x: -(-x * -np.sin(x)) + (np.exp(x) - np.exp(x)) / (x - x + 2.0),
    "numpy ufuncs": lambda x: np.add(np.multiply(x, 2.0), np.divide(np.subtract(x, 1.0), 3.0)),
    "numpy scalars": lambda x: x * np.float64(1.5) + np.array(2.0) - x / np.float64(-0.25),
    "long chain": lambda x: _chain(x, 70),
}


def _chain(x, n):
    y = x
    for i in range(n):
        y = y * 0.99 + np.sin(y) / (i + 1.0)
    return y


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 16, 17, 1037, (1 << 15) + 3])
def test_fused_derivative_equals_unfused_bit_for_bit(name, n):
    f = FUNCTIONS[name]
    x = awkward(n, n)
    fused, eager = both(lambda: duals.derivative(f, x))
    assert same_bits(fused, eager)
    v = awkward(n, n + 1)
    (fy, ft), (ey, et) = both(lambda: duals.jvp(f, x, v))
    assert same_bits(fy, ey) and same_bits(ft, et)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("n", [1, 7, 9, 17, 1037, (1 << 15) + 3])
def test_fused_pass_equals_unfused_bit_for_bit(name, n):
    f = FUNCTIONS[name]
    x = finite_awkward(n, n)
    if name == "constants both sides":
        x[np.abs(x) < 1e-200] = 0.75  # 1 / x finite
    before = counts()
    fused, eager = both(lambda: duals.derivative(f, x))
    fused_calls, replays = counts() - before
    assert same_bits(fused, eager)
    # the long chain overflows (and is replayed) past 300
    assert (fused_calls, replays) == (1, 0) or name == "long chain"


@pytest.mark.parametrize("name", ["bump", "rules", "constants both sides"])
def test_finite_inputs_fuse_and_match_the_references(name):
    f = FUNCTIONS[name]
    x = np.linspace(0.1, 3.0, 4099)
    fused, eager = both(lambda: duals.derivative(f, x))
    assert same_bits(fused, eager)
    h = 1e-6
    fd = (f(x + h) - f(x - h)) / (2 * h)
    np.testing.assert_allclose(fused, fd, rtol=1e-6, atol=1e-6)


def test_default_threshold_defers_large_arrays_only():
    seen = {}

    def f(x):
        y = np.sin(x) * 2.0
        seen[x.size] = y._pending
        return y

    duals.derivative(f, np.linspace(0, 1, 3))
    duals.derivative(f, np.linspace(0, 1, 1 << 16))
    assert seen == {3: False, 1 << 16: True}


def test_the_multithreaded_split_matches():
    # 2**18 + 5 points: more than one thread's share where the machine has two CPUs
    x = finite_awkward((1 << 18) + 5, 7)
    for f in (bump, FUNCTIONS["rules"]):
        before = counts()
        fused, eager = both(lambda f=f: duals.derivative(f, x))
        assert same_bits(fused, eager)
        assert tuple(counts() - before) == (1, 0)


def test_non_contiguous_and_fortran_inputs():
    base = awkward(4 * 301, 3).reshape(4, 301)
    for x in (base[:, ::2], np.asfortranarray(base), base.T):
        fused, eager = both(lambda x=x: duals.derivative(bump, x))
        assert fused.shape == x.shape
        assert same_bits(fused, eager)


def test_zero_d_dual_arrays_are_not_deferred():
    with np.errstate(all="ignore"), threshold(1):
        x = DualArray(np.float64(0.5), np.array([1.0])) * 1.0
        for y in (np.sin(x), x * x, -x, x + 1.0):
            assert not getattr(y, "_pending", False)


def test_zero_d_and_empty():
    for x in (0.5, np.array(0.5), np.array([]), np.zeros((0, 3))):
        fused, eager = both(lambda x=x: duals.derivative(bump, x))
        assert same_bits(fused, eager)


@pytest.mark.parametrize(
    "f",
    [
        lambda x: x * x[:1] + np.sin(x),  # broadcast (n,) * (1,)
        lambda x: np.sin(x)[:, None] * np.cos(x)[None, :],  # outer broadcast
        lambda x: x * np.linspace(0.0, 1.0, x.size) + 1.0,  # ndarray constant
        lambda x: np.sin(x) * duals.Dual(2.0, 0.5) + x,  # a Dual scalar
        lambda x: np.tanh(x) * np.sin(x),  # a rule without a SIMD body
        lambda x: x**3 + x**2.0 + 2.0**x,  # other powers
    ],
)
def test_what_does_not_fuse_still_matches(f):
    x = awkward(67, 11)
    fused, eager = both(lambda: duals.derivative(f, x))
    assert same_bits(fused, eager)


def test_broadcasting_and_ndarray_constants_are_not_deferred():
    seen = []

    def f(x):
        seen.append(x * x[:1])
        seen.append(x * np.ones(x.size))
        seen.append(np.sin(x)[:, None] * np.cos(x)[None, :])
        return x

    with threshold(1):
        duals.derivative(f, np.linspace(0.0, 1.0, 9))
    assert [y._pending for y in seen] == [False, False, False]


def test_traced_and_second_order_are_never_deferred_several_tangents_are():
    seen = []

    def f(x):
        y = np.sin(x) * x + 1.0
        seen.append(y._pending)
        return y

    x = np.linspace(0.1, 1.0, 5)
    with threshold(1):
        duals.second_derivative(f, x)
        duals.hessian(lambda x: np.sum(f(x)), x)
        c = duals.compile(f, x)
        c.jacobian(x)
    assert seen and not any(seen)
    with threshold(1):
        duals.jacobian(f, x)  # 5 tangent rows
        duals.derivative(f, x)
    assert seen[-2:] == [True, True]


# ------------------------------------------------------------------------------------------------
# Every access path evaluates; writes never change a pending result
# ------------------------------------------------------------------------------------------------


def run_both(f, n=41):
    x = awkward(n, 5)
    x[np.isnan(x)] = 0.25
    return both(lambda: duals.jvp(f, x, np.linspace(-1.0, 2.0, n)))


@pytest.mark.parametrize(
    "access",
    [
        lambda y: y.primal.copy(),
        lambda y: y.tangent.copy(),
        lambda y: np.array(y.primal),
        lambda y: y[3].primal,
        lambda y: y[2:5].tangent.copy(),
        lambda y: repr(y),
        lambda y: pickle.loads(pickle.dumps(y)).primal,
        lambda y: np.sum(y).primal,
        lambda y: np.tanh(y).primal,
        lambda y: (y > 0).copy(),
        lambda y: list(y)[1].tangent,
        lambda y: y.reshape(-1).primal.copy(),
        lambda y: y.copy().primal,
    ],
)
def test_access_paths_evaluate(access):
    out = {}

    def f(x):
        y = np.sin(x) * 2.0 + x * x
        out.setdefault("pending", y._pending)
        r = access(y)
        out.setdefault("value", []).append(r)
        assert not y._pending
        return y

    with threshold(1):
        duals.derivative(f, np.linspace(0.0, 1.0, 13))
    assert out["pending"] is True
    with threshold(EAGER):
        duals.derivative(f, np.linspace(0.0, 1.0, 13))
    a, b = out["value"]
    if isinstance(a, str):
        assert a == b
    else:
        assert same_bits(a, b)


def test_shape_len_and_size_do_not_evaluate():
    def f(x):
        y = np.sin(x) + 1.0
        assert y._pending
        assert (y.shape, y.ndim, y.size, len(y)) == ((17,), 1, 17, 17)
        assert y._pending
        return y

    with threshold(1):
        duals.derivative(f, np.linspace(0.0, 1.0, 17))


def f_inplace_on_pending(x):
    y = np.sin(x) * 2.0
    y += 1.0
    y *= y
    y -= x
    y /= 3.0
    return y


def f_view_of_pending(x):
    y = np.exp(x) - 1.0
    v = y[2:]
    v += 10.0
    w = y[::3]
    w *= -1.0
    return y + 0.5


def f_pending_view_written(x):
    y = np.sin(x) * x
    z = y * 2.0  # reads y's expression, not y's later values
    y[1:4] = 0.0
    y[0] = duals.Dual(5.0, 1.0) if False else y[5]
    return z - y


def f_input_written_after_use(x):
    y = np.sin(x) + x  # reads x when evaluated
    x[0] = x[1] * 3.0  # native x[i] = d
    x[2:4] = x[4:6] * 0.5  # Python path
    x *= 2.0  # in place on the input
    return y + x


def f_input_primal_written(x):
    y = np.cos(x) * x
    p = x.primal  # handed out: y is evaluated first
    p[0] = 100.0
    z = np.sin(x) + 1.0  # x is no longer an input of an expression: eager
    x.tangent[0, 1] = 3.0
    return y + z + x


def f_out_argument(x):
    y = np.sin(x) * 3.0
    out = np.zeros_like(x)
    np.multiply(y, 2.0, out=out)
    np.sin(y, out=y)
    return out + y


def f_where_and_sort(x):
    y = np.exp(-x) * x
    y.sort()
    z = np.where(x.primal > 0, y, -y)
    return z + np.maximum(y, 0.1)


@pytest.mark.parametrize(
    "f",
    [
        f_inplace_on_pending,
        f_view_of_pending,
        f_pending_view_written,
        f_input_written_after_use,
        f_input_primal_written,
        f_out_argument,
        f_where_and_sort,
    ],
)
def test_writes_see_the_values_of_the_eager_operations(f):
    (fy, ft), (ey, et) = run_both(f)
    assert same_bits(fy, ey) and same_bits(ft, et)


def test_non_finite_arithmetic_replays_the_eager_paths():
    # overflow of x * x, 0 * inf, division by zero: the eager arithmetic runs NumPy's
    x = np.array([1e200, -1e200, 0.0, 1.0, np.inf, -2.0, np.nan, 3.0] * 9)
    for f in FUNCTIONS.values():
        before = counts()
        fused, eager = both(lambda f=f: duals.derivative(f, x))
        assert same_bits(fused, eager)
        assert (counts() - before)[1] >= 1


def test_error_state_applies_at_the_operation():
    def f(x):
        with np.errstate(divide="raise"):
            return 1.0 / (x - x)

    for n in (1, 9):
        with threshold(1), pytest.raises(FloatingPointError):
            duals.derivative(f, np.ones(n))


def test_warnings_outside_the_drivers_come_from_the_operation():
    x = DualArray(np.zeros(9), np.ones(9))
    y = x * 1.0  # a private result
    with threshold(1):
        with pytest.warns(RuntimeWarning):
            z = 1.0 / y  # under NumPy's default error state: not deferred, warns here
        assert not z._pending
        s = np.sin(x * 1.0)  # no warning to give: deferred
        assert s._pending
        assert same_bits(s.primal, np.zeros(9))


def test_pending_arrays_shared_between_threads():
    x = np.linspace(-2.0, 2.0, 70001)
    with np.errstate(all="ignore"):
        X = DualArray(x, np.ones_like(x)) * 1.0
        with threshold(1):
            ys = [bump(X) for _ in range(4)]
    assert all(y._pending for y in ys)
    results = {}

    def read(i):
        results[i] = (ys[i % 4].primal.copy(), ys[(i + 1) % 4].tangent.copy())

    threads = [threading.Thread(target=read, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with threshold(EAGER), np.errstate(all="ignore"):
        want = bump(X)
    for p, t in results.values():
        assert same_bits(p, want.primal) and same_bits(t, want.tangent)


# ------------------------------------------------------------------------------------------------
# derivative's input and output
# ------------------------------------------------------------------------------------------------


def f_reads_input_tangent(x):
    y = np.sin(x) * x
    t = x.tangent  # the row of ones, made now
    assert t.shape == (1,) + x.shape and np.all(t == 1.0)
    t[0, 1] = 2.0
    return y + np.cos(x)


def f_writes_input(x):
    y = np.exp(x) / 3.0
    x[0] = y[1]
    return y * x


STASH = []


def f_stashes_output(x):
    y = bump(x) * 2.0
    STASH.append(y)
    return y


@pytest.mark.parametrize("f", [f_reads_input_tangent, f_writes_input, f_stashes_output, bump])
@pytest.mark.parametrize("n", [5, 1037])
def test_derivative_input_and_output_paths(f, n):
    x = finite_awkward(n, 2)
    STASH.clear()
    fused, eager = both(lambda: duals.derivative(f, x))
    assert same_bits(fused, eager)
    if STASH:
        # the output, evaluated for the derivative without its primal, is still whole
        with threshold(1):
            duals.derivative(f, x)
        (y,) = STASH[-1:]
        assert y._pending
        with threshold(EAGER), np.errstate(all="ignore"):
            want = bump(DualArray(x, np.ones_like(x))) * 2.0
        assert same_bits(y.primal, want.primal) and same_bits(y.tangent, want.tangent)


# ------------------------------------------------------------------------------------------------
# Random programs
# ------------------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

UNARY = [np.sin, np.cos, np.exp, np.expm1, np.log, np.log1p, np.sqrt, np.reciprocal, np.square]
BINARY = [
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: a / b,
    np.add,
    np.subtract,
    np.multiply,
    np.divide,
]
NUMBERS = [2.0, -0.5, 0.0, -0.0, 3, 1e300, 1e-300, np.float64(0.25)]

step = st.one_of(
    st.tuples(st.just("u"), st.integers(0, len(UNARY) - 1), st.integers(0, 99)),
    st.tuples(st.just("neg"), st.integers(0, 99)),
    st.tuples(st.just("pow2"), st.integers(0, 99)),
    st.tuples(
        st.just("b"), st.integers(0, len(BINARY) - 1), st.integers(0, 99), st.integers(0, 99)
    ),
    st.tuples(
        st.just("c"),
        st.integers(0, len(BINARY) - 1),
        st.integers(0, 99),
        st.integers(0, len(NUMBERS) - 1),
        st.booleans(),
    ),
    st.tuples(st.just("read"), st.integers(0, 99)),
)


def program(steps):
    reads = []

    def f(x):
        vals = [x]
        for s in steps:
            pick = lambda i: vals[i % len(vals)]  # noqa: E731
            if s[0] == "u":
                vals.append(UNARY[s[1]](pick(s[2])))
            elif s[0] == "neg":
                vals.append(-pick(s[1]))
            elif s[0] == "pow2":
                vals.append(pick(s[1]) ** 2)
            elif s[0] == "b":
                vals.append(BINARY[s[1]](pick(s[2]), pick(s[3])))
            elif s[0] == "c":
                a, c = pick(s[2]), NUMBERS[s[3]]
                vals.append(BINARY[s[1]](c, a) if s[4] else BINARY[s[1]](a, c))
            else:
                reads.append(pick(s[1]).primal.copy())  # evaluated in the middle
        return sum(vals[1:], vals[0])

    return f


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(step, min_size=1, max_size=14),
    n=st.sampled_from([1, 5, 8, 13, 70]),
    seed=st.integers(0, 3),
    finite=st.booleans(),
)
def test_random_programs_fused_equal_unfused(steps, n, seed, finite):
    f = program(steps)
    x = finite_awkward(n, seed) if finite else awkward(n, seed)
    v = finite_awkward(n, seed + 1)
    (fy, ft), (ey, et) = both(lambda: duals.jvp(f, x, v))
    assert same_bits(fy, ey) and same_bits(ft, et)
    fused, eager = both(lambda: duals.derivative(f, x))
    assert same_bits(fused, eager)


# ------------------------------------------------------------------------------------------------
# Several tangent rows (jacobian chunks): the same, row by row; leaves that are views
# ------------------------------------------------------------------------------------------------

ROWS = [(2, 7), (2, 1037), (3, 9), (8, 17), (9, 8), (128, 67), (512, 300)]


def halves(g):
    """``g`` on the two halves of ``x`` (views whose tangent rows are read in place)."""

    def f(x):
        n = x.shape[0] // 2
        return g(x[:n]) - g(x[n:]) * 0.5

    return f


@pytest.mark.parametrize("finite", [True, False])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize(("k", "n"), ROWS)
def test_several_rows_fused_equal_unfused_bit_for_bit(k, n, name, finite):
    f = halves(FUNCTIONS[name])
    x = finite_awkward(2 * n, k) if finite else awkward(2 * n, k)
    before = counts()
    fused, eager = both(lambda: duals.jacobian(f, x, chunk=k))
    assert same_bits(fused, eager)
    assert (counts() - before).sum() > 0  # deferred, then fused or replayed


@pytest.mark.parametrize(("k", "n"), ROWS)
def test_several_rows_finite_values_take_the_fused_pass(k, n):
    f = halves(lambda x: (x * 0.5 - 2.0 * x * x) / (x * x + 1.0) + 3.0 * x - (1.0 - x))
    x = np.linspace(-1.0, 1.0, 2 * n)
    before = counts()
    fused, eager = both(lambda: duals.jacobian(f, x, chunk=k))
    assert same_bits(fused, eager)
    fused_count, replayed = counts() - before
    assert fused_count > 0 and replayed == 0


@pytest.mark.parametrize("states", [64, 512])
def test_brusselator_jacobian_fused_equals_unfused_and_analytic(states):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benches" / "python"))
    try:
        import workloads
    finally:
        sys.path.pop(0)
    y = workloads.brusselator_point(states)
    alpha = 1.0 / 50.0
    before = counts()
    fused, eager = both(lambda: duals.jacobian(workloads.brusselator, y, args=(alpha,)))
    assert same_bits(fused, eager)
    fused_count, replayed = counts() - before
    assert fused_count >= 2 and replayed == 0  # du and dv, each one pass
    want = workloads.brusselator_analytic(y, alpha)
    np.testing.assert_allclose(fused, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    # and at the default threshold (512 states: 256 rows of 512 directions)
    assert same_bits(duals.jacobian(workloads.brusselator, y, args=(alpha,)), eager)


def test_views_of_a_driver_input_are_read_in_place():
    seen = []

    def f(x):
        n = x.shape[0] // 2
        u, v = x[:n], x[n:]
        y = u * u * v + 2.0 * u
        seen.append(y._pending)
        return y

    with threshold(1):
        duals.jacobian(f, np.linspace(0.5, 1.0, 10))
    assert seen == [True]


def f_view_leaf_then_base_written(x):
    n = x.shape[0] // 2
    u = x[:n]
    z = u * 2.0 + u * u  # reads u, a view of x, when evaluated
    x[0] = x[1] * 3.0  # native x[i] = d on the base
    x[n : n + 2] = x[:2] * 0.5  # Python path
    return z + x[:n]


def f_view_leaf_then_view_written(x):
    n = x.shape[0] // 2
    u, w = x[:n], x[1 : n + 1]
    z = u * u - 1.0
    w[0] = w[2]  # writes u[1] through another view
    w *= 2.0
    return z - u


def f_view_handed_out(x):
    n = x.shape[0] // 2
    u = x[:n]
    z = u * 3.0 - u
    u.primal[0] = 100.0  # handed out: z is evaluated first, and x is no longer read in place
    u.tangent[:, 1] = 7.0
    w = x[n:] * 2.0 + 1.0
    return z + w + u


def f_view_of_view(x):
    n = x.shape[0] // 2
    u = x[:n][1:]
    z = u / (u * u + 1.0)
    x.tangent[0, 2] = 5.0  # the base handed out after its view was read
    return z + x[1 : n - 0][: n - 1]


def f_concatenated_views(x):
    n = x.shape[0] // 2
    u = x[:n]
    a = np.concatenate([np.ones_like(u[:1]), u[:-1]])
    lap = a - 2.0 * u + np.concatenate([u[1:], 3.0 * np.ones_like(u[:1])])
    a[0] = a[1]  # the concatenation is written after it was read
    return lap * 0.25 + a


@pytest.mark.parametrize(
    "f",
    [
        f_view_leaf_then_base_written,
        f_view_leaf_then_view_written,
        f_view_handed_out,
        f_view_of_view,
        f_concatenated_views,
    ],
)
@pytest.mark.parametrize("k", [1, 3, 16])
def test_views_and_writes_see_the_values_of_the_eager_operations(f, k):
    x = np.linspace(0.25, 2.0, 32)

    def run():
        jac = duals.jacobian(f, x, chunk=k)
        val = duals.jvp(f, x, np.cos(np.arange(32.0)))
        return jac, val[0], val[1]

    fused, eager = both(run)
    for a, b in zip(fused, eager, strict=True):
        assert same_bits(a, b)


def f_concatenate_pending(x):
    n = x.shape[0] // 2
    u, v = x[:n], x[n:]
    a = u * v + 1.0  # evaluated straight into its block of the result
    b = 1.0 / (u - 0.5)  # infinite where u == 0.5: replayed, then copied in
    r = np.concatenate([a, np.ones(3), b, a * 2.0, v, -b])
    return np.concatenate([r, a, np.concatenate([b, a])])  # a and b read again later


def f_concatenate_pending_2d(x):
    n = x.shape[0] // 2
    a = (x[:n] * x[n:]).reshape(2, -1)
    return np.concatenate([a * 2.0, a - 1.0], axis=1).ravel()


@pytest.mark.parametrize("f", [f_concatenate_pending, f_concatenate_pending_2d])
@pytest.mark.parametrize("k", [1, 3, 16])
@pytest.mark.parametrize("singular", [False, True])
def test_concatenate_of_pending_arrays(f, k, singular):
    x = np.linspace(0.25, 2.0, 32)
    if singular:
        x[3] = 0.5
    before = counts()
    fused, eager = both(lambda: duals.jacobian(f, x, chunk=k))
    assert same_bits(fused, eager)
    fused_count, replayed = counts() - before
    assert fused_count > 0 and (replayed > 0) == (singular and f is f_concatenate_pending)
