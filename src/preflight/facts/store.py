"""The run's facts on disk: facts.json (redacted, for replay), the private hand-over to
xdist workers, and a user-given --facts file read as untrusted input."""

from __future__ import annotations

import json
from pathlib import Path

from preflight.core.errors import UserError
from preflight.core.nodetext import MAX_DEPTH, depth_ok
from preflight.core.redact import redact_doc


def save(facts: dict[str, dict], path: Path, redact: bool = True) -> None:
    """Atomically, with every string redacted (a key pasted into a .pub file, a token in
    an error message never reaches the file); lone surrogates kept as JSON escapes.
    redact=False only for the run's private hand-over to its xdist workers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(redact_doc(facts) if redact else facts))
    tmp.replace(path)


def load(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text())


REPLAY_MAX_BYTES = 2 << 30  # a facts file for 2,000 nodes is ~1 GB at most


def load_replay(path: Path) -> dict:
    """A user-given --facts file: an object of node name -> facts, or one line, exit 2."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UserError(f"--facts {path}: not a regular file")
        if size > REPLAY_MAX_BYTES:
            raise UserError(f"--facts {path}: {size} bytes, more than the limit of "
                            f"{REPLAY_MAX_BYTES}")
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise UserError(f"--facts {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # also bad UTF-8
        raise UserError(f"--facts {path}: not a facts file ({str(exc)[:120]})") from None
    except RecursionError:
        doc = None
    if doc is None or not depth_ok(doc):
        raise UserError(f"--facts {path}: not a facts file (nested deeper than {MAX_DEPTH} "
                        "levels)")
    if not isinstance(doc, dict):
        raise UserError(f"--facts {path}: not a facts file (a JSON object of node name -> "
                        f"facts, as reports/facts.json; found a {type(doc).__name__})")
    return doc
