"""The node probe runs here, without SSH, on a fake Miniconda prefix: valid JSON, every
section present, and a broken area reported as a fact rather than crashing the probe."""

import json
import subprocess
import sys

import pytest

from preflight.launchers import probe as facts
from selftest.builders import NODE


def run_probe(node, runtime=True) -> dict:
    command = facts.probe_command(node, facts.probe_script(node, runtime=runtime))
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60,
                          check=True)
    return json.loads(done.stdout)


@pytest.fixture
def fake_node(tmp_path):
    prefix = tmp_path / "miniconda"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "etc" / "profile.d").mkdir(parents=True)
    (prefix / "etc" / "profile.d" / "conda.sh").write_text("conda() { :; }\n")
    env = prefix / "envs" / "dist"
    (env / "conda-meta").mkdir(parents=True)
    (env / "conda-meta" / "numpy-1.0-py_0.json").write_text(json.dumps(
        {"name": "numpy", "version": "1.0", "build": "py_0", "build_number": 0,
         "channel": "https://conda.anaconda.org/conda-forge/linux-64", "subdir": "linux-64"}))
    site = env / "lib" / "python3.11" / "site-packages" / "torch-2.0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.0\n\nbody\n")
    (site / "INSTALLER").write_text("pip\n")
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python").symlink_to(sys.executable)
    return NODE.__class__(**{**NODE.__dict__, "miniconda": str(prefix)})


def test_probe_reports_every_section(fake_node):
    found = run_probe(fake_node, runtime=False)
    assert found["probe_version"] == 2
    assert found["probe_errors"] == {}
    assert found["miniconda"]["layout"]["conda-meta"]["exists"]
    assert not found["miniconda"]["layout"]["bin/conda"]["exists"]
    assert found["miniconda"]["base_python"]["runs"]
    assert found["miniconda"]["conda_sh"]["rc"] == 0
    assert found["env"]["conda"][0]["name"] == "numpy"
    assert found["env"]["pip"] == [{"name": "torch", "version": "2.0", "installer": "pip",
                                    "path": found["env"]["pip"][0]["path"]}]
    assert found["runtime"]["skipped"]


def test_broken_env_python_is_a_fact_not_a_crash(fake_node):
    found = run_probe(fake_node, runtime=True)  # the fake env has no bin/python
    assert found["runtime"]["ok"] is False
    assert "does not exist" in found["runtime"]["error"]
    assert found["env"]["conda"]


def load_probe_module():
    from preflight import remote
    return remote.probe_module()


RECORD = {"name": "pytorch", "version": "2.0.1", "build": "py3.9_cuda11.8_cudnn8.7.0_0",
          "build_number": 0, "channel": "https://conda.anaconda.org/pytorch/linux-64",
          "subdir": "linux-64", "url": None, "md5": "0f3a", "sha256": None,
          "files": ["lib/a.py"] * 3, "paths_data": {"paths": [{"_path": "x", "name": "decoy"}]}}


@pytest.mark.parametrize("dump", [
    lambda d: json.dumps(d, indent=2, sort_keys=True),  # conda: files before name
    lambda d: json.dumps(d, indent=2),                   # rattler: insertion order
    json.dumps,                                          # compact: the slow path
], ids=["conda", "rattler", "compact"])
def test_conda_record_scalars_whatever_the_writer(dump):
    probe = load_probe_module()
    wanted = {k: RECORD[k] for k in probe.RECORD_KEYS}
    assert probe.conda_record(dump(RECORD)) == wanted


def test_probe_json_encoder_round_trips():
    probe = load_probe_module()
    value = {"s": 'quote " back \\ nl \n tab \t bell \x07 é 😀', "n": [1, -2, 3.5, None, True,
             False], "nan": float("nan"), "t": ("a",), 7: {}}
    decoded = json.loads(probe.to_json(value))
    assert decoded == {"s": value["s"], "n": value["n"], "nan": None, "t": ["a"], "7": {}}


@pytest.mark.parametrize(("text", "error"), [
    ("", "no JSON value at offset 0"),
    ('{"name": "nccl", "version": "2.18', "Unterminated string"),
    ('{"name": "nccl"}', "no 'version' in the record"),
    ("[1, 2]", "a record is a JSON object"),
    ('{"name": "a", "version": "1", "build": "0"} x', "extra data at offset"),
], ids=["empty", "truncated", "incomplete", "list", "trailing"])
def test_conda_record_refuses_what_conda_would_refuse(text, error):
    with pytest.raises(ValueError, match=error):
        load_probe_module().conda_record(text)


def test_conda_records_name_each_broken_file_and_keep_the_rest(tmp_path):
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    (meta / "good-1-0.json").write_text(json.dumps(RECORD))
    (meta / "empty-1-0.json").write_text("")
    (meta / "cut-1-0.json").write_text(json.dumps(RECORD)[:50])
    records, broken = load_probe_module().conda_records(str(tmp_path))
    assert [r["file"] for r in records] == ["good-1-0.json"]
    assert sorted(b["file"].rsplit("/", 1)[1] for b in broken) == ["cut-1-0.json",
                                                                     "empty-1-0.json"]
    assert all("Error" in b["error"] for b in broken)


def test_probe_run_reports_output_exit_code_and_timeout():
    probe = load_probe_module()
    done = probe.run(["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
    assert (done["rc"], done["stdout"], done["stderr"]) == (3, "out\n", "err\n")
    assert probe.run(["/nonexistent/python"], 10)["rc"] == 127
    slow = probe.run(["sh", "-c", "sleep 30 & sleep 30"], 0.3)
    assert slow["rc"] == 124
    assert "timed out" in slow["stderr"]


@pytest.mark.parametrize("text", ['{"a": [1, 2.5, null, true], "b": "\\u00e9\\n"}', "[]", '"x"',
                                  "-3", '{"nested": {"k": [{"z": false}]}}'])
def test_probe_decoder_matches_json(text):
    assert load_probe_module().loads(text) == json.loads(text)


@pytest.mark.parametrize(("name", "pattern", "hit"), [
    ("50-cloud.conf", "*.conf", True), ("50-cloud.conf.bak", "*.conf", False),
    ("a.conf", "?.conf", True), ("ab.conf", "?.conf", False), ("x", "*", True)])
def test_probe_wildcard_agrees_with_fnmatch(name, pattern, hit):
    import fnmatch
    assert load_probe_module().wildcard(name, pattern) is hit is fnmatch.fnmatch(name, pattern)


def test_every_section_runs_without_an_error_with_every_option_on(fake_node):
    """A section that raises is only a skip-with-reason in a report: here it must not
    raise at all, with every option cluster.yaml can turn on (jupyter, ssh, the master
    port, sha256 verification)."""
    script = facts.probe_script(fake_node, runtime=False, jupyter=True, verify="sha256",
                                master_port=29500, peers=["localhost"],
                                ssh={"identity_file": "~/.ssh/id_ed25519",
                                     "client_config": "~/.ssh/config"})
    done = subprocess.run(["sh", "-c", facts.probe_command(fake_node, script)],
                          capture_output=True, text=True, timeout=60, check=True)
    found = json.loads(done.stdout)
    assert found["probe_errors"] == {}
    assert {"kernels", "servers", "processes", "listening"} <= set(found["jupyter"])


FAKE_SSH = """#!/bin/sh
# a stand-in ssh client: the target is the argument before the command ("true")
for a; do prev=$target; target=$a; done
case "$prev" in
  good*) exit 0 ;;
  bad) echo "Host key verification failed." >&2; exit 255 ;;
  *) sleep 30 ;;
esac
"""


def test_peer_logins_run_beside_the_probe_and_answer_for_every_target(fake_node, tmp_path):
    """Started before the first section, at most at_once in flight, collected last: each
    target is "ok", ssh's own last line with its exit code, or the bound that cut it."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "ssh").write_text(FAKE_SSH)
    (folder / "ssh").chmod(0o755)
    targets = ["good-1", "bad", "hangs", "good-2", "good-3"]
    script = facts.probe_script(fake_node, runtime=False, peer_logins={
        "targets": targets, "timeout": 1, "at_once": 2, "bound": 3})
    done = subprocess.run(["sh", "-c", facts.probe_command(fake_node, script)],
                          capture_output=True, text=True, timeout=60, check=True,
                          env={"PATH": f"{folder}:/usr/bin:/bin", "HOME": str(tmp_path)})
    found = json.loads(done.stdout)
    assert found["probe_errors"] == {}
    tried = found["peer_logins"]["tried"]
    # "hangs" holds one of the two slots; the rest go through the other. A login the
    # bound cut is not a failed one: no blame without an answer
    late = "not checked: no answer within the probe's 3 s for logins"
    assert tried == {"good-1": "ok", "bad": "exit 255: Host key verification failed.",
                     "hangs": late, "good-2": "ok", "good-3": "ok"}
    assert 3 <= found["peer_logins"]["seconds"] < 10
    assert found["probe_seconds"] < 10


def test_a_node_without_an_ssh_client_says_so_for_every_target():
    module = load_probe_module()
    module.ARGS["peer_logins"] = {"targets": ["a", "b"], "timeout": 1, "at_once": 64,
                                  "bound": 3}
    module.which = lambda name, *extra: None
    module.start_logins()
    assert module.peer_logins() == {
        "tried": dict.fromkeys(["a", "b"], "no ssh client on this node's PATH or in /usr/bin"),
        "seconds": 0.0}


def test_a_section_keeps_within_the_probes_own_bound():
    """The env's Python (and the logins) get what they ask for, or what is left of the
    controller's deadline for the whole probe less a margin: a slow node returns its
    facts with that section timed out, instead of no facts at all."""
    import time
    module = load_probe_module()
    assert module.time_left(90) == 90  # no bound given: as asked
    module.ARGS["probe_bound"] = 30
    module.STARTED = time.time() - 20
    assert 4.5 < module.time_left(90) <= 5  # 30 - 20 - the 5-s margin
    assert module.time_left(3) == 3
    module.STARTED = time.time() - 100
    assert module.time_left(90) == 1.0
