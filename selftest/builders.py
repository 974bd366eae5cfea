"""Builders the selftests share: nodes, synthetic facts, waivers files, a run's failing
set, a cluster.yaml variant. Test modules import from here, never from each other."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from preflight import remote
from preflight.config import waivers
from preflight.config.inventory import Node

REPO = Path(__file__).resolve().parents[1]


SMI = REPO / "fixtures" / "nvidia-smi"
PROBE = remote.probe_module()


NODE = Node(name="w1", role="worker", address=None, user="root", port=None,
            identity_file=None, proxy_jump=None, connect_timeout=5, command_timeout=60,
            miniconda="/opt/miniconda", env_name="dist", workspace="/workspace/src", gpus=0)


def node(name: str) -> Node:
    return Node(name=name, role="worker", address=None, user="root", port=None,
                identity_file=None, proxy_jump=None, connect_timeout=5, command_timeout=60,
                miniconda="/opt/miniconda", env_name="dist", workspace="/w", gpus=0)


def gpu_node(name: str = "w1", gpus: int = 8) -> Node:
    return replace(NODE, name=name, gpus=gpus)


def gpu_facts(smi_file: str, *, devices: int = 8, cuda_build: str | None = "11.8",
              nccl: str = "2.14.3", name: str = "w1") -> dict:
    text = (SMI / smi_file).read_text()
    return {"reach": {"ok": True},
            "runtime": {"ok": True, "torch": {
                "version": "2.0.1", "cuda_build": cuda_build, "cuda_available": devices > 0,
                "device_count": devices, "nccl": nccl, "devices": []}},
            "gpu": {"dev": [f"nvidia{i}" for i in range(devices)] + ["nvidiactl"],
                    "nvidia_smi": "/usr/bin/nvidia-smi", "cuda_visible_devices": None,
                    "smi": {"format": "csv" if smi_file.endswith(".csv") else "xml", "rc": 0,
                            "text": text, "error": ""}}}


def load(tmp_path, text: str):
    """waivers.load of text written to a waivers.yaml under tmp_path."""
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    return waivers.load(path)


def failing(run) -> dict[str, set[str]]:
    """node -> names of the env tests that failed there."""
    out: dict[str, set[str]] = {}
    for case, outcome in run.cases.items():
        if outcome in ("failed", "error"):
            name, node = case[:-1].split("[")
            out.setdefault(node, set()).add(name)
    return out


def variant(sim, tmp_path: Path, **nccl_settings) -> Path:
    doc = yaml.safe_load(sim.cluster_yaml.read_text())
    doc["nccl"].update(nccl_settings)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


GOOD = """\
waivers:
  - check: test_gpu_*
    nodes: worker-[7-9]
    reason: GPU 3 out for RMA
    owner: alice
    expires: 2026-12-31
  - check: test_gpu_count_*
    nodes: worker-8
    reason: old one
    owner: bob
    expires: "2026-01-01"
"""
