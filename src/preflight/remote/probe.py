# The one probe per node: gathers every fact the node can tell in one run, stdlib only.
# The controller prepends `ARGS = {...}` (JSON) and sends this file to python's stdin.
# Every section catches its own errors, so one broken area never hides the others.
import grp
import json
import os
import platform
import pwd
import socket
import stat
import subprocess
import sys
import time

PROBE_VERSION = 1
ARGS = globals().get("ARGS", {})
ERRORS = {}


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
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)
        return {"rc": done.returncode, "stdout": done.stdout.decode(errors="replace"),
                "stderr": done.stderr.decode(errors="replace")}
    except subprocess.TimeoutExpired:
        return {"rc": 124, "stdout": "", "stderr": "timed out after %s s" % timeout}
    except OSError as exc:
        return {"rc": 127, "stdout": "", "stderr": str(exc)}


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
    os_release = {}
    if os.path.exists("/etc/os-release"):
        for line in open("/etc/os-release"):
            key, _, value = line.strip().partition("=")
            if key:
                os_release[key] = value.strip('"')
    return {"hostname": socket.gethostname(), "kernel": platform.release(),
            "os": os_release.get("PRETTY_NAME", ""), "uid": os.getuid(),
            "user": _name(pwd.getpwuid, os.getuid()), "groups": [
                _name(grp.getgrgid, g) for g in os.getgroups()],
            "probe_python": [sys.executable, platform.python_version()], "time": time.time()}


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
    facts["base_python"] = python_runs(os.path.join(prefix, "bin", "python"))
    conda_sh = os.path.join(prefix, "etc", "profile.d", "conda.sh")
    if os.path.exists(conda_sh):
        # A login shell, as a user's ssh session gets: profile files run first.
        shell = "bash" if os.path.exists("/bin/bash") else "sh"
        facts["conda_sh"] = run([shell, "-lc", '. "$0" && command -v conda', conda_sh], 20)
    return facts


def conda_records(prefix):
    meta = os.path.join(prefix, "conda-meta")
    records = []
    for name in sorted(os.listdir(meta)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(meta, name)) as stream:
            doc = json.load(stream)
        records.append({key: doc.get(key) for key in (
            "name", "version", "build", "build_number", "channel", "subdir", "url",
            "requested_spec")})
    return records


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
    meta_file = os.path.join(path, "METADATA" if path.endswith(".dist-info") else "PKG-INFO")
    name = version = None
    if os.path.isfile(meta_file):
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
    result = json.loads(done["stdout"].strip().splitlines()[-1])
    result["ok"] = "torch_error" not in result
    return result


def main():
    started = time.time()
    facts = {"probe_version": PROBE_VERSION}
    for name, gather in (("node", node), ("miniconda", miniconda), ("env", env),
                         ("runtime", runtime)):
        facts[name] = gather()
    facts["probe_errors"] = ERRORS
    facts["probe_seconds"] = round(time.time() - started, 3)
    sys.stdout.write(json.dumps(facts))


main()
