"""The Slurm launcher on the test bed's real Slurm (`simcluster up --slurm`): the same
results as over SSH, faults caught and named (a node without slurmd is an error, not a
hang), drain and resume touch only our own, a killed run leaves no allocation, and a
hung collective step is cancelled with nothing left behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from simcluster import cluster as simcluster
from simcluster import layout, slurm
from simcluster.host import SimError
from simcluster.network import namespace_pids

from preflight.config import inventory
from preflight.launchers import registry
from preflight.live import nccl
from selftest.builders import failing
from selftest.suites import REPO, run_suites

pytestmark = [pytest.mark.simcluster, pytest.mark.slow]
SLURM_YAML = layout.RUN / "cluster-slurm.yaml"
PER_NODE = ("-m", "not slow", "-p", "no:xdist")  # xdist: the healthy and collective runs


@pytest.fixture
def bed(sim):
    sim.ensure(4, slurm=True)
    return sim


def head() -> int:
    return simcluster.load()["head"]["anchor"]


def test_same_results_through_slurm_as_through_ssh(bed, tmp_path):
    over_ssh = run_suites(bed.cluster_yaml, tmp_path / "ssh", "-m", "not nccl", "-n", "2")
    over_slurm = run_suites(SLURM_YAML, tmp_path / "slurm", "-m", "not nccl", "-n", "2")
    assert over_ssh.rc == 0, over_ssh.output[-2000:]
    assert over_slurm.rc == 0, over_slurm.output[-2000:]
    assert over_slurm.cases == over_ssh.cases
    reach = {n: f["reach"] for n, f in
             json.loads((tmp_path / "slurm" / "facts.json").read_text()).items()}
    assert all(r["launcher"].startswith("slurm job ") for r in reach.values())
    assert slurm.jobs(head()) == []  # the allocation went with the run


def test_faults_named_and_a_node_without_slurmd_is_an_error(bed, tmp_path):
    bed.fault("conda-version", "node-3", "nccl", "2.21.5.1")
    bed.fault("pip-copy", "node-2")
    bed.fault("slurmd-stop", "node-4")
    run = run_suites(SLURM_YAML, tmp_path, *PER_NODE)
    assert run.rc == 1
    bad = failing(run)
    assert set(bad) == {"node-2", "node-3", "node-4"}
    assert "test_env_same_on_every_node" in bad["node-3"]
    assert "test_env_no_pip_copy_of_conda_package" in bad["node-2"]
    message = run.messages["test_miniconda_prefix_exists[node-4]"]
    assert "node-4" in message
    assert "Slurm" in message
    assert run.seconds < 120
    # released; Slurm finishes the job on node-4 only once it marks that node down
    assert [j for j in slurm.jobs(head()) if not j.endswith("COMPLETING")] == []


def test_collective_and_master_port_run_as_steps_of_the_run_job(bed, tmp_path):
    healthy = run_suites(SLURM_YAML, tmp_path / "ok", "-m", "nccl", "-n", "2")
    assert healthy.rc == 0, healthy.output[-2000:]
    outcome = json.loads((tmp_path / "ok" / ".nccl.json").read_text())["value"]
    assert outcome["launcher"].startswith("slurm job ")
    assert outcome["cleanup"] == dict.fromkeys(outcome["nodes"], "clean")
    results = json.loads((tmp_path / "ok" / "results.json").read_text())
    assert results["collective"]["launcher"] == outcome["launcher"]
    bed.fault("egress-drop", "node-3", "29500")
    blocked = run_suites(SLURM_YAML, tmp_path / "port", "-m", "network", "-p", "no:xdist")
    assert set(failing(blocked)) == {"node-3"}
    assert "node-3: master port: expected TCP connect to 10.231.7.11:29500" in \
        blocked.messages["test_network_master_port_reachable[node-3]"]
    _no_jobs_within(30)
    state = simcluster.load()
    assert slurm.leftover_processes(state) == {n: [] for n in state["nodes"]}


def test_drain_failed_and_resume_fixed_touch_only_our_own(bed, tmp_path):
    anchor = head()
    slurm.scontrol(anchor, "update", "nodename=node-4", "state=drain", "reason=hand: fan swap")
    try:
        bed.fault("conda-version", "node-3", "nccl", "2.21.5.1")
        dry = run_suites(SLURM_YAML, tmp_path / "dry", "-m", "env", "-p", "no:xdist")
        assert dry.rc == 1
        assert "would drain node-3: preflight: test_env_same_on_every_node" in \
            (tmp_path / "dry" / "summary.md").read_text()
        assert slurm.node_info(anchor)["node-3"][0] == "idle"  # a dry run changes nothing
        run_suites(SLURM_YAML, tmp_path / "drain", "-m", "env", "-p", "no:xdist", "--drain-failed")
        info = slurm.node_info(anchor)
        assert info["node-3"][0].startswith("drain")
        assert info["node-3"][1].startswith("preflight: test_env_same_on_every_node: ")
        assert info["node-4"] == ("drained", "hand: fan swap")
        # a trailing * is sinfo's "not responding" of the moment (a loaded machine), not a state
        assert (info["node-1"][0].rstrip("*"), info["node-2"][0].rstrip("*")) == ("idle", "idle")
        bed.heal_all()
        # Slurm runs nothing on a drained node: ours are probed over SSH instead
        healed = run_suites(SLURM_YAML, tmp_path / "resume", "-m", "env", "-p", "no:xdist",
                            "--resume-fixed")
        assert set(failing(healed)) == {"node-4"}  # drained by hand: Slurm says so
        assert "Slurm reports node-4 as drained (hand: fan swap)" in \
            healed.messages["test_env_pins_hold[node-4]"]
        info = slurm.node_info(anchor)
        assert info["node-3"][0].rstrip("*") == "idle"
        assert info["node-4"] == ("drained", "hand: fan swap")  # not ours: left alone
        summary = (tmp_path / "resume" / "summary.md").read_text()
        assert "resumed node-3 (was: preflight: test_env_same_on_every_node" in summary
        assert "left alone node-4: already drained" in summary
    finally:
        with contextlib.suppress(SimError):  # refused unless node-4 is still drained
            slurm.scontrol(anchor, "update", "nodename=node-4", "state=resume")


def test_a_node_that_exits_before_joining_is_the_culprit_over_slurm(bed, tmp_path):
    """The early-exit rule as steps of the run's Slurm job: node-3's torchrun cannot start."""
    doc = yaml.safe_load(SLURM_YAML.read_text())
    doc["nccl"].update(rdzv_timeout=6, collective_timeout=6, deadline=25)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    # an earlier test stopped node-4's slurmd: Slurm lists it not responding until it is back
    slurm.wait_idle(head(), [f"node-{i}" for i in (1, 2, 3, 4)], 60)
    bed.fault("break-env-python", "node-3")
    run = run_suites(path, tmp_path / "run", "-m", "nccl", "-p", "no:xdist")
    assert set(failing(run)) == {"node-3"}, run.output[-3000:]
    assert "exited before joining" in run.messages["test_nccl_allreduce_completes_exact[node-3]"]
    for other in ("node-1", "node-2", "node-4"):
        assert "blocked by node-3" in \
            run.messages[f"test_nccl_allreduce_completes_exact[{other}]"]
    outcome = json.loads((tmp_path / "run" / ".nccl.json").read_text())["value"]
    assert outcome["launcher"].startswith("slurm job ")
    _no_jobs_within(30)


def test_a_killed_run_leaves_no_allocation(bed, tmp_path):
    argv = [sys.executable, "-m", "pytest", "tests", "--rootdir", str(REPO), "-q",
            "-p", "no:cacheprovider", f"--cluster={SLURM_YAML}", f"--report-dir={tmp_path}",
            "-m", "env"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    anchor = head()
    deadline = time.monotonic() + 30
    while not slurm.jobs(anchor) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert slurm.jobs(anchor), "the run never got its allocation"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = time.monotonic()
    while slurm.jobs(anchor) and time.monotonic() - killed < slurm.INACTIVE_LIMIT_S + 30:
        time.sleep(0.2)
    assert slurm.jobs(anchor) == []
    gone = time.monotonic() - killed
    print(f"allocation of a killed run gone after {gone:.2f} s")
    assert gone < slurm.INACTIVE_LIMIT_S + 30
    assert slurm.leftover_processes(simcluster.load()) == {
        n: [] for n in simcluster.load()["nodes"]}


def test_node_check_on_the_node_drains_and_resumes_itself(bed, tmp_path):
    """`preflight node-check` run inside node-3 (as HealthCheckProgram runs it): no SSH,
    exit 1 and a drain with our prefix when a check fails; exit 0 and resumed once fixed."""
    state = simcluster.load()
    anchor = state["nodes"]["node-3"]["anchor"]
    _show_checkout_in_node(anchor)

    def node_check(*args: str) -> tuple[int, float, str]:
        started = time.monotonic()
        done = subprocess.run(
            ["nsenter", "-t", str(anchor), "-n", "-m", "-u", "--", sys.executable, "-m",
             "preflight", "--cluster", str(SLURM_YAML), "node-check",
             f"--report-dir={tmp_path / 'node-check'}", *args],
            cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        return done.returncode, time.monotonic() - started, done.stdout + done.stderr

    bed.fault("pip-copy", "node-3")  # caught on the node alone (no other node to compare)
    rc, seconds, output = node_check("--drain")
    assert rc == 1, output[-2000:]
    assert seconds < 60  # Slurm kills a HealthCheckProgram at 60 s
    assert "drained node-3: preflight: test_env_no_pip_copy_of_conda_package: " in output
    state_reason = slurm.node_info(head())["node-3"]
    assert state_reason[0].startswith("drain")
    assert state_reason[1].startswith("preflight: ")
    bed.heal_all()
    rc, seconds, output = node_check("--resume")
    assert rc == 0, output[-2000:]
    assert "resumed node-3" in output
    # no longer drained ("idle*" for a moment when slurmctld's ping raced the resume)
    assert slurm.node_info(head())["node-3"][0].rstrip("*") == "idle"


def _show_checkout_in_node(anchor: int) -> None:
    """A node has its own /tmp: a checkout under /tmp (CI's fresh clone) is bind-mounted
    into the node at the same path, as if the code had been synced there."""
    if not str(REPO).startswith("/tmp/"):
        return
    outside = f"/run/host-tmp/{REPO.relative_to('/tmp')}"  # the host's /tmp (network.py)
    subprocess.run(["nsenter", "-t", str(anchor), "-m", "--", "sh", "-c",
                    f'mkdir -p "{REPO}" && mountpoint -q "{REPO}" || '
                    f'mount --bind "{outside}" "{REPO}"'], check=True, timeout=30)


def test_hung_collective_step_is_cancelled_and_leaves_nothing(bed, tmp_path):
    """The collective runs as one step of the run's job; a node whose workers freeze
    (SIGSTOP: the network stays up, so the master-port check cannot see it) hangs every
    rank. The deadline ends the step, the marks are swept, the job is released, and no
    process of the run is left in any node's namespace."""
    doc = yaml.safe_load(SLURM_YAML.read_text())
    doc["nccl"].update(rdzv_timeout=15, collective_timeout=120, deadline=20, iterations=400)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    spec = inventory.load(path)
    nodes = [spec.node(f"node-{i}") for i in (1, 2, 3, 4)]
    slurm.wait_idle(head(), [n.name for n in nodes], 60)  # earlier tests' drains undone
    result: dict = {}
    with registry.create(spec) as launcher:
        reached = launcher.gather(nodes, runtime=False)
        assert {n: f["reach"]["reason"] for n, f in reached.items()} == \
            dict.fromkeys(reached)
        runner = threading.Thread(target=lambda: result.update(
            nccl.run(spec, launcher, nccl.plan_all(spec, nodes))))
        runner.start()
        frozen = _freeze_workers("node-3", within=60)
        started = time.monotonic()
        runner.join(doc["nccl"]["deadline"] + nccl.KILL_AFTER_S + 60)
        assert not runner.is_alive(), "the collective outlived its deadline"
    print(f"froze {frozen} worker(s); run ended {time.monotonic() - started:.1f} s later")
    assert time.monotonic() - started <= doc["nccl"]["deadline"] + nccl.KILL_AFTER_S + 40
    assert result["launcher"].startswith("slurm job ")
    assert not result["ok"]
    assert result["nodes"]["node-3"]["reason"].startswith("still running at the deadline")
    assert result["cleanup"] == dict.fromkeys(result["nodes"], "clean")
    print(f"job gone {_no_jobs_within(30):.2f} s after the run released it")
    state = simcluster.load()
    assert slurm.leftover_processes(state) == {n: [] for n in state["nodes"]}


def _freeze_workers(node: str, within: float) -> int:
    """SIGSTOP the collective's worker processes in node's namespace, once they run."""
    netns = simcluster.load()["nodes"][node]["netns"]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pids = [p for p in namespace_pids(netns) if b"worker.py" in _cmdline(p)]
        if pids:
            time.sleep(2)  # past the rendezvous, inside the sweep
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            return len(pids)
        time.sleep(0.2)
    raise AssertionError(f"the collective's workers never started on {node}")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _no_jobs_within(seconds: float) -> float:
    """Wait for Slurm to forget our jobs (a job is COMPLETING while its Epilog runs on
    every node); how long it took."""
    released = time.monotonic()
    while slurm.jobs(head()) and time.monotonic() - released < seconds:
        time.sleep(0.2)
    assert slurm.jobs(head()) == []
    return time.monotonic() - released
