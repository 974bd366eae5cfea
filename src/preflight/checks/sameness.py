"""Every node carries the same packages: the odd nodes named by plurality, drift as a table."""

from __future__ import annotations

from collections import Counter

from ClusterShell.NodeSet import NodeSet

from preflight.checks.environment import conda_records, pip_dists
from preflight.checks.findings import Finding
from preflight.config.inventory import Node
from preflight.core import channels
from preflight.facts import contract

ABSENT = "-"
TABLE_MAX_NODES = 8  # wider clusters get one line per distinct value instead of columns


def inventory_of(facts: dict) -> dict[str, str]:
    """package -> 'version build channel' (conda) or 'version pip' (pip-installed)."""
    rows = {name: f"{r['version']} {r['build']} {channels.normalise(r.get('channel'))}"
            for name, r in conda_records(facts).items()}
    for name, dist in pip_dists(facts).items():
        if dist["installer"] != "conda":
            rows[f"pip:{name}"] = f"{dist['version']} (pip)"
    return rows


def comparable(cluster_facts: dict[str, dict]) -> dict[str, dict[str, str]]:
    """Inventories of the nodes that were reached and have an env."""
    return {name: inventory_of(f) for name, f in contract.usable(cluster_facts, "env").items()
            if f["env"].get("conda") is not None}


def drift(inventories: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """package -> {node: value} for the packages that are not identical everywhere."""
    names = sorted({pkg for inv in inventories.values() for pkg in inv})
    rows = {}
    for pkg in names:
        values = {node: inv.get(pkg, ABSENT) for node, inv in inventories.items()}
        if len(set(values.values())) > 1:
            rows[pkg] = values
    return rows


def standing(mine: str, tally: list[tuple[str, int]]) -> tuple[str, list[str]] | None:
    """Where a node's value stands among all nodes' (tally: Counter.most_common()):
    None when it is the plurality's, ("tie", values tied on top) when nothing wins and it
    is one of them, else ("minority", [the plurality's value])."""
    tied = [value for value, n in tally if n == tally[0][1]]
    if len(tied) == 1 and mine == tied[0]:
        return None
    if len(tied) > 1 and mine in tied:
        return "tie", tied
    return "minority", [tally[0][0]]


def odd_ones(node: Node, rows: dict, tallies: dict[str, list]) -> list[Finding]:
    """Findings for node: each package where it differs from the plurality (or ties)."""
    found = []
    for pkg, values in rows.items():
        counts = tallies[pkg]
        mine = values[node.name]
        where = standing(mine, counts)
        if where is None:
            continue
        if where[0] == "tie":
            tied = where[1]
            split = "; ".join(f"{holders(values, v)}: {_show(v)}" for v in tied)
            found.append(Finding(node.name, "same env on every node",
                                 f"one {pkg} on every node", mine, f"no majority: {split}"))
            continue
        found.append(Finding(node.name, "same env on every node",
                             f"{pkg} {_show(counts[0][0])}, as on {holders(values, counts[0][0])}",
                             f"{pkg} {_show(mine)}"))
    return found


class Drift:
    """The cluster's drift, computed once per run; each node's test asks it about itself."""

    def __init__(self, cluster_facts: dict[str, dict]) -> None:
        self.inventories = comparable(cluster_facts)
        self.rows = drift(self.inventories)
        self.tallies = {pkg: Counter(v.values()).most_common() for pkg, v in self.rows.items()}
        self._table: str | None = None

    def sameness(self, node: Node) -> tuple[list[Finding], str]:
        """(findings for this node, the drift table for the whole cluster)."""
        if node.name not in self.inventories:
            return [], ""  # no env or unreachable: other checks say so
        found = odd_ones(node, self.rows, self.tallies)
        if found and self._table is None:
            self._table = table(self.rows, sorted(self.inventories))
        return found, self._table if found else ""


def sameness(node: Node, cluster_facts: dict[str, dict]) -> tuple[list[Finding], str]:
    """One-off form of Drift(cluster_facts).sameness(node)."""
    return Drift(cluster_facts).sameness(node)


def _show(value: str) -> str:
    return "not installed" if value == ABSENT else value


def holders(values: dict[str, str], value: str) -> str:
    """The nodes (folded) whose value is `value`, for a finding's "as on node-[1-3]"."""
    return str(NodeSet.fromlist([n for n, v in values.items() if v == value]))


def table(rows: dict[str, dict[str, str]], nodes: list[str], what: str = "package") -> str:
    """The drift matrix (nodes by packages or variables, differing rows only), in plain
    text."""
    if not rows:
        return ""
    if len(nodes) > TABLE_MAX_NODES:
        lines = []
        for pkg, values in rows.items():
            lines.append(f"{pkg}:")
            for value, _ in Counter(values.values()).most_common():
                lines.append(f"  {value}: {holders(values, value)}")
        return "drift:\n" + "\n".join(lines)
    header = [what, *nodes]
    body = [[pkg, *(values.get(n, ABSENT) for n in nodes)] for pkg, values in rows.items()]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    render = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
              for row in [header, *body]]
    return f"drift ({what}s that differ between nodes):\n" + "\n".join(render)
