//! Second-order DualArray arithmetic natively: the operations of `hessian`, `hvp` and
//! `second_derivative` (seeds `Seed.second(k1, k2)`, `k1 + k2 + k1*k2` tangent rows).
//!
//! `+`, `-`, and `*` or `/` by a constant are linear: the first-order kernels on all rows
//! (`dual::arithmetic`). A product of two hyper-dual arrays is `kernels::hyper_mul`, a quotient
//! by one `a * recip(b)` (as `duals._core.div` computes it), and a ufunc of the rule table
//! `kernels::hyper_unary`. The results are those of the Python implementation bit for bit (the
//! engine evaluates its formulas in the same order, without FMA).
//!
//! Results that are not all finite (values or tangents), and quotients whose `a / b` is not, are
//! left to the Python implementation (`None`), which computes them again under the caller's
//! NumPy error state, warnings and errors as before. The operands are read in place with the
//! thread attached (no detached kernel: the tangents of a Hessian block are at most some
//! hundred thousand values).

use pyo3::prelude::*;

use duals::kernels::{self, Operand};
use duals::rules::UnaryRule;

use crate::dual::{arithmetic, new_dual_array, Fresh, Op, Side};
use crate::errors;

/// Whether every value is finite (one pass the compiler vectorizes: `v * 0` is NaN exactly for
/// an infinite or NaN `v`, else a zero).
fn all_finite(values: &[f64]) -> bool {
    values.iter().fold(0.0, |acc, &v| acc + v * 0.0) == 0.0
}

/// `a op b` where a dual operand has a second-order seed: both of one seed and the arrays of one
/// shape (`Side::of`); `None` where the Python implementation must run (other seeds and
/// shapes, for its result or error; values that are not finite).
pub(crate) fn binary<'py>(
    py: Python<'py>,
    sa: &Side<'_>,
    sb: &Side<'_>,
    op: Op,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some((shape, seed, layout)) = Side::common(sa, sb) else {
        return Ok(None);
    };
    let Some((k1, k2)) = layout.second_order() else {
        return Ok(None);
    };
    let (a, b) = (sa.operand(), sb.operand());
    let k = layout.rows();
    let tshape: Vec<usize> = std::iter::once(k).chain(shape.iter().copied()).collect();
    let (mut out_p, mut out_t) = (Fresh::new(py, shape.to_vec()), Fresh::new(py, tshape));
    let (p, t) = (out_p.data(), out_t.data());
    let n = p.len();
    match op {
        Op::Mul if a.has_tangent() && b.has_tangent() => kernels::hyper_mul(a, b, k1, k2, p, t),
        Op::Div if b.has_tangent() => {
            // `duals._core.div` checks `a / b` under the caller's error state, then computes
            // `a * recip(b)`.
            if !(0..n).all(|i| (a.primal_at(i) / b.primal_at(i)).is_finite()) {
                return Ok(None);
            }
            let (mut rp, mut rt) = (vec![0.0; n], vec![0.0; k * n]);
            kernels::hyper_unary(UnaryRule::Recip, b, k1, k2, &mut rp, &mut rt)
                .map_err(errors::kernel)?;
            let r = Operand::Array {
                primal: &rp,
                tangent: &rt,
            };
            if a.has_tangent() {
                kernels::hyper_mul(a, r, k1, k2, p, t)
            } else {
                arithmetic(Op::Mul, a, r, k, p, t)
            }
        }
        _ => arithmetic(op, a, b, k, p, t),
    }
    .map_err(errors::kernel)?;
    if !(all_finite(p) && all_finite(t)) {
        return Ok(None);
    }
    new_dual_array(py, out_p.array(), out_t.array(), seed).map(Some)
}

/// `f(x)` of a second-order DualArray for the table entry `rule` (`duals._core.unary`, whose
/// derivatives come from the same `UnaryRule::eval`); `None` for other operands and results
/// that are not all finite.
pub(crate) fn unary<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    rule: UnaryRule,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(side) = Side::of(x)? else {
        return Ok(None);
    };
    let (Some(shape), Some((seed, layout))) = (side.shape(), side.seed()) else {
        return Ok(None);
    };
    let Some((k1, k2)) = layout.second_order() else {
        return Ok(None);
    };
    let tshape: Vec<usize> = std::iter::once(layout.rows())
        .chain(shape.iter().copied())
        .collect();
    let (mut out_p, mut out_t) = (Fresh::new(py, shape.to_vec()), Fresh::new(py, tshape));
    let (p, t) = (out_p.data(), out_t.data());
    kernels::hyper_unary(rule, side.operand(), k1, k2, p, t).map_err(errors::kernel)?;
    if !(all_finite(p) && all_finite(t)) {
        return Ok(None);
    }
    new_dual_array(py, out_p.array(), out_t.array(), seed).map(Some)
}
