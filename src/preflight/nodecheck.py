"""`preflight node-check`: the per-node checks against this machine only, fit for Slurm's
HealthCheckProgram (which kills it after 60 s and only logs its exit code).

No SSH: the probe runs here as a child process; the suites then run on its facts as a
replay (--facts), so the checks that need other nodes skip and say why. Exit 0 when
every check holds, 1 when one fails, 2 on a config error. With --drain a failing node
drains itself through scontrol (reason prefixed with slurm.drain_prefix); with --resume
a passing node that this harness drained resumes itself.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from preflight.config.inventory import Cluster, Node
from preflight.core.errors import UserError
from preflight.launchers import registry


def this_node(cluster: Cluster, name: str | None) -> Node:
    name = name or socket.gethostname().split(".")[0]
    try:
        return cluster.node(name)
    except StopIteration:
        msg = f"this machine ({name}) is not a node of {cluster.path}; give --node NAME"
        raise UserError(msg) from None


def probe_here(cluster: Cluster, node: Node) -> dict:
    """The probe, run locally (the local launcher) as the SSH launcher runs it remotely."""
    return registry.create(cluster, "local").gather([node])[node.name]


def run(cluster: Cluster, name: str | None, *, drain: bool, resume: bool,
        report_dir: Path, prom_dir: Path | None = None) -> int:
    node = this_node(cluster, name)
    with tempfile.TemporaryDirectory(prefix="preflight-node-check-") as tmp:
        path = Path(tmp) / "facts.json"
        path.write_text(json.dumps({node.name: probe_here(cluster, node)}))
        suites = Path(__file__).resolve().parents[2] / "tests"
        command = [sys.executable, "-m", "pytest", str(suites), "--rootdir",
                   str(suites.parent), "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                   f"--cluster={cluster.path}", f"--nodes={node.name}", f"--facts={path}",
                   "-m", "not nccl", f"--report-dir={report_dir}"]
        rc = subprocess.run(command, check=False).returncode
    if drain or resume:
        _tell_slurm(cluster, report_dir, drain=drain, resume=resume)
    if prom_dir is not None:
        _publish(report_dir, prom_dir, node.name)
    return {0: 0, 1: 1, 2: 2, 4: 2}.get(rc, 1)  # pytest's 2/4: interrupted, usage error


def _publish(report_dir: Path, prom_dir: Path, node: str) -> None:
    """The run's metrics file into node_exporter's textfile folder, atomically (the
    collector reads *.prom; a half-written file would be a scrape error), named by node
    so several harness files can sit side by side."""
    from preflight.report import metrics
    source = report_dir / metrics.FILE
    target = prom_dir / f"cluster-preflight-{node}.prom"
    try:
        prom_dir.mkdir(parents=True, exist_ok=True)
        tmp = prom_dir / f".{target.name}.tmp"  # no .prom suffix: the collector skips it
        tmp.write_bytes(source.read_bytes())
        tmp.replace(target)
    except OSError as exc:
        print(f"preflight node-check: metrics not written to {prom_dir}: {exc.strerror}",
              file=sys.stderr)


def _tell_slurm(cluster: Cluster, report_dir: Path, *, drain: bool, resume: bool) -> None:
    from preflight.report.text import scheduler_lines
    doc = json.loads((report_dir / "results.json").read_text())
    actions = registry.create(cluster, "local").after_run(doc["results"], drain=drain,
                                                          resume=resume)
    for line in scheduler_lines(actions):
        print(f"preflight node-check: {line}")
