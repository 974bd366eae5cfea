"""The local launcher: the node checks itself (`preflight node-check`, e.g. from a Slurm
HealthCheckProgram or a timer). The probe and any command run here, as the SSH launcher
runs them on the node, under the same bounds."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from preflight.config.inventory import Node
from preflight.launchers import probe
from preflight.launchers.base import Launcher, Result, Session, T, Work


class LocalLauncher(Launcher):
    name = "local (node-check)"

    def gather(self, nodes: list[Node], runtime: bool = True) -> dict[str, dict]:
        logins = probe.login_plan(self.cluster, nodes)
        return {n.name: self._probe(n, runtime, logins) for n in nodes}

    def run(self, work: dict[str, Work], timeout: float, kill_after: int = 2,
            at_once: bool = False) -> dict[str, Result | str]:
        return {name: run_here(command, stdin, timeout, kill_after)
                for name, (command, stdin) in work.items()}

    def session(self, node: Node, work: Callable[[Session], T],
                unreachable: Callable[[str], T]) -> T:
        return work(LocalSession())

    def after_run(self, results: list[dict], *, drain: bool, resume: bool) -> dict | None:
        """The node drains or resumes itself: scontrol runs here, not on a login node."""
        if not (drain or resume):
            return None
        from preflight.launchers.slurm import drain as drain_mod
        here = dataclasses.replace(self.cluster, login=None)
        return drain_mod.act(here, results, drain=drain, resume=resume)

    def _probe(self, node: Node, runtime: bool, logins: dict[str, list[str]] | None) -> dict:
        script = probe.probe_script(node, runtime=runtime,
                                    **probe.cluster_args(self.cluster, node, logins))
        seconds, bound = probe.probe_bound(self.cluster, node)
        sent = time.time()
        done = run_here(probe.probe_command(node, script), "", seconds)
        found = probe.document(done, bound, self.name)
        found["reach"].update(sent=sent, received=time.time())
        return found


def node_environment(environ: dict | None = None, prefix: str = sys.prefix,
                     base: str = sys.base_prefix) -> dict:
    """This node's own environment, as a job here gets it: ours without the harness's own
    virtualenv (its bin first on PATH, VIRTUAL_ENV), which no job on the node uses.

    >>> env = {"PATH": "/opt/h/.venv/bin:/usr/bin", "VIRTUAL_ENV": "/opt/h/.venv", "A": "1"}
    >>> node_environment(env, "/opt/h/.venv", "/usr")
    {'PATH': '/usr/bin', 'A': '1'}
    """
    env = dict(os.environ if environ is None else environ)
    if prefix == base:
        return env
    env.pop("VIRTUAL_ENV", None)
    own = os.path.join(prefix, "bin")
    env["PATH"] = ":".join(d for d in env.get("PATH", "").split(":")
                           if d and os.path.normpath(d) != own)
    return env


def run_here(command: str, stdin: str, timeout: float, kill_after: float = 2) -> Result:
    """sh -c command in its own session; at the deadline TERM to the whole group, KILL
    kill_after seconds later (what `timeout -k` does over SSH)."""
    started = time.monotonic()
    child = subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, env=node_environment())
    try:
        out, err = child.communicate(stdin or None, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        for sig, wait in ((signal.SIGTERM, kill_after), (signal.SIGKILL, 5)):
            try:
                os.killpg(child.pid, sig)
                child.wait(wait)
                break
            except (OSError, subprocess.TimeoutExpired):
                continue
        out, err = child.communicate()
    return Result(command, 124 if timed_out else child.returncode, out, err,
                  time.monotonic() - started, timed_out)


class LocalSession:
    """Commands on this node in turn (the local launcher's session)."""

    bytes_sent = 0

    def run(self, command: str, timeout: float, stdin=None, kill_after: int = 2) -> Result:
        data = stdin.read() if hasattr(stdin, "read") else stdin
        if isinstance(data, bytes):
            data = data.decode()
        return run_here(command, data or "", timeout, kill_after)
