"""A conda-lock (v1) file written from one reference node, and read back for comparison.

conda-lock's format, not an @EXPLICIT spec list, because it also holds the pip packages
(an explicit spec cannot) and `conda-lock install` / micromamba can build an env from it.
We do not read package dependencies from conda-meta (they cost the probe time and a lock
compared exactly does not need them), so `dependencies` is left empty: the file installs
by URL and hash, it is not re-solved.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from preflight.config import yamlpos
from preflight.core import channels
from preflight.core.errors import UserError
from preflight.core.nodetext import one_line


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    manager: str  # conda | pip
    build: str = ""
    channel: str = ""
    sha256: str = ""


def build_of(url: str) -> str:
    """Build string from a package URL: .../pytorch-2.0.1-py3.9_cuda11.8_0.tar.bz2."""
    stem = url.rsplit("/", 1)[-1].removesuffix(".conda").removesuffix(".tar.bz2")
    return stem.rsplit("-", 2)[-1] if stem.count("-") >= 2 else ""


def from_facts(facts: dict) -> list[dict]:
    """conda-lock package entries for what one node has."""
    entries = []
    for record in sorted(facts["env"]["conda"], key=lambda r: r["name"]):
        entries.append({
            "name": record["name"], "version": record["version"], "manager": "conda",
            "platform": record.get("subdir") or "linux-64", "dependencies": {},
            "url": record.get("url") or "", "category": "main", "optional": False,
            "hash": {k: record[k] for k in ("md5", "sha256") if record.get(k)}})
    for dist in sorted(facts["env"]["pip"], key=lambda d: (d["name"] or "").lower()):
        if dist["installer"] != "conda" and dist["name"]:
            entries.append({"name": dist["name"], "version": dist["version"], "manager": "pip",
                            "platform": "linux-64", "dependencies": {}, "url": "",
                            "category": "main", "optional": False, "hash": {}})
    return entries


def write(path: Path, facts: dict, node: str, env_file: Path) -> Path | None:
    """Write the lock; an existing file is first copied aside. Returns the backup's path."""
    doc = {"version": 1, "metadata": {
        "platforms": ["linux-64"], "sources": [str(env_file)],
        "channels": sorted({channels.normalise(r.get("channel"))
                            for r in facts["env"]["conda"]}),
        "content_hash": {}, "custom_metadata": {"preflight_reference_node": node}},
        "package": from_facts(facts)}
    backup = None
    if path.exists():
        backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
        shutil.copy2(path, backup)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"# conda-lock v1 file written by cluster-preflight from {node}\n"
                   + yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(path)
    return backup


def read(path: Path) -> dict[tuple[str, str], Locked]:
    """(manager, name) -> Locked; a malformed file is a one-line UserError."""
    try:
        doc = yamlpos.load(path, "lock").data
        packages = doc["package"]
        for p in packages:
            if not isinstance(p.get("name"), str) or p.get("manager") not in ("conda", "pip"):
                raise ValueError(f"package {one_line(repr(p.get('name')), 40)}: a name must "
                                 "be text and its manager conda or pip")
        return {(p["manager"], p["name"].lower() if p["manager"] == "pip" else p["name"]):
                Locked(p["name"], str(p["version"]), p["manager"], build_of(p.get("url") or ""),
                       channels.normalise(_channel_of(p.get("url") or "")),
                       (p.get("hash") or {}).get("sha256", ""))
                for p in packages}
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: not a conda-lock v1 file ({type(exc).__name__}: "
                        f"{one_line(exc, 120)}); write one with `nox -s lock`") from None


def _channel_of(url: str) -> str:
    return url.rsplit("/", 2)[0] if url.count("/") >= 3 else ""
