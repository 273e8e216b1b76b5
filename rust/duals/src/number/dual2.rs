//! `Dual2<T, F, N>`: primal, gradient and Hessian in one pass.

use core::array::from_fn;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Add, Div, Mul, Neg, Sub};

use super::ops::impl_derived_ops;
use super::{DualNum, Real};
use crate::rules::{Binary, Unary};

/// A second-order dual number in `N` directions: value, gradient `v1` and Hessian `v2`
/// (symmetric `N × N`), propagated together.
///
/// Seeding the `N` inputs with unit gradients gives `f`, `∇f` and `∇²f` in one evaluation. It
/// costs `O(N²)` per operation, so it suits small `N`; [`hessian`](crate::hessian) uses it for
/// small inputs and hyper-dual blocks above that.
///
/// ```
/// use duals::{Dual2, DualNum};
/// let x = Dual2::<f64, f64, 2>::seeded(1.0, 0);
/// let y = Dual2::<f64, f64, 2>::seeded(2.0, 1);
/// let f = x * x * y; // x² y
/// assert_eq!(f.v1, [4.0, 1.0]); // [2xy, x²]
/// assert_eq!(f.v2, [[4.0, 2.0], [2.0, 0.0]]); // [[2y, 2x], [2x, 0]]
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dual2<T, F, const N: usize> {
    /// The primal (real part).
    pub re: T,
    /// The gradient part.
    pub v1: [T; N],
    /// The Hessian part (symmetric).
    pub v2: [[T; N]; N],
    f: PhantomData<F>,
}

/// A second-order dual number of `f64` in `N` directions.
pub type Dual2_64<const N: usize> = Dual2<f64, f64, N>;

impl<T, F, const N: usize> Dual2<T, F, N> {
    /// A second-order dual number from all its parts.
    #[inline]
    pub const fn new(re: T, v1: [T; N], v2: [[T; N]; N]) -> Self {
        Self {
            re,
            v1,
            v2,
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Dual2<T, F, N> {
    /// A constant: gradient and Hessian zero.
    #[inline]
    pub fn constant(re: T) -> Self {
        Self::new(re, [T::zero(); N], [[T::zero(); N]; N])
    }

    /// The `i`-th input variable: gradient the unit vector `eᵢ`, Hessian zero.
    #[inline]
    pub fn seeded(re: T, i: usize) -> Self {
        let mut d = Self::constant(re);
        if i < N {
            d.v1[i] = T::one();
        }
        d
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> DualNum<F> for Dual2<T, F, N> {
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
    /// `f(x)`: `v1 = f' v1`, `v2 = f' v2 + f'' v1 v1ᵀ`.
    #[inline]
    fn chain(self, r: Unary<T>) -> Self {
        Self {
            re: r.f,
            v1: self.v1.map(|e| e * r.d1),
            v2: from_fn(|i| from_fn(|j| self.v2[i][j] * r.d1 + self.v1[i] * self.v1[j] * r.d2)),
            f: PhantomData,
        }
    }
    #[inline]
    fn chain2(self, b: Self, r: Binary<T>) -> Self {
        let a = self;
        Self {
            re: r.f,
            v1: from_fn(|i| a.v1[i] * r.da + b.v1[i] * r.db),
            v2: from_fn(|i| {
                from_fn(|j| {
                    a.v2[i][j] * r.da
                        + b.v2[i][j] * r.db
                        + a.v1[i] * a.v1[j] * r.daa
                        + (a.v1[i] * b.v1[j] + b.v1[i] * a.v1[j]) * r.dab
                        + b.v1[i] * b.v1[j] * r.dbb
                })
            }),
            f: PhantomData,
        }
    }
}

// ----- the arithmetic core: sum, product and quotient rules -------------------------------------

impl<F: Real, T: DualNum<F>, const N: usize> Add for Dual2<T, F, N> {
    type Output = Self;
    #[inline]
    fn add(self, b: Self) -> Self {
        Self {
            re: self.re + b.re,
            v1: from_fn(|i| self.v1[i] + b.v1[i]),
            v2: from_fn(|i| from_fn(|j| self.v2[i][j] + b.v2[i][j])),
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Sub for Dual2<T, F, N> {
    type Output = Self;
    #[inline]
    fn sub(self, b: Self) -> Self {
        Self {
            re: self.re - b.re,
            v1: from_fn(|i| self.v1[i] - b.v1[i]),
            v2: from_fn(|i| from_fn(|j| self.v2[i][j] - b.v2[i][j])),
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Mul for Dual2<T, F, N> {
    type Output = Self;
    /// Product rule: `v2 = a v2_b + b v2_a + v1_a v1_bᵀ + v1_b v1_aᵀ`.
    #[inline]
    fn mul(self, b: Self) -> Self {
        let a = self;
        Self {
            re: a.re * b.re,
            v1: from_fn(|i| a.v1[i] * b.re + b.v1[i] * a.re),
            v2: from_fn(|i| {
                from_fn(|j| {
                    a.v2[i][j] * b.re + b.v2[i][j] * a.re + a.v1[i] * b.v1[j] + b.v1[i] * a.v1[j]
                })
            }),
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Div for Dual2<T, F, N> {
    type Output = Self;
    /// Quotient rule, solved from `a = q b` without forming `1/b²` (which over- or underflows
    /// where the quotient does not, e.g. for `|b|` near 1e±200): `q₁ = (a₁ - q b₁)/b`,
    /// `q₂ = (a₂ - (q₁ b₁ᵀ + b₁ q₁ᵀ) - q b₂)/b`.
    #[inline]
    fn div(self, b: Self) -> Self {
        let a = self;
        let q = a.re / b.re;
        let inv = b.re.recip();
        let v1: [T; N] = from_fn(|i| (a.v1[i] - b.v1[i] * q) * inv);
        Self {
            re: q,
            v1,
            v2: from_fn(|i| {
                from_fn(|j| {
                    (a.v2[i][j] - (v1[i] * b.v1[j] + b.v1[i] * v1[j]) - b.v2[i][j] * q) * inv
                })
            }),
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Neg for Dual2<T, F, N> {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Self::new(
            -self.re,
            self.v1.map(|e| -e),
            self.v2.map(|row| row.map(|e| -e)),
        )
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Add<F> for Dual2<T, F, N> {
    type Output = Self;
    #[inline]
    fn add(mut self, rhs: F) -> Self {
        self.re += rhs;
        self
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Sub<F> for Dual2<T, F, N> {
    type Output = Self;
    #[inline]
    fn sub(mut self, rhs: F) -> Self {
        self.re -= rhs;
        self
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Mul<F> for Dual2<T, F, N> {
    type Output = Self;
    #[inline]
    fn mul(self, rhs: F) -> Self {
        Self {
            re: self.re * rhs,
            v1: self.v1.map(|e| e * rhs),
            v2: self.v2.map(|row| row.map(|e| e * rhs)),
            f: PhantomData,
        }
    }
}

impl<F: Real, T: DualNum<F>, const N: usize> Div<F> for Dual2<T, F, N> {
    type Output = Self;
    #[inline]
    fn div(self, rhs: F) -> Self {
        Self {
            re: self.re / rhs,
            v1: self.v1.map(|e| e / rhs),
            v2: self.v2.map(|row| row.map(|e| e / rhs)),
            f: PhantomData,
        }
    }
}

impl_derived_ops!(Dual2, [N]);

impl<T: fmt::Debug, F, const N: usize> fmt::Display for Dual2<T, F, N> {
    /// `re + v1 ε + v2 ε²`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} + {:?}ε + {:?}ε²", self.re, self.v1, self.v2)
    }
}
