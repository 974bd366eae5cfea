"""The ops report on the simulated cluster: the run-to-run diff names exactly the fault
injected between two runs and then its healing; waivers waive, expire and go stale."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import yaml

from selftest.suites import run_suites

pytestmark = [pytest.mark.simcluster, pytest.mark.slow]


def with_waivers(sim, tmp_path: Path, waivers: list[dict] | None) -> Path:
    doc = yaml.safe_load(sim.cluster_yaml.read_text())
    if waivers is not None:
        (tmp_path / "waivers.yaml").write_text(yaml.safe_dump({"waivers": waivers}))
        doc["report"] = {"waivers": str(tmp_path / "waivers.yaml"), "history": 5}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def results(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "results.json").read_text())


def bad(run) -> list[str]:
    return sorted(c for c, o in run.cases.items() if o in ("failed", "error"))


def test_diff_and_waivers_end_to_end(sim, tmp_path):
    sim.ensure(4)
    plain = with_waivers(sim, tmp_path, None)
    first = run_suites(plain, tmp_path, "-m", "env", "-p", "no:xdist")
    assert first.rc == 0, first.output[-2000:]
    assert results(tmp_path)["diff"] is None  # no earlier run in this report dir

    sim.fault("pip-copy", "node-2")
    second = run_suites(plain, tmp_path, "-m", "env", "-p", "no:xdist")
    assert second.rc == 1
    assert bad(second)
    assert all(c.endswith("[node-2]") for c in bad(second))
    diff = results(tmp_path)["diff"]
    assert diff["newly_failing"] == bad(second)
    assert (diff["fixed"], diff["still_failing"]) == ([], [])

    sim.fault("conda-version", "node-3", "nccl", "2.21.5.1")
    today = datetime.date.today()
    pip_check = bad(second)[0].split("[")[0]
    waivers = [
        {"check": "test_env_same_on_*", "nodes": "node-3", "reason": "NCCL trial, OPS-7",
         "owner": "ops@example.com", "expires": str(today + datetime.timedelta(days=7))},
        {"check": pip_check, "nodes": "node-[2,4]", "reason": "pip NCCL until rebuild",
         "owner": "ml@example.com", "expires": str(today - datetime.timedelta(days=1))},
        {"check": "test_env_*", "nodes": "node-1", "reason": "was flaky", "owner": "ops",
         "expires": str(today + datetime.timedelta(days=30))}]
    third = run_suites(with_waivers(sim, tmp_path, waivers), tmp_path, "-m", "env",
                       "-p", "no:xdist")
    assert third.rc == 1  # the expired waiver's failure stands
    doc = results(tmp_path)
    waived = [r for r in doc["results"] if r["outcome"] == "waived"]
    assert [(r["test"], r["waiver"]["state"]) for r in waived] == [
        ("test_env_same_on_every_node[node-3]", "applied")]
    case = "test_env_same_on_every_node[node-3]"
    assert third.cases[case] == "skipped"  # JUnit: skipped, saying why and until when
    assert f"waived: NCCL trial, OPS-7 (owner ops@example.com, expires {waivers[0]['expires']}" \
        in third.messages[case]
    expired = third.messages[bad(second)[0]]
    assert f"expired on {waivers[1]['expires']}: pip NCCL until rebuild" in expired
    assert [w["reason"] for w in doc["waivers"]["expired"]] == ["pip NCCL until rebuild"]
    assert [w["reason"] for w in doc["waivers"]["stale"]] == ["was flaky"]
    assert doc["diff"]["still_failing"] == bad(second)
    page = (tmp_path / "report.html").read_text()
    assert "was flaky" in page.split('id="waivers-stale"')[1]
    assert "NCCL trial, OPS-7" in page.split('id="waivers"')[1]

    sim.heal_all()
    fourth = run_suites(plain, tmp_path, "-m", "env", "-p", "no:xdist")
    assert fourth.rc == 0, fourth.output[-2000:]
    diff = results(tmp_path)["diff"]
    assert diff["fixed"] == bad(second)
    assert diff["newly_failing"] == []
    assert len(list((tmp_path / "history").glob("*.json.gz"))) == 4
