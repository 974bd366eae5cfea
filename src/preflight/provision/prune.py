"""`preflight provision --prune`: what is older than the previous version goes.

On each node: env versions (`envs/.NAME-*`, and plain folders kept from before
provisioning), code releases, the env archives a node holds to serve its peers except
those of the live and the previous env, and the Miniconda installer it holds. The live
one and the previous one always stay, so a rollback is one symlink away. Without --apply
it only lists; the node's provision lock is held either way.
"""

from __future__ import annotations

from preflight.config.inventory import Cluster, Node
from preflight.core.fanout import fan_out
from preflight.launchers import registry
from preflight.provision import CHANGES_PENDING, FAILED, NOTHING_TO_DO
from preflight.provision.nodeshell import NodeFailed, NodeShell, beside_prefix


def run(cluster: Cluster, nodes: list[Node], *, apply: bool, log) -> int:
    found: dict[str, list[tuple[int, str]] | str] = {}

    def one(node: Node) -> None:
        def body(conn) -> None:
            shell = NodeShell(conn, node)
            try:
                shell.lock()
                try:
                    out = shell.run("prune", f"{node.miniconda}/envs", node.env_name,
                                    node.workspace, f"{node.miniconda}/pkgs/.preflight",
                                    "no" if apply else "yes", beside_prefix(node))
                finally:
                    shell.unlock()
                found[node.name] = parse(out)
            except NodeFailed as exc:
                found[node.name] = str(exc)
        launcher.session(node, body, lambda why: found.__setitem__(node.name, why))
    with registry.create(cluster) as launcher:
        fan_out(nodes, one, cluster.parallelism)
    verb = "removed" if apply else "would remove"
    total, count = 0, 0
    for name in [n.name for n in nodes if n.name in found]:
        items = found[name]
        if isinstance(items, str):
            log(f"  {name}: FAILED: {items}")
            continue
        for kib, path in items:
            log(f"  {name}: {verb} {path} ({_size(kib)})")
        total += sum(kib for kib, _ in items)
        count += len(items)
    failed = [n for n, items in found.items() if isinstance(items, str)]
    log(f"prune: {verb} {count} item(s), {_size(total)} on "
        f"{len([n for n, i in found.items() if i and not isinstance(i, str)])} node(s)" +
        (f"; {len(failed)} node(s) failed" if failed else ""))
    if failed:
        return FAILED
    return CHANGES_PENDING if count and not apply else NOTHING_TO_DO


def parse(out: str) -> list[tuple[int, str]]:
    """The node's "KB PATH" lines.

    >>> parse("1024 /opt/miniconda/envs/.e-abc-1\\nnoise\\n")
    [(1024, '/opt/miniconda/envs/.e-abc-1')]
    """
    items = []
    for line in out.splitlines():
        kib, _, path = line.partition(" ")
        if kib.isdigit() and path.startswith("/"):
            items.append((int(kib), path))
    return items


def _size(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB" if kib < 1024 * 1024 else f"{kib / 1024 / 1024:.2f} GiB"
