"""The scripts in examples/ run end to end, as a new user would run them."""

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script):
    pytest.importorskip("scipy")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "success=True" in done.stdout


def test_there_are_examples():
    assert EXAMPLES, "examples/ holds no scripts"
    names = {p.name for p in EXAMPLES}
    for name in (
        "stiff_ode_jacobian.py",
        "robertson_bdf_radau.py",  # duals.scipy.ode_jacobian, BDF and Radau
        "van_der_pol.py",  # ode_jacobian, stiff, with a time-dependent variant
        "rosenbrock_minimize.py",  # minimize_derivatives: Newton-CG (hessp), trust-exact (hess)
        "curve_fit_least_squares.py",  # least_squares_jacobian
    ):
        assert name in names, f"examples/{name} is missing"
