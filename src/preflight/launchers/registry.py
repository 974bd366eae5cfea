"""Launchers by name (cluster.yaml's `launcher`, or `local` for node-check): the one
place that knows every implementation. A new way to reach nodes (kubectl) is a class
here and one row in LAUNCHERS."""

from __future__ import annotations

from preflight.config.inventory import Cluster
from preflight.launchers.base import Launcher
from preflight.launchers.local import LocalLauncher
from preflight.launchers.slurm.launcher import SlurmLauncher
from preflight.launchers.ssh import SshLauncher

LAUNCHERS: dict[str, type[Launcher]] = {
    "ssh": SshLauncher,
    "slurm": SlurmLauncher,
    "local": LocalLauncher,
}


def create(cluster: Cluster, name: str | None = None, state: dict | None = None) -> Launcher:
    """The launcher cluster.yaml names (or `name`), rebuilt from `state` in a worker.

    >>> sorted(LAUNCHERS)
    ['local', 'slurm', 'ssh']
    """
    return LAUNCHERS[name or cluster.launcher](cluster, state)
