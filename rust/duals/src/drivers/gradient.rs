//! Gradients of `Rⁿ → R` in chunks of tangents.

use crate::number::{Dual, Real};

use super::config::{check_len, dispatch, seed, with_width, Buffers, Passes};
use super::{Config, Error, ScalarFunction};

/// `∇f(x)`, exact, in `⌈n/N⌉` evaluations of `f` on `Dual<f64, N>` (`N` from `cfg`).
///
/// ```
/// use duals::{DualNum, ScalarFunction};
/// struct Quadratic; // f(x) = Σ xᵢ² xᵢ₊₁
/// impl ScalarFunction<f64> for Quadratic {
///     fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
///         x.windows(2).map(|w| w[0] * w[0] * w[1]).sum()
///     }
/// }
/// let g = duals::gradient(&Quadratic, &[1.0, 2.0, 3.0], &mut duals::Config::new()).unwrap();
/// assert_eq!(g, vec![4.0, 1.0 + 12.0, 4.0]); // [2x₀x₁, x₀² + 2x₁x₂, x₁²]
/// ```
pub fn gradient<F: Real, G: ScalarFunction<F>>(
    f: &G,
    x: &[F],
    cfg: &mut Config<F>,
) -> Result<Vec<F>, Error> {
    Ok(value_and_gradient(f, x, cfg)?.1)
}

/// `(f(x), ∇f(x))`.
pub fn value_and_gradient<F: Real, G: ScalarFunction<F>>(
    f: &G,
    x: &[F],
    cfg: &mut Config<F>,
) -> Result<(F, Vec<F>), Error> {
    let mut g = vec![F::from_f64(0.0); x.len()];
    let v = gradient_into(f, x, &mut g, cfg)?;
    Ok((v, g))
}

/// `∇f(x)` written into `grad` (length `n`); returns `f(x)`. Does not allocate once `cfg` has
/// served an input of this length.
pub fn gradient_into<F: Real, G: ScalarFunction<F>>(
    f: &G,
    x: &[F],
    grad: &mut [F],
    cfg: &mut Config<F>,
) -> Result<F, Error> {
    check_len("grad", x.len(), grad.len())?;
    let w = cfg.width_for(x.len())?;
    Ok(with_width!(w, cfg, run(f, x, grad)))
}

fn run<F: Real, G: ScalarFunction<F>, const N: usize>(
    f: &G,
    x: &[F],
    grad: &mut [F],
    buf: &mut Buffers<Dual<F, F, N>>,
) -> F {
    buf.load(x, 0, Dual::constant);
    dispatch(GradientPasses { f, grad, buf })
}

struct GradientPasses<'a, F: Real, G, const N: usize> {
    f: &'a G,
    grad: &'a mut [F],
    buf: &'a mut Buffers<Dual<F, F, N>>,
}

impl<F: Real, G: ScalarFunction<F>, const N: usize> Passes for GradientPasses<'_, F, G, N> {
    type Output = F;
    #[inline(always)]
    fn run(self) -> F {
        let Self { f, grad, buf } = self;
        let n = buf.x.len();
        if n == 0 {
            return f.eval(&buf.x).re;
        }
        let mut value = F::from_f64(0.0);
        for start in (0..n).step_by(N) {
            let end = (start + N).min(n);
            seed(&mut buf.x, start, true);
            let y = f.eval(&buf.x);
            seed(&mut buf.x, start, false);
            value = y.re;
            grad[start..end].copy_from_slice(&y.eps[..end - start]);
        }
        value
    }
}
