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


def probe_script(node: Node, *, runtime: bool = True, **cluster_wide) -> str:
    """The probe with its arguments; runtime=False skips the env-Python run (torch import);
    cluster_wide: cluster_args()."""
    args = probe_args(node, runtime=runtime, **cluster_wide)
    # JSON is not Python (null, true): decode it on the node rather than paste it as code.
    return f"ARGS = __import__('json').loads({json.dumps(args)!r})\n" + remote.probe_source()


def probe_args(node: Node, *, runtime: bool = True, peers: list[str] = (),
               sync: dict | None = None, ssh: dict | None = None,
               jupyter: bool = False, dcgm: dict | None = None, verify: str = "size",
               master_port: int | None = None, peer_logins: dict | None = None) -> dict:
    """The probe's ARGS for one node (the Slurm launcher sends them in one bundle); peers
    are the node names it must resolve, peer_logins the nodes it logs in to."""
    return {"miniconda": node.miniconda, "env_name": node.env_name, "peers": list(peers),
            "jupyter": jupyter, "dcgm": dcgm, "verify": verify, "master_port": master_port,
            "sync": sync, "ssh": ssh, "peer_logins": peer_logins,
            "env_prefix": node.env_prefix, "workspace": node.workspace,
            "runtime_script": remote.source("runtime.py") if runtime else None,
            "runtime_timeout": max(10.0, node.command_timeout * 0.75),
            # the controller's deadline for the whole probe: its sections keep within it
            "probe_bound": bound_with(node, dcgm)[0]}


def cluster_args(cluster: Cluster, node: Node, logins: dict[str, list[str]] | None) -> dict:
    """The probe's arguments that come from cluster.yaml (all but runtime), one launcher
    or another; logins: login_plan() over the nodes probed together."""
    return {"peers": peers_of(cluster, node), "sync": sync_args(cluster, node),
            "ssh": ssh_args(cluster), "jupyter": cluster.jupyter.check,
            "dcgm": dcgm_args(cluster), "verify": cluster.spec.env.verify,
            "master_port": cluster.nccl.master_port if node.name == cluster.master.name
            else None, "peer_logins": login_args(node, logins)}


# How long one node-to-node login may take to connect, and how many a node has in flight
# (only the master has more than one target on the ring: 2,000 nodes at 64 in flight and
# about 0.3 s a login is about 10 s, well inside its bound).
LOGIN_CONNECT_S = 5
LOGINS_AT_ONCE = 64


def login_plan(cluster: Cluster, nodes: list[Node]) -> dict[str, list[str]] | None:
    """source -> the nodes it logs in to, over the nodes probed together; None when
    cluster.yaml turns node-to-node logins off (`ssh.node_to_node: false`)."""
    mode = cluster.ssh.node_to_node
    if mode is False:
        return None
    return ring_plan([n.name for n in nodes], cluster.master.name, full=mode == "full")


def ring_plan(names: list[str], launcher: str, full: bool = False) -> dict[str, list[str]]:
    """source -> the targets it logs in to: the launcher (the master) to every node and
    each node to its ring neighbour, about 2N logins, so every node is tried as a source
    and, from two sides, as a target; `full` tries every pair (N x (N-1)).

    >>> ring_plan(["a", "b", "c", "d"], "a")
    {'a': ['b', 'c', 'd'], 'b': ['c'], 'c': ['d'], 'd': ['a']}
    """
    if full:
        return {a: [b for b in names if b != a] for a in names}
    out = {}
    for at, name in enumerate(names):
        ring = names[(at + 1) % len(names)]
        out[name] = [n for n in names if n != name] if name == launcher else \
            [ring] if ring != name else []
    return out


def login_args(node: Node, plan: dict[str, list[str]] | None) -> dict | None:
    """What the probe's peer_logins section needs: its targets, each login's connect
    timeout, how many in flight, and its bound: the probe's own, less its margin (on the
    2-core test bed 64 torch imports and the master's 63 logins share the CPU, and the
    logins finished only after 72 s)."""
    if plan is None:
        return None
    return {"targets": plan.get(node.name, []), "timeout": LOGIN_CONNECT_S,
            "at_once": LOGINS_AT_ONCE, "bound": node.command_timeout}


def dcgm_args(cluster: Cluster) -> dict | None:
    """DCGM's diagnostic for the probe, when cluster.yaml asks for it."""
    settings = cluster.gpu_health
    if not settings.dcgm_diag or "dcgm" not in settings.groups:
        return None
    return {"level": settings.dcgm_diag, "timeout": settings.dcgm_timeout}


def probe_bound(cluster: Cluster, node: Node) -> tuple[float, str]:
    """The probe's bound in seconds and what sets it: the node's command_timeout, plus
    DCGM's own when it runs."""
    return bound_with(node, dcgm_args(cluster))


def bound_with(node: Node, dcgm: dict | None) -> tuple[float, str]:
    """probe_bound() from the probe's own dcgm argument (dcgm_args())."""
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


