"""SSH for launchers: client config, keys and their spread, and sshd's effective settings."""

from __future__ import annotations

import fnmatch
import stat

import paramiko

from ..findings import Finding
from ..inventory import Cluster, Node

MATCH_KEYS = ("passwordauthentication", "kbdinteractiveauthentication", "pubkeyauthentication",
              "permitemptypasswords", "permitrootlogin")


def _sample_host(cluster: Cluster, node: Node) -> str:
    """A node name the Host pattern should cover (another node, as a launcher would use)."""
    names = [n.name for n in cluster.nodes if n.name != node.name] or [node.name]
    matching = [n for n in names if fnmatch.fnmatch(n, cluster.ssh.host_pattern)]
    return (matching or names)[0]


def client_config(node: Node, facts: dict, cluster: Cluster, texts: dict | None = None,
                  where: str | None = None) -> list[Finding]:
    """The Host block sets User, IdentityFile and ServerAliveInterval as cluster.yaml says."""
    ssh = facts["ssh"]
    texts = texts if texts is not None else ssh["client_config"]
    where = where or ssh["client_config_path"]
    if not texts:
        return [Finding(node.name, "ssh client config", f"{where} with a Host "
                        f"{cluster.ssh.host_pattern} block", "no such file")]
    config = paramiko.SSHConfig()
    config.parse("".join(texts.values()).splitlines(keepends=True))
    host = _sample_host(cluster, node)
    found_cfg = config.lookup(host)
    settings = cluster.ssh
    want = {"user": settings.user or facts["node"]["user"],
            "serveraliveinterval": str(settings.server_alive_interval)
            if settings.server_alive_interval else None}
    found = []
    for key, value in want.items():
        if value is not None and found_cfg.get(key) != value:
            found.append(Finding(node.name, "ssh client config", f"{key} {value} for {host} "
                                 f"(Host {settings.host_pattern}) in {where}",
                                 f"{key} {found_cfg.get(key, 'not set')}"))
    if "identityfile" not in found_cfg:
        found.append(Finding(node.name, "ssh client config", f"IdentityFile for {host} in "
                             f"{where}", "not set (ssh would try every default key)"))
    return found


def identity(node: Node, facts: dict) -> list[Finding]:
    ssh = facts["ssh"]
    key, dot = ssh["identity"], ssh["dot_ssh"]
    found = []
    if not key["exists"]:
        return [Finding(node.name, "ssh identity", f"a private key at {key['path']}", "missing")]
    if key["kind"] != "private":
        found.append(Finding(node.name, "ssh identity", f"{key['path']} is a private key",
                             key["kind"]))
    if key["mode"] & (stat.S_IRWXG | stat.S_IRWXO):
        found.append(Finding(node.name, "ssh identity", f"{key['path']} mode 0600",
                             f"mode {key['mode']:04o}", "ssh refuses keys others can read"))
    if key["uid"] != facts["node"]["uid"]:
        found.append(Finding(node.name, "ssh identity", f"{key['path']} owned by "
                             f"{facts['node']['user']}", f"owner {key['owner']}"))
    if dot.get("exists") and dot["mode"] & (stat.S_IRWXG | stat.S_IRWXO):
        found.append(Finding(node.name, "ssh identity", f"{ssh['home']}/.ssh mode 0700",
                             f"mode {dot['mode']:04o}"))
    return found


def _blob(pub: str | None) -> str | None:
    words = (pub or "").split()
    return " ".join(words[:2]) if len(words) >= 2 else None


def key_spread(node: Node, facts: dict, cluster_facts: dict[str, dict]) -> list[Finding]:
    """This node's public key is authorized on every other reached node."""
    blob = _blob(facts["ssh"]["identity_pub"])
    if blob is None:
        return [Finding(node.name, "ssh key spread", f"{facts['ssh']['identity']['path']}.pub",
                        "missing: cannot tell which nodes accept this node's key")]
    lacking = [name for name, other in sorted(cluster_facts.items())
               if name != node.name and other["reach"]["ok"] and other.get("ssh")
               and blob not in other["ssh"]["authorized_keys"]]
    if not lacking:
        return []
    return [Finding(node.name, "ssh key spread", "its public key in every node's "
                    "authorized_keys", f"missing on {', '.join(lacking)}")]


def effective_sshd(facts: dict) -> tuple[dict[str, str], str]:
    """sshd's settings (lowercase keys) and where they came from."""
    t = facts["ssh"].get("sshd_t")
    if t and t["rc"] == 0:
        values = {}
        for line in t["text"].splitlines():
            key, _, value = line.partition(" ")
            values.setdefault(key.lower(), value.strip())
        return values, "sshd -T"
    values = {}
    for text in facts["ssh"]["sshd_config"].values():
        for key, value, in_match in _config_lines(text):
            if not in_match:
                values.setdefault(key, value)  # sshd: the first value wins
    why = f"config files (sshd -T: {t['error'] if t else 'no sshd binary'})"
    return values, why


def _config_lines(text: str):
    in_match = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, value = line.replace("=", " ", 1).partition(" ")
        key = key.lower()
        if key == "match":
            in_match = value.strip().lower() != "all"
            continue
        yield key, value.strip().lower(), in_match


def sshd_hardened(node: Node, facts: dict, cluster: Cluster) -> list[Finding]:
    values, source = effective_sshd(facts)
    found = []
    for key, allowed in cluster.ssh.sshd.items():
        got = values.get(key.lower())
        if got is not None and got not in allowed:
            found.append(Finding(node.name, "sshd", f"{key} {' or '.join(allowed)}",
                                 f"{key} {got} (from {source})"))
    for path, text in facts["ssh"]["sshd_config"].items():
        for key, value, in_match in _config_lines(text):
            allowed = cluster.ssh.sshd.get(key)
            if in_match and allowed and value not in allowed:
                found.append(Finding(node.name, "sshd", f"{key} {' or '.join(allowed)} in every "
                                     "Match block", f"{key} {value} in a Match block of {path}"))
    return found


def node_to_node(node: Node, matrix: dict) -> list[Finding]:
    """From this node to every other: key-only, no prompt, strict host keys."""
    row = matrix.get(node.name, {})
    if isinstance(row, str):
        return [Finding(node.name, "node-to-node ssh", "ssh from this node", row)]
    bad = {to: why for to, why in sorted(row.items()) if why != "ok"}
    return [Finding(node.name, "node-to-node ssh", f"ssh -o BatchMode=yes {to} works", why)
            for to, why in bad.items()]


def matrix_table(matrix: dict) -> str:
    names = sorted(matrix)
    lines = ["from \\ to | " + " | ".join(names)]
    for src in names:
        row = matrix[src]
        cells = ["-" if dst == src else ("ok" if isinstance(row, dict) and row.get(dst) == "ok"
                                         else "FAIL") for dst in names]
        lines.append(f"{src} | " + " | ".join(cells))
    return "\n".join(lines)
