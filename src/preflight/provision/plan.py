"""The plan: for every node and resource, ok / create / update / replace, and why.

Pure: facts and the wanted state in, actions out. Each resource reads the facts the
checks read and names the finding that made it act, so `plan` and `check` agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from preflight.checks import environment, jupyter, miniconda, sync
from preflight.config.inventory import Cluster, Node
from preflight.facts import contract
from preflight.provision import access, sshd
from preflight.provision.envbuild import Package, Solution, node_packages
from preflight.provision.plan_types import Action

SHOW = 4  # differences named in a reason


@dataclass(frozen=True)
class Wanted:
    """What every node must end up with, decided once on the controller."""

    solution: Solution
    source: dict[str, str] | None  # code tree hashes, or None when sync is off
    installer_size: int | None
    host_keys: dict[str, tuple[str, str]]  # node -> (names, "keytype base64") verified
    stamp: str = "0"  # this run's install id: envs/.NAME-<digest>-<stamp>


def plan_node(cluster: Cluster, node: Node, facts: dict, everyone: dict[str, dict],
              wanted: Wanted) -> list[Action]:
    """Every resource of one node, in the order apply carries them out."""
    if not facts["reach"]["ok"]:
        return [Action(node.name, "node", "error", f"not provisioned: {facts['reach']['reason']}")]
    steps = [(("miniconda",), lambda: base(node, facts, wanted)),
             *access.steps(cluster, node, facts, everyone, wanted.host_keys),
             (("ssh",), lambda: sshd.plan(cluster, node, facts)),
             (("env", "runtime"), lambda: env(node, facts, wanted)),
             (("jupyter",), lambda: kernel(cluster, node, facts)),
             (("sync",), lambda: code(node, facts, wanted))]
    out = []
    for sections, decide in steps:
        cause = contract.broken_cause(facts, sections)
        out += [Action(node.name, sections[0], "error", cause)] if cause else decide()
    return [_runnable(cluster, node, facts, a) for a in out]


def _runnable(cluster: Cluster, node: Node, facts: dict, action: Action) -> Action:
    """The action, or "cannot be planned" when the node lacks a tool apply runs for it:
    tar and the archive's decompressor for a new env, rsync for the code tree."""
    if not action.changes:
        return action
    need = []
    if action.resource == "env" and not action.detail.get("present"):
        need = ["tar", cluster.provision.compression]
    elif action.resource == "code":
        need = ["rsync"]
    try:
        tools = facts["node"].get("tools") if need else None
    except contract.SectionBroken:  # apply finds out, and says so, on that node
        tools = None
    missing = [t for t in need if tools is not None and not tools.get(t)]
    if not missing:
        return action
    return Action(node.name, action.resource, "error",
                  f"cannot {action.verb}: no {' or '.join(missing)} on the node "
                  f"(install {' '.join(missing)})")


def base(node: Node, facts: dict, wanted: Wanted) -> list[Action]:
    facts_base = facts["miniconda"]
    sent = f"installer {_size(wanted.installer_size)}" if wanted.installer_size else ""
    blocked = {} if wanted.installer_size else {"blocked": "no provision.installer in "
                                                "cluster.yaml"}
    if not facts_base["root"]["exists"]:
        return [Action(node.name, "miniconda", "create", f"no Miniconda at {node.miniconda}",
                       sent, blocked)]
    missing = [rel for rel in ("conda-meta", "bin/python")
               if not facts_base["layout"].get(rel, {}).get("exists")]
    if facts_base.get("installing") or missing or facts_base["root"].get("kind") != "dir":
        why = "an install was interrupted" if facts_base.get("installing") else \
            f"partial base: {', '.join(missing) or 'not a folder'} missing"
        return [Action(node.name, "miniconda", "replace", f"{why} (moved aside, not deleted)",
                       sent, blocked)]
    return [Action(node.name, "miniconda", "ok")]


def env(node: Node, facts: dict, wanted: Wanted) -> list[Action]:
    solution, facts_env = wanted.solution, facts["env"]
    # a new folder for each install: the live one may have been changed in place (a
    # `conda install` into it), and a folder in use is never renamed or rewritten
    detail = {"version": f".{node.env_name}-{solution.digest}-{wanted.stamp}"}
    live = (facts_env["root"].get("target") or "").rstrip("/").rsplit("/", 1)[-1]
    spare = sorted(v for v, complete in facts_env.get("versions", {}).items()
                   if complete and v.startswith(f".{node.env_name}-{solution.digest}-")
                   and v != live)
    if spare:  # a whole copy of this env, not in use: switching to it is enough
        detail |= {"version": spare[-1], "present": True}
    problems = _env_problems(node, facts, solution)
    if not problems:
        return [Action(node.name, "env", "ok")]
    verb = "update" if spare else "create" if problems[0].startswith("no env") else "replace"
    # the archive's size is one line under the plan: it is built only when a node needs it
    archive = f"none: {spare[-1]} is on the node" if spare else "the env archive"
    return [Action(node.name, "env", verb, "; ".join(problems), archive, detail)]


def _env_problems(node: Node, facts: dict, solution: Solution) -> list[str]:
    found = facts["env"]
    if miniconda.env_exists(node, facts):
        return [f"no env at {node.env_prefix}"]
    have, want = node_packages(found), solution.packages
    problems = [f"record unreadable: {b['file'].rsplit('/', 1)[-1]}"
                for b in found.get("conda_broken", [])][:SHOW]
    problems += _diff(have, want)
    problems += _pip_diff(facts, solution.pip.versions())
    runtime = facts["runtime"]
    if not runtime.get("python") and not runtime.get("skipped"):
        problems.append(f"its python does not run: {_last_line(runtime.get('error', ''))}")
    return problems


def _pip_diff(facts: dict, locked: dict[str, str]) -> list[str]:
    """What pip installed against the pip lock: a locked dist missing or at another
    version, and any pip-installed dist the lock does not name."""
    have = {name: d["version"] for name, d in environment.pip_dists(facts).items()
            if d["installer"] not in ("conda", None)}
    out = [f"{name} {version} (pip) missing" if name not in have else
           f"{name} (pip): {have[name]}, want {version}"
           for name, version in sorted(locked.items()) if have.get(name) != version]
    out += [f"pip-installed {name} {version}" for name, version in sorted(have.items())
            if name not in locked]
    return out[:SHOW]


def _diff(have: frozenset[Package], want: frozenset[Package]) -> list[str]:
    by_name = {p.name: p for p in have}
    out = []
    for package in sorted(want - have, key=lambda p: p.name):
        mine = by_name.get(package.name)
        out.append(f"{package.name}: {mine.version} {mine.build} ({mine.channel}), want "
                   f"{package.version} {package.build} ({package.channel})" if mine else
                   f"{package.name} missing")
    wanted_names = {p.name for p in want}
    out += [f"{p.name} {p.version} not in the solved env" for p in sorted(
        have - want, key=lambda p: p.name) if p.name not in wanted_names]
    return out[:SHOW] + ([f"and {len(out) - SHOW} more"] if len(out) > SHOW else [])


def kernel(cluster: Cluster, node: Node, facts: dict) -> list[Action]:
    if not cluster.jupyter.check:
        return []
    findings = jupyter.kernel_registered(node, facts, cluster)
    if not findings:
        return [Action(node.name, "kernel", "ok")]
    verb = "create" if "not registered" in findings[0].found else "update"
    name = cluster.jupyter.kernel_name or node.env_name
    spec = {"argv": [f"{node.env_prefix}/bin/python", "-m", "ipykernel_launcher", "-f",
                     "{connection_file}"],
            "display_name": cluster.jupyter.display_name or f"Python ({node.env_name})",
            "language": "python", "metadata": {"debugger": True}}
    return [Action(node.name, "kernel", verb, _finding(findings[0]), "kernel.json",
                   {"path": f"~/.local/share/jupyter/kernels/{name}/kernel.json",
                    "text": json.dumps(spec, indent=1) + "\n"})]


def code(node: Node, facts: dict, wanted: Wanted) -> list[Action]:
    if wanted.source is None:
        return []
    findings = sync.same_tree(node, facts, wanted.source)
    if not findings:
        return [Action(node.name, "code", "ok")]
    verb = "create" if not facts["sync"]["exists"] else "update"
    return [Action(node.name, "code", verb, _finding(findings[0]),
                   "rsync of the differing files")]


def _finding(finding) -> str:
    return f"expected {finding.expected}, found {finding.found}"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no error text"


def _size(count: int | None) -> str:
    return f"{(count or 0) / 1e6:.1f} MB"
