"""The CUDA suite on the simulated (GPU-less) cluster."""

import pytest
import yaml

from selftest.builders import failing
from selftest.suites import run_suites

pytestmark = pytest.mark.simcluster


def test_gpu_less_cluster_declared_gpus_0_passes(sim, tmp_path):
    sim.ensure(4)
    run = run_suites(sim.cluster_yaml, tmp_path, "-m", "cuda")
    assert run.rc == 0, run.output[-2000:]
    assert "[node-1] torch 2.13.0+cpu, CUDA: False, no GPU" in (tmp_path / "summary.md").read_text()


def test_node_declared_with_a_gpu_fails_alone(sim, tmp_path):
    sim.ensure(4)
    doc = yaml.safe_load(sim.cluster_yaml.read_text())
    doc["nodes"] = [{"name": "node-1", "role": "master"}, {"name": "node-2", "gpus": 1},
                    {"name": "node-[3-4]"}]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    run = run_suites(path, tmp_path, "-m", "cuda")
    assert set(failing(run)) == {"node-2"}
    message = run.messages["test_cuda_available_as_declared[node-2]"]
    assert "node-2: CUDA: expected CUDA available with 1 GPU(s), found " \
           "torch.cuda.is_available() is False" in message
    assert "built without CUDA" in message
    assert "expected 1 GPU(s) visible to torch, found 0" in \
        run.messages["test_cuda_device_count_as_declared[node-2]"]


def test_a_secret_in_a_launch_variable_never_reaches_a_report(sim, tmp_path):
    """A token exported in node-3's ~/.bashrc, in a variable the probe records
    (TORCH_HUB_TOKEN): the drift names the variable, no file of the run holds its value."""
    sim.ensure(4)
    planted = "planted-s3cret-0042"
    sim.fault("launch-env-secret", "node-3", planted)
    run = run_suites(sim.cluster_yaml, tmp_path, "-m", "cuda", "-p", "no:xdist")
    assert set(failing(run)) == {"node-3"}
    assert "TORCH_HUB_TOKEN=****" in \
        run.messages["test_cuda_launch_environment_same_on_every_node[node-3]"]
    leaked = [p.name for p in tmp_path.rglob("*") if p.is_file()
              and planted in p.read_text(errors="replace")]
    assert leaked == []
    assert planted not in run.output
