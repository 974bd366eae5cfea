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
import re
import stat
from pathlib import Path

from preflight.core.nodetext import clean
from preflight.report import results

BUSBW_CHANGE = 0.05  # a busbw change beyond 5 % is news


# a record's name: the UTC finish time and the run id (what record() writes)
NAME = re.compile(r"^(\d{8}T\d{6})-[A-Za-z0-9_]{1,64}\.json\.gz$")
MAX_RECORD_BYTES = 64 << 20  # decompressed; 2,000 nodes x 40 checks is ~18 MB


def record(doc: dict, folder: Path, keep: int, notes: list[str] | None = None) -> Path | None:
    """Keep this run; drop the oldest of our records beyond `keep` (0: keep none). Only
    files named as record() names them, dated no later than this run, are ever pruned,
    and never the one just written; what is skipped is said in `notes`."""
    notes = notes if notes is not None else []
    if keep <= 0:
        return None
    if folder.exists() and not folder.is_dir():
        notes.append(f"history: {folder} is not a folder: this run is not recorded")
        return None
    folder.mkdir(parents=True, exist_ok=True)
    run = doc["run"]
    stamp = run["finished"].replace(":", "").replace("-", "")
    path = folder / f"{stamp[:15]}-{run['id']}.json.gz"
    tmp = path.with_name(f".{path.name}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as out:
        out.write(results.dumps(doc))
    tmp.replace(path)
    older = [p for p in runs(folder, notes, until=path.name) if p != path]
    for old in older[:max(0, len(older) - (keep - 1))]:
        with contextlib.suppress(OSError):
            old.unlink()
    return path


def runs(folder: Path, notes: list[str] | None = None, until: str | None = None) -> list[Path]:
    """Our recorded runs, oldest first (names start with the UTC finish time): regular
    files named as record() names them; with `until`, none dated later than that name
    (junk dated in the future must not outlive, or push out, real records)."""
    if not folder.is_dir():
        return []
    found, junk = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        try:
            regular = stat.S_ISREG(path.lstat().st_mode)
        except OSError:
            regular = False
        if not regular or NAME.match(path.name) is None or (
                until is not None and path.name[:15] > until[:15]):
            junk.append(path.name)
            continue
        found.append(path)
    if junk and notes is not None:
        shown = ", ".join(junk[:5]) + (f" and {len(junk) - 5} more" if len(junk) > 5 else "")
        notes.append(f"history: skipped {len(junk)} file(s) that are not run records: {shown}")
    return found


def read(path: Path) -> dict | None:
    """One record, bounded after decompression and checked for the fields diff() reads;
    None for anything else (a gzip bomb, a FIFO, a foreign or damaged file)."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        with gzip.open(path, "rb") as stream:
            raw = stream.read(MAX_RECORD_BYTES + 1)
        if len(raw) > MAX_RECORD_BYTES:
            return None
        doc = json.loads(raw)
    except (OSError, ValueError, EOFError, RecursionError):
        return None
    return doc if _shaped(doc) else None


def _shaped(doc: object) -> bool:
    if not results.readable(doc):
        return False
    run = doc["run"]
    return isinstance(run.get("nodes"), list) and all(
        isinstance(r, dict) and isinstance(r.get("test"), str) and
        isinstance(r.get("outcome"), str) and isinstance(r.get("node"), str)
        for r in doc["results"])


def previous(folder: Path, cluster: str, notes: list[str] | None = None) -> dict | None:
    """The newest readable run of this cluster; unreadable or foreign files are skipped
    (and said in notes)."""
    bad = []
    for path in reversed(runs(folder, notes)):
        doc = read(path)
        if doc is None:
            bad.append(path.name)
            continue
        if doc["run"].get("cluster") == cluster:
            break
    else:
        doc = None
    if bad and notes is not None:
        notes.append(f"history: skipped {len(bad)} unreadable record(s): {', '.join(bad[:5])}")
    return doc


def diff(prev: dict, cur: dict) -> dict:
    """Newly failing, fixed, still failing (by test id), nodes added or removed, and busbw
    changes beyond 5 %. A check absent from one of the runs is neither fixed nor still
    failing: a narrower run (-m env) says nothing about what it did not run."""
    before = {r["test"]: r["outcome"] for r in prev["results"]}
    now = {r["test"]: r["outcome"] for r in cur["results"]}
    bad_now = [t for t, o in now.items() if o in results.BAD]
    keys = ("id", "finished", "verdict", "commit")
    # an old record is a file anyone could have written: its text is cleaned like a node's
    return {"previous": {k: clean(v, 200) if isinstance(v, str) else None
                         for k, v in ((k, prev["run"].get(k)) for k in keys)},
            "newly_failing": sorted(t for t in bad_now if before.get(t) not in results.BAD),
            "still_failing": sorted(t for t in bad_now if before.get(t) in results.BAD),
            "fixed": sorted(t for t, o in now.items()
                            if o == "passed" and before.get(t) in results.BAD),
            "nodes_added": sorted(set(cur["run"]["nodes"]) - set(prev["run"]["nodes"])),
            "nodes_removed": sorted(clean(str(n), 200) for n in
                                    set(prev["run"]["nodes"]) - set(cur["run"]["nodes"])),
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
