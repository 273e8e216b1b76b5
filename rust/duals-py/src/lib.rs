//! PyO3 glue of `duals`: conversions, classes and error mapping only; no derivative math.
use pyo3::prelude::*;

/// The compiled part of `duals`; import `duals`, not this module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
