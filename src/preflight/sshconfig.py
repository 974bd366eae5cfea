"""OpenSSH client config as OpenSSH reads it, including what paramiko's parser lacks (Include)."""

from __future__ import annotations

import functools
import glob
import re
from pathlib import Path

import paramiko

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
    config.parse(_expanded(path, depth=0).splitlines(keepends=True))
    return config


def _expanded(path: Path, depth: int) -> str:
    if depth > 16:  # ssh's own limit on nesting
        return ""
    out = []
    for line in path.read_text().splitlines(keepends=True):
        match = INCLUDE.match(line)
        if not match:
            out.append(line)
            continue
        for word in match.group(1).split():
            pattern = Path(word).expanduser()
            if not pattern.is_absolute():
                pattern = Path("~/.ssh").expanduser() / pattern
            for included in sorted(glob.glob(str(pattern))):
                out.append(_expanded(Path(included), depth + 1))
    return "".join(out)
