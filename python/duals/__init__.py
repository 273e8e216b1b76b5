"""duals: exact derivatives of ordinary NumPy functions by forward-mode automatic differentiation.

>>> import numpy as np, duals
>>> duals.derivative(np.sin, 0.0)           # cos(0)
1.0
"""

from ._api import (
    derivative,
    grad,
    hessian,
    hvp,
    jacobian,
    jvp,
    second_derivative,
    value_and_grad,
    value_and_jacobian,
)
from ._compile import Compiled, compile
from ._core import Dual, DualArray
from ._native import __version__

__all__ = [
    "Compiled",
    "Dual",
    "DualArray",
    "__version__",
    "compile",
    "derivative",
    "grad",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "scipy",
    "second_derivative",
    "value_and_grad",
    "value_and_jacobian",
]


def __getattr__(name: str):
    # duals.scipy is imported on first use: importing duals never imports it (or SciPy).
    if name == "scipy":
        import importlib

        return importlib.import_module(".scipy", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
