//! `duals.Dual`: the native 0-d dual scalar (a primal, `K` tangents and the seed they mean).
//!
//! The number protocol runs natively for the common cases, with the engine's [`DualDyn`]
//! arithmetic and rule table (no derivative formula here):
//!
//! - `Dual ⊗ Dual` (same seed) and `Dual ⊗ float/int` (either side) for `+ - * /`, unary
//!   `- +`, `abs`, `** float/int`, `float ** Dual`, comparisons on primals, and the same
//!   ufuncs through `__array_ufunc__` (`np.sin(d)`, `np.multiply(2.0, d)`, ...) without
//!   keyword arguments. Sums, differences and scaling by constants are linear in the tangents
//!   and run natively for second-order seeds too; everything nonlinear needs a first-order seed.
//! - Everything else (second-order seeds, DualArray or ndarray operands, other ufuncs, NumPy
//!   functions) calls the Python implementation in `duals._core`, `duals._ufuncs` and
//!   `duals._functions`, exactly as the former Python class did (a Dual with a DualArray: the
//!   DualArray fast paths below first).
//!
//! `_DualArrayBase`, the storage of `duals.DualArray`, runs `x[i]`, `x[i] = d` and the
//! arithmetic `+ - * /` (both sides), unary `-` and the same ufuncs called plainly natively for
//! first-order seeds, with the engine's array kernels ([`kernels::add`], ...); see
//! `array_binary` for the operands taken. On large arrays with one tangent row these operations
//! (and `x ** 2`, `np.square` and the unary rules with a vector body) give pending arrays whose
//! storage is an expression, evaluated fused when something reads the arrays (`crate::lazy`);
//! `_p`/`_t` and every read here go through `DualArrayBase::parts` or `expose`.
//!
//! The seed (`duals._core.Seed`, what the tangent rows mean) is kept as the Python object, with
//! its numbers (`order`, `k1`, `k2`) copied out for fast comparisons by value.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use numpy::ndarray::arr0;
use numpy::npyffi::NPY_TYPES;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::basic::CompareOp;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PySlice, PyString, PyTuple, PyType};
use pyo3::{ffi, intern, IntoPyObjectExt};

use duals::kernels::{self, KernelError, Operand};
use duals::rules::{BinaryRule, UnaryRule};
use duals::DualDyn;

use crate::band;
use crate::errors;
use crate::hyper;
use crate::lazy::{self, Lazy};

// ------------------------------------------------------------------------------------------------
// The Python side: modules imported once
// ------------------------------------------------------------------------------------------------

// Plain `OnceLock`s filled by `cached` without holding a lock (a thread that loses the race drops
// its copy), so nothing blocks while attached and pyo3's `PyOnceLock` (which detaches while
// initializing) is not needed.
static CORE: OnceLock<Py<PyModule>> = OnceLock::new();
static UFUNCS: OnceLock<Py<PyModule>> = OnceLock::new();
static FUNCTIONS: OnceLock<Py<PyModule>> = OnceLock::new();
static NUMPY: OnceLock<Py<PyModule>> = OnceLock::new();
/// NumPy ufunc name -> rule, from `duals._ufuncs._UNARY_RULES` (the one list of names).
static UFUNC_RULES: OnceLock<HashMap<String, UnaryRule>> = OnceLock::new();

/// The value of `cell`, computed by `init` on first use (with the thread attached: a value that
/// loses a race is dropped here, while attached).
pub(crate) fn cached<T>(
    cell: &'static OnceLock<T>,
    init: impl FnOnce() -> PyResult<T>,
) -> PyResult<&'static T> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let value = init()?;
    drop(cell.set(value));
    cell.get().ok_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err("duals: cache initialization failed")
    })
}

fn module<'py>(
    py: Python<'py>,
    cell: &'static OnceLock<Py<PyModule>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyModule>> {
    cached(cell, || py.import(name).map(Bound::unbind)).map(|m| m.bind(py))
}

pub(crate) fn core(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    module(py, &CORE, "duals._core")
}

pub(crate) fn numpy(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    module(py, &NUMPY, "numpy")
}

fn ufunc_rules(py: Python<'_>) -> PyResult<&'static HashMap<String, UnaryRule>> {
    cached(&UFUNC_RULES, || {
        let table = module(py, &UFUNCS, "duals._ufuncs")?.getattr("_UNARY_RULES")?;
        let table = table.cast::<PyDict>()?;
        let mut rules = HashMap::new();
        for (name, rule) in table.iter() {
            let rule: String = rule.extract()?;
            if let Some(r) = UnaryRule::from_name(&rule, 0.0) {
                rules.insert(name.extract::<String>()?, r);
            }
        }
        Ok(rules)
    })
}

/// `duals._core.<name>(*args)`: the Python implementation.
pub(crate) fn call_core<'py>(
    py: Python<'py>,
    name: &Bound<'py, PyString>,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> PyResult<Py<PyAny>> {
    Ok(core(py)?.getattr(name)?.call1(args)?.unbind())
}

/// The TypeError for a conversion that would lose the derivative (`_core._LOST`).
fn lost(py: Python<'_>, what: &str) -> PyErr {
    let text = core(py)
        .and_then(|m| m.getattr("_LOST"))
        .and_then(|s| s.extract::<String>())
        .unwrap_or_else(|_| {
            "converting a dual number to {what} would lose its derivative".to_string()
        });
    pyo3::exceptions::PyTypeError::new_err(text.replace("{what}", what))
}

// ------------------------------------------------------------------------------------------------
// The class
// ------------------------------------------------------------------------------------------------

/// The numbers of a `Seed`: `order` 1 (`k1` directions) or 2 (hyper-dual, `k1`, `k2`).
///
/// Three words: with a one-byte `order`, moves of a `Layout` (in results and into a `Dual`)
/// compile to overlapping partial copies that stall the CPU's store forwarding, a measurable
/// part of `x[i]` and of every scalar operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    order: usize,
    k1: usize,
    k2: usize,
}

thread_local! {
    /// The last seed whose layout was read on this thread, kept alive so that its identity stays
    /// meaningful (one evaluation of a user function uses one seed). Thread-local: no atomic
    /// operations, which cost more than the three attribute reads they save.
    static LAST_SEED: std::cell::RefCell<Option<(Py<PyAny>, Layout)>> =
        const { std::cell::RefCell::new(None) };
}

impl Layout {
    /// The layout of a Python `Seed` (its `order`, `k1`, `k2` attributes).
    fn of(seed: &Bound<'_, PyAny>) -> PyResult<Self> {
        let cached = LAST_SEED
            .try_with(|last| match last.try_borrow().as_deref() {
                Ok(Some((s, layout))) if s.is(seed) => Some(*layout),
                _ => None,
            })
            .ok()
            .flatten();
        if let Some(layout) = cached {
            return Ok(layout);
        }
        let layout = Self::read(seed)?;
        // The previous seed is released after the cell's borrow ends (its decref may run code).
        let previous = LAST_SEED
            .try_with(|last| {
                last.try_borrow_mut()
                    .ok()
                    .and_then(|mut l| l.replace((seed.clone().unbind(), layout)))
            })
            .ok()
            .flatten();
        drop(previous);
        Ok(layout)
    }

    /// The layout read from the seed's attributes.
    fn read(seed: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = seed.py();
        Ok(Layout {
            order: seed.getattr(intern!(py, "order"))?.extract()?,
            k1: seed.getattr(intern!(py, "k1"))?.extract()?,
            k2: seed.getattr(intern!(py, "k2"))?.extract()?,
        })
    }

    /// Number of tangent rows `K`.
    pub(crate) fn rows(self) -> usize {
        if self.order == 1 {
            self.k1
        } else {
            self.k1 + self.k2 + self.k1 * self.k2
        }
    }

    pub(crate) fn first_order(self) -> bool {
        self.order == 1
    }

    /// `(k1, k2)` of a second-order (hyper-dual) layout.
    pub(crate) fn second_order(self) -> Option<(usize, usize)> {
        (self.order == 2).then_some((self.k1, self.k2))
    }
}

/// A dual number: a primal value and its tangent(s).
///
/// ``Dual(x, 1.0)`` is the independent variable at ``x``; NumPy functions, Python operators
/// and indexing of dual arrays all work with it. Like ``numpy.float64`` it is what indexing a
/// :class:`DualArray` down to one element returns.
///
/// Parameters
/// ----------
/// primal : float
///     The value.
/// tangent : float or array_like of shape (k,)
///     The tangent (one direction) or ``k`` tangents.
///
/// Examples
/// --------
/// >>> import numpy as np, duals
/// >>> d = duals.Dual(2.0, 1.0)
/// >>> y = d**3                  # 3 x**2 = 12
/// >>> y.primal, y.tangent
/// (8.0, 12.0)
/// >>> float(np.sin(d).tangent) == float(np.cos(2.0))
/// True
#[pyclass(module = "duals", name = "Dual", frozen)]
#[derive(Debug)]
pub struct Dual {
    x: DualDyn,
    layout: Layout,
    seed: Py<PyAny>,
}

impl Dual {
    /// The value, the tangents and the seed of a first-order Dual (`None` for other orders).
    pub(crate) fn first_order_parts(&self) -> Option<(f64, &[f64], &Py<PyAny>)> {
        self.layout
            .first_order()
            .then(|| (self.x.re(), self.x.eps(), &self.seed))
    }

    /// A result with the same seed as `self`, as a new Python object: made at once, the value
    /// is moved into the object without first passing through results and options (each a copy
    /// of the whole value, at offsets that stall the CPU's store forwarding).
    fn derived<'py>(&self, py: Python<'py>, x: DualDyn) -> PyResult<Bound<'py, PyAny>> {
        let d = Dual {
            x,
            layout: self.layout,
            seed: self.seed.clone_ref(py),
        };
        Ok(Bound::new(py, d)?.into_any())
    }

    /// A dual from its parts: a primal, `K` tangents and a Python `Seed`.
    fn from_parts(p: f64, t: &[f64], seed: &Bound<'_, PyAny>) -> PyResult<Dual> {
        let layout = Layout::of(seed)?;
        if t.len() != layout.rows() {
            return Err(errors::shape(
                "Dual: the tangent must have one value per tangent row of the seed",
                &[layout.rows()],
                &[t.len()],
            ));
        }
        Ok(Dual {
            x: DualDyn::new(p, t),
            layout,
            seed: seed.clone().unbind(),
        })
    }
}

/// An operand as the fast paths see it.
pub(crate) enum Arg<'a> {
    Dual(&'a Dual),
    Const(f64),
    Other,
}

pub(crate) fn arg<'a>(x: &'a Bound<'_, PyAny>) -> Arg<'a> {
    // `Dual` cannot be subclassed: the exact check is the same test, and a float operand fails
    // it at once instead of after a walk of float's bases.
    if let Ok(d) = x.cast_exact::<Dual>() {
        return Arg::Dual(d.get());
    }
    if let Ok(f) = x.cast::<PyFloat>() {
        return Arg::Const(f.value());
    }
    if x.is_instance_of::<PyInt>() {
        if let Ok(i) = x.extract::<i64>() {
            return Arg::Const(i as f64);
        }
    }
    Arg::Other
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

impl Op {
    fn python<'py>(self, py: Python<'py>) -> &'py Bound<'py, PyString> {
        match self {
            Op::Add => intern!(py, "add"),
            Op::Sub => intern!(py, "sub"),
            Op::Mul => intern!(py, "mul"),
            Op::Div => intern!(py, "div"),
        }
    }
}

/// `a op b` natively, or `None` where the Python implementation must run.
fn native_binary<'py>(
    py: Python<'py>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    op: Op,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(match (arg(a), arg(b)) {
        (Arg::Dual(x), Arg::Dual(y)) => {
            if x.layout != y.layout || (!x.layout.first_order() && matches!(op, Op::Mul | Op::Div))
            {
                return Ok(None);
            }
            let r = match op {
                Op::Add => x.x.try_add(&y.x),
                Op::Sub => x.x.try_sub(&y.x),
                Op::Mul => x.x.try_mul(&y.x),
                Op::Div => x.x.try_div(&y.x),
            };
            // Unwrapped in place (`map_err` would copy the value into a result of another
            // layout first).
            match r {
                Ok(r) => Some(x.derived(py, r)?),
                Err(e) => return Err(errors::tangents(e)),
            }
        }
        // Linear in the tangents: any seed.
        (Arg::Dual(x), Arg::Const(c)) => Some(x.derived(
            py,
            match op {
                Op::Add => x.x.add_re(c),
                Op::Sub => x.x.sub_re(c),
                Op::Mul => x.x.mul_re(c),
                Op::Div => x.x.div_re(c),
            },
        )?),
        (Arg::Const(c), Arg::Dual(y)) => match op {
            Op::Add => Some(y.derived(py, y.x.add_re(c))?),
            Op::Sub => Some(y.derived(py, y.x.rsub_re(c))?),
            Op::Mul => Some(y.derived(py, y.x.mul_re(c))?),
            Op::Div if y.layout.first_order() => Some(y.derived(py, y.x.rdiv_re(c))?),
            Op::Div => None,
        },
        _ => None,
    })
}

fn binary<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    op: Op,
) -> PyResult<Py<PyAny>> {
    match native_binary(py, a, b, op)? {
        Some(d) => Ok(d.unbind()),
        // `d op x` with a DualArray `x`
        None => array_op(py, a, b, op),
    }
}

/// The rule of `x ** e` for a constant exponent: `powi` for integral `e`, else `powf` (as
/// `duals._core.power`).
fn power_rule(e: f64) -> UnaryRule {
    if e.fract() == 0.0 && e.abs() < 2_147_483_648.0 {
        UnaryRule::Powi(e as i32)
    } else {
        UnaryRule::Powf(e)
    }
}

/// `a ** b` natively, or `None`.
fn native_power<'py>(
    py: Python<'py>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(match (arg(a), arg(b)) {
        (Arg::Dual(x), Arg::Const(e)) if x.layout.first_order() => {
            Some(x.derived(py, x.x.unary(power_rule(e)))?)
        }
        (Arg::Const(c), Arg::Dual(y)) if y.layout.first_order() => {
            Some(y.derived(py, y.x.chain_second(BinaryRule::Pow.eval(c, y.x.re())))?)
        }
        _ => None,
    })
}

fn power<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Py<PyAny>> {
    match native_power(py, a, b)? {
        Some(d) => Ok(d.unbind()),
        None => call_core(py, intern!(py, "power"), (a, b)),
    }
}

fn compare(a: f64, b: f64, op: CompareOp) -> bool {
    match op {
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
    }
}

fn compare_index(op: CompareOp) -> u8 {
    match op {
        CompareOp::Lt => 0,
        CompareOp::Le => 1,
        CompareOp::Eq => 2,
        CompareOp::Ne => 3,
        CompareOp::Gt => 4,
        CompareOp::Ge => 5,
    }
}

/// A ufunc called with a Dual and plain floats only, without keyword arguments, natively; else
/// `None`.
fn native_ufunc<'py>(
    py: Python<'py>,
    ufunc: &Bound<'_, PyAny>,
    inputs: &Bound<'_, PyTuple>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let name = ufunc.getattr(intern!(py, "__name__"))?;
    let Ok(name) = name.cast::<PyString>() else {
        return Ok(None);
    };
    let name = name.to_str()?;
    match inputs.len() {
        1 => {
            let x = inputs.get_item(0)?;
            let Arg::Dual(x) = arg(&x) else {
                return Ok(None);
            };
            Ok(match name {
                "negative" => Some(x.derived(py, x.x.neg())?),
                "positive" | "conjugate" => Some(x.derived(py, x.x.clone())?),
                _ if !x.layout.first_order() => None,
                "square" => Some(x.derived(py, x.x.try_mul(&x.x).map_err(errors::tangents)?)?),
                _ => match ufunc_rules(py)?.get(name) {
                    Some(&rule) => Some(x.derived(py, x.x.unary(rule))?),
                    None => None,
                },
            })
        }
        2 => {
            let (a, b) = (inputs.get_item(0)?, inputs.get_item(1)?);
            match name {
                "add" => native_binary(py, &a, &b, Op::Add),
                "subtract" => native_binary(py, &a, &b, Op::Sub),
                "multiply" => native_binary(py, &a, &b, Op::Mul),
                "divide" => native_binary(py, &a, &b, Op::Div),
                "power" | "float_power" => native_power(py, &a, &b),
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// The `tangent` argument of the constructor: absent (one), or whatever was passed (even None).
enum TangentArg<'py> {
    One,
    Given(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for TangentArg<'py> {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(TangentArg::Given(obj.to_owned()))
    }
}

#[pymethods]
impl Dual {
    #[new]
    #[pyo3(signature = (primal, tangent = TangentArg::One), text_signature = "(primal, tangent=1.0)")]
    fn py_new(
        py: Python<'_>,
        primal: &Bound<'_, PyAny>,
        tangent: TangentArg<'_>,
    ) -> PyResult<Dual> {
        // The checks and messages of the Python constructor (`_core._dual_args`).
        let tangent = match tangent {
            TangentArg::One => PyFloat::new(py, 1.0).into_any(),
            TangentArg::Given(t) => t,
        };
        let parts = core(py)?
            .getattr(intern!(py, "_dual_args"))?
            .call1((primal, tangent))?;
        let (p, t, seed): (f64, Bound<'_, PyAny>, Bound<'_, PyAny>) = parts.extract()?;
        let t = t
            .cast::<PyArray1<f64>>()?
            .try_readonly()
            .map_err(errors::borrow)?;
        Dual::from_parts(p, &t.as_array().to_vec(), &seed)
    }

    /// Internal: the Dual of a primal, tangents `(K,)` and a `Seed` (``duals._core._make``).
    #[staticmethod]
    fn _from_parts(
        primal: f64,
        tangent: &Bound<'_, PyAny>,
        seed: &Bound<'_, PyAny>,
    ) -> PyResult<Dual> {
        if let Ok(t) = tangent.cast::<PyArrayDyn<f64>>() {
            if let Ok(t) = t.try_readonly() {
                if let Some(s) = t.as_slice().ok().filter(|_| t.is_c_contiguous()) {
                    return Dual::from_parts(primal, s, seed);
                }
                return Dual::from_parts(
                    primal,
                    &t.as_array().iter().copied().collect::<Vec<_>>(),
                    seed,
                );
            }
        }
        let py = tangent.py();
        let t = numpy(py)?
            .getattr(intern!(py, "asarray"))?
            .call1((tangent, intern!(py, "float64")))?;
        let t: Vec<f64> = t.call_method1(intern!(py, "reshape"), (-1,))?.extract()?;
        Dual::from_parts(primal, &t, seed)
    }

    // ----- values -----

    /// The value.
    #[getter]
    fn primal(&self) -> f64 {
        self.x.re()
    }

    /// The tangent: a float for one direction, else an array of shape ``(k,)``.
    #[getter]
    fn tangent(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.layout.first_order() && self.x.k() == 1 {
            return self.x.eps()[0].into_py_any(py);
        }
        Ok(PyArray1::from_slice(py, self.x.eps()).into_any().unbind())
    }

    /// The primal as a 0-d float64 array (a new array; for the generic Python paths).
    #[getter]
    fn _p<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        arr0(self.x.re()).into_pyarray(py).into_any()
    }

    /// The tangents as a new float64 array of shape ``(K,)``.
    #[getter]
    fn _t<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        PyArray1::from_slice(py, self.x.eps()).into_any()
    }

    /// The ``Seed`` (what the tangent rows mean).
    #[getter]
    fn _s(&self, py: Python<'_>) -> Py<PyAny> {
        self.seed.clone_ref(py)
    }

    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        PyTuple::empty(py)
    }

    #[getter]
    fn ndim(&self) -> usize {
        0
    }

    #[getter]
    fn size(&self) -> usize {
        1
    }

    /// Number of tangent rows ``K``.
    #[getter]
    fn ntangents(&self) -> usize {
        self.x.k()
    }

    #[getter]
    fn real(slf: &Bound<'_, Self>) -> Py<Self> {
        slf.clone().unbind()
    }

    #[getter]
    fn imag<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.derived(py, DualDyn::constant(0.0, self.x.k()))
    }

    #[classattr]
    fn __array_priority__() -> f64 {
        // Make NumPy defer to our reflected operators.
        1000.0
    }

    // ----- the number protocol -----

    fn __add__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        binary(slf.py(), slf.as_any(), other, Op::Add)
    }

    fn __radd__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        binary(slf.py(), other, slf.as_any(), Op::Add)
    }

    fn __sub__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        binary(slf.py(), slf.as_any(), other, Op::Sub)
    }

    fn __rsub__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        binary(slf.py(), other, slf.as_any(), Op::Sub)
    }

    fn __mul__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        binary(slf.py(), slf.as_any(), other, Op::Mul)
    }

    fn __rmul__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        binary(slf.py(), other, slf.as_any(), Op::Mul)
    }

    fn __truediv__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        binary(slf.py(), slf.as_any(), other, Op::Div)
    }

    fn __rtruediv__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        binary(slf.py(), other, slf.as_any(), Op::Div)
    }

    fn __pow__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        modulo: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if modulo.is_some_and(|m| !m.is_none()) {
            return Ok(py.NotImplemented());
        }
        power(py, slf.as_any(), other)
    }

    fn __rpow__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        modulo: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if modulo.is_some_and(|m| !m.is_none()) {
            return Ok(py.NotImplemented());
        }
        power(py, other, slf.as_any())
    }

    fn __mod__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        call_core(slf.py(), intern!(slf.py(), "mod"), (slf, other))
    }

    fn __rmod__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        call_core(slf.py(), intern!(slf.py(), "mod"), (other, slf))
    }

    fn __floordiv__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        call_core(slf.py(), intern!(slf.py(), "floor_divide"), (slf, other))
    }

    fn __rfloordiv__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        call_core(slf.py(), intern!(slf.py(), "floor_divide"), (other, slf))
    }

    fn __matmul__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        Ok(numpy(py)?
            .getattr(intern!(py, "matmul"))?
            .call1((slf, other))?
            .unbind())
    }

    fn __rmatmul__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        Ok(numpy(py)?
            .getattr(intern!(py, "matmul"))?
            .call1((other, slf))?
            .unbind())
    }

    fn __neg__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.derived(py, self.x.neg())
    }

    fn __pos__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.derived(py, self.x.clone())
    }

    fn __abs__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let (py, d) = (slf.py(), slf.get());
        if d.layout.first_order() {
            return Ok(d.derived(py, d.x.unary(UnaryRule::Abs))?.unbind());
        }
        call_core(py, intern!(py, "unary"), (intern!(py, "abs"), slf))
    }

    /// Comparisons look at primals, as a branch in the differentiated code sees them.
    fn __richcmp__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let a = slf.get().x.re();
        let b = match arg(other) {
            Arg::Dual(d) => d.x.re(),
            Arg::Const(c) => c,
            Arg::Other => {
                return call_core(py, intern!(py, "_compare"), (slf, other, compare_index(op)));
            }
        };
        Ok(PyBool::new(py, compare(a, b, op))
            .to_owned()
            .into_any()
            .unbind())
    }

    fn __bool__(&self) -> bool {
        self.x.re() != 0.0
    }

    // ----- conversions that would lose the derivative -----

    fn __float__(&self, py: Python<'_>) -> PyResult<f64> {
        Err(lost(py, "a float"))
    }

    fn __int__(&self, py: Python<'_>) -> PyResult<i64> {
        Err(lost(py, "an int"))
    }

    fn __index__(&self, py: Python<'_>) -> PyResult<i64> {
        Err(lost(py, "an integer index"))
    }

    fn __complex__(&self, py: Python<'_>) -> PyResult<f64> {
        Err(lost(py, "a complex number"))
    }

    #[pyo3(signature = (ndigits = None))]
    fn __round__(&self, py: Python<'_>, ndigits: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
        let _ = ndigits;
        Err(lost(py, "a rounded Python number"))
    }

    // ----- NumPy protocols (the Python modules, with native fast paths) -----

    #[pyo3(signature = (ufunc, method, *inputs, **kwargs))]
    fn __array_ufunc__<'py>(
        slf: &Bound<'py, Self>,
        ufunc: &Bound<'py, PyAny>,
        method: &Bound<'py, PyAny>,
        inputs: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        ufunc_protocol(slf.py(), ufunc, method, inputs, kwargs, |py| {
            if let Some(d) = native_ufunc(py, ufunc, inputs)? {
                return Ok(Some(d));
            }
            // `np.add(d, x)` with a DualArray `x`
            array_ufunc(py, ufunc, inputs)
        })
    }

    fn __array_function__<'py>(
        slf: &Bound<'py, Self>,
        func: &Bound<'py, PyAny>,
        types: &Bound<'py, PyAny>,
        args: &Bound<'py, PyAny>,
        kwargs: &Bound<'py, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let f =
            module(py, &FUNCTIONS, "duals._functions")?.getattr(intern!(py, "array_function"))?;
        Ok(f.call1((func, types, args, kwargs, slf))?.unbind())
    }

    // ----- NumPy-style methods -----

    #[pyo3(signature = (axis = None, keepdims = false))]
    fn sum(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<Py<PyAny>> {
        reduction(slf, intern!(slf.py(), "sum"), axis, keepdims)
    }

    #[pyo3(signature = (axis = None, keepdims = false))]
    fn mean(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<Py<PyAny>> {
        reduction(slf, intern!(slf.py(), "mean"), axis, keepdims)
    }

    #[pyo3(signature = (axis = None, keepdims = false))]
    fn prod(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<Py<PyAny>> {
        reduction(slf, intern!(slf.py(), "prod"), axis, keepdims)
    }

    #[pyo3(signature = (axis = None, keepdims = false))]
    fn max(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<Py<PyAny>> {
        reduction(slf, intern!(slf.py(), "max"), axis, keepdims)
    }

    #[pyo3(signature = (axis = None, keepdims = false))]
    fn min(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<Py<PyAny>> {
        reduction(slf, intern!(slf.py(), "min"), axis, keepdims)
    }

    fn dot(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        Ok(numpy(py)?
            .getattr(intern!(py, "dot"))?
            .call1((slf, other))?
            .unbind())
    }

    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.derived(py, self.x.clone())
    }

    fn conj(slf: &Bound<'_, Self>) -> Py<Self> {
        slf.clone().unbind()
    }

    fn conjugate(slf: &Bound<'_, Self>) -> Py<Self> {
        slf.clone().unbind()
    }

    // ----- repr, pickling -----

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let p = PyFloat::new(py, self.x.re()).repr()?;
        let t = if self.layout.first_order() && self.x.k() == 1 {
            PyFloat::new(py, self.x.eps()[0]).repr()?
        } else {
            PyList::new(py, self.x.eps())?.repr()?
        };
        Ok(format!("Dual({p}, {t})"))
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let make = core(py)?.getattr(intern!(py, "_make"))?;
        let args = PyTuple::new(py, [self._p(py), self._t(py), self.seed.bind(py).clone()])?;
        Ok((make, args))
    }
}

/// `__array_ufunc__` of Dual and DualArray: a plain call (`method == "__call__"`, no keywords)
/// through `fast` where it returns a result, everything else through
/// `duals._ufuncs.array_ufunc`.
fn ufunc_protocol<'py>(
    py: Python<'py>,
    ufunc: &Bound<'py, PyAny>,
    method: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
    fast: impl FnOnce(Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>>,
) -> PyResult<Py<PyAny>> {
    let plain = kwargs.is_none_or(|k| k.is_empty());
    if plain
        && method
            .cast::<PyString>()
            .is_ok_and(|m| m.to_str().is_ok_and(|m| m == "__call__"))
    {
        if let Some(r) = fast(py)? {
            return Ok(r.unbind());
        }
    }
    let kwargs = match kwargs {
        Some(k) => k.clone(),
        None => PyDict::new(py),
    };
    let f = module(py, &UFUNCS, "duals._ufuncs")?.getattr(intern!(py, "array_ufunc"))?;
    Ok(f.call1((ufunc, method, inputs, kwargs))?.unbind())
}

fn reduction(
    slf: &Bound<'_, Dual>,
    name: &Bound<'_, PyString>,
    axis: Option<&Bound<'_, PyAny>>,
    keepdims: bool,
) -> PyResult<Py<PyAny>> {
    let py = slf.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "axis"), axis)?;
    kwargs.set_item(intern!(py, "keepdims"), keepdims)?;
    Ok(numpy(py)?
        .getattr(name)?
        .call((slf,), Some(&kwargs))?
        .unbind())
}

// ------------------------------------------------------------------------------------------------
// Fast paths of DualArray indexing and output collection (private module functions)
// ------------------------------------------------------------------------------------------------

/// Position `i` (negative counts from the end) in an axis of `n`, or `None` out of bounds.
fn position(i: isize, n: usize) -> Option<usize> {
    let j = if i < 0 { i.checked_add_unsigned(n)? } else { i };
    usize::try_from(j).ok().filter(|&j| j < n)
}

/// A native-byte-order float64 ndarray of `ndim` dimensions as its data pointer, shape and
/// strides (in bytes); `None` for anything else. Read from the array's fields: `numpy`'s typed
/// casts look up and compare a dtype each, which costs about as much as the rest of `x[i]`.
fn f64_geometry<'a>(
    a: &'a Bound<'_, PyAny>,
    ndim: usize,
) -> Option<(*const u8, &'a [usize], &'a [isize])> {
    let a = a.cast::<PyUntypedArray>().ok()?;
    let dtype = a.dtype();
    if a.ndim() != ndim
        || dtype.num() != NPY_TYPES::NPY_DOUBLE as std::ffi::c_int
        || dtype.is_native_byteorder() != Some(true)
    {
        return None;
    }
    // SAFETY: `a` is a live ndarray; its data pointer field is read, not dereferenced.
    let data = unsafe { (*a.as_array_ptr()).data }
        .cast_const()
        .cast::<u8>();
    Some((data, a.shape(), a.strides()))
}

/// ``DualArray[i]`` (a new ``Dual``) for a 1-d float64 primal ``p (n,)``, tangents ``t (K, n)``
/// and an int ``i``; ``None`` (the caller takes the general path) for anything else, including
/// an index out of bounds (NumPy's message).
fn dual_at<'py>(
    p: &Bound<'py, PyAny>,
    t: &Bound<'_, PyAny>,
    i: &Bound<'_, PyAny>,
    seed: &Bound<'_, PyAny>,
    layout: Layout,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let (Some((pd, &[n], &[ps])), Some((td, &[k, m], &[tr, tc])), Ok(i)) =
        (f64_geometry(p, 1), f64_geometry(t, 2), i.extract::<isize>())
    else {
        return Ok(None);
    };
    let Some(j) = position(i, n) else {
        return Ok(None);
    };
    if m != n || layout.rows() != k {
        return Ok(None);
    }
    // Element reads (copies, with the thread attached), no array borrow.
    // SAFETY: `j < n` and every `r < k`, so each offset (index times stride, summed over the
    // axes) is that of an element inside the array's buffer; the elements are float64 (checked)
    // and read unaligned, as NumPy allows unaligned arrays.
    let read = |data: *const u8, offset: isize| unsafe {
        data.offset(offset).cast::<f64>().read_unaligned()
    };
    let j = j as isize;
    let x = DualDyn::from_iter(
        read(pd, j * ps),
        k,
        (0..k as isize).map(|r| read(td, r * tr + j * tc)),
    );
    let d = Dual {
        x,
        layout,
        seed: seed.clone().unbind(),
    };
    Ok(Some(Bound::new(p.py(), d)?.into_any()))
}

/// ``DualArray[i] = value`` for a 1-d float64 primal ``p (n,)``, tangents ``t (K, n)``, an int
/// ``i`` and a Dual ``value`` of the array's seed; ``False`` (nothing written, the caller takes
/// the general path) for anything else.
fn dual_put(
    p: &Bound<'_, PyAny>,
    t: &Bound<'_, PyAny>,
    i: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    seed: &Bound<'_, PyAny>,
    layout: Layout,
) -> PyResult<bool> {
    let (Ok(p), Ok(t), Ok(v), Ok(i)) = (
        p.cast::<PyArray1<f64>>(),
        t.cast::<PyArray2<f64>>(),
        value.cast::<Dual>(),
        i.extract::<isize>(),
    ) else {
        return Ok(false);
    };
    let v = v.get();
    let n = p.len();
    let (Some(j), [k, m]) = (position(i, n), t.shape()) else {
        return Ok(false);
    };
    if *m != n || *k != v.x.k() || !(v.seed.is(seed) || v.layout == layout) {
        return Ok(false);
    }
    let (Ok(mut p), Ok(mut t)) = (p.try_readwrite(), t.try_readwrite()) else {
        return Ok(false);
    };
    let (mut p, mut t) = (p.as_array_mut(), t.as_array_mut());
    let Some(slot) = p.get_mut(j) else {
        return Ok(false);
    };
    *slot = v.x.re();
    if j < t.ncols() {
        for (dst, &src) in t.column_mut(j).iter_mut().zip(v.x.eps()) {
            *dst = src;
        }
    }
    Ok(true)
}

/// The storage of ``duals.DualArray`` (a Python subclass, ``duals._core``): the primal ndarray
/// of shape ``S`` (``_p``), the tangent ndarray ``(K, *S)`` (``_t``) and the ``Seed`` (``_s``),
/// fixed at construction (the arrays themselves are mutable).
///
/// ``x[i]`` and ``x[i] = d`` with an int ``i`` on a 1-d array run natively (the element as a
/// ``Dual``; a ``Dual`` of the array's seed written in place); every other index and value goes
/// to the subclass's ``_getitem`` / ``_setitem`` (NumPy indexing in Python).
///
/// ``+ - * /`` (and the reflected forms), unary ``-`` and ``np.add``, ``np.subtract``,
/// ``np.multiply``, ``np.divide``, ``np.negative`` called without keywords run natively for a
/// first-order seed with operands of one shape: DualArrays and Duals of one seed, Python floats
/// and ints, NumPy float64 scalars and float64 ndarrays of the same shape or 0-d. Everything else
/// (broadcasting, other types, traced arrays, second-order seeds, mixed seeds) calls the Python
/// implementation (``duals._core.add``, ..., ``_DualBase.__neg__``, ``duals._ufuncs``). These
/// methods shadow those of the Python base class ``_DualBase`` (method resolution order).
#[pyclass(module = "duals._native", name = "_DualArrayBase", subclass, frozen)]
#[derive(Debug)]
pub struct DualArrayBase {
    storage: Storage,
    s: Py<PyAny>,
    /// The seed's layout, read on first use.
    layout: OnceLock<Layout>,
    /// Whether the arrays were never handed to Python code: new results of the native kernels
    /// and of pending expressions, and the inputs the drivers mark (`_own`). Only such arrays may
    /// be read by a pending expression later (see `crate::lazy`): nothing else can write them
    /// meanwhile but the methods of this class, which evaluate the pending expressions first.
    private: AtomicBool,
    /// Whether a pending expression was given these arrays as an input (they must not change
    /// until it is evaluated).
    leaf: AtomicBool,
    /// Evaluations of pending expressions reading these arrays with the thread detached.
    pins: AtomicUsize,
    /// For a view made natively (`x[a:b]`, see `__getitem__`): the array whose memory it
    /// shares (the first array of a chain of views). The view is private only while that
    /// array is; reading the view in a pending expression marks that array a leaf too, and
    /// handing the view out hands that array's memory out (see `expose`).
    base: OnceLock<Py<DualArrayBase>>,
}

/// The arrays of a `_DualArrayBase`: there, or the pending expression that gives them.
#[derive(Debug)]
enum Storage {
    Ready(Py<PyAny>, Py<PyAny>),
    /// The variable of a derivative: a primal and one tangent row of ones, made when first
    /// needed (a pending expression reads no stream of ones: see `unit_tangent`).
    Unit(Py<PyAny>, OnceLock<Py<PyAny>>),
    Pending(Arc<Lazy>),
    /// A one-dimensional array whose tangent is held as diagonals (`crate::band`).
    Banded(band::BandStorage),
}

/// The primal and diagonals of a new `Storage::Banded` array (and the position of a view in
/// its base), handed to `_DualArrayBase.__new__`.
#[pyclass(frozen)]
struct BandHandle(Py<PyAny>, Arc<band::Bands>, usize, u64);

/// The primal of a new `Storage::Unit` array, handed to `_DualArrayBase.__new__`.
#[pyclass(frozen)]
struct UnitHandle(Py<PyAny>);

/// ``_unit_tangent_array(primal, seed)``: a ``DualArray`` of a C-ordered float64 primal (not
/// 0-d) whose tangent ``(1, *S)`` is ones, made when first needed; ``derivative``'s input.
#[pyfunction]
pub(crate) fn _unit_tangent_array<'py>(
    py: Python<'py>,
    primal: &Bound<'py, PyArrayDyn<f64>>,
    seed: Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    if primal.ndim() == 0 || !primal.is_c_contiguous() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "_unit_tangent_array needs a C-ordered array of at least one dimension",
        ));
    }
    let handle = Bound::new(py, UnitHandle(primal.clone().into_any().unbind()))?;
    instantiate(py, handle.into_any(), py.None().into_bound(py), &seed)
}

impl DualArrayBase {
    /// A pending array: `lazy` gives its arrays when something needs them.
    pub(crate) fn pending(lazy: Arc<Lazy>, seed: Py<PyAny>) -> Self {
        Self::with_storage(Storage::Pending(lazy), seed, true)
    }

    fn with_storage(storage: Storage, seed: Py<PyAny>, private: bool) -> Self {
        DualArrayBase {
            storage,
            s: seed,
            layout: OnceLock::new(),
            private: AtomicBool::new(private),
            leaf: AtomicBool::new(false),
            pins: AtomicUsize::new(0),
            base: OnceLock::new(),
        }
    }

    /// The primal and tangent arrays, evaluated first if pending, for reads in this crate that
    /// hand neither array to Python code.
    pub(crate) fn parts(&self, py: Python<'_>) -> PyResult<(&Py<PyAny>, &Py<PyAny>)> {
        match &self.storage {
            Storage::Ready(p, t) => Ok((p, t)),
            Storage::Unit(p, t) => {
                if t.get().is_none() {
                    let shape = p.bind(py).cast::<numpy::PyUntypedArray>()?.shape().to_vec();
                    let mut ones = Fresh::new(py, std::iter::once(1).chain(shape).collect());
                    ones.data().fill(1.0);
                    drop(t.set(ones.array().into_any().unbind()));
                }
                let t = t.get().ok_or_else(|| {
                    pyo3::exceptions::PyRuntimeError::new_err("duals: lost unit tangent")
                })?;
                Ok((p, t))
            }
            Storage::Pending(lazy) => lazy.force(py),
            Storage::Banded(b) => {
                if b.dense.get().is_none() {
                    let dense = match self.base.get() {
                        // A view: the columns of its base's dense tangent (NumPy's view).
                        Some(base) => {
                            let (_, t) = base.get().parts(py)?;
                            let cols =
                                PySlice::new(py, b.start as isize, (b.start + b.len) as isize, 1);
                            t.bind(py).get_item((PySlice::full(py), cols))?.unbind()
                        }
                        None => {
                            let k = self.layout(py)?.rows();
                            let mut t = Fresh::new(py, vec![k, b.len]);
                            b.current().dense_into(k, t.data());
                            t.array().into_any().unbind()
                        }
                    };
                    drop(b.dense.set(dense));
                }
                let t = b.dense.get().ok_or_else(|| {
                    pyo3::exceptions::PyRuntimeError::new_err("duals: lost dense tangent")
                })?;
                Ok((&b.p, t))
            }
        }
    }

    /// The primal and diagonals of a banded array whose diagonals are still valid: its tangent
    /// never made dense, nor its base's (a view's diagonals are its base's, which a write
    /// through the base may have changed; see `crate::band`).
    pub(crate) fn bands(&self) -> Option<(&Py<PyAny>, Arc<band::Bands>)> {
        let Storage::Banded(b) = &self.storage else {
            return None;
        };
        if b.dense.get().is_some() {
            return None;
        }
        if let Some(base) = self.base.get() {
            // A view: valid while its base's diagonals are, and not written since it was made.
            let base = base.get();
            if base.bands().is_none() || base.band_writes() != Some(b.seen) {
                return None;
            }
        }
        Some((&b.p, b.current()))
    }

    /// The number of banded writes into this array (`crate::band::assign`), if it is banded.
    pub(crate) fn band_writes(&self) -> Option<u64> {
        match &self.storage {
            Storage::Banded(b) => Some(b.writes.load(Ordering::Acquire)),
            _ => None,
        }
    }

    /// The storage of a banded array that is no view (its own memory) and still banded: what a
    /// banded write may change.
    pub(crate) fn band_root(&self) -> Option<&band::BandStorage> {
        match &self.storage {
            Storage::Banded(b) if self.base.get().is_none() && b.dense.get().is_none() => Some(b),
            _ => None,
        }
    }

    /// The base of a view of this array (its own base if it is a view, else `slf`), and where
    /// this array starts in it.
    pub(crate) fn view_of(&self, slf: &Bound<'_, Self>) -> (Py<DualArrayBase>, usize) {
        let start = match &self.storage {
            Storage::Banded(b) => b.start,
            _ => 0,
        };
        match self.base.get() {
            Some(b) => (b.clone_ref(slf.py()), start),
            None => (slf.clone().unbind(), 0),
        }
    }

    /// The pending expression, if the arrays are not there yet.
    pub(crate) fn lazy(&self) -> Option<&Arc<Lazy>> {
        match &self.storage {
            Storage::Pending(lazy) if !lazy.is_done() => Some(lazy),
            _ => None,
        }
    }

    /// The arrays, about to be handed to Python code (`escape`) or written here: from now on
    /// no pending expression may read them later, and those that may are evaluated first (all
    /// pending expressions: which ones read these arrays is not recorded), after any evaluation
    /// still reading them on another thread has finished.
    ///
    /// A view's memory is its base's: handing it out or writing it is handing out or writing
    /// the base's.
    fn expose(&self, py: Python<'_>, escape: bool) -> PyResult<(&Py<PyAny>, &Py<PyAny>)> {
        let parts = self.parts(py)?;
        let base = self.base.get().map(|b| b.get());
        let leaf = self.leaf.load(Ordering::Acquire)
            || base.is_some_and(|b| b.leaf.load(Ordering::Acquire));
        if escape || leaf {
            self.private.store(false, Ordering::Release);
            if let Some(b) = base {
                b.private.store(false, Ordering::Release);
            }
        }
        if leaf {
            lazy::flush(py)?;
        }
        lazy::wait_unpinned(py, &self.pins);
        if let Some(b) = base {
            lazy::wait_unpinned(py, &b.pins);
        }
        Ok(parts)
    }

    /// Whether the arrays may be an input of a pending expression (see `private`; a view's
    /// base must be private too).
    pub(crate) fn is_private(&self) -> bool {
        self.private.load(Ordering::Acquire) && self.base.get().is_none_or(|b| b.get().is_private())
    }

    /// Records that a pending expression reads the arrays (and so its base's, for a view).
    pub(crate) fn mark_leaf(&self) {
        self.leaf.store(true, Ordering::Release);
        if let Some(b) = self.base.get() {
            b.get().leaf.store(true, Ordering::Release);
        }
    }

    /// The counters of evaluations reading the arrays with the thread detached: its own, and
    /// its base's for a view (an evaluation reading a view pins both).
    pub(crate) fn pins(&self) -> impl Iterator<Item = &AtomicUsize> {
        std::iter::once(&self.pins).chain(self.base.get().map(|b| &b.get().pins))
    }

    /// The shape `S`, without evaluating a pending array.
    pub(crate) fn shape_vec(&self, py: Python<'_>) -> Option<Vec<usize>> {
        match &self.storage {
            Storage::Pending(lazy) => Some(lazy.shape().to_vec()),
            Storage::Ready(p, _)
            | Storage::Unit(p, _)
            | Storage::Banded(band::BandStorage { p, .. }) => p
                .bind(py)
                .cast::<numpy::PyUntypedArray>()
                .ok()
                .map(|a| a.shape().to_vec()),
        }
    }

    /// The primal, if the tangent is a row of ones not made yet (read as 1 by a pending
    /// expression).
    pub(crate) fn unit_tangent(&self) -> Option<&Py<PyAny>> {
        match &self.storage {
            Storage::Unit(p, t) if t.get().is_none() => Some(p),
            _ => None,
        }
    }

    /// The seed.
    pub(crate) fn seed(&self) -> &Py<PyAny> {
        &self.s
    }

    pub(crate) fn layout(&self, py: Python<'_>) -> PyResult<Layout> {
        if let Some(layout) = self.layout.get() {
            return Ok(*layout);
        }
        let layout = Layout::read(self.s.bind(py))?;
        let _ = self.layout.set(layout);
        Ok(layout)
    }
}

#[pymethods]
impl DualArrayBase {
    /// ``_DualArrayBase.__new__(cls, primal, tangent, seed)``: no checks (``duals._core._make``
    /// and ``DualArray.__new__`` check).
    #[new]
    fn py_new(py: Python<'_>, primal: Py<PyAny>, tangent: Py<PyAny>, seed: Py<PyAny>) -> Self {
        if let Ok(handle) = primal.bind(py).cast::<lazy::PendingHandle>() {
            return Self::pending(handle.get().0.clone(), seed);
        }
        let storage = if let Ok(handle) = primal.bind(py).cast::<BandHandle>() {
            let BandHandle(p, bands, start, seen) = handle.get();
            Storage::Banded(band::BandStorage::new(
                p.clone_ref(py),
                bands.clone(),
                *start,
                *seen,
            ))
        } else if let Ok(handle) = primal.bind(py).cast::<UnitHandle>() {
            Storage::Unit(handle.get().0.clone_ref(py), OnceLock::new())
        } else {
            Storage::Ready(primal, tangent)
        };
        Self::with_storage(storage, seed, false)
    }

    /// The primal ndarray, shape ``S`` (a pending array is evaluated first; see
    /// ``crate::lazy``).
    #[getter]
    fn _p(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.expose(py, true)?.0.clone_ref(py))
    }

    /// The tangent ndarray, shape ``(K, *S)`` (a pending array is evaluated first).
    #[getter]
    fn _t(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.expose(py, true)?.1.clone_ref(py))
    }

    /// ``_own()``: the drivers' promise that nothing else holds this array's primal and tangent
    /// arrays (new copies made for one evaluation), so that pending expressions may read them.
    fn _own(&self) {
        if matches!(
            self.storage,
            Storage::Ready(..) | Storage::Unit(..) | Storage::Banded(..)
        ) {
            self.private.store(true, Ordering::Release);
        }
    }

    /// ``_tangent_only()``: the tangent ``(1, *S)`` of a pending array evaluated without its
    /// primal, which nothing then needs (``derivative``'s output), the array staying pending; the
    /// tangent ``_t`` of any other array.
    fn _tangent_only(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(lazy) = self.lazy() {
            if let Some(t) = lazy.tangent_only(py)? {
                return Ok(t);
            }
        }
        self._t(py)
    }

    /// Whether the array is pending: its elementwise expression not evaluated yet (private, for
    /// tests).
    #[getter]
    fn _pending(&self) -> bool {
        self.lazy().is_some()
    }

    /// Whether the array's tangent is held as diagonals (`crate::band`; private, for tests).
    #[getter]
    fn _banded(&self) -> bool {
        self.bands().is_some()
    }

    /// The shape ``S`` (a pending array is not evaluated).
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        match self.shape_vec(py) {
            Some(shape) => PyTuple::new(py, shape),
            None => Ok(self.parts(py)?.0.bind(py).getattr("shape")?.cast_into()?),
        }
    }

    /// ``len(shape)``.
    #[getter]
    fn ndim(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.shape(py)?.len())
    }

    /// The number of elements.
    #[getter]
    fn size(&self, py: Python<'_>) -> PyResult<usize> {
        let mut n = 1usize;
        for d in self.shape(py)?.iter() {
            n = n.saturating_mul(d.extract::<usize>()?);
        }
        Ok(n)
    }

    /// The ``Seed``.
    #[getter]
    fn _s(&self, py: Python<'_>) -> Py<PyAny> {
        self.s.clone_ref(py)
    }

    fn __getitem__(slf: &Bound<'_, Self>, index: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if index.is_exact_instance_of::<PySlice>() {
            if let Some(view) = slice_view(slf, index)? {
                return Ok(view.unbind());
            }
        }
        if index.is_exact_instance_of::<PyInt>() {
            let this = slf.get();
            let layout = this.layout(py)?;
            // A banded array: the element from its diagonals, the array staying banded
            if let Some((p, bands)) = this.bands() {
                if let Some((re, eps)) = band::element(p.bind(py), &bands, index, layout.rows())? {
                    let d = Dual {
                        x: DualDyn::new(re, &eps),
                        layout,
                        seed: this.s.clone_ref(py),
                    };
                    return Ok(Bound::new(py, d)?.into_any().unbind());
                }
            }
            let (p, t) = this.parts(py)?;
            if let Some(d) = dual_at(p.bind(py), t.bind(py), index, this.s.bind(py), layout)? {
                return Ok(d.unbind());
            }
        }
        Ok(slf
            .call_method1(intern!(py, "_getitem"), (index,))?
            .unbind())
    }

    fn __setitem__(
        slf: &Bound<'_, Self>,
        index: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        if band::assign(slf, index, value)? {
            return Ok(());
        }
        if index.is_exact_instance_of::<PyInt>() {
            let this = slf.get();
            let layout = this.layout(py)?;
            let (p, t) = this.expose(py, false)?;
            if dual_put(
                p.bind(py),
                t.bind(py),
                index,
                value,
                this.s.bind(py),
                layout,
            )? {
                return Ok(());
            }
        }
        slf.call_method1(intern!(py, "_setitem"), (index, value))?;
        Ok(())
    }

    // ----- the number protocol: natively for the common cases, else `duals._core` -----

    fn __add__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        array_op(slf.py(), slf.as_any(), other, Op::Add)
    }

    fn __radd__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        array_op(slf.py(), other, slf.as_any(), Op::Add)
    }

    fn __sub__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        array_op(slf.py(), slf.as_any(), other, Op::Sub)
    }

    fn __rsub__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        array_op(slf.py(), other, slf.as_any(), Op::Sub)
    }

    fn __mul__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        array_op(slf.py(), slf.as_any(), other, Op::Mul)
    }

    fn __rmul__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        array_op(slf.py(), other, slf.as_any(), Op::Mul)
    }

    fn __truediv__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        array_op(slf.py(), slf.as_any(), other, Op::Div)
    }

    fn __rtruediv__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        array_op(slf.py(), other, slf.as_any(), Op::Div)
    }

    /// ``x ** 2`` natively as ``x * x`` (what ``duals._core.power`` computes: the product
    /// rule), and ``x ** c`` of a banded array (its rule, ``powi``/``powf``); every other power
    /// in Python (``_DualBase.__pow__``).
    fn __pow__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        modulo: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if modulo.is_none_or(|m| m.is_none()) {
            match lazy::number(other) {
                Some(2.0) => return array_op(py, slf.as_any(), slf.as_any(), Op::Mul),
                // A banded array (`crate::band`): the rule `duals._core.power` takes
                Some(e) if e.is_finite() => {
                    if let Some(r) = band::unary(py, slf.as_any(), power_rule(e))? {
                        return Ok(r.unbind());
                    }
                }
                _ => {}
            }
        }
        Ok(core(py)?
            .getattr(intern!(py, "_DualBase"))?
            .getattr(intern!(py, "__pow__"))?
            .call1((slf, other, modulo))?
            .unbind())
    }

    /// ``other ** x``: ``_DualBase.__rpow__`` (defined here too, as the slot of ``__pow__``
    /// would otherwise give the reflected form a native ``NotImplemented``).
    fn __rpow__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        _modulo: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        Ok(core(py)?
            .getattr(intern!(py, "_DualBase"))?
            .getattr(intern!(py, "__rpow__"))?
            .call1((slf, other))?
            .unbind())
    }

    fn __neg__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if let Some(r) = array_neg(py, slf.as_any())? {
            return Ok(r.unbind());
        }
        // The Python implementation (`_DualBase.__neg__`, which this method shadows).
        Ok(core(py)?
            .getattr(intern!(py, "_DualBase"))?
            .getattr(intern!(py, "__neg__"))?
            .call1((slf,))?
            .unbind())
    }

    /// ``np.add``, ``np.subtract``, ``np.multiply``, ``np.divide`` and ``np.negative`` called
    /// plainly (no keywords) run as the operators; everything else goes to
    /// ``duals._ufuncs.array_ufunc``.
    #[pyo3(signature = (ufunc, method, *inputs, **kwargs))]
    fn __array_ufunc__<'py>(
        slf: &Bound<'py, Self>,
        ufunc: &Bound<'py, PyAny>,
        method: &Bound<'py, PyAny>,
        inputs: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        ufunc_protocol(slf.py(), ufunc, method, inputs, kwargs, |py| {
            array_ufunc(py, ufunc, inputs)
        })
    }
}

// ------------------------------------------------------------------------------------------------
// DualArray arithmetic: native fast paths
// ------------------------------------------------------------------------------------------------

/// `duals._core.DualArray` (the class of results) and the `tp_new` slot of `_DualArrayBase`
/// (what `_DualArrayBase.__new__` calls).
static NEW_DUAL_ARRAY: OnceLock<(Py<PyType>, ffi::newfunc)> = OnceLock::new();
/// Result elements (primal and tangents) above which the arithmetic kernels run with the GIL
/// released, on private copies of the operands. These kernels are memory-bound: the copies cost
/// as much as the kernel or more (measured: `x + y`, 512 elements, 64 tangents, 7.8 us in place,
/// 16 us copied and detached), so the GIL is kept far longer than for the unary kernels
/// (`crate::DETACH_ABOVE`): up to milliseconds of work.
const DETACH_ARITHMETIC_ABOVE: usize = 1 << 22;

/// `numpy.add`, `subtract`, `multiply`, `divide`, `negative`: the ufuncs with fast paths.
static ARITHMETIC_UFUNCS: OnceLock<[Py<PyAny>; 5]> = OnceLock::new();

/// The elements of a float64 array in C order: the array's own memory if it is C-contiguous,
/// else a copy (a strided view, such as `x[:, :n]` of a tangent); `None` for an empty or
/// misaligned array.
///
/// Read without the numpy crate's borrow flags (as `tape.rs` reads its inputs): callers use the
/// slice with the thread attached and no Python code running, or copy it before detaching.
pub(crate) fn elements<'a>(a: &'a Bound<'_, PyArrayDyn<f64>>) -> Option<Cow<'a, [f64]>> {
    if a.len() == 0 || !a.is_aligned() {
        return None;
    }
    // Both reads below: the array is kept alive by `a`, aligned and not empty (checked above).
    // Its memory is only read with the GIL held while no Python code runs (or copied before the
    // GIL is released), so neither another thread nor Python code writes it meanwhile, and this
    // module holds no mutable view of an array Python code can see (results are written before
    // they are handed to Python). The borrow flags, skipped here for speed, coordinate Rust views
    // only.
    if a.is_c_contiguous() {
        // SAFETY: as above; `as_slice` checks contiguity.
        return unsafe { a.as_slice() }.ok().map(Cow::Borrowed);
    }
    // SAFETY: as above; the view follows the array's strides (negative ones included).
    let view = unsafe { a.as_array() };
    let mut out = Vec::with_capacity(view.len());
    for row in view.rows() {
        match row.as_slice() {
            Some(s) => out.extend_from_slice(s),
            None => out.extend(row.iter().copied()),
        }
    }
    Some(Cow::Owned(out))
}

/// The tangent `(K, *S)` of `n = prod(S)` elements per row as `(elements, row stride)`: the
/// array's own memory if each row `t[j]` is C-contiguous and the rows are `stride >= n` apart in
/// increasing order (a view such as `x[:m]` of a longer 1-d array: its rows are the parent's,
/// cut short), with `stride = n` if the array is C-contiguous; else a C-ordered copy as
/// `elements` makes it. `None` for an empty or misaligned array.
pub(crate) fn tangent_rows<'a>(
    t: &'a Bound<'_, PyArrayDyn<f64>>,
) -> Option<(Cow<'a, [f64]>, usize)> {
    let (shape, strides) = (t.shape(), t.strides());
    let k = *shape.first()?;
    let n: usize = shape[1..].iter().product();
    if k > 1 && n > 0 && t.is_aligned() && !t.is_c_contiguous() {
        // Each row C-contiguous: the strides of the trailing axes of length > 1 are those of a
        // C-ordered block of `n` elements.
        let mut expected = size_of::<f64>() as isize;
        let mut row_contiguous = true;
        for (&len, &stride) in shape[1..].iter().zip(&strides[1..]).rev() {
            if len != 1 && stride != expected {
                row_contiguous = false;
                break;
            }
            expected = expected.saturating_mul(len as isize);
        }
        let step = strides[0] / size_of::<f64>() as isize;
        if row_contiguous && strides[0] % size_of::<f64>() as isize == 0 && step >= n as isize {
            let stride = step as usize;
            // SAFETY: as in `elements`: the array is alive (borrowed by `t`), aligned and only
            // read with the thread attached while no Python code runs. Its `k` rows of `n`
            // elements start `stride` elements apart at its data pointer, so the span from the
            // first element to the last one, `(k - 1) * stride + n` elements, lies within the one
            // allocation the array views; the elements between the rows belong to that
            // allocation too (they are read by no kernel: `Operand::Rows` reads the rows only).
            let span = unsafe { std::slice::from_raw_parts(t.data(), (k - 1) * stride + n) };
            return Some((Cow::Borrowed(span), stride));
        }
    }
    elements(t).map(|e| (e, n))
}

/// ``x[a:b:c]`` of a first-order DualArray natively: views of the primal and tangent as the
/// Python implementation makes them (``_p[index]``, ``_t[:, index]``), without handing the arrays
/// to Python code, so that a private array's views stay private (`DualArrayBase::base`): the
/// halves ``y[:n]``, ``y[n:]`` of a driver's input may be read by pending expressions. `None`
/// for other orders (the Python implementation).
fn slice_view<'py>(
    slf: &Bound<'py, DualArrayBase>,
    index: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = slf.py();
    let this = slf.get();
    if !this.layout(py)?.first_order() {
        return Ok(None);
    }
    if let Some(view) = band::slice(slf, index)? {
        return Ok(Some(view));
    }
    let (p, t) = this.parts(py)?;
    let (p, t) = (p.bind(py), t.bind(py));
    if p.cast_exact::<PyArrayDyn<f64>>().is_err() || t.cast_exact::<PyArrayDyn<f64>>().is_err() {
        return Ok(None);
    }
    let pv = p.get_item(index)?;
    let full = PySlice::full(py);
    let tv = t.get_item((full, index))?;
    let view = instantiate(py, pv, tv, &this.s)?;
    {
        let v = view.cast::<DualArrayBase>()?.get();
        let base = match this.base.get() {
            Some(b) => b.clone_ref(py),
            None => slf.clone().unbind(),
        };
        v.private.store(true, Ordering::Release);
        drop(v.base.set(base));
    }
    Ok(Some(view))
}

/// One operand of a DualArray fast path.
pub(crate) enum Side<'a> {
    /// A DualArray of a first- or second-order seed with float64 primal (shape `S`, not 0-d) and tangent
    /// `(K, *S)`: the primal in C order, the tangent's rows `stride` elements apart, each in
    /// C order (`tangent_rows`).
    Array {
        p: Cow<'a, [f64]>,
        t: Cow<'a, [f64]>,
        stride: usize,
        shape: &'a [usize],
        seed: &'a Py<PyAny>,
        layout: Layout,
    },
    /// A Dual of a first-order seed: broadcast.
    Scalar(&'a Dual),
    /// A float64 ndarray (exactly `numpy.ndarray`), not 0-d, in C order: no tangent.
    Const {
        p: Cow<'a, [f64]>,
        shape: &'a [usize],
    },
    /// A Python float or int, a NumPy float64 scalar or a 0-d float64 ndarray: broadcast.
    ScalarConst(f64),
}

impl<'a> Side<'a> {
    /// The operand as a fast path takes it; `None` for anything else (the Python path).
    /// DualArrays of second-order seeds are taken too: their arithmetic is `crate::hyper`'s,
    /// their negation `array_neg`'s (linear, any order).
    pub(crate) fn of(x: &'a Bound<'_, PyAny>) -> PyResult<Option<Self>> {
        let py = x.py();
        if let Ok(a) = x.cast::<DualArrayBase>() {
            let a = a.get();
            let layout = a.layout(py)?;
            // Order 0 (traced arrays, object tangents) takes the Python path.
            if !(layout.first_order() || layout.second_order().is_some()) {
                return Ok(None);
            }
            let (p, t) = a.parts(py)?;
            let (Ok(p), Ok(t)) = (
                p.bind(py).cast_exact::<PyArrayDyn<f64>>(),
                t.bind(py).cast_exact::<PyArrayDyn<f64>>(),
            ) else {
                return Ok(None);
            };
            let (shape, tshape) = (p.shape(), t.shape());
            if shape.is_empty() || tshape.first() != Some(&layout.rows()) || tshape[1..] != *shape {
                return Ok(None);
            }
            return Ok(match (elements(p), tangent_rows(t)) {
                (Some(p), Some((t, stride))) => Some(Side::Array {
                    p,
                    t,
                    stride,
                    shape,
                    seed: &a.s,
                    layout,
                }),
                _ => None,
            });
        }
        Ok(match arg(x) {
            Arg::Dual(d) if d.layout.first_order() => Some(Side::Scalar(d)),
            Arg::Dual(_) => None,
            Arg::Const(c) => Some(Side::ScalarConst(c)),
            Arg::Other => match x.cast_exact::<PyArrayDyn<f64>>() {
                Ok(a) if a.ndim() == 0 => match elements(a).as_deref() {
                    Some(&[c]) => Some(Side::ScalarConst(c)),
                    _ => None,
                },
                Ok(a) => elements(a).map(|p| Side::Const {
                    p,
                    shape: a.shape(),
                }),
                Err(_) => None,
            },
        })
    }

    /// The shape, seed and layout of the result of `a op b`: the array operands' shape, the
    /// first dual operand's seed (as `_core._seed_of`); `None` unless every array has that
    /// shape and every dual operand that seed (the same object or layout).
    pub(crate) fn common<'s>(
        a: &Side<'s>,
        b: &Side<'s>,
    ) -> Option<(&'s [usize], &'s Py<PyAny>, Layout)> {
        let shape = a.shape().or(b.shape())?;
        let (seed, layout) = a.seed().or(b.seed())?;
        let same_seed = |s: &Side<'_>| s.seed().is_none_or(|(s, l)| s.is(seed) || l == layout);
        let same_shape = |s: &Side<'_>| s.shape().is_none_or(|s| s == shape);
        (same_seed(a) && same_seed(b) && same_shape(a) && same_shape(b))
            .then_some((shape, seed, layout))
    }

    /// The seed and layout of an operand with tangents.
    pub(crate) fn seed(&self) -> Option<(&'a Py<PyAny>, Layout)> {
        match *self {
            Side::Array { seed, layout, .. } => Some((seed, layout)),
            Side::Scalar(d) => Some((&d.seed, d.layout)),
            Side::Const { .. } | Side::ScalarConst(_) => None,
        }
    }

    /// The shape of an array operand.
    pub(crate) fn shape(&self) -> Option<&'a [usize]> {
        match *self {
            Side::Array { shape, .. } | Side::Const { shape, .. } => Some(shape),
            Side::Scalar(_) | Side::ScalarConst(_) => None,
        }
    }

    /// The number of elements of an array operand (0 for a scalar).
    fn len(&self) -> usize {
        match self {
            Side::Array { p, .. } | Side::Const { p, .. } => p.len(),
            Side::Scalar(_) | Side::ScalarConst(_) => 0,
        }
    }

    /// The kernel operand, reading NumPy memory in place.
    pub(crate) fn operand(&self) -> Operand<'_> {
        match self {
            Side::Array { p, t, stride, .. } => {
                if *stride == self.len() {
                    Operand::Array {
                        primal: p,
                        tangent: t,
                    }
                } else {
                    Operand::Rows {
                        primal: p,
                        tangent: t,
                        stride: *stride,
                    }
                }
            }
            Side::Scalar(d) => Operand::Scalar {
                primal: d.x.re(),
                tangent: d.x.eps(),
            },
            Side::Const { p, .. } => Operand::ArrayConst(p),
            Side::ScalarConst(c) => Operand::ScalarConst(*c),
        }
    }

    /// The kernel operand on private memory only, for a kernel run with the GIL released: NumPy
    /// memory is copied into `scratch` (two buffers), copies made already are used as they are.
    fn operand_copied<'s>(&'s self, scratch: &'s mut [Vec<f64>]) -> Operand<'s> {
        let [p_buf, t_buf] = scratch else {
            return self.operand();
        };
        let private = |data: &'s Cow<'a, [f64]>, buf: &'s mut Vec<f64>| -> &'s [f64] {
            match data {
                Cow::Borrowed(s) => {
                    buf.clear();
                    buf.extend_from_slice(s);
                    buf
                }
                Cow::Owned(v) => v,
            }
        };
        match self {
            Side::Array { p, t, stride, .. } if *stride != self.len() => {
                // the rows only, copied together
                let n = self.len();
                t_buf.clear();
                for row in t.chunks(*stride) {
                    t_buf.extend_from_slice(&row[..n]);
                }
                let t_buf: &'s [f64] = t_buf;
                Operand::Array {
                    primal: private(p, p_buf),
                    tangent: t_buf,
                }
            }
            Side::Array { p, t, .. } => Operand::Array {
                primal: private(p, p_buf),
                tangent: private(t, t_buf),
            },
            Side::Const { p, .. } => Operand::ArrayConst(private(p, p_buf)),
            // Rust memory of a frozen Dual, or a number: nothing Python code can write.
            Side::Scalar(_) | Side::ScalarConst(_) => self.operand(),
        }
    }
}

thread_local! {
    /// Per-thread scratch for private copies of the operands of a kernel run with the GIL
    /// released (primal and tangent of each side), reused across calls.
    static BINARY_SCRATCH: std::cell::RefCell<[Vec<f64>; 4]> =
        const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new(), Vec::new()]) };
}

/// A new, uninitialized C-ordered float64 array, written here before it is handed to Python.
pub(crate) struct Fresh<'py>(Bound<'py, PyArrayDyn<f64>>);

impl<'py> Fresh<'py> {
    pub(crate) fn new(py: Python<'py>, shape: Vec<usize>) -> Self {
        // SAFETY: every caller writes every element (`data`) before the array is handed to
        // Python (`array`).
        Fresh(unsafe { PyArrayDyn::<f64>::new(py, shape, false) })
    }

    /// The elements, C order, to write.
    pub(crate) fn data(&mut self) -> &mut [f64] {
        // SAFETY: the array is new and C-contiguous (`new`) and not yet handed to Python or
        // viewed by other Rust code (the only access is through `&mut self`), so this is the only
        // reference to its memory.
        unsafe { self.0.as_slice_mut() }.unwrap_or(&mut [])
    }

    pub(crate) fn array(self) -> Bound<'py, PyArrayDyn<f64>> {
        self.0
    }
}

/// A new `duals.DualArray` of primal `p`, tangent `t` and `seed`, as `_core._make` makes it
/// (`_core._new_array(DualArray, p, t, seed)`, i.e. `_DualArrayBase.__new__`, no checks).
pub(crate) fn new_dual_array<'py>(
    py: Python<'py>,
    p: Bound<'py, PyArrayDyn<f64>>,
    t: Bound<'py, PyArrayDyn<f64>>,
    seed: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let obj = instantiate(py, p.into_any(), t.into_any(), seed)?;
    // New arrays, written here and held by nothing else: private (see `DualArrayBase`).
    obj.cast::<DualArrayBase>()?
        .get()
        .private
        .store(true, Ordering::Release);
    Ok(obj)
}

/// A new private `duals.DualArray` of primal `p` (1-d) and the banded tangent `bands`
/// (`crate::band`); for a view, its base and where it starts there.
pub(crate) fn new_banded<'py>(
    py: Python<'py>,
    p: Bound<'py, PyArrayDyn<f64>>,
    bands: band::Bands,
    seed: &Py<PyAny>,
    view: Option<(Py<DualArrayBase>, usize)>,
) -> PyResult<Bound<'py, PyAny>> {
    let start = view.as_ref().map_or(0, |v| v.1);
    let seen = view
        .as_ref()
        .and_then(|v| v.0.get().band_writes())
        .unwrap_or(0);
    let handle = Bound::new(
        py,
        BandHandle(p.into_any().unbind(), Arc::new(bands), start, seen),
    )?;
    let obj = instantiate(py, handle.into_any(), py.None().into_bound(py), seed)?;
    {
        let a = obj.cast::<DualArrayBase>()?.get();
        // New arrays, or a view of a private array (as `slice_view`): private.
        a.private.store(true, Ordering::Release);
        if let Some((base, _)) = view {
            drop(a.base.set(base));
        }
    }
    Ok(obj)
}

/// A new pending `duals.DualArray`: `lazy` gives its arrays when they are needed.
pub(crate) fn new_pending<'py>(
    py: Python<'py>,
    lazy: Arc<Lazy>,
    seed: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let handle = Bound::new(py, lazy::PendingHandle(lazy))?;
    instantiate(py, handle.into_any(), py.None().into_bound(py), seed)
}

/// `_DualArrayBase.__new__(DualArray, p, t, seed)`.
fn instantiate<'py>(
    py: Python<'py>,
    p: Bound<'py, PyAny>,
    t: Bound<'py, PyAny>,
    seed: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let (cls, tp_new) = cached(&NEW_DUAL_ARRAY, || {
        let cls = core(py)?
            .getattr(intern!(py, "DualArray"))?
            .cast_into::<PyType>()?;
        if !cls.is_subclass_of::<DualArrayBase>()? {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "duals._core.DualArray must derive from _DualArrayBase",
            ));
        }
        let base = py.get_type::<DualArrayBase>();
        // SAFETY: `base` is a valid (heap) type object; the result is its slot or NULL.
        let slot = unsafe { ffi::PyType_GetSlot(base.as_type_ptr(), ffi::Py_tp_new) };
        if slot.is_null() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "_DualArrayBase has no tp_new",
            ));
        }
        // SAFETY: the `Py_tp_new` slot of a type holds a `newfunc`.
        let tp_new = unsafe { std::mem::transmute::<*mut std::ffi::c_void, ffi::newfunc>(slot) };
        Ok((cls.unbind(), tp_new))
    })?;
    let args = PyTuple::new(py, [p, t, seed.bind(py).clone()])?;
    // SAFETY: `_DualArrayBase.__new__(DualArray, p, t, seed)` without the method wrapper: the
    // base's `tp_new` called with a subtype of it (checked above), a tuple of arguments and no
    // keywords; it returns a new reference, or NULL with an exception set.
    unsafe {
        let obj = (*tp_new)(
            cls.bind(py).as_type_ptr(),
            args.as_ptr(),
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

/// `a op b` with a DualArray operand natively: both operands of one first-order seed (or one
/// a constant), arrays of one shape (no broadcasting but of scalars; see `Side`); `None` where
/// the Python implementation must run (including mixed seeds, for its error).
///
/// The result is that of the Python implementation: bit for bit for sums, differences, and
/// products and quotients with a constant operand; a product or quotient of two dual operands may
/// differ in the last bits (the kernels fuse `ta * b + a * tb` and `ta - f * tb`). Values that
/// are not all finite are left to the Python implementation (`None`), so NumPy's error state
/// applies to values as there; tangents are computed quietly (IEEE results, no warnings), also
/// under `np.errstate(invalid="raise")`, where the Python product rule would raise.
///
/// Operands of a second-order seed (after the banded and pending paths, which take first-order
/// ones only) go to `crate::hyper`: bit-identical to the Python implementation, tangents that are
/// not finite left to it too.
fn array_binary<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    op: Op,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if !(a.is_instance_of::<DualArrayBase>() || b.is_instance_of::<DualArrayBase>()) {
        return Ok(None);
    }
    if let Some(r) = band::binary(py, a, b, op)? {
        return Ok(Some(r));
    }
    if let Some(r) = lazy::binary(py, a, b, op)? {
        return Ok(Some(r));
    }
    let (Some(sa), Some(sb)) = (Side::of(a)?, Side::of(b)?) else {
        return Ok(None);
    };
    if [&sa, &sb]
        .iter()
        .any(|s| s.seed().is_some_and(|(_, l)| l.second_order().is_some()))
    {
        return hyper::binary(py, &sa, &sb, op);
    }
    array_kernel(py, &sa, &sb, op)
}

/// `a op b` of two operands of a fast path with the engine's kernel, if they have one shape and
/// one seed and the values are all finite; `None` otherwise.
fn array_kernel<'py>(
    py: Python<'py>,
    sa: &Side<'_>,
    sb: &Side<'_>,
    op: Op,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some((shape, seed, layout)) = Side::common(sa, sb) else {
        return Ok(None);
    };
    let k = layout.rows();
    let tshape: Vec<usize> = std::iter::once(k).chain(shape.iter().copied()).collect();
    let (mut out_p, mut out_t) = (Fresh::new(py, shape.to_vec()), Fresh::new(py, tshape));
    {
        let (op_, ot) = (out_p.data(), out_t.data());
        if op_.len() * (k + 1) > DETACH_ARITHMETIC_ABOVE {
            // The GIL is released: the kernel reads private copies (another thread may write the
            // operands' arrays meanwhile) and writes the new, not yet shared, results.
            BINARY_SCRATCH.with_borrow_mut(|scratch| {
                let (sa_buf, sb_buf) = scratch.split_at_mut(2);
                let (x, y) = (sa.operand_copied(sa_buf), sb.operand_copied(sb_buf));
                py.detach(|| arithmetic(op, x, y, k, op_, ot))
            })
        } else if k >= 2 && op_.len() * k >= crate::par::SPLIT_ABOVE {
            split_arithmetic(op, sa.operand(), sb.operand(), k, op_, ot)
        } else {
            arithmetic(op, sa.operand(), sb.operand(), k, op_, ot)
        }
        .map_err(errors::kernel)?;
        // A value that is not finite (division by zero, overflow, an invalid operation, or an
        // operand already infinite or NaN): the Python implementation computes it again under the
        // caller's NumPy error state (`np.errstate(divide="raise")` raises, "warn" warns).
        if !op_.iter().all(|v| v.is_finite()) {
            return Ok(None);
        }
    }
    new_dual_array(py, out_p.array(), out_t.array(), seed).map(Some)
}

/// `arithmetic` in two blocks of tangent rows, the second on the helper thread (`crate::par`):
/// the same values (each block is the kernel on those rows; the second block's primal goes to a
/// scratch buffer).
fn split_arithmetic(
    op: Op,
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    let (n, h) = (out_p.len(), k / 2);
    let (lo, hi) = out_t.split_at_mut(h * n);
    let (mut r_lo, mut r_hi) = (Ok(()), Ok(()));
    let mut scratch = vec![0.0; n];
    crate::par::both(
        || r_lo = arithmetic(op, a.row_block(0, h, n), b.row_block(0, h, n), h, out_p, lo),
        || {
            r_hi = arithmetic(
                op,
                a.row_block(h, k, n),
                b.row_block(h, k, n),
                k - h,
                &mut scratch,
                hi,
            )
        },
    );
    r_lo.and(r_hi)
}

/// `a op b` with the engine's kernel of `op` (`out_p`: `n` values, `out_t`: `k * n` tangents).
///
/// Where the tangents do not depend on the values (sums and differences of arrays and constants,
/// products with and quotients by a scalar constant), the `k * n` tangents are computed as one
/// stream (the kernel run on them as values, no tangents) rather than `k` rows of `n`: the same
/// formula per element, so the same bits, without a per-row cost that dominates for short rows.
pub(crate) fn arithmetic(
    op: Op,
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    use Operand::{Array, ArrayConst, ScalarConst};
    let kernel = match op {
        Op::Add => kernels::add,
        Op::Sub => kernels::sub,
        Op::Mul => kernels::mul,
        Op::Div => kernels::div,
    };
    let constant = |o: &Operand<'_>| matches!(o, ArrayConst(_) | ScalarConst(_));
    let copy = |out: &mut [f64], t: &[f64]| -> Result<(), KernelError> {
        out.copy_from_slice(t); // lengths checked by the callers' guards
        Ok(())
    };
    let n_t = out_t.len();
    let tangents = match (op, a, b) {
        (Op::Add | Op::Sub, Array { tangent: ta, .. }, Array { tangent: tb, .. }) => {
            Some(kernel(ArrayConst(ta), ArrayConst(tb), 0, out_t, &mut []))
        }
        // `x ± c`: the tangents of x (`1 * t`); `c + x` likewise; `c - x`: `-1 * t`
        (Op::Add | Op::Sub, Array { tangent: t, .. }, c) if constant(&c) && t.len() == n_t => {
            Some(copy(out_t, t))
        }
        (Op::Add, c, Array { tangent: t, .. }) if constant(&c) && t.len() == n_t => {
            Some(copy(out_t, t))
        }
        (Op::Sub, c, Array { tangent: t, .. }) if constant(&c) => Some(kernels::mul(
            ScalarConst(-1.0),
            ArrayConst(t),
            0,
            out_t,
            &mut [],
        )),
        // `x * c`, `c * x`, `x / c`: `t * c`, `c * t`, `t / c`
        (Op::Mul | Op::Div, Array { tangent: t, .. }, c @ ScalarConst(_)) => {
            Some(kernel(ArrayConst(t), c, 0, out_t, &mut []))
        }
        (Op::Mul, c @ ScalarConst(_), Array { tangent: t, .. }) => {
            Some(kernel(c, ArrayConst(t), 0, out_t, &mut []))
        }
        _ => None,
    };
    fn values(o: Operand<'_>) -> Operand<'_> {
        match o {
            Operand::Array { primal, .. } => ArrayConst(primal),
            other => other,
        }
    }
    match tangents {
        Some(done) => {
            done?;
            kernel(values(a), values(b), 0, out_p, &mut [])
        }
        None => kernel(a, b, k, out_p, out_t),
    }
}

/// `-x` of a DualArray natively (primal and tangents negated, as NumPy negates); `None` where
/// the Python implementation must run.
///
/// A plain loop rather than the kernel `-1 * x`: as fast or faster (measured), and a negation
/// (sign bit flipped, NaNs included).
pub(crate) fn array_neg<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Some(r) = band::neg(py, x)? {
        return Ok(Some(r));
    }
    if let Some(r) = lazy::neg(py, x)? {
        return Ok(Some(r));
    }
    let Some(Side::Array {
        p,
        t,
        stride,
        shape,
        seed,
        layout,
    }) = Side::of(x)?
    else {
        return Ok(None);
    };
    let tshape: Vec<usize> = std::iter::once(layout.rows())
        .chain(shape.iter().copied())
        .collect();
    let (mut out_p, mut out_t) = (Fresh::new(py, shape.to_vec()), Fresh::new(py, tshape));
    let negate = |dst: &mut [f64], src: &[f64]| {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = -s;
        }
    };
    negate(out_p.data(), &p);
    // row by row (the rows of a view are `stride` apart)
    let n = p.len();
    for (dst, src) in out_t.data().chunks_mut(n).zip(t.chunks(stride)) {
        negate(dst, src);
    }
    new_dual_array(py, out_p.array(), out_t.array(), seed).map(Some)
}

/// A ufunc call with a fast path (`np.add(a, b)`, ... `np.negative(x)`, positional inputs
/// only) on a DualArray natively; `None` otherwise.
fn array_ufunc<'py>(
    py: Python<'py>,
    ufunc: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyTuple>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let ops = cached(&ARITHMETIC_UFUNCS, || {
        let np = numpy(py)?;
        let get = |name: &str| np.getattr(name).map(Bound::unbind);
        Ok([
            get("add")?,
            get("subtract")?,
            get("multiply")?,
            get("divide")?,
            get("negative")?,
        ])
    })?;
    let Some(i) = ops.iter().position(|u| u.is(ufunc)) else {
        if inputs.len() == 1 {
            return unary_ufunc(py, ufunc, &inputs.get_item(0)?);
        }
        return Ok(None);
    };
    match (i, inputs.len()) {
        (4, 1) => array_neg(py, &inputs.get_item(0)?),
        (0..4, 2) => {
            let op = [Op::Add, Op::Sub, Op::Mul, Op::Div][i];
            array_binary(py, &inputs.get_item(0)?, &inputs.get_item(1)?, op)
        }
        _ => Ok(None),
    }
}

/// A one-input ufunc on a DualArray natively: `np.square` as `x * x` (`duals._ufuncs._square`),
/// a rule of the table on a banded array (`crate::band`), on a second-order one
/// (`crate::hyper`) or, with a SIMD body, on a large first-order one (pending, `crate::lazy`);
/// `None` for everything else (the Python implementation).
fn unary_ufunc<'py>(
    py: Python<'py>,
    ufunc: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Ok(a) = x.cast::<DualArrayBase>() else {
        return Ok(None);
    };
    let banded = a.get().bands().is_some();
    let second = a.get().layout(py)?.second_order().is_some();
    let pending = !(banded || second) && lazy::candidate(py, x)?;
    if !(banded || second || pending) {
        return Ok(None);
    }
    let name = ufunc.getattr(intern!(py, "__name__"))?;
    let name = name.cast::<PyString>()?.to_str()?;
    if name == "square" {
        return array_binary(py, x, x, Op::Mul);
    }
    let Some(&rule) = ufunc_rules(py)?.get(name) else {
        return Ok(None);
    };
    if second {
        return hyper::unary(py, x, rule);
    }
    if banded {
        if let Some(r) = band::unary(py, x, rule)? {
            return Ok(Some(r));
        }
        // (declined: dense from here, maybe pending)
        if !lazy::candidate(py, x)? {
            return Ok(None);
        }
    }
    lazy::unary(py, x, rule)
}

/// `a op b` of a DualArray: natively, else `duals._core.<op>(a, b)`.
pub(crate) fn array_op<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    op: Op,
) -> PyResult<Py<PyAny>> {
    match array_binary(py, a, b, op)? {
        Some(r) => Ok(r.unbind()),
        None => call_core(py, op.python(py), (a, b)),
    }
}

/// Collected output: primal array, tangent array, seed.
type Parts<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Py<PyAny>);

/// The items and shape of a list or tuple (shape `(n,)`) or object ndarray; `None` otherwise.
fn items_of<'py>(obj: &Bound<'py, PyAny>) -> Option<(Vec<Bound<'py, PyAny>>, Vec<usize>)> {
    if let Ok(l) = obj.cast::<PyList>() {
        Some((l.iter().collect(), vec![l.len()]))
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        Some((t.iter().collect(), vec![t.len()]))
    } else if let Ok(a) = obj.cast::<PyArray1<Py<PyAny>>>() {
        // Element reads (new references, with the thread attached), no array borrow.
        let n = a.len();
        let items: Option<Vec<_>> = (0..n)
            .map(|i| a.get_owned([i]).map(|o| o.into_bound(obj.py())))
            .collect();
        Some((items?, vec![n]))
    } else if let Ok(a) = obj.cast::<PyArrayDyn<Py<PyAny>>>() {
        let r = a.try_readonly().ok()?;
        let v = r.as_array();
        let py = obj.py();
        Some((
            v.iter().map(|o| o.bind(py).clone()).collect(),
            v.shape().to_vec(),
        ))
    } else {
        None
    }
}

/// The items as operands, and the first Dual among them; `None` if an item is neither a Dual
/// nor a plain float/int, no item is a Dual, or the Duals' seeds differ.
fn scan<'a>(items: &'a [Bound<'_, PyAny>]) -> Option<(Vec<Arg<'a>>, &'a Dual)> {
    let mut first: Option<&Dual> = None;
    let mut args = Vec::with_capacity(items.len());
    for item in items {
        let a = arg(item);
        match a {
            Arg::Dual(d) => match first {
                None => first = Some(d),
                Some(f) if f.layout != d.layout || f.x.k() != d.x.k() => return None,
                Some(_) => {}
            },
            Arg::Const(_) => {}
            Arg::Other => return None,
        }
        args.push(a);
    }
    Some((args, first?))
}

/// A new float64 array of `shape` holding `data` in C order (NumPy's allocator: no capsule
/// keeping a Rust vector alive, which costs more than the copy at these sizes).
fn new_array<'py>(
    py: Python<'py>,
    shape: Vec<usize>,
    data: Vec<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(errors::shape("internal: array of", &shape, &[data.len()]));
    }
    // SAFETY: every element of the new (C-contiguous) array is written below, before the array
    // is returned to Python.
    let a = unsafe { PyArrayDyn::<f64>::new(py, shape, false) };
    // SAFETY: `a` is a new C-contiguous array of exactly `data.len()` elements (checked above),
    // not yet visible to any other code, so its buffer is valid for the writes and cannot
    // overlap `data`.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), a.data(), data.len()) };
    Ok(a.into_any())
}

/// The primals of the operands (a constant's value, a Dual's primal).
fn primals(args: &[Arg<'_>]) -> Vec<f64> {
    args.iter()
        .map(|a| match a {
            Arg::Dual(d) => d.x.re(),
            Arg::Const(c) => *c,
            Arg::Other => f64::NAN,
        })
        .collect()
}

/// _collect_duals(items) -> (primal, tangent, seed) | None
///
/// The parts of a list or tuple (primal ``(n,)``, tangent ``(K, n)``) or object ndarray of shape
/// ``S`` (primal ``S``, tangent ``(K, *S)``) of Duals (one seed) and plain Python floats/ints
/// (zero tangents); ``None`` (the caller takes the general path) if any item is something
/// else, no item is a Dual, or the seeds differ.
#[pyfunction]
pub(crate) fn _collect_duals<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyAny>,
) -> PyResult<Option<Parts<'py>>> {
    let Some((items, shape)) = items_of(items) else {
        return Ok(None);
    };
    let Some((args, first)) = scan(&items) else {
        return Ok(None);
    };
    let (n, k) = (args.len(), first.x.k());
    let mut tangent = vec![0.0; k * n];
    for (i, a) in args.iter().enumerate() {
        if let Arg::Dual(d) = a {
            for (row, &e) in d.x.eps().iter().enumerate() {
                if let Some(slot) = tangent.get_mut(row * n + i) {
                    *slot = e;
                }
            }
        }
    }
    let tshape: Vec<usize> = std::iter::once(k).chain(shape.iter().copied()).collect();
    Ok(Some((
        new_array(py, shape, primals(&args))?,
        new_array(py, tshape, tangent)?,
        first.seed.clone_ref(py),
    )))
}

/// Jacobian rows of collected output: primal array (or None), its shape, the rows.
type Rows<'py> = (
    Option<Bound<'py, PyAny>>,
    Bound<'py, PyTuple>,
    Bound<'py, PyAny>,
);

/// _jacobian_rows(y, seed, value) -> (primal | None, shape, jacobian) | None
///
/// For a list, tuple or object ndarray ``y`` of shape ``S`` of Duals of the first-order
/// ``seed`` (``K`` directions) and plain floats/ints: the primal (shape ``S``; ``None`` unless
/// ``value``), ``S``, and the ``(m, K)`` matrix whose row ``i`` holds the tangents of item ``i``
/// (C order), i.e. the Jacobian block of the seeded directions. ``None`` (the caller collects
/// in general) for anything else, including Duals of another seed.
#[pyfunction]
pub(crate) fn _jacobian_rows<'py>(
    py: Python<'py>,
    y: &Bound<'py, PyAny>,
    seed: &Bound<'py, PyAny>,
    value: bool,
) -> PyResult<Option<Rows<'py>>> {
    let Some((items, shape)) = items_of(y) else {
        return Ok(None);
    };
    let Some((args, first)) = scan(&items) else {
        return Ok(None);
    };
    if !(first.seed.is(seed) || first.layout == Layout::of(seed)?) || !first.layout.first_order() {
        return Ok(None);
    }
    let (m, k) = (args.len(), first.x.k());
    // Written in place: no Rust buffer, and two dimensions need no heap-allocated shape (30 of
    // this function's 220 ns for a small Jacobian).
    // SAFETY: every element of the new C-ordered array is written below, before it is returned.
    let jac = unsafe { PyArray2::<f64>::new(py, [m, k], false) };
    // SAFETY: the array is new, C-contiguous and not yet visible to any other code, so this is
    // the only reference to its memory.
    let rows = unsafe { jac.as_slice_mut() }.map_err(|_| {
        pyo3::exceptions::PyRuntimeError::new_err("duals: a new array is not contiguous")
    })?;
    for (row, a) in rows.chunks_exact_mut(k.max(1)).zip(&args) {
        match a {
            // The same length (`scan`: one tangent count)
            Arg::Dual(d) => row.iter_mut().zip(d.x.eps()).for_each(|(r, &e)| *r = e),
            _ => row.fill(0.0),
        }
    }
    let primal = if value {
        Some(new_array(py, shape.clone(), primals(&args))?)
    } else {
        None
    };
    Ok(Some((primal, PyTuple::new(py, &shape)?, jac.into_any())))
}

thread_local! {
    /// The NumPy error state `_call` last saw on this thread (kept alive, so that its identity
    /// stays meaningful) and its quiet version: the state rarely changes between calls, and
    /// building the quiet one through `np.errstate` costs more than a small Jacobian.
    static QUIET: std::cell::RefCell<Option<(Py<PyAny>, Py<PyAny>)>> =
        const { std::cell::RefCell::new(None) };
}

/// NumPy's error-state context variable and `duals._api._quiet_state`.
static ERRSTATE: OnceLock<(Py<PyAny>, Py<PyAny>)> = OnceLock::new();

/// _call(f, x, args) -> f(x, *args) with NumPy's floating-point warnings off (NumPy 2).
///
/// Tangent arithmetic meets ``0 * inf`` where the values do not (the derivative of sqrt at 0
/// times a zero direction): IEEE results without warnings; an explicit "raise" is kept. The
/// error state is set as `np.errstate` sets it (NumPy's context variable), to the quiet version
/// of the current state (`duals._api._quiet_state`, made once per state), for the call and
/// reset after it, also when `f` raises. All natively: the Python function that read the state
/// and called a native setter cost 0.09 µs more per call (of 3.5 µs for a small Jacobian).
#[pyfunction]
pub(crate) fn _call<'py>(
    py: Python<'py>,
    f: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let (var, make_quiet) = cached(&ERRSTATE, || {
        let api = py.import("duals._api")?;
        let var = api.getattr("_extobj_contextvar")?;
        // SAFETY: a type check of a live object.
        if unsafe { ffi::PyContextVar_CheckExact(var.as_ptr()) } == 0 {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "duals: NumPy's error state is not a contextvars.ContextVar",
            ));
        }
        Ok((var.unbind(), api.getattr("_quiet_state")?.unbind()))
    })?;
    let var = var.bind(py);
    let mut current = std::ptr::null_mut();
    // SAFETY: `var` is a ContextVar (checked above); on success `current` is a new reference,
    // or null if the variable has no value (NumPy's has a default).
    if unsafe { ffi::PyContextVar_Get(var.as_ptr(), std::ptr::null_mut(), &mut current) } < 0 {
        return Err(PyErr::fetch(py));
    }
    if current.is_null() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "duals: NumPy's error state has no value",
        ));
    }
    // SAFETY: a new (owned) reference, not null.
    let current = unsafe { Bound::from_owned_ptr(py, current) };
    let known = QUIET.with_borrow(|last| match last {
        Some((seen, quiet)) if seen.is(&current) => Some(quiet.clone_ref(py)),
        _ => None,
    });
    let quiet = match known {
        Some(quiet) => quiet.into_bound(py),
        None => {
            let quiet = make_quiet.bind(py).call0()?;
            // The previous states are released after the cell's borrow ends (their decrefs
            // may run code).
            let previous = QUIET.with_borrow_mut(|last| {
                last.replace((current.clone().unbind(), quiet.clone().unbind()))
            });
            drop(previous);
            quiet
        }
    };
    // SAFETY: `var` is a ContextVar and `quiet` a live object; the call returns a new reference
    // to a token, or null with an exception set.
    let token = unsafe { ffi::PyContextVar_Set(var.as_ptr(), quiet.as_ptr()) };
    if token.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new (owned) reference, not null.
    let token = unsafe { Bound::from_owned_ptr(py, token) };
    let result = call_prepended(f, x, args);
    // SAFETY: the variable and the token its `set` returned, both alive.
    let reset = unsafe { ffi::PyContextVar_Reset(var.as_ptr(), token.as_ptr()) };
    if reset < 0 {
        let error = PyErr::fetch(py);
        // The function's own exception, if it raised, comes first.
        return result.and(Err(error));
    }
    result
}

/// `f(x, *args)`: a vectorcall from an array on the stack for up to seven `args` (no tuple
/// made and freed, a seventh of `_call`), else a call with a new tuple.
fn call_prepended<'py>(
    f: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let rest = args.as_slice();
    let mut stack = [std::ptr::null_mut::<ffi::PyObject>(); 8];
    if rest.len() >= stack.len() {
        let items: Vec<_> = std::iter::once(x.clone()).chain(args.iter()).collect();
        return f.call1(PyTuple::new(f.py(), items)?);
    }
    stack[0] = x.as_ptr();
    for (slot, a) in stack[1..].iter_mut().zip(rest) {
        *slot = a.as_ptr();
    }
    // SAFETY: the first `1 + rest.len()` entries of `stack` are borrowed references that stay
    // alive for the call (`x`, held by our caller, and the items of the tuple `args`, which
    // cannot change); no keywords; the call returns a new reference, or null with an exception
    // set.
    unsafe {
        let r = ffi::PyObject_Vectorcall(
            f.as_ptr(),
            stack.as_ptr(),
            1 + rest.len(),
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(f.py(), r)
    }
}

/// _seeded(p, seed) -> DualArray: the 1-d array `p` (a private copy the driver made) seeded
/// with the first `K` of its `n` unit directions (`K` the rows of the first-order `seed`), marked
/// private: the input of a Jacobian's evaluation, in one call. From [`band::BANDED_MIN`] tangent
/// elements the tangent is banded (`crate::band`: the identity as one diagonal, every direction
/// kept, read back with `_banded_jacobian`); below, the rows `(K, n)` of the identity.
#[pyfunction]
pub(crate) fn _seeded<'py>(
    py: Python<'py>,
    p: Bound<'py, PyArrayDyn<f64>>,
    seed: Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let layout = Layout::of(seed.bind(py))?;
    let (n, k) = (p.len(), layout.rows());
    if p.ndim() != 1 || !layout.first_order() || k > n || !p.is_c_contiguous() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "_seeded needs a C-ordered 1-d array and a first-order seed of at most its {n} \
             directions, got {} dimensions and {k} rows",
            p.ndim()
        )));
    }
    if k.saturating_mul(n) >= band::BANDED_MIN && band::enabled() {
        return new_banded(py, p, band::Bands::identity(n), &seed, None);
    }
    // Written in place (no Rust buffer copied in: for large n, each fresh buffer costs a page
    // fault per 4 KiB).
    let mut eye = Fresh::new(py, vec![k, n]);
    let data = eye.data();
    data.fill(0.0);
    for slot in data.iter_mut().step_by(n + 1) {
        *slot = 1.0;
    }
    new_dual_array(py, p, eye.array(), &seed)
}
