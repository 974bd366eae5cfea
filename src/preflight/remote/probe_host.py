# Probe sections: GPUs, the network, Jupyter (what the host offers besides the env).
# Part of the one probe script (see __init__.probe_source); names from probe_base.


@section("gpu")
def gpu():
    """nvidia-smi's full XML report (parsed on the controller) and /dev/nvidia* nodes.
    No nvidia-smi is a fact (a GPU-less node), not an error."""
    devices = sorted(d for d in os.listdir("/dev") if d.startswith("nvidia"))
    smi = nvidia_smi()
    facts = {"dev": devices, "nvidia_smi": smi, "cuda_visible_devices":
             LOGIN.get("cuda_visible_devices")}
    if smi:
        done = run([smi, "-q", "-x"], 30)
        facts["smi"] = {"format": "xml", "rc": done["rc"], "text": done["stdout"],
                        "error": done["stderr"].strip()[-500:]}
        facts["acs"] = pcie_acs()
    return facts


def pcie_acs():
    """PCIe bridges with ACS source validation on (NCCL's troubleshooting guide: it sends
    GPU peer-to-peer traffic up to the root complex, cutting P2P bandwidth or hanging it).
    lspci shows ACSCtl only to root; without it the reason says why."""
    lspci = which("lspci", "/usr/sbin", "/sbin")
    if lspci is None:
        return {"checked": False, "reason": "no lspci on the node (pciutils)"}
    if os.getuid() != 0:
        return {"checked": False, "reason": "lspci shows ACS control only to root"}
    done = run([lspci, "-vvv"], 30)
    if done["rc"] != 0:
        return {"checked": False, "reason": "lspci -vvv: exit %d" % done["rc"]}
    return {"checked": True, "src_valid": acs_src_valid(done["stdout"])}


def acs_src_valid(text):
    """The devices of an `lspci -vvv` listing whose ACSCtl has SrcValid+ (capped)."""
    found, device = [], None
    for line in text.splitlines():
        if line and not line[0].isspace():
            device = line.strip()[:200]
        elif "ACSCtl:" in line and "SrcValid+" in line and device and len(found) < 64:
            found.append(device)
    return found


def nvidia_smi():
    """nvidia-smi's path (PATH, then where drivers and containers put it), or None."""
    return which("nvidia-smi", "/usr/local/nvidia/bin")


@section("net")
def net():
    """Name resolution of this node and its peers, and network interfaces' state."""
    import socket  # 3 ms of imports; only this section needs it

    def addresses(name):
        try:
            # in the resolver's order: a connect uses the first one
            found = [a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET)]
            return [a for i, a in enumerate(found) if a not in found[:i]]
        except OSError as exc:
            return "cannot resolve: %s" % exc
    interfaces, links = {}, {}
    for name in sorted(os.listdir("/sys/class/net"))[:256]:
        state = (read_text("/sys/class/net/%s/operstate" % name, 64) or "unknown").strip()
        interfaces[name] = state
        mtu = (read_text("/sys/class/net/%s/mtu" % name, 32) or "").strip()
        speed = (read_text("/sys/class/net/%s/speed" % name, 32) or "").strip()  # EINVAL: down
        if mtu.isdigit():
            links[name] = {"mtu": int(mtu), "operstate": state,
                           "speed": int(speed) if speed.isdigit() else None}
    hostname = socket.gethostname()
    return {"hostname": hostname, "hostname_addrs": addresses(hostname),
            "peers": {name: addresses(name) for name in ARGS.get("peers", ())},
            "interfaces": interfaces, "links": links}


def listening_ports():
    """TCP ports in LISTEN state, with the address they are bound to."""
    ports = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in (read_text(table) or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":  # LISTEN
                address, port = fields[1].split(":")
                ports.append({"port": int(port, 16), "any": address == "0" * width,
                              "inode": fields[9] if len(fields) > 9 else ""})
    return ports


@section("jupyter")
def jupyter():
    """Kernelspecs (name, display name, python) and running servers, without their tokens."""
    if not ARGS.get("jupyter"):
        return None
    home = os.path.expanduser("~")
    prefixes = [os.path.join(home, ".local/share/jupyter"), ARGS["env_prefix"] + "/share/jupyter",
                ARGS["miniconda"] + "/share/jupyter", "/usr/local/share/jupyter",
                "/usr/share/jupyter"]
    kernels = []
    for prefix in prefixes:
        folder = os.path.join(prefix, "kernels")
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            try:
                with open(os.path.join(folder, name, "kernel.json")) as stream:
                    spec = loads(stream.read(65536))
            except (OSError, ValueError) as exc:
                kernels.append({"name": name, "path": folder, "error": str(exc)})
                continue
            kernels.append({"name": name, "path": folder, "display_name":
                            spec.get("display_name"), "python": (spec.get("argv") or [""])[0]})
    procs = jupyter_processes()
    folders = runtime_folders(home, procs)
    servers = []
    for folder in folders:
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            if name.startswith(("jpserver-", "nbserver-")) and name.endswith(".json") and \
                    len(servers) < 64:
                server = server_file(os.path.join(folder, name))
                if server is not None:
                    servers.append(server)
    # /proc/net/tcp walks the kernel's whole socket table (10 ms): only when a server runs
    live = any(server["alive"] for server in servers) or bool(procs)
    listening = listening_ports() if live else []
    by_inode = {p["inode"]: p for p in listening}
    for proc in procs:  # what each Jupyter process listens on, from its own sockets
        proc["listening"] = [{"port": by_inode[i]["port"], "any": by_inode[i]["any"]}
                             for i in proc.pop("inodes") if i in by_inode]
    return {"kernels": kernels, "servers": servers, "processes": procs[:32],
            "listening": [{"port": p["port"], "any": p["any"]} for p in listening]}


def same_netns(pid):
    """Whether pid lives in this probe's network namespace (a container's or another
    node's process is not this node's server)."""
    try:
        return os.readlink("/proc/%s/ns/net" % pid) == os.readlink("/proc/self/ns/net")
    except OSError:
        return False


def server_file(path):
    """A Jupyter server's runtime file, without its token: only whether there is one."""
    try:
        with open(path) as stream:
            info = loads(stream.read(65536))
        owner = _name(pwd.getpwuid, os.stat(path).st_uid)
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    pid = info.get("pid")
    alive = isinstance(pid, int) and os.path.exists("/proc/%s" % pid) and same_netns(pid)
    return {"pid": pid if isinstance(pid, int) else None, "alive": alive,
            "port": info.get("port") if isinstance(info.get("port"), int) else None,
            "hostname": str(info.get("hostname") or info.get("ip") or "")[:256] or None,
            "has_token": bool(info.get("token")), "password": bool(info.get("password")),
            "file": os.path.basename(path)[:256], "folder": os.path.dirname(path)[:4096],
            "owner": owner[:256]}


JUPYTER_WORDS = (b"jupyter-lab", b"jupyter-notebook", b"jupyter-server", b"jupyterlab",
                 b"jupyter_server", b"jupyter lab", b"jupyter notebook", b"jupyter server",
                 b"notebook.app")


def jupyter_processes():
    """Jupyter servers running in this node's network namespace, whoever runs them: pid,
    user, the runtime folder their environment names, and their socket inodes."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or len(found) >= 32:
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as stream:
                cmd = stream.read(4096).replace(b"\0", b" ")
        except OSError:
            continue
        if not any(w in cmd for w in JUPYTER_WORDS) or b"ipykernel" in cmd or \
                not same_netns(pid):
            continue
        env = {}
        try:
            with open("/proc/%s/environ" % pid, "rb") as stream:
                for item in stream.read(65536).split(b"\0"):
                    key, _, value = item.partition(b"=")
                    if key in (b"JUPYTER_RUNTIME_DIR", b"HOME"):
                        env[key.decode()] = value.decode("utf-8", "replace")[:4096]
        except OSError:
            pass
        inodes = []
        try:
            for fd in os.listdir("/proc/%s/fd" % pid)[:1024]:
                target = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                if target.startswith("socket:["):
                    inodes.append(target[8:-1])
        except OSError:
            pass
        try:
            user = _name(pwd.getpwuid, os.stat("/proc/%s" % pid).st_uid)[:256]
        except OSError:
            continue  # it ended while we looked
        found.append({"pid": int(pid), "user": user,
                      "runtime_dir": env.get("JUPYTER_RUNTIME_DIR") or (
                          env["HOME"] + "/.local/share/jupyter/runtime" if "HOME" in env
                          else None), "inodes": inodes})
    return found


def runtime_folders(home, procs):
    """Every place a Jupyter server writes its runtime file: this user's, every home's
    under /home and /root, $JUPYTER_RUNTIME_DIR, and what each running server names."""
    tail = ".local/share/jupyter/runtime"
    folders = [os.path.join(home, tail), os.path.join("/root", tail)]
    if os.environ.get("JUPYTER_RUNTIME_DIR"):
        folders.append(os.environ["JUPYTER_RUNTIME_DIR"])
    try:
        homes = sorted(os.listdir("/home"))[:256]
    except OSError:
        homes = []
    folders += [os.path.join("/home", h, tail) for h in homes]
    folders += [p["runtime_dir"] for p in procs if p["runtime_dir"]]
    return [f for i, f in enumerate(folders) if f not in folders[:i]][:300]
