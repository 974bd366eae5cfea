"""results.json: every result of a run in a versioned, documented schema that other tools
read; report.html and the run-to-run diff are made from it (docs/results.md).

Everything in it that came from a node or a config file has been through nodetext.clean
(redacted, control characters visible, capped): it is data, safe to render anywhere once
escaped for the output at hand.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
from collections import defaultdict
from pathlib import Path

from ClusterShell.NodeSet import NodeSet

from preflight.checks import sameness
from preflight.checks.launchenv import LaunchEnvs
from preflight.core.nodetext import clean, one_line

SCHEMA = "cluster-preflight/results"
VERSION = 1
BAD = ("failed", "error")
OUTCOMES = ("passed", "failed", "error", "skipped", "waived")


def entry(nodeid: str, outcome: str, props: dict, message: str, duration: float) -> dict:
    """One test's result. `check` is the test function (what waivers match), `suite` its
    file (tests/test_<suite>.py), `test` the id ops see in JUnit."""
    test = nodeid.rsplit("::", maxsplit=1)[-1]
    file = nodeid.split("::", maxsplit=1)[0].rsplit("/", 1)[-1]
    return {"test": test, "suite": file.removeprefix("test_").removesuffix(".py"),
            "check": props.get("check") or test.split("[")[0],
            "node": props.get("node", "cluster"), "outcome": outcome,
            "expected": props.get("expected", ""), "found": props.get("found", ""),
            "hint": props.get("hint", ""), "severity": props.get("severity") or None,
            "message": message,
            "duration_s": round(duration, 3),
            "waiver": {"id": props["waiver"], "state": props.get("waiver_state")}
            if props.get("waiver") else None,
            "value": props.get("busbw_gbps")}


def verdict(results: list[dict]) -> str:
    return "FAIL" if any(r["outcome"] in BAD for r in results) else "PASS"


def counts(results: list[dict]) -> dict[str, int]:
    tally = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        tally[result["outcome"]] += 1
    return tally


def run_info(cluster, nodes: list[str], started: float, finished: float,
             run_id: str) -> dict:
    stamp = datetime.datetime.fromtimestamp
    return {"id": run_id, "cluster": one_line(cluster.name, 200), "nodes": nodes,
            "started": stamp(started, datetime.UTC).isoformat(timespec="seconds"),
            "finished": stamp(finished, datetime.UTC).isoformat(timespec="seconds"),
            "seconds": round(finished - started, 2),
            "commit": git_commit(cluster.path.parent), "env": env_hash(cluster)}


def git_commit(folder: Path) -> str | None:
    """The commit of the repository cluster.yaml lives in (+ "-dirty"), or None."""
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip()[:40] + ("-dirty" if dirty.stdout.strip() else "")


def env_hash(cluster) -> dict:
    """sha256 of what pins the env: the lock when there is one, else environment.yml."""
    path = cluster.lock or cluster.environment
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = None
    return {"file": path.name, "sha256": digest}


DRIFT_ROWS_MAX = 300  # a node with 50,000 packages must not make a 8 MB page: the rest counted


def env_drift(cluster_facts: dict[str, dict]) -> list[dict]:
    """Packages (conda, and pip-installed as pip:NAME) whose version, build or channel
    differ between nodes, each with the nodes holding each variant (folded):
    [{"package", "variants": [{"value", "nodes"}]}]."""
    # the same inventories the console's drift table reads: conda records and the
    # pip-installed dists (pip:NAME), one place for both
    nodes = sameness.comparable(cluster_facts)
    by_package: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, inventory in nodes.items():
        for package, value in inventory.items():
            by_package[package][value].append(name)
    everyone = set(nodes)
    rows: list[dict] = []
    more = 0
    for package, variants in sorted(by_package.items()):
        holders = {n for names in variants.values() for n in names}
        if holders != everyone:
            variants["absent"] = sorted(everyone - holders)
        if len(variants) <= 1:
            continue
        if len(rows) >= DRIFT_ROWS_MAX:
            more += 1
            continue
        rows.append({"package": clean(package, 200), "variants": [
            {"value": clean(value, 300), "nodes": str(NodeSet.fromlist(names))}
            for value, names in sorted(variants.items(), key=lambda kv: -len(kv[1]))]})
    if more:
        rows.append({"package": f"(and {more} more packages that differ)", "variants": []})
    return rows


def launch_drift(cluster_facts: dict[str, dict], may_differ: list[str]) -> list[dict]:
    """Launch variables (and the python/torchrun PATH finds) that differ between nodes, as
    env_drift: [{"variable", "variants": [{"value", "nodes"}]}]."""
    rows = LaunchEnvs(cluster_facts, may_differ).rows
    out = []
    for var, values in sorted(rows.items()):
        variants: dict[str, list[str]] = defaultdict(list)
        for node, value in values.items():
            variants[value].append(node)
        out.append({"variable": clean(var, 200), "variants": [
            {"value": clean(value, 300), "nodes": str(NodeSet.fromlist(names))}
            for value, names in sorted(variants.items(), key=lambda kv: -len(kv[1]))]})
    return out


def collective(outcome: dict | None, pairs: dict | None, threshold: dict | None) -> dict | None:
    """The busbw sweep (rank 0's view), the pairwise matrix and the threshold drawn in."""
    if not outcome and not pairs:
        return None
    outcome = outcome or {}
    return {"world": outcome.get("world"), "backend": outcome.get("backend"),
            "launcher": outcome.get("launcher"), "ok": outcome.get("ok"),
            "sweep": outcome.get("sweep") or [],
            "pairs": (pairs or {}).get("pairs"), "pair_verdict": (pairs or {}).get("verdict"),
            "threshold": threshold}


def document(run: dict, results: list[dict], **parts) -> dict:
    """The whole results.json: run, results, and the parts (env, collective, waivers,
    node_lines, diff). The top-level verdict is the run's, or `incomplete` (incomplete())."""
    run = {**run, "verdict": verdict(results), "counts": counts(results)}
    return {"schema": SCHEMA, "version": VERSION, "verdict": run["verdict"], "run": run,
            "results": results, **parts}


def incomplete(cluster: str, reason: str) -> dict:
    """results.json of a run that has not finished (or was stopped): no results, and a
    verdict a gate cannot mistake for a pass."""
    return {"schema": SCHEMA, "version": VERSION, "verdict": "incomplete", "reason": reason,
            "run": {"cluster": cluster, "verdict": "INCOMPLETE", "counts": counts([])},
            "results": []}


def dumps(doc: dict) -> str:
    """results.json's text: compact (18 MB for 2,000 nodes x 40 checks, not 30)."""
    return json.dumps(doc, separators=(",", ":"))


def readable(doc: object) -> bool:
    """A results document this version can read (history may hold older or foreign files)."""
    return isinstance(doc, dict) and doc.get("schema") == SCHEMA and \
        doc.get("version") == VERSION and isinstance(doc.get("results"), list) and \
        isinstance(doc.get("run"), dict)
