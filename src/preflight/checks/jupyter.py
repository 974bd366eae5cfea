"""Jupyter: the env's kernel registered as expected; no server open to all without auth."""

from __future__ import annotations

from preflight.checks.findings import Finding
from preflight.config.inventory import Cluster, Node

LOCAL = ("localhost", "127.0.0.1", "::1", "[::1]")


def kernel_registered(node: Node, facts: dict, cluster: Cluster) -> list[Finding]:
    want = cluster.jupyter.kernel_name or node.env_name
    kernels = [k for k in facts["jupyter"]["kernels"] if k["name"] == want]
    if not kernels:
        names = ", ".join(k["name"] for k in facts["jupyter"]["kernels"]) or "none"
        return [Finding(node.name, "jupyter kernel", f"kernel '{want}' registered",
                        f"not registered (kernels: {names})",
                        f"{node.env_prefix}/bin/python -m ipykernel install --user --name {want}")]
    kernel, found = kernels[0], []
    if "error" in kernel:
        return [Finding(node.name, "jupyter kernel", f"a readable kernel.json for '{want}'",
                        kernel["error"])]
    display = cluster.jupyter.display_name
    if display and kernel["display_name"] != display:
        found.append(Finding(node.name, "jupyter kernel", f"display name '{display}'",
                             f"'{kernel['display_name']}'"))
    if not (kernel.get("python") or "").startswith(node.env_prefix + "/"):
        found.append(Finding(node.name, "jupyter kernel", f"kernel '{want}' runs "
                             f"{node.env_prefix}/bin/python", kernel.get("python") or "no argv"))
    return found


def not_exposed(node: Node, facts: dict) -> list[Finding]:
    """A live server bound beyond localhost must have a token or a password, whoever runs
    it and wherever its runtime file is; a Jupyter process listening beyond localhost with
    no runtime file to tell its auth is named too."""
    found = []
    listening = facts["jupyter"]["listening"]
    known = set()
    for server in facts["jupyter"]["servers"]:
        if not server["alive"]:
            continue
        known.add(server.get("pid"))
        bound_any = server["hostname"] not in LOCAL or any(
            p["port"] == server["port"] and p["any"] for p in listening)
        if bound_any and not (server["has_token"] or server["password"]):
            who = f", run by {server['owner']}" if server.get("owner") else ""
            where = f"; runtime file in {server['folder']}" if server.get("folder") else ""
            found.append(Finding(
                node.name, "jupyter exposure", f"server on port {server['port']} bound to "
                "localhost (reach it through an SSH tunnel) or protected by a token",
                f"bound to {server['hostname']} with no token and no password",
                f"pid {server['pid']}{who}{where}", severity="drain"))
    for proc in facts["jupyter"].get("processes") or ():
        open_ports = [p["port"] for p in proc["listening"] if p["any"]]
        if proc["pid"] in known or not open_ports:
            continue
        found.append(Finding(
            node.name, "jupyter exposure", f"a runtime file telling the auth of the Jupyter "
            f"on port {open_ports[0]} (all interfaces)",
            f"none found for pid {proc['pid']}, run by {proc['user']}",
            f"its runtime folder ({proc['runtime_dir'] or 'unknown'}) has no server file: "
            "ask its owner, or stop it", severity="investigate"))
    return found
