"""The run's Prometheus metrics: reports/cluster-preflight.prom, written atomically with
prometheus_client's own registry and write_to_textfile, for node_exporter's textfile
collector (or any scraper of files). Names, labels and their cardinality:
docs/metrics.md.

Every check result is one series of cluster_preflight_check_status: 1 when it holds
(passed, waived, skipped), 0 when it does not (failed, error); the `outcome` label tells
a pass from a waiver or a skip. Measured values are in base units (bytes per second,
seconds)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

FILE = "cluster-preflight.prom"
HOLDS = {"passed": 1, "waived": 1, "skipped": 1, "failed": 0, "error": 0}


def write(doc: dict, gathered: dict, folder: Path) -> Path:
    """The metrics of one finished run (its results.json document and its facts)."""
    registry = CollectorRegistry()
    cluster = doc["run"]["cluster"]
    status = Gauge("cluster_preflight_check_status", "1 when the check holds on the node "
                   "(passed, waived or skipped: see outcome), 0 when it failed or errored",
                   ["cluster", "node", "check", "suite", "severity", "outcome"],
                   registry=registry)
    node_ok = Gauge("cluster_preflight_node_ok", "1 when no check failed or errored on the "
                    "node in the last run", ["cluster", "node"], registry=registry)
    nodes = Gauge("cluster_preflight_nodes", "Nodes of the last run by verdict",
                  ["cluster", "verdict"], registry=registry)
    busbw = Gauge("cluster_preflight_busbw_bytes_per_second", "The collective's measured "
                  "bus bandwidth, as recorded on each node's bandwidth check",
                  ["cluster", "node"], registry=registry)
    reference = Gauge("cluster_preflight_busbw_reference_bytes_per_second", "The bus "
                      "bandwidth the collective must reach (the threshold's floor: "
                      "nccl.min_busbw_gbps or the reference for the nodes' GPUs and link)",
                      ["cluster"], registry=registry)
    floor = ((doc.get("collective") or {}).get("threshold") or {}).get("floor_gbps")
    if isinstance(floor, int | float):
        reference.labels(cluster).set(floor * 1e9)
    probe = Gauge("cluster_preflight_probe_seconds", "How long the node's probe took, "
                  "from the controller", ["cluster", "node"], registry=registry)
    finished = Gauge("cluster_preflight_last_run_timestamp_seconds", "When the last run "
                     "finished (Unix time)", ["cluster"], registry=registry)
    duration = Gauge("cluster_preflight_last_run_duration_seconds", "How long the last run "
                     "took, facts gathering included", ["cluster"], registry=registry)
    complete = Gauge("cluster_preflight_last_run_complete", "1 when the last run finished "
                     "and wrote its reports, 0 while one runs or after a stop",
                     ["cluster"], registry=registry)
    bad: dict[str, bool] = dict.fromkeys(doc["run"]["nodes"], False)
    for r in doc["results"]:
        status.labels(cluster, r["node"], r["check"], r.get("suite") or "",
                      r.get("severity") or "", r["outcome"]).set(HOLDS.get(r["outcome"], 0))
        if r["node"] in bad and not HOLDS.get(r["outcome"], 0):
            bad[r["node"]] = True
        if isinstance(r.get("value"), int | float) and r["node"] != "cluster":
            busbw.labels(cluster, r["node"]).set(r["value"] * 1e9)  # GB/s in the results
    for name, failed in bad.items():
        node_ok.labels(cluster, name).set(0 if failed else 1)
    nodes.labels(cluster, "ok").set(sum(not f for f in bad.values()))
    nodes.labels(cluster, "failed").set(sum(bad.values()))
    for name, facts in gathered.items():
        seconds = (facts.get("reach") or {}).get("seconds")
        if name in bad and isinstance(seconds, int | float):
            probe.labels(cluster, name).set(seconds)
    finished.labels(cluster).set(_unix(doc["run"].get("finished")))
    duration.labels(cluster).set(doc["run"].get("seconds") or 0)
    complete.labels(cluster).set(1)
    path = folder / FILE
    folder.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    return path


def incomplete(cluster: str, folder: Path) -> Path:
    """While a run goes on, or after it stopped: no check's status stands from a run that
    is not this one; only that the last run is not complete."""
    registry = CollectorRegistry()
    Gauge("cluster_preflight_last_run_complete", "1 when the last run finished and wrote "
          "its reports, 0 while one runs or after a stop", ["cluster"],
          registry=registry).labels(cluster).set(0)
    path = folder / FILE
    folder.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    return path


def _unix(stamp: str | None) -> float:
    import datetime
    try:
        return datetime.datetime.fromisoformat(stamp).timestamp() if stamp else 0.0
    except ValueError:
        return 0.0
