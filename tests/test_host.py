"""Host readiness: shared memory and disk, before any torchrun."""

import pytest

from preflight.checks import host
from preflight.checks.findings import require

pytestmark = pytest.mark.host


@pytest.fixture(scope="session")
def links(cluster, cluster_facts):
    """Every node's up links, tallied once per run."""
    return host.Links(cluster_facts, cluster.nccl.mtu)


@pytest.fixture(scope="session")
def sameness(cluster, cluster_facts):
    """Kernel, OS, glibc and tunables of every node, tallied once per run."""
    return host.Sameness(cluster_facts, cluster.host)


@pytest.mark.reads("node")
def test_host_shm_large_enough(node, facts, cluster):
    """/dev/shm's size and free space, for NCCL's shared-memory transport."""
    require(host.shm(node, facts, cluster.host))


@pytest.mark.reads("node")
def test_host_disk_free(node, facts, cluster):
    """Free space and inodes of the env, the workspace, /tmp, $TMPDIR and home."""
    require(host.disk(node, facts, cluster.host))


@pytest.mark.reads("runtime", "health")
def test_host_limits_for_a_job(node, facts, cluster):
    """nofile, nproc and memlock as the launcher gives a job (ssh login, Slurm step)."""
    require(host.limits(node, facts, cluster.host))


@pytest.mark.reads("net")
def test_host_links_same_on_every_node(node, facts, links):
    """MTU and speed of each up link the same on every node (and nccl.mtu when set)."""
    require(links.odd(node))


@pytest.mark.reads("node")
def test_host_clock_in_sync(node, facts, cluster):  # and its time daemon synchronised
    """The node's clock within host.clock_max_offset_s of the controller's."""
    require(host.clock(node, facts, cluster.host))


@pytest.mark.reads("node")
def test_host_same_on_every_node(node, facts, sameness):
    """Kernel release, OS, glibc, transparent huge pages, NUMA balancing and the CPU
    governor the same on every node (and as host.tunables names them)."""
    require(*sameness.odd(node))


@pytest.mark.reads("node")
def test_host_no_stray_work(node, facts):
    """No hung (D-state) process; on the master, nothing on the master port yet."""
    require(host.stray(node, facts))


@pytest.mark.reads("gpu")
def test_host_pcie_acs_off(node, facts):
    """No PCIe bridge with ACS source validation on (GPU peer-to-peer)."""
    require(host.acs(node, facts))


@pytest.mark.reads("node")
def test_host_iommu_as_set(node, facts, cluster):
    """The kernel command line's IOMMU mode as host.iommu names it."""
    require(host.iommu(node, facts, cluster.host))
