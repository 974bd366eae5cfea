"""The launcher interface: how the harness reaches nodes. One implementation per way
(ssh.py, slurm/launcher.py, local.py), chosen by name once per run (registry.py);
nothing outside launchers/ asks which one is in use.

A launcher gathers facts, runs one command per node under a per-node deadline (TERM,
then KILL) and says for each node its Result or why there is none, holds whatever the
run needs held (a Slurm allocation) until release(), and labels its work for reports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

from preflight.config.inventory import Cluster, Node

Work = tuple[str, str]  # a node's (command, stdin)
T = TypeVar("T")


class Session(Protocol):
    """Commands on one node in turn, each under its deadline (launchers' session())."""

    bytes_sent: int

    def run(self, command: str, timeout: float, stdin=None, kill_after: int = 2) -> Result:
        ...


@dataclass
class Result:
    """One command's run on one node."""

    command: str
    rc: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


class Launcher:
    """What every launcher does. `state` is what an xdist worker needs to act as the
    controller's launcher does (the Slurm job it holds); see as_state()."""

    name: ClassVar[str]

    def __init__(self, cluster: Cluster, state: dict | None = None) -> None:
        self.cluster = cluster
        self.held = contextlib.ExitStack()  # what release() lets go of
        self._by_name = {n.name: n for n in cluster.nodes}

    def gather(self, nodes: list[Node], runtime: bool = True) -> dict[str, dict]:
        """node name -> its facts document with `reach` (ok, reason, executions, ...)."""
        raise NotImplementedError

    def run(self, work: dict[str, Work], timeout: float, kill_after: int = 2,
            at_once: bool = False) -> dict[str, Result | str]:
        """Each node's command under `timeout` on that node (killed there, not abandoned):
        node name -> its Result, or why it could not run. at_once: every command must run
        at the same time (a collective), not within cluster.yaml's parallelism."""
        raise NotImplementedError

    def run_and_sweep(self, work: dict[str, Work], timeout: float, sweep: dict[str, Work],
                      sweep_timeout: float, *, kill_after: int = 2, at_once: bool = False,
                      ) -> tuple[dict[str, Result | str], dict[str, Result | str]]:
        """run(work), then each node's sweep (what must run there afterwards, whatever
        work's outcome: killing what escaped the deadline). Here two runs; the SSH
        launcher does both on one connection per node."""
        return (self.run(work, timeout, kill_after, at_once=at_once),
                self.run(sweep, sweep_timeout))

    def session(self, node: Node, work: Callable[[Session], T],
                unreachable: Callable[[str], T]) -> T:
        """work(session) on one node, several commands in turn (provisioning: lock,
        upload, install, unlock); unreachable(why) when the node cannot be reached."""
        raise NotImplementedError

    def label(self, names: list[str]) -> str:
        """How work over names was carried, for reports ("ssh", "slurm job 42")."""
        return self.name

    def after_run(self, results: list[dict], *, drain: bool, resume: bool) -> dict | None:
        """What the scheduler was told about the run's results (drain what failed,
        resume what we drained and now passes), or the dry-run plan; None where no
        scheduler is in play."""
        return None

    def as_state(self) -> dict:
        """JSON that rebuilds this launcher in another process (an xdist worker)."""
        return {}

    def release(self) -> None:
        """Let go of what the run held (idempotent)."""
        self.held.close()

    def node(self, name: str) -> Node:
        return self._by_name[name]

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
