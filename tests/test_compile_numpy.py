"""duals.compile on the NumPy functions scientific code uses.

For every supported function: the compiled value and Jacobian equal eager mode (``f(x)`` and
``duals.jacobian``) at the trace point and at points on the other side of its guards (where the
compiled object traces again) or of its selects (where it does not). Functions that cannot be
compiled raise TypeError naming them.
"""

from __future__ import annotations

import numpy as np
import pytest

import duals

NAN = np.nan
X4 = np.array([0.7, 1.9, -0.4, 1.1])
XN = np.array([0.7, NAN, -0.4, 1.1])  # a NaN
P4 = [-X4, X4[::-1], 0.3 * X4 + 0.5]  # other orders and signs: guards come out differently
M3 = np.array([[2.0, 0.5, -1.0], [0.3, 3.0, 0.2], [-0.7, 0.1, 1.5]])
B3 = np.array(
    [[[3.2, 0.4, -0.6], [0.1, 2.5, 0.9], [-1.1, 0.3, 3.7]], [[1.5, -2.0, 0.3], [0.8, 1.9, -0.4],
     [0.2, 0.6, -2.2]]]
)  # fmt: skip


def close(actual, desired, rtol=1e-12, atol=1e-13):
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, equal_nan=True)


def check(f, x0, points=(), *, tapes=None, hessian=False, rtol=1e-12, atol=1e-13):
    """Compiled value and Jacobian (and Hessian) equal eager mode at ``x0`` and ``points``;
    ``tapes``: how many tapes the compiled object holds afterwards (1: selects, no guard)."""
    x0 = np.asarray(x0, dtype=np.float64)
    with np.errstate(all="ignore"):
        c = duals.compile(f, x0)
        for x in [x0, *points]:
            x = np.asarray(x, dtype=np.float64)
            close(c.value(x), np.asarray(f(x), dtype=np.float64), rtol, atol)
            close(c.jacobian(x), duals.jacobian(f, x), rtol, atol)
            if hessian:
                close(c.hessian(x), duals.hessian(f, x), 1e3 * rtol, 1e3 * atol)
    if tapes is not None:
        assert len(c.tapes) == tapes
    return c


def retraced(f, x0, points):
    """``check``, and more than one tape: the points took other branches."""
    c = check(f, x0, points)
    assert len(c.tapes) > 1
    return c


# ------------------------------------------------------------------------------------------------
# Bilinear products: the value is the product of the operands' tape values
# ------------------------------------------------------------------------------------------------

BILINEAR = {
    "dot_vv": lambda x: np.dot(x, np.sin(x)),
    "dot_mv": lambda x: np.dot(M3, x[:3]) + np.dot(x[1:], M3),
    "dot_mm": lambda x: np.dot(np.outer(x[:3], x[1:]), M3 * x[0]),
    "dot_scalar": lambda x: np.dot(x[0], x),
    "dot_out": lambda x: np.dot(M3, x[:3], out=np.zeros_like(x[:3])),
    "method_dot": lambda x: x[:3].dot(M3),
    "vdot": lambda x: np.vdot(x.reshape(2, 2), np.cos(x).reshape(2, 2)),
    "inner": lambda x: np.inner(x.reshape(2, 2), M3[:2, :2] * x[:2]),
    "outer": lambda x: np.outer(x, x[::-1] ** 2),
    "linalg_outer": lambda x: np.linalg.outer(x, x[:2]),
    "einsum_quadratic": lambda x: np.einsum("i,ij,j->", x[:3], M3, x[1:]),
    "einsum_matmul": lambda x: np.einsum("ij,jk->ik", np.outer(x, x)[:3, :3], M3),
    "einsum_trace": lambda x: np.einsum("ii", np.outer(x, x)),
    "einsum_implicit": lambda x: np.einsum("ij,j", M3, x[:3]),
    "einsum_ellipsis": lambda x: np.einsum("...i,...i->...", x.reshape(2, 2), x.reshape(2, 2)),
    "einsum_optimize": lambda x: np.einsum("ij,j,k->ik", M3, x[:3], x, optimize=True),
    "einsum_interleaved": lambda x: np.einsum(x[:3], [0], M3, [0, 1], [1]),
    "tensordot_int": lambda x: np.tensordot(np.outer(x[:3], x[:3]), M3, 2),
    "tensordot_axes": lambda x: np.tensordot(M3, np.outer(x[:3], x), axes=([0], [0])),
    "linalg_tensordot": lambda x: np.linalg.tensordot(x, x, axes=1),
    "kron": lambda x: np.kron(x[:2], x.reshape(2, 2)),
    "cross3": lambda x: np.cross(x[:3], x[1:] ** 2),
    "cross_batched": lambda x: np.cross(np.stack([x[:3], x[1:]]), M3[0]),
    "linalg_cross": lambda x: np.linalg.cross(x[:3], M3[1] * x[0]),
    "multi_dot": lambda x: np.linalg.multi_dot([M3, np.diag(x[:3]), M3, x[1:]]),
    "vecdot": lambda x: np.linalg.vecdot(M3 * x[:3], x[1:]),
    "linalg_matmul": lambda x: np.linalg.matmul(M3, np.outer(x[:3], x[1:])),
    "matmul_noncontiguous": lambda x: np.outer(x, x)[::2, ::-1].T @ x[::2],
    "matmul_operator": lambda x: (x.reshape(2, 2) @ x.reshape(2, 2)) @ x[:2],
}


@pytest.mark.parametrize("name", sorted(BILINEAR))
def test_bilinear(name):
    check(BILINEAR[name], X4, P4[:1], hessian=name in ("dot_vv", "einsum_quadratic"))


def test_bilinear_2d_input_and_noncontiguous_points():
    def f(A):
        return np.einsum("ij,jk->ik", A, A.T) + np.dot(A[:, ::2], A[::-1, :2].T)

    A0 = np.arange(1.0, 7.0).reshape(2, 3) / 3.0
    big = np.linspace(-1.0, 2.0, 12).reshape(2, 6)
    check(f, A0, [big[:, ::2], big[:, 1::2].copy()])


# ------------------------------------------------------------------------------------------------
# Products, statistics, norms, polynomials: compositions
# ------------------------------------------------------------------------------------------------

STATS = {
    "prod": lambda x: np.prod(x),
    "prod_axis": lambda x: np.prod(x.reshape(2, 2), axis=0, keepdims=True),
    "prod_where": lambda x: np.prod(x, where=np.array([True, False, True, True]), initial=2.0),
    "prod_method": lambda x: x.prod(),
    "cumprod": lambda x: np.cumprod(x),
    "cumprod_axis": lambda x: np.cumprod(x.reshape(2, 2), axis=1),
    "cumulative_prod": lambda x: np.cumulative_prod(x, include_initial=True),
    "nanprod": lambda x: np.nanprod(np.log(x)),
    "nansum": lambda x: np.nansum(np.log(x).reshape(2, 2), axis=1),
    "nanmean": lambda x: np.nanmean(np.log(x)),
    "nanmean_axis": lambda x: np.nanmean(np.log(x + 1.0).reshape(2, 2), axis=1),
    "std": lambda x: np.std(x),
    "std_ddof_axis": lambda x: np.std(x.reshape(2, 2), axis=1, ddof=1),
    "std_where": lambda x: np.std(x, where=np.array([True, True, False, True])),
    "var": lambda x: np.var(x),
    "var_method": lambda x: x.reshape(2, 2).var(axis=0),
    "average": lambda x: np.average(x),
    "average_weights": lambda x: np.average(x, weights=[1.0, 2.0, 3.0, 4.0]),
    "average_traced_weights": lambda x: np.average(x, weights=np.exp(x)),
    "average_axis_returned": lambda x: np.stack(
        np.average(x.reshape(2, 2), axis=1, weights=[0.3, 0.7], returned=True)
    ),
    "ptp": lambda x: np.ptp(x),
    "ptp_axis": lambda x: np.ptp(x.reshape(2, 2), axis=0),
    "cov": lambda x: np.cov(np.stack([x, x**2])),
    "cov_y": lambda x: np.cov(x, np.sin(x)),
    "corrcoef": lambda x: np.corrcoef(np.stack([x, x**2, np.cos(x)])),
    "mean": lambda x: np.mean(x.reshape(2, 2), axis=1),
    "sum_where": lambda x: np.sum(x, where=np.array([True, False, True, True])),
}


@pytest.mark.parametrize("name", sorted(STATS))
def test_statistics(name):
    check(STATS[name], X4, P4, tapes=1, hessian=name in ("std", "prod", "var"))


NORMS = {
    "2": lambda x: np.linalg.norm(x),
    "1": lambda x: np.linalg.norm(x, 1),
    "inf": lambda x: np.linalg.norm(x, np.inf),
    "-inf": lambda x: np.linalg.norm(x, -np.inf),
    "0": lambda x: np.linalg.norm(x, 0),
    "3": lambda x: np.linalg.norm(x, 3),
    "-1": lambda x: np.linalg.norm(x, -1),
    "axis": lambda x: np.linalg.norm(x.reshape(2, 2), axis=1, keepdims=True),
    "fro": lambda x: np.linalg.norm(x.reshape(2, 2)),
    "matrix_1": lambda x: np.linalg.norm(x.reshape(2, 2), 1),
    "matrix_-1": lambda x: np.linalg.norm(x.reshape(2, 2), -1),
    "matrix_inf": lambda x: np.linalg.norm(x.reshape(2, 2), np.inf),
    "matrix_-inf": lambda x: np.linalg.norm(x.reshape(2, 2), -np.inf),
    "vector_norm": lambda x: np.linalg.vector_norm(x, ord=np.inf),
    "vector_norm_axis": lambda x: np.linalg.vector_norm(x.reshape(2, 2), axis=0, ord=1),
    "matrix_norm": lambda x: np.linalg.matrix_norm(x.reshape(2, 2)),
    "matrix_norm_inf": lambda x: np.linalg.matrix_norm(x.reshape(2, 2), ord=np.inf),
}


@pytest.mark.parametrize("name", sorted(NORMS))
def test_norms(name):
    check(NORMS[name], X4, P4 + [X4 * np.array([1.0, 0.0, 1.0, 0.0])], tapes=1)


def test_norm_hessian():
    check(lambda x: np.linalg.norm(x) * np.linalg.norm(x, 3), X4, P4, hessian=True)


POLY = {
    "polyval_coeffs": lambda x: np.polyval(x, 1.3),
    "polyval_points": lambda x: np.polyval([1.0, -2.0, 0.5], x),
    "polyval_both": lambda x: np.polyval(x, x[::-1]),
    "polyder": lambda x: np.polyder(x, 2),
    "polyint": lambda x: np.polyint(x, 2, k=[1.0, 0.5]),
    "polyfit": lambda x: np.polyfit(np.arange(4.0), x, 2),
    "polyfit_2d": lambda x: np.polyfit([0.0, 1.0], x.reshape(2, 2), 1),
}


@pytest.mark.parametrize("name", sorted(POLY))
def test_polynomials(name):
    check(POLY[name], X4, P4, tapes=1)


# ------------------------------------------------------------------------------------------------
# Selections without guards (selects on the tape): one tape everywhere
# ------------------------------------------------------------------------------------------------

SELECTS = {
    "clip": lambda x: np.clip(x, -0.5, 1.0),
    "clip_traced_bound": lambda x: np.clip(x, x[0], None),
    "clip_keywords": lambda x: np.clip(x, min=0.0, max=x[3]),
    "clip_method": lambda x: x.clip(0.2, 1.0),
    "nan_to_num": lambda x: np.nan_to_num(np.log(x)),
    "nan_to_num_inf": lambda x: np.nan_to_num(x / (x - 0.7), nan=-1.0, posinf=9.0, neginf=-9.0),
    "max": lambda x: np.max(x),
    "min_axis": lambda x: np.min(x.reshape(2, 2), axis=1),
    "amax_keepdims": lambda x: np.amax(x.reshape(2, 2), axis=0, keepdims=True),
    "amin_initial": lambda x: np.amin(x, initial=-0.1),
    "max_where": lambda x: np.max(x, where=np.array([True, False, True, True]), initial=-5.0),
    "max_traced_initial": lambda x: np.max(x[1:], initial=x[0]),
    "max_method": lambda x: x.max() - x.min(),
    "nanmax": lambda x: np.nanmax(np.log(x)),
    "nanmin_axis": lambda x: np.nanmin(np.log(x + 1.0).reshape(2, 2), axis=1),
    "maximum": lambda x: np.maximum(x, x[::-1]),
    "fmin": lambda x: np.fmin(np.log(x), 0.5),
    "where_mask": lambda x: np.where(x > 0.5, x**2, -x),
    "where_traced_condition": lambda x: np.where(x - 0.7, x, 2 * x),
    "sign": lambda x: np.sign(x) * x,
    "heaviside": lambda x: np.heaviside(x, 0.5) * x,
    "copysign": lambda x: np.copysign(x, x[::-1]),
    "copysign_constant_magnitude": lambda x: np.copysign(2.0, x),
    "signbit": lambda x: np.where(np.signbit(x), x, 2 * x),
    "logaddexp": lambda x: np.logaddexp(x, x[::-1]),
    "abs": lambda x: np.abs(x) + abs(x),
    "sinc": lambda x: np.sinc(x),
    "sinc_near_zero": lambda x: np.sinc(x * 1e-3),
    "isclose": lambda x: np.where(np.isclose(x, 1.1, atol=0.5), 1.0, x),
    "isfinite": lambda x: np.where(np.isfinite(np.log(x)), x, 0.0),
    "fmax_reduce": lambda x: np.fmax.reduce(np.log(x)),
    "maximum_accumulate": lambda x: np.maximum.accumulate(x),
}


@pytest.mark.parametrize("name", sorted(SELECTS))
def test_selects_need_no_guard(name):
    check(SELECTS[name], X4, P4 + [np.array([0.0, -0.0, 2.0, -3.0])], tapes=1)


def test_selects_hessian():
    def f(x):
        return np.sum(np.clip(x, -0.5, 1.0) ** 3) + np.max(x**2) + np.sinc(x[0])

    check(f, X4, P4, hessian=True, tapes=1)


def test_max_of_nan_propagates():
    check(lambda x: np.max(x) + np.nanmax(x), XN, [X4, XN[::-1]], tapes=1)
    check(lambda x: np.nanmean(x) + np.nansum(x), XN, [X4])


# ------------------------------------------------------------------------------------------------
# Orders, ranks and searches: guards fix the choice at the trace point
# ------------------------------------------------------------------------------------------------

ORDERS = {
    "sort": lambda x: np.sort(x) * np.arange(4.0),
    "sort_axis0": lambda x: np.sort(x.reshape(2, 2), axis=0),
    "sort_none": lambda x: np.sort(x.reshape(2, 2), axis=None),
    "sort_method": lambda x: _sorted_copy(x),
    "argsort": lambda x: x[np.argsort(x)] * np.arange(4.0),
    "argsort_stable_axis": lambda x: np.argsort(x.reshape(2, 2), axis=1, kind="stable") * x[0],
    "argmax": lambda x: x[np.argmax(x)] * x,
    "argmin_axis": lambda x: np.argmin(x.reshape(2, 2), axis=0) * x[:2],
    "nanargmax": lambda x: x * np.nanargmax(np.log(x)),
    "argmax_method": lambda x: x * x.argmax(),
    "median": lambda x: np.median(x),
    "median_odd": lambda x: np.median(x[:3]),
    "median_axis": lambda x: np.median(x.reshape(2, 2), axis=1, keepdims=True),
    "percentile": lambda x: np.percentile(x, [10.0, 50.0, 90.0]),
    "quantile_axis": lambda x: np.quantile(x.reshape(2, 2), 0.3, axis=1),
    "argpartition": lambda x: x[np.argpartition(x, 2)],
    "lexsort": lambda x: x[np.lexsort((x, np.floor(x)))],
    "searchsorted": lambda x: x * np.searchsorted([-1.0, 0.0, 1.0], x),
    "searchsorted_right_sorter": lambda x: (
        x * np.searchsorted([1.0, -1.0, 0.0], x, side="right", sorter=[1, 2, 0])
    ),
    "searchsorted_traced_array": lambda x: np.searchsorted(np.sort(x), 0.5) * x,
    "digitize": lambda x: x * np.digitize(x, [-1.0, 0.0, 1.0]),
    "digitize_decreasing_right": lambda x: x * np.digitize(x, [1.0, 0.0, -1.0], right=True),
    "interp": lambda x: np.interp(x, [-1.0, 0.0, 1.0, 2.0], [0.0, 1.0, -1.0, 3.0]),
    "interp_left_right": lambda x: np.interp(x, [-0.5, 0.0, 1.0], [0.0, 1.0, -1.0], 7.0, x[0]),
    "interp_fp": lambda x: np.interp(0.5, [0.0, 1.0, 2.0, 3.0], x),
    "nonzero": lambda x: np.sum(x[np.nonzero(np.floor(x))]),
    "flatnonzero": lambda x: np.sum(x[np.flatnonzero(x > 0.5)] ** 2),
    "argwhere": lambda x: np.sum(x[np.argwhere(np.floor(x))[:, 0]]),
    "count_nonzero": lambda x: x * np.count_nonzero(np.floor(x)),
    "any_all": lambda x: x * (2.0 if np.any(np.floor(x)) else 1.0) * (3.0 if np.all(x) else 1.0),
    "allclose": lambda x: x * (1.0 if np.allclose(x, 0.7, atol=1.5) else 2.0),
    "array_equal": lambda x: x * (1.0 if np.array_equal(x, X4) else 2.0),
    "array_equiv": lambda x: x * (1.0 if np.array_equiv(x, X4[0]) else 2.0),
    "isin": lambda x: np.where(np.isin(x, [0.7, 2.0]), x, -x),
    "select": lambda x: np.select([x < 0, x > 1], [x**2, -x], x),
    "select_default": lambda x: np.select([x > 1.0], [np.sin(x)], default=-1.0),
    "piecewise": lambda x: np.piecewise(x, [x < 0, x >= 0], [lambda v: v**2, lambda v: -v]),
    "piecewise_default": lambda x: np.piecewise(x, [x > 1.0], [np.sin, 0.5]),
    "extract": lambda x: np.sum(np.extract(x > 0.5, x) ** 2),
    "compress": lambda x: np.sum(np.compress(x > 0.5, x) ** 2),
}


def _sorted_copy(x):
    y = x.copy()
    y.sort()
    return y


@pytest.mark.parametrize("name", sorted(ORDERS))
def test_orders_and_searches(name):
    check(ORDERS[name], X4, P4 + [X4 * np.array([1.0, 0.0, 1.0, 0.0])])


@pytest.mark.parametrize(
    "f",
    [
        lambda x: np.sort(x),
        lambda x: np.median(x),
        lambda x: np.percentile(x, 40.0),
        lambda x: x[np.argmax(x)],
        lambda x: np.linalg.solve(np.diag(x[:2]) + [[0.0, 1.0], [1.0, 0.0]], x[2:]),
        lambda x: np.interp(x, [-1.0, 0.0, 1.0], [0.0, 1.0, -1.0]),
    ],
    ids=["sort", "median", "percentile", "argmax", "solve", "interp"],
)
def test_guards_retrace_on_the_other_side(f):
    retraced(f, X4, [X4[::-1], -X4, X4[::-1] * 3.0, -3.0 * X4])


def test_orders_with_nan():
    for f in [
        lambda x: np.sort(x),
        lambda x: np.median(x),
        lambda x: np.quantile(x, [0.2, 0.7]),
        lambda x: x[np.argmax(x)] * x,
        lambda x: x[np.nanargmin(x)] * x,
        lambda x: x[np.argsort(x)],
        lambda x: np.interp(x, [-1.0, 0.0, 1.0], [0.0, 1.0, -1.0]),
        lambda x: x * np.searchsorted([-1.0, 0.0, 1.0], x),
        lambda x: np.clip(x, 0.0, 1.0),
    ]:
        check(f, XN, [X4, XN[::-1], X4[::-1]])


def test_median_hessian():
    check(lambda x: np.median(x**3) + np.percentile(x**2, 30.0), X4, P4, hessian=True)


def test_sort_is_guarded_only_by_neighbours():
    # one tape while the order holds, however far the values move
    c = check(lambda x: np.sort(x) ** 2, X4, [X4 * 2.0, X4 + 10.0, X4 * 0.01])
    assert len(c.tapes) == 1


# ------------------------------------------------------------------------------------------------
# Rounding and remainders: piecewise constant on the tape
# ------------------------------------------------------------------------------------------------

ROUNDING = {
    "round": lambda x: np.round(x * 3.7) + x,
    "round_decimals": lambda x: np.round(x * 3.7, 2),
    "around_negative_decimals": lambda x: np.around(x * 37.0, -1),
    "round_half_even": lambda x: np.round(x * 0.0 + np.array([0.5, 1.5, -2.5, 2.5])) * x,
    "fix": lambda x: np.fix(x * 3.0) * x,
    "rint": lambda x: np.rint(x * 2.2) * x,
    "floor_ceil_trunc": lambda x: np.floor(x * 3) + np.ceil(x * 2) * x + np.trunc(x * 5),
    "remainder": lambda x: np.remainder(x * 3.0, 0.7) + np.mod(x, -0.3),
    "fmod": lambda x: np.fmod(x * 3.0, 0.7),
    "floor_divide": lambda x: np.floor_divide(x * 3.0, -0.7) * x,
    "divmod": lambda x: np.concatenate(np.divmod(x, -0.3)),
    "divmod_traced_divisor": lambda x: np.concatenate(np.divmod(1.0, x)),
    "modf": lambda x: np.concatenate(np.modf(x * 2.5)),
    "unwrap": lambda x: np.unwrap(x * 3.0),
    "unwrap_axis_period": lambda x: np.unwrap(x.reshape(2, 2) * 4.0, axis=0, period=5.0),
}


@pytest.mark.parametrize("name", sorted(ROUNDING))
def test_rounding(name):
    check(ROUNDING[name], X4, P4 + [np.array([1.0, 0.3, -0.7, 0.5])], tapes=1)


def test_remainder_matches_numpy_where_floor_of_quotient_does_not():
    # 1 // 0.1 is 9 in NumPy (floor(1 / 0.1) would be 10)
    check(lambda x: np.floor_divide(x, 0.1) + np.remainder(x, 0.1), np.array([1.0, 0.3, 0.7]))


# ------------------------------------------------------------------------------------------------
# Linear maps: padding, differences, integrals, convolutions, creation
# ------------------------------------------------------------------------------------------------

LINEAR = {
    "pad_constant": lambda x: np.pad(x, 2, constant_values=3.0),
    "pad_edge": lambda x: np.pad(x, (1, 3), mode="edge"),
    "pad_reflect": lambda x: np.pad(x, (2, 1), mode="reflect"),
    "pad_symmetric_2d": lambda x: np.pad(x.reshape(2, 2), ((1, 2), (2, 1)), mode="symmetric"),
    "pad_wrap_2d": lambda x: np.pad(x.reshape(2, 2), 1, mode="wrap"),
    "pad_linear_ramp": lambda x: np.pad(x, (3, 2), mode="linear_ramp", end_values=(5.0, -1.0)),
    "pad_linear_ramp_2d": lambda x: np.pad(
        x.reshape(2, 2), ((1, 2), (2, 0)), mode="linear_ramp", end_values=((1.0, -2.0), (0.5, 3.0))
    ),
    "pad_mean": lambda x: np.pad(x, 2, mode="mean"),
    "trapezoid": lambda x: np.trapezoid(x**2),
    "trapezoid_x": lambda x: np.trapezoid(x**2, [0.0, 0.5, 2.0, 2.5]),
    "trapezoid_traced_x": lambda x: np.trapezoid(np.sin(x), np.cumsum(np.exp(x))),
    "trapezoid_2d": lambda x: np.trapezoid(x.reshape(2, 2), dx=0.3, axis=0),
    "gradient": lambda x: np.gradient(x**2),
    "gradient_spacing": lambda x: np.gradient(x**2, 0.5),
    "gradient_coordinates": lambda x: np.gradient(x**2, [0.0, 1.0, 3.0, 3.5]),
    "gradient_uniform_coordinates": lambda x: np.gradient(x**2, [0.0, 2.0, 4.0, 6.0]),
    "gradient_edge2": lambda x: np.gradient(np.concatenate([x, x**2]), 0.5, edge_order=2),
    "gradient_coordinates_edge2": lambda x: np.gradient(
        np.concatenate([x, x**2]), [0.0, 1.0, 1.5, 3.0, 4.0, 4.2, 5.0, 7.0], edge_order=2
    ),
    "gradient_2d": lambda x: np.stack(np.gradient(np.outer(x, x[:3]))),
    "gradient_2d_axis": lambda x: np.gradient(np.outer(x, x[:3]), 0.2, axis=1),
    "convolve": lambda x: np.convolve(x, [1.0, -2.0, 0.5]),
    "convolve_same": lambda x: np.convolve(x, x[:2], "same"),
    "convolve_valid": lambda x: np.convolve([1.0, 2.0], x, "valid"),
    "correlate": lambda x: np.correlate(x, x[1:3], "full"),
    "correlate_valid": lambda x: np.correlate(x, [0.5, -1.0]),
    "correlate_same": lambda x: np.correlate([0.5, -1.0], x, "same"),
    "diff": lambda x: np.diff(x, 2),
    "diff_prepend": lambda x: np.diff(x, prepend=x[-1], append=3.0),
    "ediff1d": lambda x: np.ediff1d(x, to_begin=x[0], to_end=[1.0, 2.0]),
    "cumsum": lambda x: np.cumsum(x.reshape(2, 2), axis=0),
    "linspace": lambda x: np.linspace(x[0], x[1], 5),
    "linspace_constant_start": lambda x: np.linspace(0.0, x[:2], 4, endpoint=False, axis=1),
    "linspace_retstep": lambda x: np.concatenate(
        [np.linspace(x[0], 2.0, 3, retstep=True)[0], [np.linspace(x[0], 2.0, 3, retstep=True)[1]]]
    ),
    "logspace": lambda x: np.logspace(x[0], 1.0, 3),
    "diag": lambda x: np.diag(x) @ x + np.sum(np.diag(np.outer(x, x), 1)),
    "bincount": lambda x: np.bincount([0, 1, 1, 3], weights=x),
    "insert_delete": lambda x: np.delete(np.insert(x, 1, 5.0), 3),
    "take_along_axis": lambda x: np.take_along_axis(x.reshape(2, 2), np.array([[1, 0]]), 1),
    "sliding_window": lambda x: np.lib.stride_tricks.sliding_window_view(x, 2) @ [1.0, -1.0],
    "resize": lambda x: np.resize(x, 6),
    "meshgrid": lambda x: np.stack(np.meshgrid(x[:2], x[1:])),
    "apply_along_axis": lambda x: np.apply_along_axis(np.sum, 1, x.reshape(2, 2) ** 2),
    "fill_diagonal": lambda x: _filled_diagonal(x),
    "put": lambda x: _put(x),
    "copyto": lambda x: _copied(x),
    "add_at": lambda x: _added_at(x),
    "multiply_outer": lambda x: np.multiply.outer(x, x[:2]),
    "add_reduce_initial": lambda x: np.add.reduce(x, initial=2.5),
    "multiply_reduce_where": lambda x: np.multiply.reduce(x, where=np.array([1, 0, 1, 1], bool)),
    "real_imag": lambda x: np.real(x) + np.imag(x),
    "arange_grid": lambda x: x * np.arange(4, like=x),
}


def _filled_diagonal(x):
    a = np.zeros_like(np.outer(x, x))
    np.fill_diagonal(a, x**2)
    return a


def _put(x):
    y = np.zeros_like(x)
    np.put(y, [0, 2], x[1:3])
    return y


def _copied(x):
    y = np.ones_like(x)
    np.copyto(y, x**2, where=np.array([True, False, True, False]))
    return y


def _added_at(x):
    y = np.zeros_like(x)
    np.add.at(y, [0, 0, 2], x[:3])
    np.add.at(y, [1], 2.0)
    return y


@pytest.mark.parametrize("name", sorted(LINEAR))
def test_linear(name):
    check(LINEAR[name], X4, P4, tapes=1)


# ------------------------------------------------------------------------------------------------
# Linear algebra: elimination with guarded pivots
# ------------------------------------------------------------------------------------------------

LINALG = {
    "solve": lambda x: np.linalg.solve(M3 + np.diag(x[:3]), x[1:]),
    "solve_matrix_rhs": lambda x: np.linalg.solve(M3 * x[0], np.outer(x[1:], x[:2])),
    "solve_constant_matrix": lambda x: np.linalg.solve(M3, x[1:]),
    "solve_constant_rhs": lambda x: np.linalg.solve(M3 + np.diag(x[:3]), [1.0, 2.0, 3.0]),
    "solve_batch": lambda x: np.linalg.solve(B3 * x[:3], x[1:]),
    "solve_batch_matrix_rhs": lambda x: np.linalg.solve(B3 * x[0], np.stack([x[1:], x[:3]], -1)),
    "solve_4": lambda x: np.linalg.solve(np.outer(x, x[::-1]) + np.diag(x + 3.0), x),
    "solve_pivoting": lambda x: np.linalg.solve(
        np.array([[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [4.0, 1.0, 0.0]]) + np.diag(x[:3]), x[1:]
    ),
    "inv": lambda x: np.linalg.inv(np.outer(x, x) + np.eye(4)),
    "inv_3": lambda x: np.linalg.inv(M3 * x[:3]),
    "inv_batch": lambda x: np.linalg.inv(B3 * x[:3]),
    "inv_permutation": lambda x: np.linalg.inv(
        np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) * x[:3]
    ),
    "det_1": lambda x: np.linalg.det(x[:1].reshape(1, 1)),
    "det_2": lambda x: np.linalg.det(x.reshape(2, 2)),
    "det_3": lambda x: np.linalg.det(M3 * x[:3]),
    "det_4": lambda x: np.linalg.det(np.outer(x, x[::-1]) + np.diag(x)),
    "det_5": lambda x: np.linalg.det(
        np.outer(np.concatenate([x, [1.0]]), np.concatenate([[1.0], x])) + 2.0 * np.eye(5)
    ),
    "det_batch": lambda x: np.linalg.det(np.stack([np.outer(x, x) + np.eye(4), np.diag(x)])),
    "det_batch_3": lambda x: np.linalg.det(B3 * x[1:]),
    "slogdet": lambda x: np.linalg.slogdet(np.outer(x, x[::-1]) + np.diag(x)).logabsdet,
    "slogdet_sign": lambda x: np.linalg.slogdet(np.outer(x, x[::-1]) + np.diag(x))[0] * x,
    "slogdet_3": lambda x: np.linalg.slogdet(M3 * x[:3])[1],
    "slogdet_batch": lambda x: np.linalg.slogdet(B3 * x[:3])[1],
    "matrix_power": lambda x: np.linalg.matrix_power(x.reshape(2, 2), 3),
    "matrix_power_negative": lambda x: np.linalg.matrix_power(M3 * x[:3], -2),
    "matrix_power_zero": lambda x: np.linalg.matrix_power(x.reshape(2, 2), 0) * x[0],
    "cholesky": lambda x: np.linalg.cholesky(np.outer(x, x) + np.eye(4)),
    "cholesky_upper": lambda x: np.linalg.cholesky(np.outer(x, x) + np.eye(4), upper=True),
    "cholesky_batch": lambda x: np.linalg.cholesky(
        np.stack([np.outer(x, x) + np.eye(4), np.diag(x**2 + 1.0)])
    ),
    "cholesky_reads_lower": lambda x: np.linalg.cholesky(np.tril(np.outer(x, x) + np.eye(4))),
}


@pytest.mark.parametrize("name", sorted(LINALG))
def test_linalg(name):
    check(LINALG[name], X4, P4, rtol=1e-11, atol=1e-12)


def test_linalg_matrix_input_and_hessians():
    A0 = M3 + 2.0 * np.eye(3)
    check(lambda A: np.linalg.inv(A), A0, [A0.T, -A0[::-1]], rtol=1e-11, atol=1e-12)
    for f in [
        lambda x: np.linalg.det(np.outer(x, x[::-1]) + np.diag(x) + 2.0 * np.eye(4)),
        lambda x: np.linalg.slogdet(np.outer(x, x) + np.eye(4))[1],
        lambda x: x[1:] @ np.linalg.solve(M3 + np.diag(x[:3] ** 2), x[:3]),
        lambda x: np.sum(np.log(np.diag(np.linalg.cholesky(np.outer(x, x) + np.eye(4))))),
    ]:
        check(f, X4, P4, hessian=True, rtol=1e-11, atol=1e-12)


def test_det_at_a_singular_trace_point():
    # the elimination meets a zero column at the trace point: cofactor expansion (exact, with
    # the adjugate as derivative, valid everywhere)
    def f(x):
        return np.linalg.det(np.outer(x, x) + np.diag(x))

    c = check(f, np.zeros(4), [X4, np.array([0.0, 1.0, 0.0, 0.0])], tapes=1)
    assert len(c.tapes) == 1
    check(lambda x: np.linalg.det(np.diag(x)), np.array([1.0, 2.0, 0.0, 3.0]), [X4], tapes=1)
    check(lambda x: np.linalg.det(x.reshape(2, 2)), np.zeros(4), [X4], tapes=1)


def test_singular_matrices_raise_like_numpy():
    with pytest.raises(np.linalg.LinAlgError):
        duals.compile(lambda x: np.linalg.solve(np.diag(x), x), np.array([1.0, 0.0, 2.0, 3.0]))
    with pytest.raises(np.linalg.LinAlgError):
        duals.compile(lambda x: np.linalg.inv(np.diag(x)), np.array([1.0, 0.0, 2.0, 3.0]))
    with pytest.raises(np.linalg.LinAlgError):
        duals.compile(lambda x: np.linalg.cholesky(np.diag(x)), -X4)
    # at another point: the pivot guard fails, the trace there raises
    c = duals.compile(lambda x: np.linalg.solve(np.diag(x + 0.5), x), X4)
    with pytest.raises(np.linalg.LinAlgError):
        c.value(np.array([-0.5, 1.0, 1.0, 1.0]))


# ------------------------------------------------------------------------------------------------
# Shapes: 0-d and 2-d inputs
# ------------------------------------------------------------------------------------------------


def test_zero_dimensional_input():
    def f(x):
        return np.max(x) + np.clip(x, 0, 1) + np.round(x * 3) + np.sinc(x) + np.median(x)

    check(f, np.array(0.3), [np.array(-2.0), np.array(1.7)])
    check(lambda x: np.sort(np.atleast_1d(x)) * np.prod(x), np.array(0.3), [np.array(-2.0)])


def test_two_dimensional_input_reductions():
    X0 = np.array([[0.7, 1.9, -0.4], [1.1, -0.2, 0.5]])
    for f in [
        lambda X: np.sort(X, axis=0),
        lambda X: np.median(X, axis=1),
        lambda X: np.max(X, axis=0) * np.argmax(X, axis=0),
        lambda X: np.percentile(X, [25.0, 75.0], axis=1),
        lambda X: np.linalg.norm(X, axis=0),
        lambda X: np.cumprod(X, axis=1),
        lambda X: np.std(X, axis=1),
    ]:
        check(f, X0, [X0[::-1], -X0, X0[:, ::-1]])


# ------------------------------------------------------------------------------------------------
# What cannot be compiled raises TypeError naming it
# ------------------------------------------------------------------------------------------------

UNSUPPORTED = [
    (lambda x: np.linalg.eigh(x.reshape(2, 2))[0], "numpy.linalg.eigh"),
    (lambda x: np.linalg.eigvalsh(x.reshape(2, 2)), "numpy.linalg.eigvalsh"),
    (lambda x: np.linalg.pinv(x.reshape(2, 2)), "numpy.linalg.pinv"),
    (lambda x: np.linalg.lstsq(x.reshape(2, 2), x[:2])[0], "numpy.linalg.lstsq"),
    (lambda x: x * np.linalg.matrix_rank(x.reshape(2, 2)), "numpy.linalg.matrix_rank"),
    (lambda x: np.linalg.norm(x.reshape(2, 2), 2), "numpy.linalg.norm"),
    (lambda x: np.linalg.norm(x.reshape(2, 2), "nuc"), "numpy.linalg.norm"),
    (lambda x: np.linalg.matrix_norm(x.reshape(2, 2), ord=-2), "numpy.linalg.norm"),
    (lambda x: np.pad(x, 1, mode="maximum"), "numpy.pad"),
    (lambda x: np.quantile(x, 0.5, method="nearest"), "numpy.quantile"),
    (lambda x: np.polyfit(x, x, 1), "numpy.polyfit"),
    (lambda x: np.interp(1.0, x, x), "numpy.interp"),
    (lambda x: np.gradient(x, x), "numpy.gradient"),
    (lambda x: np.linalg.eig(x.reshape(2, 2))[0], "numpy.linalg.eig"),
    (lambda x: np.fft.fft(x), "numpy.fft.fft"),
]


@pytest.mark.parametrize("f, name", UNSUPPORTED, ids=[n for _, n in UNSUPPORTED])
def test_unsupported_raise_naming_the_function(f, name):
    with pytest.raises(TypeError, match=name.replace(".", r"\.")):
        duals.compile(f, X4)


def test_values_that_would_be_frozen_raise():
    # np.arange has no dual dispatch without like=: it asks for a float of the traced bound
    with pytest.raises(TypeError, match="float"):
        duals.compile(lambda x: x[1:] * np.arange(x[0], 3.0), np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="numpy.arange"):
        duals.compile(lambda x: np.arange(x[0], 3.0, like=x), X4)


def test_every_handled_function_is_traceable_or_named():
    from duals._functions import HANDLED, TRACE_SAFE, _qualname

    raising = sorted(_qualname(f) for f in HANDLED if f not in TRACE_SAFE)
    assert raising == [
        "numpy.linalg.eigh",
        "numpy.linalg.eigvalsh",
        "numpy.linalg.lstsq",
        "numpy.linalg.matrix_rank",
        "numpy.linalg.pinv",
    ]
