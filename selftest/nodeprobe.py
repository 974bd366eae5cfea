"""The real probe, run inside one simulated node's namespaces without SSH: for faults
that are only file state (conda-meta, dist-info, kernelspec, ssh config files, /etc/hosts,
the code tree, the kernel log, sysfs), where what is under test is the probe reading the
node and the checks judging it, not the transport. The suites then run on the facts as a
replay (--facts), the same assertions as a live run, at a fraction of its cost."""

from __future__ import annotations

import time

from simcluster import cluster as sim_cluster
from simcluster.host import in_node

from preflight.config.inventory import Cluster
from preflight.launchers import probe
from preflight.launchers.base import Result

# what sshd gives a root login: a clean environment, not this pytest process's
LOGIN_ENV = ("HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash", "LANG=C.UTF-8",
             "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


def probe_in_node(cluster: Cluster, name: str, runtime: bool = True) -> dict:
    """The node's facts document with `reach`, as a launcher returns it (runtime=False:
    without the env Python's run, the seconds of its torch import)."""
    node = cluster.node(name)
    anchor = sim_cluster.load()["nodes"][name]["anchor"]
    logins = probe.login_plan(cluster, list(cluster.nodes))
    script = probe.probe_script(node, runtime=runtime,
                                **probe.cluster_args(cluster, node, logins))
    seconds, bound = probe.probe_bound(cluster, node)
    started = time.monotonic()
    done = in_node(anchor, "env", "-i", *LOGIN_ENV, "timeout", "-k", "2", str(int(seconds)),
                   "sh", "-c", probe.probe_command(node, script), check=False,
                   timeout=seconds + 10, cwd="/")
    return probe.document(Result("probe", done.returncode, done.stdout, done.stderr,
                                 time.monotonic() - started, done.returncode == 124),
                          bound, "nsenter (selftest)")


def probe_all(cluster: Cluster) -> dict[str, dict]:
    return {n.name: probe_in_node(cluster, n.name) for n in cluster.nodes}
