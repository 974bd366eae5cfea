"""`preflight provision`: gather, decide once on the controller, print the plan, apply.

    preflight provision                    # the plan; exit 10 when it has changes
    preflight provision --apply            # carry it out, then run the checks again
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from preflight import remote
from preflight.config.inventory import Cluster, Node
from preflight.core.digest import sha256_file
from preflight.core.errors import UserError
from preflight.facts import contract
from preflight.launchers import hostkeys, registry
from preflight.launchers.targets import resolve
from preflight.provision import CHANGES_PENDING, FAILED, NOTHING_TO_DO, envbuild
from preflight.provision.apply import Applier
from preflight.provision.plan import Wanted, plan_node
from preflight.provision.plan_types import Action


def decide(cluster: Cluster, nodes: list[Node], log) -> tuple[dict, dict, Wanted, object]:
    """(plans, validated facts, wanted state, env archive or None): reads, changes nothing.
    The solve and the installer's sha256 come first: either stops before any node is
    contacted."""
    solution = envbuild.with_pip(cluster, envbuild.solve(cluster), log)
    installer_size = _installer_size(cluster)
    with registry.create(cluster) as launcher:
        gathered = launcher.gather(nodes)
    checked, _ = contract.validate_all(gathered, contract.Expect.of(cluster),
                                       [n.name for n in nodes])
    source = None
    if cluster.sync_source is not None:
        source, _ = remote.probe_module().tree_hashes(
            str(cluster.sync_source), cluster.sync.exclude, cluster.sync.max_files)
    wanted = Wanted(solution, source, installer_size, _host_keys(cluster, nodes),
                    time.strftime("%Y%m%d%H%M%S"))
    plans = {n.name: plan_node(cluster, n, checked[n.name], checked, wanted) for n in nodes}
    archive = None
    if any(a.resource == "env" and a.changes and not a.detail.get("present")
           for actions in plans.values() for a in actions):
        # files name envs/NAME, the path jobs use; it always points at a whole version
        targets = {n.env_prefix for n in nodes}
        if len(targets) > 1:
            raise UserError("provision needs one env path for all nodes (cluster.yaml "
                            f"gives {len(targets)}: {', '.join(sorted(targets))})")
        archive = envbuild.build(cluster, solution, targets.pop(), log)
        log(f"env archive: {archive.size / 1e6:.1f} MB ({archive.compression}); the controller "
            f"sends it to at most {cluster.provision.fanout} node(s), the others copy it "
            "from those")
    return plans, checked, wanted, archive


def _installer_size(cluster: Cluster) -> int | None:
    """The installer's size, after its sha256 matched cluster.yaml's (else refused)."""
    if cluster.installer is None:
        return None
    digest = sha256_file(cluster.installer)
    if digest != cluster.provision.installer.sha256:
        raise UserError(f"{cluster.installer}: sha256 {digest} differs from "
                        f"provision.installer.sha256 {cluster.provision.installer.sha256} in "
                        f"{cluster.path}; refusing to run it on any node")
    return cluster.installer.stat().st_size


def _host_keys(cluster: Cluster, nodes: list[Node]) -> dict[str, tuple[str, str]]:
    """node -> (names, key) from the controller's known_hosts, the keys every connection
    of this run is verified against; nodes learn them from here, never on first use."""
    verifier = hostkeys.verifier(cluster.known_hosts, cluster.trust_new_host_keys)
    out = {}
    for node in nodes:
        target = resolve(cluster, node)
        known = verifier.known(target.hostname) or verifier.known(node.name)
        if known:
            kind = "ssh-ed25519" if "ssh-ed25519" in known else sorted(known)[0]
            names = ",".join(dict.fromkeys([node.name, target.hostname]))
            out[node.name] = (names, f"{kind} {known[kind].get_base64()}")
    return out


def show(plans: dict, log) -> int:
    """Print the plan, nodes with the same change folded into one line with a node range
    (2,000 nodes that need the same env are one line); the number of changes."""
    changes = [a for actions in plans.values() for a in actions if a.changes]
    errors = [a for actions in plans.values() for a in actions if a.verb == "error"]
    blocked = [a for a in changes if a.detail.get("blocked")]
    groups: dict[tuple, list[str]] = {}
    for actions in plans.values():
        for action in actions:
            if action.verb != "ok":
                key = (action.resource, action.verb, action.reason, action.transfer,
                       action.detail.get("blocked", ""))
                groups.setdefault(key, []).append(action.node)
    for (resource, verb, reason, transfer, why), names in groups.items():
        line = str(Action(_short(names), resource, verb, reason, transfer))
        log(f"  {line}" + (f"  CANNOT: {why}" if why else ""))
    ok_nodes = [n for n, actions in plans.items() if all(a.verb == "ok" for a in actions)]
    if ok_nodes:
        log(f"  ok: {len(ok_nodes)} node(s) need nothing ({_short(ok_nodes)})")
    log(f"plan: {len(changes)} change(s) on {len({a.node for a in changes})} node(s), "
        f"{len(errors) + len(blocked)} that cannot be planned")
    return len(changes)


def _short(names: list[str]) -> str:
    from ClusterShell.NodeSet import NodeSet
    return str(NodeSet.fromlist(names))


def blocked_by_config(plans: dict) -> list[str]:
    """Why apply cannot do what the plan needs, for reasons cluster.yaml must fix (a
    missing installer): apply is refused before any node is changed."""
    found = {a.detail["blocked"]: [] for actions in plans.values() for a in actions
             if a.changes and a.detail.get("blocked")}
    for actions in plans.values():
        for a in actions:
            if a.changes and a.detail.get("blocked"):
                found[a.detail["blocked"]].append(a.node)
    return [f"{why} (needed on {_short(names)})" for why, names in found.items()]


def run(cluster: Cluster, nodes: list[Node], *, apply: bool, check: bool, log) -> int:
    started = time.monotonic()
    plans, checked, wanted, archive = decide(cluster, nodes, log)
    log(f"provision {cluster.name}: env {cluster.env.name} solved once: "
        f"{len(wanted.solution.packages)} packages, version {wanted.solution.digest}")
    if wanted.solution.pip.wheels:
        log(f"  pip section locked: {len(wanted.solution.pip.wheels)} wheel(s) "
            f"({', '.join(f'{w.name} {w.version}' for w in wanted.solution.pip.wheels)}), "
            "installed offline from the env archive")
    for line in wanted.solution.pip_left:
        log(f"  note: pip line {line!r} is not installed by provision (name requirements "
            "in environment.yml instead)")
    changes = show(plans, log)
    unplannable = any(a.verb == "error" for actions in plans.values() for a in actions)
    config = blocked_by_config(plans)
    if config:  # before any node is changed: the plan cannot be carried out as written
        raise UserError("cannot apply: " + "; ".join(config))
    if not apply:
        return CHANGES_PENDING if changes else (FAILED if unplannable else NOTHING_TO_DO)
    with registry.create(cluster) as launcher:
        outcomes = Applier(cluster, launcher, plans, wanted, archive, checked, log).run(nodes)
    failed = {n: o.failed for n, o in outcomes.items() if o.failed}
    sent = sum(o.bytes_from_controller for o in outcomes.values())
    peers = sum(o.bytes_from_peers for o in outcomes.values())
    log(f"applied in {time.monotonic() - started:.1f} s: "
        f"{sum(len(o.done) for o in outcomes.values())} change(s); controller sent "
        f"{sent / 1e6:.1f} MB, nodes copied {peers / 1e6:.1f} MB from each other")
    for name, why in failed.items():
        log(f"  NOT PROVISIONED {name}: {why}")
    unreached = {a.node for actions in plans.values() for a in actions if a.verb == "error"}
    for name in sorted(unreached - set(failed)):
        log(f"  NOT PROVISIONED {name}: could not be planned (see above)")
    provisioned = [n for n in nodes if n.name not in failed and n.name not in unreached]
    # the checks only where apply did its work: a node it could not provision fails
    # already, and its 70 check failures would only bury that
    verdict = _check(cluster, provisioned) if check and provisioned else NOTHING_TO_DO
    return FAILED if failed or unplannable else verdict


XDIST_FROM = 16  # nodes; below it xdist's start-up costs more than it saves (BENCHMARKS.md)


def _workers(count: int) -> list[str]:
    """pytest-xdist for the checks after apply only where it pays.

    >>> _workers(4), _workers(64)
    (['-p', 'no:xdist'], ['-n', 'auto'])
    """
    return ["-n", "auto"] if count >= XDIST_FROM else ["-p", "no:xdist"]


def _check(cluster: Cluster, nodes: list[Node]) -> int:
    """The checks again, on the same nodes (the collective test aside: `nox -s nccl`)."""
    from ClusterShell.NodeSet import NodeSet
    command = [sys.executable, "-m", "pytest", "tests", "--rootdir", ".", "-q",
               f"--cluster={cluster.path}", f"--nodes={NodeSet.fromlist([n.name for n in nodes])}",
               "-m", "not nccl", *_workers(len(nodes)), "-p", "no:cacheprovider",
               f"--junitxml={Path('reports') / 'junit.xml'}"]
    return NOTHING_TO_DO if subprocess.run(command, check=False).returncode == 0 else FAILED
