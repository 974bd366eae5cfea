"""Miniconda checks on synthetic facts: each one can fail, and says node/expected/found."""

import copy

import pytest

from preflight.checks import environment, miniconda
from selftest.builders import NODE

DIR = {"exists": True, "kind": "dir", "mode": 0o755, "uid": 0, "owner": "root"}
HEALTHY = {
    "node": {"uid": 0, "user": "root"},
    "miniconda": {
        "root": DIR, "world_writable": [],
        "layout": {rel: {"exists": True} for rel in miniconda.LAYOUT},
        "base_python": {"runs": True, "version": "3.11.7", "error": ""},
        "conda_sh": {"rc": 0, "stdout": "conda\n", "stderr": ""},
    },
    "env": {"root": DIR, "world_writable": [], "conda": []},
    "runtime": {"python": "3.11.7", "ok": True},
    "probe_errors": {},
}
CHECKS = [miniconda.prefix_exists, miniconda.layout, miniconda.base_python_runs,
          miniconda.env_exists, miniconda.env_python_runs, miniconda.permissions,
          miniconda.conda_sh_sources]


def broken(path: str, value):
    facts = copy.deepcopy(HEALTHY)
    *parents, last = path.split(".")
    target = facts
    for key in parents:
        target = target[key]
    target[last] = value
    return facts


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_healthy_facts_pass(check):
    assert check(NODE, HEALTHY) == []


@pytest.mark.parametrize(("check", "path", "value", "found"), [
    (miniconda.prefix_exists, "miniconda.root", {"exists": False}, "nothing there"),
    (miniconda.layout, "miniconda.layout.condabin/conda", {"exists": False}, "missing"),
    (miniconda.base_python_runs, "miniconda.base_python",
     {"runs": False, "error": "error while loading shared libraries"}, "shared libraries"),
    (miniconda.env_exists, "env.root", {"exists": False}, "no such folder"),
    (miniconda.env_python_runs, "runtime", {"ok": False, "error": "exit 139"}, "exit 139"),
    (miniconda.permissions, "miniconda.world_writable", ["/opt/miniconda/bin"], "o+w"),
    (miniconda.permissions, "env.root", {**DIR, "uid": 1234, "owner": "bob"}, "owner bob"),
    (miniconda.conda_sh_sources, "miniconda.conda_sh",
     {"rc": 1, "stdout": "", "stderr": "conda.sh: line 3: syntax error"}, "syntax error"),
])
def test_each_check_can_fail(check, path, value, found):
    findings = check(NODE, broken(path, value))
    assert findings
    assert all(f.node == "w1" and f.expected for f in findings)
    assert found in str(findings[0])


DANGLING = {"exists": True, "kind": "link", "mode": 0o777, "uid": 0, "owner": "root",
            "target": "/opt/miniconda/envs/.pytorch-dist-0a1b", "resolves": False}


def test_a_dangling_env_link_names_its_target_with_a_hint():
    found = miniconda.env_exists(NODE, broken("env.root", DANGLING))
    assert len(found) == 1
    assert "a symlink to /opt/miniconda/envs/.pytorch-dist-0a1b, which does not exist" in \
        found[0].found
    assert found[0].hint.startswith("the link /opt/miniconda/envs/dist -> ")
    missing = environment.env_missing(NODE, broken("env", {"root": DANGLING}))
    assert "dangling" in missing[0].found
    assert "ln -sfn" in missing[0].hint


def test_a_prefix_that_is_a_resolving_link_is_a_prefix():
    relocated = {**DANGLING, "target": "/data/miniconda3", "resolves": True}
    assert miniconda.prefix_exists(NODE, broken("miniconda.root", relocated)) == []
    found = miniconda.prefix_exists(NODE, broken("miniconda.root", DANGLING))
    assert "dangling" in found[0].found
