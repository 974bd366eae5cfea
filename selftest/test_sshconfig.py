"""ssh_config: Include is honoured and cluster.yaml's explicit settings win."""

from preflight.config import inventory, sshconfig
from preflight.launchers import transport


def test_include_is_expanded(tmp_path):
    (tmp_path / "extra").write_text("Host w1\n  HostName 10.0.0.5\n  Port 2222\n")
    main = tmp_path / "config"
    main.write_text(f"Include {tmp_path}/extra\nHost *\n  User ops\n")
    found = sshconfig.load(main).lookup("w1")
    assert (found["hostname"], found["port"], found["user"]) == ("10.0.0.5", "2222", "ops")


def test_cluster_yaml_wins_over_ssh_config(tmp_path):
    (tmp_path / "environment.yml").write_text("name: e\ndependencies: [python]\n")
    (tmp_path / "ssh_config").write_text(
        "Host w1 w2\n  HostName 10.0.0.5\n  User admin\n  ProxyJump bastion\n"
        "  IdentityFile ~/.ssh/k\n")
    (tmp_path / "cluster.yaml").write_text(
        "cluster: c\ndefaults: {ssh_config: ssh_config}\n"
        "nodes: [{name: w1, user: ops, port: 2200}, {name: w2}]\n")
    cluster = inventory.load(tmp_path / "cluster.yaml")
    one = transport.resolve(cluster, cluster.node("w1"))
    assert (one.hostname, one.port, one.user, one.proxy_jump) == ("10.0.0.5", 2200, "ops",
                                                                 "bastion")
    two = transport.resolve(cluster, cluster.node("w2"))
    assert two.user == "admin"
    assert two.identity_files[0].endswith("/.ssh/k")
