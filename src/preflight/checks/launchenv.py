"""The launch environment is the same on every node: the variables a job's Python and
loader read (PYTHONPATH, LD_LIBRARY_PATH, ...), as the runtime probe recorded them in the
environment a launcher gives a job. The odd node is named by plurality, as env drift is;
cluster.yaml's `launch.may_differ` lists variables expected to differ."""

from __future__ import annotations

from collections import Counter

from preflight.checks.findings import Finding, NotChecked
from preflight.checks.sameness import ABSENT, drift, holders, standing, table
from preflight.config.inventory import Node
from preflight.facts import contract

UNSET = "(unset)"


class LaunchEnvs:
    """Every reached node's recorded launch variables, tallied once per run."""

    def __init__(self, cluster_facts: dict[str, dict], may_differ: list[str]) -> None:
        skip = set(may_differ)
        self.envs = {name: {k: v for k, v in _recorded(f["runtime"]).items() if k not in skip}
                     for name, f in contract.usable(cluster_facts, "runtime").items()
                     if f["runtime"].get("launch_env") is not None}
        self.rows = {var: {n: v if v != ABSENT else UNSET for n, v in values.items()}
                     for var, values in drift(self.envs).items()}
        self.tallies = {var: Counter(v.values()).most_common() for var, v in self.rows.items()}

    def odd(self, node: Node) -> tuple[list[Finding], str]:
        """(this node's findings, the drift table of the whole cluster when it has any)."""
        found = self._odd(node)
        return found, table(self.rows, sorted(self.envs), "variable") if found else ""

    def _odd(self, node: Node) -> list[Finding]:
        if node.name not in self.envs:
            raise NotChecked(f"{node.name}: launch environment not checked: the runtime probe "
                             "did not record it (it failed, or the facts are from an older "
                             "probe)")
        found = []
        for var, values in sorted(self.rows.items()):
            mine, where = values[node.name], standing(values[node.name], self.tallies[var])
            if where is None:
                continue
            if where[0] == "tie":
                split = "; ".join(f"{holders(values, v)}: {v}" for v in where[1])
                found.append(Finding(node.name, "same launch environment",
                                     f"one {var} on every node", f"{var}={mine}",
                                     f"no majority: {split}", severity="investigate"))
                continue
            usual = self.tallies[var][0][0]
            found.append(Finding(
                node.name, "same launch environment", f"{var}={usual}, as on "
                f"{holders(values, usual)}", f"{var}={mine}",
                "set in a shell startup file or the launcher's environment? (cluster.yaml "
                "launch.may_differ lists variables expected to differ)", severity="investigate"))
        return found


def _recorded(runtime: dict) -> dict[str, str]:
    """The launch variables plus what PATH finds for `python` and `torchrun` (one more
    row of the same vote: a PATH that differs only in order still finds another file)."""
    found = dict(runtime["launch_env"])
    for name, hit in (runtime.get("which") or {}).items():
        found[f"({name} on PATH)"] = hit["real"] if hit else "(none)"
    return found

