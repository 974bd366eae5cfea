"""The collective suite on the simulated cluster: healthy, blocked port, loopback hostname,
link down mid-run, slow link (pairwise). Every failure bounded, named, and leaves nothing."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from simcluster import cluster as simcluster

from preflight.config import inventory
from preflight.launchers import registry
from preflight.live import nccl
from selftest.builders import failing, variant
from selftest.suites import run_suites

pytestmark = [pytest.mark.simcluster, pytest.mark.slow]
TIMEOUTS = {"rdzv_timeout": 10, "collective_timeout": 10, "deadline": 40}


def leftovers() -> dict[str, list[str]]:
    """Per node namespace: processes of a torchrun or worker, and temp folders."""
    found = {}
    for name, node in simcluster.load()["nodes"].items():
        pids = subprocess.run(["ip", "netns", "pids", node["netns"]], capture_output=True,
                              text=True).stdout.split()
        cmds = []
        for pid in pids:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "torch.distributed.run" in cmd or "worker.py" in cmd:
                cmds.append(cmd)
        found[name] = cmds
    return found


def recorded(folder: Path, key: str) -> dict:
    """What the run's once-per-run work recorded under key (see preflight.live.once)."""
    return json.loads((folder / f".{key}.json").read_text())["value"]


@pytest.fixture
def three(sim):
    sim.ensure(4)
    return sim


def test_healthy_three_nodes_sum_and_busbw_table(three, tmp_path):
    run = run_suites(variant(three, tmp_path), tmp_path, "-m", "nccl", "--nodes", "node-[1-3]")
    assert run.rc == 0, run.output[-3000:]
    outcome = recorded(tmp_path, "nccl")
    assert outcome["world"] == 3
    for verdict in outcome["nodes"].values():
        assert verdict["ranks"][0]["checks"] == {"all_reduce": True, "all_gather": True,
                                                 "broadcast": True}
    summary = (tmp_path / "summary.md").read_text()
    assert "| bytes | time (us) | algbw (GB/s) | busbw (GB/s) |" in summary
    assert leftovers() == {n: [] for n in ("node-1", "node-2", "node-3", "node-4")}


def test_blocked_master_port_names_the_node_in_bounded_time(three, tmp_path):
    three.fault("egress-drop", "node-3", "29500")
    run = run_suites(variant(three, tmp_path, **TIMEOUTS), tmp_path, "-m", "nccl",
                     "--nodes", "node-[1-3]")
    assert run.rc == 1
    pre = run.messages["test_network_master_port_reachable[node-3]"]
    assert "node-3: master port: expected TCP connect to 10.231.7.11:29500" in pre
    assert set(failing(run)) == {"node-3"}  # the culprit; the others were blocked by it
    own = run.messages["test_nccl_allreduce_completes_exact[node-3]"]
    assert "could not reach the rendezvous at 10.231.7.11:29500 on node-1" in own
    for other in ("node-1", "node-2"):
        case = f"test_nccl_allreduce_completes_exact[{other}]"
        assert run.cases[case] == "skipped"
        assert "blocked by node-3" in run.messages[case]
    outcome = recorded(tmp_path, "nccl")
    assert outcome["seconds"] <= TIMEOUTS["rdzv_timeout"] + TIMEOUTS["collective_timeout"] + 5
    assert leftovers() == {n: [] for n in ("node-1", "node-2", "node-3", "node-4")}


def test_a_node_that_exits_before_joining_is_the_one_culprit(three, tmp_path):
    """node-3's env python is broken: its torchrun exits at once. node-3 fails, saying so;
    the nodes that waited for it skip as blocked by it; the master names who never came."""
    three.fault("break-env-python", "node-3")
    # short bounds: node-3 fails in well under a second; the others wait out the rendezvous
    quick = {"rdzv_timeout": 6, "collective_timeout": 6, "deadline": 25}
    run = run_suites(variant(three, tmp_path, **quick), tmp_path, "-m", "nccl",
                     "--nodes", "node-[1-3]")
    assert set(failing(run)) == {"node-3"}, run.output[-3000:]
    own = run.messages["test_nccl_allreduce_completes_exact[node-3]"]
    assert "exited before joining: torchrun exited" in own
    for other in ("node-1", "node-2"):
        case = f"test_nccl_allreduce_completes_exact[{other}]"
        assert run.cases[case] == "skipped", run.messages.get(case)
        assert "blocked by node-3" in run.messages[case]
    assert "never joined: node-3" in recorded(tmp_path, "nccl")["nodes"]["node-1"]["reason"]
    assert leftovers() == {n: [] for n in ("node-1", "node-2", "node-3", "node-4")}


def test_loopback_hostname_named_before_any_torchrun(three, tmp_path):
    three.fault("hostname-loopback", "node-2")
    run = run_suites(three.cluster_yaml, tmp_path, "-m", "network and not slow")
    assert set(failing(run)) == {"node-2"}
    message = run.messages["test_network_names_resolve[node-2]"]
    assert "node-2: own hostname: expected node-2 resolves to the cluster address, found " \
           "127.0.1.1, 10.231.7.12" in message
    assert not (tmp_path / ".nccl.json").exists()  # no collective was started


def test_link_down_mid_run_is_bounded_and_named(three, tmp_path):
    # a shorter deadline than TIMEOUTS': what is proven is the bound, not its size
    timeouts = {**TIMEOUTS, "deadline": 20}
    spec = inventory.load(variant(three, tmp_path, **timeouts, iterations=400))
    nodes = [spec.node(f"node-{i}") for i in (1, 2, 3)]
    result = {}
    runner = threading.Thread(target=lambda: result.update(
        nccl.run(spec, registry.create(spec), nccl.plan_all(spec, nodes))))
    started = time.monotonic()
    runner.start()
    deadline = time.monotonic() + 60
    while not any("worker.py" in c for c in leftovers()["node-3"]):
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.2)
    time.sleep(2)  # past the rendezvous, inside the sweep
    three.fault("link-down", "node-3")
    runner.join(timeouts["deadline"] + nccl.KILL_AFTER_S + 20)
    assert not runner.is_alive()
    assert time.monotonic() - started <= timeouts["deadline"] + nccl.KILL_AFTER_S + 15
    assert not result["ok"]
    assert result["nodes"]["node-3"]["reason"].startswith(("lost during the run",
                                                           "still running at the deadline"))
    three.heal_all()
    assert leftovers() == {n: [] for n in ("node-1", "node-2", "node-3", "node-4")}


# The slow node named by the pairwise rounds: selftest/test_fault_catalogue.py (slow-link).
