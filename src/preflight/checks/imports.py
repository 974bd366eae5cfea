"""What a job really imports: the modules the runtime probe imported in the launch
environment (the user's startup files included) must be the env's own files. A
`pip install --user torch` or a PYTHONPATH folder wins over the env silently otherwise."""

from __future__ import annotations

import posixpath

from preflight.checks.environment import conda_records, pip_dists
from preflight.checks.findings import Finding, NotChecked
from preflight.config.inventory import Node
from preflight.facts.contract import SectionBroken

# imported module -> its conda package and pip dist names
PACKAGES = {"torch": ("pytorch", "torch"), "numpy": ("numpy", "numpy")}


def from_env(node: Node, facts: dict) -> list[Finding]:
    """Every recorded module's file lies inside the env prefix."""
    runtime = facts["runtime"]
    modules = runtime.get("modules")
    if modules is None:
        raise NotChecked(f"{node.name}: module origins not checked: the runtime probe did not "
                         "record them (it failed, or the facts are from an older probe)")
    inside = _prefixes(node, facts)
    return [_finding(node, name, origin, facts) for name, origin in sorted(modules.items())
            if not origin["file"].startswith(inside)]


def _env(facts: dict) -> dict:
    """The env section where it is usable: it only adds to a finding here (the env's own
    checks say when it is broken), so this check reads `runtime` alone."""
    try:
        return facts["env"]
    except SectionBroken:
        return {}


def _prefixes(node: Node, facts: dict) -> tuple[str, ...]:
    """The env's path, and where it points when it is a link (provision's envs/NAME)."""
    prefix = node.env_prefix.rstrip("/")
    target = (_env(facts).get("root") or {}).get("target")
    if not target:
        return (prefix + "/",)
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(prefix), target))
    return (prefix + "/", resolved + "/")


def _finding(node: Node, name: str, origin: dict, facts: dict) -> Finding:
    return Finding(node.name, "import origin",
                   f"{name} imported from the env ({node.env_prefix}){_env_has(name, facts)}",
                   f"{origin['file'] or 'no file'} ({name} {origin['version'] or '?'})",
                   _why(origin["file"], facts["runtime"]))


def _env_has(name: str, facts: dict) -> str:
    conda_name, pip_name = PACKAGES.get(name, (name, name))
    env = {"env": _env(facts)}
    record = conda_records(env).get(conda_name)
    dist = pip_dists(env).get(pip_name)
    version = (record or {}).get("version") or (dist or {}).get("version")
    return f", whose {name} is {version}" if version else ""


def _why(path: str, runtime: dict) -> str:
    """Which part of the launch environment put the file first on sys.path."""
    user = runtime.get("user_site") or {}
    if user.get("path") and path.startswith(user["path"].rstrip("/") + "/"):
        return f"the user site {user['path']} (pip install --user) wins over the env: " \
               "remove it there, or set PYTHONNOUSERSITE=1 for jobs"
    env = runtime.get("launch_env") or {}
    for folder in (env.get("PYTHONPATH") or "").split(":"):
        if folder and path.startswith(folder.rstrip("/") + "/"):
            return f"PYTHONPATH={env['PYTHONPATH']} in the launch environment (a shell " \
                   "startup file?) puts it first"
    return "another folder on sys.path wins over the env's site-packages"
