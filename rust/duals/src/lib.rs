//! Exact forward-mode derivatives: dual, hyper-dual and second-order numbers.
//!
//! - [`number`]: the number types ([`Dual`], [`HyperDualVec`], [`Dual2`]) and the one trait
//!   they share, [`DualNum`]; write a function once, generically, and evaluate it on any of them.
//!   [`DualDyn`] is a dual number whose tangent count is chosen at run time (for bindings).
//! - [`rules`]: every elementary function once, with its value and derivatives.
//! - [`drivers`]: [`derivative`], [`gradient`], [`jacobian`], [`jvp`], [`hessian`], [`hvp`].
//! - [`kernels`]: struct-of-arrays SIMD kernels for arrays of duals, with run-time dispatch.
//! - [`tape`]: recorded programs ([`Tape`], built by a [`TapeBuilder`]), evaluated on every
//!   number type through the same drivers, in batches, with sparse Jacobians, as bytes.
//!
//! ```
//! use duals::{Config, DualNum, ScalarFunction, VectorFunction};
//!
//! /// f(x) = Σ (1 - xᵢ)² + 100 (xᵢ₊₁ - xᵢ²)²
//! struct Rosenbrock;
//! impl ScalarFunction<f64> for Rosenbrock {
//!     #[inline(always)]
//!     fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
//!         x.windows(2)
//!             .map(|w| (-w[0] + 1.0).powi(2) + (w[1] - w[0] * w[0]).powi(2) * 100.0)
//!             .sum()
//!     }
//! }
//!
//! /// Polar to Cartesian: (r, θ) ↦ (r cos θ, r sin θ)
//! struct Polar;
//! impl VectorFunction<f64> for Polar {
//!     #[inline(always)]
//!     fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
//!         y[0] = x[0] * x[1].cos();
//!         y[1] = x[0] * x[1].sin();
//!     }
//! }
//!
//! let mut cfg = Config::new();
//! let g = duals::gradient(&Rosenbrock, &[0.0, 0.0], &mut cfg).unwrap();
//! assert_eq!(g, vec![-2.0, 0.0]);
//!
//! let j = duals::jacobian(&Polar, &[2.0, 0.0], &mut cfg).unwrap();
//! assert_eq!(j.as_slice(), &[1.0, 0.0, 0.0, 2.0]); // [[cos θ, -r sin θ], [sin θ, r cos θ]]
//!
//! let h = duals::hessian(&Rosenbrock, &[1.0, 1.0], &mut cfg).unwrap();
//! assert_eq!(h.as_slice(), &[802.0, -400.0, -400.0, 200.0]);
//! ```

pub mod drivers;
pub mod kernels;
pub mod number;
pub mod rules;
pub mod tape;

pub use drivers::{
    derivative, gradient, gradient_into, hessian, hessian_into, hvp, hvp_into, jacobian,
    jacobian_into, jvp, jvp_into, second_derivative, value_and_derivative, value_and_gradient,
    value_and_jacobian, value_and_second_derivative, value_gradient_and_hessian, Chunk, Config,
    Error, HessianMethod, Matrix, ScalarFunction, VectorFunction, CHUNK_WIDTHS,
};
pub use number::{
    Dual, Dual2, Dual2_64, Dual32, Dual64, DualDyn, DualNum, DualVec32, DualVec64, HyperDual,
    HyperDual64, HyperDualVec, HyperDualVec64, Real, TangentMismatch,
};
pub use tape::{Tape, TapeBuilder, TapeError};
