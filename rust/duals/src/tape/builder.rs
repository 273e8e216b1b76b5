//! Recording a tape: [`TapeBuilder`], and [`TapeBuilder::finish`] (constant folding, common
//! subexpressions, dead code).

use std::collections::{HashMap, HashSet};

use core::mem::{discriminant, Discriminant};

use crate::rules::{BinaryRule, UnaryRule};

use super::eval::{eval_real, operands, run, Regs};
use super::plan::Step;
use super::{CmpOp, Compare, Guard, Op, Tape, TapeError, Var};

/// A recorded value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Node {
    /// Input `k`.
    Input(u32),
    /// A constant.
    Const(f64),
    /// An instruction.
    Op(Op),
}

/// Records a tape, one scalar instruction at a time, as a tracer meets them.
///
/// Each value carries its primal at the trace point ([`value`](Self::value)), computed by the
/// same `f64` evaluation as [`Tape::value`]: a tracer decides branches with
/// [`compare`](Self::compare) or, when the traced code branches on a traced value,
/// [`guard`](Self::guard), which records the comparison and returns its outcome.
///
/// Handles are [`Var`]s; a handle this builder did not hand out gives
/// [`TapeError::UnknownVar`], never a panic. Recording computes and stores; it does not
/// simplify: [`finish`](Self::finish) does.
///
/// ```
/// use duals::tape::{CmpOp, TapeBuilder};
/// // f(x) = x² if x > 0 else -x, traced at x = 3
/// let mut b = TapeBuilder::new();
/// let x = b.input(3.0)?;
/// let zero = b.constant(0.0)?;
/// let y = if b.guard(CmpOp::Gt, x, zero)? { b.mul(x, x)? } else { b.neg(x)? };
/// assert_eq!(b.value(y)?, 9.0);
/// b.output(y)?;
/// let tape = b.finish();
/// assert!(tape.guards_hold(&[2.0]) && !tape.guards_hold(&[-2.0]));
/// assert_eq!(tape.value(&[2.0])?, vec![4.0]);
/// # Ok::<(), duals::tape::TapeError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct TapeBuilder {
    nodes: Vec<Node>,
    values: Vec<f64>,
    n_inputs: u32,
    n_ops: usize,
    outputs: Vec<Var>,
    guards: Vec<Guard>,
}

impl TapeBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of inputs recorded.
    pub fn n_inputs(&self) -> usize {
        self.n_inputs as usize
    }

    /// The number of instructions recorded (before [`finish`](Self::finish) simplifies).
    pub fn n_ops(&self) -> usize {
        self.n_ops
    }

    /// The number of values recorded: inputs, constants and instructions.
    pub fn n_values(&self) -> usize {
        self.nodes.len()
    }

    /// The number of outputs recorded.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    fn check(&self, v: Var) -> Result<(), TapeError> {
        if v.index() < self.nodes.len() {
            Ok(())
        } else {
            Err(TapeError::UnknownVar {
                var: v.0,
                len: self.nodes.len(),
            })
        }
    }

    fn push(&mut self, node: Node, value: f64) -> Result<Var, TapeError> {
        let len = self.nodes.len();
        if len >= u32::MAX as usize {
            return Err(TapeError::TooLarge {
                what: format!("a tape of more than {} values", u32::MAX),
            });
        }
        self.nodes.push(node);
        self.values.push(value);
        Ok(Var(len as u32))
    }

    /// Records `op` after checking its operands, with its value at the trace point.
    fn record(&mut self, op: Op) -> Result<Var, TapeError> {
        let mut bad = None;
        op.for_each_operand(|v| {
            if v.index() >= self.nodes.len() {
                bad = Some(v);
            }
        });
        if let Some(v) = bad {
            self.check(v)?;
        }
        let len = self.values.len();
        self.values.push(0.0);
        run::<f64, _>(
            &[Step::new(op, len as u32)],
            false,
            &mut Regs(&mut self.values),
        );
        let value = self.values.pop().unwrap_or(f64::NAN);
        let v = self.push(Node::Op(op), value)?;
        self.n_ops += 1;
        Ok(v)
    }

    /// A new input, `x[n_inputs()]`, with its value at the trace point.
    ///
    /// # Errors
    /// [`TapeError::TooLarge`] past `u32::MAX` values.
    pub fn input(&mut self, value: f64) -> Result<Var, TapeError> {
        let v = self.push(Node::Input(self.n_inputs), value)?;
        self.n_inputs += 1;
        Ok(v)
    }

    /// A constant (a value captured from the traced function's closure or `args`).
    ///
    /// # Errors
    /// [`TapeError::TooLarge`] past `u32::MAX` values.
    pub fn constant(&mut self, c: f64) -> Result<Var, TapeError> {
        self.push(Node::Const(c), c)
    }

    /// `rule(a)`, a unary entry of the rule table.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`] for a handle this builder did not hand out.
    pub fn unary(&mut self, rule: UnaryRule, a: Var) -> Result<Var, TapeError> {
        self.record(Op::Unary(rule, a))
    }

    /// `name(a)` for a rule named as in [`UnaryRule::NAMES`]; `param` is the exponent of
    /// `powi` and `powf` (ignored otherwise).
    ///
    /// # Errors
    /// [`TapeError::UnknownRule`], [`TapeError::UnknownVar`].
    pub fn unary_named(&mut self, name: &str, param: f64, a: Var) -> Result<Var, TapeError> {
        let rule = UnaryRule::from_name(name, param).ok_or_else(|| TapeError::UnknownRule {
            name: name.to_string(),
        })?;
        self.unary(rule, a)
    }

    /// `rule(a, b)`, a binary entry of the rule table.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn binary(&mut self, rule: BinaryRule, a: Var, b: Var) -> Result<Var, TapeError> {
        self.record(Op::Binary(rule, a, b))
    }

    /// `name(a, b)` for a rule named as in [`BinaryRule::NAMES`].
    ///
    /// # Errors
    /// [`TapeError::UnknownRule`], [`TapeError::UnknownVar`].
    pub fn binary_named(&mut self, name: &str, a: Var, b: Var) -> Result<Var, TapeError> {
        let rule = BinaryRule::from_name(name).ok_or_else(|| TapeError::UnknownRule {
            name: name.to_string(),
        })?;
        self.binary(rule, a, b)
    }

    /// `a + b`.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var, TapeError> {
        self.record(Op::Add(a, b))
    }

    /// `a - b`.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var, TapeError> {
        self.record(Op::Sub(a, b))
    }

    /// `a * b`.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var, TapeError> {
        self.record(Op::Mul(a, b))
    }

    /// `a / b`.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var, TapeError> {
        self.record(Op::Div(a, b))
    }

    /// `-a`.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn neg(&mut self, a: Var) -> Result<Var, TapeError> {
        self.record(Op::Neg(a))
    }

    /// `min(a, b)` by real part; ties and a NaN `b` select `a` (as [`Op::Min`]).
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn min(&mut self, a: Var, b: Var) -> Result<Var, TapeError> {
        self.record(Op::Min(a, b))
    }

    /// `max(a, b)` by real part; ties and a NaN `b` select `a` (as [`Op::Max`]).
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn max(&mut self, a: Var, b: Var) -> Result<Var, TapeError> {
        self.record(Op::Max(a, b))
    }

    /// `if a op b { if_true } else { if_false }` evaluated at every point (`np.where`,
    /// `np.clip`): no guard, the derivative follows the selected value. If both are without
    /// derivative (constants, or computed from constants alone), so is the result: a real, as
    /// a constant is, though it depends on the point.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn select(
        &mut self,
        op: CmpOp,
        a: Var,
        b: Var,
        if_true: Var,
        if_false: Var,
    ) -> Result<Var, TapeError> {
        self.record(Op::Select {
            compare: Compare { op, a, b },
            if_true,
            if_false,
        })
    }

    /// The value of `v` at the trace point.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn value(&self, v: Var) -> Result<f64, TapeError> {
        self.check(v)?;
        Ok(self.values[v.index()])
    }

    /// `a op b` at the trace point, without recording anything.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn compare(&self, op: CmpOp, a: Var, b: Var) -> Result<bool, TapeError> {
        Ok(op.eval(self.value(a)?, self.value(b)?))
    }

    /// Records a guard: the traced code branched on `a op b`. Returns the outcome at the trace
    /// point, which the finished tape requires ([`Tape::guards_hold`]).
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn guard(&mut self, op: CmpOp, a: Var, b: Var) -> Result<bool, TapeError> {
        let expected = self.compare(op, a, b)?;
        self.guards.push(Guard {
            compare: Compare { op, a, b },
            expected,
        });
        Ok(expected)
    }

    /// Appends `v` to the outputs.
    ///
    /// # Errors
    /// [`TapeError::UnknownVar`].
    pub fn output(&mut self, v: Var) -> Result<(), TapeError> {
        self.check(v)?;
        self.outputs.push(v);
        Ok(())
    }

    /// The finished tape: instructions with only constant operands folded (by the same
    /// evaluation), a constant operand of `+ - * /` moved into the instruction ([`Op::AddConst`],
    /// ...), exact identities removed (`a * 1`, `a - 0`, `--a`, `min(a, a)`, a select with a
    /// constant condition or equal branches), identical instructions merged (same operation,
    /// operands and constant bits; the operands of `+` sorted, since addition is exactly
    /// commutative for every number type), and what neither an output nor a guard needs removed.
    /// Every rewrite gives bit-identical values and derivatives. All inputs stay, used or not.
    ///
    /// The builder is left as it was and can go on recording.
    pub fn finish(&self) -> Tape {
        // 1. Forward: simplify and hash-cons into `nodes`.
        let mut nodes: Vec<Node> = Vec::with_capacity(self.nodes.len());
        let mut remap: Vec<u32> = Vec::with_capacity(self.nodes.len());
        let mut seen: HashMap<Key, u32> = HashMap::new();
        let mut intern = |nodes: &mut Vec<Node>, node: Node| -> u32 {
            let next = nodes.len() as u32;
            let id = *seen.entry(Key::of(&node)).or_insert(next);
            if id == next {
                nodes.push(node);
            }
            id
        };
        for node in &self.nodes {
            let id = match *node {
                Node::Input(_) => {
                    nodes.push(*node);
                    (nodes.len() - 1) as u32
                }
                Node::Const(c) => intern(&mut nodes, Node::Const(c)),
                Node::Op(op) => {
                    let op = op.map_operands(|v| Var(remap[v.index()]));
                    match simplify(op, &nodes) {
                        Simple::Alias(v) => v.0,
                        Simple::Const(c) => intern(&mut nodes, Node::Const(c)),
                        Simple::Op(op) => intern(&mut nodes, Node::Op(op)),
                    }
                }
            };
            remap.push(id);
        }
        let outputs: Vec<u32> = self.outputs.iter().map(|v| remap[v.index()]).collect();
        let mut guards = Vec::new();
        let mut guard_seen = HashSet::new();
        for g in &self.guards {
            let (a, b) = (remap[g.compare.a.index()], remap[g.compare.b.index()]);
            if let (Node::Const(x), Node::Const(y)) = (nodes[a as usize], nodes[b as usize]) {
                if g.compare.op.eval(x, y) == g.expected {
                    continue; // always holds
                }
            }
            if guard_seen.insert((g.compare.op, a, b, g.expected)) {
                guards.push((g.compare.op, a, b, g.expected));
            }
        }

        // 2. Backward: what the outputs need (1), what only the guards need (2).
        const DEAD: u8 = 0;
        const MAIN: u8 = 1;
        const GUARD: u8 = 2;
        let mut live = vec![DEAD; nodes.len()];
        let mark = |live: &mut Vec<u8>, roots: &mut dyn Iterator<Item = u32>, tag: u8| {
            for r in roots {
                if live[r as usize] == DEAD {
                    live[r as usize] = tag;
                }
            }
            for i in (0..nodes.len()).rev() {
                if live[i] == tag {
                    if let Node::Op(op) = nodes[i] {
                        op.for_each_operand(|v| {
                            if live[v.index()] == DEAD {
                                live[v.index()] = tag;
                            }
                        });
                    }
                }
            }
        };
        mark(&mut live, &mut outputs.iter().copied(), MAIN);
        mark(
            &mut live,
            &mut guards.iter().flat_map(|&(_, a, b, _)| [a, b]),
            GUARD,
        );

        // 3. Number: inputs, live constants, main instructions, guard-only instructions.
        let n_inputs = self.n_inputs as usize;
        let mut fin = vec![u32::MAX; nodes.len()];
        let mut consts = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            match *node {
                Node::Input(k) => fin[i] = k,
                Node::Const(c) if live[i] != DEAD => {
                    fin[i] = (n_inputs + consts.len()) as u32;
                    consts.push(c);
                }
                _ => {}
            }
        }
        let mut ops = Vec::new();
        let mut n_main = 0;
        for tag in [MAIN, GUARD] {
            for (i, node) in nodes.iter().enumerate() {
                if let (Node::Op(op), true) = (node, live[i] == tag) {
                    fin[i] = (n_inputs + consts.len() + ops.len()) as u32;
                    ops.push(op.map_operands(|v| Var(fin[v.index()])));
                }
            }
            if tag == MAIN {
                n_main = ops.len();
            }
        }
        let outputs = outputs.iter().map(|&v| Var(fin[v as usize])).collect();
        let guards = guards
            .iter()
            .map(|&(op, a, b, expected)| Guard {
                compare: Compare {
                    op,
                    a: Var(fin[a as usize]),
                    b: Var(fin[b as usize]),
                },
                expected,
            })
            .collect();
        Tape::assemble(n_inputs, consts, ops, n_main, outputs, guards)
    }
}

/// What an instruction simplifies to.
enum Simple {
    /// An existing value.
    Alias(Var),
    /// A constant.
    Const(f64),
    /// An instruction.
    Op(Op),
}

/// The exact simplifications of [`TapeBuilder::finish`], on an instruction whose operands are
/// already in `nodes`.
fn simplify(op: Op, nodes: &[Node]) -> Simple {
    let cst = |v: Var| match nodes[v.index()] {
        Node::Const(c) => Some(c),
        _ => None,
    };
    if let Op::Select {
        compare,
        if_true,
        if_false,
    } = op
    {
        if let (Some(a), Some(b)) = (cst(compare.a), cst(compare.b)) {
            return Simple::Alias(if compare.op.eval(a, b) {
                if_true
            } else {
                if_false
            });
        }
        if if_true == if_false {
            return Simple::Alias(if_true);
        }
    }
    let mut all_const = true;
    op.for_each_operand(|v| all_const &= cst(v).is_some());
    if all_const {
        return Simple::Const(fold(op, &cst));
    }
    let op = match op {
        Op::Add(a, b) => match (cst(a), cst(b)) {
            (_, Some(c)) => Op::AddConst(a, c),
            (Some(c), _) => Op::AddConst(b, c),
            _ => Op::Add(a.min(b), a.max(b)),
        },
        Op::Sub(a, b) => match (cst(a), cst(b)) {
            (_, Some(c)) => Op::AddConst(a, -c),
            (Some(c), _) => Op::ConstSub(c, b),
            _ => op,
        },
        Op::Mul(a, b) => match (cst(a), cst(b)) {
            (_, Some(c)) => Op::MulConst(a, c),
            (Some(c), _) => Op::MulConst(b, c),
            _ => op,
        },
        Op::Div(a, b) => match (cst(a), cst(b)) {
            (_, Some(c)) => Op::DivConst(a, c),
            (Some(c), _) => Op::ConstDiv(c, b),
            _ => op,
        },
        _ => op,
    };
    match op {
        // x + (-0) = x and x * 1 = x exactly, tangents included.
        Op::AddConst(a, c) if c.to_bits() == (-0.0f64).to_bits() => Simple::Alias(a),
        Op::MulConst(a, 1.0) => Simple::Alias(a),
        Op::Min(a, b) | Op::Max(a, b) if a == b => Simple::Alias(a),
        Op::Neg(a) => match nodes[a.index()] {
            Node::Op(Op::Neg(x)) => Simple::Alias(x),
            _ => Simple::Op(op),
        },
        _ => Simple::Op(op),
    }
}

/// The value of an instruction whose operands are all constants, by the `f64` evaluator.
fn fold(op: Op, cst: &dyn Fn(Var) -> Option<f64>) -> f64 {
    let mut args = [f64::NAN; 4];
    let mut k = 0;
    op.for_each_operand(|v| {
        args[k] = cst(v).unwrap_or(f64::NAN);
        k += 1;
    });
    eval_real(operands(op).1, args)
}

/// What identifies a value for merging: operation, operands and constant bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    node: Discriminant<Node>,
    op: Option<Discriminant<Op>>,
    args: [u32; 4],
    bits: u64,
    unary: Option<(Discriminant<UnaryRule>, u64)>,
    binary: Option<Discriminant<BinaryRule>>,
    cmp: Option<CmpOp>,
}

impl Key {
    fn of(node: &Node) -> Key {
        let mut key = Key {
            node: discriminant(node),
            op: None,
            args: [u32::MAX; 4],
            bits: 0,
            unary: None,
            binary: None,
            cmp: None,
        };
        match *node {
            Node::Input(k) => key.args[0] = k,
            Node::Const(c) => key.bits = c.to_bits(),
            Node::Op(op) => {
                key.op = Some(discriminant(&op));
                let mut k = 0;
                op.for_each_operand(|v| {
                    key.args[k] = v.0;
                    k += 1;
                });
                match op {
                    Op::AddConst(_, c)
                    | Op::ConstSub(c, _)
                    | Op::MulConst(_, c)
                    | Op::DivConst(_, c)
                    | Op::ConstDiv(c, _) => key.bits = c.to_bits(),
                    Op::Unary(rule, _) => {
                        let param = match rule {
                            UnaryRule::Powi(n) => n as u64,
                            UnaryRule::Powf(p) => p.to_bits(),
                            _ => 0,
                        };
                        key.unary = Some((discriminant(&rule), param));
                    }
                    Op::Binary(rule, _, _) => key.binary = Some(discriminant(&rule)),
                    Op::Select { compare, .. } => key.cmp = Some(compare.op),
                    _ => {}
                }
            }
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_handles_are_errors() {
        let mut b = TapeBuilder::new();
        let x = b.input(1.0).unwrap();
        assert_eq!(
            b.add(x, Var(7)),
            Err(TapeError::UnknownVar { var: 7, len: 1 })
        );
        assert!(b.output(Var(u32::MAX)).is_err());
        assert!(b.guard(CmpOp::Lt, Var(3), x).is_err());
        assert!(matches!(
            b.unary_named("sine", 0.0, x),
            Err(TapeError::UnknownRule { .. })
        ));
        // Nothing was recorded by the failed calls.
        assert_eq!(b.n_values(), 1);
    }

    #[test]
    fn folding_cse_and_dce() {
        let mut b = TapeBuilder::new();
        let x = b.input(2.0).unwrap();
        let y = b.input(3.0).unwrap();
        let two = b.constant(2.0).unwrap();
        let three = b.constant(3.0).unwrap();
        let six = b.mul(two, three).unwrap(); // folded
        let xy = b.mul(x, y).unwrap();
        let xy2 = b.mul(x, y).unwrap(); // merged
        let s = b.add(xy, six).unwrap(); // AddConst
        let t = b.add(six, xy2).unwrap(); // the same AddConst
        let _dead = b.unary(UnaryRule::Sin, x).unwrap();
        let u = b.mul(s, t).unwrap();
        b.output(u).unwrap();
        let tape = b.finish();
        assert_eq!(b.n_ops(), 7);
        assert_eq!(tape.n_ops(), 3, "{:?}", tape.ops());
        assert!(tape.constants().is_empty());
        assert_eq!(tape.value(&[2.0, 3.0]).unwrap(), vec![144.0]);
    }
}
