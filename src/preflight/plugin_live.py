"""The plugin's session fixtures for cluster-wide work that goes back to live nodes: the
master-port check, the collective and its pairwise rounds. (The node-to-node logins are
made inside each node's probe: pytest_plugin's ssh_logins reads them from the facts.)

Each runs once per test run whichever xdist worker asks first (live/once.py), through
the run's launcher, over one set of nodes: the selected nodes the probe reached. Nodes
it could not reach take part as "not checked", never as fine. A replay (--facts) never
contacts a node: these skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight import runstate
from preflight.config.inventory import Cluster
from preflight.live import nccl, netcheck, once

# The master-port check listens on the port the collective's rendezvous binds: on two
# xdist workers they ran at once and the collective failed with EADDRINUSE.
MASTER_PORT = "master-port-in-use"


def _nodes(config: pytest.Config) -> list:
    return config.stash[runstate.NODES]


def _unreachable(config: pytest.Config) -> dict[str, str]:
    gathered = config.stash[runstate.FACTS]
    return {n.name: gathered[n.name]["reach"]["reason"] or "unreachable"
            for n in _nodes(config) if not gathered[n.name]["reach"]["ok"]}


def _reached(config: pytest.Config) -> list:
    unreachable = _unreachable(config)
    return [n for n in _nodes(config) if n.name not in unreachable]


def _once(config: pytest.Config, key: str, compute, shared: str | None = None) -> dict:
    if config.getoption("facts"):
        pytest.skip("replayed facts (--facts): this check needs live nodes")
    return once.once(Path(config.rootpath) / config.getoption("report_dir"), key,
                     config.stash[runstate.STATE].run_id, compute, shared)


def _launcher(config: pytest.Config):
    return config.stash[runstate.LAUNCHER]


@pytest.fixture(scope="session")
def master_port(cluster: Cluster, pytestconfig: pytest.Config) -> dict:
    """One listener on the master, every reached worker connecting at once."""
    nodes = _reached(pytestconfig)
    return _once(pytestconfig, "master-port",
                 lambda: netcheck.master_reachable(cluster, _launcher(pytestconfig), nodes),
                 shared=MASTER_PORT)


@pytest.fixture(scope="session")
def collective(cluster: Cluster, pytestconfig: pytest.Config) -> dict:
    """One torchrun per reached node (the unreachable ones error on their own)."""
    nodes = _reached(pytestconfig)
    if len(nodes) < 2:
        pytest.skip("fewer than 2 reachable nodes: nothing to run a collective across")
    return _once(pytestconfig, "nccl", lambda: nccl.run(
        cluster, _launcher(pytestconfig), nccl.plan_all(cluster, nodes)), shared=MASTER_PORT)


@pytest.fixture(scope="session")
def collective_pairs(cluster: Cluster, pytestconfig: pytest.Config) -> dict:
    if not pytestconfig.getoption("pairwise"):
        pytest.skip("pairwise mode is off (nox -s nccl -- --pairwise)")
    nodes = _reached(pytestconfig)
    return _once(pytestconfig, "nccl-pairwise",
                 lambda: nccl.pairwise(cluster, _launcher(pytestconfig), nodes),
                 shared=MASTER_PORT)
