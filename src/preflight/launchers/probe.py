"""What the probe is on any launcher: its script and arguments for a node, the command that
starts it with the first python that works, its bound, and how its output is read.

The launchers (ssh.py, slurm/, local.py) differ only in how they carry this to a node.
"""

from __future__ import annotations

import json
import shlex

from preflight import remote
from preflight.config.inventory import Cluster, Node
from preflight.core.nodetext import MAX_DEPTH, depth_ok
from preflight.launchers.base import Result

PROBE_PYTHONS = ("/usr/bin/python3", "python3")


def probe_command(node: Node, script: str) -> str:
    """Run the probe with Miniconda's base python (its running is then a fact for free),
    else the system's python3. The script travels as an argument, so a python that
    fails to start can be followed by the next one."""
    pythons = (f"{node.miniconda}/bin/python", *PROBE_PYTHONS)
    candidates = " ".join(shlex.quote(p) for p in pythons)
    return (f"S={shlex.quote(script)}; for p in {candidates}; do "
            'if command -v "$p" >/dev/null 2>&1; then "$p" -I -S -c "$S" && exit 0; fi; done; '
            f'echo "no working python3 on the node (tried {candidates})" >&2; exit 127')


def probe_script(node: Node, *, runtime: bool = True, peers: list[str] = (),
                 sync: dict | None = None, ssh: dict | None = None,
                 jupyter: bool = False, dcgm: dict | None = None, verify: str = "size",
                 master_port: int | None = None) -> str:
    """The probe with its arguments; runtime=False skips the env-Python run (torch import);
    peers are the node names this node must resolve."""
    args = probe_args(node, runtime=runtime, peers=peers, sync=sync, ssh=ssh, jupyter=jupyter,
                      dcgm=dcgm, verify=verify, master_port=master_port)
    # JSON is not Python (null, true): decode it on the node rather than paste it as code.
    return f"ARGS = __import__('json').loads({json.dumps(args)!r})\n" + remote.probe_source()


def probe_args(node: Node, *, runtime: bool = True, peers: list[str] = (),
               sync: dict | None = None, ssh: dict | None = None,
               jupyter: bool = False, dcgm: dict | None = None, verify: str = "size",
               master_port: int | None = None) -> dict:
    """The probe's ARGS for one node (the Slurm launcher sends them in one bundle)."""
    return {"miniconda": node.miniconda, "env_name": node.env_name, "peers": list(peers),
            "jupyter": jupyter, "dcgm": dcgm, "verify": verify, "master_port": master_port,
            "sync": sync, "ssh": ssh,
            "env_prefix": node.env_prefix, "workspace": node.workspace,
            "runtime_script": remote.source("runtime.py") if runtime else None,
            "runtime_timeout": max(10.0, node.command_timeout * 0.75)}


def cluster_args(cluster: Cluster, node: Node) -> dict:
    """The probe's arguments that come from cluster.yaml (all but runtime), one launcher
    or another."""
    return {"peers": peers_of(cluster, node), "sync": sync_args(cluster, node),
            "ssh": ssh_args(cluster), "jupyter": cluster.jupyter.check,
            "dcgm": dcgm_args(cluster), "verify": cluster.spec.env.verify,
            "master_port": cluster.nccl.master_port if node.name == cluster.master.name
            else None}


def dcgm_args(cluster: Cluster) -> dict | None:
    """DCGM's diagnostic for the probe, when cluster.yaml asks for it."""
    settings = cluster.gpu_health
    if not settings.dcgm_diag or "dcgm" not in settings.groups:
        return None
    return {"level": settings.dcgm_diag, "timeout": settings.dcgm_timeout}


def probe_bound(cluster: Cluster, node: Node) -> tuple[float, str]:
    """The probe's bound in seconds and what sets it: the node's command_timeout, plus
    DCGM's own when it runs."""
    dcgm = dcgm_args(cluster)
    if dcgm is None:
        return node.command_timeout, "command_timeout"
    return node.command_timeout + dcgm["timeout"], "command_timeout + gpu_health.dcgm_timeout"


def peers_of(cluster: Cluster, node: Node) -> list[str]:
    """Every other node; on big clusters the master and the next 8 nodes (a ring), so the
    cluster's name service sees N x 9 look-ups, not N squared."""
    names = [n.name for n in cluster.nodes if n.name != node.name]
    if len(cluster.nodes) <= cluster.nccl.resolve_all_peers_max:
        return names
    everyone = [n.name for n in cluster.nodes]
    at = everyone.index(node.name)
    ring = [everyone[(at + k) % len(everyone)] for k in range(1, 9)]
    return [n for n in dict.fromkeys([cluster.master.name, *ring]) if n != node.name]


def sync_args(cluster: Cluster, node: Node) -> dict | None:
    if cluster.sync_source is None:
        return None
    return {"target": node.workspace, "exclude": cluster.sync.exclude,
            "max_files": cluster.sync.max_files}


def ssh_args(cluster: Cluster) -> dict | None:
    settings = cluster.ssh
    if not settings.check:
        return None
    return {"identity_file": settings.identity_file, "client_config": settings.client_config}


def document(done: Result, bound: str, launcher: str) -> dict:
    """The node's facts from one probe run as a launcher returns them: the document, or
    nothing, with `reach` saying which and why."""
    found, reason = parse(done, bound)
    return {**found, "reach": {"ok": reason is None, "reason": reason, "executions": 1,
                               "seconds": round(done.seconds, 3), "launcher": launcher}}


def parse(done: Result, bound: str = "command_timeout") -> tuple[dict, str | None]:
    """The probe's JSON document from its run, or why there is none."""
    if done.timed_out:
        return {}, f"probe timed out after {done.seconds:.0f} s ({bound})"
    if done.rc != 0:
        tail = (done.stderr.strip().splitlines() or [f"exit {done.rc}"])[-1]
        return {}, f"probe failed (exit {done.rc}): {tail}"
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        return {}, f"probe printed no JSON: {done.stdout[:200]!r}"
    except RecursionError:
        doc = None
    if doc is None or not depth_ok(doc):
        return {}, f"probe printed JSON nested deeper than {MAX_DEPTH} levels"
    if not isinstance(doc, dict):
        return {}, f"probe printed a JSON {type(doc).__name__}, not an object"
    return doc, None


