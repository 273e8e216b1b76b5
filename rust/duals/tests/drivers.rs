//! The drivers on the sizes that break them.
//!
//! Gradients, Jacobians, Hessians and products for `n` in `{1, w-1, w, w+1 | w in CHUNK_WIDTHS}`
//! and 37, with every chunk width and `Chunk::Auto`, against derivatives written by hand; the
//! empty input; consistency between drivers (Jacobian = stacked JVPs, Hessian·v = HVP, the three
//! Hessian methods); the errors; a reused `Config`; magnitudes near 1e±300.

use duals::{
    Chunk, Config, DualNum, Error, HessianMethod, Matrix, ScalarFunction, VectorFunction,
    CHUNK_WIDTHS,
};

// ---------------------------------------------------------------------------------------------
// Test functions with derivatives written by hand
// ---------------------------------------------------------------------------------------------

/// Chained (extended) Rosenbrock: `f(x) = Σᵢ 100 (xᵢ₊₁ - xᵢ²)² + (1 - xᵢ)²`.
struct Rosenbrock;

impl ScalarFunction<f64> for Rosenbrock {
    fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
        x.windows(2)
            .map(|w| (w[1] - w[0] * w[0]).powi(2) * 100.0 + (-w[0] + 1.0).powi(2))
            .sum()
    }
}

impl Rosenbrock {
    fn value(x: &[f64]) -> f64 {
        x.windows(2)
            .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
            .sum()
    }

    /// `gᵢ = -400 xᵢ (xᵢ₊₁ - xᵢ²) - 2 (1 - xᵢ) + 200 (xᵢ - xᵢ₋₁²)` (terms that exist).
    fn gradient(x: &[f64]) -> Vec<f64> {
        let n = x.len();
        (0..n)
            .map(|i| {
                let mut g = 0.0;
                if i + 1 < n {
                    g += -400.0 * x[i] * (x[i + 1] - x[i] * x[i]) - 2.0 * (1.0 - x[i]);
                }
                if i > 0 {
                    g += 200.0 * (x[i] - x[i - 1] * x[i - 1]);
                }
                g
            })
            .collect()
    }

    /// Tridiagonal: `Hᵢᵢ = 1200 xᵢ² - 400 xᵢ₊₁ + 2 (+ 200)`, `Hᵢ,ᵢ₊₁ = -400 xᵢ`.
    fn hessian(x: &[f64]) -> Vec<f64> {
        let n = x.len();
        let mut h = vec![0.0; n * n];
        for i in 0..n {
            if i + 1 < n {
                h[i * n + i] += 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
                h[i * n + i + 1] = -400.0 * x[i];
                h[(i + 1) * n + i] = -400.0 * x[i];
            }
            if i > 0 {
                h[i * n + i] += 200.0;
            }
        }
        h
    }
}

/// A Brusselator-like reaction-diffusion system, tridiagonal Jacobian:
/// `fᵢ = c (xᵢ₋₁ - 2xᵢ + xᵢ₊₁) + A - (B+1) xᵢ + xᵢ² exp(-xᵢ₊₁/4)`, with `x₋₁ = xₙ = 1`.
struct Brusselator;

const BC: f64 = 0.7;
const BA: f64 = 1.0;
const BB: f64 = 3.0;

impl VectorFunction<f64> for Brusselator {
    fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
        let n = x.len();
        for i in 0..n {
            let left = if i > 0 { x[i - 1] } else { D::from_re(1.0) };
            let right = if i + 1 < n { x[i + 1] } else { D::from_re(1.0) };
            y[i] = (left - x[i] * 2.0 + right) * BC + BA - x[i] * (BB + 1.0)
                + x[i] * x[i] * (right * -0.25).exp();
        }
    }
}

impl Brusselator {
    fn value(x: &[f64]) -> Vec<f64> {
        let n = x.len();
        (0..n)
            .map(|i| {
                let left = if i > 0 { x[i - 1] } else { 1.0 };
                let right = if i + 1 < n { x[i + 1] } else { 1.0 };
                (left - 2.0 * x[i] + right) * BC + BA - (BB + 1.0) * x[i]
                    + x[i] * x[i] * (-0.25 * right).exp()
            })
            .collect()
    }

    fn jacobian(x: &[f64]) -> Vec<f64> {
        let n = x.len();
        let mut j = vec![0.0; n * n];
        for i in 0..n {
            let right = if i + 1 < n { x[i + 1] } else { 1.0 };
            let e = (-0.25 * right).exp();
            if i > 0 {
                j[i * n + i - 1] = BC;
            }
            j[i * n + i] = -2.0 * BC - (BB + 1.0) + 2.0 * x[i] * e;
            if i + 1 < n {
                j[i * n + i + 1] = BC - 0.25 * x[i] * x[i] * e;
            }
        }
        j
    }
}

/// Two outputs from any number of inputs (a wide Jacobian):
/// `y₀ = Σ (j+1) sin xⱼ`, `y₁ = Σ xⱼ xⱼ₊₁`.
struct Moments;

impl VectorFunction<f64> for Moments {
    fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
        y[0] = x
            .iter()
            .enumerate()
            .map(|(j, &xj)| xj.sin() * (j as f64 + 1.0))
            .sum();
        y[1] = x.windows(2).map(|w| w[0] * w[1]).sum();
    }
    fn output_len(&self, _n: usize) -> usize {
        2
    }
}

impl Moments {
    fn jacobian(x: &[f64]) -> Vec<f64> {
        let n = x.len();
        let mut j = vec![0.0; 2 * n];
        for k in 0..n {
            j[k] = (k as f64 + 1.0) * x[k].cos();
            j[n + k] = if k > 0 { x[k - 1] } else { 0.0 } + if k + 1 < n { x[k + 1] } else { 0.0 };
        }
        j
    }
}

/// The Robertson chemical kinetics right-hand side (stiff; rate constants over 12 orders).
struct Robertson {
    k1: f64,
    k2: f64,
    k3: f64,
}

const ROBERTSON: Robertson = Robertson {
    k1: 0.04,
    k2: 3e7,
    k3: 1e4,
};

impl VectorFunction<f64> for Robertson {
    fn eval<D: DualNum<f64>>(&self, y: &[D], dy: &mut [D]) {
        dy[0] = y[0] * -self.k1 + y[1] * y[2] * self.k3;
        dy[1] = y[0] * self.k1 - y[1] * y[2] * self.k3 - y[1] * y[1] * self.k2;
        dy[2] = y[1] * y[1] * self.k2;
    }
}

impl Robertson {
    fn jacobian(&self, y: &[f64]) -> Vec<f64> {
        let (k1, k2, k3) = (self.k1, self.k2, self.k3);
        vec![
            -k1,
            k3 * y[2],
            k3 * y[1],
            k1,
            -k3 * y[2] - 2.0 * k2 * y[1],
            -k3 * y[1],
            0.0,
            2.0 * k2 * y[1],
            0.0,
        ]
    }
}

/// A dense Hessian from many elementary functions, including quotients:
/// `f(x) = ln(1 + Σ xᵢ²) + sin(Σ cᵢ xᵢ) exp(x₀/4) + Σ atan(xᵢ xᵢ₊₁) / (1 + xᵢ²) + Σ √(2 + xᵢ) cosh(xᵢ/3)`.
struct Dense;

impl ScalarFunction<f64> for Dense {
    fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
        let n = x.len();
        let sq: D = x.iter().map(|&xi| xi * xi).sum();
        let lin: D = x
            .iter()
            .enumerate()
            .map(|(i, &xi)| xi * (0.3 + 0.1 * i as f64))
            .sum();
        let mut f = (sq + 1.0).ln() + lin.sin() * (x[0] / 4.0).exp();
        for i in 0..n {
            let next = x[(i + 1) % n];
            f += (x[i] * next).atan() / (x[i] * x[i] + 1.0);
            f += (x[i] + 2.0).sqrt() * (x[i] / 3.0).cosh();
        }
        f
    }
}

// ---------------------------------------------------------------------------------------------
// Sizes, chunks, points, comparisons
// ---------------------------------------------------------------------------------------------

/// `{1, w-1, w, w+1 | w in CHUNK_WIDTHS}` and a large prime, without 0 (tested on its own).
fn sizes() -> Vec<usize> {
    let mut s: Vec<usize> = CHUNK_WIDTHS
        .iter()
        .flat_map(|&w| [w - 1, w, w + 1])
        .chain([1, 37])
        .filter(|&n| n > 0)
        .collect();
    s.sort_unstable();
    s.dedup();
    s
}

/// `Chunk::Auto` and every compiled width.
fn chunks() -> Vec<Chunk> {
    std::iter::once(Chunk::Auto)
        .chain(CHUNK_WIDTHS.iter().map(|&w| Chunk::Width(w)))
        .collect()
}

/// A point with entries in [0.4, 1.4], different for every index.
fn point(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.9 + 0.5 * (1.7 * i as f64 + 0.3).sin())
        .collect()
}

/// A direction with entries in [-1, 1].
fn direction(n: usize, seed: f64) -> Vec<f64> {
    (0..n).map(|i| (2.3 * i as f64 + seed).cos()).collect()
}

/// Elementwise `|got - want| <= rtol · max(|wantᵢ|, max |want|)`: relative to the entry, or to
/// the largest entry where terms of that size cancel.
fn assert_close(got: &[f64], want: &[f64], rtol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0_f64, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rtol * w.abs().max(scale);
        assert!(
            (g - w).abs() <= tol,
            "{what}: entry {i}: got {g:e}, expected {w:e} (difference {:e} > {tol:e})",
            (g - w).abs()
        );
    }
}

/// `M v` for a row-major `m × n` matrix.
fn mat_vec(m: &Matrix<f64>, v: &[f64]) -> Vec<f64> {
    (0..m.nrows())
        .map(|i| m.row(i).iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

fn cfg(chunk: Chunk) -> Config<f64> {
    Config::new().with_chunk(chunk)
}

const RTOL: f64 = 1e-13;

// ---------------------------------------------------------------------------------------------
// Gradients and Jacobians against hand-written derivatives
// ---------------------------------------------------------------------------------------------

#[test]
fn gradient_matches_hand_written_rosenbrock_for_every_size_and_chunk() {
    for n in sizes() {
        let x = point(n);
        let want = Rosenbrock::gradient(&x);
        for chunk in chunks() {
            let what = format!("Rosenbrock gradient, n = {n}, {chunk:?}");
            let mut c = cfg(chunk);
            let g = duals::gradient(&Rosenbrock, &x, &mut c).unwrap();
            assert_close(&g, &want, RTOL, &what);

            let (v, g2) = duals::value_and_gradient(&Rosenbrock, &x, &mut c).unwrap();
            assert_eq!(g2, g, "{what}: value_and_gradient");
            assert_close(&[v], &[Rosenbrock::value(&x)], RTOL, &what);

            let mut g3 = vec![f64::NAN; n];
            let v3 = duals::gradient_into(&Rosenbrock, &x, &mut g3, &mut c).unwrap();
            assert_eq!((v3, &g3), (v, &g), "{what}: gradient_into");
        }
    }
}

#[test]
fn jacobian_matches_hand_written_brusselator_for_every_size_and_chunk() {
    for n in sizes() {
        let x = point(n);
        let want = Brusselator::jacobian(&x);
        for chunk in chunks() {
            let what = format!("Brusselator Jacobian, n = {n}, {chunk:?}");
            let mut c = cfg(chunk);
            let j = duals::jacobian(&Brusselator, &x, &mut c).unwrap();
            assert_eq!((j.nrows(), j.ncols()), (n, n), "{what}: shape");
            assert_close(j.as_slice(), &want, RTOL, &what);

            let (v, j2) = duals::value_and_jacobian(&Brusselator, &x, &mut c).unwrap();
            assert_eq!(j2, j, "{what}: value_and_jacobian");
            assert_close(&v, &Brusselator::value(&x), RTOL, &what);

            let (mut v3, mut j3) = (vec![f64::NAN; n], vec![f64::NAN; n * n]);
            duals::jacobian_into(&Brusselator, &x, &mut v3, &mut j3, &mut c).unwrap();
            assert_eq!(
                (&v3, j3.as_slice()),
                (&v, j.as_slice()),
                "{what}: jacobian_into"
            );
        }
    }
}

#[test]
fn wide_jacobian_matches_hand_written_for_every_size_and_chunk() {
    for n in sizes() {
        let x = point(n);
        let want = Moments::jacobian(&x);
        for chunk in chunks() {
            let what = format!("Moments Jacobian (2 × {n}), {chunk:?}");
            let j = duals::jacobian(&Moments, &x, &mut cfg(chunk)).unwrap();
            assert_eq!((j.nrows(), j.ncols()), (2, n), "{what}: shape");
            assert_close(j.row(0), &want[..n], RTOL, &what);
            assert_close(j.row(1), &want[n..], RTOL, &what);
        }
    }
}

#[test]
fn robertson_jacobian_matches_hand_written() {
    for y in [[1.0, 0.0, 0.0], [0.98, 3.4e-5, 0.02], [0.5, 1e-6, 0.5]] {
        let want = ROBERTSON.jacobian(&y);
        for chunk in chunks() {
            let j = duals::jacobian(&ROBERTSON, &y, &mut cfg(chunk)).unwrap();
            // Every entry is one product or sum of two: exact up to one rounding each.
            assert_close(
                j.as_slice(),
                &want,
                1e-15,
                &format!("Robertson at {y:?}, {chunk:?}"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The empty input
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_input_gives_empty_derivatives() {
    let x: [f64; 0] = [];
    for chunk in chunks() {
        let mut c = cfg(chunk);
        assert_eq!(
            duals::value_and_gradient(&Rosenbrock, &x, &mut c).unwrap(),
            (0.0, vec![])
        );
        let j = duals::jacobian(&Brusselator, &x, &mut c).unwrap();
        assert_eq!((j.nrows(), j.ncols()), (0, 0));
        // Outputs from no inputs: the value is computed, the Jacobian is 2 × 0.
        let (v, j) = duals::value_and_jacobian(&Moments, &x, &mut c).unwrap();
        assert_eq!((v, j.nrows(), j.ncols()), (vec![0.0, 0.0], 2, 0));
        assert_eq!(
            duals::jvp(&Moments, &x, &x, &mut c).unwrap(),
            (vec![0.0; 2], vec![0.0; 2])
        );
        assert_eq!(duals::hvp(&Rosenbrock, &x, &x, &mut c).unwrap(), vec![]);
    }
    for method in [
        HessianMethod::Auto,
        HessianMethod::Dual2,
        HessianMethod::HyperDual,
        HessianMethod::Nested,
    ] {
        let mut c = Config::new().with_hessian_method(method);
        let (v, g, h) = duals::value_gradient_and_hessian(&Rosenbrock, &x, &mut c).unwrap();
        assert_eq!(
            (v, g, h.nrows(), h.ncols()),
            (0.0, vec![], 0, 0),
            "{method:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Consistency between drivers
// ---------------------------------------------------------------------------------------------

#[test]
fn jacobian_equals_stacked_jvps_and_jvp_equals_j_times_v() {
    for n in sizes() {
        let x = point(n);
        for chunk in chunks() {
            let mut c = cfg(chunk);
            let j = duals::jacobian(&Brusselator, &x, &mut c).unwrap();
            // Column k of J is J eₖ.
            for k in 0..n {
                let e: Vec<f64> = (0..n).map(|i| if i == k { 1.0 } else { 0.0 }).collect();
                let (fx, col) = duals::jvp(&Brusselator, &x, &e, &mut c).unwrap();
                let want: Vec<f64> = (0..n).map(|i| j[(i, k)]).collect();
                assert_close(
                    &col,
                    &want,
                    1e-15,
                    &format!("column {k}, n = {n}, {chunk:?}"),
                );
                assert_close(&fx, &Brusselator::value(&x), RTOL, "jvp value");
            }
            // A general direction.
            let v = direction(n, 0.4);
            let (_, jv) = duals::jvp(&Brusselator, &x, &v, &mut c).unwrap();
            assert_close(
                &jv,
                &mat_vec(&j, &v),
                RTOL,
                &format!("J v, n = {n}, {chunk:?}"),
            );
            let (mut val, mut jv2) = (vec![0.0; n], vec![0.0; n]);
            duals::jvp_into(&Brusselator, &x, &v, &mut val, &mut jv2, &mut c).unwrap();
            assert_eq!(jv2, jv, "jvp_into, n = {n}");

            // The wide Jacobian too.
            let jm = duals::jacobian(&Moments, &x, &mut c).unwrap();
            let (_, jv) = duals::jvp(&Moments, &x, &v, &mut c).unwrap();
            assert_close(
                &jv,
                &mat_vec(&jm, &v),
                RTOL,
                &format!("Moments J v, n = {n}"),
            );
        }
    }
}

#[test]
fn hessian_matches_hand_written_rosenbrock_and_is_exactly_symmetric() {
    for n in sizes() {
        let x = point(n);
        let want = Rosenbrock::hessian(&x);
        let mut methods = vec![
            HessianMethod::Auto,
            HessianMethod::HyperDual,
            HessianMethod::Nested,
        ];
        if n <= 8 {
            methods.push(HessianMethod::Dual2);
        }
        for method in methods {
            let what = format!("Rosenbrock Hessian, n = {n}, {method:?}");
            let mut c = Config::new().with_hessian_method(method);
            let h = duals::hessian(&Rosenbrock, &x, &mut c).unwrap();
            assert_eq!((h.nrows(), h.ncols()), (n, n), "{what}: shape");
            assert_close(h.as_slice(), &want, RTOL, &what);
            for i in 0..n {
                for k in 0..n {
                    assert!(h[(i, k)] == h[(k, i)], "{what}: H[{i},{k}] != H[{k},{i}]");
                }
            }
            let (v, g, h2) = duals::value_gradient_and_hessian(&Rosenbrock, &x, &mut c).unwrap();
            assert_eq!(h2, h, "{what}: value_gradient_and_hessian");
            assert_close(&g, &Rosenbrock::gradient(&x), RTOL, &what);
            assert_close(&[v], &[Rosenbrock::value(&x)], RTOL, &what);
        }
    }
}

#[test]
fn hessian_methods_agree_and_are_symmetric_on_a_dense_function() {
    for n in 1..=13 {
        let x = point(n);
        let hess = |method| {
            let mut c = Config::new().with_hessian_method(method);
            duals::value_gradient_and_hessian(&Dense, &x, &mut c).unwrap()
        };
        let (v_n, g_n, h_n) = hess(HessianMethod::Nested);
        let mut others = vec![(HessianMethod::HyperDual, hess(HessianMethod::HyperDual))];
        others.push((HessianMethod::Auto, hess(HessianMethod::Auto)));
        if n <= 8 {
            others.push((HessianMethod::Dual2, hess(HessianMethod::Dual2)));
        }
        for (method, (v, g, h)) in others {
            let what = format!("Dense Hessian, n = {n}, {method:?} vs Nested");
            assert_close(h.as_slice(), h_n.as_slice(), RTOL, &what);
            assert_close(&g, &g_n, RTOL, &what);
            assert_close(&[v], &[v_n], RTOL, &what);
            for i in 0..n {
                for k in 0..n {
                    assert!(
                        h[(i, k)] == h[(k, i)],
                        "{what}: not symmetric at ({i}, {k})"
                    );
                }
            }
        }
    }
}

#[test]
fn hvp_equals_hessian_times_v() {
    for n in sizes() {
        let x = point(n);
        let v = direction(n, 1.1);
        let h = duals::hessian(&Dense, &x, &mut Config::new()).unwrap();
        let want = mat_vec(&h, &v);
        let hr = duals::hessian(&Rosenbrock, &x, &mut Config::new()).unwrap();
        for chunk in chunks() {
            let mut c = cfg(chunk);
            let hv = duals::hvp(&Dense, &x, &v, &mut c).unwrap();
            assert_close(&hv, &want, RTOL, &format!("Dense H v, n = {n}, {chunk:?}"));
            let mut out = vec![f64::NAN; n];
            duals::hvp_into(&Dense, &x, &v, &mut out, &mut c).unwrap();
            assert_eq!(out, hv, "hvp_into, n = {n}, {chunk:?}");
            let hv = duals::hvp(&Rosenbrock, &x, &v, &mut c).unwrap();
            let what = format!("Rosenbrock H v, n = {n}, {chunk:?}");
            assert_close(&hv, &mat_vec(&hr, &v), RTOL, &what);
        }
    }
}

#[test]
fn gradient_from_hessian_driver_equals_gradient() {
    for n in sizes() {
        let x = point(n);
        let (v0, g0) = duals::value_and_gradient(&Dense, &x, &mut Config::new()).unwrap();
        for method in [
            HessianMethod::Auto,
            HessianMethod::HyperDual,
            HessianMethod::Nested,
        ] {
            let mut c = Config::new().with_hessian_method(method);
            let (v, g, _) = duals::value_gradient_and_hessian(&Dense, &x, &mut c).unwrap();
            let what = format!("gradient, n = {n}, {method:?}");
            assert_close(&g, &g0, 1e-14, &what);
            assert_close(&[v], &[v0], 1e-15, &what);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_v_length_is_a_length_mismatch_naming_v() {
    let x = point(5);
    let mut c = Config::new();
    for bad in [0, 4, 6] {
        let v = vec![1.0; bad];
        let want = Error::LengthMismatch {
            argument: "v",
            expected: 5,
            found: bad,
        };
        let e = duals::hvp(&Dense, &x, &v, &mut c).unwrap_err();
        assert_eq!(e, want);
        assert!(e.to_string().contains("`v`"), "message: {e}");
        let e = duals::jvp(&Brusselator, &x, &v, &mut c).unwrap_err();
        assert_eq!(e, want);
        assert!(
            e.to_string().contains("`v`") && e.to_string().contains('5'),
            "message: {e}"
        );
    }
}

#[test]
fn unavailable_chunk_widths_are_invalid_chunk_errors() {
    let x = point(6);
    for w in [0, 3, 5, 7, 32] {
        let mut c = cfg(Chunk::Width(w));
        let want = Error::InvalidChunk { requested: w };
        assert_eq!(c.width_for(6), Err(want.clone()));
        assert_eq!(duals::gradient(&Dense, &x, &mut c).unwrap_err(), want);
        assert_eq!(duals::jacobian(&Brusselator, &x, &mut c).unwrap_err(), want);
        assert_eq!(duals::hvp(&Dense, &x, &x, &mut c).unwrap_err(), want);
        let msg = want.to_string();
        assert!(
            msg.contains(&w.to_string()) && msg.contains("Chunk::Auto"),
            "{msg}"
        );
    }
}

#[test]
fn into_forms_reject_wrong_buffer_lengths() {
    let n = 4;
    let x = point(n);
    let mut c = Config::new();
    let mismatch = |argument, expected, found| Error::LengthMismatch {
        argument,
        expected,
        found,
    };

    let mut g = vec![0.0; n + 1];
    assert_eq!(
        duals::gradient_into(&Dense, &x, &mut g, &mut c),
        Err(mismatch("grad", n, n + 1))
    );

    let (mut v, mut j) = (vec![0.0; n], vec![0.0; n * n]);
    assert_eq!(
        duals::jacobian_into(&Brusselator, &x, &mut v[..n - 1], &mut j, &mut c),
        Err(mismatch("value", n, n - 1))
    );
    assert_eq!(
        duals::jacobian_into(&Brusselator, &x, &mut v, &mut j[..n], &mut c),
        Err(mismatch("jac", n * n, n))
    );
    // A wide Jacobian wants 2 × n, not n × n.
    let (mut v2, mut j2) = (vec![0.0; 2], vec![0.0; n * n]);
    assert_eq!(
        duals::jacobian_into(&Moments, &x, &mut v2, &mut j2, &mut c),
        Err(mismatch("jac", 2 * n, n * n))
    );

    let mut jv = vec![0.0; n];
    assert_eq!(
        duals::jvp_into(&Brusselator, &x, &x, &mut v[..1], &mut jv, &mut c),
        Err(mismatch("value", n, 1))
    );
    assert_eq!(
        duals::jvp_into(&Brusselator, &x, &x, &mut v, &mut jv[..0], &mut c),
        Err(mismatch("jv", n, 0))
    );

    let mut out = vec![0.0; n - 1];
    assert_eq!(
        duals::hvp_into(&Dense, &x, &x, &mut out, &mut c),
        Err(mismatch("out", n, n - 1))
    );

    let (mut g, mut h) = (vec![0.0; n], vec![0.0; n * n]);
    assert_eq!(
        duals::hessian_into(&Dense, &x, &mut g[..2], &mut h, &mut c),
        Err(mismatch("grad", n, 2))
    );
    assert_eq!(
        duals::hessian_into(&Dense, &x, &mut g, &mut h[1..], &mut c),
        Err(mismatch("hess", n * n, n * n - 1))
    );
    // The one-pass Dual2 method takes at most 8 inputs.
    let x9 = point(9);
    let mut c2 = Config::new().with_hessian_method(HessianMethod::Dual2);
    let e = duals::hessian(&Dense, &x9, &mut c2).unwrap_err();
    assert!(
        matches!(
            e,
            Error::LengthMismatch {
                expected: 8,
                found: 9,
                ..
            }
        ),
        "{e:?}"
    );
    // Failed calls leave the buffers untouched and the config usable.
    assert_eq!(g, vec![0.0; n]);
    assert!(duals::hessian_into(&Dense, &x, &mut g, &mut h, &mut c).is_ok());
}

// ---------------------------------------------------------------------------------------------
// A reused Config
// ---------------------------------------------------------------------------------------------

#[test]
fn a_config_reused_across_sizes_gives_the_same_results_as_fresh_ones() {
    let order = [37, 1, 9, 0, 16, 3, 37, 8, 2, 17, 0, 5];
    for chunk in chunks() {
        let mut shared = cfg(chunk);
        for &n in &order {
            let x = point(n);
            let v = direction(n, 0.9);
            let what = format!("n = {n}, {chunk:?}");
            assert_eq!(
                duals::value_and_gradient(&Dense.or_zero(), &x, &mut shared),
                duals::value_and_gradient(&Dense.or_zero(), &x, &mut cfg(chunk)),
                "gradient, {what}"
            );
            assert_eq!(
                duals::value_and_jacobian(&Brusselator, &x, &mut shared),
                duals::value_and_jacobian(&Brusselator, &x, &mut cfg(chunk)),
                "jacobian, {what}"
            );
            assert_eq!(
                duals::value_and_jacobian(&Moments, &x, &mut shared),
                duals::value_and_jacobian(&Moments, &x, &mut cfg(chunk)),
                "wide jacobian, {what}"
            );
            assert_eq!(
                duals::jvp(&Brusselator, &x, &v, &mut shared),
                duals::jvp(&Brusselator, &x, &v, &mut cfg(chunk)),
                "jvp, {what}"
            );
            assert_eq!(
                duals::hvp(&Dense.or_zero(), &x, &v, &mut shared),
                duals::hvp(&Dense.or_zero(), &x, &v, &mut cfg(chunk)),
                "hvp, {what}"
            );
            assert_eq!(
                duals::value_gradient_and_hessian(&Dense.or_zero(), &x, &mut shared),
                duals::value_gradient_and_hessian(&Dense.or_zero(), &x, &mut cfg(chunk)),
                "hessian, {what}"
            );
        }
    }
}

/// `Dense` for `n >= 1`, zero for the empty input (it reads `x[0]`).
struct OrZero<'a, G>(&'a G);

impl Dense {
    fn or_zero(&self) -> OrZero<'_, Dense> {
        OrZero(self)
    }
}

impl<G: ScalarFunction<f64>> ScalarFunction<f64> for OrZero<'_, G> {
    fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
        if x.is_empty() {
            D::zero()
        } else {
            self.0.eval(x)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Magnitudes near 1e±300
// ---------------------------------------------------------------------------------------------

/// `f(x) = hypot(x₀, x₁) + x₂ / x₃ + ln x₄`.
struct Extreme;

impl ScalarFunction<f64> for Extreme {
    fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
        x[0].hypot(x[1]) + x[2] / x[3] + x[4].ln()
    }
}

#[test]
fn extreme_magnitudes_give_finite_exact_derivatives() {
    // (x, gradient, whether the Hessian is finite): ∂hypot = (x₀, x₁)/h,
    // ∂(x₂/x₃) = (1/x₃, -x₂/x₃²), ∂ ln x₄ = 1/x₄. Near 1e-300 the Hessian entries of x₂/x₃
    // and ln x₄ overflow (-1/x₄² = -1e600), and forward mode then gives 0 · inf = NaN in the
    // directions not involved, so only the gradient is checked there.
    let table: &[([f64; 5], [f64; 5], bool)] = &[
        (
            [3e300, 4e300, 1e300, 1e300, 1e300],
            [0.6, 0.8, 1e-300, -1e-300, 1e-300],
            true,
        ),
        (
            [3e-300, -4e-300, 1e-300, 1e-300, 1e-300],
            [0.6, -0.8, 1e300, -1e300, 1e300],
            false,
        ),
        (
            [-3e300, 4e-300, 2e150, 1e150, 4e-300],
            [-1.0, 4e-300 / 3e300, 1e-150, -2e-150, 2.5e299],
            false,
        ),
    ];
    for (x, want, hessian_finite) in table {
        for chunk in chunks() {
            let g = duals::gradient(&Extreme, x, &mut cfg(chunk)).unwrap();
            assert_close(&g, want, 1e-15, &format!("gradient at {x:?}, {chunk:?}"));
        }
        // Each gradient entry separately, so that 1e-300 is not compared against 1e300.
        let v = [1.0, -0.5, 0.25, 2.0, -1.0];
        let (_, jv) = duals::jvp(&ExtremeAsVector, x, &v, &mut Config::new()).unwrap();
        let want_jv: f64 = want.iter().zip(&v).map(|(a, b)| a * b).sum();
        assert!(
            (jv[0] - want_jv).abs() <= 1e-15 * want_jv.abs(),
            "jvp at {x:?}"
        );
        for method in [
            HessianMethod::Dual2,
            HessianMethod::HyperDual,
            HessianMethod::Nested,
        ] {
            let mut c = Config::new().with_hessian_method(method);
            let (_, g, h) = duals::value_gradient_and_hessian(&Extreme, x, &mut c).unwrap();
            for k in 0..5 {
                let what = format!("{method:?} gradient entry {k} at {x:?}");
                assert_close(&g[k..=k], &want[k..=k], 1e-15, &what);
            }
            if *hessian_finite {
                let finite = h.as_slice().iter().all(|e| e.is_finite());
                assert!(finite, "{method:?} Hessian at {x:?}: {:?}", h.as_slice());
            }
        }
        if *hessian_finite {
            let h = duals::hessian(&Extreme, x, &mut Config::new()).unwrap();
            let want = mat_vec(&h, &v);
            for chunk in chunks() {
                let hv = duals::hvp(&Extreme, x, &v, &mut cfg(chunk)).unwrap();
                for k in 0..5 {
                    let what = format!("hvp entry {k} at {x:?}, {chunk:?}");
                    assert_close(&hv[k..=k], &want[k..=k], 1e-14, &what);
                }
            }
        }
    }
    // The Hessian of hypot at (3e300, 4e300): [[0.128, -0.096], [-0.096, 0.072]] / 1e300.
    let h = duals::hessian(&Extreme, &[3e300, 4e300, 1.0, 1.0, 1.0], &mut Config::new()).unwrap();
    let want = [0.128e-300, -0.096e-300, 0.072e-300];
    let got = [h[(0, 0)], h[(0, 1)], h[(1, 1)]];
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-14 * w.abs(),
            "hypot Hessian: {got:?} vs {want:?}"
        );
    }
}

/// `Extreme` as a function `R⁵ → R¹`, for `jvp`.
struct ExtremeAsVector;

impl VectorFunction<f64> for ExtremeAsVector {
    fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
        y[0] = Extreme.eval(x);
    }
    fn output_len(&self, _n: usize) -> usize {
        1
    }
}

#[test]
fn jacobian_at_extreme_magnitudes_does_not_overflow() {
    // y = (x₀ x₁, x₀ / x₁, x₁ / x₀) at (1e300, 1e-300): J = [[x₁, x₀], [1/x₁, -x₀/x₁²], …].
    // -x₀/x₁² = -1e900 overflows; the others are finite.
    struct Products;
    impl VectorFunction<f64> for Products {
        fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
            y[0] = x[0] * x[1];
            y[1] = x[1] / x[0];
        }
    }
    let x = [1e300, 1e-300];
    for chunk in chunks() {
        let j = duals::jacobian(&Products, &x, &mut cfg(chunk)).unwrap();
        // ∂(x₁/x₀) = (-x₁/x₀², 1/x₀) = (-1e-900 → -0, 1e-300).
        assert_eq!(j.as_slice(), &[1e-300, 1e300, -0.0, 1e-300], "{chunk:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Functions of one variable, on closures
// ---------------------------------------------------------------------------------------------

/// `(x, f(x), f'(x), f''(x))` for a closure `|x| body`, checked through `derivative`,
/// `value_and_derivative`, `second_derivative` and `value_and_second_derivative`.
macro_rules! check_univariate {
    ($x:expr, |$v:ident| $body:expr, $f:expr, $d1:expr, $d2:expr) => {{
        let x: f64 = $x;
        let (f, d1, d2): (f64, f64, f64) = ($f, $d1, $d2);
        let what = stringify!($body);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-14 * b.abs().max(1e-300);
        assert!(
            close(duals::derivative(|$v| $body, x), d1),
            "{what}: derivative at {x}"
        );
        let (fv, dv) = duals::value_and_derivative(|$v| $body, x);
        assert!(
            close(fv, f) && close(dv, d1),
            "{what}: value_and_derivative at {x}"
        );
        assert!(
            close(duals::second_derivative(|$v| $body, x), d2),
            "{what}: second_derivative"
        );
        let (fv, dv, ddv) = duals::value_and_second_derivative(|$v| $body, x);
        assert!(
            close(fv, f) && close(dv, d1) && close(ddv, d2),
            "{what}: value_and_second_derivative at {x}: ({fv}, {dv}, {ddv}) vs ({f}, {d1}, {d2})"
        );
    }};
}

#[test]
fn derivative_and_second_derivative_of_closures() {
    check_univariate!(2.0, |x| x.powi(3), 8.0, 12.0, 12.0);
    let s = 0.5_f64;
    check_univariate!(
        s,
        |x| x.sin() * x,
        s.sin() * s,
        s.cos() * s + s.sin(),
        2.0 * s.cos() - s * s.sin()
    );
    // x / (1 + x²): (1 - x²)/(1 + x²)², 2x(x² - 3)/(1 + x²)³.
    let t = 1.5_f64;
    let q = 1.0 + t * t;
    check_univariate!(
        t,
        |x| x / (x * x + 1.0),
        t / q,
        (1.0 - t * t) / (q * q),
        2.0 * t * (t * t - 3.0) / (q * q * q)
    );
    // exp(-x²/2): -x e, (x² - 1) e.
    let e = (-0.5_f64 * t * t).exp();
    check_univariate!(t, |x| (x * x * -0.5).exp(), e, -t * e, (t * t - 1.0) * e);
    // A constant: zero derivatives.
    check_univariate!(3.0, |x| x * 0.0 + 7.0, 7.0, 0.0, 0.0);
    // Magnitudes near 1e±300: ln x at 1e300 gives 1e-300 and -1e-600 -> -0.
    check_univariate!(1e300, |x| x.ln(), 1e300_f64.ln(), 1e-300, 0.0);
    check_univariate!(1e-300, |x| x * 1e300 * x, 1e-300, 2.0, 2e300);

    // The f32 path.
    assert_eq!(duals::derivative(|x| x * x * x, 2.0_f32), 12.0_f32);
    assert_eq!(duals::second_derivative(|x| x * x * x, 2.0_f32), 12.0_f32);
}
