"""report.html: rendered from results.json, one self-contained file, node text as data;
and read by a real browser (headless Chromium): the matrix, folded ranges, drift, chart."""

from __future__ import annotations

import copy
import json
import re

import pytest

from preflight.report import history
from preflight.report import html as htmlreport
from selftest import browser, recorded, synthetic
from selftest.suites import REPO, replay

HOSTILE = "</td></tr><script>alert(1)</script>\\x1b"


def test_folds_healthy_nodes_and_puts_failing_ones_first():
    doc = synthetic.document(120, checks=10, bad_share=0.05)
    page = htmlreport.render(doc)
    bad = sorted({r["node"] for r in doc["results"] if r["outcome"] == "failed"})
    assert len(bad) == 6
    rows = re.findall(r'<tr class="(bad|folded)"><th>([^<]*)</th>', page)
    assert [name for kind, name in rows if kind == "bad"] == bad
    assert rows[0][0] == "bad"  # failures first
    folded = [name for kind, name in rows if kind == "folded"]
    assert len(folded) == 1
    assert folded[0].startswith("worker-[")
    assert "114 nodes: 9 passed, 1 skipped" in page
    for anchor in re.findall(r'<a href="#(r\d+)">', page):  # every cell opens its finding
        assert f'id="{anchor}"' in page


def test_node_text_is_text_in_every_part_of_the_page():
    doc = synthetic.document(8, checks=4, bad_share=0.25)
    doc["results"][0].update(outcome="failed", found=HOSTILE, message=HOSTILE, node=HOSTILE)
    doc["run"]["nodes"].append(HOSTILE)
    doc["env"]["drift"][0]["package"] = HOSTILE
    doc["env"]["unchecked"] = [HOSTILE]
    doc["collective"]["pairs"] = {f"a<->{HOSTILE}": {"ok": True, "busbw_gbps": 1.0}}
    doc["diff"] = {"previous": {"id": HOSTILE}, "newly_failing": [HOSTILE], "fixed": [],
                   "still_failing": [], "nodes_added": [], "nodes_removed": [], "busbw": []}
    page = htmlreport.render(doc)
    assert page.count("<script>") == 1
    assert "</td></tr><script>alert" not in page
    assert page.count("&lt;/td&gt;&lt;/tr&gt;&lt;script&gt;alert(1)") >= 6


def test_history_keeps_the_last_n_and_skips_foreign_files(tmp_path):
    for seed in range(5):
        doc = synthetic.document(4, checks=2, seed=seed)
        doc["run"]["finished"] = f"2026-11-27T00:0{seed}:00+00:00"
        history.record(doc, tmp_path, keep=3)
    (tmp_path / "99999999T999999-junk.json.gz").write_bytes(b"not gzip")
    assert len(history.runs(tmp_path)) == 4  # 3 kept + the junk file, never read as a run
    assert history.previous(tmp_path, "synthetic")["run"]["id"] == "synthetic4"
    assert history.previous(tmp_path, "another cluster") is None


def _collective(doc: dict) -> dict:
    """A recorded-shape collective (rank 0's sweep, pairs of 8 nodes, a threshold)."""
    names = doc["run"]["nodes"][:8]
    pairs = {f"{a}<->{b}": {"ok": True, "busbw_gbps": 2.0 if "node-5" not in (a, b) else 0.6,
                            "reasons": []}
             for i, a in enumerate(names) for b in names[i + 1:]}
    return {"world": len(doc["run"]["nodes"]), "backend": "gloo", "ok": True,
            "sweep": synthetic.sweep(2.4), "pairs": pairs,
            "pair_verdict": {"node-5": "every pair with node-5 is slow"},
            "threshold": {"floor_gbps": 1.8, "wanted_gbps": 2.0, "tolerance": 0.1,
                          "source": "cluster.yaml"}}


@pytest.mark.skipif(browser.chromium() is None, reason="needs Debian's chromium (.ci/run "
                    "installs it)")
def test_64_node_report_in_headless_chromium(tmp_path):
    names = [f"node-{i}" for i in range(1, 65)]
    docs = recorded.fleet(names)
    assert replay(tmp_path, docs, "-m", "not nccl").rc == 0
    broken = copy.deepcopy(docs)
    nccl = next(r for r in broken["node-7"]["env"]["conda"] if r["name"] == "nccl")
    nccl["version"] = "2.21.5.1"
    run = replay(tmp_path, broken, "-m", "not nccl")
    assert run.rc == 1
    doc = json.loads((tmp_path / "results.json").read_text())
    failed = sorted(c for c, o in run.cases.items() if o == "failed")
    assert failed == ["test_env_same_on_every_node[node-7]"]
    assert doc["diff"]["newly_failing"] == failed
    doc["collective"] = _collective(doc)
    page = tmp_path / "report.html"
    page.write_text(htmlreport.render(doc))
    assert page.stat().st_size < 1_000_000
    seen = browser.render(page, tmp_path / "profile")
    assert seen.console == []
    assert browser.dataset(seen.dom, "ready") == "1"
    assert browser.dataset(seen.dom, "errors") is None
    dom = seen.dom
    assert re.search(r'<tr class="bad"><th>node-7</th>', dom)
    assert '<tr class="folded"><th>node-[1-6,8-64]</th>' in dom
    assert re.search(r'<table id="drift-table"><tbody><tr><th>nccl</th><td>2\.23\.4\.1 [^<]*'
                     r'<br><span class="muted">node-\[1-6,8-64\]</span></td><td>2\.21\.5\.1', dom)
    assert '<svg id="busbw-chart"' in dom
    assert 'id="busbw-floor"' in dom
    assert '<svg id="pair-heatmap"' in dom
    assert "test_env_same_on_every_node[node-7]" in dom.split('id="diff-newly_failing"')[1][:300]
    browser.screenshot(page, REPO / "reports" / "report-64-nodes.png", tmp_path / "profile")
    assert (REPO / "reports" / "report-64-nodes.png").stat().st_size > 10_000


def test_history_is_read_bounded_and_never_stops_a_run(tmp_path, monkeypatch):
    """A gzip bomb, a FIFO named like a record, a record missing a key, junk dated in the
    far future: each skipped and said; this run's own record is never the one pruned."""
    import gzip
    import os
    monkeypatch.setattr(history, "MAX_RECORD_BYTES", 1 << 20)  # a bomb of 64 MB is slow
    good = synthetic.document(2, checks=1, seed=1)
    history.record(good, tmp_path, keep=2)
    with gzip.open(tmp_path / "20261127T000200-bomb.json.gz", "wb") as bomb:
        bomb.write(b"[" + b" " * (history.MAX_RECORD_BYTES + 10) + b"]")
    os.mkfifo(tmp_path / "20261127T000300-fifo.json.gz")
    broken = synthetic.document(2, checks=1, seed=2)
    del broken["results"][0]["test"]
    broken["run"]["finished"] = "2026-11-27T00:04:00+00:00"
    history.record(broken, tmp_path, keep=5)
    (tmp_path / "99991231T235959-junk.json.gz").write_bytes(b"junk")
    notes: list[str] = []
    assert history.previous(tmp_path, "synthetic", notes)["run"]["id"] == "synthetic1"
    assert any("skipped 3 unreadable record(s)" in n for n in notes), notes
    assert any("not run records: 20261127T000300-fifo.json.gz" in n for n in notes), notes
    newest = synthetic.document(2, checks=1, seed=3)
    newest["run"]["finished"] = "2026-11-27T00:09:00+00:00"
    kept = history.record(newest, tmp_path, keep=1, notes=notes)
    assert kept.exists()  # the far-future junk did not push it out
    assert (tmp_path / "99991231T235959-junk.json.gz").exists()  # not ours to delete


def test_a_history_that_is_a_file_is_said_not_a_traceback(tmp_path):
    (tmp_path / "history").write_text("oops")
    notes: list[str] = []
    assert history.record(synthetic.document(2, checks=1), tmp_path / "history", 3,
                          notes) is None
    assert "is not a folder" in notes[0]
