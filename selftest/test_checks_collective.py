"""The collective's verdicts: the culprit fails, the nodes it blocked say so; bandwidth
against its floor."""

import pytest

from preflight import nccl
from preflight.checks import collective
from preflight.inventory import NcclSettings
from selftest.test_sshmatrix import node


def verdicts(**reasons) -> dict:
    return {n: {"ranks": [], "ok": r is None, "reason": r} for n, r in reasons.items()}


def test_nodes_that_waited_name_the_one_that_never_joined():
    nodes = verdicts(
        a="rendezvous timed out: 2/3 nodes joined",
        b="rendezvous did not complete",
        c="could not reach the rendezvous at 10.0.0.1:29500 on a (blocked port, ...)")
    nccl._blame_rendezvous(nodes, "a")
    assert nodes["a"]["blocked_by"] == nodes["b"]["blocked_by"] == ["c"]
    assert "never joined: c" in nodes["a"]["reason"]
    assert "blocked_by" not in nodes["c"]
    outcome = {"nodes": nodes, "world": 3, "backend": "gloo"}
    with pytest.raises(pytest.skip.Exception, match="blocked by c"):
        collective.skip_if_blocked(node("a"), outcome)
    collective.skip_if_blocked(node("c"), outcome)  # the culprit is judged
    assert "could not reach the rendezvous" in str(collective.node_result(node("c"), outcome)[0])


class Cluster:
    nccl = NcclSettings(min_busbw_gbps=10, busbw_tolerance=0.1)


def sweep(gbps: float) -> dict:
    return {"ranks": [{"sweep": [{"bytes": 1 << 20, "busbw_gbps": gbps}]}], "ok": True}


@pytest.mark.parametrize(("gbps", "fails"), [(9.5, False), (8.9, True), (12, False)])
def test_busbw_against_floor_with_tolerance(gbps, fails):
    outcome = {"nodes": {"n1": sweep(gbps)}}
    found = collective.busbw(node("n1"), outcome, Cluster)
    assert bool(found) == fails
    if fails:
        assert str(found[0]) == (f"n1: bus bandwidth: expected >= 10.0 GB/s (tolerance 10%) at "
                                 f"1048576 bytes, found {gbps:.3f} GB/s")


def test_no_floor_no_finding():
    class NoFloor:
        nccl = NcclSettings()
    assert collective.busbw(node("n1"), {"nodes": {"n1": sweep(0.001)}}, NoFloor) == []
