"""Provisioning from bare nodes to green on the test bed: 4 and 16 nodes, fanout 1 and 4.

For each: the wall time of `provision --apply` (the checks after it included, as a user
runs it), the apply alone, what the controller sent and what nodes copied from each other
(the installer and the env archive fan out), then a second `--apply --no-check` that
changes nothing. The env archive is built once beforehand (it is cached by digest), so
each row measures the distribution, not the build.

    python -m selftest.bench_provision   # prints JSON, writes reports/bench/provision.json
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simcluster import cluster, layout

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "reports" / "bench"
APPLIED = re.compile(r"applied in ([\d.]+) s: (\d+) change\(s\); controller sent ([\d.]+) MB, "
                     r"nodes copied ([\d.]+) MB")


def _provision(path: Path, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "preflight", "--cluster", str(path),
                           "provision", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=1800, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"bench_provision: provision {' '.join(args)} exited {done.returncode}:\n"
                 f"{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return seconds, done.stdout


def one(count: int, fanout: int, scratch: Path) -> dict:
    cluster.up(count, bare=True)
    try:
        path = scratch / f"cluster-{count}-{fanout}.yaml"
        text = (layout.RUN / "cluster.yaml").read_text()
        path.write_text(text.replace("\nprovision:\n", f"\nprovision:\n  fanout: {fanout}\n"))
        wall, out = _provision(path, "--apply")
        applied = APPLIED.search(out)
        seconds, changes, sent, copied = applied.groups()
        again_wall, again_out = _provision(path, "--apply", "--no-check")
        if "0 change(s) on 0 node(s)" not in again_out:
            sys.exit(f"bench_provision: the second apply changed something:\n{again_out}")
        return {"nodes": count, "fanout": fanout, "to_green_s": round(wall, 1),
                "apply_s": float(seconds), "checks_after_s": round(wall - float(seconds), 1),
                "changes": int(changes), "controller_sent_mb": float(sent),
                "nodes_copied_mb": float(copied),
                "controller_mb_per_node": round(float(sent) / count, 1),
                "second_apply_s": round(again_wall, 1)}
    finally:
        cluster.down()


def measure() -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-provision-") as scratch:
        for count in (4, 16):
            for fanout in (1, 4):
                rows.append(one(count, fanout, Path(scratch)))
                print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows}


def main() -> None:
    data = measure()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "provision.json").write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
