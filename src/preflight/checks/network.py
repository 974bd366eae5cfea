"""Before any torchrun: names resolve to cluster addresses, interfaces are up, the master
port is reachable from every worker."""

from __future__ import annotations

import ipaddress

from ..findings import Finding
from ..inventory import Cluster, Node

IFNAME_VARS = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def names_resolve(node: Node, facts: dict, expected: dict[str, str]) -> list[Finding]:
    """expected: node name -> the address the cluster uses for it."""
    net = facts["net"]
    found = []
    own = net["hostname_addrs"]
    if isinstance(own, str) or any(_is_loopback(a) for a in own):
        found.append(Finding(node.name, "own hostname", f"{net['hostname']} resolves to the "
                             "cluster address", own if isinstance(own, str) else ", ".join(own),
                             "a loopback entry in /etc/hosts makes rendezvous peers dial "
                             "themselves; map the hostname to the cluster address"))
    for peer, addresses in sorted(net["peers"].items()):
        want = expected.get(peer)
        if isinstance(addresses, str):
            found.append(Finding(node.name, "peer name", f"{peer} resolves", addresses))
        elif want and want not in addresses:
            found.append(Finding(node.name, "peer name", f"{peer} -> {want}",
                                 f"{peer} -> {', '.join(addresses)}"))
    return found


def interfaces_up(node: Node, facts: dict, cluster: Cluster) -> list[Finding]:
    interfaces = facts["net"]["interfaces"]
    found = []
    for var in IFNAME_VARS:
        value = cluster.nccl.env.get(var)
        if not value:
            continue
        for name in value.lstrip("^=").split(","):
            if value.startswith("^"):
                continue  # an exclusion list names interfaces not to use
            state = interfaces.get(name)
            if state not in ("up", "unknown"):
                found.append(Finding(node.name, "network interface", f"{name} up ({var})",
                                     state or "no such interface",
                                     f"interfaces: {', '.join(sorted(interfaces))}"))
    return found


def master_port(node: Node, cluster: Cluster, reachability: dict) -> list[Finding]:
    address = reachability.get("address", f"{cluster.master.name}:{cluster.nccl.master_port}")
    if node.name == cluster.master.name:
        state = reachability["master"]
        return [] if state == "ok" else [Finding(node.name, "master port",
                                                 f"a listener can bind {address}", state)]
    state = reachability.get(node.name)
    if state is None and reachability["master"] != "ok":
        state = f"not tried: the master's listener failed ({reachability['master']})"
    if state in (None, "ok"):
        return []
    return [Finding(node.name, "master port", f"TCP connect to {address}", state,
                    "a firewall between this node and the master, or the wrong address")]
