"""Cluster-wide work that goes back to live nodes, as session fixtures of the plugin:
the node-to-node logins, the master-port check, the collective and its pairwise rounds.

Each runs once per test run whichever xdist worker asks first (once.py), over one set of
nodes: the selected nodes the probe reached. Nodes it could not reach take part as
"not checked", never as fine. A replay (--facts) never contacts a node: these skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.config.inventory import Cluster
from preflight.live import nccl, netcheck, once, sshmatrix


def _nodes(config: pytest.Config) -> list:
    from preflight.pytest_plugin import NODES
    return config.stash[NODES]


def _unreachable(config: pytest.Config) -> dict[str, str]:
    from preflight.pytest_plugin import FACTS
    gathered = config.stash[FACTS]
    return {n.name: gathered[n.name]["reach"]["reason"] or "unreachable"
            for n in _nodes(config) if not gathered[n.name]["reach"]["ok"]}


def _once(config: pytest.Config, key: str, compute) -> dict:
    if config.getoption("facts"):
        pytest.skip("replayed facts (--facts): this check needs live nodes")
    return once.once(Path(config.rootpath) / config.getoption("report_dir"), key, compute)


@pytest.fixture(scope="session")
def ssh_logins(cluster: Cluster, pytestconfig: pytest.Config) -> dict:
    """{"result": source -> {target: why}, "blame": node -> [...], "logins": count}."""
    mode = cluster.ssh.node_to_node
    if mode is False:
        pytest.skip("ssh.node_to_node is false in cluster.yaml")
    nodes = _nodes(pytestconfig)

    def compute() -> dict:
        edges = sshmatrix.plan([n.name for n in nodes], cluster.master.name, mode == "full")
        result = sshmatrix.matrix(cluster, nodes, edges, _unreachable(pytestconfig))
        return {"result": result, "blame": sshmatrix.blame(result),
                "logins": sshmatrix.logins(result)}
    return _once(pytestconfig, "ssh-logins", compute)


@pytest.fixture(scope="session")
def master_port(cluster: Cluster, pytestconfig: pytest.Config) -> dict:
    """One listener on the master, every reached worker connecting at once."""
    unreachable = _unreachable(pytestconfig)
    nodes = [n for n in _nodes(pytestconfig) if n.name not in unreachable]
    return _once(pytestconfig, "master-port",
                 lambda: netcheck.master_reachable(cluster, nodes))


@pytest.fixture(scope="session")
def collective(cluster: Cluster, pytestconfig: pytest.Config) -> dict:
    """One torchrun per reached node (the unreachable ones error on their own)."""
    unreachable = _unreachable(pytestconfig)
    nodes = [n for n in _nodes(pytestconfig) if n.name not in unreachable]
    if len(nodes) < 2:
        pytest.skip("fewer than 2 reachable nodes: nothing to run a collective across")
    return _once(pytestconfig, "nccl", lambda: nccl.run(cluster, nccl.plan_all(cluster, nodes)))


@pytest.fixture(scope="session")
def collective_pairs(cluster: Cluster, pytestconfig: pytest.Config) -> dict:
    if not pytestconfig.getoption("pairwise"):
        pytest.skip("pairwise mode is off (nox -s nccl -- --pairwise)")
    unreachable = _unreachable(pytestconfig)
    nodes = [n for n in _nodes(pytestconfig) if n.name not in unreachable]
    return _once(pytestconfig, "nccl-pairwise", lambda: nccl.pairwise(cluster, nodes))
