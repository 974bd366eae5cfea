"""SSH resources of a node: its own key, the client config block, node-to-node trust.

What launchers (torchrun over ssh, mpirun, pdsh) need: each node logs in to each other
node without a prompt and without trusting a host key on first use.
"""

from __future__ import annotations

import os

from preflight.checks import ssh as ssh_checks
from preflight.config.inventory import Cluster, Node
from preflight.provision import blocks
from preflight.provision.nodeshell import text_sha256
from preflight.provision.plan_types import Action


def steps(cluster: Cluster, node: Node, facts: dict, everyone: dict[str, dict],
          host_keys: dict[str, tuple[str, str]]) -> list:
    if not cluster.ssh.check:
        return []
    pubs = {name: pub_blob(f) for name, f in everyone.items()}
    return [(("ssh",), lambda: identity(node, facts)),
            (("ssh",), lambda: client_config(cluster, node, facts)),
            (("ssh",), lambda: trust(node, facts, pubs, host_keys))]


def pub_blob(facts: dict) -> str | None:
    if not facts["reach"]["ok"] or "ssh" in (dict.get(facts, "broken") or {}):
        return None
    words = ((facts.get("ssh") or {}).get("identity_pub") or "").split()
    return " ".join(words[:2]) if len(words) >= 2 else None


def identity(node: Node, facts: dict) -> list[Action]:
    findings = ssh_checks.identity(node, facts)
    if not findings:
        return [Action(node.name, "ssh-key", "ok")]
    path = facts["ssh"]["identity"]["path"]
    fixable = [f for f in findings if "mode" in f.expected or f.found == "missing"]
    if len(fixable) < len(findings):
        other = next(f for f in findings if f not in fixable)
        return [Action(node.name, "ssh-key", "error", f"not changed by provision: expected "
                       f"{other.expected}, found {other.found}")]
    verb = "create" if findings[0].found == "missing" else "update"
    why = "no key: an ed25519 key is generated on the node" if verb == "create" else \
        "; ".join(f"{f.found}, want {f.expected.split()[-1]}" for f in findings)
    return [Action(node.name, "ssh-key", verb, why, detail={"path": path})]


def client_config(cluster: Cluster, node: Node, facts: dict) -> list[Action]:
    if not ssh_checks.client_config(node, facts, cluster):
        return [Action(node.name, "ssh-config", "ok")]
    found = facts["ssh"]
    path = found["client_config_path"]
    old = found["client_config"].get(path)
    settings = {"User": cluster.ssh.user or facts["node"]["user"],
                "IdentityFile": cluster.ssh.identity_file}
    if cluster.ssh.server_alive_interval:
        settings["ServerAliveInterval"] = str(cluster.ssh.server_alive_interval)
    try:
        new = blocks.place(old or "", blocks.render(cluster.ssh.host_pattern, settings))
    except blocks.BlockDamaged as exc:
        return [Action(node.name, "ssh-config", "error", f"{path}: {exc}; fix it by hand")]
    texts = {**found["client_config"], path: new}
    still = ssh_checks.client_config(node, facts, cluster, texts=texts, where=path)
    if still:  # an earlier line (before any Host) wins over any block we could place
        return [Action(node.name, "ssh-config", "error", f"{path}: a line before the first "
                       f"Host sets {still[0].found}; the managed block cannot override it")]
    before = ssh_checks.client_config(node, facts, cluster)[0]
    return [Action(node.name, "ssh-config", "create" if old is None else "update",
                   f"expected {before.expected}, found {before.found}", "managed block",
                   {"path": path, "text": new, "sha256": text_sha256(old)})]


def trust(node: Node, facts: dict, pubs: dict[str, str | None],
          host_keys: dict[str, tuple[str, str]]) -> list[Action]:
    """Every other node's key accepted here; every other node's verified host key known.
    host_keys: node -> (its names for known_hosts, "keytype base64" the controller saw)."""
    found = facts["ssh"]
    have_keys = set(found["authorized_keys"])
    keys = sorted(f"{blob} preflight@{name}" for name, blob in pubs.items()
                  if name != node.name and blob and blob not in have_keys)
    pending = sorted(n for n, b in pubs.items() if n != node.name and b is None)
    known = [line.split(None, 1) for line in found.get("known_hosts", [])]
    hosts = sorted(f"{names} {key}" for name, (names, key) in host_keys.items()
                   if name != node.name and not any(
                       name in hosts_field.split(",") and rest == key
                       for hosts_field, rest in known))
    if not keys and not hosts:
        return [Action(node.name, "trust", "ok") if not pending else
                Action(node.name, "trust", "update", f"keys of {', '.join(pending)} are made "
                       "in this run", detail={"keys": [], "hosts": []})]
    why = [f"{len(keys)} node key(s) not in authorized_keys"] if keys else []
    why += [f"{len(hosts)} host key(s) not in known_hosts"] if hosts else []
    why += [f"then the keys of {len(pending)} node(s) made in this run"] if pending else []
    files = found.get("authorized_keys_files") or [os.path.join(found["home"], ".ssh",
                                                                 "authorized_keys")]
    return [Action(node.name, "trust", "update", "; ".join(why), "lines appended",
                   {"keys": keys, "hosts": hosts, "authorized_keys": files[0]})]
