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
from ._core import Dual, DualArray
from ._native import __version__

__all__ = [
    "Dual",
    "DualArray",
    "__version__",
    "derivative",
    "grad",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "second_derivative",
    "value_and_grad",
    "value_and_jacobian",
]
