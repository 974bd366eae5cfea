"""Reports for ops: a readable summary (summary.md) and JUnit grouped by node."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from . import once
from .checks import collective, cuda
from .nodetext import clean, fenced, one_line

OUTCOMES = ("passed", "failed", "error", "skipped")


class Collector:
    """Registered in the controlling process only; sees every report, xdist or not."""

    def __init__(self, config: pytest.Config, cluster, nodes: list) -> None:
        self.config, self.cluster, self.nodes = config, cluster, nodes
        self.results: list[dict] = []
        self.started = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = _outcome(report)
        if outcome is None:
            return
        props = dict(report.user_properties)
        self.results.append({"id": report.nodeid.split("::")[-1], "outcome": outcome,
                             "node": props.get("node", "cluster"), "message": _message(report)})

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        out = Path(self.config.getoption("report_dir"))
        try:
            text = self._summary(out)
        except Exception as exc:  # a report must never stay stale: say why it is partial
            text = incomplete(self.cluster.name, f"the summary could not be made "
                              f"({type(exc).__name__}: {clean(exc, 300)})")
        write_atomic(out / "summary.md", text)

    def _summary(self, out: Path) -> str:
        from .pytest_plugin import FACTS  # the plugin owns the stash key
        gathered = self.config.stash.get(FACTS, {})
        text = summary(self.cluster.name, [n.name for n in self.nodes], self.results,
                       time.time() - self.started,
                       [cuda.one_line(n.name, gathered[n.name]) for n in self.nodes
                        if n.name in gathered])
        outcome = once.read(Path(self.config.rootpath) / out, "nccl")
        if outcome:
            text += "\n## Collective\n\n" + (collective.busbw_table(outcome) or
                                               "no bandwidth measured (the run failed)") + "\n"
        return text

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter) -> None:
        """pytest's own clock starts after the facts were gathered: say the whole time."""
        bad = sum(r["outcome"] in ("failed", "error") for r in self.results)
        verdict = "PASS" if not bad else f"FAIL ({bad} of {len(self.results)} checks)"
        terminalreporter.write_line(
            f"cluster-preflight: {verdict} on {len(self.nodes)} nodes in "
            f"{time.time() - self.started:.1f} s, facts gathering included; "
            f"reports in {self.config.getoption('report_dir')}/")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        xml = getattr(config.option, "xmlpath", None)
        if xml and Path(xml).exists():
            group_junit_by_node(Path(xml), self.cluster.name)


def _outcome(report: pytest.TestReport) -> str | None:
    if report.when == "call":
        return report.outcome
    if report.failed:
        return "error"
    if report.skipped:
        return "skipped"
    return None


def _message(report: pytest.TestReport) -> str:
    if report.passed:
        return ""
    if report.skipped and isinstance(report.longrepr, tuple):
        return report.longrepr[2]
    text = str(report.longrepr).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[-20:]) if report.when == "call" and report.failed else (
        lines[-1] if lines else "")


def summary(cluster: str, nodes: list[str], results: list[dict], seconds: float,
            node_lines: list[str] = ()) -> str:
    """Markdown: verdict, a nodes-by-outcome table, each node in one line, then every
    failure as ops read it. Text that came from nodes sits in code blocks it cannot close
    (nodetext.fenced): it can neither forge a heading nor a table row."""
    per_node: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for result in results:
        per_node[result["node"]][result["outcome"]] += 1
    bad = sorted((r for r in results if r["outcome"] in ("failed", "error")),
                 key=lambda r: nodes.index(r["node"]) if r["node"] in nodes else len(nodes))
    verdict = "PASS" if not bad else f"FAIL: {len(bad)} of {len(results)} checks"
    lines = [f"# cluster-preflight: {one_line(cluster, 200)}", "",
             f"**{verdict}** on {len(nodes)} nodes in {seconds:.1f} s", "",
             "| node | " + " | ".join(OUTCOMES) + " |", "|---" * (len(OUTCOMES) + 1) + "|"]
    for name in [*nodes, *sorted(set(per_node) - set(nodes))]:
        counts = per_node[name]
        cell = one_line(name, 100).replace("|", "\\|")
        lines.append(f"| {cell} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |")
    if node_lines:
        lines += ["", "## Nodes", "", fenced("\n".join(clean(ln) for ln in node_lines))]
    if bad:
        lines += ["", "## Failures", ""]
        lines += [fenced("\n".join(f"{r['id']} ({r['outcome']}):\n    "
                                   + clean(r["message"]).replace("\n", "\n    ")
                                   for r in bad))]
    skipped = [r for r in results if r["outcome"] == "skipped"]
    if skipped:
        lines += ["", "## Skipped", "",
                  fenced("\n".join(f"{r['id']}: {one_line(r['message'])}" for r in skipped))]
    return "\n".join(lines) + "\n"


def incomplete(cluster: str, reason: str) -> str:
    """The summary of a run that did not finish: never a stale verdict beside new results."""
    return (f"# cluster-preflight: {one_line(cluster, 200)}\n\n**INCOMPLETE**: "
            f"{one_line(reason, 500)}\n")


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", errors="replace")
    tmp.replace(path)


def group_junit_by_node(path: Path, cluster: str) -> None:
    """Rewrite pytest's JUnit so each node is one <testsuite> named cluster:node."""
    tree = ET.parse(path)
    root = tree.getroot()
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    cases = [case for suite in suites for case in suite.findall("testcase")]
    by_node: dict[str, list] = defaultdict(list)
    for case in cases:
        node = next((p.get("value") for p in case.iter("property") if p.get("name") == "node"),
                    "cluster")
        by_node[node].append(case)
    out = ET.Element("testsuites", name=cluster)
    for node, members in by_node.items():
        suite = ET.SubElement(out, "testsuite", name=f"{cluster}:{node}")
        counts = {"tests": len(members), "failures": 0, "errors": 0, "skipped": 0}
        for case in members:
            counts["failures"] += case.find("failure") is not None
            counts["errors"] += case.find("error") is not None
            counts["skipped"] += case.find("skipped") is not None
            suite.append(case)
        for key, value in counts.items():
            suite.set(key, str(value))
        suite.set("time", f"{sum(float(c.get('time', 0)) for c in members):.3f}")
    ET.ElementTree(out).write(path, encoding="utf-8", xml_declaration=True)
