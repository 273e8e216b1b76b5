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
use super::lanes::{map, map_fn, LaneFn, Src};
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
        FusedMany {
            steps: &program.steps,
            n_regs: program.n_regs,
            consts: &program.consts,
            checked: &[],
            out: program.output as usize,
            inputs: &[(x, None)],
            out_p: out_value,
            out_t: out_derivative,
        },
    )
    // No checked registers: always finite.
    .map(|_| ())
}

/// The register file: a primal and a tangent for each of [`GROUP`] vectors.
type Reg<S> = [[<S as Simd>::f64s; GROUP]; 2];

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

// ---------------------------------------------------------------------------------------------
// Several inputs: fused elementwise expressions of arrays
// ---------------------------------------------------------------------------------------------

/// A register of a [`Fusion`]: an input or the result of an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FusedVar(u32);

/// A fused elementwise expression of several arrays of duals with one tangent row each: the
/// instructions of [`Program`] (`+ - * /`, their forms with a constant, negation and the rules
/// with a SIMD body) over inputs that each have their own primal and tangent slices.
///
/// It is what an eager chain such as `sin(x) * exp(-(x * x)) + ln_1p(x * x)` becomes when its
/// array kernels are not run one at a time: every intermediate of a vector of points stays in
/// registers, and the whole chain is one pass over memory. Each instruction applies the same
/// vector operations as the array kernel of its operation ([`super::add`], ... with one
/// tangent row, a constant operand given as [`super::Operand::ScalarConst`];
/// [`super::unary_rule`]), so the results are those of the kernels run one after the other,
/// bit for bit (NaN payloads aside).
///
/// Every instruction gets a register of its own (no reuse), so that after a pass every
/// intermediate can be inspected: [`Fusion::eval`] reports whether the primals of all `+ - * /`
/// results were finite, for callers that treat non-finite arithmetic specially (the Python eager
/// mode hands it to NumPy's error handling).
///
/// ```
/// use duals::kernels::Fusion;
/// use duals::rules::UnaryRule;
/// // f(x, y) = sin(x) * y + 2, with dx = 1 and dy = 0: df = cos(x) y
/// let mut f = Fusion::new(2);
/// let (x, y) = (f.input(0).unwrap(), f.input(1).unwrap());
/// let s = f.unary(UnaryRule::Sin, x).unwrap();
/// let p = f.mul(s, y);
/// let out = f.add_const(p, 2.0);
/// let (xp, xt, yp, yt) = ([0.5; 9], [1.0; 9], [3.0; 9], [0.0; 9]);
/// let (mut vp, mut vt) = ([0.0; 9], [0.0; 9]);
/// let finite = f.eval(out, &[(&xp, Some(&xt)), (&yp, Some(&yt))], &mut vp, &mut vt).unwrap();
/// assert!(finite);
/// assert!((vt[8] - 0.5_f64.cos() * 3.0).abs() < 1e-15);
/// ```
#[derive(Clone, Debug)]
pub struct Fusion {
    /// `(destination, instruction)` in order; destination `n_inputs + i` for step `i`.
    steps: Vec<(u32, Instr)>,
    n_inputs: usize,
    /// Registers whose primals [`Fusion::eval`] checks (results of `+ - * /`).
    checked: Vec<u32>,
    /// Whether an instruction was given a register not written before it (one of another
    /// expression): evaluation then refuses.
    foreign: bool,
}

impl Fusion {
    /// An expression of `n_inputs` arrays (registers `0..n_inputs`) and no instructions yet.
    #[must_use]
    pub fn new(n_inputs: usize) -> Self {
        Fusion {
            steps: Vec::new(),
            n_inputs,
            checked: Vec::new(),
            foreign: false,
        }
    }

    /// Input `i`, or `None` if `i >= n_inputs`.
    #[must_use]
    pub fn input(&self, i: usize) -> Option<FusedVar> {
        if i < self.n_inputs {
            u32::try_from(i).ok().map(FusedVar)
        } else {
            None
        }
    }

    /// Number of instructions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are no instructions (the output can only be an input).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether every instruction reads registers written before it (checked as they are
    /// pushed: a register of another expression may not be) and `out` is a register.
    fn is_consistent(&self, out: FusedVar) -> bool {
        !self.foreign && (out.0 as usize) < self.n_inputs + self.steps.len()
    }

    fn push(&mut self, instr: Instr, reads: &[FusedVar], checked: bool) -> FusedVar {
        let dst = (self.n_inputs + self.steps.len()) as u32;
        self.foreign |= reads.iter().any(|r| r.0 >= dst);
        self.steps.push((dst, instr));
        if checked {
            self.checked.push(dst);
        }
        FusedVar(dst)
    }

    /// `a + b`.
    pub fn add(&mut self, a: FusedVar, b: FusedVar) -> FusedVar {
        self.push(Instr::Add(a.0, b.0), &[a, b], true)
    }

    /// `a - b`.
    pub fn sub(&mut self, a: FusedVar, b: FusedVar) -> FusedVar {
        self.push(Instr::Sub(a.0, b.0), &[a, b], true)
    }

    /// `a * b` (`a * a` for a square, as the array kernel computes `x * x`).
    pub fn mul(&mut self, a: FusedVar, b: FusedVar) -> FusedVar {
        self.push(Instr::Mul(a.0, b.0), &[a, b], true)
    }

    /// `a / b`.
    pub fn div(&mut self, a: FusedVar, b: FusedVar) -> FusedVar {
        self.push(Instr::Div(a.0, b.0), &[a, b], true)
    }

    /// `-a` (the sign bits flipped).
    pub fn neg(&mut self, a: FusedVar) -> FusedVar {
        self.push(Instr::Neg(a.0), &[a], false)
    }

    /// `a + c` (also `c + a`: the same sum).
    pub fn add_const(&mut self, a: FusedVar, c: f64) -> FusedVar {
        self.push(Instr::AddConst(a.0, c), &[a], true)
    }

    /// `a - c`, computed as `a + (-c)`: the same IEEE result.
    pub fn sub_const(&mut self, a: FusedVar, c: f64) -> FusedVar {
        self.push(Instr::AddConst(a.0, -c), &[a], true)
    }

    /// `c - a`.
    pub fn const_sub(&mut self, c: f64, a: FusedVar) -> FusedVar {
        self.push(Instr::ConstSub(c, a.0), &[a], true)
    }

    /// `a * c` (also `c * a`).
    pub fn mul_const(&mut self, a: FusedVar, c: f64) -> FusedVar {
        self.push(Instr::MulConst(a.0, c), &[a], true)
    }

    /// `a / c`.
    pub fn div_const(&mut self, a: FusedVar, c: f64) -> FusedVar {
        self.push(Instr::DivConst(a.0, c), &[a], true)
    }

    /// `c / a`.
    pub fn const_div(&mut self, c: f64, a: FusedVar) -> FusedVar {
        self.push(Instr::ConstDiv(c, a.0), &[a], true)
    }

    /// Whether [`Fusion::unary`] takes `rule` (it has a SIMD body).
    #[must_use]
    pub fn fuses(rule: crate::rules::UnaryRule) -> bool {
        super::simd_rule(rule).is_some()
    }

    /// `rule(a)`, or `None` if the rule has no SIMD body (see [`super::unary_rule`]).
    pub fn unary(&mut self, rule: crate::rules::UnaryRule, a: FusedVar) -> Option<FusedVar> {
        let rule = super::simd_rule(rule)?;
        Some(self.push(Instr::Unary(rule, a.0), &[a], false))
    }

    /// The expression with `out` as its output, on every point of the inputs: `out_p[i]` and
    /// `out_t[i]` are the primal and tangent of `out` at point `i`, where input `j` has primal
    /// `inputs[j].0[i]` and tangent `inputs[j].1[i]`, or tangent 1 where that is `None` (the
    /// variable of a derivative, without a stream of ones to read).
    ///
    /// Returns whether the primals of every `+ - * /` result were finite at every point.
    ///
    /// # Errors
    /// [`KernelError::PrimalLength`] or [`KernelError::TangentLength`] if a slice does not have
    /// `out_p.len()` values, [`KernelError::FusedArguments`] for a wrong number of
    /// inputs or a register that is not of this expression.
    pub fn eval(
        &self,
        out: FusedVar,
        inputs: &[(&[f64], Option<&[f64]>)],
        out_p: &mut [f64],
        out_t: &mut [f64],
    ) -> Result<bool, KernelError> {
        self.eval_with_level(Level::best(), out, inputs, out_p, out_t)
    }

    /// [`Fusion::eval`] run with a given [`Level`].
    ///
    /// # Errors
    /// As [`Fusion::eval`], and [`KernelError::LevelUnavailable`] if this CPU cannot run
    /// `level`.
    pub fn eval_with_level(
        &self,
        level: Level,
        out: FusedVar,
        inputs: &[(&[f64], Option<&[f64]>)],
        out_p: &mut [f64],
        out_t: &mut [f64],
    ) -> Result<bool, KernelError> {
        check_primal("out_t", out_t.len(), out_p.len())?;
        self.run(level, out, inputs, Some(out_p), out_t)
    }

    /// [`Fusion::eval`] without the primal of the output: `out_t[i]` only (the derivative; the
    /// primals of the intermediates are computed all the same, in registers).
    ///
    /// # Errors
    /// As [`Fusion::eval`].
    pub fn eval_tangent(
        &self,
        out: FusedVar,
        inputs: &[(&[f64], Option<&[f64]>)],
        out_t: &mut [f64],
    ) -> Result<bool, KernelError> {
        self.eval_tangent_with_level(Level::best(), out, inputs, out_t)
    }

    /// [`Fusion::eval_tangent`] run with a given [`Level`].
    ///
    /// # Errors
    /// As [`Fusion::eval_with_level`].
    pub fn eval_tangent_with_level(
        &self,
        level: Level,
        out: FusedVar,
        inputs: &[(&[f64], Option<&[f64]>)],
        out_t: &mut [f64],
    ) -> Result<bool, KernelError> {
        self.run(level, out, inputs, None, out_t)
    }

    /// The checks of [`Fusion::eval_with_level`] (`n = out_t.len()`), then the pass.
    fn run(
        &self,
        level: Level,
        out: FusedVar,
        inputs: &[(&[f64], Option<&[f64]>)],
        out_p: Option<&mut [f64]>,
        out_t: &mut [f64],
    ) -> Result<bool, KernelError> {
        let n = out_t.len();
        for (p, t) in inputs {
            check_primal("input primal", p.len(), n)?;
            if let Some(t) = t {
                check_primal("input tangent", t.len(), n)?;
            }
        }
        if inputs.len() != self.n_inputs || !self.is_consistent(out) {
            return Err(KernelError::FusedArguments {
                expected: self.n_inputs,
                found: inputs.len(),
            });
        }
        run(
            level,
            FusedMany {
                steps: &self.steps,
                n_regs: self.n_inputs + self.steps.len(),
                consts: &[],
                checked: &self.checked,
                out: out.0 as usize,
                inputs,
                out_p,
                out_t,
            },
        )
    }
}

/// One pass of a straight-line program over the points: a [`Program`] of the tape (one input,
/// constants in registers) or a [`Fusion`] (several inputs, constants in the instructions).
/// Inputs are registers `0..inputs.len()`, a missing tangent is a row of ones; returns whether
/// the primals of the `checked` registers were all finite.
struct FusedMany<'a> {
    steps: &'a [(u32, Instr)],
    n_regs: usize,
    /// Registers holding a constant (tangent 0) before the first step.
    consts: &'a [(u32, f64)],
    checked: &'a [u32],
    out: usize,
    inputs: &'a [(&'a [f64], Option<&'a [f64]>)],
    out_p: Option<&'a mut [f64]>,
    out_t: &'a mut [f64],
}

impl WithSimd for FusedMany<'_> {
    type Output = bool;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> bool {
        let FusedMany {
            steps,
            n_regs,
            consts,
            checked,
            out,
            inputs,
            mut out_p,
            out_t,
        } = self;
        let (zero, one) = (simd.splat_f64s(0.0), simd.splat_f64s(1.0));
        let mut regs: Vec<Reg<S>> = vec![[[zero; GROUP]; 2]; n_regs];
        for &(r, c) in consts {
            regs[r as usize] = [[simd.splat_f64s(c); GROUP], [zero; GROUP]];
        }
        let lanes = GROUP * S::F64_LANES;
        let n = out_t.len();
        let full = n / lanes * lanes;
        // `p * 0` is zero for a finite `p` and NaN otherwise: the sum stays zero while every
        // checked primal is finite.
        let mut bad = zero;
        let mut start = 0;
        while start < full {
            for (reg, (p, t)) in regs.iter_mut().zip(inputs) {
                reg[0].copy_from_slice(S::as_simd_f64s(&p[start..start + lanes]).0);
                match t {
                    Some(t) => reg[1].copy_from_slice(S::as_simd_f64s(&t[start..start + lanes]).0),
                    None => reg[1] = [one; GROUP],
                }
            }
            eval(simd, steps, &mut regs);
            for &r in checked {
                for &p in &regs[r as usize][0] {
                    bad = simd.mul_add_e_f64s(p, zero, bad);
                }
            }
            if let Some(out_p) = out_p.as_deref_mut() {
                let vo = &mut out_p[start..start + lanes];
                S::as_mut_simd_f64s(vo).0.copy_from_slice(&regs[out][0]);
            }
            let to = &mut out_t[start..start + lanes];
            S::as_mut_simd_f64s(to).0.copy_from_slice(&regs[out][1]);
            start += lanes;
        }
        let mut buf = [0.0; GROUP * MAX_LANES];
        let buf = &mut buf[..lanes];
        let mut finite = {
            S::as_mut_simd_f64s(buf).0.copy_from_slice(&[bad; GROUP]);
            buf.iter().all(|v| *v == 0.0)
        };
        let rest = n - full;
        if rest > 0 {
            // The last points, padded with zeros whose results are dropped (and not checked).
            for (reg, (p, t)) in regs.iter_mut().zip(inputs) {
                for (k, src) in [Some(*p), *t].into_iter().enumerate() {
                    match src {
                        Some(src) => {
                            buf.fill(0.0);
                            buf[..rest].copy_from_slice(&src[full..]);
                            reg[k].copy_from_slice(S::as_simd_f64s(buf).0);
                        }
                        None => reg[k] = [one; GROUP],
                    }
                }
            }
            eval(simd, steps, &mut regs);
            for &r in checked {
                S::as_mut_simd_f64s(buf)
                    .0
                    .copy_from_slice(&regs[r as usize][0]);
                finite &= buf[..rest].iter().all(|v| v.is_finite());
            }
            if let Some(out_p) = out_p {
                S::as_mut_simd_f64s(buf).0.copy_from_slice(&regs[out][0]);
                out_p[full..].copy_from_slice(&buf[..rest]);
            }
            S::as_mut_simd_f64s(buf).0.copy_from_slice(&regs[out][1]);
            out_t[full..].copy_from_slice(&buf[..rest]);
        }
        finite
    }
}

// ---------------------------------------------------------------------------------------------
// Several tangent rows: the primal program once per block of points, then the tangent program
// once per row
// ---------------------------------------------------------------------------------------------

/// An input of [`Fusion::eval_rows`]: `n` primal values and `k` tangent rows of `n` values,
/// `stride >= n` apart (row `j` is `tangent[j * stride..j * stride + n]`; `stride = n` for a
/// C-ordered `(k, n)` block, more for a view such as `x[:n]` of a longer array's tangent, read
/// in place as [`super::Operand::Rows`]).
#[derive(Clone, Copy, Debug)]
pub struct FusedRows<'a> {
    /// `n` values.
    pub primal: &'a [f64],
    /// `(k - 1) * stride + n` values.
    pub tangent: &'a [f64],
    /// The distance between the starts of consecutive rows.
    pub stride: usize,
}

impl<'a> FusedRows<'a> {
    /// The input restricted to tangent rows `j0..j1` of `n` elements, as
    /// [`super::Operand::row_block`]: an evaluation on rows `j0..j1` of every input gives rows
    /// `j0..j1` of the evaluation on all of them.
    ///
    /// # Panics
    /// If the rows are not there (a checked input has all `k` of them).
    #[must_use]
    pub fn row_block(&self, j0: usize, j1: usize, n: usize) -> FusedRows<'a> {
        FusedRows {
            primal: self.primal,
            tangent: if j1 > j0 {
                &self.tangent[j0 * self.stride..(j1 - 1) * self.stride + n]
            } else {
                &[]
            },
            stride: self.stride,
        }
    }
}

/// Register-file bytes per block of points (primal, derivative and tangent of every
/// instruction): the block is as many points as fit, between [`MIN_BLOCK`] and [`MAX_BLOCK`],
/// so that the intermediates of a row stay in the first- or second-level cache while the
/// inputs and outputs stream.
const FILE_BYTES: usize = 96 << 10;
const MIN_BLOCK: usize = 64;
const MAX_BLOCK: usize = 1024;

impl Fusion {
    /// The expression on every point of inputs with `k` tangent rows each: `out_p[i]` and
    /// `out_t[j * n + i]` are the primal and tangent row `j` of `out` at point `i`
    /// (`n = out_p.len()`, `k = out_t.len() / n`), with the tangent of each input read from its
    /// rows.
    ///
    /// Each instruction applies the vector operations of the array kernel of its operation with
    /// `k` tangent rows ([`super::add`], ..., [`super::unary_rule`]), so the results are those
    /// of the kernels run one after the other, bit for bit (NaN payloads aside). The primals of
    /// a block of points are computed once, with the derivatives of the rules; then the tangent
    /// program (linear in the tangents) runs once per row on the block, its intermediates in a
    /// small buffer.
    ///
    /// Returns whether the primals of every `+ - * /` result were finite at every point.
    ///
    /// ```
    /// use duals::kernels::{FusedRows, Fusion};
    /// // f(x, y) = x * y + 2 with two tangent rows: df = y dx + x dy
    /// let mut f = Fusion::new(2);
    /// let (x, y) = (f.input(0).unwrap(), f.input(1).unwrap());
    /// let p = f.mul(x, y);
    /// let out = f.add_const(p, 2.0);
    /// let (xp, yp) = ([3.0; 5], [4.0; 5]);
    /// let (xt, yt) = ([[1.0; 5], [0.0; 5]].concat(), [[0.0; 5], [1.0; 5]].concat());
    /// let inputs = [
    ///     FusedRows { primal: &xp, tangent: &xt, stride: 5 },
    ///     FusedRows { primal: &yp, tangent: &yt, stride: 5 },
    /// ];
    /// let (mut vp, mut vt) = ([0.0; 5], [0.0; 10]);
    /// assert!(f.eval_rows(out, &inputs, &mut vp, &mut vt).unwrap());
    /// assert_eq!((vp[0], vt[0], vt[5]), (14.0, 4.0, 3.0));
    /// ```
    ///
    /// # Errors
    /// [`KernelError::PrimalLength`] or [`KernelError::TangentLength`] if a slice does not have
    /// the lengths above (an empty `out_p` included), [`KernelError::FusedArguments`] for a
    /// wrong number of inputs or a register that is not of this expression.
    pub fn eval_rows(
        &self,
        out: FusedVar,
        inputs: &[FusedRows<'_>],
        out_p: &mut [f64],
        out_t: &mut [f64],
    ) -> Result<bool, KernelError> {
        self.eval_rows_with_level(Level::best(), out, inputs, out_p, out_t)
    }

    /// [`Fusion::eval_rows`] run with a given [`Level`].
    ///
    /// # Errors
    /// As [`Fusion::eval_rows`], and [`KernelError::LevelUnavailable`] if this CPU cannot run
    /// `level`.
    pub fn eval_rows_with_level(
        &self,
        level: Level,
        out: FusedVar,
        inputs: &[FusedRows<'_>],
        out_p: &mut [f64],
        out_t: &mut [f64],
    ) -> Result<bool, KernelError> {
        let n = out_p.len();
        self.eval_rows_into_with_level(level, out, inputs, out_p, out_t, n)
    }

    /// [`Fusion::eval_rows`] with the output's tangent rows `out_stride >= n` apart: row `j`
    /// is `out_t[j * out_stride..j * out_stride + n]` (`out_t` holds `(k - 1) * out_stride + n`
    /// values; the values between the rows are not written), as in the block of a
    /// concatenation.
    ///
    /// # Errors
    /// As [`Fusion::eval_rows`].
    pub fn eval_rows_into(
        &self,
        out: FusedVar,
        inputs: &[FusedRows<'_>],
        out_p: &mut [f64],
        out_t: &mut [f64],
        out_stride: usize,
    ) -> Result<bool, KernelError> {
        self.eval_rows_into_with_level(Level::best(), out, inputs, out_p, out_t, out_stride)
    }

    /// [`Fusion::eval_rows_into`] run with a given [`Level`].
    ///
    /// # Errors
    /// As [`Fusion::eval_rows_with_level`].
    pub fn eval_rows_into_with_level(
        &self,
        level: Level,
        out: FusedVar,
        inputs: &[FusedRows<'_>],
        out_p: &mut [f64],
        out_t: &mut [f64],
        out_stride: usize,
    ) -> Result<bool, KernelError> {
        let n = out_p.len();
        if n == 0 || out_stride < n || out_t.len() < n {
            check_primal("out_p", n, out_stride.max(1))?;
            check_primal("out_t", out_t.len(), n)?;
        }
        let k = (out_t.len() - n) / out_stride + 1;
        super::error::check_rows("out_t", out_t.len(), k, n, out_stride)?;
        for x in inputs {
            check_primal("input primal", x.primal.len(), n)?;
            super::error::check_rows("input tangent", x.tangent.len(), k, n, x.stride)?;
        }
        if inputs.len() != self.n_inputs || !self.is_consistent(out) {
            return Err(KernelError::FusedArguments {
                expected: self.n_inputs,
                found: inputs.len(),
            });
        }
        run(
            level,
            FusedRowsPass {
                fusion: self,
                out: out.0 as usize,
                inputs,
                k,
                out_p,
                out_t,
                out_stride,
            },
        )
    }
}

struct FusedRowsPass<'a> {
    fusion: &'a Fusion,
    out: usize,
    inputs: &'a [FusedRows<'a>],
    k: usize,
    out_p: &'a mut [f64],
    out_t: &'a mut [f64],
    out_stride: usize,
}

/// A register of a block: an input's slice, or the buffer of instruction `i` (the block of `b`
/// points starting at `i * b` in a file).
#[inline(always)]
fn reg_src<'s>(
    r: u32,
    n_inputs: usize,
    input: impl Fn(usize) -> &'s [f64],
    file: &'s [f64],
    b: usize,
    len: usize,
) -> &'s [f64] {
    let r = r as usize;
    if r < n_inputs {
        input(r)
    } else {
        &file[(r - n_inputs) * b..(r - n_inputs) * b + len]
    }
}

impl WithSimd for FusedRowsPass<'_> {
    type Output = bool;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> bool {
        let FusedRowsPass {
            fusion,
            out,
            inputs,
            k,
            out_p,
            out_t,
            out_stride,
        } = self;
        let n = out_p.len();
        let (ni, steps) = (fusion.n_inputs, &fusion.steps);
        let per_point = 3 * size_of::<f64>() * steps.len().max(1);
        let b = (FILE_BYTES / per_point).clamp(MIN_BLOCK, MAX_BLOCK) / 8 * 8;
        let b = b.min(n.next_multiple_of(8));
        // Primals, derivatives of the rules and tangents of the instructions, `b` points each.
        let mut prim = vec![0.0; steps.len() * b];
        let mut deriv = vec![0.0; steps.len() * b];
        let mut tan = vec![0.0; steps.len() * b];
        let plan = TangentPlan::new(fusion, out);
        // Whether the output is the last instruction (read by no other): its tangent is
        // written to `out_t` directly rather than copied there.
        let direct = !steps.is_empty() && out == ni + steps.len() - 1;
        let mut finite = true;
        for start in (0..n).step_by(b) {
            let end = n.min(start + b);
            let len = end - start;
            // The primal program, with the derivatives of the rules.
            for (i, &(_, instr)) in steps.iter().enumerate() {
                let (done, rest) = prim.split_at_mut(i * b);
                let dst = &mut rest[..len];
                let x = |r: u32| reg_src(r, ni, |r| &inputs[r].primal[start..end], done, b, len);
                let p = |r: u32| Src::Slice(x(r));
                let d = &mut deriv[i * b..i * b + len];
                match instr {
                    Instr::Add(a, c) => {
                        map::<S, 2, false>(simd, dst, [p(a), p(c)], |_, [x, y]| {
                            simd.add_f64s(x, y)
                        });
                    }
                    Instr::Sub(a, c) => {
                        map::<S, 2, false>(simd, dst, [p(a), p(c)], |_, [x, y]| {
                            simd.sub_f64s(x, y)
                        });
                    }
                    Instr::Mul(a, c) => {
                        map::<S, 2, false>(simd, dst, [p(a), p(c)], |_, [x, y]| {
                            simd.mul_f64s(x, y)
                        });
                    }
                    Instr::Div(a, c) => {
                        map::<S, 2, false>(simd, dst, [p(a), p(c)], |_, [x, y]| {
                            simd.div_f64s(x, y)
                        });
                    }
                    Instr::Neg(a) => {
                        map::<S, 1, false>(simd, dst, [p(a)], |_, [x]| simd.neg_f64s(x));
                    }
                    Instr::AddConst(a, c) => {
                        map::<S, 2, false>(simd, dst, [p(a), Src::Splat(c)], |_, [x, c]| {
                            simd.add_f64s(x, c)
                        });
                    }
                    Instr::ConstSub(c, a) => {
                        map::<S, 2, false>(simd, dst, [Src::Splat(c), p(a)], |_, [c, x]| {
                            simd.sub_f64s(c, x)
                        });
                    }
                    Instr::MulConst(a, c) => {
                        map::<S, 2, false>(simd, dst, [p(a), Src::Splat(c)], |_, [x, c]| {
                            simd.mul_f64s(x, c)
                        });
                    }
                    Instr::DivConst(a, c) => {
                        map::<S, 2, false>(simd, dst, [p(a), Src::Splat(c)], |_, [x, c]| {
                            simd.div_f64s(x, c)
                        });
                    }
                    Instr::ConstDiv(c, a) => {
                        map::<S, 2, false>(simd, dst, [Src::Splat(c), p(a)], |_, [c, x]| {
                            simd.div_f64s(c, x)
                        });
                    }
                    Instr::Unary(rule, a) | Instr::UnaryTangent(rule, a) => {
                        let x = x(a);
                        match rule {
                            SimdRule::Square => map_fn(simd, Square, x, dst, Some(d)),
                            SimdRule::Recip => map_fn(simd, Recip, x, dst, Some(d)),
                            SimdRule::Sqrt => map_fn(simd, Sqrt, x, dst, Some(d)),
                            SimdRule::Exp => map_fn(simd, Exp, x, dst, Some(d)),
                            SimdRule::ExpM1 => map_fn(simd, ExpM1, x, dst, Some(d)),
                            SimdRule::Ln => map_fn(simd, Ln, x, dst, Some(d)),
                            SimdRule::Ln1p => map_fn(simd, Ln1p, x, dst, Some(d)),
                            SimdRule::Sin => map_fn(simd, Sin, x, dst, Some(d)),
                            SimdRule::Cos => map_fn(simd, Cos, x, dst, Some(d)),
                        }
                    }
                }
            }
            for &r in &fusion.checked {
                let r = r as usize - ni;
                finite &= prim[r * b..r * b + len].iter().all(|v| v.is_finite());
            }
            let out_prim = match out.checked_sub(ni) {
                None => &inputs[out].primal[start..end],
                Some(r) => &prim[r * b..r * b + len],
            };
            out_p[start..end].copy_from_slice(out_prim);
            // The tangent program, row by row.
            for j in 0..k {
                let row = |r: usize| {
                    let x = &inputs[r];
                    &x.tangent[j * x.stride + start..j * x.stride + end]
                };
                for (i, &(_, instr)) in steps.iter().enumerate() {
                    if !plan.materialized[i] {
                        continue;
                    }
                    let (done, rest) = tan.split_at_mut(i * b);
                    // The output, when it is the last instruction, straight into its row.
                    let dst = if direct && i + 1 == steps.len() {
                        &mut out_t[j * out_stride + start..j * out_stride + end]
                    } else {
                        &mut rest[..len]
                    };
                    let t = |r: u32| Src::Slice(reg_src(r, ni, |r| row(r), done, b, len));
                    let p = |r: u32| {
                        Src::Slice(reg_src(
                            r,
                            ni,
                            |r| &inputs[r].primal[start..end],
                            &prim,
                            b,
                            len,
                        ))
                    };
                    let f = Src::Slice(&prim[i * b..i * b + len]);
                    // An operand of a sum or difference: a register's tangent, or the tangent
                    // of a folded instruction (its operand's, transformed in the same pass).
                    let folded = |r: u32| match plan.fold(r) {
                        Some((src, x)) => (t(src), x),
                        None => (t(r), Linear::Id),
                    };
                    match instr {
                        Instr::Add(a, c) => sum::<S, false>(simd, dst, folded(a), folded(c)),
                        Instr::Sub(a, c) => sum::<S, true>(simd, dst, folded(a), folded(c)),
                        Instr::Mul(a, c) => {
                            let ins = [p(c), t(a), p(a), t(c)];
                            map::<S, 4, false>(simd, dst, ins, |_, [pb, ta, pa, tb]| {
                                simd.mul_add_e_f64s(pb, ta, simd.mul_f64s(pa, tb))
                            });
                        }
                        Instr::Div(a, c) => {
                            let ins = [t(a), f, t(c), p(c)];
                            map::<S, 4, false>(simd, dst, ins, |_, [ta, f, tb, pb]| {
                                simd.div_f64s(simd.negate_mul_add_e_f64s(f, tb, ta), pb)
                            });
                        }
                        Instr::Neg(a) | Instr::ConstSub(_, a) => {
                            map::<S, 1, false>(simd, dst, [t(a)], |_, [x]| simd.neg_f64s(x));
                        }
                        Instr::AddConst(a, _) => {
                            map::<S, 1, false>(simd, dst, [t(a)], |_, [x]| x);
                        }
                        Instr::MulConst(a, c) => {
                            map::<S, 2, false>(simd, dst, [Src::Splat(c), t(a)], |_, [c, x]| {
                                simd.mul_f64s(c, x)
                            });
                        }
                        Instr::DivConst(a, c) => {
                            map::<S, 2, false>(simd, dst, [t(a), Src::Splat(c)], |_, [x, c]| {
                                simd.div_f64s(x, c)
                            });
                        }
                        Instr::ConstDiv(_, a) => {
                            map::<S, 3, false>(simd, dst, [f, t(a), p(a)], |_, [f, ta, pa]| {
                                simd.div_f64s(simd.neg_f64s(simd.mul_f64s(f, ta)), pa)
                            });
                        }
                        Instr::Unary(_, a) | Instr::UnaryTangent(_, a) => {
                            let d = Src::Slice(&deriv[i * b..i * b + len]);
                            map::<S, 2, false>(simd, dst, [d, t(a)], |_, [d, x]| {
                                simd.mul_f64s(d, x)
                            });
                        }
                    }
                }
                if !direct {
                    let out_tan = match out.checked_sub(ni) {
                        None => row(out),
                        Some(r) => &tan[r * b..r * b + len],
                    };
                    out_t[j * out_stride + start..j * out_stride + end].copy_from_slice(out_tan);
                }
            }
        }
        finite
    }
}

/// A tangent transform that folds into the sum or difference reading it: the tangent of
/// `a + c` (`Id`), `-a` and `c - a` (`Neg`), `a * c` (`Mul`: `c * ta`), `a / c` (`Div`:
/// `ta / c`), applied to the operand's tangent as it is loaded, with the same operation (so the
/// same bits) as when it is stored and read back.
#[derive(Clone, Copy, Debug)]
enum Linear {
    Id,
    Neg,
    Mul(f64),
    Div(f64),
}

/// Which instructions of [`FusedRowsPass`]'s tangent program are folded into the sums and
/// differences that read them (a tangent that is a transform of one register's, see
/// [`Linear`]) and which are stored: every instruction that is not folded, the output, and a
/// folded one read by anything but a sum or difference.
struct TangentPlan {
    n_inputs: usize,
    /// Per instruction: the register and transform of a folded instruction.
    folds: Vec<Option<(u32, Linear)>>,
    /// Per instruction: whether its tangent is computed and stored.
    materialized: Vec<bool>,
}

impl TangentPlan {
    fn new(fusion: &Fusion, out: usize) -> Self {
        let ni = fusion.n_inputs;
        let n = fusion.steps.len();
        let mut folds: Vec<Option<(u32, Linear)>> = vec![None; n];
        for (i, &(_, instr)) in fusion.steps.iter().enumerate() {
            let (a, x) = match instr {
                Instr::AddConst(a, _) => (a, Linear::Id),
                Instr::Neg(a) | Instr::ConstSub(_, a) => (a, Linear::Neg),
                Instr::MulConst(a, c) => (a, Linear::Mul(c)),
                Instr::DivConst(a, c) => (a, Linear::Div(c)),
                _ => continue,
            };
            // One transform per load: the operand itself must be stored (or an input).
            let operand_folded = (a as usize)
                .checked_sub(ni)
                .is_some_and(|r| folds[r].is_some());
            if !operand_folded {
                folds[i] = Some((a, x));
            }
        }
        let mut materialized: Vec<bool> = folds.iter().map(Option::is_none).collect();
        let mut need = |r: u32| {
            if let Some(r) = (r as usize).checked_sub(ni) {
                materialized[r] = true;
            }
        };
        need(out as u32);
        for &(_, instr) in &fusion.steps {
            match instr {
                Instr::Add(..) | Instr::Sub(..) => {}
                Instr::Mul(a, c) | Instr::Div(a, c) => {
                    need(a);
                    need(c);
                }
                Instr::Neg(a)
                | Instr::AddConst(a, _)
                | Instr::ConstSub(_, a)
                | Instr::MulConst(a, _)
                | Instr::DivConst(a, _)
                | Instr::ConstDiv(_, a)
                | Instr::Unary(_, a)
                | Instr::UnaryTangent(_, a) => need(a),
            }
        }
        TangentPlan {
            n_inputs: ni,
            folds,
            materialized,
        }
    }

    /// The register and transform to read for register `r` in a sum or difference, if `r` is
    /// a folded instruction.
    fn fold(&self, r: u32) -> Option<(u32, Linear)> {
        (r as usize)
            .checked_sub(self.n_inputs)
            .and_then(|i| self.folds[i])
    }
}

/// `x` transformed by `L` (an index into [`Linear`]'s variants: a constant, so that the
/// match is resolved at compile time) with constant `c`.
#[inline(always)]
fn linear<S: Simd, const L: u8>(simd: S, c: S::f64s, x: S::f64s) -> S::f64s {
    match L {
        0 => x,
        1 => simd.neg_f64s(x),
        2 => simd.mul_f64s(c, x),
        _ => simd.div_f64s(x, c),
    }
}

/// `dst = xa(ta) ± xb(tb)` for the transforms of the two operands (`SUB`: the difference).
#[inline(always)]
fn sum_with<S: Simd, const SUB: bool, const LA: u8, const LB: u8>(
    simd: S,
    dst: &mut [f64],
    [ta, tb]: [Src<'_>; 2],
    [ca, cb]: [f64; 2],
) {
    let (ca, cb) = (simd.splat_f64s(ca), simd.splat_f64s(cb));
    map::<S, 2, false>(simd, dst, [ta, tb], |_, [x, y]| {
        let (x, y) = (linear::<S, LA>(simd, ca, x), linear::<S, LB>(simd, cb, y));
        if SUB {
            simd.sub_f64s(x, y)
        } else {
            simd.add_f64s(x, y)
        }
    });
}

/// [`sum_with`] for the transforms of the operands, chosen at run time once per call.
#[inline(always)]
fn sum<S: Simd, const SUB: bool>(
    simd: S,
    dst: &mut [f64],
    (ta, xa): (Src<'_>, Linear),
    (tb, xb): (Src<'_>, Linear),
) {
    let code = |x: Linear| match x {
        Linear::Id => (0u8, 0.0),
        Linear::Neg => (1, 0.0),
        Linear::Mul(c) => (2, c),
        Linear::Div(c) => (3, c),
    };
    let ((la, ca), (lb, cb)) = (code(xa), code(xb));
    let (ts, cs) = ([ta, tb], [ca, cb]);
    // The sixteen pairs of transforms, each its own loop.
    macro_rules! pairs {
        ($($a:literal $b:literal),*) => {
            match (la, lb) {
                $(($a, $b) => sum_with::<S, SUB, $a, $b>(simd, dst, ts, cs),)*
                _ => sum_with::<S, SUB, 3, 3>(simd, dst, ts, cs),
            }
        };
    }
    pairs!(0 0, 0 1, 0 2, 0 3, 1 0, 1 1, 1 2, 1 3, 2 0, 2 1, 2 2, 2 3, 3 0, 3 1, 3 2);
}
