"""The prepared script for a machine with a real NVIDIA GPU (the `device` tool): run our own
probe there, as a node would, and keep what the GPU said, with its hostname and serials
removed, for the checks to replay here.

    python3 selftest/device_gpu.py OUT_DIR        # on the GPU machine (stdlib only)
    nox -s check -- --cluster fixtures/device/cluster.yaml --facts OUT_DIR/facts.json \
        -m "cuda or gpu_health"                     # back here: the suites on its facts

OUT_DIR gets facts.json (one node, "gpu-1"), nvidia-smi-q-x.xml, nvlink-s.txt, topo-m.txt,
dcgmi-diag-r1.json (when dcgmi is installed) and timings.json. The GPU machine has no
network and maybe no torch: the probe is stdlib only; its torch facts come from the first
python that imports torch, else they say why not.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

REMOTE = Path(__file__).resolve().parents[1] / "src" / "preflight" / "remote"
NODE = "gpu-1"
PYTHONS = (sys.executable, "/opt/conda/bin/python", "/usr/bin/python3", "/usr/local/bin/python3")


def probe_parts() -> list[str]:
    """PROBE_PARTS from remote/__init__.py, read rather than imported (any python3 here)."""
    text = (REMOTE / "__init__.py").read_text()
    parts = re.findall(r'"(probe_\w+\.py)"', text.split("PROBE_PARTS = (", 1)[1].split(")")[0])
    if "probe_main.py" not in parts:
        raise SystemExit(f"device_gpu: PROBE_PARTS not found in {REMOTE / '__init__.py'}")
    return parts


def torch_prefix() -> str:
    """The prefix of the first python that imports torch (the probe's env), else ours."""
    for python in PYTHONS:
        done = subprocess.run([python, "-c", "import sys, torch; print(sys.prefix)"],
                              capture_output=True, text=True, check=False) \
            if os.access(python, os.X_OK) else None
        if done and done.returncode == 0:
            return done.stdout.strip()
    return sys.prefix


def redact(text: str, names: list[str]) -> str:
    """Hostnames, serials, UUIDs and board ids out of recorded output."""
    for name in names:
        if name:
            text = text.replace(name, "gpu-node")
    text = re.sub(r"<serial>[^<]*</serial>", "<serial>REDACTED</serial>", text)
    text = re.sub(r"<board_id>[^<]*</board_id>", "<board_id>REDACTED</board_id>", text)
    return re.sub(r"GPU-[0-9a-fA-F-]{36}", "GPU-REDACTED", text)


def capture(argv: list[str], path: Path, names: list[str], timeout: float) -> dict:
    started = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        path.write_text(redact(done.stdout, names))
        rc, err = done.returncode, done.stderr.strip()[-300:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        rc, err = None, str(exc)
    return {"argv": argv, "rc": rc, "error": redact(err, names),
            "seconds": round(time.monotonic() - started, 2)}


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    names = [socket.gethostname(), socket.getfqdn()]
    prefix = torch_prefix()
    args = {"miniconda": "/opt/conda", "env_name": "device", "env_prefix": prefix,
            "workspace": str(out), "peers": [], "jupyter": False, "sync": None, "ssh": None,
            "runtime_script": (REMOTE / "runtime.py").read_text(), "runtime_timeout": 120,
            "dcgm": {"level": 1, "timeout": 180}}
    script = f"ARGS = __import__('json').loads({json.dumps(args)!r})\n" + \
        "\n\n".join((REMOTE / part).read_text() for part in probe_parts())
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True,
                          text=True, timeout=600, check=False)
    timings = {"probe": {"rc": done.returncode, "seconds": round(time.monotonic() - started, 2),
                         "stderr": done.stderr[-500:], "env_prefix": prefix}}
    try:
        facts = json.loads(redact(done.stdout, names))
    except ValueError:
        print(f"device_gpu: the probe printed no JSON: {done.stderr[-500:]}", file=sys.stderr)
        (out / "timings.json").write_text(json.dumps(timings, indent=1))
        return 1
    facts["reach"] = {"ok": True, "reason": None, "executions": 1, "launcher": "device"}
    (out / "facts.json").write_text(json.dumps({NODE: facts}, indent=1))
    smi = "nvidia-smi"
    timings["nvidia_smi_q_x"] = capture([smi, "-q", "-x"], out / "nvidia-smi-q-x.xml", names, 60)
    timings["nvlink_s"] = capture([smi, "nvlink", "-s"], out / "nvlink-s.txt", names, 30)
    timings["topo_m"] = capture([smi, "topo", "-m"], out / "topo-m.txt", names, 30)
    timings["sections"] = facts.get("section_seconds")
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    health = facts.get("health") or {}
    print(json.dumps({"probe_s": facts.get("probe_seconds"), "sections": timings["sections"],
                      "errors": facts.get("probe_errors"),
                      "dcgm": {k: v for k, v in (health.get("dcgm") or {}).items()
                               if k != "text"}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", "out"))))
