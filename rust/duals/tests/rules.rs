//! The rule table tests itself.
//!
//! Every row of `tests/reference/{unary,binary}.csv` (SymPy + mpmath at high precision, see the
//! README there) is evaluated on every number type: `f64`, `Dual64`, `DualVec64<3>`,
//! `HyperDual64`, `HyperDualVec64<2, 2>`, `Dual2_64`, and nested duals. Each value and derivative
//! is compared with the reference in ulps. A second group of tests checks that the table and the
//! reference data cover each other, that the `f32` types agree with the reference to `f32`
//! precision, and the documented behaviour at special points (zeros, NaN, infinities,
//! non-differentiable functions, `min`/`max`, `%`).
//!
//! Run with `--nocapture` to see the largest error per number type.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use duals::{
    Dual, Dual2, Dual2_64, Dual32, Dual64, DualNum, DualVec32, DualVec64, HyperDual, HyperDual64,
    HyperDualVec, HyperDualVec64, Real,
};

const UNARY_CSV: &str = include_str!("reference/unary.csv");
const BINARY_CSV: &str = include_str!("reference/binary.csv");

/// Allowed error in ulps for values and first derivatives.
const TOL_FIRST: f64 = 8.0;
/// Allowed error in ulps for second derivatives: their formulas combine several rounded terms
/// (and nested duals differentiate the first-derivative formula instead of using the second).
const TOL_SECOND: f64 = 24.0;

// ---------------------------------------------------------------------------------------------
// Reference data
// ---------------------------------------------------------------------------------------------

/// One row of a reference file: `args` is `[x]` or `[x, y]`; `want` is `[f, d1, d2]` or
/// `[f, dx, dy, dxx, dxy, dyy]`.
#[derive(Clone, Debug)]
struct Row {
    line: usize,
    name: String,
    param: Option<f64>,
    args: Vec<f64>,
    want: Vec<f64>,
}

impl Row {
    fn unary(&self) -> bool {
        self.args.len() == 1
    }

    fn point(&self) -> String {
        let p = self
            .param
            .map(|p| format!(" (param {p:?})"))
            .unwrap_or_default();
        let args: Vec<String> = self.args.iter().map(|a| format!("{a:?}")).collect();
        format!("{}({}){p} [line {}]", self.name, args.join(", "), self.line)
    }
}

const UNARY_PARTS: [&str; 3] = ["f", "d1", "d2"];
const BINARY_PARTS: [&str; 6] = ["f", "dx", "dy", "dxx", "dxy", "dyy"];

fn num(s: &str, line: usize) -> f64 {
    s.parse()
        .unwrap_or_else(|e| panic!("line {line}: `{s}` is not a number: {e}"))
}

fn parse_unary() -> Vec<Row> {
    let mut lines = UNARY_CSV.lines().enumerate();
    assert_eq!(lines.next().map(|l| l.1), Some("name,param,x,f,d1,d2"));
    lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let c: Vec<&str> = l.split(',').collect();
            assert_eq!(c.len(), 6, "unary.csv line {}: {l}", i + 1);
            Row {
                line: i + 1,
                name: c[0].to_string(),
                param: (!c[1].is_empty()).then(|| num(c[1], i + 1)),
                args: vec![num(c[2], i + 1)],
                want: c[3..].iter().map(|s| num(s, i + 1)).collect(),
            }
        })
        .collect()
}

fn parse_binary() -> Vec<Row> {
    let mut lines = BINARY_CSV.lines().enumerate();
    assert_eq!(
        lines.next().map(|l| l.1),
        Some("name,x,y,f,dx,dy,dxx,dxy,dyy")
    );
    lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let c: Vec<&str> = l.split(',').collect();
            assert_eq!(c.len(), 9, "binary.csv line {}: {l}", i + 1);
            Row {
                line: i + 1,
                name: c[0].to_string(),
                param: None,
                args: vec![num(c[1], i + 1), num(c[2], i + 1)],
                want: c[3..].iter().map(|s| num(s, i + 1)).collect(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The functions by name, generically over the number type
// ---------------------------------------------------------------------------------------------

/// The unary functions of the table, by their name in `unary.csv`.
const UNARY_NAMES: [&str; 27] = [
    "recip", "powi", "powf", "sqrt", "cbrt", "exp", "exp2", "exp_m1", "ln", "log2", "log10",
    "ln_1p", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh",
    "atanh", "abs", "erf", "erfc",
];
/// The binary functions of the table, by their name in `binary.csv`.
const BINARY_NAMES: [&str; 3] = ["pow", "atan2", "hypot"];

fn apply_unary<F: Real, D: DualNum<F>>(name: &str, param: Option<f64>, x: D) -> D {
    let p = || param.unwrap_or_else(|| panic!("`{name}` needs a parameter"));
    match name {
        "recip" => x.recip(),
        "powi" => {
            let n = p();
            assert_eq!(n, n.trunc(), "powi needs an integer exponent");
            x.powi(n as i32)
        }
        "powf" => x.powf(F::from_f64(p())),
        "sqrt" => x.sqrt(),
        "cbrt" => x.cbrt(),
        "exp" => x.exp(),
        "exp2" => x.exp2(),
        "exp_m1" => x.exp_m1(),
        "ln" => x.ln(),
        "log2" => x.log2(),
        "log10" => x.log10(),
        "ln_1p" => x.ln_1p(),
        "sin" => x.sin(),
        "cos" => x.cos(),
        "tan" => x.tan(),
        "asin" => x.asin(),
        "acos" => x.acos(),
        "atan" => x.atan(),
        "sinh" => x.sinh(),
        "cosh" => x.cosh(),
        "tanh" => x.tanh(),
        "asinh" => x.asinh(),
        "acosh" => x.acosh(),
        "atanh" => x.atanh(),
        "abs" => x.abs(),
        "erf" => x.erf(),
        "erfc" => x.erfc(),
        _ => panic!("unknown unary function `{name}`: add it to apply_unary and UNARY_NAMES"),
    }
}

fn apply_binary<F: Real, D: DualNum<F>>(name: &str, x: D, y: D) -> D {
    match name {
        "pow" => x.powd(y),
        "atan2" => x.atan2(y),
        "hypot" => x.hypot(y),
        _ => panic!("unknown binary function `{name}`: add it to apply_binary and BINARY_NAMES"),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation on every number type
// ---------------------------------------------------------------------------------------------

/// What a computed part should equal: reference part `i` (`f`, `d1`, … in the row's order), or
/// exactly zero (a direction that was not seeded).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    Ref(usize),
    Zero,
}

/// One computed part: where it was read from, its value, what it should be.
#[derive(Clone, Debug)]
struct Part {
    label: String,
    got: f64,
    want: Want,
}

fn part(label: &str, got: f64, want: Want) -> Part {
    Part {
        label: label.to_string(),
        got,
        want,
    }
}

use Want::{Ref, Zero};

/// A number type under test: its name and how to read every part out of it at a row.
struct Probe {
    ty: &'static str,
    eval: fn(&Row) -> Vec<Part>,
}

fn u<D: DualNum<f64>>(r: &Row, x: D) -> D {
    apply_unary::<f64, D>(&r.name, r.param, x)
}

fn b<D: DualNum<f64>>(r: &Row, x: D, y: D) -> D {
    apply_binary::<f64, D>(&r.name, x, y)
}

/// `Dual<Dual64, f64, 1>` with `x` seeded in both levels: `re.eps`, `eps.re` are `f'`,
/// `eps.eps` is `f''`.
type Nested = Dual<Dual64, f64, 1>;
/// Nested vector duals for two variables: `eps[i].eps[j]` is the Hessian.
type NestedVec2 = Dual<DualVec64<2>, f64, 2>;

const UNARY_PROBES: &[Probe] = &[
    Probe {
        ty: "f64",
        eval: |r| vec![part("value", u(r, r.args[0]), Ref(0))],
    },
    Probe {
        ty: "Dual64",
        eval: |r| {
            let y = u(r, Dual64::variable(r.args[0]));
            vec![part("re", y.re, Ref(0)), part("eps[0]", y.eps[0], Ref(1))]
        },
    },
    Probe {
        ty: "DualVec64<3>",
        eval: |r| {
            let y = u(r, DualVec64::<3>::new(r.args[0], [0.0, 1.0, -1.0]));
            vec![
                part("re", y.re, Ref(0)),
                part("eps[0]", y.eps[0], Zero),
                part("eps[1]", y.eps[1], Ref(1)),
                part("-eps[2]", -y.eps[2], Ref(1)),
            ]
        },
    },
    Probe {
        ty: "HyperDual64",
        eval: |r| {
            let y = u(r, HyperDual64::variable(r.args[0]));
            vec![
                part("re", y.re, Ref(0)),
                part("eps1", y.e1(), Ref(1)),
                part("eps2", y.e2(), Ref(1)),
                part("eps12", y.e12(), Ref(2)),
            ]
        },
    },
    Probe {
        ty: "HyperDualVec64<2,2>",
        eval: |r| {
            // ε₁ along [1, 0], ε₂ along [0, 1]: only eps12[0][1] sees f''.
            let x = HyperDualVec64::<2, 2>::new(r.args[0], [1.0, 0.0], [0.0, 1.0], [[0.0; 2]; 2]);
            let y = u(r, x);
            vec![
                part("re", y.re, Ref(0)),
                part("eps1[0]", y.eps1[0], Ref(1)),
                part("eps1[1]", y.eps1[1], Zero),
                part("eps2[0]", y.eps2[0], Zero),
                part("eps2[1]", y.eps2[1], Ref(1)),
                part("eps12[0][0]", y.eps12[0][0], Zero),
                part("eps12[0][1]", y.eps12[0][1], Ref(2)),
                part("eps12[1][0]", y.eps12[1][0], Zero),
                part("eps12[1][1]", y.eps12[1][1], Zero),
            ]
        },
    },
    Probe {
        ty: "Dual2_64<1>",
        eval: |r| {
            let y = u(r, Dual2_64::<1>::seeded(r.args[0], 0));
            vec![
                part("re", y.re, Ref(0)),
                part("v1[0]", y.v1[0], Ref(1)),
                part("v2[0][0]", y.v2[0][0], Ref(2)),
            ]
        },
    },
    Probe {
        ty: "Dual<Dual64,f64,1>",
        eval: |r| {
            let x = Nested::new(Dual64::variable(r.args[0]), [Dual64::constant(1.0)]);
            let y = u(r, x);
            vec![
                part("re.re", y.re.re, Ref(0)),
                part("re.eps[0]", y.re.eps[0], Ref(1)),
                part("eps[0].re", y.eps[0].re, Ref(1)),
                part("eps[0].eps[0]", y.eps[0].eps[0], Ref(2)),
            ]
        },
    },
];

const BINARY_PROBES: &[Probe] = &[
    Probe {
        ty: "f64",
        eval: |r| vec![part("value", b(r, r.args[0], r.args[1]), Ref(0))],
    },
    Probe {
        ty: "DualVec64<2>",
        eval: |r| {
            let x = DualVec64::<2>::seeded(r.args[0], 0);
            let y = DualVec64::<2>::seeded(r.args[1], 1);
            let z = b(r, x, y);
            vec![
                part("re", z.re, Ref(0)),
                part("eps[0]", z.eps[0], Ref(1)),
                part("eps[1]", z.eps[1], Ref(2)),
            ]
        },
    },
    Probe {
        ty: "HyperDual64",
        eval: |r| {
            // Three evaluations: x in both directions, y in both, x in ε₁ and y in ε₂.
            let var = HyperDual64::variable;
            let cst = HyperDual64::constant;
            let xx = b(r, var(r.args[0]), cst(r.args[1]));
            let yy = b(r, cst(r.args[0]), var(r.args[1]));
            let x1 = HyperDual64::new(r.args[0], [1.0], [0.0], [[0.0]]);
            let y2 = HyperDual64::new(r.args[1], [0.0], [1.0], [[0.0]]);
            let xy = b(r, x1, y2);
            vec![
                part("re", xx.re, Ref(0)),
                part("(x,x) eps1", xx.e1(), Ref(1)),
                part("(x,x) eps2", xx.e2(), Ref(1)),
                part("(x,x) eps12", xx.e12(), Ref(3)),
                part("(y,y) eps1", yy.e1(), Ref(2)),
                part("(y,y) eps2", yy.e2(), Ref(2)),
                part("(y,y) eps12", yy.e12(), Ref(5)),
                part("(x,y) eps1", xy.e1(), Ref(1)),
                part("(x,y) eps2", xy.e2(), Ref(2)),
                part("(x,y) eps12", xy.e12(), Ref(4)),
            ]
        },
    },
    Probe {
        ty: "Dual2_64<2>",
        eval: |r| {
            let x = Dual2_64::<2>::seeded(r.args[0], 0);
            let y = Dual2_64::<2>::seeded(r.args[1], 1);
            let z = b(r, x, y);
            vec![
                part("re", z.re, Ref(0)),
                part("v1[0]", z.v1[0], Ref(1)),
                part("v1[1]", z.v1[1], Ref(2)),
                part("v2[0][0]", z.v2[0][0], Ref(3)),
                part("v2[0][1]", z.v2[0][1], Ref(4)),
                part("v2[1][0]", z.v2[1][0], Ref(4)),
                part("v2[1][1]", z.v2[1][1], Ref(5)),
            ]
        },
    },
    Probe {
        ty: "HyperDualVec64<2,2>",
        eval: |r| {
            let x = HyperDualVec64::<2, 2>::new(r.args[0], [1.0, 0.0], [1.0, 0.0], [[0.0; 2]; 2]);
            let y = HyperDualVec64::<2, 2>::new(r.args[1], [0.0, 1.0], [0.0, 1.0], [[0.0; 2]; 2]);
            let z = b(r, x, y);
            vec![
                part("re", z.re, Ref(0)),
                part("eps1[0]", z.eps1[0], Ref(1)),
                part("eps1[1]", z.eps1[1], Ref(2)),
                part("eps2[0]", z.eps2[0], Ref(1)),
                part("eps2[1]", z.eps2[1], Ref(2)),
                part("eps12[0][0]", z.eps12[0][0], Ref(3)),
                part("eps12[0][1]", z.eps12[0][1], Ref(4)),
                part("eps12[1][0]", z.eps12[1][0], Ref(4)),
                part("eps12[1][1]", z.eps12[1][1], Ref(5)),
            ]
        },
    },
    Probe {
        ty: "Dual<DualVec64<2>,f64,2>",
        eval: |r| {
            let (one, zero) = (DualVec64::<2>::constant(1.0), DualVec64::<2>::constant(0.0));
            let x = NestedVec2::new(DualVec64::seeded(r.args[0], 0), [one, zero]);
            let y = NestedVec2::new(DualVec64::seeded(r.args[1], 1), [zero, one]);
            let z = b(r, x, y);
            vec![
                part("re.re", z.re.re, Ref(0)),
                part("re.eps[0]", z.re.eps[0], Ref(1)),
                part("re.eps[1]", z.re.eps[1], Ref(2)),
                part("eps[0].re", z.eps[0].re, Ref(1)),
                part("eps[1].re", z.eps[1].re, Ref(2)),
                part("eps[0].eps[0]", z.eps[0].eps[0], Ref(3)),
                part("eps[0].eps[1]", z.eps[0].eps[1], Ref(4)),
                part("eps[1].eps[0]", z.eps[1].eps[0], Ref(4)),
                part("eps[1].eps[1]", z.eps[1].eps[1], Ref(5)),
            ]
        },
    },
];

// ---------------------------------------------------------------------------------------------
// Comparison in ulps, and a record of the worst case per type
// ---------------------------------------------------------------------------------------------

/// Spacing of the doubles at `|v|` (the step to the next double away from zero).
fn ulp64(v: f64) -> f64 {
    let a = v.abs();
    a.next_up() - a
}

/// Spacing of the `f32`s at `|v|`.
fn ulp32(v: f32) -> f64 {
    let a = v.abs();
    f64::from(a.next_up()) - f64::from(a)
}

/// Error of `got` against `want` in units of `ulp(want)`; infinite for a wrong zero, NaN or
/// infinity. `0 == -0`.
fn ulps_in(got: f64, want: f64, ulp: f64) -> f64 {
    if got == want {
        0.0
    } else if !got.is_finite() || !want.is_finite() {
        f64::INFINITY
    } else {
        (got - want).abs() / ulp
    }
}

/// The worst error seen per (type, derivative order).
#[derive(Default)]
struct Worst(BTreeMap<(String, usize), (f64, String)>);

impl Worst {
    fn record(&mut self, ty: &str, order: usize, ulps: f64, at: impl FnOnce() -> String) {
        let e = self
            .0
            .entry((ty.to_string(), order))
            .or_insert((0.0, String::new()));
        if ulps > e.0 || e.1.is_empty() {
            *e = (ulps, at());
        }
    }

    fn print(&self, title: &str) {
        println!("{title}: largest error in ulps per type and derivative order");
        for ((ty, order), (ulps, at)) in &self.0 {
            println!("  {ty:<26} order {order}: {ulps:>6.2} ulps at {at}");
        }
    }
}

/// Derivative order of part `i` of a row (`0` value, `1` first, `2` second).
fn order(unary: bool, i: usize) -> usize {
    match (unary, i) {
        (_, 0) => 0,
        (true, 1) | (false, 1) | (false, 2) => 1,
        _ => 2,
    }
}

fn tolerance(order: usize) -> f64 {
    if order < 2 {
        TOL_FIRST
    } else {
        TOL_SECOND
    }
}

/// Known limits of nested duals, which differentiate the *first*-derivative formula in dual
/// arithmetic where the other types use the second-derivative entry of the table. At these rows
/// second derivatives of the named type beyond the tolerance are reported, not failed (values
/// and first derivatives are still compared): `(type, function, arguments, why)`.
const NESTED_LIMITS: &[(&str, &str, &[f64], &str)] = &[
    (
        "Dual<Dual64,f64,1>",
        "atan",
        &[1e100],
        "d/da 1/(1+a²) goes through 1/(1+a²)² = 1e-400, which underflows to 0",
    ),
    (
        "Dual<Dual64,f64,1>",
        "atan",
        &[-1e100],
        "d/da 1/(1+a²) goes through 1/(1+a²)² = 1e-400, which underflows to 0",
    ),
    (
        "Dual<DualVec64<2>,f64,2>",
        "hypot",
        &[-2.5, -0.001],
        "d/da (a/h) = (1 - (a/h)²)/h cancels for |b| << |a| (dxx = b²/h³ directly is exact)",
    ),
    (
        "Dual<DualVec64<2>,f64,2>",
        "hypot",
        &[-1e200, 1e190],
        "d/da (a/h) = (1 - (a/h)²)/h cancels for |b| << |a| (dxx = b²/h³ directly is exact)",
    ),
];

fn nested_limit(ty: &str, r: &Row) -> Option<&'static str> {
    NESTED_LIMITS
        .iter()
        .find(|(t, name, args, _)| *t == ty && *name == r.name && *args == r.args.as_slice())
        .map(|l| l.3)
}

/// Compare every part of every probe at every row; return the failure report (empty if none).
fn check_rows(rows: &[Row], probes: &[Probe], worst: &mut Worst) -> String {
    let mut failures = String::new();
    for r in rows {
        let names: &[&str] = if r.unary() {
            &UNARY_PARTS
        } else {
            &BINARY_PARTS
        };
        for p in probes {
            for pt in (p.eval)(r) {
                let (want, i) = match pt.want {
                    Ref(i) => (r.want[i], i),
                    Zero => (0.0, 1),
                };
                let ord = order(r.unary(), i);
                let ulps = ulps_in(pt.got, want, ulp64(want));
                if let (2, true, Some(why)) = (ord, ulps > tolerance(ord), nested_limit(p.ty, r)) {
                    println!(
                        "  known limit: {} {} {} = {:e} vs {want:e} ({ulps:.0} ulps): {why}",
                        r.point(),
                        p.ty,
                        pt.label,
                        pt.got
                    );
                    continue;
                }
                worst.record(p.ty, ord, ulps, || format!("{} {}", r.point(), pt.label));
                if ulps > tolerance(ord) {
                    let what = match pt.want {
                        Ref(i) => names[i],
                        Zero => "0 (unseeded)",
                    };
                    let _ = writeln!(
                        failures,
                        "{}: {} {} = {:e}, expected {what} = {:e} ({ulps:.1} ulps > {})",
                        r.point(),
                        p.ty,
                        pt.label,
                        pt.got,
                        want,
                        tolerance(ord)
                    );
                }
            }
        }
    }
    failures
}

#[test]
fn unary_rules_on_every_type_match_the_reference() {
    let rows = parse_unary();
    assert!(rows.len() > 150, "unary.csv has only {} rows", rows.len());
    let mut worst = Worst::default();
    let failures = check_rows(&rows, UNARY_PROBES, &mut worst);
    worst.print("unary.csv");
    assert!(failures.is_empty(), "rule errors:\n{failures}");
}

#[test]
fn binary_rules_on_every_type_match_the_reference() {
    let rows = parse_binary();
    assert!(rows.len() > 20, "binary.csv has only {} rows", rows.len());
    let mut worst = Worst::default();
    let failures = check_rows(&rows, BINARY_PROBES, &mut worst);
    worst.print("binary.csv");
    assert!(failures.is_empty(), "rule errors:\n{failures}");
}

// ---------------------------------------------------------------------------------------------
// Coverage: the table, the trait and the reference data name the same functions
// ---------------------------------------------------------------------------------------------

/// `DualNum` methods that are not differentiable rules of the table, each tested below.
const NOT_IN_REFERENCE: [&str; 11] = [
    "min", "max", "floor", "ceil", "round", "trunc",
    "signum",  // selection, piecewise constant
    "sin_cos", // == (sin, cos), tested below
    "zero", "one", "is_nan", // constants and predicates
];

/// Names of the provided methods `fn name(self…` of `trait DualNum` in the engine source.
fn dual_num_methods() -> BTreeSet<String> {
    let src = include_str!("../src/number/mod.rs");
    let start = src
        .find("pub trait DualNum")
        .expect("trait DualNum in number/mod.rs");
    let end = start + src[start..].find("\n}\n").expect("end of trait DualNum");
    let mut names = BTreeSet::new();
    for line in src[start..end].lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("fn ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if rest[name.len()..].starts_with("(self") || rest[name.len()..].starts_with("()") {
                names.insert(name);
            }
        }
    }
    names
}

/// Names of the entries `pub fn name<…>` of `src/rules.rs`.
fn rule_entries() -> BTreeSet<String> {
    include_str!("../src/rules.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("pub fn "))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn every_rule_and_every_dual_num_function_has_reference_data() {
    let in_csv: BTreeSet<String> = parse_unary()
        .iter()
        .chain(&parse_binary())
        .map(|r| r.name.clone())
        .collect();
    let known: BTreeSet<String> = UNARY_NAMES
        .iter()
        .chain(&BINARY_NAMES)
        .map(|s| s.to_string())
        .collect();

    // Every function the tests know has reference rows, and the CSVs name nothing else.
    let missing: Vec<_> = known.difference(&in_csv).collect();
    assert!(missing.is_empty(), "no reference rows for {missing:?}");
    let unknown: Vec<_> = in_csv.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "reference rows for unknown functions {unknown:?}"
    );

    // Every provided method of DualNum is either a function with reference data or one of the
    // listed non-table methods (tested by the special-point tests of this file).
    let methods = dual_num_methods();
    assert!(
        methods.len() > 30,
        "could not read DualNum's methods: {methods:?}"
    );
    for m in &methods {
        let csv_name = if m == "powd" { "pow" } else { m.as_str() };
        let required = ["re", "inner", "from_inner", "from_re", "chain", "chain2"];
        assert!(
            in_csv.contains(csv_name)
                || NOT_IN_REFERENCE.contains(&m.as_str())
                || required.contains(&m.as_str()),
            "DualNum::{m} has no rows in unary.csv/binary.csv and is not in NOT_IN_REFERENCE"
        );
    }
    for name in &known {
        let method = if name == "pow" { "powd" } else { name.as_str() };
        assert!(methods.contains(method), "`{name}` is not a DualNum method");
    }

    // Every entry of the rule table has reference rows, except the selection helpers and `rem`
    // (checked by `rem_on_duals`).
    let entries = rule_entries();
    assert!(entries.len() > 25, "could not read rules.rs: {entries:?}");
    for e in &entries {
        let exempt = ["rem", "select_first_for_min", "select_first_for_max"];
        assert!(
            in_csv.contains(e) || exempt.contains(&e.as_str()),
            "rules::{e} has no rows in unary.csv/binary.csv"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// f32: the same rules to f32 precision
// ---------------------------------------------------------------------------------------------

/// Value and derivatives of every f32 type at a unary row: `(type, label, got, reference part)`.
fn f32_unary(r: &Row) -> Vec<(&'static str, &'static str, f32, usize)> {
    let x = r.args[0] as f32;
    fn g<D: DualNum<f32>>(r: &Row, d: D) -> D {
        apply_unary::<f32, D>(&r.name, r.param, d)
    }
    let d = g(r, Dual32::variable(x));
    let v = g(r, DualVec32::<2>::new(x, [1.0, 0.0]));
    let h = g(r, HyperDual::<f32, f32>::variable(x));
    let s = g(r, Dual2::<f32, f32, 1>::seeded(x, 0));
    let n = g(
        r,
        Dual::<Dual32, f32, 1>::new(Dual32::variable(x), [Dual32::constant(1.0)]),
    );
    vec![
        ("f32", "value", g(r, x), 0),
        ("Dual32", "re", d.re, 0),
        ("Dual32", "eps[0]", d.eps[0], 1),
        ("DualVec32<2>", "eps[0]", v.eps[0], 1),
        ("HyperDual<f32>", "eps1", h.e1(), 1),
        ("HyperDual<f32>", "eps12", h.e12(), 2),
        ("Dual2<f32,1>", "v1[0]", s.v1[0], 1),
        ("Dual2<f32,1>", "v2[0][0]", s.v2[0][0], 2),
        ("Dual<Dual32,f32,1>", "eps[0].eps[0]", n.eps[0].eps[0], 2),
    ]
}

fn f32_binary(r: &Row) -> Vec<(&'static str, &'static str, f32, usize)> {
    let (x, y) = (r.args[0] as f32, r.args[1] as f32);
    fn g<D: DualNum<f32>>(r: &Row, x: D, y: D) -> D {
        apply_binary::<f32, D>(&r.name, x, y)
    }
    let d = g(
        r,
        DualVec32::<2>::seeded(x, 0),
        DualVec32::<2>::seeded(y, 1),
    );
    let s = g(
        r,
        Dual2::<f32, f32, 2>::seeded(x, 0),
        Dual2::<f32, f32, 2>::seeded(y, 1),
    );
    let h = g(
        r,
        HyperDualVec::<f32, f32, 2, 2>::new(x, [1.0, 0.0], [1.0, 0.0], [[0.0; 2]; 2]),
        HyperDualVec::<f32, f32, 2, 2>::new(y, [0.0, 1.0], [0.0, 1.0], [[0.0; 2]; 2]),
    );
    vec![
        ("f32", "value", g(r, x, y), 0),
        ("DualVec32<2>", "eps[0]", d.eps[0], 1),
        ("DualVec32<2>", "eps[1]", d.eps[1], 2),
        ("Dual2<f32,2>", "v2[0][0]", s.v2[0][0], 3),
        ("Dual2<f32,2>", "v2[0][1]", s.v2[0][1], 4),
        ("Dual2<f32,2>", "v2[1][1]", s.v2[1][1], 5),
        ("HyperDualVec<f32,2,2>", "eps12[0][1]", h.eps12[0][1], 4),
        ("HyperDualVec<f32,2,2>", "eps12[1][1]", h.eps12[1][1], 5),
    ]
}

/// Whether a row can be checked in f32: inputs exactly representable, all magnitudes moderate.
fn fits_f32(r: &Row) -> bool {
    let exact = |v: f64| f64::from(v as f32) == v;
    // Moderate magnitudes only: beyond these, intermediate derivatives (such as 1/(1+a²)² for
    // atan at 1e10) leave the f32 range even where the result does not.
    let moderate = |v: f64| v == 0.0 || (1e-12..=1e12).contains(&v.abs());
    r.args.iter().all(|&a| exact(a) && moderate(a))
        && r.param.is_none_or(exact)
        && r.want.iter().all(|&w| moderate(w))
}

#[test]
fn f32_types_agree_with_the_reference_to_f32_precision() {
    const TOL32: [f64; 3] = [4.0, 4.0, 16.0];
    let mut worst = Worst::default();
    let mut failures = String::new();
    let mut checked = 0;
    for r in parse_unary().iter().chain(&parse_binary()) {
        if !fits_f32(r) {
            continue;
        }
        checked += 1;
        let parts = if r.unary() {
            f32_unary(r)
        } else {
            f32_binary(r)
        };
        for (ty, label, got, i) in parts {
            let want = r.want[i];
            let ord = order(r.unary(), i);
            let ulps = ulps_in(f64::from(got), want, ulp32(want as f32));
            worst.record(ty, ord, ulps, || format!("{} {label}", r.point()));
            if ulps > TOL32[ord] {
                let _ = writeln!(
                    failures,
                    "{}: {ty} {label} = {got:e}, expected {want:e} ({ulps:.1} f32 ulps > {})",
                    r.point(),
                    TOL32[ord]
                );
            }
        }
    }
    worst.print(&format!(
        "f32 ({checked} rows with f32 inputs and moderate magnitudes)"
    ));
    assert!(checked > 60, "only {checked} rows fit f32");
    assert!(failures.is_empty(), "f32 rule errors:\n{failures}");
}

// ---------------------------------------------------------------------------------------------
// Special points: the documented limits
// ---------------------------------------------------------------------------------------------

/// `(value, first derivative, second derivative)` of a unary function at `x` on every
/// derivative-carrying f64 type.
fn unary_on_all_types(name: &str, param: Option<f64>, x: f64) -> Vec<(&'static str, [f64; 3])> {
    let d = apply_unary(name, param, Dual64::variable(x));
    let h = apply_unary(name, param, HyperDual64::variable(x));
    let s = apply_unary(name, param, Dual2_64::<1>::seeded(x, 0));
    let n = apply_unary(
        name,
        param,
        Nested::new(Dual64::variable(x), [Dual64::constant(1.0)]),
    );
    vec![
        ("Dual64", [d.re, d.eps[0], f64::NAN]),
        ("HyperDual64", [h.re, h.e1(), h.e12()]),
        ("Dual2_64<1>", [s.re, s.v1[0], s.v2[0][0]]),
        (
            "Dual<Dual64,f64,1>",
            [n.re.re, n.eps[0].re, n.eps[0].eps[0]],
        ),
    ]
}

/// Same bits, or both NaN.
fn same(a: f64, b: f64) -> bool {
    a == b && a.is_sign_negative() == b.is_sign_negative() || (a.is_nan() && b.is_nan())
}

/// `(name, param, x, f, f', f'')`; `f''` NaN means "not checked" (on `HyperDual64`/`Dual2` it is
/// `0 · f' + f''`, NaN whenever `f'` is infinite).
type Special = (&'static str, Option<f64>, f64, f64, f64, f64);
const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

const UNARY_SPECIAL: &[Special] = &[
    ("sqrt", None, 0.0, 0.0, INF, NAN),
    ("sqrt", None, -0.0, -0.0, INF, NAN),
    ("cbrt", None, 0.0, 0.0, INF, NAN),
    ("cbrt", None, -0.0, -0.0, INF, NAN),
    ("abs", None, 0.0, 0.0, 1.0, 0.0),
    ("abs", None, -0.0, 0.0, -1.0, 0.0),
    ("powi", Some(0.0), 0.0, 1.0, 0.0, 0.0),
    ("powi", Some(0.0), -0.0, 1.0, 0.0, 0.0),
    ("powi", Some(1.0), 0.0, 0.0, 1.0, 0.0),
    ("powi", Some(2.0), 0.0, 0.0, 0.0, 2.0),
    ("powi", Some(3.0), 0.0, 0.0, 0.0, 0.0),
    ("powi", Some(4.0), 0.0, 0.0, 0.0, 0.0),
    ("powi", Some(-1.0), 0.0, INF, -INF, NAN),
    ("powf", Some(0.0), 0.0, 1.0, 0.0, 0.0),
    ("powf", Some(0.0), -0.0, 1.0, 0.0, 0.0),
    ("powf", Some(1.0), 0.0, 0.0, 1.0, 0.0),
    ("powf", Some(2.5), 0.0, 0.0, 0.0, 0.0),
    ("powf", Some(0.5), 0.0, 0.0, INF, NAN),
    ("exp", None, -INF, 0.0, 0.0, 0.0),
    ("ln", None, 0.0, -INF, INF, NAN),
    ("atan", None, INF, std::f64::consts::FRAC_PI_2, 0.0, NAN),
    ("tanh", None, INF, 1.0, 0.0, NAN),
    ("tanh", None, 400.0, 1.0, 0.0, -0.0),
    ("erf", None, INF, 1.0, 0.0, NAN),
    ("erfc", None, -INF, 2.0, -0.0, NAN),
];

#[test]
fn unary_special_points_give_the_documented_limits() {
    let mut failures = String::new();
    for &(name, param, x, f, d1, d2) in UNARY_SPECIAL {
        for (ty, got) in unary_on_all_types(name, param, x) {
            let want = [f, d1, d2];
            for k in 0..3 {
                // Zeros compare by value here (their sign is not documented) except for the
                // `abs` derivative, which is `±1`.
                let ok = if want[k].is_nan() {
                    true
                } else if want[k] == 0.0 {
                    got[k] == 0.0
                } else {
                    same(got[k], want[k])
                };
                // Dual64 has no second derivative.
                let has_part = ty != "Dual64" || k < 2;
                if has_part && !ok {
                    let _ = writeln!(
                        failures,
                        "{name}({x:?}) param {param:?} on {ty}: {} = {:?}, expected {:?}",
                        UNARY_PARTS[k], got[k], want[k]
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "special points:\n{failures}");
}

/// `(value, dx, dy, dxx, dxy, dyy)` of a binary function on every second-order f64 type, plus
/// the gradient from `DualVec64<2>`.
fn binary_on_all_types(name: &str, x: f64, y: f64) -> Vec<(&'static str, [f64; 6])> {
    let d = apply_binary(
        name,
        DualVec64::<2>::seeded(x, 0),
        DualVec64::<2>::seeded(y, 1),
    );
    let s = apply_binary(
        name,
        Dual2_64::<2>::seeded(x, 0),
        Dual2_64::<2>::seeded(y, 1),
    );
    let h = apply_binary(
        name,
        HyperDualVec64::<2, 2>::new(x, [1.0, 0.0], [1.0, 0.0], [[0.0; 2]; 2]),
        HyperDualVec64::<2, 2>::new(y, [0.0, 1.0], [0.0, 1.0], [[0.0; 2]; 2]),
    );
    let (one, zero) = (DualVec64::<2>::constant(1.0), DualVec64::<2>::constant(0.0));
    let n = apply_binary(
        name,
        NestedVec2::new(DualVec64::seeded(x, 0), [one, zero]),
        NestedVec2::new(DualVec64::seeded(y, 1), [zero, one]),
    );
    vec![
        ("DualVec64<2>", [d.re, d.eps[0], d.eps[1], NAN, NAN, NAN]),
        (
            "Dual2_64<2>",
            [s.re, s.v1[0], s.v1[1], s.v2[0][0], s.v2[0][1], s.v2[1][1]],
        ),
        (
            "HyperDualVec64<2,2>",
            [
                h.re,
                h.eps1[0],
                h.eps1[1],
                h.eps12[0][0],
                h.eps12[0][1],
                h.eps12[1][1],
            ],
        ),
        (
            "Dual<DualVec64<2>,f64,2>",
            [
                n.re.re,
                n.eps[0].re,
                n.eps[1].re,
                n.eps[0].eps[0],
                n.eps[0].eps[1],
                n.eps[1].eps[1],
            ],
        ),
    ]
}

#[test]
fn hypot_and_atan2_at_the_origin_have_nan_derivatives() {
    for name in ["hypot", "atan2"] {
        for (ty, got) in binary_on_all_types(name, 0.0, 0.0) {
            assert_eq!(got[0], 0.0, "{name}(0, 0) on {ty}");
            for (k, g) in got.iter().enumerate().skip(1) {
                assert!(
                    g.is_nan() || ty == "DualVec64<2>" && k > 2,
                    "{name}(0, 0) on {ty}: {} = {g:?}, expected NaN",
                    BINARY_PARTS[k]
                );
            }
        }
        // The table entry itself.
        let r = match name {
            "hypot" => duals::rules::hypot(0.0_f64, 0.0),
            _ => duals::rules::atan2(0.0_f64, 0.0),
        };
        for d in [r.da, r.db, r.daa, r.dab, r.dbb] {
            assert!(d.is_nan(), "rules::{name}(0, 0) = {r:?}");
        }
    }
}

#[test]
fn pow_at_zero_base_gives_the_one_sided_limits() {
    // x^y at x = +0, y > 0: f = 0, ∂y = x^y ln x → 0, ∂yy → 0. ∂x = y x^(y-1) and the second
    // derivatives are finite for y >= 2 (and exact: y = 2 gives ∂xx = 2).
    // (y, [f, dx, dy, dxx, dxy, dyy])
    let finite: &[(f64, [f64; 6])] = &[
        (2.0, [0.0, 0.0, 0.0, 2.0, 0.0, 0.0]),
        (2.5, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        (3.0, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        (7.5, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ];
    for &(y, want) in finite {
        for (ty, got) in binary_on_all_types("pow", 0.0, y) {
            for k in 0..6 {
                assert!(
                    got[k] == want[k] || (ty == "DualVec64<2>" && k > 2),
                    "pow(0, {y}) on {ty}: {} = {:?}, expected {:?}",
                    BINARY_PARTS[k],
                    got[k],
                    want[k]
                );
            }
        }
    }
    // 1 <= y < 2: the gradient is still finite, (1, 0) and (0, 0).
    for (y, dx) in [(1.0, 1.0), (1.5, 0.0)] {
        for (ty, got) in binary_on_all_types("pow", 0.0, y) {
            assert_eq!(
                (got[0], got[1], got[2]),
                (0.0, dx, 0.0),
                "pow(0, {y}) on {ty}: (f, dx, dy)"
            );
        }
    }
    // 0 < y < 1: ∂x = +inf (and the unseeded-direction product 0 · inf makes ∂y NaN on vector
    // types; the table entry below has ∂y = 0).
    for (ty, got) in binary_on_all_types("pow", 0.0, 0.5) {
        assert_eq!((got[0], got[1]), (0.0, INF), "pow(0, 0.5) on {ty}: (f, dx)");
    }
    // The table entry itself: the limits of all five partials, including
    // ∂xy = x^(y-1) (1 + y ln x) → 0 for y > 1 and → -inf for 0 < y <= 1.
    // (y, [da, db, daa, dab, dbb])
    let limits: &[(f64, [f64; 5])] = &[
        (0.5, [INF, 0.0, -INF, -INF, 0.0]),
        (1.0, [1.0, 0.0, NAN, -INF, 0.0]),
        (1.5, [0.0, 0.0, INF, 0.0, 0.0]),
        (2.0, [0.0, 0.0, 2.0, 0.0, 0.0]),
        (3.0, [0.0, 0.0, 0.0, 0.0, 0.0]),
    ];
    for &(y, want) in limits {
        let r = duals::rules::pow(0.0_f64, y);
        let got = [r.da, r.db, r.daa, r.dab, r.dbb];
        for k in 0..5 {
            assert!(
                want[k].is_nan() || got[k] == want[k],
                "rules::pow(0, {y}): {} = {:?}, expected {:?}",
                BINARY_PARTS[k + 1],
                got[k],
                want[k]
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// NaN and infinity propagate, on every function and every type, without panics
// ---------------------------------------------------------------------------------------------

/// Every unary function with the parameters worth distinguishing.
fn unary_functions() -> Vec<(&'static str, Option<f64>)> {
    let mut v = Vec::new();
    for &name in &UNARY_NAMES {
        match name {
            "powi" => v.extend([-3.0, -1.0, 0.0, 1.0, 2.0, 3.0, 5.0].map(|n| (name, Some(n)))),
            "powf" => v.extend([-1.5, 0.0, 0.5, 1.0, 2.0, 2.5].map(|p| (name, Some(p)))),
            _ => v.push((name, None)),
        }
    }
    v
}

/// Every part of every type (unary), as a flat list of `(type, part index, value)`.
fn unary_all_parts(name: &str, param: Option<f64>, x: f64) -> Vec<(&'static str, usize, f64)> {
    let r = Row {
        line: 0,
        name: name.to_string(),
        param,
        args: vec![x],
        want: vec![NAN; 3],
    };
    let mut out = Vec::new();
    for p in UNARY_PROBES {
        for pt in (p.eval)(&r) {
            out.push((p.ty, if let Ref(i) = pt.want { i } else { 1 }, pt.got));
        }
    }
    out
}

#[test]
fn nan_propagates_through_every_unary_function_on_every_type() {
    for (name, param) in unary_functions() {
        // x^0 = 1 and x^1 = x have constant derivatives, even at NaN.
        let constant_derivative = matches!(param, Some(p) if p == 0.0 || p == 1.0);
        for (ty, k, got) in unary_all_parts(name, param, NAN) {
            if k == 0 && param == Some(0.0) {
                assert_eq!(got, 1.0, "{name}(NaN) param {param:?} on {ty}");
            } else if k == 0 || (k == 1 && !constant_derivative) {
                assert!(
                    got.is_nan(),
                    "{name}(NaN) param {param:?} on {ty}: part {k} = {got}"
                );
            }
        }
    }
}

#[test]
fn infinities_pass_through_every_unary_function_on_every_type() {
    for (name, param) in unary_functions() {
        for x in [INF, -INF, f64::MAX, -f64::MAX, f64::MIN_POSITIVE, 5e-324] {
            let plain = apply_unary::<f64, f64>(name, param, x);
            for (ty, k, got) in unary_all_parts(name, param, x) {
                // The value is the plain f64 function's (rounding aside); derivatives only
                // must not panic.
                if k == 0 {
                    let close = same(got, plain)
                        || (got.is_finite() && (got - plain).abs() <= 4.0 * ulp64(plain));
                    assert!(
                        close,
                        "{name}({x:e}) param {param:?} on {ty}: {got} vs {plain}"
                    );
                }
            }
        }
    }
}

#[test]
fn nan_and_infinities_pass_through_every_binary_function_on_every_type() {
    let specials = [NAN, INF, -INF, 0.0, -0.0, 1.0, -2.5];
    for &name in &BINARY_NAMES {
        for x in specials {
            for y in specials {
                let plain = apply_binary::<f64, f64>(name, x, y);
                for (ty, got) in binary_on_all_types(name, x, y) {
                    assert!(
                        same(got[0], plain),
                        "{name}({x}, {y}) on {ty}: value {} vs {plain}",
                        got[0]
                    );
                    if x.is_nan() || y.is_nan() {
                        // A NaN argument reaches the gradient, except where IEEE says the
                        // value does not depend on it: hypot(±inf, NaN) = inf, pow(x, 0) = 1,
                        // pow(1, y) = 1.
                        let exempt = (name == "hypot" && (x.is_infinite() || y.is_infinite()))
                            || (name == "pow" && (y == 0.0 || x == 1.0));
                        assert!(
                            exempt || got[1].is_nan() || got[2].is_nan(),
                            "{name}({x}, {y}) on {ty}: gradient {:?} has no NaN",
                            &got[1..3]
                        );
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Non-differentiable functions, selection, remainder, sin_cos
// ---------------------------------------------------------------------------------------------

/// Apply a non-table method by name.
fn apply_piecewise<D: DualNum<f64>>(name: &str, x: D) -> D {
    match name {
        "floor" => x.floor(),
        "ceil" => x.ceil(),
        "round" => x.round(),
        "trunc" => x.trunc(),
        "signum" => x.signum(),
        _ => unreachable!(),
    }
}

#[test]
fn piecewise_constant_functions_have_zero_derivatives() {
    // (name, x, value)
    let table: &[(&str, f64, f64)] = &[
        ("floor", 2.7, 2.0),
        ("floor", -2.2, -3.0),
        ("ceil", 2.2, 3.0),
        ("ceil", -2.7, -2.0),
        ("round", 2.5, 3.0),
        ("round", -2.5, -3.0),
        ("round", 2.4, 2.0),
        ("trunc", 2.7, 2.0),
        ("trunc", -2.7, -2.0),
        ("signum", 3.5, 1.0),
        ("signum", -0.5, -1.0),
        ("signum", 0.0, 1.0),
        ("floor", 3.0, 3.0),
    ];
    for &(name, x, want) in table {
        assert_eq!(apply_piecewise(name, x), want, "{name}({x}) on f64");
        let d = apply_piecewise(name, DualVec64::<3>::new(x, [1.0, -2.0, 0.5]));
        assert_eq!(
            (d.re, d.eps),
            (want, [0.0; 3]),
            "{name}({x}) on DualVec64<3>"
        );
        let h = apply_piecewise(name, HyperDual64::variable(x));
        assert_eq!(
            (h.re, h.e1(), h.e2(), h.e12()),
            (want, 0.0, 0.0, 0.0),
            "{name}({x}) on HyperDual64"
        );
        let s = apply_piecewise(name, Dual2_64::<1>::seeded(x, 0));
        assert_eq!(
            (s.re, s.v1[0], s.v2[0][0]),
            (want, 0.0, 0.0),
            "{name}({x}) on Dual2_64"
        );
        let n = apply_piecewise(
            name,
            Nested::new(Dual64::variable(x), [Dual64::constant(1.0)]),
        );
        assert_eq!(
            (n.re.re, n.re.eps[0], n.eps[0].re, n.eps[0].eps[0]),
            (want, 0.0, 0.0, 0.0),
            "{name}({x}) on Dual<Dual64>"
        );
    }
    // NaN stays NaN.
    for name in ["floor", "ceil", "round", "trunc", "signum"] {
        assert!(
            apply_piecewise(name, Dual64::variable(NAN)).re.is_nan(),
            "{name}(NaN)"
        );
    }
}

#[test]
fn min_and_max_follow_the_selected_argument() {
    // (a, b, min selects a, max selects a): ties select self; a NaN argument loses.
    let table: &[(f64, f64, bool, bool)] = &[
        (1.0, 2.0, true, false),
        (2.0, 1.0, false, true),
        (1.5, 1.5, true, true),
        (0.0, -0.0, true, true),
        (NAN, 1.0, false, false),
        (1.0, NAN, true, true),
        (-INF, 3.0, true, false),
        (INF, 3.0, false, true),
    ];
    for &(a, b, min_a, max_a) in table {
        let pick = |first: bool| if first { (a, 1.0) } else { (b, 2.0) };
        // Dual64: tangent 1 marks a, tangent 2 marks b.
        let (da, db) = (Dual64::new(a, [1.0]), Dual64::new(b, [2.0]));
        for (op, got, first) in [("min", da.min(db), min_a), ("max", da.max(db), max_a)] {
            let (re, eps) = pick(first);
            assert!(
                same(got.re, re) && got.eps[0] == eps,
                "{op}({a}, {b}) on Dual64 = {got}, expected re {re}, eps {eps}"
            );
        }
        // The other types: the selected argument comes back whole.
        let (ha, hb) = (
            HyperDual64::new(a, [1.0], [1.0], [[1.0]]),
            HyperDual64::new(b, [2.0], [2.0], [[2.0]]),
        );
        let (sa, sb) = (
            Dual2_64::<1>::new(a, [1.0], [[1.0]]),
            Dual2_64::<1>::new(b, [2.0], [[2.0]]),
        );
        let (na, nb) = (
            Nested::new(Dual64::new(a, [1.0]), [Dual64::new(1.0, [1.0])]),
            Nested::new(Dual64::new(b, [2.0]), [Dual64::new(2.0, [2.0])]),
        );
        for (op, first) in [("min", min_a), ("max", max_a)] {
            let (_, mark) = pick(first);
            let h = if op == "min" { ha.min(hb) } else { ha.max(hb) };
            let s = if op == "min" { sa.min(sb) } else { sa.max(sb) };
            let n = if op == "min" { na.min(nb) } else { na.max(nb) };
            assert_eq!(
                [h.e1(), h.e2(), h.e12()],
                [mark; 3],
                "{op}({a}, {b}) on HyperDual64"
            );
            assert_eq!(
                [s.v1[0], s.v2[0][0]],
                [mark; 2],
                "{op}({a}, {b}) on Dual2_64"
            );
            assert_eq!(
                [n.re.eps[0], n.eps[0].re, n.eps[0].eps[0]],
                [mark; 3],
                "{op}({a}, {b}) on Dual<Dual64>"
            );
        }
    }
}

#[test]
fn rem_on_duals() {
    // a % b = a - trunc(a / b) b: ∂a = 1, ∂b = -trunc(a / b), second derivatives 0.
    // (a, b, a % b, ∂b)
    let table: &[(f64, f64, f64, f64)] = &[
        (7.5, 2.0, 1.5, -3.0),
        (-7.5, 2.0, -1.5, 3.0),
        (7.5, -2.0, 1.5, 3.0),
        (1.0, 3.0, 1.0, -0.0),
        (6.0, 3.0, 0.0, -2.0),
    ];
    for &(a, b, r, db) in table {
        let z = DualVec64::<2>::seeded(a, 0) % DualVec64::<2>::seeded(b, 1);
        assert_eq!((z.re, z.eps), (r, [1.0, db]), "{a} % {b} on DualVec64<2>");
        let s = Dual2_64::<2>::seeded(a, 0) % Dual2_64::<2>::seeded(b, 1);
        assert_eq!(
            (s.re, s.v1, s.v2),
            (r, [1.0, db], [[0.0; 2]; 2]),
            "{a} % {b} on Dual2_64<2>"
        );
        let h = HyperDual64::variable(a) % HyperDual64::constant(b);
        assert_eq!(
            (h.re, h.e1(), h.e12()),
            (r, 1.0, 0.0),
            "{a} % {b} on HyperDual64"
        );
        // `%` by a real: the divisor is a constant.
        let c = Dual64::variable(a) % b;
        assert_eq!((c.re, c.eps[0]), (r, 1.0), "{a} % {b}_f64 on Dual64");
        // Same value as f64.
        assert_eq!(a % b, r);
        // Nested: the outer derivative of ∂b is 0 (trunc is piecewise constant).
        let n = Nested::new(Dual64::constant(a), [Dual64::constant(0.0)])
            % Nested::new(Dual64::variable(b), [Dual64::constant(1.0)]);
        assert_eq!(
            (n.re.re, n.re.eps[0], n.eps[0].re, n.eps[0].eps[0]),
            (r, db, db, 0.0)
        );
    }
    // NaN and zero divisors propagate without panics.
    let z = Dual64::variable(1.0) % Dual64::constant(0.0);
    assert!(z.re.is_nan());
    let z = Dual64::variable(NAN) % Dual64::constant(2.0);
    assert!(z.re.is_nan());
}

#[test]
fn sin_cos_equals_sin_and_cos_on_every_type() {
    for x in [0.5, -2.0, 3.0, 1e-200, 1e22, 100.0] {
        let d = Dual64::variable(x);
        let (s, c) = d.sin_cos();
        assert_eq!(
            (s.re, s.eps, c.re, c.eps),
            (d.sin().re, d.sin().eps, d.cos().re, d.cos().eps)
        );
        let h = HyperDual64::variable(x);
        let (s, c) = h.sin_cos();
        let (s2, c2) = (h.sin(), h.cos());
        assert_eq!(
            (s.re, s.e1(), s.e12()),
            (s2.re, s2.e1(), s2.e12()),
            "sin {x}"
        );
        assert_eq!(
            (c.re, c.e1(), c.e12()),
            (c2.re, c2.e1(), c2.e12()),
            "cos {x}"
        );
        let v = Dual2_64::<1>::seeded(x, 0);
        let (s, c) = v.sin_cos();
        assert_eq!((s.re, s.v1, s.v2), (v.sin().re, v.sin().v1, v.sin().v2));
        assert_eq!((c.re, c.v1, c.v2), (v.cos().re, v.cos().v1, v.cos().v2));
        let n = Nested::new(Dual64::variable(x), [Dual64::constant(1.0)]);
        let (s, c) = n.sin_cos();
        assert_eq!(
            (s.re.eps, s.eps[0].eps),
            (n.sin().re.eps, n.sin().eps[0].eps)
        );
        assert_eq!(
            (c.re.eps, c.eps[0].eps),
            (n.cos().re.eps, n.cos().eps[0].eps)
        );
        assert_eq!(x.sin_cos(), (x.sin(), x.cos()));
    }
}
