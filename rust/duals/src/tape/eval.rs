//! The evaluator, written once for every number type: `Tape` as a
//! [`VectorFunction`], a [`ScalarFunction`] view, and the checked calls bindings use.
//!
//! [`run`] applies the register program through a [`Frame`]: [`Regs`] holds one number per
//! register (one point), [`Cols`] a column of numbers per register (a block of points, for the
//! batch forms). Which method of [`DualNum`] each instruction calls is written here once; the
//! derivatives come from the number types and so from [`crate::rules`].

use core::any::Any;
use core::cell::RefCell;

use crate::drivers::{
    gradient, hessian_into, hvp, jacobian_into, jvp_into, Config, HessianMethod, Matrix,
    ScalarFunction, VectorFunction,
};
use crate::number::DualNum;
use crate::rules::{BinaryRule, UnaryRule};

use super::hessian::HessianPlan;
use super::plan::{Passive, Step};
use super::{Op, Tape, TapeError, Var};

// ---------------------------------------------------------------------------------------------
// One program, two frames
// ---------------------------------------------------------------------------------------------

/// Where a step reads and writes: one number per register, or a column per register.
pub(super) trait Frame<D> {
    /// `dst = f(a)`.
    fn map1(&mut self, dst: u32, a: u32, f: impl Fn(D) -> D);
    /// `dst = f(a, b)`.
    fn map2(&mut self, dst: u32, a: u32, b: u32, f: impl Fn(D, D) -> D);
    /// `dst = f(a, b, c, d)`.
    fn map4(&mut self, dst: u32, src: [u32; 4], f: impl Fn(D, D, D, D) -> D);
}

/// Runs `steps` in `frame`. The one place that says what each instruction computes.
///
/// A passive step ([`Passive`]) is computed on the real parts of its operands and gives a
/// number without tangents; `+ - * /` with one passive operand take it as a real, exactly as
/// the constant forms do (`a + c`, `c - a` as `-a + c`, `c / a` by the quotient rule). The
/// flag `passive` ([`Plan::passive`](super::plan::Plan::passive)) says whether any step needs
/// that; without it, the loop does not look.
#[inline(always)]
pub(super) fn run<D: DualNum<f64>, Fr: Frame<D>>(steps: &[Step], passive: bool, frame: &mut Fr) {
    if passive {
        run_passive(steps, frame);
    } else {
        run_steps::<D, Fr, false>(steps, frame);
    }
}

/// [`run`] looking at passive operands: out of line, so that the common loop inlines as before.
#[inline(never)]
fn run_passive<D: DualNum<f64>, Fr: Frame<D>>(steps: &[Step], frame: &mut Fr) {
    run_steps::<D, Fr, true>(steps, frame);
}

#[inline(always)]
fn run_steps<D: DualNum<f64>, Fr: Frame<D>, const PASSIVE: bool>(steps: &[Step], frame: &mut Fr) {
    for step in steps {
        let d = step.dst;
        let p = if PASSIVE { step.passive } else { Passive::NONE };
        if p.result() {
            passive_step(frame, d, step.op);
            continue;
        }
        match step.op {
            Op::Add(a, b) if p.operand(1) => frame.map2(d, a.0, b.0, |x, c| x + c.re()),
            Op::Add(a, b) if p.operand(0) => frame.map2(d, a.0, b.0, |c, y| y + c.re()),
            Op::Add(a, b) => frame.map2(d, a.0, b.0, |x, y| x + y),
            Op::Sub(a, b) if p.operand(1) => frame.map2(d, a.0, b.0, |x, c| x - c.re()),
            Op::Sub(a, b) if p.operand(0) => frame.map2(d, a.0, b.0, |c, y| -y + c.re()),
            Op::Sub(a, b) => frame.map2(d, a.0, b.0, |x, y| x - y),
            Op::Mul(a, b) if p.operand(1) => frame.map2(d, a.0, b.0, |x, c| x * c.re()),
            Op::Mul(a, b) if p.operand(0) => frame.map2(d, a.0, b.0, |c, y| y * c.re()),
            Op::Mul(a, b) => frame.map2(d, a.0, b.0, |x, y| x * y),
            Op::Div(a, b) if p.operand(1) => frame.map2(d, a.0, b.0, |x, c| x / c.re()),
            Op::Div(a, b) if p.operand(0) => frame.map2(d, a.0, b.0, |c, y| D::from_re(c.re()) / y),
            Op::Div(a, b) => frame.map2(d, a.0, b.0, |x, y| x / y),
            Op::Neg(a) => frame.map1(d, a.0, |x| -x),
            Op::AddConst(a, c) => frame.map1(d, a.0, move |x| x + c),
            Op::ConstSub(c, a) => frame.map1(d, a.0, move |x| -x + c),
            Op::MulConst(a, c) => frame.map1(d, a.0, move |x| x * c),
            Op::DivConst(a, c) => frame.map1(d, a.0, move |x| x / c),
            Op::ConstDiv(c, a) => frame.map1(d, a.0, move |x| D::from_re(c) / x),
            Op::Unary(rule, a) => unary(frame, d, a.0, rule),
            Op::Binary(rule, a, b) => binary(frame, d, a.0, b.0, rule),
            Op::Min(a, b) => frame.map2(d, a.0, b.0, |x, y| x.min(y)),
            Op::Max(a, b) => frame.map2(d, a.0, b.0, |x, y| x.max(y)),
            Op::Select {
                compare,
                if_true,
                if_false,
            } => {
                let op = compare.op;
                frame.map4(
                    d,
                    [compare.a.0, compare.b.0, if_true.0, if_false.0],
                    move |a, b, t, f| if op.eval(a.re(), b.re()) { t } else { f },
                )
            }
        }
    }
}

/// The operands of `op` (in the order of [`Op::for_each_operand`], padded with the first to
/// four) and `op` reading local registers `0 .. 4` in their place.
#[inline]
pub(super) fn operands(op: Op) -> ([u32; 4], Op) {
    let mut src = [u32::MAX; 4];
    let mut k = 0;
    let local = op.map_operands(|v| {
        src[k] = v.0;
        k += 1;
        Var(k as u32 - 1)
    });
    let first = src[0];
    src.iter_mut().skip(k).for_each(|s| *s = first);
    (src, local)
}

/// `op`, reading local registers `0 .. 4` (see [`operands`]), on the reals `args`.
#[inline(never)]
pub(super) fn eval_real(local: Op, args: [f64; 4]) -> f64 {
    let mut regs = [args[0], args[1], args[2], args[3], 0.0];
    run::<f64, _>(&[Step::new(local, 4)], false, &mut Regs(&mut regs));
    regs[4]
}

/// A passive step: `op` on the real parts of its operands, a number without tangents.
#[inline(never)]
fn passive_step<D: DualNum<f64>, Fr: Frame<D>>(frame: &mut Fr, d: u32, op: Op) {
    let (src, local) = operands(op);
    frame.map4(d, src, move |a, b, c, e| {
        D::from_re(eval_real(local, [a.re(), b.re(), c.re(), e.re()]))
    });
}

/// A unary rule as the [`DualNum`] method of the same name; the match is outside the frame's
/// loop, so a column loop calls one function.
#[inline(always)]
fn unary<D: DualNum<f64>, Fr: Frame<D>>(frame: &mut Fr, d: u32, a: u32, rule: UnaryRule) {
    use UnaryRule::*;
    match rule {
        Recip => frame.map1(d, a, D::recip),
        Powi(n) => frame.map1(d, a, move |x| x.powi(n)),
        Powf(p) => frame.map1(d, a, move |x| x.powf(p)),
        Sqrt => frame.map1(d, a, D::sqrt),
        Cbrt => frame.map1(d, a, D::cbrt),
        Exp => frame.map1(d, a, D::exp),
        Exp2 => frame.map1(d, a, D::exp2),
        ExpM1 => frame.map1(d, a, D::exp_m1),
        Ln => frame.map1(d, a, D::ln),
        Log2 => frame.map1(d, a, D::log2),
        Log10 => frame.map1(d, a, D::log10),
        Ln1p => frame.map1(d, a, D::ln_1p),
        Sin => frame.map1(d, a, D::sin),
        Cos => frame.map1(d, a, D::cos),
        Tan => frame.map1(d, a, D::tan),
        Asin => frame.map1(d, a, D::asin),
        Acos => frame.map1(d, a, D::acos),
        Atan => frame.map1(d, a, D::atan),
        Sinh => frame.map1(d, a, D::sinh),
        Cosh => frame.map1(d, a, D::cosh),
        Tanh => frame.map1(d, a, D::tanh),
        Asinh => frame.map1(d, a, D::asinh),
        Acosh => frame.map1(d, a, D::acosh),
        Atanh => frame.map1(d, a, D::atanh),
        Abs => frame.map1(d, a, D::abs),
        Erf => frame.map1(d, a, D::erf),
        Erfc => frame.map1(d, a, D::erfc),
        Floor => frame.map1(d, a, D::floor),
        Ceil => frame.map1(d, a, D::ceil),
        Round => frame.map1(d, a, D::round),
        Trunc => frame.map1(d, a, D::trunc),
        Signum => frame.map1(d, a, D::signum),
    }
}

/// A binary rule as the [`DualNum`] method (or operator) of the same name.
#[inline(always)]
fn binary<D: DualNum<f64>, Fr: Frame<D>>(frame: &mut Fr, d: u32, a: u32, b: u32, rule: BinaryRule) {
    match rule {
        BinaryRule::Pow => frame.map2(d, a, b, D::powd),
        BinaryRule::Atan2 => frame.map2(d, a, b, D::atan2),
        BinaryRule::Hypot => frame.map2(d, a, b, D::hypot),
        BinaryRule::Rem => frame.map2(d, a, b, |x, y| x % y),
    }
}

/// One number per register: the evaluation of one point.
pub(super) struct Regs<'a, D>(pub(super) &'a mut [D]);

impl<D: Copy> Frame<D> for Regs<'_, D> {
    #[inline(always)]
    fn map1(&mut self, dst: u32, a: u32, f: impl Fn(D) -> D) {
        let v = f(self.0[a as usize]);
        self.0[dst as usize] = v;
    }
    #[inline(always)]
    fn map2(&mut self, dst: u32, a: u32, b: u32, f: impl Fn(D, D) -> D) {
        let v = f(self.0[a as usize], self.0[b as usize]);
        self.0[dst as usize] = v;
    }
    #[inline(always)]
    fn map4(&mut self, dst: u32, s: [u32; 4], f: impl Fn(D, D, D, D) -> D) {
        let r = &*self.0;
        let v = f(
            r[s[0] as usize],
            r[s[1] as usize],
            r[s[2] as usize],
            r[s[3] as usize],
        );
        self.0[dst as usize] = v;
    }
}

/// A column per register: register `r` is `data[r * stride ..][.. len]`, one number per point
/// of a block. Each step is one loop over the block, which the compiler vectorizes where the
/// arithmetic allows (plain `f64`).
pub(super) struct Cols<'a, D> {
    pub(super) data: &'a mut [D],
    pub(super) stride: usize,
    pub(super) len: usize,
}

/// The destination column and `K` source columns, or `None` if a source is the destination
/// (the register plan never does that) or out of range.
#[inline(always)]
pub(super) fn split_cols<D, const K: usize>(
    data: &mut [D],
    stride: usize,
    len: usize,
    dst: u32,
    src: [u32; K],
) -> Option<(&mut [D], [&[D]; K])> {
    let dst = dst as usize;
    let (lo, rest) = data.split_at_mut_checked(dst.checked_mul(stride)?)?;
    let (out, hi) = rest.split_at_mut_checked(stride)?;
    let (lo, hi): (&[D], &[D]) = (lo, hi);
    let mut cols: [&[D]; K] = [&[]; K];
    for (c, &s) in cols.iter_mut().zip(&src) {
        let s = s as usize;
        *c = if s < dst {
            lo.get(s * stride..s * stride + len)?
        } else if s > dst {
            let o = (s - dst - 1) * stride;
            hi.get(o..o + len)?
        } else {
            return None;
        };
    }
    Some((out.get_mut(..len)?, cols))
}

impl<D: Copy> Cols<'_, D> {
    /// The slow path for aliasing registers: element by element through indices.
    #[inline(never)]
    fn by_index<const K: usize>(&mut self, dst: u32, src: [u32; K], f: impl Fn([D; K]) -> D) {
        let at = |r: u32, k: usize| (r as usize) * self.stride + k;
        for k in 0..self.len {
            let (d, s) = (at(dst, k), src.map(|r| at(r, k)));
            if d < self.data.len() && s.iter().all(|&i| i < self.data.len()) {
                let v = f(s.map(|i| self.data[i]));
                self.data[d] = v;
            }
        }
    }
}

impl<D: Copy> Frame<D> for Cols<'_, D> {
    #[inline(always)]
    fn map1(&mut self, dst: u32, a: u32, f: impl Fn(D) -> D) {
        match split_cols(self.data, self.stride, self.len, dst, [a]) {
            Some((out, [a])) => {
                for (o, &x) in out.iter_mut().zip(a) {
                    *o = f(x);
                }
            }
            None => self.by_index(dst, [a], |[x]| f(x)),
        }
    }
    #[inline(always)]
    fn map2(&mut self, dst: u32, a: u32, b: u32, f: impl Fn(D, D) -> D) {
        match split_cols(self.data, self.stride, self.len, dst, [a, b]) {
            Some((out, [a, b])) => {
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = f(x, y);
                }
            }
            None => self.by_index(dst, [a, b], |[x, y]| f(x, y)),
        }
    }
    #[inline(always)]
    fn map4(&mut self, dst: u32, s: [u32; 4], f: impl Fn(D, D, D, D) -> D) {
        match split_cols(self.data, self.stride, self.len, dst, s) {
            Some((out, [a, b, c, d])) => {
                for ((((o, &a), &b), &c), &d) in out.iter_mut().zip(a).zip(b).zip(c).zip(d) {
                    *o = f(a, b, c, d);
                }
            }
            None => self.by_index(dst, s, |[a, b, c, d]| f(a, b, c, d)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Per-thread registers
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// One register buffer per number type (`Vec<D>` behind `dyn Any`), kept for the thread's
    /// life and grown to the largest tape it has evaluated.
    static REGISTERS: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with `len` registers of type `D` (contents unspecified) from this thread's cache.
/// A nested call (a tape evaluated inside the evaluation of another, on this thread) and a call
/// during the thread's teardown get a fresh buffer instead.
#[inline]
pub(super) fn with_registers<D: Copy + 'static, R>(
    len: usize,
    fill: D,
    mut f: impl FnMut(&mut [D]) -> R,
) -> R {
    let cached = REGISTERS.try_with(|cell| {
        let Ok(mut list) = cell.try_borrow_mut() else {
            return f(&mut vec![fill; len]);
        };
        let at = match list.iter().position(|b| b.is::<Vec<D>>()) {
            Some(at) => at,
            None => {
                list.push(Box::new(Vec::<D>::new()));
                list.len() - 1
            }
        };
        match list[at].downcast_mut::<Vec<D>>() {
            Some(regs) => {
                if regs.len() < len {
                    regs.resize(len, fill);
                }
                f(&mut regs[..len])
            }
            None => f(&mut vec![fill; len]),
        }
    });
    match cached {
        Ok(r) => r,
        Err(_) => f(&mut vec![fill; len]),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation on one point
// ---------------------------------------------------------------------------------------------

impl Tape {
    /// Loads `x` and the constants into `regs` and runs the first `steps` instructions.
    /// `x.len() == n` and `regs.len() == n_regs`.
    #[inline]
    fn run_point<D: DualNum<f64>>(&self, x: &[D], regs: &mut [D], steps: usize) {
        let n = self.n_inputs;
        regs[..n].copy_from_slice(x);
        for (r, &c) in regs[n..].iter_mut().zip(&self.consts) {
            *r = D::from_re(c);
        }
        run(
            &self.plan.steps[..steps],
            self.plan.passive,
            &mut Regs(regs),
        );
    }

    /// Whether every guard holds in `regs` (after a run over all instructions).
    fn guards_hold_in(&self, regs: &[f64]) -> bool {
        self.plan.guards.iter().all(|g| {
            let c = g.compare;
            c.op.eval(regs[c.a.index()], regs[c.b.index()]) == g.expected
        })
    }

    fn check_input(&self, x: usize) -> Result<(), TapeError> {
        if x == self.n_inputs {
            Ok(())
        } else {
            Err(TapeError::InputLength {
                expected: self.n_inputs,
                found: x,
            })
        }
    }

    fn check_scalar(&self, call: &'static str) -> Result<(), TapeError> {
        if self.outputs.len() == 1 {
            Ok(())
        } else {
            Err(TapeError::NotScalar {
                call,
                outputs: self.outputs.len(),
            })
        }
    }

    /// `f(x)`, length `m`.
    ///
    /// # Errors
    /// [`TapeError::InputLength`] if `x.len() != n`.
    pub fn value(&self, x: &[f64]) -> Result<Vec<f64>, TapeError> {
        let mut out = vec![0.0; self.outputs.len()];
        self.value_into(x, &mut out)?;
        Ok(out)
    }

    /// `f(x)` into `out` (length `m`). Does not allocate after the first call on a thread.
    ///
    /// # Errors
    /// [`TapeError::InputLength`], or [`TapeError::Length`] for `out`.
    pub fn value_into(&self, x: &[f64], out: &mut [f64]) -> Result<(), TapeError> {
        self.check_input(x.len())?;
        check_len("out", self.outputs.len(), out.len())?;
        self.eval(x, out);
        Ok(())
    }

    /// `f(x)` into `out`, and whether the guards hold at `x`, from one pass over the whole
    /// program: what a compiled call does first. When it returns `false` the values are those
    /// of this tape's branch, not of the function at `x`.
    ///
    /// # Errors
    /// As [`value_into`](Self::value_into).
    pub fn value_and_guards_into(&self, x: &[f64], out: &mut [f64]) -> Result<bool, TapeError> {
        self.check_input(x.len())?;
        check_len("out", self.outputs.len(), out.len())?;
        Ok(with_registers(self.plan.n_regs, 0.0, |regs| {
            self.run_point(x, regs, self.plan.steps.len());
            for (o, &r) in out.iter_mut().zip(&self.plan.outputs) {
                *o = regs[r as usize];
            }
            self.guards_hold_in(regs)
        }))
    }

    /// Whether every guard holds at `x` (comparisons of primal values, by the same `f64`
    /// evaluation as [`value`](Self::value)): if so, this tape computes the traced function at
    /// `x`; if not, the function must be traced again there. `false` if `x.len() != n`.
    pub fn guards_hold(&self, x: &[f64]) -> bool {
        if x.len() != self.n_inputs {
            return false;
        }
        if self.guards.is_empty() {
            return true;
        }
        with_registers(self.plan.n_regs, 0.0, |regs| {
            self.run_point(x, regs, self.plan.steps.len());
            self.guards_hold_in(regs)
        })
    }

    /// The Jacobian `J[(i, j)] = ∂fᵢ/∂xⱼ` (`m × n`), by [`crate::jacobian`] in chunks of the
    /// width `cfg` gives.
    ///
    /// # Errors
    /// [`TapeError::InputLength`], or a driver error (an invalid chunk width).
    pub fn jacobian(&self, x: &[f64], cfg: &mut Config<f64>) -> Result<Matrix<f64>, TapeError> {
        self.check_input(x.len())?;
        Ok(crate::drivers::jacobian(self, x, cfg)?)
    }

    /// `f(x)` into `value` (length `m`) and `J` into `jac` (row-major `m × n`), by
    /// [`crate::jacobian_into`]; no allocation once `cfg` and this thread have served a tape of
    /// this size.
    ///
    /// # Errors
    /// [`TapeError::InputLength`], or a driver error (buffer lengths, chunk width).
    pub fn jacobian_into(
        &self,
        x: &[f64],
        value: &mut [f64],
        jac: &mut [f64],
        cfg: &mut Config<f64>,
    ) -> Result<(), TapeError> {
        self.check_input(x.len())?;
        Ok(jacobian_into(self, x, value, jac, cfg)?)
    }

    /// `(f(x), J v)` in one pass, by [`crate::jvp`].
    ///
    /// # Errors
    /// [`TapeError::InputLength`], or a driver error if `v.len() != n`.
    pub fn jvp(
        &self,
        x: &[f64],
        v: &[f64],
        cfg: &mut Config<f64>,
    ) -> Result<(Vec<f64>, Vec<f64>), TapeError> {
        self.check_input(x.len())?;
        let m = self.outputs.len();
        let (mut value, mut jv) = (vec![0.0; m], vec![0.0; m]);
        jvp_into(self, x, v, &mut value, &mut jv, cfg)?;
        Ok((value, jv))
    }

    /// `∇f(x)` of a scalar-valued tape, by [`crate::gradient`].
    ///
    /// # Errors
    /// [`TapeError::InputLength`], [`TapeError::NotScalar`].
    pub fn gradient(&self, x: &[f64], cfg: &mut Config<f64>) -> Result<Vec<f64>, TapeError> {
        self.check_input(x.len())?;
        Ok(gradient(&self.as_scalar()?, x, cfg)?)
    }

    /// `∇²f(x)` of a scalar-valued tape (`n × n`, exactly symmetric).
    ///
    /// With [`HessianMethod::Auto`] (the default), by sparse second-order propagation over the
    /// tape's structure, one pass (see `tape/hessian.rs`): entries that are structurally zero
    /// (no instruction combines the two inputs) are exactly 0 at every point, even where the
    /// dense methods would give NaN from `0 · inf`. Another method of `cfg` goes through
    /// [`crate::hessian`] with it; so does `Auto` for a tape whose sparse program would be
    /// too large.
    ///
    /// # Errors
    /// [`TapeError::InputLength`], [`TapeError::NotScalar`], or a driver error (the `Dual2`
    /// method for `n > 8`).
    pub fn hessian(&self, x: &[f64], cfg: &mut Config<f64>) -> Result<Matrix<f64>, TapeError> {
        let n = self.n_inputs;
        let mut h = vec![0.0; n * n];
        self.hessian_into(x, &mut h, cfg)?;
        Ok(Matrix::from_row_major(n, n, h).expect("n * n entries"))
    }

    /// [`hessian`](Self::hessian) into `out` (row-major `n × n`), without allocating (after
    /// the first call) on the sparse path.
    ///
    /// # Errors
    /// As [`hessian`](Self::hessian), and [`TapeError::Length`] if `out.len() != n²`.
    pub fn hessian_into(
        &self,
        x: &[f64],
        out: &mut [f64],
        cfg: &mut Config<f64>,
    ) -> Result<(), TapeError> {
        self.check_input(x.len())?;
        let n = self.n_inputs;
        check_len("out", n * n, out.len())?;
        let scalar = self.as_scalar()?;
        if cfg.hessian_method() == HessianMethod::Auto {
            if let Some(plan) = self.hessian_plan() {
                out.fill(0.0);
                with_registers(plan.work_len(), 0.0, |w| plan.eval(x, &self.consts, out, w));
                return Ok(());
            }
        }
        let mut grad = vec![0.0; n];
        hessian_into(&scalar, x, &mut grad, out, cfg)?;
        Ok(())
    }

    /// The sparse second-order program, built at the first call (a scalar tape only).
    fn hessian_plan(&self) -> Option<&HessianPlan> {
        self.hessian
            .get_or_init(|| {
                let &[out] = &self.plan.outputs[..] else {
                    return None;
                };
                HessianPlan::new(self.n_inputs, &self.plan, self.n_main, out).map(Box::new)
            })
            .as_deref()
    }

    /// `∇²f(x) v` of a scalar-valued tape, by [`crate::hvp`].
    ///
    /// # Errors
    /// [`TapeError::InputLength`], [`TapeError::NotScalar`], or a driver error if
    /// `v.len() != n`.
    pub fn hvp(&self, x: &[f64], v: &[f64], cfg: &mut Config<f64>) -> Result<Vec<f64>, TapeError> {
        self.check_input(x.len())?;
        Ok(hvp(&self.as_scalar()?, x, v, cfg)?)
    }

    /// The tape as a [`ScalarFunction`], for the gradient, Hessian and HVP drivers.
    ///
    /// # Errors
    /// [`TapeError::NotScalar`] unless the tape has exactly one output.
    pub fn as_scalar(&self) -> Result<ScalarTape<'_>, TapeError> {
        self.check_scalar("a scalar view (gradient, hessian, hvp)")?;
        Ok(ScalarTape(self))
    }
}

pub(super) fn check_len(
    argument: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), TapeError> {
    if expected == found {
        Ok(())
    } else {
        Err(TapeError::Length {
            argument,
            expected,
            found,
        })
    }
}

/// The evaluator of a tape for the drivers: one generic evaluation for every number type.
///
/// `eval` cannot return an error; given an input or output of the wrong length it fills the
/// output with NaN. The `Tape` methods check lengths first and return
/// [`TapeError::InputLength`].
impl VectorFunction<f64> for Tape {
    #[inline]
    fn eval<D: DualNum<f64>>(&self, x: &[D], y: &mut [D]) {
        if x.len() != self.n_inputs || y.len() != self.outputs.len() {
            y.fill(D::from_re(f64::NAN));
            return;
        }
        with_registers(self.plan.n_regs, D::zero(), |regs| {
            self.run_point(x, regs, self.n_main);
            for (yi, &r) in y.iter_mut().zip(&self.plan.outputs) {
                *yi = regs[r as usize];
            }
        })
    }

    fn output_len(&self, _n: usize) -> usize {
        self.outputs.len()
    }
}

/// A scalar-valued [`Tape`] as a [`ScalarFunction`]; from [`Tape::as_scalar`].
///
/// As with the vector form, an input of the wrong length gives NaN.
#[derive(Clone, Copy, Debug)]
pub struct ScalarTape<'a>(&'a Tape);

impl ScalarTape<'_> {
    /// The tape.
    pub fn tape(&self) -> &Tape {
        self.0
    }
}

impl ScalarFunction<f64> for ScalarTape<'_> {
    #[inline]
    fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
        let mut y = [D::zero()];
        VectorFunction::eval(self.0, x, &mut y);
        y[0]
    }
}
