"""Miniconda install: prefix, layout, pythons, permissions, conda.sh in a login shell."""

from __future__ import annotations

from preflight.checks import paths
from preflight.checks.findings import Finding
from preflight.config.inventory import Node

LAYOUT = ("bin/conda", "condabin/conda", "etc/profile.d/conda.sh", "conda-meta")


def prefix_exists(node: Node, facts: dict) -> list[Finding]:
    root = facts["miniconda"]["root"]
    if paths.usable_dir(root):
        return []
    return [Finding(node.name, "miniconda prefix", f"a folder at {node.miniconda}",
                    paths.what_is_there(root), paths.dangling_hint(node.miniconda, root) or
                    "install Miniconda there (bash Miniconda3-*.sh -b -p PREFIX)")]


def layout(node: Node, facts: dict) -> list[Finding]:
    paths = facts["miniconda"]["layout"]
    missing = [rel for rel in LAYOUT if not paths[rel]["exists"]]
    if not missing:
        return []
    return [Finding(node.name, "miniconda layout", f"{node.miniconda}/{rel}", "missing",
                    "a partial or non-Miniconda install") for rel in missing]


def base_python_runs(node: Node, facts: dict) -> list[Finding]:
    python = facts["miniconda"].get("base_python") or {"runs": False, "error": "no prefix"}
    if python["runs"]:
        return []
    return [Finding(node.name, "miniconda base python", f"{node.miniconda}/bin/python runs",
                    _first_line(python["error"]) or "it does not run")]


def env_exists(node: Node, facts: dict) -> list[Finding]:
    env = facts["env"]
    root = env["root"]
    # provision installs envs/.NAME-<hash> and points envs/NAME at it with a symlink
    if paths.usable_dir(root) and env.get("conda") is not None:
        return []
    found = "no conda-meta in it" if paths.usable_dir(root) else \
        "no such folder" if not root["exists"] else paths.what_is_there(root)
    return [Finding(node.name, "conda env", f"env '{node.env_name}' at {node.env_prefix}", found,
                    paths.dangling_hint(node.env_prefix, root) or
                    "create it: conda env create -f environment.yml")]


def env_python_runs(node: Node, facts: dict) -> list[Finding]:
    runtime = facts["runtime"]
    if runtime.get("python"):
        return []
    return [Finding(node.name, "env python", f"{node.env_prefix}/bin/python runs",
                    _first_line(runtime.get("error", "")) or "it does not run")]


def permissions(node: Node, facts: dict) -> list[Finding]:
    """Nothing anyone may write, and owned by root or the user we log in as."""
    found = []
    for area, prefix in (("miniconda", node.miniconda), ("env", node.env_prefix)):
        section = facts[area]
        for path in section.get("world_writable", []):
            found.append(Finding(node.name, "permissions", f"{path} not world-writable",
                                 "mode o+w", "chmod o-w it: any user could change the env"))
        owner = section["root"].get("uid")
        allowed = {0, facts["node"]["uid"]}
        if owner is not None and owner not in allowed:
            found.append(Finding(node.name, "ownership", f"{prefix} owned by root or "
                                 f"{facts['node']['user']}", f"owner {section['root']['owner']}"))
    return found


def conda_sh_sources(node: Node, facts: dict) -> list[Finding]:
    result = facts["miniconda"].get("conda_sh")
    if result is None:
        return [Finding(node.name, "conda.sh", f"{node.miniconda}/etc/profile.d/conda.sh",
                        "missing")]
    if result["rc"] == 0 and not result["stderr"].strip():
        return []
    said = _first_line(result["stderr"]) or f"exit {result['rc']}"
    return [Finding(node.name, "conda.sh", "sourcing it in a login shell defines `conda` "
                    "without errors", said)]


def _first_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
