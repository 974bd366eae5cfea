"""Scripts that run ON the nodes. They are sent as text, never imported by the controller.

probe.py runs under any python3 >= 3.6 with the stdlib only; runtime.py runs under the
env's own Python (it imports torch). Keep both free of third-party imports.
"""

from pathlib import Path

HERE = Path(__file__).parent


def source(name: str) -> str:
    return (HERE / name).read_text()


def load(name: str):
    """Import a node-side script here (the controller hashes its own tree with the probe's
    code, so both sides agree by construction)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"preflight_remote_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
