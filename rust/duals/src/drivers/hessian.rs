//! Hessians of `Rⁿ → R` by second-order seeding.
//!
//! A Hessian is not a second engine: each method seeds one of the second-order number types
//! and reads the second-order part back.

use crate::number::{Dual, Dual2, DualNum, HyperDualVec, Real};

use super::config::{alloc_result, check_len, dispatch, Passes};
use super::{Config, Error, HessianMethod, Matrix, ScalarFunction};

/// Block width of the hyper-dual method.
const BLOCK: usize = 4;
/// Largest `n` the one-pass `Dual2` method takes.
const DUAL2_MAX: usize = 8;
/// Largest `n` for which `Auto` picks `Dual2`: above it hyper-dual blocks are faster (`Dual2`
/// carries the full `n × n` block, symmetric half included; measured at n = 8: 1.27 vs 0.93 µs).
const DUAL2_AUTO_MAX: usize = 4;

/// The Hessian `H[(i, j)] = ∂²f/∂xᵢ∂xⱼ` (`n × n`, symmetric), exact.
///
/// The method comes from `cfg` ([`HessianMethod`]): one pass of `Dual2` for `n ≤ 4`, else the
/// upper-triangular `4 × 4` blocks of hyper-dual numbers (`b(b+1)/2` passes, `b = ⌈n/4⌉`), and
/// the lower triangle mirrored, so the result is exactly symmetric.
///
/// ```
/// use duals::{DualNum, ScalarFunction};
/// struct F; // f(x, y) = x² y + sin y
/// impl ScalarFunction<f64> for F {
///     fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
///         x[0] * x[0] * x[1] + x[1].sin()
///     }
/// }
/// let h = duals::hessian(&F, &[1.0, 0.0], &mut duals::Config::new()).unwrap();
/// assert_eq!(h.as_slice(), &[0.0, 2.0, 2.0, 0.0]); // [[2y, 2x], [2x, -sin y]]
/// ```
pub fn hessian<F: Real, G: ScalarFunction<F>>(
    f: &G,
    x: &[F],
    cfg: &mut Config<F>,
) -> Result<Matrix<F>, Error> {
    Ok(value_gradient_and_hessian(f, x, cfg)?.2)
}

/// `(f(x), ∇f(x), ∇²f(x))` from the same passes.
pub fn value_gradient_and_hessian<F: Real, G: ScalarFunction<F>>(
    f: &G,
    x: &[F],
    cfg: &mut Config<F>,
) -> Result<(F, Vec<F>, Matrix<F>), Error> {
    let n = x.len();
    let mut h = alloc_result(n, n)?;
    let mut g = vec![F::from_f64(0.0); n];
    let v = hessian_into(f, x, &mut g, &mut h, cfg)?;
    Ok((
        v,
        g,
        Matrix::from_row_major(n, n, h).expect("allocated n * n"),
    ))
}

/// `∇f(x)` into `grad` (length `n`) and `∇²f(x)` into `hess` (row-major, `n²`); returns `f(x)`.
pub fn hessian_into<F: Real, G: ScalarFunction<F>>(
    f: &G,
    x: &[F],
    grad: &mut [F],
    hess: &mut [F],
    cfg: &mut Config<F>,
) -> Result<F, Error> {
    let n = x.len();
    check_len("grad", n, grad.len())?;
    check_len("hess", n * n, hess.len())?;
    let method = match cfg.hessian_method() {
        HessianMethod::Auto if n <= DUAL2_AUTO_MAX => HessianMethod::Dual2,
        HessianMethod::Auto => HessianMethod::HyperDual,
        HessianMethod::Dual2 if n > DUAL2_MAX => {
            return Err(Error::LengthMismatch {
                argument: "x (Dual2 Hessian)",
                expected: DUAL2_MAX,
                found: n,
            })
        }
        m => m,
    };
    Ok(dispatch(HessianPasses {
        f,
        x,
        grad,
        hess,
        method,
    }))
}

struct HessianPasses<'a, F: Real, G> {
    f: &'a G,
    x: &'a [F],
    grad: &'a mut [F],
    hess: &'a mut [F],
    method: HessianMethod,
}

impl<F: Real, G: ScalarFunction<F>> Passes for HessianPasses<'_, F, G> {
    type Output = F;
    #[inline(always)]
    fn run(self) -> F {
        let Self {
            f,
            x,
            grad,
            hess,
            method,
        } = self;
        match method {
            HessianMethod::Dual2 => match x.len() {
                0..=1 => by_dual2::<F, G, 1>(f, x, grad, hess),
                2 => by_dual2::<F, G, 2>(f, x, grad, hess),
                3..=4 => by_dual2::<F, G, 4>(f, x, grad, hess),
                _ => by_dual2::<F, G, 8>(f, x, grad, hess),
            },
            HessianMethod::Nested => by_nesting(f, x, grad, hess),
            _ => by_hyperdual_blocks(f, x, grad, hess),
        }
    }
}

/// One pass of `Dual2<F, N>` with input `i` seeded as direction `i`.
fn by_dual2<F: Real, G: ScalarFunction<F>, const N: usize>(
    f: &G,
    x: &[F],
    grad: &mut [F],
    hess: &mut [F],
) -> F {
    let n = x.len();
    let xs: Vec<Dual2<F, F, N>> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| Dual2::seeded(v, i))
        .collect();
    let y = f.eval(&xs);
    for i in 0..n {
        grad[i] = y.v1[i];
        for j in i..n {
            hess[i * n + j] = y.v2[i][j];
            hess[j * n + i] = y.v2[i][j];
        }
    }
    y.re
}

/// Upper-triangular blocks: block `I` seeded in `ε₁`, block `J ≥ I` in `ε₂`.
fn by_hyperdual_blocks<F: Real, G: ScalarFunction<F>>(
    f: &G,
    x: &[F],
    grad: &mut [F],
    hess: &mut [F],
) -> F {
    type H<F> = HyperDualVec<F, F, BLOCK, BLOCK>;
    let n = x.len();
    let mut xs: Vec<H<F>> = x.iter().map(|&v| H::constant(v)).collect();
    if n == 0 {
        return f.eval(&xs).re;
    }
    let mut value = F::from_f64(0.0);
    for bi in (0..n).step_by(BLOCK) {
        for bj in (bi..n).step_by(BLOCK) {
            for (k, xk) in xs.iter_mut().enumerate().skip(bi).take(BLOCK) {
                xk.eps1[k - bi] = F::from_f64(1.0);
            }
            for (k, xk) in xs.iter_mut().enumerate().skip(bj).take(BLOCK) {
                xk.eps2[k - bj] = F::from_f64(1.0);
            }
            let y = f.eval(&xs);
            value = y.re;
            for p in 0..BLOCK.min(n - bi) {
                if bj == bi {
                    grad[bi + p] = y.eps1[p];
                }
                for q in 0..BLOCK.min(n - bj) {
                    let (i, j) = (bi + p, bj + q);
                    if j >= i {
                        hess[i * n + j] = y.eps12[p][q];
                        hess[j * n + i] = y.eps12[p][q];
                    }
                }
            }
            for xk in xs.iter_mut().skip(bi).take(BLOCK) {
                xk.eps1 = [F::from_f64(0.0); BLOCK];
            }
            for xk in xs.iter_mut().skip(bj).take(BLOCK) {
                xk.eps2 = [F::from_f64(0.0); BLOCK];
            }
        }
    }
    value
}

/// Nested duals: the outer tangent seeds `i`, the inner one `j`; `n(n+1)/2` passes.
fn by_nesting<F: Real, G: ScalarFunction<F>>(f: &G, x: &[F], grad: &mut [F], hess: &mut [F]) -> F {
    type N2<F> = Dual<Dual<F, F, 1>, F, 1>;
    let n = x.len();
    let unit = |k: usize, i: usize| {
        if k == i {
            F::from_f64(1.0)
        } else {
            F::from_f64(0.0)
        }
    };
    let mut value = f
        .eval(&x.iter().map(|&v| N2::<F>::from_re(v)).collect::<Vec<_>>())
        .re
        .re;
    for i in 0..n {
        for j in i..n {
            let xs: Vec<N2<F>> = x
                .iter()
                .enumerate()
                .map(|(k, &v)| {
                    Dual::new(
                        Dual::new(v, [unit(k, j)]),
                        [Dual::new(unit(k, i), [F::from_f64(0.0)])],
                    )
                })
                .collect();
            let y = f.eval(&xs);
            value = y.re.re;
            if i == j {
                grad[i] = y.eps[0].re;
            }
            hess[i * n + j] = y.eps[0].eps[0];
            hess[j * n + i] = y.eps[0].eps[0];
        }
    }
    value
}
