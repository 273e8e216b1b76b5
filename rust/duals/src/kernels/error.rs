//! The error type of the array kernels.

use core::fmt;

use super::Level;

/// Why a kernel refused its arguments. Nothing is written to the outputs when an error is
/// returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelError {
    /// A primal slice does not hold `n` values, one per element of the array.
    PrimalLength {
        /// The argument, e.g. `"out_p"` or `"b.primal"`.
        arg: &'static str,
        /// `n`, the number of elements.
        expected: usize,
        /// The length that was passed.
        found: usize,
    },
    /// A tangent slice does not hold `k` rows of `n` values (`n = 1` for a broadcast scalar).
    TangentLength {
        /// The argument, e.g. `"t"` or `"a.tangent"`.
        arg: &'static str,
        /// The number of tangents.
        k: usize,
        /// The number of elements.
        n: usize,
        /// The length that was passed.
        found: usize,
    },
    /// A tangent slice of rows `stride` apart ([`Operand::Rows`](super::Operand::Rows)) does
    /// not hold `(k - 1) * stride + n` values, or `stride < n`.
    TangentRows {
        /// The argument, e.g. `"a.tangent"`.
        arg: &'static str,
        /// The number of tangents.
        k: usize,
        /// The number of elements.
        n: usize,
        /// The distance between row starts.
        stride: usize,
        /// The length that was passed.
        found: usize,
    },
    /// `k * n` does not fit in `usize`.
    SizeOverflow {
        /// The number of tangents.
        k: usize,
        /// The number of elements.
        n: usize,
    },
    /// [`dot`](super::dot) was given two broadcast scalars, so there is no array length.
    NoArrayOperand,
    /// A second-order kernel ([`hyper_mul`](super::hyper_mul),
    /// [`hyper_unary`](super::hyper_unary)) was given an operand without tangent rows.
    HyperOperand {
        /// The argument.
        arg: &'static str,
    },
    /// A `_with_level` kernel was asked for a level this CPU (or target) cannot run.
    LevelUnavailable(Level),
    /// A [`Fusion`](super::Fusion) was evaluated with another number of inputs than it was
    /// built for, or given a register that is not one of its own.
    FusedArguments {
        /// The inputs the expression has.
        expected: usize,
        /// The inputs that were passed.
        found: usize,
    },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KernelError::PrimalLength {
                arg,
                expected,
                found,
            } => write!(
                f,
                "`{arg}` has {found} values, expected n = {expected} (one per element)"
            ),
            KernelError::TangentLength { arg, k, n, found } => write!(
                f,
                "`{arg}` has {found} values, expected k*n = {k}*{n} = {} \
                 (k tangent rows of n values, tangent axis first)",
                k.saturating_mul(n)
            ),
            KernelError::TangentRows {
                arg,
                k,
                n,
                stride,
                found,
            } => write!(
                f,
                "`{arg}` has {found} values and rows {stride} apart; expected a stride of at \
                 least n = {n} and (k-1)*stride + n values for k = {k} rows"
            ),
            KernelError::SizeOverflow { k, n } => {
                write!(f, "k*n = {k}*{n} tangent values overflow usize")
            }
            KernelError::NoArrayOperand => f.write_str(
                "dot needs at least one array operand to give the length; \
                 for two scalars, multiply them",
            ),
            KernelError::HyperOperand { arg } => write!(
                f,
                "`{arg}` must be an array with tangent rows (Operand::Array or Operand::Rows); \
                 a product with a constant is linear: use mul on all rows"
            ),
            KernelError::LevelUnavailable(level) => write!(
                f,
                "dispatch level {level} is not available on this CPU; \
                 choose one of Level::available()"
            ),
            KernelError::FusedArguments { expected, found } => write!(
                f,
                "a fused expression of {expected} inputs was given {found} inputs or a \
                 register of another expression; build the registers with the same Fusion"
            ),
        }
    }
}

impl std::error::Error for KernelError {}

/// `Ok` if `found == expected`, else a [`KernelError::PrimalLength`] naming `arg`.
pub(super) fn check_primal(arg: &'static str, found: usize, n: usize) -> Result<(), KernelError> {
    if found == n {
        Ok(())
    } else {
        Err(KernelError::PrimalLength {
            arg,
            expected: n,
            found,
        })
    }
}

/// `Ok` if `found == k * n`, else a [`KernelError::TangentLength`] (or
/// [`KernelError::SizeOverflow`]) naming `arg`.
pub(super) fn check_tangent(
    arg: &'static str,
    found: usize,
    k: usize,
    n: usize,
) -> Result<(), KernelError> {
    match k.checked_mul(n) {
        None => Err(KernelError::SizeOverflow { k, n }),
        Some(expected) if expected == found => Ok(()),
        Some(_) => Err(KernelError::TangentLength { arg, k, n, found }),
    }
}

/// `Ok` if `found == (k - 1) * stride + n` (`0` for `k = 0`) and `stride >= n`, else a
/// [`KernelError::TangentRows`] (or [`KernelError::SizeOverflow`]) naming `arg`.
pub(super) fn check_rows(
    arg: &'static str,
    found: usize,
    k: usize,
    n: usize,
    stride: usize,
) -> Result<(), KernelError> {
    let expected = match k.checked_sub(1) {
        None => Some(0),
        Some(rows) => rows.checked_mul(stride).and_then(|e| e.checked_add(n)),
    };
    match expected {
        None => Err(KernelError::SizeOverflow { k, n: stride }),
        Some(expected) if expected == found && stride >= n => Ok(()),
        Some(_) => Err(KernelError::TangentRows {
            arg,
            k,
            n,
            stride,
            found,
        }),
    }
}
