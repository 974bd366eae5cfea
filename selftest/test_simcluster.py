"""The test bed itself: nodes behave like separate hosts, faults bite and heal, down is clean."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest
from simcluster import cluster, layout, network

from preflight.config import inventory
from preflight.launchers import transport

pytestmark = pytest.mark.simcluster
ENV_PY = "/opt/miniconda/envs/pytorch-dist/bin/python"


@pytest.fixture
def nodes(sim):
    sim.ensure(4)
    return inventory.load(sim.cluster_yaml)


def ssh(cluster_, name: str, command: str, timeout: float = 60) -> transport.Result:
    conn = transport.connect(cluster_, cluster_.node(name))
    try:
        return conn.run(command, timeout)
    finally:
        conn.close()


def allowed_auth(address: str) -> list[str]:
    """The auth methods sshd offers (what `ssh -v` shows as 'can continue')."""
    sock = paramiko.Transport((address, 22))
    try:
        sock.start_client(timeout=5)
        sock.auth_none("root")
    except paramiko.BadAuthenticationType as exc:
        return sorted(exc.allowed_types)
    finally:
        sock.close()
    return ["none"]


def test_nodes_have_distinct_hostnames(nodes):
    names = {n.name: ssh(nodes, n.name, "hostname").stdout.strip() for n in nodes.nodes}
    assert names == {n.name: n.name for n in nodes.nodes}


def test_each_node_has_its_own_opt(nodes):
    ssh(nodes, "node-1", "echo mine > /opt/only-on-node-1")
    try:
        others = [ssh(nodes, n, "test -e /opt/only-on-node-1; echo $?").stdout.strip()
                  for n in ("node-2", "node-3", "node-4")]
        assert others == ["1", "1", "1"]
        assert ssh(nodes, "node-1", "cat /opt/only-on-node-1").stdout == "mine\n"
    finally:
        ssh(nodes, "node-1", "rm -f /opt/only-on-node-1")


def test_key_only_login(nodes, sim):
    state = cluster.load()
    assert allowed_auth(state["nodes"]["node-2"]["address"]) == ["publickey"]


def test_env_python_imports_torch(nodes):
    done = ssh(nodes, "node-3", f"{ENV_PY} -c 'import torch; print(torch.__version__)'")
    assert done.rc == 0, done.stderr
    assert done.stdout.startswith("2.13.0")


def test_torchrun_gloo_allreduce_across_three_nodes(nodes):
    """Each node started over SSH; ranks 1+2+3 must all-reduce to 6 on every node."""
    master = cluster.load()["nodes"]["node-1"]["address"]
    command = (f"cd /workspace/src && GLOO_SOCKET_IFNAME=eth0 {ENV_PY} -m torch.distributed.run "
               f"--nnodes 3 --nproc-per-node 1 --node-rank {{rank}} --master-addr {master} "
               "--master-port 29500 --rdzv-conf timeout=60 train.py")
    conns = [transport.connect(nodes, nodes.node(f"node-{i}")) for i in (1, 2, 3)]
    try:
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda i: conns[i].run(command.format(rank=i), 120),
                                    range(3)))
    finally:
        for conn in conns:
            conn.close()
    for rank, done in enumerate(results):
        assert done.rc == 0, f"node-{rank + 1}: {done.stderr[-2000:]}"
        assert "sum=6" in done.stdout, done.stdout


FAULT_CASES = {
    # fault args -> (command on the node, or None to connect, what shows the fault)
    "sshd-stop": ((), None, "Connection refused"),
    "sshd-freeze": ((), None, "timed out"),
    "port-drop": (("22",), None, "timed out"),
    "link-down": ((), None, "timed out"),
    "conda-version": (("nccl", "2.21.5.1"),
                      "ls /opt/miniconda/envs/pytorch-dist/conda-meta", "nccl-2.21.5.1-"),
    "conda-build": (("nccl", "h03a54cd_1"),
                    "ls /opt/miniconda/envs/pytorch-dist/conda-meta", "nccl-2.23.4.1-h03a54cd_1"),
    "remove-miniconda": ((), "test -d /opt/miniconda || echo gone", "gone"),
    "remove-env": ((), "test -d /opt/miniconda/envs/pytorch-dist || echo gone", "gone"),
    "pip-copy": ((), "cat /opt/miniconda/envs/pytorch-dist/lib/python3.11/site-packages/"
                     "nvidia_nccl_cu11-*.dist-info/INSTALLER", "pip"),
    "code-change": ((), "tail -1 /workspace/src/train.py", "edited by hand"),
    "break-env-python": ((), f"{ENV_PY} -c 'print(42)' || echo broken", "broken"),
    "slow-link": (("1mbit",), "tc qdisc show dev eth0", "tbf"),
}


@pytest.mark.parametrize("name", sorted(FAULT_CASES))
def test_fault_bites_only_its_node_and_heals(name, nodes, sim):
    args, command, shows = FAULT_CASES[name]
    fast = inventory.Cluster(**{**nodes.__dict__, "nodes": tuple(
        inventory.Node(**{**n.__dict__, "connect_timeout": 2}) for n in nodes.nodes)})
    sim.fault(name, "node-2", *args)
    seen = _observe(fast, "node-2", command)
    assert shows in seen
    assert shows not in _observe(fast, "node-3", command), "the fault leaked to node-3"
    sim.heal_all()
    assert shows not in _observe(fast, "node-2", command)


def _observe(cluster_, node: str, command: str | None) -> str:
    try:
        if command is None:
            return ssh(cluster_, node, "true").stdout or "connected"
        if command.startswith("tc "):
            return subprocess.run(["ip", "netns", "exec", f"pfsim-{node}", *command.split()],
                                  capture_output=True, text=True, check=True).stdout
        done = ssh(cluster_, node, command)
        return done.stdout + done.stderr
    except transport.Unreachable as exc:
        return str(exc)


def test_password_fault_offers_password_then_heals(nodes, sim):
    address = cluster.load()["nodes"]["node-2"]["address"]
    sim.fault("password-auth", "node-2")
    assert "password" in allowed_auth(address)
    sim.heal_all()
    assert allowed_auth(address) == ["publickey"]


def test_fault_on_hardlinked_file_changes_one_node(nodes, sim):
    """Node envs share inodes with the package cache; a fault must copy before it writes."""
    python = "bin/python3.11"
    node2 = layout.NodeSpot(2).host_path(f"/opt/miniconda/envs/pytorch-dist/{python}")
    node3 = layout.NodeSpot(3).host_path(f"/opt/miniconda/envs/pytorch-dist/{python}")
    size = node3.stat().st_size
    sim.fault("break-env-python", "node-2")
    assert node2.stat().st_size == 64
    assert node3.stat().st_size == size
    assert ssh(nodes, "node-3", f"{ENV_PY} -c 'print(42)'").stdout == "42\n"


def leftovers() -> dict:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    mounts = Path("/proc/self/mountinfo").read_text()
    procs = subprocess.run(["pgrep", "-f", "sshd -D -e -f /etc/ssh/sshd_config"],
                           capture_output=True, text=True).stdout
    return {
        "netns": [ln for ln in netns.splitlines() if ln.startswith(layout.NS_PREFIX)],
        "links": [ln for ln in links.splitlines()
                  if f" {layout.BRIDGE}:" in ln or f" {layout.VETH_PREFIX}" in ln],
        "mounts": [ln for ln in mounts.splitlines() if str(layout.RUN) in ln],
        "sshd": procs.split(),
        "run_dir": [str(layout.RUN)] if layout.RUN.exists() else [],
    }


def test_down_leaves_nothing(sim):
    sim.ensure(2)
    anchors = [n["anchor"] for n in cluster.load()["nodes"].values()]
    cluster.down()
    assert leftovers() == {"netns": [], "links": [], "mounts": [], "sshd": [], "run_dir": []}
    assert not any(cluster._alive(pid) for pid in anchors)


def test_up_clears_leftovers_of_a_killed_run(sim):
    """A run killed without `down` (state file lost too) must not stop the next `up`."""
    sim.ensure(2)
    layout.STATE.unlink()  # as if the process died before it could record anything
    assert network.our_namespaces()
    state = cluster.up(3)
    assert sorted(state["nodes"]) == ["node-1", "node-2", "node-3"]
    cluster.down()
    assert leftovers()["netns"] == []
