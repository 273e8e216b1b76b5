//! `HyperDualVec<T, F, M, N>`: first-order parts in two separate sets of directions and their mixed
//! second-order block; `HyperDual<T>` is the scalar case `M = N = 1`.

use core::array::from_fn;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Add, Div, Mul, Neg, Sub};

use super::ops::impl_derived_ops;
use super::{DualNum, Real};
use crate::rules::{Binary, Unary};

/// A hyper-dual number with `M` directions `ε₁ᵢ` and `N` directions `ε₂ⱼ`:
/// `re + Σ eps1[i] ε₁ᵢ + Σ eps2[j] ε₂ⱼ + Σ eps12[i][j] ε₁ᵢ ε₂ⱼ`, where products within one set
/// vanish (`ε₁ᵢ ε₁ₖ = ε₂ⱼ ε₂ₗ = 0`).
///
/// Seeding `x + uᵢ ε₁ᵢ + vⱼ ε₂ⱼ` and evaluating `f` gives the first derivatives `∇f·uᵢ`,
/// `∇f·vⱼ` and the exact second derivatives `uᵢᵀ H vⱼ` in `eps12[i][j]`: with coordinate
/// directions, one evaluation yields an `M × N` block of the Hessian, with no truncation
/// error. [`hessian`](crate::hessian) computes the upper-triangular blocks this way.
///
/// ```
/// use duals::{HyperDual64, DualNum};
/// let x = HyperDual64::variable(2.0);
/// let y = x.powi(3); // x³
/// assert_eq!((y.re, y.eps1[0], y.eps2[0], y.eps12[0][0]), (8.0, 12.0, 12.0, 12.0)); // 3x², 6x
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HyperDualVec<T, F, const M: usize, const N: usize> {
    /// The primal (real part).
    pub re: T,
    /// First-order parts along the first set of directions.
    pub eps1: [T; M],
    /// First-order parts along the second set of directions.
    pub eps2: [T; N],
    /// Mixed second-order parts: `eps12[i][j]` multiplies `ε₁ᵢ ε₂ⱼ`.
    pub eps12: [[T; N]; M],
    f: PhantomData<F>,
}

/// The scalar hyper-dual number `re + e1 ε₁ + e2 ε₂ + e12 ε₁ε₂`.
pub type HyperDual<T, F> = HyperDualVec<T, F, 1, 1>;
/// The scalar hyper-dual number of `f64`.
pub type HyperDual64 = HyperDual<f64, f64>;
/// A hyper-dual number of `f64` with `M × N` directions.
pub type HyperDualVec64<const M: usize, const N: usize> = HyperDualVec<f64, f64, M, N>;

impl<T, F, const M: usize, const N: usize> HyperDualVec<T, F, M, N> {
    /// A hyper-dual number from all its parts.
    #[inline]
    pub const fn new(re: T, eps1: [T; M], eps2: [T; N], eps12: [[T; N]; M]) -> Self {
        Self {
            re,
            eps1,
            eps2,
            eps12,
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> HyperDualVec<T, F, M, N> {
    /// A constant: all derivative parts zero.
    #[inline]
    pub fn constant(re: T) -> Self {
        Self::new(re, [T::zero(); M], [T::zero(); N], [[T::zero(); N]; M])
    }
}

impl<F: Real, T: DualNum<F>> HyperDual<T, F> {
    /// The independent variable `x`: `e1 = e2 = 1`, `e12 = 0`.
    #[inline]
    pub fn variable(re: T) -> Self {
        Self::new(re, [T::one()], [T::one()], [[T::zero()]])
    }
    /// The first-order part along `ε₁`.
    #[inline]
    pub fn e1(&self) -> T {
        self.eps1[0]
    }
    /// The first-order part along `ε₂`.
    #[inline]
    pub fn e2(&self) -> T {
        self.eps2[0]
    }
    /// The mixed second-order part `ε₁ε₂`.
    #[inline]
    pub fn e12(&self) -> T {
        self.eps12[0][0]
    }
}

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> DualNum<F>
    for HyperDualVec<T, F, M, N>
{
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
    /// `f(x)`: `eps12 = f' eps12 + f'' eps1 eps2ᵀ`.
    #[inline]
    fn chain(self, r: Unary<T>) -> Self {
        Self {
            re: r.f,
            eps1: self.eps1.map(|e| e * r.d1),
            eps2: self.eps2.map(|e| e * r.d1),
            eps12: from_fn(|i| {
                from_fn(|j| self.eps12[i][j] * r.d1 + self.eps1[i] * self.eps2[j] * r.d2)
            }),
            f: PhantomData,
        }
    }
    #[inline]
    fn chain2(self, b: Self, r: Binary<T>) -> Self {
        let a = self;
        Self {
            re: r.f,
            eps1: from_fn(|i| a.eps1[i] * r.da + b.eps1[i] * r.db),
            eps2: from_fn(|j| a.eps2[j] * r.da + b.eps2[j] * r.db),
            eps12: from_fn(|i| {
                from_fn(|j| {
                    a.eps12[i][j] * r.da
                        + b.eps12[i][j] * r.db
                        + a.eps1[i] * a.eps2[j] * r.daa
                        + (a.eps1[i] * b.eps2[j] + b.eps1[i] * a.eps2[j]) * r.dab
                        + b.eps1[i] * b.eps2[j] * r.dbb
                })
            }),
            f: PhantomData,
        }
    }
}

// ----- the arithmetic core: sum, product and quotient rules -------------------------------------

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> Add for HyperDualVec<T, F, M, N> {
    type Output = Self;
    #[inline]
    fn add(self, b: Self) -> Self {
        Self {
            re: self.re + b.re,
            eps1: from_fn(|i| self.eps1[i] + b.eps1[i]),
            eps2: from_fn(|j| self.eps2[j] + b.eps2[j]),
            eps12: from_fn(|i| from_fn(|j| self.eps12[i][j] + b.eps12[i][j])),
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> Sub for HyperDualVec<T, F, M, N> {
    type Output = Self;
    #[inline]
    fn sub(self, b: Self) -> Self {
        self + (-b)
    }
}

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> Mul for HyperDualVec<T, F, M, N> {
    type Output = Self;
    /// Product rule; the mixed part is `a eps12_b + b eps12_a + eps1_a eps2_bᵀ + eps1_b eps2_aᵀ`.
    #[inline]
    fn mul(self, b: Self) -> Self {
        let a = self;
        Self {
            re: a.re * b.re,
            eps1: from_fn(|i| a.eps1[i] * b.re + b.eps1[i] * a.re),
            eps2: from_fn(|j| a.eps2[j] * b.re + b.eps2[j] * a.re),
            eps12: from_fn(|i| {
                from_fn(|j| {
                    a.eps12[i][j] * b.re
                        + b.eps12[i][j] * a.re
                        + a.eps1[i] * b.eps2[j]
                        + b.eps1[i] * a.eps2[j]
                })
            }),
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> Div for HyperDualVec<T, F, M, N> {
    type Output = Self;
    /// Quotient rule, solved from `a = q b` without forming `1/b²` (which over- or underflows
    /// where the quotient does not, e.g. for `|b|` near 1e±200): `q₁ = (a₁ - q b₁)/b`,
    /// `q₂ = (a₂ - q b₂)/b`, `q₁₂ = (a₁₂ - q₁ b₂ᵀ - b₁ q₂ᵀ - q b₁₂)/b`.
    #[inline]
    fn div(self, b: Self) -> Self {
        let a = self;
        let q = a.re / b.re;
        let inv = b.re.recip();
        let eps1: [T; M] = from_fn(|i| (a.eps1[i] - b.eps1[i] * q) * inv);
        let eps2: [T; N] = from_fn(|j| (a.eps2[j] - b.eps2[j] * q) * inv);
        Self {
            re: q,
            eps1,
            eps2,
            eps12: from_fn(|i| {
                from_fn(|j| {
                    (a.eps12[i][j] - eps1[i] * b.eps2[j] - b.eps1[i] * eps2[j] - b.eps12[i][j] * q)
                        * inv
                })
            }),
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> Neg for HyperDualVec<T, F, M, N> {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Self {
            re: -self.re,
            eps1: self.eps1.map(|e| -e),
            eps2: self.eps2.map(|e| -e),
            eps12: self.eps12.map(|row| row.map(|e| -e)),
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> Add<F> for HyperDualVec<T, F, M, N> {
    type Output = Self;
    #[inline]
    fn add(mut self, rhs: F) -> Self {
        self.re += rhs;
        self
    }
}

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> Sub<F> for HyperDualVec<T, F, M, N> {
    type Output = Self;
    #[inline]
    fn sub(mut self, rhs: F) -> Self {
        self.re -= rhs;
        self
    }
}

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> Mul<F> for HyperDualVec<T, F, M, N> {
    type Output = Self;
    #[inline]
    fn mul(self, rhs: F) -> Self {
        Self {
            re: self.re * rhs,
            eps1: self.eps1.map(|e| e * rhs),
            eps2: self.eps2.map(|e| e * rhs),
            eps12: self.eps12.map(|row| row.map(|e| e * rhs)),
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const M: usize, const N: usize> Div<F> for HyperDualVec<T, F, M, N> {
    type Output = Self;
    #[inline]
    fn div(self, rhs: F) -> Self {
        Self {
            re: self.re / rhs,
            eps1: self.eps1.map(|e| e / rhs),
            eps2: self.eps2.map(|e| e / rhs),
            eps12: self.eps12.map(|row| row.map(|e| e / rhs)),
            f: PhantomData,
        }
    }
}

impl_derived_ops!(HyperDualVec, [M, N]);

impl<T: fmt::Debug, F, const M: usize, const N: usize> fmt::Display for HyperDualVec<T, F, M, N> {
    /// `re + eps1 ε₁ + eps2 ε₂ + eps12 ε₁ε₂`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} + {:?}ε₁ + {:?}ε₂ + {:?}ε₁ε₂",
            self.re, self.eps1, self.eps2, self.eps12
        )
    }
}
