"""selftest/device_gpu.py, the prepared script for a lent GPU machine, run here against a
stand-in nvidia-smi that prints the hand-written H100 fixtures: it writes facts the suites
replay (healthy fixture: the GPU health checks pass), with serials, UUIDs and the hostname
removed from everything it keeps."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from selftest.suites import REPO

SMI = REPO / "fixtures" / "nvidia-smi"


def test_device_script_facts_replay_through_the_gpu_suites(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    standin = bin_dir / "nvidia-smi"  # a stand-in: no GPU here
    standin.write_text(f"""#!/bin/sh
case "$1" in
  -q) cat {SMI / 'h100x8-healthy.xml'}; echo "<!-- {socket.gethostname()} -->";;
  nvlink) cat {SMI / 'h100x8-nvlink-healthy.txt'};;
  *) echo "stand-in nvidia-smi: $1 not simulated" >&2; exit 2;;
esac
""")
    standin.chmod(0o755)
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, str(REPO / "selftest" / "device_gpu.py"), str(out)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    kept = [p.read_text() for p in out.iterdir() if p.is_file()]
    assert not any(socket.gethostname() in text for text in kept)
    assert not any("GPU-00000000-0000-4000-8000" in text for text in kept)
    assert "<serial>REDACTED</serial>" in (out / "nvidia-smi-q-x.xml").read_text()
    facts = json.loads((out / "facts.json").read_text())
    assert facts["gpu-1"]["gpu"]["smi"]["rc"] == 0
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text((REPO / "fixtures" / "device" / "cluster.yaml").read_text()
                       .replace("gpus: 1", "gpus: 8").replace(
                           "environment.yml", str(REPO / "fixtures" / "device" /
                                                  "environment.yml")))
    replay = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "--rootdir", str(REPO), "-p",
         "no:cacheprovider", "-q", "-m", "gpu_health", "-k", "not xid", f"--cluster={cluster}",
         f"--facts={out / 'facts.json'}", f"--report-dir={tmp_path / 'reports'}", "-rs"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert replay.returncode == 0, replay.stdout[-3000:]
    # XIDs left out: they come from this machine's own kernel log
    assert "8 passed, 2 skipped" in replay.stdout, replay.stdout[-3000:]  # no dcgmi, no IB
