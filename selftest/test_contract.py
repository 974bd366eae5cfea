"""The facts contract: a broken or ill-shaped section errors exactly the checks that read
it, on exactly that node, with the node-side cause; never a pass, never a traceback."""

from __future__ import annotations

import pytest

from preflight.facts import contract
from selftest import recorded
from selftest.suites import replay

NODES = [f"node-{i}" for i in range(1, 5)]
TRACEBACK_WORDS = ("Traceback", "AttributeError", "TypeError", "KeyError", "INTERNALERROR")


def test_recorded_probe_output_fits_every_shape():
    checked = contract.validate(recorded.healthy(), contract.Expect())
    assert dict.get(checked, "broken") == {}
    assert set(contract.SECTIONS) <= set(checked)


@pytest.mark.parametrize(("path", "value", "section", "cause"), [
    ("reach.ok", "false", "reach", "reach.ok: Input should be a valid boolean"),
    ("env.conda.3.version", 2, "env", "env.conda[3].version: Input should be a valid string"),
    ("runtime.torch.device_count", "0", "runtime", "Input should be a valid integer"),
    ("net.peers", None, "net", "net.peers: Input should be a valid dictionary"),
    ("sync", None, "sync", "is null although cluster.yaml asks for it"),
    ("ssh", None, "ssh", "is null although cluster.yaml asks for it"),
    ("miniconda", [], "miniconda", "Input should be a valid dictionary"),
    ("probe_errors", {"env": "StopIteration: x"}, "env", "failed on the node: StopIteration"),
])
def test_each_misfit_names_its_section_and_cause(path, value, section, cause):
    checked = contract.validate(recorded.set_path(recorded.healthy(), path, value),
                                contract.Expect())
    if section == "reach":
        assert checked["reach"]["ok"] is False
        assert cause in checked["reach"]["reason"]
        return
    assert set(dict.get(checked, "broken")) == {section}
    assert cause in contract.broken_cause(checked, (section,))
    with pytest.raises(contract.SectionBroken, match=section):
        checked[section]


def test_node_sent_controller_keys_are_replaced():
    doc = recorded.healthy()
    doc["broken"] = {}
    doc["probe_errors"] = {"gpu": "OSError: /dev unreadable"}
    checked = contract.validate(doc, contract.Expect())
    assert set(dict.get(checked, "broken")) == {"gpu"}


def test_null_optional_section_is_right_when_cluster_yaml_turns_it_off():
    doc = recorded.set_path(recorded.healthy(), "ssh", None)
    checked = contract.validate(doc, contract.Expect(frozenset({"ssh"})))
    assert dict.get(checked, "broken") == {}


def test_nodes_outside_the_selection_are_ignored_and_named():
    docs = recorded.fleet(["node-1", "node-2", "intruder"])
    checked, ignored = contract.validate_all(docs, contract.Expect(), ["node-1", "node-2",
                                                                      "node-3"])
    assert ignored == ["intruder"]
    assert set(checked) == {"node-1", "node-2", "node-3"}
    assert checked["node-3"]["reach"] == {"ok": False, "executions": 0,
                                          "reason": "no facts were gathered for it"}


def test_usable_leaves_out_nodes_whose_section_is_broken():
    docs = {"a": contract.validate(recorded.healthy("a"), contract.Expect()),
            "b": contract.validate(recorded.set_path(recorded.healthy("b"), "env.root", 1),
                                   contract.Expect())}
    assert set(contract.usable(docs, "env")) == {"a"}
    assert set(contract.usable(docs, "ssh")) == {"a", "b"}


def failing_cases(run) -> dict[str, str]:
    return {case: outcome for case, outcome in run.cases.items()
            if outcome in ("failed", "error")}


@pytest.mark.parametrize(("path", "value", "errors", "words"), [
    ("env.conda.3.version", 2, "test_env_", "facts section 'env' does not fit its declared "
     "shape: env.conda[3].version"),
    ("probe_errors", {"env": "StopIteration: conda-meta/x.json"}, "test_env_",
     "facts section 'env' failed on the node: StopIteration: conda-meta/x.json"),
    ("sync", None, "test_sync_", "facts section 'sync' is null although cluster.yaml asks"),
    ("ssh", None, "test_ssh", "facts section 'ssh' is null"),
    ("runtime.ok", "yes", ("test_cuda_", "test_host_limits"),
     "facts section 'runtime' does not fit"),
])
def test_broken_section_errors_only_its_checks_on_only_its_node(tmp_path, path, value,
                                                                errors, words):
    docs = recorded.fleet(NODES)
    recorded.set_path(docs["node-3"], path, value)
    run = replay(tmp_path, docs, "-n", "2")
    bad = failing_cases(run)
    assert bad, run.output[-2000:]
    assert all(case.endswith("[node-3]") for case in bad), bad
    assert all(outcome == "error" for outcome in bad.values()), bad
    assert all(case.startswith(errors) or case.startswith("test_miniconda_env")
               or case.startswith("test_miniconda_permissions") for case in bad), bad
    assert words in next(iter(run.messages[c] for c in bad))
    assert not any(word in run.output for word in TRACEBACK_WORDS), run.output[-3000:]


def test_reach_ok_as_a_string_is_not_a_reached_node(tmp_path):
    docs = recorded.fleet(NODES)
    docs["node-2"]["reach"]["ok"] = "false"
    run = replay(tmp_path, docs)
    bad = failing_cases(run)
    assert {c.rsplit("[", 1)[1] for c in bad} == {"node-2]"}
    assert set(bad.values()) == {"error"}
    assert "reach.ok: Input should be a valid boolean" in run.messages[next(iter(bad))]


def test_facts_of_unlisted_nodes_do_not_vote(tmp_path):
    """Three extra documents with another numpy would outvote the real nodes."""
    docs = recorded.fleet(NODES[:2])
    numpy = next(i for i, r in enumerate(docs["node-1"]["env"]["conda"])
                 if r["name"] == "numpy")
    for extra in ("x-1", "x-2", "x-3"):
        docs[extra] = recorded.set_path(recorded.healthy(extra), f"env.conda.{numpy}.version",
                                        "0.1")
    run = replay(tmp_path, docs, "-m", "env", names=NODES[:2])
    assert run.rc == 0, run.output[-2000:]
    assert "facts of 3 node(s) outside this run's selection ignored: x-1, x-2, x-3" in run.output


def test_broken_and_duplicate_records_are_findings(tmp_path):
    docs = recorded.fleet(NODES)
    env = docs["node-4"]["env"]
    env["conda_broken"] = [{"file": "/opt/miniconda/envs/pytorch-dist/conda-meta/"
                            "nccl-2.18-h0.json", "error": "ValueError: no JSON value at offset 0"}]
    env["conda"].append({**env["conda"][0], "version": "9.9", "file": "stale-9.9-0.json"})
    run = replay(tmp_path, docs, "-m", "env")
    assert set(failing_cases(run)) == {"test_env_records_intact[node-4]"}
    message = run.messages["test_env_records_intact[node-4]"]
    assert "nccl-2.18-h0.json a complete JSON record, found ValueError: no JSON value" in message
    assert f"one record for {env['conda'][0]['name']}" in message
    assert "stale-9.9-0.json (9.9)" in message


def test_every_probe_section_has_a_declared_shape_and_back():
    """A section registers itself on the node side (@section) and declares its shape
    here: the two lists are the same, so neither can be forgotten."""
    from selftest.builders import PROBE
    registered = [name for name, _ in PROBE.SECTIONS]
    assert sorted(registered) == sorted(contract.SECTIONS)
    # login before miniconda: miniconda reports the login shell's conda.sh result
    assert registered.index("login") < registered.index("miniconda")
