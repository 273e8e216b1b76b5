//! Joining dual arrays natively: `np.concatenate` of DualArrays (and float64 constants) along
//! an element axis, primal and tangent rows in one call.
//!
//! Linear and structural, so no derivative math: the tangent of the result is the tangents of
//! the pieces side by side, a constant's tangent zero. Anything but the plain case returns
//! `None` and the Python implementation (`duals._functions._concatenate`) runs, with its
//! checks and error messages.

use numpy::ndarray::{ArrayViewD, Axis, Slice};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::intern;
use pyo3::prelude::*;

use crate::band;
use crate::dual::{elements, tangent_rows, DualArrayBase};
use crate::par::{self, SPLIT_ABOVE};

/// The parts of a result: primal, tangent, seed.
type Parts<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

/// One piece: its primal, and its tangent unless it is a constant; or a pending DualArray of
/// several tangent rows and one dimension (`p` then a new array of its shape, not read), whose
/// expression is evaluated straight into its block of the result (`crate::lazy`).
struct Piece<'py> {
    p: Bound<'py, PyArrayDyn<f64>>,
    t: Option<Bound<'py, PyArrayDyn<f64>>>,
    pending: Option<Bound<'py, DualArrayBase>>,
}

/// Where the tangent rows of a piece along the first axis come from.
enum Rows<'a> {
    /// Its rows, `stride` apart (read in place where the memory allows).
    Read(std::borrow::Cow<'a, [f64]>, usize),
    /// Its rows in memory of its own (a pending piece evaluated on its own).
    Owned(Vec<f64>, usize),
    /// A constant: zeros.
    Zero,
    /// Written already (a pending piece evaluated into the result).
    Written,
}

/// A view of a float64 array, read in place.
///
/// # Safety
/// The caller reads it only with the thread attached while no Python code runs (as
/// `dual::elements`): nothing else writes the array meanwhile, and no mutable Rust view of it
/// exists (the pieces are read, only the new result is written).
unsafe fn view<'a>(a: &'a Bound<'_, PyArrayDyn<f64>>) -> ArrayViewD<'a, f64> {
    // SAFETY: as the function's contract says.
    unsafe { a.as_array() }
}

/// A DualArray's primal and tangent as float64 arrays.
type FloatParts<'py> = (Bound<'py, PyArrayDyn<f64>>, Bound<'py, PyArrayDyn<f64>>);

/// The primal and tangent of `a` (evaluated if pending, read here: `a` stays private) as
/// float64 arrays; `None` for other dtypes (the Python path).
fn float_parts<'py>(
    py: Python<'py>,
    a: &Bound<'py, DualArrayBase>,
) -> PyResult<Option<FloatParts<'py>>> {
    let (p, t) = a.get().parts(py)?;
    Ok(
        match (
            p.bind(py).clone().cast_into_exact::<PyArrayDyn<f64>>(),
            t.bind(py).clone().cast_into_exact::<PyArrayDyn<f64>>(),
        ) {
            (Ok(p), Ok(t)) => Some((p, t)),
            _ => None,
        },
    )
}

/// _concatenate(arrays, axis) -> DualArray | None
///
/// ``np.concatenate(arrays, axis)`` of a list or tuple of DualArrays of one seed (the same
/// object; not a traced array) and float64 ndarrays (constants: zero tangents), all of one
/// number of dimensions (at least 1) and of one shape but along ``axis`` (an int): the result,
/// a new private DualArray (banded if the pieces are, `crate::band`; else its primal and tangent
/// ``(K, *S)`` C-ordered). ``None`` for anything else
/// (``axis=None``, other types, mixed seeds, shapes NumPy would reject): the caller takes the
/// general path.
#[pyfunction]
pub(crate) fn _concatenate<'py>(
    py: Python<'py>,
    arrays: &Bound<'py, PyAny>,
    axis: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(items) = band::items_of(arrays) else {
        return Ok(None);
    };
    let Ok(axis) = axis.extract::<isize>() else {
        return Ok(None);
    };
    if let Some(r) = band::concatenate(py, &items, axis)? {
        return Ok(Some(r));
    }
    let Some((p, t, seed)) = joined(py, &items, axis)? else {
        return Ok(None);
    };
    let (Ok(p), Ok(t)) = (
        p.cast_into_exact::<PyArrayDyn<f64>>(),
        t.cast_into_exact::<PyArrayDyn<f64>>(),
    ) else {
        return Ok(None);
    };
    crate::dual::new_dual_array(py, p, t, &seed.unbind()).map(Some)
}

/// The primal, tangent and seed of `_concatenate` made dense.
fn joined<'py>(
    py: Python<'py>,
    items: &[Bound<'py, PyAny>],
    axis: isize,
) -> PyResult<Option<Parts<'py>>> {
    let mut seed: Option<Bound<'py, PyAny>> = None;
    let mut pieces = Vec::with_capacity(items.len());
    for item in items {
        if item.is_instance_of::<DualArrayBase>() {
            let s = item.getattr(intern!(py, "_s"))?;
            match &seed {
                None => seed = Some(s),
                Some(first) if first.is(&s) => {}
                Some(_) => return Ok(None),
            }
            let a = item.cast::<DualArrayBase>()?;
            if let Some(lazy) = a.get().lazy() {
                if lazy.rows() > 1 && lazy.shape().len() == 1 {
                    // SAFETY: a new array, never read (the piece's memory is written by the
                    // evaluation, or read from the evaluated array).
                    let p = unsafe { PyArrayDyn::<f64>::new(py, lazy.shape().to_vec(), false) };
                    pieces.push(Piece {
                        p,
                        t: None,
                        pending: Some(a.clone()),
                    });
                    continue;
                }
            }
            // Read here, not handed to Python code: the item stays private (its memory may be
            // read by a pending expression; see `crate::lazy`).
            let Some((p, t)) = float_parts(py, a)? else {
                return Ok(None);
            };
            pieces.push(Piece {
                p,
                t: Some(t),
                pending: None,
            });
        } else if let Ok(p) = item.cast_exact::<PyArrayDyn<f64>>() {
            pieces.push(Piece {
                p: p.clone(),
                t: None,
                pending: None,
            });
        } else {
            return Ok(None);
        }
    }
    let Some(seed) = seed else {
        return Ok(None);
    };
    // Traced arrays (order 0) fill in constants' tape values: the Python path.
    if seed.getattr(intern!(py, "order"))?.extract::<i64>()? == 0 {
        return Ok(None);
    }
    // Shapes: one ndim >= 1, equal off the axis; tangents (K, *S) of one K.
    let first = pieces[0].p.shape().to_vec();
    let ndim = first.len();
    if ndim == 0 || axis < -(ndim as isize) || axis >= ndim as isize {
        return Ok(None);
    }
    let ax = axis.rem_euclid(ndim as isize) as usize;
    let mut k = None;
    let mut total = 0usize;
    for piece in &pieces {
        let shape = piece.p.shape();
        if shape.len() != ndim || (0..ndim).any(|d| d != ax && shape[d] != first[d]) {
            return Ok(None);
        }
        total += shape[ax];
        if let Some(t) = &piece.t {
            let ts = t.shape();
            if ts.len() != ndim + 1 || ts[1..] != *shape || k.is_some_and(|k| k != ts[0]) {
                return Ok(None);
            }
            k = Some(ts[0]);
        }
        if let Some(a) = &piece.pending {
            let rows = a.get().lazy().map_or(0, |l| l.rows());
            if rows == 0 || k.is_some_and(|k| k != rows) {
                return Ok(None);
            }
            k = Some(rows);
        }
    }
    let Some(k) = k else {
        return Ok(None);
    };
    let mut shape = first;
    shape[ax] = total;
    let tshape: Vec<usize> = std::iter::once(k).chain(shape.iter().copied()).collect();
    // SAFETY: new C-ordered arrays, every element written below (the pieces cover the result
    // along the axis, a constant's tangent filled with zeros) before they reach Python.
    let (out_p, out_t) = unsafe {
        (
            PyArrayDyn::<f64>::new(py, shape, false),
            PyArrayDyn::<f64>::new(py, tshape, false),
        )
    };
    if ax == 0 {
        // Along the first axis: each piece is one block of the primal and one block of every
        // tangent row (each a contiguous run of the result), copied from the piece's C-ordered
        // rows (in place where its memory allows, `dual::tangent_rows`).
        // SAFETY: the new arrays are C-contiguous and not yet visible to any other code: these
        // are the only references to their memory.
        let (dp, dt) = unsafe { (out_p.as_slice_mut(), out_t.as_slice_mut()) };
        let (Ok(dp), Ok(dt)) = (dp, dt) else {
            return Ok(None);
        };
        let row = dp.len();
        // (offset in a row of the result, elements, tangent rows and their stride or None)
        let mut blocks = Vec::with_capacity(pieces.len());
        let mut at = 0;
        // The arrays of pending pieces that did not evaluate into their blocks.
        let mut forced = Vec::new();
        for piece in &pieces {
            let n: usize = piece.p.len();
            if n == 0 {
                continue;
            }
            if let Some(a) = &piece.pending {
                let lazy = a.get().lazy();
                let block = (k - 1) * row + n;
                if let Some(lazy) = lazy {
                    if lazy.eval_into(py, &mut dp[at..at + n], &mut dt[at..at + block], row)? {
                        // (the tangent block written: nothing to copy)
                        blocks.push((at, n, Rows::Written));
                        at += n;
                        continue;
                    }
                }
                let Some((p, t)) = float_parts(py, a)? else {
                    return Ok(None);
                };
                if p.shape() != piece.p.shape() || t.shape().first() != Some(&k) {
                    return Ok(None);
                }
                forced.push((at, n, p, t));
                at += n;
                continue;
            }
            let Some(p) = elements(&piece.p) else {
                return Ok(None);
            };
            dp[at..at + n].copy_from_slice(&p);
            let rows = match &piece.t {
                Some(t) => match tangent_rows(t) {
                    Some((t, stride)) => Rows::Read(t, stride),
                    None => return Ok(None),
                },
                None => Rows::Zero,
            };
            blocks.push((at, n, rows));
            at += n;
        }
        for (at, n, p, t) in &forced {
            let (Some(p), Some((t, stride))) = (elements(p), tangent_rows(t)) else {
                return Ok(None);
            };
            dp[*at..*at + *n].copy_from_slice(&p);
            blocks.push((*at, *n, Rows::Owned(t.into_owned(), stride)));
        }
        // Tangent rows j0.. of the result into `dst` (whole rows).
        let copy = |j0: usize, dst: &mut [f64]| {
            for (j, out) in (j0..).zip(dst.chunks_mut(row)) {
                for (at, n, rows) in &blocks {
                    let out = &mut out[*at..*at + *n];
                    match rows {
                        Rows::Read(t, stride) => {
                            out.copy_from_slice(&t[j * stride..j * stride + n]);
                        }
                        Rows::Owned(t, stride) => {
                            out.copy_from_slice(&t[j * stride..j * stride + n]);
                        }
                        Rows::Zero => out.fill(0.0),
                        Rows::Written => {}
                    }
                }
            }
        };
        if k >= 2 && dt.len() >= SPLIT_ABOVE {
            let h = k / 2;
            let (lo, hi) = dt.split_at_mut(h * row);
            par::both(|| copy(0, lo), || copy(h, hi));
        } else {
            copy(0, dt);
        }
    } else {
        // (Pending pieces are one-dimensional: along the first axis.)
        if pieces.iter().any(|p| p.pending.is_some()) {
            return Ok(None);
        }
        // SAFETY: the new arrays are not yet visible to any other code: these are the only
        // views of their memory.
        let (mut vp, mut vt) = unsafe { (out_p.as_array_mut(), out_t.as_array_mut()) };
        let mut at = 0;
        for piece in &pieces {
            // SAFETY: read with the thread attached, no Python code running (`view`).
            let p = unsafe { view(&piece.p) };
            let len = p.len_of(Axis(ax));
            let range = Slice::from(at..at + len);
            vp.slice_axis_mut(Axis(ax), range).assign(&p);
            let mut dst = vt.slice_axis_mut(Axis(ax + 1), range);
            match &piece.t {
                // SAFETY: as above.
                Some(t) => dst.assign(&unsafe { view(t) }),
                None => dst.fill(0.0),
            }
            at += len;
        }
    }
    Ok(Some((out_p.into_any(), out_t.into_any(), seed)))
}
