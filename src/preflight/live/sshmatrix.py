"""Node-to-node SSH as launchers use it: key only, no prompt, strict host keys.

By default the launcher (the master) logs in to every node and each node to its ring
neighbour: about 2N logins, so every node is tried as a source and, from two sides, as
a target. `ssh.node_to_node: full` tries every pair (N x (N-1)) on small clusters. One
remote command per source node tries all its targets in parallel (with `launcher:
slurm`, one step of the run's job runs every source's command).
"""

from __future__ import annotations

import shlex

from preflight.config.inventory import Cluster, Node
from preflight.launchers import transport
from preflight.launchers.slurm import runjob, steps

TRY = ('( out=$(ssh -o BatchMode=yes -o ConnectTimeout={t} -o StrictHostKeyChecking=yes '
       '-o NumberOfPasswordPrompts=0 {h} true 2>&1 </dev/null); rc=$?; '
       'printf "RESULT %s %s %s\\n" {h} "$rc" "$(printf %s "$out" | tail -n 1)" ) &')
NOT_CHECKED = "not checked"


def plan(names: list[str], launcher: str, full: bool = False) -> dict[str, list[str]]:
    """source -> the targets it logs in to.

    >>> plan(["a", "b", "c", "d"], "a")
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


def matrix(cluster: Cluster, nodes: list[Node], edges: dict[str, list[str]],
           unreachable: dict[str, str], timeout: int = 5) -> dict[str, dict[str, str]]:
    """source -> {target: "ok" | why | "not checked: why"}. Sources and targets the
    controller could not reach (unreachable: name -> reason) are not tried."""
    def targets_of(node: Node) -> list[str]:
        return [t for t in edges.get(node.name, []) if t not in unreachable]

    def script(targets: list[str]) -> str:
        return " ".join(TRY.format(t=timeout, h=shlex.quote(p)) for p in targets) + " wait"

    def read(node: Node, done: transport.Result | str) -> dict[str, str]:
        targets = targets_of(node)
        if isinstance(done, str):  # lost since the probe reached it
            return dict.fromkeys(targets, f"{NOT_CHECKED}: {node.name} {done}")
        return {t: _results(done.stdout).get(t, "no answer (timed out)") for t in targets}

    sources = [n for n in nodes if n.name not in unreachable and targets_of(n)]
    job = runjob.covering(cluster, [n.name for n in sources])
    if not sources:
        rows = {}
    elif job is not None:  # one step of the run's Slurm job: every source at once
        with runjob.steps(cluster, job) as alloc:
            got = steps.per_node(alloc, {n.name: (script(targets_of(n)), "") for n in sources},
                                 timeout * 3 + 10)
        rows = {n.name: read(n, got[n.name]) for n in sources}
    else:
        rows = transport.fan_out(sources, lambda n: read(n, transport.with_connection(
            cluster, n, lambda c: c.run(script(targets_of(n)), timeout * 3 + 10), str)),
            cluster.parallelism)
    out: dict[str, dict[str, str]] = {}
    for source, targets in edges.items():
        if source in unreachable:
            out[source] = dict.fromkeys(targets, f"{NOT_CHECKED}: {source} is unreachable")
            continue
        got = rows.get(source, {})
        out[source] = {t: got.get(t) or f"{NOT_CHECKED}: {t} is unreachable from the "
                       "controller" for t in targets}
    return out


def _results(stdout: str) -> dict[str, str]:
    got = {}
    for line in stdout.splitlines():
        parts = line.split(" ", 3)
        if len(parts) >= 3 and parts[0] == "RESULT":
            why = parts[3] if len(parts) > 3 else ""
            got[parts[1]] = "ok" if parts[2] == "0" else f"exit {parts[2]}: {why}".strip()
    return got


def failed(why: str) -> bool:
    return why != "ok" and not why.startswith(NOT_CHECKED)


def blame(result: dict[str, dict[str, str]]) -> dict[str, list[tuple[str, str, str]]]:
    """node -> [(direction, peer, why)] for each failed login it is to blame for.

    A target that two or more sources failed to log in to, and none managed, is blamed
    ("into"); a source that failed towards two or more targets and reached none, likewise
    ("from"). Otherwise the end that worked with some other peer is cleared; a login that
    fails between two otherwise healthy nodes names both ends (the link).
    """
    inbound: dict[str, list[str]] = {}
    for row in result.values():
        for target, why in row.items():
            inbound.setdefault(target, []).append(why)
    outbound = {source: list(row.values()) for source, row in result.items()}
    out: dict[str, list[tuple[str, str, str]]] = {}
    for source, row in result.items():
        for target, why in row.items():
            if not failed(why):
                continue
            for end in _suspects(source, target, inbound.get(target, []),
                                 outbound.get(source, [])):
                direction, peer = ("into", source) if end == target else ("from", target)
                out.setdefault(end, []).append((direction, peer, why))
    return out


def _suspects(source: str, target: str, into: list[str], out_of: list[str]) -> list[str]:
    def side(whys: list[str]) -> tuple[bool, bool]:
        bad = [w for w in whys if failed(w)]
        return len(bad) >= 2 and "ok" not in whys, "ok" in whys
    target_bad, target_ok = side(into)
    source_bad, source_ok = side(out_of)
    if target_bad != source_bad:
        return [target] if target_bad else [source]
    if target_ok != source_ok:
        return [source] if target_ok else [target]
    return [source, target]


def unchecked(result: dict[str, dict[str, str]], node: str) -> list[str]:
    """Logins from or to node that could not be tried, with why."""
    return [f"{s} -> {t}: {why.removeprefix(NOT_CHECKED + ': ')}"
            for s, row in result.items() for t, why in row.items()
            if node in (s, t) and why.startswith(NOT_CHECKED)]


def logins(result: dict[str, dict[str, str]]) -> int:
    return sum(1 for row in result.values() for why in row.values()
               if not why.startswith(NOT_CHECKED))
