# Runtime facts from the env's own Python: what torch itself reports on this node.
# Run by probe.py as a child process with a timeout; prints one JSON document.
import json
import os
import sys
import time

started = time.time()


def describe(exc):
    """The exception and what caused it: `import torch` failing on a missing libcudart
    says so only in the chained exception."""
    text = "%s: %s" % (type(exc).__name__, " ".join(str(exc).split()))
    cause = exc.__cause__ or exc.__context__
    if cause is not None:  # one line: a multi-line message must not hide the cause
        text += " (caused by %s: %s)" % (type(cause).__name__, " ".join(str(cause).split()))
    return text


out = {"python": sys.version.split()[0], "executable": sys.executable}
try:
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    out["torch"] = {
        "version": torch.__version__,
        "file": torch.__file__,
        "cuda_build": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
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
out["modules"] = {}
for _name in ("torch", "numpy"):
    _mod = sys.modules.get(_name)
    if _mod is not None:
        out["modules"][_name] = {"file": getattr(_mod, "__file__", None) or "",
                                 "version": str(getattr(_mod, "__version__", ""))[:64]}
try:
    import site
    out["user_site"] = {"enabled": bool(site.ENABLE_USER_SITE),
                        "path": site.getusersitepackages()}
except Exception as exc:
    out["user_site"] = {"enabled": False, "path": "", "error": describe(exc)}
out["sys_path"] = [p[:512] for p in sys.path[:64]]
LAUNCH_VARS = ("PATH", "PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONSTARTUP",
               "LD_LIBRARY_PATH", "LD_PRELOAD", "CONDA_PREFIX")
out["launch_env"] = {k: os.environ[k][:2048] for k in LAUNCH_VARS if k in os.environ}
out["seconds"] = round(time.time() - started, 3)
print(json.dumps(out))
