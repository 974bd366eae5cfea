"""SSH as multi-node launchers need it: config, keys, hardened sshd, node-to-node."""

import getpass

import pytest

from preflight.checks import ssh
from preflight.checks.findings import require
from preflight.launchers import transport

pytestmark = [pytest.mark.ssh, pytest.mark.reads("ssh", "node")]


@pytest.fixture
def ssh_facts(cluster, facts):
    if not cluster.ssh.check:
        pytest.skip("ssh.check is false in cluster.yaml")
    return facts


def test_ssh_client_config_for_nodes(node, ssh_facts, cluster):
    require(ssh.client_config(node, ssh_facts, cluster))


def test_ssh_client_checks_host_keys(node, ssh_facts, cluster):
    """No StrictHostKeyChecking no / UserKnownHostsFile /dev/null for the nodes."""
    require(ssh.host_keys_checked(node, ssh_facts, cluster))


def test_ssh_identity_private_and_safe(node, ssh_facts):
    require(ssh.identity(node, ssh_facts))


@pytest.fixture(scope="session")
def authorized(cluster_facts):
    """Every node's authorized_keys, indexed once per run."""
    return ssh.AuthorizedKeys(cluster_facts)


def test_ssh_key_authorized_on_every_node(node, ssh_facts, authorized):
    require(ssh.key_spread(node, ssh_facts, authorized))
    ssh.skip_unchecked(authorized.unchecked(node.name))


def test_sshd_hardened(node, ssh_facts, cluster):
    require(ssh.sshd_hardened(node, ssh_facts, cluster))


@pytest.mark.reads("ssh", "node", "peer_logins")
def test_ssh_node_to_node_without_prompt(node, ssh_facts, ssh_logins):
    """The logins the probes made: from this node to its ring neighbour (every node, from
    the master) and from its peers into it; blame goes to the end that failed."""
    found = ssh.node_to_node(node, ssh_logins)
    require(found, ssh.failed_logins(ssh_logins) if found else "")
    ssh.skip_unchecked(ssh_logins["unchecked"].get(node.name, []))


def test_ssh_controller_config(cluster):
    """The controller's own ssh_config covers the nodes the same way."""
    if not cluster.ssh.check_controller or cluster.ssh_config is None:
        pytest.skip("no controller ssh_config to check")
    path = cluster.ssh_config
    texts = {str(path): path.read_text()} if path.is_file() else {}
    login = transport.resolve(cluster, cluster.master).user  # cluster.yaml, then ssh_config
    controller = {"node": {"user": login or getpass.getuser()},
                  "ssh": {"client_config": texts, "client_config_path": str(path)}}
    require(ssh.client_config(cluster.master, controller, cluster, where=str(path)))
