//! The one place where engine errors become Python exceptions.

use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::PyErr;

/// A kernel's length error: a bug in the caller's shapes, reported as ValueError.
pub fn kernel(e: duals::kernels::KernelError) -> PyErr {
    PyValueError::new_err(format!("duals internal kernel error: {e}"))
}

/// An unknown rule name.
pub fn unknown_rule(name: &str, known: &[&str]) -> PyErr {
    PyValueError::new_err(format!(
        "no derivative rule named {name:?}; known rules: {}",
        known.join(", ")
    ))
}

/// Arrays of different lengths where equal lengths are needed.
pub fn shape(what: &str, a: &[usize], b: &[usize]) -> PyErr {
    PyValueError::new_err(format!("{what}: shapes {a:?} and {b:?} do not match"))
}

/// Two dual numbers with different tangent counts (an internal inconsistency: the bindings
/// compare seeds first).
pub fn tangents(e: duals::TangentMismatch) -> PyErr {
    PyValueError::new_err(format!("duals internal error: {e}"))
}

/// A NumPy array that cannot be borrowed (e.g. being written elsewhere).
pub fn borrow(e: numpy::BorrowError) -> PyErr {
    PyValueError::new_err(format!("cannot read the array: {e}"))
}

/// A tape error: `MemoryError` for a result too large to allocate, `ValueError` with the
/// engine's message otherwise.
pub fn tape(e: duals::tape::TapeError) -> PyErr {
    use duals::tape::TapeError;
    match e {
        TapeError::TooLarge { .. } | TapeError::Driver(duals::Error::TooLarge { .. }) => {
            PyMemoryError::new_err(e.to_string())
        }
        _ => PyValueError::new_err(e.to_string()),
    }
}
