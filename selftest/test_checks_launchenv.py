"""The launch environment's sameness: the odd node named with the usual value and where
it is; an allowed variable is not judged; facts without it are not checked, never passed."""

import pytest

from preflight.checks import launchenv
from preflight.checks.findings import NotChecked
from preflight.facts import contract
from selftest import recorded
from selftest.builders import node

NAMES = ["node-1", "node-2", "node-3", "node-4"]


def fleet(**odd) -> dict:
    docs = recorded.fleet(NAMES)
    for name, doc in docs.items():
        doc["runtime"]["launch_env"] = {"PATH": "/usr/bin:/bin", **odd.get(name, {})}
    return {n: contract.validate(d, contract.Expect()) for n, d in docs.items()}


def test_the_same_everywhere_passes():
    envs = launchenv.LaunchEnvs(fleet(), [])
    assert all(envs.odd(node(n)) == ([], "") for n in NAMES)


def test_a_library_path_on_one_node_is_named_there_only():
    envs = launchenv.LaunchEnvs(fleet(**{"node-3": {"LD_LIBRARY_PATH": "/opt/nccl-2.18/lib"}}),
                                [])
    found, drift = envs.odd(node("node-3"))
    assert [str(f).split(" (set in")[0] for f in found] == [
        "node-3: same launch environment: expected LD_LIBRARY_PATH=(unset), as on "
        "node-[1-2,4], found LD_LIBRARY_PATH=/opt/nccl-2.18/lib"]
    assert found[0].severity == "investigate"
    # the drift as a table, as the env's: one row per differing variable, a column a node
    assert drift.splitlines()[0] == "drift (variables that differ between nodes):"
    assert drift.splitlines()[2].split() == ["LD_LIBRARY_PATH", "(unset)", "(unset)",
                                             "/opt/nccl-2.18/lib", "(unset)"]
    assert all(envs.odd(node(n)) == ([], "") for n in ("node-1", "node-2", "node-4"))


def test_a_torchrun_found_elsewhere_on_one_node_is_a_row_of_the_vote():
    facts = fleet()
    for name, f in facts.items():
        f["runtime"]["which"] = {"python": None, "torchrun": {
            "path": "/usr/local/bin/torchrun", "real": "/opt/other/bin/torchrun"
            if name == "node-2" else "/opt/conda/envs/x/bin/torchrun"}}
    found, _ = launchenv.LaunchEnvs(facts, []).odd(node("node-2"))
    assert "found (torchrun on PATH)=/opt/other/bin/torchrun" in str(found[0])


def test_variables_allowed_to_differ_are_not_judged():
    facts = fleet(**{"node-3": {"PATH": "/scratch/bin:/usr/bin:/bin"}})
    assert launchenv.LaunchEnvs(facts, ["PATH"]).odd(node("node-3")) == ([], "")
    assert launchenv.LaunchEnvs(facts, []).odd(node("node-3"))[0]


def test_facts_without_a_launch_environment_are_not_checked():
    facts = fleet()
    del facts["node-2"]["runtime"]["launch_env"]
    with pytest.raises(NotChecked, match="launch environment not checked"):
        launchenv.LaunchEnvs(facts, []).odd(node("node-2"))
