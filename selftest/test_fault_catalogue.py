"""Every fault the test bed offers, one at a time on a healed 4-node cluster: caught, on
the faulty node only, the message names the difference, no traceback in any report.

Faults that need a live sshd, network or a login between nodes (LIVE) run the whole suite
on the bed, as a user would. Every other fault is file state on one node: the real probe
runs on that node (inside its namespaces, selftest/nodeprobe.py), the other nodes' facts
are the healthy ones probed once, and the suites judge them as a replay (--facts), with
the same assertions, at about a third of the cost.

A fault missing from CATALOGUE fails test_catalogue_covers_every_fault: adding a fault to
the test bed means saying here how the harness catches it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from simcluster import faults

from preflight.config import inventory
from selftest import nodeprobe
from selftest.builders import failing, variant
from selftest.suites import run_suites

pytestmark = [pytest.mark.simcluster, pytest.mark.slow]
PER_NODE = ("-m", "not slow")  # every per-node check plus the master-port listener
TRACEBACK = ("Traceback (most recent call last)", "INTERNALERROR", '.py", line ')


@dataclass
class Case:
    args: tuple = ()
    test: str | None = None  # the check that must catch it (None: a healthy variant)
    words: list[str] = field(default_factory=list)
    node: str = "node-3"
    select: tuple = PER_NODE
    after_facts: bool = False  # inject once the probe is done (mid-run faults)
    nccl: dict = field(default_factory=dict)  # cluster.yaml nccl settings for this case
    gpu_health: dict = field(default_factory=dict)  # and gpu_health settings
    env: dict = field(default_factory=dict)  # and env settings (verify)


UNREACHABLE = "test_miniconda_prefix_exists"
LIVE = {"sshd-stop", "sshd-freeze", "sshd-freeze mid-run", "port-drop", "link-down",
        "egress-drop", "slow-link", "known-hosts-drop",
        # ~/.bashrc acts only in a real ssh login
        "pythonpath-numpy", "library-path-nccl", "nofile-low"}
# Faults that cannot change what the env's Python sees (sshd, ssh files, a Jupyter server,
# /etc/hosts, a mount beside the env): their replay takes the node's healthy runtime
# section instead of a torch import (2-3 s a case, about a minute of CI)
SAME_RUNTIME = {"hostname-loopback", "hostname-loopback on the master", "hosts-wrong-peer",
                "password-auth", "sshd-dropin", "sshd-match-root", "identity-mode",
                "no-keepalive", "code-change", "jupyter-open", "jupyter-token",
                "jupyter-open-other", "ib", "xid", "dcgm", "kernel-unregister", "shm-tiny",
                "mtu-odd", "thp-odd", "host-keys-off"}
CATALOGUE = {
    "sshd-stop": Case(test=UNREACHABLE, words=["node-3 unreachable", "Connection refused"]),
    "sshd-freeze": Case(test=UNREACHABLE, words=["node-3 unreachable", "handshake"]),
    # the node-to-node logins run inside the probe: after the facts, the master-port
    # check is the run's last look at every node through the launcher
    "sshd-freeze mid-run": Case(test="test_network_master_port_reachable", after_facts=True,
                                words=["node-3: master port", "lost this node after its facts"]),
    "port-drop": Case(("22",), test=UNREACHABLE, words=["node-3 unreachable", "timed out"]),
    "link-down": Case(test=UNREACHABLE, words=["node-3 unreachable"]),
    "egress-drop": Case(("29500",), test="test_network_master_port_reachable",
                        words=["TCP connect to 10.231.7.11:29500"]),
    "slow-link": Case(("16mbit",), test="test_nccl_pairwise_healthy",
                      words=["every pair with node-3 is failed or slow"],
                      select=("-k", "pairwise", "--pairwise"),
                      nccl={"rdzv_timeout": 10, "collective_timeout": 10, "deadline": 40,
                            "iterations": 3, "warmup": 1}),
    "hostname-loopback": Case(test="test_network_names_resolve",
                              words=["own hostname", "127.0.1.1"]),
    "hostname-loopback on the master": Case(test="test_network_names_resolve", node="node-1",
                                            words=["node-1: own hostname", "127.0.1.1"]),
    "hosts-wrong-peer": Case(("node-2",), test="test_network_names_resolve",
                             words=["peer name: expected node-2 -> 10.231.7.12",
                                    "10.231.7.250"]),
    "conda-version": Case(("nccl", "2.21.5.1"), test="test_env_same_on_every_node",
                          words=["nccl", "2.21.5.1", "2.23.4.1"]),
    "conda-build": Case(("nccl", "h03a54cd_1"), test="test_env_same_on_every_node",
                        words=["nccl", "h03a54cd_1", "h03a54cd_2"]),
    "conda-channel": Case(("nccl", "community"), test="test_env_channels_allowed",
                          words=["nccl", "community", "conda-forge"]),
    "conda-remove": Case(("openmpi",), test="test_env_pins_hold",
                         words=["openmpi", "not installed"]),
    "conda-meta-corrupt": Case(("numpy",), test="test_env_records_intact",
                               words=["conda-meta/numpy-", "a complete JSON record",
                                      "Unterminated"]),
    "conda-meta-empty": Case(("numpy",), test="test_env_records_intact",
                             words=["conda-meta/numpy-", "no JSON value at offset 0"]),
    "conda-meta-duplicate": Case(("numpy", "0.0.1"), test="test_env_records_intact",
                                 words=["one record for numpy", "(0.0.1)"]),
    "remove-miniconda": Case(test="test_miniconda_prefix_exists",
                             words=["a folder at /opt/miniconda", "nothing there"]),
    "remove-env": Case(test="test_env_pins_hold", words=["pytorch-dist", "no env there"]),
    "pip-copy": Case(test="test_env_no_pip_copy_of_conda_package",
                     words=["nccl", "nvidia-nccl-cu11", "INSTALLER pip"]),
    "break-env-python": Case(test="test_miniconda_env_python_runs",
                             words=["envs/pytorch-dist/bin/python runs"]),
    "password-auth": Case(test="test_sshd_hardened", words=["passwordauthentication yes"]),
    "sshd-dropin": Case(test="test_sshd_hardened",
                        words=["passwordauthentication yes",
                               "set in /etc/ssh/sshd_config.d/50-simfault.conf"]),
    "sshd-match-root": Case(test="test_sshd_hardened",
                            words=["permitrootlogin yes in a Match block of "
                                   "/etc/ssh/sshd_config"]),
    "identity-mode": Case(test="test_ssh_identity_private_and_safe",
                          words=["mode 0600", "mode 0644"]),
    "no-keepalive": Case(test="test_ssh_client_config_for_nodes",
                         words=["serveraliveinterval 60", "not set"]),
    "known-hosts-drop": Case(("node-4",), test="test_ssh_node_to_node_without_prompt",
                             words=["node-4", "Host key verification failed"]),
    "code-change": Case(test="test_sync_code_tree_matches_source",
                        words=["1 changed: train.py"]),
    "jupyter-open": Case(test="test_jupyter_not_exposed_without_auth",
                         words=["port 8888", "bound to 0.0.0.0 with no token and no password"]),
    "jupyter-open-other": Case(test="test_jupyter_not_exposed_without_auth",
                               words=["port 8889", "no token and no password",
                                      "run by nobody", "runtime file in /tmp/simfault-jrt"]),
    "jupyter-token": Case(("tok-5f0c1e9a7b3d",)),  # protected: a healthy variant
    "ib": Case(("ndr8-port-down",), test="test_ib_ports_active_at_cluster_rate",
               words=["IB port: expected mlx5_3/1 ACTIVE / LinkUp", "1: DOWN / 3: Disabled"]),
    "xid": Case(test="test_gpu_no_drain_xid_since_boot",
                words=["XID 79", "2 on PCI:0000:9a:00", "GPU has fallen off the bus"]),
    "dcgm": Case(("dcgm4-r2-pcie-fail",), test="test_gpu_dcgm_diag_passes",
                 gpu_health={"dcgm_diag": 2, "dcgm_timeout": 30},
                 words=["DCGM Integration/pcie: expected Pass on GPU 3",
                        "52 Reconnect PCIe card"]),
    "user-site-torch": Case(test="test_cuda_modules_imported_from_the_env",
                            words=["torch imported from the env", "whose torch is",
                                   ".local/lib/python3.11/site-packages/torch/__init__.py "
                                   "(torch 2.0.2)", "pip install --user"]),
    "pythonpath-numpy": Case(test="test_cuda_modules_imported_from_the_env",
                             words=["numpy imported from the env",
                                    "/root/simfault-pythonpath/numpy/__init__.py (numpy 1.21.0)",
                                    "PYTHONPATH=/root/simfault-pythonpath"]),
    "library-path-nccl": Case(test="test_cuda_libraries_resolved_from_the_env",
                              words=["libnccl.so.2 from the env: /opt/miniconda/envs/"
                                     "pytorch-dist/lib/libnccl.so.2 (2.23.4+cuda11.8)",
                                     "/root/simfault-nccl/libnccl.so.2 (2.18.1+cuda12.1) via "
                                     "LD_LIBRARY_PATH=/root/simfault-nccl"]),
    "truncate-lib": Case(test="test_env_files_match_their_records",
                         words=["torch/lib/libtorch_global_deps.so of pytorch", "as recorded",
                                "bytes", "reinstall pytorch"]),
    "corrupt-lib": Case(test="test_env_files_match_their_records", env={"verify": "sha256"},
                        words=["torch/lib/libtorch_global_deps.so of pytorch sha256",
                               "same size, other bytes"]),
    "env-link-dangling": Case(test="test_env_pins_hold",
                              words=[".pytorch-dist-removed"]),
    "shm-tiny": Case(test="test_host_shm_large_enough",
                     words=["expected /dev/shm of at least 1 GiB, found 1 MiB", "--shm-size"]),
    "tmp-full": Case(test="test_host_disk_free",
                     words=["free on /tmp (/tmp)", "found 0 B free of 16 MiB (0.0 %)"]),
    "nofile-low": Case(test="test_host_limits_for_a_job",
                       words=["nofile at least", "found nofile 1024"]),
    "mtu-odd": Case(test="test_host_links_same_on_every_node",
                    words=["eth0 mtu 1500, as on 3 nodes", "found mtu 1400"]),
    "thp-odd": Case(test="test_host_same_on_every_node",
                    words=["expected thp ", "as on node-[1-2,4], found thp "]),
    "host-keys-off": Case(test="test_ssh_client_checks_host_keys",
                          words=["StrictHostKeyChecking no", "UserKnownHostsFile /dev/null",
                                 "set in /root/.ssh/config"]),
    "master-port-squat": Case(test="test_host_no_stray_work", node="node-1",
                              words=["master port 29500 free on the master",
                                     "a process already listens on 29500"]),
    "kernel-unregister": Case(test="test_jupyter_kernel_registered",
                              words=["kernel 'pytorch-dist' registered", "not registered"]),
}


# faults that need another test bed, each proven in the file named
ELSEWHERE = {"slurmd-stop": "selftest/test_slurm_e2e.py (needs simcluster up --slurm)",
             "launch-env-secret": "selftest/test_cuda_e2e.py (every file of the run read)",
             "held-full": "selftest/test_provision_e2e.py (a full disk during provision)"}


def test_catalogue_covers_every_fault():
    covered = {name.split(" ")[0] for name in CATALOGUE} | set(ELSEWHERE)
    assert covered == set(faults.FAULTS), set(faults.FAULTS) ^ covered


def _inject_after_facts(sim, fault: str, node: str, args: tuple, report_dir: Path) -> None:
    """Wait for the run's facts (the probe is done), then break the node mid-run."""
    deadline = time.monotonic() + 120
    while not (report_dir / "facts.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sim.fault(fault, node, *args)


@pytest.fixture(scope="module")
def healthy(sim_session) -> dict:
    """Every node's facts on the healed bed, probed once for the file-state faults."""
    sim_session.ensure(4)
    return nodeprobe.probe_all(inventory.load(sim_session.cluster_yaml))


def _cluster_for(case: Case, sim, tmp_path: Path) -> Path:
    blocks = {"gpu_health": case.gpu_health, "env": case.env}
    cluster = variant(sim, tmp_path, **case.nccl) if case.nccl or any(blocks.values()) \
        else sim.cluster_yaml
    for block, settings in blocks.items():
        if settings:
            doc = yaml.safe_load(cluster.read_text())
            doc.setdefault(block, {}).update(settings)
            cluster.write_text(yaml.safe_dump(doc))
    return cluster


def _live(name: str, case: Case, sim, tmp_path: Path):
    fault = name.split(" ", maxsplit=1)[0]
    late = None
    if case.after_facts:
        late = threading.Thread(target=_inject_after_facts,
                                args=(sim, fault, case.node, case.args, tmp_path))
        late.start()
    else:
        sim.fault(fault, case.node, *case.args)
    # serial: on 4 nodes xdist's start-up costs more than it saves (the xdist path is
    # proven by test_harness_e2e and test_slurm_e2e)
    run = run_suites(_cluster_for(case, sim, tmp_path), tmp_path, *case.select,
                     "-p", "no:xdist", timeout=400)
    if late:
        late.join()
    return run


def _replayed(name: str, case: Case, sim, tmp_path: Path, healthy: dict):
    sim.fault(name.split(" ", maxsplit=1)[0], case.node, *case.args)
    cluster = _cluster_for(case, sim, tmp_path)
    spec = inventory.load(cluster)
    # settings that change what the probe gathers (dcgm, verify) reach the faulty node's probe;
    # the others' checks of them skip either way (no dcgmi there)
    same = name in SAME_RUNTIME
    found = nodeprobe.probe_in_node(spec, case.node, runtime=not same)
    if same:
        found["runtime"] = healthy[case.node]["runtime"]
    docs = {**healthy, case.node: found}
    facts = tmp_path / "replayed.json"
    facts.write_text(json.dumps(docs))
    return run_suites(cluster, tmp_path, f"--facts={facts}", *case.select, "-p", "no:xdist",
                      timeout=400)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_fault_is_caught_on_its_node_only(name, sim, tmp_path, healthy):
    case = CATALOGUE[name]
    sim.ensure(4)
    run = _live(name, case, sim, tmp_path) if name in LIVE else \
        _replayed(name, case, sim, tmp_path, healthy)
    expected = {case.node} if case.test else set()
    assert set(failing(run)) == expected, (failing(run), run.output[-3000:])
    if case.test:
        message = run.messages[f"{case.test}[{case.node}]"]
        assert f"{case.node}" in message
        for word in case.words:
            assert word in message, message
    outputs = [run.output] + [p.read_text(errors="replace") for p in tmp_path.iterdir()
                              if p.name in ("summary.md", "junit.xml")]
    for text in outputs:
        assert not any(word in text for word in TRACEBACK), text[-3000:]


def test_live_faults_are_catalogued():
    assert set(CATALOGUE) >= LIVE, LIVE - set(CATALOGUE)
    assert set(CATALOGUE) >= SAME_RUNTIME, SAME_RUNTIME - set(CATALOGUE)
    assert not SAME_RUNTIME & LIVE
