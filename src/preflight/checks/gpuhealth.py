"""GPU node health in depth: PCIe links, XIDs since boot, clock throttling, NVLink,
InfiniBand ports and ECC counts, each finding with a severity (findings.SEVERITIES), and
the same GPU/link picture on every node (by plurality, as for the env).

The thresholds and the groups that run come from cluster.yaml's `gpu_health` block; the
sources of their defaults are named there (clusterfile.GpuHealthSettings).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ClusterShell.NodeSet import NodeSet

from preflight.checks import cuda, sameness
from preflight.checks.findings import Finding, NotChecked
from preflight.config.clusterfile import GpuHealthSettings
from preflight.config.inventory import Node
from preflight.facts import contract, dcgmdiag, nvsmi

# xid, dcgm: see xids(), dcgm()
GPU_GROUPS = ("pcie", "clocks", "nvlink", "ecc", "modes", "fabric", "processes")
# Clock event reasons that are not a fault: idle, clocks set on purpose, the software
# power cap (AzNHC's azure_gpu_clock_throttling.nhc ignores the same), display, sync boost.
BENIGN_CLOCKS = {"gpu_idle", "applications_clocks_setting", "sw_power_cap",
                 "display_clocks_setting", "sync_boost"}
HARDWARE_CLOCKS = {"hw_slowdown", "hw_power_brake_slowdown"}  # the board pulls clocks down
NCCL_SYSTEM_CONF = "/etc/nccl.conf"  # read last by NCCL, so it loses to the user's file


def skip_unless(node: Node, settings: GpuHealthSettings, group: str) -> None:
    """One skip reason per node for a group that does not apply there."""
    if group not in settings.groups:
        raise NotChecked(f"{node.name}: {group} not checked: gpu_health.groups leaves it out")
    if group in GPU_GROUPS and node.gpus == 0:
        raise NotChecked(f"{node.name}: {group} not checked: the node declares no GPUs (gpus: 0)")


def each_gpu(node: Node, facts: dict, judge: Callable[[str, dict], list[Finding]]
             ) -> list[Finding]:
    """judge(where, gpu) over every GPU nvidia-smi reports (`where`: "GPU 3 (bus id)",
    gpu: nvsmi's GPU with its `health` picture); one finding instead when the node has no
    usable report."""
    report = cuda.smi(facts)
    if report is None:
        return [Finding(node.name, "nvidia-smi report", f"nvidia-smi -q -x for {node.gpus} "
                        "GPU(s)", "no nvidia-smi on the node", severity="investigate")]
    if report.get("error"):
        return [Finding(node.name, "nvidia-smi report", "a readable nvidia-smi -q -x report",
                        report["error"], severity="investigate")]
    return [f for gpu in report["gpus"] for f in judge(
        f"GPU {gpu['index']} ({gpu['health'].get('bus_id') or '?'})", gpu)]


def pcie(node: Node, facts: dict) -> list[Finding]:
    """Each GPU's link at its max width, and at its max generation unless the GPU is idle
    (idle links train down to save power: not a fault); every GPU of the node on the same
    max link."""
    maxes: dict[str, list[str]] = {}  # "Gen5 x16" -> the GPUs with that max link

    def judge(where: str, gpu: dict) -> list[Finding]:
        h = gpu["health"]
        width, width_max, gen, gen_max = (h["pcie_width"], h["pcie_width_max"], h["pcie_gen"],
                                          h["pcie_gen_max"])
        if gen_max is not None and width_max is not None:
            maxes.setdefault(f"Gen{gen_max} x{width_max}", []).append(str(gpu["index"]))
        idle = "gpu_idle" in (h["clock_reasons"] or [])
        narrow = width is not None and width_max is not None and width < width_max
        slow = gen is not None and gen_max is not None and gen < gen_max and not idle
        if not (narrow or slow):
            return []
        return [Finding(node.name, "PCIe link", f"Gen{gen_max} x{width_max} (the link's max) "
                        f"on {where}", f"Gen{gen} x{width}", "reseat the GPU or its riser",
                        severity="drain")]
    found = each_gpu(node, facts, judge)
    return found + _mixed_links(node, maxes)


def _mixed_links(node: Node, maxes: dict[str, list[str]]) -> list[Finding]:
    """The GPUs of one node on different max links (a GPU in a slot or riser of another
    kind): the slowest sets an all-reduce's pace for all of them."""
    if len(maxes) < 2:
        return []
    most = max(maxes, key=lambda k: len(maxes[k]))
    return [Finding(node.name, "PCIe max link", f"{most} on every GPU (as GPU "
                    f"{', '.join(maxes[most])})", "; ".join(
                        f"GPU {', '.join(v)}: {k}" for k, v in maxes.items() if k != most),
                    "check the slot or riser each GPU sits in", severity="investigate")]


def xids(node: Node, facts: dict, settings: GpuHealthSettings) -> list[Finding]:
    """XIDs on the drain list since boot. A node that declares no GPUs is judged only when
    its kernel log has XIDs at all (an NVIDIA driver is loaded: it has GPUs after all)."""
    log = facts["health"]["xid"]
    if node.gpus == 0 and not log["events"]:
        raise NotChecked(f"{node.name}: xid not checked: the node declares no GPUs (gpus: 0) "
                    "and its kernel log has no XID")
    if not log["readable"]:
        raise NotChecked(f"{node.name}: XIDs not checked: kernel log not readable "
                    f"({log['reason']}); run the probe as root or in group systemd-journal")
    listed = set(settings.drain_xids)
    return [Finding(node.name, f"XID {e['xid']}", f"no XID {e['xid']} since boot (drain "
                    "list: Azure's GPU XID check)", f"{e['count']} on "
                    f"{', '.join(e['devices']) or '?'}, last: {e['last']}",
                    f"from {log['source']}", severity="drain")
            for e in log["events"] if e["xid"] in listed]


def clocks(node: Node, facts: dict, settings: GpuHealthSettings) -> list[Finding]:
    """Active throttle reasons beyond the benign ones; temperature or power at the edge."""
    def judge(where: str, gpu: dict) -> list[Finding]:
        h = gpu["health"]
        found = []
        bad = sorted(set(h["clock_reasons"] or []) - BENIGN_CLOCKS)
        if bad:
            found.append(Finding(node.name, "clock throttling", f"no throttle reason on "
                                 f"{where} beyond idle or the power cap", ", ".join(bad),
                                 severity="drain" if HARDWARE_CLOCKS & set(bad)
                                 else "investigate"))
        if h["temp_c"] is not None and h["temp_slowdown_c"] is not None and \
                h["temp_c"] >= h["temp_slowdown_c"] - settings.temp_margin_c:
            found.append(Finding(node.name, "temperature", f"below {h['temp_slowdown_c']} C - "
                                 f"{settings.temp_margin_c:g} (slowdown) on {where}",
                                 f"{h['temp_c']} C", "check cooling", severity="investigate"))
        if h["power_w"] is not None and h["power_limit_w"] and \
                h["power_w"] >= h["power_limit_w"] * (1 - settings.power_margin):
            found.append(Finding(node.name, "power", f"below {h['power_limit_w']} W (the limit) "
                                 f"less {settings.power_margin:.0%} on {where}",
                                 f"{h['power_w']} W", severity="investigate"))
        return found
    return each_gpu(node, facts, judge)


def ecc(node: Node, facts: dict, settings: GpuHealthSettings) -> list[Finding]:
    limits = {"sram_uncorrectable": 0, "sram_correctable": settings.ecc_sram_correctable_max,
              "dram_uncorrectable": settings.ecc_dram_max,
              "dram_correctable": settings.ecc_dram_max}

    def judge(where: str, gpu: dict) -> list[Finding]:
        h = gpu["health"]
        found = []
        for scope in ("volatile", "aggregate"):
            counts = h[f"ecc_{scope}"] or {}
            found += [Finding(node.name, "ECC", f"{scope} {counter} <= {limit} on {where}",
                              str(counts[counter]), severity="drain")
                      for counter, limit in limits.items() if (counts.get(counter) or 0) > limit]
        rows = h["remapped_uncorrectable"]
        if rows is not None and rows > settings.remapped_uncorrectable_max:
            found.append(Finding(node.name, "remapped rows", f"uncorrectable remapped rows <= "
                                 f"{settings.remapped_uncorrectable_max} on {where}",
                                 str(rows), severity="drain"))
        pages = h["retired_pages"]
        if gpu.get("retired_pending") and pages >= settings.retired_pages_max:
            found.append(Finding(node.name, "retired pages", f"fewer than "
                                 f"{settings.retired_pages_max} retired pages, or none "
                                 f"pending, on {where}", f"{pages} retired, a retirement "
                                 "pending (the table is full)", "replace the GPU",
                                 severity="drain"))
        return found
    return each_gpu(node, facts, judge)


def modes(node: Node, facts: dict, settings: GpuHealthSettings) -> list[Finding]:
    """Persistence, MIG and compute mode as a training node needs them (cluster.yaml's
    gpu_health says which; a mode the GPU does not report is not judged)."""
    def judge(where: str, gpu: dict) -> list[Finding]:
        h, found = gpu["health"], []
        want = {True: "Enabled", False: "Disabled"}.get(settings.persistence_mode)
        if want and gpu.get("persistence") and gpu["persistence"] != want:
            found.append(Finding(node.name, "persistence mode", f"{want} on {where}",
                                 gpu["persistence"], "nvidia-smi -pm 1, or run "
                                 "nvidia-persistenced" if want == "Enabled" else
                                 "nvidia-smi -pm 0", severity="investigate"))
        if settings.mig_mode and h["mig"] and h["mig"] != settings.mig_mode:
            found.append(Finding(node.name, "MIG mode", f"{settings.mig_mode} on {where}",
                                 h["mig"], f"nvidia-smi -mig {int(settings.mig_mode == 'Enabled')}"
                                 " then reset the GPU", severity="drain"))
        if h["compute_mode"] and h["compute_mode"] not in settings.compute_modes:
            found.append(Finding(node.name, "compute mode", f"{' or '.join(settings.compute_modes)}"
                                 f" on {where}", h["compute_mode"], "nvidia-smi -c DEFAULT",
                                 severity="drain"))
        return found
    return each_gpu(node, facts, judge)


FABRIC_NOT_USED = (None, "N/A", "Not Supported")  # PCIe GPUs: no NVSwitch fabric


def fabric(node: Node, facts: dict, settings: GpuHealthSettings) -> list[Finding]:
    """On NVSwitch systems every GPU's fabric state Completed/Success (Fabric Manager set
    it up: until then CUDA cannot start there); GPUDirect RDMA's module loaded where GPUs
    and RDMA devices both exist, gdrdrv where gpu_health.gdrcopy asks for it."""
    def judge(where: str, gpu: dict) -> list[Finding]:
        state = (gpu.get("fabric") or {}).get("state")
        status = (gpu.get("fabric") or {}).get("status")
        if state in FABRIC_NOT_USED or (state == "Completed" and status in (None, "Success",
                                                                            "N/A")):
            return []
        return [Finding(node.name, "fabric manager", f"fabric state Completed / Success on "
                        f"{where}", state + (f" / {status}" if status else ""), "systemctl status "
                        "nvidia-fabricmanager (its version must match the driver's)",
                        severity="drain")]
    found = each_gpu(node, facts, judge)
    loaded = facts["node"].get("modules")
    if loaded is None:
        return found  # an older probe: the modules are not known, the fabric state is
    if ib_ports(facts) and not {"nvidia_peermem", "nv_peer_mem"} & set(loaded):
        found.append(Finding(node.name, "GPUDirect RDMA", "nvidia_peermem (or nv_peer_mem) "
                             "loaded: the node has GPUs and RDMA devices",
                             f"not loaded (loaded: {', '.join(loaded) or 'none of ours'})",
                             "modprobe nvidia_peermem; without it NCCL copies through host "
                             "memory", severity="investigate"))
    if settings.gdrcopy and "gdrdrv" not in loaded:
        found.append(Finding(node.name, "GPUDirect RDMA", "gdrdrv loaded (gpu_health.gdrcopy)",
                             "not loaded", "install gdrcopy and load gdrdrv",
                             severity="investigate"))
    return found


def processes(node: Node, facts: dict) -> list[Finding]:
    """No compute process already holds a GPU before the job starts (a leftover job, a
    notebook): it takes memory and SMs the job counts on."""
    def judge(where: str, gpu: dict) -> list[Finding]:
        held = [p for p in gpu.get("processes") or () if "C" in (p.get("type") or "C")]
        if not held:
            return []
        shown = ", ".join(f"{p['name'] or '?'} (pid {p['pid']}, {p['used_mib']} MiB)"
                          for p in held[:4])
        return [Finding(node.name, "stray GPU work", f"no compute process on {where}",
                        shown, "a leftover job or notebook: stop it before the job",
                        severity="investigate")]
    return each_gpu(node, facts, judge)


def dcgm(node: Node, facts: dict, settings: GpuHealthSettings) -> list[Finding]:
    """DCGM's own diagnostic, where cluster.yaml asks for it and dcgmi is installed: every
    failed or warned test by GPU, with DCGM's severity (dcgmdiag.SEVERITY)."""
    if not settings.dcgm_diag:
        raise NotChecked(f"{node.name}: DCGM diagnostic not checked: gpu_health.dcgm_diag "
                         "is 0 (off)")
    run = facts["health"]["dcgm"]
    if run is None:
        raise NotChecked(f"{node.name}: DCGM diagnostic not checked: these facts were gathered "
                    "without gpu_health.dcgm_diag")
    if not run["found"]:
        raise NotChecked(f"{node.name}: DCGM diagnostic not checked: {run['error']}"
                    + (" (and the node declares no GPUs)" if node.gpus == 0 else ""))
    asked = f"dcgmi diag -r {run['level']} -j"
    if run["rc"] == 124:
        return [Finding(node.name, "DCGM diagnostic", f"{asked} done within "
                        f"gpu_health.dcgm_timeout", run["error"] or "timed out",
                        severity="investigate")]
    try:
        diag = dcgmdiag.parse(run["text"])
    except dcgmdiag.DiagError as exc:
        lines = [ln.strip() for ln in (run["error"] or run["text"]).splitlines() if ln.strip()]
        said = " / ".join(lines)[:300] or f"exit {run['rc']}"
        return [Finding(node.name, "DCGM diagnostic", f"{asked} prints its results",
                        f"{said} ({exc})", "is nv-hostengine running? (systemctl start "
                        "nvidia-dcgm)", severity="investigate")]
    if diag.runtime_error:
        return [Finding(node.name, "DCGM diagnostic", f"{asked} runs", diag.runtime_error,
                        severity="investigate")]
    if not diag.ran:
        raise NotChecked(f"{node.name}: DCGM diagnostic judged nothing: all {len(diag.results)} "
                    f"test results skipped or not run ({_first_info(diag)})")
    return [Finding(node.name, f"DCGM {r.category}/{r.test}", f"Pass on {r.entity}",
                    f"{r.status}: " + ("; ".join(w.text for w in r.warnings) or "no message"),
                    ", ".join(f"DCGM error {w.error_id}" for w in r.warnings
                              if w.error_id is not None), severity=dcgmdiag.severity(r))
            for r in diag.ran if r.status in ("Fail", "Warn")]


def _first_info(diag: dcgmdiag.Diag) -> str:
    return next((i for r in diag.results for i in r.info if i), "DCGM gave no reason")


def nvlink_of(facts: dict) -> dict[int, dict[int, float | None]] | None:
    report = facts["health"]["nvlink"]
    if report is None or report["rc"] != 0:
        return None
    return nvsmi.parse_nvlink(report["text"]) or None


def nvlink(node: Node, facts: dict, fleet: Fleet) -> list[Finding]:
    links = nvlink_of(facts)
    report = facts["health"]["nvlink"]
    if links is None or not any(links.values()):
        why = "no nvidia-smi" if report is None else report["error"] or \
            "no NVLink reported (PCIe-only GPUs)"
        raise NotChecked(f"{node.name}: NVLink not checked: {why}")
    found = []
    for index, gpu in sorted(links.items()):
        down = [str(k) for k, v in sorted(gpu.items()) if v is None]
        if down:
            found.append(Finding(node.name, "NVLink", f"every link up on GPU {index}",
                                 f"link {', '.join(down)} inactive ({len(gpu) - len(down)}/"
                                 f"{len(gpu)} up)", severity="drain"))
    up = sum(v is not None for gpu in links.values() for v in gpu.values())
    if fleet.nvlinks and up < fleet.nvlinks:
        found.append(Finding(node.name, "NVLink count", f"{fleet.nvlinks} active links (the "
                             "cluster's plurality)", str(up), severity="drain"))
    return found


def ib_ports(facts: dict) -> dict[str, dict]:
    """"mlx5_0/1" -> its port facts."""
    devices = facts["health"]["ib"]["devices"]
    return {f"{d}/{p}": port for d, dev in devices.items() for p, port in dev["ports"].items()}


def rate_gbps(port: dict) -> float | None:
    return nvsmi.number(port.get("rate"))  # "200 Gb/sec (4X HDR)" -> 200


def node_nccl(facts: dict) -> dict[str, tuple[str, str]]:
    """NCCL_* as an NCCL process on the node sees them: key -> (value, where it is set).
    The environment wins over NCCL_CONF_FILE / ~/.nccl.conf, which wins over
    /etc/nccl.conf (NCCL reads the files without overriding what is set)."""
    conf = facts["health"]["nccl_conf"]
    out: dict[str, tuple[str, str]] = {}
    # the system file first, by name: a facts file's key order is not NCCL's
    for path, keys in sorted(conf["files"].items(), key=lambda f: f[0] != NCCL_SYSTEM_CONF):
        out.update({k: (v, path) for k, v in keys.items()})
    out.update({k: (v, "the login environment") for k, v in conf["env"].items()})
    return out


def hca_settings(configured: str | None, facts: dict) -> list[tuple[str, str]]:
    """Every NCCL_IB_HCA a job on this node may run with: (where, value). cluster.yaml's
    (what our collective passes) and the node's own, when they differ."""
    found = [("cluster.yaml", configured)] if configured else []
    own = node_nccl(facts).get("NCCL_IB_HCA")
    if own and own[0] != configured:
        found.append((own[1], own[0]))
    return found


def ib(node: Node, facts: dict, settings: GpuHealthSettings, fleet: Fleet,
       configured_hca: str | None) -> list[Finding]:
    ports = ib_ports(facts)
    hcas = hca_settings(configured_hca, facts)
    if not ports and not hcas:
        raise NotChecked(f"{node.name}: InfiniBand not checked: no RDMA devices "
                    "(/sys/class/infiniband) and NCCL_IB_HCA unset")
    found = []
    for name, port in sorted(ports.items()):
        state, phys = port.get("state") or "?", port.get("phys_state") or "?"
        if not state.endswith("ACTIVE") or not phys.endswith("LinkUp"):
            found.append(Finding(node.name, "IB port", f"{name} ACTIVE / LinkUp",
                                 f"{state} / {phys}", severity="drain"))
            continue
        rate = rate_gbps(port)
        if fleet.ib_rate and rate is not None and rate < fleet.ib_rate:
            found.append(Finding(node.name, "IB rate", f"{name} at {fleet.ib_rate:g} Gb/s (the "
                                 "cluster's plurality)", port.get("rate") or "?",
                                 severity="drain"))
    for where, hca in hcas:
        found += _hca_named(node, ports, hca, where)
    return found


def _hca_named(node: Node, ports: dict[str, dict], hca: str | None, where: str
               ) -> list[Finding]:
    """NCCL_IB_HCA's devices exist ("mlx5_0:1,mlx5_1", "=mlx5_0" exact, "^..." excludes:
    nothing to find). Without "=", an entry is a prefix, as NCCL reads it."""
    if not hca or hca.startswith("^"):
        return []
    exact = hca.startswith("=")
    devices = sorted({p.split("/")[0] for p in ports})
    missing = []
    for entry in hca.lstrip("=").split(","):
        device, _, port = entry.strip().partition(":")
        matches = [d for d in devices if (d == device if exact else d.startswith(device))]
        if not device or not matches or (port and not any(f"{d}/{port}" in ports
                                                          for d in matches)):
            missing.append(entry.strip())
    if not missing:
        return []
    return [Finding(node.name, "NCCL_IB_HCA", f"{', '.join(missing)} present (NCCL_IB_HCA="
                    f"{hca} in {where})", f"devices: {', '.join(devices) or 'none'}",
                    severity="investigate")]


def picture(facts: dict) -> dict[str, str]:
    """What should be the same on every node: GPUs, PCIe links, NVLink, IB rates."""
    report = cuda.smi(facts) or {}
    gpus = report.get("gpus") or []
    links = nvlink_of(facts) or {}
    rates = Counter(str(rate_gbps(p)) for p in ib_ports(facts).values())
    return {
        "GPUs": f"{len(gpus)} x {gpus[0]['name']}" if gpus else "none",
        "PCIe max": ", ".join(sorted({f"Gen{g['health']['pcie_gen_max']} "
                                      f"x{g['health']['pcie_width_max']}" for g in gpus}))
        or "none",
        "NVLinks": str(sum(len(g) for g in links.values())),
        "IB ports": ", ".join(f"{n} x {r} Gb/s" for r, n in sorted(rates.items())) or "none",
        "NCCL settings": ", ".join(f"{k}={v}" for k, (v, _) in sorted(node_nccl(facts).items()))
        or "none",
    }


class Fleet:
    """The cluster's pluralities, computed once per run."""

    def __init__(self, cluster_facts: dict[str, dict]) -> None:
        usable = contract.usable(cluster_facts, "gpu", "health")
        self.pictures = {n: picture(f) for n, f in usable.items()}
        self.tallies = {k: Counter(p[k] for p in self.pictures.values()).most_common()
                        for k in next(iter(self.pictures.values()), {})}
        ups = Counter(sum(v is not None for g in (nvlink_of(f) or {}).values() for v in g.values())
                      for f in usable.values())
        self.nvlinks = _plurality(ups)
        rates = Counter(r for f in usable.values() for p in ib_ports(f).values()
                        if (r := rate_gbps(p)) is not None and
                        (p.get("state") or "").endswith("ACTIVE"))
        self.ib_rate = _plurality(rates)


def _plurality(tally: Counter):
    """The most common value when it is a strict plurality (no tie), else None."""
    top = tally.most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def same_picture(node: Node, fleet: Fleet) -> list[Finding]:
    mine = fleet.pictures.get(node.name)
    if mine is None:
        return []
    found = []
    for key, value in mine.items():
        tally = fleet.tallies[key]
        if sameness.standing(value, tally) is not None:
            others = "; ".join(f"{_holding(fleet, key, v)}: {v}" for v, _ in tally[:4])
            found.append(Finding(node.name, f"same {key} on every node", tally[0][0], value,
                                 others, severity="investigate"))
    return found


def _holding(fleet: Fleet, key: str, value: str) -> str:
    return str(NodeSet.fromlist([n for n, p in fleet.pictures.items() if p[key] == value]))
