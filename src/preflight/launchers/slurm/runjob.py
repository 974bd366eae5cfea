"""The run's own Slurm job: the allocation the probe got, held by the controlling process
until the run ends, so the collective, the master-port check and the login matrix run as
steps on nodes nobody else is using, without waiting in the queue again.

The controller records it here (use) and hands it to the xdist workers (workerinput);
their steps attach to it. Work over nodes the job does not cover (a node drained by us,
probed over SSH to see whether it can be resumed) goes over SSH instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

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


_CURRENT: dict[str, RunJob | None] = {"job": None}


def use(job: RunJob | None) -> None:
    _CURRENT["job"] = job


def current() -> RunJob | None:
    return _CURRENT["job"]


def covering(cluster: Cluster, names: list[str]) -> RunJob | None:
    """The run's job when Slurm is the launcher and the job holds every one of names."""
    job = current()
    if job is None or cluster.launcher != "slurm" or not set(names) <= set(job.nodes):
        return None
    return job


def why_not(names: list[str]) -> str:
    """Why work over names goes over SSH although Slurm is the launcher."""
    job = current()
    if job is None:
        return "ssh (no Slurm job held for this run)"
    outside = sorted(set(names) - set(job.nodes))
    return f"ssh (not in Slurm job {job.job}: {', '.join(outside[:8])})"


@contextlib.contextmanager
def steps(cluster: Cluster, job: RunJob) -> Iterator[Allocation]:
    """An Allocation attached to the run's job, for steps (never released here). A login
    node lost since the probe makes each step's nodes get that reason (login.py)."""
    with LoginShell(cluster, required=False) as login:
        yield Allocation.attach(login, cluster, list(job.nodes), job.job, job.name)
