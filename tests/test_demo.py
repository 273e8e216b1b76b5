"""``python -m duals demo``: runs, finishes quickly, and shows tiny differences."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


def _run(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "duals", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_runs_and_agrees_with_central_differences():
    r = _run("demo")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    rows = [
        line
        for line in r.stdout.splitlines()
        if re.match(r"^(derivative|gradient|Jacobian|compiled|Hessian)\s", line)
    ]
    assert [row.split()[0] for row in rows] == [
        "derivative",
        "gradient",
        "Jacobian",
        "compiled",
        "Hessian",
    ]
    for row in rows:
        m = re.search(r"\s(\d\.\de[-+]\d+)\s", row)
        assert m, row
        assert float(m.group(1)) < 1e-6, row
        assert len(re.findall(r"\d(?:\.\d)? ?(?:ns|µs|ms|s)\b", row)) == 2, row
    assert "Robertson" in r.stdout and "Rosenbrock" in r.stdout


@pytest.mark.parametrize("args", [(), ("--help",)])
def test_usage(args):
    r = _run(*args)
    assert r.returncode == 0
    assert "usage: python -m duals" in r.stdout and "demo" in r.stdout


@pytest.mark.parametrize("args", [("bogus",), ("demo", "extra")])
def test_unknown_command_fails_with_usage(args):
    r = _run(*args)
    assert r.returncode != 0
    assert "usage: python -m duals" in r.stderr
    assert "unknown command" in r.stderr
