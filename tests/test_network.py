"""The network a rendezvous needs, checked before any torchrun starts."""

import pytest

from preflight import netcheck, once, transport
from preflight.checks import network
from preflight.findings import require

pytestmark = [pytest.mark.network, pytest.mark.nccl]


@pytest.fixture(scope="session")
def cluster_addresses(cluster):
    return {n.name: transport.resolve(cluster, n).hostname for n in cluster.nodes}


@pytest.fixture(scope="session")
def reachability(cluster, pytestconfig):
    """One listener on the master, one connect per worker: once per run, not per worker."""
    return once.once(pytestconfig.rootpath / pytestconfig.getoption("report_dir"),
                     "master-port", lambda: netcheck.master_reachable(cluster, cluster.nodes))


def test_network_names_resolve(node, facts, cluster_addresses):
    require(network.names_resolve(node, facts, cluster_addresses))


def test_network_interfaces_up(node, facts, cluster):
    require(network.interfaces_up(node, facts, cluster))


def test_network_master_port_reachable(node, facts, cluster, reachability):
    require(network.master_port(node, cluster, reachability))
