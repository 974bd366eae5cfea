"""Collective numbers on the simulated cluster: busbw between two nodes next to raw TCP
between the same two, and the time to a diagnosis when the master port is blocked."""

from __future__ import annotations

import shlex
import threading
import time

from simcluster import faults

from preflight.launchers import registry, transport
from preflight.live import nccl

SINK = ("import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
        "s.bind(('0.0.0.0',{port}));s.listen(1);c,_=s.accept();n=0\n"
        "while True:\n b=c.recv(1<<20)\n if not b: break\n n+=len(b)\nprint(n)")
SOURCE = ("import socket,time;c=socket.create_connection(('{host}',{port}));b=bytes(1<<20);"
          "t=time.perf_counter()\nfor _ in range({mib}): c.sendall(b)\n"
          "c.shutdown(socket.SHUT_WR);c.recv(1);print(time.perf_counter()-t)")


def raw_tcp(cluster, a, b, mib: int = 256, port: int = 29700) -> float:
    """GB/s of one TCP stream from a to b (python sendall of 1 MiB buffers)."""
    host = transport.resolve(cluster, b).hostname
    sink, source = transport.connect(cluster, b), transport.connect(cluster, a)
    py_b, py_a = f"{b.env_prefix}/bin/python", f"{a.env_prefix}/bin/python"
    got = {}
    thread = threading.Thread(target=lambda: got.update(r=sink.run(
        f"{py_b} -c {shlex.quote(SINK.format(port=port))}", 120)))
    thread.start()
    time.sleep(0.5)
    sent = source.run(f"{py_a} -c {shlex.quote(SOURCE.format(host=host, port=port, mib=mib))}",
                      120)
    thread.join()
    sink.close()
    source.close()
    seconds = float(sent.stdout.strip())
    return round(mib * (1 << 20) / seconds / 1e9, 3)


def two_node_busbw(cluster, a, b) -> dict:
    plan = nccl.Plan((a, b), cluster.nccl.master_port, 4 << 20, 16 << 20, 10, 3)
    outcome = nccl.run(cluster, registry.create(cluster), plan)
    row = outcome["sweep"][-1] if outcome["sweep"] else {}
    return {"ok": outcome["ok"], "bytes": row.get("bytes"), "busbw_gbps": row.get("busbw_gbps"),
            "algbw_gbps": row.get("algbw_gbps"), "seconds": outcome["seconds"]}


def blocked_port_diagnosis(cluster, nodes) -> dict:
    timed = cluster.with_blocks(nccl=cluster.nccl.model_copy(update={
        "rdzv_timeout": 10, "collective_timeout": 10, "deadline": 40}))
    faults.inject(nodes[-1].name, "egress-drop", str(cluster.nccl.master_port))
    try:
        outcome = nccl.run(timed, registry.create(timed), nccl.plan_all(timed, nodes))
    finally:
        faults.heal(nodes[-1].name)
    return {"rdzv_timeout_s": 10, "seconds_to_diagnosis": outcome["seconds"],
            "named": {n: v["reason"] for n, v in outcome["nodes"].items()}}


def measure(cluster) -> dict:
    a, b, c = (cluster.node(f"node-{i}") for i in (1, 2, 3))
    return {"raw_tcp_gbps_node1_to_node2": raw_tcp(cluster, a, b),
            "gloo_allreduce_2_nodes": two_node_busbw(cluster, a, b),
            "blocked_master_port": blocked_port_diagnosis(cluster, [a, b, c])}
