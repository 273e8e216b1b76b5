//! One side of a binary kernel: array or broadcast scalar, with or without tangents.

use super::error::{check_primal, check_rows, check_tangent};
use super::lanes::Src;
use super::KernelError;

/// One operand of a binary kernel ([`add`](super::add), [`mul`](super::mul), [`binary`](super::binary), ...)
/// or of [`dot`](super::dot).
///
/// With `n` elements and `k` tangents:
///
/// | variant | primal | tangent |
/// |---|---|---|
/// | [`Operand::Array`] | `n` values | `k * n` values, row `j` = `tangent[j*n..(j+1)*n]` |
/// | [`Operand::Rows`] | `n` values | `k` rows of `n` values, `stride` apart |
/// | [`Operand::ArrayConst`] | `n` values | none (zero) |
/// | [`Operand::Scalar`] | one value, broadcast | `k` values, broadcast along the array |
/// | [`Operand::ScalarConst`] | one value, broadcast | none (zero) |
///
/// A constant's tangent is not stored and its term is left out of the derivative, so
/// `array * 2.0` is `Operand::Array { .. }` times `Operand::ScalarConst(2.0)` and
/// `2.0 - array` is `ScalarConst(2.0)` minus `Array { .. }`.
///
/// ```
/// use duals::kernels::{mul, Operand};
/// // x = [1, 2] with one tangent (dx = 1), times 3: value 3x, derivative 3
/// let (p, t) = ([1.0, 2.0], [1.0, 1.0]);
/// let (mut out_p, mut out_t) = ([0.0; 2], [0.0; 2]);
/// let x = Operand::Array { primal: &p, tangent: &t };
/// mul(x, Operand::ScalarConst(3.0), 1, &mut out_p, &mut out_t).unwrap();
/// assert_eq!((out_p, out_t), ([3.0, 6.0], [3.0, 3.0]));
/// ```
#[derive(Clone, Copy, Debug)]
pub enum Operand<'a> {
    /// An array of duals: `n` primal values and `k * n` tangent values, tangent axis first.
    Array {
        /// `n` values.
        primal: &'a [f64],
        /// `k * n` values; row `j` is `tangent[j*n..(j+1)*n]`.
        tangent: &'a [f64],
    },
    /// An array of duals whose tangent rows are `stride >= n` values apart (a view such as
    /// `x[:n]` of a longer array's tangent, read in place): row `j` is
    /// `tangent[j*stride..j*stride + n]`, and `tangent` holds `(k - 1) * stride + n` values
    /// (none for `k = 0`). The kernels give the same results as for [`Operand::Array`] with the
    /// rows copied together.
    Rows {
        /// `n` values.
        primal: &'a [f64],
        /// `(k - 1) * stride + n` values; row `j` starts at `j * stride`.
        tangent: &'a [f64],
        /// The distance between the starts of consecutive rows, `>= n`.
        stride: usize,
    },
    /// An array of constants: `n` values whose tangents are zero.
    ArrayConst(&'a [f64]),
    /// One dual broadcast to every element: a value and its `k` tangents.
    Scalar {
        /// The value.
        primal: f64,
        /// `k` values, `tangent[j]` is the `j`-th tangent.
        tangent: &'a [f64],
    },
    /// One constant broadcast to every element.
    ScalarConst(f64),
}

impl<'a> Operand<'a> {
    /// Whether the operand has `n` elements rather than being broadcast.
    pub fn is_array(&self) -> bool {
        matches!(
            self,
            Operand::Array { .. } | Operand::Rows { .. } | Operand::ArrayConst(_)
        )
    }

    /// Whether the operand carries tangents (is not a constant).
    pub fn has_tangent(&self) -> bool {
        matches!(
            self,
            Operand::Array { .. } | Operand::Rows { .. } | Operand::Scalar { .. }
        )
    }

    /// The value of element `i` (a broadcast scalar's value for every `i`).
    ///
    /// # Panics
    /// If `i` is out of bounds of an array operand.
    pub fn primal_at(&self, i: usize) -> f64 {
        self.primal().get(i)
    }

    /// The number of elements of an array operand; `None` for a broadcast scalar.
    pub fn array_len(&self) -> Option<usize> {
        match *self {
            Operand::Array { primal, .. }
            | Operand::Rows { primal, .. }
            | Operand::ArrayConst(primal) => Some(primal.len()),
            Operand::Scalar { .. } | Operand::ScalarConst(_) => None,
        }
    }

    /// The operand restricted to tangent rows `j0..j1` of `n` elements (a constant unchanged):
    /// a kernel run on the rows `j0..j1` of both operands computes the same values as rows
    /// `j0..j1` of the kernel run on all of them, so a kernel can be split into blocks of rows.
    ///
    /// # Panics
    /// If the rows are not there (`j0 > j1` or `j1` beyond the operand's rows); a checked
    /// operand (see the kernels' errors) has all of them.
    pub fn row_block(&self, j0: usize, j1: usize, n: usize) -> Operand<'a> {
        match *self {
            Operand::Array { primal, tangent } => Operand::Array {
                primal,
                tangent: &tangent[j0 * n..j1 * n],
            },
            Operand::Rows {
                primal,
                tangent,
                stride,
            } => Operand::Rows {
                primal,
                tangent: if j1 > j0 {
                    &tangent[j0 * stride..(j1 - 1) * stride + n]
                } else {
                    &[]
                },
                stride,
            },
            Operand::Scalar { primal, tangent } => Operand::Scalar {
                primal,
                tangent: &tangent[j0..j1],
            },
            Operand::ArrayConst(_) | Operand::ScalarConst(_) => *self,
        }
    }

    /// Checks the lengths against `n` elements and `k` tangents; `names` are the primal and
    /// tangent argument names for the error.
    pub(super) fn check(
        &self,
        names: [&'static str; 2],
        n: usize,
        k: usize,
    ) -> Result<(), KernelError> {
        match *self {
            Operand::Array { primal, tangent } => {
                check_primal(names[0], primal.len(), n)?;
                check_tangent(names[1], tangent.len(), k, n)
            }
            Operand::Rows {
                primal,
                tangent,
                stride,
            } => {
                check_primal(names[0], primal.len(), n)?;
                check_rows(names[1], tangent.len(), k, n, stride)
            }
            Operand::ArrayConst(primal) => check_primal(names[0], primal.len(), n),
            Operand::Scalar { tangent, .. } => check_tangent(names[1], tangent.len(), k, 1),
            Operand::ScalarConst(_) => Ok(()),
        }
    }

    /// The primal values as a stream.
    #[inline(always)]
    pub(super) fn primal(&self) -> Src<'a> {
        match *self {
            Operand::Array { primal, .. }
            | Operand::Rows { primal, .. }
            | Operand::ArrayConst(primal) => Src::Slice(primal),
            Operand::Scalar { primal, .. } | Operand::ScalarConst(primal) => Src::Splat(primal),
        }
    }

    /// Tangent row `j` over elements `start..end` of `n`; `None` for a constant.
    #[inline(always)]
    pub(super) fn tangent_row(
        &self,
        j: usize,
        n: usize,
        start: usize,
        end: usize,
    ) -> Option<Src<'a>> {
        match *self {
            Operand::Array { tangent, .. } => {
                Some(Src::Slice(&tangent[j * n + start..j * n + end]))
            }
            Operand::Rows {
                tangent, stride, ..
            } => Some(Src::Slice(&tangent[j * stride + start..j * stride + end])),
            Operand::Scalar { tangent, .. } => Some(Src::Splat(tangent[j])),
            Operand::ArrayConst(_) | Operand::ScalarConst(_) => None,
        }
    }
}
