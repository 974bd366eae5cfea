"""Node-to-node logins: about 2N by default, and the failed ones blamed on the right end."""

import pytest

from preflight.checks import logins, ssh
from preflight.launchers.probe import ring_plan
from selftest.builders import node

NAMES = [f"n{i}" for i in range(1, 7)]


@pytest.mark.parametrize("count", [2, 3, 16, 2000])
def test_ring_plan_costs_about_two_logins_per_node(count):
    names = [f"n{i}" for i in range(count)]
    edges = ring_plan(names, names[0])
    count_logins = sum(len(t) for t in edges.values())
    assert count_logins <= 2 * count
    assert all(len(targets) >= 1 for targets in edges.values())  # every node a source
    inbound = {t for targets in edges.values() for t in targets}
    assert inbound == set(names)  # and every node a target


def test_full_plan_is_every_pair():
    edges = ring_plan(NAMES, "n1", full=True)
    assert sum(len(t) for t in edges.values()) == len(NAMES) * (len(NAMES) - 1)


def result_with(failures: dict[tuple[str, str], str], full: bool = False) -> dict:
    edges = ring_plan(NAMES, "n1", full=full)
    return {s: {t: failures.get((s, t), "ok") for t in targets} for s, targets in edges.items()}


def test_a_target_nobody_can_log_in_to_is_blamed_not_its_sources():
    dead = "exit 255: Connection timed out during banner exchange"
    blamed = logins.blame(result_with({("n1", "n4"): dead, ("n3", "n4"): dead}))
    assert set(blamed) == {"n4"}
    assert {(d, p) for d, p, _ in blamed["n4"]} == {("into", "n1"), ("into", "n3")}


def test_a_source_whose_key_works_nowhere_is_blamed_not_its_target():
    denied = "exit 255: Permission denied (publickey)"
    blamed = logins.blame(result_with({("n3", "n4"): denied}))
    assert blamed == {"n3": [("from", "n4", denied)]}


def test_a_launcher_that_reaches_nobody_is_blamed_alone():
    bad = {("n1", t): "exit 255: Host key verification failed" for t in NAMES[1:]}
    assert set(logins.blame(result_with(bad))) == {"n1"}


def test_one_bad_link_between_healthy_nodes_names_both_ends():
    blamed = logins.blame(result_with({("n2", "n5"): "exit 255: reset"}, full=True))
    assert set(blamed) == {"n2", "n5"}


def test_unreachable_nodes_are_not_checked_never_fine():
    edges = ring_plan(NAMES[:3], "n1")
    result = logins.assemble(edges, dict.fromkeys(NAMES[:3], "down"), {}, {})
    assert logins.blame(result) == {}
    assert logins.logins(result) == 0
    assert logins.unchecked(result)["n2"] == ["n1 -> n2: n1 is unreachable",
                                              "n2 -> n3: n2 is unreachable"]


def test_finding_says_which_way_the_login_failed():
    dead = "exit 255: banner"
    result = result_with({("n1", "n4"): dead, ("n3", "n4"): dead})
    tried = {"result": result, "blame": logins.blame(result), "logins": 7}
    found = [str(f) for f in ssh.node_to_node(node("n4"), tried)]
    assert found == ["n4: node-to-node ssh: expected ssh from n1 into this node works, found "
                     "exit 255: banner",
                     "n4: node-to-node ssh: expected ssh from n3 into this node works, found "
                     "exit 255: banner"]
    assert ssh.node_to_node(node("n1"), tried) == []
    assert "failed logins (7 tried):\nn1 -> n4: exit 255: banner" in ssh.failed_logins(tried)
