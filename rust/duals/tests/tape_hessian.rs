//! `Tape::hessian` by sparse second-order propagation (the `Auto` method on tapes): equal to the
//! closed form and to the dense methods, exactly symmetric, structural zeros exactly 0.

use duals::rules::{BinaryRule, UnaryRule};
use duals::tape::{CmpOp, Tape, TapeBuilder, TapeError, Var};
use duals::{Config, HessianMethod};

type R<T = ()> = Result<T, TapeError>;

const SIZES: [usize; 11] = [1, 2, 3, 4, 5, 8, 9, 10, 16, 17, 33];

fn inputs(b: &mut TapeBuilder, x: &[f64]) -> R<Vec<Var>> {
    x.iter().map(|&v| b.input(v)).collect()
}

fn point(n: usize) -> Vec<f64> {
    (0..n).map(|i| 1.0 + 0.5 * (0.7 * i as f64).sin()).collect()
}

/// `Σᵢ (xᵢ - 1)² + 100 (xᵢ₊₁ - xᵢ²)²`, recorded as the benches and Python record it.
fn rosenbrock_tape(x: &[f64]) -> R<Tape> {
    let mut b = TapeBuilder::new();
    let x = inputs(&mut b, x)?;
    let (one, hundred) = (b.constant(1.0)?, b.constant(100.0)?);
    let mut s = b.constant(0.0)?;
    for i in 0..x.len().saturating_sub(1) {
        let a = b.sub(x[i], one)?;
        let sq = b.mul(x[i], x[i])?;
        let d = b.sub(x[i + 1], sq)?;
        let aa = b.mul(a, a)?;
        let dd = b.mul(d, d)?;
        let dd = b.mul(dd, hundred)?;
        let t = b.add(aa, dd)?;
        s = b.add(s, t)?;
    }
    // n = 1: f = x₀ · 0, a tape with an input and a zero Hessian.
    if x.len() == 1 {
        let zero = b.constant(0.0)?;
        s = b.mul(x[0], zero)?;
    }
    b.output(s)?;
    Ok(b.finish())
}

/// The Rosenbrock Hessian in closed form.
fn rosenbrock_hessian(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut h = vec![0.0; n * n];
    for i in 0..n.saturating_sub(1) {
        h[i * n + i] += 2.0 + 1200.0 * x[i] * x[i] - 400.0 * x[i + 1];
        h[(i + 1) * n + i + 1] += 200.0;
        h[i * n + i + 1] = -400.0 * x[i];
        h[(i + 1) * n + i] = -400.0 * x[i];
    }
    h
}

/// A tape with every kind of instruction: the rule table (one and two operands), quotients,
/// constant forms, selections, a passive value, and a product of two long sums (a dense
/// block).
fn mixed_tape(x: &[f64]) -> R<Tape> {
    let mut b = TapeBuilder::new();
    let x = inputs(&mut b, x)?;
    let n = x.len();
    let (two, three) = (b.constant(2.0)?, b.constant(3.0)?);
    let at = |i: usize| x[i % n];
    let mut s = b.constant(0.0)?;
    let mut sum_even = b.constant(0.0)?;
    let mut sum_odd = b.constant(0.0)?;
    for i in 0..n {
        let (u, v, w) = (at(i), at(i + 1), at(i + 2));
        let sin = b.unary(UnaryRule::Sin, u)?;
        let exp = b.unary(UnaryRule::Exp, v)?;
        let t1 = b.mul(sin, exp)?;
        let t2 = b.div(u, w)?;
        let t3 = b.binary(BinaryRule::Pow, u, v)?;
        let t4 = b.binary(BinaryRule::Atan2, v, w)?;
        let m = b.max(u, v)?;
        let t5 = b.mul(m, m)?;
        let lo = b.min(v, w)?;
        let ln = b.unary(UnaryRule::Ln, lo)?;
        let sq = b.mul(u, u)?;
        let t6 = b.select(CmpOp::Gt, u, v, sq, ln)?;
        // A passive factor: where(u > 1, 2, 3), a real with no derivative.
        let p = b.select(CmpOp::Gt, u, two, two, three)?;
        let t7 = b.mul(p, v)?;
        let t8 = b.div(three, w)?;
        let t9 = b.neg(t8)?;
        let t10 = b.unary(UnaryRule::Powi(3), v)?;
        for t in [t1, t2, t3, t4, t5, t6, t7, t9, t10] {
            s = b.add(s, t)?;
        }
        if i % 2 == 0 {
            sum_even = b.add(sum_even, u)?;
        } else {
            sum_odd = b.sub(sum_odd, u)?;
        }
    }
    let dense = b.mul(sum_even, sum_odd)?;
    let dense = b.mul(dense, three)?;
    s = b.add(s, dense)?;
    b.output(s)?;
    Ok(b.finish())
}

fn assert_close(a: &[f64], b: &[f64], rel: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let tol = rel * x.abs().max(y.abs()).max(1.0);
        assert!(
            x == y || (x - y).abs() <= tol,
            "{what}[{i}]: {x:e} vs {y:e}"
        );
    }
}

fn assert_symmetric(h: &[f64], n: usize) {
    for i in 0..n {
        for j in 0..n {
            assert_eq!(h[i * n + j].to_bits(), h[j * n + i].to_bits(), "({i}, {j})");
        }
    }
}

fn hessian_with(tape: &Tape, x: &[f64], method: HessianMethod) -> R<Vec<f64>> {
    let mut cfg = Config::new().with_hessian_method(method);
    Ok(tape.hessian(x, &mut cfg)?.as_slice().to_vec())
}

#[test]
fn rosenbrock_matches_the_closed_form_and_the_dense_methods() -> R {
    for n in SIZES {
        let x = point(n);
        let tape = rosenbrock_tape(&x)?;
        let h = hessian_with(&tape, &x, HessianMethod::Auto)?;
        assert_symmetric(&h, n);
        assert_close(
            &h,
            &rosenbrock_hessian(&x),
            1e-13,
            &format!("closed form n={n}"),
        );
        for method in [HessianMethod::HyperDual, HessianMethod::Nested] {
            let d = hessian_with(&tape, &x, method)?;
            assert_close(&h, &d, 1e-13, &format!("{method:?} n={n}"));
        }
        if n <= 8 {
            let d = hessian_with(&tape, &x, HessianMethod::Dual2)?;
            assert_close(&h, &d, 1e-13, &format!("Dual2 n={n}"));
        }
        // Repeated calls (the cached program, the reused work buffer) give the same bits.
        assert_eq!(h, hessian_with(&tape, &x, HessianMethod::Auto)?);
        // H v from the HVP driver.
        let v: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).cos()).collect();
        let hv = tape.hvp(&x, &v, &mut Config::new())?;
        let mine: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| h[i * n + j] * v[j]).sum())
            .collect();
        assert_close(&mine, &hv, 1e-12, &format!("hvp n={n}"));
    }
    Ok(())
}

#[test]
fn every_instruction_matches_the_dense_methods() -> R {
    for n in [1, 2, 3, 5, 9, 17] {
        let x = point(n);
        let tape = mixed_tape(&x)?;
        let h = hessian_with(&tape, &x, HessianMethod::Auto)?;
        assert_symmetric(&h, n);
        for method in [HessianMethod::HyperDual, HessianMethod::Nested] {
            let d = hessian_with(&tape, &x, method)?;
            assert_close(&h, &d, 1e-13, &format!("{method:?} n={n}"));
        }
        // The other branches of the selections.
        let y: Vec<f64> = x.iter().rev().map(|v| 2.2 - v).collect();
        let h = hessian_with(&tape, &y, HessianMethod::Auto)?;
        let d = hessian_with(&tape, &y, HessianMethod::HyperDual)?;
        assert_close(&h, &d, 1e-13, &format!("other branches n={n}"));
    }
    Ok(())
}

/// Structural zeros stay 0 where the dense methods give NaN from `0 · inf`: outside the
/// pattern (the tridiagonal band here), and inside it for the parts of an entry that do not
/// depend on the infinite input. Here that makes the result the closed form at `x₀ = inf`,
/// where the dense methods have NaN in a whole block. NaN still propagates to every entry
/// that depends on a NaN input.
#[test]
fn structural_zeros_stay_zero_at_infinity() -> R {
    let n = 10;
    let mut x = point(n);
    let tape = rosenbrock_tape(&x)?;
    x[0] = f64::INFINITY;
    let h = hessian_with(&tape, &x, HessianMethod::Auto)?;
    assert_symmetric(&h, n);
    let closed = rosenbrock_hessian(&x);
    assert_eq!((closed[0], closed[1]), (f64::INFINITY, f64::NEG_INFINITY));
    assert_close(&h, &closed, 1e-13, "closed form at x0 = inf");
    // The dense block method mixes x₀ into its whole first block.
    let d = hessian_with(&tape, &x, HessianMethod::HyperDual)?;
    assert!(d[3].is_nan() && d[n + 1].is_nan());
    // At x₀ = NaN the entries that depend on x₀ are NaN, the others as at a finite point.
    x[0] = f64::NAN;
    let h = hessian_with(&tape, &x, HessianMethod::Auto)?;
    assert!(h[0].is_nan() && h[1].is_nan() && h[n].is_nan());
    assert_eq!(h[2], 0.0);
    let finite = rosenbrock_hessian(&x);
    assert_close(&[h[5 * n + 5]], &[finite[5 * n + 5]], 1e-13, "away from x0");
    Ok(())
}

#[test]
fn not_scalar_is_an_error() -> R {
    let mut b = TapeBuilder::new();
    let x = b.input(1.0)?;
    let y = b.mul(x, x)?;
    b.output(y)?;
    b.output(x)?;
    let tape = b.finish();
    assert!(matches!(
        tape.hessian(&[1.0], &mut Config::new()),
        Err(TapeError::NotScalar { .. })
    ));
    Ok(())
}

#[test]
fn output_is_an_input_or_a_constant() -> R {
    let mut b = TapeBuilder::new();
    let x = b.input(1.0)?;
    let _ = b.input(2.0)?;
    b.output(x)?;
    let tape = b.finish();
    assert_eq!(
        hessian_with(&tape, &[1.0, 2.0], HessianMethod::Auto)?,
        [0.0; 4]
    );
    let mut b = TapeBuilder::new();
    let _ = b.input(1.0)?;
    let c = b.constant(3.0)?;
    b.output(c)?;
    let tape = b.finish();
    assert_eq!(hessian_with(&tape, &[1.0], HessianMethod::Auto)?, [0.0]);
    Ok(())
}
