"""The code tree: the same content on every node as in the controller's source tree."""

from __future__ import annotations

from preflight.checks.findings import Finding
from preflight.config.inventory import Node

SHOW = 8  # file names listed per kind of difference


def same_tree(node: Node, facts: dict, source: dict[str, str]) -> list[Finding]:
    tree = facts.get("sync")
    if tree is None:
        return []
    if not tree["exists"]:
        return [Finding(node.name, "code sync", f"{len(source)} files under {tree['target']}",
                        "no such folder", "sync it from the controller, e.g. rsync -a --delete")]
    files = tree["files"]
    differences = {
        "missing": sorted(set(source) - set(files)),
        "added": sorted(set(files) - set(source)),
        "changed": sorted(p for p in set(source) & set(files) if source[p] != files[p]),
    }
    found = [Finding(node.name, "code sync", f"{tree['target']} as the source tree",
                     f"{len(paths)} {kind}: {', '.join(paths[:SHOW])}"
                     + (f" and {len(paths) - SHOW} more" if len(paths) > SHOW else ""))
             for kind, paths in differences.items() if paths]
    if tree["truncated"]:
        found.append(Finding(node.name, "code sync", "the whole tree compared",
                             f"stopped at {len(files)} files (sync.max_files)"))
    return found
