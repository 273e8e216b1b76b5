//! Second-order (hyper-dual) array kernels: the product rule and the chain rule of a function
//! of one variable.
//!
//! # Layout
//!
//! A hyper-dual array of `n` elements seeded along `k1` and `k2` directions has
//! `K = k1 + k2 + k1*k2` tangent rows (tangent axis first, as in the first-order kernels):
//! rows `0..k1` are the first-order parts `e1` along the first directions, rows `k1..k1+k2`
//! the parts `e2` along the second, and row `k1 + k2 + i*k2 + j` the mixed part `e12[i, j]`.
//!
//! # Rounding
//!
//! Each formula is evaluated as written, one rounding per operation and no FMA, in the order of
//! the Python implementation (`duals._core.chain2` and `_chain1`), so that both give the same
//! bits. The kernels are plain loops over contiguous rows, which the compiler vectorizes without
//! changing a result.

use super::error::check_tangent;
use super::{KernelError, Operand};
use crate::rules::UnaryRule;

/// The number of tangent rows `k1 + k2 + k1*k2`.
fn hyper_rows(k1: usize, k2: usize) -> Result<usize, KernelError> {
    k1.checked_mul(k2)
        .and_then(|m| m.checked_add(k1))
        .and_then(|m| m.checked_add(k2))
        .ok_or(KernelError::SizeOverflow { k: k1, n: k2 })
}

/// A hyper-dual array operand: its primal, tangent rows and the distance between their starts.
#[derive(Clone, Copy)]
struct Hyper<'a> {
    p: &'a [f64],
    t: &'a [f64],
    stride: usize,
    n: usize,
}

impl<'a> Hyper<'a> {
    /// `o` checked to be an array with `k` tangent rows of `n` elements.
    fn of(
        o: Operand<'a>,
        names: [&'static str; 2],
        n: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        o.check(names, n, k)?;
        match o {
            Operand::Array { primal, tangent } => Ok(Hyper {
                p: primal,
                t: tangent,
                stride: n,
                n,
            }),
            Operand::Rows {
                primal,
                tangent,
                stride,
            } => Ok(Hyper {
                p: primal,
                t: tangent,
                stride,
                n,
            }),
            _ => Err(KernelError::HyperOperand { arg: names[1] }),
        }
    }

    /// Tangent row `j`.
    #[inline(always)]
    fn row(&self, j: usize) -> &'a [f64] {
        &self.t[j * self.stride..j * self.stride + self.n]
    }
}

/// Elementwise product of two hyper-dual arrays (the second-order product rule).
///
/// With `a = (a, a1, a2, a12)` and `b` likewise: `out_p = a * b`,
/// `e1 = b a1 + a b1`, `e2 = b a2 + a b2` and
/// `e12[i, j] = b a12 + a b12 + a1[i] b2[j] + b1[i] a2[j]`, evaluated as the Python
/// implementation evaluates the chain rule of `f(a, b) = a b` (`duals._core.chain2` with
/// `f_a = b`, `f_b = a`, `f_aa = f_bb = 0`, `f_ab = 1`): sums started from `0.0` and the
/// terms `0 * (a1[i] a2[j])`, `0 * (b1[i] b2[j])` added, so that signed zeros come out as there.
/// Both operands must be [`Operand::Array`] or [`Operand::Rows`] with `k1 + k2 + k1*k2` rows;
/// products with a constant are linear (the first-order kernels, on all rows).
///
/// # Errors
/// [`KernelError::HyperOperand`] for an operand without tangent rows; length errors as
/// [`add`](super::add).
pub fn hyper_mul(
    a: Operand<'_>,
    b: Operand<'_>,
    k1: usize,
    k2: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    let (n, k) = (out_p.len(), hyper_rows(k1, k2)?);
    let a = Hyper::of(a, ["a.primal", "a.tangent"], n, k)?;
    let b = Hyper::of(b, ["b.primal", "b.tangent"], n, k)?;
    check_tangent("out_t", out_t.len(), k, n)?;
    let (pa, pb) = (&a.p[..n], &b.p[..n]);
    for ((o, &x), &y) in out_p.iter_mut().zip(pa).zip(pb) {
        *o = x * y;
    }
    if n == 0 {
        return Ok(());
    }
    let mut out_rows = out_t.chunks_exact_mut(n);
    for (j, o) in (0..k1 + k2).zip(&mut out_rows) {
        let (ta, tb) = (a.row(j), b.row(j));
        for i in 0..n {
            o[i] = (0.0 + pb[i] * ta[i]) + pa[i] * tb[i];
        }
    }
    for i1 in 0..k1 {
        let (a1, b1) = (a.row(i1), b.row(i1));
        for (j2, o) in (0..k2).zip(&mut out_rows) {
            let (a2, b2) = (a.row(k1 + j2), b.row(k1 + j2));
            let r = k1 + k2 + i1 * k2 + j2;
            let (a12, b12) = (a.row(r), b.row(r));
            for i in 0..n {
                let e = (0.0 + pb[i] * a12[i]) + 0.0 * (a1[i] * a2[i]);
                let e = (e + pa[i] * b12[i]) + 0.0 * (b1[i] * b2[i]);
                o[i] = e + (a1[i] * b2[i] + b1[i] * a2[i]);
            }
        }
    }
    Ok(())
}

/// `f(x)` of a hyper-dual array for the table entry `rule` (the second-order chain rule).
///
/// With `(f, f', f'')` of the rule at each element: `out_p = f`, `e1 = f' x1`, `e2 = f' x2`,
/// `e12[i, j] = f' x12 + f'' (x1[i] x2[j])`, as `duals._core._chain1` evaluates it. The operand
/// must be [`Operand::Array`] or [`Operand::Rows`] with `k1 + k2 + k1*k2` rows.
///
/// # Errors
/// [`KernelError::HyperOperand`] for an operand without tangent rows; length errors as
/// [`unary`](super::unary).
pub fn hyper_unary(
    rule: UnaryRule,
    x: Operand<'_>,
    k1: usize,
    k2: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    let (n, k) = (out_p.len(), hyper_rows(k1, k2)?);
    let x = Hyper::of(x, ["x.primal", "x.tangent"], n, k)?;
    check_tangent("out_t", out_t.len(), k, n)?;
    // Blocks of elements whose derivatives are staged on the stack.
    let (mut d1, mut d2) = ([0.0; super::BLOCK], [0.0; super::BLOCK]);
    for start in (0..n).step_by(super::BLOCK) {
        let end = (start + super::BLOCK).min(n);
        let m = end - start;
        for (i, &a) in x.p[start..end].iter().enumerate() {
            let r = rule.eval(a);
            out_p[start + i] = r.f;
            d1[i] = r.d1;
            d2[i] = r.d2;
        }
        let (d1, d2) = (&d1[..m], &d2[..m]);
        for j in 0..k1 + k2 {
            let t = &x.row(j)[start..end];
            let o = &mut out_t[j * n + start..j * n + end];
            for i in 0..m {
                o[i] = d1[i] * t[i];
            }
        }
        for i1 in 0..k1 {
            let x1 = &x.row(i1)[start..end];
            for j2 in 0..k2 {
                let x2 = &x.row(k1 + j2)[start..end];
                let r = k1 + k2 + i1 * k2 + j2;
                let x12 = &x.row(r)[start..end];
                let o = &mut out_t[r * n + start..r * n + end];
                for i in 0..m {
                    o[i] = d1[i] * x12[i] + d2[i] * (x1[i] * x2[i]);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x * y` and `sin(x)` of hyper-dual numbers against the scalar `HyperDual` type.
    #[test]
    fn against_scalar_formulas() {
        // one element, k1 = k2 = 1: rows e1, e2, e12
        let (p, t) = ([1.5], [0.25, -2.0, 0.75]);
        let (q, u) = ([-0.5], [3.0, 0.5, -1.25]);
        let x = Operand::Array {
            primal: &p,
            tangent: &t,
        };
        let y = Operand::Array {
            primal: &q,
            tangent: &u,
        };
        let (mut op, mut ot) = ([0.0], [0.0; 3]);
        hyper_mul(x, y, 1, 1, &mut op, &mut ot).unwrap();
        assert_eq!(op, [1.5 * -0.5]);
        assert_eq!(ot[0], -0.5 * 0.25 + 1.5 * 3.0);
        assert_eq!(ot[1], -0.5 * -2.0 + 1.5 * 0.5);
        assert_eq!(ot[2], -0.5 * 0.75 + 1.5 * -1.25 + (0.25 * 0.5 + 3.0 * -2.0));
        hyper_unary(UnaryRule::Sin, x, 1, 1, &mut op, &mut ot).unwrap();
        let (s, c) = 1.5f64.sin_cos();
        assert_eq!(op, [s]);
        assert_eq!(ot[..2], [c * 0.25, c * -2.0]);
        assert_eq!(ot[2], c * 0.75 + -s * (0.25 * -2.0));
    }

    /// A constant operand is an error, not a silent zero tangent.
    #[test]
    fn constants_are_rejected() {
        let (p, t) = ([1.0], [0.0; 3]);
        let x = Operand::Array {
            primal: &p,
            tangent: &t,
        };
        let (mut op, mut ot) = ([0.0], [0.0; 3]);
        let err = hyper_mul(x, Operand::ArrayConst(&p), 1, 1, &mut op, &mut ot).unwrap_err();
        assert_eq!(err, KernelError::HyperOperand { arg: "b.tangent" });
    }
}
