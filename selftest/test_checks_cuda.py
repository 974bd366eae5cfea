"""CUDA checks against nvidia-smi outputs in NVIDIA's documented formats (fixtures/nvidia-smi)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from preflight.checks import cuda
from preflight.config import envspec
from preflight.facts import nvsmi
from preflight.report import text as report_text
from selftest.builders import NODE, SMI, gpu_facts
from selftest.suites import REPO

GPU_NODE = replace(NODE, gpus=8)
A100_ENV = envspec.load(REPO / "fixtures" / "environment.a100.yml")  # cudatoolkit=11.8


def test_xml_and_csv_agree_on_the_healthy_node():
    xml = nvsmi.parse_xml((SMI / "a100x8-healthy.xml").read_text())
    csv = nvsmi.parse_csv((SMI / "a100x8-healthy.csv").read_text())
    assert xml["driver"] == csv["driver"] == "535.154.05"
    assert xml["cuda"] == "12.2"
    fields = ("index", "name", "uuid", "persistence", "ecc", "memory_mib", "retired_pending")
    assert [{k: g[k] for k in fields} for g in xml["gpus"]] == \
        [{k: g[k] for k in fields} for g in csv["gpus"]]
    assert len(xml["gpus"]) == 8
    assert xml["gpus"][0]["retired_pending"] is None  # N/A on A100: not reported


def test_garbage_is_a_clear_error():
    with pytest.raises(nvsmi.SmiError, match="not XML"):
        nvsmi.parse_xml("NVIDIA-SMI has failed because it couldn't communicate with the driver")
    facts = gpu_facts("a100x8-healthy.xml")
    facts["gpu"]["smi"] = {"format": "xml", "rc": 9, "text": "", "error": "driver not loaded"}
    assert "driver not loaded" in cuda.device_count(GPU_NODE, facts)[0].found


CHECKS = [cuda.available_as_declared, cuda.device_count, cuda.gpus_healthy,
          lambda n, f: cuda.build_matches_env(n, f, A100_ENV),
          lambda n, f: cuda.driver_new_enough(n, f, A100_ENV)]


@pytest.mark.parametrize("check", range(len(CHECKS)))
def test_healthy_8_gpu_node_passes(check):
    assert CHECKS[check](GPU_NODE, gpu_facts("a100x8-healthy.xml")) == []


def test_missing_gpu():
    found = cuda.device_count(GPU_NODE, gpu_facts("a100x7-missing-gpu.xml", devices=7))
    assert [str(f) for f in found] == [
        "w1: GPU count: expected 8 GPU(s) visible to torch, found 7",
        "w1: GPU count: expected 8 GPU(s) in nvidia-smi, found 7"]


def test_old_driver_for_cuda_11_8():
    found = cuda.driver_new_enough(GPU_NODE, gpu_facts("a100x8-old-driver.xml"), A100_ENV)
    assert found[0].expected.startswith(">= 520.61.05 for CUDA 11.8")
    assert found[0].found == "470.182.03"
    assert "minor version compatibility" in found[0].hint  # 470 >= 450.80.02


def test_mixed_models_in_one_node_and_across_nodes():
    mixed = gpu_facts("mixed-a100-v100.xml")
    fleet = cuda.Stacks({"w1": mixed, "w2": gpu_facts("a100x8-healthy.xml"),
                         "w3": gpu_facts("a100x8-healthy.xml")})
    found = cuda.same_stack(GPU_NODE, fleet)
    assert found[0].found == "4 x NVIDIA A100-SXM4-80GB, 4 x Tesla V100-SXM2-32GB"
    assert any(f.check == "same GPU models on every node" for f in found)
    healthy = replace(NODE, name="w2", gpus=8)
    assert cuda.same_stack(healthy, fleet) == []


def test_nccl_version_drift_names_the_odd_node():
    nodes = {f"w{i}": gpu_facts("a100x8-healthy.xml") for i in (1, 2, 3)}
    nodes["w3"] = gpu_facts("a100x8-healthy.xml", nccl="2.18.1")
    found = cuda.same_stack(replace(NODE, name="w3", gpus=8), cuda.Stacks(nodes))
    assert [f.check for f in found] == ["same NCCL on every node"]
    assert found[0].expected == "NCCL 2.14.3"
    assert found[0].found == "2.18.1"


def test_remap_failure_is_unhealthy():
    found = cuda.gpus_healthy(GPU_NODE, gpu_facts("a100x8-remap-failure.xml"))
    assert [f.found for f in found] == ["a row remap pending (reset the GPU)",
                                        "a row remap failure (replace the GPU)"]
    assert "GPU 3" in found[0].expected


def test_declared_gpus_but_cpu_torch():
    facts = gpu_facts("a100x8-healthy.xml", devices=0, cuda_build=None)
    found = cuda.available_as_declared(GPU_NODE, facts)
    assert found[0].expected == "CUDA available with 8 GPU(s)"
    assert "built without CUDA" in found[0].hint
    assert cuda.build_matches_env(GPU_NODE, facts, A100_ENV)[0].found == \
        "torch 2.0.1 built for CPU only"


def test_torch_built_for_other_cuda():
    facts = gpu_facts("a100x8-healthy.xml", cuda_build="12.1")
    assert cuda.build_matches_env(GPU_NODE, facts, A100_ENV)[0].found == \
        "torch 2.0.1 built for CUDA 12.1"


def test_gpu_less_node_passes_with_no_gpu_expected():
    facts = gpu_facts("a100x8-healthy.xml", devices=0, cuda_build=None)
    del facts["gpu"]["smi"]
    for check in CHECKS:
        assert check(NODE, facts) == []
    assert report_text.one_line("w1", facts) == "[w1] torch 2.0.1, CUDA: False, no GPU"


def test_one_line_summary():
    assert report_text.one_line("w1", gpu_facts("a100x8-healthy.xml")) == \
        "[w1] torch 2.0.1, CUDA: True, 8 x NVIDIA A100-SXM4-80GB"


@pytest.mark.parametrize(("error", "found"), [
    # the runtime probe's own form: one line, the chain's cause in parentheses
    ("ImportError: /e/lib/libtorch_cpu.so: invalid ELF header (caused by OSError: "
     "/e/lib/libtorch_cpu.so: invalid ELF header)",
     "OSError: /e/lib/libtorch_cpu.so: invalid ELF header -> ImportError: "),
    # an older probe's: the message on the lines after "ImportError:"
    ("ImportError:\n  /e/lib/libtorch_cpu.so: invalid ELF header", "ImportError: /e/lib/lib"),
    ("Traceback (most recent call last):\nOSError: libcudart.so.11.0: cannot open\n\n"
     "The above exception was the direct cause of the following exception:\n\n"
     "ImportError: torch failed", "OSError: libcudart.so.11.0: cannot open -> ImportError"),
])
def test_a_chained_import_error_names_its_root_cause(error, found):
    facts = {"runtime": {"ok": True, "torch_error": error}}
    findings = cuda.available_as_declared(NODE, facts)
    assert found in findings[0].found
    assert "import torch" in findings[0].hint


def test_the_runtime_probe_keeps_a_multiline_chain_on_one_line():
    from preflight import remote
    namespace = {"__name__": "runtime_describe"}
    source = remote.source("runtime.py")
    exec(compile(source[:source.index("out = {")], "<runtime>", "exec"), namespace)  # noqa: S102 - our file
    try:
        try:
            raise OSError("libnccl.so.2:\n  cannot open")
        except OSError as exc:
            raise ImportError("\n  torch failed") from exc
    except ImportError as exc:
        text = namespace["describe"](exc)
    assert text == "ImportError: torch failed (caused by OSError: libnccl.so.2: cannot open)"
