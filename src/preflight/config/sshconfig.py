"""OpenSSH client config as OpenSSH reads it, including what paramiko's parser lacks (Include)."""

from __future__ import annotations

import functools
import glob
import re
from pathlib import Path

import paramiko

from preflight.core.errors import UserError
from preflight.core.nodetext import one_line

INCLUDE = re.compile(r"^\s*Include\s+(.+?)\s*$", re.IGNORECASE)


def load(path: Path | None) -> paramiko.SSHConfig:
    """Parse path with its Include lines expanded in place (relative to ~/.ssh, as ssh does)."""
    if path is None or not path.is_file():
        return paramiko.SSHConfig()
    return _parsed(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int) -> paramiko.SSHConfig:
    """Parsed once per file version: every node's connection looks itself up in it."""
    config = paramiko.SSHConfig()
    try:
        config.parse(_expanded(path).splitlines(keepends=True))
    except paramiko.ConfigParseError as exc:  # e.g. an `IdentityFile` with no value
        raise UserError(f"{path}: not an ssh_config ssh can read: {one_line(exc, 120)} "
                        "(each line is 'Keyword value')") from None
    return config


MAX_BYTES = 1 << 20  # an ssh_config with its Includes expanded; real ones are KBs


def _expanded(path: Path, chain: tuple[Path, ...] = (), budget: list | None = None) -> str:
    """The file with its Includes in place; a loop or an expansion past MAX_BYTES is a
    one-line UserError (a config that Includes itself twice doubles at every level)."""
    budget = [MAX_BYTES] if budget is None else budget
    if len(chain) > 16:  # ssh's own limit on nesting
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ssh_config: {exc.strerror}") from None
    out = []
    for line in text.splitlines(keepends=True):
        match = INCLUDE.match(line)
        if not match:
            out.append(line)
            budget[0] -= len(line)
            if budget[0] < 0:
                raise UserError(f"{chain[0] if chain else path}: ssh_config expands to more "
                                f"than {MAX_BYTES} bytes with its Includes")
            continue
        for word in match.group(1).split():
            pattern = Path(word).expanduser()
            if not pattern.is_absolute():
                pattern = Path("~/.ssh").expanduser() / pattern
            for included in sorted(glob.glob(str(pattern))):
                if Path(included).resolve() in {p.resolve() for p in (*chain, path)}:
                    raise UserError(f"{path}: Include {word} includes {included} again "
                                    "(an Include loop)")
                out.append(_expanded(Path(included), (*chain, path), budget))
    return "".join(out)
