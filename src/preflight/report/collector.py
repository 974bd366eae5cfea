"""Reports for ops: results.json, report.html and summary.md at the end of a run, and
JUnit grouped by node."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from preflight.checks import references
from preflight.core.nodetext import clean, fenced, one_line
from preflight.live import once
from preflight.report import history, metrics
from preflight.report import html as htmlreport
from preflight.report import results as results_mod
from preflight.report import text as text_mod

OUTCOMES = results_mod.OUTCOMES


class Collector:
    """Registered in the controlling process only; sees every report, xdist or not, and
    writes the run's outputs at the end: results.json (the record), report.html and
    summary.md (made from it), and the run into reports/history/."""

    def __init__(self, config: pytest.Config, cluster, nodes: list, state,
                 after_run=None) -> None:
        """state: the run's RunState; after_run(results) -> what the scheduler was told
        (the launcher acts; this only shows it)."""
        self.config, self.cluster, self.nodes = config, cluster, nodes
        self.state, self.after_run = state, after_run
        self.gathered: dict[str, dict] = {}  # the run's facts, once the plugin has them
        self.by_test: dict[str, dict] = {}
        self.durations: dict[str, float] = defaultdict(float)
        self.started = time.time()

    @property
    def results(self) -> list[dict]:
        return list(self.by_test.values())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.durations[report.nodeid] += report.duration
        outcome = _outcome(report)
        if outcome is None:
            return
        props = dict(report.user_properties)
        if props.get("waiver_state") == "applied":
            outcome = "waived"
        self.by_test[report.nodeid] = results_mod.entry(
            report.nodeid, outcome, props, _message(report), self.durations[report.nodeid])

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        out = Path(self.config.getoption("report_dir"))
        for nodeid, result in self.by_test.items():  # teardown time comes after the outcome
            result["duration_s"] = round(self.durations[nodeid], 3)
        try:
            doc = self._document(out)
            text = self._summary(doc)
        except Exception as exc:  # a report must never stay stale: say why it is partial
            text = incomplete(self.cluster.name, f"the reports could not be made "
                              f"({type(exc).__name__}: {clean(exc, 300)})")
            doc = None
        if doc is None:
            mark_incomplete(out, None, self.cluster.name, text.split("**INCOMPLETE**: ", 1)[-1])
            return
        notes = doc.setdefault("notes", [])
        try:
            history.record(doc, out / "history", self.cluster.report.history, notes)
        except OSError as exc:  # an unwritable history never costs the run its reports
            notes.append(f"history: this run is not recorded: {clean(exc, 200)}")
        text += "".join(f"\n{one_line(n, 400)}\n" for n in notes)
        write_atomic(out / "summary.md", text)
        write_atomic(out / "results.json", results_mod.dumps(doc))
        write_atomic(out / "report.html", htmlreport.render(doc))
        metrics.write(doc, self.gathered or {}, out)

    def _document(self, out: Path) -> dict:
        gathered = self.gathered
        folder = Path(self.config.rootpath) / out
        run_id = self.state.run_id
        outcome = once.read(folder, "nccl", run_id)
        pairs = once.read(folder, "nccl-pairwise", run_id)
        threshold = _threshold(self.cluster, gathered) if outcome or pairs else None
        names = [n.name for n in self.nodes]
        run = results_mod.run_info(self.cluster, names, self.started, time.time(),
                                   run_id)
        doc = results_mod.document(
            run, self.results,
            node_lines=[clean(text_mod.one_line(n, gathered[n])) for n in names if n in gathered],
            env={"drift": results_mod.env_drift(gathered),
                 "launch_drift": results_mod.launch_drift(gathered,
                                                          self.cluster.launch.may_differ),
                 "unchecked": [clean(u) for u in self.cluster.env.unchecked]},
            collective=results_mod.collective(outcome, pairs, threshold),
            waivers=waiver_status(self.cluster.waivers, self.results))
        doc["slurm"] = self.after_run(doc["results"]) if self.after_run else None
        doc["notes"] = []
        previous = history.previous(out / "history", run["cluster"], doc["notes"])
        doc["diff"] = history.diff(previous, doc) if previous else None
        return doc

    def _summary(self, doc: dict) -> str:
        text = summary(self.cluster.name, doc["run"]["nodes"], doc["results"],
                       doc["run"]["seconds"], doc["node_lines"])
        col = doc["collective"]
        if col and col["world"] is not None:
            text += "\n## Collective\n\n" + (text_mod.busbw_table(col) or
                                               "no bandwidth measured (the run failed)") + "\n"
        return text + waiver_lines(doc["waivers"]) + diff_lines(doc["diff"]) + \
            slurm_lines(doc["slurm"])

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter) -> None:
        """pytest's own clock starts after the facts were gathered: say the whole time."""
        bad = sum(r["outcome"] in ("failed", "error") for r in self.results)
        verdict = "PASS" if not bad else f"FAIL ({bad} of {len(self.results)} checks)"
        terminalreporter.write_line(
            f"cluster-preflight: {verdict} on {len(self.nodes)} nodes in "
            f"{time.time() - self.started:.1f} s, facts gathering included; "
            f"reports in {self.config.getoption('report_dir')}/ (report.html)")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        xml = getattr(config.option, "xmlpath", None)
        if xml and Path(xml).exists():
            group_junit_by_node(Path(xml), self.cluster.name)


def _threshold(cluster, gathered: dict) -> dict:
    from preflight.core.errors import UserError
    try:
        return references.for_cluster(cluster, gathered).as_dict()
    except UserError as exc:
        return {"floor_gbps": None, "wanted_gbps": None, "tolerance": None,
                "source": clean(exc, 300)}


def waiver_status(waivers: tuple, results: list[dict]) -> dict:
    """Which waivers applied, which ran out (the failure stands) and which matched no
    failure at all (stale: the problem is gone, or the pattern is wrong)."""
    used = {r["waiver"]["id"]: r["waiver"]["state"] for r in results if r.get("waiver")}

    def shown(waiver) -> dict:  # a reason is the user's text: cleaned as node text is
        return {k: clean(v, 500) if isinstance(v, str) else v
                for k, v in waiver.as_dict().items()}
    return {"applied": [shown(w) for w in waivers if used.get(w.id) == "applied"],
            "expired": [shown(w) for w in waivers if used.get(w.id) == "expired"],
            "stale": [shown(w) for w in waivers if w.id not in used]}


def waiver_lines(status: dict) -> str:
    lines = [f"{w['id']}: {w['check']} on {w['nodes']} expired {w['expires']}"
             for w in status["expired"]]
    lines += [f"{w['id']}: {w['check']} on {w['nodes']}: stale (matched no failure)"
              for w in status["stale"]]
    return "\n## Waivers\n\n" + fenced("\n".join(clean(ln) for ln in lines)) + "\n" \
        if lines else ""


def slurm_lines(actions: dict | None) -> str:
    if actions is None:
        return ""
    shown = text_mod.scheduler_lines(actions) or ["nothing to drain or resume"]
    title = "Slurm (dry run: --drain-failed / --resume-fixed act)" if actions["dry_run"] \
        else "Slurm"
    return f"\n## {title}\n\n" + fenced("\n".join(clean(x) for x in shown)) + "\n"


def diff_lines(diff: dict | None) -> str:
    if not diff:
        return ""
    parts = [f"{title}: {', '.join(diff[key]) or 'none'}" for key, title in (
        ("newly_failing", "newly failing"), ("fixed", "fixed"),
        ("still_failing", "still failing"), ("nodes_added", "nodes added"),
        ("nodes_removed", "nodes removed"))]
    parts += [f"busbw {c['what']}: {c['before']:.4g} -> {c['now']:.4g} GB/s ({c['change']:+.1%})"
              for c in diff["busbw"]]
    return "\n## Since the last run\n\n" + fenced("\n".join(clean(p) for p in parts)) + "\n"


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
        return report.longrepr[2].removeprefix("Skipped: ")
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
        lines += [fenced("\n".join(f"{r['test']} ({r['outcome']}):\n    "
                                   + clean(r["message"]).replace("\n", "\n    ")
                                   for r in bad))]
    skipped = text_mod.folded_skips(results)
    if skipped:  # folded as report.html folds them: one line per check and reason
        lines += ["", "## Skipped", "",
                  fenced("\n".join(f"{check} on {nodes}: {one_line(reason)}"
                                   for check, nodes, reason in skipped))]
    return "\n".join(lines) + "\n"


def incomplete(cluster: str, reason: str) -> str:
    """The summary of a run that did not finish: never a stale verdict beside new results."""
    return (f"# cluster-preflight: {one_line(cluster, 200)}\n\n**INCOMPLETE**: "
            f"{one_line(reason, 500)}\n")


def mark_incomplete(out: Path, junit: Path | None, cluster: str, reason: str) -> None:
    """Every report file a run owns says INCOMPLETE with the reason, until (unless) the run
    writes its own: a CI gate never reads an earlier run's verdict. results.json keeps its
    schema with no results and the top-level verdict `incomplete`; the JUnit file is one
    error, so a gate on it fails too."""
    reason = one_line(reason, 500)
    write_atomic(out / "summary.md", incomplete(cluster, reason))
    write_atomic(out / "results.json", results_mod.dumps(results_mod.incomplete(cluster,
                                                                                reason)))
    write_atomic(out / "report.html", htmlreport.incomplete(cluster, reason))
    metrics.incomplete(cluster, out)
    if junit is not None:
        write_atomic(junit, incomplete_junit(cluster, reason))


def incomplete_junit(cluster: str, reason: str) -> str:
    suite = ET.Element("testsuite", name=f"{cluster}:run", tests="1", errors="1",
                       failures="0", skipped="0")
    case = ET.SubElement(suite, "testcase", classname="preflight", name="run")
    ET.SubElement(case, "error", message=f"INCOMPLETE: {reason}").text = reason
    root = ET.Element("testsuites")
    root.append(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


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
