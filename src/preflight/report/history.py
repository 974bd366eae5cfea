"""Run history under reports/history/ (one gzipped results.json per run, the last N kept)
and the diff between this run and the one before it: what ops ask after a red gate.

    >>> prev = {"run": {"nodes": ["a", "b"]}, "results": [
    ...     {"test": "t[a]", "node": "a", "outcome": "failed"},
    ...     {"test": "t[b]", "node": "b", "outcome": "passed"}]}
    >>> cur = {"run": {"nodes": ["a", "b", "c"]}, "results": [
    ...     {"test": "t[a]", "node": "a", "outcome": "passed"},
    ...     {"test": "t[b]", "node": "b", "outcome": "failed"}]}
    >>> d = diff(prev, cur)
    >>> d["newly_failing"], d["fixed"], d["nodes_added"]
    (['t[b]'], ['t[a]'], ['c'])
"""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path

from preflight.report import results

BUSBW_CHANGE = 0.05  # a busbw change beyond 5 % is news


def record(doc: dict, folder: Path, keep: int) -> Path | None:
    """Keep this run; drop the oldest beyond `keep` (0: keep none)."""
    if keep <= 0:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    run = doc["run"]
    stamp = run["finished"].replace(":", "").replace("-", "")
    path = folder / f"{stamp[:15]}-{run['id']}.json.gz"
    tmp = path.with_name(f".{path.name}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as out:
        out.write(results.dumps(doc))
    tmp.replace(path)
    for old in runs(folder)[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()
    return path


def runs(folder: Path) -> list[Path]:
    """Recorded runs, oldest first (names start with the UTC finish time)."""
    return sorted(folder.glob("*.json.gz")) if folder.is_dir() else []


def previous(folder: Path, cluster: str) -> dict | None:
    """The newest readable run of this cluster; unreadable or foreign files are skipped."""
    for path in reversed(runs(folder)):
        try:
            with gzip.open(path, "rt", encoding="utf-8") as stream:
                doc = json.load(stream)
        except (OSError, ValueError, EOFError):
            continue
        if results.readable(doc) and doc["run"].get("cluster") == cluster:
            return doc
    return None


def diff(prev: dict, cur: dict) -> dict:
    """Newly failing, fixed, still failing (by test id), nodes added or removed, and busbw
    changes beyond 5 %. A check absent from one of the runs is neither fixed nor still
    failing: a narrower run (-m env) says nothing about what it did not run."""
    before = {r["test"]: r["outcome"] for r in prev["results"]}
    now = {r["test"]: r["outcome"] for r in cur["results"]}
    bad_now = [t for t, o in now.items() if o in results.BAD]
    keys = ("id", "finished", "verdict", "commit")
    return {"previous": {k: prev["run"].get(k) for k in keys},
            "newly_failing": sorted(t for t in bad_now if before.get(t) not in results.BAD),
            "still_failing": sorted(t for t in bad_now if before.get(t) in results.BAD),
            "fixed": sorted(t for t, o in now.items()
                            if o == "passed" and before.get(t) in results.BAD),
            "nodes_added": sorted(set(cur["run"]["nodes"]) - set(prev["run"]["nodes"])),
            "nodes_removed": sorted(set(prev["run"]["nodes"]) - set(cur["run"]["nodes"])),
            "busbw": busbw_changes(prev, cur)}


def busbw_changes(prev: dict, cur: dict) -> list[dict]:
    """Per-node recorded busbw and per-pair busbw that moved more than BUSBW_CHANGE."""
    def values(doc: dict) -> dict[str, float]:
        found = {r["node"]: r["value"] for r in doc["results"]
                 if isinstance(r.get("value"), int | float)}
        pairs = ((doc.get("collective") or {}).get("pairs")) or {}
        found.update({k: p["busbw_gbps"] for k, p in pairs.items()
                      if isinstance(p.get("busbw_gbps"), int | float)})
        return found
    old, new = values(prev), values(cur)
    return [{"what": key, "before": old[key], "now": new[key],
             "change": round(new[key] / old[key] - 1, 4)}
            for key in sorted(set(old) & set(new))
            if old[key] > 0 and abs(new[key] / old[key] - 1) > BUSBW_CHANGE]
