"""The Slurm launcher's pure parts: labelled step output to per-node facts, node states,
--time, drain reasons and the dry-run plan."""

from __future__ import annotations

import json

import pytest

from preflight.slurm import alloc, drain, probe


def test_step_output_is_split_by_task_and_tagged_by_node():
    doc = {"probe_version": 1, "node": {"hostname": "node-2"}}
    out = "\n".join([f"0: {probe.TAG}node-1", "0: {not json", f" 1: {probe.TAG}node-2",
                     f" 1: {json.dumps(doc)}", "2: stray line", f"0: {json.dumps({'a': 1})}"])
    assert probe.parse(out) == {"node-1": {"a": 1}, "node-2": doc}


def test_a_retried_python_leaves_the_last_document():
    first, second = {"try": 1}, {"try": 2}
    out = "\n".join([f"0: {probe.TAG}n1", f"0: {json.dumps(first)}", f"0: {probe.TAG}n1",
                     f"0: {json.dumps(second)}"])
    assert probe.parse(out) == {"n1": second}


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
    assert drain.lines(actions) == ["would drain n2: preflight: a: x"]
