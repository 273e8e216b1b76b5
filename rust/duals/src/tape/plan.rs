//! The register program: the SSA instructions with each result assigned a register that is
//! reused once the value is dead, so that evaluation touches few numbers (and a batch block few
//! columns) however long the tape is.
//!
//! Registers `0 .. n + c` hold the inputs and constants for the whole evaluation (their
//! registers are their SSA numbers). Each instruction's result gets the most recently freed
//! register, or a new one; an operand's register is freed after the instruction that uses it
//! last, so a destination never equals one of its operands (the batch evaluator relies on it).
//! Outputs and guard operands stay alive to the end.

use super::{Compare, Guard, Op, Var};

/// One instruction of the register program: [`Op`] with register numbers in place of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Step {
    pub(super) op: Op,
    pub(super) dst: u32,
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
}

/// A last use that never comes: outputs and guard operands.
const PINNED: usize = usize::MAX;
/// No use at all (a dead instruction in a tape loaded from bytes).
const UNUSED: usize = usize::MAX - 1;

impl Plan {
    /// Allocates registers for a valid tape (see `Tape::validate`).
    pub(super) fn new(
        n_inputs: usize,
        n_consts: usize,
        ops: &[Op],
        outputs: &[Var],
        guards: &[Guard],
    ) -> Plan {
        let base = n_inputs + n_consts;
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
            steps.push(Step { op: mapped, dst });
        }
        Plan {
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
        let plan = Plan::new(1, 0, &ops, &[Var(10)], &[]);
        assert_eq!(plan.n_regs, 3);
        for s in &plan.steps {
            s.op.for_each_operand(|v| assert_ne!(v.0, s.dst));
        }
        assert_eq!(plan.outputs, vec![plan.steps[9].dst]);
    }
}
