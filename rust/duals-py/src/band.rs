//! Banded tangents: the tangent of a one-dimensional `DualArray` held as its nonzero diagonals.
//!
//! A Jacobian driver seeds the unit directions: the tangent of its input `x` (`n` elements) is
//! the identity, `t[j, i] = 1` where `j == i`. Elementwise arithmetic, the unary rules, slices
//! `x[a:b]` and `np.concatenate` keep that shape: every tangent they make is a few diagonals,
//! `t[j, i] = v_d[i]` where `j == i + o_d`. The method of lines writes ODE right-hand sides in
//! exactly these operations (`u[:-1]`, `np.concatenate([one, u[:-1]])`, `u * u * v`), and their
//! Jacobians are banded. Held as diagonals, such a tangent costs `rows · n` instead of `K · n`
//! elements per operation, and the driver's output is the whole Jacobian from one evaluation
//! whatever the chunk: the diagonals keep every direction, the `K` rows of the seed are only
//! the window that a dense tangent would be cut to.
//!
//! # Same results
//!
//! An operation on banded operands runs the kernel of the dense operation on the diagonals,
//! aligned as rows of a block (each operand's value of diagonal `o` in row `o` of the union of
//! offsets, zeros where it has none), plus one *probe* row of zeros: what the dense kernel
//! computes everywhere off the diagonals. Where the probe row comes out anything but zero (a
//! derivative that is infinite or NaN: `sqrt` at 0, `inf · 0`), or where the dense path would
//! take another route (values that are not finite in `+ - * /`: the Python implementation,
//! under NumPy's error state), the banded path declines and the operation runs densely on the
//! operands made dense. So a Jacobian from diagonals equals the dense one, entry for entry,
//! except that a zero off the diagonals is `+0` where the dense kernel may leave `-0`.
//!
//! # Dense when anything else reads it
//!
//! Everything else (other functions, indexing by an int, writes, `_p`/`_t`) reads the arrays
//! through `DualArrayBase::parts`, which makes the tangent dense (`(K, n)`: the seed's window)
//! once; from then on the array is an ordinary one and its diagonals are never read again. A
//! slice `y[a:b]` is a view, as in NumPy: its primal is a view of its base's, and made dense its
//! tangent is a view of its base's dense tangent; its diagonals are valid only while its base's
//! are (`DualArrayBase::bands`), so a write through either is seen by both.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use numpy::{PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PySlice, PySliceMethods, PyTuple};

use duals::kernels::{self, Operand};
use duals::rules::UnaryRule;

use crate::dual::{self, elements, DualArrayBase, Fresh, Op};
use crate::errors;

/// Tangent elements (`K·n`) from which the drivers seed a one-dimensional input with banded
/// tangents. Below, a dense operation costs about as much as the bookkeeping.
pub(crate) const BANDED_MIN: usize = 1 << 12;

/// Whether the drivers seed banded tangents (`DUALS_BANDED=0` turns it off; tests compare
/// both ways with `_native._banded`).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether banded seeds are on: `DUALS_BANDED` unset or not `0`, and not turned off by
/// `_native._banded(False)`.
pub(crate) fn enabled() -> bool {
    static FROM_ENV: OnceLock<bool> = OnceLock::new();
    *FROM_ENV.get_or_init(|| std::env::var("DUALS_BANDED").map_or(true, |v| v.trim() != "0"))
        && ENABLED.load(Ordering::Acquire)
}

/// `_native._banded(on=None)`: whether drivers seed banded tangents; sets it if `on` is given
/// and returns the previous setting (private, for tests and benchmarks).
#[pyfunction]
#[pyo3(signature = (on = None))]
pub(crate) fn _banded(on: Option<bool>) -> bool {
    match on {
        Some(on) => ENABLED.swap(on, Ordering::AcqRel),
        None => ENABLED.load(Ordering::Acquire),
    }
}

/// The most rows (diagonals and the probe row) an operation keeps banded for `k` tangent rows:
/// past a quarter of them, the dense operation costs about the same.
fn max_rows(k: usize) -> usize {
    (k / 4).max(8)
}

/// A tangent as its diagonals.
#[derive(Debug)]
pub(crate) struct Bands {
    /// The diagonals' offsets, distinct and ascending: value `i` of diagonal `d` is the tangent
    /// of element `i` in direction `i + offsets[d]`.
    offsets: Vec<isize>,
    /// `offsets.len()` rows of `n` values.
    values: Vec<f64>,
    /// Elements.
    n: usize,
    /// Directions seeded (the driver's inputs): values in other directions are zero.
    full: usize,
}

impl Bands {
    /// The unit directions of `n` inputs: the identity.
    pub(crate) fn identity(n: usize) -> Self {
        Bands {
            offsets: vec![0],
            values: vec![1.0; n],
            n,
            full: n,
        }
    }

    /// No tangent at all (a constant of a banded computation: `np.ones_like(u)`).
    fn zero(n: usize, full: usize) -> Self {
        Bands {
            offsets: Vec::new(),
            values: Vec::new(),
            n,
            full,
        }
    }

    fn row(&self, d: usize) -> &[f64] {
        &self.values[d * self.n..(d + 1) * self.n]
    }

    /// The elements `i` of diagonal `o` whose direction `i + o` lies in `[0, k)`.
    fn span(&self, o: isize, k: usize) -> std::ops::Range<usize> {
        let lo = (-o).clamp(0, self.n as isize) as usize;
        let hi = (k as isize - o).clamp(0, self.n as isize) as usize;
        lo..hi.max(lo)
    }

    /// `entry(i, j, v)` for every value `v` of element `i` in a direction `j` in `[0, k)`.
    fn for_each_entry(&self, k: usize, mut entry: impl FnMut(usize, usize, f64)) {
        for (d, &o) in self.offsets.iter().enumerate() {
            let row = self.row(d);
            for i in self.span(o, k) {
                entry(i, (i as isize + o) as usize, row[i]);
            }
        }
    }

    /// The dense tangent `(k, n)` (directions `[0, k)`), C order, into `out`.
    pub(crate) fn dense_into(&self, k: usize, out: &mut [f64]) {
        out.fill(0.0);
        self.for_each_entry(k, |i, j, v| out[j * self.n + i] = v);
    }

    /// Elements `[a, b)`.
    fn slice(&self, a: usize, b: usize) -> Self {
        let mut values = Vec::with_capacity(self.offsets.len() * (b - a));
        for d in 0..self.offsets.len() {
            values.extend_from_slice(&self.row(d)[a..b]);
        }
        Bands {
            offsets: self.offsets.iter().map(|&o| o + a as isize).collect(),
            values,
            n: b - a,
            full: self.full,
        }
    }

    /// The diagonals as the rows of a block for the offsets `union` (a superset of this
    /// tangent's, ascending), zeros where it has none, followed by the probe row of zeros.
    fn aligned(&self, union: &[isize]) -> Vec<f64> {
        let mut block = vec![0.0; (union.len() + 1) * self.n];
        let mut d = 0;
        for (r, &o) in union.iter().enumerate() {
            if self.offsets.get(d) == Some(&o) {
                block[r * self.n..(r + 1) * self.n].copy_from_slice(self.row(d));
                d += 1;
            }
        }
        block
    }
}

/// The union of two ascending offset lists, ascending.
fn union(a: &[isize], b: &[isize]) -> Vec<isize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x == y => {
                i += 1;
                j += 1;
                x
            }
            (Some(&x), Some(&y)) if x < y => {
                i += 1;
                x
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (_, Some(&y)) => {
                j += 1;
                y
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

/// The diagonals of a block a kernel wrote (`rows` rows of `n` and the probe row), if the probe
/// row is all zeros (what the dense kernel computes off the diagonals).
fn checked(mut block: Vec<f64>, offsets: Vec<isize>, n: usize, full: usize) -> Option<Bands> {
    let rows = offsets.len();
    if !block[rows * n..].iter().all(|&v| v == 0.0) {
        return None;
    }
    block.truncate(rows * n);
    Some(Bands {
        offsets,
        values: block,
        n,
        full,
    })
}

/// A banded operand: the array, its primal's elements and its diagonals.
struct Banded<'a> {
    array: &'a DualArrayBase,
    p: std::borrow::Cow<'a, [f64]>,
    bands: Arc<Bands>,
}

/// `x` as a banded operand: a DualArray whose diagonals are valid, with a float64 primal.
fn banded<'a>(x: &'a Bound<'_, PyAny>) -> Option<Banded<'a>> {
    let py = x.py();
    let a = x.cast::<DualArrayBase>().ok()?.get();
    let (p, bands) = a.bands()?;
    let p = elements(p.bind(py).cast_exact::<PyArrayDyn<f64>>().ok()?)?;
    Some(Banded { array: a, p, bands })
}

/// One operand of a banded `+ - * /`.
enum Term<'a> {
    Banded(Banded<'a>),
    /// A number (as the dense arithmetic takes it).
    Number(f64),
    /// A float64 ndarray of the result's shape: no tangent.
    Const(std::borrow::Cow<'a, [f64]>),
}

impl Term<'_> {
    fn bands(&self) -> Option<&Bands> {
        match self {
            Term::Banded(b) => Some(&b.bands),
            _ => None,
        }
    }
}

fn term<'a>(x: &'a Bound<'_, PyAny>) -> Option<Term<'a>> {
    if x.is_instance_of::<DualArrayBase>() {
        return banded(x).map(Term::Banded);
    }
    if let Some(c) = crate::lazy::number(x) {
        return Some(Term::Number(c));
    }
    let a = x.cast_exact::<PyArrayDyn<f64>>().ok()?;
    if a.ndim() != 1 {
        return None;
    }
    elements(a).map(Term::Const)
}

/// The kernel operand of a term (`block`: its diagonals aligned, for a banded term).
fn operand<'a>(t: &'a Term<'_>, block: &'a Option<Vec<f64>>) -> Option<Operand<'a>> {
    Some(match t {
        Term::Banded(x) => Operand::Array {
            primal: &x.p,
            tangent: block.as_deref()?,
        },
        Term::Number(c) => Operand::ScalarConst(*c),
        Term::Const(c) => Operand::ArrayConst(c),
    })
}

/// `a op b` with banded tangents, or `None` where the dense operation must run (see the module
/// documentation).
pub(crate) fn binary<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    op: Op,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let (Some(ta), Some(tb)) = (term(a), term(b)) else {
        return Ok(None);
    };
    // The result's seed: the banded operands' (one object), as the dense path requires.
    let (first, n, full) = match (&ta, &tb) {
        (Term::Banded(x), Term::Banded(y)) => {
            if !x.array.seed().is(y.array.seed()) || x.bands.n != y.bands.n {
                return Ok(None);
            }
            if x.bands.full != y.bands.full {
                return Ok(None);
            }
            (x, x.bands.n, x.bands.full)
        }
        (Term::Banded(x), _) | (_, Term::Banded(x)) => (x, x.bands.n, x.bands.full),
        _ => return Ok(None),
    };
    let shape_ok = |t: &Term<'_>| !matches!(t, Term::Const(c) if c.len() != n);
    if !(shape_ok(&ta) && shape_ok(&tb)) {
        return Ok(None);
    }
    let layout = first.array.layout(py)?;
    let offsets = union(
        ta.bands().map_or(&[][..], |b| &b.offsets),
        tb.bands().map_or(&[][..], |b| &b.offsets),
    );
    let rows = offsets.len() + 1;
    if rows > max_rows(layout.rows()) {
        return Ok(None);
    }
    let blocks = [&ta, &tb].map(|t| t.bands().map(|b| b.aligned(&offsets)));
    let (Some(x), Some(y)) = (operand(&ta, &blocks[0]), operand(&tb, &blocks[1])) else {
        return Ok(None);
    };
    let mut out_p = Fresh::new(py, vec![n]);
    let mut out_t = vec![0.0; rows * n];
    dual::arithmetic(op, x, y, rows, out_p.data(), &mut out_t).map_err(errors::kernel)?;
    // Values that are not finite: the dense path runs the Python implementation, under NumPy's
    // error state.
    if !out_p.data().iter().all(|v| v.is_finite()) {
        return Ok(None);
    }
    let Some(bands) = checked(out_t, offsets, n, full) else {
        return Ok(None);
    };
    let seed = first.array.seed().clone_ref(py);
    dual::new_banded(py, out_p.array(), bands, &seed, None).map(Some)
}

/// `rule(x)` with banded tangents (the kernel of the eager ufunc, `kernels::unary_rule`), or
/// `None`.
pub(crate) fn unary<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    rule: UnaryRule,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(b) = banded(x) else {
        return Ok(None);
    };
    let n = b.bands.n;
    let rows = b.bands.offsets.len() + 1;
    let block = b.bands.aligned(&b.bands.offsets);
    let mut out_p = Fresh::new(py, vec![n]);
    let mut out_t = vec![0.0; rows * n];
    kernels::unary_rule(rule, &b.p, &block, rows, out_p.data(), &mut out_t)
        .map_err(errors::kernel)?;
    let Some(bands) = checked(out_t, b.bands.offsets.clone(), n, b.bands.full) else {
        return Ok(None);
    };
    let seed = b.array.seed().clone_ref(py);
    dual::new_banded(py, out_p.array(), bands, &seed, None).map(Some)
}

/// `-x` with banded tangents, or `None`.
pub(crate) fn neg<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(b) = banded(x) else {
        return Ok(None);
    };
    let mut out_p = Fresh::new(py, vec![b.bands.n]);
    for (d, &s) in out_p.data().iter_mut().zip(b.p.iter()) {
        *d = -s;
    }
    let bands = Bands {
        offsets: b.bands.offsets.clone(),
        values: b.bands.values.iter().map(|&v| -v).collect(),
        n: b.bands.n,
        full: b.bands.full,
    };
    let seed = b.array.seed().clone_ref(py);
    dual::new_banded(py, out_p.array(), bands, &seed, None).map(Some)
}

/// `x[a:b]` (a slice of step 1) of a banded array: a view (see the module documentation), or
/// `None`.
pub(crate) fn slice<'py>(
    slf: &Bound<'py, DualArrayBase>,
    index: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = slf.py();
    let this = slf.get();
    let Some((p, bands)) = this.bands() else {
        return Ok(None);
    };
    let Ok(s) = index.cast::<PySlice>() else {
        return Ok(None);
    };
    let n = bands.n;
    let ind = s.indices(n as isize)?;
    if ind.step != 1 {
        return Ok(None);
    }
    let (a, len) = (ind.start.max(0) as usize, ind.slicelength);
    let pv = p.bind(py).get_item(index)?;
    let Ok(pv) = pv.cast_into_exact::<PyArrayDyn<f64>>() else {
        return Ok(None);
    };
    if pv.len() != len {
        return Ok(None);
    }
    let view = bands.slice(a, a + len);
    let (base, start) = this.view_of(slf);
    dual::new_banded(py, pv, view, this.seed(), Some((base, start + a))).map(Some)
}

/// `np.concatenate(items)` of 1-d banded arrays (one seed) and float64 arrays (no tangent)
/// along their one axis, or `None`.
pub(crate) fn concatenate<'py>(
    py: Python<'py>,
    items: &[Bound<'py, PyAny>],
    axis: isize,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if !(axis == 0 || axis == -1) || items.is_empty() {
        return Ok(None);
    }
    let mut terms = Vec::with_capacity(items.len());
    let mut first: Option<&Banded<'_>> = None;
    for item in items {
        match term(item) {
            Some(t @ (Term::Banded(_) | Term::Const(_))) => terms.push(t),
            _ => return Ok(None),
        }
    }
    for t in &terms {
        if let Term::Banded(b) = t {
            match first {
                None => first = Some(b),
                Some(f) if f.array.seed().is(b.array.seed()) && f.bands.full == b.bands.full => {}
                Some(_) => return Ok(None),
            }
        }
    }
    let Some(first) = first else {
        return Ok(None);
    };
    let len = |t: &Term<'_>| match t {
        Term::Banded(b) => b.bands.n,
        Term::Const(c) => c.len(),
        Term::Number(_) => 0,
    };
    let total: usize = terms.iter().map(len).sum();
    // Diagonal `o` of a piece at position `at` is diagonal `o - at` of the result.
    let mut offsets = Vec::new();
    let mut at = 0isize;
    for t in &terms {
        if let Term::Banded(b) = t {
            let shifted: Vec<isize> = b.bands.offsets.iter().map(|&o| o - at).collect();
            offsets = union(&offsets, &shifted);
        }
        at += len(t) as isize;
    }
    if offsets.len() + 1 > max_rows(first.array.layout(py)?.rows()) {
        return Ok(None);
    }
    let mut out_p = Fresh::new(py, vec![total]);
    let mut values = vec![0.0; offsets.len() * total];
    let mut at = 0usize;
    for t in &terms {
        let n = len(t);
        match t {
            Term::Banded(b) => {
                out_p.data()[at..at + n].copy_from_slice(&b.p);
                for (d, &o) in b.bands.offsets.iter().enumerate() {
                    let shifted = o - at as isize;
                    // (present: the union holds every piece's shifted offsets)
                    let Ok(r) = offsets.binary_search(&shifted) else {
                        return Ok(None);
                    };
                    values[r * total + at..r * total + at + n].copy_from_slice(b.bands.row(d));
                }
            }
            Term::Const(c) => out_p.data()[at..at + n].copy_from_slice(c),
            Term::Number(_) => {}
        }
        at += n;
    }
    let bands = Bands {
        offsets,
        values,
        n: total,
        full: first.bands.full,
    };
    let seed = first.array.seed().clone_ref(py);
    dual::new_banded(py, out_p.array(), bands, &seed, None).map(Some)
}

/// _band_constant(like, p) -> DualArray | None
///
/// `x[i]` of a banded array (`p` its primal) with `k` tangent rows: the value and the tangents
/// in directions `[0, k)` (the dense tangent's column), read from the diagonals; `None` for an
/// index out of bounds (NumPy's error, from the dense path) or a primal not read here.
pub(crate) fn element(
    p: &Bound<'_, PyAny>,
    bands: &Bands,
    index: &Bound<'_, PyAny>,
    k: usize,
) -> PyResult<Option<(f64, Vec<f64>)>> {
    let Ok(i) = index.extract::<isize>() else {
        return Ok(None);
    };
    let n = bands.n;
    let i = if i < 0 { i + n as isize } else { i };
    if i < 0 || i >= n as isize {
        return Ok(None);
    }
    let Some(p) = p.cast_exact::<PyArrayDyn<f64>>().ok().and_then(elements) else {
        return Ok(None);
    };
    let i = i as usize;
    let mut eps = vec![0.0; k];
    for (d, &o) in bands.offsets.iter().enumerate() {
        if bands.span(o, k).contains(&i) {
            eps[(i as isize + o) as usize] = bands.row(d)[i];
        }
    }
    Ok(Some((p[i], eps)))
}

/// `x[index] = value` on a banded array that is no view, kept banded: `index` an int, a slice
/// of step 1 or `...`; `value` a number (an int index: only a number), a float64 array of the
/// elements' number, or a banded array of this seed (`dy[1:-1] = u[:-2] - 2.0 * u[1:-1]`,
/// an ODE right-hand side written into `np.zeros_like(y)`; in-place operators, which write
/// `x[...]`). `Ok(false)` (nothing written) for anything else: the dense write.
pub(crate) fn assign(
    slf: &Bound<'_, DualArrayBase>,
    index: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let py = slf.py();
    let this = slf.get();
    let (Some(store), Some((p, bands))) = (this.band_root(), this.bands()) else {
        return Ok(false);
    };
    let n = bands.n;
    // The elements written, [a, b)
    let (a, b, element) = if index.is_exact_instance_of::<PyInt>() {
        let Ok(i) = index.extract::<isize>() else {
            return Ok(false);
        };
        let j = if i < 0 { i + n as isize } else { i };
        if j < 0 || j >= n as isize {
            return Ok(false); // (NumPy's IndexError, from the dense write)
        }
        (j as usize, j as usize + 1, true)
    } else if let Ok(s) = index.cast_exact::<PySlice>() {
        let ind = s.indices(n as isize)?;
        if ind.step != 1 {
            return Ok(false);
        }
        let a = ind.start.clamp(0, n as isize) as usize;
        (a, a + ind.slicelength, false)
    } else if index.is(py.Ellipsis()) {
        (0, n, false)
    } else {
        return Ok(false);
    };
    let len = b - a;
    let k = this.layout(py)?.rows();
    // A Dual of this seed into one element, when the seed's rows are every direction (one
    // evaluation: its tangent is whole): each nonzero tangent is an entry of a diagonal
    if let Ok(d) = value.cast::<crate::dual::Dual>() {
        let Some((re, eps, seed)) = d.get().first_order_parts() else {
            return Ok(false);
        };
        if !element || k != bands.full || eps.len() != k || !seed.is(this.seed()) {
            return Ok(false);
        }
        let (offsets, values) = (0..k)
            .filter(|&j| eps[j] != 0.0)
            .map(|j| (j as isize, eps[j]))
            .unzip();
        let value = Bands {
            offsets,
            values,
            n: 1,
            full: bands.full,
        };
        return write(py, store, p, &bands, (a, b), vec![re], Some(&value), k);
    }
    // The value's primal (copied: it may be a view of this array) and diagonals
    let (primal, diagonals) = match term(value) {
        Some(Term::Number(c)) => (vec![c; len], None),
        Some(Term::Const(c)) if !element && c.len() == len => (c.to_vec(), None),
        Some(Term::Banded(v))
            if !element
                && v.bands.n == len
                && v.array.seed().is(this.seed())
                && v.bands.full == bands.full =>
        {
            (v.p.to_vec(), Some(v.bands.clone()))
        }
        _ => return Ok(false),
    };
    write(
        py,
        store,
        p,
        &bands,
        (a, b),
        primal,
        diagonals.as_deref(),
        k,
    )
}

/// `assign`'s write of elements `[a, b)`: `primal` and the diagonals of the value (`None`: no
/// tangent), kept banded if the diagonals stay few enough for `k` rows; `Ok(false)` if not.
#[allow(clippy::too_many_arguments)]
fn write(
    py: Python<'_>,
    store: &BandStorage,
    p: &Py<PyAny>,
    bands: &Bands,
    (a, b): (usize, usize),
    primal: Vec<f64>,
    diagonals: Option<&Bands>,
    k: usize,
) -> PyResult<bool> {
    let n = bands.n;
    // The value's diagonal `o` is diagonal `o - a` here
    let shifted: Vec<isize> = diagonals
        .map(|v| v.offsets.iter().map(|&o| o - a as isize).collect())
        .unwrap_or_default();
    let offsets = union(&bands.offsets, &shifted);
    if offsets.len() + 1 > max_rows(k) {
        return Ok(false);
    }
    let mut values = vec![0.0; offsets.len() * n];
    let index_of = |o: isize| offsets.binary_search(&o).ok();
    for (d, &o) in bands.offsets.iter().enumerate() {
        let (Some(r), row) = (index_of(o), bands.row(d)) else {
            return Ok(false);
        };
        let dst = &mut values[r * n..(r + 1) * n];
        dst[..a].copy_from_slice(&row[..a]);
        dst[b..].copy_from_slice(&row[b..]);
    }
    if let Some(v) = diagonals {
        for (d, &o) in shifted.iter().enumerate() {
            let Some(r) = index_of(o) else {
                return Ok(false);
            };
            values[r * n + a..r * n + b].copy_from_slice(v.row(d));
        }
    }
    let Ok(parr) = p.bind(py).cast::<PyArrayDyn<f64>>() else {
        return Ok(false);
    };
    // SAFETY: the primal of a banded array that is no view: C-contiguous, made here or by the
    // driver, and never handed to Python code (that makes the tangent dense first); nothing
    // else reads or writes it now (the thread is attached, the value's primal was copied).
    let Ok(dst) = (unsafe { parr.as_slice_mut() }) else {
        return Ok(false);
    };
    dst[a..b].copy_from_slice(&primal);
    store.replace(Bands {
        offsets,
        values,
        n,
        full: bands.full,
    });
    Ok(true)
}

/// A constant (no tangent) of primal ``p`` (a new 1-d float64 array) for a computation on the
/// banded array ``like`` (``np.zeros_like(u)``, ``np.ones_like(u)``): banded, without
/// diagonals. ``None`` if ``like`` is not banded.
#[pyfunction]
pub(crate) fn _band_constant<'py>(
    like: &Bound<'py, PyAny>,
    p: Bound<'py, PyArrayDyn<f64>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = like.py();
    let Some(b) = banded(like) else {
        return Ok(None);
    };
    if p.ndim() != 1 || !p.is_c_contiguous() {
        return Ok(None);
    }
    let bands = Bands::zero(p.len(), b.bands.full);
    let seed = b.array.seed().clone_ref(py);
    dual::new_banded(py, p, bands, &seed, None).map(Some)
}

/// A result's primal and its Jacobian.
type PrimalAndJacobian<'py> = (Bound<'py, PyAny>, Bound<'py, PyArray2<f64>>);

/// _banded_jacobian(y, seed) -> (primal, jacobian) | None
///
/// For a DualArray ``y`` of ``seed`` whose tangent is still banded (see ``band.rs``): its
/// primal and the whole Jacobian ``(m, n)`` over every seeded direction (not only the seed's
/// ``K``), C-ordered, zero off the diagonals. ``None`` for anything else: the caller collects
/// the dense tangent.
#[pyfunction]
pub(crate) fn _banded_jacobian<'py>(
    py: Python<'py>,
    y: &Bound<'py, PyAny>,
    seed: &Bound<'py, PyAny>,
) -> PyResult<Option<PrimalAndJacobian<'py>>> {
    let Ok(a) = y.cast::<DualArrayBase>() else {
        return Ok(None);
    };
    let a = a.get();
    let Some((p, bands)) = a.bands() else {
        return Ok(None);
    };
    if !a.seed().bind(py).is(seed) {
        return Ok(None);
    }
    let (m, n) = (bands.n, bands.full);
    let jac = PyArray2::<f64>::zeros(py, [m, n], false);
    {
        // SAFETY: a new C-contiguous array that no other code has seen yet: the only reference
        // to its memory.
        let out = unsafe { jac.as_slice_mut() }
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("duals: {e}")))?;
        bands.for_each_entry(n, |i, j, v| out[i * n + j] = v);
    }
    // A copy of the primal: `y`'s may be a view of the driver's input.
    let primal = p.bind(py).call_method0(pyo3::intern!(py, "copy"))?;
    Ok(Some((primal, jac)))
}

/// The items of a list or tuple (`np.concatenate`'s first argument).
pub(crate) fn items_of<'py>(arrays: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    if let Ok(l) = arrays.cast::<PyList>() {
        return Some(l.iter().collect());
    }
    arrays.cast::<PyTuple>().ok().map(|t| t.iter().collect())
}

/// The storage of a banded array (`dual.rs`, `Storage::Banded`).
#[derive(Debug)]
pub(crate) struct BandStorage {
    pub(crate) p: Py<PyAny>,
    /// The diagonals (replaced by a banded write, `assign`).
    bands: Mutex<Arc<Bands>>,
    /// Elements.
    pub(crate) len: usize,
    /// For a view: where it starts in its base (`DualArrayBase::base`).
    pub(crate) start: usize,
    /// Banded writes into this array so far.
    pub(crate) writes: AtomicU64,
    /// For a view: its base's `writes` when it was made (its diagonals are a copy of the base's
    /// then).
    pub(crate) seen: u64,
    /// The dense tangent, once made (from then on the diagonals are not read).
    pub(crate) dense: OnceLock<Py<PyAny>>,
}

impl BandStorage {
    pub(crate) fn new(p: Py<PyAny>, bands: Arc<Bands>, start: usize, seen: u64) -> Self {
        BandStorage {
            p,
            len: bands.n,
            bands: Mutex::new(bands),
            start,
            writes: AtomicU64::new(0),
            seen,
            dense: OnceLock::new(),
        }
    }

    /// The diagonals now.
    pub(crate) fn current(&self) -> Arc<Bands> {
        self.bands
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// New diagonals after a write: the views made before it see their base's dense arrays
    /// from now on (`DualArrayBase::bands`).
    fn replace(&self, bands: Bands) {
        *self
            .bands
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(bands);
        self.writes.fetch_add(1, Ordering::AcqRel);
    }
}
