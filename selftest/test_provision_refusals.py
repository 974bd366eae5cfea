"""What provision refuses before it touches any node: an env that cannot be solved, an
installer whose sha256 differs. One line each, exit status 2."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from selftest.suites import REPO

pytestmark = pytest.mark.simcluster  # the test bed's offline channels stand in for a mirror


@pytest.fixture(scope="module")
def channels():
    from simcluster import channel
    channel.ensure()
    return {n: channel.channel_url(n) for n in ("pytorch", "nvidia", "conda-forge")}


def write_cluster(tmp_path: Path, channels: dict, pins: list[str], installer: str = "") -> Path:
    env = tmp_path / "environment.yml"
    env.write_text("name: pytorch-dist\nchannels: [pytorch, nvidia, conda-forge]\n"
                   "dependencies:\n" + "".join(f"  - {p}\n" for p in pins))
    mirrors = "".join(f"    {n}: {url}\n" for n, url in channels.items())
    path = tmp_path / "cluster.yaml"
    # port 1 on loopback: a node that would refuse any connection, were one tried
    path.write_text(f"cluster: refusals\nenvironment: {env}\ndefaults: {{ssh_config: null, "
                    f"known_hosts: {tmp_path}/known_hosts}}\nprovision:\n  channels:\n"
                    f"{mirrors}{installer}nodes:\n  - {{name: n1, role: master, "
                    f"address: 127.0.0.1, port: 1}}\n")
    return path


def provision(path: Path):
    return subprocess.run([sys.executable, "-m", "preflight", "--cluster", str(path),
                           "provision"], capture_output=True, text=True, cwd=REPO,
                          timeout=120, check=False)


def test_unsatisfiable_env_stops_before_any_node(tmp_path, channels):
    done = provision(write_cluster(tmp_path, channels, ["python=3.11", "pytorch=9.9"]))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "cannot solve" in lines[0], lines
    assert "pytorch" in lines[0], lines
    assert "Traceback" not in done.stderr


def test_installer_with_another_sha256_is_refused(tmp_path, channels):
    fake = tmp_path / "Miniconda3-latest-Linux-x86_64.sh"
    fake.write_text("#!/bin/sh\necho this is not the installer you pinned\n")
    wrong = hashlib.sha256(b"something else").hexdigest()
    done = provision(write_cluster(tmp_path, channels, ["python=3.11"],
                                   f"  installer: {{path: {fake}, sha256: {wrong}}}\n"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing to run it on any node" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_pip_section_that_cannot_be_resolved_stops_before_any_node(tmp_path, channels):
    """The wheelhouse is built on the controller before any node is contacted: a pip
    requirement its index cannot satisfy is one line, exit 2, naming the requirement."""
    path = write_cluster(tmp_path, channels, ["python=3.11", "pip"],
                         f"  cache: {tmp_path}/cache\n  pip: {{find_links: [{tmp_path}], "
                         "no_index: true}\n")
    env = tmp_path / "environment.yml"
    env.write_text(env.read_text() + "  - pip:\n      - surely-not-in-this-index==1.0\n")
    done = provision(path)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "cannot build the pip wheelhouse (resolve)" in lines[0], lines
    assert "surely-not-in-this-index" in lines[0], lines
