"""Node names from ClusterShell's range syntax (worker-[1-4],head): for cluster.yaml's
nodes, --nodes, and a waiver's nodes. Bounded, and every name checked as a host name."""

from __future__ import annotations

import re

from ClusterShell.NodeSet import NodeSet, NodeSetParseError

from preflight.core.errors import UserError
from preflight.core.nodetext import one_line

MAX_NODES = 10_000  # more than any cluster we check; a typo'd range stops here
HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?$")


_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*(?:/\s*(\d+)\s*)?)?$")


def range_size(pattern: str) -> int:
    """An upper bound of how many names a range names, read from its brackets without
    expanding them (ClusterShell would build n[1-100000000] in memory first).

    >>> range_size("worker-[1-4,7],head"), range_size("n[1-100000000]"), range_size("r[1-2]n[1-8]")
    (6, 100000000, 16)
    >>> range_size("n[1-100/10]")
    10
    """
    total, depth, start = 0, 0, 0
    parts = []
    for i, char in enumerate(pattern):  # top-level commas only
        depth += (char == "[") - (char == "]")
        if char == "," and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    parts.append(pattern[start:])
    for part in parts:
        size = 1
        for group in _BRACKET.findall(part):
            count = 0
            for item in group.split(","):
                found = _ITEM.match(item)
                if found is None:
                    continue  # NodeSet says what is wrong with it
                low, high, step = found.group(1), found.group(2), found.group(3)
                count += 1 if high is None else max(0, (int(high) - int(low)) //
                                                    max(1, int(step or 1)) + 1)
            size *= max(count, 1)
        total += size
    return total


def expand_nodes(pattern: str, where: str) -> list[str]:
    """Node names from ClusterShell range syntax (worker-[1-4],head), bounded and checked;
    a bad range raises UserError naming `where`."""
    size = range_size(pattern) if len(pattern) <= 100_000 else MAX_NODES + 1
    if size > MAX_NODES:
        raise UserError(f"{where}: node range {one_line(pattern, 60)} names {size} nodes, "
                        f"more than the limit of {MAX_NODES}")
    try:
        nodeset = NodeSet(pattern)
        if len(nodeset) > MAX_NODES:
            raise UserError(f"{where}: node range {one_line(pattern, 60)} names "
                            f"{len(nodeset)} nodes, more than the limit of {MAX_NODES}")
        names = list(nodeset)
    except (NodeSetParseError, ValueError) as exc:
        msg = f"{where}: bad node range {one_line(repr(pattern), 60)} " \
              f"({one_line(exc, 120)}); write e.g. worker-[1-8]"
        raise UserError(msg) from None
    bad = next((n for n in names if not HOSTNAME.match(n)), None)
    if bad is not None or not names:
        raise UserError(f"{where}: node name {one_line(repr(bad or pattern), 60)} is not a "
                        "host name (letters, digits, '-', '.', '_'; up to 64 characters)")
    return names
