#!/usr/bin/env python3
"""Generate high-precision reference values for the `duals` elementary-function rules.

Each function is written once as a SymPy expression; first and second derivatives come
from `sympy.diff` (no hand-written derivative formulas). Value and derivatives are evaluated
at exactly representable doubles (substituted as exact rationals) with mpmath at 1000 working
digits, re-checked at 2000 digits, and rounded to the nearest double. (1000 digits, not 50:
e.g. log(1 + 1e-200) needs ~250 digits before cancellation leaves 50 correct ones.)
Points where any output is not a finite *normal* double (overflow, or underflow of a
non-zero value) are dropped with a note on stderr; exact zeros are kept as 0.0.

    python rust/duals/tests/reference/generate.py          # rewrite unary.csv / binary.csv
    python rust/duals/tests/reference/generate.py --check  # verify the CSVs (float64 + mpmath.diff)
"""

import math
import sys
from pathlib import Path

import mpmath
import sympy as sp

HERE = Path(__file__).resolve().parent
DPS, DPS_CHECK = 1000, 2000  # working digits; results carry >= 50 correct digits
X, Y = sp.symbols("x y", real=True)
ROUND = mpmath.libmp.to_float  # with rnd="n": round to nearest (its default truncates)
THIRD = 1.0 / 3.0  # the double nearest 1/3, used as an exact binary exponent

# (name, builder(x, param) -> sympy expr, [(param or None, x), ...]). Kept although dropped
# (a derivative over-/underflows): recip 1e+-150, sqrt 1e+-300, cbrt 1e300, ln 1e-300, tanh 400.
NP = None
UNARY = [
    (
        "recip",
        lambda x, p: 1 / x,
        [(NP, v) for v in (2.5, -0.75, 3.0, -4.0, 1e-100, -1e100, 1e-150, 1e150)],
    ),
    (
        "powi",
        lambda x, p: x ** sp.Integer(p),
        [
            (3, 2.5),
            (3, -1.5),
            (3, 1e-50),
            (-2, 0.1),
            (-2, -3.0),
            (-2, 1e60),
            (0, 2.5),
            (0, -3.0),
            (1, 1e-200),
            (1, -7.25),
            (2, 1e100),
            (2, -0.3),
            (5, 1.1),
            (5, -2.0),
            (-3, 0.5),
            (-3, -1e-50),
        ],
    ),
    (
        "powf",
        lambda x, p: x ** sp.Rational(p),
        [
            (0.5, 2.0),
            (0.5, 1e100),
            (-1.5, 0.25),
            (-1.5, 7.5),
            (2.5, 1e-100),
            (2.5, 3.0),
            (3.0, 1.7),
            (3.0, -2.0),
            (THIRD, 8.0),
            (THIRD, 1e-120),
        ],
    ),
    (
        "sqrt",
        lambda x, p: sp.sqrt(x),
        [(NP, v) for v in (2.0, 0.25, 9.0, 1e-200, 1e200, 1e100, 1e-300, 1e300)],
    ),
    (
        "cbrt",
        lambda x, p: sp.real_root(x, 3),
        [(NP, v) for v in (27.0, -8.0, 0.001, 2.0, -0.5, 1e150, -1e-150, 1e300)],
    ),
    (
        "exp",
        lambda x, p: sp.exp(x),
        [(NP, v) for v in (0.0, 1.0, -2.5, 10.0, 1e-200, -700.0, 700.0)],
    ),
    ("exp2", lambda x, p: 2**x, [(NP, v) for v in (0.5, -3.0, 10.25, 1000.0, -1000.0, 1e-150)]),
    (
        "exp_m1",
        lambda x, p: sp.exp(x) - 1,
        [(NP, v) for v in (1e-12, -30.0, 1e-200, 0.5, -1e-5, 5.0, 700.0)],
    ),
    (
        "ln",
        lambda x, p: sp.log(x),
        [(NP, v) for v in (1.0000000001, 0.5, 2.0, 10.0, 1.0, 1e-150, 1e150, 1e-300)],
    ),
    (
        "log2",
        lambda x, p: sp.log(x, 2),
        [(NP, v) for v in (8.0, 0.1, 3.0, 1.0000000001, 1e-150, 1e150)],
    ),
    (
        "log10",
        lambda x, p: sp.log(x, 10),
        [(NP, v) for v in (100.0, 0.1, 3.0, 1.0000000001, 1e-150, 1e150)],
    ),
    (
        "ln_1p",
        lambda x, p: sp.log(1 + x),
        [(NP, v) for v in (1e-10, -0.9999, 1e-200, 0.5, -0.5, 1e10, 1e150)],
    ),
    ("sin", lambda x, p: sp.sin(x), [(NP, v) for v in (0.5, -2.0, 3.0, 100.0, 1e5, 1e22, 1e-200)]),
    (
        "cos",
        lambda x, p: sp.cos(x),
        [(NP, v) for v in (0.5, -2.0, 1.5707963267948966, 100.0, 1e5, 1e22, 1e-200)],
    ),
    (
        "tan",
        lambda x, p: sp.tan(x),
        [(NP, v) for v in (0.5, -1.0, 3.0, 1.5707, -1.5707, 1e5, 1e-200)],
    ),
    (
        "asin",
        lambda x, p: sp.asin(x),
        [(NP, v) for v in (0.0, 0.5, -0.3, 0.999999, -0.9999, 1e-200)],
    ),
    (
        "acos",
        lambda x, p: sp.acos(x),
        [(NP, v) for v in (0.0, 0.5, -0.3, 0.999999, -0.9999, 1e-200)],
    ),
    ("atan", lambda x, p: sp.atan(x), [(NP, v) for v in (0.5, -3.0, 1e10, 1e100, -1e100, 1e-200)]),
    ("sinh", lambda x, p: sp.sinh(x), [(NP, v) for v in (0.5, -3.0, 20.0, 700.0, -700.0, 1e-200)]),
    (
        "cosh",
        lambda x, p: sp.cosh(x),
        [(NP, v) for v in (0.0, 0.5, -3.0, 20.0, 700.0, -700.0, 1e-200)],
    ),
    (
        "tanh",
        lambda x, p: sp.tanh(x),
        [(NP, v) for v in (0.5, -3.0, 20.0, 300.0, -300.0, 1e-200, 400.0)],
    ),
    (
        "asinh",
        lambda x, p: sp.asinh(x),
        [(NP, v) for v in (0.5, -3.0, 1e-200, 1e100, -1e150, 1e10)],
    ),
    (
        "acosh",
        lambda x, p: sp.acosh(x),
        [(NP, v) for v in (1.0000001, 1.5, 2.0, 10.0, 1e100, 1e150)],
    ),
    (
        "atanh",
        lambda x, p: sp.atanh(x),
        [(NP, v) for v in (0.5, -0.5, 0.1, 0.99999, -0.9999999999, 1e-200)],
    ),
    ("abs", lambda x, p: sp.Abs(x), [(NP, v) for v in (2.5, -2.5, 7.0, -0.1, 1e-200, -1e200)]),
    ("erf", lambda x, p: sp.erf(x), [(NP, v) for v in (0.5, -1.5, 5.0, -3.0, 1e-8, 1e-200, 26.0)]),
    (
        "erfc",
        lambda x, p: sp.erfc(x),
        [(NP, v) for v in (0.5, -1.5, 5.0, -3.0, 1e-8, 1e-200, 26.0)],
    ),
]

# (name, builder(x, y) -> sympy expr, [(x, y), ...]); atan2(x, y) = Rust `x.atan2(y)`.
# Dropped: atan2 (1e200, 1e200) (dxx underflows), hypot (1e200, -1e-200) (dy underflows).
BINARY = [
    (
        "pow",
        lambda x, y: x**y,
        [
            (0.5, 2.0),
            (0.3, -1.5),
            (2.5, 0.5),
            (10.0, 3.0),
            (1.5, -2.25),
            (7.0, THIRD),
            (0.9, 100.0),
            (2.0, 0.0),
            (1.0, 2.5),
            (1e100, 0.5),
            (1e-100, 2.0),
        ],
    ),
    (
        "atan2",
        lambda x, y: sp.atan2(x, y),
        [
            (1.0, 2.0),
            (1.0, -2.0),
            (-1.0, -2.0),
            (-1.0, 2.0),
            (0.0, 1.0),
            (0.0, -1.0),
            (1.0, 0.0),
            (-1.0, 0.0),
            (1e100, 3e100),
            (1e-100, -2e-100),
            (1e200, 1e200),
        ],
    ),
    (
        "hypot",
        lambda x, y: sp.sqrt(x**2 + y**2),
        [
            (3.0, 4.0),
            (-3.0, 4.0),
            (-2.5, -1e-3),
            (0.0, 5.0),
            (1e200, 1e200),
            (1e-200, -1e-200),
            (-1e200, 1e190),
            (1e200, -1e-200),
        ],
    ),
]

F64 = {  # plain float64 evaluation, used only by --check
    "recip": lambda x, p: 1.0 / x,
    "powi": lambda x, p: x ** int(p),
    "powf": lambda x, p: math.pow(x, p),
    "sqrt": lambda x, p: math.sqrt(x),
    "cbrt": lambda x, p: math.cbrt(x),
    "exp": lambda x, p: math.exp(x),
    "exp2": lambda x, p: math.exp2(x),
    "exp_m1": lambda x, p: math.expm1(x),
    "ln": lambda x, p: math.log(x),
    "log2": lambda x, p: math.log2(x),
    "log10": lambda x, p: math.log10(x),
    "ln_1p": lambda x, p: math.log1p(x),
    "abs": lambda x, p: math.fabs(x),
    "pow": math.pow,
    "atan2": math.atan2,
    "hypot": math.hypot,
}
for _n in ("sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh erf erfc").split():
    F64[_n] = (lambda f: lambda x, p: f(x))(getattr(math, _n))


def to_double(const, dps):
    """Evaluate an exact constant expression with mpmath at `dps` digits; round to nearest."""
    with mpmath.workdps(dps):
        r = +mpmath.mpmathify(sp.lambdify([], const, "mpmath")())  # unary + forces constants
        if not isinstance(r, mpmath.mpf) or not r:
            raise ValueError(f"non-real or unexpectedly zero result for {const}: {r}")
        return ROUND(r._mpf_, rnd="n")


def evaluate(exprs, subs):
    """Round every expression; None if any is not a finite normal double (true zeros are kept)."""
    out = []
    for e in exprs:
        const = e.subs(
            subs
        )  # exact rationals in: SymPy settles Abs/sign/DiracDelta/Piecewise exactly
        if const == 0:  # structural zero only: SymPy 1.14's is_zero says True for acosh(1.0000001)
            out.append(0.0)
            continue
        a, b = to_double(const, DPS), to_double(const, DPS_CHECK)
        assert a == b, f"precision-sensitive result: {e} at {subs}: {a!r} vs {b!r}"
        if not (math.isfinite(a) and abs(a) >= sys.float_info.min):
            return None
        out.append(a)
    return out


def exact(v):
    return sp.Rational(v)  # a double converts to a Rational exactly


def generate():
    rows_u, rows_b = ["name,param,x,f,d1,d2"], ["name,x,y,f,dx,dy,dxx,dxy,dyy"]
    for name, build, points in UNARY:
        for p, x in points:
            f = build(X, p)
            vals = evaluate([f, sp.diff(f, X), sp.diff(f, X, 2)], {X: exact(x)})
            if vals is None:
                print(f"dropped {name} param={p} x={x!r}", file=sys.stderr)
                continue
            rows_u.append(
                ",".join([name, "" if p is None else repr(p), repr(x)] + [repr(v) for v in vals])
            )
    for name, build, points in BINARY:
        f = build(X, Y)
        exprs = [
            f,
            sp.diff(f, X),
            sp.diff(f, Y),
            sp.diff(f, X, 2),
            sp.diff(f, X, Y),
            sp.diff(f, Y, 2),
        ]
        for x, y in points:
            vals = evaluate(exprs, {X: exact(x), Y: exact(y)})
            if vals is None:
                print(f"dropped {name} x={x!r} y={y!r}", file=sys.stderr)
                continue
            rows_b.append(",".join([name, repr(x), repr(y)] + [repr(v) for v in vals]))
    (HERE / "unary.csv").write_text("\n".join(rows_u) + "\n")
    (HERE / "binary.csv").write_text("\n".join(rows_b) + "\n")


def close(a, b, rtol):  # b is the reference
    return abs(a - b) <= rtol * abs(b)


def same(d, ref):  # a finite difference rounded to nearest must hit the reference exactly
    return abs(d) < 1e-40 if ref == 0 else ROUND(mpmath.mpf(d)._mpf_, rnd="n") == ref


def nd(g, pt, orders):
    """Finite-difference partial derivative with mpmath: step relative to |x| (forward at x == 0,
    matching +0.0 e.g. on atan2's branch cut), 1000 extra bits against cancellation."""

    def d(fn, v, n):
        h = (abs(mpmath.mpf(v)) or 1) * mpmath.ldexp(1, -mpmath.mp.prec - 10)
        return mpmath.diff(fn, v, n, h=h, addprec=1000, direction=0 if v else 1)

    if len(pt) == 1:
        return d(g, pt[0], orders[0])
    return d(lambda xx: d(lambda yy: g(xx, yy), pt[1], orders[1]), pt[0], orders[0])


def check():
    """Values vs float64 math (argument order / naming), derivatives vs mpmath.diff."""
    mpmath.mp.dps = 60
    builders = {n: b for n, b, _ in UNARY + BINARY}
    bad = 0
    for fname, nargs in (("unary.csv", 1), ("binary.csv", 2)):
        lines = (HERE / fname).read_text().splitlines()[1:]
        for line in lines:
            c = line.split(",")
            name = c[0]
            if nargs == 1:
                p = None if c[1] == "" else (int(c[1]) if name == "powi" else float(c[1]))
                pt, ref = [float(c[2])], [float(v) for v in c[3:]]
                g = sp.lambdify([X], builders[name](X, p), "mpmath")
                fv = F64[name](pt[0], p)
                ds = [nd(g, pt, (1,)), nd(g, pt, (2,))]
            else:
                pt, ref = [float(c[1]), float(c[2])], [float(v) for v in c[3:]]
                g = sp.lambdify([X, Y], builders[name](X, Y), "mpmath")
                fv = F64[name](*pt)
                ds = [nd(g, pt, o) for o in ((1, 0), (0, 1), (2, 0), (1, 1), (0, 2))]
            ok = close(fv, ref[0], 1e-14)
            ok &= all(same(d, r) for d, r in zip(ds, ref[1:], strict=True))
            if not ok:
                bad += 1
                diffs = [mpmath.nstr(d, 20) for d in ds]
                print(f"MISMATCH {line}: float64 f={fv!r}, mpmath.diff={diffs}")
        print(f"{fname}: checked {len(lines)} rows")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    check() if "--check" in sys.argv[1:] else generate()
