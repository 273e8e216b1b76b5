//! Batch forms: one tape at many points, each instruction applied to a column of points.
//!
//! Points are processed in blocks whose columns (one per register) fit in about 256 KiB, at
//! most 1024 points, so memory stays bounded for any number of points; each call allocates
//! one block buffer. Within a block every instruction is one loop over the block:
//!
//! - [`Tape::value_batch`], [`Tape::guards_batch`] and [`Tape::second_derivative_batch`] run
//!   the generic evaluator with a column per register ([`Cols`]) on `f64` and
//!   [`HyperDual64`]: the same arithmetic as one point at a time, so the results are
//!   bit-identical to [`Tape::value`] and the [`second_derivative`](crate::second_derivative)
//!   of the tape; plain `f64` columns vectorize.
//! - [`Tape::derivative_batch`] keeps a primal and a tangent column per register and applies
//!   the array kernels of [`crate::kernels`] (one tangent row, SIMD with run-time dispatch);
//!   a tape made only of `+ - * /`, negation and the unary rules with a SIMD body runs instead
//!   as one fused program, a vector of points at a time with every register in a small file
//!   (the same operations, so the same bits, in one pass over memory):
//!   values and derivatives may differ from one point at a time in the last bits, where a
//!   kernel fuses a multiply-add and where `exp`, `ln`, `sin`, ... are evaluated with the
//!   vectorized functions of the kernels (within an ulp of the exact result, as libm's are).
//! - [`Tape::jacobian_batch`] calls the chunked Jacobian driver once per point.

use crate::drivers::{jacobian_into, Config};
use crate::kernels::{self, Operand};
use crate::number::{DualNum, HyperDual64};
use crate::rules::{select_first_for_max, select_first_for_min};

use super::eval::{check_len, eval_real, operands, run, split_cols, Cols};
use super::plan::Step;
use super::{Op, Tape, TapeError};

/// Bytes of register columns per block.
const BLOCK_BYTES: usize = 256 * 1024;
/// Most points per block.
const MAX_BLOCK: usize = 1024;

/// Points per block for `n_regs` registers of `elem` bytes: a multiple of 8 in `8 ..= 1024`.
fn block_len(n_regs: usize, elem: usize) -> usize {
    let w = BLOCK_BYTES / (n_regs.max(1) * elem.max(1));
    w.clamp(8, MAX_BLOCK) / 8 * 8
}

impl Tape {
    /// The number of points in a batch of `len` values.
    fn batch_len(&self, len: usize) -> Result<usize, TapeError> {
        let n = self.n_inputs;
        if n == 0 || !len.is_multiple_of(n) {
            return Err(TapeError::BatchShape {
                n_inputs: n,
                found: len,
            });
        }
        Ok(len / n)
    }

    /// `out` must hold `b` rows of `m`.
    fn check_rows(&self, argument: &'static str, b: usize, len: usize) -> Result<(), TapeError> {
        let expected = b
            .checked_mul(self.outputs.len())
            .ok_or_else(|| TapeError::TooLarge {
                what: format!("a batch of {b} points"),
            })?;
        check_len(argument, expected, len)
    }

    fn check_elementwise(&self, call: &'static str) -> Result<(), TapeError> {
        if self.n_inputs == 1 && self.outputs.len() == 1 {
            Ok(())
        } else {
            Err(TapeError::NotElementwise {
                call,
                inputs: self.n_inputs,
                outputs: self.outputs.len(),
            })
        }
    }

    /// Runs `steps` over blocks of the `b` points of `x` (row-major `b × n`) on columns of `D`
    /// made by `seed`, and calls `emit(columns, stride, first point, points)` after each block.
    fn run_blocks<D: DualNum<f64>>(
        &self,
        x: &[f64],
        b: usize,
        steps: &[Step],
        seed: impl Fn(f64) -> D,
        mut emit: impl FnMut(&[D], usize, usize, usize),
    ) {
        let (n, regs) = (self.n_inputs, self.plan.n_regs);
        let w = block_len(regs, core::mem::size_of::<D>());
        let mut data = vec![D::zero(); regs * w];
        for (i, &c) in self.consts.iter().enumerate() {
            data[(n + i) * w..(n + i + 1) * w].fill(D::from_re(c));
        }
        for start in (0..b).step_by(w) {
            let len = w.min(b - start);
            for (k, point) in x[start * n..(start + len) * n].chunks_exact(n).enumerate() {
                for (j, &v) in point.iter().enumerate() {
                    data[j * w + k] = seed(v);
                }
            }
            run(
                steps,
                self.plan.passive,
                &mut Cols {
                    data: &mut data,
                    stride: w,
                    len,
                },
            );
            emit(&data, w, start, len);
        }
    }

    /// `f` at `B` points: `x` is row-major `B × n`, `out` row-major `B × m`. Bit-identical to
    /// [`value`](Self::value) at each point.
    ///
    /// # Errors
    /// [`TapeError::BatchShape`] if `x.len()` is not a multiple of `n` (or `n = 0`),
    /// [`TapeError::Length`] if `out.len() != B m`.
    pub fn value_batch(&self, x: &[f64], out: &mut [f64]) -> Result<(), TapeError> {
        let b = self.batch_len(x.len())?;
        self.check_rows("out", b, out.len())?;
        let m = self.outputs.len();
        let outs = &self.plan.outputs;
        self.run_blocks(
            x,
            b,
            &self.plan.steps[..self.n_main],
            |v| v,
            |data, w, start, len| {
                for (i, &r) in outs.iter().enumerate() {
                    let col = &data[r as usize * w..][..len];
                    for (k, &v) in col.iter().enumerate() {
                        out[(start + k) * m + i] = v;
                    }
                }
            },
        );
        Ok(())
    }

    /// Whether the guards hold at each of `B` points (`x` row-major `B × n`, `holds` length
    /// `B`): [`guards_hold`](Self::guards_hold) for a batch, to split it among traced branches.
    ///
    /// # Errors
    /// [`TapeError::BatchShape`], [`TapeError::Length`].
    pub fn guards_batch(&self, x: &[f64], holds: &mut [bool]) -> Result<(), TapeError> {
        let b = self.batch_len(x.len())?;
        check_len("holds", b, holds.len())?;
        if self.guards.is_empty() {
            holds.fill(true);
            return Ok(());
        }
        let guards = &self.plan.guards;
        self.run_blocks(
            x,
            b,
            &self.plan.steps,
            |v| v,
            |data, w, start, len| {
                for (k, h) in holds[start..start + len].iter_mut().enumerate() {
                    *h = guards.iter().all(|g| {
                        let c = g.compare;
                        let (a, b) = (data[c.a.index() * w + k], data[c.b.index() * w + k]);
                        c.op.eval(a, b) == g.expected
                    });
                }
            },
        );
        Ok(())
    }

    /// `f(x)` and `f'(x)` at each of `B` points for an elementwise function traced at a scalar
    /// (`n = m = 1`): all three slices have length `B`. Each instruction is one call of the SIMD
    /// array kernels of [`crate::kernels`] with one tangent row over a block of points (unary
    /// rules through [`kernels::unary_rule`]). Values and derivatives may differ from those of
    /// one point at a time on [`Dual64`](crate::Dual64) in the last bits, where a kernel fuses
    /// a multiply-add or evaluates `exp`, `ln`, `sin`, ... with its vectorized functions.
    ///
    /// # Errors
    /// [`TapeError::NotElementwise`] unless `n = m = 1`, [`TapeError::Length`].
    pub fn derivative_batch(
        &self,
        x: &[f64],
        out_value: &mut [f64],
        out_derivative: &mut [f64],
    ) -> Result<(), TapeError> {
        self.check_elementwise("derivative_batch")?;
        let b = x.len();
        check_len("out_value", b, out_value.len())?;
        check_len("out_derivative", b, out_derivative.len())?;
        let level = kernels::Level::best();
        match self.fused_program(level, true) {
            Some(program) => Ok(kernels::fused_derivative_with_level(
                level,
                &program,
                x,
                Some(out_value),
                out_derivative,
            )?),
            None => self.derivative_blocks(x, Some(out_value), out_derivative),
        }
    }

    /// [`derivative_batch`](Self::derivative_batch) without the values: `f'(x)` at each of `B`
    /// points, with the same bits. Work that only the value needs is skipped (in the fused
    /// program, a logarithm whose value nothing reads is not evaluated: the derivative of
    /// `ln(1 + u)` needs `1 + u` alone).
    ///
    /// # Errors
    /// [`TapeError::NotElementwise`] unless `n = m = 1`, [`TapeError::Length`].
    pub fn derivative_only_batch(
        &self,
        x: &[f64],
        out_derivative: &mut [f64],
    ) -> Result<(), TapeError> {
        self.check_elementwise("derivative_only_batch")?;
        check_len("out_derivative", x.len(), out_derivative.len())?;
        let level = kernels::Level::best();
        match self.fused_program(level, false) {
            Some(program) => Ok(kernels::fused_derivative_with_level(
                level,
                &program,
                x,
                None,
                out_derivative,
            )?),
            None => self.derivative_blocks(x, None, out_derivative),
        }
    }

    /// [`derivative_batch`](Self::derivative_batch) instruction by instruction over blocks of
    /// points, through the array kernels.
    fn derivative_blocks(
        &self,
        x: &[f64],
        mut out_value: Option<&mut [f64]>,
        out_derivative: &mut [f64],
    ) -> Result<(), TapeError> {
        let b = x.len();
        let (n, regs) = (self.n_inputs, self.plan.n_regs);
        let w = block_len(regs, 16);
        let (mut p, mut t) = (vec![0.0; regs * w], vec![0.0; regs * w]);
        for (i, &c) in self.consts.iter().enumerate() {
            p[(n + i) * w..(n + i + 1) * w].fill(c);
        }
        let out = self.plan.outputs[0] as usize;
        for start in (0..b).step_by(w) {
            let len = w.min(b - start);
            p[..len].copy_from_slice(&x[start..start + len]);
            t[..len].fill(1.0);
            for step in &self.plan.steps[..self.n_main] {
                self.kernel_step(step, &mut p, &mut t, w, len)?;
            }
            if let Some(out_value) = out_value.as_deref_mut() {
                out_value[start..start + len].copy_from_slice(&p[out * w..][..len]);
            }
            out_derivative[start..start + len].copy_from_slice(&t[out * w..][..len]);
        }
        Ok(())
    }

    /// The main steps as a fused program ([`kernels::Program`]: every intermediate of a few
    /// vectors of points in registers, one pass over memory), when each has a vector form with
    /// the same operations as [`kernel_step`](Self::kernel_step) gives it at `level`: `+ - * /`
    /// (a constant register as an operand becomes the constant form, as the array kernels take
    /// it as a broadcast constant), negation and the unary rules with a SIMD body. `None` at
    /// [`Level::Scalar`](kernels::Level::Scalar), for any other instruction, for passive
    /// values, and for register files too large to stay in the first-level cache.
    ///
    /// Without `value` (the output's primal not wanted), a unary rule whose value no later
    /// instruction reads becomes [`kernels::Instr::UnaryTangent`] (see [`primal_reads`]).
    fn fused_program(&self, level: kernels::Level, value: bool) -> Option<kernels::Program> {
        use kernels::Instr as I;
        const MAX_REGS: usize = 64;
        let (n, c) = (self.n_inputs, self.consts.len());
        if level == kernels::Level::Scalar || n != 1 || self.plan.n_regs > MAX_REGS {
            return None;
        }
        let konst = |v: crate::tape::Var| {
            let r = v.0 as usize;
            (n..n + c).contains(&r).then(|| self.consts[r - n])
        };
        let mut steps = Vec::with_capacity(self.n_main);
        for step in &self.plan.steps[..self.n_main] {
            if step.passive.result() || (0..4).any(|i| step.passive.operand(i)) {
                return None;
            }
            let instr = match step.op {
                Op::Add(a, b) => match (konst(a), konst(b)) {
                    (None, None) => I::Add(a.0, b.0),
                    (Some(v), None) => I::AddConst(b.0, v),
                    (None, Some(v)) => I::AddConst(a.0, v),
                    _ => return None,
                },
                Op::Sub(a, b) => match (konst(a), konst(b)) {
                    (None, None) => I::Sub(a.0, b.0),
                    (Some(v), None) => I::ConstSub(v, b.0),
                    (None, Some(v)) => I::AddConst(a.0, -v),
                    _ => return None,
                },
                Op::Mul(a, b) => match (konst(a), konst(b)) {
                    (None, None) => I::Mul(a.0, b.0),
                    (Some(v), None) => I::MulConst(b.0, v),
                    (None, Some(v)) => I::MulConst(a.0, v),
                    _ => return None,
                },
                Op::Div(a, b) => match (konst(a), konst(b)) {
                    (None, None) => I::Div(a.0, b.0),
                    (Some(v), None) => I::ConstDiv(v, b.0),
                    (None, Some(v)) => I::DivConst(a.0, v),
                    _ => return None,
                },
                Op::AddConst(a, v) => I::AddConst(a.0, v),
                Op::ConstSub(v, a) => I::ConstSub(v, a.0),
                Op::MulConst(a, v) => I::MulConst(a.0, v),
                Op::DivConst(a, v) => I::DivConst(a.0, v),
                Op::ConstDiv(v, a) => I::ConstDiv(v, a.0),
                Op::Neg(a) => I::Neg(a.0),
                Op::Unary(rule, a) => I::Unary(kernels::simd_rule(rule)?, a.0),
                _ => return None,
            };
            if konst_reads(&instr, &konst) {
                return None;
            }
            steps.push((step.dst, instr));
        }
        if !value {
            let read = primal_reads(&steps, self.plan.n_regs, self.plan.outputs[0]);
            for ((_, instr), read) in steps.iter_mut().zip(read) {
                if let (I::Unary(rule, a), false) = (*instr, read) {
                    *instr = I::UnaryTangent(rule, a);
                }
            }
        }
        Some(kernels::Program {
            steps,
            n_regs: self.plan.n_regs,
            consts: (0..c).map(|i| ((n + i) as u32, self.consts[i])).collect(),
            output: self.plan.outputs[0],
        })
    }

    /// One instruction on a block of primal and tangent columns, through the array kernels.
    fn kernel_step(
        &self,
        step: &Step,
        p: &mut [f64],
        t: &mut [f64],
        w: usize,
        len: usize,
    ) -> Result<(), TapeError> {
        let (n, c) = (self.n_inputs, self.consts.len());
        // The operands, padded with the first (every instruction has one).
        let (srcs, local) = operands(step.op);
        let aliased = || TapeError::Corrupt {
            reason: "the register plan reads its destination".to_string(),
        };
        let (out_p, sp) = split_cols(p, w, len, step.dst, srcs).ok_or_else(aliased)?;
        let (out_t, st) = split_cols(t, w, len, step.dst, srcs).ok_or_else(aliased)?;
        if step.passive.result() {
            // On the values alone, as the point evaluator: no tangent.
            for (k, o) in out_p.iter_mut().enumerate() {
                *o = eval_real(local, [sp[0][k], sp[1][k], sp[2][k], sp[3][k]]);
            }
            out_t.fill(0.0);
            return Ok(());
        }
        // Operand `i`: a constant register is a broadcast constant, a passive value an array
        // of constants, neither with a tangent.
        let opnd = |i: usize| {
            let r = srcs[i] as usize;
            if (n..n + c).contains(&r) {
                Operand::ScalarConst(self.consts[r - n])
            } else if step.passive.operand(i) {
                Operand::ArrayConst(sp[i])
            } else {
                Operand::Array {
                    primal: sp[i],
                    tangent: st[i],
                }
            }
        };
        let konst = Operand::ScalarConst;
        match step.op {
            Op::Add(..) => kernels::add(opnd(0), opnd(1), 1, out_p, out_t)?,
            Op::Sub(..) => kernels::sub(opnd(0), opnd(1), 1, out_p, out_t)?,
            Op::Mul(..) => kernels::mul(opnd(0), opnd(1), 1, out_p, out_t)?,
            Op::Div(..) => kernels::div(opnd(0), opnd(1), 1, out_p, out_t)?,
            Op::AddConst(_, v) => kernels::add(opnd(0), konst(v), 1, out_p, out_t)?,
            Op::ConstSub(v, _) => kernels::sub(konst(v), opnd(0), 1, out_p, out_t)?,
            Op::MulConst(_, v) => kernels::mul(opnd(0), konst(v), 1, out_p, out_t)?,
            Op::DivConst(_, v) => kernels::div(opnd(0), konst(v), 1, out_p, out_t)?,
            Op::ConstDiv(v, _) => kernels::div(konst(v), opnd(0), 1, out_p, out_t)?,
            Op::Unary(rule, _) => kernels::unary_rule(rule, sp[0], st[0], 1, out_p, out_t)?,
            Op::Binary(rule, ..) => kernels::binary(
                |a, b| {
                    let r = rule.eval(a, b);
                    (r.f, r.da, r.db)
                },
                opnd(0),
                opnd(1),
                1,
                out_p,
                out_t,
            )?,
            Op::Neg(_) => {
                for (o, &a) in out_p.iter_mut().zip(sp[0]) {
                    *o = -a;
                }
                for (o, &a) in out_t.iter_mut().zip(st[0]) {
                    *o = -a;
                }
            }
            Op::Min(..) | Op::Max(..) | Op::Select { .. } => {
                let pick: &dyn Fn(f64, f64) -> bool = match step.op {
                    Op::Min(..) => &select_first_for_min::<f64>,
                    Op::Max(..) => &select_first_for_max::<f64>,
                    Op::Select { compare, .. } => &move |a, b| compare.op.eval(a, b),
                    _ => &|_, _| true,
                };
                // Min/max choose between their operands, a select between its last two.
                let (i, j) = if matches!(step.op, Op::Select { .. }) {
                    (2, 3)
                } else {
                    (0, 1)
                };
                let cond = sp[0].iter().zip(sp[1]);
                for (k, ((op, ot), (&a, &b))) in out_p.iter_mut().zip(out_t).zip(cond).enumerate() {
                    let s = if pick(a, b) { i } else { j };
                    (*op, *ot) = (sp[s][k], st[s][k]);
                }
            }
        }
        Ok(())
    }

    /// `f(x)`, `f'(x)` and `f''(x)` at each of `B` points for an elementwise function traced at
    /// a scalar (`n = m = 1`); all four slices have length `B`. Bit-identical to
    /// [`value_and_second_derivative`](crate::value_and_second_derivative) of the tape at each
    /// point.
    ///
    /// # Errors
    /// [`TapeError::NotElementwise`] unless `n = m = 1`, [`TapeError::Length`].
    pub fn second_derivative_batch(
        &self,
        x: &[f64],
        out_value: &mut [f64],
        out_first: &mut [f64],
        out_second: &mut [f64],
    ) -> Result<(), TapeError> {
        self.check_elementwise("second_derivative_batch")?;
        let b = x.len();
        check_len("out_value", b, out_value.len())?;
        check_len("out_first", b, out_first.len())?;
        check_len("out_second", b, out_second.len())?;
        let out = self.plan.outputs[0] as usize;
        self.run_blocks(
            x,
            b,
            &self.plan.steps[..self.n_main],
            HyperDual64::variable,
            |data, w, start, len| {
                let col = &data[out * w..][..len];
                for (k, y) in col.iter().enumerate() {
                    out_value[start + k] = y.re;
                    out_first[start + k] = y.eps1[0];
                    out_second[start + k] = y.eps12[0][0];
                }
            },
        );
        Ok(())
    }

    /// `f` and the Jacobian at each of `B` points: `x` row-major `B × n`, `out_value`
    /// `B × m`, `out_jac` `B × m × n` (point, row, column). One call of the chunked
    /// [`crate::jacobian_into`] driver per point (no SIMD across points).
    ///
    /// # Errors
    /// [`TapeError::BatchShape`], [`TapeError::Length`], or a driver error.
    pub fn jacobian_batch(
        &self,
        x: &[f64],
        out_value: &mut [f64],
        out_jac: &mut [f64],
        cfg: &mut Config<f64>,
    ) -> Result<(), TapeError> {
        let (n, m) = (self.n_inputs, self.outputs.len());
        let b = self.batch_len(x.len())?;
        self.check_rows("out_value", b, out_value.len())?;
        let per = m * n;
        check_len("out_jac", b.saturating_mul(per), out_jac.len())?;
        if m == 0 {
            return Ok(());
        }
        for ((xi, vi), ji) in x
            .chunks_exact(n)
            .zip(out_value.chunks_exact_mut(m))
            .zip(out_jac.chunks_mut(per.max(1)))
        {
            jacobian_into(self, xi, vi, &mut ji[..per], cfg)?;
        }
        Ok(())
    }
}

/// Whether a one-operand instruction reads a constant register (a passive result, which the
/// fused program does not take).
fn konst_reads(instr: &kernels::Instr, konst: &impl Fn(crate::tape::Var) -> Option<f64>) -> bool {
    use kernels::Instr as I;
    let reads = |r: u32| konst(crate::tape::Var(r)).is_some();
    match *instr {
        I::Neg(a)
        | I::AddConst(a, _)
        | I::ConstSub(_, a)
        | I::MulConst(a, _)
        | I::DivConst(a, _)
        | I::ConstDiv(_, a)
        | I::Unary(_, a)
        | I::UnaryTangent(_, a) => reads(a),
        I::Add(..) | I::Sub(..) | I::Mul(..) | I::Div(..) => false,
    }
}

/// For each step of a fused program whose output's tangent alone is wanted, whether a later
/// step reads the primal it writes. Registers are reused, so this walks the steps backwards,
/// with the registers whose current primal (and tangent) is still to be read: a step's
/// destination is a fresh value before it, and its operands' primals are read when the
/// step's primal is read or its tangent needs them (`a * b`, `a / b`, `c / a` and the unary
/// rules need the operands' primals for the tangent; `+`, `-` and the constant forms do not).
fn primal_reads(steps: &[(u32, kernels::Instr)], n_regs: usize, output: u32) -> Vec<bool> {
    use kernels::Instr as I;
    let (mut primal, mut tangent) = (vec![false; n_regs], vec![false; n_regs]);
    tangent[output as usize] = true;
    let mut read = vec![false; steps.len()];
    for (k, &(dst, instr)) in steps.iter().enumerate().rev() {
        let d = dst as usize;
        let (p, t) = (primal[d], tangent[d]);
        (primal[d], tangent[d]) = (false, false);
        read[k] = p;
        let (a, b, tangent_reads_primals) = match instr {
            I::Add(a, b) | I::Sub(a, b) => (a, Some(b), false),
            I::Mul(a, b) | I::Div(a, b) => (a, Some(b), true),
            I::Neg(a)
            | I::AddConst(a, _)
            | I::ConstSub(_, a)
            | I::MulConst(a, _)
            | I::DivConst(a, _) => (a, None, false),
            I::ConstDiv(_, a) | I::Unary(_, a) | I::UnaryTangent(_, a) => (a, None, true),
        };
        for r in std::iter::once(a).chain(b) {
            let r = r as usize;
            primal[r] |= p || (t && tangent_reads_primals);
            tangent[r] |= t;
        }
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused path gives the same bits as the array kernels, instruction by instruction.
    #[test]
    fn fused_equals_blocks() {
        use crate::rules::UnaryRule as U;
        use crate::tape::TapeBuilder;
        let mut b = TapeBuilder::new();
        let x = b.input(0.1).unwrap();
        let (two, half) = (b.constant(2.0).unwrap(), b.constant(0.5).unwrap());
        let mut y = x;
        for rule in [U::Sin, U::Exp, U::Powi(2), U::Cos, U::Ln1p, U::ExpM1] {
            let u = b.unary(rule, y).unwrap();
            let v = b.mul(u, y).unwrap();
            let w = b.div(half, v).unwrap();
            let s = b.sub(w, two).unwrap();
            let d = b.div(s, two).unwrap();
            let a = b.add(d, u).unwrap();
            let r = b.unary(U::Recip, a).unwrap();
            let n = b.neg(r).unwrap();
            let m = b.mul(two, n).unwrap();
            let q = b.sub(two, m).unwrap();
            let t = b.unary(U::Sqrt, q).unwrap();
            let l = b.unary(U::Ln, t).unwrap();
            y = b.sub(l, half).unwrap();
        }
        b.output(y).unwrap();
        let tape = b.finish();
        let level = kernels::Level::best();
        if level == kernels::Level::Scalar {
            return;
        }
        assert!(tape.fused_program(level, true).is_some());
        let x: Vec<f64> = (0..1037).map(|i| -3.0 + 0.007 * f64::from(i)).collect();
        let (mut v, mut d) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let (mut bv, mut bd) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        tape.derivative_batch(&x, &mut v, &mut d).unwrap();
        tape.derivative_blocks(&x, Some(&mut bv), &mut bd).unwrap();
        let mut only = vec![0.0; x.len()];
        tape.derivative_only_batch(&x, &mut only).unwrap();
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        for k in 0..x.len() {
            assert!(same(v[k], bv[k]) && same(d[k], bd[k]), "at {}", x[k]);
            assert!(same(only[k], d[k]), "derivative only, at {}", x[k]);
        }
    }

    /// Without the value, the logarithm of `sin(x) exp(-x²) + ln(1 + x²)` is not evaluated
    /// (nothing reads it), the others are (the product's tangent reads them); the derivative
    /// has the same bits, also where `1 + x²` is 0 or infinite.
    #[test]
    fn derivative_only_skips_unread_values() {
        use crate::rules::UnaryRule as U;
        use crate::tape::TapeBuilder;
        let mut b = TapeBuilder::new();
        let x = b.input(0.3).unwrap();
        let s = b.unary(U::Sin, x).unwrap();
        let x2 = b.unary(U::Powi(2), x).unwrap();
        let m = b.neg(x2).unwrap();
        let e = b.unary(U::Exp, m).unwrap();
        let p = b.mul(s, e).unwrap();
        let l = b.unary(U::Ln1p, x2).unwrap();
        let y = b.add(p, l).unwrap();
        b.output(y).unwrap();
        let tape = b.finish();
        let level = kernels::Level::best();
        if level == kernels::Level::Scalar {
            return;
        }
        let kinds = |value: bool| {
            let program = tape.fused_program(level, value).unwrap();
            program
                .steps
                .iter()
                .filter_map(|(_, i)| match *i {
                    kernels::Instr::Unary(r, _) => Some((r, true)),
                    kernels::Instr::UnaryTangent(r, _) => Some((r, false)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        use kernels::SimdRule as R;
        assert!(kinds(true).iter().all(|&(_, v)| v));
        let without = kinds(false);
        assert!(without.contains(&(R::Ln1p, false)), "{without:?}");
        assert!(without.contains(&(R::Sin, true)) && without.contains(&(R::Exp, true)));
        let mut x: Vec<f64> = (0..203).map(|i| -7.0 + 0.07 * f64::from(i)).collect();
        x.extend([
            0.0,
            -0.0,
            1e-300,
            1e154,
            -1e200,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ]);
        let (mut v, mut d, mut only) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; x.len()]);
        tape.derivative_batch(&x, &mut v, &mut d).unwrap();
        tape.derivative_only_batch(&x, &mut only).unwrap();
        for k in 0..x.len() {
            let same = d[k].to_bits() == only[k].to_bits() || (d[k].is_nan() && only[k].is_nan());
            assert!(same, "at {}: {} vs {}", x[k], d[k], only[k]);
        }
    }

    #[test]
    fn blocks_are_bounded() {
        assert_eq!(block_len(3, 8), 1024);
        assert_eq!(block_len(1_000_000, 32), 8);
        let w = block_len(100, 16);
        assert!(w.is_multiple_of(8) && w * 100 * 16 <= BLOCK_BYTES);
    }
}
