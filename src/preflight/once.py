"""Work done once per test run, whichever xdist worker asks first; the others wait for it.

Session fixtures run once per xdist worker, and a collective across the cluster must not
run twice at once. The first caller takes a file lock, computes and writes JSON; the rest
block on the lock and read. The run id comes from the controlling process, so a new run
never reads an old result.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

RUN_ENV = "PREFLIGHT_RUN_ID"


def run_id() -> str:
    """Set by the controlling process before xdist starts workers (they inherit it)."""
    return os.environ.setdefault(RUN_ENV, uuid.uuid4().hex[:12])


def once(folder: Path, key: str, compute: Callable[[], dict]) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    result = folder / f".{key}-{run_id()}.json"
    with (folder / f".{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result.exists():
            return json.loads(result.read_text())
        value = compute()
        result.write_text(json.dumps(value))
        return value


def read(folder: Path, key: str) -> dict | None:
    """The result of this run, if any worker computed it."""
    result = folder / f".{key}-{run_id()}.json"
    return json.loads(result.read_text()) if result.exists() else None
