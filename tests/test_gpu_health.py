"""GPU node health in depth: PCIe links, XIDs, throttling, ECC, GPU modes, DCGM's
diagnostic, NVLink, InfiniBand, and the same GPU/link/NCCL picture on every node.
Findings carry a severity (drain / reboot / investigate) as the JUnit property
`severity`."""

import pytest

from preflight.checks import gpuhealth as health
from preflight.checks.findings import require

pytestmark = pytest.mark.gpu_health


@pytest.fixture(scope="session")
def fleet(cluster_facts):
    """The cluster's pluralities (NVLink count, IB rate, the picture), once per run."""
    return health.Fleet(cluster_facts)


@pytest.fixture(scope="session")
def ib_hca(cluster):
    """cluster.yaml's NCCL_IB_HCA; each node's own (its environment, nccl.conf) is in
    its facts."""
    return cluster.gpu_health.ib_hca or cluster.nccl.env.get("NCCL_IB_HCA")


@pytest.mark.reads("gpu")
def test_gpu_pcie_link_at_max(node, facts, cluster):
    health.skip_unless(node, cluster.gpu_health, "pcie")
    require(health.pcie(node, facts))


@pytest.mark.reads("health")
def test_gpu_no_drain_xid_since_boot(node, facts, cluster):
    health.skip_unless(node, cluster.gpu_health, "xid")
    require(health.xids(node, facts, cluster.gpu_health))


@pytest.mark.reads("gpu")
def test_gpu_clocks_not_throttled(node, facts, cluster):
    health.skip_unless(node, cluster.gpu_health, "clocks")
    require(health.clocks(node, facts, cluster.gpu_health))


@pytest.mark.reads("gpu")
def test_gpu_ecc_within_limits(node, facts, cluster):
    health.skip_unless(node, cluster.gpu_health, "ecc")
    require(health.ecc(node, facts, cluster.gpu_health))


@pytest.mark.reads("gpu")
def test_gpu_modes_as_expected(node, facts, cluster):
    health.skip_unless(node, cluster.gpu_health, "modes")
    require(health.modes(node, facts, cluster.gpu_health))


@pytest.mark.reads("gpu", "node", "health")
def test_gpu_fabric_and_gpudirect_ready(node, facts, cluster):
    """Fabric Manager's state on NVSwitch systems; nvidia_peermem with RDMA; gdrdrv."""
    health.skip_unless(node, cluster.gpu_health, "fabric")
    require(health.fabric(node, facts, cluster.gpu_health))


@pytest.mark.reads("gpu")
def test_gpu_no_stray_compute_process(node, facts, cluster):
    """No compute process already holds a GPU before the job."""
    health.skip_unless(node, cluster.gpu_health, "processes")
    require(health.processes(node, facts))


@pytest.mark.reads("health")
def test_gpu_dcgm_diag_passes(node, facts, cluster):
    health.skip_unless(node, cluster.gpu_health, "dcgm")
    require(health.dcgm(node, facts, cluster.gpu_health))


@pytest.mark.reads("health")
def test_gpu_nvlink_all_up(node, facts, cluster, fleet):
    health.skip_unless(node, cluster.gpu_health, "nvlink")
    require(health.nvlink(node, facts, fleet))


@pytest.mark.reads("health")
def test_ib_ports_active_at_cluster_rate(node, facts, cluster, fleet, ib_hca):
    health.skip_unless(node, cluster.gpu_health, "ib")
    require(health.ib(node, facts, cluster.gpu_health, fleet, ib_hca))


@pytest.mark.reads("gpu", "health")
def test_gpu_same_picture_on_every_node(node, facts, cluster, fleet):
    if node.gpus == 0 and not health.ib_ports(facts):
        pytest.skip(f"{node.name}: no GPUs declared and no RDMA devices: nothing to compare")
    require(health.same_picture(node, fleet))
