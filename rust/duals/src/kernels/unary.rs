//! Fused unary kernels: `f(a)` and `f'(a) * ta` in one pass.

use pulp::{Simd, WithSimd};

use super::dispatch::{run, Level};
use super::error::{check_primal, check_tangent};
use super::lanes::{map, Src};
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
/// kernel runs monomorphized for it, so the per-element work is the rule's own arithmetic.
///
/// ```
/// use duals::kernels::unary_rule;
/// use duals::rules::UnaryRule;
/// let (p, t) = ([0.0, 1.0], [1.0, 1.0]);
/// let (mut out_p, mut out_t) = ([0.0; 2], [0.0; 2]);
/// unary_rule(UnaryRule::Exp, &p, &t, 1, &mut out_p, &mut out_t).unwrap();
/// assert_eq!(out_t, [1.0, 1.0_f64.exp()]);
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
    use crate::rules::{self as r, UnaryRule as U};
    macro_rules! go {
        ($f:expr) => {
            unary(
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
    let zero = |f: f64| (f, 0.0);
    match rule {
        U::Recip => go!(r::recip::<f64, f64>),
        U::Powi(n) => go!(|a| r::powi::<f64, f64>(a, n)),
        U::Powf(e) => go!(|a| r::powf::<f64, f64>(a, e)),
        U::Sqrt => go!(r::sqrt::<f64, f64>),
        U::Cbrt => go!(r::cbrt::<f64, f64>),
        U::Exp => go!(r::exp::<f64, f64>),
        U::Exp2 => go!(r::exp2::<f64, f64>),
        U::ExpM1 => go!(r::exp_m1::<f64, f64>),
        U::Ln => go!(r::ln::<f64, f64>),
        U::Log2 => go!(r::log2::<f64, f64>),
        U::Log10 => go!(r::log10::<f64, f64>),
        U::Ln1p => go!(r::ln_1p::<f64, f64>),
        U::Sin => go!(r::sin::<f64, f64>),
        U::Cos => go!(r::cos::<f64, f64>),
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
        U::Floor => unary(|a: f64| zero(a.floor()), p, t, k, out_p, out_t),
        U::Ceil => unary(|a: f64| zero(a.ceil()), p, t, k, out_p, out_t),
        U::Round => unary(|a: f64| zero(a.round()), p, t, k, out_p, out_t),
        U::Trunc => unary(|a: f64| zero(a.trunc()), p, t, k, out_p, out_t),
        U::Signum => unary(|a: f64| zero(a.signum()), p, t, k, out_p, out_t),
    }
}
