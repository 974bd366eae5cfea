"""The GPU stack's shared libraries as a job's loader resolves them (libnccl.so.2,
libcudart, libcudnn, libcublas): each the env's own file. An LD_LIBRARY_PATH or LD_PRELOAD
from a shell startup file, or a system copy in ld.so.cache where the env has none, puts
a second NCCL under torch without a word (the seed's incident of two NCCLs)."""

from __future__ import annotations

from preflight.checks.environment import conda_records, pip_dists
from preflight.checks.findings import Finding, NotChecked
from preflight.checks.imports import prefixes
from preflight.config.inventory import Node
from preflight.facts.contract import SectionBroken

# library family -> the conda package and pip dist prefix that ship it
SHIPPED_BY = {"libnccl": ("nccl", "nvidia-nccl-"), "libcudart": ("cudatoolkit",
              "nvidia-cuda-runtime-"), "libcudnn": ("cudnn", "nvidia-cudnn-"),
              "libcublas": ("libcublas", "nvidia-cublas-")}


def from_env(node: Node, facts: dict) -> list[Finding]:
    """One finding per library whose resolved file is not the env's."""
    runtime = facts["runtime"]
    libs = runtime.get("libraries")
    if libs is None:
        why = runtime.get("libraries_error") or "the runtime probe did not record them " \
            "(an older probe)"
        raise NotChecked(f"{node.name}: shared libraries not checked: {why}")
    inside = prefixes(node, facts)
    env = runtime.get("launch_env") or {}
    found = []
    for soname, lib in sorted(libs.items()):
        if lib["path"].startswith(inside):
            continue
        version = f" ({lib['version']})" if lib["version"] else ""
        if "env_path" in lib:
            expected = f"{soname} from the env: {lib['env_path']}" + \
                (f" ({lib['env_version']})" if lib.get("env_version") else "")
        elif _declared(soname, facts):
            expected = f"{soname} from the env, which declares {_declared(soname, facts)}"
        else:
            continue  # the env ships none and declares none: the system's is the one
        found.append(Finding(node.name, "shared library", expected,
                             f"{lib['path']}{version} via {_via(lib, env)}",
                             _hint(lib["via"]), severity="drain"))
    return found


def _via(lib: dict, env: dict) -> str:
    if lib["via"] in ("LD_LIBRARY_PATH", "LD_PRELOAD"):
        return f"{lib['via']}={env.get(lib['via'], '?')}"
    return "ld.so.cache" if lib["via"] == "ldconfig" else lib["via"]


def _hint(via: str) -> str:
    if via in ("LD_LIBRARY_PATH", "LD_PRELOAD"):
        return f"{via} in the launch environment (a shell startup file, a module load?) " \
               "wins over the env's RUNPATH: drop it for jobs"
    return "the env has no copy, so the loader takes the system's: install the env's " \
           "package on this node"


def _declared(soname: str, facts: dict) -> str:
    """The env's record that should ship this library ('nccl 2.23.4.1'), or ''."""
    conda_name, pip_prefix = SHIPPED_BY.get(soname.partition(".so.")[0], ("", ""))
    try:
        env = {"env": facts["env"]}
    except SectionBroken:
        return ""
    record = conda_records(env).get(conda_name) if conda_name else None
    if record:
        return f"{conda_name} {record.get('version')}"
    dist = next((d for name, d in pip_dists(env).items() if pip_prefix and
                 name.startswith(pip_prefix)), None)
    return f"{dist.get('name')} {dist.get('version')}" if dist else ""
