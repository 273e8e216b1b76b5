"""NumPy functions (``__array_function__``) on dual arrays, through the public drivers.

Every registered function runs in a table of cases, each on several memory layouts of the
input (contiguous, reversed, strided, transposed, broadcast), and its Jacobian is compared with
the complex step (analytic functions NumPy evaluates on complex arrays) or with 8th-order central
differences (the others). Second derivatives (hyper-dual seeds, including the second-order lift
of the linear-algebra rules) are compared with finite differences of the exact gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
from derivref import cs_jacobian, fd_jacobian

import duals

RTOL_CS = 1e-10
RTOL_FD = 1e-7

_RNG = np.random.default_rng(20261122)
C3 = _RNG.normal(size=(3, 3))
C4 = _RNG.normal(size=(4, 4))
V3 = _RNG.normal(size=3)
V4 = _RNG.normal(size=4)
B34 = _RNG.normal(size=(3, 4))
SPD3 = C3 @ C3.T + 3 * np.eye(3)
W232 = _RNG.uniform(0.5, 1.5, size=(2, 3, 2))


def X(shape):
    """Well-separated nonzero values in [-2, 2] (no ties for max/sort, no kinks nearby)."""
    n = int(np.prod(shape, dtype=int))
    v = (np.arange(n) - (n - 1) / 2) * (3.0 / max(n, 1)) + 0.05
    return np.random.default_rng(n).permutation(v).reshape(shape)


# ------------------------------------------------------------------------------------------------
# The table: (id, g, shape of g's argument, reference)
# ------------------------------------------------------------------------------------------------

I3 = np.eye(3)

CASES = [
    # ----- shape and layout -----
    ("reshape", lambda x: np.reshape(x, (-1, 1)), (2, 3), "cs"),
    ("reshape_F", lambda x: np.reshape(x, (3, 2), order="F"), (2, 3), "cs"),
    ("reshape_0d", lambda x: np.reshape(x, (1, 1)), (), "cs"),
    ("method_reshape", lambda x: x.reshape(3, 2), (2, 3), "cs"),
    ("ravel", np.ravel, (2, 3), "cs"),
    ("ravel_F", lambda x: np.ravel(x, order="F"), (2, 3), "cs"),
    ("transpose", np.transpose, (2, 3), "cs"),
    ("dot_T", lambda x: x.T, (2, 3), "cs"),
    ("transpose_axes", lambda x: np.transpose(x, (1, 0, 2)), (2, 3, 2), "cs"),
    ("permute_dims", lambda x: np.permute_dims(x, (2, 0, 1)), (2, 3, 2), "cs"),
    ("matrix_transpose", np.matrix_transpose, (2, 2, 3), "cs"),
    ("swapaxes", lambda x: np.swapaxes(x, 0, -1), (2, 3, 2), "cs"),
    ("moveaxis", lambda x: np.moveaxis(x, 0, -1), (2, 3, 2), "cs"),
    ("moveaxis_many", lambda x: np.moveaxis(x, [0, 1], [-1, -3]), (2, 3, 2), "cs"),
    ("rollaxis", lambda x: np.rollaxis(x, 2), (2, 3, 2), "cs"),
    ("expand_dims", lambda x: np.expand_dims(x, -1), (2, 3), "cs"),
    ("expand_dims_many", lambda x: np.expand_dims(x, (0, 2)), (3,), "cs"),
    ("squeeze", lambda x: np.squeeze(np.reshape(x, (1, 3, 1))), (3,), "cs"),
    ("squeeze_axis", lambda x: np.squeeze(np.reshape(x, (1, 3, 1)), axis=-1), (3,), "cs"),
    ("atleast_1d", np.atleast_1d, (), "cs"),
    ("atleast_2d", np.atleast_2d, (3,), "cs"),
    ("atleast_3d", np.atleast_3d, (2, 3), "cs"),
    ("atleast_2d_many", lambda x: np.atleast_2d(x, 2 * x)[1], (3,), "cs"),
    ("broadcast_to", lambda x: np.broadcast_to(x, (2, 2, 3)), (2, 3), "cs"),
    ("broadcast_arrays", lambda x: np.broadcast_arrays(x, V3)[0], (3,), "cs"),
    ("broadcast_arrays_2", lambda x: np.broadcast_arrays(C3, x[:, None])[1], (3,), "cs"),
    ("copy", np.copy, (2, 3), "cs"),
    # ----- joining and splitting -----
    ("concatenate", lambda x: np.concatenate([x, 2 * x], axis=-1), (2, 3), "cs"),
    ("concatenate_const", lambda x: np.concatenate([B34[:2], x, x[:, :1]], axis=1), (2, 3), "cs"),
    ("concatenate_None", lambda x: np.concatenate([x, V3], axis=None), (2, 3), "cs"),
    ("concat", lambda x: np.concat([V3, x]), (3,), "cs"),
    ("stack", lambda x: np.stack([x, V3, x * x], axis=-1), (3,), "cs"),
    ("stack_2d", lambda x: np.stack([x, 3 * x], axis=1), (2, 3), "cs"),
    ("unstack", lambda x: np.unstack(x, axis=1)[2], (2, 3), "cs"),
    ("hstack", lambda x: np.hstack([x, V3, x]), (3,), "cs"),
    ("hstack_2d", lambda x: np.hstack([x, B34[:2]]), (2, 3), "cs"),
    ("vstack", lambda x: np.vstack([x, V3]), (3,), "cs"),
    ("dstack", lambda x: np.dstack([x, x * x]), (2, 3), "cs"),
    ("column_stack", lambda x: np.column_stack([x, V3, 2 * x]), (3,), "cs"),
    ("block", lambda x: np.block([[x, x], [C3[:2, :3], x * x]]), (2, 3), "cs"),
    ("append", lambda x: np.append(x, V3), (2, 3), "cs"),
    ("append_axis", lambda x: np.append(x, B34[:2, :3], axis=0), (2, 3), "cs"),
    ("split", lambda x: np.concatenate(np.split(x, 3, axis=-1)[::-1], -1), (2, 3), "cs"),
    ("split_list", lambda x: np.split(x, [1])[1] * np.split(x, [1])[0], (3,), "cs"),
    ("array_split", lambda x: np.array_split(x, 2, axis=1)[0], (2, 3), "cs"),
    ("hsplit", lambda x: np.hsplit(x, 3)[1], (2, 3), "cs"),
    ("vsplit", lambda x: np.vsplit(x, 2)[1], (2, 3), "cs"),
    ("dsplit", lambda x: np.dsplit(x, 2)[0], (2, 3, 2), "cs"),
    # ----- rearranging -----
    ("roll", lambda x: np.roll(x, 2), (2, 3), "cs"),
    ("roll_axis", lambda x: np.roll(x, -1, axis=-1), (2, 3), "cs"),
    ("roll_axes", lambda x: np.roll(x, (1, 2), axis=(0, 1)), (2, 3), "cs"),
    ("flip", np.flip, (2, 3), "cs"),
    ("flip_axis", lambda x: np.flip(x, -1), (2, 3), "cs"),
    ("fliplr", np.fliplr, (2, 3), "cs"),
    ("flipud", np.flipud, (2, 3), "cs"),
    ("rot90", lambda x: np.rot90(x, 3), (2, 3), "cs"),
    ("take", lambda x: np.take(x, [4, 0, 0, 2]), (2, 3), "cs"),
    ("take_axis", lambda x: np.take(x, [2, 0], axis=-1), (2, 3), "cs"),
    (
        "take_along_axis",
        lambda x: np.take_along_axis(x, np.array([[2, 0], [1, 1]]), 1),
        (2, 3),
        "cs",
    ),
    ("compress", lambda x: np.compress([True, False, True], x, axis=1), (2, 3), "cs"),
    ("extract", lambda x: np.extract(np.arange(6).reshape(2, 3) % 2 == 0, x), (2, 3), "cs"),
    ("repeat", lambda x: np.repeat(x, 2), (2, 3), "cs"),
    ("repeat_axis", lambda x: np.repeat(x, [1, 0, 2], axis=1), (2, 3), "cs"),
    ("tile", lambda x: np.tile(x, (2, 1, 2)), (2, 3), "cs"),
    ("tile_1d", lambda x: np.tile(x, 2), (3,), "cs"),
    ("resize", lambda x: np.resize(x, (4, 2)), (3,), "cs"),
    ("delete", lambda x: np.delete(x, [0, 2], axis=1), (2, 3), "cs"),
    ("delete_flat", lambda x: np.delete(x, 1), (2, 3), "cs"),
    ("insert", lambda x: np.insert(x, 1, 5.0, axis=1), (2, 3), "cs"),
    ("insert_dual", lambda x: np.insert(x, [0, 2], x[:2] * x[1:]), (3,), "cs"),
    ("pad_constant", lambda x: np.pad(x, ((1, 0), (2, 1)), constant_values=3.0), (2, 3), "cs"),
    ("pad_edge", lambda x: np.pad(x, 2, mode="edge"), (2, 3), "cs"),
    ("pad_reflect", lambda x: np.pad(x, (1, 2), mode="reflect"), (3,), "cs"),
    ("pad_symmetric", lambda x: np.pad(x, 1, mode="symmetric"), (2, 3), "cs"),
    ("pad_wrap", lambda x: np.pad(x, ((0, 1), (2, 2)), mode="wrap"), (2, 3), "cs"),
    ("pad_ramp", lambda x: np.pad(x, 2, mode="linear_ramp", end_values=1.0), (3,), "cs"),
    ("pad_mean", lambda x: np.pad(x, 1, mode="mean", stat_length=2), (2, 3), "cs"),
    (
        "sliding_window",
        lambda x: np.lib.stride_tricks.sliding_window_view(x, 2, axis=-1),
        (2, 3),
        "cs",
    ),
    ("meshgrid", lambda x: np.meshgrid(x, V4)[0] * np.meshgrid(x, V4)[1], (3,), "cs"),
    ("meshgrid_ij", lambda x: np.meshgrid(x, x * x, indexing="ij", sparse=True)[1], (3,), "cs"),
    # ----- diagonals and triangles -----
    ("trace", np.trace, (3, 3), "cs"),
    ("trace_offset", lambda x: np.trace(x, 1, axis1=-1, axis2=0), (2, 3), "cs"),
    ("linalg_trace", np.linalg.trace, (2, 2, 3), "cs"),
    ("diag_1d", lambda x: np.diag(x, -1), (3,), "cs"),
    ("diag_2d", lambda x: np.diag(x, 1), (2, 3), "cs"),
    ("diagflat", np.diagflat, (2, 2), "cs"),
    ("diagonal", lambda x: np.diagonal(x, 0, 0, 2), (2, 3, 2), "cs"),
    ("linalg_diagonal", np.linalg.diagonal, (2, 3), "cs"),
    ("triu", lambda x: np.triu(x, -1), (3, 3), "cs"),
    ("tril", lambda x: np.tril(x, 1), (2, 3), "cs"),
    ("tril_1d", np.tril, (3,), "cs"),
    # ----- linear reductions -----
    ("sum", np.sum, (2, 3), "cs"),
    ("sum_0d", np.sum, (), "cs"),
    ("sum_axis", lambda x: np.sum(x, axis=-1, keepdims=True), (2, 3), "cs"),
    ("sum_axes", lambda x: np.sum(x, axis=(0, 2)), (2, 3, 2), "cs"),
    (
        "sum_where",
        lambda x: np.sum(x, axis=0, where=[True, False, True], initial=1.0),
        (2, 3),
        "cs",
    ),
    ("method_sum", lambda x: x.sum(axis=0), (2, 3), "cs"),
    ("mean", np.mean, (2, 3), "cs"),
    ("mean_axis", lambda x: np.mean(x, axis=0, keepdims=True), (2, 3), "cs"),
    ("average", lambda x: np.average(x, axis=1, weights=V3), (2, 3), "cs"),
    ("average_dual_w", lambda x: np.average(V3, weights=x * x), (3,), "cs"),
    ("cumsum", np.cumsum, (2, 3), "cs"),
    ("cumsum_axis", lambda x: np.cumsum(x, axis=0), (2, 3), "cs"),
    ("cumulative_sum", lambda x: np.cumulative_sum(x, axis=1, include_initial=True), (2, 3), "cs"),
    ("diff", lambda x: np.diff(x, 2), (2, 3), "cs"),
    ("diff_axis", lambda x: np.diff(x, axis=0, prepend=1.0, append=x[:1]), (2, 3), "cs"),
    ("ediff1d", lambda x: np.ediff1d(x, to_begin=x[0], to_end=[1.0, 2.0]), (2, 3), "cs"),
    ("gradient", np.gradient, (4,), "cs"),
    ("gradient_2d", lambda x: np.gradient(x, 0.5, [0.0, 1.0, 3.0])[1], (2, 3), "cs"),
    ("gradient_axis", lambda x: np.gradient(x, axis=0, edge_order=2), (3, 2), "cs"),
    ("trapezoid", lambda x: np.trapezoid(x, dx=0.3), (2, 3), "cs"),
    ("trapezoid_x", lambda x: np.trapezoid(x, V3), (2, 3), "cs"),
    ("trapezoid_dual_x", lambda x: np.trapezoid(x * x, np.cumsum(x + 3)), (3,), "cs"),
    # ----- products -----
    ("einsum", lambda x: np.einsum("ij,jk->ik", x, B34), (2, 3), "cs"),
    ("einsum_both", lambda x: np.einsum("ij,kj", x, x * x), (2, 3), "cs"),
    ("einsum_trace", lambda x: np.einsum("ii", x), (3, 3), "cs"),
    ("einsum_ellipsis", lambda x: np.einsum("...i,i->...", x, V3), (2, 3), "cs"),
    ("einsum_3ops", lambda x: np.einsum("i,ij,j->", x[0], C3, x[1]), (2, 3), "cs"),
    ("einsum_sublist", lambda x: np.einsum(x, [0, 1], C3, [1, 2], [2, 0]), (2, 3), "cs"),
    ("einsum_optimize", lambda x: np.einsum("ij,jk,kl", x, C3, x.T, optimize=True), (2, 3), "cs"),
    ("dot", lambda x: np.dot(x, C3), (2, 3), "cs"),
    ("dot_vec", lambda x: np.dot(C3, x), (3,), "cs"),
    ("dot_nd", lambda x: np.dot(x, np.ones((2, 3, 2))), (2, 3), "cs"),
    ("dot_both", lambda x: np.dot(x, x), (3,), "cs"),
    ("dot_scalar", lambda x: np.dot(x[0], x), (3,), "cs"),
    ("method_dot", lambda x: x.dot(V3), (2, 3), "cs"),
    ("linalg_matmul", lambda x: np.linalg.matmul(x, x.T), (2, 3), "cs"),
    ("inner", lambda x: np.inner(x, B34[:, :3]), (2, 3), "cs"),
    ("outer", lambda x: np.outer(x, x[:2]), (2, 3), "cs"),
    ("linalg_outer", lambda x: np.linalg.outer(V4, x), (3,), "cs"),
    (
        "tensordot",
        lambda x: np.tensordot(x, np.ones((3, 2, 2)), axes=([1, 2], [1, 0])),
        (2, 2, 3),
        "cs",
    ),
    ("tensordot_int", lambda x: np.tensordot(C3[:2, :2], x, 1), (2, 3), "cs"),
    ("tensordot_both", lambda x: np.tensordot(x, x * x, 2), (2, 3), "cs"),
    ("linalg_tensordot", lambda x: np.linalg.tensordot(x, C3, axes=1), (2, 3), "cs"),
    ("vdot", lambda x: np.vdot(B34[:2, :3], x), (2, 3), "cs"),
    ("linalg_vecdot", lambda x: np.linalg.vecdot(V3, x), (2, 3), "cs"),
    ("kron", lambda x: np.kron(x, C3[:2, :2]), (2, 3), "cs"),
    ("kron_both", lambda x: np.kron(x[:2], x), (3,), "cs"),
    ("multi_dot", lambda x: np.linalg.multi_dot([x, C3, x.T, V4[:2]]), (2, 3), "cs"),
    ("cross", lambda x: np.cross(x, V3), (2, 3), "cs"),
    ("linalg_cross", lambda x: np.linalg.cross(x * x, x), (2, 3), "cs"),
    ("convolve", lambda x: np.convolve(x, V3), (4,), "cs"),
    ("convolve_same", lambda x: np.convolve(V4, x, "same"), (3,), "cs"),
    ("convolve_valid", lambda x: np.convolve(x, x[:2], "valid"), (4,), "cs"),
    ("correlate", lambda x: np.correlate(x, V3, "full"), (4,), "fd"),
    ("correlate_same", lambda x: np.correlate(x, x[1:], "same"), (4,), "fd"),
    ("correlate_valid", lambda x: np.correlate(V4[:2], x), (4,), "fd"),
    # ----- polynomials and interpolation -----
    ("polyval", lambda x: np.polyval(V4, x), (2, 3), "cs"),
    ("polyval_coeffs", lambda x: np.polyval(x, 0.7), (4,), "cs"),
    ("polyval_both", lambda x: np.polyval(x, x), (3,), "cs"),
    ("polyder", lambda x: np.polyder(x, 2), (4,), "cs"),
    ("polyint", lambda x: np.polyint(x, 2, k=[x[0], 1.0]), (4,), "cs"),
    ("polyfit", lambda x: np.polyfit(np.arange(4.0), x, 2), (4,), "fd"),
    ("polyfit_2d", lambda x: np.polyfit(np.arange(3.0), x, 1), (3, 2), "fd"),
    (
        "interp_x",
        lambda x: np.interp(x, [-3.0, -0.5, 0.02, 2.5], [1.0, 2.0, -1.0, 0.5]),
        (2, 3),
        "fd",
    ),
    ("interp_fp", lambda x: np.interp([0.1, -2.0, 1.7, 9.0], [-1.0, 0.0, 1.0, 2.0], x), (4,), "fd"),
    (
        "interp_left_right",
        lambda x: np.interp(x * 3, [-1.0, 1.0], [1.0, 2.0], -5.0, 5.0),
        (4,),
        "fd",
    ),
    # ----- nonlinear reductions -----
    ("prod", np.prod, (2, 3), "cs"),
    ("prod_axis", lambda x: np.prod(x, axis=-1, keepdims=True), (2, 3), "cs"),
    ("prod_odd", lambda x: np.prod(x, axis=0), (5, 2), "cs"),
    (
        "prod_where",
        lambda x: np.prod(x, axis=1, where=[True, False, True], initial=2.0),
        (2, 3),
        "cs",
    ),
    ("method_prod", lambda x: x.prod(), (3,), "cs"),
    ("cumprod", np.cumprod, (2, 3), "cs"),
    ("cumprod_axis", lambda x: np.cumprod(x, axis=0), (5, 2), "cs"),
    (
        "cumulative_prod",
        lambda x: np.cumulative_prod(x, axis=1, include_initial=True),
        (2, 3),
        "cs",
    ),
    ("var", np.var, (2, 3), "fd"),
    ("var_axis", lambda x: np.var(x, axis=0, ddof=1, keepdims=True), (3, 2), "fd"),
    ("var_correction", lambda x: np.var(x, correction=1), (4,), "fd"),
    ("std", np.std, (2, 3), "fd"),
    ("std_axis", lambda x: np.std(x, axis=-1, ddof=1), (2, 3), "fd"),
    ("max", np.max, (2, 3), "fd"),
    ("max_axis", lambda x: np.max(x, axis=0, keepdims=True), (2, 3), "fd"),
    ("amax_axes", lambda x: np.amax(x, axis=(0, 2)), (2, 3, 2), "fd"),
    ("max_initial", lambda x: np.max(x, axis=1, initial=0.35), (2, 3), "fd"),
    ("max_where", lambda x: np.max(x, axis=0, where=[[True], [False]], initial=-9.0), (2, 3), "fd"),
    ("method_max", lambda x: x.max(axis=1), (2, 3), "fd"),
    ("min", np.min, (2, 3), "fd"),
    ("amin_axis", lambda x: np.amin(x, axis=-1), (2, 3), "fd"),
    ("method_min", lambda x: x.min(), (2, 3), "fd"),
    ("ptp", lambda x: np.ptp(x, axis=1), (2, 3), "fd"),
    ("sort", np.sort, (2, 3), "fd"),
    ("sort_axis", lambda x: np.sort(x, axis=0), (3, 2), "fd"),
    ("sort_None", lambda x: np.sort(x, axis=None), (2, 3), "fd"),
    ("median", np.median, (2, 3), "fd"),
    ("median_axis", lambda x: np.median(x, axis=0, keepdims=True), (3, 2), "fd"),
    ("quantile", lambda x: np.quantile(x, [0.1, 0.5, 0.8]), (2, 3), "fd"),
    ("percentile", lambda x: np.percentile(x, 30.0, axis=1), (2, 3), "fd"),
    ("cov", np.cov, (2, 3), "fd"),
    ("cov_y", lambda x: np.cov(x, V3 * 2, rowvar=False, bias=True), (3,), "fd"),
    ("corrcoef", np.corrcoef, (2, 3), "fd"),
    ("nansum", lambda x: np.nansum(np.where(x > 1.0, np.nan, x), axis=0), (2, 3), "fd"),
    ("nanmean", lambda x: np.nanmean(np.where(x > 1.0, np.nan, x)), (2, 3), "fd"),
    ("nanprod", lambda x: np.nanprod(np.where(x > 1.0, np.nan, x), axis=1), (2, 3), "fd"),
    ("nanmax", lambda x: np.nanmax(np.where(x > 1.0, np.nan, x), axis=1), (2, 3), "fd"),
    ("nanmin", lambda x: np.nanmin(np.where(x > 1.0, np.nan, x)), (2, 3), "fd"),
    # ----- selection -----
    ("where", lambda x: np.where(x > 0, x * x, 3 * x), (2, 3), "fd"),
    ("where_const", lambda x: np.where(x > 0.2, 1.0, x), (2, 3), "fd"),
    ("where_bcast", lambda x: np.where(V3 > 0, x, x[:1]), (2, 3), "fd"),
    ("select", lambda x: np.select([x < -1, x < 0.5], [x * x, 2 * x], default=x[::-1]), (4,), "fd"),
    (
        "piecewise",
        lambda x: np.piecewise(x, [x < 0, x >= 0], [lambda v: v * v, lambda v: 3 * v]),
        (2, 3),
        "fd",
    ),
    (
        "piecewise_other",
        lambda x: np.piecewise(x, [x < -0.5], [1.0, lambda v: v * 2.0]),
        (4,),
        "fd",
    ),
    ("clip", lambda x: np.clip(x, -0.9, 1.1), (2, 3), "fd"),
    ("clip_dual", lambda x: np.clip(x, x[::-1] * 0.5, None), (4,), "fd"),
    ("clip_kw", lambda x: np.clip(x, max=0.4), (4,), "fd"),
    ("method_clip", lambda x: x.clip(-0.5, 0.5), (4,), "fd"),
    ("nan_to_num", lambda x: np.nan_to_num(np.where(x > 1.0, np.inf, x), posinf=7.0), (2, 3), "fd"),
    ("round", lambda x: np.round(x, 1) + x, (2, 3), "cs"),
    ("around", lambda x: np.around(x) * x, (2, 3), "cs"),
    ("fix", lambda x: np.fix(3 * x) + x, (4,), "fd"),
    ("real", lambda x: np.real(x) * x, (3,), "fd"),
    ("imag", lambda x: np.imag(x) + x, (3,), "fd"),
    ("sinc", np.sinc, (2, 3), "cs"),
    ("unwrap", lambda x: np.unwrap(x * 3), (4,), "fd"),
    ("apply_along_axis", lambda x: np.apply_along_axis(lambda v: v * v[0], 1, x), (2, 3), "fd"),
    ("apply_along_axis_0d", lambda x: np.apply_along_axis(np.sum, 0, x), (2, 3), "fd"),
    ("bincount", lambda x: np.bincount([0, 2, 2, 0], weights=x, minlength=4), (4,), "fd"),
    ("linspace", lambda x: np.linspace(x[0], x[1], 5), (2,), "cs"),
    ("linspace_axis", lambda x: np.linspace(x, 2.0, 3, endpoint=False, axis=-1), (2,), "cs"),
    ("linspace_retstep", lambda x: np.linspace(0.0, x, 4, retstep=True)[1], (3,), "cs"),
    ("logspace", lambda x: np.logspace(x[0], x[1], 4, base=2.0), (2,), "fd"),
    # ----- linear algebra -----
    ("solve", lambda x: np.linalg.solve(x + 4 * I3, V3), (3, 3), "cs"),
    ("solve_b", lambda x: np.linalg.solve(C3 + 4 * I3, x), (3,), "cs"),
    ("solve_matrix_b", lambda x: np.linalg.solve(C3 + 4 * I3, x), (3, 2), "cs"),
    ("solve_both", lambda x: np.linalg.solve(x + 4 * I3, x[0]), (3, 3), "cs"),
    ("solve_batched", lambda x: np.linalg.solve(x + 4 * I3[:2, :2], x[..., 0]), (2, 2, 2), "cs"),
    ("inv", lambda x: np.linalg.inv(x + 4 * I3), (3, 3), "cs"),
    ("inv_batched", lambda x: np.linalg.inv(x + 4 * np.eye(2)), (3, 2, 2), "cs"),
    ("det", np.linalg.det, (3, 3), "cs"),
    ("det_batched", np.linalg.det, (2, 2, 2), "cs"),
    (
        "det_singular",
        lambda x: np.linalg.det(x * [[1.0, 1.0], [1.0, 1.0]] + [[0, 0], [0, 0]]),
        (2, 2),
        "fd",
    ),
    ("slogdet", lambda x: np.linalg.slogdet(x + 3 * I3)[1], (3, 3), "fd"),
    ("slogdet_batched", lambda x: np.linalg.slogdet(x + 3 * np.eye(2))[1], (2, 2, 2), "fd"),
    ("matrix_power", lambda x: np.linalg.matrix_power(x, 3), (3, 3), "cs"),
    ("matrix_power_neg", lambda x: np.linalg.matrix_power(x + 4 * I3, -2), (3, 3), "cs"),
    ("matrix_power_0", lambda x: np.linalg.matrix_power(x, 0) + x, (2, 2), "cs"),
    ("eigvalsh", np.linalg.eigvalsh, (3, 3), "fd"),
    ("eigvalsh_U", lambda x: np.linalg.eigvalsh(x, UPLO="U"), (3, 3), "fd"),
    ("eigh_values", lambda x: np.linalg.eigh(x + x.T)[0], (3, 3), "fd"),
    (
        "eigh_vectors",
        lambda x: np.abs(np.linalg.eigh(x + x.T + np.diag([0, 4, 9]))[1]),
        (3, 3),
        "fd",
    ),
    ("cholesky", lambda x: np.linalg.cholesky(x @ x.T + 3 * I3), (3, 3), "fd"),
    ("pinv", np.linalg.pinv, (3, 2), "fd"),
    ("pinv_wide", lambda x: np.linalg.pinv(x * 2.0), (2, 3), "fd"),
    ("lstsq_x", lambda x: np.linalg.lstsq(x, V3, rcond=None)[0], (3, 2), "fd"),
    ("lstsq_b", lambda x: np.linalg.lstsq(B34.T, x)[0], (4,), "fd"),
    ("lstsq_res", lambda x: np.linalg.lstsq(x, C3[:, :2])[1], (3, 2), "fd"),
    ("lstsq_sv", lambda x: np.linalg.lstsq(x, V3)[3], (3, 2), "fd"),
    ("cholesky_upper", lambda x: np.linalg.cholesky(SPD3 + np.triu(x), upper=True), (3, 3), "fd"),
    ("norm", np.linalg.norm, (2, 3), "fd"),
    ("norm_vec", np.linalg.norm, (3,), "fd"),
    ("norm_vec_1", lambda x: np.linalg.norm(x, 1), (3,), "fd"),
    ("norm_vec_inf", lambda x: np.linalg.norm(x, np.inf), (3,), "fd"),
    ("norm_vec_-inf", lambda x: np.linalg.norm(x, -np.inf), (3,), "fd"),
    ("norm_vec_3", lambda x: np.linalg.norm(x, 3), (3,), "fd"),
    ("norm_vec_0", lambda x: np.linalg.norm(x, 0) + x, (3,), "fd"),
    ("norm_axis", lambda x: np.linalg.norm(x, axis=1, keepdims=True), (2, 3), "fd"),
    ("norm_fro", lambda x: np.linalg.norm(x, "fro"), (2, 3), "fd"),
    ("norm_mat_1", lambda x: np.linalg.norm(x, 1), (2, 3), "fd"),
    ("norm_mat_inf", lambda x: np.linalg.norm(x, np.inf), (2, 3), "fd"),
    ("norm_mat_-1", lambda x: np.linalg.norm(x, -1), (2, 3), "fd"),
    ("norm_mat_2", lambda x: np.linalg.norm(x, 2), (2, 3), "fd"),
    # (a broadcast input is rank-deficient: a zero singular value has no derivative)
    ("norm_mat_-2", lambda x: np.linalg.norm(x, -2), (3, 2), "fd", {"bcast"}),
    ("norm_nuc", lambda x: np.linalg.norm(x, "nuc"), (2, 3), "fd", {"bcast"}),
    (
        "norm_axes",
        lambda x: np.linalg.norm(x * W232, 1, axis=(2, 0), keepdims=True),
        (2, 3, 2),
        "fd",
    ),
    ("norm_3d", np.linalg.norm, (2, 3, 2), "fd"),
    ("vector_norm", lambda x: np.linalg.vector_norm(x, axis=(0, 1), ord=4), (2, 3, 2), "fd"),
    ("matrix_norm", lambda x: np.linalg.matrix_norm(x, ord=np.inf), (2, 2, 3), "fd"),
    # ----- creation, filled in place -----
    ("zeros_like_fill", lambda x: _fill(np.zeros_like(x), x), (2, 3), "cs"),
    ("empty_like_fill", lambda x: _fill(np.empty_like(x), x), (2, 3), "cs"),
    ("ones_like", lambda x: np.ones_like(x) * x, (2, 3), "cs"),
    ("full_like", lambda x: np.full_like(x, 2.5) + x, (2, 3), "cs"),
    ("full_like_dual", lambda x: np.full_like(x, x[0, 1]) * x, (2, 3), "cs"),
]


def _fill(out, x):
    out[0] = x[1] * x[0]
    out[1, 1:] = 2 * x[0, :-1]
    out[1, 0] = x[1, 2]
    return out


# Functions whose reference cannot run on complex numbers (NumPy rejects comparisons etc.).
_IDS = [c[0] for c in CASES]
assert len(set(_IDS)) == len(_IDS)


def _layouts(shape):
    """(name, input shape, view) triples: every view maps the input to an array of ``shape``."""
    out = [("c", shape, lambda z: z)]
    if len(shape) >= 1:
        out.append(("rev", shape, lambda z: z[..., ::-1]))
        out.append(("step", (2 * shape[0],) + shape[1:], lambda z: z[::2]))
        if shape[0] > 1:
            out.append(("bcast", (1,) + shape[1:], lambda z: np.broadcast_to(z, shape)))
    if len(shape) >= 2:
        out.append(("T", shape[::-1], lambda z: np.transpose(z)))
    return out


PARAMS = [
    pytest.param(case[:4], layout, id=f"{case[0]}-{layout[0]}")
    for case in CASES
    for layout in _layouts(case[2])
    if layout[0] not in (case[4] if len(case) > 4 else ())
]


def _reference(f, x, ref):
    if ref == "cs":
        return cs_jacobian(f, x)
    return fd_jacobian(f, x)


@pytest.mark.parametrize("case, layout", PARAMS)
def test_jacobian(case, layout):
    _, g, _, ref = case
    _, in_shape, view = layout
    x = X(in_shape)

    def f(z):
        return g(view(z))

    value, J = duals.value_and_jacobian(f, x)
    value, J = np.asarray(value), np.asarray(J)
    np.testing.assert_allclose(value, np.asarray(f(x), dtype=float), rtol=1e-12, atol=1e-14)
    expect = _reference(f, x, ref)
    assert J.shape == expect.shape
    rtol = RTOL_CS if ref == "cs" else RTOL_FD
    np.testing.assert_allclose(J, expect, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("chunk", [1, 2, 5])
@pytest.mark.parametrize(
    "name", ["concatenate", "solve_both", "einsum_3ops", "sort", "prod", "kron_both", "max_axis"]
)
def test_chunk_widths(name, chunk):
    g, shape = next(c[1:3] for c in CASES if c[0] == name)
    x = X(shape)
    np.testing.assert_allclose(
        duals.jacobian(g, x, chunk=chunk), duals.jacobian(g, x), rtol=1e-13, atol=1e-14
    )


# ------------------------------------------------------------------------------------------------
# Second derivatives (hyper-dual seeds): structural maps, compositions and the lifted rules
# ------------------------------------------------------------------------------------------------


def _cubic(g):
    """A scalar function with a nontrivial Hessian even for linear ``g``."""

    def f(x):
        y = g(x)
        w = np.linspace(0.5, 1.5, np.size(y))
        return np.sum(np.reshape(y * y * y, (-1,)) * w)

    return f


HESSIAN_CASES = [
    ("reshape", lambda x: np.reshape(x, (3, 2)).T, (2, 3)),
    ("concatenate", lambda x: np.concatenate([x, x[::-1] * 2]), (4,)),
    ("cumsum", lambda x: np.cumsum(x, axis=0), (2, 3)),
    ("einsum", lambda x: np.einsum("ij,jk,ik->i", x, C3, x), (2, 3)),
    ("tensordot", lambda x: np.tensordot(x, x, ([0], [0])), (2, 3)),
    ("dot", lambda x: np.dot(x, x), (4,)),
    ("kron", lambda x: np.kron(x, x[:2]), (3,)),
    ("convolve", lambda x: np.convolve(x, x[:3]), (4,)),
    ("solve", lambda x: np.linalg.solve(x + 4 * I3, x[:, 0]), (3, 3)),
    ("solve_matrix", lambda x: np.linalg.solve(x.T + 4 * I3, x[:, :2]), (3, 3)),
    ("inv", lambda x: np.linalg.inv(x + 4 * I3), (3, 3)),
    ("det", np.linalg.det, (3, 3)),
    ("slogdet", lambda x: np.linalg.slogdet(x + 4 * I3)[1], (3, 3)),
    ("matrix_power", lambda x: np.linalg.matrix_power(x, -2), (2, 2)),
    ("eigvalsh", lambda x: np.linalg.eigvalsh(x + np.diag([0.0, 3.0, 7.0])), (3, 3)),
    ("cholesky", lambda x: np.linalg.cholesky(x @ x.T + 3 * I3), (3, 3)),
    ("pinv", np.linalg.pinv, (3, 2)),
    ("lstsq", lambda x: np.linalg.lstsq(x, V3)[0], (3, 2)),
    ("norm", np.linalg.norm, (2, 3)),
    ("norm_2", lambda x: np.linalg.norm(x, 2), (2, 3)),
    ("prod", np.prod, (5,)),
    ("cumprod", np.cumprod, (5,)),
    ("std", lambda x: np.std(x, axis=0), (3, 2)),
    ("var", np.var, (4,)),
    ("max", lambda x: np.max(x * x, axis=1), (2, 3)),
    ("sort", lambda x: np.sort(x * x), (4,)),
    ("polyval", lambda x: np.polyval(x, x[0]), (4,)),
    ("interp", lambda x: np.interp(x, [-3.0, 0.0, 3.0], [1.0, -2.0, 5.0]) * x, (4,)),
    ("sinc", np.sinc, (4,)),
    ("where", lambda x: np.where(x > 0, x * x, x), (4,)),
    ("linspace", lambda x: np.linspace(x[0] * x[1], x[2], 4), (3,)),
]


@pytest.mark.parametrize("chunk", [None, 2])
@pytest.mark.parametrize("case", HESSIAN_CASES, ids=lambda c: c[0])
def test_hessian(case, chunk):
    _, g, shape = case
    f = _cubic(g)
    x = X(shape)
    H = duals.hessian(f, x, chunk=chunk)
    expect = fd_jacobian(lambda z: duals.grad(f, z), x)
    np.testing.assert_allclose(H, expect, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        H, np.swapaxes(H.reshape(x.size, x.size), 0, 1).reshape(H.shape), atol=1e-9
    )


def test_sinc_at_zero_has_exact_derivatives():
    assert duals.derivative(np.sinc, 0.0) == 0.0
    np.testing.assert_allclose(duals.second_derivative(np.sinc, 0.0), -(np.pi**2) / 3, rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# Behaviour users rely on
# ------------------------------------------------------------------------------------------------


def _dual(x):
    x = np.asarray(x, dtype=float)
    return duals.DualArray(x, np.eye(x.size).reshape((x.size,) + x.shape))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: np.unique(x),
        lambda x: np.fft.fft(x),
        lambda x: np.linalg.eig(np.outer(x, x)),
        lambda x: np.linalg.svd(np.outer(x, x)),
        lambda x: np.histogram(x),
        lambda x: np.partition(x, 1),
        lambda x: np.save("/dev/null", x),
    ],
    ids=["unique", "fft", "eig", "svd", "histogram", "partition", "save"],
)
def test_unregistered_function_raises_naming_it(call):
    x = _dual([1.0, 3.0, 2.0])
    with pytest.raises(TypeError, match=r"duals has no derivative rule for numpy\.\w"):
        call(x)


def test_unregistered_message_names_submodule():
    with pytest.raises(TypeError, match=r"numpy\.fft\.rfft"):
        np.fft.rfft(_dual([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"numpy\.linalg\.qr"):
        np.linalg.qr(_dual(np.eye(2)))


def test_zeros_like_fill_pattern():
    """The ODE right-hand side written element by element."""

    def rober(y, k1=0.04, k2=3e7, k3=1e4):
        dy = np.zeros_like(y)
        dy[0] = -k1 * y[0] + k3 * y[1] * y[2]
        dy[1] = k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2
        dy[2] = k2 * y[1] ** 2
        return dy

    y0 = np.array([0.9, 2e-5, 0.1])
    J = duals.jacobian(rober, y0)
    k1, k2, k3 = 0.04, 3e7, 1e4
    expect = np.array(
        [
            [-k1, k3 * y0[2], k3 * y0[1]],
            [k1, -k3 * y0[2] - 2 * k2 * y0[1], -k3 * y0[1]],
            [0.0, 2 * k2 * y0[1], 0.0],
        ]
    )
    np.testing.assert_allclose(J, expect, rtol=1e-14)


@pytest.mark.parametrize("make", [np.zeros_like, np.ones_like, np.empty_like])
def test_like_functions_keep_the_seed_and_zero_tangents(make):
    x = _dual([[1.0, 2.0], [3.0, 4.0]])
    y = make(x)
    assert isinstance(y, duals.DualArray)
    assert y.shape == (2, 2) and y.tangent.shape == (4, 2, 2)
    assert not y.tangent.any()
    assert np.all(y.primal == (1.0 if make is np.ones_like else 0.0))
    z = make(x, shape=(3,))
    assert z.shape == (3,) and z.tangent.shape == (4, 3)
    d = make(x[0, 1])
    assert isinstance(d, duals.Dual)


@pytest.mark.parametrize("dtype", [int, bool, np.int32])
def test_like_functions_with_integer_dtype_are_plain(dtype):
    x = _dual([1.5, 2.5])
    for r in (
        np.zeros_like(x, dtype=dtype),
        np.ones_like(x, dtype=dtype),
        np.full_like(x, 1, dtype=dtype),
        np.zeros(3, dtype=dtype, like=x),
        np.eye(2, dtype=dtype, like=x),
        np.array([1, 0], dtype=dtype, like=x),
    ):
        assert type(r) is np.ndarray and r.dtype == np.dtype(dtype)


def test_full_like_with_dual_fill_value():
    x = _dual([1.5, 2.5])
    y = np.full_like(x, x[1])
    np.testing.assert_array_equal(y.primal, [2.5, 2.5])
    np.testing.assert_array_equal(y.tangent, [[0.0, 0.0], [1.0, 1.0]])


def test_like_creation_functions():
    def f(x):
        out = np.zeros(3, like=x)
        out[0] = x[0] * x[1]
        out[2] = x[1]
        a = np.ones((2,), like=x) * x[0]
        e = np.empty(2, like=x)
        e[:] = x[::-1]
        full = np.full(2, x[1], like=x)
        eye = np.eye(2, like=x) + np.identity(2, like=x)
        tri = np.tri(2, like=x)
        arr = np.array([x[0], 2.0, x[1] * x[1]], like=x)
        asa = np.asarray([1.0, x[0]], like=x)
        return np.concatenate([out, a, e, full, (eye @ x), tri @ x, arr, asa])

    x = np.array([1.5, -0.5])
    J = duals.jacobian(f, x)
    np.testing.assert_allclose(J, fd_jacobian(f, x), rtol=1e-9)


def test_like_creation_returns_dual_arrays_and_plain_grids():
    x = _dual([1.0, 2.0])
    for r in (
        np.zeros(2, like=x),
        np.ones((2, 2), like=x),
        np.empty(3, like=x),
        np.full(2, 7.0, like=x),
        np.eye(3, like=x),
        np.identity(2, like=x),
        np.array([1.0, 2.0], like=x),
        np.asarray([[1.0]], like=x),
        np.ascontiguousarray(3.0, like=x),
    ):
        assert isinstance(r, duals.DualArray)
        assert r.tangent.shape == (2,) + r.shape
        assert not r.tangent.any()
    for r in (np.arange(4, like=x), np.arange(0.0, 1.0, 0.25, like=x)):
        assert type(r) is np.ndarray
    grid = np.fromfunction(lambda i, j: i + j, (2, 3), like=x)
    assert type(grid) is np.ndarray and grid.shape == (2, 3)
    assert np.asarray(x, like=x) is x


def test_array_with_like_collects_duals():
    x = _dual([1.0, 2.0])
    y = np.array([x[0], x[1] * 3.0, 4.0], like=x)
    np.testing.assert_array_equal(y.primal, [1.0, 6.0, 4.0])
    np.testing.assert_array_equal(y.tangent, [[1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    y2 = np.array(x, ndmin=2, like=x)
    assert y2.shape == (1, 2)


def test_prod_with_zeros():
    # d/dx_i prod(x) = prod of the others, also where some x_j are exactly zero
    for x in ([0.0, 2.0, 3.0, 4.0], [0.0, 2.0, 0.0, 4.0], [5.0, 0.0, 3.0], [0.0]):
        x = np.array(x)
        expect = [np.prod(np.delete(x, i)) for i in range(x.size)]
        np.testing.assert_array_equal(duals.grad(np.prod, x), expect)
    x = np.array([0.0, 2.0, 3.0])
    J = duals.jacobian(np.cumprod, x)
    np.testing.assert_array_equal(J, [[1, 0, 0], [2, 0, 0], [6, 0, 0]])
    H = duals.hessian(np.prod, np.array([0.0, 0.0, 3.0]))
    np.testing.assert_array_equal(H, [[0, 3, 0], [3, 0, 0], [0, 0, 0]])


def test_prod_of_empty_is_one_with_zero_derivative():
    x = _dual([1.0, 2.0])
    r = np.prod(x[:0])
    assert r.primal == 1.0 and r.tangent.tolist() == [0.0, 0.0]


def test_selection_derivative_follows_the_selected_element():
    x = np.array([3.0, -1.0, 7.0, 2.0])
    np.testing.assert_array_equal(duals.grad(np.max, x), [0, 0, 1, 0])
    np.testing.assert_array_equal(duals.grad(np.min, x), [0, 1, 0, 0])
    np.testing.assert_array_equal(duals.jacobian(np.sort, x), np.eye(4)[[1, 3, 0, 2]])
    # ties: the first of the maximal elements, as np.argmax picks it
    np.testing.assert_array_equal(duals.grad(np.max, np.array([1.0, 5.0, 5.0])), [0, 1, 0])
    # clip: inside the interval the derivative is 1, outside 0
    np.testing.assert_array_equal(
        duals.derivative(lambda v: np.clip(v, 0.0, 1.0), np.array([-1.0, 0.5, 2.0])), [0, 1, 0]
    )
    # where: follows the chosen branch
    np.testing.assert_array_equal(
        duals.derivative(lambda v: np.where(v > 0, 2 * v, -3 * v), np.array([-1.0, 1.0])), [-3, 2]
    )


def test_max_nan_propagates_with_its_derivative():
    x = np.array([1.0, np.nan, 3.0])
    v, g = duals.value_and_grad(np.max, x)
    assert np.isnan(v)
    np.testing.assert_array_equal(g, [0, 1, 0])


def test_std_var_values_and_gradients():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    n = x.size
    for ddof in (0, 1):
        g = duals.grad(lambda v, d=ddof: np.var(v, ddof=d), x)
        np.testing.assert_allclose(g, 2 * (x - x.mean()) / (n - ddof), rtol=1e-14)
        g = duals.grad(lambda v, d=ddof: np.std(v, ddof=d), x)
        np.testing.assert_allclose(g, (x - x.mean()) / ((n - ddof) * np.std(x, ddof=ddof)))


def test_std_with_mean_argument_and_where():
    x = np.array([[1.0, 2.0, 4.0], [3.0, -1.0, 0.5]])
    m = np.mean(x, axis=1, keepdims=True)
    f = lambda v: np.std(v, axis=1, mean=np.mean(v, axis=1, keepdims=True))  # noqa: E731
    np.testing.assert_allclose(duals.jacobian(f, x), fd_jacobian(f, x), rtol=1e-7, atol=1e-9)
    assert np.allclose(f(x), np.std(x, axis=1, mean=m))
    w = np.array([[True, True, False], [True, False, True]])
    g = lambda v: np.var(v, axis=1, where=w)  # noqa: E731
    np.testing.assert_allclose(duals.jacobian(g, x), fd_jacobian(g, x), rtol=1e-7, atol=1e-9)


def test_linalg_tangents_match_formulas():
    A = C3 + 4 * I3
    Ai = np.linalg.inv(A)
    # d det / dA = det(A) A^-T
    np.testing.assert_allclose(duals.grad(np.linalg.det, A), np.linalg.det(A) * Ai.T, rtol=1e-12)
    # d logdet / dA = A^-T
    np.testing.assert_allclose(
        duals.grad(lambda a: np.linalg.slogdet(a).logabsdet, A), Ai.T, rtol=1e-12
    )
    # d inv(A)_ij / dA_kl = -Ai_ik Ai_lj
    np.testing.assert_allclose(
        duals.jacobian(np.linalg.inv, A), -np.einsum("ik,lj->ijkl", Ai, Ai), rtol=1e-12, atol=1e-15
    )
    # det of a singular matrix: the adjugate
    S = np.array([[1.0, 2.0], [2.0, 4.0]])
    np.testing.assert_allclose(duals.grad(np.linalg.det, S), [[4.0, -2.0], [-2.0, 1.0]], atol=1e-14)
    # eigenvalues: d lambda_i = v_i^T dA v_i, symmetric perturbation of the lower triangle
    w, V = np.linalg.eigh(SPD3)
    J = duals.jacobian(np.linalg.eigvalsh, SPD3)
    outer = np.einsum("ji,li->ijl", V, V)
    expect = 2 * np.tril(outer, -1) + outer * np.eye(3)
    np.testing.assert_allclose(J, expect, atol=1e-12)


def test_slogdet_returns_named_result_with_plain_sign():
    x = _dual(-(C3 + 4 * I3))
    r = np.linalg.slogdet(x)
    assert isinstance(r.sign, np.ndarray) or isinstance(r.sign, float)
    assert float(r.sign) == np.linalg.slogdet(-(C3 + 4 * I3)).sign
    assert isinstance(r.logabsdet, duals.Dual)
    w, v = np.linalg.eigh(_dual(SPD3))
    assert isinstance(w, duals.DualArray) and isinstance(v, duals.DualArray)


def test_primal_only_functions_return_plain_arrays():
    x = _dual([3.0, 1.0, 2.0])
    assert np.argmax(x) == 0 and np.argmin(x) == 1
    np.testing.assert_array_equal(np.argsort(x), [1, 2, 0])
    np.testing.assert_array_equal(np.nonzero(x - 1.0)[0], [0, 2])
    np.testing.assert_array_equal(np.where(x > 1.5), (np.array([0, 2]),))
    assert np.count_nonzero(x - 1.0) == 2
    np.testing.assert_array_equal(np.searchsorted(np.sort(x), [1.5, 2.5]), [1, 2])
    assert np.shape(x) == (3,) and np.ndim(x) == 1 and np.size(x) == 3
    assert np.result_type(x, 1) == np.float64
    assert np.isclose(x, [3.0, 1.0, 2.0]).all() and np.allclose(x, [3.0, 1.0, 2.0])
    assert np.array_equal(x, [3.0, 1.0, 2.0])
    assert not np.iscomplexobj(x) and np.isrealobj(x)
    assert np.all(x > 0) and np.any(x > 2.5)
    np.testing.assert_array_equal(np.digitize(x, [1.5]), [1, 0, 1])
    assert np.all(x) and not np.any(x - x) and np.all(x, axis=0)
    np.testing.assert_array_equal(np.argpartition(x, 1)[:1], [1])
    np.testing.assert_array_equal(np.argwhere(x - 1.0), [[0], [2]])
    np.testing.assert_array_equal(np.flatnonzero(x - 2.0), [0, 1])
    assert np.array_equiv(x, [3.0, 1.0, 2.0])
    np.testing.assert_array_equal(np.iscomplex(x), [False] * 3)
    np.testing.assert_array_equal(np.isreal(x), [True] * 3)
    np.testing.assert_array_equal(np.isin(x, [2.0, 3.0]), [True, False, True])
    np.testing.assert_array_equal(np.lexsort((x,)), [1, 2, 0])
    assert np.nanargmax(x) == 0 and np.nanargmin(x) == 1
    assert np.common_type(x) is np.float64
    assert not np.shares_memory(x, np.zeros(3)) and not np.may_share_memory(x, np.zeros(3))
    m = np.outer(x, x)
    assert np.linalg.matrix_rank(m) == 1
    assert np.linalg.matrix_transpose(m).shape == (3, 3)
    np.testing.assert_array_equal(np.tril_indices_from(m)[0], np.tril_indices(3)[0])
    np.testing.assert_array_equal(np.triu_indices_from(m)[1], np.triu_indices(3)[1])
    np.testing.assert_array_equal(np.diag_indices_from(m)[0], [0, 1, 2])
    path, _ = np.einsum_path("ij,jk->ik", m, m)
    assert path[0] == "einsum_path"
    assert isinstance(np.asanyarray([x[0]], like=x), duals.DualArray)
    assert np.asfortranarray(x, like=x) is x
    r = np.round(_dual([1.26, 2.5]), 1)
    np.testing.assert_array_equal(r.primal, [1.3, 2.5])
    assert not r.tangent.any()


def test_split_returns_lists_of_dual_arrays():
    x = _dual(np.arange(6.0).reshape(2, 3))
    parts = np.split(x, 3, axis=1)
    assert isinstance(parts, list) and len(parts) == 3
    assert all(isinstance(p, duals.DualArray) and p.shape == (2, 1) for p in parts)
    parts = np.array_split(x.ravel(), 4)
    assert [p.shape for p in parts] == [(2,), (2,), (1,), (1,)]


def test_out_argument():
    x = _dual([1.0, 2.0, 3.0])
    out = np.zeros_like(x[:1])
    r = np.sum(x, keepdims=True, out=out)
    assert r is out and out.primal[0] == 6.0 and out.tangent.ravel().tolist() == [1, 1, 1]
    with pytest.raises(TypeError, match="derivative"):
        np.sum(x, keepdims=True, out=np.zeros(1))
    with pytest.raises(TypeError, match="derivative"):
        np.sum(x, dtype=int)


def test_in_place_helpers():
    x = _dual([1.0, 2.0, 3.0])
    a = np.zeros((3, 3), like=x)
    np.fill_diagonal(a, x)
    np.testing.assert_array_equal(a.primal, np.diag([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(a.tangent[1], np.diag([0.0, 1.0, 0.0]))
    b = np.zeros(3, like=x)
    np.copyto(b, x * 2, where=[True, False, True])
    np.testing.assert_array_equal(b.primal, [2.0, 0.0, 6.0])
    np.put(b, [1], x[0])
    np.testing.assert_array_equal(b.tangent[0], [2.0, 1.0, 0.0])
    c = np.zeros((2, 2), like=x)
    np.put_along_axis(c, np.array([[1], [0]]), x[:2, None], axis=1)
    np.testing.assert_array_equal(c.primal, [[0.0, 1.0], [2.0, 0.0]])
    with pytest.raises(TypeError, match="derivative"):
        np.copyto(np.zeros(3), x)


def test_mixed_seeds_are_rejected():
    a = duals.DualArray([1.0, 2.0], np.eye(2))
    b = duals.DualArray([1.0, 2.0], np.ones((3, 2)))
    with pytest.raises(ValueError, match="tangent layouts"):
        np.concatenate([a, b])


def test_bad_arguments_raise_numpy_errors():
    x = _dual(np.arange(6.0).reshape(2, 3))
    with pytest.raises(np.exceptions.AxisError):
        np.sum(x, axis=2)
    with pytest.raises(ValueError):
        np.concatenate([x, x[0]])
    with pytest.raises(ValueError):
        np.split(x, 4, axis=1)
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.inv(x)
    with pytest.raises(TypeError, match="index"):
        np.take(x, x[0, 0])
    with pytest.raises(TypeError, match="pad"):
        np.pad(x, 1, mode="maximum")
    with pytest.raises(TypeError, match="quantile"):
        np.quantile(x, 0.5, method="nearest")


def test_np_gradient_matches_exact_derivative_on_a_grid():
    """The derivative of a sampled function is exact; np.gradient of the samples is not."""
    t = np.linspace(0.0, 2.0, 41)
    exact = duals.derivative(lambda v: np.sin(v) * v, t)
    np.testing.assert_allclose(exact, np.cos(t) * t + np.sin(t), rtol=1e-13, atol=1e-15)
    approx = np.gradient(np.sin(t) * t, t)
    assert np.max(np.abs(approx - exact)) > 1e-5
    # and np.gradient itself is linear: its Jacobian is the stencil matrix
    J = duals.jacobian(lambda v: np.gradient(v, t), np.sin(t))
    np.testing.assert_allclose(J @ (np.sin(t) * t), approx, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "f",
    [
        lambda x: x + 1.0,
        lambda x: np.einsum("ij,j->i", C4, x),
        lambda x: np.linalg.inv(np.reshape(x, (2, 2))),
        lambda x: np.linalg.solve(C4 + 4 * np.eye(4), x),
        lambda x: np.linspace(x[0], x[1], 3),
        lambda x: np.full_like(x, x[0]),
        lambda x: np.concatenate([x, x]),
        lambda x: np.sort(x),
        lambda x: np.max(np.reshape(x, (2, 2)), axis=0),
    ],
    ids=["add", "einsum", "inv", "solve", "linspace", "full_like", "concatenate", "sort", "max"],
)
def test_results_are_writable_and_do_not_alias_the_input(f):
    x = _dual([1.0, 2.0, 3.0, 4.0])
    y = f(x)
    y[0] = 9.0
    np.testing.assert_array_equal(x.primal, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(x.tangent, np.eye(4))
    assert not y.tangent[:, 0].any()


# ------------------------------------------------------------------------------------------------
# np.concatenate natively (duals._native._concatenate) against the Python implementation
# ------------------------------------------------------------------------------------------------


def _dual_of(shape, k, seed, offset=0.0):
    n = int(np.prod(shape, dtype=int))
    p = np.arange(n, dtype=float).reshape(shape) + offset
    t = np.sin(np.arange(k * n, dtype=float) + offset).reshape((k,) + shape)
    return duals.DualArray(p, t) if seed is None else duals._core._make(p, t, seed)


def _concat_cases(k):
    from duals._core import Seed

    s = Seed.first(k)
    a, b = _dual_of((12,), k, s), _dual_of((7,), k, s, 100.0)
    m, w = _dual_of((3, 4), k, s), _dual_of((2, 4), k, s, 50.0)
    e = _dual_of((0,), k, s)
    return [
        ([a, b], 0),
        ((a[:-1], a[1:]), 0),  # strided rows, tuple
        ([np.ones(1), a[:5], 3.0 * np.ones(2)], 0),  # constants
        ([a[::-1], b[::2], a[3:4]], -1),  # reversed and strided: copied
        ([e, a, e], 0),  # empty pieces
        ([m, w], 0),
        ([m[:, 1:], m[:, :2]], 1),  # along the second axis
        ([m.T, np.ones((4, 1))], -1),
        ([m[:2], w[:, ::-1]], 0),
    ]


@pytest.mark.parametrize("k", [1, 3])
def test_concatenate_native_is_bit_identical_to_python(k, monkeypatch):
    from duals import _functions, _native

    native = [np.concatenate(arrays, axis=axis) for arrays, axis in _concat_cases(k)]
    monkeypatch.setattr(_native, "_concatenate", lambda arrays, axis: None)
    for got, (arrays, axis) in zip(native, _concat_cases(k), strict=True):
        want = _functions._concatenate(arrays, axis=axis)
        assert type(got) is duals.DualArray
        assert got._s == want._s
        assert got.tangent.flags.c_contiguous and got.primal.flags.c_contiguous
        np.testing.assert_array_equal(got.primal, want.primal)
        np.testing.assert_array_equal(got.tangent, want.tangent)
        for piece in arrays:  # a new array, not a view of a piece
            if isinstance(piece, duals.DualArray):
                assert not np.shares_memory(got.tangent, piece.tangent)


def test_concatenate_native_declines_what_it_does_not_handle():
    from duals import _native
    from duals._core import Seed

    s = Seed.first(2)
    a, b = _dual_of((3,), 2, s), _dual_of((3,), 2, Seed.first(2))
    m = _dual_of((2, 3), 2, s)
    declined = [
        ([a, b], 0),  # two seed objects (equal ones: the Python path compares them)
        ([a, np.arange(3)], 0),  # an integer array
        ([a, [1.0, 2.0]], 0),  # a list
        ([np.ones(2), np.ones(2)], 0),  # no dual array
        ([a, m], 0),  # different numbers of dimensions
        ([a, a], 1),  # axis out of range
        ([m, _dual_of((2, 2), 2, s)], 0),  # shapes differ off the axis
        ((x for x in [a, a]), 0),  # not a list or tuple
        ([a, a], 1.0),  # not an int axis
    ]
    for arrays, axis in declined:
        assert _native._concatenate(arrays, axis) is None
    # and through np.concatenate, the Python path's results and errors
    np.testing.assert_array_equal(np.concatenate([a, b]).tangent, np.concatenate([a._t, b._t], 1))
    with pytest.raises(ValueError):
        np.concatenate([a, m])
    with pytest.raises(ValueError):
        np.concatenate([a, _dual_of((3,), 3, Seed.first(3))])


def test_concatenate_in_a_jacobian_with_strided_rows():
    # the Brusselator pattern: slices of the input and constants joined, chunks of directions
    def f(y):
        u, v = y[:4], y[4:]
        one = np.ones_like(u[:1])
        return np.concatenate([np.concatenate([one, u[:-1]]) * v, np.concatenate([v[1:], one])])

    y = np.linspace(0.5, 1.5, 8)
    J = np.zeros((8, 8))
    J[0, 4] = 1.0
    for i in range(1, 4):
        J[i, i - 1] = y[4 + i]
        J[i, 4 + i] = y[i - 1]
    for i in range(3):
        J[4 + i, 5 + i] = 1.0
    for chunk in (None, 1, 3, 8):
        np.testing.assert_array_equal(duals.jacobian(f, y, chunk=chunk), J)
