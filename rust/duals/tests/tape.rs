//! Tapes through the public API: a tape equals the drivers on the same generic Rust function.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use duals::rules::{BinaryRule, UnaryRule};
use duals::tape::{CmpOp, Coloring, Pattern, Tape, TapeBuilder, TapeError, Var, FORMAT_VERSION};
use duals::{
    Chunk, Config, DualNum, HessianMethod, HyperDual64, ScalarFunction, VectorFunction,
    CHUNK_WIDTHS,
};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngAlgorithm, RngSeed};

// ----- allocation counting (per thread, so parallel tests do not disturb each other) -----------

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

// ----- helpers ------------------------------------------------------------------------------

type R<T = ()> = Result<T, TapeError>;

/// Equal, or both NaN.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn assert_same(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!(same(x, y), "{what}[{i}]: {x:e} vs {y:e}");
    }
}

fn assert_close(a: &[f64], b: &[f64], rel: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let tol = rel * x.abs().max(y.abs()).max(1e-300);
        assert!(
            same(x, y) || (x - y).abs() <= tol,
            "{what}[{i}]: {x:e} vs {y:e}"
        );
    }
}

fn inputs(b: &mut TapeBuilder, x: &[f64]) -> R<Vec<Var>> {
    x.iter().map(|&v| b.input(v)).collect()
}

// ----- Robertson ----------------------------------------------------------------------------

const K1: f64 = 0.04;
const K2: f64 = 3e7;
const K3: f64 = 1e4;
const Y_ROBERTSON: [f64; 3] = [1.0, 2e-5, 1e-2];

struct Robertson;

impl VectorFunction<f64> for Robertson {
    fn eval<D: DualNum<f64>>(&self, y: &[D], dy: &mut [D]) {
        dy[0] = y[0] * -K1 + y[1] * y[2] * K3;
        dy[1] = y[0] * K1 - y[1] * y[2] * K3 - y[1] * y[1] * K2;
        dy[2] = y[1] * y[1] * K2;
    }
}

/// Robertson as a tracer would record it: every operation, every constant, no sharing.
fn robertson_tape() -> R<Tape> {
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
    let p = b.mul(y[1], y[2])?;
    let t3 = b.mul(p, k3)?;
    let t4 = b.sub(t2, t3)?;
    let q = b.mul(y[1], y[1])?;
    let t5 = b.mul(q, k2)?;
    let dy1 = b.sub(t4, t5)?;
    let q = b.mul(y[1], y[1])?;
    let dy2 = b.mul(q, k2)?;
    for v in [dy0, dy1, dy2] {
        b.output(v)?;
    }
    Ok(b.finish())
}

fn robertson_points() -> Vec<[f64; 3]> {
    vec![
        Y_ROBERTSON,
        [0.5, 1e-3, 0.49],
        [-1.0, 3.0, 1e-300],
        [0.0, 0.0, 0.0],
    ]
}

#[test]
fn robertson_matches_the_drivers() -> R {
    let tape = robertson_tape()?;
    assert_eq!((tape.n_inputs(), tape.n_outputs()), (3, 3));
    assert!(tape.n_ops() < 13, "duplicates merged: {:?}", tape.ops());
    for y in robertson_points() {
        let mut cfg = Config::new();
        let mut want = vec![0.0; 3];
        Robertson.eval(&y, &mut want);
        assert_same(&tape.value(&y)?, &want, "value");
        for w in CHUNK_WIDTHS {
            let mut cfg = Config::new().with_chunk(Chunk::Width(w));
            let j_tape = tape.jacobian(&y, &mut cfg)?;
            let j_rust = duals::jacobian(&Robertson, &y, &mut cfg)?;
            assert_same(j_tape.as_slice(), j_rust.as_slice(), "jacobian");
            // Through the driver directly, with the tape as a VectorFunction.
            let j_drv = duals::jacobian(&tape, &y, &mut cfg)?;
            assert_same(j_drv.as_slice(), j_rust.as_slice(), "jacobian (driver)");
        }
        let v = [0.3, -1.0, 2.0];
        let (f_tape, jv_tape) = tape.jvp(&y, &v, &mut cfg)?;
        let (f_rust, jv_rust) = duals::jvp(&Robertson, &y, &v, &mut cfg)?;
        assert_same(&f_tape, &f_rust, "jvp value");
        assert_same(&jv_tape, &jv_rust, "jvp");
        // The Jacobian is the stacked JVPs along the unit vectors.
        let j = tape.jacobian(&y, &mut cfg)?;
        for k in 0..3 {
            let mut e = [0.0; 3];
            e[k] = 1.0;
            let (_, col) = tape.jvp(&y, &e, &mut cfg)?;
            for i in 0..3 {
                assert!(same(col[i], j[(i, k)]));
            }
        }
    }
    Ok(())
}

// ----- Rosenbrock ---------------------------------------------------------------------------

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

fn rosenbrock_tape(x: &[f64]) -> R<Tape> {
    let mut b = TapeBuilder::new();
    let x = inputs(&mut b, x)?;
    let (zero, one, hundred) = (b.constant(0.0)?, b.constant(1.0)?, b.constant(100.0)?);
    let mut s = zero;
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
    b.output(s)?;
    Ok(b.finish())
}

fn point(n: usize) -> Vec<f64> {
    (0..n).map(|i| 1.0 + 0.5 * (0.7 * i as f64).sin()).collect()
}

#[test]
fn rosenbrock_matches_the_drivers() -> R {
    for n in [2, 5, 10, 37] {
        let x = point(n);
        let tape = rosenbrock_tape(&x)?;
        let scalar = tape.as_scalar()?;
        let mut cfg = Config::new();
        assert_same(&tape.value(&x)?, &[Rosenbrock.eval(&x)], "value");
        assert_same(
            &tape.gradient(&x, &mut cfg)?,
            &duals::gradient(&Rosenbrock, &x, &mut cfg)?,
            "gradient",
        );
        for w in CHUNK_WIDTHS {
            let mut cfg = Config::new().with_chunk(Chunk::Width(w));
            let j = tape.jacobian(&x, &mut cfg)?;
            let g = duals::gradient(&Rosenbrock, &x, &mut cfg)?;
            assert_same(j.as_slice(), &g, "jacobian of a scalar");
        }
        for method in [
            HessianMethod::Auto,
            HessianMethod::Dual2,
            HessianMethod::HyperDual,
            HessianMethod::Nested,
        ] {
            let mut cfg = Config::new().with_hessian_method(method);
            let h_rust = duals::hessian(&Rosenbrock, &x, &mut cfg);
            let h_tape = tape.hessian(&x, &mut cfg);
            match (h_tape, h_rust) {
                // Auto on a tape is the sparse evaluator: the same sums, maybe in another order.
                (Ok(a), Ok(b)) if method == HessianMethod::Auto => {
                    assert_close(a.as_slice(), b.as_slice(), 1e-13, &format!("Auto n={n}"))
                }
                (Ok(a), Ok(b)) => {
                    assert_same(a.as_slice(), b.as_slice(), &format!("{method:?} n={n}"))
                }
                (Err(TapeError::Driver(a)), Err(b)) => assert_eq!(a, b), // Dual2 past n = 8
                (a, b) => panic!("{method:?}: {a:?} vs {b:?}"),
            }
            let h_drv = duals::hessian(&scalar, &x, &mut cfg);
            assert_eq!(h_drv.is_ok(), method != HessianMethod::Dual2 || n <= 8);
        }
        let v: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).cos()).collect();
        assert_same(
            &tape.hvp(&x, &v, &mut cfg)?,
            &duals::hvp(&Rosenbrock, &x, &v, &mut cfg)?,
            "hvp",
        );
    }
    Ok(())
}

// ----- selects and guards -------------------------------------------------------------------

/// `y₀ = where(x₀ > x₁, x₀ x₁, sin x₀) + max(x₂, 0.5)`,
/// `y₁ = min(x₀, x₂) · (exp x₁ if x₀ > 0 else -x₁)` (a Python-level branch: a guard).
struct Branchy;

impl VectorFunction<f64> for Branchy {
    fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
        let w = if x[0] > x[1] { x[0] * x[1] } else { x[0].sin() };
        let m = x[2].max(D::from_re(0.5));
        let g = if x[0].re() > 0.0 { x[1].exp() } else { -x[1] };
        y[0] = w + m;
        y[1] = x[0].min(x[2]) * g;
    }
    fn output_len(&self, _n: usize) -> usize {
        2
    }
}

fn branchy_tape(x0: &[f64]) -> R<Tape> {
    let mut b = TapeBuilder::new();
    let x = inputs(&mut b, x0)?;
    let p = b.mul(x[0], x[1])?;
    let s = b.unary(UnaryRule::Sin, x[0])?;
    let w = b.select(CmpOp::Gt, x[0], x[1], p, s)?;
    let half = b.constant(0.5)?;
    let m = b.max(x[2], half)?;
    let y0 = b.add(w, m)?;
    let zero = b.constant(0.0)?;
    let g = if b.guard(CmpOp::Gt, x[0], zero)? {
        b.unary_named("exp", 0.0, x[1])?
    } else {
        b.neg(x[1])?
    };
    let mn = b.min(x[0], x[2])?;
    let y1 = b.mul(mn, g)?;
    b.output(y0)?;
    b.output(y1)?;
    Ok(b.finish())
}

#[test]
fn selects_follow_the_point_and_guards_tell_when_to_retrace() -> R {
    let pos = branchy_tape(&[1.0, 0.5, 0.2])?;
    let neg = branchy_tape(&[-1.0, 0.5, 0.2])?;
    assert_eq!((pos.guards().len(), neg.guards().len()), (1, 1));
    let points = [
        [1.0, 0.5, 0.2],
        [0.3, 0.9, 0.7],
        [2.0, -1.0, 3.0],
        [-1.0, 0.5, 0.2],
        [-0.5, -2.0, 0.6],
    ];
    for x in points {
        let tape = if pos.guards_hold(&x) { &pos } else { &neg };
        assert_eq!(x[0] > 0.0, pos.guards_hold(&x));
        assert_eq!(x[0] <= 0.0, neg.guards_hold(&x));
        let mut cfg = Config::new();
        let mut want = vec![0.0; 2];
        Branchy.eval(&x, &mut want);
        let mut got = vec![0.0; 2];
        assert!(tape.value_and_guards_into(&x, &mut got)?);
        assert_same(&got, &want, "value");
        let j_tape = tape.jacobian(&x, &mut cfg)?;
        let j_rust = duals::jacobian(&Branchy, &x, &mut cfg)?;
        assert_same(j_tape.as_slice(), j_rust.as_slice(), "jacobian");
    }
    assert!(!pos.guards_hold(&[1.0, 2.0]), "wrong length: false");
    Ok(())
}

// ----- reals computed from the point -------------------------------------------------------

/// `y₀ = x₀ √where(x₀ > x₁, 4, 0)`, `y₁ = x₁ + where(x₀ < x₁, -1.5, 0)^1.5`,
/// `y₂ = √where(x₀ > x₁, x₀, 0)`: in eager mode the first two `where` are plain reals (both
/// branches are), the third a number with a zero tangent where it takes `0`.
struct Wheres;

impl VectorFunction<f64> for Wheres {
    fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
        let gt = x[0].re() > x[1].re();
        let s: f64 = if gt { 4.0 } else { 0.0 };
        y[0] = x[0] * s.sqrt();
        let p: f64 = if x[0].re() < x[1].re() { -1.5 } else { 0.0 };
        y[1] = x[1] + p.powf(1.5);
        let m = if gt { x[0] } else { D::from_re(0.0) };
        y[2] = m.sqrt();
    }
    fn output_len(&self, _n: usize) -> usize {
        3
    }
}

fn wheres_tape() -> R<Tape> {
    let mut b = TapeBuilder::new();
    let x = inputs(&mut b, &[0.5, 1.0])?;
    let (four, zero, c) = (b.constant(4.0)?, b.constant(0.0)?, b.constant(-1.5)?);
    let s = b.select(CmpOp::Gt, x[0], x[1], four, zero)?;
    let r = b.unary(UnaryRule::Sqrt, s)?;
    let y0 = b.mul(x[0], r)?;
    let p = b.select(CmpOp::Lt, x[0], x[1], c, zero)?;
    let p = b.unary(UnaryRule::Powf(1.5), p)?;
    let y1 = b.add(x[1], p)?;
    let m = b.select(CmpOp::Gt, x[0], x[1], x[0], zero)?;
    let y2 = b.unary(UnaryRule::Sqrt, m)?;
    for y in [y0, y1, y2] {
        b.output(y)?;
    }
    Ok(b.finish())
}

#[test]
fn a_select_of_reals_is_a_real() -> R {
    let tape = wheres_tape()?;
    let back = Tape::from_bytes(&tape.to_bytes())?;
    for x in [[0.5, 1.0], [2.0, 1.0], [1.0, 1.0]] {
        let mut cfg = Config::new();
        let mut want = vec![0.0; 3];
        Wheres.eval(&x, &mut want);
        assert_same(&tape.value(&x)?, &want, "value");
        let j = tape.jacobian(&x, &mut cfg)?;
        assert_same(
            j.as_slice(),
            duals::jacobian(&Wheres, &x, &mut cfg)?.as_slice(),
            "jacobian",
        );
        assert_same(
            back.jacobian(&x, &mut cfg)?.as_slice(),
            j.as_slice(),
            "jacobian after bytes",
        );
        // Not 0 · inf from √0 or 0 · NaN from (-1.5)^0.5 with a zero tangent.
        let s = if x[0] > x[1] { 2.0 } else { 0.0 };
        assert_eq!(&j.as_slice()[..4], &[s, 0.0, 0.0, 1.0], "at {x:?}");
    }
    // Second order, and the batch forms, on x √where(x > 0, 4, 0) + where(x < 0, -1.5, 0)^1.5.
    let mut b = TapeBuilder::new();
    let x = b.input(1.0)?;
    let (four, zero, c) = (b.constant(4.0)?, b.constant(0.0)?, b.constant(-1.5)?);
    let s = b.select(CmpOp::Gt, x, zero, four, zero)?;
    let r = b.unary(UnaryRule::Sqrt, s)?;
    let y = b.mul(x, r)?;
    let p = b.select(CmpOp::Lt, x, zero, c, zero)?;
    let p = b.unary(UnaryRule::Powf(1.5), p)?;
    let y = b.add(y, p)?;
    b.output(y)?;
    let tape = b.finish();
    let xs = [-1.0, -0.0, 0.0, 0.5, 3.0];
    let (mut v, mut d1) = ([0.0; 5], [0.0; 5]);
    tape.derivative_batch(&xs, &mut v, &mut d1)?;
    let (mut w, mut e1, mut e2) = ([0.0; 5], [0.0; 5], [0.0; 5]);
    tape.second_derivative_batch(&xs, &mut w, &mut e1, &mut e2)?;
    for (k, &xk) in xs.iter().enumerate() {
        let (f, f1, f2) = if xk > 0.0 {
            (2.0 * xk, 2.0, 0.0)
        } else if xk < 0.0 {
            (f64::NAN, 0.0, 0.0)
        } else {
            (0.0, 0.0, 0.0)
        };
        assert_same(&[v[k], d1[k]], &[f, f1], "derivative_batch");
        assert_same(
            &[w[k], e1[k], e2[k]],
            &[f, f1, f2],
            "second_derivative_batch",
        );
        for method in [
            HessianMethod::Dual2,
            HessianMethod::HyperDual,
            HessianMethod::Nested,
        ] {
            let mut cfg = Config::new().with_hessian_method(method);
            assert_same(tape.hessian(&[xk], &mut cfg)?.as_slice(), &[f2], "hessian");
        }
    }
    Ok(())
}

// ----- simplification -----------------------------------------------------------------------

#[test]
fn finish_removes_dead_and_duplicate_code() -> R {
    let mut b = TapeBuilder::new();
    let x = b.input(0.7)?;
    let y = b.input(1.3)?;
    let mut keep = Vec::new();
    for _ in 0..5 {
        // the same three instructions, five times
        let s = b.unary(UnaryRule::Sin, x)?;
        let p = b.mul(s, y)?;
        keep.push(b.add(p, x)?);
    }
    for _ in 0..4 {
        b.unary(UnaryRule::Exp, y)?; // dead
    }
    let two = b.constant(2.0)?;
    let three = b.constant(3.0)?;
    let c = b.mul(two, three)?; // folded
    let c = b.unary(UnaryRule::Sqrt, c)?; // folded
    let z = b.mul(keep[4], c)?; // a constant operand
    let z = b.add(z, keep[2])?;
    let z2 = b.add(keep[0], z)?; // commuted duplicate of the next
    let z3 = b.add(z, keep[1])?;
    let out = b.div(z2, z3)?;
    b.output(out)?;
    let tape = b.finish();
    assert_eq!(b.n_ops(), 15 + 4 + 2 + 5);
    // sin, mul, add, mul-by-constant, add, add (z2 = z3), div
    assert_eq!(tape.n_ops(), 7, "{:?}", tape.ops());
    assert!(tape.constants().is_empty());
    assert_eq!(tape.value(&[0.7, 1.3])?, vec![1.0]);
    Ok(())
}

// ----- batches ------------------------------------------------------------------------------

/// An elementwise function of one variable with every kind of instruction.
fn elementwise(b: &mut TapeBuilder, x: Var) -> R<Var> {
    let t = b.unary(UnaryRule::Tanh, x)?;
    let x2 = b.unary(UnaryRule::Powi(2), x)?;
    let a = b.mul(t, x2)?;
    let one = b.constant(1.0)?;
    let d = b.add(one, x2)?;
    let s = b.unary(UnaryRule::Sin, x)?;
    let q = b.div(s, d)?;
    let c3 = b.constant(0.3)?;
    let m = b.max(x, c3)?;
    let nx = b.neg(x)?;
    let e = b.unary(UnaryRule::Exp, nx)?;
    let k = b.constant(2.5)?;
    let e = b.mul(e, k)?;
    let h = b.binary(BinaryRule::Hypot, x, t)?;
    let r = b.div(one, d)?;
    let w = b.select(CmpOp::Lt, x, c3, h, r)?;
    let mut acc = b.add(a, q)?;
    for v in [m, w] {
        acc = b.add(acc, v)?;
    }
    b.sub(acc, e)
}

fn elementwise_tape() -> R<Tape> {
    let mut b = TapeBuilder::new();
    let x = b.input(0.1)?;
    let y = elementwise(&mut b, x)?;
    b.output(y)?;
    Ok(b.finish())
}

fn grid(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| -3.0 + 6.0 * i as f64 / (n - 1) as f64)
        .collect()
}

/// Every instruction the fused elementwise path of `derivative_batch` takes: `+ - * /` on two
/// values and with a constant on either side, negation, and the unary rules with a SIMD body.
fn fusable_tape() -> R<Tape> {
    let mut b = TapeBuilder::new();
    let x = b.input(0.1)?;
    let (two, half) = (b.constant(2.0)?, b.constant(0.5)?);
    let x2 = b.unary(UnaryRule::Powi(2), x)?;
    let s = b.unary(UnaryRule::Sin, x)?;
    let nx2 = b.neg(x2)?;
    let e = b.unary(UnaryRule::Exp, nx2)?;
    let mut y = b.mul(s, e)?;
    let l = b.unary(UnaryRule::Ln1p, x2)?;
    y = b.add(y, l)?;
    let c = b.unary(UnaryRule::Cos, x)?;
    let q = b.div(c, two)?; // a / constant
    y = b.sub(y, q)?;
    let d = b.add(x2, two)?; // a + constant
    let r = b.div(half, d)?; // constant / a
    y = b.add(r, y)?;
    let r = b.unary(UnaryRule::Recip, d)?;
    let t = b.unary(UnaryRule::Sqrt, d)?;
    let u = b.div(r, t)?;
    let v = b.sub(two, u)?; // constant - a
    let w = b.sub(v, half)?; // a - constant
    let w = b.mul(two, w)?; // constant * a
    y = b.mul(y, w)?;
    let m = b.unary(UnaryRule::ExpM1, x)?;
    let g = b.unary(UnaryRule::Ln, d)?;
    let g = b.mul(m, g)?;
    y = b.add(y, g)?;
    b.output(y)?;
    Ok(b.finish())
}

#[test]
fn derivative_batch_of_a_fusable_tape_equals_one_point_at_a_time() -> R {
    let tape = fusable_tape()?;
    let scalar = tape.as_scalar()?;
    let mut cfg = Config::new();
    // Lengths around every vector width and a group, and a long grid.
    for n in [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 1001] {
        let mut x = grid(n.max(2));
        x.truncate(n);
        x.extend(
            [0.0, -0.0, 1e-300, f64::NAN, 40.0, -1e6]
                .iter()
                .take(n.min(6)),
        );
        let b = x.len();
        let (mut v, mut d) = (vec![0.0; b], vec![0.0; b]);
        tape.derivative_batch(&x, &mut v, &mut d)?;
        // Without the values: the same derivatives, bit for bit.
        let mut only = vec![0.0; b];
        tape.derivative_only_batch(&x, &mut only)?;
        for (k, &xk) in x.iter().enumerate() {
            assert!(
                only[k].to_bits() == d[k].to_bits() || (only[k].is_nan() && d[k].is_nan()),
                "derivative_only_batch at {xk}: {} vs {}",
                only[k],
                d[k]
            );
            let (f, g) = duals::value_and_gradient(&scalar, &[xk], &mut cfg)?;
            // Vectorized `exp`, `sin`, ... (within an ulp) and fused multiply-adds: the last
            // bits differ, and the sums here cancel a few digits.
            assert_close(&[v[k], d[k]], &[f, g[0]], 1e-12, "derivative_batch");
        }
    }
    Ok(())
}

#[test]
fn batch_forms_equal_one_point_at_a_time() -> R {
    let tape = elementwise_tape()?;
    let x = grid(2500); // more than two blocks
    let b = x.len();
    let mut cfg = Config::new();

    let mut value = vec![0.0; b];
    tape.value_batch(&x, &mut value)?;
    let mut d_value = vec![0.0; b];
    let mut d1 = vec![0.0; b];
    tape.derivative_batch(&x, &mut d_value, &mut d1)?;
    let (mut s_value, mut s1, mut s2) = (vec![0.0; b], vec![0.0; b], vec![0.0; b]);
    tape.second_derivative_batch(&x, &mut s_value, &mut s1, &mut s2)?;

    let scalar = tape.as_scalar()?;
    for (k, &xk) in x.iter().enumerate() {
        let v = tape.value(&[xk])?[0];
        assert!(same(value[k], v), "value_batch[{k}]");
        let (g_val, g) = duals::value_and_gradient(&scalar, &[xk], &mut cfg)?;
        // kernels fuse multiply-adds: the last bit may differ
        assert_close(
            &[d_value[k], d1[k]],
            &[g_val, g[0]],
            1e-15,
            "derivative_batch",
        );
        let (f, f1, f2) = duals::value_and_second_derivative(
            |x: HyperDual64| ScalarFunction::eval(&scalar, &[x]),
            xk,
        );
        assert_same(
            &[s_value[k], s1[k], s2[k]],
            &[f, f1, f2],
            "second_derivative_batch",
        );
    }

    // Robertson at many points: value and Jacobian batches.
    let rob = robertson_tape()?;
    let pts: Vec<f64> = (0..1500)
        .flat_map(|i| {
            let t = i as f64 / 1500.0;
            [1.0 - t, 1e-5 * t, t * t]
        })
        .collect();
    let b = pts.len() / 3;
    let mut val = vec![0.0; b * 3];
    rob.value_batch(&pts, &mut val)?;
    let mut jval = vec![0.0; b * 3];
    let mut jac = vec![0.0; b * 9];
    rob.jacobian_batch(&pts, &mut jval, &mut jac, &mut cfg)?;
    for (k, y) in pts.chunks(3).enumerate() {
        assert_same(&val[3 * k..3 * k + 3], &rob.value(y)?, "value_batch");
        assert_same(
            &jval[3 * k..3 * k + 3],
            &rob.value(y)?,
            "jacobian_batch value",
        );
        let j = rob.jacobian(y, &mut cfg)?;
        assert_same(&jac[9 * k..9 * k + 9], j.as_slice(), "jacobian_batch");
    }

    // Guards for a batch.
    let pos = branchy_tape(&[1.0, 0.5, 0.2])?;
    let xs = [1.0, 0.5, 0.2, -1.0, 0.5, 0.2, 0.0, 1.0, 1.0, 3.0, 0.0, 0.0];
    let mut holds = [false; 4];
    pos.guards_batch(&xs, &mut holds)?;
    assert_eq!(holds, [true, false, false, true]);
    Ok(())
}

#[test]
fn batch_errors() -> R {
    let rob = robertson_tape()?;
    let mut out = vec![0.0; 6];
    assert_eq!(
        rob.value_batch(&[1.0; 7], &mut out),
        Err(TapeError::BatchShape {
            n_inputs: 3,
            found: 7
        })
    );
    assert!(matches!(
        rob.value_batch(&[1.0; 9], &mut out),
        Err(TapeError::Length {
            argument: "out",
            ..
        })
    ));
    let err = rob
        .derivative_batch(&[1.0; 3], &mut [0.0; 3], &mut [0.0; 3])
        .unwrap_err();
    assert!(matches!(err, TapeError::NotElementwise { .. }));
    assert!(err.to_string().contains("1 input, 1 output"), "{err}");
    Ok(())
}

// ----- sparsity -----------------------------------------------------------------------------

/// A discretized Bratu problem: `fᵢ = xᵢ₋₁ - 2xᵢ + xᵢ₊₁ + h² eˣⁱ` (tridiagonal Jacobian).
fn bratu_tape(n: usize) -> R<Tape> {
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

#[test]
fn tridiagonal_jacobian_takes_three_colors() -> R {
    let n = 1000;
    let tape = bratu_tape(n)?;
    let pattern = tape.sparsity();
    assert_eq!((pattern.nrows(), pattern.ncols()), (n, n));
    assert_eq!(pattern.nnz(), 3 * n - 2);
    let coloring = pattern.coloring();
    assert_eq!(coloring.n_colors(), 3);
    let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.01).sin()).collect();
    for w in [1, 2, 4, 16] {
        let mut cfg = Config::new().with_chunk(Chunk::Width(w));
        let sparse = tape.jacobian_sparse(&x, &pattern, &coloring, &mut cfg)?;
        let dense = tape.jacobian(&x, &mut Config::new())?;
        assert_same(sparse.to_dense().as_slice(), dense.as_slice(), "sparse");
        let (rows, cols, values) = sparse.to_coo();
        assert_eq!(
            (rows.len(), cols.len(), values.len()),
            (3 * n - 2, 3 * n - 2, 3 * n - 2)
        );
    }
    Ok(())
}

/// `f₀ = x₀² (+ Σ xᵢ if dense_row)`, `fᵢ = xᵢ x₀ + sin xᵢ`: an arrow.
fn arrow_tape(n: usize, dense_row: bool) -> R<Tape> {
    let mut b = TapeBuilder::new();
    let x = inputs(&mut b, &point(n))?;
    let mut f0 = b.mul(x[0], x[0])?;
    if dense_row {
        for &xi in &x[1..] {
            f0 = b.add(f0, xi)?;
        }
    }
    b.output(f0)?;
    for &xi in &x[1..] {
        let p = b.mul(xi, x[0])?;
        let s = b.unary(UnaryRule::Sin, xi)?;
        let f = b.add(p, s)?;
        b.output(f)?;
    }
    Ok(b.finish())
}

#[test]
fn arrow_patterns() -> R {
    let n = 60;
    let x = point(n);
    for (dense_row, colors) in [(false, 2), (true, n)] {
        let tape = arrow_tape(n, dense_row)?;
        let pattern = tape.sparsity();
        let coloring = pattern.coloring();
        assert_eq!(coloring.n_colors(), colors, "dense row: {dense_row}");
        let mut cfg = Config::new();
        let sparse = tape.jacobian_sparse(&x, &pattern, &coloring, &mut cfg)?;
        let dense = tape.jacobian(&x, &mut cfg)?;
        assert_same(sparse.to_dense().as_slice(), dense.as_slice(), "arrow");
    }
    Ok(())
}

#[test]
fn sparsity_within_a_limit_stops_at_a_wider_value() -> R {
    let n = 60;
    // The arrow with a dense row: f0 depends on all 60 inputs, the other rows on two.
    let tape = arrow_tape(n, true)?;
    let full = tape.sparsity();
    let within = tape
        .sparsity_within(n)
        .expect("no value depends on more than n inputs");
    assert_eq!(
        within.entries().collect::<Vec<_>>(),
        full.entries().collect::<Vec<_>>()
    );
    assert!(tape.sparsity_within(n / 4).is_none());
    // Without the dense row every value depends on at most two inputs.
    let sparse = arrow_tape(n, false)?;
    let within = sparse
        .sparsity_within(2)
        .expect("at most two inputs per value");
    assert_eq!(
        within.entries().collect::<Vec<_>>(),
        sparse.sparsity().entries().collect::<Vec<_>>()
    );
    assert!(sparse.sparsity_within(1).is_none());
    Ok(())
}

#[test]
fn sparsity_errors_and_zero_derivatives() -> R {
    let mut b = TapeBuilder::new();
    let x = inputs(&mut b, &[1.5, 2.5])?;
    let f = b.unary(UnaryRule::Floor, x[0])?; // no dependence
    let g = b.add(f, x[1])?;
    b.output(g)?;
    let tape = b.finish();
    let p = tape.sparsity();
    assert_eq!(p.entries().collect::<Vec<_>>(), vec![(0, 1)]);

    assert!(Pattern::from_entries(2, 2, &[(2, 0)]).is_err());
    let full = Pattern::from_entries(1, 2, &[(0, 0), (0, 1)])?;
    let bad = Coloring::from_colors(vec![0, 0]);
    let mut cfg = Config::new();
    let err = tape
        .jacobian_sparse(&[1.5, 2.5], &full, &bad, &mut cfg)
        .unwrap_err();
    assert!(err.to_string().contains("row 0"), "{err}");
    let wrong = Pattern::from_entries(2, 2, &[])?;
    assert!(tape
        .jacobian_sparse(&[1.5, 2.5], &wrong, &wrong.coloring(), &mut cfg)
        .is_err());
    Ok(())
}

// ----- threads ------------------------------------------------------------------------------

#[test]
fn eight_threads_agree() -> R {
    let rob = robertson_tape()?;
    let ros = rosenbrock_tape(&point(10))?;
    let y = [0.9, 1e-4, 0.1];
    let x = point(10);
    let j = rob.jacobian(&y, &mut Config::new())?;
    let h = ros.hessian(&x, &mut Config::new())?;
    std::thread::scope(|s| {
        for t in 0..8 {
            let (rob, ros, j, h, x) = (&rob, &ros, &j, &h, &x);
            s.spawn(move || {
                let mut cfg = Config::new().with_chunk(Chunk::Width(CHUNK_WIDTHS[t % 5]));
                for _ in 0..200 {
                    let jt = rob.jacobian(&y, &mut cfg).unwrap();
                    assert_same(jt.as_slice(), j.as_slice(), "thread jacobian");
                    let ht = ros.hessian(x, &mut cfg).unwrap();
                    assert_same(ht.as_slice(), h.as_slice(), "thread hessian");
                }
            });
        }
    });
    Ok(())
}

// ----- allocation ---------------------------------------------------------------------------

#[test]
fn compiled_calls_do_not_allocate_after_the_first() -> R {
    let tape = robertson_tape()?;
    let y = Y_ROBERTSON;
    let mut cfg = Config::new();
    let (mut value, mut jac, mut jv) = ([0.0; 3], [0.0; 9], [0.0; 3]);
    let mut calls = |cfg: &mut Config<f64>| -> R {
        tape.value_into(&y, &mut value)?;
        tape.jacobian_into(&y, &mut value, &mut jac, cfg)?;
        duals::jvp_into(&tape, &y, &[1.0, 0.0, 0.0], &mut value, &mut jv, cfg)?;
        Ok(())
    };
    calls(&mut cfg)?;
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![0u8; 16]))), 1);
    let mut result = Ok(());
    let n = allocations(|| result = calls(&mut cfg));
    result?;
    assert_eq!(n, 0);
    Ok(())
}

// ----- bytes --------------------------------------------------------------------------------

/// A tape with every rule of the table, every comparison and every constant form.
fn kitchen_sink_tape() -> R<Tape> {
    let mut b = TapeBuilder::new();
    let x = inputs(&mut b, &[0.4, 0.7])?;
    let mut acc = b.constant(0.0)?;
    for name in UnaryRule::NAMES {
        let v = b.unary_named(name, 2.5, x[0])?;
        acc = b.add(acc, v)?;
    }
    let p = b.unary_named("powi", -3.0, x[1])?;
    acc = b.add(acc, p)?;
    for name in BinaryRule::NAMES {
        let v = b.binary_named(name, x[0], x[1])?;
        acc = b.add(acc, v)?;
    }
    let c = b.constant(1.5)?;
    for op in CmpOp::ALL {
        let v = b.select(op, x[0], x[1], x[0], acc)?;
        acc = b.mul(acc, v)?;
    }
    let forms = [
        b.sub(acc, c)?,
        b.sub(c, acc)?,
        b.div(acc, c)?,
        b.div(c, acc)?,
        b.mul(c, acc)?,
        b.neg(acc)?,
        b.min(acc, c)?,
        b.max(c, acc)?,
    ];
    for f in forms {
        b.output(f)?;
    }
    let g = b.unary(UnaryRule::Cos, x[1])?;
    b.guard(CmpOp::Lt, g, c)?; // a guard-only instruction
    b.guard(CmpOp::Ne, x[0], x[1])?;
    Ok(b.finish())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Replaces the checksum, as someone crafting bytes would.
fn reseal(bytes: &mut Vec<u8>) {
    let body = bytes.len() - 8;
    bytes.truncate(body);
    let sum = fnv1a(bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
}

#[test]
fn bytes_round_trip() -> R {
    let tapes = [
        robertson_tape()?,
        rosenbrock_tape(&point(10))?,
        branchy_tape(&[1.0, 0.5, 0.2])?,
        kitchen_sink_tape()?,
        bratu_tape(50)?,
    ];
    for tape in &tapes {
        let bytes = tape.to_bytes();
        let back = Tape::from_bytes(&bytes)?;
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.ops(), tape.ops());
        assert_eq!(back.guards(), tape.guards());
        let n = tape.n_inputs();
        let x: Vec<f64> = (0..n).map(|i| 0.3 + 0.1 * i as f64).collect();
        let mut cfg = Config::new();
        assert_same(&back.value(&x)?, &tape.value(&x)?, "value");
        assert_same(
            back.jacobian(&x, &mut cfg)?.as_slice(),
            tape.jacobian(&x, &mut cfg)?.as_slice(),
            "jacobian",
        );
        assert_eq!(back.guards_hold(&x), tape.guards_hold(&x));
    }
    let sink = kitchen_sink_tape()?;
    assert!(
        sink.n_main_ops() < sink.n_ops(),
        "the guard's cosine is kept"
    );
    Ok(())
}

#[test]
fn corrupt_bytes_are_errors() -> R {
    let bytes = branchy_tape(&[1.0, 0.5, 0.2])?.to_bytes();
    for len in 0..bytes.len() {
        assert!(
            Tape::from_bytes(&bytes[..len]).is_err(),
            "truncated to {len}"
        );
    }
    for i in 0..bytes.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            assert!(Tape::from_bytes(&b).is_err(), "byte {i} ^ {flip:#x}");
        }
    }
    let mut b = bytes.clone();
    b[8..10].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let err = Tape::from_bytes(&b).unwrap_err();
    assert!(matches!(err, TapeError::UnsupportedVersion { .. }), "{err}");

    // Well-sealed but wrong inside: an operand from the future, an unknown rule.
    let mut b = TapeBuilder::new();
    let x = b.input(1.0)?;
    let s = b.unary(UnaryRule::Sin, x)?;
    let y = b.mul(s, x)?;
    b.output(y)?;
    let good = b.finish().to_bytes();
    let body = good.len() - 8;
    // The last operand of the last instruction (before the one output) reads value 3 (itself).
    let mut bad = good.clone();
    let at = body - 4 - 4;
    bad[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
    reseal(&mut bad);
    let err = Tape::from_bytes(&bad).unwrap_err();
    assert!(err.to_string().contains("before it is defined"), "{err}");
    let mut bad = good.clone();
    let at = bad.windows(3).position(|w| w == b"sin").unwrap();
    bad[at..at + 3].copy_from_slice(b"sun");
    reseal(&mut bad);
    let err = Tape::from_bytes(&bad).unwrap_err();
    assert!(err.to_string().contains("unknown unary rule"), "{err}");
    Ok(())
}

// ----- errors -------------------------------------------------------------------------------

#[test]
fn error_messages_say_what_to_fix() -> R {
    let rob = robertson_tape()?;
    let mut cfg = Config::new();
    let err = rob.jacobian(&[1.0, 2.0], &mut cfg).unwrap_err();
    assert_eq!(
        err,
        TapeError::InputLength {
            expected: 3,
            found: 2
        }
    );
    assert!(err
        .to_string()
        .starts_with("compiled function expects 3 inputs, got 2"));
    let err = rob.hessian(&Y_ROBERTSON, &mut cfg).unwrap_err();
    assert!(err.to_string().contains("use jacobian"), "{err}");
    assert!(rob.as_scalar().is_err());
    let err = rob.jvp(&Y_ROBERTSON, &[1.0], &mut cfg).unwrap_err();
    assert!(matches!(err, TapeError::Driver(_)), "{err}");
    // Through the driver, the wrong length cannot be an error: NaN.
    let mut y = [0.0; 3];
    rob.eval(&[1.0, 2.0], &mut y);
    assert!(y.iter().all(|v| v.is_nan()));
    let mut b = TapeBuilder::new();
    let err = b.mul(Var(0), Var(1)).unwrap_err();
    assert!(err
        .to_string()
        .contains("pass a handle returned by this builder"));
    Ok(())
}

// ----- random programs: the tape equals the operations applied directly ---------------------

/// An operation of a random program; operands are indices into the values so far.
#[derive(Clone, Debug)]
enum Step {
    Const(f64),
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    Neg(usize),
    Unary(UnaryRule, usize),
    Binary(BinaryRule, usize, usize),
    Min(usize, usize),
    Max(usize, usize),
    Select(CmpOp, [usize; 4]),
}

const RULES: [UnaryRule; 12] = [
    UnaryRule::Sin,
    UnaryRule::Cos,
    UnaryRule::Exp,
    UnaryRule::Tanh,
    UnaryRule::Atan,
    UnaryRule::Sqrt,
    UnaryRule::Ln,
    UnaryRule::Powi(2),
    UnaryRule::Powi(3),
    UnaryRule::Powf(1.5),
    UnaryRule::Abs,
    UnaryRule::Floor,
];

fn step_strategy() -> impl Strategy<Value = (u8, [usize; 4], f64, usize)> {
    (0u8..11, any::<[usize; 4]>(), -2.0f64..2.0, 0usize..64)
}

fn make_program(n: usize, raw: &[(u8, [usize; 4], f64, usize)]) -> Vec<Step> {
    let mut steps = Vec::new();
    for (k, &(kind, o, c, r)) in raw.iter().enumerate() {
        let len = n + k;
        let [a, b, p, q] = o.map(|i| i % len);
        steps.push(match kind {
            0 => Step::Const((c * 4.0).round() / 4.0),
            1 => Step::Add(a, b),
            2 => Step::Sub(a, b),
            3 => Step::Mul(a, b),
            4 => Step::Div(a, b),
            5 => Step::Neg(a),
            6 => Step::Unary(RULES[r % RULES.len()], a),
            7 => Step::Binary(BINARY[r % 3], a, b),
            8 => Step::Min(a, b),
            9 => Step::Max(a, b),
            _ => Step::Select(CmpOp::ALL[r % 6], [a, b, p, q]),
        });
    }
    steps
}

const BINARY: [BinaryRule; 3] = [BinaryRule::Atan2, BinaryRule::Hypot, BinaryRule::Pow];

impl Step {
    /// The values the step reads.
    fn operands(&self) -> Vec<usize> {
        match *self {
            Step::Const(_) => vec![],
            Step::Neg(a) | Step::Unary(_, a) => vec![a],
            Step::Add(a, b)
            | Step::Sub(a, b)
            | Step::Mul(a, b)
            | Step::Div(a, b)
            | Step::Binary(_, a, b)
            | Step::Min(a, b)
            | Step::Max(a, b) => vec![a, b],
            Step::Select(_, o) => o.to_vec(),
        }
    }
}

/// A value of the direct evaluation: a real without derivative (a constant, or computed from
/// reals only), as in a tracer, or a number.
#[derive(Clone, Copy)]
enum Val<D> {
    C(f64),
    V(D),
}

/// The program applied directly to numbers `D`, the way eager mode would.
struct Direct<'a> {
    n: usize,
    steps: &'a [Step],
    m: usize,
}

impl Direct<'_> {
    fn values<D: DualNum<f64>>(&self, x: &[D]) -> Vec<Val<D>> {
        let mut v: Vec<Val<D>> = x.iter().map(|&d| Val::V(d)).collect();
        let as_d = |v: Val<D>| match v {
            Val::C(c) => D::from_re(c),
            Val::V(d) => d,
        };
        let re = |v: Val<D>| match v {
            Val::C(c) => c,
            Val::V(d) => d.re(),
        };
        // Whether each value is known when the program is recorded (the same at every point):
        // what the tape folds into a constant.
        let mut known = vec![false; v.len()];
        for s in self.steps {
            let ops = s.operands();
            known.push(match *s {
                Step::Const(_) => true,
                Step::Select(op, [a, b, t, f]) if known[a] && known[b] => {
                    known[if op.eval(re(v[a]), re(v[b])) { t } else { f }]
                }
                // Equal branches: the tape merges equal constants (same bits).
                Step::Select(_, [_, _, t, f]) => {
                    known[t] && known[f] && re(v[t]).to_bits() == re(v[f]).to_bits()
                }
                _ => ops.iter().all(|&i| known[i]),
            });
            let r = match *s {
                Step::Const(c) => Val::C(c),
                Step::Add(a, b) => match (v[a], v[b]) {
                    (Val::C(x), Val::C(y)) => Val::C(x + y),
                    (Val::V(x), Val::C(c)) | (Val::C(c), Val::V(x)) => Val::V(x + c),
                    (Val::V(x), Val::V(y)) => Val::V(x + y),
                },
                Step::Sub(a, b) => match (v[a], v[b]) {
                    (Val::C(x), Val::C(y)) => Val::C(x - y),
                    (Val::V(x), Val::C(c)) => Val::V(x - c),
                    (Val::C(c), Val::V(y)) => Val::V(-y + c),
                    (Val::V(x), Val::V(y)) => Val::V(x - y),
                },
                Step::Mul(a, b) => match (v[a], v[b]) {
                    (Val::C(x), Val::C(y)) => Val::C(x * y),
                    (Val::V(x), Val::C(c)) | (Val::C(c), Val::V(x)) => Val::V(x * c),
                    (Val::V(x), Val::V(y)) => Val::V(x * y),
                },
                Step::Div(a, b) => match (v[a], v[b]) {
                    (Val::C(x), Val::C(y)) => Val::C(x / y),
                    (Val::V(x), Val::C(c)) => Val::V(x / c),
                    (Val::C(c), Val::V(y)) => Val::V(D::from_re(c) / y),
                    (Val::V(x), Val::V(y)) => Val::V(x / y),
                },
                Step::Neg(a) => match v[a] {
                    Val::C(x) => Val::C(-x),
                    Val::V(x) => Val::V(-x),
                },
                Step::Unary(rule, a) => match v[a] {
                    Val::C(x) => Val::C(apply_unary(rule, x)),
                    Val::V(x) => Val::V(apply_unary(rule, x)),
                },
                Step::Binary(rule, a, b) => match (v[a], v[b]) {
                    (Val::C(x), Val::C(y)) => Val::C(apply_binary(rule, x, y)),
                    (x, y) => Val::V(apply_binary(rule, as_d(x), as_d(y))),
                },
                Step::Min(a, b) => match (v[a], v[b]) {
                    (Val::C(x), Val::C(y)) => Val::C(DualNum::min(x, y)),
                    (x, y) => Val::V(as_d(x).min(as_d(y))),
                },
                Step::Max(a, b) => match (v[a], v[b]) {
                    (Val::C(x), Val::C(y)) => Val::C(DualNum::max(x, y)),
                    (x, y) => Val::V(as_d(x).max(as_d(y))),
                },
                // Whether a value is a real is decided once, when the program is recorded, not
                // at each point: a condition known then takes its branch as it is (no select is
                // recorded); otherwise the select is a real if both branches are, whatever the
                // condition reads (eager `where` of two plain arrays), and if only one is, a
                // number, with zero tangents where it takes the real branch.
                Step::Select(op, [a, b, t, f]) => {
                    let pick = if op.eval(re(v[a]), re(v[b])) {
                        v[t]
                    } else {
                        v[f]
                    };
                    match (v[t], v[f]) {
                        _ if known[a] && known[b] => pick,
                        (Val::C(_), Val::C(_)) => pick,
                        _ => Val::V(as_d(pick)),
                    }
                }
            };
            v.push(r);
        }
        v
    }
}

fn apply_unary<D: DualNum<f64>>(rule: UnaryRule, x: D) -> D {
    match rule {
        UnaryRule::Sin => x.sin(),
        UnaryRule::Cos => x.cos(),
        UnaryRule::Exp => x.exp(),
        UnaryRule::Tanh => x.tanh(),
        UnaryRule::Atan => x.atan(),
        UnaryRule::Sqrt => x.sqrt(),
        UnaryRule::Ln => x.ln(),
        UnaryRule::Powi(n) => x.powi(n),
        UnaryRule::Powf(p) => x.powf(p),
        UnaryRule::Abs => x.abs(),
        UnaryRule::Floor => x.floor(),
        r => panic!("not in RULES: {r:?}"),
    }
}

fn apply_binary<D: DualNum<f64>>(rule: BinaryRule, x: D, y: D) -> D {
    match rule {
        BinaryRule::Atan2 => x.atan2(y),
        BinaryRule::Hypot => x.hypot(y),
        BinaryRule::Pow => x.powd(y),
        r => panic!("not in BINARY: {r:?}"),
    }
}

impl VectorFunction<f64> for Direct<'_> {
    fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
        let v = self.values(x);
        for (yi, vi) in y.iter_mut().zip(&v[v.len() - self.m..]) {
            *yi = match *vi {
                Val::C(c) => D::from_re(c),
                Val::V(d) => d,
            };
        }
    }
    fn output_len(&self, _n: usize) -> usize {
        self.m
    }
}

impl ScalarFunction<f64> for Direct<'_> {
    fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
        let mut y = [D::zero()];
        VectorFunction::eval(self, x, &mut y);
        y[0]
    }
}

/// Records the program, as a tracer would, and the same outputs.
fn record(n: usize, x: &[f64], steps: &[Step], m: usize) -> R<Tape> {
    let mut b = TapeBuilder::new();
    let mut v = inputs(&mut b, &x[..n])?;
    for s in steps {
        let r = match *s {
            Step::Const(c) => b.constant(c)?,
            Step::Add(a, c) => b.add(v[a], v[c])?,
            Step::Sub(a, c) => b.sub(v[a], v[c])?,
            Step::Mul(a, c) => b.mul(v[a], v[c])?,
            Step::Div(a, c) => b.div(v[a], v[c])?,
            Step::Neg(a) => b.neg(v[a])?,
            Step::Unary(rule, a) => b.unary(rule, v[a])?,
            Step::Binary(rule, a, c) => b.binary(rule, v[a], v[c])?,
            Step::Min(a, c) => b.min(v[a], v[c])?,
            Step::Max(a, c) => b.max(v[a], v[c])?,
            Step::Select(op, [a, c, t, f]) => b.select(op, v[a], v[c], v[t], v[f])?,
        };
        v.push(r);
    }
    for &o in &v[v.len() - m..] {
        b.output(o)?;
    }
    Ok(b.finish())
}

/// The seed of the property tests unless `PROPTEST_RNG_SEED` says otherwise: the same cases on
/// every run (CI included). Other seeds: `PROPTEST_RNG_SEED=7 PROPTEST_CASES=1000 cargo test`.
/// Failures found are saved in `tests/tape.proptest-regressions` and replayed first (commit it).
const PROPTEST_SEED: u64 = 0x7a9e_5eed;

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(PROPTEST_SEED),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        // The environment (`PROPTEST_CASES`, `PROPTEST_RNG_SEED`, ...) overrides these: the
        // `proptest!` macro applies it to this configuration.
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn random_programs_equal_direct_evaluation(
        n in 1usize..4,
        raw in prop::collection::vec(step_strategy(), 1..40),
        x in prop::array::uniform4(-2.0f64..2.0),
        m in 1usize..4,
    ) {
        let steps = make_program(n, &raw);
        let m = m.min(n + steps.len());
        let x = &x[..n];
        let direct = Direct { n, steps: &steps, m };
        prop_assert_eq!(direct.n, n);
        let tape = record(n, x, &steps, m).unwrap();
        let mut cfg = Config::new();
        let mut want = vec![0.0; m];
        VectorFunction::eval(&direct, x, &mut want);
        assert_same(&tape.value(x).unwrap(), &want, "value");
        for w in [1, 4] {
            let mut cfg = Config::new().with_chunk(Chunk::Width(w));
            assert_same(
                tape.jacobian(x, &mut cfg).unwrap().as_slice(),
                duals::jacobian(&direct, x, &mut cfg).unwrap().as_slice(),
                "jacobian",
            );
        }
        let v: Vec<f64> = (0..n).map(|i| 1.0 - 0.5 * i as f64).collect();
        assert_same(
            &tape.jvp(x, &v, &mut cfg).unwrap().1,
            &duals::jvp(&direct, x, &v, &mut cfg).unwrap().1,
            "jvp",
        );
        // Second order on the first output alone.
        let first = Direct { n, steps: &steps, m: 1 };
        let tape1 = record(n, x, &steps, 1).unwrap();
        for method in [HessianMethod::Dual2, HessianMethod::HyperDual, HessianMethod::Nested] {
            let mut cfg = Config::new().with_hessian_method(method);
            assert_same(
                tape1.hessian(x, &mut cfg).unwrap().as_slice(),
                duals::hessian(&first, x, &mut cfg).unwrap().as_slice(),
                "hessian",
            );
        }
        assert_same(
            &tape1.hvp(x, &v, &mut cfg).unwrap(),
            &duals::hvp(&first, x, &v, &mut cfg).unwrap(),
            "hvp",
        );
        // The bytes give the same tape.
        let back = Tape::from_bytes(&tape.to_bytes()).unwrap();
        assert_same(&back.value(x).unwrap(), &want, "value after bytes");
        // The batch of one point is the point.
        let mut out = vec![0.0; m];
        tape.value_batch(x, &mut out).unwrap();
        assert_same(&out, &want, "value_batch");
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Tape::from_bytes(&bytes);
        let mut sealed = b"DUALTAPE\x01\x00".to_vec();
        sealed.extend_from_slice(&bytes);
        sealed.extend_from_slice(&[0; 8]);
        reseal(&mut sealed);
        let _ = Tape::from_bytes(&sealed);
    }
}
