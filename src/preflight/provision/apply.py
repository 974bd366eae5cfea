"""Carry a plan out, node by node, in two phases.

Phase one (every node at once): the Miniconda base, the node's own SSH key and its client
config. Phase two needs every node's public key, so it starts when phase one is done
(facts re-read where a step changed what a later one reads): trust, the env (sent by
the controller to at most provision.fanout nodes, copied node to node for the rest),
the kernel, the code. A failed step stops that node only; the others go on.
"""

from __future__ import annotations

import shlex
import threading
import time
from dataclasses import dataclass, field

from preflight.config.inventory import Cluster, Node
from preflight.core.fanout import fan_out
from preflight.launchers.base import Launcher, Session
from preflight.provision import access, codesync
from preflight.provision.envbuild import Archive
from preflight.provision.nodeshell import (
    NodeFailed,
    NodeShell,
    installer_path,
    script_command,
    text_sha256,
)
from preflight.provision.plan import Wanted
from preflight.provision.plan_types import Action


@dataclass
class Outcome:
    node: str
    done: list[str] = field(default_factory=list)
    failed: str | None = None
    bytes_from_controller: int = 0
    bytes_from_peers: int = 0
    pub: str | None = None


class Distributor:
    """Who sends the env archive to whom: the controller to at most `fanout` nodes at a
    time, the rest copy from a node that already holds the verified archive."""

    def __init__(self, fanout: int) -> None:
        self.fanout, self.sending = fanout, 0
        self.holders: dict[str, int] = {}  # node -> copies it is serving now
        self.cond = threading.Condition()

    def take(self) -> str | None:
        """None: the controller sends; else the holder to copy from."""
        with self.cond:
            while True:
                if self.holders:
                    holder = min(self.holders, key=self.holders.get)
                    self.holders[holder] += 1
                    return holder
                if self.sending < self.fanout:
                    self.sending += 1
                    return None
                self.cond.wait()

    def give(self, source: str | None, receiver: str, ok: bool) -> None:
        with self.cond:
            if source is None:
                self.sending -= 1
            else:
                self.holders[source] -= 1
            if ok:
                self.holders.setdefault(receiver, 0)
            self.cond.notify_all()


class Applier:
    def __init__(self, cluster: Cluster, launcher: Launcher, plans: dict[str, list[Action]],  # noqa: PLR0917 - one call site, each a different thing
                 wanted: Wanted, archive: Archive | None, everyone: dict[str, dict],
                 log) -> None:
        self.cluster, self.launcher, self.plans, self.wanted = cluster, launcher, plans, wanted
        self.archive, self.everyone, self.log = archive, everyone, log
        self.outcomes = {name: Outcome(name) for name in plans}
        self.distributor = Distributor(cluster.provision.fanout)  # the env archive
        self.installers = Distributor(cluster.provision.fanout)  # the Miniconda installer

    def run(self, nodes: list[Node]) -> dict[str, Outcome]:
        """Only nodes whose plan changes something are contacted (and locked)."""
        for node in nodes:
            if any(a.resource == "node" for a in self.plans[node.name]):
                self.outcomes[node.name].failed = self.plans[node.name][0].reason
        workable = [n for n in nodes if not self.outcomes[n.name].failed and any(
            a.changes for a in self.plans[n.name])]
        self._phase(workable, self._first)
        pubs = {n: self.outcomes[n].pub or access.pub_blob(f) for n, f in self.everyone.items()}
        self._phase([n for n in workable if not self.outcomes[n.name].failed],
                    lambda shell: self._second(shell, pubs))
        return self.outcomes

    def _phase(self, nodes: list[Node], work) -> None:
        def one(node: Node) -> None:
            outcome = self.outcomes[node.name]

            def body(conn: Session) -> None:
                shell = NodeShell(conn, node)
                try:
                    work(shell)
                except NodeFailed as exc:
                    outcome.failed = str(exc)
                    self.log(f"{node.name}: FAILED: {exc}")
                finally:
                    outcome.bytes_from_controller += conn.bytes_sent
            self.launcher.session(node, body, lambda why: setattr(outcome, "failed", why))
        fan_out(nodes, one, self.cluster.parallelism)

    def _actions(self, node: str, *resources: str) -> list[Action]:
        return [a for a in self.plans[node] if a.resource in resources and a.changes]

    def _done(self, shell: NodeShell, action: Action) -> None:
        self.outcomes[shell.node.name].done.append(f"{action.resource} {action.verb}")
        self.log(f"{shell.node.name}: {action.resource}: {action.verb}d")

    def _first(self, shell: NodeShell) -> None:
        name = shell.node.name
        shell.lock()
        for action in self._actions(name, "miniconda", "ssh-key", "ssh-config"):
            if action.detail.get("blocked"):
                raise NodeFailed(f"{action.resource}: {action.detail['blocked']}")
            if action.resource == "miniconda":
                continue  # in phase two, once nodes trust each other: it fans out
            if action.resource == "ssh-key":
                shell.run("keygen", action.detail["path"])
                # a new key: the others' trust step needs its public half (else: facts)
                pub = shell.raw(f"cat {_home_path(action.detail['path'])}.pub")
                self.outcomes[name].pub = " ".join(pub.split()[:2]) or None
            else:
                shell.run("put", action.detail["path"], "600", action.detail["sha256"],
                          data=action.detail["text"])
            self._done(shell, action)

    def _second(self, shell: NodeShell, pubs: dict[str, str | None]) -> None:
        name, facts = shell.node.name, self.everyone[shell.node.name]
        if self.cluster.ssh.check:
            for action in access.trust(shell.node, facts, pubs, self.wanted.host_keys):
                if action.changes and (action.detail["keys"] or action.detail["hosts"]):
                    self._trust(shell, action)
        for action in self._actions(name, "miniconda"):
            self._base(shell, action)
        for action in self._actions(name, "env"):
            self._env(shell, action)
        for action in self._actions(name, "kernel"):
            shell.run("put", action.detail["path"], "644", "-", data=action.detail["text"])
            self._done(shell, action)
        for action in self._actions(name, "code"):
            self.outcomes[name].bytes_from_controller += codesync.sync(
                self.cluster, shell, self.wanted)
            self._done(shell, action)
        for action in self._actions(name, "sshd"):  # last: a rollback undoes only itself
            self._sshd(shell, action)
        shell.unlock()

    def _sshd(self, shell: NodeShell, action: Action) -> None:
        """Write, `sshd -t`, reload; then a fresh key login from here must work within a
        bound, else every file is put back and sshd reloaded again. This session stays
        open throughout (a reload keeps it), so the controller is never locked out."""
        files, written = action.detail["files"], []
        try:
            for path, change in files.items():
                shell.run("put", path, "644", change["sha256"], data=change["text"])
                written.append(path)
            shell.run("sshd-test")
        except NodeFailed as exc:
            self._sshd_undo(shell, files, written)
            raise NodeFailed(f"sshd: {exc}; its files were put back") from None
        try:  # the reload returns once sshd listens with the new configuration
            shell.run("sshd-reload")
            why = self._fresh_login(shell.node)
        except NodeFailed as exc:
            why = str(exc)
        if why:
            self._sshd_undo(shell, files, written)
            shell.run("sshd-reload")
            raise NodeFailed(f"sshd: a fresh key login failed after the reload ({why}); the "
                             "change was rolled back and sshd reloaded")
        self._done(shell, action)

    @staticmethod
    def _sshd_undo(shell: NodeShell, files: dict, written: list[str]) -> None:
        for path in reversed(written):
            change = files[path]
            mine = text_sha256(change["text"])
            if change["old"] is None:
                shell.run("remove", path, mine)
            else:
                shell.run("put", path, "644", mine, data=change["old"])

    def _fresh_login(self, node: Node) -> str | None:
        """None once a new connection logs in and runs `true`; else the last reason, after
        connect_timeout + 5 s (a reload closes the listener for a moment)."""
        deadline = time.monotonic() + node.connect_timeout + 5
        why = "not tried"
        while time.monotonic() < deadline:
            got = self.launcher.session(node, lambda conn: conn.run("true", node.connect_timeout),
                                        lambda reason: reason)
            if not isinstance(got, str) and got.rc == 0 and not got.timed_out:
                return None
            why = got if isinstance(got, str) else f"exit {got.rc}"
            time.sleep(0.3)
        return why

    def _trust(self, shell: NodeShell, action: Action) -> None:
        if action.detail["keys"]:
            shell.run("append", action.detail["authorized_keys"], "600",
                      data="".join(k + "\n" for k in action.detail["keys"]))
        if action.detail["hosts"]:
            shell.run("append", "~/.ssh/known_hosts", "644",
                      data="".join(h + "\n" for h in action.detail["hosts"]))
        self._done(shell, action)

    def _env(self, shell: NodeShell, action: Action) -> None:
        node, solution = shell.node, self.wanted.solution
        envs = f"{node.miniconda}/envs"
        archive = self.archive
        args = (envs, node.env_name, action.detail["version"], solution.digest,
                archive.sha256 if archive else "-", archive.compression if archive else "-",
                f"{node.miniconda}/pkgs/.preflight")
        previous = (self.everyone[node.name]["env"]["root"].get("target") or "").rsplit("/")[-1]
        if action.detail.get("present"):
            shell.run("env-install", *args, data=b"")
        else:
            self._receive(shell, args)
        shell.run("env-prune", envs, node.env_name, action.detail["version"], previous or "-")
        self._done(shell, action)

    def _receive(self, shell: NodeShell, args: tuple) -> None:
        self._fanned(shell, self.distributor, lambda _: f"{args[-1]}/{args[3]}.{args[5]}",
                     self.archive.path, self.archive.size, ("env-install", *args), "the env")

    def _base(self, shell: NodeShell, action: Action) -> None:
        """The installer, like the env: from the controller to at most `fanout` nodes,
        the others copy the verified one a node keeps beside its prefix."""
        sha = self.cluster.provision.installer.sha256
        node = shell.node

        self._fanned(shell, self.installers,
                     lambda source: installer_path(self.launcher.node(source), sha),
                     self.cluster.installer,
                     self.wanted.installer_size or 0, ("base-install", node.miniconda, sha),
                     "the installer", extra=node.command_timeout * 4)
        self._done(shell, action)

    def _fanned(self, shell: NodeShell, distributor: Distributor, held, local,  # noqa: PLR0917 - the one fan-out, two payloads
                size: int, verb: tuple, what: str, extra: float = 0) -> None:
        """verb on the node with the payload on stdin: sent from here, or copied from a
        node that holds a verified copy (held(source) is its path there)."""
        node = shell.node
        timeout = node.command_timeout + extra + size / 5e6  # at least 5 MB/s
        source = distributor.take()
        ok = False
        try:
            if source is None:
                with local.open("rb") as stream:
                    shell.run(*verb, data=stream, timeout=timeout)
            else:
                pull = (f"ssh -o BatchMode=yes -o StrictHostKeyChecking=yes "
                        f"-o ConnectTimeout={int(node.connect_timeout)} {shlex.quote(source)} "
                        f"cat {shlex.quote(held(source))}")
                # a failed copy arrives short and fails the node's sha256 check
                shell.raw(f"{pull} | {script_command(*verb)}", timeout=timeout,
                          what=f"copy of {what} from {source}")
                self.outcomes[node.name].bytes_from_peers += size
            ok = True
        finally:
            distributor.give(source, node.name, ok)


def _home_path(path: str) -> str:
    return '"$HOME"/' + shlex.quote(path[2:]) if path.startswith("~/") else shlex.quote(path)

