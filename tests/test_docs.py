"""The examples in the docstrings of the public API run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["duals", "duals._api", "duals._compile", "duals._core"])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_protocol_lookup_of_other_attributes_fails_cleanly():
    from duals import _core

    # introspection (doctest, inspect.unwrap) asks for attributes that do not exist
    assert not hasattr(_core._protocols, "__wrapped__")
