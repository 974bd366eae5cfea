"""The Slurm launcher's pure parts: labelled step output to per-node facts, node states,
--time, drain reasons and the dry-run plan."""

from __future__ import annotations

import json

import pytest

from preflight.launchers.slurm import alloc, drain, probe
from preflight.report.text import scheduler_lines


def lines(node: str, doc: dict, size: int = 7) -> list[str]:
    text = json.dumps(doc)
    parts = [text[i:i + size] for i in range(0, len(text), size)]
    return [f"{probe.TAG} {node} {i}/{len(parts)} {p}" for i, p in enumerate(parts, 1)]


def test_numbered_lines_reassemble_per_node_in_any_order():
    one, two = {"node": {"hostname": "node-1"}, "x": " a b "}, {"node": {"hostname": "n2"}}
    mixed = [x for pair in zip(lines("node-1", one), lines("node-2", two) + [""] * 20,
                               strict=False) for x in pair]
    mixed.insert(3, "srun: warning: something unrelated")
    mixed.insert(5, "2: " + lines("node-3", {"a": 1})[0])  # --label output is read too
    docs = probe.parse("\n".join(reversed(mixed)))
    assert docs == {"node-1": one, "node-2": two}  # node-3 incomplete: left out


def test_a_retried_python_leaves_the_last_document():
    out = lines("n1", {"try": 1}, size=4) + lines("n1", {"try": 2}, size=5)
    assert probe.parse("\n".join(out)) == {"n1": {"try": 2}}


def test_the_dispatcher_is_valid_python():
    compile(probe.DISPATCH, "<dispatch>", "exec")


@pytest.mark.parametrize(("state", "why"), [
    ("idle", None), ("mixed", None), ("allocated", None), ("idle*", "as idle* (x)"),
    ("down*", "as down* (x)"), ("drained", "as drained (x)"), ("draining", "as draining")])
def test_unusable_node_states(state, why):
    found = alloc.NodeState("n1", state, "x").unusable
    assert (found is None) if why is None else (why in found)


@pytest.mark.parametrize(("limit", "seconds"), [
    ("30", 1800), ("05:30", 330), ("01:00:00", 3600), ("1-02", 93600), ("2-00:30:00", 174600)])
def test_slurm_time_limits(limit, seconds):
    assert alloc._seconds(limit) == seconds


def test_drain_reason_is_prefixed_one_line_and_bounded():
    result = {"check": "test_env_pins_hold", "found": 'pytorch "2.0.2"\nnext' + "x" * 500,
              "message": ""}
    why = drain.reason("preflight:", result)
    assert why.startswith("preflight: test_env_pins_hold: pytorch '2.0.2'\\nnext")
    assert "\n" not in why
    assert len(why) <= drain.REASON_MAX + 40


def test_dry_run_lists_failing_nodes_and_touches_nothing():
    class Cluster:
        class slurm:  # stands in for the settings object
            drain_prefix = "preflight:"
    results = [{"node": "n1", "check": "a", "outcome": "passed", "found": "", "message": ""},
               {"node": "n2", "check": "a", "outcome": "failed", "found": "x", "message": ""},
               {"node": "n2", "check": "b", "outcome": "error", "found": "", "message": "y"},
               {"node": "cluster", "check": "c", "outcome": "failed", "found": "", "message": ""}]
    actions = drain.act(Cluster, results, drain=False, resume=False)
    assert actions["dry_run"]
    assert scheduler_lines(actions) == ["would drain n2: preflight: a: x"]


class LocalJob:
    """An Allocation stand-in that runs a step's tasks here, one per node name, with
    SLURMD_NODENAME set as slurmd sets it: the real runner and bootstrap, no Slurm."""

    name = "preflight-test"

    def __init__(self, folder) -> None:
        self.folder, self.cancelled = folder, []

    def broadcast(self, data: bytes, dest: str) -> None:
        self.bundle = self.folder / "bundle.json"
        self.bundle.write_bytes(data)
        self.dest = dest

    def step(self, names, command, timeout, label=None):
        import os
        import subprocess
        import time

        from preflight.launchers import transport
        started = time.monotonic()
        out = []
        for name in names:
            copy = self.folder / f"{name}.json"  # sbcast gives every node its own copy
            copy.write_bytes(self.bundle.read_bytes())
            done = subprocess.run(["sh", "-c", command.replace(self.dest, str(copy))],
                                  env={**os.environ, "SLURMD_NODENAME": name},
                                  capture_output=True, text=True, timeout=timeout)
            out.append(done.stdout)
        return transport.Result(command, 0, "".join(out), "", time.monotonic() - started)

    def cancel_steps(self, label: str) -> None:
        self.cancelled.append(label)


def test_step_runner_gives_each_node_its_own_result_and_bounds_it(tmp_path):
    from preflight.launchers import transport
    from preflight.launchers.slurm import steps
    work = {"node-1": ("cat; echo out; echo err >&2; exit 3", "from stdin\n"),
            "node-2": ("sleep 30", ""),
            "node-3": ("trap '' TERM; sleep 30", "")}
    got = steps.per_node(LocalJob(tmp_path), work, timeout=1, kill_after=1)
    one = got["node-1"]
    assert isinstance(one, transport.Result)
    assert (one.rc, one.stdout, one.stderr, one.timed_out) == (3, "from stdin\nout\n",
                                                               "err\n", False)
    for name in ("node-2", "node-3"):  # TERM at the deadline; KILL for what ignores it
        assert got[name].timed_out
        assert got[name].rc == 124
        assert got[name].seconds < 5
    assert not list(tmp_path.glob("node-*.json"))  # each node removed its bundle


def test_a_login_node_lost_before_a_step_is_each_nodes_reason_not_a_traceback(tmp_path):
    """The checks' steps run late in a run: a login node gone by then (here: nothing
    listens at 127.0.0.1:9) gives every node of the step the reason; the probe, which
    needs it to start at all, stops the run in one line instead."""
    from preflight.config import inventory
    from preflight.core.errors import UserError
    from preflight.launchers.slurm import login, runjob, steps
    from selftest.suites import replay_cluster
    path = replay_cluster(tmp_path, ["node-1", "node-2"],
                          "launcher: slurm\nslurm: {login: 127.0.0.1}\n")
    cluster = inventory.load(path)
    job = runjob.RunJob("7", "preflight-test", ("node-1", "node-2"))
    with runjob.steps(cluster, job) as alloc:
        got = steps.per_node(alloc, {"node-1": ("true", ""), "node-2": ("true", "")}, 5)
    assert set(got) == {"node-1", "node-2"}
    for why in got.values():
        assert isinstance(why, str)
        assert "slurm.login 127.0.0.1 unreachable" in why
    with pytest.raises(UserError, match=r"slurm\.login 127\.0\.0\.1 unreachable"), \
            login.LoginShell(cluster):
        pass


def test_an_investigate_failure_never_drains_and_the_first_drain_worthy_one_names_it():
    results = [{"node": "n1", "check": "test_host_clock_in_sync", "outcome": "failed",
                "severity": "investigate", "found": "5 s ahead", "message": ""},
               {"node": "n2", "check": "test_host_clock_in_sync", "outcome": "failed",
                "severity": "investigate", "found": "5 s ahead", "message": ""},
               {"node": "n2", "check": "test_env_pins_hold", "outcome": "failed",
                "severity": None, "found": "pytorch 2.0.2", "message": ""}]
    nodes = drain.plan(None, results)
    assert nodes["n1"]["fail"] is None
    assert nodes["n2"]["fail"]["check"] == "test_env_pins_hold"
