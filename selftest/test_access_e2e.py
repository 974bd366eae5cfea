"""SSH and code-sync suites on the simulated cluster: each fault fails exactly its node."""

from __future__ import annotations

import pytest

from selftest.suites import run_suites
from selftest.test_env_e2e import failing

pytestmark = pytest.mark.simcluster

FAULTS = {
    # fault, node, args -> (test that must fail, words its message must hold)
    "sshd-dropin": ((), "test_sshd_hardened", ["passwordauthentication yes", "sshd -T"]),
    "sshd-match-root": ((), "test_sshd_hardened",
                        ["permitrootlogin yes in a Match block of /etc/ssh/sshd_config"]),
    "identity-mode": ((), "test_ssh_identity_private_and_safe", ["mode 0600", "mode 0644"]),
    "no-keepalive": ((), "test_ssh_client_config_for_nodes",
                     ["serveraliveinterval 60", "not set"]),
    "known-hosts-drop": (("node-1",), "test_ssh_node_to_node_without_prompt",
                         ["node-1", "Host key verification failed"]),
    "code-change": ((), "test_sync_code_tree_matches_source", ["1 changed: train.py"]),
    "jupyter-open": ((), "test_jupyter_not_exposed_without_auth",
                     ["port 8888", "bound to 0.0.0.0 with no token and no password"]),
    "kernel-unregister": ((), "test_jupyter_kernel_registered",
                          ["kernel 'pytorch-dist' registered", "not registered"]),
}
SUITES = "ssh or sync or jupyter"


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_access_fault_fails_exactly_its_node(fault, sim, tmp_path):
    sim.ensure(4)
    args, test, words = FAULTS[fault]
    sim.fault(fault, "node-3", *args)
    run = run_suites(sim.cluster_yaml, tmp_path, "-m", SUITES)
    assert set(failing(run)) == {"node-3"}, failing(run)
    message = run.messages[f"{test}[node-3]"]
    assert message.count("node-3:") >= 1
    for word in words:
        assert word in message, message


def test_jupyter_token_never_reaches_a_report(sim, tmp_path):
    """A protected server passes, and its token is in no file the run writes."""
    sim.ensure(4)
    token = "tok-5f0c1e9a7b3d"
    sim.fault("jupyter-token", "node-2", token)
    run = run_suites(sim.cluster_yaml, tmp_path, "-m", "jupyter")
    assert run.rc == 0, run.output[-2000:]
    assert token not in run.output
    for report in tmp_path.rglob("*"):
        if report.is_file():
            assert token not in report.read_text(errors="replace"), report
