//! Number types and the one trait they share.
//!
//! Every type here implements [`DualNum<F>`], where `F` is the underlying real type
//! (`f32` or `f64`): plain reals, [`Dual`], [`HyperDualVec`] (and its alias [`HyperDual`]) and
//! [`Dual2`]. A function written once, generically over `D: DualNum<f64>`, can be evaluated on any
//! of them, including nested duals such as `Dual<Dual64, 1>`.
//!
//! Each type implements only its *chain rule* ([`DualNum::chain`], [`DualNum::chain2`]), its
//! product and its quotient; every elementary function comes from the table in
//! [`crate::rules`] through the provided methods of [`DualNum`].

use core::fmt::{Debug, Display};
use core::iter::{Product, Sum};
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, Sub, SubAssign};

use num_traits::{Float, FloatConst};

use crate::rules::{self, Binary, Unary};

mod dual;
mod dual2;
mod dual_dyn;
mod hyperdual;
mod ops;

pub use dual::{Dual, Dual32, Dual64, DualVec32, DualVec64};
pub use dual2::{Dual2, Dual2_64};
pub use dual_dyn::{DualDyn, TangentMismatch};
pub use hyperdual::{HyperDual, HyperDual64, HyperDualVec, HyperDualVec64};

/// The real types the engine computes with: `f32` and `f64`.
///
/// This is `num_traits::Float` plus the few functions it lacks (`erf`, `erfc`), and a
/// [`DualNum`] without derivatives.
pub trait Real:
    Float
    + FloatConst
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + 'static
    + Sum
    + Product
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + DualNum<Self>
{
    /// The error function.
    fn erf(self) -> Self;
    /// The complementary error function `1 - erf(x)`, accurate for large `x`.
    fn erfc(self) -> Self;
    /// Conversion from `f64` (rounding for `f32`).
    fn from_f64(x: f64) -> Self;
    /// Conversion to `f64`.
    fn to_f64(self) -> f64;
}

impl Real for f64 {
    #[inline]
    fn erf(self) -> Self {
        libm::erf(self)
    }
    #[inline]
    fn erfc(self) -> Self {
        libm::erfc(self)
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    #[inline]
    fn erf(self) -> Self {
        libm::erff(self)
    }
    #[inline]
    fn erfc(self) -> Self {
        libm::erfcf(self)
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

/// A number that carries derivatives: the one trait of the engine.
///
/// Implemented by `f32`/`f64` (no derivatives), [`Dual`], [`HyperDualVec`] and [`Dual2`], and
/// by any nesting of them. Write a function once, generically:
///
/// ```
/// use duals::{DualNum, Dual64};
/// fn f<D: DualNum<f64>>(x: D) -> D {
///     x.sin() * x.powi(2) + x.exp() / 3.0
/// }
/// assert_eq!(f(2.0_f64), 2.0_f64.sin() * 4.0 + 2.0_f64.exp() / 3.0);
/// let d = f(Dual64::variable(2.0));
/// // d/dx = cos(x) x^2 + 2 x sin(x) + exp(x) / 3
/// let expected = 2.0_f64.cos() * 4.0 + 4.0 * 2.0_f64.sin() + 2.0_f64.exp() / 3.0;
/// assert!((d.eps[0] - expected).abs() < 1e-14);
/// ```
///
/// Comparisons between dual numbers (`<`, `>`, `min`, `max`) look at the real part only.
///
/// Implementing this trait for a new number type means giving [`re`](Self::re),
/// [`inner`](Self::inner), [`from_inner`](Self::from_inner), [`chain`](Self::chain) and
/// [`chain2`](Self::chain2) plus the arithmetic operators (the product and quotient rules);
/// every elementary function then follows from [`crate::rules`].
pub trait DualNum<F: Real>:
    Copy
    + Debug
    + Display
    + PartialEq
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Rem<Output = Self>
    + Neg<Output = Self>
    + Add<F, Output = Self>
    + Sub<F, Output = Self>
    + Mul<F, Output = Self>
    + Div<F, Output = Self>
    + Rem<F, Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + AddAssign<F>
    + SubAssign<F>
    + MulAssign<F>
    + DivAssign<F>
    + Sum
    + Product
{
    /// The type of the primal one level down: `F` for a first-level dual, `Dual64` for the
    /// primal of a `Dual<Dual64, 1>`, and `F` itself for a plain real.
    type Inner: DualNum<F>;

    /// The real part (the primal, all the way down).
    fn re(&self) -> F;

    /// The primal one level down.
    fn inner(&self) -> Self::Inner;

    /// A constant: the given primal, every derivative part zero.
    fn from_inner(re: Self::Inner) -> Self;

    /// A constant from a real: every derivative part zero.
    fn from_re(re: F) -> Self;

    /// The chain rule: `f(self)`, given `f` and its derivatives at `self.inner()`.
    fn chain(self, r: Unary<Self::Inner>) -> Self;

    /// The chain rule of a function of two arguments: `f(self, other)`, given `f` and its
    /// partial derivatives at `(self.inner(), other.inner())`.
    fn chain2(self, other: Self, r: Binary<Self::Inner>) -> Self;

    /// Zero.
    #[inline]
    fn zero() -> Self {
        Self::from_re(F::from_f64(0.0))
    }

    /// One.
    #[inline]
    fn one() -> Self {
        Self::from_re(F::from_f64(1.0))
    }

    /// Whether the real part is NaN.
    #[inline]
    fn is_nan(&self) -> bool {
        self.re().is_nan()
    }

    /// `1 / x`.
    #[inline]
    fn recip(self) -> Self {
        self.chain(rules::recip(self.inner()))
    }
    /// `x^n` for an integer exponent.
    #[inline]
    fn powi(self, n: i32) -> Self {
        self.chain(rules::powi(self.inner(), n))
    }
    /// `x^p` for a constant real exponent.
    #[inline]
    fn powf(self, p: F) -> Self {
        self.chain(rules::powf(self.inner(), p))
    }
    /// `x^y` with both base and exponent variable.
    #[inline]
    fn powd(self, y: Self) -> Self {
        self.chain2(y, rules::pow(self.inner(), y.inner()))
    }
    /// Square root. The derivative at 0 is `+inf`.
    #[inline]
    fn sqrt(self) -> Self {
        self.chain(rules::sqrt(self.inner()))
    }
    /// Real cube root. The derivative at 0 is `+inf`.
    #[inline]
    fn cbrt(self) -> Self {
        self.chain(rules::cbrt(self.inner()))
    }
    /// `e^x`.
    #[inline]
    fn exp(self) -> Self {
        self.chain(rules::exp(self.inner()))
    }
    /// `2^x`.
    #[inline]
    fn exp2(self) -> Self {
        self.chain(rules::exp2(self.inner()))
    }
    /// `e^x - 1`, accurate near 0.
    #[inline]
    fn exp_m1(self) -> Self {
        self.chain(rules::exp_m1(self.inner()))
    }
    /// Natural logarithm.
    #[inline]
    fn ln(self) -> Self {
        self.chain(rules::ln(self.inner()))
    }
    /// Base-2 logarithm.
    #[inline]
    fn log2(self) -> Self {
        self.chain(rules::log2(self.inner()))
    }
    /// Base-10 logarithm.
    #[inline]
    fn log10(self) -> Self {
        self.chain(rules::log10(self.inner()))
    }
    /// `ln(1 + x)`, accurate near 0.
    #[inline]
    fn ln_1p(self) -> Self {
        self.chain(rules::ln_1p(self.inner()))
    }
    /// Sine.
    #[inline]
    fn sin(self) -> Self {
        self.chain(rules::sin(self.inner()))
    }
    /// Cosine.
    #[inline]
    fn cos(self) -> Self {
        self.chain(rules::cos(self.inner()))
    }
    /// Sine and cosine together.
    #[inline]
    fn sin_cos(self) -> (Self, Self) {
        let (s, c) = self.inner().sin_cos();
        let sin = self.chain(Unary {
            f: s,
            d1: c,
            d2: -s,
        });
        let cos = self.chain(Unary {
            f: c,
            d1: -s,
            d2: -c,
        });
        (sin, cos)
    }
    /// Tangent.
    #[inline]
    fn tan(self) -> Self {
        self.chain(rules::tan(self.inner()))
    }
    /// Arcsine.
    #[inline]
    fn asin(self) -> Self {
        self.chain(rules::asin(self.inner()))
    }
    /// Arccosine.
    #[inline]
    fn acos(self) -> Self {
        self.chain(rules::acos(self.inner()))
    }
    /// Arctangent.
    #[inline]
    fn atan(self) -> Self {
        self.chain(rules::atan(self.inner()))
    }
    /// Four-quadrant arctangent of `self / x` (`self` is the y coordinate).
    #[inline]
    fn atan2(self, x: Self) -> Self {
        self.chain2(x, rules::atan2(self.inner(), x.inner()))
    }
    /// Hyperbolic sine.
    #[inline]
    fn sinh(self) -> Self {
        self.chain(rules::sinh(self.inner()))
    }
    /// Hyperbolic cosine.
    #[inline]
    fn cosh(self) -> Self {
        self.chain(rules::cosh(self.inner()))
    }
    /// Hyperbolic tangent.
    #[inline]
    fn tanh(self) -> Self {
        self.chain(rules::tanh(self.inner()))
    }
    /// Inverse hyperbolic sine.
    #[inline]
    fn asinh(self) -> Self {
        self.chain(rules::asinh(self.inner()))
    }
    /// Inverse hyperbolic cosine.
    #[inline]
    fn acosh(self) -> Self {
        self.chain(rules::acosh(self.inner()))
    }
    /// Inverse hyperbolic tangent.
    #[inline]
    fn atanh(self) -> Self {
        self.chain(rules::atanh(self.inner()))
    }
    /// Absolute value. At `±0` the derivative is the one-sided value `±1` (the sign of the
    /// zero), so `abs(x)` at `x = +0` differentiates like `x`.
    #[inline]
    fn abs(self) -> Self {
        self.chain(rules::abs(self.inner()))
    }
    /// `sqrt(self^2 + y^2)` without undue overflow. Not differentiable at `(0, 0)`: NaN there.
    #[inline]
    fn hypot(self, y: Self) -> Self {
        self.chain2(y, rules::hypot(self.inner(), y.inner()))
    }
    /// The error function.
    #[inline]
    fn erf(self) -> Self {
        self.chain(rules::erf(self.inner()))
    }
    /// The complementary error function.
    #[inline]
    fn erfc(self) -> Self {
        self.chain(rules::erfc(self.inner()))
    }
    /// The smaller of two numbers by real part (derivatives follow the selected one; ties
    /// select `self`). A NaN real part loses, as in `f64::min`.
    #[inline]
    fn min(self, other: Self) -> Self {
        if rules::select_first_for_min(self.re(), other.re()) {
            self
        } else {
            other
        }
    }
    /// The larger of two numbers by real part (derivatives follow the selected one; ties
    /// select `self`). A NaN real part loses, as in `f64::max`.
    #[inline]
    fn max(self, other: Self) -> Self {
        if rules::select_first_for_max(self.re(), other.re()) {
            self
        } else {
            other
        }
    }
    /// Largest integer not above `x`; derivative zero.
    #[inline]
    fn floor(self) -> Self {
        Self::from_inner(self.inner().floor())
    }
    /// Smallest integer not below `x`; derivative zero.
    #[inline]
    fn ceil(self) -> Self {
        Self::from_inner(self.inner().ceil())
    }
    /// Nearest integer, halves away from zero; derivative zero.
    #[inline]
    fn round(self) -> Self {
        Self::from_inner(self.inner().round())
    }
    /// Integer part, toward zero; derivative zero.
    #[inline]
    fn trunc(self) -> Self {
        Self::from_inner(self.inner().trunc())
    }
    /// Sign (`±1`, NaN for NaN); derivative zero.
    #[inline]
    fn signum(self) -> Self {
        Self::from_inner(self.inner().signum())
    }
}

/// `DualNum` for the plain reals: no derivatives, every function from the standard library,
/// except `acosh` and `atanh` from `libm`: the standard library's lose up to ~10⁴ ulps near 1
/// and -1 (e.g. `acosh(1.0000001)`, `atanh(-0.9999999999)`).
macro_rules! impl_dual_num_for_real {
    ($t:ty, $acosh:path, $atanh:path) => {
        impl DualNum<$t> for $t {
            type Inner = $t;
            #[inline]
            fn re(&self) -> $t {
                *self
            }
            #[inline]
            fn inner(&self) -> $t {
                *self
            }
            #[inline]
            fn from_inner(re: $t) -> $t {
                re
            }
            #[inline]
            fn from_re(re: $t) -> $t {
                re
            }
            #[inline]
            fn chain(self, r: Unary<$t>) -> $t {
                r.f
            }
            #[inline]
            fn chain2(self, _other: $t, r: Binary<$t>) -> $t {
                r.f
            }
            #[inline]
            fn recip(self) -> $t {
                <$t>::recip(self)
            }
            #[inline]
            fn powi(self, n: i32) -> $t {
                <$t>::powi(self, n)
            }
            #[inline]
            fn powf(self, p: $t) -> $t {
                <$t>::powf(self, p)
            }
            #[inline]
            fn powd(self, y: $t) -> $t {
                <$t>::powf(self, y)
            }
            #[inline]
            fn sqrt(self) -> $t {
                <$t>::sqrt(self)
            }
            #[inline]
            fn cbrt(self) -> $t {
                <$t>::cbrt(self)
            }
            #[inline]
            fn exp(self) -> $t {
                <$t>::exp(self)
            }
            #[inline]
            fn exp2(self) -> $t {
                <$t>::exp2(self)
            }
            #[inline]
            fn exp_m1(self) -> $t {
                <$t>::exp_m1(self)
            }
            #[inline]
            fn ln(self) -> $t {
                <$t>::ln(self)
            }
            #[inline]
            fn log2(self) -> $t {
                <$t>::log2(self)
            }
            #[inline]
            fn log10(self) -> $t {
                <$t>::log10(self)
            }
            #[inline]
            fn ln_1p(self) -> $t {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn sin(self) -> $t {
                <$t>::sin(self)
            }
            #[inline]
            fn cos(self) -> $t {
                <$t>::cos(self)
            }
            #[inline]
            fn sin_cos(self) -> ($t, $t) {
                <$t>::sin_cos(self)
            }
            #[inline]
            fn tan(self) -> $t {
                <$t>::tan(self)
            }
            #[inline]
            fn asin(self) -> $t {
                <$t>::asin(self)
            }
            #[inline]
            fn acos(self) -> $t {
                <$t>::acos(self)
            }
            #[inline]
            fn atan(self) -> $t {
                <$t>::atan(self)
            }
            #[inline]
            fn atan2(self, x: $t) -> $t {
                <$t>::atan2(self, x)
            }
            #[inline]
            fn sinh(self) -> $t {
                <$t>::sinh(self)
            }
            #[inline]
            fn cosh(self) -> $t {
                <$t>::cosh(self)
            }
            #[inline]
            fn tanh(self) -> $t {
                <$t>::tanh(self)
            }
            #[inline]
            fn asinh(self) -> $t {
                <$t>::asinh(self)
            }
            #[inline]
            fn acosh(self) -> $t {
                $acosh(self)
            }
            #[inline]
            fn atanh(self) -> $t {
                $atanh(self)
            }
            #[inline]
            fn abs(self) -> $t {
                <$t>::abs(self)
            }
            #[inline]
            fn hypot(self, y: $t) -> $t {
                <$t>::hypot(self, y)
            }
            #[inline]
            fn erf(self) -> $t {
                <$t as Real>::erf(self)
            }
            #[inline]
            fn erfc(self) -> $t {
                <$t as Real>::erfc(self)
            }
            #[inline]
            fn floor(self) -> $t {
                <$t>::floor(self)
            }
            #[inline]
            fn ceil(self) -> $t {
                <$t>::ceil(self)
            }
            #[inline]
            fn round(self) -> $t {
                <$t>::round(self)
            }
            #[inline]
            fn trunc(self) -> $t {
                <$t>::trunc(self)
            }
            #[inline]
            fn signum(self) -> $t {
                <$t>::signum(self)
            }
        }
    };
}

impl_dual_num_for_real!(f32, libm::acoshf, libm::atanhf);
impl_dual_num_for_real!(f64, libm::acosh, libm::atanh);
