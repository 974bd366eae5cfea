"""The Slurm launcher (`launcher: slurm`): the probe as one step in one allocation, held
for the run; later work over nodes that job holds runs as further steps of it. Work over
nodes it does not hold (a node we drained, probed to see whether it can be resumed) goes
over SSH, and its label says why."""

from __future__ import annotations

from collections.abc import Callable

from preflight.config.inventory import Cluster, Node
from preflight.launchers import transport
from preflight.launchers.base import Launcher, Result, Session, T, Work
from preflight.launchers.slurm import drain as drain_mod
from preflight.launchers.slurm import probe, runjob, steps
from preflight.launchers.ssh import run_and_sweep_over_ssh, run_over_ssh


class SlurmLauncher(Launcher):
    name = "slurm"

    def __init__(self, cluster: Cluster, state: dict | None = None) -> None:
        super().__init__(cluster, state)
        self.hold = runjob.Hold(self.held)
        if state and state.get("job"):
            self.hold.job = runjob.RunJob.from_dict(state["job"])

    @property
    def job(self) -> runjob.RunJob | None:
        return self.hold.job

    def gather(self, nodes: list[Node], runtime: bool = True) -> dict[str, dict]:
        return probe.gather(self.cluster, nodes, runtime, self.hold)

    def run(self, work: dict[str, Work], timeout: float, kill_after: int = 2,
            at_once: bool = False) -> dict[str, Result | str]:
        job = self.covering(list(work))
        if job is None:  # one srun step runs every node's command at once
            return run_over_ssh(self.cluster, [self.node(n) for n in work], work, timeout,
                                kill_after, at_once=at_once)
        with runjob.steps(self.cluster, job) as alloc:
            return steps.per_node(alloc, work, timeout, kill_after)

    def run_and_sweep(self, work: dict[str, Work], timeout: float, sweep: dict[str, Work],
                      sweep_timeout: float, *, kill_after: int = 2, at_once: bool = False,
                      ) -> tuple[dict[str, Result | str], dict[str, Result | str]]:
        if self.covering(list(work)) is None:
            return run_and_sweep_over_ssh(self.cluster, [self.node(n) for n in work], work,
                                          timeout, sweep, sweep_timeout,
                                          kill_after=kill_after, at_once=at_once)
        return super().run_and_sweep(work, timeout, sweep, sweep_timeout,
                                     kill_after=kill_after, at_once=at_once)

    def session(self, node: Node, work: Callable[[Session], T],
                unreachable: Callable[[str], T]) -> T:
        """Provisioning talks to one node at length: over SSH, as Slurm has no shell."""
        return transport.with_connection(self.cluster, node, work, unreachable)

    def covering(self, names: list[str]) -> runjob.RunJob | None:
        """The run's job when it holds every one of names."""
        job = self.job
        return job if job is not None and set(names) <= set(job.nodes) else None

    def label(self, names: list[str]) -> str:
        job = self.job
        if self.covering(names) is not None:
            return f"slurm job {job.job}"
        if job is None:
            return "ssh (no Slurm job held for this run)"
        outside = sorted(set(names) - set(job.nodes))
        return f"ssh (not in Slurm job {job.job}: {', '.join(outside[:8])})"

    def after_run(self, results: list[dict], *, drain: bool, resume: bool) -> dict | None:
        return drain_mod.act(self.cluster, results, drain=drain, resume=resume)

    def as_state(self) -> dict:
        return {"job": self.job.as_dict() if self.job else None}

    def release(self) -> None:
        super().release()
        self.hold.job = None
