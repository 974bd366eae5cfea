"""`preflight provision` on the simulated cluster: from bare nodes, per fault, under kill."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from simcluster import faults, layout, network

from preflight.provision import blocks, nodeshell
from selftest.suites import REPO

pytestmark = pytest.mark.simcluster
RESOURCES = {"miniconda", "ssh-key", "ssh-config", "trust", "env", "kernel", "code"}
ENV = "pytorch-dist"


def provision(cluster_yaml: Path, *args: str, timeout: float = 600):
    return subprocess.run([sys.executable, "-m", "preflight", "--cluster", str(cluster_yaml),
                           "provision", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, check=False)


def planned(output: str) -> set[tuple[str, str, str]]:
    """(node, resource, verb) of every line of the plan that is not ok; a line names one
    node or a folded range of them (node-[1-4])."""
    from ClusterShell.NodeSet import NodeSet
    return {(node, resource, verb) for nodes, resource, verb in re.findall(
        r"^  (node-\S+)\s+(\S+)\s+(create|update|replace|error)\b", output, re.M)
        for node in NodeSet(nodes)}


def on_node(node: str, command: str, data: str | None = None) -> str:
    config = layout.RUN / "ssh_config"
    return subprocess.run(["ssh", "-F", str(config), node, command], input=data, text=True,
                          capture_output=True, check=True, timeout=30).stdout


FAULTS = [("pip-copy", "node-2", (), "env"),
          ("conda-version", "node-3", ("nccl", "2.21.5.1"), "env"),
          ("kernel-unregister", "node-4", (), "kernel"),
          ("no-keepalive", "node-4", (), "ssh-config"),
          ("code-change", "node-1", (), "code"), ("identity-mode", "node-1", (), "ssh-key"),
          ("known-hosts-drop", "node-3", ("node-2",), "trust")]


def test_each_fault_planned_on_its_node_then_fixed(sim):
    sim.ensure(4)
    for name, node, args, _ in FAULTS:
        sim.fault(name, node, *args)
    sim.discard()
    plan = provision(sim.cluster_yaml)
    assert plan.returncode == 10, plan.stdout + plan.stderr
    assert {(n, r) for n, r, _ in planned(plan.stdout)} == {
        (node, resource) for _, node, _, resource in FAULTS}, plan.stdout
    done = provision(sim.cluster_yaml, "--apply")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 change(s)" in provision(sim.cluster_yaml).stdout


def env_state(node: str) -> str:
    """'whole' when envs/NAME is a complete env (old or new), else what it is."""
    path = layout.NodeSpot(int(node.split("-")[1])).host_path(f"/opt/miniconda/envs/{ENV}")
    if not os.path.lexists(path):
        return "absent"
    if path.is_symlink():
        target = path.parent / os.readlink(path)
        return "whole" if (target / "conda-meta" / ".preflight-complete").exists() else \
            f"partial: {target.name}"
    return "whole" if (path / "conda-meta").is_dir() and (path / "bin" / "python").exists() \
        else "partial plain folder"


def kill_when(command: list[str], ready, timeout: float = 300) -> bool:
    """Start command, SIGKILL it once ready() holds; False when it ended first."""
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if ready():
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
            time.sleep(0.005)
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def kill_node_side(node: str) -> None:
    """What a node reboot or an OOM kill would do to provision's work there."""
    for pid in network.sh("ip", "netns", "pids", layout.NS_PREFIX + node,
                          check=False).stdout.split():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"provision" in cmdline or cmdline.startswith((b"tar", b"zstd")):
            os.kill(int(pid), signal.SIGKILL)


def test_killed_apply_never_leaves_a_partial_env_and_converges(sim):
    sim.ensure(4)
    sim.discard()
    command = [sys.executable, "-m", "preflight", "--cluster", str(sim.cluster_yaml),
               "provision", "--apply", "--no-check"]
    envs = layout.NodeSpot(2).host_path("/opt/miniconda/envs")
    held = layout.NodeSpot(2).host_path("/opt/miniconda/pkgs/.preflight")

    def parts():
        return list(envs.glob(f".{ENV}-*.part-*")) + list(held.glob("*.part-*"))
    # 1. mid-transfer: the controller dies while the archive streams
    sim.fault("conda-version", "node-2", "nccl", "2.21.5.1")
    assert kill_when(command, lambda: bool(list(held.glob("*.part-*"))))
    assert env_state("node-2") == "whole"
    # 2. after the transfer, mid-unpack, before the switch: the node side dies too
    assert kill_when(command, lambda: any(p.is_dir() for p in parts()))
    kill_node_side("node-2")
    assert env_state("node-2") == "whole"
    # 3. mid-sync of the code
    code = layout.NodeSpot(3).host_path("/workspace")
    sim.fault("code-change", "node-3")
    # the release folder exists from release-prepare until the switch: an rsync's ssh
    # handshake and transfer at least, tens of ms, polled every 5 ms
    assert kill_when(command, lambda: bool(list(code.glob(".src-releases/*.part"))))
    kill_node_side("node-3")
    assert (code / "src" / "train.py").is_file()  # the old tree or the new, whole
    assert env_state("node-2") == "whole"
    done = provision(sim.cluster_yaml, "--apply")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert env_state("node-2") == "whole"
    assert "0 change(s)" in provision(sim.cluster_yaml).stdout


def _variant(sim, tmp_path: Path, provision_lines: str, pip: bool = True) -> Path:
    """The bed's cluster.yaml with more provision settings, and environment.yml with the
    production env's pip section (torchelastic)."""
    env = tmp_path / "environment.yml"
    text = (REPO / "environment.yml").read_text()
    env.write_text(text + ("  - pip:\n      - torchelastic\n" if pip else ""))
    cluster = tmp_path / "cluster.yaml"
    yaml_text = Path(sim.cluster_yaml).read_text()
    yaml_text = re.sub(r"^environment: .*$", f"environment: {env}", yaml_text, flags=re.M)
    cluster.write_text(yaml_text.replace("\nprovision:\n", f"\nprovision:\n{provision_lines}"))
    return cluster


def test_pip_section_and_hardened_sshd_from_bare_nodes(sim, tmp_path):
    """The must-hold of provisioning: from bare nodes, the pip section installed from the
    controller's wheels and sshd made key-only where a drop-in or the main file turned
    passwords on; a Match block only with force; a change that would lock the controller
    out is rolled back."""
    sim.ensure(4, bare=True)
    sim.discard()
    sim.fault("password-auth", "node-2")
    sim.fault("sshd-dropin", "node-3")
    mine = "# my own settings\nCompression yes\nHost *\n  ServerAliveCountMax 3\n"
    on_node("node-2", "mkdir -p ~/.ssh && cat > ~/.ssh/config", mine)
    key = on_node("node-2", "cat /etc/ssh/authorized_keys/root")
    cluster = _variant(sim, tmp_path, "  harden_sshd: true\n  fanout: 1\n")
    plan = provision(cluster)
    assert plan.returncode == 10, plan.stdout + plan.stderr
    assert {(n, r) for n, r, _ in planned(plan.stdout) if r != "sshd"} == {
        (f"node-{i}", r) for i in range(1, 5) for r in RESOURCES}, plan.stdout
    sshd_lines = {n for n, r, _ in planned(plan.stdout) if r == "sshd"}
    assert sshd_lines == {"node-2", "node-3"}, plan.stdout
    assert "torchelastic 0.2.2" in plan.stdout
    done = provision(cluster, "--apply")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # the user's own lines, byte for byte, outside our block; a backup beside
    config = on_node("node-2", "cat ~/.ssh/config")
    assert blocks.remove(config) == mine
    assert config.index(blocks.BEGIN) < config.index("Host *")
    assert on_node("node-2", "ls ~/.ssh/").count("config.preflight-") == 1
    assert on_node("node-2", "cat /etc/ssh/authorized_keys/root").startswith(key)
    # fanout 1: the controller sends the installer and the env once, nodes copy the rest
    sent, copied = map(float, re.search(r"controller sent ([\d.]+) MB, nodes copied "
                                        r"([\d.]+) MB", done.stdout).groups())
    assert copied > 2 * sent, done.stdout
    assert "0 change(s) on 0 node(s)" in provision(cluster).stdout
    env = f"/opt/miniconda/envs/{ENV}"
    assert on_node("node-4", f"{env}/bin/python -c 'import torchelastic, etcd; "
                   "print(torchelastic.__file__)'").startswith(env)
    assert on_node("node-4", f"cat {env}/lib/python3.*/site-packages/torchelastic-*"
                   ".dist-info/INSTALLER").strip() == "pip"
    assert "passwordauthentication no" in on_node("node-3", "/usr/sbin/sshd -T")
    assert on_node("node-3", "ls /etc/ssh/sshd_config.d").split() == [
        "00-cluster-preflight.conf", "50-simfault.conf"]
    # a Match block that lets root in with a password: named, changed only with force
    sim.fault("sshd-match-root", "node-4")
    plan = provision(cluster)
    assert plan.returncode == 1, plan.stdout
    assert re.search(r"node-4\s+sshd\s+error\s+Match block at /etc/ssh/sshd_config:\d+ "
                     r"\(PermitRootLogin yes\)", plan.stdout), plan.stdout
    forced = _variant(sim, tmp_path, "  harden_sshd: force\n")
    done = provision(forced, "--apply", "--no-check")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 change(s) on 0 node(s)" in provision(forced).stdout
    _a_lockout_is_rolled_back(sim, tmp_path)
    _prune_lists_then_removes(cluster)


def _a_lockout_is_rolled_back(sim, tmp_path: Path) -> None:
    """A setting that shuts the controller's key out: sshd -t passes, the fresh login
    fails, every file is put back and the node is reported."""
    sshd_files = ("ls -A /etc/ssh/sshd_config.d; cat /etc/ssh/sshd_config; "
                  "cat /etc/ssh/sshd_config.d/* 2>/dev/null || true")
    before = on_node("node-1", sshd_files)
    locked = _variant(sim, tmp_path, "  harden_sshd: true\n  sshd_settings: "
                      "{passwordauthentication: 'no', AllowUsers: nobody}\n")
    done = provision(locked, "--apply", "--no-check")
    assert done.returncode == 1, done.stdout[-4000:]
    assert re.search(r"NOT PROVISIONED node-1: sshd: a fresh key login failed after the "
                     r"reload \(.*\); the change was rolled back", done.stdout), done.stdout
    assert on_node("node-1", sshd_files) == before


def _prune_lists_then_removes(cluster: Path) -> None:
    """The installers nodes kept for their peers are listed, then removed; the live env
    and nothing else stays in envs/."""
    listed = provision(cluster, "--prune")
    assert listed.returncode == 10, listed.stdout
    assert re.search(r"node-3: would remove /opt/\.preflight-installer-\w+\.sh", listed.stdout)
    assert provision(cluster, "--prune", "--apply").returncode == 0
    assert provision(cluster, "--prune").returncode == 0
    live = on_node("node-3", f"readlink /opt/miniconda/envs/{ENV}").strip()
    assert on_node("node-3", "ls -A /opt/miniconda/envs").split() == [live, ENV]


def test_apply_reports_a_lost_node_a_full_disk_and_a_held_lock_then_converges(sim, tmp_path):
    """Failures during apply, each on its own node: the others finish, the node is named
    with why, its live env is untouched, nothing partial is left, and a rerun converges."""
    sim.ensure(4)
    sim.discard()
    for node in ("node-2", "node-3", "node-4"):
        sim.fault("conda-version", node, "nccl", "2.21.5.1")
    sim.fault("held-full", "node-3")
    live = {n: _live_env(n) for n in ("node-3", "node-4")}
    # a provision from this machine that is alive holds node-1's lock
    lock = layout.NodeSpot(1).host_path("/opt/.miniconda.preflight-lock")
    lock.mkdir()
    (lock / "owner").write_text(f"{nodeshell.TOKEN.split(':')[0]}:{os.getpid()}\n")
    sim.fault("conda-version", "node-1", "nccl", "2.21.5.1")
    command = [sys.executable, "-m", "preflight", "--cluster", str(sim.cluster_yaml),
               "provision", "--apply", "--no-check"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:  # node-4 is lost once the plan is made
        lines.append(line)
        if line.startswith("plan: "):
            sim.fault("link-down", "node-4")
            break
    lines += process.stdout.readlines()
    assert process.wait(timeout=600) == 1, "".join(lines)
    out = "".join(lines)
    assert "node-2: env: replaced" in out, out
    assert re.search(r"NOT PROVISIONED node-1: another provision holds "
                     rf"/opt/\.miniconda\.preflight-lock \(\S+:{os.getpid()}\)", out), out
    assert re.search(r"NOT PROVISIONED node-3: .*disk full", out), out
    assert re.search(r"NOT PROVISIONED node-4: (unreachable|lost during the run)", out), out
    for node in ("node-3", "node-4"):  # the live env as it was, nothing partial beside it
        spot = layout.NodeSpot(int(node[-1]))
        assert _live_env(node) == live[node]
        assert env_state(node) == "whole"
        assert not list(spot.host_path("/opt/miniconda/envs").glob(f".{ENV}-*.part-*"))
    # the full disk holds no partial archive (seen inside the node: a tmpfs there)
    assert on_node("node-3", "ls -A /opt/miniconda/pkgs/.preflight") == ""
    shutil.rmtree(lock)
    faults.heal("node-3")
    faults.heal("node-4")
    done = provision(sim.cluster_yaml, "--apply")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 change(s)" in provision(sim.cluster_yaml).stdout


def _live_env(node: str) -> tuple:
    """What envs/NAME is: a link and its target, or a plain folder and its inode."""
    path = layout.NodeSpot(int(node.split("-")[1])).host_path(f"/opt/miniconda/envs/{ENV}")
    return ("link", os.readlink(path)) if path.is_symlink() else ("folder", path.stat().st_ino)
