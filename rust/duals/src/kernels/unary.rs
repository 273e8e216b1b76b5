//! Fused unary kernels: `f(a)` and `f'(a) * ta` in one pass.
//!
//! [`unary`] takes any rule as a scalar closure. [`unary_rule`] takes an entry of the table;
//! for the entries whose value and derivative are built from the vectorized functions of
//! [`super::vmath`] (`exp`, `exp_m1`, `ln`, `ln_1p`, `sin`, `cos`) or from single IEEE
//! operations (`recip`, `sqrt`, `powi(2)`) it evaluates them a whole vector at a time, and
//! otherwise calls the entry per element as [`unary`] does.

use pulp::{Simd, WithSimd};

use super::dispatch::{run, Level};
use super::error::{check_primal, check_tangent};
use super::lanes::{map, map_fn, map_fn_tangent, LaneFn, Src};
use super::vmath;
use super::{KernelError, BLOCK};

/// Applies a differentiable scalar function to an array of duals.
///
/// `rule(a)` returns `(f(a), f'(a))` from one evaluation (for `sin`: `let (s, c) =
/// a.sin_cos(); (s, c)`). With `n = p.len()`:
///
/// - `out_p[i] = f(p[i])`
/// - `out_t[j*n + i] = f'(p[i]) * t[j*n + i]` for each of the `k` tangent rows.
///
/// The rule is called once per element, in order, on blocks of 256 elements whose derivatives
/// are kept on the stack; each tangent row of the block is then scaled with SIMD. One pass over
/// memory, no heap allocation.
///
/// # Errors
/// [`KernelError`] if `t`, `out_p` or `out_t` do not have lengths `k*n`, `n`, `k*n`.
///
/// ```
/// use duals::kernels::unary;
/// // d/dx sin x = cos x, seeded with dx = 1
/// let (p, t) = ([0.0, 1.0], [1.0, 1.0]);
/// let (mut out_p, mut out_t) = ([0.0; 2], [0.0; 2]);
/// unary(|x: f64| x.sin_cos(), &p, &t, 1, &mut out_p, &mut out_t).unwrap();
/// assert_eq!(out_t, [1.0, 1.0_f64.cos()]);
/// ```
pub fn unary<F>(
    rule: F,
    p: &[f64],
    t: &[f64],
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError>
where
    F: Fn(f64) -> (f64, f64),
{
    unary_with_level(Level::best(), rule, p, t, k, out_p, out_t)
}

/// [`unary`] run with a given [`Level`].
///
/// # Errors
/// As [`unary`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn unary_with_level<F>(
    level: Level,
    rule: F,
    p: &[f64],
    t: &[f64],
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError>
where
    F: Fn(f64) -> (f64, f64),
{
    let n = p.len();
    check_tangent("t", t.len(), k, n)?;
    check_primal("out_p", out_p.len(), n)?;
    check_tangent("out_t", out_t.len(), k, n)?;
    run(
        level,
        Unary {
            rule,
            p,
            t,
            k,
            out_p,
            out_t,
        },
    )
}

/// [`unary`] in place: `p[i] = f(p[i])`, `t[j*n + i] = f'(p[i]) * t[j*n + i]`.
///
/// # Errors
/// [`KernelError`] if `t.len() != k * p.len()`.
pub fn unary_inplace<F>(rule: F, p: &mut [f64], t: &mut [f64], k: usize) -> Result<(), KernelError>
where
    F: Fn(f64) -> (f64, f64),
{
    unary_inplace_with_level(Level::best(), rule, p, t, k)
}

/// [`unary_inplace`] run with a given [`Level`].
///
/// # Errors
/// As [`unary_inplace`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn unary_inplace_with_level<F>(
    level: Level,
    rule: F,
    p: &mut [f64],
    t: &mut [f64],
    k: usize,
) -> Result<(), KernelError>
where
    F: Fn(f64) -> (f64, f64),
{
    check_tangent("t", t.len(), k, p.len())?;
    run(level, UnaryInplace { rule, p, t, k })
}

/// The body of [`unary`]; lengths already checked.
struct Unary<'a, F> {
    rule: F,
    p: &'a [f64],
    t: &'a [f64],
    k: usize,
    out_p: &'a mut [f64],
    out_t: &'a mut [f64],
}

impl<F: Fn(f64) -> (f64, f64)> WithSimd for Unary<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Unary {
            rule,
            p,
            t,
            k,
            out_p,
            out_t,
        } = self;
        let n = p.len();
        let mut df = [0.0; BLOCK];
        for start in (0..n).step_by(BLOCK) {
            let end = n.min(start + BLOCK);
            let df = &mut df[..end - start];
            for ((f, d), &a) in out_p[start..end]
                .iter_mut()
                .zip(&mut *df)
                .zip(&p[start..end])
            {
                (*f, *d) = rule(a);
            }
            scale_rows(simd, df, t, out_t, k, n, start, end);
        }
    }
}

/// `out_t[j*n + i] = df[i - start] * t[j*n + i]` for the `k` rows and `i` in `start..end`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn scale_rows<S: Simd>(
    simd: S,
    df: &[f64],
    t: &[f64],
    out_t: &mut [f64],
    k: usize,
    n: usize,
    start: usize,
    end: usize,
) {
    let df = Src::Slice(df);
    for j in 0..k {
        let row = j * n + start..j * n + end;
        map::<S, 2, false>(
            simd,
            &mut out_t[row.clone()],
            [df, Src::Slice(&t[row])],
            |_, [d, ta]| simd.mul_f64s(d, ta),
        );
    }
}

/// The body of [`unary_inplace`]; lengths already checked.
struct UnaryInplace<'a, F> {
    rule: F,
    p: &'a mut [f64],
    t: &'a mut [f64],
    k: usize,
}

impl<F: Fn(f64) -> (f64, f64)> WithSimd for UnaryInplace<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let UnaryInplace { rule, p, t, k } = self;
        let n = p.len();
        let mut df = [0.0; BLOCK];
        for start in (0..n).step_by(BLOCK) {
            let end = n.min(start + BLOCK);
            let df = &mut df[..end - start];
            for (a, d) in p[start..end].iter_mut().zip(&mut *df) {
                (*a, *d) = rule(*a);
            }
            let df = Src::Slice(df);
            for j in 0..k {
                map::<S, 1, true>(simd, &mut t[j * n + start..j * n + end], [df], |ta, [d]| {
                    simd.mul_f64s(d, ta)
                });
            }
        }
    }
}

/// [`unary`] with a rule of the table chosen at run time: the rule is matched once and the
/// kernel runs monomorphized for it.
///
/// At the vector levels, `exp`, `exp_m1`, `ln`, `ln_1p`, `sin` and `cos` are evaluated a vector
/// at a time with the SIMD functions behind [`math`](super::math): value and derivative are
/// then within one ulp of the exact ones (and of the table entry's), not always bit-identical
/// to the entry's (NaN, infinities, zeros and other special inputs give exactly the entry's
/// results).
/// `recip`, `sqrt` and `powi` with `n = 2` are evaluated a vector at a time with the entry's
/// own operations (bit-identical). Every other rule, and every rule at [`Level::Scalar`], calls
/// the entry per element. (`tanh` among them: the vectorized one is more accurate than the
/// platform's, 0.52 against up to 2 ulp, so the two differ by an ulp or two, which sums that
/// cancel turn into relative differences the batch tests of tapes reject.)
///
/// ```
/// use duals::kernels::unary_rule;
/// use duals::rules::UnaryRule;
/// let (p, t) = ([0.0, 1.0], [1.0, 1.0]);
/// let (mut out_p, mut out_t) = ([0.0; 2], [0.0; 2]);
/// unary_rule(UnaryRule::Exp, &p, &t, 1, &mut out_p, &mut out_t).unwrap();
/// assert_eq!(out_t[0], 1.0);
/// assert!((out_t[1] - 1.0_f64.exp()).abs() <= f64::EPSILON * out_t[1]);
/// ```
///
/// # Errors
/// As [`unary`].
pub fn unary_rule(
    rule: crate::rules::UnaryRule,
    p: &[f64],
    t: &[f64],
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    unary_rule_with_level(Level::best(), rule, p, t, k, out_p, out_t)
}

/// [`unary_rule`] run with a given [`Level`].
///
/// # Errors
/// As [`unary`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn unary_rule_with_level(
    level: Level,
    rule: crate::rules::UnaryRule,
    p: &[f64],
    t: &[f64],
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    use crate::rules::{self as r, UnaryRule as U};
    macro_rules! go {
        ($f:expr) => {
            unary_with_level(
                level,
                |a: f64| {
                    let u = $f(a);
                    (u.f, u.d1)
                },
                p,
                t,
                k,
                out_p,
                out_t,
            )
        };
    }
    macro_rules! simd {
        ($rule:ident) => {
            unary_simd(level, SimdRule::$rule, p, t, k, out_p, out_t)
        };
    }
    // The vectorized elementary functions gain their speed from width: at the scalar level
    // (one lane, and an FMA is a library call on x86 without it) the table's libm calls are
    // faster, so there the entries run per element, as every other rule does.
    let vector = level != Level::Scalar;
    macro_rules! math {
        ($rule:ident, $entry:expr) => {
            if vector {
                simd!($rule)
            } else {
                go!($entry)
            }
        };
    }
    macro_rules! constant {
        ($f:path) => {
            unary_with_level(level, |a: f64| ($f(a), 0.0), p, t, k, out_p, out_t)
        };
    }
    match rule {
        U::Recip => simd!(Recip),
        U::Powi(2) => simd!(Square),
        U::Powi(n) => go!(|a| r::powi::<f64, f64>(a, n)),
        U::Powf(e) => go!(|a| r::powf::<f64, f64>(a, e)),
        U::Sqrt => simd!(Sqrt),
        U::Cbrt => go!(r::cbrt::<f64, f64>),
        U::Exp => math!(Exp, r::exp::<f64, f64>),
        U::Exp2 => go!(r::exp2::<f64, f64>),
        U::ExpM1 => math!(ExpM1, r::exp_m1::<f64, f64>),
        U::Ln => math!(Ln, r::ln::<f64, f64>),
        U::Log2 => go!(r::log2::<f64, f64>),
        U::Log10 => go!(r::log10::<f64, f64>),
        U::Ln1p => math!(Ln1p, r::ln_1p::<f64, f64>),
        U::Sin => math!(Sin, r::sin::<f64, f64>),
        U::Cos => math!(Cos, r::cos::<f64, f64>),
        U::Tan => go!(r::tan::<f64, f64>),
        U::Asin => go!(r::asin::<f64, f64>),
        U::Acos => go!(r::acos::<f64, f64>),
        U::Atan => go!(r::atan::<f64, f64>),
        U::Sinh => go!(r::sinh::<f64, f64>),
        U::Cosh => go!(r::cosh::<f64, f64>),
        U::Tanh => go!(r::tanh::<f64, f64>),
        U::Asinh => go!(r::asinh::<f64, f64>),
        U::Acosh => go!(r::acosh::<f64, f64>),
        U::Atanh => go!(r::atanh::<f64, f64>),
        U::Abs => go!(r::abs::<f64, f64>),
        U::Erf => go!(r::erf::<f64, f64>),
        U::Erfc => go!(r::erfc::<f64, f64>),
        U::Floor => constant!(f64::floor),
        U::Ceil => constant!(f64::ceil),
        U::Round => constant!(f64::round),
        U::Trunc => constant!(f64::trunc),
        U::Signum => constant!(f64::signum),
    }
}

// ---------------------------------------------------------------------------------------------
// Rules with a SIMD body
// ---------------------------------------------------------------------------------------------

/// The table entries [`unary_rule`] evaluates a vector at a time: with [`super::vmath`], or
/// (`Square`, `Recip`, `Sqrt`) with the entry's own IEEE operations, bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SimdRule {
    Square,
    Recip,
    Sqrt,
    Exp,
    ExpM1,
    Ln,
    Ln1p,
    Sin,
    Cos,
}

/// The SIMD body of a rule of the table, if it has one (the rules [`unary_rule`] evaluates a
/// vector at a time at the vector levels).
pub(crate) fn simd_rule(rule: crate::rules::UnaryRule) -> Option<SimdRule> {
    use crate::rules::UnaryRule as U;
    Some(match rule {
        U::Recip => SimdRule::Recip,
        U::Powi(2) => SimdRule::Square,
        U::Sqrt => SimdRule::Sqrt,
        U::Exp => SimdRule::Exp,
        U::ExpM1 => SimdRule::ExpM1,
        U::Ln => SimdRule::Ln,
        U::Ln1p => SimdRule::Ln1p,
        U::Sin => SimdRule::Sin,
        U::Cos => SimdRule::Cos,
        _ => return None,
    })
}

/// [`unary_rule`] for an entry with a SIMD body.
fn unary_simd(
    level: Level,
    rule: SimdRule,
    p: &[f64],
    t: &[f64],
    k: usize,
    out_p: &mut [f64],
    out_t: &mut [f64],
) -> Result<(), KernelError> {
    let n = p.len();
    check_tangent("t", t.len(), k, n)?;
    check_primal("out_p", out_p.len(), n)?;
    check_tangent("out_t", out_t.len(), k, n)?;
    match rule {
        SimdRule::Square => run(level, UnarySimd::new(Square, p, t, k, out_p, out_t)),
        SimdRule::Recip => run(level, UnarySimd::new(Recip, p, t, k, out_p, out_t)),
        SimdRule::Sqrt => run(level, UnarySimd::new(Sqrt, p, t, k, out_p, out_t)),
        SimdRule::Exp => run(level, UnarySimd::new(Exp, p, t, k, out_p, out_t)),
        SimdRule::ExpM1 => run(level, UnarySimd::new(ExpM1, p, t, k, out_p, out_t)),
        SimdRule::Ln => run(level, UnarySimd::new(Ln, p, t, k, out_p, out_t)),
        SimdRule::Ln1p => run(level, UnarySimd::new(Ln1p, p, t, k, out_p, out_t)),
        SimdRule::Sin => run(level, UnarySimd::new(Sin, p, t, k, out_p, out_t)),
        SimdRule::Cos => run(level, UnarySimd::new(Cos, p, t, k, out_p, out_t)),
    }
}

// Each entry below is a [`LaneFn`] giving `(f, f')` of every lane: the entry's own operations
// (bit-identical) or the functions of `vmath` (within one ulp of the exact values, and equal
// to the entry's on special inputs).

/// [`crate::rules::powi`] with `n = 2`: `(a·a, a·2)`.
#[derive(Clone, Copy)]
pub(super) struct Square;
impl LaneFn for Square {
    #[inline(always)]
    fn eval<S: Simd>(self, simd: S, a: S::f64s) -> (S::f64s, S::f64s) {
        (simd.mul_f64s(a, a), simd.mul_f64s(a, simd.splat_f64s(2.0)))
    }
}

/// [`crate::rules::recip`]: `f = 1/a`, `(f, -(f·f))`.
#[derive(Clone, Copy)]
pub(super) struct Recip;
impl LaneFn for Recip {
    #[inline(always)]
    fn eval<S: Simd>(self, simd: S, a: S::f64s) -> (S::f64s, S::f64s) {
        let f = simd.div_f64s(simd.splat_f64s(1.0), a);
        (f, simd.neg_f64s(simd.mul_f64s(f, f)))
    }
}

/// [`crate::rules::sqrt`]: `f = √a`, `(f, 1/(f·2 + 0))` (`+ 0` turns the `-0` of `√-0` into
/// `+0`, so the derivative at 0 is `+inf`).
#[derive(Clone, Copy)]
pub(super) struct Sqrt;
impl LaneFn for Sqrt {
    #[inline(always)]
    fn eval<S: Simd>(self, simd: S, a: S::f64s) -> (S::f64s, S::f64s) {
        let f = simd.sqrt_f64s(a);
        let twice = simd.add_f64s(simd.mul_f64s(f, simd.splat_f64s(2.0)), simd.splat_f64s(0.0));
        (f, simd.div_f64s(simd.splat_f64s(1.0), twice))
    }
}

/// [`crate::rules::exp`]: `(eᵃ, eᵃ)`.
#[derive(Clone, Copy)]
pub(super) struct Exp;
impl LaneFn for Exp {
    #[inline(always)]
    fn eval<S: Simd>(self, simd: S, a: S::f64s) -> (S::f64s, S::f64s) {
        let e = vmath::exp(simd, a);
        (e, e)
    }
}

/// [`crate::rules::exp_m1`]: `(eᵃ - 1, eᵃ)` (two reductions of `a`: a few operations next to
/// the memory streams).
#[derive(Clone, Copy)]
pub(super) struct ExpM1;
impl LaneFn for ExpM1 {
    #[inline(always)]
    fn eval<S: Simd>(self, simd: S, a: S::f64s) -> (S::f64s, S::f64s) {
        (vmath::exp_m1(simd, a), vmath::exp(simd, a))
    }
}

/// [`crate::rules::ln`]: `(ln a, 1/a)`.
#[derive(Clone, Copy)]
pub(super) struct Ln;
impl LaneFn for Ln {
    #[inline(always)]
    fn eval<S: Simd>(self, simd: S, a: S::f64s) -> (S::f64s, S::f64s) {
        (vmath::ln(simd, a), simd.div_f64s(simd.splat_f64s(1.0), a))
    }

    #[inline(always)]
    fn second<S: Simd>(self, simd: S, a: S::f64s) -> S::f64s {
        simd.div_f64s(simd.splat_f64s(1.0), a)
    }
}

/// [`crate::rules::ln_1p`]: `(ln(1 + a), 1/(1 + a))`.
#[derive(Clone, Copy)]
pub(super) struct Ln1p;
impl LaneFn for Ln1p {
    #[inline(always)]
    fn eval<S: Simd>(self, simd: S, a: S::f64s) -> (S::f64s, S::f64s) {
        vmath::ln_1p(simd, a)
    }

    #[inline(always)]
    fn second<S: Simd>(self, simd: S, a: S::f64s) -> S::f64s {
        vmath::ln_1p_derivative(simd, a)
    }
}

/// [`crate::rules::sin`]: `(sin a, cos a)`.
#[derive(Clone, Copy)]
pub(super) struct Sin;
impl LaneFn for Sin {
    #[inline(always)]
    fn eval<S: Simd>(self, simd: S, a: S::f64s) -> (S::f64s, S::f64s) {
        vmath::sin_cos_v(simd, a)
    }
}

/// [`crate::rules::cos`]: `(cos a, -sin a)`.
#[derive(Clone, Copy)]
pub(super) struct Cos;
impl LaneFn for Cos {
    #[inline(always)]
    fn eval<S: Simd>(self, simd: S, a: S::f64s) -> (S::f64s, S::f64s) {
        let (s, c) = vmath::sin_cos_v(simd, a);
        (c, simd.neg_f64s(s))
    }
}

/// The body of [`unary_rule`] for an entry with a SIMD body ([`LaneFn`]); lengths already
/// checked. As [`Unary`], with the per-element rule replaced by whole vectors, and with one
/// tangent row in a single pass.
struct UnarySimd<'a, R> {
    rule: R,
    p: &'a [f64],
    t: &'a [f64],
    k: usize,
    out_p: &'a mut [f64],
    out_t: &'a mut [f64],
}

impl<'a, R> UnarySimd<'a, R> {
    fn new(
        rule: R,
        p: &'a [f64],
        t: &'a [f64],
        k: usize,
        out_p: &'a mut [f64],
        out_t: &'a mut [f64],
    ) -> Self {
        UnarySimd {
            rule,
            p,
            t,
            k,
            out_p,
            out_t,
        }
    }
}

impl<R: LaneFn> WithSimd for UnarySimd<'_, R> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let UnarySimd {
            rule,
            p,
            t,
            k,
            out_p,
            out_t,
        } = self;
        let n = p.len();
        if k == 1 {
            // One tangent row: value, derivative and tangent in one pass, nothing staged.
            map_fn_tangent(simd, rule, p, t, out_p, out_t);
            return;
        }
        let mut df = [0.0; BLOCK];
        for start in (0..n).step_by(BLOCK) {
            let end = n.min(start + BLOCK);
            let df = &mut df[..end - start];
            map_fn(simd, rule, &p[start..end], &mut out_p[start..end], Some(df));
            scale_rows(simd, df, t, out_t, k, n, start, end);
        }
    }
}
