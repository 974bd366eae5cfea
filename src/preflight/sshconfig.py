"""OpenSSH client config as OpenSSH reads it, including what paramiko's parser lacks (Include)."""

from __future__ import annotations

import glob
import re
from pathlib import Path

import paramiko

INCLUDE = re.compile(r"^\s*Include\s+(.+?)\s*$", re.IGNORECASE)


def load(path: Path | None) -> paramiko.SSHConfig:
    """Parse path with its Include lines expanded in place (relative to ~/.ssh, as ssh does)."""
    config = paramiko.SSHConfig()
    if path is not None and path.is_file():
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
