"""The env, solved once on the controller and built once per target path into one archive.

Every node receives the same archive, so every node has the same package records: no node
solves at its own moment. Files that name their prefix are written here for the path jobs
use on the node (`envs/NAME`, a symlink to the live version `envs/.NAME-<digest>-<id>`),
with rattler's alternative_target_prefix, so the node needs only a shell and tar.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import rattler

from preflight.config import lockfile
from preflight.config.inventory import Cluster
from preflight.core import channels
from preflight.core.digest import sha256_file
from preflight.core.errors import UserError
from preflight.core.nodetext import one_line
from preflight.provision import wheelhouse
from preflight.provision.wheelhouse import PipLock

PLATFORMS = ["linux-64", "noarch"]
MARKER = "conda-meta/.preflight-complete"  # written last on the node: the install is whole


@dataclass(frozen=True)
class Package:
    """What a node's conda-meta must say about one package."""

    name: str
    version: str
    build: str
    channel: str  # normalised (channels.normalise)

    def __str__(self) -> str:
        return f"{self.name} {self.version} {self.build} ({self.channel})"


@dataclass(frozen=True)
class Solution:
    records: tuple  # rattler.RepoDataRecord, in install order
    packages: frozenset[Package]
    digest: str  # 12 hex: names the versioned prefix envs/.NAME-<digest> (pip lock too)
    pip_left: tuple[str, ...]  # environment.yml's pip lines provision cannot install
    pip: PipLock = wheelhouse.NONE  # the pip section, locked: installed into each version


@dataclass(frozen=True)
class Archive:
    path: Path
    sha256: str
    size: int
    compression: str


def solve(cluster: Cluster) -> Solution:
    """Solve environment.yml (pinned to the lock when cluster.yaml names one) once.
    Unsatisfiable specs are a UserError naming them, before any node is touched."""
    specs = _specs(cluster)
    sources = [rattler.Channel(_channel_url(cluster, name)) for name in cluster.env.channels]
    try:
        records = asyncio.run(rattler.solve(
            sources=sources, specs=specs, platforms=PLATFORMS,
            virtual_packages=_virtual(cluster)))
    except Exception as exc:  # rattler's SolverError and fetch errors: its message says why
        text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise UserError(f"{cluster.environment}: cannot solve the env "
                        f"({type(exc).__name__}): {one_line(text, 400)}") from None
    packages = frozenset(Package(r.name.normalized, str(r.version), str(r.build),
                                 channels.normalise(str(r.channel) or r.url)) for r in records)
    lines = sorted(f"{r.url} {r.sha256.hex() if r.sha256 else ''}" for r in records)
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]
    # unchecked lines (-r, URLs, editables) are all pip lines: said, not installed
    return Solution(tuple(records), packages, digest, tuple(u.text for u in cluster.env.unchecked))


def with_pip(cluster: Cluster, solution: Solution, log=print) -> Solution:
    """The solution with environment.yml's pip section locked; the digest then names
    both, so a changed pip lock is a new env version."""
    lock = wheelhouse.resolve(cluster, solution.records, solution.digest, log)
    if not lock.wheels:
        return solution
    digest = hashlib.sha256(f"{solution.digest}\n{lock.text()}".encode()).hexdigest()[:12]
    return replace(solution, pip=lock, digest=digest)


def _specs(cluster: Cluster) -> list:
    specs = [spec.match for spec in cluster.env.conda]
    if cluster.lock:  # the lock's exact builds; the solve then proves they fit together
        for entry in lockfile.read(cluster.lock).values():
            if entry.manager == "conda":
                prefix = f"{entry.channel}::" if entry.channel else ""
                specs.append(rattler.MatchSpec(
                    f"{prefix}{entry.name} =={entry.version} {entry.build}".strip(),
                    strict=False))
    return specs


def _channel_url(cluster: Cluster, name: str) -> str:
    mirrors = cluster.provision.channels
    return mirrors.get(name) or mirrors.get(channels.normalise(name)) or name


def _virtual(cluster: Cluster) -> list:
    wanted = dict(cluster.provision.virtual_packages)
    found = [rattler.GenericVirtualPackage(rattler.PackageName(name), rattler.Version(version),
                                           rattler.BuildString("0"))
             for name, version in wanted.items()]
    for detected in rattler.VirtualPackage.detect():
        generic = detected.into_generic()
        if generic.name.normalized not in wanted:
            found.append(generic)
    return found


def build(cluster: Cluster, solution: Solution, target: str, log=print) -> Archive:
    """The env installed for `target` (its path on the nodes) and packed; cached by digest
    and target, so a second provision (or a second node path) costs nothing."""
    cache = Path(cluster.provision.cache).expanduser()
    suffix = {"gzip": "tar.gz", "zstd": "tar.zst"}[cluster.provision.compression]
    key = hashlib.sha256(target.encode()).hexdigest()[:8]
    path = cache / "envs" / f"{solution.digest}-{key}.{suffix}"
    meta = path.with_name(path.name + ".json")
    if path.exists() and meta.exists():
        return Archive(path, **json.loads(meta.read_text()))
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"building the env archive for {target} (once; cached in {path.parent})")
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".stage-") as scratch:
        stage = Path(scratch) / "env"
        asyncio.run(rattler.install(
            list(solution.records), target_prefix=stage, cache_dir=cache / "pkgs",
            show_progress=False, alternative_target_prefix=target,
            execute_link_scripts=False))
        if solution.pip.folder is not None:  # installed on the node, then removed
            shutil.copytree(solution.pip.folder, stage / wheelhouse.FOLDER)
        partial = Path(scratch) / path.name
        _pack(stage, partial, cluster.provision.compression)
        digest, size = sha256_file(partial), partial.stat().st_size
        partial.replace(path)  # the archive appears whole or not at all
    found = {"sha256": digest, "size": size, "compression": cluster.provision.compression}
    meta.write_text(json.dumps(found))
    return Archive(path, **found)


def _pack(stage: Path, out: Path, compression: str) -> None:
    squeeze = {"gzip": ["gzip", "-1"], "zstd": ["zstd", "-1", "-T0", "-q"]}[compression]
    if shutil.which(squeeze[0]) is None:
        raise UserError(f"provision.compression: {compression} needs `{squeeze[0]}` on this "
                        "machine")
    with out.open("wb") as sink:
        tar = subprocess.Popen(["tar", "-C", str(stage), "-cf", "-", "."],
                               stdout=subprocess.PIPE)
        packed = subprocess.run(squeeze, stdin=tar.stdout, stdout=sink, check=False)
        tar.stdout.close()
        if tar.wait() or packed.returncode:
            raise UserError(f"packing the env into {out} failed")


def node_packages(env_facts: dict) -> frozenset[Package]:
    """The same picture of what a node's env holds, from its conda-meta facts."""
    return frozenset(Package(r["name"], r["version"], r["build"],
                             channels.normalise(r.get("channel") or r.get("url") or ""))
                     for r in env_facts.get("conda") or [])
