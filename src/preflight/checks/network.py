"""Before any torchrun: names resolve to cluster addresses, interfaces are up, the master
port is reachable from every worker."""

from __future__ import annotations

import ipaddress

from preflight.checks.findings import Finding
from preflight.config.inventory import Cluster, Node

IFNAME_VARS = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _is_address(text: str | None) -> bool:
    """Only an address the cluster knows can be compared; a bare name resolves as it may."""
    try:
        ipaddress.ip_address(text or "")
    except ValueError:
        return False
    return True


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
        elif _is_address(want) and addresses[:1] != [want]:
            hint = f"{want} is there but not first: a connect dials {addresses[0]}" \
                if want in addresses else "a stale /etc/hosts line or DNS record"
            found.append(Finding(node.name, "peer name", f"{peer} -> {want}",
                                 f"{peer} -> {', '.join(addresses)}", hint))
    return found


def interfaces_up(node: Node, facts: dict, cluster: Cluster) -> list[Finding]:
    """The interfaces NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME select are there and up, read
    as NCCL reads them: prefixes (`eth` selects eth0, eth1), `=` for exact names, `^` to
    exclude (then some other interface but loopback must be up)."""
    interfaces = facts["net"]["interfaces"]
    found = []
    for var in IFNAME_VARS:
        value = cluster.nccl.env.get(var)
        if not value:
            continue
        chosen, described = selected(value, interfaces)
        up = [name for name in chosen if interfaces[name] in ("up", "unknown")]
        if not up:
            states = ", ".join(f"{n} {interfaces[n]}" for n in chosen) or "no such interface"
            found.append(Finding(node.name, "network interface", f"{described} up ({var}="
                                 f"{value})", states,
                                 f"interfaces: {', '.join(sorted(interfaces))}"))
    return found


def selected(value: str, interfaces: dict[str, str]) -> tuple[list[str], str]:
    """(interfaces the NCCL-style list selects, how to say which).

    >>> selected("eth", {"eth0": "up", "eth1": "down", "lo": "unknown"})[0]
    ['eth0', 'eth1']
    >>> selected("^docker,lo", {"eth0": "up", "docker0": "up", "lo": "unknown"})[0]
    ['eth0']
    >>> selected("=eth1", {"eth0": "up", "eth10": "up"})[0]
    []
    """
    exclude = value.startswith("^")
    rest = value[1:] if exclude else value
    exact = rest.startswith("=")
    names = [n for n in (rest[1:] if exact else rest).split(",") if n]

    def hit(iface: str) -> bool:
        return any(iface == n if exact else iface.startswith(n) for n in names)
    if exclude:
        chosen = [i for i in sorted(interfaces) if not hit(i) and i != "lo"]
        return chosen, f"an interface other than {rest}"
    chosen = [i for i in sorted(interfaces) if hit(i)]
    return chosen, ("one of " if len(names) > 1 or not exact else "") + ", ".join(
        f"{n}{'' if exact else '*'}" for n in names)


# what live/netcheck says of a worker it could no longer reach to try the connection
LOST = "not tried: the controller lost this node after its facts"


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
    hint = "its sshd, its link or the node itself stopped answering during the run" \
        if state.startswith(LOST) else \
        "a firewall between this node and the master, or the wrong address"
    return [Finding(node.name, "master port", f"TCP connect to {address}", state, hint)]
