"""SSH to the nodes: one paramiko client per node, strict host keys, bounded everything.

testinfra's paramiko backend accepts unknown host keys, ignores ProxyJump and known_hosts,
and leaves remote work running after a timeout; this module does none of that.
"""

from __future__ import annotations

import io
import logging
import math
import select
import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

import paramiko

from preflight.config import sshconfig
from preflight.config.inventory import Cluster, Node
from preflight.launchers import hostkeys
from preflight.launchers.base import Result
from preflight.launchers.targets import Target, resolve

T = TypeVar("T")
GRACE_S = 3.0  # after the remote `timeout` should have fired, stop waiting for it
# What paramiko says when TCP connects but the SSH banner or key exchange never comes.
HANDSHAKE_STALLED = ("banner", "No existing session", "Negotiation timed out")


# paramiko logs handshake failures with tracebacks; we report each as one line instead.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


class Unreachable(Exception):
    """The node could not be reached or logged in to; str() says why, for ops."""


@dataclass
class Connection:
    """An open SSH connection to one node, reused for every command of the run."""

    target: Target
    client: paramiko.SSHClient
    jump: Connection | None = None
    executions: int = field(default=0)
    bytes_sent: int = field(default=0)  # stdin payloads (provision's archives)

    def run(self, command: str, timeout: float, stdin: str | bytes | BinaryIO | None = None,
            kill_after: int = 2) -> Result:
        """Run command under `timeout -k` on the node, so it is killed there, not abandoned
        (TERM at timeout, KILL kill_after seconds later for what ignored TERM)."""
        self.executions += 1
        limit = max(1, math.ceil(timeout))
        remote = f"timeout -k {int(kill_after)} {limit} sh -c {shlex.quote(command)}"
        started = time.monotonic()
        try:
            chan = self.client.get_transport().open_session(timeout=self.target.connect_timeout)
            chan.exec_command(remote)
            self._send(chan, stdin)
            if not chan.closed:
                chan.shutdown_write()
            out, err, finished = _drain(chan, started + limit + kill_after + GRACE_S)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise Unreachable(f"connection lost running a command: {exc}") from None
        seconds = time.monotonic() - started
        rc = chan.recv_exit_status() if finished else 124
        chan.close()
        return Result(command, rc, out, err, seconds, timed_out=not finished or rc == 124)

    def start(self, command: str, limit: float) -> paramiko.Channel:
        """Start command and leave it running (under `timeout`, so never past limit): the
        caller reads the channel and ends it by closing its stdin or the channel."""
        self.executions += 1
        remote = f"timeout -k 2 {max(1, math.ceil(limit))} sh -c {shlex.quote(command)}"
        try:
            chan = self.client.get_transport().open_session(timeout=self.target.connect_timeout)
            chan.exec_command(remote)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise Unreachable(f"connection lost starting a command: {exc}") from None
        return chan

    def _send(self, chan: paramiko.Channel, stdin) -> None:
        if stdin is None:
            return
        if isinstance(stdin, str | bytes):
            stdin = io.BytesIO(stdin.encode() if isinstance(stdin, str) else stdin)
        for block in iter(lambda: stdin.read(1 << 20), b""):
            try:
                chan.sendall(block)
            except OSError:
                if chan.exit_status_ready():  # it ended before reading it all (a full
                    return  # disk): its exit status and stderr say why
                raise
            self.bytes_sent += len(block)

    def close(self) -> None:
        self.client.close()
        if self.jump:
            self.jump.close()


def _drain(chan: paramiko.Channel, deadline: float) -> tuple[str, str, bool]:
    out, err = bytearray(), bytearray()
    while True:
        while chan.recv_ready():
            out += chan.recv(1 << 16)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(1 << 16)
        if chan.exit_status_ready() and chan.eof_received and not (
                chan.recv_ready() or chan.recv_stderr_ready()):
            return out.decode(errors="replace"), err.decode(errors="replace"), True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return out.decode(errors="replace"), err.decode(errors="replace"), False
        select.select([chan], [], [], min(remaining, 0.2))


def connect(cluster: Cluster, node: Node) -> Connection:
    """Open a connection to node; raises Unreachable with the reason."""
    return _open(cluster, resolve(cluster, node), depth=0)


def _open(cluster: Cluster, target: Target, depth: int) -> Connection:
    if depth > 4:
        raise Unreachable("ProxyJump chain deeper than 4 hops")
    jump, sock = None, None
    try:
        if target.proxy_jump:
            jump = _open(cluster, _jump_target(cluster, target), depth + 1)
            sock = jump.client.get_transport().open_channel(
                "direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0),
                timeout=target.connect_timeout)
        elif target.proxy_command:
            command = (target.proxy_command.replace("%h", target.hostname)
                       .replace("%p", str(target.port)).replace("%r", target.user or ""))
            sock = paramiko.ProxyCommand(command)
        else:
            sock = socket.create_connection((target.hostname, target.port),
                                            timeout=target.connect_timeout)
            # Without it, each command waits ~40 ms on a delayed ACK (measured: 46 -> 2.6 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Connection(target, _login(cluster, target, sock), jump)
    except Unreachable:
        _close_quietly(jump)
        raise
    except TimeoutError:
        _close_quietly(jump)
        raise Unreachable(f"timed out after {target.connect_timeout:g} s connecting to "
                          f"{target.hostname}:{target.port}") from None
    except hostkeys.HostKeyRefused as exc:
        _close_quietly(jump)
        raise Unreachable(str(exc)) from None
    except paramiko.AuthenticationException as exc:
        _close_quietly(jump)
        raise Unreachable(f"authentication failed as {target.user or 'default user'} "
                          f"({exc}); check the user and identity_file") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        _close_quietly(jump)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if any(sign in reason for sign in HANDSHAKE_STALLED):
            raise Unreachable(f"SSH handshake with {target.hostname}:{target.port} timed out "
                              f"after {target.connect_timeout:g} s: the port accepts but sshd "
                              "does not answer (hung, overloaded or not sshd)") from None
        raise Unreachable(f"cannot connect to {target.hostname}:{target.port}: {reason}") \
            from None


def _login(cluster: Cluster, target: Target, sock) -> paramiko.SSHClient:
    client = paramiko.SSHClient()  # no keys loaded: the shared verifier sees every key
    client.set_missing_host_key_policy(
        hostkeys.verifier(cluster.known_hosts, cluster.trust_new_host_keys))
    t = target.connect_timeout
    try:
        client.connect(
            target.hostname, port=target.port, username=target.user,
            key_filename=list(target.identity_files) or None, sock=sock, timeout=t,
            banner_timeout=t, auth_timeout=t, channel_timeout=t,
            look_for_keys=not target.identity_files, allow_agent=not target.identity_files)
    except BaseException:
        client.close()
        raise
    return client


def _jump_target(cluster: Cluster, target: Target) -> Target:
    spec = target.proxy_jump.split(",")[0]  # first hop; the rest chain through its config
    user, _, hostport = spec.rpartition("@")
    host, _, port = hostport.partition(":")
    names = {n.name: n for n in cluster.nodes}
    if host in names:
        jump = resolve(cluster, names[host])
    else:
        found = sshconfig.load(cluster.ssh_config).lookup(host)
        jump = Target(host, found.get("hostname", host), int(found.get("port", 22)),
                      found.get("user"), tuple(found.get("identityfile", [])),
                      found.get("proxyjump"), found.get("proxycommand"),
                      target.connect_timeout)
    return Target(jump.name, jump.hostname, int(port or jump.port), user or jump.user,
                  jump.identity_files, jump.proxy_jump, jump.proxy_command,
                  target.connect_timeout)


def _close_quietly(conn: Connection | None) -> None:
    if conn is not None:
        conn.close()


def with_connection(cluster: Cluster, node: Node, work: Callable[[Connection], T],
                    unreachable: Callable[[str], T]) -> T:
    """work(conn) on a fresh connection to node, always closed after; unreachable(why)
    when no connection could be made or it was lost on the way."""
    try:
        conn = connect(cluster, node)
    except Unreachable as exc:
        return unreachable(f"unreachable: {exc}")
    try:
        return work(conn)
    except Unreachable as exc:
        return unreachable(f"lost during the run: {exc}")
    finally:
        conn.close()
