"""Commands to the node side of provision (remote/provision_node.sh) on one connection."""

from __future__ import annotations

import hashlib
import os
import shlex
import socket
from typing import BinaryIO

from preflight import remote
from preflight.config.inventory import Node
from preflight.launchers.base import Session

SCRIPT = remote.source("provision_node.sh")
# the controller's identity in a node lock: a rerun from here may take over a lock whose
# holder (a killed provision from this same machine) is no longer alive
TOKEN = f"{socket.gethostname()}:{os.getpid()}"


class NodeFailed(Exception):
    """A step failed on the node; str() says what, for the plan's reader."""


def script_command(verb: str, *args: str) -> str:
    return f"sh -c {shlex.quote(SCRIPT)} provision {verb} " + " ".join(map(shlex.quote, args))


def text_sha256(text: str | None) -> str:
    """What `put` and `remove` expect a file to hold: its text's sha256, or "-" for a file
    that is not there."""
    return hashlib.sha256(text.encode()).hexdigest() if text is not None else "-"


def beside_prefix(node: Node) -> str:
    """The folder that holds the Miniconda prefix: our lock and the held installer."""
    return os.path.split(node.miniconda.rstrip("/"))[0] or "/"


def lock_path(node: Node) -> str:
    return f"{beside_prefix(node)}/.{os.path.basename(node.miniconda.rstrip('/'))}.preflight-lock"


def installer_path(node: Node, sha256: str) -> str:
    """Where base-install keeps the verified installer (provision_node.sh), for peers."""
    return f"{beside_prefix(node)}/.preflight-installer-{sha256}.sh"


class NodeShell:
    def __init__(self, conn: Session, node: Node) -> None:
        self.conn, self.node = conn, node

    def run(self, verb: str, *args: str, data: str | bytes | BinaryIO | None = None,
            timeout: float | None = None) -> str:
        return self.raw(script_command(verb, *args), data=data, timeout=timeout, what=verb)

    def raw(self, command: str, *, data=None, timeout: float | None = None,
            what: str = "command") -> str:
        done = self.conn.run(command, timeout or self.node.command_timeout, stdin=data)
        if done.timed_out:
            raise NodeFailed(f"{what} timed out after {done.seconds:.0f} s")
        if done.rc != 0:
            said = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise NodeFailed(f"{what} failed (exit {done.rc}): "
                             f"{said[-1][:300] if said else 'no message'}")
        return done.stdout

    def lock(self) -> None:
        """Take the node's provision lock; one left by a dead provision from this machine
        is taken over, one held by a live or foreign provision fails this node."""
        try:
            self.run("lock", lock_path(self.node), TOKEN)
        except NodeFailed as exc:
            owner = str(exc).rsplit("locked by ", 1)[-1]
            host, _, pid = owner.partition(":")
            if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
                raise NodeFailed(f"another provision holds {lock_path(self.node)} ({owner}); "
                                 "if it is gone, remove that folder") from None
            self.run("breaklock", lock_path(self.node), owner)
            self.run("lock", lock_path(self.node), TOKEN)

    def unlock(self) -> None:
        self.run("unlock", lock_path(self.node), TOKEN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
