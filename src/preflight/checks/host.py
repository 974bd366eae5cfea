"""Host readiness: what NCCL and a job need of the node beyond the env. /dev/shm large
and free enough for NCCL's shared-memory transport; free space and inodes where a job
writes (the env, the workspace, /tmp, $TMPDIR, home); the limits a job gets; links of
one MTU and speed. Named before any collective runs."""

from __future__ import annotations

import math
from collections import Counter

from preflight.checks.findings import Finding, NotChecked
from preflight.checks.sameness import drift, holders, standing, table
from preflight.config.clusterfile import HostSettings
from preflight.config.inventory import Node
from preflight.facts import contract


def size(n: int) -> str:
    """Bytes for people:

    >>> size(1 << 30), size(1536 << 20), size(1048576), size(512)
    ('1 GiB', '1.5 GiB', '1 MiB', '512 B')
    """
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{n} B"


def shm(node: Node, facts: dict, settings: HostSettings) -> list[Finding]:
    """/dev/shm at least shm_min_bytes in size, shm_min_free_bytes of it free."""
    if "shm" not in facts["node"]:
        raise NotChecked(f"{node.name}: /dev/shm not checked: the facts have none (an older "
                         "probe)")
    space = facts["node"]["shm"]
    if space is None:
        return [Finding(node.name, "shared memory", "/dev/shm mounted", "no /dev/shm",
                        "NCCL's shared-memory transport needs it: mount a tmpfs there",
                        severity="drain")]
    found = []
    if space["size"] < settings.shm_min_bytes:
        found.append(Finding(node.name, "shared memory",
                             f"/dev/shm of at least {size(settings.shm_min_bytes)}",
                             f"{size(space['size'])}",
                             "NCCL's guide: docker run --shm-size=1g, or the tmpfs size in "
                             "/etc/fstab (host.shm_min_bytes)", severity="drain"))
    elif space["free"] < settings.shm_min_free_bytes:
        found.append(Finding(node.name, "shared memory",
                             f"at least {size(settings.shm_min_free_bytes)} free in /dev/shm",
                             f"{size(space['free'])} free of {size(space['size'])}",
                             "leftover segments of a killed job? ls -la /dev/shm "
                             "(host.shm_min_free_bytes)", severity="investigate"))
    return found


ROLES = {"env": "the env", "workspace": "the workspace", "tmp": "/tmp", "tmpdir": "$TMPDIR",
         "home": "the home directory"}


def disk(node: Node, facts: dict, settings: HostSettings) -> list[Finding]:
    """Free space (absolute and percent) and free inodes where a job writes."""
    disks = facts["node"].get("disks")
    if disks is None:
        raise NotChecked(f"{node.name}: disk space not checked: the facts have none (an older "
                         "probe)")
    found = []
    for role, d in sorted(disks.items(), key=lambda kv: list(ROLES).index(kv[0])):
        where = f"{ROLES[role]} ({d.get('path', '?')})"
        percent = 100.0 * d["free"] / d["size"] if d["size"] else 100.0
        wanted = max(settings.disk_min_free_bytes, d["size"] * settings.disk_min_free_percent
                     / 100)
        if d["free"] < wanted:
            found.append(Finding(node.name, "disk space", f"at least {size(int(wanted))} free "
                                 f"on {where} (host.disk_min_free_bytes, "
                                 f"disk_min_free_percent {settings.disk_min_free_percent:g} %)",
                                 f"{size(d['free'])} free of {size(d['size'])} "
                                 f"({percent:.1f} %)",
                                 "a full disk fails a job at start-up (torchrun, compile "
                                 "caches, checkpoints): clean it up", severity="drain"))
        inodes = 100.0 * d["inodes_free"] / d["inodes"] if d["inodes"] else 100.0
        if inodes < settings.disk_min_free_inodes_percent:
            found.append(Finding(node.name, "disk inodes", f"at least "
                                 f"{settings.disk_min_free_inodes_percent:g} % of inodes free on "
                                 f"{where}", f"{d['inodes_free']} of {d['inodes']} "
                                 f"({inodes:.1f} %)", "many small files (caches, logs): "
                                 "find them with du --inodes", severity="drain"))
    return found


def limits(node: Node, facts: dict, settings: HostSettings) -> list[Finding]:
    """nofile and nproc at least their minimum, memlock unlimited where RDMA devices
    exist, as the launcher gave the job (the runtime probe's own limits)."""
    runtime = facts["runtime"]
    got = runtime.get("limits")
    if got is None:
        why = runtime.get("limits_error") or "the runtime probe did not record them (an " \
            "older probe)"
        raise NotChecked(f"{node.name}: limits not checked: {why}")
    found = []
    for name, wanted in (("nofile", settings.nofile_min), ("nproc", settings.nproc_min)):
        soft, hard = got[name]
        if soft != -1 and soft < wanted:
            found.append(Finding(node.name, "limits", f"{name} at least {wanted} for a job "
                                 f"(host.{name}_min)", f"{name} {soft} (hard {_lim(hard)})",
                                 "raise it in /etc/security/limits.d (ssh logins) or "
                                 "Slurm's PropagateResourceLimits / the slurmd unit "
                                 "(steps)", severity="drain"))
    rdma = facts["health"]["ib"]["present"]
    if settings.memlock_unlimited_with_rdma and rdma and got["memlock"][0] != -1:
        found.append(Finding(node.name, "limits", "memlock unlimited where RDMA devices exist",
                             f"memlock {_lim(got['memlock'][0])} bytes",
                             "NCCL's troubleshooting guide: RDMA memory registration fails; "
                             "set memlock unlimited in limits.d and for slurmd",
                             severity="drain"))
    return found


def _lim(value: int) -> str:
    return "unlimited" if value == -1 else str(value)


# links that are not a host's own fabric: judged nowhere
VIRTUAL = ("lo", "docker", "veth", "virbr", "br-", "cni", "flannel", "cali", "tun", "tap")


class Links:
    """Every reached node's up links (physical, IB netdevs) by name, tallied once: MTU and
    speed the same on every node (plurality), and nccl.mtu where set."""

    def __init__(self, cluster_facts: dict[str, dict], mtu: int | None) -> None:
        self.mtu = mtu
        self.links = {name: {link: v for link, v in f["net"]["links"].items()
                             if v["operstate"] == "up" and not link.startswith(VIRTUAL)}
                      for name, f in contract.usable(cluster_facts, "net").items()
                      if f["net"].get("links") is not None}
        self.tallies: dict[tuple[str, str], Counter] = {}
        for links in self.links.values():
            for link, v in links.items():
                for key in ("mtu", "speed"):
                    self.tallies.setdefault((link, key), Counter())[v[key]] += 1

    def odd(self, node: Node) -> list[Finding]:
        if node.name not in self.links:
            raise NotChecked(f"{node.name}: links not checked: the probe did not record them "
                             "(an older probe)")
        found = []
        for link, v in sorted(self.links[node.name].items()):
            if self.mtu is not None and v["mtu"] != self.mtu:
                found.append(Finding(node.name, "link MTU", f"{link} MTU {self.mtu} "
                                     "(nccl.mtu)", f"MTU {v['mtu']}",
                                     f"ip link set {link} mtu {self.mtu}, and in the "
                                     "network config", severity="drain"))
                continue
            for key, unit in (("mtu", ""), ("speed", " Mb/s")):
                tally = self.tallies[(link, key)].most_common()
                usual, count = tally[0]
                if v[key] != usual and count > 1 and (len(tally) == 1 or tally[1][1] < count):
                    found.append(Finding(node.name, f"link {key}",
                                         f"{link} {key} {usual}{unit}, as on {count} nodes",
                                         f"{key} {v[key]}{unit}",
                                         "a fabric with mixed MTUs drops or fragments large "
                                         "packets" if key == "mtu" else "a slow link holds "
                                         "every collective to its pace",
                                         severity="drain" if key == "mtu" else "investigate"))
        return found


def clock(node: Node, facts: dict, settings: HostSettings) -> list[Finding]:
    """The node's clock against the controller's, bounded by the probe's own round trip:
    the probe started after the controller sent it and ended before the answer came, so
    the offset lies in [ended - received, started - sent]. Only an offset beyond the
    threshold even at the bound's near end is a finding (a slow link widens the bound,
    never makes a finding)."""
    reach = facts["reach"]
    times = (reach.get("sent"), reach.get("received"), facts.get("probe_started"),
             facts.get("probe_ended"))
    if not all(isinstance(t, (int, float)) and math.isfinite(t) for t in times):
        raise NotChecked(f"{node.name}: clock not checked: the facts carry no timestamps "
                         "(an older probe, or a replay of one)")
    sent, received, started, ended = times
    low, high = ended - received, started - sent  # the offset's bounds, node minus us
    limit = settings.clock_max_offset_s
    try:
        sync = facts["node"].get("timesync") or {}
    except (KeyError, contract.SectionBroken):  # the offset needs only the timestamps
        sync = {}
    unsynced = [] if sync.get("synchronized") is not False else [Finding(
        node.name, "clock", f"{sync['daemon']} synchronised", "not synchronised",
        "chronyc sources / timedatectl timesync-status: is its server reachable?",
        severity="investigate")]
    if low <= limit and high >= -limit:
        return unsynced
    ahead = low > limit
    near = low if ahead else high
    return [Finding(node.name, "clock", f"within {limit:g} s of the controller's "
                    "(host.clock_max_offset_s)",
                    f"{abs(near):.2f} s or more {'ahead' if ahead else 'behind'} "
                    f"(between {low:+.2f} and {high:+.2f} s)",
                    "is chrony or systemd-timesyncd running and synchronised? "
                    "(chronyc tracking; timedatectl)", severity="investigate"), *unsynced]


UNKNOWN = "(not exposed)"


class Sameness:
    """Kernel release, OS, glibc and the tunables of every reached node, tallied once per
    run: the odd node named by plurality (as env drift), the drift as a table; a tunable
    cluster.yaml names must also have that value."""

    def __init__(self, cluster_facts: dict[str, dict], settings: HostSettings) -> None:
        self.wanted = dict(settings.tunables)
        skip = set(settings.may_differ)
        self.values = {}
        for name, f in contract.usable(cluster_facts, "node").items():
            node = f["node"]
            if "tunables" not in node:
                continue
            row = {"kernel": node.get("kernel") or UNKNOWN, "os": node.get("os") or UNKNOWN,
                   "glibc": node.get("glibc") or UNKNOWN,
                   **{k: v if v is not None else UNKNOWN for k, v in node["tunables"].items()}}
            self.values[name] = {k: v for k, v in row.items() if k not in skip}
        self.rows = drift(self.values)
        self.tallies = {key: Counter(v.values()).most_common() for key, v in self.rows.items()}

    def odd(self, node: Node) -> tuple[list[Finding], str]:
        if node.name not in self.values:
            raise NotChecked(f"{node.name}: host sameness not checked: the probe did not "
                             "record kernel tunables (an older probe)")
        mine = self.values[node.name]
        found = [Finding(node.name, "host setting", f"{key} {want} (host.tunables)",
                         f"{key} {mine.get(key, UNKNOWN)}", "set it in the kernel command "
                         "line, sysctl.d or the tuned profile", severity="investigate")
                 for key, want in sorted(self.wanted.items()) if mine.get(key) != want]
        for key, values in sorted(self.rows.items()):
            where = standing(values[node.name], self.tallies[key])
            if where is None or key in self.wanted:
                continue
            usual = self.tallies[key][0][0]
            expected = f"one {key} on every node" if where[0] == "tie" else \
                f"{key} {usual}, as on {holders(values, usual)}"
            found.append(Finding(node.name, "same host on every node", expected,
                                 f"{key} {values[node.name]}", "nodes of one job should run "
                                 "one kernel, OS and C library with one tuning (host."
                                 "may_differ lists what may differ)", severity="investigate"))
        return found, table(self.rows, sorted(self.values), "setting") if found else ""



def stray(node: Node, facts: dict) -> list[Finding]:
    """No process in uninterruptible sleep (Meta's gcm and NHC check it: hung I/O that a
    job's reads would join), and on the master no listener already on the master port."""
    found_stray = facts["node"].get("stray")
    if found_stray is None:
        raise NotChecked(f"{node.name}: stray work not checked: the probe did not record it "
                         "(an older probe)")
    found = []
    hung = found_stray["d_state"]
    if hung:
        shown = ", ".join(f"{h['comm']} ({h['pid']})" for h in hung[:5])
        found.append(Finding(node.name, "stray work", "no process in uninterruptible sleep "
                             "(D state)", f"{len(hung)}{'+' if len(hung) >= 20 else ''}: "
                             f"{shown}", "hung I/O (a dead NFS mount, a failing disk or "
                             "GPU): cat /proc/PID/stack; a reboot clears it",
                             severity="investigate"))
    port = found_stray.get("master_port")
    if port and port["listening"]:
        found.append(Finding(node.name, "stray work", f"master port {port['port']} free on "
                             "the master", f"a process already listens on {port['port']}",
                             "a leftover torchrun or job? ss -ltnp 'sport = :"
                             f"{port['port']}' (or move nccl.master_port)",
                             severity="investigate"))
    return found


def acs(node: Node, facts: dict) -> list[Finding]:
    """No PCIe bridge with ACS source validation on (NCCL's troubleshooting guide: GPU
    peer-to-peer traffic is then routed up to the root complex: slow, or a hang)."""
    found_acs = facts["gpu"].get("acs")
    if found_acs is None:
        raise NotChecked(f"{node.name}: PCIe ACS not checked: read only where nvidia-smi is "
                         "(a GPU node), by a probe that knows it")
    if not found_acs["checked"]:
        raise NotChecked(f"{node.name}: PCIe ACS not checked: {found_acs['reason']}")
    bridges = found_acs.get("src_valid") or []
    if not bridges:
        return []
    return [Finding(node.name, "PCIe ACS", "ACS source validation off on the bridges above "
                    "GPUs and NICs", f"SrcValid+ on {len(bridges)}: {'; '.join(bridges[:3])}",
                    "disable ACS in the BIOS, or setpci at boot (NCCL's troubleshooting "
                    "guide, 'PCI Access Control Services')", severity="investigate")]


def iommu_mode(words: list[str]) -> str:
    """The IOMMU mode the kernel command line asks for: pt, off, on or default.

    >>> iommu_mode(["intel_iommu=on", "iommu=pt"]), iommu_mode([]), iommu_mode(["amd_iommu=off"])
    ('pt', 'default', 'off')
    """
    values = dict(w.split("=", 1) for w in words if "=" in w)
    if values.get("iommu") == "pt" or values.get("iommu.passthrough") in ("1", "y", "on"):
        return "pt"
    if "off" in (values.get("intel_iommu"), values.get("amd_iommu"), values.get("iommu")):
        return "off"
    if "on" in (values.get("intel_iommu"), values.get("amd_iommu")):
        return "on"
    return "default"


def iommu(node: Node, facts: dict, settings: HostSettings) -> list[Finding]:
    """The IOMMU mode from the kernel command line, judged against host.iommu (ROCm's cvs
    wants pass-through for GPU peer-to-peer; no default: it depends on the platform)."""
    words = facts["node"].get("cmdline_iommu")
    if words is None:
        raise NotChecked(f"{node.name}: IOMMU not checked: the probe did not read the kernel "
                         "command line (an older probe)")
    if settings.iommu is None:
        raise NotChecked(f"{node.name}: IOMMU not judged: host.iommu is not set in cluster.yaml "
                         f"(this node's mode: {iommu_mode(words)})")
    mode = iommu_mode(words)
    if mode == settings.iommu:
        return []
    return [Finding(node.name, "IOMMU", f"IOMMU mode {settings.iommu} (host.iommu)",
                    f"{mode} ({' '.join(words) or 'no IOMMU words on the kernel command line'})",
                    "set it on the kernel command line (iommu=pt for pass-through) and "
                    "reboot", severity="investigate")]
