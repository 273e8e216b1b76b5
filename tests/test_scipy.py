"""duals.scipy: the adapters with every SciPy method they serve, against hand-written ones."""

import doctest
import math
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("scipy")

from scipy.integrate import solve_ivp  # noqa: E402
from scipy.optimize import (  # noqa: E402
    least_squares,
    minimize,
    root,
    rosen,
    rosen_der,
    rosen_hess,
    rosen_hess_prod,
)

import duals  # noqa: E402
import duals.scipy as ds  # noqa: E402


def assert_float64(a, shape):
    assert type(a) is np.ndarray
    assert a.dtype == np.float64
    assert a.shape == shape


# ------------------------------------------------------------------------------------------------
# Import
# ------------------------------------------------------------------------------------------------


def test_importing_duals_does_not_import_scipy():
    code = (
        "import sys, duals\n"
        "assert 'scipy' not in sys.modules and 'duals.scipy' not in sys.modules\n"
        "sys.modules['scipy'] = None  # SciPy unavailable from here on\n"
        "import numpy as np\n"
        "jac = duals.scipy.ode_jacobian(lambda t, y: -y ** 2, [1.0, 2.0])\n"
        "print(jac(0.0, np.array([1.0, 2.0])).tolist())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[[-2.0, -0.0], [-0.0, -4.0]]"


def test_lazy_attribute():
    assert duals.scipy is ds
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        duals.nonesuch  # noqa: B018


def test_docstring_examples():
    assert ds.__doc__ and all(
        f.__doc__ and "Examples" in f.__doc__
        for f in (ds.ode_jacobian, ds.minimize_derivatives, ds.least_squares_jacobian)
    )
    assert "Examples" in ds.root_jacobian.__doc__
    result = doctest.testmod(ds, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10
    assert result.failed == 0


# ------------------------------------------------------------------------------------------------
# solve_ivp
# ------------------------------------------------------------------------------------------------

K = (0.04, 3e7, 1e4)


def rober(t, y, k1, k2, k3):
    return np.array(
        [
            -k1 * y[0] + k3 * y[1] * y[2],
            k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
            k2 * y[1] ** 2,
        ]
    )


def rober_jac(t, y, k1, k2, k3):
    return np.array(
        [
            [-k1, k3 * y[2], k3 * y[1]],
            [k1, -k3 * y[2] - 2.0 * k2 * y[1], -k3 * y[1]],
            [0.0, 2.0 * k2 * y[1], 0.0],
        ]
    )


def same_solution(a, b, rtol=1e-9, atol=1e-13):
    assert a.success and b.success, (a.message, b.message)
    assert a.y.shape == b.y.shape
    np.testing.assert_allclose(a.t, b.t, rtol=rtol, atol=0.0)
    np.testing.assert_allclose(a.y, b.y, rtol=rtol, atol=atol)


@pytest.mark.parametrize("method", ["BDF", "Radau", "LSODA"])
def test_ode_methods(method):
    y0 = np.array([1.0, 0.0, 0.0])
    jac = ds.ode_jacobian(rober, y0, args=K)
    kw = dict(method=method, args=K, rtol=1e-8, atol=1e-12)
    ours = solve_ivp(rober, (0.0, 40.0), y0, jac=jac, **kw)
    ref = solve_ivp(rober, (0.0, 40.0), y0, jac=rober_jac, **kw)
    same_solution(ours, ref)
    assert ours.njev > 0
    assert ours.njev == ref.njev and ours.nfev == ref.nfev
    assert len(jac.cache) == 1 and jac.cache.compiles == 1  # same args: never compiled again


def test_ode_jacobian_values_and_types():
    jac = ds.ode_jacobian(rober, [1, 0, 0], args=K)
    assert jac.__doc__ and jac.__name__ == "rober_jac"
    rng = np.random.default_rng(1)
    for _ in range(5):
        y = rng.random(3)
        J = jac(rng.random(), y, *K)
        assert_float64(J, (3, 3))
        assert J.flags.c_contiguous
        np.testing.assert_allclose(J, rober_jac(0.0, y, *K), rtol=1e-15, atol=0.0)
    # called without args, jac uses those given to the adapter
    np.testing.assert_array_equal(jac(0.0, y), jac(0.0, y, *K))


def test_ode_args_compiled_once_per_value():
    y0 = np.array([1.0, 0.0, 0.0])
    jac = ds.ode_jacobian(rober, y0, args=K)
    y = np.array([0.9, 2e-5, 0.1])
    k2 = (0.05, 2e7, 2e4)
    np.testing.assert_allclose(jac(0.0, y, *k2), rober_jac(0.0, y, *k2), rtol=1e-15)
    assert jac.cache.compiles == 2
    # equal values in new objects reuse the compiled function
    np.testing.assert_allclose(jac(0.0, y, *K), rober_jac(0.0, y, *K), rtol=1e-15)
    jac(0.0, y, *tuple(float(k) for k in k2))
    assert jac.cache.compiles == 2 and len(jac.cache) == 2
    sol = solve_ivp(rober, (0.0, 10.0), y0, method="BDF", args=k2, jac=jac, rtol=1e-8, atol=1e-12)
    ref = solve_ivp(
        rober, (0.0, 10.0), y0, method="BDF", args=k2, jac=rober_jac, rtol=1e-8, atol=1e-12
    )
    same_solution(sol, ref)
    assert jac.cache.compiles == 2
    assert jac.cache.compiled(k2) is not jac.cache.compiled(K)


def test_ode_array_args_by_value():
    def linear(t, y, A):
        return A @ y

    A = np.array([[-2.0, 1.0], [1.0, -3.0]])
    jac = ds.ode_jacobian(linear, [1.0, 1.0], args=(A,))
    y = np.array([0.3, 0.7])
    np.testing.assert_array_equal(jac(0.0, y, A), A)
    A *= 10.0  # changed in place: a new value
    np.testing.assert_array_equal(jac(0.0, y, A), A)
    assert jac.cache.compiles == 2
    jac(0.0, y, A.copy())
    assert jac.cache.compiles == 2


def test_ode_time_dependent():
    def fun(t, y):
        return np.array([-(1.0 + t) * y[0] ** 2 + np.sin(t) * y[1], -np.exp(-t) * y[0] * y[1]])

    def fun_jac(t, y):
        return np.array(
            [[-2.0 * (1.0 + t) * y[0], np.sin(t)], [-np.exp(-t) * y[1], -np.exp(-t) * y[0]]]
        )

    y0 = np.array([1.0, 0.5])
    jac = ds.ode_jacobian(fun, y0, t0=0.0)
    for t in (0.0, 0.7, 3.0):
        np.testing.assert_allclose(jac(t, y0), fun_jac(t, y0), rtol=1e-15, atol=1e-300)
    for method in ("BDF", "Radau", "LSODA"):
        kw = dict(method=method, rtol=1e-10, atol=1e-12)
        same_solution(
            solve_ivp(fun, (0.0, 5.0), y0, jac=jac, **kw),
            solve_ivp(fun, (0.0, 5.0), y0, jac=fun_jac, **kw),
        )


def test_ode_branch_on_t_is_retraced():
    def fun(t, y):
        if t < 1.0:
            return -(y**2)
        return -3.0 * y**3

    jac = ds.ode_jacobian(fun, [1.0, 2.0])
    y = np.array([1.0, 2.0])
    np.testing.assert_array_equal(jac(0.5, y), np.diag(-2.0 * y))
    np.testing.assert_array_equal(jac(2.0, y), np.diag(-9.0 * y**2))
    np.testing.assert_array_equal(jac(0.0, y), np.diag(-2.0 * y))
    assert jac.cache.compiles == 1


def test_ode_one_state():
    jac = ds.ode_jacobian(lambda t, y: -2.0 * y[0] * t, 1.0, t0=1.0)  # scalar out, scalar y0
    assert_float64(jac(3.0, np.array([5.0])), (1, 1))
    assert jac(3.0, np.array([5.0]))[0, 0] == -6.0
    sol = solve_ivp(lambda t, y: -2.0 * y * t, (0.0, 2.0), [1.0], method="Radau", jac=jac)
    assert sol.success
    np.testing.assert_allclose(sol.y[0, -1], np.exp(-4.0), rtol=1e-2)


def test_ode_errors():
    with pytest.raises(TypeError, match="callable"):
        ds.ode_jacobian("rober", [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="one-dimensional.*shape \\(2, 2\\)"):
        ds.ode_jacobian(lambda t, y: y, np.ones((2, 2)))
    with pytest.raises(TypeError, match="complex"):
        ds.ode_jacobian(lambda t, y: y, [1j, 0.0])
    with pytest.raises(ValueError, match="returned shape \\(1,\\).*dy/dt of shape \\(2,\\)"):
        ds.ode_jacobian(lambda t, y: y[:1], [1.0, 2.0])
    jac = ds.ode_jacobian(rober, [1.0, 0.0, 0.0], args=K)
    with pytest.raises(ValueError, match="y has shape \\(4,\\).*y0 of shape \\(3,\\)"):
        jac(0.0, np.ones(4), *K)
    with pytest.raises(TypeError):  # fun's own error, unchanged: args missing
        ds.ode_jacobian(rober, [1.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="lose its derivative") as info:
        ds.ode_jacobian(lambda t, y: -math.exp(-t) * y, [1.0, 2.0])
    if sys.version_info >= (3, 11):
        assert "np.exp(t), not math.exp(t)" in " ".join(info.value.__notes__)
    with pytest.raises(TypeError, match="y must be real numbers; got dtype complex128"):
        jac(0.0, np.ones(3, dtype=complex), *K)


# ------------------------------------------------------------------------------------------------
# minimize
# ------------------------------------------------------------------------------------------------


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


EXPECTED_KEYS = {
    "Newton-CG": ["hessp", "jac"],
    "trust-ncg": ["hessp", "jac"],
    "trust-krylov": ["hessp", "jac"],
    "trust-exact": ["hess", "jac"],
    "dogleg": ["hess", "jac"],
    "trust-constr": ["hess", "jac"],
    "BFGS": ["jac"],
    "L-BFGS-B": ["jac"],
    "CG": ["jac"],
    "SLSQP": ["jac"],
    "TNC": ["jac"],
    None: ["jac"],
}
# Tight tolerances, so that both runs end at the minimum to the same digits.
OPTIONS = {
    "Newton-CG": {"xtol": 1e-12},
    "trust-ncg": {"gtol": 1e-10},
    "trust-krylov": {"gtol": 1e-9},  # at 1e-10 trlib fails with SciPy's derivatives too
    "trust-exact": {"gtol": 1e-10},
    "dogleg": {"gtol": 1e-10},
    "trust-constr": {"gtol": 1e-12, "xtol": 1e-14},
    "BFGS": {"gtol": 1e-10},
    "L-BFGS-B": {"gtol": 1e-12, "ftol": 1e-15},
    "CG": {"gtol": 1e-10},
    "SLSQP": {"ftol": 1e-14},
    "TNC": {"maxfun": 2000, "ftol": 1e-15, "xtol": 1e-12, "gtol": 1e-12},
    None: {"gtol": 1e-10},
}


@pytest.mark.parametrize("method", list(EXPECTED_KEYS), ids=str)
def test_minimize_methods(method):
    # dogleg needs a positive definite Hessian all along: start on the convex side
    x0 = np.full(5, 1.2 if method == "dogleg" else 0.5)
    d = ds.minimize_derivatives(rosenbrock, x0, method=method)
    assert sorted(d) == EXPECTED_KEYS[method]
    ref_derivs = {"jac": rosen_der, "hess": rosen_hess, "hessp": rosen_hess_prod}
    ref = {k: ref_derivs[k] for k in d}
    opts = OPTIONS[method]
    ours = minimize(rosenbrock, x0, method=method, options=opts, **d)
    theirs = minimize(rosen, x0, method=method, options=opts, **ref)
    assert ours.success and theirs.success, (ours.message, theirs.message)
    np.testing.assert_allclose(ours.x, theirs.x, rtol=0.0, atol=5e-7)
    np.testing.assert_allclose(ours.x, 1.0, atol=1e-6)
    assert d["jac"].cache.compiles == 1


def test_minimize_derivative_values_and_types():
    n = 7
    d = ds.minimize_derivatives(rosenbrock, np.zeros(n), method="trust-constr")
    d.update(ds.minimize_derivatives(rosenbrock, np.zeros(n), method="trust-ncg"))
    rng = np.random.default_rng(2)
    for _ in range(3):
        x, p = rng.standard_normal(n), rng.standard_normal(n)
        g, H, Hp = d["jac"](x), d["hess"](x), d["hessp"](x, p)
        assert_float64(g, (n,))
        assert_float64(H, (n, n))
        assert_float64(Hp, (n,))
        np.testing.assert_allclose(g, rosen_der(x), rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(H, rosen_hess(x), rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(Hp, rosen_hess_prod(x, p), rtol=1e-13, atol=1e-11)
    for k in ("jac", "hess", "hessp"):
        assert d[k].__doc__ and d[k].__name__ == f"rosenbrock_{k}"


def quartic(x, c, w):
    return np.sum(w * (x - c) ** 4 + (x - c) ** 2)


def quartic_grad(x, c, w):
    return 4.0 * w * (x - c) ** 3 + 2.0 * (x - c)


def quartic_hess(x, c, w):
    return np.diag(12.0 * w * (x - c) ** 2 + 2.0)


@pytest.mark.parametrize("method", ["trust-exact", "Newton-CG", "BFGS"])
def test_minimize_args(method):
    x0 = np.zeros(4)
    c1 = np.array([1.0, -2.0, 0.5, 3.0])
    d = ds.minimize_derivatives(quartic, x0, args=(c1, 0.5), method=method)
    ref = {
        "jac": quartic_grad,
        "hess": quartic_hess,
        "hessp": lambda x, p, c, w: quartic_hess(x, c, w) @ p,
    }
    for c in (c1, 2.0 * c1, c1):  # a second value of the args, then the first again
        ours = minimize(quartic, x0, args=(c, 0.5), method=method, **d)
        theirs = minimize(quartic, x0, args=(c, 0.5), method=method, **{k: ref[k] for k in d})
        assert ours.success and theirs.success
        np.testing.assert_allclose(ours.x, theirs.x, rtol=0.0, atol=1e-9)
        np.testing.assert_allclose(ours.x, c, atol=1e-4)
    assert d["jac"].cache.compiles == 2 and len(d["jac"].cache) == 2


def test_minimize_one_element_objective():
    def f(x):
        return np.array([rosenbrock(x)])  # SciPy accepts one-element arrays

    d = ds.minimize_derivatives(f, np.zeros(3), method="trust-exact")
    res = minimize(f, np.zeros(3), method="trust-exact", **d)
    assert res.success
    np.testing.assert_allclose(res.x, 1.0, atol=1e-4)


def test_minimize_method_names():
    assert sorted(ds.minimize_derivatives(rosenbrock, np.zeros(3), method="NEWTON-cg")) == [
        "hessp",
        "jac",
    ]
    for m in ("Nelder-Mead", "Powell", "COBYLA", "COBYQA"):
        assert ds.minimize_derivatives(rosenbrock, np.zeros(3), method=m) == {}
    res = minimize(
        rosenbrock,
        np.zeros(2),
        method="Nelder-Mead",
        **ds.minimize_derivatives(rosenbrock, np.zeros(2), method="Nelder-Mead"),
    )  # no warning that jac is unused
    assert res.success

    def custom(fun, x0, args, jac, hess, hessp, **kw):
        from scipy.optimize import OptimizeResult

        x = x0.copy()
        for _ in range(30):
            x = x - np.linalg.solve(hess(x, *args), jac(x, *args))
        np.testing.assert_allclose(hessp(x, x, *args), hess(x, *args) @ x, rtol=1e-12)
        return OptimizeResult(x=x, success=True, fun=fun(x, *args))

    d = ds.minimize_derivatives(rosenbrock, np.zeros(3), method=custom)
    assert sorted(d) == ["hess", "hessp", "jac"]
    res = minimize(rosenbrock, np.full(3, 0.9), method=custom, **d)
    np.testing.assert_allclose(res.x, 1.0, atol=1e-12)


def test_minimize_errors():
    with pytest.raises(ValueError, match="unknown minimize method 'newton'.*trust-exact.*slsqp"):
        ds.minimize_derivatives(rosenbrock, np.zeros(3), method="newton")
    with pytest.raises(ValueError, match="unknown minimize method"):
        ds.minimize_derivatives(rosenbrock, np.zeros(3), method=3)
    with pytest.raises(ValueError, match="returned an array of shape \\(3,\\).*scalar"):
        ds.minimize_derivatives(lambda x: x**2, np.zeros(3))
    with pytest.raises(ValueError, match="one-dimensional.*\\(2, 2\\)"):
        ds.minimize_derivatives(rosenbrock, np.zeros((2, 2)))
    with pytest.raises(TypeError, match="would lose its derivative"):  # at once, not later
        ds.minimize_derivatives(lambda x: np.sum(x**2) * int(x[0]), np.ones(2))
    d = ds.minimize_derivatives(rosenbrock, np.zeros(3), method="trust-ncg")
    with pytest.raises(ValueError, match="x has shape \\(4,\\).*x0 of shape \\(3,\\)"):
        d["jac"](np.zeros(4))
    with pytest.raises(ValueError, match="p has shape \\(2,\\).*shape \\(3,\\)"):
        d["hessp"](np.zeros(3), np.zeros(2))


# ------------------------------------------------------------------------------------------------
# least_squares
# ------------------------------------------------------------------------------------------------

T = np.linspace(0.0, 4.0, 30)
DATA = 2.5 * np.exp(-1.3 * T) + 0.5 + 0.01 * np.cos(7.0 * T)


def decay(p, t, y):
    return p[0] * np.exp(-p[1] * t) + p[2] - y


def decay_jac(p, t, y):
    e = np.exp(-p[1] * t)
    return np.stack([e, -p[0] * t * e, np.ones_like(t)], axis=1)


@pytest.mark.parametrize("method", ["trf", "dogbox", "lm"])
def test_least_squares_methods(method):
    p0 = np.array([1.0, 1.0, 0.0])
    jac = ds.least_squares_jacobian(decay, p0, args=(T, DATA))
    kw = dict(args=(T, DATA), method=method, xtol=1e-14, ftol=1e-14, gtol=1e-14)
    ours = least_squares(decay, p0, jac=jac, **kw)
    theirs = least_squares(decay, p0, jac=decay_jac, **kw)
    assert ours.success and theirs.success
    np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-12)
    np.testing.assert_allclose(ours.jac, theirs.jac, rtol=1e-12, atol=1e-15)
    assert jac.cache.compiles == 1


def test_least_squares_jacobian_types_args_kwargs():
    p = np.array([2.0, 0.7, 0.1])
    jac = ds.least_squares_jacobian(decay, p, args=(T, DATA))
    J = jac(p, T, DATA)
    assert_float64(J, (30, 3))
    np.testing.assert_allclose(J, decay_jac(p, T, DATA), rtol=1e-15, atol=1e-300)
    t2 = np.linspace(0.0, 1.0, 5)
    assert_float64(jac(p, t2, t2), (5, 3))  # other args: other residual count
    np.testing.assert_allclose(jac(p, t2, t2), decay_jac(p, t2, t2), rtol=1e-15)
    assert jac.cache.compiles == 2

    def scaled(p, t, y, scale=1.0):
        return scale * decay(p, t, y)

    jac = ds.least_squares_jacobian(scaled, p, args=(T, DATA), kwargs={"scale": 3.0})
    np.testing.assert_allclose(jac(p, T, DATA, scale=3.0), 3.0 * decay_jac(p, T, DATA))
    np.testing.assert_allclose(jac(p, T, DATA, scale=-1.0), -decay_jac(p, T, DATA))
    res = least_squares(
        scaled, p, jac=jac, args=(T, DATA), kwargs={"scale": 3.0}, method="trf", xtol=1e-14
    )
    assert res.success
    np.testing.assert_allclose(
        res.x, least_squares(decay, p, jac=decay_jac, args=(T, DATA), xtol=1e-14).x, rtol=1e-10
    )

    # a scalar residual: (1, n)
    jac1 = ds.least_squares_jacobian(lambda x: x[0] ** 2 + 3.0 * x[1], np.ones(2))
    J1 = jac1(np.array([2.0, 5.0]))
    assert_float64(J1, (1, 2))
    np.testing.assert_array_equal(J1, [[4.0, 3.0]])
    res = least_squares(lambda x: x[0] ** 2 + 3.0 * x[1] - 1.0, np.ones(2), jac=jac1)
    assert res.success


def test_least_squares_errors():
    with pytest.raises(ValueError, match="shape \\(2, 2\\).*one-dimensional array of residuals"):
        ds.least_squares_jacobian(lambda x: x[:, None] * x[None, :], np.ones(2))
    jac = ds.least_squares_jacobian(decay, np.ones(3), args=(T, DATA))
    with pytest.raises(ValueError, match="x has shape \\(2,\\)"):
        jac(np.ones(2), T, DATA)


# ------------------------------------------------------------------------------------------------
# root
# ------------------------------------------------------------------------------------------------


def system(x, a):
    return np.array(
        [x[0] + 0.5 * (x[0] - x[1]) ** 3 - a, 0.5 * (x[1] - x[0]) ** 3 + x[1], np.sin(x[2]) - 0.3]
    )


def system_jac(x, a):
    d = 1.5 * (x[0] - x[1]) ** 2
    return np.array([[1.0 + d, -d, 0.0], [-d, 1.0 + d, 0.0], [0.0, 0.0, np.cos(x[2])]])


@pytest.mark.parametrize("method", ["hybr", "lm"])
def test_root_methods(method):
    x0 = np.zeros(3)
    jac = ds.root_jacobian(system, x0, args=(1.0,))
    for a in (1.0, 2.0):
        ours = root(system, x0, args=(a,), jac=jac, method=method, tol=1e-12)
        theirs = root(system, x0, args=(a,), jac=system_jac, method=method, tol=1e-12)
        assert ours.success and theirs.success
        np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(system(ours.x, a), 0.0, atol=1e-12)
    assert jac.cache.compiles == 2


def test_root_jacobian_types_and_errors():
    jac = ds.root_jacobian(system, np.zeros(3), args=(1.0,))
    x = np.array([0.3, -0.2, 1.0])
    J = jac(x, 1.0)
    assert_float64(J, (3, 3))
    np.testing.assert_allclose(J, system_jac(x, 1.0), rtol=1e-15)
    assert jac.__doc__
    # x0 is flattened, as hybr and lm flatten it
    jac2 = ds.root_jacobian(lambda x: x**3, np.ones((2, 1)))
    assert_float64(jac2(np.array([1.0, 2.0])), (2, 2))
    with pytest.raises(ValueError, match="shape \\(2, 2\\)"):
        ds.root_jacobian(lambda x: x[:, None] * x[None, :], np.ones(2))
    with pytest.raises(ValueError, match="x has shape \\(4,\\)"):
        jac(np.ones(4), 1.0)


# ------------------------------------------------------------------------------------------------
# Functions the tape cannot record: the eager functions, with the same results
# ------------------------------------------------------------------------------------------------


def test_untraceable_function_uses_eager_mode():
    w = np.array([1.0, 2.0, 3.0])

    def f(x):
        return np.sum(np.sort(x) * w) + np.sum(x**3)

    x = np.array([0.3, -0.2, 0.5])
    d = ds.minimize_derivatives(f, x, method="trust-exact")
    np.testing.assert_allclose(d["jac"](x), [2.0 + 0.27, 1.0 + 0.12, 3.0 + 0.75], rtol=1e-15)
    np.testing.assert_allclose(d["hess"](x), np.diag(6.0 * x), rtol=1e-15)
    assert_float64(d["hess"](x), (3, 3))

    def h(x):  # its minimum, at sort(x) = -cbrt(v / 4), is where h is smooth
        return np.sum(np.sort(x) * v) + np.sum(x**4)

    v = w[::-1]
    x0 = np.array([0.1, 0.5, -0.4])
    d = ds.minimize_derivatives(h, x0, method="Newton-CG")
    res = minimize(h, x0, method="Newton-CG", options={"xtol": 1e-10}, **d)
    assert res.success
    np.testing.assert_allclose(np.sort(res.x), -np.cbrt(v / 4.0), rtol=1e-8)

    def residuals(p):
        return np.sort(p) ** 2

    jac = ds.least_squares_jacobian(residuals, np.array([2.0, 1.0]))
    np.testing.assert_array_equal(jac(np.array([2.0, 1.0])), [[0.0, 2.0], [4.0, 0.0]])


def test_retrace_into_untraceable_branch():
    def g(x):
        if x[0] > 0:
            return np.sum(x**2)
        return 2.0 * np.sum(np.sort(x) ** 2)

    d = ds.minimize_derivatives(g, np.array([1.0, 2.0]), method="trust-ncg")
    x, y = np.array([1.0, 2.0]), np.array([-1.0, 2.0])
    np.testing.assert_array_equal(d["jac"](x), 2.0 * x)
    np.testing.assert_array_equal(d["jac"](y), 4.0 * y)  # retraced: sort, so eager from here
    np.testing.assert_array_equal(d["jac"](x), 2.0 * x)
    np.testing.assert_array_equal(d["hessp"](y, np.ones(2)), [4.0, 4.0])
    assert d["jac"].cache.compiles == 1


# ------------------------------------------------------------------------------------------------
# The cache
# ------------------------------------------------------------------------------------------------


def test_cache_keys_and_bound(monkeypatch):
    monkeypatch.setattr(ds, "MAX_COMPILED", 3)

    class Params:  # an object the cache keys by identity
        def __init__(self, k):
            self.k = k

    def f(x, p):
        return np.sum(p.k * x**2)

    ps = [Params(float(k)) for k in range(1, 6)]
    d = ds.minimize_derivatives(f, np.ones(2), args=(ps[0],))
    x = np.array([1.0, 2.0])
    for p in ps:
        np.testing.assert_array_equal(d["jac"](x, p), 2.0 * p.k * x)
    assert d["jac"].cache.compiles == 5 and len(d["jac"].cache) == 3
    d["jac"](x, ps[-1])
    assert d["jac"].cache.compiles == 5
    d["jac"](x, ps[0])  # dropped (least recently used): compiled again
    assert d["jac"].cache.compiles == 6

    # numbers are keyed by type and value: 1 and 1.0 are different keys, nan equals nan
    g = ds.minimize_derivatives(lambda x, a: np.sum(a * x**2), np.ones(2), args=(1.0,))["jac"]
    g(x, 1.0)
    g(x, 1)
    g(x, np.float64(1.0))
    assert g.cache.compiles == 3
    g(x, float("nan"))
    g(x, float("nan"))
    assert g.cache.compiles == 4


def test_repeated_scalar_args_reuse_the_compiled_function_by_identity():
    import duals.scipy as ds

    def rober(t, y, k1, k2, k3):
        return np.array(
            [
                -k1 * y[0] + k3 * y[1] * y[2],
                k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
                k2 * y[1] ** 2,
            ]
        )

    k = (0.04, 3e7, 1e4)
    jac = ds.ode_jacobian(rober, [1.0, 0.0, 0.0], args=k)
    y = np.array([0.98, 2e-5, 0.02])
    a = jac(0.0, y, *k)
    b = jac(0.0, y, float("0.05"), 3e7, 1e4)  # other values: another compile
    c = jac(0.0, y, *k)  # the same objects again
    d = jac(0.0, y, float("0.04"), 3e7, 1e4)  # equal values, other objects: the same entry
    assert a[0, 0] == c[0, 0] == d[0, 0] == -0.04 and b[0, 0] == -0.05
    assert jac.cache.compiles == 2
