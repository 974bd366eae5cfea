"""Scripts that run ON the nodes. They are sent as text, never imported by the controller.

The probe runs under any python3 >= 3.6 with the stdlib only. It is one script, kept in
parts by concern and joined in PROBE_PARTS order: probe_base (helpers every section uses),
probe_install, probe_host, probe_health, probe_access (the sections), probe_main (runs them all).
runtime.py runs under the env's own Python (it imports torch); nccl_worker.py under
torchrun. Keep all of them free of third-party imports.
"""

import types
from pathlib import Path

HERE = Path(__file__).parent
PROBE_PARTS = ("probe_base.py", "probe_install.py", "probe_host.py", "probe_health.py",
               "probe_access.py", "probe_main.py")


def source(name: str) -> str:
    return (HERE / name).read_text()


def probe_source() -> str:
    return "\n\n".join(source(part) for part in PROBE_PARTS)


def probe_module(args: dict | None = None) -> types.ModuleType:
    """The probe as a module here, without running it: the controller hashes its own code
    tree with the probe's functions, so both sides agree by construction; tests use it too."""
    module = types.ModuleType("preflight_probe")
    module.ARGS = args or {}
    exec(compile(probe_source(), "<probe>", "exec"), module.__dict__)  # noqa: S102 - our file
    return module
