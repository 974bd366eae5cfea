"""Installed bytes: the probe's integrity pass over conda-meta paths_data and pip RECORDs
(node side, run here on a built prefix), and the check's findings from it."""

import base64
import hashlib
import json

import pytest

from preflight.checks import integrity
from preflight.checks.findings import NotChecked
from selftest.builders import NODE
from selftest.test_probe import load_probe_module

LIB = b"\x7fELF" + b"\0" * 60
SCRIPT = b"#!/opt/anaconda1anaconda2anaconda3/bin/python\n"


def entry(rel: str, data: bytes, **extra) -> dict:
    return {"_path": rel, "path_type": "hardlink", "size_in_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), **extra}


@pytest.fixture
def prefix(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib" / "libtorch.so").write_bytes(LIB)
    installed = SCRIPT.replace(b"/opt/anaconda1anaconda2anaconda3", str(tmp_path).encode())
    (tmp_path / "bin" / "tool").write_bytes(installed)
    paths = [entry("lib/libtorch.so", LIB),
             entry("bin/tool", SCRIPT, file_mode="text",
                   prefix_placeholder="/opt/anaconda1anaconda2anaconda3",
                   sha256_in_prefix=hashlib.sha256(installed).hexdigest()),
             {"_path": "lib/libtorch.so.2", "path_type": "softlink"}]
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    dist = site / "extra-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "extra.py").write_text("x = 1\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"x = 1\n").digest()).rstrip(b"=")
    (dist / "RECORD").write_text(f"extra.py,sha256={digest.decode()},6\n"
                                 "extra-1.0.dist-info/RECORD,,\n")
    return tmp_path, [("pytorch", paths)], [{"name": "extra", "installer": "pip",
                                              "path": str(dist)}]


def run(prefix, mode="size") -> dict:
    root, files, dists = prefix
    return load_probe_module().integrity(str(root), files, dists, mode)


def test_an_intact_env_has_no_mismatch_and_counts_what_it_checked(prefix):
    done = run(prefix, "sha256")
    assert (done["files"], done["hashed"], done["unsized"], done["mismatches"]) == (
        3, 2, 1, [])


def test_a_missing_or_resized_file_is_named_with_its_package(prefix):
    root = prefix[0]
    (root / "lib" / "libtorch.so").write_bytes(LIB[:10])
    (root / "lib" / "python3.11" / "site-packages" / "extra.py").unlink()
    assert run(prefix)["mismatches"] == [
        {"file": "lib/libtorch.so", "package": "pytorch", "what": "size",
         "expected": "64 bytes", "found": "10 bytes"},
        {"file": "extra.py", "package": "extra", "what": "missing", "expected": "a file",
         "found": "No such file or directory"}]


def test_same_size_other_bytes_is_found_only_by_sha256(prefix):
    (prefix[0] / "lib" / "libtorch.so").write_bytes(b"\0" * len(LIB))
    assert run(prefix)["mismatches"] == []
    bad = run(prefix, "sha256")["mismatches"]
    assert [(m["file"], m["what"]) for m in bad] == [("lib/libtorch.so", "sha256")]


def facts(mismatches: list[dict] | None, more: int = 0) -> dict:
    env = {"prefix": NODE.env_prefix, "root": {"exists": True}, "conda": []}
    if mismatches is not None:
        env["integrity"] = {"mode": "size", "files": 3, "hashed": 0, "unsized": 0,
                            "mismatches": mismatches, "more": more, "seconds": 0.01}
    return {"env": env}


def test_the_check_names_file_package_and_difference_and_counts_the_rest():
    bad = {"file": "lib/libtorch.so", "package": "pytorch", "what": "size",
           "expected": "64 bytes", "found": "10 bytes"}
    found = integrity.files_match_records(NODE, facts([bad] * 12, more=5))
    assert str(found[0]).startswith("w1: installed files: expected lib/libtorch.so of "
                                    "pytorch 64 bytes, as recorded, found 10 bytes")
    assert len(found) == 11
    assert "7 more file(s) differ" in found[-1].found
    assert {f.severity for f in found} == {"drain"}
    assert integrity.files_match_records(NODE, facts([])) == []
    with pytest.raises(NotChecked, match="installed files not checked"):
        integrity.files_match_records(NODE, facts(None))


def test_the_record_paths_reach_the_integrity_pass(tmp_path):
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    (meta / "a-1-0.json").write_text(json.dumps(
        {"name": "a", "version": "1", "build": "0", "paths_data": {
            "paths": [{"_path": "x", "path_type": "hardlink", "size_in_bytes": 1}]}}))
    files = []
    load_probe_module().conda_records(str(tmp_path), files)
    assert files == [("a", [{"_path": "x", "path_type": "hardlink", "size_in_bytes": 1}])]


def test_the_probe_verifies_while_the_env_python_runs_or_after_the_last_section(tmp_path):
    from selftest.builders import NODE as node
    from selftest.test_probe import run_probe
    env = tmp_path / "miniconda" / "envs" / "dist"
    (env / "conda-meta").mkdir(parents=True)
    (env / "conda-meta" / "a-1-0.json").write_text(json.dumps(
        {"name": "a", "version": "1", "build": "0", "paths_data": {
            "paths": [{"_path": "lib/gone.so", "path_type": "hardlink", "size_in_bytes": 1}]}}))
    here = node.__class__(**{**node.__dict__, "miniconda": str(tmp_path / "miniconda")})
    for runtime in (False, True):  # True: no env python there, so main() runs it
        found = run_probe(here, runtime=runtime)["env"]["integrity"]
        assert [m["file"] for m in found["mismatches"]] == ["lib/gone.so"]
