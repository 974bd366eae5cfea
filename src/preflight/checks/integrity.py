"""Installed bytes: every file the env's conda records (conda-meta paths_data) and its
pip-installed dists (RECORD) list is there with its recorded size, and with
`env.verify: sha256` its recorded hash. A corrupted or half-copied library is named with
its package, not found later as an `invalid ELF header` in the CUDA suite."""

from __future__ import annotations

from preflight.checks.findings import Finding, NotChecked
from preflight.config.inventory import Node

SHOWN = 10  # findings a node lists one by one; the rest are counted in one more


def files_match_records(node: Node, facts: dict) -> list[Finding]:
    env = facts["env"]
    checked = env.get("integrity")
    if checked is None:
        raise NotChecked(f"{node.name}: installed files not checked: the probe did not verify "
                         "them (env.verify: off in cluster.yaml, or an older probe)")
    bad = checked["mismatches"]
    found = [Finding(node.name, "installed files", _expected(m), _found(m), _hint(m),
                     severity="drain") for m in bad[:SHOWN]]
    rest = len(bad) - SHOWN + checked.get("more", 0)
    if rest > 0:
        found.append(Finding(node.name, "installed files", "every recorded file as recorded",
                             f"{rest} more file(s) differ", "the first ones are listed above; "
                             "reinstall those packages", severity="drain"))
    return found


def _expected(m: dict) -> str:
    what = {"missing": "present", "kind": "a regular file",
            "size": f"{m['expected']}, as recorded",
            "sha256": f"sha256 {m['expected']}..., as recorded"}.get(m["what"], m["expected"])
    return f"{m['file']} of {m['package']} {what}"


def _found(m: dict) -> str:
    return f"sha256 {m['found']}..." if m["what"] == "sha256" else m["found"]


def _hint(m: dict) -> str:
    if m["what"] == "sha256":
        return "same size, other bytes: a corrupted or patched file; reinstall " \
               f"{m['package']} (conda install --force-reinstall, or nox -s provision)"
    return f"reinstall {m['package']} (conda install --force-reinstall, or nox -s provision)"
