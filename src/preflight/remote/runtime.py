# Runtime facts from the env's own Python: what torch itself reports on this node.
# Run by probe.py as a child process with a timeout; prints one JSON document.
import json
import sys
import time

started = time.time()


def describe(exc):
    """The exception and what caused it: `import torch` failing on a missing libcudart
    says so only in the chained exception."""
    text = "%s: %s" % (type(exc).__name__, exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        text += " (caused by %s: %s)" % (type(cause).__name__, cause)
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
out["seconds"] = round(time.time() - started, 3)
print(json.dumps(out))
