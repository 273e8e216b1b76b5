//! Fused elementwise programs: a straight-line function of one variable, value and derivative,
//! evaluated a few vectors of points at a time with every intermediate in a small register
//! file, so that a batch is one pass over memory.
//!
//! The instructions apply the same vector operations as the array kernels ([`super::add`],
//! [`super::mul`], [`super::div`], [`super::unary_rule`] with one tangent row), so the results
//! are those of a tape evaluated instruction by instruction with them.

use pulp::{Simd, WithSimd};

use super::dispatch::{run, Level};
use super::error::check_primal;
use super::lanes::LaneFn;
use super::unary::{Cos, Exp, ExpM1, Ln, Ln1p, Recip, SimdRule, Sin, Sqrt, Square};
use super::KernelError;

/// One instruction: registers are indices into the register file, each holding a primal and a
/// tangent (one tangent row).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Instr {
    /// `a + b`
    Add(u32, u32),
    /// `a - b`
    Sub(u32, u32),
    /// `a * b`: tangent `b ta + a tb` (fused where the level has an FMA)
    Mul(u32, u32),
    /// `a / b`: tangent `(ta - f tb) / b`
    Div(u32, u32),
    /// `-a`
    Neg(u32),
    /// `a + c`
    AddConst(u32, f64),
    /// `c - a`
    ConstSub(f64, u32),
    /// `a * c`
    MulConst(u32, f64),
    /// `a / c`
    DivConst(u32, f64),
    /// `c / a`: tangent `-(f ta) / a`
    ConstDiv(f64, u32),
    /// A rule of the table with a SIMD body: `(f(a), f'(a) ta)`
    Unary(SimdRule, u32),
    /// [`Instr::Unary`] whose value no later instruction reads: the tangent `f'(a) ta` alone
    /// (the same bits), the primal left at zero. For `ln` and `ln_1p` this skips the
    /// logarithm.
    UnaryTangent(SimdRule, u32),
}

/// A straight-line program of one input (register 0, tangent 1) and one output.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    /// `(destination, instruction)` in order.
    pub(crate) steps: Vec<(u32, Instr)>,
    /// Registers of the file (at least every index the steps, constants and output use).
    pub(crate) n_regs: usize,
    /// Registers holding a constant (tangent 0) before the first step.
    pub(crate) consts: Vec<(u32, f64)>,
    /// The output register.
    pub(crate) output: u32,
}

impl Program {
    /// Whether every register index is inside the file.
    fn is_consistent(&self) -> bool {
        let ok = |r: u32| (r as usize) < self.n_regs;
        let reads = |i: &Instr| match *i {
            Instr::Add(a, b) | Instr::Sub(a, b) | Instr::Mul(a, b) | Instr::Div(a, b) => {
                ok(a) && ok(b)
            }
            Instr::Neg(a)
            | Instr::AddConst(a, _)
            | Instr::ConstSub(_, a)
            | Instr::MulConst(a, _)
            | Instr::DivConst(a, _)
            | Instr::ConstDiv(_, a)
            | Instr::Unary(_, a)
            | Instr::UnaryTangent(_, a) => ok(a),
        };
        self.n_regs > 0
            && ok(self.output)
            && self.consts.iter().all(|&(r, _)| ok(r))
            && self.steps.iter().all(|(d, i)| ok(*d) && reads(i))
    }
}

/// Vectors of points per pass through the program. (Measured on AVX-512 with
/// `sin(x) exp(-x²) + ln(1 + x²)`: 1 is fastest; 2 and 4 are 10-30 % slower, the elementary
/// functions being bound by throughput rather than latency.)
const GROUP: usize = 1;
/// Widest vector of any level, in `f64` lanes.
const MAX_LANES: usize = 8;

/// `out_value[i] = f(x[i])` (when asked for), `out_derivative[i] = f'(x[i])` for the program
/// `f`, at `level`. Without `out_value` the program may leave the output's primal unset (see
/// [`Instr::UnaryTangent`]).
///
/// # Errors
/// [`KernelError::PrimalLength`] if an output does not have `x.len()` values,
/// [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
///
/// # Panics
/// If a register index of `program` is outside its file (a bug in the caller).
pub(crate) fn fused_derivative_with_level(
    level: Level,
    program: &Program,
    x: &[f64],
    out_value: Option<&mut [f64]>,
    out_derivative: &mut [f64],
) -> Result<(), KernelError> {
    if let Some(v) = &out_value {
        check_primal("out_value", v.len(), x.len())?;
    }
    check_primal("out_derivative", out_derivative.len(), x.len())?;
    assert!(program.is_consistent(), "fused program registers");
    run(
        level,
        Fused {
            program,
            x,
            out_value,
            out_derivative,
        },
    )
}

struct Fused<'a> {
    program: &'a Program,
    x: &'a [f64],
    out_value: Option<&'a mut [f64]>,
    out_derivative: &'a mut [f64],
}

/// The register file: a primal and a tangent for each of [`GROUP`] vectors.
type Reg<S> = [[<S as Simd>::f64s; GROUP]; 2];

impl WithSimd for Fused<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Fused {
            program,
            x,
            out_value,
            out_derivative,
        } = self;
        let zero = simd.splat_f64s(0.0);
        let mut regs: Vec<Reg<S>> = vec![[[zero; GROUP]; 2]; program.n_regs];
        for &(r, c) in &program.consts {
            regs[r as usize] = [[simd.splat_f64s(c); GROUP], [zero; GROUP]];
        }
        let out = program.output as usize;
        let chunk = GROUP * S::F64_LANES;
        let full = x.len() / chunk * chunk;
        let (xs, ds) = (
            x[..full].chunks_exact(chunk),
            out_derivative[..full].chunks_exact_mut(chunk),
        );
        let mut out_value = out_value;
        match out_value.as_deref_mut() {
            Some(out_value) => {
                let vs = out_value[..full].chunks_exact_mut(chunk);
                for ((xc, vc), dc) in xs.zip(vs).zip(ds) {
                    let (xv, _) = S::as_simd_f64s(xc);
                    regs[0][0].copy_from_slice(xv);
                    regs[0][1] = [simd.splat_f64s(1.0); GROUP];
                    eval(simd, &program.steps, &mut regs);
                    S::as_mut_simd_f64s(vc).0.copy_from_slice(&regs[out][0]);
                    S::as_mut_simd_f64s(dc).0.copy_from_slice(&regs[out][1]);
                }
            }
            None => {
                for (xc, dc) in xs.zip(ds) {
                    let (xv, _) = S::as_simd_f64s(xc);
                    regs[0][0].copy_from_slice(xv);
                    regs[0][1] = [simd.splat_f64s(1.0); GROUP];
                    eval(simd, &program.steps, &mut regs);
                    S::as_mut_simd_f64s(dc).0.copy_from_slice(&regs[out][1]);
                }
            }
        }
        let rest = x.len() - full;
        if rest > 0 {
            // The last points, padded with zeros whose results are dropped.
            let mut buf = [0.0; GROUP * MAX_LANES];
            let buf = &mut buf[..chunk];
            buf[..rest].copy_from_slice(&x[full..]);
            let (xv, _) = S::as_simd_f64s(buf);
            regs[0][0].copy_from_slice(xv);
            regs[0][1] = [simd.splat_f64s(1.0); GROUP];
            eval(simd, &program.steps, &mut regs);
            if let Some(out_value) = out_value {
                S::as_mut_simd_f64s(buf).0.copy_from_slice(&regs[out][0]);
                out_value[full..].copy_from_slice(&buf[..rest]);
            }
            S::as_mut_simd_f64s(buf).0.copy_from_slice(&regs[out][1]);
            out_derivative[full..].copy_from_slice(&buf[..rest]);
        }
    }
}

/// The program on one group of vectors.
#[inline(always)]
fn eval<S: Simd>(simd: S, steps: &[(u32, Instr)], regs: &mut [Reg<S>]) {
    // The primal and tangent of each vector of the group from `$body` (a pair) for `$g`.
    macro_rules! each {
        (|$g:ident| $body:expr) => {{
            let mut r = [[simd.splat_f64s(0.0); GROUP]; 2];
            for $g in 0..GROUP {
                (r[0][$g], r[1][$g]) = $body;
            }
            r
        }};
    }
    for &(dst, instr) in steps {
        let get = |r: u32| regs[r as usize];
        let k = |c: f64| simd.splat_f64s(c);
        let result: Reg<S> = match instr {
            Instr::Add(a, b) => {
                let ([pa, ta], [pb, tb]) = (get(a), get(b));
                each!(|g| (simd.add_f64s(pa[g], pb[g]), simd.add_f64s(ta[g], tb[g])))
            }
            Instr::Sub(a, b) => {
                let ([pa, ta], [pb, tb]) = (get(a), get(b));
                each!(|g| (simd.sub_f64s(pa[g], pb[g]), simd.sub_f64s(ta[g], tb[g])))
            }
            Instr::Mul(a, b) => {
                let ([pa, ta], [pb, tb]) = (get(a), get(b));
                each!(|g| {
                    let t = simd.mul_add_e_f64s(pb[g], ta[g], simd.mul_f64s(pa[g], tb[g]));
                    (simd.mul_f64s(pa[g], pb[g]), t)
                })
            }
            Instr::Div(a, b) => {
                let ([pa, ta], [pb, tb]) = (get(a), get(b));
                each!(|g| {
                    let f = simd.div_f64s(pa[g], pb[g]);
                    let t = simd.negate_mul_add_e_f64s(f, tb[g], ta[g]);
                    (f, simd.div_f64s(t, pb[g]))
                })
            }
            Instr::Neg(a) => {
                let [pa, ta] = get(a);
                each!(|g| (simd.neg_f64s(pa[g]), simd.neg_f64s(ta[g])))
            }
            Instr::AddConst(a, c) => {
                let [pa, ta] = get(a);
                each!(|g| (simd.add_f64s(pa[g], k(c)), ta[g]))
            }
            Instr::ConstSub(c, a) => {
                let [pa, ta] = get(a);
                each!(|g| (simd.sub_f64s(k(c), pa[g]), simd.neg_f64s(ta[g])))
            }
            Instr::MulConst(a, c) => {
                let [pa, ta] = get(a);
                each!(|g| (simd.mul_f64s(pa[g], k(c)), simd.mul_f64s(k(c), ta[g])))
            }
            Instr::DivConst(a, c) => {
                let [pa, ta] = get(a);
                each!(|g| (simd.div_f64s(pa[g], k(c)), simd.div_f64s(ta[g], k(c))))
            }
            Instr::ConstDiv(c, a) => {
                let [pa, ta] = get(a);
                each!(|g| {
                    let f = simd.div_f64s(k(c), pa[g]);
                    let t = simd.neg_f64s(simd.mul_f64s(f, ta[g]));
                    (f, simd.div_f64s(t, pa[g]))
                })
            }
            Instr::Unary(rule, a) => {
                let r = get(a);
                match rule {
                    SimdRule::Square => unary(simd, Square, r),
                    SimdRule::Recip => unary(simd, Recip, r),
                    SimdRule::Sqrt => unary(simd, Sqrt, r),
                    SimdRule::Exp => unary(simd, Exp, r),
                    SimdRule::ExpM1 => unary(simd, ExpM1, r),
                    SimdRule::Ln => unary(simd, Ln, r),
                    SimdRule::Ln1p => unary(simd, Ln1p, r),
                    SimdRule::Sin => unary(simd, Sin, r),
                    SimdRule::Cos => unary(simd, Cos, r),
                }
            }
            Instr::UnaryTangent(rule, a) => {
                let r = get(a);
                match rule {
                    SimdRule::Square => unary_tangent(simd, Square, r),
                    SimdRule::Recip => unary_tangent(simd, Recip, r),
                    SimdRule::Sqrt => unary_tangent(simd, Sqrt, r),
                    SimdRule::Exp => unary_tangent(simd, Exp, r),
                    SimdRule::ExpM1 => unary_tangent(simd, ExpM1, r),
                    SimdRule::Ln => unary_tangent(simd, Ln, r),
                    SimdRule::Ln1p => unary_tangent(simd, Ln1p, r),
                    SimdRule::Sin => unary_tangent(simd, Sin, r),
                    SimdRule::Cos => unary_tangent(simd, Cos, r),
                }
            }
        };
        regs[dst as usize] = result;
    }
}

/// `(0, f'(a) ta)` for each vector of the group.
#[inline(always)]
fn unary_tangent<S: Simd, F: LaneFn>(simd: S, f: F, [pa, ta]: Reg<S>) -> Reg<S> {
    let mut r = [[simd.splat_f64s(0.0); GROUP]; 2];
    for g in 0..GROUP {
        r[1][g] = simd.mul_f64s(f.second(simd, pa[g]), ta[g]);
    }
    r
}

/// `(f(a), f'(a) ta)` for each vector of the group.
#[inline(always)]
fn unary<S: Simd, F: LaneFn>(simd: S, f: F, [pa, ta]: Reg<S>) -> Reg<S> {
    let mut r = [[simd.splat_f64s(0.0); GROUP]; 2];
    for g in 0..GROUP {
        let (v, d) = f.eval(simd, pa[g]);
        (r[0][g], r[1][g]) = (v, simd.mul_f64s(d, ta[g]));
    }
    r
}
