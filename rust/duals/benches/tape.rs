//! Compiled mode, Rust side: a tape against the same function written generically in Rust,
//! through the same drivers.
//!
//! ```text
//! cargo bench -p duals --bench tape -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Groups: `tape_robertson_jacobian`, `tape_rosenbrock_hessian_10`, `tape_batch_1e6`
//! (value, derivative and second derivative of `sin(x) exp(-x²) + ln(1 + x²)` at 1e6 points),
//! `tape_sparse_bratu_1000` (a tridiagonal Jacobian by coloring against dense).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use duals::rules::UnaryRule;
use duals::tape::{Tape, TapeBuilder, TapeError, Var};
use duals::{Config, DualNum, ScalarFunction, VectorFunction};

const K1: f64 = 0.04;
const K2: f64 = 3e7;
const K3: f64 = 1e4;
const Y_ROBERTSON: [f64; 3] = [0.7158270687, 9.185534764e-6, 0.2841637457];

struct Robertson;

impl VectorFunction<f64> for Robertson {
    fn eval<D: DualNum<f64>>(&self, y: &[D], dy: &mut [D]) {
        dy[0] = y[0] * -K1 + y[1] * y[2] * K3;
        dy[1] = y[0] * K1 - y[1] * y[2] * K3 - y[1] * y[1] * K2;
        dy[2] = y[1] * y[1] * K2;
    }
}

fn inputs(b: &mut TapeBuilder, x: &[f64]) -> Result<Vec<Var>, TapeError> {
    x.iter().map(|&v| b.input(v)).collect()
}

/// Robertson as a tracer records it.
fn robertson_tape() -> Result<Tape, TapeError> {
    let mut b = TapeBuilder::new();
    let y = inputs(&mut b, &Y_ROBERTSON)?;
    let (mk1, k1, k2, k3) = (
        b.constant(-K1)?,
        b.constant(K1)?,
        b.constant(K2)?,
        b.constant(K3)?,
    );
    let t0 = b.mul(y[0], mk1)?;
    let p = b.mul(y[1], y[2])?;
    let t1 = b.mul(p, k3)?;
    let dy0 = b.add(t0, t1)?;
    let t2 = b.mul(y[0], k1)?;
    let t4 = b.sub(t2, t1)?;
    let q = b.mul(y[1], y[1])?;
    let t5 = b.mul(q, k2)?;
    let dy1 = b.sub(t4, t5)?;
    for v in [dy0, dy1, t5] {
        b.output(v)?;
    }
    Ok(b.finish())
}

struct Rosenbrock;

impl ScalarFunction<f64> for Rosenbrock {
    fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
        let mut s = D::zero();
        for i in 0..x.len().saturating_sub(1) {
            let a = x[i] - 1.0;
            let b = x[i + 1] - x[i] * x[i];
            s += a * a + b * b * 100.0;
        }
        s
    }
}

fn rosenbrock_tape(x: &[f64]) -> Result<Tape, TapeError> {
    let mut b = TapeBuilder::new();
    let x = inputs(&mut b, x)?;
    let (one, hundred) = (b.constant(1.0)?, b.constant(100.0)?);
    let mut s = b.constant(0.0)?;
    for i in 0..x.len() - 1 {
        let a = b.sub(x[i], one)?;
        let sq = b.mul(x[i], x[i])?;
        let d = b.sub(x[i + 1], sq)?;
        let aa = b.mul(a, a)?;
        let dd = b.mul(d, d)?;
        let dd = b.mul(dd, hundred)?;
        let t = b.add(aa, dd)?;
        s = b.add(s, t)?;
    }
    b.output(s)?;
    Ok(b.finish())
}

/// `sin(x) exp(-x²) + ln(1 + x²)`, generic.
fn bump<D: DualNum<f64>>(x: D) -> D {
    let x2 = x.powi(2);
    x.sin() * (-x2).exp() + x2.ln_1p()
}

fn bump_tape() -> Result<Tape, TapeError> {
    let mut b = TapeBuilder::new();
    let x = b.input(0.5)?;
    let x2 = b.unary(UnaryRule::Powi(2), x)?;
    let s = b.unary(UnaryRule::Sin, x)?;
    let n = b.neg(x2)?;
    let e = b.unary(UnaryRule::Exp, n)?;
    let p = b.mul(s, e)?;
    let l = b.unary(UnaryRule::Ln1p, x2)?;
    let y = b.add(p, l)?;
    b.output(y)?;
    Ok(b.finish())
}

fn bratu_tape(n: usize) -> Result<Tape, TapeError> {
    let mut b = TapeBuilder::new();
    let x = inputs(&mut b, &vec![0.1; n])?;
    let (m2, h2) = (b.constant(-2.0)?, b.constant(1.0 / (n * n) as f64)?);
    for i in 0..n {
        let mut f = b.mul(x[i], m2)?;
        if i > 0 {
            f = b.add(f, x[i - 1])?;
        }
        if i + 1 < n {
            f = b.add(f, x[i + 1])?;
        }
        let e = b.unary(UnaryRule::Exp, x[i])?;
        let e = b.mul(e, h2)?;
        let f = b.add(f, e)?;
        b.output(f)?;
    }
    Ok(b.finish())
}

fn robertson(c: &mut Criterion) {
    let tape = robertson_tape().unwrap();
    let y = Y_ROBERTSON;
    let mut cfg = Config::new();
    let (mut value, mut jac) = ([0.0; 3], [0.0; 9]);
    let mut jac2 = [0.0; 9];
    tape.jacobian_into(&y, &mut value, &mut jac, &mut cfg)
        .unwrap();
    duals::jacobian_into(&Robertson, &y, &mut value, &mut jac2, &mut cfg).unwrap();
    assert_eq!(jac, jac2, "tape and Rust agree");

    let mut g = c.benchmark_group("tape_robertson_jacobian");
    g.bench_function("rust/jacobian_into", |b| {
        b.iter(|| {
            duals::jacobian_into(&Robertson, black_box(&y), &mut value, &mut jac, &mut cfg)
                .unwrap();
            black_box(&jac);
        })
    });
    g.bench_function("tape/jacobian_into", |b| {
        b.iter(|| {
            tape.jacobian_into(black_box(&y), &mut value, &mut jac, &mut cfg)
                .unwrap();
            black_box(&jac);
        })
    });
    g.bench_function("tape/jacobian", |b| {
        b.iter(|| tape.jacobian(black_box(&y), &mut cfg).unwrap())
    });
    g.bench_function("tape/value_into", |b| {
        b.iter(|| {
            tape.value_into(black_box(&y), &mut value).unwrap();
            black_box(&value);
        })
    });
    g.finish();
}

fn rosenbrock(c: &mut Criterion) {
    let x: Vec<f64> = (0..10)
        .map(|i| 1.0 + 0.5 * (0.7 * i as f64).sin())
        .collect();
    let tape = rosenbrock_tape(&x).unwrap();
    let mut cfg = Config::new();
    assert_eq!(
        tape.hessian(&x, &mut cfg).unwrap(),
        duals::hessian(&Rosenbrock, &x, &mut cfg).unwrap()
    );
    let mut g = c.benchmark_group("tape_rosenbrock_hessian_10");
    g.bench_function("rust/hessian", |b| {
        b.iter(|| duals::hessian(&Rosenbrock, black_box(&x), &mut cfg).unwrap())
    });
    g.bench_function("tape/hessian", |b| {
        b.iter(|| tape.hessian(black_box(&x), &mut cfg).unwrap())
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let n = 1_000_000;
    let tape = bump_tape().unwrap();
    let x: Vec<f64> = (0..n)
        .map(|i| -3.0 + 6.0 * i as f64 / (n - 1) as f64)
        .collect();
    let (mut v, mut d1, mut d2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    tape.derivative_batch(&x, &mut v, &mut d1).unwrap();
    for k in (0..n).step_by(9973) {
        let (f, d) = duals::value_and_derivative(bump, x[k]);
        assert!((v[k] - f).abs() <= 1e-15 * f.abs().max(1e-300));
        assert!((d1[k] - d).abs() <= 1e-15 * d.abs().max(1e-300));
    }

    let mut g = c.benchmark_group("tape_batch_1e6");
    g.sample_size(10);
    g.bench_function("tape/value_batch", |b| {
        b.iter(|| tape.value_batch(black_box(&x), &mut v).unwrap())
    });
    g.bench_function("tape/derivative_batch", |b| {
        b.iter(|| {
            tape.derivative_batch(black_box(&x), &mut v, &mut d1)
                .unwrap()
        })
    });
    g.bench_function("tape/second_derivative_batch", |b| {
        b.iter(|| {
            tape.second_derivative_batch(black_box(&x), &mut v, &mut d1, &mut d2)
                .unwrap()
        })
    });
    let scalar = tape.as_scalar().unwrap();
    // Value and derivative, as the batch gives (with the derivative alone the compiler drops
    // the primal's `ln_1p`, which the derivative does not need).
    g.bench_function("tape/value_and_derivative_per_point", |b| {
        b.iter(|| {
            for ((xk, vk), dk) in black_box(&x).iter().zip(&mut v).zip(&mut d1) {
                (*vk, *dk) = duals::value_and_derivative(|x| scalar.eval(&[x]), *xk);
            }
        })
    });
    g.bench_function("rust/value_and_derivative_per_point", |b| {
        b.iter(|| {
            for ((xk, vk), dk) in black_box(&x).iter().zip(&mut v).zip(&mut d1) {
                (*vk, *dk) = duals::value_and_derivative(bump, *xk);
            }
        })
    });
    g.finish();
}

fn sparse(c: &mut Criterion) {
    let n = 1000;
    let tape = bratu_tape(n).unwrap();
    let pattern = tape.sparsity();
    let coloring = pattern.coloring();
    let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.01).sin()).collect();
    let mut cfg = Config::new();
    let mut values = vec![0.0; pattern.nnz()];
    let mut g = c.benchmark_group("tape_sparse_bratu_1000");
    g.bench_function("tape/sparsity+coloring", |b| {
        b.iter(|| tape.sparsity().coloring())
    });
    g.bench_function("tape/jacobian_sparse_into", |b| {
        b.iter(|| {
            tape.jacobian_sparse_into(black_box(&x), &pattern, &coloring, &mut values, &mut cfg)
                .unwrap()
        })
    });
    let (mut value, mut jac) = (vec![0.0; n], vec![0.0; n * n]);
    g.sample_size(10);
    g.bench_function("tape/jacobian_into (dense)", |b| {
        b.iter(|| {
            tape.jacobian_into(black_box(&x), &mut value, &mut jac, &mut cfg)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, robertson, rosenbrock, batch, sparse);
criterion_main!(benches);
