"""The compiled part of duals (rust/duals-py): the engine's rule table, fused kernels, the
``Dual`` scalar class, and recorded tapes (``TapeBuilder``, ``Tape``, ``CompiledCore``).

Import ``duals``, not this module. Every derivative formula lives in the engine's rule table
(``rust/duals/src/rules.rs``); these functions evaluate it on float64 arrays, elementwise, and
``Dual`` evaluates it on one dual number.
"""

from collections.abc import Callable
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

# ------------------------------------------------------------------------------------------------
# Tapes (rust/duals-py/src/tape.rs over the engine's rust/duals/src/tape)
# ------------------------------------------------------------------------------------------------

class TapeBuilder:
    """Records a tape as a tracer meets operations (the engine's ``TapeBuilder``).

    Values are named by int handles; each carries its value at the trace point (``value``), so
    branches are decided with the tape's own arithmetic. A handle the builder did not hand out
    raises ValueError. Not thread-safe: use one builder from one thread at a time.
    """

    def __init__(self) -> None: ...
    def input(self, value: float) -> int:
        """A new input ``x[n_inputs]`` with its value at the trace point."""
    def constant(self, c: float) -> int:
        """A constant (a value captured from the function's closure or ``args``)."""
    def unary(self, name: str, a: int, param: float = 0.0) -> int:
        """``name(a)`` for a one-argument rule (``UNARY_RULES``: ``"sin"``, ``"powi"``, ...);
        ``param`` is the exponent of ``powi`` (rounded) and ``powf``. ValueError for an unknown
        name, listing the known ones."""
    def binary(self, name: str, a: int, b: int) -> int:
        """``name(a, b)``: ``"add"``, ``"sub"``, ``"mul"``, ``"div"``, ``"min"``, ``"max"`` or a
        two-argument rule (``BINARY_RULES``: ``"pow"``, ``"atan2"``, ``"hypot"``, ``"rem"``).
        ``min``/``max`` compare values; ties and a NaN ``b`` select ``a``."""
    def neg(self, a: int) -> int:
        """``-a``."""
    def select(self, op: str, a: int, b: int, if_true: int, if_false: int) -> int:
        """``if_true if a op b else if_false``, decided again at every point (``np.where``): no
        guard; the derivative is that of the selected value. ``op`` is ``"<"``, ``"<="``,
        ``">"``, ``">="``, ``"=="``, ``"!="`` (or ``"lt"``, ``"le"``, ...)."""
    def compare(self, op: str, a: int, b: int) -> bool:
        """``a op b`` at the trace point; records nothing."""
    def guard(self, op: str, a: int, b: int) -> bool:
        """``a op b`` at the trace point, recorded as a guard: the finished tape stands for the
        function only where the comparison comes out the same (``Tape.guards_hold``)."""
    def value(self, v: int) -> float:
        """The value of ``v`` at the trace point."""
    def output(self, v: int) -> None:
        """Appends ``v`` to the outputs."""
    def finish(self) -> Tape:
        """The finished tape: constants folded, common subexpressions merged, dead code
        removed (results bit-identical). The builder can go on recording."""
    def unary_many(
        self, name: str, a: npt.NDArray[np.int64], param: float = 0.0
    ) -> npt.NDArray[np.int64]:
        """``unary(name, a[i], param)`` for each handle of the 1-d int64 array ``a``."""
    def binary_many(
        self, name: str, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """``binary(name, a[i], b[i])`` for 1-d int64 arrays of equal length (or one of length
        1, broadcast)."""
    @property
    def n_inputs(self) -> int: ...
    @property
    def n_ops(self) -> int:
        """Instructions recorded (before ``finish`` simplifies)."""
    @property
    def n_values(self) -> int:
        """Inputs, constants and instructions recorded."""
    @property
    def n_outputs(self) -> int: ...

class Tape:
    """A recorded function ``f: R^n -> R^m``, immutable and thread-safe.

    Every method evaluates the engine's tape with its drivers (no Python runs); large
    evaluations release the GIL. Points ``x`` are 1-d array-likes of length ``n`` (converted to
    float64); a wrong length raises ValueError. Picklable (``to_bytes``).
    """

    @property
    def n_inputs(self) -> int:
        """``n``."""
    @property
    def n_outputs(self) -> int:
        """``m``."""
    @property
    def n_ops(self) -> int:
        """Instructions, the tape's size."""
    @property
    def n_guards(self) -> int:
        """Comparisons that must come out as traced (``guards_hold``)."""
    def value(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``f(x)``, shape ``(m,)``."""
    def guards_hold(self, x: npt.ArrayLike) -> bool:
        """Whether every guard holds at ``x`` (then the tape computes the traced function
        there)."""
    def value_checked(self, x: npt.ArrayLike) -> npt.NDArray[np.float64] | None:
        """``f(x)`` if the guards hold at ``x`` (one pass), else None."""
    def jacobian(self, x: npt.ArrayLike, chunk: int | None = None) -> npt.NDArray[np.float64]:
        """``J[i, j] = d f_i / d x_j``, shape ``(m, n)``. ``chunk``: tangents per pass, one of
        1, 2, 4, 8, 16, or None (automatic)."""
    def jacobian_sparse(
        self, x: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The Jacobian at ``x`` in compressed sparse rows ``(data, indices, indptr)`` of an
        ``m x n`` matrix, on the tape's sparsity pattern, one pass per chunk of column colors."""
    @property
    def sparsity_info(self) -> tuple[int, int]:
        """``(nnz, colors)``: entries of the Jacobian's sparsity pattern, and column colors."""
    def jvp(
        self, x: npt.ArrayLike, v: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(f(x), J v)``, each of shape ``(m,)``, in one pass."""
    def gradient(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``grad f(x)``, shape ``(n,)``; needs ``m == 1``."""
    def hessian(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``H[i, j] = d^2 f / dx_i dx_j``, shape ``(n, n)``; needs ``m == 1``."""
    def hvp(self, x: npt.ArrayLike, v: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``H v``, shape ``(n,)``; needs ``m == 1``."""
    def value_batch(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``f`` at each row of ``X`` (shape ``(B, n)``): shape ``(B, m)``, equal to ``value``
        row by row."""
    def guards_batch(self, X: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """``guards_hold`` at each row of ``X`` (shape ``(B, n)``): shape ``(B,)``."""
    def jacobian_batch(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The Jacobian at each row of ``X`` (shape ``(B, n)``): shape ``(B, m, n)``."""
    def derivative_batch(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``f'`` at every element of ``X`` (any shape, 0-d and empty included): same shape.
        Needs ``n == m == 1``."""
    def second_derivative_batch(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``f''`` at every element of ``X`` (any shape): same shape. Needs ``n == m == 1``."""
    def to_bytes(self) -> bytes:
        """The tape as bytes (a checked binary format; ``from_bytes`` reads it)."""
    @staticmethod
    def from_bytes(b: bytes) -> Tape:
        """The tape of ``to_bytes``; ValueError for altered, truncated or foreign bytes."""
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

class CompiledCore:
    """The guard cache and fast path of ``duals.compile`` (``duals.Compiled`` subclasses it).

    Tapes of one function ``f`` from ``in_shape`` to ``out_shape``, each valid where its guards
    hold, tried most recently used first; where none holds, ``retrace(x)`` (``x`` a float64
    array of ``in_shape``) must return a new ``Tape``, which is kept (at most ``max_tapes``,
    then RuntimeError). Exceptions from ``retrace`` propagate. Thread-safe.

    Points are array-likes of ``in_shape``; results have the shapes below, and a 0-d result is
    a Python float.
    """

    def __init__(
        self,
        retrace: Callable[[npt.NDArray[np.float64]], Tape],
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        max_tapes: int = 32,
    ) -> None: ...
    def add_tape(self, tape: Tape) -> None:
        """Adds a tape (tried first); ValueError if its sizes do not fit the shapes."""
    def tape_at(self, x: npt.ArrayLike) -> Tape:
        """The tape for the point ``x``: a kept one whose guards hold there, or a new trace."""
    @property
    def tapes(self) -> list[Tape]:
        """The tapes kept, most recently used first."""
    @property
    def in_shape(self) -> tuple[int, ...]: ...
    @property
    def out_shape(self) -> tuple[int, ...]: ...
    @property
    def max_tapes(self) -> int: ...
    @property
    def n_ops(self) -> int | None:
        """Instructions of the most recently used tape; None before the first."""
    def value(self, x: npt.ArrayLike) -> float | npt.NDArray[np.float64]:
        """``f(x)``: shape ``out_shape``."""
    def jacobian(self, x: npt.ArrayLike) -> float | npt.NDArray[np.float64]:
        """``J[i..., j...] = d f_i / d x_j``: shape ``out_shape + in_shape``."""
    def jvp(self, x: npt.ArrayLike, v: npt.ArrayLike) -> tuple[Any, Any]:
        """``(f(x), J v)``, each of shape ``out_shape``; ``v`` of ``in_shape``."""
    def gradient(self, x: npt.ArrayLike) -> float | npt.NDArray[np.float64]:
        """Shape ``in_shape``; needs ``out_shape == ()``."""
    def hessian(self, x: npt.ArrayLike) -> float | npt.NDArray[np.float64]:
        """Shape ``in_shape + in_shape``; needs ``out_shape == ()``."""
    def hvp(self, x: npt.ArrayLike, v: npt.ArrayLike) -> float | npt.NDArray[np.float64]:
        """``H v``, shape ``in_shape``; needs ``out_shape == ()``."""
    def value_batch(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``f`` at each point of ``X`` (shape ``(B, *in_shape)``): shape ``(B, *out_shape)``.
        Each point uses a tape whose guards hold there (tracing again where none does)."""
    def jacobian_batch(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The Jacobian at each point of ``X``: shape ``(B, *out_shape, *in_shape)``."""
    def derivative(self, X: npt.ArrayLike) -> float | npt.NDArray[np.float64]:
        """``f'`` at every element of ``X`` (any shape): same shape (a float for 0-d). Needs
        ``in_shape == out_shape == ()``."""
    def second_derivative(self, X: npt.ArrayLike) -> float | npt.NDArray[np.float64]:
        """``f''`` at every element of ``X`` (any shape): same shape (a float for 0-d). Needs
        ``in_shape == out_shape == ()``."""

# Private (not part of the stub check): the storage base class of duals.DualArray,
# ``_DualArrayBase(primal, tangent, seed)`` with read-only ``_p``/``_t``/``_s``, native
# ``x[i]`` / ``x[i] = d`` for an int ``i`` on a 1-d array (other indices: the subclass's
# ``_getitem``/``_setitem``) and native ``+ - * /`` (both sides), unary ``-`` and
# ``__array_ufunc__`` (np.add/subtract/multiply/divide/negative without keywords) for a
# first-order seed and operands of one shape (DualArrays and Duals of one seed, floats, ints,
# float64 ndarrays of the same shape or 0-d; everything else: duals._core and duals._ufuncs);
# ``x ** 2`` (as ``x * x``), ``np.square`` and, for large first-order arrays with one tangent
# row, pending results of the elementwise operations with a fused vector form (``shape``,
# ``ndim``, ``size`` read without evaluating; ``_pending``; ``_own()``, the drivers' mark of
# arrays only the input holds; ``_lazy_threshold(n=None)`` and ``_lazy_counts()`` for tests; see
# rust/duals-py/src/lazy.rs);
# ``_seeded(p, seed)``, the private DualArray of the 1-d copy ``p`` with the identity as its
# tangent (a one-pass Jacobian's input); ``_call(f, x, args)``, ``f(x, *args)`` with NumPy's
# error state (its context variable) set to the quiet version of the current one
# (``duals._api._quiet_state``, kept per state); and the fast paths of
# duals._collect and duals._api, returning None where the caller takes the general path:
# ``_collect_duals(items) -> (primal, tangent, seed)`` for a list/tuple/object array of Duals
# and floats, ``_jacobian_rows(y, seed, value) -> (primal or None, shape, J)`` likewise for a
# first-order seed; ``_concatenate(arrays, axis) -> (primal, tangent, seed)`` for a list/tuple
# of DualArrays of one seed and float64 ndarrays along an int axis;
# ``_alloc_enter() -> previous`` and ``_alloc_exit(previous)``, NumPy's allocator set to the
# native block cache (and back) around evaluations with wide tangent blocks;
# ``_tape_from_bytes(b)``, ``Tape.from_bytes`` as a module function that pickle
# can name (``Tape.__reduce__``).
