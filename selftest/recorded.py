"""Facts as a real probe wrote them (node-1 of a healthy simulated cluster, recorded once),
for tests that need complete documents: replay, the contract, generated fleets."""

from __future__ import annotations

import copy
import json
from pathlib import Path

DATA = Path(__file__).parent / "data"
_NODE_1 = json.loads((DATA / "facts-node-1.json").read_text())


def healthy(name: str = "node-1") -> dict:
    """A fresh copy of a healthy node's facts, renamed to name."""
    doc = copy.deepcopy(_NODE_1)
    doc["node"]["hostname"] = doc["net"]["hostname"] = name
    return doc


def fleet(names: list[str]) -> dict[str, dict]:
    return {name: healthy(name) for name in names}


def set_path(doc: dict, path: str, value) -> dict:
    """doc with the value at a dotted path replaced (keys may hold '/': split on '.')."""
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc
