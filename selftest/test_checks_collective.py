"""The collective's verdicts: the culprit fails, the nodes it blocked say so; bandwidth
against its floor."""

import json

import pytest

from preflight.checks import collective, references
from preflight.checks.findings import NotChecked
from preflight.config import inventory
from preflight.live import nccl
from selftest.builders import node
from selftest.suites import replay_cluster


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
    with pytest.raises(NotChecked, match="blocked by c"):
        collective.skip_if_blocked(node("a"), outcome)
    collective.skip_if_blocked(node("c"), outcome)  # the culprit is judged
    assert "could not reach the rendezvous" in str(collective.node_result(node("c"), outcome)[0])


WANT_10 = references.threshold(10, 0.1, None, (), gpu="none", gpus=0)


def sweep(gbps: float) -> dict:
    return {"ranks": [{"sweep": [{"bytes": 1 << 20, "busbw_gbps": gbps}]}], "ok": True}


@pytest.mark.parametrize(("gbps", "fails"), [(9.5, False), (8.9, True), (12, False)])
def test_busbw_against_floor_with_tolerance(gbps, fails):
    outcome = {"nodes": {"n1": sweep(gbps)}}
    found = collective.busbw(node("n1"), outcome, WANT_10)
    assert bool(found) == fails
    if fails:
        assert str(found[0]) == (f"n1: bus bandwidth: expected >= 10 GB/s (tolerance 10%; "
                                 f"cluster.yaml) at 1048576 bytes, found {gbps:.3f} GB/s")


def test_no_floor_no_finding():
    nothing = references.threshold(None, 0.1, None, (), gpu="none", gpus=0)
    assert nothing.floor_gbps is None
    assert collective.busbw(node("n1"), {"nodes": {"n1": sweep(0.001)}}, nothing) == []


def test_auto_threshold_from_the_built_in_references():
    refs = references.load()
    assert all(r.source for r in refs)
    h100 = {"n1": {"gpus": [{"name": "NVIDIA H100 80GB HBM3"}] * 8}}
    gpu, count = references.gpu_model(h100)
    wanted = references.threshold("auto", 0.1, "nvlink", refs, gpu=gpu, gpus=count)
    assert (wanted.floor_gbps, wanted.source.split(":")[0]) == (460.0, "AzNHC nd96isr_h100_v5.conf")
    found = collective.busbw(node("n1"), {"nodes": {"n1": sweep(455.0)}}, wanted)
    assert "expected >= 460.0 GB/s (tolerance 0%; AzNHC nd96isr_h100_v5.conf" in str(found[0])
    ib = references.threshold("auto", 0.1, "ib-ndr-400g-x8", refs, gpu=gpu, gpus=count)
    assert ib.floor_gbps == pytest.approx(337.5)  # 375 GB/s less its 10 % tolerance


@pytest.mark.parametrize(("link", "gpus", "why"), [
    (None, 8, "names no nccl.link"), ("nvlink", 4, "no bandwidth reference for NVIDIA H100"),
    ("roce-100g", 8, "on link roce-100g")])
def test_auto_without_a_reference_says_why(link, gpus, why):
    wanted = references.threshold("auto", 0.1, link, references.load(),
                                  gpu="NVIDIA H100 80GB HBM3", gpus=gpus)
    assert wanted.floor_gbps is None
    assert why in wanted.source


def test_cpu_nodes_have_no_gpu_model():
    assert references.gpu_model({"a": {}, "b": {"gpus": []}}) == ("none", 0)


def ran(rc: int, seconds: float, stderr: str = "", ranks: list | None = None) -> dict:
    stdout = "".join(f"{nccl.MARK}{json.dumps(r)}\n" for r in ranks or [])
    return {"rc": rc, "timed_out": False, "stdout": stdout, "stderr": stderr,
            "seconds": seconds}


@pytest.fixture
def three(tmp_path):
    cluster = inventory.load(replay_cluster(tmp_path, ["a", "b", "c"]))
    return cluster, nccl.plan_all(cluster, list(cluster.nodes))


def test_a_node_whose_torchrun_exits_before_joining_is_the_one_culprit(three):
    cluster, plan = three  # rendezvous timeout 120 s: 2 s is long before anyone gave up
    waited = "torch.distributed.DistStoreError: Timed out after 121 seconds waiting for " \
             "clients. 2/3 clients joined."
    out = nccl.diagnose(plan, [ran(1, 121, waited), ran(1, 121, "RendezvousTimeoutError"),
                               ran(1, 2.0, "Traceback ...\nModuleNotFoundError: No module "
                                   "named 'torch'")], cluster)
    culprit = out["nodes"]["c"]
    assert culprit["reason"] == "exited before joining: torchrun exited 1 after 2.0 s: " \
        "ModuleNotFoundError: No module named 'torch'"
    assert "blocked_by" not in culprit
    assert out["nodes"]["a"]["blocked_by"] == out["nodes"]["b"]["blocked_by"] == ["c"]
    assert out["nodes"]["a"]["reason"].endswith("2/3 nodes joined; never joined: c")


def test_a_worker_that_dies_before_init_completes_is_the_culprit(three):
    cluster, plan = three
    dead = {"rank": -1, "stage": "init", "ok": False, "checks": {}, "sweep": [],
            "error": "ImportError: libnccl.so.2: cannot open shared object file"}
    stuck = {**dead, "error": "DistStoreError: Timed out after 120 seconds"}
    out = nccl.diagnose(plan, [ran(1, 120, ranks=[stuck]), ran(1, 120, ranks=[stuck]),
                               ran(1, 3.5, ranks=[dead])], cluster)
    assert out["nodes"]["c"]["reason"].startswith(
        "exited before joining: its worker failed: ImportError: libnccl.so.2")
    assert out["nodes"]["a"]["blocked_by"] == out["nodes"]["b"]["blocked_by"] == ["c"]


def test_a_master_that_exits_early_takes_the_blame_from_its_workers(three):
    cluster, plan = three
    bind = "torch.distributed.DistNetworkError: The server socket has failed to listen on " \
           "any local network address. port: 29500, name: EADDRINUSE"
    refused = "torch.distributed.DistNetworkError: Connection refused"
    out = nccl.diagnose(plan, [ran(1, 1.2, bind), ran(1, 30, refused), ran(1, 30, refused)],
                        cluster)
    assert out["nodes"]["a"]["reason"].startswith("exited before joining: torchrun exited 1")
    assert "EADDRINUSE" in out["nodes"]["a"]["reason"]
    assert out["nodes"]["b"]["blocked_by"] == out["nodes"]["c"]["blocked_by"] == ["a"]


def test_a_late_failure_of_a_node_that_joined_is_not_an_early_exit(three):
    cluster, plan = three
    joined = {"rank": 2, "stage": "correctness", "ok": False, "checks": {"sum": False},
              "sweep": []}
    out = nccl.diagnose(plan, [ran(0, 5, ranks=[{**joined, "rank": 0, "ok": True,
                                                 "stage": "done", "checks": {}}]),
                               ran(0, 5, ranks=[{**joined, "rank": 1, "ok": True,
                                                 "stage": "done", "checks": {}}]),
                               ran(1, 5, ranks=[joined])], cluster)
    assert out["nodes"]["c"]["reason"] == "rank 2 failed at correctness: sum"
    assert not any("blocked_by" in v for v in out["nodes"].values())
