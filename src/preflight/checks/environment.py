"""The env on each node against environment.yml, against the other nodes, and against a lock."""

from __future__ import annotations

from collections import Counter

import rattler
from packaging.utils import canonicalize_name

from preflight.checks import paths, pipnames
from preflight.checks.findings import Finding
from preflight.config.envspec import EnvSpec
from preflight.config.inventory import Node
from preflight.core import channels
from preflight.core.nodetext import clean
from preflight.facts import contract

MISSING = "not installed"


def conda_records(facts: dict) -> dict[str, dict]:
    """name -> record; with two records for one name the first (records_intact says so)."""
    records: dict[str, dict] = {}
    for record in facts["env"].get("conda") or ():
        records.setdefault(record["name"], record)
    return records


def pip_dists(facts: dict) -> dict[str, dict]:
    """pip dists by canonical name; those conda installed (INSTALLER=conda) are conda's."""
    return {canonicalize_name(d["name"]): d for d in facts["env"].get("pip") or ()
            if d["name"]}


def describe(record: dict) -> str:
    channel = channels.normalise(record.get("channel")) or "no channel"
    return f"{record['name']} {record['version']} ({record['build']}, {channel})"


def env_missing(node: Node, facts: dict) -> list[Finding]:
    if facts["env"].get("conda") is not None:
        return []
    root = facts["env"].get("root") or {}
    dangling = paths.dangling_hint(node.env_prefix, root)
    found = f"no env there: {paths.what_is_there(root)}" if dangling else "no env there"
    return [Finding(node.name, "env", f"env '{node.env_name}' at {node.env_prefix}", found,
                    dangling or "create it: conda env create -f environment.yml")]


def census(cluster_facts: dict[str, dict]) -> dict[str, Counter]:
    """package -> how many reached nodes have each version (computed once per run)."""
    counts: dict[str, Counter] = {}
    for facts in contract.usable(cluster_facts, "env").values():
        if facts["env"].get("conda") is not None:
            records = conda_records(facts)
            for name in {*records, *counts}:
                counts.setdefault(name, Counter())
            for name, counter in counts.items():
                counter[records[name]["version"] if name in records else MISSING] += 1
    return counts


def pins(node: Node, facts: dict, spec: EnvSpec, counts: dict[str, Counter]) -> list[Finding]:
    """Every conda and pip line of environment.yml holds on the node. counts (census())
    lets a finding say what the other nodes have."""
    if facts["env"].get("conda") is None:
        return env_missing(node, facts)
    records, dists = conda_records(facts), pip_dists(facts)
    found = [f for s in spec.conda
             if (f := _conda_pin(node, s, records.get(s.name), counts))]
    python = records.get("python", {}).get("version")
    found += [f for s in spec.pip if (f := _pip_pin(node, s, dists, records, python))]
    return found


def _conda_pin(node: Node, spec, record: dict | None, counts: dict) -> Finding | None:
    package = _package_record(record) if record is not None else None
    if record is None:
        problem = MISSING
    elif package is None:
        problem = f"{describe(record)}: not a version or build conda can read"
    elif not spec.match.matches(package):
        problem = describe(record)
    elif spec.channel and channels.normalise(record.get("channel")) != spec.channel:
        problem = f"{describe(record)}: from another channel than {spec.channel}"
    elif spec.subdir and record.get("subdir") != spec.subdir:
        problem = f"{describe(record)}: subdir {record.get('subdir')}, not {spec.subdir}"
    else:
        return None
    mine = record["version"] if record else MISSING
    return Finding(node.name, "env pin", spec.text, problem, _others_hint(spec.name, mine, counts))


def _package_record(record: dict) -> rattler.PackageRecord | None:
    """The record as rattler sees it; None when its version or build does not parse (a
    node's record is data: garbage is a finding, never a traceback)."""
    try:
        return rattler.PackageRecord(
            name=record["name"], version=record["version"],
            build=rattler.BuildString(record["build"]),
            build_number=record.get("build_number") or 0,
            subdir=record.get("subdir") or "linux-64")
    except Exception:  # py-rattler raises its own error types per problem
        return None


def _others_hint(name: str, mine: str, counts: dict[str, Counter]) -> str:
    versions = Counter(counts.get(name, ()))
    if versions[mine] > 0:
        versions[mine] -= 1  # this node itself
    versions = +versions  # drop zero counts
    if not versions:
        return ""
    return "; ".join(f"{count} other node{'s' * (count > 1)} {'have' if count > 1 else 'has'} "
                     f"{version}" for version, count in versions.most_common(3))


def _pip_pin(node: Node, spec, dists: dict, records: dict, python: str | None):
    req = spec.requirement
    if req.marker and python and not req.marker.evaluate({"python_version": _major_minor(
            python), "python_full_version": python}):
        return None  # the marker excludes this node's python: nothing is required
    dist = dists.get(spec.name)
    record = next((records[n] for n in (spec.name, *pipnames.conda_names(spec.name))
                   if n in records), None)
    version = dist["version"] if dist else record["version"] if record else None
    if version is None:
        return Finding(node.name, "env pin (pip)", spec.text, MISSING)
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        by = f"pip, INSTALLER {dist['installer']}" if dist else "conda"
        return Finding(node.name, "env pin (pip)", spec.text, f"{req.name} {version} ({by})")
    return None


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def provenance(node: Node, facts: dict, allowed: set[str]) -> list[Finding]:
    """Each conda package comes from an allowed channel."""
    found = []
    for record in facts["env"].get("conda") or ():
        channel = channels.normalise(record.get("channel"))
        if channel not in allowed:
            found.append(Finding(
                node.name, "package channel", f"{record['name']} from "
                f"{' or '.join(sorted(allowed))}", describe(record),
                "add the channel to environment.yml or allowed_channels, or reinstall"))
    return found


def records_intact(node: Node, facts: dict) -> list[Finding]:
    """Every conda-meta record decodes to a complete record (conda refuses the env
    otherwise), and each package has one record (two make its version a coin toss)."""
    env = facts["env"]
    found = [Finding(node.name, "conda-meta record", f"{b['file']} a complete JSON record",
                     clean(b["error"], 160), "reinstall that package into the env")
             for b in env.get("conda_broken") or ()]
    by_name: dict[str, list[dict]] = {}
    for record in env.get("conda") or ():
        by_name.setdefault(record["name"], []).append(record)
    for name, records in sorted(by_name.items()):
        if len(records) > 1:
            files = ", ".join(f"{r.get('file', '?')} ({r['version']})" for r in records)
            found.append(Finding(node.name, "conda-meta record", f"one record for {name}",
                                 f"{len(records)}: {files}",
                                 "remove the stale record or reinstall the package"))
    return found


def installed_twice(node: Node, facts: dict, spec: EnvSpec | None = None) -> list[Finding]:
    """A package both conda and pip installed: the pip copy shadows conda's (NCCL incident).
    One environment.yml's pip section names is declared, not a finding: its pin is
    checked by env_pins instead."""
    records = conda_records(facts)
    declared = {canonicalize_name(p.requirement.name) for p in spec.pip} if spec else set()
    found = []
    for name, dist in sorted(pip_dists(facts).items()):
        if dist["installer"] == "conda" or name in declared:
            continue
        twin = next((records[n] for n in pipnames.conda_names(name) if n in records), None)
        if twin:
            found.append(Finding(
                node.name, "installed twice", f"{twin['name']} from conda only",
                f"conda {describe(twin)} and pip {dist['name']} {dist['version']} "
                f"(INSTALLER {dist['installer'] or 'missing'})",
                f"pip uninstall {dist['name']} in the env"))
    return found
