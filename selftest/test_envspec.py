"""environment.yml reading: every spec form, unsupported pip lines listed, errors with line."""

import re
import textwrap

import pytest

from preflight.config import envspec
from preflight.core.errors import UserError
from selftest.suites import REPO

FULL = """\
name: pytorch-dist
channels: [pytorch, nvidia, conda-forge]
dependencies:
  - pytorch=2.0.1
  - pytorch==2.0.1
  - cudatoolkit>=11.7,<11.9
  - pytorch=2.0.1=py3.9_cuda11.8*
  - pytorch=*=*cuda*
  - conda-forge::nccl
  - pytorch/label/nightly::faiss-gpu
  - conda-forge/linux-64::openmpi
  - pip
  - pip:
      - torchelastic
      - torch==2.0.1+cu118
      - accelerate[deepspeed]~=0.20
      - pywin32; sys_platform == "win32"
      - -r requirements-extra.txt
      - -e ./mylib
      - --extra-index-url https://download.pytorch.org/whl/cu118
      - git+https://github.com/org/repo.git@main
      - https://example.org/pkg-1.0-py3-none-any.whl
      - mypkg @ https://example.org/mypkg-1.0.tar.gz
"""


def load(tmp_path, text):
    path = tmp_path / "environment.yml"
    path.write_text(textwrap.dedent(text))
    return envspec.load(path)


def test_every_spec_form_parses(tmp_path):
    spec = load(tmp_path, FULL)
    assert spec.name == "pytorch-dist"
    assert [s.name for s in spec.conda] == ["pytorch", "pytorch", "cudatoolkit", "pytorch",
                                            "pytorch", "nccl", "faiss-gpu", "openmpi", "pip"]
    by_text = {s.text: s for s in spec.conda}
    assert by_text["conda-forge::nccl"].channel == "conda-forge"
    assert by_text["pytorch/label/nightly::faiss-gpu"].channel == "pytorch/label/nightly"
    assert by_text["conda-forge/linux-64::openmpi"].subdir == "linux-64"
    assert by_text["cudatoolkit>=11.7,<11.9"].line == 6
    assert [p.name for p in spec.pip] == ["torchelastic", "torch", "accelerate", "pywin32"]


def test_unsupported_pip_lines_are_listed_not_dropped(tmp_path):
    spec = load(tmp_path, FULL)
    listed = {u.text: u.reason for u in spec.unchecked}
    assert listed == {
        "-r requirements-extra.txt": "a requirements file is not read",
        "-e ./mylib": "an editable install",
        "--extra-index-url https://download.pytorch.org/whl/cu118": "a pip option",
        "git+https://github.com/org/repo.git@main": "a VCS source",
        "https://example.org/pkg-1.0-py3-none-any.whl": "a URL",
        "mypkg @ https://example.org/mypkg-1.0.tar.gz": "a direct URL reference",
    }
    assert str(spec.unchecked[0]).startswith("not checked: -r requirements-extra.txt")


@pytest.mark.parametrize(("text", "message"), [
    ("name: e\ndependencies:\n  - pytorch>=\n", ":3: bad conda spec 'pytorch>='"),
    ("name: e\ndependencies:\n  - pip:\n    - 'torch ==='\n", ":4: bad pip requirement"),
    ("name: e\ndependencies:\n  - {conda: x}\n", ":3: dependency"),
    ("name: e\ndependencies: numpy\n", ":2: 'dependencies' must be a non-empty list"),
    ("dependencies: [numpy]\n", ":1: 'name' is required"),
    ("name: e\ndependencies: [numpy\n", ":3: malformed YAML"),
])
def test_malformed_file_or_spec_names_line(tmp_path, text, message):
    with pytest.raises(UserError) as caught:
        load(tmp_path, text)
    assert f"{tmp_path / 'environment.yml'}{message}" in str(caught.value)


@pytest.mark.parametrize("path", ["environment.yml", "fixtures/environment.a100.yml"])
def test_shipped_environment_files_parse(path):
    spec = envspec.load(REPO / path)
    assert spec.name == "pytorch-dist"
    assert not spec.unchecked


@pytest.mark.parametrize(("deps", "words"), [
    ("[num py, python=3.11]", "'==py' is not a version of num"),
    ("[numpy=1.26, python=3.11, numpy=2.0]", "numpy pinned twice to different versions "
     "('numpy=1.26' at line"),
])
def test_a_line_conda_would_misread_is_one_line_not_a_failure_on_every_node(tmp_path, deps,
                                                                            words):
    path = tmp_path / "environment.yml"
    path.write_text(f"name: x\ndependencies: {deps}\n")
    with pytest.raises(UserError, match=re.escape(words)):
        envspec.load(path)
