"""Host readiness: shared memory and disk, before any torchrun."""

import pytest

from preflight.checks import host
from preflight.checks.findings import require

pytestmark = [pytest.mark.host, pytest.mark.reads("node")]


def test_host_shm_large_enough(node, facts, cluster):
    """/dev/shm's size and free space, for NCCL's shared-memory transport."""
    require(host.shm(node, facts, cluster.host))


def test_host_disk_free(node, facts, cluster):
    """Free space and inodes of the env, the workspace, /tmp, $TMPDIR and home."""
    require(host.disk(node, facts, cluster.host))
