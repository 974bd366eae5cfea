"""Environment checks on synthetic facts: conda MatchSpec semantics, pip PEP 440, provenance,
pip-over-conda, drift by plurality, and the lock."""

from __future__ import annotations

import pytest

from preflight.checks import environment, lock, sameness
from preflight.config import envspec, lockfile
from preflight.core import channels
from selftest.builders import NODE

CF = "https://conda.anaconda.org/conda-forge"


def rec(name, version, build="h0_0", channel=CF, *, subdir="linux-64", sha256=""):
    return {"name": name, "version": version, "build": build, "build_number": 0,
            "channel": channel, "subdir": subdir, "url": f"{channel}/{subdir}/{name}-{version}-"
            f"{build}.conda", "sha256": sha256}


def dist(name, version, installer="pip"):
    return {"name": name, "version": version, "installer": installer, "path": "x"}


def facts(*conda, pip=()):
    return {"reach": {"ok": True}, "env": {"conda": list(conda), "pip": list(pip)}}


def spec_of(tmp_path, *lines, pip=()):
    body = "".join(f"  - {line!r}\n" for line in lines)
    if pip:
        body += "  - pip:\n" + "".join(f"    - {p!r}\n" for p in pip)
    path = tmp_path / "environment.yml"
    path.write_text(f"name: e\ndependencies:\n{body}")
    return envspec.load(path)


@pytest.mark.parametrize(("spec", "installed", "holds"), [
    ("pytorch=2.0.1", rec("pytorch", "2.0.1.post1"), True),
    ("pytorch=2.0.1", rec("pytorch", "2.0.1a1"), True),
    ("pytorch=2.0.1", rec("pytorch", "2.0.10"), False),
    ("pytorch=2.0.1", rec("pytorch", "2.0.2"), False),
    ("pytorch==2.0.1", rec("pytorch", "2.0.1.post1"), False),
    ("cudatoolkit=11.8", rec("cudatoolkit", "11.8.89"), True),
    ("cudatoolkit>=11.7,<11.9", rec("cudatoolkit", "11.9.0"), False),
    ("pytorch=2.0.1=py3.9_cuda11.8*", rec("pytorch", "2.0.1", "py3.9_cuda11.8_cudnn8.7.0_0"), True),
    ("pytorch=2.0.1=py3.9_cuda11.8*", rec("pytorch", "2.0.1", "py3.9_cpu_0"), False),
    ("pytorch=*=*cuda*", rec("pytorch", "2.0.1", "py3.9_cpu_0"), False),
    ("conda-forge::nccl", rec("nccl", "2.18", channel="https://conda.anaconda.org/nvidia"), False),
    ("conda-forge::nccl", rec("nccl", "2.18"), True),
    ("conda-forge/linux-64::nccl", rec("nccl", "2.18", subdir="noarch"), False),
    ("pytorch/label/nightly::faiss-gpu",
     rec("faiss-gpu", "1.7", channel="https://conda.anaconda.org/pytorch/label/nightly"), True),
])
def test_conda_pin_semantics(tmp_path, spec, installed, holds):
    found = environment.pins(NODE, facts(installed), spec_of(tmp_path, spec), {})
    assert found == environment.pins(NODE, facts(installed), spec_of(tmp_path, spec),
                                     environment.census({"w1": facts(installed)}))
    assert (found == []) is holds, found
    if not holds:
        assert found[0].node == "w1"
        assert installed["name"] in found[0].found


def test_pin_names_what_is_installed_and_what_others_have(tmp_path):
    mine = facts(rec("pytorch", "2.0.2", "py3.9_cuda11.8_0", "https://conda.anaconda.org/pytorch"))
    everyone = {f"w{i}": facts(rec("pytorch", "2.0.1")) for i in (2, 3, 4)} | {"w1": mine}
    found = environment.pins(NODE, mine, spec_of(tmp_path, "pytorch=2.0.1"),
                             environment.census(everyone))
    assert str(found[0]) == ("w1: env pin: expected pytorch=2.0.1, found pytorch 2.0.2 "
                             "(py3.9_cuda11.8_0, pytorch) (3 other nodes have 2.0.1)")


def test_missing_package_and_missing_env(tmp_path):
    spec = spec_of(tmp_path, "openmpi")
    assert environment.pins(NODE, facts(), spec, {})[0].found == "not installed"
    no_env = {"reach": {"ok": True}, "env": {"root": {"exists": False}}}
    assert environment.pins(NODE, no_env, spec, {})[0].found == "no env there"


@pytest.mark.parametrize(("pip_spec", "installed", "holds"), [
    ("torch==2.0.1+cu118", dist("torch", "2.0.1+cu118"), True),
    ("torch==2.0.1+cu118", dist("torch", "2.0.1"), False),
    ("accelerate[deepspeed]~=0.20", dist("accelerate", "0.21.0"), True),
    ("accelerate[deepspeed]~=0.20", dist("accelerate", "1.0.0"), False),
    ("torchelastic", None, False),
    ('pywin32; sys_platform == "win32"', None, True),
    ('dataclasses; python_version < "3.7"', None, True),
    ("Torch_Elastic>=0.2", dist("torch-elastic", "0.2.2"), True),
])
def test_pip_pin_semantics(tmp_path, pip_spec, installed, holds):
    node_facts = facts(rec("python", "3.9.18"), pip=[installed] if installed else [])
    found = environment.pins(NODE, node_facts, spec_of(tmp_path, pip=[pip_spec]), {})
    assert (found == []) is holds, found


def test_provenance_allows_listed_channels_only():
    allowed = channels.allowed(["pytorch", "conda-forge", "defaults"])
    good = [rec("pytorch", "2.0.1", channel="https://conda.anaconda.org/pytorch/linux-64"),
            rec("numpy", "1.26", channel="https://repo.anaconda.com/pkgs/main"),
            rec("nccl", "2.18", channel="conda-forge")]
    assert environment.provenance(NODE, facts(*good), allowed) == []
    bad = rec("nccl", "2.18", channel="https://conda.anaconda.org/nvidia")
    found = environment.provenance(NODE, facts(*good, bad), allowed)
    assert [f.found for f in found] == ["nccl 2.18 (h0_0, nvidia)"]
    local = rec("nccl", "2.18", channel="")
    assert "no channel" in environment.provenance(NODE, facts(local), allowed)[0].found


@pytest.mark.parametrize(("conda_name", "pip_name"), [
    ("nccl", "nvidia-nccl-cu11"), ("pytorch", "torch"), ("numpy", "numpy")])
def test_pip_copy_of_conda_package_names_both(conda_name, pip_name):
    found = environment.installed_twice(
        NODE, facts(rec(conda_name, "1.0"), pip=[dist(pip_name, "2.0")]))
    assert len(found) == 1
    assert f"conda {conda_name} 1.0" in found[0].found
    assert f"pip {pip_name} 2.0 (INSTALLER pip)" in found[0].found


def test_a_pip_copy_the_pip_section_declares_is_not_installed_twice(tmp_path):
    """environment.yml asks pip for it: its pin is checked, not its shadowing; an
    undeclared pip copy of a conda package on the same node still is a finding."""
    spec = spec_of(tmp_path, "numpy", pip=["Torch==2.0"])
    node_facts = facts(rec("pytorch", "1.0"), rec("nccl", "2.18"),
                       pip=[dist("torch", "2.0"), dist("nvidia-nccl-cu11", "2.21")])
    found = environment.installed_twice(NODE, node_facts, spec)
    assert [f.found.split(" and ")[1] for f in found] == [
        "pip nvidia-nccl-cu11 2.21 (INSTALLER pip)"]


def test_conda_installed_dist_info_is_not_a_pip_copy():
    found = environment.installed_twice(NODE, facts(rec("numpy", "1.0"),
                                                    pip=[dist("numpy", "1.0", "conda")]))
    assert found == []


def node(name):
    return NODE.__class__(**{**NODE.__dict__, "name": name})


def test_sameness_names_the_odd_node_by_plurality_and_shows_drift():
    base = [rec("numpy", "1.26"), rec("python", "3.9.18")]
    nodes = {f"w{i}": facts(*base, rec("pytorch", "2.0.1")) for i in (1, 2, 3)}
    nodes["w4"] = facts(*base, rec("pytorch", "2.0.2"))
    assert sameness.sameness(node("w1"), nodes) == ([], "")
    found, table = sameness.sameness(node("w4"), nodes)
    assert str(found[0]) == ("w4: same env on every node: expected pytorch 2.0.1 h0_0 "
                             "conda-forge, as on w[1-3], found pytorch 2.0.2 h0_0 conda-forge")
    assert "pytorch" in table
    assert "numpy" not in table  # only rows that differ


def test_sameness_tie_is_explained_on_both_sides():
    nodes = {"w1": facts(rec("nccl", "2.18")), "w2": facts(rec("nccl", "2.19"))}
    for name in nodes:
        found, _ = sameness.sameness(node(name), nodes)
        assert "no majority: w1: 2.18 h0_0 conda-forge; w2: 2.19 h0_0 conda-forge" in str(found[0])


def test_sameness_counts_missing_and_pip_packages():
    nodes = {f"w{i}": facts(rec("openmpi", "4.1")) for i in (1, 2, 3)}
    nodes["w2"] = facts(pip=[dist("nvidia-nccl-cu11", "2.21")])
    found, _ = sameness.sameness(node("w2"), nodes)
    assert {f.found for f in found} == {"openmpi not installed",
                                        "pip:nvidia-nccl-cu11 2.21 (pip)"}


def test_drift_for_many_nodes_groups_values():
    nodes = {f"w{i}": facts(rec("nccl", "2.18")) for i in range(1, 12)}
    nodes["w7"] = facts(rec("nccl", "2.19"))
    _, table = sameness.sameness(node("w7"), nodes)
    assert "2.18 h0_0 conda-forge: w[1-6,8-11]" in table
    assert "2.19 h0_0 conda-forge: w7" in table


def test_lock_round_trip_and_exact_comparison(tmp_path):
    reference = facts(rec("pytorch", "2.0.1", sha256="ab"), rec("numpy", "1.26"),
                      pip=[dist("torchelastic", "0.2.2"), dist("six", "1.16", "conda")])
    path = tmp_path / "conda-lock.yml"
    assert lockfile.write(path, reference, "w1", tmp_path / "environment.yml") is None
    entries = lockfile.read(path)
    assert lock.matches_lock(NODE, reference, entries) == []
    drifted = facts(rec("pytorch", "2.0.1", sha256="cd"), rec("numpy", "1.26", "h0_1"),
                    rec("pandas", "2.0"))
    found = {f.expected: f.found for f in lock.matches_lock(NODE, drifted, entries)}
    assert found == {
        "pytorch 2.0.1 (h0_0, conda-forge)":
            "pytorch 2.0.1 (h0_0, conda-forge) with sha256 cd, the lock has ab",
        "numpy 1.26 (h0_0, conda-forge)": "numpy 1.26 (h0_1, conda-forge)",
        "no pandas (conda)": "pandas 2.0 (h0_0, conda-forge) installed",
        "torchelastic 0.2.2 (pip)": "not installed",
    }
    backup = lockfile.write(path, drifted, "w2", tmp_path / "environment.yml")
    assert backup is not None
    assert lockfile.read(backup) == entries  # the old lock is kept, never lost
