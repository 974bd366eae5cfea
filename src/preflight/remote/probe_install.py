# Probe sections: the node itself, its login shell, Miniconda, the env and its runtime.
# Part of the one probe script (see __init__.probe_source); names from probe_base.


@section("node")
def node():
    uname = os.uname()
    os_release = {}
    if os.path.exists("/etc/os-release"):
        for line in open("/etc/os-release"):
            key, _, value = line.strip().partition("=")
            if key:
                os_release[key] = value.strip('"')
    return {"hostname": uname.nodename, "kernel": uname.release,
            "os": os_release.get("PRETTY_NAME", ""), "uid": os.getuid(),
            "user": _name(pwd.getpwuid, os.getuid()), "groups": [
                _name(grp.getgrgid, g) for g in os.getgroups()],
            "probe_python": [sys.executable, python_version()], "time": time.time(),
            "shm": space("/dev/shm"), "disks": disks(), "glibc": glibc(),
            "tunables": tunables(), "stray": stray(), "modules": kernel_modules(),
            "cmdline_iommu": iommu_args(), "timesync": timesync(),
            "daemons": sorted(RUNNING),
            # what provisioning runs here: the env archive's tar and its decompressor,
            # rsync for the code tree (a plan that needs a missing one cannot be applied)
            "tools": {name: which(name) is not None for name in ("tar", "zstd", "gzip",
                                                                  "rsync")}}


MODULES = ("nvidia", "nvidia_uvm", "nvidia_peermem", "nv_peer_mem", "gdrdrv", "ib_core",
           "mlx5_core")


def kernel_modules():
    """The loaded kernel modules a GPU and RDMA node's jobs rest on (of MODULES)."""
    text = read_text("/proc/modules", 1 << 20) or ""
    loaded = {line.split(" ", 1)[0] for line in text.splitlines()}
    return sorted(m for m in MODULES if m in loaded)


def iommu_args():
    """The kernel command line's IOMMU words (intel_iommu=, amd_iommu=, iommu=, ...)."""
    words = (read_text("/proc/cmdline", 8192) or "").split()
    return [w[:128] for w in words if w.startswith(("intel_iommu=", "amd_iommu=", "iommu=",
                                                    "iommu.passthrough=", "iommu.strict="))][:16]


# daemons the /proc scan notes by their 15-character comm: time sync, Fabric Manager
DAEMONS = {"chronyd": "chronyd", "systemd-timesyn": "systemd-timesyncd", "ntpd": "ntpd",
           "nv-fabricmanage": "nv-fabricmanager"}
RUNNING = set()


def timesync():
    """The time daemon this node runs and whether it says it is synchronised (None where
    it cannot tell): timesyncd's flag file, chronyc's leap status."""
    if "chronyd" in RUNNING:
        chronyc = which("chronyc", "/usr/sbin")
        if chronyc is None:
            return {"daemon": "chronyd", "synchronized": None}
        done = run([chronyc, "-n", "tracking"], 5)
        leap = [ln.split(":", 1)[1].strip() for ln in done["stdout"].splitlines()
                if ln.startswith("Leap status")]
        return {"daemon": "chronyd", "synchronized": leap[0] == "Normal" if leap else None}
    if "systemd-timesyncd" in RUNNING:
        return {"daemon": "systemd-timesyncd",
                "synchronized": os.path.exists("/run/systemd/timesync/synchronized")}
    if "ntpd" in RUNNING:
        return {"daemon": "ntpd", "synchronized": None}
    return {"daemon": None, "synchronized": None}


def stray():
    """Work already on the node: processes stuck in uninterruptible sleep (D in three
    looks over a second: hung I/O, a dead NFS mount), and on the master, a listener on the
    master port that is still there a second later (a leftover torchrun: the collective
    cannot bind it). Each second is spent only when something was seen."""
    hung = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        text = read_text("/proc/%s/stat" % pid, 1024) or ""
        name, _, rest = text.rpartition(")")
        comm = name.partition("(")[2]
        if comm in DAEMONS:
            RUNNING.add(DAEMONS[comm])
        if rest[1:2] == "D" and len(hung) < 20:
            hung.append({"pid": int(pid), "comm": comm[:64]})
    for _ in range(2):  # a disk read waits in D for milliseconds: only the stuck count
        if hung:
            time.sleep(0.5)
            hung = [h for h in hung if _state("/proc/%d/stat" % h["pid"]) == "D"]
    port = ARGS.get("master_port")
    found = {"d_state": hung}
    if port:
        listening = any(p["port"] == port for p in listening_ports())
        if listening:  # a run that is ending closes its socket within a moment
            time.sleep(1.0)
            listening = any(p["port"] == port for p in listening_ports())
        found["master_port"] = {"port": port, "listening": listening}
    return found


def _state(path):
    return (read_text(path, 1024) or "").rpartition(")")[2][1:2]


def glibc():
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return ""


def tunables():
    """Kernel settings a job's speed rests on, as the node has them (compared across nodes;
    judged only against values cluster.yaml names): transparent huge pages, automatic NUMA
    balancing, cpu0's frequency governor. None where the node does not expose one."""
    def first(path):
        text = read_text(path, 256)
        return text.strip() if text is not None else None
    thp = first("/sys/kernel/mm/transparent_hugepage/enabled")
    if thp and "[" in thp:  # "always [madvise] never": the bracketed one is in force
        thp = thp.split("[", 1)[1].split("]", 1)[0]
    return {"thp": thp, "numa_balancing": first("/proc/sys/kernel/numa_balancing"),
            "cpu_governor": first("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")}


def space(path):
    """Size, free bytes and inodes of the file system holding path (None where none)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return {"size": st.f_blocks * st.f_frsize, "free": st.f_bavail * st.f_frsize,
            "inodes": st.f_files, "inodes_free": st.f_favail}


def disks():
    """Where a job writes: the env, the workspace, /tmp, $TMPDIR and the home directory,
    each measured at its nearest existing folder (a missing workspace is another check's)."""
    wanted = {"env": ARGS.get("env_prefix"), "workspace": ARGS.get("workspace"),
              "tmp": "/tmp", "tmpdir": os.environ.get("TMPDIR"),
              "home": os.path.expanduser("~")}
    found = {}
    for role, path in wanted.items():
        if not path:
            continue
        at = path
        while at != "/" and not os.path.exists(at):
            at = os.path.dirname(at.rstrip("/")) or "/"
        measured = space(at)
        if measured is not None:
            measured["path"] = path[:4096]
            found[role] = measured
    return found


def python_version():
    return "%d.%d.%d" % sys.version_info[:3]


def python_runs(path):
    done = run([path, "-c", "import sys; print(sys.version.split()[0])"], 20)
    return {"path": path, "runs": done["rc"] == 0, "version": done["stdout"].strip(),
            "error": done["stderr"].strip()[-500:]}


def world_writable(top, depth):
    """Paths under top (to depth levels) that anyone may write, skipping symlinks."""
    found = []
    for folder, dirs, files in os.walk(top):
        level = folder[len(top):].count(os.sep)
        if level >= depth:
            dirs[:] = []
        for name in dirs + files:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
            if st.st_mode & stat.S_IWOTH and not sticky_dir:
                found.append(path)
        if len(found) > 50:
            break
    return found[:50]


LOGIN = {}
# One login shell, as a user's ssh session gets (profile files run first), tells two
# things: CUDA_VISIBLE_DEVICES there, and whether conda.sh sources cleanly.
LOGIN_SCRIPT = (
    'printf "CVD=%s\\n" "${CUDA_VISIBLE_DEVICES-__unset__}"; '
    '[ -f "$0" ] || exit 99; . "$0" && command -v conda >/dev/null')


@section("login")
def login():
    conda_sh = os.path.join(ARGS["miniconda"], "etc", "profile.d", "conda.sh")
    shell = "bash" if os.path.exists("/bin/bash") else "sh"
    done = run([shell, "-lc", LOGIN_SCRIPT, conda_sh], 20)
    cvd = None
    for line in done["stdout"].splitlines():
        if line.startswith("CVD="):
            cvd = None if line[4:] == "__unset__" else line[4:]
    LOGIN["cuda_visible_devices"] = cvd
    if done["rc"] != 99:
        LOGIN["conda_sh"] = {"rc": done["rc"], "stderr": done["stderr"],
                             "stdout": done["stdout"]}
    return {"cuda_visible_devices": cvd, "shell": shell}


@section("miniconda")
def miniconda():
    prefix = ARGS["miniconda"]
    layout = ["bin/conda", "condabin/conda", "etc/profile.d/conda.sh", "conda-meta",
              "bin/python"]
    facts = {"prefix": prefix, "root": path_info(prefix),
             "layout": {rel: path_info(os.path.join(prefix, rel)) for rel in layout},
             "installing": os.path.exists(installing_marker(prefix))}
    if not facts["root"]["exists"]:
        return facts
    facts["world_writable"] = world_writable(prefix, 2)
    base = os.path.join(prefix, "bin", "python")
    if os.path.realpath(sys.executable) == os.path.realpath(base):
        # this probe is running on it: it runs (and we spare a process start)
        facts["base_python"] = {"path": base, "runs": True, "error": "",
                                "version": python_version()}
    else:
        facts["base_python"] = python_runs(base)
    if LOGIN.get("conda_sh") is not None:  # the login section, registered before this one
        facts["conda_sh"] = LOGIN["conda_sh"]
    return facts


def installing_marker(prefix):
    """Set by `preflight provision` while an installer runs: a base found with it is partial."""
    head, tail = os.path.split(prefix.rstrip("/"))
    return os.path.join(head, ".%s.preflight-installing" % tail)


RECORD_KEYS = ("name", "version", "build", "build_number", "channel", "subdir", "url", "md5",
               "sha256")
RECORD_REQUIRED = ("name", "version", "build")


def conda_records(prefix, files=None):
    """(records, broken): every conda-meta/*.json decoded in full, as conda does before it
    trusts an env; a truncated, empty or incomplete record is reported with its file.
    files, a list, receives (package, paths_data entries) for the integrity pass."""
    meta = os.path.join(prefix, "conda-meta")
    records, broken = [], []
    for name in sorted(os.listdir(meta)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(meta, name)
        try:
            with open(path, "rb") as stream:
                record = conda_record(stream.read().decode("utf-8"), files)
        except Exception as exc:
            broken.append({"file": path, "error": "%s: %s" % (type(exc).__name__, exc)})
            continue
        record["file"] = name
        records.append(record)
    return records, broken


def conda_record(text, files=None):
    """The record's top-level scalars, after the whole record is decoded (4 MB for
    pytorch: the C scanner takes ~10 ms; a truncated record must not pass)."""
    doc = loads(text)
    if not isinstance(doc, dict):
        raise ValueError("a record is a JSON object, found %s" % type(doc).__name__)
    for key in RECORD_REQUIRED:
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise ValueError("no %r in the record" % key)
    if not isinstance(doc.get("files", []), list):
        raise ValueError("'files' is not a list")
    paths = (doc.get("paths_data") or {}).get("paths") if isinstance(
        doc.get("paths_data"), dict) else None
    if files is not None and isinstance(paths, list):
        files.append((doc["name"], paths))
    return {key: doc.get(key) for key in RECORD_KEYS}


# --- installed bytes: every file of every record as conda-meta recorded it ---------------
MISMATCHES_MAX = 50


def integrity(prefix, files, dists, mode):
    """Every hardlinked file of every conda record (paths_data) and of every pip-installed
    dist (RECORD) exists with its recorded size (one lstat each, ~3 us); with mode
    "sha256" shared libraries and Python files are hashed too, as conda's verify does.
    A file whose prefix conda rewrote at install is sized only where its placeholder was
    binary (padded to the same size); text ones have sha256_in_prefix."""
    started = time.time()
    found, counts = [], {"files": 0, "hashed": 0, "unsized": 0}
    hasher = None
    if mode == "sha256":
        import hashlib
        hasher = hashlib.sha256
    join = os.path.join
    ctx = (hasher, found, counts)
    for package, paths in files:
        for entry in paths:
            if not isinstance(entry, dict) or entry.get("path_type", "hardlink") != "hardlink":
                continue
            rel = entry.get("_path")
            if not isinstance(rel, str):
                continue
            counts["files"] += 1
            text = entry.get("file_mode") == "text" and entry.get("prefix_placeholder")
            digest = entry.get("sha256_in_prefix") or (None if text else entry.get("sha256"))
            _one(join(prefix, rel), rel, package, size=None if text else entry.get(
                "size_in_bytes"), digest=digest, ctx=ctx)
    for dist in dists:
        if dist.get("installer") in (None, "conda") or not dist["path"].endswith(".dist-info"):
            continue  # conda's own dists are its records' files, checked above
        site = os.path.dirname(dist["path"])
        record = read_text(join(dist["path"], "RECORD"), 4 << 20)
        for line in (record or "").splitlines():
            rel, _, rest = line.partition(",")
            algo_digest, _, size = rest.partition(",")
            if not rel or not size.isdigit():
                continue
            counts["files"] += 1
            digest = None
            if hasher is not None and algo_digest.startswith("sha256="):
                digest = _b64_hex(algo_digest[7:])
            _one(os.path.normpath(join(site, rel)), rel, dist.get("name") or "?",
                 size=int(size), digest=digest, ctx=ctx)
    return {"mode": mode, "files": counts["files"], "hashed": counts["hashed"],
            "unsized": counts["unsized"], "mismatches": found[:MISMATCHES_MAX],
            "more": max(0, len(found) - MISMATCHES_MAX), "seconds": round(time.time() - started,
                                                                           4)}


def _one(path, rel, package, *, size, digest, ctx):
    """Check one file; ctx is (hasher or None, the mismatches so far, the counts)."""
    hasher, found, counts = ctx
    try:
        st = os.lstat(path)
    except OSError as exc:
        found.append({"file": rel, "package": package, "what": "missing",
                      "expected": "a file", "found": exc.strerror or "not there"})
        return
    if not stat.S_ISREG(st.st_mode):
        found.append({"file": rel, "package": package, "what": "kind", "expected": "a file",
                      "found": "a link" if stat.S_ISLNK(st.st_mode) else "not a file"})
        return
    if size is None:
        counts["unsized"] += 1
    elif st.st_size != size:
        found.append({"file": rel, "package": package, "what": "size",
                      "expected": "%d bytes" % size, "found": "%d bytes" % st.st_size})
        return
    if hasher is not None and digest and (rel.endswith(".py") or
                                          ".so" in os.path.basename(rel)):
        counts["hashed"] += 1
        got = _sha256(path, hasher)
        if got != digest:
            found.append({"file": rel, "package": package, "what": "sha256",
                          "expected": digest[:16], "found": (got or "unreadable")[:16]})


def _sha256(path, hasher):
    digest = hasher()
    try:
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _b64_hex(text):
    """A RECORD's urlsafe, unpadded base64 digest as hex, as conda-meta writes it."""
    import base64
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).hex()
    except ValueError:
        return None


def pip_dists(prefix):
    """Every dist-info/egg-info in the env's site-packages, with who installed it."""
    dists = []
    lib = os.path.join(prefix, "lib")
    for pyver in sorted(os.listdir(lib)) if os.path.isdir(lib) else []:
        site = os.path.join(lib, pyver, "site-packages")
        if not pyver.startswith("python") or not os.path.isdir(site):
            continue
        for entry in sorted(os.listdir(site)):
            if entry.endswith((".dist-info", ".egg-info")):
                dists.append(_dist(os.path.join(site, entry)))
    return dists


def _dist(path):
    folder = os.path.basename(path)
    name = version = None
    stem = folder[: -len(".dist-info")]
    if folder.endswith(".dist-info") and stem.count("-") == 1:
        # {name}-{version}.dist-info with the name's '-' escaped as '_', as installers
        # write it (PEP 491): no need to open METADATA (90 dists: 5 ms)
        name, version = stem.split("-")
        name = name.replace("_", "-")
    meta_file = os.path.join(path, "METADATA" if path.endswith(".dist-info") else "PKG-INFO")
    if name is None and os.path.isfile(meta_file):
        for line in open(meta_file, errors="replace"):
            if line.startswith("Name:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("Version:"):
                version = line.split(":", 1)[1].strip()
            elif not line.strip():
                break
    installer_file = os.path.join(path, "INSTALLER")
    installer = open(installer_file).read().strip() if os.path.isfile(installer_file) else None
    return {"name": name, "version": version, "installer": installer,
            "path": path}


def env_versions(prefix):
    """Versioned installs beside the env (`envs/.NAME-<hash>`, provision's layout) and
    whether each is complete (its marker is written last)."""
    folder, name = os.path.split(prefix.rstrip("/"))
    found = {}
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return found
    for entry in entries:
        if entry.startswith("." + name + "-") and len(found) < 32:
            marker = os.path.join(folder, entry, "conda-meta", ".preflight-complete")
            found[entry] = os.path.exists(marker)
    return found


@section("env")
def env():
    prefix = ARGS["env_prefix"]
    facts = {"name": ARGS["env_name"], "prefix": prefix, "root": path_info(prefix),
             "versions": env_versions(prefix)}
    if not facts["root"]["exists"]:
        return facts
    facts["world_writable"] = world_writable(prefix, 1)
    files = []
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        facts["conda"], facts["conda_broken"] = conda_records(prefix, files)
    facts["pip"] = pip_dists(prefix)
    mode = ARGS.get("verify", "size")
    if mode != "off":  # while the env's Python imports torch (runtime), not before it
        DEFERRED.append(("env", lambda: facts.__setitem__(
            "integrity", integrity(prefix, files, facts["pip"], mode))))
    return facts


@section("runtime")
def runtime():
    if not ARGS["runtime_script"]:
        return {"ok": False, "skipped": True, "error": "runtime probe not requested"}
    python = os.path.join(ARGS["env_prefix"], "bin", "python")
    if not os.path.exists(python):
        return {"ok": False, "error": "%s does not exist" % python}
    child = spawn([python, "-c", ARGS["runtime_script"]], time_left(ARGS["runtime_timeout"]))
    run_deferred()
    done = finish(child)
    if done["rc"] != 0:
        return {"ok": False, "error": (done["stderr"].strip() or "exit %d" % done["rc"])[-800:]}
    result = loads(done["stdout"].strip().splitlines()[-1])
    result["ok"] = "torch_error" not in result
    return result
