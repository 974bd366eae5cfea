"""Host readiness from synthetic facts: healthy passes; a small or full /dev/shm and a
full disk are named with what was expected and found; missing facts are not checked."""

import pytest

from preflight.checks import host
from preflight.checks.findings import NotChecked
from preflight.config.clusterfile import HostSettings
from preflight.facts import contract
from selftest import recorded
from selftest.builders import NODE, node
from selftest.suites import REPO
from selftest.test_probe import load_probe_module

GIB = 1 << 30


def space(total: int, free: int, inodes: int = 1000, inodes_free: int = 900, **extra) -> dict:
    return {"size": total, "free": free, "inodes": inodes, "inodes_free": inodes_free, **extra}


def facts(shm=None, **disks) -> dict:
    return {"node": {"shm": shm or space(12 * GIB, 12 * GIB),
                     "disks": disks or {"tmp": space(100 * GIB, 50 * GIB, path="/tmp")}}}


def test_a_healthy_host_passes():
    assert host.shm(NODE, facts(), HostSettings()) == []
    assert host.disk(NODE, facts(), HostSettings()) == []


def test_a_tiny_shm_is_named_with_nccl_guidance():
    found = host.shm(NODE, facts(shm=space(1 << 20, 1 << 20)), HostSettings())
    assert str(found[0]).startswith("w1: shared memory: expected /dev/shm of at least 1 GiB, "
                                    "found 1 MiB")
    assert "--shm-size=1g" in found[0].hint
    assert found[0].severity == "drain"


def test_a_full_shm_is_named_with_what_is_free():
    found = host.shm(NODE, facts(shm=space(2 * GIB, 100 << 20)), HostSettings())
    assert "found 100 MiB free of 2 GiB" in str(found[0])


def test_a_full_tmp_is_named_by_its_role_and_path():
    found = host.disk(NODE, facts(tmp=space(GIB, 0, path="/tmp"),
                                  home=space(100 * GIB, 50 * GIB, 1000, 10, path="/root")),
                      HostSettings())
    assert [f.check for f in found] == ["disk space", "disk inodes"]
    assert "on /tmp (/tmp)" in found[0].expected
    assert "found 0 B free of 1 GiB (0.0 %)" in str(found[0])
    assert "the home directory (/root)" in found[1].expected


def test_percent_threshold_applies_on_a_large_disk():
    big = space(100 * 1024 * GIB, 2 * 1024 * GIB, path="/scratch")  # 2 % of 100 TiB free
    found = host.disk(NODE, facts(workspace=big), HostSettings())
    assert "at least 3 TiB free on the workspace (/scratch)" in found[0].expected


def test_facts_without_host_readiness_are_not_checked():
    with pytest.raises(NotChecked, match="/dev/shm not checked"):
        host.shm(NODE, {"node": {}}, HostSettings())
    with pytest.raises(NotChecked, match="disk space not checked"):
        host.disk(NODE, {"node": {}}, HostSettings())


def test_a_hostile_shm_shape_breaks_the_node_section():
    checked = contract.validate(recorded.set_path(recorded.healthy(), "node.shm", "lots"),
                                contract.Expect())
    with pytest.raises(contract.SectionBroken, match="node"):
        checked["node"]


def limits_facts(nofile=(65536, 65536), memlock=(65536, 65536), rdma=False) -> dict:
    return {"runtime": {"limits": {"nofile": list(nofile), "nproc": [-1, -1],
                                   "memlock": list(memlock)}},
            "health": {"ib": {"present": rdma, "devices": {}}}}


def test_limits_a_job_gets():
    assert host.limits(NODE, limits_facts(), HostSettings()) == []
    found = host.limits(NODE, limits_facts(nofile=(1024, 4096)), HostSettings())
    assert str(found[0]).startswith("w1: limits: expected nofile at least 65536 for a job "
                                    "(host.nofile_min), found nofile 1024 (hard 4096)")
    rdma = host.limits(NODE, limits_facts(rdma=True), HostSettings())
    assert "memlock unlimited where RDMA devices exist" in rdma[0].expected
    assert host.limits(NODE, limits_facts(memlock=(-1, -1), rdma=True), HostSettings()) == []
    with pytest.raises(NotChecked, match="limits not checked"):
        host.limits(NODE, {"runtime": {}, "health": {}}, HostSettings())


def fleet_links(**odd) -> dict:
    docs = {}
    for i in range(1, 5):
        name = f"w{i}"
        links = {"lo": {"mtu": 65536, "speed": None, "operstate": "unknown"},
                 "eth0": {"mtu": 1500, "speed": 10000, "operstate": "up"},
                 "veth9": {"mtu": 9000, "speed": 10000, "operstate": "up"}}
        links["eth0"] = {**links["eth0"], **odd.get(name, {})}
        docs[name] = {"reach": {"ok": True}, "net": {"links": links}}
    return docs


def test_the_odd_mtu_is_named_and_virtual_links_are_not_judged():
    links = host.Links(fleet_links(w3={"mtu": 1400}), None)
    assert links.odd(NODE) == []  # w1: the usual
    found = links.odd(node("w3"))
    assert [str(f).split(" (")[0] for f in found] == [
        "w3: link mtu: expected eth0 mtu 1500, as on 3 nodes, found mtu 1400"]
    assert found[0].severity == "drain"


def test_nccl_mtu_is_the_mtu_every_node_must_have():
    found = host.Links(fleet_links(), 9000).odd(NODE)
    assert "eth0 MTU 9000 (nccl.mtu)" in found[0].expected


def timed(sent=100.0, received=100.5, started=100.1, ended=100.4) -> dict:
    return {"reach": {"ok": True, "sent": sent, "received": received},
            "probe_started": started, "probe_ended": ended}


def test_a_clock_within_the_round_trip_passes():
    assert host.clock(NODE, timed(), HostSettings()) == []
    # 0.9 s ahead at the bound's near end: within 1 s
    assert host.clock(NODE, timed(started=101.0, ended=101.4), HostSettings()) == []


def test_a_clock_ahead_or_behind_beyond_the_bound_is_named_with_its_interval():
    ahead = host.clock(NODE, timed(started=105.1, ended=105.4), HostSettings())
    assert str(ahead[0]).startswith("w1: clock: expected within 1 s of the controller's "
                                    "(host.clock_max_offset_s), found 4.90 s or more ahead "
                                    "(between +4.90 and +5.10 s)")
    behind = host.clock(NODE, timed(started=90.1, ended=90.4), HostSettings())
    assert "9.90 s or more behind" in behind[0].found


def test_a_slow_round_trip_widens_the_bound_and_never_makes_a_finding():
    # sent at 100, answered 30 s later: a node 5 s ahead cannot be told from one in sync
    assert host.clock(NODE, timed(received=130.0, started=105.0, ended=110.0),
                      HostSettings()) == []


def test_no_timestamps_or_hostile_ones_are_not_checked():
    with pytest.raises(NotChecked, match="clock not checked"):
        host.clock(NODE, {"reach": {"ok": True}}, HostSettings())
    with pytest.raises(NotChecked, match="clock not checked"):
        host.clock(NODE, timed(started="soon"), HostSettings())


def hosts(**odd) -> dict:
    docs = {}
    for i in range(1, 5):
        name = f"w{i}"
        tun = {"thp": "madvise", "numa_balancing": "0", "cpu_governor": None}
        tun.update(odd.get(name, {}))
        docs[name] = {"reach": {"ok": True}, "node": {
            "kernel": "6.1.0-18-amd64", "os": "Debian GNU/Linux 12 (bookworm)",
            "glibc": "glibc 2.36", "tunables": tun}}
    return docs


def test_an_odd_tunable_is_named_with_the_drift_table():
    same = host.Sameness(hosts(w3={"thp": "always"}), HostSettings())
    assert same.odd(NODE) == ([], "")
    found, drift = same.odd(node("w3"))
    assert [str(f).split(" (nodes")[0] for f in found] == [
        "w3: same host on every node: expected thp madvise, as on w[1-2,4], found thp always"]
    assert drift.splitlines()[2].split() == ["thp", "madvise", "madvise", "always", "madvise"]
    assert host.Sameness(hosts(w3={"thp": "always"}),
                         HostSettings(may_differ=["thp"])).odd(node("w3")) == ([], "")


def test_a_named_tunable_is_judged_on_every_node():
    found, _ = host.Sameness(hosts(), HostSettings(tunables={"cpu_governor": "performance"})
                             ).odd(NODE)
    assert [str(f).split(" (set")[0] for f in found] == [
        "w1: host setting: expected cpu_governor performance (host.tunables), found "
        "cpu_governor (not exposed)"]


def test_stray_work_is_named():
    clean_node = {"node": {"stray": {"d_state": [], "master_port": {"port": 29500,
                                                                    "listening": False}}}}
    assert host.stray(NODE, clean_node) == []
    busy = {"node": {"stray": {"d_state": [{"pid": 4242, "comm": "python"}],
                               "master_port": {"port": 29500, "listening": True}}}}
    found = host.stray(NODE, busy)
    assert [f.found for f in found] == ["1: python (4242)",
                                        "a process already listens on 29500"]
    with pytest.raises(NotChecked, match="stray work not checked"):
        host.stray(NODE, {"node": {}})


LSPCI = REPO / "fixtures" / "lspci"


def test_acs_src_valid_found_by_the_probe_parser_and_named():
    probe = load_probe_module()
    off = probe.acs_src_valid((LSPCI / "switch-acs-off.txt").read_text())
    on = probe.acs_src_valid((LSPCI / "switch-acs-srcvalid.txt").read_text())
    assert off == []
    assert on == ["17:00.0 PCI bridge: Broadcom / LSI PEX890xx PCIe Gen 5 Switch (rev b0) "
                  "(prog-if 00 [Normal decode])"]
    assert host.acs(NODE, {"gpu": {"acs": {"checked": True, "src_valid": off}}}) == []
    found = host.acs(NODE, {"gpu": {"acs": {"checked": True, "src_valid": on}}})
    assert "SrcValid+ on 1: 17:00.0 PCI bridge" in found[0].found
    with pytest.raises(NotChecked, match="lspci shows ACS control only to root"):
        host.acs(NODE, {"gpu": {"acs": {"checked": False,
                                        "reason": "lspci shows ACS control only to root"}}})


def test_iommu_judged_only_where_set():
    facts_pt = {"node": {"cmdline_iommu": ["intel_iommu=on", "iommu=pt"]}}
    with pytest.raises(NotChecked, match="this node's mode: pt"):
        host.iommu(NODE, facts_pt, HostSettings())
    assert host.iommu(NODE, facts_pt, HostSettings(iommu="pt")) == []
    found = host.iommu(NODE, {"node": {"cmdline_iommu": []}}, HostSettings(iommu="pt"))
    assert found[0].found == "default (no IOMMU words on the kernel command line)"


def test_an_unsynchronised_time_daemon_is_named_even_within_the_bound():
    doc = timed()
    doc["node"] = {"timesync": {"daemon": "chronyd", "synchronized": False}}
    found = host.clock(NODE, doc, HostSettings())
    assert [f.expected for f in found] == ["chronyd synchronised"]
    doc["node"]["timesync"] = {"daemon": None, "synchronized": None}
    assert host.clock(NODE, doc, HostSettings()) == []
