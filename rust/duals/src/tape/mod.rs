//! Recorded programs: a function traced once into a straight-line program of scalar
//! instructions, then evaluated on every number type through the ordinary drivers.
//!
//! # The program
//!
//! A [`Tape`] is a program in SSA form over `f64` values. Its values are numbered by [`Var`]:
//!
//! | values | what |
//! |---|---|
//! | `0 .. n` | the inputs `x₀ … xₙ₋₁` |
//! | `n .. n + c` | the constants ([`Tape::constants`]) |
//! | `n + c + k` | the result of instruction `k` ([`Tape::ops`]), an [`Op`] whose operands are earlier values |
//!
//! The outputs are `m` values ([`Tape::outputs`]); the guards ([`Guard`]) are comparisons that
//! held when the function was traced (a Python `if` on a traced value) and must hold again for
//! the tape to stand for the function at another point ([`Tape::guards_hold`]).
//!
//! Every instruction is one entry of [`crate::rules`] ([`Op::Unary`], [`Op::Binary`]), an
//! arithmetic operation (with cheap forms for a constant operand), `min`/`max`, or a
//! [`Op::Select`] (`np.where`): comparisons look at real parts and the derivative follows the
//! selected operand.
//!
//! Values without a derivative are reals, as in eager mode: the constants, what is computed
//! from them alone, and a select whose two branches are such values (whatever its comparison
//! reads, as `where` of two plain arrays is a plain array). The evaluator computes them on real
//! numbers, and an arithmetic operation takes them as it takes a constant (`x * c`, not the
//! product of two numbers), so that a zero tangent never meets an infinite or undefined
//! derivative: `√where(x > 0, 4, 0)` has derivative 0, not `0 · inf`.
//!
//! # Building
//!
//! A [`TapeBuilder`] records instructions as a tracer meets them and carries the value of each at
//! the trace point ([`TapeBuilder::value`]), so branches and guards are decided with the tape's
//! own arithmetic. [`TapeBuilder::finish`] folds constants, merges common subexpressions and
//! removes dead code.
//!
//! # Evaluating
//!
//! A tape implements [`VectorFunction<f64>`](crate::VectorFunction) (and
//! [`ScalarFunction<f64>`](crate::ScalarFunction) through [`Tape::as_scalar`]) with one generic
//! evaluator, so value, Jacobian, JVP, gradient, Hessian and HVP all come from the drivers in
//! [`crate::drivers`]. The `Tape` methods of the same names check the argument lengths first and
//! are what bindings call. Batch forms ([`Tape::value_batch`], [`Tape::derivative_batch`], ...)
//! evaluate each instruction over a block of points; [`Tape::sparsity`] and
//! [`Tape::jacobian_sparse`] compute a sparse Jacobian with a column coloring; [`Tape::to_bytes`]
//! and [`Tape::from_bytes`] make it data.
//!
//! ```
//! use duals::tape::{CmpOp, TapeBuilder};
//! use duals::rules::UnaryRule;
//! use duals::Config;
//!
//! // f(x, y) = (x sin y, max(x, y))
//! let mut b = TapeBuilder::new();
//! let x = b.input(2.0)?;
//! let y = b.input(0.0)?;
//! let s = b.unary(UnaryRule::Sin, y)?;
//! let f0 = b.mul(x, s)?;
//! let f1 = b.max(x, y)?;
//! b.output(f0)?;
//! b.output(f1)?;
//! let tape = b.finish();
//! assert_eq!(tape.n_ops(), 3);
//!
//! let mut cfg = Config::new();
//! let j = tape.jacobian(&[2.0, 0.0], &mut cfg)?;
//! assert_eq!(j.as_slice(), &[0.0, 2.0, 1.0, 0.0]); // [[sin y, x cos y], [1, 0]]
//! # Ok::<(), duals::tape::TapeError>(())
//! ```
//!
//! # Threads and allocation
//!
//! A `Tape` is immutable plain data: `Send + Sync`, evaluable from many threads at once. The
//! evaluator's work registers (one number per live value, see [`Tape::n_registers`]) live in a
//! per-thread cache with one buffer per number type, grown to the largest tape the thread has
//! evaluated and kept: after the first call on a thread, evaluation does not allocate, so the
//! drivers' `_into` forms ([`jacobian_into`](crate::jacobian_into),
//! [`jvp_into`](crate::jvp_into), [`gradient_into`](crate::gradient_into)) and
//! [`Tape::value_into`] do not allocate at all. What does allocate: the drivers' Hessian and HVP
//! (their seeded inputs), results returned by value, the batch forms (one block buffer per call,
//! bounded), sparsity and coloring, and [`Tape::jacobian_sparse`] (its seeds).

mod batch;
mod builder;
mod bytes;
mod error;
mod eval;
mod hessian;
mod plan;
mod sparse;

use crate::rules::{BinaryRule, UnaryRule};

pub use builder::TapeBuilder;
pub use bytes::FORMAT_VERSION;
pub use error::TapeError;
pub use eval::ScalarTape;
pub use sparse::{Coloring, Pattern, SparseJacobian};

use hessian::HessianPlan;
use plan::Plan;
use std::sync::OnceLock;

/// A value of a tape or builder: an index into its values (inputs, constants, instruction
/// results, in that order for a finished [`Tape`]).
///
/// Handles are plain integers so that bindings can pass them through; every builder method
/// checks them and returns [`TapeError::UnknownVar`] for one it did not hand out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub u32);

impl Var {
    /// The index as `usize`.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A comparison of real parts, as `a op b` with IEEE semantics (every comparison with NaN is
/// false except `Ne`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
    /// `a == b`
    Eq,
    /// `a != b`
    Ne,
}

impl CmpOp {
    /// All comparisons, in the order of their codes.
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Eq,
        CmpOp::Ne,
    ];

    /// `a op b`.
    #[inline]
    pub fn eval(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }

    /// The comparison named by Python's operator (`"<"`, `"<="`, `">"`, `">="`, `"=="`, `"!="`)
    /// or its dunder name without underscores (`"lt"`, `"le"`, `"gt"`, `"ge"`, `"eq"`, `"ne"`).
    pub fn from_name(name: &str) -> Option<CmpOp> {
        Some(match name {
            "<" | "lt" => CmpOp::Lt,
            "<=" | "le" => CmpOp::Le,
            ">" | "gt" => CmpOp::Gt,
            ">=" | "ge" => CmpOp::Ge,
            "==" | "eq" => CmpOp::Eq,
            "!=" | "ne" => CmpOp::Ne,
            _ => return None,
        })
    }

    /// The operator symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }

    /// The code of the comparison in the byte format: its position in [`CmpOp::ALL`].
    fn code(self) -> u8 {
        self as u8
    }
}

/// `a op b` on the real parts of two values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Compare {
    /// The comparison.
    pub op: CmpOp,
    /// Left operand.
    pub a: Var,
    /// Right operand.
    pub b: Var,
}

/// A comparison recorded when the traced function branched on it, with the outcome it had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Guard {
    /// The comparison.
    pub compare: Compare,
    /// Its outcome at the trace point.
    pub expected: bool,
}

/// One instruction. Operands are earlier values; `f64` fields are constants folded into the
/// instruction.
///
/// The constant forms compute exactly what the number types compute for an operation with a
/// real (`a + c` is `D + f64`, no zero tangent is added): [`TapeBuilder::finish`] turns
/// `add`/`sub`/`mul`/`div` with a constant operand into them. `a - c` is stored as
/// `AddConst(a, -c)`, which is the same in IEEE arithmetic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// `a + b`
    Add(Var, Var),
    /// `a - b`
    Sub(Var, Var),
    /// `a * b`
    Mul(Var, Var),
    /// `a / b`
    Div(Var, Var),
    /// `-a`
    Neg(Var),
    /// `a + c`
    AddConst(Var, f64),
    /// `c - a`, computed as `-a + c`
    ConstSub(f64, Var),
    /// `a * c`
    MulConst(Var, f64),
    /// `a / c`
    DivConst(Var, f64),
    /// `c / a`, the quotient rule with a constant numerator
    ConstDiv(f64, Var),
    /// A unary entry of the rule table, with its parameter (`powi`, `powf`)
    Unary(UnaryRule, Var),
    /// A binary entry of the rule table
    Binary(BinaryRule, Var, Var),
    /// `min(a, b)` by real part, as [`DualNum::min`](crate::DualNum::min): ties and a NaN `b`
    /// select `a`
    Min(Var, Var),
    /// `max(a, b)` by real part, as [`DualNum::max`](crate::DualNum::max)
    Max(Var, Var),
    /// `if compare { if_true } else { if_false }`: the derivative is that of the selected value.
    /// A select of two values without derivative (constants or computed from them) is a real,
    /// like a constant, at every point (see the [module documentation](self)).
    Select {
        /// The condition, on real parts.
        compare: Compare,
        /// The value where the condition holds.
        if_true: Var,
        /// The value where it does not.
        if_false: Var,
    },
}

impl Op {
    /// Calls `f` on each operand, in order (a select's comparison operands first).
    pub fn for_each_operand(&self, mut f: impl FnMut(Var)) {
        match *self {
            Op::Add(a, b)
            | Op::Sub(a, b)
            | Op::Mul(a, b)
            | Op::Div(a, b)
            | Op::Binary(_, a, b)
            | Op::Min(a, b)
            | Op::Max(a, b) => {
                f(a);
                f(b);
            }
            Op::Neg(a)
            | Op::AddConst(a, _)
            | Op::ConstSub(_, a)
            | Op::MulConst(a, _)
            | Op::DivConst(a, _)
            | Op::ConstDiv(_, a)
            | Op::Unary(_, a) => f(a),
            Op::Select {
                compare,
                if_true,
                if_false,
            } => {
                f(compare.a);
                f(compare.b);
                f(if_true);
                f(if_false);
            }
        }
    }

    /// The same instruction with each operand replaced by `f(operand)`.
    pub fn map_operands(self, mut f: impl FnMut(Var) -> Var) -> Op {
        match self {
            Op::Add(a, b) => Op::Add(f(a), f(b)),
            Op::Sub(a, b) => Op::Sub(f(a), f(b)),
            Op::Mul(a, b) => Op::Mul(f(a), f(b)),
            Op::Div(a, b) => Op::Div(f(a), f(b)),
            Op::Neg(a) => Op::Neg(f(a)),
            Op::AddConst(a, c) => Op::AddConst(f(a), c),
            Op::ConstSub(c, a) => Op::ConstSub(c, f(a)),
            Op::MulConst(a, c) => Op::MulConst(f(a), c),
            Op::DivConst(a, c) => Op::DivConst(f(a), c),
            Op::ConstDiv(c, a) => Op::ConstDiv(c, f(a)),
            Op::Unary(r, a) => Op::Unary(r, f(a)),
            Op::Binary(r, a, b) => Op::Binary(r, f(a), f(b)),
            Op::Min(a, b) => Op::Min(f(a), f(b)),
            Op::Max(a, b) => Op::Max(f(a), f(b)),
            Op::Select {
                compare,
                if_true,
                if_false,
            } => {
                let (a, b) = (f(compare.a), f(compare.b));
                Op::Select {
                    compare: Compare {
                        op: compare.op,
                        a,
                        b,
                    },
                    if_true: f(if_true),
                    if_false: f(if_false),
                }
            }
        }
    }
}

/// A recorded function `Rⁿ → Rᵐ`: a straight-line program of scalar instructions in SSA form,
/// with its outputs and guards. See the [module documentation](self).
///
/// Built by [`TapeBuilder::finish`] or loaded by [`Tape::from_bytes`]; immutable afterwards.
#[derive(Clone, Debug)]
pub struct Tape {
    n_inputs: usize,
    consts: Vec<f64>,
    ops: Vec<Op>,
    /// `ops[..n_main]` are the instructions the outputs need; the rest only the guards.
    n_main: usize,
    outputs: Vec<Var>,
    guards: Vec<Guard>,
    /// The register program derived from the above (not serialized).
    plan: Plan,
    /// The sparse second-order program of a scalar tape, built at its first Hessian (`None`
    /// inside if the tape is not scalar or its patterns are too large).
    hessian: OnceLock<Option<Box<HessianPlan>>>,
}

impl Tape {
    /// Assembles a tape from parts that [`Tape::validate`] accepts (or the builder made).
    fn assemble(
        n_inputs: usize,
        consts: Vec<f64>,
        ops: Vec<Op>,
        n_main: usize,
        outputs: Vec<Var>,
        guards: Vec<Guard>,
    ) -> Tape {
        let plan = Plan::new(n_inputs, &consts, &ops, &outputs, &guards);
        Tape {
            n_inputs,
            consts,
            ops,
            n_main,
            outputs,
            guards,
            plan,
            hessian: OnceLock::new(),
        }
    }

    /// Checks that every operand is an earlier value, that the outputs need only the first
    /// `n_main` instructions, and that outputs and guards name existing values.
    fn validate(
        n_inputs: usize,
        n_consts: usize,
        ops: &[Op],
        n_main: usize,
        outputs: &[Var],
        guards: &[Guard],
    ) -> Result<(), TapeError> {
        let corrupt = |reason: String| Err(TapeError::Corrupt { reason });
        let base = n_inputs + n_consts;
        let total = base + ops.len();
        if total > u32::MAX as usize {
            return corrupt(format!("{total} values do not fit 32-bit handles"));
        }
        if n_main > ops.len() {
            return corrupt(format!(
                "{n_main} main instructions of {} in all",
                ops.len()
            ));
        }
        for (k, op) in ops.iter().enumerate() {
            let limit = base + k;
            let mut bad = None;
            op.for_each_operand(|v| {
                if v.index() >= limit {
                    bad = Some(v);
                }
            });
            if let Some(v) = bad {
                return corrupt(format!(
                    "instruction {k} reads value {} before it is defined",
                    v.0
                ));
            }
        }
        let main_end = base + n_main;
        if let Some(v) = outputs.iter().find(|v| v.index() >= main_end) {
            return corrupt(format!(
                "output reads value {} outside the main program",
                v.0
            ));
        }
        for g in guards {
            if g.compare.a.index() >= total || g.compare.b.index() >= total {
                return corrupt("a guard reads a value that does not exist".to_string());
            }
        }
        Ok(())
    }

    /// `n`, the number of inputs.
    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    /// `m`, the number of outputs.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// The number of instructions (not counting inputs and constants), the tape's size.
    pub fn n_ops(&self) -> usize {
        self.ops.len()
    }

    /// The number of registers the evaluator uses: inputs, constants and the most instruction
    /// results alive at once. Evaluation on `D` keeps this many `D` per thread.
    pub fn n_registers(&self) -> usize {
        self.plan.n_regs
    }

    /// The constants, values `n .. n + c`.
    pub fn constants(&self) -> &[f64] {
        &self.consts
    }

    /// The instructions; instruction `k` defines value `n + c + k`. The outputs need the
    /// first [`n_main_ops`](Self::n_main_ops); the others serve only guards.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The number of instructions the outputs need.
    pub fn n_main_ops(&self) -> usize {
        self.n_main
    }

    /// The output values.
    pub fn outputs(&self) -> &[Var] {
        &self.outputs
    }

    /// The guards.
    pub fn guards(&self) -> &[Guard] {
        &self.guards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn tape_is_send_and_sync() {
        assert_send_sync::<Tape>();
        assert_send_sync::<TapeBuilder>();
    }

    #[test]
    fn cmp_op_codes_follow_all() {
        for (i, op) in CmpOp::ALL.iter().enumerate() {
            assert_eq!(op.code() as usize, i);
            assert_eq!(CmpOp::from_name(op.symbol()), Some(*op));
        }
    }
}
