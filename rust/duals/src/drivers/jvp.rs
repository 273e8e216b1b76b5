//! Jacobian-vector products in one pass.

use crate::number::{Dual, DualNum, Real};

use super::config::{check_len, dispatch, Buffers, Passes};
use super::{Config, Error, VectorFunction};

/// `(f(x), J v)` in one evaluation of `f` on `Dual<f64, 1>` seeded with `v`.
///
/// ```
/// use duals::{DualNum, VectorFunction};
/// struct Rot; // f(x) = (x₀ x₁, sin x₀)
/// impl VectorFunction<f64> for Rot {
///     fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
///         y[0] = x[0] * x[1];
///         y[1] = x[0].sin();
///     }
/// }
/// let (fx, jv) = duals::jvp(&Rot, &[0.0, 2.0], &[1.0, 1.0], &mut duals::Config::new()).unwrap();
/// assert_eq!(fx, vec![0.0, 0.0]);
/// assert_eq!(jv, vec![2.0, 1.0]); // [x₁ v₀ + x₀ v₁, cos x₀ v₀]
/// ```
pub fn jvp<F: Real, G: VectorFunction<F>>(
    f: &G,
    x: &[F],
    v: &[F],
    cfg: &mut Config<F>,
) -> Result<(Vec<F>, Vec<F>), Error> {
    let m = f.output_len(x.len());
    let (mut value, mut jv) = (vec![F::from_f64(0.0); m], vec![F::from_f64(0.0); m]);
    jvp_into(f, x, v, &mut value, &mut jv, cfg)?;
    Ok((value, jv))
}

/// `f(x)` into `value` and `J v` into `jv` (both length `m`). Does not allocate once `cfg` has
/// served an input of this length.
pub fn jvp_into<F: Real, G: VectorFunction<F>>(
    f: &G,
    x: &[F],
    v: &[F],
    value: &mut [F],
    jv: &mut [F],
    cfg: &mut Config<F>,
) -> Result<(), Error> {
    let m = f.output_len(x.len());
    check_len("v", x.len(), v.len())?;
    check_len("value", m, value.len())?;
    check_len("jv", m, jv.len())?;
    let buf = &mut cfg.w1;
    buf.x.clear();
    buf.x
        .extend(x.iter().zip(v).map(|(&xi, &vi)| Dual::new(xi, [vi])));
    buf.y.clear();
    buf.y.resize(m, Dual::zero());
    dispatch(JvpPass { f, buf });
    for (i, y) in buf.y.iter().enumerate() {
        value[i] = y.re;
        jv[i] = y.eps[0];
    }
    Ok(())
}

struct JvpPass<'a, F: Real, G> {
    f: &'a G,
    buf: &'a mut Buffers<Dual<F, F, 1>>,
}

impl<F: Real, G: VectorFunction<F>> Passes for JvpPass<'_, F, G> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.f.eval(&self.buf.x, &mut self.buf.y);
    }
}
