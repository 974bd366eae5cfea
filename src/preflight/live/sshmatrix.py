"""Node-to-node SSH as launchers use it (key only, no prompt, strict host keys), tried for
real: one command per source node, through the run's launcher, tries all its targets in
parallel. Which logins, and whom a failure blames: checks/logins.py.
"""

from __future__ import annotations

import shlex

from preflight.checks import logins
from preflight.config.inventory import Node
from preflight.launchers.base import Launcher

TRY = ('( out=$(ssh -o BatchMode=yes -o ConnectTimeout={t} -o StrictHostKeyChecking=yes '
       '-o NumberOfPasswordPrompts=0 {h} true 2>&1 </dev/null); rc=$?; '
       'printf "RESULT %s %s %s\\n" {h} "$rc" "$(printf %s "$out" | tail -n 1)" ) &')


def matrix(launcher: Launcher, nodes: list[Node], edges: dict[str, list[str]],
           unreachable: dict[str, str], timeout: int = 5) -> dict[str, dict[str, str]]:
    """source -> {target: "ok" | why | "not checked: why"}. Sources and targets the
    controller could not reach (unreachable: name -> reason) are not tried."""
    def targets_of(node: Node) -> list[str]:
        return [t for t in edges.get(node.name, []) if t not in unreachable]

    def script(targets: list[str]) -> str:
        return " ".join(TRY.format(t=timeout, h=shlex.quote(p)) for p in targets) + " wait"

    sources = [n for n in nodes if n.name not in unreachable and targets_of(n)]
    got = launcher.run({n.name: (script(targets_of(n)), "") for n in sources},
                       timeout * 3 + 10) if sources else {}
    outputs = {name: r.stdout for name, r in got.items() if not isinstance(r, str)}
    lost = {name: r for name, r in got.items() if isinstance(r, str)}
    return logins.assemble(edges, unreachable, outputs, lost)
