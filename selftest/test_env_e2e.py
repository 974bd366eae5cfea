"""The environment suite on the simulated cluster: each fault fails exactly its node."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from selftest.builders import failing
from selftest.suites import REPO, run_suites

pytestmark = pytest.mark.simcluster


@pytest.fixture
def up(sim):
    sim.ensure(4)
    return sim


def message(run, test: str, node: str) -> str:
    return run.messages[f"{test}[{node}]"]


def test_healthy_cluster_passes_env_suite(up, tmp_path):
    run = run_suites(up.cluster_yaml, tmp_path, "-m", "env")
    assert run.rc == 0, run.output[-3000:]
    assert set(run.cases.values()) <= {"passed", "skipped"}


# Each env fault failing exactly its node: selftest/test_fault_catalogue.py.


def test_pinned_version_drift_names_node_and_pin(up, tmp_path):
    """One node gets another version of a pinned package (the PyTorch 2.0.2 story)."""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    env["dependencies"] = [d if d != "nccl" else "nccl=2.23" for d in env["dependencies"]]
    (tmp_path / "environment.yml").write_text(yaml.safe_dump(env))
    doc = yaml.safe_load(up.cluster_yaml.read_text())
    doc["environment"] = str(tmp_path / "environment.yml")
    cluster_yaml = tmp_path / "cluster.yaml"
    cluster_yaml.write_text(yaml.safe_dump(doc))
    up.fault("conda-version", "node-2", "nccl", "2.21.5.1")
    run = run_suites(cluster_yaml, tmp_path, "-m", "env")
    assert set(failing(run)) == {"node-2"}
    text = message(run, "test_env_pins_hold", "node-2")
    assert "node-2: env pin: expected nccl=2.23, found nccl 2.21.5.1 (h3a97aeb_0, conda-forge)" \
        in text
    assert "3 other nodes have 2.23.4.1" in text


def test_lock_written_from_reference_node_then_enforced(up, tmp_path):
    out = tmp_path / "conda-lock.yml"
    done = subprocess.run([sys.executable, "-m", "preflight", "--cluster", str(up.cluster_yaml),
                           "lock", "--node", "node-1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    doc = yaml.safe_load(up.cluster_yaml.read_text())
    doc["lock"] = str(out)
    cluster_yaml = tmp_path / "cluster.yaml"
    cluster_yaml.write_text(yaml.safe_dump(doc))
    clean = run_suites(cluster_yaml, tmp_path, "-k", "matches_lock")
    assert clean.rc == 0, clean.output[-2000:]
    assert set(clean.cases.values()) == {"passed"}
    up.fault("conda-build", "node-4", "nccl", "h03a54cd_1")
    drifted = run_suites(cluster_yaml, tmp_path, "-k", "matches_lock")
    assert set(failing(drifted)) == {"node-4"}
    assert "nccl 2.23.4.1 (h03a54cd_1, conda-forge)" in message(
        drifted, "test_env_matches_lock", "node-4")
