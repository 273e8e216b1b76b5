"""The Dual scalar: its native arithmetic agrees with the array arithmetic, and it behaves like
the number type it replaces (operands of every kind, comparisons, pickling, errors)."""

from __future__ import annotations

import copy
import operator
import pickle

import numpy as np
import pytest

import duals

X = np.array([0.7, -1.3, 2.5])


def _scalars(x=X):
    """The elements of a dual array seeded with the identity: Duals with 3 tangents."""
    a = duals.DualArray(x, np.eye(len(x)))
    return a, [a[i] for i in range(len(x))]


def _same(d, primal, tangent, rtol=1e-15):
    assert isinstance(d, duals.Dual)
    np.testing.assert_allclose(d.primal, primal, rtol=rtol)
    np.testing.assert_allclose(d.tangent, tangent, rtol=rtol, atol=1e-300)


BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]


@pytest.mark.parametrize("op", BINARY, ids=lambda o: o.__name__)
@pytest.mark.parametrize("const", [2.0, -3, True, np.float64(0.5)], ids=repr)
def test_dual_with_constants_on_both_sides_agrees_with_arrays(op, const):
    a, (d0, _, _) = _scalars()
    for left, right, aleft, aright in ((d0, const, a, const), (const, d0, const, a)):
        if op is operator.pow and left is const and const < 0:
            continue  # (-3) ** x: NaN (and a warning from the array path)
        got = op(left, right)
        want = op(aleft, aright)[0]
        _same(got, want.primal, want.tangent, rtol=1e-14)


@pytest.mark.parametrize("op", BINARY, ids=lambda o: o.__name__)
def test_dual_with_dual_agrees_with_arrays(op):
    x = np.abs(X)  # positive bases for pow
    a, (d0, d1, _) = _scalars(x)
    got = op(d0, d1)
    want = op(a[:1], a[1:2])[0]
    _same(got, want.primal, want.tangent, rtol=1e-14)


def test_unary_operators_and_ufuncs():
    a, (d0, d1, d2) = _scalars()
    _same(-d1, -X[1], [0, -1, 0])
    _same(+d1, X[1], [0, 1, 0])
    _same(abs(d1), abs(X[1]), [0, -1, 0])
    _same(np.sin(d2), np.sin(X[2]), [0, 0, np.cos(X[2])])
    _same(np.square(d0), X[0] ** 2, [2 * X[0], 0, 0])
    _same(np.multiply(2.0, d0), 2 * X[0], [2, 0, 0])
    _same(np.negative(d0), -X[0], [-1, 0, 0])
    _same(np.float64(3.0) * d0, 3 * X[0], [3, 0, 0])  # NumPy scalar on the left
    _same(2.0**d0, 2.0 ** X[0], [np.log(2) * 2.0 ** X[0], 0, 0])


def test_mixing_with_arrays_on_either_side():
    a, (d0, _, _) = _scalars()
    plain = np.array([1.0, 2.0])
    for r in (d0 * plain, plain * d0, d0 + a, a + d0):
        assert isinstance(r, duals.DualArray)
    np.testing.assert_allclose((plain * d0).tangent, [[1, 2], [0, 0], [0, 0]])
    np.testing.assert_allclose((a - d0).tangent[0], [0, -1, -1])


def test_comparisons_look_at_primals():
    a, (d0, d1, d2) = _scalars()
    assert d0 > d1 and d1 < d0 and d0 <= d0 and d0 >= 0.5 and d0 == 0.7 and d0 != d1
    assert bool(d0 < 1) and not (d2 < 1)
    np.testing.assert_array_equal(d0 < a, [False, False, True])
    np.testing.assert_array_equal(d0 > np.array([0.0, 1.0]), [True, False])


def test_hyper_dual_scalars_agree_with_arrays():
    # Hessians seed second-order tangents: linear operations on Duals run natively, the rest
    # in Python; the same function on 1-element slices (DualArrays) runs the array code.
    def f(x, take):
        x0, x1 = take(x)
        return (abs(x0 * x1 + 2.0 * x0 - x1 / 3.0) - 1.0) ** 2 / x1 + 2.0**x0 * (3 - x1)

    def scalars(x):
        return x[0], x[1]

    def slices(x):
        return x[0:1], x[1:2]

    for x in ([1.5, 2.0], [-0.5, 0.25]):
        H = duals.hessian(lambda z: f(z, scalars), x)
        Ha = duals.hessian(lambda z: f(z, slices)[0], x)
        np.testing.assert_allclose(H, Ha, rtol=1e-13)


def test_duals_of_two_seeds_do_not_mix():
    _, (d0, _, _) = _scalars()
    e = duals.Dual(1.0, 1.0)
    for op in (operator.add, operator.mul, operator.truediv):
        with pytest.raises(ValueError, match="different tangent layouts"):
            op(d0, e)


def test_pickle_and_copy():
    a, (d0, _, _) = _scalars()
    for obj in (d0 * 2.0, a):
        for clone in (pickle.loads(pickle.dumps(obj)), copy.copy(obj), copy.deepcopy(obj)):
            assert type(clone) is type(obj)
            np.testing.assert_array_equal(np.asarray(clone.primal), np.asarray(obj.primal))
            np.testing.assert_array_equal(clone.tangent, obj.tangent)
    assert (pickle.loads(pickle.dumps(d0)) * d0).primal == X[0] ** 2


def test_the_scalar_is_a_number_not_a_sequence():
    _, (d0, d1, _) = _scalars()
    with pytest.raises(TypeError):
        hash(d0)
    assert not hasattr(d0, "__len__") and not hasattr(d0, "__getitem__")
    assert not hasattr(d0, "__array__") and not hasattr(d0, "__iter__")
    assert np.array([d0, d1]).dtype == object
    assert (d0.shape, d0.ndim, d0.size, d0.ntangents) == ((), 0, 1, 3)
    assert repr(duals.Dual(2.0, 1.0)) == "Dual(2.0, 1.0)"
    assert repr(duals.Dual(2.0, [1.0, 0.5])) == "Dual(2.0, [1.0, 0.5])"
    with pytest.raises(TypeError, match="derivative"):
        round(d0)


def test_indexing_and_assignment_of_dual_arrays():
    a, (d0, d1, d2) = _scalars()
    _same(a[-1], X[2], [0, 0, 1])
    with pytest.raises(IndexError):
        a[3]
    out = np.zeros_like(a)
    out[1] = d0 * d1
    out[-1] = 4.0
    np.testing.assert_allclose(out.primal, [0, X[0] * X[1], 4.0])
    np.testing.assert_allclose(out.tangent[:, 1], [X[1], X[0], 0])
    np.testing.assert_allclose(out.tangent[:, 2], 0)
    with pytest.raises(ValueError, match="different tangent layouts"):
        out[0] = duals.Dual(1.0, 1.0)


@pytest.mark.parametrize(
    "view", [slice(None), slice(None, None, -1), slice(1, None, 2), slice(5, 0, -3)], ids=repr
)
def test_elements_of_strided_views_are_the_arrays_elements(view):
    p = np.linspace(-1.0, 2.0, 7)
    t = np.arange(21.0).reshape(3, 7) / 7.0
    v, pv, tv = duals.DualArray(p, t)[view], p[view], t[:, view]
    for i in range(-len(pv), len(pv)):
        d = v[i]
        assert d.primal == pv[i]
        np.testing.assert_array_equal(d.tangent, tv[:, i])
    with pytest.raises(IndexError):
        v[len(pv)]


@pytest.mark.parametrize("kind", ["list", "tuple", "array", "array2d", "mixed"])
def test_outputs_of_scalars_are_collected(kind):
    def f(x):
        items = [x[0] * x[1], np.sin(x[2]), x[0] ** 3]
        if kind == "tuple":
            return tuple(items)
        if kind == "array":
            return np.array(items)
        if kind == "array2d":
            return np.array([items[:2], [items[2], x[1]]])
        if kind == "mixed":
            return [items[0], 2.0, items[2]]
        return items

    J = duals.jacobian(f, X)
    row0, row2 = [X[1], X[0], 0], [3 * X[0] ** 2, 0, 0]
    if kind == "array2d":
        np.testing.assert_allclose(J[0, 0], row0)
        np.testing.assert_allclose(J[1, 0], row2)
        np.testing.assert_allclose(J[1, 1], [0, 1, 0])
        return
    np.testing.assert_allclose(J[0], row0, rtol=1e-15)
    np.testing.assert_allclose(J[1], [0, 0, np.cos(X[2])] if kind != "mixed" else [0, 0, 0])
    np.testing.assert_allclose(J[2], row2, rtol=1e-15)
    v, J2 = duals.value_and_jacobian(f, X)
    np.testing.assert_array_equal(J2, J)
    assert v.shape == (3,)
