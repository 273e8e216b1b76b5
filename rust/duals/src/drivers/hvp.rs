//! Hessian-vector products, forward over forward.

use crate::number::{HyperDualVec, Real};

use super::config::{check_len, dispatch, Passes};
use super::{Config, Error, ScalarFunction};

/// `∇²f(x) v`, exact, without forming the Hessian: `f` is evaluated on hyper-dual numbers with
/// `ε₁` seeded by `v` and `ε₂` by `N` coordinate directions, so each pass gives `N` entries
/// `vᵀ H eⱼ = (H v)ⱼ`; `⌈n/N⌉` passes.
///
/// ```
/// use duals::{DualNum, ScalarFunction};
/// struct F; // f(x) = x₀² x₁: H = [[2x₁, 2x₀], [2x₀, 0]]
/// impl ScalarFunction<f64> for F {
///     fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
///         x[0] * x[0] * x[1]
///     }
/// }
/// let hv = duals::hvp(&F, &[1.0, 2.0], &[1.0, 0.0], &mut duals::Config::new()).unwrap();
/// assert_eq!(hv, vec![4.0, 2.0]);
/// ```
pub fn hvp<F: Real, G: ScalarFunction<F>>(
    f: &G,
    x: &[F],
    v: &[F],
    cfg: &mut Config<F>,
) -> Result<Vec<F>, Error> {
    let mut out = vec![F::from_f64(0.0); x.len()];
    hvp_into(f, x, v, &mut out, cfg)?;
    Ok(out)
}

/// `∇²f(x) v` into `out` (length `n`).
pub fn hvp_into<F: Real, G: ScalarFunction<F>>(
    f: &G,
    x: &[F],
    v: &[F],
    out: &mut [F],
    cfg: &mut Config<F>,
) -> Result<(), Error> {
    check_len("v", x.len(), v.len())?;
    check_len("out", x.len(), out.len())?;
    match cfg.width_for(x.len())? {
        1 => run::<F, G, 1>(f, x, v, out),
        2 => run::<F, G, 2>(f, x, v, out),
        4 => run::<F, G, 4>(f, x, v, out),
        8 => run::<F, G, 8>(f, x, v, out),
        _ => run::<F, G, 16>(f, x, v, out),
    }
    Ok(())
}

fn run<F: Real, G: ScalarFunction<F>, const N: usize>(f: &G, x: &[F], v: &[F], out: &mut [F]) {
    let mut xs: Vec<HyperDualVec<F, F, 1, N>> = x
        .iter()
        .zip(v)
        .map(|(&xi, &vi)| {
            let mut d = HyperDualVec::constant(xi);
            d.eps1[0] = vi;
            d
        })
        .collect();
    dispatch(HvpPasses {
        f,
        xs: &mut xs,
        out,
    })
}

struct HvpPasses<'a, F: Real, G, const N: usize> {
    f: &'a G,
    xs: &'a mut [HyperDualVec<F, F, 1, N>],
    out: &'a mut [F],
}

impl<F: Real, G: ScalarFunction<F>, const N: usize> Passes for HvpPasses<'_, F, G, N> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self { f, xs, out } = self;
        let n = xs.len();
        for start in (0..n).step_by(N) {
            let end = (start + N).min(n);
            for (k, xk) in xs[start..end].iter_mut().enumerate() {
                xk.eps2[k] = F::from_f64(1.0);
            }
            let y = f.eval(xs);
            for (k, xk) in xs[start..end].iter_mut().enumerate() {
                xk.eps2[k] = F::from_f64(0.0);
            }
            out[start..end].copy_from_slice(&y.eps12[0][..end - start]);
        }
    }
}
