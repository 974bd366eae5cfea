"""`preflight` / `python -m preflight`: the commands that are not a test run.

    preflight lock --node node-1              # conda-lock.yml from node-1's env
    preflight facts --nodes 'node-[1-2]'      # what the probe sees, as JSON
    preflight provision [--apply]             # plan (exit 10: changes pending), apply
    preflight provision --prune [--apply]     # old env versions and releases: list, remove
    preflight node-check [--drain] [--resume] # this machine only, no SSH (HealthCheckProgram)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from preflight.config import inventory, lockfile
from preflight.core import progress
from preflight.core.errors import UserError
from preflight.launchers import registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="preflight", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster", default="cluster.yaml", help="default: cluster.yaml")
    verbs = parser.add_subparsers(dest="verb", required=True)
    lock = verbs.add_parser("lock", help="write a conda-lock file from a reference node")
    lock.add_argument("--node", help="reference node (default: the master)")
    lock.add_argument("--out", default="conda-lock.yml", help="default: conda-lock.yml")
    show = verbs.add_parser("facts", help="probe nodes and print their facts as JSON")
    show.add_argument("--nodes", help="ClusterShell node set (default: all)")
    show.add_argument("--no-runtime", action="store_true", help="skip the env-Python probe")
    prov = verbs.add_parser("provision", help="plan (default) or --apply what makes nodes "
                            "right; exit 0 nothing to do, 10 changes pending, 1 failed, 2 "
                            "config error")
    prov.add_argument("--apply", action="store_true", help="carry the plan out, then check")
    prov.add_argument("--nodes", help="ClusterShell node set (default: all)")
    prov.add_argument("--role", choices=["master", "worker"])
    prov.add_argument("--no-check", action="store_true", help="do not run the checks after")
    prov.add_argument("--prune", action="store_true", help="list (with --apply: remove) env "
                      "versions, code releases and held archives older than the previous "
                      "one; the live and the previous one always stay")
    here = verbs.add_parser("node-check", help="the per-node checks against this machine "
                            "only (no SSH), for Slurm's HealthCheckProgram; exit 1 on failure")
    here.add_argument("--node", help="this node's name in cluster.yaml (default: hostname)")
    here.add_argument("--drain", action="store_true",
                      help="on failure, drain this node in Slurm (prefixed reason)")
    here.add_argument("--resume", action="store_true",
                      help="when passing, resume this node if this harness drained it")
    here.add_argument("--report-dir", type=Path, default=Path("reports/node-check"),
                      help="default: reports/node-check")
    here.add_argument("--prom-dir", type=Path, help="also write the node's metrics file "
                      "here: node_exporter's textfile collector folder, e.g. "
                      "/var/lib/prometheus/node-exporter")
    args = parser.parse_args(argv)
    progress.use_terminal()  # on /dev/tty: stdout (facts' JSON) stays clean
    try:
        cluster = inventory.load(args.cluster)
        verbs_run = {"lock": _lock, "facts": _facts, "provision": _provision,
                     "node-check": _node_check}
        return verbs_run[args.verb](cluster, args)
    except UserError as exc:
        print(f"preflight: {exc}", file=sys.stderr)
        return exc.exit_code


def _lock(cluster: inventory.Cluster, args) -> int:
    node = cluster.select(args.node)[0] if args.node else cluster.master
    with registry.create(cluster) as launcher:
        found = launcher.gather([node], runtime=False)[node.name]
    if not found["reach"]["ok"]:
        raise UserError(f"{node.name} {found['reach']['reason']}")
    if found["env"].get("conda") is None:
        raise UserError(f"{node.name}: no env at {node.env_prefix} to lock")
    out = Path(args.out)
    backup = lockfile.write(out, found, node.name, cluster.environment)
    kept = f" (previous file kept as {backup})" if backup else ""
    count = len(lockfile.from_facts(found))
    print(f"preflight: wrote {out} from {node.name}: {count} packages{kept}")
    print(f"preflight: add `lock: {out}` to {cluster.path} to compare every node with it")
    return 0


def _facts(cluster: inventory.Cluster, args) -> int:
    with registry.create(cluster) as launcher:
        gathered = launcher.gather(cluster.select(args.nodes), runtime=not args.no_runtime)
    print(json.dumps(gathered, indent=2))
    return 0 if all(f["reach"]["ok"] for f in gathered.values()) else 1


def _node_check(cluster: inventory.Cluster, args) -> int:
    from preflight import nodecheck
    return nodecheck.run(cluster, args.node, drain=args.drain, resume=args.resume,
                         report_dir=args.report_dir, prom_dir=args.prom_dir)


def _provision(cluster: inventory.Cluster, args) -> int:
    from preflight.provision import runner
    nodes = cluster.select(args.nodes, args.role)
    if not nodes:
        raise UserError(f"--nodes/--role select no node of {cluster.path}")
    def log(line: str) -> None:
        print(line, flush=True)
    if args.prune:
        from preflight.provision import prune
        return prune.run(cluster, nodes, apply=args.apply, log=log)
    return runner.run(cluster, nodes, apply=args.apply, check=not args.no_check, log=log)


if __name__ == "__main__":
    sys.exit(main())


def script() -> None:
    """The `preflight` console script: main(), then the process ends with its exit status
    at once. Not sys.exit: after a py-rattler solve, interpreter shutdown sometimes crashes
    in its runtime's threads (measured: SIGSEGV or SIGABRT, exit 134, in about 1 run of 4),
    which would turn a clean status into a crash. Nothing is left to clean up here."""
    import os
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
