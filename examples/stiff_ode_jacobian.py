"""Exact Jacobians for a stiff ODE solver: the Robertson chemical kinetics problem.

SciPy's implicit solvers (BDF, Radau, LSODA) need the Jacobian of the right-hand side; without
one they estimate it by finite differences. duals gives the exact one from the same NumPy code.

Run:  python examples/stiff_ode_jacobian.py   (needs SciPy)
"""

import numpy as np
from scipy.integrate import solve_ivp

import duals

K = (0.04, 3e7, 1e4)


def rober(t, y, k1, k2, k3):
    """The right-hand side, written as ordinary NumPy code."""
    return np.array(
        [
            -k1 * y[0] + k3 * y[1] * y[2],
            k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
            k2 * y[1] ** 2,
        ]
    )


def jac(t, y, *k):
    """d rober / d y, exact: duals differentiates rober with respect to its second argument."""
    return duals.jacobian(lambda y: rober(t, y, *k), y)


def main() -> None:
    y0 = np.array([1.0, 0.0, 0.0])
    for label, jacobian in [("finite differences", None), ("duals (exact)", jac)]:
        sol = solve_ivp(
            rober, (0.0, 1e5), y0, method="BDF", args=K, jac=jacobian, rtol=1e-8, atol=1e-10
        )
        print(
            f"{label:20s} success={sol.success}  y(1e5) = {sol.y[:, -1]}  "
            f"rhs evaluations {sol.nfev:4d}  jacobians {sol.njev:3d}"
        )
    print("Jacobian at y0:\n", jac(0.0, y0, *K))


if __name__ == "__main__":
    main()
