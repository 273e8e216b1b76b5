//! Reductions of dual arrays: `sum` and `dot`.

use pulp::{Simd, WithSimd};

use super::dispatch::{run, Level};
use super::error::{check_primal, check_tangent};
use super::lanes::{sum_of, Src};
use super::{KernelError, Operand, BLOCK};

/// Sum of an array of duals.
///
/// Returns `sum_i p[i]` and writes `out_t[j] = sum_i t[j*n + i]` for the `k` tangent rows.
/// Summation runs in several SIMD accumulators, so the rounding differs from a sequential
/// loop (and is usually smaller).
///
/// # Errors
/// [`KernelError`] if `t` does not have `k * p.len()` values or `out_t` does not have `k`.
///
/// ```
/// use duals::kernels::sum;
/// let (p, t) = ([1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 0.0, 1.0, 2.0]);
/// let mut out_t = [0.0; 2];
/// assert_eq!(sum(&p, &t, 2, &mut out_t), Ok(6.0));
/// assert_eq!(out_t, [3.0, 3.0]);
/// ```
pub fn sum(p: &[f64], t: &[f64], k: usize, out_t: &mut [f64]) -> Result<f64, KernelError> {
    sum_with_level(Level::best(), p, t, k, out_t)
}

/// [`sum`] run with a given [`Level`].
///
/// # Errors
/// As [`sum`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn sum_with_level(
    level: Level,
    p: &[f64],
    t: &[f64],
    k: usize,
    out_t: &mut [f64],
) -> Result<f64, KernelError> {
    check_tangent("t", t.len(), k, p.len())?;
    check_primal("out_t", out_t.len(), k)?;
    run(level, Sum { p, t, out_t })
}

/// Dot product of two operands: `sum_i a[i] * b[i]`, with tangents
/// `out_t[j] = sum_i (ta[j, i] * b[i] + a[i] * tb[j, i])` (a constant's term left out).
///
/// At least one operand must be an array; its length is `n`, and a broadcast scalar stands for
/// `n` copies of itself. Partial sums are taken per block of 256 elements in several SIMD
/// accumulators, so the rounding differs from a sequential loop.
///
/// # Errors
/// [`KernelError::NoArrayOperand`] for two scalars, and a length error if the array operands
/// do not have the same length, an operand's tangent does not have `k` rows, or `out_t` does
/// not have `k` values.
///
/// ```
/// use duals::kernels::{dot, Operand};
/// // d/dx (x . c) = c . dx: x = [1, 2], dx = [1, 1], c = [3, 4]
/// let (p, t, c) = ([1.0, 2.0], [1.0, 1.0], [3.0, 4.0]);
/// let mut out_t = [0.0];
/// let x = Operand::Array { primal: &p, tangent: &t };
/// assert_eq!(dot(x, Operand::ArrayConst(&c), 1, &mut out_t), Ok(11.0));
/// assert_eq!(out_t, [7.0]);
/// ```
pub fn dot(
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_t: &mut [f64],
) -> Result<f64, KernelError> {
    dot_with_level(Level::best(), a, b, k, out_t)
}

/// [`dot`] run with a given [`Level`].
///
/// # Errors
/// As [`dot`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn dot_with_level(
    level: Level,
    a: Operand<'_>,
    b: Operand<'_>,
    k: usize,
    out_t: &mut [f64],
) -> Result<f64, KernelError> {
    let n = a
        .array_len()
        .or(b.array_len())
        .ok_or(KernelError::NoArrayOperand)?;
    a.check(["a.primal", "a.tangent"], n, k)?;
    b.check(["b.primal", "b.tangent"], n, k)?;
    check_primal("out_t", out_t.len(), k)?;
    run(level, Dot { a, b, n, out_t })
}

/// The body of [`sum`]; lengths already checked.
struct Sum<'a> {
    p: &'a [f64],
    t: &'a [f64],
    out_t: &'a mut [f64],
}

impl WithSimd for Sum<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f64 {
        let Sum { p, t, out_t } = self;
        let n = p.len();
        let add = |acc, [x]: [S::f64s; 1]| simd.add_f64s(acc, x);
        for (j, out) in out_t.iter_mut().enumerate() {
            *out = sum_of(simd, n, [Src::Slice(&t[j * n..(j + 1) * n])], add);
        }
        sum_of(simd, n, [Src::Slice(p)], add)
    }
}

/// The body of [`dot`]; lengths already checked, `n` the array length.
struct Dot<'a> {
    a: Operand<'a>,
    b: Operand<'a>,
    n: usize,
    out_t: &'a mut [f64],
}

impl WithSimd for Dot<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f64 {
        let Dot { a, b, n, out_t } = self;
        out_t.fill(0.0);
        let mut primal = 0.0;
        for start in (0..n).step_by(BLOCK) {
            let end = n.min(start + BLOCK);
            let len = end - start;
            let pa = a.primal().range(start, end);
            let pb = b.primal().range(start, end);
            primal += sum_of(simd, len, [pa, pb], |acc, [a, b]| {
                simd.mul_add_e_f64s(a, b, acc)
            });
            for (j, out) in out_t.iter_mut().enumerate() {
                *out += match (
                    a.tangent_row(j, n, start, end),
                    b.tangent_row(j, n, start, end),
                ) {
                    (Some(ta), Some(tb)) => {
                        sum_of(simd, len, [ta, pb, pa, tb], |acc, [ta, b, a, tb]| {
                            simd.mul_add_e_f64s(ta, b, simd.mul_add_e_f64s(a, tb, acc))
                        })
                    }
                    (Some(ta), None) => sum_of(simd, len, [ta, pb], |acc, [ta, b]| {
                        simd.mul_add_e_f64s(ta, b, acc)
                    }),
                    (None, Some(tb)) => sum_of(simd, len, [pa, tb], |acc, [a, tb]| {
                        simd.mul_add_e_f64s(a, tb, acc)
                    }),
                    (None, None) => 0.0,
                };
            }
        }
        primal
    }
}
