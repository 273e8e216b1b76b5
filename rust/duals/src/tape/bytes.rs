//! The tape as bytes: a small hand-written format, little-endian, checked on load.
//!
//! ```text
//! magic     8 bytes  "DUALTAPE"
//! version   u16      FORMAT_VERSION
//! counts    u32 × 6  inputs, constants, instructions, main instructions, outputs, guards
//! constants f64 × c
//! instrs    per instruction: a tag byte, then its fields (operands u32, constants f64;
//!           a rule as its table name, u8 length + UTF-8, and for unary rules an f64 parameter)
//! outputs   u32 × m
//! guards    per guard: comparison u8, a u32, b u32, expected u8
//! checksum  u64      FNV-1a of everything before it
//! ```
//!
//! Rules are stored by name, not by position in the enum, so that adding a rule does not
//! change the meaning of stored tapes. The checksum catches every single-byte change (each
//! FNV-1a step is a bijection of the state) and truncation; after it, the structure is validated
//! as for a built tape (operands defined before use, names known, counts consistent with the
//! length), so no input makes loading panic or allocate more than the input's size.
//!
//! No serialization crate: the format is 100 lines, has no dependency to keep in step, and is
//! read by nothing but this module.

use core::mem::discriminant;

use crate::rules::{BinaryRule, UnaryRule};

use super::{CmpOp, Compare, Guard, Op, Tape, TapeError, Var};

const MAGIC: &[u8; 8] = b"DUALTAPE";
/// The version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The table name of a unary rule (its position among [`UnaryRule::NAMES`] found by variant).
fn unary_name(rule: UnaryRule) -> &'static str {
    UnaryRule::NAMES
        .iter()
        .find(|n| {
            UnaryRule::from_name(n, 0.0).map(|r| discriminant(&r)) == Some(discriminant(&rule))
        })
        .copied()
        .unwrap_or("")
}

fn unary_param(rule: UnaryRule) -> f64 {
    match rule {
        UnaryRule::Powi(n) => f64::from(n),
        UnaryRule::Powf(p) => p,
        _ => 0.0,
    }
}

fn binary_name(rule: BinaryRule) -> &'static str {
    BinaryRule::NAMES
        .iter()
        .find(|n| BinaryRule::from_name(n) == Some(rule))
        .copied()
        .unwrap_or("")
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn count(&mut self, v: usize) {
        self.u32(v as u32);
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    fn var(&mut self, v: Var) {
        self.u32(v.0);
    }
    fn name(&mut self, name: &str) {
        self.u8(name.len() as u8);
        self.0.extend_from_slice(name.as_bytes());
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TapeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(corrupt(format!("truncated at byte {}", self.pos))),
        }
    }
    fn array<const K: usize>(&mut self) -> Result<[u8; K], TapeError> {
        let mut a = [0u8; K];
        a.copy_from_slice(self.take(K)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, TapeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, TapeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, TapeError> {
        Ok(f64::from_bits(u64::from_le_bytes(self.array()?)))
    }
    fn var(&mut self) -> Result<Var, TapeError> {
        Ok(Var(self.u32()?))
    }
    fn name(&mut self) -> Result<&'a str, TapeError> {
        let len = self.u8()? as usize;
        core::str::from_utf8(self.take(len)?).map_err(|_| corrupt("a rule name is not UTF-8"))
    }
    /// A count of items of at least `min_size` bytes each, checked against what is left.
    fn count(&mut self, min_size: usize) -> Result<usize, TapeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.buf.len() - self.pos {
            return Err(corrupt(format!("a count of {n} exceeds the bytes left")));
        }
        Ok(n)
    }
}

fn corrupt(reason: impl Into<String>) -> TapeError {
    TapeError::Corrupt {
        reason: reason.into(),
    }
}

// Instruction tags.
const ADD: u8 = 0;
const SUB: u8 = 1;
const MUL: u8 = 2;
const DIV: u8 = 3;
const NEG: u8 = 4;
const ADD_CONST: u8 = 5;
const CONST_SUB: u8 = 6;
const MUL_CONST: u8 = 7;
const DIV_CONST: u8 = 8;
const CONST_DIV: u8 = 9;
const UNARY: u8 = 10;
const BINARY: u8 = 11;
const MIN: u8 = 12;
const MAX: u8 = 13;
const SELECT: u8 = 14;

impl Tape {
    /// The tape as bytes (see the format in the module source); [`Tape::from_bytes`] reads
    /// them back on any machine.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64 + 16 * self.ops.len()));
        w.0.extend_from_slice(MAGIC);
        w.0.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        for c in [
            self.n_inputs,
            self.consts.len(),
            self.ops.len(),
            self.n_main,
            self.outputs.len(),
            self.guards.len(),
        ] {
            w.count(c);
        }
        for &c in &self.consts {
            w.f64(c);
        }
        for op in &self.ops {
            let (tag, c) = match *op {
                Op::Add(..) => (ADD, None),
                Op::Sub(..) => (SUB, None),
                Op::Mul(..) => (MUL, None),
                Op::Div(..) => (DIV, None),
                Op::Neg(..) => (NEG, None),
                Op::AddConst(_, c) => (ADD_CONST, Some(c)),
                Op::ConstSub(c, _) => (CONST_SUB, Some(c)),
                Op::MulConst(_, c) => (MUL_CONST, Some(c)),
                Op::DivConst(_, c) => (DIV_CONST, Some(c)),
                Op::ConstDiv(c, _) => (CONST_DIV, Some(c)),
                Op::Unary(..) => (UNARY, None),
                Op::Binary(..) => (BINARY, None),
                Op::Min(..) => (MIN, None),
                Op::Max(..) => (MAX, None),
                Op::Select { .. } => (SELECT, None),
            };
            w.u8(tag);
            if let Some(c) = c {
                w.f64(c);
            }
            match *op {
                Op::Unary(rule, _) => {
                    w.name(unary_name(rule));
                    w.f64(unary_param(rule));
                }
                Op::Binary(rule, ..) => w.name(binary_name(rule)),
                Op::Select { compare, .. } => w.u8(compare.op.code()),
                _ => {}
            }
            op.for_each_operand(|v| w.var(v));
        }
        for &v in &self.outputs {
            w.var(v);
        }
        for g in &self.guards {
            w.u8(g.compare.op.code());
            w.var(g.compare.a);
            w.var(g.compare.b);
            w.u8(u8::from(g.expected));
        }
        let sum = fnv1a(&w.0);
        w.0.extend_from_slice(&sum.to_le_bytes());
        w.0
    }

    /// Reads a tape written by [`Tape::to_bytes`].
    ///
    /// # Errors
    /// [`TapeError::Corrupt`] for bytes that are truncated, altered or not a tape;
    /// [`TapeError::UnsupportedVersion`] for another format version. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Tape, TapeError> {
        let head = MAGIC.len() + 2;
        if bytes.len() < head + 8 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("no tape header"));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != FORMAT_VERSION {
            return Err(TapeError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let mut sum_bytes = [0u8; 8];
        sum_bytes.copy_from_slice(sum);
        if fnv1a(body) != u64::from_le_bytes(sum_bytes) {
            return Err(corrupt("checksum mismatch: truncated or altered"));
        }
        let mut r = Reader {
            buf: body,
            pos: head,
        };
        let n_inputs = r.count(0)?;
        let n_consts = r.count(8)?;
        let n_ops = r.count(5)?;
        let n_main = r.u32()? as usize;
        let n_outputs = r.count(4)?;
        let n_guards = r.count(10)?;
        let consts = (0..n_consts)
            .map(|_| r.f64())
            .collect::<Result<Vec<_>, _>>()?;
        let mut ops = Vec::with_capacity(n_ops);
        for _ in 0..n_ops {
            ops.push(read_op(&mut r)?);
        }
        let outputs = (0..n_outputs)
            .map(|_| r.var())
            .collect::<Result<Vec<_>, _>>()?;
        let mut guards = Vec::with_capacity(n_guards);
        for _ in 0..n_guards {
            let op = read_cmp(&mut r)?;
            let (a, b) = (r.var()?, r.var()?);
            let expected = match r.u8()? {
                0 => false,
                1 => true,
                e => return Err(corrupt(format!("guard outcome byte {e}"))),
            };
            guards.push(Guard {
                compare: Compare { op, a, b },
                expected,
            });
        }
        if r.pos != body.len() {
            return Err(corrupt(format!(
                "{} bytes after the last guard",
                body.len() - r.pos
            )));
        }
        Tape::validate(n_inputs, n_consts, &ops, n_main, &outputs, &guards)?;
        Ok(Tape::assemble(
            n_inputs, consts, ops, n_main, outputs, guards,
        ))
    }
}

fn read_cmp(r: &mut Reader<'_>) -> Result<CmpOp, TapeError> {
    let c = r.u8()?;
    CmpOp::ALL
        .get(c as usize)
        .copied()
        .ok_or_else(|| corrupt(format!("comparison code {c}")))
}

fn read_op(r: &mut Reader<'_>) -> Result<Op, TapeError> {
    let tag = r.u8()?;
    let op = match tag {
        ADD => Op::Add(r.var()?, r.var()?),
        SUB => Op::Sub(r.var()?, r.var()?),
        MUL => Op::Mul(r.var()?, r.var()?),
        DIV => Op::Div(r.var()?, r.var()?),
        NEG => Op::Neg(r.var()?),
        ADD_CONST => {
            let c = r.f64()?;
            Op::AddConst(r.var()?, c)
        }
        CONST_SUB => Op::ConstSub(r.f64()?, r.var()?),
        MUL_CONST => {
            let c = r.f64()?;
            Op::MulConst(r.var()?, c)
        }
        DIV_CONST => {
            let c = r.f64()?;
            Op::DivConst(r.var()?, c)
        }
        CONST_DIV => Op::ConstDiv(r.f64()?, r.var()?),
        UNARY => {
            let name = r.name()?;
            let param = r.f64()?;
            let rule = UnaryRule::from_name(name, param)
                .ok_or_else(|| corrupt(format!("unknown unary rule {name:?}")))?;
            if let UnaryRule::Powi(n) = rule {
                if f64::from(n) != param {
                    return Err(corrupt(format!("powi exponent {param} is not an integer")));
                }
            }
            Op::Unary(rule, r.var()?)
        }
        BINARY => {
            let name = r.name()?;
            let rule = BinaryRule::from_name(name)
                .ok_or_else(|| corrupt(format!("unknown binary rule {name:?}")))?;
            Op::Binary(rule, r.var()?, r.var()?)
        }
        MIN => Op::Min(r.var()?, r.var()?),
        MAX => Op::Max(r.var()?, r.var()?),
        SELECT => {
            let op = read_cmp(r)?;
            let (a, b) = (r.var()?, r.var()?);
            Op::Select {
                compare: Compare { op, a, b },
                if_true: r.var()?,
                if_false: r.var()?,
            }
        }
        t => return Err(corrupt(format!("unknown instruction tag {t}"))),
    };
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_name_that_reads_back() {
        for name in UnaryRule::NAMES {
            let rule = UnaryRule::from_name(name, 3.0).unwrap();
            assert_eq!(unary_name(rule), name);
        }
        for name in BinaryRule::NAMES {
            let rule = BinaryRule::from_name(name).unwrap();
            assert_eq!(binary_name(rule), name);
        }
    }
}
