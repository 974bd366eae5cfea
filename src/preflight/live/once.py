"""Work done once per test run, whichever xdist worker asks first; the others wait for it.

Session fixtures run once per xdist worker, and a collective across the cluster must not
run twice at once. The first caller takes a file lock, computes and writes JSON; the rest
block on the lock and read. The run id comes from the controlling process (RunState), so
a new run never reads an old result.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Callable
from pathlib import Path


def once(folder: Path, key: str, run_id: str, compute: Callable[[], dict],
         shared: str | None = None) -> dict:
    """compute() once per run under key. `shared` names a resource that works under other
    keys use too (the master port: its check's listener and the collective's rendezvous
    must not run at the same time on two xdist workers); it is taken after key's lock, so
    two workers never wait on each other."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f".{key}.lock").open("w") as lock, contextlib.ExitStack() as held:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = read(folder, key, run_id)
        if found is not None:
            return found
        if shared:
            resource = held.enter_context((folder / f".{shared}.lock").open("w"))
            fcntl.flock(resource, fcntl.LOCK_EX)
        value = compute()
        # one file per key, replaced each run: results never pile up in reports/
        tmp = folder / f".{key}.json.tmp"
        tmp.write_text(json.dumps({"run": run_id, "value": value}))
        tmp.replace(folder / f".{key}.json")
        return value


def read(folder: Path, key: str, run_id: str) -> dict | None:
    """The result of this run, if any worker computed it (an older run's is ignored)."""
    path = folder / f".{key}.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc.get("value") if isinstance(doc, dict) and doc.get("run") == run_id else None
