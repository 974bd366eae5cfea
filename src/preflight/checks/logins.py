"""Node-to-node SSH logins, the pure part: how the logins each probe made read as one
result, and whom a failed login blames.

Each node's probe makes its own logins (its peer_logins section) while it gathers facts:
by default the master logs in to every node and each node to its ring neighbour
(launchers/probe.ring_plan), about 2N logins, so every node is tried as a source and,
from two sides, as a target. `ssh.node_to_node: full` tries every pair on small clusters.
"""

from __future__ import annotations

NOT_CHECKED = "not checked"


def from_facts(edges: dict[str, list[str]], cluster_facts: dict[str, dict]) -> dict:
    """The run's logins as the probes made them: {"result": source -> {target: why},
    "blame": node -> [(direction, peer, why)], "logins": how many were tried,
    "unchecked": node -> logins from or to it that could not be tried, with why}.

    >>> reached = {"ok": True, "reason": None}
    >>> got = from_facts({"a": ["b"], "b": ["a"]},
    ...                  {"a": {"reach": reached, "peer_logins": {"tried": {"b": "ok"}}},
    ...                   "b": {"reach": reached, "broken": {"peer_logins": "is missing"}}})
    >>> got["result"]
    {'a': {'b': 'ok'}, 'b': {'a': "not checked: b's facts: section 'peer_logins' is missing"}}
    """
    unreachable = {name: f["reach"]["reason"] or "unreachable"
                   for name, f in cluster_facts.items() if not f["reach"]["ok"]}
    made, lost = {}, {}
    for source in edges:
        found = cluster_facts.get(source)
        if found is None or source in unreachable:
            continue
        broken = (dict.get(found, "broken") or {}).get("peer_logins")
        if broken:
            lost[source] = f"{source}'s facts: section 'peer_logins' {broken}"
        else:
            made[source] = (dict.get(found, "peer_logins") or {}).get("tried") or {}
    result = assemble(edges, unreachable, made, lost)
    return {"result": result, "blame": blame(result), "logins": logins(result),
            "unchecked": unchecked(result)}


def assemble(edges: dict[str, list[str]], unreachable: dict[str, str],
             made: dict[str, dict[str, str]], lost: dict[str, str]) -> dict[str, dict[str, str]]:
    """source -> {target: "ok" | why | "not checked: why"}, from what each source's probe
    said (made: source -> {target: why}) or why it said nothing (lost: source -> why).
    A login to a node the controller could not reach is not checked either way: the
    blame rules need both ends' facts.

    >>> assemble({"a": ["b"], "b": ["a"]}, {"b": "unreachable: refused"}, {"a": {}}, {})
    {'a': {'b': 'not checked: b is unreachable from the controller'}, \
'b': {'a': 'not checked: b is unreachable'}}
    """
    out: dict[str, dict[str, str]] = {}
    for source, targets in edges.items():
        if source in unreachable:
            out[source] = dict.fromkeys(targets, f"{NOT_CHECKED}: {source} is unreachable")
            continue
        said = made.get(source)
        row = {}
        for target in targets:
            if target in unreachable:
                row[target] = f"{NOT_CHECKED}: {target} is unreachable from the controller"
            elif source in lost:
                row[target] = f"{NOT_CHECKED}: {lost[source]}"
            elif said is None or target not in said:
                row[target] = f"{NOT_CHECKED}: {source}'s probe did not try {target}"
            else:
                row[target] = said[target]
        out[source] = row
    return out


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


def unchecked(result: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """node -> the logins from or to it that could not be tried, with why (one pass over
    the run, not one per node: 2,000 nodes would make that 8 million steps)."""
    out: dict[str, list[str]] = {}
    for source, row in result.items():
        for target, why in row.items():
            if why.startswith(NOT_CHECKED):
                line = f"{source} -> {target}: {why.removeprefix(NOT_CHECKED + ': ')}"
                out.setdefault(source, []).append(line)
                if target != source:
                    out.setdefault(target, []).append(line)
    return out


def logins(result: dict[str, dict[str, str]]) -> int:
    return sum(1 for row in result.values() for why in row.values()
               if not why.startswith(NOT_CHECKED))
