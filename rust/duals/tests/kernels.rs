//! The array kernels at every dispatch level this CPU has, against plain scalar loops.
//!
//! Elementwise results must equal the reference computed either with two roundings (the
//! scalar level) or with the kernel's product-sum fused (FMA levels), within a few ulps of the
//! terms; NaN equals NaN. Reductions must be within the error bound of a sum of `n` terms of a
//! compensated reference sum.

use duals::kernels::{self, KernelError, Level, Operand};

const LENGTHS: [usize; 14] = [0, 1, 3, 7, 8, 9, 15, 16, 17, 255, 256, 257, 1000, 10_003];
const KS: [usize; 5] = [0, 1, 3, 8, 17];
const SPECIALS: [f64; 11] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.0,
    -0.0,
    1e-300,
    -1e-300,
    1e300,
    -1e300,
    1.0,
    -1.0,
];
const EPS: f64 = f64::EPSILON;
/// Written to every output before a kernel runs, to catch elements it never writes.
const UNWRITTEN: f64 = -12_345.678_9;

// ---------------------------------------------------------------------------------------------
// Data

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

    /// Uniform in [-4, 4).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0
    }

    /// Mostly uniform values, one in eight a special value (NaN, inf, 0, 1e+-300, ...).
    fn value(&mut self) -> f64 {
        if self.next_u64().is_multiple_of(8) {
            SPECIALS[(self.next_u64() % SPECIALS.len() as u64) as usize]
        } else {
            self.uniform()
        }
    }

    fn values(&mut self, len: usize) -> Vec<f64> {
        (0..len).map(|_| self.value()).collect()
    }

    /// Finite values for reductions: uniform, with one in eight from +-0, +-1e-300, +-`big`.
    fn finite_values(&mut self, len: usize, big: f64) -> Vec<f64> {
        let specials = [0.0, -0.0, 1e-300, -1e-300, big, -big];
        (0..len)
            .map(|_| {
                if self.next_u64().is_multiple_of(8) {
                    specials[(self.next_u64() % 6) as usize]
                } else {
                    self.uniform()
                }
            })
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Array,
    ArrayConst,
    Scalar,
    ScalarConst,
}

const KINDS: [Kind; 4] = [
    Kind::Array,
    Kind::ArrayConst,
    Kind::Scalar,
    Kind::ScalarConst,
];

/// Storage for one operand of every kind: an array (`p`, `t`) and a scalar (`sp`, `st`).
struct Side {
    p: Vec<f64>,
    t: Vec<f64>,
    sp: f64,
    st: Vec<f64>,
}

impl Side {
    fn new(rng: &mut Rng, n: usize, k: usize) -> Side {
        Side {
            p: rng.values(n),
            t: rng.values(k * n),
            sp: rng.value(),
            st: rng.values(k),
        }
    }

    fn operand(&self, kind: Kind) -> Operand<'_> {
        match kind {
            Kind::Array => Operand::Array {
                primal: &self.p,
                tangent: &self.t,
            },
            Kind::ArrayConst => Operand::ArrayConst(&self.p),
            Kind::Scalar => Operand::Scalar {
                primal: self.sp,
                tangent: &self.st,
            },
            Kind::ScalarConst => Operand::ScalarConst(self.sp),
        }
    }

    /// Primal of element `i` as the operand of `kind` sees it.
    fn primal(&self, kind: Kind, i: usize) -> f64 {
        match kind {
            Kind::Array | Kind::ArrayConst => self.p[i],
            Kind::Scalar | Kind::ScalarConst => self.sp,
        }
    }

    /// Tangent `j` of element `i`, `None` for a constant.
    fn tangent(&self, kind: Kind, j: usize, i: usize, n: usize) -> Option<f64> {
        match kind {
            Kind::Array => Some(self.t[j * n + i]),
            Kind::Scalar => Some(self.st[j]),
            Kind::ArrayConst | Kind::ScalarConst => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison

/// Expected value: computed with two roundings and with the kernel's FMA, and the magnitude
/// of the terms it was summed from (for the tolerance).
#[derive(Clone, Copy, Debug)]
struct Expected {
    unfused: f64,
    fused: f64,
    scale: f64,
}

impl Expected {
    fn exact(x: f64) -> Expected {
        Expected {
            unfused: x,
            fused: x,
            scale: x.abs(),
        }
    }

    fn accepts(&self, got: f64) -> bool {
        [self.unfused, self.fused].into_iter().any(|want| {
            (got.is_nan() && want.is_nan())
                || got == want
                || (got.is_finite()
                    && want.is_finite()
                    && (got - want).abs() <= 4.0 * EPS * (self.scale + want.abs()) + 1e-320)
        })
    }
}

#[track_caller]
fn assert_accepts(expected: Expected, got: f64, what: impl Fn() -> String) {
    assert!(
        expected.accepts(got),
        "{}: got {got:e}, expected {expected:?}",
        what()
    );
}

// ---------------------------------------------------------------------------------------------
// Unary

fn sin_rule(x: f64) -> (f64, f64) {
    x.sin_cos()
}

fn sqrt_rule(x: f64) -> (f64, f64) {
    let s = x.sqrt();
    (s, 0.5 / s)
}

fn check_unary(rule: fn(f64) -> (f64, f64), name: &str) {
    for level in Level::available() {
        for n in LENGTHS {
            for k in KS {
                let mut rng = Rng::new((n * 31 + k) as u64);
                let p = rng.values(n);
                let t = rng.values(k * n);
                let mut out_p = vec![UNWRITTEN; n];
                let mut out_t = vec![UNWRITTEN; k * n];
                kernels::unary_with_level(level, rule, &p, &t, k, &mut out_p, &mut out_t).unwrap();
                let (mut ip, mut it) = (p.clone(), t.clone());
                kernels::unary_inplace_with_level(level, rule, &mut ip, &mut it, k).unwrap();
                for i in 0..n {
                    let (f, df) = rule(p[i]);
                    let what = || format!("{name} {level} n={n} k={k} i={i} p={:e}", p[i]);
                    assert_accepts(Expected::exact(f), out_p[i], what);
                    assert_accepts(Expected::exact(f), ip[i], || format!("inplace {}", what()));
                    for j in 0..k {
                        let want = Expected::exact(df * t[j * n + i]);
                        let what = || format!("{} j={j}", what());
                        assert_accepts(want, out_t[j * n + i], what);
                        assert_accepts(want, it[j * n + i], || format!("inplace {}", what()));
                    }
                }
            }
        }
    }
}

#[test]
fn unary_sin_matches_scalar_loop_at_every_level() {
    check_unary(sin_rule, "sin");
}

#[test]
fn unary_sqrt_matches_scalar_loop_at_every_level() {
    check_unary(sqrt_rule, "sqrt");
}

// ---------------------------------------------------------------------------------------------
// Binary

#[derive(Clone, Copy, Debug)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Atan2,
}

fn atan2_rule(a: f64, b: f64) -> (f64, f64, f64) {
    let r2 = a * a + b * b;
    (a.atan2(b), b / r2, -a / r2)
}

/// `fa * ta + fb * tb` with absent terms left out; the fused form is `fa.mul_add(ta, fb * tb)`.
fn linear(fa: f64, ta: Option<f64>, fb: f64, tb: Option<f64>) -> Expected {
    match (ta, tb) {
        (Some(ta), Some(tb)) => Expected {
            unfused: fa * ta + fb * tb,
            fused: fa.mul_add(ta, fb * tb),
            scale: (fa * ta).abs() + (fb * tb).abs(),
        },
        (Some(ta), None) => Expected::exact(fa * ta),
        (None, Some(tb)) => Expected::exact(fb * tb),
        (None, None) => Expected::exact(0.0),
    }
}

impl BinOp {
    fn run(
        self,
        level: Level,
        a: Operand<'_>,
        b: Operand<'_>,
        k: usize,
        out_p: &mut [f64],
        out_t: &mut [f64],
    ) -> Result<(), KernelError> {
        match self {
            BinOp::Add => kernels::add_with_level(level, a, b, k, out_p, out_t),
            BinOp::Sub => kernels::sub_with_level(level, a, b, k, out_p, out_t),
            BinOp::Mul => kernels::mul_with_level(level, a, b, k, out_p, out_t),
            BinOp::Div => kernels::div_with_level(level, a, b, k, out_p, out_t),
            BinOp::Atan2 => kernels::binary_with_level(level, atan2_rule, a, b, k, out_p, out_t),
        }
    }

    /// The straightforward per-element formulas.
    fn primal(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Atan2 => atan2_rule(a, b).0,
        }
    }

    fn tangent(self, a: f64, ta: Option<f64>, b: f64, tb: Option<f64>) -> Expected {
        match self {
            BinOp::Add => linear(1.0, ta, 1.0, tb),
            BinOp::Sub => linear(1.0, ta, -1.0, tb),
            BinOp::Mul => linear(b, ta, a, tb),
            BinOp::Atan2 => {
                let (_, fa, fb) = atan2_rule(a, b);
                linear(fa, ta, fb, tb)
            }
            BinOp::Div => {
                let f = a / b;
                match (ta, tb) {
                    (Some(ta), Some(tb)) => Expected {
                        unfused: (ta - f * tb) / b,
                        fused: (-f).mul_add(tb, ta) / b,
                        scale: (ta.abs() + (f * tb).abs()) / b.abs(),
                    },
                    (Some(ta), None) => Expected::exact(ta / b),
                    (None, Some(tb)) => Expected::exact(-(f * tb) / b),
                    (None, None) => Expected::exact(0.0),
                }
            }
        }
    }
}

fn check_binary(op: BinOp) {
    for level in Level::available() {
        for n in LENGTHS {
            for k in KS {
                let mut rng = Rng::new((n * 131 + k * 7 + op as usize) as u64);
                let (sa, sb) = (Side::new(&mut rng, n, k), Side::new(&mut rng, n, k));
                for ka in KINDS {
                    for kb in KINDS {
                        let mut out_p = vec![UNWRITTEN; n];
                        let mut out_t = vec![UNWRITTEN; k * n];
                        op.run(
                            level,
                            sa.operand(ka),
                            sb.operand(kb),
                            k,
                            &mut out_p,
                            &mut out_t,
                        )
                        .unwrap();
                        for i in 0..n {
                            let (a, b) = (sa.primal(ka, i), sb.primal(kb, i));
                            let what = || {
                                format!("{op:?} {level} n={n} k={k} {ka:?} {kb:?} i={i} a={a:e} b={b:e}")
                            };
                            assert_accepts(Expected::exact(op.primal(a, b)), out_p[i], what);
                            for j in 0..k {
                                let ta = sa.tangent(ka, j, i, n);
                                let tb = sb.tangent(kb, j, i, n);
                                assert_accepts(op.tangent(a, ta, b, tb), out_t[j * n + i], || {
                                    format!("{} j={j} ta={ta:?} tb={tb:?}", what())
                                });
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn add_matches_scalar_loop_at_every_level() {
    check_binary(BinOp::Add);
}

#[test]
fn sub_matches_scalar_loop_at_every_level() {
    check_binary(BinOp::Sub);
}

#[test]
fn mul_matches_scalar_loop_at_every_level() {
    check_binary(BinOp::Mul);
}

#[test]
fn div_matches_scalar_loop_at_every_level() {
    check_binary(BinOp::Div);
}

#[test]
fn binary_rule_matches_scalar_loop_at_every_level() {
    check_binary(BinOp::Atan2);
}

#[test]
fn constant_terms_are_left_out_not_multiplied_by_zero() {
    // x = inf with dx = 1, times the constant 3: d = 3 * dx, no `inf * 0` from the constant.
    let (p, t) = ([f64::INFINITY], [1.0]);
    let x = Operand::Array {
        primal: &p,
        tangent: &t,
    };
    let (mut out_p, mut out_t) = ([0.0], [0.0]);
    kernels::mul(x, Operand::ScalarConst(3.0), 1, &mut out_p, &mut out_t).unwrap();
    assert_eq!((out_p, out_t), ([f64::INFINITY], [3.0]));
    // 2 - x: tangent -dx; x / y with a scalar dual y = 2 + dy: (dx - (x/y) dy) / y.
    let (p, t) = ([1.0, 4.0], [1.0, 1.0, 0.0, 0.0]);
    let x = Operand::Array {
        primal: &p,
        tangent: &t,
    };
    let (mut out_p, mut out_t) = ([0.0; 2], [0.0; 4]);
    kernels::sub(Operand::ScalarConst(2.0), x, 2, &mut out_p, &mut out_t).unwrap();
    assert_eq!((out_p, out_t), ([1.0, -2.0], [-1.0, -1.0, -0.0, -0.0]));
    let y = Operand::Scalar {
        primal: 2.0,
        tangent: &[0.0, 1.0],
    };
    kernels::div(x, y, 2, &mut out_p, &mut out_t).unwrap();
    assert_eq!((out_p, out_t), ([0.5, 2.0], [0.5, 0.5, -0.25, -1.0]));
}

#[test]
fn two_constants_give_zero_tangents() {
    let mut out_t = vec![UNWRITTEN; 3 * 5];
    let mut out_p = vec![UNWRITTEN; 5];
    let c = [1.0, 2.0, 3.0, 4.0, 5.0];
    kernels::mul(
        Operand::ArrayConst(&c),
        Operand::ScalarConst(2.0),
        3,
        &mut out_p,
        &mut out_t,
    )
    .unwrap();
    assert_eq!(out_p, [2.0, 4.0, 6.0, 8.0, 10.0]);
    assert!(out_t.iter().all(|&x| x == 0.0));
}

/// `k` rows of `n` values spread `stride` apart, with NaN in the gaps (never to be read).
fn spread(t: &[f64], k: usize, n: usize, stride: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; if k == 0 { 0 } else { (k - 1) * stride + n }];
    for j in 0..k {
        out[j * stride..j * stride + n].copy_from_slice(&t[j * n..(j + 1) * n]);
    }
    out
}

#[test]
fn strided_rows_give_the_bits_of_contiguous_rows() {
    let ops = [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div, BinOp::Atan2];
    for level in Level::available() {
        for n in [1, 7, 256, 257] {
            for k in [0, 1, 3] {
                let mut rng = Rng::new((n * 17 + k) as u64);
                let (sa, sb) = (Side::new(&mut rng, n, k), Side::new(&mut rng, n, k));
                let (ra, rb) = (spread(&sa.t, k, n, n + 5), spread(&sb.t, k, n, 2 * n));
                let rows_a = Operand::Rows {
                    primal: &sa.p,
                    tangent: &ra,
                    stride: n + 5,
                };
                let rows_b = Operand::Rows {
                    primal: &sb.p,
                    tangent: &rb,
                    stride: 2 * n,
                };
                for op in ops {
                    for (x, y, cx, cy) in [
                        (
                            rows_a,
                            rows_b,
                            sa.operand(Kind::Array),
                            sb.operand(Kind::Array),
                        ),
                        (
                            rows_a,
                            sb.operand(Kind::ScalarConst),
                            sa.operand(Kind::Array),
                            sb.operand(Kind::ScalarConst),
                        ),
                        (
                            sa.operand(Kind::Scalar),
                            rows_b,
                            sa.operand(Kind::Scalar),
                            sb.operand(Kind::Array),
                        ),
                        (
                            sa.operand(Kind::ArrayConst),
                            rows_b,
                            sa.operand(Kind::ArrayConst),
                            sb.operand(Kind::Array),
                        ),
                    ] {
                        let (mut p1, mut t1) = (vec![UNWRITTEN; n], vec![UNWRITTEN; k * n]);
                        let (mut p2, mut t2) = (vec![UNWRITTEN; n], vec![UNWRITTEN; k * n]);
                        op.run(level, x, y, k, &mut p1, &mut t1).unwrap();
                        op.run(level, cx, cy, k, &mut p2, &mut t2).unwrap();
                        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&p1), bits(&p2), "{op:?} {level} n={n} k={k}");
                        assert_eq!(bits(&t1), bits(&t2), "{op:?} {level} n={n} k={k}");
                    }
                }
                let (mut d1, mut d2) = (vec![UNWRITTEN; k], vec![UNWRITTEN; k]);
                let v1 = kernels::dot_with_level(level, rows_a, rows_b, k, &mut d1).unwrap();
                let v2 = kernels::dot_with_level(
                    level,
                    sa.operand(Kind::Array),
                    sb.operand(Kind::Array),
                    k,
                    &mut d2,
                )
                .unwrap();
                assert_eq!(v1.to_bits(), v2.to_bits());
                assert_eq!(
                    d1.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    d2.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }
}

#[test]
fn strided_rows_of_the_wrong_length_or_stride_are_errors() {
    let (p, t) = ([1.0; 4], [1.0; 14]);
    let (mut out_p, mut out_t) = ([UNWRITTEN; 4], [UNWRITTEN; 8]);
    let ok = Operand::Rows {
        primal: &p,
        tangent: &t[..14],
        stride: 10,
    };
    assert!(kernels::add(ok, ok, 2, &mut out_p, &mut out_t).is_ok());
    for (tangent, stride) in [(&t[..13], 10), (&t[..], 3), (&t[..10], 10)] {
        let bad = Operand::Rows {
            primal: &p,
            tangent,
            stride,
        };
        let (mut out_p, mut out_t) = ([UNWRITTEN; 4], [UNWRITTEN; 8]);
        let err = kernels::add(ok, bad, 2, &mut out_p, &mut out_t).unwrap_err();
        assert!(
            matches!(
                err,
                KernelError::TangentRows {
                    arg: "b.tangent",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("stride"));
        assert_eq!(out_t, [UNWRITTEN; 8]);
    }
}

// ---------------------------------------------------------------------------------------------
// Reductions

/// Neumaier-compensated sum and the sum of magnitudes.
fn compensated_sum(xs: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (mut s, mut c, mut mag) = (0.0_f64, 0.0_f64, 0.0_f64);
    for x in xs {
        let t = s + x;
        c += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        s = t;
        mag += x.abs();
    }
    (s + c, mag)
}

/// A sum of `n` terms with magnitude `mag`, as any summation order may round it.
fn sum_expected(n: usize, (sum, mag): (f64, f64)) -> Expected {
    Expected {
        unfused: sum,
        fused: sum,
        scale: (n as f64 + 2.0) * mag,
    }
}

#[test]
fn sum_matches_compensated_sum_at_every_level() {
    for level in Level::available() {
        for n in LENGTHS {
            for k in KS {
                let mut rng = Rng::new((n * 17 + k) as u64);
                let p = rng.finite_values(n, 1e300);
                let t = rng.finite_values(k * n, 1e300);
                let mut out_t = vec![UNWRITTEN; k];
                let got = kernels::sum_with_level(level, &p, &t, k, &mut out_t).unwrap();
                let what = || format!("sum {level} n={n} k={k}");
                assert_accepts(
                    sum_expected(n, compensated_sum(p.iter().copied())),
                    got,
                    what,
                );
                for (j, &got) in out_t.iter().enumerate() {
                    let row = t[j * n..(j + 1) * n].iter().copied();
                    assert_accepts(sum_expected(n, compensated_sum(row)), got, || {
                        format!("{} j={j}", what())
                    });
                }
            }
        }
    }
}

#[test]
fn dot_matches_compensated_sum_at_every_level() {
    for level in Level::available() {
        for n in LENGTHS {
            for k in KS {
                let mut rng = Rng::new((n * 19 + k) as u64);
                let side = |rng: &mut Rng| Side {
                    p: rng.finite_values(n, 1e150),
                    t: rng.finite_values(k * n, 1e150),
                    sp: rng.uniform(),
                    st: rng.finite_values(k, 1e150),
                };
                let (sa, sb) = (side(&mut rng), side(&mut rng));
                for ka in KINDS {
                    for kb in KINDS {
                        let mut out_t = vec![UNWRITTEN; k];
                        let got = kernels::dot_with_level(
                            level,
                            sa.operand(ka),
                            sb.operand(kb),
                            k,
                            &mut out_t,
                        );
                        let what = || format!("dot {level} n={n} k={k} {ka:?} {kb:?}");
                        if !sa.operand(ka).is_array() && !sb.operand(kb).is_array() {
                            assert_eq!(got, Err(KernelError::NoArrayOperand), "{}", what());
                            continue;
                        }
                        let primal = (0..n).map(|i| sa.primal(ka, i) * sb.primal(kb, i));
                        assert_accepts(
                            sum_expected(2 * n, compensated_sum(primal)),
                            got.unwrap(),
                            what,
                        );
                        for (j, &got) in out_t.iter().enumerate() {
                            let terms = (0..n).flat_map(|i| {
                                let (a, b) = (sa.primal(ka, i), sb.primal(kb, i));
                                let ta = sa.tangent(ka, j, i, n).map_or(0.0, |ta| ta * b);
                                let tb = sb.tangent(kb, j, i, n).map_or(0.0, |tb| a * tb);
                                [ta, tb]
                            });
                            assert_accepts(
                                sum_expected(2 * n, compensated_sum(terms)),
                                got,
                                || format!("{} j={j}", what()),
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn reductions_propagate_nan_and_infinity() {
    for level in Level::available() {
        for n in [1, 5, 16, 300] {
            for (special, want) in [(f64::NAN, f64::NAN), (f64::INFINITY, f64::INFINITY)] {
                let mut p = vec![1.0; n];
                p[n / 2] = special;
                let mut out_t = [0.0];
                let got = kernels::sum_with_level(level, &p, &p, 1, &mut out_t).unwrap();
                assert_accepts(Expected::exact(want), got, || format!("sum {level} {n}"));
                assert_accepts(Expected::exact(want), out_t[0], || {
                    format!("sum {level} {n}")
                });
                let x = Operand::Array {
                    primal: &p,
                    tangent: &p,
                };
                let got =
                    kernels::dot_with_level(level, x, Operand::ScalarConst(2.0), 1, &mut out_t)
                        .unwrap();
                assert_accepts(Expected::exact(want), got, || format!("dot {level} {n}"));
                assert_accepts(Expected::exact(want), out_t[0], || {
                    format!("dot {level} {n}")
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn length_mismatches_are_errors_and_leave_outputs_alone() {
    let (p, t) = ([1.0; 5], [1.0; 10]);
    let mut out_p = [UNWRITTEN; 5];
    let mut out_t = [UNWRITTEN; 10];
    let sin = |x: f64| x.sin_cos();
    let x = Operand::Array {
        primal: &p,
        tangent: &t,
    };
    let short = Operand::Array {
        primal: &p[..4],
        tangent: &t[..8],
    };
    let cases: Vec<(Result<(), KernelError>, KernelError, &str)> = vec![
        (
            kernels::unary(sin, &p, &t[..9], 2, &mut out_p, &mut out_t),
            KernelError::TangentLength {
                arg: "t",
                k: 2,
                n: 5,
                found: 9,
            },
            "`t` has 9 values, expected k*n = 2*5 = 10",
        ),
        (
            kernels::unary(sin, &p, &t, 2, &mut out_p[..4], &mut out_t),
            KernelError::PrimalLength {
                arg: "out_p",
                expected: 5,
                found: 4,
            },
            "`out_p` has 4 values, expected n = 5",
        ),
        (
            kernels::unary(sin, &p, &t, 2, &mut out_p, &mut out_t[..9]),
            KernelError::TangentLength {
                arg: "out_t",
                k: 2,
                n: 5,
                found: 9,
            },
            "`out_t` has 9 values",
        ),
        (
            kernels::unary(sin, &p, &t, usize::MAX, &mut out_p, &mut out_t),
            KernelError::SizeOverflow {
                k: usize::MAX,
                n: 5,
            },
            "overflow",
        ),
        (
            kernels::unary_inplace(sin, &mut [1.0; 5], &mut [1.0; 9], 2),
            KernelError::TangentLength {
                arg: "t",
                k: 2,
                n: 5,
                found: 9,
            },
            "expected k*n",
        ),
        (
            kernels::add(short, x, 2, &mut out_p, &mut out_t),
            KernelError::PrimalLength {
                arg: "a.primal",
                expected: 5,
                found: 4,
            },
            "`a.primal` has 4 values",
        ),
        (
            kernels::mul(
                x,
                Operand::Array {
                    primal: &p,
                    tangent: &t[..9],
                },
                2,
                &mut out_p,
                &mut out_t,
            ),
            KernelError::TangentLength {
                arg: "b.tangent",
                k: 2,
                n: 5,
                found: 9,
            },
            "`b.tangent` has 9 values",
        ),
        (
            kernels::div(
                x,
                Operand::Scalar {
                    primal: 1.0,
                    tangent: &[1.0],
                },
                2,
                &mut out_p,
                &mut out_t,
            ),
            KernelError::TangentLength {
                arg: "b.tangent",
                k: 2,
                n: 1,
                found: 1,
            },
            "expected k*n = 2*1 = 2",
        ),
        (
            kernels::sub(x, x, 3, &mut out_p, &mut out_t),
            KernelError::TangentLength {
                arg: "a.tangent",
                k: 3,
                n: 5,
                found: 10,
            },
            "`a.tangent`",
        ),
        (
            kernels::binary(
                |a, b| (a + b, 1.0, 1.0),
                x,
                Operand::ArrayConst(&p[..4]),
                2,
                &mut out_p,
                &mut out_t,
            ),
            KernelError::PrimalLength {
                arg: "b.primal",
                expected: 5,
                found: 4,
            },
            "`b.primal`",
        ),
        (
            kernels::add(x, x, 2, &mut out_p, &mut out_t[..9]),
            KernelError::TangentLength {
                arg: "out_t",
                k: 2,
                n: 5,
                found: 9,
            },
            "`out_t`",
        ),
        (
            kernels::sum(&p, &t, 2, &mut out_t[..1]).map(drop),
            KernelError::PrimalLength {
                arg: "out_t",
                expected: 2,
                found: 1,
            },
            "`out_t` has 1 values, expected n = 2",
        ),
        (
            kernels::sum(&p, &t[..9], 2, &mut out_t[..2]).map(drop),
            KernelError::TangentLength {
                arg: "t",
                k: 2,
                n: 5,
                found: 9,
            },
            "`t`",
        ),
        (
            kernels::dot(x, short, 2, &mut out_t[..2]).map(drop),
            KernelError::PrimalLength {
                arg: "b.primal",
                expected: 5,
                found: 4,
            },
            "`b.primal`",
        ),
        (
            kernels::dot(
                Operand::ScalarConst(1.0),
                Operand::ScalarConst(2.0),
                0,
                &mut [],
            )
            .map(drop),
            KernelError::NoArrayOperand,
            "at least one array operand",
        ),
    ];
    for (got, want, message) in cases {
        assert_eq!(got, Err(want));
        let shown = want.to_string();
        assert!(
            shown.contains(message),
            "{shown:?} should contain {message:?}"
        );
    }
    assert!(out_p.iter().chain(&out_t).all(|&x| x == UNWRITTEN));
}

// ---------------------------------------------------------------------------------------------
// Dispatch

#[test]
fn levels_are_consistent() {
    let available = Level::available();
    assert_eq!(available[0], Level::Scalar);
    assert_eq!(*available.last().unwrap(), Level::best());
    assert_eq!(kernels::detected_level(), Level::best());
    for level in Level::ALL {
        assert_eq!(level.is_available(), available.contains(&level));
        if !level.is_available() {
            let got = kernels::add_with_level(
                level,
                Operand::ScalarConst(1.0),
                Operand::ScalarConst(1.0),
                0,
                &mut [0.0],
                &mut [],
            );
            assert_eq!(got, Err(KernelError::LevelUnavailable(level)));
        }
    }
}

/// The SIMD path was taken: on a CPU with AVX2+FMA (or AVX-512) the kernels dispatch to it.
#[test]
fn simd_level_is_used_where_the_cpu_has_it() {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        let v3 = is_x86_feature_detected!("avx")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("bmi1")
            && is_x86_feature_detected!("bmi2")
            && is_x86_feature_detected!("lzcnt")
            && is_x86_feature_detected!("popcnt");
        let v4 = v3
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512cd")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl");
        let want = if v4 {
            Level::V4
        } else if v3 {
            Level::V3
        } else {
            Level::Scalar
        };
        eprintln!("detected level: {}", kernels::detected_level());
        assert_eq!(kernels::detected_level(), want);
        assert_eq!(Level::V3.is_available(), v3);
        assert_eq!(Level::V4.is_available(), v4);
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    assert_eq!(kernels::detected_level(), Level::Scalar);
}

// ---------------------------------------------------------------------------------------------
// Fused expressions of several inputs
// ---------------------------------------------------------------------------------------------

/// A binary array kernel run with a given level (`kernels::add_with_level`, ...).
type BinaryKernel =
    fn(Level, Operand<'_>, Operand<'_>, usize, &mut [f64], &mut [f64]) -> Result<(), KernelError>;

/// Same bits, or both NaN (the sign and payload of a NaN are not specified).
fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Values that break elementwise code: signed zeros, tiny and huge magnitudes, infinities, NaN.
fn awkward(n: usize, seed: u64) -> Vec<f64> {
    const SPECIAL: [f64; 12] = [
        0.0, -0.0, 1e-310, -1e-300, 1e300, -1e155, 1e155, 710.0, -745.5, 1.0, -1.0, 3.5e-8,
    ];
    let mut s = seed;
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            match i % 7 {
                0 => SPECIAL[(s >> 3) as usize % SPECIAL.len()],
                1 if i % 5 == 0 => f64::INFINITY,
                2 if i % 11 == 0 => f64::NAN,
                _ => (u - 0.5) * 8.0,
            }
        })
        .collect()
}

/// `sin(x) exp(-(x x)) + ln_1p(x x) / y - 1.5 / (2 (3 - y) (1 / x) sqrt(y y) cos(y) expm1(x)
/// / 0.7) - 0.25` as one [`kernels::Fusion`] of the inputs `x`, `y`: the program the fusion
/// tests run against the array kernels instruction by instruction.
fn fused_test_program() -> (kernels::Fusion, kernels::FusedVar) {
    use duals::rules::UnaryRule as U;
    let mut f = kernels::Fusion::new(2);
    let (fx, fy) = (f.input(0).unwrap(), f.input(1).unwrap());
    let xx = f.mul(fx, fx);
    let neg = f.neg(xx);
    let e = f.unary(U::Exp, neg).unwrap();
    let s = f.unary(U::Sin, fx).unwrap();
    let se = f.mul(s, e);
    let l = f.unary(U::Ln1p, xx).unwrap();
    let ly = f.div(l, fy);
    let sum = f.add(se, ly);
    let three = f.const_sub(3.0, fy);
    let twice = f.mul_const(three, 2.0);
    let r = f.unary(U::Recip, fx).unwrap();
    let yy = f.mul(fy, fy);
    let q = f.unary(U::Sqrt, yy).unwrap();
    let cy = f.unary(U::Cos, fy).unwrap();
    let em = f.unary(U::ExpM1, fx).unwrap();
    let t1 = f.mul(twice, r);
    let t2 = f.mul(t1, q);
    let t3 = f.mul(t2, cy);
    let t4 = f.mul(t3, em);
    let t5 = f.div_const(t4, 0.7);
    let t6 = f.const_div(1.5, t5);
    let t7 = f.sub(sum, t6);
    let out = f.sub_const(t7, 0.25);
    (f, out)
}

/// The program of [`fused_test_program`] through a `Fusion` equals the array kernels run one at
/// a time, bit for bit, at every vector level, for lengths around the vector widths.
#[test]
fn fusion_of_two_inputs_matches_the_array_kernels() {
    use duals::rules::UnaryRule as U;
    let arr = |p: &'static [f64], t: &'static [f64]| Operand::Array {
        primal: p,
        tangent: t,
    };
    for level in Level::available() {
        if level == Level::Scalar {
            // The elementary functions run the table's libm calls at the scalar level.
            continue;
        }
        for n in [0usize, 1, 3, 7, 8, 9, 15, 16, 17, 31, 64, 1037] {
            let leak = |v: Vec<f64>| -> &'static [f64] { Box::leak(v.into_boxed_slice()) };
            let (xp, xt) = (leak(awkward(n, 1)), leak(awkward(n, 2)));
            let (yp, yt) = (leak(awkward(n, 3)), leak(awkward(n, 4)));
            // The array kernels, one instruction at a time.
            let new = || (vec![0.0; n], vec![0.0; n]);
            let un = |rule, (p, t): (&'static [f64], &'static [f64])| {
                let (mut op, mut ot) = new();
                kernels::unary_rule_with_level(level, rule, p, t, 1, &mut op, &mut ot).unwrap();
                (leak(op), leak(ot))
            };
            let bin = |kernel: BinaryKernel, a: Operand<'static>, b: Operand<'static>| {
                let (mut op, mut ot) = new();
                kernel(level, a, b, 1, &mut op, &mut ot).unwrap();
                (leak(op), leak(ot))
            };
            let a = |(p, t): (&'static [f64], &'static [f64])| arr(p, t);
            let c = Operand::ScalarConst;
            let x = (xp, xt);
            let y = (yp, yt);
            let xx_k = bin(kernels::mul_with_level, a(x), a(x));
            let neg = (
                leak(xx_k.0.iter().map(|v| -v).collect()),
                leak(xx_k.1.iter().map(|v| -v).collect()),
            );
            let e = un(U::Exp, neg);
            let s = un(U::Sin, x);
            let se_k = bin(kernels::mul_with_level, a(s), a(e));
            let l = un(U::Ln1p, xx_k);
            let ly_k = bin(kernels::div_with_level, a(l), a(y));
            let sum_k = bin(kernels::add_with_level, a(se_k), a(ly_k));
            let three_k = bin(kernels::sub_with_level, c(3.0), a(y));
            let twice_k = bin(kernels::mul_with_level, c(2.0), a(three_k));
            let r = un(U::Recip, x);
            let yy_k = bin(kernels::mul_with_level, a(y), a(y));
            let q = un(U::Sqrt, yy_k);
            let cy = un(U::Cos, y);
            let em = un(U::ExpM1, x);
            let t1_k = bin(kernels::mul_with_level, a(twice_k), a(r));
            let t2_k = bin(kernels::mul_with_level, a(t1_k), a(q));
            let t3_k = bin(kernels::mul_with_level, a(t2_k), a(cy));
            let t4_k = bin(kernels::mul_with_level, a(t3_k), a(em));
            let t5_k = bin(kernels::div_with_level, a(t4_k), c(0.7));
            let t6_k = bin(kernels::div_with_level, c(1.5), a(t5_k));
            let t7_k = bin(kernels::sub_with_level, a(sum_k), a(t6_k));
            let want = bin(kernels::sub_with_level, a(t7_k), c(0.25));
            // The same as one fused expression.
            let (f, out) = fused_test_program();
            let (mut gp, mut gt) = new();
            let finite = f
                .eval_with_level(
                    level,
                    out,
                    &[(xp, Some(xt)), (yp, Some(yt))],
                    &mut gp,
                    &mut gt,
                )
                .unwrap();
            for i in 0..n {
                assert!(
                    same_bits(gp[i], want.0[i]) && same_bits(gt[i], want.1[i]),
                    "{level:?} n = {n} at {i}: x = {:e}, y = {:e}: fused ({:e}, {:e}), kernels \
                     ({:e}, {:e})",
                    xp[i],
                    yp[i],
                    gp[i],
                    gt[i],
                    want.0[i],
                    want.1[i]
                );
            }
            // The finite check: every primal of every `+ - * /` result.
            let arithmetic = [
                xx_k, se_k, ly_k, sum_k, three_k, twice_k, yy_k, t1_k, t2_k, t3_k, t4_k, t5_k,
                t6_k, t7_k, want,
            ];
            let all_finite = arithmetic.iter().all(|r| r.0.iter().all(|v| v.is_finite()));
            assert_eq!(finite, all_finite, "{level:?} n = {n}");
        }
    }
}

/// The program of [`fused_test_program`] with `k` tangent rows (`Fusion::eval_rows`, the inputs' rows `n + 3` apart as in a view)
/// equals the array kernels with `k` rows run one at a time, bit for bit, at every vector level,
/// for lengths around the vector widths and the block of points.
#[test]
fn fusion_with_several_rows_matches_the_array_kernels() {
    use duals::rules::UnaryRule as U;
    let arr = |p: &'static [f64], t: &'static [f64]| Operand::Array {
        primal: p,
        tangent: t,
    };
    for level in Level::available() {
        if level == Level::Scalar {
            // The elementary functions run the table's libm calls at the scalar level.
            continue;
        }
        for (n, k) in [
            (1usize, 2usize),
            (3, 3),
            (7, 9),
            (8, 2),
            (9, 8),
            (17, 5),
            (64, 3),
            (1037, 2),
            (300, 128),
        ] {
            let stride = n + 3;
            let leak = |v: Vec<f64>| -> &'static [f64] { Box::leak(v.into_boxed_slice()) };
            let (xp, xt) = (leak(awkward(n, 1)), leak(awkward((k - 1) * stride + n, 2)));
            let (yp, yt) = (leak(awkward(n, 3)), leak(awkward((k - 1) * stride + n, 4)));
            // The rows of the inputs together, for the unary kernels (which read `k * n`).
            let packed = |t: &[f64]| -> &'static [f64] {
                leak(t.chunks(stride).flat_map(|r| r[..n].to_vec()).collect())
            };
            let (xt_packed, yt_packed) = (packed(xt), packed(yt));
            // The array kernels, one instruction at a time.
            let new = || (vec![0.0; n], vec![0.0; k * n]);
            let un = |rule, (p, t): (&'static [f64], &'static [f64])| {
                let (mut op, mut ot) = new();
                kernels::unary_rule_with_level(level, rule, p, t, k, &mut op, &mut ot).unwrap();
                (leak(op), leak(ot))
            };
            let bin = |kernel: BinaryKernel, a: Operand<'static>, b: Operand<'static>| {
                let (mut op, mut ot) = new();
                kernel(level, a, b, k, &mut op, &mut ot).unwrap();
                (leak(op), leak(ot))
            };
            let a = |(p, t): (&'static [f64], &'static [f64])| arr(p, t);
            let c = Operand::ScalarConst;
            let rows = |p: &'static [f64], t: &'static [f64]| Operand::Rows {
                primal: p,
                tangent: t,
                stride,
            };
            let (x, y) = ((xp, xt_packed), (yp, yt_packed));
            let (rx, ry) = (rows(xp, xt), rows(yp, yt));
            let xx_k = bin(kernels::mul_with_level, rx, rx);
            let neg = (
                leak(xx_k.0.iter().map(|v| -v).collect()),
                leak(xx_k.1.iter().map(|v| -v).collect()),
            );
            let e = un(U::Exp, neg);
            let s = un(U::Sin, x);
            let se_k = bin(kernels::mul_with_level, a(s), a(e));
            let l = un(U::Ln1p, xx_k);
            let ly_k = bin(kernels::div_with_level, a(l), ry);
            let sum_k = bin(kernels::add_with_level, a(se_k), a(ly_k));
            let three_k = bin(kernels::sub_with_level, c(3.0), ry);
            let twice_k = bin(kernels::mul_with_level, c(2.0), a(three_k));
            let r = un(U::Recip, x);
            let yy_k = bin(kernels::mul_with_level, ry, a(y));
            let q = un(U::Sqrt, yy_k);
            let cy = un(U::Cos, y);
            let em = un(U::ExpM1, x);
            let t1_k = bin(kernels::mul_with_level, a(twice_k), a(r));
            let t2_k = bin(kernels::mul_with_level, a(t1_k), a(q));
            let t3_k = bin(kernels::mul_with_level, a(t2_k), a(cy));
            let t4_k = bin(kernels::mul_with_level, a(t3_k), a(em));
            let t5_k = bin(kernels::div_with_level, a(t4_k), c(0.7));
            let t6_k = bin(kernels::div_with_level, c(1.5), a(t5_k));
            let t7_k = bin(kernels::sub_with_level, a(sum_k), a(t6_k));
            let want = bin(kernels::sub_with_level, a(t7_k), c(0.25));
            // The same as one fused expression.
            let (f, out) = fused_test_program();
            let (mut gp, mut gt) = new();
            let finite = f
                .eval_rows_with_level(
                    level,
                    out,
                    &[
                        kernels::FusedRows {
                            primal: xp,
                            tangent: xt,
                            stride,
                        },
                        kernels::FusedRows {
                            primal: yp,
                            tangent: yt,
                            stride,
                        },
                    ],
                    &mut gp,
                    &mut gt,
                )
                .unwrap();
            for i in 0..k * n {
                assert!(
                    (i >= n || same_bits(gp[i], want.0[i])) && same_bits(gt[i], want.1[i]),
                    "{level:?} n = {n}, k = {k} at {i}: fused {:e}, kernels {:e}",
                    gt[i],
                    want.1[i]
                );
            }
            // The finite check: every primal of every `+ - * /` result.
            let arithmetic = [
                xx_k, se_k, ly_k, sum_k, three_k, twice_k, yy_k, t1_k, t2_k, t3_k, t4_k, t5_k,
                t6_k, t7_k, want,
            ];
            let all_finite = arithmetic.iter().all(|r| r.0.iter().all(|v| v.is_finite()));
            assert_eq!(finite, all_finite, "{level:?} n = {n}, k = {k}");
        }
    }
}

/// The finite check sees every `+ - * /` result, in full vectors and in the tail, and ignores
/// the padding lanes of the tail.
#[test]
fn fusion_reports_non_finite_arithmetic() {
    use duals::rules::UnaryRule as U;
    for level in Level::available() {
        for n in [1usize, 5, 8, 13, 64] {
            // (1 / x) + 1 at x = 1 everywhere is finite; the padding (x = 0) would not be.
            let mut f = kernels::Fusion::new(1);
            let x = f.input(0).unwrap();
            let r = f.unary(U::Recip, x).unwrap();
            let out = f.add_const(r, 1.0);
            let (mut p, mut t) = (vec![0.0; n], vec![0.0; n]);
            let ones = vec![1.0; n];
            assert!(f
                .eval_with_level(level, out, &[(&ones, None)], &mut p, &mut t)
                .unwrap());
            // exp(x) * 0 at one x = 1000 (an infinite product input): not finite.
            for bad in [0, n - 1] {
                let mut g = kernels::Fusion::new(1);
                let x = g.input(0).unwrap();
                let e = g.unary(U::Exp, x).unwrap();
                let z = g.mul_const(e, 0.0);
                let out = g.neg(z);
                let mut xs = vec![1.0; n];
                xs[bad] = 1000.0;
                assert!(!g
                    .eval_with_level(level, out, &[(&xs, Some(&ones))], &mut p, &mut t)
                    .unwrap());
            }
        }
    }
}

#[test]
fn fusion_rejects_foreign_arguments() {
    let f = kernels::Fusion::new(2);
    let x = f.input(0).unwrap();
    assert!(f.input(2).is_none());
    let (mut p, mut t) = (vec![0.0; 3], vec![0.0; 3]);
    let v = [1.0; 3];
    let err = f.eval(x, &[(&v, Some(&v))], &mut p, &mut t).unwrap_err();
    assert!(matches!(
        err,
        KernelError::FusedArguments {
            expected: 2,
            found: 1
        }
    ));
    let err = f
        .eval(x, &[(&v, None), (&v[..2], Some(&v))], &mut p, &mut t)
        .unwrap_err();
    assert!(matches!(err, KernelError::PrimalLength { .. }));
    let mut g = kernels::Fusion::new(1);
    let gx = g.input(0).unwrap();
    let _ = g.neg(gx);
    let h = g.neg(gx);
    let mut small = kernels::Fusion::new(1);
    let sx = small.input(0).unwrap();
    let _ = small.mul(sx, h); // a register of another expression
    assert!(small.eval(h, &[(&v, None)], &mut p, &mut t).is_err());
}

/// A tangent given as `None` is 1 at every point: the same results as a stream of ones; and
/// `eval_tangent` gives the tangents of `eval`.
#[test]
fn fusion_unit_tangent_is_a_stream_of_ones() {
    use duals::rules::UnaryRule as U;
    let mut f = kernels::Fusion::new(2);
    let (x, y) = (f.input(0).unwrap(), f.input(1).unwrap());
    let s = f.unary(U::Sin, x).unwrap();
    let xy = f.mul(x, y);
    let e = f.unary(U::Exp, xy).unwrap();
    let out = f.div(s, e);
    for n in [1usize, 7, 8, 9, 100] {
        let (xs, ys) = (awkward(n, 5), awkward(n, 6));
        let (ones, yt) = (vec![1.0; n], awkward(n, 7));
        let (mut a, mut at) = (vec![0.0; n], vec![0.0; n]);
        let (mut b, mut bt) = (vec![0.0; n], vec![0.0; n]);
        let fa = f.eval(out, &[(&xs, None), (&ys, Some(&yt))], &mut a, &mut at);
        let fb = f.eval(
            out,
            &[(&xs, Some(&ones)), (&ys, Some(&yt))],
            &mut b,
            &mut bt,
        );
        let mut ct = vec![0.0; n];
        let fc = f.eval_tangent(out, &[(&xs, None), (&ys, Some(&yt))], &mut ct);
        let fa = fa.unwrap();
        assert_eq!(fa, fb.unwrap());
        assert_eq!(fa, fc.unwrap());
        for i in 0..n {
            assert!(same_bits(at[i], ct[i]), "n = {n} at {i}");
            assert!(
                same_bits(a[i], b[i]) && same_bits(at[i], bt[i]),
                "n = {n} at {i}"
            );
        }
    }
}
