"""The cross-node collective: torchrun over every node, exact results, bus bandwidth."""

import pytest

from preflight import nccl, once
from preflight.checks import collective
from preflight.findings import require
from preflight.pytest_plugin import NODES as NODES_KEY

pytestmark = [pytest.mark.nccl, pytest.mark.slow]


def _once(config, key, compute):
    return once.once(config.rootpath / config.getoption("report_dir"), key, compute)


@pytest.fixture(scope="session")
def outcome(cluster, pytestconfig, cluster_facts):
    """One run over every reachable node (the unreachable ones error on their own)."""
    nodes = [n for n in pytestconfig.stash[NODES_KEY] if cluster_facts[n.name]["reach"]["ok"]]
    if len(nodes) < 2:
        pytest.skip("fewer than 2 reachable nodes: nothing to run a collective across")
    return _once(pytestconfig, "nccl", lambda: nccl.run(cluster, nccl.plan_all(cluster, nodes)))


@pytest.fixture(scope="session")
def pairwise(cluster, pytestconfig, cluster_facts):
    if not pytestconfig.getoption("pairwise"):
        pytest.skip("pairwise mode is off (nox -s nccl -- --pairwise)")
    nodes = [n for n in pytestconfig.stash[NODES_KEY] if cluster_facts[n.name]["reach"]["ok"]]
    return _once(pytestconfig, "nccl-pairwise", lambda: nccl.pairwise(cluster, nodes))


def test_nccl_allreduce_completes_exact(node, facts, outcome):
    require(collective.node_result(node, outcome))


def test_nccl_busbw_above_floor(node, facts, outcome, cluster):
    require(collective.busbw(node, outcome, cluster))


def test_nccl_pairwise_healthy(node, facts, pairwise):
    require(collective.pair_verdict(node, pairwise))
