//! Operator boilerplate shared by the number types.
//!
//! Each number type writes its own arithmetic core by hand: `+ - * /` and negation between two
//! numbers (the product and quotient rules live there) and `+ - * /` with a real. This macro fans
//! that core out to everything that follows from it: `%`, the assignment forms, `Sum`,
//! `Product`, comparisons (by real part) and arithmetic with `f32`/`f64` on the left.

macro_rules! impl_derived_ops {
    ($name:ident, [$($c:ident),*]) => {
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::ops::Rem for $name<T, F, $($c),*> {
            type Output = Self;
            /// Truncated remainder, as Rust's `%`: derivative 1 in the dividend and
            /// `-trunc(a / b)` in the divisor.
            #[inline]
            fn rem(self, rhs: Self) -> Self {
                self.chain2(rhs, crate::rules::rem(self.inner(), rhs.inner()))
            }
        }

        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::ops::Rem<F> for $name<T, F, $($c),*> {
            type Output = Self;
            #[inline]
            fn rem(self, rhs: F) -> Self {
                self % Self::from_re(rhs)
            }
        }

        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::ops::AddAssign for $name<T, F, $($c),*> {
            #[inline]
            fn add_assign(&mut self, rhs: Self) {
                *self = *self + rhs;
            }
        }
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::ops::SubAssign for $name<T, F, $($c),*> {
            #[inline]
            fn sub_assign(&mut self, rhs: Self) {
                *self = *self - rhs;
            }
        }
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::ops::MulAssign for $name<T, F, $($c),*> {
            #[inline]
            fn mul_assign(&mut self, rhs: Self) {
                *self = *self * rhs;
            }
        }
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::ops::DivAssign for $name<T, F, $($c),*> {
            #[inline]
            fn div_assign(&mut self, rhs: Self) {
                *self = *self / rhs;
            }
        }
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::ops::AddAssign<F> for $name<T, F, $($c),*> {
            #[inline]
            fn add_assign(&mut self, rhs: F) {
                *self = *self + rhs;
            }
        }
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::ops::SubAssign<F> for $name<T, F, $($c),*> {
            #[inline]
            fn sub_assign(&mut self, rhs: F) {
                *self = *self - rhs;
            }
        }
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::ops::MulAssign<F> for $name<T, F, $($c),*> {
            #[inline]
            fn mul_assign(&mut self, rhs: F) {
                *self = *self * rhs;
            }
        }
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::ops::DivAssign<F> for $name<T, F, $($c),*> {
            #[inline]
            fn div_assign(&mut self, rhs: F) {
                *self = *self / rhs;
            }
        }

        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::iter::Sum for $name<T, F, $($c),*> {
            #[inline]
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                iter.fold(Self::zero(), |acc, x| acc + x)
            }
        }
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> core::iter::Product for $name<T, F, $($c),*> {
            #[inline]
            fn product<I: Iterator<Item = Self>>(iter: I) -> Self {
                iter.fold(Self::one(), |acc, x| acc * x)
            }
        }

        /// Equality compares real parts only, consistent with the ordering; compare the
        /// derivative parts explicitly where they matter.
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> PartialEq for $name<T, F, $($c),*> {
            #[inline]
            fn eq(&self, other: &Self) -> bool {
                self.re() == other.re()
            }
        }
        /// Ordering by real part, as a branch in the differentiated code sees it.
        impl<F: Real, T: DualNum<F>, $(const $c: usize),*> PartialOrd for $name<T, F, $($c),*> {
            #[inline]
            fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
                self.re().partial_cmp(&other.re())
            }
        }

        impl_derived_ops!(@left $name, [$($c),*], f64);
        impl_derived_ops!(@left $name, [$($c),*], f32);
    };
    (@left $name:ident, [$($c:ident),*], $f:ty) => {
        impl<T: DualNum<$f>, $(const $c: usize),*> core::ops::Add<$name<T, $f, $($c),*>> for $f {
            type Output = $name<T, $f, $($c),*>;
            #[inline]
            fn add(self, rhs: $name<T, $f, $($c),*>) -> Self::Output {
                rhs + self
            }
        }
        impl<T: DualNum<$f>, $(const $c: usize),*> core::ops::Sub<$name<T, $f, $($c),*>> for $f {
            type Output = $name<T, $f, $($c),*>;
            #[inline]
            fn sub(self, rhs: $name<T, $f, $($c),*>) -> Self::Output {
                -rhs + self
            }
        }
        impl<T: DualNum<$f>, $(const $c: usize),*> core::ops::Mul<$name<T, $f, $($c),*>> for $f {
            type Output = $name<T, $f, $($c),*>;
            #[inline]
            fn mul(self, rhs: $name<T, $f, $($c),*>) -> Self::Output {
                rhs * self
            }
        }
        impl<T: DualNum<$f>, $(const $c: usize),*> core::ops::Div<$name<T, $f, $($c),*>> for $f {
            type Output = $name<T, $f, $($c),*>;
            #[inline]
            fn div(self, rhs: $name<T, $f, $($c),*>) -> Self::Output {
                <$name<T, $f, $($c),*> as DualNum<$f>>::from_re(self) / rhs
            }
        }
    };
}

pub(crate) use impl_derived_ops;
