"""Environment-suite costs: the checks on 16 nodes x 220+ packages, and what reading
conda-meta adds to the probe on a node (nox -s bench calls these)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

from simcluster import layout

from preflight.checks import environment, sameness
from preflight.config import envspec
from preflight.core import channels
from preflight.launchers import ssh as facts

PACKAGES = 220
REPO = Path(__file__).resolve().parent.parent


def synthetic_node(index: int, drift: bool) -> dict:
    records = [{"name": f"pkg{i:03d}", "version": f"1.{i}.0", "build": f"h{i:x}_0",
                "build_number": 0, "channel": "https://conda.anaconda.org/conda-forge",
                "subdir": "linux-64", "url": "", "sha256": ""} for i in range(PACKAGES)]
    records += [{"name": n, "version": v, "build": "h0_0", "build_number": 0,
                 "channel": "https://conda.anaconda.org/pytorch", "subdir": "linux-64",
                 "url": "", "sha256": ""}
                for n, v in (("pytorch", "2.0.2" if drift else "2.0.1"), ("python", "3.9.18"),
                             ("cudatoolkit", "11.8.0"), ("nccl", "2.18.3"))]
    pip = [{"name": f"pypkg{i}", "version": "1.0", "installer": "conda", "path": ""}
           for i in range(30)]
    return {"reach": {"ok": True}, "env": {"conda": records, "pip": pip}}


def check_timing(nodes: int = 16) -> dict:
    """Every env check for every node, as the suite calls them, on facts already gathered."""
    cluster_facts = {f"node-{i}": synthetic_node(i, drift=i == 7) for i in range(1, nodes + 1)}
    spec = envspec.load(REPO / "fixtures" / "environment.a100.yml")
    allowed = channels.allowed([*spec.channels])
    from selftest.builders import NODE
    started = time.perf_counter()
    failures = 0  # the A100 pins fail on every synthetic node; one node drifts
    census, drift = environment.census(cluster_facts), sameness.Drift(cluster_facts)
    for name, node_facts in cluster_facts.items():
        node = replace(NODE, name=name)
        failures += bool(environment.pins(node, node_facts, spec, census))
        environment.provenance(node, node_facts, allowed)
        environment.installed_twice(node, node_facts)
        failures += bool(drift.sameness(node)[0])
    seconds = time.perf_counter() - started
    return {"nodes": nodes, "packages_per_node": PACKAGES + 4 + 30,
            "all_env_checks_s": round(seconds, 3), "per_node_ms": round(seconds / nodes * 1000, 1),
            "checks_with_findings": failures}


def probe_conda_meta_cost(cluster, node) -> dict:
    """Probe's env section with 224 conda-meta records against an env with none: the node's
    16 real records once (pytorch's is 4 MB of file lists), then clones of all but pytorch's."""
    real = Path(layout.NodeSpot(1).host_path(node.env_prefix)) / "conda-meta"
    scratch_env = f"{node.miniconda}/envs/bench-224"
    meta = layout.NodeSpot(1).host_path(scratch_env) / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    sources = sorted(real.glob("*.json"), key=lambda p: p.stat().st_size)
    picks = sources + [sources[i % (len(sources) - 1)] for i in range(PACKAGES + 4 - len(sources))]
    for i, source in enumerate(picks):
        doc = json.loads(source.read_text())
        doc["name"] = f"{doc['name']}-{i}"
        (meta / f"{doc['name']}-{doc['version']}-{doc['build']}.json").write_text(
            json.dumps(doc, indent=2))
    try:
        sizes = sum(p.stat().st_size for p in meta.iterdir())
        timings = {}
        for label, env_name in (("with_224_records", "bench-224"), ("no_env", "absent")):
            probe_node = replace(node, env_name=env_name)
            runs = [facts.gather_node(cluster, probe_node, runtime=False)["section_seconds"]["env"]
                    for _ in range(5)]
            timings[label] = round(sorted(runs)[2] * 1000, 1)
        return {"records": PACKAGES + 4, "conda_meta_bytes": sizes,
                "env_section_ms_median": timings,
                "added_ms": round(timings["with_224_records"] - timings["no_env"], 1)}
    finally:
        shutil.rmtree(meta.parent, ignore_errors=True)


def integrity_cost(cluster, node, rounds: int = 5) -> dict:
    """The installed-bytes pass on the bed's env (the node's prefix seen from here): the
    stat-only pass against its floor, `find -printf %s` over the same tree (one C lstat per
    entry), medians of `rounds`, same run; sha256 once; and what it adds to a node's probe
    (verify size vs off, runtime included, where it overlaps the torch import)."""
    import subprocess

    from preflight import remote
    probe = remote.probe_module()
    prefix = str(layout.NodeSpot(1).host_path(node.env_prefix))
    files: list = []
    probe.conda_records(prefix, files)
    dists = probe.pip_dists(prefix)

    def median(measure) -> float:
        return sorted(measure() for _ in range(rounds))[rounds // 2]

    def ours() -> float:
        return probe.integrity(prefix, files, dists, "size")["seconds"]

    def floor() -> float:
        started = time.monotonic()
        subprocess.run(["find", prefix, "-printf", "%s\n"], stdout=subprocess.DEVNULL,
                       check=True)
        return time.monotonic() - started

    ours(), floor()  # warm the page cache for both
    size_s, floor_s = median(ours), median(floor)
    checked = probe.integrity(prefix, files, dists, "size")
    hashed = probe.integrity(prefix, files, dists, "sha256")

    def probe_wall(verify: str) -> float:
        spec = cluster.with_blocks(env=cluster.spec.env.model_copy(update={"verify": verify}))
        return facts.gather_node(spec, node, runtime=True)["probe_seconds"]

    probe_wall("off")  # warm: the env's bytecode and the node's page cache
    added = [probe_wall("size") - probe_wall("off") for _ in range(5)]
    return {"files": checked["files"], "size_pass_ms_median": round(size_s * 1000, 1),
            "find_floor_ms_median": round(floor_s * 1000, 1),
            "ratio_to_floor": round(size_s / floor_s, 2),
            "us_per_file": round(size_s / checked["files"] * 1e6, 2),
            "sha256_pass_s": hashed["seconds"], "sha256_hashed_files": hashed["hashed"],
            "probe_added_ms_runtime_overlapped": sorted(round(a * 1000) for a in added)}


def host_readiness_cost(rounds: int = 21) -> dict:
    """What the host-readiness facts add to a node's probe: each of the probe's readers
    run here (this machine's /proc and /sys are the nodes'), medians of `rounds`, ms;
    with the whole probe (runtime off) on this machine for scale."""
    import os
    import subprocess
    import sys

    from preflight import remote
    probe = remote.probe_module()
    probe.ARGS.update(env_prefix=sys.prefix, workspace=str(REPO), master_port=29500)

    def median_ms(func) -> float:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            func()
            times.append(time.perf_counter() - started)
        return round(sorted(times)[rounds // 2] * 1000, 2)

    def worker_stray():
        probe.ARGS["master_port"] = None
        try:
            return probe.stray()
        finally:
            probe.ARGS["master_port"] = 29500

    parts = {"shm": lambda: probe.space("/dev/shm"), "disks": probe.disks,
             "stray on a worker (D state)": worker_stray,
             "stray on the master (+ master port)": probe.stray,
             "modules": probe.kernel_modules,
             "tunables + glibc + iommu": lambda: (probe.tunables(), probe.glibc(),
                                                  probe.iommu_args()),
             "links (net section)": probe.net}
    found = {name: median_ms(func) for name, func in parts.items()}
    from preflight.config import inventory
    from preflight.launchers import probe as probe_spec
    node = inventory.Node(name="here", role="master", address=None, user=None, port=None,
                          identity_file=None, proxy_jump=None, connect_timeout=5,
                          command_timeout=60, miniconda=sys.prefix, env_name="none",
                          workspace=str(REPO), gpus=0)
    command = probe_spec.probe_command(node, probe_spec.probe_script(node, runtime=False))
    whole = median_ms(lambda: subprocess.run(["sh", "-c", command], capture_output=True,
                                             check=True))
    worker = sum(v for k, v in found.items() if "on the master" not in k)
    return {"parts_ms_median": found, "worker_sum_ms": round(worker, 2),
            "whole_probe_ms_median_runtime_off": whole,
            "processes_on_this_machine": sum(p.isdigit() for p in os.listdir("/proc"))}
