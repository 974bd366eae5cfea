"""SSH for launchers: client config, keys and their spread, and sshd's effective settings."""

from __future__ import annotations

import fnmatch
import stat

import paramiko
from ClusterShell.NodeSet import NodeSet

from preflight.checks import logins as login_rules
from preflight.checks.findings import Finding, NotChecked
from preflight.config.inventory import Cluster, Node
from preflight.facts import contract

MATCH_KEYS = ("passwordauthentication", "kbdinteractiveauthentication", "pubkeyauthentication",
              "permitemptypasswords", "permitrootlogin")


def _sample_host(cluster: Cluster, node: Node) -> str:
    """A node name the Host pattern should cover (another node, as a launcher would use):
    the first other node it matches, else the first other node. Stops at the first match,
    so a run over N nodes is not N x N pattern matches."""
    pattern, first = cluster.ssh.host_pattern, None
    for other in cluster.nodes:
        if other.name == node.name:
            continue
        if fnmatch.fnmatch(other.name, pattern):
            return other.name
        first = first or other.name
    return first or node.name


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


def host_keys_checked(node: Node, facts: dict, cluster: Cluster) -> list[Finding]:
    """The node's effective client config (the user's file, then /etc/ssh/ssh_config: the
    first value wins) for the nodes' Host pattern keeps host key checking on: with it off
    every node-to-node login (torchrun's, rsync's) trusts whoever answers."""
    ssh = facts["ssh"]
    system = ssh.get("system_client_config")
    if system is None:
        raise NotChecked(f"{node.name}: host key checking not checked: the probe did not "
                         "read /etc/ssh/ssh_config (an older probe)")
    config = paramiko.SSHConfig()
    config.parse("".join([*ssh["client_config"].values(), *system.values()]).splitlines(
        keepends=True))
    host = _sample_host(cluster, node)
    got = config.lookup(host)
    found = []
    strict = str(got.get("stricthostkeychecking", "ask")).lower()
    if strict in ("no", "off"):
        found.append(Finding(node.name, "ssh host keys", f"StrictHostKeyChecking yes (or "
                             f"accept-new) for {host}", f"StrictHostKeyChecking {strict}",
                             _where(ssh, system, "stricthostkeychecking"),
                             severity="investigate"))
    files = got.get("userknownhostsfile")
    files = files if isinstance(files, list) else str(files or "").split()
    if "/dev/null" in files:
        found.append(Finding(node.name, "ssh host keys", f"a known_hosts file for {host}",
                             "UserKnownHostsFile /dev/null",
                             _where(ssh, system, "userknownhostsfile"),
                             severity="investigate"))
    return found


def _where(ssh: dict, system: dict, key: str) -> str:
    """The first file whose text sets key, for the hint."""
    for path, text in [*ssh["client_config"].items(), *system.items()]:
        if any(line.strip().lower().startswith(key) for line in text.splitlines()):
            return f"set in {path}: every login between nodes trusts whoever answers"
    return "every login between nodes trusts whoever answers"


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


class AuthorizedKeys:
    """Who authorizes which keys, read once per run (per node it would be N x N)."""

    def __init__(self, cluster_facts: dict[str, dict]) -> None:
        readable = contract.usable(cluster_facts, "ssh")
        self.keys = {n: set(f["ssh"]["authorized_keys"]) for n, f in readable.items()
                     if f["ssh"]}
        self.holders: dict[str, set[str]] = {}  # key -> the nodes that authorize it
        for name, keys in self.keys.items():
            for key in keys:
                self.holders.setdefault(key, set()).add(name)
        self.unreadable = sorted(set(cluster_facts) - set(readable))

    def lacking(self, node: str, blob: str) -> list[str]:
        """The other nodes that do not authorize blob: none, in O(1), on a healthy run."""
        holders = self.holders.get(blob, set())
        others = len(self.keys) - (node in self.keys)
        if len(holders) - (node in holders) == others:
            return []
        return sorted(set(self.keys) - holders - {node})

    def unchecked(self, node: str) -> list[str]:
        unknown = [n for n in self.unreadable if n != node]
        return [f"authorized_keys of {_names(unknown)} (unreachable or broken facts)"] \
            if unknown else []


def key_spread(node: Node, facts: dict, index: AuthorizedKeys) -> list[Finding]:
    """This node's public key is authorized on every other reached node."""
    blob = _blob(facts["ssh"]["identity_pub"])
    if blob is None:
        return [Finding(node.name, "ssh key spread", f"{facts['ssh']['identity']['path']}.pub",
                        "missing: cannot tell which nodes accept this node's key")]
    lacking = index.lacking(node.name, blob)
    if not lacking:
        return []
    return [Finding(node.name, "ssh key spread", "its public key in every node's "
                    "authorized_keys", f"missing on {_names(lacking)}")]


def skip_unchecked(items: list[str]) -> None:
    """After every finding has passed: what could not be checked makes it a skip with
    the reason, so a partial check never reads as a pass."""
    __tracebackhide__ = True
    if items:
        shown = "; ".join(items[:5]) + (f"; and {len(items) - 5} more" if len(items) > 5 else "")
        raise NotChecked(f"not checked: {shown}")


def _names(names: list[str]) -> str:
    return str(NodeSet.fromlist(names))


# sshd_config(5) defaults, for settings no file sets when `sshd -T` cannot run: an unset
# PasswordAuthentication is "yes", never safe by omission.
OPENSSH_DEFAULTS = {"passwordauthentication": "yes", "kbdinteractiveauthentication": "yes",
                    "pubkeyauthentication": "yes", "permitemptypasswords": "no",
                    "permitrootlogin": "prohibit-password"}
MAIN_CONFIG = "/etc/ssh/sshd_config"


def effective_sshd(facts: dict) -> tuple[dict[str, str], str]:
    """sshd's settings (lowercase keys) and where they came from."""
    t = facts["ssh"].get("sshd_t")
    if t and t["rc"] == 0:
        values = {}
        for line in t["text"].splitlines():
            key, _, value = line.partition(" ")
            values.setdefault(key.lower(), value.strip())
        return values, "sshd -T"
    values = dict(OPENSSH_DEFAULTS)
    for key, value in first_settings(facts["ssh"]["sshd_config"]).items():
        values[key] = value[0]
    why = f"config files (sshd -T: {t['error'] if t else 'no sshd binary'})"
    return values, why


def first_settings(files: dict[str, str]) -> dict[str, tuple[str, str]]:
    """key -> (value, file) as sshd reads them: Includes expanded where they stand, the
    first value outside a Match block wins."""
    found: dict[str, tuple[str, str]] = {}
    for path, key, value in _walk(files, MAIN_CONFIG if MAIN_CONFIG in files else
                                  next(iter(files), ""), set()):
        found.setdefault(key, (value, path))
    return found


def _walk(files: dict[str, str], path: str, seen: set[str]):
    """(file, key, value) outside Match blocks, descending into Includes (once each)."""
    if path in seen or path not in files:
        return
    seen.add(path)
    for key, value, in_match in config_lines(files[path]):
        if in_match:
            continue
        if key == "include":
            for pattern in value.split():
                full = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
                for name in sorted(n for n in files if fnmatch.fnmatch(n, full)):
                    yield from _walk(files, name, seen)
            continue
        yield path, key, value


def config_lines(text: str):
    """(key, value, inside a Match block) of each setting line, as sshd reads them."""
    for _, key, value, in_match in numbered_config_lines(text):
        yield key, value, in_match


def numbered_config_lines(text: str):
    """The same with each line's number (1-based, as text.splitlines() counts)."""
    in_match = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, value = line.replace("=", " ", 1).partition(" ")
        key = key.lower()
        if key == "match":
            in_match = value.strip().lower() != "all"
            continue
        yield number, key, value.strip().lower() if key != "include" else value.strip(), \
            in_match


def sshd_hardened(node: Node, facts: dict, cluster: Cluster) -> list[Finding]:
    values, source = effective_sshd(facts)
    set_in = first_settings(facts["ssh"]["sshd_config"])
    found = []
    for key, allowed in cluster.ssh.sshd.items():
        got = values.get(key.lower())
        if got is not None and got not in allowed:
            origin = f"set in {set_in[key][1]}" if key in set_in else "the OpenSSH default"
            found.append(Finding(node.name, "sshd", f"{key} {' or '.join(allowed)}",
                                 f"{key} {got} (from {source}; {origin})"))
    for path, text in facts["ssh"]["sshd_config"].items():
        for key, value, in_match in config_lines(text):
            allowed = cluster.ssh.sshd.get(key)
            if in_match and allowed and value not in allowed:
                found.append(Finding(node.name, "sshd", f"{key} {' or '.join(allowed)} in every "
                                     "Match block", f"{key} {value} in a Match block of {path}"))
    return found


def node_to_node(node: Node, logins: dict) -> list[Finding]:
    """Logins this node is to blame for (logins.blame): from it, or into it."""
    found = []
    for direction, peer, why in logins["blame"].get(node.name, []):
        expected = f"ssh -o BatchMode=yes {peer} works from this node" if direction == "from" \
            else f"ssh from {peer} into this node works"
        found.append(Finding(node.name, "node-to-node ssh", expected, why))
    return found


def failed_logins(logins: dict, limit: int = 20) -> str:
    """Every failed login of the run, one line each (capped), for the detail."""
    lines = [f"{s} -> {t}: {why}" for s, row in sorted(logins["result"].items())
             for t, why in sorted(row.items()) if login_rules.failed(why)]
    if not lines:
        return ""
    more = f"\n... and {len(lines) - limit} more" if len(lines) > limit else ""
    return f"failed logins ({logins['logins']} tried):\n" + "\n".join(lines[:limit]) + more
