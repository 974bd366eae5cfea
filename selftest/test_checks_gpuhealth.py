"""GPU node health checks against the fixtures, each case failing exactly its own check on
its own node: nvidia-smi -q -x and nvlink -s (fixtures/nvidia-smi), kernel logs in
/dev/kmsg's record format (fixtures/kernel-log), /sys/class/infiniband dumps
(fixtures/infiniband). Kernel logs and IB trees go through the probe's own readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.checks import gpuhealth as health
from preflight.checks.findings import NotChecked, worst
from preflight.config.clusterfile import GpuHealthSettings
from selftest.builders import PROBE, SMI, gpu_facts
from selftest.builders import gpu_node as node
from selftest.suites import REPO

KMSG = REPO / "fixtures" / "kernel-log"
IB = REPO / "fixtures" / "infiniband"
SETTINGS = GpuHealthSettings()
NAMES = [f"w{i}" for i in range(1, 5)]


def ib_tree(dump: str, root: Path) -> dict:
    """The IB dump laid out as sysfs files, read by the probe's own ib_ports()."""
    for line in (IB / dump).read_text().splitlines():
        path, _, value = line.partition(":")
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(value + "\n")
    PROBE.IB_ROOT = str(root)
    try:
        return PROBE.ib_ports()
    finally:
        PROBE.IB_ROOT = "/sys/class/infiniband"


def facts_for(tmp: Path, *, smi: str = "h100x8-healthy.xml",
              nvlink: str | None = "h100x8-nvlink-healthy.txt", kmsg: str = "kmsg-healthy.txt",
              ib: str | None = "ndr8-healthy.txt", name: str = "w1") -> dict:
    facts = gpu_facts(smi, name=name)
    folder = tmp / name
    folder.mkdir(exist_ok=True)
    facts["health"] = {
        "nvlink": {"rc": 0, "text": (SMI / nvlink).read_text(), "error": ""} if nvlink else None,
        "xid": PROBE.kernel_xids(str(KMSG / kmsg)),
        "ib": ib_tree(ib, folder / "ib") if ib else {"present": False, "devices": {}},
        "nccl_conf": PROBE.nccl_conf({}, str(folder / "no-nccl.conf")), "dcgm": None}
    return facts


def fleet_with(tmp: Path, odd: dict) -> tuple[dict, health.Fleet]:
    """w1..w4 healthy, w3 with the `odd` fixtures."""
    facts = {n: facts_for(tmp, name=n, **(odd if n == "w3" else {})) for n in NAMES}
    return facts, health.Fleet(facts)


def test_healthy_h100_node_passes_every_check(tmp_path):
    facts, fleet = fleet_with(tmp_path, {})
    for name in NAMES:
        mine = node(name)
        assert health.pcie(mine, facts[name]) == []
        assert health.xids(mine, facts[name], SETTINGS) == []  # XID 13 is not on the list
        assert health.clocks(mine, facts[name], SETTINGS) == []
        assert health.ecc(mine, facts[name], SETTINGS) == []
        assert health.nvlink(mine, facts[name], fleet) == []
        assert health.ib(mine, facts[name], SETTINGS, fleet, "mlx5") == []
        assert health.same_picture(mine, fleet) == []
    assert fleet.nvlinks == 8 * 18
    assert fleet.ib_rate == 400


def test_degraded_pcie_link_names_the_gpu_and_its_link(tmp_path):
    facts, _ = fleet_with(tmp_path, {"smi": "h100x8-pcie-degraded.xml"})
    found = health.pcie(node("w3"), facts["w3"])
    assert [str(f) for f in found] == [
        "w3: PCIe link: expected Gen5 x16 (the link's max) on GPU 3 (00000000:5D:00.0), "
        "found Gen3 x8 (reseat the GPU or its riser)"]
    assert worst(found) == "drain"
    assert health.clocks(node("w3"), facts["w3"], SETTINGS) == []
    assert health.pcie(node("w1"), facts["w1"]) == []


def test_idle_gpu_with_a_trained_down_generation_is_not_blamed(tmp_path):
    facts = facts_for(tmp_path)
    gpu_text = facts["gpu"]["smi"]["text"].replace(
        "<current_link_gen>5</current_link_gen>", "<current_link_gen>1</current_link_gen>")
    facts["gpu"]["smi"]["text"] = gpu_text  # every GPU idle (gpu_idle Active) at Gen1
    assert health.pcie(node(), facts) == []


def test_xid_79_and_48_named_with_count_and_last_message(tmp_path):
    facts, _ = fleet_with(tmp_path, {"kmsg": "kmsg-xid-79-48.txt"})
    found = health.xids(node("w3"), facts["w3"], SETTINGS)
    assert [f.check for f in found] == ["XID 48", "XID 63", "XID 79"]
    assert "2 on PCI:0000:9a:00, last: pid='<unknown>', name=<unknown>, GPU has fallen " \
           "off the bus." in found[2].found
    assert {f.severity for f in found} == {"drain"}
    assert health.xids(node("w1"), facts["w1"], SETTINGS) == []


def test_unreadable_kernel_log_is_a_skip_with_the_reason_never_a_pass(tmp_path, monkeypatch):
    facts = facts_for(tmp_path)
    monkeypatch.setattr(PROBE, "run", lambda argv, timeout: {
        "rc": 1, "stdout": "", "stderr": "Failed to open journal: Permission denied"})
    facts["health"]["xid"] = PROBE.kernel_xids(str(tmp_path / "no-such-kmsg"))
    with pytest.raises(NotChecked, match=r"kernel log not readable .*no-such-kmsg: "
                       r"No such file or directory; journalctl: Failed to open journal"):
        health.xids(node(), facts, SETTINGS)


def test_thermal_and_power_throttling_named_per_gpu(tmp_path):
    facts, _ = fleet_with(tmp_path, {"smi": "h100x8-throttled.xml"})
    found = health.clocks(node("w3"), facts["w3"], SETTINGS)
    lines = [str(f) for f in found]
    assert any(line.startswith("w3: clock throttling: expected no throttle reason on GPU 5 "
                               "(00000000:AB:00.0)") and "hw_thermal_slowdown" in line
               for line in lines)
    assert any("temperature" in line and "GPU 5" in line and "found 86 C" in line
               for line in lines)
    assert any("hw_power_brake_slowdown" in line and "GPU 6" in line for line in lines)
    assert any(line.startswith("w3: power: ") and "found 699.12 W" in line for line in lines)
    assert worst(found) == "drain"  # the power brake is the board pulling clocks down
    assert health.pcie(node("w3"), facts["w3"]) == []


def test_sram_uncorrectable_ecc_is_a_drain(tmp_path):
    facts, _ = fleet_with(tmp_path, {"smi": "h100x8-sram-uncorrectable.xml"})
    found = health.ecc(node("w3"), facts["w3"], SETTINGS)
    assert [f.expected for f in found] == [
        "volatile sram_uncorrectable <= 0 on GPU 2 (00000000:3A:00.0)",
        "aggregate sram_uncorrectable <= 0 on GPU 2 (00000000:3A:00.0)"]
    assert worst(found) == "drain"


def test_nvlink_down_named_and_counted_against_peers(tmp_path):
    facts, fleet = fleet_with(tmp_path, {"nvlink": "h100x8-nvlink-down.txt"})
    found = health.nvlink(node("w3"), facts["w3"], fleet)
    assert [str(f) for f in found] == [
        "w3: NVLink: expected every link up on GPU 4, found link 7 inactive (17/18 up)",
        "w3: NVLink count: expected 144 active links (the cluster's plurality), found 143"]
    assert health.nvlink(node("w1"), facts["w1"], fleet) == []
    assert health.same_picture(node("w3"), fleet) == []  # the same links fitted


def test_no_nvlink_is_a_skip_that_says_why(tmp_path):
    facts, fleet = fleet_with(tmp_path, {})
    facts["w1"]["health"]["nvlink"] = None
    with pytest.raises(NotChecked, match="NVLink not checked: no nvidia-smi"):
        health.nvlink(node("w1"), facts["w1"], fleet)


@pytest.mark.parametrize(("dump", "check", "found"), [
    ("ndr8-port-down.txt", "IB port", "1: DOWN / 3: Disabled"),
    ("ndr8-port-init.txt", "IB port", "2: INIT / 5: LinkUp"),
    ("ndr8-half-rate.txt", "IB rate", "200 Gb/sec (2X NDR)"),
])
def test_ib_port_faults_fail_only_that_node(tmp_path, dump, check, found):
    facts, fleet = fleet_with(tmp_path, {"ib": dump})
    bad = health.ib(node("w3"), facts["w3"], SETTINGS, fleet, None)
    assert [(f.check, f.found, f.severity) for f in bad] == [(check, found, "drain")]
    for name in ("w1", "w2", "w4"):
        assert health.ib(node(name), facts[name], SETTINGS, fleet, None) == []


@pytest.mark.parametrize(("hca", "missing"), [
    ("mlx5_0,mlx5_9", "mlx5_9"), ("=mlx5_0:1,mlx5_7:2", "mlx5_7:2"), ("=mlx5", "mlx5"),
    ("mlx5", None), ("^mlx5_9", None), ("mlx5_0:1,mlx5_7", None)])
def test_nccl_ib_hca_names_only_devices_that_exist(tmp_path, hca, missing):
    facts, fleet = fleet_with(tmp_path, {})
    found = health.ib(node("w1"), facts["w1"], SETTINGS, fleet, hca)
    if missing is None:
        assert found == []
    else:
        assert [(f.check, f.expected.split(" present")[0]) for f in found] == \
            [("NCCL_IB_HCA", missing)]


def test_cpu_only_node_skips_every_gpu_group_with_one_reason(tmp_path):
    for group in health.GPU_GROUPS:
        with pytest.raises(NotChecked, match="declares no GPUs"):
            health.skip_unless(node(gpus=0), SETTINGS, group)
    health.skip_unless(node(gpus=0), SETTINGS, "ib")  # IB may serve CPU nodes: it runs
    quiet = facts_for(tmp_path)
    quiet["health"]["xid"]["events"] = []
    with pytest.raises(NotChecked, match="declares no GPUs"):
        health.xids(node(gpus=0), quiet, SETTINGS)
    xid_log = facts_for(tmp_path, kmsg="kmsg-xid-79-48.txt", name="w2")  # a driver after all
    assert [f.check for f in health.xids(node(gpus=0), xid_log, SETTINGS)] == \
        ["XID 48", "XID 63", "XID 79"]
    off = GpuHealthSettings(groups=["xid"])
    with pytest.raises(NotChecked, match=r"gpu_health\.groups leaves it out"):
        health.skip_unless(node(), off, "pcie")


def test_kmsg_reader_takes_records_and_skips_continuation_lines(tmp_path):
    got = PROBE.kernel_xids(str(KMSG / "kmsg-healthy.txt"))
    assert got["readable"]
    assert got["source"].endswith("kmsg-healthy.txt")
    assert [(e["xid"], e["count"]) for e in got["events"]] == [(13, 1)]


def test_wrong_gpu_modes_named_per_gpu_and_only_those(tmp_path):
    facts, _ = fleet_with(tmp_path, {"smi": "h100x8-modes-wrong.xml"})
    found = health.modes(node("w3"), facts["w3"], SETTINGS)
    assert [(f.check, f.expected.split(" on ")[1].split(" ")[1], f.found, f.severity)
            for f in found] == [
        ("persistence mode", "1", "Disabled", "investigate"),
        ("MIG mode", "4", "Enabled", "drain"),
        ("compute mode", "7", "Prohibited", "drain")]
    assert health.modes(node("w1"), facts["w1"], SETTINGS) == []
    for check in (health.pcie, health.ecc, health.clocks):  # nothing else blamed
        assert (check(node("w3"), facts["w3"]) if check is health.pcie
                else check(node("w3"), facts["w3"], SETTINGS)) == []
    relaxed = GpuHealthSettings(persistence_mode=None, mig_mode=None,
                                compute_modes=["Default", "Prohibited"])
    assert health.modes(node("w3"), facts["w3"], relaxed) == []


def test_full_page_retirement_table_with_one_pending_is_a_drain(tmp_path):
    facts = facts_for(tmp_path)
    text = facts["gpu"]["smi"]["text"]
    first = text.index("<retired_pages>")  # GPU 0 only: 40 + 22 pages, one pending
    block = text[first:text.index("</retired_pages>", first)]
    edited = block.replace("<retired_count>N/A</retired_count>", "<retired_count>40"
                           "</retired_count>", 1).replace(
        "<retired_count>N/A</retired_count>", "<retired_count>22</retired_count>", 1).replace(
        "<pending_retirement>N/A</pending_retirement>",
        "<pending_retirement>Yes</pending_retirement>")
    facts["gpu"]["smi"]["text"] = text[:first] + edited + text[first + len(block):]
    found = health.ecc(node(), facts, SETTINGS)
    assert [str(f) for f in found] == [
        "w1: retired pages: expected fewer than 62 retired pages, or none pending, on GPU 0 "
        "(00000000:18:00.0), found 62 retired, a retirement pending (the table is full) "
        "(replace the GPU)"]
    assert worst(found) == "drain"
    looser = GpuHealthSettings(retired_pages_max=63)
    assert health.ecc(node(), facts, looser) == []


def test_nccl_ib_hca_of_the_node_itself_is_checked_and_named(tmp_path):
    facts, fleet = fleet_with(tmp_path, {})
    conf = tmp_path / "nccl.conf"
    conf.write_text("# site defaults\nNCCL_IB_HCA=mlx5_0,mlx5_8\nNCCL_SOCKET_IFNAME=eth0\n"
                    "OTHER=1\n")
    facts["w3"]["health"]["nccl_conf"] = PROBE.nccl_conf({}, str(conf))
    found = health.ib(node("w3"), facts["w3"], SETTINGS, health.Fleet(facts), None)
    assert [(f.check, f.expected, f.severity) for f in found] == [
        ("NCCL_IB_HCA", f"mlx5_8 present (NCCL_IB_HCA=mlx5_0,mlx5_8 in {conf})",
         "investigate")]
    # the login environment wins over the file, as NCCL reads them
    facts["w3"]["health"]["nccl_conf"] = PROBE.nccl_conf({"NCCL_IB_HCA": "mlx5"}, str(conf))
    assert health.ib(node("w3"), facts["w3"], SETTINGS, fleet, None) == []
    # cluster.yaml's and the node's differ: both are checked, each named by its source
    found = health.ib(node("w3"), facts["w3"], SETTINGS, fleet, "=mlx5_9")
    assert [f.expected for f in found] == [
        "mlx5_9 present (NCCL_IB_HCA==mlx5_9 in cluster.yaml)"]


def test_nccl_settings_that_differ_from_the_other_nodes_are_named(tmp_path):
    facts = {n: facts_for(tmp_path, name=n) for n in NAMES}
    conf = tmp_path / "nccl.conf"
    conf.write_text("NCCL_IB_HCA=mlx5\nNCCL_SOCKET_IFNAME=eth0\n")
    for name in NAMES:
        facts[name]["health"]["nccl_conf"] = PROBE.nccl_conf({}, str(conf))
    facts["w3"]["health"]["nccl_conf"] = PROBE.nccl_conf({"NCCL_SOCKET_IFNAME": "ib0"},
                                                         str(conf))
    fleet = health.Fleet(facts)
    found = health.same_picture(node("w3"), fleet)
    assert [(f.check, f.expected, f.found) for f in found] == [
        ("same NCCL settings on every node", "NCCL_IB_HCA=mlx5, NCCL_SOCKET_IFNAME=eth0",
         "NCCL_IB_HCA=mlx5, NCCL_SOCKET_IFNAME=ib0")]
    assert health.same_picture(node("w1"), fleet) == []


def test_gpus_of_one_node_on_different_max_links_are_named(tmp_path):
    facts = facts_for(tmp_path)
    text = facts["gpu"]["smi"]["text"]
    at = text.index("<max_link_width>16x</max_link_width>", text.index('<gpu id="00000000:9A'))
    facts["gpu"]["smi"]["text"] = (text[:at] + "<max_link_width>8x</max_link_width>" +
                                   text[at + len("<max_link_width>16x</max_link_width>"):])
    found = health.pcie(node(), facts)
    assert [str(f) for f in found] == [
        "w1: PCIe max link: expected Gen5 x16 on every GPU (as GPU 0, 1, 2, 3, 5, 6, 7), "
        "found GPU 4: Gen5 x8 (check the slot or riser each GPU sits in)"]
    assert worst(found) == "investigate"


def test_user_nccl_conf_wins_over_the_system_one_whatever_the_key_order(tmp_path):
    facts = facts_for(tmp_path)
    files = {"/root/.nccl.conf": {"NCCL_IB_HCA": "mlx5_0"},
             "/etc/nccl.conf": {"NCCL_IB_HCA": "mlx5_9", "NCCL_DEBUG": "WARN"}}
    for order in (files, dict(reversed(files.items()))):  # as sent, and as sorted in a file
        facts["health"]["nccl_conf"] = {"files": order, "env": {}}
        assert health.node_nccl(facts) == {"NCCL_IB_HCA": ("mlx5_0", "/root/.nccl.conf"),
                                           "NCCL_DEBUG": ("WARN", "/etc/nccl.conf")}


def test_fabric_manager_down_is_named_on_every_gpu_and_healthy_passes(tmp_path):
    healthy = facts_for(tmp_path, ib=None)
    healthy["node"] = {"modules": ["nvidia"]}
    assert health.fabric(node(), healthy, SETTINGS) == []
    down = facts_for(tmp_path, smi="h100x8-fabric-manager-down.xml", ib=None)
    down["node"] = {"modules": ["nvidia"]}
    found = health.fabric(node(), down, SETTINGS)
    assert len(found) == 8
    assert str(found[0]).startswith("w1: fabric manager: expected fabric state Completed / "
                                    "Success on GPU 0 (00000000:18:00.0), found In Progress (")
    assert worst(found) == "drain"


def test_gpudirect_module_wanted_where_gpus_and_rdma_meet(tmp_path):
    with_ib = facts_for(tmp_path)
    with_ib["node"] = {"modules": ["nvidia", "ib_core", "mlx5_core"]}
    found = health.fabric(node(), with_ib, SETTINGS)
    assert [f.check for f in found] == ["GPUDirect RDMA"]
    assert "nvidia_peermem (or nv_peer_mem) loaded" in found[0].expected
    with_ib["node"]["modules"].append("nvidia_peermem")
    assert health.fabric(node(), with_ib, SETTINGS) == []
    gdr = health.fabric(node(), with_ib, GpuHealthSettings(gdrcopy=True))
    assert [f.expected for f in gdr] == ["gdrdrv loaded (gpu_health.gdrcopy)"]


def test_a_stray_compute_process_is_named_with_its_gpu(tmp_path):
    assert health.processes(node(), facts_for(tmp_path)) == []
    found = health.processes(node(), facts_for(tmp_path, smi="h100x8-stray-process.xml"))
    assert [str(f).split(" (a leftover")[0] for f in found] == [
        "w1: stray GPU work: expected no compute process on GPU 2 (00000000:3A:00.0), found "
        "python (pid 4242, 40312 MiB)"]
