"""Can every worker open a TCP connection to the master's rendezvous port? Checked before
any torchrun starts: one listener on the master, every worker connecting at once; the
listener stops as soon as each worker has connected (seconds), else at its window."""

from __future__ import annotations

import shlex
import time
from concurrent.futures import ThreadPoolExecutor

from . import transport
from .inventory import Cluster, Node

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
CONNECT = """
import socket, sys
try:
    socket.create_connection(("{host}", {port}), timeout={timeout}).close(); print("OK")
except OSError as exc:
    print("FAIL %s" % (exc.strerror or exc)); sys.exit(1)
"""


def master_reachable(cluster: Cluster, nodes: list[Node], timeout: float = 5) -> dict:
    """node -> "ok" or the reason, for every worker in nodes; plus the master's own state."""
    master = cluster.master
    port = cluster.nccl.master_port
    host = transport.resolve(cluster, master).hostname
    python = f"{master.env_prefix}/bin/python"
    workers = [n for n in nodes if n.name != master.name]
    window = timeout + 5  # every worker's connect gives up within `timeout`
    code = LISTEN.format(port=port, seconds=window, expected=len(workers))

    def listen_and_try(listener: transport.Connection) -> dict:
        with ThreadPoolExecutor(1) as background:
            listening = background.submit(listener.run, f"{shlex.quote(python)} -c "
                                          f"{shlex.quote(code)}", window + 5)
            time.sleep(0.5)  # the listener's python starts; a bind failure shows in its output
            results = transport.fan_out(
                workers, lambda w: _connect(cluster, w, host, port, timeout),
                cluster.parallelism) if workers else {}
            done = listening.result()
        bound = "ok" if "LISTENING" in done.stdout else \
            (done.stdout.strip() or done.stderr.strip() or "listener did not start")[-300:]
        return {"master": bound, "address": f"{host}:{port}", **results}
    return transport.with_connection(cluster, master, listen_and_try,
                                     lambda why: {"master": why})


def _connect(cluster: Cluster, node: Node, host: str, port: int, timeout: float) -> str:
    code = CONNECT.format(host=host, port=port, timeout=timeout)
    python = f"{node.env_prefix}/bin/python"
    done = transport.with_connection(
        cluster, node, lambda c: c.run(f"{shlex.quote(python)} -c {shlex.quote(code)}",
                                       timeout + 10), str)
    if isinstance(done, str):
        return done
    if done.stdout.startswith("OK"):
        return "ok"
    return (done.stdout.strip().removeprefix("FAIL ") or done.stderr.strip() or
            f"exit {done.rc}")[-300:]
