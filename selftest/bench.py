"""Benchmarks of the test bed and the harness (`nox -s bench`): JSON into reports/bench/.

Measured on this machine, where every node shares the controller's CPUs: wall time is
roughly total CPU / cores, so per-node costs are the numbers that carry to a real cluster.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simcluster import cluster, layout

from preflight.config import inventory
from preflight.launchers import registry
from selftest import (
    bench_env,
    bench_handshakes,
    bench_nccl,
    bench_provision,
    bench_report,
    bench_slurm,
)

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "reports" / "bench"


def du_bytes(*paths: Path) -> list[int]:
    """Apparent disk use of each path; a hardlinked file counts only where first seen."""
    done = subprocess.run(["du", "-sb", *map(str, paths)], capture_output=True, text=True,
                          check=True)
    return [int(line.split()[0]) for line in done.stdout.splitlines()]


def channel_cold_build() -> dict:
    """Build the channels and one node from nothing, in a scratch SIMCLUSTER_HOME."""
    scratch = Path(tempfile.mkdtemp(prefix="simcluster-bench-", dir="/var/tmp"))
    code = ("import time,json; from simcluster import channel; t=time.monotonic(); "
            "channel.ensure(); print(json.dumps({'seconds': time.monotonic()-t}))")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "SIMCLUSTER_HOME": str(scratch)}, check=True)
        seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
        return {"channel_build_s": round(seconds, 1),
                "channel_bytes": du_bytes(scratch / "cache" / "channels")[0]}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def up_timing(count: int) -> dict:
    started = time.monotonic()
    cluster.up(count)
    seconds = time.monotonic() - started
    cache, run = du_bytes(layout.CACHE, layout.RUN)
    return {"nodes": count, "up_s": round(seconds, 2), "cache_bytes": cache,
            "per_node_bytes_beyond_cache": run // count}


def down_timing() -> float:
    started = time.monotonic()
    cluster.down()
    return round(time.monotonic() - started, 2)


def suite_run(count: int) -> dict:
    """The whole per-node suite as a user runs it: wall, controller CPU, remote executions."""
    with tempfile.TemporaryDirectory() as tmp, bench_handshakes.counting() as handshakes:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "tests", "--rootdir", str(REPO), "-q", "-n", "auto",
             "-m", "not nccl",
             "-p", "no:cacheprovider", f"--cluster={layout.RUN / 'cluster.yaml'}",
             f"--report-dir={tmp}"], cwd=REPO, capture_output=True, text=True)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        gathered = json.loads((Path(tmp) / "facts.json").read_text())
    # the node-to-node logins run inside each node's probe (its peer_logins section)
    logins = sum(len((f.get("peer_logins") or {}).get("tried", {})) for f in gathered.values())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    executions = [f["reach"]["executions"] for f in gathered.values()]
    return {"nodes": count, "rc": done.returncode, "wall_s": round(wall, 2),
            "controller_cpu_s": round(cpu, 2), "controller_cpu_per_node_s": round(cpu / count, 3),
            "wall_per_node_s": round(wall / count, 3),
            "remote_executions_per_node": max(executions),
            # counted on the nodes (nft): new TCP connections to port 22
            "ssh_handshakes_from_controller": handshakes["from_controller"],
            "ssh_handshakes_node_to_node": handshakes["from_peers"],
            "ssh_logins": logins, "ssh_logins_per_node": round(logins / count, 2),
            "reached": sum(f["reach"]["ok"] for f in gathered.values()),
            "unreached": sorted({f["reach"]["reason"] for f in gathered.values()
                                 if not f["reach"]["ok"]})[:3],
            "probe_seconds_max": max((f.get("probe_seconds", 0) for f in gathered.values()),
                                     default=0)}


def gather_rate(count: int) -> dict:
    """Stdlib-probe fact gathering (no torch import) across every node, in nodes/s."""
    spec = inventory.load(layout.RUN / "cluster.yaml")
    started = time.monotonic()
    cpu0 = time.process_time()
    gathered = registry.create(spec).gather(list(spec.nodes), runtime=False)
    seconds = time.monotonic() - started
    ok = sum(f["reach"]["ok"] for f in gathered.values())
    if ok != count:
        reasons = {f["reach"]["reason"] for f in gathered.values() if not f["reach"]["ok"]}
        sys.exit(f"bench: only {ok} of {count} nodes gave facts: {sorted(reasons)[:3]}")
    return {"nodes": count, "reached": ok, "seconds": round(seconds, 2),
            "nodes_per_s": round(count / seconds, 1), "parallelism": spec.parallelism,
            "controller_cpu_s": round(time.process_time() - cpu0, 2)}


def gather_full(count: int) -> dict:
    """The floor of a per-node run: the probe with the env's python (torch) on every node."""
    spec = inventory.load(layout.RUN / "cluster.yaml")
    started = time.monotonic()
    gathered = registry.create(spec).gather(list(spec.nodes), runtime=True)
    return {"nodes": count, "seconds": round(time.monotonic() - started, 2),
            "reached": sum(f["reach"]["ok"] for f in gathered.values())}


def probe_health_cost(spec) -> dict:
    """The probe's `health` section (nvlink -s, kernel log XIDs, /sys/class/infiniband)
    against the whole probe, per node: plain nodes, then node-3 with a fake 8-port IB tree
    and an XID kernel log (the test bed's ib and xid faults)."""
    def measure() -> dict:
        got = registry.create(spec).gather(list(spec.nodes), runtime=False)
        health = sorted(f["section_seconds"]["health"] for f in got.values())
        probe = sorted(f["probe_seconds"] for f in got.values())
        return {"health_ms_median": round(health[len(health) // 2] * 1000, 1),
                "health_ms_max": round(health[-1] * 1000, 1),
                "probe_s_median": probe[len(probe) // 2],
                "health_share": round(health[len(health) // 2] / probe[len(probe) // 2], 3)}
    plain = measure()
    from simcluster import faults as simfaults
    simfaults.inject("node-3", "ib")
    simfaults.inject("node-3", "xid")
    try:
        faked = measure()
    finally:
        simfaults.heal("node-3")
    return {"plain": plain, "with_ib_and_xid_on_node_3": faked}


WORKERS = ["-n", "2"]  # the controller's 2 cores; replay_fleet(..., "-p", "no:xdist") overrides


def replay_fleet(count: int, *extra: str) -> dict:
    """Every per-node check for `count` synthetic nodes (a recorded node's facts, copied)
    from --facts: what the controller's pytest, xdist and checks cost per node. extra:
    more pytest arguments (`--chunk-from=100000`: one item per node and check, the way
    every run was before chunks)."""
    from selftest import recorded, suites
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"node-{i}" for i in range(1, count + 1)]
        (Path(tmp) / "replayed.json").write_text(json.dumps(recorded.fleet(names)))
        cluster_yaml = suites.replay_cluster(Path(tmp), names)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "tests", "--rootdir", str(REPO), "-q",
             *([] if "no:xdist" in extra else WORKERS),
             "-m", "not nccl", "-p", "no:cacheprovider", f"--cluster={cluster_yaml}",
             f"--facts={Path(tmp) / 'replayed.json'}", f"--report-dir={tmp}",
             f"--junitxml={Path(tmp) / 'junit.xml'}", *extra],
            cwd=REPO, capture_output=True, text=True)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        testcases = (Path(tmp) / "junit.xml").read_text().count("<testcase ")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"nodes": count, "args": list(extra), "rc": done.returncode, "wall_s": round(wall, 1),
            "junit_testcases": testcases,
            "controller_cpu_per_node_ms": round(cpu / count * 1000, 1),
            "last_line": done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "kernel": platform.release(),
               "python": sys.version.split()[0],
               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    testbed = {"machine": machine, "cold": channel_cold_build(), "up": [], "down_s": []}
    harness = {"machine": machine, "suite": [], "gather": [],
               "env_checks": bench_env.check_timing(16),
               "host_readiness": bench_env.host_readiness_cost()}
    try:
        for count in (4, 16):
            testbed["up"].append(up_timing(count))
            if count == 4:
                spec = inventory.load(layout.RUN / "cluster.yaml")
                harness["probe_conda_meta"] = bench_env.probe_conda_meta_cost(
                    spec, spec.nodes[0])
                harness["integrity"] = bench_env.integrity_cost(spec, spec.nodes[0])
                harness["collective"] = bench_nccl.measure(spec)
                harness["probe_health"] = probe_health_cost(spec)
            suite_run(count)  # first run writes the nodes' bytecode caches, as on a real node
            floor = gather_full(count)
            run = suite_run(count)
            run["gather_only_s"] = floor["seconds"]
            run["ratio_to_gather"] = round(run["wall_s"] / floor["seconds"], 2)
            harness["suite"].append(run)
            testbed["down_s"].append(down_timing())
        testbed["up"].append(up_timing(64))
        harness["gather"].append(gather_rate(64))
        harness["gather"].append(gather_rate(64))  # warm: sshd and page cache already hot
    finally:
        cluster.down()
    # the per-node run against gathering alone, the master-port check and the collective
    # at 8, 32 and 64 nodes (issue 26)
    from selftest import bench_scale  # it uses suite_run and gather_full from here
    harness["scale"] = bench_scale.measure()
    # chunks from 256 nodes (the default), against one item per node in the same run;
    # 10,000 nodes without xdist only (each worker would hold every node's facts: 3 x 5 GB)
    harness["replay"] = [replay_fleet(200), replay_fleet(2000),
                         replay_fleet(2000, "--chunk-from=100000"),
                         replay_fleet(200, "-p", "no:xdist"), replay_fleet(2000, "-p", "no:xdist"),
                         replay_fleet(10000, "-p", "no:xdist")]
    harness["report"] = bench_report.measure()
    harness["slurm"] = bench_slurm.measure()
    harness["provision"] = bench_provision.measure()
    for name, data in (("testbed", testbed), ("harness", harness)):
        (OUT / f"{name}.json").write_text(json.dumps(data, indent=2))
        print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
