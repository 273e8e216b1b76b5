//! The vectorized elementary functions ([`duals::kernels::math`], [`duals::kernels::sin_cos`])
//! and the unary kernel rules built on them, at every dispatch level this CPU has.
//!
//! - Against high-precision references (`reference/vmath.csv`, written by
//!   `reference/vmath_generate.py` with mpmath): values and derivatives within [`MAX_ULP`] of
//!   the exact result, measured in fractions of an ulp.
//! - Against the standard library's scalar functions on dense random samples over several
//!   ranges (tiny, around 1, near multiples of π/2, up to the reduction bounds and beyond).
//! - Bit-identical to the standard library, and to the table of rules, wherever the fast path
//!   does not apply: NaN, infinities, zeros, subnormals, overflow and underflow, huge arguments.
//! - The rule-matched unary kernel: values and derivatives of the table, tangent rows scaled
//!   exactly by the derivative, every tangent count and tail length.
//!
//! Run with `--nocapture` for the largest error per function and level.

use std::collections::BTreeMap;

use duals::kernels::{
    math_with_level, sin_cos_with_level, unary_rule_with_level, KernelError, Level, MathFn,
};
use duals::rules::UnaryRule;

const REFERENCE_CSV: &str = include_str!("reference/vmath.csv");

/// Largest error allowed against the exact result, in ulps of the result. The functions are
/// designed for at most about 0.6 ulp (a single final rounding plus small terms); the bound
/// leaves a margin below the 1 ulp the kernels promise.
const MAX_ULP: f64 = 0.75;

// ---------------------------------------------------------------------------------------------
// Helpers

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.unit() * (hi - lo)
    }

    /// Log-uniform magnitude in `[lo, hi)` (both positive), random sign if `signed`.
    fn log_uniform(&mut self, lo: f64, hi: f64, signed: bool) -> f64 {
        let m = (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp();
        if signed && self.next_u64() & 1 == 1 {
            -m
        } else {
            m
        }
    }
}

/// The size of an ulp at `x`: the gap from `|x|` to the next double up (exact; the binade's
/// ulp, also for powers of two).
fn ulp(x: f64) -> f64 {
    let x = x.abs();
    f64::from_bits(x.to_bits() + 1) - x
}

/// Whether an error in ulps is allowed (NaN is not).
fn within(err: f64) -> bool {
    err <= MAX_ULP
}

/// `(got - exact) / ulp(exact)` with `exact = hi + lo`.
fn ulp_error(got: f64, hi: f64, lo: f64) -> f64 {
    if got == hi && lo == 0.0 {
        return 0.0;
    }
    ((got - hi) - lo).abs() / ulp(hi)
}

/// Distance in representable doubles (0 for equal values and for two NaNs).
fn ulp_distance(a: f64, b: f64) -> u64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        return 0;
    }
    if a.is_nan() || b.is_nan() {
        return u64::MAX;
    }
    let ord = |x: f64| {
        let i = x.to_bits() as i64;
        if i < 0 {
            i64::MIN - i
        } else {
            i
        }
    };
    (ord(a) - ord(b)).unsigned_abs()
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// The functions the rule-matched kernel evaluates with SIMD math, with their table entries.
/// (`tanh` is vectorized for [`math`](duals::kernels::math) only: its kernel rule calls the
/// table entry.)
const KERNEL_FNS: [(MathFn, UnaryRule); 6] = [
    (MathFn::Exp, UnaryRule::Exp),
    (MathFn::ExpM1, UnaryRule::ExpM1),
    (MathFn::Ln, UnaryRule::Ln),
    (MathFn::Ln1p, UnaryRule::Ln1p),
    (MathFn::Sin, UnaryRule::Sin),
    (MathFn::Cos, UnaryRule::Cos),
];

fn eval(level: Level, f: MathFn, x: &[f64]) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    math_with_level(level, f, x, &mut out).unwrap();
    out
}

/// `(values, derivatives)` of the kernel with one tangent row of ones.
fn kernel(level: Level, rule: UnaryRule, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut p, mut t) = (vec![f64::NAN; x.len()], vec![f64::NAN; x.len()]);
    unary_rule_with_level(level, rule, x, &vec![1.0; x.len()], 1, &mut p, &mut t).unwrap();
    (p, t)
}

/// Largest error per (level, function, what), with the argument where it occurred.
#[derive(Default)]
struct Worst(BTreeMap<(String, &'static str, &'static str), (f64, f64)>);

impl Worst {
    fn add(&mut self, level: Level, f: &'static str, what: &'static str, err: f64, x: f64) {
        let e = self
            .0
            .entry((format!("{level:?}"), f, what))
            .or_insert((0.0, 0.0));
        if err > e.0 {
            *e = (err, x);
        }
    }

    fn print(&self, title: &str) {
        println!("{title}");
        for ((level, f, what), (err, x)) in &self.0 {
            println!("  {level:6} {f:7} {what:10} max {err:.3} at x = {x:e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Against high-precision references

struct Reference {
    name: String,
    x: f64,
    f: (f64, f64),
    d: (f64, f64),
}

fn references() -> Vec<Reference> {
    let mut lines = REFERENCE_CSV.lines();
    assert_eq!(lines.next(), Some("name,x,f,f_lo,d,d_lo"));
    let num = |s: &str| -> f64 { s.parse().unwrap_or_else(|_| panic!("bad number {s}")) };
    let rows: Vec<Reference> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            assert_eq!(c.len(), 6, "vmath.csv: {l}");
            Reference {
                name: c[0].to_string(),
                x: num(c[1]),
                f: (num(c[2]), num(c[3])),
                d: (num(c[4]), num(c[5])),
            }
        })
        .collect();
    for f in MathFn::ALL {
        let n = rows.iter().filter(|r| r.name == f.name()).count();
        assert!(n >= 60, "vmath.csv has {n} rows for {}", f.name());
    }
    rows
}

#[test]
fn functions_are_within_an_ulp_of_the_exact_result_at_every_level() {
    let rows = references();
    let mut worst = Worst::default();
    let mut failures = Vec::new();
    for level in Level::available() {
        for f in MathFn::ALL {
            let rows: Vec<&Reference> = rows.iter().filter(|r| r.name == f.name()).collect();
            let x: Vec<f64> = rows.iter().map(|r| r.x).collect();
            let got = eval(level, f, &x);
            for (r, &got) in rows.iter().zip(&got) {
                let err = ulp_error(got, r.f.0, r.f.1);
                worst.add(level, f.name(), "value", err, r.x);
                if !within(err) {
                    failures.push(format!(
                        "{level:?} {}({:e}) = {got:e}, exact {:e}: {err:.3} ulp",
                        f.name(),
                        r.x,
                        r.f.0
                    ));
                }
            }
        }
    }
    worst.print("error against the exact result (ulp):");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sin_cos_gives_sin_and_cos_at_every_level() {
    let rows = references();
    let x: Vec<f64> = rows
        .iter()
        .filter(|r| r.name == "sin")
        .map(|r| r.x)
        .collect();
    for level in Level::available() {
        let (mut s, mut c) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        sin_cos_with_level(level, &x, &mut s, &mut c).unwrap();
        let (s1, c1) = (eval(level, MathFn::Sin, &x), eval(level, MathFn::Cos, &x));
        for i in 0..x.len() {
            assert!(
                same(s[i], s1[i]) && same(c[i], c1[i]),
                "{level:?} x = {}",
                x[i]
            );
        }
    }
}

#[test]
fn kernel_values_and_derivatives_are_within_an_ulp_at_every_level() {
    let rows = references();
    let mut worst = Worst::default();
    let mut failures = Vec::new();
    for level in Level::available() {
        for (f, rule) in KERNEL_FNS {
            let rows: Vec<&Reference> = rows.iter().filter(|r| r.name == f.name()).collect();
            let x: Vec<f64> = rows.iter().map(|r| r.x).collect();
            let (p, t) = kernel(level, rule, &x);
            for (i, r) in rows.iter().enumerate() {
                let entry = rule.eval(r.x);
                // The derivative of ln and ln_1p is one IEEE division (1/x, 1/fl(1 + x)),
                // exactly as the entry computes it; at the scalar level every value and
                // derivative is the entry's own.
                let exact_d1 = matches!(f, MathFn::Ln | MathFn::Ln1p);
                if (level == Level::Scalar || exact_d1) && !same(t[i], entry.d1) {
                    failures.push(format!(
                        "{level:?} {}'({:e}): {:e} vs entry {:e}",
                        f.name(),
                        r.x,
                        t[i],
                        entry.d1
                    ));
                }
                if level == Level::Scalar {
                    if !same(p[i], entry.f) {
                        failures.push(format!(
                            "{level:?} {}({:e}): {:e} vs entry {:e}",
                            f.name(),
                            r.x,
                            p[i],
                            entry.f
                        ));
                    }
                    continue;
                }
                let ef = ulp_error(p[i], r.f.0, r.f.1);
                worst.add(level, f.name(), "value", ef, r.x);
                if !within(ef) {
                    failures.push(format!("{level:?} {}({:e}): {ef:.3} ulp", f.name(), r.x));
                }
                if !exact_d1 && !r.d.0.is_nan() {
                    let ed = ulp_error(t[i], r.d.0, r.d.1);
                    worst.add(level, f.name(), "derivative", ed, r.x);
                    if !within(ed) {
                        failures.push(format!("{level:?} {}'({:e}): {ed:.3} ulp", f.name(), r.x));
                    }
                }
            }
        }
    }
    worst.print("kernel error against the exact value and derivative (ulp):");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Against the standard library on dense samples

/// A sampling range: uniform, or log-uniform in magnitude (with random signs if `signed`).
#[derive(Clone, Copy)]
enum Range {
    Uniform(f64, f64),
    Log(f64, f64, bool),
    /// Within `±w` of the multiples `k π/2`, `|k| <= kmax`.
    NearPio2(u32, f64),
}

fn sample(rng: &mut Rng, range: Range, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| match range {
            Range::Uniform(lo, hi) => rng.uniform(lo, hi),
            Range::Log(lo, hi, signed) => rng.log_uniform(lo, hi, signed),
            Range::NearPio2(kmax, w) => {
                let k = (rng.next_u64() % (2 * u64::from(kmax) + 1)) as f64 - f64::from(kmax);
                k * std::f64::consts::FRAC_PI_2 + rng.uniform(-w, w)
            }
        })
        .collect()
}

/// Ranges per function; the standard library's own error is below 0.52 ulp for exp, ln, sin,
/// cos (glibc, musl, Apple's libm) and larger for exp_m1, ln_1p and tanh (glibc's tanh
/// reaches 2 ulp), hence the tolerance of the comparison, in ulps.
fn dense_cases() -> Vec<(MathFn, Vec<Range>, u64)> {
    use Range::*;
    let tiny = Log(1e-300, 1e-8, true);
    let trig = vec![
        Uniform(-4.0, 4.0),
        Uniform(-100.0, 100.0),
        Uniform(-1048576.0, 1048576.0),
        Uniform(-2e6, 2e6),
        NearPio2(1000, 1e-6),
        NearPio2(600_000, 1e-9),
        tiny,
    ];
    vec![
        (
            MathFn::Exp,
            vec![Uniform(-745.5, 710.0), Uniform(-1.0, 1.0), tiny],
            1,
        ),
        (
            MathFn::ExpM1,
            vec![Uniform(-45.0, 710.0), Uniform(-1.0, 1.0), tiny],
            2,
        ),
        (
            MathFn::Ln,
            vec![Log(1e-320, 1.7e308, false), Uniform(0.5, 2.0)],
            1,
        ),
        (
            MathFn::Ln1p,
            vec![Uniform(-1.0, 3.0), Log(1e-320, 1.7e308, false), tiny],
            2,
        ),
        (MathFn::Sin, trig.clone(), 1),
        (MathFn::Cos, trig, 1),
        (
            MathFn::Tanh,
            vec![Uniform(-25.0, 25.0), Log(1e-300, 800.0, true)],
            3,
        ),
    ]
}

#[test]
fn functions_agree_with_the_standard_library_on_dense_samples_at_every_level() {
    let mut rng = Rng::new(2026);
    let mut worst = Worst::default();
    let mut failures = Vec::new();
    for (f, ranges, tolerance) in dense_cases() {
        for range in ranges {
            let x = sample(&mut rng, range, 20_000);
            for level in Level::available() {
                let got = eval(level, f, &x);
                for (&x, &got) in x.iter().zip(&got) {
                    let want = f.scalar(x);
                    let d = ulp_distance(got, want);
                    worst.add(level, f.name(), "vs std", d as f64, x);
                    if d > tolerance {
                        failures.push(format!(
                            "{level:?} {}({x:e}) = {got:e}, std {want:e}: {d} ulp",
                            f.name()
                        ));
                    }
                }
            }
        }
    }
    worst.print("distance to the standard library (ulp):");
    failures.truncate(20);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Special values: bit-identical to the standard library and the table

/// Inputs outside every fast domain, or at its edges, or settled by a proved `select`.
fn specials(f: MathFn) -> Vec<f64> {
    let mut v = vec![
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        1e-310,
        -1e-310,
        1e-300,
        -1e-300,
        f64::MAX,
        f64::MIN,
    ];
    v.extend(match f {
        MathFn::Exp => vec![
            708.0000000000001,
            709.0,
            709.782712893384,
            709.7827128933841,
            710.0,
            -708.0000000000001,
            -708.4,
            -720.0,
            -745.1332191019411,
            -745.1332191019412,
            -746.0,
            1e10,
            -1e10,
        ],
        MathFn::ExpM1 => vec![
            708.0000000000001,
            709.8,
            1e10,
            -40.000000000000001,
            -41.0,
            -1e10,
        ],
        MathFn::Ln => vec![-1.0, -1e-300, 1e-320, 2.2e-308, 1.0],
        MathFn::Ln1p => vec![
            -1.0,
            -1.0000000000000002,
            -2.0,
            -1e300,
            5.5e-17,
            -5.5e-17,
            1e-20,
            -1e-20,
        ],
        MathFn::Sin | MathFn::Cos => vec![
            1048576.0000000001,
            -1048576.0000000001,
            2e6,
            1e22,
            -1e22,
            1e300,
            7.4e-9,
            -7.4e-9,
            1e-20,
        ],
        MathFn::Tanh => vec![350.00000000000006, -351.0, 1e300, -1e300, 1e-20, -1e-20],
        _ => vec![],
    });
    v
}

#[test]
fn special_values_are_those_of_the_standard_library_at_every_level() {
    for level in Level::available() {
        for f in MathFn::ALL {
            let x = specials(f);
            // Also in the middle of a vector of ordinary values, at every lane position.
            for pos in 0..x.len() + 9 {
                let mut xs = vec![0.5; 9];
                let k = pos.min(x.len() - 1);
                xs[pos % 9] = x[k];
                let got = eval(level, f, &xs);
                assert!(
                    same(got[pos % 9], f.scalar(x[k])),
                    "{level:?} {}({:e}) = {:e}, std {:e}",
                    f.name(),
                    x[k],
                    got[pos % 9],
                    f.scalar(x[k])
                );
            }
            let got = eval(level, f, &x);
            for (&x, &got) in x.iter().zip(&got) {
                assert!(
                    same(got, f.scalar(x)),
                    "{level:?} {}({x:e}) = {got:e}, std {:e}",
                    f.name(),
                    f.scalar(x)
                );
            }
        }
    }
}

#[test]
fn kernel_special_values_are_those_of_the_table_at_every_level() {
    for level in Level::available() {
        for (f, rule) in KERNEL_FNS
            .into_iter()
            .chain([(MathFn::Tanh, UnaryRule::Tanh)])
        {
            let x = specials(f);
            let (p, t) = kernel(level, rule, &x);
            for (i, &x) in x.iter().enumerate() {
                let entry = rule.eval(x);
                assert!(
                    same(p[i], entry.f) && same(t[i], entry.d1),
                    "{level:?} {}({x:e}): ({:e}, {:e}), entry ({:e}, {:e})",
                    f.name(),
                    p[i],
                    t[i],
                    entry.f,
                    entry.d1
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The kernel: tangent rows, tangent counts, lengths

/// Rules the kernel evaluates a vector at a time, with inputs in their domains.
const KERNEL_RULES: [(UnaryRule, f64, f64); 10] = [
    (UnaryRule::Exp, -30.0, 30.0),
    (UnaryRule::ExpM1, -3.0, 3.0),
    (UnaryRule::Ln, 0.01, 100.0),
    (UnaryRule::Ln1p, -0.9, 10.0),
    (UnaryRule::Sin, -50.0, 50.0),
    (UnaryRule::Cos, -50.0, 50.0),
    (UnaryRule::Tanh, -10.0, 10.0),
    (UnaryRule::Powi(2), -10.0, 10.0),
    (UnaryRule::Recip, -10.0, 10.0),
    (UnaryRule::Sqrt, 0.0, 10.0),
];

#[test]
fn kernel_scales_every_tangent_row_by_the_derivative() {
    let mut rng = Rng::new(7);
    for level in Level::available() {
        for (rule, lo, hi) in KERNEL_RULES {
            for n in [0, 1, 3, 7, 8, 9, 15, 16, 17, 255, 256, 257, 1000] {
                let x: Vec<f64> = (0..n).map(|_| rng.uniform(lo, hi)).collect();
                let (f1, d1) = kernel(level, rule, &x);
                for k in [0, 1, 2, 3, 8, 17] {
                    let t: Vec<f64> = (0..k * n).map(|_| rng.uniform(-2.0, 2.0)).collect();
                    let (mut p, mut out) = (vec![f64::NAN; n], vec![f64::NAN; k * n]);
                    unary_rule_with_level(level, rule, &x, &t, k, &mut p, &mut out).unwrap();
                    for i in 0..n {
                        assert!(
                            same(p[i], f1[i]),
                            "{level:?} {rule:?} n={n} k={k} value {i}"
                        );
                        for j in 0..k {
                            let want = d1[i] * t[j * n + i];
                            assert!(
                                same(out[j * n + i], want),
                                "{level:?} {rule:?} n={n} k={k} tangent ({j}, {i})"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn kernel_matches_the_table_on_random_inputs_at_every_level() {
    let mut rng = Rng::new(11);
    for level in Level::available() {
        for (rule, lo, hi) in KERNEL_RULES {
            let x: Vec<f64> = (0..5000).map(|_| rng.uniform(lo, hi)).collect();
            let (p, t) = kernel(level, rule, &x);
            for i in 0..x.len() {
                let e = rule.eval(x[i]);
                // tanh: the entry's value (the platform's tanh) is up to 2 ulp from the exact
                // one and its derivative, (1/cosh)², up to ~4.5 ulp; the kernel's are within
                // 0.75 ulp of the exact ones (tested above).
                let (tol_f, tol_d) = if rule == UnaryRule::Tanh {
                    (3, 6)
                } else {
                    (1, 1)
                };
                assert!(
                    ulp_distance(p[i], e.f) <= tol_f && ulp_distance(t[i], e.d1) <= tol_d,
                    "{level:?} {rule:?}({:e}): ({:e}, {:e}), entry ({:e}, {:e})",
                    x[i],
                    p[i],
                    t[i],
                    e.f,
                    e.d1
                );
                let exact = matches!(
                    rule,
                    UnaryRule::Powi(2) | UnaryRule::Recip | UnaryRule::Sqrt
                );
                if exact || level == Level::Scalar {
                    assert!(
                        same(p[i], e.f) && same(t[i], e.d1),
                        "{level:?} {rule:?}({:e})",
                        x[i]
                    );
                }
            }
        }
    }
}

#[test]
fn bad_lengths_are_errors() {
    let x = [1.0, 2.0, 3.0];
    let mut out = [0.0; 2];
    let err = math_with_level(Level::Scalar, MathFn::Exp, &x, &mut out).unwrap_err();
    assert!(matches!(
        err,
        KernelError::PrimalLength {
            arg: "out",
            expected: 3,
            found: 2
        }
    ));
    let (mut s, mut c) = ([0.0; 3], [0.0; 4]);
    let err = sin_cos_with_level(Level::Scalar, &x, &mut s, &mut c).unwrap_err();
    assert!(matches!(
        err,
        KernelError::PrimalLength { arg: "out_cos", .. }
    ));
    let (mut p, mut t) = ([0.0; 3], [0.0; 5]);
    let err = unary_rule_with_level(
        Level::Scalar,
        UnaryRule::Sin,
        &x,
        &[1.0; 3],
        1,
        &mut p,
        &mut t,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        KernelError::TangentLength { arg: "out_t", .. }
    ));
}

#[test]
fn math_runs_every_length() {
    let mut rng = Rng::new(5);
    for level in Level::available() {
        for f in MathFn::ALL {
            let x: Vec<f64> = (0..40).map(|_| rng.uniform(0.1, 3.0)).collect();
            let all = eval(level, f, &x);
            for n in 0..x.len() {
                assert_eq!(
                    eval(level, f, &x[..n]),
                    all[..n],
                    "{level:?} {} n={n}",
                    f.name()
                );
            }
        }
    }
}
