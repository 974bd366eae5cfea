"""Facts through Slurm (one srun step) against facts through SSH (one session per node),
on the same test bed (`simcluster up --slurm`), 8 / 32 / 64 nodes: wall time and the
controller's own CPU (the SSH launcher's handshakes and channels run here; the Slurm
launcher's srun runs on the login node, in the head namespace). The probe runs without
its torch import (runtime=False) under both. At 8 nodes also the time from the start of
the run to the collective's launch (facts, then the collective as a step of the job the
probe holds, or as one SSH command per node) and the collective's own wall time.

    python -m selftest.bench_slurm     # prints JSON, writes reports/bench/slurm.json
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from simcluster import cluster, layout

from preflight.config import inventory
from preflight.launchers import registry
from preflight.live import nccl

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench"
# the collective as a step, up to this many nodes: at 64, 64 torch processes on 2 cores
# took 429 s over SSH (bench_scale), most of it not the launcher's
LIVE_UP_TO = 32


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def timed(path: Path) -> dict:
    spec = inventory.load(path)
    cpu, started = _cpu(), time.monotonic()
    # runtime=False: no torch import per node (5 s of CPU each on these 2 shared cores,
    # the same under either launcher): what is compared is the launch, not the probe
    with registry.create(spec) as launcher:
        gathered = launcher.gather(list(spec.nodes), runtime=False)
    return {"wall_s": round(time.monotonic() - started, 2),
            "controller_cpu_s": round(_cpu() - cpu, 2),
            "reached": sum(f["reach"]["ok"] for f in gathered.values())}


def to_collective(path: Path) -> dict:
    """Start of the run -> the collective launched (the allocation held from the probe
    on; no second wait in the queue), and the collective's own time."""
    spec = inventory.load(path)
    started = time.monotonic()
    with registry.create(spec) as launcher:
        launcher.gather(list(spec.nodes), runtime=False)
        launched = time.monotonic()
        outcome = nccl.run(spec, launcher, nccl.plan_all(spec, list(spec.nodes)))
    return {"to_collective_s": round(launched - started, 2),
            "collective_s": outcome["seconds"], "ok": outcome["ok"],
            "launcher": outcome["launcher"]}


def measure(counts=(8, 32, 64)) -> list[dict]:
    rows = []
    try:
        for count in counts:
            state = cluster.up(count, slurm=True)
            row = {"nodes": count, "slurm_up_s": state["timings"].get("slurm_s")}
            timed(layout.RUN / "cluster.yaml")  # warm: page cache, bytecode on the nodes
            row["ssh"] = timed(layout.RUN / "cluster.yaml")
            row["slurm"] = timed(layout.RUN / "cluster-slurm.yaml")
            row["slurm_over_ssh_wall"] = round(row["slurm"]["wall_s"] / row["ssh"]["wall_s"], 2)
            if count == counts[0]:
                row["collective"] = {"ssh": to_collective(layout.RUN / "cluster.yaml"),
                                     "slurm": to_collective(layout.RUN / "cluster-slurm.yaml")}
            if count <= LIVE_UP_TO:  # the master-port check and the collective as steps
                from selftest import bench_scale
                row["live_steps"] = bench_scale.live_steps(
                    count, layout.RUN / "cluster-slurm.yaml")
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    finally:
        cluster.down()
    return rows


def main() -> None:
    rows = measure()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "slurm.json").write_text(json.dumps(rows, indent=2))
    json.dump(rows, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
