"""DualArray's native number protocol (``_DualArrayBase`` in rust/duals-py/src/dual.rs) against
the Python implementation it short-cuts (``duals._core.add``, ``sub``, ``mul``, ``div``).

The fast paths take DualArrays of one seed (first or second order) and one shape, Duals of a
first-order seed, Python
floats and ints, NumPy float64 scalars and float64 ndarrays of the same shape (or 0-d), on either
side; everything else (broadcasting, other dtypes, traced arrays, mixed seeds) calls the Python
implementation, and so do results whose values are not all finite (so NumPy's
error state applies to values as in Python). Sums, differences, and products and quotients with a
constant are bit-identical to the Python implementation; products and quotients of two dual
operands may differ in the last bits (the kernels fuse a multiply-add). Second-order seeds
(hyper-dual arrays, ``crate::hyper``) are bit-identical for every operation, ufuncs of the rule
table included; see the last section.
"""

from __future__ import annotations

import operator
import warnings

import mpmath
import numpy as np
import pytest
from derivref import mp_diff, mp_hessian2

import duals
from duals import _core, _functions, _ufuncs  # noqa: F401 (imported before any patching)

OPS = {
    "add": (operator.add, _core.add, np.add),
    "sub": (operator.sub, _core.sub, np.subtract),
    "mul": (operator.mul, _core.mul, np.multiply),
    "div": (operator.truediv, _core.div, np.divide),
}
SHAPES = [(1,), (3,), (17,), (4, 5)]
KS = [1, 3]
CONSTANTS = [2, -3, True, 2.5, np.float64(-1.5), np.array(0.75)]

_PYTHON = {name: getattr(_core, name) for name in ("add", "sub", "mul", "div")}


def _python(name, a, b):
    """The Python implementation (warnings off, as inside the drivers)."""
    with np.errstate(all="ignore"):
        return _PYTHON[name](a, b)


def _arrays(shape, k, seed=None, positive=True, rng_seed=0):
    """Two DualArrays of ``shape`` with ``k`` tangents and one seed object."""
    rng = np.random.default_rng(rng_seed)
    seed = _core.Seed.first(k) if seed is None else seed
    lo = 0.5 if positive else -2.0

    def one():
        p = rng.uniform(lo, 2.0, shape)
        t = rng.uniform(lo, 2.0, (k,) + shape)
        return _core._make(p, t, seed)

    return one(), one()


@pytest.fixture
def native_only(monkeypatch):
    """Makes the Python implementation fail: what runs under it took a native path."""

    def fail(*args):
        raise AssertionError("the Python implementation ran")

    for name in _PYTHON:
        monkeypatch.setattr(_core, name, fail)
    monkeypatch.setattr(_core._DualBase, "__neg__", fail)


@pytest.fixture
def python_calls(monkeypatch):
    """Counts the calls of the Python implementation (the operators' and the ufuncs')."""
    calls = []

    def counting(name):
        def f(a, b):
            calls.append(name)
            return _PYTHON[name](a, b)

        return f

    for name in _PYTHON:
        monkeypatch.setattr(_core, name, counting(name))
    names = {ufunc.__name__: name for name, (_, _, ufunc) in OPS.items()}
    array_ufunc = _ufuncs.array_ufunc

    def counting_ufunc(ufunc, method, inputs, kwargs):
        calls.append(names.get(ufunc.__name__, ufunc.__name__))
        return array_ufunc(ufunc, method, inputs, kwargs)

    monkeypatch.setattr(_ufuncs, "array_ufunc", counting_ufunc)
    return calls


def _assert_same(got, want, exact=True, scale=None):
    """``got`` equals ``want`` (a DualArray result of the Python path): type, shape, seed and
    values, bit for bit (NaNs of either sign alike) or within a few ulps of ``scale``."""
    assert type(got) is duals.DualArray
    assert got.shape == want.shape
    assert got._s == want._s
    assert got.tangent.shape == want.tangent.shape
    assert got.tangent.flags.c_contiguous and got.tangent.flags.writeable
    for g, w, s in ((got.primal, want.primal, None), (got.tangent, want.tangent, scale)):
        if exact:
            np.testing.assert_array_equal(g, w)
            finite = np.isfinite(w)
            assert np.array_equal(np.signbit(g[finite]), np.signbit(w[finite]))
        else:
            s = np.abs(w) if s is None else s
            np.testing.assert_array_less(np.abs(g - w), 8 * np.finfo(float).eps * s + 1e-300)


def _terms(name, a, b):
    """The magnitude of the terms of a product or quotient tangent (the scale of its rounding)."""
    (pa, ta, _), (pb, tb, _) = _core._parts(a), _core._parts(b)
    nd = max(np.ndim(pa), np.ndim(pb))
    ta, tb = _core._expand(ta, nd), _core._expand(tb, nd)
    if name == "mul":
        return np.abs(ta * pb) + np.abs(pa * tb)
    f = pa / pb
    return (np.abs(ta) + np.abs(f * tb)) / np.abs(pb)


# ------------------------------------------------------------------------------------------------
# DualArray with DualArray
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("k", KS)
def test_array_with_array(name, shape, k, native_only):
    x, y = _arrays(shape, k, positive=False)
    op, _, ufunc = OPS[name]
    want = _python(name, x, y)
    exact = name in ("add", "sub")
    scale = None if exact else _terms(name, x, y)
    _assert_same(op(x, y), want, exact, scale)
    _assert_same(ufunc(x, y), want, exact, scale)
    # one operand twice
    _assert_same(op(x, x), _python(name, x, x), exact, None if exact else _terms(name, x, x))


@pytest.mark.parametrize("name", OPS)
def test_seeds_equal_by_value_take_the_fast_path(name, native_only):
    x, _ = _arrays((3,), 2, seed=_core.Seed.first(2))
    _, y = _arrays((3,), 2, seed=_core.Seed.first(2))
    assert x._s is not y._s
    got = OPS[name][0](x, y)
    assert got._s is x._s  # the first operand's seed, as _core._seed_of
    _assert_same(got, _python(name, x, y), exact=False, scale=_terms(name, x, y))


@pytest.mark.parametrize("name", OPS)
def test_strided_operands(name, native_only):
    x, y = _arrays((4, 6), 3, positive=False)
    views = [(x[:, 1:4], y[:, ::2]), (x[::-1, ::2], y[:, 3:]), (x.T[:3, :2], y[:2, 3:].T)]
    for a, b in views:
        assert not a.tangent.flags.c_contiguous
        want = _python(name, a, b)
        exact = name in ("add", "sub")
        _assert_same(OPS[name][0](a, b), want, exact, None if exact else _terms(name, a, b))
        c = np.arange(1.0, 1.0 + b.size).reshape(b.shape)
        f = np.asfortranarray(c)  # a strided constant
        _assert_same(OPS[name][0](a, f), _python(name, a, c))


def test_results_are_new_arrays(native_only):
    x, _ = _arrays((3,), 2)
    for r in (x + 0, 0.0 + x, x * 1, x / 1.0, x - 0.0, operator.neg(-x)):
        assert not np.shares_memory(r.tangent, x.tangent)
        assert not np.shares_memory(r.primal, x.primal)
        np.testing.assert_array_equal(r.tangent, x.tangent)


def test_negation(native_only):
    x = _core._make(
        np.array([0.0, -0.0, 1.5, np.inf]),
        np.array([[0.0, 1.0, -2.0, np.nan]]),
        _core.Seed.first(1),
    )
    got = -x
    assert type(got) is duals.DualArray
    np.testing.assert_array_equal(got.primal, -x.primal)
    np.testing.assert_array_equal(np.signbit(got.primal), [True, False, True, True])
    np.testing.assert_array_equal(np.signbit(got.tangent[0, :3]), [True, True, False])
    np.testing.assert_array_equal(got.tangent, -x.tangent)
    _assert_same(np.negative(x), got)


# ------------------------------------------------------------------------------------------------
# DualArray with constants and Duals
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("const", CONSTANTS, ids=repr)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("k", KS)
def test_array_with_scalar_constants_on_both_sides(name, const, shape, k, native_only):
    x, _ = _arrays(shape, k, positive=False)
    op = OPS[name][0]
    _assert_same(op(x, const), _python(name, x, const))
    _assert_same(op(const, x), _python(name, const, x))


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("k", KS)
def test_array_with_ndarray_of_the_same_shape(name, shape, k, native_only):
    x, _ = _arrays(shape, k, positive=False)
    c = np.random.default_rng(5).uniform(-2.0, 2.0, shape)
    op, _, ufunc = OPS[name]
    _assert_same(op(x, c), _python(name, x, c))
    # ndarray op DualArray: NumPy calls np.<ufunc>(c, x), DualArray.__array_ufunc__
    _assert_same(op(c, x), _python(name, c, x))
    _assert_same(ufunc(c, x), _python(name, c, x))
    _assert_same(ufunc(x, c), _python(name, x, c))


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("k", KS)
def test_array_with_dual_on_both_sides(name, k, native_only):
    x, y = _arrays((5,), k, positive=False)
    d = y[2]
    assert isinstance(d, duals.Dual)
    op, _, ufunc = OPS[name]
    exact = name in ("add", "sub")
    for a, b in ((x, d), (d, x)):
        want = _python(name, a, b)
        scale = None if exact else _terms(name, a, b)
        _assert_same(op(a, b), want, exact, scale)
        _assert_same(ufunc(a, b), want, exact, scale)


def test_division_by_zero_nan_and_inf_as_python():
    p = np.array([0.0, -0.0, 1.0, -2.0, np.inf, -np.inf, np.nan])
    t = np.array([[0.0, 1.0, -0.0, np.inf, 1.0, 0.0, 1.0], [1.0, 0.0, 2.0, -1.0, np.nan, 0.0, 0.0]])
    seed = _core.Seed.first(2)
    x = _core._make(p, t, seed)
    y = _core._make(p[::-1].copy(), t[:, ::-1].copy(), seed)
    with np.errstate(all="ignore"):
        for c in (0.0, -0.0, 0, np.inf, -np.inf, np.nan, np.array(0.0)):
            _assert_same(x / c, _python("div", x, c))
            _assert_same(c / x, _python("div", c, x))
            _assert_same(x * c, _python("mul", x, c))
            _assert_same(x - c, _python("sub", x, c))
        for a, b in ((x, y), (y, x), (x, x)):
            for name, (op, _, _) in OPS.items():
                _assert_same(op(a, b), _python(name, a, b))
        _assert_same(x / np.zeros(7), _python("div", x, np.zeros(7)))


def test_values_follow_numpys_error_state_as_python():
    x, y = _arrays((3,), 2)
    zero = x - x
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            x / zero
        with pytest.raises(FloatingPointError):
            1.0 / zero
        with pytest.raises(FloatingPointError):
            x / 0.0
        _assert_same(x / y, _python("div", x, y), exact=False, scale=_terms("div", x, y))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        x * 1e308 * 1e10
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        x / 0.0
    # inside the drivers: no warnings, IEEE values
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        j = duals.jacobian(lambda z: 1.0 / (z - z[::-1]), np.array([1.0, 2.0, 3.0]))
    assert np.isinf(j[1, 1]) or np.isnan(j[1, 1])
    np.testing.assert_array_equal(j[0], [-1.0 / 4.0, 0.0, 1.0 / 4.0])


def test_tangents_are_computed_quietly(native_only):
    # finite values, infinite tangents: 0 * inf in the tangent is NaN, natively, without a
    # warning (the Python product rule would warn, and raise under errstate(invalid="raise"))
    x = _core._make(np.array([1.0, 2.0]), np.array([[np.inf, 1.0]]), _core.Seed.first(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(invalid="raise"):
            r = x * 0.0
    np.testing.assert_array_equal(r.primal, [0.0, 0.0])
    np.testing.assert_array_equal(r.tangent, [[np.nan, 0.0]])


def test_large_arrays_release_the_gil_on_copies():
    # n (K + 1) above the detach threshold (1 << 22): the kernel runs on private copies
    n, k = (1 << 20) + 1, 3
    seed = _core.Seed.first(k)
    x = _core._make(np.linspace(1.0, 2.0, n), np.ones((k, n)), seed)
    y = _core._make(np.linspace(2.0, 3.0, n), np.full((k, n), 0.5), seed)
    _assert_same(x + y, _python("add", x, y))
    _assert_same(x * y, _python("mul", x, y), exact=False, scale=_terms("mul", x, y))
    _assert_same(2.0 - x[::-1], _python("sub", 2.0, x[::-1]))


# ------------------------------------------------------------------------------------------------
# What takes the Python path, and still works
# ------------------------------------------------------------------------------------------------


def test_mixed_seeds_raise_the_python_error():
    x, _ = _arrays((3,), 3)
    _, y = _arrays((3,), 2)
    d = y[0]
    for a, b in ((x, y), (y, x), (x, d), (d, x)):
        for name, (op, _, ufunc) in OPS.items():
            with pytest.raises(ValueError) as want:
                _python(name, a, b)
            with pytest.raises(ValueError) as got:
                op(a, b)
            assert str(got.value) == str(want.value)
            assert "different tangent layouts" in str(got.value)
            with pytest.raises(ValueError):
                ufunc(a, b)


@pytest.mark.parametrize("name", OPS)
def test_broadcasting_and_other_operands_take_the_python_path(name, python_calls):
    seed = _core.Seed.first(2)
    x, y = _arrays((3,), 2, seed=seed)
    m, _ = _arrays((4, 3), 2, seed=seed)
    one, _ = _arrays((1,), 2, seed=seed)
    empty = _core._make(np.zeros(0), np.zeros((2, 0)), seed)
    op = OPS[name][0]
    cases = [
        (empty, empty),  # no elements
        (x, m),  # (3,) with (4, 3)
        (m, x),
        (one, x),  # (1,) with (3,)
        (x, np.arange(1.0, 4.0).reshape(1, 3)),  # an ndarray that broadcasts
        (x, np.arange(1, 4)),  # an int ndarray
        (x, [1.0, 2.0, 3.0]),  # a list
        (x, np.float32(2.0)),  # another NumPy scalar type
        (np.float32(2.0), x),
        (x, 2**70),  # an int beyond int64
    ]
    for a, b in cases:
        del python_calls[:]
        try:
            got = op(a, b)
        except TypeError as e:
            with pytest.raises(TypeError) as want:
                _python(name, a, b)
            assert str(e) == str(want.value)
            continue
        assert python_calls == [name]
        want = _python(name, a, b)
        if isinstance(want, duals.DualArray):
            _assert_same(got, want)
        else:
            np.testing.assert_array_equal(got, want)


def test_ufunc_keywords_take_the_python_path():
    x, y = _arrays((3,), 2)
    out = np.zeros_like(x)
    r = np.multiply(x, y, out=out)
    assert r is out
    _assert_same(out, _python("mul", x, y))
    r = np.add(x, y, dtype=np.float64)
    _assert_same(r, _python("add", x, y))


def test_zero_d_arrays_take_the_python_path(python_calls):
    seed = _core.Seed.first(2)
    x = _core._new_array(duals.DualArray, np.array(2.0), np.array([1.0, 0.0]), seed)
    r = x * 3.0
    assert python_calls == ["mul"]
    assert isinstance(r, duals.Dual) and r.primal == 6.0


def test_traced_arrays_are_unaffected():
    def f(x):
        y = 2.0 * x - x / 3.0 + 1.0
        z = x * x[::-1] - (-x) / (x + 4.0)
        w = np.full(x.shape, 0.5) * z + z / np.arange(1.0, 1.0 + x.size) - 2.0 / (1.0 + x * x)
        return y * w - x[0] * z + x / x[1] - np.subtract(1.0, x) * np.negative(w)

    x = np.array([0.3, -1.2, 2.1, 0.8])
    c = duals.compile(f, x)
    np.testing.assert_allclose(c.value(x), f(x), rtol=1e-13)
    np.testing.assert_allclose(c.jacobian(x), duals.jacobian(f, x), rtol=1e-12, atol=1e-14)
    x2 = x + 0.25
    np.testing.assert_allclose(c.jacobian(x2), duals.jacobian(f, x2), rtol=1e-12, atol=1e-14)


def test_second_order_seeds_run_natively(python_calls):
    def g(x):
        y = 3.0 * x * x - x / 2.0 + 1.0 / (x + 3.0) - (-x) * x[::-1]
        return np.sum(y * x)

    # g = sum(3 x^3 - x^2 / 2 + x / (x + 3)) + x0^2 x2 + x1^3 + x2^2 x0
    x = np.array([0.4, -0.7, 1.3])
    want = np.diag(18.0 * x - 1.0 - 6.0 / (x + 3.0) ** 3)
    want += [
        [2.0 * x[2], 0.0, 2.0 * (x[0] + x[2])],
        [0.0, 6.0 * x[1], 0.0],
        [2.0 * (x[0] + x[2]), 0.0, 2.0 * x[0]],
    ]
    np.testing.assert_allclose(duals.hessian(g, x), want, rtol=1e-13, atol=1e-13)
    assert python_calls == []  # second-order arithmetic runs natively (crate::hyper)
    np.testing.assert_allclose(duals.hessian(lambda x: np.sum(-(x * x)), x), -2.0 * np.eye(3))


# ------------------------------------------------------------------------------------------------
# Views whose tangent rows are strided (x[:m] of a longer array): read in place
# ------------------------------------------------------------------------------------------------


def _row_views(k, rng_seed=3):
    """Views of a (k, 12)-tangent DualArray whose rows are each contiguous, 12 apart (rows read
    in place), and two whose rows are not (copied): all of 5 elements."""
    x, y = _arrays((12,), k, positive=False, rng_seed=rng_seed)
    z, _ = _arrays((2, 12), k, positive=False, rng_seed=rng_seed + 1)
    return [x[:5], x[7:], y[3:8], z[1, 2:7], x[::2][:5], x[9:4:-1]]


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("k", [1, 2, 5])
def test_strided_rows_are_bit_identical_to_contiguous_copies(name, k, native_only):
    views = _row_views(k)
    for a in views:
        for b in views:
            for x, y in ((a, b), (a, 2.5), (-3, a), (a, b.primal), (a.primal.copy(), b)):
                got = OPS[name][0](x, y)
                xc = x.copy() if isinstance(x, duals.DualArray) else x
                yc = y.copy() if isinstance(y, duals.DualArray) else y
                _assert_same(got, OPS[name][0](xc, yc))
    _assert_same(-views[1], -views[1].copy())


def test_strided_rows_of_two_dimensional_elements(native_only):
    # rows of a (k, 3, 8) tangent cut to (k, 2, 8): each row a contiguous block of 16
    x, y = _arrays((3, 8), 4, positive=False)
    a, b = x[:2], y[1:]
    assert not a.tangent.flags.c_contiguous
    for op, _, _ in OPS.values():
        _assert_same(op(a, b), op(a.copy(), b.copy()))
    # a block of rows that is not contiguous: copied, the same result
    _assert_same(x[:, :5] * y[:, 3:], x[:, :5].copy() * y[:, 3:].copy())


def test_strided_rows_released_gil_path_is_bit_identical():
    # above the detach threshold, the strided rows are gathered into private copies
    n, k = (1 << 19) + 3, 9
    seed = _core.Seed.first(k)
    x = _core._make(np.linspace(1.0, 2.0, 2 * n), np.ones((k, 2 * n)), seed)
    a, b = x[:n], x[n:]
    for op, _, _ in OPS.values():
        _assert_same(op(a, b), op(a.copy(), b.copy()))


# ------------------------------------------------------------------------------------------------
# Large tangent blocks: split in two blocks of rows, the second on a helper thread
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("k", [2, 65])
def test_split_kernels_are_bit_identical_to_blocks_of_rows(name, k, native_only):
    # k * n above the split threshold (1 << 14); each block of 8 rows alone runs unsplit
    n = 1000 if k == 65 else 9000
    x, y = _arrays((n,), k, positive=False, rng_seed=7)
    w, _ = _arrays((2 * n,), k, positive=False, rng_seed=8)
    op = OPS[name][0]
    for a, b in ((x, y), (w[:n], y), (x, w[n:]), (x, 2.5), (-1.5, w[1 : n + 1]), (x, y.primal)):
        got = op(a, b)
        for j0 in range(0, k, 8):
            rows = _core.Seed.first(min(k, j0 + 8) - j0)

            def block(v, j0=j0, rows=rows):
                if not isinstance(v, duals.DualArray):
                    return v
                return _core._make(v.primal, v.tangent[j0 : j0 + rows.K].copy(), rows)

            want = op(block(a), block(b))
            np.testing.assert_array_equal(got.primal, want.primal)
            np.testing.assert_array_equal(got.tangent[j0 : j0 + rows.K], want.tangent)


def test_split_concatenate_is_bit_identical():
    k, n = 40, 1000
    x, y = _arrays((n,), k, rng_seed=9)
    got = np.concatenate([x[:-1], np.ones(3), y[::-1], x[1:]])
    parts = [x[:-1], np.ones(3), y[::-1], x[1:]]
    np.testing.assert_array_equal(got.primal, np.concatenate([_core._parts(p)[0] for p in parts]))
    want_t = np.concatenate(
        [x.tangent[:, :-1], np.zeros((k, 3)), y.tangent[:, ::-1], x.tangent[:, 1:]], axis=1
    )
    np.testing.assert_array_equal(got.tangent, want_t)


def test_split_kernels_from_several_python_threads():
    # one split at a time; the others run unsplit: the same results
    import concurrent.futures

    x, y = _arrays((3000,), 16, positive=False, rng_seed=10)
    want = [(x * y).tangent, (x - y).tangent, (x / y).tangent]

    def work(_):
        return [(x * y).tangent, (x - y).tangent, (x / y).tangent]

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for got in ex.map(work, range(40)):
            for g, w in zip(got, want, strict=True):
                np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------------------------------------------
# Second-order seeds (hyper-dual arrays: rust/duals-py/src/hyper.rs, kernels::hyper_*)
# ------------------------------------------------------------------------------------------------

AWKWARD = np.array([0.0, -0.0, 5e-324, -2.5e-308, 1e-300, 1e300, -1e154, 0.5, -3.0, 7.25])
NONFINITE = np.array([np.inf, -np.inf, np.nan])
HYPER_SEEDS = [(1, 1), (2, 3), (3, 1)]


def _bits_of(a):
    """The bits of float64 values, NaNs made one value (their payloads are not compared)."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isnan(a), np.nan, a).view(np.uint64)


def _assert_bits(got, want):
    assert type(got) is type(want)
    assert got._s == want._s
    np.testing.assert_array_equal(_bits_of(got._p), _bits_of(want._p))
    np.testing.assert_array_equal(_bits_of(got._t), _bits_of(want._t))


def _hyper(primal, k1, k2, rng, awkward=True):
    """A second-order DualArray of ``primal`` with random tangents (some zeros, -0 and, with
    ``awkward``, tiny and huge values)."""
    seed = _core.Seed.second(k1, k2)
    p = np.asarray(primal, dtype=np.float64)
    t = rng.uniform(-2.0, 2.0, (seed.K,) + p.shape)
    if awkward and t.size >= 4:
        flat = t.reshape(-1)
        flat[rng.choice(flat.size, size=max(1, flat.size // 5), replace=False)] = 0.0
        flat[rng.choice(flat.size, size=max(1, flat.size // 7), replace=False)] = -0.0
        flat[rng.choice(flat.size, size=1)] = 1e-310
        flat[rng.choice(flat.size, size=1)] = 3e200
    return _core._make(p, t, seed)


def _primals(rng, n, values):
    return rng.permutation(np.resize(values, n))


@pytest.fixture
def hyper_native(monkeypatch):
    """Makes the Python implementation of arithmetic and ufuncs fail."""

    def fail(*args):
        raise AssertionError("the Python implementation ran")

    for name in _PYTHON:
        monkeypatch.setattr(_core, name, fail)
    monkeypatch.setattr(_ufuncs, "unary", fail)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("k1, k2", HYPER_SEEDS)
@pytest.mark.parametrize("shape", [(10,), (2, 5)])
def test_hyper_arithmetic_is_bit_identical(name, k1, k2, shape):
    rng = np.random.default_rng(k1 * 10 + k2)
    op, _, ufunc = OPS[name]
    n = int(np.prod(shape))
    a = _hyper(_primals(rng, n, AWKWARD).reshape(shape), k1, k2, rng)
    b = _hyper(_primals(rng, n, AWKWARD[::-1]).reshape(shape), k1, k2, rng)
    c = rng.uniform(-3.0, 3.0, shape)
    c[0] = -0.0
    operands = [
        (a, b),
        (a, a),
        (b, a),
        (a, c),
        (c, a),
        (a, 2.5),
        (-0.0, a),
        (a, 3),
        (np.float64(-1.5), b),
    ]
    for x, y in operands:
        want = _python(name, x, y)
        with np.errstate(all="ignore"):
            _assert_bits(op(x, y), want)
            _assert_bits(ufunc(x, y), want)


@pytest.mark.parametrize("name", OPS)
def test_hyper_arithmetic_runs_natively(name, hyper_native):
    rng = np.random.default_rng(1)
    op = OPS[name][0]
    a = _hyper(rng.uniform(0.5, 2.0, (3, 4)), 2, 3, rng)
    b = _hyper(rng.uniform(0.5, 2.0, (3, 4)), 2, 3, rng)
    for x, y in [(a, b), (a, 2.0), (1.5, b), (a, np.full((3, 4), 0.25)), (a[:, 1:], b[:, :-1])]:
        op(x, y)
    a**2  # noqa: B018 (the product rule)
    -a  # noqa: B018


@pytest.mark.parametrize("name", OPS)
def test_hyper_nonfinite_values_take_the_python_path(name):
    # values and tangents that are not finite: the Python implementation, with its warnings
    rng = np.random.default_rng(2)
    op = OPS[name][0]
    a = _hyper(_primals(rng, 9, np.concatenate([NONFINITE, [0.0, 1.0, -2.0]])), 1, 2, rng)
    b = _hyper(_primals(rng, 9, [0.0, -0.0, 1e300, 2.0]), 1, 2, rng)
    for x, y in [(a, b), (b, a), (b, b), (b, 0.0)]:
        with np.errstate(all="ignore"):
            want = _python(name, x, y)
            _assert_bits(op(x, y), want)
    if name in ("mul", "div"):
        with pytest.warns(RuntimeWarning):
            op(b, b)  # 1e300 * 1e300, 0 / 0: NumPy's warnings as in Python


def test_hyper_division_by_zero_raises_under_errstate():
    rng = np.random.default_rng(3)
    a = _hyper(np.array([1.0, 2.0]), 1, 1, rng)
    b = _hyper(np.array([0.0, 2.0]), 1, 1, rng)
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        a / b


def test_hyper_mixed_seeds_error_is_unchanged():
    rng = np.random.default_rng(4)
    a = _hyper(np.ones(3), 1, 2, rng)
    b = _hyper(np.ones(3), 2, 1, rng)
    c = _core._make(np.ones(3), np.ones((1, 3)), _core.Seed.first(1))
    for x, y in [(a, b), (a, c), (c, a)]:
        with pytest.raises(ValueError, match="different tangent layouts"):
            x * y


def _domain_values(rule):
    """Points in the domain of a rule of the table, zeros and tiny values where they are in it."""
    if rule in ("acos", "asin", "atanh"):
        return np.array([0.0, -0.0, 5e-324, 0.5, -0.75, 0.999, 1e-300])
    if rule in ("acosh",):
        return np.array([1.5, 2.0, 1e300, 10.0])
    if rule in ("ln", "log2", "log10", "sqrt", "cbrt", "recip"):
        return np.array([0.5, 2.0, 1e-300, 1e300, 5e-324, 3.0])
    return np.array([0.0, -0.0, 5e-324, 1e-300, 0.5, -1.25, 3.0, 20.0])


@pytest.mark.parametrize("ufunc_name", sorted(_ufuncs._UNARY_RULES))
def test_hyper_ufuncs_are_bit_identical(ufunc_name):
    rule = _ufuncs._UNARY_RULES[ufunc_name]
    ufunc = getattr(np, ufunc_name, None)
    if ufunc is None:
        pytest.skip(f"numpy has no {ufunc_name}")
    rng = np.random.default_rng(5)
    for k1, k2 in HYPER_SEEDS:
        values = _domain_values(rule)
        x = _hyper(np.concatenate([values, values[:3]]), k1, k2, rng)
        for arg in (x, x[::2], x.reshape(1, -1).T[:, 0]):
            with np.errstate(all="ignore"):
                want = _core.unary(rule, arg)
                _assert_bits(ufunc(arg), want)


def test_hyper_ufuncs_run_natively(hyper_native):
    rng = np.random.default_rng(6)
    x = _hyper(rng.uniform(0.5, 2.0, (2, 3)), 2, 2, rng)
    for f in (np.sin, np.exp, np.log, np.sqrt, np.tanh, np.square, np.arctan):
        f(x)


def test_hyper_ufuncs_nonfinite_take_the_python_path():
    rng = np.random.default_rng(7)
    x = _hyper(np.array([0.0, -1.0, np.inf, np.nan, 2.0]), 1, 1, rng)
    with np.errstate(all="ignore"):
        for f, rule in ((np.log, "ln"), (np.sqrt, "sqrt"), (np.exp, "exp")):
            _assert_bits(f(x), _core.unary(rule, x))


def _rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2, axis=0)


def _mixed(x):
    y = x.reshape(-1)
    return np.sum(np.sin(y) * np.exp(-y / 3.0) / (1.5 + y * y) + np.sqrt(2.0 + (y[::-1] * y) ** 2))


@pytest.mark.parametrize("chunk", [None, 1, 4, 5, 6])
@pytest.mark.parametrize("f", [_rosen, _mixed])
def test_hyper_hessian_matches_compiled_and_references(f, chunk):
    # n = 5 inputs: chunk 1, k-1, k, k+1 (one block) of the Hessian driver
    x = np.array([0.3, -1.1, 0.7, 1.9, -0.4])
    H = duals.hessian(f, x, chunk=chunk)
    np.testing.assert_array_equal(H, H.T)
    np.testing.assert_allclose(H, duals.compile(f, x).hessian(x), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(H, duals.hessian(f, x), rtol=1e-14, atol=1e-13)
    v = np.linspace(-1.0, 1.0, 5)
    np.testing.assert_allclose(duals.hvp(f, x, v, chunk=chunk), H @ v, rtol=1e-12, atol=1e-12)


def test_hyper_hessian_against_mpmath():
    def f(x):
        return np.log(1.0 + x[0] ** 2) * np.tanh(x[1]) / (2.0 + np.cos(x[0] * x[1]))

    def fm(a, b):
        return mpmath.log(1 + a**2) * mpmath.tanh(b) / (2 + mpmath.cos(a * b))

    x = np.array([0.7, -1.3])
    np.testing.assert_allclose(duals.hessian(f, x), mp_hessian2(fm, *x), rtol=1e-13, atol=1e-14)


def test_hyper_second_derivative_shapes():
    def f(x):
        return np.sin(x) * np.exp(x) / x

    def fm(t):
        return mpmath.sin(t) * mpmath.exp(t) / t

    x = np.linspace(0.2, 2.0, 6)
    want = np.array([mp_diff(fm, v, 2) for v in x])
    np.testing.assert_allclose(duals.second_derivative(f, x), want, rtol=1e-13)
    x2 = x.reshape(2, 3)
    np.testing.assert_allclose(duals.second_derivative(f, x2), want.reshape(2, 3), rtol=1e-13)
    np.testing.assert_allclose(duals.second_derivative(f, x2.T), want.reshape(2, 3).T, rtol=1e-13)
    assert duals.second_derivative(f, float(x[1])) == pytest.approx(want[1], rel=1e-13)
    # a 2-d input to hessian, and non-contiguous input
    X = np.array([[0.3, -1.1], [0.7, 1.9]])
    H = duals.hessian(lambda x: _rosen(x.reshape(-1)), X.T)
    assert H.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(H.reshape(4, 4), duals.hessian(_rosen, X.T.reshape(-1)))


@pytest.mark.parametrize("k1, k2", HYPER_SEEDS)
def test_hyper_awkward_finite_values_run_natively(k1, k2, hyper_native):
    # zeros of both signs, subnormals and tiny values: native, and the bits of Python
    rng = np.random.default_rng(8)
    finite = np.array([0.0, -0.0, 5e-324, -2.5e-308, 1e-300, 0.5, -3.0, 7.25])
    a = _hyper(_primals(rng, 16, finite), k1, k2, rng)
    b = _hyper(_primals(rng, 16, finite[::-1]), k1, k2, rng)
    for name in ("add", "sub", "mul"):
        op = OPS[name][0]
        for x, y in [(a, b), (a, a), (a, -0.0), (0.0, b)]:
            _assert_bits(op(x, y), _python(name, x, y))
    for f, rule in ((np.sin, "sin"), (np.tanh, "tanh"), (np.square, None)):
        want = _python("mul", a, a) if rule is None else _core.unary(rule, a)
        _assert_bits(f(a), want)
