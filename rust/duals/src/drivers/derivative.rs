//! Derivatives of scalar functions of one variable.

use crate::number::{Dual, HyperDual, Real};

/// `f'(x)` for `f: R → R`, exact, in one evaluation on a [`Dual64`](crate::Dual64).
///
/// ```
/// use duals::DualNum;
/// let d = duals::derivative(|x| x.powi(3), 2.0);
/// assert_eq!(d, 12.0); // 3 x²
/// ```
pub fn derivative<F: Real>(f: impl Fn(Dual<F, F, 1>) -> Dual<F, F, 1>, x: F) -> F {
    value_and_derivative(f, x).1
}

/// `(f(x), f'(x))` in one evaluation.
pub fn value_and_derivative<F: Real>(f: impl Fn(Dual<F, F, 1>) -> Dual<F, F, 1>, x: F) -> (F, F) {
    let y = f(Dual::variable(x));
    (y.re, y.eps[0])
}

/// `f''(x)` for `f: R → R`, exact, in one evaluation on a [`HyperDual64`](crate::HyperDual64).
///
/// ```
/// use duals::DualNum;
/// let d2 = duals::second_derivative(|x| x.sin() * x, 0.5);
/// assert!((d2 - (2.0 * 0.5_f64.cos() - 0.5 * 0.5_f64.sin())).abs() < 1e-15); // 2 cos x - x sin x
/// ```
pub fn second_derivative<F: Real>(f: impl Fn(HyperDual<F, F>) -> HyperDual<F, F>, x: F) -> F {
    value_and_second_derivative(f, x).2
}

/// `(f(x), f'(x), f''(x))` in one evaluation.
pub fn value_and_second_derivative<F: Real>(
    f: impl Fn(HyperDual<F, F>) -> HyperDual<F, F>,
    x: F,
) -> (F, F, F) {
    let y = f(HyperDual::variable(x));
    (y.re, y.eps1[0], y.eps12[0][0])
}
