"""Reference derivatives for the tests: complex step, 8th-order central differences, mpmath."""

from __future__ import annotations

import mpmath
import numpy as np

H_CS = 1e-20  # complex step: no cancellation, exact to rounding for analytic functions
FD8 = ((1, 4 / 5), (2, -1 / 5), (3, 4 / 105), (4, -1 / 280))


def cs_derivative(f, x):
    """Elementwise f'(x) of an elementwise analytic f, by the complex step."""
    x = np.asarray(x, dtype=float)
    return np.imag(f(x + 1j * H_CS)) / H_CS


def cs_jacobian(f, x):
    """Jacobian of shape f(x).shape + x.shape by the complex step, column by column."""
    x = np.asarray(x, dtype=float)
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size, dtype=complex)
        e[j] = 1j * H_CS
        cols.append(np.imag(np.asarray(f(x + e.reshape(x.shape)))) / H_CS)
    out_shape = np.shape(cols[0])
    return np.stack(cols, axis=-1).reshape(out_shape + x.shape)


def fd_derivative(f, x, h=1e-3):
    """Elementwise f'(x) by the 8th-order central difference."""
    x = np.asarray(x, dtype=float)
    return sum(c * (f(x + k * h) - f(x - k * h)) for k, c in FD8) / h


def fd_jacobian(f, x, h=1e-3):
    """Jacobian of shape f(x).shape + x.shape by the 8th-order central difference."""
    x = np.asarray(x, dtype=float)
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = h
        e = e.reshape(x.shape)
        col = sum(
            c * (np.asarray(f(x + k * e), dtype=float) - np.asarray(f(x - k * e), dtype=float))
            for k, c in FD8
        )
        cols.append(col / h)
    out_shape = np.shape(cols[0])
    return np.stack(cols, axis=-1).reshape(out_shape + x.shape)


def mp_diff(fn, x, n=1):
    """The n-th derivative of an mpmath function at float x, as a float."""
    with mpmath.workdps(40):
        return float(mpmath.diff(fn, mpmath.mpf(float(x)), n))


def mp_hessian2(fn, a, b):
    """[[f_aa, f_ab], [f_ab, f_bb]] of an mpmath function of two arguments."""
    with mpmath.workdps(40):
        pa, pb = mpmath.mpf(float(a)), mpmath.mpf(float(b))
        faa = float(mpmath.diff(fn, (pa, pb), (2, 0)))
        fab = float(mpmath.diff(fn, (pa, pb), (1, 1)))
        fbb = float(mpmath.diff(fn, (pa, pb), (0, 2)))
    return np.array([[faa, fab], [fab, fbb]])
