//! `DualDyn`: one dual number whose number of tangents is chosen at run time.

use core::fmt;

use crate::rules::{Binary, Unary, UnaryRule};

/// Tangents stored inline up to this count (no heap allocation).
const INLINE: usize = 4;

/// A dual number `re + Σ eps[i] εᵢ` with a run-time number `k` of tangents.
///
/// [`Dual`](crate::Dual) fixes `k` at compile time, which suits Rust code written for the
/// drivers; bindings that learn `k` only at run time (the Python `duals.Dual` scalar, which
/// carries the tangent width of the Jacobian chunk it comes from) use this type instead. Up to
/// four tangents are stored inline, more on the heap.
///
/// The rules are the same as [`Dual`](crate::Dual)'s:
///
/// - sum and difference: `(a ± b)' = a' ± b'`;
/// - product: `(a b)' = a' b + a b'`;
/// - quotient: `(a / b)' = (a' - (a/b) b') / b` (no `b²`, as the array kernels);
/// - every elementary function through [`DualDyn::unary`] (the rule table, [`crate::rules`]).
///
/// The linear operations ([`try_add`](Self::try_add), [`try_sub`](Self::try_sub),
/// [`neg`](Self::neg), [`add_re`](Self::add_re), [`sub_re`](Self::sub_re),
/// [`rsub_re`](Self::rsub_re), [`mul_re`](Self::mul_re), [`div_re`](Self::div_re)) act on
/// every tangent alike, so they are also correct for the tangent rows of a second-order
/// (hyper-dual) layout; the product, quotient and chain rules are first-order only.
///
/// Binary operations between two `DualDyn` need the same number of tangents and return
/// [`TangentMismatch`] otherwise; nothing here panics.
///
/// ```
/// use duals::DualDyn;
/// use duals::rules::UnaryRule;
/// let x = DualDyn::new(2.0, &[1.0, 0.0]);
/// let y = DualDyn::new(3.0, &[0.0, 1.0]);
/// let z = x.try_mul(&y).unwrap().unary(UnaryRule::Sin); // sin(x y)
/// let c = 6.0_f64.cos();
/// assert_eq!(z.re(), 6.0_f64.sin());
/// assert_eq!(z.eps(), &[3.0 * c, 2.0 * c]);
/// ```
#[derive(Clone, PartialEq)]
pub struct DualDyn {
    re: f64,
    eps: Tangents,
}

/// Two dual numbers with different numbers of tangents met in a binary operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TangentMismatch {
    /// Tangents of the left operand.
    pub left: usize,
    /// Tangents of the right operand.
    pub right: usize,
}

impl fmt::Display for TangentMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dual numbers with {} and {} tangents cannot be combined",
            self.left, self.right
        )
    }
}

impl std::error::Error for TangentMismatch {}

#[derive(Clone)]
enum Tangents {
    Inline { len: usize, data: [f64; INLINE] },
    Heap(Vec<f64>),
}

impl Tangents {
    /// The first `k` values of `values` (which yields exactly `k` in every use here).
    #[inline]
    fn collect(k: usize, values: impl Iterator<Item = f64>) -> Self {
        if k <= INLINE {
            let mut values = values.take(k);
            Tangents::Inline {
                len: k,
                data: inline_lanes(k, |_| values.next().unwrap_or(0.0)),
            }
        } else {
            Tangents::Heap(values.take(k).collect())
        }
    }

    #[inline]
    fn as_slice(&self) -> &[f64] {
        match self {
            Tangents::Inline { len, data } => data.get(..*len).unwrap_or(data),
            Tangents::Heap(v) => v,
        }
    }
}

/// The lanes of inline tangents: `value(i)` for the first `len` (in order), zero after.
///
/// A fixed number of lanes, each computed or zeroed, compiles to whole-array vector stores; a
/// loop of unknown count stores lane by lane, and copying its result out with wider loads then
/// stalls the CPU's store forwarding: the larger part of the cost of a scalar operation's
/// arithmetic.
#[inline]
fn inline_lanes(len: usize, mut value: impl FnMut(usize) -> f64) -> [f64; INLINE] {
    core::array::from_fn(|i| if i < len { value(i) } else { 0.0 })
}

impl PartialEq for Tangents {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for DualDyn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DualDyn")
            .field("re", &self.re)
            .field("eps", &self.eps())
            .finish()
    }
}

impl DualDyn {
    /// A dual number from its primal and tangents (copied).
    #[inline]
    pub fn new(re: f64, eps: &[f64]) -> Self {
        Self::from_iter(re, eps.len(), eps.iter().copied())
    }

    /// A dual number from its primal and `k` tangents yielded by `eps` (a shorter iterator
    /// leaves the remaining tangents zero when stored inline; give exactly `k`).
    #[inline]
    pub fn from_iter(re: f64, k: usize, eps: impl Iterator<Item = f64>) -> Self {
        Self {
            re,
            eps: Tangents::collect(k, eps),
        }
    }

    /// A constant with `k` zero tangents.
    #[inline]
    pub fn constant(re: f64, k: usize) -> Self {
        Self::from_iter(re, k, core::iter::repeat_n(0.0, k))
    }

    /// The primal.
    #[inline]
    pub fn re(&self) -> f64 {
        self.re
    }

    /// The tangents.
    #[inline]
    pub fn eps(&self) -> &[f64] {
        self.eps.as_slice()
    }

    /// The number of tangents.
    #[inline]
    pub fn k(&self) -> usize {
        self.eps().len()
    }

    #[inline]
    fn map(&self, re: f64, f: impl Fn(f64) -> f64) -> Self {
        if let Tangents::Inline { len, data } = &self.eps {
            let len = *len;
            return Self {
                re,
                eps: Tangents::Inline {
                    len,
                    data: inline_lanes(len, |i| f(data[i])),
                },
            };
        }
        Self::from_iter(re, self.k(), self.eps().iter().map(|&e| f(e)))
    }

    #[inline]
    fn zip(
        &self,
        rhs: &Self,
        re: f64,
        f: impl Fn(f64, f64) -> f64,
    ) -> Result<Self, TangentMismatch> {
        if let (Tangents::Inline { len, data: a }, Tangents::Inline { len: lb, data: b }) =
            (&self.eps, &rhs.eps)
        {
            if len == lb {
                let len = *len;
                return Ok(Self {
                    re,
                    eps: Tangents::Inline {
                        len,
                        data: inline_lanes(len, |i| f(a[i], b[i])),
                    },
                });
            }
        }
        let (a, b) = (self.eps(), rhs.eps());
        if a.len() != b.len() {
            return Err(TangentMismatch {
                left: a.len(),
                right: b.len(),
            });
        }
        Ok(Self::from_iter(
            re,
            a.len(),
            a.iter().zip(b).map(|(&x, &y)| f(x, y)),
        ))
    }

    /// The chain rule: `f(self)` given `r = (f, f', f'')` at `self.re()`; tangents `f' eps`.
    #[inline]
    pub fn chain(&self, r: Unary<f64>) -> Self {
        self.map(r.f, |e| e * r.d1)
    }

    /// `rule(self)`: the table entry's value and derivative at the primal, then
    /// [`chain`](Self::chain).
    #[inline]
    pub fn unary(&self, rule: UnaryRule) -> Self {
        self.chain(rule.eval(self.re))
    }

    /// `f(c, self)` for a function of two arguments whose first argument `c` is a constant,
    /// given `r` at `(c, self.re())`: value `r.f`, tangents `∂f/∂b · eps` (e.g. `c ** self`
    /// from [`crate::rules::pow`]).
    #[inline]
    pub fn chain_second(&self, r: Binary<f64>) -> Self {
        self.map(r.f, |e| e * r.db)
    }

    /// `self + rhs`.
    ///
    /// # Errors
    /// [`TangentMismatch`] if the tangent counts differ.
    #[inline]
    pub fn try_add(&self, rhs: &Self) -> Result<Self, TangentMismatch> {
        self.zip(rhs, self.re + rhs.re, |a, b| a + b)
    }

    /// `self - rhs`.
    ///
    /// # Errors
    /// [`TangentMismatch`] if the tangent counts differ.
    #[inline]
    pub fn try_sub(&self, rhs: &Self) -> Result<Self, TangentMismatch> {
        self.zip(rhs, self.re - rhs.re, |a, b| a - b)
    }

    /// `self * rhs` (product rule): tangents `a' b + a b'`.
    ///
    /// # Errors
    /// [`TangentMismatch`] if the tangent counts differ.
    #[inline]
    pub fn try_mul(&self, rhs: &Self) -> Result<Self, TangentMismatch> {
        let (a, b) = (self.re, rhs.re);
        self.zip(rhs, a * b, |ta, tb| ta * b + a * tb)
    }

    /// `self / rhs` (quotient rule): `f = a / b`, tangents `(a' - f b') / b`.
    ///
    /// # Errors
    /// [`TangentMismatch`] if the tangent counts differ.
    #[inline]
    pub fn try_div(&self, rhs: &Self) -> Result<Self, TangentMismatch> {
        let b = rhs.re;
        let f = self.re / b;
        self.zip(rhs, f, |ta, tb| (ta - f * tb) / b)
    }

    /// `-self`.
    #[inline]
    pub fn neg(&self) -> Self {
        self.map(-self.re, |e| -e)
    }

    /// `self + c` for a constant `c`.
    #[inline]
    pub fn add_re(&self, c: f64) -> Self {
        self.map(self.re + c, |e| e)
    }

    /// `self - c` for a constant `c`.
    #[inline]
    pub fn sub_re(&self, c: f64) -> Self {
        self.map(self.re - c, |e| e)
    }

    /// `c - self` for a constant `c`.
    #[inline]
    pub fn rsub_re(&self, c: f64) -> Self {
        self.map(c - self.re, |e| -e)
    }

    /// `self * c` for a constant `c`.
    #[inline]
    pub fn mul_re(&self, c: f64) -> Self {
        self.map(self.re * c, |e| e * c)
    }

    /// `self / c` for a constant `c`.
    #[inline]
    pub fn div_re(&self, c: f64) -> Self {
        self.map(self.re / c, |e| e / c)
    }

    /// `c / self` for a constant `c` (quotient rule): `f = c / b`, tangents `-(f b') / b`.
    #[inline]
    pub fn rdiv_re(&self, c: f64) -> Self {
        let b = self.re;
        let f = c / b;
        self.map(f, |e| -(f * e) / b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{self, BinaryRule};
    use crate::{DualNum, DualVec64};

    fn same(a: &DualDyn, b: &DualVec64<5>) {
        assert_eq!(a.re(), b.re);
        assert_eq!(a.eps(), &b.eps[..]);
    }

    #[test]
    fn agrees_with_the_fixed_width_dual() {
        let (ea, eb) = ([1.0, 0.5, -2.0, 0.25, 3.0], [0.0, 1.0, 4.0, -1.5, 0.125]);
        let (a, b) = (DualDyn::new(1.7, &ea), DualDyn::new(-0.3, &eb));
        let (fa, fb) = (DualVec64::new(1.7, ea), DualVec64::new(-0.3, eb));
        same(&a.try_add(&b).unwrap(), &(fa + fb));
        same(&a.try_sub(&b).unwrap(), &(fa - fb));
        same(&a.try_mul(&b).unwrap(), &(fa * fb));
        same(&a.neg(), &(-fa));
        same(&a.add_re(2.0), &(fa + 2.0));
        same(&a.mul_re(2.0), &(fa * 2.0));
        same(&a.unary(UnaryRule::Sin), &fa.sin());
        same(&a.unary(UnaryRule::Powi(3)), &fa.powi(3));
        let q = a.try_div(&b).unwrap();
        let fq = fa / fb;
        assert_eq!(q.re(), fq.re);
        for (x, y) in q.eps().iter().zip(fq.eps) {
            assert!((x - y).abs() <= 1e-15 * y.abs().max(1.0));
        }
    }

    #[test]
    fn inline_and_heap_storage() {
        for k in [0, 1, 4, 5, 9] {
            let e: Vec<f64> = (0..k).map(|i| i as f64).collect();
            let x = DualDyn::new(2.0, &e);
            assert_eq!(x.k(), k);
            assert_eq!(x.eps(), &e[..]);
            assert_eq!(x.mul_re(2.0).eps().len(), k);
            assert_eq!(DualDyn::constant(1.0, k).eps(), &vec![0.0; k][..]);
        }
    }

    #[test]
    fn every_width_gives_the_elementwise_rules() {
        // Inline widths (up to four, computed lane by lane over a fixed array) and heap widths.
        for k in 0..=6 {
            let ea: Vec<f64> = (0..k).map(|i| 0.5 + i as f64).collect();
            let eb: Vec<f64> = (0..k).map(|i| 1.5 - 2.0 * i as f64).collect();
            let (a, b) = (DualDyn::new(1.25, &ea), DualDyn::new(-0.75, &eb));
            let each = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
                ea.iter().zip(&eb).map(|(&x, &y)| f(x, y)).collect()
            };
            let (ra, rb) = (1.25, -0.75);
            let q = ra / rb;
            assert_eq!(
                a.try_add(&b).unwrap(),
                DualDyn::new(ra + rb, &each(&|x, y| x + y))
            );
            assert_eq!(
                a.try_sub(&b).unwrap(),
                DualDyn::new(ra - rb, &each(&|x, y| x - y))
            );
            let product = each(&|x, y| x * rb + ra * y);
            assert_eq!(a.try_mul(&b).unwrap(), DualDyn::new(ra * rb, &product));
            let quotient = each(&|x, y| (x - q * y) / rb);
            assert_eq!(a.try_div(&b).unwrap(), DualDyn::new(q, &quotient));
            assert_eq!(a.neg(), DualDyn::new(-ra, &each(&|x, _| -x)));
            assert_eq!(
                a.mul_re(3.0),
                DualDyn::new(ra * 3.0, &each(&|x, _| x * 3.0))
            );
            if k > 0 {
                let shorter = DualDyn::new(1.0, &ea[1..]);
                assert!(a.try_mul(&shorter).is_err());
            }
        }
    }

    #[test]
    fn mismatched_widths_are_an_error() {
        let (a, b) = (DualDyn::new(1.0, &[1.0]), DualDyn::new(1.0, &[1.0, 2.0]));
        let e = a.try_mul(&b).unwrap_err();
        assert_eq!(e, TangentMismatch { left: 1, right: 2 });
        assert!(e.to_string().contains("1 and 2"));
    }

    #[test]
    fn constant_operands() {
        let x = DualDyn::new(4.0, &[1.0, -2.0]);
        assert_eq!(x.rsub_re(1.0), DualDyn::new(-3.0, &[-1.0, 2.0]));
        assert_eq!(x.div_re(2.0), DualDyn::new(2.0, &[0.5, -1.0]));
        assert_eq!(x.rdiv_re(2.0), DualDyn::new(0.5, &[-0.125, 0.25]));
        // 2 ** x: d/dx = 2**x ln 2
        let p = x.chain_second(BinaryRule::Pow.eval(2.0, 4.0));
        assert_eq!(p.re(), 16.0);
        assert_eq!(p.eps()[0], rules::pow(2.0, 4.0).db);
    }
}
