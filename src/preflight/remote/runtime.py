# Runtime facts from the env's own Python: what torch itself reports on this node.
# Run by probe.py as a child process with a timeout; prints one JSON document.
import json
import os
import sys
import time


def describe(exc):
    """The exception and what caused it: `import torch` failing on a missing libcudart
    says so only in the chained exception."""
    text = "%s: %s" % (type(exc).__name__, " ".join(str(exc).split()))
    cause = exc.__cause__ or exc.__context__
    if cause is not None:  # one line: a multi-line message must not hide the cause
        text += " (caused by %s: %s)" % (type(cause).__name__, " ".join(str(cause).split()))
    return text


# The variables a job's Python, loader, CUDA and collectives read; a value whose name
# means a secret is masked here, so it never leaves the node.
LAUNCH_VARS = ("PATH", "PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONSTARTUP",
               "LD_LIBRARY_PATH", "LD_PRELOAD", "CONDA_PREFIX", "CUDA_HOME", "CUDA_PATH")
LAUNCH_PREFIXES = ("NCCL_", "GLOO_", "TORCH_", "OMP_")
SECRET_WORDS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "API_KEY",
                "ACCESS_KEY", "PRIVATE_KEY", "CREDENTIAL")


def loaded_modules(modules, prefix, limit=256):
    """torch and numpy, and every other top-level module the job's imports loaded from a
    file outside the env (torch pulls in numpy, sympy, jinja2, ...; on a healthy node
    none): where each came from, and its version. (modules recorded, modules looked at)"""
    inside = prefix.rstrip("/") + "/"
    found, seen = {}, 0
    for name in ["torch", "numpy", *sorted(modules)]:
        file = getattr(modules.get(name), "__file__", None)
        if "." in name or name in found or not isinstance(file, str) or not file:
            continue
        seen += 1
        if (name in ("torch", "numpy") or not file.startswith(inside)) and len(found) < limit:
            found[name[:256]] = {"file": file[:4096], "version": str(
                getattr(modules[name], "__version__", ""))[:64]}
    return found, seen


def limits():
    """The resource limits this process got from the launcher, as a job gets them
    ([soft, hard], -1 for unlimited): memlock (RDMA registration), nofile, nproc."""
    import resource
    found = {}
    for name, which in (("memlock", "RLIMIT_MEMLOCK"), ("nofile", "RLIMIT_NOFILE"),
                        ("nproc", "RLIMIT_NPROC")):
        pair = resource.getrlimit(getattr(resource, which))
        found[name] = [-1 if v == resource.RLIM_INFINITY else v for v in pair]
    return found


def launch_env(environ):
    chosen = sorted(k for k in environ
                    if k in LAUNCH_VARS or k.startswith(LAUNCH_PREFIXES))[:64]
    return {k[:256]: "****" if any(w in k.upper() for w in SECRET_WORDS) else environ[k][:2048]
            for k in chosen}


def on_path(name):
    """The file `name` on the launch PATH resolves to, as a shell's lookup finds it."""
    for folder in os.environ.get("PATH", "").split(":"):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return {"path": candidate[:4096], "real": os.path.realpath(candidate)[:4096]}
    return None


def site_listing(folder):
    """What a site folder holds (capped) and the lines its .pth files add to sys.path."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return {"exists": False}
    pth = {}
    for name in names:
        if name.endswith(".pth") and len(pth) < 16:
            try:
                with open(os.path.join(folder, name), errors="replace") as stream:
                    pth[name[:256]] = [line.rstrip("\n")[:512] for line in stream.readlines(16384)
                                       if line.strip() and not line.startswith("#")][:16]
            except OSError as exc:
                pth[name[:256]] = ["unreadable: %s" % exc]
    return {"exists": True, "entries": [n[:256] for n in names[:64]], "count": len(names),
            "pth": pth}


# --- shared libraries as the dynamic loader would resolve them, with no GPU and no CUDA
# init: LD_PRELOAD first, then LD_LIBRARY_PATH, then the env's own folders (conda and
# PyTorch's wheels link with RUNPATH, which the loader searches after LD_LIBRARY_PATH),
# then ld.so.cache and the default folders.
LIBRARIES = ("libnccl", "libcudart", "libcudnn", "libcublas")


def soname_of(name):
    """libcudart.so.12 -> libcudart (the families we follow), else None."""
    stem, dot, rest = name.partition(".so.")
    if not dot or stem not in LIBRARIES:
        return None
    parts = rest.split(".")
    if not all(p.isdigit() for p in parts) or len(parts) > 2 or (len(parts) == 2 and
                                                                   parts[1] != "0"):
        return None
    return stem


def listing(folder):
    try:
        return os.listdir(folder)
    except OSError:
        return ()


def env_lib_dirs(prefix):
    dirs = [os.path.join(prefix, "lib")]
    for site_dir in sys.path:
        if site_dir.startswith(prefix.rstrip("/") + "/") and site_dir.endswith("site-packages"):
            dirs.append(os.path.join(site_dir, "torch", "lib"))
            nvidia = os.path.join(site_dir, "nvidia")
            dirs += [os.path.join(nvidia, d, "lib") for d in sorted(listing(nvidia))]
    return dirs


def ld_cache():
    """{soname: path} from `ldconfig -p` (the loader's cache), for the families we follow."""
    import subprocess
    found = {}
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if os.path.exists(ldconfig):
            try:
                text = subprocess.run([ldconfig, "-p"], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, timeout=10).stdout.decode(
                                          "utf-8", "replace")
            except Exception:
                return found
            for line in text.splitlines():
                name, _, path = line.strip().partition(" => ")
                name = name.split(" ")[0]
                if soname_of(name) and name not in found:
                    found[name] = path
            break
    return found


def lib_version(path):
    """The version a library file carries: its real file name (libcudart.so.12.1.105), or
    for NCCL the banner compiled into it ("NCCL version 2.18.3+cuda12.2")."""
    real = os.path.realpath(path)
    tail = os.path.basename(real).partition(".so.")[2]
    if tail.count(".") >= 2:
        return tail[:64]
    if os.path.basename(path).startswith("libnccl"):
        marker, seen, carry = b"NCCL version ", 0, b""
        try:
            with open(real, "rb") as stream:
                while seen < (256 << 20):
                    chunk = stream.read(1 << 20)
                    if not chunk:
                        break
                    seen += len(chunk)
                    block = carry + chunk
                    at = block.find(marker)
                    if at >= 0:
                        end = at + len(marker)
                        raw = block[end:end + 48]
                        if len(raw) < 48:
                            raw += stream.read(48)
                        return raw.split(b"\0")[0].split()[0].decode("ascii", "replace")[:64]
                    carry = block[-64:]
        except (OSError, IndexError):
            return ""
    return tail[:64]


def libraries(prefix):
    """For each library family found anywhere the loader looks: the file it takes, how it
    got there, and the env's own copy."""
    inside = prefix.rstrip("/") + "/"
    preload = [p for p in os.environ.get("LD_PRELOAD", "").replace(" ", ":").split(":") if p]
    order = [("LD_PRELOAD", None)] + \
        [("LD_LIBRARY_PATH", d) for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d] + \
        [("env", d) for d in env_lib_dirs(prefix)]
    candidates = {}  # soname -> [(via, path)] in the loader's order
    for name in preload:
        soname = os.path.basename(name)
        if soname_of(soname):
            candidates.setdefault(soname, []).append(("LD_PRELOAD", name))
    for via, folder in order[1:]:
        for entry in listing(folder):
            if soname_of(entry):
                candidates.setdefault(entry, []).append((via, os.path.join(folder, entry)))
    env_has = {s for s, c in candidates.items() if any(v == "env" for v, _ in c)}
    if any(s not in env_has for s in candidates) or not env_has:
        for soname, path in ld_cache().items():
            candidates.setdefault(soname, []).append(("ldconfig", path))
    out_libs = {}
    for soname, found in sorted(candidates.items())[:16]:
        via, path = found[0]
        own = next((p for v, p in found if v == "env" or p.startswith(inside)), None)
        entry = {"path": path[:4096], "via": via, "version": lib_version(path)}
        if own is not None:
            entry["env_path"] = own[:4096]
            entry["env_version"] = entry["version"] if own == path else lib_version(own)
        out_libs[soname[:256]] = entry
    return out_libs




def main():
    started = time.time()
    out = {"python": sys.version.split()[0], "executable": sys.executable}
    try:
        import torch
        import torch.distributed as dist

        cuda = torch.cuda.is_available()
        out["torch"] = {
            "version": torch.__version__,
            "file": torch.__file__,
            "cuda_build": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
            else None,
            "cuda_available": cuda,
            "device_count": torch.cuda.device_count() if cuda else 0,
            "devices": [],
            "nccl": None,
            "distributed": dist.is_available(),
            "backends": {name: bool(getattr(dist, "is_%s_available" % name, lambda: False)())
                         for name in ("nccl", "gloo", "mpi")},
        }
        for index in range(out["torch"]["device_count"]):
            props = torch.cuda.get_device_properties(index)
            out["torch"]["devices"].append({
                "name": props.name, "capability": "%d.%d" % (props.major, props.minor),
                "memory_mib": props.total_memory // (1 << 20)})
        if cuda:
            version = torch.cuda.nccl.version()
            out["torch"]["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) \
                else str(version)
    except Exception as exc:  # the node still reports; the failure is a finding
        out["torch_error"] = describe(exc)
    try:
        import numpy
        out["numpy"] = numpy.__version__
    except Exception as exc:
        out["numpy_error"] = "%s: %s" % (type(exc).__name__, exc)
    # Where the job's imports really come from, in the environment the launcher gave this
    # process (the user's startup files included): a user-site or PYTHONPATH copy wins over
    # the env's without a word.
    out["modules"], out["modules_seen"] = loaded_modules(sys.modules, sys.prefix)
    try:
        import site
        out["user_site"] = {"enabled": bool(site.ENABLE_USER_SITE),
                            "path": site.getusersitepackages()}
    except Exception as exc:
        out["user_site"] = {"enabled": False, "path": "", "error": describe(exc)}
    out["sys_path"] = [p[:512] for p in sys.path[:64]]
    out["launch_env"] = launch_env(os.environ)
    out["which"] = {name: on_path(name) for name in ("python", "torchrun")}
    try:
        out["limits"] = limits()
    except Exception as exc:
        out["limits_error"] = describe(exc)[:800]
    if out["user_site"].get("path"):
        out["user_site"].update(site_listing(out["user_site"]["path"]))
    try:
        out["libraries"] = libraries(sys.prefix)
    except Exception as exc:
        out["libraries_error"] = describe(exc)[:800]
    out["seconds"] = round(time.time() - started, 3)
    print(json.dumps(out))


if __name__ == "__main__":  # also under `python -c`; selftests import the functions
    main()
