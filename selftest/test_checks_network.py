"""Names, interfaces and the master port, on synthetic facts: NCCL's own reading of the
interface lists, and peer names checked in the order a connect uses them."""

import pytest

from preflight.checks import network
from preflight.config.clusterfile import NcclSettings
from selftest import recorded
from selftest.builders import node

INTERFACES = {"eth0": "up", "eth1": "down", "ib0": "up", "docker0": "up", "lo": "unknown"}


@pytest.mark.parametrize(("value", "chosen"), [
    ("eth", ["eth0", "eth1"]),
    ("eth0,ib", ["eth0", "ib0"]),
    ("=eth1", ["eth1"]),
    ("=eth", []),
    ("^docker,lo", ["eth0", "eth1", "ib0"]),
    ("^=eth0", ["docker0", "eth1", "ib0"]),
])
def test_interface_lists_read_as_nccl_reads_them(value, chosen):
    assert network.selected(value, INTERFACES)[0] == chosen


class FakeCluster:
    def __init__(self, **env):
        self.nccl = NcclSettings(env=env)


def facts_with(interfaces=None, peers=None, own=None) -> dict:
    doc = recorded.healthy("n1")
    doc["net"]["interfaces"] = interfaces or INTERFACES
    doc["net"]["peers"] = peers or {}
    doc["net"]["hostname_addrs"] = own or ["10.0.0.1"]
    return doc


@pytest.mark.parametrize(("env", "fails"), [
    ({"NCCL_SOCKET_IFNAME": "eth"}, False),  # eth0 is up: a prefix is enough
    ({"NCCL_SOCKET_IFNAME": "=eth1"}, True),  # exactly eth1, and it is down
    ({"GLOO_SOCKET_IFNAME": "bond"}, True),   # no such interface
    ({"NCCL_SOCKET_IFNAME": "^eth,ib,docker"}, True),  # nothing but lo left
])
def test_interfaces_up_finding_names_the_variable(env, fails):
    found = network.interfaces_up(node("n1"), facts_with(), FakeCluster(**env))
    assert bool(found) == fails
    if fails:
        assert next(iter(env)) in str(found[0])


def test_peer_resolving_first_to_a_stale_address_fails_and_says_why():
    facts = facts_with(peers={"n2": ["10.0.0.250", "10.0.0.2"], "n3": ["10.0.0.3"],
                              "n4": "cannot resolve: [Errno -2] Name or service not known"})
    found = network.names_resolve(node("n1"), facts, {"n2": "10.0.0.2", "n3": "10.0.0.3",
                                                      "n4": "10.0.0.4"})
    assert [str(f) for f in found] == [
        "n1: peer name: expected n2 -> 10.0.0.2, found n2 -> 10.0.0.250, 10.0.0.2 "
        "(10.0.0.2 is there but not first: a connect dials 10.0.0.250)",
        "n1: peer name: expected n4 resolves, found cannot resolve: [Errno -2] Name or "
        "service not known"]


def test_peer_known_by_name_only_just_has_to_resolve():
    facts = facts_with(peers={"n2": ["192.0.2.7"]})
    assert network.names_resolve(node("n1"), facts, {"n2": "n2"}) == []


def test_own_hostname_on_loopback_fails():
    found = network.names_resolve(node("n1"), facts_with(own=["127.0.1.1"]), {})
    assert "own hostname" in str(found[0])
    assert "127.0.1.1" in str(found[0])
