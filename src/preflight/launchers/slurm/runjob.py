"""The run's own Slurm job: the allocation the probe got, held by the controlling process
until the run ends, so the collective, the master-port check and the login matrix run as
steps on nodes nobody else is using, without waiting in the queue again.

The Slurm launcher keeps it (Hold) and hands it to the xdist workers as its state; their
steps attach to it. Work over nodes the job does not cover (a node drained by us,
probed over SSH to see whether it can be resumed) goes over SSH instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from preflight.config.inventory import Cluster
from preflight.launchers.slurm.alloc import Allocation
from preflight.launchers.slurm.login import LoginShell


@dataclass(frozen=True)
class RunJob:
    job: str
    name: str
    nodes: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"job": self.job, "name": self.name, "nodes": list(self.nodes)}

    @classmethod
    def from_dict(cls, doc: dict) -> RunJob:
        return cls(str(doc["job"]), str(doc["name"]), tuple(doc["nodes"]))


@dataclass
class Hold:
    """What a run holds in Slurm: the stack that releases it, and the job once the probe
    got one (slurm/probe.py fills it in)."""

    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    job: RunJob | None = None


@contextlib.contextmanager
def steps(cluster: Cluster, job: RunJob) -> Iterator[Allocation]:
    """An Allocation attached to the run's job, for steps (never released here). A login
    node lost since the probe makes each step's nodes get that reason (login.py)."""
    with LoginShell(cluster, required=False) as login:
        yield Allocation.attach(login, cluster, list(job.nodes), job.job, job.name)
