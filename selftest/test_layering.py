"""The package's shape: no import cycle anywhere in preflight (lazy imports included),
and the SSH-or-Slurm choice made in one place outside launchers/ (the registry call)."""

from __future__ import annotations

import re
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[1] / "src" / "preflight"


def test_no_import_cycle_in_preflight():
    graph = grimp.build_graph("preflight", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append(" -> ".join([module, *back]))
    assert not cycles, "\n".join(cycles)


def test_launcher_chosen_only_by_the_registry():
    """cluster.launcher is read in launchers/registry.py and nowhere else."""
    readers = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
               if re.search(r"\.launcher\s*(==|!=|in\b)|launcher\s*==\s*\"", p.read_text())]
    assert readers == [], readers
