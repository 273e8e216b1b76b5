//! The table of rules: every elementary function ONCE, with its value and derivatives at a point.
//!
//! Each entry returns [`Unary`] (value, first and second derivative) or [`Binary`] (value,
//! gradient and Hessian of a function of two arguments), computed in the arithmetic of `T`.
//! `T` is any [`DualNum`], so the same entry serves plain reals (`T = f64`, used by
//! [`Dual`](crate::Dual), [`HyperDualVec`](crate::HyperDualVec) and [`Dual2`](crate::Dual2)) and
//! nested duals (`T = Dual64`, used by `Dual<Dual64, 1>`). Higher derivatives than the second come
//! from nesting.
//!
//! Rules never panic: NaN and infinity propagate as IEEE arithmetic says. Points where a
//! derivative does not exist get the documented limit:
//! - `sqrt`, `cbrt` at 0: first derivative `+inf`;
//! - `abs` at `±0`: first derivative `±1` (the side the zero's sign points to);
//! - `hypot` at `(0, 0)`: NaN derivatives; `atan2` at `(0, 0)`: NaN derivatives;
//! - `pow(x, y)` at `x = 0`: see [`pow`].
//!
//! Adding a function is one entry here and one provided method on [`DualNum`].

use crate::number::{DualNum, Real};

/// Value and first two derivatives of a function of one argument at a point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unary<T> {
    /// `f(a)`
    pub f: T,
    /// `f'(a)`
    pub d1: T,
    /// `f''(a)`
    pub d2: T,
}

/// Value, gradient and Hessian of a function of two arguments at a point `(a, b)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Binary<T> {
    /// `f(a, b)`
    pub f: T,
    /// `∂f/∂a`
    pub da: T,
    /// `∂f/∂b`
    pub db: T,
    /// `∂²f/∂a²`
    pub daa: T,
    /// `∂²f/∂a∂b`
    pub dab: T,
    /// `∂²f/∂b²`
    pub dbb: T,
}

// ---------------------------------------------------------------------------------------------
// Unary functions
// ---------------------------------------------------------------------------------------------

/// `1/a`: `-1/a²`, `2/a³`.
#[inline]
pub fn recip<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let f = a.recip();
    let d1 = -(f * f);
    Unary {
        f,
        d1,
        d2: -(d1 * f) * F::from_f64(2.0),
    }
}

/// `aⁿ`: `n aⁿ⁻¹`, `n (n-1) aⁿ⁻²`. Exponents 0 and 1 give exact zero derivatives where the
/// generic formula would give `0 · inf`.
#[inline]
pub fn powi<F: Real, T: DualNum<F>>(a: T, n: i32) -> Unary<T> {
    let nf = F::from_f64(n as f64);
    match n {
        0 => Unary {
            f: T::one(),
            d1: T::zero(),
            d2: T::zero(),
        },
        1 => Unary {
            f: a,
            d1: T::one(),
            d2: T::zero(),
        },
        2 => Unary {
            f: a * a,
            d1: a * F::from_f64(2.0),
            d2: T::from_re(F::from_f64(2.0)),
        },
        3.. => {
            let p2 = a.powi(n - 2);
            let p1 = p2 * a;
            Unary {
                f: p1 * a,
                d1: p1 * nf,
                d2: p2 * (nf * (nf - F::from_f64(1.0))),
            }
        }
        // Negative exponents: separate powers, so that a = 0 gives infinities, not 0 · inf.
        _ => Unary {
            f: a.powi(n),
            d1: a.powi(n - 1) * nf,
            d2: a.powi(n - 2) * (nf * (nf - F::from_f64(1.0))),
        },
    }
}

/// `aᵖ` for a constant real `p`: `p aᵖ⁻¹`, `p (p-1) aᵖ⁻²`. `p = 0` and `p = 1` give exact
/// zero derivatives.
#[inline]
pub fn powf<F: Real, T: DualNum<F>>(a: T, p: F) -> Unary<T> {
    if p == F::from_f64(0.0) {
        return Unary {
            f: T::one(),
            d1: T::zero(),
            d2: T::zero(),
        };
    }
    if p == F::from_f64(1.0) {
        return Unary {
            f: a,
            d1: T::one(),
            d2: T::zero(),
        };
    }
    // `aᵖ⁻¹ = aᵖ / a` while that is a normal number: `a.powf(p - 1)` would carry the rounding
    // of the exponent `p - 1`, an error of `|ln a|` ulps (77 at a = 1e-120). Otherwise separate
    // powers, so that a = 0 gives 0 or infinities, never 0 · inf.
    let f = a.powf(p);
    let p1 = if f.re().is_normal() {
        f / a
    } else {
        a.powf(p - F::from_f64(1.0))
    };
    let p2 = if p1.re().is_normal() {
        p1 / a
    } else {
        a.powf(p - F::from_f64(2.0))
    };
    Unary {
        f,
        d1: p1 * p,
        d2: p2 * (p * (p - F::from_f64(1.0))),
    }
}

/// `√a`: `1/(2√a)`, `-1/(4 a√a)`. At 0 the first derivative is `+inf`.
#[inline]
pub fn sqrt<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let f = a.sqrt();
    // `+ 0`: at a = -0, sqrt gives -0 and 1/(2 · -0) would be -inf.
    let d1 = (f * F::from_f64(2.0) + F::from_f64(0.0)).recip();
    Unary {
        f,
        d1,
        d2: -d1 / (a * F::from_f64(2.0)),
    }
}

/// `∛a` (real, also for negative `a`): `1/(3 ∛a²)`, `-2/(9 a ∛a²)`.
#[inline]
pub fn cbrt<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let f = a.cbrt();
    let d1 = (f * f * F::from_f64(3.0)).recip();
    Unary {
        f,
        d1,
        d2: d1 * F::from_f64(-2.0 / 3.0) / a,
    }
}

/// `eᵃ`: `eᵃ`, `eᵃ`.
#[inline]
pub fn exp<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let f = a.exp();
    Unary { f, d1: f, d2: f }
}

/// `2ᵃ`: `2ᵃ ln 2`, `2ᵃ ln² 2`.
#[inline]
pub fn exp2<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let f = a.exp2();
    let d1 = f * F::LN_2();
    Unary {
        f,
        d1,
        d2: d1 * F::LN_2(),
    }
}

/// `eᵃ - 1`: `eᵃ`, `eᵃ`.
#[inline]
pub fn exp_m1<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let e = a.exp();
    Unary {
        f: a.exp_m1(),
        d1: e,
        d2: e,
    }
}

/// `ln a`: `1/a`, `-1/a²`.
#[inline]
pub fn ln<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let d1 = a.recip();
    Unary {
        f: a.ln(),
        d1,
        d2: -(d1 * d1),
    }
}

/// `log₂ a`: `1/(a ln 2)`, `-1/(a² ln 2)`.
#[inline]
pub fn log2<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let r = a.recip();
    Unary {
        f: a.log2(),
        d1: r / F::LN_2(),
        d2: -(r * r) / F::LN_2(),
    }
}

/// `log₁₀ a`: `1/(a ln 10)`, `-1/(a² ln 10)`.
#[inline]
pub fn log10<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let r = a.recip();
    Unary {
        f: a.log10(),
        d1: r / F::LN_10(),
        d2: -(r * r) / F::LN_10(),
    }
}

/// `ln(1 + a)`: `1/(1+a)`, `-1/(1+a)²`.
#[inline]
pub fn ln_1p<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let d1 = (a + F::from_f64(1.0)).recip();
    Unary {
        f: a.ln_1p(),
        d1,
        d2: -(d1 * d1),
    }
}

/// `sin a`: `cos a`, `-sin a`.
#[inline]
pub fn sin<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let (s, c) = a.sin_cos();
    Unary {
        f: s,
        d1: c,
        d2: -s,
    }
}

/// `cos a`: `-sin a`, `-cos a`.
#[inline]
pub fn cos<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let (s, c) = a.sin_cos();
    Unary {
        f: c,
        d1: -s,
        d2: -c,
    }
}

/// `tan a`: `1 + tan² a`, `2 tan a (1 + tan² a)`.
#[inline]
pub fn tan<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let f = a.tan();
    let d1 = f * f + F::from_f64(1.0);
    Unary {
        f,
        d1,
        d2: f * d1 * F::from_f64(2.0),
    }
}

/// `asin a`: `1/√(1-a²)`, `a/(1-a²)^(3/2)`.
#[inline]
pub fn asin<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let d1 = one_minus_square(a).sqrt().recip();
    Unary {
        f: a.asin(),
        d1,
        d2: a * d1 * d1 * d1,
    }
}

/// `acos a`: `-1/√(1-a²)`, `-a/(1-a²)^(3/2)`.
#[inline]
pub fn acos<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let r = one_minus_square(a).sqrt().recip();
    Unary {
        f: a.acos(),
        d1: -r,
        d2: -(a * r * r * r),
    }
}

/// `atan a`: `1/(1+a²)`, `-2a/(1+a²)²`.
#[inline]
pub fn atan<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let d1 = (a * a + F::from_f64(1.0)).recip();
    Unary {
        f: a.atan(),
        d1,
        d2: a * d1 * d1 * F::from_f64(-2.0),
    }
}

/// `sinh a`: `cosh a`, `sinh a`.
#[inline]
pub fn sinh<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let f = a.sinh();
    Unary {
        f,
        d1: a.cosh(),
        d2: f,
    }
}

/// `cosh a`: `sinh a`, `cosh a`.
#[inline]
pub fn cosh<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let f = a.cosh();
    Unary {
        f,
        d1: a.sinh(),
        d2: f,
    }
}

/// `tanh a`: `1 - tanh² a = 1/cosh² a`, `-2 tanh a (1 - tanh² a)`.
#[inline]
pub fn tanh<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let f = a.tanh();
    // 1/cosh² a, not 1 - tanh² a: that cancels (to 0 for |a| > 19, 40 f32 ulps at a = 3).
    let s = a.cosh().recip();
    let d1 = s * s;
    Unary {
        f,
        d1,
        d2: f * d1 * F::from_f64(-2.0),
    }
}

/// `asinh a`: `1/√(a²+1)`, `-a/(a²+1)^(3/2)`.
#[inline]
pub fn asinh<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    // For huge |a|, a² overflows: 1/√(a²+1) = (1/|a|) / √(1 + 1/a²).
    let big = F::from_f64(1e150);
    let d1 = if a.re() > big || a.re() < -big {
        let r = a.abs().recip();
        r / (r * r + F::from_f64(1.0)).sqrt()
    } else {
        (a * a + F::from_f64(1.0)).sqrt().recip()
    };
    Unary {
        f: a.asinh(),
        d1,
        d2: -(a * d1 * d1 * d1),
    }
}

/// `acosh a`: `1/√(a²-1)`, `-a/(a²-1)^(3/2)`.
#[inline]
pub fn acosh<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    // √(a²-1) = √(a-1)·√(a+1): accurate near 1, no overflow for large a.
    let d1 = ((a - F::from_f64(1.0)).sqrt() * (a + F::from_f64(1.0)).sqrt()).recip();
    Unary {
        f: a.acosh(),
        d1,
        d2: -(a * d1 * d1 * d1),
    }
}

/// `1 - a²` for `asin`, `acos`, `atanh`: as `(1-a)(1+a)` near `±1`, where `1 - a·a` cancels;
/// as `1 - a·a` near 0, where the derivative of `(1-a)(1+a)` (for nested duals) cancels.
#[inline]
fn one_minus_square<F: Real, T: DualNum<F>>(a: T) -> T {
    let (one, half) = (F::from_f64(1.0), F::from_f64(0.5));
    if a.re() > -half && a.re() < half {
        -(a * a) + one
    } else {
        (-a + one) * (a + one)
    }
}

/// `atanh a`: `1/(1-a²)`, `2a/(1-a²)²`.
#[inline]
pub fn atanh<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let d1 = one_minus_square(a).recip();
    Unary {
        f: a.atanh(),
        d1,
        d2: a * d1 * d1 * F::from_f64(2.0),
    }
}

/// `|a|`: `sign a`, `0`. At `±0` the first derivative is `±1`, the one-sided derivative on
/// the side of the zero's sign.
#[inline]
pub fn abs<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let re = a.re();
    let s = if re.is_nan() {
        F::nan()
    } else if re.is_sign_negative() {
        -F::from_f64(1.0)
    } else {
        F::from_f64(1.0)
    };
    Unary {
        f: a.abs(),
        d1: T::from_re(s),
        d2: T::zero(),
    }
}

/// `erf a`: `2/√π e^(-a²)`, `-2a · 2/√π e^(-a²)`.
#[inline]
pub fn erf<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let d1 = (-(a * a)).exp() * F::FRAC_2_SQRT_PI();
    Unary {
        f: a.erf(),
        d1,
        d2: a * d1 * F::from_f64(-2.0),
    }
}

/// `erfc a = 1 - erf a`: `-2/√π e^(-a²)`, `2a · 2/√π e^(-a²)`.
#[inline]
pub fn erfc<F: Real, T: DualNum<F>>(a: T) -> Unary<T> {
    let d1 = -((-(a * a)).exp() * F::FRAC_2_SQRT_PI());
    Unary {
        f: a.erfc(),
        d1,
        d2: a * d1 * F::from_f64(-2.0),
    }
}

// ---------------------------------------------------------------------------------------------
// Binary functions
// ---------------------------------------------------------------------------------------------

/// `aᵇ` with both arguments variable:
/// `∂a = b aᵇ⁻¹`, `∂b = aᵇ ln a`, `∂aa = b(b-1) aᵇ⁻²`, `∂ab = aᵇ⁻¹ (1 + b ln a)`,
/// `∂bb = aᵇ ln² a`.
///
/// Special case: at `a = 0` the terms with `ln a` are multiplied by a power of `a` that is 0
/// for `b > 0` (the limit is 0), so they are set to zero there instead of `0 · inf = NaN`; in
/// `∂ab` that power is `aᵇ⁻¹`, which vanishes only for `b > 1` (the limit is `-inf` for `b <= 1`).
#[inline]
pub fn pow<F: Real, T: DualNum<F>>(a: T, b: T) -> Binary<T> {
    let f = a.powd(b);
    let p1 = a.powd(b - F::from_f64(1.0));
    let p2 = a.powd(b - F::from_f64(2.0));
    let bm1 = b - F::from_f64(1.0);
    let (db, dab, dbb) = if a.re() == F::from_f64(0.0) && b.re() > F::from_f64(0.0) {
        // ∂ab = aᵇ⁻¹ + b aᵇ⁻¹ ln a: the ln term vanishes only for b > 1; → -inf for b <= 1.
        let dab = if b.re() > F::from_f64(1.0) {
            p1
        } else {
            p1 * (b * a.ln() + F::from_f64(1.0))
        };
        (T::zero(), dab, T::zero())
    } else {
        let l = a.ln();
        (f * l, p1 * (b * l + F::from_f64(1.0)), f * l * l)
    };
    Binary {
        f,
        da: p1 * b,
        db,
        daa: p2 * b * bm1,
        dab,
        dbb,
    }
}

/// `atan2(a, b)`, the angle of the point `(b, a)` (`a` is the y coordinate, as in Rust's
/// `a.atan2(b)`): with `r² = a² + b²`,
/// `∂a = b/r²`, `∂b = -a/r²`, `∂aa = -2ab/r⁴`, `∂ab = (a² - b²)/r⁴`, `∂bb = 2ab/r⁴`.
#[inline]
pub fn atan2<F: Real, T: DualNum<F>>(a: T, b: T) -> Binary<T> {
    // Scaled by r = hypot(a, b), so that r² and r⁴ do not overflow or underflow (they do for
    // |a|, |b| near 1e±100): u = a/r², v = b/r², ∂aa = -2uv, ∂ab = (a-b)(a+b)/r⁴, ∂bb = 2uv.
    let ir = a.hypot(b).recip();
    let (u, v) = (a * ir * ir, b * ir * ir);
    let two_uv = u * v * F::from_f64(2.0);
    Binary {
        f: a.atan2(b),
        da: v,
        db: -u,
        daa: -two_uv,
        dab: (a - b) * ir * ir * ((a + b) * ir * ir),
        dbb: two_uv,
    }
}

/// `hypot(a, b) = √(a² + b²)`: `∂a = a/h`, `∂b = b/h`, `∂aa = b²/h³`, `∂ab = -ab/h³`,
/// `∂bb = a²/h³`. Computed with scaled quotients so that magnitudes near 1e±300 do not
/// overflow. NaN at `(0, 0)`, where it is not differentiable.
#[inline]
pub fn hypot<F: Real, T: DualNum<F>>(a: T, b: T) -> Binary<T> {
    let h = a.hypot(b);
    let (ua, ub) = (a / h, b / h);
    let ih = h.recip();
    Binary {
        f: h,
        da: ua,
        db: ub,
        daa: ub * ub * ih,
        dab: -(ua * ub * ih),
        dbb: ua * ua * ih,
    }
}

/// `a % b` (truncated remainder, as Rust's `%`): `∂a = 1`, `∂b = -trunc(a/b)`, second
/// derivatives 0 (away from the jumps).
#[inline]
pub fn rem<F: Real, T: DualNum<F>>(a: T, b: T) -> Binary<T> {
    let q = (a / b).trunc();
    Binary {
        f: a % b,
        da: T::one(),
        db: -q,
        daa: T::zero(),
        dab: T::zero(),
        dbb: T::zero(),
    }
}

// ---------------------------------------------------------------------------------------------
// Selection (min/max): the derivative follows the selected argument
// ---------------------------------------------------------------------------------------------

/// Whether `min(a, b)` selects `a`: `a <= b`, or `b` is NaN (a NaN argument loses, as in
/// `f64::min`).
#[inline]
pub fn select_first_for_min<F: Real>(a: F, b: F) -> bool {
    b.is_nan() || a <= b
}

/// Whether `max(a, b)` selects `a`: `a >= b`, or `b` is NaN.
#[inline]
pub fn select_first_for_max<F: Real>(a: F, b: F) -> bool {
    b.is_nan() || a >= b
}

// ---------------------------------------------------------------------------------------------
// Lookup by name: the table as data, for array kernels and bindings that choose a rule at run time
// ---------------------------------------------------------------------------------------------

/// A unary entry of the table, chosen at run time (by name, e.g. from Python).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum UnaryRule {
    /// [`recip`]
    Recip,
    /// [`powi`] with its exponent
    Powi(i32),
    /// [`powf`] with its exponent
    Powf(f64),
    /// [`sqrt`]
    Sqrt,
    /// [`cbrt`]
    Cbrt,
    /// [`exp`]
    Exp,
    /// [`exp2`]
    Exp2,
    /// [`exp_m1`]
    ExpM1,
    /// [`ln`]
    Ln,
    /// [`log2`]
    Log2,
    /// [`log10`]
    Log10,
    /// [`ln_1p`]
    Ln1p,
    /// [`sin`]
    Sin,
    /// [`cos`]
    Cos,
    /// [`tan`]
    Tan,
    /// [`asin`]
    Asin,
    /// [`acos`]
    Acos,
    /// [`atan`]
    Atan,
    /// [`sinh`]
    Sinh,
    /// [`cosh`]
    Cosh,
    /// [`tanh`]
    Tanh,
    /// [`asinh`]
    Asinh,
    /// [`acosh`]
    Acosh,
    /// [`atanh`]
    Atanh,
    /// [`abs`]
    Abs,
    /// [`erf`]
    Erf,
    /// [`erfc`]
    Erfc,
    /// `floor`, derivative zero
    Floor,
    /// `ceil`, derivative zero
    Ceil,
    /// `round` (halves away from zero), derivative zero
    Round,
    /// `trunc`, derivative zero
    Trunc,
    /// `signum`, derivative zero
    Signum,
}

impl UnaryRule {
    /// The names accepted by [`UnaryRule::from_name`] (those of the [`DualNum`] methods).
    pub const NAMES: [&'static str; 32] = [
        "recip", "powi", "powf", "sqrt", "cbrt", "exp", "exp2", "exp_m1", "ln", "log2", "log10",
        "ln_1p", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
        "acosh", "atanh", "abs", "erf", "erfc", "floor", "ceil", "round", "trunc", "signum",
    ];

    /// The entry named `name` (a [`DualNum`] method name); `param` is the exponent of `powi`
    /// (rounded to an integer) and `powf`, ignored otherwise. `None` for an unknown name.
    pub fn from_name(name: &str, param: f64) -> Option<Self> {
        use UnaryRule::*;
        Some(match name {
            "recip" => Recip,
            "powi" => Powi(param as i32),
            "powf" => Powf(param),
            "sqrt" => Sqrt,
            "cbrt" => Cbrt,
            "exp" => Exp,
            "exp2" => Exp2,
            "exp_m1" => ExpM1,
            "ln" => Ln,
            "log2" => Log2,
            "log10" => Log10,
            "ln_1p" => Ln1p,
            "sin" => Sin,
            "cos" => Cos,
            "tan" => Tan,
            "asin" => Asin,
            "acos" => Acos,
            "atan" => Atan,
            "sinh" => Sinh,
            "cosh" => Cosh,
            "tanh" => Tanh,
            "asinh" => Asinh,
            "acosh" => Acosh,
            "atanh" => Atanh,
            "abs" => Abs,
            "erf" => Erf,
            "erfc" => Erfc,
            "floor" => Floor,
            "ceil" => Ceil,
            "round" => Round,
            "trunc" => Trunc,
            "signum" => Signum,
            _ => return None,
        })
    }

    /// Value and first two derivatives at `a`, from the table entry.
    #[inline]
    pub fn eval(self, a: f64) -> Unary<f64> {
        use UnaryRule::*;
        let constant = |f: f64| Unary {
            f,
            d1: 0.0,
            d2: 0.0,
        };
        match self {
            Recip => recip(a),
            Powi(n) => powi(a, n),
            Powf(p) => powf(a, p),
            Sqrt => sqrt(a),
            Cbrt => cbrt(a),
            Exp => exp(a),
            Exp2 => exp2(a),
            ExpM1 => exp_m1(a),
            Ln => ln(a),
            Log2 => log2(a),
            Log10 => log10(a),
            Ln1p => ln_1p(a),
            Sin => sin(a),
            Cos => cos(a),
            Tan => tan(a),
            Asin => asin(a),
            Acos => acos(a),
            Atan => atan(a),
            Sinh => sinh(a),
            Cosh => cosh(a),
            Tanh => tanh(a),
            Asinh => asinh(a),
            Acosh => acosh(a),
            Atanh => atanh(a),
            Abs => abs(a),
            Erf => erf(a),
            Erfc => erfc(a),
            Floor => constant(a.floor()),
            Ceil => constant(a.ceil()),
            Round => constant(a.round()),
            Trunc => constant(a.trunc()),
            Signum => constant(a.signum()),
        }
    }
}

/// A binary entry of the table, chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BinaryRule {
    /// [`pow`]
    Pow,
    /// [`atan2`]
    Atan2,
    /// [`hypot`]
    Hypot,
    /// [`rem`]
    Rem,
}

impl BinaryRule {
    /// The names accepted by [`BinaryRule::from_name`].
    pub const NAMES: [&'static str; 4] = ["pow", "atan2", "hypot", "rem"];

    /// The entry named `name`; `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "pow" => BinaryRule::Pow,
            "atan2" => BinaryRule::Atan2,
            "hypot" => BinaryRule::Hypot,
            "rem" => BinaryRule::Rem,
            _ => return None,
        })
    }

    /// Value, gradient and Hessian at `(a, b)`, from the table entry.
    #[inline]
    pub fn eval(self, a: f64, b: f64) -> Binary<f64> {
        match self {
            BinaryRule::Pow => pow(a, b),
            BinaryRule::Atan2 => atan2(a, b),
            BinaryRule::Hypot => hypot(a, b),
            BinaryRule::Rem => rem(a, b),
        }
    }
}
