"""Node-to-node SSH as launchers use it: from every node to every other, key only, no prompt,
strict host keys. One remote command per node tries all its peers in parallel."""

from __future__ import annotations

import shlex

from . import transport
from .inventory import Cluster, Node

TRY = ('( out=$(ssh -o BatchMode=yes -o ConnectTimeout={t} -o StrictHostKeyChecking=yes '
       '-o NumberOfPasswordPrompts=0 {h} true 2>&1 </dev/null); rc=$?; '
       'printf "RESULT %s %s %s\\n" {h} "$rc" "$(printf %s "$out" | tail -n 1)" ) &')


def matrix(cluster: Cluster, nodes: list[Node], timeout: int = 5) -> dict:
    """from -> {to: "ok" | why}; a node we cannot reach maps to a string."""
    names = [n.name for n in nodes]

    def row(node: Node):
        peers = [n for n in names if n != node.name]
        script = " ".join(TRY.format(t=timeout, h=shlex.quote(p)) for p in peers) + " wait"
        try:
            conn = transport.connect(cluster, node)
        except transport.Unreachable as exc:
            return f"unreachable: {exc}"
        try:
            done = conn.run(script, timeout * 3 + 10)
        finally:
            conn.close()
        got = {}
        for line in done.stdout.splitlines():
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[0] == "RESULT":
                why = parts[3] if len(parts) > 3 else ""
                got[parts[1]] = "ok" if parts[2] == "0" else f"exit {parts[2]}: {why}".strip()
        return {p: got.get(p, "no answer (timed out)") for p in peers}

    return transport.fan_out(nodes, row, cluster.parallelism)
