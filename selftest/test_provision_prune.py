"""The node side of `provision --prune`, run with sh on a folder tree shaped like a node's:
what is older than the previous version goes, the live and the previous one stay."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from preflight.provision import prune
from preflight.provision.nodeshell import script_command


def _tree(root: Path) -> dict[str, Path]:
    envs, held = root / "mc" / "envs", root / "mc" / "pkgs" / ".preflight"
    releases = root / ".src-releases"
    for folder in (envs, held, releases):
        folder.mkdir(parents=True)
    now = time.time()
    made = {}
    # oldest first: a plain folder kept from before provisioning, three versions, a part
    for age, name in enumerate(reversed([".e-previous-20260101", ".e-aaa-1", ".e-bbb-2",
                                         ".e-ccc-3", ".e-ddd-4.part-99"])):
        made[name] = envs / name
        (envs / name / "conda-meta").mkdir(parents=True)
        (envs / name / "data").write_bytes(b"x" * 4096)
        os.utime(envs / name, (now - 100 * age, now - 100 * age))
    (envs / "e").symlink_to(".e-bbb-2")  # live: not the newest (a rollback happened)
    for digest in ("aaa", "bbb", "ccc", "zzz"):
        (held / f"{digest}.zstd").write_bytes(b"a" * 2048)
    (held / "ccc.zstd.part-7").write_bytes(b"p")
    for age, name in enumerate(["r3", "r2", "r1"]):
        (releases / name).mkdir()
        os.utime(releases / name, (now - 100 * age, now - 100 * age))
    (root / "src").symlink_to(".src-releases/r2")
    (root / f".preflight-installer-{'a' * 64}.sh").write_bytes(b"#!/bin/sh\n")
    return {"envs": envs, "held": held, "releases": releases, "ws": root / "src"}


def _run(paths: dict[str, Path], dry: str) -> list[tuple[int, str]]:
    command = script_command("prune", str(paths["envs"]), "e", str(paths["ws"]),
                             str(paths["held"]), dry, str(paths["ws"].parent))
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return prune.parse(done.stdout)


def test_prune_keeps_the_live_and_the_previous_and_lists_before_it_removes(tmp_path):
    paths = _tree(tmp_path)
    listed = _run(paths, "yes")
    gone = sorted(Path(p).name for _, p in listed)
    assert gone == sorted([".e-aaa-1", ".e-ddd-4.part-99", ".e-previous-20260101",
                           "aaa.zstd", "ccc.zstd.part-7", "zzz.zstd", "r1",
                           f".preflight-installer-{'a' * 64}.sh"]), gone
    assert all(kib >= 0 for kib, _ in listed)
    assert (paths["envs"] / ".e-aaa-1").exists()  # listing removed nothing
    assert sorted(_run(paths, "no")) == sorted(listed)
    assert sorted(p.name for p in paths["envs"].iterdir()) == [".e-bbb-2", ".e-ccc-3", "e"]
    assert sorted(p.name for p in paths["held"].iterdir()) == ["bbb.zstd", "ccc.zstd"]
    assert sorted(p.name for p in paths["releases"].iterdir()) == ["r2", "r3"]
    assert (paths["envs"] / "e" / "data").is_file()
    assert _run(paths, "no") == []  # then nothing
