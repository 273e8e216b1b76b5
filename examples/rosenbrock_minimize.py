"""Minimize the Rosenbrock function (n = 10) with exact gradients, Hessians and
Hessian-vector products from duals.scipy, compared with SciPy's hand-written ones.

Newton-CG takes `hessp` (H @ p, the Hessian never formed); trust-exact takes the dense `hess`.
`duals.scipy.minimize_derivatives(fun, x0, method=...)` returns what each method uses.

Run:  python examples/rosenbrock_minimize.py   (needs SciPy)
"""

import numpy as np
from scipy.optimize import minimize, rosen, rosen_der, rosen_hess, rosen_hess_prod

import duals.scipy

N = 10


def rosenbrock(x):
    """The same function as scipy.optimize.rosen, written here as plain NumPy."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def main() -> None:
    x0 = np.linspace(-1.2, 1.0, N)
    ok = True
    for method, reference in [
        ("Newton-CG", {"jac": rosen_der, "hessp": rosen_hess_prod}),
        ("trust-exact", {"jac": rosen_der, "hess": rosen_hess}),
    ]:
        d = duals.scipy.minimize_derivatives(rosenbrock, x0, method=method)
        # The derivatives themselves, at a point away from the minimum.
        x = np.cos(np.arange(N))
        p = np.sin(np.arange(N))
        errs = [np.max(np.abs(d["jac"](x) - rosen_der(x)))]
        if "hessp" in d:
            errs.append(np.max(np.abs(d["hessp"](x, p) - rosen_hess_prod(x, p))))
        if "hess" in d:
            errs.append(np.max(np.abs(d["hess"](x) - rosen_hess(x))))
        options = {"xtol": 1e-10} if method == "Newton-CG" else {"gtol": 1e-10}
        ours = minimize(rosenbrock, x0, method=method, options=options, **d)
        ref = minimize(rosen, x0, method=method, options=options, **reference)
        dx = np.max(np.abs(ours.x - ref.x))
        ok &= bool(ours.success and ref.success and np.allclose(ours.x, 1.0, atol=1e-6))
        print(
            f"{method:11s} uses {sorted(d)}: max |duals - SciPy| derivatives {max(errs):.1e}; "
            f"f = {ours.fun:.2e}, max |x - 1| = {np.max(np.abs(ours.x - 1.0)):.1e}, "
            f"nit {ours.nit} (SciPy's derivatives: {ref.nit}), "
            f"|x_duals - x_scipy| = {dx:.1e}"
        )
    print(f"success={ok}")


if __name__ == "__main__":
    main()
