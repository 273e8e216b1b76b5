//! The register program: the SSA instructions with each result assigned a register that is
//! reused once the value is dead, so that evaluation touches few numbers (and a batch block few
//! columns) however long the tape is.
//!
//! Registers `0 .. n + c` hold the inputs and constants for the whole evaluation (their
//! registers are their SSA numbers). Each instruction's result gets the most recently freed
//! register, or a new one; an operand's register is freed after the instruction that uses it
//! last, so a destination never equals one of its operands (the batch evaluator relies on it).
//! Outputs and guard operands stay alive to the end.
//!
//! Each step also says which of its operands are *passive*: values without a derivative, as a
//! constant is. The constants are passive, and so is every instruction whose operands all are,
//! a select whose two branches are (whatever it compares) included: `where(x > 0, 1.0, 2.0)`
//! is a real number that depends on `x` but has no tangent, exactly as in eager mode, where it
//! is a plain array. (A select comparing two constants is the branch it takes, as
//! [`TapeBuilder::finish`](super::TapeBuilder::finish) makes it.) A passive instruction is
//! computed on real parts (its result has zero tangents and none of the `0 · inf` a number type
//! would make of a zero tangent through, say, `√0`), and `+ - * /` take a passive operand as a
//! real, as the constant forms ([`Op::AddConst`], ...) do.

use super::{Compare, Guard, Op, Var};

/// One instruction of the register program: [`Op`] with register numbers in place of values,
/// and which operands are passive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Step {
    pub(super) op: Op,
    pub(super) dst: u32,
    pub(super) passive: Passive,
}

impl Step {
    /// A step with every operand taken as it is (no passive operand).
    pub(super) fn new(op: Op, dst: u32) -> Step {
        Step {
            op,
            dst,
            passive: Passive::NONE,
        }
    }
}

/// Which operands of a step, and whether its result, have no derivative: bit `k` for operand
/// `k` in the order of [`Op::for_each_operand`], [`Passive::RESULT`] for the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Passive(u8);

impl Passive {
    /// Every operand carries derivatives.
    pub(super) const NONE: Passive = Passive(0);
    const RESULT: u8 = 1 << 4;

    /// Whether the result has no derivative: the step is computed on real parts.
    #[inline(always)]
    pub(super) fn result(self) -> bool {
        self.0 & Self::RESULT != 0
    }

    /// Whether operand `k` has no derivative.
    #[inline(always)]
    pub(super) fn operand(self, k: usize) -> bool {
        k < 4 && self.0 & (1 << k) != 0
    }
}

/// Whether `op` is passive given which values are and the constants: a select comparing two
/// constants when the branch it takes is, another select when both branches are (the
/// comparison gives no derivative), any other instruction when all its operands are.
fn is_passive(op: &Op, passive: impl Fn(Var) -> bool, konst: impl Fn(Var) -> Option<f64>) -> bool {
    match *op {
        Op::Select {
            compare,
            if_true,
            if_false,
        } => match (konst(compare.a), konst(compare.b)) {
            (Some(a), Some(b)) if compare.op.eval(a, b) => passive(if_true),
            (Some(_), Some(_)) => passive(if_false),
            _ => passive(if_true) && passive(if_false),
        },
        _ => {
            let mut all = true;
            op.for_each_operand(|v| all &= passive(v));
            all
        }
    }
}

/// The register program of a tape.
#[derive(Clone, Debug, Default)]
pub(super) struct Plan {
    /// One step per instruction, in the tape's order.
    pub(super) steps: Vec<Step>,
    /// Registers in use.
    pub(super) n_regs: usize,
    /// The register of each output.
    pub(super) outputs: Vec<u32>,
    /// The guards, with registers.
    pub(super) guards: Vec<Guard>,
    /// Whether the evaluator must look at [`Step::passive`]: a step has a passive result, or
    /// is `+ - * /` with a passive operand (in a finished tape, only where a select of
    /// constants is involved: the builder folds the constant operands of `+ - * /`).
    pub(super) passive: bool,
}

/// A last use that never comes: outputs and guard operands.
const PINNED: usize = usize::MAX;
/// No use at all (a dead instruction in a tape loaded from bytes).
const UNUSED: usize = usize::MAX - 1;

impl Plan {
    /// Allocates registers for a valid tape (see `Tape::validate`).
    pub(super) fn new(
        n_inputs: usize,
        consts: &[f64],
        ops: &[Op],
        outputs: &[Var],
        guards: &[Guard],
    ) -> Plan {
        let base = n_inputs + consts.len();
        // Inputs are active, constants passive, instructions as their operands.
        let mut passive = vec![false; base + ops.len()];
        passive[n_inputs..base].fill(true);
        let konst = |v: Var| {
            v.index()
                .checked_sub(n_inputs)
                .and_then(|i| consts.get(i).copied())
        };
        for (k, op) in ops.iter().enumerate() {
            passive[base + k] = is_passive(op, |v| passive[v.index()], konst);
        }
        let mut last_use = vec![UNUSED; ops.len()];
        let mut note = |v: Var, at: usize| {
            if let Some(k) = v.index().checked_sub(base) {
                let slot = &mut last_use[k];
                *slot = if *slot == UNUSED { at } else { (*slot).max(at) };
            }
        };
        for (k, op) in ops.iter().enumerate() {
            op.for_each_operand(|v| note(v, k));
        }
        for &v in outputs {
            note(v, PINNED);
        }
        for g in guards {
            note(g.compare.a, PINNED);
            note(g.compare.b, PINNED);
        }

        let mut reg = vec![0u32; ops.len()];
        let mut free: Vec<u32> = Vec::new();
        let mut n_regs = base;
        let mut steps = Vec::with_capacity(ops.len());
        let to_reg = |reg: &[u32], v: Var| match v.index().checked_sub(base) {
            Some(k) => reg[k],
            None => v.0,
        };
        for (k, op) in ops.iter().enumerate() {
            let mapped = op.map_operands(|v| Var(to_reg(&reg, v)));
            let dst = free.pop().unwrap_or_else(|| {
                n_regs += 1;
                (n_regs - 1) as u32
            });
            reg[k] = dst;
            // Free each operand whose last use is here, once even if it appears twice.
            let mut freed = [u32::MAX; 4];
            let mut n_freed = 0;
            op.for_each_operand(|v| {
                if let Some(j) = v.index().checked_sub(base) {
                    if last_use[j] == k && !freed[..n_freed].contains(&reg[j]) {
                        freed[n_freed] = reg[j];
                        n_freed += 1;
                    }
                }
            });
            free.extend_from_slice(&freed[..n_freed]);
            if last_use[k] == UNUSED {
                free.push(dst);
            }
            let mut bits = if passive[base + k] {
                Passive::RESULT
            } else {
                0
            };
            let mut i = 0;
            op.for_each_operand(|v| {
                if passive[v.index()] {
                    bits |= 1 << i;
                }
                i += 1;
            });
            steps.push(Step {
                op: mapped,
                dst,
                passive: Passive(bits),
            });
        }
        Plan {
            passive: steps.iter().any(|s| {
                let p = s.passive;
                p.result()
                    || matches!(s.op, Op::Add(..) | Op::Sub(..) | Op::Mul(..) | Op::Div(..))
                        && (p.operand(0) || p.operand(1))
            }),
            steps,
            n_regs,
            outputs: outputs.iter().map(|&v| to_reg(&reg, v)).collect(),
            guards: guards
                .iter()
                .map(|g| Guard {
                    compare: Compare {
                        op: g.compare.op,
                        a: Var(to_reg(&reg, g.compare.a)),
                        b: Var(to_reg(&reg, g.compare.b)),
                    },
                    expected: g.expected,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_are_reused_and_never_alias_operands() {
        // x0, then a chain v1 = x0 * 2, v2 = v1 * 2, ... : two instruction registers suffice.
        let mut ops = vec![Op::MulConst(Var(0), 2.0)];
        for k in 1..10 {
            ops.push(Op::MulConst(Var(k), 2.0));
        }
        let plan = Plan::new(1, &[], &ops, &[Var(10)], &[]);
        assert_eq!(plan.n_regs, 3);
        for s in &plan.steps {
            s.op.for_each_operand(|v| assert_ne!(v.0, s.dst));
        }
        assert_eq!(plan.outputs, vec![plan.steps[9].dst]);
    }

    #[test]
    fn passive_values() {
        use super::super::CmpOp;
        // x0, c1; v2 = 2 c1; v3 = where(x0 > c1, c1, v2); v4 = x0 + v3;
        // v5 = where(x0 > c1, x0, c1) (one branch is active).
        let (x, c) = (Var(0), Var(1));
        let gt = Compare {
            op: CmpOp::Gt,
            a: x,
            b: c,
        };
        let ops = [
            Op::MulConst(c, 2.0),
            Op::Select {
                compare: gt,
                if_true: c,
                if_false: Var(2),
            },
            Op::Add(x, Var(3)),
            Op::Select {
                compare: gt,
                if_true: x,
                if_false: c,
            },
            // v6 = where(c1 > c1, x0, c1): the constant branch; v7 = where(c1 >= c1, x0, c1)
            Op::Select {
                compare: Compare {
                    op: CmpOp::Gt,
                    a: c,
                    b: c,
                },
                if_true: x,
                if_false: c,
            },
            Op::Select {
                compare: Compare {
                    op: CmpOp::Ge,
                    a: c,
                    b: c,
                },
                if_true: x,
                if_false: c,
            },
        ];
        let plan = Plan::new(1, &[0.5], &ops, &[Var(4), Var(5), Var(6), Var(7)], &[]);
        let p: Vec<_> = plan.steps.iter().map(|s| s.passive).collect();
        assert!(p[0].result() && p[1].result());
        assert!(!p[2].result() && !p[2].operand(0) && p[2].operand(1));
        assert!(!p[3].result() && p[3].operand(1) && !p[3].operand(2) && p[3].operand(3));
        assert!(p[4].result() && !p[5].result());
        assert!(plan.passive);
        // A constant operand of min is taken as a number: nothing to look at.
        let plan = Plan::new(1, &[0.5], &[Op::Min(x, c)], &[Var(2)], &[]);
        assert!(plan.steps[0].passive.operand(1) && !plan.passive);
    }
}
