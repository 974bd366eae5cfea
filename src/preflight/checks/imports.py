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
    """Every recorded module's file lies inside the env prefix, and no user site adds
    packages in front of the env's."""
    runtime = facts["runtime"]
    modules = runtime.get("modules")
    if modules is None:
        raise NotChecked(f"{node.name}: module origins not checked: the runtime probe did not "
                         "record them (it failed, or the facts are from an older probe)")
    inside = prefixes(node, facts)
    return [_finding(node, name, origin, facts) for name, origin in sorted(modules.items())
            if not origin["file"].startswith(inside)] + _user_site(node, runtime)


def _user_site(node: Node, runtime: dict) -> list[Finding]:
    """A user site that is on and holds packages: every job imports them before the env's
    (python -s or PYTHONNOUSERSITE=1 turn it off)."""
    user = runtime.get("user_site") or {}
    if not user.get("enabled") or not user.get("entries"):
        return []
    shown = ", ".join(user["entries"][:8]) + (f" and {user['count'] - 8} more"
                                               if user.get("count", 0) > 8 else "")
    added = [f"{name}: {' '.join(lines)}" for name, lines in (user.get("pth") or {}).items()
             if lines]
    extra = f"; its .pth files add {'; '.join(added[:4])}" if added else ""
    return [Finding(node.name, "import origin", "no user site packages in a job's imports "
                    "(or the user site off)",
                    f"user site {user['path']} on, holding {shown}{extra}",
                    "pip install --user put them there; remove them, or set "
                    "PYTHONNOUSERSITE=1 in the launch environment", severity="drain")]


def on_path(node: Node, facts: dict) -> list[Finding]:
    """The `torchrun` a job's PATH finds is the env's, or there is none (a launcher that
    calls the env's by its full path needs none): another one starts another torch. A
    `python` elsewhere on PATH is normal (the system's) and is judged only by the
    cross-node vote of the launch environment."""
    runtime = facts["runtime"]
    which = runtime.get("which")
    if which is None:
        raise NotChecked(f"{node.name}: torchrun on PATH not checked: the runtime probe did "
                         "not record it (an older probe)")
    inside = prefixes(node, facts)
    found = which.get("torchrun")
    if not found or found["path"].startswith(inside) or found["real"].startswith(inside):
        return []
    path = (runtime.get("launch_env") or {}).get("PATH", "(unset)")
    return [Finding(node.name, "torchrun on PATH", f"torchrun on PATH from the env "
                    f"({node.env_prefix}/bin) or not on PATH",
                    found["path"] + (f" -> {found['real']}" if found["real"] != found["path"]
                                     else ""),
                    f"PATH={path} in the launch environment finds another torchrun first; "
                    "a job started as `torchrun` runs another torch", severity="investigate")]


def _env(facts: dict) -> dict:
    """The env section where it is usable: it only adds to a finding here (the env's own
    checks say when it is broken), so this check reads `runtime` alone."""
    try:
        return facts["env"]
    except SectionBroken:
        return {}


def prefixes(node: Node, facts: dict) -> tuple[str, ...]:
    """The folders a file of the env may lie in: the env's path, and where it points when
    it is a link (provision's envs/NAME)."""
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
                   _why(origin["file"], facts["runtime"]), severity="drain")


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
