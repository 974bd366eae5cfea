"""Checks over chunks of nodes (chunks.py) report exactly what one item per node reports:
the same JUnit testcases with the same properties, the same results.json, and -k and
--lf per node. Replays (--facts): the real suites, no node contacted."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from selftest import recorded, suites
from selftest.suites import REPO

NAMES = [f"node-{i}" for i in range(1, 13)]


def _facts(tmp_path: Path) -> Path:
    """12 healthy recorded nodes; node-4 unreachable, node-9's Miniconda layout broken
    (and waived), node-11's sshd with password login on."""
    docs = recorded.fleet(NAMES)
    docs["node-4"]["reach"] = {"ok": False, "reason": "unreachable: replayed", "executions": 1}
    docs["node-9"] = recorded.set_path(docs["node-9"], "miniconda.layout.condabin/conda",
                                       {"exists": False})
    docs["node-11"] = recorded.set_path(docs["node-11"], "ssh.sshd_t.text",
                                        "passwordauthentication yes\n")
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(docs))
    return path


def _run(tmp_path: Path, facts: Path, *args: str, chunk_from: int = 4) -> tuple:
    out = tmp_path / f"run-{chunk_from}-{abs(hash(args))}"
    out.mkdir()
    waivers = out / "waivers.yaml"  # node-9's broken layout is waived: per node, as ever
    waivers.write_text("waivers:\n  - check: test_miniconda_layout_complete\n    nodes: node-9\n"
                       "    reason: replacement disk on order\n    owner: ops\n"
                       "    expires: 2099-01-01\n")
    cluster = suites.replay_cluster(out, NAMES, f"report: {{waivers: {waivers}}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "--rootdir", str(REPO), "-q",
         "-m", "not nccl", f"--cluster={cluster}", f"--facts={facts}", f"--report-dir={out}",
         f"--junitxml={out / 'junit.xml'}", f"--chunk-from={chunk_from}", "--chunk-size=5",
         *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    results = json.loads((out / "results.json").read_text())["results"]
    cases = {}
    for case in ET.parse(out / "junit.xml").iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        kinds = sorted(k.tag for k in case if k.tag != "properties")
        cases[(case.get("classname"), case.get("name"))] = (kinds, props)
    return done, {(r["test"], r["node"]): r for r in results}, cases


def _same(left: dict, right: dict) -> None:
    drop = ("duration_s",)
    assert set(left) == set(right), set(left) ^ set(right)
    for key, mine in left.items():
        a = {k: v for k, v in mine.items() if k not in drop}
        b = {k: v for k, v in right[key].items() if k not in drop}
        assert a == b, (key, a, b)


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
def test_chunks_report_what_one_item_per_node_reports(tmp_path, workers):
    facts = _facts(tmp_path)
    flat, flat_results, flat_cases = _run(tmp_path, facts, "-p", "no:cacheprovider", *workers,
                                          chunk_from=10_000)
    done, results, cases = _run(tmp_path, facts, "-p", "no:cacheprovider", *workers)
    assert done.returncode == flat.returncode == 1, done.stdout[-3000:]
    _same(flat_results, results)
    assert cases == flat_cases
    assert "[100%]" in done.stdout  # progress counts nodes, never past 100 %
    assert "%]" not in done.stdout.split("[100%]")[1]
    assert results[("test_miniconda_layout_complete[node-9]", "node-9")]["outcome"] == "waived"
    assert "[node-[" not in done.stdout  # a chunk's id is never shown as a test
    errors = {n for (_, n), r in results.items() if r["outcome"] == "error"}
    assert errors == {"node-4"}
    failed = {(t, n) for (t, n), r in results.items() if r["outcome"] == "failed"}
    assert failed == {("test_sshd_hardened[node-11]", "node-11")}, failed
    found = results[("test_sshd_hardened[node-11]", "node-11")]
    assert "passwordauthentication yes" in found["found"].lower(), found
    assert "test_sshd_hardened[node-11]" in done.stdout  # the terminal names the node


def test_k_and_lf_select_nodes_inside_a_chunk(tmp_path):
    facts = _facts(tmp_path)
    _, picked, cases = _run(tmp_path, facts, "-p", "no:cacheprovider", "-p", "no:xdist",
                            "-k", "node-7 and layout")
    assert set(picked) == {("test_miniconda_layout_complete[node-7]", "node-7")}
    assert len(cases) == 1
    _, rest, _ = _run(tmp_path, facts, "-p", "no:cacheprovider", "-p", "no:xdist",
                      "-k", "miniconda and not node-9")
    assert {n for _, n in rest} == set(NAMES) - {"node-9"}
    # --lf: only the nodes and checks that failed last time run again
    cache = ["-o", f"cache_dir={tmp_path / 'cache'}", "-p", "no:xdist"]
    first, everything, _ = _run(tmp_path, facts, *cache)
    assert first.returncode == 1
    bad = {k for k, r in everything.items() if r["outcome"] in ("failed", "error")}
    _, rerun, _ = _run(tmp_path, facts, *cache, "--lf")
    assert set(rerun) == bad, set(rerun) ^ bad
    assert "[node-[" not in (tmp_path / "cache" / "v" / "cache" / "lastfailed").read_text()


def test_n_auto_means_one_process_where_checks_run_in_chunks(tmp_path):
    """`nox -s check` passes `-n auto`: from --chunk-from nodes that starts no xdist
    workers (each would load every node's facts), below it the workers start as before;
    the results are the same either way. An explicit `-n 2` is obeyed (the test above)."""
    facts = _facts(tmp_path)
    chunked, results, _ = _run(tmp_path, facts, "-p", "no:cacheprovider", "-n", "auto")
    below, below_results, _ = _run(tmp_path, facts, "-p", "no:cacheprovider", "-n", "auto",
                                   chunk_from=10_000)
    assert "bringing up nodes" not in chunked.stdout  # xdist's line when workers start
    assert "bringing up nodes" in below.stdout
    _same(below_results, results)
