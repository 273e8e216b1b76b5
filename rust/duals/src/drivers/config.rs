//! Reusable configuration: chunk width, Hessian method and work buffers.

use crate::number::{Dual, Real};

use super::Error;

/// The chunk widths compiled in: a Jacobian or gradient of `n` inputs takes `⌈n/N⌉` passes of
/// `N` tangents.
pub const CHUNK_WIDTHS: [usize; 5] = [1, 2, 4, 8, 16];

/// How many tangents to carry per pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Chunk {
    /// Chosen from the input length: the smallest width that covers `n`, up to 16.
    #[default]
    Auto,
    /// A fixed width, one of [`CHUNK_WIDTHS`].
    Width(usize),
}

/// How [`hessian`](crate::hessian) seeds second-order numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HessianMethod {
    /// `Dual2` in one pass for `n ≤ 4`, hyper-dual blocks above.
    #[default]
    Auto,
    /// One pass of [`Dual2`](crate::Dual2) (primal, gradient, Hessian together); `n ≤ 8`.
    Dual2,
    /// Upper-triangular `4 × 4` blocks of [`HyperDualVec`](crate::HyperDualVec):
    /// `b(b+1)/2` passes for `b = ⌈n/4⌉`.
    HyperDual,
    /// Nested duals `Dual<Dual64, 1>`: `n(n+1)/2` passes. Slow; a cross-check.
    Nested,
}

/// Input and output buffers of one number type.
#[derive(Clone, Debug)]
pub(crate) struct Buffers<D> {
    pub(crate) x: Vec<D>,
    pub(crate) y: Vec<D>,
}

impl<D> Default for Buffers<D> {
    fn default() -> Self {
        Self {
            x: Vec::new(),
            y: Vec::new(),
        }
    }
}

impl<D: Copy> Buffers<D> {
    /// Fill `x` from the primal values with `make`, size `y` to `m` (contents unspecified).
    pub(crate) fn load<F: Copy>(&mut self, x: &[F], m: usize, make: impl Fn(F) -> D) {
        self.x.clear();
        self.x.extend(x.iter().map(|&v| make(v)));
        self.y.clear();
        if let Some(&z) = self.x.first() {
            self.y.resize(m, z);
        }
    }
}

/// A reusable driver configuration: chunk width, Hessian method, and the work buffers, so that
/// repeated calls with one `Config` do not allocate their work space again.
///
/// ```
/// use duals::{Chunk, Config};
/// let cfg = Config::<f64>::new().with_chunk(Chunk::Width(4));
/// assert_eq!(cfg.width_for(10).unwrap(), 4);
/// assert_eq!(Config::<f64>::new().width_for(3).unwrap(), 4);
/// assert_eq!(Config::<f64>::new().width_for(1000).unwrap(), 16);
/// assert_eq!(Config::<f64>::new().width_for(1000).unwrap(), 16);
/// ```
#[derive(Clone, Debug)]
pub struct Config<F: Real> {
    chunk: Chunk,
    hessian: HessianMethod,
    pub(crate) w1: Buffers<Dual<F, F, 1>>,
    pub(crate) w2: Buffers<Dual<F, F, 2>>,
    pub(crate) w4: Buffers<Dual<F, F, 4>>,
    pub(crate) w8: Buffers<Dual<F, F, 8>>,
    pub(crate) w16: Buffers<Dual<F, F, 16>>,
}

impl<F: Real> Config<F> {
    /// Automatic chunk width and Hessian method, empty buffers.
    pub fn new() -> Self {
        Self {
            chunk: Chunk::Auto,
            hessian: HessianMethod::Auto,
            w1: Buffers::default(),
            w2: Buffers::default(),
            w4: Buffers::default(),
            w8: Buffers::default(),
            w16: Buffers::default(),
        }
    }

    /// Set the chunk width.
    pub fn with_chunk(mut self, chunk: Chunk) -> Self {
        self.chunk = chunk;
        self
    }

    /// Set the Hessian method.
    pub fn with_hessian_method(mut self, method: HessianMethod) -> Self {
        self.hessian = method;
        self
    }

    /// The chunk setting.
    pub fn chunk(&self) -> Chunk {
        self.chunk
    }

    /// The Hessian method setting.
    pub fn hessian_method(&self) -> HessianMethod {
        self.hessian
    }

    /// The chunk width used for `n` inputs.
    pub fn width_for(&self, n: usize) -> Result<usize, Error> {
        match self.chunk {
            Chunk::Auto => Ok(CHUNK_WIDTHS.iter().copied().find(|&w| w >= n).unwrap_or(16)),
            Chunk::Width(w) if CHUNK_WIDTHS.contains(&w) => Ok(w),
            Chunk::Width(w) => Err(Error::InvalidChunk { requested: w }),
        }
    }
}

/// Call `$run::<N>(…, buffers of width N)` for the runtime width `$w`.
macro_rules! with_width {
    ($w:expr, $cfg:expr, $run:ident($($arg:expr),*)) => {
        match $w {
            1 => $run($($arg,)* &mut $cfg.w1),
            2 => $run($($arg,)* &mut $cfg.w2),
            4 => $run($($arg,)* &mut $cfg.w4),
            8 => $run($($arg,)* &mut $cfg.w8),
            16 => $run($($arg,)* &mut $cfg.w16),
            w => return Err(Error::InvalidChunk { requested: w }),
        }
    };
}
pub(crate) use with_width;

impl<F: Real> Default for Config<F> {
    fn default() -> Self {
        Self::new()
    }
}

/// A driver's passes over the user's function, as a value, so that [`dispatch`] can run them
/// compiled for the CPU's SIMD level. Implementations mark `run` `#[inline(always)]`: the pass
/// loop, and the user's `eval` where it inlines into it (small functions, or `eval` marked
/// `#[inline(always)]`), are then compiled with AVX2+FMA or AVX-512 enabled. (A closure would not
/// do: pulp calls it out of line, compiled for the baseline CPU.)
pub(crate) trait Passes {
    type Output;
    fn run(self) -> Self::Output;
}

struct Dispatch<P>(P);

impl<P: Passes> pulp::WithSimd for Dispatch<P> {
    type Output = P::Output;
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> P::Output {
        self.0.run()
    }
}

/// Run `passes` with the best instruction set this CPU has (AVX-512, AVX2+FMA or baseline).
#[inline]
pub(crate) fn dispatch<P: Passes>(passes: P) -> P::Output {
    pulp::Arch::new().dispatch(Dispatch(passes))
}

/// Reserve a result of `rows × cols`, or say it is too large.
pub(crate) fn alloc_result<F: Real>(rows: usize, cols: usize) -> Result<Vec<F>, Error> {
    let len = rows
        .checked_mul(cols)
        .ok_or(Error::TooLarge { rows, cols })?;
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::TooLarge { rows, cols })?;
    v.resize(len, F::from_f64(0.0));
    Ok(v)
}

/// Check the length of an argument.
pub(crate) fn check_len(
    argument: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            argument,
            expected,
            found,
        })
    }
}

/// A seeded `Dual<F, F, N>` helper: set tangent `k` of each input in `range` to one.
#[inline]
pub(crate) fn seed<F: Real, const N: usize>(x: &mut [Dual<F, F, N>], start: usize, on: bool) {
    let v = if on {
        F::from_f64(1.0)
    } else {
        F::from_f64(0.0)
    };
    for (k, xi) in x.iter_mut().skip(start).take(N).enumerate() {
        xi.eps[k] = v;
    }
}
