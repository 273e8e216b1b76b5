//! The Hessian of a scalar tape by sparse second-order propagation.
//!
//! Each value of the tape carries its gradient and the upper triangle of its Hessian, but only
//! over the inputs it structurally depends on: the gradient over a sorted list of inputs, the
//! Hessian over a sorted list of pairs `(i, j)`, `i ≤ j`. These patterns, and for every
//! instruction where each operand's entries land in the result's, are computed once per tape
//! ([`HessianPlan`], cached in the tape) from the register program. An evaluation then runs the
//! tape once on reals with index maps:
//!
//! - an instruction `d = f(a, b)` with local partials `f_a, f_b, f_aa, f_ab, f_bb` (from the
//!   instruction itself for `+ - *` and the constant forms, from one evaluation on a
//!   [`Dual2`] seeded in the operands for the rule table, so every formula is still the number
//!   types');
//! - `∇d = f_a ∇a + f_b ∇b`, `∇²d = f_a ∇²a + f_b ∇²b + f_aa ∇a∇aᵀ + f_ab (∇a∇bᵀ + ∇b∇aᵀ) +
//!   f_bb ∇b∇bᵀ`, the outer products only for nonlinear instructions.
//!
//! Linear instructions (`+ -`, constant forms) cost one pass over the operands' entries, which
//! is what makes the method fast on sums of small terms (chained Rosenbrock: a tridiagonal
//! Hessian, a few entries per instruction) where the dense methods carry `n²` or block-sized
//! second-order parts through every instruction.
//!
//! **Structural zeros.** An entry outside the result's pattern is exactly 0 at every point, as
//! in sparse AD tools: it is never computed. The dense methods compute it as a sum of products
//! with zero tangents, which is NaN where a partial is infinite or NaN (`0 · inf`); here it
//! stays 0. Entries inside the pattern propagate NaN and infinity as the dense methods do.
//! A selection (`where`, `min`, `max`) copies the chosen operand's entries into the union of
//! both patterns, the other's positions 0.

use crate::number::Dual2;
use crate::rules;

use super::eval::{eval_real, operands, run, Regs};
use super::plan::{Plan, Step};
use super::Op;

/// Largest number of index-map entries (one `u32` each) a plan may hold; a tape whose patterns
/// need more (a large dense Hessian) uses the dense methods.
const MAX_MAP: usize = 1 << 22;

/// How an instruction's partials are computed.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// No derivative: the value on reals of `local` reading `src` (see [`operands`]).
    Passive { src: [u32; 4], local: Op },
    /// `d = ca a + cb b + value`; the value from `op`.
    Linear,
    /// `d = a b`.
    Mul,
    /// `d = a a` (one register read twice): `2a`, `2`.
    Square,
    /// `d` is `a` (`if_true`, the first of min/max) or `b`, chosen at the point.
    Choose,
    /// A rule of the table on one or two operands, through `Dual2`.
    General { local: Op, arity: u8 },
}

/// One instruction of the sparse program.
#[derive(Clone, Copy, Debug)]
struct HStep {
    kind: Kind,
    /// The instruction with register operands (values of linear steps, choices).
    op: Op,
    dst: u32,
    /// Derivative operands (registers; `b` is `a` with no entries for a unary instruction).
    a: u32,
    b: u32,
    /// Lengths: result gradient and Hessian; operand gradients and Hessians.
    gl: u32,
    hl: u32,
    ga: u32,
    gb: u32,
    ha: u32,
    hb: u32,
    /// Whether the outer-product term is computed (`gl (gl + 1) / 2` map entries).
    outer: bool,
    /// Whether `a`'s gradient (Hessian) entries are the result's, in order: a scaled copy.
    same_g: bool,
    same_h: bool,
    /// Offsets in the work buffer: result gradient and Hessian, `a`'s and `b`'s gradient,
    /// `a`'s and `b`'s Hessian (set once the registers' sizes are known).
    off: [u32; 6],
    /// Start of this step's maps in [`HessianPlan::map`]: gradient of `a`, of `b`, Hessian of
    /// `a`, of `b`, then the outer pairs.
    at: u32,
}

/// The sparse second-order program of a scalar tape.
#[derive(Clone, Debug)]
pub(super) struct HessianPlan {
    steps: Vec<HStep>,
    map: Vec<u32>,
    n_inputs: usize,
    /// Per register: offsets of its gradient and Hessian entries in the work buffer.
    g_off: Vec<u32>,
    h_off: Vec<u32>,
    /// Start of the scratch (two expanded gradients), and the work buffer's length.
    scratch: usize,
    len: usize,
    /// The output register and the pattern of its gradient and Hessian.
    out: u32,
    out_h: Vec<(u32, u32)>,
}

/// Sorted union of `a` and `b` with where each entry of `a` and of `b` lands, appended to `map`.
fn union<T: Ord + Copy>(a: &[T], b: &[T], map: &mut Vec<u32>) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!(),
        };
        if a.get(i) == Some(&next) {
            i += 1;
        }
        if b.get(j) == Some(&next) {
            j += 1;
        }
        out.push(next);
    }
    for s in [a, b] {
        for v in s {
            map.push(out.binary_search(v).expect("in the union") as u32);
        }
    }
    out
}

impl HessianPlan {
    /// The plan of the first `n_main` steps of `plan` with output register `out`, or `None` if
    /// its maps would exceed [`MAX_MAP`].
    pub(super) fn new(n_inputs: usize, plan: &Plan, n_main: usize, out: u32) -> Option<Self> {
        let mut g: Vec<Vec<u32>> = vec![Vec::new(); plan.n_regs];
        let mut h: Vec<Vec<(u32, u32)>> = vec![Vec::new(); plan.n_regs];
        for (i, gi) in g.iter_mut().enumerate().take(n_inputs) {
            gi.push(i as u32);
        }
        let (mut g_cap, mut h_cap): (Vec<usize>, Vec<usize>) =
            (g.iter().map(Vec::len).collect(), vec![0; plan.n_regs]);
        let mut map = Vec::new();
        let mut steps = Vec::with_capacity(n_main);
        let mut scratch = 0;
        for step in &plan.steps[..n_main] {
            let (kind, a, b) = classify(step);
            let d = step.dst as usize;
            let at = map.len() as u32;
            let passive = matches!(kind, Kind::Passive { .. });
            let (ga, gb) = (pattern(&g, Some(a), passive), pattern(&g, b, passive));
            let (ha, hb) = (pattern(&h, Some(a), passive), pattern(&h, b, passive));
            let (ga, gb, ha, hb) = (&ga[..], &gb[..], &ha[..], &hb[..]);
            let b = b.unwrap_or(a);
            let outer = match kind {
                Kind::General { .. } | Kind::Square => true,
                Kind::Mul => !ga.is_empty() && !gb.is_empty(),
                _ => false,
            };
            let gd = union(ga, gb, &mut map);
            let mut hd = union(ha, hb, &mut Vec::new());
            if outer {
                let pairs: Vec<(u32, u32)> = gd
                    .iter()
                    .enumerate()
                    .flat_map(|(s, &i)| gd[s..].iter().map(move |&j| (i, j)))
                    .collect();
                hd = union(&hd, &pairs, &mut Vec::new());
            }
            for s in [ha, hb] {
                for v in s {
                    map.push(hd.binary_search(v).expect("in the union") as u32);
                }
            }
            if outer {
                for (s, &i) in gd.iter().enumerate() {
                    for &j in &gd[s..] {
                        map.push(hd.binary_search(&(i, j)).expect("pair") as u32);
                    }
                }
                scratch = scratch.max(gd.len());
            }
            if map.len() > MAX_MAP {
                return None;
            }
            let ident = |m: &[u32], len: usize| {
                m.len() == len && m.iter().enumerate().all(|(k, &p)| p as usize == k)
            };
            let at_ = at as usize;
            let same_g = ident(&map[at_..at_ + ga.len()], gd.len());
            let at_h = at_ + ga.len() + gb.len();
            let same_h = ident(&map[at_h..at_h + ha.len()], hd.len());
            steps.push(HStep {
                same_g,
                same_h,
                off: [0; 6],
                kind,
                op: step.op,
                dst: step.dst,
                a,
                b,
                gl: gd.len() as u32,
                hl: hd.len() as u32,
                ga: ga.len() as u32,
                gb: gb.len() as u32,
                ha: ha.len() as u32,
                hb: hb.len() as u32,
                outer,
                at,
            });
            g_cap[d] = g_cap[d].max(gd.len());
            h_cap[d] = h_cap[d].max(hd.len());
            g[d] = gd;
            h[d] = hd;
        }
        let mut len = plan.n_regs;
        let mut offsets = |caps: &[usize]| -> Vec<u32> {
            caps.iter()
                .map(|&c| {
                    len += c;
                    (len - c) as u32
                })
                .collect()
        };
        let g_off = offsets(&g_cap);
        let h_off = offsets(&h_cap);
        for s in &mut steps {
            let (d, a, b) = (s.dst as usize, s.a as usize, s.b as usize);
            s.off = [g_off[d], h_off[d], g_off[a], g_off[b], h_off[a], h_off[b]];
        }
        if len + 2 * scratch > u32::MAX as usize {
            return None;
        }
        Some(HessianPlan {
            steps,
            map,
            n_inputs,
            g_off,
            h_off,
            scratch: len,
            len: len + 2 * scratch,
            out,
            out_h: std::mem::take(&mut h[out as usize]),
        })
    }

    /// The length of the work buffer [`HessianPlan::eval`] takes.
    pub(super) fn work_len(&self) -> usize {
        self.len
    }

    /// `f(x)`, with the Hessian into `hess` (row-major `n × n`, every entry written).
    /// `x.len() == n`, `consts` the tape's constants, `w.len() == work_len()`.
    pub(super) fn eval(&self, x: &[f64], consts: &[f64], hess: &mut [f64], w: &mut [f64]) -> f64 {
        let n = self.n_inputs;
        w[..n].copy_from_slice(x);
        w[n..n + consts.len()].copy_from_slice(consts);
        for i in 0..n {
            w[self.g_off[i] as usize] = 1.0;
        }
        for s in &self.steps {
            self.step(s, w);
        }
        hess.fill(0.0);
        let h = &w[self.h_off[self.out as usize] as usize..];
        for (&(i, j), &v) in self.out_h.iter().zip(h) {
            let (i, j) = (i as usize, j as usize);
            hess[i * n + j] = v;
            hess[j * n + i] = v;
        }
        w[self.out as usize]
    }

    #[inline(always)]
    fn step(&self, s: &HStep, w: &mut [f64]) {
        let (a, b) = (w[s.a as usize], w[s.b as usize]);
        // value, f_a, f_b, [f_aa, f_ab, f_bb]; `None` for an operand not chosen.
        let (v, fa, fb, second) = match s.kind {
            Kind::Passive { src, local } => {
                let args = src.map(|r| w[r as usize]);
                w[s.dst as usize] = eval_real(local, args);
                return;
            }
            Kind::Linear => {
                let (v, fa, fb) = match s.op {
                    Op::Add(..) => (a + b, 1.0, 1.0),
                    Op::Sub(..) => (a - b, 1.0, -1.0),
                    Op::Neg(_) => (-a, -1.0, 0.0),
                    Op::AddConst(_, c) => (a + c, 1.0, 0.0),
                    Op::ConstSub(c, _) => (-a + c, -1.0, 0.0),
                    Op::MulConst(_, c) => (a * c, c, 0.0),
                    Op::DivConst(_, c) => (a / c, 1.0 / c, 0.0),
                    _ => unreachable!("not linear"),
                };
                (v, Some(fa), Some(fb), [0.0; 3])
            }
            Kind::Mul => (a * b, Some(b), Some(a), [0.0, 1.0, 0.0]),
            Kind::Square => (a * a, Some(a + a), None, [2.0, 0.0, 0.0]),
            Kind::Choose => {
                let first = match s.op {
                    Op::Min(..) => rules::select_first_for_min(a, b),
                    Op::Max(..) => rules::select_first_for_max(a, b),
                    Op::Select { compare, .. } => {
                        compare.op.eval(w[compare.a.index()], w[compare.b.index()])
                    }
                    _ => unreachable!("not a choice"),
                };
                if first {
                    (a, Some(1.0), None, [0.0; 3])
                } else {
                    (b, None, Some(1.0), [0.0; 3])
                }
            }
            Kind::General { local, arity: 1 } => {
                let mut r = [Dual2::<f64, f64, 1>::seeded(a, 0), Dual2::constant(0.0)];
                run::<Dual2<f64, f64, 1>, _>(&[Step::new(local, 1)], false, &mut Regs(&mut r));
                let y = r[1];
                (y.re, Some(y.v1[0]), None, [y.v2[0][0], 0.0, 0.0])
            }
            Kind::General { local, .. } => {
                let mut r = [
                    Dual2::<f64, f64, 2>::seeded(a, 0),
                    Dual2::seeded(b, 1),
                    Dual2::constant(0.0),
                ];
                run::<Dual2<f64, f64, 2>, _>(&[Step::new(local, 2)], false, &mut Regs(&mut r));
                let y = r[2];
                (
                    y.re,
                    Some(y.v1[0]),
                    Some(y.v1[1]),
                    [y.v2[0][0], y.v2[0][1], y.v2[1][1]],
                )
            }
        };
        w[s.dst as usize] = v;
        let map = &self.map[s.at as usize..];
        let (map_ga, map) = map.split_at(s.ga as usize);
        let (map_gb, map) = map.split_at(s.gb as usize);
        let (map_ha, map) = map.split_at(s.ha as usize);
        let (map_hb, map_outer) = map.split_at(s.hb as usize);
        let (gl, hl) = (s.gl as usize, s.hl as usize);
        let [gd, hd, g_a, g_b, h_a, h_b] = s.off.map(|o| o as usize);
        // The plan never writes an operand's register: `d`'s entries are apart from them.
        first(w, gd, gl, g_a, map_ga, fa, s.same_g);
        first(w, hd, hl, h_a, map_ha, fa, s.same_h);
        if let Some(fb) = fb {
            scatter(w, gd, gl, g_b, map_gb, fb);
            scatter(w, hd, hl, h_b, map_hb, fb);
        }
        if s.outer && s.gb == 0 && s.same_g {
            // One operand whose entries are the result's: `f_aa ∇a∇aᵀ` straight from them.
            let faa = second[0];
            let (ea, out) = split(w, hd, hl, g_a, gl);
            let mut k = 0;
            for p in 0..gl {
                let ap = faa * ea[p];
                for &aq in &ea[p..] {
                    out[map_outer[k] as usize] += ap * aq;
                    k += 1;
                }
            }
        } else if s.outer {
            // The operands' gradients expanded over the result's inputs.
            let (ea, eb) = (self.scratch, self.scratch + gl);
            w[ea..ea + 2 * gl].fill(0.0);
            scatter(w, ea, gl, g_a, map_ga, 1.0);
            scatter(w, eb, gl, g_b, map_gb, 1.0);
            let [faa, fab, fbb] = second;
            let (e, out) = split(w, hd, hl, ea, 2 * gl);
            let (ea, eb) = e.split_at(gl);
            let mut k = 0;
            for p in 0..gl {
                let (ap, bp) = (ea[p], eb[p]);
                for q in p..gl {
                    let (aq, bq) = (ea[q], eb[q]);
                    let t = if matches!(s.kind, Kind::Mul) {
                        ap * bq + bp * aq
                    } else {
                        faa * ap * aq + fab * (ap * bq + bp * aq) + fbb * bp * bq
                    };
                    out[map_outer[k] as usize] += t;
                    k += 1;
                }
            }
        }
    }
}

/// `w[src ..][.. src_len]` and `w[dst ..][.. dst_len]`, two regions that do not overlap (an
/// empty one may sit at the other's start).
#[inline(always)]
fn split(
    w: &mut [f64],
    dst: usize,
    dst_len: usize,
    src: usize,
    src_len: usize,
) -> (&[f64], &mut [f64]) {
    if src + src_len <= dst {
        let (lo, hi) = w.split_at_mut(dst);
        (&lo[src..src + src_len], &mut hi[..dst_len])
    } else {
        let (lo, hi) = w.split_at_mut(src);
        (&hi[..src_len], &mut lo[dst..dst + dst_len])
    }
}

/// The first operand's part: `d = c · s` in place when its entries are the result's (`same`),
/// else `d = 0` and [`scatter`]; `d = 0` alone when the operand is not chosen (`c` is `None`).
#[inline(always)]
fn first(
    w: &mut [f64],
    dst: usize,
    len: usize,
    src: usize,
    map: &[u32],
    c: Option<f64>,
    same: bool,
) {
    match c {
        Some(c) if same => {
            let (s, d) = split(w, dst, len, src, len);
            for (d, &s) in d.iter_mut().zip(s) {
                *d = c * s;
            }
        }
        Some(c) => {
            w[dst..dst + len].fill(0.0);
            scatter(w, dst, len, src, map, c);
        }
        None => w[dst..dst + len].fill(0.0),
    }
}

/// `w[dst + map[k]] += c · w[src + k]`.
#[inline(always)]
fn scatter(w: &mut [f64], dst: usize, len: usize, src: usize, map: &[u32], c: f64) {
    let (s, d) = split(w, dst, len, src, map.len());
    for (&m, &v) in map.iter().zip(s) {
        d[m as usize] += c * v;
    }
}

/// The pattern of register `r`, empty for no register or a passive step.
fn pattern<T: Clone>(p: &[Vec<T>], r: Option<u32>, passive: bool) -> Vec<T> {
    match r {
        Some(r) if !passive => p[r as usize].clone(),
        _ => Vec::new(),
    }
}

/// The kind of a register step and its derivative operands (registers).
fn classify(step: &Step) -> (Kind, u32, Option<u32>) {
    if step.passive.result() {
        let (src, local) = operands(step.op);
        return (Kind::Passive { src, local }, 0, None);
    }
    match step.op {
        Op::Add(a, b) | Op::Sub(a, b) => (Kind::Linear, a.0, Some(b.0)),
        Op::Neg(a)
        | Op::AddConst(a, _)
        | Op::ConstSub(_, a)
        | Op::MulConst(a, _)
        | Op::DivConst(a, _) => (Kind::Linear, a.0, None),
        Op::Mul(a, b) if a == b => (Kind::Square, a.0, None),
        Op::Mul(a, b) => (Kind::Mul, a.0, Some(b.0)),
        Op::Min(a, b) | Op::Max(a, b) => (Kind::Choose, a.0, Some(b.0)),
        Op::Select {
            if_true, if_false, ..
        } => (Kind::Choose, if_true.0, Some(if_false.0)),
        op => {
            let (src, local) = operands(op);
            if matches!(op, Op::Binary(..) | Op::Div(..)) {
                (Kind::General { local, arity: 2 }, src[0], Some(src[1]))
            } else {
                (Kind::General { local, arity: 1 }, src[0], None)
            }
        }
    }
}
