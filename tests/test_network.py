"""The network a rendezvous needs: names, interfaces (static, per node) and the master port
(live: a listener on the master, every worker connecting), before any torchrun starts."""

import pytest

from preflight.checks import network
from preflight.checks.findings import require
from preflight.launchers import transport

pytestmark = [pytest.mark.network, pytest.mark.reads("net")]


@pytest.fixture(scope="session")
def cluster_addresses(cluster):
    return {n.name: transport.resolve(cluster, n).hostname for n in cluster.nodes}


def test_network_names_resolve(node, facts, cluster_addresses):
    require(network.names_resolve(node, facts, cluster_addresses))


def test_network_interfaces_up(node, facts, cluster):
    require(network.interfaces_up(node, facts, cluster))


@pytest.mark.nccl
def test_network_master_port_reachable(node, facts, cluster, master_port):
    require(network.master_port(node, cluster, master_port))
