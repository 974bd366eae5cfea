"""Each node's part in the cross-node collective: joined, correct, fast enough."""

from __future__ import annotations

from preflight.checks.findings import Finding, NotChecked
from preflight.checks.references import Threshold
from preflight.config.inventory import Node


def skip_if_blocked(node: Node, outcome: dict) -> None:
    """A node that waited for a rendezvous others never joined is not judged: the nodes
    that never joined fail (as the culprits), this one says who blocked it."""
    mine = outcome["nodes"].get(node.name) or {}
    if mine.get("blocked_by"):
        raise NotChecked(f"{node.name}: not judged: the collective was blocked by "
                    f"{', '.join(mine['blocked_by'])} (never joined; see their results)")


def node_result(node: Node, outcome: dict) -> list[Finding]:
    mine = outcome["nodes"].get(node.name)
    if mine is None:
        return []
    found = []
    if not mine["ok"]:
        found.append(Finding(node.name, "collective", f"torchrun over {outcome['world']} nodes "
                             f"({outcome['backend']}) completes with exact results",
                             mine["reason"]))
    cleaned = outcome.get("cleanup", {}).get(node.name, "clean")
    if cleaned != "clean":
        found.append(Finding(node.name, "collective cleanup", "no process or temp file left",
                             cleaned))
    return found


def largest_busbw(node: Node, outcome: dict) -> tuple[int, float] | None:
    """(bytes, the slowest rank's busbw) at the largest message this node measured."""
    mine = outcome["nodes"].get(node.name, {})
    sweeps = [r["sweep"] for r in mine.get("ranks", ()) if r.get("sweep")]
    if not sweeps:
        return None
    return sweeps[0][-1]["bytes"], min(s[-1]["busbw_gbps"] for s in sweeps)


def busbw(node: Node, outcome: dict, wanted: Threshold) -> list[Finding]:
    """The largest message's bus bandwidth against the threshold (cluster.yaml's number
    or the reference for the cluster's GPUs and link)."""
    measured = largest_busbw(node, outcome)
    if wanted.floor_gbps is None or measured is None:
        return []
    size, worst = measured
    if worst >= wanted.floor_gbps:
        return []
    return [Finding(node.name, "bus bandwidth", f">= {wanted.wanted_gbps} GB/s (tolerance "
                    f"{wanted.tolerance:.0%}; {wanted.source}) at {size} bytes",
                    f"{worst:.3f} GB/s")]


def pair_verdict(node: Node, pairwise: dict) -> list[Finding]:
    found = []
    for suspect, why in pairwise["verdict"].items():
        if suspect == node.name or node.name in suspect.split("<->"):
            found.append(Finding(node.name, "pairwise", "every pair with this node healthy",
                                 why))
    return found
