"""Synthetic results documents (results.json's schema) for report tests and the bench:
any number of nodes and checks, a given share of nodes with failures, reproducible."""

from __future__ import annotations

import random

from preflight.report import results

SUITES = ("miniconda", "environment", "cuda", "ssh", "network", "jupyter", "sync", "nccl")


def sweep(peak: float) -> list[dict]:
    sizes = [1 << s for s in range(10, 27, 2)]
    return [{"bytes": b, "time_us": round(b / (peak * 1e3 * min(1, b / (8 << 20))), 1),
             "algbw_gbps": peak * min(1, b / (8 << 20)) / 1.5,
             "busbw_gbps": peak * min(1, b / (8 << 20))} for b in sizes]


def document(count: int, checks: int = 40, bad_share: float = 0.05, seed: int = 1,
             prefix: str = "worker-") -> dict:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    width = len(str(count))
    nodes = [f"{prefix}{i:0{width}d}" for i in range(1, count + 1)]
    names = [(SUITES[i % len(SUITES)], f"test_check_{i:02d}_holds") for i in range(checks)]
    bad = set(rng.sample(nodes, int(count * bad_share)))
    out = []
    for node in nodes:
        failing = set(rng.sample(range(checks), rng.randint(1, 3))) if node in bad else set()
        for i, (suite, check) in enumerate(names):
            outcome = "failed" if i in failing else ("skipped" if i == checks - 1 else "passed")
            found = f"nccl 2.21.5.1 h3a97aeb_0 (conda-forge) on {node}" if i in failing else ""
            out.append({"test": f"{check}[{node}]", "suite": suite, "check": check,
                        "node": node, "outcome": outcome,
                        "expected": "nccl 2.23.4.1" if found else "", "found": found,
                        "hint": "59 other nodes: 2.23.4.1" if found else "",
                        "message": f"{node}: {check}: expected nccl 2.23.4.1, found {found}"
                        if found else ("no lock in cluster.yaml" if outcome == "skipped" else ""),
                        "duration_s": 0.002, "waiver": None,
                        "value": None})
    run = {"id": f"synthetic{seed}", "cluster": "synthetic", "nodes": nodes,
           "started": "2026-11-27T00:00:00+00:00", "finished": "2026-11-27T00:01:00+00:00",
           "seconds": 60.0, "commit": "0" * 40, "env": {"file": "conda-lock.yml",
                                                        "sha256": "f" * 64}}
    drift = [{"package": "nccl", "variants": [
        {"value": "2.23.4.1 h03a54cd_2 (conda-forge)", "nodes": "rest"},
        {"value": "2.21.5.1 h3a97aeb_0 (conda-forge)", "nodes": ",".join(sorted(bad)[:20])}]}]
    return results.document(
        run, out, node_lines=[], env={"drift": drift, "unchecked": []},
        collective={"world": count, "backend": "nccl", "ok": True, "sweep": sweep(380.0),
                    "pairs": None, "pair_verdict": None,
                    "threshold": {"floor_gbps": 337.5, "wanted_gbps": 375.0, "tolerance": 0.1,
                                  "source": "synthetic"}},
        waivers={"applied": [], "expired": [], "stale": []}, diff=None)
