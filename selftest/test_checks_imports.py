"""Import origins: a module a job imports from outside the env is named, with the part of
the launch environment that put it first."""

import pytest

from preflight.checks import imports
from preflight.checks.findings import NotChecked
from selftest.builders import NODE

ENV = NODE.env_prefix  # /opt/miniconda/envs/dist
SITE = f"{ENV}/lib/python3.11/site-packages"


def facts(torch_file: str, *, pythonpath: str | None = None, root: dict | None = None) -> dict:
    launch = {"PATH": "/usr/bin"} | ({"PYTHONPATH": pythonpath} if pythonpath else {})
    return {"env": {"root": root or {"exists": True, "kind": "dir"},
                    "conda": [{"name": "pytorch", "version": "2.0.1", "build": "py3.9_0"}],
                    "pip": []},
            "runtime": {"ok": True, "modules": {
                "torch": {"file": torch_file, "version": "2.0.2"},
                "numpy": {"file": f"{SITE}/numpy/__init__.py", "version": "1.26.4"}},
                "user_site": {"enabled": True, "path": "/root/.local/lib/python3.11/site-packages"},
                "launch_env": launch}}


def test_the_env_own_modules_pass():
    assert imports.from_env(NODE, facts(f"{SITE}/torch/__init__.py")) == []


def test_a_user_site_torch_is_named_with_both_versions():
    found = imports.from_env(NODE, facts("/root/.local/lib/python3.11/site-packages/torch/"
                                         "__init__.py"))
    assert [str(f).split(" (the user site")[0] for f in found] == [
        "w1: import origin: expected torch imported from the env (/opt/miniconda/envs/dist), "
        "whose torch is 2.0.1, found /root/.local/lib/python3.11/site-packages/torch/"
        "__init__.py (torch 2.0.2)"]
    assert "pip install --user" in found[0].hint


def test_a_pythonpath_folder_is_named_as_the_cause():
    found = imports.from_env(NODE, facts("/scratch/libs/torch/__init__.py",
                                         pythonpath="/scratch/libs:/other"))
    assert "PYTHONPATH=/scratch/libs:/other" in found[0].hint


def test_an_env_that_is_a_link_to_a_version_folder_is_the_env():
    root = {"exists": True, "kind": "link", "target": ".dist-0a1b", "resolves": True}
    real = "/opt/miniconda/envs/.dist-0a1b/lib/python3.11/site-packages/torch/__init__.py"
    assert imports.from_env(NODE, facts(real, root=root)) == []


def test_facts_without_module_origins_are_not_checked_never_passed():
    older = facts(f"{SITE}/torch/__init__.py")
    del older["runtime"]["modules"]
    with pytest.raises(NotChecked, match="module origins not checked"):
        imports.from_env(NODE, older)


def test_a_user_site_holding_packages_is_named_with_its_pth_lines():
    doc = facts(f"{SITE}/torch/__init__.py")
    doc["runtime"]["user_site"].update(
        exists=True, entries=["requests", "extra.pth"], count=2,
        pth={"extra.pth": ["/scratch/old-libs"]})
    found = imports.from_env(NODE, doc)
    assert [f.check for f in found] == ["import origin"]
    assert "user site /root/.local/lib/python3.11/site-packages on, holding requests, " \
           "extra.pth; its .pth files add extra.pth: /scratch/old-libs" in found[0].found
    assert found[0].severity == "drain"
    doc["runtime"]["user_site"]["enabled"] = False  # PYTHONNOUSERSITE=1: not imported
    assert imports.from_env(NODE, doc) == []


def which(**found) -> dict:
    doc = facts(f"{SITE}/torch/__init__.py")
    doc["runtime"]["which"] = {"python": None, "torchrun": None} | found
    return doc


def test_torchrun_on_path_is_the_envs_or_absent_and_python_is_not_judged_alone():
    assert imports.on_path(NODE, which()) == []
    mine = {"path": f"{ENV}/bin/torchrun", "real": f"{ENV}/bin/torchrun"}
    assert imports.on_path(NODE, which(torchrun=mine)) == []
    system = {"path": "/usr/bin/python", "real": "/usr/bin/python3.11"}
    assert imports.on_path(NODE, which(python=system)) == []


def test_another_torchrun_on_path_is_named_with_where_it_leads():
    other = {"path": "/usr/local/bin/torchrun", "real": "/opt/conda/bin/torchrun"}
    found = imports.on_path(NODE, which(torchrun=other))
    assert [str(f).split(" (PATH=")[0] for f in found] == [
        "w1: torchrun on PATH: expected torchrun on PATH from the env "
        "(/opt/miniconda/envs/dist/bin) or not on PATH, found /usr/local/bin/torchrun -> "
        "/opt/conda/bin/torchrun"]
    older = facts(f"{SITE}/torch/__init__.py")
    with pytest.raises(NotChecked, match="torchrun on PATH not checked"):
        imports.on_path(NODE, older)
