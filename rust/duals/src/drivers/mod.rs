//! Drivers: derivatives of whole functions, built on the number types.
//!
//! Rust closures cannot be generic, so a function that is to be evaluated on several number
//! types (one per chunk width, or first- and second-order types) is given as a value of a type
//! implementing [`ScalarFunction`] (`Rⁿ → R`) or [`VectorFunction`] (`Rⁿ → Rᵐ`, written in place
//! like an ODE right-hand side). Scalar functions of one variable take plain closures
//! ([`derivative`], [`second_derivative`]).
//!
//! | driver | gives | passes over `f` |
//! |---|---|---|
//! | [`derivative`] | `f'(x)` | 1 |
//! | [`second_derivative`] | `f''(x)` | 1 |
//! | [`gradient`] | `∇f(x)` | `⌈n/N⌉` |
//! | [`jacobian`] | `J[i][j] = ∂fᵢ/∂xⱼ` | `⌈n/N⌉` |
//! | [`jvp`] | `J v` | 1 |
//! | [`hessian`] | `∇²f(x)` | 1 (`Dual2`, small n) or `b(b+1)/2` blocks |
//! | [`hvp`] | `∇²f(x) v` | `⌈n/N⌉` |
//!
//! `N` is the chunk width, chosen from `n` or set in a [`Config`]; a config also holds the work
//! buffers, so repeated calls with one config do not allocate (except for the returned result;
//! the `_into` forms write into a given buffer and do not allocate at all).
//!
//! # SIMD
//!
//! The passes over `f` run under run-time CPU dispatch (AVX-512, AVX2+FMA or the baseline), so
//! the tangent arithmetic of `Dual<f64, N>` is compiled for the widest vectors the CPU has —
//! where `f`'s `eval` is inlined into the pass. Mark `eval` `#[inline(always)]` to make sure it
//! is: on the extended Rosenbrock gradient at n = 1000 (chunk 16) that halves the time
//! (532 µs → 261 µs on an AVX-512 machine). Without it `eval` is compiled for the baseline
//! x86-64 CPU (SSE2), unless the whole program is built with `-C target-cpu=...`.

mod config;
mod derivative;
mod error;
mod gradient;
mod hessian;
mod hvp;
mod jacobian;
mod jvp;
mod matrix;

pub use config::{Chunk, Config, HessianMethod, CHUNK_WIDTHS};
pub use derivative::{
    derivative, second_derivative, value_and_derivative, value_and_second_derivative,
};
pub use error::Error;
pub use gradient::{gradient, gradient_into, value_and_gradient};
pub use hessian::{hessian, hessian_into, value_gradient_and_hessian};
pub use hvp::{hvp, hvp_into};
pub use jacobian::{jacobian, jacobian_into, value_and_jacobian};
pub use jvp::{jvp, jvp_into};
pub use matrix::Matrix;

use crate::number::{DualNum, Real};

/// A function `Rⁿ → R`, written once for every number type.
///
/// ```
/// use duals::{DualNum, ScalarFunction};
/// /// The extended Rosenbrock function.
/// struct Rosenbrock;
/// impl ScalarFunction<f64> for Rosenbrock {
///     #[inline(always)]
///     fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
///         x.windows(2)
///             .map(|w| (w[1] - w[0] * w[0]).powi(2) * 100.0 + (-w[0] + 1.0).powi(2))
///             .sum()
///     }
/// }
/// let g = duals::gradient(&Rosenbrock, &[1.0, 1.0], &mut duals::Config::new()).unwrap();
/// assert_eq!(g, vec![0.0, 0.0]); // the minimum
/// ```
pub trait ScalarFunction<F: Real> {
    /// `f(x)`.
    fn eval<D: DualNum<F>>(&self, x: &[D]) -> D;
}

/// A function `Rⁿ → Rᵐ` that writes its value into a buffer, as an ODE right-hand side
/// `f(y, dy)` does.
///
/// ```
/// use duals::{DualNum, VectorFunction};
/// /// The Robertson chemical kinetics right-hand side.
/// struct Robertson { k1: f64, k2: f64, k3: f64 }
/// impl VectorFunction<f64> for Robertson {
///     #[inline(always)]
///     fn eval<D: DualNum<f64>>(&self, y: &[D], dy: &mut [D]) {
///         dy[0] = y[0] * -self.k1 + y[1] * y[2] * self.k3;
///         dy[1] = y[0] * self.k1 - y[1] * y[2] * self.k3 - y[1] * y[1] * self.k2;
///         dy[2] = y[1] * y[1] * self.k2;
///     }
/// }
/// let f = Robertson { k1: 0.04, k2: 3e7, k3: 1e4 };
/// let j = duals::jacobian(&f, &[1.0, 0.0, 0.0], &mut duals::Config::new()).unwrap();
/// assert_eq!(j.row(0), &[-0.04, 0.0, 0.0]);
/// ```
pub trait VectorFunction<F: Real> {
    /// `dy = f(y)`; `dy` has length [`output_len`](Self::output_len)`(y.len())` and arrives
    /// filled with zeros.
    fn eval<D: DualNum<F>>(&self, y: &[D], dy: &mut [D]);

    /// The output length `m` for an input of length `n`; `n` unless overridden.
    fn output_len(&self, n: usize) -> usize {
        n
    }
}
