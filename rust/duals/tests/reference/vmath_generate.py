#!/usr/bin/env python3
"""Generate high-precision reference values for the vectorized elementary functions.

Writes `vmath.csv` next to this script: for each function of `duals::kernels::MathFn` (the
SIMD `exp`, `exp_m1`, `ln`, `ln_1p`, `sin`, `cos`, `tanh`), inputs chosen to stress it
(random samples over several ranges, tiny arguments, the edges of each fast domain, the
boundaries of the argument reductions, and for `sin`/`cos` the doubles closest to multiples
of pi/2), with the exact value and exact first derivative, each as a pair `hi,lo`: `hi` is
the correctly rounded double and `lo` the rounded remainder (3 digits are enough: it only
refines the ulp error), so a test can measure errors in fractions of an ulp. A derivative
that is not a normal double is written as `nan` (and not checked).

    python rust/duals/tests/reference/vmath_generate.py          # rewrite vmath.csv
    python rust/duals/tests/reference/vmath_generate.py --check  # verify it is up to date

Format: `name,x,f,f_lo,d,d_lo`, numbers as Python `repr(float)` (exact round trip), `f_lo`
and `d_lo` as `%.3g`. Inputs whose value is not a finite normal double (or zero) are left
out. mpmath at 300 bits; deterministic (fixed seed).
"""

import math
import random
import sys
from pathlib import Path

import mpmath
from mpmath import mp, mpf

HERE = Path(__file__).resolve().parent
OUT = HERE / "vmath.csv"
mp.prec = 300

FUNCS = {
    "exp": (mpmath.exp, mpmath.exp),
    "exp_m1": (mpmath.expm1, mpmath.exp),
    "ln": (mpmath.log, lambda x: 1 / x),
    "ln_1p": (mpmath.log1p, lambda x: 1 / (1 + x)),
    "sin": (mpmath.sin, mpmath.cos),
    "cos": (mpmath.cos, lambda x: -mpmath.sin(x)),
    "tanh": (mpmath.tanh, lambda x: 1 / mpmath.cosh(x) ** 2),
}


def uniform(rng, n, lo, hi):
    return [rng.uniform(lo, hi) for _ in range(n)]


def log_uniform(rng, n, lo, hi, signs=(1.0,)):
    return [rng.choice(signs) * math.exp(rng.uniform(math.log(lo), math.log(hi))) for _ in range(n)]


def around(x, ulps=2):
    """x and its neighbours up to `ulps` steps away."""
    out, up, down = [x], x, x
    for _ in range(ulps):
        up, down = math.nextafter(up, math.inf), math.nextafter(down, -math.inf)
        out += [up, down]
    return out


def pio2_worst_cases():
    """Per binade 2^-1 .. 2^20, the double closest to a multiple of pi/2 (continued fractions
    of (pi/2)/ulp: the best approximations k*alpha ~ m are at convergent denominators)."""
    pio2 = mp.pi / 2
    out = []
    for e in range(-1, 21):
        ulp = mpf(2) ** (e - 52)
        alpha = pio2 / ulp
        kmin, kmax = int(mpmath.ceil(2**52 / alpha)), int(mpmath.floor(2**53 / alpha))
        best, x, (h0, h1), (k0, k1) = None, alpha, (0, 1), (1, 0)
        for _ in range(200):
            a = int(mpmath.floor(x))
            h0, h1, k0, k1 = h1, a * h1 + h0, k1, a * k1 + k0
            if k1 > kmax:
                break
            for t in range(max(1, kmin // k1), kmax // k1 + 1):
                k = k1 * t
                m = int(mpmath.nint(k * alpha))
                if kmin <= k <= kmax and 2**52 <= m < 2**53:
                    r = abs(m - k * alpha)
                    if best is None or r < best[0]:
                        best = (r, m)
                if t > 64:
                    break
            frac = x - a
            if frac == 0:
                break
            x = 1 / frac
        if best:
            out.append(float(best[1] * ulp))
    return out


def inputs():
    rng = random.Random(20261107)

    def tiny(n):
        return log_uniform(rng, n, 1e-300, 1e-8, (1.0, -1.0))

    ln2 = math.log(2)
    pts = {}
    pts["exp"] = (
        uniform(rng, 30, -708, 708)
        + uniform(rng, 20, -1, 1)
        + tiny(8)
        + [x for n in range(-4, 5) for x in around((n + 0.5) * ln2, 1)]
        + around(708.0, 1)
        + [700.5, 709.0, 709.7, 709.78, -700.5, -708.0, -708.39, -709.0]
        + [-720.0, -744.0, 1e-320, -1e-320, 5e-324]
    )
    pts["exp_m1"] = (
        uniform(rng, 30, -3, 3)
        + uniform(rng, 12, -40, 40)
        + uniform(rng, 6, 40, 708)
        + tiny(8)
        + uniform(rng, 8, -1e-5, 1e-5)
        + [x for n in (-2, -1, 0, 1) for x in around((n + 0.5) * ln2, 1)]
        + [-36.0, -37.5, -39.9, -40.0, 700.0, 708.0, 5e-324, -1e-310]
    )
    pts["ln"] = (
        log_uniform(rng, 30, 1e-300, 1e300)
        + uniform(rng, 30, 0.5, 2)
        + [1 + d for d in log_uniform(rng, 12, 1e-15, 1e-3, (1.0, -1.0))]
        + around(math.sqrt(2), 2)
        + around(math.sqrt(0.5), 2)
        + [2.0**k for k in (-1022, -600, -1, 1, 52, 1023)]
        + [sys.float_info.min, sys.float_info.max, 1.0]
    )
    pts["ln_1p"] = (
        uniform(rng, 30, -0.99, 3)
        + log_uniform(rng, 16, 1e-300, 1e300)
        + tiny(10)
        + [-1 + 2.0**-k for k in (1, 2, 5, 10, 20, 30, 40, 50, 52, 53)]
        + around(math.sqrt(2) - 1, 2)
        + around(math.sqrt(0.5) - 1, 2)
        + [1e-16, 1.5e-16, 2.2e-16, -1.1e-16, 1e-10, -1e-10, sys.float_info.max, 5e-324]
    )
    trig = (
        uniform(rng, 24, -4, 4)
        + uniform(rng, 16, -100, 100)
        + uniform(rng, 16, -(2.0**20), 2.0**20)
        + tiny(8)
        + [
            x
            for k in (1, 2, 3, 4, 5, 10, 100, 1000, 12345, 600000)
            for x in around(k * math.pi / 2, 1)
        ]
        + [math.pi / 4, -math.pi / 4, 0.785398163397448, 2.0**20, -(2.0**20), 1.5e-8, 7e-9]
    )
    worst = pio2_worst_cases()
    pts["sin"] = trig + worst
    pts["cos"] = trig + worst
    pts["tanh"] = (
        uniform(rng, 30, -5, 5)
        + log_uniform(rng, 20, 1e-300, 340, (1.0, -1.0))
        + uniform(rng, 8, 17, 23)
        + [0.55, 0.5493061443340549, 1.0, 22.0, 22.5, 19.0, 349.0, 350.0, 1e-17, -1e-17]
    )
    return pts


def pair(v):
    """The correctly rounded double of v and the rest, or None if not zero or normal."""
    hi = mpmath.libmp.to_float(v._mpf_, rnd="n")
    if not math.isfinite(hi) or (hi != 0 and abs(hi) < sys.float_info.min):
        return None
    return hi, float(v - mpf(hi))


def rows():
    out = ["name,x,f,f_lo,d,d_lo"]
    for name, xs in inputs().items():
        f, d = FUNCS[name]
        for x in sorted(set(xs)):
            if name in ("ln",) and x <= 0:
                continue
            fv, dv = pair(f(mpf(x))), pair(d(mpf(x)))
            if fv is None:
                print(f"skipped {name}({x!r}): not normal", file=sys.stderr)
                continue
            # A derivative that is not normal is written as nan (not checked).
            dv = dv or (math.nan, math.nan)
            out.append(f"{name},{x!r},{fv[0]!r},{fv[1]:.3g},{dv[0]!r},{dv[1]:.3g}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    text = rows()
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            sys.exit(f"{OUT} is out of date: rerun {Path(__file__).name}")
        print(f"{OUT.name} is up to date ({text.count(chr(10)) - 1} rows)")
    else:
        OUT.write_text(text)
        print(f"wrote {OUT} ({text.count(chr(10)) - 1} rows)")
