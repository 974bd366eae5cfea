"""Host readiness: what NCCL and a job need of the node beyond the env. /dev/shm large
and free enough for NCCL's shared-memory transport; free space and inodes where a job
writes (the env, the workspace, /tmp, $TMPDIR, home), named before any collective runs."""

from __future__ import annotations

from preflight.checks.findings import Finding, NotChecked
from preflight.config.clusterfile import HostSettings
from preflight.config.inventory import Node


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
