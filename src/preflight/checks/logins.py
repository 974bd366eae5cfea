"""Node-to-node SSH logins, the pure part: which logins to try (plan), how one source's
output reads, and whom a failed login blames. live/sshmatrix.py runs them.

By default the launcher (the master) logs in to every node and each node to its ring
neighbour: about 2N logins, so every node is tried as a source and, from two sides, as
a target. `ssh.node_to_node: full` tries every pair (N x (N-1)) on small clusters.
"""

from __future__ import annotations

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


def assemble(edges: dict[str, list[str]], unreachable: dict[str, str],
             outputs: dict[str, str | None], lost: dict[str, str]) -> dict[str, dict[str, str]]:
    """source -> {target: "ok" | why | "not checked: why"}, from each source's output
    (outputs: source -> stdout) or why it was lost since the probe (lost: source -> why).

    >>> assemble({"a": ["b"], "b": ["a"]}, {"b": "unreachable: refused"},
    ...          {"a": None}, {})
    {'a': {'b': 'not checked: b is unreachable from the controller'}, \
'b': {'a': 'not checked: b is unreachable'}}
    """
    out: dict[str, dict[str, str]] = {}
    for source, targets in edges.items():
        if source in unreachable:
            out[source] = dict.fromkeys(targets, f"{NOT_CHECKED}: {source} is unreachable")
            continue
        tried = [t for t in targets if t not in unreachable]
        if source in lost:
            got = dict.fromkeys(tried, f"{NOT_CHECKED}: {source} {lost[source]}")
        elif outputs.get(source) is not None:
            said = _results(outputs[source])
            got = {t: said.get(t, "no answer (timed out)") for t in tried}
        else:
            got = {}
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
