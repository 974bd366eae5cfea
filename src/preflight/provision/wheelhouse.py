"""environment.yml's pip section, resolved once on the controller into a hash-locked
wheelhouse that travels inside the env archive; nodes install it offline.

The resolve runs pip's own resolver with the env's own Python, in a copy of the solved
env staged here: its interpreter and platform are the nodes', and what conda already
installed (torch, numpy) satisfies a requirement instead of being fetched again. Only
what pip would add is locked (`pip install --dry-run --report`), then each of those is
fetched or built into a wheel (`pip wheel --no-deps`), so a node needs no index, no
compiler and no network: `pip install --no-index --find-links --require-hashes`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import rattler
from packaging.utils import canonicalize_name, parse_wheel_filename

from preflight.config.inventory import Cluster
from preflight.core.digest import sha256_file
from preflight.core.errors import UserError
from preflight.core.nodetext import one_line

FOLDER = ".preflight-pip"  # inside the archive: wheels and LOCK, removed once installed
LOCK = "requirements.lock"


@dataclass(frozen=True)
class Wheel:
    name: str  # canonical
    version: str
    file: str
    sha256: str

    def line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True)
class PipLock:
    wheels: tuple[Wheel, ...]  # sorted by name; empty: no pip section
    folder: Path | None  # the wheelhouse on the controller

    def text(self) -> str:
        return "".join(w.line() + "\n" for w in self.wheels)

    def versions(self) -> dict[str, str]:
        return {w.name: w.version for w in self.wheels}


NONE = PipLock((), None)


def resolve(cluster: Cluster, records: tuple, conda_digest: str, log=print) -> PipLock:
    """The pip lock and its wheelhouse, cached by the conda env, the pip lines and where
    pip looks. A failed resolve or build is a UserError: nothing was planned yet."""
    lines = [p.text for p in cluster.env.pip]
    if not lines:
        return NONE
    options = _index_options(cluster)
    key = hashlib.sha256(json.dumps([conda_digest, lines, options]).encode()).hexdigest()[:16]
    folder = Path(cluster.provision.cache).expanduser() / "pip" / key
    if (folder / LOCK).exists():
        return _read(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    log(f"resolving environment.yml's pip section ({len(lines)} line(s)) with the env's own "
        "pip (once; cached)")
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".stage-") as scratch:
        stage, house = Path(scratch) / "env", Path(scratch) / "wheels"
        asyncio.run(rattler.install(list(records), target_prefix=stage,
                                    cache_dir=Path(cluster.provision.cache).expanduser() / "pkgs",
                                    show_progress=False, execute_link_scripts=False))
        python = _python(stage)
        wanted = Path(scratch) / "requirements.in"
        wanted.write_text("".join(line + "\n" for line in lines))
        report = Path(scratch) / "report.json"
        # without --ignore-installed: what the env's conda packages hold is kept
        _pip(python, ["install", "--dry-run", "--quiet", "--report", str(report), *options,
                      "-r", str(wanted)], cluster, "resolve")
        adds = json.loads(report.read_text()).get("install") or []
        house.mkdir()
        urls = [item["download_info"]["url"] for item in adds]
        if urls:
            _pip(python, ["wheel", "--no-deps", "--quiet", "--wheel-dir", str(house), *options,
                          *urls], cluster, "wheel")
        partial = Path(scratch) / "done"
        partial.mkdir()
        for wheel in house.glob("*.whl"):
            shutil.move(wheel, partial / wheel.name)
        (partial / LOCK).write_text(_lock_text(partial))
        shutil.rmtree(folder, ignore_errors=True)
        partial.replace(folder)  # whole or not at all
    return _read(folder)


def _index_options(cluster: Cluster) -> list[str]:
    pip = cluster.provision.pip
    out = ["--index-url", pip.index_url] if pip.index_url else []
    for link in pip.find_links:
        out += ["--find-links", link]
    return out + (["--no-index"] if pip.no_index else [])


def _python(stage: Path) -> Path:
    python = stage / "bin" / "python"
    if not python.exists():
        raise UserError("cannot build the pip wheelhouse: the solved env has no bin/python "
                        "(add python to environment.yml)")
    return python


def _pip(python: Path, args: list[str], cluster: Cluster, what: str) -> None:
    """pip with the env's Python; the user site and the env's own pip config kept out,
    relative `-r` lines read beside environment.yml."""
    env = {**os.environ, "PYTHONNOUSERSITE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PIP_NO_INPUT": "1"}
    try:
        done = subprocess.run([str(python), "-m", "pip", *args], capture_output=True,
                              text=True, env=env, cwd=cluster.environment.parent,
                              timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"cannot build the pip wheelhouse ({what}): {one_line(exc, 200)}") \
            from None
    if done.returncode != 0:
        said = [line.strip() for line in done.stderr.splitlines()
                if line.strip() and "is ignored" not in line]
        last = next((line for line in reversed(said) if line.startswith("ERROR")),
                    said[-1] if said else f"exit {done.returncode}")
        raise UserError(f"cannot build the pip wheelhouse ({what}): {one_line(last, 300)}")


def _lock_text(folder: Path) -> str:
    wheels = []
    for path in sorted(folder.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(path.name)
        digest = sha256_file(path)  # a wheel can be hundreds of MB (torch)
        wheels.append(Wheel(canonicalize_name(name), str(version), path.name, digest))
    return "".join(w.line() + "\n" for w in sorted(wheels, key=lambda w: w.name))


def _read(folder: Path) -> PipLock:
    files = {}
    for path in folder.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        files[(canonicalize_name(name), str(version))] = path.name
    wheels = []
    for line in (folder / LOCK).read_text().splitlines():
        pin, _, digest = line.partition(" --hash=sha256:")
        name, _, version = pin.partition("==")
        wheels.append(Wheel(name, version, files[(name, version)], digest))
    return PipLock(tuple(wheels), folder)
