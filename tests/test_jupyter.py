"""Jupyter: the env's kernel is registered; no server is open to the network without auth."""

import pytest

from preflight.checks import jupyter
from preflight.checks.findings import require

pytestmark = [pytest.mark.jupyter, pytest.mark.reads("jupyter")]


@pytest.fixture
def jupyter_facts(cluster, facts):
    if not cluster.jupyter.check:
        pytest.skip("jupyter.check is false in cluster.yaml")
    return facts


def test_jupyter_kernel_registered(node, jupyter_facts, cluster):
    require(jupyter.kernel_registered(node, jupyter_facts, cluster))


def test_jupyter_not_exposed_without_auth(node, jupyter_facts):
    require(jupyter.not_exposed(node, jupyter_facts))
