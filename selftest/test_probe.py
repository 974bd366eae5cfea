"""The node probe runs here, without SSH, on a fake Miniconda prefix: valid JSON, every
section present, and a broken area reported as a fact rather than crashing the probe."""

import json
import subprocess
import sys

import pytest

from preflight import facts
from selftest.test_checks_miniconda import NODE


def run_probe(node, runtime=True) -> dict:
    done = subprocess.run([sys.executable, "-I", "-"], input=facts.probe_script(node, runtime),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.fixture
def fake_node(tmp_path):
    prefix = tmp_path / "miniconda"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "etc" / "profile.d").mkdir(parents=True)
    (prefix / "etc" / "profile.d" / "conda.sh").write_text("conda() { :; }\n")
    env = prefix / "envs" / "dist"
    (env / "conda-meta").mkdir(parents=True)
    (env / "conda-meta" / "numpy-1.0-py_0.json").write_text(json.dumps(
        {"name": "numpy", "version": "1.0", "build": "py_0", "build_number": 0,
         "channel": "https://conda.anaconda.org/conda-forge/linux-64", "subdir": "linux-64"}))
    site = env / "lib" / "python3.11" / "site-packages" / "torch-2.0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.0\n\nbody\n")
    (site / "INSTALLER").write_text("pip\n")
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python").symlink_to(sys.executable)
    return NODE.__class__(**{**NODE.__dict__, "miniconda": str(prefix)})


def test_probe_reports_every_section(fake_node):
    found = run_probe(fake_node, runtime=False)
    assert found["probe_version"] == 1
    assert found["probe_errors"] == {}
    assert found["miniconda"]["layout"]["conda-meta"]["exists"]
    assert not found["miniconda"]["layout"]["bin/conda"]["exists"]
    assert found["miniconda"]["base_python"]["runs"]
    assert found["miniconda"]["conda_sh"]["rc"] == 0
    assert found["env"]["conda"][0]["name"] == "numpy"
    assert found["env"]["pip"] == [{"name": "torch", "version": "2.0", "installer": "pip",
                                    "path": found["env"]["pip"][0]["path"]}]
    assert found["runtime"]["skipped"]


def test_broken_env_python_is_a_fact_not_a_crash(fake_node):
    found = run_probe(fake_node, runtime=True)  # the fake env has no bin/python
    assert found["runtime"]["ok"] is False
    assert "does not exist" in found["runtime"]["error"]
    assert found["env"]["conda"]
