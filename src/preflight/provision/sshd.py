"""The `sshd` resource (provision.harden_sshd): keys only, no password login as root.

sshd keeps the first value it reads for a setting, Includes expanded where they stand.
So the settings go into a drop-in that sorts first in the folder sshd_config includes,
and the plan proves by reading the files as sshd would (checks.ssh.first_settings) that
it wins; where it cannot (no Include, or an earlier line sets the key), a managed block
goes at the top of sshd_config itself, the old file kept as a backup. A Match block that
turns a setting back on is named file:line and changed only with `harden_sshd: force`.

    >>> files = {"/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\\n"
    ...          "PasswordAuthentication no\\n",
    ...          "/etc/ssh/sshd_config.d/50-cloud.conf": "PasswordAuthentication yes\\n"}
    >>> changes, _ = edits(files, {"passwordauthentication": "no"}, {}, force=False)
    >>> list(changes)
    ['/etc/ssh/sshd_config.d/00-cluster-preflight.conf']
"""

from __future__ import annotations

import fnmatch
import posixpath

from preflight.checks import ssh as ssh_checks
from preflight.config.inventory import Cluster, Node
from preflight.provision import blocks
from preflight.provision.nodeshell import text_sha256
from preflight.provision.plan_types import Action

DROPIN = "00-cluster-preflight.conf"
BEGIN = "# BEGIN cluster-preflight sshd settings"
END = "# END cluster-preflight sshd settings"
HEADER = "# written by `nox -s provision` (provision.harden_sshd); edits here are replaced\n"


def plan(cluster: Cluster, node: Node, facts: dict) -> list[Action]:
    if not cluster.provision.harden_sshd:
        return []
    if not facts.get("ssh"):
        return [Action(node.name, "sshd", "error", "the probe read no sshd settings "
                       "(ssh.check is off in cluster.yaml)")]
    files = facts["ssh"]["sshd_config"]
    main = ssh_checks.MAIN_CONFIG
    if main not in files:
        return [Action(node.name, "sshd", "error", f"{main} could not be read on the node")]
    wanted = {k.lower(): v for k, v in cluster.provision.sshd_settings.items()}
    allowed = accepted(wanted, cluster.ssh.sshd)
    force = cluster.provision.harden_sshd == "force"
    try:
        changes, matches = edits(files, wanted, allowed, force=force)
    except blocks.BlockDamaged as exc:
        return [Action(node.name, "sshd", "error", f"{main}: {exc}; fix it by hand")]
    if not changes and not matches:
        return [Action(node.name, "sshd", "ok")]
    where = "; ".join(f"Match block at {m}" for m in matches)
    if matches and not force:
        return [Action(node.name, "sshd", "error", f"{where} (changed only with "
                       "provision.harden_sshd: force)")]
    before = _state(files, wanted)
    why = ", ".join(f"{k} {v}" for k, v in before.items() if v not in allowed[k])
    why = f"found {why or 'the settings'}" + (f"; {where} rewritten" if matches else "")
    verb = "create" if all(p not in files for p in changes) else "update"
    detail = {"files": {p: {"text": t, "sha256": text_sha256(files.get(p)), "old": files.get(p)}
                        for p, t in changes.items()}}
    return [Action(node.name, "sshd", verb, why, ", ".join(sorted(changes)) + ", then "
                   "sshd -t and a reload", detail)]


def edits(files: dict[str, str], wanted: dict[str, str], allowed: dict[str, list[str]],
          *, force: bool) -> tuple[dict[str, str], list[str]]:
    """(path -> new text, Match lines that undo a setting as file:line). The first of:
    nothing, our drop-in, a block atop the main file, whose settings sshd then reads."""
    allowed = accepted(wanted, allowed)
    matches, rewritten = _match_lines(files, allowed, wanted, force)
    current = {**files, **rewritten}
    if _wins(current, allowed):
        return rewritten, matches
    body = HEADER + "".join(f"{_keyword(k)} {v}\n" for k, v in wanted.items())
    main = ssh_checks.MAIN_CONFIG
    dropin = _dropin_path(current.get(main, ""))
    if dropin:
        trial = {**current, dropin: body}
        if _wins(trial, allowed):
            return {**rewritten, dropin: body}, matches
    block = f"{BEGIN}\n{body}{END}\n"
    text = blocks.remove(current.get(main, ""), BEGIN, END)
    return {**rewritten, main: block + text}, matches


def accepted(wanted: dict[str, str], checked: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per wanted key, the values that count as hardened: what the sshd check accepts
    (ssh.sshd), else the wanted value itself."""
    return {k: checked.get(k) or [v.lower()] for k, v in wanted.items()}


def _wins(files: dict[str, str], allowed: dict[str, list[str]]) -> bool:
    return all(v in allowed[k] for k, v in _state(files, allowed).items())


def _state(files: dict[str, str], keys) -> dict[str, str]:
    """Each key's value as sshd reads these files (outside Match), else its default."""
    first = ssh_checks.first_settings(files)
    return {k: first[k][0] if k in first else ssh_checks.OPENSSH_DEFAULTS.get(k, "")
            for k in keys}


def _dropin_path(main_text: str) -> str | None:
    """Our drop-in's path in the first folder an Include (outside Match) reads, when
    its pattern matches our name."""
    for key, value, in_match in ssh_checks.config_lines(main_text):
        if key != "include" or in_match:
            continue
        for pattern in value.split():
            full = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
            candidate = posixpath.join(posixpath.dirname(full), DROPIN)
            if fnmatch.fnmatch(candidate, full):
                return candidate
    return None


def _match_lines(files: dict[str, str], allowed: dict[str, list[str]],
                 wanted: dict[str, str], force: bool) -> tuple[list[str], dict[str, str]]:
    """Lines inside a Match block that set a key to a value not allowed, as file:line,
    and (force) each file with those lines rewritten to the wanted value."""
    found, rewritten = [], {}
    for path, text in files.items():
        lines = text.splitlines(keepends=True)
        changed = False
        for number, key, value, in_match in ssh_checks.numbered_config_lines(text):
            if not in_match or key not in allowed or value in allowed[key]:
                continue
            raw = lines[number - 1]
            found.append(f"{path}:{number} ({raw.strip()})")
            if force:
                indent = raw[: len(raw) - len(raw.lstrip())]
                lines[number - 1] = (f"{indent}{_keyword(key)} {wanted[key]}  # was: "
                                     f"{raw.strip()} (cluster-preflight)\n")
                changed = True
        if changed:
            rewritten[path] = "".join(lines)
    return found, rewritten


KEYWORDS = {"passwordauthentication": "PasswordAuthentication",
            "kbdinteractiveauthentication": "KbdInteractiveAuthentication",
            "permitrootlogin": "PermitRootLogin", "pubkeyauthentication": "PubkeyAuthentication",
            "permitemptypasswords": "PermitEmptyPasswords",
            "challengeresponseauthentication": "ChallengeResponseAuthentication"}


def _keyword(key: str) -> str:
    return KEYWORDS.get(key, key)
