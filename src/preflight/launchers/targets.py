"""Where and how a node is reached: cluster.yaml's settings merged over ssh_config's, as
ssh's -o options win over its config file. The address the collective's master and the
master-port check use comes from here too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from preflight.config import sshconfig
from preflight.config.inventory import Cluster, Node


@dataclass(frozen=True)
class Target:
    """Where and how to connect, after cluster.yaml and ssh_config are merged."""

    name: str
    hostname: str
    port: int
    user: str | None
    identity_files: tuple[str, ...]
    proxy_jump: str | None
    proxy_command: str | None
    connect_timeout: float


def resolve(cluster: Cluster, node: Node) -> Target:
    """cluster.yaml's explicit settings win over ssh_config, as ssh's -o options do."""
    found = sshconfig.load(cluster.ssh_config).lookup(node.name)
    identity = [node.identity_file] if node.identity_file else found.get("identityfile", [])
    jump = node.proxy_jump or found.get("proxyjump")
    return Target(
        name=node.name,
        hostname=node.address or found.get("hostname", node.name),
        port=int(node.port or found.get("port", 22)),
        user=node.user or found.get("user"),
        identity_files=tuple(str(Path(p).expanduser()) for p in identity),
        proxy_jump=None if jump in (None, "none") else jump,
        proxy_command=found.get("proxycommand"),
        connect_timeout=node.connect_timeout,
    )
