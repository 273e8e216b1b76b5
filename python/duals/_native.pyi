"""The compiled part of duals (rust/duals-py): the engine's rule table and fused kernels.

Import ``duals``, not this module. Every derivative formula lives in the engine's rule table
(``rust/duals/src/rules.rs``); these functions evaluate it on float64 arrays, elementwise.
"""

import numpy as np
import numpy.typing as npt

__version__: str

#: Names of the one-argument rules, e.g. ``"sin"``, ``"powi"``, ``"ln_1p"``.
UNARY_RULES: list[str]
#: Names of the two-argument rules: ``"pow"``, ``"atan2"``, ``"hypot"``, ``"rem"``.
BINARY_RULES: list[str]

def unary(
    name: str,
    primal: npt.NDArray[np.float64],
    tangent: npt.NDArray[np.float64],
    param: float = 0.0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The fused first-order kernel: ``(f(primal), f'(primal) * tangent)``.

    ``tangent`` has shape ``(k, *primal.shape)``; every row is multiplied by ``f'(primal)``.
    ``param`` is the exponent of ``powi`` (rounded to an integer) and ``powf``, ignored otherwise.
    The GIL is released for large arrays.

    Raises
    ------
    ValueError
        For an unknown rule name or a tangent of the wrong shape.
    """

def unary_derivs(
    name: str, x: npt.NDArray[np.float64], param: float = 0.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Value, first and second derivative of a one-argument rule, elementwise:
    ``(f(x), f'(x), f''(x))``, each of shape ``x.shape``.

    Raises
    ------
    ValueError
        For an unknown rule name.
    """

def binary_derivs(
    name: str, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
) -> list[npt.NDArray[np.float64]]:
    """Value, gradient and Hessian of a two-argument rule, elementwise:
    ``[f, df/da, df/db, d²f/da², d²f/dadb, d²f/db²]``, each of shape ``a.shape``.

    ``a`` and ``b`` must have the same shape (broadcast them first).

    Raises
    ------
    ValueError
        For an unknown rule name or arguments of different shapes.
    """

def simd_level() -> str:
    """The instruction set the array kernels run with on this CPU (e.g. ``"V3"``, ``"V4"``,
    ``"Scalar"``)."""
