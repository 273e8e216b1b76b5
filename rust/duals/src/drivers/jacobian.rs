//! Jacobians of `Rⁿ → Rᵐ` in chunks of tangents.

use crate::number::{Dual, DualNum, Real};

use super::config::{alloc_result, check_len, dispatch, seed, with_width, Buffers, Passes};
use super::{Config, Error, Matrix, VectorFunction};

/// The Jacobian `J[(i, j)] = ∂fᵢ/∂xⱼ` (`m × n`), exact, in `⌈n/N⌉` evaluations of `f` on
/// `Dual<f64, N>`.
///
/// ```
/// use duals::{DualNum, VectorFunction};
/// struct Cube; // f(x) = x³ elementwise: J = diag(3x²)
/// impl VectorFunction<f64> for Cube {
///     fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
///         for (yi, &xi) in y.iter_mut().zip(x) {
///             *yi = xi.powi(3);
///         }
///     }
/// }
/// let j = duals::jacobian(&Cube, &[1.0, 2.0], &mut duals::Config::new()).unwrap();
/// assert_eq!(j.as_slice(), &[3.0, 0.0, 0.0, 12.0]);
/// ```
pub fn jacobian<F: Real, G: VectorFunction<F>>(
    f: &G,
    x: &[F],
    cfg: &mut Config<F>,
) -> Result<Matrix<F>, Error> {
    Ok(value_and_jacobian(f, x, cfg)?.1)
}

/// `(f(x), J)`.
pub fn value_and_jacobian<F: Real, G: VectorFunction<F>>(
    f: &G,
    x: &[F],
    cfg: &mut Config<F>,
) -> Result<(Vec<F>, Matrix<F>), Error> {
    let (n, m) = (x.len(), f.output_len(x.len()));
    let mut jac = alloc_result(m, n)?;
    let mut value = vec![F::from_f64(0.0); m];
    jacobian_into(f, x, &mut value, &mut jac, cfg)?;
    let jac = Matrix::from_row_major(m, n, jac).expect("allocated m * n");
    Ok((value, jac))
}

/// `f(x)` into `value` (length `m`) and `J` into `jac` (row-major, length `m n`). Does not
/// allocate once `cfg` has served an input of this length.
pub fn jacobian_into<F: Real, G: VectorFunction<F>>(
    f: &G,
    x: &[F],
    value: &mut [F],
    jac: &mut [F],
    cfg: &mut Config<F>,
) -> Result<(), Error> {
    let (n, m) = (x.len(), f.output_len(x.len()));
    check_len("value", m, value.len())?;
    check_len("jac", m * n, jac.len())?;
    let w = cfg.width_for(n)?;
    with_width!(w, cfg, run(f, x, value, jac));
    Ok(())
}

fn run<F: Real, G: VectorFunction<F>, const N: usize>(
    f: &G,
    x: &[F],
    value: &mut [F],
    jac: &mut [F],
    buf: &mut Buffers<Dual<F, F, N>>,
) {
    buf.load(x, value.len(), Dual::constant);
    dispatch(JacobianPasses { f, value, jac, buf })
}

struct JacobianPasses<'a, F: Real, G, const N: usize> {
    f: &'a G,
    value: &'a mut [F],
    jac: &'a mut [F],
    buf: &'a mut Buffers<Dual<F, F, N>>,
}

impl<F: Real, G: VectorFunction<F>, const N: usize> Passes for JacobianPasses<'_, F, G, N> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self { f, value, jac, buf } = self;
        let (n, m) = (buf.x.len(), value.len());
        if n == 0 {
            let mut y = vec![Dual::zero(); m];
            f.eval(&buf.x, &mut y);
            value.iter_mut().zip(&y).for_each(|(v, y)| *v = y.re);
            return;
        }
        for start in (0..n).step_by(N) {
            let end = (start + N).min(n);
            seed(&mut buf.x, start, true);
            buf.y.iter_mut().for_each(|y| *y = Dual::zero());
            f.eval(&buf.x, &mut buf.y);
            seed(&mut buf.x, start, false);
            for (i, y) in buf.y.iter().enumerate() {
                value[i] = y.re;
                jac[i * n + start..i * n + end].copy_from_slice(&y.eps[..end - start]);
            }
        }
    }
}
