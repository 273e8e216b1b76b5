//! Struct-of-arrays SIMD kernels for arrays of dual numbers.
//!
//! # Layout
//!
//! An array of `n` duals with `k` tangents is two slices of `f64`:
//!
//! - the primal `p`, length `n`: `p[i]` is the value of element `i`;
//! - the tangent `t`, length `k * n`, tangent axis first: row `j` is `t[j*n..(j+1)*n]`, and
//!   `t[j*n + i]` is the `j`-th tangent of element `i`.
//!
//! Every kernel reads and writes whole rows, so the SIMD lanes run along the array, never along
//! the tangents, and each row is one contiguous stream.
//!
//! # Kernels
//!
//! | kernel | primal | tangent row `j` |
//! |---|---|---|
//! | [`unary`], [`unary_rule`] | `f(a)` | `f'(a) * ta_j` |
//! | [`add`] | `a + b` | `ta_j + tb_j` |
//! | [`sub`] | `a - b` | `ta_j - tb_j` |
//! | [`mul`] | `a * b` | `b * ta_j + a * tb_j` |
//! | [`div`] | `f = a / b` | `(ta_j - f * tb_j) / b` |
//! | [`binary`] | `f(a, b)` | `df/da * ta_j + df/db * tb_j` |
//! | [`sum`] | `sum_i a_i` | `sum_i ta_j[i]` |
//! | [`dot`] | `sum_i a_i * b_i` | `sum_i (ta_j[i] * b_i + a_i * tb_j[i])` |
//!
//! Second-order (hyper-dual) arrays have `k1 + k2 + k1*k2` rows (first-order parts along two
//! sets of directions, then the mixed parts): [`hyper_mul`] is their product rule and
//! [`hyper_unary`] the chain rule of a table entry; sums, differences and products with
//! constants are linear, the first-order kernels on all rows.
//!
//! Binary kernels and [`dot`] take each side as an [`Operand`]: an array with tangents, an
//! array constant, a broadcast scalar dual or a broadcast scalar constant. A constant carries no
//! tangent: its term is left out of the sum, not multiplied by zero, so `inf * 0` never turns a
//! finite derivative into NaN.
//!
//! Where a formula has a product followed by a sum, the vector levels fuse it (FMA, one
//! rounding); the scalar level rounds twice. Results therefore differ in the last bits between
//! levels (see [`Level`]).
//!
//! # Elementary functions
//!
//! At the vector levels, [`unary_rule`] evaluates `exp`, `exp_m1`, `ln`, `ln_1p`, `sin` and
//! `cos` a whole vector at a time with SIMD implementations of its own, within an ulp of the
//! exact result (argument reduction, Taylor polynomial, error-free sums). Special inputs go to
//! the scalar functions, so they give exactly what the table gives. The functions are also
//! available on slices: [`math`] (with `tanh` too) and [`sin_cos`].
//!
//! # Dispatch
//!
//! Each public kernel picks the best instruction set of the running CPU at its entry
//! ([`Level::best`], cached after the first call) and has a `_with_level` twin that runs a
//! given [`Level`], for tests and benchmarks. One binary runs on any x86-64 CPU; other targets
//! run the scalar level.
//!
//! # Errors
//!
//! Kernels never panic on bad lengths: every public function checks all lengths first and
//! returns a [`KernelError`] that says which argument was wrong and what length was expected.
//!
//! # Precision
//!
//! Only `f64` is provided: the array kernels have no `f32` variant.

mod dispatch;
mod error;
mod lanes;
mod operand;

mod binary;
mod fused;
mod hyper;
mod reduce;
mod unary;
mod vmath;

pub use binary::{
    add, add_with_level, binary, binary_with_level, div, div_with_level, mul, mul_with_level, sub,
    sub_with_level,
};
pub use dispatch::{detected_level, Level};
pub use error::KernelError;
pub(crate) use fused::{fused_derivative_with_level, Instr, Program};
pub use fused::{FusedRows, FusedVar, Fusion};
pub use hyper::{hyper_mul, hyper_unary};
pub use operand::Operand;
pub use reduce::{dot, dot_with_level, sum, sum_with_level};
pub(crate) use unary::simd_rule;
#[cfg(test)]
pub(crate) use unary::SimdRule;
pub use unary::{
    unary, unary_inplace, unary_inplace_with_level, unary_rule, unary_rule_with_level,
    unary_with_level,
};
pub use vmath::{math, math_with_level, sin_cos, sin_cos_with_level, MathFn};

/// Elements per block in the kernels that stage per-element values (derivatives, partial sums)
/// on the stack: 2 KiB per buffer, a multiple of every vector width.
const BLOCK: usize = 256;
