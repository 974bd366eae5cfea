"""Can every worker open a TCP connection to the master's rendezvous port? Checked before
any torchrun starts: one listener on the master, every worker connecting at once; the
listener stops as soon as each worker has connected (seconds), else at its window."""

from __future__ import annotations

import shlex
import time
from concurrent.futures import ThreadPoolExecutor

from preflight.checks import network
from preflight.config.inventory import Cluster, Node
from preflight.launchers.base import Launcher, Result
from preflight.launchers.targets import resolve

LISTEN = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("0.0.0.0", {port}))
except OSError as exc:
    print("BIND-FAILED %s" % exc, flush=True); sys.exit(3)
s.listen(512); s.settimeout(0.2); print("LISTENING", flush=True)
end, seen = time.time() + {seconds}, 0
while time.time() < end and seen < {expected}:
    try:
        c, peer = s.accept(); c.close(); seen += 1
    except OSError:
        pass
"""
# A refused connection is tried again for a moment: the listener's start (an SSH command
# or a Slurm step) races the clients'. A dropped one waits out `timeout` once.
CONNECT = """
import socket, sys, time
end = time.time() + {refused_window}
while True:
    try:
        socket.create_connection(("{host}", {port}), timeout={timeout}).close(); print("OK")
        break
    except ConnectionRefusedError as exc:
        if time.time() < end:
            time.sleep(0.2); continue
        print("FAIL %s" % (exc.strerror or exc)); sys.exit(1)
    except OSError as exc:
        print("FAIL %s" % (exc.strerror or exc)); sys.exit(1)
"""
REFUSED_WINDOW_S = 3


def master_reachable(cluster: Cluster, launcher: Launcher, nodes: list[Node],
                     timeout: float = 5) -> dict:
    """node -> "ok" or the reason, for every worker in nodes; plus the master's own state.
    The listener runs on the master through the launcher, the clients on the workers at
    the same time; a master the launcher cannot reach leaves the workers untried."""
    master = cluster.master
    port = cluster.nccl.master_port
    host = resolve(cluster, master).hostname
    workers = [n for n in nodes if n.name != master.name]
    window = timeout + REFUSED_WINDOW_S + 5  # every worker's connect gives up by then
    listen = _python(master, LISTEN.format(port=port, seconds=window, expected=len(workers)))
    clients = {w.name: (_python(w, _connect_code(host, port, timeout)), "") for w in workers}
    with ThreadPoolExecutor(1) as background:
        listening = background.submit(launcher.run, {master.name: (listen, "")}, window + 5)
        time.sleep(0.5)  # the listener's python starts; a bind failure shows in its output
        lost = listening.done() and isinstance(listening.result()[master.name], str)
        tried = launcher.run(clients, timeout + REFUSED_WINDOW_S + 10) \
            if clients and not lost else {}
        done = listening.result()[master.name]
    if isinstance(done, str):
        return {"master": done}
    # a worker the launcher lost since the probe (sshd frozen, link down) is named, not
    # passed: this is the run's last look at every node after its facts
    results = {name: f"{network.LOST}: {r}" if isinstance(r, str) else _verdict(r)
               for name, r in tried.items()}
    return {"master": _bound(done), "address": f"{host}:{port}", **results}


def _python(node: Node, code: str) -> str:
    return f"{shlex.quote(f'{node.env_prefix}/bin/python')} -c {shlex.quote(code)}"


def _connect_code(host: str, port: int, timeout: float) -> str:
    return CONNECT.format(host=host, port=port, timeout=timeout,
                          refused_window=REFUSED_WINDOW_S)


def _bound(done: Result) -> str:
    return "ok" if "LISTENING" in done.stdout else \
        (done.stdout.strip() or done.stderr.strip() or "listener did not start")[-300:]


def _verdict(done: Result) -> str:
    if done.stdout.startswith("OK"):
        return "ok"
    return (done.stdout.strip().removeprefix("FAIL ") or done.stderr.strip() or
            f"exit {done.rc}")[-300:]
