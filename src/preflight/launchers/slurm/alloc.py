"""Node states, one allocation held by a live salloc, and job steps inside it.

salloc runs on the login node with a command that ends when its stdin closes: when the
harness finishes, crashes or loses its SSH connection, the allocation is released at once
(and were salloc itself killed, Slurm's InactiveLimit ends the job). Steps run as
`srun --jobid` inside it, one task per node, each line labelled with its task.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ClusterShell.NodeSet import NodeSet

from preflight.config.inventory import Cluster
from preflight.core.nodetext import one_line
from preflight.launchers.slurm.login import Held, LoginShell

# sinfo %T states in which a node takes no job (a trailing * means "not responding")
UNUSABLE = ("down", "drain", "fail", "maint", "unknown", "future", "reboot", "power",
            "inval", "planned", "no_respond", "not_responding")


@dataclass(frozen=True)
class NodeState:
    name: str
    state: str
    reason: str

    @property
    def unusable(self) -> str | None:
        """Why Slurm will not run our step there, or None."""
        if self.state.endswith("*") or any(self.state.startswith(s) for s in UNUSABLE):
            why = f" ({self.reason})" if self.reason and self.reason != "none" else ""
            return f"Slurm reports {self.name} as {self.state}{why}"
        return None


def hostlist(names: list[str]) -> str:
    return str(NodeSet.fromlist(names))


def node_states(login: LoginShell, names: list[str], timeout: float = 30) -> dict[str, NodeState]:
    """Slurm's view of these nodes; a name Slurm does not know is absent."""
    done = login.run(f"sinfo -h -N -n {shlex.quote(hostlist(names))} -o '%N|%T|%E'", timeout)
    if done.rc != 0:
        raise SlurmError(f"sinfo on {login.where} failed: {one_line(done.stderr.strip(), 300)}")
    states = {}
    for line in done.stdout.splitlines():
        parts = line.split("|", 2)
        if len(parts) == 3 and parts[0] in names:
            states[parts[0]] = NodeState(parts[0], parts[1], parts[2].strip())
    return states


class SlurmError(Exception):
    """Slurm refused or failed; str() is one line for ops."""


class Allocation:
    """`with Allocation(login, cluster, names, "preflight-ab12") as job: job.step(...)`."""

    def __init__(self, login: LoginShell, cluster: Cluster, names: list[str], name: str):
        self.login, self.settings, self.names, self.name = login, cluster.slurm, names, name
        self.job: str | None = None
        self.held: Held | None = None
        self.ours = True  # False for a job held by another process: never released here

    @classmethod
    def attach(cls, login: LoginShell, cluster: Cluster, names: list[str], job: str,
               name: str) -> Allocation:
        """Steps inside a job another process holds (the run's, held by the controller)."""
        found = cls(login, cluster, names, name)
        found.job, found.ours = job, False
        return found

    def salloc_command(self) -> str:
        s = self.settings
        argv = ["salloc", "-N", str(len(self.names)), "-w", hostlist(self.names),
                f"--immediate={int(s.alloc_wait)}", f"--job-name={self.name}",
                f"--time={s.time_limit}"]
        argv += [f"--partition={s.partition}"] * bool(s.partition)
        argv += [f"--account={s.account}"] * bool(s.account)
        argv += [f"--reservation={s.reservation}"] * bool(s.reservation)
        argv += [*s.salloc_options, "sh", "-c",
                 'echo "PREFLIGHT_JOB=$SLURM_JOB_ID"; exec cat >/dev/null']
        return " ".join(shlex.quote(a) for a in argv)

    def __enter__(self) -> Allocation:
        if not self.ours:
            return self
        s = self.settings
        self.held = self.login.hold(self.salloc_command(), limit=_seconds(s.time_limit))
        found = self.held.wait_for(r"PREFLIGHT_JOB=(\d+)", s.alloc_wait + 15)
        if found is None:
            self.held.end()
            errors = [ln for ln in self.held.seen.splitlines() if "error" in ln.lower()]
            why = errors[-1] if errors else (self.held.seen.strip().splitlines() or
                                             ["no answer"])[-1]
            raise SlurmError(f"salloc on {self.login.where} gave no allocation of "
                             f"{hostlist(self.names)} within {s.alloc_wait:g} s: "
                             f"{one_line(why, 300)}")
        self.job = found.group(1)
        return self

    def __exit__(self, *_exc) -> None:
        if not self.ours:
            return
        if self.held is not None:
            self.held.end()
        if self.job is not None:  # the salloc ends with its stdin; scancel makes sure
            self.login.run(f"scancel {self.job}", 30)

    def step(self, names: list[str], command: str, timeout: float, label: str | None = None):
        """One task per node on `names` (a subset of the allocation). --overlap: steps of
        one run (the master-port listener and its clients) may share a node."""
        argv = ["srun", f"--jobid={self.job}", "-N", str(len(names)), "-w", hostlist(names),
                "--ntasks-per-node=1", "--kill-on-bad-exit=0", "--input=none", "--overlap",
                f"--job-name={label or self.name}", *self.settings.srun_options,
                "sh", "-c", command]
        return self.login.run(" ".join(shlex.quote(a) for a in argv), timeout)

    def cancel_steps(self, label: str) -> None:
        """scancel every step of ours named `label` (its srun did not end in time)."""
        found = self.login.run(f"squeue -h -s -j {shlex.quote(str(self.job))} -o '%i|%j'", 30)
        steps = [ln.split("|", 1)[0] for ln in found.stdout.splitlines()
                 if ln.partition("|")[2].strip() == label]
        if steps:
            self.login.run("scancel " + " ".join(shlex.quote(s) for s in steps), 30)

    def broadcast(self, data: bytes, dest: str, timeout: float = 120):
        """data into `dest` on every node of the allocation: uploaded once to the login
        node, then Slurm's own tree fan-out (sbcast), not one copy per node from here."""
        staged = f"/tmp/{self.name}.upload"
        put = self.login.run(f"cat > {shlex.quote(staged)}", timeout, stdin=data)
        if put.rc != 0:
            raise SlurmError(f"could not stage {dest} on {self.login.where}: "
                             f"{one_line(put.stderr.strip(), 300)}")
        done = self.login.run(f"sbcast --jobid={self.job} --force {shlex.quote(staged)} "
                              f"{shlex.quote(dest)}; rc=$?; rm -f {shlex.quote(staged)}; "
                              "exit $rc", timeout)
        if done.rc != 0:
            raise SlurmError(f"sbcast to {hostlist(self.names)} failed: "
                             f"{one_line(done.stderr.strip(), 300)}")


def _seconds(limit: str) -> float:
    """Slurm's --time (MM, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]) in seconds."""
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts
    else:
        hours, minutes, seconds = ([0, *parts, 0] if len(parts) == 1 else
                                   [0, *parts] if len(parts) == 2 else parts)
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds
