"""A node compared exactly with the lock: same packages, versions, builds, channels, hashes."""

from __future__ import annotations

from packaging.utils import canonicalize_name

from preflight.checks.findings import Finding
from preflight.config.inventory import Node
from preflight.config.lockfile import Locked
from preflight.core import channels


def node_entries(facts: dict) -> dict[tuple[str, str], Locked]:
    entries = {}
    for r in facts["env"].get("conda") or ():
        entries[("conda", r["name"])] = Locked(
            r["name"], r["version"], "conda", r["build"], channels.normalise(r.get("channel")),
            r.get("sha256") or "")
    for d in facts["env"].get("pip") or ():
        if d["installer"] != "conda" and d["name"]:
            entries[("pip", d["name"].lower())] = Locked(d["name"], d["version"], "pip")
    return entries


def matches_lock(node: Node, facts: dict, lock: dict[tuple[str, str], Locked]) -> list[Finding]:
    have = node_entries(facts)
    found = []
    for key in sorted(set(lock) | set(have)):
        want, got = lock.get(key), have.get(key)
        if want is None:
            found.append(Finding(node.name, "lock", f"no {key[1]} ({key[0]})",
                                 f"{_show(got)} installed", "not in the lock file"))
        elif got is None:
            found.append(Finding(node.name, "lock", _show(want), "not installed"))
        elif _differs(want, got):
            shown = _show(got)
            if shown == _show(want):  # only the package file differs
                shown += f" with sha256 {got.sha256[:12]}, the lock has {want.sha256[:12]}"
            found.append(Finding(node.name, "lock", _show(want), shown))
    return found


def _differs(want: Locked, got: Locked) -> bool:
    if want.manager == "pip":
        return canonicalize_name(want.name) != canonicalize_name(got.name) or \
            want.version != got.version
    same_hash = not (want.sha256 and got.sha256) or want.sha256 == got.sha256
    return (want.version, want.build, want.channel) != (got.version, got.build, got.channel) \
        or not same_hash


def _show(entry: Locked) -> str:
    if entry.manager == "pip":
        return f"{entry.name} {entry.version} (pip)"
    return f"{entry.name} {entry.version} ({entry.build}, {entry.channel})"
