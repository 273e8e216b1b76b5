//! The engine next to num-dual: the same functions, the same points, one process.
//!
//! Groups (each holds the duals and the num-dual variants side by side):
//!
//! - `robertson_jacobian`: Jacobian of the Robertson right-hand side (3 states).
//! - `gradient_n{10,100,1000}`: gradient of the chained ("extended") Rosenbrock function, for
//!   every chunk width in [`duals::CHUNK_WIDTHS`] and `Auto`.
//! - `hessian_n{8,10}`: Hessian of Rosenbrock by every [`duals::HessianMethod`] that applies
//!   (`Dual2` takes `n ≤ 8` only, so `n = 8` is measured too).
//! - `rosenbrock_value`: the plain `f64` value, the denominator of `t(∇f) / (n · t(f))`.
//! - `kernels_{sin,mul}_k{1,8}_n1e6`: `duals::kernels` on a million elements (every SIMD level
//!   this CPU has, and the runtime choice) against plain loops over arrays of duals and of
//!   num-dual numbers.
//! - `kernels_rule_{sin,exp,ln_1p}_k1_n1e6`: [`duals::kernels::unary_rule`] (the path the Python
//!   eager mode takes) on a million elements with one tangent row, at every SIMD level, against
//!   the same rule evaluated per element through the closure kernel (`closure_*`, scalar libm).
//!
//! Run with `cargo bench -p duals --bench engine -- --warm-up-time 1 --measurement-time 3`,
//! then `python3 benches/summarize_criterion.py` for the table and the ratios.
//!
//! num-dual is used as its documentation shows: `gradient`/`jacobian`/`hessian` on nalgebra
//! vectors (`SVector` where the size is small enough to be static, `DVector` otherwise), and the
//! `Gradients` trait for `Dyn` (one scalar-dual pass per input). nalgebra is not a dependency of
//! this crate, so its vectors are built with `.into()` from arrays and `Vec`s and their types are
//! left to inference.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use duals::kernels::{self, Level, Operand};
use duals::{Chunk, Config, DualNum, HessianMethod, ScalarFunction, VectorFunction, CHUNK_WIDTHS};
use num_dual::Gradients;

// ----- the functions, written once per library with the same operations ------------------------

/// Chained Rosenbrock: `Σᵢ (xᵢ - 1)² + 100 (xᵢ₊₁ - xᵢ²)²`, `i = 0 … n-2`.
struct Rosenbrock;

impl ScalarFunction<f64> for Rosenbrock {
    #[inline(always)] // lets the SIMD dispatch of the drivers compile it for AVX2/AVX-512
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

/// The same function for num-dual's `DualNum` (not `Copy` for dynamic sizes, hence the clones,
/// which are free for the static types).
fn rosenbrock_nd<D: num_dual::DualNum<Primitive = f64>>(x: &[D]) -> D {
    let mut s = D::zero();
    for i in 0..x.len().saturating_sub(1) {
        let a = x[i].clone() - 1.0;
        let b = x[i + 1].clone() - x[i].clone() * &x[i];
        s += a.clone() * &a + b.clone() * &b * 100.0;
    }
    s
}

const K1: f64 = 0.04;
const K2: f64 = 3e7;
const K3: f64 = 1e4;
const Y_ROBERTSON: [f64; 3] = [1.0, 2e-5, 1e-2];

/// The Robertson chemical kinetics right-hand side.
struct Robertson;

impl VectorFunction<f64> for Robertson {
    #[inline(always)]
    fn eval<D: DualNum<f64>>(&self, y: &[D], dy: &mut [D]) {
        dy[0] = y[0] * -K1 + y[1] * y[2] * K3;
        dy[1] = y[0] * K1 - y[1] * y[2] * K3 - y[1] * y[1] * K2;
        dy[2] = y[1] * y[1] * K2;
    }
}

/// The same right-hand side for num-dual, into a slice.
fn robertson_nd<D: num_dual::DualNum<Primitive = f64>>(y: &[D], dy: &mut [D]) {
    dy[0] = y[0].clone() * -K1 + y[1].clone() * &y[2] * K3;
    dy[1] = y[0].clone() * K1 - y[1].clone() * &y[2] * K3 - y[1].clone() * &y[1] * K2;
    dy[2] = y[1].clone() * &y[1] * K2;
}

/// A deterministic point away from the minimum.
fn point(n: usize) -> Vec<f64> {
    (0..n).map(|i| 1.0 + 0.5 * (0.7 * i as f64).sin()).collect()
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let tol = 1e-12 * x.abs().max(y.abs()).max(1.0);
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
    }
}

// ----- 1. Robertson Jacobian ---------------------------------------------------------------------

fn robertson(c: &mut Criterion) {
    let y = Y_ROBERTSON;
    let mut cfg = Config::new();

    // Cross-check once: both libraries give the same Jacobian.
    let ours = duals::jacobian(&Robertson, &y, &mut cfg).unwrap();
    let (_, theirs) = num_dual::jacobian(
        |y| {
            let mut dy = y;
            robertson_nd(y.as_slice(), dy.as_mut_slice());
            dy
        },
        &y.into(),
    );
    let theirs: Vec<f64> = theirs.transpose().iter().copied().collect(); // row-major
    assert_close(ours.as_slice(), &theirs, "robertson jacobian");

    let mut g = c.benchmark_group("robertson_jacobian");
    g.bench_function("duals/jacobian", |b| {
        b.iter(|| duals::jacobian(&Robertson, black_box(&y), &mut cfg).unwrap())
    });
    let (mut value, mut jac) = ([0.0; 3], [0.0; 9]);
    g.bench_function("duals/jacobian_into", |b| {
        b.iter(|| {
            duals::jacobian_into(&Robertson, black_box(&y), &mut value, &mut jac, &mut cfg)
                .unwrap();
            black_box(&jac);
        })
    });
    let ys = y.into();
    g.bench_function("num-dual/jacobian_svector", |b| {
        b.iter(|| {
            num_dual::jacobian(
                |y| {
                    let mut dy = y;
                    robertson_nd(y.as_slice(), dy.as_mut_slice());
                    dy
                },
                black_box(&ys),
            )
        })
    });
    let yd = y.to_vec().into();
    g.bench_function("num-dual/jacobian_dvector", |b| {
        b.iter(|| {
            num_dual::jacobian(
                |y| {
                    let mut dy = y.clone();
                    robertson_nd(y.as_slice(), dy.as_mut_slice());
                    dy
                },
                black_box(&yd),
            )
        })
    });
    g.finish();
}

// ----- 2. Rosenbrock gradient, every chunk width ---------------------------------------------------

fn chunks() -> Vec<(String, Chunk)> {
    CHUNK_WIDTHS
        .iter()
        .map(|&w| (format!("w{w}"), Chunk::Width(w)))
        .chain([("auto".to_string(), Chunk::Auto)])
        .collect()
}

fn gradient_duals(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    x: &[f64],
) {
    for (name, chunk) in chunks() {
        let mut cfg = Config::new().with_chunk(chunk);
        g.bench_function(BenchmarkId::new("duals", name), |b| {
            b.iter(|| duals::gradient(&Rosenbrock, black_box(x), &mut cfg).unwrap())
        });
    }
}

/// num-dual with heap-allocated tangents (`DualDVec64`, one pass with `n` tangents) and with the
/// `Gradients` trait on `Dyn` (`n` passes of `Dual64`).
fn gradient_num_dual_dyn(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    x: &[f64],
) {
    let xd = x.to_vec().into();
    g.bench_function("num-dual/gradient_dvector", |b| {
        b.iter(|| num_dual::gradient(|x| rosenbrock_nd(x.as_slice()), black_box(&xd)))
    });
    g.bench_function("num-dual/gradients_dyn", |b| {
        b.iter(|| Gradients::gradient(|x, _: &()| rosenbrock_nd(x.as_slice()), black_box(&xd), &()))
    });
}

fn check_gradient(x: &[f64]) {
    let ours = duals::gradient(&Rosenbrock, x, &mut Config::new()).unwrap();
    let (_, theirs) = num_dual::gradient(|x| rosenbrock_nd(x.as_slice()), &x.to_vec().into());
    assert_close(&ours, theirs.as_slice(), "rosenbrock gradient");
    for (name, chunk) in chunks() {
        let g = duals::gradient(&Rosenbrock, x, &mut Config::new().with_chunk(chunk)).unwrap();
        assert_close(&ours, &g, &format!("rosenbrock gradient {name}"));
    }
}

fn gradient_10(c: &mut Criterion) {
    let x = point(10);
    check_gradient(&x);
    let mut g = c.benchmark_group("gradient_n10");
    gradient_duals(&mut g, &x);
    let xs: [f64; 10] = x.clone().try_into().unwrap();
    let xs = xs.into();
    g.bench_function("num-dual/gradient_svector", |b| {
        b.iter(|| num_dual::gradient(|x| rosenbrock_nd(x.as_slice()), black_box(&xs)))
    });
    gradient_num_dual_dyn(&mut g, &x);
    g.finish();
}

fn gradient_100(c: &mut Criterion) {
    let x = point(100);
    check_gradient(&x);
    let mut g = c.benchmark_group("gradient_n100");
    gradient_duals(&mut g, &x);
    let xs: [f64; 100] = x.clone().try_into().unwrap();
    let xs = xs.into();
    g.bench_function("num-dual/gradient_svector", |b| {
        b.iter(|| num_dual::gradient(|x| rosenbrock_nd(x.as_slice()), black_box(&xs)))
    });
    gradient_num_dual_dyn(&mut g, &x);
    g.finish();
}

fn gradient_1000(c: &mut Criterion) {
    let x = point(1000);
    check_gradient(&x);
    let mut g = c.benchmark_group("gradient_n1000");
    g.sample_size(20);
    gradient_duals(&mut g, &x);
    // No static num-dual variant: `SVector<DualSVec64<1000>, 1000>` is 8 MB on the stack.
    gradient_num_dual_dyn(&mut g, &x);
    g.finish();
}

// ----- 3. Rosenbrock Hessian -----------------------------------------------------------------------

fn hessian_duals(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    x: &[f64],
    methods: &[(&str, HessianMethod)],
) {
    let reference = duals::hessian(&Rosenbrock, x, &mut Config::new()).unwrap();
    for &(name, method) in methods {
        let mut cfg = Config::new().with_hessian_method(method);
        let h = duals::hessian(&Rosenbrock, x, &mut cfg).unwrap();
        assert_close(reference.as_slice(), h.as_slice(), name);
        g.bench_function(BenchmarkId::new("duals", name), |b| {
            b.iter(|| duals::hessian(&Rosenbrock, black_box(x), &mut cfg).unwrap())
        });
    }
}

fn hessian_num_dual_dyn(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    x: &[f64],
) {
    let xd = x.to_vec().into();
    let (_, _, h) = num_dual::hessian(|x| rosenbrock_nd(x.as_slice()), &xd);
    let ours = duals::hessian(&Rosenbrock, x, &mut Config::new()).unwrap();
    assert_close(ours.as_slice(), h.as_slice(), "num-dual hessian"); // symmetric
    g.bench_function("num-dual/hessian_dvector", |b| {
        b.iter(|| num_dual::hessian(|x| rosenbrock_nd(x.as_slice()), black_box(&xd)))
    });
    g.bench_function("num-dual/hessian_gradients_dyn", |b| {
        b.iter(|| Gradients::hessian(|x, _: &()| rosenbrock_nd(x.as_slice()), black_box(&xd), &()))
    });
}

fn hessian_8(c: &mut Criterion) {
    let x = point(8);
    let mut g = c.benchmark_group("hessian_n8");
    hessian_duals(
        &mut g,
        &x,
        &[
            ("auto", HessianMethod::Auto),
            ("dual2", HessianMethod::Dual2),
            ("hyperdual", HessianMethod::HyperDual),
            ("nested", HessianMethod::Nested),
        ],
    );
    let xs: [f64; 8] = x.clone().try_into().unwrap();
    let xs = xs.into();
    g.bench_function("num-dual/hessian_svector", |b| {
        b.iter(|| num_dual::hessian(|x| rosenbrock_nd(x.as_slice()), black_box(&xs)))
    });
    hessian_num_dual_dyn(&mut g, &x);
    g.finish();
}

fn hessian_10(c: &mut Criterion) {
    let x = point(10);
    // `HessianMethod::Dual2` is limited to n <= 8 and returns an error here; Auto is HyperDual.
    assert!(duals::hessian(
        &Rosenbrock,
        &x,
        &mut Config::new().with_hessian_method(HessianMethod::Dual2)
    )
    .is_err());
    let mut g = c.benchmark_group("hessian_n10");
    hessian_duals(
        &mut g,
        &x,
        &[
            ("auto", HessianMethod::Auto),
            ("hyperdual", HessianMethod::HyperDual),
            ("nested", HessianMethod::Nested),
        ],
    );
    let xs: [f64; 10] = x.clone().try_into().unwrap();
    let xs = xs.into();
    g.bench_function("num-dual/hessian_svector", |b| {
        b.iter(|| num_dual::hessian(|x| rosenbrock_nd(x.as_slice()), black_box(&xs)))
    });
    hessian_num_dual_dyn(&mut g, &x);
    g.finish();
}

// ----- 4. The plain value ------------------------------------------------------------------------

fn value(c: &mut Criterion) {
    let mut g = c.benchmark_group("rosenbrock_value");
    for n in [10, 100, 1000] {
        let x = point(n);
        g.bench_function(BenchmarkId::new("f64", n), |b| {
            b.iter(|| Rosenbrock.eval(black_box(&x[..])))
        });
    }
    g.finish();
}

// ----- 5. Array kernels ----------------------------------------------------------------------
//
// One million elements, struct-of-arrays through `duals::kernels` (each available SIMD level and
// the runtime-chosen one), against a plain loop over an array of `Dual64` / `DualVec64<8>` and a
// loop over num-dual's `Dual64` / `DualSVec64<8>`.

const KERNEL_LEN: usize = 1_000_000;

/// Struct-of-arrays operand: primal `p` (length n) and tangent rows `t` (length k n).
struct Soa {
    p: Vec<f64>,
    t: Vec<f64>,
}

impl Soa {
    fn new(n: usize, k: usize, phase: f64) -> Self {
        let p = (0..n)
            .map(|i| (1e-5 * i as f64 + phase).sin() * 3.0)
            .collect();
        let t = (0..k * n)
            .map(|m| 1.0 + 0.25 * (1e-3 * m as f64 + phase).cos())
            .collect();
        Self { p, t }
    }

    fn operand(&self) -> Operand<'_> {
        Operand::Array {
            primal: &self.p,
            tangent: &self.t,
        }
    }

    /// Element `i` as a duals number of `K` tangents.
    fn dual<const K: usize>(&self, i: usize) -> duals::DualVec64<K> {
        let n = self.p.len();
        duals::DualVec64::<K>::new(self.p[i], std::array::from_fn(|j| self.t[j * n + i]))
    }
}

/// A duals number as the num-dual number a user would pick: `Dual64` for one tangent,
/// `DualSVec64<K>` for several.
trait FromDuals<const K: usize>: num_dual::DualNum<Primitive = f64> + Copy {
    fn from_duals(d: &duals::DualVec64<K>) -> Self;
}

impl FromDuals<1> for num_dual::Dual64 {
    fn from_duals(d: &duals::DualVec64<1>) -> Self {
        num_dual::Dual64::new(d.re, d.eps[0])
    }
}

impl FromDuals<8> for num_dual::DualSVec64<8> {
    fn from_duals(d: &duals::DualVec64<8>) -> Self {
        num_dual::DualSVec64::<8>::new(d.re, num_dual::Derivative::some(d.eps.into()))
    }
}

/// The same values as arrays of structs: duals and num-dual.
fn aos<const K: usize, ND: FromDuals<K>>(a: &Soa) -> (Vec<duals::DualVec64<K>>, Vec<ND>) {
    let ours: Vec<_> = (0..a.p.len()).map(|i| a.dual::<K>(i)).collect();
    let theirs = ours.iter().map(ND::from_duals).collect();
    (ours, theirs)
}

fn kernels_sin<const K: usize, ND: FromDuals<K>>(c: &mut Criterion) {
    let n = KERNEL_LEN;
    let a = Soa::new(n, K, 0.1);
    let (mut out_p, mut out_t) = (vec![0.0; n], vec![0.0; K * n]);
    let (xs, xs_nd) = aos::<K, ND>(&a);

    // Cross-check the kernel against the number type (once, before any timing).
    kernels::unary(|x: f64| x.sin_cos(), &a.p, &a.t, K, &mut out_p, &mut out_t).unwrap();
    for i in (0..n).step_by(9973) {
        let d = xs[i].sin();
        assert_close(&[out_p[i]], &[d.re], "kernel sin primal");
        let row: Vec<f64> = (0..K).map(|j| out_t[j * n + i]).collect();
        assert_close(&row, &d.eps, "kernel sin tangent");
    }

    let mut g = c.benchmark_group(format!("kernels_sin_k{K}_n1e6"));
    g.sample_size(10);
    for level in Level::available() {
        g.bench_function(
            BenchmarkId::new("duals", format!("kernel_{level:?}")),
            |b| {
                b.iter(|| {
                    kernels::unary_with_level(
                        level,
                        |x: f64| x.sin_cos(),
                        black_box(&a.p),
                        black_box(&a.t),
                        K,
                        &mut out_p,
                        &mut out_t,
                    )
                    .unwrap()
                })
            },
        );
    }
    g.bench_function(BenchmarkId::new("duals", "kernel_auto"), |b| {
        b.iter(|| {
            kernels::unary(
                |x: f64| x.sin_cos(),
                black_box(&a.p),
                black_box(&a.t),
                K,
                &mut out_p,
                &mut out_t,
            )
            .unwrap()
        })
    });
    drop((out_p, out_t));

    let mut out = xs.clone();
    g.bench_function(BenchmarkId::new("duals", "loop_dual"), |b| {
        b.iter(|| {
            for (o, &x) in out.iter_mut().zip(black_box(&xs)) {
                *o = x.sin();
            }
        })
    });
    drop(out);
    let mut out_nd = xs_nd.clone();
    g.bench_function(BenchmarkId::new("num-dual", "loop_dual"), |b| {
        b.iter(|| {
            for (o, x) in out_nd.iter_mut().zip(black_box(&xs_nd)) {
                *o = num_dual::DualNum::sin(x);
            }
        })
    });
    g.finish();
}

fn kernels_mul<const K: usize, ND: FromDuals<K>>(c: &mut Criterion) {
    let n = KERNEL_LEN;
    let (a, b) = (Soa::new(n, K, 0.1), Soa::new(n, K, 0.7));
    let (mut out_p, mut out_t) = (vec![0.0; n], vec![0.0; K * n]);

    let (xs, xs_nd) = aos::<K, ND>(&a);
    let (ys, ys_nd) = aos::<K, ND>(&b);
    // Cross-check the kernel against the number type (once, before any timing).
    kernels::mul(a.operand(), b.operand(), K, &mut out_p, &mut out_t).unwrap();
    for i in (0..n).step_by(9973) {
        let d = xs[i] * ys[i];
        assert_close(&[out_p[i]], &[d.re], "kernel mul primal");
        let row: Vec<f64> = (0..K).map(|j| out_t[j * n + i]).collect();
        assert_close(&row, &d.eps, "kernel mul tangent");
    }

    let mut g = c.benchmark_group(format!("kernels_mul_k{K}_n1e6"));
    g.sample_size(10);
    for level in Level::available() {
        g.bench_function(
            BenchmarkId::new("duals", format!("kernel_{level:?}")),
            |bch| {
                bch.iter(|| {
                    kernels::mul_with_level(
                        level,
                        black_box(a.operand()),
                        black_box(b.operand()),
                        K,
                        &mut out_p,
                        &mut out_t,
                    )
                    .unwrap()
                })
            },
        );
    }
    g.bench_function(BenchmarkId::new("duals", "kernel_auto"), |bch| {
        bch.iter(|| {
            kernels::mul(
                black_box(a.operand()),
                black_box(b.operand()),
                K,
                &mut out_p,
                &mut out_t,
            )
            .unwrap()
        })
    });
    drop((out_p, out_t, a, b));

    let mut out = xs.clone();
    g.bench_function(BenchmarkId::new("duals", "loop_dual"), |bch| {
        bch.iter(|| {
            for ((o, &x), &y) in out.iter_mut().zip(black_box(&xs)).zip(black_box(&ys)) {
                *o = x * y;
            }
        })
    });
    drop((out, xs, ys));
    let mut out_nd = xs_nd.clone();
    g.bench_function(BenchmarkId::new("num-dual", "loop_dual"), |bch| {
        bch.iter(|| {
            for ((o, x), y) in out_nd
                .iter_mut()
                .zip(black_box(&xs_nd))
                .zip(black_box(&ys_nd))
            {
                *o = *x * *y;
            }
        })
    });
    g.finish();
}

/// The unary kernel for rules of the table, at one tangent row: the rule-matched kernel (SIMD
/// math where the rule has it) against the closure kernel calling the scalar table entry.
fn kernels_rules(c: &mut Criterion) {
    use duals::rules::{self, UnaryRule};
    let n = KERNEL_LEN;
    let a = Soa::new(n, 1, 0.1);
    let mut out = (vec![0.0; n], vec![0.0; n]);
    // ln_1p needs x > -1: its primal is shifted from [-3, 3] into [-1, 5].
    let shifted: Vec<f64> = a.p.iter().map(|x| x + 2.0).collect();
    let cases: [(&str, UnaryRule, &[f64]); 3] = [
        ("sin", UnaryRule::Sin, &a.p),
        ("exp", UnaryRule::Exp, &a.p),
        ("ln_1p", UnaryRule::Ln1p, &shifted),
    ];
    for (name, rule, p) in cases {
        // Cross-check the kernel against the table entry (once, before any timing).
        kernels::unary_rule(rule, p, &a.t, 1, &mut out.0, &mut out.1).unwrap();
        for i in (0..n).step_by(9973) {
            let u = rule.eval(p[i]);
            assert_close(&[out.0[i], out.1[i]], &[u.f, u.d1 * a.t[i]], name);
        }
        let mut g = c.benchmark_group(format!("kernels_rule_{name}_k1_n1e6"));
        g.sample_size(10);
        for level in Level::available() {
            g.bench_function(BenchmarkId::new("duals", format!("rule_{level:?}")), |b| {
                b.iter(|| {
                    kernels::unary_rule_with_level(
                        level,
                        rule,
                        black_box(p),
                        black_box(&a.t),
                        1,
                        &mut out.0,
                        &mut out.1,
                    )
                    .unwrap()
                })
            });
            let id = BenchmarkId::new("duals", format!("closure_{level:?}"));
            match rule {
                UnaryRule::Sin => {
                    bench_closure(&mut g, id, level, rules::sin::<f64, f64>, p, &a.t, &mut out)
                }
                UnaryRule::Exp => {
                    bench_closure(&mut g, id, level, rules::exp::<f64, f64>, p, &a.t, &mut out)
                }
                _ => bench_closure(
                    &mut g,
                    id,
                    level,
                    rules::ln_1p::<f64, f64>,
                    p,
                    &a.t,
                    &mut out,
                ),
            }
        }
        g.finish();
    }
}

/// The closure kernel with a scalar table entry (one tangent row).
fn bench_closure<E: Fn(f64) -> duals::rules::Unary<f64>>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    level: Level,
    entry: E,
    p: &[f64],
    t: &[f64],
    (out_p, out_t): &mut (Vec<f64>, Vec<f64>),
) {
    g.bench_function(id, |b| {
        b.iter(|| {
            kernels::unary_with_level(
                level,
                |x: f64| {
                    let u = entry(x);
                    (u.f, u.d1)
                },
                black_box(p),
                black_box(t),
                1,
                out_p,
                out_t,
            )
            .unwrap()
        })
    });
}

criterion_group!(
    benches,
    robertson,
    gradient_10,
    gradient_100,
    gradient_1000,
    hessian_8,
    hessian_10,
    tape_hessian_10,
    value,
    kernels_sin::<1, num_dual::Dual64>,
    kernels_sin::<8, num_dual::DualSVec64<8>>,
    kernels_mul::<1, num_dual::Dual64>,
    kernels_mul::<8, num_dual::DualSVec64<8>>,
    kernels_rules
);
criterion_main!(benches);

/// `tape_hessian_n10`: `Tape::hessian` of the chained Rosenbrock tape at n = 10 by `Auto` (the
/// sparse one-pass evaluator) and by hyper-dual blocks, beside `hessian_n10` for the generic
/// function.
fn tape_hessian_10(c: &mut Criterion) {
    let x: Vec<f64> = (0..10)
        .map(|i| 1.0 + 0.5 * (0.7 * i as f64).sin())
        .collect();
    let record = || -> Result<duals::Tape, duals::TapeError> {
        let mut b = duals::TapeBuilder::new();
        let x: Vec<_> = x.iter().map(|&v| b.input(v)).collect::<Result<_, _>>()?;
        let (one, hundred) = (b.constant(1.0)?, b.constant(100.0)?);
        let mut s = b.constant(0.0)?;
        for i in 0..x.len() - 1 {
            let a = b.sub(x[i], one)?;
            let sq = b.mul(x[i], x[i])?;
            let d = b.sub(x[i + 1], sq)?;
            let (aa, dd) = (b.mul(a, a)?, b.mul(d, d)?);
            let dd = b.mul(dd, hundred)?;
            let t = b.add(aa, dd)?;
            s = b.add(s, t)?;
        }
        b.output(s)?;
        Ok(b.finish())
    };
    let tape = record().unwrap();
    let reference = duals::hessian(&Rosenbrock, &x, &mut Config::new()).unwrap();
    let mut g = c.benchmark_group("tape_hessian_n10");
    for method in [HessianMethod::Auto, HessianMethod::HyperDual] {
        let mut cfg = Config::new().with_hessian_method(method);
        let h = tape.hessian(&x, &mut cfg).unwrap();
        assert_close(
            h.as_slice(),
            reference.as_slice(),
            &format!("tape {method:?}"),
        );
        g.bench_function(format!("duals/tape_{method:?}"), |b| {
            b.iter(|| tape.hessian(black_box(&x), &mut cfg).unwrap())
        });
    }
    g.finish();
}
