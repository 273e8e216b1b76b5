"""Fit y = a exp(-b t) + c to noisy data with scipy.optimize.least_squares, with the exact
Jacobian from duals.scipy and with SciPy's '2-point' finite differences.

Run:  python examples/curve_fit_least_squares.py   (needs SciPy)
"""

import numpy as np
from scipy.optimize import least_squares

import duals.scipy

TRUE = np.array([2.5, 1.3, 0.5])


def model(p, t):
    return p[0] * np.exp(-p[1] * t) + p[2]


def residuals(p, t, y):
    return model(p, t) - y


def main() -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 4.0, 50)
    y = model(TRUE, t) + 0.02 * rng.standard_normal(t.size)
    p0 = np.array([1.0, 1.0, 0.0])
    jac = duals.scipy.least_squares_jacobian(residuals, p0, args=(t, y))
    ok = True
    fits = {}
    for label, j in [("duals (exact)", jac), ("'2-point'", "2-point")]:
        for method in ("trf", "lm"):
            calls = [0]

            def counted(p, t, y, calls=calls):
                calls[0] += 1
                return residuals(p, t, y)

            r = least_squares(counted, p0, jac=j, args=(t, y), method=method)
            fits[label, method] = r
            ok &= bool(r.success)
            print(
                f"{label:14s} {method:3s} a, b, c = {np.array2string(r.x, precision=5)}  "
                f"cost {r.cost:.6e}  nfev {r.nfev:2d}  njev {r.njev}  "
                f"residual calls {calls[0]:2d}"
            )
    diff = max(
        np.max(np.abs(fits["duals (exact)", m].x - fits["'2-point'", m].x)) for m in ("trf", "lm")
    )
    ok &= bool(np.allclose(fits["duals (exact)", "trf"].x, TRUE, atol=0.1))
    print(f"true a, b, c = {TRUE}; max |exact - 2-point| in the fitted parameters {diff:.1e}")
    print(f"success={ok}")


if __name__ == "__main__":
    main()
