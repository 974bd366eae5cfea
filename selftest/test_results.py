"""results.json's parts: env drift from facts, the busbw part of the diff, the waiver
status, and the document's schema markers."""

from __future__ import annotations

from preflight.report import collector as report
from preflight.report import history, results
from selftest import recorded, synthetic


def test_drift_lists_only_differing_packages_with_folded_nodes():
    fleet = recorded.fleet([f"node-{i}" for i in range(1, 6)])
    nccl = next(r for r in fleet["node-3"]["env"]["conda"] if r["name"] == "nccl")
    nccl["version"] = "2.21.5.1"
    fleet["node-5"]["env"]["conda"] = [r for r in fleet["node-5"]["env"]["conda"]
                                       if r["name"] != "numpy"]
    fleet["node-4"]["reach"] = {"ok": False, "reason": "unreachable"}  # not in any vote
    rows = {row["package"]: row["variants"] for row in results.env_drift(fleet)}
    assert set(rows) == {"nccl", "numpy"}
    assert [v["nodes"] for v in rows["nccl"]] == ["node-[1-2,5]", "node-3"]
    assert rows["numpy"][-1] == {"value": "absent", "nodes": "node-5"}


def test_launch_drift_lists_only_differing_variables_with_folded_nodes():
    fleet = recorded.fleet([f"node-{i}" for i in range(1, 5)])
    for name, doc in fleet.items():
        doc["runtime"]["launch_env"] = {"PATH": "/usr/bin", "NCCL_DEBUG": "WARN"} | (
            {"LD_LIBRARY_PATH": "/scratch/nccl"} if name == "node-3" else {})
    rows = results.launch_drift(fleet, [])
    assert rows == [{"variable": "LD_LIBRARY_PATH", "variants": [
        {"value": "(unset)", "nodes": "node-[1-2,4]"},
        {"value": "/scratch/nccl", "nodes": "node-3"}]}]
    assert results.launch_drift(fleet, ["LD_LIBRARY_PATH"]) == []


def test_busbw_changes_beyond_five_percent_only():
    before = synthetic.document(2, checks=1)
    now = synthetic.document(2, checks=1)
    for doc, speeds in ((before, (10.0, 10.0)), (now, (10.4, 8.0))):
        for result, speed in zip(doc["results"], speeds, strict=True):
            result["value"] = speed
    changes = history.busbw_changes(before, now)
    assert [(c["what"], c["change"]) for c in changes] == [("worker-2", -0.2)]


def test_waiver_status_applied_expired_stale(tmp_path):
    from selftest.builders import GOOD, load
    found = load(tmp_path, GOOD)
    rows = [{"waiver": {"id": found[0].id, "state": "applied"}}, {"waiver": None}]
    status = report.waiver_status(found, rows)
    assert [w["owner"] for w in status["applied"]] == ["alice"]
    assert [w["owner"] for w in status["stale"]] == ["bob"]
    assert status["expired"] == []


def test_document_is_readable_and_counts_outcomes():
    doc = synthetic.document(10, checks=3, bad_share=0.2)
    assert results.readable(doc)
    assert doc["run"]["verdict"] == "FAIL"
    assert sum(doc["run"]["counts"].values()) == 30
    assert not results.readable({**doc, "version": 2})


def test_drift_of_a_node_with_fifty_thousand_packages_stays_small():
    fleet = recorded.fleet([f"node-{i}" for i in range(1, 5)])
    fleet["node-2"]["env"]["conda"] = fleet["node-2"]["env"]["conda"] + [
        {"name": f"junk{i}", "version": "1", "build": "0", "channel": "x"}
        for i in range(50_000)]
    rows = results.env_drift(fleet)
    assert len(rows) == results.DRIFT_ROWS_MAX + 1
    assert rows[-1]["package"] == f"(and {50_000 - results.DRIFT_ROWS_MAX} more packages " \
                                  "that differ)"


def test_report_drift_shows_the_pip_packages_the_console_drift_shows():
    """report.html's drift once listed conda records only; the console's listed pip
    dists too."""
    fleet = recorded.fleet([f"node-{i}" for i in range(1, 4)])
    fleet["node-2"]["env"]["pip"] = fleet["node-2"]["env"]["pip"] + [
        {"name": "nvidia-nccl-cu11", "version": "2.21.5", "installer": "pip",
         "path": "/x/nvidia_nccl_cu11-2.21.5.dist-info"}]
    rows = {row["package"]: row["variants"] for row in results.env_drift(fleet)}
    assert [v["nodes"] for v in rows["pip:nvidia-nccl-cu11"]] == ["node-[1,3]", "node-2"]


def skips(nodes: int) -> list[dict]:
    return [{"test": f"test_gpu_clocks_not_throttled[node-{i}]", "outcome": "skipped",
             "check": "test_gpu_clocks_not_throttled", "node": f"node-{i}",
             "message": f"node-{i}: clocks not checked: the node declares no GPUs (gpus: 0)"}
            for i in range(1, nodes + 1)]


def test_skips_fold_into_node_ranges_with_no_placeholder_in_summary_and_html():
    from preflight.report import html
    found = skips(4)
    summary = report.summary("c", [f"node-{i}" for i in range(1, 5)], found, 1.0)
    assert "test_gpu_clocks_not_throttled on node-[1-4]: clocks not checked: the node " \
           "declares no GPUs (gpus: 0)" in summary
    assert summary.count("clocks not checked") == 1
    page = html._skipped(found)
    assert "{node}" not in page
    assert "node-[1-4]" in page
