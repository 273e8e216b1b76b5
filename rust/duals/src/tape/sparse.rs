//! Sparse Jacobians: the pattern from the tape, a column coloring, compressed seeds.
//!
//! Columns of the Jacobian that share no row can be seeded together: the tangent of a pass
//! along `Σ eⱼ` (over the columns `j` of one color) holds, in each row, the one entry of that
//! row among those columns. With `k` colors the Jacobian takes `⌈k/N⌉` passes of `N`
//! tangents instead of `⌈n/N⌉`: a tridiagonal system of any size takes 3 colors.

use core::cmp::Reverse;

use crate::drivers::{Config, Matrix, VectorFunction};
use crate::number::{Dual, DualNum};
use crate::rules::UnaryRule;

use super::eval::check_len;
use super::{Op, Tape, TapeError};

/// Which entries of an `m × n` matrix may be nonzero, row by row (compressed sparse rows,
/// column indices sorted within each row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    nrows: usize,
    ncols: usize,
    row_ptr: Vec<usize>,
    col_idx: Vec<u32>,
}

impl Pattern {
    /// A pattern from its entries `(row, column)`, in any order, repeats allowed.
    ///
    /// # Errors
    /// [`TapeError::Pattern`] for an entry outside `nrows × ncols`.
    pub fn from_entries(
        nrows: usize,
        ncols: usize,
        entries: &[(usize, usize)],
    ) -> Result<Pattern, TapeError> {
        if ncols > u32::MAX as usize {
            return Err(TapeError::TooLarge {
                what: format!("a pattern of {ncols} columns"),
            });
        }
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); nrows];
        for &(i, j) in entries {
            if i >= nrows || j >= ncols {
                return Err(TapeError::Pattern {
                    reason: format!("entry ({i}, {j}) is outside a {nrows} x {ncols} pattern"),
                });
            }
            rows[i].push(j as u32);
        }
        for r in &mut rows {
            r.sort_unstable();
            r.dedup();
        }
        Ok(Pattern::from_sorted_rows(ncols, &rows))
    }

    fn from_sorted_rows(ncols: usize, rows: &[Vec<u32>]) -> Pattern {
        let mut row_ptr = Vec::with_capacity(rows.len() + 1);
        row_ptr.push(0);
        let mut col_idx = Vec::with_capacity(rows.iter().map(Vec::len).sum());
        for r in rows {
            col_idx.extend_from_slice(r);
            row_ptr.push(col_idx.len());
        }
        Pattern {
            nrows: rows.len(),
            ncols,
            row_ptr,
            col_idx,
        }
    }

    /// Number of rows `m`.
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    /// Number of columns `n`.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Number of entries.
    pub fn nnz(&self) -> usize {
        self.col_idx.len()
    }

    /// Row pointers (length `m + 1`): row `i` is `col_indices()[row_ptr()[i]..row_ptr()[i + 1]]`.
    pub fn row_ptr(&self) -> &[usize] {
        &self.row_ptr
    }

    /// The column of each entry, row by row.
    pub fn col_indices(&self) -> &[u32] {
        &self.col_idx
    }

    /// The columns of row `i` (empty past the last row).
    pub fn row(&self, i: usize) -> &[u32] {
        match (self.row_ptr.get(i), self.row_ptr.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.col_idx[a..b],
            _ => &[],
        }
    }

    /// The entries `(row, column)` in row order.
    pub fn entries(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.nrows).flat_map(move |i| self.row(i).iter().map(move |&j| (i, j as usize)))
    }

    /// The rows of each column (compressed sparse columns): `(col_ptr, row_idx)`.
    fn columns(&self) -> (Vec<usize>, Vec<u32>) {
        let mut col_ptr = vec![0usize; self.ncols + 1];
        for &j in &self.col_idx {
            col_ptr[j as usize + 1] += 1;
        }
        for j in 0..self.ncols {
            col_ptr[j + 1] += col_ptr[j];
        }
        let mut next = col_ptr.clone();
        let mut row_idx = vec![0u32; self.col_idx.len()];
        for i in 0..self.nrows {
            for &j in self.row(i) {
                row_idx[next[j as usize]] = i as u32;
                next[j as usize] += 1;
            }
        }
        (col_ptr, row_idx)
    }

    /// A coloring of the columns such that columns sharing a row differ in color: greedy, in
    /// order of decreasing degree (the number of other columns a column shares a row with),
    /// each column taking the smallest color none of its neighbours has. Time
    /// `O(Σ_rows nnz(row)²)`.
    ///
    /// ```
    /// use duals::tape::Pattern;
    /// // tridiagonal 5 x 5
    /// let entries: Vec<_> = (0..5)
    ///     .flat_map(|i: usize| (i.saturating_sub(1)..(i + 2).min(5)).map(move |j| (i, j)))
    ///     .collect();
    /// let p = Pattern::from_entries(5, 5, &entries)?;
    /// assert_eq!(p.coloring().n_colors(), 3);
    /// # Ok::<(), duals::tape::TapeError>(())
    /// ```
    pub fn coloring(&self) -> Coloring {
        let n = self.ncols;
        let (col_ptr, row_idx) = self.columns();
        let rows_of = |j: usize| &row_idx[col_ptr[j]..col_ptr[j + 1]];
        let mut stamp = vec![usize::MAX; n];
        let mut degree = vec![0usize; n];
        for (j, deg) in degree.iter_mut().enumerate() {
            for &i in rows_of(j) {
                for &k in self.row(i as usize) {
                    let k = k as usize;
                    if k != j && stamp[k] != j {
                        stamp[k] = j;
                        *deg += 1;
                    }
                }
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&j| (Reverse(degree[j]), j));
        let mut colors = vec![u32::MAX; n];
        let mut forbidden = vec![usize::MAX; n + 1];
        let mut n_colors = 0;
        for &j in &order {
            for &i in rows_of(j) {
                for &k in self.row(i as usize) {
                    let c = colors[k as usize];
                    if c != u32::MAX {
                        forbidden[c as usize] = j;
                    }
                }
            }
            let c = (0..=n).find(|&c| forbidden[c] != j).unwrap_or(n);
            colors[j] = c as u32;
            n_colors = n_colors.max(c + 1);
        }
        Coloring { colors, n_colors }
    }
}

/// A color for each column of a [`Pattern`]; see [`Pattern::coloring`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coloring {
    colors: Vec<u32>,
    n_colors: usize,
}

impl Coloring {
    /// A coloring from given colors (checked against a pattern when used).
    pub fn from_colors(colors: Vec<u32>) -> Coloring {
        let n_colors = colors.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
        Coloring { colors, n_colors }
    }

    /// The number of colors: the number of tangents a Jacobian needs.
    pub fn n_colors(&self) -> usize {
        self.n_colors
    }

    /// The color of each column.
    pub fn colors(&self) -> &[u32] {
        &self.colors
    }

    /// Checks that the coloring fits `pattern`: one color per column, no two columns of one
    /// row alike.
    fn check(&self, pattern: &Pattern) -> Result<(), TapeError> {
        let bad = |reason: String| Err(TapeError::Pattern { reason });
        if self.colors.len() != pattern.ncols {
            return bad(format!(
                "the coloring has {} columns, the pattern {}",
                self.colors.len(),
                pattern.ncols
            ));
        }
        let mut last_row = vec![usize::MAX; self.n_colors];
        for i in 0..pattern.nrows {
            for &j in pattern.row(i) {
                let c = self.colors[j as usize] as usize;
                if last_row[c] == i {
                    return bad(format!(
                        "two columns of row {i} have color {c}, so their entries would add up"
                    ));
                }
                last_row[c] = i;
            }
        }
        Ok(())
    }
}

/// A sparse Jacobian in compressed sparse rows: the entries of row `i` are
/// `values[row_ptr[i]..row_ptr[i + 1]]` in the columns `col_idx[..]` of the same range (the
/// pattern's order).
#[derive(Clone, Debug, PartialEq)]
pub struct SparseJacobian {
    /// `m`.
    pub nrows: usize,
    /// `n`.
    pub ncols: usize,
    /// Row pointers, length `m + 1`.
    pub row_ptr: Vec<usize>,
    /// Column of each entry.
    pub col_idx: Vec<u32>,
    /// Value of each entry, `∂fᵢ/∂xⱼ`.
    pub values: Vec<f64>,
}

impl SparseJacobian {
    /// The entries as coordinate triplets `(rows, columns, values)`.
    pub fn to_coo(&self) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
        let rows = (0..self.nrows)
            .flat_map(|i| core::iter::repeat_n(i, self.row_ptr[i + 1] - self.row_ptr[i]))
            .collect();
        let cols = self.col_idx.iter().map(|&j| j as usize).collect();
        (rows, cols, self.values.clone())
    }

    /// The dense `m × n` matrix.
    pub fn to_dense(&self) -> Matrix<f64> {
        let mut d = Matrix::zeros(self.nrows, self.ncols);
        let (rows, cols, values) = self.to_coo();
        for ((i, j), v) in rows.into_iter().zip(cols).zip(values) {
            d[(i, j)] = v;
        }
        d
    }
}

/// Whether a unary rule has a derivative that is zero everywhere.
fn flat(rule: UnaryRule) -> bool {
    use UnaryRule::*;
    match rule {
        Floor | Ceil | Round | Trunc | Signum | Powi(0) => true,
        Powf(p) => p == 0.0,
        _ => false,
    }
}

/// `out = a ∪ b` for sorted sets.
fn union(a: &[u32], b: &[u32], out: &mut Vec<u32>) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        out.push(x.min(y));
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

impl Tape {
    /// The Jacobian's sparsity pattern (`m × n`), valid at every point: the tape evaluated on
    /// sets of inputs. Both branches of a select count, and rules with a zero derivative
    /// (`floor`, `round`, `sign`, ...) carry no dependence. Needs no point and no guard.
    pub fn sparsity(&self) -> Pattern {
        match self.sparsity_within(usize::MAX) {
            Some(pattern) => pattern,
            None => unreachable!("no set of inputs has more than usize::MAX entries"),
        }
    }

    /// The sparsity pattern as [`sparsity`](Self::sparsity) finds it, or `None` as soon as some
    /// value depends on more than `limit` inputs: a row of that many entries needs that many
    /// colors, so a caller that wants few colors stops early (a dense tape's pattern costs
    /// `n` times its instructions).
    pub fn sparsity_within(&self, limit: usize) -> Option<Pattern> {
        let n = self.n_inputs;
        let mut sets: Vec<Vec<u32>> = vec![Vec::new(); self.plan.n_regs];
        for (j, s) in sets.iter_mut().enumerate().take(n) {
            s.push(j as u32);
        }
        for step in &self.plan.steps[..self.n_main] {
            let d = step.dst as usize;
            let mut out = core::mem::take(&mut sets[d]);
            out.clear();
            match step.op {
                Op::Add(a, b)
                | Op::Sub(a, b)
                | Op::Mul(a, b)
                | Op::Div(a, b)
                | Op::Binary(_, a, b)
                | Op::Min(a, b)
                | Op::Max(a, b)
                | Op::Select {
                    if_true: a,
                    if_false: b,
                    ..
                } => union(&sets[a.index()], &sets[b.index()], &mut out),
                Op::Unary(rule, _) if flat(rule) => {}
                Op::Neg(a)
                | Op::AddConst(a, _)
                | Op::ConstSub(_, a)
                | Op::MulConst(a, _)
                | Op::DivConst(a, _)
                | Op::ConstDiv(_, a)
                | Op::Unary(_, a) => out.extend_from_slice(&sets[a.index()]),
            }
            if out.len() > limit {
                return None;
            }
            sets[d] = out;
        }
        let rows: Vec<Vec<u32>> = self
            .plan
            .outputs
            .iter()
            .map(|&r| sets[r as usize].clone())
            .collect();
        Some(Pattern::from_sorted_rows(n, &rows))
    }

    /// The Jacobian at `x` on `pattern` (which must contain the tape's [`sparsity`](Self::sparsity),
    /// e.g. be it), in `⌈k/N⌉` passes of `N` tangents for the `k` colors of `coloring`
    /// (`N` from `cfg`).
    ///
    /// # Errors
    /// [`TapeError::InputLength`]; [`TapeError::Pattern`] if the pattern is not `m × n` or the
    /// coloring does not fit it; a driver error for an invalid chunk width.
    pub fn jacobian_sparse(
        &self,
        x: &[f64],
        pattern: &Pattern,
        coloring: &Coloring,
        cfg: &mut Config<f64>,
    ) -> Result<SparseJacobian, TapeError> {
        let mut values = vec![0.0; pattern.nnz()];
        self.jacobian_sparse_into(x, pattern, coloring, &mut values, cfg)?;
        Ok(SparseJacobian {
            nrows: pattern.nrows,
            ncols: pattern.ncols,
            row_ptr: pattern.row_ptr.clone(),
            col_idx: pattern.col_idx.clone(),
            values,
        })
    }

    /// The values of [`jacobian_sparse`](Self::jacobian_sparse) into `values`, in the
    /// pattern's order (length `pattern.nnz()`).
    ///
    /// # Errors
    /// As [`jacobian_sparse`](Self::jacobian_sparse), and [`TapeError::Length`] for `values`.
    pub fn jacobian_sparse_into(
        &self,
        x: &[f64],
        pattern: &Pattern,
        coloring: &Coloring,
        values: &mut [f64],
        cfg: &mut Config<f64>,
    ) -> Result<(), TapeError> {
        if x.len() != self.n_inputs {
            return Err(TapeError::InputLength {
                expected: self.n_inputs,
                found: x.len(),
            });
        }
        if pattern.nrows != self.outputs.len() || pattern.ncols != self.n_inputs {
            return Err(TapeError::Pattern {
                reason: format!(
                    "the pattern is {} x {}, the Jacobian {} x {}",
                    pattern.nrows,
                    pattern.ncols,
                    self.outputs.len(),
                    self.n_inputs
                ),
            });
        }
        coloring.check(pattern)?;
        check_len("values", pattern.nnz(), values.len())?;
        compressed_jacobian(self, x, pattern, coloring, values, cfg)
    }
}

/// The compressed-seed Jacobian of any `f` whose Jacobian fits `pattern`, for a coloring
/// already checked against it.
fn compressed_jacobian<G: VectorFunction<f64>>(
    f: &G,
    x: &[f64],
    pattern: &Pattern,
    coloring: &Coloring,
    values: &mut [f64],
    cfg: &mut Config<f64>,
) -> Result<(), TapeError> {
    let run = match cfg.width_for(coloring.n_colors)? {
        1 => passes::<G, 1>,
        2 => passes::<G, 2>,
        4 => passes::<G, 4>,
        8 => passes::<G, 8>,
        _ => passes::<G, 16>,
    };
    pulp::Arch::new().dispatch(|| run(f, x, pattern, coloring, values));
    Ok(())
}

/// `⌈k/N⌉` passes: pass `p` seeds tangent `c - pN` of every column of color `c` in
/// `pN .. (p+1)N`, and each entry is read from the tangent of its column's color.
fn passes<G: VectorFunction<f64>, const N: usize>(
    f: &G,
    x: &[f64],
    pattern: &Pattern,
    coloring: &Coloring,
    values: &mut [f64],
) {
    let colors = &coloring.colors;
    let mut xs: Vec<Dual<f64, f64, N>> = x.iter().map(|&v| Dual::constant(v)).collect();
    let mut ys = vec![Dual::<f64, f64, N>::zero(); pattern.nrows];
    for start in (0..coloring.n_colors).step_by(N) {
        for (xj, &c) in xs.iter_mut().zip(colors) {
            xj.eps = [0.0; N];
            if let Some(k) = (c as usize).checked_sub(start).filter(|&k| k < N) {
                xj.eps[k] = 1.0;
            }
        }
        ys.fill(Dual::zero());
        f.eval(&xs, &mut ys);
        for (i, y) in ys.iter().enumerate() {
            let range = pattern.row_ptr[i]..pattern.row_ptr[i + 1];
            for (v, &j) in values[range.clone()]
                .iter_mut()
                .zip(&pattern.col_idx[range])
            {
                if let Some(k) = (colors[j as usize] as usize)
                    .checked_sub(start)
                    .filter(|&k| k < N)
                {
                    *v = y.eps[k];
                }
            }
        }
    }
}
