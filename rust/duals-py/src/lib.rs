//! PyO3 glue of `duals`: conversions, classes and error mapping only; no derivative math.
//!
//! Arrays cross the boundary as float64 NumPy arrays. Inputs are copied into Rust-owned buffers
//! before the GIL is released (another Python thread may not mutate memory we are reading,
//! TOOLCHAIN pitfall 6); outputs are Rust vectors handed to NumPy without a copy.
//!
//! `dual`: the `Dual` scalar class (the engine's `DualDyn` with the Python `Seed`), the storage
//! base class of `DualArray` with native `x[i]` / `x[i] = d`, and the fast paths that collect
//! outputs made of Duals.
//!
//! `lazy`: pending results of elementwise chains on large arrays, evaluated fused in one pass
//! when something reads them.
//!
//! `join`: `np.concatenate` of dual arrays, primal and tangent rows joined in one call.
//!
//! `par`: large arithmetic kernels and joins split in two blocks of tangent rows, the second on
//! a helper thread. `alloc`: a NumPy allocator that keeps large freed blocks for reuse, set by
//! the drivers around evaluations with wide tangent blocks.
//!
//! `tape`: recorded programs, `TapeBuilder` (for the tracer), `Tape` (a finished tape and its
//! drivers) and `CompiledCore` (the guard cache and fast path of `duals.compile`).

use numpy::ndarray::ArrayD;
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use duals::kernels;
use duals::rules::{BinaryRule, UnaryRule};

mod alloc;
mod band;
mod dual;
mod errors;
mod hyper;
mod join;
mod lazy;
mod par;
mod tape;

/// Element count above which the GIL is released during a kernel.
const DETACH_ABOVE: usize = 1 << 14;

type Arr<'py> = Bound<'py, PyArrayDyn<f64>>;

/// The elements in C (row-major) order, whatever the array's memory layout.
fn to_vec(a: &PyReadonlyArrayDyn<'_, f64>) -> Vec<f64> {
    // `as_slice` also succeeds on Fortran-ordered arrays, in memory order: only take it for C order.
    if a.is_c_contiguous() {
        if let Ok(s) = a.as_slice() {
            return s.to_vec();
        }
    }
    a.as_array().iter().copied().collect()
}

fn to_array<'py>(py: Python<'py>, shape: &[usize], data: Vec<f64>) -> PyResult<Arr<'py>> {
    let a = ArrayD::from_shape_vec(shape.to_vec(), data)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok(a.into_pyarray(py))
}

fn run<T: Send>(py: Python<'_>, work: usize, f: impl FnOnce() -> T + Send) -> T {
    if work > DETACH_ABOVE {
        py.detach(f)
    } else {
        f()
    }
}

fn unary_rule(name: &str, param: f64) -> PyResult<UnaryRule> {
    UnaryRule::from_name(name, param).ok_or_else(|| errors::unknown_rule(name, &UnaryRule::NAMES))
}

fn binary_rule(name: &str) -> PyResult<BinaryRule> {
    BinaryRule::from_name(name).ok_or_else(|| errors::unknown_rule(name, &BinaryRule::NAMES))
}

/// A new, uninitialized float64 array of `shape` (NumPy's allocator: large arrays get huge
/// pages, so fresh results do not fault page by page).
fn new_array<'py>(py: Python<'py>, shape: &[usize]) -> Arr<'py> {
    // SAFETY: every element is written by the kernel before the array is returned to Python.
    unsafe { PyArrayDyn::<f64>::new(py, shape.to_vec(), false) }
}

/// unary(name, primal, tangent, param=0.0) -> (primal, tangent)
///
/// The fused first-order kernel: `f(primal)` and `f'(primal) * tangent[j]` for every tangent
/// row, in one pass. `tangent` has shape `(k, *primal.shape)`.
#[pyfunction]
#[pyo3(signature = (name, primal, tangent, param = 0.0))]
fn unary<'py>(
    py: Python<'py>,
    name: &str,
    primal: PyReadonlyArrayDyn<'py, f64>,
    tangent: PyReadonlyArrayDyn<'py, f64>,
    param: f64,
) -> PyResult<(Arr<'py>, Arr<'py>)> {
    let rule = unary_rule(name, param)?;
    let (pshape, tshape) = (primal.shape().to_vec(), tangent.shape().to_vec());
    if tshape.len() != pshape.len() + 1 || tshape[1..] != pshape[..] {
        return Err(errors::shape(
            "unary: tangent must have shape (k, *primal.shape)",
            &pshape,
            &tshape,
        ));
    }
    let k = tshape[0];
    let (out_p, out_t) = (new_array(py, &pshape), new_array(py, &tshape));
    {
        let mut wp = out_p.readwrite();
        let mut wt = out_t.readwrite();
        let (op, ot) = (wp.as_slice_mut()?, wt.as_slice_mut()?);
        let work = op.len() * (k + 1);
        if work > DETACH_ABOVE {
            // The GIL is released: read private copies, not memory other threads may write.
            // The copies live in per-thread scratch reused across calls: fresh multi-megabyte
            // buffers would cost a page fault per 4 KiB on every call.
            SCRATCH.with_borrow_mut(|(p, t)| {
                copy_into(&primal, p);
                copy_into(&tangent, t);
                py.detach(|| kernels::unary_rule(rule, p, t, k, op, ot))
            })
        } else {
            match (c_slice(&primal), c_slice(&tangent)) {
                (Some(p), Some(t)) => kernels::unary_rule(rule, p, t, k, op, ot),
                _ => kernels::unary_rule(rule, &to_vec(&primal), &to_vec(&tangent), k, op, ot),
            }
        }
        .map_err(errors::kernel)?;
    }
    Ok((out_p, out_t))
}

thread_local! {
    /// Per-thread scratch for private copies of kernel inputs.
    static SCRATCH: std::cell::RefCell<(Vec<f64>, Vec<f64>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Copy the elements in C order into `buf` (reusing its allocation).
fn copy_into(a: &PyReadonlyArrayDyn<'_, f64>, buf: &mut Vec<f64>) {
    buf.clear();
    match c_slice(a) {
        Some(s) => buf.extend_from_slice(s),
        None => buf.extend(a.as_array().iter().copied()),
    }
}

/// The elements as a slice when the array is C-contiguous.
fn c_slice<'a>(a: &'a PyReadonlyArrayDyn<'_, f64>) -> Option<&'a [f64]> {
    if a.is_c_contiguous() {
        a.as_slice().ok()
    } else {
        None
    }
}

/// unary_derivs(name, x, param=0.0) -> (f, d1, d2)
///
/// Value, first and second derivative of a table entry, elementwise.
#[pyfunction]
#[pyo3(signature = (name, x, param = 0.0))]
fn unary_derivs<'py>(
    py: Python<'py>,
    name: &str,
    x: PyReadonlyArrayDyn<'py, f64>,
    param: f64,
) -> PyResult<(Arr<'py>, Arr<'py>, Arr<'py>)> {
    let rule = unary_rule(name, param)?;
    let shape = x.shape().to_vec();
    let x = to_vec(&x);
    let (f, d1, d2) = run(py, x.len(), || {
        let (mut f, mut d1, mut d2) = (
            Vec::with_capacity(x.len()),
            Vec::with_capacity(x.len()),
            Vec::with_capacity(x.len()),
        );
        for &a in &x {
            let r = rule.eval(a);
            f.push(r.f);
            d1.push(r.d1);
            d2.push(r.d2);
        }
        (f, d1, d2)
    });
    Ok((
        to_array(py, &shape, f)?,
        to_array(py, &shape, d1)?,
        to_array(py, &shape, d2)?,
    ))
}

/// binary_derivs(name, a, b) -> (f, da, db, daa, dab, dbb)
///
/// Value, gradient and Hessian of a two-argument table entry, elementwise; `a` and `b` have the
/// same shape (broadcast them first).
#[pyfunction]
fn binary_derivs<'py>(
    py: Python<'py>,
    name: &str,
    a: PyReadonlyArrayDyn<'py, f64>,
    b: PyReadonlyArrayDyn<'py, f64>,
) -> PyResult<Vec<Arr<'py>>> {
    let rule = binary_rule(name)?;
    let shape = a.shape().to_vec();
    if b.shape() != &shape[..] {
        return Err(errors::shape("binary_derivs", &shape, b.shape()));
    }
    let (a, b) = (to_vec(&a), to_vec(&b));
    let parts = run(py, a.len(), || {
        let mut parts: [Vec<f64>; 6] = Default::default();
        for (&x, &y) in a.iter().zip(&b) {
            let r = rule.eval(x, y);
            for (v, d) in parts.iter_mut().zip([r.f, r.da, r.db, r.daa, r.dab, r.dbb]) {
                v.push(d);
            }
        }
        parts
    });
    parts.into_iter().map(|v| to_array(py, &shape, v)).collect()
}

/// simd_level() -> str: the instruction set the array kernels run with on this CPU.
#[pyfunction]
fn simd_level() -> String {
    format!("{:?}", kernels::detected_level())
}

/// The compiled part of `duals`; import `duals`, not this module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("UNARY_RULES", UnaryRule::NAMES.to_vec())?;
    m.add("BINARY_RULES", BinaryRule::NAMES.to_vec())?;
    m.add_function(wrap_pyfunction!(unary, m)?)?;
    m.add_function(wrap_pyfunction!(unary_derivs, m)?)?;
    m.add_function(wrap_pyfunction!(binary_derivs, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_class::<dual::Dual>()?;
    m.add_class::<dual::DualArrayBase>()?;
    m.add_function(wrap_pyfunction!(dual::_collect_duals, m)?)?;
    m.add_function(wrap_pyfunction!(dual::_jacobian_rows, m)?)?;
    m.add_function(wrap_pyfunction!(dual::_call, m)?)?;
    m.add_function(wrap_pyfunction!(dual::_seeded, m)?)?;
    m.add_function(wrap_pyfunction!(lazy::_lazy_threshold, m)?)?;
    m.add_function(wrap_pyfunction!(lazy::_lazy_counts, m)?)?;
    m.add_function(wrap_pyfunction!(dual::_unit_tangent_array, m)?)?;
    m.add_function(wrap_pyfunction!(join::_concatenate, m)?)?;
    m.add_function(wrap_pyfunction!(band::_banded_jacobian, m)?)?;
    m.add_function(wrap_pyfunction!(band::_band_constant, m)?)?;
    m.add_function(wrap_pyfunction!(band::_banded, m)?)?;
    m.add_function(wrap_pyfunction!(alloc::_alloc_enter, m)?)?;
    m.add_function(wrap_pyfunction!(alloc::_alloc_exit, m)?)?;
    m.add_class::<tape::TapeBuilder>()?;
    m.add_class::<tape::Tape>()?;
    m.add_class::<tape::CompiledCore>()?;
    m.add_function(wrap_pyfunction!(tape::_tape_from_bytes, m)?)?;
    Ok(())
}
