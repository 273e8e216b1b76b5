"""Collecting what a user's function returns into one primal array and one tangent array.

Users build outputs in every way NumPy allows: a DualArray, a Dual, a float or float ndarray
(zero derivative), or a list, tuple or object ndarray of any mix of these, nested. This module
turns any of them into ``(primal, tangent or None, seed or None)``.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._core import DualArray, _DualBase, _mixed_seeds, _seed_of
from ._native import _collect_duals


def collect(obj):
    """``(primal ndarray, tangent ndarray (K, *S) or None, seed or None)`` of an output."""
    kind = type(obj)
    if kind is DualArray:
        return obj._p, obj._t, obj._s
    if kind is list or kind is tuple or kind is np.ndarray:
        # The common cases, [Dual, Dual, float, ...] and np.array([...]) of them (one seed),
        # natively; None for anything else (a float ndarray, nesting, mixed seeds, ...).
        fast = _collect_duals(obj)
        if fast is not None:
            return fast
    if isinstance(obj, _DualBase):
        return obj._p, obj._t, obj._s
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        return _plain(obj)
    if isinstance(obj, (numbers.Real, np.generic)) and not isinstance(obj, np.ndarray):
        return _plain(np.asarray(obj))
    if isinstance(obj, np.ndarray):  # object array: its elements
        items = list(obj.reshape(-1))
        shape = obj.shape
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
        shape = None
    elif isinstance(obj, numbers.Complex):
        raise TypeError(
            "the function returned a complex value; duals differentiates real functions"
        )
    else:
        raise TypeError(
            f"cannot differentiate an output of type {type(obj).__name__}; return a number, "
            "a NumPy array, a dual array, or a list/tuple/array of these"
        )
    parts = [collect(item) for item in items]
    if shape is None:
        shapes = {p.shape for p, _, _ in parts}
        if len(shapes) > 1:
            raise ValueError(
                f"the elements of the returned list have different shapes {sorted(shapes)}; "
                "NumPy could not stack them either"
            )
        inner = parts[0][0].shape if parts else ()
        shape = (len(parts),) + inner
    else:
        inner = ()
        for p, _, _ in parts:
            if p.shape != ():
                raise ValueError(
                    "an object array returned by the function must hold scalars; "
                    f"found an element of shape {p.shape}"
                )
    try:
        seed = _seed_of(*(s for _, _, s in parts))
    except ValueError as e:
        raise ValueError(str(e)) from None
    primal = np.empty(shape)
    flat_p = primal.reshape((len(parts),) + inner)
    for i, (p, _, _) in enumerate(parts):
        flat_p[i] = p
    if seed is None:
        return primal, None, None
    if seed.order == 0:  # traced (duals.compile): tape values, constants as their values
        tangent = np.empty((1,) + shape, dtype=object)
        flat_t = tangent.reshape((1, len(parts)) + inner)
        for i, (p, t, _) in enumerate(parts):
            flat_t[:, i] = p[np.newaxis] if t is None else t
        return primal, tangent, seed
    tangent = np.zeros((seed.K,) + shape)
    flat_t = tangent.reshape((seed.K, len(parts)) + inner)
    for i, (_, t, _) in enumerate(parts):
        if t is not None:
            flat_t[:, i] = t
    return primal, tangent, seed


def _plain(a: np.ndarray):
    if a.dtype.kind == "c":
        raise TypeError(
            "the function returned a complex value; duals differentiates real functions"
        )
    if a.dtype.kind not in "biuf":
        raise TypeError(f"the function returned an array of dtype {a.dtype}; expected real numbers")
    return a.astype(np.float64), None, None


__all__ = ["collect", "_mixed_seeds"]
