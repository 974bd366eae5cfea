"""Scripts that run ON the nodes. They are sent as text, never imported by the controller.

probe.py runs under any python3 >= 3.6 with the stdlib only; runtime.py runs under the
env's own Python (it imports torch). Keep both free of third-party imports.
"""

from pathlib import Path

HERE = Path(__file__).parent


def source(name: str) -> str:
    return (HERE / name).read_text()
