//! The one error type of tapes.

use core::fmt;

use crate::drivers::Error;
use crate::kernels::KernelError;

/// What can go wrong building, evaluating or loading a tape. Every message says what to fix.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TapeError {
    /// A point with the wrong number of inputs.
    InputLength {
        /// `n`, the number of inputs of the tape.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// Another argument (a direction, an output buffer) has the wrong length.
    Length {
        /// Which argument.
        argument: &'static str,
        /// The length the call needs.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A batch of points whose length is not a multiple of the number of inputs.
    BatchShape {
        /// `n`, the number of inputs (the row length of the batch).
        n_inputs: usize,
        /// The length given.
        found: usize,
    },
    /// A handle that this builder did not hand out.
    UnknownVar {
        /// The handle.
        var: u32,
        /// The number of values the builder has.
        len: usize,
    },
    /// A rule name that is not in the table.
    UnknownRule {
        /// The name given.
        name: String,
    },
    /// A comparison name that is not known.
    UnknownComparison {
        /// The name given.
        name: String,
    },
    /// A call that needs a scalar-valued function (`m = 1`) on a tape with `m ≠ 1`.
    NotScalar {
        /// The call.
        call: &'static str,
        /// The tape's number of outputs.
        outputs: usize,
    },
    /// A call that needs an elementwise function of one variable (`n = m = 1`).
    NotElementwise {
        /// The call.
        call: &'static str,
        /// The tape's number of inputs.
        inputs: usize,
        /// The tape's number of outputs.
        outputs: usize,
    },
    /// A sparsity pattern or coloring that does not fit the tape or each other.
    Pattern {
        /// What does not fit.
        reason: String,
    },
    /// More values than 32-bit handles can number, or a result too large to allocate.
    TooLarge {
        /// What is too large.
        what: String,
    },
    /// Bytes that are not a tape: truncated, altered, or not written by [`Tape::to_bytes`](super::Tape::to_bytes).
    Corrupt {
        /// What is wrong.
        reason: String,
    },
    /// A tape written by a format version this build does not read.
    UnsupportedVersion {
        /// The version in the bytes.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// An error of a driver.
    Driver(Error),
    /// An error of an array kernel.
    Kernel(KernelError),
}

impl fmt::Display for TapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapeError::InputLength { expected, found } => write!(
                f,
                "compiled function expects {expected} inputs, got {found}; \
                 pass a point of the shape it was traced at"
            ),
            TapeError::Length {
                argument,
                expected,
                found,
            } => write!(
                f,
                "`{argument}` has length {found} but this call needs length {expected}"
            ),
            TapeError::BatchShape { n_inputs, found } => write!(
                f,
                "a batch of points has {found} values, which is not a whole number of points \
                 of {n_inputs} inputs; pass B points as a row-major B x {n_inputs} array"
            ),
            TapeError::UnknownVar { var, len } => write!(
                f,
                "value {var} does not exist: this builder has {len} values; \
                 pass a handle returned by this builder"
            ),
            TapeError::UnknownRule { name } => write!(
                f,
                "no rule named {name:?}; unary rules are {:?}, binary rules are {:?}",
                crate::rules::UnaryRule::NAMES,
                crate::rules::BinaryRule::NAMES
            ),
            TapeError::UnknownComparison { name } => write!(
                f,
                "no comparison named {name:?}; use one of <, <=, >, >=, ==, != \
                 (or lt, le, gt, ge, eq, ne)"
            ),
            TapeError::NotScalar { call, outputs } => write!(
                f,
                "{call} needs a function with one output, this tape has {outputs}; \
                 use jacobian (or jvp) for a vector-valued function"
            ),
            TapeError::NotElementwise {
                call,
                inputs,
                outputs,
            } => write!(
                f,
                "{call} needs a function traced at a scalar (1 input, 1 output), this tape \
                 has {inputs} inputs and {outputs} outputs; use jacobian_batch"
            ),
            TapeError::Pattern { reason } => write!(
                f,
                "{reason}; compute the pattern with Tape::sparsity and its coloring with \
                 Pattern::coloring"
            ),
            TapeError::TooLarge { what } => write!(f, "{what} is too large"),
            TapeError::Corrupt { reason } => write!(
                f,
                "these bytes are not a valid tape ({reason}); \
                 pass the bytes of Tape::to_bytes unaltered"
            ),
            TapeError::UnsupportedVersion { found, supported } => write!(
                f,
                "tape format version {found} is not supported (this build reads version \
                 {supported}); trace the function again with this version"
            ),
            TapeError::Driver(e) => e.fmt(f),
            TapeError::Kernel(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TapeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TapeError::Driver(e) => Some(e),
            TapeError::Kernel(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for TapeError {
    fn from(e: Error) -> Self {
        TapeError::Driver(e)
    }
}

impl From<KernelError> for TapeError {
    fn from(e: KernelError) -> Self {
        TapeError::Kernel(e)
    }
}
