//! Recorded programs in Python: `TapeBuilder` (what the tracer records into), `Tape` (a finished
//! tape and the drivers on it) and `CompiledCore` (the guard cache and fast path of
//! `duals.compile`). Conversions only: every value and derivative comes from the engine's
//! [`duals::tape`] and drivers.
//!
//! Arguments are read in place when they are C-contiguous float64 arrays and copied otherwise.
//! Work above [`DETACH_WORK`] runs with the GIL released, on private copies of the inputs
//! (TOOLCHAIN pitfall 6) and writing into result arrays created here and not yet shared.
//!
//! A `Tape` keeps one driver [`Config`] (work buffers reused across calls) behind a mutex that
//! calls only `try_lock`: a thread that finds it taken uses a fresh `Config`, so threads never
//! wait on each other.

use std::borrow::Cow;
use std::ffi::c_int;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};

use numpy::npyffi::npy_intp;
use numpy::{
    AllowTypeChange, Element, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayLike1,
    PyArrayLikeDyn, PyArrayMethods, PyUntypedArrayMethods, PY_ARRAY_API,
};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyInt, PyTuple};
use pyo3::{Borrowed, PyTraverseError};

use duals::rules::{BinaryRule, UnaryRule};
use duals::tape::{CmpOp, Coloring, Pattern, TapeError, Var};
use duals::{Chunk, Config, CHUNK_WIDTHS};

use crate::errors;

/// Instruction-lanes of work (instructions × tangent lanes × points) above which the GIL is
/// released: about 20-50 µs, far above the cost of detaching.
const DETACH_WORK: usize = 1 << 15;

/// Inputs from which a dense Jacobian (`jacobian(x)`, automatic chunk) may be computed on the
/// tape's sparsity pattern: the pattern is found once per tape, and used when its column
/// colors are at most a quarter of the inputs (a banded ODE right-hand side: a few colors for
/// any size).
const SPARSE_DENSE_MIN: usize = 64;

/// A sparse matrix as NumPy arrays in compressed sparse rows: `(data, indices, indptr)`.
type Csr<'py> = (
    Arr<'py>,
    Bound<'py, PyArrayDyn<i64>>,
    Bound<'py, PyArrayDyn<i64>>,
);

/// Points per slice of a batch (scratch buffers of this many rows are reused).
const SLICE: usize = 1 << 16;

/// Fewest points per thread of a batch: below, starting a thread costs more than it saves.
const POINTS_PER_THREAD: usize = 1 << 17;

/// Pieces per thread of a parallel batch (taken in turn, so that a slow thread takes fewer).
const PIECES_PER_THREAD: usize = 8;

/// Threads for a batch of `b` points: one per [`POINTS_PER_THREAD`] points, at most
/// [`crate::par::cpus`] and 8.
fn threads_for(b: usize) -> usize {
    (b / POINTS_PER_THREAD).clamp(1, crate::par::cpus().min(8))
}

// ------------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------------

// Tape errors are mapped here, not in `errors.rs`, so that the tape bindings came as one file;
// `errors::tape` can move there as it is.

fn driver_error(e: duals::Error) -> TapeError {
    TapeError::Driver(e)
}

/// A shape as Python prints it: `()`, `(3,)`, `(2, 3)`.
fn fmt_shape(shape: &[usize]) -> String {
    fmt_dims(shape.iter().map(usize::to_string))
}

/// Extents as a Python tuple.
fn fmt_dims(dims: impl Iterator<Item = String>) -> String {
    let dims: Vec<String> = dims.collect();
    match dims.as_slice() {
        [d] => format!("({d},)"),
        _ => format!("({})", dims.join(", ")),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------------------------------------------------------
// Arguments
// ------------------------------------------------------------------------------------------------

/// A value handle from Python: a non-negative int the builder handed out. Out-of-range ints are
/// a `ValueError` (the builder reports handles it did not hand out the same way).
struct Handle(Var);

fn bad_handle(shown: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!(
        "value {shown} does not exist; pass a handle returned by this builder"
    ))
}

impl<'a, 'py> FromPyObject<'a, 'py> for Handle {
    type Error = PyErr;

    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match ob.extract::<i64>() {
            Ok(v) => u32::try_from(v)
                .map(|v| Handle(Var(v)))
                .map_err(|_| bad_handle(v)),
            Err(e) if ob.is_instance_of::<PyInt>() => {
                drop(e);
                Err(bad_handle(ob.to_string()))
            }
            Err(e) => Err(e),
        }
    }
}

/// The handles of an int64 array, checked against a builder of `len` values.
fn handles(a: &PyArrayLike1<'_, i64>, len: usize) -> PyResult<Vec<Var>> {
    a.as_array()
        .iter()
        .map(|&h| match u32::try_from(h) {
            Ok(v) if (v as usize) < len => Ok(Var(v)),
            Ok(v) => Err(errors::tape(TapeError::UnknownVar { var: v, len })),
            Err(_) => Err(bad_handle(h)),
        })
        .collect()
}

/// An array argument, its elements in C order: a float, a C-contiguous float64 array read in
/// place, or a converted copy.
enum Input<'py> {
    Float([f64; 1]),
    /// C-contiguous.
    Array(Bound<'py, PyArrayDyn<f64>>),
    Copy(Vec<f64>, Vec<usize>),
}

impl<'py> Input<'py> {
    /// Reads `obj`: a Python float, a float64 array, or anything `np.asarray(obj, float)` takes.
    fn read(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        if let Ok(f) = obj.cast_exact::<PyFloat>() {
            return Ok(Input::Float([f.value()]));
        }
        if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
            if a.is_c_contiguous() {
                return Ok(Input::Array(a.clone()));
            }
            let r = a.try_readonly().map_err(errors::borrow)?;
            let shape = r.shape().to_vec();
            return Ok(Input::Copy(r.as_array().iter().copied().collect(), shape));
        }
        if obj.is_none() {
            return Err(PyTypeError::new_err(format!(
                "{what} must be an array of floats, got None"
            )));
        }
        let a: PyArrayLikeDyn<'py, f64, AllowTypeChange> = obj.extract()?;
        let shape = a.shape().to_vec();
        Ok(Input::Copy(a.as_array().iter().copied().collect(), shape))
    }

    fn shape(&self) -> &[usize] {
        match self {
            Input::Float(_) => &[],
            Input::Array(a) => a.shape(),
            Input::Copy(_, s) => s,
        }
    }

    /// The elements. Callers use them without running Python code and without releasing the
    /// GIL (they copy first: [`data_for`](Self::data_for), [`owned`](Self::owned)).
    fn data(&self) -> &[f64] {
        match self {
            Input::Float(x) => x,
            // SAFETY: the array is C-contiguous (checked in `read`) and kept alive by `self`.
            // The slice is read with the GIL held and no Python code running, so no other
            // thread or Python code writes the memory meanwhile, and this module holds no
            // mutable view of an array that Python code can see. (The numpy crate's borrow
            // flags, skipped here for speed, coordinate Rust views only.)
            Input::Array(a) => unsafe { a.as_slice() }.unwrap_or(&[]),
            Input::Copy(v, _) => v,
        }
    }

    /// The data, copied if the GIL is to be released (`detach`), else borrowed.
    fn data_for(&self, detach: bool) -> Cow<'_, [f64]> {
        if detach {
            Cow::Owned(self.data().to_vec())
        } else {
            Cow::Borrowed(self.data())
        }
    }

    /// The same argument as a private copy (before Python code runs).
    fn owned(self) -> Input<'static> {
        match self {
            Input::Float(x) => Input::Float(x),
            Input::Copy(v, s) => Input::Copy(v, s),
            array => Input::Copy(array.data().to_vec(), array.shape().to_vec()),
        }
    }
}

/// A private copy of input data, read with the GIL released: no Python code can reach it.
///
/// The buffer is this thread's, reused from call to call: a fresh allocation of megabytes
/// faults page by page (measured: several milliseconds per 8 MB here), a reused one is warm.
/// It is taken out of the thread's slot while in use, so that a nested call (a retrace runs
/// Python code, which may call in again) makes its own; buffers above [`PRIVATE_KEEP`] values
/// are freed rather than kept.
struct Private(Vec<f64>);

/// Most values a thread keeps in its [`Private`] buffer between calls (16 MiB: batches of
/// two million scalar points; larger ones allocate per call).
const PRIVATE_KEEP: usize = 1 << 21;

thread_local! {
    static PRIVATE: std::cell::Cell<Vec<f64>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Private {
    fn new(data: &[f64]) -> Self {
        let mut v = PRIVATE.take();
        // Resized, not cleared: a warm buffer of this size is overwritten where it is.
        v.resize(data.len(), 0.0);
        // Large copies in shares over the CPUs (one per `POINTS_PER_THREAD` values), with the
        // GIL still held: 8 MB take about 0.3 ms on one thread, a tenth of a 1e6-point batch.
        let parts = threads_for(data.len());
        if parts < 2 {
            v.copy_from_slice(data);
        } else {
            let per = data.len().div_ceil(parts);
            std::thread::scope(|scope| {
                let mut shares = v.chunks_mut(per).zip(data.chunks(per));
                let first = shares.next();
                for (dst, src) in shares {
                    scope.spawn(move || dst.copy_from_slice(src));
                }
                if let Some((dst, src)) = first {
                    dst.copy_from_slice(src);
                }
            });
        }
        Private(v)
    }

    fn slice(&self) -> &[f64] {
        &self.0
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() <= PRIVATE_KEEP {
            PRIVATE.set(v);
        }
    }
}

/// The chunk option: `None` is automatic, else a compiled-in width.
fn chunk(chunk: Option<i64>) -> PyResult<Chunk> {
    match chunk {
        None => Ok(Chunk::Auto),
        Some(w) => match usize::try_from(w) {
            Ok(w) if CHUNK_WIDTHS.contains(&w) => Ok(Chunk::Width(w)),
            _ => Err(PyValueError::new_err(format!(
                "chunk must be one of {CHUNK_WIDTHS:?} or None (automatic), got {w}"
            ))),
        },
    }
}

/// A new zero-filled array, written here before it is handed to Python.
struct Fresh<'py, T: Element>(Bound<'py, PyArrayDyn<T>>);

/// A float64 result array.
type Arr<'py> = Bound<'py, PyArrayDyn<f64>>;

/// A result array and, for a JVP, the second (`J v`).
type Pair<'py> = (Fresh<'py, f64>, Option<Fresh<'py, f64>>);

/// The most dimensions of a result (NumPy 2's limit; NumPy 1 allows 32 and says so).
const MAX_DIMS: usize = 64;

impl<'py, T: Element> Fresh<'py, T> {
    fn zeros(py: Python<'py>, shape: &[usize]) -> PyResult<Self> {
        let mut dims: [npy_intp; MAX_DIMS] = [0; MAX_DIMS];
        if shape.len() > MAX_DIMS {
            return Err(PyValueError::new_err(format!(
                "a result of {} dimensions is more than NumPy allows",
                shape.len()
            )));
        }
        for (d, &s) in dims.iter_mut().zip(shape) {
            *d = npy_intp::try_from(s).map_err(|_| {
                PyMemoryError::new_err(format!(
                    "a result of shape {} is too large",
                    fmt_shape(shape)
                ))
            })?;
        }
        // SAFETY: `dims` holds `shape.len()` extents; PyArray_Zeros steals the reference to the
        // dtype and returns a new reference, or NULL with an exception set (too large).
        let ptr = unsafe {
            PY_ARRAY_API.PyArray_Zeros(
                py,
                shape.len() as c_int,
                dims.as_mut_ptr(),
                T::get_dtype(py).into_dtype_ptr(),
                0,
            )
        };
        // SAFETY: a new C-ordered array whose dtype is that of `T`.
        let a = unsafe { Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked() };
        Ok(Fresh(a))
    }

    /// The elements, C order.
    fn data(&mut self) -> &mut [T] {
        // SAFETY: the array was created C-contiguous by `zeros` and has not been handed to
        // Python or borrowed elsewhere (the only other access is through `&mut self`), so this is
        // the only reference to its memory.
        unsafe { self.0.as_slice_mut() }.unwrap_or(&mut [])
    }

    fn array(self) -> Bound<'py, PyArrayDyn<T>> {
        self.0
    }
}

impl<'py> Fresh<'py, f64> {
    /// A Python float for a 0-d `shape`, else the array.
    fn result(mut self, scalar: bool) -> Bound<'py, PyAny> {
        if scalar {
            if let Some(&v) = self.data().first() {
                return PyFloat::new(self.0.py(), v).into_any();
            }
        }
        self.0.into_any()
    }
}

/// Runs `f` with the GIL released if `detach`.
fn run<T: Send>(py: Python<'_>, detach: bool, f: impl FnOnce() -> T + Send) -> T {
    if detach {
        py.detach(f)
    } else {
        f()
    }
}

/// `f` with a scratch buffer of `len` zeros (on the stack when small).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    let mut small = [0.0; 16];
    if len <= small.len() {
        f(&mut small[..len])
    } else {
        f(&mut vec![0.0; len])
    }
}

// ------------------------------------------------------------------------------------------------
// TapeBuilder
// ------------------------------------------------------------------------------------------------

/// A binary operation by name: the builder's arithmetic and `min`/`max`, or a binary rule.
#[derive(Clone, Copy)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    Rule(BinaryRule),
}

const ARITHMETIC: [&str; 6] = ["add", "sub", "mul", "div", "min", "max"];

impl BinOp {
    fn from_name(name: &str) -> PyResult<BinOp> {
        Ok(match name {
            "add" => BinOp::Add,
            "sub" => BinOp::Sub,
            "mul" => BinOp::Mul,
            "div" => BinOp::Div,
            "min" => BinOp::Min,
            "max" => BinOp::Max,
            _ => match BinaryRule::from_name(name) {
                Some(r) => BinOp::Rule(r),
                None => {
                    let known: Vec<&str> = ARITHMETIC
                        .iter()
                        .chain(BinaryRule::NAMES.iter())
                        .copied()
                        .collect();
                    return Err(errors::unknown_rule(name, &known));
                }
            },
        })
    }

    fn record(self, b: &mut duals::TapeBuilder, x: Var, y: Var) -> Result<Var, TapeError> {
        match self {
            BinOp::Add => b.add(x, y),
            BinOp::Sub => b.sub(x, y),
            BinOp::Mul => b.mul(x, y),
            BinOp::Div => b.div(x, y),
            BinOp::Min => b.min(x, y),
            BinOp::Max => b.max(x, y),
            BinOp::Rule(r) => b.binary(r, x, y),
        }
    }
}

fn unary_rule(name: &str, param: f64) -> PyResult<UnaryRule> {
    UnaryRule::from_name(name, param).ok_or_else(|| errors::unknown_rule(name, &UnaryRule::NAMES))
}

fn cmp_op(op: &str) -> PyResult<CmpOp> {
    CmpOp::from_name(op).ok_or_else(|| {
        errors::tape(TapeError::UnknownComparison {
            name: op.to_string(),
        })
    })
}

/// Records a tape as a tracer meets operations: the engine's `TapeBuilder`.
#[pyclass(module = "duals._native", name = "TapeBuilder")]
#[derive(Debug, Default)]
pub struct TapeBuilder {
    inner: duals::TapeBuilder,
}

#[pymethods]
impl TapeBuilder {
    #[new]
    fn py_new() -> Self {
        Self::default()
    }

    /// A new input with its value at the trace point; returns its handle.
    fn input(&mut self, value: f64) -> PyResult<u32> {
        self.inner.input(value).map(|v| v.0).map_err(errors::tape)
    }

    /// A constant; returns its handle.
    fn constant(&mut self, c: f64) -> PyResult<u32> {
        self.inner.constant(c).map(|v| v.0).map_err(errors::tape)
    }

    /// `name(a)` for a unary rule; `param` is the exponent of `powi` and `powf`.
    #[pyo3(signature = (name, a, param = 0.0))]
    fn unary(&mut self, name: &str, a: Handle, param: f64) -> PyResult<u32> {
        let rule = unary_rule(name, param)?;
        self.inner
            .unary(rule, a.0)
            .map(|v| v.0)
            .map_err(errors::tape)
    }

    /// `name(a, b)`: `add`, `sub`, `mul`, `div`, `min`, `max` or a binary rule.
    fn binary(&mut self, name: &str, a: Handle, b: Handle) -> PyResult<u32> {
        let op = BinOp::from_name(name)?;
        op.record(&mut self.inner, a.0, b.0)
            .map(|v| v.0)
            .map_err(errors::tape)
    }

    /// `-a`.
    fn neg(&mut self, a: Handle) -> PyResult<u32> {
        self.inner.neg(a.0).map(|v| v.0).map_err(errors::tape)
    }

    /// `if_true if a op b else if_false` at every point (no guard).
    fn select(
        &mut self,
        op: &str,
        a: Handle,
        b: Handle,
        if_true: Handle,
        if_false: Handle,
    ) -> PyResult<u32> {
        let op = cmp_op(op)?;
        self.inner
            .select(op, a.0, b.0, if_true.0, if_false.0)
            .map(|v| v.0)
            .map_err(errors::tape)
    }

    /// `a op b` at the trace point, recording nothing.
    fn compare(&self, op: &str, a: Handle, b: Handle) -> PyResult<bool> {
        let op = cmp_op(op)?;
        self.inner.compare(op, a.0, b.0).map_err(errors::tape)
    }

    /// Records a guard on `a op b` and returns its outcome at the trace point.
    fn guard(&mut self, op: &str, a: Handle, b: Handle) -> PyResult<bool> {
        let op = cmp_op(op)?;
        self.inner.guard(op, a.0, b.0).map_err(errors::tape)
    }

    /// The value of `v` at the trace point.
    fn value(&self, v: Handle) -> PyResult<f64> {
        self.inner.value(v.0).map_err(errors::tape)
    }

    /// Appends `v` to the outputs.
    fn output(&mut self, v: Handle) -> PyResult<()> {
        self.inner.output(v.0).map_err(errors::tape)
    }

    /// The finished (simplified) tape; the builder can go on recording.
    fn finish(&self) -> Tape {
        Tape::new(self.inner.finish())
    }

    /// `name(a[i])` for each handle of the 1-d int64 array `a`; returns the new handles.
    #[pyo3(signature = (name, a, param = 0.0))]
    fn unary_many<'py>(
        &mut self,
        py: Python<'py>,
        name: &str,
        a: PyArrayLike1<'py, i64>,
        param: f64,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let rule = unary_rule(name, param)?;
        let a = handles(&a, self.inner.n_values())?;
        let out = a
            .iter()
            .map(|&x| self.inner.unary(rule, x).map(|v| i64::from(v.0)))
            .collect::<Result<Vec<i64>, _>>()
            .map_err(errors::tape)?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// `name(a[i], b[i])` for 1-d int64 arrays of equal length (or one of length 1, broadcast).
    fn binary_many<'py>(
        &mut self,
        py: Python<'py>,
        name: &str,
        a: PyArrayLike1<'py, i64>,
        b: PyArrayLike1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let op = BinOp::from_name(name)?;
        let len = self.inner.n_values();
        let (a, b) = (handles(&a, len)?, handles(&b, len)?);
        let n = match (a.len(), b.len()) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            (x, y) => {
                return Err(PyValueError::new_err(format!(
                    "binary_many: a and b have lengths {x} and {y}; \
                     pass equal lengths or one of length 1"
                )))
            }
        };
        let at = |h: &[Var], i: usize| if h.len() == 1 { h[0] } else { h[i] };
        let out = (0..n)
            .map(|i| {
                op.record(&mut self.inner, at(&a, i), at(&b, i))
                    .map(|v| i64::from(v.0))
            })
            .collect::<Result<Vec<i64>, _>>()
            .map_err(errors::tape)?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// The number of inputs recorded.
    #[getter]
    fn n_inputs(&self) -> usize {
        self.inner.n_inputs()
    }

    /// The number of instructions recorded (before `finish` simplifies).
    #[getter]
    fn n_ops(&self) -> usize {
        self.inner.n_ops()
    }

    /// The number of values: inputs, constants and instructions.
    #[getter]
    fn n_values(&self) -> usize {
        self.inner.n_values()
    }

    /// The number of outputs recorded.
    #[getter]
    fn n_outputs(&self) -> usize {
        self.inner.n_outputs()
    }

    fn __repr__(&self) -> String {
        format!(
            "TapeBuilder(n_inputs={}, n_values={}, n_outputs={})",
            self.inner.n_inputs(),
            self.inner.n_values(),
            self.inner.n_outputs()
        )
    }
}

// ------------------------------------------------------------------------------------------------
// Tape: evaluation in Rust
// ------------------------------------------------------------------------------------------------

/// What to compute at one point (`Jvp` and `Hvp` along a direction `v`).
#[derive(Clone, Copy, Debug)]
enum Point {
    Value,
    Jacobian(Chunk),
    /// `(f(x), J v)`
    Jvp,
    Gradient,
    Hessian,
    Hvp,
}

impl Point {
    /// Tangent lanes per instruction, for the detach decision.
    fn lanes(self, n: usize) -> usize {
        match self {
            Point::Value => 1,
            Point::Jvp | Point::Hvp => 4,
            Point::Jacobian(_) | Point::Gradient => n + 1,
            Point::Hessian => n.saturating_mul(n) + 1,
        }
    }
}

/// What to compute at each point of a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Batch {
    Value,
    Jacobian,
    Derivative,
    SecondDerivative,
}

impl Batch {
    fn lanes(self, n: usize) -> usize {
        match self {
            Batch::Value => 1,
            Batch::Jacobian => n + 1,
            Batch::Derivative => 2,
            Batch::SecondDerivative => 4,
        }
    }

    /// Result numbers per point.
    fn row(self, n: usize, m: usize) -> usize {
        match self {
            Batch::Value => m,
            Batch::Jacobian => m * n,
            Batch::Derivative | Batch::SecondDerivative => 1,
        }
    }
}

/// A recorded function `R^n -> R^m`, immutable; the engine's `Tape` and a reusable `Config`.
#[pyclass(module = "duals._native", name = "Tape", frozen)]
#[derive(Debug)]
pub struct Tape {
    tape: duals::Tape,
    cfg: Mutex<Config<f64>>,
    /// The Jacobian's sparsity pattern and its column coloring, computed on first use.
    sparse: OnceLock<(Pattern, Coloring)>,
    /// Whether a dense Jacobian is computed on the pattern (`sparse_pays`), decided on first use.
    pays: OnceLock<bool>,
}

impl Tape {
    fn new(tape: duals::Tape) -> Self {
        Tape {
            tape,
            cfg: Mutex::new(Config::new()),
            sparse: OnceLock::new(),
            pays: OnceLock::new(),
        }
    }

    fn pattern(&self) -> &(Pattern, Coloring) {
        self.sparse.get_or_init(|| {
            let p = self.tape.sparsity();
            let c = p.coloring();
            (p, c)
        })
    }

    /// The sparse Jacobian at `x` (length `n`): `(data, indices, indptr)` in CSR order.
    fn sparse_jacobian<'py>(&self, py: Python<'py>, x: &Input<'_>) -> PyResult<Csr<'py>> {
        self.check_input(x.data().len()).map_err(errors::tape)?;
        let (pattern, coloring) = self.pattern();
        let mut values = Fresh::zeros(py, &[pattern.nnz()])?;
        let lanes = coloring.n_colors().max(1);
        let detach = self.detach(lanes, 1);
        let xs = x.data_for(detach);
        let out = values.data();
        run(py, detach, || {
            self.with_cfg(Chunk::Auto, |cfg| {
                self.tape
                    .jacobian_sparse_into(&xs, pattern, coloring, out, cfg)
            })
        })
        .map_err(errors::tape)?;
        let indices: Vec<i64> = pattern
            .col_indices()
            .iter()
            .map(|&j| i64::from(j))
            .collect();
        let indptr: Vec<i64> = pattern
            .row_ptr()
            .iter()
            .map(|&p| i64::try_from(p).unwrap_or(i64::MAX))
            .collect();
        Ok((
            values.array(),
            numpy::PyArray1::from_vec(py, indices).to_dyn().clone(),
            numpy::PyArray1::from_vec(py, indptr).to_dyn().clone(),
        ))
    }

    /// `f` with this tape's `Config` (set to `chunk`), or a fresh one if another thread has it.
    fn with_cfg<R>(&self, chunk: Chunk, f: impl FnOnce(&mut Config<f64>) -> R) -> R {
        let mut guard = match self.cfg.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return f(&mut Config::new().with_chunk(chunk)),
        };
        if chunk == Chunk::Auto {
            return f(&mut guard);
        }
        let mut cfg = std::mem::take(&mut *guard).with_chunk(chunk);
        let r = f(&mut cfg);
        *guard = cfg.with_chunk(Chunk::Auto);
        r
    }

    fn check_input(&self, len: usize) -> Result<(), TapeError> {
        let n = self.tape.n_inputs();
        if len == n {
            Ok(())
        } else {
            Err(TapeError::InputLength {
                expected: n,
                found: len,
            })
        }
    }

    /// `what` at `x` (along `v`) into `out` (and `out2`, the JVP's `J v`).
    fn point_into(
        &self,
        x: &[f64],
        v: &[f64],
        what: Point,
        out: &mut [f64],
        out2: &mut [f64],
    ) -> Result<(), TapeError> {
        let t = &self.tape;
        self.check_input(x.len())?;
        match what {
            Point::Value => t.value_into(x, out),
            Point::Jacobian(Chunk::Auto) if self.sparse_pays() => {
                if self.dense_from_sparse(x, out)? {
                    return Ok(());
                }
                self.with_cfg(Chunk::Auto, |cfg| {
                    with_scratch(t.n_outputs(), |value| t.jacobian_into(x, value, out, cfg))
                })
            }
            Point::Jacobian(chunk) => self.with_cfg(chunk, |cfg| {
                with_scratch(t.n_outputs(), |value| t.jacobian_into(x, value, out, cfg))
            }),
            Point::Jvp => self.with_cfg(Chunk::Auto, |cfg| {
                duals::jvp_into(t, x, v, out, out2, cfg).map_err(driver_error)
            }),
            Point::Gradient => {
                let s = t.as_scalar()?;
                self.with_cfg(Chunk::Auto, |cfg| {
                    duals::gradient_into(&s, x, out, cfg)
                        .map(drop)
                        .map_err(driver_error)
                })
            }
            Point::Hessian => self.with_cfg(Chunk::Auto, |cfg| t.hessian_into(x, out, cfg)),
            Point::Hvp => {
                let s = t.as_scalar()?;
                self.with_cfg(Chunk::Auto, |cfg| {
                    duals::hvp_into(&s, x, v, out, cfg).map_err(driver_error)
                })
            }
        }
    }

    /// Whether a dense Jacobian is cheaper on the sparsity pattern ([`SPARSE_DENSE_MIN`]).
    ///
    /// The pattern is found only while no value depends on more than `n / 4` inputs (a row of
    /// more entries needs more colors than pay): a dense tape stops early instead of building
    /// its whole pattern (`A @ sin(x)`, n = 500: 390 ms once).
    fn sparse_pays(&self) -> bool {
        let n = self.tape.n_inputs();
        if n < SPARSE_DENSE_MIN {
            return false;
        }
        let few = |coloring: &Coloring| coloring.n_colors().saturating_mul(4) <= n;
        *self.pays.get_or_init(|| {
            if let Some((_, coloring)) = self.sparse.get() {
                return few(coloring);
            }
            let Some(pattern) = self.tape.sparsity_within(n / 4) else {
                return false;
            };
            let coloring = pattern.coloring();
            let pays = few(&coloring);
            drop(self.sparse.set((pattern, coloring)));
            pays
        })
    }

    /// The dense Jacobian `out` (`m × n`) from one pass per chunk of column colors, scattered
    /// into zeros, if every entry of the pattern is finite; `false` (out not written) if not:
    /// an infinite or NaN derivative meets zero tangents in the dense pass (`inf * 0`) and
    /// gives NaN off the pattern too, which the caller's dense pass reproduces.
    fn dense_from_sparse(&self, x: &[f64], out: &mut [f64]) -> Result<bool, TapeError> {
        let (pattern, coloring) = self.pattern();
        let mut values = vec![0.0; pattern.nnz()];
        self.with_cfg(Chunk::Auto, |cfg| {
            self.tape
                .jacobian_sparse_into(x, pattern, coloring, &mut values, cfg)
        })?;
        if !values.iter().all(|v| v.is_finite()) {
            return Ok(false);
        }
        let n = self.tape.n_inputs();
        out.fill(0.0);
        let (cols, ptr) = (pattern.col_indices(), pattern.row_ptr());
        for (i, row) in ptr.windows(2).enumerate() {
            for p in row[0]..row[1] {
                out[i * n + cols[p] as usize] = values[p];
            }
        }
        Ok(true)
    }

    /// `what` at the `b` points of `x` (row-major `b × n`) into `out` (`b` rows of
    /// [`Batch::row`]).
    fn batch_into(
        &self,
        what: Batch,
        x: &[f64],
        b: usize,
        out: &mut [f64],
    ) -> Result<(), TapeError> {
        let t = &self.tape;
        let (n, m) = (t.n_inputs(), t.n_outputs());
        if n == 0 && matches!(what, Batch::Value | Batch::Jacobian) {
            // No inputs: the engine cannot count the points; the function is constant.
            if what == Batch::Value && m > 0 {
                let y = t.value(&[])?;
                for row in out.chunks_exact_mut(m) {
                    row.copy_from_slice(&y);
                }
            }
            return Ok(());
        }
        let parts = threads_for(b);
        let row = what.row(n, m);
        if parts < 2 || n == 0 || row == 0 || x.len() != b * n || out.len() != b * row {
            return self.batch_serial(what, x, b, out);
        }
        // Pieces of the points taken in turn by `parts` threads (this one included), several
        // per thread: a thread slowed by other work on its CPU takes fewer pieces instead of
        // holding the batch back (with one contiguous share per thread, the batch took as long
        // as its slowest share; measured for 1e6 points, quiet: 2.1-2.4 ms against 2.6-2.8).
        let per = b.div_ceil(parts * PIECES_PER_THREAD).max(1);
        let pieces = std::sync::Mutex::new(x.chunks(per * n).zip(out.chunks_mut(per * row)));
        let work = || -> Result<(), TapeError> {
            loop {
                let next = pieces.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((xs, os)) = next else {
                    return Ok(());
                };
                self.batch_serial(what, xs, xs.len() / n, os)?;
            }
        };
        std::thread::scope(|scope| {
            let handles: Vec<_> = (1..parts).map(|_| scope.spawn(work)).collect();
            let mut done = work();
            for h in handles {
                let r = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                done = done.and(r);
            }
            done
        })
    }

    /// [`batch_into`](Self::batch_into) after the checks.
    fn batch_serial(
        &self,
        what: Batch,
        x: &[f64],
        b: usize,
        out: &mut [f64],
    ) -> Result<(), TapeError> {
        let t = &self.tape;
        let (n, m) = (t.n_inputs(), t.n_outputs());
        match what {
            Batch::Value => return t.value_batch(x, out),
            // No values to keep: one call over the share (the engine reports bad lengths).
            Batch::Derivative => return t.derivative_only_batch(x, out),
            Batch::Jacobian | Batch::SecondDerivative => {}
        }
        // Slices of SLICE points with scratch for the values the engine also returns: small
        // buffers reused from slice to slice (a fresh buffer of b values would fault page by
        // page, which also serializes the threads of a parallel batch).
        let row = what.row(n, m);
        if n == 0 || x.len() != b * n || out.len() != b * row {
            // Inconsistent lengths: one call, which reports them.
            let mut value = vec![0.0; b * m];
            return match what {
                Batch::Jacobian => {
                    self.with_cfg(Chunk::Auto, |cfg| t.jacobian_batch(x, &mut value, out, cfg))
                }
                Batch::SecondDerivative => {
                    let mut first = vec![0.0; b * m];
                    t.second_derivative_batch(x, &mut value, &mut first, out)
                }
                Batch::Value | Batch::Derivative => unreachable!("handled above"),
            };
        }
        let mut scratch = vec![0.0; 2 * SLICE * m.max(1)];
        let (value, first) = scratch.split_at_mut(SLICE * m.max(1));
        let mut start = 0;
        while start < b || (b == 0 && start == 0) {
            let len = SLICE.min(b - start);
            let (xs, os) = (
                &x[start * n..(start + len) * n],
                &mut out[start * row..(start + len) * row],
            );
            let v = &mut value[..len * m];
            match what {
                Batch::Value | Batch::Derivative => unreachable!("handled above"),
                Batch::Jacobian => {
                    self.with_cfg(Chunk::Auto, |cfg| t.jacobian_batch(xs, v, os, cfg))?;
                }
                Batch::SecondDerivative => {
                    t.second_derivative_batch(xs, v, &mut first[..len * m], os)?;
                }
            }
            start += len.max(1);
        }
        Ok(())
    }

    /// Whether to release the GIL for `lanes` tangent lanes at `points` points.
    fn detach(&self, lanes: usize, points: usize) -> bool {
        self.tape
            .n_ops()
            .saturating_mul(lanes)
            .saturating_mul(points)
            > DETACH_WORK
    }

    /// `what` at `x` (along `v`) as a new array of `shape` (two for a JVP).
    fn point<'py>(
        &self,
        py: Python<'py>,
        x: &Input<'_>,
        v: Option<&Input<'_>>,
        what: Point,
        shape: &[usize],
    ) -> PyResult<Pair<'py>> {
        self.check_input(x.data().len()).map_err(errors::tape)?;
        let mut out = Fresh::zeros(py, shape)?;
        let mut out2 = match what {
            Point::Jvp => Some(Fresh::zeros(py, shape)?),
            _ => None,
        };
        let detach = self.detach(what.lanes(self.tape.n_inputs()), 1);
        let xs = x.data_for(detach);
        let vs = v.map(|v| v.data_for(detach));
        let vs: &[f64] = vs.as_deref().unwrap_or(&[]);
        let o1 = out.data();
        let o2 = out2.as_mut().map_or(&mut [][..], Fresh::data);
        run(py, detach, || self.point_into(&xs, vs, what, o1, o2)).map_err(errors::tape)?;
        Ok((out, out2))
    }
}

// ------------------------------------------------------------------------------------------------
// Tape: the Python class
// ------------------------------------------------------------------------------------------------

/// A point of the tape's inputs as a 1-d argument.
fn point_arg<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Input<'py>> {
    let x = Input::read(obj, what)?;
    if x.shape().len() != 1 {
        return Err(PyValueError::new_err(format!(
            "{what} must be a 1-d array, got shape {}",
            fmt_shape(x.shape())
        )));
    }
    Ok(x)
}

/// A batch of points as rows of a `(B, n)` argument; returns it and `B`.
fn rows_arg<'py>(obj: &Bound<'py, PyAny>, n: usize, call: &str) -> PyResult<(Input<'py>, usize)> {
    let x = Input::read(obj, "X")?;
    match *x.shape() {
        [b, k] if k == n => Ok((x, b)),
        _ => Err(PyValueError::new_err(format!(
            "{call} expects points as the rows of a (B, {n}) array, got shape {}",
            fmt_shape(x.shape())
        ))),
    }
}

#[pymethods]
impl Tape {
    /// `n`, the number of inputs.
    #[getter]
    fn n_inputs(&self) -> usize {
        self.tape.n_inputs()
    }

    /// `m`, the number of outputs.
    #[getter]
    fn n_outputs(&self) -> usize {
        self.tape.n_outputs()
    }

    /// The number of instructions.
    #[getter]
    fn n_ops(&self) -> usize {
        self.tape.n_ops()
    }

    /// The number of guards.
    #[getter]
    fn n_guards(&self) -> usize {
        self.tape.guards().len()
    }

    /// `f(x)`, shape `(m,)`.
    fn value<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let x = point_arg(x, "x")?;
        let m = self.tape.n_outputs();
        Ok(self.point(py, &x, None, Point::Value, &[m])?.0.array())
    }

    /// Whether every guard holds at `x`.
    fn guards_hold(&self, x: &Bound<'_, PyAny>) -> PyResult<bool> {
        let x = point_arg(x, "x")?;
        self.check_input(x.data().len()).map_err(errors::tape)?;
        Ok(self.tape.guards_hold(x.data()))
    }

    /// `f(x)` if every guard holds at `x`, else None.
    fn value_checked<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyArrayDyn<f64>>>> {
        let x = point_arg(x, "x")?;
        let mut out = Fresh::zeros(py, &[self.tape.n_outputs()])?;
        let holds = self
            .tape
            .value_and_guards_into(x.data(), out.data())
            .map_err(errors::tape)?;
        Ok(holds.then(|| out.array()))
    }

    /// The Jacobian `J[i, j] = d f_i / d x_j`, shape `(m, n)`.
    #[pyo3(signature = (x, chunk = None))]
    fn jacobian<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        chunk: Option<i64>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let what = Point::Jacobian(self::chunk(chunk)?);
        let x = point_arg(x, "x")?;
        let shape = [self.tape.n_outputs(), self.tape.n_inputs()];
        Ok(self.point(py, &x, None, what, &shape)?.0.array())
    }

    /// The Jacobian at `x` as compressed sparse rows `(data, indices, indptr)` of an `m × n`
    /// matrix, on the tape's sparsity pattern (valid at every point; both branches of a select
    /// count), in one pass per chunk of column colors.
    fn jacobian_sparse<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Csr<'py>> {
        let x = point_arg(x, "x")?;
        self.sparse_jacobian(py, &x)
    }

    /// The number of entries of the sparsity pattern and of column colors: `(nnz, colors)`.
    #[getter]
    fn sparsity_info(&self) -> (usize, usize) {
        let (p, c) = self.pattern();
        (p.nnz(), c.n_colors())
    }

    /// `(f(x), J v)`, each of shape `(m,)`.
    fn jvp<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        v: &Bound<'py, PyAny>,
    ) -> PyResult<(Arr<'py>, Arr<'py>)> {
        let (x, v) = (point_arg(x, "x")?, point_arg(v, "v")?);
        let m = self.tape.n_outputs();
        let (y, jv) = self.point(py, &x, Some(&v), Point::Jvp, &[m])?;
        let jv = jv.map_or_else(|| Fresh::zeros(py, &[m]), Ok)?; // always Some for a JVP
        Ok((y.array(), jv.array()))
    }

    /// The gradient of a scalar-valued tape (`m == 1`), shape `(n,)`.
    fn gradient<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let x = point_arg(x, "x")?;
        let n = self.tape.n_inputs();
        Ok(self.point(py, &x, None, Point::Gradient, &[n])?.0.array())
    }

    /// The Hessian of a scalar-valued tape, shape `(n, n)`.
    fn hessian<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let x = point_arg(x, "x")?;
        let n = self.tape.n_inputs();
        Ok(self.point(py, &x, None, Point::Hessian, &[n, n])?.0.array())
    }

    /// The Hessian-vector product `H v` of a scalar-valued tape, shape `(n,)`.
    fn hvp<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        v: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let (x, v) = (point_arg(x, "x")?, point_arg(v, "v")?);
        let n = self.tape.n_inputs();
        Ok(self.point(py, &x, Some(&v), Point::Hvp, &[n])?.0.array())
    }

    /// `f` at the rows of `X` (shape `(B, n)`): shape `(B, m)`.
    fn value_batch<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let (x, b) = rows_arg(x, self.tape.n_inputs(), "value_batch")?;
        self.batch(py, &x, b, Batch::Value, &[b, self.tape.n_outputs()])
            .map(Fresh::array)
    }

    /// Whether the guards hold at each row of `X`: bool array of shape `(B,)`.
    fn guards_batch<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<bool>>> {
        let n = self.tape.n_inputs();
        let (x, b) = rows_arg(x, n, "guards_batch")?;
        let mut holds = Fresh::<bool>::zeros(py, &[b])?;
        let out = holds.data();
        if n == 0 {
            out.fill(self.tape.guards_hold(&[]));
            return Ok(holds.array());
        }
        let detach = self.detach(1, b);
        let xs = x.data_for(detach);
        run(py, detach, || self.tape.guards_batch(&xs, out)).map_err(errors::tape)?;
        Ok(holds.array())
    }

    /// The Jacobian at each row of `X`: shape `(B, m, n)`.
    fn jacobian_batch<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let (n, m) = (self.tape.n_inputs(), self.tape.n_outputs());
        let (x, b) = rows_arg(x, n, "jacobian_batch")?;
        self.batch(py, &x, b, Batch::Jacobian, &[b, m, n])
            .map(Fresh::array)
    }

    /// `f'` at every element of `X` (any shape) for a tape of one input and one output.
    fn derivative_batch<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let x = Input::read(x, "X")?;
        let shape = x.shape().to_vec();
        self.batch(py, &x, x.data().len(), Batch::Derivative, &shape)
            .map(Fresh::array)
    }

    /// `f''` at every element of `X` (any shape) for a tape of one input and one output.
    fn second_derivative_batch<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let x = Input::read(x, "X")?;
        let shape = x.shape().to_vec();
        self.batch(py, &x, x.data().len(), Batch::SecondDerivative, &shape)
            .map(Fresh::array)
    }

    /// The tape as bytes (`Tape.from_bytes` reads them).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.tape.to_bytes())
    }

    /// The tape written by `to_bytes`.
    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<Tape> {
        tape_from_bytes(b)
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let load = py.import("duals._native")?.getattr("_tape_from_bytes")?;
        Ok((load, (self.to_bytes(py),)))
    }

    fn __repr__(&self) -> String {
        format!(
            "Tape(n_inputs={}, n_outputs={}, n_ops={}, n_guards={})",
            self.tape.n_inputs(),
            self.tape.n_outputs(),
            self.tape.n_ops(),
            self.tape.guards().len()
        )
    }
}

impl Tape {
    /// `what` at the `b` points of `x` as a new array of `shape`.
    fn batch<'py>(
        &self,
        py: Python<'py>,
        x: &Input<'_>,
        b: usize,
        what: Batch,
        shape: &[usize],
    ) -> PyResult<Fresh<'py, f64>> {
        let mut out = Fresh::zeros(py, shape)?;
        let detach = self.detach(what.lanes(self.tape.n_inputs()), b);
        let copy = detach.then(|| Private::new(x.data()));
        let xs = copy.as_ref().map_or_else(|| x.data(), Private::slice);
        let o = out.data();
        run(py, detach, || self.batch_into(what, xs, b, o)).map_err(errors::tape)?;
        Ok(out)
    }
}

/// `_tape_from_bytes(b)`: `Tape.from_bytes`, as a module function that pickle can name.
#[pyfunction]
pub fn _tape_from_bytes(b: &[u8]) -> PyResult<Tape> {
    tape_from_bytes(b)
}

fn tape_from_bytes(b: &[u8]) -> PyResult<Tape> {
    duals::Tape::from_bytes(b)
        .map(Tape::new)
        .map_err(errors::tape)
}

// ------------------------------------------------------------------------------------------------
// CompiledCore
// ------------------------------------------------------------------------------------------------

/// The guard cache and fast path of a compiled function: tapes of one function, each valid where
/// its guards hold, tried most recently used first; `retrace(x)` records a new one where none
/// holds.
#[pyclass(module = "duals._native", name = "CompiledCore", subclass, frozen)]
#[derive(Debug)]
pub struct CompiledCore {
    /// `retrace(x) -> Tape`; `None` once the garbage collector has cleared it.
    retrace: Mutex<Option<Py<PyAny>>>,
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
    /// `out_shape + in_shape`, `in_shape + in_shape`.
    jac_shape: Vec<usize>,
    hess_shape: Vec<usize>,
    n_in: usize,
    n_out: usize,
    max_tapes: usize,
    /// Most recently used first.
    tapes: Mutex<Vec<Py<Tape>>>,
}

/// A group of the points of a batch evaluated with one tape: all of them, or these indices.
type Group = (Py<Tape>, Option<Vec<usize>>);

impl CompiledCore {
    /// The first cached tape whose guards hold at `x`, moved to the front.
    fn cached(&self, py: Python<'_>, x: &[f64]) -> Option<Py<Tape>> {
        let mut tapes = lock(&self.tapes);
        let i = tapes.iter().position(|t| {
            let t = &t.get().tape;
            t.guards().is_empty() || t.guards_hold(x)
        })?;
        tapes[..=i].rotate_right(1);
        Some(tapes[0].clone_ref(py))
    }

    fn full(&self) -> PyErr {
        PyRuntimeError::new_err(format!(
            "the guard cache of this compiled function is full: it holds max_tapes={} tapes, \
             one per way the function branched (a Python `if` or comparison on a traced value), \
             and the point needs another; the function branches on its input in more than {} \
             ways. Write piecewise definitions with np.where (no branch, one tape for every \
             point), or raise max_tapes",
            self.max_tapes, self.max_tapes
        ))
    }

    /// Checks that `tape` maps `in_shape` to `out_shape`.
    fn check_tape(&self, tape: &Tape) -> PyResult<()> {
        let (n, m) = (tape.tape.n_inputs(), tape.tape.n_outputs());
        if n == self.n_in && m == self.n_out {
            return Ok(());
        }
        Err(PyValueError::new_err(format!(
            "a tape of {n} inputs and {m} outputs cannot serve a compiled function from shape \
             {} ({} inputs) to shape {} ({} outputs)",
            fmt_shape(&self.in_shape),
            self.n_in,
            fmt_shape(&self.out_shape),
            self.n_out
        )))
    }

    /// Adds `tape` in front, if there is room.
    fn push(&self, tape: &Bound<'_, Tape>) -> PyResult<()> {
        self.check_tape(tape.get())?;
        let mut tapes = lock(&self.tapes);
        if tapes.len() >= self.max_tapes {
            return Err(self.full());
        }
        tapes.insert(0, tape.clone().unbind());
        Ok(())
    }

    /// `retrace(x)`, added to the cache.
    fn retrace_at(&self, py: Python<'_>, x: &[f64]) -> PyResult<Py<Tape>> {
        if lock(&self.tapes).len() >= self.max_tapes {
            return Err(self.full());
        }
        let retrace = lock(&self.retrace)
            .as_ref()
            .map(|r| r.clone_ref(py))
            .ok_or_else(|| PyRuntimeError::new_err("this compiled function has been cleared"))?;
        let mut point = Fresh::zeros(py, &self.in_shape)?;
        point.data().copy_from_slice(x);
        let traced = retrace.bind(py).call1((point.array(),))?;
        let ty = traced.get_type();
        let tape = traced.cast_into::<Tape>().map_err(|_| {
            PyTypeError::new_err(format!(
                "retrace must return a duals._native.Tape, got {ty}"
            ))
        })?;
        if !tape.get().tape.guards_hold(x) {
            return Err(PyRuntimeError::new_err(
                "retrace returned a tape whose guards do not hold at the point it was traced at",
            ));
        }
        self.push(&tape)?;
        Ok(tape.unbind())
    }

    /// A point argument of `in_shape`.
    fn point_arg<'py>(&self, obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Input<'py>> {
        let x = Input::read(obj, what)?;
        if x.shape() != self.in_shape.as_slice() {
            return Err(PyValueError::new_err(format!(
                "expected {} of shape {}, got {}",
                if what == "x" {
                    "a point"
                } else {
                    "a tangent v"
                },
                fmt_shape(&self.in_shape),
                fmt_shape(x.shape())
            )));
        }
        Ok(x)
    }

    fn need_scalar(&self, call: &str) -> PyResult<()> {
        if self.out_shape.is_empty() {
            return Ok(());
        }
        Err(PyValueError::new_err(format!(
            "{call} needs a scalar-valued function, this one returns shape {}; use jacobian \
             (or jvp) for an array-valued function",
            fmt_shape(&self.out_shape)
        )))
    }

    fn need_elementwise(&self, call: &str) -> PyResult<()> {
        if self.in_shape.is_empty() && self.out_shape.is_empty() {
            return Ok(());
        }
        Err(PyValueError::new_err(format!(
            "{call} needs a function compiled at a scalar with a scalar value, this one maps \
             shape {} to shape {}; use jacobian_batch",
            fmt_shape(&self.in_shape),
            fmt_shape(&self.out_shape)
        )))
    }

    /// `what` at `x`: the tape whose guards hold, and its results as arrays of `shape` (and
    /// `shape2`).
    fn point<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        v: Option<&Bound<'py, PyAny>>,
        what: Point,
        shape: &[usize],
    ) -> PyResult<Pair<'py>> {
        let x = self.point_arg(x, "x")?;
        let v = v.map(|v| self.point_arg(v, "v")).transpose()?;
        if let Some(tape) = self.cached(py, x.data()) {
            return tape.get().point(py, &x, v.as_ref(), what, shape);
        }
        // Python code runs: read private copies.
        let (x, v) = (x.owned(), v.map(Input::owned));
        let tape = self.retrace_at(py, x.data())?;
        tape.get().point(py, &x, v.as_ref(), what, shape)
    }

    /// Splits the `b` points of `x` (row-major, `n_in` each) among the tapes whose guards hold
    /// (the cached tapes in order, then new traces at the first point none covers).
    fn groups(&self, py: Python<'_>, x: &[f64], b: usize) -> PyResult<Vec<Group>> {
        let n = self.n_in;
        let cached: Vec<Py<Tape>> = lock(&self.tapes).iter().map(|t| t.clone_ref(py)).collect();
        let mut cached = cached.into_iter();
        let mut groups = Vec::new();
        let mut rest: Option<Vec<usize>> = None; // None: every point
        let (mut buf, mut holds) = (Vec::new(), Vec::new());
        loop {
            let count = rest.as_ref().map_or(b, Vec::len);
            if count == 0 {
                return Ok(groups);
            }
            let tape = match cached.next() {
                Some(t) => t,
                None => {
                    let first = rest.as_ref().map_or(0, |r| r[0]);
                    self.retrace_at(py, &x[first * n..(first + 1) * n])?
                }
            };
            let t = &tape.get().tape;
            let all = if t.guards().is_empty() {
                true
            } else if n == 0 {
                // Every point is the same (empty) point.
                if !t.guards_hold(&[]) {
                    continue;
                }
                true
            } else {
                false
            };
            if all {
                groups.push((tape, rest.take()));
                return Ok(groups);
            }
            let pts: &[f64] = match &rest {
                None => x,
                Some(r) => {
                    buf.clear();
                    for &i in r {
                        buf.extend_from_slice(&x[i * n..(i + 1) * n]);
                    }
                    &buf
                }
            };
            holds.clear();
            holds.resize(count, false);
            let work = t.n_ops().saturating_mul(count) > DETACH_WORK;
            run(py, work, || t.guards_batch(pts, &mut holds)).map_err(errors::tape)?;
            let index = |k: usize| rest.as_ref().map_or(k, |r| r[k]);
            let (mut yes, mut no) = (Vec::new(), Vec::new());
            for (k, &h) in holds.iter().enumerate() {
                if h { &mut yes } else { &mut no }.push(index(k));
            }
            if no.is_empty() {
                groups.push((tape, rest.take()));
                return Ok(groups);
            }
            if !yes.is_empty() {
                groups.push((tape, Some(yes)));
            }
            rest = Some(no);
        }
    }

    /// `what` at the `b` points of `x` as a new array of `shape` (`b` rows).
    fn batch<'py>(
        &self,
        py: Python<'py>,
        x: Input<'_>,
        b: usize,
        what: Batch,
        shape: &[usize],
    ) -> PyResult<Fresh<'py, f64>> {
        let mut out = Fresh::zeros(py, shape)?;
        let lanes = what.lanes(self.n_in);
        // A private copy: a retrace may run Python code, and large batches release the GIL.
        let copy = Private::new(x.data());
        let xs = copy.slice();
        let groups = self.groups(py, xs, b)?;
        let (n, row) = (self.n_in, what.row(self.n_in, self.n_out));
        let o = out.data();
        for (tape, points) in &groups {
            let t = tape.get();
            let detach = t.detach(lanes, points.as_ref().map_or(b, Vec::len));
            match points {
                None => run(py, detach, || t.batch_into(what, xs, b, o)),
                Some(idx) => {
                    let mut sub = Vec::with_capacity(idx.len() * n);
                    for &i in idx {
                        sub.extend_from_slice(&xs[i * n..(i + 1) * n]);
                    }
                    let mut res = vec![0.0; idx.len() * row];
                    let done = run(py, detach, || t.batch_into(what, &sub, idx.len(), &mut res));
                    if done.is_ok() {
                        for (&i, r) in idx.iter().zip(res.chunks_exact(row.max(1))) {
                            o[i * row..(i + 1) * row].copy_from_slice(&r[..row]);
                        }
                    }
                    done
                }
            }
            .map_err(errors::tape)?;
        }
        Ok(out)
    }

    /// A batch argument of shape `(B, *in_shape)`; returns it and `B`.
    fn rows_arg<'py>(&self, obj: &Bound<'py, PyAny>, call: &str) -> PyResult<(Input<'py>, usize)> {
        let x = Input::read(obj, "X")?;
        match x.shape().split_first() {
            Some((&b, rest)) if rest == self.in_shape.as_slice() => Ok((x, b)),
            _ => Err(PyValueError::new_err(format!(
                "{call} expects points stacked along a first axis, shape {}, got {}",
                fmt_dims(
                    std::iter::once("B".to_string())
                        .chain(self.in_shape.iter().map(usize::to_string))
                ),
                fmt_shape(x.shape())
            ))),
        }
    }
}

#[pymethods]
impl CompiledCore {
    #[new]
    #[pyo3(signature = (retrace, in_shape, out_shape, max_tapes = 32))]
    fn py_new(
        retrace: Bound<'_, PyAny>,
        in_shape: Vec<usize>,
        out_shape: Vec<usize>,
        max_tapes: usize,
    ) -> PyResult<Self> {
        if !retrace.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "retrace must be callable, got {}",
                retrace.get_type()
            )));
        }
        if max_tapes == 0 {
            return Err(PyValueError::new_err("max_tapes must be at least 1"));
        }
        let size = |s: &[usize]| {
            s.iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| {
                    PyValueError::new_err(format!("shape {} is too large", fmt_shape(s)))
                })
        };
        let (n_in, n_out) = (size(&in_shape)?, size(&out_shape)?);
        let jac_shape = [out_shape.as_slice(), in_shape.as_slice()].concat();
        let hess_shape = [in_shape.as_slice(), in_shape.as_slice()].concat();
        Ok(CompiledCore {
            retrace: Mutex::new(Some(retrace.unbind())),
            in_shape,
            out_shape,
            jac_shape,
            hess_shape,
            n_in,
            n_out,
            max_tapes,
            tapes: Mutex::new(Vec::new()),
        })
    }

    /// Adds a tape to the cache (it is tried first).
    fn add_tape(&self, tape: &Bound<'_, Tape>) -> PyResult<()> {
        self.push(tape)
    }

    /// The tape for the point `x` (of `in_shape`): a cached one whose guards hold, or a new
    /// trace.
    fn tape_at(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<Py<Tape>> {
        let x = self.point_arg(x, "x")?;
        if let Some(tape) = self.cached(py, x.data()) {
            return Ok(tape);
        }
        let x = x.owned();
        self.retrace_at(py, x.data())
    }

    /// The cached tapes, most recently used first.
    #[getter]
    fn tapes(&self, py: Python<'_>) -> Vec<Py<Tape>> {
        lock(&self.tapes).iter().map(|t| t.clone_ref(py)).collect()
    }

    /// The shape of a point.
    #[getter]
    fn in_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.in_shape)
    }

    /// The shape of a value.
    #[getter]
    fn out_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.out_shape)
    }

    /// The most tapes kept.
    #[getter]
    fn max_tapes(&self) -> usize {
        self.max_tapes
    }

    /// The size of the most recently used tape; None before the first.
    #[getter]
    fn n_ops(&self) -> Option<usize> {
        lock(&self.tapes).first().map(|t| t.get().tape.n_ops())
    }

    /// `f(x)`: shape `out_shape` (a float if `out_shape == ()`).
    fn value<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let out = self.point(py, x, None, Point::Value, &self.out_shape)?.0;
        Ok(out.result(self.out_shape.is_empty()))
    }

    /// The Jacobian `J[i..., j...] = d f_i / d x_j`: shape `out_shape + in_shape`.
    fn jacobian<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let what = Point::Jacobian(Chunk::Auto);
        let out = self.point(py, x, None, what, &self.jac_shape)?.0;
        Ok(out.result(self.jac_shape.is_empty()))
    }

    /// `(f(x), J v)`, each of shape `out_shape`.
    fn jvp<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        v: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let s = &self.out_shape;
        let (y, jv) = self.point(py, x, Some(v), Point::Jvp, s)?;
        let jv = jv.map_or_else(|| Fresh::zeros(py, s), Ok)?; // always Some for a JVP
        Ok((y.result(s.is_empty()), jv.result(s.is_empty())))
    }

    /// The gradient of a scalar-valued function: shape `in_shape`.
    fn gradient<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.need_scalar("gradient")?;
        let out = self.point(py, x, None, Point::Gradient, &self.in_shape)?.0;
        Ok(out.result(self.in_shape.is_empty()))
    }

    /// The Hessian of a scalar-valued function: shape `in_shape + in_shape`.
    fn hessian<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.need_scalar("hessian")?;
        let out = self.point(py, x, None, Point::Hessian, &self.hess_shape)?.0;
        Ok(out.result(self.hess_shape.is_empty()))
    }

    /// `H v` of a scalar-valued function: shape `in_shape`.
    fn hvp<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        v: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.need_scalar("hvp")?;
        let out = self.point(py, x, Some(v), Point::Hvp, &self.in_shape)?.0;
        Ok(out.result(self.in_shape.is_empty()))
    }

    /// `f` at each point of `X` (shape `(B, *in_shape)`): shape `(B, *out_shape)`.
    fn value_batch<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let (x, b) = self.rows_arg(x, "value_batch")?;
        let shape = [&[b], self.out_shape.as_slice()].concat();
        self.batch(py, x, b, Batch::Value, &shape).map(Fresh::array)
    }

    /// The Jacobian at each point of `X`: shape `(B, *out_shape, *in_shape)`.
    fn jacobian_batch<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let (x, b) = self.rows_arg(x, "jacobian_batch")?;
        let shape = [&[b], self.jac_shape.as_slice()].concat();
        self.batch(py, x, b, Batch::Jacobian, &shape)
            .map(Fresh::array)
    }

    /// `f'` at every element of `X` (any shape) of a function compiled at a scalar.
    fn derivative<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.need_elementwise("derivative")?;
        let x = Input::read(x, "x")?;
        let shape = x.shape().to_vec();
        let b = x.data().len();
        let out = self.batch(py, x, b, Batch::Derivative, &shape)?;
        Ok(out.result(shape.is_empty()))
    }

    /// `f''` at every element of `X` (any shape) of a function compiled at a scalar.
    fn second_derivative<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.need_elementwise("second_derivative")?;
        let x = Input::read(x, "x")?;
        let shape = x.shape().to_vec();
        let b = x.data().len();
        let out = self.batch(py, x, b, Batch::SecondDerivative, &shape)?;
        Ok(out.result(shape.is_empty()))
    }

    fn __repr__(&self) -> String {
        format!(
            "CompiledCore(in_shape={}, out_shape={}, tapes={})",
            fmt_shape(&self.in_shape),
            fmt_shape(&self.out_shape),
            lock(&self.tapes).len()
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(r) = self.retrace.try_lock() {
            visit.call(&*r)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        if let Ok(mut r) = self.retrace.try_lock() {
            // Dropped while attached: the collector runs with the thread attached.
            *r = None;
        }
    }
}
