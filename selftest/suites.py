"""Run the real suites (tests/) as a user would, against a given cluster.yaml."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    rc: int
    output: str
    seconds: float
    cases: dict[str, str]  # test id -> passed/failed/error/skipped
    messages: dict[str, str]

    def outcomes(self, node: str) -> set[str]:
        return {o for case, o in self.cases.items() if case.endswith(f"[{node}]")}


def run_suites(cluster_yaml: Path, tmp_path: Path, *args: str, timeout: float = 300) -> Run:
    junit = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "tests", "--rootdir", str(REPO),
            "-p", "no:cacheprovider", f"--cluster={cluster_yaml}", f"--junitxml={junit}",
            f"--report-dir={tmp_path}", "-q", *args]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    cases, messages = _read_junit(junit) if junit.exists() else ({}, {})
    return Run(done.returncode, done.stdout + done.stderr, seconds, cases, messages)


def _read_junit(path: Path) -> tuple[dict, dict]:
    cases, messages = {}, {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name")
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            child = case.find(tag)
            if child is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                messages[name] = child.get("message", "") + "\n" + (child.text or "")
        cases[name] = outcome
    return cases, messages


REPLAY_CLUSTER = """\
cluster: replay
environment: {repo}/environment.yml
defaults: {{user: root, port: 9, ssh_config: null}}
sync: {{source: {repo}/fixtures/demo_workspace}}
ssh: {{host_pattern: node-*, user: root}}
jupyter: {{display_name: Python (PyTorch-Dist)}}
nodes:
{nodes}
"""


def replay_cluster(tmp_path: Path, names: list[str], extra: str = "") -> Path:
    """A cluster.yaml for recorded facts: the simulated cluster's settings and addresses
    (never contacted: a replay opens no connection)."""
    nodes = "\n".join(f"  - {{name: {n}"
                      + (f", address: 10.231.7.{10 + i}" if i < 240 else "")
                      + (", role: master" if i == 1 else "") + "}"
                      for i, n in enumerate(names, start=1))
    path = tmp_path / "cluster.yaml"
    path.write_text(REPLAY_CLUSTER.format(repo=REPO, nodes=nodes) + extra)
    return path


def replay(tmp_path: Path, docs: dict, *args: str, names: list[str] | None = None,
           extra: str = "") -> Run:
    """The real suites on recorded facts (--facts), for the nodes in names (default: docs')."""
    import json
    facts = tmp_path / "replayed.json"
    facts.write_text(json.dumps(docs))
    cluster = replay_cluster(tmp_path, names or list(docs), extra)
    return run_suites(cluster, tmp_path, f"--facts={facts}", *args)
