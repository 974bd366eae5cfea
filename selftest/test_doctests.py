"""The examples in the library's docstrings run, so they stay true: every module of every
stage folder (the node-side scripts in remote/ are text for the nodes, not modules)."""

import doctest
import importlib
import pkgutil

import pytest

import preflight

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(preflight.__path__, "preflight.")
    if not info.ispkg and info.name != "preflight.__main__"
    and not info.name.startswith("preflight.remote."))


def test_every_stage_is_covered():
    folders = {name.split(".")[1] for name in MODULES if name.count(".") > 1}
    assert {"config", "launchers", "facts", "checks", "live", "report", "provision"} <= folders


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0
