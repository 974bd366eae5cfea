"""Miniconda: the base install every env stands on."""

import pytest

from preflight.checks import miniconda
from preflight.findings import require

pytestmark = pytest.mark.miniconda


def test_miniconda_prefix_exists(node, facts):
    require(miniconda.prefix_exists(node, facts))


def test_miniconda_layout_complete(node, facts):
    require(miniconda.layout(node, facts))


def test_miniconda_base_python_runs(node, facts):
    require(miniconda.base_python_runs(node, facts))


def test_miniconda_env_exists(node, facts):
    require(miniconda.env_exists(node, facts))


def test_miniconda_env_python_runs(node, facts):
    require(miniconda.env_python_runs(node, facts))


def test_miniconda_permissions_safe(node, facts):
    require(miniconda.permissions(node, facts))


def test_miniconda_conda_sh_sources(node, facts):
    require(miniconda.conda_sh_sources(node, facts))
