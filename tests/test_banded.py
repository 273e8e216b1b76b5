"""Banded tangents (rust/duals-py/src/band.rs): Jacobians of 1-d inputs whose tangents stay a few
diagonals (elementwise arithmetic, the unary rules, slices, ``np.concatenate``) are computed
from the diagonals, in one evaluation whatever the chunk.

Every test compares against the dense tangents of the same drivers (``_native._banded(False)``,
the path the rest of the suite checks against references), value for value: a Jacobian from
diagonals equals the dense one entry for entry (NaN where it has NaN; a zero off the diagonals
may be ``+0`` where the dense kernel leaves ``-0``). Some also compare against the complex step
or the analytic Jacobian, and check that NumPy's view semantics hold: writes through a slice
reach its base and the other way round.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import pytest
from derivref import cs_jacobian

import duals
from duals import _native
from duals._core import DualArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benches" / "python"))
try:
    import workloads
finally:
    sys.path.pop(0)


@contextlib.contextmanager
def banded(on: bool):
    old = _native._banded(on)
    try:
        yield
    finally:
        _native._banded(old)


def both(run):
    """``run()`` with banded tangents, and with dense ones."""
    with banded(True):
        b = run()
    with banded(False):
        d = run()
    return b, d


def same(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


class Probe:
    """Wraps ``f``: records whether its input was banded and how often it ran."""

    def __init__(self, f):
        self.f, self.calls, self.banded = f, 0, []

    def __call__(self, y, *args):
        self.calls += 1
        self.banded.append(y._banded if type(y) is DualArray else None)
        return self.f(y, *args)


def stencil(y):
    """A nonlinear three-point stencil with boundary constants, as the method of lines."""
    one = np.ones_like(y[:1])
    left = np.concatenate([one, y[:-1]])
    right = np.concatenate([y[1:], 2.0 * one])
    return np.sin(left) * y - np.exp(-right * y) / (1.0 + y * y) + np.sqrt(y * y + 1.0)


def stencil_numpy(y):
    left = np.concatenate([[1.0], y[:-1]])
    right = np.concatenate([y[1:], [2.0]])
    return np.sin(left) * y - np.exp(-right * y) / (1.0 + y * y) + np.sqrt(y * y + 1.0)


# ------------------------------------------------------------------------------------------------
# The Jacobians: banded equals dense equals the references
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("states", [32, 64, 100, 512, 700])
def test_brusselator_banded_equals_dense_and_analytic(states):
    y = workloads.brusselator_point(states)
    a = workloads.BRUSSELATOR_ALPHA
    f = Probe(workloads.brusselator)
    J, J_dense = both(lambda: duals.jacobian(f, y, args=(a,)))
    assert same(J, J_dense)
    want = workloads.brusselator_analytic(y, a)
    np.testing.assert_allclose(J, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())
    if states * states < 1 << 12:  # small: dense tangents
        assert f.banded == [False, False]
    else:  # one banded evaluation (700 states: chunks of fewer directions for dense tangents)
        assert f.banded[0] is True and f.banded.count(True) == 1


@pytest.mark.parametrize("n", [64, 65, 127, 300, 1037])
@pytest.mark.parametrize("chunk", [None, 1, 7, 64])
def test_stencil_banded_equals_dense_and_complex_step(n, chunk):
    y = np.linspace(-1.3, 2.1, n)
    f = Probe(stencil)
    with banded(True):
        J = duals.jacobian(f, y, chunk=chunk)
    if chunk is None or n * min(n, chunk) >= 1 << 12:  # (default chunks: at least 128)
        assert f.banded == [True]  # every direction from one evaluation
    with banded(False):
        J_dense = duals.jacobian(f, y, chunk=chunk)
    assert same(J, J_dense)
    if n <= 300:
        want = cs_jacobian(stencil_numpy, y)
        np.testing.assert_allclose(J, want, rtol=1e-14, atol=1e-15)


UNARY = [
    np.sin, np.cos, np.tan, np.arcsin, np.arccos, np.arctan, np.sinh, np.cosh, np.tanh,
    np.arcsinh, np.arccosh, np.arctanh, np.exp, np.exp2, np.expm1, np.log, np.log2, np.log10,
    np.log1p, np.sqrt, np.cbrt, np.square, np.reciprocal, np.absolute, np.negative, np.positive,
    np.deg2rad, np.rad2deg, np.floor, np.sign,
]  # fmt: skip


@pytest.mark.parametrize("ufunc", UNARY, ids=lambda u: u.__name__)
def test_every_unary_ufunc_banded_equals_dense(ufunc):
    y = np.concatenate([np.linspace(-0.9, 0.9, 60), np.linspace(1.1, 3.0, 40)])

    def f(y):
        return ufunc(y[1:] * 0.5 + y[:-1] * 0.25) * y[1:]

    J, J_dense = both(lambda: duals.jacobian(f, y))
    assert same(J, J_dense)


AWKWARD = np.array(
    [0.0, -0.0, 1e-310, -1e-300, 1e300, -1e155, 1e155, 710.0, -745.5, 1.0, -1.0, 3e-8]
    + [np.inf, -np.inf, np.nan]
)


@pytest.mark.parametrize("seed", range(4))
def test_awkward_values_banded_equals_dense(seed):
    """Infinite and NaN values and derivatives (sqrt at 0, division by 0, inf * 0): the banded
    path declines where the dense one would give NaN off the diagonals or take the Python path,
    so the Jacobians are the same, NaNs included."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(-3.0, 3.0, 96)
    pick = rng.random(96) < 0.3
    y[pick] = rng.choice(AWKWARD, np.count_nonzero(pick))

    def f(y):
        s = np.sqrt(np.abs(y))
        q = y[1:] / y[:-1]
        return np.concatenate([s[:1], q * s[1:] - np.log(np.abs(y[1:]) + 1e-300)]) + y * y

    J, J_dense = both(lambda: duals.jacobian(f, y))
    assert same(J, J_dense)
    assert np.isnan(J).any()


def test_sqrt_at_zero_gives_the_dense_nans():
    y = np.linspace(0.0, 1.0, 80)

    def f(y):
        return np.sqrt(y) + y[::-1] * 0.0

    J, J_dense = both(lambda: duals.jacobian(f, y))
    assert same(J, J_dense)
    # d sqrt(y0) = inf * 0 in every other direction: NaN, as dense tangents give
    assert np.isnan(J[0, 1:]).all() and J[0, 0] == np.inf


def test_many_diagonals_fall_back_to_dense():
    """A sum of shifts with more diagonals than pay off (a quarter of the rows) is dense."""
    y = np.linspace(0.1, 1.0, 64)

    def f(y):
        z = y * 1.0
        for s in range(1, 30):
            z = z + np.concatenate([y[s:], y[:s]]) * (0.5**s)
        return z

    g = Probe(f)
    J, J_dense = both(lambda: duals.jacobian(g, y))
    assert same(J, J_dense)
    want = np.eye(64)
    for s in range(1, 30):
        want += np.roll(np.eye(64), s, axis=1) * (0.5**s)
    np.testing.assert_allclose(J, want, rtol=1e-15, atol=1e-15)


def test_elementwise_jacobian_is_diagonal():
    y = np.linspace(0.5, 2.0, 200)
    J, J_dense = both(lambda: duals.jacobian(lambda x: x**2 * x, y))
    assert same(J, J_dense)
    np.testing.assert_allclose(J, np.diag(3.0 * y**2), rtol=1e-15)


@pytest.mark.parametrize(
    "f",
    [
        lambda y: y,
        lambda y: y[3:-5],
        lambda y: -y[::1],
        lambda y: np.zeros_like(y),
        lambda y: np.ones_like(y) * 2.0 + 1.0,
        lambda y: np.concatenate([y, np.arange(4.0), y[:3]]),
        lambda y: 2.0 - np.concatenate((np.zeros(3), y[5:])) / 4.0,
        lambda y: np.negative(np.add(np.multiply(y, 2.0), np.divide(np.subtract(y, 1.0), 3.0))),
        lambda y: y * np.float64(1.5) + np.array(2.0) - y / np.linspace(1.0, 2.0, y.size),
    ],
    ids=["identity", "slice", "neg", "zeros_like", "ones_like", "concat", "consts", "ufuncs",
         "numpy scalars"],
)  # fmt: skip
def test_linear_structure_banded_equals_dense(f):
    y = np.linspace(-2.0, 3.0, 90)
    (Jb, vb), (Jd, vd) = both(lambda: (duals.jacobian(f, y), duals.value_and_jacobian(f, y)[0]))
    assert same(Jb, Jd) and same(vb, vd)
    np.testing.assert_array_equal(vb, f(y.copy()))


# ------------------------------------------------------------------------------------------------
# NumPy's view semantics: writes through slices, in place, into zeros_like buffers
# ------------------------------------------------------------------------------------------------


def write_through_view(y):
    n = y.shape[0] // 2
    u = y[:n]
    a = u * 2.0  # computed before the write: keeps the old values
    u[0] = u[1] * 3.0  # a Dual written into the view: y[0] changes too
    return a + y[:n] + y[n:] * u


def write_base_then_read_view(y):
    n = y.shape[0] // 2
    u, w = y[:n], y[2:][1:]  # a view and a view of a view
    y[3] = y[0] * y[1]
    y[n + 1 :] = y[n:-1] ** 2  # Python path, overlapping slices
    return np.concatenate([u * w[: u.size], y[n:]])


def in_place_on_views(y):
    n = y.shape[0] // 2
    u, v = y[:n], y[n:]
    u += 1.0
    v *= u
    u -= np.sin(v)
    return y * 1.0


def ode_buffer(y):
    dy = np.zeros_like(y)
    dy[0] = -y[0]
    dy[1:-1] = y[:-2] - 2.0 * y[1:-1] + y[2:]
    d = dy[-2:]
    d += y[-2:] ** 2
    return dy


def ode_buffer_element_writes(y):
    dy = np.empty_like(y)
    for i in range(3):
        dy[i] = y[i] * y[i + 1]
    dy[3:] = np.exp(y[3:])
    return dy


def read_element_then_continue(y):
    z = y[1:] * y[:-1]  # banded
    c = y[0] * 2.0  # a Dual: y made dense
    return np.concatenate([z * c, y[:1]])


@pytest.mark.parametrize(
    "f",
    [
        write_through_view,
        write_base_then_read_view,
        in_place_on_views,
        ode_buffer,
        ode_buffer_element_writes,
        read_element_then_continue,
    ],
)
@pytest.mark.parametrize("n", [80, 600])
def test_writes_keep_numpy_view_semantics(f, n):
    y = np.linspace(0.3, 1.7, n)
    J, J_dense = both(lambda: duals.jacobian(f, y))
    assert same(J, J_dense)
    (v, _), (v_dense, _) = both(lambda: duals.value_and_jacobian(f, y))
    assert same(v, v_dense)
    if n == 80:
        want = cs_jacobian(lambda z: f(z.astype(complex)), y)
        np.testing.assert_allclose(J, want, rtol=1e-13, atol=1e-13)


def ode_slices(y):
    """The method of lines written into a buffer: slices of it assigned, boundaries set."""
    dy = np.empty_like(y)
    dy[1:-1] = y[:-2] - 2.0 * y[1:-1] + y[2:] * y[1:-1]
    dy[0] = 0.0
    dy[-1:] = y[-1:] ** 3
    dy[:1] += y[:1] * 2.0  # in place on a view: the view's write goes to dy, densely
    return dy


def ode_slices_banded(y):
    dy = np.zeros_like(y)
    dy[1:-1] = y[:-2] - 2.0 * y[1:-1] + y[2:] * y[1:-1]
    dy[-1] = 1.5
    dy[:2] = np.array([0.25, -0.5])
    dy += y * y  # in place: dy[...] = dy + y * y
    return dy


def stale_views(y):
    dy = np.zeros_like(y)
    v = dy[2:]  # a view made before the writes
    old = v * 1.0  # computed before them: zeros
    dy[1:-1] = np.sin(y[1:-1]) * y[:-2]
    dy[...] = dy * y
    w = dy[1:]
    return np.concatenate([v + old, w[:2] * dy[:2]])


@pytest.mark.parametrize("f", [ode_slices, ode_slices_banded, stale_views])
@pytest.mark.parametrize("n", [80, 600])
def test_writes_into_buffers_banded_equal_dense(f, n):
    y = np.linspace(0.3, 1.7, n)
    g = Probe(f)
    J, J_dense = both(lambda: duals.jacobian(g, y))
    assert same(J, J_dense)
    if f is ode_slices_banded:
        # banded: one evaluation, then the dense run (in chunks for 600 inputs)
        assert g.banded == [True] + [False] * (g.calls - 1)
    if n == 80:
        want = cs_jacobian(lambda z: f(z.astype(complex)), y)
        np.testing.assert_allclose(J, want, rtol=1e-13, atol=1e-13)


def ode_boundaries(y):
    """Boundary rows written element by element from Duals, the interior by slices."""
    dy = np.empty_like(y)
    dy[0] = y[1] - y[0] * y[0]
    dy[1:-1] = y[:-2] - 2.0 * y[1:-1] + np.sin(y[2:])
    dy[-1] = y[-2] * 3.0 - y[-1] / y[0]
    return dy


@pytest.mark.parametrize("n", [70, 300, 700])
def test_dual_boundary_writes(n):
    """One evaluation (n <= 512: the Duals' tangents hold every direction) keeps the result
    banded; with chunks (700 inputs) the Dual write makes it dense."""
    y = np.linspace(0.3, 1.7, n)
    g = Probe(ode_boundaries)
    seen = []

    def f(y):
        r = g(y)
        seen.append(r._banded)
        return r

    J, J_dense = both(lambda: duals.jacobian(f, y))
    assert same(J, J_dense)
    assert seen[0] is (n <= 512)
    want = cs_jacobian(lambda z: ode_boundaries(z.astype(complex)), y) if n == 70 else None
    if want is not None:
        np.testing.assert_allclose(J, want, rtol=1e-14, atol=1e-14)


def test_an_element_of_a_banded_array_is_its_dense_column():
    seen = {}

    def f(y):
        z = np.concatenate([y[1:], y[:1]]) * np.linspace(1.0, 2.0, y.size)
        if not seen:
            d = z[7]
            seen["banded"] = z._banded  # still banded after the read
            seen["d"] = (d.primal, np.array(d.tangent))
            seen["t"] = z._t[:, 7].copy()
            seen["p"] = z._p[7]
        return z

    duals.jacobian(f, np.linspace(0.5, 1.5, 200), chunk=40)
    assert seen["banded"] is True
    assert seen["d"][0] == seen["p"]
    np.testing.assert_array_equal(seen["d"][1], seen["t"])


def test_banded_writes_keep_the_result_banded():
    seen = []

    def f(y):
        dy = np.zeros_like(y)
        dy[1:-1] = y[:-2] * y[2:]
        dy[0] = 2.0
        seen.append(dy._banded)
        return dy

    y = np.linspace(0.5, 1.5, 100)
    J = duals.jacobian(f, y)
    assert seen == [True]
    want = np.zeros((100, 100))
    i = np.arange(1, 99)
    want[i, i - 1] = y[2:]
    want[i, i + 1] = y[:-2]
    np.testing.assert_array_equal(J, want)


def test_the_input_is_not_changed():
    y = np.linspace(0.3, 1.7, 100)
    before = y.copy()
    duals.jacobian(in_place_on_views, y)
    np.testing.assert_array_equal(y, before)


# ------------------------------------------------------------------------------------------------
# Drivers and what stays dense
# ------------------------------------------------------------------------------------------------


def test_grad_of_a_banded_vector_output_says_jacobian():
    with pytest.raises(ValueError, match="grad needs f to return a scalar.*jacobian"):
        duals.grad(lambda y: y * 2.0, np.linspace(0.0, 1.0, 100))


def test_grad_of_a_sum_is_dense_and_right():
    y = np.linspace(0.1, 1.0, 100)
    g, g_dense = both(lambda: duals.grad(lambda z: np.sum(z[1:] * z[:-1]), y))
    assert same(g, g_dense)
    want = np.zeros(100)
    want[:-1] += y[1:]
    want[1:] += y[:-1]
    np.testing.assert_allclose(g, want, rtol=1e-15)


def test_small_and_2d_inputs_are_not_banded():
    seen = []

    def f(y):
        seen.append(y._banded)
        return y * 2.0

    duals.jacobian(f, np.ones(10))  # 10 * 10 tangent elements: dense
    duals.jacobian(f, np.ones((10, 10)))  # 2-d: dense
    duals.jacobian(f, np.ones(100))
    assert seen == [False, False, True]


def test_dense_tangent_of_a_banded_array_is_the_seed_window():
    """Read as ``_t``, a banded array's tangent is the dense ``(K, n)`` of its seed's rows."""
    seen = {}

    def f(y):
        z = np.concatenate([y[1:], np.zeros(1)]) * 3.0
        if not seen:  # the first evaluation (then the other chunks, dense: z was read)
            seen["banded"] = z._banded
            seen["t"] = z._t.copy()
            seen["after"] = z._banded
        return z

    J = duals.jacobian(f, np.ones(200), chunk=40)
    np.testing.assert_array_equal(J, np.eye(200, k=1) * 3.0)
    assert seen["banded"] is True and seen["after"] is False
    want = np.zeros((40, 200))
    want[np.arange(1, 40), np.arange(0, 39)] = 3.0
    np.testing.assert_array_equal(seen["t"], want)


def test_off_turns_banded_seeds_off():
    assert _native._banded() is True
    with banded(False):
        assert _native._banded() is False
    assert _native._banded() is True


# ------------------------------------------------------------------------------------------------
# Random programs (hypothesis): banded equals dense
# ------------------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

BINARY = [np.add, np.subtract, np.multiply, np.divide]
RULES = [np.sin, np.exp, np.log1p, np.sqrt, np.tanh, np.arctan, np.cbrt, np.reciprocal, np.abs]

step = st.one_of(
    st.tuples(st.just("bin"), st.integers(0, 3), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("num"), st.integers(0, 3), st.integers(0, 99), st.booleans()),
    st.tuples(st.just("rule"), st.integers(0, len(RULES) - 1), st.integers(0, 99)),
    st.tuples(st.just("shift"), st.integers(-5, 5), st.integers(0, 99), st.booleans()),
    st.tuples(st.just("roll"), st.integers(-7, 7), st.integers(0, 99)),
    st.tuples(st.just("pow"), st.sampled_from([2, 3, -1, 0.5, 1.5]), st.integers(0, 99)),
    st.tuples(st.just("diff"), st.integers(0, 99)),
    st.tuples(st.just("put"), st.integers(0, 99), st.integers(0, 99), st.integers(0, 5)),
    st.tuples(st.just("assign"), st.integers(0, 99), st.integers(0, 99), st.integers(1, 9)),
    st.tuples(st.just("iadd"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("element"), st.integers(0, 99), st.integers(0, 5)),
    st.tuples(st.just("buffer"), st.integers(0, 99), st.integers(0, 99), st.integers(0, 7)),
    st.tuples(st.just("boundary"), st.integers(0, 99), st.integers(0, 99), st.integers(-9, 9)),
)


def random_program(steps):
    def f(y):
        n = y.shape[0]
        pool = [y, y[: n // 2], y[n // 2 :]]
        pool = [y, np.concatenate([pool[2], pool[1]])]

        def pick(i):
            return pool[i % len(pool)]

        for s in steps:
            kind = s[0]
            if kind == "bin":
                r = BINARY[s[1]](pick(s[2]), pick(s[3]))
            elif kind == "num":
                c = 0.75 + 0.5 * (s[2] % 3)
                r = BINARY[s[1]](c, pick(s[2])) if s[3] else BINARY[s[1]](pick(s[2]), c)
            elif kind == "rule":
                x = pick(s[2])
                r = RULES[s[1]](x * x + 0.5)
            elif kind == "shift":
                x, k = pick(s[2]), abs(s[1])
                if k == 0:
                    r = x * 1.0
                elif s[1] > 0:
                    pad = np.ones_like(x[:k]) * 2.0 if s[3] else np.full(k, 3.0)
                    r = np.concatenate([pad, x[:-k]])
                else:
                    pad = np.zeros_like(x[:k]) if s[3] else np.linspace(0.0, 1.0, k)
                    r = np.concatenate([x[k:], pad])
            elif kind == "roll":
                r = np.roll(pick(s[2]), s[1])
            elif kind == "pow":
                r = (pick(s[2]) * pick(s[2]) + 1.0) ** s[1]
            elif kind == "diff":
                x = pick(s[1])
                r = np.concatenate([np.diff(x), x[:1]])
            elif kind == "put":  # a Dual written into a copy (and a view's write into its base)
                r = pick(s[1]) * 1.0
                v = r[s[3] :]
                v[0] = pick(s[2])[s[3]] * 2.0
            elif kind == "assign":  # a slice of another array assigned into a copy
                r = pick(s[1]) * 1.0
                k = s[3]
                r[k:] = pick(s[2])[:-k] * 0.5
            elif kind == "iadd":  # in place on a view
                r = pick(s[1]) - 0.0
                w = r[3:]
                w += pick(s[2])[3:]
            elif kind == "buffer":  # slices written into a zeros_like buffer, views before
                r = np.zeros_like(pick(s[1]))
                v = r[s[3] :]
                k = s[3] + 1
                r[k:] = pick(s[1])[:-k] * pick(s[2])[k:]
                r[: s[3]] = 0.5
                pool.append(np.concatenate([r[: s[3]], v * 2.0]))
            elif kind == "boundary":  # a Dual written into an element of a copy
                r = pick(s[1]) * 1.0
                r[s[3]] = pick(s[2])[s[3] + 1] * pick(s[1])[s[3]] - 1.0
            else:  # element: a Dual from an array, times another
                r = pick(s[1]) * pick(s[1])[s[2]]
            pool.append(r)
        return sum(pool[1:], pool[0])

    return f


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=10), chunk=st.sampled_from([None, 41, 100]))
def test_random_programs_banded_equal_dense(steps, chunk):
    f = random_program(steps)
    y = np.linspace(0.5, 2.0, 100)
    J, J_dense = both(lambda: duals.jacobian(f, y, chunk=chunk))
    assert same(J, J_dense)
