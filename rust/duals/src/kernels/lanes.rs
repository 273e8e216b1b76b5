//! The one place that walks slices in SIMD chunks: full vectors, then a masked tail.
//!
//! Kernels describe their inputs as [`Src`] streams (a slice, or one value broadcast to every
//! element) and give a closure over whole vectors; [`map`] and [`sum_of`] do the chunking, the
//! remainder and the unsafe loads. A broadcast value is read through a small stack buffer with
//! step 0, so slices and broadcasts share one loop without a branch per chunk.

use core::marker::PhantomData;
use core::slice;

use pulp::Simd;

/// Widest vector any [`Level`](super::Level) uses, in `f64` lanes (AVX-512).
const MAX_LANES: usize = 8;

/// One input stream of a kernel.
#[derive(Clone, Copy, Debug)]
pub(super) enum Src<'a> {
    /// One value per element.
    Slice(&'a [f64]),
    /// The same value for every element.
    Splat(f64),
}

impl<'a> Src<'a> {
    /// The stream restricted to elements `start..end`; a broadcast is unchanged.
    #[inline(always)]
    pub(super) fn range(self, start: usize, end: usize) -> Src<'a> {
        match self {
            Src::Slice(s) => Src::Slice(&s[start..end]),
            Src::Splat(v) => Src::Splat(v),
        }
    }

    /// Value of element `i`.
    #[inline(always)]
    pub(super) fn get(self, i: usize) -> f64 {
        match self {
            Src::Slice(s) => s[i],
            Src::Splat(v) => v,
        }
    }
}

/// Read cursors over `N` streams of `n` elements: a base pointer and a step per full vector
/// (`S::F64_LANES` for a slice, `0` for a broadcast, which points into `splats`). `'a`
/// borrows both the slices and the broadcast buffers for as long as the cursors live.
struct Cursors<'a, const N: usize> {
    ptr: [*const f64; N],
    step: [usize; N],
    _borrow: PhantomData<&'a [f64]>,
}

impl<'a, const N: usize> Cursors<'a, N> {
    /// Builds the cursors; panics (a bug in the caller, never reached from the checked public
    /// API) if a slice does not hold `n` values.
    #[inline(always)]
    fn new<S: Simd>(ins: &[Src<'a>; N], splats: &'a [[f64; MAX_LANES]; N], n: usize) -> Self {
        const { assert!(S::F64_LANES <= MAX_LANES) };
        let mut ptr = [core::ptr::null(); N];
        let mut step = [0; N];
        for m in 0..N {
            match ins[m] {
                Src::Slice(s) => {
                    assert_eq!(s.len(), n, "kernel stream length");
                    ptr[m] = s.as_ptr();
                    step[m] = S::F64_LANES;
                }
                Src::Splat(_) => ptr[m] = splats[m].as_ptr(),
            }
        }
        Cursors {
            ptr,
            step,
            _borrow: PhantomData,
        }
    }

    /// The full vectors number `chunk` of every stream.
    ///
    /// (Plain loops rather than `array::from_fn`: its closure is not always inlined, and an
    /// out-of-line call loses the target features of the caller.)
    ///
    /// # Safety
    /// `(chunk + 1) * S::F64_LANES <= n`, with `n` the length given to [`Cursors::new`].
    #[inline(always)]
    unsafe fn load<S: Simd>(&self, simd: S, chunk: usize) -> [S::f64s; N] {
        let mut x = [simd.splat_f64s(0.0); N];
        for (m, x) in x.iter_mut().enumerate() {
            // SAFETY: a slice stream holds `n` values (checked in `new`) and the caller keeps
            // the chunk inside them; a broadcast has step 0 and `MAX_LANES >= S::F64_LANES`
            // values. `S::f64s` is plain old data, read unaligned.
            *x = unsafe {
                self.ptr[m]
                    .add(chunk * self.step[m])
                    .cast::<S::f64s>()
                    .read_unaligned()
            };
        }
        x
    }

    /// The last `len < S::F64_LANES` values of every stream, starting after `chunks` full
    /// vectors, with the unused lanes zero.
    ///
    /// # Safety
    /// `chunks * S::F64_LANES + len == n`.
    #[inline(always)]
    unsafe fn load_tail<S: Simd>(&self, simd: S, chunks: usize, len: usize) -> [S::f64s; N] {
        let mut x = [simd.splat_f64s(0.0); N];
        for (m, x) in x.iter_mut().enumerate() {
            // SAFETY: as in `load`: the range `chunks * step .. + len` lies inside the slice
            // (the caller's contract) or inside the broadcast buffer (`len < MAX_LANES`).
            let part =
                unsafe { slice::from_raw_parts(self.ptr[m].add(chunks * self.step[m]), len) };
            *x = simd.partial_load_f64s(part);
        }
        x
    }
}

/// Broadcast buffers for the [`Src::Splat`] streams of `ins`.
#[inline(always)]
fn splat_buffers<const N: usize>(ins: &[Src<'_>; N]) -> [[f64; MAX_LANES]; N] {
    let mut buffers = [[0.0; MAX_LANES]; N];
    for m in 0..N {
        if let Src::Splat(v) = ins[m] {
            buffers[m] = [v; MAX_LANES];
        }
    }
    buffers
}

/// Elementwise `out = f(out_or_zero, ins)` over whole vectors.
///
/// Each stream in `ins` must have `out.len()` values. With `READ_OUT` the closure's first
/// argument is the current content of `out` (for in-place kernels); without it, zero. In the
/// tail, lanes past the end hold zeros and their results are dropped.
#[inline(always)]
pub(super) fn map<S: Simd, const N: usize, const READ_OUT: bool>(
    simd: S,
    out: &mut [f64],
    ins: [Src<'_>; N],
    mut f: impl FnMut(S::f64s, [S::f64s; N]) -> S::f64s,
) {
    let n = out.len();
    let splats = splat_buffers(&ins);
    let cursors = Cursors::new::<S>(&ins, &splats, n);
    let zero = simd.splat_f64s(0.0);
    let (head, tail) = S::as_mut_simd_f64s(out);
    let chunks = head.len();
    for (chunk, o) in head.iter_mut().enumerate() {
        // SAFETY: `chunk < head.len() = n / S::F64_LANES`.
        let x = unsafe { cursors.load(simd, chunk) };
        let old = if READ_OUT { *o } else { zero };
        *o = f(old, x);
    }
    if !tail.is_empty() {
        // SAFETY: `chunks * S::F64_LANES + tail.len() == n`.
        let x = unsafe { cursors.load_tail(simd, chunks, tail.len()) };
        let old = if READ_OUT {
            simd.partial_load_f64s(tail)
        } else {
            zero
        };
        simd.partial_store_f64s(tail, f(old, x));
    }
}

/// A function of one vector with one or two results (a value, or a value and a derivative),
/// for [`map_fn`].
///
/// A trait rather than a closure because its bodies are large (vectorized elementary
/// functions): a closure is inlined at the compiler's discretion, and one left out of line is
/// compiled without the target features of its caller, so every SIMD operation in it becomes
/// a function call. `eval` is `#[inline(always)]` in every implementation.
pub(super) trait LaneFn: Copy {
    /// The results for the lanes of `x`.
    fn eval<S: Simd>(self, simd: S, x: S::f64s) -> (S::f64s, S::f64s);

    /// The second result alone (the derivative of a rule), with the same bits as `eval`'s:
    /// for a caller that does not read the value. Rules whose derivative does not need the
    /// value (`ln`, `ln_1p`) skip computing it.
    #[inline(always)]
    fn second<S: Simd>(self, simd: S, x: S::f64s) -> S::f64s {
        self.eval(simd, x).1
    }
}

/// `(out_a[i], out_b[i]) = f(x[i])` over whole vectors, or `out_a[i]` alone without `out_b`.
///
/// `out_a` (and `out_b`) must have `x.len()` values. In the tail, lanes past the end hold
/// zeros and their results are dropped.
#[inline(always)]
pub(super) fn map_fn<S: Simd, F: LaneFn>(
    simd: S,
    f: F,
    x: &[f64],
    out_a: &mut [f64],
    out_b: Option<&mut [f64]>,
) {
    let n = x.len();
    assert_eq!(out_a.len(), n, "kernel output length");
    let (head_x, tail_x) = S::as_simd_f64s(x);
    let (head_a, tail_a) = S::as_mut_simd_f64s(out_a);
    match out_b {
        Some(out_b) => {
            assert_eq!(out_b.len(), n, "kernel output length");
            let (head_b, tail_b) = S::as_mut_simd_f64s(out_b);
            for ((a, b), &x) in head_a.iter_mut().zip(head_b).zip(head_x) {
                (*a, *b) = f.eval(simd, x);
            }
            if !tail_x.is_empty() {
                let (a, b) = f.eval(simd, simd.partial_load_f64s(tail_x));
                simd.partial_store_f64s(tail_a, a);
                simd.partial_store_f64s(tail_b, b);
            }
        }
        None => {
            for (a, &x) in head_a.iter_mut().zip(head_x) {
                *a = f.eval(simd, x).0;
            }
            if !tail_x.is_empty() {
                let (a, _) = f.eval(simd, simd.partial_load_f64s(tail_x));
                simd.partial_store_f64s(tail_a, a);
            }
        }
    }
}

/// `(out_p[i], d) = f(x[i])` and `out_t[i] = d * t[i]` over whole vectors: [`map_fn`] for a
/// value and a derivative with one tangent row scaled in the same pass.
///
/// `t`, `out_p` and `out_t` must have `x.len()` values.
#[inline(always)]
pub(super) fn map_fn_tangent<S: Simd, F: LaneFn>(
    simd: S,
    f: F,
    x: &[f64],
    t: &[f64],
    out_p: &mut [f64],
    out_t: &mut [f64],
) {
    let n = x.len();
    assert!(
        t.len() == n && out_p.len() == n && out_t.len() == n,
        "kernel lengths"
    );
    let (head_x, tail_x) = S::as_simd_f64s(x);
    let (head_t, tail_t) = S::as_simd_f64s(t);
    let (head_p, tail_p) = S::as_mut_simd_f64s(out_p);
    let (head_o, tail_o) = S::as_mut_simd_f64s(out_t);
    for (((p, o), &x), &t) in head_p.iter_mut().zip(head_o).zip(head_x).zip(head_t) {
        let (v, d) = f.eval(simd, x);
        *p = v;
        *o = simd.mul_f64s(d, t);
    }
    if !tail_x.is_empty() {
        let (v, d) = f.eval(simd, simd.partial_load_f64s(tail_x));
        simd.partial_store_f64s(tail_p, v);
        let t = simd.partial_load_f64s(tail_t);
        simd.partial_store_f64s(tail_o, simd.mul_f64s(d, t));
    }
}

/// `sum over lanes and chunks of acc`, where each chunk of the `n`-element streams `ins` is
/// folded into an accumulator by `acc = f(acc, ins)`.
///
/// `f` must add something to `acc` that is zero when all inputs are zero: tail lanes past the
/// end are zero-filled. Four accumulators are kept so consecutive chunks do not wait on each
/// other; the order of summation therefore differs from a sequential loop.
#[inline(always)]
pub(super) fn sum_of<S: Simd, const N: usize>(
    simd: S,
    n: usize,
    ins: [Src<'_>; N],
    f: impl Fn(S::f64s, [S::f64s; N]) -> S::f64s,
) -> f64 {
    let splats = splat_buffers(&ins);
    let cursors = Cursors::new::<S>(&ins, &splats, n);
    let chunks = n / S::F64_LANES;
    let tail = n % S::F64_LANES;
    let mut acc = [simd.splat_f64s(0.0); 4];
    let mut chunk = 0;
    while chunk + 4 <= chunks {
        for (u, a) in acc.iter_mut().enumerate() {
            // SAFETY: `chunk + u < chunks = n / S::F64_LANES`.
            *a = f(*a, unsafe { cursors.load(simd, chunk + u) });
        }
        chunk += 4;
    }
    while chunk < chunks {
        // SAFETY: `chunk < chunks`.
        acc[0] = f(acc[0], unsafe { cursors.load(simd, chunk) });
        chunk += 1;
    }
    if tail > 0 {
        // SAFETY: `chunks * S::F64_LANES + tail == n`.
        acc[1] = f(acc[1], unsafe { cursors.load_tail(simd, chunks, tail) });
    }
    let total = simd.add_f64s(simd.add_f64s(acc[0], acc[1]), simd.add_f64s(acc[2], acc[3]));
    simd.reduce_sum_f64s(total)
}
