"""Shared libraries as the loader resolves them: the env's own file passes; an
LD_LIBRARY_PATH or LD_PRELOAD copy that wins is named with its version and cause; a
system copy counts only where the env declares the package that should ship it."""

import pytest

from preflight.checks import libraries
from preflight.checks.findings import NotChecked
from selftest.builders import NODE

ENV = NODE.env_prefix


def facts(libs: dict | None, *, conda=("nccl",), env: dict | None = None) -> dict:
    runtime = {"ok": True, "launch_env": env or {"PATH": "/usr/bin"}}
    if libs is not None:
        runtime["libraries"] = libs
    return {"env": {"root": {"exists": True, "kind": "dir"}, "pip": [],
                    "conda": [{"name": n, "version": "2.23.4.1", "build": "h_0"}
                              for n in conda]},
            "runtime": runtime}


OWN = {"path": f"{ENV}/lib/libnccl.so.2", "via": "env", "version": "2.23.4+cuda11.8",
       "env_path": f"{ENV}/lib/libnccl.so.2", "env_version": "2.23.4+cuda11.8"}


def test_the_env_own_library_passes():
    assert libraries.from_env(NODE, facts({"libnccl.so.2": OWN})) == []


def test_a_library_path_copy_that_wins_is_named_with_both_versions_and_the_variable():
    lib = {**OWN, "path": "/scratch/nccl/libnccl.so.2", "via": "LD_LIBRARY_PATH",
           "version": "2.18.1+cuda12.1"}
    found = libraries.from_env(NODE, facts({"libnccl.so.2": lib}, env={
        "LD_LIBRARY_PATH": "/scratch/nccl"}))
    assert [str(f).split(" (LD_LIBRARY_PATH in")[0] for f in found] == [
        "w1: shared library: expected libnccl.so.2 from the env: "
        "/opt/miniconda/envs/dist/lib/libnccl.so.2 (2.23.4+cuda11.8), found "
        "/scratch/nccl/libnccl.so.2 (2.18.1+cuda12.1) via LD_LIBRARY_PATH=/scratch/nccl"]
    assert found[0].severity == "drain"


def test_a_system_copy_counts_only_where_the_env_declares_the_package():
    system = {"path": "/usr/lib/x86_64-linux-gnu/libnccl.so.2", "via": "ldconfig",
              "version": "2.18.1"}
    found = libraries.from_env(NODE, facts({"libnccl.so.2": system}))
    assert "which declares nccl 2.23.4.1" in found[0].expected
    assert "via ld.so.cache" in found[0].found
    assert libraries.from_env(NODE, facts({"libnccl.so.2": system}, conda=())) == []


def test_facts_without_libraries_are_not_checked_with_the_probe_reason():
    doc = facts(None)
    doc["runtime"]["libraries_error"] = "PermissionError: /opt"
    with pytest.raises(NotChecked, match="shared libraries not checked: PermissionError"):
        libraries.from_env(NODE, doc)
