"""Compiled mode: :func:`compile` traces a NumPy function once into a native tape.

The tape is evaluated in Rust on plain floats (the value), on chunks of dual numbers (Jacobian,
JVP), on second-order numbers (Hessian, HVP), and at many points at once (the batch forms); no
Python runs during an evaluation. See ``_trace`` for how tracing reuses the eager dispatch.
"""

from __future__ import annotations

import pickle

import numpy as np

from . import _native, _trace
from ._api import _args, _call, _input
from ._collect import collect
from ._core import TRACE, _make

__all__ = ["compile", "Compiled"]

_core_value = _native.CompiledCore.value
_core_jacobian = _native.CompiledCore.jacobian

#: Default bound of the tapes kept per compiled function (one per branch outcome of its guards).
MAX_TAPES = 32


def _trace_tape(f, x: np.ndarray, args: tuple, out_shape=None):
    """Trace ``f(x, *args)`` at the point ``x``: ``(tape, output shape)``."""
    b = _native.TapeBuilder()
    nodes = np.empty(x.size, dtype=object)
    for i, v in enumerate(x.reshape(-1)):
        nodes[i] = _trace.Node(b.input(float(v)))
    xt = _make(x.copy(), nodes.reshape((1,) + x.shape), TRACE)
    with _trace.tracing(b):
        y = _call(f, xt, args)
        p, t, s = collect(y)
    if s is not None and s is not TRACE:
        raise ValueError(
            "the function returned dual numbers that do not come from its input (they come "
            "from another derivative call); duals.compile records operations on its input only"
        )
    if out_shape is not None and p.shape != tuple(out_shape):
        raise ValueError(
            f"the function returned shape {p.shape} at this point but {tuple(out_shape)} where "
            "it was first traced; a compiled function must return the same shape everywhere"
        )
    V = t[0, ...].reshape(-1) if s is not None else p.reshape(-1)
    for e in V:
        b.output(e.v if type(e) is _trace.Node else b.constant(float(e)))
    return b.finish(), p.shape


class Compiled(_native.CompiledCore):
    """A NumPy function traced into native tapes by :func:`duals.compile`.

    Every method evaluates tapes in Rust with the GIL released; nothing of the Python function
    runs unless the point takes a branch that was not traced yet (then it is traced again and
    the new tape kept). Thread-safe; picklable (the tapes are data, the function is pickled by
    reference when it can be).

    Methods (``S`` is the input shape, ``O`` the output shape of the traced function):

    - ``value(x)`` -> ``O``; ``jacobian(x)`` -> ``O + S``; ``jvp(x, v)`` -> ``(value, J v)``.
      From 64 inputs, a Jacobian whose sparsity pattern has at most a quarter as many column
      colors as inputs (a banded ODE right-hand side) is computed on the pattern, one pass per
      chunk of colors, and written into zeros; where an entry is not finite, by the dense pass,
      so NaNs are where dense tangents put them;
    - ``gradient(x)`` -> ``S``, ``hessian(x)`` -> ``S + S``, ``hvp(x, v)`` -> ``S`` for a
      scalar-valued function (``O == ()``). The Hessian is computed on its structure: an entry
      for two inputs that no operation combines is exactly 0, and at a point where a
      derivative is undefined (``np.hypot`` at ``(0, 0)``) only the entries that depend on it
      are NaN, where :func:`duals.hessian`, which propagates dense tangents, spreads the NaN
      further (0/0 with a zero tangent);
    - batch forms, one tape at many points: ``value(X)`` and ``jacobian(X)`` (or
      ``value_batch``, ``jacobian_batch``) for ``X`` of shape ``(B, *S)``, with a leading batch
      axis in the result; for an elementwise
      function traced at a scalar, ``derivative(X)`` and ``second_derivative(X)`` for ``X`` of
      any shape;
    - ``jacobian_sparse(x)``: a ``scipy.sparse.csr_array`` by column coloring of the pattern;
    - ``n_ops``: instructions of the (most recently used) tape; ``tapes``: the tapes kept.

    Examples
    --------
    >>> import numpy as np, duals
    >>> c = duals.compile(lambda x: np.sin(x) * x, 0.0)
    >>> c.derivative(np.array([0.0, np.pi]))        # sin(x) + x cos(x)
    array([ 0.        , -3.14159265])
    >>> c.jacobian(np.pi / 2)
    1.0
    """

    # Set by compile(); kept for pickling and retracing.
    __slots__ = ("_f", "_fargs", "__weakref__")

    def value(self, x):
        """``f(x)`` (shape ``O``); for ``x`` of shape ``(B, *S)``, at each of the ``B`` points
        (shape ``(B, *O)``, as :meth:`value_batch`)."""
        try:
            return _core_value(self, x)
        except ValueError:
            if self._is_batch(x):
                return self.value_batch(x)
            raise

    def jacobian(self, x):
        """The Jacobian at ``x`` (shape ``O + S``); for ``x`` of shape ``(B, *S)``, at each of
        the ``B`` points (shape ``(B, *O, *S)``, as :meth:`jacobian_batch`)."""
        try:
            return _core_jacobian(self, x)
        except ValueError:
            if self._is_batch(x):
                return self.jacobian_batch(x)
            raise

    def _is_batch(self, x) -> bool:
        shape = np.shape(x)
        return len(shape) == len(self.in_shape) + 1 and tuple(shape[1:]) == tuple(self.in_shape)

    def jacobian_sparse(self, x):
        """The Jacobian at ``x`` as a ``scipy.sparse.csr_array`` of shape ``(size of the output,
        size of the input)`` (flattened in C order), on the sparsity pattern read from the
        tape (valid at every point), in one pass per chunk of column colors.

        Examples
        --------
        >>> import numpy as np, duals
        >>> c = duals.compile(lambda y: y[1:] * y[:-1], np.ones(5))
        >>> J = c.jacobian_sparse(np.arange(5.0))
        >>> J.nnz, J.toarray()[1]
        (8, array([0., 2., 1., 0., 0.]))
        """
        from scipy import sparse

        tape = self.tape_at(x)
        data, indices, indptr = tape.jacobian_sparse(np.asarray(x, dtype=np.float64).reshape(-1))
        shape = (tape.n_outputs, tape.n_inputs)
        return sparse.csr_array((data, indices, indptr), shape=shape)

    def __reduce__(self):
        # The function and args travel as a pickle of their own: a process that cannot load
        # them (the function's module is not importable there) still gets the tapes.
        try:
            source = pickle.dumps((self._f, self._fargs))
        except Exception:
            source = None
        return (
            _unpickle,
            (
                source,
                [t.to_bytes() for t in self.tapes],
                self.in_shape,
                self.out_shape,
                self.max_tapes,
            ),
        )

    def __repr__(self) -> str:
        name = getattr(self._f, "__qualname__", None) or repr(self._f)
        return (
            f"<duals.Compiled {name}: input {self.in_shape}, output {self.out_shape}, "
            f"{len(self.tapes)} tape(s), {self.n_ops} ops>"
        )


def _retracer(f, args, out_shape_box):
    def retrace(x):
        if f is None:
            raise RuntimeError(
                "this compiled function was unpickled without its Python function (it could "
                "not be pickled), and the point takes a branch that was not traced; compile "
                "it again with duals.compile"
            )
        tape, _ = _trace_tape(f, np.asarray(x, dtype=np.float64), args, out_shape_box[0])
        return tape

    return retrace


def _unpickle(source, tapes, in_shape, out_shape, max_tapes):
    f, args = None, ()
    if source is not None:
        try:
            f, args = pickle.loads(source)
        except Exception:
            f, args = None, ()
    c = Compiled(_retracer(f, args, [out_shape]), in_shape, out_shape, max_tapes)
    c._f = f
    c._fargs = args
    for data in tapes:
        c.add_tape(_native.Tape.from_bytes(data))
    return c


def compile(f, x0, args=(), *, max_tapes: int = MAX_TAPES) -> Compiled:  # noqa: A001
    """Trace ``f(x, *args)`` at ``x0`` into a native tape; returns a :class:`Compiled`.

    ``f`` is called once with a traced array of the shape of ``x0`` that supports what the eager
    functions support (NumPy ufuncs, indexing, ``np.zeros_like(x)``, ``np.array([...])``,
    ``np.where``, ...); every scalar operation is recorded. The compiled object then evaluates
    the value, Jacobian, JVP, gradient, Hessian and HVP at any point of that shape without
    running Python.

    Rules of the trace:

    - ``args`` are part of the trace: their values at this call are recorded as constants.
      Compile again for other ``args`` (``duals.scipy`` adapters do this for you).
    - A Python branch on a traced value (``if y[0] > 0``, ``max(a, b)``, ``while err > tol``)
      records a *guard*. At a point where a guard comes out differently, ``f`` is traced again
      and the new tape kept beside the old ones (at most ``max_tapes``; past that a
      ``RuntimeError``). Compiled results therefore equal eager results. ``np.where`` and
      ``np.maximum`` need no guard: they are evaluated at every point.
    - Selections by value record guards on the order they found (``np.sort``, ``np.median``,
      ``np.argmax``, ``np.searchsorted``, the pivots of ``np.linalg.solve``/``inv``/``det``), so
      a tape is reused while the order holds and traced again where it changes.
    - ``float(x[0])``, ``math.sin(x[0])`` or storing a traced value into a plain array raise
      ``TypeError`` (the value would be frozen into the tape). Functions a tape cannot record
      (``np.linalg.eigh``, ``eigvalsh``, ``pinv``, ``lstsq``, ``matrix_rank``) raise
      ``TypeError`` naming them: use the eager functions for those.
    - The Hessian of a tape is computed on its sparsity structure: an entry no operation
      connects is exactly 0, also at points where the dense (eager) computation meets
      ``0 * inf`` and gives NaN.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` returning an array (or number, or list of them) of floats.
    x0 : array_like
        The trace point; fixes the input shape.
    args : tuple
        Extra arguments, recorded as constants.
    max_tapes : int
        Bound of the tapes kept for different branch outcomes.

    Examples
    --------
    >>> import numpy as np, duals
    >>> def rober(y, k1, k2, k3):
    ...     return np.array([-k1*y[0] + k3*y[1]*y[2],
    ...                      k1*y[0] - k3*y[1]*y[2] - k2*y[1]**2,
    ...                      k2*y[1]**2])
    >>> c = duals.compile(rober, np.array([1.0, 0.0, 0.0]), args=(0.04, 3e7, 1e4))
    >>> c.jacobian(np.array([1.0, 2e-5, 0.1]))[0]
    array([-4.e-02,  1.e+03,  2.e-01])
    """
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}")
    if isinstance(max_tapes, bool) or not isinstance(max_tapes, int) or max_tapes < 1:
        raise ValueError(f"max_tapes must be a positive integer; got {max_tapes!r}")
    x = _input(x0, "x0")
    args = _args(args)
    tape, out_shape = _trace_tape(f, x, args)
    c = Compiled(_retracer(f, args, [out_shape]), x.shape, out_shape, max_tapes)
    c._f = f
    c._fargs = args
    c.add_tape(tape)
    return c
