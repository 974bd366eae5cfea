"""SSH checks on synthetic facts: key spread that never passes an unread node, sshd's
defaults when `sshd -T` cannot run, and the file that set a bad value."""

import pytest

from preflight.checks import ssh
from preflight.config.clusterfile import SshSettings
from preflight.facts import contract
from selftest import recorded
from selftest.builders import node


class Cluster:
    ssh = SshSettings()


def checked(name: str, doc: dict | None = None) -> contract.Facts:
    return contract.validate(doc or recorded.healthy(name), contract.Expect(), name)


def test_key_spread_names_the_nodes_without_the_key():
    fleet = {n: checked(n) for n in ("a", "b", "c")}
    fleet["c"]["ssh"]["authorized_keys"] = []
    found = ssh.key_spread(node("a"), fleet["a"], ssh.AuthorizedKeys(fleet))
    assert [f.found for f in found] == ["missing on c"]


def test_key_spread_never_passes_a_node_it_could_not_read():
    fleet = {n: checked(n) for n in ("a", "b")}
    fleet["c"] = checked("c", recorded.set_path(recorded.healthy("c"), "ssh.authorized_keys",
                                                "not a list"))
    assert ssh.key_spread(node("a"), fleet["a"], ssh.AuthorizedKeys(fleet)) == []
    assert ssh.AuthorizedKeys(fleet).unchecked("a") == [
        "authorized_keys of c (unreachable or broken facts)"]
    with pytest.raises(pytest.skip.Exception, match="not checked: authorized_keys of c"):
        ssh.skip_unchecked(ssh.AuthorizedKeys(fleet).unchecked("a"))


def sshd_facts(files: dict[str, str], sshd_t=None) -> dict:
    doc = recorded.healthy("n1")
    doc["ssh"]["sshd_config"] = files
    doc["ssh"]["sshd_t"] = sshd_t or {"rc": 255, "text": "", "error": "no host keys"}
    return doc


def test_unset_password_authentication_is_the_openssh_default_yes():
    facts = sshd_facts({"/etc/ssh/sshd_config": "PubkeyAuthentication yes\n"})
    found = [str(f) for f in ssh.sshd_hardened(node("n1"), facts, Cluster)]
    assert any("passwordauthentication yes" in f and "the OpenSSH default" in f for f in found)


def test_included_drop_in_is_named_as_the_file_that_set_it():
    main = "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n" \
           "KbdInteractiveAuthentication no\nPermitRootLogin no\n"
    files = {"/etc/ssh/sshd_config": main,
             "/etc/ssh/sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n"}
    found = [str(f) for f in ssh.sshd_hardened(node("n1"), sshd_facts(files), Cluster)]
    assert found == ["n1: sshd: expected passwordauthentication no, found passwordauthentication "
                     "yes (from config files (sshd -T: no host keys); set in "
                     "/etc/ssh/sshd_config.d/50-cloud-init.conf)"]


def test_include_after_the_setting_does_not_override_it():
    main = "PasswordAuthentication no\nKbdInteractiveAuthentication no\n" \
           "Include /etc/ssh/sshd_config.d/*.conf\n"
    files = {"/etc/ssh/sshd_config": main,
             "/etc/ssh/sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n"}
    assert ssh.sshd_hardened(node("n1"), sshd_facts(files), Cluster) == []


def test_sshd_t_value_names_the_drop_in_too():
    files = {"/etc/ssh/sshd_config": "Include sshd_config.d/*.conf\n",
             "/etc/ssh/sshd_config.d/01-x.conf": "PasswordAuthentication yes\n"}
    effective = {"rc": 0, "text": "passwordauthentication yes\n", "error": ""}
    found = str(ssh.sshd_hardened(node("n1"), sshd_facts(files, effective), Cluster)[0])
    assert "(from sshd -T; set in /etc/ssh/sshd_config.d/01-x.conf)" in found


def test_self_including_config_ends():
    files = {"/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config\nPasswordAuthentication no\n"}
    assert ssh.first_settings(files)["passwordauthentication"] == ("no", "/etc/ssh/sshd_config")
