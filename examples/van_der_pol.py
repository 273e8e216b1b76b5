"""The stiff Van der Pol oscillator (mu = 1000) with BDF and Radau and exact Jacobians.

    y0' = y1,    y1' = mu (1 - y0**2) y1 - y0

Without `jac`, SciPy estimates the Jacobian by finite differences (n extra right-hand side
evaluations each time); `duals.scipy.ode_jacobian` gives the exact one from the same code. The
second part makes the damping depend on time, mu(t) = mu (1 + sin(t / 50) / 2): `t` is traced
as an input, so the Jacobian follows it.

Run:  python examples/van_der_pol.py   (needs SciPy)
"""

import numpy as np
from scipy.integrate import solve_ivp

import duals.scipy

MU = 1000.0
Y0 = np.array([2.0, 0.0])
T_SPAN = (0.0, 3000.0)


def vdp(t, y, mu):
    return np.array([y[1], mu * (1.0 - y[0] ** 2) * y[1] - y[0]])


def vdp_jac(t, y, mu):
    return np.array([[0.0, 1.0], [-2.0 * mu * y[0] * y[1] - 1.0, mu * (1.0 - y[0] ** 2)]])


def vdp_t(t, y, mu):
    """Time-varying damping."""
    m = mu * (1.0 + 0.5 * np.sin(t / 50.0))
    return np.array([y[1], m * (1.0 - y[0] ** 2) * y[1] - y[0]])


def vdp_t_jac(t, y, mu):
    m = mu * (1.0 + 0.5 * np.sin(t / 50.0))
    return np.array([[0.0, 1.0], [-2.0 * m * y[0] * y[1] - 1.0, m * (1.0 - y[0] ** 2)]])


def counted(fun):
    """fun, counting its calls (solve_ivp's nfev leaves out finite-difference evaluations)."""

    def f(t, y, *args):
        f.calls += 1
        return fun(t, y, *args)

    f.calls = 0
    return f


def run(label, fun, jacs):
    ok = True
    for method in ("BDF", "Radau"):
        sols, calls = {}, {}
        for name, jac in jacs.items():
            f = counted(fun)
            sols[name] = solve_ivp(
                f, T_SPAN, Y0, method=method, args=(MU,), jac=jac, rtol=1e-6, atol=1e-9
            )
            calls[name] = f.calls
        ours = sols["duals"]
        ref = sols["hand-written"]
        diff = np.max(np.abs(ours.y[:, -1] - ref.y[:, -1]))
        ok &= bool(all(s.success for s in sols.values()) and diff < 1e-6)
        print(f"{label} {method:5s} y(3000) = {ours.y[:, -1]}  |duals - hand-written| {diff:.1e}")
        for name, s in sols.items():
            print(
                f"{'':16s}{name:18s} nfev {s.nfev:5d}  njev {s.njev:3d}  rhs calls {calls[name]:5d}"
            )
    return ok


def main() -> None:
    ok = run(
        "mu=1000  ",
        vdp,
        {
            "duals": duals.scipy.ode_jacobian(vdp, Y0, args=(MU,)),
            "hand-written": vdp_jac,
            "finite differences": None,
        },
    )
    jac_t = duals.scipy.ode_jacobian(vdp_t, Y0, args=(MU,))
    y = np.array([1.5, -0.3])
    for t in (0.0, 40.0, 120.0):
        assert np.allclose(jac_t(t, y, MU), vdp_t_jac(t, y, MU), rtol=1e-14, atol=0.0)
    ok &= run("mu(t)    ", vdp_t, {"duals": jac_t, "hand-written": vdp_t_jac})
    print(f"success={ok}")


if __name__ == "__main__":
    main()
