"""The launcher seam: the registry, the local launcher's deadline and probe, the Slurm
launcher's state as xdist workers get it, the run's state round trip. No test bed."""

from __future__ import annotations

import time

import pytest

from preflight.config import inventory
from preflight.launchers import registry
from preflight.launchers.base import Launcher
from preflight.launchers.slurm.runjob import RunJob
from preflight.runstate import RunState
from selftest.suites import replay_cluster


@pytest.fixture
def cluster(tmp_path):
    return inventory.load(replay_cluster(tmp_path, ["node-1", "node-2", "node-3"]))


def test_three_launchers_by_name_and_the_default(cluster):
    assert sorted(registry.LAUNCHERS) == ["local", "slurm", "ssh"]
    assert all(issubclass(k, Launcher) for k in registry.LAUNCHERS.values())
    assert registry.create(cluster).name == "ssh"  # cluster.yaml's default


def test_local_run_kills_what_ignores_term_at_the_deadline(cluster):
    launcher = registry.create(cluster, "local")
    started = time.monotonic()
    got = launcher.run({"node-1": ("trap '' TERM; echo started; sleep 30", "")}, 0.5,
                       kill_after=1)["node-1"]
    assert got.timed_out
    assert got.rc == 124
    assert got.stdout == "started\n"
    assert time.monotonic() - started < 5  # TERM ignored, KILL a second later


def test_local_run_passes_stdin_and_the_exit_code(cluster):
    got = registry.create(cluster, "local").run({"node-2": ("cat; exit 3", "hello")}, 5)
    assert (got["node-2"].rc, got["node-2"].stdout, got["node-2"].timed_out) == \
        (3, "hello", False)


def test_local_gather_is_the_real_probe_here(cluster):
    node = cluster.node("node-1")
    found = registry.create(cluster, "local").gather([node], runtime=False)["node-1"]
    assert found["reach"]["ok"], found["reach"]
    assert found["reach"]["launcher"] == "local (node-check)"
    assert {"node", "env", "ssh", "runtime"} <= set(found)


def test_slurm_launcher_state_reaches_a_worker_and_labels_its_work(cluster):
    controller = registry.create(cluster, "slurm")
    assert controller.label(["node-1"]) == "ssh (no Slurm job held for this run)"
    controller.hold.job = RunJob("42", "preflight-x", ("node-1", "node-2"))
    worker = registry.create(cluster, "slurm", state=controller.as_state())
    assert worker.job == controller.job
    assert worker.label(["node-1", "node-2"]) == "slurm job 42"
    assert worker.label(["node-1", "node-3"]) == "ssh (not in Slurm job 42: node-3)"
    controller.release()
    assert controller.job is None


def test_run_state_round_trips_through_workerinput():
    state = RunState(checked_facts="/tmp/x.json", launcher={"job": None})
    assert RunState.from_dict(state.as_dict()) == state
    assert RunState().run_id != RunState().run_id


def test_the_sweep_runs_on_every_node_even_after_a_deadline(cluster):
    launcher = registry.create(cluster, "local")
    got, swept = launcher.run_and_sweep(
        {"node-1": ("sleep 30", ""), "node-2": ("echo done", "")}, 0.5,
        {"node-1": ("echo swept-1", ""), "node-2": ("echo swept-2", "")}, 5, kill_after=1)
    assert got["node-1"].timed_out
    assert got["node-2"].stdout == "done\n"
    assert {n: r.stdout for n, r in swept.items()} == {"node-1": "swept-1\n",
                                                        "node-2": "swept-2\n"}
