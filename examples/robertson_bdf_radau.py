"""Robertson's stiff chemical kinetics with BDF and Radau: the Jacobian from duals.scipy.

`duals.scipy.ode_jacobian(rober, y0, args=K)` compiles the right-hand side once and returns
`jac(t, y, *args)` as solve_ivp calls it. The solutions are compared with those computed from a
hand-written Jacobian: the same to rounding, with the same numbers of right-hand side and
Jacobian evaluations.

Run:  python examples/robertson_bdf_radau.py   (needs SciPy)
"""

import numpy as np
from scipy.integrate import solve_ivp

import duals.scipy

K = (0.04, 3e7, 1e4)
Y0 = np.array([1.0, 0.0, 0.0])
T_SPAN = (0.0, 1e5)
T_EVAL = np.logspace(-5, 5, 41)


def rober(t, y, k1, k2, k3):
    """The right-hand side, ordinary NumPy code."""
    return np.array(
        [
            -k1 * y[0] + k3 * y[1] * y[2],
            k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
            k2 * y[1] ** 2,
        ]
    )


def rober_jac(t, y, k1, k2, k3):
    """The Jacobian by hand, for comparison."""
    return np.array(
        [
            [-k1, k3 * y[2], k3 * y[1]],
            [k1, -k3 * y[2] - 2.0 * k2 * y[1], -k3 * y[1]],
            [0.0, 2.0 * k2 * y[1], 0.0],
        ]
    )


def solve(method, jac):
    return solve_ivp(
        rober, T_SPAN, Y0, method=method, args=K, jac=jac, t_eval=T_EVAL, rtol=1e-8, atol=1e-12
    )


def main() -> None:
    jac = duals.scipy.ode_jacobian(rober, Y0, args=K)
    J0 = jac(0.0, np.array([0.9, 1e-5, 0.1]), *K)
    print(
        f"Jacobian check: max |duals - hand-written| = "
        f"{np.max(np.abs(J0 - rober_jac(0.0, np.array([0.9, 1e-5, 0.1]), *K))):.1e}"
    )
    ok = True
    for method in ("BDF", "Radau"):
        ours, ref = solve(method, jac), solve(method, rober_jac)
        rel = np.max(np.abs(ours.y - ref.y) / (np.abs(ref.y) + 1e-12))
        ok &= bool(ours.success and ref.success and rel < 1e-6)
        print(
            f"{method:5s} y(1e5) = {ours.y[:, -1]}  max rel. difference to hand-written {rel:.1e}"
        )
        print(f"      nfev/njev duals {ours.nfev}/{ours.njev}, hand-written {ref.nfev}/{ref.njev}")
    print(f"compiled functions: {len(jac.cache)}  success={ok}")


if __name__ == "__main__":
    main()
