"""The code tree to defaults.workspace with rsync, switched in whole.

rsync writes a new release folder beside the live one (hardlinking unchanged files from
it with --link-dest), then one rename of a symlink makes it live: a sync killed mid-way
leaves the old tree in place and a `.part` folder the next run clears.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import time

from preflight.config.inventory import Cluster
from preflight.launchers.targets import Target, resolve
from preflight.provision.nodeshell import NodeFailed, NodeShell


def ssh_command(cluster: Cluster, target: Target) -> list[str]:
    """OpenSSH as our own connections behave: strict host keys, no prompts, bounded."""
    command = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
               "-o", f"UserKnownHostsFile={cluster.known_hosts}",
               "-o", f"ConnectTimeout={max(1, int(target.connect_timeout))}",
               "-p", str(target.port)]
    if cluster.ssh_config:
        command += ["-F", str(cluster.ssh_config)]
    for identity in target.identity_files:
        command += ["-i", identity]
    if target.proxy_jump:
        command += ["-J", target.proxy_jump]
    return command


def sync(cluster: Cluster, shell: NodeShell, wanted) -> int:
    """Sync and switch; returns the bytes rsync sent."""
    node = shell.node
    digest = hashlib.sha256(repr(sorted(wanted.source.items())).encode()).hexdigest()[:8]
    release = f"{time.strftime('%Y%m%d%H%M%S')}-{digest}"
    part, _, live = shell.run("release-prepare", node.workspace, release).partition("\n")
    target = resolve(cluster, node)
    where = f"{target.user}@{target.hostname}" if target.user else target.hostname
    command = ["rsync", "-a", "--delete", "--stats", "-e", shlex.join(ssh_command(cluster, target))]
    command += [f"--exclude={pattern}" for pattern in cluster.sync.exclude]
    if live.strip():
        command.append(f"--link-dest={live.strip()}")
    command += [f"{cluster.sync_source}/", f"{where}:{part.strip()}/"]
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=node.command_timeout, check=False)
    except subprocess.TimeoutExpired:
        raise NodeFailed(f"rsync timed out after {node.command_timeout:g} s") from None
    if done.returncode:
        said = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise NodeFailed(f"rsync failed (exit {done.returncode}): {said[:300]}")
    shell.run("release-switch", node.workspace, release)
    sent = re.search(r"Total bytes sent: ([\d,.]+)", done.stdout)
    return int(re.sub(r"[,.]", "", sent.group(1))) if sent else 0
