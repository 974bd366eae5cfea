"""The metrics file: Prometheus' own parser reads it, with a status series for every node
and check (skips and waivers told apart from passes), the run's timestamp, nodes by
verdict and measured values in base units; a run that has not finished leaves no status."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from preflight.report import metrics
from selftest import recorded, synthetic
from selftest.suites import REPO, replay


def families(path) -> dict:
    return {f.name: f for f in text_string_to_metric_families(path.read_text())}


def test_a_run_leaves_every_status_its_timestamp_and_values_in_base_units(tmp_path):
    doc = synthetic.document(3, checks=4, seed=2)
    doc["results"][0]["outcome"] = "waived"
    doc["results"][1]["outcome"] = "skipped"
    doc["results"][2]["value"] = 12.5  # GB/s, as results.json records busbw
    gathered = {n: {"reach": {"ok": True, "seconds": 1.25}} for n in doc["run"]["nodes"]}
    found = families(metrics.write(doc, gathered, tmp_path))
    status = found["cluster_preflight_check_status"].samples
    assert len(status) == len(doc["results"])
    by_outcome = {s.labels["outcome"]: s.value for s in status}
    assert by_outcome["waived"] == 1
    assert by_outcome["skipped"] == 1
    failed = [s for s in status if s.labels["outcome"] in ("failed", "error")]
    assert all(s.value == 0 for s in failed)
    assert found["cluster_preflight_last_run_timestamp_seconds"].samples[0].value > 1.7e9
    assert found["cluster_preflight_last_run_complete"].samples[0].value == 1
    busbw = found["cluster_preflight_busbw_bytes_per_second"].samples
    assert [s.value for s in busbw] == [12.5e9]
    assert {s.value for s in found["cluster_preflight_probe_seconds"].samples} == {1.25}
    verdicts = {s.labels["verdict"]: s.value for s in found["cluster_preflight_nodes"].samples}
    assert verdicts["ok"] + verdicts["failed"] == 3


def test_an_unfinished_run_leaves_no_status_of_an_earlier_one(tmp_path):
    doc = synthetic.document(2, checks=2)
    metrics.write(doc, {}, tmp_path)
    found = families(metrics.incomplete("synthetic", tmp_path))
    assert set(found) == {"cluster_preflight_last_run_complete"}
    assert found["cluster_preflight_last_run_complete"].samples[0].value == 0


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="no promtool (Debian's "
                                    "prometheus package; .ci/run installs it)")
RULES = REPO / "docs" / "prometheus"


@needs_promtool
def test_the_alert_rules_pass_promtool_check_and_their_own_tests():
    for argv in (["check", "rules", "cluster-preflight.rules.yml"],
                 ["test", "rules", "cluster-preflight.rules.test.yml"]):
        done = subprocess.run([PROMTOOL, *argv], cwd=RULES, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_a_real_runs_metrics_pass_promtool_check_metrics(tmp_path):
    """A run of the suites (on recorded facts: no network needed) leaves a file that
    Prometheus' own linter accepts, with a status for every node and check."""
    run = replay(tmp_path, recorded.fleet([f"node-{i}" for i in range(1, 4)]))
    assert run.rc == 0, run.output[-2000:]
    text = (tmp_path / metrics.FILE).read_text()
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    found = {f.name: f for f in text_string_to_metric_families(text)}
    status = found["cluster_preflight_check_status"].samples
    per_node = {(s.labels["node"], s.labels["check"]) for s in status}
    assert len(per_node) == len(status) == len(run.cases)


SYSTEMD = REPO / "docs" / "systemd"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_example_service_and_timer_pass_systemd_analyze_verify(tmp_path):
    """The units as shipped, with the checkout's paths pointed at this machine's python
    (verify insists that ExecStart's program exists)."""
    import sys
    for unit in SYSTEMD.glob("cluster-preflight-node-check.*"):
        text = unit.read_text().replace("/opt/cluster-preflight/.venv/bin/python",
                                        sys.executable)
        (tmp_path / unit.name).write_text(text.replace("/opt/cluster-preflight", str(tmp_path)))
    done = subprocess.run(["systemd-analyze", "verify",
                           *sorted(str(p) for p in tmp_path.iterdir())],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cluster-preflight-node-check" not in done.stderr, done.stderr


def test_node_check_publishes_its_metrics_atomically_by_node_name(tmp_path):
    from preflight import nodecheck
    report = tmp_path / "report"
    metrics.write(synthetic.document(1, checks=2), {}, report)
    nodecheck._publish(report, tmp_path / "textfile", "gpu-7")
    published = tmp_path / "textfile" / "cluster-preflight-gpu-7.prom"
    assert published.read_text() == (report / metrics.FILE).read_text()
    assert [p.name for p in (tmp_path / "textfile").iterdir()] == [published.name]
