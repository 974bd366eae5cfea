# The one probe per node: gathers every fact the node can tell in one run, stdlib only.
# The controller prepends `ARGS = ...` and runs it with `python -I -c`.
# Every section catches its own errors, so one broken area never hides the others.
# Imports are few on purpose: json, socket, platform and subprocess cost 21 ms of a
# 40 ms probe (measured), so output is encoded by to_json(), json is imported only
# when a value needs real decoding, and run() is built on os.fork.
import grp
import math
import os
import pwd
import select
import stat
import sys
import time

PROBE_VERSION = 1
ARGS = globals().get("ARGS", {})
ERRORS = {}
ESCAPES = {i: "\\u%04x" % i for i in range(32)}
ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\t"): "\\t"})


def to_json(value):
    if value is None or value is True or value is False:
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, dict):
        return "{%s}" % ",".join(to_json(str(k)) + ":" + to_json(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[%s]" % ",".join(to_json(v) for v in value)
    return '"%s"' % str(value).translate(ESCAPES)


class _ScanContext:
    """What the C scanner behind json.loads reads from its decoder; see loads()."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity
    memo = None  # set per call


def loads(text):
    """json.loads through the C scanner it uses, without importing json (and re, enum)."""
    try:
        import _json
    except ImportError:  # no C accelerator on this Python: the real thing
        import json
        return json.loads(text)
    _ScanContext.memo = {}
    text = text.strip()
    value, end = _json.make_scanner(_ScanContext)(text, 0)
    if end != len(text):
        raise ValueError("extra data at %d" % end)
    return value


def from_json(text):
    """Decode a JSON scalar as written in conda-meta."""
    if text.startswith('"') and text.endswith('"') and "\\" not in text:
        return text[1:-1]
    if text.lstrip("-").isdigit():
        return int(text)
    return loads(text)


def section(name):
    def wrap(func):
        def run():
            try:
                return func()
            except Exception as exc:
                ERRORS[name] = "%s: %s" % (type(exc).__name__, exc)
                return None
        return run
    return wrap


def run(argv, timeout):
    """argv's exit code, stdout and stderr; killed (with its group) after timeout s."""
    pipes = [os.pipe(), os.pipe()]
    pid = os.fork()
    if pid == 0:  # child: own process group, so a timeout kills what it started too
        try:
            os.setpgid(0, 0)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(pipes[0][1], 1)
            os.dup2(pipes[1][1], 2)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    for _, write_end in pipes:
        os.close(write_end)
    chunks = {pipes[0][0]: [], pipes[1][0]: []}
    open_fds = list(chunks)
    deadline = time.time() + timeout
    while open_fds and time.time() < deadline:
        ready, _, _ = select.select(open_fds, [], [], max(0.0, deadline - time.time()))
        for fd in ready:
            data = os.read(fd, 65536)
            chunks[fd].append(data) if data else open_fds.remove(fd)
    timed_out = bool(open_fds)
    if timed_out:
        _kill_group(pid)
    for fd in chunks:
        os.close(fd)
    status = os.waitpid(pid, 0)[1]
    rc = 124 if timed_out else os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + (
        os.WTERMSIG(status))
    out, err = (b"".join(chunks[p[0]]).decode("utf-8", "replace") for p in pipes)
    return {"rc": rc, "stdout": out, "stderr": "timed out after %s s" % timeout if timed_out
            else err}


def _kill_group(pid):
    for target in (-pid, pid):
        try:
            os.kill(target, 9)  # SIGKILL; the signal module would import enum
        except OSError:
            pass


def path_info(path):
    try:
        st = os.lstat(path)
    except OSError:
        return {"exists": False}
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "file"
    info = {"exists": True, "kind": kind, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
            "gid": st.st_gid, "owner": _name(pwd.getpwuid, st.st_uid)}
    if kind == "link":
        info["target"] = os.readlink(path)
        info["resolves"] = os.path.exists(path)
    return info


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


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


@section("miniconda")
def miniconda():
    prefix = ARGS["miniconda"]
    layout = ["bin/conda", "condabin/conda", "etc/profile.d/conda.sh", "conda-meta",
              "bin/python"]
    facts = {"prefix": prefix, "root": path_info(prefix),
             "layout": {rel: path_info(os.path.join(prefix, rel)) for rel in layout}}
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
    if LOGIN.get("conda_sh") is not None:
        facts["conda_sh"] = LOGIN["conda_sh"]
    return facts


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


@section("gpu")
def gpu():
    """nvidia-smi's full XML report (parsed on the controller) and /dev/nvidia* nodes.
    No nvidia-smi is a fact (a GPU-less node), not an error."""
    devices = sorted(d for d in os.listdir("/dev") if d.startswith("nvidia"))
    folders = [*os.environ.get("PATH", "").split(":"), "/usr/bin", "/usr/local/nvidia/bin"]
    found = [os.path.join(d, "nvidia-smi") for d in folders if d]
    smi = next((p for p in found if os.access(p, os.X_OK)), None)
    facts = {"dev": devices, "nvidia_smi": smi, "cuda_visible_devices":
             LOGIN.get("cuda_visible_devices")}
    if smi:
        done = run([smi, "-q", "-x"], 30)
        facts["smi"] = {"format": "xml", "rc": done["rc"], "text": done["stdout"],
                        "error": done["stderr"].strip()[-500:]}
    return facts


RECORD_KEYS = ("name", "version", "build", "build_number", "channel", "subdir", "url", "md5",
               "sha256")


def conda_records(prefix):
    meta = os.path.join(prefix, "conda-meta")
    records = []
    for name in sorted(os.listdir(meta)):
        if name.endswith(".json"):
            with open(os.path.join(meta, name)) as stream:
                records.append(conda_record(stream.read()))
    return records


def conda_record(text):
    """The record's top-level scalars. conda and rattler both write indent=2 JSON whose
    file lists run to megabytes (pytorch: 4 MB, 20 ms to decode); the scalars we need sit
    on lines of their own at two spaces, so find them there, else decode it all."""
    found = {}
    for key in RECORD_KEYS:
        at = text.find('\n  "%s": ' % key)
        if at < 0:
            continue
        start = at + len(key) + 7
        end = text.find("\n", start)
        found[key] = from_json(text[start:end if end >= 0 else None].rstrip().rstrip(","))
    if "name" in found and "version" in found and "build" in found:
        return {key: found.get(key) for key in RECORD_KEYS}
    doc = loads(text)
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


@section("env")
def env():
    prefix = ARGS["env_prefix"]
    facts = {"name": ARGS["env_name"], "prefix": prefix, "root": path_info(prefix)}
    if not facts["root"]["exists"]:
        return facts
    facts["world_writable"] = world_writable(prefix, 1)
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        facts["conda"] = conda_records(prefix)
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


@section("net")
def net():
    """Name resolution of this node and its peers, and network interfaces' state."""
    import socket  # 3 ms of imports; only this section needs it

    def addresses(name):
        try:
            return sorted({a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET)})
        except OSError as exc:
            return "cannot resolve: %s" % exc
    interfaces = {}
    for name in os.listdir("/sys/class/net"):
        try:
            with open("/sys/class/net/%s/operstate" % name) as stream:
                interfaces[name] = stream.read().strip()
        except OSError:
            interfaces[name] = "unknown"
    hostname = socket.gethostname()
    return {"hostname": hostname, "hostname_addrs": addresses(hostname),
            "peers": {name: addresses(name) for name in ARGS.get("peers", ())},
            "interfaces": interfaces}


def read_text(path, limit=1 << 20):
    try:
        with open(path, errors="replace") as stream:
            return stream.read(limit)
    except OSError:
        return None


def wildcard(name, pattern):
    """fnmatch for '*' and '?' without re."""
    if not pattern:
        return not name
    if pattern[0] == "*":
        return any(wildcard(name[i:], pattern[1:]) for i in range(len(name) + 1))
    return bool(name) and pattern[0] in ("?", name[0]) and wildcard(name[1:], pattern[1:])


def expand(pattern):
    """Files matching a pattern whose wildcards are in the last component (sshd's Include)."""
    folder, base = os.path.split(pattern)
    if "*" not in base and "?" not in base:
        return [pattern] if os.path.exists(pattern) else []
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return [os.path.join(folder, n) for n in names if wildcard(n, base)]


def included_files(path, pattern_base):
    """A config file and every file its Include lines name (globs; sshd/ssh semantics)."""
    out, queue = {}, [path]
    while queue and len(out) < 64:
        current = queue.pop(0)
        text = read_text(current)
        if text is None or current in out:
            continue
        out[current] = text
        for line in text.splitlines():
            words = line.strip().split()
            if len(words) > 1 and words[0].lower() == "include":
                for word in words[1:]:
                    pattern = os.path.expanduser(word)
                    if not pattern.startswith("/"):
                        pattern = os.path.join(pattern_base, pattern)
                    queue += expand(pattern)
    return out


def key_kind(path):
    """'private', 'not a private key', or None; the key itself never leaves the node."""
    text = read_text(path, 200)
    if text is None:
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    return "private" if first.startswith("-----BEGIN") and "PRIVATE KEY" in first \
        else "not a private key"


@section("ssh")
def ssh():
    spec = ARGS.get("ssh")
    if not spec:
        return None
    home = os.path.expanduser("~")
    identity = os.path.expanduser(spec["identity_file"])
    client = os.path.expanduser(spec["client_config"])
    facts = {"home": home, "dot_ssh": path_info(os.path.join(home, ".ssh")),
             "identity": dict(path_info(identity), path=identity, kind=key_kind(identity)),
             "identity_pub": read_text(identity + ".pub", 16384),
             "client_config": included_files(client, os.path.join(home, ".ssh")),
             "client_config_path": client}
    sshd = spec.get("sshd_binary", "/usr/sbin/sshd")
    peer = (os.environ.get("SSH_CONNECTION") or "127.0.0.1 0").split()
    user = pwd.getpwuid(os.getuid())[0]
    if os.path.exists(sshd):
        done = run([sshd, "-T", "-C", "user=%s,host=%s,addr=%s" % (user, peer[0], peer[0])], 20)
        facts["sshd_t"] = {"rc": done["rc"], "text": done["stdout"],
                           "error": done["stderr"].strip()[-300:]}
    facts["sshd_config"] = included_files("/etc/ssh/sshd_config", "/etc/ssh")
    patterns = [".ssh/authorized_keys", ".ssh/authorized_keys2"]
    for line in facts.get("sshd_t", {}).get("text", "").splitlines():
        if line.startswith("authorizedkeysfile "):
            patterns = line.split()[1:]
    keys = []
    for pattern in patterns:
        path = pattern.replace("%h", home).replace("%u", user).replace("%%", "%")
        if not path.startswith("/"):
            path = os.path.join(home, path)
        for line in (read_text(path) or "").splitlines():
            words = line.split()
            for i, word in enumerate(words[:-1]):
                if word.startswith(("ssh-", "ecdsa-", "sk-")):
                    keys.append(words[i] + " " + words[i + 1])
                    break
    facts["authorized_keys"] = keys
    return facts


def listening_ports():
    """TCP ports in LISTEN state, with the address they are bound to."""
    ports = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in (read_text(table) or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":  # LISTEN
                address, port = fields[1].split(":")
                ports.append({"port": int(port, 16), "any": address == "0" * width})
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
                    spec = loads(stream.read())
            except (OSError, ValueError) as exc:
                kernels.append({"name": name, "path": folder, "error": str(exc)})
                continue
            kernels.append({"name": name, "path": folder, "display_name":
                            spec.get("display_name"), "python": (spec.get("argv") or [""])[0]})
    servers = []
    runtime = os.path.join(home, ".local/share/jupyter/runtime")
    for name in sorted(os.listdir(runtime)) if os.path.isdir(runtime) else ():
        if name.startswith(("jpserver-", "nbserver-")) and name.endswith(".json"):
            try:
                with open(os.path.join(runtime, name)) as stream:
                    info = loads(stream.read())
            except (OSError, ValueError):
                continue
            alive = os.path.exists("/proc/%s" % info.get("pid"))
            # the token stays here: only whether there is one leaves the node
            servers.append({"pid": info.get("pid"), "port": info.get("port"), "alive": alive,
                            "hostname": info.get("hostname"), "has_token": bool(info.get("token")),
                            "password": bool(info.get("password")), "file": name})
    # /proc/net/tcp walks the kernel's whole socket table (10 ms): only when a server runs
    live = any(server["alive"] for server in servers)
    return {"kernels": kernels, "servers": servers,
            "listening": listening_ports() if live else []}


def excluded(name, patterns):
    """Exact names and '*suffix' patterns only: fnmatch would import re (4 ms)."""
    for pattern in patterns:
        if name == pattern or (pattern.startswith("*") and name.endswith(pattern[1:])):
            return True
    return False


def tree_hashes(top, patterns, max_files):
    """relative path -> first 16 hex of sha256, for every file under top not excluded."""
    import hashlib
    hashes = {}
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not excluded(d, patterns))
        for name in files:
            if excluded(name, patterns):
                continue
            path = os.path.join(folder, name)
            if len(hashes) >= max_files:
                return hashes, True
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as stream:
                    for block in iter(lambda: stream.read(1 << 20), b""):
                        digest.update(block)
            except OSError as exc:
                hashes[os.path.relpath(path, top)] = "unreadable: %s" % exc.strerror
                continue
            hashes[os.path.relpath(path, top)] = digest.hexdigest()[:16]
    return hashes, False


@section("sync")
def sync():
    spec = ARGS.get("sync")
    if not spec:
        return None
    target = spec["target"]
    if not os.path.isdir(target):
        return {"target": target, "exists": False}
    hashes, truncated = tree_hashes(target, spec["exclude"], spec["max_files"])
    return {"target": target, "exists": True, "files": hashes, "truncated": truncated}


def main():
    started = time.time()
    facts = {"probe_version": PROBE_VERSION, "section_seconds": {}}
    for name, gather in (("node", node), ("login", login), ("miniconda", miniconda),
                         ("env", env), ("gpu", gpu), ("net", net), ("sync", sync), ("ssh", ssh),
                         ("jupyter", jupyter),
                         ("runtime", runtime)):
        begun = time.time()
        facts[name] = gather()
        facts["section_seconds"][name] = round(time.time() - begun, 4)
    facts["probe_errors"] = ERRORS
    facts["probe_seconds"] = round(time.time() - started, 3)
    sys.stdout.write(to_json(facts))


if __name__ == "__main__":  # also true under `python -c`; selftests import it instead
    main()
