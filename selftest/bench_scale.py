"""Issue 26's live numbers on the test bed, each count in one pass: the per-node run
against gathering alone (with SSH handshakes counted on the nodes), then the master-port
check and the collective across every node. `python -m selftest.bench_scale 8 32 64`
runs it alone (into reports/bench/scale.json); bench.py runs it too."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from simcluster import cluster, layout

from preflight.config import inventory
from preflight.launchers import registry
from preflight.live import nccl, netcheck
from selftest import bench


def live_steps(count: int, path: Path | None = None) -> dict:
    """The master-port check and the collective over every node of the bed (path: its
    cluster.yaml, the SSH one unless said), with the controller's CPU for each (this
    process: the SSH launcher's threads run here; Slurm's srun on the login node)."""
    spec = inventory.load(path or layout.RUN / "cluster.yaml")
    # the bed's nodes share 2 cores: 64 torch imports at once need more than the demo's
    # 20-s rendezvous window
    # (at 64 nodes with the demo's 30-s collective timeout, gloo's full-mesh connect timed
    # out on 9 ranks: 2026-12-06)
    spec = spec.with_blocks(nccl=spec.nccl.model_copy(update={
        "rdzv_timeout": max(spec.nccl.rdzv_timeout, 4 * count),
        "collective_timeout": max(spec.nccl.collective_timeout, 4 * count),
        "deadline": max(spec.nccl.deadline, 10 * count)}))
    nodes = list(spec.nodes)

    def timed(work):
        wall, cpu = time.monotonic(), time.process_time()
        out = work()
        return out, round(time.monotonic() - wall, 2), round(time.process_time() - cpu, 2)
    with registry.create(spec) as launcher:
        # a Slurm launcher takes its job with the facts and holds it for both steps
        # (without one it runs them over SSH, as its label then says)
        launcher.gather(nodes, runtime=False)
        port, port_s, port_cpu = timed(lambda: netcheck.master_reachable(spec, launcher,
                                                                         nodes))
        ring, ring_s, ring_cpu = timed(lambda: nccl.run(spec, launcher,
                                                        nccl.plan_all(spec, nodes)))
    last = ring["sweep"][-1] if ring.get("sweep") else {}
    return {"nodes": count, "launcher": ring.get("launcher"),
            "master_port": {"seconds": port_s, "controller_cpu_s": port_cpu,
                            "ok": sum(v == "ok" for k, v in port.items()
                                      if k not in ("address",))},
            "collective": {"seconds": ring_s, "controller_cpu_s": ring_cpu, "ok": ring["ok"],
                           "rdzv_timeout_s": spec.nccl.rdzv_timeout,
                           "collective_timeout_s": spec.nccl.collective_timeout,
                           "busbw_gbps": last.get("busbw_gbps"), "bytes": last.get("bytes"),
                           "failed": {n: v.get("reason") for n, v in ring["nodes"].items()
                                      if v.get("reason")}}}


def measure(counts: tuple[int, ...] = (8, 32, 64)) -> list[dict]:
    out = []
    try:
        for count in counts:
            cluster.up(count)
            bench.suite_run(count)  # the nodes' bytecode caches, as on a real node
            floor = bench.gather_full(count)
            run = bench.suite_run(count)
            run["gather_only_s"] = floor["seconds"]
            run["ratio_to_gather"] = round(run["wall_s"] / floor["seconds"], 2)
            out.append({"per_node_run": run, **live_steps(count)})
            print(json.dumps(out[-1]), flush=True)
    finally:
        cluster.down()
    return out


if __name__ == "__main__":
    rows = measure(tuple(int(a) for a in sys.argv[1:]) or (8, 32, 64))
    bench.OUT.mkdir(parents=True, exist_ok=True)
    (bench.OUT / "scale.json").write_text(json.dumps(rows, indent=2))
