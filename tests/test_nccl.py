"""The cross-node collective: torchrun over every node, exact results, bus bandwidth."""

import pytest

from preflight.checks import collective as checks
from preflight.findings import require

pytestmark = [pytest.mark.nccl, pytest.mark.slow, pytest.mark.reads("node")]


def test_nccl_allreduce_completes_exact(node, facts, collective):
    checks.skip_if_blocked(node, collective)
    require(checks.node_result(node, collective))


def test_nccl_busbw_above_floor(node, facts, collective, cluster):
    checks.skip_if_blocked(node, collective)
    require(checks.busbw(node, collective, cluster))


def test_nccl_pairwise_healthy(node, facts, collective_pairs):
    require(checks.pair_verdict(node, collective_pairs))
