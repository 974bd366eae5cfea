"""Where Slurm commands run: the login node named in `slurm.login` (over our SSH
transport, like any node: its host key checked, one connection for the run), or this
machine when the harness already runs on a login node."""

from __future__ import annotations

import re
import select
import subprocess
import time

from preflight.config.inventory import Cluster
from preflight.core.errors import UserError
from preflight.launchers import transport


class Held:
    """A command left running (salloc holding an allocation). It ends when its stdin is
    closed, so the allocation goes with the harness however the harness ends."""

    def __init__(self, chan=None, proc: subprocess.Popen | None = None) -> None:
        self.chan, self.proc = chan, proc
        self.seen = ""

    def wait_for(self, pattern: str, timeout: float) -> re.Match | None:
        """Read what the command prints until pattern matches, it exits, or timeout."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            found = regex.search(self.seen)
            if found:
                return found
            if not self._read(min(0.2, deadline - time.monotonic())):
                return regex.search(self.seen)
        return regex.search(self.seen)

    def _read(self, wait: float) -> bool:
        """False once the command has finished and said everything."""
        if self.chan is not None:
            select.select([self.chan], [], [], max(wait, 0))
            while self.chan.recv_ready():
                self.seen += self.chan.recv(1 << 16).decode(errors="replace")
            while self.chan.recv_stderr_ready():
                self.seen += self.chan.recv_stderr(1 << 16).decode(errors="replace")
            return not (self.chan.exit_status_ready() and not self.chan.recv_ready())
        ready, _, _ = select.select([self.proc.stdout], [], [], max(wait, 0))
        if ready:
            chunk = self.proc.stdout.read1(1 << 16).decode(errors="replace")
            self.seen += chunk
            return bool(chunk) or self.proc.poll() is None
        return self.proc.poll() is None

    def end(self) -> None:
        if self.chan is not None:
            try:
                self.chan.shutdown_write()
                self.chan.close()
            except OSError:
                pass
        elif self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()


class LoginShell:
    """`with LoginShell(cluster) as login: login.run("sinfo ...", 30)`.

    A login node that cannot be reached stops the run (UserError) when `required`; else
    (the checks' steps, late in a run) every command answers as ssh does for a connection
    it could not make: exit 255 with the reason, which each caller turns into a per-node
    finding. A connection lost mid-run answers the same way."""

    def __init__(self, cluster: Cluster, required: bool = True) -> None:
        self.cluster, self.required = cluster, required
        self.conn: transport.Connection | None = None
        self.lost: str | None = None

    def __enter__(self) -> LoginShell:
        if self.cluster.login is not None:
            try:
                self.conn = transport.connect(self.cluster, self.cluster.login)
            except transport.Unreachable as exc:
                msg = f"slurm.login {self.cluster.login.name} unreachable: {exc}"
                if self.required:
                    raise UserError(msg) from None
                self.lost = msg
        return self

    def __exit__(self, *_exc) -> None:
        if self.conn is not None:
            self.conn.close()

    @property
    def where(self) -> str:
        return self.cluster.login.name if self.cluster.login else "this machine"

    def run(self, command: str, timeout: float, stdin: str | bytes | None = None
            ) -> transport.Result:
        if self.lost is not None:
            return transport.Result(command, 255, "", self.lost, 0.0)
        if self.conn is not None:
            try:
                return self.conn.run(command, timeout, stdin=stdin)
            except transport.Unreachable as exc:
                self.lost = f"slurm.login {self.where}: {exc}"
                return transport.Result(command, 255, "", self.lost, 0.0)
        started = time.monotonic()
        try:
            done = subprocess.run(["sh", "-c", command], input=stdin, capture_output=True,
                                  timeout=timeout, check=False,
                                  text=isinstance(stdin, str | None))
        except subprocess.TimeoutExpired:
            return transport.Result(command, 124, "", "", time.monotonic() - started, True)
        out = done.stdout if isinstance(done.stdout, str) else done.stdout.decode(
            errors="replace")
        err = done.stderr if isinstance(done.stderr, str) else done.stderr.decode(
            errors="replace")
        return transport.Result(command, done.returncode, out, err,
                                time.monotonic() - started)

    def hold(self, command: str, limit: float) -> Held:
        if self.conn is not None:
            return Held(chan=self.conn.start(command, limit))
        proc = subprocess.Popen(["timeout", "-k", "2", str(int(limit)), "sh", "-c", command],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        return Held(proc=proc)
