"""The compiled part of duals (rust/duals-py): the engine's rule table, fused kernels and the
``Dual`` scalar class.

Import ``duals``, not this module. Every derivative formula lives in the engine's rule table
(``rust/duals/src/rules.rs``); these functions evaluate it on float64 arrays, elementwise, and
``Dual`` evaluates it on one dual number.
"""

from typing import Any

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

class Dual:
    """A dual number: a primal value and its tangent(s); ``duals.Dual``.

    ``Dual(x, 1.0)`` is the independent variable at ``x``. Indexing a ``DualArray`` down to one
    element returns one. Stores the primal (float), ``K`` tangents and the ``Seed`` that says
    what they mean (``duals._core``).

    The number protocol runs natively (no Python call, the engine's ``DualDyn`` arithmetic and
    rule table) for a first-order seed: ``Dual ⊗ Dual`` of one seed and ``Dual ⊗ float/int`` on
    either side for ``+ - * /``, unary ``- +``, ``abs``, ``** float/int``, ``float ** Dual``,
    comparisons (on primals, returning ``bool``), and the same operations and the rule-table
    ufuncs (``np.sin(d)``, ``np.multiply(2.0, d)``) through ``__array_ufunc__`` without keyword
    arguments. Sums, differences and scaling by constants also run natively for second-order
    seeds. Everything else calls the Python implementation (``duals._core``, ``duals._ufuncs``,
    ``duals._functions``).

    Conversions that would lose the derivative (``float``, ``int``, ``__index__``, ``complex``,
    ``round``) raise ``TypeError``. Unhashable; no ``__len__``, ``__getitem__``, ``__iter__`` or
    ``__array__`` (so ``np.array([d0, d1])`` is an object array).
    """

    __array_priority__: float

    def __init__(self, primal: float, tangent: float | npt.ArrayLike = 1.0) -> None: ...
    @property
    def primal(self) -> float:
        """The value."""
    @property
    def tangent(self) -> float | npt.NDArray[np.float64]:
        """The tangent: a float for one direction (first order), else a copy of the ``(K,)``
        tangents."""
    @property
    def shape(self) -> tuple[()]: ...
    @property
    def ndim(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def ntangents(self) -> int:
        """Number of tangent rows ``K``."""
    @property
    def real(self) -> Dual: ...
    @property
    def imag(self) -> Dual: ...
    # The storage as the generic Python code reads it (new arrays on every access).
    @property
    def _p(self) -> npt.NDArray[np.float64]: ...
    @property
    def _t(self) -> npt.NDArray[np.float64]: ...
    @property
    def _s(self) -> Any: ...
    @staticmethod
    def _from_parts(primal: float, tangent: npt.ArrayLike, seed: Any) -> Dual:
        """The Dual of a primal, ``K`` tangents and a ``Seed`` (``duals._core._make``)."""
    def __add__(self, other: Any) -> Any: ...
    def __radd__(self, other: Any) -> Any: ...
    def __sub__(self, other: Any) -> Any: ...
    def __rsub__(self, other: Any) -> Any: ...
    def __mul__(self, other: Any) -> Any: ...
    def __rmul__(self, other: Any) -> Any: ...
    def __truediv__(self, other: Any) -> Any: ...
    def __rtruediv__(self, other: Any) -> Any: ...
    def __pow__(self, other: Any, modulo: None = None) -> Any: ...
    def __rpow__(self, other: Any, modulo: None = None) -> Any: ...
    def __mod__(self, other: Any) -> Any: ...
    def __rmod__(self, other: Any) -> Any: ...
    def __floordiv__(self, other: Any) -> Any: ...
    def __rfloordiv__(self, other: Any) -> Any: ...
    def __matmul__(self, other: Any) -> Any: ...
    def __rmatmul__(self, other: Any) -> Any: ...
    def __neg__(self) -> Dual: ...
    def __pos__(self) -> Dual: ...
    def __abs__(self) -> Any: ...
    def __lt__(self, other: Any) -> Any: ...
    def __le__(self, other: Any) -> Any: ...
    def __gt__(self, other: Any) -> Any: ...
    def __ge__(self, other: Any) -> Any: ...
    def __eq__(self, other: Any) -> Any: ...  # type: ignore[override]
    def __ne__(self, other: Any) -> Any: ...  # type: ignore[override]
    __hash__: None  # type: ignore[assignment]
    def __bool__(self) -> bool: ...
    def __float__(self) -> float:
        """Raises TypeError: the derivative would be lost."""
    def __int__(self) -> int:
        """Raises TypeError: the derivative would be lost."""
    def __index__(self) -> int:
        """Raises TypeError: the derivative would be lost."""
    def __complex__(self) -> complex:
        """Raises TypeError: the derivative would be lost."""
    def __round__(self, ndigits: int | None = None) -> float:
        """Raises TypeError: the derivative would be lost."""
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any: ...
    def __array_function__(
        self, func: Any, types: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...
    def sum(self, axis: Any = None, keepdims: bool = False) -> Any: ...
    def mean(self, axis: Any = None, keepdims: bool = False) -> Any: ...
    def prod(self, axis: Any = None, keepdims: bool = False) -> Any: ...
    def max(self, axis: Any = None, keepdims: bool = False) -> Any: ...
    def min(self, axis: Any = None, keepdims: bool = False) -> Any: ...
    def dot(self, other: Any) -> Any: ...
    def copy(self) -> Dual: ...
    def conj(self) -> Dual: ...
    def conjugate(self) -> Dual: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

# Private (not part of the stub check): the storage base class of duals.DualArray,
# ``_DualArrayBase(primal, tangent, seed)`` with read-only ``_p``/``_t``/``_s`` and native
# ``x[i]`` / ``x[i] = d`` for an int ``i`` on a 1-d array (other indices: the subclass's
# ``_getitem``/``_setitem``); ``_eye(n)``, a new identity matrix; and the fast paths of
# duals._collect and duals._api, returning None where the caller takes the general path:
# ``_collect_duals(items) -> (primal, tangent, seed)`` for a list/tuple/object array of Duals
# and floats, ``_jacobian_rows(y, seed, value) -> (primal or None, shape, J)`` likewise for a
# first-order seed.
