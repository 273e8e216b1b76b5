//! The one error type of the drivers.

use core::fmt;

/// What can go wrong in a driver call. Every message says how to fix the call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An argument has the wrong length.
    LengthMismatch {
        /// Which argument (`"v"`, `"out"`, …).
        argument: &'static str,
        /// The length the call needs.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A chunk width that is not compiled in.
    InvalidChunk {
        /// The width asked for.
        requested: usize,
    },
    /// A result too large to allocate.
    TooLarge {
        /// Rows of the result.
        rows: usize,
        /// Columns of the result.
        cols: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LengthMismatch {
                argument,
                expected,
                found,
            } => write!(
                f,
                "`{argument}` has length {found} but this call needs length {expected}; \
                 pass a slice of the input's (or output's) length"
            ),
            Error::InvalidChunk { requested } => write!(
                f,
                "chunk width {requested} is not available; use one of {:?} or Chunk::Auto",
                super::CHUNK_WIDTHS
            ),
            Error::TooLarge { rows, cols } => write!(
                f,
                "a {rows} x {cols} result does not fit in memory; \
                 use jvp/hvp for products with a vector instead of the full matrix"
            ),
        }
    }
}

impl std::error::Error for Error {}
