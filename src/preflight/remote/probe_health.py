# Probe section "health": what GPU node health checks read beyond nvidia-smi -q -x: the
# NVLink state, XID events in the kernel log since boot, InfiniBand/RoCE ports, NCCL's
# own settings on the node, and DCGM's diagnostic when cluster.yaml asks for it.
# Part of the one probe script (see __init__.probe_source); names from probe_base.

HEALTH_TEXT_MAX = 1 << 16  # nvidia-smi nvlink -s on 8 GPUs x 18 links is ~10 KB
XID_KINDS_MAX = 64  # distinct XID codes kept (each with a count and its last message)
XID_MARK = "NVRM: Xid ("
IB_ROOT = "/sys/class/infiniband"


DCGM_TEXT_MAX = 1 << 18  # dcgmi diag -j for 8 GPUs at level 3 is ~40 KB
NCCL_CONF_MAX = 64  # NCCL_* keys kept per source
NCCL_SYSTEM_CONF = "/etc/nccl.conf"


@section("health")
def health():
    smi = nvidia_smi()  # probe_host
    nvlink = None
    if smi:
        done = run([smi, "nvlink", "-s"], 15)
        nvlink = {"rc": done["rc"], "text": done["stdout"][:HEALTH_TEXT_MAX],
                  "error": done["stderr"].strip()[-300:]}
    return {"nvlink": nvlink, "xid": kernel_xids(), "ib": ib_ports(),
            "nccl_conf": nccl_conf(), "dcgm": dcgm_diag(ARGS.get("dcgm"))}


def dcgm_diag(asked):
    """`dcgmi diag -r LEVEL -j` when cluster.yaml asks for it (None otherwise); found
    False when dcgmi is not installed. The JSON is parsed on the controller."""
    if not asked:
        return None
    found = which("dcgmi")
    if found is None:
        return {"level": asked["level"], "found": False, "rc": None, "text": "",
                "error": "dcgmi not found on PATH", "seconds": 0.0}
    begun = time.time()
    done = run([found, "diag", "-r", str(asked["level"]), "-j"], asked["timeout"])
    return {"level": asked["level"], "found": True, "rc": done["rc"],
            "text": done["stdout"][:DCGM_TEXT_MAX], "error": done["stderr"].strip()[-300:],
            "seconds": round(time.time() - begun, 2)}


def nccl_conf(environ=None, system=NCCL_SYSTEM_CONF):
    """NCCL's settings as every NCCL process on this node reads them: the environment,
    then NCCL_CONF_FILE or ~/.nccl.conf, then /etc/nccl.conf (a file never overrides a
    variable already set). Only NCCL_* keys; values are capped."""
    environ = os.environ if environ is None else environ
    user = environ.get("NCCL_CONF_FILE") or os.path.expanduser("~/.nccl.conf")
    files = {}
    for path in (user, system):
        text = read_text(path, 1 << 16)
        if text is None:
            continue
        keys = {}
        for line in text.splitlines():
            key, eq, value = line.strip().partition("=")
            if eq and key.strip().startswith("NCCL_") and len(keys) < NCCL_CONF_MAX:
                keys[key.strip()[:64]] = value.strip()[:300]
        files[path] = keys
    env = {k[:64]: v[:300] for k, v in sorted(environ.items()) if k.startswith("NCCL_")}
    return {"files": files, "env": dict(list(env.items())[:NCCL_CONF_MAX])}


def kernel_xids(kmsg="/dev/kmsg"):
    """XID lines of the kernel log since boot: /dev/kmsg (what dmesg reads), else the
    journal's kernel messages of this boot; `readable` False with the reason otherwise."""
    lines, source, why = None, None, []
    try:
        lines, source = read_kmsg(kmsg), kmsg
    except OSError as exc:
        why.append("%s: %s" % (kmsg, exc.strerror or exc))
    if lines is None:
        done = run(["journalctl", "-k", "-b", "-q", "--no-pager", "-o", "cat",
                    "--grep", "NVRM: Xid"], 20)
        # --grep exits 1 on no match; an error (no access, no journal) also says why
        if done["rc"] == 0 or (done["rc"] == 1 and not done["stderr"].strip()):
            lines, source = done["stdout"].splitlines(), "journalctl -k -b"
        else:
            why.append("journalctl: %s" % (done["stderr"].strip()[-200:] or
                                           "exit %s" % done["rc"]))
    if lines is None:
        return {"readable": False, "source": None, "reason": "; ".join(why), "events": []}
    events = {}
    for line in lines:
        found = xid_of(line)
        if found is None:
            continue
        device, code, message = found
        if code not in events and len(events) >= XID_KINDS_MAX:
            continue
        entry = events.setdefault(code, {"xid": code, "count": 0, "devices": []})
        entry["count"] += 1
        entry["last"] = message[:300]
        if device not in entry["devices"] and len(entry["devices"]) < 16:
            entry["devices"].append(device)
    return {"readable": True, "source": source, "reason": None,
            "events": sorted(events.values(), key=lambda e: e["xid"])}


def xid_of(line):
    """("PCI:0000:07:00", 79, "pid=..., GPU has fallen off the bus.") from
    "NVRM: Xid (PCI:0000:07:00): 79, pid=..., GPU has fallen off the bus.", else None."""
    at = line.find(XID_MARK)
    if at < 0:
        return None
    device, _, rest = line[at + len(XID_MARK):].partition("): ")
    code, _, message = rest.partition(",")
    if not code.strip().isdigit():
        return None
    return device.split(",")[0].strip()[:40], int(code.strip()), message.strip()


def read_kmsg(path, limit=64 << 20):
    """The kernel's records, one message each. /dev/kmsg gives one record per read and
    EAGAIN at the end (non-blocking); a plain file (a recorded log) reads to EOF."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks, size = [], 0
    try:
        while size < limit:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            except BrokenPipeError:  # records overwritten while reading: go on
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    # "prio,seq,usec,flags;message" (continuation lines start with a space: skipped)
    return [ln.split(";", 1)[1] if ";" in ln else ln for ln in text.splitlines()
            if ln and not ln.startswith(" ")]


def ib_ports():
    """Every RDMA device's ports: state, physical state, rate and link layer as sysfs
    gives them (e.g. "4: ACTIVE", "5: LinkUp", "200 Gb/sec (4X HDR)", "InfiniBand")."""
    try:
        devices = sorted(os.listdir(IB_ROOT))[:64]
    except OSError:
        return {"present": False, "devices": {}}
    out = {}
    for device in devices:
        ports = {}
        folder = os.path.join(IB_ROOT, device, "ports")
        try:
            numbers = sorted(os.listdir(folder))[:16]
        except OSError:
            numbers = []
        for port in numbers:
            ports[port] = {key: (read_text(os.path.join(folder, port, key), 200) or "").strip()
                           or None for key in ("state", "phys_state", "rate", "link_layer")}
        out[device] = {"ports": ports}
    return {"present": True, "devices": out}
