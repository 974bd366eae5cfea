"""Provisioning without SSH: the managed block, the plan's decisions, the fan-out."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflight.provision import blocks
from preflight.provision.apply import Distributor

LINES = st.lists(st.sampled_from([
    "Host *", "  User bob", "Host worker-*", "Match host x", "# comment", "",
    "ServerAliveInterval 5",
    "  IdentityFile ~/.ssh/other", "host lower", "\tUser tab"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(LINES, st.booleans())
def test_block_leaves_every_other_byte(lines, trailing_newline):
    text = "\n".join(lines) + ("\n" if trailing_newline and lines else "")
    block = blocks.render("node-*", {"User": "root", "ServerAliveInterval": "60"})
    placed = blocks.place(text, block)
    # a last line without its newline gets one, so the block starts on a line of its own
    restored = blocks.remove(placed)
    assert restored == text or (restored == text + "\n" and not text.endswith("\n"))
    assert blocks.place(placed, block) == placed  # a second provision changes nothing
    first_host = next((i for i, line in enumerate(placed.splitlines())
                       if line.split()[:1] and line.split()[0].lower() in ("host", "match")), None)
    assert placed.splitlines()[first_host] == "Host node-*"  # read before any Host *


def test_block_replaced_in_place():
    old = blocks.render("node-*", {"User": "a"})
    text = "# mine\nHost *\n  User bob\n"
    placed = blocks.place(text, old)
    new = blocks.render("node-*", {"User": "root"})
    assert blocks.place(placed, new) == placed.replace(old, new)


def test_damaged_block_refused():
    text = f"{blocks.BEGIN} (Host node-*)\nHost node-*\n  User root\n"
    with pytest.raises(blocks.BlockDamaged, match="1 BEGIN, 0 END"):
        blocks.place(text, blocks.render("node-*", {"User": "root"}))


def test_distributor_bounds_controller_sends():
    """However many nodes, the controller sends to at most `fanout` at once and every
    later node copies from one that holds the archive."""
    dist, sources, lock = Distributor(2), [], threading.Lock()
    peak = [0]

    def receive(name):
        source = dist.take()
        with lock:
            sources.append(source)
            peak[0] = max(peak[0], dist.sending)
        dist.give(source, name, ok=True)

    threads = [threading.Thread(target=receive, args=(f"n{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] <= 2
    assert sources.count(None) <= 2
    assert len(sources) == 16


def test_failed_controller_send_frees_its_slot():
    dist = Distributor(1)
    first = dist.take()
    dist.give(first, "n1", ok=False)  # failed: not a holder, and the slot is free again
    assert dist.take() is None


def _env_facts(target: str, versions: dict, nccl: str) -> dict:
    record = {"name": "nccl", "version": nccl, "build": "h_0", "channel": "conda-forge"}
    return {"reach": {"ok": True}, "runtime": {"python": "3.11.7"},
            "env": {"root": {"exists": True, "kind": "link", "resolves": True, "target": target},
                    "prefix": "/opt/miniconda/envs/e", "versions": versions,
                    "conda": [record], "conda_broken": [], "pip": []}}


def test_env_plan_switches_to_a_whole_spare_copy_or_sends_a_new_one():
    from preflight.config.inventory import Node
    from preflight.provision import plan
    from preflight.provision.envbuild import Package, Solution
    node = Node("n1", "master", None, None, None, None, None, 5, 60, "/opt/miniconda", "e",
                "/w", 0)
    solution = Solution((), frozenset({Package("nccl", "2.23", "h_0", "conda-forge")}), "d1", ())
    wanted = plan.Wanted(solution, None, None, {}, stamp="7")
    # the live copy was changed in place; an untouched copy of the wanted env is beside it
    spare = _env_facts(".e-d1-5", {".e-d1-5": True, ".e-d1-6": True, ".e-d1-4": False}, "2.21")
    [action] = plan.env(node, spare, wanted)
    assert (action.verb, action.detail["version"]) == ("update", ".e-d1-6"), action
    assert "nccl: 2.21 h_0 (conda-forge), want 2.23 h_0 (conda-forge)" in action.reason
    # no whole copy but the live one: a new folder for this run, the archive is sent
    [action] = plan.env(node, _env_facts(".e-d1-5", {".e-d1-5": True}, "2.21"), wanted)
    assert (action.verb, action.detail["version"]) == ("replace", ".e-d1-7"), action
    assert plan.env(node, _env_facts(".e-d1-5", {".e-d1-5": True}, "2.23"), wanted)[0].verb \
        == "ok"


def test_env_plan_reads_pip_dists_against_the_pip_lock():
    """A locked dist missing or at another version, or a pip dist the lock does not name,
    needs a new env version; exactly the locked dists is ok."""
    from preflight.config.inventory import Node
    from preflight.provision import plan
    from preflight.provision.envbuild import Package, Solution
    from preflight.provision.wheelhouse import PipLock, Wheel
    node = Node("n1", "master", None, None, None, None, None, 5, 60, "/opt/miniconda", "e",
                "/w", 0)
    lock = PipLock((Wheel("torchelastic", "0.2.2", "t.whl", "0" * 64),
                    Wheel("python-etcd", "0.4.5", "p.whl", "1" * 64)), None)
    solution = Solution((), frozenset({Package("nccl", "2.23", "h_0", "conda-forge")}), "d1",
                        (), lock)
    wanted = plan.Wanted(solution, None, None, {}, stamp="7")

    def with_pip(*dists):
        facts = _env_facts(".e-d1-5", {".e-d1-5": True}, "2.23")
        facts["env"]["pip"] = [{"name": n, "version": v, "installer": i} for n, v, i in dists]
        return plan.env(node, facts, wanted)[0]
    assert with_pip(("torchelastic", "0.2.2", "pip"), ("Python_Etcd", "0.4.5", "pip"),
                    ("numpy", "2.0", "conda")).verb == "ok"
    action = with_pip(("torchelastic", "0.2.1", "pip"), ("requests", "2.0", "pip"))
    assert action.verb == "replace"
    assert action.reason == ("python-etcd 0.4.5 (pip) missing; torchelastic (pip): 0.2.1, "
                             "want 0.2.2; pip-installed requests 2.0"), action.reason


def test_the_plan_folds_nodes_with_the_same_change_into_one_line():
    from preflight.provision import runner
    from preflight.provision.plan_types import Action
    plans = {f"node-{i}": [Action(f"node-{i}", "env", "create", "no env at /opt/e",
                                  "269.8 MB env archive"), Action(f"node-{i}", "kernel", "ok")]
             for i in range(1, 2001)}
    plans["node-7"][1] = Action("node-7", "kernel", "update", "display name differs")
    lines: list[str] = []
    assert runner.show(plans, lines.append) == 2001
    assert lines[0] == "  node-[1-2000]  env         create   no env at /opt/e " \
                       "[269.8 MB env archive]"
    assert lines[1].startswith("  node-7  kernel      update")
    assert lines[-1] == "plan: 2001 change(s) on 2000 node(s), 0 that cannot be planned"


def test_a_plan_apply_cannot_carry_out_is_refused_before_any_node_changes():
    from preflight.provision import runner
    from preflight.provision.plan_types import Action
    blocked = {"blocked": "no provision.installer in cluster.yaml"}
    plans = {f"node-{i}": [Action(f"node-{i}", "miniconda", "create", "no Miniconda",
                                  "", blocked)] for i in (1, 2)}
    lines: list[str] = []
    runner.show(plans, lines.append)
    assert "CANNOT: no provision.installer in cluster.yaml" in lines[0]
    assert lines[-1].endswith("2 that cannot be planned")
    assert runner.blocked_by_config(plans) == [
        "no provision.installer in cluster.yaml (needed on node-[1-2])"]


def test_a_change_that_needs_a_tool_the_node_lacks_cannot_be_planned():
    from preflight.config.clusterfile import ProvisionSettings
    from preflight.provision import plan
    from preflight.provision.plan_types import Action
    from selftest.builders import NODE

    class Cluster:
        provision = ProvisionSettings(compression="zstd")
    facts = {"node": {"tools": {"tar": True, "zstd": False, "gzip": True, "rsync": False}}}
    env = Action(NODE.name, "env", "create", "no env at /opt/e", "the env archive")
    code = Action(NODE.name, "code", "update", "1 changed: train.py", "rsync")
    got = [plan._runnable(Cluster, NODE, facts, a) for a in (env, code)]
    assert [(a.verb, a.reason) for a in got] == [
        ("error", "cannot create: no zstd on the node (install zstd)"),
        ("error", "cannot update: no rsync on the node (install rsync)")]
    switch = Action(NODE.name, "env", "update", "x", "none", {"present": True})
    assert plan._runnable(Cluster, NODE, facts, switch) is switch  # no archive: no tar
    assert plan._runnable(Cluster, NODE, {"node": {}}, env) is env  # older facts: apply says
