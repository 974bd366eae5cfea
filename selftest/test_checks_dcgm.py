"""DCGM's diagnostic: dcgmi diag -j in both layouts (fixtures/dcgm) parsed into results
with DCGM's severities mapped to ours; the check fails exactly the failing GPU's test,
skips with the reason where DCGM did not run or judged nothing, and never passes a run
it could not read. The probe's side runs a stand-in dcgmi under its own bound."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflight.checks import gpuhealth as health
from preflight.checks.findings import NotChecked, worst
from preflight.config.clusterfile import GpuHealthSettings
from preflight.facts import dcgmdiag
from selftest.builders import PROBE
from selftest.builders import gpu_node as node
from selftest.suites import REPO

CASES = REPO / "fixtures" / "dcgm"
ASKED = GpuHealthSettings(dcgm_diag=1)


def facts_with(run: dict | None) -> dict:
    return {"health": {"dcgm": run}}


def ran(case: str, rc: int = 0) -> dict:
    return {"level": 1, "found": True, "rc": rc, "text": (CASES / case).read_text(),
            "error": "", "seconds": 3.1}


def test_both_layouts_parse_to_results_by_gpu_or_node():
    four = dcgmdiag.parse((CASES / "dcgm4-r1-pass.json").read_text())
    assert four.version == "4.2.3"
    assert four.runtime_error is None
    assert [(r.category, r.test, r.entity, r.status) for r in four.results][:2] == [
        ("Deployment", "software", "GPU 0", "Pass"), ("Deployment", "software", "GPU 1", "Pass")]
    assert len(four.ran) == 8
    three = dcgmdiag.parse((CASES / "dcgm3-r1-pass.json").read_text())
    assert three.version == "3.3.5"
    assert {r.entity for r in three.results} == {"node"}
    assert len(three.ran) == 9


def test_passing_diag_passes_in_either_layout():
    for case in ("dcgm4-r1-pass.json", "dcgm3-r1-pass.json"):
        assert health.dcgm(node(), facts_with(ran(case)), ASKED) == []


def test_isolate_failure_on_one_gpu_is_a_drain_of_that_gpu_only():
    found = health.dcgm(node("w3"), facts_with(ran("dcgm4-r2-pcie-fail.json", 226)), ASKED)
    assert len(found) == 1
    assert str(found[0]).startswith(
        "w3: DCGM Integration/pcie: expected Pass on GPU 3, found Fail: Detected more than 8 "
        "PCIe replays per minute for GPU 3 : 52")
    assert found[0].hint == "DCGM error 3"
    assert worst(found) == "drain"


def test_config_failure_asks_for_a_look_not_a_drain():
    found = health.dcgm(node(), facts_with(ran("dcgm4-r1-persistence-off.json", 226)), ASKED)
    assert [f.expected for f in found] == [f"Pass on GPU {i}" for i in range(8)]
    assert "Persistence mode for GPU 5 is disabled" in found[5].found
    assert {f.severity for f in found} == {"investigate"}


@pytest.mark.parametrize(("severity", "category", "ours"), [
    (2, "Hardware", "drain"), (6, "Hardware", "reboot"), (4, "Hardware", "investigate"),
    (None, "Hardware", "drain"), (None, "Deployment", "investigate"), (99, "Stress", "drain")])
def test_dcgm_severity_becomes_ours(severity, category, ours):
    result = dcgmdiag.Result(category, "memory", "GPU 0", "Fail",
                             (dcgmdiag.Message("x", 1, severity),))
    assert dcgmdiag.severity(result) == ours


def test_not_asked_not_installed_or_judging_nothing_is_a_skip_with_the_reason():
    with pytest.raises(NotChecked, match=r"gpu_health\.dcgm_diag is 0"):
        health.dcgm(node(), facts_with(ran("dcgm4-r1-pass.json")), GpuHealthSettings())
    with pytest.raises(NotChecked, match=r"gathered without gpu_health\.dcgm_diag"):
        health.dcgm(node(), facts_with(None), ASKED)
    missing = {"level": 1, "found": False, "rc": None, "text": "",
               "error": "dcgmi not found on PATH", "seconds": 0.0}
    with pytest.raises(NotChecked, match="w1: DCGM diagnostic not checked: dcgmi "
                       "not found on PATH"):
        health.dcgm(node(), facts_with(missing), ASKED)
    skipped = {"DCGM Diagnostic": {"test_categories": [{"category": "Hardware", "tests": [
        {"name": "memory", "results": [{"entity_group": "GPU", "entity_id": 0,
                                        "status": "Skip",
                                        "info": ["Plugin is not allowed on this SKU"]}]}]}]}}
    run = {**ran("dcgm4-r1-pass.json"), "text": json.dumps(skipped)}
    with pytest.raises(NotChecked, match="judged nothing: all 1 test results "
                       r"skipped or not run \(Plugin is not allowed on this SKU\)"):
        health.dcgm(node(), facts_with(run), ASKED)


def test_a_run_that_cannot_be_read_is_a_finding_never_a_pass():
    down = {"level": 1, "found": True, "rc": 255, "error": "", "seconds": 0.1,
            "text": "Error: unable to establish a connection to the specified host: "
                    "localhost\nError: Unable to connect to host engine."}
    found = health.dcgm(node(), facts_with(down), ASKED)
    assert [(f.check, f.expected, f.severity) for f in found] == [
        ("DCGM diagnostic", "dcgmi diag -r 1 -j prints its results", "investigate")]
    assert "unable to establish a connection" in found[0].found
    assert "nv-hostengine" in found[0].hint
    hung = {**down, "rc": 124, "text": "", "error": "timed out after 180 s"}
    assert [f.found for f in health.dcgm(node(), facts_with(hung), ASKED)] == [
        "timed out after 180 s"]
    broken = {**down, "rc": 226, "text": json.dumps({"DCGM GPU Diagnostic": {
        "runtime_error": "Cannot run diagnostic: the GPU is in use by another process"}})}
    assert [f.found for f in health.dcgm(node(), facts_with(broken), ASKED)] == [
        "Cannot run diagnostic: the GPU is in use by another process"]


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) |
                    st.dictionaries(st.sampled_from(
                        ["DCGM Diagnostic", "DCGM GPU Diagnostic", "test_categories",
                         "tests", "results", "status", "warnings", "warning", "entity_id",
                         "gpu_ids", "error_severity", "info", "runtime_error", "metadata",
                         "version", "category", "name"]), inner, max_size=5), max_leaves=30))
def test_any_json_shape_parses_or_says_why(doc):
    try:
        diag = dcgmdiag.parse(json.dumps(doc))
    except dcgmdiag.DiagError:
        return
    for result in diag.results:
        assert isinstance(result.status, str)
        assert isinstance(result.entity, str)
        dcgmdiag.severity(result)


def test_probe_runs_dcgmi_under_its_own_bound(tmp_path, monkeypatch):
    standin = (CASES / "standin-dcgmi.sh").read_text()
    fake = tmp_path / "dcgmi"
    fake.write_text(standin.replace("@CASE@", str(CASES / "dcgm4-r1-pass.json"))
                    .replace("@RC@", "0"))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    got = PROBE.dcgm_diag({"level": 1, "timeout": 20})
    assert (got["found"], got["rc"], got["level"]) == (True, 0, 1)
    assert dcgmdiag.parse(got["text"]).version == "4.2.3"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    got = PROBE.dcgm_diag({"level": 1, "timeout": 0.5})
    assert got["rc"] == 124
    assert got["seconds"] < 5
    assert PROBE.dcgm_diag(None) is None
    monkeypatch.setattr(PROBE, "which", lambda name, *extra: None)  # as on a node without it
    assert PROBE.dcgm_diag({"level": 1, "timeout": 1})["error"] == "dcgmi not found on PATH"
