//! Properties of random compositions of elementary functions.
//!
//! Random expression trees over 1–3 variables (`+ - * /`, `powd` and a dozen unary functions,
//! each on a safe domain: `ln(1 + a²)`, `a / (1 + b²)`, …) are evaluated generically through
//! `DualNum` on every number type. Checked:
//! - the `Dual` gradient against an 8th-order central finite difference;
//! - the hyper-dual, `Dual2` and nested-dual Hessians against finite differences of the exact
//!   `Dual` gradient, and against each other;
//! - the first derivatives of `Dual`, `HyperDual` (`eps1`, `eps2`), `Dual2` (`v1`) and nested
//!   duals agree to rounding.

use duals::{Dual, Dual2_64, DualNum, DualVec64, HyperDualVec64};
use proptest::prelude::*;

/// At most this many variables.
const MAXV: usize = 3;
/// Cases per property (unless `PROPTEST_CASES` is set): enough to cover the operations, small
/// enough for a 2-core machine.
const CASES: u32 = 128;

// ---------------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Un {
    Sin,
    Cos,
    Atan,
    Tanh,
    Asinh,
    Erf,
    /// `exp(tanh a)`: bounded argument, so nested exponentials stay finite.
    ExpTanh,
    /// `ln(1 + a²)`
    LnOnePlusSq,
    /// `√(1 + a²)`
    SqrtOnePlusSq,
    /// `∛(2 + sin a)`
    CbrtShifted,
    /// `a³`
    Cube,
    /// `(1 + a²)^(-1.5)` via `powf`
    PowfNeg,
}

#[derive(Clone, Copy, Debug)]
enum Bin {
    Add,
    Sub,
    Mul,
    /// `a / (1 + b²)`
    DivSafe,
    /// `(1 + a²)^(sin b)` via `powd`
    PowSafe,
    /// `hypot(a, 1 + b²)`
    HypotSafe,
}

#[derive(Clone, Debug)]
enum Expr {
    Var(usize),
    Const(f64),
    Un(Un, Box<Expr>),
    Bin(Bin, Box<Expr>, Box<Expr>),
}

fn eval<D: DualNum<f64>>(e: &Expr, x: &[D]) -> D {
    match e {
        Expr::Var(i) => x[*i],
        Expr::Const(c) => D::from_re(*c),
        Expr::Un(op, a) => {
            let a = eval(a, x);
            match op {
                Un::Sin => a.sin(),
                Un::Cos => a.cos(),
                Un::Atan => a.atan(),
                Un::Tanh => a.tanh(),
                Un::Asinh => a.asinh(),
                Un::Erf => a.erf(),
                Un::ExpTanh => a.tanh().exp(),
                Un::LnOnePlusSq => (a * a + 1.0).ln(),
                Un::SqrtOnePlusSq => (a * a + 1.0).sqrt(),
                Un::CbrtShifted => (a.sin() + 2.0).cbrt(),
                Un::Cube => a.powi(3),
                Un::PowfNeg => (a * a + 1.0).powf(-1.5),
            }
        }
        Expr::Bin(op, a, b) => {
            let (a, b) = (eval(a, x), eval(b, x));
            match op {
                Bin::Add => a + b,
                Bin::Sub => a - b,
                Bin::Mul => a * b,
                Bin::DivSafe => a / (b * b + 1.0),
                Bin::PowSafe => (a * a + 1.0).powd(b.sin()),
                Bin::HypotSafe => a.hypot(b * b + 1.0),
            }
        }
    }
}

fn unary_op() -> impl Strategy<Value = Un> {
    prop_oneof![
        Just(Un::Sin),
        Just(Un::Cos),
        Just(Un::Atan),
        Just(Un::Tanh),
        Just(Un::Asinh),
        Just(Un::Erf),
        Just(Un::ExpTanh),
        Just(Un::LnOnePlusSq),
        Just(Un::SqrtOnePlusSq),
        Just(Un::CbrtShifted),
        Just(Un::Cube),
        Just(Un::PowfNeg),
    ]
}

fn binary_op() -> impl Strategy<Value = Bin> {
    prop_oneof![
        Just(Bin::Add),
        Just(Bin::Sub),
        Just(Bin::Mul),
        Just(Bin::DivSafe),
        Just(Bin::PowSafe),
        Just(Bin::HypotSafe),
    ]
}

/// Trees of depth up to 4 over variables `0..n`.
fn expr(n: usize) -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        3 => (0..n).prop_map(Expr::Var),
        1 => (-2.0..2.0_f64).prop_map(Expr::Const),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (unary_op(), inner.clone()).prop_map(|(op, a)| Expr::Un(op, Box::new(a))),
            (binary_op(), inner.clone(), inner).prop_map(|(op, a, b)| Expr::Bin(
                op,
                Box::new(a),
                Box::new(b)
            )),
        ]
    })
}

/// An expression and a point in `[-1.5, 1.5]ⁿ`, `n` in `1..=3`.
fn case() -> impl Strategy<Value = (Expr, Vec<f64>)> {
    (1..=MAXV).prop_flat_map(|n| (expr(n), prop::collection::vec(-1.5..1.5_f64, n)))
}

// ---------------------------------------------------------------------------------------------
// Derivatives on every type
// ---------------------------------------------------------------------------------------------

type Grad = [f64; MAXV];
type Hess = [[f64; MAXV]; MAXV];

/// Value and gradient on `DualVec64<3>` (unused lanes stay zero).
fn dual_gradient(e: &Expr, x: &[f64]) -> (f64, Grad) {
    let xs: Vec<DualVec64<MAXV>> = (0..x.len()).map(|i| DualVec64::seeded(x[i], i)).collect();
    let y = eval(e, &xs);
    (y.re, y.eps)
}

/// Gradients (`eps1`, `eps2`) and Hessian on `HyperDualVec64<3, 3>`.
fn hyperdual(e: &Expr, x: &[f64]) -> (Grad, Grad, Hess) {
    let xs: Vec<HyperDualVec64<MAXV, MAXV>> = (0..x.len())
        .map(|i| {
            let unit: [f64; MAXV] = std::array::from_fn(|k| if k == i { 1.0 } else { 0.0 });
            HyperDualVec64::new(x[i], unit, unit, [[0.0; MAXV]; MAXV])
        })
        .collect();
    let y = eval(e, &xs);
    (y.eps1, y.eps2, y.eps12)
}

/// Gradient and Hessian on `Dual2_64<3>`.
fn dual2(e: &Expr, x: &[f64]) -> (Grad, Hess) {
    let xs: Vec<Dual2_64<MAXV>> = (0..x.len()).map(|i| Dual2_64::seeded(x[i], i)).collect();
    let y = eval(e, &xs);
    (y.v1, y.v2)
}

/// Gradients (inner and outer level) and Hessian on nested `Dual<DualVec64<3>, f64, 3>`.
fn nested(e: &Expr, x: &[f64]) -> (Grad, Grad, Hess) {
    type N = Dual<DualVec64<MAXV>, f64, MAXV>;
    let xs: Vec<N> = (0..x.len())
        .map(|i| {
            let outer =
                std::array::from_fn(|k| DualVec64::constant(if k == i { 1.0 } else { 0.0 }));
            N::new(DualVec64::seeded(x[i], i), outer)
        })
        .collect();
    let y = eval(e, &xs);
    (
        y.re.eps,
        std::array::from_fn(|i| y.eps[i].re),
        std::array::from_fn(|i| y.eps[i].eps),
    )
}

// ---------------------------------------------------------------------------------------------
// Finite differences
// ---------------------------------------------------------------------------------------------

/// 8th-order central difference `f'(x) ≈ Σⱼ cⱼ (f(x + jh) - f(x - jh)) / h`.
fn fd8(f: impl Fn(f64) -> f64, x: f64, h: f64) -> f64 {
    const C: [f64; 4] = [4.0 / 5.0, -1.0 / 5.0, 4.0 / 105.0, -1.0 / 280.0];
    let s: f64 = C
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let t = (j + 1) as f64 * h;
            c * (f(x + t) - f(x - t))
        })
        .sum();
    s / h
}

/// Partial derivative `∂g/∂xₖ` at `x` by `fd8`, with the step per point (a power of two near
/// `2⁻⁶ max(1, |xₖ|)`), and an error estimate from halving the step.
fn partial(g: impl Fn(&[f64]) -> f64, x: &[f64], k: usize) -> (f64, f64) {
    let h = (2.0_f64.powi(-6) * x[k].abs().max(1.0))
        .log2()
        .round()
        .exp2();
    let along = |t: f64| {
        let mut y = x.to_vec();
        y[k] = t;
        g(&y)
    };
    let (d, d_half) = (fd8(along, x[k], h), fd8(along, x[k], h / 2.0));
    (d_half, (d - d_half).abs())
}

/// `|a - b| <= rtol · max(|a|, |b|, scale)`.
fn close(a: f64, b: f64, rtol: f64, scale: f64) -> bool {
    (a - b).abs() <= rtol * a.abs().max(b.abs()).max(scale)
}

/// The largest magnitude in a gradient or Hessian, at least 1: differences are measured
/// relative to this where entries cancel.
fn scale_of(v: impl IntoIterator<Item = f64>) -> f64 {
    v.into_iter().fold(1.0_f64, |m, a| m.max(a.abs()))
}

/// `CASES` cases from a fixed seed, so that a run is reproducible; `PROPTEST_CASES` and
/// `PROPTEST_RNG_SEED` override them (e.g. `PROPTEST_CASES=10000 PROPTEST_RNG_SEED=7`).
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = CASES;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = proptest::test_runner::RngSeed::Fixed(0x2b7e_1516);
    }
    // The finite-difference checks skip the cases (a few percent) where the difference itself
    // is unreliable: its estimated error, from halving the step, is above the tolerance.
    c.max_global_rejects = 2 * c.cases;
    c
}

proptest! {
    #![proptest_config(config())]

    /// The `Dual` gradient matches an 8th-order central finite difference.
    #[test]
    fn dual_gradient_matches_finite_differences((e, x) in case()) {
        let (f, g) = dual_gradient(&e, &x);
        prop_assume!(f.is_finite() && g.iter().all(|d| d.is_finite()));
        let value = |y: &[f64]| eval::<f64>(&e, y);
        let scale = scale_of(g.iter().copied().chain([f]));
        for (k, &gk) in g.iter().enumerate().take(x.len()) {
            let (fd, err) = partial(value, &x, k);
            prop_assume!(err <= 1e-10 * scale);
            prop_assert!(
                close(gk, fd, 1e-9, scale),
                "∂f/∂x{} of {:?} at {:?}: dual {:e}, finite difference {:e} (estimated error {:e})",
                k, e, x, gk, fd, err
            );
        }
    }

    /// The second-order types give the Hessian of finite differences of the exact gradient.
    #[test]
    fn hessians_match_finite_differences_of_the_gradient((e, x) in case()) {
        let n = x.len();
        let (_, _, h_hyper) = hyperdual(&e, &x);
        let (_, h_dual2) = dual2(&e, &x);
        let (_, _, h_nested) = nested(&e, &x);
        let all = [h_hyper, h_dual2, h_nested];
        prop_assume!(all.iter().flatten().flatten().all(|d| d.is_finite()));
        let scale = scale_of(h_hyper.iter().flatten().copied());
        for i in 0..n {
            let grad_i = |y: &[f64]| dual_gradient(&e, y).1[i];
            for j in 0..n {
                let (fd, err) = partial(grad_i, &x, j);
                prop_assume!(err <= 1e-10 * scale);
                for (name, h) in ["HyperDualVec64", "Dual2_64", "nested"].iter().zip(&all) {
                    prop_assert!(
                        close(h[i][j], fd, 1e-9, scale),
                        "∂²f/∂x{}∂x{} of {:?} at {:?}: {} {:e}, finite difference {:e}",
                        i, j, e, x, name, h[i][j], fd
                    );
                }
            }
        }
    }

    /// All types agree: first derivatives to rounding, second derivatives to a few roundings of
    /// the largest entry (nested duals differentiate the first-derivative formulas instead of
    /// using the second-derivative entries of the table).
    #[test]
    fn every_type_gives_the_same_derivatives((e, x) in case()) {
        let n = x.len();
        let (f, g) = dual_gradient(&e, &x);
        prop_assume!(f.is_finite() && g.iter().all(|d| d.is_finite()));
        let (h1, h2, hh) = hyperdual(&e, &x);
        let (d1, dh) = dual2(&e, &x);
        let (n_inner, n_outer, nh) = nested(&e, &x);
        prop_assert_eq!(eval::<f64>(&e, &x), f);
        let scale = scale_of(g.iter().copied());
        for k in 0..n {
            for (name, got) in [
                ("HyperDual eps1", h1[k]),
                ("HyperDual eps2", h2[k]),
                ("Dual2 v1", d1[k]),
                ("nested inner", n_inner[k]),
                ("nested outer", n_outer[k]),
            ] {
                prop_assert!(
                    close(got, g[k], 1e-12, scale),
                    "∂f/∂x{} of {:?} at {:?}: {} {:e} vs Dual {:e}", k, e, x, name, got, g[k]
                );
            }
        }
        let hscale = scale_of(hh.iter().flatten().copied());
        prop_assume!(hscale.is_finite());
        for i in 0..n {
            for j in 0..n {
                for (name, got) in [("Dual2", dh[i][j]), ("nested", nh[i][j])] {
                    prop_assert!(
                        close(got, hh[i][j], 1e-11, hscale),
                        "∂²f/∂x{}∂x{} of {:?} at {:?}: {} {:e} vs HyperDual {:e}",
                        i, j, e, x, name, got, hh[i][j]
                    );
                }
                // The second-order types are symmetric up to rounding.
                prop_assert!(close(hh[i][j], hh[j][i], 1e-12, hscale));
            }
        }
    }
}
