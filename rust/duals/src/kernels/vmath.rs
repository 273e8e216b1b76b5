//! Vectorized elementary functions: `exp`, `exp_m1`, `ln`, `ln_1p`, `sin`, `cos`, `sin_cos`
//! and `tanh` of whole SIMD vectors of `f64`, generic over [`pulp::Simd`] so that one body runs
//! at every [`Level`]. The rule-matched unary kernel ([`super::unary_rule`]) uses all but
//! `tanh`; every one is available on slices through [`math`] and [`sin_cos`].
//!
//! # Accuracy
//!
//! Every function is within one ulp of the correctly rounded result (measured: at most 0.52 to
//! 0.6 ulp, see `tests/vmath.rs`), at every level. The recipe is the same throughout:
//!
//! 1. an exact (Cody–Waite) argument reduction to a small interval, with the constant split
//!    into pieces whose products with the reduction multiple are exact;
//! 2. a truncated Taylor series on the small interval, with enough terms that the truncation
//!    error is below 2⁻⁵⁸ of the result (the coefficients are `1/n!` and `2/(2n+1)`, rounded
//!    to `f64`: no fitted constants);
//! 3. the few large terms of the result summed with error-free transforms ([`two_sum`],
//!    [`fast_two_sum`], [`two_prod_err`]), so that the result is rounded once, at the end, and
//!    the only other errors are roundings of terms that are small next to it.
//!
//! The vector levels fuse the polynomial's multiply-adds; the scalar level rounds them twice.
//! That changes results in the last bit at most: the error-free transforms are exact at every
//! level (with an FMA on the vector levels, Dekker's product on the scalar one).
//!
//! # Special values
//!
//! Each function has a fast domain (finite, normal, `|x|` below a reduction bound). Lanes
//! outside it (NaN, infinities, subnormals, overflow and underflow ranges, huge `sin` arguments)
//! are recomputed with the scalar function of the standard library, which the table of rules
//! ([`crate::rules`]) calls: so every special value is exactly what the rule gives. A few cases
//! inside the fast domain are settled by a `select` instead, each proved in a comment (tiny
//! arguments, where the correctly rounded result is known, and the signs of zeros).

use pulp::{bytemuck, Simd, WithSimd};

use super::dispatch::{run, Level};
use super::error::check_primal;
use super::lanes::{map_fn, LaneFn};
use super::KernelError;

// ---------------------------------------------------------------------------------------------
// Public slice functions (for tests, benchmarks and callers outside the kernels)
// ---------------------------------------------------------------------------------------------

/// An elementary function with a vectorized implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MathFn {
    /// `eˣ`
    Exp,
    /// `eˣ - 1`
    ExpM1,
    /// `ln x`
    Ln,
    /// `ln(1 + x)`
    Ln1p,
    /// `sin x`
    Sin,
    /// `cos x`
    Cos,
    /// `tanh x`
    Tanh,
}

impl MathFn {
    /// Every function.
    pub const ALL: [MathFn; 7] = [
        MathFn::Exp,
        MathFn::ExpM1,
        MathFn::Ln,
        MathFn::Ln1p,
        MathFn::Sin,
        MathFn::Cos,
        MathFn::Tanh,
    ];

    /// The name of the [`DualNum`](crate::DualNum) method (`"exp"`, `"ln_1p"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            MathFn::Exp => "exp",
            MathFn::ExpM1 => "exp_m1",
            MathFn::Ln => "ln",
            MathFn::Ln1p => "ln_1p",
            MathFn::Sin => "sin",
            MathFn::Cos => "cos",
            MathFn::Tanh => "tanh",
        }
    }

    /// The scalar function of the standard library: what the vector form agrees with to within
    /// an ulp, and what it computes lanes outside its fast domain with.
    pub fn scalar(self, x: f64) -> f64 {
        match self {
            MathFn::Exp => x.exp(),
            MathFn::ExpM1 => x.exp_m1(),
            MathFn::Ln => x.ln(),
            MathFn::Ln1p => x.ln_1p(),
            MathFn::Sin => x.sin(),
            MathFn::Cos => x.cos(),
            MathFn::Tanh => x.tanh(),
        }
    }
}

/// `out[i] = f(x[i])`, vectorized, at the best level of this CPU.
///
/// ```
/// use duals::kernels::{math, MathFn};
/// let x = [0.0, 1.0, -2.5];
/// let mut out = [0.0; 3];
/// math(MathFn::Exp, &x, &mut out).unwrap();
/// assert_eq!(out[0], 1.0);
/// assert!((out[1] - 1.0_f64.exp()).abs() <= f64::EPSILON * out[1]);
/// ```
///
/// # Errors
/// [`KernelError::PrimalLength`] if `out.len() != x.len()`.
pub fn math(f: MathFn, x: &[f64], out: &mut [f64]) -> Result<(), KernelError> {
    math_with_level(Level::best(), f, x, out)
}

/// [`math`] run with a given [`Level`].
///
/// # Errors
/// As [`math`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn math_with_level(
    level: Level,
    f: MathFn,
    x: &[f64],
    out: &mut [f64],
) -> Result<(), KernelError> {
    check_primal("out", out.len(), x.len())?;
    run(level, MathSlice { f, x, out })
}

/// `out_sin[i] = sin x[i]`, `out_cos[i] = cos x[i]` from one argument reduction, vectorized,
/// at the best level of this CPU.
///
/// # Errors
/// [`KernelError::PrimalLength`] if an output does not have `x.len()` values.
pub fn sin_cos(x: &[f64], out_sin: &mut [f64], out_cos: &mut [f64]) -> Result<(), KernelError> {
    sin_cos_with_level(Level::best(), x, out_sin, out_cos)
}

/// [`sin_cos`] run with a given [`Level`].
///
/// # Errors
/// As [`sin_cos`], and [`KernelError::LevelUnavailable`] if this CPU cannot run `level`.
pub fn sin_cos_with_level(
    level: Level,
    x: &[f64],
    out_sin: &mut [f64],
    out_cos: &mut [f64],
) -> Result<(), KernelError> {
    check_primal("out_sin", out_sin.len(), x.len())?;
    check_primal("out_cos", out_cos.len(), x.len())?;
    run(
        level,
        SinCosSlice {
            x,
            out_sin,
            out_cos,
        },
    )
}

struct MathSlice<'a> {
    f: MathFn,
    x: &'a [f64],
    out: &'a mut [f64],
}

impl WithSimd for MathSlice<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let MathSlice { f, x, out } = self;
        match f {
            MathFn::Exp => map_fn(simd, Lane(MathFn::Exp), x, out, None),
            MathFn::ExpM1 => map_fn(simd, Lane(MathFn::ExpM1), x, out, None),
            MathFn::Ln => map_fn(simd, Lane(MathFn::Ln), x, out, None),
            MathFn::Ln1p => map_fn(simd, Lane(MathFn::Ln1p), x, out, None),
            MathFn::Sin => map_fn(simd, Lane(MathFn::Sin), x, out, None),
            MathFn::Cos => map_fn(simd, Lane(MathFn::Cos), x, out, None),
            MathFn::Tanh => map_fn(simd, Lane(MathFn::Tanh), x, out, None),
        }
    }
}

/// One [`MathFn`] as a [`LaneFn`] (`sin` with `cos` as its second result, `cos` with `sin`).
/// The match is on a constant at each call site of [`map_fn`] above, so it folds away.
#[derive(Clone, Copy)]
struct Lane(MathFn);

impl LaneFn for Lane {
    #[inline(always)]
    fn eval<S: Simd>(self, simd: S, x: S::f64s) -> (S::f64s, S::f64s) {
        let zero = simd.splat_f64s(0.0);
        match self.0 {
            MathFn::Exp => (exp(simd, x), zero),
            MathFn::ExpM1 => (exp_m1(simd, x), zero),
            MathFn::Ln => (ln(simd, x), zero),
            MathFn::Ln1p => (ln_1p(simd, x).0, zero),
            MathFn::Sin => sin_cos_v(simd, x),
            MathFn::Cos => {
                let (s, c) = sin_cos_v(simd, x);
                (c, s)
            }
            MathFn::Tanh => (tanh(simd, x), zero),
        }
    }
}

struct SinCosSlice<'a> {
    x: &'a [f64],
    out_sin: &'a mut [f64],
    out_cos: &'a mut [f64],
}

impl WithSimd for SinCosSlice<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let SinCosSlice {
            x,
            out_sin,
            out_cos,
        } = self;
        map_fn(simd, Lane(MathFn::Sin), x, out_sin, Some(out_cos));
    }
}

// ---------------------------------------------------------------------------------------------
// Lane helpers
// ---------------------------------------------------------------------------------------------

/// Short names for the lane operations of `S`.
#[derive(Clone, Copy)]
struct Ops<S>(S);

impl<S: Simd> Ops<S> {
    #[inline(always)]
    fn k(self, v: f64) -> S::f64s {
        self.0.splat_f64s(v)
    }
    #[inline(always)]
    fn add(self, a: S::f64s, b: S::f64s) -> S::f64s {
        self.0.add_f64s(a, b)
    }
    #[inline(always)]
    fn sub(self, a: S::f64s, b: S::f64s) -> S::f64s {
        self.0.sub_f64s(a, b)
    }
    #[inline(always)]
    fn mul(self, a: S::f64s, b: S::f64s) -> S::f64s {
        self.0.mul_f64s(a, b)
    }
    #[inline(always)]
    fn div(self, a: S::f64s, b: S::f64s) -> S::f64s {
        self.0.div_f64s(a, b)
    }
    #[inline(always)]
    fn neg(self, a: S::f64s) -> S::f64s {
        self.0.neg_f64s(a)
    }
    #[inline(always)]
    fn abs(self, a: S::f64s) -> S::f64s {
        self.0.abs_f64s(a)
    }
    /// `a * b + c`, fused where the level has an FMA (for polynomials, where either is fine).
    #[inline(always)]
    fn mla(self, a: S::f64s, b: S::f64s, c: S::f64s) -> S::f64s {
        self.0.mul_add_e_f64s(a, b, c)
    }
    #[inline(always)]
    fn select(self, m: S::m64s, a: S::f64s, b: S::f64s) -> S::f64s {
        self.0.select_f64s(m, a, b)
    }
    #[inline(always)]
    fn lt(self, a: S::f64s, b: S::f64s) -> S::m64s {
        self.0.less_than_f64s(a, b)
    }
    #[inline(always)]
    fn le(self, a: S::f64s, b: S::f64s) -> S::m64s {
        self.0.less_than_or_equal_f64s(a, b)
    }
    #[inline(always)]
    fn and(self, a: S::m64s, b: S::m64s) -> S::m64s {
        self.0.and_m64s(a, b)
    }
    #[inline(always)]
    fn not(self, a: S::m64s) -> S::m64s {
        self.0.not_m64s(a)
    }
    #[inline(always)]
    fn bits(self, a: S::f64s) -> S::u64s {
        self.0.transmute_u64s_f64s(a)
    }
    #[inline(always)]
    fn float(self, a: S::u64s) -> S::f64s {
        self.0.transmute_f64s_u64s(a)
    }
    #[inline(always)]
    fn ku(self, v: u64) -> S::u64s {
        self.0.splat_u64s(v)
    }

    /// `c[0] + c[1] x + c[2] x² + ...`, by Estrin's scheme: pairs `c[2i] + c[2i+1] x`, then
    /// pairs of those in `x²`, in `x⁴`, ...: a dependency chain of about `2 log₂ N` operations
    /// instead of Horner's `N - 1`, so that the independent lanes of consecutive vectors
    /// overlap. (The terms are small next to the results they correct, so the different
    /// order of rounding is far below their ulp.)
    #[inline(always)]
    fn poly<const N: usize>(self, x: S::f64s, c: &[f64; N]) -> S::f64s {
        let mut terms = [self.k(0.0); N];
        let mut len = 0;
        for pair in c.chunks(2) {
            terms[len] = match *pair {
                [a, b] => self.mla(self.k(b), x, self.k(a)),
                _ => self.k(pair[0]),
            };
            len += 1;
        }
        let mut power = x;
        while len > 1 {
            power = self.mul(power, power);
            let mut next = 0;
            for i in (0..len).step_by(2) {
                terms[next] = if i + 1 < len {
                    self.mla(terms[i + 1], power, terms[i])
                } else {
                    terms[i]
                };
                next += 1;
            }
            len = next;
        }
        terms[0]
    }
}

/// Each 64-bit lane shifted left by `SH` bits.
///
/// pulp's portable trait has no 64-bit shifts; this loop over the lanes of one register is
/// turned into a single vector shift (`vpsllq`) at the vector levels.
#[inline(always)]
fn shl<S: Simd, const SH: u32>(x: S::u64s) -> S::u64s {
    let mut x = x;
    for lane in bytemuck::cast_slice_mut::<S::u64s, u64>(core::slice::from_mut(&mut x)) {
        *lane <<= SH;
    }
    x
}

/// Each 64-bit lane shifted right by `SH` bits (logical); see [`shl`].
#[inline(always)]
fn shr<S: Simd, const SH: u32>(x: S::u64s) -> S::u64s {
    let mut x = x;
    for lane in bytemuck::cast_slice_mut::<S::u64s, u64>(core::slice::from_mut(&mut x)) {
        *lane >>= SH;
    }
    x
}

/// Whether any lane of `m` is set.
///
/// A mask is either a full-width vector (AVX2: its 64-bit lanes are OR-ed, which compiles to
/// a `vptest`) or narrower (a bit mask on AVX-512, one `kortest`; a `bool` on the scalar
/// level): tested as bytes.
#[inline(always)]
fn any<S: Simd>(m: S::m64s) -> bool {
    if core::mem::size_of::<S::m64s>() == core::mem::size_of::<S::u64s>() {
        let lanes: &[u64] = bytemuck::cast_slice(core::slice::from_ref(&m));
        lanes.iter().fold(0, |acc, &l| acc | l) != 0
    } else {
        bytemuck::bytes_of(&m).iter().any(|&b| b != 0)
    }
}

/// Widest vector of any level, in `f64` lanes.
const MAX_LANES: usize = 8;

/// `f(x)` for the lanes where `outside` is set, `fast` elsewhere: the scalar fallback.
#[inline(always)]
fn patch<S: Simd>(
    simd: S,
    outside: S::m64s,
    x: S::f64s,
    fast: S::f64s,
    f: fn(f64) -> f64,
) -> S::f64s {
    if !any::<S>(outside) {
        return fast;
    }
    let flag = simd.select_f64s(outside, simd.splat_f64s(1.0), simd.splat_f64s(0.0));
    let mut out = fast;
    patch_lanes(
        bytemuck::cast_slice(core::slice::from_ref(&x)),
        bytemuck::cast_slice(core::slice::from_ref(&flag)),
        bytemuck::cast_slice_mut(core::slice::from_mut(&mut out)),
        f,
    );
    out
}

/// The lanes of [`patch`], out of line: rare, and scalar calls anyway.
#[cold]
#[inline(never)]
fn patch_lanes(x: &[f64], flag: &[f64], out: &mut [f64], f: fn(f64) -> f64) {
    debug_assert!(x.len() <= MAX_LANES);
    for ((o, &x), &flag) in out.iter_mut().zip(x).zip(flag) {
        if flag != 0.0 {
            *o = f(x);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Error-free transforms
// ---------------------------------------------------------------------------------------------

/// `(s, e)` with `s = fl(a + b)` and `s + e = a + b` exactly, for any `a`, `b` (Knuth's
/// TwoSum: six additions, no branch, no condition on the magnitudes).
#[inline(always)]
fn two_sum<S: Simd>(o: Ops<S>, a: S::f64s, b: S::f64s) -> (S::f64s, S::f64s) {
    let s = o.add(a, b);
    let bv = o.sub(s, a);
    let av = o.sub(s, bv);
    (s, o.add(o.sub(a, av), o.sub(b, bv)))
}

/// `(s, e)` with `s = fl(a + b)` and `s + e = a + b` exactly, when `a = 0` or the exponent of
/// `a` is at least that of `b` (Dekker's Fast2Sum: three additions).
#[inline(always)]
fn fast_two_sum<S: Simd>(o: Ops<S>, a: S::f64s, b: S::f64s) -> (S::f64s, S::f64s) {
    let s = o.add(a, b);
    (s, o.sub(b, o.sub(s, a)))
}

/// `a * b - p` exactly, where `p = fl(a * b)` (no overflow or underflow): one FMA on the
/// vector levels; on the scalar level, where an FMA is a library call, Dekker's product with
/// Veltkamp's splitting (each factor cut into two 26-bit halves whose products are exact).
#[inline(always)]
fn two_prod_err<S: Simd>(o: Ops<S>, a: S::f64s, b: S::f64s, p: S::f64s) -> S::f64s {
    if S::IS_SCALAR {
        let (ah, al) = veltkamp_split(o, a);
        let (bh, bl) = veltkamp_split(o, b);
        let t = o.add(o.sub(o.mul(ah, bh), p), o.mul(ah, bl));
        o.add(o.add(t, o.mul(al, bh)), o.mul(al, bl))
    } else {
        o.0.mul_add_f64s(a, b, o.neg(p))
    }
}

/// `v = hi + lo` with `hi` the high 26 bits of `v` (Veltkamp: `c = (2²⁷ + 1) v`,
/// `hi = c - (c - v)`), so that products of halves are exact.
#[inline(always)]
fn veltkamp_split<S: Simd>(o: Ops<S>, v: S::f64s) -> (S::f64s, S::f64s) {
    let c = o.mul(o.k(134_217_729.0), v);
    let hi = o.sub(c, o.sub(c, v));
    (hi, o.sub(v, hi))
}

// ---------------------------------------------------------------------------------------------
// Exponential: exp, exp_m1
// ---------------------------------------------------------------------------------------------

/// `1.5 · 2⁵²`: adding it to `|y| < 2⁵¹` rounds `y` to an integer `k` (to nearest), which then
/// sits in the low bits of the sum's mantissa (as `2⁵¹ + k`, two's complement in the low bits).
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// `1/ln 2`, rounded.
const LOG2_E: f64 = core::f64::consts::LOG2_E;
/// `ln 2` rounded to 42 significant bits (`0x1.62e42fefa38p-1`): `k · LN2_HI` is exact for
/// `|k| < 2¹¹`.
const LN2_HI: f64 = 0.693_147_180_559_890_3;
/// `ln 2 - LN2_HI`, rounded (`0x1.ef35793c7673p-45`); the pair is `ln 2` to within 2⁻¹⁰².
const LN2_LO: f64 = 5.497_923_018_708_371e-14;
/// `1/n!` for `n = 3 ..= 14`: `(eʳ - 1 - r - r²/2)/r³ = Σ rⁿ⁻³/n!`. For `|r| <= ln2/2` the
/// first omitted term, `r¹⁵/15!`, is below 2⁻⁶⁰.
const EXP_TAYLOR_3: [f64; 12] = [
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
    1.0 / 87_178_291_200.0,
];

/// `x = k ln2 + r + r_err` with `k` an integer, `|r| <= ln2/2 + tiny` and `r + r_err` exact to
/// about 2⁻¹⁰⁰ (for `|x| < 2¹⁰ ln2`); `k` as the bits of `k + SHIFT`.
struct ExpReduced<S: Simd> {
    k_bits: S::u64s,
    r: S::f64s,
    r_err: S::f64s,
}

#[inline(always)]
fn exp_reduce<S: Simd>(o: Ops<S>, x: S::f64s) -> ExpReduced<S> {
    let shifted = o.mla(x, o.k(LOG2_E), o.k(SHIFT));
    let k = o.sub(shifted, o.k(SHIFT));
    // Cody–Waite: `k · LN2_HI` is exact (|k| < 2¹¹, LN2_HI has 42 bits), and so is
    // `x - k · LN2_HI` (Sterbenz: for k != 0 the two are within a factor 2 of each other).
    let r_hi = o.sub(x, o.mul(k, o.k(LN2_HI)));
    let r_lo = o.mul(k, o.k(LN2_LO));
    let (r, r_err) = two_sum(o, r_hi, o.neg(r_lo));
    ExpReduced {
        k_bits: o.bits(shifted),
        r,
        r_err,
    }
}

/// `2ᵏ` for an integer `-1022 <= k <= 1023` given as the bits of `k + SHIFT`: the biased
/// exponent `k + 1023` moved into the exponent field (the bits of `SHIFT` above the low 12
/// are shifted out).
#[inline(always)]
fn exp2i<S: Simd>(o: Ops<S>, k_bits: S::u64s) -> S::f64s {
    o.float(shl::<S, 52>(o.0.add_u64s(k_bits, o.ku(1023))))
}

/// `eʳ⁺ʳᵉʳʳ - 1 = r + r²/2 + (r³ Σ rⁿ⁻³/n! + r_err (1 + r))` for `|r| <= ln2/2 + tiny`, as
/// three parts: `r` and `p = fl(r²/2)` (the large ones, exact doubles) and the rest, which
/// holds the product error of `p` and is below `r²/8`.
#[inline(always)]
fn exp_m1_parts<S: Simd>(o: Ops<S>, r: S::f64s, r_err: S::f64s) -> [S::f64s; 3] {
    let hr = o.mul(o.k(0.5), r);
    let p = o.mul(hr, r);
    let p_err = two_prod_err(o, hr, r, p);
    let r3 = o.mul(o.mul(r, r), r);
    let rest = o.mla(
        r3,
        o.poly(r, &EXP_TAYLOR_3),
        o.add(p_err, o.mla(r_err, r, r_err)),
    );
    [r, p, rest]
}

/// `eʳ⁺ʳᵉʳʳ = 1 + r + p + rest` (see [`exp_m1_parts`]) as a pair: `1 + r + p` summed exactly
/// (Fast2Sum twice: `|r| < 0.35`, `p = r²/2 < 0.061`), `rest` (below 0.008) added to the low
/// part.
#[inline(always)]
fn exp_pair<S: Simd>(o: Ops<S>, [r, p, rest]: [S::f64s; 3]) -> (S::f64s, S::f64s) {
    let (h1, l1) = fast_two_sum(o, o.k(1.0), r);
    let (h2, l2) = fast_two_sum(o, h1, p);
    (h2, o.add(o.add(l1, l2), rest))
}

/// `eˣ` for every lane.
///
/// Fast domain `|x| <= 708` (results normal, `k` in `-1021 ..= 1021`). With `x = k ln2 + r +
/// r_err`: `eˣ = 2ᵏ eʳ⁺ʳᵉʳʳ` with [`exp_pair`], so the sum is rounded once; the scaling by
/// `2ᵏ` is exact.
#[inline(always)]
pub(super) fn exp<S: Simd>(simd: S, x: S::f64s) -> S::f64s {
    let o = Ops(simd);
    let ExpReduced { k_bits, r, r_err } = exp_reduce(o, x);
    let (h, l) = exp_pair(o, exp_m1_parts(o, r, r_err));
    let fast = o.mul(o.add(h, l), exp2i(o, k_bits));
    let outside = o.not(o.le(o.abs(x), o.k(708.0)));
    patch(simd, outside, x, fast, f64::exp)
}

/// `eˣ - 1` as a pair for `k` given by `k_bits` and `m = eʳ⁺ʳᵉʳʳ - 1` by its
/// [`exp_m1_parts`]: `2ᵏ m + (2ᵏ - 1)`, where `r + p` is summed exactly (Fast2Sum) into
/// `(h, l)`, and `2ᵏ h` and `2ᵏ - 1` (itself a pair) are exact and summed with TwoSum, so that
/// only the low part is rounded.
#[inline(always)]
fn exp_m1_pair<S: Simd>(
    o: Ops<S>,
    k_bits: S::u64s,
    [r, p, rest]: [S::f64s; 3],
) -> (S::f64s, S::f64s) {
    // |p| = r²/2 <= |r|/5 (or both zero): Fast2Sum applies.
    let (h, l) = fast_two_sum(o, r, p);
    let scale = exp2i(o, k_bits);
    let (b, b_err) = two_sum(o, scale, o.k(-1.0));
    let (s, t) = two_sum(o, o.mul(scale, h), b);
    (s, o.add(t, o.mla(scale, o.add(l, rest), b_err)))
}

/// `eˣ - 1` for every lane, with [`exp_m1_pair`] and the pair rounded once.
///
/// Fast domain `-40 <= x <= 708`; below -40 the result is -1 (`eˣ < 2⁻⁵⁷`, less than half an
/// ulp of 1); for `|x| < 2⁻⁵⁴` it is `x` (`x + x²/2` rounds to `x`), which also keeps the sign
/// of `-0`.
#[inline(always)]
pub(super) fn exp_m1<S: Simd>(simd: S, x: S::f64s) -> S::f64s {
    let o = Ops(simd);
    let ExpReduced { k_bits, r, r_err } = exp_reduce(o, x);
    let (h, l) = exp_m1_pair(o, k_bits, exp_m1_parts(o, r, r_err));
    let fast = o.add(h, l);
    let fast = o.select(o.lt(x, o.k(-40.0)), o.k(-1.0), fast);
    let fast = o.select(o.lt(o.abs(x), o.k(TINY_54)), x, fast);
    let outside = o.not(o.le(x, o.k(708.0)));
    patch(simd, outside, x, fast, f64::exp_m1)
}

/// `2⁻⁵⁴`: below it, `ln(1+x)`, `eˣ - 1` and `tanh x` round to `x`.
const TINY_54: f64 = 5.551_115_123_125_783e-17;

// ---------------------------------------------------------------------------------------------
// Logarithm: ln, ln_1p
// ---------------------------------------------------------------------------------------------

/// Bits of `√½` rounded (`0x3fe6a09e667f3bcd`), the lower end of the reduced mantissa.
const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;
/// Bits of `1.0`.
const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;
/// `2/(2n+1)` for `n = 1 ..= 10`: `(ln((1+s)/(1-s)) - 2s)/s = Σ 2 s²ⁿ/(2n+1)`, a series in
/// `z = s²`. For `|s| <= 3 - 2√2` (`z < 0.0295`) the first omitted term is below 2⁻⁵⁸ of the
/// result.
const LN_TAYLOR: [f64; 10] = [
    2.0 / 3.0,
    2.0 / 5.0,
    2.0 / 7.0,
    2.0 / 9.0,
    2.0 / 11.0,
    2.0 / 13.0,
    2.0 / 15.0,
    2.0 / 17.0,
    2.0 / 19.0,
    2.0 / 21.0,
];

/// `ln(u + c)` for `u` positive, normal and finite and `|c| <= ulp(u)/2`, given `c/u`; for
/// `ln(1 + x)` (`ln_1p`), `x` itself: see below.
///
/// `u = 2ᵉ m` with `m` in `[√½, √2)`: adding `1.0 - √½` to the bits of `u` carries into the
/// exponent field exactly when the mantissa is at least `√2`'s, so the exponent field of the
/// sum is `e + 1023` and its mantissa field plus the bits of `√½` is `m`. Then `f = m - 1` is
/// exact (Sterbenz) and with `s = f/(2 + f)` (so `1 + f = (1+s)/(1-s)`):
///
/// `ln(1 + f) = 2 atanh s = f - f²/2 + s (f²/2 + R(s²))`, `R(z) = Σ 2zⁿ/(2n+1)`,
///
/// (because `2s = f - s f` and `s f = f²/2 - s f²/2`). The large terms `e·LN2_HI`, `f` and
/// `-f²/2` are exact doubles (the last with its product error) and are summed with Fast2Sum;
/// `s (f²/2 + R)` (below 0.02), `e·LN2_LO` and `c/u` go into the low part.
///
/// For `ln_1p`, `u + c = 1 + x`: when `e = 0`, `f = x` exactly and `c` is not needed (this
/// matters for tiny `x`, where `c/u` is a large part of the result); otherwise `|c/u| < 2⁻⁵³`
/// next to a result above 0.34.
#[inline(always)]
fn ln_core<S: Simd>(
    o: Ops<S>,
    u: S::f64s,
    c_over_u: S::f64s,
    ln_1p_of: Option<S::f64s>,
) -> S::f64s {
    let t = o.0.add_u64s(o.bits(u), o.ku(ONE_BITS - SQRT_HALF_BITS));
    let biased = shr::<S, 52>(t);
    let m = o.float(o.0.add_u64s(
        o.0.and_u64s(t, o.ku(0x000f_ffff_ffff_ffff)),
        o.ku(SQRT_HALF_BITS),
    ));
    // The exponent as a float: `biased` (< 2¹¹) placed in the mantissa of 2⁵².
    let e = o.sub(
        o.float(o.0.or_u64s(biased, o.ku(0x4330_0000_0000_0000))),
        o.k(4_503_599_627_370_496.0 + 1023.0),
    );
    let mut f = o.sub(m, o.k(1.0));
    let mut c_over_u = c_over_u;
    if let Some(x) = ln_1p_of {
        let e0 = o.0.equal_f64s(e, o.k(0.0));
        f = o.select(e0, x, f);
        c_over_u = o.select(e0, o.k(0.0), c_over_u);
    }
    let s = o.div(f, o.add(o.k(2.0), f));
    let z = o.mul(s, s);
    let r = o.mul(z, o.poly(z, &LN_TAYLOR));
    let hf = o.mul(o.k(0.5), f);
    let hfsq = o.mul(hf, f);
    let hfsq_err = two_prod_err(o, hf, f, hfsq);
    let corr = o.mul(s, o.add(hfsq, r));
    // e·LN2_HI is exact (|e| < 2¹¹); |e·LN2_HI| >= ln 2 > |f| unless e = 0: Fast2Sum applies,
    // and again with -f²/2, which is below a quarter of |e·LN2_HI + f|.
    let (h1, l1) = fast_two_sum(o, o.mul(e, o.k(LN2_HI)), f);
    let (h2, l2) = fast_two_sum(o, h1, o.neg(hfsq));
    let low = o.add(o.sub(corr, hfsq_err), o.mla(e, o.k(LN2_LO), c_over_u));
    o.add(h2, o.add(o.add(l1, l2), low))
}

/// `ln x` for every lane. Fast domain: `x` positive, normal and finite.
#[inline(always)]
pub(super) fn ln<S: Simd>(simd: S, x: S::f64s) -> S::f64s {
    let o = Ops(simd);
    let fast = ln_core(o, x, o.k(0.0), None);
    let inside = o.and(o.le(o.k(f64::MIN_POSITIVE), x), o.le(x, o.k(f64::MAX)));
    patch(simd, o.not(inside), x, fast, f64::ln)
}

/// `(ln(1 + x), 1/(1 + x))` for every lane; the second is `1/fl(1 + x)`, as the rule
/// [`ln_1p`](crate::rules::ln_1p) computes its derivative.
///
/// `1 + x = u + c` exactly (TwoSum), then `ln(u + c) = ln u + c/u` (the next term, `(c/u)²/2`,
/// is below 2⁻¹⁰⁶), with [`ln_core`]. Fast domain `-1 < x < inf`; `u` is then at least 2⁻⁵³,
/// normal. For `|x| < 2⁻⁵⁴` the result is `x` (`x - x²/2` rounds to `x`), which also keeps
/// `-0`.
#[inline(always)]
pub(super) fn ln_1p<S: Simd>(simd: S, x: S::f64s) -> (S::f64s, S::f64s) {
    let o = Ops(simd);
    let (u, c) = two_sum(o, o.k(1.0), x);
    let inv = o.div(o.k(1.0), u);
    let fast = ln_core(o, u, o.mul(c, inv), Some(x));
    let fast = o.select(o.lt(o.abs(x), o.k(TINY_54)), x, fast);
    let inside = o.and(o.lt(o.k(-1.0), x), o.le(x, o.k(f64::MAX)));
    (patch(simd, o.not(inside), x, fast, f64::ln_1p), inv)
}

/// The second result of [`ln_1p`] alone: `1/(1 + x)` with `1 + x` rounded, the same bits.
#[inline(always)]
pub(super) fn ln_1p_derivative<S: Simd>(simd: S, x: S::f64s) -> S::f64s {
    let o = Ops(simd);
    o.div(o.k(1.0), o.add(o.k(1.0), x))
}

// ---------------------------------------------------------------------------------------------
// Trigonometric: sin, cos
// ---------------------------------------------------------------------------------------------

/// `2/π`, rounded.
const FRAC_2_PI: f64 = core::f64::consts::FRAC_2_PI;
/// `π/2 = P1 + P2 + P3 + P4` to within 2⁻¹⁵⁹: `P1`, `P2`, `P3` rounded to 33 significant
/// bits (`0x1.921fb544p+0`, `0x1.0b4611a6p-34`, `0x1.3198a2ep-69`), so `k · Pi` is exact for
/// `|k| < 2²⁰`; `P4` the rest, rounded (`0x1.b839a252049c1p-104`).
const PIO2_1: f64 = 1.570_796_326_734_125_6;
const PIO2_2: f64 = 6.077_100_506_303_966e-11;
const PIO2_3: f64 = 2.022_266_248_711_166_5e-21;
const PIO2_4: f64 = 8.478_427_660_368_9e-32;
/// `π/2 = C1 + C2 + C3` to within 2⁻¹⁶³: each the rounding of what is left
/// (`0x1.921fb54442d18p+0`, `0x1.1a62633145c07p-54`, `-0x1.f1976b7ed8fbcp-110`).
const PIO2_C1: f64 = core::f64::consts::FRAC_PI_2;
const PIO2_C2: f64 = 6.123_233_995_736_766e-17;
const PIO2_C3: f64 = -1.497_384_904_859_169_8e-33;
/// Largest `|x|` reduced here: `|k| <= 2²⁰ · 2/π < 2²⁰`. Beyond, the scalar function.
const TRIG_MAX: f64 = 1_048_576.0;
/// Below `2⁻²⁷`, `sin x` rounds to `x` (`x³/6` is below half an ulp of `x`) and `cos x` to 1.
const TRIG_TINY: f64 = 7.450_580_596_923_828e-9;
/// `-1/6` as a pair: `SIN_C3 + SIN_C3_LO`, to within 2⁻¹⁰⁸.
const SIN_C3: f64 = -1.0 / 6.0;
const SIN_C3_LO: f64 = -9.251_858_538_542_97e-18;
/// `(-1)ⁿ/(2n+5)!` for `n = 0 ..= 7`: `(sin r - r + r³/6)/r⁵ = Σ (-1)ⁿ r²ⁿ/(2n+5)!`. For
/// `|r| <= π/4 + tiny` the first omitted term is below 2⁻⁶².
const SIN_TAYLOR_5: [f64; 8] = [
    1.0 / 120.0,
    -1.0 / 5040.0,
    1.0 / 362_880.0,
    -1.0 / 39_916_800.0,
    1.0 / 6_227_020_800.0,
    -1.0 / 1_307_674_368_000.0,
    1.0 / 355_687_428_096_000.0,
    -1.0 / 121_645_100_408_832_000.0,
];
/// `(-1)ⁿ/(2n+4)!` for `n = 0 ..= 8`: `(cos r - 1 + r²/2)/r⁴ = Σ (-1)ⁿ r²ⁿ/(2n+4)!`. For
/// `|r| <= π/4 + tiny` the first omitted term is below 2⁻⁶⁷.
const COS_TAYLOR: [f64; 9] = [
    1.0 / 24.0,
    -1.0 / 720.0,
    1.0 / 40320.0,
    -1.0 / 3_628_800.0,
    1.0 / 479_001_600.0,
    -1.0 / 87_178_291_200.0,
    1.0 / 20_922_789_888_000.0,
    -1.0 / 6_402_373_705_728_000.0,
    1.0 / 2_432_902_008_176_640_000.0,
];

/// `r = x - k π/2` as a pair `(h, l)`, `|l| <= ulp(h)/2`, to about 2⁻¹²⁰ absolute, for an
/// integer `|k| < 2²⁰` nearest to `x · 2/π`. The closest a double below 2²⁰ comes to a
/// multiple of π/2 is about 2⁻⁶¹, so `r` keeps at least 2⁻⁵⁹ relative accuracy.
///
/// With an FMA (the vector levels): `x - k·C1` is exact in one FMA (`C1 = π/2` rounded: both
/// terms are multiples of `2⁻⁵³` for the `x` that reach it with `k != 0`, and the difference
/// is below 1, so it fits in 53 bits); `k·C2` is taken exactly as a product and its error, and
/// the difference accumulated with TwoSum. Without (the scalar level): Cody–Waite with
/// `π/2 = P1 + P2 + P3 + P4`, where `k·P1`, `k·P2`, `k·P3` are exact and `x - k·P1` is exact
/// (Sterbenz), the differences accumulated with TwoSum.
#[inline(always)]
fn reduce_pio2<S: Simd>(o: Ops<S>, x: S::f64s, k: S::f64s) -> (S::f64s, S::f64s) {
    if S::IS_SCALAR {
        let a = o.sub(x, o.mul(k, o.k(PIO2_1)));
        let (s1, e1) = two_sum(o, a, o.neg(o.mul(k, o.k(PIO2_2))));
        let (s2, e2) = two_sum(o, s1, o.neg(o.mul(k, o.k(PIO2_3))));
        let lo = o.sub(o.add(e1, e2), o.mul(k, o.k(PIO2_4)));
        two_sum(o, s2, lo)
    } else {
        let r1 = o.0.mul_add_f64s(o.neg(k), o.k(PIO2_C1), x);
        let p = o.mul(k, o.k(PIO2_C2));
        let p_err = two_prod_err(o, k, o.k(PIO2_C2), p);
        let (s, e) = two_sum(o, r1, o.neg(p));
        // |lo| is at most ulp(s)/2 + 2⁻⁸⁵, far below |s| (at least 2⁻⁶² unless x = 0, where
        // everything is 0): Fast2Sum applies.
        let lo = o.sub(e, o.mla(k, o.k(PIO2_C3), p_err));
        fast_two_sum(o, s, lo)
    }
}

/// `(sin x, cos x)` for every lane, from one argument reduction.
///
/// Reduction: `k` = nearest integer to `x · 2/π`, `r = x - k π/2` as a pair `(h, l)` by
/// [`reduce_pio2`].
///
/// On `|r| <= π/4`, with `z = h²` (and its exact error `z_err`):
/// - `sin r = h - h³/6 + (h⁵ S(z) + l (1 - z/2))`, with `h³ = h·z` plus its product error and
///   `z_err`, and `h - h³/6` summed exactly (Fast2Sum; `-h³/6` with its product error and that
///   of `-1/6`), so that only terms below `h⁵/120` are rounded before the end;
/// - `cos r = (1 - z/2) + (z² C(z) - z_err/2 - h l)`, `1 - z/2` exact as a pair (Fast2Sum).
///
/// The quadrant `k mod 4`, read from the low bits of `k + SHIFT`, swaps and negates the two.
/// Fast domain `|x| <= 2²⁰`.
#[inline(always)]
pub(super) fn sin_cos_v<S: Simd>(simd: S, x: S::f64s) -> (S::f64s, S::f64s) {
    let o = Ops(simd);
    let shifted = o.mla(x, o.k(FRAC_2_PI), o.k(SHIFT));
    let k = o.sub(shifted, o.k(SHIFT));
    let (h, l) = reduce_pio2(o, x, k);

    let z = o.mul(h, h);
    let z_err = two_prod_err(o, h, h, z);
    let hz = o.mul(o.k(0.5), z);

    // sin r
    let h3 = o.mul(h, z);
    let h3_err = o.mla(h, z_err, two_prod_err(o, h, z, h3));
    let t3 = o.mul(h3, o.k(SIN_C3));
    let t3_err = o.add(
        two_prod_err(o, h3, o.k(SIN_C3), t3),
        o.mla(h3, o.k(SIN_C3_LO), o.mul(h3_err, o.k(SIN_C3))),
    );
    let h5_s = o.mul(o.mul(h3, z), o.poly(z, &SIN_TAYLOR_5));
    let (sh, sl) = fast_two_sum(o, h, t3);
    let sin_tail = o.add(sl, o.add(t3_err, o.mla(l, o.sub(o.k(1.0), hz), h5_s)));
    let sin_r = o.add(sh, sin_tail);

    // cos r
    let (w, w_err) = fast_two_sum(o, o.k(1.0), o.neg(hz));
    let cos_tail = o.sub(
        o.mla(o.mul(z, z), o.poly(z, &COS_TAYLOR), w_err),
        o.mla(o.k(0.5), z_err, o.mul(h, l)),
    );
    let cos_r = o.add(w, cos_tail);

    // Quadrant: bit 0 of k swaps (sin, cos) -> (cos, -sin), bit 1 negates both.
    let q = o.bits(shifted);
    let one = o.ku(1);
    let two = o.ku(2);
    let odd = simd.equal_u64s(simd.and_u64s(q, one), one);
    let flip = simd.equal_u64s(simd.and_u64s(q, two), two);
    let sign = o.select(flip, o.k(-0.0), o.k(0.0));
    let s = simd.xor_f64s(o.select(odd, cos_r, sin_r), sign);
    let c = simd.xor_f64s(o.select(odd, o.neg(sin_r), cos_r), sign);

    let tiny = o.lt(o.abs(x), o.k(TRIG_TINY));
    let s = o.select(tiny, x, s);
    let c = o.select(tiny, o.k(1.0), c);
    let outside = o.not(o.le(o.abs(x), o.k(TRIG_MAX)));
    (
        patch(simd, outside, x, s, f64::sin),
        patch(simd, outside, x, c, f64::cos),
    )
}

// ---------------------------------------------------------------------------------------------
// Hyperbolic: tanh
// ---------------------------------------------------------------------------------------------

/// Beyond this `|x|`, `tanh x` rounds to `±1` (`1 - tanh 22 < 2⁻⁶²` already); the reduction
/// of `e⁻²ˣ` stays in the normal range up to it.
const TANH_MAX: f64 = 350.0;

/// `tanh a` for `0 <= a <= TANH_MAX`: with `m = e⁻²ᵃ - 1` as a pair (the [`exp_m1_pair`]
/// recipe), `tanh a = -m/(2 + m)`, where `D = 2 + m` is kept as a pair `(dh, dl)`. The quotient
/// is taken with one reciprocal and one correction step: `q0 ≈ -mh/dh`, then the remainder
/// `(-mh - ml) - q0 (dh + dl)`, whose large part `-mh - q0·dh` is exact (the product with its
/// error, the difference by Sterbenz), divided by `dh` again; the result is rounded once more,
/// at the end.
#[inline(always)]
fn tanh_abs<S: Simd>(o: Ops<S>, a: S::f64s) -> S::f64s {
    let ExpReduced { k_bits, r, r_err } = exp_reduce(o, o.mul(o.k(-2.0), a));
    let (mh, ml) = exp_m1_pair(o, k_bits, exp_m1_parts(o, r, r_err));
    let (mh, ml) = fast_two_sum(o, mh, ml);
    // -1 < m <= 0, so Fast2Sum applies to 2 + mh.
    let (dh, dl0) = fast_two_sum(o, o.k(2.0), mh);
    let dl = o.add(dl0, ml);
    let inv_dh = o.div(o.k(1.0), dh);
    let q0 = o.mul(o.neg(mh), inv_dh);
    let p = o.mul(q0, dh);
    let p_err = two_prod_err(o, q0, dh, p);
    let rem = o.sub(o.sub(o.sub(o.neg(mh), p), p_err), o.mla(q0, dl, ml));
    o.mla(rem, inv_dh, q0)
}

/// `tanh x` for every lane.
///
/// [`tanh_abs`] of `a = |x|` (clamped to [`TANH_MAX`], where the result is exactly 1), with
/// the sign of `x` copied back. For `|x| < 2⁻⁵⁴` the result is `x` (`x - x³/3` rounds to `x`),
/// which also keeps `-0`. Only NaN goes to the scalar function; infinities give `±1` here.
#[inline(always)]
pub(super) fn tanh<S: Simd>(simd: S, x: S::f64s) -> S::f64s {
    let o = Ops(simd);
    let a = o.abs(x);
    let inside = o.le(a, o.k(TANH_MAX));
    let th = tanh_abs(o, o.select(inside, a, o.k(TANH_MAX)));
    let fast = simd.or_f64s(th, simd.and_f64s(x, o.k(-0.0)));
    let fast = o.select(o.lt(a, o.k(TINY_54)), x, fast);
    let nan = o.not(simd.equal_f64s(x, x));
    patch(simd, nan, x, fast, f64::tanh)
}
