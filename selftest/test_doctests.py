"""The examples in the library's docstrings run, so they stay true."""

import doctest
import importlib
import pkgutil

import pytest

import preflight
import preflight.checks

MODULES = sorted(
    f"{package.__name__}.{info.name}"
    for package in (preflight, preflight.checks)
    for info in pkgutil.iter_modules(package.__path__)
    if not info.ispkg and info.name not in ("__main__",))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0
