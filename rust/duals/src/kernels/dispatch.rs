//! Instruction-set levels and runtime dispatch.

use core::fmt;

use pulp::{Simd, WithSimd};

use super::KernelError;

/// An instruction set a kernel can run with.
///
/// Every level runs the same kernel body, compiled once per level with that level's target
/// features. Levels differ only in vector width and in whether `a * b + c` is fused (one
/// rounding) or not (two roundings), so results agree up to the last bits.
///
/// | level | vector | `f64` lanes | `a * b + c` |
/// |---|---|---|---|
/// | [`Level::Scalar`] | none | 1 | two roundings |
/// | [`Level::V3`] | AVX2 + FMA (x86-64-v3) | 4 | fused |
/// | [`Level::V4`] | AVX-512 F/BW/CD/DQ/VL (x86-64-v4) | 8 | fused |
///
/// The variants exist on every target; on targets other than x86 and x86-64 only
/// [`Level::Scalar`] is available.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Portable scalar code, one element at a time. Always available.
    Scalar,
    /// x86-64-v3: 256-bit AVX2 with FMA.
    V3,
    /// x86-64-v4: 512-bit AVX-512.
    V4,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 3] = [Level::Scalar, Level::V3, Level::V4];

    /// Whether the running CPU (and this build) can run `self`.
    ///
    /// The CPU is queried once per level; later calls read a cached flag.
    pub fn is_available(self) -> bool {
        run(self, || ()).is_ok()
    }

    /// The levels the running CPU supports, narrowest first; always starts with
    /// [`Level::Scalar`].
    ///
    /// ```
    /// use duals::kernels::Level;
    /// assert_eq!(Level::available()[0], Level::Scalar);
    /// ```
    pub fn available() -> Vec<Level> {
        Level::ALL
            .into_iter()
            .filter(|level| level.is_available())
            .collect()
    }

    /// The widest level the running CPU supports: what the kernels without `_with_level` use.
    pub fn best() -> Level {
        [Level::V4, Level::V3]
            .into_iter()
            .find(|level| level.is_available())
            .unwrap_or(Level::Scalar)
    }

    /// Vector width in `f64` lanes.
    pub fn lanes(self) -> usize {
        match self {
            Level::Scalar => 1,
            Level::V3 => 4,
            Level::V4 => 8,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Scalar => "Scalar",
            Level::V3 => "V3 (AVX2+FMA)",
            Level::V4 => "V4 (AVX-512)",
        })
    }
}

/// The level the kernels pick on this CPU: the same as [`Level::best`].
///
/// ```
/// let level = duals::kernels::detected_level();
/// assert!(duals::kernels::Level::available().contains(&level));
/// ```
pub fn detected_level() -> Level {
    Level::best()
}

/// Runs `op` compiled for `level`, or says that this CPU lacks `level`.
///
/// This is the one place that names pulp's per-architecture tokens; everything else is
/// generic over [`pulp::Simd`].
pub(super) fn run<Op: WithSimd>(level: Level, op: Op) -> Result<Op::Output, KernelError> {
    match level {
        Level::Scalar => return Ok(op.with_simd(pulp::Scalar::new())),
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Level::V3 => {
            if let Some(simd) = pulp::x86::V3::try_new() {
                return Ok(Simd::vectorize(simd, op));
            }
        }
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Level::V4 => {
            if let Some(simd) = pulp::x86::V4::try_new() {
                return Ok(Simd::vectorize(simd, op));
            }
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
    Err(KernelError::LevelUnavailable(level))
}
