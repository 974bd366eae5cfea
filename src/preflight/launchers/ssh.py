"""The SSH launcher (`launcher: ssh`, the default): one paramiko session per node from
this machine, strict host keys, bounded fan-out (transport.py does the SSH)."""

from __future__ import annotations

import time
from collections.abc import Callable

from preflight.config.inventory import Cluster, Node
from preflight.core.fanout import fan_out
from preflight.core.nodetext import clean
from preflight.launchers import probe, transport
from preflight.launchers.base import Launcher, Result, Session, T, Work


class SshLauncher(Launcher):
    name = "ssh"

    def gather(self, nodes: list[Node], runtime: bool = True) -> dict[str, dict]:
        plan = probe.login_plan(self.cluster, nodes)
        return fan_out(nodes, lambda n: gather_node(self.cluster, n, runtime, plan),
                       self.cluster.parallelism, label="facts")

    def after_run(self, results: list[dict], *, drain: bool, resume: bool) -> dict | None:
        """Over SSH, Slurm is told only when asked (--drain-failed, --resume-fixed)."""
        if not (drain or resume):
            return None
        from preflight.launchers.slurm import drain as drain_mod
        return drain_mod.act(self.cluster, results, drain=drain, resume=resume)

    def session(self, node: Node, work: Callable[[Session], T],
                unreachable: Callable[[str], T]) -> T:
        return transport.with_connection(self.cluster, node, work, unreachable)

    def run(self, work: dict[str, Work], timeout: float, kill_after: int = 2,
            at_once: bool = False) -> dict[str, Result | str]:
        return run_over_ssh(self.cluster, [self.node(n) for n in work], work, timeout,
                            kill_after, at_once=at_once)

    def run_and_sweep(self, work: dict[str, Work], timeout: float, sweep: dict[str, Work],
                      sweep_timeout: float, *, kill_after: int = 2, at_once: bool = False,
                      ) -> tuple[dict[str, Result | str], dict[str, Result | str]]:
        return run_and_sweep_over_ssh(self.cluster, [self.node(n) for n in work], work,
                                      timeout, sweep, sweep_timeout, kill_after=kill_after,
                                      at_once=at_once)


def run_and_sweep_over_ssh(cluster: Cluster, nodes: list[Node], work: dict[str, Work],  # noqa: PLR0917 - run_over_ssh's arguments and the sweep's
                           timeout: float, sweep: dict[str, Work], sweep_timeout: float, *,
                           kill_after: int = 2, at_once: bool = False,
                           ) -> tuple[dict[str, Result | str], dict[str, Result | str]]:
    """Each node's work, then its sweep, on one connection (one handshake a node); a node
    whose connection was lost on the way is swept over a new one."""
    def one(node: Node) -> tuple[Result | str, Result | str | None]:
        def both(conn: transport.Connection) -> tuple[Result | str, Result | str]:
            command, stdin = work[node.name]
            done = conn.run(command, timeout, stdin=stdin or None, kill_after=kill_after)
            try:
                return done, conn.run(sweep[node.name][0], sweep_timeout)
            except transport.Unreachable as exc:
                return done, f"lost during the run: {exc}"
        return transport.with_connection(cluster, node, both, lambda why: (why, None))
    pairs = fan_out(nodes, one, len(nodes) if at_once else cluster.parallelism)
    lost = [n for n in nodes if pairs[n.name][1] is None]
    swept = {name: pair[1] for name, pair in pairs.items() if pair[1] is not None}
    if lost:
        swept |= run_over_ssh(cluster, lost, sweep, sweep_timeout)
    return {name: pair[0] for name, pair in pairs.items()}, swept


def run_over_ssh(cluster: Cluster, nodes: list[Node], work: dict[str, Work], timeout: float,
                 kill_after: int = 2, *, at_once: bool = False) -> dict[str, Result | str]:
    """One connection per node, up to cluster.yaml's parallelism at a time (every node at
    once with at_once)."""
    def one(node: Node) -> Result | str:
        command, stdin = work[node.name]
        return transport.with_connection(
            cluster, node,
            lambda conn: conn.run(command, timeout, stdin=stdin or None, kill_after=kill_after),
            str)
    return fan_out(nodes, one, len(nodes) if at_once else cluster.parallelism)


def gather_node(cluster: Cluster, node: Node, runtime: bool = True,
                logins: dict[str, list[str]] | None = None) -> dict:
    """The probe over one SSH session: its document plus `reach`; logins: the run's
    probe.login_plan()."""
    started = time.monotonic()
    script = probe.probe_script(node, runtime=runtime,
                                **probe.cluster_args(cluster, node, logins))
    seconds, bound = probe.probe_bound(cluster, node)

    def run_probe(conn: transport.Connection) -> dict:
        sent = time.time()  # the node's clock is judged against these (checks/host.clock)
        done = conn.run(probe.probe_command(node, script), seconds)
        facts, reason = probe.parse(done, bound)
        return {**facts, "reach": {"ok": reason is None, "reason": reason and clean(reason, 500),
                                   "executions": conn.executions, "sent": sent,
                                   "received": time.time()}}
    found = transport.with_connection(
        cluster, node, run_probe,
        lambda why: {"reach": {"ok": False, "reason": clean(why, 500), "executions": 0}})
    found["reach"]["seconds"] = round(time.monotonic() - started, 3)
    return found
