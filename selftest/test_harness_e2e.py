"""The real suites in tests/ against the simulated cluster, healthy and with faults."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from preflight.config import inventory
from preflight.launchers import transport
from selftest.suites import REPO
from selftest.suites import run_suites as run_all_suites

pytestmark = pytest.mark.simcluster


@pytest.fixture
def up(sim):
    sim.ensure(4)
    return sim


def run_suites(cluster_yaml, tmp_path, *args):
    """The transport and error paths are the same for every suite: the Miniconda one is
    enough here (and fast)."""
    return run_all_suites(cluster_yaml, tmp_path, "-m", "miniconda", *args)


def variant(sim, tmp_path, name="cluster.yaml", defaults=None, nodes=None) -> Path:
    """A copy of the test bed's cluster.yaml with some settings changed."""
    doc = yaml.safe_load(sim.cluster_yaml.read_text())
    doc["defaults"].update(defaults or {})
    if nodes is not None:
        doc["nodes"] = nodes
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def test_healthy_cluster_passes_with_one_case_per_check_per_node(up, tmp_path):
    run = run_all_suites(up.cluster_yaml, tmp_path, "-n", "2", "-m", "not nccl")
    assert run.rc == 0, run.output[-3000:]
    nodes = ("node-1", "node-2", "node-3", "node-4")
    per_node = {node: {c.split("[")[0] for c in run.cases if c.endswith(f"[{node}]")}
                for node in nodes}
    checks = per_node["node-1"]
    assert len(checks) >= 20
    assert all(found == checks for found in per_node.values())
    assert len([c for c in run.cases if c.endswith("]")]) == len(checks) * 4
    skipped = {c for c, o in run.cases.items() if o == "skipped"}
    health = {c for c in skipped if c.startswith(("test_gpu_", "test_ib_"))}
    # no lock; no GPU, so no lspci look at ACS; host.iommu not set: each skip says so
    assert {c.split("[")[0] for c in skipped - health} <= {
        "test_env_matches_lock", "test_host_pcie_acs_off", "test_host_iommu_as_set"}
    for case in skipped - health:
        assert any(why in run.messages[case] for why in ("not checked", "not judged",
                                                          "no lock in cluster.yaml"))
    for case in health:  # CPU-only nodes: GPU health skips, one reason naming the node
        node = case.split("[")[1].rstrip("]")
        assert f"{node}: " in run.messages[case]
        assert "not checked" in run.messages[case] or "nothing to compare" in \
            run.messages[case]
    assert set(run.cases.values()) <= {"passed", "skipped"}
    assert "PASS" in (tmp_path / "summary.md").read_text()


BAD_INPUTS = {
    "malformed-yaml": ("cluster: x\nnodes:\n  - name: [node-1\n", ":4: malformed YAML"),
    "unknown-key": ("cluster: x\nnodes:\n  - name: node-1\n    adress: 10.0.0.1\n",
                    ":4: unknown key 'adress' in node 'node-1' (did you mean 'address'?)"),
    "wrong-type": ("cluster: x\ndefaults:\n  connect_timeout: soon\nnodes: [{name: n1}]\n",
                   ":3: defaults.connect_timeout:"),
    "duplicate-node": ("cluster: x\nnodes:\n  - name: 'n[1-2]'\n  - name: n2\n",
                       ":4: node 'n2' is listed twice"),
    "bad-range": ("cluster: x\nnodes:\n  - name: 'n[2-1]'\n", ":3: bad node range"),
    "missing-env-file": ("cluster: x\nenvironment: nope.yml\nnodes: [{name: n1}]\n",
                         ":2: environment file 'nope.yml' not found"),
    "missing-cluster-file": (None, ": no such cluster file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path):
    text, expected = BAD_INPUTS[case]
    path = tmp_path / "cluster.yaml"
    (tmp_path / "environment.yml").write_text("name: e\ndependencies: [python]\n")
    if text is not None:
        path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "--rootdir", str(REPO), f"--cluster={path}",
         "-p", "no:cacheprovider", "-q"], cwd=REPO, capture_output=True, text=True, timeout=60)
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    assert done.returncode == 2
    assert len(lines) == 1, lines
    assert str(path) + expected in lines[0]
    assert "Traceback" not in done.stderr


def test_unknown_host_key_refused_unless_trusted(up, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    path = variant(up, tmp_path, defaults={"known_hosts": str(known)})
    refused = run_suites(path, tmp_path, "--nodes", "node-2")
    assert refused.rc == 1
    assert refused.outcomes("node-2") == {"error"}
    assert "is not in" in next(iter(refused.messages.values()))
    trusted = run_suites(path, tmp_path, "--nodes", "node-2", "--trust-new-host-keys")
    assert trusted.rc == 0, trusted.output[-2000:]
    assert known.read_text().startswith("10.231.7.12 ssh-ed25519 ")
    again = run_suites(path, tmp_path, "--nodes", "node-2")  # now known: no opt-in needed
    assert again.rc == 0


def test_changed_host_key_refused(up, tmp_path):
    real = (up.cluster_yaml.parent / "known_hosts").read_text().splitlines()
    node3_key = real[2].split(" ", 1)[1]
    known = tmp_path / "known_hosts"
    known.write_text(f"node-2,10.231.7.12 {node3_key}\n")
    path = variant(up, tmp_path, defaults={"known_hosts": str(known)})
    run = run_suites(path, tmp_path, "--nodes", "node-2", "--trust-new-host-keys")
    assert run.outcomes("node-2") == {"error"}
    assert "CHANGED" in next(iter(run.messages.values()))


def test_node_behind_proxyjump_bastion(up, tmp_path):
    up.fault("port-drop", "node-4", "22", "10.231.7.1")  # controller cannot reach node-4
    nodes = [{"name": "node-1", "role": "master"}, {"name": "node-4", "proxy_jump": "node-1"}]
    path = variant(up, tmp_path, defaults={"connect_timeout": 3}, nodes=nodes)
    run = run_suites(path, tmp_path)
    assert run.rc == 0, run.output[-2000:]
    assert run.outcomes("node-4") == {"passed"}
    direct = variant(up, tmp_path, "direct.yaml", defaults={"connect_timeout": 3},
                     nodes=[{"name": "node-4"}])
    assert run_suites(direct, tmp_path).outcomes("node-4") == {"error"}


def test_dead_frozen_and_firewalled_nodes_error_in_bounded_time(up, tmp_path):
    up.fault("sshd-stop", "node-2")
    up.fault("sshd-freeze", "node-3")
    up.fault("port-drop", "node-4", "22")
    timeout = 3
    path = variant(up, tmp_path, defaults={"connect_timeout": timeout})
    run = run_suites(path, tmp_path, "-n", "2")
    assert run.rc == 1
    assert run.outcomes("node-1") == {"passed"}
    reasons = {"node-2": "Connection refused", "node-3": "handshake", "node-4": "timed out"}
    facts = json.loads((tmp_path / "facts.json").read_text())
    for node, reason in reasons.items():
        assert run.outcomes(node) == {"error"}
        message = next(m for c, m in run.messages.items() if c.endswith(f"[{node}]"))
        assert f"{node} unreachable:" in message
        assert reason in message, message
        assert facts[node]["reach"]["seconds"] <= timeout + 5


def test_remote_command_past_its_timeout_is_killed(up):
    cluster = inventory.load(up.cluster_yaml)
    conn = transport.connect(cluster, cluster.node("node-2"))
    try:
        started = time.monotonic()
        done = conn.run("sleep 4242 & sleep 4243; echo never", timeout=1)
        assert done.timed_out
        assert done.rc == 124
        assert time.monotonic() - started < 1 + transport.GRACE_S + 1
        time.sleep(0.5)
        left = conn.run("pgrep -f 'sleep 424[23]' || echo none", timeout=5)
        assert left.stdout.strip() == "none"
    finally:
        conn.close()


def test_testinfra_host_rides_on_strict_transport(up, tmp_path):
    from preflight.launchers import testinfra_host

    cluster = inventory.load(up.cluster_yaml)
    host = testinfra_host.get(cluster, cluster.node("node-2"))
    assert host.file("/etc/hostname").content_string == "node-2\n"
    assert host.run("hostname").stdout.strip() == "node-2"
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    strict = inventory.load(variant(up, tmp_path, defaults={"known_hosts": str(empty)}))
    with pytest.raises(transport.Unreachable, match="is not in"):
        testinfra_host.get(strict, strict.node("node-3")).run("true")
