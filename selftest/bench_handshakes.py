"""SSH handshakes as the nodes see them: an nft counter in each simulated node counts new
TCP connections to port 22, from the controller and from peer nodes, while a run goes.
It measures what issue 26 asks (one remote execution per node), not a model of it."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from simcluster import cluster
from simcluster.host import sh

TABLE = "preflight_bench_ssh"


def _nft(anchor: int, script: str, *args: str) -> str:
    return sh("nsenter", "-t", str(anchor), "-n", "--", "nft", *args, input=script).stdout


@contextlib.contextmanager
def counting() -> Iterator[dict]:
    """Counters on every node while the block runs; the dict it yields is filled on exit:
    {"from_controller": n, "from_peers": n} over all nodes."""
    nodes = cluster.load()["nodes"]
    peers = ", ".join(info["address"] for info in nodes.values())
    syn = "tcp dport 22 tcp flags & (syn | ack) == syn"
    script = (f"add table inet {TABLE}\n"
              f"add chain inet {TABLE} input {{ type filter hook input priority -10; }}\n"
              f"add rule inet {TABLE} input ip saddr {{ {peers} }} {syn} counter\n"
              f"add rule inet {TABLE} input ip saddr != {{ {peers} }} {syn} counter\n")
    for info in nodes.values():
        _nft(info["anchor"], script, "-f", "-")
    got = {"from_peers": 0, "from_controller": 0}
    try:
        yield got
    finally:
        for info in nodes.values():
            listed = _nft(info["anchor"], "", "list", "table", "inet", TABLE)
            counts = [int(n) for n in re.findall(r"counter packets (\d+)", listed)]
            got["from_peers"] += counts[0]
            got["from_controller"] += counts[1]
            _nft(info["anchor"], f"delete table inet {TABLE}\n", "-f", "-")
