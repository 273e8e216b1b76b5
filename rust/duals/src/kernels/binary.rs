//! Elementwise binary kernels: `add`, `sub`, `mul`, `div` and a generic rule.
//!
//! `add`, `sub`, `mul` and [`binary`] share one body: the tangent is the linear combination
//! `ca * ta + cb * tb` of the operands' tangents, with coefficients `ca = df/da`,
//! `cb = df/db` that each kernel supplies per block ([`Coefficients`]). `div` has its own body
//! because its tangent is computed as `(ta - f * tb) / b`.

use pulp::{Simd, WithSimd};

use super::dispatch::{run, Level};
use super::error::check_tangent;
use super::lanes::{map, Src};
use super::{KernelError, Operand, BLOCK};

/// Elementwise sum of two operands.
///
/// `out_p[i] = a[i] + b[i]`, `out_t[j*n + i] = ta[j, i] + tb[j, i]`, with `n = out_p.len()`,
/// broadcast scalars repeated and a constant's tangent left out.
///
/// If both operands are constants the tangent rows are zero.
///
/// # Errors
/// [`KernelError`] if an array operand, `out_p` or `out_t` does not have `n`, `n`, `k*n`
/// values, or a scalar dual does not have `k` tangents.
pub fn add(
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    add_with_level(Level::best(), a, b, k, out_p, out_t)
}

/// [`add`] run with a given [`Level`].
///
/// # Errors
/// As [`add`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn add_with_level(
    level: Level,
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    linear(level, Sum, a, b, k, out_p, out_t)
}

/// Elementwise difference of two operands.
///
/// `out_p[i] = a[i] - b[i]`, `out_t[j*n + i] = ta[j, i] - tb[j, i]`; operands as in [`add`]
/// (`2.0 - x` is `sub(Operand::ScalarConst(2.0), x, ..)`, tangent `-tx`).
///
/// # Errors
/// As [`add`].
pub fn sub(
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    sub_with_level(Level::best(), a, b, k, out_p, out_t)
}

/// [`sub`] run with a given [`Level`].
///
/// # Errors
/// As [`add`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn sub_with_level(
    level: Level,
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    linear(level, Difference, a, b, k, out_p, out_t)
}

/// Elementwise product of two operands (product rule).
///
/// `out_p[i] = a[i] * b[i]`, `out_t[j*n + i] = b[i] * ta[j, i] + a[i] * tb[j, i]`, the sum
/// fused with the first product on FMA levels. Operands as in [`add`]; a constant's term is
/// left out.
///
/// # Errors
/// As [`add`].
pub fn mul(
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    mul_with_level(Level::best(), a, b, k, out_p, out_t)
}

/// [`mul`] run with a given [`Level`].
///
/// # Errors
/// As [`add`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn mul_with_level(
    level: Level,
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    linear(level, Product, a, b, k, out_p, out_t)
}

/// Elementwise quotient of two operands (quotient rule).
///
/// `f = out_p[i] = a[i] / b[i]` and
/// `out_t[j*n + i] = (ta[j, i] * b - a * tb[j, i]) / b^2`, computed as
/// `(ta[j, i] - f * tb[j, i]) / b[i]` (no `b^2`, so no early overflow; `ta - f * tb` fused on
/// FMA levels). With `a` constant the tangent is `-(f * tb) / b`; with `b` constant,
/// `ta / b`. Operands as in [`add`].
///
/// # Errors
/// As [`add`].
pub fn div(
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    div_with_level(Level::best(), a, b, k, out_p, out_t)
}

/// [`div`] run with a given [`Level`].
///
/// # Errors
/// As [`add`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn div_with_level(
    level: Level,
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    check_binary(a, b, k, out_p, out_t)?;
    run(
        level,
        Quotient {
            a,
            b,
            k,
            out_p,
            out_t,
        },
    )
}

/// Applies a differentiable function of two variables elementwise.
///
/// `rule(a, b)` returns `(f, df/da, df/db)` at one point, from one evaluation (for `atan2`:
/// `(a.atan2(b), b / (a*a + b*b), -a / (a*a + b*b))`). Then `out_p[i] = f` and
/// `out_t[j*n + i] = df/da * ta[j, i] + df/db * tb[j, i]`, the sum fused with the first
/// product on FMA levels; a constant's term is left out. The rule is called once per element,
/// in order, on blocks of 256 elements whose partial derivatives are kept on the stack.
///
/// # Errors
/// As [`add`].
///
/// ```
/// use duals::kernels::{binary, Operand};
/// // d/dx x^y = y x^(y-1): at x = 2, y = 3 that is 12
/// let rule = |x: f64, y: f64| {
///     let f = x.powf(y);
///     (f, y * x.powf(y - 1.0), f * x.ln())
/// };
/// let (p, t) = ([2.0], [1.0]);
/// let (mut out_p, mut out_t) = ([0.0], [0.0]);
/// let x = Operand::Array { primal: &p, tangent: &t };
/// binary(rule, x, Operand::ScalarConst(3.0), 1, &mut out_p, &mut out_t).unwrap();
/// assert_eq!((out_p, out_t), ([8.0], [12.0]));
/// ```
pub fn binary<F>(
    rule: F,
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError>
where
    F: Fn(f64, f64) -> (f64, f64, f64),
{
    binary_with_level(Level::best(), rule, a, b, k, out_p, out_t)
}

/// [`binary`] run with a given [`Level`].
///
/// # Errors
/// As [`add`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn binary_with_level<F>(
    level: Level,
    rule: F,
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError>
where
    F: Fn(f64, f64) -> (f64, f64, f64),
{
    linear(level, Rule(rule), a, b, k, out_p, out_t)
}

/// Checks every length of a binary kernel against `n = out_p.len()` and `k`.
fn check_binary(
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &[f64],
    out_t: &[f64],
) -> Result<(), KernelError> {
    let n = out_p.len();
    a.check(["a.primal", "a.tangent"], n, k)?;
    b.check(["b.primal", "b.tangent"], n, k)?;
    check_tangent("out_t", out_t.len(), k, n)
}

/// Checks lengths and runs a [`Linear`] kernel.
fn linear<C: Coefficients>(
    level: Level,
    coefficients: C,
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    check_binary(a, b, k, out_p, out_t)?;
    run(
        level,
        Linear {
            coefficients,
            a,
            b,
            k,
            out_p,
            out_t,
        },
    )
}

/// What a kernel of the form `out_t = ca * ta + cb * tb` computes per block.
trait Coefficients {
    /// Writes the primal `f(a, b)` of one block into `out_p` and returns the streams
    /// `[df/da, df/db]` for that block, computed into `buf` if needed.
    fn block<'b, S: Simd>(
        &self,
        simd: S,
        a: Src<'b>,
        b: Src<'b>,
        out_p: &mut [f64],
        buf: &'b mut [[f64; BLOCK]; 2],
    ) -> [Src<'b>; 2];
}

/// `a + b`: coefficients 1 and 1.
struct Sum;

impl Coefficients for Sum {
    #[inline(always)]
    fn block<'b, S: Simd>(
        &self,
        simd: S,
        a: Src<'b>,
        b: Src<'b>,
        out_p: &mut [f64],
        _: &'b mut [[f64; BLOCK]; 2],
    ) -> [Src<'b>; 2] {
        map::<S, 2, false>(simd, out_p, [a, b], |_, [a, b]| simd.add_f64s(a, b));
        [Src::Splat(1.0), Src::Splat(1.0)]
    }
}

/// `a - b`: coefficients 1 and -1.
struct Difference;

impl Coefficients for Difference {
    #[inline(always)]
    fn block<'b, S: Simd>(
        &self,
        simd: S,
        a: Src<'b>,
        b: Src<'b>,
        out_p: &mut [f64],
        _: &'b mut [[f64; BLOCK]; 2],
    ) -> [Src<'b>; 2] {
        map::<S, 2, false>(simd, out_p, [a, b], |_, [a, b]| simd.sub_f64s(a, b));
        [Src::Splat(1.0), Src::Splat(-1.0)]
    }
}

/// `a * b`: coefficients `b` and `a`, read straight from the operands.
struct Product;

impl Coefficients for Product {
    #[inline(always)]
    fn block<'b, S: Simd>(
        &self,
        simd: S,
        a: Src<'b>,
        b: Src<'b>,
        out_p: &mut [f64],
        _: &'b mut [[f64; BLOCK]; 2],
    ) -> [Src<'b>; 2] {
        map::<S, 2, false>(simd, out_p, [a, b], |_, [a, b]| simd.mul_f64s(a, b));
        [b, a]
    }
}

/// A scalar rule `(a, b) -> (f, df/da, df/db)`, called per element.
struct Rule<F>(F);

impl<F: Fn(f64, f64) -> (f64, f64, f64)> Coefficients for Rule<F> {
    #[inline(always)]
    fn block<'b, S: Simd>(
        &self,
        _: S,
        a: Src<'b>,
        b: Src<'b>,
        out_p: &mut [f64],
        buf: &'b mut [[f64; BLOCK]; 2],
    ) -> [Src<'b>; 2] {
        let len = out_p.len();
        let [da, db] = buf;
        let (da, db) = (&mut da[..len], &mut db[..len]);
        for (i, ((f, da), db)) in out_p.iter_mut().zip(&mut *da).zip(&mut *db).enumerate() {
            (*f, *da, *db) = (self.0)(a.get(i), b.get(i));
        }
        [Src::Slice(da), Src::Slice(db)]
    }
}

/// The body of `add`, `sub`, `mul` and `binary`; lengths already checked.
struct Linear<'a, C> {
    coefficients: C,
    a: Operand<'a>,
    b: Operand<'a>,
    k: usize,
    out_p: &'a mut [f64],
    out_t: &'a mut [f64],
}

impl<C: Coefficients> WithSimd for Linear<'_, C> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Linear {
            coefficients,
            a,
            b,
            k,
            out_p,
            out_t,
        } = self;
        let n = out_p.len();
        let mut buf = [[0.0; BLOCK]; 2];
        for start in (0..n).step_by(BLOCK) {
            let end = n.min(start + BLOCK);
            let [ca, cb] = coefficients.block(
                simd,
                a.primal().range(start, end),
                b.primal().range(start, end),
                &mut out_p[start..end],
                &mut buf,
            );
            for j in 0..k {
                let out = &mut out_t[j * n + start..j * n + end];
                match (
                    a.tangent_row(j, n, start, end),
                    b.tangent_row(j, n, start, end),
                ) {
                    (Some(ta), Some(tb)) => {
                        map::<S, 4, false>(simd, out, [ca, ta, cb, tb], |_, [ca, ta, cb, tb]| {
                            simd.mul_add_e_f64s(ca, ta, simd.mul_f64s(cb, tb))
                        })
                    }
                    (Some(ta), None) => {
                        map::<S, 2, false>(simd, out, [ca, ta], |_, [ca, ta]| simd.mul_f64s(ca, ta))
                    }
                    (None, Some(tb)) => {
                        map::<S, 2, false>(simd, out, [cb, tb], |_, [cb, tb]| simd.mul_f64s(cb, tb))
                    }
                    (None, None) => out.fill(0.0),
                }
            }
        }
    }
}

/// The body of `div`; lengths already checked.
struct Quotient<'a> {
    a: Operand<'a>,
    b: Operand<'a>,
    k: usize,
    out_p: &'a mut [f64],
    out_t: &'a mut [f64],
}

impl WithSimd for Quotient<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Quotient {
            a,
            b,
            k,
            out_p,
            out_t,
        } = self;
        let n = out_p.len();
        for start in (0..n).step_by(BLOCK) {
            let end = n.min(start + BLOCK);
            let pb = b.primal().range(start, end);
            let out_f = &mut out_p[start..end];
            map::<S, 2, false>(
                simd,
                out_f,
                [a.primal().range(start, end), pb],
                |_, [a, b]| simd.div_f64s(a, b),
            );
            let f = Src::Slice(out_f);
            for j in 0..k {
                let out = &mut out_t[j * n + start..j * n + end];
                match (
                    a.tangent_row(j, n, start, end),
                    b.tangent_row(j, n, start, end),
                ) {
                    (Some(ta), Some(tb)) => {
                        map::<S, 4, false>(simd, out, [ta, f, tb, pb], |_, [ta, f, tb, b]| {
                            simd.div_f64s(simd.negate_mul_add_e_f64s(f, tb, ta), b)
                        })
                    }
                    (Some(ta), None) => {
                        map::<S, 2, false>(simd, out, [ta, pb], |_, [ta, b]| simd.div_f64s(ta, b))
                    }
                    (None, Some(tb)) => {
                        map::<S, 3, false>(simd, out, [f, tb, pb], |_, [f, tb, b]| {
                            simd.div_f64s(simd.neg_f64s(simd.mul_f64s(f, tb)), b)
                        })
                    }
                    (None, None) => out.fill(0.0),
                }
            }
        }
    }
}
