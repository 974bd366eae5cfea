"""Node names from ClusterShell's range syntax (worker-[1-4],head): for cluster.yaml's
nodes, --nodes, and a waiver's nodes. Bounded, and every name checked as a host name."""

from __future__ import annotations

import re

from ClusterShell.NodeSet import NodeSet, NodeSetParseError

from preflight.core.errors import UserError
from preflight.core.nodetext import one_line

MAX_NODES = 10_000  # more than any cluster we check; a typo'd range stops here
HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?$")


def expand_nodes(pattern: str, where: str) -> list[str]:
    """Node names from ClusterShell range syntax (worker-[1-4],head), bounded and checked;
    a bad range raises UserError naming `where`."""
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
