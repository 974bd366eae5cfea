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
            "probe_python": [sys.executable, python_version()], "time": time.time()}


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


def conda_records(prefix):
    """(records, broken): every conda-meta/*.json decoded in full, as conda does before it
    trusts an env; a truncated, empty or incomplete record is reported with its file."""
    meta = os.path.join(prefix, "conda-meta")
    records, broken = [], []
    for name in sorted(os.listdir(meta)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(meta, name)
        try:
            with open(path, "rb") as stream:
                record = conda_record(stream.read().decode("utf-8"))
        except Exception as exc:
            broken.append({"file": path, "error": "%s: %s" % (type(exc).__name__, exc)})
            continue
        record["file"] = name
        records.append(record)
    return records, broken


def conda_record(text):
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
    return {key: doc.get(key) for key in RECORD_KEYS}


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
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        facts["conda"], facts["conda_broken"] = conda_records(prefix)
    facts["pip"] = pip_dists(prefix)
    return facts


@section("runtime")
def runtime():
    if not ARGS["runtime_script"]:
        return {"ok": False, "skipped": True, "error": "runtime probe not requested"}
    python = os.path.join(ARGS["env_prefix"], "bin", "python")
    if not os.path.exists(python):
        return {"ok": False, "error": "%s does not exist" % python}
    done = run([python, "-c", ARGS["runtime_script"]], ARGS["runtime_timeout"])
    if done["rc"] != 0:
        return {"ok": False, "error": (done["stderr"].strip() or "exit %d" % done["rc"])[-800:]}
    result = loads(done["stdout"].strip().splitlines()[-1])
    result["ok"] = "torch_error" not in result
    return result
