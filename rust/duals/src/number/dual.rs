//! `Dual<T, F, N>`: a primal and `N` first-order tangents.

use core::array::from_fn;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Add, Div, Mul, Neg, Sub};

use super::ops::impl_derived_ops;
use super::{DualNum, Real};
use crate::rules::{Binary, Unary};

/// A dual number with `N` tangents: `re + Σ eps[i] εᵢ` with `εᵢ εⱼ = 0`.
///
/// Evaluating `f` on `Dual { re: x, eps: [v₀, …] }` gives `f(x)` in `re` and the directional
/// derivatives `f'(x) vᵢ` in `eps`. With `N = 1` this is the classic dual number ([`Dual64`]);
/// with `N > 1` one evaluation gives `N` directional derivatives at once ([`DualVec64`]), which
/// is how the [`jacobian`](crate::jacobian) driver works in chunks.
///
/// ```
/// use duals::{Dual64, DualNum};
/// let x = Dual64::variable(3.0);
/// let y = x * x * x; // x³
/// assert_eq!(y.re, 27.0);
/// assert_eq!(y.eps[0], 27.0); // 3 x² = 27
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dual<T, F, const N: usize> {
    /// The primal (real part).
    pub re: T,
    /// The tangents.
    pub eps: [T; N],
    f: PhantomData<F>,
}

/// A dual number of `f64` with one tangent.
pub type Dual64 = Dual<f64, f64, 1>;
/// A dual number of `f32` with one tangent.
pub type Dual32 = Dual<f32, f32, 1>;
/// A dual number of `f64` with `N` tangents.
pub type DualVec64<const N: usize> = Dual<f64, f64, N>;
/// A dual number of `f32` with `N` tangents.
pub type DualVec32<const N: usize> = Dual<f32, f32, N>;

impl<T, F, const N: usize> Dual<T, F, N> {
    /// A dual number from its primal and tangents.
    #[inline]
    pub const fn new(re: T, eps: [T; N]) -> Self {
        Self {
            re,
            eps,
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Dual<T, F, N> {
    /// A constant: all tangents zero.
    #[inline]
    pub fn constant(re: T) -> Self {
        Self::new(re, [T::zero(); N])
    }

    /// The `i`-th coordinate direction: tangent `i` is one, the others zero.
    ///
    /// Returns a constant when `i >= N` (the direction is not in this chunk).
    #[inline]
    pub fn seeded(re: T, i: usize) -> Self {
        Self::new(re, from_fn(|j| if j == i { T::one() } else { T::zero() }))
    }
}

impl<F: Real, T: DualNum<F>> Dual<T, F, 1> {
    /// The independent variable `x`: tangent one.
    #[inline]
    pub fn variable(re: T) -> Self {
        Self::new(re, [T::one()])
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> DualNum<F> for Dual<T, F, N> {
    type Inner = T;

    #[inline]
    fn re(&self) -> F {
        self.re.re()
    }
    #[inline]
    fn inner(&self) -> T {
        self.re
    }
    #[inline]
    fn from_inner(re: T) -> Self {
        Self::constant(re)
    }
    #[inline]
    fn from_re(re: F) -> Self {
        Self::constant(T::from_re(re))
    }
    #[inline]
    fn chain(self, r: Unary<T>) -> Self {
        Self::new(r.f, self.eps.map(|e| e * r.d1))
    }
    #[inline]
    fn chain2(self, other: Self, r: Binary<T>) -> Self {
        Self::new(r.f, from_fn(|i| self.eps[i] * r.da + other.eps[i] * r.db))
    }
}

// ----- the arithmetic core: sum, product and quotient rules -------------------------------------

impl<F: Real, T: DualNum<F>, const N: usize> Add for Dual<T, F, N> {
    type Output = Self;
    #[inline]
    fn add(self, rhs: Self) -> Self {
        Self::new(self.re + rhs.re, from_fn(|i| self.eps[i] + rhs.eps[i]))
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Sub for Dual<T, F, N> {
    type Output = Self;
    #[inline]
    fn sub(self, rhs: Self) -> Self {
        Self::new(self.re - rhs.re, from_fn(|i| self.eps[i] - rhs.eps[i]))
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Mul for Dual<T, F, N> {
    type Output = Self;
    /// `(a b)' = a' b + a b'`.
    #[inline]
    fn mul(self, rhs: Self) -> Self {
        Self::new(
            self.re * rhs.re,
            from_fn(|i| self.eps[i] * rhs.re + rhs.eps[i] * self.re),
        )
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Div for Dual<T, F, N> {
    type Output = Self;
    /// `(a / b)' = (a' - (a/b) b') / b`.
    #[inline]
    fn div(self, rhs: Self) -> Self {
        let f = self.re / rhs.re;
        let inv = rhs.re.recip();
        Self::new(f, from_fn(|i| (self.eps[i] - rhs.eps[i] * f) * inv))
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Neg for Dual<T, F, N> {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Self::new(-self.re, self.eps.map(|e| -e))
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Add<F> for Dual<T, F, N> {
    type Output = Self;
    #[inline]
    fn add(self, rhs: F) -> Self {
        Self::new(self.re + rhs, self.eps)
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Sub<F> for Dual<T, F, N> {
    type Output = Self;
    #[inline]
    fn sub(self, rhs: F) -> Self {
        Self::new(self.re - rhs, self.eps)
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Mul<F> for Dual<T, F, N> {
    type Output = Self;
    #[inline]
    fn mul(self, rhs: F) -> Self {
        Self::new(self.re * rhs, self.eps.map(|e| e * rhs))
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Div<F> for Dual<T, F, N> {
    type Output = Self;
    #[inline]
    fn div(self, rhs: F) -> Self {
        Self::new(self.re / rhs, self.eps.map(|e| e / rhs))
    }
}

impl_derived_ops!(Dual, [N]);

impl<T: fmt::Display, F, const N: usize> fmt::Display for Dual<T, F, N> {
    /// `re + [eps0, eps1, …]ε`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} + [", self.re)?;
        for (i, e) in self.eps.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{e}")?;
        }
        write!(f, "]ε")
    }
}
