"""CUDA: torch sees the declared GPUs, built for the env's CUDA, on a new-enough driver,
with the same NCCL, GPU model and driver on every node; a job imports the env's torch."""

import pytest

from preflight.checks import cuda, imports, launchenv, libraries
from preflight.checks.findings import require

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="session")
def stacks(cluster_facts):
    """NCCL, GPU models and driver of every node, tallied once per run."""
    return cuda.Stacks(cluster_facts)


@pytest.mark.reads("runtime", "gpu")
def test_cuda_available_as_declared(node, facts):
    require(cuda.available_as_declared(node, facts))


@pytest.mark.reads("runtime", "gpu")
def test_cuda_device_count_as_declared(node, facts):
    require(cuda.device_count(node, facts))


@pytest.mark.reads("runtime")
def test_cuda_torch_build_matches_env(node, facts, env_spec):
    require(cuda.build_matches_env(node, facts, env_spec))


@pytest.mark.reads("runtime", "gpu")
def test_cuda_driver_new_enough(node, facts, env_spec):
    require(cuda.driver_new_enough(node, facts, env_spec))


@pytest.mark.reads("gpu")
def test_cuda_gpus_healthy(node, facts):
    require(cuda.gpus_healthy(node, facts))


@pytest.mark.reads("runtime", "gpu")
def test_cuda_same_stack_on_every_node(node, facts, stacks):
    require(cuda.same_stack(node, stacks))


@pytest.mark.reads("runtime")
def test_cuda_modules_imported_from_the_env(node, facts):
    """torch and numpy as a job imports them (the launch environment's sys.path)."""
    require(imports.from_env(node, facts))


@pytest.mark.reads("runtime")
def test_cuda_torchrun_on_path_is_the_envs(node, facts):
    """`torchrun` as a job's PATH finds it: the env's, or none."""
    require(imports.on_path(node, facts))


@pytest.mark.reads("runtime")
def test_cuda_libraries_resolved_from_the_env(node, facts):
    """libnccl.so.2, libcudart, libcudnn, libcublas as the loader resolves them for a job."""
    require(libraries.from_env(node, facts))


@pytest.fixture(scope="session")
def launch_envs(cluster, cluster_facts):
    """Every node's launch variables, tallied once per run."""
    return launchenv.LaunchEnvs(cluster_facts, cluster.launch.may_differ)


@pytest.mark.reads("runtime")
def test_cuda_launch_environment_same_on_every_node(node, facts, launch_envs):
    """PYTHONPATH, LD_LIBRARY_PATH, PATH ... as a job gets them (the node's own vs the rest)."""
    require(*launch_envs.odd(node))
