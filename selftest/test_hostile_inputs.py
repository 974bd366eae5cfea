"""Malformed and hostile cluster.yaml / environment.yml: always one line naming file:line,
exit 2, in bounded time; never a traceback, a hang, or a secret echoed back. Valid input of
every form is accepted and parsed as conda and pip would."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rattler
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

from preflight.config import envspec, inventory
from preflight.core.errors import UserError
from preflight.facts import contract
from selftest import recorded
from selftest.suites import REPO

ENV = "name: dist\ndependencies: [python=3.11]\n"
SECRET = "hunter2-s3cret"
GOOD_NODES = "nodes:\n  - {name: a, address: 10.0.0.1}\n  - {name: b, address: 10.0.0.2}\n"


def write(tmp_path: Path, cluster: bytes | str, env: bytes | str = ENV) -> Path:
    for name, text in (("cluster.yaml", cluster), ("environment.yml", env)):
        data = text.encode() if isinstance(text, str) else text
        (tmp_path / name).write_bytes(data)
    return tmp_path / "cluster.yaml"


def refused(path: Path) -> str:
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        inventory.load(path)
    message = str(caught.value)
    assert time.monotonic() - started < 5
    assert "\n" not in message
    assert len(message) < 400
    assert message.startswith(str(path.parent)), message
    assert SECRET not in message
    return message


CLUSTER_CASES = {
    "duplicate key": ("cluster: c\n" + GOOD_NODES + "nodes:\n  - {name: z}\n",
                      "duplicate key 'nodes' (first at line 2)"),
    "empty name": ("cluster: c\nnodes:\n  - {name: ''}\n", "is not a host name"),
    "newline in name": ('cluster: c\nnodes:\n  - {name: "a\\nb"}\n', "is not a host name"),
    "pipe in name": ("cluster: c\nnodes:\n  - {name: 'a|b'}\n", "is not a host name"),
    "duplicate address": ("cluster: c\nnodes:\n  - {name: a, address: 10.0.0.1}\n"
                          "  - {name: b, address: 10.0.0.1}\n", "each node needs its own"),
    "bool as number": ("cluster: c\ndefaults: {gpus: true}\n" + GOOD_NODES,
                       "valid integer"),
    "infinite deadline": ("cluster: c\nnccl: {deadline: .inf}\n" + GOOD_NODES, "finite"),
    "min above max": ("cluster: c\nnccl: {min_bytes: 4096, max_bytes: 1024}\n" + GOOD_NODES,
                      "min_bytes (4096) is above max_bytes (1024)"),
    "huge range": ("cluster: c\nnodes:\n  - {name: 'w-[1-100000]'}\n",
                   "100000 nodes, more than the limit"),
    "alias bomb": ("cluster: c\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a]\n"
                   "c: [*b, *b, *b, *b, *b]\n" + GOOD_NODES, "YAML aliases"),
    "deep nesting": ("cluster: c\nx: " + "[" * 1000 + "]" * 1000 + "\n" + GOOD_NODES,
                     "nested deeper than"),
    "latin-1 byte": (b"cluster: c # caf\xe9\n" + GOOD_NODES.encode(), "is not UTF-8 (0xe9)"),
    "utf-16": (("cluster: c\n" + GOOD_NODES).encode("utf-16"), "a NUL byte"),
    "secret in a bad value": (f"cluster: c\ndefaults: {{port: 'password={SECRET}'}}\n"
                              + GOOD_NODES, "valid integer"),
    "missing ssh_config": ("cluster: c\ndefaults: {ssh_config: nowhere/config}\n" + GOOD_NODES,
                           "ssh_config file 'nowhere/config' not found"),
}


@pytest.mark.parametrize("case", sorted(CLUSTER_CASES))
def test_bad_cluster_yaml_is_one_line(tmp_path, case):
    text, words = CLUSTER_CASES[case]
    assert words in refused(write(tmp_path, text)), case


ENV_CASES = {
    "typo turns the gate off": ("name: d\ndependancies: [pytorch=2.0.1]\n",
                                "unknown key 'dependancies' (did you mean 'dependencies'?)"),
    "dependencies a mapping": ("name: d\ndependencies: {}\n", "must be a non-empty list"),
    "no dependencies": ("name: d\n", "must be a non-empty list"),
    "channels a string": ("name: d\nchannels: conda-forge\ndependencies: [x]\n",
                          "'channels' must be a list"),
    "pip null": ("name: d\ndependencies: [x, {pip: [null]}]\n", "is not a requirement string"),
    "pip number": ("name: d\ndependencies: [x, {pip: [42]}]\n", "is not a requirement string"),
    "pip bool": ("name: d\ndependencies: [x, {pip: [true]}]\n", "is not a requirement string"),
    "name a list": ("name: [a]\ndependencies: [x]\n", "must be a plain env name"),
    "name a path": ("name: ../../../etc\ndependencies: [x]\n", "must be a plain env name"),
}


@pytest.mark.parametrize("case", sorted(ENV_CASES))
def test_bad_environment_yml_is_one_line(tmp_path, case):
    text, words = ENV_CASES[case]
    message = refused(write(tmp_path, "cluster: c\n" + GOOD_NODES, text))
    assert "environment.yml:" in message
    assert words in message, message


def test_pip_option_lines_are_listed_not_fatal_and_redacted(tmp_path):
    env = ("name: d\ndependencies:\n  - python\n  - pip:\n"
           f"    - -f https://u:{SECRET}@download.example/whl/torch_stable.html\n"
           f"    - --extra-index-url https://ci:{SECRET}@pypi.example/simple\n"
           "    - --pre\n    - -i https://pypi.example/simple\n    - torch==2.0.1\n")
    spec = inventory.load(write(tmp_path, "cluster: c\n" + GOOD_NODES, env)).env
    assert [p.name for p in spec.pip] == ["torch"]
    assert len(spec.unchecked) == 4
    assert all(u.reason == "a pip option" for u in spec.unchecked)
    assert SECRET not in " ".join(str(u) for u in spec.unchecked)


@pytest.mark.parametrize("args", [["--cluster=/dev/zero"], ["--facts=/nonexistent.json"]])
def test_bad_input_through_pytest_exits_2_without_internalerror(tmp_path, args):
    cluster = write(tmp_path, "cluster: c\n" + GOOD_NODES)
    argv = [sys.executable, "-m", "pytest", "tests", "--rootdir", str(REPO), "-q",
            "-p", "no:cacheprovider", f"--cluster={cluster}", f"--report-dir={tmp_path}", *args]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout[-2000:]
    assert "INTERNALERROR" not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


# --- generated input -----------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True), st.text(max_size=40))
values = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=12), kids, max_size=4)),
    max_leaves=20)
KEYS = ["cluster", "nodes", "defaults", "nccl", "ssh", "sync", "jupyter", "environment",
        "lock", "name", "address", "gpus", "role", "port", "dependencies", "channels"]
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _dump(doc) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return "{}"


def _error_of(load) -> str | None:
    """The UserError's message, or None when the input loaded; anything else propagates."""
    try:
        load()
    except UserError as exc:
        return str(exc)
    return None


@FAST
@given(doc=st.dictionaries(st.sampled_from(KEYS), values, max_size=6))
def test_generated_cluster_yaml_loads_or_is_one_line(tmp_path, doc):
    path = write(tmp_path, _dump(doc))
    message = _error_of(lambda: inventory.load(path))
    if message is not None:
        assert "\n" not in message
        assert message.startswith(str(path.parent))
        assert len(message) < 600


@FAST
@given(env=st.dictionaries(st.sampled_from(["name", "channels", "dependencies", "pip",
                                            "dependancies", "prefix"]), values, max_size=4))
def test_generated_environment_yml_loads_or_is_one_line(tmp_path, env):
    (tmp_path / "environment.yml").write_text(_dump(env))
    message = _error_of(lambda: envspec.load(tmp_path / "environment.yml"))
    if message is not None:
        assert "\n" not in message
        assert message.startswith(str(tmp_path / "environment.yml"))


names = st.from_regex(r"[a-z]([a-z0-9_-]{0,14}[a-z0-9])?", fullmatch=True)  # PEP 508 too
versions = st.from_regex(r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}", fullmatch=True)
conda_specs = st.one_of(
    names, st.builds(lambda n, v: f"{n}={v}", names, versions),
    st.builds(lambda n, v: f"{n}=={v}", names, versions),
    st.builds(lambda n, v: f"{n}>={v}", names, versions),
    st.builds(lambda n, v: f"{n} {v}.*", names, versions),
    st.builds(lambda n, v: f"{n}={v}=py*_0", names, versions),
    st.builds(lambda c, n: f"{c}::{n}", st.sampled_from(["conda-forge", "pytorch"]), names))
pip_specs = st.one_of(
    names, st.builds(lambda n, v: f"{n}=={v}", names, versions),
    st.builds(lambda n, v: f"{n}>={v},<{int(v.split('.')[0]) + 1}", names, versions),
    st.builds(lambda n: f"{n}[extra]", names),
    st.builds(lambda n, v: f'{n}=={v}; python_version >= "3.8"', names, versions),
    st.sampled_from(["--pre", "-f https://x.example/whl", "--index-url https://x/simple",
                     "-r extra.txt", "-e ."]))


def _conda_name(spec: str) -> str:
    return re.split(r"[=<> ]", spec.rsplit("::", maxsplit=1)[-1], maxsplit=1)[0]


@FAST  # one spec a package: two exact pins of one package are refused (envspec._clash)
@given(conda=st.lists(conda_specs, min_size=1, max_size=5, unique_by=_conda_name),
       pip=st.lists(pip_specs, max_size=4))
def test_generated_valid_environment_parses_as_conda_and_pip_would(tmp_path, conda, pip):
    doc = {"name": "gen", "channels": ["conda-forge"], "dependencies": [*conda, {"pip": pip}]}
    (tmp_path / "environment.yml").write_text(yaml.safe_dump(doc))
    spec = envspec.load(tmp_path / "environment.yml")
    assert [c.text for c in spec.conda] == conda
    for parsed in spec.conda:
        assert parsed.name == rattler.MatchSpec(parsed.text, strict=False).name.normalized
    for parsed in spec.pip:
        assert parsed.requirement == Requirement(parsed.text)
    assert len(spec.pip) + len(spec.unchecked) == len(pip)


facts_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
              st.text(max_size=30), st.sampled_from(["\ud800", "\x00\x1b[2J", "```\n# x"])),
    lambda kids: st.one_of(st.lists(kids, max_size=3),
                           st.dictionaries(st.text(max_size=8), kids, max_size=3)),
    max_leaves=12)


@FAST
@given(section=st.sampled_from(sorted(contract.SECTIONS)), value=facts_values)
def test_generated_facts_never_crash_the_contract_and_never_pass_garbage(section, value):
    doc = recorded.healthy()
    doc[section] = value
    checked = contract.validate(doc, contract.Expect())
    broken = dict.get(checked, "broken")
    assert set(broken) <= {section}
    if not broken:  # accepted: then it really has the declared shape
        contract._ADAPTERS[section].validate_python(value, strict=True)


def test_ssh_config_including_itself_is_one_line(tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text(f"Include {config}\nInclude {config}\nHost *\n  User x\n")
    cluster = write(tmp_path, f"cluster: c\ndefaults: {{ssh_config: {config}}}\n" + GOOD_NODES)
    assert "an Include loop" in refused(cluster)


@pytest.mark.parametrize("content", [b"\xff\xfe garbage", b"package: 3\n", b"[1, 2]\n", b""])
def test_garbage_lock_file_is_one_line(tmp_path, content):
    (tmp_path / "conda-lock.yml").write_bytes(content)
    cluster = write(tmp_path, "cluster: c\nlock: conda-lock.yml\n" + GOOD_NODES)
    from preflight.config import lockfile
    with pytest.raises(UserError) as caught:
        lockfile.read(inventory.load(cluster).lock)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "conda-lock.yml"))


@FAST
@given(doc=st.dictionaries(st.sampled_from(["waivers", "check", "nodes", "reason", "owner",
                                            "expires", "id"]), values, max_size=4),
       entries=st.lists(st.dictionaries(st.sampled_from(["check", "nodes", "reason", "owner",
                                                         "expires"]), values, max_size=5),
                        max_size=3))
def test_generated_waivers_load_or_are_one_line(tmp_path, doc, entries):
    from preflight.config import waivers
    path = tmp_path / "waivers.yaml"
    path.write_text(_dump({**doc, "waivers": entries} if entries else doc))
    message = _error_of(lambda: waivers.load(path))
    if message is not None:
        assert "\n" not in message
        assert len(message) < 600


@FAST
@given(packages=st.lists(st.dictionaries(st.sampled_from(["name", "version", "manager", "url",
                                                          "hash", "platform"]), values,
                                         max_size=6), max_size=4),
       top=st.dictionaries(st.sampled_from(["version", "metadata"]), values, max_size=2))
def test_generated_lock_files_read_or_are_one_line(tmp_path, packages, top):
    from preflight.config import lockfile
    path = tmp_path / "conda-lock.yml"
    path.write_text(_dump({**top, "package": packages}))
    message = _error_of(lambda: lockfile.read(path))
    if message is not None:
        assert "\n" not in message


@FAST
@given(doc=facts_values, name=st.sampled_from(["20261127T000100-a1b2c3.json.gz", "x.json.gz"]),
       gz=st.booleans())
def test_generated_history_records_are_read_or_skipped(tmp_path, doc, name, gz):
    import gzip
    import json as json_mod

    from preflight.report import history
    folder = tmp_path / "history"
    folder.mkdir(exist_ok=True)
    try:
        data = json_mod.dumps({"schema": "cluster-preflight/results", "version": 1,
                               "run": doc, "results": doc}).encode()
    except (ValueError, UnicodeEncodeError):
        data = b"{"
    (folder / name).write_bytes(gzip.compress(data) if gz else data)
    notes: list[str] = []
    found = history.previous(folder, "c", notes)
    assert found is None or found["run"].get("cluster") == "c"


@FAST
@given(depth=st.integers(min_value=1, max_value=3000))
def test_facts_of_any_nesting_are_read_or_refused_in_one_line(tmp_path, depth):
    from preflight.facts import store
    path = tmp_path / "facts.json"
    path.write_text('{"n1": {"reach": {"ok": true}, "env": ' + '[' * depth + ']' * depth + '}}')
    message = _error_of(lambda: store.load_replay(path))
    assert (message is None) == (depth + 2 <= 64), message  # n1 and env are 2 levels
