"""Miniconda: the base install every env stands on."""

import pytest

from preflight.checks import miniconda
from preflight.checks.findings import require

pytestmark = pytest.mark.miniconda


@pytest.mark.reads("miniconda")
def test_miniconda_prefix_exists(node, facts):
    require(miniconda.prefix_exists(node, facts))


@pytest.mark.reads("miniconda")
def test_miniconda_layout_complete(node, facts):
    require(miniconda.layout(node, facts))


@pytest.mark.reads("miniconda")
def test_miniconda_base_python_runs(node, facts):
    require(miniconda.base_python_runs(node, facts))


@pytest.mark.reads("env")
def test_miniconda_env_exists(node, facts):
    require(miniconda.env_exists(node, facts))


@pytest.mark.reads("runtime")
def test_miniconda_env_python_runs(node, facts):
    require(miniconda.env_python_runs(node, facts))


@pytest.mark.reads("miniconda", "env", "node")
def test_miniconda_permissions_safe(node, facts):
    require(miniconda.permissions(node, facts))


@pytest.mark.reads("miniconda")
def test_miniconda_conda_sh_sources(node, facts):
    require(miniconda.conda_sh_sources(node, facts))
