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


def fleet(names: list[str], master: str | None = None) -> dict[str, dict]:
    """Copies of the healthy node, each with the logins its probe would have made on the
    default ring (master: the first name unless said), every one of them fine."""
    from preflight.launchers.probe import ring_plan
    plan = ring_plan(names, master or names[0])
    docs = {name: healthy(name) for name in names}
    for name, doc in docs.items():
        doc["peer_logins"] = {"tried": dict.fromkeys(plan[name], "ok"), "seconds": 0.2}
    return docs


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
