# Runtime facts from the env's own Python: what torch itself reports on this node.
# Run by probe.py as a child process with a timeout; prints one JSON document.
import json
import sys
import time

started = time.time()
out = {"python": sys.version.split()[0], "executable": sys.executable}
try:
    import torch
    import torch.distributed as dist

    out["torch"] = {
        "version": torch.__version__,
        "file": torch.__file__,
        "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "distributed": dist.is_available(),
        "backends": {name: bool(getattr(dist, "is_%s_available" % name, lambda: False)())
                     for name in ("nccl", "gloo", "mpi")},
    }
except Exception as exc:  # the node still reports; the failure is a finding
    out["torch_error"] = "%s: %s" % (type(exc).__name__, exc)
try:
    import numpy
    out["numpy"] = numpy.__version__
except Exception as exc:
    out["numpy_error"] = "%s: %s" % (type(exc).__name__, exc)
out["seconds"] = round(time.time() - started, 3)
print(json.dumps(out))
