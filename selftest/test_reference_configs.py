"""The reference configs in fixtures/reference pass the checks they illustrate."""

from dataclasses import replace

import pytest

from preflight.checks import ssh
from preflight.checks.findings import NotChecked
from preflight.config.clusterfile import SshSettings
from selftest.builders import NODE
from selftest.suites import REPO

REF = REPO / "fixtures" / "reference"


class Cluster:
    ssh = SshSettings(host_pattern="worker-*", user="ubuntu")
    nodes = (replace(NODE, name="worker-1"), replace(NODE, name="worker-2"))


def facts(sshd_text: str) -> dict:
    return {"node": {"user": "ubuntu", "uid": 1000},
            "ssh": {"client_config": {"~/.ssh/config": (REF / "ssh_config").read_text()},
                    "client_config_path": "~/.ssh/config",
                    "sshd_config": {"/etc/ssh/sshd_config": sshd_text}, "sshd_t": None}}


def test_reference_sshd_config_is_hardened():
    node = Cluster.nodes[0]
    assert ssh.sshd_hardened(node, facts((REF / "sshd_config").read_text()), Cluster) == []
    softened = (REF / "sshd_config").read_text() + "Match User ops\n  PasswordAuthentication yes\n"
    assert "in a Match block" in str(ssh.sshd_hardened(node, facts(softened), Cluster)[0])


def test_reference_client_config_covers_the_workers():
    node = Cluster.nodes[0]
    assert ssh.client_config(node, facts(""), Cluster) == []


def test_reference_jupyter_config_binds_localhost():
    """Load the config as Jupyter does (it calls get_config()) and read what it sets."""
    class Section(dict):
        def __getattr__(self, name):
            return self.setdefault(name, Section())

        def __setattr__(self, name, value):
            self[name] = value
    config = Section()
    code = compile((REF / "jupyter_server_config.py").read_text(), "jupyter_server_config", "exec")
    exec(code, {"get_config": lambda: config})  # noqa: S102 - our own fixture file
    assert config["ServerApp"]["ip"] == "localhost"
    assert "token" not in config.get("IdentityProvider", {})  # Jupyter makes one per start


def test_host_key_checking_off_is_named_with_the_file_that_set_it():
    node = Cluster.nodes[0]
    doc = facts("")
    doc["ssh"]["system_client_config"] = {"/etc/ssh/ssh_config": "Host *\n  SendEnv LANG\n"}
    assert ssh.host_keys_checked(node, doc, Cluster) == []
    doc["ssh"]["system_client_config"] = {"/etc/ssh/ssh_config": (
        "Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n")}
    # the user's file says yes first (its value wins); nothing there names known_hosts
    found = ssh.host_keys_checked(node, doc, Cluster)
    assert [f.found for f in found] == ["UserKnownHostsFile /dev/null"]
    assert "set in /etc/ssh/ssh_config" in found[0].hint
    doc["ssh"]["client_config"] = {}
    assert [f.found for f in ssh.host_keys_checked(node, doc, Cluster)] == [
        "StrictHostKeyChecking no", "UserKnownHostsFile /dev/null"]
    del doc["ssh"]["system_client_config"]
    with pytest.raises(NotChecked, match="host key checking not checked"):
        ssh.host_keys_checked(node, doc, Cluster)
