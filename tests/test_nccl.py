"""The cross-node collective: torchrun over every node, exact results, bus bandwidth."""

import pytest

from preflight.checks import collective as checks
from preflight.checks.findings import require

pytestmark = [pytest.mark.nccl, pytest.mark.slow, pytest.mark.reads("node")]


def test_nccl_allreduce_completes_exact(node, facts, collective):
    checks.skip_if_blocked(node, collective)
    require(checks.node_result(node, collective))


def test_nccl_busbw_above_floor(node, facts, collective, busbw_threshold, record_property):
    checks.skip_if_blocked(node, collective)
    measured = checks.largest_busbw(node, collective)
    if measured is not None:  # recorded with or without a threshold to judge it by
        record_property("busbw_gbps", round(measured[1], 4))
    if busbw_threshold.floor_gbps is None:
        shown = f"{measured[1]:.3f} GB/s" if measured else "nothing"
        pytest.skip(f"{node.name}: measured {shown}, not judged: {busbw_threshold.source}")
    require(checks.busbw(node, collective, busbw_threshold))


def test_nccl_pairwise_healthy(node, facts, collective_pairs):
    require(checks.pair_verdict(node, collective_pairs))
