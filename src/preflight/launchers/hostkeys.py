"""Host key verification against known_hosts, parsed once per run and shared by threads.

paramiko would re-parse known_hosts for every connection (64 nodes: 4,096 key objects);
instead every client starts with no keys and this policy decides, so it sees each key:
known and equal passes, known and different is refused as CHANGED, unknown is refused
unless the user opted in to trust-on-first-use, which appends (never rewrites) the file.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import paramiko


class HostKeyRefused(Exception):
    """str() is the reason, for ops."""


@functools.lru_cache(maxsize=8)
def _parsed(path: str, mtime_ns: int) -> paramiko.HostKeys:
    return paramiko.HostKeys(path)


class Verifier(paramiko.MissingHostKeyPolicy):
    def __init__(self, known_hosts: Path, trust_new: bool) -> None:
        self.path, self.trust_new = known_hosts, trust_new
        self._lock = threading.Lock()
        self._added = paramiko.HostKeys()

    def known(self, hostname: str) -> dict:
        """keytype -> key this verifier accepts for hostname."""
        known = {}
        if self.path.exists():
            table = _parsed(str(self.path), self.path.stat().st_mtime_ns)
            known.update(table.lookup(hostname) or {})
        known.update(self._added.lookup(hostname) or {})
        return known

    def missing_host_key(self, client, hostname: str, key: paramiko.PKey) -> None:
        known = self.known(hostname)
        kind = key.get_name()
        if kind in known:
            if known[kind] == key:
                return
            msg = (f"host key of {hostname} CHANGED (got {kind} {key.fingerprint}, "
                   f"{self.path} has {known[kind].fingerprint}): possible man-in-the-middle or "
                   "a reinstalled node; verify it, then update known_hosts")
            raise HostKeyRefused(msg)
        if not self.trust_new:
            has = f" (it has {', '.join(known)} for this host)" if known else ""
            msg = (f"host key of {hostname} ({kind} {key.fingerprint}) is not in "
                   f"{self.path}{has}; verify it and add it, or opt in with "
                   "trust_new_host_keys: true / --trust-new-host-keys")
            raise HostKeyRefused(msg)
        self._record(hostname, key)

    def _record(self, hostname: str, key: paramiko.PKey) -> None:
        with self._lock:
            self._added.add(hostname, key.get_name(), key)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as stream:
                stream.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


@functools.lru_cache(maxsize=8)
def verifier(known_hosts: Path, trust_new: bool) -> Verifier:
    """One verifier per known_hosts file and mode, shared by every connection of the run."""
    return Verifier(known_hosts, trust_new)
